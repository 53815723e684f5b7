//! The HTTP client the ACME exchange goes through: reqwest, as the rest of
//! the server's outbound HTTP, over HTTPS only, checking the CA's
//! certificate against the system's roots or, when `[acme] ca_file` is
//! set, only against that file's. Answers are capped in size: a CA sends
//! small JSON documents and certificate chains.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use instant_acme::{BodyWrapper, BytesResponse, HttpClient};

use crate::error::{Error, Result};

/// The largest answer read from the CA.
const MAX_ANSWER: usize = 1 << 20;

pub struct AcmeHttp(reqwest::Client);

impl AcmeHttp {
    pub fn new(ca_file: Option<&std::path::Path>) -> Result<Self> {
        let mut builder = reqwest::Client::builder()
            .https_only(true)
            .timeout(Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::none());
        if let Some(path) = ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| Error::internal(format!("{}: {e}", path.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| Error::internal(format!("{}: {e}", path.display())))?;
            builder = builder.tls_certs_only(certs);
        }
        let client = builder
            .build()
            .map_err(|e| Error::internal(format!("the ACME HTTP client: {e}")))?;
        Ok(Self(client))
    }
}

type Answer = std::result::Result<BytesResponse, instant_acme::Error>;

impl HttpClient for AcmeHttp {
    fn request(
        &self,
        request: http::Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Answer> + Send>> {
        let client = self.0.clone();
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let body = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let sent = client
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers)
                .body(body)
                .send()
                .await
                .map_err(other)?;
            let mut answer = http::Response::builder().status(sent.status());
            if let Some(headers) = answer.headers_mut() {
                headers.extend(sent.headers().clone());
            }
            let body = read_capped(sent).await?;
            let (parts, ()) = answer.body(()).map_err(other)?.into_parts();
            Ok(BytesResponse {
                parts,
                body: Box::new(body),
            })
        })
    }
}

async fn read_capped(
    mut response: reqwest::Response,
) -> std::result::Result<Bytes, instant_acme::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(other)? {
        if body.len() + chunk.len() > MAX_ANSWER {
            return Err(instant_acme::Error::Str("the CA's answer is too large"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(body))
}

fn other(e: impl std::error::Error + Send + Sync + 'static) -> instant_acme::Error {
    instant_acme::Error::Other(Box::new(e))
}
