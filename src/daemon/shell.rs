//! The maintenance shell's transports: serial ports (through tokio-serial) and the control
//! socket (`switchboard shell`). Each moves bytes between its line and a sans-IO
//! [`Session`](crate::shell::session::Session), checks logins against the accounts, answers
//! the log commands itself and hands the other commands to the core.
//!
//! A serial port that fails (a USB adapter pulled, a cable unplugged that takes the device
//! with it) ends its session; the port is opened again every second until it is back, and
//! then starts from the login prompt.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::config::{Parity, SerialConfig, ShellConfig};
use crate::shell::command::{Command, LogLevel};
use crate::shell::session::{LockoutState, Output, Session, SessionSettings, State};
use crate::store::{Role, StoreHandle};

/// A message from a shell session to the core.
pub(crate) enum ShellMsg {
    /// Run a command; its answer comes back on `out`, ending with [`ShellOut::Done`].
    Run { job: u64, user: String, command: Command, out: mpsc::UnboundedSender<ShellOut> },
    /// Stop a running command (Ctrl-C); it still ends with `Done`.
    Cancel { job: u64 },
}

/// What a command answers.
#[derive(Debug)]
pub(crate) enum ShellOut {
    /// A complete answer, paged and filtered by the session; it ends the command.
    Reply(Vec<String>),
    /// Lines of a command still running, shown at once.
    Stream(Vec<String>),
    /// The command ended, with an error if it failed.
    Done(Option<String>),
}

/// What every shell session shares.
pub(crate) struct ShellShared {
    pub core: mpsc::Sender<ShellMsg>,
    pub store: StoreHandle,
    pub settings: watch::Receiver<ShellConfig>,
    pub hostname: String,
    next_job: AtomicU64,
}

impl ShellShared {
    pub fn new(
        core: mpsc::Sender<ShellMsg>,
        store: StoreHandle,
        settings: watch::Receiver<ShellConfig>,
        hostname: String,
    ) -> ShellShared {
        ShellShared { core, store, settings, hostname, next_job: AtomicU64::new(1) }
    }

    fn job(&self) -> u64 {
        self.next_job.fetch_add(1, Ordering::Relaxed)
    }
}

/// The machine's host name, for the prompt.
pub(crate) fn hostname(config: &ShellConfig) -> String {
    if let Some(name) = &config.hostname {
        return name.clone();
    }
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "switchboard".into())
}

/// The session settings for a line: serial ports need a login and page; the control socket
/// is guarded by its file permissions.
pub(crate) fn settings_for(
    config: &ShellConfig,
    hostname: &str,
    line: &str,
    serial: bool,
) -> SessionSettings {
    SessionSettings {
        login: serial,
        idle_timeout: config.idle,
        max_failures: config.max_failures,
        lockout: config.lockout,
        page_lines: if serial { config.page_lines } else { 0 },
        banner: format!("Switchboard {} maintenance shell on {line}", env!("CARGO_PKG_VERSION")),
        hostname: hostname.to_string(),
    }
}

/// A command that is running: the core's (by job) or a log follow of the transport's own.
enum Running {
    Core(u64),
    Follow(JoinHandle<()>),
}

/// Runs one session over `io` until the line fails or the session closes.
/// `gone` completes if the line goes away in a way reads do not report (a serial device
/// node that disappears); the session then ends with an error.
pub(crate) async fn run_session<IO>(
    io: IO,
    settings: SessionSettings,
    user: Option<String>,
    shared: Arc<ShellShared>,
    leftover: &[u8],
    gone: Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>>,
    lockout: Option<&mut LockoutState>,
) -> std::io::Result<()>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let mut gone = gone.unwrap_or_else(|| Box::pin(std::future::pending()));
    // After the other side stops sending (a script piped into `switchboard shell`), the
    // session goes on until what it was given has run.
    let mut eof = false;
    let (mut read, mut write) = tokio::io::split(io);
    let login = settings.login;
    let started = Instant::now();
    let mut session = Session::new(settings, started);
    if let Some(state) = &lockout {
        session.carry_lockout(started, **state);
    }
    // Who runs the commands: the login name on a serial port, the local user on the socket.
    let local = user;
    let mut logged_in: Option<String> = None;
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<ShellOut>();
    let (auth_tx, mut auth_rx) = mpsc::unbounded_channel::<(String, bool)>();
    let mut running: Option<Running> = None;
    let mut buf = [0u8; 512];
    if !leftover.is_empty() {
        session.input(Instant::now(), leftover);
    }
    let result: std::io::Result<()> = async {
        loop {
            // Carry out everything the session wants before waiting again.
            while let Some(output) = session.poll_output() {
                match output {
                    Output::Write(bytes) => {
                        write.write_all(&bytes).await?;
                    }
                    Output::Authenticate { user, password } => {
                        let (store, tx) = (shared.store.clone(), auth_tx.clone());
                        tokio::spawn(async move {
                            let ok = check_login(&store, &user, &password).await;
                            let _ = tx.send((user, ok));
                        });
                    }
                    Output::Run(command) => {
                        let user =
                            session.user().map(str::to_string).or_else(|| local.clone()).unwrap_or_default();
                        running = Some(start_command(&shared, &user, command, &out_tx).await);
                    }
                    Output::Cancel => match running.take() {
                        Some(Running::Core(job)) => {
                            let _ = shared.core.send(ShellMsg::Cancel { job }).await;
                            running = Some(Running::Core(job));
                        }
                        Some(Running::Follow(task)) => {
                            task.abort();
                            let _ = out_tx.send(ShellOut::Done(None));
                        }
                        None => {}
                    },
                    Output::Close { .. } => {
                        write.flush().await?;
                        return Ok(());
                    }
                }
            }
            write.flush().await?;
            if eof
                && running.is_none()
                && !matches!(session.state(), State::Running | State::Paging | State::Authenticating)
            {
                return Ok(());
            }
            let wake = session.timeout();
            tokio::select! {
                n = read.read(&mut buf), if !eof => {
                    let n = n?;
                    if n == 0 {
                        // A serial line that reads nothing has hung up.
                        if login {
                            return Ok(());
                        }
                        eof = true;
                        continue;
                    }
                    session.input(Instant::now(), &buf[..n]);
                }
                () = &mut gone => {
                    return Err(std::io::Error::new(std::io::ErrorKind::NotFound, "the device is gone"));
                }
                Some((user, ok)) = auth_rx.recv() => {
                    if !ok {
                        warn!("maintenance shell: failed login as {user:?}");
                    }
                    session.auth_result(Instant::now(), ok);
                }
                Some(out) = out_rx.recv() => {
                    let now = Instant::now();
                    match out {
                        ShellOut::Reply(lines) => {
                            running = None;
                            session.reply(now, lines);
                        }
                        ShellOut::Stream(lines) => session.stream(now, lines),
                        ShellOut::Done(error) => {
                            running = None;
                            session.done(now, error);
                        }
                    }
                }
                _ = async {
                    match wake {
                        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                        None => std::future::pending().await,
                    }
                } => session.handle_timeout(Instant::now()),
            }
            // Logins and logouts (by command, Ctrl-D or idle time) go to the log.
            if login && session.user() != logged_in.as_deref() {
                match session.user() {
                    Some(user) => info!("maintenance shell: {user} logged in"),
                    None => {
                        info!("maintenance shell: {} logged out", logged_in.as_deref().unwrap_or_default())
                    }
                }
                logged_in = session.user().map(str::to_string);
            }
        }
    }
    .await;
    if let Some(state) = lockout {
        *state = session.lockout_state();
    }
    // The line is gone: a line test it started stops, and the port goes back in service.
    match running {
        Some(Running::Core(job)) => {
            let _ = shared.core.send(ShellMsg::Cancel { job }).await;
        }
        Some(Running::Follow(task)) => task.abort(),
        None => {}
    }
    result
}

/// An account may use the shell if its password is right and it is an administrator.
async fn check_login(store: &StoreHandle, user: &str, password: &str) -> bool {
    match crate::accounts::authenticate(store, user, password).await {
        Ok(record) if record.role == Role::Admin => true,
        Ok(record) => {
            warn!("maintenance shell: {} is a {} account, not an admin", record.id, record.role);
            false
        }
        Err(_) => false,
    }
}

/// Starts a command: the log commands here, the others in the core.
async fn start_command(
    shared: &Arc<ShellShared>,
    user: &str,
    command: Command,
    out: &mpsc::UnboundedSender<ShellOut>,
) -> Running {
    let job = shared.job();
    match command {
        Command::ShowLog { lines, level, follow } => {
            let Some(logs) = super::logs::get() else {
                let _ = out.send(ShellOut::Done(Some("logging is not set up in this process".into())));
                return Running::Core(job);
            };
            let level = level.map(|l| match l {
                LogLevel::Error => tracing::Level::ERROR,
                LogLevel::Warn => tracing::Level::WARN,
                LogLevel::Info => tracing::Level::INFO,
                LogLevel::Debug => tracing::Level::DEBUG,
                LogLevel::Trace => tracing::Level::TRACE,
            });
            let kept: Vec<String> = logs.tail(lines, level).iter().map(|l| l.render()).collect();
            if !follow {
                let _ = out.send(ShellOut::Reply(kept));
                return Running::Core(job);
            }
            let _ = out.send(ShellOut::Stream(kept));
            let mut live = logs.follow();
            let out = out.clone();
            Running::Follow(tokio::spawn(async move {
                loop {
                    match live.recv().await {
                        Ok(line) if level.is_none_or(|max| line.level <= max) => {
                            if out.send(ShellOut::Stream(vec![line.render()])).is_err() {
                                return;
                            }
                        }
                        Ok(_) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                            let _ = out.send(ShellOut::Stream(vec![format!("({n} lines skipped)")]));
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                            let _ = out.send(ShellOut::Done(None));
                            return;
                        }
                    }
                }
            }))
        }
        Command::LogLevel { filter } => {
            let answer = match (super::logs::get(), filter) {
                (None, _) => Err("logging is not set up in this process".to_string()),
                (Some(logs), None) => Ok(format!("Log level: {}", logs.level())),
                (Some(logs), Some(filter)) => match logs.set_level(&filter) {
                    Ok(()) => {
                        warn!("maintenance shell ({user}): log level set to {filter}");
                        Ok(format!("Log level set to {filter} (until the next restart or reload)."))
                    }
                    Err(e) => Err(e.to_string()),
                },
            };
            match answer {
                Ok(line) => {
                    let _ = out.send(ShellOut::Reply(vec![line]));
                }
                Err(e) => {
                    let _ = out.send(ShellOut::Done(Some(e)));
                }
            }
            Running::Core(job)
        }
        command => {
            let msg = ShellMsg::Run { job, user: user.to_string(), command, out: out.clone() };
            if shared.core.send(msg).await.is_err() {
                let _ = out.send(ShellOut::Done(Some("the daemon is stopping".into())));
            }
            Running::Core(job)
        }
    }
}

/// Runs one command for `switchboard shell -c`: its lines, then the error if it failed.
pub(crate) async fn run_once(
    shared: &Arc<ShellShared>,
    user: &str,
    command: Command,
) -> (Vec<String>, Option<String>) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let running = start_command(shared, user, command, &tx).await;
    drop(tx);
    let mut lines = Vec::new();
    while let Some(out) = rx.recv().await {
        match out {
            ShellOut::Stream(l) => lines.extend(l),
            ShellOut::Reply(l) => {
                lines.extend(l);
                return (lines, None);
            }
            ShellOut::Done(error) => {
                if let Running::Follow(task) = running {
                    task.abort();
                }
                return (lines, error);
            }
        }
    }
    (lines, Some("the daemon is stopping".into()))
}

/// Keeps a shell on a serial port for as long as the daemon runs.
pub(crate) async fn serve_serial(port: SerialConfig, shared: Arc<ShellShared>) {
    let name = port.device.display().to_string();
    let mut failures = 0u32;
    // Wrong logins survive the line going away: unplugging must not reset a lockout.
    let mut lockout = LockoutState::default();
    loop {
        match open_serial(&port) {
            Ok(stream) => {
                if failures > 0 {
                    info!("serial port {name} is back");
                } else {
                    info!("maintenance shell on serial port {name} ({} {})", port.speed, frame(&port));
                }
                let settings = {
                    let config = shared.settings.borrow();
                    settings_for(&config, &shared.hostname, &name, true)
                };
                let gone = device_gone(port.device.clone(), identity(&stream));
                match run_session(
                    stream,
                    settings,
                    None,
                    shared.clone(),
                    &[],
                    Some(Box::pin(gone)),
                    Some(&mut lockout),
                )
                .await
                {
                    Ok(()) => warn!("serial port {name} hung up; waiting for it to come back"),
                    Err(e) => warn!("serial port {name} lost: {e}; waiting for it to come back"),
                }
                failures = 1;
            }
            Err(e) => {
                if failures == 0 {
                    warn!("cannot open serial port {name}: {e}; trying again every second");
                }
                failures = failures.saturating_add(1);
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The device and inode of an open serial port.
fn identity(stream: &tokio_serial::SerialStream) -> Option<(u64, u64)> {
    use std::os::fd::AsRawFd;
    // SAFETY: the descriptor belongs to `stream`, which outlives this call.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(stream.as_raw_fd()) };
    nix::sys::stat::fstat(fd).ok().map(|st| (st.st_rdev, st.st_ino))
}

/// Completes when `device` no longer leads to the device that was opened: a USB adapter
/// pulled out (its node is removed) or a pty whose other end closed. Reads do not always
/// report these.
async fn device_gone(device: PathBuf, opened: Option<(u64, u64)>) {
    let Some(opened) = opened else { return std::future::pending().await };
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = nix::sys::stat::stat(&device).ok().map(|st| (st.st_rdev, st.st_ino));
        if now != Some(opened) {
            return;
        }
    }
}

fn frame(port: &SerialConfig) -> String {
    let parity = match port.parity {
        Parity::None => 'N',
        Parity::Even => 'E',
        Parity::Odd => 'O',
    };
    format!("{}{parity}{}", port.data_bits, port.stop_bits)
}

fn open_serial(port: &SerialConfig) -> Result<tokio_serial::SerialStream, tokio_serial::Error> {
    use tokio_serial::{DataBits, FlowControl, SerialPortBuilderExt, StopBits};
    // A /dev/serial/by-id link is followed at every open, so an adapter that comes back as
    // another ttyUSB is found.
    let device: PathBuf = std::fs::canonicalize(&port.device).unwrap_or_else(|_| port.device.clone());
    let data_bits = match port.data_bits {
        5 => DataBits::Five,
        6 => DataBits::Six,
        7 => DataBits::Seven,
        _ => DataBits::Eight,
    };
    let stop_bits = if port.stop_bits == 2 { StopBits::Two } else { StopBits::One };
    let parity = match port.parity {
        Parity::None => tokio_serial::Parity::None,
        Parity::Even => tokio_serial::Parity::Even,
        Parity::Odd => tokio_serial::Parity::Odd,
    };
    tokio_serial::new(device.to_string_lossy(), port.speed)
        .data_bits(data_bits)
        .stop_bits(stop_bits)
        .parity(parity)
        .flow_control(FlowControl::None)
        .open_native_async()
}
