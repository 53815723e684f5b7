//! A hostile peer. The test plays a server that is in the room (a real
//! Matrix OS instance whose signing key it holds) and sends PDUs built
//! and signed with the project's own signing code, then bent: a bad
//! signature, a wrong content hash, a sender of another server, a power
//! grab the auth rules refuse, an oversize event, a room nobody knows, a
//! replayed transaction, an origin that is not the signer. Each is refused
//! (or, for the content hash, kept redacted) and the room stays right.

use matrixos::federation::pdu_check::rules_of;
use matrixos_federation::{event_id_for_pdu, hash_and_sign_pdu};
use ruma::api::federation::authentication::{ServerSignaturesInput, XMatrix};
use ruma::{CanonicalJsonObject, RoomId, ServerName};
use serde_json::{json, Value};

use crate::common::rooms::send_text;
use crate::common::{
    create_room, enc, expect_error, expect_ok, start_federated, start_federated_with, Raw,
    TestServer, V3,
};
use crate::federation_rooms::join_via;

fn now_ms() -> u64 {
    ruma::MilliSecondsSinceUnixEpoch::now().get().into()
}

/// A server in the room that turns hostile: it signs with its real key.
pub struct Peer<'a> {
    pub us: &'a TestServer,
    pub target: &'a TestServer,
}

impl Peer<'_> {
    pub fn name(&self) -> String {
        self.us.services.server_name.to_string()
    }

    /// A PDU of `room` on the target's current head, with the auth
    /// events the target's current state gives, not yet signed.
    fn draft(
        &self,
        room: &str,
        sender: &str,
        kind: &str,
        state_key: Option<&str>,
        content: Value,
    ) -> CanonicalJsonObject {
        let rooms = &self.target.services.rooms;
        let room_id = RoomId::parse(room).unwrap();
        let (_, head) = rooms.record_of(&room_id).unwrap();
        let mut auth = Vec::new();
        for (kind, key) in [("m.room.power_levels", ""), ("m.room.member", sender)] {
            if let Some(event) = rooms.state_event(head.state, kind, key).unwrap() {
                auth.push(event.event_id.to_string());
            }
        }
        let mut pdu = json!({
            "room_id": room,
            "sender": sender,
            "type": kind,
            "content": content,
            "depth": head.depth + 1,
            "prev_events": head.extremities,
            "auth_events": auth,
            "origin_server_ts": now_ms(),
        });
        if let Some(key) = state_key {
            pdu["state_key"] = json!(key);
        }
        serde_json::from_value(pdu).unwrap()
    }

    /// Hashes and signs a PDU with this server's key; returns its id.
    pub fn sign(&self, room: &str, pdu: &mut CanonicalJsonObject) -> String {
        let rooms = &self.target.services.rooms;
        let (_, head) = rooms.record_of(&RoomId::parse(room).unwrap()).unwrap();
        let rules = rules_of(&head.version).unwrap();
        hash_and_sign_pdu(
            &self.us.services.server_name,
            &self.us.services.signing_key,
            pdu,
            &rules,
        )
        .unwrap();
        event_id_for_pdu(pdu, &rules).unwrap().to_string()
    }

    /// A request to the target, signed as this server.
    pub async fn request(&self, method: http::Method, path: &str, body: Vec<u8>) -> (u16, Value) {
        let request = http::Request::builder()
            .method(method.clone())
            .uri(path)
            .body(body.clone())
            .unwrap();
        let destination = self.target.services.server_name.to_string();
        let input = ServerSignaturesInput::new(
            ServerName::parse(self.name()).unwrap(),
            ServerName::parse(&destination).unwrap(),
            self.us.services.signing_key.key_pair(),
        );
        let header = XMatrix::try_from_http_request(&request, input).unwrap();
        let address = self.target.config.federation_listen.unwrap();
        let response = reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .build()
            .unwrap()
            .request(method, format!("https://{address}{path}"))
            .header("authorization", http::HeaderValue::from(&header))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.request(http::Method::GET, path, Vec::new()).await
    }

    /// `PUT /send/{txn}` to the target, signed as this server, claiming
    /// `origin` in the body.
    async fn send_as(&self, origin: &str, txn: &str, pdus: Vec<Value>) -> (u16, Value) {
        let body = serde_json::to_vec(&json!({
            "origin": origin,
            "origin_server_ts": now_ms(),
            "pdus": pdus,
        }))
        .unwrap();
        let path = format!("/_matrix/federation/v1/send/{txn}");
        self.request(http::Method::PUT, &path, body).await
    }

    async fn send(&self, txn: &str, pdus: Vec<Value>) -> (u16, Value) {
        self.send_as(&self.name(), txn, pdus).await
    }

    /// A text message of `sender`, signed and sent alone in transaction
    /// `txn`: the event, its id and the target's answer.
    async fn send_text(
        &self,
        txn: &str,
        room: &str,
        sender: &str,
        body: &str,
    ) -> (CanonicalJsonObject, String, (u16, Value)) {
        let content = json!({ "body": body, "msgtype": "m.text" });
        let mut event = self.draft(room, sender, "m.room.message", None, content);
        let id = self.sign(room, &mut event);
        let answer = self.send(txn, vec![json!(event)]).await;
        (event, id, answer)
    }
}

/// The event as the target's client sees it: status and JSON.
async fn seen(client: &Raw, room: &str, event: &str) -> (u16, Value) {
    client
        .call(
            "GET",
            &format!("{V3}/rooms/{}/event/{}", enc(room), enc(event)),
            None,
        )
        .await
}

fn refused(answer: &(u16, Value), event: &str) -> bool {
    answer.0 == 200 && answer.1["pdus"][event]["error"].is_string()
}

#[tokio::test]
async fn a_hostile_peer_cannot_corrupt_a_room() {
    let (ours, theirs) = (start_federated().await, start_federated().await);
    let (alice, alice_id) = Raw::new(&ours).register("alice").await;
    let (bob, bob_id) = Raw::new(&theirs).register("bob").await;
    let room = create_room(&alice, json!({ "preset": "public_chat" })).await;
    let joined = join_via(&bob, &room, ours.services.server_name.as_str()).await;
    assert_eq!(joined.0, 200, "{}", joined.1);
    send_text(&alice, &room, "t1", "hello").await;
    let peer = Peer {
        us: &theirs,
        target: &ours,
    };

    // An honest event first: the peer's signing works.
    let (honest, honest_id, answer) = peer.send_text("honest", &room, &bob_id, "honest").await;
    assert_eq!(answer.0, 200, "{}", answer.1);
    assert!(
        answer.1["pdus"][&honest_id]
            .as_object()
            .is_some_and(|r| r.is_empty()),
        "{}",
        answer.1
    );
    assert_eq!(
        seen(&alice, &room, &honest_id).await.1["content"]["body"],
        "honest"
    );

    // A replayed transaction is answered the same and stores nothing new.
    let again = peer.send("honest", vec![json!(honest)]).await;
    assert_eq!(again, answer);

    // A bad signature: the event is altered where the signature covers it.
    let mut forged = peer.draft(
        &room,
        &bob_id,
        "m.room.message",
        None,
        json!({ "body": "forged", "msgtype": "m.text" }),
    );
    peer.sign(&room, &mut forged);
    forged.insert(
        "origin_server_ts".into(),
        ruma::CanonicalJsonValue::Integer((now_ms() + 1).try_into().unwrap()),
    );
    let forged_id = event_id_for_pdu(&forged, &rules_of(&ruma::RoomVersionId::V12).unwrap())
        .unwrap()
        .to_string();
    let answer = peer.send("forged", vec![json!(forged)]).await;
    assert!(refused(&answer, &forged_id), "{}", answer.1);
    assert_eq!(seen(&alice, &room, &forged_id).await.0, 404);

    // A wrong content hash: kept, but redacted.
    let mut altered = peer.draft(
        &room,
        &bob_id,
        "m.room.message",
        None,
        json!({ "body": "original", "msgtype": "m.text" }),
    );
    peer.sign(&room, &mut altered);
    altered.insert(
        "content".into(),
        serde_json::from_value(json!({ "body": "tampered", "msgtype": "m.text" })).unwrap(),
    );
    let altered_id = event_id_for_pdu(&altered, &rules_of(&ruma::RoomVersionId::V12).unwrap())
        .unwrap()
        .to_string();
    let answer = peer.send("altered", vec![json!(altered)]).await;
    assert_eq!(answer.0, 200, "{}", answer.1);
    let (status, event) = seen(&alice, &room, &altered_id).await;
    assert_eq!(status, 200, "{event}");
    assert!(
        event["content"].as_object().is_some_and(|c| c.is_empty()),
        "{event}"
    );

    // A sender of another server (Alice's): her server's signature is missing.
    let (_, spoofed_id, answer) = peer
        .send_text("spoofed", &room, &alice_id, "I am alice")
        .await;
    assert!(refused(&answer, &spoofed_id), "{}", answer.1);
    assert_eq!(seen(&alice, &room, &spoofed_id).await.0, 404);

    // A power grab the auth rules refuse: Bob (level 0) makes himself 100.
    let (_, levels) = alice
        .call(
            "GET",
            &format!("{V3}/rooms/{}/state/m.room.power_levels/", enc(&room)),
            None,
        )
        .await;
    let mut grab = levels.clone();
    grab["users"][&bob_id] = json!(100);
    let mut coup = peer.draft(&room, &bob_id, "m.room.power_levels", Some(""), grab);
    let coup_id = peer.sign(&room, &mut coup);
    let answer = peer.send("coup", vec![json!(coup)]).await;
    assert!(refused(&answer, &coup_id), "{}", answer.1);
    let (_, after) = alice
        .call(
            "GET",
            &format!("{V3}/rooms/{}/state/m.room.power_levels/", enc(&room)),
            None,
        )
        .await;
    assert_eq!(after, levels);

    // An oversize event and an event of a room nobody here knows: not taken.
    // (signed small, since the signing code refuses to sign it big)
    let mut big = peer.draft(
        &room,
        &bob_id,
        "m.room.message",
        None,
        json!({ "body": "small" }),
    );
    peer.sign(&room, &mut big);
    big.insert(
        "content".into(),
        serde_json::from_value(json!({ "body": "x".repeat(70_000) })).unwrap(),
    );
    let big_id = event_id_for_pdu(&big, &rules_of(&ruma::RoomVersionId::V12).unwrap())
        .unwrap()
        .to_string();
    let mut elsewhere = peer.draft(
        &room,
        &bob_id,
        "m.room.message",
        None,
        json!({ "body": "elsewhere" }),
    );
    elsewhere.insert(
        "room_id".into(),
        ruma::CanonicalJsonValue::String("!nowhere:example.org".into()),
    );
    let elsewhere_id = peer.sign(&room, &mut elsewhere);
    let answer = peer.send("odd", vec![json!(big), json!(elsewhere)]).await;
    assert_eq!(answer.0, 200, "{}", answer.1);
    assert!(
        answer.1["pdus"]
            .get(&big_id)
            .is_none_or(|r| r["error"].is_string()),
        "{}",
        answer.1
    );
    assert_eq!(seen(&alice, &room, &big_id).await.0, 404);
    assert_eq!(seen(&alice, &room, &elsewhere_id).await.0, 404);

    // A transaction whose body claims another origin than its signer.
    let answer = peer.send_as("matrix.org", "claim", vec![]).await;
    assert_eq!(answer.0, 403, "{}", answer.1);

    // The room still works for everyone.
    let last = send_text(&alice, &room, "t2", "still fine").await;
    assert_eq!(seen(&alice, &room, &last).await.0, 200);
    let (_, members) = alice
        .call(
            "GET",
            &format!("{V3}/rooms/{}/joined_members", enc(&room)),
            None,
        )
        .await;
    assert_eq!(
        members["joined"].as_object().map(|m| m.len()),
        Some(2),
        "{members}"
    );
    expect_ok(
        seen(&alice, &room, &honest_id).await,
        "the honest event stays",
    );
    // A server in the room finds events by time.
    let path = format!(
        "/_matrix/federation/v1/timestamp_to_event/{}?ts={}&dir=b",
        enc(&room),
        now_ms()
    );
    let (status, found) = peer.get(&path).await;
    assert_eq!(
        (status, found["event_id"].as_str()),
        (200, Some(last.as_str()))
    );
    let path = format!(
        "/_matrix/federation/v1/timestamp_to_event/{}?ts={}&dir=f",
        enc(&room),
        now_ms() + 60_000
    );
    assert_eq!(peer.get(&path).await.0, 404);

    // Of the peer's many transactions, only the latest answer is kept.
    let prefix = matrixos_storage::typed::TextPair::prefix(&peer.name());
    let kept = matrixos_storage::tables::INBOUND_TRANSACTIONS
        .scan_prefix(&ours.services.store.db, &prefix)
        .count();
    assert_eq!(kept, 1);
}

#[tokio::test]
async fn a_server_the_room_acl_denies_is_refused() {
    let ours = start_federated().await;
    // A server named by its IP address, which the ACL below refuses.
    let theirs = start_federated_with(|c| {
        c.server_name = format!("127.0.0.1:{}", c.federation_listen.unwrap().port());
    })
    .await;
    let (alice, _) = Raw::new(&ours).register("alice").await;
    let (bob, bob_id) = Raw::new(&theirs).register("bob").await;
    let room = create_room(&alice, json!({ "preset": "public_chat" })).await;
    let joined = join_via(&bob, &room, ours.services.server_name.as_str()).await;
    assert_eq!(joined.0, 200, "{}", joined.1);
    let peer = Peer {
        us: &theirs,
        target: &ours,
    };

    let (_, before_id, answer) = peer.send_text("before", &room, &bob_id, "before").await;
    assert!(!refused(&answer, &before_id), "{}", answer.1);

    let acl = alice
        .json(
            "PUT",
            &format!("{V3}/rooms/{}/state/m.room.server_acl/", enc(&room)),
            json!({ "allow": ["*"], "deny": [], "allow_ip_literals": false }),
        )
        .await;
    expect_ok(acl, "server ACL");

    let (_, after_id, answer) = peer.send_text("after", &room, &bob_id, "after").await;
    assert!(refused(&answer, &after_id), "{}", answer.1);
    assert_eq!(seen(&alice, &room, &after_id).await.0, 404);
    let state = peer
        .get(&format!(
            "/_matrix/federation/v1/state_ids/{}?event_id={}",
            enc(&room),
            enc(&before_id)
        ))
        .await;
    expect_error(
        &state,
        403,
        "M_FORBIDDEN",
        "state of a room whose ACL denies the server",
    );
}

/// An admin's purge of a deleted room reaches what never joined its
/// history too: a rejected event's content is gone from storage.
#[tokio::test]
async fn a_purged_room_keeps_no_content_of_its_rejected_events() {
    const SECRET: &str = "purge-secret";
    let ours = start_federated_with(|c| c.registration_shared_secret = Some(SECRET.into())).await;
    let theirs = start_federated().await;
    let anon = Raw::new(&ours);
    let (admin, _) = crate::common::register_admin(&anon, SECRET, "purger").await;
    let (alice, _) = anon.register("alice").await;
    let (bob, bob_id) = Raw::new(&theirs).register("bob").await;
    let room = create_room(&alice, json!({ "preset": "public_chat" })).await;
    let joined = join_via(&bob, &room, ours.services.server_name.as_str()).await;
    assert_eq!(joined.0, 200, "{}", joined.1);
    let peer = Peer {
        us: &theirs,
        target: &ours,
    };
    // Mallory of the peer's server never joined: her message fails the
    // auth rules and is kept only as rejected.
    let mallory = bob_id.replace("@bob:", "@mallory:");
    let (_, intruder_id, answer) = peer
        .send_text("intruder", &room, &mallory, "words that must go")
        .await;
    assert!(refused(&answer, &intruder_id), "{}", answer.1);
    let id = ruma::EventId::parse(intruder_id.as_str()).unwrap();
    let stored = |server: &TestServer| {
        let (_, pdu) = server.services.rooms.pdu(&id).unwrap().expect("kept");
        (pdu.rejected, pdu.content_value())
    };
    let (rejected, content) = stored(&ours);
    assert!(rejected, "kept as rejected");
    assert_eq!(content["body"], "words that must go");

    let path = format!("/_synapse/admin/v1/rooms/{}", enc(&room));
    expect_ok(admin.json("DELETE", &path, json!({})).await, "delete");
    let ours = ours.restart().await;
    let (rejected, content) = stored(&ours);
    assert!(rejected, "still rejected: {content}");
    assert_eq!(content, json!({}), "pruned by the purge");
}
