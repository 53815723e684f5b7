//! A certificate authority speaking ACME (RFC 8555) on a loopback port,
//! for the server's own ACME client: a directory over HTTPS, accounts from
//! ES256-signed JWS (signatures, nonces and URLs checked), orders for DNS
//! names, HTTP-01 validation against a port the test names (every name is
//! 127.0.0.1 here), and certificates issued from the CSR with a lifetime
//! the test sets. One CA certificate signs both its own TLS certificate and
//! the ones it issues.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use parking_lot::Mutex;
use serde_json::{json, Value};
use sha2::Digest;

pub struct TestCa {
    pub directory_url: String,
    /// The CA certificate (PEM), to trust for the directory and for what
    /// it issues.
    pub ca_file: PathBuf,
    pub ca_pem: String,
    state: Arc<Mutex<CaState>>,
    _dir: tempfile::TempDir,
}

struct CaState {
    base: String,
    /// Where HTTP-01 answers are fetched.
    http01: SocketAddr,
    lifetime: Duration,
    nonces: HashSet<String>,
    /// Each account's public key (x, y) and thumbprint.
    accounts: Vec<(Vec<u8>, String)>,
    orders: Vec<Order>,
    /// Every certificate issued (DER).
    issued: Vec<Vec<u8>>,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    ca_pem: String,
    serial: u64,
}

struct Order {
    account: usize,
    names: Vec<String>,
    tokens: Vec<String>,
    valid: Vec<bool>,
    status: &'static str,
    chain: Option<String>,
}

impl TestCa {
    /// A CA that checks HTTP-01 answers at `http01` and issues
    /// certificates valid for `lifetime`.
    pub async fn start(http01: SocketAddr, lifetime: Duration) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let ca_key = rcgen::KeyPair::generate().expect("CA key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Matrix OS test ACME CA");
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = params.self_signed(&ca_key).expect("CA certificate");
        let ca_pem = ca_cert.pem();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, &ca_pem).expect("write CA");
        let issuer = rcgen::Issuer::new(params, ca_key);

        // The directory's own certificate, for 127.0.0.1.
        let tls_key = rcgen::KeyPair::generate().expect("TLS key");
        let tls_params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("TLS params");
        let tls_cert = tls_params.signed_by(&tls_key, &issuer).expect("TLS cert");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("https://{}", listener.local_addr().expect("addr"));
        let state = Arc::new(Mutex::new(CaState {
            base: base.clone(),
            http01,
            lifetime,
            nonces: HashSet::new(),
            accounts: Vec::new(),
            orders: Vec::new(),
            issued: Vec::new(),
            issuer,
            ca_pem: ca_pem.clone(),
            serial: 1,
        }));
        let app = Router::new()
            .route("/directory", get(directory))
            .route("/nonce", get(new_nonce).head(new_nonce))
            .route("/account", post(new_account))
            .route("/order", post(new_order))
            .route("/order/{n}", post(order))
            .route("/authz/{n}/{i}", post(authorization))
            .route("/chall/{n}/{i}", post(challenge))
            .route("/finalize/{n}", post(finalize))
            .route("/cert/{n}", post(certificate))
            .with_state(state.clone());
        let server_config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![tls_cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::try_from(tls_key.serialize_der()).expect("key"),
        )
        .expect("TLS config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config));
        tokio::spawn(serve_tls(listener, acceptor, app));
        Self {
            directory_url: format!("{base}/directory"),
            ca_file,
            ca_pem,
            state,
            _dir: dir,
        }
    }

    /// The certificates issued so far (DER), oldest first.
    pub fn issued(&self) -> Vec<Vec<u8>> {
        self.state.lock().issued.clone()
    }

    pub fn accounts(&self) -> usize {
        self.state.lock().accounts.len()
    }

    /// The lifetime of certificates issued from now on.
    pub fn set_lifetime(&self, lifetime: Duration) {
        self.state.lock().lifetime = lifetime;
    }
}

async fn serve_tls(
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    app: Router,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            let Ok(stream) = acceptor.accept(stream).await else {
                return;
            };
            let service = hyper_util::service::TowerToHyperService::new(app);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

type Ca = State<Arc<Mutex<CaState>>>;

fn problem(status: StatusCode, kind: &str, detail: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        json!({"type": format!("urn:ietf:params:acme:error:{kind}"), "detail": detail}).to_string(),
    )
        .into_response()
}

/// A JSON answer with a fresh nonce (and a Location, when given).
fn answer(ca: &mut CaState, status: StatusCode, location: Option<String>, body: Value) -> Response {
    let nonce = fresh_nonce(ca);
    let mut headers = HeaderMap::new();
    headers.insert("replay-nonce", nonce.parse().expect("nonce header"));
    if let Some(location) = location {
        headers.insert(header::LOCATION, location.parse().expect("location header"));
    }
    headers.insert(
        header::CONTENT_TYPE,
        "application/json".parse().expect("type"),
    );
    (status, headers, body.to_string()).into_response()
}

fn fresh_nonce(ca: &mut CaState) -> String {
    let nonce = B64.encode(rand::random::<[u8; 16]>());
    ca.nonces.insert(nonce.clone());
    nonce
}

async fn directory(State(ca): Ca) -> Response {
    let base = ca.lock().base.clone();
    axum::Json(json!({
        "newNonce": format!("{base}/nonce"),
        "newAccount": format!("{base}/account"),
        "newOrder": format!("{base}/order"),
        "revokeCert": format!("{base}/revoke"),
        "keyChange": format!("{base}/key-change"),
    }))
    .into_response()
}

async fn new_nonce(State(ca): Ca) -> Response {
    let nonce = fresh_nonce(&mut ca.lock());
    (
        StatusCode::OK,
        [
            ("replay-nonce", nonce),
            ("cache-control", "no-store".to_owned()),
        ],
    )
        .into_response()
}

/// A checked JWS: the account that signed it (for `kid` requests), the
/// key it carried (for `jwk` ones) and the payload (`Null` for
/// POST-as-GET).
struct Signed {
    account: Option<usize>,
    jwk: Option<(Vec<u8>, String)>,
    payload: Value,
}

/// Why a JWS is refused: status, ACME error type, detail.
struct Refusal(StatusCode, &'static str, String);

fn verify(ca: &mut CaState, path: &str, body: &[u8]) -> Result<Signed, Refusal> {
    let bad = |detail: &str| Refusal(StatusCode::BAD_REQUEST, "malformed", detail.to_owned());
    let jws: Value = serde_json::from_slice(body).map_err(|_| bad("not JSON"))?;
    let field = |name: &str| {
        jws[name]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| bad(name))
    };
    let (protected_b64, payload_b64, signature_b64) =
        (field("protected")?, field("payload")?, field("signature")?);
    let protected: Value = B64
        .decode(&protected_b64)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| bad("protected header"))?;
    if protected["alg"] != "ES256" {
        return Err(bad("only ES256"));
    }
    let nonce = protected["nonce"].as_str().unwrap_or_default();
    if !ca.nonces.remove(nonce) {
        return Err(Refusal(
            StatusCode::BAD_REQUEST,
            "badNonce",
            "unknown nonce".to_owned(),
        ));
    }
    if protected["url"] != format!("{}{path}", ca.base) {
        return Err(Refusal(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "url mismatch".to_owned(),
        ));
    }
    let (account, jwk) = match (&protected["kid"], &protected["jwk"]) {
        (Value::String(kid), Value::Null) => {
            let prefix = format!("{}/account/", ca.base);
            let n: usize = kid
                .strip_prefix(&prefix)
                .and_then(|n| n.parse().ok())
                .filter(|n| *n < ca.accounts.len())
                .ok_or_else(|| {
                    Refusal(StatusCode::BAD_REQUEST, "accountDoesNotExist", kid.clone())
                })?;
            (Some(n), None)
        }
        (Value::Null, jwk @ Value::Object(_)) => {
            (None, Some(ec_key(jwk).ok_or_else(|| bad("jwk"))?))
        }
        _ => return Err(bad("exactly one of kid and jwk")),
    };
    let point = match (account, &jwk) {
        (Some(n), _) => ca.accounts[n].0.clone(),
        (None, Some((point, _))) => point.clone(),
        (None, None) => unreachable!("one of them is set above"),
    };
    let signature = B64.decode(&signature_b64).map_err(|_| bad("signature"))?;
    let signed = format!("{protected_b64}.{payload_b64}");
    aws_lc_rs::signature::UnparsedPublicKey::new(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED,
        &point,
    )
    .verify(signed.as_bytes(), &signature)
    .map_err(|_| {
        Refusal(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "bad signature".to_owned(),
        )
    })?;
    let payload = if payload_b64.is_empty() {
        Value::Null
    } else {
        B64.decode(&payload_b64)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or_else(|| bad("payload"))?
    };
    Ok(Signed {
        account,
        jwk,
        payload,
    })
}

/// An EC P-256 JWK's uncompressed point and its RFC 7638 thumbprint.
fn ec_key(jwk: &Value) -> Option<(Vec<u8>, String)> {
    let (x, y) = (jwk["x"].as_str()?, jwk["y"].as_str()?);
    if jwk["kty"] != "EC" || jwk["crv"] != "P-256" {
        return None;
    }
    let mut point = vec![4u8];
    point.extend(B64.decode(x).ok()?);
    point.extend(B64.decode(y).ok()?);
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    let thumbprint = B64.encode(sha2::Sha256::digest(canonical.as_bytes()));
    Some((point, thumbprint))
}

macro_rules! signed {
    ($ca:expr, $path:expr, $body:expr) => {
        match verify($ca, &$path, &$body) {
            Ok(signed) => signed,
            Err(Refusal(status, kind, detail)) => return problem(status, kind, &detail),
        }
    };
}

async fn new_account(State(ca): Ca, body: Bytes) -> Response {
    let mut ca = ca.lock();
    let signed = signed!(&mut ca, "/account", body);
    let Some(jwk) = signed.jwk else {
        return problem(
            StatusCode::BAD_REQUEST,
            "malformed",
            "newAccount needs a jwk",
        );
    };
    if signed.payload["termsOfServiceAgreed"] != true {
        return problem(
            StatusCode::FORBIDDEN,
            "userActionRequired",
            "agree to the terms",
        );
    }
    let n = match ca.accounts.iter().position(|(point, _)| *point == jwk.0) {
        Some(n) => n,
        None => {
            ca.accounts.push(jwk);
            ca.accounts.len() - 1
        }
    };
    let location = format!("{}/account/{n}", ca.base);
    answer(
        &mut ca,
        StatusCode::CREATED,
        Some(location),
        json!({"status": "valid", "contact": signed.payload["contact"]}),
    )
}

fn order_json(ca: &CaState, n: usize) -> Value {
    let order = &ca.orders[n];
    let mut body = json!({
        "status": order.status,
        "identifiers": order.names.iter().map(|name| json!({"type": "dns", "value": name})).collect::<Vec<_>>(),
        "authorizations": (0..order.names.len()).map(|i| format!("{}/authz/{n}/{i}", ca.base)).collect::<Vec<_>>(),
        "finalize": format!("{}/finalize/{n}", ca.base),
    });
    if order.chain.is_some() {
        body["certificate"] = json!(format!("{}/cert/{n}", ca.base));
    }
    body
}

async fn new_order(State(ca): Ca, body: Bytes) -> Response {
    let mut ca = ca.lock();
    let signed = signed!(&mut ca, "/order", body);
    let Some(account) = signed.account else {
        return problem(
            StatusCode::BAD_REQUEST,
            "malformed",
            "orders are signed by kid",
        );
    };
    let names: Option<Vec<String>> = signed.payload["identifiers"].as_array().map(|ids| {
        ids.iter()
            .filter(|id| id["type"] == "dns")
            .filter_map(|id| id["value"].as_str().map(str::to_owned))
            .collect()
    });
    let Some(names) = names.filter(|names| !names.is_empty()) else {
        return problem(StatusCode::BAD_REQUEST, "malformed", "no DNS identifiers");
    };
    let tokens = names
        .iter()
        .map(|_| B64.encode(rand::random::<[u8; 24]>()))
        .collect();
    ca.orders.push(Order {
        account,
        valid: vec![false; names.len()],
        names,
        tokens,
        status: "pending",
        chain: None,
    });
    let n = ca.orders.len() - 1;
    let location = format!("{}/order/{n}", ca.base);
    let body = order_json(&ca, n);
    answer(&mut ca, StatusCode::CREATED, Some(location), body)
}

/// The order `n`, if the signer owns it.
fn owned(ca: &CaState, signed: &Signed, n: usize) -> Option<usize> {
    let order = ca.orders.get(n)?;
    (Some(order.account) == signed.account).then_some(n)
}

async fn order(State(ca): Ca, Path(n): Path<usize>, body: Bytes) -> Response {
    let mut ca = ca.lock();
    let signed = signed!(&mut ca, format!("/order/{n}"), body);
    let Some(n) = owned(&ca, &signed, n) else {
        return problem(StatusCode::NOT_FOUND, "malformed", "no such order");
    };
    let body = order_json(&ca, n);
    answer(&mut ca, StatusCode::OK, None, body)
}

fn challenge_json(ca: &CaState, n: usize, i: usize) -> Value {
    let order = &ca.orders[n];
    json!({
        "type": "http-01",
        "url": format!("{}/chall/{n}/{i}", ca.base),
        "token": order.tokens[i],
        "status": if order.valid[i] { "valid" } else { "pending" },
    })
}

async fn authorization(State(ca): Ca, Path((n, i)): Path<(usize, usize)>, body: Bytes) -> Response {
    let mut ca = ca.lock();
    let signed = signed!(&mut ca, format!("/authz/{n}/{i}"), body);
    let Some(n) = owned(&ca, &signed, n).filter(|n| i < ca.orders[*n].names.len()) else {
        return problem(StatusCode::NOT_FOUND, "malformed", "no such authorization");
    };
    let order = &ca.orders[n];
    let body = json!({
        "status": if order.valid[i] { "valid" } else if order.status == "invalid" { "invalid" } else { "pending" },
        "identifier": {"type": "dns", "value": order.names[i]},
        "challenges": [challenge_json(&ca, n, i)],
    });
    answer(&mut ca, StatusCode::OK, None, body)
}

/// Checks the HTTP-01 answer at once, then answers with the outcome.
async fn challenge(State(ca): Ca, Path((n, i)): Path<(usize, usize)>, body: Bytes) -> Response {
    let (url, host, expected) = {
        let mut ca = ca.lock();
        let signed = signed!(&mut ca, format!("/chall/{n}/{i}"), body);
        let Some(n) = owned(&ca, &signed, n).filter(|n| i < ca.orders[*n].names.len()) else {
            return problem(StatusCode::NOT_FOUND, "malformed", "no such challenge");
        };
        let order = &ca.orders[n];
        let thumbprint = &ca.accounts[order.account].1;
        (
            format!(
                "http://{}/.well-known/acme-challenge/{}",
                ca.http01, order.tokens[i]
            ),
            order.names[i].clone(),
            format!("{}.{thumbprint}", order.tokens[i]),
        )
    };
    let fetched = reqwest::Client::new()
        .get(&url)
        .header(header::HOST, host)
        .send()
        .await;
    let passed = match fetched {
        Ok(response) if response.status().is_success() => response
            .text()
            .await
            .is_ok_and(|text| text.trim() == expected),
        _ => false,
    };
    let mut ca = ca.lock();
    let order = &mut ca.orders[n];
    if passed {
        order.valid[i] = true;
        if order.valid.iter().all(|valid| *valid) {
            order.status = "ready";
        }
    } else {
        order.status = "invalid";
    }
    let body = challenge_json(&ca, n, i);
    answer(&mut ca, StatusCode::OK, None, body)
}

async fn finalize(State(ca): Ca, Path(n): Path<usize>, body: Bytes) -> Response {
    let mut ca = ca.lock();
    let signed = signed!(&mut ca, format!("/finalize/{n}"), body);
    let Some(n) = owned(&ca, &signed, n) else {
        return problem(StatusCode::NOT_FOUND, "malformed", "no such order");
    };
    if ca.orders[n].status != "ready" {
        return problem(
            StatusCode::FORBIDDEN,
            "orderNotReady",
            "the order is not ready",
        );
    }
    let csr = signed.payload["csr"]
        .as_str()
        .and_then(|csr| B64.decode(csr).ok())
        .map(rustls::pki_types::CertificateSigningRequestDer::from)
        .and_then(|der| rcgen::CertificateSigningRequestParams::from_der(&der).ok());
    let Some(mut csr) = csr else {
        return problem(StatusCode::BAD_REQUEST, "badCSR", "unreadable CSR");
    };
    let mut asked: Vec<String> = csr
        .params
        .subject_alt_names
        .iter()
        .filter_map(|san| match san {
            rcgen::SanType::DnsName(name) => Some(name.as_str().to_owned()),
            _ => None,
        })
        .collect();
    let mut ordered = ca.orders[n].names.clone();
    asked.sort();
    ordered.sort();
    if asked != ordered {
        return problem(
            StatusCode::BAD_REQUEST,
            "badCSR",
            "the CSR names other names",
        );
    }
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock");
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    csr.params.not_before = epoch + Duration::from_secs(now.as_secs());
    csr.params.not_after = epoch + Duration::from_secs(now.as_secs()) + ca.lifetime;
    ca.serial += 1;
    csr.params.serial_number = Some(rcgen::SerialNumber::from(ca.serial));
    let Ok(cert) = csr.signed_by(&ca.issuer) else {
        return problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "serverInternal",
            "signing",
        );
    };
    ca.issued.push(cert.der().to_vec());
    let chain = format!("{}{}", cert.pem(), ca.ca_pem);
    ca.orders[n].chain = Some(chain);
    ca.orders[n].status = "valid";
    let body = order_json(&ca, n);
    answer(&mut ca, StatusCode::OK, None, body)
}

async fn certificate(State(ca): Ca, Path(n): Path<usize>, body: Bytes) -> Response {
    let mut ca = ca.lock();
    let signed = signed!(&mut ca, format!("/cert/{n}"), body);
    let Some(chain) = owned(&ca, &signed, n).and_then(|n| ca.orders[n].chain.clone()) else {
        return problem(StatusCode::NOT_FOUND, "malformed", "no certificate");
    };
    let nonce = fresh_nonce(&mut ca);
    (
        StatusCode::OK,
        [
            ("replay-nonce".to_owned(), nonce),
            (
                header::CONTENT_TYPE.as_str().to_owned(),
                "application/pem-certificate-chain".to_owned(),
            ),
        ],
        chain,
    )
        .into_response()
}
