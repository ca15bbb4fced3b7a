//! The SQL behind every store request. These functions run on the store thread only.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension, Row};
use time::OffsetDateTime;

use super::{
    format_utc, AgentRecord, AuditEntry, Cdr, CdrStart, Disposition, Recording, RecordingState,
    RecoveryReport, RepairedRecording, Role, StoreError, CAUSE_DAEMON_RESTARTED,
};
use crate::audio::{repair_wav, WavError};

/// Recordings are 8 kHz mono, so samples per millisecond.
const SAMPLES_PER_MS: f64 = 8.0;

/// Milliseconds between two stored times, never negative (a clock stepping backwards
/// must not produce negative durations). NULL if either time is unparseable.
const ELAPSED_MS_SQL: &str =
    "max(0, CAST(round((unixepoch(?2, 'subsec') - unixepoch({from}, 'subsec')) * 1000) AS INTEGER))";

fn elapsed_ms_since(column: &str) -> String {
    ELAPSED_MS_SQL.replace("{from}", column)
}

/// Why an update of a live CDR matched no row: the CDR is missing, or already ended.
fn cdr_not_live(conn: &Connection, call_id: &str) -> StoreError {
    let exists = conn.query_row("SELECT 1 FROM cdr WHERE call_id = ?1", [call_id], |_| Ok(())).optional();
    match exists {
        Ok(Some(())) => StoreError::CdrAlreadyEnded(call_id.to_owned()),
        Ok(None) => StoreError::NoSuchCdr(call_id.to_owned()),
        Err(e) => StoreError::Sqlite(e),
    }
}

pub(super) fn cdr_start(conn: &mut Connection, s: &CdrStart) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO cdr (call_id, start_utc, caller, callee, trunk_port, seat_port, direction,
                          disposition)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'in_progress')",
        params![
            s.call_id,
            format_utc(s.start),
            s.caller,
            s.callee,
            s.trunk_port,
            s.seat_port,
            s.direction.as_str()
        ],
    )?;
    Ok(())
}

pub(super) fn cdr_answer(
    conn: &mut Connection,
    call_id: &str,
    at: OffsetDateTime,
    seat_port: Option<u16>,
) -> Result<(), StoreError> {
    let n = conn.execute(
        "UPDATE cdr SET answer_utc = coalesce(answer_utc, ?2), seat_port = coalesce(?3, seat_port)
         WHERE call_id = ?1 AND disposition = 'in_progress'",
        params![call_id, format_utc(at), seat_port],
    )?;
    if n == 0 {
        return Err(cdr_not_live(conn, call_id));
    }
    Ok(())
}

pub(super) fn cdr_end(
    conn: &mut Connection,
    call_id: &str,
    at: OffsetDateTime,
    disposition: Disposition,
    cause: Option<&str>,
) -> Result<(), StoreError> {
    if disposition == Disposition::InProgress {
        return Err(StoreError::EndInProgress);
    }
    let n = conn.execute(
        &end_sql("call_id = ?1 AND disposition = 'in_progress'"),
        params![call_id, format_utc(at), disposition.as_str(), cause],
    )?;
    if n == 0 {
        return Err(cdr_not_live(conn, call_id));
    }
    Ok(())
}

/// The UPDATE that ends CDRs: ?2 is the end time, ?3 the disposition, ?4 the cause.
fn end_sql(filter: &str) -> String {
    format!(
        "UPDATE cdr SET end_utc = ?2, disposition = ?3, cause = ?4,
             duration_ms = {},
             talk_ms = CASE WHEN answer_utc IS NULL THEN 0 ELSE {} END
         WHERE {filter}",
        elapsed_ms_since("start_utc"),
        elapsed_ms_since("answer_utc"),
    )
}

pub(super) fn cdr_set_vocid(conn: &mut Connection, call_id: &str, vocid: &str) -> Result<(), StoreError> {
    let n = conn.execute("UPDATE cdr SET vocid = ?2 WHERE call_id = ?1", params![call_id, vocid])?;
    if n == 0 {
        return Err(StoreError::NoSuchCdr(call_id.to_owned()));
    }
    Ok(())
}

pub(super) fn recording_start(
    conn: &mut Connection,
    vocid: &str,
    call_id: &str,
    path: &Path,
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    let path_text = path.to_str().ok_or_else(|| StoreError::NonUtf8Path(path.to_owned()))?;
    conn.execute(
        "INSERT INTO recordings (vocid, call_id, path, started_utc, state)
         VALUES (?1, ?2, ?3, ?4, 'recording')",
        params![vocid, call_id, path_text, format_utc(at)],
    )?;
    Ok(())
}

pub(super) fn recording_finish(
    conn: &mut Connection,
    vocid: &str,
    at: OffsetDateTime,
    samples: u64,
    state: RecordingState,
) -> Result<(), StoreError> {
    let n = conn.execute(
        "UPDATE recordings SET ended_utc = ?2, samples = ?3, state = ?4
         WHERE vocid = ?1 AND state = 'recording'",
        params![vocid, format_utc(at), samples, state.as_str()],
    )?;
    if n == 0 {
        let exists =
            conn.query_row("SELECT 1 FROM recordings WHERE vocid = ?1", [vocid], |_| Ok(())).optional()?;
        return Err(match exists {
            Some(()) => StoreError::RecordingAlreadyEnded(vocid.to_owned()),
            None => StoreError::NoSuchRecording(vocid.to_owned()),
        });
    }
    Ok(())
}

const CDR_COLUMNS: &str = "id, call_id, start_utc, answer_utc, end_utc, caller, callee, \
     trunk_port, seat_port, direction, disposition, cause, vocid, duration_ms, talk_ms";

fn cdr_from_row(r: &Row<'_>) -> rusqlite::Result<Cdr> {
    Ok(Cdr {
        id: r.get(0)?,
        call_id: r.get(1)?,
        start_utc: r.get(2)?,
        answer_utc: r.get(3)?,
        end_utc: r.get(4)?,
        caller: r.get(5)?,
        callee: r.get(6)?,
        trunk_port: r.get(7)?,
        seat_port: r.get(8)?,
        direction: r.get(9)?,
        disposition: r.get(10)?,
        cause: r.get(11)?,
        vocid: r.get(12)?,
        duration_ms: r.get(13)?,
        talk_ms: r.get(14)?,
    })
}

pub(super) fn cdr_list(conn: &mut Connection, limit: u32) -> Result<Vec<Cdr>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {CDR_COLUMNS} FROM cdr ORDER BY start_utc DESC, id DESC LIMIT ?1"
    ))?;
    let rows = stmt.query_map([limit], cdr_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn cdr_get(conn: &mut Connection, call_id: &str) -> Result<Option<Cdr>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {CDR_COLUMNS} FROM cdr WHERE call_id = ?1"))?;
    Ok(stmt.query_row([call_id], cdr_from_row).optional()?)
}

const RECORDING_COLUMNS: &str = "vocid, call_id, path, started_utc, ended_utc, samples, state";

fn recording_from_row(r: &Row<'_>) -> rusqlite::Result<Recording> {
    Ok(Recording {
        vocid: r.get(0)?,
        call_id: r.get(1)?,
        path: r.get(2)?,
        started_utc: r.get(3)?,
        ended_utc: r.get(4)?,
        samples: r.get(5)?,
        state: r.get(6)?,
    })
}

pub(super) fn recordings_list(conn: &mut Connection, limit: u32) -> Result<Vec<Recording>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {RECORDING_COLUMNS} FROM recordings ORDER BY started_utc DESC, vocid DESC LIMIT ?1"
    ))?;
    let rows = stmt.query_map([limit], recording_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn recording_get(conn: &mut Connection, vocid: &str) -> Result<Option<Recording>, StoreError> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {RECORDING_COLUMNS} FROM recordings WHERE vocid = ?1"))?;
    Ok(stmt.query_row([vocid], recording_from_row).optional()?)
}

pub(super) fn recordings_for_call(
    conn: &mut Connection,
    call_id: &str,
) -> Result<Vec<Recording>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {RECORDING_COLUMNS} FROM recordings WHERE call_id = ?1
         ORDER BY started_utc, vocid"
    ))?;
    let rows = stmt.query_map([call_id], recording_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Increments a named counter and returns its new value (1 the first time).
fn next_in_sequence(conn: &mut Connection, name: &str) -> Result<i64, StoreError> {
    let tx = conn.transaction()?;
    let value: i64 = tx.query_row(
        "INSERT INTO sequences (name, value) VALUES (?1, 1)
         ON CONFLICT (name) DO UPDATE SET value = value + 1
         RETURNING value",
        [name],
        |r| r.get(0),
    )?;
    tx.commit()?;
    Ok(value)
}

pub(super) fn next_vocid(conn: &mut Connection, at: OffsetDateTime) -> Result<String, StoreError> {
    // One global counter: the timestamp alone could repeat after a clock step, the counter
    // never does.
    let n = next_in_sequence(conn, "vocid")?;
    let t = at.to_offset(time::UtcOffset::UTC);
    Ok(format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}-{n:06}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    ))
}

pub(super) fn next_call_id(conn: &mut Connection, at: OffsetDateTime) -> Result<String, StoreError> {
    let t = at.to_offset(time::UtcOffset::UTC);
    let day = format!("{:04}{:02}{:02}", t.year(), u8::from(t.month()), t.day());
    // A counter per day keeps the numbers short and readable; the date is part of the id,
    // so ids stay unique even if the clock goes back to an earlier day.
    let n = next_in_sequence(conn, &format!("call_id/{day}"))?;
    Ok(format!("C{day}-{n:06}"))
}

pub(super) fn recover_after_crash(
    conn: &mut Connection,
    data_dir: &Path,
    now: OffsetDateTime,
) -> Result<RecoveryReport, StoreError> {
    let mut report = RecoveryReport::default();
    let now_text = format_utc(now);

    let tx = conn.transaction()?;
    {
        let mut stmt =
            tx.prepare("SELECT call_id FROM cdr WHERE disposition = 'in_progress' ORDER BY start_utc, id")?;
        let ids = stmt.query_map([], |r| r.get::<_, String>(0))?;
        report.interrupted_calls = ids.collect::<Result<_, _>>()?;
    }
    // The filter needs no call id; ?1 is bound to NULL to keep end_sql's numbering.
    tx.execute(
        &end_sql("disposition = 'in_progress'"),
        params![rusqlite::types::Null, now_text, Disposition::Interrupted.as_str(), CAUSE_DAEMON_RESTARTED],
    )?;
    tx.commit()?;

    let open: Vec<(String, String)> = {
        let mut stmt = conn.prepare(
            "SELECT vocid, path FROM recordings WHERE state = 'recording'
             ORDER BY started_utc, vocid",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    for (vocid, path) in open {
        let full = data_dir.join(&path);
        match repair_wav(&full) {
            Ok(outcome) => {
                // The file's length is the best estimate of when the recording stopped.
                let ms = outcome.samples as f64 / SAMPLES_PER_MS;
                conn.execute(
                    "UPDATE recordings SET state = 'repaired', samples = ?2,
                         ended_utc = coalesce(
                             strftime('%Y-%m-%dT%H:%M:%fZ', started_utc,
                                      printf('%+.3f seconds', ?3 / 1000.0)),
                             ?4)
                     WHERE vocid = ?1",
                    params![vocid, outcome.samples, ms, now_text],
                )?;
                tracing::info!(%vocid, samples = outcome.samples, "recording repaired after crash");
                report.repaired.push(RepairedRecording { vocid, samples: outcome.samples });
            }
            Err(WavError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                conn.execute(
                    "UPDATE recordings SET state = 'missing', ended_utc = ?2 WHERE vocid = ?1",
                    params![vocid, now_text],
                )?;
                tracing::warn!(%vocid, path = %full.display(), "recording file missing after crash");
                report.missing.push(vocid);
            }
            Err(e) => {
                conn.execute(
                    "UPDATE recordings SET state = 'damaged', ended_utc = ?2 WHERE vocid = ?1",
                    params![vocid, now_text],
                )?;
                tracing::warn!(%vocid, error = %e, "recording could not be repaired after crash");
                report.damaged.push((vocid, e.to_string()));
            }
        }
    }
    Ok(report)
}

const AGENT_COLUMNS: &str = "id, name, role, password_hash, disabled, created_utc, updated_utc";

fn agent_from_row(r: &Row<'_>) -> rusqlite::Result<AgentRecord> {
    Ok(AgentRecord {
        id: r.get(0)?,
        name: r.get(1)?,
        role: r.get(2)?,
        password_hash: r.get(3)?,
        disabled: r.get(4)?,
        created_utc: r.get(5)?,
        updated_utc: r.get(6)?,
    })
}

/// Writes an audit row with whatever connection or transaction the change uses, so that the
/// two commit together.
fn insert_audit(conn: &Connection, e: &AuditEntry) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO audit (at_utc, actor, action, target, detail, result)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![e.at_utc, e.actor, e.action, e.target, e.detail, e.result.as_str()],
    )?;
    Ok(())
}

pub(super) fn agent_add(
    conn: &mut Connection,
    a: &AgentRecord,
    audit: &AuditEntry,
) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    // ON CONFLICT DO NOTHING tells a taken id apart from other constraint failures (a bad
    // role, say) without parsing SQLite's error text.
    let n = tx.execute(
        "INSERT INTO agents (id, name, role, password_hash, disabled, created_utc, updated_utc)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (id) DO NOTHING",
        params![a.id, a.name, a.role.as_str(), a.password_hash, a.disabled, a.created_utc, a.updated_utc],
    )?;
    if n == 0 {
        return Err(StoreError::AgentExists(a.id.clone()));
    }
    insert_audit(&tx, audit)?;
    tx.commit()?;
    Ok(())
}

pub(super) fn agent_put(
    conn: &mut Connection,
    a: &AgentRecord,
    audit: &AuditEntry,
) -> Result<bool, StoreError> {
    let tx = conn.transaction()?;
    let existed =
        tx.query_row("SELECT 1 FROM agents WHERE id = ?1", [&a.id], |_| Ok(())).optional()?.is_some();
    tx.execute(
        "INSERT INTO agents (id, name, role, password_hash, disabled, created_utc, updated_utc)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, role = excluded.role,
             password_hash = excluded.password_hash, disabled = excluded.disabled,
             updated_utc = excluded.updated_utc",
        params![a.id, a.name, a.role.as_str(), a.password_hash, a.disabled, a.created_utc, a.updated_utc],
    )?;
    insert_audit(&tx, audit)?;
    tx.commit()?;
    Ok(!existed)
}

pub(super) fn agent_set_password(
    conn: &mut Connection,
    id: &str,
    hash: &str,
    at: OffsetDateTime,
    audit: &AuditEntry,
) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    let n = tx.execute(
        "UPDATE agents SET password_hash = ?2, updated_utc = ?3 WHERE id = ?1",
        params![id, hash, format_utc(at)],
    )?;
    if n == 0 {
        return Err(StoreError::NoSuchAgent(id.to_owned()));
    }
    insert_audit(&tx, audit)?;
    tx.commit()?;
    Ok(())
}

pub(super) fn agent_set_disabled(
    conn: &mut Connection,
    id: &str,
    disabled: bool,
    at: OffsetDateTime,
    audit: &AuditEntry,
) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    let n = tx.execute(
        "UPDATE agents SET disabled = ?2, updated_utc = ?3 WHERE id = ?1",
        params![id, disabled, format_utc(at)],
    )?;
    if n == 0 {
        return Err(StoreError::NoSuchAgent(id.to_owned()));
    }
    insert_audit(&tx, audit)?;
    tx.commit()?;
    Ok(())
}

pub(super) fn agent_delete(conn: &mut Connection, id: &str, audit: &AuditEntry) -> Result<bool, StoreError> {
    let tx = conn.transaction()?;
    let n = tx.execute("DELETE FROM agents WHERE id = ?1", [id])?;
    if n == 0 {
        // Nothing changed, so there is nothing to audit here; the caller decides whether
        // the failed attempt is worth a row of its own.
        return Ok(false);
    }
    insert_audit(&tx, audit)?;
    tx.commit()?;
    Ok(true)
}

pub(super) fn agent_get(conn: &mut Connection, id: &str) -> Result<Option<AgentRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {AGENT_COLUMNS} FROM agents WHERE id = ?1"))?;
    Ok(stmt.query_row([id], agent_from_row).optional()?)
}

pub(super) fn agent_list(conn: &mut Connection) -> Result<Vec<AgentRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {AGENT_COLUMNS} FROM agents ORDER BY id"))?;
    let rows = stmt.query_map([], agent_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn agent_count_by_role(conn: &mut Connection, role: Role) -> Result<u64, StoreError> {
    let n: i64 = conn.query_row(
        "SELECT count(*) FROM agents WHERE role = ?1 AND disabled = 0",
        [role.as_str()],
        |r| r.get(0),
    )?;
    // count(*) is never negative.
    Ok(n.max(0) as u64)
}

pub(super) fn audit(conn: &mut Connection, e: &AuditEntry) -> Result<(), StoreError> {
    insert_audit(conn, e)
}

pub(super) fn audit_list(conn: &mut Connection, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT at_utc, actor, action, target, detail, result FROM audit
         ORDER BY at_utc DESC, id DESC LIMIT ?1",
    )?;
    let rows = stmt.query_map([limit], |r| {
        Ok(AuditEntry {
            at_utc: r.get(0)?,
            actor: r.get(1)?,
            action: r.get(2)?,
            target: r.get(3)?,
            detail: r.get(4)?,
            result: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
