//! Bounds on reading a request's body, in size and in time, applied to every
//! routed request before its handler runs.
//!
//! A body over the endpoint's limit is refused from its `Content-Length`
//! alone (read and dropped first when it is a few MiB at most, so that the
//! client reads the answer). hyper answers `Expect: 100-continue`
//! only when the body is first read, so such a client is refused before it
//! is ever invited to send. A body without a length is cut off once it
//! passes the limit. And a body that does not arrive in time ends in an
//! error, so a client trickling bytes cannot hold a connection and a buffer.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::header::CONTENT_LENGTH;
use http::{HeaderMap, StatusCode};
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use super::body_limit::BodyClass;
use crate::error::Error;
use crate::services::Services;

/// The body limit of the request's endpoint, for the handlers that read it.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// The middleware (a route layer, so the route template is known).
pub async fn guard(
    State(services): State<Arc<Services>>,
    route: Option<MatchedPath>,
    request: Request,
    next: Next,
) -> Response {
    let class = BodyClass::of(route.as_ref().map_or("", MatchedPath::as_str));
    let limit = class.limit(services.config.max_request_size);
    if let Some(declared) = declared_length(request.headers()).filter(|n| *n > limit as u64) {
        if declared <= DRAIN_LIMIT && !expects_continue(request.headers()) {
            drain(request.into_body(), services.config.body_timeout()).await;
        }
        return too_large(limit).into_response();
    }
    let (mut parts, body) = request.into_parts();
    parts.extensions.insert(BodyLimit(limit));
    let body = if body.is_end_stream() {
        body
    } else {
        let timeout = services.config.body_timeout();
        Body::new(GuardedBody::new(body, limit, timeout, class.streams()))
    };
    next.run(Request::from_parts(parts, body)).await
}

/// A body over its endpoint's limit but no larger than this is read and
/// dropped before the 413, so that a client still writing it reads the
/// answer rather than a broken pipe; a larger one (or one that waits for
/// `100 Continue`) is refused at once, without reading any of it.
const DRAIN_LIMIT: u64 = 4 << 20;

fn expects_continue(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"))
}

/// Reads a body to its end and drops it, within the body read timeout.
async fn drain(mut body: Body, timeout: Duration) {
    use http_body_util::BodyExt;
    let _ = tokio::time::timeout(timeout, async {
        while let Some(frame) = body.frame().await {
            if frame.is_err() {
                break;
            }
        }
    })
    .await;
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn too_large(limit: usize) -> Error {
    Error::too_large(format!(
        "Request body is larger than this endpoint accepts ({limit} bytes)"
    ))
}

/// Why reading a guarded body stopped.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("request body over {0} bytes")]
    TooLarge(usize),
    #[error("request body not received in time")]
    TimedOut,
    #[error("reading the request body: {0}")]
    Read(#[source] axum::Error),
}

/// A request body that fails once it passes `limit` bytes or its deadline.
struct GuardedBody {
    inner: Body,
    limit: usize,
    received: usize,
    deadline: Instant,
    /// `Some`: the deadline moves this far ahead with each part received
    /// (a pause limit); `None`: one deadline for the whole body.
    pause: Option<Duration>,
    /// Made the first time the body is waited on, so requests whose body
    /// is already there never start a timer.
    timer: Option<Pin<Box<Sleep>>>,
}

impl GuardedBody {
    fn new(inner: Body, limit: usize, timeout: Duration, streams: bool) -> Self {
        Self {
            inner,
            limit,
            received: 0,
            deadline: Instant::now() + timeout,
            pause: streams.then_some(timeout),
            timer: None,
        }
    }

    /// Pending until the deadline; ready once it has passed.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let deadline = self.deadline;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.deadline() != deadline {
            timer.as_mut().reset(deadline);
        }
        timer.as_mut().poll(cx)
    }
}

impl HttpBody for GuardedBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received = this.received.saturating_add(data.len());
                    if this.received > this.limit {
                        return Poll::Ready(Some(Err(BodyError::TooLarge(this.limit))));
                    }
                    if let Some(pause) = this.pause {
                        this.deadline = Instant::now() + pause;
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(BodyError::Read(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match this.poll_deadline(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(BodyError::TimedOut))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Reads the whole body within the endpoint's limit (a request that did
/// not pass the guard gets the smallest), answering the Matrix error for
/// a body too large, too slow or broken off.
pub async fn read_body(request: Request) -> Result<Bytes, Error> {
    let (parts, body) = request.into_parts();
    read_body_of(&parts, body).await
}

/// [`read_body`] for a request already split into its head and body.
pub async fn read_body_of(parts: &http::request::Parts, body: Body) -> Result<Bytes, Error> {
    let limit = parts
        .extensions
        .get::<BodyLimit>()
        .map_or(BodyClass::Small.limit(usize::MAX), |l| l.0);
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|e| body_error(&e, limit))
}

/// The answer for a failed body read, from the first cause that says why.
fn body_error(error: &axum::Error, limit: usize) -> Error {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        if let Some(e) = e.downcast_ref::<BodyError>() {
            return match e {
                BodyError::TooLarge(limit) => too_large(*limit),
                BodyError::TimedOut => Error::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "M_UNKNOWN",
                    "The request body did not arrive in time",
                ),
                BodyError::Read(_) => break,
            };
        }
        if e.is::<http_body_util::LengthLimitError>() {
            return too_large(limit);
        }
        cause = e.source();
    }
    Error::new(
        StatusCode::BAD_REQUEST,
        "M_UNKNOWN",
        "The request body could not be read",
    )
}

/// The raw body of a request, read within the endpoint's limit.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = Error;

    async fn from_request(request: Request, _: &S) -> Result<Self, Error> {
        Ok(RawBody(read_body(request).await?))
    }
}
