//! TLS by itself: the real binary with `[acme]` enabled obtains a
//! certificate from an ACME CA (the test CA in `common::acme`, answering
//! its HTTP-01 challenge on its own port 80 listener), serves it on the
//! HTTPS and federation listeners, renews it when two thirds of its
//! lifetime have passed, and after a `kill -9` serves the kept one again
//! without a new order or a new account.

use std::net::SocketAddr;
use std::time::Duration;

use crate::common::acme::TestCa;
use crate::common::process::{free_port, ServerProcess};

/// The certificate `address` presents for `localhost` now (DER), once a
/// request over it succeeds with only the test CA trusted. A new client
/// each time: a resumed TLS session would report the certificate of the
/// session it resumes.
async fn served(ca: &TestCa, address: SocketAddr, path: &str) -> Option<Vec<u8>> {
    let client = reqwest::Client::builder()
        .tls_certs_only(reqwest::Certificate::from_pem_bundle(ca.ca_pem.as_bytes()).expect("CA"))
        .tls_info(true)
        .resolve("localhost", address)
        .build()
        .expect("client");
    let url = format!("https://localhost:{}{path}", address.port());
    let response = client.get(&url).send().await.ok()?;
    assert!(
        response.status().is_success(),
        "{url}: {}",
        response.status()
    );
    response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .map(<[u8]>::to_vec)
}

/// Waits (at most two minutes) until `done` holds.
async fn until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    for _ in 0..1200 {
        if done().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("gave up waiting: {what}");
}

#[tokio::test]
async fn the_server_obtains_serves_and_renews_its_certificate_by_itself() {
    let (port80, https, federation) = (free_port(), free_port(), free_port());
    // A first certificate that is due for renewal after 20 s.
    let ca = TestCa::start(port80, Duration::from_secs(30)).await;
    let mut server = ServerProcess::start_with_env(&[
        ("MATRIXOS_ACME_ENABLED", "true".to_owned()),
        ("MATRIXOS_ACME_DIRECTORY_URL", ca.directory_url.clone()),
        ("MATRIXOS_ACME_CA_FILE", ca.ca_file.display().to_string()),
        ("MATRIXOS_ACME_CONTACT", "mailto:admin@localhost".to_owned()),
        ("MATRIXOS_ACME_HTTP_LISTEN", port80.to_string()),
        ("MATRIXOS_TLS_LISTEN", https.to_string()),
        ("MATRIXOS_FEDERATION_LISTEN", federation.to_string()),
    ])
    .await;

    until("the first certificate", async || !ca.issued().is_empty()).await;
    let first = ca.issued()[0].clone();
    // Renewals from now on last a day.
    ca.set_lifetime(Duration::from_secs(86_400));
    until("the first certificate served", async || {
        served(&ca, https, "/_matrix/client/versions")
            .await
            .as_ref()
            == Some(&first)
    })
    .await;
    let on_federation = served(&ca, federation, "/_matrix/federation/v1/version").await;
    assert!(
        on_federation == Some(first.clone()) || ca.issued().len() > 1,
        "the federation listener presents the ACME certificate"
    );

    // Port 80 answers nothing but challenges; the rest goes to HTTPS, on
    // the server's own name whatever the request's Host says.
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let redirect = plain
        .get(format!("http://{port80}/_matrix/client/versions?x=1"))
        .header("host", "evil.example")
        .send()
        .await
        .expect("port 80");
    assert_eq!(redirect.status(), 308);
    assert_eq!(
        redirect.headers()["location"],
        format!(
            "https://localhost:{}/_matrix/client/versions?x=1",
            https.port()
        )
        .as_str()
    );
    let unknown = plain
        .get(format!(
            "http://{port80}/.well-known/acme-challenge/nothing"
        ))
        .send()
        .await
        .expect("port 80");
    assert_eq!(unknown.status(), 404);

    until("the renewed certificate", async || ca.issued().len() >= 2).await;
    let renewed = ca.issued()[1].clone();
    assert_ne!(renewed, first);
    until("the renewed certificate served", async || {
        served(&ca, https, "/_matrix/client/versions")
            .await
            .as_ref()
            == Some(&renewed)
    })
    .await;
    assert_eq!(
        served(&ca, federation, "/_matrix/federation/v1/version").await,
        Some(renewed.clone())
    );

    // After a crash, the kept certificate and account are used again.
    server.restart().await;
    until("the kept certificate served after a restart", async || {
        served(&ca, https, "/_matrix/client/versions")
            .await
            .as_ref()
            == Some(&renewed)
    })
    .await;
    assert_eq!(ca.issued().len(), 2, "no new order after the restart");
    assert_eq!(ca.accounts(), 1, "one ACME account, kept");
}
