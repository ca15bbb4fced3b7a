//! Internal calls between two seats (DoAction 7 with iParam 0: call an agent). The caller's
//! phone rings first unless it is off-hook already, like click-to-call; then the called
//! agent's phone rings while the caller hears ringback; the answer bridges the two seats.
//! No trunk is involved: the call's `trunk` field holds the calling seat, which is where the
//! recording is taken.

use std::time::Instant;

use switchboard_driver_api::{ChannelId, ChannelKind, LineCommand};

use super::outbound::CallOutError;
use super::{Action, Call, CallEvent, CallId, CallManager, CallState, CdrUpdate, Disposition, SeatState};
use crate::dsp::tone::ProgressTone;
use crate::media::EngineCmd;

impl CallManager {
    /// Places an internal call from seat `from` to seat `to`. `caller` and `callee` name the
    /// agents for the call record.
    pub fn call_seat(
        &mut self,
        now: Instant,
        from: ChannelId,
        to: ChannelId,
        caller: &str,
        callee: &str,
    ) -> Result<CallId, CallOutError> {
        self.note_time(now);
        let is_seat = |k: Option<ChannelKind>| matches!(k, Some(ChannelKind::FxsSeat | ChannelKind::Sound));
        if !is_seat(self.kind(from)) || !is_seat(self.kind(to)) || from == to {
            return Err(CallOutError::NoSuchSeat);
        }
        let from_state = self.seats[usize::from(from.0)];
        if !matches!(from_state, SeatState::Idle | SeatState::OffHookIdle | SeatState::Released) {
            return Err(CallOutError::SeatBusy);
        }
        let free = self.seats[usize::from(to.0)] == SeatState::Idle && self.available[usize::from(to.0)];
        if !free {
            return Err(CallOutError::SeatBusy);
        }
        let id = CallId(self.next_id);
        self.next_id += 1;
        self.calls.push(Call {
            id,
            held: false,
            trunk: from,
            route: usize::MAX,
            state: CallState::Internal {
                from,
                to,
                answered: false,
                deadline: Some(now + self.settings.seat_ring_timeout),
            },
            caller: Default::default(),
            cadence: None,
            number: callee.to_string(),
            monitors: Vec::new(),
            offered_at: now,
            route_since: now,
            transferred: false,
            consult: None,
            trunk_up: true,
            recording: false,
            priority: 0,
            forward_of: None,
        });
        self.push(Action::Cdr(CdrUpdate::Start {
            call: id,
            at: now,
            caller: caller.to_string(),
            callee: callee.to_string(),
            trunk: from,
            outbound_from: Some(from),
        }));
        self.push(Action::Event(CallEvent::SeatRinging { call: id, seat: from }));
        if matches!(from_state, SeatState::OffHookIdle | SeatState::Released) {
            self.push(Action::Media(EngineCmd::StopPlay { channel: from }));
            self.caller_up(now, id, from);
        } else {
            self.seats[usize::from(from.0)] = SeatState::Ringing(id);
            self.line_cmd(from, LineCommand::Ring);
        }
        Ok(id)
    }

    /// Whether `call` is an internal call that `seat` is called on (not placing).
    pub fn is_called_seat(&self, call: CallId, seat: ChannelId) -> bool {
        self.call_index(call)
            .is_some_and(|i| matches!(self.calls[i].state, CallState::Internal { to, .. } if to == seat))
    }

    /// The calling agent has the handset: ring the called seat, ringback to the caller.
    fn caller_up(&mut self, now: Instant, call: CallId, from: ChannelId) {
        let Some(i) = self.call_index(call) else { return };
        let CallState::Internal { to, .. } = self.calls[i].state else { return };
        self.seats[usize::from(from.0)] = SeatState::Talking(call);
        self.calls[i].state = CallState::Internal {
            from,
            to,
            answered: false,
            deadline: Some(now + self.settings.seat_ring_timeout),
        };
        self.seats[usize::from(to.0)] = SeatState::Ringing(call);
        self.push(Action::Media(EngineCmd::PlayTone { channel: from, tone: ProgressTone::Ringback }));
        self.line_cmd(to, LineCommand::Ring);
        self.push(Action::Event(CallEvent::SeatRinging { call, seat: to }));
        self.push(Action::Event(CallEvent::Progress { call, seat: from, what: "ringback" }));
    }

    /// A seat ringing for an internal call went off-hook. True if the call was internal.
    pub(super) fn internal_off_hook(&mut self, now: Instant, call: CallId, seat: ChannelId) -> bool {
        let Some(i) = self.call_index(call) else { return false };
        let CallState::Internal { from, to, .. } = self.calls[i].state else { return false };
        if seat == from {
            self.caller_up(now, call, from);
        } else if seat == to {
            self.seats[usize::from(to.0)] = SeatState::Talking(call);
            self.calls[i].state = CallState::Internal { from, to, answered: true, deadline: None };
            self.push(Action::Media(EngineCmd::StopPlay { channel: from }));
            self.push(Action::Media(EngineCmd::Bridge { a: from, b: to }));
            self.push(Action::Cdr(CdrUpdate::Answer { call, at: now, seat: to }));
            if self.settings.record {
                self.calls[i].recording = true;
                self.push(Action::StartRecording { call, channel: from });
            }
            self.push(Action::Event(CallEvent::Progress { call, seat: from, what: "answered" }));
            self.push(Action::Event(CallEvent::Answered { call, seat: from }));
            self.push(Action::Event(CallEvent::Answered { call, seat: to }));
        }
        true
    }

    /// One side of an internal call hung up (or was released): the other hears busy tone
    /// (or stops ringing), and the call ends. True if the call was internal.
    pub(super) fn internal_hangup(
        &mut self,
        now: Instant,
        call: CallId,
        seat: ChannelId,
        cause: &'static str,
    ) -> bool {
        let Some(i) = self.call_index(call) else { return false };
        let CallState::Internal { from, to, answered, .. } = self.calls[i].state else { return false };
        let c = self.calls.remove(i);
        if c.recording {
            self.push(Action::StopRecording { call, channel: from });
        }
        self.push(Action::Media(EngineCmd::Unbridge { channel: from }));
        self.seats[usize::from(seat.0)] = SeatState::Idle;
        self.push(Action::Media(EngineCmd::StopPlay { channel: seat }));
        for other in [from, to].into_iter().filter(|s| *s != seat) {
            match self.seats[usize::from(other.0)] {
                SeatState::Ringing(c) if c == call => {
                    self.seats[usize::from(other.0)] = SeatState::Idle;
                    self.line_cmd(other, LineCommand::StopRing);
                }
                SeatState::Talking(c) if c == call => {
                    self.seats[usize::from(other.0)] = SeatState::Released;
                    self.push(Action::Media(EngineCmd::PlayTone {
                        channel: other,
                        tone: ProgressTone::Busy,
                    }));
                }
                _ => {}
            }
        }
        let disposition = if answered { Disposition::Answered } else { Disposition::NoAnswer };
        self.end(now, call, disposition, cause);
        self.offer_waiting(now);
        true
    }

    /// A seat of an internal call rang out: it stops ringing and the call ends.
    pub(super) fn internal_timeout(&mut self, now: Instant, i: usize) {
        let CallState::Internal { from, to, .. } = self.calls[i].state else { return };
        let call = self.calls[i].id;
        let ringing = if self.seats[usize::from(from.0)] == SeatState::Ringing(call) { from } else { to };
        self.line_cmd(ringing, LineCommand::StopRing);
        if ringing == to {
            self.push(Action::Event(CallEvent::Progress { call, seat: from, what: "no answer" }));
        }
        self.internal_hangup(now, call, ringing, "not answered");
    }
}
