//! Asynchronous uploads (v1.7): matrix-sdk reserves an `mxc://` URI and
//! fills it later; a download in between waits for the bytes; only the
//! reserver may fill it, once; other servers' ids and unknown ids are
//! refused; reservations per user are bounded.

use std::time::Duration;

use matrix_sdk::media::{MediaFormat, MediaRequestParameters};
use matrix_sdk::ruma::events::room::MediaSource;
use serde_json::json;

use crate::common::sdk::register;
use crate::common::{expect_error, start, Raw};

fn media_path(uri: &str) -> String {
    uri.trim_start_matches("mxc://").to_owned()
}

async fn put_bytes(raw: &Raw, path: &str, bytes: &[u8]) -> (u16, serde_json::Value) {
    let res = raw
        .http
        .put(format!("{}{path}", raw.base))
        .bearer_auth(raw.token.as_deref().expect("token"))
        .header("content-type", "text/plain")
        .body(bytes.to_vec())
        .send()
        .await
        .expect("request");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(json!(null)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserved_uris_are_filled_once_by_their_owner() {
    let server = start().await;
    let client = register(&server, "async_up", "secret-pw").await;
    let media = client.media();
    let reserved = media.create_content_uri().await.expect("create");
    let uri = reserved.uri.clone();

    // A download started before the upload waits for it.
    let downloading = {
        let client = client.clone();
        let uri = uri.clone();
        tokio::spawn(async move {
            let request = MediaRequestParameters {
                source: MediaSource::Plain(uri),
                format: MediaFormat::File,
            };
            client.media().get_media_content(&request, false).await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    media
        .upload_preallocated(reserved, &mime::TEXT_PLAIN, b"later bytes".to_vec())
        .await
        .expect("fill the reservation");
    let bytes = downloading.await.expect("task").expect("download");
    assert_eq!(bytes, b"later bytes");

    // Filled once: a second upload is refused, by the owner or anyone.
    let raw = Raw::new(&server);
    let (_, versions) = raw.call("GET", "/_matrix/client/versions", None).await;
    let listed = versions["versions"].as_array().expect("versions");
    assert!(
        listed.contains(&json!("v1.7")),
        "v1.7 is advertised: {versions}"
    );
    let token = client.access_token().expect("token");
    let owner = raw.with_token(&token);
    let path = format!("/_matrix/media/v3/upload/{}", media_path(uri.as_str()));
    let res = put_bytes(&owner, &path, b"again").await;
    expect_error(&res, 409, "M_CANNOT_OVERWRITE_MEDIA", "a second upload");

    // Another user cannot fill someone else's reservation.
    let second = client.media().create_content_uri().await.expect("create");
    let (other, _) = raw.register("async_other").await;
    let path = format!(
        "/_matrix/media/v3/upload/{}",
        media_path(second.uri.as_str())
    );
    let res = put_bytes(&other, &path, b"mine now").await;
    expect_error(&res, 403, "M_FORBIDDEN", "someone else's reservation");
    // Unknown ids and other servers' ids are not found.
    let res = put_bytes(
        &owner,
        "/_matrix/media/v3/upload/localhost/AAAAAAAAAAAAAAAAAAAAAAAA",
        b"x",
    )
    .await;
    expect_error(&res, 404, "M_NOT_FOUND", "an unknown id");
    let res = put_bytes(
        &owner,
        "/_matrix/media/v3/upload/elsewhere.example/abc",
        b"x",
    )
    .await;
    expect_error(&res, 404, "M_NOT_FOUND", "another server's id");

    // A reservation never filled: downloads end with M_NOT_YET_UPLOADED
    // (after the spec's 20 s wait), and a user holds at most five.
    let (status, _) = raw
        .call("GET", "/_matrix/client/v1/media/config", None)
        .await;
    assert_eq!(status, 401, "authenticated media needs a token");
    let mut held = 1; // `second`
    let mut refused = None;
    for _ in 0..6 {
        let res = owner
            .json("POST", "/_matrix/media/v1/create", json!({}))
            .await;
        if res.0 == 200 {
            held += 1;
            assert!(res.1["unused_expires_at"].as_u64().is_some(), "{}", res.1);
        } else {
            refused = Some(res);
            break;
        }
    }
    let refused = refused.expect("the sixth reservation is refused");
    expect_error(&refused, 429, "M_LIMIT_EXCEEDED", "too many reservations");
    assert_eq!(held, 5);
    let download = format!(
        "/_matrix/client/v1/media/download/{}",
        media_path(second.uri.as_str())
    );
    let res = owner.call("GET", &download, None).await;
    expect_error(
        &res,
        504,
        "M_NOT_YET_UPLOADED",
        "a reservation never filled",
    );
}
