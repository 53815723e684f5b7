//! The AI's answer as the model writes it: `GET /_matrixos/v1/ai/live`
//! shows the owner the text of the answer being written in reply to them,
//! before it is posted, and nobody else. The scripted model holds the
//! second half of its answer until the test lets it go, so what the
//! stream shows in between is certain.

use std::time::Duration;

use serde_json::{json, Value};

use crate::ai_user::{alice_and_her_ai, say, with_model, Watch};
use crate::common::llm::{Reply, ScriptedLlm};
use crate::common::{expect_error, start_with, Raw};

/// One reader of the live stream.
struct Live {
    response: reqwest::Response,
    buffer: String,
}

impl Live {
    async fn open(raw: &Raw) -> Self {
        let response = raw
            .http
            .get(format!("{}/_matrixos/v1/ai/live", raw.base))
            .bearer_auth(raw.token.as_deref().expect("token"))
            .send()
            .await
            .expect("live stream");
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next event's answers (keep-alive comments skipped).
    async fn next(&mut self) -> Value {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let data: Vec<&str> = block
                    .lines()
                    .filter_map(|line| line.strip_prefix("data:"))
                    .map(str::trim_start)
                    .collect();
                if data.is_empty() {
                    continue;
                }
                let event: Value = serde_json::from_str(&data.join("\n")).expect("JSON event");
                return event["answers"].clone();
            }
            let chunk = tokio::time::timeout(Duration::from_secs(60), self.response.chunk())
                .await
                .expect("an event within a minute")
                .expect("the stream stays open")
                .expect("the stream does not end");
            self.buffer
                .push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
    }

    /// The next event whose answers satisfy `wanted`.
    async fn until(&mut self, wanted: impl Fn(&Value) -> bool) -> Value {
        loop {
            let answers = self.next().await;
            if wanted(&answers) {
                return answers;
            }
        }
    }
}

#[tokio::test]
async fn the_owner_sees_the_answer_as_the_model_writes_it_and_nobody_else_does() {
    let llm = ScriptedLlm::start().await;
    let base = llm.base.clone();
    let server = start_with(move |c| with_model(c, "anthropic", base)).await;
    let anon = Raw::new(&server);
    let (alice, _, dm) = alice_and_her_ai(&anon).await;
    let (bob, _) = anon.register("bob").await;
    expect_error(
        &anon.call("GET", "/_matrixos/v1/ai/live", None).await,
        401,
        "M_MISSING_TOKEN",
        "the live stream without a token",
    );

    let mut alice_live = Live::open(&alice).await;
    let mut bob_live = Live::open(&bob).await;
    assert_eq!(alice_live.next().await, json!({}), "nothing in progress");
    assert_eq!(bob_live.next().await, json!({}));

    let answer = "Here is the first half, and then the rest of the answer.";
    let first_half = &answer[..answer.len() / 2];
    llm.push(Reply::Held(answer.to_owned()));
    let mut watch = Watch::new(&alice).await;
    say(&alice, &dm, "Tell me something").await;

    // While the model holds the rest, the stream shows the first half and
    // the room has no answer yet.
    let partial = alice_live.until(|a| a.get(&dm).is_some()).await;
    assert_eq!(partial[&dm], first_half);
    let history = alice
        .call(
            "GET",
            &format!(
                "/_matrix/client/v3/rooms/{}/messages?dir=b&limit=20",
                crate::common::enc(&dm)
            ),
            None,
        )
        .await;
    assert!(
        !history.1["chunk"]
            .as_array()
            .expect("chunk")
            .iter()
            .any(|e| e["sender"] == "@alice_ai:localhost" && e["type"] == "m.room.message"),
        "no answer is posted before the model finishes"
    );

    llm.release();
    let posted = watch.message_from(&dm, "@alice_ai:localhost").await;
    assert_eq!(posted["content"]["body"], answer);
    let after = alice_live.until(|a| a.get(&dm).is_none()).await;
    assert_eq!(
        after,
        json!({}),
        "the posted answer is no longer in progress"
    );

    // Bob's stream showed nothing of alice's conversation.
    let nothing = tokio::time::timeout(Duration::from_millis(300), bob_live.next()).await;
    assert!(nothing.is_err(), "bob saw {:?}", nothing.ok());
}
