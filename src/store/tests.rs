//! Unit tests of the accounts and audit tables, and of the schema version 3 tables (surveys,
//! caller lists, voicemail, IVR input, the recordings search and expiry, the reports), on
//! real database files.

use std::path::{Path, PathBuf};

use time::macros::datetime;
use time::OffsetDateTime;

use super::*;

const T0: OffsetDateTime = datetime!(2026-11-24 08:04:12.345 UTC);

fn open() -> (tempfile::TempDir, StoreHandle) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = Store::open(&dir.path().join("switchboard.db")).expect("store opens");
    (dir, store)
}

fn agent(id: &str, role: Role, at: OffsetDateTime) -> AgentRecord {
    AgentRecord {
        id: id.to_owned(),
        name: format!("Agent {id}"),
        role,
        password_hash: format!("$argon2id$hash-of-{id}"),
        disabled: false,
        created_utc: format_utc(at),
        updated_utc: format_utc(at),
    }
}

fn entry(action: &str, target: &str) -> AuditEntry {
    AuditEntry::new(T0, "cli", action, AuditResult::Ok).target(target)
}

#[test]
fn roles_and_results_round_trip_as_text() {
    for role in [Role::Agent, Role::Supervisor, Role::Admin] {
        assert_eq!(Role::parse(role.as_str()), Some(role));
    }
    assert_eq!(Role::parse("root"), None);
    for result in [AuditResult::Ok, AuditResult::Denied, AuditResult::Failed] {
        assert_eq!(AuditResult::parse(result.as_str()), Some(result));
    }
    assert!(Role::Agent < Role::Supervisor && Role::Supervisor < Role::Admin);
}

#[test]
fn agents_are_added_read_listed_and_deleted_with_audit_rows() {
    let (_dir, store) = open();
    store.agent_add(agent("1002", Role::Agent, T0), entry("user.add", "1002")).wait().unwrap();
    store.agent_add(agent("1001", Role::Admin, T0), entry("user.add", "1001")).wait().unwrap();

    let got = store.agent_get("1001").wait().unwrap().unwrap();
    assert_eq!(got, agent("1001", Role::Admin, T0));
    assert_eq!(store.agent_get("9999").wait().unwrap(), None);
    let ids: Vec<String> = store.agent_list().wait().unwrap().into_iter().map(|a| a.id).collect();
    assert_eq!(ids, ["1001", "1002"]);

    // A duplicate is refused and leaves neither a changed account nor an audit row.
    let mut dup = agent("1001", Role::Agent, T0);
    dup.password_hash = "other".into();
    let e = store.agent_add(dup, entry("user.add", "1001")).wait().unwrap_err();
    assert!(matches!(&e, StoreError::AgentExists(id) if id == "1001"), "{e}");
    assert_eq!(store.agent_get("1001").wait().unwrap().unwrap().role, Role::Admin);
    assert_eq!(store.audit_list(10).wait().unwrap().len(), 2);

    assert!(store.agent_delete("1002", entry("user.del", "1002")).wait().unwrap());
    assert!(!store.agent_delete("1002", entry("user.del", "1002")).wait().unwrap());
    assert_eq!(store.agent_get("1002").wait().unwrap(), None);

    let audit = store.audit_list(10).wait().unwrap();
    let actions: Vec<(&str, Option<&str>)> =
        audit.iter().map(|e| (e.action.as_str(), e.target.as_deref())).collect();
    // Newest first; the second, no-op delete wrote nothing.
    assert_eq!(actions, [("user.del", Some("1002")), ("user.add", Some("1001")), ("user.add", Some("1002"))]);
    assert_eq!(store.audit_list(1).wait().unwrap().len(), 1);
}

#[test]
fn put_keeps_the_creation_time_and_reports_whether_it_created() {
    let (_dir, store) = open();
    let later = T0 + time::Duration::hours(1);
    assert!(store.agent_put(agent("1001", Role::Agent, T0), entry("user.put", "1001")).wait().unwrap());
    let mut changed = agent("1001", Role::Supervisor, later);
    changed.disabled = true;
    assert!(!store.agent_put(changed, entry("user.put", "1001")).wait().unwrap());
    let got = store.agent_get("1001").wait().unwrap().unwrap();
    assert_eq!(got.role, Role::Supervisor);
    assert!(got.disabled);
    assert_eq!(got.created_utc, format_utc(T0));
    assert_eq!(got.updated_utc, format_utc(later));
}

#[test]
fn password_and_disabled_updates_need_an_existing_agent() {
    let (_dir, store) = open();
    let later = T0 + time::Duration::minutes(5);
    let e = store.agent_set_password("1001", "h", later, entry("user.passwd", "1001")).wait().unwrap_err();
    assert!(matches!(e, StoreError::NoSuchAgent(_)), "{e}");
    let e = store.agent_set_disabled("1001", true, later, entry("user.disable", "1001")).wait().unwrap_err();
    assert!(matches!(e, StoreError::NoSuchAgent(_)), "{e}");
    assert!(store.audit_list(10).wait().unwrap().is_empty());

    store.agent_add(agent("1001", Role::Agent, T0), entry("user.add", "1001")).wait().unwrap();
    store.agent_set_password("1001", "new-hash", later, entry("user.passwd", "1001")).wait().unwrap();
    store.agent_set_disabled("1001", true, later, entry("user.disable", "1001")).wait().unwrap();
    let got = store.agent_get("1001").wait().unwrap().unwrap();
    assert_eq!(got.password_hash, "new-hash");
    assert!(got.disabled);
    assert_eq!(got.updated_utc, format_utc(later));
    assert_eq!(got.created_utc, format_utc(T0));
    assert_eq!(store.audit_list(10).wait().unwrap().len(), 3);
}

#[test]
fn counts_only_enabled_accounts_of_a_role() {
    let (_dir, store) = open();
    assert_eq!(store.agent_count_by_role(Role::Admin).wait().unwrap(), 0);
    store.agent_add(agent("a1", Role::Admin, T0), entry("user.add", "a1")).wait().unwrap();
    store.agent_add(agent("a2", Role::Admin, T0), entry("user.add", "a2")).wait().unwrap();
    store.agent_add(agent("s1", Role::Supervisor, T0), entry("user.add", "s1")).wait().unwrap();
    store.agent_set_disabled("a2", true, T0, entry("user.disable", "a2")).wait().unwrap();
    assert_eq!(store.agent_count_by_role(Role::Admin).wait().unwrap(), 1);
    assert_eq!(store.agent_count_by_role(Role::Supervisor).wait().unwrap(), 1);
    assert_eq!(store.agent_count_by_role(Role::Agent).wait().unwrap(), 0);
}

#[test]
fn audit_rows_keep_every_field() {
    let (_dir, store) = open();
    let row = AuditEntry::new(T0, "2001", "control.barge_in", AuditResult::Denied)
        .target("seat 3")
        .detail("role agent");
    store.audit(row.clone()).wait().unwrap();
    let bare =
        AuditEntry::new(T0 + time::Duration::seconds(1), "2001", "control.monitor", AuditResult::Failed);
    store.audit(bare.clone()).wait().unwrap();
    assert_eq!(store.audit_list(10).wait().unwrap(), [bare, row]);
}

#[test]
fn the_database_is_not_readable_by_others() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, store) = open();
    store.agent_list().wait().unwrap();
    for name in ["switchboard.db", "switchboard.db-wal", "switchboard.db-shm"] {
        let mode = std::fs::metadata(dir.path().join(name)).unwrap().permissions().mode();
        assert_eq!(mode & 0o007, 0, "{name}: {mode:o}");
    }
}

// ---- Schema version 3 -------------------------------------------------------------------

fn ms(n: i64) -> time::Duration {
    time::Duration::milliseconds(n)
}

fn utc_day(y: i32, m: u8, d: u8) -> time::Date {
    time::Date::from_calendar_date(y, time::Month::try_from(m).unwrap(), d).unwrap()
}

fn period(from: time::Date, to: time::Date) -> ReportPeriod {
    ReportPeriod::new(from, to, time::UtcOffset::UTC).unwrap()
}

fn call(store: &StoreHandle, id: &str, at: OffsetDateTime, caller: &str, direction: Direction) {
    store
        .cdr_start(CdrStart {
            call_id: id.into(),
            start: at,
            caller: caller.into(),
            callee: "200".into(),
            trunk_port: Some(1),
            seat_port: None,
            direction,
        })
        .wait()
        .unwrap();
}

/// An incoming call that waited `wait` ms, then was answered by `agent` and talked `talk` ms.
fn answered(store: &StoreHandle, id: &str, at: OffsetDateTime, agent: &str, wait: i64, talk: i64) {
    call(store, id, at, "0215550100", Direction::In);
    store.cdr_answer(id, at + ms(wait), Some(5)).wait().unwrap();
    store.cdr_end(id, at + ms(wait + talk), Disposition::Answered, Some("hangup")).wait().unwrap();
    store.cdr_set_agent(id, agent, Some("sales")).wait().unwrap();
    store.cdr_set_wait(id, wait as u64).wait().unwrap();
}

/// An incoming call whose caller hung up after `wait` ms.
fn abandoned(store: &StoreHandle, id: &str, at: OffsetDateTime, wait: i64) {
    call(store, id, at, "0215550199", Direction::In);
    store.cdr_end(id, at + ms(wait), Disposition::NoAnswer, Some("caller abandoned")).wait().unwrap();
    store.cdr_set_wait(id, wait as u64).wait().unwrap();
}

fn score(call_id: &str, at: OffsetDateTime, agent: Option<&str>, n: u8) -> SurveyResult {
    SurveyResult {
        call_id: call_id.into(),
        at,
        agent_id: agent.map(str::to_owned),
        queue: Some("sales".into()),
        answer: SurveyAnswer::Score(n),
    }
}

fn grade(call_id: &str, at: OffsetDateTime, agent: Option<&str>, g: &str) -> SurveyResult {
    SurveyResult { answer: SurveyAnswer::Grade(g.into()), ..score(call_id, at, agent, 1) }
}

#[test]
fn a_version_2_database_is_upgraded_and_keeps_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("switchboard.db");
    {
        // The database as a version 2 build left it: the first two migrations, never edited.
        let conn = rusqlite::Connection::open(&path).unwrap();
        for sql in &schema::MIGRATIONS[..2] {
            conn.execute_batch(sql).unwrap();
        }
        conn.execute_batch(
            "PRAGMA user_version = 2;
             INSERT INTO cdr (call_id, start_utc, answer_utc, end_utc, caller, callee, trunk_port,
                              seat_port, direction, disposition, cause, vocid, duration_ms, talk_ms)
             VALUES ('C20261124-000001', '2026-11-24T08:04:12.345Z', '2026-11-24T08:04:15.345Z',
                     '2026-11-24T08:05:15.345Z', '0215550100', '200', 1, 5, 'in', 'answered',
                     'hangup', '20261124080412-000001', 63000, 60000);
             INSERT INTO recordings (vocid, call_id, path, started_utc, ended_utc, samples, state)
             VALUES ('20261124080412-000001', 'C20261124-000001',
                     'recordings/2026/11/24/20261124080412-000001.wav', '2026-11-24T08:04:15.345Z',
                     '2026-11-24T08:05:15.345Z', 480000, 'complete');
             INSERT INTO agents (id, name, role, password_hash, created_utc, updated_utc)
             VALUES ('1001', 'Li Lei', 'agent', '$argon2id$x', '2026-11-01T00:00:00.000Z',
                     '2026-11-01T00:00:00.000Z');
             INSERT INTO audit (at_utc, actor, action, target, result)
             VALUES ('2026-11-01T00:00:00.000Z', 'cli', 'user.add', '1001', 'ok');
             INSERT INTO sequences (name, value) VALUES ('vocid', 7);",
        )
        .unwrap();
    }

    let store = Store::open(&path).unwrap();
    let cdr = store.cdr_get("C20261124-000001").wait().unwrap().unwrap();
    assert_eq!(cdr.disposition, Disposition::Answered);
    assert_eq!((cdr.duration_ms, cdr.talk_ms), (Some(63000), Some(60000)));
    assert_eq!((cdr.agent_id, cdr.queue, cdr.wait_ms, cdr.flow), (None, None, None, None));
    assert_eq!(store.recording_get("20261124080412-000001").wait().unwrap().unwrap().samples, Some(480000));
    assert_eq!(store.agent_get("1001").wait().unwrap().unwrap().name, "Li Lei");
    assert_eq!(store.audit_list(10).wait().unwrap().len(), 1);
    assert!(store.next_vocid(T0).wait().unwrap().ends_with("-000008"));

    // The old CDR takes the new columns, and the reports read old rows: the wait of a CDR
    // without wait_ms is the time to the answer.
    store.cdr_set_agent("C20261124-000001", "1001", Some("sales")).wait().unwrap();
    let day = utc_day(2026, 11, 24);
    let calls = store.report_calls(period(day, day)).wait().unwrap();
    assert_eq!((calls[0].offered, calls[0].answered, calls[0].avg_wait_ms), (1, 1, Some(3000)));
    let agents = store.report_agents(period(day, day)).wait().unwrap();
    assert_eq!(agents[0].name.as_deref(), Some("Li Lei"));
    assert_eq!(agents[0].talk_ms_total, 60000);
    let found = store.recordings_find(RecordingQuery { agent_id: Some("1001".into()), ..Default::default() });
    assert_eq!(found.wait().unwrap().len(), 1);
    drop(store);

    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    for table in ["survey", "caller_list", "voicemail", "ivr_input"] {
        let n: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [table],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 1, "{table}");
    }
    // The database itself refuses rows the reports could not make sense of.
    for bad in [
        "INSERT INTO survey (call_id, at_utc, kind, score) VALUES ('c', 't', 'score', 10)",
        "INSERT INTO survey (call_id, at_utc, kind, grade) VALUES ('c', 't', 'score', 'good')",
        "INSERT INTO survey (call_id, at_utc, kind) VALUES ('c', 't', 'grade')",
        "INSERT INTO caller_list (list, number, added_utc) VALUES ('friends', '1', 't')",
    ] {
        assert!(conn.execute(bad, []).is_err(), "{bad}");
    }
}

#[test]
fn cdrs_take_agent_queue_flow_and_wait() {
    let (_dir, store) = open();
    call(&store, "C1", T0, "0215550100", Direction::In);
    store.cdr_set_flow("C1", "main-menu").wait().unwrap();
    store.cdr_set_agent("C1", "1001", Some("sales")).wait().unwrap();
    // A transfer names the new agent; without a queue the old one stays.
    store.cdr_set_agent("C1", "1002", None).wait().unwrap();
    store.cdr_set_wait("C1", 4200).wait().unwrap();
    let cdr = store.cdr_get("C1").wait().unwrap().unwrap();
    assert_eq!(cdr.agent_id.as_deref(), Some("1002"));
    assert_eq!(cdr.queue.as_deref(), Some("sales"));
    assert_eq!(cdr.flow.as_deref(), Some("main-menu"));
    assert_eq!(cdr.wait_ms, Some(4200));
    // An ended call can still be updated; an unknown one is an error.
    store.cdr_end("C1", T0 + ms(9000), Disposition::Answered, None).wait().unwrap();
    store.cdr_set_wait("C1", 4300).wait().unwrap();
    for e in [
        store.cdr_set_agent("C9", "1001", None).wait().unwrap_err(),
        store.cdr_set_flow("C9", "x").wait().unwrap_err(),
        store.cdr_set_wait("C9", 1).wait().unwrap_err(),
    ] {
        assert!(matches!(&e, StoreError::NoSuchCdr(id) if id == "C9"), "{e}");
    }
}

#[test]
fn survey_answers_are_checked() {
    let (_dir, store) = open();
    // One key: 1 to 9, for surveys with a longer scale than the usual 1 to 5.
    for n in 1..=9 {
        store.survey_add(score("C1", T0, Some("1001"), n)).wait().unwrap();
    }
    for n in [0, 10, 255] {
        let e = store.survey_add(score("C1", T0, Some("1001"), n)).wait().unwrap_err();
        assert!(matches!(e, StoreError::InvalidSurveyScore(x) if x == n), "{e}");
    }
    let e = store.survey_add(grade("C1", T0, None, "  ")).wait().unwrap_err();
    assert!(matches!(e, StoreError::EmptySurveyGrade), "{e}");
    let id = store.survey_add(grade("C1", T0, None, "satisfied")).wait().unwrap();
    assert_eq!(id, 10);
}

#[test]
fn caller_lists_add_change_delete_show_and_look_up() {
    let (_dir, store) = open();
    assert!(store.list_add(CallerList::Vip, "0215550100", Some("big customer"), T0).wait().unwrap());
    assert!(store.list_add(CallerList::Blacklist, "0215550100", None, T0).wait().unwrap());
    assert!(store.list_add(CallerList::Vip, "+8613800000000", None, T0).wait().unwrap());
    // Adding again changes the note if one is given and keeps the time it was added.
    let later = T0 + time::Duration::days(1);
    assert!(!store.list_add(CallerList::Vip, "0215550100", None, later).wait().unwrap());
    assert!(!store.list_add(CallerList::Vip, "+8613800000000", Some("new"), later).wait().unwrap());
    let vip = store.list_show(CallerList::Vip).wait().unwrap();
    assert_eq!(
        vip,
        [
            ListEntry {
                list: CallerList::Vip,
                number: "+8613800000000".into(),
                note: Some("new".into()),
                added_utc: format_utc(T0)
            },
            ListEntry {
                list: CallerList::Vip,
                number: "0215550100".into(),
                note: Some("big customer".into()),
                added_utc: format_utc(T0)
            },
        ]
    );
    assert_eq!(store.list_lookup("0215550100").wait().unwrap(), [CallerList::Blacklist, CallerList::Vip]);
    assert!(store.list_lookup("0215550101").wait().unwrap().is_empty());
    assert!(store.list_show(CallerList::Member).wait().unwrap().is_empty());

    assert!(store.list_del(CallerList::Blacklist, "0215550100").wait().unwrap());
    assert!(!store.list_del(CallerList::Blacklist, "0215550100").wait().unwrap());
    assert_eq!(store.list_lookup("0215550100").wait().unwrap(), [CallerList::Vip]);

    for bad in ["", "021 555", "abc", "0215550100;", &"1".repeat(33)] {
        let e = store.list_add(CallerList::Member, bad, None, T0).wait().unwrap_err();
        assert!(matches!(&e, StoreError::InvalidNumber(n) if n == bad), "{e}");
    }
    for list in CallerList::ALL {
        assert_eq!(CallerList::parse(list.as_str()), Some(list));
    }
    assert_eq!(CallerList::parse("whitelist"), None);
}

#[test]
fn voicemail_and_ivr_input_are_kept() {
    let (_dir, store) = open();
    let message = |mailbox: &str, vocid: &str, at| NewVoicemail {
        mailbox: mailbox.into(),
        call_id: Some("C1".into()),
        caller: Some("0215550100".into()),
        vocid: vocid.into(),
        at,
        duration_ms: Some(12_500),
    };
    let a = store.voicemail_add(message("sales", "V1", T0)).wait().unwrap();
    store.voicemail_add(message("support", "V2", T0 + ms(1000))).wait().unwrap();
    store.voicemail_add(message("sales", "V3", T0 + ms(2000))).wait().unwrap();
    let all: Vec<String> = store.voicemail_list(None).wait().unwrap().into_iter().map(|v| v.vocid).collect();
    assert_eq!(all, ["V3", "V2", "V1"]);
    let sales = store.voicemail_list(Some("sales")).wait().unwrap();
    assert_eq!(sales.len(), 2);
    assert_eq!(sales[1].at_utc, format_utc(T0));
    assert_eq!(sales[1].duration_ms, Some(12_500));
    assert!(!sales[1].heard);
    assert!(store.voicemail_set_heard(a, true).wait().unwrap());
    assert!(!store.voicemail_set_heard(999, true).wait().unwrap());
    assert!(store.voicemail_list(Some("sales")).wait().unwrap()[1].heard);
    assert!(store.voicemail_list(Some("nobody")).wait().unwrap().is_empty());

    let input = |name: &str, value: &str, at| NewIvrInput {
        call_id: "C1".into(),
        at,
        name: name.into(),
        value: value.into(),
        vocid: Some("V9".into()),
    };
    store.ivr_input_add(input("confirm_order", "1", T0 + ms(500))).wait().unwrap();
    store.ivr_input_add(input("account", "12345#", T0)).wait().unwrap();
    let got = store.ivr_inputs_for_call("C1").wait().unwrap();
    let pairs: Vec<(&str, &str)> = got.iter().map(|i| (i.name.as_str(), i.value.as_str())).collect();
    assert_eq!(pairs, [("account", "12345#"), ("confirm_order", "1")]);
    assert_eq!(got[0].vocid.as_deref(), Some("V9"));
    assert!(store.ivr_inputs_for_call("C2").wait().unwrap().is_empty());
}

/// Writes a recording file of `samples` samples under `data_dir` and registers it.
fn recording(
    store: &StoreHandle,
    data_dir: &Path,
    vocid: &str,
    call_id: &str,
    at: OffsetDateTime,
    samples: usize,
) -> PathBuf {
    let rel = crate::audio::recording_rel_path(vocid, at);
    let full = data_dir.join(&rel);
    std::fs::create_dir_all(full.parent().unwrap()).unwrap();
    let mut w = crate::audio::WavWriter::create(&full).unwrap();
    w.write(&vec![100; samples]).unwrap();
    let n = w.finish().unwrap();
    store.recording_start(vocid, call_id, &rel, at).wait().unwrap();
    store.recording_end(vocid, at + ms(1000), n).wait().unwrap();
    full
}

#[test]
fn recordings_are_found_by_vocid_agent_customer_and_time() {
    let (dir, store) = open();
    let day2 = T0 + time::Duration::days(1);
    answered(&store, "C1", T0, "1001", 1000, 5000);
    answered(&store, "C2", day2, "1002", 1000, 5000);
    call(&store, "C3", day2 + ms(60_000), "1001", Direction::Out);
    store.cdr_set_agent("C3", "1001", None).wait().unwrap();
    recording(&store, dir.path(), "R1", "C1", T0, 80);
    recording(&store, dir.path(), "R2", "C2", day2, 80);
    recording(&store, dir.path(), "R3", "C3", day2 + ms(60_000), 80);
    // A recording whose call has no CDR is still found, without CDR fields.
    recording(&store, dir.path(), "R4", "C4", day2 + ms(120_000), 80);

    let find = |q: RecordingQuery| -> Vec<String> {
        store.recordings_find(q).wait().unwrap().into_iter().map(|i| i.recording.vocid).collect()
    };
    assert_eq!(find(RecordingQuery::default()), ["R4", "R3", "R2", "R1"]);
    assert_eq!(find(RecordingQuery { limit: 2, ..Default::default() }), ["R4", "R3"]);
    assert_eq!(find(RecordingQuery { vocid: Some("R2".into()), ..Default::default() }), ["R2"]);
    assert_eq!(find(RecordingQuery { agent_id: Some("1001".into()), ..Default::default() }), ["R3", "R1"]);
    // The customer of the outgoing call is the number dialled.
    assert_eq!(find(RecordingQuery { caller: Some("200".into()), ..Default::default() }), ["R3"]);
    assert_eq!(
        find(RecordingQuery { caller: Some("0215550100".into()), ..Default::default() }),
        ["R2", "R1"]
    );
    assert_eq!(find(RecordingQuery { from: Some(day2), ..Default::default() }), ["R4", "R3", "R2"]);
    assert_eq!(find(RecordingQuery { to: Some(day2), ..Default::default() }), ["R1"]);
    assert_eq!(
        find(RecordingQuery {
            agent_id: Some("1001".into()),
            from: Some(day2),
            to: Some(day2 + ms(60_001)),
            ..Default::default()
        }),
        ["R3"]
    );
    assert!(find(RecordingQuery {
        vocid: Some("R1".into()),
        agent_id: Some("1002".into()),
        ..Default::default()
    })
    .is_empty());

    let info = store.recordings_find(RecordingQuery { vocid: Some("R1".into()), ..Default::default() });
    let info = info.wait().unwrap().remove(0);
    assert_eq!(info.caller.as_deref(), Some("0215550100"));
    assert_eq!(info.direction, Some(Direction::In));
    assert_eq!((info.agent_id.as_deref(), info.queue.as_deref()), (Some("1001"), Some("sales")));
    let orphan = store.recordings_find(RecordingQuery { vocid: Some("R4".into()), ..Default::default() });
    let orphan = orphan.wait().unwrap().remove(0);
    assert_eq!((orphan.caller, orphan.agent_id, orphan.direction), (None, None, None));
}

#[test]
fn expiry_deletes_old_files_and_rows_only() {
    let (dir, store) = open();
    // The year before, so that expiry can empty its year directory.
    let old = T0 - time::Duration::days(400);
    let old_file = recording(&store, dir.path(), "OLD1", "C1", old, 80);
    // Same day directory, so only the last deletion may remove it.
    let old_file2 = recording(&store, dir.path(), "OLD2", "C1", old + ms(10), 80);
    // Already gone: not an error, its row goes.
    let lost = recording(&store, dir.path(), "LOST", "C2", old, 80);
    std::fs::remove_file(&lost).unwrap();
    // Still being written, however old: never touched.
    let live_rel = crate::audio::recording_rel_path("LIVE", old);
    std::fs::write(dir.path().join(&live_rel), b"RIFF").unwrap();
    store.recording_start("LIVE", "C3", &live_rel, old).wait().unwrap();
    let new_file = recording(&store, dir.path(), "NEW", "C4", T0, 80);
    // A row pointing outside the data directory is refused, not followed.
    let outside = dir.path().join("outside.wav");
    std::fs::write(&outside, b"keep me").unwrap();
    store.recording_start("EVIL", "C5", Path::new("../outside.wav"), old).wait().unwrap();
    store.recording_end("EVIL", old, 1).wait().unwrap();

    let report = store.recordings_expire(T0 - time::Duration::days(30), dir.path()).wait().unwrap();
    assert_eq!(report.files_deleted, 2);
    assert_eq!(report.rows_deleted, 3);
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].0, "EVIL");
    assert!(!old_file.exists() && !old_file2.exists());
    assert!(new_file.exists() && outside.exists() && dir.path().join(&live_rel).exists());
    let left: Vec<String> = store.recordings_list(10).wait().unwrap().into_iter().map(|r| r.vocid).collect();
    assert_eq!(left, ["NEW", "LIVE", "EVIL"]);
    // The day directory of OLD1 and OLD2 stays: LIVE is still in it.
    assert!(old_file.parent().unwrap().exists());

    // Once LIVE is finished it expires too, and the now empty directories go with it.
    store.recording_end("LIVE", old, 2).wait().unwrap();
    let report = store.recordings_expire(T0 - time::Duration::days(30), dir.path()).wait().unwrap();
    assert_eq!((report.files_deleted, report.rows_deleted), (1, 1));
    assert!(!old_file.parent().unwrap().exists());
    assert!(!dir.path().join("recordings").join(format!("{}", old.year())).exists());
    assert!(dir.path().join("recordings").exists());
    // Nothing left to do.
    let report = store.recordings_expire(T0 - time::Duration::days(30), dir.path()).wait().unwrap();
    assert_eq!((report.files_deleted, report.rows_deleted), (0, 0));
}

#[test]
fn report_periods_are_checked_and_cover_whole_days() {
    let (a, b) = (utc_day(2026, 11, 24), utc_day(2026, 11, 26));
    let e = ReportPeriod::new(b, a, time::UtcOffset::UTC).unwrap_err();
    assert!(matches!(e, StoreError::InvalidPeriod { .. }), "{e}");
    let e = ReportPeriod::new(utc_day(2000, 1, 1), utc_day(2026, 1, 1), time::UtcOffset::UTC).unwrap_err();
    assert!(e.to_string().contains("at most 3660 days"), "{e}");
    let p = ReportPeriod::new(a, b, time::UtcOffset::from_hms(8, 0, 0).unwrap()).unwrap();
    assert_eq!(format_utc(p.start()), "2026-11-23T16:00:00.000Z");
    assert_eq!(format_utc(p.end()), "2026-11-26T16:00:00.000Z");
    assert_eq!(p.days().count(), 3);
    assert_eq!(period(a, a).days().collect::<Vec<_>>(), [a]);
}

#[test]
fn the_calls_report_counts_each_day() {
    let (_dir, store) = open();
    let d1 = datetime!(2026-11-24 09:00 UTC);
    let d3 = datetime!(2026-11-26 23:30 UTC);
    answered(&store, "C1", d1, "1001", 2000, 60_000);
    answered(&store, "C2", d1 + ms(1000), "1002", 4000, 30_000);
    abandoned(&store, "C3", d1 + ms(2000), 9000);
    // Without wait_ms the wait comes from the times: start to answer here.
    call(&store, "C4", d3, "0215550100", Direction::In);
    store.cdr_answer("C4", d3 + ms(1500), Some(5)).wait().unwrap();
    store.cdr_end("C4", d3 + ms(11_500), Disposition::Answered, None).wait().unwrap();
    // Neither outgoing calls nor calls outside the period count.
    call(&store, "C5", d1, "200", Direction::Out);
    answered(&store, "C6", d1 - time::Duration::days(1), "1001", 1, 1);

    let p = period(utc_day(2026, 11, 24), utc_day(2026, 11, 26));
    let days = store.report_calls(p).wait().unwrap();
    assert_eq!(days.len(), 3);
    assert_eq!(
        days[0],
        CallsDay {
            day: "2026-11-24".into(),
            offered: 3,
            answered: 2,
            abandoned: 1,
            avg_wait_ms: Some(5000),
            max_wait_ms: Some(9000),
            avg_talk_ms: Some(45_000),
        }
    );
    assert_eq!(days[0].answer_rate(), Some(2.0 / 3.0));
    assert_eq!((days[1].day.as_str(), days[1].offered, days[1].avg_wait_ms), ("2026-11-25", 0, None));
    assert_eq!(days[1].answer_rate(), None);
    assert_eq!(
        (days[2].offered, days[2].answered, days[2].avg_wait_ms, days[2].avg_talk_ms),
        (1, 1, Some(1500), Some(10_000))
    );

    // At UTC+8 the 23:30 UTC call belongs to the next day, which is outside the period.
    let east = ReportPeriod::new(
        utc_day(2026, 11, 24),
        utc_day(2026, 11, 26),
        time::UtcOffset::from_hms(8, 0, 0).unwrap(),
    );
    let days = store.report_calls(east.unwrap()).wait().unwrap();
    let offered: Vec<u64> = days.iter().map(|d| d.offered).collect();
    assert_eq!(offered, [3, 0, 0]);
}

#[test]
fn the_agents_report_joins_calls_surveys_and_names() {
    let (_dir, store) = open();
    store.agent_add(agent("1001", Role::Agent, T0), entry("user.add", "1001")).wait().unwrap();
    let d = datetime!(2026-11-24 09:00 UTC);
    answered(&store, "C1", d, "1001", 1000, 60_000);
    answered(&store, "C2", d + ms(1000), "1001", 1000, 30_001);
    answered(&store, "C3", d + ms(2000), "1002", 1000, 10_000);
    store.survey_add(score("C1", d + ms(70_000), Some("1001"), 5)).wait().unwrap();
    store.survey_add(score("C2", d + ms(70_000), Some("1001"), 4)).wait().unwrap();
    store.survey_add(grade("C2", d + ms(70_000), Some("1001"), "satisfied")).wait().unwrap();
    // An agent with only a survey answer in the period still has a row.
    store.survey_add(score("C9", d, Some("1003"), 2)).wait().unwrap();

    let day = utc_day(2026, 11, 24);
    let rows = store.report_agents(period(day, day)).wait().unwrap();
    assert_eq!(
        rows,
        [
            AgentReportRow {
                agent_id: "1001".into(),
                name: Some("Agent 1001".into()),
                answered: 2,
                talk_ms_total: 90_001,
                talk_ms_avg: Some(45_001),
                scored: 2,
                avg_score: Some(4.5),
            },
            AgentReportRow {
                agent_id: "1002".into(),
                name: None,
                answered: 1,
                talk_ms_total: 10_000,
                talk_ms_avg: Some(10_000),
                scored: 0,
                avg_score: None,
            },
            AgentReportRow {
                agent_id: "1003".into(),
                name: None,
                answered: 0,
                talk_ms_total: 0,
                talk_ms_avg: None,
                scored: 1,
                avg_score: Some(2.0),
            },
        ]
    );
    let next = day.next_day().unwrap();
    assert!(store.report_agents(period(next, next)).wait().unwrap().is_empty());
}

#[test]
fn the_satisfaction_report_groups_by_agent_and_day() {
    let (_dir, store) = open();
    store.agent_add(agent("1001", Role::Agent, T0), entry("user.add", "1001")).wait().unwrap();
    let d1 = datetime!(2026-11-24 09:00 UTC);
    let d2 = datetime!(2026-11-25 09:00 UTC);
    for (at, agent, n) in
        [(d1, "1001", 5), (d1, "1001", 5), (d1, "1001", 3), (d2, "1002", 1), (d2, "1001", 4)]
    {
        store.survey_add(score("C", at, Some(agent), n)).wait().unwrap();
    }
    store.survey_add(grade("C", d2, Some("1001"), "satisfied")).wait().unwrap();
    store.survey_add(grade("C", d2, Some("1001"), "satisfied")).wait().unwrap();
    store.survey_add(grade("C", d2, None, "unsatisfied")).wait().unwrap();
    store.survey_add(score("C", d2 + time::Duration::days(5), Some("1001"), 1)).wait().unwrap();

    let r = store.report_satisfaction(period(utc_day(2026, 11, 24), utc_day(2026, 11, 25))).wait().unwrap();
    let keys: Vec<Option<&str>> = r.by_agent.iter().map(|x| x.key.as_deref()).collect();
    assert_eq!(keys, [Some("1001"), Some("1002"), None]);
    assert_eq!(
        r.by_agent[0],
        SatisfactionRow {
            key: Some("1001".into()),
            name: Some("Agent 1001".into()),
            responses: 6,
            scored: 4,
            avg_score: Some(4.25),
            distribution: vec![0, 0, 1, 1, 2],
            grades: vec![("satisfied".into(), 2)],
        }
    );
    assert_eq!(r.scale, 5);
    assert_eq!(
        (r.by_agent[1].responses, r.by_agent[1].distribution.as_slice()),
        (1, [1, 0, 0, 0, 0].as_slice())
    );
    assert_eq!(r.by_agent[2].distribution, [0; 5]);
    assert_eq!(r.by_agent[2].grades, [("unsatisfied".to_owned(), 1)]);
    assert_eq!((r.by_agent[2].scored, r.by_agent[2].avg_score), (0, None));

    let days: Vec<(Option<&str>, u64, Option<f64>)> =
        r.by_day.iter().map(|x| (x.key.as_deref(), x.responses, x.avg_score)).collect();
    assert_eq!(days, [(Some("2026-11-24"), 3, Some(13.0 / 3.0)), (Some("2026-11-25"), 5, Some(2.5))]);
    assert_eq!(r.by_day[1].grades, [("satisfied".to_owned(), 2), ("unsatisfied".to_owned(), 1)]);
    assert_eq!(r.by_day[1].name, None);
}

#[test]
fn a_longer_survey_scale_widens_every_distribution() {
    let (_dir, store) = open();
    let d = datetime!(2026-11-24 09:00 UTC);
    store.survey_add(score("C1", d, Some("1001"), 7)).wait().unwrap();
    store.survey_add(score("C2", d, Some("1002"), 2)).wait().unwrap();
    let day = utc_day(2026, 11, 24);
    let r = store.report_satisfaction(period(day, day)).wait().unwrap();
    assert_eq!(r.scale, 7);
    assert_eq!(r.by_agent[0].distribution, [0, 0, 0, 0, 0, 0, 1]);
    assert_eq!(r.by_agent[1].distribution, [0, 1, 0, 0, 0, 0, 0]);
    assert_eq!(r.by_day[0].distribution, [0, 1, 0, 0, 0, 0, 1]);
    assert_eq!(r.by_day[0].avg_score, Some(4.5));
    // An empty period still has the usual scale.
    let next = day.next_day().unwrap();
    let r = store.report_satisfaction(period(next, next)).wait().unwrap();
    assert_eq!((r.scale, r.by_agent.len(), r.by_day.len()), (5, 0, 0));
}
