//! Forks and merges: two servers change the same state at once; the state
//! where the branches meet is what the spec's resolution gives, whichever
//! branch arrives first.

use serde_json::json;

use super::*;

/// Alice (a.test) and bob (b.test) each set the topic on the same parent;
/// then alice sends a message on both branches. `bob_later`: bob's topic
/// has the later timestamp.
async fn concurrent_topics(version: RoomVersionId, bob_later: bool, alice_first: bool) {
    let mut dag = Dag::new(version.clone());
    let base = Base::start(&mut dag, 50).await;
    let auth_alice = [&base.create, &base.alice_join, &base.power];
    let auth_bob = [&base.create, &base.bob_join, &base.power];
    let (alice_ts, bob_ts) = if bob_later { (10, 20) } else { (20, 10) };
    let topic_a = dag.event(
        state(ALICE, "m.room.topic", "", json!({ "topic": "A" }), alice_ts),
        &[&base.bob_join],
        &auth_alice,
    );
    let topic_b = dag.event(
        state(BOB, "m.room.topic", "", json!({ "topic": "B" }), bob_ts),
        &[&base.bob_join],
        &auth_bob,
    );
    let (first, second) = if alice_first {
        (&topic_a, &topic_b)
    } else {
        (&topic_b, &topic_a)
    };
    assert_eq!(dag.append(first).await, Verdict::Accepted);
    let first_pos = dag.rooms.store.db.visible_count();
    assert_eq!(dag.append(second).await, Verdict::Accepted);
    let second_pos = dag.rooms.store.db.visible_count();

    // Both branches are forward extremities; the current state is their
    // resolution: same mainline, so the later timestamp is applied last.
    let mut both = vec![
        topic_a.event_id().to_string(),
        topic_b.event_id().to_string(),
    ];
    both.sort();
    assert_eq!(dag.extremities(), both, "{version}");
    let winner = if bob_later { "B" } else { "A" };
    assert_eq!(
        dag.current("m.room.topic", ""),
        Some(json!({ "topic": winner })),
        "{version}: current state of the fork"
    );

    // The state at each stream position is the room's state then, not the
    // state after whichever event came last.
    let short_room = dag.rooms.short_room(&dag.room()).unwrap().unwrap();
    let first_topic = if alice_first { "A" } else { "B" };
    let at_first = dag.rooms.state_at(short_room, first_pos).unwrap();
    assert_eq!(
        dag.in_state(at_first, "m.room.topic", ""),
        Some(json!({ "topic": first_topic })),
        "{version}: state at the first branch's position"
    );
    let at_second = dag.rooms.state_at(short_room, second_pos).unwrap();
    assert_eq!(
        dag.in_state(at_second, "m.room.topic", ""),
        Some(json!({ "topic": winner })),
        "{version}: state at the merge of the branches"
    );

    // A later event on both branches merges them.
    let merge = dag.event(
        message(ALICE, "both", 30),
        &[&topic_a, &topic_b],
        &[&base.create, &base.alice_join, &base.power],
    );
    assert_eq!(dag.append(&merge).await, Verdict::Accepted);
    assert_eq!(dag.extremities(), vec![merge.event_id().to_string()]);
    let short = dag.rooms.short_event(merge.event_id()).unwrap().unwrap();
    let before = dag.rooms.state_before(short).unwrap();
    assert_eq!(
        dag.in_state(before, "m.room.topic", ""),
        Some(json!({ "topic": winner })),
        "{version}: state before the merging event"
    );
}

#[tokio::test]
async fn concurrent_state_resolves_the_same_whatever_arrives_first() {
    for version in versions() {
        for bob_later in [true, false] {
            for alice_first in [true, false] {
                concurrent_topics(version.clone(), bob_later, alice_first).await;
            }
        }
    }
}

#[tokio::test]
async fn a_local_event_merges_every_forward_extremity() {
    for version in versions() {
        let mut dag = Dag::new(version.clone());
        let base = Base::start(&mut dag, 50).await;
        let one = dag.event(
            message(ALICE, "one", 10),
            &[&base.bob_join],
            &[&base.create, &base.alice_join, &base.power],
        );
        let two = dag.event(
            message(BOB, "two", 11),
            &[&base.bob_join],
            &[&base.create, &base.bob_join, &base.power],
        );
        dag.append(&one).await;
        dag.append(&two).await;
        assert_eq!(dag.extremities().len(), 2, "{version}");
        let bob = ruma::UserId::parse(BOB).unwrap();
        // Bob is not local, but the room core builds for any sender it is
        // asked to; what matters here is the event's prev events.
        let id = dag
            .rooms
            .send(
                &bob,
                &dag.room(),
                crate::rooms::send::EventDraft::message(
                    "m.room.message".into(),
                    json!({ "msgtype": "m.text", "body": "merge" }),
                ),
                None,
            )
            .await
            .unwrap();
        let (_, pdu) = dag.rooms.pdu(&id).unwrap().unwrap();
        let mut prevs: Vec<String> = pdu.prev_events.iter().map(|e| e.to_string()).collect();
        prevs.sort();
        let mut expected = vec![one.event_id().to_string(), two.event_id().to_string()];
        expected.sort();
        assert_eq!(prevs, expected, "{version}");
        assert_eq!(u64::from(pdu.depth), u64::from(one.pdu.depth) + 1);
        assert_eq!(dag.extremities(), vec![id.to_string()]);
    }
}
