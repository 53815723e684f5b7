//! LLM providers: the Anthropic Messages API and OpenAI-compatible chat
//! completions, both streamed and both with tool use.

mod anthropic;
mod openai;
pub mod sse;
pub mod types;

use std::time::Duration;

use serde::Deserialize;

pub use types::*;

use sse::{SseEvent, SseParser};

/// The most a single streamed answer may be before it is cut off.
const MAX_STREAM_BYTES: usize = 8 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// No model: the offline kernel answers.
    None,
    Anthropic,
    /// Any OpenAI-compatible chat completions endpoint.
    OpenAi,
}

/// Turns a provider's stream events into one [`Completion`].
trait StreamAssembler: Send {
    /// Takes one event; `true` when the stream says it is complete.
    fn on_event(&mut self, ev: &SseEvent) -> Result<bool, LlmError>;
    fn finish(self: Box<Self>) -> Result<Completion, LlmError>;
    /// The answer's text written since the last call (for a live view).
    fn take_text(&mut self) -> String;
}

/// A configured model endpoint.
#[derive(Clone)]
pub struct Provider {
    kind: ProviderKind,
    base_url: String,
    model: String,
    api_key: Option<String>,
    http: reqwest::Client,
}

impl Provider {
    pub fn new(
        kind: ProviderKind,
        base_url: &str,
        model: &str,
        api_key: Option<String>,
        timeout: Duration,
    ) -> Result<Self, LlmError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| LlmError::Connect(e.to_string()))?;
        Ok(Self {
            kind,
            base_url: base_url.trim_end_matches('/').to_owned(),
            model: model.to_owned(),
            api_key,
            http,
        })
    }

    pub fn kind(&self) -> ProviderKind {
        self.kind
    }

    pub fn model(&self) -> &str {
        &self.model
    }

    pub fn name(&self) -> &'static str {
        match self.kind {
            ProviderKind::None => "offline",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::OpenAi => "openai",
        }
    }

    /// Sends one request and assembles the streamed answer; `on_text`
    /// sees the answer's text as it streams in, piece by piece.
    pub async fn complete(
        &self,
        req: &Request,
        on_text: &mut (dyn FnMut(&str) + Send),
    ) -> Result<Completion, LlmError> {
        let (builder, mut assembler): (_, Box<dyn StreamAssembler>) = match self.kind {
            ProviderKind::Anthropic => {
                let mut b = self
                    .http
                    .post(format!("{}/v1/messages", self.base_url))
                    .header("anthropic-version", "2023-06-01")
                    .json(&anthropic::body(&self.model, req));
                if let Some(key) = &self.api_key {
                    b = b.header("x-api-key", key);
                }
                (b, Box::<anthropic::Assembler>::default())
            }
            ProviderKind::OpenAi => {
                let mut b = self
                    .http
                    .post(format!("{}/chat/completions", self.base_url))
                    .json(&openai::body(&self.model, req));
                if let Some(key) = &self.api_key {
                    b = b.bearer_auth(key);
                }
                (b, Box::<openai::Assembler>::default())
            }
            ProviderKind::None => {
                return Err(LlmError::Connect("no model provider is configured".into()))
            }
        };
        let mut response = builder.send().await?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            return Err(LlmError::Status {
                status: status.as_u16(),
                body: text.chars().take(300).collect(),
            });
        }
        let mut parser = SseParser::default();
        let mut received = 0usize;
        while let Some(chunk) = response.chunk().await? {
            received += chunk.len();
            if received > MAX_STREAM_BYTES {
                return Err(LlmError::Protocol("the answer is too long".into()));
            }
            for event in parser.push(&chunk) {
                let complete = assembler.on_event(&event)?;
                let text = assembler.take_text();
                if !text.is_empty() {
                    on_text(&text);
                }
                if complete {
                    return assembler.finish();
                }
            }
        }
        if let Some(event) = parser.finish() {
            assembler.on_event(&event)?;
        }
        assembler.finish()
    }
}
