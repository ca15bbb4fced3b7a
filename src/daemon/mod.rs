//! The daemon: wires the card, the media engine, the call model, the store, the recorder and
//! the control socket together, and runs the control plane on tokio.
//!
//! One task, the *core*, owns the engine handle and the call manager. Every few
//! milliseconds it drains the engine's events into the call manager and carries out the
//! actions that come back. Connections on the control socket are separate tasks that send
//! requests to the core and receive notices through a broadcast channel. Store writes go to
//! the store thread in order and are awaited off the core task; the core waits for the store
//! only to allocate a call id or a VOCID (one small transaction when a call starts or is
//! answered). Agent connections are tasks too, feeding the sans-IO agent hub in the core.

mod control_server;
mod core;
pub mod dchannel;
pub mod logs;
pub(crate) mod shell;

pub use self::core::{load_flows, prompt_set_dir};

use std::future::Future;
use std::path::{Path, PathBuf};

use crate::config::Config;

pub use self::core::shutdown_signal;

/// Errors that stop the daemon from starting or running.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot create the data directory {path}: {source}")]
    DataDir { path: PathBuf, source: std::io::Error },
    #[error("cannot open the database: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("another daemon is already running with the control socket {0}")]
    AlreadyRunning(PathBuf),
    #[error("cannot listen on the control socket {path}: {source}")]
    Socket { path: PathBuf, source: std::io::Error },
    #[error("cannot start a thread: {0}")]
    Thread(#[from] std::io::Error),
    #[error(transparent)]
    Engine(#[from] crate::media::SpawnError),
    #[error("cannot listen for agents on {addr}: {source}")]
    AgentPort { addr: std::net::SocketAddr, source: std::io::Error },
    #[error("cannot open the card: {0}")]
    Card(String),
    #[error("the IVR flows cannot be used:\n{0}")]
    Flows(String),
}

/// Sets up logging to stderr (journald picks it up under systemd). `RUST_LOG` overrides the
/// configured level; the shell's `log level` changes it while the daemon runs.
pub fn init_logging(level: &str) {
    logs::init(level);
}

/// Runs the daemon until `shutdown` completes.
pub async fn run(
    config: Config,
    config_path: Option<PathBuf>,
    data_dir: PathBuf,
    shutdown: impl Future<Output = ()>,
) -> Result<(), DaemonError> {
    std::fs::create_dir_all(&data_dir)
        .map_err(|source| DaemonError::DataDir { path: data_dir.clone(), source })?;
    let running = core::Running::start(config, config_path, &data_dir).await?;
    running.run(shutdown).await
}

/// The data directory's control socket path, for clients.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    crate::paths::socket(data_dir)
}
