//! `/versions` up to the spec version implemented, and
//! `/.well-known/matrix/support` from the configuration.

use serde_json::json;

use crate::common::{self, expect_error, expect_ok, Raw};

#[tokio::test]
async fn versions_run_from_r0_to_v1_16() {
    let server = common::start().await;
    let raw = Raw::new(&server);
    let body = expect_ok(
        raw.call("GET", "/_matrix/client/versions", None).await,
        "versions",
    );
    let listed = body["versions"].as_array().expect("versions");
    for minor in 1..=16 {
        let version = json!(format!("v1.{minor}"));
        assert!(listed.contains(&version), "{version} missing: {body}");
    }
    assert!(listed.contains(&json!("r0.6.1")), "{body}");
}

#[tokio::test]
async fn the_support_file_names_who_the_configuration_names() {
    let server = common::start().await;
    let res = Raw::new(&server)
        .call("GET", "/.well-known/matrix/support", None)
        .await;
    expect_error(&res, 404, "M_NOT_FOUND", "support with nothing configured");

    let server = common::start_with(|c| {
        c.admin_contact_email = Some("admin@example.org".into());
        c.support_page = Some("https://example.org/help".into());
    })
    .await;
    let body = expect_ok(
        Raw::new(&server)
            .call("GET", "/.well-known/matrix/support", None)
            .await,
        "support",
    );
    assert_eq!(
        body,
        json!({
            "contacts": [{ "role": "m.role.admin", "email_address": "admin@example.org" }],
            "support_page": "https://example.org/help",
        })
    );
}
