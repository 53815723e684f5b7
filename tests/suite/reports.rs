//! Reports of events, rooms and users, those of events and rooms read back
//! by an admin through Synapse's admin API; `/admin/whois` for oneself and
//! for admins.

use serde_json::json;

use crate::common::rooms::{join, leave, send_text};
use crate::common::{
    create_room, enc, expect_error, expect_ok, register_admin, start_with, Raw, V3,
};

const SECRET: &str = "reports-secret";

#[tokio::test]
async fn reports_are_kept_for_admins_and_whois_shows_devices() {
    let server = start_with(|c| c.registration_shared_secret = Some(SECRET.into())).await;
    let raw = Raw::new(&server);
    let (admin, _) = register_admin(&raw, SECRET, "rep_admin").await;
    let (alice, alice_id) = raw.register("rep_alice").await;
    let (bob, _) = raw.register("rep_bob").await;
    let (carol, _) = raw.register("rep_carol").await;
    let room = create_room(&alice, json!({ "preset": "public_chat" })).await;
    expect_ok(join(&bob, &room).await, "join");
    let event = send_text(&alice, &room, "bad", "something bad").await;
    let report = |event: &str| format!("{V3}/rooms/{}/report/{}", enc(&room), enc(event));
    let reason = json!({ "reason": "spam" });
    expect_ok(
        bob.json("POST", &report(&event), reason.clone()).await,
        "report",
    );
    // Unknown events and events one cannot see are not found.
    let res = bob.json("POST", &report("$nosuch"), reason.clone()).await;
    expect_error(&res, 404, "M_NOT_FOUND", "unknown event");
    let res = carol.json("POST", &report(&event), reason.clone()).await;
    expect_error(&res, 404, "M_NOT_FOUND", "event of a room never joined");
    let whole = format!("{V3}/rooms/{}/report", enc(&room));
    expect_ok(
        bob.json("POST", &whole, json!({ "reason": "all spam" }))
            .await,
        "room report",
    );
    let unknown = format!("{V3}/rooms/{}/report", enc("!nosuch:localhost"));
    let res = bob.json("POST", &unknown, json!({ "reason": "x" })).await;
    expect_error(&res, 404, "M_NOT_FOUND", "unknown room");

    // Reports of users: of this server's users who exist, or of others'.
    let user_report = |user: &str| format!("{V3}/users/{}/report", enc(user));
    let why = json!({ "reason": "rude" });
    expect_ok(
        bob.json("POST", &user_report(&alice_id), why.clone()).await,
        "user report",
    );
    let res = bob
        .json("POST", &user_report("@nosuch:localhost"), why.clone())
        .await;
    expect_error(&res, 404, "M_NOT_FOUND", "unknown local user");
    expect_ok(
        bob.json(
            "POST",
            &user_report("@someone:elsewhere.example"),
            why.clone(),
        )
        .await,
        "report of another server's user",
    );
    let res = bob
        .json("POST", &user_report("@nosuch:localhost"), json!({}))
        .await;
    expect_error(&res, 400, "M_MISSING_PARAM", "user report without a reason");
    let kept = server.services.reports.all().expect("reports");
    let of_users: Vec<_> = kept
        .iter()
        .filter_map(|(_, r)| r.reported_user.as_deref())
        .collect();
    assert_eq!(
        of_users,
        ["@someone:elsewhere.example", alice_id.as_str()],
        "newest first"
    );

    // Since v1.8 only members may report an event, whatever they saw.
    expect_ok(leave(&bob, &room).await, "leave");
    let res = bob.json("POST", &report(&event), reason.clone()).await;
    expect_error(&res, 404, "M_NOT_FOUND", "event of a room left");

    let list = "/_synapse/admin/v1/event_reports";
    let res = bob.call("GET", list, None).await;
    expect_error(&res, 403, "M_FORBIDDEN", "reports for a non-admin");
    let reports = expect_ok(admin.call("GET", list, None).await, "reports");
    assert_eq!(reports["total"], 2);
    assert_eq!(reports["event_reports"][0]["reason"], "all spam");
    assert_eq!(reports["event_reports"][1]["event_id"], event.as_str());
    let page = expect_ok(
        admin.call("GET", &format!("{list}?limit=1"), None).await,
        "page",
    );
    assert_eq!(page["next_token"], 1);

    // whois: oneself, or anyone for an admin.
    let whois = |user: &str| format!("{V3}/admin/whois/{}", enc(user));
    let own = expect_ok(
        alice.call("GET", &whois(&alice_id), None).await,
        "own whois",
    );
    assert_eq!(own["user_id"], alice_id.as_str());
    assert_eq!(own["devices"].as_object().map(|d| d.len()), Some(1));
    let res = bob.call("GET", &whois(&alice_id), None).await;
    expect_error(&res, 403, "M_FORBIDDEN", "whois of another user");
    expect_ok(
        admin.call("GET", &whois(&alice_id), None).await,
        "admin whois",
    );
}
