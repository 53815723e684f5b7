//! matrix-js-sdk, the stack inside Element Web, in Node: threads, edits,
//! search, spaces, link previews, peeking and guests against this server (`tests/js/element_web.mjs`,
//! whose dependencies `conformance/run-tests` installs with `npm ci`).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use crate::common::web_site::WebSite;
use crate::common::{start_with, Raw};

fn js_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/js")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn element_web_threads_edits_search_spaces_and_previews() {
    let dir = js_dir();
    assert!(
        dir.join("node_modules/matrix-js-sdk").is_dir(),
        "matrix-js-sdk is not installed: run `npm ci` in tests/js (conformance/run-tests does)"
    );
    let site = WebSite::start("127.0.0.2", "/page").await;
    let server = start_with(|c| {
        c.url_preview_enabled = true;
        c.allow_guest_access = true;
        c.url_preview_ip_range_allowlist = vec!["127.0.0.2".into()];
    })
    .await;
    let raw = Raw::new(&server);
    let (alice, alice_id) = raw.register("ew_alice").await;
    let (bob, bob_id) = raw.register("ew_bob").await;
    let token = |r: &Raw| r.token.clone().expect("token");
    let child = tokio::process::Command::new("node")
        .arg("element_web.mjs")
        .current_dir(&dir)
        .env("MATRIX_BASE", &server.base_url)
        .env("ALICE_ID", &alice_id)
        .env("ALICE_TOKEN", token(&alice))
        .env("BOB_ID", &bob_id)
        .env("BOB_TOKEN", token(&bob))
        .env("PREVIEW_URL", site.url("/page"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs (Node.js 20 or later must be installed)");
    let output = tokio::time::timeout(Duration::from_secs(180), child.wait_with_output())
        .await
        .expect("the Node test ends by itself")
        .expect("node's output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("PASSED"),
        "matrix-js-sdk test failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    for part in [
        "threads", "edits", "search", "spaces", "previews", "peeking", "guests",
    ] {
        assert!(
            stdout.contains(&format!("ok: {part}")),
            "{part} ran:\n{stdout}"
        );
    }
}
