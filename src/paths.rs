//! Where Switchboard keeps its files.
//!
//! The data directory holds the database (`switchboard.db`), the recordings
//! (`recordings/YYYY/MM/DD/VOCID.wav`) and the control socket (`control.sock`). It is, in
//! order: the `--data-dir` option, the `SWITCHBOARD_DATA_DIR` environment variable,
//! `/var/lib/switchboard` for root (the appliance's systemd service), and
//! `$XDG_DATA_HOME/switchboard` (usually `~/.local/share/switchboard`) for everyone else.

use std::path::{Path, PathBuf};

/// The database file inside the data directory.
pub const DATABASE: &str = "switchboard.db";
/// The control socket inside the data directory.
pub const CONTROL_SOCKET: &str = "control.sock";

/// Resolves the data directory from the option, the environment and the defaults.
pub fn data_dir(option: Option<PathBuf>) -> PathBuf {
    if let Some(dir) = option {
        return dir;
    }
    if let Some(dir) = std::env::var_os("SWITCHBOARD_DATA_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if nix::unistd::Uid::effective().is_root() {
        return PathBuf::from("/var/lib/switchboard");
    }
    let base = std::env::var_os("XDG_DATA_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("switchboard")
}

pub fn socket(data_dir: &Path) -> PathBuf {
    data_dir.join(CONTROL_SOCKET)
}

pub fn database(data_dir: &Path) -> PathBuf {
    data_dir.join(DATABASE)
}
