//! The agent hub: sessions, seats and agent states, with no IO and no clock.
//!
//! Connection tasks authenticate agents (that needs the store and argon2) and then hand the
//! session to the hub; from there the hub decides everything: which seat a session holds,
//! the agent's state, which actions are allowed, which events go to which client. It takes
//! call events and requests in with `now`, and its [`HubAction`]s come out through
//! [`Hub::poll_action`]: lines to send, sessions to close, calls to release, seats that
//! became available or not for routing, and audit records.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde_json::json;
use switchboard_driver_api::{CardInfo, ChannelId, ChannelKind};

use super::protocol::{
    Act, AgentState, Control, ErrorCode, Event, EventKind, Request, ServerLine, PROTOCOL_VERSION, STATE_NAMES,
};
use super::tags::{self, Tags};

/// A connection's identity inside the hub.
pub type SessionId = u64;

/// Who may do what.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Agent,
    Supervisor,
    Admin,
}

impl Role {
    pub const fn name(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
        }
    }

    /// Supervisors and admins may use DoControl.
    pub const fn supervises(self) -> bool {
        matches!(self, Role::Supervisor | Role::Admin)
    }
}

/// An authenticated agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub agent: String,
    pub name: String,
    pub role: Role,
}

/// Hub settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HubSettings {
    /// How long an agent stays in wrap-up after a call (zero: none).
    pub wrap_up: Duration,
    /// Whether seats without a logged-in agent take calls.
    pub ring_seats_without_agent: bool,
    /// Whether an agent who lets a call ring out is paused (so calls stop going to an
    /// empty desk).
    pub pause_on_no_answer: bool,
}

impl Default for HubSettings {
    fn default() -> Self {
        HubSettings {
            wrap_up: Duration::from_secs(10),
            ring_seats_without_agent: true,
            pause_on_no_answer: true,
        }
    }
}

/// Where a blind transfer sends the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransferTo {
    Agent(String),
    Queue(String),
    /// An IVR flow; with `back`, the caller comes back to the agent when the flow returns
    /// (ActID 14, "to automatic").
    Flow {
        flow: String,
        back: bool,
    },
    /// A number outside, through a trunk, shown with `caller_id` where the line allows it.
    External {
        number: String,
        caller_id: String,
    },
}

/// What the hub asks its driver to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HubAction {
    /// Send a line (a response or an event, newline included) to a session.
    Send { session: SessionId, line: String },
    /// Disconnect a session, logging why.
    Close { session: SessionId, reason: String },
    /// Release the call on a seat.
    Release { seat: ChannelId },
    /// Send DTMF to the far end of the seat's call.
    SendDtmf { seat: ChannelId, digits: String },
    /// Put the seat's caller on hold, or take them back.
    Hold { seat: ChannelId, hold: bool },
    /// Answer the call ringing on a sound-device seat (ActID 1): a headset has no hook switch,
    /// so the desktop takes it off-hook.
    Answer { seat: ChannelId },
    /// Call another agent's seat (ActID 7, iParam 0); the driver answers request `id`.
    CallAgent { session: SessionId, id: Option<serde_json::Value>, seat: ChannelId, agent: String },
    /// Place an outgoing call from a seat; the driver answers request `id` of `session` with
    /// [`Hub::reply`] once it knows whether the call could be placed.
    CallOut {
        session: SessionId,
        id: Option<serde_json::Value>,
        seat: ChannelId,
        number: String,
        caller_id: String,
    },
    /// A consultation step for the seat's call: 6 consult `agent`, 8 complete, 9 cancel,
    /// 15 conference. The driver answers request `id` and reports with [`Hub::consult_flag`].
    Consult { session: SessionId, id: Option<serde_json::Value>, seat: ChannelId, act: i64, agent: String },
    /// Transfer the seat's caller to an agent or a queue; the driver answers request `id`.
    Transfer { session: SessionId, id: Option<serde_json::Value>, seat: ChannelId, to: TransferTo },
    /// A supervisor joins the call on `target` from their own seat; the driver answers
    /// request `id` with [`Hub::reply`] and reports the outcome with [`Hub::monitoring`].
    Monitor {
        session: SessionId,
        id: Option<serde_json::Value>,
        supervisor: ChannelId,
        target: ChannelId,
        control: Control,
    },
    /// Whether the seat may be offered calls.
    Availability { seat: ChannelId, available: bool },
    /// A record for the audit table.
    Audit {
        actor: String,
        action: String,
        target: Option<String>,
        detail: Option<String>,
        result: &'static str,
    },
}

struct Session {
    identity: Option<Identity>,
    seat: Option<usize>,
    seq: u64,
    /// Supervisors that asked for every seat's events.
    all_seats: bool,
}

#[derive(Clone, Debug)]
struct SeatCall {
    call: u64,
    tags: Tags,
    external: bool,
}

struct Seat {
    channel: ChannelId,
    kind: ChannelKind,
    agent: Option<Identity>,
    session: Option<SessionId>,
    state: AgentState,
    reason: String,
    call: Option<SeatCall>,
    wrap_until: Option<Instant>,
    available: bool,
    /// The agent's consultation about their call, if any.
    consult: ConsultFlag,
}

/// How far the consultation of a seat's agent has got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsultFlag {
    None,
    /// The consulted seat rings.
    Ringing,
    /// The consulted agent answered.
    Talking,
    /// Caller, agent and consulted agent in conference.
    Conference,
    /// This seat is the consulted one: it can talk and hang up, not act on the caller.
    Consulted,
}

/// The hub.
pub struct Hub {
    settings: HubSettings,
    seats: Vec<Seat>,
    sessions: HashMap<SessionId, Session>,
    actions: VecDeque<HubAction>,
    /// Message groups: each queue's member agents.
    groups: HashMap<String, Vec<String>>,
}

type Reply = Result<serde_json::Value, (ErrorCode, String)>;

fn err<T>(code: ErrorCode, message: impl Into<String>) -> Result<T, (ErrorCode, String)> {
    Err((code, message.into()))
}

impl Hub {
    /// A hub for the seats (FXS and sound ports) of a card.
    pub fn new(card: &CardInfo, settings: HubSettings) -> Hub {
        let seats = card
            .channels
            .iter()
            .filter(|c| matches!(c.kind, ChannelKind::FxsSeat | ChannelKind::Sound))
            .map(|c| Seat {
                channel: c.id,
                kind: c.kind,
                agent: None,
                session: None,
                state: AgentState::Offline,
                reason: String::new(),
                call: None,
                wrap_until: None,
                available: settings.ring_seats_without_agent,
                consult: ConsultFlag::None,
            })
            .collect();
        Hub { settings, seats, sessions: HashMap::new(), actions: VecDeque::new(), groups: HashMap::new() }
    }

    /// Whether actions wait to be polled.
    pub fn has_actions(&self) -> bool {
        !self.actions.is_empty()
    }

    pub fn poll_action(&mut self) -> Option<HubAction> {
        self.actions.pop_front()
    }

    /// The earliest wrap-up that ends.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.seats.iter().filter_map(|s| s.wrap_until).min()
    }

    /// Ends the wrap-ups that are due.
    pub fn handle_timeout(&mut self, now: Instant) {
        for i in 0..self.seats.len() {
            if self.seats[i].wrap_until.is_some_and(|t| now >= t) {
                self.seats[i].wrap_until = None;
                self.set_state(i, AgentState::Idle, "");
            }
        }
    }

    /// Seats whose availability differs from the default, for the call model at start.
    pub fn availability(&self) -> impl Iterator<Item = (ChannelId, bool)> + '_ {
        self.seats.iter().map(|s| (s.channel, s.available))
    }

    fn seat_index(&self, channel: ChannelId) -> Option<usize> {
        self.seats.iter().position(|s| s.channel == channel)
    }

    fn seat_of_slice(&self, slice: u16) -> Option<usize> {
        ChannelId::from_port(slice).and_then(|c| self.seat_index(c))
    }

    /// A new connection.
    pub fn connect(&mut self, session: SessionId, _addr: IpAddr) {
        self.sessions.insert(session, Session { identity: None, seat: None, seq: 0, all_seats: false });
    }

    /// A connection closed. The agent stays on the seat, so a reconnecting client gets the
    /// seat and its state back, and a call in progress is not disturbed.
    pub fn disconnect(&mut self, session: SessionId) {
        if let Some(s) = self.sessions.remove(&session) {
            if let Some(i) = s.seat {
                if self.seats[i].session == Some(session) {
                    self.seats[i].session = None;
                }
            }
        }
    }

    /// The session authenticated as `identity`. Another session of the same agent is closed.
    pub fn logged_in(&mut self, session: SessionId, identity: Identity) {
        let others: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(id, s)| {
                **id != session && s.identity.as_ref().is_some_and(|i| i.agent == identity.agent)
            })
            .map(|(id, _)| *id)
            .collect();
        for other in others {
            self.disconnect(other);
            self.actions.push_back(HubAction::Close {
                session: other,
                reason: format!("agent {} logged in on another connection", identity.agent),
            });
        }
        // A seat the agent still holds comes back with the new session.
        let seat =
            self.seats.iter().position(|s| s.agent.as_ref().is_some_and(|a| a.agent == identity.agent));
        if let Some(s) = self.sessions.get_mut(&session) {
            s.identity = Some(identity);
            s.seat = seat;
        }
        if let Some(i) = seat {
            self.seats[i].session = Some(session);
        }
    }

    /// Where each logged-in agent sits, for the ACD.
    pub fn agent_seats(&self) -> HashMap<String, ChannelId> {
        self.seats.iter().filter_map(|s| s.agent.as_ref().map(|a| (a.agent.clone(), s.channel))).collect()
    }

    /// Every seat with its agent (if any), agent state and pause reason, for the
    /// maintenance shell's `show agents`.
    pub fn seat_list(&self) -> Vec<(ChannelId, Option<&Identity>, AgentState, &str)> {
        self.seats.iter().map(|s| (s.channel, s.agent.as_ref(), s.state, s.reason.as_str())).collect()
    }

    /// The agent on a seat.
    pub fn agent_on(&self, seat: ChannelId) -> Option<&str> {
        self.seat_index(seat).and_then(|i| self.seats[i].agent.as_ref()).map(|a| a.agent.as_str())
    }

    /// Whether the session is logged in, for the connection task.
    pub fn identity(&self, session: SessionId) -> Option<&Identity> {
        self.sessions.get(&session).and_then(|s| s.identity.as_ref())
    }

    /// Handles a request other than `Login` and `SetLoginInfo` (the connection task does
    /// those, since they need the store).
    pub fn request(
        &mut self,
        now: Instant,
        session: SessionId,
        id: Option<serde_json::Value>,
        request: Request,
    ) {
        if let Some(checked) = self.driver_request(session, &id, &request) {
            match checked {
                Ok(action) => self.actions.push_back(action),
                Err(e) => self.reply(session, id, Err(e)),
            }
            return;
        }
        let reply = self.dispatch(now, session, request);
        self.reply(session, id, reply);
    }

    /// The requests the driver carries out because they need the calls, lines and queues
    /// (joining or taking a call, consultation, transfer, call out): checked here, then
    /// handed over as an action; the driver answers them with [`Hub::reply`]. None for the
    /// requests the hub answers itself.
    fn driver_request(
        &mut self,
        session: SessionId,
        id: &Option<serde_json::Value>,
        request: &Request,
    ) -> Option<Result<HubAction, (ErrorCode, String)>> {
        let id = id.clone();
        let checked = match request {
            Request::DoControl { target, control, .. } => {
                let kind = Control::from_code(*control).filter(|k| {
                    matches!(k, Control::Monitor | Control::Whisper | Control::BargeIn | Control::Intercept)
                })?;
                self.monitor_check(session, *target, kind).map(|(supervisor, target)| HubAction::Monitor {
                    session,
                    id,
                    supervisor,
                    target,
                    control: kind,
                })
            }
            Request::DoAction { act_id: act @ (6 | 8 | 9 | 15), s_param, .. } => {
                let act_kind = Act::from_code(*act)?;
                self.allowed_seat(session, act_kind).and_then(|i| {
                    if *act == 6 && s_param.trim().is_empty() {
                        return err(ErrorCode::BadRequest, "sParam names the agent to consult");
                    }
                    let (seat, agent) = (self.seats[i].channel, s_param.trim().to_string());
                    Ok(HubAction::Consult { session, id, seat, act: *act, agent })
                })
            }
            Request::DoAction { act_id: 5, i_param, s_param } => self
                .transfer_check(session, *i_param, s_param)
                .map(|(seat, to)| HubAction::Transfer { session, id, seat, to }),
            Request::DoAction { act_id: 14, s_param, .. } => {
                // "To automatic": the caller goes to a flow and comes back to this agent.
                self.allowed_seat(session, Act::ToIvr).and_then(|i| {
                    let flow = s_param.trim();
                    if flow.is_empty() {
                        return err(ErrorCode::BadRequest, "sParam names the IVR flow");
                    }
                    let to = TransferTo::Flow { flow: flow.to_string(), back: true };
                    Ok(HubAction::Transfer { session, id, seat: self.seats[i].channel, to })
                })
            }
            Request::DoAction { act_id: 7, i_param, s_param } => {
                self.call_out(session, *i_param, s_param).map(|(seat, number, caller_id)| match i_param {
                    0 => HubAction::CallAgent { session, id, seat, agent: number },
                    _ => HubAction::CallOut { session, id, seat, number, caller_id },
                })
            }
            _ => return None,
        };
        Some(checked)
    }

    fn dispatch(&mut self, now: Instant, session: SessionId, request: Request) -> Reply {
        if let Request::Hello { .. } = request {
            return Ok(json!({
                "server": format!("switchboard {}", env!("CARGO_PKG_VERSION")),
                "protocol": PROTOCOL_VERSION,
                "stateNames": STATE_NAMES,
            }));
        }
        let Some(identity) = self.sessions.get(&session).and_then(|s| s.identity.clone()) else {
            return err(ErrorCode::NotLoggedIn, "log in first");
        };
        match request {
            Request::Hello { .. } | Request::Login { .. } | Request::SetLoginInfo { .. } => {
                err(ErrorCode::BadRequest, "already logged in")
            }
            Request::OpenApp { slice_no } => self.open_app(session, &identity, slice_no),
            Request::Logout {} => {
                self.logout_agent(&identity.agent, "logged out");
                if let Some(s) = self.sessions.get_mut(&session) {
                    s.identity = None;
                    s.seat = None;
                    s.all_seats = false;
                }
                Ok(json!(null))
            }
            Request::GetActionEnables {} => {
                let seat = self.session_seat(session)?;
                Ok(json!({ "mask": self.enables(seat) }))
            }
            Request::DoAction { act_id, i_param, s_param } => {
                let seat = self.session_seat(session)?;
                self.do_action(now, seat, act_id, i_param, &s_param)
            }
            Request::DoControl { target, control, i_param, s_param: _ } => {
                self.do_control(&identity, target, control, i_param)
            }
            Request::SubscribeAll {} => {
                if !identity.role.supervises() {
                    return err(ErrorCode::Forbidden, "only supervisors may watch every seat");
                }
                if let Some(s) = self.sessions.get_mut(&session) {
                    s.all_seats = true;
                }
                Ok(self.seats_json())
            }
            Request::QuerySeats {} => Ok(self.seats_json()),
            // The driver answers it: the calls are the call model's.
            Request::QueryCalls {} | Request::QueryRecentCalls { .. } => {
                err(ErrorCode::Internal, "this query is answered by the daemon")
            }
        }
    }

    /// Checks a monitor, whisper or barge-in: a supervisor with a seat of their own, on a
    /// target seat. Every attempt is audited.
    fn monitor_check(
        &mut self,
        session: SessionId,
        target: u16,
        kind: Control,
    ) -> Result<(ChannelId, ChannelId), (ErrorCode, String)> {
        let Some(identity) = self.sessions.get(&session).and_then(|s| s.identity.clone()) else {
            return err(ErrorCode::NotLoggedIn, "log in first");
        };
        let audit = |hub: &mut Hub, result: &'static str, detail: Option<String>| {
            hub.actions.push_back(HubAction::Audit {
                actor: identity.agent.clone(),
                action: kind.name().to_string(),
                target: Some(format!("seat {target}")),
                detail,
                result,
            });
        };
        if !identity.role.supervises() {
            audit(self, "denied", Some(format!("role {}", identity.role.name())));
            return err(ErrorCode::Forbidden, format!("{} needs the supervisor role", kind.name()));
        }
        let Some(t) = self.seat_of_slice(target) else {
            audit(self, "failed", Some("no such seat".into()));
            return err(ErrorCode::NoSuchSeat, format!("sliceNo {target} is not a seat on this system"));
        };
        let Some(own) = self.sessions.get(&session).and_then(|s| s.seat) else {
            audit(self, "failed", Some("supervisor has no seat".into()));
            return err(ErrorCode::NoSeat, "open your own seat first (OpenApp): you listen on its phone");
        };
        if own == t {
            audit(self, "failed", Some("a seat cannot monitor itself".into()));
            return err(ErrorCode::BadRequest, "a seat cannot monitor itself");
        }
        // The driver audits the outcome once the call model has acted.
        Ok((self.seats[own].channel, self.seats[t].channel))
    }

    /// Sends an event to every session watching all seats (supervisors' panels).
    pub fn to_watchers(&mut self, kind: EventKind, i_param: i64, s_param: String) {
        let targets: Vec<SessionId> =
            self.sessions.iter().filter(|(_, s)| s.all_seats).map(|(id, _)| *id).collect();
        for session in targets {
            self.emit_to(session, kind, 0, i_param, s_param.clone());
        }
    }

    /// Whether a seat is offered calls now.
    pub fn is_available(&self, seat: ChannelId) -> bool {
        self.seat_index(seat).is_some_and(|i| self.seats[i].available)
    }

    /// A supervisor took over the call of `target`: the call is now theirs.
    pub fn intercepted(&mut self, supervisor: ChannelId, target: ChannelId) {
        let (Some(s), Some(t)) = (self.seat_index(supervisor), self.seat_index(target)) else { return };
        let Some(call) = self.seats[t].call.clone() else { return };
        self.seats[s].call = Some(call.clone());
        self.set_state(s, AgentState::Talking, "");
        let s_param = call.tags.encode();
        self.emit(s, EventKind::Talk, i64::from(call.external), s_param);
    }

    /// A supervisor's seat joined (or left) a call.
    pub fn monitoring(&mut self, seat: ChannelId, on: bool) {
        if let Some(i) = self.seat_index(seat) {
            self.set_state(i, if on { AgentState::Monitoring } else { AgentState::Idle }, "");
        }
    }

    /// Checks a DoAction 5 (blind transfer): iParam 0 to an agent (sParam the agent id), 1 to
    /// a queue (sParam its name).
    fn transfer_check(
        &mut self,
        session: SessionId,
        i_param: i64,
        s_param: &str,
    ) -> Result<(ChannelId, TransferTo), (ErrorCode, String)> {
        let i = self.allowed_seat(session, Act::BlindTransfer)?;
        let target = s_param.trim();
        if target.is_empty() {
            return err(ErrorCode::BadRequest, "sParam names the agent or the queue to transfer to");
        }
        let channel = self.seats[i].channel;
        match i_param {
            0 => Ok((channel, TransferTo::Agent(target.to_string()))),
            1 => Ok((channel, TransferTo::Queue(target.to_string()))),
            2 => Ok((channel, TransferTo::Flow { flow: target.to_string(), back: false })),
            3 => {
                let (number, caller_id) = target.split_once('|').unwrap_or((target, ""));
                let number = number.trim();
                let valid = !number.is_empty()
                    && number.len() <= 30
                    && number.chars().all(|c| c.is_ascii_digit() || c == '*' || c == '#');
                if !valid {
                    return err(ErrorCode::BadRequest, format!("{number:?} is not a number of 1-30 of 0-9 * #"));
                }
                let to = TransferTo::External { number: number.to_string(), caller_id: caller_id.trim().to_string() };
                Ok((channel, to))
            }
            _ => err(
                ErrorCode::BadRequest,
                format!("iParam {i_param}: 0 to an agent, 1 to a queue, 2 to an IVR flow, 3 to an external number"),
            ),
        }
    }

    /// Where the seat's agent's consultation stands; the agent's state follows (on hold while
    /// consulting, talking in conference or back with the caller).
    pub fn consult_flag(&mut self, seat: ChannelId, flag: ConsultFlag) {
        let Some(i) = self.seat_index(seat) else { return };
        self.seats[i].consult = flag;
        let state = match flag {
            ConsultFlag::Ringing | ConsultFlag::Talking => AgentState::Held,
            ConsultFlag::Conference | ConsultFlag::None | ConsultFlag::Consulted => AgentState::Talking,
        };
        if self.seats[i].call.is_some() {
            self.set_state(i, state, "");
        }
    }

    /// The consulted seat left: it hangs up; its consulting agent stays with the caller.
    pub fn consult_ended(&mut self, seat: ChannelId, call: u64) {
        let Some(i) = self.seat_index(seat) else { return };
        if self.seats[i].call.as_ref().is_some_and(|c| c.call == call) {
            self.seats[i].call = None;
            self.seats[i].consult = ConsultFlag::None;
            self.emit(i, EventKind::Hangup, 0, "CAUSE:consultation ended|".into());
            self.set_state(i, AgentState::Idle, "");
        }
        for j in 0..self.seats.len() {
            if matches!(
                self.seats[j].consult,
                ConsultFlag::Ringing | ConsultFlag::Talking | ConsultFlag::Conference
            ) && self.seats[j].call.as_ref().is_some_and(|c| c.call == call)
            {
                let held = self.seats[j].consult != ConsultFlag::Conference;
                self.seats[j].consult = ConsultFlag::None;
                // The caller is still on hold after a consultation, not after a conference.
                self.set_state(j, if held { AgentState::Held } else { AgentState::Talking }, "");
            }
        }
    }

    /// The seat's agent transferred their caller away.
    pub fn transferred_away(&mut self, now: Instant, seat: ChannelId, call: u64) {
        let Some(i) = self.seat_index(seat) else { return };
        if !self.seats[i].call.as_ref().is_some_and(|c| c.call == call) {
            return;
        }
        self.seats[i].call = None;
        self.seats[i].consult = ConsultFlag::None;
        // The consulted agent, if any, now has the caller: full control of the call.
        for j in 0..self.seats.len() {
            if self.seats[j].consult == ConsultFlag::Consulted
                && self.seats[j].call.as_ref().is_some_and(|c| c.call == call)
            {
                self.seats[j].consult = ConsultFlag::None;
            }
        }
        self.emit(i, EventKind::Hangup, 0, "CAUSE:transferred|".into());
        if self.seats[i].agent.is_some() && !self.settings.wrap_up.is_zero() {
            self.seats[i].wrap_until = Some(now + self.settings.wrap_up);
            self.set_state(i, AgentState::WrapUp, "");
        } else {
            self.set_state(i, AgentState::Idle, "");
        }
    }

    /// Sends the response to a request the driver carried out.
    pub fn reply(&mut self, session: SessionId, id: Option<serde_json::Value>, reply: Reply) {
        let line = match reply {
            Ok(result) => ServerLine::ok(id, result),
            Err((code, message)) => ServerLine::error(id, code, message),
        };
        self.actions.push_back(HubAction::Send { session, line: line.to_line() });
    }

    /// Checks a DoAction 7: iParam 3 calls an external number, sParam `number` or
    /// `number|caller-id`.
    fn call_out(
        &mut self,
        session: SessionId,
        i_param: i64,
        s_param: &str,
    ) -> Result<(ChannelId, String, String), (ErrorCode, String)> {
        let i = self.allowed_seat(session, Act::CallOut)?;
        match i_param {
            3 => {}
            0 => {
                // An agent number: the daemon finds the agent's seat.
                let agent = s_param.trim();
                if agent.is_empty() {
                    return err(ErrorCode::BadRequest, "sParam is the agent id to call");
                }
                return Ok((self.seats[i].channel, agent.to_string(), String::new()));
            }
            _ => {
                return err(
                    ErrorCode::BadRequest,
                    format!("iParam {i_param}: 0 calls an agent number, 3 an external number"),
                )
            }
        }
        let (number, caller_id) = match s_param.split_once('|') {
            Some((n, c)) => (n, c),
            None => (s_param, ""),
        };
        if number.is_empty()
            || number.len() > 30
            || !number.chars().all(|c| c.is_ascii_digit() || c == '*' || c == '#')
        {
            return err(
                ErrorCode::BadRequest,
                format!("{number:?} is not a number to dial (0-9 * #, at most 30)"),
            );
        }
        let caller_id = if caller_id.is_empty() {
            self.seats[i].agent.as_ref().map(|a| a.agent.clone()).unwrap_or_default()
        } else {
            caller_id.to_string()
        };
        Ok((self.seats[i].channel, number.to_string(), caller_id))
    }

    /// The seat of a logged-in session whose state allows `act`.
    fn allowed_seat(&self, session: SessionId, act: Act) -> Result<usize, (ErrorCode, String)> {
        if self.sessions.get(&session).and_then(|s| s.identity.as_ref()).is_none() {
            return err(ErrorCode::NotLoggedIn, "log in first");
        }
        let i = self.session_seat(session)?;
        if self.enables(i) & act.bit() == 0 {
            return err(
                ErrorCode::NotAllowed,
                format!(
                    "action {} ({act:?}) is not allowed in state {}",
                    act as i64,
                    self.seats[i].state.name()
                ),
            );
        }
        Ok(i)
    }

    fn session_seat(&self, session: SessionId) -> Result<usize, (ErrorCode, String)> {
        match self.sessions.get(&session).and_then(|s| s.seat) {
            Some(i) => Ok(i),
            None => err(ErrorCode::NoSeat, "no seat: call OpenApp with your sliceNo first"),
        }
    }

    fn open_app(&mut self, session: SessionId, identity: &Identity, slice: u16) -> Reply {
        let Some(i) = self.seat_of_slice(slice) else {
            return err(ErrorCode::NoSuchSeat, format!("sliceNo {slice} is not a seat on this system"));
        };
        if let Some(other) = &self.seats[i].agent {
            if other.agent != identity.agent {
                return err(ErrorCode::SeatBusy, format!("seat {slice} is taken by agent {}", other.agent));
            }
        }
        // An agent holds one seat: leaving another one logs it out there.
        if let Some(old) =
            self.seats.iter().position(|s| s.agent.as_ref().is_some_and(|a| a.agent == identity.agent))
        {
            if old != i {
                if self.seats[old].call.is_some() {
                    return err(ErrorCode::NotAllowed, "finish the call on your current seat first");
                }
                self.unbind(old);
            }
        }
        let seat = &mut self.seats[i];
        let fresh = seat.agent.is_none();
        seat.agent = Some(identity.clone());
        seat.session = Some(session);
        if let Some(s) = self.sessions.get_mut(&session) {
            s.seat = Some(i);
        }
        if fresh {
            let state = if self.seats[i].call.is_some() { self.seats[i].state } else { AgentState::Idle };
            self.set_state(i, state, "");
        }
        let kind = match self.seats[i].kind {
            ChannelKind::Sound => 2,
            _ => 1,
        };
        let seat = &self.seats[i];
        Ok(json!({
            "sliceNo": slice,
            "kind": kind,
            "state": seat.state.code(),
            "stateName": seat.state.name(),
            "mask": self.enables(i),
        }))
    }

    fn unbind(&mut self, i: usize) {
        self.seats[i].wrap_until = None;
        self.set_state(i, AgentState::Offline, "");
        self.seats[i].agent = None;
        if let Some(session) = self.seats[i].session.take() {
            if let Some(s) = self.sessions.get_mut(&session) {
                s.seat = None;
            }
        }
        self.update_availability(i);
    }

    fn logout_agent(&mut self, agent: &str, _why: &str) {
        if let Some(i) = self.seats.iter().position(|s| s.agent.as_ref().is_some_and(|a| a.agent == agent)) {
            self.unbind(i);
        }
    }

    /// The actions allowed on a seat in its state: bit `1 << ActID`.
    fn enables(&self, i: usize) -> u32 {
        let seat = &self.seats[i];
        match seat.consult {
            ConsultFlag::Ringing => {
                return [Act::Hangup, Act::CancelConsult, Act::Message].iter().fold(0, |m, a| m | a.bit())
            }
            ConsultFlag::Talking => {
                return [
                    Act::Hangup,
                    Act::CompleteTransfer,
                    Act::CancelConsult,
                    Act::Conference,
                    Act::Message,
                ]
                .iter()
                .fold(0, |m, a| m | a.bit())
            }
            ConsultFlag::Conference | ConsultFlag::Consulted => {
                return [Act::Hangup, Act::Message].iter().fold(0, |m, a| m | a.bit())
            }
            ConsultFlag::None => {}
        }
        let acts: &[Act] = match seat.state {
            AgentState::Offline => &[],
            AgentState::Monitoring | AgentState::Dialing | AgentState::Ringing => &[Act::Message],
            AgentState::Idle => &[Act::CallOut, Act::Pause, Act::SetState, Act::Message],
            AgentState::Talking => &[
                Act::Hangup,
                Act::Hold,
                Act::ToIvr,
                Act::BlindTransfer,
                Act::ConsultTransfer,
                Act::SendDtmf,
                Act::Message,
            ],
            AgentState::Held => {
                &[Act::Hangup, Act::Retrieve, Act::BlindTransfer, Act::ConsultTransfer, Act::Message]
            }
            AgentState::WrapUp => &[Act::CallOut, Act::EndWrapUp, Act::Pause, Act::SetState, Act::Message],
            AgentState::Paused => &[Act::Unpause, Act::SetState, Act::Message],
        };
        let mask = acts.iter().fold(0, |m, a| m | a.bit());
        // A headset on the appliance (kind 2) has no hook switch: the desktop answers for it,
        // both a caller ringing it and its own click-to-call ringing it first. An analog phone
        // answers by lifting its handset, which no desktop can do for it.
        if seat.kind == ChannelKind::Sound && matches!(seat.state, AgentState::Ringing | AgentState::Dialing)
        {
            mask | Act::Answer.bit()
        } else {
            mask
        }
    }

    fn do_action(&mut self, now: Instant, i: usize, act_id: i64, i_param: i64, s_param: &str) -> Reply {
        let Some(act) = Act::from_code(act_id) else {
            return err(ErrorCode::BadRequest, format!("unknown actId {act_id}: see the action table"));
        };
        if self.enables(i) & act.bit() == 0 {
            return err(
                ErrorCode::NotAllowed,
                format!("action {act_id} ({act:?}) is not allowed in state {}", self.seats[i].state.name()),
            );
        }
        let channel = self.seats[i].channel;
        match act {
            Act::Hangup => {
                self.actions.push_back(HubAction::Release { seat: channel });
                Ok(json!(null))
            }
            Act::SendDtmf => {
                if s_param.is_empty()
                    || s_param.len() > 32
                    || !s_param.chars().all(crate::dsp::dtmf::is_dtmf_digit)
                {
                    return err(
                        ErrorCode::BadRequest,
                        format!("sParam {s_param:?} is not 1-32 DTMF digits (0-9 * # A-D)"),
                    );
                }
                self.actions.push_back(HubAction::SendDtmf { seat: channel, digits: s_param.to_string() });
                Ok(json!(null))
            }
            Act::Answer => {
                self.actions.push_back(HubAction::Answer { seat: channel });
                Ok(json!(null))
            }
            Act::Hold | Act::Retrieve => {
                self.actions.push_back(HubAction::Hold { seat: channel, hold: act == Act::Hold });
                Ok(json!(null))
            }
            Act::Message => self.message(i, i_param, s_param),
            Act::Pause => {
                self.seats[i].wrap_until = None;
                self.set_state(i, AgentState::Paused, s_param);
                Ok(json!(null))
            }
            Act::Unpause | Act::EndWrapUp => {
                self.seats[i].wrap_until = None;
                self.set_state(i, AgentState::Idle, "");
                Ok(json!(null))
            }
            Act::SetState => {
                let state = match i_param {
                    1 => AgentState::Idle,
                    7 => AgentState::Paused,
                    _ => {
                        return err(
                            ErrorCode::BadRequest,
                            format!("iParam {i_param}: an agent may set 1 (idle) or 7 (paused)"),
                        )
                    }
                };
                self.seats[i].wrap_until = None;
                self.set_state(i, state, s_param);
                Ok(json!(null))
            }
            _ => {
                let _ = now;
                err(ErrorCode::NotSupported, format!("action {act_id} ({act:?}) is not supported yet"))
            }
        }
    }

    /// ActID 16: iParam 0 to one agent (sParam `AGENT|TEXT`), 2 to everyone (sParam `TEXT`).
    fn message(&mut self, from_seat: usize, i_param: i64, s_param: &str) -> Reply {
        let Some(from) = self.seats[from_seat].agent.as_ref().map(|a| a.agent.clone()) else {
            return err(ErrorCode::NotLoggedIn, "log in first");
        };
        // Who gets it: one agent, the members of a group (a queue), or everyone else.
        let (to, text): (Option<Vec<String>>, &str) = match i_param {
            0 => match s_param.split_once('|') {
                Some((to, text)) => (Some(vec![to.to_string()]), text),
                None => {
                    return err(
                        ErrorCode::BadRequest,
                        "sParam must be `AGENT|TEXT` for a message to an agent",
                    )
                }
            },
            2 => (None, s_param),
            1 => match s_param.split_once('|') {
                Some((group, text)) => match self.groups.get(group) {
                    Some(members) => (Some(members.iter().filter(|m| **m != from).cloned().collect()), text),
                    None => {
                        return err(ErrorCode::NotAllowed, format!("no group (queue) is named {group:?}"))
                    }
                },
                None => {
                    return err(ErrorCode::BadRequest, "sParam must be `GROUP|TEXT` for a message to a group")
                }
            },
            _ => {
                return err(
                    ErrorCode::BadRequest,
                    format!("iParam {i_param}: 0 to an agent, 1 to a group, 2 to everyone"),
                )
            }
        };
        let single = i_param == 0;
        if text.is_empty() || text.len() > 1024 {
            return err(ErrorCode::BadRequest, "a message has 1 to 1024 bytes of text");
        }
        let targets: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(_, s)| {
                s.identity.as_ref().is_some_and(|i| match &to {
                    Some(to) => to.contains(&i.agent),
                    None => i.agent != from,
                })
            })
            .map(|(id, _)| *id)
            .collect();
        if targets.is_empty() {
            return match to {
                Some(to) if single => {
                    err(ErrorCode::NotAllowed, format!("agent {} is not logged in", to.join("")))
                }
                _ => Ok(json!({ "delivered": 0 })),
            };
        }
        let mut body = String::new();
        tags::push_tag(&mut body, "FROM", &from);
        tags::push_tag(&mut body, "TEXT", text);
        let slice = self.seats[from_seat].channel.port();
        for &session in &targets {
            self.emit_to(session, EventKind::Message, slice, i_param, body.clone());
        }
        Ok(json!({ "delivered": targets.len() }))
    }

    fn emit_to(&mut self, session: SessionId, kind: EventKind, slice: u16, i_param: i64, s_param: String) {
        if let Some(s) = self.sessions.get_mut(&session) {
            s.seq += 1;
            let line =
                ServerLine::Event(Event { event: kind, seq: s.seq, slice_no: slice, i_param, s_param })
                    .to_line();
            self.actions.push_back(HubAction::Send { session, line });
        }
    }

    /// An outgoing call from the seat made progress.
    pub fn progress(&mut self, seat: ChannelId, what: &str) {
        let Some(i) = self.seat_index(seat) else { return };
        if what == "dialing" {
            self.set_state(i, AgentState::Dialing, "");
        }
        let mut s = String::new();
        tags::push_tag(&mut s, "PROGRESS", what);
        self.emit(i, EventKind::Progress, 0, s);
    }

    /// The call manager put the seat's caller on hold (or took them back).
    pub fn held(&mut self, seat: ChannelId, held: bool) {
        if let Some(i) = self.seat_index(seat) {
            self.set_state(i, if held { AgentState::Held } else { AgentState::Talking }, "");
        }
    }

    fn do_control(&mut self, identity: &Identity, target: u16, control: i64, i_param: i64) -> Reply {
        let audit = |hub: &mut Hub, action: String, result: &'static str, detail: Option<String>| {
            hub.actions.push_back(HubAction::Audit {
                actor: identity.agent.clone(),
                action,
                target: Some(format!("seat {target}")),
                detail,
                result,
            });
        };
        let Some(kind) = Control::from_code(control) else {
            audit(self, format!("control {control}"), "failed", Some("unknown controlType".into()));
            return err(ErrorCode::BadRequest, format!("unknown controlType {control}"));
        };
        let action = kind.name().to_string();
        if !identity.role.supervises() {
            audit(self, action, "denied", Some(format!("role {}", identity.role.name())));
            return err(ErrorCode::Forbidden, format!("{} needs the supervisor role", kind.name()));
        }
        let Some(i) = self.seat_of_slice(target) else {
            audit(self, action, "failed", Some("no such seat".into()));
            return err(ErrorCode::NoSuchSeat, format!("sliceNo {target} is not a seat on this system"));
        };
        let result = match kind {
            Control::ForceRelease => {
                if self.seats[i].call.is_none() {
                    err(ErrorCode::NotAllowed, format!("seat {target} has no call"))
                } else {
                    self.actions.push_back(HubAction::Release { seat: self.seats[i].channel });
                    Ok(json!(null))
                }
            }
            Control::ForceLogout => {
                if let Some(agent) = self.seats[i].agent.clone() {
                    let session = self.seats[i].session;
                    self.unbind(i);
                    if let Some(s) = session.and_then(|s| self.sessions.get_mut(&s)) {
                        s.identity = None;
                    }
                    let _ = agent;
                    Ok(json!(null))
                } else {
                    err(ErrorCode::NotAllowed, format!("no agent is logged in on seat {target}"))
                }
            }
            Control::ForceState => {
                let state = match i_param {
                    1 => AgentState::Idle,
                    7 => AgentState::Paused,
                    _ => {
                        return err(
                            ErrorCode::BadRequest,
                            format!("iParam {i_param}: force 1 (idle) or 7 (paused)"),
                        )
                    }
                };
                if self.seats[i].agent.is_none() {
                    err(ErrorCode::NotAllowed, format!("no agent is logged in on seat {target}"))
                } else if self.seats[i].call.is_some() {
                    err(ErrorCode::NotAllowed, format!("seat {target} is on a call"))
                } else {
                    self.seats[i].wrap_until = None;
                    self.set_state(i, state, &format!("forced by {}", identity.agent));
                    Ok(json!(null))
                }
            }
            // Answered by the driver (see `request`); never reached.
            Control::Monitor | Control::Whisper | Control::BargeIn | Control::Intercept => {
                err(ErrorCode::Internal, format!("{} is answered by the daemon", kind.name()))
            }
        };
        let detail = result.as_ref().err().map(|(_, m)| m.clone());
        audit(self, action, if result.is_ok() { "ok" } else { "failed" }, detail);
        result
    }

    fn seats_json(&self) -> serde_json::Value {
        let seats: Vec<_> = self
            .seats
            .iter()
            .map(|s| {
                json!({
                    "sliceNo": s.channel.port(),
                    "agent": s.agent.as_ref().map(|a| a.agent.clone()),
                    "name": s.agent.as_ref().map(|a| a.name.clone()),
                    "state": s.state.code(),
                    "stateName": s.state.name(),
                    "reason": s.reason,
                    "connected": s.session.is_some(),
                    "tags": s.call.as_ref().map(|c| c.tags.encode()),
                })
            })
            .collect();
        json!({ "seats": seats })
    }

    fn update_availability(&mut self, i: usize) {
        let seat = &self.seats[i];
        let available = match (&seat.agent, seat.state) {
            // The call model knows by itself whether a seat is on a call.
            (None, _) => self.settings.ring_seats_without_agent,
            (Some(_), AgentState::Idle) => true,
            (Some(_), _) => false,
        };
        if available != seat.available {
            self.seats[i].available = available;
            self.actions.push_back(HubAction::Availability { seat: self.seats[i].channel, available });
        }
    }

    fn set_state(&mut self, i: usize, state: AgentState, reason: &str) {
        let seat = &mut self.seats[i];
        let logged_in = seat.agent.is_some();
        // Without an agent there is no agent state to report; only calls are tracked.
        let state = if !logged_in && state != AgentState::Offline && seat.call.is_none() {
            AgentState::Offline
        } else {
            state
        };
        let changed = seat.state != state || seat.reason != reason;
        seat.state = state;
        seat.reason = reason.to_string();
        if changed && logged_in {
            let mut s = String::new();
            tags::push_tag(&mut s, "STATE", state.name());
            if !reason.is_empty() {
                tags::push_tag(&mut s, "REASON", reason);
            }
            if let Some(agent) = &self.seats[i].agent {
                let agent = agent.agent.clone();
                tags::push_tag(&mut s, "AGENT", &agent);
            }
            self.emit(i, EventKind::AgentState, state.code(), s);
        }
        self.update_availability(i);
    }

    fn emit(&mut self, i: usize, kind: EventKind, i_param: i64, s_param: String) {
        let slice = self.seats[i].channel.port();
        let owner = self.seats[i].session;
        let targets: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(id, s)| Some(**id) == owner || s.all_seats)
            .map(|(id, _)| *id)
            .collect();
        for session in targets {
            self.emit_to(session, kind, slice, i_param, s_param.clone());
        }
    }

    /// A seat starts ringing for a call.
    pub fn ringing(&mut self, seat: ChannelId, call: u64, tags: Tags, external: bool) {
        let Some(i) = self.seat_index(seat) else { return };
        let s_param = tags.encode();
        self.seats[i].call = Some(SeatCall { call, tags, external });
        self.seats[i].wrap_until = None;
        self.set_state(i, AgentState::Ringing, "");
        self.emit(i, EventKind::Ring, i64::from(external), s_param);
    }

    /// A seat answered a call; the other seats that rang for it go back to idle.
    pub fn answered(&mut self, seat: ChannelId, call: u64, vocid: Option<&str>) {
        for j in 0..self.seats.len() {
            // Only seats still ringing for it: an agent consulting about this call keeps it.
            if self.seats[j].channel != seat
                && self.seats[j].state == AgentState::Ringing
                && self.seats[j].call.as_ref().is_some_and(|c| c.call == call)
            {
                self.seats[j].call = None;
                self.emit(j, EventKind::Hangup, 0, "CAUSE:answered elsewhere|".into());
                self.set_state(j, AgentState::Idle, "");
            }
        }
        let Some(i) = self.seat_index(seat) else { return };
        let seat_call =
            self.seats[i].call.get_or_insert(SeatCall { call, tags: Tags::new(), external: true });
        if let Some(v) = vocid {
            seat_call.tags.set(tags::VOCID, v);
        }
        let (external, s_param) = (seat_call.external, seat_call.tags.encode());
        self.set_state(i, AgentState::Talking, "");
        self.emit(i, EventKind::Talk, i64::from(external), s_param);
    }

    /// Sets the message groups (a queue's name to its member agents).
    pub fn set_groups(&mut self, groups: HashMap<String, Vec<String>>) {
        self.groups = groups;
    }

    /// The agent sent their caller to a flow that brings them back: they wait, held.
    pub fn caller_in_flow(&mut self, seat: ChannelId) {
        if let Some(i) = self.seat_index(seat) {
            self.set_state(i, AgentState::Held, "IVR");
        }
    }

    /// The caller came back from a flow: Talk again, with the tags the flow set (e.g. the
    /// result of an in-call check).
    pub fn caller_returned(&mut self, seat: ChannelId, call: u64, flow_tags: &[(String, String)]) {
        let Some(i) = self.seat_index(seat) else { return };
        let seat_call =
            self.seats[i].call.get_or_insert(SeatCall { call, tags: Tags::new(), external: true });
        for (name, value) in flow_tags {
            seat_call.tags.set(name, value.clone());
        }
        let (external, s_param) = (seat_call.external, seat_call.tags.encode());
        self.set_state(i, AgentState::Talking, "");
        self.emit(i, EventKind::Talk, i64::from(external), s_param);
    }

    /// A call ended: its seats hang up, and agents who talked go to wrap-up.
    pub fn ended(&mut self, now: Instant, call: u64, cause: &str) {
        for i in 0..self.seats.len() {
            if !self.seats[i].call.as_ref().is_some_and(|c| c.call == call) {
                continue;
            }
            let talked = matches!(self.seats[i].state, AgentState::Talking | AgentState::Held);
            self.seats[i].call = None;
            let mut s = String::new();
            tags::push_tag(&mut s, "CAUSE", cause);
            self.emit(i, EventKind::Hangup, 0, s);
            if talked && self.seats[i].agent.is_some() && !self.settings.wrap_up.is_zero() {
                self.seats[i].wrap_until = Some(now + self.settings.wrap_up);
                self.set_state(i, AgentState::WrapUp, "");
            } else {
                self.set_state(i, AgentState::Idle, "");
            }
        }
    }

    /// A seat stopped ringing because its call moved to another queue.
    pub fn ring_stopped(&mut self, seat: ChannelId, call: u64) {
        let Some(i) = self.seat_index(seat) else { return };
        if self.seats[i].state == AgentState::Ringing
            && self.seats[i].call.as_ref().is_some_and(|c| c.call == call)
        {
            self.seats[i].call = None;
            self.emit(i, EventKind::Hangup, 0, "CAUSE:moved to another queue|".into());
            self.set_state(i, AgentState::Idle, "");
        }
    }

    /// A seat rang out without answering: the call went elsewhere.
    pub fn no_answer(&mut self, seat: ChannelId, call: u64) {
        let Some(i) = self.seat_index(seat) else { return };
        if !self.seats[i].call.as_ref().is_some_and(|c| c.call == call) {
            return;
        }
        self.seats[i].call = None;
        self.emit(i, EventKind::Hangup, 0, "CAUSE:not answered|".into());
        if self.settings.pause_on_no_answer && self.seats[i].agent.is_some() {
            self.set_state(i, AgentState::Paused, "no answer");
        } else {
            self.set_state(i, AgentState::Idle, "");
        }
    }

    /// A digit from the far end of a seat's call.
    pub fn dtmf(&mut self, seat: ChannelId, digit: char) {
        if let Some(i) = self.seat_index(seat) {
            self.emit(i, EventKind::Dtmf, 0, digit.to_string());
        }
    }

    /// The seat a call is on (talking), if any.
    pub fn seat_of_call(&self, call: u64) -> Option<ChannelId> {
        self.seats
            .iter()
            .find(|s| {
                matches!(s.state, AgentState::Talking | AgentState::Held)
                    && s.call.as_ref().is_some_and(|c| c.call == call)
            })
            .map(|s| s.channel)
    }
}

#[cfg(test)]
mod tests;
