//! Typed endpoints: a handler takes ruma's request type for its endpoint
//! and returns ruma's response type. The one extractor here authenticates
//! the caller as the endpoint's metadata says, reads the body within the
//! endpoint's limit and maps every parse failure to the Matrix error a
//! client expects; routes take their paths and method from the metadata.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequest, RawPathParams, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter};
use axum::Router;
use bytes::{Bytes, BytesMut};
use http::request::Parts;
use ruma::api::error::{DeserializationError, FromHttpRequestError};
use ruma::api::path_builder::PathBuilder;
use ruma::api::{IncomingRequest, Metadata, OutgoingResponse};

pub use super::authenticate::Authenticate;
use super::body_guard::read_body_of;
use crate::error::{Error, Result};
use crate::services::Services;

/// The caller as the scheme of endpoint `R` sees it.
pub type CallerOf<R> = <<R as Metadata>::Authentication as Authenticate>::Caller;

/// A parsed request for endpoint `R`, the caller and the client's address.
pub struct Ruma<R: Metadata>
where
    R::Authentication: Authenticate,
{
    pub body: R,
    pub caller: CallerOf<R>,
    pub ip: IpAddr,
}

impl<R> Clone for Ruma<R>
where
    R: Metadata + Clone,
    R::Authentication: Authenticate,
    CallerOf<R>: Clone,
{
    fn clone(&self) -> Self {
        Self {
            body: self.body.clone(),
            caller: self.caller.clone(),
            ip: self.ip,
        }
    }
}

impl<R> FromRequest<Arc<Services>> for Ruma<R>
where
    R: IncomingRequest + Send + 'static,
    R::Authentication: Authenticate,
{
    type Rejection = Error;

    async fn from_request(request: Request, services: &Arc<Services>) -> Result<Self> {
        let (caller, ip, body) = authenticated::<R>(request, services).await?;
        Ok(Ruma {
            body: body?,
            caller,
            ip,
        })
    }
}

/// The caller and the client's address of a request for endpoint `R`, and
/// its parsed body or why it could not be parsed (an endpoint may judge
/// other things first: see `uia_request`).
pub async fn authenticated<R>(
    request: Request,
    services: &Arc<Services>,
) -> Result<(CallerOf<R>, IpAddr, Result<R>)>
where
    R: IncomingRequest + Send + 'static,
    R::Authentication: Authenticate,
{
    let (mut parts, body) = request.into_parts();
    let claim = <R::Authentication as Authenticate>::claim(&parts, services)?;
    let ip = client_ip(&parts);
    let mut path_args = path_args(&mut parts, services).await?;
    // Routes registered without a trailing parameter (`…/state/{type}`
    // for the empty state key) give it as empty.
    path_args.resize(path_parameters::<R>().max(path_args.len()), String::new());
    let bytes = if parts.method == http::Method::GET || parts.method == http::Method::HEAD {
        Bytes::new()
    } else {
        let bytes = read_body_of(&parts, body).await?;
        json_body(bytes, &parts)?
    };
    let request = http::Request::from_parts(parts, bytes);
    let caller = <R::Authentication as Authenticate>::confirm(claim, &request, services).await?;
    let body = R::try_from_http_request(request, &path_args).map_err(request_error);
    Ok((caller, ip, body))
}

/// How many parameters endpoint `R`'s path has (every path of an endpoint
/// has the same).
fn path_parameters<R: Metadata>() -> usize {
    R::PATH_BUILDER
        .all_paths()
        .next()
        .map_or(0, |path| path.bytes().filter(|b| *b == b'{').count())
}

/// The client's address (loopback when unknown, as in in-process tests).
fn client_ip(parts: &Parts) -> IpAddr {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([127, 0, 0, 1]), |c| c.0.ip())
}

/// The route's parameters, percent-decoded, in the order of the path.
async fn path_args(parts: &mut Parts, services: &Arc<Services>) -> Result<Vec<String>> {
    use axum::extract::FromRequestParts;
    let params = RawPathParams::from_request_parts(parts, services)
        .await
        .map_err(|e| Error::invalid_param(format!("Invalid path parameter: {e}")))?;
    Ok(params.iter().map(|(_, v)| v.to_owned()).collect())
}

/// A JSON body checked the way Synapse checks one: an empty body counts
/// as `{}` (clients send none to `POST /logout`), text that is not JSON is
/// `M_NOT_JSON`, JSON that is not an object is `M_BAD_JSON`. Bodies that
/// are not JSON at all (media uploads) pass through untouched.
fn json_body(bytes: Bytes, parts: &Parts) -> Result<Bytes> {
    if !expects_json(parts) {
        return Ok(bytes);
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Bytes::from_static(b"{}"));
    }
    match serde_json::from_slice::<serde::de::IgnoredAny>(&bytes) {
        Ok(_) if bytes.trim_ascii_start().first() == Some(&b'{') => Ok(bytes),
        Ok(_) => Err(Error::bad_json("Request body must be a JSON object")),
        Err(e) => Err(Error::not_json(format!("Content not JSON: {e}"))),
    }
}

/// Whether the endpoint's body is JSON: everything but media uploads,
/// which say what they carry in `Content-Type`.
fn expects_json(parts: &Parts) -> bool {
    !super::body_limit::is_media_upload(parts.uri.path())
}

/// The Matrix error for a request ruma could not parse.
fn request_error(error: FromHttpRequestError) -> Error {
    match error {
        FromHttpRequestError::MethodMismatch { .. } => Error::method_not_allowed(),
        FromHttpRequestError::Deserialization(e) => deserialization_error(e),
        e => Error::bad_json(e.to_string()),
    }
}

/// How ruma's identifier parsing says an id is malformed: in a body, as in
/// a path, Synapse answers `M_INVALID_PARAM` for a string that is not the
/// id it must be (and `M_BAD_JSON` for a value of the wrong JSON type).
const MALFORMED_IDS: [&str; 7] = [
    "identifier or required part of it is empty",
    "identifier contains invalid characters",
    "server name is not a valid IP address or domain name",
    "ID exceeds 255 bytes",
    "required colon is missing",
    "leading sigil is incorrect or missing",
    "invalid Server Name",
];

fn deserialization_error(error: DeserializationError) -> Error {
    let message = error.to_string();
    match error {
        DeserializationError::Json(_) | DeserializationError::Query(_)
            if message.starts_with("missing field") =>
        {
            Error::missing_param(message)
        }
        DeserializationError::Json(_) if MALFORMED_IDS.iter().any(|m| message.starts_with(m)) => {
            Error::invalid_param(message)
        }
        DeserializationError::Json(_) => Error::bad_json(message),
        _ => Error::invalid_param(message),
    }
}

/// A handler's response, serialised by ruma.
pub(crate) struct Reply<T>(pub(crate) Result<T>);

impl<T: OutgoingResponse> IntoResponse for Reply<T> {
    fn into_response(self) -> Response {
        match self.0 {
            Ok(response) => match response.try_into_http_response::<BytesMut>() {
                Ok(response) => response.map(|b| Body::from(b.freeze())).into_response(),
                Err(e) => {
                    Error::internal(format!("Response not serialisable: {e}")).into_response()
                }
            },
            Err(e) => e.into_response(),
        }
    }
}

/// An extractor that parses one endpoint's request: [`Ruma`], or
/// [`super::uia_request::UiaRequest`] for endpoints with user-interactive
/// auth.
pub trait ParsedRequest: FromRequest<Arc<Services>, Rejection = Error> + Send + 'static {
    type Endpoint: IncomingRequest + Send + 'static;
}

impl<R> ParsedRequest for Ruma<R>
where
    R: IncomingRequest + Send + 'static,
    R::Authentication: Authenticate,
{
    type Endpoint = R;
}

/// What a handler taking `E` answers.
pub type ResponseOf<E> = <<E as ParsedRequest>::Endpoint as IncomingRequest>::OutgoingResponse;

/// Registers typed handlers at every path their endpoint's metadata lists.
pub trait TypedRoutes: Sized {
    /// At the endpoint's own paths.
    fn endpoint<E, H, F>(self, handler: H) -> Self
    where
        E: ParsedRequest,
        H: Fn(Arc<Services>, E) -> F + Clone + Send + Sync + 'static,
        F: Future<Output = Result<ResponseOf<E>>> + Send + 'static,
    {
        self.endpoint_at::<E, H, F>(E::Endpoint::PATH_BUILDER.all_paths(), handler)
    }

    /// At the given paths, which may leave out trailing parameters: they
    /// reach the handler empty.
    fn endpoint_at<E, H, F>(
        self,
        paths: impl IntoIterator<Item = &'static str>,
        handler: H,
    ) -> Self
    where
        E: ParsedRequest,
        H: Fn(Arc<Services>, E) -> F + Clone + Send + Sync + 'static,
        F: Future<Output = Result<ResponseOf<E>>> + Send + 'static;

    /// A handler that only reads, at the endpoint's own paths: its reads
    /// may wait on the disk, so its thread hands its other tasks on first
    /// (`blocking::in_place`).
    fn reading<R, H>(self, handler: H) -> Self
    where
        R: IncomingRequest + Clone + Send + 'static,
        CallerOf<R>: Clone,
        R::Authentication: Authenticate,
        R::OutgoingResponse: Send + 'static,
        H: Fn(Arc<Services>, Ruma<R>) -> Result<R::OutgoingResponse>
            + Clone
            + Send
            + Sync
            + 'static,
    {
        self.reading_at::<R, H>(R::PATH_BUILDER.all_paths(), handler)
    }

    /// A reading handler ([`TypedRoutes::reading`]) at the given paths.
    fn reading_at<R, H>(self, paths: impl IntoIterator<Item = &'static str>, handler: H) -> Self
    where
        R: IncomingRequest + Clone + Send + 'static,
        CallerOf<R>: Clone,
        R::Authentication: Authenticate,
        R::OutgoingResponse: Send + 'static,
        H: Fn(Arc<Services>, Ruma<R>) -> Result<R::OutgoingResponse>
            + Clone
            + Send
            + Sync
            + 'static,
    {
        self.endpoint_at::<Ruma<R>, _, _>(paths, move |s, req| {
            let handler = handler.clone();
            std::future::ready(crate::blocking::reads(move || {
                handler(s.clone(), req.clone())
            }))
        })
    }
}

impl TypedRoutes for Router<Arc<Services>> {
    fn endpoint_at<E, H, F>(self, paths: impl IntoIterator<Item = &'static str>, handler: H) -> Self
    where
        E: ParsedRequest,
        H: Fn(Arc<Services>, E) -> F + Clone + Send + Sync + 'static,
        F: Future<Output = Result<ResponseOf<E>>> + Send + 'static,
    {
        let method = E::Endpoint::METHOD;
        let filter = MethodFilter::try_from(method).expect("endpoints use standard methods");
        paths.into_iter().fold(self, |router, path| {
            let handler = handler.clone();
            router.route(
                path,
                on(filter, move |State(s): State<Arc<Services>>, req: E| {
                    let response = handler(s, req);
                    async move { Reply(response.await) }
                }),
            )
        })
    }
}
