//! What every run leaves behind: who asked, where, with which model, which
//! tools ran and how they ended, tokens, cost and time. The server stores
//! these records; the usage API and the AI itself read them back.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::llm::Usage;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub name: String,
    pub ok: bool,
    /// A short account: the arguments that matter, or the error.
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub started_ms: i64,
    pub owner: String,
    pub ai: String,
    pub sender: String,
    pub room: String,
    /// `owner`, or the privacy group the sender fell in.
    pub audience: String,
    pub provider: String,
    pub model: String,
    /// What the person asked (first 200 characters).
    pub request: String,
    pub tools: Vec<ToolCall>,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub cost_usd: f64,
    pub duration_ms: u64,
    /// Time spent waiting for the model, so `duration_ms - model_ms` is what
    /// the kernel itself added.
    pub model_ms: u64,
    /// The kernel's own time in the run (everything but waiting for the
    /// model), in microseconds.
    #[serde(default)]
    pub kernel_us: u64,
    pub rounds: u32,
    pub error: Option<String>,
}

/// Dollars per million tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Price {
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
}

pub fn cost(prices: &HashMap<String, Price>, model: &str, usage: Usage) -> f64 {
    prices.get(model).map_or(0.0, |p| {
        (usage.input_tokens as f64 * p.input_per_mtok
            + usage.output_tokens as f64 * p.output_per_mtok)
            / 1_000_000.0
    })
}

impl RunRecord {
    /// One line for the AI's own "what did you do" answers.
    pub fn summary(&self) -> String {
        let when = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(self.started_ms)
            .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_default();
        let tools: Vec<String> = self
            .tools
            .iter()
            .map(|t| {
                format!(
                    "{}({}){}",
                    t.name,
                    t.detail,
                    if t.ok { "" } else { " failed" }
                )
            })
            .collect();
        format!(
            "{when} {} asked {:?} in {}; tools: [{}]; {} in/{} out tokens, ${:.4}{}",
            self.sender,
            self.request,
            self.room,
            tools.join(", "),
            self.tokens_in,
            self.tokens_out,
            self.cost_usd,
            self.error
                .as_ref()
                .map(|e| format!("; error: {e}"))
                .unwrap_or_default()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_uses_the_price_table() {
        let mut prices = HashMap::new();
        prices.insert(
            "m".to_owned(),
            Price {
                input_per_mtok: 3.0,
                output_per_mtok: 15.0,
            },
        );
        let usage = Usage {
            input_tokens: 1_000_000,
            output_tokens: 100_000,
        };
        assert!((cost(&prices, "m", usage) - 4.5).abs() < 1e-9);
        assert_eq!(cost(&prices, "other", usage), 0.0);
    }
}
