//! `/pushrules`: the user's push rule set, stored as `m.push_rules` account
//! data and starting from the spec's server-default rules (kept by
//! [`crate::push::Push`]).

use std::sync::Arc;

use axum::routing::any;
use axum::Router;
use ruma::api::client::push::{
    delete_pushrule, get_pushrule, get_pushrule_actions, get_pushrule_enabled, get_pushrules_all,
    get_pushrules_global_scope, set_pushrule, set_pushrule_actions, set_pushrule_enabled, PushRule,
};
use ruma::api::path_builder::PathBuilder;
use ruma::api::Metadata;
use ruma::push::{RuleKind, Ruleset};
use ruma::UserId;

use crate::error::{Error, Result};
use crate::http::endpoint::{Ruma, TypedRoutes};
use crate::services::Services;

/// This area's endpoints. The whole rule set is also served without the
/// trailing `/`, as it always was here.
pub fn routes() -> Router<Arc<Services>> {
    let all = get_pushrules_all::v3::Request::PATH_BUILDER.all_paths();
    let without_slash = all.into_iter().filter_map(|p| p.strip_suffix('/'));
    Router::new()
        .endpoint(get_all)
        .endpoint_at(without_slash, get_all)
        .endpoint(get_scope)
        .endpoint(get_rule)
        .endpoint(put_rule)
        .endpoint(delete_rule)
        .endpoint(get_actions)
        .endpoint(set_actions)
        .endpoint(get_enabled)
        .endpoint(set_enabled)
        .route(&super::v3("/pushrules/{scope}/"), any(unrecognized))
        .route(&super::v3("/pushrules/{scope}/{*rest}"), any(unrecognized))
}

/// Push rule paths that name no endpoint (a scope other than `global`, an
/// attribute other than `actions` and `enabled`): 400 `M_UNRECOGNIZED`, as
/// Synapse answers.
async fn unrecognized() -> Error {
    Error::new(
        http::StatusCode::BAD_REQUEST,
        "M_UNRECOGNIZED",
        "Unrecognized push rule path",
    )
}

/// A copy of the user's rule set to change.
fn ruleset(s: &Services, user: &UserId) -> Result<Ruleset> {
    Ok(s.push.ruleset(user)?.set.clone())
}

async fn save(s: &Services, user: &UserId, rules: Ruleset) -> Result<()> {
    s.push.save_ruleset(user, rules).await
}

/// The kinds of rule there are; ruma takes any other name as custom.
fn known(kind: RuleKind) -> Result<RuleKind> {
    match kind {
        RuleKind::Override
        | RuleKind::Underride
        | RuleKind::Sender
        | RuleKind::Room
        | RuleKind::Content => Ok(kind),
        _ => Err(Error::invalid_param("Unknown push rule kind")),
    }
}

fn rule_not_found() -> Error {
    Error::not_found("Push rule not found")
}

/// One of the user's rules, in the shape the API shows any rule.
fn find_rule(s: &Services, user: &UserId, kind: RuleKind, id: &str) -> Result<PushRule> {
    use ruma::push::AnyPushRuleRef as R;
    let rules = ruleset(s, user)?;
    Ok(
        match rules.get(known(kind)?, id).ok_or_else(rule_not_found)? {
            R::Override(r) | R::Underride(r) => r.clone().into(),
            R::Content(r) => r.clone().into(),
            R::Room(r) => r.clone().into(),
            R::Sender(r) => r.clone().into(),
            _ => return Err(rule_not_found()),
        },
    )
}

async fn get_all(
    s: Arc<Services>,
    req: Ruma<get_pushrules_all::v3::Request>,
) -> Result<get_pushrules_all::v3::Response> {
    Ok(get_pushrules_all::v3::Response::new(ruleset(
        &s,
        &req.caller.user_id,
    )?))
}

async fn get_scope(
    s: Arc<Services>,
    req: Ruma<get_pushrules_global_scope::v3::Request>,
) -> Result<get_pushrules_global_scope::v3::Response> {
    Ok(get_pushrules_global_scope::v3::Response::new(ruleset(
        &s,
        &req.caller.user_id,
    )?))
}

async fn get_rule(
    s: Arc<Services>,
    req: Ruma<get_pushrule::v3::Request>,
) -> Result<get_pushrule::v3::Response> {
    let body = req.body;
    let rule = find_rule(&s, &req.caller.user_id, body.kind, &body.rule_id)?;
    Ok(get_pushrule::v3::Response::new(rule))
}

async fn put_rule(
    s: Arc<Services>,
    req: Ruma<set_pushrule::v3::Request>,
) -> Result<set_pushrule::v3::Response> {
    let user = req.caller.user_id;
    let body = req.body;
    let mut rules = ruleset(&s, &user)?;
    rules
        .insert(body.rule, body.after.as_deref(), body.before.as_deref())
        .map_err(|e| match e {
            ruma::push::InsertPushRuleError::UnknownRuleId => Error::not_found(e.to_string()),
            _ => Error::invalid_param(e.to_string()),
        })?;
    save(&s, &user, rules).await?;
    Ok(set_pushrule::v3::Response::new())
}

async fn delete_rule(
    s: Arc<Services>,
    req: Ruma<delete_pushrule::v3::Request>,
) -> Result<delete_pushrule::v3::Response> {
    let user = req.caller.user_id;
    let body = req.body;
    let mut rules = ruleset(&s, &user)?;
    rules
        .remove(known(body.kind)?, &body.rule_id)
        .map_err(|e| match e {
            ruma::push::RemovePushRuleError::NotFound => rule_not_found(),
            _ => Error::invalid_param(e.to_string()),
        })?;
    save(&s, &user, rules).await?;
    Ok(delete_pushrule::v3::Response::new())
}

async fn get_actions(
    s: Arc<Services>,
    req: Ruma<get_pushrule_actions::v3::Request>,
) -> Result<get_pushrule_actions::v3::Response> {
    let body = req.body;
    let rule = find_rule(&s, &req.caller.user_id, body.kind, &body.rule_id)?;
    Ok(get_pushrule_actions::v3::Response::new(rule.actions))
}

async fn get_enabled(
    s: Arc<Services>,
    req: Ruma<get_pushrule_enabled::v3::Request>,
) -> Result<get_pushrule_enabled::v3::Response> {
    let body = req.body;
    let rule = find_rule(&s, &req.caller.user_id, body.kind, &body.rule_id)?;
    Ok(get_pushrule_enabled::v3::Response::new(rule.enabled))
}

/// Changes one attribute of a rule and saves the set.
async fn change_rule(
    s: &Services,
    user: &UserId,
    kind: RuleKind,
    change: impl FnOnce(&mut Ruleset, RuleKind) -> bool,
) -> Result<()> {
    let kind = known(kind)?;
    let mut rules = ruleset(s, user)?;
    if !change(&mut rules, kind) {
        return Err(rule_not_found());
    }
    save(s, user, rules).await
}

async fn set_actions(
    s: Arc<Services>,
    req: Ruma<set_pushrule_actions::v3::Request>,
) -> Result<set_pushrule_actions::v3::Response> {
    let body = req.body;
    change_rule(&s, &req.caller.user_id, body.kind, |rules, kind| {
        rules.set_actions(kind, &body.rule_id, body.actions).is_ok()
    })
    .await?;
    Ok(set_pushrule_actions::v3::Response::new())
}

async fn set_enabled(
    s: Arc<Services>,
    req: Ruma<set_pushrule_enabled::v3::Request>,
) -> Result<set_pushrule_enabled::v3::Response> {
    let body = req.body;
    change_rule(&s, &req.caller.user_id, body.kind, |rules, kind| {
        rules.set_enabled(kind, &body.rule_id, body.enabled).is_ok()
    })
    .await?;
    Ok(set_pushrule_enabled::v3::Response::new())
}
