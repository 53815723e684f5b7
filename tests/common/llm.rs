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
}

fn next(script: &Mutex<Script>, body: Value) -> Reply {
    let mut s = script.lock();
    s.requests.push(body);
    s.replies
        .pop_front()
        .or_else(|| s.fallback.clone())
        .unwrap_or_else(|| Reply::Text("(the script ran out)".into()))
}

/// The events as a stream body, then `trailer` (OpenAI's `[DONE]`).
fn sse(events: Vec<(Option<&str>, Value)>, trailer: &str) -> Response {
    let mut body = String::new();
    for (name, data) in events {
        if let Some(name) = name {
            body.push_str(&format!("event: {name}\n"));
        }
        body.push_str(&format!("data: {data}\n\n"));
    }
    body.push_str(trailer);
    ([("content-type", "text/event-stream")], body).into_response()
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
    let reply = next(&script, body);
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
        Reply::Text(t) => {
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
    sse(events, "")
}

async fn openai(State(script): State<Arc<Mutex<Script>>>, Json(body): Json<Value>) -> Response {
    assert_eq!(body["stream"], true, "the kernel streams");
    let reply = next(&script, body);
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
        Reply::Text(t) => {
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
    sse(events, "data: [DONE]\n\n")
}
