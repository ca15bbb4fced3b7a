//! Q.921 (LAPD) on a PRI D-channel: one point-to-point data link, SAPI 0, TEI 0.
//!
//! [`Link`] has no IO and reads no clock. Frames come in through [`Link::handle_frame`] with
//! their FCS, timers run through [`Link::handle_timeout`] with the caller's `now`, and the
//! frames to send (FCS appended) and the layer-3 events come out through
//! [`Link::poll_transmit`] and [`Link::poll_event`]. Sequence numbers are modulo 128 and the
//! window is k frames; acknowledgement is by RR, REJ and piggybacked N(R), and timer recovery
//! polls with an RR command with P=1, as Q.921 (ETSI EN 300 125) describes for state 7 and 8.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::fcs;
use super::Role;

/// The Q.921 system parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Q921Timers {
    /// How long to wait for an acknowledgement before retransmitting or polling.
    pub t200: Duration,
    /// How long the link may be idle before it is polled.
    pub t203: Duration,
    /// How many times T200 may run out before the link is declared failed.
    pub n200: u8,
    /// How many I-frames may be outstanding.
    pub k: u8,
}

impl Default for Q921Timers {
    fn default() -> Self {
        Q921Timers { t200: Duration::from_secs(1), t203: Duration::from_secs(10), n200: 3, k: 7 }
    }
}

/// The data-link states of Q.921 that a PRI link (TEI fixed) uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkState {
    /// State 4, TEI assigned: no multiple-frame operation.
    Released,
    /// State 5: SABME sent, waiting for UA.
    AwaitingEstablishment,
    /// State 6: DISC sent, waiting for UA.
    AwaitingRelease,
    /// State 7: multiple-frame operation established.
    Established,
    /// State 8: established, recovering after T200 ran out.
    TimerRecovery,
}

/// What the data link tells layer 3.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkEvent {
    /// Multiple-frame operation started (DL-ESTABLISH).
    Up,
    /// Multiple-frame operation ended (DL-RELEASE or link failure).
    Down,
    /// The peer re-established a link that was up (it restarted, or recovered from an
    /// error): frames in flight are lost and its layer 3 may have forgotten calls.
    Reset,
    /// A layer-3 message (DL-DATA).
    Data(Vec<u8>),
}

/// Counters for the operator and the tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    pub frames_in: u64,
    pub frames_out: u64,
    /// Frames dropped because the FCS did not match.
    pub bad_fcs: u64,
    /// Frames dropped because the address or control field made no sense.
    pub bad_frames: u64,
    pub t200_expiries: u64,
    pub t203_expiries: u64,
    pub retransmissions: u64,
    /// Times the link was re-established while it was up (by either side).
    pub resets: u64,
    pub failures: u64,
}

/// Why a received frame was not understood.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame too short ({0} octets without FCS)")]
    TooShort(usize),
    #[error("bad address field (EA bits) {0:#04x} {1:#04x}")]
    BadAddress(u8, u8),
    #[error("unknown control field {0:#04x}")]
    UnknownControl(u8),
}

/// A decoded LAPD frame (address fields separate).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    I { ns: u8, nr: u8, p: bool, info: &'a [u8] },
    Rr { nr: u8, pf: bool },
    Rnr { nr: u8, pf: bool },
    Rej { nr: u8, pf: bool },
    Sabme { p: bool },
    Dm { f: bool },
    Ui { info: &'a [u8] },
    Disc { p: bool },
    Ua { f: bool },
    Frmr { f: bool },
    Xid,
}

/// A decoded frame with its address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parsed<'a> {
    pub sapi: u8,
    /// The C/R bit as received.
    pub cr: bool,
    pub tei: u8,
    pub frame: Frame<'a>,
}

const SABME: u8 = 0x6F;
const DM: u8 = 0x0F;
const UI: u8 = 0x03;
const DISC: u8 = 0x43;
const UA: u8 = 0x63;
const FRMR: u8 = 0x87;
const XID: u8 = 0xAF;
const PF: u8 = 0x10;

/// Decodes a frame without its FCS.
pub fn parse(frame: &[u8]) -> Result<Parsed<'_>, FrameError> {
    if frame.len() < 3 {
        return Err(FrameError::TooShort(frame.len()));
    }
    let (a1, a2) = (frame[0], frame[1]);
    // LAPD addresses are two octets: EA=0 on the first, EA=1 on the second.
    if a1 & 0x01 != 0 || a2 & 0x01 != 1 {
        return Err(FrameError::BadAddress(a1, a2));
    }
    let sapi = a1 >> 2;
    let cr = a1 & 0x02 != 0;
    let tei = a2 >> 1;
    let c = frame[2];
    let two = |f: &[u8]| f.get(3).copied().ok_or(FrameError::TooShort(f.len()));
    let frame = if c & 0x01 == 0 {
        let c2 = two(frame)?;
        Frame::I { ns: c >> 1, nr: c2 >> 1, p: c2 & 1 != 0, info: &frame[4..] }
    } else if c & 0x03 == 0x01 {
        let c2 = two(frame)?;
        let (nr, pf) = (c2 >> 1, c2 & 1 != 0);
        match c {
            0x01 => Frame::Rr { nr, pf },
            0x05 => Frame::Rnr { nr, pf },
            0x09 => Frame::Rej { nr, pf },
            other => return Err(FrameError::UnknownControl(other)),
        }
    } else {
        let pf = c & PF != 0;
        match c & !PF {
            SABME => Frame::Sabme { p: pf },
            DM => Frame::Dm { f: pf },
            UI => Frame::Ui { info: &frame[3..] },
            DISC => Frame::Disc { p: pf },
            UA => Frame::Ua { f: pf },
            FRMR => Frame::Frmr { f: pf },
            XID => Frame::Xid,
            other => return Err(FrameError::UnknownControl(other)),
        }
    };
    Ok(Parsed { sapi, cr, tei, frame })
}

fn seq_sub(a: u8, b: u8) -> u8 {
    a.wrapping_sub(b) & 0x7F
}

/// One LAPD data link, TEI 0, SAPI 0.
#[derive(Debug)]
pub struct Link {
    role: Role,
    timers: Q921Timers,
    state: LinkState,
    vs: u8,
    va: u8,
    vr: u8,
    peer_busy: bool,
    reject_exception: bool,
    ack_pending: bool,
    rc: u8,
    t200: Option<Instant>,
    t203: Option<Instant>,
    /// Retry of establishment after the peer released the link: PRI wants the link up always.
    retry: Option<Instant>,
    /// Layer-3 messages: index 0 is the frame numbered V(A); those below V(S)-V(A) have been
    /// sent and wait for acknowledgement, the rest wait for the window to open.
    window: VecDeque<Vec<u8>>,
    control: VecDeque<Vec<u8>>,
    events: VecDeque<LinkEvent>,
    now: Instant,
    stats: LinkStats,
}

impl Link {
    /// A link that starts establishing at once, as both sides of a PRI do.
    pub fn new(role: Role, timers: Q921Timers, now: Instant) -> Link {
        let mut link = Link {
            role,
            timers,
            state: LinkState::Released,
            vs: 0,
            va: 0,
            vr: 0,
            peer_busy: false,
            reject_exception: false,
            ack_pending: false,
            rc: 0,
            t200: None,
            t203: None,
            retry: None,
            window: VecDeque::new(),
            control: VecDeque::new(),
            events: VecDeque::new(),
            now,
            stats: LinkStats::default(),
        };
        link.establish();
        link
    }

    pub fn state(&self) -> LinkState {
        self.state
    }

    pub fn is_up(&self) -> bool {
        matches!(self.state, LinkState::Established | LinkState::TimerRecovery)
    }

    pub fn stats(&self) -> &LinkStats {
        &self.stats
    }

    /// Queues a layer-3 message. Messages queued while the link is down are sent once it
    /// is up, unless the link is reset first.
    pub fn send(&mut self, now: Instant, info: Vec<u8>) {
        self.now = now;
        self.window.push_back(info);
        if self.state == LinkState::Released {
            self.establish();
        }
    }

    /// Releases the link (DL-RELEASE request); it is re-established only by the peer.
    pub fn release(&mut self, now: Instant) {
        self.now = now;
        if self.is_up() || self.state == LinkState::AwaitingEstablishment {
            let was_up = self.is_up();
            self.rc = 0;
            self.u_frame(true, DISC, true);
            self.t200 = Some(now + self.timers.t200);
            self.t203 = None;
            self.state = LinkState::AwaitingRelease;
            if was_up {
                self.events.push_back(LinkEvent::Down);
            }
        }
    }

    pub fn poll_event(&mut self) -> Option<LinkEvent> {
        self.events.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.t200, self.t203, self.retry].into_iter().flatten().min()
    }

    /// Takes a received frame with its two FCS octets.
    pub fn handle_frame(&mut self, now: Instant, raw: &[u8]) {
        self.now = now;
        let Some(body) = fcs::verify(raw) else {
            self.stats.bad_fcs += 1;
            return;
        };
        let parsed = match parse(body) {
            Ok(p) => p,
            Err(_) => {
                self.stats.bad_frames += 1;
                return;
            }
        };
        // Only SAPI 0 (call control) and TEI 0 exist on a PRI; TEI management and other
        // services are not used, so anything else is ignored.
        if parsed.sapi != 0 || parsed.tei != 0 {
            self.stats.bad_frames += 1;
            return;
        }
        self.stats.frames_in += 1;
        // A command from the network has C/R=1, from the user C/R=0.
        let command = parsed.cr == (self.role == Role::User);
        self.dispatch(command, parsed.frame);
    }

    fn dispatch(&mut self, command: bool, frame: Frame<'_>) {
        use LinkState::*;
        match frame {
            Frame::Sabme { p } if command => match self.state {
                Released => {
                    self.u_frame(false, UA, p);
                    self.reset_variables();
                    self.enter_established();
                }
                AwaitingEstablishment => {
                    // Both sides sent SABME at once: answer it and wait for the peer's UA.
                    self.u_frame(false, UA, p);
                }
                AwaitingRelease => self.u_frame(false, DM, p),
                Established | TimerRecovery => {
                    // The peer restarted or recovered: start over from sequence zero.
                    self.u_frame(false, UA, p);
                    self.reset_variables();
                    self.stats.resets += 1;
                    self.state = Established;
                    self.t200 = None;
                    self.t203 = Some(self.now + self.timers.t203);
                    self.events.push_back(LinkEvent::Reset);
                }
            },
            Frame::Ua { f } if !command => match self.state {
                AwaitingEstablishment if f => {
                    self.reset_variables();
                    self.enter_established();
                }
                AwaitingRelease if f => {
                    self.state = Released;
                    self.t200 = None;
                }
                // A UA nobody asked for (Q.921 MDL-ERROR C/D): ignore it.
                _ => {}
            },
            Frame::Dm { f } if !command => match self.state {
                Established | TimerRecovery => {
                    // The peer is in disconnected mode: it lost the link, probably restarted.
                    self.link_failed();
                }
                AwaitingRelease if f => {
                    self.state = Released;
                    self.t200 = None;
                }
                // A refusal while establishing: T200 sends SABME again, since a PRI link is
                // wanted up at all times.
                _ => {}
            },
            Frame::Disc { p } if command => match self.state {
                Established | TimerRecovery => {
                    self.u_frame(false, UA, p);
                    self.go_down();
                    self.retry = Some(self.now + self.timers.t200);
                }
                AwaitingRelease => self.u_frame(false, UA, p),
                Released | AwaitingEstablishment => self.u_frame(false, DM, p),
            },
            Frame::Frmr { .. } if !command => {
                if self.is_up() {
                    self.link_failed();
                }
            }
            Frame::I { ns, nr, p, info } if command => self.receive_i(ns, nr, p, info),
            Frame::Rr { nr, pf } => self.receive_s(command, nr, pf, SKind::Rr),
            Frame::Rnr { nr, pf } => self.receive_s(command, nr, pf, SKind::Rnr),
            Frame::Rej { nr, pf } => self.receive_s(command, nr, pf, SKind::Rej),
            Frame::Ui { .. } | Frame::Xid => {}
            // A command sent as a response or the other way round.
            _ => self.stats.bad_frames += 1,
        }
    }

    fn receive_i(&mut self, ns: u8, nr: u8, p: bool, info: &[u8]) {
        if !self.is_up() {
            if self.state == LinkState::Released && p {
                self.u_frame(false, DM, true);
            }
            return;
        }
        if ns == self.vr {
            self.vr = (self.vr + 1) & 0x7F;
            self.reject_exception = false;
            self.events.push_back(LinkEvent::Data(info.to_vec()));
            if p {
                self.s_frame(false, 0x01, true);
            } else {
                self.ack_pending = true;
            }
        } else if self.reject_exception {
            if p {
                self.s_frame(false, 0x01, true);
            }
        } else {
            self.reject_exception = true;
            self.s_frame(false, 0x09, p);
        }
        if !self.nr_valid(nr) {
            self.link_failed();
            return;
        }
        if self.state == LinkState::Established && !self.peer_busy {
            self.ack_and_time(nr);
        } else {
            self.ack_to(nr);
        }
    }

    fn receive_s(&mut self, command: bool, nr: u8, pf: bool, kind: SKind) {
        if !self.is_up() {
            if self.state == LinkState::Released && command && pf {
                self.u_frame(false, DM, true);
            }
            return;
        }
        if command && pf {
            // An enquiry: answer with our receive state at once.
            self.s_frame(false, 0x01, true);
        }
        self.peer_busy = kind == SKind::Rnr;
        if !self.nr_valid(nr) {
            self.link_failed();
            return;
        }
        if self.state == LinkState::TimerRecovery {
            self.ack_to(nr);
            if !command && pf {
                // The answer to our poll: resume, retransmitting whatever it did not get.
                self.t200 = None;
                self.t203 = Some(self.now + self.timers.t203);
                if self.vs != nr {
                    self.stats.retransmissions += u64::from(seq_sub(self.vs, nr));
                }
                self.vs = nr;
                self.state = LinkState::Established;
            }
            return;
        }
        match kind {
            SKind::Rr => self.ack_and_time(nr),
            SKind::Rnr => {
                self.ack_to(nr);
                self.t200 = None;
                self.t203 = Some(self.now + self.timers.t203);
            }
            SKind::Rej => {
                self.ack_to(nr);
                self.stats.retransmissions += u64::from(seq_sub(self.vs, nr));
                self.vs = nr;
                self.t200 = None;
                self.t203 = Some(self.now + self.timers.t203);
            }
        }
    }

    /// Takes N(R) in state 7 and runs T200 and T203 as Q.921 says.
    fn ack_and_time(&mut self, nr: u8) {
        if nr == self.vs {
            self.ack_to(nr);
            self.t200 = None;
            self.t203 = Some(self.now + self.timers.t203);
        } else if nr != self.va {
            self.ack_to(nr);
            self.t200 = Some(self.now + self.timers.t200);
        }
    }

    fn nr_valid(&self, nr: u8) -> bool {
        seq_sub(nr, self.va) <= seq_sub(self.vs, self.va)
    }

    fn ack_to(&mut self, nr: u8) {
        let n = usize::from(seq_sub(nr, self.va));
        let n = n.min(self.window.len());
        self.window.drain(..n);
        self.va = nr;
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        if self.retry.is_some_and(|t| t <= now) {
            self.retry = None;
            if self.state == LinkState::Released {
                self.establish();
            }
        }
        if self.t203.is_some_and(|t| t <= now) {
            self.t203 = None;
            self.stats.t203_expiries += 1;
            if self.state == LinkState::Established {
                self.rc = 0;
                self.enquiry();
                self.state = LinkState::TimerRecovery;
            }
        }
        if self.t200.is_some_and(|t| t <= now) {
            self.t200 = None;
            self.stats.t200_expiries += 1;
            self.t200_expired();
        }
    }

    fn t200_expired(&mut self) {
        match self.state {
            LinkState::AwaitingEstablishment => {
                if self.rc >= self.timers.n200 {
                    // Nobody answers: keep trying, since a PRI link must come up eventually.
                    self.rc = 0;
                    self.stats.failures += 1;
                }
                self.rc += 1;
                self.u_frame(true, SABME, true);
                self.t200 = Some(self.now + self.timers.t200);
            }
            LinkState::AwaitingRelease => {
                if self.rc >= self.timers.n200 {
                    self.state = LinkState::Released;
                } else {
                    self.rc += 1;
                    self.u_frame(true, DISC, true);
                    self.t200 = Some(self.now + self.timers.t200);
                }
            }
            LinkState::Established => {
                self.rc = 1;
                self.enquiry();
                self.state = LinkState::TimerRecovery;
            }
            LinkState::TimerRecovery => {
                if self.rc >= self.timers.n200 {
                    self.stats.failures += 1;
                    self.link_failed();
                } else {
                    self.rc += 1;
                    self.enquiry();
                }
            }
            LinkState::Released => {}
        }
    }

    /// Sends an RR (or RNR) command with P=1 and starts T200.
    fn enquiry(&mut self) {
        self.s_frame(true, 0x01, true);
        self.t200 = Some(self.now + self.timers.t200);
        self.t203 = None;
    }

    /// Starts establishment after an error while the link was up (Q.921 "establish data
    /// link"): layer 3 hears the link went down and comes up again.
    fn link_failed(&mut self) {
        self.go_down();
        self.establish();
    }

    fn go_down(&mut self) {
        let was_up = self.is_up();
        self.state = LinkState::Released;
        self.t200 = None;
        self.t203 = None;
        self.window.clear();
        self.reset_variables();
        if was_up {
            self.events.push_back(LinkEvent::Down);
        }
    }

    fn establish(&mut self) {
        self.peer_busy = false;
        self.reject_exception = false;
        self.ack_pending = false;
        self.rc = 0;
        self.u_frame(true, SABME, true);
        self.t200 = Some(self.now + self.timers.t200);
        self.t203 = None;
        self.state = LinkState::AwaitingEstablishment;
    }

    fn enter_established(&mut self) {
        self.state = LinkState::Established;
        self.t200 = None;
        self.retry = None;
        self.t203 = Some(self.now + self.timers.t203);
        self.events.push_back(LinkEvent::Up);
    }

    fn reset_variables(&mut self) {
        self.vs = 0;
        self.va = 0;
        self.vr = 0;
        self.peer_busy = false;
        self.reject_exception = false;
        self.ack_pending = false;
        self.rc = 0;
        // Frames in flight belong to the old link: they are discarded (Q.921 "discard I
        // queue"), and layer 3 recovers its calls with the status enquiry procedure.
        self.window.clear();
    }

    fn address(&self, command: bool) -> [u8; 2] {
        let cr = if command { self.role == Role::Network } else { self.role == Role::User };
        [u8::from(cr) << 1, 0x01]
    }

    fn u_frame(&mut self, command: bool, control: u8, pf: bool) {
        let a = self.address(command);
        let mut f = Vec::with_capacity(5);
        f.extend_from_slice(&[a[0], a[1], control | if pf { PF } else { 0 }]);
        fcs::append(&mut f);
        self.control.push_back(f);
    }

    fn s_frame(&mut self, command: bool, control: u8, pf: bool) {
        let a = self.address(command);
        let mut f = Vec::with_capacity(6);
        f.extend_from_slice(&[a[0], a[1], control, self.vr << 1 | u8::from(pf)]);
        fcs::append(&mut f);
        self.control.push_back(f);
        self.ack_pending = false;
    }

    /// The next frame to send, FCS included.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        if let Some(f) = self.control.pop_front() {
            self.stats.frames_out += 1;
            return Some(f);
        }
        if self.state == LinkState::Established && !self.peer_busy {
            let outstanding = seq_sub(self.vs, self.va);
            if outstanding < self.timers.k {
                if let Some(info) = self.window.get(usize::from(outstanding)) {
                    let a = self.address(true);
                    let mut f = Vec::with_capacity(info.len() + 6);
                    f.extend_from_slice(&[a[0], a[1], self.vs << 1, self.vr << 1]);
                    f.extend_from_slice(info);
                    fcs::append(&mut f);
                    self.vs = (self.vs + 1) & 0x7F;
                    self.ack_pending = false;
                    if self.t200.is_none() {
                        self.t200 = Some(self.now + self.timers.t200);
                        self.t203 = None;
                    }
                    self.stats.frames_out += 1;
                    return Some(f);
                }
            }
        }
        if self.ack_pending && self.is_up() {
            self.s_frame(false, 0x01, false);
            return self.poll_transmit();
        }
        None
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SKind {
    Rr,
    Rnr,
    Rej,
}
