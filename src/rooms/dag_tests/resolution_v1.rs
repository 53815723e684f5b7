//! State resolution in room version 1, the spec's original algorithm:
//! unlike later versions, depth decides between candidates, and a power
//! levels event counts only if the one before it in depth authorises it.

use serde_json::json;

use super::*;

/// Alice sets the topic on two branches: "A" right away, "B" one event
/// deeper but with the earlier timestamp. Version 1 keeps the deeper one;
/// version 2's mainline order (same sender, same power) keeps the later
/// timestamp.
#[tokio::test]
async fn the_deeper_candidate_wins_in_room_version_1() {
    for (version, winner) in [(RoomVersionId::V1, "B"), (RoomVersionId::V2, "A")] {
        let mut dag = Dag::new(version.clone());
        let base = Base::start(&mut dag, 0).await;
        let auth = [&base.create, &base.alice_join, &base.power];
        let topic_a = dag.event(
            state(ALICE, "m.room.topic", "", json!({ "topic": "A" }), 30),
            &[&base.bob_join],
            &auth,
        );
        let hello = dag.event(message(ALICE, "hello", 10), &[&base.bob_join], &auth);
        let topic_b = dag.event(
            state(ALICE, "m.room.topic", "", json!({ "topic": "B" }), 20),
            &[&hello],
            &auth,
        );
        for event in [&topic_a, &hello, &topic_b] {
            assert_eq!(dag.append(event).await, Verdict::Accepted, "{version}");
        }
        assert_eq!(dag.extremities().len(), 2, "{version}: a fork");
        assert_eq!(
            dag.current("m.room.topic", ""),
            Some(json!({ "topic": winner })),
            "{version}"
        );
    }
}

/// Bob (50) lowers the level for state events on one branch, two events
/// deep; alice demotes bob to 0 on the other, one event deep. Walking the
/// candidates from the shallowest, alice's levels stand and do not allow
/// bob's change: the demotion is the resolved power levels.
#[tokio::test]
async fn a_demotion_stops_the_demoted_users_deeper_power_change_in_room_version_1() {
    let mut dag = Dag::new(RoomVersionId::V1);
    let base = Base::start(&mut dag, 50).await;
    let auth_bob = [&base.create, &base.bob_join, &base.power];
    let note = dag.event(message(BOB, "note", 10), &[&base.bob_join], &auth_bob);
    let lowered = dag.event(
        state(
            BOB,
            "m.room.power_levels",
            "",
            power_content(&dag, 50, json!({ "state_default": 40 })),
            11,
        ),
        &[&note],
        &auth_bob,
    );
    let demotion = dag.event(
        state(
            ALICE,
            "m.room.power_levels",
            "",
            power_content(&dag, 0, json!({})),
            12,
        ),
        &[&base.bob_join],
        &[&base.create, &base.alice_join, &base.power],
    );
    for event in [&note, &lowered, &demotion] {
        assert_eq!(dag.append(event).await, Verdict::Accepted);
    }
    assert_eq!(dag.extremities().len(), 2, "a fork");
    let power = dag.current("m.room.power_levels", "").unwrap();
    assert_eq!(power["state_default"], 50, "{power}");
    assert_eq!(power["users"].get(BOB), None, "bob is demoted: {power}");

    // A topic bob sets on his branch after the fork is judged against the
    // resolved state when it merges: he no longer may.
    let topic = dag.event(
        state(BOB, "m.room.topic", "", json!({ "topic": "mine" }), 13),
        &[&lowered],
        &[&base.create, &base.bob_join, &lowered],
    );
    assert_eq!(dag.append(&topic).await, Verdict::SoftFailed);
    assert_eq!(dag.current("m.room.topic", ""), None);
}
