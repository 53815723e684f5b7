//! Whole-server, raw-HTTP tests of cross-signing: `/keys/device_signing/upload`
//! (free first upload, UIA to replace, signature checks),
//! `/keys/signatures/upload`, what `/keys/query` shows to whom, and that
//! every change reaches room members through `/sync` and `/keys/changes`.
//! Keys are real ed25519 keys and signatures real signatures, made with ruma.

use crate::common;

use common::{expect_error, expect_ok, start, Raw, V3};
use ruma::serde::Base64;
use ruma::signatures::{sign_json, Ed25519KeyPair};
use ruma::CanonicalJsonObject;
use serde_json::{json, Value};

/// An ed25519 key pair whose key id name is its public key, the way
/// cross-signing keys are named (or a device id, for device keys).
pub(crate) struct Key {
    pair: Ed25519KeyPair,
    public: String,
}

impl Key {
    fn new() -> Self {
        let der = Ed25519KeyPair::generate();
        let probe = Ed25519KeyPair::from_der(&der, "probe".into()).expect("key");
        let public =
            Base64::<ruma::serde::base64::Standard>::new(probe.public_key().to_vec()).encode();
        let pair = Ed25519KeyPair::from_der(&der, public.clone()).expect("key");
        Self { pair, public }
    }

    /// A key whose signatures are filed under `name` (a device id, or
    /// another key's name for a forgery).
    fn named(name: &str) -> Self {
        let der = Ed25519KeyPair::generate();
        let pair = Ed25519KeyPair::from_der(&der, name.to_owned()).expect("key");
        let public =
            Base64::<ruma::serde::base64::Standard>::new(pair.public_key().to_vec()).encode();
        Self { pair, public }
    }

    fn key_id(&self) -> String {
        format!("ed25519:{}", self.public)
    }
}

/// Adds `user`'s signature by `key` to `value`.
fn sign(mut value: Value, user: &str, key: &Key) -> Value {
    let mut object: CanonicalJsonObject = serde_json::from_value(value.take()).expect("object");
    sign_json(user, &key.pair, &mut object).expect("sign");
    serde_json::to_value(object).expect("json")
}

fn cs_key(user: &str, usage: &str, key: &Key) -> Value {
    json!({ "user_id": user, "usage": [usage], "keys": { key.key_id(): key.public } })
}

/// A user's three cross-signing keys.
pub(crate) struct Identity {
    master: Key,
    ssk: Key,
    usk: Key,
}

impl Identity {
    pub(crate) fn new() -> Self {
        Self {
            master: Key::new(),
            ssk: Key::new(),
            usk: Key::new(),
        }
    }

    pub(crate) fn upload_body(&self, user: &str) -> Value {
        json!({
            "master_key": cs_key(user, "master", &self.master),
            "self_signing_key": sign(cs_key(user, "self_signing", &self.ssk), user, &self.master),
            "user_signing_key": sign(cs_key(user, "user_signing", &self.usk), user, &self.master),
        })
    }
}

async fn upload_signing_keys(raw: &Raw, body: Value) -> (u16, Value) {
    raw.json("POST", &format!("{V3}/keys/device_signing/upload"), body)
        .await
}

async fn upload_signatures(raw: &Raw, body: Value) -> Value {
    let res = raw
        .json("POST", &format!("{V3}/keys/signatures/upload"), body)
        .await;
    expect_ok(res, "signatures/upload")
}

async fn query(raw: &Raw, users: &[&str]) -> Value {
    let wanted: serde_json::Map<String, Value> =
        users.iter().map(|u| (u.to_string(), json!([]))).collect();
    let res = raw
        .json(
            "POST",
            &format!("{V3}/keys/query"),
            json!({ "device_keys": wanted }),
        )
        .await;
    expect_ok(res, "keys/query")
}

async fn device_id(raw: &Raw) -> String {
    let res = raw.call("GET", &format!("{V3}/account/whoami"), None).await;
    expect_ok(res, "whoami")["device_id"]
        .as_str()
        .expect("device_id")
        .to_owned()
}

/// Uploads device keys with a real ed25519 key; returns the key and the
/// device keys as uploaded.
pub(crate) async fn upload_device_keys(raw: &Raw, user: &str) -> (Key, Value) {
    let device = device_id(raw).await;
    let key = Key::named(&device);
    let keys = json!({
        "user_id": user,
        "device_id": device,
        "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
        "keys": { format!("curve25519:{device}"): "Y3VydmUyNTUxOQ", format!("ed25519:{device}"): key.public },
    });
    let keys = sign(keys, user, &key);
    let res = raw
        .json(
            "POST",
            &format!("{V3}/keys/upload"),
            json!({ "device_keys": keys }),
        )
        .await;
    expect_ok(res, "keys/upload");
    (key, keys)
}

/// An empty map, or none: ruma's answers leave empty maps out.
fn none(field: &Value) -> bool {
    field.as_object().is_none_or(|m| m.is_empty())
}

fn master_key_id(answer: &Value, user: &str) -> Option<String> {
    let keys = answer["master_keys"][user]["keys"].as_object()?;
    keys.keys().next().cloned()
}

#[tokio::test]
async fn first_upload_is_free_but_replacing_the_master_key_needs_the_password() {
    let server = start().await;
    let anon = Raw::new(&server);
    let (alice, alice_id) = anon.register("alice").await;

    let first = Identity::new();
    let body = first.upload_body(&alice_id);
    expect_ok(
        upload_signing_keys(&alice, body.clone()).await,
        "first upload without auth",
    );
    expect_ok(
        upload_signing_keys(&alice, body).await,
        "identical retry without auth",
    );

    let second = Identity::new();
    let body = second.upload_body(&alice_id);
    let challenge = upload_signing_keys(&alice, body.clone()).await;
    assert_eq!(challenge.0, 401, "replacing without auth: {}", challenge.1);
    let flows = challenge.1["flows"].to_string();
    assert!(flows.contains("m.login.password"), "flows: {flows}");
    let session = challenge.1["session"].as_str().expect("UIA session");
    let answer = query(&alice, &[&alice_id]).await;
    assert_eq!(
        master_key_id(&answer, &alice_id),
        Some(first.master.key_id()),
        "a refused replacement must change nothing"
    );

    let mut wrong = body.clone();
    wrong["auth"] = json!({ "type": "m.login.password", "session": session,
        "identifier": { "type": "m.id.user", "user": alice_id }, "password": "wrong" });
    let res = upload_signing_keys(&alice, wrong).await;
    expect_error(&res, 401, "M_FORBIDDEN", "replacing with a wrong password");

    let mut authed = body;
    authed["auth"] = json!({ "type": "m.login.password", "session": session,
        "identifier": { "type": "m.id.user", "user": alice_id }, "password": "secret-pw" });
    expect_ok(
        upload_signing_keys(&alice, authed).await,
        "replacing with password auth",
    );
    let answer = query(&alice, &[&alice_id]).await;
    assert_eq!(
        master_key_id(&answer, &alice_id),
        Some(second.master.key_id())
    );
    assert_eq!(
        answer["self_signing_keys"][&alice_id]["keys"][second.ssk.key_id()],
        json!(second.ssk.public)
    );
}

#[tokio::test]
async fn badly_signed_or_foreign_keys_are_refused() {
    let server = start().await;
    let anon = Raw::new(&server);
    let (alice, alice_id) = anon.register("alice").await;
    let id = Identity::new();
    let stranger = Key::new();

    let res = upload_signing_keys(
        &alice,
        json!({ "self_signing_key": sign(cs_key(&alice_id, "self_signing", &id.ssk), &alice_id, &id.master) }),
    )
    .await;
    expect_error(
        &res,
        400,
        "M_MISSING_PARAM",
        "self-signing key without any master key",
    );

    let mut body = id.upload_body(&alice_id);
    body["self_signing_key"] = sign(
        cs_key(&alice_id, "self_signing", &id.ssk),
        &alice_id,
        &stranger,
    );
    let res = upload_signing_keys(&alice, body).await;
    expect_error(
        &res,
        400,
        "M_INVALID_SIGNATURE",
        "self-signing key signed by a stranger",
    );

    // A forgery filed under the master key's id is just as invalid.
    let forger = Key::named(&id.master.public);
    let mut body = id.upload_body(&alice_id);
    body["user_signing_key"] = sign(
        cs_key(&alice_id, "user_signing", &id.usk),
        &alice_id,
        &forger,
    );
    let res = upload_signing_keys(&alice, body).await;
    expect_error(&res, 400, "M_INVALID_SIGNATURE", "forged master signature");

    let mut body = id.upload_body(&alice_id);
    body["master_key"] = cs_key("@mallory:localhost", "master", &id.master);
    let res = upload_signing_keys(&alice, body).await;
    expect_error(&res, 400, "M_INVALID_PARAM", "master key of another user");

    let mut body = id.upload_body(&alice_id);
    body["self_signing_key"] = sign(
        cs_key(&alice_id, "user_signing", &id.ssk),
        &alice_id,
        &id.master,
    );
    let res = upload_signing_keys(&alice, body).await;
    expect_error(
        &res,
        400,
        "M_INVALID_PARAM",
        "self-signing key with the wrong usage",
    );

    let answer = query(&alice, &[&alice_id]).await;
    assert!(
        none(&answer["master_keys"]),
        "nothing may be stored: {answer}"
    );
}

#[tokio::test]
async fn user_signing_key_is_shown_only_to_its_owner() {
    let server = start().await;
    let anon = Raw::new(&server);
    let (alice, alice_id) = anon.register("alice").await;
    let (bob, _) = anon.register("bob").await;
    let id = Identity::new();
    expect_ok(
        upload_signing_keys(&alice, id.upload_body(&alice_id)).await,
        "upload",
    );

    let seen_by_bob = query(&bob, &[&alice_id]).await;
    assert_eq!(
        master_key_id(&seen_by_bob, &alice_id),
        Some(id.master.key_id())
    );
    assert_eq!(
        seen_by_bob["self_signing_keys"][&alice_id]["usage"],
        json!(["self_signing"])
    );
    assert!(none(&seen_by_bob["user_signing_keys"]), "{seen_by_bob}");

    let seen_by_alice = query(&alice, &[&alice_id]).await;
    assert_eq!(
        seen_by_alice["user_signing_keys"][&alice_id]["keys"][id.usk.key_id()],
        json!(id.usk.public)
    );
}

#[tokio::test]
async fn signatures_upload_adds_verified_signatures_to_query() {
    let server = start().await;
    let anon = Raw::new(&server);
    let (alice, alice_id) = anon.register("alice").await;
    let (bob, bob_id) = anon.register("bob").await;
    let (carol, _) = anon.register("carol").await;
    let (device_key, device_keys) = upload_device_keys(&alice, &alice_id).await;
    let device = device_keys["device_id"]
        .as_str()
        .expect("device")
        .to_owned();
    let alice_cs = Identity::new();
    let bob_cs = Identity::new();
    expect_ok(
        upload_signing_keys(&alice, alice_cs.upload_body(&alice_id)).await,
        "alice upload",
    );
    expect_ok(
        upload_signing_keys(&bob, bob_cs.upload_body(&bob_id)).await,
        "bob upload",
    );

    // Alice's self-signing key vouches for her device; her device for her
    // master key; her user-signing key for Bob's master key.
    let mut unsigned_device = device_keys.clone();
    unsigned_device
        .as_object_mut()
        .expect("object")
        .remove("signatures");
    let device_signed = sign(unsigned_device, &alice_id, &alice_cs.ssk);
    let master_signed = sign(
        cs_key(&alice_id, "master", &alice_cs.master),
        &alice_id,
        &device_key,
    );
    let bob_master_signed = sign(
        cs_key(&bob_id, "master", &bob_cs.master),
        &alice_id,
        &alice_cs.usk,
    );
    let answer = upload_signatures(
        &alice,
        json!({
            alice_id.clone(): { device.clone(): device_signed, alice_cs.master.public.clone(): master_signed },
            bob_id.clone(): { bob_cs.master.public.clone(): bob_master_signed },
        }),
    )
    .await;
    assert!(none(&answer["failures"]), "{answer}");

    let seen_by_bob = query(&bob, &[&alice_id, &bob_id]).await;
    let alice_device = &seen_by_bob["device_keys"][&alice_id][&device];
    assert!(
        alice_device["signatures"][&alice_id][alice_cs.ssk.key_id()].is_string(),
        "device keys must carry the self-signing signature: {alice_device}"
    );
    assert!(
        alice_device["signatures"][&alice_id][format!("ed25519:{device}")].is_string(),
        "the device's own signature stays: {alice_device}"
    );
    let alice_master = &seen_by_bob["master_keys"][&alice_id];
    assert!(
        alice_master["signatures"][&alice_id][format!("ed25519:{device}")].is_string(),
        "master key must carry the device signature: {alice_master}"
    );
    assert!(
        seen_by_bob["master_keys"][&bob_id]["signatures"]
            .get(&alice_id)
            .is_none(),
        "who verified whom is private, even from the verified (as in Synapse): {seen_by_bob}"
    );
    let seen_by_alice = query(&alice, &[&bob_id]).await;
    assert!(
        seen_by_alice["master_keys"][&bob_id]["signatures"][&alice_id][alice_cs.usk.key_id()]
            .is_string(),
        "Alice sees her own signature on Bob's master key: {seen_by_alice}"
    );
    let seen_by_carol = query(&carol, &[&bob_id]).await;
    assert!(
        seen_by_carol["master_keys"][&bob_id]["signatures"]
            .get(&alice_id)
            .is_none(),
        "who verified whom is private: {seen_by_carol}"
    );

    // The device re-uploading its keys keeps the cross-signing signature.
    let res = alice
        .json(
            "POST",
            &format!("{V3}/keys/upload"),
            json!({ "device_keys": device_keys }),
        )
        .await;
    expect_ok(res, "re-upload device keys");
    let again = query(&carol, &[&alice_id]).await;
    assert!(
        again["device_keys"][&alice_id][&device]["signatures"][&alice_id][alice_cs.ssk.key_id()]
            .is_string(),
        "{again}"
    );

    // Keys that change under a signature lose it.
    let mut rotated = device_keys.clone();
    rotated["algorithms"] = json!(["m.olm.v1.curve25519-aes-sha2"]);
    rotated
        .as_object_mut()
        .expect("object")
        .remove("signatures");
    let rotated = sign(rotated, &alice_id, &device_key);
    let res = alice
        .json(
            "POST",
            &format!("{V3}/keys/upload"),
            json!({ "device_keys": rotated }),
        )
        .await;
    expect_ok(res, "upload changed device keys");
    let after = query(&carol, &[&alice_id]).await;
    let signatures = &after["device_keys"][&alice_id][&device]["signatures"][&alice_id];
    assert!(
        signatures.get(alice_cs.ssk.key_id()).is_none(),
        "a signature over other content must not be shown: {after}"
    );
}

#[tokio::test]
async fn bad_signatures_are_reported_in_failures() {
    let server = start().await;
    let anon = Raw::new(&server);
    let (alice, alice_id) = anon.register("alice").await;
    let (_, device_keys) = upload_device_keys(&alice, &alice_id).await;
    let device = device_keys["device_id"]
        .as_str()
        .expect("device")
        .to_owned();
    let id = Identity::new();
    expect_ok(
        upload_signing_keys(&alice, id.upload_body(&alice_id)).await,
        "upload",
    );

    let forger = Key::named(&id.ssk.public);
    let forged = sign(device_keys.clone(), &alice_id, &forger);
    let mut tampered = sign(device_keys.clone(), &alice_id, &id.ssk);
    tampered["keys"][format!("curve25519:{device}")] = json!("b3RoZXI");
    let by_user_signing_key = sign(device_keys.clone(), &alice_id, &id.usk);
    let answer = upload_signatures(
        &alice,
        json!({ alice_id.clone(): {
            device.clone(): forged,
            "NOSUCHDEVICE": sign(json!({ "device_id": "NOSUCHDEVICE" }), &alice_id, &id.ssk),
        } }),
    )
    .await;
    let failures = &answer["failures"][&alice_id];
    assert_eq!(
        failures[&device]["errcode"], "M_INVALID_SIGNATURE",
        "{answer}"
    );
    assert_eq!(
        failures["NOSUCHDEVICE"]["errcode"], "M_NOT_FOUND",
        "{answer}"
    );

    let answer = upload_signatures(
        &alice,
        json!({ alice_id.clone(): { device.clone(): tampered } }),
    )
    .await;
    assert!(
        answer["failures"][&alice_id][&device].is_object(),
        "a changed key must be refused: {answer}"
    );
    let answer = upload_signatures(
        &alice,
        json!({ alice_id.clone(): { device.clone(): by_user_signing_key } }),
    )
    .await;
    assert_eq!(
        answer["failures"][&alice_id][&device]["errcode"], "M_INVALID_SIGNATURE",
        "the user-signing key may not sign devices: {answer}"
    );

    let seen = query(&alice, &[&alice_id]).await;
    let signatures = seen["device_keys"][&alice_id][&device]["signatures"][&alice_id]
        .as_object()
        .expect("signatures");
    assert_eq!(
        signatures.len(),
        1,
        "only the device's own signature: {seen}"
    );
}

/// Alice's room with Bob joined.
async fn shared_room(alice: &Raw, bob: &Raw, bob_id: &str) {
    let res = alice
        .json(
            "POST",
            &format!("{V3}/createRoom"),
            json!({ "preset": "private_chat", "invite": [bob_id] }),
        )
        .await;
    let room = expect_ok(res, "createRoom")["room_id"]
        .as_str()
        .expect("room_id")
        .to_owned();
    let res = bob
        .json(
            "POST",
            &format!("{V3}/join/{}", room.replace('!', "%21").replace(':', "%3A")),
            json!({}),
        )
        .await;
    expect_ok(res, "join");
}

async fn sync_token(raw: &Raw, since: Option<&str>) -> Value {
    let path = match since {
        Some(s) => format!("{V3}/sync?timeout=0&since={s}"),
        None => format!("{V3}/sync?timeout=0"),
    };
    expect_ok(raw.call("GET", &path, None).await, "sync")
}

#[tokio::test]
async fn room_members_see_cross_signing_changes_in_sync() {
    let server = start().await;
    let anon = Raw::new(&server);
    let (alice, alice_id) = anon.register("alice").await;
    let (bob, bob_id) = anon.register("bob").await;
    let (carol, _) = anon.register("carol").await;
    shared_room(&alice, &bob, &bob_id).await;
    let (_, device_keys) = upload_device_keys(&alice, &alice_id).await;
    let device = device_keys["device_id"]
        .as_str()
        .expect("device")
        .to_owned();

    let since = sync_token(&bob, None).await["next_batch"]
        .as_str()
        .expect("next_batch")
        .to_owned();
    let carol_since = sync_token(&carol, None).await["next_batch"]
        .as_str()
        .expect("next_batch")
        .to_owned();
    let id = Identity::new();
    expect_ok(
        upload_signing_keys(&alice, id.upload_body(&alice_id)).await,
        "upload",
    );
    let synced = sync_token(&bob, Some(&since)).await;
    let changed = &synced["device_lists"]["changed"];
    assert!(
        changed
            .as_array()
            .is_some_and(|c| c.contains(&json!(alice_id))),
        "Bob must hear about Alice's new keys: {changed}"
    );
    let carol_synced = sync_token(&carol, Some(&carol_since)).await;
    assert!(
        !carol_synced["device_lists"]["changed"]
            .to_string()
            .contains(&alice_id),
        "Carol shares no room with Alice: {carol_synced}"
    );

    let since = synced["next_batch"]
        .as_str()
        .expect("next_batch")
        .to_owned();
    let answer = upload_signatures(
        &alice,
        json!({ alice_id.clone(): { device.clone(): sign(device_keys, &alice_id, &id.ssk) } }),
    )
    .await;
    assert!(none(&answer["failures"]), "{answer}");
    let synced = sync_token(&bob, Some(&since)).await;
    assert!(
        synced["device_lists"]["changed"]
            .as_array()
            .is_some_and(|c| c.contains(&json!(alice_id))),
        "Bob must hear about the new device signature: {synced}"
    );
    let to = synced["next_batch"].as_str().expect("next_batch");
    let res = bob
        .call(
            "GET",
            &format!("{V3}/keys/changes?from={since}&to={to}"),
            None,
        )
        .await;
    let changes = expect_ok(res, "keys/changes");
    assert!(
        changes["changed"]
            .as_array()
            .is_some_and(|c| c.contains(&json!(alice_id))),
        "{changes}"
    );
}

/// Logs `user` in with matrix-sdk (olm machine on) and lets the first sync
/// upload the device keys.
async fn sdk_login(server: &common::TestServer, user: &str) -> matrix_sdk::Client {
    let client = common::sdk::login(server, user, "secret-pw").await;
    let settings =
        matrix_sdk::config::SyncSettings::default().timeout(std::time::Duration::from_millis(100));
    client.sync_once(settings).await.expect("first sync");
    client
}

/// matrix-sdk (Element's rust crypto) bootstraps cross-signing without
/// UIA, a second device of the same user sees the first as cross-signed,
/// and resetting from the second device needs the password.
#[tokio::test]
async fn matrix_sdk_bootstraps_and_resets_cross_signing() {
    use matrix_sdk::ruma::api::client::uiaa;

    let server = start().await;
    let (_, alice_id) = Raw::new(&server).register("alice").await;
    let alice_id = ruma::UserId::parse(alice_id).expect("user id");
    let first = sdk_login(&server, alice_id.as_str()).await;
    first
        .encryption()
        .bootstrap_cross_signing(None)
        .await
        .expect("first bootstrap needs no UIA");
    let status = first
        .encryption()
        .cross_signing_status()
        .await
        .expect("olm machine");
    assert!(status.is_complete(), "{status:?}");

    let second = sdk_login(&server, alice_id.as_str()).await;
    let identity = second
        .encryption()
        .request_user_identity(&alice_id)
        .await
        .expect("keys/query");
    assert!(
        identity.is_some(),
        "the second device must see the identity"
    );
    let first_device = first.device_id().expect("device id");
    let device = second
        .encryption()
        .get_device(&alice_id, first_device)
        .await
        .expect("crypto store")
        .expect("first device known to the second");
    assert!(
        device.is_cross_signed_by_owner(),
        "the first device's self-signing signature must reach the second device"
    );

    // The second device has no private keys, so bootstrapping replaces the
    // identity: that needs the password.
    let err = second
        .encryption()
        .bootstrap_cross_signing(None)
        .await
        .expect_err("replacing the master key needs UIA");
    let session = err
        .as_uiaa_response()
        .unwrap_or_else(|| panic!("expected a UIA 401, got {err:?}"))
        .session
        .clone();
    let mut password = uiaa::Password::new(
        uiaa::UserIdentifier::Matrix(uiaa::MatrixUserIdentifier::new(alice_id.to_string())),
        "secret-pw".to_owned(),
    );
    password.session = session;
    second
        .encryption()
        .bootstrap_cross_signing(Some(uiaa::AuthData::Password(password)))
        .await
        .expect("reset with the password");
}
