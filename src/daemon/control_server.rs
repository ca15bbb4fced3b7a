//! The control socket server: one task per connection, a request per line.

use std::sync::Arc;
use std::time::Duration;

use switchboard_driver_api::CardInfo;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{broadcast, mpsc, oneshot, Semaphore};
use tracing::{debug, warn};

use super::core::CoreRequest;
use super::shell::ShellShared;
use crate::control::protocol::{parse_request, Notice, NoticeLine, Request, Response, MAX_LINE};

/// Connections served at once; more wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 64;

/// How long a connection may stay without sending a request.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a `sim.call` watcher waits for its call to be offered before giving up.
const OFFER_TIMEOUT: Duration = Duration::from_secs(30);

/// Accepts connections until the task is aborted.
pub(super) async fn serve(
    listener: UnixListener,
    core: mpsc::Sender<CoreRequest>,
    notices: broadcast::Sender<Notice>,
    info: CardInfo,
    shell: Arc<ShellShared>,
) {
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let info = Arc::new(info);
    loop {
        let Ok(permit) = limit.clone().acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                warn!("control socket accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (core, notices, info, shell) = (core.clone(), notices.clone(), info.clone(), shell.clone());
        tokio::spawn(async move {
            if let Err(e) = connection(stream, core, notices, &info, shell).await {
                debug!("control connection ended: {e}");
            }
            drop(permit);
        });
    }
}

async fn send<T: serde::Serialize>(out: &mut OwnedWriteHalf, value: &T) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    line.push(b'\n');
    out.write_all(&line).await
}

async fn connection(
    stream: UnixStream,
    core: mpsc::Sender<CoreRequest>,
    notices: broadcast::Sender<Notice>,
    info: &CardInfo,
    shell: Arc<ShellShared>,
) -> std::io::Result<()> {
    // Who is on the other end, for the shell's audit lines.
    let local_user = match stream.peer_cred() {
        Ok(cred) => match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(cred.uid())) {
            Ok(Some(user)) => format!("local:{}", user.name),
            _ => format!("local:uid {}", cred.uid()),
        },
        Err(_) => "local".to_string(),
    };
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut buf = Vec::new();
    loop {
        // An idle connection gives its place back: the socket serves a handful of tools.
        let Ok(line) =
            tokio::time::timeout(IDLE_TIMEOUT, crate::framing::read_line(&mut reader, &mut buf, MAX_LINE))
                .await
        else {
            send(&mut write, &Response::error(None, "idle for too long, closing")).await?;
            return Ok(());
        };
        match line? {
            crate::framing::Line::End => break,
            crate::framing::Line::TooLong => {
                let e = format!("request line longer than {MAX_LINE} bytes");
                send(&mut write, &Response::error(None, e)).await?;
                continue;
            }
            crate::framing::Line::Complete => {}
        }
        let text = match std::str::from_utf8(&buf) {
            Ok(t) => t.trim(),
            Err(_) => {
                send(&mut write, &Response::error(None, "bad request: not UTF-8")).await?;
                continue;
            }
        };
        if text.is_empty() {
            continue;
        }
        let envelope = match parse_request(text) {
            Ok(e) => e,
            Err((id, message)) => {
                send(&mut write, &Response::error(id, message)).await?;
                continue;
            }
        };
        let id = envelope.id;
        if let Request::Shell { run } = envelope.request {
            return shell_connection(reader, write, id, run, &local_user, shell).await;
        }
        // Subscribe before the core acts, so no notice of the new call is missed.
        let watch = match &envelope.request {
            Request::Watch {} => Some((notices.subscribe(), None)),
            Request::SimCall { watch: true, port, .. } => Some((notices.subscribe(), Some(*port))),
            _ => None,
        };
        let (reply, answer) = oneshot::channel();
        let play = match &envelope.request {
            Request::SimCall { play: Some(path), .. } => {
                match super::core::load_wav(std::path::PathBuf::from(path)).await {
                    Ok(audio) => Some(audio),
                    Err(message) => {
                        send(&mut write, &Response::error(id, message)).await?;
                        continue;
                    }
                }
            }
            _ => None,
        };
        if core.send(CoreRequest { request: envelope.request, play, reply }).await.is_err() {
            send(&mut write, &Response::error(id, "the daemon is stopping")).await?;
            return Ok(());
        }
        let response = match answer.await {
            Ok(Ok(result)) => Response::ok(id, result),
            Ok(Err(message)) => Response::error(id, message),
            Err(_) => Response::error(id, "the daemon is stopping"),
        };
        let ok = response.ok;
        send(&mut write, &response).await?;
        if let (true, Some((rx, port))) = (ok, watch) {
            follow(&mut write, rx, port, info).await?;
            return Ok(());
        }
    }
    Ok(())
}

/// Streams notices: all of them, or those of the call placed on `port` until it ends.
async fn follow(
    out: &mut OwnedWriteHalf,
    mut rx: broadcast::Receiver<Notice>,
    port: Option<u16>,
    _info: &CardInfo,
) -> std::io::Result<()> {
    let mut call: Option<String> = None;
    let mut ports: Vec<u16> = port.into_iter().collect();
    let deadline = tokio::time::Instant::now() + OFFER_TIMEOUT;
    loop {
        let notice = if port.is_some() && call.is_none() {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(n) => n,
                Err(_) => {
                    let n = Notice::Far {
                        port: port.unwrap_or(0),
                        what: "no call was offered in 30 s".into(),
                        at_ns: None,
                    };
                    return send(out, &NoticeLine { notice: n }).await;
                }
            }
        } else {
            rx.recv().await
        };
        let notice = match notice {
            Ok(n) => n,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                Notice::Far { port: 0, what: format!("{n} notices lost"), at_ns: None }
            }
            Err(broadcast::error::RecvError::Closed) => return Ok(()),
        };
        let Some(trunk) = port else {
            send(out, &NoticeLine { notice }).await?;
            continue;
        };
        let relevant = match (&notice, &call) {
            (Notice::CallOffered { call: c, trunk: t, .. }, None) if *t == trunk => {
                call = Some(c.clone());
                true
            }
            (Notice::Far { port, what, .. }, _) => {
                if ports.contains(port) && what.starts_with("refused") {
                    send(out, &NoticeLine { notice: notice.clone() }).await?;
                    return Ok(());
                }
                ports.contains(port)
            }
            (n, Some(c)) => n.call() == Some(c.as_str()),
            _ => false,
        };
        if !relevant {
            continue;
        }
        if let Notice::CallAnswered { seat, .. } | Notice::SeatRinging { seat, .. } = &notice {
            if matches!(notice, Notice::CallAnswered { .. }) && !ports.contains(seat) {
                ports.push(*seat);
            }
        }
        let ended = matches!(notice, Notice::CallEnded { .. });
        send(out, &NoticeLine { notice }).await?;
        if ended {
            return Ok(());
        }
    }
}

/// Runs the maintenance shell on a control connection: one command (`run`), or a session.
async fn shell_connection(
    reader: BufReader<tokio::net::unix::OwnedReadHalf>,
    mut write: OwnedWriteHalf,
    id: Option<serde_json::Value>,
    run: Option<String>,
    user: &str,
    shell: Arc<ShellShared>,
) -> std::io::Result<()> {
    if let Some(line) = run {
        let response = match crate::shell::command::parse(&line) {
            Err(e) => Response::error(id, e.to_string()),
            Ok(parsed) => match (parsed.action, parsed.filter) {
                (crate::shell::command::Action::Local(_), _) => {
                    Response::error(id, format!("{line:?} only works in an interactive shell"))
                }
                (
                    crate::shell::command::Action::Run(crate::shell::command::Command::ShowLog {
                        follow: true,
                        ..
                    }),
                    _,
                ) => Response::error(id, "`log tail -f` only works in an interactive shell".to_string()),
                (crate::shell::command::Action::Run(command), filter) => {
                    let (mut lines, error) = super::shell::run_once(&shell, user, command).await;
                    if let Some(f) = filter {
                        let f = f.to_lowercase();
                        lines.retain(|l| l.to_lowercase().contains(&f));
                    }
                    match error {
                        None => Response::ok(id, serde_json::json!({ "lines": lines })),
                        Some(e) => Response::error(id, e),
                    }
                }
            },
        };
        return send(&mut write, &response).await;
    }
    send(&mut write, &Response::ok(id, serde_json::json!({ "shell": true }))).await?;
    // Bytes the line reader read past the request belong to the shell.
    let leftover = reader.buffer().to_vec();
    let stream = reader.into_inner().reunite(write).map_err(std::io::Error::other)?;
    let settings = {
        let config = shell.settings.borrow();
        super::shell::settings_for(&config, &shell.hostname, "the control socket", false)
    };
    super::shell::run_session(stream, settings, Some(user.to_string()), shell, &leftover, None, None).await
}
