//! Power-level races: a power event and an action it forbids happen at once
//! on two servers; resolution applies power events first, so the action
//! loses whatever order the events arrive in.

use serde_json::json;

use super::*;

#[tokio::test]
async fn a_ban_beats_a_concurrent_join() {
    for version in versions() {
        for ban_first in [true, false] {
            let mut dag = Dag::new(version.clone());
            let base = Base::start(&mut dag, 50).await;
            let ban = dag.event(
                member(ALICE, EVE, "ban", 10),
                &[&base.bob_join],
                &[&base.create, &base.alice_join, &base.power],
            );
            let join = dag.event(
                member(EVE, EVE, "join", 11),
                &[&base.bob_join],
                &[&base.create, &base.power, &base.join_rules],
            );
            let (first, second) = if ban_first {
                (&ban, &join)
            } else {
                (&join, &ban)
            };
            assert_eq!(dag.append(first).await, Verdict::Accepted, "{version}");
            // Arriving second, the join fails against the current state
            // (eve is banned): soft-failed. The ban passes either way.
            let second_verdict = dag.append(second).await;
            let expected = if ban_first {
                Verdict::SoftFailed
            } else {
                Verdict::Accepted
            };
            assert_eq!(
                second_verdict, expected,
                "{version}, ban first: {ban_first}"
            );
            assert_eq!(
                dag.current("m.room.member", EVE),
                Some(json!({ "membership": "ban" })),
                "{version}, ban first: {ban_first}"
            );
            let short_room = dag.rooms.short_room(&dag.room()).unwrap().unwrap();
            let members = dag.rooms.members(short_room).unwrap();
            let eve = members
                .iter()
                .find(|(u, _)| u.as_str() == EVE)
                .map(|(_, m)| m.as_str());
            assert_eq!(
                eve,
                Some("ban"),
                "{version}: the membership index follows the state"
            );
        }
    }
}

#[tokio::test]
async fn a_demotion_beats_a_concurrent_state_change() {
    for version in versions() {
        let mut dag = Dag::new(version.clone());
        let base = Base::start(&mut dag, 50).await;
        let demote = dag.event(
            state(
                ALICE,
                "m.room.power_levels",
                "",
                power_content(&dag, 0, json!({})),
                10,
            ),
            &[&base.bob_join],
            &[&base.create, &base.alice_join, &base.power],
        );
        let topic = dag.event(
            state(BOB, "m.room.topic", "", json!({ "topic": "bob's" }), 20),
            &[&base.bob_join],
            &[&base.create, &base.bob_join, &base.power],
        );
        // The topic arrives first: allowed then (bob had 50).
        assert_eq!(dag.append(&topic).await, Verdict::Accepted, "{version}");
        assert_eq!(
            dag.current("m.room.topic", ""),
            Some(json!({ "topic": "bob's" }))
        );
        // The demotion forks the room; resolution applies it first, and bob's
        // topic then fails against it: it is not in the resolved state.
        assert_eq!(dag.append(&demote).await, Verdict::Accepted, "{version}");
        assert_eq!(dag.current("m.room.topic", ""), None, "{version}");
        let bob_level = dag
            .current("m.room.power_levels", "")
            .and_then(|c| c["users"].get(BOB).cloned());
        assert_eq!(bob_level, None, "{version}: bob is demoted");
    }
}
