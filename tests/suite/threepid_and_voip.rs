//! Third-party identifiers and networks (none here: empty lists and the
//! spec's refusals) and `/voip/turnServer` (none, or credentials from the
//! TURN shared secret).

use serde_json::json;

use crate::common::{expect_ok, start, Raw, V3};

#[tokio::test]
async fn third_party_ids_and_networks_and_turn_answer_as_the_spec_says() {
    let server = start().await;
    let raw = Raw::new(&server);
    let (alice, _) = raw.register("tp_alice").await;
    let get = |path: &str| format!("{V3}{path}");
    let threepids = expect_ok(alice.call("GET", &get("/account/3pid"), None).await, "3pid");
    // None: the list is empty (or, as ruma serialises it, left out).
    assert!(
        threepids.get("threepids").is_none_or(|t| *t == json!([])),
        "{threepids}"
    );
    let token = json!({ "client_secret": "s3cret", "email": "a@example.org", "send_attempt": 1 });
    let msisdn = json!({ "client_secret": "s3cret", "country": "GB", "phone_number": "07700900001", "send_attempt": 1 });
    for (path, body, status, errcode) in [
        (
            "/account/3pid/email/requestToken",
            &token,
            400,
            "M_THREEPID_MEDIUM_NOT_SUPPORTED",
        ),
        (
            "/account/3pid/msisdn/requestToken",
            &msisdn,
            400,
            "M_THREEPID_MEDIUM_NOT_SUPPORTED",
        ),
        (
            "/register/email/requestToken",
            &token,
            403,
            "M_THREEPID_DENIED",
        ),
        (
            "/register/msisdn/requestToken",
            &msisdn,
            403,
            "M_THREEPID_DENIED",
        ),
        (
            "/account/password/email/requestToken",
            &token,
            400,
            "M_THREEPID_NOT_FOUND",
        ),
        (
            "/account/password/msisdn/requestToken",
            &msisdn,
            400,
            "M_THREEPID_NOT_FOUND",
        ),
    ] {
        let res = alice.json("POST", &get(path), body.clone()).await;
        crate::common::expect_error(&res, status, errcode, path);
    }
    let add = json!({ "client_secret": "s3cret", "sid": "nosuch" });
    let res = alice.json("POST", &get("/account/3pid/add"), add).await;
    crate::common::expect_error(&res, 400, "M_THREEPID_AUTH_FAILED", "3pid/add");
    let delete = json!({ "medium": "email", "address": "a@example.org" });
    let res = expect_ok(
        alice
            .json("POST", &get("/account/3pid/delete"), delete)
            .await,
        "delete",
    );
    assert_eq!(res["id_server_unbind_result"], "no-support");
    let protocols = expect_ok(
        alice.call("GET", &get("/thirdparty/protocols"), None).await,
        "p",
    );
    assert_eq!(protocols, json!({}));
    let res = alice
        .call("GET", &get("/thirdparty/protocol/irc"), None)
        .await;
    crate::common::expect_error(&res, 404, "M_NOT_FOUND", "unknown protocol");
    // No TURN server configured: an empty object, as Synapse answers.
    let turn = expect_ok(
        alice.call("GET", &get("/voip/turnServer"), None).await,
        "turn",
    );
    assert_eq!(turn, json!({}));
    let res = raw.call("GET", &get("/voip/turnServer"), None).await;
    crate::common::expect_error(&res, 401, "M_MISSING_TOKEN", "turn without a token");
}

#[tokio::test]
async fn turn_credentials_come_from_the_shared_secret() {
    let server = crate::common::start_with(|c| {
        c.turn.uris = vec!["turn:turn.example.org:3478?transport=udp".into()];
        c.turn.shared_secret = Some("s3cret".into());
    })
    .await;
    let raw = Raw::new(&server);
    let (alice, alice_id) = raw.register("turn_alice").await;
    let turn = expect_ok(
        alice
            .call("GET", &format!("{V3}/voip/turnServer"), None)
            .await,
        "turn",
    );
    assert_eq!(
        turn["uris"],
        json!(["turn:turn.example.org:3478?transport=udp"])
    );
    assert_eq!(turn["ttl"], 86_400);
    let username = turn["username"].as_str().expect("username");
    assert!(username.ends_with(&format!(":{alice_id}")), "{username}");
    assert!(!turn["password"].as_str().expect("password").is_empty());
}
