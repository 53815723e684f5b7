//! The tools a run may call. Which of them a run gets is decided before the
//! model is asked (see `privacy`), and checked again here, so a tool that was
//! not offered cannot be called.

mod apps;
mod args;
mod files;
mod memory;
mod messaging;
mod reminders;

use serde_json::{json, Value};

use crate::host::{Host, RunContext};
use crate::llm::ToolSpec;
use crate::privacy::Audience;

pub use apps::{app_manifest, installed as installed_apps, is_valid_slug};
pub use apps::{install as install_app, list as list_apps};
pub use args::blocking;
pub use memory::MEMORY_FILE;
pub use memory::{recall, remember};
pub use reminders::{add_reminder, When};

struct ToolDef {
    name: &'static str,
    description: &'static str,
    /// Property name → (JSON type, description); all listed are required
    /// unless the description starts with "optional".
    params: &'static [(&'static str, &'static str, &'static str)],
}

const TOOLS: &[ToolDef] = &[
    ToolDef { name: "read_file", description: "Read a text file from the owner's home.", params: &[("path", "string", "path inside the home, e.g. system/soul.md")] },
    ToolDef { name: "write_file", description: "Create or replace a text file in the home (committed to git).", params: &[("path", "string", "path inside the home"), ("content", "string", "the whole new content"), ("message", "string", "optional commit message")] },
    ToolDef { name: "edit_file", description: "Replace one exact occurrence of text in a file (committed to git).", params: &[("path", "string", "path inside the home"), ("old_text", "string", "text that occurs exactly once"), ("new_text", "string", "replacement text")] },
    ToolDef { name: "delete_file", description: "Delete a file from the home (committed; restorable from history).", params: &[("path", "string", "path inside the home")] },
    ToolDef { name: "list_files", description: "List files under a folder of the home.", params: &[("path", "string", "optional folder, default the whole home")] },
    ToolDef { name: "search_files", description: "Find lines containing some text in the home's files.", params: &[("query", "string", "text to look for, case-insensitive")] },
    ToolDef { name: "git_log", description: "The home's history, newest first, optionally for one file.", params: &[("path", "string", "optional file"), ("limit", "integer", "optional number of commits, default 20")] },
    ToolDef { name: "git_diff", description: "What one commit changed (default the latest).", params: &[("revision", "string", "optional commit id"), ("path", "string", "optional file")] },
    ToolDef { name: "restore_file", description: "Bring a file back as it was at a commit (committed as a new change).", params: &[("path", "string", "file to restore"), ("revision", "string", "commit id to take it from")] },
    ToolDef { name: "write_app", description: "Create or update a web app: apps/<slug>/index.html plus matrix.json. The page can call window.MatrixOS.readData(key) and writeData(key, value) to keep data. It is served with the desktop's theme (readable type, themed buttons and inputs, light and dark, phone-sized; classes card, row, muted and button.secondary), so plain semantic HTML looks finished; add inline <style> only for what is particular to the app. Only inline scripts and styles load.", params: &[("slug", "string", "short name: lowercase letters, digits, dashes"), ("name", "string", "title shown to the owner"), ("html", "string", "the complete index.html"), ("description", "string", "optional one-line description")] },
    ToolDef { name: "list_apps", description: "List the owner's apps with their addresses.", params: &[] },
    ToolDef { name: "install_app_template", description: "Install a bundled app: notes, todo or counter.", params: &[("template", "string", "notes, todo or counter")] },
    ToolDef { name: "remember", description: "Keep a note in memory (system/memory.md).", params: &[("note", "string", "what to remember")] },
    ToolDef { name: "recall", description: "Read back remembered notes, optionally only those containing some text.", params: &[("query", "string", "optional text to filter by")] },
    ToolDef { name: "set_reminder", description: "Post a reminder in this room later: give exactly one of at (RFC 3339 time), in_minutes, or cron (five fields, UTC).", params: &[("text", "string", "what to remind about"), ("at", "string", "optional RFC 3339 time"), ("in_minutes", "number", "optional minutes from now"), ("cron", "string", "optional cron expression for repeating reminders")] },
    ToolDef { name: "list_reminders", description: "List pending reminders.", params: &[] },
    ToolDef { name: "cancel_reminder", description: "Cancel a reminder by id.", params: &[("id", "string", "reminder id, e.g. r3")] },
    ToolDef { name: "send_message", description: "Send a text message to a room the AI is in.", params: &[("room_id", "string", "the room id"), ("text", "string", "the message")] },
    ToolDef { name: "recent_activity", description: "What the AI did recently: each run's requester, request, tools called and outcome, tokens and cost.", params: &[("limit", "integer", "optional number of runs, default 10")] },
];

fn spec(def: &ToolDef) -> ToolSpec {
    let mut properties = serde_json::Map::new();
    let mut required = Vec::new();
    for (name, kind, description) in def.params {
        properties.insert(
            (*name).into(),
            json!({ "type": kind, "description": description }),
        );
        if !description.starts_with("optional") {
            required.push(*name);
        }
    }
    ToolSpec {
        name: def.name.into(),
        description: def.description.into(),
        input_schema: json!({ "type": "object", "properties": properties, "required": required }),
    }
}

/// The tools offered to a run for `audience`.
pub fn specs_for(audience: &Audience) -> Vec<ToolSpec> {
    TOOLS
        .iter()
        .filter(|d| audience.may_use(d.name))
        .map(spec)
        .collect()
}

/// The outcome of one tool call: the text the model sees, and whether it
/// worked.
pub struct ToolOutcome {
    pub ok: bool,
    pub output: String,
}

/// Runs one tool call, refusing any tool the audience was not given.
pub async fn execute<H: Host>(
    ctx: &RunContext<H>,
    audience: &Audience,
    name: &str,
    input: &Value,
) -> ToolOutcome {
    if !TOOLS.iter().any(|d| d.name == name) {
        return ToolOutcome {
            ok: false,
            output: format!("There is no tool called {name}."),
        };
    }
    if !audience.may_use(name) {
        tracing::warn!(tool = name, sender = %ctx.sender, "tool refused for this audience");
        return ToolOutcome {
            ok: false,
            output: format!("The tool {name} is not available in this conversation."),
        };
    }
    if !input.is_object() {
        return ToolOutcome {
            ok: false,
            output: "Tool input must be a JSON object.".into(),
        };
    }
    let result = match name {
        "read_file" | "write_file" | "edit_file" | "delete_file" | "list_files"
        | "search_files" | "git_log" | "git_diff" | "restore_file" => {
            files::run(ctx, name, input).await
        }
        "write_app" | "list_apps" | "install_app_template" => apps::run(ctx, name, input).await,
        "remember" | "recall" => memory::run(ctx, name, input).await,
        "set_reminder" | "list_reminders" | "cancel_reminder" => {
            reminders::run(ctx, name, input).await
        }
        "send_message" => messaging::send(ctx, input).await,
        "recent_activity" => Ok(messaging::recent_activity(ctx, input)),
        _ => Err(format!("There is no tool called {name}.")),
    };
    match result {
        Ok(output) => ToolOutcome { ok: true, output },
        Err(output) => ToolOutcome { ok: false, output },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guests_get_only_granted_tools() {
        let guest = Audience::Guest {
            group: "public".into(),
            context: vec![],
            tools: vec!["list_apps".into()],
        };
        let names: Vec<String> = specs_for(&guest).into_iter().map(|s| s.name).collect();
        assert_eq!(names, vec!["list_apps"]);
        assert_eq!(specs_for(&Audience::Owner).len(), TOOLS.len());
        let write = spec(&TOOLS[1]);
        assert_eq!(write.input_schema["required"], json!(["path", "content"]));
    }
}
