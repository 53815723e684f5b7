//! Password hashing (Argon2id) on a small dedicated pool of threads.
//!
//! Each hash takes about 19 MiB for a moment. Run on tokio's blocking pool,
//! every new thread would get its own allocator arena and keep that memory:
//! a burst of logins would pin hundreds of MiB. Two long-lived threads cap
//! it, and also cap the CPU a burst of logins can take from everything else.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use tokio::sync::oneshot;

use crate::error::{Error, Result};

enum Job {
    Hash(String, oneshot::Sender<Result<String>>),
    Verify(String, String, oneshot::Sender<bool>),
}

pub struct Passwords {
    jobs: Sender<Job>,
}

const THREADS: usize = 2;

fn hash(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::internal(format!("hashing password: {e}")))
}

fn verify(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

fn work(jobs: Arc<Mutex<Receiver<Job>>>) {
    loop {
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        match job {
            Ok(Job::Hash(password, reply)) => {
                let _ = reply.send(hash(&password));
            }
            Ok(Job::Verify(password, stored, reply)) => {
                let _ = reply.send(verify(&password, &stored));
            }
            Err(_) => return,
        }
        crate::alloc::release_freed_memory();
    }
}

impl Default for Passwords {
    fn default() -> Self {
        let (jobs, rx) = channel();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..THREADS {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("password-{i}"))
                .spawn(move || work(rx))
                .unwrap_or_else(|e| panic!("cannot start password thread: {e}"));
        }
        Self { jobs }
    }
}

impl Passwords {
    pub async fn hash(&self, password: &str) -> Result<String> {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send(Job::Hash(password.to_owned(), tx))
            .map_err(|_| Error::internal("password threads stopped"))?;
        rx.await
            .map_err(|_| Error::internal("password thread failed"))?
    }

    pub async fn verify(&self, password: &str, hash: &str) -> Result<bool> {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send(Job::Verify(password.to_owned(), hash.to_owned(), tx))
            .map_err(|_| Error::internal("password threads stopped"))?;
        rx.await
            .map_err(|_| Error::internal("password thread failed"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_wrong_passwords_do_not() {
        let passwords = Passwords::default();
        let stored = passwords.hash("correct horse").await.unwrap();
        assert!(stored.starts_with("$argon2id$"));
        assert!(passwords.verify("correct horse", &stored).await.unwrap());
        assert!(!passwords.verify("wrong", &stored).await.unwrap());
        assert!(!passwords
            .verify("correct horse", "not a hash")
            .await
            .unwrap());
    }
}
