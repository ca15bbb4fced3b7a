//! The SQL behind every store request. These functions run on the store thread only.

use std::collections::HashMap;
use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension, Row};
use time::OffsetDateTime;

use super::{
    format_utc, AgentRecord, AgentReportRow, AuditEntry, CallerList, CallsDay, Cdr, CdrStart, Disposition,
    ExpireReport, IvrInput, ListEntry, NewIvrInput, NewVoicemail, Recording, RecordingInfo, RecordingQuery,
    RecordingState, RecoveryReport, RepairedRecording, ReportPeriod, Role, SatisfactionReport,
    SatisfactionRow, StoreError, SurveyAnswer, SurveyResult, Voicemail, CAUSE_DAEMON_RESTARTED,
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
     trunk_port, seat_port, direction, disposition, cause, vocid, duration_ms, talk_ms, \
     agent_id, queue, wait_ms, flow";

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
        agent_id: r.get(15)?,
        queue: r.get(16)?,
        wait_ms: r.get(17)?,
        flow: r.get(18)?,
    })
}

pub(super) fn cdr_list(conn: &mut Connection, limit: u32) -> Result<Vec<Cdr>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {CDR_COLUMNS} FROM cdr ORDER BY start_utc DESC, id DESC LIMIT ?1"
    ))?;
    let rows = stmt.query_map([limit], cdr_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn cdr_for_agent(conn: &mut Connection, agent: &str, limit: u32) -> Result<Vec<Cdr>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {CDR_COLUMNS} FROM cdr WHERE agent_id = ?1 ORDER BY start_utc DESC, id DESC LIMIT ?2"
    ))?;
    let rows = stmt.query_map(rusqlite::params![agent, limit], cdr_from_row)?;
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

/// Updates one CDR by call id, whether the call is live or over: the core may learn the
/// agent, flow or wait after the call has ended.
fn cdr_update(
    conn: &Connection,
    call_id: &str,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<(), StoreError> {
    if conn.execute(sql, params)? == 0 {
        return Err(StoreError::NoSuchCdr(call_id.to_owned()));
    }
    Ok(())
}

pub(super) fn cdr_set_agent(
    conn: &mut Connection,
    call_id: &str,
    agent_id: &str,
    queue: Option<&str>,
) -> Result<(), StoreError> {
    cdr_update(
        conn,
        call_id,
        "UPDATE cdr SET agent_id = ?2, queue = coalesce(?3, queue) WHERE call_id = ?1",
        params![call_id, agent_id, queue],
    )
}

pub(super) fn cdr_set_flow(conn: &mut Connection, call_id: &str, flow: &str) -> Result<(), StoreError> {
    cdr_update(conn, call_id, "UPDATE cdr SET flow = ?2 WHERE call_id = ?1", params![call_id, flow])
}

pub(super) fn cdr_set_wait(conn: &mut Connection, call_id: &str, wait_ms: u64) -> Result<(), StoreError> {
    // No real wait comes near i64::MAX milliseconds; saturating keeps the column an integer.
    let wait_ms = i64::try_from(wait_ms).unwrap_or(i64::MAX);
    cdr_update(conn, call_id, "UPDATE cdr SET wait_ms = ?2 WHERE call_id = ?1", params![call_id, wait_ms])
}

pub(super) fn survey_add(conn: &mut Connection, r: &SurveyResult) -> Result<i64, StoreError> {
    let (kind, score, grade) = match &r.answer {
        SurveyAnswer::Score(n) if (1..=9).contains(n) => ("score", Some(*n), None),
        SurveyAnswer::Score(n) => return Err(StoreError::InvalidSurveyScore(*n)),
        SurveyAnswer::Grade(g) if g.trim().is_empty() => return Err(StoreError::EmptySurveyGrade),
        SurveyAnswer::Grade(g) => ("grade", None, Some(g.as_str())),
    };
    conn.execute(
        "INSERT INTO survey (call_id, at_utc, agent_id, queue, kind, score, grade)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![r.call_id, format_utc(r.at), r.agent_id, r.queue, kind, score, grade],
    )?;
    Ok(conn.last_insert_rowid())
}

/// Whether `number` looks like a caller id: 1 to 32 of `0-9 * # +`.
fn valid_number(number: &str) -> bool {
    (1..=32).contains(&number.len()) && number.bytes().all(|b| b.is_ascii_digit() || b"*#+".contains(&b))
}

pub(super) fn list_add(
    conn: &mut Connection,
    list: CallerList,
    number: &str,
    note: Option<&str>,
    at: OffsetDateTime,
) -> Result<bool, StoreError> {
    if !valid_number(number) {
        return Err(StoreError::InvalidNumber(number.to_owned()));
    }
    let tx = conn.transaction()?;
    let existed = tx
        .query_row(
            "SELECT 1 FROM caller_list WHERE list = ?1 AND number = ?2",
            params![list.as_str(), number],
            |_| Ok(()),
        )
        .optional()?
        .is_some();
    tx.execute(
        "INSERT INTO caller_list (list, number, note, added_utc) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (list, number) DO UPDATE SET note = coalesce(excluded.note, note)",
        params![list.as_str(), number, note, format_utc(at)],
    )?;
    tx.commit()?;
    Ok(!existed)
}

pub(super) fn list_del(conn: &mut Connection, list: CallerList, number: &str) -> Result<bool, StoreError> {
    let n = conn
        .execute("DELETE FROM caller_list WHERE list = ?1 AND number = ?2", params![list.as_str(), number])?;
    Ok(n > 0)
}

pub(super) fn list_show(conn: &mut Connection, list: CallerList) -> Result<Vec<ListEntry>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT list, number, note, added_utc FROM caller_list WHERE list = ?1 ORDER BY number",
    )?;
    let rows = stmt.query_map([list.as_str()], |r| {
        Ok(ListEntry { list: r.get(0)?, number: r.get(1)?, note: r.get(2)?, added_utc: r.get(3)? })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn list_lookup(conn: &mut Connection, number: &str) -> Result<Vec<CallerList>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT list FROM caller_list WHERE number = ?1")?;
    let rows = stmt.query_map([number], |r| r.get::<_, CallerList>(0))?;
    let mut lists: Vec<CallerList> = rows.collect::<Result<_, _>>()?;
    lists.sort();
    Ok(lists)
}

pub(super) fn voicemail_add(conn: &mut Connection, m: &NewVoicemail) -> Result<i64, StoreError> {
    conn.execute(
        "INSERT INTO voicemail (mailbox, call_id, caller, vocid, at_utc, duration_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![m.mailbox, m.call_id, m.caller, m.vocid, format_utc(m.at), m.duration_ms],
    )?;
    Ok(conn.last_insert_rowid())
}

pub(super) fn voicemail_list(
    conn: &mut Connection,
    mailbox: Option<&str>,
) -> Result<Vec<Voicemail>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, mailbox, call_id, caller, vocid, at_utc, duration_ms, heard FROM voicemail
         WHERE ?1 IS NULL OR mailbox = ?1 ORDER BY at_utc DESC, id DESC",
    )?;
    let rows = stmt.query_map([mailbox], |r| {
        Ok(Voicemail {
            id: r.get(0)?,
            mailbox: r.get(1)?,
            call_id: r.get(2)?,
            caller: r.get(3)?,
            vocid: r.get(4)?,
            at_utc: r.get(5)?,
            duration_ms: r.get(6)?,
            heard: r.get(7)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn voicemail_set_heard(conn: &mut Connection, id: i64, heard: bool) -> Result<bool, StoreError> {
    Ok(conn.execute("UPDATE voicemail SET heard = ?2 WHERE id = ?1", params![id, heard])? > 0)
}

pub(super) fn ivr_input_add(conn: &mut Connection, i: &NewIvrInput) -> Result<i64, StoreError> {
    conn.execute(
        "INSERT INTO ivr_input (call_id, at_utc, name, value, vocid) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![i.call_id, format_utc(i.at), i.name, i.value, i.vocid],
    )?;
    Ok(conn.last_insert_rowid())
}

pub(super) fn ivr_inputs_for_call(conn: &mut Connection, call_id: &str) -> Result<Vec<IvrInput>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, call_id, at_utc, name, value, vocid FROM ivr_input WHERE call_id = ?1
         ORDER BY at_utc, id",
    )?;
    let rows = stmt.query_map([call_id], |r| {
        Ok(IvrInput {
            id: r.get(0)?,
            call_id: r.get(1)?,
            at_utc: r.get(2)?,
            name: r.get(3)?,
            value: r.get(4)?,
            vocid: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn recordings_find(
    conn: &mut Connection,
    q: &RecordingQuery,
) -> Result<Vec<RecordingInfo>, StoreError> {
    // Only the filters that are set go into the statement, so SQLite can use the index that
    // fits (vocid, start time) instead of scanning with "?n IS NULL OR ..." everywhere.
    let mut filters: Vec<&str> = Vec::new();
    let mut values: Vec<Box<dyn rusqlite::ToSql>> = Vec::new();
    if let Some(vocid) = &q.vocid {
        filters.push("r.vocid = ?");
        values.push(Box::new(vocid.clone()));
    }
    if let Some(agent) = &q.agent_id {
        filters.push("c.agent_id = ?");
        values.push(Box::new(agent.clone()));
    }
    if let Some(caller) = &q.caller {
        // The customer is the one dialled on an outgoing call, the caller otherwise.
        filters.push("(CASE WHEN c.direction = 'out' THEN c.callee ELSE c.caller END) = ?");
        values.push(Box::new(caller.clone()));
    }
    if let Some(from) = q.from {
        filters.push("r.started_utc >= ?");
        values.push(Box::new(format_utc(from)));
    }
    if let Some(to) = q.to {
        filters.push("r.started_utc < ?");
        values.push(Box::new(format_utc(to)));
    }
    let filter = if filters.is_empty() { String::new() } else { format!("WHERE {}", filters.join(" AND ")) };
    values.push(Box::new(q.limit));
    let sql = format!(
        "SELECT r.vocid, r.call_id, r.path, r.started_utc, r.ended_utc, r.samples, r.state,
                c.caller, c.callee, c.direction, c.agent_id, c.queue
         FROM recordings r LEFT JOIN cdr c ON c.call_id = r.call_id
         {filter}
         ORDER BY r.started_utc DESC, r.vocid DESC LIMIT ?"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(values.iter()), |r| {
        Ok(RecordingInfo {
            recording: recording_from_row(r)?,
            caller: r.get(7)?,
            callee: r.get(8)?,
            direction: r.get(9)?,
            agent_id: r.get(10)?,
            queue: r.get(11)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Whether a stored recording path stays inside the data directory: relative, with no `..`.
/// Paths are written by the recorder, but a damaged or edited row must never make expiry
/// delete a file elsewhere.
pub(crate) fn is_data_relative(path: &Path) -> bool {
    path.components().next().is_some()
        && path.components().all(|c| matches!(c, std::path::Component::Normal(_)))
}

/// Removes the day, month and year directories above a deleted recording once they are
/// empty, so that expiry does not leave a tree of empty directories behind. The top
/// `recordings` directory stays. A directory that is not empty (or anything else that
/// stops the removal) ends the walk: its parents are not empty either.
fn remove_empty_parents(data_dir: &Path, rel: &Path) {
    let Some(parent) = rel.parent() else { return };
    for dir in parent.ancestors().filter(|d| d.components().count() >= 2) {
        if std::fs::remove_dir(data_dir.join(dir)).is_err() {
            break;
        }
    }
}

pub(super) fn recordings_expire(
    conn: &mut Connection,
    before: OffsetDateTime,
    data_dir: &Path,
) -> Result<ExpireReport, StoreError> {
    let old: Vec<(String, String)> = {
        let mut stmt = conn.prepare(
            "SELECT vocid, path FROM recordings WHERE started_utc < ?1 AND state <> 'recording'
             ORDER BY started_utc, vocid",
        )?;
        let rows = stmt.query_map([format_utc(before)], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    let mut report = ExpireReport::default();
    let mut gone = Vec::with_capacity(old.len());
    for (vocid, path) in old {
        let rel = Path::new(&path);
        if !is_data_relative(rel) {
            tracing::warn!(%vocid, %path, "recording path is outside the data directory; not deleted");
            report.failed.push((vocid, format!("path {path:?} is not inside the data directory")));
            continue;
        }
        let full = data_dir.join(rel);
        match std::fs::remove_file(&full) {
            Ok(()) => {
                report.files_deleted += 1;
                remove_empty_parents(data_dir, rel);
                gone.push(vocid);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => gone.push(vocid),
            Err(e) => {
                tracing::warn!(%vocid, file = %full.display(), error = %e, "cannot delete an expired recording");
                report.failed.push((vocid, format!("cannot delete {}: {e}", full.display())));
            }
        }
    }
    // Files first, rows after, in one transaction: a crash in between leaves rows whose
    // files are gone, which the next run removes without complaint.
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare("DELETE FROM recordings WHERE vocid = ?1")?;
        for vocid in &gone {
            report.rows_deleted += stmt.execute([vocid])? as u64;
        }
    }
    tx.commit()?;
    Ok(report)
}

/// The SQLite date modifier that turns a stored UTC time into the period's local time.
fn offset_modifier(period: &ReportPeriod) -> String {
    format!("{:+} minutes", period.utc_offset().whole_minutes())
}

/// `YYYY-MM-DD`, the form SQLite's `date()` gives.
fn day_text(d: time::Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

pub(super) fn report_calls(
    conn: &mut Connection,
    period: &ReportPeriod,
) -> Result<Vec<CallsDay>, StoreError> {
    // A CDR written before the core recorded waits (or by a crash) has no wait_ms; its wait
    // is then the time to the answer, or the whole call if the caller gave up.
    let sql = format!(
        "SELECT day, count(*), sum(answered), sum(abandoned),
                CAST(round(avg(wait)) AS INTEGER), max(wait),
                CAST(round(avg(CASE WHEN answered THEN talk_ms END)) AS INTEGER)
         FROM (SELECT date(start_utc, ?3) AS day,
                      answer_utc IS NOT NULL AS answered,
                      answer_utc IS NULL AND disposition = 'no_answer' AS abandoned,
                      talk_ms,
                      coalesce(wait_ms, CASE
                          WHEN answer_utc IS NOT NULL THEN {answer_wait}
                          WHEN disposition = 'no_answer' THEN duration_ms END) AS wait
               FROM cdr
               WHERE direction = 'in' AND start_utc >= ?1 AND start_utc < ?2)
         GROUP BY day",
        answer_wait = ELAPSED_MS_SQL.replace("?2", "answer_utc").replace("{from}", "start_utc"),
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        params![format_utc(period.start()), format_utc(period.end()), offset_modifier(period)],
        |r| {
            Ok(CallsDay {
                day: r.get(0)?,
                offered: r.get(1)?,
                answered: r.get(2)?,
                abandoned: r.get(3)?,
                avg_wait_ms: r.get(4)?,
                max_wait_ms: r.get(5)?,
                avg_talk_ms: r.get(6)?,
            })
        },
    )?;
    let mut found: HashMap<String, CallsDay> =
        rows.map(|row| row.map(|d| (d.day.clone(), d))).collect::<Result<_, _>>()?;
    // Every day of the period gets a row, so that charts and spreadsheets show quiet days
    // as zeros rather than skipping them.
    Ok(period
        .days()
        .map(|d| {
            let day = day_text(d);
            found.remove(&day).unwrap_or(CallsDay {
                day,
                offered: 0,
                answered: 0,
                abandoned: 0,
                avg_wait_ms: None,
                max_wait_ms: None,
                avg_talk_ms: None,
            })
        })
        .collect())
}

pub(super) fn report_agents(
    conn: &mut Connection,
    period: &ReportPeriod,
) -> Result<Vec<AgentReportRow>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "WITH c AS (
             SELECT agent_id,
                    count(*) FILTER (WHERE answer_utc IS NOT NULL) AS answered,
                    coalesce(sum(talk_ms) FILTER (WHERE answer_utc IS NOT NULL), 0) AS talk_total,
                    CAST(round(avg(talk_ms) FILTER (WHERE answer_utc IS NOT NULL)) AS INTEGER)
                        AS talk_avg
             FROM cdr
             WHERE agent_id IS NOT NULL AND direction = 'in'
                   AND start_utc >= ?1 AND start_utc < ?2
             GROUP BY agent_id),
         s AS (
             SELECT agent_id, count(score) AS scored, avg(score) AS avg_score
             FROM survey
             WHERE agent_id IS NOT NULL AND at_utc >= ?1 AND at_utc < ?2
             GROUP BY agent_id),
         ids AS (SELECT agent_id FROM c UNION SELECT agent_id FROM s)
         SELECT ids.agent_id, a.name, coalesce(c.answered, 0), coalesce(c.talk_total, 0),
                c.talk_avg, coalesce(s.scored, 0), s.avg_score
         FROM ids
         LEFT JOIN c ON c.agent_id = ids.agent_id
         LEFT JOIN s ON s.agent_id = ids.agent_id
         LEFT JOIN agents a ON a.id = ids.agent_id
         ORDER BY ids.agent_id",
    )?;
    let rows = stmt.query_map(params![format_utc(period.start()), format_utc(period.end())], |r| {
        Ok(AgentReportRow {
            agent_id: r.get(0)?,
            name: r.get(1)?,
            answered: r.get(2)?,
            talk_ms_total: r.get(3)?,
            talk_ms_avg: r.get(4)?,
            scored: r.get(5)?,
            avg_score: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A group's key: an agent id (`None` for answers without one) or a day.
type GroupKey = Option<String>;

/// How many answers of each group gave each score.
type ScoreCounts = HashMap<(GroupKey, u8), u64>;

/// The satisfaction rows grouped by `key_sql` (an expression over `survey`), with the agent
/// name from `name_sql`; `params` bind ?1 (start), ?2 (end) and whatever else the two use.
/// The distributions are left empty for [`report_satisfaction`] to size; the counts of each
/// score come back in the map, by group and score.
fn satisfaction_rows(
    conn: &Connection,
    key_sql: &str,
    name_sql: &str,
    params: &[&dyn rusqlite::ToSql],
) -> Result<(Vec<SatisfactionRow>, ScoreCounts), StoreError> {
    let range = "at_utc >= ?1 AND at_utc < ?2";
    let mut grades: HashMap<GroupKey, Vec<(String, u64)>> = HashMap::new();
    {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {key_sql} AS k, grade, count(*) FROM survey
             WHERE kind = 'grade' AND {range} GROUP BY k, grade ORDER BY k, grade"
        ))?;
        let rows = stmt.query_map(params, |r| Ok((r.get::<_, GroupKey>(0)?, r.get(1)?, r.get(2)?)))?;
        for row in rows {
            let (key, grade, n) = row?;
            grades.entry(key).or_default().push((grade, n));
        }
    }
    let mut scores = ScoreCounts::new();
    {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {key_sql} AS k, score, count(*) FROM survey
             WHERE kind = 'score' AND {range} GROUP BY k, score"
        ))?;
        let rows =
            stmt.query_map(params, |r| Ok((r.get::<_, GroupKey>(0)?, r.get::<_, u8>(1)?, r.get(2)?)))?;
        for row in rows {
            let (key, score, n) = row?;
            scores.insert((key, score), n);
        }
    }
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {key_sql} AS k, {name_sql}, count(*), count(score), avg(score)
         FROM survey WHERE {range}
         GROUP BY k ORDER BY k IS NULL, k"
    ))?;
    let rows = stmt.query_map(params, |r| {
        let key: GroupKey = r.get(0)?;
        Ok(SatisfactionRow {
            grades: grades.remove(&key).unwrap_or_default(),
            name: r.get(1)?,
            responses: r.get(2)?,
            scored: r.get(3)?,
            avg_score: r.get(4)?,
            distribution: Vec::new(),
            key,
        })
    })?;
    let rows = rows.collect::<Result<_, _>>()?;
    Ok((rows, scores))
}

pub(super) fn report_satisfaction(
    conn: &mut Connection,
    period: &ReportPeriod,
) -> Result<SatisfactionReport, StoreError> {
    let (start, end, modifier) =
        (format_utc(period.start()), format_utc(period.end()), offset_modifier(period));
    let (mut by_agent, agent_scores) = satisfaction_rows(
        conn,
        "agent_id",
        "(SELECT name FROM agents WHERE agents.id = survey.agent_id)",
        &[&start, &end],
    )?;
    let (mut by_day, day_scores) =
        satisfaction_rows(conn, "date(at_utc, ?3)", "NULL", &[&start, &end, &modifier])?;
    // Most surveys score 1 to 5; a longer scale in the period widens every distribution
    // alike, so that the columns line up.
    let scale = agent_scores.keys().map(|(_, score)| *score).max().unwrap_or(0).max(5);
    for (rows, scores) in [(&mut by_agent, &agent_scores), (&mut by_day, &day_scores)] {
        for row in rows.iter_mut() {
            row.distribution =
                (1..=scale).map(|s| scores.get(&(row.key.clone(), s)).copied().unwrap_or(0)).collect();
        }
    }
    Ok(SatisfactionReport { scale, by_agent, by_day })
}
