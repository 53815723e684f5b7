//! Whole-server, raw-HTTP tests of server-side key backup (`/room_keys`):
//! versions, uploads that keep the better copy of a session, reads and
//! deletes at every level, and the errors clients rely on.

use crate::common;

use common::{enc, expect_error, expect_ok, start, Raw, V3};
use serde_json::{json, Value};

const ALGORITHM: &str = "m.megolm_backup.v1.curve25519-aes-sha2";
const ROOM: &str = "!room:localhost";

fn key(index: u64, forwarded: u64, verified: bool, tag: &str) -> Value {
    json!({
        "first_message_index": index,
        "forwarded_count": forwarded,
        "is_verified": verified,
        "session_data": { "ephemeral": tag, "ciphertext": tag, "mac": tag },
    })
}

async fn create_version(raw: &Raw) -> String {
    let res = raw
        .json(
            "POST",
            &format!("{V3}/room_keys/version"),
            json!({ "algorithm": ALGORITHM, "auth_data": { "public_key": "abc", "signatures": {} } }),
        )
        .await;
    expect_ok(res, "create backup version")["version"]
        .as_str()
        .expect("version")
        .to_owned()
}

fn session_path(version: &str, session: &str) -> String {
    format!(
        "{V3}/room_keys/keys/{}/{}?version={version}",
        enc(ROOM),
        enc(session)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_versions_and_keys_follow_the_spec() {
    let server = start().await;
    let raw = Raw::new(&server);
    let (alice, _) = raw.register("alice").await;
    let (bob, _) = raw.register("bob").await;

    expect_error(
        &alice
            .call("GET", &format!("{V3}/room_keys/version"), None)
            .await,
        404,
        "M_NOT_FOUND",
        "no backup yet",
    );
    let v1 = create_version(&alice).await;
    let info = expect_ok(
        alice
            .call("GET", &format!("{V3}/room_keys/version"), None)
            .await,
        "current version",
    );
    assert_eq!(info["version"], v1.as_str(), "{info}");
    assert_eq!(info["algorithm"], ALGORITHM, "{info}");
    assert_eq!(info["count"], 0, "{info}");
    assert_eq!(info["auth_data"]["public_key"], "abc", "{info}");
    let etag0 = info["etag"].as_str().expect("etag").to_owned();
    // Backups are per user.
    expect_error(
        &bob.call("GET", &format!("{V3}/room_keys/version"), None)
            .await,
        404,
        "M_NOT_FOUND",
        "bob has no backup",
    );

    // Upload at every level.
    let res = alice
        .json("PUT", &session_path(&v1, "s1"), key(5, 1, false, "first"))
        .await;
    let stored = expect_ok(res, "put one session");
    assert_eq!(stored["count"], 1, "{stored}");
    assert_ne!(stored["etag"], etag0.as_str(), "etag must change: {stored}");
    let res = alice
        .json(
            "PUT",
            &format!("{V3}/room_keys/keys/{}?version={v1}", enc(ROOM)),
            json!({ "sessions": { "s2": key(0, 0, false, "two") } }),
        )
        .await;
    assert_eq!(expect_ok(res, "put room")["count"], 2);
    let res = alice
        .json(
            "PUT",
            &format!("{V3}/room_keys/keys?version={v1}"),
            json!({ "rooms": { "!other:localhost": { "sessions": { "s3": key(0, 0, true, "three") } } } }),
        )
        .await;
    assert_eq!(expect_ok(res, "put all")["count"], 3);

    // The better copy wins: a worse one (later index) is ignored, a better
    // one (earlier index) replaces, a verified one beats an unverified one.
    for (upload, kept) in [
        (key(9, 0, false, "worse"), "first"),
        (key(2, 3, false, "better"), "better"),
        (key(7, 7, true, "verified"), "verified"),
    ] {
        alice.json("PUT", &session_path(&v1, "s1"), upload).await;
        let got = expect_ok(
            alice.call("GET", &session_path(&v1, "s1"), None).await,
            "get",
        );
        assert_eq!(got["session_data"]["ciphertext"], kept, "{got}");
    }

    let all = expect_ok(
        alice
            .call("GET", &format!("{V3}/room_keys/keys?version={v1}"), None)
            .await,
        "get all",
    );
    assert_eq!(
        all["rooms"][ROOM]["sessions"].as_object().map(|s| s.len()),
        Some(2),
        "{all}"
    );
    assert!(
        all["rooms"]["!other:localhost"]["sessions"]["s3"].is_object(),
        "{all}"
    );
    let room = expect_ok(
        alice
            .call(
                "GET",
                &format!(
                    "{V3}/room_keys/keys/{}?version={v1}",
                    enc("!empty:localhost")
                ),
                None,
            )
            .await,
        "get empty room",
    );
    assert_eq!(room, json!({ "sessions": {} }));

    // Errors: unknown session, missing version, bad key data, bad algorithm change.
    expect_error(
        &alice.call("GET", &session_path(&v1, "nope"), None).await,
        404,
        "M_NOT_FOUND",
        "unknown session",
    );
    expect_error(
        &alice
            .json(
                "PUT",
                &format!("{V3}/room_keys/keys/{}/s9", enc(ROOM)),
                key(0, 0, false, "x"),
            )
            .await,
        400,
        "M_MISSING_PARAM",
        "upload without a version",
    );
    expect_error(
        &alice
            .json(
                "PUT",
                &session_path(&v1, "s9"),
                json!({ "session_data": {} }),
            )
            .await,
        400,
        "M_BAD_JSON",
        "incomplete key data",
    );
    expect_error(
        &alice
            .json(
                "PUT",
                &format!("{V3}/room_keys/version/{v1}"),
                json!({ "algorithm": "m.other", "auth_data": {} }),
            )
            .await,
        400,
        "M_INVALID_PARAM",
        "changing the algorithm",
    );
    expect_ok(
        alice
            .json(
                "PUT",
                &format!("{V3}/room_keys/version/{v1}"),
                json!({ "algorithm": ALGORITHM, "auth_data": { "public_key": "def" }, "version": v1 }),
            )
            .await,
        "update auth data",
    );

    // A new version becomes current: uploads to the old one are refused
    // with the current version named.
    let v2 = create_version(&alice).await;
    assert_ne!(v1, v2);
    let res = alice
        .json("PUT", &session_path(&v1, "s4"), key(0, 0, false, "late"))
        .await;
    expect_error(
        &res,
        403,
        "M_WRONG_ROOM_KEYS_VERSION",
        "upload to an old version",
    );
    assert_eq!(res.1["current_version"], v2.as_str(), "{:?}", res.1);
    // The old version is still readable, with its keys.
    let old = expect_ok(
        alice
            .call("GET", &format!("{V3}/room_keys/version/{v1}"), None)
            .await,
        "old version",
    );
    assert_eq!(old["count"], 3, "{old}");
    assert_eq!(old["auth_data"]["public_key"], "def", "{old}");

    // Deleting keys, then versions.
    let deleted = expect_ok(
        alice
            .call(
                "DELETE",
                &format!("{V3}/room_keys/keys/{}?version={v1}", enc(ROOM)),
                None,
            )
            .await,
        "delete room keys",
    );
    assert_eq!(deleted["count"], 1, "{deleted}");
    expect_ok(
        alice
            .call("DELETE", &format!("{V3}/room_keys/version/{v2}"), None)
            .await,
        "delete v2",
    );
    expect_error(
        &alice
            .call("GET", &format!("{V3}/room_keys/version"), None)
            .await,
        404,
        "M_NOT_FOUND",
        "the newest version was deleted",
    );
    expect_error(
        &alice
            .call("GET", &format!("{V3}/room_keys/version/{v2}"), None)
            .await,
        404,
        "M_NOT_FOUND",
        "a deleted version",
    );
    // Numbers are never reused, and the data survives a restart.
    let server = server.restart().await;
    let alice = Raw::new(&server).with_token(alice.token.as_deref().expect("token"));
    let v3 = create_version(&alice).await;
    assert!(v3 != v1 && v3 != v2, "version {v3} reused");
    let old = expect_ok(
        alice
            .call("GET", &format!("{V3}/room_keys/version/{v1}"), None)
            .await,
        "old version after restart",
    );
    assert_eq!(old["count"], 1, "{old}");
}
