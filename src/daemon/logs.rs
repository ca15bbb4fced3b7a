//! Logging: stderr (journald under systemd) with a level filter that can be changed while the
//! daemon runs, and the last lines kept in memory for the maintenance shell's `log tail`.
//!
//! The media thread never logs on its hot path, so the small lock around the kept lines is
//! only ever taken by control-plane threads.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock};

use tokio::sync::broadcast;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::Registry;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Layer};

/// How many log lines `log tail` can look back on.
const KEPT_LINES: usize = 2000;

/// One log line as the shell shows it.
#[derive(Clone, Debug)]
pub struct LogLine {
    /// UTC, `HH:MM:SS.mmm`.
    pub time: String,
    pub level: Level,
    pub target: String,
    pub message: String,
}

impl LogLine {
    /// The line as `log tail` prints it.
    pub fn render(&self) -> String {
        format!("{} {:<5} {}", self.time, self.level, self.message)
    }
}

/// The running daemon's log: its filter and its recent lines.
pub struct Logs {
    filter: reload::Handle<EnvFilter, Registry>,
    current: Mutex<String>,
    kept: Mutex<VecDeque<LogLine>>,
    live: broadcast::Sender<LogLine>,
}

static LOGS: OnceLock<Logs> = OnceLock::new();

/// The daemon's log, once [`init`] has run in this process.
pub fn get() -> Option<&'static Logs> {
    LOGS.get()
}

/// Why a log filter was refused.
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    #[error("invalid log filter {filter:?}: {reason} (use error, warn, info, debug or trace, optionally per module: switchboard::pri=debug,info)")]
    Invalid { filter: String, reason: String },
    #[error("logging is not set up in this process")]
    NotRunning,
}

/// Parses a filter the way the configuration and the shell spell it.
pub fn parse_filter(filter: &str) -> Result<EnvFilter, FilterError> {
    let invalid = |reason: String| FilterError::Invalid { filter: filter.to_string(), reason };
    if filter.trim().is_empty() {
        return Err(invalid("it is empty".into()));
    }
    // EnvFilter takes a bare word for a module name, so a misspelt level would silently log
    // nothing: every directive must be a level, or MODULE=LEVEL.
    const LEVELS: [&str; 6] = ["error", "warn", "info", "debug", "trace", "off"];
    for directive in filter.split(',').map(str::trim) {
        let (module, level) = match directive.split_once('=') {
            Some((module, level)) => (Some(module.trim()), level.trim()),
            None => (None, directive),
        };
        if !LEVELS.contains(&level.to_ascii_lowercase().as_str()) {
            return Err(invalid(format!("`{level}` is not a level")));
        }
        if module.is_some_and(|m| {
            m.is_empty() || !m.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        }) {
            return Err(invalid(format!("`{directive}` does not name a module")));
        }
    }
    let tidy: Vec<&str> = filter.split(',').map(str::trim).collect();
    EnvFilter::builder().parse(tidy.join(",")).map_err(|e| invalid(e.to_string()))
}

/// Sets up logging to stderr with `level` (`RUST_LOG` overrides it). Later calls do nothing.
pub fn init(level: &str) {
    let initial =
        std::env::var("RUST_LOG").ok().filter(|f| parse_filter(f).is_ok()).unwrap_or_else(|| level.into());
    let filter = parse_filter(&initial).unwrap_or_else(|_| EnvFilter::new("info"));
    let (filter, handle) = reload::Layer::new(filter);
    use std::io::IsTerminal;
    // Colours only for a person at a terminal, not in journald or log files.
    let stderr = tracing_subscriber::fmt::layer()
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let (live, _) = broadcast::channel(256);
    let logs = Logs {
        filter: handle,
        current: Mutex::new(initial),
        kept: Mutex::new(VecDeque::with_capacity(KEPT_LINES)),
        live,
    };
    if LOGS.set(logs).is_err() {
        return;
    }
    let _ = tracing_subscriber::registry().with(filter).with(stderr).with(Keeper).try_init();
}

impl Logs {
    /// The filter in force.
    pub fn level(&self) -> String {
        self.current.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// Changes the filter from now on.
    pub fn set_level(&self, filter: &str) -> Result<(), FilterError> {
        let parsed = parse_filter(filter)?;
        self.filter.reload(parsed).map_err(|_| FilterError::NotRunning)?;
        if let Ok(mut current) = self.current.lock() {
            *current = filter.to_string();
        }
        Ok(())
    }

    /// The last `n` kept lines at `level` or more severe, oldest first.
    pub fn tail(&self, n: usize, level: Option<Level>) -> Vec<LogLine> {
        let Ok(kept) = self.kept.lock() else { return Vec::new() };
        let mut lines: Vec<LogLine> =
            kept.iter().rev().filter(|l| level.is_none_or(|max| l.level <= max)).take(n).cloned().collect();
        lines.reverse();
        lines
    }

    /// Lines as they are logged from now on.
    pub fn follow(&self) -> broadcast::Receiver<LogLine> {
        self.live.subscribe()
    }

    fn keep(&self, line: LogLine) {
        if let Ok(mut kept) = self.kept.lock() {
            if kept.len() == KEPT_LINES {
                kept.pop_front();
            }
            kept.push_back(line.clone());
        }
        // Nobody following is not an error.
        let _ = self.live.send(line);
    }
}

/// The layer that keeps lines for the shell.
struct Keeper;

impl<S: Subscriber> Layer<S> for Keeper {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let Some(logs) = LOGS.get() else { return };
        let mut message = Message(String::new());
        event.record(&mut message);
        let time = time::OffsetDateTime::now_utc()
            .format(time::macros::format_description!("[hour]:[minute]:[second].[subsecond digits:3]"))
            .unwrap_or_default();
        let meta = event.metadata();
        logs.keep(LogLine {
            time,
            level: *meta.level(),
            target: meta.target().to_string(),
            message: message.0,
        });
    }
}

/// Collects an event's message and fields as `message key=value ...`.
struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        } else {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_levels_or_module_levels() {
        for ok in ["info", "DEBUG", "switchboard::pri=trace,info", "warn, switchboard=debug", "off"] {
            assert!(parse_filter(ok).is_ok(), "{ok}");
        }
        for bad in ["", "loud", "pri=loud", "=debug", "info,", "a b=info"] {
            let e = parse_filter(bad).unwrap_err().to_string();
            assert!(e.contains("invalid log filter"), "{bad}: {e}");
        }
    }
}
