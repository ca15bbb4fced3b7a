//! Supervisors on a call: listening silently, whispering to the agent, or joining as a third
//! party. The supervisor lifts their handset first; the engine then mixes, for every party,
//! exactly the audio they may hear (`EngineCmd::Listen`).

use std::time::Instant;

use switchboard_driver_api::ChannelId;

use super::{Action, CallEvent, CallManager, CallState, SeatState};
use crate::dsp::tone::ProgressTone;
use crate::media::{EngineCmd, MAX_SOURCES};

/// How a supervisor joins a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MonitorMode {
    /// Hears both sides; nobody hears them.
    Listen,
    /// Hears both sides; only the agent hears them.
    Whisper,
    /// A three-party conference: everyone hears everyone.
    Barge,
}

/// Why a supervisor cannot join a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MonitorError {
    #[error("the target seat has no call in conversation")]
    NoCall,
    #[error("lift your handset first (the supervisor's phone must be off-hook and free)")]
    HandsetDown,
    #[error("the call already has as many supervisors as it can take")]
    Full,
}

impl CallManager {
    /// Joins `supervisor` (an off-hook seat) to the call `target` is talking on, or changes
    /// how a supervisor already on that call takes part.
    pub fn monitor(
        &mut self,
        supervisor: ChannelId,
        target: ChannelId,
        mode: MonitorMode,
    ) -> Result<(), MonitorError> {
        let Some(SeatState::Talking(call)) = self.seats.get(usize::from(target.0)).copied() else {
            return Err(MonitorError::NoCall);
        };
        let Some(i) = self.call_index(call) else { return Err(MonitorError::NoCall) };
        let sup = usize::from(supervisor.0);
        match self.seats.get(sup).copied() {
            Some(SeatState::Monitoring(c)) if c == call => {
                if let Some(m) = self.calls[i].monitors.iter_mut().find(|(s, _)| *s == supervisor) {
                    m.1 = mode;
                }
            }
            Some(SeatState::OffHookIdle) => {
                // The agent's channel hears the trunk plus every whispering or barging
                // supervisor: keep room for the trunk.
                if self.calls[i].monitors.len() + 1 >= MAX_SOURCES {
                    return Err(MonitorError::Full);
                }
                self.push(Action::Media(EngineCmd::StopPlay { channel: supervisor }));
                self.seats[sup] = SeatState::Monitoring(call);
                self.calls[i].monitors.push((supervisor, mode));
            }
            _ => return Err(MonitorError::HandsetDown),
        }
        self.relisten(i);
        Ok(())
    }

    /// Sets what every party of call `i` hears, from its seat, its supervisors and hold.
    pub(super) fn relisten(&mut self, i: usize) {
        let call = &self.calls[i];
        let CallState::Talking { seat } = call.state else { return };
        let trunk = call.trunk;
        let mut to_trunk: heapless::Vec<ChannelId, MAX_SOURCES> = heapless::Vec::new();
        let mut to_agent: heapless::Vec<ChannelId, MAX_SOURCES> = heapless::Vec::new();
        let mut to_consulted: heapless::Vec<ChannelId, MAX_SOURCES> = heapless::Vec::new();
        let consult = call.consult.filter(|c| c.talking);
        if !call.held {
            let _ = to_trunk.push(seat);
            let _ = to_agent.push(trunk);
        }
        if let Some(c) = consult {
            // In consultation the agent and the consulted agent talk; in a conference the
            // caller hears and is heard by both.
            let _ = to_agent.push(c.seat);
            let _ = to_consulted.push(seat);
            if c.conference {
                let _ = to_trunk.push(c.seat);
                let _ = to_consulted.push(trunk);
            }
        }
        for &(sup, mode) in &call.monitors {
            if matches!(mode, MonitorMode::Whisper | MonitorMode::Barge) {
                let _ = to_agent.push(sup);
            }
            if mode == MonitorMode::Barge && !call.held {
                let _ = to_trunk.push(sup);
            }
        }
        let mut actions = vec![
            Action::Media(EngineCmd::Listen { channel: trunk, sources: to_trunk }),
            Action::Media(EngineCmd::Listen { channel: seat, sources: to_agent }),
        ];
        if let Some(c) = consult {
            actions.push(Action::Media(EngineCmd::Listen { channel: c.seat, sources: to_consulted }));
        }
        for &(sup, _) in &call.monitors {
            let mut hears: heapless::Vec<ChannelId, MAX_SOURCES> = heapless::Vec::new();
            let _ = hears.push(trunk);
            let _ = hears.push(seat);
            actions.push(Action::Media(EngineCmd::Listen { channel: sup, sources: hears }));
        }
        for a in actions {
            self.push(a);
        }
    }

    /// A supervisor put the handset down: they leave the call.
    pub(super) fn supervisor_left(&mut self, now: Instant, supervisor: ChannelId) {
        let index = usize::from(supervisor.0);
        let Some(SeatState::Monitoring(call)) = self.seats.get(index).copied() else { return };
        self.seats[index] = SeatState::Idle;
        self.push(Action::Media(EngineCmd::Unbridge { channel: supervisor }));
        if let Some(i) = self.call_index(call) {
            self.calls[i].monitors.retain(|(s, _)| *s != supervisor);
            self.relisten(i);
        }
        self.push(Action::Event(CallEvent::MonitorEnded { seat: supervisor }));
        self.offer_waiting(now);
    }

    /// The call ended: its supervisors hear busy tone until they put the handset down.
    pub(super) fn drop_supervisors(&mut self, monitors: &[(ChannelId, MonitorMode)]) {
        for &(sup, _) in monitors {
            self.seats[usize::from(sup.0)] = SeatState::Released;
            self.push(Action::Media(EngineCmd::Unbridge { channel: sup }));
            self.push(Action::Media(EngineCmd::PlayTone { channel: sup, tone: ProgressTone::Busy }));
            self.push(Action::Event(CallEvent::MonitorEnded { seat: sup }));
        }
    }
}

impl CallManager {
    /// A supervisor takes the call over from the agent on `target`: the supervisor (an
    /// off-hook seat, or one already monitoring the call) talks with the caller, the agent
    /// leaves with busy tone.
    pub fn intercept(&mut self, supervisor: ChannelId, target: ChannelId) -> Result<(), MonitorError> {
        let Some(SeatState::Talking(call)) = self.seats.get(usize::from(target.0)).copied() else {
            return Err(MonitorError::NoCall);
        };
        let Some(i) = self.call_index(call) else { return Err(MonitorError::NoCall) };
        if self.calls[i].consult.is_some() {
            return Err(MonitorError::NoCall);
        }
        let sup = usize::from(supervisor.0);
        match self.seats.get(sup).copied() {
            Some(SeatState::OffHookIdle) => {
                self.push(Action::Media(EngineCmd::StopPlay { channel: supervisor }))
            }
            Some(SeatState::Monitoring(c)) if c == call => {}
            _ => return Err(MonitorError::HandsetDown),
        }
        self.calls[i].monitors.retain(|(s, _)| *s != supervisor);
        self.calls[i].state = CallState::Talking { seat: supervisor };
        self.seats[sup] = SeatState::Talking(call);
        self.push(Action::Media(EngineCmd::Unbridge { channel: target }));
        self.seats[usize::from(target.0)] = SeatState::Released;
        self.push(Action::Media(EngineCmd::PlayTone { channel: target, tone: ProgressTone::Busy }));
        self.push(Action::Event(CallEvent::TransferredAway { call, seat: target }));
        self.relisten(i);
        Ok(())
    }
}
