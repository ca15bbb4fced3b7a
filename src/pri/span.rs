//! A PRI span: the D-channel data link, Q.931 call control for every call on it, and the
//! B-channels those calls use.
//!
//! [`Span`] has no IO and reads no clock. Every entry point takes `now`; frames to write,
//! the next deadline and events come out of the `poll_*` methods. A daemon task drives it
//! like this:
//!
//! ```text
//! loop {
//!     while let Some(frame) = span.poll_transmit() { write frame to the D-channel }
//!     while let Some(event) = span.poll_event() { act on it, maybe span.answer(now, call) }
//!     wait for a frame (span.handle_frame(now, &frame)), span.poll_timeout()
//!     (span.handle_timeout(now)) or a command from the daemon
//! }
//! ```

use std::collections::VecDeque;
use std::time::Instant;

use super::call::{CallState, CallTimer, Q931Timers};
use super::q921::{Link, LinkEvent, LinkStats, Q921Timers};
use super::q931::{
    cause, location, Bearer, CallRef, CalledNumber, CallingNumber, Cause, ChannelIdent, ChannelSel,
    DecodeError, Message, MessageType, NumberType, ProgressInd, RestartClass,
};
use super::{bchan_of, timeslot_of, Role};

/// A call's identity on a span, unique for the span's lifetime (unlike call references,
/// which both sides allocate and reuse).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(pub u32);

/// In which order free B-channels are picked. The two sides of a link should hunt from
/// opposite ends so that their outgoing calls rarely collide on one channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hunt {
    Ascending,
    Descending,
}

/// How a span is set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpanConfig {
    pub role: Role,
    /// Number of B-channels: 30 on a full E1.
    pub channels: u8,
    pub hunt: Hunt,
    pub q921: Q921Timers,
    pub q931: Q931Timers,
}

impl SpanConfig {
    /// A full E1 with the standard timers; the user side hunts upwards, the network side
    /// downwards.
    pub fn e1(role: Role) -> SpanConfig {
        SpanConfig {
            role,
            channels: 30,
            hunt: if role == Role::User { Hunt::Ascending } else { Hunt::Descending },
            q921: Q921Timers::default(),
            q931: Q931Timers::default(),
        }
    }
}

/// What the daemon asks for when it places a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallParams {
    pub called: CalledNumber,
    /// The calling number with its presentation; `None` sends no calling number.
    pub calling: Option<CallingNumber>,
    /// A B-channel (1-30) to use; `None` lets the span pick one.
    pub channel: Option<u8>,
    /// Only that channel will do (on the network side every channel is exclusive).
    pub exclusive: bool,
    /// False for overlap dialing: more digits follow with [`Span::send_digits`].
    pub sending_complete: bool,
    pub bearer: Bearer,
}

impl CallParams {
    /// An en-bloc speech call to `called` (unknown type and plan) from `calling`.
    pub fn speech(called: &str, calling: Option<&str>) -> CallParams {
        CallParams {
            called: CalledNumber { kind: NumberType::default(), digits: called.to_owned() },
            calling: calling.map(|c| CallingNumber { digits: c.to_owned(), ..CallingNumber::default() }),
            channel: None,
            exclusive: false,
            sending_complete: true,
            bearer: Bearer::SPEECH_ALAW,
        }
    }
}

/// Which channels a RESTART covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestartScope {
    /// One B-channel (1-30).
    Channel(u8),
    /// Every channel of the span.
    Span,
}

/// What a span tells the daemon.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PriEvent {
    /// The D-channel came up; calls can be placed.
    LinkUp,
    /// The D-channel went down; calls that were not yet answered have been cleared.
    LinkDown,
    /// The peer re-established the link (it restarted): calls are being checked with it.
    LinkReset,
    /// A call came in on `channel`. The daemon answers with `setup_ack` (more digits
    /// wanted, only when `sending_complete` is false), `proceeding`, `alerting`, `answer` or
    /// `hangup`.
    Incoming {
        call: CallId,
        channel: u8,
        calling: Option<CallingNumber>,
        called: CalledNumber,
        sending_complete: bool,
        bearer: Bearer,
        /// Display text (the caller's name, on networks that send it).
        display: Option<String>,
    },
    /// Overlap receiving: more digits of the called number.
    MoreDigits {
        call: CallId,
        digits: String,
        sending_complete: bool,
    },
    /// Overlap receiving: T302 ran out without more digits; the daemon decides whether the
    /// number is complete (proceed) or not (hang up, cause 28).
    DialTimeout {
        call: CallId,
    },
    /// Our overlap call: the peer wants more digits ([`Span::send_digits`]).
    SetupAck {
        call: CallId,
    },
    Proceeding {
        call: CallId,
    },
    /// The far end is ringing; `inband` when tones come on the B-channel.
    Alerting {
        call: CallId,
        inband: bool,
    },
    Progress {
        call: CallId,
        description: u8,
    },
    /// Our call was answered.
    Answered {
        call: CallId,
    },
    /// A call we answered is connected.
    Connected {
        call: CallId,
    },
    /// The call moved to another B-channel (the network chose another than we proposed).
    ChannelChanged {
        call: CallId,
        channel: u8,
    },
    /// The call was cleared by the peer, a timer or a restart (not sent for clearing the
    /// daemon started).
    Hangup {
        call: CallId,
        cause: Cause,
    },
    /// The call is gone and its B-channel is free again. Sent for every call, last.
    Released {
        call: CallId,
    },
    /// The peer restarted channels; calls on them were cleared first.
    PeerRestart {
        scope: RestartScope,
    },
    /// Our restart was acknowledged.
    RestartDone {
        scope: RestartScope,
    },
    /// Our restart was never acknowledged (T316, N316 times).
    RestartFailed {
        scope: RestartScope,
    },
}

/// Why a command was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PriError {
    #[error("the D-channel is down")]
    LinkDown,
    #[error("no call {0:?} on this span")]
    NoSuchCall(CallId),
    #[error("call {call:?} is in state {state:?}, where {what} is not possible")]
    WrongState { call: CallId, state: CallState, what: &'static str },
    #[error("B-channel {0} does not exist on this span")]
    NoSuchChannel(u8),
    #[error("B-channel {0} is busy")]
    ChannelBusy(u8),
    #[error("no B-channel is free")]
    NoChannel,
    #[error("a restart is already waiting for its acknowledgement")]
    RestartPending,
    #[error("all call references are in use")]
    NoCallReference,
}

/// What a B-channel is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelState {
    Idle,
    InUse(CallId),
    /// Being restarted by us: unavailable until the peer acknowledges.
    Restarting,
}

/// Counters for the operator and the tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpanStats {
    pub link: LinkStats,
    /// Layer-3 messages that failed to decode.
    pub bad_messages: u64,
    /// Messages of types this stack does not implement.
    pub unknown_messages: u64,
    /// STATUS messages received that reported a problem.
    pub status_received: u64,
    pub calls_in: u64,
    pub calls_out: u64,
}

#[derive(Debug)]
struct Call {
    id: CallId,
    cref: u16,
    /// We sent the SETUP: our messages carry call reference flag 0.
    outgoing: bool,
    state: CallState,
    channel: Option<u8>,
    /// Outgoing: we asked for the channel exclusively.
    exclusive: bool,
    /// Incoming: the channel was indicated in a response. Outgoing: the peer confirmed it.
    channel_settled: bool,
    called_kind: NumberType,
    timer: Option<(CallTimer, Instant)>,
    /// The timer last started, and how often it ran out (T303 and T308 are tried twice).
    last_timer: Option<CallTimer>,
    expiries: u8,
    /// The cause we clear with, repeated in RELEASE after T305.
    cause: Cause,
    /// The daemon has been told the call is over (or started clearing it itself).
    done: bool,
    setup: Option<Message>,
}

#[derive(Debug)]
struct PendingRestart {
    scope: RestartScope,
    deadline: Instant,
    sent: u8,
}

/// One PRI span.
#[derive(Debug)]
pub struct Span {
    config: SpanConfig,
    link: Link,
    calls: Vec<Call>,
    channels: Vec<ChannelState>,
    events: VecDeque<PriEvent>,
    next_id: u32,
    next_cref: u16,
    restart: Option<PendingRestart>,
    now: Instant,
    stats: SpanStats,
}

impl Span {
    /// A span whose D-channel starts establishing at once.
    pub fn new(config: SpanConfig, now: Instant) -> Span {
        let channels = config.channels.min(30);
        Span {
            link: Link::new(config.role, config.q921, now),
            config: SpanConfig { channels, ..config },
            calls: Vec::new(),
            channels: vec![ChannelState::Idle; usize::from(channels)],
            events: VecDeque::new(),
            next_id: 1,
            next_cref: 1,
            restart: None,
            now,
            stats: SpanStats::default(),
        }
    }

    pub fn config(&self) -> &SpanConfig {
        &self.config
    }

    pub fn is_link_up(&self) -> bool {
        self.link.is_up()
    }

    pub fn stats(&self) -> SpanStats {
        SpanStats { link: *self.link.stats(), ..self.stats }
    }

    /// The state of B-channel `bchan` (1-30).
    pub fn channel_state(&self, bchan: u8) -> Option<ChannelState> {
        self.channels.get(usize::from(bchan).checked_sub(1)?).copied()
    }

    /// A call's state and B-channel.
    pub fn call_state(&self, call: CallId) -> Option<(CallState, Option<u8>)> {
        self.calls.iter().find(|c| c.id == call).map(|c| (c.state, c.channel))
    }

    /// Number of calls that hold a call reference.
    pub fn call_count(&self) -> usize {
        self.calls.len()
    }

    // ---- Polling ----

    /// The next frame to write to the D-channel, FCS included.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.link.poll_transmit()
    }

    pub fn poll_event(&mut self) -> Option<PriEvent> {
        self.events.pop_front()
    }

    /// When [`Span::handle_timeout`] should be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let calls = self.calls.iter().filter_map(|c| c.timer.map(|(_, t)| t));
        let restart = self.restart.as_ref().map(|r| r.deadline);
        calls.chain(restart).chain(self.link.poll_timeout()).min()
    }

    /// A frame read from the D-channel, with its two FCS octets.
    pub fn handle_frame(&mut self, now: Instant, frame: &[u8]) {
        self.now = now;
        self.link.handle_frame(now, frame);
        self.drain_link();
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        self.link.handle_timeout(now);
        self.drain_link();
        let due: Vec<(CallId, CallTimer)> = self
            .calls
            .iter()
            .filter_map(|c| match c.timer {
                Some((t, at)) if at <= now => Some((c.id, t)),
                _ => None,
            })
            .collect();
        for (id, t) in due {
            if let Some(i) = self.index(id) {
                self.calls[i].timer = None;
                self.call_timer(i, t);
            }
        }
        if self.restart.as_ref().is_some_and(|r| r.deadline <= now) {
            self.restart_timer();
        }
    }

    // ---- Commands ----

    /// Places a call. The B-channel is the one asked for or a free one the span picks; the
    /// network may move the call to another ([`PriEvent::ChannelChanged`]).
    pub fn connect(&mut self, now: Instant, params: CallParams) -> Result<CallId, PriError> {
        self.now = now;
        if !self.link.is_up() {
            return Err(PriError::LinkDown);
        }
        let network = self.config.role == Role::Network;
        let channel = match params.channel {
            Some(b) => match self.channel_state(b) {
                None => return Err(PriError::NoSuchChannel(b)),
                Some(ChannelState::Idle) => b,
                Some(_) if params.exclusive => return Err(PriError::ChannelBusy(b)),
                Some(_) => self.hunt().ok_or(PriError::NoChannel)?,
            },
            None => self.hunt().ok_or(PriError::NoChannel)?,
        };
        let cref = self.allocate_cref().ok_or(PriError::NoCallReference)?;
        let id = self.new_id();
        let exclusive = network || params.exclusive;
        let mut setup = Message::new(MessageType::Setup, CallRef { value: cref, flag: false });
        setup.ies.sending_complete = params.sending_complete;
        setup.ies.bearer = Some(params.bearer);
        setup.ies.channel = Some(ChannelIdent { exclusive, sel: ChannelSel::Timeslot(ts(channel)) });
        setup.ies.calling = params.calling.clone();
        setup.ies.called = Some(params.called.clone());
        self.send(&setup);
        self.channels[usize::from(channel) - 1] = ChannelState::InUse(id);
        self.calls.push(Call {
            id,
            cref,
            outgoing: true,
            state: CallState::OutInitiated,
            channel: Some(channel),
            exclusive,
            channel_settled: false,
            called_kind: params.called.kind,
            timer: Some((CallTimer::T303, now + self.config.q931.t303)),
            last_timer: Some(CallTimer::T303),
            expiries: 0,
            cause: self.cause(cause::NORMAL_CLEARING),
            done: false,
            setup: Some(setup),
        });
        self.stats.calls_out += 1;
        Ok(id)
    }

    /// Incoming overlap call: asks the caller for more digits (SETUP ACKNOWLEDGE).
    pub fn setup_ack(&mut self, now: Instant, call: CallId) -> Result<(), PriError> {
        self.now = now;
        let i = self.incoming_in(call, &[CallState::InPresent], "SETUP ACKNOWLEDGE")?;
        self.respond(i, MessageType::SetupAck, None);
        self.calls[i].state = CallState::InOverlapReceiving;
        self.set_timer(i, CallTimer::T302);
        Ok(())
    }

    /// Incoming call: the number is complete and the call is being routed.
    pub fn proceeding(&mut self, now: Instant, call: CallId) -> Result<(), PriError> {
        self.now = now;
        let i = self.incoming_in(
            call,
            &[CallState::InPresent, CallState::InOverlapReceiving],
            "CALL PROCEEDING",
        )?;
        self.respond(i, MessageType::CallProceeding, None);
        self.calls[i].state = CallState::InProceeding;
        self.calls[i].timer = None;
        Ok(())
    }

    /// Incoming call: the called party is being alerted; `inband` says ring-back tone is
    /// played on the B-channel.
    pub fn alerting(&mut self, now: Instant, call: CallId, inband: bool) -> Result<(), PriError> {
        self.now = now;
        let i = self.incoming_in(
            call,
            &[CallState::InPresent, CallState::InOverlapReceiving, CallState::InProceeding],
            "ALERTING",
        )?;
        let pi = inband.then(|| self.progress_ind(8));
        self.respond(i, MessageType::Alerting, pi);
        self.calls[i].state = CallState::InReceived;
        self.calls[i].timer = None;
        Ok(())
    }

    /// Incoming call: sends PROGRESS (description 8: in-band information available).
    pub fn progress(&mut self, now: Instant, call: CallId, description: u8) -> Result<(), PriError> {
        self.now = now;
        let i = self.incoming_in(
            call,
            &[CallState::InOverlapReceiving, CallState::InProceeding, CallState::InReceived],
            "PROGRESS",
        )?;
        let pi = self.progress_ind(description);
        self.respond(i, MessageType::Progress, Some(pi));
        Ok(())
    }

    /// Incoming call: answers it.
    pub fn answer(&mut self, now: Instant, call: CallId) -> Result<(), PriError> {
        self.now = now;
        let i = self.incoming_in(
            call,
            &[
                CallState::InPresent,
                CallState::InOverlapReceiving,
                CallState::InProceeding,
                CallState::InReceived,
            ],
            "CONNECT",
        )?;
        self.respond(i, MessageType::Connect, None);
        if self.config.role == Role::User {
            self.calls[i].state = CallState::ConnectRequest;
            self.set_timer(i, CallTimer::T313);
        } else {
            // The network side is active as soon as it sends CONNECT; the user's CONNECT
            // ACKNOWLEDGE is optional.
            self.calls[i].state = CallState::Active;
            self.calls[i].timer = None;
            self.events.push_back(PriEvent::Connected { call });
        }
        Ok(())
    }

    /// Our overlap call: sends more digits (INFORMATION), with sending complete on the last.
    pub fn send_digits(
        &mut self,
        now: Instant,
        call: CallId,
        digits: &str,
        complete: bool,
    ) -> Result<(), PriError> {
        self.now = now;
        let i = self.index(call).ok_or(PriError::NoSuchCall(call))?;
        let state = self.calls[i].state;
        if !self.calls[i].outgoing || state != CallState::OutOverlapSending {
            return Err(PriError::WrongState { call, state, what: "sending digits" });
        }
        let mut m = self.message(i, MessageType::Information);
        m.ies.called = Some(CalledNumber { kind: self.calls[i].called_kind, digits: digits.to_owned() });
        m.ies.sending_complete = complete;
        self.send(&m);
        self.set_timer(i, CallTimer::T304);
        Ok(())
    }

    /// Clears a call with `cause_value` (16 normal, 17 busy, 1 unallocated number...). An
    /// incoming call not yet responded to is rejected with RELEASE COMPLETE.
    pub fn hangup(&mut self, now: Instant, call: CallId, cause_value: u8) -> Result<(), PriError> {
        self.now = now;
        let i = self.index(call).ok_or(PriError::NoSuchCall(call))?;
        let c = self.cause(cause_value);
        self.calls[i].done = true;
        self.calls[i].cause = c;
        match self.calls[i].state {
            CallState::InPresent => {
                let mut m = self.message(i, MessageType::ReleaseComplete);
                m.ies.cause = Some(c);
                self.send(&m);
                self.free(i);
            }
            CallState::DisconnectIndication => self.send_release(i, Some(c)),
            CallState::DisconnectRequest | CallState::ReleaseRequest | CallState::Null => {}
            _ => self.send_disconnect(i, c),
        }
        Ok(())
    }

    /// Restarts one B-channel or the whole span: calls on it are cleared (with
    /// [`PriEvent::Hangup`] cause 41) and the channels stay unavailable until the peer
    /// acknowledges.
    pub fn restart(&mut self, now: Instant, scope: RestartScope) -> Result<(), PriError> {
        self.now = now;
        if !self.link.is_up() {
            return Err(PriError::LinkDown);
        }
        if self.restart.is_some() {
            return Err(PriError::RestartPending);
        }
        if let RestartScope::Channel(b) = scope {
            if self.channel_state(b).is_none() {
                return Err(PriError::NoSuchChannel(b));
            }
        }
        self.clear_scope(scope, cause::TEMPORARY_FAILURE);
        for b in self.scope_channels(scope) {
            self.channels[usize::from(b) - 1] = ChannelState::Restarting;
        }
        self.restart = Some(PendingRestart { scope, deadline: now + self.config.q931.t316, sent: 1 });
        self.send_restart(scope);
        Ok(())
    }

    // ---- Internals: link and messages ----

    fn drain_link(&mut self) {
        while let Some(ev) = self.link.poll_event() {
            match ev {
                LinkEvent::Data(d) => self.handle_l3(&d),
                LinkEvent::Up => {
                    self.events.push_back(PriEvent::LinkUp);
                    self.enquire_all();
                }
                LinkEvent::Reset => {
                    self.events.push_back(PriEvent::LinkReset);
                    self.enquire_all();
                }
                LinkEvent::Down => {
                    self.events.push_back(PriEvent::LinkDown);
                    // Calls being set up cannot go on without signalling; answered calls
                    // keep their B-channel and are checked when the link is back.
                    let ids: Vec<CallId> =
                        self.calls.iter().filter(|c| c.state != CallState::Active).map(|c| c.id).collect();
                    for id in ids {
                        if let Some(i) = self.index(id) {
                            self.clear_locally(i, cause::TEMPORARY_FAILURE);
                        }
                    }
                    if let Some(r) = self.restart.take() {
                        self.restart_finished(r.scope);
                    }
                }
            }
        }
    }

    /// Asks the peer for the state of every call, so calls it forgot get cleared.
    fn enquire_all(&mut self) {
        for i in 0..self.calls.len() {
            let m = self.message(i, MessageType::StatusEnquiry);
            self.send(&m);
        }
    }

    fn send(&mut self, m: &Message) {
        self.link.send(self.now, m.to_bytes());
    }

    fn handle_l3(&mut self, data: &[u8]) {
        let msg = match Message::decode(data) {
            Ok(m) => m,
            Err(e) => {
                self.stats.bad_messages += 1;
                self.malformed(data, e);
                return;
            }
        };
        if msg.call_ref.is_global() {
            self.global_message(msg);
            return;
        }
        // Flag 1 marks messages sent to the side that originated the call: here, us.
        let ours = msg.call_ref.flag;
        match self.calls.iter().position(|c| c.cref == msg.call_ref.value && c.outgoing == ours) {
            Some(i) => self.call_message(i, msg),
            None => self.unknown_cref(msg),
        }
    }

    /// A message that did not decode: Q.931 5.8 says what to answer.
    fn malformed(&mut self, data: &[u8], e: DecodeError) {
        let Ok((cr, kind, _)) = super::q931::decode_header(data) else {
            return;
        };
        if cr.is_global() {
            return;
        }
        let value = if e.ie().is_some() { cause::INVALID_IE_CONTENTS } else { cause::INVALID_MESSAGE };
        let pos = self.calls.iter().position(|c| c.cref == cr.value && c.outgoing == cr.flag);
        match (pos, kind) {
            (Some(i), MessageType::Disconnect | MessageType::Release | MessageType::ReleaseComplete) => {
                // A clearing message with a bad element still clears: treat it as if it
                // carried cause 100, so the call is not left hanging.
                let mut m = Message::new(kind, cr);
                m.ies.cause = Some(Cause { location: location::USER, value });
                self.call_message(i, m);
            }
            (Some(i), _) => self.send_status(i, value),
            (None, MessageType::ReleaseComplete) => {}
            (None, _) => {
                let mut m =
                    Message::new(MessageType::ReleaseComplete, CallRef { value: cr.value, flag: !cr.flag });
                m.ies.cause = Some(self.cause(if kind == MessageType::Setup {
                    value
                } else {
                    cause::INVALID_CALL_REFERENCE
                }));
                self.send(&m);
            }
        }
    }

    fn unknown_cref(&mut self, msg: Message) {
        let reply_ref = CallRef { value: msg.call_ref.value, flag: !msg.call_ref.flag };
        let reply = |this: &mut Span, kind: MessageType, value: u8, state: Option<u8>| {
            let mut m = Message::new(kind, reply_ref);
            m.ies.cause = Some(this.cause(value));
            m.ies.call_state = state;
            this.send(&m);
        };
        match msg.kind {
            MessageType::Setup if !msg.call_ref.flag => self.incoming_setup(msg),
            MessageType::ReleaseComplete => {}
            MessageType::StatusEnquiry => {
                reply(self, MessageType::Status, cause::RESPONSE_TO_STATUS_ENQUIRY, Some(0))
            }
            MessageType::Status => {
                self.stats.status_received += 1;
                if msg.ies.call_state.is_some_and(|s| s != 0) {
                    reply(self, MessageType::ReleaseComplete, cause::WRONG_CALL_STATE, None);
                }
            }
            _ => reply(self, MessageType::ReleaseComplete, cause::INVALID_CALL_REFERENCE, None),
        }
    }

    fn incoming_setup(&mut self, msg: Message) {
        let reject = |this: &mut Span, value: u8| {
            let mut m =
                Message::new(MessageType::ReleaseComplete, CallRef { value: msg.call_ref.value, flag: true });
            m.ies.cause = Some(this.cause(value));
            this.send(&m);
        };
        let Some(bearer) = msg.ies.bearer else {
            return reject(self, cause::MANDATORY_IE_MISSING);
        };
        // A voice appliance takes speech and 3.1 kHz audio only.
        if bearer.capability != 0x00 && bearer.capability != 0x10 {
            return reject(self, cause::BEARER_CAPABILITY_NOT_IMPLEMENTED);
        }
        let channel = match self.select_incoming(msg.ies.channel) {
            Ok(b) => b,
            Err(value) => return reject(self, value),
        };
        let id = self.new_id();
        // Glare: on the user side the network's choice wins and our own call, which the
        // network has not confirmed yet, waits for the network to give it another channel.
        if let ChannelState::InUse(other) = self.channels[usize::from(channel) - 1] {
            if let Some(j) = self.index(other) {
                self.calls[j].channel = None;
            }
        }
        self.channels[usize::from(channel) - 1] = ChannelState::InUse(id);
        self.calls.push(Call {
            id,
            cref: msg.call_ref.value,
            outgoing: false,
            state: CallState::InPresent,
            channel: Some(channel),
            exclusive: true,
            channel_settled: false,
            called_kind: msg.ies.called.as_ref().map(|c| c.kind).unwrap_or_default(),
            timer: None,
            last_timer: None,
            expiries: 0,
            cause: self.cause(cause::NORMAL_CLEARING),
            done: false,
            setup: None,
        });
        self.stats.calls_in += 1;
        self.events.push_back(PriEvent::Incoming {
            call: id,
            channel,
            calling: msg.ies.calling,
            called: msg.ies.called.unwrap_or_default(),
            sending_complete: msg.ies.sending_complete,
            bearer,
            display: msg.ies.display,
        });
    }

    /// Picks the B-channel for an incoming SETUP, or the cause to reject it with.
    fn select_incoming(&self, ident: Option<ChannelIdent>) -> Result<u8, u8> {
        let network = self.config.role == Role::Network;
        let (wanted, exclusive) = match ident {
            Some(ChannelIdent { sel: ChannelSel::Timeslot(t), exclusive }) => match bchan_of(t) {
                Some(b) if b <= self.config.channels => (Some(b), exclusive),
                _ => return Err(cause::IDENTIFIED_CHANNEL_DOES_NOT_EXIST),
            },
            _ => (None, false),
        };
        if let Some(b) = wanted {
            match self.channels[usize::from(b) - 1] {
                ChannelState::Idle => return Ok(b),
                // The network side wins glare against our unconfirmed outgoing call.
                ChannelState::InUse(other)
                    if !network
                        && self.calls.iter().any(|c| c.id == other && c.outgoing && !c.channel_settled) =>
                {
                    return Ok(b);
                }
                _ => {}
            }
            if exclusive {
                return Err(cause::REQUESTED_CHANNEL_UNAVAILABLE);
            }
        }
        self.hunt().ok_or(cause::NO_CIRCUIT_AVAILABLE)
    }

    fn global_message(&mut self, msg: Message) {
        match msg.kind {
            MessageType::Restart => {
                let scope = match (msg.ies.restart, msg.ies.channel) {
                    (
                        Some(RestartClass::Indicated),
                        Some(ChannelIdent { sel: ChannelSel::Timeslot(t), .. }),
                    ) => match bchan_of(t).filter(|&b| b <= self.config.channels) {
                        Some(b) => RestartScope::Channel(b),
                        None => {
                            let mut m = Message::new(MessageType::Status, CallRef { value: 0, flag: true });
                            m.ies.cause = Some(self.cause(cause::IDENTIFIED_CHANNEL_DOES_NOT_EXIST));
                            m.ies.call_state = Some(0);
                            self.send(&m);
                            return;
                        }
                    },
                    (Some(RestartClass::SingleInterface | RestartClass::AllInterfaces), _) => {
                        RestartScope::Span
                    }
                    _ => {
                        let mut m = Message::new(MessageType::Status, CallRef { value: 0, flag: true });
                        m.ies.cause = Some(self.cause(cause::MANDATORY_IE_MISSING));
                        m.ies.call_state = Some(0);
                        self.send(&m);
                        return;
                    }
                };
                self.clear_scope(scope, cause::TEMPORARY_FAILURE);
                let mut ack =
                    Message::new(MessageType::RestartAck, CallRef { value: 0, flag: !msg.call_ref.flag });
                ack.ies.channel = msg.ies.channel;
                ack.ies.restart = msg.ies.restart;
                self.send(&ack);
                self.events.push_back(PriEvent::PeerRestart { scope });
            }
            MessageType::RestartAck => {
                if let Some(r) = self.restart.take() {
                    self.restart_finished(r.scope);
                    self.events.push_back(PriEvent::RestartDone { scope: r.scope });
                }
            }
            MessageType::Status => self.stats.status_received += 1,
            MessageType::Other(_) => self.stats.unknown_messages += 1,
            _ => {}
        }
    }

    fn restart_finished(&mut self, scope: RestartScope) {
        for b in self.scope_channels(scope) {
            if self.channels[usize::from(b) - 1] == ChannelState::Restarting {
                self.channels[usize::from(b) - 1] = ChannelState::Idle;
            }
        }
    }

    fn restart_timer(&mut self) {
        let Some(r) = self.restart.as_mut() else {
            return;
        };
        if r.sent >= self.config.q931.n316 {
            let scope = r.scope;
            self.restart = None;
            self.restart_finished(scope);
            self.events.push_back(PriEvent::RestartFailed { scope });
        } else {
            r.sent += 1;
            r.deadline = self.now + self.config.q931.t316;
            let scope = r.scope;
            self.send_restart(scope);
        }
    }

    fn send_restart(&mut self, scope: RestartScope) {
        let mut m = Message::new(MessageType::Restart, CallRef::GLOBAL);
        match scope {
            RestartScope::Channel(b) => {
                m.ies.channel = Some(ChannelIdent { exclusive: true, sel: ChannelSel::Timeslot(ts(b)) });
                m.ies.restart = Some(RestartClass::Indicated);
            }
            RestartScope::Span => m.ies.restart = Some(RestartClass::AllInterfaces),
        }
        self.send(&m);
    }

    fn scope_channels(&self, scope: RestartScope) -> Vec<u8> {
        match scope {
            RestartScope::Channel(b) => vec![b],
            RestartScope::Span => (1..=self.config.channels).collect(),
        }
    }

    /// Clears, without signalling, every call on the channels of `scope`.
    fn clear_scope(&mut self, scope: RestartScope, value: u8) {
        let chans = self.scope_channels(scope);
        let ids: Vec<CallId> = self
            .calls
            .iter()
            .filter(|c| scope == RestartScope::Span || c.channel.is_some_and(|b| chans.contains(&b)))
            .map(|c| c.id)
            .collect();
        for id in ids {
            if let Some(i) = self.index(id) {
                self.clear_locally(i, value);
            }
        }
    }

    // ---- Internals: one call ----

    fn call_message(&mut self, i: usize, msg: Message) {
        use CallState::*;
        let state = self.calls[i].state;
        let outgoing = self.calls[i].outgoing;
        match msg.kind {
            MessageType::SetupAck if outgoing && state == OutInitiated => {
                if self.take_channel(i, &msg) {
                    self.calls[i].state = OutOverlapSending;
                    self.set_timer(i, CallTimer::T304);
                    self.events.push_back(PriEvent::SetupAck { call: self.calls[i].id });
                }
            }
            MessageType::CallProceeding if outgoing && matches!(state, OutInitiated | OutOverlapSending) => {
                if self.take_channel(i, &msg) {
                    self.calls[i].state = OutProceeding;
                    self.set_timer(i, CallTimer::T310);
                    self.events.push_back(PriEvent::Proceeding { call: self.calls[i].id });
                }
            }
            MessageType::Alerting
                if outgoing && matches!(state, OutInitiated | OutOverlapSending | OutProceeding) =>
            {
                if self.take_channel(i, &msg) {
                    self.calls[i].state = OutDelivered;
                    self.calls[i].timer = None;
                    let inband = msg.ies.progress.is_some_and(|p| p.description == 8);
                    self.events.push_back(PriEvent::Alerting { call: self.calls[i].id, inband });
                }
            }
            MessageType::Connect
                if outgoing
                    && matches!(state, OutInitiated | OutOverlapSending | OutProceeding | OutDelivered) =>
            {
                if self.take_channel(i, &msg) {
                    self.calls[i].state = Active;
                    self.calls[i].timer = None;
                    let ack = self.message(i, MessageType::ConnectAck);
                    self.send(&ack);
                    self.events.push_back(PriEvent::Answered { call: self.calls[i].id });
                }
            }
            MessageType::Progress if !state.is_clearing() && state != Active => {
                if outgoing && state == OutProceeding {
                    self.calls[i].timer = None;
                }
                let description = msg.ies.progress.map(|p| p.description).unwrap_or(0);
                self.events.push_back(PriEvent::Progress { call: self.calls[i].id, description });
            }
            MessageType::ConnectAck if state == ConnectRequest => {
                self.calls[i].state = Active;
                self.calls[i].timer = None;
                self.events.push_back(PriEvent::Connected { call: self.calls[i].id });
            }
            // The user may acknowledge the network's CONNECT; nothing to do.
            MessageType::ConnectAck if state == Active => {}
            MessageType::Information => {
                if matches!(state, InPresent | InOverlapReceiving) {
                    let digits = msg.ies.called.map(|c| c.digits).or(msg.ies.keypad).unwrap_or_default();
                    let sending_complete = msg.ies.sending_complete;
                    if state == InOverlapReceiving {
                        if sending_complete {
                            self.calls[i].timer = None;
                        } else {
                            self.set_timer(i, CallTimer::T302);
                        }
                    }
                    self.events.push_back(PriEvent::MoreDigits {
                        call: self.calls[i].id,
                        digits,
                        sending_complete,
                    });
                }
            }
            MessageType::Disconnect => match state {
                DisconnectRequest => self.send_release(i, None),
                ReleaseRequest => {}
                _ => {
                    let c = msg
                        .ies
                        .cause
                        .unwrap_or(Cause { location: location::USER, value: cause::NORMAL_UNSPECIFIED });
                    self.notify_hangup(i, c);
                    self.calls[i].state = DisconnectIndication;
                    self.send_release(i, None);
                }
            },
            MessageType::Release => {
                if state != ReleaseRequest {
                    let rc = self.message(i, MessageType::ReleaseComplete);
                    self.send(&rc);
                }
                let c = msg
                    .ies
                    .cause
                    .unwrap_or(Cause { location: location::USER, value: cause::NORMAL_CLEARING });
                self.notify_hangup(i, c);
                self.free(i);
            }
            MessageType::ReleaseComplete => {
                let c = msg
                    .ies
                    .cause
                    .unwrap_or(Cause { location: location::USER, value: cause::NORMAL_CLEARING });
                self.notify_hangup(i, c);
                self.free(i);
            }
            MessageType::StatusEnquiry => self.send_status(i, cause::RESPONSE_TO_STATUS_ENQUIRY),
            MessageType::Status => {
                self.stats.status_received += 1;
                if msg.ies.call_state == Some(0) {
                    // The peer has no such call: it forgot it (restart) or never had it.
                    let c = msg
                        .ies
                        .cause
                        .unwrap_or(Cause { location: location::USER, value: cause::WRONG_CALL_STATE });
                    self.notify_hangup(i, c);
                    self.free(i);
                }
            }
            // The peer's T303 sent its SETUP again before our answer arrived: the answer is
            // on its way, so the copy is ignored.
            MessageType::Setup if !outgoing => {}
            MessageType::Notify | MessageType::Facility => {}
            MessageType::Other(_) => {
                self.stats.unknown_messages += 1;
                self.send_status(i, cause::MESSAGE_TYPE_NONEXISTENT);
            }
            _ => self.send_status(i, cause::WRONG_CALL_STATE),
        }
    }

    /// Takes the channel a response to our SETUP names. Returns false if the call had to be
    /// cleared because the channel is unacceptable.
    fn take_channel(&mut self, i: usize, msg: &Message) -> bool {
        let call = &self.calls[i];
        let named = match msg.ies.channel {
            Some(ChannelIdent { sel: ChannelSel::Timeslot(t), .. }) => Some(bchan_of(t)),
            _ => None,
        };
        let wanted = match named {
            Some(Some(b)) if b <= self.config.channels => Some(b),
            Some(_) => return self.reject_channel(i, cause::IDENTIFIED_CHANNEL_DOES_NOT_EXIST),
            None if call.channel.is_none() && !call.channel_settled => {
                // Glare took our channel and the network named none.
                return self.reject_channel(i, cause::CHANNEL_UNACCEPTABLE);
            }
            None => None,
        };
        self.calls[i].channel_settled = true;
        let Some(b) = wanted else {
            return true;
        };
        if Some(b) == self.calls[i].channel {
            return true;
        }
        let id = self.calls[i].id;
        if self.calls[i].exclusive && self.calls[i].channel.is_some() {
            return self.reject_channel(i, cause::CHANNEL_UNACCEPTABLE);
        }
        if self.channels[usize::from(b) - 1] != ChannelState::Idle {
            return self.reject_channel(i, cause::REQUESTED_CHANNEL_UNAVAILABLE);
        }
        if let Some(old) = self.calls[i].channel {
            self.channels[usize::from(old) - 1] = ChannelState::Idle;
        }
        self.channels[usize::from(b) - 1] = ChannelState::InUse(id);
        self.calls[i].channel = Some(b);
        self.events.push_back(PriEvent::ChannelChanged { call: id, channel: b });
        true
    }

    fn reject_channel(&mut self, i: usize, value: u8) -> bool {
        let c = self.cause(value);
        self.notify_hangup(i, c);
        self.send_disconnect(i, c);
        false
    }

    fn call_timer(&mut self, i: usize, t: CallTimer) {
        let timeout = self.cause(cause::RECOVERY_ON_TIMER_EXPIRY);
        match t {
            CallTimer::T303 => {
                self.calls[i].expiries += 1;
                if self.calls[i].expiries < 2 {
                    if let Some(setup) = self.calls[i].setup.clone() {
                        self.send(&setup);
                    }
                    self.set_timer(i, CallTimer::T303);
                } else {
                    let mut m = self.message(i, MessageType::ReleaseComplete);
                    m.ies.cause = Some(timeout);
                    self.send(&m);
                    self.notify_hangup(i, Cause { value: cause::NO_USER_RESPONDING, ..timeout });
                    self.free(i);
                }
            }
            CallTimer::T302 => self.events.push_back(PriEvent::DialTimeout { call: self.calls[i].id }),
            CallTimer::T304 | CallTimer::T310 | CallTimer::T313 => {
                self.notify_hangup(i, timeout);
                self.send_disconnect(i, timeout);
            }
            CallTimer::T305 => {
                let c = self.calls[i].cause;
                self.send_release(i, Some(c));
            }
            CallTimer::T308 => {
                self.calls[i].expiries += 1;
                if self.calls[i].expiries < 2 {
                    let mut m = self.message(i, MessageType::Release);
                    m.ies.cause = Some(self.calls[i].cause);
                    self.send(&m);
                    self.set_timer(i, CallTimer::T308);
                } else {
                    self.notify_hangup(i, timeout);
                    self.free(i);
                }
            }
        }
    }

    fn send_disconnect(&mut self, i: usize, c: Cause) {
        self.calls[i].cause = c;
        let mut m = self.message(i, MessageType::Disconnect);
        m.ies.cause = Some(c);
        self.send(&m);
        self.calls[i].state = CallState::DisconnectRequest;
        self.set_timer(i, CallTimer::T305);
    }

    fn send_release(&mut self, i: usize, c: Option<Cause>) {
        let mut m = self.message(i, MessageType::Release);
        m.ies.cause = c;
        self.send(&m);
        self.calls[i].state = CallState::ReleaseRequest;
        self.set_timer(i, CallTimer::T308);
    }

    fn send_status(&mut self, i: usize, value: u8) {
        let mut m = self.message(i, MessageType::Status);
        m.ies.cause = Some(self.cause(value));
        m.ies.call_state = Some(self.calls[i].state.q931_number(self.config.role));
        self.send(&m);
    }

    /// Sends a response to an incoming SETUP, naming the channel in the first one.
    fn respond(&mut self, i: usize, kind: MessageType, progress: Option<ProgressInd>) {
        let mut m = self.message(i, kind);
        if !self.calls[i].channel_settled {
            if let Some(b) = self.calls[i].channel {
                m.ies.channel = Some(ChannelIdent { exclusive: true, sel: ChannelSel::Timeslot(ts(b)) });
            }
            self.calls[i].channel_settled = true;
        }
        m.ies.progress = progress;
        self.send(&m);
    }

    fn incoming_in(&self, call: CallId, states: &[CallState], what: &'static str) -> Result<usize, PriError> {
        let i = self.index(call).ok_or(PriError::NoSuchCall(call))?;
        let state = self.calls[i].state;
        if self.calls[i].outgoing || !states.contains(&state) {
            return Err(PriError::WrongState { call, state, what });
        }
        Ok(i)
    }

    fn notify_hangup(&mut self, i: usize, c: Cause) {
        if !self.calls[i].done {
            self.calls[i].done = true;
            self.events.push_back(PriEvent::Hangup { call: self.calls[i].id, cause: c });
        }
    }

    /// Ends a call without signalling (link loss, restart).
    fn clear_locally(&mut self, i: usize, value: u8) {
        let c = self.cause(value);
        self.notify_hangup(i, c);
        self.free(i);
    }

    /// Frees the call reference and the B-channel.
    fn free(&mut self, i: usize) {
        let call = self.calls.remove(i);
        if let Some(b) = call.channel {
            if self.channels[usize::from(b) - 1] == ChannelState::InUse(call.id) {
                self.channels[usize::from(b) - 1] = ChannelState::Idle;
            }
        }
        self.events.push_back(PriEvent::Released { call: call.id });
    }

    fn set_timer(&mut self, i: usize, t: CallTimer) {
        let q = &self.config.q931;
        let d = match t {
            CallTimer::T302 => q.t302,
            CallTimer::T303 => q.t303,
            CallTimer::T304 => q.t304,
            CallTimer::T305 => q.t305,
            CallTimer::T308 => q.t308,
            CallTimer::T310 => q.t310,
            CallTimer::T313 => q.t313,
        };
        if self.calls[i].last_timer != Some(t) {
            self.calls[i].expiries = 0;
            self.calls[i].last_timer = Some(t);
        }
        self.calls[i].timer = Some((t, self.now + d));
    }

    fn message(&self, i: usize, kind: MessageType) -> Message {
        let c = &self.calls[i];
        Message::new(kind, CallRef { value: c.cref, flag: !c.outgoing })
    }

    fn cause(&self, value: u8) -> Cause {
        Cause { location: self.our_location(), value }
    }

    fn progress_ind(&self, description: u8) -> ProgressInd {
        ProgressInd { location: self.our_location(), description }
    }

    fn our_location(&self) -> u8 {
        match self.config.role {
            Role::User => location::USER,
            Role::Network => location::PRIVATE_NETWORK_LOCAL_USER,
        }
    }

    fn index(&self, id: CallId) -> Option<usize> {
        self.calls.iter().position(|c| c.id == id)
    }

    fn new_id(&mut self) -> CallId {
        let id = CallId(self.next_id);
        self.next_id = self.next_id.wrapping_add(1).max(1);
        id
    }

    fn allocate_cref(&mut self) -> Option<u16> {
        for _ in 0..0x7FFF {
            let c = self.next_cref;
            self.next_cref = if c >= 0x7FFF { 1 } else { c + 1 };
            if !self.calls.iter().any(|x| x.outgoing && x.cref == c) {
                return Some(c);
            }
        }
        None
    }

    fn hunt(&self) -> Option<u8> {
        let idle = |b: &u8| self.channels[usize::from(*b) - 1] == ChannelState::Idle;
        match self.config.hunt {
            Hunt::Ascending => (1..=self.config.channels).find(idle),
            Hunt::Descending => (1..=self.config.channels).rev().find(idle),
        }
    }
}

/// The E1 timeslot for a B-channel the span has already validated.
fn ts(bchan: u8) -> u8 {
    timeslot_of(bchan).unwrap_or(0)
}
