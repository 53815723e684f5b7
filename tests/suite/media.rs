//! The content repository: matrix-sdk sends an image as an attachment, the
//! other member downloads it and a thumbnail of it; raw HTTP checks both API
//! generations, the headers that keep uploads from running in a browser,
//! every error case, the upload limit and that uploads survive a restart.

use crate::common;

use std::io::Cursor;
use std::time::Duration;

use matrix_sdk::attachment::AttachmentConfig;
use matrix_sdk::config::SyncSettings;
use matrix_sdk::media::{MediaFormat, MediaRequestParameters, MediaThumbnailSettings};
use matrix_sdk::ruma::api::client::room::create_room;
use matrix_sdk::ruma::events::room::message::{MessageType, RoomMessageEventContent};
use matrix_sdk::ruma::events::room::MediaSource;
use matrix_sdk::ruma::media::Method;
use matrix_sdk::ruma::{OwnedMxcUri, UInt};
use serde_json::Value;

use common::{expect_error, Raw, TestServer};

const PASSWORD: &str = "correct horse battery staple";

pub fn png(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbaImage::from_pixel(width, height, image::Rgba([20, 120, 220, 255]));
    let mut bytes = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png)
        .expect("encode png");
    bytes
}

pub fn dimensions(bytes: &[u8]) -> (u32, u32) {
    let image = image::load_from_memory(bytes).expect("a decodable image");
    (image.width(), image.height())
}

/// Bob's sync until the image Alice sent shows up; its media source.
async fn image_source_seen_by(bob: &matrix_sdk::Client) -> MediaSource {
    for _ in 0..50 {
        let response = bob
            .sync_once(SyncSettings::default().timeout(Duration::from_millis(500)))
            .await
            .expect("bob syncs");
        for room in response.rooms.joined.values() {
            for event in &room.timeline.events {
                let Ok(content) = event.raw().get_field::<RoomMessageEventContent>("content")
                else {
                    continue;
                };
                if let Some(RoomMessageEventContent {
                    msgtype: MessageType::Image(image),
                    ..
                }) = content
                {
                    assert_eq!(image.body, "photo.png");
                    return image.source;
                }
            }
        }
    }
    panic!("bob never saw the image message");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_sends_an_image_the_other_member_downloads() {
    common::init_logging();
    let server = common::start().await;
    let alice = common::sdk::register(&server, "alice", PASSWORD).await;
    let bob = common::sdk::register(&server, "bob", PASSWORD).await;
    let bob_id = bob.user_id().expect("bob's id").to_owned();
    let mut request = create_room::v3::Request::new();
    request.invite = vec![bob_id];
    let room = alice
        .create_room(request)
        .await
        .expect("alice creates a room");
    bob.sync_once(SyncSettings::default())
        .await
        .expect("bob sees the invite");
    bob.join_room_by_id(room.room_id())
        .await
        .expect("bob joins");
    alice
        .sync_once(SyncSettings::default())
        .await
        .expect("alice syncs");

    let photo = png(400, 300);
    room.send_attachment(
        "photo.png",
        &mime::IMAGE_PNG,
        photo.clone(),
        AttachmentConfig::new(),
    )
    .await
    .expect("alice sends the image (upload, then an m.image event)");

    let source = image_source_seen_by(&bob).await;
    let MediaSource::Plain(uri) = &source else {
        panic!("an unencrypted room carries a plain mxc URI, got {source:?}");
    };
    assert_eq!(uri.server_name().map(|s| s.as_str()), Ok("localhost"));
    let file = bob
        .media()
        .get_media_content(
            &MediaRequestParameters {
                source: source.clone(),
                format: MediaFormat::File,
            },
            false,
        )
        .await
        .expect("bob downloads the image");
    assert_eq!(file, photo, "the download is the upload, byte for byte");

    let settings =
        MediaThumbnailSettings::with_method(Method::Crop, UInt::from(96u32), UInt::from(96u32));
    let thumb = bob
        .media()
        .get_media_content(
            &MediaRequestParameters {
                source: source.clone(),
                format: MediaFormat::Thumbnail(settings),
            },
            false,
        )
        .await
        .expect("bob fetches a cropped thumbnail");
    assert_eq!(dimensions(&thumb), (96, 96));
    let scaled = bob
        .media()
        .get_media_content(
            &MediaRequestParameters {
                source,
                format: MediaFormat::Thumbnail(MediaThumbnailSettings::new(
                    UInt::from(320u32),
                    UInt::from(240u32),
                )),
            },
            false,
        )
        .await
        .expect("bob fetches a scaled thumbnail");
    assert_eq!(
        dimensions(&scaled),
        (320, 240),
        "scaled to fit, aspect kept"
    );
}

pub struct Fetched {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Fetched {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

pub async fn fetch(
    raw: &Raw,
    method: reqwest::Method,
    path: &str,
    body: Option<(&str, Vec<u8>)>,
) -> Fetched {
    let mut request = raw.http.request(method, format!("{}{path}", raw.base));
    if let Some(token) = &raw.token {
        request = request.bearer_auth(token);
    }
    if let Some((content_type, bytes)) = body {
        request = request.header("content-type", content_type).body(bytes);
    }
    let response = request.send().await.expect("request");
    Fetched {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.bytes().await.expect("body").to_vec(),
    }
}

pub async fn upload(raw: &Raw, query: &str, content_type: &str, bytes: Vec<u8>) -> Fetched {
    fetch(
        raw,
        reqwest::Method::POST,
        &format!("/_matrix/media/v3/upload{query}"),
        Some((content_type, bytes)),
    )
    .await
}

pub fn media_id(uploaded: &Fetched) -> String {
    assert_eq!(uploaded.status, 200, "upload: {:?}", uploaded.json());
    let uri: OwnedMxcUri = uploaded.json()["content_uri"]
        .as_str()
        .expect("content_uri")
        .into();
    uri.media_id().expect("a valid mxc URI").to_owned()
}

pub async fn get(raw: &Raw, path: &str) -> Fetched {
    fetch(raw, reqwest::Method::GET, path, None).await
}

#[track_caller]
pub fn expect_fetch_error(res: &Fetched, status: u16, errcode: &str, what: &str) {
    expect_error(&(res.status, res.json()), status, errcode, what);
}

#[tokio::test]
async fn raw_http_media_endpoints_headers_and_errors() {
    let server = common::start().await;
    let anonymous = Raw::new(&server);
    let (alice, _) = anonymous.register("alice").await;

    let refused = upload(&anonymous, "", "text/plain", b"hi".to_vec()).await;
    expect_fetch_error(&refused, 401, "M_MISSING_TOKEN", "upload without a token");

    let page = "<script>alert(1)</script>".as_bytes().to_vec();
    let uploaded = upload(
        &alice,
        "?filename=%C3%A9vil%20page.html",
        "text/html",
        page.clone(),
    )
    .await;
    let id = media_id(&uploaded);

    let v1 = format!("/_matrix/client/v1/media/download/localhost/{id}");
    let res = get(&anonymous, &v1).await;
    expect_fetch_error(
        &res,
        401,
        "M_MISSING_TOKEN",
        "authenticated download without a token",
    );
    let res = get(&alice, &v1).await;
    assert_eq!((res.status, &res.body), (200, &page));
    assert_eq!(res.header("content-type"), "text/html");
    assert_eq!(
        res.header("content-disposition"),
        "attachment; filename*=utf-8''%C3%A9vil%20page.html",
        "HTML is never shown inline"
    );
    assert!(res
        .header("content-security-policy")
        .starts_with("sandbox;"));
    assert_eq!(res.header("x-content-type-options"), "nosniff");

    let named = get(
        &alice,
        &format!("/_matrix/client/v1/media/download/localhost/{id}/x.txt"),
    )
    .await;
    assert_eq!((named.status, &named.body), (200, &page));
    assert_eq!(
        named.header("content-disposition"),
        "attachment; filename=x.txt",
        "a token needs no quotes (as Synapse writes it)"
    );

    let text = media_id(&upload(&alice, "", "text/plain", b"plain words".to_vec()).await);
    let res = get(
        &alice,
        &format!("/_matrix/client/v1/media/download/localhost/{text}"),
    )
    .await;
    assert_eq!(res.header("content-disposition"), "inline");

    for (path, what) in [
        (format!("{v1}x"), "an unknown media id"),
        (
            "/_matrix/client/v1/media/download/localhost/..%2F..%2Fdb".to_owned(),
            "a path in the media id",
        ),
    ] {
        expect_fetch_error(&get(&alice, &path).await, 404, "M_NOT_FOUND", what);
    }
    // A server that cannot be reached (a loopback address this server may
    // not call) is a 502, as in Synapse.
    let unreachable = format!("/_matrix/client/v1/media/download/127.0.0.1:1/{id}");
    for what in ["unreachable server", "unreachable server, asked again"] {
        expect_fetch_error(&get(&alice, &unreachable).await, 502, "M_UNKNOWN", what);
    }

    let image = media_id(&upload(&alice, "", "image/png", png(64, 48)).await);
    let thumb =
        |query: &str| format!("/_matrix/client/v1/media/thumbnail/localhost/{image}?{query}");
    let res = get(&alice, &thumb("width=32&height=32&method=crop")).await;
    assert_eq!((res.status, res.header("content-type")), (200, "image/png"));
    assert_eq!(dimensions(&res.body), (32, 32));
    let res = get(&alice, &thumb("width=320&height=240")).await;
    assert_eq!(dimensions(&res.body), (64, 48), "never scaled up");
    let res = get(&anonymous, &thumb("width=32&height=32")).await;
    expect_fetch_error(
        &res,
        401,
        "M_MISSING_TOKEN",
        "authenticated thumbnail without a token",
    );
    let res = get(&alice, &thumb("height=32")).await;
    expect_fetch_error(&res, 400, "M_MISSING_PARAM", "thumbnail without a width");
    let res = get(&alice, &thumb("width=0&height=32")).await;
    expect_fetch_error(&res, 400, "M_INVALID_PARAM", "a zero width");
    let res = get(&alice, &thumb("width=32&height=32&method=stretch")).await;
    expect_fetch_error(&res, 400, "M_INVALID_PARAM", "an unknown method");
    let res = get(
        &alice,
        &format!("/_matrix/client/v1/media/thumbnail/localhost/{text}?width=32&height=32"),
    )
    .await;
    expect_fetch_error(&res, 400, "M_UNKNOWN", "a thumbnail of text");
    let fake = media_id(
        &upload(
            &alice,
            "",
            "image/png",
            b"\x89PNG\r\n\x1a\nnot really".to_vec(),
        )
        .await,
    );
    let res = get(
        &alice,
        &format!("/_matrix/client/v1/media/thumbnail/localhost/{fake}?width=32&height=32"),
    )
    .await;
    expect_fetch_error(&res, 400, "M_UNKNOWN", "a corrupt image");

    let config = get(&alice, "/_matrix/client/v1/media/config").await;
    assert_eq!(
        config.json()["m.upload.size"].as_u64(),
        Some(server.config.max_request_size as u64)
    );

    // Acknowledged uploads survive a restart.
    let server = server.restart().await;
    let alice = alice.with_token(alice.token.as_deref().expect("token"));
    let res = get(
        &alice,
        &format!("/_matrix/client/v1/media/download/localhost/{text}"),
    )
    .await;
    assert_eq!(
        (res.status, res.body.as_slice()),
        (200, b"plain words".as_slice())
    );
    drop(server);
}

/// As on Synapse: once authenticated media is on, what is uploaded from
/// then on is served at the authenticated paths only; files from before
/// stay at the older unauthenticated ones too.
#[tokio::test]
async fn the_unauthenticated_paths_serve_only_files_from_before_authenticated_media() {
    let server = common::start_with(|c| c.enable_authenticated_media = false).await;
    let anonymous = Raw::new(&server);
    let (alice, _) = anonymous.register("alice").await;
    let old = media_id(&upload(&alice, "", "image/png", png(64, 48)).await);
    let legacy = |id: &str| format!("/_matrix/media/v3/download/localhost/{id}");
    let legacy_named = |id: &str| format!("/_matrix/media/v3/download/localhost/{id}/x.txt");
    let legacy_thumb =
        |id: &str| format!("/_matrix/media/v3/thumbnail/localhost/{id}?width=32&height=32");
    let res = get(&anonymous, &legacy_named(&old)).await;
    assert_eq!(res.status, 200, "before the switch: {:?}", res.json());
    assert_eq!(
        res.header("content-disposition"),
        "inline; filename=x.txt",
        "a token needs no quotes (as Synapse writes it)"
    );

    let server = server
        .restart_changing(|c| c.enable_authenticated_media = true)
        .await;
    let anonymous = Raw::new(&server);
    let alice = alice.with_token(alice.token.as_deref().expect("token"));
    let new = media_id(&upload(&alice, "", "image/png", png(64, 48)).await);
    for path in [legacy(&old), legacy_named(&old), legacy_thumb(&old)] {
        assert_eq!(
            get(&anonymous, &path).await.status,
            200,
            "old file at {path}"
        );
    }
    for path in [legacy(&new), legacy_named(&new), legacy_thumb(&new)] {
        let res = get(&anonymous, &path).await;
        expect_fetch_error(&res, 404, "M_NOT_FOUND", &format!("new file at {path}"));
        // A token does not open the older paths either.
        let res = get(&alice, &path).await;
        expect_fetch_error(
            &res,
            404,
            "M_NOT_FOUND",
            &format!("new file at {path}, signed in"),
        );
    }
    let v1 = format!("/_matrix/client/v1/media/download/localhost/{new}");
    assert_eq!(
        get(&alice, &v1).await.status,
        200,
        "new file, authenticated"
    );
}

#[tokio::test]
async fn uploads_over_the_limit_are_refused() {
    let server: TestServer = common::start_with(|c| c.max_request_size = 4096).await;
    let (alice, _) = Raw::new(&server).register("alice").await;
    let res = upload(&alice, "", "application/octet-stream", vec![7u8; 10_000]).await;
    expect_fetch_error(&res, 413, "M_TOO_LARGE", "an upload over m.upload.size");
    let fits = upload(&alice, "", "application/octet-stream", vec![7u8; 4000]).await;
    media_id(&fits);
}
