//! An in-memory stand-in for the DAHDI kernel, for tests of everything above the descriptor
//! layer (this crate's and the daemon's).
//!
//! A [`FakeDahdi`] holds spans and channels the way the kernel does; [`FakeDahdi::open`] gives
//! an unbound descriptor that `DAHDI_SPECIFY` binds to a channel, exactly like
//! `/dev/dahdi/channel`. Like the kernel, a read or write on a channel with events queued fails
//! with ELAST until the events are drained. Tests script what reads return (blocks, short
//! blocks, errors), queue events, set span alarms and look at what was written and which
//! ioctls were made.
//!
//! A descriptor that is not bound to a channel stands for `/dev/dahdi/ctl`: it takes
//! `DAHDI_SPANCONFIG`, `DAHDI_CHANCONFIG`, `DAHDI_STARTUP` and `DAHDI_SHUTDOWN` with the
//! kernel's checks (the span's line compatibility, the channel's signalling capabilities),
//! records each call in order ([`FakeDahdi::ctl_calls`]) and fails on demand, including with
//! EBUSY while a span runs ([`FakeDahdi::refuse_while_running`]).
//!
//! Reading, writing and taking events allocate nothing, so the no-allocation test of the
//! card's tick can run on the fake.

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use libc::c_int;

use crate::abi::*;
use crate::fd::{errno, DahdiFd};

/// What the next read on a fake channel returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FakeRead {
    /// `len` bytes, all `fill` (a short read when `len` is under the block size).
    Block { fill: u8, len: usize },
    /// One HDLC frame, as a D-channel delivers it (with its two FCS bytes).
    Frame(Vec<u8>),
    /// The read fails with this errno.
    Error(i32),
    /// This event arrives just before the read, which therefore fails with ELAST (the event
    /// stays queued until `DAHDI_GETEVENT` takes it).
    Event(c_int),
}

/// What the next write on a fake channel does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FakeWrite {
    /// Accepts only this many bytes.
    Short(usize),
    /// Fails with this errno.
    Error(i32),
}

/// The signalling an E1 channel of a wct4xxp-like card supports.
pub const E1_SIGCAP: c_int = DAHDI_SIG_CLEAR | DAHDI_SIG_CAS | DAHDI_SIG_EM_E1 | DAHDI_SIG_HARDHDLC;
/// The signalling a port fitted with an FXS module supports (DAHDI runs FXO signalling
/// towards the phone).
pub const FXS_MODULE_SIGCAP: c_int = DAHDI_SIG_FXOLS | DAHDI_SIG_FXOGS | DAHDI_SIG_FXOKS;
/// The signalling a port fitted with an FXO module supports (FXS signalling towards the
/// exchange).
pub const FXO_MODULE_SIGCAP: c_int = DAHDI_SIG_FXSLS | DAHDI_SIG_FXSGS | DAHDI_SIG_FXSKS;
/// The line configuration bits an E1 span accepts.
pub const E1_LINECOMPAT: c_int = DAHDI_CONFIG_AMI | DAHDI_CONFIG_HDB3 | DAHDI_CONFIG_CCS | DAHDI_CONFIG_CRC4;

/// One call made on the control device, in the order made (failed ones included).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CtlCall {
    SpanConfig(DahdiLineConfig),
    ChanConfig(DahdiChanConfig),
    Startup(c_int),
    Shutdown(c_int),
}

/// A fake span's configuration, as tests see it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FakeSpanState {
    pub lineconfig: c_int,
    pub lbo: c_int,
    /// The timing priority the last `DAHDI_SPANCONFIG` gave.
    pub sync: c_int,
    pub running: bool,
}

/// The state of one fake channel, as tests see it.
#[derive(Clone, Debug)]
pub struct FakeChannelState {
    pub spanno: c_int,
    pub chanpos: c_int,
    pub sigtype: c_int,
    /// What `DAHDI_CHANCONFIG` may set (for a channel added configured: its signalling).
    pub sigcap: c_int,
    pub name: String,
    /// The last `DAHDI_SETLAW` value.
    pub law: c_int,
    /// The last `DAHDI_SETLINEAR` value, if any.
    pub linear: Option<c_int>,
    /// The last `DAHDI_SET_BLOCKSIZE` value, if any.
    pub blocksize: Option<c_int>,
    /// The last `DAHDI_SET_BUFINFO` value, if any.
    pub bufinfo: Option<DahdiBufferInfo>,
    /// How many descriptors were bound to the channel.
    pub specified: u32,
    /// Every `DAHDI_HOOK` value, in order.
    pub hooks: Vec<c_int>,
    /// Successful writes, and the first bytes of the last one (up to 160).
    pub writes: u64,
    pub last_write: [u8; 160],
    pub last_write_len: usize,
    /// Frames written on an HDLC channel, in order.
    pub frames: Vec<Vec<u8>>,
    /// When the read script is empty: `Some(b)` delivers endless full blocks of `b` (a running
    /// channel), `None` answers EAGAIN (no block yet).
    pub stream: Option<u8>,
    reads: VecDeque<FakeRead>,
    writes_script: VecDeque<FakeWrite>,
    events: VecDeque<c_int>,
    /// `(operation, errno)`: the next time the named ioctl is made it fails with errno.
    failures: Vec<(&'static str, i32)>,
}

impl FakeChannelState {
    /// Events still queued.
    pub fn pending_events(&self) -> usize {
        self.events.len()
    }
}

#[derive(Clone, Debug, Default)]
struct FakeSpan {
    name: String,
    desc: String,
    alarms: c_int,
    linecompat: c_int,
    state: FakeSpanState,
    /// SPANCONFIG and CHANCONFIG answer EBUSY while the span runs.
    refuse_running: bool,
    /// `(operation, errno)`: the next time the named span ioctl is made it fails with errno.
    failures: Vec<(&'static str, i32)>,
}

impl FakeSpan {
    fn take_failure(&mut self, op: &str) -> io::Result<()> {
        match self.failures.iter().position(|(o, _)| *o == op) {
            Some(i) => Err(errno(self.failures.remove(i).1)),
            None => Ok(()),
        }
    }
}

#[derive(Debug, Default)]
struct System {
    spans: BTreeMap<c_int, FakeSpan>,
    channels: BTreeMap<c_int, FakeChannelState>,
    /// The last `DAHDI_SPANSTAT` span numbers asked for, counted.
    span_stats: u64,
    ctl_calls: Vec<CtlCall>,
}

/// A fake DAHDI kernel shared by the descriptors opened on it.
#[derive(Clone, Debug, Default)]
pub struct FakeDahdi {
    system: Arc<Mutex<System>>,
}

impl FakeDahdi {
    pub fn new() -> FakeDahdi {
        FakeDahdi::default()
    }

    fn lock(&self) -> MutexGuard<'_, System> {
        // A test that panicked while holding the lock leaves consistent data behind: every
        // method finishes its changes before it could panic.
        self.system.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a span (an analog one: it accepts no line configuration bits).
    pub fn add_span(&self, spanno: c_int, name: &str, desc: &str) {
        self.lock()
            .spans
            .insert(spanno, FakeSpan { name: name.into(), desc: desc.into(), ..FakeSpan::default() });
    }

    /// Adds an E1 span with 31 unconfigured channels numbered from `first_channo`, as a
    /// wct4xxp card registers them before dahdi_cfg runs.
    pub fn add_e1_span(&self, spanno: c_int, first_channo: c_int, name: &str, desc: &str) {
        self.lock().spans.insert(
            spanno,
            FakeSpan {
                name: name.into(),
                desc: desc.into(),
                linecompat: E1_LINECOMPAT,
                ..FakeSpan::default()
            },
        );
        for pos in 1..=31 {
            self.add_channel(first_channo + pos - 1, spanno, pos, DAHDI_SIG_NONE);
            self.set_sigcap(first_channo + pos - 1, E1_SIGCAP);
        }
    }

    /// Adds a channel configured with `sigtype` at position `chanpos` of span `spanno`.
    pub fn add_channel(&self, channo: c_int, spanno: c_int, chanpos: c_int, sigtype: c_int) {
        let name = {
            let sys = self.lock();
            let span = sys.spans.get(&spanno).map_or("FAKE".to_string(), |s| s.name.clone());
            format!("{span}/{chanpos}")
        };
        self.lock().channels.insert(
            channo,
            FakeChannelState {
                spanno,
                chanpos,
                sigtype,
                sigcap: sigtype,
                name,
                law: DAHDI_LAW_DEFAULT,
                linear: None,
                blocksize: None,
                bufinfo: None,
                specified: 0,
                hooks: Vec::new(),
                writes: 0,
                last_write: [0; 160],
                last_write_len: 0,
                frames: Vec::new(),
                stream: None,
                reads: VecDeque::new(),
                writes_script: VecDeque::new(),
                events: VecDeque::new(),
                failures: Vec::new(),
            },
        );
    }

    /// An unbound descriptor, as opening `/dev/dahdi/channel` (or `/dev/dahdi/ctl`) gives.
    pub fn open(&self) -> io::Result<FakeFd> {
        Ok(FakeFd { system: self.system.clone(), channo: None })
    }

    /// Runs `f` on a channel's state; panics if the channel does not exist (a test mistake).
    pub fn with_channel<R>(&self, channo: c_int, f: impl FnOnce(&mut FakeChannelState) -> R) -> R {
        let mut sys = self.lock();
        let ch =
            sys.channels.get_mut(&channo).unwrap_or_else(|| panic!("fake channel {channo} does not exist"));
        f(ch)
    }

    /// A copy of a channel's state.
    pub fn channel(&self, channo: c_int) -> FakeChannelState {
        self.with_channel(channo, |c| c.clone())
    }

    /// Scripts the next read on a channel.
    pub fn push_read(&self, channo: c_int, read: FakeRead) {
        self.with_channel(channo, |c| c.reads.push_back(read));
    }

    /// Scripts the next write on a channel.
    pub fn push_write(&self, channo: c_int, write: FakeWrite) {
        self.with_channel(channo, |c| c.writes_script.push_back(write));
    }

    /// Queues an event on a channel.
    pub fn push_event(&self, channo: c_int, event: c_int) {
        self.with_channel(channo, |c| c.events.push_back(event));
    }

    /// Makes a channel deliver endless blocks of `fill` (or nothing, with `None`).
    pub fn set_stream(&self, channo: c_int, fill: Option<u8>) {
        self.with_channel(channo, |c| c.stream = fill);
    }

    /// Makes the next `op` ioctl (e.g. `"DAHDI_HOOK"`) on a channel fail with `errno`.
    pub fn fail_next(&self, channo: c_int, op: &'static str, code: i32) {
        self.with_channel(channo, |c| c.failures.push((op, code)));
    }

    /// Sets a span's alarm bits and, like the kernel, queues DAHDI_EVENT_ALARM (or NOALARM when
    /// `bits` is 0) on every channel of the span.
    pub fn set_span_alarms(&self, spanno: c_int, bits: c_int) {
        let mut sys = self.lock();
        if let Some(span) = sys.spans.get_mut(&spanno) {
            span.alarms = bits;
        }
        let event = if bits == 0 { DAHDI_EVENT_NOALARM } else { DAHDI_EVENT_ALARM };
        for ch in sys.channels.values_mut().filter(|c| c.spanno == spanno) {
            ch.events.push_back(event);
        }
    }

    /// Sets a span's alarm bits without queueing events (what a poll would find).
    pub fn set_span_alarm_bits(&self, spanno: c_int, bits: c_int) {
        if let Some(span) = self.lock().spans.get_mut(&spanno) {
            span.alarms = bits;
        }
    }

    /// How many `DAHDI_SPANSTAT` calls were made.
    pub fn span_stat_calls(&self) -> u64 {
        self.lock().span_stats
    }

    /// Sets what signalling `DAHDI_CHANCONFIG` may give a channel (the module fitted).
    pub fn set_sigcap(&self, channo: c_int, sigcap: c_int) {
        self.with_channel(channo, |c| c.sigcap = sigcap);
    }

    /// A span's configuration; panics if the span does not exist (a test mistake).
    pub fn span(&self, spanno: c_int) -> FakeSpanState {
        let sys = self.lock();
        sys.spans
            .get(&spanno)
            .map(|s| s.state.clone())
            .unwrap_or_else(|| panic!("fake span {spanno} does not exist"))
    }

    /// Makes the next `op` (`"DAHDI_SPANCONFIG"`, `"DAHDI_STARTUP"`, `"DAHDI_SHUTDOWN"` or
    /// `"DAHDI_SPANSTAT"`) for a span fail with `errno`. A channel's `DAHDI_CHANCONFIG` fails
    /// with [`FakeDahdi::fail_next`].
    pub fn fail_next_span(&self, spanno: c_int, op: &'static str, code: i32) {
        if let Some(span) = self.lock().spans.get_mut(&spanno) {
            span.failures.push((op, code));
        }
    }

    /// Makes `DAHDI_SPANCONFIG` and `DAHDI_CHANCONFIG` answer EBUSY while the span runs, as a
    /// driver does that will not reconfigure a span in service. (Most DAHDI drivers apply the
    /// new settings to a running span at once.)
    pub fn refuse_while_running(&self, spanno: c_int) {
        if let Some(span) = self.lock().spans.get_mut(&spanno) {
            span.refuse_running = true;
        }
    }

    /// Every call made on the control device so far, in order.
    pub fn ctl_calls(&self) -> Vec<CtlCall> {
        self.lock().ctl_calls.clone()
    }
}

/// A descriptor on a [`FakeDahdi`].
#[derive(Debug)]
pub struct FakeFd {
    system: Arc<Mutex<System>>,
    channo: Option<c_int>,
}

impl FakeFd {
    fn lock(&self) -> MutexGuard<'_, System> {
        self.system.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the bound channel, or fails like the kernel does on an unbound descriptor.
    fn bound<R>(
        &mut self,
        op: &'static str,
        f: impl FnOnce(&mut FakeChannelState) -> io::Result<R>,
    ) -> io::Result<R> {
        let channo = self.channo.ok_or_else(|| errno(libc::EINVAL))?;
        let mut sys = self.lock();
        let ch = sys.channels.get_mut(&channo).ok_or_else(|| errno(libc::ENODEV))?;
        if let Some(i) = ch.failures.iter().position(|(o, _)| *o == op) {
            let (_, code) = ch.failures.remove(i);
            return Err(errno(code));
        }
        f(ch)
    }
}

fn is_hdlc(sigtype: c_int) -> bool {
    sigtype & DAHDI_SIG_HDLCRAW == DAHDI_SIG_HDLCRAW || sigtype == DAHDI_SIG_HARDHDLC
}

impl DahdiFd for FakeFd {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.bound("read", |ch| {
            if !ch.events.is_empty() {
                return Err(errno(ELAST));
            }
            match ch.reads.pop_front() {
                Some(FakeRead::Event(event)) => {
                    ch.events.push_back(event);
                    Err(errno(ELAST))
                }
                Some(FakeRead::Block { fill, len }) => {
                    let n = len.min(buf.len());
                    buf[..n].fill(fill);
                    Ok(n)
                }
                Some(FakeRead::Frame(frame)) => {
                    let n = frame.len().min(buf.len());
                    buf[..n].copy_from_slice(&frame[..n]);
                    Ok(n)
                }
                Some(FakeRead::Error(code)) => Err(errno(code)),
                None => match ch.stream {
                    Some(fill) => {
                        let block = usize::try_from(ch.blocksize.unwrap_or(160)).unwrap_or(160);
                        let n = block.min(buf.len());
                        buf[..n].fill(fill);
                        Ok(n)
                    }
                    None => Err(io::Error::from(io::ErrorKind::WouldBlock)),
                },
            }
        })
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.bound("write", |ch| {
            if !ch.events.is_empty() {
                return Err(errno(ELAST));
            }
            let n = match ch.writes_script.pop_front() {
                Some(FakeWrite::Short(n)) => n.min(buf.len()),
                Some(FakeWrite::Error(code)) => return Err(errno(code)),
                None => buf.len(),
            };
            ch.writes += 1;
            let kept = n.min(ch.last_write.len());
            ch.last_write[..kept].copy_from_slice(&buf[..kept]);
            ch.last_write_len = kept;
            if is_hdlc(ch.sigtype) {
                ch.frames.push(buf[..n].to_vec());
            }
            Ok(n)
        })
    }

    fn specify(&mut self, channo: c_int) -> io::Result<()> {
        let mut sys = self.lock();
        let ch = sys.channels.get_mut(&channo).ok_or_else(|| errno(libc::ENXIO))?;
        if let Some(i) = ch.failures.iter().position(|(o, _)| *o == "DAHDI_SPECIFY") {
            let (_, code) = ch.failures.remove(i);
            return Err(errno(code));
        }
        ch.specified += 1;
        drop(sys);
        self.channo = Some(channo);
        Ok(())
    }

    fn set_blocksize(&mut self, bytes: c_int) -> io::Result<()> {
        self.bound("DAHDI_SET_BLOCKSIZE", |ch| {
            if !(16..=DAHDI_MAX_BLOCKSIZE).contains(&bytes) {
                return Err(errno(libc::EINVAL));
            }
            ch.blocksize = Some(bytes);
            Ok(())
        })
    }

    fn set_bufinfo(&mut self, info: &DahdiBufferInfo) -> io::Result<()> {
        self.bound("DAHDI_SET_BUFINFO", |ch| {
            if info.bufsize < 16
                || info.bufsize > DAHDI_MAX_BLOCKSIZE
                || info.bufsize * info.numbufs > DAHDI_MAX_BUF_SPACE
            {
                return Err(errno(libc::EINVAL));
            }
            ch.bufinfo = Some(*info);
            ch.blocksize = Some(info.bufsize);
            Ok(())
        })
    }

    fn set_law(&mut self, law: c_int) -> io::Result<()> {
        self.bound("DAHDI_SETLAW", |ch| {
            if !(0..=DAHDI_LAW_ALAW).contains(&law) {
                return Err(errno(libc::EINVAL));
            }
            ch.law = law;
            Ok(())
        })
    }

    fn set_linear(&mut self, linear: c_int) -> io::Result<()> {
        self.bound("DAHDI_SETLINEAR", |ch| {
            if is_hdlc(ch.sigtype) {
                return Err(errno(libc::EINVAL));
            }
            ch.linear = Some(linear);
            Ok(())
        })
    }

    fn get_params(&mut self, channo: c_int) -> io::Result<DahdiParams> {
        // Like the kernel: the bound channel, or on an unbound descriptor (the control
        // device) the channel asked for.
        let target = match self.channo {
            Some(bound) => bound,
            None if channo > 0 => channo,
            None => return Err(errno(libc::EINVAL)),
        };
        let mut sys = self.lock();
        let missing = if self.channo.is_some() { libc::ENODEV } else { libc::EINVAL };
        let ch = sys.channels.get_mut(&target).ok_or_else(|| errno(missing))?;
        if let Some(i) = ch.failures.iter().position(|(o, _)| *o == "DAHDI_GET_PARAMS") {
            let (_, code) = ch.failures.remove(i);
            return Err(errno(code));
        }
        {
            let mut p = DahdiParams::zeroed();
            p.channo = target;
            p.spanno = ch.spanno;
            p.chanpos = ch.chanpos;
            p.sigtype = ch.sigtype;
            p.sigcap = ch.sigcap;
            p.curlaw = if ch.law == DAHDI_LAW_DEFAULT { DAHDI_LAW_ALAW } else { ch.law };
            let name = ch.name.as_bytes();
            let n = name.len().min(p.name.len() - 1);
            p.name[..n].copy_from_slice(&name[..n]);
            Ok(p)
        }
    }

    fn hook(&mut self, value: c_int) -> io::Result<()> {
        self.bound("DAHDI_HOOK", |ch| {
            if !(DAHDI_ONHOOK..=DAHDI_RINGOFF).contains(&value) {
                return Err(errno(libc::EINVAL));
            }
            ch.hooks.push(value);
            Ok(())
        })
    }

    fn get_event(&mut self) -> io::Result<c_int> {
        self.bound("DAHDI_GETEVENT", |ch| Ok(ch.events.pop_front().unwrap_or(DAHDI_EVENT_NONE)))
    }

    fn span_stat(&mut self, spanno: c_int) -> io::Result<DahdiSpanInfo> {
        let mut sys = self.lock();
        sys.span_stats += 1;
        let spanno = match (spanno, self.channo) {
            (0, Some(channo)) => sys.channels.get(&channo).map_or(0, |c| c.spanno),
            (n, _) => n,
        };
        sys.spans.get_mut(&spanno).ok_or_else(|| errno(libc::EINVAL))?.take_failure("DAHDI_SPANSTAT")?;
        let span = sys.spans.get(&spanno).ok_or_else(|| errno(libc::EINVAL))?;
        let mut info = DahdiSpanInfo::request(spanno);
        copy_text(&mut info.name, &span.name);
        copy_text(&mut info.desc, &span.desc);
        info.alarms = span.alarms;
        info.lineconfig = span.state.lineconfig;
        info.lbo = span.state.lbo;
        info.linecompat = span.linecompat;
        let total = sys.channels.values().filter(|c| c.spanno == spanno).count();
        // Like the kernel: `numchans` counts the channels that have signalling configured.
        let configured =
            sys.channels.values().filter(|c| c.spanno == spanno && c.sigtype != DAHDI_SIG_NONE).count();
        info.totalchans = c_int::try_from(total).unwrap_or(c_int::MAX);
        info.numchans = c_int::try_from(configured).unwrap_or(c_int::MAX);
        info.totalspans = c_int::try_from(sys.spans.len()).unwrap_or(c_int::MAX);
        Ok(info)
    }

    fn span_config(&mut self, config: &DahdiLineConfig) -> io::Result<()> {
        let mut sys = self.lock();
        sys.ctl_calls.push(CtlCall::SpanConfig(*config));
        let span = sys.spans.get_mut(&config.span).ok_or_else(|| errno(libc::ENXIO))?;
        span.take_failure("DAHDI_SPANCONFIG")?;
        // The kernel's check: every framing and coding bit asked for must be supported.
        let wanted = config.lineconfig & 0x1ff0;
        if wanted & span.linecompat != wanted {
            return Err(errno(libc::EINVAL));
        }
        if span.refuse_running && span.state.running {
            return Err(errno(libc::EBUSY));
        }
        span.state.lineconfig = config.lineconfig;
        span.state.lbo = config.lbo;
        span.state.sync = config.sync;
        Ok(())
    }

    fn chan_config(&mut self, config: &DahdiChanConfig) -> io::Result<()> {
        let mut sys = self.lock();
        sys.ctl_calls.push(CtlCall::ChanConfig(*config));
        let ch = sys.channels.get_mut(&config.chan).ok_or_else(|| errno(libc::EINVAL))?;
        let spanno = ch.spanno;
        if let Some(i) = ch.failures.iter().position(|(o, _)| *o == "DAHDI_CHANCONFIG") {
            let (_, code) = ch.failures.remove(i);
            return Err(errno(code));
        }
        // The kernel's check: a channel that can run clear can also run the HDLC modes and
        // cross-connects, which DAHDI does itself.
        let mut caps = ch.sigcap;
        if caps & DAHDI_SIG_CLEAR != 0 {
            caps |= DAHDI_SIG_HDLCRAW | DAHDI_SIG_HDLCFCS | DAHDI_SIG_HDLCNET | DAHDI_SIG_DACS;
        }
        if caps & config.sigtype != config.sigtype {
            return Err(errno(libc::EINVAL));
        }
        let busy = sys.spans.get(&spanno).is_some_and(|s| s.refuse_running && s.state.running);
        if busy {
            return Err(errno(libc::EBUSY));
        }
        if let Some(ch) = sys.channels.get_mut(&config.chan) {
            ch.sigtype = config.sigtype;
        }
        Ok(())
    }

    fn startup(&mut self, spanno: c_int) -> io::Result<()> {
        let mut sys = self.lock();
        sys.ctl_calls.push(CtlCall::Startup(spanno));
        let span = sys.spans.get_mut(&spanno).ok_or_else(|| errno(libc::ENXIO))?;
        span.take_failure("DAHDI_STARTUP")?;
        span.state.running = true;
        Ok(())
    }

    fn shutdown(&mut self, spanno: c_int) -> io::Result<()> {
        let mut sys = self.lock();
        sys.ctl_calls.push(CtlCall::Shutdown(spanno));
        let span = sys.spans.get_mut(&spanno).ok_or_else(|| errno(libc::ENXIO))?;
        span.take_failure("DAHDI_SHUTDOWN")?;
        span.state.running = false;
        // Like the kernel: shutting a span down unconfigures its channels.
        for ch in sys.channels.values_mut().filter(|c| c.spanno == spanno) {
            ch.sigtype = DAHDI_SIG_NONE;
        }
        Ok(())
    }
}

fn copy_text<const N: usize>(dst: &mut [u8; N], text: &str) {
    let n = text.len().min(N - 1);
    dst[..n].copy_from_slice(&text.as_bytes()[..n]);
}
