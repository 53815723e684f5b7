//! Extended profiles (v1.16): `m.tz` and custom fields set, read and
//! deleted with matrix-sdk, their limits, the capability, and another
//! server reading them over federation.

use matrix_sdk::ruma::profile::{ProfileFieldName, ProfileFieldValue};
use serde_json::json;

use crate::common::{self, enc, expect_error, expect_ok, sdk, start_federated, Raw, V3};

#[tokio::test]
async fn matrix_sdk_sets_reads_and_deletes_custom_profile_fields() {
    let server = common::start().await;
    let client = sdk::register(&server, "pia", "secret-pw").await;
    let me = client.user_id().expect("user").to_owned();
    let account = client.account();
    account
        .set_profile_field(ProfileFieldValue::TimeZone("Europe/Paris".to_owned()))
        .await
        .expect("set m.tz");
    let job = json!({ "title": "engineer", "since": 2024 });
    account
        .set_profile_field(ProfileFieldValue::new("org.example.job", job.clone()).expect("value"))
        .await
        .expect("set a custom field");

    let tz = account
        .fetch_profile_field_of(me.clone(), ProfileFieldName::TimeZone)
        .await
        .expect("get m.tz");
    assert_eq!(
        tz,
        Some(ProfileFieldValue::TimeZone("Europe/Paris".to_owned()))
    );
    let custom = account
        .fetch_profile_field_of(me.clone(), "org.example.job".into())
        .await
        .expect("get the custom field")
        .expect("set");
    assert_eq!(*custom.value(), job);
    let whole = account.fetch_user_profile().await.expect("whole profile");
    assert_eq!(whole.get("m.tz"), Some(&json!("Europe/Paris")));
    assert_eq!(whole.get("org.example.job"), Some(&job));
    assert_eq!(whole.get("displayname"), Some(&json!("pia")));

    account
        .delete_profile_field("org.example.job".into())
        .await
        .expect("delete the custom field");
    let whole = account.fetch_user_profile().await.expect("whole profile");
    assert_eq!(whole.get("org.example.job"), None);
    assert_eq!(whole.get("m.tz"), Some(&json!("Europe/Paris")));

    // Deleting the display name clears it, in member events too.
    let raw = Raw::new(&server).with_token(&client.access_token().expect("token"));
    let room = common::create_room(&raw, json!({})).await;
    account
        .delete_profile_field(ProfileFieldName::DisplayName)
        .await
        .expect("delete the display name");
    let member = format!(
        "{V3}/rooms/{}/state/m.room.member/{}",
        enc(&room),
        enc(me.as_str())
    );
    let member = expect_ok(raw.call("GET", &member, None).await, "member event");
    assert_eq!(member.get("displayname"), None, "{member}");
    assert_eq!(member["membership"], "join");

    let caps = expect_ok(
        raw.call("GET", &format!("{V3}/capabilities"), None).await,
        "capabilities",
    );
    assert_eq!(
        caps["capabilities"]["m.profile_fields"]["enabled"],
        json!(true),
        "{caps}"
    );
}

#[tokio::test]
async fn profile_field_names_sizes_and_owners_are_checked() {
    let server = common::start().await;
    let anon = Raw::new(&server);
    let (alice, alice_id) = anon.register("ali").await;
    let (_, bob_id) = anon.register("bobby").await;
    let field = |user: &str, key: &str| format!("{V3}/profile/{}/{key}", enc(user));
    let long_key = format!("org.{}", "a".repeat(252));
    let rows = [
        (
            field(&alice_id, &long_key),
            json!({ long_key.clone(): 1 }),
            400,
            "M_KEY_TOO_LARGE",
        ),
        (
            field(&alice_id, "Org.Example"),
            json!({ "Org.Example": 1 }),
            400,
            "M_INVALID_PARAM",
        ),
        (
            field(&alice_id, "nodots"),
            json!({ "nodots": 1 }),
            400,
            "M_INVALID_PARAM",
        ),
        (
            field(&bob_id, "org.example.x"),
            json!({ "org.example.x": 1 }),
            403,
            "M_FORBIDDEN",
        ),
        (
            field(&alice_id, "displayname"),
            json!({ "displayname": 5 }),
            400,
            "M_BAD_JSON",
        ),
    ];
    for (path, body, status, errcode) in rows {
        let res = alice.json("PUT", &path, body.clone()).await;
        expect_error(&res, status, errcode, &format!("PUT {path} {body}"));
    }
    // The whole profile stays under 64 KiB.
    let big = "x".repeat(40 * 1024);
    let first = alice
        .json(
            "PUT",
            &field(&alice_id, "org.example.a"),
            json!({ "org.example.a": big }),
        )
        .await;
    expect_ok(first, "a 40 KiB field");
    let second = alice
        .json(
            "PUT",
            &field(&alice_id, "org.example.b"),
            json!({ "org.example.b": big }),
        )
        .await;
    expect_error(&second, 400, "M_PROFILE_TOO_LARGE", "a second 40 KiB field");
    let res = anon
        .call("GET", &field(&alice_id, "org.example.b"), None)
        .await;
    expect_error(&res, 404, "M_NOT_FOUND", "the refused field");
    let res = alice
        .call("DELETE", &field(&bob_id, "displayname"), None)
        .await;
    expect_error(&res, 403, "M_FORBIDDEN", "deleting another user's field");
}

#[tokio::test]
async fn another_server_reads_custom_profile_fields() {
    let (ours, theirs) = (start_federated().await, start_federated().await);
    let (alice, alice_id) = Raw::new(&ours).register("alice").await;
    let (bob, _) = Raw::new(&theirs).register("bob").await;
    let path = |key: &str| format!("{V3}/profile/{}/{key}", enc(&alice_id));
    expect_ok(
        alice
            .json("PUT", &path("m.tz"), json!({ "m.tz": "Asia/Tokyo" }))
            .await,
        "set m.tz",
    );
    let remote = expect_ok(bob.call("GET", &path("m.tz"), None).await, "remote field");
    assert_eq!(remote, json!({ "m.tz": "Asia/Tokyo" }));
    let whole = format!("{V3}/profile/{}", enc(&alice_id));
    let remote = expect_ok(bob.call("GET", &whole, None).await, "remote profile");
    assert_eq!(remote["m.tz"], "Asia/Tokyo", "{remote}");
    assert_eq!(remote["displayname"], "alice", "{remote}");
}
