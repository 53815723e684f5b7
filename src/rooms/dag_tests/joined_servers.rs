//! The servers with a joined member in a room, as the federation outbox
//! follows them: read from a state once, then moved on by each event.

use serde_json::json;

use super::*;
use crate::rooms::joined_servers::JoinedServers;
use crate::rooms::Appended;

/// Appends `event` and moves `servers` on past it as the outbox does;
/// the result must be what reading the new state gives.
async fn append_following(dag: &Dag, servers: &JoinedServers, event: &RemotePdu) -> JoinedServers {
    let (_, head) = dag.rooms.record_of(&dag.room()).unwrap();
    assert_eq!(dag.append(event).await, Verdict::Accepted);
    let (short_room, after) = dag.rooms.record_of(&dag.room()).unwrap();
    let short = dag.rooms.short_event(event.event_id()).unwrap().unwrap();
    let meta = dag.rooms.meta_opt(short).unwrap().unwrap();
    let pdu = dag.rooms.pdu_by_short(short).unwrap();
    let appended = Appended {
        short_room,
        count: meta.count,
        short_event: short,
        head: &head,
        after: &after,
        pdu: &pdu,
        state_before: meta.state_before,
        state_after: meta.state_after,
        replaces: meta.replaces,
    };
    let next = servers
        .after(&dag.rooms, &appended)
        .unwrap()
        .expect("a linear event moves the servers on");
    assert_eq!(next, JoinedServers::at(&dag.rooms, after.state).unwrap());
    next
}

/// The servers in a room at a state are read from that state and moved on
/// by each event: an invite adds no server, a second member of a server
/// leaving keeps it, the last one leaving drops it; a state from before
/// still gives its own servers.
#[tokio::test]
async fn joined_servers_follow_each_member_event() {
    let mut dag = Dag::new(RoomVersionId::V11);
    let base = Base::start(&mut dag, 50).await;
    let names = |servers: &JoinedServers| -> Vec<String> {
        servers.servers().map(|s| s.to_string()).collect()
    };
    let (_, joined) = dag.rooms.record_of(&dag.room()).unwrap();
    let at_join = JoinedServers::at(&dag.rooms, joined.state).unwrap();
    assert_eq!(names(&at_join), ["a.test", "b.test"]);

    let auth_alice = [&base.create, &base.alice_join, &base.power];
    let invite = dag.event(
        member(ALICE, "@carol:c.test", "invite", 10),
        &[&base.bob_join],
        &auth_alice,
    );
    let servers = append_following(&dag, &at_join, &invite).await;
    assert_eq!(names(&servers), ["a.test", "b.test"]);
    let topic = dag.event(
        state(ALICE, "m.room.topic", "", json!({ "topic": "t" }), 11),
        &[&invite],
        &auth_alice,
    );
    let servers = append_following(&dag, &servers, &topic).await;
    let eve_join = dag.event(
        member(EVE, EVE, "join", 12),
        &[&topic],
        &[&base.create, &base.join_rules, &base.power],
    );
    let servers = append_following(&dag, &servers, &eve_join).await;
    let bob_leave = dag.event(
        member(BOB, BOB, "leave", 13),
        &[&eve_join],
        &[&base.create, &base.bob_join, &base.power],
    );
    let servers = append_following(&dag, &servers, &bob_leave).await;
    assert_eq!(
        names(&servers),
        ["a.test", "b.test"],
        "eve is still on b.test"
    );
    let eve_leave = dag.event(
        member(EVE, EVE, "leave", 14),
        &[&bob_leave],
        &[&base.create, &eve_join, &base.power],
    );
    let servers = append_following(&dag, &servers, &eve_leave).await;
    assert_eq!(names(&servers), ["a.test"]);
    assert_eq!(
        names(&JoinedServers::at(&dag.rooms, joined.state).unwrap()),
        ["a.test", "b.test"]
    );
}
