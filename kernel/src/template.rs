//! What a new home starts with, and the app templates the kernel can
//! install without a model.

/// The home's files, with `{owner}` and `{ai_name}` filled in.
pub fn home_files(owner: &str, ai_name: &str) -> Vec<(String, String)> {
    const FILES: &[(&str, &str)] = &[
        ("README.md", include_str!("../templates/home/README.md")),
        (
            "system/profile.md",
            include_str!("../templates/home/system/profile.md"),
        ),
        (
            "system/ai-profile.md",
            include_str!("../templates/home/system/ai-profile.md"),
        ),
        (
            "system/soul.md",
            include_str!("../templates/home/system/soul.md"),
        ),
        (
            "system/privacy.json",
            include_str!("../templates/home/system/privacy.json"),
        ),
        (
            "system/cron.json",
            include_str!("../templates/home/system/cron.json"),
        ),
        (
            "system/memory.md",
            include_str!("../templates/home/system/memory.md"),
        ),
        (
            "agents/skills/README.md",
            include_str!("../templates/home/agents/skills/README.md"),
        ),
    ];
    FILES
        .iter()
        .map(|(path, text)| {
            let filled = text.replace("{owner}", owner).replace("{ai_name}", ai_name);
            ((*path).to_owned(), filled)
        })
        .collect()
}

pub struct AppTemplate {
    pub slug: &'static str,
    pub manifest: &'static str,
    pub html: &'static str,
}

pub const APP_TEMPLATES: &[AppTemplate] = &[
    AppTemplate {
        slug: "notes",
        manifest: include_str!("../templates/apps/notes/matrix.json"),
        html: include_str!("../templates/apps/notes/index.html"),
    },
    AppTemplate {
        slug: "todo",
        manifest: include_str!("../templates/apps/todo/matrix.json"),
        html: include_str!("../templates/apps/todo/index.html"),
    },
    AppTemplate {
        slug: "counter",
        manifest: include_str!("../templates/apps/counter/matrix.json"),
        html: include_str!("../templates/apps/counter/index.html"),
    },
];

pub fn app_template(slug: &str) -> Option<&'static AppTemplate> {
    APP_TEMPLATES.iter().find(|t| t.slug == slug)
}

/// The display name `system/ai-profile.md` gives (its `name:` line, else
/// its first heading).
pub fn ai_display_name(profile: &str) -> Option<String> {
    let from_field = profile.lines().find_map(|l| l.trim().strip_prefix("name:"));
    let from_heading = || profile.lines().find_map(|l| l.trim().strip_prefix("# "));
    from_field
        .or_else(from_heading)
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_filled_and_parse() {
        let files = home_files("Alice", "Alice's AI");
        let profile = &files
            .iter()
            .find(|(p, _)| p == "system/ai-profile.md")
            .unwrap()
            .1;
        assert_eq!(ai_display_name(profile).as_deref(), Some("Alice's AI"));
        assert!(!files
            .iter()
            .any(|(_, t)| t.contains("{owner}") || t.contains("{ai_name}")));
        let privacy = &files
            .iter()
            .find(|(p, _)| p == "system/privacy.json")
            .unwrap()
            .1;
        serde_json::from_str::<serde_json::Value>(privacy).unwrap();
        for t in APP_TEMPLATES {
            serde_json::from_str::<serde_json::Value>(t.manifest).unwrap();
        }
    }
}
