//! Unit tests of the accounts and audit tables, on real database files.

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
