//! A scripted LLM server for the AI tests: a loopback HTTP server that
//! speaks the Anthropic Messages and OpenAI chat-completions wire formats,
//! streamed as server-sent events, including tool-use turns. Each request
//! takes the next scripted reply and is recorded so tests can assert what
//! the model was shown (system prompt, messages, tools).

use std::collections::VecDeque;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use parking_lot::Mutex;
use serde_json::{json, Value};

#[derive(Debug, Clone)]
pub enum Reply {
    Text(String),
    /// Tool calls: (name, input).
    Tools(Vec<(String, Value)>),
    /// An HTTP error status with a body.
    Status(u16),
    /// Text streamed in two halves, the second only once the test lets it
    /// go (`ScriptedLlm::release`, or `POST /release` from a browser test).
    Held(String),
}

pub fn text(t: &str) -> Reply {
    Reply::Text(t.to_owned())
}

pub fn tool(name: &str, input: Value) -> Reply {
    Reply::Tools(vec![(name.to_owned(), input)])
}

#[derive(Default)]
struct Script {
    replies: VecDeque<Reply>,
    /// Used when the queue is empty.
    fallback: Option<Reply>,
    requests: Vec<Value>,
    /// What a held answer waits for.
    release: Arc<tokio::sync::Notify>,
}

pub struct ScriptedLlm {
    pub base: String,
    script: Arc<Mutex<Script>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ScriptedLlm {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Input tokens the scripted server reports per request, and output tokens.
pub const TOKENS_IN: u64 = 1200;
pub const TOKENS_OUT: u64 = 80;

impl ScriptedLlm {
    pub async fn start() -> Self {
        let script = Arc::new(Mutex::new(Script::default()));
        let app = Router::new()
            .route("/v1/messages", post(anthropic))
            .route("/v1/chat/completions", post(openai))
            .route("/release", post(release))
            .with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind llm");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { base, script, task }
    }

    pub fn push(&self, reply: Reply) {
        self.script.lock().replies.push_back(reply);
    }

    pub fn set_fallback(&self, reply: Reply) {
        self.script.lock().fallback = Some(reply);
    }

    pub fn requests(&self) -> Vec<Value> {
        self.script.lock().requests.clone()
    }

    pub fn request_count(&self) -> usize {
        self.script.lock().requests.len()
    }

    /// Lets a held answer finish.
    pub fn release(&self) {
        self.script.lock().release.notify_one();
    }
}

async fn release(State(script): State<Arc<Mutex<Script>>>) -> StatusCode {
    script.lock().release.notify_one();
    StatusCode::NO_CONTENT
}

fn next(script: &Mutex<Script>, body: Value) -> Reply {
    let mut s = script.lock();
    s.requests.push(body);
    s.replies
        .pop_front()
        .or_else(|| s.fallback.clone())
        .unwrap_or_else(|| Reply::Text("(the script ran out)".into()))
}

/// The next reply, and for a held one where its stream stops: after
/// `first_half_end` events (the first half of its text).
fn next_held(
    script: &Mutex<Script>,
    body: Value,
    first_half_end: usize,
) -> (Reply, Option<(usize, Arc<tokio::sync::Notify>)>) {
    let reply = next(script, body);
    let hold =
        matches!(reply, Reply::Held(_)).then(|| (first_half_end, script.lock().release.clone()));
    (reply, hold)
}

/// The events as a stream body, then `trailer` (OpenAI's `[DONE]`); with
/// `hold`, the events from that index on wait for the release.
fn sse(
    events: Vec<(Option<&str>, Value)>,
    trailer: &str,
    hold: Option<(usize, Arc<tokio::sync::Notify>)>,
) -> Response {
    let mut pieces: Vec<String> = events
        .into_iter()
        .map(|(name, data)| match name {
            Some(name) => format!("event: {name}\ndata: {data}\n\n"),
            None => format!("data: {data}\n\n"),
        })
        .collect();
    pieces.push(trailer.to_owned());
    let headers = [("content-type", "text/event-stream")];
    let Some((at, release)) = hold else {
        return (headers, pieces.concat()).into_response();
    };
    let rest = pieces.split_off(at.min(pieces.len())).concat();
    let first = futures::stream::iter([Ok::<_, std::convert::Infallible>(pieces.concat())]);
    let second = futures::stream::once(async move {
        release.notified().await;
        Ok(rest)
    });
    use futures::StreamExt;
    (headers, axum::body::Body::from_stream(first.chain(second))).into_response()
}

/// Splits a string in two, to exercise streamed deltas.
fn halves(s: &str) -> [String; 2] {
    let mut cut = s.len() / 2;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    [s[..cut].to_owned(), s[cut..].to_owned()]
}

async fn anthropic(State(script): State<Arc<Mutex<Script>>>, Json(body): Json<Value>) -> Response {
    assert_eq!(body["stream"], true, "the kernel streams");
    let (reply, hold) = next_held(&script, body, 3);
    let mut events = vec![(
        Some("message_start"),
        json!({ "type": "message_start", "message": { "id": "msg_1", "role": "assistant", "content": [], "usage": { "input_tokens": TOKENS_IN, "output_tokens": 1 } } }),
    )];
    let stop = match reply {
        Reply::Status(code) => {
            return (
                StatusCode::from_u16(code).expect("status"),
                "{\"error\":\"scripted\"}",
            )
                .into_response()
        }
        Reply::Text(t) | Reply::Held(t) => {
            events.push((Some("content_block_start"), json!({ "type": "content_block_start", "index": 0, "content_block": { "type": "text", "text": "" } })));
            for part in halves(&t) {
                events.push((Some("content_block_delta"), json!({ "type": "content_block_delta", "index": 0, "delta": { "type": "text_delta", "text": part } })));
            }
            events.push((
                Some("content_block_stop"),
                json!({ "type": "content_block_stop", "index": 0 }),
            ));
            "end_turn"
        }
        Reply::Tools(calls) => {
            for (i, (name, input)) in calls.into_iter().enumerate() {
                events.push((Some("content_block_start"), json!({ "type": "content_block_start", "index": i, "content_block": { "type": "tool_use", "id": format!("toolu_{i}"), "name": name, "input": {} } })));
                for part in halves(&input.to_string()) {
                    events.push((Some("content_block_delta"), json!({ "type": "content_block_delta", "index": i, "delta": { "type": "input_json_delta", "partial_json": part } })));
                }
                events.push((
                    Some("content_block_stop"),
                    json!({ "type": "content_block_stop", "index": i }),
                ));
            }
            "tool_use"
        }
    };
    events.push((Some("message_delta"), json!({ "type": "message_delta", "delta": { "stop_reason": stop }, "usage": { "output_tokens": TOKENS_OUT } })));
    events.push((Some("message_stop"), json!({ "type": "message_stop" })));
    sse(events, "", hold)
}

async fn openai(State(script): State<Arc<Mutex<Script>>>, Json(body): Json<Value>) -> Response {
    assert_eq!(body["stream"], true, "the kernel streams");
    let (reply, hold) = next_held(&script, body, 1);
    let chunk = |delta: Value, finish: Value| json!({ "id": "c1", "object": "chat.completion.chunk", "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }] });
    let mut events = Vec::new();
    let finish = match reply {
        Reply::Status(code) => {
            return (
                StatusCode::from_u16(code).expect("status"),
                "{\"error\":{\"message\":\"scripted\"}}",
            )
                .into_response()
        }
        Reply::Text(t) | Reply::Held(t) => {
            for part in halves(&t) {
                events.push((
                    None,
                    chunk(json!({ "role": "assistant", "content": part }), Value::Null),
                ));
            }
            "stop"
        }
        Reply::Tools(calls) => {
            for (i, (name, input)) in calls.into_iter().enumerate() {
                let [a, b] = halves(&input.to_string());
                events.push((None, chunk(json!({ "tool_calls": [{ "index": i, "id": format!("call_{i}"), "type": "function", "function": { "name": name, "arguments": a } }] }), Value::Null)));
                events.push((
                    None,
                    chunk(
                        json!({ "tool_calls": [{ "index": i, "function": { "arguments": b } }] }),
                        Value::Null,
                    ),
                ));
            }
            "tool_calls"
        }
    };
    events.push((None, chunk(json!({}), json!(finish))));
    events.push((None, json!({ "id": "c1", "choices": [], "usage": { "prompt_tokens": TOKENS_IN, "completion_tokens": TOKENS_OUT } })));
    sse(events, "data: [DONE]\n\n", hold)
}
