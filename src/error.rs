//! The server's error type, mapped once, here, to the Matrix error JSON.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::{json, Value};

/// An error answered to a client: a Matrix errcode, an HTTP status, a human
/// message and, for some codes, extra fields (UIA flows, retry delays).
/// Clone, so that one outcome can answer several waiting requests.
#[derive(Debug, Clone)]
pub struct Error {
    pub status: StatusCode,
    pub errcode: &'static str,
    pub message: String,
    pub extra: Option<Value>,
    /// Another server refused our request with a 4xx that asking again
    /// will not change (not 401, 404, 408 or 429).
    pub peer_refused: bool,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(status: StatusCode, errcode: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            errcode,
            message: message.into(),
            extra: None,
            peer_refused: false,
        }
    }

    pub fn with_extra(mut self, extra: Value) -> Self {
        self.extra = Some(extra);
        self
    }

    pub fn forbidden(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "M_FORBIDDEN", msg)
    }
    pub fn not_found(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "M_NOT_FOUND", msg)
    }
    pub fn bad_json(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "M_BAD_JSON", msg)
    }
    pub fn not_json(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "M_NOT_JSON", msg)
    }
    pub fn missing_param(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "M_MISSING_PARAM", msg)
    }
    pub fn invalid_param(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "M_INVALID_PARAM", msg)
    }
    pub fn missing_token() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "M_MISSING_TOKEN",
            "Missing access token",
        )
    }
    pub fn unknown_token() -> Self {
        Self::unknown_token_named("Unknown access token")
    }
    /// An unknown token of another kind (a refresh token).
    pub fn unknown_token_named(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "M_UNKNOWN_TOKEN", msg)
            .with_extra(json!({ "soft_logout": false }))
    }
    /// An expired access token: the client refreshes it, or logs in again
    /// keeping its device and keys.
    pub fn soft_logout() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "M_UNKNOWN_TOKEN",
            "Access token has expired",
        )
        .with_extra(json!({ "soft_logout": true }))
    }
    pub fn unrecognized(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "M_UNRECOGNIZED", msg)
    }
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "M_UNRECOGNIZED",
            "Method not allowed on this endpoint",
        )
    }
    pub fn user_in_use() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "M_USER_IN_USE",
            "User ID already taken",
        )
    }
    pub fn invalid_username(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "M_INVALID_USERNAME", msg)
    }
    pub fn exclusive(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "M_EXCLUSIVE", msg)
    }
    pub fn too_large(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "M_TOO_LARGE", msg)
    }
    pub fn limit_exceeded(retry_after_ms: u64) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "M_LIMIT_EXCEEDED",
            "Too many requests",
        )
        .with_extra(json!({ "retry_after_ms": retry_after_ms }))
    }
    pub fn unsupported_room_version(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "M_UNSUPPORTED_ROOM_VERSION", msg)
    }
    pub fn room_in_use(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "M_ROOM_IN_USE", msg)
    }
    pub fn user_deactivated() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "M_USER_DEACTIVATED",
            "This account has been deactivated",
        )
    }
    pub fn guest_access_forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "M_GUEST_ACCESS_FORBIDDEN",
            "Guest access is disabled",
        )
    }
    pub fn unauthorized(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "M_UNAUTHORIZED", msg)
    }
    /// Another server could not be reached or gave no usable answer.
    /// Another server refused a request for good (a 4xx but 401, 404,
    /// 408 or 429); answered as 502 to a client.
    pub fn refused_by_peer(msg: impl Into<String>) -> Self {
        let mut error = Self::unavailable(msg);
        error.peer_refused = true;
        error
    }
    pub fn unavailable(msg: impl Into<String>) -> Self {
        let msg = msg.into();
        tracing::info!(error = %msg, "remote server unavailable");
        Self::new(StatusCode::BAD_GATEWAY, "M_UNKNOWN", msg)
    }
    pub fn internal(msg: impl Into<String>) -> Self {
        let msg = msg.into();
        tracing::error!(error = %msg, "internal error");
        Self::unexplained()
    }

    /// The 500 a client gets, which never says what went wrong inside.
    fn unexplained() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "M_UNKNOWN",
            "Internal server error",
        )
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.errcode, self.status, self.message)
    }
}

impl std::error::Error for Error {}

impl From<matrixos_storage::Error> for Error {
    fn from(e: matrixos_storage::Error) -> Self {
        if e.is_memory_miss() {
            // Read again from the disk: nothing to log.
            return Self::unexplained();
        }
        Error::internal(format!("storage: {e}"))
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::internal(format!("serialisation: {e}"))
    }
}

impl From<tokio::task::JoinError> for Error {
    fn from(e: tokio::task::JoinError) -> Self {
        Error::internal(format!("task: {e}"))
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        if self.status.is_client_error() {
            tracing::info!(errcode = self.errcode, status = self.status.as_u16(), message = %self.message, "request refused");
        }
        let mut body = match self.extra {
            Some(Value::Object(map)) => Value::Object(map),
            _ => json!({}),
        };
        // A user-interactive auth challenge carries no errcode until a stage fails.
        if !self.errcode.is_empty() {
            body["errcode"] = json!(self.errcode);
            body["error"] = json!(self.message);
        }
        // v1.10 (MSC4041): a 429 says when to come back in a header too,
        // in whole seconds, rounded up.
        let retry_after = (self.status == StatusCode::TOO_MANY_REQUESTS)
            .then(|| body.get("retry_after_ms").and_then(Value::as_u64))
            .flatten()
            .map(|ms| ms.div_ceil(1000).max(1));
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(http::header::RETRY_AFTER, http::HeaderValue::from(seconds));
        }
        response
    }
}
