//! [`DahdiCard`]: a set of DAHDI channels driven as one [`Card`].
//!
//! Every channel gets its own descriptor on `/dev/dahdi/channel`, bound with `DAHDI_SPECIFY`,
//! with a 160-byte block (20 ms of G.711), the channel kept in its companding law (we exchange
//! G.711 bytes; `DAHDI_SETLINEAR 0`) and an immediate buffer policy with a few buffers. The
//! hardware is the clock: [`Card::tick`] writes the blocks to send, then waits in poll(2) until
//! every channel has delivered its next block, so one tick takes as long as the card's 20 ms.
//!
//! E1 D-channels are opened and checked with the others but carry HDLC frames, not audio:
//! [`DahdiCard::take_dchannels`] hands them to the control plane, and their blocks in
//! [`TickIo`] stay silent.

use std::io;
use std::time::{Duration, Instant};

use libc::c_int;
use switchboard_driver_api::{
    Alarms, Block, Card, CardError, CardInfo, ChannelEvent, ChannelId, ChannelInfo, ChannelKind, Law,
    LineCommand, LineEvent, SpanInfo, SpanKind, TickIo, BLOCK_SAMPLES, MAX_EVENTS_PER_TICK,
};

use crate::abi::*;
use crate::dchan::DChannel;
use crate::error::DahdiError;
use crate::fd::{self, ChannelFile, DahdiFd, CHANNEL_DEVICE};
use crate::signal::{alarms_from_bits, expected_signalling, hook_value, map_event, signalling_fits, Mapped};

/// Bytes per block: 160 samples of one byte each.
const BLOCK_BYTES: c_int = BLOCK_SAMPLES as c_int;
/// Buffers of a D-channel: HDLC frames up to 1024 bytes, 32 of them, as a PRI stack expects.
const DCHAN_BUFSIZE: c_int = 1024;
const DCHAN_NUMBUFS: c_int = 32;
/// How many times one read or write is retried after draining events (ELAST) before the
/// channel is left for the next pass: a channel whose event queue refills as fast as it is
/// drained must not hold up the others.
const ELAST_RETRIES: u32 = 4;

/// One channel to open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelSpec {
    /// DAHDI's channel number (the N in `/proc/dahdi` and system.conf), from 1.
    pub channo: u32,
    /// What the channel is used for.
    pub kind: ChannelKind,
    /// The law the channel carries (ignored for D-channels).
    pub law: Law,
}

/// Tuning of a [`DahdiCard`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardOptions {
    /// The generic channel device.
    pub channel_device: std::path::PathBuf,
    /// Buffers per audio channel (DAHDI's `numbufs`). More buffers ride out a late engine at
    /// the cost of latency when the engine gets ahead; 4 is 80 ms.
    pub audio_buffers: u8,
    /// How long a tick waits for a channel's block before sending silence up for it. The
    /// card delivers every 20 ms, so several ticks' worth means the channel is stuck.
    pub stall_timeout: Duration,
    /// Every this many ticks the card reads every span's status again, so a span that
    /// recovered without telling (or whose NOALARM event was lost) is noticed. 50 is a second.
    pub alarm_poll_ticks: u32,
}

impl Default for CardOptions {
    fn default() -> CardOptions {
        CardOptions {
            channel_device: CHANNEL_DEVICE.into(),
            audio_buffers: 4,
            stall_timeout: Duration::from_millis(100),
            alarm_poll_ticks: 50,
        }
    }
}

/// What to open: the card's name and its channels in port order (the first is port 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardSpec {
    pub name: String,
    pub channels: Vec<ChannelSpec>,
    pub options: CardOptions,
}

/// Counters of the things a tick had to work around. They only grow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CardStats {
    pub ticks: u64,
    /// Channel-ticks filled with silence because the channel's block did not come in time.
    pub stalls: u64,
    /// Reads that returned less than a block (the rest was read on the same tick).
    pub short_reads: u64,
    /// Reads that failed with an error other than EAGAIN or ELAST.
    pub read_errors: u64,
    /// Writes refused because the channel's buffers were full (the engine ran ahead).
    pub tx_overruns: u64,
    /// Writes that accepted less than a block.
    pub short_writes: u64,
    /// Writes that failed with an error other than EAGAIN or ELAST.
    pub write_errors: u64,
    /// Events read with `DAHDI_GETEVENT`.
    pub events: u64,
    /// `DAHDI_GETEVENT` or `DAHDI_SPANSTAT` calls that failed.
    pub ioctl_errors: u64,
    /// Channels whose device went away (DAHDI_EVENT_REMOVED or ENODEV).
    pub removed: u64,
}

struct AudioChannel<F> {
    fd: F,
    id: ChannelId,
    kind: ChannelKind,
    /// Index into `DahdiCard::spans`.
    span: usize,
    silence: u8,
    /// Bytes of this tick's block received so far.
    filled: usize,
    done: bool,
    /// The device went away: the channel sends nothing and receives silence from now on.
    gone: bool,
}

struct SpanSlot {
    spanno: c_int,
    /// The channel span alarm events are raised on: the span's first port.
    first_channel: ChannelId,
    /// An audio channel of the span whose descriptor answers `DAHDI_SPANSTAT`.
    stat_channel: Option<usize>,
    alarms: Alarms,
    /// The span's status must be read at the end of this tick.
    dirty: bool,
}

/// A DAHDI card: analog ports and E1 spans, as channels of one [`Card`].
pub struct DahdiCard<F: DahdiFd = ChannelFile> {
    info: CardInfo,
    audio: Vec<AudioChannel<F>>,
    /// For each channel id, its index in `audio` (None for D-channels).
    audio_index: Vec<Option<usize>>,
    dchannels: Vec<DChannel<F>>,
    spans: Vec<SpanSlot>,
    pollfds: Vec<libc::pollfd>,
    options: CardOptions,
    stats: CardStats,
}

impl DahdiCard<ChannelFile> {
    /// Opens the channels of `spec` on the real device.
    pub fn open(spec: &CardSpec) -> Result<DahdiCard<ChannelFile>, DahdiError> {
        let path = spec.options.channel_device.clone();
        DahdiCard::open_with(spec, |channo| {
            ChannelFile::open(&path).map_err(|source| DahdiError::Open { path: path.clone(), channo, source })
        })
    }
}

impl<F: DahdiFd> DahdiCard<F> {
    /// Opens the channels of `spec` with descriptors from `open` (called once per channel
    /// with the channel number, before `DAHDI_SPECIFY`); tests pass a fake here.
    pub fn open_with(
        spec: &CardSpec,
        mut open: impl FnMut(u32) -> Result<F, DahdiError>,
    ) -> Result<DahdiCard<F>, DahdiError> {
        check_spec(spec)?;
        let mut channels = Vec::with_capacity(spec.channels.len());
        let mut spans_info: Vec<SpanInfo> = Vec::new();
        let mut spans: Vec<SpanSlot> = Vec::new();
        let mut audio = Vec::new();
        let mut audio_index = Vec::with_capacity(spec.channels.len());
        let mut dchannels = Vec::new();

        for (i, ch) in spec.channels.iter().enumerate() {
            // check_spec made sure the count fits in a u16.
            let id = ChannelId(i as u16);
            let channo = ch.channo;
            let fail = |op: &'static str| move |source: io::Error| DahdiError::Channel { channo, op, source };
            let mut fd = open(channo)?;
            let dahdi_channo = c_int::try_from(channo).map_err(|_| DahdiError::Channel {
                channo,
                op: "DAHDI_SPECIFY",
                source: io::Error::from(io::ErrorKind::InvalidInput),
            })?;
            fd.specify(dahdi_channo).map_err(fail("DAHDI_SPECIFY"))?;
            // The signalling is checked before anything is changed, so a channel configured
            // for the wrong kind of port gets an error that says so rather than an EINVAL
            // from an ioctl that does not apply to it.
            let params = fd.get_params(dahdi_channo).map_err(fail("DAHDI_GET_PARAMS"))?;
            if !signalling_fits(ch.kind, params.sigtype) {
                return Err(DahdiError::Signalling {
                    channo,
                    kind: ch.kind.name(),
                    found: sig_name(params.sigtype),
                    expected: expected_signalling(ch.kind),
                });
            }
            if ch.kind.carries_audio() {
                fd.set_blocksize(BLOCK_BYTES).map_err(fail("DAHDI_SET_BLOCKSIZE"))?;
                let bufinfo = DahdiBufferInfo {
                    txbufpolicy: DAHDI_POLICY_IMMEDIATE,
                    rxbufpolicy: DAHDI_POLICY_IMMEDIATE,
                    // DAHDI refuses more than 32 buffers; fewer than 2 cannot absorb any jitter.
                    numbufs: c_int::from(spec.options.audio_buffers).clamp(2, DAHDI_MAX_NUM_BUFS),
                    bufsize: BLOCK_BYTES,
                    readbufs: 0,
                    writebufs: 0,
                };
                fd.set_bufinfo(&bufinfo).map_err(fail("DAHDI_SET_BUFINFO"))?;
                fd.set_linear(0).map_err(fail("DAHDI_SETLINEAR"))?;
                let law = match ch.law {
                    Law::Alaw => DAHDI_LAW_ALAW,
                    Law::Ulaw => DAHDI_LAW_MULAW,
                };
                fd.set_law(law).map_err(fail("DAHDI_SETLAW"))?;
            } else {
                let bufinfo = DahdiBufferInfo {
                    txbufpolicy: DAHDI_POLICY_IMMEDIATE,
                    rxbufpolicy: DAHDI_POLICY_IMMEDIATE,
                    numbufs: DCHAN_NUMBUFS,
                    bufsize: DCHAN_BUFSIZE,
                    readbufs: 0,
                    writebufs: 0,
                };
                fd.set_bufinfo(&bufinfo).map_err(fail("DAHDI_SET_BUFINFO"))?;
            }

            let span_kind = match ch.kind {
                ChannelKind::FxoTrunk | ChannelKind::FxsSeat => SpanKind::Analog,
                _ => SpanKind::E1,
            };
            let span = match spans.iter().position(|s| s.spanno == params.spanno) {
                Some(s) => {
                    if spans_info[s].kind != span_kind {
                        return Err(DahdiError::MixedSpan {
                            spanno: params.spanno.unsigned_abs(),
                            channo,
                            first: span_kind_name(spans_info[s].kind),
                            second: ch.kind.name(),
                        });
                    }
                    s
                }
                None => {
                    // The span's own name makes logs readable; a span that will not say is
                    // still usable, so a failure here only costs the name.
                    let name = match fd.span_stat(params.spanno) {
                        Ok(s) if !s.desc().is_empty() => format!("{} \"{}\"", s.name(), s.desc()),
                        _ => format!("DAHDI span {}", params.spanno),
                    };
                    let index = spans.len() as u16;
                    spans_info.push(SpanInfo { index, kind: span_kind, name });
                    spans.push(SpanSlot {
                        spanno: params.spanno,
                        first_channel: id,
                        stat_channel: None,
                        alarms: Alarms::default(),
                        // Read on the first tick, so a span already in alarm is reported.
                        dirty: true,
                    });
                    spans.len() - 1
                }
            };
            let position = u16::try_from(params.chanpos).unwrap_or(0);
            channels.push(ChannelInfo { id, kind: ch.kind, span: span as u16, position, law: ch.law });
            if ch.kind.carries_audio() {
                if spans[span].stat_channel.is_none() {
                    spans[span].stat_channel = Some(audio.len());
                }
                audio_index.push(Some(audio.len()));
                audio.push(AudioChannel {
                    fd,
                    id,
                    kind: ch.kind,
                    span,
                    silence: ch.law.silence(),
                    filled: 0,
                    done: false,
                    gone: false,
                });
            } else {
                audio_index.push(None);
                dchannels.push(DChannel::new(fd, id, channo, span as u16, params.spanno));
            }
        }

        let pollfds = vec![libc::pollfd { fd: -1, events: 0, revents: 0 }; audio.len()];
        Ok(DahdiCard {
            info: CardInfo { name: spec.name.clone(), spans: spans_info, channels },
            audio,
            audio_index,
            dchannels,
            spans,
            pollfds,
            options: spec.options.clone(),
            stats: CardStats::default(),
        })
    }

    /// Hands the E1 D-channels to the caller (the control plane's PRI stack), once: later
    /// calls return an empty list.
    pub fn take_dchannels(&mut self) -> Vec<DChannel<F>> {
        std::mem::take(&mut self.dchannels)
    }

    /// Each span's index on the card and its DAHDI span number, for a
    /// [`SpanMonitor`](crate::alarms::SpanMonitor).
    pub fn span_numbers(&self) -> Vec<(u16, u32)> {
        self.spans.iter().enumerate().map(|(i, s)| (i as u16, s.spanno.unsigned_abs())).collect()
    }

    /// The alarms each span had when last read.
    pub fn span_alarms(&self) -> Vec<Alarms> {
        self.spans.iter().map(|s| s.alarms).collect()
    }

    /// What the ticks so far had to work around.
    pub fn stats(&self) -> CardStats {
        self.stats
    }

    /// Sends this tick's block on every audio channel.
    fn send_all(&mut self, io: &mut TickIo) {
        let mut sink = EventSink { events: &mut io.events, lost: &mut io.events_lost };
        for ch in self.audio.iter_mut().filter(|c| !c.gone) {
            let block: &Block = &io.tx[usize::from(ch.id.0)];
            let mut retries = 0;
            loop {
                match ch.fd.write(block) {
                    Ok(n) => {
                        if n < block.len() {
                            self.stats.short_writes += 1;
                        }
                        break;
                    }
                    Err(e) if fd::is_elast(&e) && retries < ELAST_RETRIES => {
                        retries += 1;
                        drain_events(ch, &mut self.spans, &mut sink, &mut self.stats);
                        if ch.gone {
                            break;
                        }
                    }
                    Err(e) if fd::is_interrupted(&e) && retries < ELAST_RETRIES => retries += 1,
                    // The buffers are full: the engine is ahead of the hardware. Dropping
                    // this block keeps the delay from growing.
                    Err(e) if fd::is_would_block(&e) => {
                        self.stats.tx_overruns += 1;
                        break;
                    }
                    Err(e) => {
                        if fd::is_gone(&e) {
                            mark_gone(ch, &mut self.stats);
                        } else {
                            self.stats.write_errors += 1;
                        }
                        break;
                    }
                }
            }
        }
    }

    /// Reads one block from every audio channel, waiting for the hardware; returns how many
    /// channels delivered a whole block.
    fn receive_all(&mut self, io: &mut TickIo) -> usize {
        for ch in &mut self.audio {
            ch.filled = 0;
            ch.done = ch.gone;
            if ch.gone {
                io.rx[usize::from(ch.id.0)].fill(ch.silence);
            }
        }
        let deadline = Instant::now() + self.options.stall_timeout;
        let mut delivered = 0;
        loop {
            let mut pending = 0;
            let mut sink = EventSink { events: &mut io.events, lost: &mut io.events_lost };
            for ch in self.audio.iter_mut().filter(|c| !c.done) {
                let rx = &mut io.rx[usize::from(ch.id.0)];
                match read_block(ch, rx, &mut self.spans, &mut sink, &mut self.stats) {
                    ReadState::Done => {
                        ch.done = true;
                        delivered += 1;
                    }
                    ReadState::Failed => {
                        rx[ch.filled..].fill(ch.silence);
                        ch.done = true;
                    }
                    ReadState::Pending => pending += 1,
                }
            }
            if pending == 0 {
                break;
            }
            let now = Instant::now();
            if now >= deadline {
                for ch in self.audio.iter_mut().filter(|c| !c.done) {
                    io.rx[usize::from(ch.id.0)][ch.filled..].fill(ch.silence);
                    ch.done = true;
                    self.stats.stalls += 1;
                }
                break;
            }
            self.wait(deadline - now);
        }
        delivered
    }

    /// Waits until a pending channel is readable or has events, or `timeout` passes.
    fn wait(&mut self, timeout: Duration) {
        let mut n = 0;
        let mut unpollable = false;
        for ch in self.audio.iter().filter(|c| !c.done) {
            match ch.fd.poll_fd() {
                Some(fd) => {
                    self.pollfds[n] = libc::pollfd { fd, events: libc::POLLIN | libc::POLLPRI, revents: 0 };
                    n += 1;
                }
                None => unpollable = true,
            }
        }
        // A descriptor without a file (the fake) cannot be waited on: come back soon.
        let timeout = if unpollable { timeout.min(Duration::from_millis(1)) } else { timeout };
        if n == 0 {
            std::thread::sleep(timeout);
            return;
        }
        let ms = c_int::try_from(timeout.as_micros().div_ceil(1000)).unwrap_or(c_int::MAX);
        // SAFETY: `pollfds` holds at least `n` initialised entries and stays alive, unmoved,
        // for the duration of the call. A failure (EINTR) or a timeout needs no handling: the
        // caller reads again and checks its deadline.
        unsafe {
            libc::poll(self.pollfds.as_mut_ptr(), n as libc::nfds_t, ms);
        }
    }

    /// Reads the status of the spans that raised alarm events (or all of them, every
    /// `alarm_poll_ticks`), and raises Alarm or AlarmCleared on each span whose alarms changed.
    fn report_alarms(&mut self, io: &mut TickIo) {
        // `is_multiple_of` is newer than the workspace's minimum Rust version.
        #[allow(clippy::manual_is_multiple_of)]
        let poll_all = self.options.alarm_poll_ticks > 0
            && self.stats.ticks % u64::from(self.options.alarm_poll_ticks) == 0;
        for span in &mut self.spans {
            if !(span.dirty || poll_all) {
                continue;
            }
            span.dirty = false;
            let Some(stat) = span.stat_channel else { continue };
            let ch = &mut self.audio[stat];
            if ch.gone {
                continue;
            }
            match ch.fd.span_stat(span.spanno) {
                Ok(info) => {
                    let alarms = alarms_from_bits(info.alarms);
                    if alarms != span.alarms {
                        span.alarms = alarms;
                        let event =
                            if alarms.any() { LineEvent::Alarm(alarms) } else { LineEvent::AlarmCleared };
                        io.push_event(span.first_channel, event);
                    }
                }
                Err(_) => self.stats.ioctl_errors += 1,
            }
        }
    }
}

impl<F: DahdiFd> Card for DahdiCard<F> {
    fn info(&self) -> &CardInfo {
        &self.info
    }

    fn tick(&mut self, io: &mut TickIo) -> Result<(), CardError> {
        io.events.clear();
        io.events_lost = 0;
        self.stats.ticks += 1;
        if self.audio.is_empty() {
            // Only D-channels: there is no audio to clock the tick, so keep the engine from
            // spinning by pacing it at the block rate.
            std::thread::sleep(Duration::from_micros(switchboard_driver_api::TICK_MICROS));
        }
        self.send_all(io);
        let delivered = self.receive_all(io);
        self.report_alarms(io);
        let live = self.audio.iter().filter(|c| !c.gone).count();
        if live == 0 && !self.audio.is_empty() {
            return Err(CardError::Io(io::Error::new(
                io::ErrorKind::NotConnected,
                "every DAHDI channel of the card was removed",
            )));
        }
        if delivered == 0 && live > 0 {
            return Err(CardError::Io(io::Error::new(
                io::ErrorKind::TimedOut,
                "no DAHDI channel delivered audio in time: is the card's driver loaded and the span running?",
            )));
        }
        Ok(())
    }

    fn command(&mut self, channel: ChannelId, command: LineCommand) -> Result<(), CardError> {
        let index = usize::from(channel.0);
        let kind = self.info.channels.get(index).ok_or(CardError::NoSuchChannel(channel))?.kind;
        let bad = CardError::BadCommand { channel, kind: kind.name(), command };
        let value = hook_value(kind, command).ok_or(bad)?;
        let slot = self.audio_index.get(index).copied().flatten().ok_or(CardError::NoSuchChannel(channel))?;
        let ch = &mut self.audio[slot];
        loop {
            match ch.fd.hook(value) {
                Ok(()) => return Ok(()),
                Err(e) if fd::is_interrupted(&e) => continue,
                Err(e) => return Err(CardError::Io(e)),
            }
        }
    }
}

enum ReadState {
    Done,
    Pending,
    Failed,
}

/// Where drained events go: the tick's event list, borrowed apart from the audio buffers so
/// that a block can be read into while events are added.
struct EventSink<'a> {
    events: &'a mut heapless::Vec<ChannelEvent, MAX_EVENTS_PER_TICK>,
    lost: &'a mut u32,
}

impl EventSink<'_> {
    /// Records an event, counting it as lost when this tick's list is full.
    fn push(&mut self, channel: ChannelId, event: LineEvent) {
        if self.events.push(ChannelEvent { channel, event }).is_err() {
            *self.lost = self.lost.saturating_add(1);
        }
    }
}

/// Reads until the channel's block is complete, it has nothing more for now, or it fails.
/// ELAST (events queued) is handled by draining the events and reading again.
fn read_block<F: DahdiFd>(
    ch: &mut AudioChannel<F>,
    rx: &mut Block,
    spans: &mut [SpanSlot],
    sink: &mut EventSink<'_>,
    stats: &mut CardStats,
) -> ReadState {
    let mut retries = 0;
    loop {
        match ch.fd.read(&mut rx[ch.filled..]) {
            // DAHDI never answers 0 for a non-empty buffer; if it did, spinning on it would
            // stall the tick, so it counts as "nothing yet".
            Ok(0) => return ReadState::Pending,
            Ok(n) => {
                ch.filled += n;
                if ch.filled >= rx.len() {
                    return ReadState::Done;
                }
                stats.short_reads += 1;
            }
            Err(e) if fd::is_elast(&e) => {
                if retries >= ELAST_RETRIES {
                    return ReadState::Pending;
                }
                retries += 1;
                drain_events(ch, spans, sink, stats);
                if ch.gone {
                    return ReadState::Failed;
                }
            }
            Err(e) if fd::is_would_block(&e) => return ReadState::Pending,
            Err(e) if fd::is_interrupted(&e) => {}
            Err(e) => {
                if fd::is_gone(&e) {
                    mark_gone(ch, stats);
                } else {
                    stats.read_errors += 1;
                }
                return ReadState::Failed;
            }
        }
    }
}

/// Reads every queued event of a channel and turns it into line events or span work.
fn drain_events<F: DahdiFd>(
    ch: &mut AudioChannel<F>,
    spans: &mut [SpanSlot],
    sink: &mut EventSink<'_>,
    stats: &mut CardStats,
) {
    // The kernel's queue holds at most DAHDI_MAX_EVENTSIZE events; more in a row means it is
    // being refilled, and the rest can wait for the next read.
    for _ in 0..DAHDI_MAX_EVENTSIZE {
        match ch.fd.get_event() {
            Ok(DAHDI_EVENT_NONE) => return,
            Ok(event) => {
                stats.events += 1;
                match map_event(ch.kind, event) {
                    Mapped::Line(e) => sink.push(ch.id, e),
                    Mapped::SpanAlarm | Mapped::SpanNoAlarm => spans[ch.span].dirty = true,
                    Mapped::Removed => {
                        mark_gone(ch, stats);
                        return;
                    }
                    Mapped::Ignored => {}
                }
            }
            Err(e) if fd::is_interrupted(&e) => {}
            Err(_) => {
                stats.ioctl_errors += 1;
                return;
            }
        }
    }
}

fn mark_gone<F>(ch: &mut AudioChannel<F>, stats: &mut CardStats) {
    if !ch.gone {
        ch.gone = true;
        stats.removed += 1;
    }
}

fn span_kind_name(kind: SpanKind) -> &'static str {
    match kind {
        SpanKind::Analog => "analog",
        SpanKind::E1 => "e1",
        SpanKind::Sound => "sound",
    }
}

/// Refuses specs no card could be built from, before any device is opened.
fn check_spec(spec: &CardSpec) -> Result<(), DahdiError> {
    if spec.channels.is_empty() {
        return Err(DahdiError::NoChannels);
    }
    if spec.channels.len() > usize::from(u16::MAX) {
        return Err(DahdiError::TooManyChannels(spec.channels.len()));
    }
    let mut seen = std::collections::BTreeSet::new();
    for ch in &spec.channels {
        if ch.channo == 0 {
            return Err(DahdiError::ZeroChannel);
        }
        if ch.kind == ChannelKind::Sound {
            return Err(DahdiError::NotDahdi(ch.channo));
        }
        if !seen.insert(ch.channo) {
            return Err(DahdiError::DuplicateChannel(ch.channo));
        }
    }
    Ok(())
}
