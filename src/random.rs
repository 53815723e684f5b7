//! Random identifiers: tokens, device ids, media ids, event nonces.

use rand::distributions::Alphanumeric;
use rand::Rng;

/// `len` random ASCII letters and digits.
pub fn random_string(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}
