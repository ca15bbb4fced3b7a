//! Agent accounts: the schema upgrade, password hashing, login, the failed-login limiter,
//! single sign-on tickets and `switchboard user`, on real database files and real argon2.

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use switchboard::accounts::{
    self, admin_hint, authenticate, hash_password, verify_password, AccountError, AuthError, LimiterSettings,
    LoginLimiter, Tickets, NO_ADMIN_HINT,
};
use switchboard::store::{
    AuditEntry, AuditResult, CdrStart, Direction, Disposition, Role, Store, StoreHandle, SCHEMA_VERSION,
};
use time::macros::datetime;
use time::OffsetDateTime;

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");
const T0: OffsetDateTime = datetime!(2026-11-24 08:04:12.345 UTC);

/// The schema of version 1 as released, frozen here so that the upgrade is tested from
/// what real installations have on disk rather than from whatever the code says today.
const SCHEMA_V1: &str = "
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
    CREATE TABLE sequences (
        name  TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    ) WITHOUT ROWID;
    PRAGMA user_version = 1;
";

fn db_in(dir: &Path) -> PathBuf {
    dir.join("switchboard.db")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn addr(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Runs the real binary with `input` on stdin; returns exit code, stdout and stderr.
fn cli(data_dir: &Path, args: &[&str], input: Option<&str>) -> (i32, String, String) {
    cli_bytes(data_dir, args, input.map(str::as_bytes))
}

fn cli_bytes(data_dir: &Path, args: &[&str], input: Option<&[u8]>) -> (i32, String, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = input {
        // A command that fails before reading its input (an unknown id, say) may already have
        // exited: a broken pipe here is its business, the exit code and stderr tell.
        if let Err(e) = child.stdin.take().unwrap().write_all(input) {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
        }
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_version_1_database_is_upgraded_in_place_and_keeps_its_cdrs() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_in(dir.path());
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(SCHEMA_V1).unwrap();
        conn.execute(
            "INSERT INTO cdr (call_id, start_utc, end_utc, caller, callee, trunk_port, direction,
                              disposition, duration_ms, talk_ms)
             VALUES ('C20261124-000001', '2026-11-24T08:04:12.345Z', '2026-11-24T08:05:12.345Z',
                     '0215550100', '200', 1, 'in', 'no_answer', 60000, 0)",
            [],
        )
        .unwrap();
        conn.execute("INSERT INTO sequences (name, value) VALUES ('vocid', 41)", []).unwrap();
    }

    let store = Store::open(&path).unwrap();
    let cdr = store.cdr_get("C20261124-000001").wait().unwrap().unwrap();
    assert_eq!(cdr.disposition, Disposition::NoAnswer);
    assert_eq!(cdr.duration_ms, Some(60000));
    // The counters survive too, so ids never repeat across the upgrade.
    assert!(store.next_vocid(T0).wait().unwrap().ends_with("-000042"));
    // The old tables still work and the new ones are there.
    store
        .cdr_start(CdrStart {
            call_id: "C20261124-000002".into(),
            start: T0,
            caller: "0215550101".into(),
            callee: "200".into(),
            trunk_port: Some(2),
            seat_port: None,
            direction: Direction::In,
        })
        .wait()
        .unwrap();
    assert_eq!(store.cdr_list(10).wait().unwrap().len(), 2);
    assert!(store.agent_list().wait().unwrap().is_empty());
    assert!(store.audit_list(10).wait().unwrap().is_empty());
    drop(store);

    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    const { assert!(SCHEMA_VERSION >= 2) };
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for table in ["agents", "audit", "cdr", "recordings", "sequences"] {
        assert!(tables.iter().any(|t| t == table), "{table} missing from {tables:?}");
    }
    let index: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'audit_at_utc'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(index, 1);
    // The database constrains roles and results itself, whoever writes to it.
    let bad_role = conn.execute(
        "INSERT INTO agents (id, name, role, password_hash, created_utc, updated_utc)
         VALUES ('x', 'x', 'root', 'h', 't', 't')",
        [],
    );
    assert!(bad_role.is_err());
    let bad_result =
        conn.execute("INSERT INTO audit (at_utc, actor, action, result) VALUES ('t', 'a', 'b', 'maybe')", []);
    assert!(bad_result.is_err());
}

#[test]
fn a_newer_database_is_still_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_in(dir.path());
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(&format!("PRAGMA user_version = {};", SCHEMA_VERSION + 1)).unwrap();
    }
    let e = Store::open(&path).unwrap_err();
    assert!(e.to_string().contains("newer Switchboard"), "{e}");
}

#[test]
fn hashes_are_salted_argon2id_and_verify_only_the_right_password() {
    let a = hash_password("correct horse").unwrap();
    let b = hash_password("correct horse").unwrap();
    assert!(a.starts_with("$argon2id$"), "{a}");
    assert_ne!(a, b, "every hash has its own salt");
    assert!(verify_password(&a, "correct horse"));
    assert!(verify_password(&b, "correct horse"));
    assert!(!verify_password(&a, "correct horsE"));
    assert!(!verify_password(&a, ""));
    for malformed in
        ["", "plain text", "$argon2id$", "$argon2id$v=19$m=19456,t=2,p=1$!!$??", &a[..a.len() - 4]]
    {
        assert!(!verify_password(malformed, "correct horse"), "{malformed:?}");
    }
}

/// A store with agent 1001 (password "correct horse") and disabled agent 1002 ("battery
/// staple"), added the way `switchboard user add` does.
fn store_with_agents(dir: &Path) -> StoreHandle {
    let store = Store::open(&db_in(dir)).unwrap();
    accounts::add_agent(&store, "test", "1001", "Ann", Role::Supervisor, "correct horse").unwrap();
    accounts::add_agent(&store, "test", "1002", "Bob", Role::Agent, "battery staple").unwrap();
    let entry = AuditEntry::new(T0, "test", "user.disable", AuditResult::Ok).target("1002");
    store.agent_set_disabled("1002", true, T0, entry).wait().unwrap();
    store
}

#[test]
fn login_needs_the_right_password_and_never_tells_which_part_was_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_agents(dir.path());
    let rt = runtime();

    let agent = rt.block_on(authenticate(&store, "1001", "correct horse")).unwrap();
    assert_eq!((agent.id.as_str(), agent.name.as_str(), agent.role), ("1001", "Ann", Role::Supervisor));

    let wrong_password = rt.block_on(authenticate(&store, "1001", "correct horsE")).unwrap_err();
    let unknown = rt.block_on(authenticate(&store, "9999", "correct horse")).unwrap_err();
    let malformed = rt.block_on(authenticate(&store, "no such id!", "correct horse")).unwrap_err();
    for e in [&wrong_password, &unknown, &malformed] {
        assert!(matches!(e, AuthError::BadCredentials), "{e}");
        assert_eq!(e.to_string(), "unknown agent or wrong password");
    }

    // A disabled account says so only to someone who knows its password.
    let e = rt.block_on(authenticate(&store, "1002", "battery staple")).unwrap_err();
    assert!(matches!(&e, AuthError::Disabled(id) if id == "1002"), "{e}");
    let e = rt.block_on(authenticate(&store, "1002", "wrong")).unwrap_err();
    assert!(matches!(e, AuthError::BadCredentials), "{e}");
}

#[test]
fn an_unknown_agent_costs_a_password_check_too() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_agents(dir.path());
    let rt = runtime();
    let fastest = |id: &str| {
        (0..3)
            .map(|_| {
                let t = Instant::now();
                let _ = rt.block_on(authenticate(&store, id, "a wrong password"));
                t.elapsed()
            })
            .min()
            .unwrap()
    };
    let known = fastest("1001");
    let unknown = fastest("9999");
    // Without the dummy check an unknown id answers in microseconds, a known one in tens of
    // milliseconds; the loose bound leaves room for a busy machine.
    assert!(unknown * 4 > known, "unknown {unknown:?} vs known {known:?}");
}

#[test]
fn the_limiter_locks_accounts_and_addresses_and_lets_them_go_again() {
    let mut limiter = LoginLimiter::new(LimiterSettings::default());
    let t0 = Instant::now();
    let s = Duration::from_secs;
    let here = addr("192.0.2.1");

    for i in 0..4 {
        assert_eq!(limiter.check(t0 + s(i), "1001", here), Ok(()));
        limiter.failure(t0 + s(i), "1001", here);
    }
    assert_eq!(limiter.check(t0 + s(4), "1001", here), Ok(()));
    limiter.failure(t0 + s(4), "1001", here);
    // The fifth failure locks the account for five minutes from then.
    assert_eq!(limiter.check(t0 + s(5), "1001", here), Err(s(299)));
    assert_eq!(limiter.check(t0 + s(5), "1001", addr("198.51.100.9")), Err(s(299)));
    // Other accounts from the same address are still allowed.
    assert_eq!(limiter.check(t0 + s(5), "1002", here), Ok(()));
    // When the lock ends, the count starts again.
    assert_eq!(limiter.check(t0 + s(304), "1001", here), Ok(()));
    limiter.failure(t0 + s(304), "1001", here);
    assert_eq!(limiter.check(t0 + s(305), "1001", here), Ok(()));

    // Failures spread wider than the window never lock.
    let mut limiter = LoginLimiter::default();
    for i in 0..10 {
        limiter.failure(t0 + s(i * 100), "1001", here);
        assert_eq!(limiter.check(t0 + s(i * 100 + 1), "1001", here), Ok(()), "failure {i}");
    }

    // A success forgets the account's failures.
    let mut limiter = LoginLimiter::default();
    for i in 0..4 {
        limiter.failure(t0 + s(i), "1001", here);
    }
    limiter.success(t0 + s(4), "1001", here);
    limiter.failure(t0 + s(5), "1001", here);
    assert_eq!(limiter.check(t0 + s(6), "1001", here), Ok(()));

    // Twenty failures from one address, spread over accounts, lock the address for every
    // account; a success on one account does not unlock it.
    let mut limiter = LoginLimiter::default();
    let attacker = addr("203.0.113.5");
    for i in 0..20 {
        limiter.failure(t0, &format!("{}", 2000 + i), attacker);
        if i == 10 {
            limiter.success(t0, "1001", attacker);
        }
    }
    assert_eq!(limiter.check(t0 + s(1), "1001", attacker), Err(s(299)));
    assert_eq!(limiter.check(t0 + s(1), "1001", here), Ok(()));
    assert_eq!(limiter.check(t0 + s(300), "1001", attacker), Ok(()));

    // Custom settings are honoured.
    let settings = LimiterSettings {
        account_failures: 2,
        address_failures: 3,
        window: s(10),
        lockout: s(60),
        max_keys: 100,
    };
    let mut limiter = LoginLimiter::new(settings);
    limiter.failure(t0, "1001", here);
    limiter.failure(t0 + s(1), "1001", here);
    assert_eq!(limiter.check(t0 + s(1), "1001", here), Err(s(60)));
}

#[test]
fn tickets_are_one_time_and_expire() {
    let mut tickets = Tickets::default();
    let t0 = Instant::now();
    let a = tickets.issue(t0, "1001");
    let b = tickets.issue(t0, "1001");
    assert_eq!(a.len(), 32);
    assert!(a.bytes().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()), "{a}");
    assert_ne!(a, b);

    assert_eq!(tickets.redeem(t0 + Duration::from_secs(59), &a).as_deref(), Some("1001"));
    assert_eq!(tickets.redeem(t0 + Duration::from_secs(59), &a), None, "a ticket works once");
    assert_eq!(tickets.redeem(t0, "not a ticket"), None);

    // Expired: refused, and gone.
    assert_eq!(tickets.redeem(t0 + Duration::from_secs(60), &b), None);
    assert!(tickets.is_empty());

    let c = tickets.issue(t0, "1003");
    tickets.issue(t0 + Duration::from_secs(30), "1004");
    tickets.purge(t0 + Duration::from_secs(61));
    assert_eq!(tickets.len(), 1);
    assert_eq!(tickets.redeem(t0 + Duration::from_secs(61), &c), None);
}

#[test]
fn account_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_agents(dir.path());
    let e = accounts::add_agent(&store, "test", "1001", "Ann", Role::Agent, "another one").unwrap_err();
    assert!(matches!(e, AccountError::Exists(_)), "{e}");
    assert!(e.to_string().contains("use `switchboard user passwd 1001`"), "{e}");
    let e = accounts::add_agent(&store, "test", "1003", "Cy", Role::Agent, "1003").unwrap_err();
    assert!(matches!(e, AccountError::PasswordTooShort), "{e}");
    let e = accounts::add_agent(&store, "test", "agent1003", "Cy", Role::Agent, "agent1003").unwrap_err();
    assert!(matches!(e, AccountError::PasswordIsId), "{e}");
    let e = accounts::set_password(&store, "test", "9999", "long enough").unwrap_err();
    assert_eq!(e.to_string(), "no agent with id 9999");
    let e = accounts::delete_agent(&store, "test", "9999").unwrap_err();
    assert!(matches!(e, AccountError::NoSuchAgent(_)), "{e}");

    // Every refusal is in the audit trail, without the password.
    let audit = store.audit_list(100).wait().unwrap();
    let failed: Vec<(&str, &str)> = audit
        .iter()
        .filter(|e| e.result == AuditResult::Failed)
        .map(|e| (e.action.as_str(), e.target.as_deref().unwrap_or("")))
        .collect();
    assert_eq!(
        failed,
        [
            ("user.del", "9999"),
            ("user.passwd", "9999"),
            ("user.add", "agent1003"),
            ("user.add", "1003"),
            ("user.add", "1001")
        ]
    );
    assert!(audit.iter().all(|e| !format!("{e:?}").contains("another one")));
}

#[test]
fn the_admin_hint_appears_until_there_is_an_enabled_admin() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_agents(dir.path());
    let rt = runtime();
    assert_eq!(rt.block_on(admin_hint(&store)).unwrap().as_deref(), Some(NO_ADMIN_HINT));
    assert!(NO_ADMIN_HINT.contains("switchboard user add ID --role admin"));
    accounts::add_agent(&store, "test", "root1", "Root", Role::Admin, "long enough").unwrap();
    assert_eq!(rt.block_on(admin_hint(&store)).unwrap(), None);
    let entry = AuditEntry::new(T0, "test", "user.disable", AuditResult::Ok).target("root1");
    store.agent_set_disabled("root1", true, T0, entry).wait().unwrap();
    assert!(rt.block_on(admin_hint(&store)).unwrap().is_some());
}

#[test]
fn the_user_command_manages_accounts_while_the_database_is_open() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();

    // Before any account: list and del have no database to work on.
    let (code, _, err) = cli(data, &["user", "list"], None);
    assert_eq!(code, 1);
    assert!(err.contains("no accounts have been created yet"), "{err}");

    let (code, out, err) = cli(
        data,
        &["user", "add", "1001", "--name", "Ann Admin", "--role", "admin"],
        Some("correct horse\n"),
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "added admin 1001\n");

    // The daemon keeps the database open; the command line works beside it.
    let daemon_side = Store::open(&db_in(data)).unwrap();

    // A password without a final newline, or with CRLF, is one line too.
    let (code, _, err) = cli(data, &["user", "add", "1002"], Some("battery staple"));
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = cli(data, &["user", "add", "1003", "--role", "supervisor"], Some("tr0ub4dor&3\r\n"));
    assert_eq!(code, 0, "{err}");

    let (code, out, err) = cli(data, &["user", "list"], None);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<Vec<&str>> =
        out.lines().map(|l| l.split("  ").map(str::trim).filter(|c| !c.is_empty()).collect()).collect();
    assert_eq!(lines[0], ["ID", "NAME", "ROLE", "DISABLED", "CREATED"]);
    assert_eq!(lines[1][..4], ["1001", "Ann Admin", "admin", "no"]);
    assert_eq!(lines[2][..4], ["1002", "1002", "agent", "no"]);
    assert_eq!(lines[3][..4], ["1003", "1003", "supervisor", "no"]);
    assert!(!out.contains("argon2"), "{out}");
    assert!(err.is_empty(), "no admin hint while there is an admin: {err}");

    let rt = runtime();
    rt.block_on(authenticate(&daemon_side, "1002", "battery staple")).unwrap();
    rt.block_on(authenticate(&daemon_side, "1003", "tr0ub4dor&3")).unwrap();

    // Errors: duplicate, weak password, bad role, bad id, unknown id, no password.
    let (code, _, err) = cli(data, &["user", "add", "1001"], Some("another password\n"));
    assert_eq!(code, 1);
    assert!(
        err.contains("agent 1001 already exists") && err.contains("switchboard user passwd 1001"),
        "{err}"
    );
    let (code, _, err) = cli(data, &["user", "add", "1004"], Some("short\n"));
    assert_eq!(code, 1);
    assert!(err.contains("password is too short: it needs at least 8 characters"), "{err}");
    let (code, _, err) = cli(data, &["user", "add", "agent1004"], Some("agent1004\n"));
    assert_eq!(code, 1);
    assert!(err.contains("must not be the same as the agent id"), "{err}");
    let (code, _, err) = cli(data, &["user", "add", "1004", "--role", "boss"], Some("long enough\n"));
    assert_eq!(code, 2);
    assert!(
        err.contains("invalid value 'boss'") && err.contains("expected agent, supervisor or admin"),
        "{err}"
    );
    let (code, _, err) = cli(data, &["user", "add", "10 04"], Some("long enough\n"));
    assert_eq!(code, 1);
    assert!(err.contains("may contain only letters"), "{err}");
    let (code, _, err) = cli(data, &["user", "passwd", "9999"], Some("long enough\n"));
    assert_eq!(code, 1);
    assert!(err.contains("no agent with id 9999"), "{err}");
    let (code, _, err) = cli(data, &["user", "add", "1004"], None);
    assert_eq!(code, 1);
    assert!(err.contains("no password on stdin"), "{err}");
    let (code, _, err) = cli_bytes(data, &["user", "add", "1004"], Some(b"\xff\xfe long enough\n"));
    assert_eq!(code, 1);
    assert!(err.contains("must be UTF-8"), "{err}");
    assert_eq!(daemon_side.agent_get("1004").wait().unwrap(), None);

    // passwd: the old password stops working, the new one works.
    let (code, out, err) = cli(data, &["user", "passwd", "1002"], Some("new battery staple\n"));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "changed the password of 1002\n");
    let e = rt.block_on(authenticate(&daemon_side, "1002", "battery staple")).unwrap_err();
    assert!(matches!(e, AuthError::BadCredentials));
    rt.block_on(authenticate(&daemon_side, "1002", "new battery staple")).unwrap();

    // del, and deleting again.
    let (code, out, err) = cli(data, &["user", "del", "1001"], None);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "deleted 1001\n");
    let (code, _, err) = cli(data, &["user", "del", "1001"], None);
    assert_eq!(code, 1);
    assert!(err.contains("no agent with id 1001"), "{err}");
    assert!(rt.block_on(authenticate(&daemon_side, "1001", "correct horse")).is_err());

    // With the admin gone, list says how to make one.
    let (code, out, err) = cli(data, &["user", "list"], None);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(err.contains(NO_ADMIN_HINT), "{err}");

    // Every change is in the audit trail with actor "cli", and no password anywhere.
    let audit = daemon_side.audit_list(100).wait().unwrap();
    let rows: Vec<(&str, &str, &str, AuditResult)> = audit
        .iter()
        .rev()
        .map(|e| (e.actor.as_str(), e.action.as_str(), e.target.as_deref().unwrap_or(""), e.result))
        .collect();
    let ok = AuditResult::Ok;
    let failed = AuditResult::Failed;
    assert_eq!(
        rows,
        [
            ("cli", "user.add", "1001", ok),
            ("cli", "user.add", "1002", ok),
            ("cli", "user.add", "1003", ok),
            ("cli", "user.add", "1004", failed),
            ("cli", "user.add", "agent1004", failed),
            ("cli", "user.passwd", "1002", ok),
            ("cli", "user.del", "1001", ok),
            ("cli", "user.del", "1001", failed),
        ]
    );
    assert_eq!(audit.last().unwrap().detail.as_deref(), Some("role admin"));
    for e in &audit {
        let text = format!("{e:?}");
        assert!(!text.contains("battery") && !text.contains("horse"), "{text}");
    }
}
