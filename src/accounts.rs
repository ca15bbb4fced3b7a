//! Agent accounts: password hashing and policy, login, the failed-login limiter, single
//! sign-on tickets and the account management behind `switchboard user`.
//!
//! Nothing here does IO except through the store. Password hashes are argon2id in PHC
//! string format (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`), so the parameters travel with
//! each hash and can be raised later without invalidating stored ones. Hashing is slow on
//! purpose (tens of milliseconds), so the async entry points run it on tokio's blocking
//! pool instead of a runtime worker.
//!
//! The limiter and the tickets are sans-IO: they take `now` as an argument and keep their
//! state in memory, so the control-protocol server owns them and tests drive them with
//! made-up instants.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use time::OffsetDateTime;

use crate::store::{format_utc, AgentRecord, AuditEntry, AuditResult, Role, StoreError, StoreHandle};

/// The shortest password accepted, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// The longest password accepted, in bytes. Argon2 copes with more, but nobody types more,
/// and the bound keeps a hostile client from making the server hash megabytes.
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// The longest agent id, in characters.
pub const MAX_AGENT_ID_CHARS: usize = 32;

/// The audit actor recorded for changes made with `switchboard user`.
pub const CLI_ACTOR: &str = "cli";

/// What the daemon logs at start when no account can administer it.
pub const NO_ADMIN_HINT: &str =
    "no admin account: create one with `switchboard user add ID --role admin` (the password is read from stdin)";

/// Errors from account management.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("agent id must not be empty")]
    EmptyId,
    #[error("agent id {0:?} is too long: at most {MAX_AGENT_ID_CHARS} characters")]
    IdTooLong(String),
    #[error("agent id {0:?} may contain only letters A-Z and a-z, digits, '_', '.' and '-'")]
    IdCharacters(String),
    #[error("password is too short: it needs at least {MIN_PASSWORD_CHARS} characters")]
    PasswordTooShort,
    #[error("password is too long: at most {MAX_PASSWORD_BYTES} bytes")]
    PasswordTooLong,
    #[error("password must not be the same as the agent id")]
    PasswordIsId,
    #[error("agent {0} already exists (use `switchboard user passwd {0}` to change its password)")]
    Exists(String),
    #[error("no agent with id {0}")]
    NoSuchAgent(String),
    #[error("cannot hash the password: {0}")]
    Hash(String),
    #[error("the password hashing task failed: {0}")]
    Task(String),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for AccountError {
    fn from(e: StoreError) -> AccountError {
        match e {
            StoreError::AgentExists(id) => AccountError::Exists(id),
            StoreError::NoSuchAgent(id) => AccountError::NoSuchAgent(id),
            other => AccountError::Store(other),
        }
    }
}

/// Why a login was refused. The message never says whether the id or the password was
/// wrong, so that it cannot be used to find out which accounts exist.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("unknown agent or wrong password")]
    BadCredentials,
    /// Only reported after the right password, so it reveals nothing to a guesser.
    #[error("account {0} is disabled")]
    Disabled(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the password check failed: {0}")]
    Task(String),
}

/// Checks the form of an agent id (the agent's job number): 1 to 32 characters, each an
/// ASCII letter or digit, `_`, `.` or `-`.
pub fn valid_agent_id(id: &str) -> Result<(), AccountError> {
    if id.is_empty() {
        return Err(AccountError::EmptyId);
    }
    // Checking the characters first makes the length in bytes the length in characters.
    if !id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')) {
        return Err(AccountError::IdCharacters(id.to_owned()));
    }
    if id.len() > MAX_AGENT_ID_CHARS {
        return Err(AccountError::IdTooLong(id.to_owned()));
    }
    Ok(())
}

/// Checks a new password against the policy: at least [`MIN_PASSWORD_CHARS`] characters, at
/// most [`MAX_PASSWORD_BYTES`] bytes, and not the agent id itself.
pub fn check_password_policy(agent_id: &str, password: &str) -> Result<(), AccountError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AccountError::PasswordTooShort);
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(AccountError::PasswordTooLong);
    }
    if password == agent_id {
        return Err(AccountError::PasswordIsId);
    }
    Ok(())
}

/// Hashes a password with argon2id, the crate's default parameters and a random salt from
/// the operating system. Blocks for tens of milliseconds: from async code use
/// [`hash_password_async`].
pub fn hash_password(password: &str) -> Result<String, AccountError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| AccountError::Hash(e.to_string()))
}

/// [`hash_password`] on tokio's blocking pool.
pub async fn hash_password_async(password: &str) -> Result<String, AccountError> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| AccountError::Task(e.to_string()))?
}

/// True if `password` matches the PHC hash string `phc`. A malformed hash is simply no
/// match. Blocks like [`hash_password`].
pub fn verify_password(phc: &str, password: &str) -> bool {
    match PasswordHash::new(phc) {
        // The parameters and the algorithm come from the hash string itself.
        Ok(parsed) => Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// A hash of a random password that was thrown away, made with the default parameters. When
/// a login names an account that does not exist, the password is checked against this
/// instead, so that the answer takes as long as for an account that does.
/// `dummy_hash_has_the_default_parameters` keeps its cost equal to a real hash's.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$Opcr5bfKMCOWGeXi+r1OHg$YY+uLmrBGPrAp2og8e9Tttz91wq/xCOSMunluzDR3zU";

/// Checks an agent's id and password. Unknown agents, invalid ids and wrong passwords all
/// get [`AuthError::BadCredentials`] after the same amount of hashing work; a disabled
/// account is reported as such only when the password was right. Rate limiting is the
/// caller's job (see [`LoginLimiter`]).
pub async fn authenticate(store: &StoreHandle, id: &str, password: &str) -> Result<AgentRecord, AuthError> {
    let record = if valid_agent_id(id).is_ok() && password.len() <= MAX_PASSWORD_BYTES {
        store.agent_get(id).await?
    } else {
        None
    };
    let phc = record.as_ref().map_or(DUMMY_HASH, |r| r.password_hash.as_str()).to_owned();
    let password = password.to_owned();
    let matches = tokio::task::spawn_blocking(move || verify_password(&phc, &password))
        .await
        .map_err(|e| AuthError::Task(e.to_string()))?;
    match record {
        Some(record) if matches => {
            if record.disabled {
                Err(AuthError::Disabled(record.id))
            } else {
                Ok(record)
            }
        }
        _ => Err(AuthError::BadCredentials),
    }
}

/// Returns [`NO_ADMIN_HINT`] when no enabled account has the admin role, for the daemon to
/// log at start.
pub async fn admin_hint(store: &StoreHandle) -> Result<Option<String>, StoreError> {
    let admins = store.agent_count_by_role(Role::Admin).await?;
    Ok((admins == 0).then(|| NO_ADMIN_HINT.to_owned()))
}

// Account management for `switchboard user`. These block (on the store and on hashing), so
// async code must call them inside `spawn_blocking`. Each change and each refused attempt
// writes an audit row with the given actor; passwords never reach the audit trail.

/// Writes an audit row for a refused attempt and hands back the error. Refusals are worth
/// auditing (someone tried to change an account), but failing to record one must not hide
/// the reason it was refused, so that write's own error is dropped.
fn refused(store: &StoreHandle, actor: &str, action: &str, id: &str, error: AccountError) -> AccountError {
    let detail = error.to_string();
    let entry = AuditEntry::new(OffsetDateTime::now_utc(), actor, action, AuditResult::Failed)
        .target(id)
        .detail(&detail);
    let _ = store.audit(entry).wait();
    error
}

/// Creates an account. Fails if the id is taken, the id is malformed or the password is
/// too weak.
pub fn add_agent(
    store: &StoreHandle,
    actor: &str,
    id: &str,
    name: &str,
    role: Role,
    password: &str,
) -> Result<AgentRecord, AccountError> {
    const ACTION: &str = "user.add";
    let checks = valid_agent_id(id).and_then(|()| check_password_policy(id, password));
    if let Err(e) = checks {
        return Err(refused(store, actor, ACTION, id, e));
    }
    // Checked before the slow hash so that a duplicate fails at once; the insert below
    // still refuses a duplicate that appears in between.
    if store.agent_get(id).wait()?.is_some() {
        return Err(refused(store, actor, ACTION, id, AccountError::Exists(id.to_owned())));
    }
    let hash = hash_password(password)?;
    let now = OffsetDateTime::now_utc();
    let record = AgentRecord {
        id: id.to_owned(),
        name: name.to_owned(),
        role,
        password_hash: hash,
        disabled: false,
        created_utc: format_utc(now),
        updated_utc: format_utc(now),
    };
    let audit =
        AuditEntry::new(now, actor, ACTION, AuditResult::Ok).target(id).detail(&format!("role {role}"));
    match store.agent_add(record.clone(), audit).wait() {
        Ok(()) => Ok(record),
        Err(e) => Err(refused(store, actor, ACTION, id, e.into())),
    }
}

/// Replaces an account's password.
pub fn set_password(store: &StoreHandle, actor: &str, id: &str, password: &str) -> Result<(), AccountError> {
    const ACTION: &str = "user.passwd";
    let checks = valid_agent_id(id).and_then(|()| check_password_policy(id, password));
    if let Err(e) = checks {
        return Err(refused(store, actor, ACTION, id, e));
    }
    if store.agent_get(id).wait()?.is_none() {
        return Err(refused(store, actor, ACTION, id, AccountError::NoSuchAgent(id.to_owned())));
    }
    let hash = hash_password(password)?;
    let now = OffsetDateTime::now_utc();
    let audit = AuditEntry::new(now, actor, ACTION, AuditResult::Ok).target(id);
    store
        .agent_set_password(id, &hash, now, audit)
        .wait()
        .map_err(|e| refused(store, actor, ACTION, id, e.into()))
}

/// Deletes an account.
pub fn delete_agent(store: &StoreHandle, actor: &str, id: &str) -> Result<(), AccountError> {
    const ACTION: &str = "user.del";
    let now = OffsetDateTime::now_utc();
    let audit = AuditEntry::new(now, actor, ACTION, AuditResult::Ok).target(id);
    if store.agent_delete(id, audit).wait()? {
        Ok(())
    } else {
        Err(refused(store, actor, ACTION, id, AccountError::NoSuchAgent(id.to_owned())))
    }
}

/// Formats accounts as the table `switchboard user list` prints: id, name, role, whether
/// disabled, and when created. Never the hashes.
pub fn format_agent_table(agents: &[AgentRecord]) -> String {
    let headers = ["ID", "NAME", "ROLE", "DISABLED", "CREATED"];
    let rows: Vec<[String; 5]> = agents
        .iter()
        .map(|a| {
            [
                a.id.clone(),
                // A name is free text; control characters would garble the terminal.
                a.name.chars().map(|c| if c.is_control() { '?' } else { c }).collect(),
                a.role.to_string(),
                if a.disabled { "yes" } else { "no" }.to_owned(),
                a.created_utc.clone(),
            ]
        })
        .collect();
    let mut widths = headers.map(|h| h.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        let mut text = String::new();
        for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}  "));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&headers);
    for row in &rows {
        line(&row.each_ref().map(String::as_str));
    }
    out
}

/// Limits for [`LoginLimiter`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LimiterSettings {
    /// Failed logins to one account within `window` that lock it.
    pub account_failures: u32,
    /// Failed logins from one address within `window` that lock it.
    pub address_failures: u32,
    /// How far back failures count.
    pub window: Duration,
    /// How long a lock lasts.
    pub lockout: Duration,
    /// The most accounts and the most addresses tracked at once.
    pub max_keys: usize,
}

impl Default for LimiterSettings {
    fn default() -> LimiterSettings {
        LimiterSettings {
            account_failures: 5,
            address_failures: 20,
            window: Duration::from_secs(300),
            lockout: Duration::from_secs(300),
            max_keys: 10_000,
        }
    }
}

/// The failures counted for one account or address.
#[derive(Clone, Copy, Debug)]
struct Failures {
    /// Failures since `since`.
    count: u32,
    /// The first failure of the current window.
    since: Instant,
    /// Set when `count` reached the limit.
    locked_until: Option<Instant>,
}

impl Failures {
    /// True when the entry no longer affects anything and can be dropped.
    fn expired(&self, now: Instant, window: Duration) -> bool {
        match self.locked_until {
            Some(until) => now >= until,
            None => now.saturating_duration_since(self.since) >= window,
        }
    }

    fn retry_after(&self, now: Instant) -> Option<Duration> {
        self.locked_until.filter(|&until| until > now).map(|until| until - now)
    }
}

/// One table of failure counts with a bound on its size.
#[derive(Debug)]
struct FailureTable<K> {
    entries: HashMap<K, Failures>,
    limit: u32,
}

impl<K: std::hash::Hash + Eq + Clone> FailureTable<K> {
    fn new(limit: u32) -> FailureTable<K> {
        FailureTable { entries: HashMap::new(), limit }
    }

    fn retry_after(&self, now: Instant, key: &K) -> Option<Duration> {
        self.entries.get(key).and_then(|f| f.retry_after(now))
    }

    fn failure(&mut self, now: Instant, key: &K, s: &LimiterSettings) {
        if !self.entries.contains_key(key) && self.entries.len() >= s.max_keys {
            self.make_room(now, s);
        }
        let entry =
            self.entries.entry(key.clone()).or_insert(Failures { count: 0, since: now, locked_until: None });
        if entry.expired(now, s.window) {
            *entry = Failures { count: 0, since: now, locked_until: None };
        }
        entry.count = entry.count.saturating_add(1);
        if entry.count >= self.limit && entry.locked_until.is_none() {
            // An Instant too far in the future to represent cannot come from a sane
            // setting; locking until the end of the window instead still locks.
            entry.locked_until = Some(now.checked_add(s.lockout).unwrap_or(now + s.window.min(s.lockout)));
        }
    }

    fn clear(&mut self, key: &K) {
        self.entries.remove(key);
    }

    /// Drops expired entries and, if the table is still full, the one that matters least:
    /// an unlocked entry with the oldest window, or failing that the lock that ends first.
    /// Under a flood of new keys this may forget a real count early, which beats growing
    /// without bound.
    fn make_room(&mut self, now: Instant, s: &LimiterSettings) {
        self.entries.retain(|_, f| !f.expired(now, s.window));
        if self.entries.len() < s.max_keys {
            return;
        }
        let victim = self
            .entries
            .iter()
            .min_by_key(|(_, f)| match f.locked_until {
                None => (0, f.since),
                Some(until) => (1, until),
            })
            .map(|(k, _)| k.clone());
        if let Some(k) = victim {
            self.entries.remove(&k);
        }
    }

    fn len(&self) -> usize {
        self.entries.len()
    }
}

/// Counts failed logins per account and per peer address and refuses further attempts
/// for a while once either has too many: with the defaults, 5 failures within 5 minutes
/// lock an account, 20 lock an address, and a lock lasts 5 minutes. Sans-IO: time comes
/// in as `now`. Memory is bounded by [`LimiterSettings::max_keys`] per table.
///
/// The server calls [`LoginLimiter::check`] before verifying a password (refused attempts
/// cost no hashing), then [`LoginLimiter::failure`] or [`LoginLimiter::success`].
#[derive(Debug)]
pub struct LoginLimiter {
    settings: LimiterSettings,
    accounts: FailureTable<String>,
    addresses: FailureTable<IpAddr>,
}

impl LoginLimiter {
    pub fn new(settings: LimiterSettings) -> LoginLimiter {
        LoginLimiter {
            accounts: FailureTable::new(settings.account_failures.max(1)),
            addresses: FailureTable::new(settings.address_failures.max(1)),
            settings,
        }
    }

    /// Ok if a login to `account` from `addr` may be tried now; otherwise how long until
    /// it may.
    pub fn check(&self, now: Instant, account: &str, addr: IpAddr) -> Result<(), Duration> {
        let account = self.accounts.retry_after(now, &account_key(account));
        let address = self.addresses.retry_after(now, &address_key(addr));
        match account.max(address) {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    /// Counts a failed login.
    pub fn failure(&mut self, now: Instant, account: &str, addr: IpAddr) {
        self.accounts.failure(now, &account_key(account), &self.settings);
        self.addresses.failure(now, &address_key(addr), &self.settings);
    }

    /// Forgets the account's failures after a good login. The address keeps its count:
    /// otherwise someone who knows one password could reset it between guesses at other
    /// accounts.
    pub fn success(&mut self, _now: Instant, account: &str, _addr: IpAddr) {
        self.accounts.clear(&account_key(account));
    }

    /// How many accounts and addresses are tracked, for tests and statistics.
    pub fn tracked(&self) -> (usize, usize) {
        (self.accounts.len(), self.addresses.len())
    }
}

impl Default for LoginLimiter {
    fn default() -> LoginLimiter {
        LoginLimiter::new(LimiterSettings::default())
    }
}

/// The key an account is counted under. A client may send anything as the id; only the
/// first [`MAX_AGENT_ID_CHARS`] characters are kept, because longer ids do not exist and
/// long keys would make the bounded table big in bytes.
fn account_key(account: &str) -> String {
    account.chars().take(MAX_AGENT_ID_CHARS).collect()
}

/// The key an address is counted under. An IPv6 client usually controls a whole /64, so
/// the /64 is what counts; an IPv4 address arriving as IPv4-mapped IPv6 counts as itself.
fn address_key(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(segments.into())
            }
        },
    }
}

/// How long a single sign-on ticket stays valid.
pub const TICKET_TTL: Duration = Duration::from_secs(60);
/// The most tickets outstanding at once.
pub const MAX_TICKETS: usize = 10_000;

/// One-time login tickets for single sign-on: a business system asks for a ticket for an
/// agent and hands it to the agent's client, which logs in with it. A ticket is 128 random
/// bits in hex, valid for [`TICKET_TTL`], and can be redeemed once. Sans-IO.
#[derive(Debug)]
pub struct Tickets {
    /// Token to (agent id, expiry).
    live: HashMap<String, (String, Instant)>,
    ttl: Duration,
    capacity: usize,
}

impl Default for Tickets {
    fn default() -> Tickets {
        Tickets::new(TICKET_TTL, MAX_TICKETS)
    }
}

impl Tickets {
    /// Tickets that live `ttl` and at most `capacity` at once (at least 1).
    pub fn new(ttl: Duration, capacity: usize) -> Tickets {
        Tickets { live: HashMap::new(), ttl, capacity: capacity.max(1) }
    }

    /// Issues a ticket for `agent_id`. When the table is full, expired tickets are purged
    /// and then, if need be, the one closest to expiry is dropped.
    pub fn issue(&mut self, now: Instant, agent_id: &str) -> String {
        if self.live.len() >= self.capacity {
            self.purge(now);
        }
        if self.live.len() >= self.capacity {
            let soonest = self.live.iter().min_by_key(|(_, (_, until))| *until).map(|(t, _)| t.clone());
            if let Some(token) = soonest {
                self.live.remove(&token);
            }
        }
        // OsRng panics only if the operating system cannot supply random bytes; issuing a
        // guessable ticket instead would be worse.
        let mut bytes = [0u8; 16];
        OsRng.fill_bytes(&mut bytes);
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let until = now.checked_add(self.ttl).unwrap_or(now);
        self.live.insert(token.clone(), (agent_id.to_owned(), until));
        token
    }

    /// Consumes a ticket and returns its agent id; None if the ticket is unknown, used or
    /// expired (an expired one is removed too).
    pub fn redeem(&mut self, now: Instant, token: &str) -> Option<String> {
        let (agent, until) = self.live.remove(token)?;
        (now < until).then_some(agent)
    }

    /// Drops every expired ticket.
    pub fn purge(&mut self, now: Instant) {
        self.live.retain(|_, (_, until)| now < *until);
    }

    /// How many tickets are outstanding (including expired ones not yet purged).
    pub fn len(&self) -> usize {
        self.live.len()
    }

    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dummy_hash_has_the_default_parameters() {
        let parsed = PasswordHash::new(DUMMY_HASH).expect("the dummy hash parses");
        let real = hash_password("some password").expect("hashing works");
        let real = PasswordHash::new(&real).expect("a fresh hash parses");
        assert_eq!(parsed.algorithm, real.algorithm);
        assert_eq!(parsed.version, real.version);
        assert_eq!(parsed.params, real.params);
        assert_eq!(parsed.hash.map(|h| h.len()), real.hash.map(|h| h.len()));
    }

    #[test]
    fn agent_ids() {
        for good in ["1001", "a", "Agent_7.x-y", &"9".repeat(32)] {
            assert!(valid_agent_id(good).is_ok(), "{good}");
        }
        assert!(matches!(valid_agent_id(""), Err(AccountError::EmptyId)));
        assert!(matches!(valid_agent_id(&"9".repeat(33)), Err(AccountError::IdTooLong(_))));
        for bad in ["10 01", "1001\n", "ä", "a/b", "a:b", "a|b"] {
            assert!(matches!(valid_agent_id(bad), Err(AccountError::IdCharacters(_))), "{bad:?}");
        }
    }

    #[test]
    fn password_policy() {
        assert!(check_password_policy("1001", "correct horse").is_ok());
        assert!(check_password_policy("1001", "ääääääää").is_ok());
        assert!(matches!(check_password_policy("1001", "short"), Err(AccountError::PasswordTooShort)));
        assert!(matches!(check_password_policy("agent1001", "agent1001"), Err(AccountError::PasswordIsId)));
        let long = "x".repeat(MAX_PASSWORD_BYTES + 1);
        assert!(matches!(check_password_policy("1001", &long), Err(AccountError::PasswordTooLong)));
    }

    #[test]
    fn address_keys_group_ipv6_by_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(address_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn limiter_tables_stay_bounded() {
        let settings = LimiterSettings { max_keys: 100, ..LimiterSettings::default() };
        let mut limiter = LoginLimiter::new(settings);
        let now = Instant::now();
        for i in 0..1000u32 {
            let addr = IpAddr::from(i.to_be_bytes());
            limiter.failure(now, &format!("user{i}"), addr);
        }
        let (accounts, addresses) = limiter.tracked();
        assert!(accounts <= 100 && addresses <= 100, "{accounts} {addresses}");
    }

    #[test]
    fn tickets_stay_bounded() {
        let mut tickets = Tickets::new(TICKET_TTL, 10);
        let now = Instant::now();
        let first = tickets.issue(now, "1001");
        for i in 0..100 {
            tickets.issue(now + Duration::from_millis(i), "1002");
        }
        assert_eq!(tickets.len(), 10);
        // The oldest went first.
        assert_eq!(tickets.redeem(now, &first), None);
    }

    #[test]
    fn agent_table_never_shows_hashes() {
        let record = AgentRecord {
            id: "1001".into(),
            name: "Ann\u{1b}[31m".into(),
            role: Role::Supervisor,
            password_hash: "$argon2id$secret".into(),
            disabled: true,
            created_utc: "2026-11-24T08:04:12.345Z".into(),
            updated_utc: "2026-11-24T08:04:12.345Z".into(),
        };
        let table = format_agent_table(std::slice::from_ref(&record));
        assert!(!table.contains("argon2"), "{table}");
        assert!(!format!("{record:?}").contains("secret"));
        assert_eq!(
            table,
            "ID    NAME      ROLE        DISABLED  CREATED\n\
             1001  Ann?[31m  supervisor  yes       2026-11-24T08:04:12.345Z\n"
        );
    }
}
