//! Outgoing calls placed from a seat (click-to-call, DoAction 7): ring the agent's phone,
//! then have the trunk's line machine seize the line, wait for dial tone and dial the number
//! in DTMF; bridge the agent to the line so they hear the progress tones, and take the
//! machine's answer signal (polarity reversal, or assumed after dialling) as the answer.
//! The line machine times the dial tone wait, the dialling and the answer.

use std::time::{Duration, Instant};

use switchboard_driver_api::{ChannelId, ChannelKind, LineCommand};

use super::{
    Action, Call, CallEvent, CallId, CallManager, CallState, CdrUpdate, DialFailure, DigitalCmd, Disposition,
    FxoInput, OutPhase, Port, SeatState,
};
use crate::dsp::tone::ProgressTone;
use crate::media::EngineCmd;

/// How long the agent's phone rings before the outgoing call is given up.
const SEAT_ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// Why an outgoing call could not be placed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CallOutError {
    #[error("the seat is busy")]
    SeatBusy,
    #[error("no such seat")]
    NoSuchSeat,
    #[error("no free trunk line")]
    NoTrunk,
    #[error("the number is empty, too long or has characters other than 0-9 * #")]
    BadNumber,
}

impl CallManager {
    /// Places an outgoing call from `seat` to `number` through a free trunk. The seat's phone
    /// rings first, unless it is already off-hook.
    pub fn call_out(
        &mut self,
        now: Instant,
        seat: ChannelId,
        number: &str,
        caller_id: &str,
    ) -> Result<CallId, CallOutError> {
        self.note_time(now);
        if number.is_empty()
            || number.len() > 30
            || !number.chars().all(|c| c.is_ascii_digit() || c == '*' || c == '#')
        {
            return Err(CallOutError::BadNumber);
        }
        let index = usize::from(seat.0);
        if !matches!(self.kind(seat), Some(ChannelKind::FxsSeat | ChannelKind::Sound)) {
            return Err(CallOutError::NoSuchSeat);
        }
        let state = self.seats[index];
        if !matches!(state, SeatState::Idle | SeatState::OffHookIdle | SeatState::Released) {
            return Err(CallOutError::SeatBusy);
        }
        let trunk = self.free_trunk(now).ok_or(CallOutError::NoTrunk)?;
        let id = CallId(self.next_id);
        self.next_id += 1;
        self.calls.push(Call {
            id,
            held: false,
            trunk,
            route: usize::MAX,
            state: CallState::Outbound {
                seat,
                phase: OutPhase::RingingSeat,
                deadline: Some(now + SEAT_ANSWER_TIMEOUT),
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
            forward_of: None,
        });
        self.push(Action::Cdr(CdrUpdate::Start {
            call: id,
            at: now,
            caller: caller_id.to_string(),
            callee: number.to_string(),
            trunk,
            outbound_from: Some(seat),
        }));
        if matches!(state, SeatState::OffHookIdle | SeatState::Released) {
            // The agent already holds the handset (hearing dial or busy tone): go straight
            // to the line.
            self.push(Action::Media(EngineCmd::StopPlay { channel: seat }));
            self.seats[index] = SeatState::Talking(id);
            // Watchers learn of the call the same way as when the phone rings.
            self.push(Action::Event(CallEvent::SeatRinging { call: id, seat }));
            self.seize(now, id, seat);
        } else {
            self.seats[index] = SeatState::Ringing(id);
            self.line_cmd(seat, LineCommand::Ring);
            self.push(Action::Event(CallEvent::SeatRinging { call: id, seat }));
        }
        Ok(id)
    }

    /// A trunk with no call on it and no incoming call arriving: an analog line first, then a
    /// digital channel whose link is up.
    pub(super) fn free_trunk(&self, now: Instant) -> Option<ChannelId> {
        let free = |digital: bool| {
            (0..self.kinds.len()).map(|i| ChannelId(i as u16)).find(move |&c| {
                let i = usize::from(c.0);
                self.call_on_trunk(c).is_none()
                    && !self.draining
                    && !self.blocked[i]
                    && match &self.ports[i] {
                        Port::Fxo(line) => !digital && line.is_idle(now),
                        Port::Digital { ready } => digital && *ready,
                        _ => false,
                    }
            })
        };
        free(false).or_else(|| free(true))
    }

    /// The outgoing call not yet answered on a trunk, if any.
    pub(super) fn outbound_on(&self, trunk: ChannelId) -> Option<usize> {
        self.call_on_trunk(trunk).filter(|&i| matches!(self.calls[i].state, CallState::Outbound { .. }))
    }

    fn set_phase(&mut self, i: usize, phase: OutPhase, deadline: Option<Instant>) {
        if let CallState::Outbound { seat, .. } = self.calls[i].state {
            self.calls[i].state = CallState::Outbound { seat, phase, deadline };
        }
    }

    /// Seizes the trunk of an outgoing call that has no phone to ring first.
    pub(super) fn seize_line(&mut self, now: Instant, call: CallId) {
        self.seize(now, call, ChannelId(0));
    }

    fn seize(&mut self, now: Instant, call: CallId, _seat: ChannelId) {
        let Some(i) = self.call_index(call) else { return };
        let trunk = self.calls[i].trunk;
        self.set_phase(i, OutPhase::WaitDialTone, None);
        let number = self.calls[i].number.clone();
        if matches!(self.ports.get(usize::from(trunk.0)), Some(Port::Digital { .. })) {
            // The signalling stack sends the number en bloc: the call is dialling at once.
            self.push(Action::Digital { channel: trunk, command: DigitalCmd::Dial { number } });
            self.outbound_dialling(trunk);
            return;
        }
        self.trunk_input(now, trunk, FxoInput::Dial(number));
    }

    pub(super) fn outbound_seat_answered(&mut self, now: Instant, call: CallId, seat: ChannelId) {
        self.seats[usize::from(seat.0)] = SeatState::Talking(call);
        self.seize(now, call, seat);
    }

    /// The number is going out on the trunk.
    pub(super) fn outbound_dialling(&mut self, trunk: ChannelId) {
        let Some(i) = self.outbound_on(trunk) else { return };
        let CallState::Outbound { seat, .. } = self.calls[i].state else { return };
        let id = self.calls[i].id;
        self.set_phase(i, OutPhase::Dialing, None);
        self.push(Action::Event(CallEvent::Progress { call: id, seat, what: "dialing" }));
    }

    pub(super) fn outbound_ringback(&mut self, trunk: ChannelId) {
        let Some(i) = self.outbound_on(trunk) else { return };
        let CallState::Outbound { seat, phase: OutPhase::Progress, .. } = self.calls[i].state else { return };
        let id = self.calls[i].id;
        self.push(Action::Event(CallEvent::Progress { call: id, seat, what: "ringback" }));
    }

    /// The engine finished sending the number: connect the agent to the line.
    pub(super) fn outbound_dialled(&mut self, _now: Instant, trunk: ChannelId) {
        let Some(i) = self.outbound_on(trunk) else { return };
        let CallState::Outbound { seat, phase: OutPhase::Dialing, .. } = self.calls[i].state else { return };
        self.set_phase(i, OutPhase::Progress, None);
        self.push(Action::Media(EngineCmd::Bridge { a: trunk, b: seat }));
    }

    /// The called party answered (the line machine saw the polarity reversal, or assumed it).
    pub(super) fn outbound_answered(&mut self, now: Instant, trunk: ChannelId) {
        let Some(i) = self.outbound_on(trunk) else { return };
        let CallState::Outbound { seat, phase, .. } = self.calls[i].state else { return };
        if !matches!(phase, OutPhase::Progress | OutPhase::Dialing) {
            return;
        }
        let id = self.calls[i].id;
        self.calls[i].state = CallState::Talking { seat };
        if phase == OutPhase::Dialing {
            self.push(Action::Media(EngineCmd::Bridge { a: trunk, b: seat }));
        }
        self.push(Action::Cdr(CdrUpdate::Answer { call: id, at: now, seat }));
        self.calls[i].trunk_up = true;
        if self.settings.record {
            self.calls[i].recording = true;
            self.push(Action::StartRecording { call: id, channel: trunk });
        }
        self.push(Action::Event(CallEvent::Answered { call: id, seat }));
    }

    /// The trunk's line machine gave up the outgoing call (and put the line on-hook).
    pub(super) fn outbound_line_failed(&mut self, now: Instant, trunk: ChannelId, failure: DialFailure) {
        let Some(i) = self.outbound_on(trunk) else { return };
        let CallState::Outbound { seat, .. } = self.calls[i].state else { return };
        let id = self.calls[i].id;
        let (disposition, cause) = match failure {
            DialFailure::NoDialTone => (Disposition::Failed, "no dial tone on the trunk"),
            DialFailure::DialTimeout => (Disposition::NoAnswer, "dialling did not finish"),
            DialFailure::Busy | DialFailure::Congestion => {
                self.push(Action::Event(CallEvent::Progress { call: id, seat, what: "busy" }));
                (Disposition::Busy, "the called number is busy")
            }
            DialFailure::NoAnswer => (Disposition::NoAnswer, "no answer"),
            DialFailure::Refused(cause) => (Disposition::Failed, crate::line::network_cause(cause)),
        };
        let call = self.calls.remove(i);
        self.outbound_failed(now, call, seat, disposition, cause);
    }

    /// The agent's phone rang for the whole timeout without being picked up.
    pub(super) fn outbound_timeout(&mut self, now: Instant, i: usize) {
        let CallState::Outbound { seat, phase, .. } = self.calls[i].state else { return };
        if phase != OutPhase::RingingSeat {
            // Later phases are the line machine's to time.
            self.set_phase(i, phase, None);
            return;
        }
        let call = self.calls.remove(i);
        self.outbound_failed(now, call, seat, Disposition::NoAnswer, "the agent did not pick up");
    }

    /// Ends an outgoing call that was not answered; `call` is already out of the list.
    pub(super) fn outbound_failed(
        &mut self,
        now: Instant,
        call: Call,
        seat: ChannelId,
        disposition: Disposition,
        cause: &'static str,
    ) {
        if let Some(caller) = call.forward_of {
            // A transfer to an external number failed: free the line; the caller's flow
            // (or queue) takes them back.
            if !matches!(call.state, CallState::Outbound { phase: OutPhase::RingingSeat, .. }) {
                self.push(Action::Media(EngineCmd::Unbridge { channel: call.trunk }));
                self.line_cmd(call.trunk, LineCommand::OnHook);
            }
            self.end(now, call.id, disposition, cause);
            self.push(Action::Event(CallEvent::ForwardFailed { call: caller, cause }));
            return;
        }
        let index = usize::from(seat.0);
        let phase = match call.state {
            CallState::Outbound { phase, .. } => phase,
            _ => OutPhase::Progress,
        };
        if phase == OutPhase::RingingSeat {
            self.seats[index] = SeatState::Idle;
            self.line_cmd(seat, LineCommand::StopRing);
        } else {
            self.push(Action::Media(EngineCmd::Unbridge { channel: call.trunk }));
            self.line_cmd(call.trunk, LineCommand::OnHook);
            // The agent holds the handset: busy tone until they put it down.
            self.seats[index] = SeatState::Released;
            let tone =
                if disposition == Disposition::Busy { ProgressTone::Busy } else { ProgressTone::Congestion };
            self.push(Action::Media(EngineCmd::PlayTone { channel: seat, tone }));
        }
        self.end(now, call.id, disposition, cause);
        self.offer_waiting(now);
    }
}
