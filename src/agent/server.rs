//! The TCP side of the agent protocol: connections, line framing, authentication, and the
//! bounded queue of lines to each client.
//!
//! A connection task reads lines and writes nothing itself: every line to the client goes
//! through the session's bounded queue, written by a writer task. When a client stops
//! reading and its queue fills, the core drops the queue; the writer then closes the
//! connection, so a slow client never slows the daemon or the others.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, Semaphore};
use tracing::{info, warn};

use super::hub::{Identity, Role, SessionId};
use super::protocol::{parse_request, ErrorCode, Request, ServerLine, MAX_LINE};
use crate::accounts::{self, LoginLimiter, Tickets};
use crate::store::StoreHandle;

/// Lines queued to one client before it counts as not reading.
pub const OUT_QUEUE: usize = 1024;

/// Settings of the agent server.
#[derive(Clone, Debug)]
pub struct ServerSettings {
    pub max_sessions: usize,
    /// A connection that has not logged in by then is closed.
    pub login_timeout: Duration,
    /// Keys business systems use for `SetLoginInfo`.
    pub integration_keys: Vec<String>,
}

/// What connection tasks tell the core.
pub enum AgentMsg {
    Connected { session: SessionId, addr: IpAddr, out: mpsc::Sender<String>, close: oneshot::Sender<String> },
    LoggedIn { session: SessionId, identity: Identity, id: Option<serde_json::Value> },
    Request { session: SessionId, id: Option<serde_json::Value>, request: Request },
    Disconnected { session: SessionId },
}

struct Shared {
    core: mpsc::Sender<AgentMsg>,
    store: StoreHandle,
    settings: ServerSettings,
    limiter: Mutex<LoginLimiter>,
    tickets: Mutex<Tickets>,
    next_session: AtomicU64,
    /// Password checks running at once.
    hashing: Semaphore,
}

/// Accepts agent connections until the task is aborted.
pub async fn serve(
    listener: TcpListener,
    core: mpsc::Sender<AgentMsg>,
    store: StoreHandle,
    settings: ServerSettings,
) {
    let limit = Arc::new(Semaphore::new(settings.max_sessions));
    let shared = Arc::new(Shared {
        core,
        store,
        settings,
        limiter: Mutex::new(LoginLimiter::new(Default::default())),
        tickets: Mutex::new(Tickets::new(accounts::TICKET_TTL, accounts::MAX_TICKETS)),
        next_session: AtomicU64::new(1),
        hashing: Semaphore::new(2),
    });
    loop {
        let (stream, addr) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                warn!("agent port accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            warn!("agent connection from {addr} refused: {} sessions already", shared.settings.max_sessions);
            let mut stream = stream;
            let line = ServerLine::error(None, ErrorCode::Internal, "too many connections").to_line();
            let _ = stream.write_all(line.as_bytes()).await;
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            connection(stream, addr, &shared).await;
            drop(permit);
        });
    }
}

async fn connection(stream: TcpStream, addr: SocketAddr, shared: &Shared) {
    let session = shared.next_session.fetch_add(1, Ordering::Relaxed);
    let _ = stream.set_nodelay(true);
    let (read, mut write) = stream.into_split();
    let (out_tx, mut out_rx) = mpsc::channel::<String>(OUT_QUEUE);
    let (close_tx, close_rx) = oneshot::channel::<String>();
    // The writer ends when the core drops the queue (or closes the session); then the
    // connection is shut down.
    let writer = tokio::spawn(async move {
        // Lines queued together go out in one write: one system call for a burst of events
        // or pipelined answers instead of one per line.
        let mut batch = String::new();
        while let Some(line) = out_rx.recv().await {
            batch.clear();
            batch.push_str(&line);
            while batch.len() < 64 * 1024 {
                match out_rx.try_recv() {
                    Ok(more) => batch.push_str(&more),
                    Err(_) => break,
                }
            }
            if write.write_all(batch.as_bytes()).await.is_err() {
                return;
            }
        }
        let _ = write.shutdown().await;
    });
    if shared
        .core
        .send(AgentMsg::Connected { session, addr: addr.ip(), out: out_tx.clone(), close: close_tx })
        .await
        .is_err()
    {
        return;
    }
    let mut reader = BufReader::new(read);
    let mut buf = Vec::new();
    let mut logged_in = false;
    let login_deadline = tokio::time::Instant::now() + shared.settings.login_timeout;
    tokio::pin!(close_rx);
    let reason = loop {
        let line = tokio::select! {
            r = crate::framing::read_line(&mut reader, &mut buf, MAX_LINE) => r,
            reason = &mut close_rx => break reason.unwrap_or_else(|_| "closed by the server".into()),
            _ = tokio::time::sleep_until(login_deadline), if !logged_in => {
                let _ = out_tx.try_send(ServerLine::error(None, ErrorCode::NotLoggedIn, "login timeout").to_line());
                break "no login in time".into();
            }
        };
        let ok = match line {
            Ok(crate::framing::Line::Complete) => true,
            Ok(crate::framing::Line::TooLong) => false,
            Ok(crate::framing::Line::End) => break "client closed the connection".into(),
            Err(e) => break format!("read error: {e}"),
        };
        let reply = |line: ServerLine| {
            // A full queue here means the client does not read; the core will close it.
            let _ = out_tx.try_send(line.to_line());
        };
        if !ok {
            reply(ServerLine::error(
                None,
                ErrorCode::LineTooLong,
                format!("request line longer than {MAX_LINE} bytes"),
            ));
            continue;
        }
        let Ok(text) = std::str::from_utf8(&buf) else {
            reply(ServerLine::error(None, ErrorCode::BadRequest, "bad request: not UTF-8"));
            continue;
        };
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        let envelope = match parse_request(text) {
            Ok(e) => e,
            Err(line) => {
                reply(line);
                continue;
            }
        };
        let id = envelope.id;
        match envelope.request {
            Request::Login { agent, password, ticket } => {
                match login(shared, addr.ip(), &agent, password, ticket).await {
                    Ok(identity) => {
                        info!("agent {} ({}) logged in from {addr}", identity.agent, identity.role.name());
                        logged_in = true;
                        if shared.core.send(AgentMsg::LoggedIn { session, identity, id }).await.is_err() {
                            break "the daemon is stopping".into();
                        }
                    }
                    Err((code, message)) => {
                        warn!("login of agent {agent:?} from {addr} failed: {message}");
                        reply(ServerLine::error(id, code, message));
                    }
                }
            }
            Request::SetLoginInfo { integration_key, agent } => {
                reply(match issue_ticket(shared, &integration_key, &agent).await {
                    Ok(ticket) => ServerLine::ok(id, json!({ "ticket": ticket, "expiresIn": 60 })),
                    Err((code, message)) => {
                        warn!("SetLoginInfo from {addr} refused: {message}");
                        ServerLine::error(id, code, message)
                    }
                });
            }
            request => {
                if shared.core.send(AgentMsg::Request { session, id, request }).await.is_err() {
                    break "the daemon is stopping".into();
                }
            }
        }
    };
    info!("agent session {session} from {addr} closed: {reason}");
    let _ = shared.core.send(AgentMsg::Disconnected { session }).await;
    drop(out_tx);
    // The writer flushes what is queued (e.g. the login timeout error) and shuts down.
    let _ = tokio::time::timeout(Duration::from_secs(1), writer).await;
}

fn role_of(r: crate::store::Role) -> Role {
    match r {
        crate::store::Role::Agent => Role::Agent,
        crate::store::Role::Supervisor => Role::Supervisor,
        crate::store::Role::Admin => Role::Admin,
    }
}

async fn login(
    shared: &Shared,
    addr: IpAddr,
    agent: &str,
    password: Option<String>,
    ticket: Option<String>,
) -> Result<Identity, (ErrorCode, String)> {
    let now = Instant::now();
    let check = shared.limiter.lock().map(|l| l.check(now, agent, addr)).unwrap_or(Ok(()));
    if let Err(retry) = check {
        return Err((
            ErrorCode::RateLimited,
            format!("too many failed logins: retry in {} s", retry.as_secs().max(1)),
        ));
    }
    let result = match (password, ticket) {
        (Some(password), None) => {
            // argon2 takes tens of milliseconds and ~19 MiB per check: a few at a time keep a
            // login storm from eating the memory and the cores the calls need.
            let _permit = shared.hashing.acquire().await;
            accounts::authenticate(&shared.store, agent, &password)
                .await
                .map_err(|e| (ErrorCode::AuthFailed, e.to_string()))
        }
        (None, Some(ticket)) => {
            let redeemed = shared.tickets.lock().ok().and_then(|mut t| t.redeem(now, &ticket));
            match redeemed {
                Some(id) if id == agent => match shared.store.agent_get(agent).await {
                    Ok(Some(record)) if !record.disabled => Ok(record),
                    _ => Err((ErrorCode::AuthFailed, "unknown agent or bad ticket".to_string())),
                },
                _ => Err((ErrorCode::AuthFailed, "unknown agent or bad ticket".to_string())),
            }
        }
        _ => Err((ErrorCode::BadRequest, "Login takes either a password or a ticket".to_string())),
    };
    if let Ok(mut limiter) = shared.limiter.lock() {
        match &result {
            Ok(_) => limiter.success(now, agent, addr),
            Err((ErrorCode::AuthFailed, _)) => limiter.failure(now, agent, addr),
            Err(_) => {}
        }
    }
    let record = result?;
    Ok(Identity { agent: record.id, name: record.name, role: role_of(record.role) })
}

fn same_secret(a: &str, b: &str) -> bool {
    // Compares in time that depends only on the lengths.
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn issue_ticket(shared: &Shared, key: &str, agent: &str) -> Result<String, (ErrorCode, String)> {
    if !shared.settings.integration_keys.iter().any(|k| same_secret(k, key)) {
        return Err((ErrorCode::AuthFailed, "bad integration key".into()));
    }
    match shared.store.agent_get(agent).await {
        Ok(Some(record)) if !record.disabled => {}
        Ok(_) => return Err((ErrorCode::AuthFailed, format!("no active agent {agent:?}"))),
        Err(e) => return Err((ErrorCode::Internal, format!("store: {e}"))),
    }
    let now = Instant::now();
    shared
        .tickets
        .lock()
        .map(|mut t| t.issue(now, agent))
        .map_err(|_| (ErrorCode::Internal, "ticket table unavailable".to_string()))
}
