//! The `[ai]` section of the server's configuration.

use std::collections::HashMap;

use serde::Deserialize;

use crate::ledger::Price;
use crate::llm::ProviderKind;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KernelConfig {
    /// Creates and runs AI users at all (server-wide switch).
    pub enabled: bool,
    /// `none` (the offline kernel), `anthropic` or `openai` (any
    /// OpenAI-compatible endpoint: OpenAI, Ollama, llama.cpp, vLLM).
    pub provider: ProviderKind,
    /// Default: `https://api.anthropic.com` or `https://api.openai.com/v1`.
    pub base_url: Option<String>,
    pub model: String,
    /// The environment variable holding the API key.
    pub api_key_env: Option<String>,
    /// Largest answer per model call, in tokens.
    pub max_tokens: u32,
    /// How much conversation history a run carries, in (estimated) tokens.
    pub context_tokens: usize,
    /// Model calls per run before it is stopped (a looping model ends here).
    pub max_rounds: u32,
    /// Seconds one model call may take.
    pub timeout_secs: u64,
    /// Runs in flight across all rooms at once.
    pub max_concurrent_runs: usize,
    /// Dollars per million tokens, by model name.
    pub prices: HashMap<String, Price>,
}

impl Default for KernelConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            provider: ProviderKind::None,
            base_url: None,
            model: String::new(),
            api_key_env: None,
            max_tokens: 2048,
            context_tokens: 24_000,
            max_rounds: 8,
            timeout_secs: 120,
            max_concurrent_runs: 4,
            prices: HashMap::new(),
        }
    }
}

impl KernelConfig {
    pub fn base_url(&self) -> String {
        self.base_url.clone().unwrap_or_else(|| {
            match self.provider {
                ProviderKind::Anthropic => "https://api.anthropic.com",
                _ => "https://api.openai.com/v1",
            }
            .to_owned()
        })
    }

    pub fn api_key(&self) -> Option<String> {
        let var = self.api_key_env.clone().unwrap_or_else(|| {
            match self.provider {
                ProviderKind::Anthropic => "ANTHROPIC_API_KEY",
                _ => "OPENAI_API_KEY",
            }
            .to_owned()
        });
        std::env::var(var).ok().filter(|k| !k.is_empty())
    }
}
