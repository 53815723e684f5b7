//! State resolution against hand-made states: a case where room version 12's
//! conflicted state subgraph changes the outcome.
//!
//! PL1 lets only alice change power levels; PL2 (by alice, on PL1) gives
//! bob 100; PL3 (by bob, on PL2) raises the level for state events. One
//! state holds PL3, the other PL1 and a topic bob set under PL2, so PL2 is
//! in both states' auth chains and in neither's auth difference.
//! Versions 10 and 11 check PL3 against PL1 and drop it; version 12 walks
//! the subgraph PL3 → PL2 → PL1, applies PL2, and keeps PL3.

use std::sync::Arc;

use matrixos_storage::Batch;
use serde_json::json;

use super::*;
use crate::rooms::state::StateMap;

#[tokio::test]
async fn the_conflicted_subgraph_decides_in_room_version_12() {
    for version in versions() {
        let mut dag = Dag::new(version.clone());
        let base = Base::start(&mut dag, 0).await;
        let pl2 = dag.event(
            state(
                ALICE,
                "m.room.power_levels",
                "",
                power_content(&dag, 100, json!({})),
                10,
            ),
            &[&base.bob_join],
            &[&base.create, &base.alice_join, &base.power],
        );
        let topic = dag.event(
            state(BOB, "m.room.topic", "", json!({ "topic": "under PL2" }), 11),
            &[&pl2],
            &[&base.create, &base.bob_join, &pl2],
        );
        let pl3 = dag.event(
            state(
                BOB,
                "m.room.power_levels",
                "",
                power_content(&dag, 100, json!({ "state_default": 60 })),
                12,
            ),
            &[&topic],
            &[&base.create, &base.bob_join, &pl2],
        );
        for event in [&pl2, &topic, &pl3] {
            assert_eq!(dag.append(event).await, Verdict::Accepted, "{version}");
        }
        let rooms = &dag.rooms;
        let short = |e: &RemotePdu| rooms.short_event(e.event_id()).unwrap().unwrap();
        let key = |kind: &str, k: &str| rooms.state.short_key(kind, k).unwrap().unwrap();
        let mut common = StateMap::new();
        common.insert(key("m.room.create", ""), short(&base.create));
        common.insert(key("m.room.member", ALICE), short(&base.alice_join));
        common.insert(key("m.room.join_rules", ""), short(&base.join_rules));
        common.insert(key("m.room.member", BOB), short(&base.bob_join));
        common.insert(key("m.room.topic", ""), short(&topic));
        let mut with_pl3 = common.clone();
        with_pl3.insert(key("m.room.power_levels", ""), short(&pl3));
        let mut with_pl1 = common;
        with_pl1.insert(key("m.room.power_levels", ""), short(&base.power));

        let rules = version.rules().unwrap();
        let mut batch = Batch::new();
        let resolved = rooms
            .resolve_states(
                &rules,
                &[Arc::new(with_pl3), Arc::new(with_pl1)],
                &mut batch,
            )
            .unwrap();
        let power = resolved[&key("m.room.power_levels", "")];
        let expected = if version == RoomVersionId::V12 {
            short(&pl3)
        } else {
            short(&base.power)
        };
        assert_eq!(power, expected, "{version}");
        assert_eq!(
            resolved[&key("m.room.topic", "")],
            short(&topic),
            "unconflicted state stays"
        );
    }
}
