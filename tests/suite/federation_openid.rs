//! OpenID: a user gets a token from their server and a third party (an
//! integration manager) learns from the server's `/openid/userinfo` whose
//! it is; unknown tokens and tokens for someone else are refused.

use serde_json::json;

use crate::common::{enc, expect_error, start, Raw, V3};

#[tokio::test]
async fn an_openid_token_tells_a_third_party_who_the_user_is() {
    let server = start().await;
    let (alice, alice_id) = Raw::new(&server).register("alice").await;
    let (_, bob_id) = Raw::new(&server).register("bob").await;

    let path = format!("{V3}/user/{}/openid/request_token", enc(&alice_id));
    let (status, token) = alice.json("POST", &path, json!({})).await;
    assert_eq!(status, 200, "{token}");
    assert_eq!(token["token_type"], "Bearer");
    assert_eq!(
        token["matrix_server_name"],
        server.services.server_name.as_str()
    );
    assert_eq!(token["expires_in"], 3600);
    let access = token["access_token"].as_str().expect("a token");

    let third_party = Raw::new(&server);
    let info = format!("/_matrix/federation/v1/openid/userinfo?access_token={access}");
    let (status, who) = third_party.call("GET", &info, None).await;
    assert_eq!(
        (status, who["sub"].as_str()),
        (200, Some(alice_id.as_str()))
    );

    let unknown = third_party
        .call(
            "GET",
            "/_matrix/federation/v1/openid/userinfo?access_token=nope",
            None,
        )
        .await;
    expect_error(&unknown, 401, "M_UNKNOWN_TOKEN", "unknown token");
    let path = format!("{V3}/user/{}/openid/request_token", enc(&bob_id));
    let for_bob = alice.json("POST", &path, json!({})).await;
    expect_error(&for_bob, 403, "M_FORBIDDEN", "someone else's token");
}
