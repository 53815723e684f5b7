//! A space's children as its `m.space.child` state names them (a child
//! counts when its `via` lists a server), in the spec's order: by `order`
//! (printable ASCII, at most 50 characters) where given, then by when the
//! child was added, then by room id. They come from a space held here or
//! from another server's hierarchy answer.

use ruma::events::space::child::HierarchySpaceChildEvent;
use ruma::serde::Raw;
use ruma::{OwnedRoomId, OwnedServerName, RoomId, ServerName};
use serde_json::{json, Value};

use crate::error::Result;
use crate::services::Services;

/// An `order` longer than this, or not printable ASCII, is ignored.
const MAX_ORDER_LEN: usize = 50;
/// Servers of a child's `via` kept (asked in turn for a room not held here).
const MAX_VIA: usize = 5;

/// One child of a space.
pub struct Child {
    pub room: OwnedRoomId,
    /// The servers to reach it through.
    pub via: Vec<OwnedServerName>,
    order: Option<String>,
    ts: u64,
    /// The child event as a hierarchy shows it (stripped, with its time).
    pub event: Raw<HierarchySpaceChildEvent>,
}

fn valid_order(order: &str) -> bool {
    order.len() <= MAX_ORDER_LEN && order.chars().all(|c| (' '..='~').contains(&c))
}

/// The child an `m.space.child` event names, if it names one (and is
/// suggested, when only those are asked for).
fn child_of(event: Value, suggested_only: bool) -> Option<Child> {
    if event.get("type")? != "m.space.child" {
        return None;
    }
    let room = RoomId::parse(event.get("state_key")?.as_str()?).ok()?;
    let content = event.get("content")?;
    let via: Vec<OwnedServerName> = content
        .get("via")?
        .as_array()?
        .iter()
        .filter_map(|v| ServerName::parse(v.as_str()?).ok())
        .take(MAX_VIA)
        .collect();
    if via.is_empty() {
        return None;
    }
    if suggested_only && content.get("suggested").and_then(Value::as_bool) != Some(true) {
        return None;
    }
    let order = content
        .get("order")
        .and_then(Value::as_str)
        .filter(|o| valid_order(o))
        .map(str::to_owned);
    let ts = event
        .get("origin_server_ts")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let event = Raw::from_json(serde_json::value::to_raw_value(&event).ok()?);
    Some(Child {
        room,
        via,
        order,
        ts,
        event,
    })
}

/// Sorts children in the spec's order.
fn sorted(mut children: Vec<Child>) -> Vec<Child> {
    children.sort_by(|a, b| {
        let key = |c: &Child| (c.order.is_none(), c.order.clone(), c.ts, c.room.clone());
        key(a).cmp(&key(b))
    });
    children
}

/// The children of a space held here, its state being `state`.
pub fn local_children(s: &Services, state: u64, suggested_only: bool) -> Result<Vec<Child>> {
    let mut out = Vec::new();
    for (short_key, short) in s.rooms.state.load(state)?.iter() {
        let (kind, key) = s.rooms.state.key_of(*short_key)?;
        if kind != "m.space.child" {
            continue;
        }
        let pdu = s.rooms.pdu_by_short(*short)?;
        let event = json!({
            "type": "m.space.child",
            "state_key": key,
            "content": pdu.content_value(),
            "sender": pdu.sender,
            "origin_server_ts": pdu.origin_server_ts,
        });
        out.extend(child_of(event, suggested_only));
    }
    Ok(sorted(out))
}

/// The children another server's hierarchy answer gives for a space.
pub fn remote_children(
    events: &[Raw<HierarchySpaceChildEvent>],
    suggested_only: bool,
) -> Vec<Child> {
    let children = events
        .iter()
        .filter_map(|raw| serde_json::from_str::<Value>(raw.json().get()).ok())
        .filter_map(|event| child_of(event, suggested_only))
        .collect();
    sorted(children)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(room: &str, content: Value, ts: u64) -> Raw<HierarchySpaceChildEvent> {
        let event = json!({
            "type": "m.space.child", "state_key": room, "content": content,
            "sender": "@a:x.test", "origin_server_ts": ts,
        });
        Raw::from_json(serde_json::value::to_raw_value(&event).unwrap())
    }

    #[test]
    fn children_come_in_the_spec_order_and_need_a_via() {
        let via = json!(["x.test"]);
        let events = [
            event("!late:x.test", json!({ "via": via }), 30),
            event("!early:x.test", json!({ "via": via }), 10),
            event("!b:x.test", json!({ "via": via, "order": "b" }), 50),
            event(
                "!a:x.test",
                json!({ "via": via, "order": "a", "suggested": true }),
                60,
            ),
            event("!odd:x.test", json!({ "via": via, "order": "\u{1}" }), 20),
            event("!gone:x.test", json!({}), 1),
            event("!empty:x.test", json!({ "via": [] }), 1),
            event("not a room", json!({ "via": via }), 1),
        ];
        let rooms = |children: Vec<Child>| -> Vec<String> {
            children.into_iter().map(|c| c.room.to_string()).collect()
        };
        assert_eq!(
            rooms(remote_children(&events, false)),
            [
                "!a:x.test",
                "!b:x.test",
                "!early:x.test",
                "!odd:x.test",
                "!late:x.test"
            ]
        );
        assert_eq!(rooms(remote_children(&events, true)), ["!a:x.test"]);
    }
}
