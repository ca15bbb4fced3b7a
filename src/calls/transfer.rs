//! Blind transfer: the agent hands an answered caller to another agent or to a queue. The
//! caller hears hold music until a seat answers; the transferring agent's part ends at once.

use std::time::Instant;

use switchboard_driver_api::ChannelId;

use super::{Action, CallEvent, CallManager, CallState, Disposition, SeatState};
use crate::dsp::tone::ProgressTone;
use crate::media::{EngineCmd, HOLD_MUSIC};

/// Where a transferred call goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransferTarget {
    /// A seat (an agent's): it rings first; if nobody answers, the call goes back to its
    /// route.
    Seat(ChannelId),
    /// A route (a queue), by index.
    Route(usize),
}

/// Why a transfer cannot be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TransferError {
    #[error("the seat has no call in conversation")]
    NoCall,
    #[error("outgoing calls cannot be transferred yet")]
    Outgoing,
    #[error("the target seat is not free")]
    TargetBusy,
    #[error("no such queue")]
    NoSuchRoute,
    #[error("no free trunk line, or the number is not valid")]
    NoLine,
}

impl CallManager {
    /// Transfers the caller talking with `seat` to `target`.
    pub fn transfer(
        &mut self,
        now: Instant,
        seat: ChannelId,
        target: TransferTarget,
    ) -> Result<(), TransferError> {
        self.note_time(now);
        let index = usize::from(seat.0);
        let Some(SeatState::Talking(call)) = self.seats.get(index).copied() else {
            return Err(TransferError::NoCall);
        };
        let Some(i) = self.call_index(call) else { return Err(TransferError::NoCall) };
        if self.calls[i].route == usize::MAX {
            return Err(TransferError::Outgoing);
        }
        match target {
            TransferTarget::Seat(t) => {
                let free = self.seats.get(usize::from(t.0)) == Some(&SeatState::Idle)
                    && self.available.get(usize::from(t.0)) == Some(&true);
                if !free || t == seat {
                    return Err(TransferError::TargetBusy);
                }
            }
            TransferTarget::Route(r) if r >= self.settings.routes.len() => {
                return Err(TransferError::NoSuchRoute)
            }
            TransferTarget::Route(_) => {}
        }
        let trunk = self.calls[i].trunk;
        // The agent leaves: their handset hears busy tone until they put it down.
        let monitors = std::mem::take(&mut self.calls[i].monitors);
        self.drop_supervisors(&monitors);
        self.push(Action::Media(EngineCmd::Unbridge { channel: trunk }));
        self.seats[index] = SeatState::Released;
        self.push(Action::Media(EngineCmd::PlayTone { channel: seat, tone: ProgressTone::Busy }));
        self.push(Action::Event(CallEvent::TransferredAway { call, seat }));
        // The caller waits with music, as an answered call offered again.
        if !self.calls[i].held {
            self.push(Action::Media(EngineCmd::PlayPrompt {
                channel: trunk,
                prompt: HOLD_MUSIC,
                repeat: true,
            }));
        }
        let c = &mut self.calls[i];
        c.held = false;
        c.transferred = true;
        c.trunk_up = true;
        c.route_since = now;
        c.state = CallState::Offered { ringing: Vec::new(), tried: vec![seat], seat_deadline: None };
        match target {
            TransferTarget::Seat(t) => {
                let deadline = now + self.settings.seat_ring_timeout;
                if let CallState::Offered { ringing, tried, seat_deadline } = &mut self.calls[i].state {
                    ringing.push(t);
                    tried.push(t);
                    *seat_deadline = Some(deadline);
                }
                self.seats[usize::from(t.0)] = SeatState::Ringing(call);
                let caller = Some(self.calls[i].caller.clone());
                self.ring_seat(t, caller);
                self.push(Action::Event(CallEvent::SeatRinging { call, seat: t }));
            }
            TransferTarget::Route(r) => {
                self.calls[i].route = r;
                self.ring_seats(now, i);
            }
        }
        Ok(())
    }

    /// Whether a call was transferred (its Ring carries TTYPE 3).
    pub fn is_transferred(&self, call: super::CallId) -> bool {
        self.call_index(call).is_some_and(|i| self.calls[i].transferred)
    }

    /// An answered caller waiting after a transfer hung up.
    pub(super) fn transferred_caller_left(&mut self, now: Instant, i: usize, cause: &'static str) {
        self.stop_ringing(i, None);
        let call = self.calls.remove(i);
        self.push(Action::Media(EngineCmd::StopPlay { channel: call.trunk }));
        self.push(Action::StopRecording { call: call.id, channel: call.trunk });
        self.end(now, call.id, Disposition::Answered, cause);
        self.offer_waiting(now);
    }
}
