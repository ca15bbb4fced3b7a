//! The offline administration commands (`recordings`, `list`, `voicemail`, `report`) run as
//! the real binary against a database filled through the library, while the test keeps its
//! own connection open the way the daemon would.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use switchboard::audio::{recording_rel_path, WavWriter};
use switchboard::store::{
    format_utc, AgentRecord, AuditEntry, AuditResult, CallerList, CdrStart, Direction, Disposition,
    NewVoicemail, Role, Store, StoreHandle, SurveyAnswer, SurveyResult,
};
use time::macros::datetime;
use time::OffsetDateTime;

use crate::harness::BIN;

/// Runs the real binary with `--data-dir` appended; returns exit code, stdout and stderr.
fn cli(data_dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out =
        Command::new(BIN).args(args).arg("--data-dir").arg(data_dir).stdin(Stdio::null()).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ms(n: i64) -> time::Duration {
    time::Duration::milliseconds(n)
}

fn open(dir: &Path) -> StoreHandle {
    Store::open(&dir.join("switchboard.db")).unwrap()
}

fn add_agent(store: &StoreHandle, id: &str, name: &str) {
    let now = format_utc(OffsetDateTime::now_utc());
    let record = AgentRecord {
        id: id.into(),
        name: name.into(),
        role: Role::Agent,
        password_hash: "$argon2id$not-a-real-hash".into(),
        disabled: false,
        created_utc: now.clone(),
        updated_utc: now,
    };
    let audit = AuditEntry::new(OffsetDateTime::now_utc(), "test", "user.add", AuditResult::Ok).target(id);
    store.agent_add(record, audit).wait().unwrap();
}

/// An incoming call from `caller`: answered by `agent` after `wait` ms and talked `talk` ms,
/// or abandoned after `wait` ms when there is no agent.
fn incoming(
    store: &StoreHandle,
    id: &str,
    at: OffsetDateTime,
    caller: &str,
    agent: Option<&str>,
    wait: i64,
    talk: i64,
) {
    let start = CdrStart {
        call_id: id.into(),
        start: at,
        caller: caller.into(),
        callee: "200".into(),
        trunk_port: Some(1),
        seat_port: None,
        direction: Direction::In,
    };
    store.cdr_start(start).wait().unwrap();
    match agent {
        Some(agent) => {
            store.cdr_answer(id, at + ms(wait), Some(5)).wait().unwrap();
            store.cdr_end(id, at + ms(wait + talk), Disposition::Answered, Some("hangup")).wait().unwrap();
            store.cdr_set_agent(id, agent, Some("sales")).wait().unwrap();
        }
        None => {
            store.cdr_end(id, at + ms(wait), Disposition::NoAnswer, Some("caller abandoned")).wait().unwrap();
        }
    }
    store.cdr_set_wait(id, wait as u64).wait().unwrap();
}

/// Writes a real WAV file for a recording of call `call_id` and registers it; the tone's
/// frequency makes each file's bytes different. Returns the file.
fn record(
    store: &StoreHandle,
    dir: &Path,
    vocid: &str,
    call_id: &str,
    at: OffsetDateTime,
    hz: f64,
) -> PathBuf {
    let rel = recording_rel_path(vocid, at);
    let file = dir.join(&rel);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let samples: Vec<i16> = (0..8000)
        .map(|n| (8000.0 * (2.0 * std::f64::consts::PI * hz * f64::from(n) / 8000.0).sin()) as i16)
        .collect();
    let mut writer = WavWriter::create(&file).unwrap();
    writer.write(&samples).unwrap();
    let written = writer.finish().unwrap();
    store.recording_start(vocid, call_id, &rel, at).wait().unwrap();
    store.recording_end(vocid, at + ms(1000), written).wait().unwrap();
    file
}

fn survey(store: &StoreHandle, call_id: &str, at: OffsetDateTime, agent: &str, answer: SurveyAnswer) {
    let result = SurveyResult {
        call_id: call_id.into(),
        at,
        agent_id: Some(agent.into()),
        queue: Some("sales".into()),
        answer,
    };
    store.survey_add(result).wait().unwrap();
}

const DAY1: OffsetDateTime = datetime!(2026-11-24 09:00 UTC);
const DAY2: OffsetDateTime = datetime!(2026-11-25 15:00 UTC);

/// Three days of a small call center: two agents, four calls (one abandoned), three
/// recordings and four survey answers.
fn fill(dir: &Path) -> StoreHandle {
    let store = open(dir);
    add_agent(&store, "1001", "Li Lei");
    add_agent(&store, "1002", "Han Meimei");
    incoming(&store, "C1", DAY1, "0215550100", Some("1001"), 2000, 60_000);
    incoming(&store, "C2", DAY1 + ms(60_000), "0215550101", Some("1002"), 4000, 30_000);
    incoming(&store, "C3", DAY1 + ms(120_000), "0215550102", None, 9000, 0);
    incoming(&store, "C4", DAY2, "0215550100", Some("1001"), 1000, 20_000);
    record(&store, dir, "R1", "C1", DAY1 + ms(2000), 440.0);
    record(&store, dir, "R2", "C2", DAY1 + ms(64_000), 550.0);
    record(&store, dir, "R4", "C4", DAY2 + ms(1000), 660.0);
    survey(&store, "C1", DAY1 + ms(70_000), "1001", SurveyAnswer::Score(5));
    survey(&store, "C2", DAY1 + ms(100_000), "1002", SurveyAnswer::Score(3));
    survey(&store, "C4", DAY2 + ms(30_000), "1001", SurveyAnswer::Score(4));
    survey(&store, "C4", DAY2 + ms(31_000), "1001", SurveyAnswer::Grade("satisfied".into()));
    store
}

fn vocids(json: &str) -> Vec<String> {
    let list: serde_json::Value = serde_json::from_str(json).unwrap();
    list.as_array().unwrap().iter().map(|r| r["vocid"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn recordings_are_listed_by_agent_caller_date_and_vocid() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let _store = fill(d);

    let list = |args: &[&str]| {
        let mut all = vec!["recordings", "list", "--json"];
        all.extend_from_slice(args);
        let (code, out, err) = cli(d, &all);
        assert_eq!(code, 0, "{args:?}: {err}");
        vocids(&out)
    };
    assert_eq!(list(&[]), ["R4", "R2", "R1"]);
    assert_eq!(list(&["--agent", "1001"]), ["R4", "R1"]);
    assert_eq!(list(&["--agent", "1002"]), ["R2"]);
    assert_eq!(list(&["--caller", "0215550100"]), ["R4", "R1"]);
    assert_eq!(list(&["--caller", "0215550101"]), ["R2"]);
    assert_eq!(list(&["--from", "2026-11-25", "--to", "2026-11-25"]), ["R4"]);
    assert_eq!(list(&["--to", "2026-11-24"]), ["R2", "R1"]);
    assert_eq!(list(&["--from", "2026-11-24", "--agent", "1001", "--caller", "0215550100"]), ["R4", "R1"]);
    assert_eq!(list(&["--vocid", "R2"]), ["R2"]);
    assert_eq!(list(&["--limit", "1"]), ["R4"]);
    assert!(list(&["--agent", "9999"]).is_empty());
    // 15:00 UTC on the 25th is already the 26th at UTC+10.
    assert_eq!(list(&["--from", "2026-11-26", "--utc-offset", "+10:00"]), ["R4"]);

    let (code, out, _) = cli(d, &["recordings", "list", "--json", "--vocid", "R1"]);
    assert_eq!(code, 0);
    let r1: serde_json::Value = serde_json::from_str(&out).unwrap();
    let r1 = &r1[0];
    assert_eq!(r1["call_id"], "C1");
    assert_eq!(r1["caller"], "0215550100");
    assert_eq!(r1["agent_id"], "1001");
    assert_eq!(r1["queue"], "sales");
    assert_eq!(r1["state"], "complete");
    assert_eq!(r1["samples"], 8000);
    assert_eq!(r1["started"], "2026-11-24T09:00:02.000Z");

    // The table for people.
    let (code, out, _) = cli(d, &["recordings", "list", "--agent", "1002"]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].starts_with("VOCID") && lines[0].contains("AGENT"), "{out}");
    assert!(
        lines[1].starts_with("R2 ") && lines[1].contains("0215550101") && lines[1].contains("1.0"),
        "{out}"
    );

    // A bad date names the flag and the format, and fails.
    let (code, out, err) = cli(d, &["recordings", "list", "--from", "2026-02-30"]);
    assert_ne!(code, 0);
    assert!(out.is_empty());
    assert!(err.contains("--from") && err.contains("YYYY-MM-DD"), "{err}");
    let (code, _, err) = cli(d, &["recordings", "list", "--from", "2026-11-25", "--to", "2026-11-24"]);
    assert_ne!(code, 0);
    assert!(err.contains("--to 2026-11-24 is before --from 2026-11-25"), "{err}");
}

#[test]
fn a_recording_is_exported_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let store = fill(d);
    let out_dir = tempfile::tempdir().unwrap();
    let target = out_dir.path().join("call.wav");

    let (code, out, err) = cli(d, &["recordings", "export", "R2", "--out", target.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("exported R2"), "{out}");
    let original = d.join(store.recording_get("R2").wait().unwrap().unwrap().path);
    assert_eq!(std::fs::read(&target).unwrap(), std::fs::read(&original).unwrap());
    assert_ne!(
        std::fs::read(&target).unwrap(),
        std::fs::read(d.join(recording_rel_path("R1", DAY1 + ms(2000)))).unwrap()
    );

    // An existing file is kept unless --force; a directory gets VOCID.wav.
    let (code, _, err) = cli(d, &["recordings", "export", "R1", "--out", target.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("already exists") && err.contains("--force"), "{err}");
    assert_eq!(std::fs::read(&target).unwrap(), std::fs::read(&original).unwrap());
    let (code, _, err) =
        cli(d, &["recordings", "export", "R1", "--out", target.to_str().unwrap(), "--force"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = cli(d, &["recordings", "export", "R4", "--out", out_dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out_dir.path().join("R4.wav").is_file());

    let (code, _, err) = cli(d, &["recordings", "export", "NOPE", "--out", target.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("no recording with vocid NOPE"), "{err}");
    std::fs::remove_file(&original).unwrap();
    let (code, _, err) = cli(d, &["recordings", "export", "R2", "--out", out_dir.path().to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("recording R2 is missing") && err.contains(&original.display().to_string()),
        "{err}"
    );

    // A data directory without a database is a mistake worth naming.
    let empty = tempfile::tempdir().unwrap();
    let (code, _, err) = cli(empty.path(), &["recordings", "list"]);
    assert_eq!(code, 1);
    assert!(err.contains("no database at"), "{err}");
    assert!(!empty.path().join("switchboard.db").exists());
}

#[test]
fn expiry_deletes_only_old_recordings() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let store = open(d);
    let now = OffsetDateTime::now_utc();
    let old = record(&store, d, "OLD", "C1", now - time::Duration::days(100), 440.0);
    let older = record(&store, d, "OLDER", "C2", now - time::Duration::days(40), 440.0);
    let gone = record(&store, d, "GONE", "C3", now - time::Duration::days(50), 440.0);
    std::fs::remove_file(&gone).unwrap();
    let recent = record(&store, d, "RECENT", "C4", now - time::Duration::days(1), 440.0);

    let (code, out, err) = cli(d, &["recordings", "expire", "--days", "30"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("deleted 2 files and 3 index rows"), "{out}");
    assert!(!old.exists() && !older.exists());
    assert!(recent.exists());
    let left: Vec<String> = store.recordings_list(10).wait().unwrap().into_iter().map(|r| r.vocid).collect();
    assert_eq!(left, ["RECENT"]);

    let (code, out, _) = cli(d, &["recordings", "expire", "--days", "30"]);
    assert_eq!(code, 0);
    assert!(out.contains("deleted 0 files and 0 index rows"), "{out}");
    let (code, _, err) = cli(d, &["recordings", "expire", "--days", "0"]);
    assert_eq!(code, 2);
    assert!(err.contains("--days"), "{err}");
    assert!(recent.exists());
}

#[test]
fn caller_lists_round_trip_through_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The database does not exist yet: `list add` creates it, like `user add`.
    let (code, out, err) =
        cli(d, &["list", "add", "vip", "0215550100", "--note", "big customer, since 2019"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("added 0215550100 to the vip list"), "{out}");
    let store = open(d);
    let (code, _, err) = cli(d, &["list", "add", "blacklist", "+8613800000000"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = cli(d, &["list", "add", "vip", "0215550199"]);
    assert_eq!(code, 0, "{err}");
    // What the command line wrote, the daemon's own connection sees.
    assert_eq!(store.list_lookup("0215550100").wait().unwrap(), [CallerList::Vip]);
    assert_eq!(store.list_lookup("+8613800000000").wait().unwrap(), [CallerList::Blacklist]);

    let (code, out, _) = cli(d, &["list", "show", "vip"]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[0].starts_with("NUMBER") && lines[0].contains("NOTE"));
    assert!(lines[1].starts_with("0215550100") && lines[1].ends_with("big customer, since 2019"), "{out}");
    assert!(lines[2].starts_with("0215550199"), "{out}");

    let (code, out, _) = cli(d, &["list", "add", "vip", "0215550100", "--note", "changed"]);
    assert_eq!(code, 0);
    assert!(out.contains("already on the vip list"), "{out}");
    assert_eq!(store.list_show(CallerList::Vip).wait().unwrap()[0].note.as_deref(), Some("changed"));

    let (code, out, _) = cli(d, &["list", "del", "vip", "0215550100"]);
    assert_eq!(code, 0);
    assert!(out.contains("deleted 0215550100 from the vip list"), "{out}");
    let (code, _, err) = cli(d, &["list", "del", "vip", "0215550100"]);
    assert_eq!(code, 1);
    assert!(err.contains("0215550100 is not on the vip list"), "{err}");
    assert!(store.list_lookup("0215550100").wait().unwrap().is_empty());
    let (code, out, err) = cli(d, &["list", "show", "member"]);
    assert_eq!((code, out.as_str()), (0, ""));
    assert!(err.contains("the member list is empty"), "{err}");

    for args in [&["list", "show", "friends"][..], &["list", "add", "whitelist", "123"]] {
        let (code, _, err) = cli(d, args);
        assert_eq!(code, 2, "{args:?}");
        assert!(err.contains("expected blacklist, vip or member"), "{err}");
    }
    let (code, _, err) = cli(d, &["list", "add", "member", "021-555"]);
    assert_eq!(code, 1);
    assert!(err.contains("\"021-555\" is not a telephone number"), "{err}");
}

#[test]
fn voicemail_is_listed_by_mailbox() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let store = open(d);
    for (mailbox, vocid, at) in
        [("sales", "V1", DAY1), ("support", "V2", DAY1 + ms(1000)), ("sales", "V3", DAY2)]
    {
        let message = NewVoicemail {
            mailbox: mailbox.into(),
            call_id: Some("C1".into()),
            caller: Some("0215550100".into()),
            vocid: vocid.into(),
            at,
            duration_ms: Some(12_300),
        };
        store.voicemail_add(message).wait().unwrap();
    }
    let (code, out, err) = cli(d, &["voicemail", "list", "--mailbox", "sales"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[1].contains("V3") && lines[2].contains("V1") && lines[1].contains("12.3"), "{out}");
    let (code, out, _) = cli(d, &["voicemail", "list", "--json"]);
    assert_eq!(code, 0);
    assert_eq!(vocids(&out), ["V3", "V2", "V1"]);
    let (code, out, err) = cli(d, &["voicemail", "list", "--mailbox", "nobody"]);
    assert_eq!((code, out.as_str()), (0, ""));
    assert!(err.contains("no voicemail messages"), "{err}");
}

#[test]
fn csv_reports_have_exact_rows() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let _store = fill(d);
    let period = ["--from", "2026-11-24", "--to", "2026-11-26", "--format", "csv"];
    let report = |kind: &str| {
        let mut args = vec!["report", kind];
        args.extend_from_slice(&period);
        let (code, out, err) = cli(d, &args);
        assert_eq!(code, 0, "{kind}: {err}");
        out
    };

    assert_eq!(
        report("calls"),
        "day,offered,answered,abandoned,answer_rate_pct,avg_wait_ms,max_wait_ms,avg_talk_ms\r\n\
         2026-11-24,3,2,1,66.7,5000,9000,45000\r\n\
         2026-11-25,1,1,0,100.0,1000,1000,20000\r\n\
         2026-11-26,0,0,0,,,,\r\n"
    );
    assert_eq!(
        report("agents"),
        "agent,name,answered,talk_ms_total,talk_ms_avg,survey_scores,avg_score\r\n\
         1001,Li Lei,2,80000,40000,2,4.50\r\n\
         1002,Han Meimei,1,30000,30000,1,3.00\r\n"
    );
    assert_eq!(
        report("satisfaction"),
        "group,key,name,responses,scored,avg_score,score_1,score_2,score_3,score_4,score_5,grades\r\n\
         agent,1001,Li Lei,3,2,4.50,0,0,0,1,1,satisfied=1\r\n\
         agent,1002,Han Meimei,1,1,3.00,0,0,1,0,0,\r\n\
         day,2026-11-24,,2,2,4.00,0,0,1,0,1,\r\n\
         day,2026-11-25,,2,1,4.00,0,0,0,1,0,satisfied=1\r\n"
    );

    // One day only, and at UTC-10 the calls of 09:00 UTC on the 24th fall on the 23rd.
    let (code, out, _) = cli(d, &["report", "calls", "--from", "2026-11-25", "--to", "2026-11-25"]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().nth(1), Some("2026-11-25,1,1,0,100.0,1000,1000,20000"));
    let (code, out, err) =
        cli(d, &["report", "calls", "--from", "2026-11-23", "--to", "2026-11-23", "--utc-offset", "-10:00"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().nth(1), Some("2026-11-23,3,2,1,66.7,5000,9000,45000"));
}

#[test]
fn html_reports_are_one_self_contained_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let store = fill(d);
    // A name that would break the page if it were not escaped.
    add_agent(&store, "1003", "<script>alert(1)</script> & Co");
    incoming(&store, "C5", DAY2 + ms(5000), "0215550103", Some("1003"), 500, 1000);
    let out_dir = tempfile::tempdir().unwrap();

    for kind in ["calls", "agents", "satisfaction"] {
        let file = out_dir.path().join(format!("{kind}.html"));
        let (code, out, err) = cli(
            d,
            &[
                "report",
                kind,
                "--from",
                "2026-11-24",
                "--to",
                "2026-11-26",
                "--format",
                "html",
                "--out",
                file.to_str().unwrap(),
            ],
        );
        assert_eq!(code, 0, "{kind}: {err}");
        assert!(out.is_empty(), "{kind}: the report goes to the file, not stdout");
        let html = std::fs::read_to_string(&file).unwrap();
        assert!(html.starts_with("<!DOCTYPE html>") && html.trim_end().ends_with("</html>"), "{kind}");
        assert!(html.contains("<svg"), "{kind}");
        assert!(html.contains("<table>") && html.contains("2026-11-24"), "{kind}");
        for forbidden in ["http://", "https://", "<script", "src=", "@import", "url("] {
            assert!(!html.contains(forbidden), "{kind} contains {forbidden}");
        }
        if kind != "calls" {
            assert!(html.contains("Li Lei") && html.contains("Han Meimei"), "{kind}");
        }
        if kind == "agents" {
            assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co"), "{html}");
        }
    }
    let calls = std::fs::read_to_string(out_dir.path().join("calls.html")).unwrap();
    for title in ["Calls per day", "Answer rate per day", "Waiting time per day"] {
        assert!(calls.contains(title), "{title}");
    }
    let satisfaction = std::fs::read_to_string(out_dir.path().join("satisfaction.html")).unwrap();
    for title in
        ["Average score per agent", "Scores per agent", "Average score per day", "By agent", "By day"]
    {
        assert!(satisfaction.contains(title), "{title}");
    }

    // Without --out the page goes to stdout.
    let (code, out, _) =
        cli(d, &["report", "agents", "--from", "2026-11-24", "--to", "2026-11-24", "--format", "html"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("<!DOCTYPE html>") && out.contains("<svg"));
}

#[test]
fn bad_report_arguments_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let _store = fill(d);
    let cases: [(&[&str], &str); 6] = [
        (&["report", "calls", "--from", "2026-11-31", "--to", "2026-12-01"], "--from"),
        (&["report", "calls", "--from", "2026-11-01", "--to", "01/12/2026"], "--to"),
        (&["report", "calls", "--from", "yesterday", "--to", "2026-12-01"], "--from"),
        (
            &["report", "calls", "--from", "2026-12-02", "--to", "2026-12-01"],
            "--to 2026-12-01 is before --from 2026-12-02",
        ),
        (&["report", "calls", "--from", "2026-11-01", "--to", "2026-12-01", "--format", "pdf"], "--format"),
        (
            &["report", "calls", "--from", "2026-11-01", "--to", "2026-12-01", "--utc-offset", "8"],
            "--utc-offset",
        ),
    ];
    for (args, needle) in cases {
        let (code, out, err) = cli(d, args);
        assert_ne!(code, 0, "{args:?}");
        assert!(out.is_empty(), "{args:?}: {out}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    let (_, _, err) = cli(d, &["report", "calls", "--from", "2026-11-31", "--to", "2026-12-01"]);
    assert!(err.contains("YYYY-MM-DD"), "{err}");
    let (code, _, err) = cli(d, &["report", "calls", "--from", "2000-01-01", "--to", "2026-12-01"]);
    assert_eq!(code, 1);
    assert!(err.contains("at most 3660 days"), "{err}");
    let (code, _, err) = cli(d, &["report", "weather", "--from", "2026-11-01", "--to", "2026-12-01"]);
    assert_eq!(code, 2);
    assert!(err.contains("calls") && err.contains("agents") && err.contains("satisfaction"), "{err}");
    let missing = d.join("no-such-dir").join("report.csv");
    let (code, _, err) = cli(
        d,
        &[
            "report",
            "calls",
            "--from",
            "2026-11-24",
            "--to",
            "2026-11-24",
            "--out",
            missing.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 1);
    assert!(err.contains("cannot write") && err.contains("report.csv"), "{err}");
}

#[test]
fn the_daemon_deletes_recordings_past_the_retention() {
    let mut d = crate::harness::Daemon::prepare(&format!(
        "{}\n[ivr]\nretention_days = 30\n",
        crate::harness::FAST_CONFIG
    ));
    let now = OffsetDateTime::now_utc();
    let (old, new) = {
        let store = open(d.data());
        incoming(&store, "C-OLD", now - time::Duration::days(40), "111", Some("1001"), 100, 1000);
        incoming(&store, "C-NEW", now - time::Duration::days(1), "222", Some("1001"), 100, 1000);
        let old = record(&store, d.data(), "V-OLD", "C-OLD", now - time::Duration::days(40), 400.0);
        let new = record(&store, d.data(), "V-NEW", "C-NEW", now - time::Duration::days(1), 500.0);
        (old, new)
    };
    assert!(old.is_file() && new.is_file());
    d.spawn();
    assert!(crate::harness::eventually(std::time::Duration::from_secs(10), || !old.exists()), "{}", d.log());
    assert!(new.is_file(), "a recording inside the retention is kept");
    let (code, out, _) = cli(d.data(), &["recordings", "list", "--json"]);
    assert_eq!(code, 0);
    assert_eq!(vocids(&out), ["V-NEW"]);
}
