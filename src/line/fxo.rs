//! An FXO trunk port: the line from the exchange, where we are the phone.
//!
//! [`FxoLine`] turns what the card and the detectors report on one trunk (ring bursts, loop
//! current, polarity, progress tones, digits, decoded FSK caller id) into call-level signals
//! ([`FxoSignal`]), and the call model's commands (answer, seize, dial, flash, release) into
//! line commands with the right timing. It does no IO and reads no clock.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use switchboard_driver_api::{LineCommand, LineEvent};

use super::{CallerIdInfo, CallerIdMode, RingCadence};
use crate::dsp::tone::ProgressTone;

/// Most digits kept from DTMF caller id; longer runs are noise or a broken exchange.
const MAX_CID_DIGITS: usize = 32;

/// Timings and options of a trunk port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FxoSettings {
    /// How the exchange sends caller id.
    pub caller_id: CallerIdMode,
    /// A ringing call is abandoned when no ring burst has started or ended for this long. It
    /// must be longer than the silence of the exchange's cadence.
    pub ring_gap: Duration,
    /// Caller id received before the first ring is used only if the ring starts this soon
    /// after it.
    pub caller_id_valid_for: Duration,
    /// Longest time the FSK demodulator stays open: after the first ring ends (between-rings
    /// mode) or after the polarity reversal (before-ring mode).
    pub fsk_window: Duration,
    /// Length of a hook flash we send.
    pub flash: Duration,
    /// True: send [`LineCommand::Flash`] and let the card time it (DAHDI's `DAHDI_FLASH`).
    /// False: send on-hook, then off-hook after `flash`.
    pub flash_by_card: bool,
    /// How long to wait for dial tone after seizing the line.
    pub dial_tone_wait: Duration,
    /// Dial anyway when no dial tone came within `dial_tone_wait` (lines whose dial tone the
    /// detector does not know), instead of failing.
    pub blind_dial: bool,
    /// How long the engine may take to send the number.
    pub dial_timeout: Duration,
    /// How long a dialled call may go unanswered.
    pub answer_timeout: Duration,
    /// On lines that give no answer signal: take the call as answered this long after the
    /// number was sent. None: wait for a polarity reversal.
    pub assume_answer_after: Option<Duration>,
    /// Whether busy, congestion or dial tone heard on an established call means the far end
    /// hung up. Many Chinese lines give no other disconnect signal.
    pub tone_disconnect: bool,
    /// Whether a polarity reversal on an established call means the far end hung up.
    pub reversal_disconnect: bool,
}

impl Default for FxoSettings {
    fn default() -> Self {
        FxoSettings {
            caller_id: CallerIdMode::Dtmf,
            // The Chinese cadence has 4 s of silence between rings; 6 s leaves a margin.
            ring_gap: Duration::from_secs(6),
            caller_id_valid_for: Duration::from_secs(10),
            // Bellcore and YD/T send the FSK burst within 3.5 s after the first ring ends.
            fsk_window: Duration::from_secs(5),
            // Chinese exchanges take 100-300 ms; 250 ms sits inside most windows.
            flash: Duration::from_millis(250),
            flash_by_card: true,
            dial_tone_wait: Duration::from_secs(5),
            blind_dial: false,
            dial_timeout: Duration::from_secs(15),
            answer_timeout: Duration::from_secs(60),
            assume_answer_after: None,
            tone_disconnect: true,
            reversal_disconnect: true,
        }
    }
}

/// An input to a trunk port: something the card or a detector reported, or a command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FxoInput {
    /// A line event from the card.
    Event(LineEvent),
    /// A call progress tone detected in the line's audio (or its end).
    Tone(ProgressTone),
    /// A DTMF digit detected in the line's audio.
    Digit(char),
    /// FSK caller id received and decoded.
    CallerId(CallerIdInfo),
    /// The engine finished sending the DTMF queued on the line.
    DtmfSent,
    /// Command: answer the ringing call (go off-hook).
    Answer,
    /// Command: go off-hook for an outgoing call and wait for dial tone.
    Seize,
    /// Command: dial a number. On an idle line this seizes it first; while waiting for dial
    /// tone the number goes out when the tone comes; on an established line (after a flash)
    /// it goes out at once.
    Dial(String),
    /// Command: send a hook flash (to the exchange's hold or transfer service).
    Flash,
    /// Command: release the line (go on-hook). Nothing happens on a line that is on-hook.
    Release,
}

/// Why the far end is taken to have released an established call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReleaseReason {
    /// Loop current dropped.
    LoopDrop,
    /// The exchange reversed the line polarity.
    PolarityReversal,
    BusyTone,
    CongestionTone,
    /// The exchange gave dial tone: the far end hung up long ago and the line reset.
    DialTone,
    /// A digital network cleared the call with this Q.850 cause.
    Network(u8),
}

impl ReleaseReason {
    /// The cause stored in the call record.
    pub const fn cause(self) -> &'static str {
        match self {
            ReleaseReason::LoopDrop => "caller hung up",
            ReleaseReason::PolarityReversal => "caller hung up (polarity reversal)",
            ReleaseReason::BusyTone => "caller hung up (busy tone)",
            ReleaseReason::CongestionTone => "caller hung up (congestion tone)",
            ReleaseReason::DialTone => "caller hung up (dial tone)",
            ReleaseReason::Network(cause) => super::network_cause(cause),
        }
    }
}

/// Why an outgoing call failed before it was answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DialFailure {
    NoDialTone,
    /// The engine did not report the number sent in time.
    DialTimeout,
    Busy,
    Congestion,
    NoAnswer,
    /// A digital network refused the call with this Q.850 cause (unallocated number, ...).
    Refused(u8),
}

/// What happened on the line, for the call model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FxoSignal {
    /// A call arrived, with its caller id (empty when the line sent none or it was missed).
    /// In between-rings FSK mode it comes when the caller id arrives or the second ring
    /// starts, not at the first ring.
    Incoming { caller: CallerIdInfo },
    /// The first full ring period was measured.
    Cadence(RingCadence),
    /// The call that was announced stopped ringing for the whole ring gap.
    Abandoned,
    /// A caller rang and gave up before the call could be announced (between-rings caller id
    /// mode: one ring only).
    Missed { caller: CallerIdInfo },
    /// Dial tone was heard and no number waits to be dialled.
    DialTone,
    /// The number is going out as DTMF (`dial_tone` false: blind dialling without it).
    Dialling { dial_tone: bool },
    /// The engine sent the whole number.
    Dialled,
    /// Ringback tone on an outgoing call.
    Ringback,
    /// The far end answered the outgoing call (polarity reversal, or assumed after dialling).
    Answered,
    /// The outgoing call failed; the line is back on-hook.
    Failed(DialFailure),
    /// The far end released the call; the line is back on-hook.
    Released(ReleaseReason),
    /// A hook flash we sent is complete.
    FlashDone,
}

/// What the driver must do or learn, polled with [`FxoLine::poll_output`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FxoOutput {
    /// A hook command for the card.
    Line(LineCommand),
    /// Digits to send as DTMF.
    SendDtmf(String),
    /// Open (true) or close the FSK caller id demodulator on this line.
    CallerIdWindow(bool),
    Signal(FxoSignal),
}

/// DTMF caller id collected on the idle line (`A`/`D` number `C`; `B` code `C` for absence).
#[derive(Clone, Debug, Default)]
struct DtmfCid {
    digits: String,
    /// Inside a `B` (absence) block rather than a number block.
    absence: bool,
    active: bool,
    /// When the last digit came: a block older than the validity is stale.
    last: Option<Instant>,
}

impl DtmfCid {
    fn digit(&mut self, now: Instant, digit: char) {
        match digit {
            'A' | 'D' => *self = DtmfCid { active: true, last: Some(now), ..DtmfCid::default() },
            'B' => *self = DtmfCid { active: true, absence: true, last: Some(now), ..DtmfCid::default() },
            'C' | '#' if self.active => {
                self.active = false;
                self.last = Some(now);
            }
            '0'..='9' if self.active && self.digits.len() < MAX_CID_DIGITS => {
                self.digits.push(digit);
                self.last = Some(now);
            }
            _ => {}
        }
    }

    /// The caller id collected, if fresh, and a reset collector. An unterminated block is
    /// used too: some exchanges omit the final `C`.
    fn take(&mut self, now: Instant, valid: Duration) -> CallerIdInfo {
        let cid = std::mem::take(self);
        let fresh = cid.last.is_some_and(|t| now.saturating_duration_since(t) <= valid);
        if !fresh || cid.digits.is_empty() {
            return CallerIdInfo::default();
        }
        if cid.absence {
            // ETSI DTMF CLIP: B00 unavailable, B10 private.
            let absence = match cid.digits.as_str() {
                "10" => 'P',
                _ => 'O',
            };
            return CallerIdInfo { absence: Some(absence), ..CallerIdInfo::default() };
        }
        CallerIdInfo { number: Some(cid.digits), ..CallerIdInfo::default() }
    }

    fn busy(&self, now: Instant, valid: Duration) -> bool {
        self.active && self.last.is_some_and(|t| now.saturating_duration_since(t) <= valid)
    }
}

/// Where an outgoing call stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Out {
    /// Off-hook, waiting for dial tone until the deadline.
    WaitDialTone { until: Instant },
    /// Dial tone heard, no number given yet.
    DialToneReady,
    /// The number is being sent.
    Dialling { until: Instant },
    /// Dialled: waiting for the answer.
    Progress { until: Instant, assume_at: Option<Instant> },
}

#[derive(Clone, Debug)]
enum State {
    /// On-hook with no call. `window` is the deadline of an open before-ring FSK window.
    Idle { window: Option<Instant> },
    /// The exchange rings us.
    Ringing(Box<Ringing>),
    /// Off-hook for an outgoing call not yet answered.
    Outgoing(Out),
    /// Off-hook with an established call. `assumed`: the answer was assumed after dialling,
    /// so a first polarity reversal is the late answer signal, not a release.
    Up { assumed: bool },
}

#[derive(Clone, Debug)]
struct Ringing {
    /// The last ring burst started or ended at this time.
    last: Instant,
    /// The current burst started at this time (the ringing voltage is on).
    burst_since: Option<Instant>,
    /// Bursts started so far.
    bursts: u32,
    /// Length of the first burst and the time it ended.
    first_on: Option<Duration>,
    first_end: Option<Instant>,
    announced: bool,
    caller: CallerIdInfo,
    /// Deadline of the open FSK window.
    window: Option<Instant>,
}

/// One FXO trunk port.
#[derive(Clone, Debug)]
pub struct FxoLine {
    settings: FxoSettings,
    state: State,
    dtmf: DtmfCid,
    /// FSK caller id received on the idle line (before-ring mode) and when.
    early_cid: Option<(CallerIdInfo, Instant)>,
    /// The number to dial once dial tone comes.
    number: Option<String>,
    /// A hook flash we are sending ends at this time.
    flash_until: Option<Instant>,
    /// Digits to send once the flash is over.
    after_flash: Option<String>,
    out: VecDeque<FxoOutput>,
}

impl FxoLine {
    pub fn new(settings: FxoSettings) -> FxoLine {
        FxoLine {
            settings,
            state: State::Idle { window: None },
            dtmf: DtmfCid::default(),
            early_cid: None,
            number: None,
            flash_until: None,
            after_flash: None,
            out: VecDeque::new(),
        }
    }

    pub fn settings(&self) -> &FxoSettings {
        &self.settings
    }

    /// True when the line is on-hook, not ringing and not receiving caller id: free for an
    /// outgoing call.
    pub fn is_idle(&self, now: Instant) -> bool {
        matches!(self.state, State::Idle { window: None })
            && !self.dtmf.busy(now, self.settings.caller_id_valid_for)
    }

    /// True when we hold the line off-hook.
    pub fn is_off_hook(&self) -> bool {
        matches!(self.state, State::Outgoing(_) | State::Up { .. })
    }

    /// The next output, if any.
    pub fn poll_output(&mut self) -> Option<FxoOutput> {
        self.out.pop_front()
    }

    fn signal(&mut self, s: FxoSignal) {
        self.out.push_back(FxoOutput::Signal(s));
    }

    fn command(&mut self, c: LineCommand) {
        self.out.push_back(FxoOutput::Line(c));
    }

    /// The earliest time at which [`FxoLine::handle_timeout`] has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let state = match &self.state {
            State::Idle { window } => *window,
            State::Ringing(r) => {
                let gap = r.last + self.settings.ring_gap;
                Some(r.window.map_or(gap, |w| w.min(gap)))
            }
            State::Outgoing(Out::WaitDialTone { until }) | State::Outgoing(Out::Dialling { until }) => {
                Some(*until)
            }
            State::Outgoing(Out::Progress { until, assume_at }) => {
                Some(assume_at.map_or(*until, |a| a.min(*until)))
            }
            State::Outgoing(Out::DialToneReady) | State::Up { .. } => None,
        };
        [state, self.flash_until].into_iter().flatten().min()
    }

    /// Feeds one input.
    pub fn handle(&mut self, now: Instant, input: FxoInput) {
        match input {
            FxoInput::Event(e) => self.event(now, e),
            FxoInput::Tone(t) => self.tone(now, t),
            FxoInput::Digit(d) => {
                // Digits matter only on the idle line, where they are DTMF caller id; on a
                // call they are the caller's, and the call model takes them.
                if matches!(self.state, State::Idle { .. }) && self.settings.caller_id == CallerIdMode::Dtmf {
                    self.dtmf.digit(now, d);
                }
            }
            FxoInput::CallerId(c) => self.caller_id(now, c),
            FxoInput::DtmfSent => {
                if let State::Outgoing(Out::Dialling { .. }) = self.state {
                    let until = now + self.settings.answer_timeout;
                    let assume_at = self.settings.assume_answer_after.map(|d| now + d);
                    self.state = State::Outgoing(Out::Progress { until, assume_at });
                    self.signal(FxoSignal::Dialled);
                }
            }
            FxoInput::Answer => match &self.state {
                State::Ringing(_) | State::Idle { .. } => {
                    self.close_window();
                    self.command(LineCommand::OffHook);
                    self.state = State::Up { assumed: false };
                }
                State::Outgoing(_) | State::Up { .. } => {}
            },
            FxoInput::Seize => self.seize(now),
            FxoInput::Dial(number) => self.dial(now, number),
            FxoInput::Flash => {
                if self.is_off_hook() && self.flash_until.is_none() {
                    self.flash_until = Some(now + self.settings.flash);
                    self.command(if self.settings.flash_by_card {
                        LineCommand::Flash
                    } else {
                        LineCommand::OnHook
                    });
                }
            }
            FxoInput::Release => {
                if self.is_off_hook() {
                    self.command(LineCommand::OnHook);
                    self.state = State::Idle { window: None };
                    self.number = None;
                    self.flash_until = None;
                    self.after_flash = None;
                }
            }
        }
    }

    fn seize(&mut self, now: Instant) {
        if !matches!(self.state, State::Idle { .. }) {
            return;
        }
        self.close_window();
        self.command(LineCommand::OffHook);
        self.state = State::Outgoing(Out::WaitDialTone { until: now + self.settings.dial_tone_wait });
    }

    fn dial(&mut self, now: Instant, number: String) {
        match self.state {
            State::Idle { .. } => {
                self.number = Some(number);
                self.seize(now);
            }
            State::Outgoing(Out::WaitDialTone { .. }) => self.number = Some(number),
            State::Outgoing(Out::DialToneReady) => self.send_number(now, number, true),
            State::Up { .. } if self.flash_until.is_some() => self.after_flash = Some(number),
            State::Up { .. } => self.out.push_back(FxoOutput::SendDtmf(number)),
            State::Ringing(_) | State::Outgoing(Out::Dialling { .. } | Out::Progress { .. }) => {}
        }
    }

    fn send_number(&mut self, now: Instant, number: String, dial_tone: bool) {
        self.out.push_back(FxoOutput::SendDtmf(number));
        self.state = State::Outgoing(Out::Dialling { until: now + self.settings.dial_timeout });
        self.signal(FxoSignal::Dialling { dial_tone });
    }

    fn close_window(&mut self) {
        let open = match &mut self.state {
            State::Idle { window } => window.take().is_some(),
            State::Ringing(r) => r.window.take().is_some(),
            State::Outgoing(_) | State::Up { .. } => false,
        };
        if open {
            self.out.push_back(FxoOutput::CallerIdWindow(false));
        }
    }

    /// Goes back on-hook after the far end left or the call failed, then tells the call model.
    fn drop_line(&mut self, signal: FxoSignal) {
        self.command(LineCommand::OnHook);
        self.state = State::Idle { window: None };
        self.number = None;
        self.flash_until = None;
        self.after_flash = None;
        self.signal(signal);
    }

    fn event(&mut self, now: Instant, event: LineEvent) {
        match event {
            LineEvent::RingBegin => self.ring_begin(now),
            LineEvent::RingEnd => {
                if let State::Ringing(r) = &mut self.state {
                    r.last = now;
                    let began = r.burst_since.take();
                    if r.bursts == 1 && r.first_end.is_none() {
                        r.first_on = began.map(|b| now.saturating_duration_since(b));
                        r.first_end = Some(now);
                        if self.settings.caller_id == CallerIdMode::Fsk && !r.announced {
                            // Between-rings caller id comes in the silence after this burst.
                            r.window = Some(now + self.settings.fsk_window);
                            self.out.push_back(FxoOutput::CallerIdWindow(true));
                        }
                    }
                }
            }
            LineEvent::PolarityReversal => match self.state {
                State::Idle { .. } if self.settings.caller_id == CallerIdMode::FskBeforeRing => {
                    // ETSI: the reversal announces caller id, which comes before the ring.
                    if let State::Idle { window } = &mut self.state {
                        if window.replace(now + self.settings.fsk_window).is_none() {
                            self.out.push_back(FxoOutput::CallerIdWindow(true));
                        }
                    }
                }
                State::Outgoing(Out::Dialling { .. } | Out::Progress { .. }) => {
                    self.state = State::Up { assumed: false };
                    self.signal(FxoSignal::Answered);
                }
                State::Up { assumed: true } => {
                    // The line does signal the answer, only later than we assumed.
                    self.state = State::Up { assumed: false };
                }
                State::Up { assumed: false }
                    if self.settings.reversal_disconnect && self.flash_until.is_none() =>
                {
                    self.drop_line(FxoSignal::Released(ReleaseReason::PolarityReversal));
                }
                _ => {}
            },
            LineEvent::OnHook => {
                // Our own flash drops the loop current for a moment: that is not a release.
                if self.is_off_hook() && self.flash_until.is_none() {
                    self.drop_line(FxoSignal::Released(ReleaseReason::LoopDrop));
                }
            }
            LineEvent::OffHook | LineEvent::Flash | LineEvent::Alarm(_) | LineEvent::AlarmCleared => {}
        }
    }

    fn ring_begin(&mut self, now: Instant) {
        match &mut self.state {
            State::Ringing(r) => {
                let cadence = match (r.bursts, r.first_on, r.first_end) {
                    (1, Some(on), Some(end)) => {
                        Some(RingCadence::classify(on, now.saturating_duration_since(end)))
                    }
                    _ => None,
                };
                r.bursts = r.bursts.saturating_add(1);
                r.last = now;
                r.burst_since = Some(now);
                if !r.announced {
                    // The second ring closes the between-rings window, caller id or not.
                    r.announced = true;
                    let caller = std::mem::take(&mut r.caller);
                    self.close_window();
                    self.signal(FxoSignal::Incoming { caller });
                }
                // After the announcement, so that the call it belongs to exists.
                if let Some(cadence) = cadence {
                    self.signal(FxoSignal::Cadence(cadence));
                }
            }
            State::Idle { .. } => {
                self.close_window();
                let valid = self.settings.caller_id_valid_for;
                let mut caller = match self.settings.caller_id {
                    CallerIdMode::Dtmf => self.dtmf.take(now, valid),
                    CallerIdMode::Fsk | CallerIdMode::FskBeforeRing => CallerIdInfo::default(),
                };
                // FSK caller id that came before the ring (before-ring mode, or an exchange
                // that sends it early in between-rings mode) counts if it is fresh.
                if let Some((early, at)) = self.early_cid.take() {
                    if now.saturating_duration_since(at) <= valid {
                        caller = early;
                    }
                }
                let announced = self.settings.caller_id != CallerIdMode::Fsk || !caller.is_empty();
                self.state = State::Ringing(Box::new(Ringing {
                    last: now,
                    burst_since: Some(now),
                    bursts: 1,
                    first_on: None,
                    first_end: None,
                    announced,
                    caller: if announced { CallerIdInfo::default() } else { caller.clone() },
                    window: None,
                }));
                if announced {
                    self.signal(FxoSignal::Incoming { caller });
                }
            }
            // Ringing voltage on a line we hold is noise or a card fault.
            State::Outgoing(_) | State::Up { .. } => {}
        }
    }

    fn caller_id(&mut self, now: Instant, caller: CallerIdInfo) {
        match &mut self.state {
            State::Ringing(r) if !r.announced => {
                r.announced = true;
                self.close_window();
                self.signal(FxoSignal::Incoming { caller });
            }
            State::Idle { .. } => {
                self.close_window();
                self.early_cid = Some((caller, now));
            }
            // Caller id after the call was announced (or on a call) is too late to use.
            State::Ringing(_) | State::Outgoing(_) | State::Up { .. } => {}
        }
    }

    fn tone(&mut self, now: Instant, tone: ProgressTone) {
        match (&self.state, tone) {
            (State::Outgoing(Out::WaitDialTone { .. }), ProgressTone::Dial) => match self.number.take() {
                Some(number) => self.send_number(now, number, true),
                None => {
                    self.state = State::Outgoing(Out::DialToneReady);
                    self.signal(FxoSignal::DialTone);
                }
            },
            (State::Outgoing(Out::Progress { .. }), ProgressTone::Ringback) => {
                self.signal(FxoSignal::Ringback)
            }
            (State::Outgoing(Out::Dialling { .. } | Out::Progress { .. }), ProgressTone::Busy) => {
                self.drop_line(FxoSignal::Failed(DialFailure::Busy))
            }
            (State::Outgoing(Out::Dialling { .. } | Out::Progress { .. }), ProgressTone::Congestion) => {
                self.drop_line(FxoSignal::Failed(DialFailure::Congestion))
            }
            (State::Up { .. }, ProgressTone::Busy | ProgressTone::Congestion | ProgressTone::Dial)
                if self.settings.tone_disconnect
                    && self.flash_until.is_none()
                    && self.after_flash.is_none() =>
            {
                let reason = match tone {
                    ProgressTone::Busy => ReleaseReason::BusyTone,
                    ProgressTone::Congestion => ReleaseReason::CongestionTone,
                    _ => ReleaseReason::DialTone,
                };
                self.drop_line(FxoSignal::Released(reason));
            }
            _ => {}
        }
    }

    /// Handles the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.flash_until.is_some_and(|t| now >= t) {
            self.flash_until = None;
            if !self.settings.flash_by_card {
                self.command(LineCommand::OffHook);
            }
            self.signal(FxoSignal::FlashDone);
            if let Some(digits) = self.after_flash.take() {
                self.out.push_back(FxoOutput::SendDtmf(digits));
            }
        }
        match &mut self.state {
            State::Idle { window: Some(w) } if now >= *w => self.close_window(),
            State::Ringing(r) => {
                if now >= r.last + self.settings.ring_gap {
                    let (announced, caller) = (r.announced, std::mem::take(&mut r.caller));
                    self.close_window();
                    self.state = State::Idle { window: None };
                    self.signal(if announced { FxoSignal::Abandoned } else { FxoSignal::Missed { caller } });
                } else if r.window.is_some_and(|w| now >= w) {
                    // The window closes; the call is announced when the next ring starts.
                    self.close_window();
                }
            }
            State::Outgoing(Out::WaitDialTone { until }) if now >= *until => match self.number.take() {
                Some(number) if self.settings.blind_dial => self.send_number(now, number, false),
                _ => self.drop_line(FxoSignal::Failed(DialFailure::NoDialTone)),
            },
            State::Outgoing(Out::Dialling { until }) if now >= *until => {
                self.drop_line(FxoSignal::Failed(DialFailure::DialTimeout))
            }
            State::Outgoing(Out::Progress { until, assume_at }) => {
                if assume_at.is_some_and(|a| now >= a) {
                    self.state = State::Up { assumed: true };
                    self.signal(FxoSignal::Answered);
                } else if now >= *until {
                    self.drop_line(FxoSignal::Failed(DialFailure::NoAnswer));
                }
            }
            _ => {}
        }
    }
}
