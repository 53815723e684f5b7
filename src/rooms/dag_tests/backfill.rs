//! Backfill: history from before the server joined goes before everything
//! seen so far, oldest lowest, and pagination crosses from live events into
//! it with tokens that stay valid; backfill never moves the room's head.

use std::collections::HashMap;

use serde_json::json;

use super::*;
use crate::rooms::timeline::{TimelineEntry, TimelinePos};
use matrixos_storage::Direction;

/// A room alice made and wrote in before bob (and so this server) joined.
struct History {
    create: RemotePdu,
    alice_join: RemotePdu,
    power: RemotePdu,
    join_rules: RemotePdu,
    m1: RemotePdu,
    m2: RemotePdu,
    bob_join: RemotePdu,
}

async fn joined_late(dag: &mut Dag) -> History {
    let (base, mut messages) = Base::start_after(dag, 0, &["first", "second"]).await;
    let m2 = messages.pop().unwrap();
    let m1 = messages.pop().unwrap();
    History {
        create: base.create,
        alice_join: base.alice_join,
        power: base.power,
        join_rules: base.join_rules,
        m1,
        m2,
        bob_join: base.bob_join,
    }
}

fn ids(entries: &[TimelineEntry]) -> Vec<String> {
    entries.iter().map(|e| e.pdu.event_id.to_string()).collect()
}

fn names(events: &[&RemotePdu]) -> Vec<String> {
    events.iter().map(|e| e.event_id().to_string()).collect()
}

/// Pages backwards `size` events at a time from the newest, each page
/// starting from the previous page's token, until a page comes back empty.
fn paginate_backwards(dag: &Dag, size: usize) -> Vec<String> {
    let short_room = dag.rooms.short_room(&dag.room()).unwrap().unwrap();
    let mut token = TimelinePos::live(u64::MAX).token();
    let mut seen = Vec::new();
    for _ in 0..100 {
        let from = TimelinePos::parse(&token).unwrap();
        let page = dag
            .rooms
            .timeline(short_room, from, Direction::Backward, size, None)
            .unwrap();
        let Some(last) = page.last() else {
            return seen;
        };
        token = last.pos.before().token();
        seen.extend(ids(&page));
    }
    panic!("pagination never ended");
}

#[tokio::test]
async fn backfilled_events_go_before_everything_and_paginate() {
    for version in versions() {
        let mut dag = Dag::new(version.clone());
        let h = joined_late(&mut dag).await;
        let room = dag.room();
        let short_room = dag.rooms.short_room(&room).unwrap().unwrap();
        assert_eq!(paginate_backwards(&dag, 3), names(&[&h.bob_join]));

        // A peer answers /backfill newest first; state events this server
        // holds as outliers (from the join) move into the timeline.
        let first = vec![
            h.m2.clone(),
            h.m1.clone(),
            h.join_rules.clone(),
            h.power.clone(),
        ];
        let judged = dag
            .rooms
            .backfill(&room, first, HashMap::new())
            .await
            .unwrap();
        assert!(
            judged.iter().all(|a| a.verdict == Verdict::Accepted),
            "{version}: {judged:?}"
        );
        // A live event after the backfill, then older history still.
        let auth = [&h.create, &h.power, &h.bob_join];
        let m3 = dag.event(message(BOB, "after", 8), &[&h.bob_join], &auth);
        assert_eq!(dag.append(&m3).await, Verdict::Accepted);
        let second = vec![h.alice_join.clone(), h.create.clone()];
        let judged = dag
            .rooms
            .backfill(&room, second, HashMap::new())
            .await
            .unwrap();
        assert!(judged.iter().all(|a| a.verdict == Verdict::Accepted));

        let newest_first = names(&[
            &m3,
            &h.bob_join,
            &h.m2,
            &h.m1,
            &h.join_rules,
            &h.power,
            &h.alice_join,
            &h.create,
        ]);
        for size in [1, 2, 3, 10] {
            assert_eq!(
                paginate_backwards(&dag, size),
                newest_first,
                "{version} by {size}"
            );
        }
        let forward = dag
            .rooms
            .timeline(
                short_room,
                TimelinePos::EARLIEST,
                Direction::Forward,
                100,
                None,
            )
            .unwrap();
        let mut oldest_first = newest_first.clone();
        oldest_first.reverse();
        assert_eq!(ids(&forward), oldest_first, "{version}");
        // Live events keep their stream counts; backfilled ones sit at or
        // below the start of the live timeline, whose token is unchanged.
        let live: Vec<String> = forward
            .iter()
            .filter(|e| e.pos > TimelinePos::LIVE_START)
            .map(|e| e.pdu.event_id.to_string())
            .collect();
        assert_eq!(live, names(&[&h.bob_join, &m3]));
        let to_live = dag
            .rooms
            .timeline(
                short_room,
                TimelinePos::LIVE_START,
                Direction::Backward,
                1,
                None,
            )
            .unwrap();
        assert_eq!(ids(&to_live), names(&[&h.m2]));

        // Backfill moved neither the head nor the current state.
        assert_eq!(dag.extremities(), names(&[&m3]));
        let meta = |e: &RemotePdu| {
            let short = dag.rooms.short_event(e.event_id()).unwrap().unwrap();
            dag.rooms.meta(short).unwrap()
        };
        assert_eq!(meta(&h.m1).count, 0);
        assert!(meta(&h.m1).position() < TimelinePos::LIVE_START);
        // The state before a backfilled event follows its prev events.
        let before_m1 = meta(&h.m1).state_before;
        assert_eq!(
            dag.in_state(before_m1, "m.room.join_rules", ""),
            Some(json!({ "join_rule": "public" }))
        );
        let power = dag.rooms.short_event(h.power.event_id()).unwrap().unwrap();
        assert!(
            !dag.rooms.is_outlier(power).unwrap(),
            "promoted from outlier"
        );

        // Backfilling known events again changes nothing.
        let again = dag
            .rooms
            .backfill(&room, vec![h.m1.clone(), m3.clone()], HashMap::new())
            .await
            .unwrap();
        assert!(again.iter().all(|a| a.verdict == Verdict::Accepted));
        assert_eq!(paginate_backwards(&dag, 4), newest_first, "{version}");
    }
}

#[tokio::test]
async fn backfilled_events_that_fail_auth_are_kept_out() {
    for version in versions() {
        let mut dag = Dag::new(version.clone());
        let h = joined_late(&mut dag).await;
        let room = dag.room();
        // Eve never joined: her message fails against its auth events.
        let auth = [&h.create, &h.alice_join, &h.power];
        let forged = dag.event(message(EVE, "I was here", 6), &[&h.m1], &auth);
        let judged = dag
            .rooms
            .backfill(
                &room,
                vec![h.m2.clone(), forged.clone(), h.m1.clone()],
                HashMap::new(),
            )
            .await
            .unwrap();
        let verdict = |e: &RemotePdu| {
            judged
                .iter()
                .find(|a| &a.event_id == e.event_id())
                .map(|a| a.verdict)
        };
        assert_eq!(verdict(&forged), Some(Verdict::Rejected), "{version}");
        assert_eq!(verdict(&h.m1), Some(Verdict::Accepted));
        assert_eq!(verdict(&h.m2), Some(Verdict::Accepted));
        assert_eq!(
            paginate_backwards(&dag, 2),
            names(&[&h.bob_join, &h.m2, &h.m1]),
            "{version}"
        );
        // Asked again, it is still rejected, and still not served.
        let again = dag
            .rooms
            .backfill(&room, vec![forged.clone()], HashMap::new())
            .await
            .unwrap();
        assert_eq!(again[0].verdict, Verdict::Rejected);
    }
}

#[tokio::test]
async fn the_oldest_backfilled_event_takes_the_state_a_peer_gives() {
    for version in versions() {
        let mut dag = Dag::new(version.clone());
        let h = joined_late(&mut dag).await;
        let room = dag.room();
        let state_before_m1 = |dag: &Dag| {
            let short = dag.rooms.short_event(h.m1.event_id()).unwrap().unwrap();
            dag.rooms.meta(short).unwrap().state_before
        };
        let join_rules = |dag: &Dag, state| dag.in_state(state, "m.room.join_rules", "");
        // m1's prev event (the join rules) is not in the timeline: without
        // a state given, the state before it is what its auth events form,
        // which has no join rules.
        let mut guessed = Dag::new(version.clone());
        let g = joined_late(&mut guessed).await;
        guessed
            .rooms
            .backfill(&guessed.room(), vec![g.m1.clone()], HashMap::new())
            .await
            .unwrap();
        assert_eq!(join_rules(&guessed, state_before_m1(&guessed)), None);

        // With the state a peer gave (all of it known here as outliers from
        // the join), the state before m1 is that state.
        let given: Vec<_> = [&h.create, &h.alice_join, &h.power, &h.join_rules]
            .iter()
            .map(|e| e.event_id().clone())
            .collect();
        let states = HashMap::from([(h.m1.event_id().clone(), given)]);
        let judged = dag
            .rooms
            .backfill(&room, vec![h.m2.clone(), h.m1.clone()], states)
            .await
            .unwrap();
        assert!(judged.iter().all(|a| a.verdict == Verdict::Accepted));
        assert_eq!(
            join_rules(&dag, state_before_m1(&dag)),
            Some(json!({ "join_rule": "public" })),
            "{version}"
        );
        let short_m2 = dag.rooms.short_event(h.m2.event_id()).unwrap().unwrap();
        let before_m2 = dag.rooms.meta(short_m2).unwrap().state_before;
        assert!(join_rules(&dag, before_m2).is_some(), "m2 builds on m1");

        // A state naming an event this server does not have is not taken.
        let mut unknown = Dag::new(version.clone());
        let u = joined_late(&mut unknown).await;
        let stray = unknown.event(message(ALICE, "never sent", 9), &[&u.m2], &[&u.create]);
        let states = HashMap::from([(
            u.m1.event_id().clone(),
            vec![u.create.event_id().clone(), stray.event_id().clone()],
        )]);
        let judged = unknown
            .rooms
            .backfill(&unknown.room(), vec![u.m1.clone()], states)
            .await
            .unwrap();
        assert_eq!(judged[0].verdict, Verdict::Accepted);
        assert_eq!(join_rules(&unknown, state_before_m1(&unknown)), None);
    }
}

#[test]
fn tokens_round_trip_and_refuse_garbage() {
    for pos in [
        TimelinePos::EARLIEST,
        TimelinePos::backfilled(7),
        TimelinePos::LIVE_START,
        TimelinePos::live(42),
    ] {
        assert_eq!(TimelinePos::parse(&pos.token()), Some(pos));
    }
    assert!(TimelinePos::backfilled(8) < TimelinePos::backfilled(7));
    assert!(TimelinePos::backfilled(1) < TimelinePos::live(1));
    assert_eq!(TimelinePos::live(1).before(), TimelinePos::LIVE_START);
    assert_eq!(TimelinePos::LIVE_START.before(), TimelinePos::backfilled(1));
    // Tokens from before backfill existed (stream counts) mean the same.
    assert_eq!(TimelinePos::parse("42").unwrap(), TimelinePos::live(42));
    for bad in [
        "",
        "x",
        "1.5",
        "-9223372036854775808",
        "99999999999999999999",
    ] {
        assert!(TimelinePos::parse(bad).is_none(), "{bad}");
    }
}
