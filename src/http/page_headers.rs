//! The headers every page or asset the server renders itself carries (the
//! desktop, app pages): its Content-Security-Policy, no MIME sniffing, no
//! referrer, and how it may be cached.

use http::{header, HeaderMap, HeaderValue};

pub fn fence(headers: &mut HeaderMap, csp: &str, cache: &'static str) {
    if let Ok(v) = HeaderValue::from_str(csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
}
