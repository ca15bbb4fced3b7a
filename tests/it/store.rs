//! The SQLite store, through real database files in temporary directories.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use switchboard::audio::{read_wav, WavWriter};
use switchboard::store::{
    CdrStart, Direction, Disposition, RecordingState, Store, StoreError, StoreHandle, SCHEMA_VERSION,
};
use time::macros::datetime;
use time::OffsetDateTime;

const T0: OffsetDateTime = datetime!(2026-11-24 08:04:12.345 UTC);

fn ms(n: i64) -> time::Duration {
    time::Duration::milliseconds(n)
}

fn db_in(dir: &Path) -> PathBuf {
    dir.join("switchboard.db")
}

fn start(call_id: &str, at: OffsetDateTime) -> CdrStart {
    CdrStart {
        call_id: call_id.to_owned(),
        start: at,
        caller: "0215550100".into(),
        callee: "200".into(),
        trunk_port: Some(1),
        seat_port: None,
        direction: Direction::In,
    }
}

fn raw(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}

#[test]
fn migrates_an_empty_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_in(dir.path());
    let store = Store::open(&path).unwrap();
    assert!(store.cdr_list(10).wait().unwrap().is_empty());
    assert!(store.recordings_list(10).wait().unwrap().is_empty());
    drop(store);

    let conn = raw(&path);
    let version: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        tables,
        [
            "agents",
            "audit",
            "caller_list",
            "cdr",
            "ivr_input",
            "recordings",
            "sequences",
            "survey",
            "voicemail"
        ]
    );
    let indexes: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'index'
             AND name IN ('cdr_start_utc', 'recordings_call_id')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(indexes, 2);

    // Opening an up-to-date database again changes nothing.
    drop(conn);
    drop(Store::open(&path).unwrap());
    let version: u32 = raw(&path).query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, SCHEMA_VERSION);
}

#[test]
fn reopening_keeps_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_in(dir.path());
    let store = Store::open(&path).unwrap();
    store.cdr_start(start("C20261124-000001", T0)).wait().unwrap();
    store.recording_start("v1", "C20261124-000001", Path::new("recordings/v1.wav"), T0).wait().unwrap();
    drop(store);

    let store = Store::open(&path).unwrap();
    let cdr = store.cdr_get("C20261124-000001").wait().unwrap().unwrap();
    assert_eq!(cdr.start_utc, "2026-11-24T08:04:12.345Z");
    assert_eq!(cdr.disposition, Disposition::InProgress);
    let rec = store.recording_get("v1").wait().unwrap().unwrap();
    assert_eq!(rec.path, "recordings/v1.wav");
    assert_eq!(rec.state, RecordingState::Recording);
}

#[test]
fn refuses_a_database_from_a_newer_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_in(dir.path());
    {
        let conn = raw(&path);
        conn.execute_batch("CREATE TABLE future (x); PRAGMA user_version = 99;").unwrap();
    }
    let e = Store::open(&path).unwrap_err();
    assert!(
        matches!(e, StoreError::NewerSchema { found: 99, supported, .. } if supported == SCHEMA_VERSION),
        "{e}"
    );
    let msg = e.to_string();
    assert!(msg.contains("switchboard.db") && msg.contains("99"), "{msg}");
    // Left untouched: not even switched to WAL.
    let mode: String = raw(&path).query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "delete");
}

#[test]
fn cdr_lifecycle() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&db_in(dir.path())).unwrap();
    let id = "C20261124-000001";
    store.cdr_start(start(id, T0)).wait().unwrap();
    store.cdr_answer(id, T0 + ms(5250), Some(7)).wait().unwrap();
    // A second answer keeps the first time but may update the seat.
    store.cdr_answer(id, T0 + ms(9000), Some(8)).wait().unwrap();
    store.cdr_set_vocid(id, "20261124080412-000001").wait().unwrap();
    store.cdr_end(id, T0 + ms(65_500), Disposition::Answered, Some("normal clearing")).wait().unwrap();

    let cdr = store.cdr_get(id).wait().unwrap().unwrap();
    assert_eq!(cdr.call_id, id);
    assert_eq!(cdr.answer_utc.as_deref(), Some("2026-11-24T08:04:17.595Z"));
    assert_eq!(cdr.end_utc.as_deref(), Some("2026-11-24T08:05:17.845Z"));
    assert_eq!(cdr.seat_port, Some(8));
    assert_eq!(cdr.trunk_port, Some(1));
    assert_eq!(cdr.direction, Direction::In);
    assert_eq!(cdr.disposition, Disposition::Answered);
    assert_eq!(cdr.cause.as_deref(), Some("normal clearing"));
    assert_eq!(cdr.vocid.as_deref(), Some("20261124080412-000001"));
    assert_eq!(cdr.duration_ms, Some(65_500));
    assert_eq!(cdr.talk_ms, Some(60_250));

    // An unanswered call talks for 0 ms; a non-UTC time is stored in UTC.
    let other = "C20261124-000002";
    let local = (T0 + ms(1000)).to_offset(time::macros::offset!(+8));
    store.cdr_start(CdrStart { direction: Direction::Out, ..start(other, local) }).wait().unwrap();
    store.cdr_end(other, T0 + ms(31_000), Disposition::NoAnswer, None).wait().unwrap();
    let cdr = store.cdr_get(other).wait().unwrap().unwrap();
    assert_eq!(cdr.start_utc, "2026-11-24T08:04:13.345Z");
    assert_eq!((cdr.duration_ms, cdr.talk_ms), (Some(30_000), Some(0)));
    assert_eq!(cdr.cause, None);

    // Misuse is reported, not ignored.
    assert!(matches!(
        store.cdr_end(id, T0, Disposition::Busy, None).wait(),
        Err(StoreError::CdrAlreadyEnded(_))
    ));
    assert!(matches!(store.cdr_answer(id, T0, None).wait(), Err(StoreError::CdrAlreadyEnded(_))));
    assert!(matches!(
        store.cdr_end("C-nope", T0, Disposition::Busy, None).wait(),
        Err(StoreError::NoSuchCdr(_))
    ));
    assert!(matches!(store.cdr_set_vocid("C-nope", "v").wait(), Err(StoreError::NoSuchCdr(_))));
    assert!(matches!(
        store.cdr_end(id, T0, Disposition::InProgress, None).wait(),
        Err(StoreError::EndInProgress)
    ));
    assert!(matches!(store.cdr_start(start(id, T0)).wait(), Err(StoreError::Sqlite(_))));

    // Newest first, limited.
    for i in 3..=6 {
        store.cdr_start(start(&format!("C20261124-00000{i}"), T0 + ms(i * 1000))).wait().unwrap();
    }
    let list = store.cdr_list(3).wait().unwrap();
    let ids: Vec<&str> = list.iter().map(|c| c.call_id.as_str()).collect();
    assert_eq!(ids, ["C20261124-000006", "C20261124-000005", "C20261124-000004"]);
    assert!(store.cdr_get("C-nope").wait().unwrap().is_none());
}

#[test]
fn recording_lifecycle() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&db_in(dir.path())).unwrap();
    let p = |v: &str| PathBuf::from(format!("recordings/2026/11/24/{v}.wav"));
    store.recording_start("v1", "C1", &p("v1"), T0).wait().unwrap();
    store.recording_start("v2", "C1", &p("v2"), T0 + ms(10)).wait().unwrap();
    store.recording_start("v3", "C2", &p("v3"), T0 + ms(20)).wait().unwrap();
    store.recording_end("v1", T0 + ms(2000), 16_000).wait().unwrap();
    store.recording_failed("v2", T0 + ms(3000), 80).wait().unwrap();

    let v1 = store.recording_get("v1").wait().unwrap().unwrap();
    assert_eq!(v1.state, RecordingState::Complete);
    assert_eq!(v1.samples, Some(16_000));
    assert_eq!(v1.ended_utc.as_deref(), Some("2026-11-24T08:04:14.345Z"));
    assert_eq!(v1.path, "recordings/2026/11/24/v1.wav");
    assert_eq!(store.recording_get("v2").wait().unwrap().unwrap().state, RecordingState::Damaged);

    let list = store.recordings_list(10).wait().unwrap();
    assert_eq!(list.iter().map(|r| r.vocid.as_str()).collect::<Vec<_>>(), ["v3", "v2", "v1"]);
    let of_call = store.recordings_for_call("C1").wait().unwrap();
    assert_eq!(of_call.iter().map(|r| r.vocid.as_str()).collect::<Vec<_>>(), ["v1", "v2"]);

    assert!(matches!(store.recording_end("v1", T0, 1).wait(), Err(StoreError::RecordingAlreadyEnded(_))));
    assert!(matches!(store.recording_end("nope", T0, 1).wait(), Err(StoreError::NoSuchRecording(_))));
    assert!(store.recording_start("v1", "C9", &p("x"), T0).wait().is_err());
    assert!(store.recording_get("nope").wait().unwrap().is_none());
}

#[test]
fn ids_never_repeat_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_in(dir.path());
    let store = Store::open(&path).unwrap();
    assert_eq!(store.next_call_id(T0).wait().unwrap(), "C20261124-000001");
    assert_eq!(store.next_call_id(T0).wait().unwrap(), "C20261124-000002");
    assert_eq!(store.next_vocid(T0).wait().unwrap(), "20261124080412-000001");
    assert_eq!(store.next_vocid(T0).wait().unwrap(), "20261124080412-000002");
    drop(store);

    let store = Store::open(&path).unwrap();
    assert_eq!(store.next_call_id(T0).wait().unwrap(), "C20261124-000003");
    assert_eq!(store.next_vocid(T0).wait().unwrap(), "20261124080412-000003");
    // Call ids count per UTC day; a later local evening can already be the next UTC day.
    let next_day = datetime!(2026-11-24 21:00 -05:00);
    assert_eq!(store.next_call_id(next_day).wait().unwrap(), "C20261125-000001");
    // And back on the earlier day (a clock step), the old day's counter continues.
    assert_eq!(store.next_call_id(T0).wait().unwrap(), "C20261124-000004");

    // Many threads at once still get distinct ids.
    let mut threads = Vec::new();
    for _ in 0..4 {
        let s = store.clone();
        threads.push(std::thread::spawn(move || {
            (0..50).map(|_| s.next_vocid(T0).wait().unwrap()).collect::<Vec<_>>()
        }));
    }
    let mut all: Vec<String> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usable_from_async_code() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_in(dir.path());
    let store = tokio::task::spawn_blocking(move || Store::open(&path)).await.unwrap().unwrap();
    let id = store.next_call_id(T0).await.unwrap();
    store.cdr_start(start(&id, T0)).await.unwrap();
    // Requests from many tasks interleave safely.
    let mut tasks = Vec::new();
    for i in 0..20 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            let id = s.next_call_id(T0).await?;
            s.cdr_start(start(&id, T0 + ms(i))).await?;
            s.cdr_end(&id, T0 + ms(i + 100), Disposition::Busy, None).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(store.cdr_list(100).await.unwrap().len(), 21);
    // The last handle's drop joins the store thread; do it off the runtime's workers.
    tokio::task::spawn_blocking(move || drop(store)).await.unwrap();
}

#[test]
fn bad_values_in_the_database_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_in(dir.path());
    let store = Store::open(&path).unwrap();
    store.cdr_start(start("C1", T0)).wait().unwrap();
    {
        let conn = raw(&path);
        conn.execute_batch(
            "PRAGMA ignore_check_constraints = ON;
             UPDATE cdr SET disposition = 'bogus', trunk_port = 70000 WHERE call_id = 'C1';",
        )
        .unwrap();
    }
    let e = store.cdr_get("C1").wait().unwrap_err();
    assert!(matches!(e, StoreError::Sqlite(_)), "{e}");
    assert!(store.cdr_list(10).wait().is_err());
}

/// Leaves a WAV file the way a killed recorder would: one flush, then more audio written
/// past the header's sizes.
fn killed_recording(path: &Path) -> u64 {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut w = WavWriter::create(path).unwrap();
    w.write(&[100; 800]).unwrap();
    w.flush().unwrap();
    w.write(&[200; 20_000]).unwrap();
    std::mem::forget(w);
    (std::fs::metadata(path).unwrap().len() - 44) / 2
}

#[test]
fn recovery_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let store = Store::open(&db_in(data)).unwrap();
    // Two calls up when the "crash" happens, one finished.
    store.cdr_start(start("C1", T0)).wait().unwrap();
    store.cdr_answer("C1", T0 + ms(2000), Some(3)).wait().unwrap();
    store.cdr_start(start("C2", T0 + ms(500))).wait().unwrap();
    store.cdr_start(start("C3", T0)).wait().unwrap();
    store.cdr_end("C3", T0 + ms(900), Disposition::Busy, None).wait().unwrap();
    // Recordings: one cut short, one whose file vanished, one garbage, one complete.
    let rel = |v: &str| PathBuf::from(format!("recordings/2026/11/24/{v}.wav"));
    for v in ["cut", "gone", "junk", "done"] {
        store.recording_start(v, "C1", &rel(v), T0).wait().unwrap();
    }
    let on_disk = killed_recording(&data.join(rel("cut")));
    std::fs::write(data.join(rel("junk")), b"not a wav at all").unwrap();
    store.recording_end("done", T0 + ms(1000), 8000).wait().unwrap();
    drop(store);

    let now = T0 + ms(3_600_000);
    let store = Store::open(&db_in(data)).unwrap();
    let report = store.recover_after_crash(data, now).wait().unwrap();
    assert_eq!(report.interrupted_calls, ["C1", "C2"]);
    assert_eq!(report.repaired.len(), 1);
    assert_eq!(report.repaired[0].vocid, "cut");
    assert_eq!(report.repaired[0].samples, on_disk);
    assert_eq!(report.missing, ["gone"]);
    assert_eq!(report.damaged.len(), 1);
    assert_eq!(report.damaged[0].0, "junk");
    assert!(report.damaged[0].1.contains("not a RIFF file"), "{}", report.damaged[0].1);

    let c1 = store.cdr_get("C1").wait().unwrap().unwrap();
    assert_eq!(c1.disposition, Disposition::Interrupted);
    assert_eq!(c1.cause.as_deref(), Some("daemon restarted"));
    assert_eq!(c1.end_utc.as_deref(), Some("2026-11-24T09:04:12.345Z"));
    assert_eq!((c1.duration_ms, c1.talk_ms), (Some(3_600_000), Some(3_598_000)));
    let c2 = store.cdr_get("C2").wait().unwrap().unwrap();
    assert_eq!((c2.disposition, c2.talk_ms), (Disposition::Interrupted, Some(0)));
    assert_eq!(store.cdr_get("C3").wait().unwrap().unwrap().disposition, Disposition::Busy);

    let cut = store.recording_get("cut").wait().unwrap().unwrap();
    assert_eq!(cut.state, RecordingState::Repaired);
    assert_eq!(cut.samples, Some(on_disk));
    // The end is estimated from the audio length: 20 800 samples are 2.6 s.
    assert_eq!(on_disk, 20_800);
    assert_eq!(cut.ended_utc.as_deref(), Some("2026-11-24T08:04:14.945Z"));
    assert_eq!(read_wav(&data.join(rel("cut"))).unwrap().samples.len() as u64, on_disk);
    assert_eq!(store.recording_get("gone").wait().unwrap().unwrap().state, RecordingState::Missing);
    assert_eq!(store.recording_get("junk").wait().unwrap().unwrap().state, RecordingState::Damaged);
    let done = store.recording_get("done").wait().unwrap().unwrap();
    assert_eq!((done.state, done.samples), (RecordingState::Complete, Some(8000)));

    // Recovery is idempotent.
    assert!(store.recover_after_crash(data, now).wait().unwrap().is_empty());
}

// ---- kill -9 of a process in the middle of writing ----

const CHILD_ENV: &str = "SB_STORE_CHILD";

/// Runs only as the child of `survives_kill_9`: writes calls and recordings as fast as it
/// can and prints "ACK <n> <call id>" after each is committed. Returns at once in a normal
/// test run.
#[test]
fn child_writer() {
    let Ok(data) = std::env::var(CHILD_ENV) else {
        return;
    };
    let data = PathBuf::from(data);
    let store = Store::open(&db_in(&data)).unwrap();
    let mut out = std::io::stdout().lock();
    let mut open_files = Vec::new();
    let started = Instant::now();
    // Bounded, so an orphaned child cannot run forever.
    for n in 0..100_000u32 {
        if started.elapsed() > Duration::from_secs(60) {
            break;
        }
        let at = T0 + ms(i64::from(n) * 10);
        let call_id = store.next_call_id(at).wait().unwrap();
        store.cdr_start(start(&call_id, at)).wait().unwrap();
        if n % 2 == 1 {
            store.cdr_answer(&call_id, at + ms(5), Some(2)).wait().unwrap();
        }
        if n % 3 == 0 {
            // A finished call, which recovery must leave alone.
            store.cdr_end(&call_id, at + ms(7), Disposition::NoAnswer, None).wait().unwrap();
        }
        if n % 4 == 0 {
            let vocid = store.next_vocid(at).wait().unwrap();
            let rel = PathBuf::from(format!("recordings/{vocid}.wav"));
            store.recording_start(&vocid, &call_id, &rel, at).wait().unwrap();
            std::fs::create_dir_all(data.join("recordings")).unwrap();
            let mut w = WavWriter::create(&data.join(&rel)).unwrap();
            w.write(&[7; 1600]).unwrap();
            w.flush().unwrap();
            w.write(&[8; 1600]).unwrap();
            // Kept open and unflushed, as a live recording would be.
            open_files.push(w);
        }
        writeln!(out, "ACK {n} {call_id}").unwrap();
        out.flush().unwrap();
    }
    // Never dropped normally: the parent kills the process.
    std::mem::forget(open_files);
}

#[test]
fn survives_kill_9() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "store::child_writer", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut acked: Vec<(u32, String)> = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let mut words = line.split_whitespace();
        if words.next() != Some("ACK") {
            continue;
        }
        let n: u32 = words.next().unwrap().parse().unwrap();
        acked.push((n, words.next().unwrap().to_owned()));
        if acked.len() == 40 {
            // Child::kill sends SIGKILL: no destructors, no flushes, no clean close.
            child.kill().unwrap();
            break;
        }
    }
    child.wait().unwrap();
    assert_eq!(acked.len(), 40, "the child stopped early");

    let store = Store::open(&db_in(data)).unwrap();
    let report = store.recover_after_crash(data, T0 + ms(3_600_000)).wait().unwrap();
    for (n, call_id) in &acked {
        let cdr = store
            .cdr_get(call_id)
            .wait()
            .unwrap()
            .unwrap_or_else(|| panic!("acknowledged CDR {call_id} was lost"));
        if n % 3 == 0 {
            assert_eq!(cdr.disposition, Disposition::NoAnswer, "{call_id}");
        } else {
            assert_eq!(cdr.disposition, Disposition::Interrupted, "{call_id}");
            assert_eq!(cdr.cause.as_deref(), Some("daemon restarted"));
            assert!(report.interrupted_calls.contains(call_id), "{call_id}");
        }
        if n % 2 == 1 {
            assert!(cdr.answer_utc.is_some(), "{call_id}");
        }
    }
    let recordings = store.recordings_list(1000).wait().unwrap();
    let acked_recordings = acked.iter().filter(|(n, _)| n % 4 == 0).count();
    assert!(recordings.len() >= acked_recordings);
    for (n, call_id) in acked.iter().filter(|(n, _)| n % 4 == 0) {
        let rec = recordings
            .iter()
            .find(|r| &r.call_id == call_id)
            .unwrap_or_else(|| panic!("recording of acknowledged call {n} was lost"));
        assert_eq!(rec.state, RecordingState::Repaired, "{call_id}");
        // At least the flushed part survives; the rest is up to what reached the file.
        assert!(rec.samples.unwrap() >= 1600, "{call_id}: {:?}", rec.samples);
        let wav = read_wav(&data.join(&rec.path)).unwrap();
        assert_eq!(wav.samples.len() as u64, rec.samples.unwrap());
        assert!(wav.samples[..1600].iter().all(|&s| s == 7));
    }
    // Ids keep counting after the crash instead of starting over.
    let next = store.next_call_id(T0).wait().unwrap();
    assert!(acked.iter().all(|(_, id)| id != &next), "{next} was reused");
}

/// Keeps `StoreHandle` in the public API checked for the bounds callers rely on.
#[allow(dead_code)]
fn handle_is_shareable(h: StoreHandle) -> impl Send + Sync + Clone {
    h
}
