//! One run: pick the audience, build the context, call the model and the
//! tools in turns until it answers, and account for all of it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::KernelConfig;
use crate::history;
use crate::home::Home;
use crate::host::{Host, RunContext};
use crate::ledger::{cost, RunRecord, ToolCall};
use crate::llm::{Block, LlmError, Message, Provider, ProviderKind, Request, Role, Usage};
use crate::offline;
use crate::privacy::{Audience, PrivacyPolicy};
use crate::prompt::{system_prompt, Situation};
use crate::tools::{self, blocking};

/// A message for the AI to answer.
pub struct Job {
    pub home: Arc<Home>,
    pub owner: String,
    pub ai: String,
    pub sender: String,
    pub room: String,
    pub text: String,
    /// The room's stored history, oldest first.
    pub history: Vec<Message>,
}

pub struct RunOutcome {
    pub reply: String,
    /// The room's history including this run, trimmed.
    pub history: Vec<Message>,
    pub record: RunRecord,
}

pub struct Kernel<H: Host> {
    config: KernelConfig,
    provider: Option<Provider>,
    host: Arc<H>,
}

impl<H: Host> Kernel<H> {
    pub fn new(config: KernelConfig, host: Arc<H>) -> Result<Self, LlmError> {
        let provider = match config.provider {
            ProviderKind::None => None,
            kind => Some(Provider::new(
                kind,
                &config.base_url(),
                &config.model,
                config.api_key(),
                Duration::from_secs(config.timeout_secs),
            )?),
        };
        Ok(Self {
            config,
            provider,
            host,
        })
    }

    pub fn config(&self) -> &KernelConfig {
        &self.config
    }

    pub fn host(&self) -> &Arc<H> {
        &self.host
    }

    pub async fn run(&self, job: Job) -> RunOutcome {
        let started = Instant::now();
        let now_ms = chrono::Utc::now().timestamp_millis();
        let privacy = blocking(&job.home, |h| Ok(h.read("system/privacy.json").ok()))
            .await
            .ok()
            .flatten();
        let audience =
            PrivacyPolicy::parse(privacy.as_deref()).audience_for(&job.owner, &job.sender);
        let ctx = RunContext {
            home: job.home,
            host: self.host.clone(),
            owner: job.owner,
            ai: job.ai,
            sender: job.sender,
            room: job.room,
            now_ms,
        };
        let mut record = RunRecord {
            started_ms: now_ms,
            owner: ctx.owner.clone(),
            ai: ctx.ai.clone(),
            sender: ctx.sender.clone(),
            room: ctx.room.clone(),
            audience: audience.label().to_owned(),
            provider: self
                .provider
                .as_ref()
                .map_or("offline", |p| p.name())
                .to_owned(),
            model: self
                .provider
                .as_ref()
                .map(|p| p.model().to_owned())
                .unwrap_or_default(),
            request: job.text.chars().take(200).collect(),
            tools: Vec::new(),
            tokens_in: 0,
            tokens_out: 0,
            cost_usd: 0.0,
            duration_ms: 0,
            model_ms: 0,
            kernel_us: 0,
            rounds: 0,
            error: None,
        };
        let mut history = job.history;
        let question = Message::user_text(format!("{}: {}", ctx.sender, job.text));
        let (reply, added, model_wait) = match &self.provider {
            None => {
                let reply = offline::answer(&ctx, &audience, &job.text, &mut record).await;
                let added = vec![question, Message::assistant_text(reply.clone())];
                (reply, added, Duration::ZERO)
            }
            Some(provider) => {
                self.converse(provider, &ctx, &audience, &history, question, &mut record)
                    .await
            }
        };
        history.extend(added);
        history::trim(&mut history, self.config.context_tokens);
        let total = started.elapsed();
        record.duration_ms = total.as_millis() as u64;
        record.model_ms = model_wait.as_millis() as u64;
        record.kernel_us = total.saturating_sub(model_wait).as_micros() as u64;
        tracing::info!(
            ai = %record.ai, sender = %record.sender, room = %record.room, audience = %record.audience,
            tools = record.tools.len(), tokens_in = record.tokens_in, tokens_out = record.tokens_out,
            duration_ms = record.duration_ms, error = record.error.as_deref(), "AI run finished"
        );
        RunOutcome {
            reply,
            history,
            record,
        }
    }

    /// The model/tool loop. Returns the reply, the messages to add to the
    /// history and the time spent waiting for the model.
    async fn converse(
        &self,
        provider: &Provider,
        ctx: &RunContext<H>,
        audience: &Audience,
        history: &[Message],
        question: Message,
        record: &mut RunRecord,
    ) -> (String, Vec<Message>, Duration) {
        let system = {
            let audience = audience.clone();
            let (owner, ai) = (ctx.owner.clone(), ctx.ai.clone());
            let (sender, room) = (ctx.sender.clone(), ctx.room.clone());
            let now = chrono::Utc::now()
                .format("%Y-%m-%d %H:%M UTC (%A)")
                .to_string();
            blocking(&ctx.home, move |h| {
                let situation = Situation {
                    owner: &owner,
                    ai: &ai,
                    sender: &sender,
                    room: &room,
                    now,
                };
                system_prompt(h, &audience, &situation)
            })
            .await
            .unwrap_or_default()
        };
        let mut messages = match audience {
            Audience::Owner => history.to_vec(),
            Audience::Guest { .. } => history::words_only(history),
        };
        let prefix = messages.len();
        messages.push(question);
        let tools = tools::specs_for(audience);
        let mut usage = Usage::default();
        let mut waited = Duration::ZERO;
        let reply = loop {
            if record.rounds >= self.config.max_rounds {
                record.error = Some(format!("stopped after {} model calls", record.rounds));
                break format!(
                    "I stopped after {} steps without finishing. Tell me how to go on, or ask for less at once.",
                    record.rounds
                );
            }
            record.rounds += 1;
            let request = Request {
                system: system.clone(),
                messages: messages.clone(),
                tools: tools.clone(),
                max_tokens: self.config.max_tokens,
            };
            let asked = Instant::now();
            // The owner's own conversation is shown live as it is written
            // (each round's text; the last round's is the answer).
            let live = ctx.sender == ctx.owner;
            let mut so_far = String::new();
            let mut on_text = |piece: &str| {
                if live {
                    so_far.push_str(piece);
                    ctx.host.answer_progress(&ctx.owner, &ctx.room, &so_far);
                }
            };
            let result = provider.complete(&request, &mut on_text).await;
            waited += asked.elapsed();
            let completion = match result {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, room = %ctx.room, "model call failed");
                    record.error = Some(e.to_string());
                    break format!("Sorry, I could not get an answer from the model ({e}).");
                }
            };
            usage.input_tokens += completion.usage.input_tokens;
            usage.output_tokens += completion.usage.output_tokens;
            let mut content = completion.content;
            if content.is_empty() {
                content.push(Block::Text {
                    text: "(no answer)".into(),
                });
            }
            let calls: Vec<(String, String, serde_json::Value)> = content
                .iter()
                .filter_map(|b| match b {
                    Block::ToolUse { id, name, input } => {
                        Some((id.clone(), name.clone(), input.clone()))
                    }
                    _ => None,
                })
                .collect();
            let answer = Message {
                role: Role::Assistant,
                content,
            };
            let text = answer.text();
            messages.push(answer);
            if calls.is_empty() {
                break text;
            }
            let mut results = Vec::new();
            for (id, name, input) in calls {
                let outcome = tools::execute(ctx, audience, &name, &input).await;
                record.tools.push(ToolCall {
                    name: name.clone(),
                    ok: outcome.ok,
                    detail: describe_call(&input, &outcome.output, outcome.ok),
                });
                results.push(Block::ToolResult {
                    tool_use_id: id,
                    content: outcome.output,
                    is_error: !outcome.ok,
                });
            }
            messages.push(Message {
                role: Role::User,
                content: results,
            });
        };
        record.tokens_in = usage.input_tokens;
        record.tokens_out = usage.output_tokens;
        record.cost_usd = cost(&self.config.prices, provider.model(), usage);
        let reply = if reply.trim().is_empty() {
            "Done.".to_owned()
        } else {
            reply
        };
        let mut added = messages.split_off(prefix);
        if !matches!(added.last(), Some(m) if m.role == Role::Assistant && m.text() == reply) {
            added.push(Message::assistant_text(reply.clone()));
        }
        (reply, added, waited)
    }
}

/// A short record of a call: its path/slug-like arguments, or the error.
fn describe_call(input: &serde_json::Value, output: &str, ok: bool) -> String {
    if !ok {
        return output.chars().take(120).collect();
    }
    let keys = [
        "path", "slug", "template", "room_id", "id", "query", "text", "note",
    ];
    keys.iter()
        .filter_map(|k| {
            input[*k]
                .as_str()
                .map(|v| format!("{k}={}", v.chars().take(60).collect::<String>()))
        })
        .collect::<Vec<_>>()
        .join(" ")
}
