//! The system prompt: the SOUL in every run; everything else depends on who
//! is asking. Guest runs read only the files their privacy group lists.

use crate::home::{Home, HomeResult};
use crate::privacy::Audience;
use crate::tools::MEMORY_FILE;

pub struct Situation<'a> {
    pub owner: &'a str,
    pub ai: &'a str,
    pub sender: &'a str,
    pub room: &'a str,
    pub now: String,
}

fn section(out: &mut String, title: &str, body: &str) {
    if !body.trim().is_empty() {
        out.push_str(&format!("\n\n## {title}\n\n{}", body.trim()));
    }
}

pub fn system_prompt(home: &Home, audience: &Audience, s: &Situation<'_>) -> HomeResult<String> {
    let mut out = home.read("system/soul.md").unwrap_or_default();
    match audience {
        Audience::Owner => {
            section(
                &mut out,
                "Who you are",
                &home.read("system/ai-profile.md").unwrap_or_default(),
            );
            section(
                &mut out,
                "Your owner",
                &home.read("system/profile.md").unwrap_or_default(),
            );
            section(
                &mut out,
                "Memory",
                &home.read(MEMORY_FILE).unwrap_or_default(),
            );
            if home.exists("agents/skills") {
                for file in home.list("agents/skills", 50)? {
                    if file.ends_with(".md") && !file.ends_with("README.md") {
                        section(
                            &mut out,
                            &format!("Skill: {file}"),
                            &home.read(&file).unwrap_or_default(),
                        );
                    }
                }
            }
            section(
                &mut out,
                "Situation",
                &format!(
                    "You are {ai}, talking with your owner {owner} in room {room}. It is {now}.\n\
                     The owner's home is a git repository you work on with your tools: every \
                     change is a commit. Apps live in apps/<slug>/index.html with matrix.json; \
                     their data in data/<slug>/. Your personality is system/soul.md; the owner \
                     may ask you to change it.",
                    ai = s.ai,
                    owner = s.owner,
                    room = s.room,
                    now = s.now
                ),
            );
        }
        Audience::Guest { context, group, .. } => {
            for file in context {
                if let Ok(text) = home.read(file) {
                    section(&mut out, file, &text);
                }
            }
            section(
                &mut out,
                "Situation",
                &format!(
                    "You are {ai}, the assistant of {owner}. You are talking with {sender} \
                     (privacy group: {group}) in room {room}, not with your owner. It is {now}.\n\
                     You know only what is written above. You cannot see {owner}'s files, notes \
                     or other conversations here; if asked, say so politely and offer to pass a \
                     message on.",
                    ai = s.ai,
                    owner = s.owner,
                    sender = s.sender,
                    room = s.room,
                    now = s.now
                ),
            );
        }
    }
    Ok(out)
}
