//! What an app's page and its data bridge carry instead of the owner's
//! access token: a capability good for that one app's page and data, an
//! HMAC of the owner and the slug under the server's signing key. The page
//! runs scripts its owner did not write line by line (the AI did), so it
//! must never hold a token that opens the whole account.

use hmac::{Hmac, Mac};
use ruma::OwnedUserId;
use sha2::Sha256;

use crate::error::{Error, Result};
use crate::http::extract::MaybeAuth;
use crate::services::Services;

/// The header the bridge sends the capability in.
pub const APP_TOKEN_HEADER: &str = "x-matrixos-app-token";
/// The query parameter a page URL carries it in (a navigation has no
/// headers).
pub const APP_TOKEN_PARAM: &str = "app_token";

/// The capability for `user`'s app `slug`.
pub fn app_token(s: &Services, user: &str, slug: &str) -> Result<String> {
    let secret = s.signing_key.to_pkcs8();
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&secret)
        .map_err(|e| Error::internal(format!("app token key: {e}")))?;
    mac.update(b"matrixos app data\0");
    mac.update(user.as_bytes());
    mac.update(b"\0");
    mac.update(slug.as_bytes());
    Ok(hex::encode(mac.finalize().into_bytes()))
}

/// Whether `given` is the capability for this app, compared in constant
/// time.
pub fn is_app_token(s: &Services, user: &str, slug: &str, given: &str) -> Result<bool> {
    let expected = app_token(s, user, slug)?;
    Ok(given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0, |acc, (a, b)| acc | (a ^ b))
            == 0)
}

/// Only valid localparts and slugs reach the file system.
pub fn check_names(s: &Services, user: &str, slug: &str) -> Result<()> {
    let user_ok = s.accounts.user_id(user).is_ok() && !user.contains(['/', '\'', '\\']);
    if !user_ok || !matrixos_kernel::tools::is_valid_slug(slug) {
        return Err(Error::not_found("No such app"));
    }
    Ok(())
}

/// The owner of `/apps/<user>/…`.
pub fn owner_of(s: &Services, user: &str) -> Result<OwnedUserId> {
    s.accounts
        .user_id(user)
        .map_err(|_| Error::not_found("No such app"))
}

/// The owner, if the caller's access token is theirs: apps are shown to
/// their owner only.
pub fn require_owner(s: &Services, caller: &MaybeAuth, user: &str) -> Result<OwnedUserId> {
    let caller = caller.0.as_ref().ok_or_else(Error::missing_token)?;
    let owner = owner_of(s, user)?;
    if caller.user_id != owner {
        return Err(Error::forbidden("Apps are only shown to their owner"));
    }
    Ok(owner)
}
