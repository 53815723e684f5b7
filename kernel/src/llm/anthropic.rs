//! The Anthropic Messages API (`POST /v1/messages`, streamed).

use serde_json::{json, Value};

use super::sse::SseEvent;
use super::types::{Block, Completion, LlmError, Request, StopReason, Usage};
use super::StreamAssembler;

pub(super) fn body(model: &str, req: &Request) -> Value {
    json!({
        "model": model,
        "max_tokens": req.max_tokens,
        "system": req.system,
        "messages": req.messages,
        "tools": req.tools,
        "stream": true,
    })
}

enum Partial {
    Text(String),
    Tool {
        id: String,
        name: String,
        json: String,
    },
}

#[derive(Default)]
pub(super) struct Assembler {
    blocks: Vec<(u64, Partial)>,
    /// Text not yet taken by `take_text`.
    fresh: String,
    usage: Usage,
    stop: Option<String>,
}

fn protocol(what: &str) -> LlmError {
    LlmError::Protocol(what.to_owned())
}

impl Assembler {
    fn block_mut(&mut self, index: u64) -> Result<&mut Partial, LlmError> {
        self.blocks
            .iter_mut()
            .find(|(i, _)| *i == index)
            .map(|(_, p)| p)
            .ok_or_else(|| protocol("delta for a block that was never started"))
    }
}

impl StreamAssembler for Assembler {
    fn on_event(&mut self, ev: &SseEvent) -> Result<bool, LlmError> {
        let v: Value = serde_json::from_str(&ev.data)
            .map_err(|e| LlmError::Protocol(format!("event is not JSON: {e}")))?;
        let kind = v["type"].as_str().or(ev.event.as_deref()).unwrap_or("");
        match kind {
            "message_start" => {
                self.usage.input_tokens =
                    v["message"]["usage"]["input_tokens"].as_u64().unwrap_or(0);
            }
            "content_block_start" => {
                let index = v["index"]
                    .as_u64()
                    .ok_or_else(|| protocol("block without index"))?;
                let block = &v["content_block"];
                let partial = match block["type"].as_str() {
                    Some("tool_use") => Partial::Tool {
                        id: block["id"].as_str().unwrap_or_default().to_owned(),
                        name: block["name"].as_str().unwrap_or_default().to_owned(),
                        json: String::new(),
                    },
                    _ => Partial::Text(block["text"].as_str().unwrap_or_default().to_owned()),
                };
                self.blocks.push((index, partial));
            }
            "content_block_delta" => {
                let index = v["index"]
                    .as_u64()
                    .ok_or_else(|| protocol("delta without index"))?;
                let delta = &v["delta"];
                match (self.block_mut(index)?, delta["type"].as_str()) {
                    (Partial::Text(text), Some("text_delta")) => {
                        let piece = delta["text"].as_str().unwrap_or_default();
                        text.push_str(piece);
                        self.fresh.push_str(piece);
                    }
                    (Partial::Tool { json, .. }, Some("input_json_delta")) => {
                        json.push_str(delta["partial_json"].as_str().unwrap_or_default())
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(stop) = v["delta"]["stop_reason"].as_str() {
                    self.stop = Some(stop.to_owned());
                }
                if let Some(out) = v["usage"]["output_tokens"].as_u64() {
                    self.usage.output_tokens = out;
                }
            }
            "message_stop" => return Ok(true),
            "error" => {
                return Err(LlmError::Protocol(format!(
                    "provider error: {}",
                    v["error"]["message"].as_str().unwrap_or("unknown")
                )))
            }
            _ => {}
        }
        Ok(false)
    }

    fn take_text(&mut self) -> String {
        std::mem::take(&mut self.fresh)
    }

    fn finish(self: Box<Self>) -> Result<Completion, LlmError> {
        let mut content = Vec::new();
        for (_, partial) in self.blocks {
            content.push(match partial {
                Partial::Text(text) => Block::Text { text },
                Partial::Tool { id, name, json } => {
                    let input = if json.trim().is_empty() {
                        json!({})
                    } else {
                        // A malformed argument string is passed on as-is; the
                        // tool layer answers it with an error the model sees.
                        serde_json::from_str(&json).unwrap_or(Value::String(json))
                    };
                    Block::ToolUse { id, name, input }
                }
            });
        }
        let stop = match self.stop.as_deref() {
            Some("end_turn") | Some("stop_sequence") => StopReason::EndTurn,
            Some("tool_use") => StopReason::ToolUse,
            Some("max_tokens") => StopReason::MaxTokens,
            _ => StopReason::Other,
        };
        Ok(Completion {
            content,
            stop,
            usage: self.usage,
        })
    }
}
