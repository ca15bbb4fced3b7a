//! One sound device: its two streams, its hook state and alert, its audio path and its
//! recovery from xruns, suspends and unplugs.

use std::ffi::CString;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_driver_api::{Alarms, Block, ChannelId, Law, LineCommand, LineEvent, TickIo, BLOCK_SAMPLES};

use crate::g711;
use crate::jitter::{Adjust, Drift, SampleRing, RING_CAP};
use crate::pcm::{classify, errno, DeviceFault, Opener, Pcm, PcmError, Recovery, StreamDir, StreamParams};
use crate::stats::Counters;
use crate::tone::{RingGen, RingState};
use crate::Role;

const PERIOD: usize = BLOCK_SAMPLES;
/// Line events a device can hold between two ticks; more are counted as lost.
const EVENT_QUEUE: usize = 8;
const SILENCE: [i16; PERIOD] = [0; PERIOD];

/// The open streams of a device.
struct Streams {
    capture: Box<dyn Pcm>,
    playback: Box<dyn Pcm>,
    /// Capture started and playback prefilled; done on the first tick, not at open, so that a
    /// card opened long before it ticks does not begin with an overrun.
    started: bool,
    /// Whether each stream is known to be suspended, so that a suspend is counted once.
    suspended: [bool; 2],
}

impl Streams {
    fn pcm(&mut self, dir: StreamDir) -> &mut Box<dyn Pcm> {
        match dir {
            StreamDir::Capture => &mut self.capture,
            StreamDir::Playback => &mut self.playback,
        }
    }
}

fn fault(dir: StreamDir, e: PcmError) -> DeviceFault {
    DeviceFault { stream: dir, op: e.op, errno: e.errno }
}

fn slot(dir: StreamDir) -> usize {
    match dir {
        StreamDir::Capture => 0,
        StreamDir::Playback => 1,
    }
}

/// Restarts a stream after a prepare: capture is started, playback gets a period of silence
/// so that it starts (at the two-period threshold) with the next block.
fn restart(dir: StreamDir, pcm: &mut dyn Pcm) -> Result<(), DeviceFault> {
    match dir {
        StreamDir::Capture => pcm.start().map_err(|e| fault(dir, e)),
        StreamDir::Playback => match pcm.write(&SILENCE) {
            Ok(_) => Ok(()),
            Err(e) if classify(e.errno) == Recovery::Again => Ok(()),
            Err(e) => Err(fault(dir, e)),
        },
    }
}

pub(crate) struct Device {
    id: ChannelId,
    role: Role,
    law: Law,
    capture_name: CString,
    playback_name: CString,
    streams: Option<Streams>,
    last_fault: Option<DeviceFault>,
    next_retry: Instant,
    /// An `Alarm` was raised and not yet cleared.
    alarmed: bool,
    off_hook: bool,
    ringing: bool,
    ring: RingState,
    events: heapless::Deque<LineEvent, EVENT_QUEUE>,
    events_lost: u32,
    fifo: SampleRing,
    /// The capture FIFO holds its cushion and blocks are being taken from it.
    primed: bool,
    rx_drift: Drift,
    tx_drift: Drift,
    scratch: [i16; RING_CAP],
    stats: Arc<[Counters]>,
}

impl Device {
    pub fn new(
        id: ChannelId,
        role: Role,
        law: Law,
        capture_name: CString,
        playback_name: CString,
        stats: Arc<[Counters]>,
        now: Instant,
    ) -> Device {
        Device {
            id,
            role,
            law,
            capture_name,
            playback_name,
            streams: None,
            last_fault: None,
            next_retry: now,
            alarmed: false,
            off_hook: false,
            ringing: false,
            ring: RingState::default(),
            events: heapless::Deque::new(),
            events_lost: 0,
            fifo: SampleRing::new(),
            primed: false,
            rx_drift: Drift::new(),
            tx_drift: Drift::new(),
            scratch: [0; RING_CAP],
            stats,
        }
    }

    fn counters(&self) -> &Counters {
        &self.stats[usize::from(self.id.0)]
    }

    pub fn is_up(&self) -> bool {
        self.streams.is_some()
    }

    pub fn last_fault(&self) -> Option<DeviceFault> {
        self.last_fault
    }

    fn push(&mut self, event: LineEvent) {
        if self.events.push_back(event).is_err() {
            self.events_lost = self.events_lost.saturating_add(1);
        }
    }

    /// Hands this device's pending events to the tick, as raised by `channel` (the device's
    /// own channel, or its place on a combined card).
    pub fn drain_events(&mut self, io: &mut TickIo, channel: ChannelId) {
        while let Some(e) = self.events.pop_front() {
            io.push_event(channel, e);
        }
        io.events_lost = io.events_lost.saturating_add(self.events_lost);
        self.events_lost = 0;
    }

    /// Opens both streams. On failure the device stays down, raises `Alarm` (once) and will
    /// be tried again after `interval`; on success after a failure it raises `AlarmCleared`.
    /// This allocates (alsa-lib parses its configuration) and runs only at start and on the
    /// reopen attempts of a failed device, never in the steady state.
    pub fn open(
        &mut self,
        opener: &mut dyn Opener,
        params: &StreamParams,
        now: Instant,
        interval: Duration,
        quiet: bool,
    ) {
        let opened = opener
            .open(&self.capture_name, StreamDir::Capture, params, quiet)
            .map_err(|e| fault(StreamDir::Capture, e))
            .and_then(|capture| {
                opener
                    .open(&self.playback_name, StreamDir::Playback, params, quiet)
                    .map(|playback| (capture, playback))
                    .map_err(|e| fault(StreamDir::Playback, e))
            });
        match opened {
            Ok((capture, playback)) => {
                self.streams = Some(Streams { capture, playback, started: false, suspended: [false; 2] });
                self.reset_audio();
                self.counters().up.store(true, Ordering::Relaxed);
                if self.alarmed {
                    self.alarmed = false;
                    self.push(LineEvent::AlarmCleared);
                }
            }
            Err(f) => self.mark_down(f, now, interval),
        }
    }

    /// Opens a failed device again if its retry time has come.
    pub fn retry_if_due(
        &mut self,
        opener: &mut dyn Opener,
        params: &StreamParams,
        now: Instant,
        interval: Duration,
    ) {
        if self.streams.is_none() && now >= self.next_retry {
            Counters::add(&self.counters().reopen_attempts, 1);
            self.open(opener, params, now, interval, true);
            if self.streams.is_some() {
                Counters::add(&self.counters().reopens, 1);
            }
        }
    }

    /// Closes a device that failed while running and schedules its reopening. Closing frees
    /// alsa-lib's memory; like opening, it happens only when something went wrong.
    pub fn fail(&mut self, f: DeviceFault, now: Instant, interval: Duration) {
        self.streams = None;
        Counters::add(&self.counters().faults, 1);
        self.mark_down(f, now, interval);
    }

    fn mark_down(&mut self, f: DeviceFault, now: Instant, interval: Duration) {
        self.last_fault = Some(f);
        let c = self.counters();
        c.up.store(false, Ordering::Relaxed);
        c.last_errno.store(f.errno, Ordering::Relaxed);
        self.next_retry = now + interval;
        self.reset_audio();
        if !self.alarmed {
            self.alarmed = true;
            self.push(LineEvent::Alarm(Alarms { loss_of_signal: true, ..Alarms::default() }));
        }
    }

    fn reset_audio(&mut self) {
        self.fifo.clear();
        self.primed = false;
        self.rx_drift.reset();
        self.tx_drift.reset();
    }

    /// Carries out a signalling command; `Err(())` when the command means nothing for the
    /// device's role.
    pub fn command(&mut self, command: LineCommand) -> Result<(), ()> {
        match (self.role, command) {
            (Role::Seat, LineCommand::Ring) => {
                // Like a phone, an off-hook headset is not rung; the call model should not ask.
                if !self.off_hook && !self.ringing {
                    self.ringing = true;
                    self.ring.restart();
                }
            }
            (Role::Seat, LineCommand::StopRing) => self.ringing = false,
            (Role::Seat, LineCommand::OffHook) => {
                self.ringing = false;
                if !self.off_hook {
                    self.off_hook = true;
                    self.push(LineEvent::OffHook);
                }
            }
            (Role::Seat, LineCommand::OnHook) => {
                self.ringing = false;
                if self.off_hook {
                    self.off_hook = false;
                    self.push(LineEvent::OnHook);
                }
            }
            (Role::Seat, LineCommand::Flash) => {
                if self.off_hook {
                    self.push(LineEvent::Flash);
                }
            }
            (Role::Line, LineCommand::OffHook) => self.off_hook = true,
            (Role::Line, LineCommand::OnHook) => self.off_hook = false,
            (Role::Line, LineCommand::Flash) => {}
            (Role::Line, LineCommand::Ring | LineCommand::StopRing) => return Err(()),
        }
        Ok(())
    }

    /// Handles an error from one stream: Ok when the device can go on (possibly after a
    /// restart), Err when it has to be closed.
    fn recover(&mut self, dir: StreamDir, e: PcmError) -> Result<(), DeviceFault> {
        let stats = Arc::clone(&self.stats);
        let c = &stats[usize::from(self.id.0)];
        let Some(s) = self.streams.as_mut() else { return Ok(()) };
        match classify(e.errno) {
            Recovery::Again => Ok(()),
            Recovery::Xrun => {
                Counters::add(&c.xruns, 1);
                let pcm = s.pcm(dir);
                pcm.prepare().map_err(|e| fault(dir, e))?;
                restart(dir, pcm.as_mut())
            }
            Recovery::Suspended => {
                let was = std::mem::replace(&mut s.suspended[slot(dir)], true);
                if !was {
                    Counters::add(&c.suspends, 1);
                }
                let pcm = s.pcm(dir);
                match pcm.resume() {
                    Ok(()) => {
                        s.suspended[slot(dir)] = false;
                        Ok(())
                    }
                    // Still waking up: a non-blocking tick tries again next time rather
                    // than sleeping here.
                    Err(e) if e.errno == errno::EAGAIN => Ok(()),
                    // The driver cannot resume in place: start the stream afresh.
                    Err(_) => {
                        s.suspended[slot(dir)] = false;
                        let pcm = s.pcm(dir);
                        pcm.prepare().map_err(|e| fault(dir, e))?;
                        restart(dir, pcm.as_mut())
                    }
                }
            }
            Recovery::Fatal => Err(fault(dir, e)),
        }
    }

    /// Starts capture and prefills playback on the first tick after an open.
    fn ensure_started(&mut self) -> Result<(), DeviceFault> {
        let Some(s) = self.streams.as_mut() else { return Ok(()) };
        if s.started {
            return Ok(());
        }
        s.started = true;
        s.capture.start().map_err(|e| fault(StreamDir::Capture, e))?;
        if let Err(e) = s.playback.write(&SILENCE) {
            self.recover(StreamDir::Playback, e)?;
        }
        Ok(())
    }

    /// Master clocking: returns once the capture stream has a period to read, or the stall
    /// timeout passed (a fault: a device that stops delivering is as good as unplugged).
    pub fn wait_period(&mut self, timeout_ms: u32) -> Result<(), DeviceFault> {
        self.ensure_started()?;
        if self.fifo.len() >= PERIOD {
            return Ok(());
        }
        let Some(s) = self.streams.as_mut() else { return Ok(()) };
        match s.capture.wait(timeout_ms) {
            Ok(true) => Ok(()),
            Ok(false) => Err(DeviceFault {
                stream: StreamDir::Capture,
                op: "snd_pcm_wait (no period within the stall timeout)",
                errno: errno::ETIMEDOUT,
            }),
            Err(e) => self.recover(StreamDir::Capture, e),
        }
    }

    /// Whether audio passes: a seat or line on-hook carries none (only the alert), like an
    /// on-hook phone or a released trunk.
    fn audio_passes(&self) -> bool {
        self.off_hook
    }

    /// Sends `tx` to the device and fills `rx` from it. `clock` is true for the device that
    /// clocks the card (master mode): it moves exactly one period each way; every other device
    /// goes through the jitter buffer and drift control. A device that is down yields silence.
    pub fn exchange(
        &mut self,
        tx: &Block,
        rx: &mut Block,
        clock: bool,
        gen: &RingGen,
    ) -> Result<(), DeviceFault> {
        if self.streams.is_none() {
            rx.fill(self.law.silence());
            return Ok(());
        }
        self.ensure_started()?;
        self.play(tx, clock, gen)?;
        self.capture(rx, clock)
    }

    fn play(&mut self, tx: &Block, clock: bool, gen: &RingGen) -> Result<(), DeviceFault> {
        let mut block = [0i16; PERIOD];
        if self.audio_passes() {
            g711::decode_block(self.law, tx, &mut block);
        }
        if self.ringing {
            gen.mix(&mut self.ring, &mut block);
        }
        let mut out = [0i16; PERIOD + 1];
        out[..PERIOD].copy_from_slice(&block);
        let adjust = if clock {
            Adjust::None
        } else {
            let Some(s) = self.streams.as_mut() else { return Ok(()) };
            match s.playback.avail() {
                Ok(avail) => {
                    let queued = s.playback.buffer_frames().saturating_sub(avail);
                    self.tx_drift.step(queued, PERIOD)
                }
                Err(e) => {
                    // The block is lost either way; recovering restarts the stream.
                    Counters::add(&self.counters().frames_dropped, PERIOD as u64);
                    return self.recover(StreamDir::Playback, e);
                }
            }
        };
        let n = match adjust {
            Adjust::None => PERIOD,
            Adjust::Drop => {
                out[PERIOD - 2] = ((i32::from(out[PERIOD - 2]) + i32::from(out[PERIOD - 1])) / 2) as i16;
                out[PERIOD - 1] = 0;
                Counters::add(&self.counters().frames_dropped, 1);
                PERIOD - 1
            }
            Adjust::Insert => {
                out[PERIOD] = out[PERIOD - 1];
                Counters::add(&self.counters().frames_padded, 1);
                PERIOD + 1
            }
        };
        let Some(s) = self.streams.as_mut() else { return Ok(()) };
        let result = s.playback.write(&out[..n]);
        match result {
            Ok(w) => {
                // A full device buffer (the device runs slow and the drift control has not
                // caught up yet) loses the rest of the block.
                Counters::add(&self.counters().frames_dropped, (n - w.min(n)) as u64);
                Ok(())
            }
            Err(e) => {
                self.recover(StreamDir::Playback, e)?;
                if classify(e.errno) == Recovery::Xrun {
                    // After an underrun the stream was prepared and primed: send the block
                    // that found it stopped, so that no audio is lost to the recovery.
                    if let Some(s) = self.streams.as_mut() {
                        if s.playback.write(&out[..n]).is_ok() {
                            return Ok(());
                        }
                    }
                }
                Counters::add(&self.counters().frames_dropped, n as u64);
                Ok(())
            }
        }
    }

    fn capture(&mut self, rx: &mut Block, clock: bool) -> Result<(), DeviceFault> {
        let target = if clock { 0 } else { PERIOD };
        let Some(s) = self.streams.as_mut() else { return Ok(()) };
        // How much to read: the clock device reads what the next block needs and leaves any
        // backlog in the device (a late tick is followed by quick ones that catch up); the
        // others take everything the device has, as the FIFO is their buffer.
        let mut error = None;
        let want = if clock {
            PERIOD.saturating_sub(self.fifo.len())
        } else {
            match s.capture.avail() {
                Ok(a) => a.min(self.fifo.space()),
                Err(e) => {
                    error = Some(e);
                    0
                }
            }
        };
        let mut left = want;
        while left > 0 {
            let chunk = left.min(self.scratch.len());
            match s.capture.read(&mut self.scratch[..chunk]) {
                Ok(0) => break,
                Ok(n) => {
                    let n = n.min(chunk);
                    self.fifo.push(&self.scratch[..n]);
                    left -= n;
                }
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        if let Some(e) = error {
            self.recover(StreamDir::Capture, e)?;
        }
        if !clock && self.fifo.len() > RING_CAP - PERIOD {
            // Nearly full: the device ran far ahead (a stalled tick, a fast device just
            // plugged in). Cut back to the cushion at once rather than one frame a tick.
            let excess = self.fifo.len() - (PERIOD + target);
            self.fifo.discard(excess);
            Counters::add(&self.counters().frames_dropped, excess as u64);
        }

        let silence = self.law.silence();
        if !self.primed {
            if self.fifo.len() >= PERIOD + target {
                self.primed = true;
            } else {
                rx.fill(silence);
                Counters::add(&self.counters().frames_padded, PERIOD as u64);
                return Ok(());
            }
        }
        let adjust = if clock {
            Adjust::None
        } else {
            self.rx_drift.step(self.fifo.len().saturating_sub(PERIOD), target)
        };
        let need = match adjust {
            Adjust::None => PERIOD,
            Adjust::Drop => PERIOD + 1,
            Adjust::Insert => PERIOD - 1,
        };
        if self.fifo.len() < need {
            // Underflow: a block of silence, and the FIFO primes again before the next block
            // is taken, so that one late period does not cause a run of tiny gaps.
            rx.fill(silence);
            self.primed = false;
            Counters::add(&self.counters().frames_padded, PERIOD as u64);
            return Ok(());
        }
        let mut lin = [0i16; PERIOD + 1];
        self.fifo.pop(&mut lin[..need]);
        match adjust {
            Adjust::None => {}
            Adjust::Drop => {
                lin[PERIOD - 1] = ((i32::from(lin[PERIOD - 1]) + i32::from(lin[PERIOD])) / 2) as i16;
                Counters::add(&self.counters().frames_dropped, 1);
            }
            Adjust::Insert => {
                lin[PERIOD - 1] = lin[PERIOD - 2];
                Counters::add(&self.counters().frames_padded, 1);
            }
        }
        if self.audio_passes() {
            let mut block = [0i16; PERIOD];
            block.copy_from_slice(&lin[..PERIOD]);
            g711::encode_block(self.law, &block, rx);
        } else {
            rx.fill(silence);
        }
        Ok(())
    }
}
