//! Tables of refused requests: each row one request and the status and
//! errcode it must get, run in order by `check` (one caller) or
//! `check_each` (a caller per row).

use serde_json::Value;

use super::{expect_error, Raw};

/// A request body as a table writes it: text is sent as it stands (it need
/// not be JSON at all), a JSON value as its serialization.
pub trait Body {
    fn into_text(self) -> String;
}

impl Body for &str {
    fn into_text(self) -> String {
        self.to_owned()
    }
}

impl Body for String {
    fn into_text(self) -> String {
        self
    }
}

impl Body for Value {
    fn into_text(self) -> String {
        self.to_string()
    }
}

/// One refused request: method, path, body, status and errcode. A failure
/// names the request.
pub type Row<B = &'static str, P = String> = (&'static str, P, Option<B>, u16, &'static str);

/// A row that also says what the request tries, for the failure message.
pub type Described<B = &'static str, P = String, D = &'static str> =
    (&'static str, P, Option<B>, u16, &'static str, D);

/// A described row led by the caller that sends it.
pub type ByCaller<'a, B = &'static str, P = String, D = &'static str> =
    (&'a Raw, &'static str, P, Option<B>, u16, &'static str, D);

/// A row in the one form every table converts to.
pub struct Refusal {
    pub method: &'static str,
    pub path: String,
    pub body: Option<String>,
    pub status: u16,
    pub errcode: &'static str,
    pub what: String,
}

impl Refusal {
    /// Sends the request as `raw` and asserts the refusal.
    pub async fn check(&self, raw: &Raw) {
        let res = raw
            .call(self.method, &self.path, self.body.as_deref())
            .await;
        expect_error(&res, self.status, self.errcode, &self.what);
    }
}

impl<B: Body, P: Into<String>> From<Row<B, P>> for Refusal {
    fn from((method, path, body, status, errcode): Row<B, P>) -> Self {
        let path = path.into();
        let body = body.map(Body::into_text);
        let what = format!("{method} {path} {}", body.as_deref().unwrap_or(""));
        Self {
            method,
            path,
            body,
            status,
            errcode,
            what,
        }
    }
}

impl<B: Body, P: Into<String>, D: Into<String>> From<Described<B, P, D>> for Refusal {
    fn from((method, path, body, status, errcode, what): Described<B, P, D>) -> Self {
        let row = Self::from((method, path, body, status, errcode));
        Self {
            what: format!("{} ({method} {})", what.into(), row.path),
            ..row
        }
    }
}

/// Sends each row's request as `raw`, in order, and asserts its refusal.
pub async fn check<R: Into<Refusal>>(raw: &Raw, rows: impl IntoIterator<Item = R>) {
    for row in rows {
        row.into().check(raw).await;
    }
}

/// Like `check`, for tables that mix callers: each row leads with its caller.
pub async fn check_each<'a, B: Body, P: Into<String>, D: Into<String>>(
    rows: impl IntoIterator<Item = ByCaller<'a, B, P, D>>,
) {
    for (raw, method, path, body, status, errcode, what) in rows {
        Refusal::from((method, path, body, status, errcode, what))
            .check(raw)
            .await;
    }
}
