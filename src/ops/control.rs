//! The running server's control socket, `<data dir>/control.sock`: how
//! `matrixos backup` asks a live server for a RocksDB checkpoint (only the
//! process holding the database can make one). The socket is a file in the
//! data directory, readable and writable by its owner only, so only whoever
//! may read the data directory anyway may use it.
//!
//! The protocol is one request line and one answer line:
//! `checkpoint <absolute path>` → `ok` or `error <reason>`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use crate::services::Services;

pub(super) const SOCKET: &str = "control.sock";
/// The longest request line read.
const MAX_LINE: u64 = 4096;
/// How long a client has to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET)
}

/// Starts answering on the control socket for as long as the services live.
/// A socket left by a server that died is replaced: this process holds the
/// database's lock, so no other server is running on the directory.
pub fn start(services: &Arc<Services>) {
    let path = socket_path(&services.config.data_dir);
    let _ = std::fs::remove_file(&path);
    let listener = match UnixListener::bind(&path) {
        Ok(listener) => listener,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "no control socket: `matrixos backup` will not reach this server");
            return;
        }
    };
    if let Err(e) = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)) {
        tracing::warn!(error = %e, "cannot restrict the control socket; closing it");
        let _ = std::fs::remove_file(&path);
        return;
    }
    let services = Arc::downgrade(services);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let Some(services) = services.upgrade() else {
                return;
            };
            tokio::spawn(answer(services, stream));
        }
    });
}

async fn answer(services: Arc<Services>, stream: UnixStream) {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(tokio::io::AsyncReadExt::take(read, MAX_LINE));
    let reply = match tokio::time::timeout(READ_TIMEOUT, reader.read_line(&mut line)).await {
        Ok(Ok(_)) => run(&services, line.trim_end_matches('\n')).await,
        _ => Err("no request".to_owned()),
    };
    let reply = match reply {
        Ok(()) => "ok\n".to_owned(),
        Err(reason) => format!("error {}\n", reason.replace('\n', " ")),
    };
    let _ = write.write_all(reply.as_bytes()).await;
}

async fn run(services: &Arc<Services>, request: &str) -> Result<(), String> {
    let Some(dest) = request.strip_prefix("checkpoint ") else {
        return Err(format!("unknown request {request:?}"));
    };
    let dest = PathBuf::from(dest);
    if !dest.is_absolute() {
        return Err("the checkpoint path must be absolute".to_owned());
    }
    let services = services.clone();
    let made = tokio::task::spawn_blocking(move || services.store.db.checkpoint(&dest))
        .await
        .map_err(|e| e.to_string())?;
    match made {
        Ok(()) => {
            tracing::info!("database checkpoint made for a backup");
            Ok(())
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Asks the server running on `data_dir` for a checkpoint in `dest`;
/// `Ok(false)` when no server answers there.
pub fn request_checkpoint(data_dir: &Path, dest: &Path) -> Result<bool, String> {
    use std::io::{BufRead, Write};
    let mut stream = match std::os::unix::net::UnixStream::connect(socket_path(data_dir)) {
        Ok(stream) => stream,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(false)
        }
        Err(e) => return Err(format!("cannot reach the server's control socket: {e}")),
    };
    let request = format!("checkpoint {}\n", dest.display());
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("control socket: {e}"))?;
    let mut answer = String::new();
    std::io::BufReader::new(stream)
        .read_line(&mut answer)
        .map_err(|e| format!("control socket: {e}"))?;
    match answer.trim_end() {
        "ok" => Ok(true),
        other => Err(format!(
            "the server could not make a checkpoint: {}",
            other.strip_prefix("error ").unwrap_or(other)
        )),
    }
}
