//! The web desktop and app links in a real headless Chromium (Debian's
//! `chromium`, driven by playwright-core from `tests/js/web_desktop.mjs`):
//! an app link opened without a token leads through the sign-in page to
//! the app with no token in any address; another person gets a refusal
//! page; the desktop signs in, lists the apps, chats with the AI (a
//! scripted LLM) and opens the app it built with working data; the cost
//! dashboard shows the ledger's figures; the SOUL edited in the file
//! browser shapes the next answer and is restored from its history, and a
//! broken privacy policy is refused; an app's script cannot read the
//! token, the parent page or another app's data; the phone layout works.
//! Screenshots go to a temporary directory, or to `docs/screenshots/`
//! (the README's pictures) with `MATRIXOS_SCREENSHOTS=docs`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use matrixos_kernel::template::app_template;
use serde_json::json;

use crate::ai_user::with_model;
use crate::common::llm::{text, tool, Reply, ScriptedLlm, TOKENS_IN, TOKENS_OUT};
use crate::common::{start_with, Raw};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// An app whose script tries to reach what it must not, and reports.
const PROBE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>Probe</title></head><body>
<h1>Probe</h1><pre id="out">running</pre>
<script>
(async () => {
  const r = {};
  const attempt = async (name, f) => {
    try { r[name] = "read: " + String(await f()); } catch (e) { r[name] = "blocked: " + e.name; }
  };
  await attempt("storage", () => window.localStorage.getItem("matrixos.session"));
  await attempt("parent", () => window.parent.document.body.innerHTML.length);
  await attempt("top_storage", () => window.top.localStorage.length);
  await attempt("cookie", () => document.cookie);
  const cap = new URLSearchParams(location.search).get("app_token");
  await attempt("other_app", async () => {
    const res = await fetch("/_matrixos/app-data/alice/notes/notes", { headers: { "X-MatrixOS-App-Token": cap } });
    return "status " + res.status + " " + (await res.text());
  });
  await attempt("other_user", async () => {
    const res = await fetch("/_matrixos/app-data/bob/diary/entries", { headers: { "X-MatrixOS-App-Token": cap } });
    return "status " + res.status + " " + (await res.text());
  });
  await attempt("client_api", async () => {
    const res = await fetch("/_matrix/client/v3/account/whoami");
    return "status " + res.status;
  });
  await attempt("own_data", async () => {
    await window.MatrixOS.writeData("probe", { ok: 1 });
    return JSON.stringify(await window.MatrixOS.readData("probe"));
  });
  document.getElementById("out").textContent = JSON.stringify(r);
})();
</script></body></html>"#;

async fn write_app(
    server: &crate::common::TestServer,
    user: &str,
    slug: &str,
    name: &str,
    html: &str,
) {
    let owner = server.services.accounts.user_id(user).expect("user id");
    let home = server.services.ai.home(&owner).await.expect("home");
    let manifest = matrixos_kernel::tools::app_manifest(name, &format!("The {name} app"));
    home.write_files(
        &[
            (&format!("apps/{slug}/index.html"), html),
            (&format!("apps/{slug}/matrix.json"), &manifest),
        ],
        &format!("Create app {slug}"),
    )
    .expect("app written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_desktop_and_app_links_in_chromium() {
    let js = root().join("tests/js");
    assert!(
        js.join("node_modules/playwright-core").is_dir(),
        "playwright-core is not installed: run `npm ci` in tests/js (conformance/run-tests does)"
    );
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "chromium is missing: apt-get install chromium (conformance/run-tests does as root)"
    );
    let llm = ScriptedLlm::start().await;
    let base = llm.base.clone();
    let server = start_with(move |c| with_model(c, "anthropic", base)).await;
    let anon = Raw::new(&server);
    let (alice, _) = anon.register("alice").await;
    let (bob, _) = anon.register("bob").await;

    let counter = app_template("counter").expect("counter template");
    write_app(&server, "alice", "counter", "Counter", counter.html).await;
    write_app(&server, "alice", "probe", "Probe", PROBE).await;
    write_app(
        &server,
        "bob",
        "diary",
        "Diary",
        "<html><head></head><body>Bob's diary</body></html>",
    )
    .await;
    let secret = bob
        .json(
            "PUT",
            "/_matrixos/app-data/bob/diary/entries",
            json!({ "text": "bob's secret" }),
        )
        .await;
    assert_eq!(secret.0, 200, "bob's data: {}", secret.1);

    // Bob writes to alice in a room of theirs: a notification for her.
    let dinner = crate::common::create_room(
        &bob,
        json!({ "name": "Dinner plans", "invite": ["@alice:localhost"] }),
    )
    .await;
    let joined = crate::common::rooms::join(&alice, &dinner).await;
    assert_eq!(joined.0, 200, "alice joins: {}", joined.1);
    crate::common::rooms::send_text(&bob, &dinner, "dinner", "Dinner at 8?").await;

    // What the AI does when asked in the desktop's chat: build the notes
    // app, then answer with its link.
    let notes = app_template("notes").expect("notes template");
    llm.push(tool(
        "write_app",
        json!({ "slug": "notes", "name": "Notes", "description": "Quick notes", "html": notes.html }),
    ));
    llm.push(text(&format!(
        "Your notes app is ready. Open it at {}/_matrixos/apps/alice/notes/",
        server.base_url
    )));

    // Held halfway, so that the browser sees the answer as it is written.
    llm.push(Reply::Held("Arr, hello again!".to_owned()));

    let screenshots = match std::env::var("MATRIXOS_SCREENSHOTS") {
        Ok(v) if v == "docs" => root().join("docs/screenshots"),
        _ => std::env::temp_dir().join("matrixos-screenshots"),
    };
    std::fs::create_dir_all(&screenshots).expect("screenshot dir");
    let cost_per_request = (TOKENS_IN as f64 * 3.0 + TOKENS_OUT as f64 * 15.0) / 1_000_000.0;
    let child = tokio::process::Command::new("node")
        .arg("web_desktop.mjs")
        .current_dir(&js)
        .env("MATRIX_BASE", &server.base_url)
        .env("LLM_BASE", &llm.base)
        .env("PASSWORD", "secret-pw")
        .env("SCREENSHOTS", &screenshots)
        .env("COST_PER_REQUEST", cost_per_request.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs (Node.js 20 or later must be installed)");
    let output = tokio::time::timeout(Duration::from_secs(240), child.wait_with_output())
        .await
        .expect("the browser test ends by itself")
        .expect("node's output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("PASSED"),
        "browser test failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    for part in [
        "app link signs in",
        "no token in any address",
        "refusal",
        "api clients keep json",
        "desktop lists apps",
        "notifications",
        "chat answer",
        "answer streams",
        "no layout shift",
        "app window data",
        "sandbox",
        "windows move",
        "dashboard equals ledger",
        "files",
        "keyboard",
        "service worker",
        "phone",
    ] {
        assert!(
            stdout.contains(&format!("ok: {part}")),
            "{part} ran:\n{stdout}"
        );
    }

    // What the browser wrote through the notes app is in alice's home.
    let saved = alice
        .call("GET", "/_matrixos/app-data/alice/notes/notes", None)
        .await;
    assert_eq!(saved.0, 200, "notes saved: {}", saved.1);
    assert_eq!(saved.1, json!("Written in the desktop"));
    let requests = llm.requests();
    assert_eq!(requests.len(), 3, "one tool turn and two answers");
    let system = |i: usize| requests[i]["system"].to_string();
    assert!(!system(0).contains("like a pirate"));
    assert!(
        system(2).contains("Always answer like a pirate."),
        "the SOUL edited in the desktop is in the next prompt: {}",
        system(2)
    );
}

/// Every app page starts with the desktop's theme (zero-specificity rules,
/// so the app's own styles win) and a phone viewport unless it has one.
#[tokio::test]
async fn app_pages_get_the_desktop_theme_before_their_own_styles() {
    let server = start_with(|_| {}).await;
    let anon = Raw::new(&server);
    let (alice, _) = anon.register("alice").await;
    write_app(
        &server,
        "alice",
        "plain",
        "Plain",
        "<html><head><title>Plain</title></head><body><h1>Plain</h1><button>Go</button></body></html>",
    )
    .await;
    let counter = app_template("counter").expect("counter template");
    write_app(&server, "alice", "counter", "Counter", counter.html).await;
    write_app(
        &server,
        "alice",
        "fixed",
        "Fixed",
        "<html><head><meta name=\"viewport\" content=\"width=600\"></head><body>x</body></html>",
    )
    .await;
    let page = |slug: &'static str| {
        let alice = &alice;
        async move {
            let response = alice
                .http
                .get(format!("{}/_matrixos/apps/alice/{slug}/", alice.base))
                .bearer_auth(alice.token.as_deref().expect("token"))
                .header("accept", "text/html")
                .send()
                .await
                .expect("app page");
            assert_eq!(response.status(), 200, "{slug}");
            response.text().await.expect("page text")
        }
    };
    let plain = page("plain").await;
    let theme = plain
        .find(":where(body)")
        .expect("the theme is in the page");
    let viewport = plain
        .find("<meta name=\"viewport\" content=\"width=device-width")
        .expect("a phone viewport");
    let title = plain.find("<title>Plain</title>").expect("the app's head");
    assert!(viewport < theme && theme < title, "theme first: {plain}");
    assert!(
        plain.contains("window.MatrixOS="),
        "the bridge is there too"
    );

    let counter_page = page("counter").await;
    let theme = counter_page.find(":where(body)").expect("theme");
    let own = counter_page
        .find("#count{")
        .expect("the template's own style");
    assert!(theme < own, "the app's styles come after the theme");

    let fixed = page("fixed").await;
    assert_eq!(
        fixed.matches("name=\"viewport\"").count(),
        1,
        "a page's own viewport is kept alone: {fixed}"
    );
}
