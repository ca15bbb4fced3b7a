//! The only module that touches SQLite.
//!
//! One dedicated thread owns the `rusqlite::Connection`; everything else talks to it through
//! a [`StoreHandle`], which sends each request as a closure over a channel and gets the
//! answer back on a `tokio::sync::oneshot`. Every request returns a [`Pending`], which is
//! both a `Future` (for the tokio control plane: `store.cdr_get(id).await`) and blockable
//! (for the CLI and tests: `store.cdr_get(id).wait()`), so async code never blocks a runtime
//! worker on disk I/O and synchronous code needs no runtime.
//!
//! The request is queued as soon as the method is called, not when the `Pending` is first
//! polled: dropping a `Pending` does not cancel the write. A write whose `Pending` resolves
//! to `Ok` has been committed with `synchronous=FULL` in WAL mode and survives a crash.
//!
//! Times are stored as RFC 3339 UTC text with milliseconds (`2026-11-24T08:04:12.345Z`),
//! which sorts chronologically as text and which SQLite's date functions understand.
//!
//! Agent accounts and the audit trail live here too (schema version 2). Every method that
//! changes an account takes the [`AuditEntry`] that records it and writes both in one
//! transaction, so no account change can reach the database without its audit row.
//!
//! Schema version 3 adds what the IVR flows and the reports need: who handled a call (agent,
//! queue, flow, wait) on its CDR, satisfaction survey answers, the caller lists the caller
//! filter consults, voicemail, and keys pressed in flows. The reports
//! ([`StoreHandle::report_calls`], [`StoreHandle::report_agents`],
//! [`StoreHandle::report_satisfaction`]) are computed here, in SQL, so that the command line
//! and any later web page agree on every number; `crate::reports` only lays them out.

mod ops;
mod schema;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::mpsc;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread::JoinHandle;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ValueRef};
use rusqlite::Connection;
use time::OffsetDateTime;
use tokio::sync::oneshot;

pub(crate) use ops::is_data_relative;
pub use schema::SCHEMA_VERSION;

/// Errors from the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open database {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("database {path} has schema version {found}, but this build only knows versions up to {supported}; it was written by a newer Switchboard and is left untouched")]
    NewerSchema { path: String, found: i64, supported: u32 },
    #[error("database {path} cannot use write-ahead logging (journal mode is {mode:?})")]
    NotWal { path: String, mode: String },
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("invalid value {value:?} in {column}")]
    InvalidData { column: &'static str, value: String },
    #[error("no CDR with call id {0}")]
    NoSuchCdr(String),
    #[error("the CDR of call {0} has already ended")]
    CdrAlreadyEnded(String),
    #[error("no recording with vocid {0}")]
    NoSuchRecording(String),
    #[error("recording {0} has already ended")]
    RecordingAlreadyEnded(String),
    #[error("a call cannot end with disposition in_progress")]
    EndInProgress,
    #[error("agent {0} already exists")]
    AgentExists(String),
    #[error("no agent with id {0}")]
    NoSuchAgent(String),
    #[error("a survey score must be 1 to 9 (one key), not {0}")]
    InvalidSurveyScore(u8),
    #[error("a survey grade must not be empty")]
    EmptySurveyGrade,
    #[error("{0:?} is not a telephone number: use 1 to 32 of the digits 0-9, *, # and +")]
    InvalidNumber(String),
    #[error("the report period ends ({to}) before it starts ({from})")]
    InvalidPeriod { from: time::Date, to: time::Date },
    #[error("a report covers at most {max} days, not {days}")]
    PeriodTooLong { days: i64, max: i64 },
    #[error("path {0:?} is not valid UTF-8")]
    NonUtf8Path(PathBuf),
    #[error("cannot start the store thread: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("the store thread has stopped")]
    Closed,
}

/// Which way a call goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From a trunk to a seat.
    In,
    /// From a seat to a trunk.
    Out,
    /// Between two seats.
    Internal,
}

/// How a call ended (or that it has not yet).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Disposition {
    InProgress,
    Answered,
    NoAnswer,
    Busy,
    Failed,
    /// The daemon stopped (crashed or was killed) while the call was up.
    Interrupted,
}

/// Where a recording stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecordingState {
    /// The recorder is (or was, before a crash) writing it.
    Recording,
    /// Finished normally.
    Complete,
    /// Left open by a crash; its header was repaired at the next start.
    Repaired,
    /// Left open by a crash and its file was gone at the next start.
    Missing,
    /// The file exists but could not be written or repaired.
    Damaged,
}

/// What an agent account may do. Each role includes the rights of the ones before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Takes and makes calls on a seat.
    Agent,
    /// Also monitors, whispers, barges in and controls other seats.
    Supervisor,
    /// Also manages the appliance.
    Admin,
}

/// How an audited action turned out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuditResult {
    /// It was carried out.
    Ok,
    /// The actor was not allowed to do it.
    Denied,
    /// It was allowed but could not be carried out.
    Failed,
}

/// Maps the enums to and from the text stored in the database.
macro_rules! text_enum {
    ($ty:ident, $column:literal, $($variant:ident = $text:literal),+ $(,)?) => {
        impl $ty {
            /// The text stored in the database and shown by the CLI.
            pub const fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $text),+ }
            }

            /// Parses the stored text.
            pub fn parse(s: &str) -> Option<$ty> {
                match s { $($text => Some($ty::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromSql for $ty {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                let s = value.as_str()?;
                $ty::parse(s).ok_or_else(|| {
                    FromSqlError::Other(Box::new(StoreError::InvalidData {
                        column: $column,
                        value: s.to_owned(),
                    }))
                })
            }
        }
    };
}

text_enum!(Direction, "cdr.direction", In = "in", Out = "out", Internal = "internal");
text_enum!(
    Disposition,
    "cdr.disposition",
    InProgress = "in_progress",
    Answered = "answered",
    NoAnswer = "no_answer",
    Busy = "busy",
    Failed = "failed",
    Interrupted = "interrupted",
);
text_enum!(
    RecordingState,
    "recordings.state",
    Recording = "recording",
    Complete = "complete",
    Repaired = "repaired",
    Missing = "missing",
    Damaged = "damaged",
);

text_enum!(Role, "agents.role", Agent = "agent", Supervisor = "supervisor", Admin = "admin");

/// The lists of callers the caller filter consults when a call comes in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CallerList {
    /// Callers whose calls are refused.
    Blacklist,
    /// Callers served before the others.
    Vip,
    /// Callers known as members (customers with an account, say).
    Member,
}

impl CallerList {
    /// Every list, in the order the command line shows them.
    pub const ALL: [CallerList; 3] = [CallerList::Blacklist, CallerList::Vip, CallerList::Member];
}

text_enum!(CallerList, "caller_list.list", Blacklist = "blacklist", Vip = "vip", Member = "member");
text_enum!(AuditResult, "audit.result", Ok = "ok", Denied = "denied", Failed = "failed");

/// An agent account as stored. Times are RFC 3339 UTC text with milliseconds.
#[derive(Clone, PartialEq, Eq)]
pub struct AgentRecord {
    /// The agent's job number, e.g. "1001": 1 to 32 of `A-Z a-z 0-9 _ . -`.
    pub id: String,
    pub name: String,
    pub role: Role,
    /// An argon2id hash in PHC string format; never the password itself.
    pub password_hash: String,
    /// A disabled account keeps its history but cannot log in.
    pub disabled: bool,
    /// Set when the account is first stored; later writes keep it.
    pub created_utc: String,
    pub updated_utc: String,
}

// The hash is left out so that logging a record cannot leak it.
impl std::fmt::Debug for AgentRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentRecord")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("role", &self.role)
            .field("password_hash", &"<redacted>")
            .field("disabled", &self.disabled)
            .field("created_utc", &self.created_utc)
            .field("updated_utc", &self.updated_utc)
            .finish()
    }
}

/// One row of the audit trail: who did what to whom, and how it turned out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    /// RFC 3339 UTC text with milliseconds, as [`format_utc`] writes it.
    pub at_utc: String,
    /// Who acted: an agent id, or "cli" for the command line.
    pub actor: String,
    /// What was done, e.g. "user.add" or "control.monitor".
    pub action: String,
    /// What it was done to: an agent id, a seat, a call.
    pub target: Option<String>,
    /// Anything else worth keeping, e.g. the role given or why it failed. Never a secret.
    pub detail: Option<String>,
    pub result: AuditResult,
}

impl AuditEntry {
    /// An entry without target or detail; add them with [`AuditEntry::target`] and
    /// [`AuditEntry::detail`].
    pub fn new(at: OffsetDateTime, actor: &str, action: &str, result: AuditResult) -> AuditEntry {
        AuditEntry {
            at_utc: format_utc(at),
            actor: actor.to_owned(),
            action: action.to_owned(),
            target: None,
            detail: None,
            result,
        }
    }

    /// Sets what the action was done to.
    pub fn target(mut self, target: &str) -> AuditEntry {
        self.target = Some(target.to_owned());
        self
    }

    /// Sets the detail.
    pub fn detail(mut self, detail: &str) -> AuditEntry {
        self.detail = Some(detail.to_owned());
        self
    }
}

/// The start of a call, as [`StoreHandle::cdr_start`] records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CdrStart {
    pub call_id: String,
    pub start: OffsetDateTime,
    pub caller: String,
    pub callee: String,
    pub trunk_port: Option<u16>,
    pub seat_port: Option<u16>,
    pub direction: Direction,
}

/// A call detail record as stored. Times are RFC 3339 UTC text with milliseconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cdr {
    pub id: i64,
    pub call_id: String,
    pub start_utc: String,
    pub answer_utc: Option<String>,
    pub end_utc: Option<String>,
    pub caller: String,
    pub callee: String,
    pub trunk_port: Option<u16>,
    pub seat_port: Option<u16>,
    pub direction: Direction,
    pub disposition: Disposition,
    pub cause: Option<String>,
    pub vocid: Option<String>,
    /// From start to end; set when the call ends.
    pub duration_ms: Option<i64>,
    /// From answer to end (0 if never answered); set when the call ends.
    pub talk_ms: Option<i64>,
    /// The agent who took the call (the last one, after a transfer).
    pub agent_id: Option<String>,
    /// The ACD queue the call waited in.
    pub queue: Option<String>,
    /// From the start to the answer, or to the caller hanging up unanswered.
    pub wait_ms: Option<i64>,
    /// The IVR flow the call went through.
    pub flow: Option<String>,
}

/// A recording as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recording {
    pub vocid: String,
    pub call_id: String,
    /// Relative to the data directory.
    pub path: String,
    pub started_utc: String,
    pub ended_utc: Option<String>,
    pub samples: Option<u64>,
    pub state: RecordingState,
}

/// A recording that [`StoreHandle::recover_after_crash`] found unfinished and repaired.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepairedRecording {
    pub vocid: String,
    pub samples: u64,
}

/// What [`StoreHandle::recover_after_crash`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Call ids of the CDRs that were still in progress and are now `interrupted`.
    pub interrupted_calls: Vec<String>,
    /// Recordings whose WAV header was repaired (state `repaired`).
    pub repaired: Vec<RepairedRecording>,
    /// Vocids of recordings whose file was gone (state `missing`).
    pub missing: Vec<String>,
    /// Vocids and errors of recordings whose file could not be repaired (state `damaged`).
    pub damaged: Vec<(String, String)>,
}

impl RecoveryReport {
    /// True when there was nothing to recover.
    pub fn is_empty(&self) -> bool {
        self.interrupted_calls.is_empty()
            && self.repaired.is_empty()
            && self.missing.is_empty()
            && self.damaged.is_empty()
    }
}

/// What a caller answered to a satisfaction survey.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SurveyAnswer {
    /// A score from 1 (worst) up to the survey's scale, at most 9 since it is one key;
    /// usually 1 to 5. The reports average these and count each value.
    Score(u8),
    /// A named grade ("satisfied", say), for surveys whose keys mean words, not numbers;
    /// the reports count these by name.
    Grade(String),
}

/// One answer to a satisfaction survey, as [`StoreHandle::survey_add`] records it. The
/// agent and queue are copied from the call, so that the reports need no join and stay
/// right even if the CDR is later changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SurveyResult {
    pub call_id: String,
    pub at: OffsetDateTime,
    pub agent_id: Option<String>,
    pub queue: Option<String>,
    pub answer: SurveyAnswer,
}

/// A number on one of the caller lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListEntry {
    pub list: CallerList,
    pub number: String,
    pub note: Option<String>,
    /// When the number was first put on the list (a later note change keeps it).
    pub added_utc: String,
}

/// A voicemail message being stored by [`StoreHandle::voicemail_add`]. The audio is a
/// recording like any other, found by its vocid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewVoicemail {
    pub mailbox: String,
    pub call_id: Option<String>,
    pub caller: Option<String>,
    pub vocid: String,
    pub at: OffsetDateTime,
    pub duration_ms: Option<i64>,
}

/// A voicemail message as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Voicemail {
    pub id: i64,
    pub mailbox: String,
    pub call_id: Option<String>,
    pub caller: Option<String>,
    pub vocid: String,
    pub at_utc: String,
    pub duration_ms: Option<i64>,
    /// Whether someone has listened to it.
    pub heard: bool,
}

/// Keys a caller pressed in an IVR flow, kept as evidence (a customer confirming an order,
/// say), as [`StoreHandle::ivr_input_add`] records them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewIvrInput {
    pub call_id: String,
    pub at: OffsetDateTime,
    /// What was asked, as the flow names it ("confirm_order").
    pub name: String,
    /// The keys pressed.
    pub value: String,
    /// The recording of the moment, if one was made.
    pub vocid: Option<String>,
}

/// Keys a caller pressed in an IVR flow, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IvrInput {
    pub id: i64,
    pub call_id: String,
    pub at_utc: String,
    pub name: String,
    pub value: String,
    pub vocid: Option<String>,
}

/// What [`StoreHandle::recordings_find`] looks for. Every filter that is set must match;
/// an empty query finds the newest recordings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordingQuery {
    pub vocid: Option<String>,
    /// The agent on the recording's CDR.
    pub agent_id: Option<String>,
    /// The customer's number: the caller of an incoming or internal call, the number
    /// dialled for an outgoing one. Matched exactly.
    pub caller: Option<String>,
    /// Recordings started at or after this time.
    pub from: Option<OffsetDateTime>,
    /// Recordings started before this time.
    pub to: Option<OffsetDateTime>,
    /// At most this many, newest first.
    pub limit: u32,
}

impl Default for RecordingQuery {
    fn default() -> RecordingQuery {
        RecordingQuery { vocid: None, agent_id: None, caller: None, from: None, to: None, limit: 100 }
    }
}

/// A recording with what its call's CDR says about it; the CDR fields are `None` when the
/// recording has no CDR.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordingInfo {
    pub recording: Recording,
    pub caller: Option<String>,
    pub callee: Option<String>,
    pub direction: Option<Direction>,
    pub agent_id: Option<String>,
    pub queue: Option<String>,
}

/// What [`StoreHandle::recordings_expire`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExpireReport {
    /// WAV files deleted (files that were already gone are not counted).
    pub files_deleted: u64,
    /// Recording rows deleted.
    pub rows_deleted: u64,
    /// Vocids and errors of recordings whose file could not be deleted; their rows are
    /// kept so that the next run tries again.
    pub failed: Vec<(String, String)>,
}

/// The days a report covers, from `from` to `to` inclusive, as calendar days at
/// `utc_offset`, so that a call center reports its own days rather than UTC's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReportPeriod {
    from: time::Date,
    to: time::Date,
    utc_offset: time::UtcOffset,
}

impl ReportPeriod {
    /// The longest period a report covers: ten years. The calls report has a row for every
    /// day, and a typo in a year should not make it build millions of them.
    pub const MAX_DAYS: i64 = 3660;

    /// Fails with [`StoreError::InvalidPeriod`] if `to` is before `from`, and with
    /// [`StoreError::PeriodTooLong`] beyond [`ReportPeriod::MAX_DAYS`].
    pub fn new(
        from: time::Date,
        to: time::Date,
        utc_offset: time::UtcOffset,
    ) -> Result<ReportPeriod, StoreError> {
        if to < from {
            return Err(StoreError::InvalidPeriod { from, to });
        }
        let days = (to - from).whole_days() + 1;
        if days > ReportPeriod::MAX_DAYS {
            return Err(StoreError::PeriodTooLong { days, max: ReportPeriod::MAX_DAYS });
        }
        Ok(ReportPeriod { from, to, utc_offset })
    }

    /// The first day.
    pub fn from(&self) -> time::Date {
        self.from
    }

    /// The last day.
    pub fn to(&self) -> time::Date {
        self.to
    }

    pub fn utc_offset(&self) -> time::UtcOffset {
        self.utc_offset
    }

    /// The first instant of the period.
    pub fn start(&self) -> OffsetDateTime {
        OffsetDateTime::new_in_offset(self.from, time::Time::MIDNIGHT, self.utc_offset)
    }

    /// The first instant after the period. The last representable day has no next day, so
    /// its period ends a day later by arithmetic on the instant instead.
    pub fn end(&self) -> OffsetDateTime {
        OffsetDateTime::new_in_offset(self.to, time::Time::MIDNIGHT, self.utc_offset)
            .saturating_add(time::Duration::DAY)
    }

    /// Every day of the period, in order.
    pub fn days(&self) -> impl Iterator<Item = time::Date> {
        let to = self.to;
        std::iter::successors(Some(self.from), move |d| d.next_day().filter(|n| *n <= to))
    }
}

/// One day of the calls report: incoming calls that started that day.
#[derive(Clone, Debug, PartialEq)]
pub struct CallsDay {
    /// `YYYY-MM-DD` at the period's UTC offset.
    pub day: String,
    /// Every incoming call.
    pub offered: u64,
    /// Incoming calls a seat answered.
    pub answered: u64,
    /// Incoming calls the caller hung up on before anyone answered.
    pub abandoned: u64,
    /// Waits of answered and abandoned calls, from the start to the answer or hang-up.
    pub avg_wait_ms: Option<i64>,
    pub max_wait_ms: Option<i64>,
    /// Talk time of the answered calls.
    pub avg_talk_ms: Option<i64>,
}

impl CallsDay {
    /// Answered calls as a share of offered ones, 0 to 1; `None` on a day without calls.
    pub fn answer_rate(&self) -> Option<f64> {
        (self.offered > 0).then(|| self.answered as f64 / self.offered as f64)
    }
}

/// One agent in the agents report: the incoming calls they took in the period and the
/// survey scores they got.
#[derive(Clone, Debug, PartialEq)]
pub struct AgentReportRow {
    pub agent_id: String,
    /// The account's display name, if the account still exists.
    pub name: Option<String>,
    pub answered: u64,
    pub talk_ms_total: i64,
    pub talk_ms_avg: Option<i64>,
    /// Survey answers with a score.
    pub scored: u64,
    pub avg_score: Option<f64>,
}

/// One group (an agent or a day) of the satisfaction report.
#[derive(Clone, Debug, PartialEq)]
pub struct SatisfactionRow {
    /// The agent id (`None` for answers with no agent) or the day, `YYYY-MM-DD`.
    pub key: Option<String>,
    /// The agent's display name, if the account exists; `None` for days.
    pub name: Option<String>,
    /// Every answer, scores and grades.
    pub responses: u64,
    /// Answers with a score.
    pub scored: u64,
    pub avg_score: Option<f64>,
    /// How many answers scored 1, 2, 3, ...: [`SatisfactionReport::scale`] counts, the
    /// first for a score of 1.
    pub distribution: Vec<u64>,
    /// How many answers gave each grade, by grade name.
    pub grades: Vec<(String, u64)>,
}

/// The satisfaction report: the same answers grouped by agent and by day.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SatisfactionReport {
    /// The highest score the distributions count: 5, or more if a survey with a longer
    /// scale was answered in the period, so that no score is left out.
    pub scale: u8,
    /// By agent id; answers with no agent come last.
    pub by_agent: Vec<SatisfactionRow>,
    /// By day, only days with answers.
    pub by_day: Vec<SatisfactionRow>,
}

/// The cause recorded on calls that were up when the daemon died.
pub const CAUSE_DAEMON_RESTARTED: &str = "daemon restarted";

/// Formats a time the way the store keeps it: RFC 3339, UTC, milliseconds, `Z` suffix.
pub fn format_utc(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// A request to the store thread.
type Command = Box<dyn FnOnce(&mut Connection) + Send>;

/// The store's constructor. The store itself lives on its own thread; see [`StoreHandle`].
pub struct Store;

impl Store {
    /// Opens (creating if needed) the database at `path`, applies pending migrations and
    /// starts the store thread. Blocks until the database is ready, so call it once at
    /// start-up (from async code, inside `spawn_blocking`).
    pub fn open(path: &Path) -> Result<StoreHandle, StoreError> {
        let (ready_tx, ready_rx) = mpsc::sync_channel::<Result<(), StoreError>>(1);
        let (tx, rx) = mpsc::channel::<Command>();
        let path = path.to_owned();
        let join = std::thread::Builder::new()
            .name("store".into())
            .spawn(move || {
                let mut conn = match schema::open(&path) {
                    Ok(conn) => {
                        let _ = ready_tx.send(Ok(()));
                        conn
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                // Runs until every handle is gone, then closes the connection, which
                // checkpoints the WAL.
                for command in rx {
                    command(&mut conn);
                }
            })
            .map_err(StoreError::Spawn)?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = join.join();
                return Err(e);
            }
            Err(_) => {
                let _ = join.join();
                return Err(StoreError::Closed);
            }
        }
        Ok(StoreHandle { inner: Arc::new(Inner { tx: Some(tx), join: Some(join) }) })
    }
}

struct Inner {
    tx: Option<mpsc::Sender<Command>>,
    join: Option<JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the channel lets the thread finish the queued requests and exit; waiting
        // for it means the database is closed cleanly when the last handle goes away.
        self.tx = None;
        if let Some(join) = self.join.take() {
            let _ = join.join();
        }
    }
}

/// A cheap, cloneable handle to the store thread. The thread exits (after finishing every
/// queued request) when the last handle is dropped; that drop waits for it.
#[derive(Clone)]
pub struct StoreHandle {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for StoreHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreHandle").finish_non_exhaustive()
    }
}

/// The eventual result of a store request: `.await` it from async code or call
/// [`Pending::wait`] from synchronous code. The request runs whether or not this is used.
#[must_use = "the request runs anyway, but its result (and any error) is lost"]
#[derive(Debug)]
pub struct Pending<T> {
    rx: oneshot::Receiver<Result<T, StoreError>>,
}

impl<T> Pending<T> {
    /// Blocks the current thread until the request is done. Must not be called from inside
    /// an async runtime (tokio panics if it is); `.await` the `Pending` there instead.
    pub fn wait(self) -> Result<T, StoreError> {
        self.rx.blocking_recv().unwrap_or(Err(StoreError::Closed))
    }
}

impl<T> Future for Pending<T> {
    type Output = Result<T, StoreError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.get_mut().rx).poll(cx).map(|r| r.unwrap_or(Err(StoreError::Closed)))
    }
}

impl StoreHandle {
    /// Queues `f` to run on the store thread.
    fn run<T, F>(&self, f: F) -> Pending<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let command: Command = Box::new(move |conn| {
            // The caller may have stopped waiting; the work is done either way.
            let _ = tx.send(f(conn));
        });
        // If the thread is gone the command (and its reply sender) is dropped, and the
        // receiver reports Closed.
        if let Some(sender) = &self.inner.tx {
            let _ = sender.send(command);
        }
        Pending { rx }
    }

    /// Records the start of a call (disposition `in_progress`).
    pub fn cdr_start(&self, start: CdrStart) -> Pending<()> {
        self.run(move |c| ops::cdr_start(c, &start))
    }

    /// Records the answer time (the first one counts) and, if given, the seat that answered.
    pub fn cdr_answer(&self, call_id: &str, at: OffsetDateTime, seat_port: Option<u16>) -> Pending<()> {
        let call_id = call_id.to_owned();
        self.run(move |c| ops::cdr_answer(c, &call_id, at, seat_port))
    }

    /// Ends a call: sets the end time, disposition and cause, and computes `duration_ms`
    /// (start to end) and `talk_ms` (answer to end, 0 if never answered).
    pub fn cdr_end(
        &self,
        call_id: &str,
        at: OffsetDateTime,
        disposition: Disposition,
        cause: Option<&str>,
    ) -> Pending<()> {
        let call_id = call_id.to_owned();
        let cause = cause.map(str::to_owned);
        self.run(move |c| ops::cdr_end(c, &call_id, at, disposition, cause.as_deref()))
    }

    /// Links a recording to a call's CDR.
    pub fn cdr_set_vocid(&self, call_id: &str, vocid: &str) -> Pending<()> {
        let (call_id, vocid) = (call_id.to_owned(), vocid.to_owned());
        self.run(move |c| ops::cdr_set_vocid(c, &call_id, &vocid))
    }

    /// Registers a recording being written (state `recording`). `path` is relative to the
    /// data directory.
    pub fn recording_start(
        &self,
        vocid: &str,
        call_id: &str,
        path: &Path,
        at: OffsetDateTime,
    ) -> Pending<()> {
        let (vocid, call_id) = (vocid.to_owned(), call_id.to_owned());
        let path = path.to_owned();
        self.run(move |c| ops::recording_start(c, &vocid, &call_id, &path, at))
    }

    /// Marks a recording `complete` with its final length.
    pub fn recording_end(&self, vocid: &str, at: OffsetDateTime, samples: u64) -> Pending<()> {
        let vocid = vocid.to_owned();
        self.run(move |c| ops::recording_finish(c, &vocid, at, samples, RecordingState::Complete))
    }

    /// Marks a recording `damaged`: the recorder could not create or write its file.
    pub fn recording_failed(&self, vocid: &str, at: OffsetDateTime, samples: u64) -> Pending<()> {
        let vocid = vocid.to_owned();
        self.run(move |c| ops::recording_finish(c, &vocid, at, samples, RecordingState::Damaged))
    }

    /// The most recent CDRs, newest first.
    pub fn cdr_list(&self, limit: u32) -> Pending<Vec<Cdr>> {
        self.run(move |c| ops::cdr_list(c, limit))
    }

    /// The newest CDRs of calls an agent answered (the agent's recent calls).
    pub fn cdr_for_agent(&self, agent: &str, limit: u32) -> Pending<Vec<Cdr>> {
        let agent = agent.to_owned();
        self.run(move |c| ops::cdr_for_agent(c, &agent, limit))
    }

    /// One CDR by call id.
    pub fn cdr_get(&self, call_id: &str) -> Pending<Option<Cdr>> {
        let call_id = call_id.to_owned();
        self.run(move |c| ops::cdr_get(c, &call_id))
    }

    /// The most recent recordings, newest first.
    pub fn recordings_list(&self, limit: u32) -> Pending<Vec<Recording>> {
        self.run(move |c| ops::recordings_list(c, limit))
    }

    /// One recording by vocid.
    pub fn recording_get(&self, vocid: &str) -> Pending<Option<Recording>> {
        let vocid = vocid.to_owned();
        self.run(move |c| ops::recording_get(c, &vocid))
    }

    /// The recordings of one call, oldest first.
    pub fn recordings_for_call(&self, call_id: &str) -> Pending<Vec<Recording>> {
        let call_id = call_id.to_owned();
        self.run(move |c| ops::recordings_for_call(c, &call_id))
    }

    /// A new recording id, `YYYYMMDDhhmmss-NNNNNN`: the UTC time to the second and a
    /// database-backed counter that never repeats, even across restarts.
    pub fn next_vocid(&self, at: OffsetDateTime) -> Pending<String> {
        self.run(move |c| ops::next_vocid(c, at))
    }

    /// A new call id, `CYYYYMMDD-NNNNNN`: the UTC date and a per-day database-backed
    /// counter starting at 1, unique across restarts.
    pub fn next_call_id(&self, at: OffsetDateTime) -> Pending<String> {
        self.run(move |c| ops::next_call_id(c, at))
    }

    /// Stores a new agent account and its audit row. Fails with
    /// [`StoreError::AgentExists`] (and writes nothing) if the id is taken.
    pub fn agent_add(&self, record: AgentRecord, audit: AuditEntry) -> Pending<()> {
        self.run(move |c| ops::agent_add(c, &record, &audit))
    }

    /// Inserts or replaces an agent account, keeping `created_utc` of an existing one, and
    /// writes its audit row. Returns true if the account was created.
    pub fn agent_put(&self, record: AgentRecord, audit: AuditEntry) -> Pending<bool> {
        self.run(move |c| ops::agent_put(c, &record, &audit))
    }

    /// Replaces an agent's password hash and writes the audit row. Fails with
    /// [`StoreError::NoSuchAgent`] (and writes nothing) if there is no such agent.
    pub fn agent_set_password(
        &self,
        id: &str,
        password_hash: &str,
        at: OffsetDateTime,
        audit: AuditEntry,
    ) -> Pending<()> {
        let (id, hash) = (id.to_owned(), password_hash.to_owned());
        self.run(move |c| ops::agent_set_password(c, &id, &hash, at, &audit))
    }

    /// Enables or disables an agent account and writes the audit row. Fails with
    /// [`StoreError::NoSuchAgent`] (and writes nothing) if there is no such agent.
    pub fn agent_set_disabled(
        &self,
        id: &str,
        disabled: bool,
        at: OffsetDateTime,
        audit: AuditEntry,
    ) -> Pending<()> {
        let id = id.to_owned();
        self.run(move |c| ops::agent_set_disabled(c, &id, disabled, at, &audit))
    }

    /// Deletes an agent account and, if there was one, writes the audit row. Returns
    /// whether there was one.
    pub fn agent_delete(&self, id: &str, audit: AuditEntry) -> Pending<bool> {
        let id = id.to_owned();
        self.run(move |c| ops::agent_delete(c, &id, &audit))
    }

    /// One agent account by id.
    pub fn agent_get(&self, id: &str) -> Pending<Option<AgentRecord>> {
        let id = id.to_owned();
        self.run(move |c| ops::agent_get(c, &id))
    }

    /// Every agent account, ordered by id.
    pub fn agent_list(&self) -> Pending<Vec<AgentRecord>> {
        self.run(ops::agent_list)
    }

    /// How many enabled accounts (the ones that can log in) have `role`.
    pub fn agent_count_by_role(&self, role: Role) -> Pending<u64> {
        self.run(move |c| ops::agent_count_by_role(c, role))
    }

    /// Appends a row to the audit trail (for actions that change no account, such as a
    /// supervisor's control or a refused attempt).
    pub fn audit(&self, entry: AuditEntry) -> Pending<()> {
        self.run(move |c| ops::audit(c, &entry))
    }

    /// The most recent audit rows, newest first.
    pub fn audit_list(&self, limit: u32) -> Pending<Vec<AuditEntry>> {
        self.run(move |c| ops::audit_list(c, limit))
    }

    /// Sets the agent who took a call and, if given, the queue it came through. A later call
    /// (after a transfer, say) replaces the agent, so the CDR names the last one; a `None`
    /// queue keeps the one already set. Works on ended calls too, so that the core may
    /// write it late. Fails with [`StoreError::NoSuchCdr`] if there is no such call.
    pub fn cdr_set_agent(&self, call_id: &str, agent_id: &str, queue: Option<&str>) -> Pending<()> {
        let (call_id, agent_id) = (call_id.to_owned(), agent_id.to_owned());
        let queue = queue.map(str::to_owned);
        self.run(move |c| ops::cdr_set_agent(c, &call_id, &agent_id, queue.as_deref()))
    }

    /// Sets the IVR flow a call went through. Fails with [`StoreError::NoSuchCdr`] if there
    /// is no such call.
    pub fn cdr_set_flow(&self, call_id: &str, flow: &str) -> Pending<()> {
        let (call_id, flow) = (call_id.to_owned(), flow.to_owned());
        self.run(move |c| ops::cdr_set_flow(c, &call_id, &flow))
    }

    /// Sets how long the caller waited: from the start of the call to the answer, or to
    /// hanging up unanswered. The reports fall back on the CDR's times when it is not set.
    /// Fails with [`StoreError::NoSuchCdr`] if there is no such call.
    pub fn cdr_set_wait(&self, call_id: &str, wait_ms: u64) -> Pending<()> {
        let call_id = call_id.to_owned();
        self.run(move |c| ops::cdr_set_wait(c, &call_id, wait_ms))
    }

    /// Records an answer to a satisfaction survey and returns its row id. A score outside
    /// 1 to 9 (one key, [`StoreError::InvalidSurveyScore`]) or an empty grade is refused,
    /// because the reports' averages and distributions assume those ranges.
    pub fn survey_add(&self, result: SurveyResult) -> Pending<i64> {
        self.run(move |c| ops::survey_add(c, &result))
    }

    /// Puts a number on a list, or changes its note if it is already there (keeping the
    /// time it was added). Returns true if the number was new to the list. A number must be
    /// 1 to 32 of `0-9 * # +` ([`StoreError::InvalidNumber`]), the form caller ids arrive
    /// in, so that what an administrator types is what the caller filter will match.
    pub fn list_add(
        &self,
        list: CallerList,
        number: &str,
        note: Option<&str>,
        at: OffsetDateTime,
    ) -> Pending<bool> {
        let number = number.to_owned();
        let note = note.map(str::to_owned);
        self.run(move |c| ops::list_add(c, list, &number, note.as_deref(), at))
    }

    /// Takes a number off a list. Returns whether it was on it.
    pub fn list_del(&self, list: CallerList, number: &str) -> Pending<bool> {
        let number = number.to_owned();
        self.run(move |c| ops::list_del(c, list, &number))
    }

    /// The numbers on a list, in order.
    pub fn list_show(&self, list: CallerList) -> Pending<Vec<ListEntry>> {
        self.run(move |c| ops::list_show(c, list))
    }

    /// The lists a number is on (for the caller filter, when a call comes in), in the order
    /// of [`CallerList::ALL`].
    pub fn list_lookup(&self, number: &str) -> Pending<Vec<CallerList>> {
        let number = number.to_owned();
        self.run(move |c| ops::list_lookup(c, &number))
    }

    /// Records a voicemail message (its audio is the recording `vocid`) and returns its id.
    pub fn voicemail_add(&self, message: NewVoicemail) -> Pending<i64> {
        self.run(move |c| ops::voicemail_add(c, &message))
    }

    /// The voicemail messages of one mailbox, or of all, newest first.
    pub fn voicemail_list(&self, mailbox: Option<&str>) -> Pending<Vec<Voicemail>> {
        let mailbox = mailbox.map(str::to_owned);
        self.run(move |c| ops::voicemail_list(c, mailbox.as_deref()))
    }

    /// Marks a voicemail message heard or not. Returns whether there is such a message.
    pub fn voicemail_set_heard(&self, id: i64, heard: bool) -> Pending<bool> {
        self.run(move |c| ops::voicemail_set_heard(c, id, heard))
    }

    /// Records keys a caller pressed in an IVR flow and returns the row id.
    pub fn ivr_input_add(&self, input: NewIvrInput) -> Pending<i64> {
        self.run(move |c| ops::ivr_input_add(c, &input))
    }

    /// The keys the caller of one call pressed in IVR flows, oldest first.
    pub fn ivr_inputs_for_call(&self, call_id: &str) -> Pending<Vec<IvrInput>> {
        let call_id = call_id.to_owned();
        self.run(move |c| ops::ivr_inputs_for_call(c, &call_id))
    }

    /// Finds recordings by vocid, agent, customer number and start time, newest first,
    /// with what their CDRs say about them.
    pub fn recordings_find(&self, query: RecordingQuery) -> Pending<Vec<RecordingInfo>> {
        self.run(move |c| ops::recordings_find(c, &query))
    }

    /// Deletes the recordings started before `before`: their WAV files under `data_dir`,
    /// then their rows. A file that is already gone is not an error (a crash between the
    /// two steps leaves rows that the next run removes); a file that cannot be deleted keeps
    /// its row and is reported. Recordings still being written are never touched. Runs on
    /// the store thread, so the daemon should call it when it is quiet (once a day).
    pub fn recordings_expire(&self, before: OffsetDateTime, data_dir: &Path) -> Pending<ExpireReport> {
        let data_dir = data_dir.to_owned();
        self.run(move |c| ops::recordings_expire(c, before, &data_dir))
    }

    /// Incoming calls per day of the period, every day of it (days without calls have
    /// zeros): offered, answered, abandoned, waits and talk times.
    pub fn report_calls(&self, period: ReportPeriod) -> Pending<Vec<CallsDay>> {
        self.run(move |c| ops::report_calls(c, &period))
    }

    /// Per agent who took a call or got a survey answer in the period: incoming calls
    /// answered, talk time and average survey score; ordered by agent id.
    pub fn report_agents(&self, period: ReportPeriod) -> Pending<Vec<AgentReportRow>> {
        self.run(move |c| ops::report_agents(c, &period))
    }

    /// Survey answers given in the period, by agent and by day: how many, the average
    /// score, the distribution of scores and the count of each grade.
    pub fn report_satisfaction(&self, period: ReportPeriod) -> Pending<SatisfactionReport> {
        self.run(move |c| ops::report_satisfaction(c, &period))
    }

    /// Cleans up after a crash; call once at daemon start, before any call or recording
    /// starts. CDRs still `in_progress` become `interrupted` (ended at `now`, cause
    /// "daemon restarted"); recordings still `recording` have their WAV header repaired
    /// (state `repaired`, samples filled in, end time estimated from the length), or become
    /// `missing` if the file is gone, or `damaged` if it cannot be repaired.
    pub fn recover_after_crash(&self, data_dir: &Path, now: OffsetDateTime) -> Pending<RecoveryReport> {
        let data_dir = data_dir.to_owned();
        self.run(move |c| ops::recover_after_crash(c, &data_dir, now))
    }
}
