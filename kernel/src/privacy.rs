//! `system/privacy.json`: who counts as what (the call-center model), what
//! each group may be told and which tools a run for them gets. The owner is
//! never in a group: owner runs get everything.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InvitePolicy {
    /// Join any room anyone invites it to.
    #[default]
    Anyone,
    /// Only invitations from people in a group other than `public`.
    Groups,
    /// Only the owner's invitations.
    Owner,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Group {
    /// User ids, or `*:server` for everyone on a server.
    pub members: Vec<String>,
    /// Home files read into the run's context.
    pub context: Vec<String>,
    /// Tool names the run may use.
    pub tools: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PrivacyPolicy {
    pub accept_invites_from: InvitePolicy,
    pub groups: BTreeMap<String, Group>,
}

/// Who a run is for, and therefore what it may see and do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    Owner,
    Guest {
        group: String,
        context: Vec<String>,
        tools: Vec<String>,
    },
}

impl Audience {
    pub fn label(&self) -> &str {
        match self {
            Audience::Owner => "owner",
            Audience::Guest { group, .. } => group,
        }
    }

    pub fn may_use(&self, tool: &str) -> bool {
        match self {
            Audience::Owner => true,
            Audience::Guest { tools, .. } => tools.iter().any(|t| t == tool),
        }
    }
}

fn matches(pattern: &str, user: &str) -> bool {
    match pattern.strip_prefix('*') {
        Some(server_part) => server_part.starts_with(':') && user.ends_with(server_part),
        None => pattern == user,
    }
}

impl PrivacyPolicy {
    /// Parses the file; a missing or broken file means the strictest policy
    /// (public context only, no tools), never a wider one.
    pub fn parse(text: Option<&str>) -> Self {
        let parsed = text.and_then(|t| match serde_json::from_str::<Self>(t) {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::warn!(error = %e, "privacy.json is invalid; using the strict default");
                None
            }
        });
        parsed.unwrap_or_else(|| Self {
            accept_invites_from: InvitePolicy::Owner,
            groups: BTreeMap::new(),
        })
    }

    /// The named group (other than `public`) that lists `user`.
    fn group_of(&self, user: &str) -> Option<(&String, &Group)> {
        self.groups
            .iter()
            .filter(|(name, _)| name.as_str() != "public")
            .find(|(_, g)| g.members.iter().any(|m| matches(m, user)))
    }

    pub fn audience_for(&self, owner: &str, sender: &str) -> Audience {
        if sender == owner {
            return Audience::Owner;
        }
        let (name, group) = match self.group_of(sender) {
            Some((name, group)) => (name.clone(), group.clone()),
            None => (
                "public".to_owned(),
                self.groups.get("public").cloned().unwrap_or_else(|| Group {
                    context: vec!["system/profile.md".into(), "system/ai-profile.md".into()],
                    ..Group::default()
                }),
            ),
        };
        Audience::Guest {
            group: name,
            context: group.context,
            tools: group.tools,
        }
    }

    pub fn accepts_invite(&self, owner: &str, inviter: &str) -> bool {
        inviter == owner
            || match self.accept_invites_from {
                InvitePolicy::Anyone => true,
                InvitePolicy::Groups => self.group_of(inviter).is_some(),
                InvitePolicy::Owner => false,
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"{
        "accept_invites_from": "groups",
        "groups": {
            "public": { "context": ["system/profile.md"], "tools": [] },
            "family": { "members": ["@mum:home.org"], "tools": ["set_reminder"] },
            "work": { "members": ["*:work.com"], "tools": ["list_apps"] }
        }
    }"#;

    #[test]
    fn owner_gets_everything_and_others_their_group() {
        let p = PrivacyPolicy::parse(Some(POLICY));
        assert_eq!(p.audience_for("@a:x", "@a:x"), Audience::Owner);
        let mum = p.audience_for("@a:x", "@mum:home.org");
        assert_eq!(mum.label(), "family");
        assert!(mum.may_use("set_reminder") && !mum.may_use("read_file"));
        assert_eq!(p.audience_for("@a:x", "@bob:work.com").label(), "work");
        let stranger = p.audience_for("@a:x", "@eve:evil.com");
        assert_eq!(stranger.label(), "public");
        assert!(!stranger.may_use("read_file"));
        assert!(!p.accepts_invite("@a:x", "@eve:evil.com"));
        assert!(p.accepts_invite("@a:x", "@mum:home.org"));
        assert!(!matches("*work.com", "@bob:notwork.com"));
    }

    #[test]
    fn broken_policy_is_strict() {
        let p = PrivacyPolicy::parse(Some("{not json"));
        let guest = p.audience_for("@a:x", "@b:x");
        assert_eq!(guest.label(), "public");
        assert!(!guest.may_use("list_apps"));
        assert!(!p.accepts_invite("@a:x", "@b:x"));
        assert!(p.accepts_invite("@a:x", "@a:x"));
    }
}
