//! Connection settings and versioned schema migrations.
//!
//! The schema version lives in SQLite's `PRAGMA user_version`. Migration N (1-based) takes
//! the database from version N-1 to N and runs in its own transaction together with the
//! version bump, so a crash mid-migration leaves the previous version intact. A database
//! whose version is newer than this build knows is refused before anything is written to
//! it, because an older daemon could silently corrupt data it does not understand.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};

use super::StoreError;

/// How long a statement waits for another connection's lock (the CLI reading while the
/// daemon writes) before failing with SQLITE_BUSY.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The migrations, in order. Never edit a released entry: append a new one.
pub(super) const MIGRATIONS: &[&str] = &[
    // Version 1: call detail records, recordings and id sequences.
    "
    CREATE TABLE cdr (
        id          INTEGER PRIMARY KEY,
        call_id     TEXT NOT NULL UNIQUE,
        start_utc   TEXT NOT NULL,
        answer_utc  TEXT,
        end_utc     TEXT,
        caller      TEXT NOT NULL,
        callee      TEXT NOT NULL,
        trunk_port  INTEGER,
        seat_port   INTEGER,
        direction   TEXT NOT NULL CHECK (direction IN ('in', 'out', 'internal')),
        disposition TEXT NOT NULL DEFAULT 'in_progress' CHECK (disposition IN
                        ('in_progress', 'answered', 'no_answer', 'busy', 'failed',
                         'interrupted')),
        cause       TEXT,
        vocid       TEXT,
        duration_ms INTEGER,
        talk_ms     INTEGER
    );
    CREATE INDEX cdr_start_utc ON cdr (start_utc);
    -- Recovery after a crash looks for live calls; the partial index keeps that cheap on
    -- a table that grows forever.
    CREATE INDEX cdr_in_progress ON cdr (call_id) WHERE disposition = 'in_progress';

    CREATE TABLE recordings (
        vocid       TEXT PRIMARY KEY,
        call_id     TEXT NOT NULL,
        path        TEXT NOT NULL,
        started_utc TEXT NOT NULL,
        ended_utc   TEXT,
        samples     INTEGER,
        state       TEXT NOT NULL DEFAULT 'recording' CHECK (state IN
                        ('recording', 'complete', 'repaired', 'missing', 'damaged'))
    );
    CREATE INDEX recordings_call_id ON recordings (call_id);
    CREATE INDEX recordings_started_utc ON recordings (started_utc);
    CREATE INDEX recordings_open ON recordings (vocid) WHERE state = 'recording';

    -- Monotonic counters behind call ids and vocids, so ids never repeat across restarts.
    CREATE TABLE sequences (
        name  TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    ) WITHOUT ROWID;
    ",
    // Version 2: agent accounts and the audit trail of account changes and supervisor
    // controls.
    "
    CREATE TABLE agents (
        id            TEXT PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 32),
        name          TEXT NOT NULL,
        role          TEXT NOT NULL CHECK (role IN ('agent', 'supervisor', 'admin')),
        password_hash TEXT NOT NULL,
        created_utc   TEXT NOT NULL,
        updated_utc   TEXT NOT NULL,
        disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1))
    );

    -- Append-only by convention: nothing in Switchboard updates or deletes audit rows.
    CREATE TABLE audit (
        id     INTEGER PRIMARY KEY,
        at_utc TEXT NOT NULL,
        actor  TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT,
        detail TEXT,
        result TEXT NOT NULL CHECK (result IN ('ok', 'denied', 'failed'))
    );
    CREATE INDEX audit_at_utc ON audit (at_utc);
    ",
    // Version 3: who handled a call (agent, queue, IVR flow, wait before the answer),
    // satisfaction surveys, caller lists, voicemail and the keys callers pressed in IVR
    // flows, for the caller filter, the recordings search and the reports.
    "
    ALTER TABLE cdr ADD COLUMN agent_id TEXT;
    ALTER TABLE cdr ADD COLUMN queue TEXT;
    -- From the start to the answer, or to the caller hanging up unanswered.
    ALTER TABLE cdr ADD COLUMN wait_ms INTEGER;
    ALTER TABLE cdr ADD COLUMN flow TEXT;
    -- The agents report and the recordings search by agent read one agent's calls in a
    -- period; the search by caller reads one caller's calls.
    CREATE INDEX cdr_agent_start ON cdr (agent_id, start_utc) WHERE agent_id IS NOT NULL;
    CREATE INDEX cdr_caller ON cdr (caller);

    -- One answer to a satisfaction survey: a score (one key, 1 to 9; most surveys use 1 to
    -- 5) or a named grade.
    CREATE TABLE survey (
        id       INTEGER PRIMARY KEY,
        call_id  TEXT NOT NULL,
        at_utc   TEXT NOT NULL,
        agent_id TEXT,
        queue    TEXT,
        kind     TEXT NOT NULL CHECK (kind IN ('score', 'grade')),
        score    INTEGER,
        grade    TEXT,
        CHECK ((kind = 'score' AND score BETWEEN 1 AND 9 AND grade IS NULL)
            OR (kind = 'grade' AND grade IS NOT NULL AND score IS NULL))
    );
    CREATE INDEX survey_at_utc ON survey (at_utc);
    CREATE INDEX survey_call_id ON survey (call_id);

    -- The numbers the caller filter knows: refused (blacklist), served first (vip) or
    -- greeted as members.
    CREATE TABLE caller_list (
        list      TEXT NOT NULL CHECK (list IN ('blacklist', 'vip', 'member')),
        number    TEXT NOT NULL,
        note      TEXT,
        added_utc TEXT NOT NULL,
        PRIMARY KEY (list, number)
    ) WITHOUT ROWID;
    -- Every incoming call looks its caller up in every list.
    CREATE INDEX caller_list_number ON caller_list (number);

    CREATE TABLE voicemail (
        id          INTEGER PRIMARY KEY,
        mailbox     TEXT NOT NULL,
        call_id     TEXT,
        caller      TEXT,
        vocid       TEXT NOT NULL,
        at_utc      TEXT NOT NULL,
        duration_ms INTEGER,
        heard       INTEGER NOT NULL DEFAULT 0 CHECK (heard IN (0, 1))
    );
    CREATE INDEX voicemail_mailbox_at ON voicemail (mailbox, at_utc);

    -- Keys a caller pressed in an IVR flow that are kept as evidence (a customer's
    -- confirmation, say), with the recording of the moment when there is one.
    CREATE TABLE ivr_input (
        id      INTEGER PRIMARY KEY,
        call_id TEXT NOT NULL,
        at_utc  TEXT NOT NULL,
        name    TEXT NOT NULL,
        value   TEXT NOT NULL,
        vocid   TEXT
    );
    CREATE INDEX ivr_input_call_id ON ivr_input (call_id);
    ",
];

/// The schema version this build creates and understands.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Opens the database file, applies the connection settings and brings the schema up to
/// date.
pub(super) fn open(path: &Path) -> Result<Connection, StoreError> {
    let name = path.display().to_string();
    let at = |source| StoreError::Open { path: name.clone(), source };
    let mut conn = Connection::open(path).map_err(at)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(at)?;

    // Refuse a newer database before changing anything in it, even its journal mode.
    let found = user_version(&conn).map_err(at)?;
    check_version(found, &name)?;

    restrict_permissions(path);

    // WAL lets the CLI read while the daemon writes; with synchronous=FULL every commit is
    // on disk before it returns, which is what makes an Ok from the store durable.
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).map_err(at)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::NotWal { path: name, mode });
    }
    conn.pragma_update(None, "synchronous", "FULL").map_err(at)?;
    conn.pragma_update(None, "foreign_keys", true).map_err(at)?;

    migrate(&mut conn, &name)?;
    Ok(conn)
}

/// Takes away the access of "other" users to the database and its `-wal` and `-shm` files,
/// because they hold password hashes. SQLite creates new `-wal` and `-shm` files with the
/// database file's permissions, so this is done before the journal mode is set. The
/// owner's group keeps its access, like the control socket's, for installations that run
/// the command line under a shared group. A failure (say, the file belongs to another
/// user) is only logged: the database still works, and the directory's permissions may
/// protect it anyway.
fn restrict_permissions(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut files = vec![path.to_owned()];
    for suffix in ["-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        files.push(name.into());
    }
    for file in files {
        let result = std::fs::metadata(&file).and_then(|meta| {
            let mode = meta.permissions().mode();
            if mode & 0o007 == 0 {
                return Ok(());
            }
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode & 0o7770))
        });
        match result {
            Ok(()) => {}
            // The -wal and -shm files exist only while a connection has the database open.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(file = %file.display(), error = %e, "cannot restrict the database's permissions")
            }
        }
    }
}

fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

fn check_version(found: i64, name: &str) -> Result<(), StoreError> {
    if found > i64::from(SCHEMA_VERSION) {
        return Err(StoreError::NewerSchema { path: name.to_owned(), found, supported: SCHEMA_VERSION });
    }
    if found < 0 {
        return Err(StoreError::InvalidData { column: "user_version", value: found.to_string() });
    }
    Ok(())
}

fn migrate(conn: &mut Connection, name: &str) -> Result<(), StoreError> {
    for (index, sql) in MIGRATIONS.iter().enumerate() {
        let target = index as i64 + 1;
        // An immediate transaction takes the write lock first, so two processes opening a
        // fresh database at once cannot both apply the same migration.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current = user_version(&tx)?;
        check_version(current, name)?;
        if current >= target {
            continue;
        }
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", target)?;
        tx.commit()?;
        tracing::info!(database = name, version = target, "database schema migrated");
    }
    Ok(())
}
