//! URL previews (`/v1/media/preview_url`), when the operator turns them on:
//! the page's Open Graph data, its image kept as a file of this server.
//! Pages are fetched only from addresses outside the server's own network
//! (loopback, private, link-local and other special ranges are refused
//! unless allowed by `url_preview_ip_range_allowlist`), and answers are
//! kept an hour (at most 1000 of at most 16 KiB each).

mod fetch;
pub mod html;

use std::io::Cursor;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use ruma::UserId;
use serde_json::{json, Map, Value};
use tokio::sync::Semaphore;
use url::Url;

use crate::bounded_map::BoundedMap;
use crate::error::{Error, Result};
use crate::federation::client::ip_filter::IpFilter;
use crate::services::media::Media;

/// How long a preview is kept.
const CACHE_TTL: Duration = Duration::from_secs(3600);
/// Most previews kept.
const CACHE_CAP: usize = 1000;
/// Most fetches at once, across all users; more wait their turn.
const MAX_FETCHES: usize = 8;
/// The longest URL previewed.
const MAX_URL_BYTES: usize = 2048;
/// The largest preview kept (as JSON), so that the cache stays small.
const MAX_CACHED_BYTES: usize = 16 << 10;

pub struct UrlPreviews {
    client: reqwest::Client,
    filter: Arc<IpFilter>,
    cache: Mutex<BoundedMap<String, Arc<Value>>>,
    fetches: Semaphore,
}

impl UrlPreviews {
    /// Previews fetched from public addresses and those `allowlist` opens.
    pub fn new(allowlist: &[String]) -> Result<Self> {
        let filter = Arc::new(IpFilter::new(allowlist)?);
        Ok(Self {
            client: fetch::client(filter.clone())?,
            filter,
            cache: Mutex::new(BoundedMap::new(CACHE_CAP)),
            fetches: Semaphore::new(MAX_FETCHES),
        })
    }

    /// The preview of `url` asked for by `user`: Open Graph properties,
    /// `og:image` an `mxc://` URI of this server's copy.
    pub async fn preview(&self, media: &Media, user: &UserId, url: &str) -> Result<Arc<Value>> {
        if url.len() > MAX_URL_BYTES {
            return Err(Error::invalid_param("The URL is too long"));
        }
        let url = Url::parse(url).map_err(|_| Error::invalid_param("Invalid URL"))?;
        fetch::check_url(&url, &self.filter)?;
        let key = url.to_string();
        {
            let mut cache = self.cache.lock();
            cache.expire(Instant::now(), CACHE_TTL);
            if let Some(known) = cache.get(&key) {
                return Ok(known.clone());
            }
        }
        let _turn = self
            .fetches
            .acquire()
            .await
            .map_err(|_| Error::internal("URL previews stopped"))?;
        let page = fetch::get(&self.client, &url).await?;
        let preview = if page.content_type.starts_with("image/") {
            self.image_properties(media, user, page).await?
        } else if page.content_type.starts_with("text/html") {
            self.page_properties(media, user, page).await
        } else {
            Map::new()
        };
        let preview = Arc::new(Value::Object(preview));
        if preview.to_string().len() <= MAX_CACHED_BYTES {
            self.cache
                .lock()
                .insert(key, preview.clone(), Instant::now());
        }
        Ok(preview)
    }

    /// A page's properties, its image fetched and kept (a page whose image
    /// cannot be had is previewed without it).
    async fn page_properties(
        &self,
        media: &Media,
        user: &UserId,
        page: fetch::Fetched,
    ) -> Map<String, Value> {
        let text = String::from_utf8_lossy(&page.bytes);
        let mut og: Map<String, Value> = html::open_graph(&text)
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        let image = og
            .remove("og:image")
            .and_then(|v| v.as_str().and_then(|i| page.url.join(i).ok()));
        for key in ["og:image:width", "og:image:height", "og:image:type"] {
            og.remove(key);
        }
        if let Some(image) = image {
            match self.fetch_image(media, user, &image).await {
                Ok(found) => og.extend(found),
                Err(e) => tracing::info!(image = %image, error = %e, "preview image not kept"),
            }
        }
        og
    }

    async fn fetch_image(
        &self,
        media: &Media,
        user: &UserId,
        url: &Url,
    ) -> Result<Map<String, Value>> {
        fetch::check_url(url, &self.filter)?;
        let fetched = fetch::get(&self.client, url).await?;
        if !fetched.content_type.starts_with("image/") {
            return Err(Error::invalid_param("Not an image"));
        }
        self.image_properties(media, user, fetched).await
    }

    /// An image kept as a file of this server, with its size and type.
    async fn image_properties(
        &self,
        media: &Media,
        user: &UserId,
        image: fetch::Fetched,
    ) -> Result<Map<String, Value>> {
        let size = image.bytes.len();
        let dimensions = image::ImageReader::new(Cursor::new(&image.bytes))
            .with_guessed_format()
            .ok()
            .and_then(|r| r.into_dimensions().ok());
        let id = media
            .upload(user, Some(&image.content_type), None, image.bytes.into())
            .await?;
        let mut out = Map::new();
        out.insert(
            "og:image".into(),
            json!(format!("mxc://{}/{id}", user.server_name())),
        );
        out.insert("og:image:type".into(), json!(image.content_type));
        out.insert("matrix:image:size".into(), json!(size));
        if let Some((width, height)) = dimensions {
            out.insert("og:image:width".into(), json!(width));
            out.insert("og:image:height".into(), json!(height));
        }
        Ok(out)
    }
}
