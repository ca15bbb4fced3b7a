//! Calls in IVR flows. The call model answers the trunk and hands the caller to a flow; the
//! driver runs the flow's interpreter and tells the call model where the caller goes next:
//! a queue, one agent's seat, or away (hang up). Agents send callers to flows too: blindly,
//! or "to automatic" with the caller coming back to them when the flow returns.

use std::time::Instant;

use switchboard_driver_api::{ChannelId, LineCommand};

use super::transfer::TransferError;
use super::{Action, CallEvent, CallId, CallManager, CallState, Disposition, SeatState};
use crate::dsp::tone::ProgressTone;
use crate::media::{EngineCmd, HOLD_MUSIC};

impl CallManager {
    /// Hands call `i` to a flow, answering the trunk if nobody has yet.
    pub(super) fn enter_flow(&mut self, now: Instant, i: usize, flow: String, back_to: Option<ChannelId>) {
        let c = &mut self.calls[i];
        let trunk = c.trunk;
        let answer = !c.trunk_up;
        c.trunk_up = true;
        c.state = CallState::Flow;
        c.route_since = now;
        c.held = false;
        let call = c.id;
        if answer {
            self.line_cmd(trunk, LineCommand::OffHook);
        }
        self.push(Action::Event(CallEvent::FlowEntered { call, flow, back_to }));
    }

    /// The other seats in a call's conversation beyond its agent: the consulted agent in a
    /// three-party conference, and supervisors who barged in. Empty for a two-party call.
    pub fn conference_seats(&self, call: CallId) -> Vec<ChannelId> {
        let Some(i) = self.call_index(call) else { return Vec::new() };
        let c = &self.calls[i];
        let mut seats: Vec<ChannelId> =
            c.consult.filter(|k| k.conference).map(|k| k.seat).into_iter().collect();
        seats.extend(
            c.monitors
                .iter()
                .filter(|(_, mode)| *mode == super::supervise::MonitorMode::Barge)
                .map(|(s, _)| *s),
        );
        seats
    }

    /// The call a seat is talking on.
    pub fn call_on_seat(&self, seat: ChannelId) -> Option<CallId> {
        match self.seats.get(usize::from(seat.0)) {
            Some(SeatState::Talking(call)) => Some(*call),
            _ => None,
        }
    }

    /// The index of a call that is in a flow.
    fn in_flow(&self, call: CallId) -> Option<usize> {
        self.call_index(call).filter(|&i| self.calls[i].state == CallState::Flow)
    }

    /// Whether `call` is in a flow.
    pub fn is_in_flow(&self, call: CallId) -> bool {
        self.in_flow(call).is_some()
    }

    /// The trunk of a call.
    pub fn trunk_of(&self, call: CallId) -> Option<ChannelId> {
        self.call_index(call).map(|i| self.calls[i].trunk)
    }

    /// The flow sends its caller to a route (a queue) with a priority: the caller hears hold
    /// music until a seat answers. False if the call is not in a flow or there is no such
    /// route.
    pub fn flow_to_route(&mut self, now: Instant, call: CallId, route: usize, priority: i32) -> bool {
        self.note_time(now);
        let Some(i) = self.in_flow(call) else { return false };
        if route >= self.settings.routes.len() {
            return false;
        }
        // A full queue sends the caller on, as it does calls arriving on its trunks.
        let mut route = route;
        if let Some((limit, target)) = self.settings.routes[route].max_waiting {
            let waiting = self
                .calls
                .iter()
                .filter(|c| c.route == route && matches!(c.state, CallState::Offered { .. }))
                .count();
            if waiting >= limit {
                if target < self.settings.routes.len() {
                    let to = self.settings.routes[target].name.clone();
                    self.push(Action::Event(CallEvent::Overflowed { call, to }));
                    route = target;
                } else if let Some(flow) = self.settings.routes[route].flows.overflow.clone() {
                    self.push(Action::Event(CallEvent::Overflowed { call, to: format!("flow {flow}") }));
                    self.calls[i].route = route;
                    self.enter_flow(now, i, flow, None);
                    return true;
                }
            }
        }
        let c = &mut self.calls[i];
        c.route = route;
        c.route_since = now;
        c.priority = priority;
        c.state = CallState::Offered { ringing: Vec::new(), tried: Vec::new(), seat_deadline: None };
        let trunk = c.trunk;
        self.push(Action::Media(EngineCmd::PlayPrompt { channel: trunk, prompt: HOLD_MUSIC, repeat: true }));
        self.ring_seats(now, i);
        true
    }

    /// The flow sends its caller to one seat (smart routing, or back to the agent who sent
    /// them). The seat must be idle and available; if nobody answers in time, the call goes
    /// on to the route it came from.
    pub fn flow_to_seat(&mut self, now: Instant, call: CallId, seat: ChannelId) -> Result<(), TransferError> {
        self.note_time(now);
        let Some(i) = self.in_flow(call) else { return Err(TransferError::NoCall) };
        let free = self.seats.get(usize::from(seat.0)) == Some(&SeatState::Idle)
            && self.available.get(usize::from(seat.0)) == Some(&true);
        if !free {
            return Err(TransferError::TargetBusy);
        }
        let deadline = now + self.settings.seat_ring_timeout;
        let c = &mut self.calls[i];
        c.route_since = now;
        c.state =
            CallState::Offered { ringing: vec![seat], tried: vec![seat], seat_deadline: Some(deadline) };
        let trunk = c.trunk;
        self.seats[usize::from(seat.0)] = SeatState::Ringing(call);
        self.push(Action::Media(EngineCmd::PlayPrompt { channel: trunk, prompt: HOLD_MUSIC, repeat: true }));
        let caller = Some(self.calls[i].caller.clone());
        self.ring_seat(seat, caller);
        self.push(Action::Event(CallEvent::SeatRinging { call, seat }));
        Ok(())
    }

    /// The flow hangs up on its caller.
    pub fn flow_hangup(&mut self, now: Instant, call: CallId) -> bool {
        self.note_time(now);
        let Some(i) = self.in_flow(call) else { return false };
        let call = self.calls.remove(i);
        self.release_waiting_agent(call.id);
        self.push(Action::Media(EngineCmd::StopPlay { channel: call.trunk }));
        if call.recording {
            self.push(Action::StopRecording { call: call.id, channel: call.trunk });
        }
        self.line_cmd(call.trunk, LineCommand::OnHook);
        self.end(now, call.id, Disposition::Answered, "hung up by the flow");
        true
    }

    /// Starts recording a call in a flow (voicemail, a recorded confirmation), unless it is
    /// recorded already. The recording goes on with the call: one call, one VOCID.
    pub fn flow_record(&mut self, call: CallId) -> bool {
        let Some(i) = self.in_flow(call) else { return false };
        if !self.calls[i].recording {
            self.calls[i].recording = true;
            let trunk = self.calls[i].trunk;
            self.push(Action::StartRecording { call, channel: trunk });
        }
        true
    }

    /// The agent on `seat` sends their caller to a flow; with `back`, the caller comes back
    /// to this seat when the flow returns. The agent's part ends as in a blind transfer.
    pub fn transfer_to_flow(
        &mut self,
        now: Instant,
        seat: ChannelId,
        flow: &str,
        back: bool,
    ) -> Result<CallId, TransferError> {
        self.note_time(now);
        let index = usize::from(seat.0);
        let Some(SeatState::Talking(call)) = self.seats.get(index).copied() else {
            return Err(TransferError::NoCall);
        };
        let Some(i) = self.call_index(call) else { return Err(TransferError::NoCall) };
        if self.calls[i].route == usize::MAX {
            return Err(TransferError::Outgoing);
        }
        self.detach_caller(i);
        if back {
            // The agent stays on the line with music until the caller comes back.
            self.seats[index] = SeatState::Waiting(call);
            self.push(Action::Media(EngineCmd::PlayPrompt {
                channel: seat,
                prompt: HOLD_MUSIC,
                repeat: true,
            }));
        } else {
            self.seats[index] = SeatState::Released;
            self.push(Action::Media(EngineCmd::PlayTone { channel: seat, tone: ProgressTone::Busy }));
            self.push(Action::Event(CallEvent::TransferredAway { call, seat }));
            self.calls[i].transferred = true;
        }
        self.enter_flow(now, i, flow.to_string(), back.then_some(seat));
        Ok(call)
    }

    /// The flow returned its caller to the agent who sent them: bridged again at once if the
    /// agent waits on the line, rung if their phone is idle, else queued on the call's route.
    pub fn flow_return(&mut self, now: Instant, call: CallId, seat: ChannelId) -> bool {
        self.note_time(now);
        let Some(i) = self.in_flow(call) else { return false };
        let index = usize::from(seat.0);
        if self.seats.get(index) == Some(&SeatState::Waiting(call)) {
            let trunk = self.calls[i].trunk;
            self.calls[i].state = CallState::Talking { seat };
            self.seats[index] = SeatState::Talking(call);
            self.push(Action::Media(EngineCmd::StopPlay { channel: seat }));
            self.push(Action::Media(EngineCmd::StopPlay { channel: trunk }));
            self.push(Action::Media(EngineCmd::Bridge { a: trunk, b: seat }));
            self.push(Action::Event(CallEvent::Returned { call, seat }));
            return true;
        }
        if self.flow_to_seat(now, call, seat).is_ok() {
            return true;
        }
        let route = self.calls[i].route;
        self.flow_to_route(now, call, route, 0)
    }

    /// Transfers a caller in a flow to an external number through another trunk: seize a
    /// free trunk, dial, and bridge the two lines so the caller hears the progress tones.
    /// On failure a [`CallEvent::ForwardFailed`] gives the caller back to the flow; once
    /// answered, either side hanging up ends both.
    pub fn forward(
        &mut self,
        now: Instant,
        call: CallId,
        number: &str,
        caller_id: &str,
    ) -> Result<CallId, super::outbound::CallOutError> {
        self.note_time(now);
        use super::outbound::CallOutError;
        let Some(i) = self.in_flow(call) else { return Err(CallOutError::NoSuchSeat) };
        if number.is_empty()
            || number.len() > 30
            || !number.chars().all(|c| c.is_ascii_digit() || c == '*' || c == '#')
        {
            return Err(CallOutError::BadNumber);
        }
        if self.calls.iter().any(|c| c.forward_of == Some(call)) {
            return Err(CallOutError::SeatBusy);
        }
        let in_trunk = self.calls[i].trunk;
        let trunk = self.free_trunk(now).ok_or(CallOutError::NoTrunk)?;
        let id = CallId(self.next_id);
        self.next_id += 1;
        self.calls.push(super::Call {
            id,
            held: false,
            trunk,
            route: usize::MAX,
            state: CallState::Outbound {
                seat: in_trunk,
                phase: super::OutPhase::RingingSeat,
                deadline: None,
            },
            caller: Default::default(),
            cadence: None,
            number: number.to_string(),
            monitors: Vec::new(),
            offered_at: now,
            route_since: now,
            transferred: false,
            consult: None,
            trunk_up: false,
            recording: false,
            priority: 0,
            forward_of: Some(call),
        });
        self.push(Action::Cdr(super::CdrUpdate::Start {
            call: id,
            at: now,
            caller: caller_id.to_string(),
            callee: number.to_string(),
            trunk,
            outbound_from: Some(in_trunk),
        }));
        self.push(Action::Media(EngineCmd::StopPlay { channel: in_trunk }));
        self.seize_line(now, id);
        Ok(id)
    }

    /// The agent on `seat` transfers their caller to an external number. The agent's part
    /// ends as in a blind transfer; if the number cannot be reached, the caller goes back to
    /// the route (queue) the call came from.
    pub fn transfer_out(
        &mut self,
        now: Instant,
        seat: ChannelId,
        number: &str,
        caller_id: &str,
    ) -> Result<CallId, TransferError> {
        self.note_time(now);
        let index = usize::from(seat.0);
        let Some(SeatState::Talking(call)) = self.seats.get(index).copied() else {
            return Err(TransferError::NoCall);
        };
        let Some(i) = self.call_index(call) else { return Err(TransferError::NoCall) };
        if self.calls[i].route == usize::MAX {
            return Err(TransferError::Outgoing);
        }
        if self.free_trunk(now).is_none() {
            return Err(TransferError::NoLine);
        }
        self.detach_caller(i);
        self.seats[index] = SeatState::Released;
        self.push(Action::Media(EngineCmd::PlayTone { channel: seat, tone: ProgressTone::Busy }));
        self.push(Action::Event(CallEvent::TransferredAway { call, seat }));
        self.calls[i].transferred = true;
        self.calls[i].state = CallState::Flow;
        self.forward(now, call, number, caller_id).map_err(|_| TransferError::NoLine)?;
        Ok(call)
    }

    /// Ends the outgoing leg of a transfer whose caller left.
    pub(super) fn release_forward_leg(&mut self, now: Instant, caller: CallId) {
        let Some(j) = self.calls.iter().position(|c| c.forward_of == Some(caller)) else { return };
        let leg = self.calls.remove(j);
        self.push(Action::Media(EngineCmd::Unbridge { channel: leg.trunk }));
        self.line_cmd(leg.trunk, LineCommand::OnHook);
        if leg.recording {
            self.push(Action::StopRecording { call: leg.id, channel: leg.trunk });
        }
        let answered = matches!(leg.state, CallState::Talking { .. });
        let disposition = if answered { Disposition::Answered } else { Disposition::NoAnswer };
        self.end(now, leg.id, disposition, "the caller hung up");
    }

    /// Takes call `i`'s caller away from the agent: no hold music, no supervisors, no
    /// consultation, and the trunk no longer bridged to the seat.
    fn detach_caller(&mut self, i: usize) {
        let c = self.calls.remove(i);
        self.stop_hold_music(&c);
        let trunk = c.trunk;
        self.calls.insert(i, c);
        self.calls[i].monitors.clear();
        self.push(Action::Media(EngineCmd::Unbridge { channel: trunk }));
    }

    /// An agent waiting for a caller who will not come back hears busy tone.
    pub(super) fn release_waiting_agent(&mut self, call: CallId) {
        for index in 0..self.seats.len() {
            if self.seats[index] == SeatState::Waiting(call) {
                let seat = ChannelId(index as u16);
                self.seats[index] = SeatState::Released;
                self.push(Action::Media(EngineCmd::PlayTone { channel: seat, tone: ProgressTone::Busy }));
            }
        }
    }

    /// The agent on `seat` hung up first: if the call's route has a flow for that (the
    /// satisfaction survey), the caller goes there. The seat's state is the caller's to set.
    pub(super) fn agent_left_first(&mut self, now: Instant, call: CallId, seat: ChannelId) -> bool {
        let Some(i) = self.call_index(call) else { return false };
        let c = &self.calls[i];
        let inbound = c.route != usize::MAX && matches!(c.state, CallState::Talking { seat: s } if s == seat);
        let Some(flow) = self.settings.routes.get(c.route).and_then(|r| r.flows.after.clone()) else {
            return false;
        };
        if !inbound || c.consult.is_some() {
            return false;
        }
        self.detach_caller(i);
        self.push(Action::Event(CallEvent::TransferredAway { call, seat }));
        self.enter_flow(now, i, flow, None);
        true
    }
}
