//! Consultation: the agent puts the caller on hold and calls another agent; then completes
//! the transfer (the other agent takes the caller), cancels it (back to the caller), or makes
//! it a three-party conference.

use std::time::Instant;

use switchboard_driver_api::{ChannelId, LineCommand};

use super::{Action, CallEvent, CallManager, CallState, SeatState};
use crate::dsp::tone::ProgressTone;
use crate::media::{EngineCmd, HOLD_MUSIC};

/// The second leg of a call under consultation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Consult {
    pub seat: ChannelId,
    /// The consulted seat answered.
    pub talking: bool,
    /// Caller, agent and consulted agent all hear each other.
    pub conference: bool,
}

/// Why a consultation step cannot be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConsultError {
    #[error("the seat has no call in conversation")]
    NoCall,
    #[error("a consultation is already in progress")]
    Busy,
    #[error("the consulted seat is not free")]
    TargetBusy,
    #[error("no consultation in progress")]
    NoConsult,
    #[error("the consulted agent has not answered yet")]
    NotAnswered,
}

impl CallManager {
    fn consult_call(&self, seat: ChannelId) -> Result<usize, ConsultError> {
        let Some(SeatState::Talking(call)) = self.seats.get(usize::from(seat.0)).copied() else {
            return Err(ConsultError::NoCall);
        };
        self.call_index(call).ok_or(ConsultError::NoCall)
    }

    /// The agent on `seat` puts the caller on hold and rings `target`.
    pub fn consult(&mut self, seat: ChannelId, target: ChannelId) -> Result<(), ConsultError> {
        let i = self.consult_call(seat)?;
        if self.calls[i].consult.is_some() {
            return Err(ConsultError::Busy);
        }
        let t = usize::from(target.0);
        let free = self.seats.get(t) == Some(&SeatState::Idle) && self.available.get(t) == Some(&true);
        if !free || target == seat {
            return Err(ConsultError::TargetBusy);
        }
        let (call, trunk) = (self.calls[i].id, self.calls[i].trunk);
        if !self.calls[i].held {
            self.calls[i].held = true;
            self.push(Action::Media(EngineCmd::PlayPrompt {
                channel: trunk,
                prompt: HOLD_MUSIC,
                repeat: true,
            }));
        }
        self.calls[i].consult = Some(Consult { seat: target, talking: false, conference: false });
        self.seats[t] = SeatState::Consulting(call);
        self.line_cmd(target, LineCommand::Ring);
        self.push(Action::Event(CallEvent::SeatRinging { call, seat: target }));
        self.relisten(i);
        Ok(())
    }

    /// The consulted seat went off-hook.
    pub(super) fn consult_answered(&mut self, call: super::CallId, seat: ChannelId) {
        let Some(i) = self.call_index(call) else { return };
        let Some(c) = self.calls[i].consult.as_mut() else { return };
        if c.seat != seat || c.talking {
            return;
        }
        c.talking = true;
        self.push(Action::Event(CallEvent::ConsultAnswered { call, seat }));
        self.relisten(i);
    }

    /// Completes the transfer: the consulted agent takes the caller, the agent leaves.
    pub fn consult_complete(&mut self, seat: ChannelId) -> Result<(), ConsultError> {
        let i = self.consult_call(seat)?;
        let c = self.calls[i].consult.ok_or(ConsultError::NoConsult)?;
        if !c.talking {
            return Err(ConsultError::NotAnswered);
        }
        let (call, trunk) = (self.calls[i].id, self.calls[i].trunk);
        self.calls[i].consult = None;
        self.calls[i].held = false;
        self.calls[i].transferred = true;
        self.calls[i].trunk_up = true;
        self.calls[i].state = CallState::Talking { seat: c.seat };
        self.seats[usize::from(c.seat.0)] = SeatState::Talking(call);
        self.push(Action::Media(EngineCmd::StopPlay { channel: trunk }));
        // The agent leaves: busy tone until the handset goes down.
        self.push(Action::Media(EngineCmd::Unbridge { channel: seat }));
        self.seats[usize::from(seat.0)] = SeatState::Released;
        self.push(Action::Media(EngineCmd::PlayTone { channel: seat, tone: ProgressTone::Busy }));
        self.push(Action::Event(CallEvent::TransferredAway { call, seat }));
        self.relisten(i);
        Ok(())
    }

    /// Cancels the consultation: the consulted seat is released, the agent is back with the
    /// caller.
    pub fn consult_cancel(&mut self, seat: ChannelId) -> Result<(), ConsultError> {
        let i = self.consult_call(seat)?;
        if self.calls[i].consult.is_none() {
            return Err(ConsultError::NoConsult);
        }
        self.end_consult_leg(i);
        let trunk = self.calls[i].trunk;
        self.calls[i].held = false;
        self.push(Action::Media(EngineCmd::StopPlay { channel: trunk }));
        self.relisten(i);
        Ok(())
    }

    /// Joins caller, agent and consulted agent in a conference.
    pub fn conference(&mut self, seat: ChannelId) -> Result<(), ConsultError> {
        let i = self.consult_call(seat)?;
        let Some(c) = self.calls[i].consult.as_mut() else { return Err(ConsultError::NoConsult) };
        if !c.talking {
            return Err(ConsultError::NotAnswered);
        }
        c.conference = true;
        let trunk = self.calls[i].trunk;
        self.calls[i].held = false;
        self.push(Action::Media(EngineCmd::StopPlay { channel: trunk }));
        self.relisten(i);
        Ok(())
    }

    /// Releases the consulted seat of call `i` (ringing: stop; answered: busy tone).
    pub(super) fn end_consult_leg(&mut self, i: usize) {
        let Some(c) = self.calls[i].consult.take() else { return };
        let call = self.calls[i].id;
        self.release_consult_leg(call, c);
    }

    /// Releases a consulted seat whose call is `call`.
    pub(super) fn release_consult_leg(&mut self, call: super::CallId, c: Consult) {
        let index = usize::from(c.seat.0);
        if c.talking {
            self.push(Action::Media(EngineCmd::Unbridge { channel: c.seat }));
            self.seats[index] = SeatState::Released;
            self.push(Action::Media(EngineCmd::PlayTone { channel: c.seat, tone: ProgressTone::Busy }));
        } else {
            self.seats[index] = SeatState::Idle;
            self.line_cmd(c.seat, LineCommand::StopRing);
        }
        self.push(Action::Event(CallEvent::ConsultEnded { call, seat: c.seat }));
    }

    /// The consulted seat put the phone down.
    pub(super) fn consulted_left(&mut self, now: Instant, seat: ChannelId) {
        let index = usize::from(seat.0);
        let Some(SeatState::Consulting(call)) = self.seats.get(index).copied() else { return };
        self.seats[index] = SeatState::Idle;
        if let Some(i) = self.call_index(call) {
            self.calls[i].consult = None;
            self.push(Action::Media(EngineCmd::Unbridge { channel: seat }));
            self.push(Action::Event(CallEvent::ConsultEnded { call, seat }));
            // Back to the caller, who stays on hold unless the three were in conference.
            self.relisten(i);
        }
        self.offer_waiting(now);
    }
}
