//! The PRI stack against libpri (Debian libpri-dev) over a SOCK_SEQPACKET socket pair, the
//! way the simulated card exposes an E1 D-channel: frames carry two FCS octets. libpri plays
//! the other side, network or user, and the test loop drives both in real time (libpri has
//! its own clock), with a timeout on every wait so a failure never hangs the suite.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use switchboard::pri::q931::cause;
use switchboard::pri::{
    CallId, CallParams, CalledNumber, CallingNumber, NumberType, Presentation, PriEvent, RestartScope, Role,
    Screening, Span, SpanConfig,
};
use switchboard_libpri_peer::{Call, Event, Node, Peer, Setup};

/// libpri keeps a little global state (its message hooks) and every test here runs in real
/// time, so they run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const WAIT: Duration = Duration::from_secs(5);

fn seqpacket_pair() -> (OwnedFd, OwnedFd) {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: socketpair fills two descriptors on success; they are wrapped at once.
    let rc = unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_SEQPACKET, 0, fds.as_mut_ptr()) };
    assert_eq!(rc, 0, "socketpair: {}", std::io::Error::last_os_error());
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

fn readable(fd: RawFd, timeout: Duration) -> bool {
    let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    let ms = timeout.as_millis().min(1000) as libc::c_int;
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut p, 1, ms) > 0 && p.revents & libc::POLLIN != 0 }
}

struct Rig {
    span: Span,
    ours: OwnedFd,
    theirs: OwnedFd,
    peer: Peer,
    span_events: Vec<PriEvent>,
    peer_events: Vec<Event>,
    /// Frames the span wrote and libpri read, for checking what went on the wire.
    frames_out: usize,
}

impl Rig {
    /// Our span takes `role`; libpri takes the other one.
    fn new(role: Role) -> Rig {
        let (ours, theirs) = seqpacket_pair();
        let node = if role == Role::User { Node::Network } else { Node::Cpe };
        let peer = Peer::new(theirs.as_raw_fd(), node);
        let span = Span::new(SpanConfig::e1(role), Instant::now());
        let mut rig =
            Rig { span, ours, theirs, peer, span_events: Vec::new(), peer_events: Vec::new(), frames_out: 0 };
        rig.wait_span("link up", |e| *e == PriEvent::LinkUp);
        rig.wait_peer("libpri D-channel up", |e| *e == Event::DchanUp);
        rig
    }

    /// One turn of the loop: write what the span has, wait briefly for frames or timers,
    /// and feed both sides.
    fn step(&mut self) {
        while let Some(f) = self.span.poll_transmit() {
            // SAFETY: sending a buffer on our socket.
            let n = unsafe {
                libc::send(
                    self.ours.as_raw_fd(),
                    f.as_ptr().cast(),
                    f.len(),
                    libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                )
            };
            assert_eq!(n, f.len() as isize, "send to libpri failed");
            self.frames_out += 1;
        }
        let mut wait = Duration::from_millis(5);
        if let Some(t) = self.span.poll_timeout() {
            wait = wait.min(t.saturating_duration_since(Instant::now()));
        }
        if let Some(t) = self.peer.next_timeout() {
            wait = wait.min(t);
        }
        let mut fds = [
            libc::pollfd { fd: self.ours.as_raw_fd(), events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: self.theirs.as_raw_fd(), events: libc::POLLIN, revents: 0 },
        ];
        // SAFETY: two valid pollfds.
        unsafe { libc::poll(fds.as_mut_ptr(), 2, wait.as_millis() as libc::c_int) };
        let mut buf = [0u8; 1024];
        loop {
            // SAFETY: receiving into a local buffer.
            let n = unsafe {
                libc::recv(self.ours.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT)
            };
            if n <= 0 {
                break;
            }
            self.span.handle_frame(Instant::now(), &buf[..n as usize]);
        }
        while readable(self.theirs.as_raw_fd(), Duration::ZERO) {
            if let Some(e) = self.peer.check_event() {
                self.peer_event(e);
            }
        }
        if self.peer.next_timeout().is_some_and(|t| t.is_zero()) {
            if let Some(e) = self.peer.schedule_run() {
                self.peer_event(e);
            }
        }
        let now = Instant::now();
        if self.span.poll_timeout().is_some_and(|t| t <= now) {
            self.span.handle_timeout(now);
        }
        while let Some(e) = self.span.poll_event() {
            self.span_events.push(e);
        }
    }

    /// Records a libpri event. Like Asterisk, the loop answers libpri's HANGUP (RELEASE or
    /// RELEASE COMPLETE received) with `pri_hangup`, which is how libpri finishes a call and
    /// sends RELEASE COMPLETE.
    fn peer_event(&mut self, e: Event) {
        if let Event::Hangup { call, cause, .. } = e {
            self.peer.hangup(call, if cause > 0 { cause } else { cause::NORMAL_CLEARING.into() });
        }
        self.peer_events.push(e);
    }

    fn run_until(&mut self, what: &str, mut done: impl FnMut(&mut Rig) -> bool) {
        let start = Instant::now();
        while !done(self) {
            assert!(
                start.elapsed() < WAIT,
                "timed out waiting for {what}\nspan events: {:?}\nlibpri events: {:?}",
                self.span_events,
                self.peer_events
            );
            self.step();
        }
    }

    /// Waits for and removes the first span event that matches.
    fn wait_span(&mut self, what: &str, pred: impl Fn(&PriEvent) -> bool) -> PriEvent {
        let mut found = None;
        self.run_until(what, |r| {
            if let Some(i) = r.span_events.iter().position(&pred) {
                found = Some(r.span_events.remove(i));
                true
            } else {
                false
            }
        });
        found.expect("run_until returned without the event")
    }

    fn wait_peer(&mut self, what: &str, pred: impl Fn(&Event) -> bool) -> Event {
        let mut found = None;
        self.run_until(what, |r| {
            if let Some(i) = r.peer_events.iter().position(&pred) {
                found = Some(r.peer_events.remove(i));
                true
            } else {
                false
            }
        });
        found.expect("run_until returned without the event")
    }

    /// Lets the loop run for a while (to see that nothing else happens).
    fn settle(&mut self, d: Duration) {
        let until = Instant::now() + d;
        while Instant::now() < until {
            self.step();
        }
    }

    fn now(&self) -> Instant {
        Instant::now()
    }

    /// libpri places a call to us; returns libpri's call, our call and its B-channel.
    fn libpri_calls(&mut self, setup: &Setup) -> (Call, CallId, u8, PriEvent) {
        let call = self.peer.call(setup).expect("pri_setup");
        let ev = self.wait_span("incoming call", |e| matches!(e, PriEvent::Incoming { .. }));
        let PriEvent::Incoming { call: id, channel, .. } = ev.clone() else { unreachable!() };
        (call, id, channel, ev)
    }

    /// We place a call to libpri; returns our call, libpri's call and the wire channel.
    fn we_call(&mut self, params: CallParams) -> (CallId, Call, i32, Event) {
        let id = self.span.connect(self.now(), params).expect("connect");
        let ev = self.wait_peer("libpri RING", |e| matches!(e, Event::Ring { .. }));
        let Event::Ring { call, channel, .. } = ev.clone() else { unreachable!() };
        (id, call, channel, ev)
    }

    fn wait_released(&mut self, id: CallId) {
        self.wait_span("call released", |e| *e == PriEvent::Released { call: id });
    }

    fn hangup_cause(&mut self, id: CallId) -> u8 {
        match self.wait_span("hangup", |e| matches!(e, PriEvent::Hangup { call, .. } if *call == id)) {
            PriEvent::Hangup { cause, .. } => cause.value,
            _ => unreachable!(),
        }
    }
}

pub(crate) fn lock() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn setup_to_us(channel: i32) -> Setup {
    Setup {
        called: "5000".into(),
        called_plan: 0x41,
        complete: true,
        calling: Some("0201234567".into()),
        calling_plan: 0x21,
        // Restricted, user-provided and passed screening.
        calling_pres: 0x21,
        channel,
        exclusive: true,
    }
}

fn params_to_libpri() -> CallParams {
    let mut p = CallParams::speech("8001", None);
    p.called.kind = NumberType { ton: 2, plan: 1 };
    p.calling = Some(CallingNumber {
        kind: NumberType { ton: 4, plan: 1 },
        presentation: Presentation::Allowed,
        screening: Screening::UserNotScreened,
        digits: "4711".into(),
    });
    p
}

/// libpri calls us; we see the numbers with presentation, alert and answer; libpri clears.
fn inbound_call(role: Role) {
    let mut r = Rig::new(role);
    let (call, id, channel, ev) = r.libpri_calls(&setup_to_us(3));
    let PriEvent::Incoming { calling, called, sending_complete, bearer, .. } = ev else { unreachable!() };
    assert_eq!(channel, 3, "timeslot 3 is B-channel 3");
    let calling = calling.expect("calling number");
    assert_eq!(calling.digits, "0201234567");
    assert_eq!(calling.kind, NumberType { ton: 2, plan: 1 });
    assert_eq!(calling.presentation, Presentation::Restricted);
    // The network screens what the user gives; the user side passes libpri's value on.
    if role == Role::User {
        assert_eq!(calling.screening, Screening::UserPassed);
    }
    assert_eq!(called, CalledNumber { kind: NumberType { ton: 4, plan: 1 }, digits: "5000".into() });
    assert!(sending_complete);
    assert_eq!(bearer.capability, 0);

    r.span.proceeding(r.now(), id).expect("proceeding");
    r.span.alerting(r.now(), id, true).expect("alerting");
    let ev = r.wait_peer("libpri RINGING", |e| matches!(e, Event::Ringing { .. }));
    assert_eq!(ev, Event::Ringing { call, channel: 3 });
    r.span.answer(r.now(), id).expect("answer");
    let ev = r.wait_peer("libpri ANSWER", |e| matches!(e, Event::Answer { .. }));
    assert_eq!(ev, Event::Answer { call, channel: 3 });
    r.wait_span("connected", |e| *e == PriEvent::Connected { call: id });

    r.peer.hangup(call, cause::NORMAL_CLEARING.into());
    assert_eq!(r.hangup_cause(id), cause::NORMAL_CLEARING);
    r.wait_released(id);
    assert_eq!(r.span.call_count(), 0);
    assert_eq!(r.span.channel_state(3), Some(switchboard::pri::ChannelState::Idle));
    r.wait_peer("libpri hangup done", |e| matches!(e, Event::Hangup { .. } | Event::HangupAck { .. }));
}

/// We call libpri; it proceeds, alerts and answers; we clear.
fn outbound_call(role: Role) {
    let mut r = Rig::new(role);
    let (id, call, channel, ev) = r.we_call(params_to_libpri());
    let Event::Ring { calling, calling_pres, called, called_plan, complete, .. } = ev else { unreachable!() };
    assert_eq!(called, "8001");
    assert_eq!(called_plan, 0x21);
    assert_eq!(calling, "4711");
    assert_eq!(calling_pres & 0x60, 0, "presentation allowed");
    assert!(complete);
    // The user side hunts upwards from B-channel 1, the network side downwards from 30
    // (timeslot 31).
    let (want_ts, want_b) = if role == Role::User { (1, 1) } else { (31, 30) };
    assert_eq!(channel, want_ts);
    assert_eq!(r.span.call_state(id).and_then(|s| s.1), Some(want_b));

    r.peer.proceeding(call, channel);
    r.wait_span("proceeding", |e| *e == PriEvent::Proceeding { call: id });
    r.peer.alerting(call, channel);
    r.wait_span("alerting", |e| matches!(e, PriEvent::Alerting { call, .. } if *call == id));
    r.peer.answer(call, channel);
    r.wait_span("answered", |e| *e == PriEvent::Answered { call: id });

    r.span.hangup(r.now(), id, cause::NORMAL_CLEARING).expect("hangup");
    let ev =
        r.wait_peer("libpri DISCONNECT", |e| matches!(e, Event::HangupReq { .. } | Event::Hangup { .. }));
    let (Event::HangupReq { cause: c, .. } | Event::Hangup { cause: c, .. }) = ev else { unreachable!() };
    assert_eq!(c, i32::from(cause::NORMAL_CLEARING));
    r.peer.hangup(call, c);
    r.wait_released(id);
    assert_eq!(r.span.call_count(), 0);
    // No Hangup event for clearing the daemon started.
    assert!(!r.span_events.iter().any(|e| matches!(e, PriEvent::Hangup { .. })), "{:?}", r.span_events);
}

#[test]
fn inbound_call_as_user() {
    let _g = lock();
    inbound_call(Role::User);
}

#[test]
fn inbound_call_as_network() {
    let _g = lock();
    inbound_call(Role::Network);
}

#[test]
fn outbound_call_as_user() {
    let _g = lock();
    outbound_call(Role::User);
}

#[test]
fn outbound_call_as_network() {
    let _g = lock();
    outbound_call(Role::Network);
}

/// libpri rejects our call with `value` (17 busy, 1 unallocated); we reject its call too.
fn rejected_both_ways(role: Role, value: u8) {
    let mut r = Rig::new(role);
    if value == cause::UNALLOCATED_NUMBER {
        // libpri rejects a call it has not responded to with RELEASE COMPLETE for this
        // cause; for others it sends nothing until it has responded (its quirk).
        let (id, call, _, _) = r.we_call(params_to_libpri());
        r.peer.hangup(call, value.into());
        assert_eq!(r.hangup_cause(id), value);
        r.wait_released(id);
    }

    // After CALL PROCEEDING the rejection comes as DISCONNECT.
    let (id, call, channel, _) = r.we_call(params_to_libpri());
    r.peer.proceeding(call, channel);
    r.wait_span("proceeding", |e| *e == PriEvent::Proceeding { call: id });
    r.peer.hangup(call, value.into());
    assert_eq!(r.hangup_cause(id), value);
    r.wait_released(id);

    // libpri's events about the calls above (it may reuse call addresses) are done with.
    r.settle(Duration::from_millis(50));
    r.peer_events.clear();
    let (call, id, _, _) = r.libpri_calls(&setup_to_us(5));
    r.span.hangup(r.now(), id, value).expect("reject");
    let ev = r.wait_peer("libpri hangup", |e| matches!(e, Event::Hangup { .. } | Event::HangupReq { .. }));
    let (Event::Hangup { call: c, cause: v, .. } | Event::HangupReq { call: c, cause: v }) = ev else {
        unreachable!()
    };
    assert_eq!((c, v), (call, i32::from(value)));
    r.wait_released(id);

    // And after alerting, with DISCONNECT.
    r.settle(Duration::from_millis(50));
    r.peer_events.clear();
    let (call, id, _, _) = r.libpri_calls(&setup_to_us(6));
    r.span.alerting(r.now(), id, false).expect("alerting");
    r.wait_peer("libpri RINGING", |e| matches!(e, Event::Ringing { .. }));
    r.span.hangup(r.now(), id, value).expect("hangup");
    let ev =
        r.wait_peer("libpri DISCONNECT", |e| matches!(e, Event::HangupReq { .. } | Event::Hangup { .. }));
    let (Event::Hangup { call: c, cause: v, .. } | Event::HangupReq { call: c, cause: v }) = ev else {
        unreachable!()
    };
    assert_eq!((c, v), (call, i32::from(value)));
    r.peer.hangup(call, v);
    r.wait_released(id);
    assert_eq!(r.span.call_count(), 0);
}

#[test]
fn busy_both_ways_as_user() {
    let _g = lock();
    rejected_both_ways(Role::User, cause::USER_BUSY);
}

#[test]
fn busy_both_ways_as_network() {
    let _g = lock();
    rejected_both_ways(Role::Network, cause::USER_BUSY);
}

#[test]
fn unallocated_number_both_ways_as_user() {
    let _g = lock();
    rejected_both_ways(Role::User, cause::UNALLOCATED_NUMBER);
}

#[test]
fn unallocated_number_both_ways_as_network() {
    let _g = lock();
    rejected_both_ways(Role::Network, cause::UNALLOCATED_NUMBER);
}

/// RESTART of a channel both ways, of the whole span from our side, and of a channel that
/// carries a call.
fn restarts(role: Role) {
    let mut r = Rig::new(role);
    r.span.restart(r.now(), RestartScope::Channel(20)).expect("restart");
    // B-channel 20 is timeslot 21.
    r.wait_peer("libpri RESTART", |e| *e == Event::Restart { channel: 21 });
    r.wait_span("restart done", |e| *e == PriEvent::RestartDone { scope: RestartScope::Channel(20) });

    r.peer.reset(18);
    r.wait_span("peer restart", |e| *e == PriEvent::PeerRestart { scope: RestartScope::Channel(17) });
    r.wait_peer("libpri RESTART ACK", |e| *e == Event::RestartAck { channel: 18 });

    r.span.restart(r.now(), RestartScope::Span).expect("restart span");
    r.wait_peer("libpri RESTART (all)", |e| matches!(e, Event::Restart { .. }));
    r.wait_span("span restart done", |e| *e == PriEvent::RestartDone { scope: RestartScope::Span });

    // A call on the channel libpri restarts is cleared.
    let (_call, id, channel, _) = r.libpri_calls(&setup_to_us(9));
    r.span.answer(r.now(), id).expect("answer");
    r.wait_peer("libpri ANSWER", |e| matches!(e, Event::Answer { .. }));
    r.peer.reset(i32::from(channel));
    assert_eq!(r.hangup_cause(id), cause::TEMPORARY_FAILURE);
    r.wait_released(id);
    r.wait_span("peer restart", |e| *e == PriEvent::PeerRestart { scope: RestartScope::Channel(9) });
    assert_eq!(r.span.call_count(), 0);
}

#[test]
fn restart_as_user() {
    let _g = lock();
    restarts(Role::User);
}

#[test]
fn restart_as_network() {
    let _g = lock();
    restarts(Role::Network);
}

/// Overlap dialing both ways: SETUP without sending complete, SETUP ACKNOWLEDGE, digits in
/// INFORMATION.
fn overlap(role: Role) {
    let mut r = Rig::new(role);
    r.peer.set_overlap_dial(true);
    let mut setup = setup_to_us(2);
    setup.called = "5".into();
    setup.complete = false;
    let (call, id, _, ev) = r.libpri_calls(&setup);
    let PriEvent::Incoming { called, sending_complete, .. } = ev else { unreachable!() };
    assert_eq!(called.digits, "5");
    assert!(!sending_complete);
    r.span.setup_ack(r.now(), id).expect("setup ack");
    r.wait_peer("libpri SETUP ACK", |e| matches!(e, Event::SetupAck { .. }));
    r.peer.information(call, '0');
    r.peer.information(call, '1');
    let mut digits = String::new();
    while digits.len() < 2 {
        match r.wait_span("more digits", |e| matches!(e, PriEvent::MoreDigits { .. })) {
            PriEvent::MoreDigits { digits: d, .. } => digits.push_str(&d),
            _ => unreachable!(),
        }
    }
    assert_eq!(digits, "01");
    r.span.answer(r.now(), id).expect("answer");
    r.wait_peer("libpri ANSWER", |e| matches!(e, Event::Answer { .. }));
    r.span.hangup(r.now(), id, cause::NORMAL_CLEARING).expect("hangup");
    let ev = r.wait_peer("libpri DISCONNECT", |e| matches!(e, Event::HangupReq { .. }));
    let Event::HangupReq { call, cause: c } = ev else { unreachable!() };
    r.peer.hangup(call, c);
    r.wait_released(id);

    // Our overlap call.
    let mut p = params_to_libpri();
    p.called.digits = "8".into();
    p.sending_complete = false;
    let (id, call, channel, ev) = r.we_call(p);
    let Event::Ring { called, complete, .. } = ev else { unreachable!() };
    assert_eq!((called.as_str(), complete), ("8", false));
    r.peer.need_more_info(call, channel);
    r.wait_span("setup ack", |e| *e == PriEvent::SetupAck { call: id });
    r.span.send_digits(r.now(), id, "00", false).expect("digits");
    r.span.send_digits(r.now(), id, "2", true).expect("digits");
    let mut got = String::new();
    let mut complete = false;
    while !complete {
        match r.wait_peer("libpri INFORMATION", |e| matches!(e, Event::InfoReceived { .. })) {
            Event::InfoReceived { digits, complete: c, .. } => {
                got.push_str(&digits);
                complete = c;
            }
            _ => unreachable!(),
        }
    }
    assert_eq!(got, "002");
    r.peer.answer(call, channel);
    r.wait_span("answered", |e| *e == PriEvent::Answered { call: id });
    r.peer.hangup(call, cause::NORMAL_CLEARING.into());
    assert_eq!(r.hangup_cause(id), cause::NORMAL_CLEARING);
    r.wait_released(id);
}

#[test]
fn overlap_dialing_as_user() {
    let _g = lock();
    overlap(Role::User);
}

#[test]
fn overlap_dialing_as_network() {
    let _g = lock();
    overlap(Role::Network);
}

/// libpri restarts (a new instance on the same socket sends SABME): the link is
/// re-established, the call that was up is found gone and cleared, and new calls work.
fn peer_restarts(role: Role) {
    let mut r = Rig::new(role);
    let (id, call, channel, _) = r.we_call(params_to_libpri());
    r.peer.answer(call, channel);
    r.wait_span("answered", |e| *e == PriEvent::Answered { call: id });

    let node = if role == Role::User { Node::Network } else { Node::Cpe };
    r.peer = Peer::new(r.theirs.as_raw_fd(), node);
    r.wait_span("link reset", |e| *e == PriEvent::LinkReset);
    r.wait_peer("new libpri D-channel up", |e| *e == Event::DchanUp);
    // Our status enquiry finds the call unknown to the new libpri.
    r.hangup_cause(id);
    r.wait_released(id);
    assert_eq!(r.span.call_count(), 0);

    let (id, call, channel, _) = r.we_call(params_to_libpri());
    r.peer.answer(call, channel);
    r.wait_span("answered", |e| *e == PriEvent::Answered { call: id });
    r.peer.hangup(call, cause::NORMAL_CLEARING.into());
    r.wait_released(id);

    let (call, id, _, _) = r.libpri_calls(&setup_to_us(4));
    r.span.answer(r.now(), id).expect("answer");
    r.wait_peer("libpri ANSWER", |e| matches!(e, Event::Answer { call: c, .. } if *c == call));
    r.span.hangup(r.now(), id, cause::NORMAL_CLEARING).expect("hangup");
    let ev = r.wait_peer("libpri DISCONNECT", |e| matches!(e, Event::HangupReq { .. }));
    let Event::HangupReq { call, cause: c } = ev else { unreachable!() };
    r.peer.hangup(call, c);
    r.wait_released(id);
    assert_eq!(r.span.stats().link.bad_fcs, 0);
}

#[test]
fn link_reestablished_after_libpri_restarts_as_user() {
    let _g = lock();
    peer_restarts(Role::User);
}

#[test]
fn link_reestablished_after_libpri_restarts_as_network() {
    let _g = lock();
    peer_restarts(Role::Network);
}

/// We restart (a new span on the same socket): libpri takes our SABME on an established
/// link and calls work again.
#[test]
fn link_reestablished_after_we_restart() {
    let _g = lock();
    let mut r = Rig::new(Role::User);
    r.span = Span::new(SpanConfig::e1(Role::User), Instant::now());
    r.wait_span("link up", |e| *e == PriEvent::LinkUp);
    let (id, call, channel, _) = r.we_call(params_to_libpri());
    r.peer.answer(call, channel);
    r.wait_span("answered", |e| *e == PriEvent::Answered { call: id });
    r.span.hangup(r.now(), id, cause::NORMAL_CLEARING).expect("hangup");
    let ev = r.wait_peer("libpri DISCONNECT", |e| matches!(e, Event::HangupReq { .. }));
    let Event::HangupReq { call, cause: c } = ev else { unreachable!() };
    r.peer.hangup(call, c);
    r.wait_released(id);
}

/// The link stays up through T203 idle polls in both directions (libpri polls after 10 s
/// too), with no FCS errors either way.
#[test]
fn idle_link_stays_up_through_t203() {
    let _g = lock();
    let mut r = Rig::new(Role::Network);
    r.settle(Duration::from_millis(10_500));
    assert!(r.span.is_link_up());
    assert!(!r.span_events.iter().any(|e| matches!(e, PriEvent::LinkDown | PriEvent::LinkReset)));
    assert!(!r.peer_events.contains(&Event::DchanDown));
    let stats = r.span.stats();
    assert!(stats.link.t203_expiries >= 1, "{stats:?}");
    assert_eq!(stats.link.bad_fcs, 0);
    assert!(r.frames_out > 0);
}
