//! The core's ISDN PRI driver: one sans-IO `pri::Span` per E1 span configured for PRI, fed
//! with the D-channel's frames and the time, and translated to and from the call model.
//!
//! The D-channel's frames travel through a task per span (`dchannel_task`), which owns the
//! transport: on the simulated card a `SOCK_SEQPACKET` socket in the data directory where the
//! span's far end (libpri, another PBX) connects. The stack itself runs in the core, like the
//! call model, so that both see the same `now` and nothing is shared between tasks.
//!
//! The call model sees an E1 bearer as a digital trunk: the driver reports an incoming call
//! with its calling and called numbers, answers, releases and the progress of outgoing calls
//! (`Input::Digital`), and carries out `Action::Digital` commands. A span whose far end goes
//! away is in alarm: its calls are torn down, and it recovers by itself when the far end comes
//! back and the link is up again.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Instant;

use switchboard_driver_api::{Alarms, ChannelId, ChannelKind, LineCommand};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::Core;
use crate::calls::{DigitalCmd, DigitalSignal, Input};
use crate::config::{Config, E1Signalling};
use crate::daemon::dchannel::{FrameLink, SeqpacketListener, MAX_FRAME};
use crate::line::fxo::{DialFailure, FxoSignal, ReleaseReason};
use crate::line::CallerIdInfo;
use crate::media::EngineCmd;
use crate::pri::{self, CallParams, Presentation, PriEvent, Role, Span, SpanConfig};
use switchboard_driver_dahdi::{ChannelFile, DChannel, DRead};

/// Q.850 causes the driver sends.
const NORMAL_CLEARING: u8 = 16;
const UNALLOCATED_NUMBER: u8 = 1;
const TEMPORARY_FAILURE: u8 = 41;

/// What a span's D-channel task tells the core.
#[derive(Debug)]
pub(super) enum DLink {
    /// A frame, with its two FCS bytes.
    Frame(Vec<u8>),
    /// A far end connected.
    Up,
    /// The far end went away (loss of signal).
    Down,
}

/// One E1 span under PRI signalling.
struct PriSpan {
    /// The span's number among the E1 spans, from 1, as the configuration names it.
    number: u16,
    /// The span's index on the card.
    card_span: u16,
    /// The card channel of each B-channel (index = B-channel - 1).
    bearers: Vec<ChannelId>,
    stack: Span,
    /// The stack's settings, to start it afresh when a far end connects.
    config: SpanConfig,
    out: mpsc::UnboundedSender<Vec<u8>>,
    /// Calls on the span, by the stack's call id, with their channel.
    calls: HashMap<pri::CallId, ChannelId>,
    /// Calls we placed (as opposed to calls that came in).
    outgoing: HashSet<pri::CallId>,
    /// Calls that are answered (either way).
    answered: HashSet<pri::CallId>,
    /// Incoming calls still collecting digits (overlap dialling): their calling party and the
    /// digits so far.
    collecting: HashMap<pri::CallId, (CallerIdInfo, String)>,
    /// The span's alarm state as last raised.
    alarm: bool,
}

/// The PRI spans of the card.
#[derive(Default)]
pub(super) struct PriSpans {
    spans: Vec<PriSpan>,
    /// Whether the bearers' far ends are simulated (they are told when a call connects).
    simulated: bool,
}

impl PriSpans {
    /// Whether the D-channel link of the span with this card index is up (None: the span
    /// does not run PRI).
    pub(super) fn link_up(&self, card_span: u16) -> Option<bool> {
        // A span in alarm has no layer 1: its link is down whatever Q.921 still believes.
        self.spans.iter().find(|s| s.card_span == card_span).map(|s| !s.alarm && s.stack.is_link_up())
    }
}

/// Starts a D-channel task for every E1 span configured for PRI: on the simulated card each
/// listens at `DATA_DIR/e1-span<N>.sock`; on a DAHDI card each reads and writes the span's
/// D-channel from `dchannels`. Returns the spans and the frames' channel.
pub(super) fn start(
    config: &Config,
    info: &switchboard_driver_api::CardInfo,
    data_dir: &Path,
    now: Instant,
    mut dchannels: Vec<DChannel<ChannelFile>>,
) -> std::io::Result<(PriSpans, mpsc::UnboundedReceiver<(usize, DLink)>)> {
    let (inbox_tx, inbox) = mpsc::unbounded_channel();
    let mut spans = PriSpans { spans: Vec::new(), simulated: config.sim().is_some() };
    for e1 in &config.e1 {
        let bearers: Vec<ChannelId> = info
            .channels
            .iter()
            .filter(|c| c.span == e1.card_span && c.kind == ChannelKind::E1Bearer)
            .map(|c| c.id)
            .collect();
        let role = match e1.signalling {
            E1Signalling::PriCpe => Role::User,
            E1Signalling::PriNet => Role::Network,
        };
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        let index = spans.spans.len();
        if spans.simulated {
            let path = data_dir.join(format!("e1-span{}.sock", e1.number));
            let listener = SeqpacketListener::bind(&path)?;
            info!("E1 span {}: PRI ({role:?} side), D-channel at {}", e1.number, path.display());
            tokio::spawn(dchannel_task(index, listener, out_rx, inbox_tx.clone()));
        } else if let Some(i) = dchannels.iter().position(|d| d.span() == e1.card_span) {
            let dchan = dchannels.swap_remove(i);
            info!(
                "E1 span {}: PRI ({role:?} side), D-channel on DAHDI channel {}",
                e1.number,
                dchan.channo()
            );
            tokio::spawn(dahdi_dchannel_task(index, dchan, out_rx, inbox_tx.clone()));
        } else {
            warn!("E1 span {}: the card has no D-channel on this span; PRI cannot run on it", e1.number);
        }
        let mut config = SpanConfig::e1(role);
        config.channels = u8::try_from(bearers.len()).unwrap_or(30);
        spans.spans.push(PriSpan {
            number: e1.number,
            card_span: e1.card_span,
            bearers,
            stack: Span::new(config.clone(), now),
            config,
            out: out_tx,
            calls: HashMap::new(),
            outgoing: HashSet::new(),
            answered: HashSet::new(),
            collecting: HashMap::new(),
            // No far end is connected yet: the span starts in alarm (loss of signal).
            alarm: false,
        });
    }
    Ok((spans, inbox))
}

/// Moves one span's frames between its transport and the core. One far end at a time: when
/// it goes away, the span waits for the next one, which is how a restarted peer comes back.
async fn dchannel_task(
    index: usize,
    listener: SeqpacketListener,
    mut out: mpsc::UnboundedReceiver<Vec<u8>>,
    inbox: mpsc::UnboundedSender<(usize, DLink)>,
) {
    loop {
        let link = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(link) => link,
                Err(e) => {
                    warn!("{}: cannot accept the D-channel's far end: {e}", listener.path().display());
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    continue;
                }
            },
            // Frames sent while no far end is connected are lost, as on a dead line.
            frame = out.recv() => match frame {
                Some(_) => continue,
                None => return,
            },
        };
        if inbox.send((index, DLink::Up)).is_err() {
            return;
        }
        if !carry(index, &link, &mut out, &inbox).await {
            return;
        }
        if inbox.send((index, DLink::Down)).is_err() {
            return;
        }
    }
}

/// Moves one span's frames between its DAHDI D-channel and the core. DAHDI delivers whole
/// HDLC frames with their FCS and computes the FCS of what we write itself (the last two
/// bytes are placeholders). Events that DAHDI reports on the D-channel in place of a frame
/// (a bad FCS, an abort, an overrun) are logged; the span's alarms come from the card.
async fn dahdi_dchannel_task(
    index: usize,
    dchan: DChannel<ChannelFile>,
    mut out: mpsc::UnboundedReceiver<Vec<u8>>,
    inbox: mpsc::UnboundedSender<(usize, DLink)>,
) {
    use tokio::io::unix::AsyncFd;
    use tokio::io::Interest;
    let channo = dchan.channo();
    // SAFETY: the AsyncFd owns the D-channel and its descriptor, which stays open while it is
    // registered and is closed only after it is deregistered.
    let mut fd = match unsafe { AsyncFd::register_with_interest(dchan, Interest::READABLE) } {
        Ok(fd) => fd,
        Err(e) => {
            warn!("DAHDI channel {channo}: cannot watch the D-channel: {e}");
            return;
        }
    };
    let mut buf = [0u8; MAX_FRAME];
    loop {
        tokio::select! {
            ready = fd.readable_mut() => {
                let Ok(mut guard) = ready else { return };
                loop {
                    match guard.get_inner_mut().read_frame(&mut buf) {
                        Ok(DRead::Frame(n)) => {
                            if inbox.send((index, DLink::Frame(buf[..n].to_vec()))).is_err() {
                                return;
                            }
                        }
                        Ok(DRead::Event(event)) => debug!("DAHDI channel {channo}: {event:?}"),
                        Ok(DRead::WouldBlock) => {
                            guard.clear_ready();
                            break;
                        }
                        Err(e) => {
                            warn!("DAHDI channel {channo}: reading the D-channel failed: {e}");
                            guard.clear_ready();
                            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                            break;
                        }
                    }
                }
            }
            frame = out.recv() => {
                let Some(frame) = frame else { return };
                // A D-channel with no free buffer takes the frame a few milliseconds later;
                // Q.921 retransmits whatever is lost beyond that.
                for _ in 0..20 {
                    match fd.get_mut().write_frame(&frame) {
                        Ok(true) => break,
                        Ok(false) => tokio::time::sleep(std::time::Duration::from_millis(5)).await,
                        Err(e) => {
                            warn!("DAHDI channel {channo}: writing the D-channel failed: {e}");
                            break;
                        }
                    }
                }
            }
        }
    }
}

/// Carries frames both ways until the far end goes away (true) or the core stops (false).
async fn carry(
    index: usize,
    link: &FrameLink,
    out: &mut mpsc::UnboundedReceiver<Vec<u8>>,
    inbox: &mpsc::UnboundedSender<(usize, DLink)>,
) -> bool {
    let mut buf = [0u8; MAX_FRAME];
    loop {
        tokio::select! {
            received = link.recv(&mut buf) => match received {
                Ok(0) | Err(_) => return true,
                Ok(n) => {
                    if inbox.send((index, DLink::Frame(buf[..n].to_vec()))).is_err() {
                        return false;
                    }
                }
            },
            frame = out.recv() => match frame {
                Some(frame) => {
                    if link.send(&frame).await.is_err() {
                        return true;
                    }
                }
                None => return false,
            },
        }
    }
}

impl PriSpan {
    fn channel(&self, b: u8) -> Option<ChannelId> {
        self.bearers.get(usize::from(b).checked_sub(1)?).copied()
    }

    fn b_channel(&self, channel: ChannelId) -> Option<u8> {
        let i = self.bearers.iter().position(|&c| c == channel)?;
        u8::try_from(i + 1).ok()
    }

    fn call_on(&self, channel: ChannelId) -> Option<pri::CallId> {
        self.calls.iter().find(|(_, &c)| c == channel).map(|(&id, _)| id)
    }
}

/// The caller id the call model gets from a calling party number.
fn caller_of(calling: Option<pri::CallingNumber>) -> CallerIdInfo {
    match calling {
        None => CallerIdInfo { absence: Some('O'), ..CallerIdInfo::default() },
        Some(n) => match n.presentation {
            Presentation::Allowed if !n.digits.is_empty() => CallerIdInfo::number(&n.digits),
            Presentation::Restricted => CallerIdInfo { absence: Some('P'), ..CallerIdInfo::default() },
            _ => CallerIdInfo { absence: Some('O'), ..CallerIdInfo::default() },
        },
    }
}

/// The alarms' short names, comma-separated: red, yellow, blue, los.
fn alarm_names(alarms: Alarms) -> String {
    let names: Vec<&str> = [
        (alarms.red, "red"),
        (alarms.yellow, "yellow"),
        (alarms.blue, "blue"),
        (alarms.loss_of_signal, "los"),
    ]
    .into_iter()
    .filter(|(on, _)| *on)
    .map(|(_, name)| name)
    .collect();
    names.join(",")
}

/// How an outgoing call that the network cleared before the answer failed.
fn dial_failure(cause: u8) -> DialFailure {
    match cause {
        17 => DialFailure::Busy,
        18 | 19 => DialFailure::NoAnswer,
        34 | 38 | 41 | 42 | 44 | 47 => DialFailure::Congestion,
        other => DialFailure::Refused(other),
    }
}

impl Core {
    /// Feeds the D-channels' frames and the time to the PRI stacks and acts on what they say.
    /// Called from the pump, so a frame waits at most a millisecond.
    pub(super) async fn pri_pump(&mut self) {
        if self.pri.spans.is_empty() {
            return;
        }
        let now = Instant::now();
        while let Ok((index, link)) = self.pri_inbox.try_recv() {
            let Some(span) = self.pri.spans.get_mut(index) else { continue };
            match link {
                DLink::Frame(frame) => span.stack.handle_frame(now, &frame),
                DLink::Up => {
                    info!("E1 span {}: the D-channel's far end connected", span.number);
                    // Like the physical layer coming up: the link is established afresh, at
                    // once, rather than when a retransmission timer of a link that had no
                    // far end happens to run out (which would cross the far end's own
                    // establishment).
                    span.stack = Span::new(span.config.clone(), now);
                    span.calls.clear();
                    span.outgoing.clear();
                    span.answered.clear();
                    span.collecting.clear();
                    self.span_alarm(index, Alarms::default());
                }
                DLink::Down => {
                    warn!("E1 span {}: the D-channel's far end went away (loss of signal)", span.number);
                    self.span_alarm(index, Alarms { red: true, loss_of_signal: true, ..Alarms::default() });
                }
            }
            self.apply_actions().await;
        }
        for index in 0..self.pri.spans.len() {
            let span = &mut self.pri.spans[index];
            if span.stack.poll_timeout().is_some_and(|t| t <= now) {
                span.stack.handle_timeout(now);
            }
            self.pri_drain(index, now).await;
        }
    }

    /// Sends what a span's stack wants sent and hands its events to the call model.
    async fn pri_drain(&mut self, index: usize, now: Instant) {
        loop {
            let span = &mut self.pri.spans[index];
            while let Some(frame) = span.stack.poll_transmit() {
                // The task is gone only while the daemon stops.
                let _ = span.out.send(frame);
            }
            let Some(event) = span.stack.poll_event() else { return };
            if let Some(input) = self.pri_event(index, now, event) {
                self.calls.handle(now, input);
                self.apply_actions().await;
            }
        }
    }

    /// Translates one stack event; returns the call model's input, if any.
    fn pri_event(&mut self, index: usize, now: Instant, event: PriEvent) -> Option<Input> {
        let simulated = self.pri.simulated;
        let span = &mut self.pri.spans[index];
        debug!("E1 span {}: {event:?}", span.number);
        match event {
            PriEvent::LinkUp => {
                info!("E1 span {}: D-channel link up", span.number);
                for &b in &span.bearers {
                    self.calls.set_digital_ready(b, true);
                }
                None
            }
            PriEvent::LinkDown => {
                warn!("E1 span {}: D-channel link down", span.number);
                for &b in &span.bearers {
                    self.calls.set_digital_ready(b, false);
                }
                None
            }
            PriEvent::Incoming { call, channel, calling, called, sending_complete, .. } => {
                let Some(ch) = span.channel(channel) else {
                    let _ = span.stack.hangup(now, call, TEMPORARY_FAILURE);
                    return None;
                };
                span.calls.insert(call, ch);
                let caller = caller_of(calling);
                if !sending_complete && !self.calls.routes_call(ch, &called.digits) {
                    // Overlap dialling: ask for more digits until the number is complete
                    // or the caller stops sending (T302).
                    let span = &mut self.pri.spans[index];
                    let _ = span.stack.setup_ack(now, call);
                    span.collecting.insert(call, (caller, called.digits));
                    return None;
                }
                self.pri_offer(index, now, call, ch, caller, called.digits)
            }
            PriEvent::MoreDigits { call, digits, sending_complete } => {
                let (caller, mut number) = span.collecting.remove(&call)?;
                number.push_str(&digits);
                let ch = *span.calls.get(&call)?;
                if sending_complete || self.calls.routes_call(ch, &number) {
                    return self.pri_offer(index, now, call, ch, caller, number);
                }
                self.pri.spans[index].collecting.insert(call, (caller, number));
                None
            }
            PriEvent::DialTimeout { call } => {
                let (caller, number) = span.collecting.remove(&call)?;
                let ch = *span.calls.get(&call)?;
                self.pri_offer(index, now, call, ch, caller, number)
            }
            PriEvent::Proceeding { call } | PriEvent::SetupAck { call } | PriEvent::Progress { call, .. } => {
                let ch = *span.calls.get(&call)?;
                Some(Input::Digital { channel: ch, signal: DigitalSignal::Line(FxoSignal::Dialled) })
            }
            PriEvent::Alerting { call, .. } => {
                let ch = *span.calls.get(&call)?;
                // Connect the agent first (a network that alerts without proceeding), then say
                // it rings.
                self.calls.handle(
                    now,
                    Input::Digital { channel: ch, signal: DigitalSignal::Line(FxoSignal::Dialled) },
                );
                Some(Input::Digital { channel: ch, signal: DigitalSignal::Line(FxoSignal::Ringback) })
            }
            PriEvent::Answered { call } => {
                let ch = *span.calls.get(&call)?;
                span.answered.insert(call);
                if simulated {
                    self.engine(EngineCmd::Line { channel: ch, command: LineCommand::OffHook });
                }
                Some(Input::Digital { channel: ch, signal: DigitalSignal::Line(FxoSignal::Answered) })
            }
            PriEvent::ChannelChanged { call, channel } => {
                if let Some(ch) = span.channel(channel) {
                    span.calls.insert(call, ch);
                }
                None
            }
            PriEvent::Hangup { call, cause } => {
                let ch = *span.calls.get(&call)?;
                span.collecting.remove(&call);
                info!("E1 span {}: call on {ch} cleared by the network, cause {}", span.number, cause.value);
                let signal = if span.outgoing.contains(&call) && !span.answered.contains(&call) {
                    FxoSignal::Failed(dial_failure(cause.value))
                } else {
                    FxoSignal::Released(ReleaseReason::Network(cause.value))
                };
                Some(Input::Digital { channel: ch, signal: DigitalSignal::Line(signal) })
            }
            PriEvent::Released { call } => {
                let ch = span.calls.remove(&call);
                span.outgoing.remove(&call);
                span.answered.remove(&call);
                span.collecting.remove(&call);
                if let (Some(ch), true) = (ch, simulated) {
                    self.engine(EngineCmd::Line { channel: ch, command: LineCommand::OnHook });
                }
                None
            }
            other => {
                info!("E1 span {}: {other:?}", span.number);
                None
            }
        }
    }

    /// Offers an incoming call to the call model, or refuses it when no route takes it.
    fn pri_offer(
        &mut self,
        index: usize,
        now: Instant,
        call: pri::CallId,
        channel: ChannelId,
        caller: CallerIdInfo,
        called: String,
    ) -> Option<Input> {
        let span = &mut self.pri.spans[index];
        if !self.calls.routes_call(channel, &called) {
            info!("E1 span {}: no route for a call to {called:?}: refused (unallocated number)", span.number);
            let _ = span.stack.hangup(now, call, UNALLOCATED_NUMBER);
            return None;
        }
        let _ = span.stack.proceeding(now, call);
        let _ = span.stack.alerting(now, call, false);
        Some(Input::Digital { channel, signal: DigitalSignal::Incoming { caller, called } })
    }

    /// Carries out a call model command on a digital trunk.
    pub(super) async fn pri_command(&mut self, channel: ChannelId, command: DigitalCmd) {
        let now = Instant::now();
        let simulated = self.pri.simulated;
        let Some(index) = self.pri.spans.iter().position(|s| s.bearers.contains(&channel)) else {
            warn!("{channel}: no PRI span carries this channel; {command:?} dropped");
            return;
        };
        let span = &mut self.pri.spans[index];
        match command {
            DigitalCmd::Answer => {
                let Some(call) = span.call_on(channel) else { return };
                if let Err(e) = span.stack.answer(now, call) {
                    warn!("E1 span {}: cannot answer the call on {channel}: {e}", span.number);
                    return;
                }
                span.answered.insert(call);
                if simulated {
                    self.engine(EngineCmd::Line { channel, command: LineCommand::OffHook });
                }
            }
            DigitalCmd::Release => {
                let Some(call) = span.call_on(channel) else { return };
                span.collecting.remove(&call);
                let _ = span.stack.hangup(now, call, NORMAL_CLEARING);
            }
            DigitalCmd::Dial { number } => {
                let params = CallParams {
                    channel: span.b_channel(channel),
                    exclusive: true,
                    ..CallParams::speech(&number, None)
                };
                match span.stack.connect(now, params) {
                    Ok(call) => {
                        span.calls.insert(call, channel);
                        span.outgoing.insert(call);
                    }
                    Err(e) => {
                        warn!("E1 span {}: cannot place a call to {number} on {channel}: {e}", span.number);
                        let signal = DigitalSignal::Line(FxoSignal::Failed(DialFailure::Congestion));
                        self.calls.handle(now, Input::Digital { channel, signal });
                    }
                }
            }
        }
        self.pri_drain(index, now).await;
    }

    /// The card raised or cleared alarms on the span of `channel` (DAHDI reports them on the
    /// span's first port). A PRI span goes through [`Core::span_alarm`]; on an analog span the
    /// calls of its trunks end as if the lines had dropped.
    pub(super) fn card_alarm(&mut self, channel: ChannelId, alarms: Alarms) {
        let Some(span) = self.info.channels.get(usize::from(channel.0)).map(|c| c.span) else { return };
        if let Some(index) = self.pri.spans.iter().position(|s| s.card_span == span) {
            self.span_alarm(index, alarms);
            return;
        }
        self.announce_alarm(span, alarms, format!("span {}", span + 1));
        if alarms.any() {
            let now = Instant::now();
            let trunks: Vec<ChannelId> = self
                .info
                .channels
                .iter()
                .filter(|c| c.span == span && c.kind == ChannelKind::FxoTrunk)
                .map(|c| c.id)
                .collect();
            for trunk in trunks {
                self.calls.handle(
                    now,
                    Input::Line { channel: trunk, event: switchboard_driver_api::LineEvent::OnHook },
                );
            }
        }
    }

    /// Tells the log, supervisors watching all seats and control-socket watchers that a span's
    /// alarms changed. Spans are numbered as on the card (from 1), as `hw list` shows them.
    fn announce_alarm(&mut self, card_span: u16, alarms: Alarms, name: String) {
        let text = alarm_names(alarms);
        let number = card_span + 1;
        if alarms.any() {
            warn!("{name}: alarm {text}: its calls are torn down");
        } else {
            info!("{name}: alarm cleared");
        }
        self.hub.to_watchers(
            crate::agent::protocol::EventKind::Alarm,
            i64::from(alarms.any()),
            format!("SPAN:{number}|ALARM:{text}|"),
        );
        let at = time::OffsetDateTime::now_utc();
        self.alarms.set(card_span, &text, at);
        let _ = self.notices.send(crate::control::protocol::Notice::SpanAlarm { span: number, alarm: text });
    }

    /// A span's alarms changed: tell the log, supervisors and watchers, and tear down the
    /// span's calls when it goes into alarm. The span recovers by itself.
    pub(super) fn span_alarm(&mut self, index: usize, alarms: Alarms) {
        let now = Instant::now();
        let span = &mut self.pri.spans[index];
        let raised = alarms.any();
        if raised == span.alarm {
            return;
        }
        span.alarm = raised;
        let (card_span, name) =
            (span.card_span, format!("E1 span {} (span {} of the card)", span.number, span.card_span + 1));
        self.announce_alarm(card_span, alarms, name);
        if !raised {
            return;
        }
        let span = &mut self.pri.spans[index];
        let calls: Vec<(pri::CallId, ChannelId)> = span.calls.iter().map(|(&c, &ch)| (c, ch)).collect();
        for (call, channel) in calls {
            let span = &mut self.pri.spans[index];
            let _ = span.stack.hangup(now, call, TEMPORARY_FAILURE);
            let signal = if span.outgoing.contains(&call) && !span.answered.contains(&call) {
                FxoSignal::Failed(DialFailure::Congestion)
            } else {
                FxoSignal::Released(ReleaseReason::Network(TEMPORARY_FAILURE))
            };
            self.calls.handle(now, Input::Digital { channel, signal: DigitalSignal::Line(signal) });
        }
    }
}
