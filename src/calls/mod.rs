//! The call model: inbound calls on trunk ports routed to seat phones.
//!
//! [`CallManager`] is a state machine with no IO and no clock. The caller feeds it line
//! events, detected digits and tones with the current time, and polls out [`Action`]s: media
//! and line commands for the engine, CDR updates for the store, and [`CallEvent`]s for the
//! log and for clients that watch calls. Tests drive it directly, faster than real time.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use switchboard_driver_api::{CardInfo, ChannelId, ChannelKind, LineCommand, LineEvent};

use crate::dsp::tone::ProgressTone;
use crate::line::fxo::{DialFailure, FxoInput, FxoLine, FxoOutput, FxoSettings, FxoSignal};
use crate::line::fxs::{FxsInput, FxsLine, FxsOutput, FxsSignal};
use crate::line::{CallerIdInfo, LineSettings, RingCadence};
use crate::media::{EngineCmd, HOLD_MUSIC};

/// A call's identity, unique for the lifetime of the manager.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(pub u64);

/// How a route picks the seats to ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Ring every idle seat of the group at once; the first to answer takes the call.
    #[default]
    RingAll,
    /// Ring the first idle seat in the listed order; move on to the next one on timeout.
    Sequential,
    /// Like sequential, but start after the seat that took the previous call.
    RoundRobin,
}

/// Where calls arriving on some trunk ports go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub name: String,
    /// Trunk ports (1-based) this route takes calls from.
    pub trunks: Vec<u16>,
    /// Seat ports (1-based) that ring for those calls. For a queue's route the driver sets
    /// them, in order, with [`CallManager::set_route_seats`].
    pub seats: Vec<u16>,
    pub strategy: Strategy,
    /// A call that waits this long moves to the route given.
    pub overflow: Option<(Duration, usize)>,
    /// A new call finding this many calls already waiting goes straight to the route given.
    pub max_waiting: Option<(usize, usize)>,
    pub flows: RouteFlows,
}

/// The IVR flows a route uses.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct RouteFlows {
    /// Calls go to this flow first instead of ringing seats; `*` lets the flows' `[select]`
    /// rules choose.
    pub entry: Option<String>,
    /// The flow a caller enters when the agent hangs up first (a satisfaction survey).
    pub after: Option<String>,
    /// A call that overflows goes to this flow instead of another queue.
    pub overflow: Option<String>,
    /// The called number of the route's trunks, for flow selection.
    pub number: String,
    /// Callers waiting on this route hear their position this often.
    pub announce: Option<Duration>,
}

/// A caller waiting on a route, for position announcements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueuePosition {
    pub call: CallId,
    pub trunk: ChannelId,
    pub route: usize,
    /// 1 for the caller who will be offered the next seat.
    pub position: usize,
    pub waited: Duration,
}

/// Settings of the call model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallSettings {
    pub routes: Vec<Route>,
    /// How long one seat rings before a sequential route moves on (and, for ring-all, how long
    /// the group rings before the call keeps waiting for another idle seat).
    pub seat_ring_timeout: Duration,
    /// A trunk call is taken as abandoned when the exchange has stopped ringing for this long.
    pub trunk_ring_gap: Duration,
    /// Whether answered calls are recorded.
    pub record: bool,
    /// Whether a busy or congestion tone heard on a trunk in conversation means the far end
    /// hung up. Many Chinese lines give no other disconnect signal.
    pub tone_disconnect: bool,
}

impl Default for CallSettings {
    fn default() -> Self {
        CallSettings {
            routes: Vec::new(),
            seat_ring_timeout: Duration::from_secs(20),
            // The Chinese cadence has 4 s of silence between rings; 6 s leaves a margin.
            trunk_ring_gap: Duration::from_secs(6),
            record: true,
            tone_disconnect: true,
        }
    }
}

/// How a call ended, as stored in its CDR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    Answered,
    NoAnswer,
    Busy,
    Failed,
}

impl Disposition {
    pub const fn as_str(self) -> &'static str {
        match self {
            Disposition::Answered => "answered",
            Disposition::NoAnswer => "no_answer",
            Disposition::Busy => "busy",
            Disposition::Failed => "failed",
        }
    }
}

/// What a call's CDR needs to be written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CdrUpdate {
    Start {
        call: CallId,
        at: Instant,
        caller: String,
        callee: String,
        trunk: ChannelId,
        /// The seat that places an outgoing call; None for incoming calls.
        outbound_from: Option<ChannelId>,
    },
    Answer {
        call: CallId,
        at: Instant,
        seat: ChannelId,
    },
    End {
        call: CallId,
        at: Instant,
        disposition: Disposition,
        cause: &'static str,
    },
}

/// Something that happened to a call, for the log and for watchers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallEvent {
    /// A call arrived on a trunk port.
    Offered { call: CallId, trunk: ChannelId, caller: String },
    /// A seat started ringing for the call.
    SeatRinging { call: CallId, seat: ChannelId },
    /// The call waits: no seat of its route is idle.
    Waiting { call: CallId },
    /// A seat answered; the two ports are bridged.
    Answered { call: CallId, seat: ChannelId },
    /// A digit was detected in the audio of one side of the call.
    Digit { call: CallId, channel: ChannelId, digit: char },
    /// An outgoing call made progress: "dialing", "ringback", "busy".
    Progress { call: CallId, seat: ChannelId, what: &'static str },
    /// A supervisor's seat left the call it was monitoring.
    MonitorEnded { seat: ChannelId },
    /// A seat rang for the whole ring timeout without answering; the call moves on.
    SeatNoAnswer { call: CallId, seat: ChannelId },
    /// The call waited too long and moved to another route (queue).
    Overflowed { call: CallId, to: String },
    /// A seat stopped ringing because the call moved elsewhere (overflow).
    RingStopped { call: CallId, seat: ChannelId },
    /// The agent on `seat` transferred the call away: their part of it is over.
    TransferredAway { call: CallId, seat: ChannelId },
    /// The consulted seat answered.
    ConsultAnswered { call: CallId, seat: ChannelId },
    /// The consulted seat left the call (cancelled, hung up, or the call ended).
    ConsultEnded { call: CallId, seat: ChannelId },
    /// The call entered an IVR flow (`*`: the one the route's number and the caller select).
    /// With `back_to`, a top-level `return` sends the caller back to that seat.
    FlowEntered { call: CallId, flow: String, back_to: Option<ChannelId> },
    /// The caller came back from a flow to the agent waiting for them.
    Returned { call: CallId, seat: ChannelId },
    /// A transfer of the call to an external number failed (busy, no answer, no line).
    ForwardFailed { call: CallId, cause: &'static str },
    /// The agent flashed the handset's hook during the call: the caller is now held (hearing
    /// hold music) or, with `held` false, back in the conversation.
    HookFlash { call: CallId, seat: ChannelId, held: bool },
    /// The call ended.
    Ended { call: CallId, disposition: Disposition, cause: &'static str },
}

/// What the manager asks its driver to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// A line or media command for the engine.
    Media(EngineCmd),
    /// Start recording the call's audio as heard on `channel` (both directions mixed).
    StartRecording {
        call: CallId,
        channel: ChannelId,
    },
    StopRecording {
        call: CallId,
        channel: ChannelId,
    },
    Cdr(CdrUpdate),
    Event(CallEvent),
    /// Opens or closes the FSK caller id window on a trunk: the engine demodulates the
    /// channel's audio only while it is open.
    CallerIdListen {
        trunk: ChannelId,
        on: bool,
    },
    /// Sends caller id to the phone on a seat port now (between the first and second ring).
    SendCallerId {
        seat: ChannelId,
        caller: crate::line::CallerIdInfo,
    },
    /// A command for the signalling stack of a digital trunk.
    Digital {
        channel: ChannelId,
        command: DigitalCmd,
    },
}

/// Inputs from the media engine and card.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    Line {
        channel: ChannelId,
        event: LineEvent,
    },
    Digit {
        channel: ChannelId,
        digit: char,
    },
    Tone {
        channel: ChannelId,
        tone: ProgressTone,
    },
    /// The engine finished sending the DTMF digits queued on a channel.
    DtmfSent {
        channel: ChannelId,
    },
    /// FSK caller id received on a trunk (decoded by the control plane).
    CallerId {
        channel: ChannelId,
        caller: crate::line::CallerIdInfo,
    },
    /// A digital trunk (an E1 bearer under ISDN signalling) reports what its signalling
    /// stack saw, in the analog line machine's words: the signalling is the driver's, the
    /// call is the call model's.
    Digital {
        channel: ChannelId,
        signal: DigitalSignal,
    },
}

/// What a digital trunk's signalling reports to the call model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DigitalSignal {
    /// A call arrived for `called` (the number the caller dialled).
    Incoming { caller: CallerIdInfo, called: String },
    /// The same signals an analog trunk gives: released, and the progress of outgoing calls.
    Line(FxoSignal),
}

/// A command for a digital trunk's signalling stack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DigitalCmd {
    /// Answer the incoming call on the channel.
    Answer,
    /// Clear the call on the channel (nothing if there is none).
    Release,
    /// Place a call to `number` on the channel.
    Dial { number: String },
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum CallState {
    /// The trunk rings; seats are being rung or the call waits for one.
    Offered { ringing: Vec<ChannelId>, tried: Vec<ChannelId>, seat_deadline: Option<Instant> },
    /// Bridged with a seat.
    Talking { seat: ChannelId },
    /// An outgoing call from a seat that is not answered yet.
    Outbound { seat: ChannelId, phase: OutPhase, deadline: Option<Instant> },
    /// The trunk is answered and an IVR flow has the caller.
    Flow,
    /// A call between two seats (`trunk` holds `from`); `deadline` while a seat rings.
    Internal { from: ChannelId, to: ChannelId, answered: bool, deadline: Option<Instant> },
}

/// How far an outgoing call has got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OutPhase {
    /// The agent's phone rings so that they pick it up.
    RingingSeat,
    /// The trunk is seized; waiting for the exchange's dial tone.
    WaitDialTone,
    /// The number is being sent as DTMF.
    Dialing,
    /// Dialled and bridged: the agent hears the progress tones until the far end answers.
    Progress,
}

#[derive(Clone, Debug)]
struct Call {
    id: CallId,
    /// The caller hears hold music and the seat is disconnected from them.
    held: bool,
    trunk: ChannelId,
    route: usize,
    state: CallState,
    /// The caller id the trunk gave (incoming calls), sent on to the phones that ring.
    caller: CallerIdInfo,
    /// The ring cadence measured on the trunk (incoming calls).
    cadence: Option<RingCadence>,
    /// The number dialled, for outgoing calls.
    number: String,
    /// Supervisors on the call.
    monitors: Vec<(ChannelId, supervise::MonitorMode)>,
    /// When the call arrived (or was placed).
    offered_at: Instant,
    /// When the call came to its current route (for overflow).
    route_since: Instant,
    /// The call was answered and then transferred: the trunk is off-hook, no ring bursts
    /// come any more, and the call is recorded already.
    transferred: bool,
    /// A consultation with another seat.
    consult: Option<consult::Consult>,
    /// The trunk is answered (by a flow or an agent before a transfer): no ring bursts come
    /// any more, and a seat answering does not answer the line again.
    trunk_up: bool,
    /// The call's audio is being recorded.
    recording: bool,
    /// Higher goes first among the calls waiting on a route (VIP callers).
    priority: i32,
    /// For the outgoing leg of a transfer to an external number: the caller's call, whose
    /// trunk is this leg's "seat".
    forward_of: Option<CallId>,
}

/// The signalling machine of a port: trunks and analog seats have one; E1 and sound
/// channels take commands and give events as they are.
#[derive(Clone, Debug)]
enum Port {
    Fxo(Box<FxoLine>),
    Fxs(Box<FxsLine>),
    /// An E1 bearer: its signalling stack lives in the driver; `ready` says whether it may
    /// carry a new outgoing call (the link is up and the channel is in service).
    Digital {
        ready: bool,
    },
    Plain,
}

impl Port {
    fn poll_timeout(&self) -> Option<Instant> {
        match self {
            Port::Fxo(l) => l.poll_timeout(),
            Port::Fxs(l) => l.poll_timeout(),
            Port::Digital { .. } | Port::Plain => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SeatState {
    Idle,
    Ringing(CallId),
    Talking(CallId),
    /// Off-hook after the other side left, hearing busy tone until it hangs up.
    Released,
    /// Off-hook without a call (lifted to dial), hearing dial tone.
    OffHookIdle,
    /// A supervisor listening to (or taking part in) a call.
    Monitoring(CallId),
    /// Rung for, or talking in, a consultation about a call.
    Consulting(CallId),
    /// The agent sent the caller to a flow that brings them back ("to automatic") and holds
    /// the handset, hearing hold music, until the caller returns.
    Waiting(CallId),
}

/// The call model for one card.
pub struct CallManager {
    settings: CallSettings,
    kinds: Vec<ChannelKind>,
    seats: Vec<SeatState>,
    /// Whether each seat may be offered calls (its agent is idle, or it has none).
    available: Vec<bool>,
    /// Ports a technician took out of service: no new call uses them; calls on them go on.
    blocked: Vec<bool>,
    /// The daemon is stopping: no new calls, the ones in progress go on.
    draining: bool,
    /// Each port's line signalling machine, by channel index.
    ports: Vec<Port>,
    line_settings: LineSettings,
    /// The latest time the driver gave, for line commands that come from requests carrying
    /// no time (consult, transfer); the line machines allow for it lagging.
    now: Option<Instant>,
    calls: Vec<Call>,
    /// Per-route index of the seat that took the last call, for round robin.
    last_seat: Vec<usize>,
    next_id: u64,
    actions: VecDeque<Action>,
}

impl CallManager {
    pub fn new(card: &CardInfo, settings: CallSettings) -> CallManager {
        let n = card.channels.len();
        let mut m = CallManager {
            kinds: card.channels.iter().map(|c| c.kind).collect(),
            seats: vec![SeatState::Idle; n],
            available: vec![true; n],
            blocked: vec![false; n],
            draining: false,
            ports: Vec::new(),
            line_settings: LineSettings::default(),
            now: None,
            calls: Vec::new(),
            last_seat: vec![usize::MAX; settings.routes.len()],
            settings,
            next_id: 1,
            actions: VecDeque::new(),
        };
        m.build_ports();
        m
    }

    /// Sets how the analog lines signal (caller id mode, seat caller id, cadences, flash and
    /// dialling timings). The trunks' ring gap and tone disconnect come from [`CallSettings`].
    /// Meant for start-up: the ports' line machines are rebuilt, forgetting their state.
    pub fn set_line_settings(&mut self, line: LineSettings) {
        self.line_settings = line;
        self.build_ports();
    }

    /// The trunks' settings: the line settings with the call settings' ring gap and tone
    /// disconnect, which predate the line layer and stay where the configuration puts them.
    pub fn fxo_settings(&self) -> FxoSettings {
        FxoSettings {
            ring_gap: self.settings.trunk_ring_gap,
            tone_disconnect: self.settings.tone_disconnect,
            ..self.line_settings.fxo.clone()
        }
    }

    fn build_ports(&mut self) {
        let fxo = self.fxo_settings();
        self.ports = self
            .kinds
            .iter()
            .map(|k| match k {
                ChannelKind::FxoTrunk => Port::Fxo(Box::new(FxoLine::new(fxo.clone()))),
                ChannelKind::FxsSeat => Port::Fxs(Box::new(FxsLine::new(self.line_settings.fxs.clone()))),
                ChannelKind::E1Bearer => Port::Digital { ready: false },
                ChannelKind::E1Signalling | ChannelKind::Sound => Port::Plain,
            })
            .collect();
    }

    /// Whether actions wait to be polled.
    pub fn has_actions(&self) -> bool {
        !self.actions.is_empty()
    }

    /// The next action to carry out, if any.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The earliest time at which [`CallManager::handle_timeout`] has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let lines = self.ports.iter().filter_map(Port::poll_timeout).min();
        let calls = self
            .calls
            .iter()
            .flat_map(|c| {
                let overflow = match c.state {
                    CallState::Offered { .. } => self
                        .settings
                        .routes
                        .get(c.route)
                        .and_then(|r| r.overflow)
                        .map(|(after, _)| c.route_since + after),
                    _ => None,
                };
                match &c.state {
                    CallState::Offered { seat_deadline, .. } => {
                        [*seat_deadline, overflow].into_iter().flatten().min()
                    }
                    CallState::Outbound { deadline, .. } | CallState::Internal { deadline, .. } => *deadline,
                    CallState::Talking { .. } | CallState::Flow => None,
                }
            })
            .min();
        [lines, calls].into_iter().flatten().min()
    }

    /// Number of calls in progress.
    pub fn active_calls(&self) -> usize {
        self.calls.len()
    }

    /// Incoming calls waiting for a seat (ringing or queued), with how long they have waited.
    pub fn waiting(&self, now: Instant) -> Vec<(CallId, ChannelId, std::time::Duration)> {
        self.calls
            .iter()
            .filter(|c| matches!(c.state, CallState::Offered { .. }))
            .map(|c| (c.id, c.trunk, now.saturating_duration_since(c.offered_at)))
            .collect()
    }

    /// A snapshot of the calls in progress: (call, trunk, seat if talking).
    pub fn calls(&self) -> impl Iterator<Item = (CallId, ChannelId, Option<ChannelId>)> + '_ {
        self.calls.iter().map(|c| {
            let seat = match c.state {
                CallState::Talking { seat } | CallState::Outbound { seat, .. } => Some(seat),
                CallState::Internal { from, .. } => Some(from),
                CallState::Offered { .. } | CallState::Flow => None,
            };
            (c.id, c.trunk, seat)
        })
    }

    fn kind(&self, ch: ChannelId) -> Option<ChannelKind> {
        self.kinds.get(usize::from(ch.0)).copied()
    }

    fn push(&mut self, action: Action) {
        self.actions.push_back(action);
    }

    /// Feeds one input.
    pub fn handle(&mut self, now: Instant, input: Input) {
        self.note_time(now);
        match input {
            Input::Line { channel, event } => match self.kind(channel) {
                Some(ChannelKind::FxoTrunk) => self.trunk_input(now, channel, FxoInput::Event(event)),
                Some(ChannelKind::FxsSeat) => self.seat_input(now, channel, FxsInput::Event(event)),
                Some(ChannelKind::Sound) => {
                    // A headset has no line machine: its hook events are the signals.
                    let signal = match event {
                        LineEvent::OffHook => Some(FxsSignal::OffHook),
                        LineEvent::OnHook => Some(FxsSignal::OnHook),
                        LineEvent::Flash => Some(FxsSignal::Flash),
                        _ => None,
                    };
                    if let Some(signal) = signal {
                        self.seat_signal(now, channel, signal);
                    }
                }
                _ => {}
            },
            Input::Digit { channel, digit } => self.digit(now, channel, digit),
            Input::DtmfSent { channel } => self.trunk_input(now, channel, FxoInput::DtmfSent),
            Input::CallerId { channel, caller } => self.trunk_input(now, channel, FxoInput::CallerId(caller)),
            Input::Tone { channel, tone } => self.trunk_input(now, channel, FxoInput::Tone(tone)),
            Input::Digital { channel, signal } => {
                if !matches!(self.ports.get(usize::from(channel.0)), Some(Port::Digital { .. })) {
                    return;
                }
                match signal {
                    DigitalSignal::Incoming { caller, called } => self.offer_to(now, channel, caller, called),
                    DigitalSignal::Line(signal) => self.trunk_signal(now, channel, signal),
                }
            }
        }
    }

    /// Says whether a digital trunk may carry new outgoing calls (its link is up and the
    /// channel in service). Calls already on it are the driver's to clear.
    pub fn set_digital_ready(&mut self, channel: ChannelId, ready: bool) {
        if let Some(Port::Digital { ready: r }) = self.ports.get_mut(usize::from(channel.0)) {
            *r = ready;
        }
    }

    /// Whether a digital trunk's incoming call for `called` has a route to go to, so that the
    /// driver can refuse one that has none (unallocated number) instead of leaving it ringing.
    pub fn routes_call(&self, trunk: ChannelId, called: &str) -> bool {
        self.route_for(trunk, called).is_some()
    }

    /// The route of a call arriving on `trunk` for `called`. A route whose `number` is a
    /// dialable number takes the calls for that number (or for numbers ending with it, for
    /// networks that send the full number); a route without one (its number is then its name)
    /// takes the trunk's other calls. Analog lines say no called number: the first route.
    fn route_for(&self, trunk: ChannelId, called: &str) -> Option<usize> {
        // A blocked trunk, or a stopping daemon, takes no new call.
        if self.draining || self.is_blocked(trunk) {
            return None;
        }
        let port = trunk.port();
        let candidates: Vec<usize> = (0..self.settings.routes.len())
            .filter(|&r| self.settings.routes[r].trunks.contains(&port))
            .collect();
        if called.is_empty() {
            return candidates.first().copied();
        }
        let dialable =
            |n: &str| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit() || c == '*' || c == '#');
        let number_of = |r: usize| self.settings.routes[r].flows.number.as_str();
        candidates
            .iter()
            .copied()
            .find(|&r| dialable(number_of(r)) && called.ends_with(number_of(r)))
            .or_else(|| candidates.iter().copied().find(|&r| !dialable(number_of(r))))
    }

    /// The number an incoming call on a digital trunk was dialled to, if it came with one.
    pub fn called_number(&self, call: CallId) -> Option<&str> {
        let c = &self.calls[self.call_index(call)?];
        let digital = matches!(self.ports.get(usize::from(c.trunk.0)), Some(Port::Digital { .. }));
        (digital && !c.number.is_empty()).then_some(c.number.as_str())
    }

    /// Notes the driver's time, for line commands later issued by requests that carry none.
    fn note_time(&mut self, now: Instant) {
        self.now = Some(self.now.map_or(now, |t| t.max(now)));
    }

    /// Feeds a trunk's line machine and acts on what it says.
    pub(super) fn trunk_input(&mut self, now: Instant, trunk: ChannelId, input: FxoInput) {
        let Some(Port::Fxo(line)) = self.ports.get_mut(usize::from(trunk.0)) else { return };
        line.handle(now, input);
        self.drain_trunk(now, trunk);
    }

    /// Feeds a seat's line machine and acts on what it says.
    fn seat_input(&mut self, now: Instant, seat: ChannelId, input: FxsInput) {
        let Some(Port::Fxs(line)) = self.ports.get_mut(usize::from(seat.0)) else { return };
        line.handle(now, input);
        self.drain_seat(now, seat);
    }

    fn drain_trunk(&mut self, now: Instant, trunk: ChannelId) {
        loop {
            let Some(Port::Fxo(line)) = self.ports.get_mut(usize::from(trunk.0)) else { return };
            let Some(out) = line.poll_output() else { return };
            match out {
                FxoOutput::Line(command) => {
                    self.push(Action::Media(EngineCmd::Line { channel: trunk, command }))
                }
                FxoOutput::SendDtmf(number) => {
                    // Numbers are checked to fit before they are dialled; a longer one would
                    // be cut, so it is not sent, and the line's dial timeout fails the call.
                    if let Ok(digits) = heapless::String::try_from(number.as_str()) {
                        self.push(Action::Media(EngineCmd::SendDtmf { channel: trunk, digits }));
                    }
                }
                FxoOutput::CallerIdWindow(on) => self.push(Action::CallerIdListen { trunk, on }),
                FxoOutput::Signal(signal) => self.trunk_signal(now, trunk, signal),
            }
        }
    }

    fn drain_seat(&mut self, now: Instant, seat: ChannelId) {
        loop {
            let Some(Port::Fxs(line)) = self.ports.get_mut(usize::from(seat.0)) else { return };
            let Some(out) = line.poll_output() else { return };
            match out {
                FxsOutput::Line(command) => {
                    self.push(Action::Media(EngineCmd::Line { channel: seat, command }))
                }
                FxsOutput::SendCallerId(caller) => self.push(Action::SendCallerId { seat, caller }),
                FxsOutput::Signal(signal) => self.seat_signal(now, seat, signal),
            }
        }
    }

    /// Sends a hook or ring command to a port, through its line machine when it has one:
    /// off-hook on a trunk answers, on-hook releases (nothing if the line is on-hook already).
    pub(super) fn line_cmd(&mut self, channel: ChannelId, command: LineCommand) {
        self.line_cmd_with(channel, command, None);
    }

    /// Rings a seat, which gets `caller` as caller id if seats get caller id.
    pub(super) fn ring_seat(&mut self, seat: ChannelId, caller: Option<CallerIdInfo>) {
        self.line_cmd_with(seat, LineCommand::Ring, caller);
    }

    fn line_cmd_with(&mut self, channel: ChannelId, command: LineCommand, caller: Option<CallerIdInfo>) {
        let index = usize::from(channel.0);
        let Some(now) = self.now else {
            // No time was ever given, so no call exists: nothing goes through a machine.
            self.push(Action::Media(EngineCmd::Line { channel, command }));
            return;
        };
        match (self.ports.get(index), command) {
            (Some(Port::Fxo(_)), LineCommand::OffHook) => self.trunk_input(now, channel, FxoInput::Answer),
            (Some(Port::Fxo(_)), LineCommand::OnHook) => self.trunk_input(now, channel, FxoInput::Release),
            (Some(Port::Fxo(_)), LineCommand::Flash) => self.trunk_input(now, channel, FxoInput::Flash),
            (Some(Port::Fxs(_)), LineCommand::Ring) => {
                self.seat_input(now, channel, FxsInput::Ring { caller })
            }
            (Some(Port::Fxs(_)), LineCommand::StopRing) => self.seat_input(now, channel, FxsInput::StopRing),
            (Some(Port::Digital { .. }), LineCommand::OffHook) => {
                self.push(Action::Digital { channel, command: DigitalCmd::Answer })
            }
            (Some(Port::Digital { .. }), LineCommand::OnHook) => {
                self.push(Action::Digital { channel, command: DigitalCmd::Release })
            }
            // A digital trunk has no hook flash or ringing of its own.
            (Some(Port::Digital { .. }), _) => {}
            _ => self.push(Action::Media(EngineCmd::Line { channel, command })),
        }
    }

    /// Acts on what a trunk's line machine reports.
    fn trunk_signal(&mut self, now: Instant, trunk: ChannelId, signal: FxoSignal) {
        match signal {
            FxoSignal::Incoming { caller } => self.offer(now, trunk, caller),
            FxoSignal::Missed { caller } => self.missed(now, trunk, caller),
            FxoSignal::Cadence(cadence) => {
                if let Some(i) = self.call_on_trunk(trunk) {
                    self.calls[i].cadence = Some(cadence);
                }
            }
            FxoSignal::Abandoned => {
                let ringing = self.call_on_trunk(trunk).filter(|&i| {
                    !self.calls[i].trunk_up && matches!(self.calls[i].state, CallState::Offered { .. })
                });
                if let Some(i) = ringing {
                    self.abandon(now, i);
                }
            }
            FxoSignal::Released(reason) => {
                if let Some(i) = self.call_on_trunk(trunk) {
                    self.far_end_released(now, i, reason.cause());
                }
            }
            FxoSignal::Dialling { .. } => self.outbound_dialling(trunk),
            FxoSignal::Dialled => self.outbound_dialled(now, trunk),
            FxoSignal::Ringback => self.outbound_ringback(trunk),
            FxoSignal::Answered => self.outbound_answered(now, trunk),
            FxoSignal::Failed(failure) => self.outbound_line_failed(now, trunk, failure),
            // The call model always dials with the seizure and sends no flash of its own.
            FxoSignal::DialTone | FxoSignal::FlashDone => {}
        }
    }

    /// Handles the timers that are due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.note_time(now);
        for index in 0..self.ports.len() {
            if !self.ports[index].poll_timeout().is_some_and(|t| t <= now) {
                continue;
            }
            let channel = ChannelId(index as u16);
            match &mut self.ports[index] {
                Port::Fxo(line) => {
                    line.handle_timeout(now);
                    self.drain_trunk(now, channel);
                }
                Port::Fxs(line) => {
                    line.handle_timeout(now);
                    self.drain_seat(now, channel);
                }
                Port::Digital { .. } | Port::Plain => {}
            }
        }
        let mut i = 0;
        while i < self.calls.len() {
            let call = &self.calls[i];
            match &call.state {
                CallState::Offered { seat_deadline, .. } => {
                    let seat_due = seat_deadline.is_some_and(|d| now >= d);
                    if self.overflow(now, i) {
                        i += 1;
                        continue;
                    }
                    if seat_due {
                        self.seat_timeout(now, i);
                    }
                }
                CallState::Outbound { deadline: Some(d), .. } if now >= *d => {
                    self.outbound_timeout(now, i);
                    continue;
                }
                CallState::Internal { deadline: Some(d), .. } if now >= *d => {
                    self.internal_timeout(now, i);
                    continue;
                }
                _ => {}
            }
            i += 1;
        }
    }

    fn call_on_trunk(&self, trunk: ChannelId) -> Option<usize> {
        self.calls.iter().position(|c| c.trunk == trunk)
    }

    fn call_index(&self, id: CallId) -> Option<usize> {
        self.calls.iter().position(|c| c.id == id)
    }

    fn offer(&mut self, now: Instant, trunk: ChannelId, caller_id: CallerIdInfo) {
        self.offer_to(now, trunk, caller_id, String::new());
    }

    /// Offers a call arriving on `trunk` for `called` (empty on analog lines, which do not say).
    fn offer_to(&mut self, now: Instant, trunk: ChannelId, caller_id: CallerIdInfo, called: String) {
        let route = self.route_for(trunk, &called);
        let id = self.start_incoming(now, trunk, &caller_id, route);
        let Some(route) = route else {
            // No route: leave the line ringing unanswered, and end the record right away so
            // the installer sees the unrouted call in the CDRs. The line machine announces
            // the call once, not once per ring burst.
            let cause = if self.draining {
                "the daemon is stopping"
            } else if self.is_blocked(trunk) {
                "the trunk is blocked for maintenance"
            } else {
                "no route for this trunk"
            };
            self.push(Action::Cdr(CdrUpdate::End {
                call: id,
                at: now,
                disposition: Disposition::Failed,
                cause,
            }));
            self.push(Action::Event(CallEvent::Ended { call: id, disposition: Disposition::Failed, cause }));
            return;
        };
        // A full queue sends the new call on at once.
        let waiting = self
            .calls
            .iter()
            .filter(|c| c.route == route && matches!(c.state, CallState::Offered { .. }))
            .count();
        let mut route = route;
        let mut overflow_flow = None;
        if let Some((limit, target)) = self.settings.routes[route].max_waiting {
            if waiting >= limit && target < self.settings.routes.len() {
                route = target;
                let to = self.settings.routes[target].name.clone();
                self.push(Action::Event(CallEvent::Overflowed { call: id, to }));
            } else if waiting >= limit {
                overflow_flow = self.settings.routes[route].flows.overflow.clone();
                if let Some(flow) = &overflow_flow {
                    self.push(Action::Event(CallEvent::Overflowed { call: id, to: format!("flow {flow}") }));
                }
            }
        }
        self.calls.push(Call {
            id,
            held: false,
            trunk,
            route,
            state: CallState::Offered { ringing: Vec::new(), tried: Vec::new(), seat_deadline: None },
            caller: caller_id,
            cadence: None,
            number: called,
            monitors: Vec::new(),
            offered_at: now,
            route_since: now,
            transferred: false,
            consult: None,
            trunk_up: false,
            recording: false,
            priority: 0,
            forward_of: None,
        });
        let i = self.calls.len() - 1;
        if let Some(flow) = overflow_flow.or_else(|| self.settings.routes[route].flows.entry.clone()) {
            self.enter_flow(now, i, flow, None);
            return;
        }
        self.ring_seats(now, i);
    }

    /// A caller who rang and hung up before the call was announced (between-rings caller id
    /// and one ring only): recorded as offered and abandoned, with no seat rung.
    fn missed(&mut self, now: Instant, trunk: ChannelId, caller_id: CallerIdInfo) {
        let route = self.route_for(trunk, "");
        let id = self.start_incoming(now, trunk, &caller_id, route);
        self.end(now, id, Disposition::NoAnswer, "caller abandoned");
    }

    /// Numbers a new incoming call and starts its record (callee: the route's name).
    fn start_incoming(
        &mut self,
        now: Instant,
        trunk: ChannelId,
        caller_id: &CallerIdInfo,
        route: Option<usize>,
    ) -> CallId {
        let caller = caller_id.number.clone().unwrap_or_default();
        let id = CallId(self.next_id);
        self.next_id += 1;
        let callee = route.map(|r| self.settings.routes[r].name.clone()).unwrap_or_default();
        self.push(Action::Cdr(CdrUpdate::Start {
            call: id,
            at: now,
            caller: caller.clone(),
            callee,
            trunk,
            outbound_from: None,
        }));
        self.push(Action::Event(CallEvent::Offered { call: id, trunk, caller }));
        id
    }

    /// Rings the next seat(s) for an offered call, or leaves it waiting.
    fn ring_seats(&mut self, now: Instant, i: usize) {
        let route = &self.settings.routes[self.calls[i].route];
        let CallState::Offered { tried, .. } = &self.calls[i].state else {
            return;
        };
        let idle: Vec<(usize, ChannelId)> = route
            .seats
            .iter()
            .enumerate()
            .filter_map(|(pos, &p)| ChannelId::from_port(p).map(|c| (pos, c)))
            .filter(|(_, c)| {
                let i = usize::from(c.0);
                self.seats.get(i) == Some(&SeatState::Idle)
                    && self.available.get(i) == Some(&true)
                    && self.blocked.get(i) != Some(&true)
                    && !tried.contains(c)
            })
            .collect();
        let chosen: Vec<ChannelId> = match route.strategy {
            Strategy::RingAll => idle.iter().map(|&(_, c)| c).collect(),
            Strategy::Sequential => idle.first().map(|&(_, c)| c).into_iter().collect(),
            Strategy::RoundRobin => {
                let last = self.last_seat[self.calls[i].route];
                idle.iter()
                    .find(|(pos, _)| last == usize::MAX || *pos > last)
                    .or(idle.first())
                    .map(|&(_, c)| c)
                    .into_iter()
                    .collect()
            }
        };
        let id = self.calls[i].id;
        let deadline = if chosen.is_empty() { None } else { Some(now + self.settings.seat_ring_timeout) };
        if let CallState::Offered { ringing, tried, seat_deadline } = &mut self.calls[i].state {
            ringing.extend(&chosen);
            tried.extend(&chosen);
            *seat_deadline = deadline;
        }
        if chosen.is_empty() {
            self.push(Action::Event(CallEvent::Waiting { call: id }));
        }
        let caller = Some(self.calls[i].caller.clone());
        for seat in chosen {
            self.seats[usize::from(seat.0)] = SeatState::Ringing(id);
            self.ring_seat(seat, caller.clone());
            self.push(Action::Event(CallEvent::SeatRinging { call: id, seat }));
        }
    }

    fn stop_ringing(&mut self, i: usize, except: Option<ChannelId>) {
        let CallState::Offered { ringing, .. } = &mut self.calls[i].state else {
            return;
        };
        let seats = std::mem::take(ringing);
        for seat in seats {
            if Some(seat) != except {
                self.seats[usize::from(seat.0)] = SeatState::Idle;
                self.line_cmd(seat, LineCommand::StopRing);
            }
        }
    }

    fn seat_timeout(&mut self, now: Instant, i: usize) {
        if let CallState::Offered { ringing, .. } = &self.calls[i].state {
            let (call, seats) = (self.calls[i].id, ringing.clone());
            for seat in seats {
                self.push(Action::Event(CallEvent::SeatNoAnswer { call, seat }));
            }
        }
        self.stop_ringing(i, None);
        // Every seat has had its turn: start again from the first one.
        let route = &self.settings.routes[self.calls[i].route];
        let all_tried = match &self.calls[i].state {
            CallState::Offered { tried, .. } => route
                .seats
                .iter()
                .filter_map(|&p| ChannelId::from_port(p))
                .all(|c| tried.contains(&c) || self.seats.get(usize::from(c.0)) != Some(&SeatState::Idle)),
            CallState::Talking { .. }
            | CallState::Outbound { .. }
            | CallState::Flow
            | CallState::Internal { .. } => false,
        };
        if all_tried {
            if let CallState::Offered { tried, .. } = &mut self.calls[i].state {
                tried.clear();
            }
        }
        self.ring_seats(now, i);
        self.offer_waiting(now);
    }

    fn abandon(&mut self, now: Instant, i: usize) {
        self.stop_ringing(i, None);
        let call = self.calls.remove(i);
        self.end(now, call.id, Disposition::NoAnswer, "caller abandoned");
        // The seats it rang are free for calls that wait.
        self.offer_waiting(now);
    }

    fn end(&mut self, now: Instant, call: CallId, disposition: Disposition, cause: &'static str) {
        self.push(Action::Cdr(CdrUpdate::End { call, at: now, disposition, cause }));
        self.push(Action::Event(CallEvent::Ended { call, disposition, cause }));
    }

    /// Undoes what a call in conversation may have set up around it: hold music,
    /// supervisors, a consultation.
    fn stop_hold_music(&mut self, call: &Call) {
        if call.held {
            self.push(Action::Media(EngineCmd::StopPlay { channel: call.trunk }));
        }
        self.drop_supervisors(&call.monitors);
        if let Some(c) = call.consult {
            self.release_consult_leg(call.id, c);
        }
    }

    fn far_end_released(&mut self, now: Instant, i: usize, cause: &'static str) {
        let call = self.calls.remove(i);
        self.stop_hold_music(&call);
        self.line_cmd(call.trunk, LineCommand::OnHook);
        match call.state {
            CallState::Talking { .. } if call.forward_of.is_some() => {
                self.push(Action::StopRecording { call: call.id, channel: call.trunk });
                self.push(Action::Media(EngineCmd::Unbridge { channel: call.trunk }));
                self.end(now, call.id, Disposition::Answered, cause);
                // The caller's side ends with it.
                if let Some(j) = call.forward_of.and_then(|c| self.call_index(c)) {
                    let caller = self.calls.remove(j);
                    self.line_cmd(caller.trunk, LineCommand::OnHook);
                    if caller.recording {
                        self.push(Action::StopRecording { call: caller.id, channel: caller.trunk });
                    }
                    self.end(now, caller.id, Disposition::Answered, "the transferred-to party hung up");
                }
            }
            CallState::Talking { seat } => {
                self.push(Action::StopRecording { call: call.id, channel: call.trunk });
                self.push(Action::Media(EngineCmd::Unbridge { channel: call.trunk }));
                // The agent still holds the handset: tell them the caller left.
                self.seats[usize::from(seat.0)] = SeatState::Released;
                self.push(Action::Media(EngineCmd::PlayTone { channel: seat, tone: ProgressTone::Busy }));
                self.end(now, call.id, Disposition::Answered, cause);
            }
            CallState::Flow => {
                self.release_waiting_agent(call.id);
                self.release_forward_leg(now, call.id);
                self.push(Action::Media(EngineCmd::StopPlay { channel: call.trunk }));
                if call.recording {
                    self.push(Action::StopRecording { call: call.id, channel: call.trunk });
                }
                self.end(now, call.id, Disposition::Answered, cause);
            }
            CallState::Offered { .. } if call.trunk_up => {
                self.calls.insert(i, call);
                self.transferred_caller_left(now, i, cause);
            }
            CallState::Offered { .. } => {
                self.calls.insert(i, call);
                self.abandon(now, i);
            }
            CallState::Outbound { seat, .. } => {
                self.outbound_failed(now, call, seat, Disposition::NoAnswer, cause)
            }
            // Internal calls have no trunk to lose (their `trunk` is a seat).
            CallState::Internal { .. } => self.end(now, call.id, Disposition::Failed, cause),
        }
    }

    /// Acts on what a seat's phone did.
    fn seat_signal(&mut self, now: Instant, seat: ChannelId, signal: FxsSignal) {
        let index = usize::from(seat.0);
        let Some(&state) = self.seats.get(index) else { return };
        match (signal, state) {
            (FxsSignal::Flash, SeatState::Talking(call)) => self.flash_hold(call, seat),
            (FxsSignal::OffHook, SeatState::Ringing(call)) if self.internal_off_hook(now, call, seat) => {}
            (FxsSignal::OnHook, SeatState::Talking(call))
                if self.internal_hangup(now, call, seat, "agent hung up") => {}
            (FxsSignal::OffHook, SeatState::Ringing(call)) => {
                let outbound = self
                    .call_index(call)
                    .is_some_and(|i| matches!(self.calls[i].state, CallState::Outbound { .. }));
                if outbound {
                    self.outbound_seat_answered(now, call, seat);
                } else {
                    self.answer(now, call, seat);
                }
            }
            (FxsSignal::OffHook, SeatState::Idle) => {
                self.seats[index] = SeatState::OffHookIdle;
                self.push(Action::Media(EngineCmd::PlayTone { channel: seat, tone: ProgressTone::Dial }));
            }
            (FxsSignal::OffHook, SeatState::Consulting(call)) => self.consult_answered(call, seat),
            (FxsSignal::OnHook, SeatState::Consulting(_)) => self.consulted_left(now, seat),
            (FxsSignal::OnHook, SeatState::Talking(call))
                if self
                    .call_index(call)
                    .is_some_and(|i| self.calls[i].consult.is_some_and(|c| c.talking)) =>
            {
                // The agent hangs up during a consultation: the consulted agent takes the caller.
                let _ = self.consult_complete(seat);
                self.seats[index] = SeatState::Idle;
                self.push(Action::Media(EngineCmd::StopPlay { channel: seat }));
            }
            (FxsSignal::OnHook, SeatState::Talking(call)) => {
                self.seats[index] = SeatState::Idle;
                if self.agent_left_first(now, call, seat) {
                    self.offer_waiting(now);
                    return;
                }
                if let Some(i) = self.call_index(call) {
                    let call = self.calls.remove(i);
                    self.stop_hold_music(&call);
                    self.push(Action::StopRecording { call: call.id, channel: call.trunk });
                    self.push(Action::Media(EngineCmd::Unbridge { channel: call.trunk }));
                    self.line_cmd(call.trunk, LineCommand::OnHook);
                    if matches!(call.state, CallState::Outbound { .. }) {
                        self.end(now, call.id, Disposition::NoAnswer, "agent hung up before the answer");
                    } else {
                        self.end(now, call.id, Disposition::Answered, "agent hung up");
                    }
                }
                self.offer_waiting(now);
            }
            (FxsSignal::OnHook, SeatState::Monitoring(_)) => self.supervisor_left(now, seat),
            (FxsSignal::OnHook, SeatState::Waiting(call)) => {
                // The agent gave up waiting: when the flow returns, the caller rings them.
                self.seats[index] = SeatState::Idle;
                self.push(Action::Media(EngineCmd::StopPlay { channel: seat }));
                self.push(Action::Event(CallEvent::TransferredAway { call, seat }));
                self.offer_waiting(now);
            }
            (FxsSignal::OnHook, SeatState::Released | SeatState::OffHookIdle) => {
                self.seats[index] = SeatState::Idle;
                self.push(Action::Media(EngineCmd::StopPlay { channel: seat }));
                self.offer_waiting(now);
            }
            _ => {}
        }
    }

    /// The answered callers waiting on routes (who hear music, and so can hear their
    /// position), in the order they will be offered seats.
    pub fn queue_positions(&self, now: Instant) -> Vec<QueuePosition> {
        let mut waiting: Vec<&Call> = self
            .calls
            .iter()
            .filter(|c| {
                c.trunk_up && matches!(&c.state, CallState::Offered { ringing, .. } if ringing.is_empty())
            })
            .collect();
        waiting.sort_by_key(|c| (c.route, std::cmp::Reverse(c.priority), c.offered_at));
        let mut out: Vec<QueuePosition> = Vec::with_capacity(waiting.len());
        for c in waiting {
            let position = match out.last() {
                Some(p) if p.route == c.route => p.position + 1,
                _ => 1,
            };
            out.push(QueuePosition {
                call: c.id,
                trunk: c.trunk,
                route: c.route,
                position,
                waited: now.saturating_duration_since(c.offered_at),
            });
        }
        out
    }

    /// The ring cadence measured on the trunk of an incoming call (after its second ring).
    pub fn ring_cadence(&self, call: CallId) -> Option<RingCadence> {
        self.call_index(call).and_then(|i| self.calls[i].cadence)
    }

    /// How long a call has been up (for incoming calls: since it was offered).
    pub fn age(&self, call: CallId, now: Instant) -> Option<Duration> {
        self.call_index(call).map(|i| now.saturating_duration_since(self.calls[i].offered_at))
    }

    /// A route's settings.
    pub fn route(&self, route: usize) -> Option<&Route> {
        self.settings.routes.get(route)
    }

    /// The route of that name that rings seats (not one that starts a flow).
    pub fn route_named(&self, name: &str) -> Option<usize> {
        self.settings.routes.iter().position(|r| r.name == name && r.flows.entry.is_none())
    }

    /// Sets the seats of a route, best first (the ACD's order for a queue).
    pub fn set_route_seats(&mut self, route: usize, seats: Vec<u16>) {
        if let Some(r) = self.settings.routes.get_mut(route) {
            r.seats = seats;
        }
    }

    /// The route a call is on (None for outgoing calls).
    pub fn route_of(&self, call: CallId) -> Option<usize> {
        self.call_index(call).map(|i| self.calls[i].route).filter(|r| *r != usize::MAX)
    }

    /// Moves a call that has waited too long to its route's overflow route.
    fn overflow(&mut self, now: Instant, i: usize) -> bool {
        let route = self.calls[i].route;
        let Some((after, target)) = self.settings.routes.get(route).and_then(|r| r.overflow) else {
            return false;
        };
        if now.saturating_duration_since(self.calls[i].route_since) < after {
            return false;
        }
        if let CallState::Offered { ringing, .. } = &self.calls[i].state {
            let (call, seats) = (self.calls[i].id, ringing.clone());
            for seat in seats {
                self.push(Action::Event(CallEvent::RingStopped { call, seat }));
            }
        }
        self.stop_ringing(i, None);
        if target >= self.settings.routes.len() {
            // Overflow to a flow (voicemail, a callback offer).
            let Some(flow) = self.settings.routes[route].flows.overflow.clone() else {
                return false;
            };
            if self.calls[i].trunk_up {
                self.push(Action::Media(EngineCmd::StopPlay { channel: self.calls[i].trunk }));
            }
            let call = self.calls[i].id;
            self.push(Action::Event(CallEvent::Overflowed { call, to: format!("flow {flow}") }));
            self.enter_flow(now, i, flow, None);
            self.offer_waiting(now);
            return true;
        }
        self.calls[i].route = target;
        self.calls[i].route_since = now;
        if let CallState::Offered { tried, .. } = &mut self.calls[i].state {
            tried.clear();
        }
        let (call, to) = (self.calls[i].id, self.settings.routes[target].name.clone());
        self.push(Action::Event(CallEvent::Overflowed { call, to }));
        self.ring_seats(now, i);
        self.offer_waiting(now);
        true
    }

    /// Takes a port out of service (`blocked`) or puts it back. A blocked trunk is not used
    /// for outgoing calls and its incoming calls are not answered; a blocked seat is not
    /// rung. A call already on the port goes on. Answers false for a port that does not exist.
    pub fn set_blocked(&mut self, now: Instant, channel: ChannelId, blocked: bool) -> bool {
        self.note_time(now);
        let Some(slot) = self.blocked.get_mut(usize::from(channel.0)) else { return false };
        let was = std::mem::replace(slot, blocked);
        if was && !blocked {
            self.offer_waiting(now);
        }
        true
    }

    pub fn is_blocked(&self, channel: ChannelId) -> bool {
        self.blocked.get(usize::from(channel.0)) == Some(&true)
    }

    /// Refuses new calls from now on (`true`); the calls in progress go on.
    pub fn set_draining(&mut self, draining: bool) {
        self.draining = draining;
    }

    /// What a port is doing, in a word, for the maintenance shell, and the call on it.
    pub fn port_state(&self, now: Instant, channel: ChannelId) -> (&'static str, Option<CallId>) {
        let i = usize::from(channel.0);
        if let Some(c) = self.calls.iter().find(|c| c.trunk == channel) {
            let state = match &c.state {
                CallState::Offered { .. } => "offered",
                CallState::Talking { .. } => "talking",
                CallState::Outbound { .. } => "dialling",
                CallState::Flow => "ivr",
                CallState::Internal { .. } => "internal",
            };
            return (state, Some(c.id));
        }
        match self.seats.get(i) {
            Some(SeatState::Ringing(call)) => return ("ringing", Some(*call)),
            Some(SeatState::Talking(call)) => return ("talking", Some(*call)),
            Some(SeatState::Monitoring(call)) => return ("monitoring", Some(*call)),
            Some(SeatState::Consulting(call)) => return ("consulting", Some(*call)),
            Some(SeatState::Waiting(call)) => return ("waiting", Some(*call)),
            Some(SeatState::Released) => return ("released", None),
            Some(SeatState::OffHookIdle) => return ("off-hook", None),
            Some(SeatState::Idle) | None => {}
        }
        match self.ports.get(i) {
            Some(Port::Fxo(line)) if !line.is_idle(now) => ("busy", None),
            Some(Port::Digital { ready: false }) => ("down", None),
            _ => ("idle", None),
        }
    }

    /// Ends a call at an operator's request (the maintenance shell's `hangup`): an agent's
    /// conversation as if the agent hung up, any other call as if the far end had.
    pub fn release_call(&mut self, now: Instant, call: CallId, cause: &'static str) -> bool {
        self.note_time(now);
        let Some(i) = self.call_index(call) else { return false };
        if let CallState::Talking { seat } = self.calls[i].state {
            if self.release_seat(now, seat, cause) {
                return true;
            }
        }
        let Some(i) = self.call_index(call) else { return true };
        self.far_end_released(now, i, cause);
        true
    }

    /// Says whether a seat may be offered calls (an agent paused or in wrap-up may not).
    pub fn set_available(&mut self, now: Instant, seat: ChannelId, available: bool) {
        self.note_time(now);
        let Some(slot) = self.available.get_mut(usize::from(seat.0)) else { return };
        let was = std::mem::replace(slot, available);
        if available && !was {
            self.offer_waiting(now);
        }
    }

    /// The trunk of the call a seat is talking on.
    pub fn trunk_of_seat(&self, seat: ChannelId) -> Option<ChannelId> {
        match self.seats.get(usize::from(seat.0)) {
            Some(SeatState::Talking(call)) => self.calls.iter().find(|c| c.id == *call).map(|c| c.trunk),
            _ => None,
        }
    }

    /// Puts the caller of a seat's call on hold: the seat no longer hears them, and they hear
    /// the hold music. False when the seat has no call in conversation or it is held already.
    pub fn hold(&mut self, seat: ChannelId) -> bool {
        let Some(SeatState::Talking(call)) = self.seats.get(usize::from(seat.0)).copied() else {
            return false;
        };
        let Some(i) = self.call_index(call) else { return false };
        if self.calls[i].held {
            return false;
        }
        self.calls[i].held = true;
        let trunk = self.calls[i].trunk;
        self.relisten(i);
        self.push(Action::Media(EngineCmd::PlayPrompt { channel: trunk, prompt: HOLD_MUSIC, repeat: true }));
        true
    }

    /// Takes a held caller back to the seat.
    pub fn retrieve(&mut self, seat: ChannelId) -> bool {
        let Some(SeatState::Talking(call)) = self.seats.get(usize::from(seat.0)).copied() else {
            return false;
        };
        let Some(i) = self.call_index(call) else { return false };
        if !self.calls[i].held {
            return false;
        }
        self.calls[i].held = false;
        let trunk = self.calls[i].trunk;
        self.push(Action::Media(EngineCmd::StopPlay { channel: trunk }));
        self.relisten(i);
        let _ = seat;
        true
    }

    /// A hook flash from the handset during a conversation holds the caller (hold music, as
    /// the agent protocol's hold does); the next flash takes them back. Only for a call with
    /// a trunk and no consultation going on: the handset has no other way to say which
    /// party a flash is about.
    fn flash_hold(&mut self, call: CallId, seat: ChannelId) {
        let Some(i) = self.call_index(call) else { return };
        let c = &self.calls[i];
        if !matches!(c.state, CallState::Talking { seat: s } if s == seat) || c.consult.is_some() {
            return;
        }
        let was_held = c.held;
        let done = if was_held { self.retrieve(seat) } else { self.hold(seat) };
        if done {
            self.push(Action::Event(CallEvent::HookFlash { call, seat, held: !was_held }));
        }
    }

    /// Releases the call a seat is talking on, at the agent's or a supervisor's request: the
    /// caller is released and the seat hears busy tone until the handset goes down.
    pub fn release_seat(&mut self, now: Instant, seat: ChannelId, cause: &'static str) -> bool {
        self.note_time(now);
        let index = usize::from(seat.0);
        // A consulted agent hanging up from the desktop leaves the consultation only.
        if let Some(SeatState::Consulting(call)) = self.seats.get(index).copied() {
            let Some(i) = self.call_index(call) else { return false };
            if !self.calls[i].consult.is_some_and(|c| c.talking) {
                return false;
            }
            self.end_consult_leg(i);
            self.relisten(i);
            return true;
        }
        let Some(SeatState::Talking(call)) = self.seats.get(index).copied() else { return false };
        if self.internal_hangup(now, call, seat, cause) {
            // The releasing agent's handset may still be up: busy tone until it goes down.
            self.seats[index] = SeatState::Released;
            self.push(Action::Media(EngineCmd::PlayTone { channel: seat, tone: ProgressTone::Busy }));
            return true;
        }
        if self.agent_left_first(now, call, seat) {
            self.seats[index] = SeatState::Released;
            self.push(Action::Media(EngineCmd::PlayTone { channel: seat, tone: ProgressTone::Busy }));
            return true;
        }
        let Some(i) = self.call_index(call) else { return false };
        let call = self.calls.remove(i);
        self.stop_hold_music(&call);
        self.line_cmd(call.trunk, LineCommand::OnHook);
        self.push(Action::StopRecording { call: call.id, channel: call.trunk });
        self.push(Action::Media(EngineCmd::Unbridge { channel: call.trunk }));
        self.seats[index] = SeatState::Released;
        self.push(Action::Media(EngineCmd::PlayTone { channel: seat, tone: ProgressTone::Busy }));
        self.end(now, call.id, Disposition::Answered, cause);
        true
    }

    /// Gives calls that wait for a seat another chance after a seat became idle, the
    /// highest priority first, then the longest waiting.
    fn offer_waiting(&mut self, now: Instant) {
        let mut order: Vec<usize> = (0..self.calls.len()).collect();
        order.sort_by_key(|&i| (std::cmp::Reverse(self.calls[i].priority), self.calls[i].offered_at));
        let ids: Vec<CallId> = order.iter().map(|&i| self.calls[i].id).collect();
        for id in ids {
            let Some(i) = self.call_index(id) else { continue };
            if matches!(&self.calls[i].state, CallState::Offered { ringing, .. } if ringing.is_empty()) {
                if let CallState::Offered { tried, .. } = &mut self.calls[i].state {
                    tried.clear();
                }
                self.ring_seats(now, i);
            }
        }
    }

    fn answer(&mut self, now: Instant, call: CallId, seat: ChannelId) {
        let Some(i) = self.call_index(call) else {
            return;
        };
        self.stop_ringing(i, Some(seat));
        let route = self.calls[i].route;
        if let Some(pos) = self.settings.routes[route].seats.iter().position(|&p| p == seat.port()) {
            self.last_seat[route] = pos;
        }
        self.seats[usize::from(seat.0)] = SeatState::Talking(call);
        let trunk = self.calls[i].trunk;
        self.calls[i].state = CallState::Talking { seat };
        if self.calls[i].trunk_up {
            // Answered before (by a flow, or by an agent who transferred): stop the hold music.
            self.push(Action::Media(EngineCmd::StopPlay { channel: trunk }));
        } else {
            self.line_cmd(trunk, LineCommand::OffHook);
            self.calls[i].trunk_up = true;
        }
        if self.settings.record && !self.calls[i].recording {
            self.calls[i].recording = true;
            self.push(Action::StartRecording { call, channel: trunk });
        }
        self.push(Action::Media(EngineCmd::Bridge { a: trunk, b: seat }));
        self.push(Action::Cdr(CdrUpdate::Answer { call, at: now, seat }));
        self.push(Action::Event(CallEvent::Answered { call, seat }));
        // The other seats that rang are free for calls that wait.
        self.offer_waiting(now);
    }

    fn digit(&mut self, now: Instant, channel: ChannelId, digit: char) {
        let call = self.calls.iter().find(|c| {
            c.trunk == channel || matches!(c.state, CallState::Talking { seat } if seat == channel)
        });
        if let Some(call) = call {
            let (id, talking) = (call.id, matches!(call.state, CallState::Talking { .. } | CallState::Flow));
            if talking {
                self.push(Action::Event(CallEvent::Digit { call: id, channel, digit }));
            }
            return;
        }
        // Digits on a trunk with no call may be DTMF caller id sent before the ring: the
        // line machine collects them.
        self.trunk_input(now, channel, FxoInput::Digit(digit));
    }
}

pub mod consult;
pub mod flows;
pub mod internal;
pub mod outbound;
pub mod supervise;
pub mod transfer;

#[cfg(test)]
mod tests;
