//! The core task: engine events in, call actions out.

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use switchboard_driver_api::{Card, CardInfo, ChannelId, ChannelKind, CompositeCard, LineCommand, LineEvent};
use switchboard_driver_sim::SimCard;
use time::OffsetDateTime;
use tokio::sync::{broadcast, mpsc, oneshot};
use tracing::{debug, error, info, warn};

mod ivr;
mod maint;
mod pri;

pub use self::ivr::{load_flows, prompt_set_dir};

use super::control_server;
use super::shell::{ShellMsg, ShellShared};
use super::DaemonError;
use crate::agent::hub::{Hub, HubAction, HubSettings, SessionId};
use crate::agent::protocol::Request as Request_;
use crate::agent::server::{AgentMsg, ServerSettings};
use crate::agent::tags::{self, Tags};
use crate::audio::recorder::{recording_rel_path, RecControl, RecDone, RecorderThread};
use crate::calls::{Action, CallEvent, CallId, CallManager, CdrUpdate, Disposition, Input};
use crate::config::Config;
use crate::control::protocol::{Notice, Request};
use crate::dsp::tone::ProgressTone;
use crate::media::{self, EngineCmd, EngineConfig, EngineEvent, EngineHandle, Prompts};
use crate::sim::{FarCommand, FarEndHandle, FarEndSim, FarReport, MAX_DIGITS};
use crate::store::{self, Store, StoreHandle};

/// How often the core drains the engine's events. A millisecond keeps the time from a ring
/// on the card to the agent's Ring event around two milliseconds (`switchboard bench agents`);
/// the cost is a thousand cheap wake-ups a second.
const PUMP_INTERVAL: Duration = Duration::from_millis(1);

/// How often supervisors watching every seat get each queue's figures.
const QUEUE_STATS_INTERVAL: Duration = Duration::from_secs(5);

/// How long a slot whose recording failed mid-call stays unused.
const SLOT_QUARANTINE: Duration = Duration::from_secs(1);

/// Recording slots: at most this many recordings at once.
const RECORDING_SLOTS: u16 = 1024;

/// The cards the daemon runs, opened.
struct OpenedCards {
    card: Box<dyn Card>,
    /// The simulated far ends' handle (with no lines when there is no simulated card).
    far: FarEndHandle,
    /// Whether the card runs in real time (only a free-running simulated card does not).
    realtime: bool,
    /// A DAHDI card's E1 D-channels, for the PRI driver.
    dchannels: Vec<switchboard_driver_dahdi::DChannel<switchboard_driver_dahdi::ChannelFile>>,
}

/// Opens the configured cards as one: the telephony card (or the first sound device) is the
/// clock, and the sound devices follow on it. Returns the card, the simulated far ends' handle
/// (with no lines when there is no simulated card) and whether the card runs in real time.
fn open_cards(
    config: &Config,
    zone: &crate::dsp::tone::ToneZone,
    answer_ms: Option<u32>,
) -> Result<OpenedCards, DaemonError> {
    use switchboard_driver_alsa::{Clocking, Role, SoundCard, SoundConfig, SoundDevice};
    let devices = |clocking| SoundConfig {
        devices: config
            .sound
            .iter()
            .map(|s| SoundDevice {
                label: s.name.clone(),
                capture: s.capture.clone(),
                playback: s.playback.clone(),
                role: match s.role {
                    crate::config::SoundRole::Seat => Role::Seat,
                    crate::config::SoundRole::Line => Role::Line,
                },
                law: config.law,
            })
            .collect(),
        clocking,
        ..SoundConfig::default()
    };
    let sound_error =
        |e: switchboard_driver_alsa::SoundError| DaemonError::Card(format!("sound devices: {e}"));
    match &config.driver {
        crate::config::Driver::Sim(sim) => {
            let sim_info = switchboard_driver_sim::describe(sim);
            let (far, far_handle) =
                FarEndSim::new(&sim_info.channels, zone, answer_ms, config.sim_disconnect);
            let realtime = sim.pacing == switchboard_driver_api::Pacing::RealTime;
            let card: Box<dyn Card> = Box::new(SimCard::new(sim.clone(), far));
            let card = with_sound(card, config, devices(Clocking::Slave))?;
            Ok(OpenedCards { card, far: far_handle, realtime, dchannels: Vec::new() })
        }
        crate::config::Driver::Dahdi(dahdi) => {
            use switchboard_driver_dahdi::{CardOptions, CardSpec, DahdiCard};
            let (_, far_handle) = FarEndSim::new(&[], zone, answer_ms, config.sim_disconnect);
            let mut channels =
                dahdi.board.dahdi_channels(&dahdi.first_channels).map_err(DaemonError::Card)?;
            for c in &mut channels {
                c.law = config.law;
            }
            let spec = CardSpec {
                name: dahdi.board.model.clone(),
                channels,
                options: CardOptions {
                    channel_device: dahdi.channel_device.clone(),
                    ..CardOptions::default()
                },
            };
            // The spans' line settings and the channels' signalling first: an unconfigured
            // port cannot be opened. Spans dahdi_cfg configured are kept (with a warning
            // naming any difference from this configuration).
            let applied = crate::hw::apply_dahdi_settings(config)
                .map_err(|e| DaemonError::Card(format!("{}: {e}", dahdi.board.model)))?;
            for n in &applied.notes {
                info!("{n}");
            }
            for w in &applied.warnings {
                warn!("{w}");
            }
            let mut card =
                DahdiCard::open(&spec).map_err(|e| DaemonError::Card(format!("{}: {e}", spec.name)))?;
            // The configuration was checked against the board file; the card must agree.
            let expected = crate::config::describe_board(&dahdi.board, config.law);
            let kinds = |i: &CardInfo| i.channels.iter().map(|c| c.kind).collect::<Vec<_>>();
            if kinds(card.info()) != kinds(&expected) {
                return Err(DaemonError::Card(format!(
                    "the DAHDI channels do not match the board file {} (check first_channels and system.conf)",
                    dahdi.board.file
                )));
            }
            let dchannels = card.take_dchannels();
            let card = with_sound(Box::new(card), config, devices(Clocking::Slave))?;
            Ok(OpenedCards { card, far: far_handle, realtime: true, dchannels })
        }
        crate::config::Driver::Alsa => {
            let (_, far_handle) = FarEndSim::new(&[], zone, answer_ms, config.sim_disconnect);
            let sound = SoundCard::open(devices(Clocking::Master)).map_err(sound_error)?;
            Ok(OpenedCards { card: Box::new(sound), far: far_handle, realtime: true, dchannels: Vec::new() })
        }
    }
}

/// Adds the configured sound devices to a telephony card, on its clock.
fn with_sound(
    card: Box<dyn Card>,
    config: &Config,
    sound: switchboard_driver_alsa::SoundConfig,
) -> Result<Box<dyn Card>, DaemonError> {
    if config.sound.is_empty() {
        return Ok(card);
    }
    let sound = switchboard_driver_alsa::SoundCard::open(sound)
        .map_err(|e| DaemonError::Card(format!("sound devices: {e}")))?;
    let card =
        CompositeCard::new(vec![card, Box::new(sound)]).map_err(|e| DaemonError::Card(e.to_string()))?;
    Ok(Box::new(card))
}

/// A stop in progress: calls may go on until `until`.
struct Drain {
    until: tokio::time::Instant,
    again: Option<tokio::signal::unix::Signal>,
    interrupt: Option<tokio::signal::unix::Signal>,
}

impl Drain {
    /// Refuses new calls and says how long the ones in progress may go on; None when there
    /// is nothing to wait for.
    fn start(core: &mut Core) -> Option<Drain> {
        let calls = core.calls.active_calls();
        let time = core.config.drain;
        if calls == 0 || time.is_zero() {
            return None;
        }
        core.calls.set_draining(true);
        info!(
            "stopping: {calls} calls in progress may go on for up to {} s; new calls are refused \
             (a second SIGTERM or Ctrl-C stops at once)",
            time.as_secs()
        );
        let status = format!("STATUS=stopping: waiting for {calls} calls to end");
        let _ = sd_notify::notify(
            false,
            &[sd_notify::NotifyState::Stopping, sd_notify::NotifyState::Custom(&status)],
        );
        use tokio::signal::unix::{signal, SignalKind};
        Some(Drain {
            until: tokio::time::Instant::now() + time,
            again: signal(SignalKind::terminate()).ok(),
            interrupt: signal(SignalKind::interrupt()).ok(),
        })
    }

    /// Completes when the drain time is over or a second signal comes.
    async fn wait(&mut self) {
        tokio::select! {
            _ = tokio::time::sleep_until(self.until) => info!("the drain time is over: stopping with calls still up"),
            _ = next_signal(&mut self.again) => info!("second SIGTERM: stopping now"),
            _ = next_signal(&mut self.interrupt) => info!("interrupted: stopping now"),
        }
    }
}

/// The next delivery of a signal this daemon could watch; never, if it could not.
async fn next_signal(signal: &mut Option<tokio::signal::unix::Signal>) {
    match signal {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}

/// Whether the media thread moved on between two watchdog checks.
#[derive(Default)]
struct Progress {
    last_ticks: u64,
    stalled: bool,
}

impl Progress {
    /// Tells systemd the daemon is alive if the engine ticked since the last check; says once
    /// in the log when it stops (and when it resumes).
    fn check(&mut self, ticks: u64) {
        if ticks > self.last_ticks {
            self.last_ticks = ticks;
            if self.stalled {
                info!("the media thread is making progress again");
                self.stalled = false;
            }
            let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog]);
        } else if !self.stalled {
            error!(
                "the media thread made no progress since the last check: not telling systemd we are alive"
            );
            self.stalled = true;
        }
    }
}

/// A request from a control connection to the core.
pub(super) struct CoreRequest {
    pub request: Request,
    /// The audio of `sim.call`'s `play` file, loaded by the connection task so that a slow
    /// or huge file never holds up the core.
    pub play: Option<Arc<[i16]>>,
    pub reply: oneshot::Sender<Result<serde_json::Value, String>>,
}

/// Largest WAV file `sim.call` plays.
const MAX_PLAY_BYTES: u64 = 64 * 1024 * 1024;

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            warn!("cannot watch SIGTERM: {e}");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

struct CallRecord {
    call_id: String,
    vocid: Option<String>,
    slot: Option<u16>,
    trunk: ChannelId,
    caller: String,
    outbound: bool,
}

/// The daemon once started.
pub(super) struct Running {
    core: Core,
    shell_rx: mpsc::Receiver<ShellMsg>,
    shell: Arc<ShellShared>,
    listener: tokio::net::UnixListener,
    socket: PathBuf,
    recorder: RecorderThread,
    agent_listener: tokio::net::TcpListener,
    agent_settings: ServerSettings,
    _lock: nix::fcntl::Flock<std::fs::File>,
}

struct Core {
    ivr: ivr::Ivr,
    /// When each waiting caller last heard their position, and the trunks hearing one now.
    last_announced: HashMap<CallId, Instant>,
    announcing: std::collections::HashSet<ChannelId>,
    next_announce: Instant,
    /// Recordings are kept this many days (0: for ever).
    retention_days: u32,
    /// Flows entered and keys pressed in flows, queued by call events for `ivr_work`.
    flow_queue: std::collections::VecDeque<(CallId, String, Option<ChannelId>)>,
    ivr_inbox: std::collections::VecDeque<(CallId, crate::ivr::Input)>,
    /// Plays waiting for TTS, by call.
    pending_speech: HashMap<CallId, Vec<crate::ivr::Speak>>,
    /// The last agent who talked with a call and the last queue it was in (for surveys).
    last_agent: HashMap<CallId, String>,
    last_queue: HashMap<CallId, String>,
    info: CardInfo,
    engine: EngineHandle,
    far: FarEndHandle,
    calls: CallManager,
    /// The FSK caller id standard, and the offset of the local time that seat phones get
    /// with the caller's number.
    caller_id: (crate::dsp::callerid::Standard, time::UtcOffset),
    store: StoreHandle,
    rec_control: Option<std::sync::mpsc::Sender<RecControl>>,
    rec_done: mpsc::UnboundedReceiver<RecDone>,
    records: HashMap<CallId, CallRecord>,
    /// `sim.record` requests waiting for their far end's buffer to fill.
    far_recordings: HashMap<ChannelId, (PathBuf, oneshot::Sender<Result<serde_json::Value, String>>)>,
    data_dir: PathBuf,
    free_slots: Vec<u16>,
    /// Slots waiting until no block of their last recording can still arrive.
    quarantine: Vec<(Instant, u16)>,
    rec_stats: Arc<crate::audio::recorder::RecorderStats>,
    notices: broadcast::Sender<Notice>,
    /// The same moment on the monotonic clock and the wall clock, to date events.
    epoch: (Instant, OffsetDateTime),
    /// Keeps the prompt table alive for the engine.
    _prompts: Arc<Prompts>,
    hub: Hub,
    acd: crate::acd::Acd,
    /// Index of the first queue's route in the call model.
    queue_base: usize,
    /// Each agent session's queue of lines and the way to close it.
    agent_sessions: HashMap<SessionId, AgentConn>,
    agent_addr: std::net::SocketAddr,
    /// The E1 spans under ISDN PRI signalling, and their D-channels' frames.
    pri: pri::PriSpans,
    pri_inbox: mpsc::UnboundedReceiver<(usize, pri::DLink)>,
    /// When the daemon started, for `show version`.
    started: Instant,
    alarms: maint::AlarmBoard,
    /// Line tests from the maintenance shell, by channel.
    line_tests: HashMap<ChannelId, maint::LineTest>,
    /// The configuration file (None: the built-in one) and what it said when last loaded.
    config_path: Option<PathBuf>,
    config: Config,
    /// The shell's settings, which a reload changes for the next sessions.
    shell_settings: tokio::sync::watch::Sender<crate::config::ShellConfig>,
}

struct AgentConn {
    out: mpsc::Sender<String>,
    close: Option<oneshot::Sender<String>>,
}

impl Running {
    pub async fn start(
        config: Config,
        config_path: Option<PathBuf>,
        data_dir: &Path,
    ) -> Result<Running, DaemonError> {
        // Only one daemon per data directory: a second one would mark the first one's calls
        // as interrupted while recovering. The lock is released when the process exits, even
        // on kill -9.
        let socket = crate::paths::socket(data_dir);
        let lock_path = data_dir.join("switchboard.lock");
        let lock_file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|source| DaemonError::DataDir { path: lock_path.clone(), source })?;
        let lock = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusiveNonblock)
            .map_err(|_| DaemonError::AlreadyRunning(socket.clone()))?;

        let store = Store::open(&crate::paths::database(data_dir))?;
        let report = store.recover_after_crash(data_dir, OffsetDateTime::now_utc()).await?;
        if !report.is_empty() {
            warn!(
                "recovered after an unclean stop: {} calls marked interrupted, {} recordings repaired, \
                 {} missing, {} damaged",
                report.interrupted_calls.len(),
                report.repaired.len(),
                report.missing.len(),
                report.damaged.len()
            );
        }

        let zone = config.tone_zone.clone();
        let answer_ms = config.sim_seat_answer_delay.map(|d| d.as_millis().min(u128::from(u32::MAX)) as u32);
        let OpenedCards { card, far: far_handle, realtime, dchannels } =
            open_cards(&config, &zone, answer_ms)?;
        let info = card.info().clone();

        let audio_channels = info.channels.iter().filter(|c| c.kind.carries_audio()).count().max(1);
        // One second of audio per channel: the writer can stall that long without loss.
        let (rec_tx, rec_rx) = rtrb::RingBuffer::new(audio_channels * 50);
        let (control_tx, control_rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let recorder = RecorderThread::spawn(data_dir.to_path_buf(), rec_rx, control_rx, move |done| {
            let _ = done_tx.send(done);
        })?;

        let prompts = Arc::new(Prompts::from_audio(vec![media::hold_music()], ivr::PROMPT_SLOTS));
        let ivr = ivr::Ivr::start(&config, data_dir, prompts.clone()).await.map_err(DaemonError::Flows)?;
        let engine_config = EngineConfig {
            tone_zone: zone,
            echo_canceller: config.echo_canceller,
            realtime,
            caller_id_standard: config.line.standard,
            ..EngineConfig::default()
        };
        let (engine, ends) = media::Engine::new(card, &engine_config, prompts.clone(), Some(rec_tx));
        let mut engine = media::spawn(engine, ends, "media", config.realtime_priority)?;
        for &port in &config.echo_canceller_ports {
            if let Some(ch) = info.channel_of_port(port) {
                let _ = engine.send(EngineCmd::SetEchoCanceller { channel: ch.id, enabled: true });
            }
        }

        // We hold the lock, so a socket file is left over from a daemon that died.
        let _ = std::fs::remove_file(&socket);
        let listener = tokio::net::UnixListener::bind(&socket)
            .map_err(|source| DaemonError::Socket { path: socket.clone(), source })?;
        // The socket drives the card: only the daemon's user and group may use it.
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o660))
                .map_err(|source| DaemonError::Socket { path: socket.clone(), source })?;
        }

        let agent_listener = tokio::net::TcpListener::bind(config.agent.listen)
            .await
            .map_err(|source| DaemonError::AgentPort { addr: config.agent.listen, source })?;
        let agent_addr = agent_listener.local_addr().unwrap_or(config.agent.listen);
        let agent_settings = ServerSettings {
            max_sessions: config.agent.max_sessions,
            login_timeout: config.agent.login_timeout,
            integration_keys: config.agent.integration_keys.clone(),
        };
        let hub = Hub::new(
            &info,
            HubSettings {
                wrap_up: config.agent.wrap_up,
                ring_seats_without_agent: config.agent.ring_seats_without_agent,
                pause_on_no_answer: config.agent.pause_on_no_answer,
            },
        );
        let mut hub = hub;
        hub.set_groups(
            config
                .queues
                .iter()
                .map(|q| (q.name.clone(), q.members.iter().map(|(a, _)| a.clone()).collect()))
                .collect(),
        );
        info!("agent protocol on {agent_addr}");
        match crate::accounts::admin_hint(&store).await {
            Ok(Some(hint)) => warn!("{hint}"),
            Ok(None) => {}
            Err(e) => warn!("cannot check for an admin account: {e}"),
        }

        let (notices, _) = broadcast::channel(4096);
        let mut calls = CallManager::new(&info, config.calls.clone());
        calls.set_line_settings(config.line.settings.clone());
        // The simulated exchange presents caller id the way the trunks are set to expect it.
        let mut far_handle = far_handle;
        if let Some(sim) = config.sim() {
            let exchange = crate::sim::ExchangeSettings {
                caller_id: config.line.settings.fxo.caller_id,
                standard: config.line.standard,
                ring_on_ms: sim.ring_cadence_ms.0,
            };
            if far_handle.commands.push(FarCommand::Exchange(exchange)).is_err() {
                warn!("the simulated exchange did not take its caller id settings");
            }
        }
        let (pri_spans, pri_inbox) = pri::start(&config, &info, data_dir, Instant::now(), dchannels)
            .map_err(|source| DaemonError::Socket { path: data_dir.join("e1-span*.sock"), source })?;
        let count = |kind: ChannelKind| info.channels.iter().filter(|c| c.kind == kind).count();
        info!(
            "switchboard {} running on {}: {} channels ({} trunk ports, {} seat ports, {} sound seats, {} E1 spans), \
             data in {}",
            env!("CARGO_PKG_VERSION"),
            info.name,
            info.channels.len(),
            count(ChannelKind::FxoTrunk),
            count(ChannelKind::FxsSeat),
            count(ChannelKind::Sound),
            info.spans.iter().filter(|s| s.kind == switchboard_driver_api::SpanKind::E1).count(),
            data_dir.display()
        );
        info!("control socket {}", socket.display());
        let (shell_settings, shell_watch) = tokio::sync::watch::channel(config.shell.clone());
        let (shell_tx, shell_rx) = mpsc::channel(64);
        let hostname = super::shell::hostname(&config.shell);
        let shell = Arc::new(ShellShared::new(shell_tx, store.clone(), shell_watch, hostname));
        let mut core = Core {
            ivr,
            retention_days: config.ivr.retention_days,
            last_announced: HashMap::new(),
            announcing: Default::default(),
            next_announce: Instant::now(),
            flow_queue: Default::default(),
            ivr_inbox: Default::default(),
            pending_speech: HashMap::new(),
            last_agent: HashMap::new(),
            last_queue: HashMap::new(),
            info,
            engine,
            far: far_handle,
            calls,
            caller_id: (config.line.standard, config.ivr.utc_offset),
            store,
            rec_control: Some(control_tx),
            rec_done: done_rx,
            records: HashMap::new(),
            far_recordings: HashMap::new(),
            data_dir: data_dir.to_path_buf(),
            free_slots: (0..RECORDING_SLOTS).rev().collect(),
            quarantine: Vec::new(),
            rec_stats: recorder.stats(),
            notices,
            epoch: (Instant::now(), OffsetDateTime::now_utc()),
            _prompts: prompts,
            hub,
            acd: crate::acd::Acd::new(config.queues.clone()),
            queue_base: config.calls.routes.len() - config.queues.len(),
            agent_sessions: HashMap::new(),
            agent_addr,
            pri: pri_spans,
            pri_inbox,
            started: Instant::now(),
            alarms: Default::default(),
            line_tests: HashMap::new(),
            config_path,
            config,
            shell_settings,
        };
        // Seats the hub does not offer calls to (no agent, when that is required).
        let now = Instant::now();
        let unavailable: Vec<ChannelId> =
            core.hub.availability().filter(|(_, available)| !available).map(|(seat, _)| seat).collect();
        for seat in unavailable {
            core.calls.set_available(now, seat, false);
        }
        Ok(Running {
            core,
            shell_rx,
            shell,
            listener,
            socket,
            recorder,
            agent_listener,
            agent_settings,
            _lock: lock,
        })
    }

    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), DaemonError> {
        let Running {
            mut core,
            mut shell_rx,
            shell,
            listener,
            socket,
            recorder,
            agent_listener,
            agent_settings,
            _lock,
        } = self;
        let (agent_tx, mut agent_rx) = mpsc::channel::<AgentMsg>(1024);
        let agents = tokio::spawn(crate::agent::server::serve(
            agent_listener,
            agent_tx,
            core.store.clone(),
            agent_settings,
        ));
        let (req_tx, mut requests) = mpsc::channel::<CoreRequest>(64);
        let server = tokio::spawn(control_server::serve(
            listener,
            req_tx,
            core.notices.clone(),
            core.info.clone(),
            shell.clone(),
        ));
        let serial: Vec<_> = core
            .config
            .shell
            .serial
            .iter()
            .map(|port| tokio::spawn(super::shell::serve_serial(port.clone(), shell.clone())))
            .collect();
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);

        let mut stats = tokio::time::interval(QUEUE_STATS_INTERVAL);
        stats.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Recordings past the retention are deleted at start and then every hour.
        let mut retention = tokio::time::interval(Duration::from_secs(3600));
        retention.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut pump = tokio::time::interval(PUMP_INTERVAL);
        pump.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // systemd's watchdog (WatchdogSec=): petted at half the period, and only while the
        // real-time thread is making progress, so a stuck media thread gets the daemon
        // restarted even though the control plane still runs.
        let mut usec = 0;
        let watchdog = sd_notify::watchdog_enabled(false, &mut usec).then(|| Duration::from_micros(usec / 2));
        let mut pet = tokio::time::interval(watchdog.unwrap_or(Duration::from_secs(3600)).max(PUMP_INTERVAL));
        pet.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut progress = Progress::default();
        if let Some(period) = watchdog {
            info!("systemd watchdog on: alive every {} ms while the media thread runs", period.as_millis());
        }
        // SIGHUP reloads the configuration and the flows; calls keep the flow version they
        // started with. A daemon that cannot watch the signal still runs.
        let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                warn!("cannot watch SIGHUP: {e}");
                None
            }
        };
        tokio::pin!(shutdown);
        // On SIGTERM the calls in progress may go on for the drain time; new ones are refused.
        // A second SIGTERM or SIGINT stops at once.
        let mut drain: Option<Drain> = None;
        loop {
            tokio::select! {
                _ = &mut shutdown, if drain.is_none() => {
                    match Drain::start(&mut core) {
                        Some(d) => drain = Some(d),
                        None => break,
                    }
                }
                _ = async { match drain.as_mut() { Some(d) => d.wait().await, None => std::future::pending().await } } => {
                    break;
                }
                _ = pump.tick() => {
                    core.pump().await;
                    if drain.is_some() && core.calls.active_calls() == 0 {
                        info!("every call has ended");
                        break;
                    }
                }
                () = next_signal(&mut hangup) => {
                    info!("SIGHUP: reloading the configuration and the flows");
                    // The outcome is logged either way by the reload itself.
                    let _ = core.reload_config().await;
                }
                Some(msg) = shell_rx.recv() => core.shell_msg(msg).await,
                _ = pet.tick(), if watchdog.is_some() => progress.check(core.engine.stats().ticks.load(std::sync::atomic::Ordering::Relaxed)),
                _ = retention.tick() => core.expire_recordings(),
                _ = stats.tick() => {
                    core.queue_stats(Instant::now());
                    core.apply_hub_actions().await;
                }
                Some(req) = requests.recv() => core.handle_request(req).await,
                Some(done) = core.rec_done.recv() => core.recording_done(done),
                Some(msg) = agent_rx.recv() => core.agent_msg(msg).await,
                Some(done) = core.ivr.done_rx.recv() => {
                    core.ivr_done(done).await;
                    core.ivr_work().await;
                }
            }
        }

        info!("stopping");
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
        server.abort();
        agents.abort();
        for task in serial {
            task.abort();
        }
        let _ = std::fs::remove_file(&socket);
        core.stop_calls();
        core.engine.stop();
        // Closing the control channel makes the recorder finish every open file.
        core.rec_control = None;
        let _ = tokio::task::spawn_blocking(move || recorder.join()).await;
        while let Ok(done) = core.rec_done.try_recv() {
            core.recording_done(done);
        }
        // Wait for the store to have written everything queued before returning.
        let _ = core.store.cdr_list(1).await;
        info!("stopped");
        Ok(())
    }
}

impl Core {
    /// Reads the configuration file again and applies what can change while calls go on
    /// (log level, drain time, shell settings, IVR settings and web services, then the
    /// flows); names what waits for a restart. Nothing changes if the file has errors.
    pub(super) async fn reload_config(&mut self) -> Result<Vec<String>, String> {
        let mut lines = Vec::new();
        if let Some(path) = self.config_path.clone() {
            let new = Config::load(&path).map_err(|e| {
                warn!("configuration not reloaded: {e}");
                format!("{} has errors; nothing was changed:\n{e}", path.display())
            })?;
            if new.log_level != self.config.log_level {
                if let Some(logs) = super::logs::get() {
                    logs.set_level(&new.log_level).map_err(|e| e.to_string())?;
                }
                lines.push(format!("Log level: {}.", new.log_level));
            }
            if new.drain != self.config.drain {
                lines.push(format!("Drain time: {} s.", new.drain.as_secs()));
            }
            if new.shell != self.config.shell {
                self.shell_settings.send_replace(new.shell.clone());
                lines.push("Shell settings: for sessions that start from now on.".into());
            }
            self.set_ivr_config(&new)?;
            let restart = crate::config::restart_needed(&self.config, &new);
            if !restart.is_empty() {
                let parts = restart.join(", ");
                warn!("configuration reloaded; changes to {parts} take effect at the next restart");
                lines.push(format!("Changed, takes effect at the next restart: {parts}."));
            }
            info!("configuration reloaded from {}", path.display());
            lines.insert(0, format!("Configuration reloaded from {}.", path.display()));
            self.config = new;
        } else {
            lines.push("Built-in configuration: nothing to read again.".into());
        }
        let flows = self.reload_flows().await?;
        let names: Vec<&str> = flows["flows"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        lines.push(format!(
            "Flows reloaded: {} ({} calls finish on the previous version).",
            if names.is_empty() { "none".to_string() } else { names.join(", ") },
            flows["calls_on_previous_version"]
        ));
        Ok(lines)
    }

    /// Deletes the recordings older than the retention setting, in the background.
    fn expire_recordings(&self) {
        let days = self.retention_days;
        if days == 0 {
            return;
        }
        let before = OffsetDateTime::now_utc() - time::Duration::days(i64::from(days));
        let pending = self.store.recordings_expire(before, &self.data_dir);
        tokio::spawn(async move {
            match pending.await {
                Ok(r) if r.files_deleted > 0 || r.rows_deleted > 0 || !r.failed.is_empty() => info!(
                    "retention ({days} days): {} recordings deleted, {} could not be",
                    r.rows_deleted,
                    r.failed.len()
                ),
                Ok(_) => {}
                Err(e) => warn!("retention: cannot expire recordings: {e}"),
            }
        });
    }

    fn wall(&self, at: Instant) -> OffsetDateTime {
        let (base, wall) = self.epoch;
        match at.checked_duration_since(base) {
            Some(d) => wall + d,
            None => wall - base.saturating_duration_since(at),
        }
    }

    fn notify(&self, notice: Notice) {
        // No watcher is not an error.
        let _ = self.notices.send(notice);
    }

    fn engine(&mut self, cmd: EngineCmd) {
        if let Err(cmd) = self.engine.send(cmd) {
            error!("media engine command queue full, dropped {cmd:?}");
        }
    }

    /// Logs the outcome of a store write without holding up the core.
    fn persist(&self, what: &'static str, pending: store::Pending<()>) {
        tokio::spawn(async move {
            if let Err(e) = pending.await {
                error!("store: {what} failed: {e}");
            }
        });
    }

    async fn agent_msg(&mut self, msg: AgentMsg) {
        let now = Instant::now();
        match msg {
            AgentMsg::Connected { session, addr, out, close } => {
                self.hub.connect(session, addr);
                self.agent_sessions.insert(session, AgentConn { out, close: Some(close) });
            }
            AgentMsg::LoggedIn { session, identity, id } => {
                let result = json!({
                    "agent": identity.agent,
                    "name": identity.name,
                    "role": identity.role.name(),
                    "isAdmin": identity.role == crate::agent::hub::Role::Admin,
                });
                self.hub.logged_in(session, identity);
                self.send_line(session, crate::agent::protocol::ServerLine::ok(id, result).to_line());
            }
            AgentMsg::Request { session, id, request: Request_::QueryCalls {} } => {
                // The calls are the call model's; the hub only checks the session.
                let reply = match self.hub.identity(session) {
                    None => Err((crate::agent::protocol::ErrorCode::NotLoggedIn, "log in first".to_string())),
                    Some(_) => Ok(self.calls_json(now)),
                };
                self.hub.reply(session, id, reply);
            }
            AgentMsg::Request { session, id, request: Request_::QueryRecentCalls { agent, limit } } => {
                use crate::agent::protocol::ErrorCode;
                let who = self.hub.identity(session).map(|i| (i.agent.clone(), i.role.supervises()));
                let target = match (who, agent) {
                    (None, _) => Err((ErrorCode::NotLoggedIn, "log in first".to_string())),
                    (Some((me, _)), None) => Ok(me),
                    (Some((me, _)), Some(a)) if a == me => Ok(me),
                    (Some((_, true)), Some(a)) => Ok(a),
                    (Some(_), Some(_)) => Err((
                        ErrorCode::Forbidden,
                        "only supervisors may see another agent's calls".to_string(),
                    )),
                };
                match target {
                    Err(e) => self.hub.reply(session, id, Err(e)),
                    Ok(agent) => {
                        let limit = limit.unwrap_or(20).clamp(1, 200);
                        let reply = match self.store.cdr_for_agent(&agent, limit).await {
                            Ok(cdrs) => Ok(
                                json!({ "agent": agent, "calls": cdrs.iter().map(cdr_json).collect::<Vec<_>>() }),
                            ),
                            Err(e) => Err((ErrorCode::Internal, format!("cannot read the calls: {e}"))),
                        };
                        self.hub.reply(session, id, reply);
                    }
                }
            }
            AgentMsg::Request { session, id, request } => self.hub.request(now, session, id, request),
            AgentMsg::Disconnected { session } => {
                self.hub.disconnect(session);
                self.agent_sessions.remove(&session);
            }
        }
        self.apply_hub_actions().await;
    }

    fn send_line(&mut self, session: SessionId, line: String) {
        let Some(conn) = self.agent_sessions.get_mut(&session) else { return };
        if let Err(mpsc::error::TrySendError::Full(_)) = conn.out.try_send(line) {
            // The client does not read: drop it rather than slow everyone down.
            warn!(
                "agent session {session}: disconnected, it stopped reading ({} lines queued)",
                crate::agent::server::OUT_QUEUE
            );
            self.close_session(session, "the client stopped reading".into());
        }
    }

    fn close_session(&mut self, session: SessionId, reason: String) {
        if let Some(mut conn) = self.agent_sessions.remove(&session) {
            if let Some(close) = conn.close.take() {
                let _ = close.send(reason);
            }
        }
        self.hub.disconnect(session);
    }

    async fn apply_hub_actions(&mut self) {
        let now = Instant::now();
        self.refresh_queues();
        while let Some(action) = self.hub.poll_action() {
            match action {
                HubAction::Send { session, line } => self.send_line(session, line),
                HubAction::Close { session, reason } => self.close_session(session, reason),
                HubAction::Answer { seat } => {
                    self.engine(EngineCmd::Line { channel: seat, command: LineCommand::OffHook });
                }
                // A headset hangs up the way a handset does: the card puts it on-hook and
                // raises the on-hook event the call model already handles.
                HubAction::Release { seat }
                    if self
                        .info
                        .channels
                        .get(usize::from(seat.0))
                        .is_some_and(|c| c.kind == ChannelKind::Sound) =>
                {
                    self.engine(EngineCmd::Line { channel: seat, command: LineCommand::OnHook });
                }
                HubAction::Release { seat } => {
                    if !self.calls.release_seat(now, seat, "released from the agent desktop") {
                        warn!("{seat}: release asked but the seat is not talking");
                    }
                }
                HubAction::SendDtmf { seat, digits } => {
                    match (self.calls.trunk_of_seat(seat), heapless::String::try_from(digits.as_str())) {
                        (Some(trunk), Ok(digits)) => {
                            self.engine(EngineCmd::SendDtmf { channel: trunk, digits })
                        }
                        _ => warn!("{seat}: DTMF asked but the seat has no call"),
                    }
                }
                HubAction::Availability { seat, available } => {
                    if available {
                        if let Some(agent) = self.hub.agent_on(seat).map(str::to_string) {
                            self.acd.available(&agent, now);
                        }
                    }
                    self.refresh_queues();
                    self.calls.set_available(now, seat, available)
                }
                HubAction::CallAgent { session, id, seat, agent } => {
                    let me = self.hub.agent_on(seat).unwrap_or("").to_string();
                    let reply = match self.hub.agent_seats().get(agent.as_str()).copied() {
                        None => Err(format!("agent {agent} is not logged in on a seat")),
                        Some(to) => {
                            self.calls.call_seat(now, seat, to, &me, &agent).map_err(|e| e.to_string())
                        }
                    };
                    let reply = reply.map(|_| json!(null)).map_err(|m| {
                        (
                            crate::agent::protocol::ErrorCode::NotAllowed,
                            format!("cannot call agent {agent}: {m}"),
                        )
                    });
                    self.hub.reply(session, id, reply);
                }
                HubAction::CallOut { session, id, seat, number, caller_id } => {
                    let reply = match self.calls.call_out(now, seat, &number, &caller_id) {
                        Ok(_) => {
                            info!("{seat}: calling {number} for its agent");
                            Ok(json!(null))
                        }
                        Err(e) => Err((
                            crate::agent::protocol::ErrorCode::NotAllowed,
                            format!("cannot call out: {e}"),
                        )),
                    };
                    self.hub.reply(session, id, reply);
                }
                HubAction::Consult { session, id, seat, act, agent } => {
                    use crate::agent::hub::ConsultFlag;
                    let result = match act {
                        6 => match self.hub.agent_seats().get(agent.as_str()).copied() {
                            Some(target) => self
                                .calls
                                .consult(seat, target)
                                .map(|()| Some(ConsultFlag::Ringing))
                                .map_err(|e| e.to_string()),
                            None => Err(format!("agent {agent} is not logged in on a seat")),
                        },
                        8 => self.calls.consult_complete(seat).map(|()| None).map_err(|e| e.to_string()),
                        9 => self
                            .calls
                            .consult_cancel(seat)
                            .map(|()| Some(ConsultFlag::None))
                            .map_err(|e| e.to_string()),
                        _ => self
                            .calls
                            .conference(seat)
                            .map(|()| Some(ConsultFlag::Conference))
                            .map_err(|e| e.to_string()),
                    };
                    let reply = match result {
                        Ok(flag) => {
                            if let Some(flag) = flag {
                                self.hub.consult_flag(seat, flag);
                            }
                            Ok(json!(null))
                        }
                        Err(m) => Err((crate::agent::protocol::ErrorCode::NotAllowed, m)),
                    };
                    self.hub.reply(session, id, reply);
                }
                HubAction::Transfer { session, id, seat, to } => {
                    use crate::agent::hub::TransferTo;
                    use crate::calls::transfer::TransferTarget;
                    let target = match &to {
                        TransferTo::Agent(agent) => match self.hub.agent_seats().get(agent.as_str()) {
                            Some(s) => Ok(Some(TransferTarget::Seat(*s))),
                            None => Err(format!("agent {agent} is not logged in on a seat")),
                        },
                        TransferTo::Queue(queue) => {
                            match self.acd.queues().iter().position(|q| &q.name == queue) {
                                Some(q) => Ok(Some(TransferTarget::Route(self.queue_base + q))),
                                None => Err(format!("no queue is named {queue:?}")),
                            }
                        }
                        TransferTo::Flow { flow, .. } if self.ivr.flows.get(flow).is_none() => {
                            Err(format!("no IVR flow is named {flow:?}"))
                        }
                        TransferTo::Flow { .. } | TransferTo::External { .. } => Ok(None),
                    };
                    let reply = target
                        .and_then(|t| match (t, &to) {
                            (Some(t), _) => self.calls.transfer(now, seat, t).map_err(|e| e.to_string()),
                            (None, TransferTo::Flow { flow, back }) => self
                                .calls
                                .transfer_to_flow(now, seat, flow, *back)
                                .map(|_| ())
                                .map_err(|e| e.to_string()),
                            (None, TransferTo::External { number, caller_id }) => {
                                let shown = if caller_id.is_empty() {
                                    self.calls
                                        .call_on_seat(seat)
                                        .and_then(|c| self.records.get(&c))
                                        .map(|r| r.caller.clone())
                                        .unwrap_or_default()
                                } else {
                                    caller_id.clone()
                                };
                                self.calls
                                    .transfer_out(now, seat, number, &shown)
                                    .map(|_| ())
                                    .map_err(|e| e.to_string())
                            }
                            (None, _) => Err("no target".to_string()),
                        })
                        .map(|()| json!(null))
                        .map_err(|m| {
                            (crate::agent::protocol::ErrorCode::NotAllowed, format!("cannot transfer: {m}"))
                        });
                    self.hub.reply(session, id, reply);
                }
                HubAction::Monitor { session, id, supervisor, target, control } => {
                    use crate::agent::protocol::Control;
                    use crate::calls::supervise::MonitorMode;
                    let mode = match control {
                        Control::Whisper => MonitorMode::Whisper,
                        Control::BargeIn => MonitorMode::Barge,
                        _ => MonitorMode::Listen,
                    };
                    let outcome = if control == Control::Intercept {
                        self.calls.intercept(supervisor, target)
                    } else {
                        self.calls.monitor(supervisor, target, mode)
                    };
                    let actor = self.hub.agent_on(supervisor).unwrap_or("?").to_string();
                    let mut entry = store::AuditEntry::new(
                        OffsetDateTime::now_utc(),
                        &actor,
                        &format!("control.{}", control.name()),
                        if outcome.is_ok() { store::AuditResult::Ok } else { store::AuditResult::Failed },
                    )
                    .target(&format!("seat {}", target.port()));
                    if let Err(e) = &outcome {
                        entry = entry.detail(&e.to_string());
                    }
                    self.persist("audit", self.store.audit(entry));
                    let reply = match outcome {
                        Ok(()) if control == Control::Intercept => {
                            info!("{supervisor}: took over the call of {target}");
                            self.hub.intercepted(supervisor, target);
                            Ok(json!(null))
                        }
                        Ok(()) => {
                            info!("{supervisor}: {} on {target}", control.name());
                            self.hub.monitoring(supervisor, true);
                            self.notify(Notice::Monitor { seat: supervisor.port(), joined: true });
                            Ok(json!(null))
                        }
                        Err(e) => Err((crate::agent::protocol::ErrorCode::NotAllowed, e.to_string())),
                    };
                    self.hub.reply(session, id, reply);
                }
                HubAction::Hold { seat, hold } => {
                    let done = if hold { self.calls.hold(seat) } else { self.calls.retrieve(seat) };
                    if done {
                        self.hub.held(seat, hold);
                    } else {
                        warn!("{seat}: hold/retrieve asked but the seat's call is not in that state");
                    }
                }
                HubAction::Audit { actor, action, target, detail, result } => {
                    info!("audit: {actor} {action} {} -> {result}", target.as_deref().unwrap_or("-"));
                    let result = match result {
                        "ok" => store::AuditResult::Ok,
                        "denied" => store::AuditResult::Denied,
                        _ => store::AuditResult::Failed,
                    };
                    let mut entry = store::AuditEntry::new(
                        OffsetDateTime::now_utc(),
                        &actor,
                        &format!("control.{action}"),
                        result,
                    );
                    entry.target = target;
                    entry.detail = detail;
                    self.persist("audit", self.store.audit(entry));
                }
            }
        }
        // Hub actions can make calls act (a release, a seat becoming free).
        if self.calls_pending() {
            Box::pin(self.apply_actions()).await;
        }
    }

    fn calls_pending(&self) -> bool {
        self.calls.has_actions()
    }

    /// Sends each queue's figures to the supervisors watching every seat.
    fn queue_stats(&mut self, now: Instant) {
        let waiting = self.calls.waiting(now);
        let seat_of = self.hub.agent_seats();
        for (q, queue) in self.acd.queues().to_vec().iter().enumerate() {
            let route = self.queue_base + q;
            let mine: Vec<_> =
                waiting.iter().filter(|(call, _, _)| self.calls.route_of(*call) == Some(route)).collect();
            let longest = mine.iter().map(|(_, _, w)| w.as_secs()).max().unwrap_or(0);
            let available = queue
                .members
                .iter()
                .filter(|(agent, _)| seat_of.get(agent).is_some_and(|s| self.hub.is_available(*s)))
                .count();
            let mut s = String::new();
            tags::push_tag(&mut s, "QUEUE", &queue.name);
            tags::push_tag(&mut s, "WAITING", &mine.len().to_string());
            tags::push_tag(&mut s, "LONGEST", &longest.to_string());
            tags::push_tag(&mut s, "AVAILABLE", &available.to_string());
            self.hub.to_watchers(crate::agent::protocol::EventKind::QueueStats, mine.len() as i64, s);
        }
    }

    /// Gives every queue's route its seats in the ACD's order, from where agents sit now.
    fn refresh_queues(&mut self) {
        if self.acd.queues().is_empty() {
            return;
        }
        let seat_of = self.hub.agent_seats();
        for q in 0..self.acd.queues().len() {
            let seats = self.acd.order(q, &seat_of).into_iter().map(|c| c.port()).collect();
            self.calls.set_route_seats(self.queue_base + q, seats);
        }
    }

    fn queue_of(&self, call: CallId) -> Option<usize> {
        self.calls.route_of(call).and_then(|r| r.checked_sub(self.queue_base))
    }

    async fn pump(&mut self) {
        self.refresh_queues();
        self.pri_pump().await;
        while let Some(event) = self.engine.poll_event() {
            let now = Instant::now();
            if self.line_test_event(&event) {
                continue;
            }
            let input = match event {
                EngineEvent::Line(e) => {
                    debug!("{}: {:?}", e.channel, e.event);
                    match e.event {
                        LineEvent::Alarm(alarms) => {
                            self.card_alarm(e.channel, alarms);
                            self.apply_actions().await;
                            None
                        }
                        LineEvent::AlarmCleared => {
                            self.card_alarm(e.channel, Default::default());
                            None
                        }
                        _ => Some(Input::Line { channel: e.channel, event: e.event }),
                    }
                }
                EngineEvent::Dtmf { channel, digit } => {
                    info!("{channel}: DTMF digit '{digit}' detected");
                    Some(Input::Digit { channel, digit })
                }
                EngineEvent::Tone { channel, tone } => {
                    if tone != ProgressTone::Silence {
                        info!("{channel}: {} tone detected", tone.name());
                    }
                    Some(Input::Tone { channel, tone })
                }
                EngineEvent::CommandFailed { channel, reason } => {
                    warn!("{channel}: media command failed: {reason}");
                    None
                }
                EngineEvent::DtmfSent { channel } => Some(Input::DtmfSent { channel }),
                EngineEvent::CallerId { channel, message } => {
                    match caller_id_info(&message, self.caller_id.0) {
                        Ok(Some(caller)) => {
                            info!("{channel}: FSK caller id {caller:?}");
                            Some(Input::CallerId { channel, caller })
                        }
                        Ok(None) => {
                            info!("{channel}: FSK message waiting indication (not caller id) ignored");
                            None
                        }
                        Err(e) => {
                            warn!("{channel}: unreadable FSK caller id message: {e}");
                            None
                        }
                    }
                }
                EngineEvent::CallerIdLost { channel, error } => {
                    warn!("{channel}: FSK caller id lost: {error}");
                    None
                }
                EngineEvent::PlayDone { channel } => {
                    if !self.announcement_done(channel) {
                        self.ivr_play_done(channel).await;
                    }
                    None
                }
                // Level reports answer line tests only, and were taken above.
                EngineEvent::Level { .. } => None,
            };
            if let Some(input) = input {
                self.calls.handle(now, input);
                self.apply_actions().await;
            }
        }
        let now = Instant::now();
        if !self.line_tests.is_empty() {
            self.line_test_timers(now);
            self.apply_actions().await;
        }
        if self.calls.poll_timeout().is_some_and(|t| t <= now) {
            self.calls.handle_timeout(now);
            self.apply_actions().await;
        }
        self.ivr_timers(now).await;
        if now >= self.next_announce {
            self.next_announce = now + Duration::from_secs(1);
            self.announce_positions(now);
        }
        self.ivr_work().await;
        if self.hub.poll_timeout().is_some_and(|t| t <= now) {
            self.hub.handle_timeout(now);
            self.apply_hub_actions().await;
        }
        while let Ok(report) = self.far.reports.pop() {
            let at_ns = match report {
                FarReport::Ringing { at_ns, .. } => Some(at_ns),
                _ => None,
            };
            let (channel, what) = describe_report(report);
            debug!("far end of {channel}: {what}");
            self.notify(Notice::Far { port: channel.port(), what, at_ns });
        }
        let now = Instant::now();
        let (ready, waiting): (Vec<_>, Vec<_>) = self.quarantine.drain(..).partition(|(t, _)| *t <= now);
        self.quarantine = waiting;
        self.free_slots.extend(ready.into_iter().map(|(_, slot)| slot));
        // Buffers the far end finished with are freed here, off the real-time thread.
        while self.far.spent.pop().is_ok() {}
        while let Ok((channel, buffer)) = self.far.captured.pop() {
            if let Some((path, reply)) = self.far_recordings.remove(&channel) {
                tokio::task::spawn_blocking(move || {
                    let written = crate::audio::wav::WavWriter::create(&path).and_then(|mut w| {
                        w.write(&buffer)?;
                        w.finish()
                    });
                    let _ = reply.send(
                        written
                            .map(|samples| json!({ "path": path.display().to_string(), "samples": samples }))
                            .map_err(|e| e.to_string()),
                    );
                });
            }
        }
    }

    async fn handle_request(&mut self, req: CoreRequest) {
        if let Request::SimRecord { port, seconds, name } = &req.request {
            match self.start_far_recording(*port, *seconds, name) {
                Ok((channel, path)) => {
                    self.far_recordings.insert(channel, (path, req.reply));
                }
                Err(e) => {
                    let _ = req.reply.send(Err(e));
                }
            }
            return;
        }
        // Reading CDRs can take a while on a big database: it is answered off the core.
        if let Request::CdrList { limit } = req.request {
            let store = self.store.clone();
            tokio::spawn(async move {
                let cdrs = store.cdr_list(limit.min(10_000)).await.map_err(|e| e.to_string());
                let _ =
                    req.reply.send(cdrs.map(|c| serde_json::Value::Array(c.iter().map(cdr_json).collect())));
            });
            return;
        }
        let result = self.request(req.request, req.play).await;
        let _ = req.reply.send(result);
    }

    fn start_far_recording(
        &mut self,
        port: u16,
        seconds: f64,
        name: &str,
    ) -> Result<(ChannelId, PathBuf), String> {
        let channel = self.port(port)?.id;
        if !(seconds.is_finite() && seconds > 0.0 && seconds <= 600.0) {
            return Err(format!("seconds {seconds} is not between 0 and 600"));
        }
        if self.far_recordings.contains_key(&channel) {
            return Err(format!("port {port} is already being recorded"));
        }
        // The daemon may run as root: it writes only below its own data directory.
        let valid = !name.is_empty()
            && name.len() <= 64
            && !name.starts_with('.')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid {
            return Err(format!("name {name:?} must be 1-64 letters, digits, '-', '_' or '.' (no path)"));
        }
        let dir = self.data_dir.join("sim-recordings");
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let path = dir.join(format!("{name}.wav"));
        let samples = (seconds * 8000.0) as usize;
        let buffer = vec![0i16; samples].into_boxed_slice();
        self.far_command(FarCommand::Record { channel, buffer })?;
        Ok((channel, path))
    }

    async fn apply_actions(&mut self) {
        while let Some(action) = self.calls.poll_action() {
            match action {
                Action::Media(cmd) => self.engine(cmd),
                Action::StartRecording { call, channel } => self.start_recording(call, channel).await,
                Action::StopRecording { call, channel } => self.stop_recording(call, channel),
                Action::Cdr(update) => self.cdr(update).await,
                Action::Event(event) => self.call_event(event),
                Action::CallerIdListen { trunk, on } => self.caller_id_listen(trunk, on),
                Action::SendCallerId { seat, caller } => self.send_caller_id(seat, caller),
                Action::Digital { channel, command } => Box::pin(self.pri_command(channel, command)).await,
            }
        }
        if self.hub_pending() {
            Box::pin(self.apply_hub_actions()).await;
        }
    }

    /// Opens or closes a trunk's FSK caller id window in the engine.
    fn caller_id_listen(&mut self, trunk: ChannelId, on: bool) {
        debug!("{trunk}: caller id window {}", if on { "open" } else { "closed" });
        self.engine(EngineCmd::CallerIdListen { channel: trunk, on });
    }

    /// Sends caller id to a seat's phone: the caller's number (or why there is none) and name,
    /// with the local date and time, as an MDMF message of the configured standard.
    fn send_caller_id(&mut self, seat: ChannelId, caller: crate::line::CallerIdInfo) {
        use crate::dsp::callerid::{Absence, CallerId, Format};
        let (standard, utc_offset) = self.caller_id;
        let local = OffsetDateTime::now_utc().to_offset(utc_offset);
        let id = CallerId {
            number: caller.number.clone(),
            name: caller.name.clone(),
            number_absence: caller.absence.map(|a| match a {
                'P' => Absence::Private,
                'O' => Absence::Unavailable,
                other => u8::try_from(other).map_or(Absence::Unavailable, Absence::Other),
            }),
            datetime: Some((u8::from(local.month()), local.day(), local.hour(), local.minute())),
            ..CallerId::default()
        };
        // A name the standard cannot carry (Chinese characters as text, say) must not cost
        // the phone the number: it goes without the name.
        let message = id.encode(standard, Format::Mdmf).or_else(|e| {
            debug!("{seat}: caller id sent without the name: {e}");
            CallerId { name: None, ..id.clone() }.encode(standard, Format::Mdmf)
        });
        match message {
            Ok(message) => {
                debug!("{seat}: caller id {:?} to the phone", caller.number);
                self.engine(EngineCmd::SendCallerId { channel: seat, message });
            }
            Err(e) => warn!("{seat}: caller id {:?} not sent to the phone: {e}", caller.number),
        }
    }

    async fn start_recording(&mut self, call: CallId, channel: ChannelId) {
        let now = OffsetDateTime::now_utc();
        let Some(record) = self.records.get(&call) else {
            return;
        };
        let call_id = record.call_id.clone();
        let Some(slot) = self.free_slots.pop() else {
            error!("call {call_id}: not recorded, all {RECORDING_SLOTS} recording slots are busy");
            return;
        };
        let vocid = match self.store.next_vocid(now).await {
            Ok(v) => v,
            Err(e) => {
                error!("call {call_id}: not recorded, no recording id: {e}");
                self.free_slots.push(slot);
                return;
            }
        };
        let path = recording_rel_path(&vocid, now);
        let Some(control) = &self.rec_control else {
            return;
        };
        if control.send(RecControl::Open { slot, vocid: vocid.clone(), path: path.clone() }).is_err() {
            error!("call {call_id}: not recorded, the recorder has stopped");
            self.free_slots.push(slot);
            return;
        }
        self.engine(EngineCmd::RecordStart { channel, slot });
        self.persist("recording start", self.store.recording_start(&vocid, &call_id, &path, now));
        self.persist("cdr vocid", self.store.cdr_set_vocid(&call_id, &vocid));
        info!("call {call_id}: recording {vocid} to {}", path.display());
        self.notify(Notice::Recording {
            call: call_id,
            vocid: vocid.clone(),
            path: path.display().to_string(),
        });
        if let Some(record) = self.records.get_mut(&call) {
            record.vocid = Some(vocid);
            record.slot = Some(slot);
        }
    }

    fn stop_recording(&mut self, call: CallId, channel: ChannelId) {
        self.engine(EngineCmd::RecordStop { channel });
        let slot = self.records.get_mut(&call).and_then(|r| r.slot.take());
        if let (Some(slot), Some(control)) = (slot, &self.rec_control) {
            // The slot is reused only once the recorder reports the file done.
            let _ = control.send(RecControl::Close { slot });
        }
    }

    fn recording_done(&mut self, done: RecDone) {
        if self.line_test_recorded(&done) {
            return;
        }
        // A recording that failed while its call is still up: stop the call's tap first, and
        // free the slot only after the blocks already in flight have drained, so that the
        // next recording on this slot gets none of this call's audio.
        let holder = self.records.iter().find(|(_, r)| r.slot == Some(done.slot)).map(|(c, r)| (*c, r.trunk));
        match holder {
            Some((call, trunk)) => {
                self.engine(EngineCmd::RecordStop { channel: trunk });
                if let Some(r) = self.records.get_mut(&call) {
                    r.slot = None;
                }
                self.quarantine.push((Instant::now() + SLOT_QUARANTINE, done.slot));
            }
            None => self.free_slots.push(done.slot),
        }
        let now = OffsetDateTime::now_utc();
        match done.result {
            Ok(()) => {
                info!("recording {} complete: {:.1} s", done.vocid, done.samples as f64 / 8000.0);
                self.persist("recording end", self.store.recording_end(&done.vocid, now, done.samples));
            }
            Err(e) => {
                error!("recording {} failed: {e}", done.vocid);
                self.persist(
                    "recording failure",
                    self.store.recording_failed(&done.vocid, now, done.samples),
                );
            }
        }
    }

    async fn cdr(&mut self, update: CdrUpdate) {
        match update {
            CdrUpdate::Start { call, at, caller, callee, trunk, outbound_from } => {
                let start = self.wall(at);
                let call_id = match self.store.next_call_id(start).await {
                    Ok(id) => id,
                    Err(e) => {
                        // The call still goes through; only its record is lost, loudly.
                        error!("no call id from the store, the call is not recorded in CDRs: {e}");
                        format!("X{}", call.0)
                    }
                };
                let cdr = store::CdrStart {
                    call_id: call_id.clone(),
                    start,
                    caller: caller.clone(),
                    callee: callee.clone(),
                    trunk_port: Some(trunk.port()),
                    seat_port: outbound_from.map(|s| s.port()),
                    direction: if outbound_from.is_some() {
                        store::Direction::Out
                    } else {
                        store::Direction::In
                    },
                };
                self.persist("cdr start", self.store.cdr_start(cdr));
                // The party the agent talks to: the caller of an incoming call, the number
                // dialled for an outgoing one.
                let (other, outbound) = match outbound_from {
                    Some(_) => (callee, true),
                    None => (caller, false),
                };
                self.records.insert(
                    call,
                    CallRecord { call_id, vocid: None, slot: None, trunk, caller: other, outbound },
                );
            }
            CdrUpdate::Answer { call, at, seat } => {
                if let Some(r) = self.records.get(&call) {
                    self.persist(
                        "cdr answer",
                        self.store.cdr_answer(&r.call_id, self.wall(at), Some(seat.port())),
                    );
                }
            }
            CdrUpdate::End { call, at, disposition, cause } => {
                if let Some(r) = self.records.get(&call) {
                    let d = match disposition {
                        Disposition::Answered => store::Disposition::Answered,
                        Disposition::NoAnswer => store::Disposition::NoAnswer,
                        Disposition::Busy => store::Disposition::Busy,
                        Disposition::Failed => store::Disposition::Failed,
                    };
                    self.persist("cdr end", self.store.cdr_end(&r.call_id, self.wall(at), d, Some(cause)));
                }
            }
        }
    }

    fn hub_pending(&self) -> bool {
        self.hub.has_actions()
    }

    fn call_id(&self, call: CallId) -> String {
        self.records.get(&call).map(|r| r.call_id.clone()).unwrap_or_else(|| format!("X{}", call.0))
    }

    fn call_event(&mut self, event: CallEvent) {
        let notice = match event {
            CallEvent::Offered { call, trunk, caller } => {
                let id = self.call_id(call);
                info!(
                    "call {id}: incoming on {trunk} from {}",
                    if caller.is_empty() { "an unknown number" } else { caller.as_str() }
                );
                Notice::CallOffered { call: id, trunk: trunk.port(), caller }
            }
            CallEvent::SeatRinging { call, seat } => {
                let id = self.call_id(call);
                info!("call {id}: ringing seat {seat}");
                let mut t = Tags::new();
                for (name, value) in self.flow_tags(call) {
                    t.set(&name, value);
                }
                let (mut caller, outbound) =
                    self.records.get(&call).map(|r| (r.caller.clone(), r.outbound)).unwrap_or_default();
                let called = self.calls.is_called_seat(call, seat);
                if called {
                    // An agent calling: the caller id is their agent id (the call's `trunk` is
                    // their seat).
                    let from = self.calls.trunk_of(call);
                    caller = from.and_then(|s| self.hub.agent_on(s)).unwrap_or("").to_string();
                }
                t.set(tags::CALLERID, caller);
                let ttype = if outbound && !called {
                    "1"
                } else if called {
                    // An agent calling this one: an incoming call for this seat.
                    "2"
                } else if self.calls.is_transferred(call) {
                    "3"
                } else {
                    "2"
                };
                t.set(tags::TTYPE, ttype);
                if let Some(q) = self.queue_of(call) {
                    t.set("QUEUE", self.acd.queues()[q].name.clone());
                }
                self.hub.ringing(seat, call.0, t, !called);
                Notice::SeatRinging { call: id, seat: seat.port() }
            }
            CallEvent::Progress { call, seat, what } => {
                let id = self.call_id(call);
                info!("call {id}: {what}");
                self.hub.progress(seat, what);
                Notice::Progress { call: id, seat: seat.port(), what: what.into() }
            }
            CallEvent::ConsultAnswered { call, seat } => {
                let id = self.call_id(call);
                info!("call {id}: {seat} answered the consultation");
                if let Some(agent_seat) = self.hub.seat_of_call(call.0) {
                    self.hub.consult_flag(agent_seat, crate::agent::hub::ConsultFlag::Talking);
                }
                let vocid = self.records.get(&call).and_then(|r| r.vocid.clone());
                self.hub.answered(seat, call.0, vocid.as_deref());
                self.hub.consult_flag(seat, crate::agent::hub::ConsultFlag::Consulted);
                Notice::Consult { call: id, seat: seat.port(), joined: true }
            }
            CallEvent::ConsultEnded { call, seat } => {
                let id = self.call_id(call);
                info!("call {id}: {seat} left the consultation");
                self.hub.consult_ended(seat, call.0);
                Notice::Consult { call: id, seat: seat.port(), joined: false }
            }
            CallEvent::TransferredAway { call, seat } => {
                let id = self.call_id(call);
                info!("call {id}: transferred away from {seat}");
                self.hub.transferred_away(Instant::now(), seat, call.0);
                Notice::Transferred { call: id, from_seat: seat.port() }
            }
            CallEvent::RingStopped { call, seat } => {
                let id = self.call_id(call);
                self.hub.ring_stopped(seat, call.0);
                Notice::SeatNoAnswer { call: id, seat: seat.port() }
            }
            CallEvent::Overflowed { call, to } => {
                let id = self.call_id(call);
                info!("call {id}: waited too long, moved to queue {to}");
                Notice::Overflowed { call: id, to }
            }
            CallEvent::SeatNoAnswer { call, seat } => {
                let id = self.call_id(call);
                info!("call {id}: {seat} did not answer");
                self.hub.no_answer(seat, call.0);
                Notice::SeatNoAnswer { call: id, seat: seat.port() }
            }
            CallEvent::MonitorEnded { seat } => {
                info!("{seat}: left the call it was monitoring");
                self.hub.monitoring(seat, false);
                Notice::Monitor { seat: seat.port(), joined: false }
            }
            CallEvent::Waiting { call } => {
                let id = self.call_id(call);
                info!("call {id}: waiting, no idle seat");
                Notice::CallWaiting { call: id }
            }
            CallEvent::Answered { call, seat } => {
                if let Some(trunk) = self.calls.trunk_of(call) {
                    self.announcing.remove(&trunk);
                }
                let id = self.call_id(call);
                info!("call {id}: answered by seat {seat}");
                if let Some(agent) = self.hub.agent_on(seat).map(str::to_string) {
                    let queue = self.queue_of(call);
                    self.acd.answered(&agent, queue);
                    let queue_name = queue.map(|q| self.acd.queues()[q].name.clone());
                    if let Some(q) = &queue_name {
                        self.last_queue.insert(call, q.clone());
                    }
                    if let Some(r) = self.records.get(&call) {
                        self.persist(
                            "the call's agent",
                            self.store.cdr_set_agent(&r.call_id, &agent, queue_name.as_deref()),
                        );
                        if let Some(wait) = self.calls.age(call, Instant::now()) {
                            let ms = wait.as_millis().min(u128::from(u64::MAX)) as u64;
                            self.persist("the call's wait", self.store.cdr_set_wait(&r.call_id, ms));
                        }
                    }
                    self.last_agent.insert(call, agent);
                }
                let vocid = self.records.get(&call).and_then(|r| r.vocid.clone());
                self.hub.answered(seat, call.0, vocid.as_deref());
                Notice::CallAnswered { call: id, seat: seat.port() }
            }
            CallEvent::Digit { call, channel, digit } => {
                let id = self.call_id(call);
                info!("call {id}: digit '{digit}' from {channel}");
                if let Some(seat) = self.hub.seat_of_call(call.0) {
                    if seat != channel {
                        self.hub.dtmf(seat, digit);
                    }
                }
                if self.calls.is_in_flow(call) {
                    self.ivr_inbox.push_back((call, crate::ivr::Input::Digit(digit)));
                }
                Notice::Digit { call: id, port: channel.port(), digit }
            }
            CallEvent::FlowEntered { call, flow, back_to } => {
                // Whatever announcement was playing is over for this caller.
                if let Some(trunk) = self.calls.trunk_of(call) {
                    self.announcing.remove(&trunk);
                }
                // The flow_entered notice follows once the flow is chosen.
                self.flow_queue.push_back((call, flow, back_to));
                if let Some(seat) = back_to {
                    self.hub.caller_in_flow(seat);
                }
                return;
            }
            CallEvent::ForwardFailed { call, cause } => {
                let id = self.call_id(call);
                info!("call {id}: transfer to an external number failed: {cause}");
                if self.ivr.calls.contains_key(&call) {
                    self.ivr_inbox.push_back((call, crate::ivr::Input::TransferFailed(cause.to_string())));
                } else if let Some(route) = self.calls.route_of(call) {
                    // An agent's transfer: the caller goes back to the queue.
                    let now = Instant::now();
                    if !self.calls.flow_to_route(now, call, route, 0) {
                        self.calls.flow_hangup(now, call);
                    }
                }
                Notice::Progress { call: id, seat: 0, what: format!("transfer failed: {cause}") }
            }
            CallEvent::Returned { call, seat } => {
                let id = self.call_id(call);
                info!("call {id}: back from the flow to {seat}");
                let tags = self.flow_tags(call);
                self.hub.caller_returned(seat, call.0, &tags);
                Notice::CallAnswered { call: id, seat: seat.port() }
            }
            CallEvent::HookFlash { call, seat, held } => {
                let id = self.call_id(call);
                info!("call {id}: {} by a hook flash on {seat}", if held { "held" } else { "retrieved" });
                self.hub.held(seat, held);
                Notice::Progress {
                    call: id,
                    seat: seat.port(),
                    what: if held { "held" } else { "retrieved" }.into(),
                }
            }
            CallEvent::Ended { call, disposition, cause } => {
                if let Some(r) = self.records.get(&call) {
                    self.announcing.remove(&r.trunk);
                }
                self.flow_ended(call);
                let record = self.records.remove(&call);
                let id = record.as_ref().map(|r| r.call_id.clone()).unwrap_or_else(|| format!("X{}", call.0));
                let vocid = record.and_then(|r| r.vocid);
                info!("call {id}: ended, {}: {cause}", disposition.as_str());
                self.hub.ended(Instant::now(), call.0, cause);
                Notice::CallEnded {
                    call: id,
                    disposition: disposition.as_str().into(),
                    cause: cause.into(),
                    vocid,
                }
            }
        };
        self.notify(notice);
    }

    /// Ends the records of calls still up when the daemon stops.
    fn stop_calls(&mut self) {
        let now = OffsetDateTime::now_utc();
        let calls: Vec<CallId> = self.records.keys().copied().collect();
        for call in calls {
            if let Some(record) = self.records.get(&call) {
                let (call_id, trunk) = (record.call_id.clone(), record.trunk);
                self.stop_recording(call, trunk);
                self.persist(
                    "cdr end",
                    self.store.cdr_end(
                        &call_id,
                        now,
                        store::Disposition::Interrupted,
                        Some("daemon stopped"),
                    ),
                );
            }
        }
    }

    fn port(&self, port: u16) -> Result<&switchboard_driver_api::ChannelInfo, String> {
        self.info.channel_of_port(port).ok_or_else(|| {
            format!("port {port} does not exist (this card has ports 1-{})", self.info.channels.len())
        })
    }

    fn far_command(&mut self, cmd: FarCommand) -> Result<serde_json::Value, String> {
        self.far
            .commands
            .push(cmd)
            .map(|()| json!(null))
            .map_err(|_| "the simulator's command queue is full, try again".to_string())
    }

    async fn request(
        &mut self,
        request: Request,
        audio: Option<Arc<[i16]>>,
    ) -> Result<serde_json::Value, String> {
        match request {
            Request::Status {} => Ok(self.status()),
            Request::FlowsReload {} => self.reload_flows().await,
            Request::CdrList { .. } => Err("internal: cdr.list routed wrongly".into()),
            // The connection task streams notices itself.
            Request::Watch {} => Ok(json!(null)),
            Request::SimCall { port, from, digits, digits_delay_ms, play, hangup_after, .. } => {
                let ch = self.port(port)?;
                if ch.kind != ChannelKind::FxoTrunk {
                    return Err(format!(
                        "port {port} is a {} port, not a trunk port: the exchange can only call trunk ports",
                        ch.kind.name()
                    ));
                }
                let channel = ch.id;
                let caller_id = crate::sim::caller_id_arg(&from)?;
                let digits = digit_string(&digits, "digits", crate::dsp::dtmf::is_dtmf_digit)?;
                let hangup_after_ms = match hangup_after {
                    None => None,
                    Some(s) if s.is_finite() && (0.0..=86_400.0).contains(&s) => Some((s * 1000.0) as u32),
                    Some(s) => {
                        return Err(format!(
                            "hangup_after {s} is not a number of seconds between 0 and 86400"
                        ))
                    }
                };
                let play = match play {
                    None => None,
                    Some(path) => match audio {
                        Some(audio) => Some(audio),
                        None => return Err(format!("internal: {path} was not loaded")),
                    },
                };
                self.far_command(FarCommand::Call {
                    channel,
                    caller_id,
                    digits,
                    digits_delay_ms,
                    play,
                    hangup_after_ms,
                })?;
                Ok(json!({ "port": port, "placed": true }))
            }
            Request::SimHangup { port } => {
                let channel = self.port(port)?.id;
                self.far_command(FarCommand::Hangup { channel })
            }
            Request::SimOffHook { port } => {
                let ch = self.port(port)?;
                if ch.kind != ChannelKind::FxsSeat {
                    return Err(format!("port {port} is a {} port, not a seat port", ch.kind.name()));
                }
                let channel = ch.id;
                self.far_command(FarCommand::OffHook { channel })
            }
            Request::SimDial { port, digits } => {
                let channel = self.port(port)?.id;
                let digits = digit_string(&digits, "digits", crate::dsp::dtmf::is_dtmf_digit)?;
                self.far_command(FarCommand::Dial { channel, digits })
            }
            Request::SimAutoAnswer { port, after_ms } => {
                let channel = self.port(port)?.id;
                self.far_command(FarCommand::AutoAnswer { channel, after_ms })
            }
            Request::SimTone { port, tone } => {
                let channel = self.port(port)?.id;
                let tone = match tone.as_deref() {
                    None | Some("off") => None,
                    Some("dial") => Some(ProgressTone::Dial),
                    Some("ringback") => Some(ProgressTone::Ringback),
                    Some("busy") => Some(ProgressTone::Busy),
                    Some("congestion") => Some(ProgressTone::Congestion),
                    Some(other) => {
                        return Err(format!(
                            "unknown tone {other:?}: use dial, ringback, busy, congestion or off"
                        ))
                    }
                };
                self.far_command(FarCommand::Tone { channel, tone })
            }
            Request::SimEcho { port, loss_db } => {
                let channel = self.port(port)?.id;
                self.far_command(FarCommand::Echo { channel, loss_db })
            }
            // Handled in `handle_request`, which can answer later.
            Request::SimRecord { .. } => Err("internal: sim.record routed wrongly".into()),
            // The connection task runs the shell.
            Request::Shell { .. } => Err("internal: shell routed wrongly".into()),
        }
    }

    /// Waiting calls with their waiting times and calls in conversation, for panels.
    fn calls_json(&self, now: Instant) -> serde_json::Value {
        let caller = |call: CallId| self.records.get(&call).map(|r| r.caller.clone()).unwrap_or_default();
        let waiting: Vec<_> = self
            .calls
            .waiting(now)
            .into_iter()
            .map(|(call, trunk, waited)| {
                json!({ "call": self.call_id(call), "caller": caller(call), "trunk": trunk.port(),
                        "waitingS": (waited.as_secs_f64() * 10.0).round() / 10.0 })
            })
            .collect();
        let talking: Vec<_> = self
            .calls
            .calls()
            .filter_map(|(call, trunk, seat)| {
                let seat = seat?;
                // A three-party conference lists its other seats.
                let conference: Vec<u16> =
                    self.calls.conference_seats(call).iter().map(|s| s.port()).collect();
                Some(json!({ "call": self.call_id(call), "caller": caller(call), "trunk": trunk.port(),
                             "sliceNo": seat.port(), "conference": conference,
                             "vocid": self.records.get(&call).and_then(|r| r.vocid.clone()) }))
            })
            .collect();
        json!({ "waiting": waiting, "talking": talking })
    }

    fn status(&self) -> serde_json::Value {
        let stats = self.engine.stats().snapshot();
        let ports: Vec<_> = self
            .info
            .channels
            .iter()
            .map(|c| json!({ "port": c.id.port(), "kind": c.kind.name(), "span": c.span + 1 }))
            .collect();
        let calls: Vec<_> = self
            .calls
            .calls()
            .map(|(call, trunk, seat)| {
                json!({
                    "call": self.call_id(call),
                    "trunk": trunk.port(),
                    "seat": seat.map(|s| s.port()),
                    "vocid": self.records.get(&call).and_then(|r| r.vocid.clone()),
                })
            })
            .collect();
        json!({
            "version": env!("CARGO_PKG_VERSION"),
            "card": self.info.name,
            "realtime_scheduling": self.engine.realtime_scheduling,
            "engine": stats,
            "ports": ports,
            "calls": calls,
            "agent_port": self.agent_addr.port(),
            "agent_sessions": self.agent_sessions.len(),
            "recorder": {
                "blocks_written": self.rec_stats.blocks_written(),
                "blocks_unknown_slot": self.rec_stats.blocks_unknown_slot(),
                "files_failed": self.rec_stats.files_failed(),
            },
            "sim_reports_dropped": self.far.dropped.load(std::sync::atomic::Ordering::Relaxed),
            "ivr": self.ivr_status(),
        })
    }
}

fn digit_string(s: &str, what: &str, ok: fn(char) -> bool) -> Result<heapless::String<MAX_DIGITS>, String> {
    if let Some(bad) = s.chars().find(|&c| !ok(c)) {
        return Err(format!("unknown digit {bad:?} in {what} {s:?}: DTMF digits are 0-9, *, #, A-D"));
    }
    heapless::String::try_from(s).map_err(|_| format!("{what} {s:?} is longer than {MAX_DIGITS} digits"))
}

/// Loads a WAV file to play into a line: a regular file of at most [`MAX_PLAY_BYTES`].
pub(super) async fn load_wav(path: PathBuf) -> Result<Arc<[i16]>, String> {
    tokio::task::spawn_blocking(move || {
        let meta = std::fs::metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        if !meta.is_file() {
            return Err(format!("{}: not a regular file", path.display()));
        }
        if meta.len() > MAX_PLAY_BYTES {
            return Err(format!(
                "{}: {} bytes is more than the {MAX_PLAY_BYTES} a prompt may have",
                path.display(),
                meta.len()
            ));
        }
        let wav = crate::audio::wav::read_wav(&path).map_err(|e| e.to_string())?;
        let samples = crate::audio::wav::to_8k(wav).map_err(|e| e.to_string())?;
        Ok(Arc::from(samples))
    })
    .await
    .map_err(|e| format!("loading the WAV file failed: {e}"))?
}

/// The caller id in an FSK message from a trunk, in the call model's terms; None for a
/// message that is not caller id (message waiting).
fn caller_id_info(
    message: &crate::dsp::callerid::RawMessage,
    standard: crate::dsp::callerid::Standard,
) -> Result<Option<crate::line::CallerIdInfo>, crate::dsp::callerid::CallerIdError> {
    use crate::dsp::callerid::{Absence, Message};
    let Message::CallerId(id) = message.parse(standard)? else { return Ok(None) };
    let absence = id.number_absence.map(|a| match a {
        Absence::Private => 'P',
        Absence::Unavailable | Absence::International => 'O',
        Absence::Other(b) if b.is_ascii_graphic() => char::from(b),
        Absence::Other(_) => 'O',
    });
    Ok(Some(crate::line::CallerIdInfo { number: id.number, name: id.name, absence }))
}

fn describe_report(report: FarReport) -> (ChannelId, String) {
    match report {
        FarReport::Ringing { channel, .. } => (channel, "ringing".into()),
        FarReport::Connected { channel } => (channel, "connected".into()),
        FarReport::HungUp { channel } => (channel, "hung up".into()),
        FarReport::Released { channel } => (channel, "released by the switch".into()),
        FarReport::DigitsSent { channel } => (channel, "digits sent".into()),
        FarReport::PlayDone { channel } => (channel, "finished playing".into()),
        FarReport::HeardDigit { channel, digit } => (channel, format!("heard digit {digit}")),
        FarReport::HeardTone { channel, tone } => (channel, format!("heard {} tone", tone.name())),
        FarReport::HeardSpeech { channel, speech } => {
            (channel, if speech { "hears sound".into() } else { "hears silence".into() })
        }
        FarReport::Recorded { channel } => (channel, "recording done".into()),
        FarReport::Dialled { channel, number } => (channel, format!("exchange got number {number}")),
        FarReport::Refused { channel, reason } => (channel, format!("refused: {reason}")),
        FarReport::Display { channel, message } => {
            (channel, format!("display {}", crate::sim::display_text(&message)))
        }
        FarReport::DisplayGarbled { channel, error } => (channel, format!("display garbled: {error}")),
    }
}

fn cdr_json(c: &store::Cdr) -> serde_json::Value {
    json!({
        "call_id": c.call_id,
        "start": c.start_utc,
        "answer": c.answer_utc,
        "end": c.end_utc,
        "caller": c.caller,
        "callee": c.callee,
        "trunk_port": c.trunk_port,
        "seat_port": c.seat_port,
        "direction": c.direction.as_str(),
        "disposition": c.disposition.as_str(),
        "cause": c.cause,
        "vocid": c.vocid,
        "duration_ms": c.duration_ms,
        "talk_ms": c.talk_ms,
        "agent_id": c.agent_id,
        "queue": c.queue,
        "wait_ms": c.wait_ms,
        "flow": c.flow,
    })
}
