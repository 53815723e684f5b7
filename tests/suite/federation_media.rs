//! Media across servers: a user downloads a file (and a thumbnail of it)
//! uploaded on another server; their server fetches it over federation
//! (`/_matrix/federation/v1/media/download`), keeps a copy and serves it
//! from that copy afterwards, even with the other server gone. With Matrix
//! OS on both sides, and with Synapse both ways.

use crate::common::synapse::Synapse;
use crate::common::{start_federated, start_federated_with, Raw};
use crate::media::{dimensions, expect_fetch_error, get, media_id, png, upload, Fetched};

/// Uploads a 64×48 PNG named `cat.png`; its media id and bytes.
async fn upload_cat(raw: &Raw) -> (String, Vec<u8>) {
    let bytes = png(64, 48);
    let uploaded = upload(raw, "?filename=cat.png", "image/png", bytes.clone()).await;
    (media_id(&uploaded), bytes)
}

#[track_caller]
fn expect_cat(fetched: &Fetched, bytes: &[u8], what: &str) {
    assert_eq!(fetched.status, 200, "{what}: {:?}", fetched.json());
    assert_eq!(fetched.body, bytes, "{what}: the file's bytes");
    assert_eq!(fetched.header("content-type"), "image/png", "{what}");
    assert!(
        fetched.header("content-disposition").contains("cat.png"),
        "{what}: {}",
        fetched.header("content-disposition")
    );
}

#[tokio::test]
async fn a_file_uploaded_on_another_server_is_fetched_kept_and_thumbnailed() {
    // Theirs has authenticated media off, so it serves the older
    // unauthenticated paths as servers from before v1.11 do.
    let ours = start_federated().await;
    let theirs = start_federated_with(|c| c.enable_authenticated_media = false).await;
    let ours_name = ours.services.server_name.to_string();
    let (alice, _) = Raw::new(&ours).register("alice").await;
    let (bob, _) = Raw::new(&theirs).register("bob").await;
    let (id, bytes) = upload_cat(&alice).await;
    let (other, _) = upload_cat(&alice).await;

    let v1 = format!("/_matrix/client/v1/media/download/{ours_name}/{id}");
    expect_cat(&get(&bob, &v1).await, &bytes, "authenticated download");
    let legacy = format!("/_matrix/media/v3/download/{ours_name}/{id}");
    expect_cat(&get(&Raw::new(&theirs), &legacy).await, &bytes, "legacy");
    let thumb = get(
        &bob,
        &format!("/_matrix/client/v1/media/thumbnail/{ours_name}/{id}?width=32&height=32"),
    )
    .await;
    assert_eq!(thumb.status, 200, "thumbnail: {:?}", thumb.json());
    let (w, h) = dimensions(&thumb.body);
    assert!(w <= 64 && h <= 48 && w > 0, "thumbnail {w}×{h}");

    // Not fetched when the client says not to; unknown files are 404s.
    let local_only = format!("/_matrix/media/v3/download/{ours_name}/{other}?allow_remote=false");
    expect_fetch_error(
        &get(&bob, &local_only).await,
        404,
        "M_NOT_FOUND",
        "no fetch",
    );
    let unknown = format!("/_matrix/client/v1/media/download/{ours_name}/abcdefghijklmnopqrstuvwx");
    expect_fetch_error(
        &get(&bob, &unknown).await,
        404,
        "M_NOT_FOUND",
        "unknown file",
    );
    let bad_id = format!("/_matrix/client/v1/media/download/{ours_name}/a.b");
    expect_fetch_error(
        &get(&bob, &bad_id).await,
        404,
        "M_NOT_FOUND",
        "bad media id",
    );
    // With authenticated media on, the older paths fetch nothing, and a
    // copy fetched through the authenticated ones is not served there.
    let theirs_name = theirs.services.server_name.to_string();
    let (bobs, bobs_bytes) = upload_cat(&bob).await;
    let legacy_there = format!("/_matrix/media/v3/download/{theirs_name}/{bobs}");
    expect_fetch_error(
        &get(&alice, &legacy_there).await,
        404,
        "M_NOT_FOUND",
        "no fetch at the unauthenticated path",
    );
    let v1_there = format!("/_matrix/client/v1/media/download/{theirs_name}/{bobs}");
    expect_cat(
        &get(&alice, &v1_there).await,
        &bobs_bytes,
        "authenticated fetch",
    );
    expect_fetch_error(
        &get(&alice, &legacy_there).await,
        404,
        "M_NOT_FOUND",
        "an authenticated copy at the unauthenticated path",
    );

    // Other servers' endpoint wants a signed request.
    let unsigned = get(&bob, &format!("/_matrix/federation/v1/media/download/{id}")).await;
    assert_eq!(unsigned.status, 401, "{:?}", unsigned.json());

    let server = ours.services.server_name.clone();
    let kept = theirs.services.media.remote_record(&server, &id).unwrap();
    assert_eq!(kept.map(|k| k.size), Some(bytes.len() as u64));
    // With the other server gone, the copy is served.
    drop(ours);
    expect_cat(&get(&bob, &v1).await, &bytes, "from the copy");
}

#[tokio::test]
async fn copies_of_other_servers_files_stay_within_their_disk_budget() {
    let ours = start_federated().await;
    // Room for two cats, not three.
    let cat_size = png(64, 48).len() as u64;
    let theirs = start_federated_with(|c| c.remote_media_cache_max_bytes = cat_size * 5 / 2).await;
    let ours_name = ours.services.server_name.to_string();
    let (alice, _) = Raw::new(&ours).register("alice").await;
    let (bob, _) = Raw::new(&theirs).register("bob").await;
    let mut cats = Vec::new();
    for _ in 0..3 {
        cats.push(upload_cat(&alice).await);
    }
    let path = |id: &str| format!("/_matrix/client/v1/media/download/{ours_name}/{id}");
    for (n, (id, bytes)) in cats.iter().enumerate() {
        expect_cat(&get(&bob, &path(id)).await, bytes, &format!("cat {n}"));
        let thumb = get(
            &bob,
            &format!("{}?width=32&height=32", path(id)).replace("download", "thumbnail"),
        )
        .await;
        assert_eq!(thumb.status, 200, "thumbnail of cat {n}");
    }
    let media = &theirs.services.media;
    let server = ours.services.server_name.clone();
    let kept: Vec<bool> = cats
        .iter()
        .map(|(id, _)| media.remote_record(&server, id).unwrap().is_some())
        .collect();
    // The oldest copy made room for the newest; what is left fits.
    assert_eq!(kept, [false, true, true]);
    assert!(media.remote_used_bytes() <= cat_size * 5 / 2);
    let on_disk = std::fs::read_dir(theirs.config.data_dir.join("media"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .count();
    assert_eq!(on_disk, 2, "files of the evicted copy are gone");
    let thumbnails = std::fs::read_dir(theirs.config.data_dir.join("media/thumbnails"))
        .unwrap()
        .count();
    assert_eq!(thumbnails, 2, "thumbnails of the evicted copy are gone");
    // Asked for again, the evicted file is fetched again.
    expect_cat(
        &get(&bob, &path(&cats[0].0)).await,
        &cats[0].1,
        "cat 0 again",
    );
    assert!(media.remote_record(&server, &cats[0].0).unwrap().is_some());
}

#[tokio::test]
async fn a_client_address_that_had_many_bytes_fetched_waits() {
    let ours = start_federated().await;
    let cat_size = png(64, 48).len() as f64;
    let theirs = start_federated_with(|c| {
        c.rate_limits.remote_media_download = matrixos::config::RateLimit {
            per_second: 1.0,
            burst: cat_size * 1.5,
        }
    })
    .await;
    let ours_name = ours.services.server_name.to_string();
    let (alice, _) = Raw::new(&ours).register("alice").await;
    let (bob, _) = Raw::new(&theirs).register("bob").await;
    let mut cats = Vec::new();
    for _ in 0..3 {
        cats.push(upload_cat(&alice).await);
    }
    let path = |id: &str| format!("/_matrix/client/v1/media/download/{ours_name}/{id}");
    // The first two fetches take the address's allowance (and more).
    for (id, bytes) in &cats[..2] {
        expect_cat(&get(&bob, &path(id)).await, bytes, "within the allowance");
    }
    let refused = get(&bob, &path(&cats[2].0)).await;
    expect_fetch_error(&refused, 429, "M_LIMIT_EXCEEDED", "past the allowance");
    assert!(refused.json()["retry_after_ms"]
        .as_u64()
        .is_some_and(|ms| ms > 0));
    // Copies already here are served regardless.
    expect_cat(&get(&bob, &path(&cats[0].0)).await, &cats[0].1, "kept copy");
}

#[tokio::test]
async fn files_cross_between_synapse_and_matrix_os_both_ways() {
    let synapse = Synapse::start().await;
    let ours = start_federated().await;
    let ours_name = ours.services.server_name.to_string();
    let (alice, _) = Raw::new(&ours).register("alice").await;
    let (sam, _) = synapse.register("sam").await;

    let (sams, sam_bytes) = upload_cat(&sam).await;
    let path = format!(
        "/_matrix/client/v1/media/download/{}/{sams}",
        synapse.server_name
    );
    let fetched = get(&alice, &path).await;
    if fetched.status != 200 {
        panic!("from synapse: {:?}\n{}", fetched.json(), synapse.log_tail());
    }
    expect_cat(&fetched, &sam_bytes, "from synapse");

    let (alices, alice_bytes) = upload_cat(&alice).await;
    let path = format!("/_matrix/client/v1/media/download/{ours_name}/{alices}");
    let fetched = get(&sam, &path).await;
    if fetched.status != 200 {
        panic!("to synapse: {:?}\n{}", fetched.json(), synapse.log_tail());
    }
    expect_cat(&fetched, &alice_bytes, "to synapse");
}
