//! Apps: `apps/<slug>/index.html` and `matrix.json`, served to the owner.

use serde_json::{json, Value};

use super::args::{blocking, committed, optional, required};
use crate::home::{Home, HomeResult};
use crate::host::{Host, RunContext};
use crate::template::app_template;

pub fn is_valid_slug(slug: &str) -> bool {
    (1..=40).contains(&slug.len())
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-')
}

pub fn app_manifest(name: &str, description: &str) -> String {
    let manifest = json!({ "name": name, "description": description });
    serde_json::to_string_pretty(&manifest).unwrap_or_default() + "\n"
}

pub async fn run<H: Host>(
    ctx: &RunContext<H>,
    name: &str,
    input: &Value,
) -> Result<String, String> {
    match name {
        "write_app" => {
            let slug = required(input, "slug")?.to_owned();
            if !is_valid_slug(&slug) {
                return Err("The slug must be 1-40 lowercase letters, digits or dashes.".into());
            }
            let title = required(input, "name")?.to_owned();
            let html = required(input, "html")?.to_owned();
            let manifest = app_manifest(&title, optional(input, "description").unwrap_or(""));
            let existed = ctx.home.exists(&format!("apps/{slug}/index.html"));
            let verb = if existed { "Update" } else { "Create" };
            let message = format!("{verb} app {slug}: {title}");
            let s = slug.clone();
            let commit = blocking(&ctx.home, move |h| {
                h.write_files(
                    &[
                        (&format!("apps/{s}/index.html"), &html),
                        (&format!("apps/{s}/matrix.json"), &manifest),
                    ],
                    &message,
                )
            })
            .await?;
            Ok(format!(
                "{} The app is at {}",
                committed(commit),
                ctx.host.app_url(&ctx.owner, &slug)
            ))
        }
        "list_apps" => Ok(list(ctx).await?.join("\n")),
        "install_app_template" => {
            let slug = required(input, "template")?.to_owned();
            install(ctx, &slug).await
        }
        _ => Err(format!("There is no tool called {name}.")),
    }
}

/// Installs a bundled template as `apps/<slug>/`.
pub async fn install<H: Host>(ctx: &RunContext<H>, slug: &str) -> Result<String, String> {
    let template = app_template(slug).ok_or_else(|| {
        format!("There is no template called {slug}; there are notes, todo and counter.")
    })?;
    let message = format!("Install app {slug} from its template");
    let commit = blocking(&ctx.home, move |h| {
        h.write_files(
            &[
                (&format!("apps/{}/index.html", template.slug), template.html),
                (
                    &format!("apps/{}/matrix.json", template.slug),
                    template.manifest,
                ),
            ],
            &message,
        )
    })
    .await?;
    Ok(format!(
        "{} Open it at {}",
        committed(commit),
        ctx.host.app_url(&ctx.owner, slug)
    ))
}

/// Each app in a home (`apps/<slug>/index.html`, at most `limit`), with
/// its manifest (`{}` when it has none or it is not a JSON object).
pub fn installed(home: &Home, limit: usize) -> HomeResult<Vec<(String, Value)>> {
    if !home.exists("apps") {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for entry in home.list("apps", limit.saturating_mul(8).max(1000))? {
        let Some(slug) = entry
            .strip_prefix("apps/")
            .and_then(|e| e.strip_suffix("/index.html"))
        else {
            continue;
        };
        if !is_valid_slug(slug) || out.len() >= limit {
            continue;
        }
        let manifest: Value = home
            .read(&format!("apps/{slug}/matrix.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .filter(Value::is_object)
            .unwrap_or_else(|| json!({}));
        out.push((slug.to_owned(), manifest));
    }
    Ok(out)
}

/// "name — url" for each app.
pub async fn list<H: Host>(ctx: &RunContext<H>) -> Result<Vec<String>, String> {
    let apps = blocking(&ctx.home, |h| installed(h, 1000)).await?;
    if apps.is_empty() {
        return Ok(vec!["No apps yet.".into()]);
    }
    Ok(apps
        .into_iter()
        .map(|(slug, manifest)| {
            let title = manifest["name"].as_str().unwrap_or(&slug);
            format!("{title} ({slug}): {}", ctx.host.app_url(&ctx.owner, &slug))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert!(is_valid_slug("todo-2"));
        for bad in ["", "-x", "Todo", "a/b", "..", "a b"] {
            assert!(!is_valid_slug(bad), "{bad}");
        }
    }
}
