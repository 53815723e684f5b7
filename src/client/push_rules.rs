//! `/pushrules`: the user's push rule set, stored as `m.push_rules` account
//! data and starting from the spec's server-default rules (kept by
//! [`crate::push::Push`]).

use axum::routing::get;
use axum::Router;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::Json;
use ruma::push::{
    Action, NewConditionalPushRule, NewPatternedPushRule, NewPushRule, NewSimplePushRule, RuleKind,
    Ruleset,
};
use ruma::{RoomId, UserId};
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::http::extract::{opt_bool, Auth, JsonBody};
use crate::services::Services;

/// This area's endpoints.
pub fn routes() -> Router<Arc<Services>> {
    Router::new()
        .route(&super::v3("/pushrules/"), get(get_all))
        .route(&super::v3("/pushrules"), get(get_all))
        .route(&super::v3("/pushrules/{scope}/"), get(get_scope))
        .route(
            &super::v3("/pushrules/{scope}/{kind}/{rule_id}"),
            get(get_rule).put(put_rule).delete(delete_rule),
        )
        .route(
            &super::v3("/pushrules/{scope}/{kind}/{rule_id}/{attr}"),
            get(get_attribute).put(set_attribute),
        )
}

type S = State<Arc<Services>>;

/// A copy of the user's rule set to change.
fn ruleset(s: &Services, user: &UserId) -> Result<Ruleset> {
    Ok(s.push.ruleset(user)?.set.clone())
}

async fn save(s: &Services, user: &UserId, rules: Ruleset) -> Result<()> {
    s.push.save_ruleset(user, rules).await
}

fn check_scope(scope: &str) -> Result<()> {
    if scope != "global" {
        return Err(Error::invalid_param("Push rule scope must be 'global'"));
    }
    Ok(())
}

fn kind(kind: &str) -> Result<RuleKind> {
    match kind {
        "override" | "underride" | "sender" | "room" | "content" => Ok(RuleKind::from(kind)),
        _ => Err(Error::invalid_param("Unknown push rule kind")),
    }
}

fn rule_json(rules: &Ruleset, kind: RuleKind, id: &str) -> Result<Value> {
    use ruma::push::AnyPushRuleRef as R;
    let rule = rules
        .get(kind, id)
        .ok_or_else(|| Error::not_found("Push rule not found"))?;
    Ok(match rule {
        R::Override(r) | R::Underride(r) => serde_json::to_value(r)?,
        R::Content(r) => serde_json::to_value(r)?,
        R::Room(r) => serde_json::to_value(r)?,
        R::Sender(r) => serde_json::to_value(r)?,
        _ => return Err(Error::not_found("Push rule not found")),
    })
}

pub async fn get_all(State(s): S, Auth(caller): Auth) -> Result<Json<Value>> {
    Ok(Json(json!({ "global": ruleset(&s, &caller.user_id)? })))
}

pub async fn get_scope(
    State(s): S,
    Auth(caller): Auth,
    Path(scope): Path<String>,
) -> Result<Json<Value>> {
    check_scope(&scope)?;
    Ok(Json(serde_json::to_value(ruleset(&s, &caller.user_id)?)?))
}

pub async fn get_rule(
    State(s): S,
    Auth(caller): Auth,
    Path((scope, k, id)): Path<(String, String, String)>,
) -> Result<Json<Value>> {
    check_scope(&scope)?;
    Ok(Json(rule_json(
        &ruleset(&s, &caller.user_id)?,
        kind(&k)?,
        &id,
    )?))
}

fn actions(body: &Value) -> Result<Vec<Action>> {
    let raw = body
        .get("actions")
        .ok_or_else(|| Error::missing_param("Missing 'actions'"))?;
    serde_json::from_value(raw.clone())
        .map_err(|e| Error::bad_json(format!("Invalid actions: {e}")))
}

fn new_rule(kind: &str, id: &str, body: &Value) -> Result<NewPushRule> {
    let actions = actions(body)?;
    let conditions = || -> Result<_> {
        match body.get("conditions") {
            None => Ok(Vec::new()),
            Some(c) => serde_json::from_value(c.clone())
                .map_err(|e| Error::bad_json(format!("Invalid conditions: {e}"))),
        }
    };
    Ok(match kind {
        "override" => NewPushRule::Override(NewConditionalPushRule::new(
            id.to_owned(),
            conditions()?,
            actions,
        )),
        "underride" => NewPushRule::Underride(NewConditionalPushRule::new(
            id.to_owned(),
            conditions()?,
            actions,
        )),
        "content" => {
            let pattern = body
                .get("pattern")
                .and_then(Value::as_str)
                .ok_or_else(|| Error::missing_param("Missing 'pattern'"))?;
            NewPushRule::Content(NewPatternedPushRule::new(
                id.to_owned(),
                pattern.to_owned(),
                actions,
            ))
        }
        "room" => {
            let room = RoomId::parse(id)
                .map_err(|_| Error::invalid_param("Room rule id must be a room id"))?;
            NewPushRule::Room(NewSimplePushRule::new(room, actions))
        }
        "sender" => {
            let user = UserId::parse(id)
                .map_err(|_| Error::invalid_param("Sender rule id must be a user id"))?;
            NewPushRule::Sender(NewSimplePushRule::new(user, actions))
        }
        _ => return Err(Error::invalid_param("Unknown push rule kind")),
    })
}

pub async fn put_rule(
    State(s): S,
    Auth(caller): Auth,
    Path((scope, k, id)): Path<(String, String, String)>,
    Query(q): Query<Vec<(String, String)>>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    check_scope(&scope)?;
    kind(&k)?;
    let rule = new_rule(&k, &id, &body)?;
    let before = q
        .iter()
        .find(|(k, _)| k == "before")
        .map(|(_, v)| v.as_str());
    let after = q
        .iter()
        .find(|(k, _)| k == "after")
        .map(|(_, v)| v.as_str());
    let mut rules = ruleset(&s, &caller.user_id)?;
    rules.insert(rule, after, before).map_err(|e| match e {
        ruma::push::InsertPushRuleError::UnknownRuleId => Error::not_found(e.to_string()),
        _ => Error::invalid_param(e.to_string()),
    })?;
    save(&s, &caller.user_id, rules).await?;
    Ok(Json(json!({})))
}

pub async fn delete_rule(
    State(s): S,
    Auth(caller): Auth,
    Path((scope, k, id)): Path<(String, String, String)>,
) -> Result<Json<Value>> {
    check_scope(&scope)?;
    let mut rules = ruleset(&s, &caller.user_id)?;
    rules.remove(kind(&k)?, &id).map_err(|e| match e {
        ruma::push::RemovePushRuleError::NotFound => Error::not_found("Push rule not found"),
        _ => Error::invalid_param(e.to_string()),
    })?;
    save(&s, &caller.user_id, rules).await?;
    Ok(Json(json!({})))
}

/// `GET …/{id}/enabled` and `GET …/{id}/actions`.
pub async fn get_attribute(
    State(s): S,
    Auth(caller): Auth,
    Path((scope, k, id, attr)): Path<(String, String, String, String)>,
) -> Result<Json<Value>> {
    check_scope(&scope)?;
    let rule = rule_json(&ruleset(&s, &caller.user_id)?, kind(&k)?, &id)?;
    let default = match attr.as_str() {
        "enabled" => json!(true),
        "actions" => json!([]),
        _ => return Err(Error::unrecognized("Unknown push rule attribute")),
    };
    Ok(Json(
        json!({ attr.as_str(): rule.get(attr.as_str()).cloned().unwrap_or(default) }),
    ))
}

/// `PUT …/{id}/enabled` and `PUT …/{id}/actions`.
pub async fn set_attribute(
    State(s): S,
    Auth(caller): Auth,
    Path((scope, k, id, attr)): Path<(String, String, String, String)>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>> {
    check_scope(&scope)?;
    let kind = kind(&k)?;
    let mut rules = ruleset(&s, &caller.user_id)?;
    let found = match attr.as_str() {
        "enabled" => {
            let enabled = opt_bool(&body, "enabled")?
                .ok_or_else(|| Error::missing_param("Missing 'enabled'"))?;
            rules.set_enabled(kind, &id, enabled)
        }
        "actions" => rules.set_actions(kind, &id, actions(&body)?),
        _ => return Err(Error::unrecognized("Unknown push rule attribute")),
    };
    found.map_err(|_| Error::not_found("Push rule not found"))?;
    save(&s, &caller.user_id, rules).await?;
    Ok(Json(json!({})))
}
