//! A small web site on a loopback address for URL previews to fetch: a page
//! with Open Graph tags, its image, a redirect, and a count of requests.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

pub struct WebSite {
    pub addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

/// The page's image: a 64×48 PNG.
pub fn cat_png() -> Vec<u8> {
    let image = image::RgbImage::from_pixel(64, 48, image::Rgb([200, 120, 40]));
    let mut bytes = Vec::new();
    image::DynamicImage::ImageRgb8(image)
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .expect("encode png");
    bytes
}

const PAGE: &str = r#"<!doctype html><html><head>
<title>Not this title</title>
<meta property="og:title" content="Cats &amp; dogs">
<meta property="og:description" content="All about pets">
<meta property="og:image" content="/cat.png">
</head><body>Hello</body></html>"#;

impl WebSite {
    /// Serves on `ip` (any port); `/redirect` sends to `redirect_to`.
    pub async fn start(ip: &str, redirect_to: &str) -> WebSite {
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = hits.clone();
        let location = redirect_to.to_owned();
        let app = Router::new()
            .route(
                "/page",
                get(|| async { ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE) }),
            )
            .route(
                "/cat.png",
                get(|| async { ([(header::CONTENT_TYPE, "image/png")], cat_png()) }),
            )
            .route(
                "/redirect",
                get(move || async move {
                    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
                }),
            )
            .layer(axum::middleware::from_fn(
                move |req: axum::extract::Request, next: axum::middleware::Next| {
                    counted.fetch_add(1, Ordering::SeqCst);
                    next.run(req)
                },
            ));
        let ip: IpAddr = ip.parse().expect("ip");
        let listener = tokio::net::TcpListener::bind((ip, 0))
            .await
            .expect("bind the web site");
        let addr = listener.local_addr().expect("address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        WebSite { addr, hits, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Requests served so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for WebSite {
    fn drop(&mut self) {
        self.task.abort();
    }
}
