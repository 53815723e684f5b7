//! Refresh tokens: expiring access tokens for clients that ask for them,
//! `/refresh` with its retry rule, `soft_logout` on expiry, and matrix-sdk
//! refreshing by itself.

use std::time::Duration;

use matrix_sdk::Client;
use serde_json::{json, Value};

use crate::common::{self, expect_error, expect_ok, Raw, TestServer, V3};

async fn login(anon: &Raw, user: &str, refresh: bool) -> Value {
    let body = json!({
        "type": "m.login.password",
        "identifier": { "type": "m.id.user", "user": user },
        "password": "secret-pw",
        "refresh_token": refresh,
    });
    expect_ok(
        anon.json("POST", &format!("{V3}/login"), body).await,
        "login",
    )
}

async fn refresh(anon: &Raw, token: &str) -> (u16, Value) {
    let body = json!({ "refresh_token": token });
    anon.json("POST", &format!("{V3}/refresh"), body).await
}

fn text<'a>(body: &'a Value, field: &str) -> &'a str {
    body[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {body}"))
}

async fn whoami(anon: &Raw, token: &str) -> (u16, Value) {
    anon.with_token(token)
        .call("GET", &format!("{V3}/account/whoami"), None)
        .await
}

/// Waits (bounded) until `token` has expired, as the server says.
async fn until_expired(anon: &Raw, token: &str) -> (u16, Value) {
    for _ in 0..100 {
        let res = whoami(anon, token).await;
        if res.0 != 200 {
            return res;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the access token never expired");
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_lost_answer_can_be_asked_again() {
    let server = common::start().await;
    let anon = Raw::new(&server);
    anon.register("rita").await;

    // Without asking, a lasting token and no refresh token.
    let plain = login(&anon, "rita", false).await;
    assert!(plain.get("refresh_token").is_none(), "{plain}");
    assert!(plain.get("expires_in_ms").is_none(), "{plain}");

    let first = login(&anon, "rita", true).await;
    assert_eq!(first["expires_in_ms"], json!(300_000), "{first}");
    let (a1, r1) = (text(&first, "access_token"), text(&first, "refresh_token"));
    assert_ne!(a1, r1);
    expect_ok(whoami(&anon, a1).await, "first access token");
    // A refresh token is not an access token, nor the reverse.
    expect_error(
        &whoami(&anon, r1).await,
        401,
        "M_UNKNOWN_TOKEN",
        "refresh token as access token",
    );
    expect_error(
        &refresh(&anon, a1).await,
        401,
        "M_UNKNOWN_TOKEN",
        "access token as refresh token",
    );

    let second = expect_ok(refresh(&anon, r1).await, "refresh");
    assert_eq!(second["expires_in_ms"], json!(300_000), "{second}");
    let (a2, r2) = (
        text(&second, "access_token"),
        text(&second, "refresh_token"),
    );
    // The replaced access token keeps working until it expires.
    expect_ok(
        whoami(&anon, a1).await,
        "replaced access token before expiry",
    );

    // The answer was lost: the client asks again with the same refresh
    // token, and what it was given the first time is revoked.
    let third = expect_ok(refresh(&anon, r1).await, "refresh asked again");
    let (a3, r3) = (text(&third, "access_token"), text(&third, "refresh_token"));
    expect_error(
        &whoami(&anon, a2).await,
        401,
        "M_UNKNOWN_TOKEN",
        "superseded access token",
    );
    expect_error(
        &refresh(&anon, r2).await,
        401,
        "M_UNKNOWN_TOKEN",
        "superseded refresh token",
    );

    // Using the new access token revokes the refresh token it came from.
    let me = expect_ok(whoami(&anon, a3).await, "new access token");
    assert_eq!(me["device_id"], first["device_id"], "same device: {me}");
    let revoked = refresh(&anon, r1).await;
    expect_error(
        &revoked,
        401,
        "M_UNKNOWN_TOKEN",
        "used refresh token after the new token's use",
    );
    let fourth = expect_ok(refresh(&anon, r3).await, "refresh with the newest token");
    let a4 = text(&fourth, "access_token");
    expect_ok(whoami(&anon, a4).await, "fourth access token");

    // Logging out ends the refresh tokens too.
    let me = anon.with_token(a4);
    expect_ok(
        me.call("POST", &format!("{V3}/logout"), Some("{}")).await,
        "logout",
    );
    let r4 = text(&fourth, "refresh_token");
    expect_error(
        &refresh(&anon, r4).await,
        401,
        "M_UNKNOWN_TOKEN",
        "refresh after logout",
    );
    expect_error(
        &refresh(&anon, "mrt_nonsense").await,
        401,
        "M_UNKNOWN_TOKEN",
        "made-up refresh token",
    );
    expect_error(
        &anon.json("POST", &format!("{V3}/refresh"), json!({})).await,
        400,
        "M_MISSING_PARAM",
        "no refresh_token",
    );
}

#[tokio::test]
async fn an_expired_access_token_is_a_soft_logout_and_refreshes() {
    let server = common::start_with(|c| c.refreshable_access_token_lifetime_secs = 1).await;
    let anon = Raw::new(&server);
    let (_, user) = anon.register("sam").await;
    let session = login(&anon, "sam", true).await;
    assert_eq!(session["expires_in_ms"], json!(1000), "{session}");
    let expired = until_expired(&anon, text(&session, "access_token")).await;
    expect_error(&expired, 401, "M_UNKNOWN_TOKEN", "expired access token");
    assert_eq!(expired.1["soft_logout"], json!(true), "{}", expired.1);

    let renewed = expect_ok(
        refresh(&anon, text(&session, "refresh_token")).await,
        "refresh",
    );
    let me = expect_ok(
        whoami(&anon, text(&renewed, "access_token")).await,
        "renewed token",
    );
    assert_eq!(me["user_id"], json!(user));

    // Lasting tokens of the same server never expire.
    let plain = login(&anon, "sam", false).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    expect_ok(
        whoami(&anon, text(&plain, "access_token")).await,
        "lasting token",
    );
}

/// matrix-sdk, asked to handle refresh tokens, logs in with one, meets the
/// expiry and refreshes by itself without the application noticing.
#[tokio::test]
async fn matrix_sdk_refreshes_an_expired_token_by_itself() {
    let server = common::start_with(|c| c.refreshable_access_token_lifetime_secs = 2).await;
    let anon = Raw::new(&server);
    anon.register("tess").await;
    let client = sdk_client(&server).await;
    client
        .matrix_auth()
        .login_username("tess", "secret-pw")
        .request_refresh_token()
        .send()
        .await
        .expect("login with a refresh token");
    let first = client.access_token().expect("access token");
    assert!(
        client
            .session_tokens()
            .and_then(|t| t.refresh_token)
            .is_some(),
        "the server gave matrix-sdk no refresh token"
    );
    until_expired(&anon, &first).await;

    let me = client.whoami().await.expect("whoami after expiry");
    assert_eq!(
        me.user_id.as_str(),
        client.user_id().expect("user").as_str()
    );
    let second = client.access_token().expect("access token");
    assert_ne!(first, second, "matrix-sdk did not refresh");
    expect_ok(
        whoami(&anon, &second).await,
        "the token matrix-sdk refreshed to",
    );
}

async fn sdk_client(server: &TestServer) -> Client {
    Client::builder()
        .homeserver_url(&server.base_url)
        .handle_refresh_tokens()
        .build()
        .await
        .expect("build matrix-sdk client")
}
