//! matrix-sdk helpers shared by the tests that drive the server with it.

use matrix_sdk::ruma::api::client::account::register;
use matrix_sdk::ruma::api::client::uiaa;
use matrix_sdk::Client;

use super::TestServer;

/// Registers through UIA as a real client does: a first request without
/// `auth` gets 401 with a session, the second completes `m.login.dummy`.
pub async fn register(server: &TestServer, name: &str, password: &str) -> Client {
    let client = Client::builder()
        .homeserver_url(&server.base_url)
        .build()
        .await
        .expect("build matrix-sdk client");
    let mut request = register::v3::Request::new();
    request.username = Some(name.to_owned());
    request.password = Some(password.to_owned());
    request.initial_device_display_name = Some(format!("{name}'s phone"));
    let err = client
        .matrix_auth()
        .register(request.clone())
        .await
        .expect_err("register without `auth` must answer 401 with UIA info");
    let info = err
        .as_uiaa_response()
        .unwrap_or_else(|| panic!("register without auth: expected a UIAA 401, got {err:?}"));
    assert!(
        info.flows
            .iter()
            .any(|flow| flow.stages == vec![uiaa::AuthType::Dummy]),
        "register: expected a flow with exactly [m.login.dummy], got {:?}",
        info.flows
    );
    let session = info
        .session
        .clone()
        .expect("register: UIAA response must carry a session");
    let mut dummy = uiaa::Dummy::new();
    dummy.session = Some(session);
    request.auth = Some(uiaa::AuthData::Dummy(dummy));
    client
        .matrix_auth()
        .register(request)
        .await
        .unwrap_or_else(|e| panic!("register {name} with m.login.dummy: {e:?}"));
    assert!(
        client.user_id().is_some(),
        "{name}: not logged in after register"
    );
    client
}

/// Logs in as an existing user: a new device.
pub async fn login(server: &TestServer, name: &str, password: &str) -> Client {
    let client = Client::builder()
        .homeserver_url(&server.base_url)
        .build()
        .await
        .expect("build matrix-sdk client");
    client
        .matrix_auth()
        .login_username(name, password)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{name} logs in: {e:?}"));
    client
}
