//! A localpart never becomes a path: `alice/`, `./alice`, `eve/../alice`,
//! `..` and `../../x` each get a home of their own, inside the homes
//! directory, and Alice's files stay hers.

use std::path::Path;

use ruma::UserId;

use crate::common::{start, Raw};

fn user(id: &str) -> ruma::OwnedUserId {
    UserId::parse(id).expect("user id")
}

#[tokio::test]
async fn localparts_that_look_like_paths_never_reach_another_home() {
    let server = start().await;
    let anon = Raw::new(&server);
    let ai = &server.services.ai;
    let (_alice, alice_id) = anon.register("alice").await;
    let alice_home = ai.home(&user(&alice_id)).await.expect("alice's home");
    alice_home
        .write("memory.md", "alice's secret\n", "Remember a secret")
        .expect("write memory");
    let soul = alice_home.read("system/soul.md").expect("soul");

    let homes_root = ai.homes_dir().root().to_owned();
    let attackers = [
        "alice/",
        "./alice",
        "eve/../alice",
        "..",
        "../../x",
        "a.b",
        "alice=2f",
    ];
    let mut roots = vec![alice_home.root().to_owned()];
    for name in attackers {
        let (_raw, id) = anon.register(name).await;
        let home = ai.home(&user(&id)).await.expect("attacker's home");
        let root = home.root().to_owned();
        assert_eq!(
            root.parent(),
            Some(homes_root.as_path()),
            "{name}: {root:?}"
        );
        assert!(!roots.contains(&root), "{name} shares a home: {root:?}");
        assert!(
            home.read("memory.md")
                .map_or(true, |m| !m.contains("secret")),
            "{name} reads Alice's memory"
        );
        roots.push(root);
    }
    assert_eq!(alice_home.read("memory.md").unwrap(), "alice's secret\n");
    assert_eq!(
        alice_home.read("system/soul.md").unwrap(),
        soul,
        "Alice's soul was overwritten"
    );
    // Nothing but homes under the homes directory, and no repository above it.
    let mut entries = 0;
    for entry in std::fs::read_dir(&homes_root).unwrap() {
        let path = entry.unwrap().path();
        assert!(path.join(".git").is_dir(), "not a home: {path:?}");
        entries += 1;
    }
    assert_eq!(entries, roots.len());
    let data_dir = server.config.data_dir.canonicalize().unwrap();
    assert!(
        !data_dir.join(".git").exists(),
        "a repository in the data directory"
    );
    assert!(!data_dir.parent().unwrap().join("x").join(".git").exists());
}

#[tokio::test]
async fn an_account_whose_home_cannot_be_made_is_not_created() {
    let server = start().await;
    let anon = Raw::new(&server);
    let homes_root = server.services.ai.homes_dir().root().to_owned();
    // A file where Carol's home directory must go makes creating it fail.
    let blocker = homes_root.join("carol");
    std::fs::write(&blocker, "in the way").unwrap();
    let (status, body) = anon
        .json(
            "POST",
            "/_matrix/client/v3/register",
            serde_json::json!({ "username": "carol", "password": "secret-pw", "auth": { "type": "m.login.dummy" } }),
        )
        .await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["errcode"], "M_UNKNOWN");
    let carol = user(&format!("@carol:{}", server.services.server_name));
    let carol_ai = user(&format!("@carol_ai:{}", server.services.server_name));
    assert!(
        !server.services.accounts.exists(&carol).unwrap(),
        "half-created account"
    );
    assert!(
        !server.services.accounts.exists(&carol_ai).unwrap(),
        "half-created AI user"
    );
    std::fs::remove_file(&blocker).unwrap();
    let (_raw, id) = anon.register("carol").await;
    assert_eq!(id, carol.as_str());
    assert!(server.services.accounts.exists(&carol_ai).unwrap());
    assert!(Path::new(&homes_root.join("carol")).join(".git").is_dir());
}
