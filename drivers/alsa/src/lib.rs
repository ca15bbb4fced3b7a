//! ALSA backend: sound devices as seats (a headset on the appliance) or as lines.
//!
//! # Devices and the card
//!
//! A [`SoundDevice`] is a pair of ALSA PCM names, one for capture and one for playback
//! (usually the same, e.g. `plughw:CARD=Headset` or `plug:hw:1,0`). Each stream is opened
//! non-blocking at S16_LE, 8000 Hz, mono, with 160-frame (20 ms) periods and a buffer of a few
//! periods. Use a `plug` name: the plug layer converts from whatever the hardware does
//! (typically 48 kHz stereo); a bare `hw:` name that cannot do 8 kHz mono is refused.
//!
//! A [`SoundCard`] implements [`Card`] for one or more devices. Device *n* is channel *n*
//! (port *n + 1*) on span *n* (a [`SpanKind::Sound`] span). A [`Role::Seat`] device is a
//! [`ChannelKind::Sound`] channel; a [`Role::Line`] device is a [`ChannelKind::FxoTrunk`]
//! channel without signalling (a line interface on the sound card's jacks).
//!
//! The card converts between the devices' linear samples and the channel's G.711 law itself
//! ([`g711`]): the [`Card`] trait carries G.711 blocks, like DAHDI, so the engine treats every
//! card the same, and a driver crate cannot use the main crate's DSP. The round trip through
//! G.711 is the same quantisation any telephone line has.
//!
//! # Clocking
//!
//! * [`Clocking::Master`]: the sound card is the daemon's only card. Each tick blocks until the
//!   first device that is up has captured a period, and that device moves exactly one period
//!   each way per tick (a late tick leaves a backlog in the device, which the next, quicker
//!   ticks catch up on, as with DAHDI). If no device is up the ticks follow the monotonic
//!   clock, 20 ms apart, so the daemon keeps running while every headset is unplugged.
//! * [`Clocking::Slave`]: another card (DAHDI, the simulator) is the clock and the sound card is
//!   ticked after it. A tick never blocks: it reads what each device has captured and writes
//!   one block. A card that combines the clock card with this one calls
//!   [`SoundCard::tick_at`] right after the clock card's tick, with the index of the first
//!   sound channel in the combined [`TickIo`].
//!
//! Every device that is not the clock (all of them in slave mode, all but the first in master
//! mode) runs on its own crystal, so it goes through a jitter buffer with drift control: a
//! capture FIFO with a one-period cushion that pads a block of silence when it runs dry and
//! cuts back when it overfills, and a controller that watches the lowest FIFO level (and,
//! for playback, the device's queue depth) over each second and removes or inserts one frame
//! per tick until the level is back at its target. A 100 ppm crystal error (0.8 frames/s) is
//! corrected by a single inaudible frame every 1.25 seconds; see the `jitter` module.
//!
//! # Headset signalling
//!
//! A headset has no hook switch and no ringer, so the desktop supplies the hook switch and the
//! card supplies the ringer. On a [`Role::Seat`] channel:
//!
//! | command | effect |
//! |---|---|
//! | [`LineCommand::Ring`] | an alert ([`RingTone`], by default 425 Hz, 1 s on / 4 s off) is mixed into the headset's playback until `StopRing`, `OffHook` or `OnHook`; ignored while off-hook |
//! | [`LineCommand::StopRing`] | the alert stops |
//! | [`LineCommand::OffHook`] | *the agent answered on the desktop* (agent protocol Answer, ActID 1): the alert stops and the card raises [`LineEvent::OffHook`] on the next tick |
//! | [`LineCommand::OnHook`] | the call ends on the desktop: the alert stops and, if the seat was off-hook, the card raises [`LineEvent::OnHook`] on the next tick |
//! | [`LineCommand::Flash`] | while off-hook, the card raises [`LineEvent::Flash`] (a desktop "flash" button) |
//!
//! In other words the card echoes the desktop's hook commands back as the hook events a phone
//! would have raised, so the call model handles a headset seat exactly like an FXS seat. The
//! commands are idempotent: `OffHook` on an off-hook seat raises nothing. While a seat is
//! on-hook no audio passes either way (the headset hears only the alert and the microphone is
//! not heard), as with an on-hook phone.
//!
//! On a [`Role::Line`] channel `OffHook` and `OnHook` open and close the audio path (a
//! released trunk carries nothing), `Flash` does nothing, and `Ring`/`StopRing` are refused
//! with [`CardError::BadCommand`]. A line raises no hook events: there is no loop current or
//! ringing voltage to detect.
//!
//! # Faults
//!
//! * An overrun or underrun (EPIPE) is recovered in place: the stream is prepared and
//!   restarted (capture) or primed with a period of silence (playback), the xrun is counted and
//!   the tick goes on. A suspended device (ESTRPIPE) is resumed, or prepared if it cannot be.
//! * Any other error (ENODEV when a USB headset is pulled out, EBADFD, ENXIO, EIO, or a master
//!   clock device that delivers nothing for [`SoundConfig::stall_timeout`]) closes the device:
//!   its channel gets [`LineEvent::Alarm`] with `loss_of_signal` set and carries silence, the
//!   other devices carry on, and the device is reopened every
//!   [`SoundConfig::reopen_interval`] (not on every tick). When it opens again the channel gets
//!   [`LineEvent::AlarmCleared`]. The hook state survives the outage: the call model decides
//!   what an alarm means for a call. A device that cannot be opened when the card is opened is
//!   treated the same way (alarm on the first tick, retried), so a headset that is plugged in
//!   later just works; [`SoundCard::faults`] tells the caller what failed. alsa-lib prints
//!   why an open failed to stderr the first time; on the retries of a device that stays
//!   away it is kept quiet (see [`SoundCard::last_fault`] for the errno).
//!
//! # Real time
//!
//! `tick` does not allocate: every buffer (FIFO, scratch, the alert's sine table, the byte
//! buffer alsa-lib reads into) is allocated when a device is opened. Opening a device (at
//! start and when a failed one is retried, at most once per reopen interval) and closing a
//! failed one do allocate and can take milliseconds (alsa-lib parses its configuration); that
//! happens only outside the steady state, when a device has already failed.

#![forbid(unsafe_code)]

mod device;
pub mod g711;
mod jitter;
mod pcm;
mod stats;
mod tone;

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;

use std::ffi::CString;
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_driver_api::{
    Card, CardError, CardInfo, ChannelId, ChannelInfo, ChannelKind, Law, LineCommand, SpanInfo, SpanKind,
    TickIo, TICK_MICROS,
};

// The crate documentation links to the events the card raises.
#[cfg(doc)]
use switchboard_driver_api::LineEvent;

use device::Device;
use pcm::{AlsaOpener, Opener, StreamParams};
use tone::RingGen;

pub use pcm::{DeviceFault, StreamDir};
pub use stats::{DeviceStats, StatsHandle};
pub use tone::RingTone;

/// Most devices one card drives.
pub const MAX_DEVICES: usize = 64;

/// What a sound device is used as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Role {
    /// A headset seat: a [`ChannelKind::Sound`] channel with desktop hook signalling and a
    /// local alert.
    #[default]
    Seat,
    /// A line: an [`ChannelKind::FxoTrunk`] channel whose audio path opens while off-hook.
    Line,
}

/// One sound device: the PCM names of its two directions, its role and its law.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SoundDevice {
    /// A name for logs and the span name; the capture PCM name when empty.
    pub label: String,
    /// ALSA PCM name for capture, e.g. `plughw:CARD=Headset`.
    pub capture: String,
    /// ALSA PCM name for playback, usually the same as `capture`.
    pub playback: String,
    pub role: Role,
    /// The G.711 law of the channel's blocks.
    pub law: Law,
}

impl SoundDevice {
    /// A headset seat on one PCM name used both ways.
    pub fn seat(pcm: &str) -> SoundDevice {
        SoundDevice {
            label: String::new(),
            capture: pcm.to_owned(),
            playback: pcm.to_owned(),
            role: Role::Seat,
            law: Law::default(),
        }
    }

    /// A line on one PCM name used both ways.
    pub fn line(pcm: &str) -> SoundDevice {
        SoundDevice { role: Role::Line, ..SoundDevice::seat(pcm) }
    }
}

/// How the card is clocked; see the crate documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Clocking {
    /// The first device that is up clocks the ticks (the sound card is the only card).
    #[default]
    Master,
    /// Another card clocks the ticks; `tick` never blocks.
    Slave,
}

/// Everything a sound card needs.
#[derive(Clone, Debug, PartialEq)]
pub struct SoundConfig {
    pub devices: Vec<SoundDevice>,
    pub clocking: Clocking,
    pub ring: RingTone,
    /// How often a failed device is tried again (default 1 s).
    pub reopen_interval: Duration,
    /// Periods in each device buffer (default 4: 80 ms).
    pub buffer_periods: u32,
    /// Master mode: how long the clock device may deliver nothing before it is considered
    /// failed (default 200 ms, ten periods).
    pub stall_timeout: Duration,
}

impl Default for SoundConfig {
    fn default() -> Self {
        SoundConfig {
            devices: Vec::new(),
            clocking: Clocking::Master,
            ring: RingTone::default(),
            reopen_interval: Duration::from_secs(1),
            buffer_periods: 4,
            stall_timeout: Duration::from_millis(200),
        }
    }
}

/// A configuration the card cannot run with.
#[derive(Debug, thiserror::Error)]
pub enum SoundError {
    #[error("a sound card needs at least one device")]
    NoDevices,
    #[error("too many sound devices ({0}; at most {MAX_DEVICES})")]
    TooManyDevices(usize),
    #[error("sound device {device}: the {stream} PCM name {name:?} {why}")]
    BadName { device: usize, stream: &'static str, name: String, why: &'static str },
    #[error("ring tone: {0}")]
    BadRingTone(&'static str),
    #[error("{what} must be between {min} and {max} (got {got})")]
    OutOfRange { what: &'static str, got: u64, min: u64, max: u64 },
}

fn range(what: &'static str, got: u64, min: u64, max: u64) -> Result<(), SoundError> {
    if (min..=max).contains(&got) {
        Ok(())
    } else {
        Err(SoundError::OutOfRange { what, got, min, max })
    }
}

fn pcm_name(device: usize, stream: &'static str, name: &str) -> Result<CString, SoundError> {
    let bad = |why| SoundError::BadName { device, stream, name: name.to_owned(), why };
    if name.trim().is_empty() {
        return Err(bad("is empty"));
    }
    CString::new(name).map_err(|_| bad("contains a NUL byte"))
}

/// Paces ticks on the monotonic clock when no device can (master mode, all devices down).
#[derive(Debug, Default)]
struct Pacer {
    next: Option<Instant>,
}

impl Pacer {
    fn pace(&mut self) {
        let tick = Duration::from_micros(TICK_MICROS);
        let now = Instant::now();
        let deadline = self.next.unwrap_or(now);
        if deadline > now {
            std::thread::sleep(deadline - now);
        }
        // A late caller gets one prompt tick, not a burst of catch-up ticks.
        let next = deadline + tick;
        self.next = Some(if next + tick < now { now + tick } else { next });
    }
}

/// A [`Card`] made of sound devices.
pub struct SoundCard {
    info: CardInfo,
    clocking: Clocking,
    devices: Vec<Device>,
    opener: Box<dyn Opener>,
    ring: RingGen,
    params: StreamParams,
    reopen_interval: Duration,
    stall_timeout_ms: u32,
    pacer: Pacer,
    stats: StatsHandle,
}

impl SoundCard {
    /// Checks the configuration and opens every device. Devices that cannot be opened do not
    /// make this fail: they start in alarm and are retried (see [`SoundCard::faults`]).
    pub fn open(config: SoundConfig) -> Result<SoundCard, SoundError> {
        SoundCard::with_opener(config, Box::new(AlsaOpener))
    }

    pub(crate) fn with_opener(
        config: SoundConfig,
        mut opener: Box<dyn Opener>,
    ) -> Result<SoundCard, SoundError> {
        let n = config.devices.len();
        if n == 0 {
            return Err(SoundError::NoDevices);
        }
        if n > MAX_DEVICES {
            return Err(SoundError::TooManyDevices(n));
        }
        if let Some(problem) = config.ring.problem() {
            return Err(SoundError::BadRingTone(problem));
        }
        range("buffer_periods", u64::from(config.buffer_periods), 2, 16)?;
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        range("reopen_interval (ms)", millis(config.reopen_interval), 10, 3_600_000)?;
        range("stall_timeout (ms)", millis(config.stall_timeout), 20, 10_000)?;

        let counters: Arc<[stats::Counters]> = (0..n).map(|_| stats::Counters::default()).collect();
        let mut spans = Vec::with_capacity(n);
        let mut channels = Vec::with_capacity(n);
        let mut devices = Vec::with_capacity(n);
        let now = Instant::now();
        for (i, d) in config.devices.iter().enumerate() {
            let capture = pcm_name(i, "capture", &d.capture)?;
            let playback = pcm_name(i, "playback", &d.playback)?;
            let id = ChannelId(i as u16);
            let label = if d.label.is_empty() { d.capture.clone() } else { d.label.clone() };
            spans.push(SpanInfo { index: i as u16, kind: SpanKind::Sound, name: format!("alsa {label}") });
            let kind = match d.role {
                Role::Seat => ChannelKind::Sound,
                Role::Line => ChannelKind::FxoTrunk,
            };
            channels.push(ChannelInfo { id, kind, span: i as u16, position: 1, law: d.law });
            devices.push(Device::new(id, d.role, d.law, capture, playback, Arc::clone(&counters), now));
        }
        let params = StreamParams::new(config.buffer_periods);
        for d in &mut devices {
            d.open(opener.as_mut(), &params, now, config.reopen_interval, false);
        }
        Ok(SoundCard {
            info: CardInfo { name: "alsa".into(), spans, channels },
            clocking: config.clocking,
            devices,
            opener,
            ring: RingGen::new(&config.ring),
            params,
            reopen_interval: config.reopen_interval,
            stall_timeout_ms: u32::try_from(config.stall_timeout.as_millis()).unwrap_or(u32::MAX),
            pacer: Pacer::default(),
            stats: StatsHandle(counters),
        })
    }

    /// A handle on the per-device counters that can be read from another thread.
    pub fn stats(&self) -> StatsHandle {
        self.stats.clone()
    }

    /// Whether the device on `channel` is open and running.
    pub fn is_up(&self, channel: ChannelId) -> bool {
        self.devices.get(usize::from(channel.0)).is_some_and(Device::is_up)
    }

    /// The devices that are down now, with what went wrong.
    pub fn faults(&self) -> impl Iterator<Item = (ChannelId, DeviceFault)> + '_ {
        self.devices
            .iter()
            .enumerate()
            .filter(|(_, d)| !d.is_up())
            .filter_map(|(i, d)| d.last_fault().map(|f| (ChannelId(i as u16), f)))
    }

    /// The last fault of the device on `channel`, even if it has recovered since.
    pub fn last_fault(&self, channel: ChannelId) -> Option<DeviceFault> {
        self.devices.get(usize::from(channel.0)).and_then(Device::last_fault)
    }

    /// One tick for a card that is part of a larger one: device *n* exchanges
    /// `io.tx[first + n]` and `io.rx[first + n]` and raises its events as channel
    /// `first + n`, appended to `io.events` (which this does not clear). In slave mode this is
    /// how a combined card ticks the sound devices right after the card that is its clock;
    /// devices beyond the end of `io` are left alone. `Card::tick` is `tick_at(io, 0)` after
    /// clearing the events.
    pub fn tick_at(&mut self, io: &mut TickIo, first: u16) {
        let clock = match self.clocking {
            Clocking::Master => self.wait_for_clock(),
            Clocking::Slave => None,
        };
        let now = Instant::now();
        let first = usize::from(first);
        for (i, d) in self.devices.iter_mut().enumerate() {
            let slot = first + i;
            let Ok(channel) = u16::try_from(slot) else { break };
            let (Some(tx), Some(rx)) = (io.tx.get(slot), io.rx.get_mut(slot)) else { break };
            d.retry_if_due(self.opener.as_mut(), &self.params, now, self.reopen_interval);
            if let Err(f) = d.exchange(tx, rx, clock == Some(i), &self.ring) {
                d.fail(f, now, self.reopen_interval);
                rx.fill(self.info.channels[i].law.silence());
            }
            d.drain_events(io, ChannelId(channel));
        }
    }

    /// Master mode: waits for the clock device, or for the wall clock if none is up.
    fn wait_for_clock(&mut self) -> Option<usize> {
        let Some(clock) = self.devices.iter().position(Device::is_up) else {
            self.pacer.pace();
            return None;
        };
        self.pacer.next = None;
        match self.devices[clock].wait_period(self.stall_timeout_ms) {
            Ok(()) => Some(clock),
            Err(f) => {
                self.devices[clock].fail(f, Instant::now(), self.reopen_interval);
                None
            }
        }
    }
}

impl Card for SoundCard {
    fn info(&self) -> &CardInfo {
        &self.info
    }

    fn tick(&mut self, io: &mut TickIo) -> Result<(), CardError> {
        io.events.clear();
        io.events_lost = 0;
        self.tick_at(io, 0);
        Ok(())
    }

    fn command(&mut self, channel: ChannelId, command: LineCommand) -> Result<(), CardError> {
        let index = usize::from(channel.0);
        let kind = self.info.channels.get(index).ok_or(CardError::NoSuchChannel(channel))?.kind;
        self.devices[index].command(command).map_err(|()| CardError::BadCommand {
            channel,
            kind: kind.name(),
            command,
        })
    }
}
