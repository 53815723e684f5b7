//! Federation between Matrix OS servers on loopback: keys published and
//! fetched, requests signed with X-Matrix both ways, profiles of remote
//! users, and requests a peer must not get through.

use matrixos_federation::ServerSigningKey;
use ruma::api::federation::authentication::{ServerSignaturesInput, XMatrix};
use ruma::{CanonicalJsonObject, ServerName};
use serde_json::{json, Value};

use crate::common::{
    enc, expect_error, set_displayname, start_federated, start_federated_with, Raw, TestServer, V3,
};

/// A client for a server's TLS federation listener (self-signed).
fn federation_http() -> reqwest::Client {
    reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap()
}

fn federation_base(server: &TestServer) -> String {
    let address = server.config.federation_listen.unwrap();
    format!("https://{address}")
}

/// An unsigned call on `server`'s federation listener: status and JSON.
async fn unsigned(
    server: &TestServer,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request =
        federation_http().request(method, format!("{}{path}", federation_base(server)));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The profile of `user` as `client` sees it.
async fn profile(client: &Raw, user: &str) -> (u16, Value) {
    client
        .call("GET", &format!("{V3}/profile/{}", enc(user)), None)
        .await
}

/// `GET path` on `server`'s federation listener, signed as `origin` with
/// `key` (and for `destination`).
async fn signed_get(
    server: &TestServer,
    path: &str,
    origin: &str,
    destination: &str,
    key: &ServerSigningKey,
) -> (u16, Value) {
    let request = http::Request::get(path).body(Vec::<u8>::new()).unwrap();
    let input = ServerSignaturesInput::new(
        ServerName::parse(origin).unwrap(),
        ServerName::parse(destination).unwrap(),
        key.key_pair(),
    );
    let header = XMatrix::try_from_http_request(&request, input).unwrap();
    let response = federation_http()
        .get(format!("{}{path}", federation_base(server)))
        .header("authorization", http::HeaderValue::from(&header))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_server_key_is_self_signed_and_stays_the_same() {
    let server = start_federated().await;
    let fetch = || async {
        unsigned(&server, "GET", "/_matrix/key/v2/server", None)
            .await
            .1
    };
    let keys = fetch().await;
    let name = server.services.server_name.to_string();
    assert_eq!(keys["server_name"], name.as_str(), "{keys}");
    let now = ruma::MilliSecondsSinceUnixEpoch::now().get();
    assert!(
        keys["valid_until_ts"].as_u64().unwrap() > u64::from(now),
        "{keys}"
    );
    let key_id = server.services.signing_key.key_id();
    assert_eq!(
        keys["verify_keys"][&key_id]["key"],
        server.services.signing_key.public_key_base64().as_str()
    );
    let object: CanonicalJsonObject = serde_json::from_value(keys.clone()).unwrap();
    let map = server
        .services
        .signing_key
        .public_key_map(&server.services.server_name);
    ruma::signatures::verify_json(&map, &object).expect("self-signed");
    assert_eq!(
        fetch().await["verify_keys"],
        keys["verify_keys"],
        "same key"
    );

    let (_, version) = unsigned(&server, "GET", "/_matrix/federation/v1/version", None).await;
    assert_eq!(version["server"]["name"], "Matrix OS", "{version}");
}

#[tokio::test]
async fn a_user_sees_the_profile_of_a_user_on_another_server() {
    let (ours, theirs) = (start_federated().await, start_federated().await);
    let (alice, _) = Raw::new(&ours).register("alice").await;
    let (bob, bob_id) = Raw::new(&theirs).register("bob").await;
    set_displayname(&bob, &bob_id, "Bob on the other server").await;

    let (status, seen) = profile(&alice, &bob_id).await;
    assert_eq!(status, 200, "{seen}");
    assert_eq!(seen["displayname"], "Bob on the other server");
    let (status, field) = alice
        .call(
            "GET",
            &format!("{V3}/profile/{}/displayname", enc(&bob_id)),
            None,
        )
        .await;
    assert_eq!(
        (status, &field["displayname"]),
        (200, &json!("Bob on the other server"))
    );

    // The other server's key is now known here, for later signatures.
    let theirs_name = theirs.services.server_name.clone();
    let key_id = theirs.services.signing_key.key_id();
    let known = ours
        .services
        .federation
        .keys
        .keys_at(&theirs_name, std::slice::from_ref(&key_id), 0)
        .await
        .unwrap();
    assert_eq!(
        known[&key_id].encode(),
        theirs.services.signing_key.public_key_base64()
    );

    let nobody = format!("@nobody:{theirs_name}");
    let missing = profile(&alice, &nobody).await;
    expect_error(
        &missing,
        404,
        "M_NOT_FOUND",
        "a remote user who does not exist",
    );
}

#[tokio::test]
async fn requests_without_a_valid_x_matrix_signature_are_refused() {
    let (ours, theirs) = (start_federated().await, start_federated().await);
    Raw::new(&ours).register("carol").await;
    let ours_name = ours.services.server_name.to_string();
    let theirs_name = theirs.services.server_name.to_string();
    let path = format!(
        "/_matrix/federation/v1/query/profile?user_id={}",
        enc(&format!("@carol:{ours_name}"))
    );
    let real_key = &*theirs.services.signing_key;

    // Signed properly by the other server: answered.
    let ok = signed_get(&ours, &path, &theirs_name, &ours_name, real_key).await;
    assert_eq!(ok.0, 200, "{}", ok.1);

    let res = unsigned(&ours, "GET", &path, None).await;
    expect_error(&res, 401, "M_UNAUTHORIZED", "a request without a signature");

    // A key the other server does not have, under the id of its real key.
    let forged = ServerSigningKey::from_seed(&[7; 32], real_key.version()).unwrap();
    let res = signed_get(&ours, &path, &theirs_name, &ours_name, &forged).await;
    expect_error(
        &res,
        401,
        "M_UNAUTHORIZED",
        "a signature by a key the origin does not have",
    );

    // Properly signed, but for another destination.
    let res = signed_get(&ours, &path, &theirs_name, "elsewhere.test", real_key).await;
    expect_error(&res, 401, "M_UNAUTHORIZED", "a request for another server");

    // Claiming to be this server.
    let own = &*ours.services.signing_key;
    let res = signed_get(&ours, &path, &ours_name, &ours_name, own).await;
    expect_error(
        &res,
        401,
        "M_UNAUTHORIZED",
        "a request from this server to itself",
    );

    // A remote user on the server asked, asked about by a peer.
    let other_path = format!(
        "/_matrix/federation/v1/query/profile?user_id={}",
        enc(&format!("@dave:{theirs_name}"))
    );
    let res = signed_get(&ours, &other_path, &theirs_name, &ours_name, real_key).await;
    expect_error(&res, 400, "M_INVALID_PARAM", "a user of another server");
}

#[tokio::test]
async fn outbound_federation_refuses_private_addresses_unless_allowed() {
    // No allowlist: the peer at 127.0.0.1 is not public, so no connection.
    let ours = start_federated_with(|c| c.federation_ip_range_allowlist.clear()).await;
    let theirs = start_federated().await;
    let (alice, _) = Raw::new(&ours).register("alice").await;
    let (_, bob_id) = Raw::new(&theirs).register("bob").await;
    let res = profile(&alice, &bob_id).await;
    expect_error(&res, 502, "M_UNKNOWN", "a peer on a loopback address");
}

#[tokio::test]
async fn a_server_vouches_for_the_keys_of_another_as_a_notary() {
    let (notary, theirs) = (start_federated().await, start_federated().await);
    let theirs_name = theirs.services.server_name.to_string();
    let notary_name = notary.services.server_name.to_string();
    let query = json!({ "server_keys": { theirs_name.clone(): {}, notary_name.clone(): {} } });
    let (_, answer) = unsigned(&notary, "POST", "/_matrix/key/v2/query", Some(query)).await;
    let listed = answer["server_keys"].as_array().expect("a list");
    assert_eq!(listed.len(), 2, "{answer}");
    let of_theirs = listed
        .iter()
        .find(|k| k["server_name"] == theirs_name.as_str())
        .expect("their keys");
    let object: CanonicalJsonObject = serde_json::from_value(of_theirs.clone()).unwrap();
    let mut map = theirs
        .services
        .signing_key
        .public_key_map(&theirs.services.server_name);
    map.extend(
        notary
            .services
            .signing_key
            .public_key_map(&notary.services.server_name),
    );
    ruma::signatures::verify_json(&map, &object).expect("signed by them and by the notary");

    // One server at a time, by GET.
    let path = format!("/_matrix/key/v2/query/{}", enc(&theirs_name));
    let (_, one) = unsigned(&notary, "GET", &path, None).await;
    assert_eq!(
        one["server_keys"][0]["server_name"],
        theirs_name.as_str(),
        "{one}"
    );

    // A server that cannot be reached is left out, not an error.
    let unreachable = json!({ "server_keys": { "localhost:1": {} } });
    let (_, answer) = unsigned(&notary, "POST", "/_matrix/key/v2/query", Some(unreachable)).await;
    assert_eq!(answer["server_keys"], json!([]), "{answer}");
}

/// Creates a public room named `name` with the alias `#<name>:<server>`
/// and lists it in the directory; returns the room id and the alias.
pub async fn public_room(client: &Raw, server: &str, name: &str) -> (String, String) {
    let body = json!({ "room_alias_name": name, "visibility": "public", "name": name, "preset": "public_chat" });
    let (status, created) = client.json("POST", &format!("{V3}/createRoom"), body).await;
    assert_eq!(status, 200, "{created}");
    let room = created["room_id"].as_str().unwrap().to_owned();
    (room, format!("#{name}:{server}"))
}

/// What `client` finds of another server's directory: the alias, the
/// listing (GET) and a search (POST).
pub async fn check_remote_directory(
    client: &Raw,
    server: &str,
    room: &str,
    alias: &str,
    name: &str,
) {
    let (status, found) = client
        .call("GET", &format!("{V3}/directory/room/{}", enc(alias)), None)
        .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["room_id"], room);
    assert!(
        found["servers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == server),
        "{found}"
    );
    let (status, listed) = client
        .call(
            "GET",
            &format!("{V3}/publicRooms?server={}", enc(server)),
            None,
        )
        .await;
    assert_eq!(status, 200, "{listed}");
    assert!(
        listed["chunk"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["room_id"] == room),
        "{listed}"
    );
    let search = json!({ "filter": { "generic_search_term": &name[..4] } });
    let path = format!("{V3}/publicRooms?server={}", enc(server));
    let (status, searched) = client.json("POST", &path, search).await;
    assert_eq!(status, 200, "{searched}");
    let hits = searched["chunk"].as_array().unwrap();
    assert!(
        hits.iter()
            .any(|r| r["room_id"] == room && r["name"] == name),
        "{searched}"
    );
}

#[tokio::test]
async fn a_user_finds_rooms_in_another_servers_directory() {
    let (ours, theirs) = (start_federated().await, start_federated().await);
    let (alice, _) = Raw::new(&ours).register("alice").await;
    let (bob, _) = Raw::new(&theirs).register("bob").await;
    let theirs_name = theirs.services.server_name.to_string();
    let (room, alias) = public_room(&bob, &theirs_name, "lounge").await;
    check_remote_directory(&alice, &theirs_name, &room, &alias, "lounge").await;

    // Another server's directory is fetched only for a signed-in caller.
    let anonymous = Raw::new(&ours)
        .call(
            "GET",
            &format!("{V3}/publicRooms?server={}", enc(&theirs_name)),
            None,
        )
        .await;
    expect_error(
        &anonymous,
        401,
        "M_MISSING_TOKEN",
        "an anonymous remote directory query",
    );
    let unknown = alice
        .call(
            "GET",
            &format!(
                "{V3}/directory/room/{}",
                enc(&format!("#nothing:{theirs_name}"))
            ),
            None,
        )
        .await;
    expect_error(
        &unknown,
        404,
        "M_NOT_FOUND",
        "an alias the other server does not have",
    );
}

/// Anyone may ask a notary, so one request makes it fetch the keys of at
/// most five servers it does not know yet; it learns the rest over later
/// requests.
#[tokio::test]
async fn a_notary_fetches_few_servers_per_request() {
    let notary = start_federated().await;
    let mut peers = Vec::new();
    for _ in 0..6 {
        peers.push(start_federated().await);
    }
    let names: serde_json::Map<String, Value> = peers
        .iter()
        .map(|p| (p.services.server_name.to_string(), json!({})))
        .collect();
    let query = json!({ "server_keys": names });
    let path = "/_matrix/key/v2/query";
    let (_, first) = unsigned(&notary, "POST", path, Some(query.clone())).await;
    assert_eq!(first["server_keys"].as_array().unwrap().len(), 5, "{first}");
    let (_, second) = unsigned(&notary, "POST", path, Some(query)).await;
    assert_eq!(
        second["server_keys"].as_array().unwrap().len(),
        6,
        "{second}"
    );
}

#[tokio::test]
async fn well_known_server_names_where_peers_connect() {
    let server = start_federated().await;
    let (status, body) = unsigned(&server, "GET", "/.well-known/matrix/server", None).await;
    assert_eq!(status, 200, "{body}");
    // The name already carries the federation port: it is the answer.
    assert_eq!(
        body["m.server"],
        json!(server.services.server_name.to_string())
    );
}
