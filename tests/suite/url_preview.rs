//! URL previews: off unless configured; a page's Open Graph data with its
//! image kept here; and no way through the server to its own network, by
//! address, by name or by redirect.

use crate::common::web_site::{cat_png, WebSite};
use crate::common::{self, enc, expect_error, expect_ok, Raw};
use crate::media::get;

fn preview_path(url: &str) -> String {
    format!("/_matrix/client/v1/media/preview_url?url={}", enc(url))
}

#[tokio::test]
async fn previews_are_off_unless_the_operator_turns_them_on() {
    let site = WebSite::start("127.0.0.2", "/page").await;
    let server = common::start().await;
    let (alice, _) = Raw::new(&server).register("up_off").await;
    let res = alice
        .call("GET", &preview_path(&site.url("/page")), None)
        .await;
    expect_error(&res, 404, "M_UNRECOGNIZED", "previews off");
    assert_eq!(site.hits(), 0);
}

#[tokio::test]
async fn a_page_is_previewed_with_its_image_kept_here() {
    let site = WebSite::start("127.0.0.2", "/page").await;
    let server = common::start_with(|c| {
        c.url_preview_enabled = true;
        c.url_preview_ip_range_allowlist = vec!["127.0.0.2".into()];
    })
    .await;
    let (alice, _) = Raw::new(&server).register("up_alice").await;
    let preview = expect_ok(
        alice
            .call("GET", &preview_path(&site.url("/page")), None)
            .await,
        "preview",
    );
    assert_eq!(preview["og:title"], "Cats & dogs", "{preview}");
    assert_eq!(preview["og:description"], "All about pets");
    assert_eq!(preview["og:image:width"], 64);
    assert_eq!(preview["og:image:height"], 48);
    assert_eq!(preview["og:image:type"], "image/png");
    let mxc = preview["og:image"].as_str().expect("og:image");
    let id = mxc
        .strip_prefix("mxc://localhost/")
        .expect("a file of this server");
    let image = get(
        &alice,
        &format!("/_matrix/client/v1/media/download/localhost/{id}"),
    )
    .await;
    assert_eq!(image.body, cat_png());

    // Asked again, it comes from what was kept: the site is not asked.
    let hits = site.hits();
    let again = expect_ok(
        alice
            .call("GET", &preview_path(&site.url("/page")), None)
            .await,
        "preview again",
    );
    assert_eq!(again, preview);
    assert_eq!(site.hits(), hits);

    // An image's own URL previews as the image; redirects are followed.
    let image = expect_ok(
        alice
            .call("GET", &preview_path(&site.url("/cat.png")), None)
            .await,
        "image preview",
    );
    assert_eq!(image["matrix:image:size"], cat_png().len());
    let redirected = expect_ok(
        alice
            .call("GET", &preview_path(&site.url("/redirect")), None)
            .await,
        "redirected preview",
    );
    assert_eq!(redirected["og:title"], "Cats & dogs");

    for (url, what) in [
        ("ftp://example.org/", "not http"),
        ("not a url", "not a URL"),
    ] {
        let res = alice.call("GET", &preview_path(url), None).await;
        expect_error(&res, 400, "M_INVALID_PARAM", what);
    }
}

#[tokio::test]
async fn the_servers_own_network_is_out_of_reach() {
    // The secret site on 127.0.0.1 is not allowed; the public one on
    // 127.0.0.2 is, and it redirects to the secret one.
    let secret = WebSite::start("127.0.0.1", "/page").await;
    let public = WebSite::start("127.0.0.2", &secret.url("/page")).await;
    let server = common::start_with(|c| {
        c.url_preview_enabled = true;
        c.url_preview_ip_range_allowlist = vec!["127.0.0.2".into()];
    })
    .await;
    let (alice, _) = Raw::new(&server).register("up_mallory").await;
    let res = alice
        .call("GET", &preview_path(&secret.url("/page")), None)
        .await;
    expect_error(&res, 403, "M_FORBIDDEN", "a loopback address");
    let by_name = format!("http://localhost:{}/page", secret.addr.port());
    let res = alice.call("GET", &preview_path(&by_name), None).await;
    expect_error(&res, 502, "M_UNKNOWN", "a name resolving to loopback");
    let res = alice
        .call("GET", &preview_path(&public.url("/redirect")), None)
        .await;
    expect_error(&res, 502, "M_UNKNOWN", "a redirect to loopback");
    let unauthenticated = Raw::new(&server)
        .call("GET", &preview_path(&public.url("/page")), None)
        .await;
    expect_error(&unauthenticated, 401, "M_MISSING_TOKEN", "no token");
    assert_eq!(secret.hits(), 0, "the secret site was reached");
}
