//! Verdicts: an event that fails against its auth events or the state
//! before it is rejected (kept, never served, never in a state); one that
//! fails only against the current state is soft-failed (kept, not served,
//! not a forward extremity). A room born from a snapshot is all or nothing.

use serde_json::json;

use super::*;
use crate::rooms::timeline::TimelinePos;
use matrixos_storage::Direction;

fn in_timeline(dag: &Dag, event: &RemotePdu) -> bool {
    let short_room = dag.rooms.short_room(&dag.room()).unwrap().unwrap();
    dag.rooms
        .timeline(
            short_room,
            TimelinePos::live(u64::MAX),
            Direction::Backward,
            1000,
            None,
        )
        .unwrap()
        .iter()
        .any(|e| &e.pdu.event_id == event.event_id())
}

#[tokio::test]
async fn rejected_events_are_kept_but_never_served_or_state() {
    for version in versions() {
        let mut dag = Dag::new(version.clone());
        let base = Base::start(&mut dag, 50).await;
        // Eve never joined: her message fails against the state before it.
        let stranger = dag.event(
            message(EVE, "let me in", 10),
            &[&base.bob_join],
            &[&base.create, &base.power],
        );
        // Bob (50) may not change power levels (needs 50 for state, but
        // may not raise anyone above himself): rejected by the auth rules.
        let grab = dag.event(
            state(
                BOB,
                "m.room.power_levels",
                "",
                power_content(&dag, 100, json!({})),
                11,
            ),
            &[&base.bob_join],
            &[&base.create, &base.bob_join, &base.power],
        );
        // An event citing an auth event of the wrong kind fails against its
        // auth events.
        let bad_auth = dag.event(
            state(BOB, "m.room.topic", "", json!({ "topic": "x" }), 12),
            &[&base.bob_join],
            &[&base.create, &base.power, &base.join_rules],
        );
        for event in [&stranger, &grab, &bad_auth] {
            let extremities = dag.extremities();
            assert_eq!(dag.append(event).await, Verdict::Rejected, "{version}");
            assert!(
                !in_timeline(&dag, event),
                "{version}: rejected event served"
            );
            assert_eq!(dag.extremities(), extremities, "{version}");
            // Appending it again answers the stored verdict.
            assert_eq!(dag.append(event).await, Verdict::Rejected, "{version}");
            let (_, pdu) = dag.rooms.pdu(event.event_id()).unwrap().unwrap();
            assert!(pdu.rejected);
        }
        assert_eq!(dag.current("m.room.topic", ""), None);
        // A later event that cites a rejected event as an auth event is
        // rejected too.
        let on_rejected = dag.event(
            state(BOB, "m.room.name", "", json!({ "name": "n" }), 13),
            &[&base.bob_join],
            &[&base.create, &base.bob_join, &grab],
        );
        assert_eq!(
            dag.append(&on_rejected).await,
            Verdict::Rejected,
            "{version}"
        );
    }
}

#[tokio::test]
async fn events_failing_only_the_current_state_are_soft_failed() {
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
        assert_eq!(dag.append(&demote).await, Verdict::Accepted);
        // Bob builds on the state before his demotion (a fork).
        let topic = dag.event(
            state(BOB, "m.room.topic", "", json!({ "topic": "late" }), 20),
            &[&base.bob_join],
            &[&base.create, &base.bob_join, &base.power],
        );
        assert_eq!(dag.append(&topic).await, Verdict::SoftFailed, "{version}");
        assert!(!in_timeline(&dag, &topic));
        assert_eq!(dag.extremities(), vec![demote.event_id().to_string()]);
        assert_eq!(dag.current("m.room.topic", ""), None);
        let short = dag.rooms.short_event(topic.event_id()).unwrap().unwrap();
        assert!(dag.rooms.timeline_meta(short).unwrap().is_none());
    }
}

#[tokio::test]
async fn a_room_born_from_a_snapshot_is_whole_or_absent() {
    for version in versions() {
        let mut dag = Dag::new(version.clone());
        let base = Base::start(&mut dag, 50).await;
        // The snapshot made a room whose state is the snapshot plus the join.
        assert_eq!(
            dag.current("m.room.join_rules", ""),
            Some(json!({ "join_rule": "public" }))
        );
        assert_eq!(
            dag.current("m.room.member", BOB),
            Some(json!({ "membership": "join" }))
        );
        assert_eq!(
            dag.extremities(),
            vec![base.bob_join.event_id().to_string()]
        );
        assert!(in_timeline(&dag, &base.bob_join));
        assert!(!in_timeline(&dag, &base.power), "state events are outliers");
        let short_room = dag.rooms.short_room(&dag.room()).unwrap().unwrap();
        let mut members = dag.rooms.members(short_room).unwrap();
        members.sort();
        assert_eq!(members.len(), 2, "{version}: {members:?}");

        // A snapshot holding an event its own auth events reject leaves
        // nothing behind: no room, no events.
        let mut other = Dag::new(version.clone());
        let create = other.event(
            state(
                ALICE,
                "m.room.create",
                "",
                json!({ "creator": ALICE, "room_version": version.to_string() }),
                1,
            ),
            &[],
            &[],
        );
        let alice_join = other.event(member(ALICE, ALICE, "join", 2), &[&create], &[&create]);
        // Bob sets a topic without being a member: rejected.
        let forged = other.event(
            state(BOB, "m.room.topic", "", json!({ "topic": "forged" }), 3),
            &[&alice_join],
            &[&create, &alice_join],
        );
        let join = other.event(
            member(ALICE, ALICE, "join", 4),
            &[&forged],
            &[&create, &alice_join],
        );
        let result = other
            .rooms
            .join_from_snapshot(Snapshot {
                room_id: other.room(),
                version: version.clone(),
                state: vec![create.clone(), alice_join.clone(), forged.clone()],
                auth_chain: vec![],
                join,
            })
            .await;
        assert!(result.is_err(), "{version}");
        assert_eq!(other.rooms.short_room(&other.room()).unwrap(), None);
        assert_eq!(
            other.rooms.short_event(create.event_id()).unwrap(),
            None,
            "{version}: nothing stored"
        );
    }
}
