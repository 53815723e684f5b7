//! Error answers of the account, device, discovery, presence, account-data,
//! filter, tag, notification, pusher and push-rule endpoints now that ruma
//! parses their requests: one table per caller, each row a request and the
//! status and errcode Synapse gives for it.

use crate::common;

use common::errors::{check, Row};
use common::{create_room, enc, expect_error, expect_ok, Raw, V3};
use serde_json::json;

/// Rows whose paths follow `/_matrix/client/v3`: `{u}` is the caller's user
/// id and `{r}` a room of theirs, both percent-encoded.
type Template = Row<&'static str, &'static str>;

async fn run(raw: &Raw, rows: &[Template], user: &str, room: &str) {
    let rows = rows.iter().map(|&(method, path, body, status, errcode)| {
        let path = path.replace("{u}", &enc(user)).replace("{r}", &enc(room));
        (method, format!("{V3}{path}"), body, status, errcode)
    });
    check(raw, rows).await;
}

/// Requests without an access token.
#[rustfmt::skip]
const ANONYMOUS: &[Template] = &[
    // ruma's login parser panics without `type` and calls a non-string
    // one missing: both are checked before it runs.
    ("POST", "/login", None, 400, "M_MISSING_PARAM"),
    ("POST", "/login", Some("{}"), 400, "M_MISSING_PARAM"),
    ("POST", "/login", Some(r#"{"password":"x"}"#), 400, "M_MISSING_PARAM"),
    ("POST", "/login", Some(r#"{"type":5}"#), 400, "M_BAD_JSON"),
    ("POST", "/login", Some(r#"{"type":null}"#), 400, "M_BAD_JSON"),
    ("POST", "/login", Some(r#"{"type":"m.login.token","token":"t"}"#), 400, "M_UNKNOWN"),
    ("POST", "/login", Some(r#"{"type":"m.login.password","password":"x"}"#), 400, "M_MISSING_PARAM"),
    ("POST", "/login", Some(r#"{"type":"m.login.password","identifier":{"user":"alice"},"password":"x"}"#), 400, "M_MISSING_PARAM"),
    ("POST", "/login", Some(r#"{"type":"m.login.password","identifier":{"type":"m.id.phone","country":"GB","phone":"1"},"password":"x"}"#), 400, "M_UNKNOWN"),
    ("POST", "/login", Some(r#"{"type":"m.login.password","user":"alice","password":"x","device_id":5}"#), 400, "M_BAD_JSON"),
    ("POST", "/login", Some(r#"{"type":"m.login.password","user":"nobody","password":"x"}"#), 403, "M_FORBIDDEN"),
    ("POST", "/register?kind=guest", Some("{}"), 403, "M_GUEST_ACCESS_FORBIDDEN"),
    ("POST", "/register?kind=admin", Some("{}"), 400, "M_INVALID_PARAM"),
    ("POST", "/register", Some(r#"{"username":5}"#), 400, "M_BAD_JSON"),
    ("POST", "/register", Some(r#"{"inhibit_login":"yes"}"#), 400, "M_BAD_JSON"),
    // Synapse fails with a 500 on an `auth` that is not an object.
    ("POST", "/register", Some(r#"{"auth":"dummy"}"#), 400, "M_BAD_JSON"),
    // A stage this server does not offer: the challenge, with why.
    ("POST", "/register", Some(r#"{"auth":{"type":"m.login.registration_token"}}"#), 401, "M_UNRECOGNIZED"),
    ("POST", "/register", Some(r#"{"auth":{"type":"m.login.dummy","session":"made-up"}}"#), 400, "M_UNKNOWN"),
    ("GET", "/register/available", None, 400, "M_MISSING_PARAM"),
    ("GET", "/account/whoami", None, 401, "M_MISSING_TOKEN"),
    ("POST", "/account/password", Some(r#"{"new_password":"x"}"#), 401, "M_MISSING_TOKEN"),
    ("POST", "/account/deactivate", Some("{}"), 401, "M_MISSING_TOKEN"),
    ("POST", "/logout", None, 401, "M_MISSING_TOKEN"),
    ("GET", "/capabilities", None, 401, "M_MISSING_TOKEN"),
    ("GET", "/devices", None, 401, "M_MISSING_TOKEN"),
    ("GET", "/pushrules/", None, 401, "M_MISSING_TOKEN"),
];

/// Requests by a signed-in user.
#[rustfmt::skip]
const SIGNED_IN: &[Template] = &[
    ("PUT", "/presence/{u}/status", Some(r#"{"presence":"away"}"#), 400, "M_INVALID_PARAM"),
    ("PUT", "/presence/{u}/status", Some("{}"), 400, "M_MISSING_PARAM"),
    ("PUT", "/presence/{u}/status", Some(r#"{"presence":"online","status_msg":5}"#), 400, "M_BAD_JSON"),
    ("PUT", "/presence/%40bob%3Alocalhost/status", Some(r#"{"presence":"online"}"#), 403, "M_FORBIDDEN"),
    ("GET", "/presence/not-a-user/status", None, 400, "M_INVALID_PARAM"),
    ("GET", "/presence/%40nobody%3Alocalhost/status", None, 404, "M_NOT_FOUND"),
    ("GET", "/devices/NO-SUCH-DEVICE", None, 404, "M_NOT_FOUND"),
    ("DELETE", "/devices/NO-SUCH-DEVICE", None, 404, "M_NOT_FOUND"),
    ("PUT", "/devices/NO-SUCH-DEVICE", Some(r#"{"display_name":5}"#), 400, "M_BAD_JSON"),
    ("POST", "/delete_devices", Some("{}"), 400, "M_MISSING_PARAM"),
    ("POST", "/delete_devices", Some(r#"{"devices":[1]}"#), 400, "M_BAD_JSON"),
    // Stages with their credentials missing get the challenge with the
    // missing parameter named, as Synapse answers, not a parse error.
    ("POST", "/delete_devices", Some(r#"{"devices":[],"auth":{"type":"m.login.password"}}"#), 401, "M_MISSING_PARAM"),
    ("POST", "/account/password", Some(r#"{"new_password":"n","auth":{"type":"m.login.password","user":"alice"}}"#), 401, "M_MISSING_PARAM"),
    ("POST", "/account/password", Some(r#"{"new_password":"n","auth":{"type":"m.login.password","user":"alice","password":"wrong"}}"#), 401, "M_FORBIDDEN"),
    ("POST", "/delete_devices", Some(r#"{"devices":"all"}"#), 400, "M_BAD_JSON"),
    ("POST", "/account/password", Some(r#"{"new_password":5}"#), 400, "M_BAD_JSON"),
    ("PUT", "/user/{u}/account_data/m.push_rules", Some("{}"), 405, "M_BAD_JSON"),
    ("PUT", "/user/{u}/rooms/{r}/account_data/m.fully_read", Some("{}"), 405, "M_BAD_JSON"),
    ("PUT", "/user/%40bob%3Alocalhost/account_data/org.example", Some("{}"), 403, "M_FORBIDDEN"),
    ("PUT", "/user/not-a-user/account_data/org.example", Some("{}"), 400, "M_INVALID_PARAM"),
    ("PUT", "/user/{u}/account_data/org.example", Some("[]"), 400, "M_BAD_JSON"),
    ("GET", "/user/{u}/account_data/org.example.unset", None, 404, "M_NOT_FOUND"),
    ("GET", "/user/{u}/rooms/not-a-room/account_data/org.example", None, 400, "M_INVALID_PARAM"),
    ("GET", "/user/{u}/rooms/not-a-room/tags", None, 400, "M_INVALID_PARAM"),
    ("GET", "/user/%40bob%3Alocalhost/rooms/{r}/tags", None, 403, "M_FORBIDDEN"),
    ("POST", "/user/{u}/filter", Some(r#"{"room":{"timeline":{"limit":"ten"}}}"#), 400, "M_BAD_JSON"),
    ("GET", "/user/{u}/filter/no-such-filter", None, 404, "M_NOT_FOUND"),
    ("GET", "/notifications?from=soon", None, 400, "M_INVALID_PARAM"),
    ("GET", "/notifications?limit=-1", None, 400, "M_INVALID_PARAM"),
    ("GET", "/notifications?limit=many", None, 400, "M_INVALID_PARAM"),
    ("POST", "/pushers/set", Some("{}"), 400, "M_MISSING_PARAM"),
    ("POST", "/pushers/set", Some(r#"{"kind":null,"app_id":"a"}"#), 400, "M_MISSING_PARAM"),
    ("GET", "/pushrules/global/bogus/x", None, 400, "M_INVALID_PARAM"),
    ("PUT", "/pushrules/global/bogus/x", Some(r#"{"actions":[]}"#), 400, "M_INVALID_PARAM"),
    ("PUT", "/pushrules/global/room/not-a-room", Some(r#"{"actions":[]}"#), 400, "M_INVALID_PARAM"),
    ("PUT", "/pushrules/global/override/x", Some("{}"), 400, "M_MISSING_PARAM"),
    ("PUT", "/pushrules/global/override/x", Some(r#"{"actions":"notify"}"#), 400, "M_BAD_JSON"),
    // Synapse too requires the conditions of override and underride rules.
    ("PUT", "/pushrules/global/override/x", Some(r#"{"actions":[]}"#), 400, "M_MISSING_PARAM"),
    ("PUT", "/pushrules/global/content/x", Some(r#"{"actions":[]}"#), 400, "M_MISSING_PARAM"),
    ("PUT", "/pushrules/global/override/x?before=no.such.rule", Some(r#"{"actions":[],"conditions":[]}"#), 404, "M_NOT_FOUND"),
    ("GET", "/pushrules/global/override/no.such.rule", None, 404, "M_NOT_FOUND"),
    ("DELETE", "/pushrules/global/override/no.such.rule", None, 404, "M_NOT_FOUND"),
    ("GET", "/pushrules/global/override/no.such.rule/actions", None, 404, "M_NOT_FOUND"),
    ("PUT", "/pushrules/global/override/.m.rule.master/enabled", Some("{}"), 400, "M_MISSING_PARAM"),
    ("PUT", "/pushrules/global/override/no.such.rule/enabled", Some(r#"{"enabled":true}"#), 404, "M_NOT_FOUND"),
    // Synapse: any other scope or attribute is 400 M_UNRECOGNIZED.
    ("GET", "/pushrules/device/", None, 400, "M_UNRECOGNIZED"),
    ("GET", "/pushrules/device/override/x", None, 400, "M_UNRECOGNIZED"),
    ("GET", "/pushrules/global/override/.m.rule.master/colour", None, 400, "M_UNRECOGNIZED"),
];

/// The `auth` dict reaches the user-interactive auth service as the client
/// sent it: an empty one starts a session (the bare challenge), a session
/// alone asks what is left, and password auth naming the user with the
/// old top-level `user` field completes.
async fn uia_stages_are_judged_as_sent(alice: &Raw) {
    let path = format!("{V3}/delete_devices");
    let (status, challenge) = alice
        .json("POST", &path, json!({ "devices": [], "auth": {} }))
        .await;
    assert_eq!(status, 401, "{challenge}");
    assert!(challenge.get("errcode").is_none(), "{challenge}");
    assert_eq!(challenge["flows"][0]["stages"], json!(["m.login.password"]));
    let session = challenge["session"].as_str().expect("session");

    let only_session = json!({ "devices": [], "auth": { "session": session } });
    let (status, again) = alice.json("POST", &path, only_session).await;
    assert_eq!(status, 401, "{again}");
    assert_eq!(again["session"], session);
    assert_eq!(again["completed"], json!([]));

    let old_style = json!({
        "devices": [],
        "auth": { "type": "m.login.password", "user": "alice", "password": "secret-pw", "session": session },
    });
    expect_ok(
        alice.json("POST", &path, old_style).await,
        "password auth naming the user in `user`",
    );

    // A password change without the new password: the challenge first,
    // then, with the stage done, the missing parameter (Synapse's order).
    let password = format!("{V3}/account/password");
    let (status, challenge) = alice.json("POST", &password, json!({})).await;
    assert_eq!(status, 401, "{challenge}");
    assert!(challenge["flows"].is_array(), "{challenge}");
    let with_auth = json!({ "auth": {
        "type": "m.login.password",
        "identifier": { "type": "m.id.user", "user": "alice" },
        "password": "secret-pw",
    } });
    let res = alice.json("POST", &password, with_auth).await;
    expect_error(
        &res,
        400,
        "M_MISSING_PARAM",
        "no new password, after the stage",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_account_and_user_endpoints_refuse_bad_requests() {
    let server = common::start_with(|c| c.ai.enabled = false).await;
    let anon = Raw::new(&server);
    run(&anon, ANONYMOUS, "", "").await;
    let (alice, alice_id) = anon.register("alice").await;
    let room = create_room(&alice, json!({})).await;
    run(&alice, SIGNED_IN, &alice_id, &room).await;
    uia_stages_are_judged_as_sent(&alice).await;
    // An optional token must still be a valid one (Synapse checks it on
    // `/versions` too).
    let res = anon
        .with_token("not-a-token")
        .call("GET", "/_matrix/client/versions", None)
        .await;
    expect_error(
        &res,
        401,
        "M_UNKNOWN_TOKEN",
        "/versions with a made-up token",
    );
}
