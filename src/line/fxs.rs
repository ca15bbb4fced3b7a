//! An FXS seat port: a phone connected to us, where we are the exchange.
//!
//! [`FxsLine`] rings the phone (one command when the card cadences the ring itself, or ring
//! bursts at the cadence times when it cannot), tells when to send caller id to the phone
//! (between the first and second ring), and turns hook events into off-hook, on-hook and
//! flash signals, telling a short on-hook (a flash) from a hang-up on cards that do not.
//! It does no IO and reads no clock.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use switchboard_driver_api::{LineCommand, LineEvent};

use super::CallerIdInfo;

/// Timings and options of a seat port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FxsSettings {
    /// True: the card (DAHDI's kernel cadence, the simulator) cadences the ring, and one
    /// [`LineCommand::Ring`] rings until [`LineCommand::StopRing`]. False: the card rings only
    /// while told to, and the machine sends Ring and StopRing at the cadence times.
    pub card_cadence: bool,
    /// The ring burst.
    pub ring_on: Duration,
    /// The silence between bursts.
    pub ring_off: Duration,
    /// Whether phones get caller id between the first and second ring.
    pub caller_id: bool,
    /// How long after the first ring ends the caller id goes out (Bellcore and YD/T ask for
    /// at least 500 ms).
    pub caller_id_delay: Duration,
    /// For cards that report a hook flash only as on-hook then off-hook: an on-hook shorter
    /// than this is a flash, and a hang-up is reported only when it has lasted this long.
    /// None: the card reports flashes itself (DAHDI's WINKFLASH, the simulator).
    pub flash_window: Option<Duration>,
    /// An on-hook shorter than this is contact bounce, neither a flash nor a hang-up (only
    /// with `flash_window`).
    pub debounce: Duration,
}

impl Default for FxsSettings {
    fn default() -> Self {
        FxsSettings {
            card_cadence: true,
            // The Chinese ring: 1 s on, 4 s off.
            ring_on: Duration::from_secs(1),
            ring_off: Duration::from_secs(4),
            caller_id: false,
            caller_id_delay: Duration::from_millis(600),
            flash_window: None,
            debounce: Duration::from_millis(40),
        }
    }
}

/// An input to a seat port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FxsInput {
    /// A line event from the card.
    Event(LineEvent),
    /// Command: ring the phone, sending it `caller` between the first and second ring.
    Ring { caller: Option<CallerIdInfo> },
    /// Command: stop ringing.
    StopRing,
}

/// What the phone did, for the call model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FxsSignal {
    /// The handset was lifted (answering if the phone was ringing).
    OffHook,
    /// The handset was put down.
    OnHook,
    /// A hook flash.
    Flash,
}

/// What the driver must do or learn, polled with [`FxsLine::poll_output`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FxsOutput {
    /// A command for the card.
    Line(LineCommand),
    /// Send this caller id to the phone now.
    SendCallerId(CallerIdInfo),
    Signal(FxsSignal),
}

#[derive(Clone, Debug)]
struct Ringing {
    /// The cadence starts here; None until the first `handle_timeout` after the Ring command.
    anchor: Option<Instant>,
    /// When the Ring command came.
    asked: Instant,
    /// Whether a burst is on (burst mode only).
    on: bool,
    /// The next burst change (burst mode only).
    next: Option<Instant>,
    caller: Option<CallerIdInfo>,
    caller_at: Option<Instant>,
}

#[derive(Clone, Debug)]
enum State {
    OnHook,
    Ringing(Box<Ringing>),
    OffHook,
    /// On-hook since this time, not yet known to be a hang-up (flash window).
    MaybeFlash(Instant),
}

/// One FXS seat port.
#[derive(Clone, Debug)]
pub struct FxsLine {
    settings: FxsSettings,
    state: State,
    out: VecDeque<FxsOutput>,
}

impl FxsLine {
    pub fn new(settings: FxsSettings) -> FxsLine {
        FxsLine { settings, state: State::OnHook, out: VecDeque::new() }
    }

    /// True when the handset is up (or down for less than the flash window).
    pub fn is_off_hook(&self) -> bool {
        matches!(self.state, State::OffHook | State::MaybeFlash(_))
    }

    /// True while the phone is being rung.
    pub fn is_ringing(&self) -> bool {
        matches!(self.state, State::Ringing(_))
    }

    /// The next output, if any.
    pub fn poll_output(&mut self) -> Option<FxsOutput> {
        self.out.pop_front()
    }

    /// The earliest time at which [`FxsLine::handle_timeout`] has something to do.
    ///
    /// A Ring command's cadence starts at the first `handle_timeout` after it, because the
    /// `now` given with a command may lag the card's clock (commands also come from requests
    /// that carry no time); until then the timeout is the time of the command, due at once.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.state {
            State::Ringing(r) => match r.anchor {
                None => Some(r.asked),
                Some(_) => [r.next, r.caller_at].into_iter().flatten().min(),
            },
            State::MaybeFlash(since) => self.settings.flash_window.map(|w| *since + w),
            State::OnHook | State::OffHook => None,
        }
    }

    /// Feeds one input.
    pub fn handle(&mut self, now: Instant, input: FxsInput) {
        match input {
            FxsInput::Ring { caller } => match self.state {
                // Ringing again restarts the cadence (a new call for the phone).
                State::OnHook | State::Ringing(_) => {
                    let caller = caller.filter(|c| self.settings.caller_id && !c.is_empty());
                    // With nothing to time, the cadence needs no anchor and asks for no timer.
                    let untimed = self.settings.card_cadence && caller.is_none();
                    self.out.push_back(FxsOutput::Line(LineCommand::Ring));
                    self.state = State::Ringing(Box::new(Ringing {
                        anchor: untimed.then_some(now),
                        asked: now,
                        on: true,
                        next: None,
                        caller,
                        caller_at: None,
                    }));
                }
                // A card cannot ring an off-hook phone, but the command goes out so that the
                // card decides, as it did before there was a line machine.
                State::OffHook | State::MaybeFlash(_) => {
                    self.out.push_back(FxsOutput::Line(LineCommand::Ring))
                }
            },
            FxsInput::StopRing => match self.state {
                State::Ringing(_) => {
                    self.out.push_back(FxsOutput::Line(LineCommand::StopRing));
                    self.state = State::OnHook;
                }
                // Not ringing as far as the machine knows: the command still goes out, because
                // stopping a phone that is not ringing is harmless and the card may know better.
                State::OnHook => self.out.push_back(FxsOutput::Line(LineCommand::StopRing)),
                // The handset is up: the card tripped the ring already.
                State::OffHook | State::MaybeFlash(_) => {}
            },
            FxsInput::Event(e) => self.event(now, e),
        }
    }

    fn event(&mut self, now: Instant, event: LineEvent) {
        match (event, &self.state) {
            (LineEvent::OffHook, State::OnHook | State::Ringing(_)) => {
                // The card trips the ring itself when the handset comes up.
                self.state = State::OffHook;
                self.out.push_back(FxsOutput::Signal(FxsSignal::OffHook));
            }
            (LineEvent::OffHook, State::MaybeFlash(since)) => {
                let down = now.saturating_duration_since(*since);
                self.state = State::OffHook;
                if down >= self.settings.debounce {
                    self.out.push_back(FxsOutput::Signal(FxsSignal::Flash));
                }
            }
            (LineEvent::OnHook, State::OffHook) => match self.settings.flash_window {
                Some(_) => self.state = State::MaybeFlash(now),
                None => {
                    self.state = State::OnHook;
                    self.out.push_back(FxsOutput::Signal(FxsSignal::OnHook));
                }
            },
            (LineEvent::Flash, State::OffHook) => self.out.push_back(FxsOutput::Signal(FxsSignal::Flash)),
            // Repeats, and events that make no sense for a phone.
            _ => {}
        }
    }

    /// Handles the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let settings = &self.settings;
        match &mut self.state {
            State::MaybeFlash(since) => {
                if settings.flash_window.is_some_and(|w| now >= *since + w) {
                    self.state = State::OnHook;
                    self.out.push_back(FxsOutput::Signal(FxsSignal::OnHook));
                }
            }
            State::Ringing(r) => {
                if r.anchor.is_none() {
                    r.anchor = Some(now);
                    if !settings.card_cadence {
                        r.next = Some(now + settings.ring_on);
                    } else if r.caller.is_some() {
                        // The card's first burst ends after `ring_on`; caller id follows it.
                        r.caller_at = Some(now + settings.ring_on + settings.caller_id_delay);
                    }
                }
                if r.caller_at.is_some_and(|t| now >= t) {
                    r.caller_at = None;
                    if let Some(caller) = r.caller.take() {
                        self.out.push_back(FxsOutput::SendCallerId(caller));
                    }
                }
                // Catch up burst by burst, so that a late call does not skip the caller id.
                while let Some(next) = r.next.filter(|&t| now >= t) {
                    r.on = !r.on;
                    if r.on {
                        r.next = Some(next + settings.ring_on);
                        self.out.push_back(FxsOutput::Line(LineCommand::Ring));
                    } else {
                        r.next = Some(next + settings.ring_off);
                        self.out.push_back(FxsOutput::Line(LineCommand::StopRing));
                        // After the first burst only: once sent, no caller id is left.
                        if r.caller.is_some() && r.caller_at.is_none() {
                            r.caller_at = Some(next + settings.caller_id_delay);
                        }
                    }
                    if r.caller_at.is_some_and(|t| now >= t) {
                        r.caller_at = None;
                        if let Some(caller) = r.caller.take() {
                            self.out.push_back(FxsOutput::SendCallerId(caller));
                        }
                    }
                }
            }
            State::OnHook | State::OffHook => {}
        }
    }
}
