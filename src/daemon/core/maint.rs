//! The core's side of the maintenance shell: it answers the shell's commands from the state
//! it owns (spans, channels, calls, agents, queues, alarms, counters), and runs the line tests
//! on the media engine.
//!
//! Every answer is plain text lines of at most 80 columns; the shell session pages and filters
//! them. A line test takes its channel out of service for its duration (unless a technician
//! had blocked it already) so that no call lands on it mid-test.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use switchboard_driver_api::{ChannelId, ChannelKind, LineCommand, SpanKind};
use time::OffsetDateTime;
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::Core;
use crate::audio::recorder::{RecControl, RecDone};
use crate::daemon::shell::{ShellMsg, ShellOut};
use crate::media::{EngineCmd, EngineEvent};
use crate::shell::command::{ChannelFilter, Command};

/// The frequency of the line test tone (ITU-T O.6's 1004 Hz, off the sampling rate's
/// sub-multiples so that every sample value is exercised).
pub(super) const TEST_TONE_HZ: u16 = 1004;

/// How long a tone test waits for its tone to come back before measuring, in 20 ms blocks.
const MEASURE_AFTER_BLOCKS: u32 = 5;

/// How many alarm changes `show alarms` remembers.
const ALARM_HISTORY: usize = 20;

/// Current span alarms and the last changes, for `show alarms` and `show spans`.
#[derive(Default)]
pub(super) struct AlarmBoard {
    /// By card span index: the alarm text and since when.
    active: BTreeMap<u16, (String, OffsetDateTime)>,
    history: VecDeque<(OffsetDateTime, u16, String)>,
}

impl AlarmBoard {
    /// Notes a span's alarms (`text` empty: cleared).
    pub(super) fn set(&mut self, card_span: u16, text: &str, at: OffsetDateTime) {
        if text.is_empty() {
            self.active.remove(&card_span);
        } else {
            self.active.insert(card_span, (text.to_string(), at));
        }
        if self.history.len() == ALARM_HISTORY {
            self.history.pop_front();
        }
        self.history.push_back((at, card_span, if text.is_empty() { "cleared".into() } else { text.into() }));
    }

    fn of(&self, card_span: u16) -> Option<&str> {
        self.active.get(&card_span).map(|(t, _)| t.as_str())
    }
}

/// What a running line test does.
#[derive(Clone, Debug)]
enum TestKind {
    Loopback,
    Tone { level_dbm0: i32 },
    DtmfSend { digits: String },
    DtmfDetect { heard: String },
    Record { slot: u16, path: PathBuf, stopped: bool },
}

/// A line test in progress on one channel.
pub(super) struct LineTest {
    job: u64,
    kind: TestKind,
    /// When the test ends by itself (DTMF sending ends when the digits are out).
    until: Option<Instant>,
    out: mpsc::UnboundedSender<ShellOut>,
    /// The technician had blocked the channel before: leave it blocked afterwards.
    was_blocked: bool,
    /// A trunk the test took off-hook, to put back on-hook after.
    seized: bool,
    /// When to start measuring the tone that comes back (once the line's round trip is over),
    /// and for how many blocks.
    measure: Option<(Instant, u16)>,
}

fn hms(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 86_400 {
        format!("{}d {:02}:{:02}:{:02}", s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60)
    } else {
        format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    }
}

fn clock(t: OffsetDateTime) -> String {
    t.format(time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"))
        .unwrap_or_default()
}

/// Cuts a value to `n` characters so that the table keeps its columns.
fn fit(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('>');
        t
    }
}

impl Core {
    /// A message from a shell session.
    pub(super) async fn shell_msg(&mut self, msg: ShellMsg) {
        match msg {
            ShellMsg::Run { job, user, command, out } => {
                let now = Instant::now();
                let result = self.shell_command(now, job, &user, command, &out).await;
                match result {
                    Ok(Some(lines)) => {
                        let _ = out.send(ShellOut::Reply(lines));
                    }
                    // The command goes on (a line test): it says Done itself.
                    Ok(None) => {}
                    Err(e) => {
                        let _ = out.send(ShellOut::Done(Some(e)));
                    }
                }
            }
            ShellMsg::Cancel { job } => {
                let channel = self.line_tests.iter().find(|(_, t)| t.job == job).map(|(c, _)| *c);
                if let Some(channel) = channel {
                    self.end_line_test(channel, Some("cancelled".into()));
                }
            }
        }
        // Blocking, unblocking and hanging up leave the call model with actions.
        self.apply_actions().await;
    }

    /// Runs a command: its answer lines, or `None` when it goes on and answers later.
    async fn shell_command(
        &mut self,
        now: Instant,
        job: u64,
        user: &str,
        command: Command,
        out: &mpsc::UnboundedSender<ShellOut>,
    ) -> Result<Option<Vec<String>>, String> {
        let lines = match command {
            Command::ShowSpans => self.show_spans(),
            Command::ShowChannels { filter } => self.show_channels(now, filter),
            Command::ShowCalls => self.show_calls(now),
            Command::ShowAgents => self.show_agents(),
            Command::ShowQueues => self.show_queues(now),
            Command::ShowAlarms => self.show_alarms(),
            Command::ShowVersion => self.show_version(now),
            Command::ShowStats => self.show_stats(),
            Command::Hangup { target } => vec![self.shell_hangup(now, user, &target)?],
            Command::Block { port } => vec![self.shell_block(now, user, port, true)?],
            Command::Unblock { port } => vec![self.shell_block(now, user, port, false)?],
            Command::Reload => {
                info!("maintenance shell ({user}): reload");
                self.reload_config().await?
            }
            Command::TestLoopback { port, seconds } => {
                return self.start_line_test(now, job, port, seconds, TestKind::Loopback, out).map(|()| None)
            }
            Command::TestTone { port, seconds, level_dbm0 } => {
                if !(-60..=3).contains(&level_dbm0) {
                    return Err(format!("test tone: level {level_dbm0} dBm0 is not between -60 and 3"));
                }
                return self
                    .start_line_test(now, job, port, seconds, TestKind::Tone { level_dbm0 }, out)
                    .map(|()| None);
            }
            Command::TestDtmfSend { port, digits } => {
                return self
                    .start_line_test(now, job, port, 0, TestKind::DtmfSend { digits }, out)
                    .map(|()| None)
            }
            Command::TestDtmfDetect { port, seconds } => {
                return self
                    .start_line_test(
                        now,
                        job,
                        port,
                        seconds,
                        TestKind::DtmfDetect { heard: String::new() },
                        out,
                    )
                    .map(|()| None)
            }
            Command::TestRecord { port, seconds } => {
                let kind = TestKind::Record { slot: 0, path: PathBuf::new(), stopped: false };
                return self.start_line_test(now, job, port, seconds, kind, out).map(|()| None);
            }
            // The session and its transport answer the others themselves.
            other => return Err(format!("internal: {other:?} is not the core's to run")),
        };
        Ok(Some(lines))
    }

    fn show_spans(&self) -> Vec<String> {
        let mut lines = vec![format!(
            "{:<5} {:<7} {:<24} {:>5}  {:<12} {}",
            "Span", "Kind", "Name", "Chans", "Signalling", "Alarm"
        )];
        for span in &self.info.spans {
            let chans = self.info.channels.iter().filter(|c| c.span == span.index).count();
            let kind = match span.kind {
                SpanKind::Analog => "analog",
                SpanKind::E1 => "E1",
                SpanKind::Sound => "sound",
            };
            let signalling = match self.pri.link_up(span.index) {
                Some(true) => "PRI, up",
                Some(false) => "PRI, down",
                None if span.kind == SpanKind::E1 => "none",
                None => "",
            };
            let alarm = self.alarms.of(span.index).unwrap_or("OK");
            lines.push(format!(
                "{:<5} {:<7} {:<24} {:>5}  {:<12} {}",
                span.index + 1,
                kind,
                fit(&span.name, 24),
                chans,
                signalling,
                fit(alarm, 18)
            ));
        }
        lines
    }

    fn show_channels(&self, now: Instant, filter: Option<ChannelFilter>) -> Vec<String> {
        let mut lines = vec![format!(
            "{:>4} {:>4} {:>3} {:<6} {:<10} {:<12} {}",
            "Port", "Span", "Pos", "Kind", "State", "Call", "Blocked"
        )];
        for c in &self.info.channels {
            if filter.is_some_and(|f| !f.matches(c.id.port(), c.kind)) {
                continue;
            }
            let kind = match c.kind {
                ChannelKind::FxoTrunk => "trunk",
                ChannelKind::FxsSeat => "seat",
                ChannelKind::E1Bearer => "e1-b",
                ChannelKind::E1Signalling => "e1-d",
                ChannelKind::Sound => "sound",
            };
            let (mut state, call) = self.calls.port_state(now, c.id);
            if self.line_tests.contains_key(&c.id) {
                state = "testing";
            }
            if self.alarms.of(c.span).is_some() {
                state = "alarm";
            }
            let call = call.map(|call| self.call_id(call)).unwrap_or_default();
            let blocked = if self.calls.is_blocked(c.id) { "yes" } else { "" };
            lines.push(format!(
                "{:>4} {:>4} {:>3} {:<6} {:<10} {:<12} {}",
                c.id.port(),
                c.span + 1,
                c.position,
                kind,
                state,
                fit(&call, 12),
                blocked
            ));
        }
        if lines.len() == 1 {
            lines.push("(no channel matches)".into());
        }
        lines
    }

    fn show_calls(&self, now: Instant) -> Vec<String> {
        let mut lines = vec![format!(
            "{:<12} {:>5} {:>5} {:<10} {:<18} {:>8} {}",
            "Call", "Trunk", "Seat", "State", "Caller", "Age", "VOCID"
        )];
        for (call, trunk, seat) in self.calls.calls() {
            let (state, _) = self.calls.port_state(now, trunk);
            let record = self.records.get(&call);
            let caller = record.map(|r| r.caller.as_str()).unwrap_or("");
            let age = self.calls.age(call, now).map(hms).unwrap_or_default();
            let vocid = record.and_then(|r| r.vocid.as_deref()).unwrap_or("");
            lines.push(format!(
                "{:<12} {:>5} {:>5} {:<10} {:<18} {:>8} {}",
                fit(&self.call_id(call), 12),
                trunk.port(),
                seat.map(|s| s.port().to_string()).unwrap_or_else(|| "-".into()),
                state,
                fit(caller, 18),
                age,
                fit(vocid, 14)
            ));
        }
        if lines.len() == 1 {
            lines.push("(no calls)".into());
        }
        lines
    }

    fn show_agents(&self) -> Vec<String> {
        let mut lines = vec![format!(
            "{:>4} {:<5} {:<12} {:<20} {:<11} {}",
            "Seat", "Kind", "Agent", "Name", "State", "Reason"
        )];
        for (seat, agent, state, reason) in self.hub.seat_list() {
            let kind =
                if self.info.channels.get(usize::from(seat.0)).map(|c| c.kind) == Some(ChannelKind::Sound) {
                    "sound"
                } else {
                    "phone"
                };
            lines.push(format!(
                "{:>4} {:<5} {:<12} {:<20} {:<11} {}",
                seat.port(),
                kind,
                fit(agent.map(|a| a.agent.as_str()).unwrap_or("-"), 12),
                fit(agent.map(|a| a.name.as_str()).unwrap_or(""), 20),
                state.name(),
                fit(reason, 20)
            ));
        }
        if lines.len() == 1 {
            lines.push("(no seats)".into());
        }
        lines
    }

    fn show_queues(&self, now: Instant) -> Vec<String> {
        let waiting = self.calls.waiting(now);
        let seat_of = self.hub.agent_seats();
        let mut lines = vec![format!(
            "{:<16} {:<11} {:>7} {:>8} {:>7} {:>9}",
            "Queue", "Strategy", "Waiting", "Longest", "Members", "Available"
        )];
        for (q, queue) in self.acd.queues().iter().enumerate() {
            let route = self.queue_base + q;
            let mine: Vec<_> =
                waiting.iter().filter(|(call, _, _)| self.calls.route_of(*call) == Some(route)).collect();
            let longest = mine.iter().map(|(_, _, w)| *w).max().unwrap_or_default();
            let available = queue
                .members
                .iter()
                .filter(|(agent, _)| seat_of.get(agent).is_some_and(|s| self.hub.is_available(*s)))
                .count();
            lines.push(format!(
                "{:<16} {:<11} {:>7} {:>8} {:>7} {:>9}",
                fit(&queue.name, 16),
                fit(&format!("{:?}", queue.strategy).to_ascii_lowercase(), 11),
                mine.len(),
                hms(longest),
                queue.members.len(),
                available
            ));
        }
        if lines.len() == 1 {
            lines.push("(no queues configured)".into());
        }
        lines
    }

    fn show_alarms(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if self.alarms.active.is_empty() {
            lines.push("No span is in alarm.".into());
        } else {
            lines.push("Active alarms:".into());
            for (span, (text, since)) in &self.alarms.active {
                lines.push(format!(
                    "  span {:<3} {:<30} since {} UTC",
                    span + 1,
                    fit(text, 30),
                    clock(*since)
                ));
            }
        }
        let blocked: Vec<String> = self
            .info
            .channels
            .iter()
            .filter(|c| self.calls.is_blocked(c.id) && !self.line_tests.contains_key(&c.id))
            .map(|c| c.id.port().to_string())
            .collect();
        if !blocked.is_empty() {
            lines.push(String::new());
            // Wrapped so that a long list still fits 80 columns.
            let mut line = "Blocked for maintenance: ports".to_string();
            for port in blocked {
                if line.len() + port.len() + 1 > 78 {
                    lines.push(std::mem::replace(&mut line, "  ".into()));
                }
                line.push(' ');
                line.push_str(&port);
            }
            lines.push(line);
        }
        if !self.alarms.history.is_empty() {
            lines.push(String::new());
            lines.push("Recent changes:".into());
            for (at, span, text) in self.alarms.history.iter().rev() {
                lines.push(format!("  {} UTC  span {:<3} {}", clock(*at), span + 1, fit(text, 40)));
            }
        }
        lines
    }

    fn show_version(&self, now: Instant) -> Vec<String> {
        let up = now.saturating_duration_since(self.started);
        let config =
            self.config_path.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "built-in".into());
        vec![
            format!("Switchboard {}", env!("CARGO_PKG_VERSION")),
            format!("Card:       {} ({} channels)", fit(&self.info.name, 50), self.info.channels.len()),
            format!("Uptime:     {} (since {} UTC)", hms(up), clock(self.wall(self.started))),
            format!("Config:     {}", fit(&config, 66)),
            format!("Data:       {}", fit(&self.data_dir.display().to_string(), 66)),
            format!(
                "Real-time:  {}",
                if self.engine.realtime_scheduling {
                    "SCHED_FIFO media thread"
                } else {
                    "not available (normal scheduling)"
                }
            ),
        ]
    }

    fn show_stats(&self) -> Vec<String> {
        let s = self.engine.stats().snapshot();
        let avg_us = if s.ticks == 0 { 0.0 } else { s.busy_ns as f64 / s.ticks as f64 / 1000.0 };
        let mut lines = vec![
            "Media engine".to_string(),
            format!(
                "  ticks {:>12}   deadline misses {:>8}   card errors {:>8}",
                s.ticks, s.deadline_misses, s.card_errors
            ),
            format!(
                "  tick average {:>7.1} us   longest {:>7.1} us   of a 20 ms budget: {:.2} %",
                avg_us,
                s.max_tick_ns as f64 / 1000.0,
                avg_us / 200.0
            ),
            "Queue overflows (lost)".to_string(),
            format!(
                "  engine events {:>7}   engine commands {:>7}   recording blocks {:>7}",
                s.events_dropped, s.commands_dropped, s.recording_blocks_dropped
            ),
            format!(
                "  card events {:>9}   simulator reports {:>5}   recorder files failed {:>3}",
                s.card_events_lost,
                self.far.dropped.load(std::sync::atomic::Ordering::Relaxed),
                self.rec_stats.files_failed()
            ),
            "Threads (CPU since each started)".to_string(),
        ];
        match thread_loads() {
            Ok(threads) => {
                for t in threads {
                    lines.push(format!(
                        "  {:<18} {:>6.2} %   {:>10.2} s CPU",
                        fit(&t.name, 18),
                        t.load_percent,
                        t.cpu_seconds
                    ));
                }
            }
            Err(e) => lines.push(format!("  cannot read /proc/self/task: {e}")),
        }
        lines
    }

    fn shell_hangup(&mut self, now: Instant, user: &str, target: &str) -> Result<String, String> {
        let target = target.trim();
        let by_id = self.calls.calls().map(|(c, _, _)| c).find(|&c| self.call_id(c) == target);
        let call = match by_id {
            Some(c) => c,
            None => {
                let port: u16 = target.parse().map_err(|_| {
                    format!("hangup: no call {target:?} (give a call id from `show calls` or a port)")
                })?;
                let ch = self.port(port)?.id;
                let (_, call) = self.calls.port_state(now, ch);
                call.ok_or_else(|| format!("hangup: no call on port {port}"))?
            }
        };
        let id = self.call_id(call);
        if !self.calls.release_call(now, call, "released from the maintenance shell") {
            return Err(format!("hangup: call {id} cannot be released now"));
        }
        warn!("maintenance shell ({user}): call {id} released");
        Ok(format!("Call {id} released."))
    }

    fn shell_block(&mut self, now: Instant, user: &str, port: u16, block: bool) -> Result<String, String> {
        let ch = self.port(port)?;
        let (id, kind) = (ch.id, ch.kind);
        if kind == ChannelKind::E1Signalling {
            return Err(format!("port {port} is an E1 D-channel: block its span's bearers instead"));
        }
        if let Some(test) = self.line_tests.get_mut(&id) {
            // The test puts the channel back as the technician now wants it.
            test.was_blocked = block;
            return Ok(format!(
                "Port {port} will be {} when its line test ends.",
                if block { "blocked" } else { "unblocked" }
            ));
        }
        let was = self.calls.is_blocked(id);
        self.calls.set_blocked(now, id, block);
        if was == block {
            return Ok(format!("Port {port} was already {}.", if block { "blocked" } else { "unblocked" }));
        }
        warn!("maintenance shell ({user}): port {port} {}", if block { "blocked" } else { "unblocked" });
        let (_, call) = self.calls.port_state(now, id);
        Ok(match (block, call) {
            (true, Some(call)) => {
                format!(
                    "Port {port} blocked: call {} on it goes on; no new call will use it.",
                    self.call_id(call)
                )
            }
            (true, None) => format!("Port {port} blocked: no new call will use it."),
            (false, _) => format!("Port {port} unblocked."),
        })
    }

    fn start_line_test(
        &mut self,
        now: Instant,
        job: u64,
        port: u16,
        seconds: u32,
        mut kind: TestKind,
        out: &mpsc::UnboundedSender<ShellOut>,
    ) -> Result<(), String> {
        let ch = self.port(port)?;
        let (channel, ch_kind) = (ch.id, ch.kind);
        if !ch_kind.carries_audio() {
            return Err(format!("port {port} is a {} port and carries no audio", ch_kind.name()));
        }
        if self.line_tests.contains_key(&channel) {
            return Err(format!("port {port} is already under test"));
        }
        let (state, call) = self.calls.port_state(now, channel);
        if let Some(call) = call {
            return Err(format!(
                "port {port} has call {} ({state}): wait for it to end, or block the port and try again",
                self.call_id(call)
            ));
        }
        let seconds = seconds.clamp(1, 600);
        let mut until = Some(now + Duration::from_secs(u64::from(seconds)));
        let mut measure = None;
        // An idle analog trunk carries audio only off-hook: the test seizes the line (the
        // exchange gives dial tone, or the call ringing in is answered).
        let seized = ch_kind == ChannelKind::FxoTrunk;
        let start = match &mut kind {
            TestKind::Loopback => {
                let mut sources = heapless::Vec::new();
                let _ = sources.push(channel);
                self.engine(EngineCmd::Listen { channel, sources });
                format!("Port {port}: looping back what the line sends, for {seconds} s (Ctrl-C stops).")
            }
            TestKind::Tone { level_dbm0 } => {
                let level = *level_dbm0 as i8;
                self.engine(EngineCmd::PlayTestTone { channel, freq_hz: TEST_TONE_HZ, level_dbm0: level });
                // Measuring starts once the tone has had time to come back (a few blocks on
                // a DAHDI card), so that the first silent blocks do not lower the reading.
                let blocks =
                    (seconds * 50).saturating_sub(MEASURE_AFTER_BLOCKS).clamp(1, u32::from(u16::MAX)) as u16;
                measure = Some((now + Duration::from_millis(u64::from(MEASURE_AFTER_BLOCKS) * 20), blocks));
                // The level report ends the test; the deadline only guards against it never coming.
                until = Some(now + Duration::from_secs(u64::from(seconds) + 2));
                format!("Port {port}: sending {TEST_TONE_HZ} Hz at {level} dBm0 and measuring what comes back, {seconds} s.")
            }
            TestKind::DtmfSend { digits } => {
                let digits: heapless::String<{ crate::media::MAX_DTMF_DIGITS }> =
                    heapless::String::try_from(digits.as_str()).map_err(|_| {
                        format!("test dtmf: at most {} digits", crate::media::MAX_DTMF_DIGITS)
                    })?;
                let n = digits.len();
                self.engine(EngineCmd::SendDtmf { channel, digits });
                until = Some(now + Duration::from_millis(200 * n as u64 + 2000));
                format!("Port {port}: sending {n} DTMF digits.")
            }
            TestKind::DtmfDetect { .. } => {
                format!("Port {port}: listening for DTMF digits for {seconds} s (Ctrl-C stops).")
            }
            TestKind::Record { slot, path, .. } => {
                let free = self.free_slots.pop().ok_or("all recording slots are busy: try again later")?;
                let stamp = OffsetDateTime::now_utc()
                    .format(time::macros::format_description!("[year][month][day]-[hour][minute][second]"))
                    .unwrap_or_default();
                let rel = PathBuf::from("line-tests").join(format!("port{port}-{stamp}.wav"));
                let Some(control) = self.rec_control.as_ref() else {
                    self.free_slots.push(free);
                    return Err("the recorder is stopping".into());
                };
                let open = RecControl::Open {
                    slot: free,
                    vocid: format!("line test port {port}"),
                    path: rel.clone(),
                };
                if control.send(open).is_err() {
                    self.free_slots.push(free);
                    return Err("the recorder is not running".into());
                }
                self.engine(EngineCmd::RecordStart { channel, slot: free });
                *slot = free;
                *path = rel.clone();
                format!(
                    "Port {port}: recording both directions for {seconds} s to {}.",
                    self.data_dir.join(&rel).display()
                )
            }
        };
        // Seized only once nothing can fail any more, so that a refused test never leaves the
        // line off-hook. The engine takes this in the same tick as the commands above.
        if seized {
            self.engine(EngineCmd::Line { channel, command: LineCommand::OffHook });
        }
        let was_blocked = self.calls.is_blocked(channel);
        self.calls.set_blocked(now, channel, true);
        info!("line test on port {port}: {kind:?}");
        let _ = out.send(ShellOut::Stream(vec![start]));
        self.line_tests
            .insert(channel, LineTest { job, kind, until, out: out.clone(), was_blocked, seized, measure });
        Ok(())
    }

    /// Takes the engine events a line test is waiting for. True when the event was a test's.
    pub(super) fn line_test_event(&mut self, event: &EngineEvent) -> bool {
        match event {
            EngineEvent::Dtmf { channel, digit } => {
                let Some(test) = self.line_tests.get_mut(channel) else { return false };
                match &mut test.kind {
                    TestKind::DtmfDetect { heard } => {
                        heard.push(*digit);
                        let _ = test.out.send(ShellOut::Stream(vec![format!("  digit {digit}")]));
                    }
                    // A tone or a loopback can sound like a digit; during a test it is the
                    // test's, never a caller's.
                    _ => {}
                }
                true
            }
            EngineEvent::CommandFailed { channel, reason } => {
                if !self.line_tests.contains_key(channel) {
                    return false;
                }
                self.end_line_test(*channel, Some(format!("the media engine refused the test: {reason}")));
                true
            }
            EngineEvent::DtmfSent { channel } => {
                if !matches!(self.line_tests.get(channel).map(|t| &t.kind), Some(TestKind::DtmfSend { .. })) {
                    return false;
                }
                self.end_line_test(*channel, None);
                true
            }
            EngineEvent::Level { channel, level } => {
                let Some(test) = self.line_tests.get(channel) else { return true };
                let TestKind::Tone { level_dbm0 } = test.kind else { return true };
                let db = |c: i32| c as f64 / 100.0;
                let lines = vec![
                    format!("  sent:     {TEST_TONE_HZ} Hz at {level_dbm0:.1} dBm0"),
                    format!(
                        "  received: {:.1} dBm0 at {TEST_TONE_HZ} Hz, {:.1} dBm0 in all (peak {})",
                        db(level.tone_cdbm0),
                        db(level.total_cdbm0),
                        level.peak
                    ),
                    if level.tone_cdbm0 <= -6000 {
                        "  nothing came back at the test frequency".to_string()
                    } else {
                        format!("  loss:     {:.1} dB", f64::from(level_dbm0) - db(level.tone_cdbm0))
                    },
                ];
                let _ = test.out.send(ShellOut::Stream(lines));
                self.end_line_test(*channel, None);
                true
            }
            _ => false,
        }
    }

    /// Starts the measurements that are due and ends the tests whose time is up.
    pub(super) fn line_test_timers(&mut self, now: Instant) {
        let start: Vec<(ChannelId, u16)> = self
            .line_tests
            .iter_mut()
            .filter_map(|(c, t)| match t.measure {
                Some((at, blocks)) if at <= now => {
                    t.measure = None;
                    Some((*c, blocks))
                }
                _ => None,
            })
            .collect();
        for (channel, blocks) in start {
            self.engine(EngineCmd::MeasureLevel { channel, freq_hz: TEST_TONE_HZ, blocks });
        }
        let due: Vec<ChannelId> = self
            .line_tests
            .iter()
            .filter(|(_, t)| t.until.is_some_and(|u| u <= now))
            .map(|(c, _)| *c)
            .collect();
        for channel in due {
            let error = match self.line_tests.get(&channel).map(|t| &t.kind) {
                Some(TestKind::Tone { .. }) => {
                    Some("no level measurement came back from the media engine".into())
                }
                Some(TestKind::DtmfSend { .. }) => Some("the digits were not all sent in time".into()),
                _ => None,
            };
            self.end_line_test(channel, error);
        }
    }

    /// Stops a test, puts the channel back and tells the shell (a recording finishes when the
    /// recorder has closed the file).
    fn end_line_test(&mut self, channel: ChannelId, error: Option<String>) {
        let Some(test) = self.line_tests.get_mut(&channel) else { return };
        let mut commands = Vec::new();
        let mut summary = None;
        let mut close = None;
        match &mut test.kind {
            TestKind::Loopback => commands.push(EngineCmd::Listen { channel, sources: heapless::Vec::new() }),
            TestKind::Tone { .. } => commands.push(EngineCmd::StopPlay { channel }),
            TestKind::DtmfSend { digits } => {
                if error.is_none() {
                    summary = Some(format!("  sent {digits}"));
                }
            }
            TestKind::DtmfDetect { heard } => {
                summary = Some(if heard.is_empty() {
                    "  no digit heard".into()
                } else {
                    format!("  heard {heard} ({} digits)", heard.len())
                });
            }
            TestKind::Record { slot, stopped, .. } => {
                if !*stopped {
                    *stopped = true;
                    commands.push(EngineCmd::RecordStop { channel });
                    close = Some(*slot);
                }
            }
        }
        if close.is_some() {
            test.until = None;
        }
        if let Some(line) = summary {
            let _ = test.out.send(ShellOut::Stream(vec![line]));
        }
        for cmd in commands {
            self.engine(cmd);
        }
        if let Some(slot) = close {
            if let Some(control) = &self.rec_control {
                let _ = control.send(RecControl::Close { slot });
            }
            // The recorder's answer (`line_test_recorded`) ends the test.
            if error.is_none() {
                return;
            }
        }
        self.finish_line_test(channel, error);
    }

    /// A recording finished: true when it was a line test's.
    pub(super) fn line_test_recorded(&mut self, done: &RecDone) -> bool {
        let channel = self.line_tests.iter().find_map(|(c, t)| match &t.kind {
            TestKind::Record { slot, .. } if *slot == done.slot => Some(*c),
            _ => None,
        });
        let Some(channel) = channel else { return false };
        self.quarantine.push((Instant::now() + super::SLOT_QUARANTINE, done.slot));
        let path = self.data_dir.join(&done.path);
        let (line, error) = match &done.result {
            Ok(()) => {
                (Some(format!("  wrote {} ({:.1} s)", path.display(), done.samples as f64 / 8000.0)), None)
            }
            Err(e) => (None, Some(format!("the recording failed: {e}"))),
        };
        if let (Some(line), Some(test)) = (line, self.line_tests.get(&channel)) {
            let _ = test.out.send(ShellOut::Stream(vec![line]));
        }
        if let Some(test) = self.line_tests.get_mut(&channel) {
            // Already stopped: end it without stopping again.
            if let TestKind::Record { stopped, .. } = &mut test.kind {
                *stopped = true;
            }
        }
        self.finish_line_test(channel, error);
        true
    }

    fn finish_line_test(&mut self, channel: ChannelId, error: Option<String>) {
        let Some(test) = self.line_tests.remove(&channel) else { return };
        if test.seized {
            self.engine(EngineCmd::Line { channel, command: LineCommand::OnHook });
        }
        if !test.was_blocked {
            self.calls.set_blocked(Instant::now(), channel, false);
        }
        let _ = test.out.send(ShellOut::Done(error));
    }
}

/// One thread of the daemon and the CPU it used.
struct ThreadLoad {
    name: String,
    cpu_seconds: f64,
    /// CPU time over the thread's lifetime, in percent of one core.
    load_percent: f64,
}

/// Reads every thread's CPU time from `/proc/self/task`.
fn thread_loads() -> std::io::Result<Vec<ThreadLoad>> {
    let ticks =
        nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok().flatten().unwrap_or(100).max(1) as f64;
    let uptime: f64 = std::fs::read_to_string("/proc/uptime")?
        .split_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.0);
    let mut by_name: HashMap<String, (f64, f64)> = HashMap::new();
    for entry in std::fs::read_dir("/proc/self/task")? {
        let Ok(entry) = entry else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // The name is in parentheses and may hold spaces; the fields follow the last ')'.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { continue };
        let name = stat[open + 1..close].to_string();
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        // After the name: state is field 3, utime 14, stime 15, starttime 22.
        let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        let cpu = (field(14) + field(15)) / ticks;
        let lifetime = (uptime - field(22) / ticks).max(0.001);
        let e = by_name.entry(name).or_insert((0.0, 0.0));
        e.0 += cpu;
        e.1 = e.1.max(lifetime);
    }
    let mut threads: Vec<ThreadLoad> = by_name
        .into_iter()
        .map(|(name, (cpu, life))| ThreadLoad { name, cpu_seconds: cpu, load_percent: cpu / life * 100.0 })
        .collect();
    threads.sort_by(|a, b| b.cpu_seconds.total_cmp(&a.cpu_seconds).then(a.name.cmp(&b.name)));
    Ok(threads)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_loads_include_this_thread() {
        let threads = thread_loads().unwrap();
        assert!(!threads.is_empty());
        assert!(threads.iter().all(|t| t.cpu_seconds >= 0.0 && t.load_percent >= 0.0));
    }

    #[test]
    fn fit_keeps_columns() {
        assert_eq!(fit("abcdef", 4), "abc>");
        assert_eq!(fit("abc", 4), "abc");
        assert_eq!(hms(Duration::from_secs(3661)), "01:01:01");
        assert_eq!(hms(Duration::from_secs(90_061)), "1d 01:01:01");
    }
}
