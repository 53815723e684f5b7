//! OpenAI-compatible chat completions (`POST {base}/chat/completions`,
//! streamed): OpenAI itself, Ollama, llama.cpp's server and vLLM.

use serde_json::{json, Value};

use super::sse::SseEvent;
use super::types::{Block, Completion, LlmError, Message, Request, Role, StopReason, Usage};
use super::StreamAssembler;

pub(super) fn body(model: &str, req: &Request) -> Value {
    let mut messages = vec![json!({ "role": "system", "content": req.system })];
    for message in &req.messages {
        messages.extend(translate(message));
    }
    let tools: Vec<Value> = req
        .tools
        .iter()
        .map(|t| {
            json!({
                "type": "function",
                "function": {
                    "name": t.name,
                    "description": t.description,
                    "parameters": t.input_schema,
                }
            })
        })
        .collect();
    let mut body = json!({
        "model": model,
        "max_tokens": req.max_tokens,
        "messages": messages,
        "stream": true,
        "stream_options": { "include_usage": true },
    });
    if !tools.is_empty() {
        body["tools"] = Value::Array(tools);
    }
    body
}

/// One kernel message becomes one chat message, plus one `tool` message per
/// tool result (OpenAI keeps tool results out of the user's turn).
fn translate(message: &Message) -> Vec<Value> {
    let text = message.text();
    match message.role {
        Role::Assistant => {
            let calls: Vec<Value> = message
                .content
                .iter()
                .filter_map(|b| match b {
                    Block::ToolUse { id, name, input } => Some(json!({
                        "id": id,
                        "type": "function",
                        "function": { "name": name, "arguments": input.to_string() },
                    })),
                    _ => None,
                })
                .collect();
            let mut out = json!({ "role": "assistant", "content": text });
            if !calls.is_empty() {
                out["tool_calls"] = Value::Array(calls);
            }
            vec![out]
        }
        Role::User => {
            let mut out: Vec<Value> = message
                .content
                .iter()
                .filter_map(|b| match b {
                    Block::ToolResult {
                        tool_use_id,
                        content,
                        ..
                    } => Some(json!({
                        "role": "tool",
                        "tool_call_id": tool_use_id,
                        "content": content,
                    })),
                    _ => None,
                })
                .collect();
            if !text.is_empty() {
                out.push(json!({ "role": "user", "content": text }));
            }
            out
        }
    }
}

#[derive(Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
}

#[derive(Default)]
pub(super) struct Assembler {
    text: String,
    /// Text not yet taken by `take_text`.
    fresh: String,
    calls: Vec<(u64, PartialCall)>,
    usage: Usage,
    finish: Option<String>,
}

impl StreamAssembler for Assembler {
    fn on_event(&mut self, ev: &SseEvent) -> Result<bool, LlmError> {
        if ev.data.trim() == "[DONE]" {
            return Ok(true);
        }
        let v: Value = serde_json::from_str(&ev.data)
            .map_err(|e| LlmError::Protocol(format!("chunk is not JSON: {e}")))?;
        if let Some(error) = v.get("error") {
            return Err(LlmError::Protocol(format!(
                "provider error: {}",
                error["message"].as_str().unwrap_or("unknown")
            )));
        }
        if let Some(usage) = v.get("usage").filter(|u| u.is_object()) {
            self.usage.input_tokens = usage["prompt_tokens"].as_u64().unwrap_or(0);
            self.usage.output_tokens = usage["completion_tokens"].as_u64().unwrap_or(0);
        }
        let Some(choice) = v["choices"].get(0) else {
            return Ok(false);
        };
        let delta = &choice["delta"];
        if let Some(text) = delta["content"].as_str() {
            self.text.push_str(text);
            self.fresh.push_str(text);
        }
        for call in delta["tool_calls"].as_array().into_iter().flatten() {
            let index = call["index"].as_u64().unwrap_or(0);
            let slot = match self.calls.iter().position(|(i, _)| *i == index) {
                Some(pos) => &mut self.calls[pos].1,
                None => {
                    self.calls.push((index, PartialCall::default()));
                    &mut self.calls.last_mut().expect("just pushed").1
                }
            };
            if let Some(id) = call["id"].as_str() {
                slot.id = id.to_owned();
            }
            if let Some(name) = call["function"]["name"].as_str() {
                slot.name.push_str(name);
            }
            if let Some(args) = call["function"]["arguments"].as_str() {
                slot.arguments.push_str(args);
            }
        }
        if let Some(reason) = choice["finish_reason"].as_str() {
            self.finish = Some(reason.to_owned());
        }
        Ok(false)
    }

    fn take_text(&mut self) -> String {
        std::mem::take(&mut self.fresh)
    }

    fn finish(self: Box<Self>) -> Result<Completion, LlmError> {
        let mut content = Vec::new();
        if !self.text.is_empty() {
            content.push(Block::Text { text: self.text });
        }
        for (n, (_, call)) in self.calls.into_iter().enumerate() {
            let input = if call.arguments.trim().is_empty() {
                json!({})
            } else {
                serde_json::from_str(&call.arguments).unwrap_or(Value::String(call.arguments))
            };
            let id = if call.id.is_empty() {
                format!("call_{n}")
            } else {
                call.id
            };
            content.push(Block::ToolUse {
                id,
                name: call.name,
                input,
            });
        }
        let has_calls = content.iter().any(|b| matches!(b, Block::ToolUse { .. }));
        let stop = match self.finish.as_deref() {
            _ if has_calls => StopReason::ToolUse,
            Some("stop") => StopReason::EndTurn,
            Some("length") => StopReason::MaxTokens,
            _ => StopReason::Other,
        };
        Ok(Completion {
            content,
            stop,
            usage: self.usage,
        })
    }
}
