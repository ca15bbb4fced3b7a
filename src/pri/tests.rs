//! State machine tests with a fake clock: Q.921 between two links, Q.931 between two spans
//! (user and network) and against a bare data link that plays a silent or scripted peer.

use std::time::{Duration, Instant};

use super::q921::{parse, Frame, Link, LinkEvent, LinkState, Q921Timers};
use super::q931::{cause, CallRef, ChannelIdent, ChannelSel, Message, MessageType};
use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

// ---- Q.921 ----

/// Two links wired back to back; `cut` drops frames in the given direction.
struct Wire {
    user: Link,
    net: Link,
    now: Instant,
    user_got: Vec<LinkEvent>,
    net_got: Vec<LinkEvent>,
    /// Drop everything the network side sends.
    cut_net: bool,
    frames_user: Vec<Vec<u8>>,
}

impl Wire {
    fn new() -> Wire {
        let now = Instant::now();
        let mut w = Wire {
            user: Link::new(Role::User, Q921Timers::default(), now),
            net: Link::new(Role::Network, Q921Timers::default(), now),
            now,
            user_got: Vec::new(),
            net_got: Vec::new(),
            cut_net: false,
            frames_user: Vec::new(),
        };
        w.pump();
        w
    }

    fn pump(&mut self) {
        loop {
            let mut moved = false;
            while let Some(f) = self.user.poll_transmit() {
                self.frames_user.push(f.clone());
                self.net.handle_frame(self.now, &f);
                moved = true;
            }
            while let Some(f) = self.net.poll_transmit() {
                if !self.cut_net {
                    self.user.handle_frame(self.now, &f);
                }
                moved = true;
            }
            while let Some(e) = self.user.poll_event() {
                self.user_got.push(e);
            }
            while let Some(e) = self.net.poll_event() {
                self.net_got.push(e);
            }
            if !moved {
                break;
            }
        }
    }

    /// Moves the clock forward, running every timer that falls due on the way.
    fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            let next = [self.user.poll_timeout(), self.net.poll_timeout()].into_iter().flatten().min();
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    self.user.handle_timeout(self.now);
                    self.net.handle_timeout(self.now);
                    self.pump();
                }
                _ => break,
            }
        }
        self.now = end;
    }
}

fn data(events: &[LinkEvent]) -> Vec<Vec<u8>> {
    events.iter().filter_map(|e| if let LinkEvent::Data(d) = e { Some(d.clone()) } else { None }).collect()
}

#[test]
fn both_sides_establish_and_exchange_in_order() {
    let mut w = Wire::new();
    assert_eq!(w.user.state(), LinkState::Established);
    assert_eq!(w.net.state(), LinkState::Established);
    assert_eq!(w.user_got, vec![LinkEvent::Up]);
    assert_eq!(w.net_got, vec![LinkEvent::Up]);
    for i in 0..200u8 {
        w.user.send(w.now, vec![i]);
        if i % 3 == 0 {
            w.net.send(w.now, vec![i, i]);
        }
        w.pump();
    }
    let got = data(&w.net_got);
    assert_eq!(got.len(), 200);
    assert!(got.iter().enumerate().all(|(i, d)| d == &vec![i as u8]));
    assert_eq!(data(&w.user_got).len(), 67);
    // Everything acknowledged: no timer but T203 runs, nothing retransmitted.
    w.advance(ms(9_000));
    assert_eq!(w.user.stats().retransmissions, 0);
    assert_eq!(w.user.stats().t200_expiries, 0);
}

#[test]
fn frames_carry_the_right_address_and_control_octets() {
    let now = Instant::now();
    let mut user = Link::new(Role::User, Q921Timers::default(), now);
    let sabme = user.poll_transmit().expect("SABME");
    // SAPI 0, C/R 0 (a command from the user), TEI 0, SABME with P, then the FCS.
    assert_eq!(&sabme[..3], &[0x00, 0x01, 0x7F]);
    assert_eq!(fcs::verify(&sabme), Some(&sabme[..3]));
    let mut net = Link::new(Role::Network, Q921Timers::default(), now);
    let net_sabme = net.poll_transmit().expect("SABME");
    assert_eq!(&net_sabme[..3], &[0x02, 0x01, 0x7F]);
    // Both sent SABME: each answers the other's with UA and waits for its own UA.
    net.handle_frame(now, &sabme);
    assert_eq!(&net.poll_transmit().expect("UA")[..3], &[0x00, 0x01, 0x73]);
    assert!(!net.is_up());
    user.handle_frame(now, &net_sabme);
    let ua = user.poll_transmit().expect("UA");
    assert_eq!(&ua[..3], &[0x02, 0x01, 0x73]);
    net.handle_frame(now, &ua);
    assert!(net.is_up());
    net.send(now, vec![0x08, 0x02, 0x00, 0x01, 0x05]);
    let i = net.poll_transmit().expect("I-frame");
    assert_eq!(&i[..4], &[0x02, 0x01, 0x00, 0x00]);
    assert_eq!(
        parse(&i[..i.len() - 2]).map(|p| p.frame),
        Ok(Frame::I { ns: 0, nr: 0, p: false, info: &i[4..9] })
    );
}

#[test]
fn bad_fcs_and_garbage_are_dropped_and_counted() {
    let mut w = Wire::new();
    let mut f = vec![0x02, 0x01, 0x00, 0x00, 0x08, 0x02, 0x00, 0x01, 0x05];
    fcs::append(&mut f);
    let last = f.len() - 1;
    f[last] ^= 0xFF;
    w.user.handle_frame(w.now, &f);
    w.user.handle_frame(w.now, &[0x02]);
    let mut bad_address = vec![0x03, 0x01, 0x01, 0x00];
    fcs::append(&mut bad_address);
    w.user.handle_frame(w.now, &bad_address);
    assert_eq!(w.user.stats().bad_fcs, 2);
    assert_eq!(w.user.stats().bad_frames, 1);
    assert!(w.user.poll_event().is_none());
}

#[test]
fn window_of_seven_and_t200_poll_then_n200_failure() {
    let mut w = Wire::new();
    w.cut_net = true;
    w.frames_user.clear();
    for i in 0..10u8 {
        w.user.send(w.now, vec![i]);
    }
    w.pump();
    // Only k=7 I-frames go out without acknowledgement.
    let sent_i = |w: &Wire| w.frames_user.iter().filter(|f| f[2] & 1 == 0).count();
    assert_eq!(sent_i(&w), 7);
    w.frames_user.clear();
    // T200 (1 s): poll with RR P=1, then again each second, N200=3 times in all.
    w.advance(ms(1_000));
    assert_eq!(w.user.state(), LinkState::TimerRecovery);
    assert_eq!(&w.frames_user[0][..4], &[0x00, 0x01, 0x01, 0x01]);
    w.advance(ms(2_000));
    assert_eq!(w.frames_user.len(), 3);
    assert!(w.user_got.iter().all(|e| *e != LinkEvent::Down));
    // The fourth expiry gives up: the link is down and SABME tries to re-establish.
    w.advance(ms(1_000));
    assert!(w.user_got.contains(&LinkEvent::Down));
    assert_eq!(w.user.state(), LinkState::AwaitingEstablishment);
    assert_eq!(w.frames_user.last().map(|f| f[2]), Some(0x7F));
    // When the peer answers again the link comes back.
    w.cut_net = false;
    w.advance(ms(1_000));
    assert_eq!(w.user.state(), LinkState::Established);
    assert_eq!(w.user_got.last(), Some(&LinkEvent::Up));
}

#[test]
fn t203_polls_an_idle_link_and_the_answer_keeps_it_up() {
    let mut w = Wire::new();
    w.frames_user.clear();
    w.advance(ms(9_999));
    assert!(w.frames_user.is_empty());
    w.advance(ms(2));
    // Both sides poll after 10 s idle; each answers the other's poll.
    assert_eq!(&w.frames_user[0][..4], &[0x00, 0x01, 0x01, 0x01]);
    assert_eq!(w.user.state(), LinkState::Established);
    assert_eq!(w.user.stats().t203_expiries, 1);
    w.advance(ms(60_000));
    assert_eq!(w.user.state(), LinkState::Established);
    assert_eq!(w.user.stats().failures, 0);
    assert!(!w.user_got.contains(&LinkEvent::Down));
}

#[test]
fn lost_i_frame_is_recovered_by_reject() {
    let mut w = Wire::new();
    w.net.send(w.now, vec![1]);
    w.net.send(w.now, vec![2]);
    w.net.send(w.now, vec![3]);
    // Lose the first I-frame on the way.
    let first = w.net.poll_transmit().expect("I 0");
    assert_eq!(first[2], 0x00);
    w.pump();
    assert_eq!(data(&w.user_got), vec![vec![1], vec![2], vec![3]]);
    assert!(w.net.stats().retransmissions >= 1);
}

#[test]
fn peer_restart_with_sabme_resets_an_established_link() {
    let mut w = Wire::new();
    w.user.send(w.now, vec![1]);
    w.pump();
    w.net = Link::new(Role::Network, Q921Timers::default(), w.now);
    w.net_got.clear();
    w.pump();
    assert!(w.user_got.contains(&LinkEvent::Reset));
    assert_eq!(w.user.stats().resets, 1);
    assert!(w.user.is_up() && w.net.is_up());
    w.user.send(w.now, vec![2]);
    w.pump();
    assert_eq!(data(&w.net_got), vec![vec![2]]);
}

#[test]
fn dm_on_an_established_link_re_establishes() {
    let mut w = Wire::new();
    let mut dm = vec![0x00, 0x01, 0x0F];
    fcs::append(&mut dm);
    w.user.handle_frame(w.now, &dm);
    assert_eq!(w.user.state(), LinkState::AwaitingEstablishment);
    w.pump();
    assert!(w.user.is_up());
    assert_eq!(w.user_got[1..], [LinkEvent::Down, LinkEvent::Up]);
}

// ---- Q.931: two spans back to back ----

struct Pair {
    user: Span,
    net: Span,
    now: Instant,
    ue: Vec<PriEvent>,
    ne: Vec<PriEvent>,
}

impl Pair {
    fn new() -> Pair {
        let now = Instant::now();
        let mut p = Pair {
            user: Span::new(SpanConfig::e1(Role::User), now),
            net: Span::new(SpanConfig::e1(Role::Network), now),
            now,
            ue: Vec::new(),
            ne: Vec::new(),
        };
        p.pump();
        assert_eq!(p.take_user(), vec![PriEvent::LinkUp]);
        assert_eq!(p.take_net(), vec![PriEvent::LinkUp]);
        p
    }

    fn pump(&mut self) {
        loop {
            let mut moved = false;
            while let Some(f) = self.user.poll_transmit() {
                self.net.handle_frame(self.now, &f);
                moved = true;
            }
            while let Some(f) = self.net.poll_transmit() {
                self.user.handle_frame(self.now, &f);
                moved = true;
            }
            if !moved {
                break;
            }
        }
        while let Some(e) = self.user.poll_event() {
            self.ue.push(e);
        }
        while let Some(e) = self.net.poll_event() {
            self.ne.push(e);
        }
    }

    fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        while let Some(t) = [self.user.poll_timeout(), self.net.poll_timeout()].into_iter().flatten().min() {
            if t > end {
                break;
            }
            self.now = self.now.max(t);
            self.user.handle_timeout(self.now);
            self.net.handle_timeout(self.now);
            self.pump();
        }
        self.now = end;
    }

    fn take_user(&mut self) -> Vec<PriEvent> {
        std::mem::take(&mut self.ue)
    }

    fn take_net(&mut self) -> Vec<PriEvent> {
        std::mem::take(&mut self.ne)
    }
}

fn incoming(events: &[PriEvent]) -> (CallId, u8) {
    for e in events {
        if let PriEvent::Incoming { call, channel, .. } = e {
            return (*call, *channel);
        }
    }
    panic!("no incoming call in {events:?}");
}

#[test]
fn call_from_network_to_user_answered_and_cleared_by_user() {
    let mut p = Pair::new();
    let mut params = CallParams::speech("5000", Some("0201234567"));
    if let Some(c) = params.calling.as_mut() {
        c.presentation = Presentation::Restricted;
        c.screening = Screening::Network;
    }
    let nc = p.net.connect(p.now, params).expect("connect");
    p.pump();
    let ue = p.take_user();
    let (uc, ch) = incoming(&ue);
    assert_eq!(ch, 30, "the network hunts downwards");
    let PriEvent::Incoming { calling: Some(calling), called, sending_complete: true, .. } = &ue[0] else {
        panic!("{ue:?}");
    };
    assert_eq!((calling.digits.as_str(), calling.presentation), ("0201234567", Presentation::Restricted));
    assert_eq!(called.digits, "5000");
    p.user.alerting(p.now, uc, false).expect("alerting");
    p.pump();
    assert_eq!(p.take_net(), vec![PriEvent::Alerting { call: nc, inband: false }]);
    p.user.answer(p.now, uc).expect("answer");
    p.pump();
    assert_eq!(p.take_net(), vec![PriEvent::Answered { call: nc }]);
    assert_eq!(p.take_user(), vec![PriEvent::Connected { call: uc }]);
    assert_eq!(p.user.call_state(uc), Some((CallState::Active, Some(30))));
    assert_eq!(p.net.channel_state(30), Some(ChannelState::InUse(nc)));

    p.user.hangup(p.now, uc, cause::NORMAL_CLEARING).expect("hangup");
    p.pump();
    let ne = p.take_net();
    assert_eq!(
        ne,
        vec![
            PriEvent::Hangup { call: nc, cause: Cause { location: 0, value: 16 } },
            PriEvent::Released { call: nc }
        ]
    );
    assert_eq!(p.take_user(), vec![PriEvent::Released { call: uc }]);
    assert_eq!(p.user.channel_state(30), Some(ChannelState::Idle));
    assert_eq!(p.net.channel_state(30), Some(ChannelState::Idle));
    assert_eq!((p.user.call_count(), p.net.call_count()), (0, 0));
}

#[test]
fn busy_and_unallocated_reach_the_caller() {
    let mut p = Pair::new();
    for value in [cause::USER_BUSY, cause::UNALLOCATED_NUMBER] {
        let uc = p.user.connect(p.now, CallParams::speech("99", None)).expect("connect");
        p.pump();
        let (nc, _) = incoming(&p.take_net());
        p.net.hangup(p.now, nc, value).expect("reject");
        p.pump();
        let ue = p.take_user();
        assert!(
            matches!(ue[0], PriEvent::Hangup { call, cause } if call == uc && cause.value == value),
            "{ue:?}"
        );
        assert_eq!(ue[1], PriEvent::Released { call: uc });
    }
}

#[test]
fn overlap_dialing_and_t302() {
    let mut p = Pair::new();
    let mut params = CallParams::speech("1", None);
    params.sending_complete = false;
    let uc = p.user.connect(p.now, params).expect("connect");
    p.pump();
    let ne = p.take_net();
    let (nc, _) = incoming(&ne);
    assert!(
        matches!(&ne[0], PriEvent::Incoming { sending_complete: false, called, .. } if called.digits == "1")
    );
    p.net.setup_ack(p.now, nc).expect("setup ack");
    p.pump();
    assert_eq!(p.take_user(), vec![PriEvent::SetupAck { call: uc }]);
    p.user.send_digits(p.now, uc, "23", false).expect("digits");
    p.pump();
    assert_eq!(
        p.take_net(),
        vec![PriEvent::MoreDigits { call: nc, digits: "23".into(), sending_complete: false }]
    );
    // T302: 15 s after the last digit the daemon is asked to decide.
    p.advance(ms(14_900));
    assert!(p.take_net().is_empty());
    p.advance(ms(200));
    assert_eq!(p.take_net(), vec![PriEvent::DialTimeout { call: nc }]);
    p.net.proceeding(p.now, nc).expect("proceeding");
    p.pump();
    assert_eq!(p.take_user(), vec![PriEvent::Proceeding { call: uc }]);
    // Sending digits after the overlap phase is refused.
    assert!(matches!(p.user.send_digits(p.now, uc, "4", true), Err(PriError::WrongState { .. })));
}

#[test]
fn glare_on_one_channel_the_network_wins() {
    let mut p = Pair::new();
    let mut up = CallParams::speech("100", None);
    up.channel = Some(1);
    let uc = p.user.connect(p.now, up).expect("user connect");
    let mut np = CallParams::speech("200", None);
    np.channel = Some(1);
    let nc = p.net.connect(p.now, np).expect("net connect");
    p.pump();
    // The user gave B1 to the network's call; the network gave the user's call another.
    let (u_in, u_ch) = incoming(&p.take_user());
    assert_eq!(u_ch, 1);
    let (n_in, n_ch) = incoming(&p.take_net());
    assert_eq!(n_ch, 30);
    p.net.proceeding(p.now, n_in).expect("proceeding");
    p.pump();
    assert_eq!(
        p.take_user(),
        vec![PriEvent::ChannelChanged { call: uc, channel: 30 }, PriEvent::Proceeding { call: uc }]
    );
    assert_eq!(p.user.channel_state(1), Some(ChannelState::InUse(u_in)));
    assert_eq!(p.user.channel_state(30), Some(ChannelState::InUse(uc)));
    p.user.answer(p.now, u_in).expect("answer");
    p.pump();
    assert!(p.take_net().contains(&PriEvent::Answered { call: nc }));
}

#[test]
fn restart_from_either_side_clears_calls_on_the_channel() {
    let mut p = Pair::new();
    let nc = p.net.connect(p.now, CallParams::speech("1", None)).expect("connect");
    p.pump();
    let (uc, ch) = incoming(&p.take_user());
    p.user.answer(p.now, uc).expect("answer");
    p.pump();
    p.take_net();
    p.take_user();
    p.user.restart(p.now, RestartScope::Channel(ch)).expect("restart");
    assert_eq!(p.user.channel_state(ch), Some(ChannelState::Restarting));
    p.pump();
    let ue = p.take_user();
    assert_eq!(ue[0], PriEvent::Hangup { call: uc, cause: Cause { location: 0, value: 41 } });
    assert!(ue.contains(&PriEvent::RestartDone { scope: RestartScope::Channel(ch) }));
    let ne = p.take_net();
    assert!(matches!(ne[0], PriEvent::Hangup { call, .. } if call == nc));
    assert!(ne.contains(&PriEvent::PeerRestart { scope: RestartScope::Channel(ch) }));
    assert_eq!(p.user.channel_state(ch), Some(ChannelState::Idle));
    assert_eq!((p.user.call_count(), p.net.call_count()), (0, 0));

    p.net.restart(p.now, RestartScope::Span).expect("restart span");
    assert_eq!(p.net.restart(p.now, RestartScope::Span), Err(PriError::RestartPending));
    p.pump();
    assert_eq!(p.take_net(), vec![PriEvent::RestartDone { scope: RestartScope::Span }]);
    assert_eq!(p.take_user(), vec![PriEvent::PeerRestart { scope: RestartScope::Span }]);
}

// ---- Q.931 against a bare data link: timers and malformed input ----

/// A span facing a data link whose layer 3 the test scripts by hand.
struct Bare {
    span: Span,
    peer: Link,
    now: Instant,
    got: Vec<Message>,
    events: Vec<PriEvent>,
}

impl Bare {
    fn new(role: Role) -> Bare {
        let now = Instant::now();
        let other = if role == Role::User { Role::Network } else { Role::User };
        let mut b = Bare {
            span: Span::new(SpanConfig::e1(role), now),
            peer: Link::new(other, Q921Timers::default(), now),
            now,
            got: Vec::new(),
            events: Vec::new(),
        };
        b.pump();
        b.events.clear();
        b
    }

    fn pump(&mut self) {
        loop {
            let mut moved = false;
            while let Some(f) = self.span.poll_transmit() {
                self.peer.handle_frame(self.now, &f);
                moved = true;
            }
            while let Some(f) = self.peer.poll_transmit() {
                self.span.handle_frame(self.now, &f);
                moved = true;
            }
            if !moved {
                break;
            }
        }
        while let Some(e) = self.peer.poll_event() {
            if let LinkEvent::Data(d) = e {
                self.got.push(Message::decode(&d).expect("the span sends valid messages"));
            }
        }
        while let Some(e) = self.span.poll_event() {
            self.events.push(e);
        }
    }

    fn send_raw(&mut self, bytes: &[u8]) {
        self.peer.send(self.now, bytes.to_vec());
        self.pump();
    }

    fn send(&mut self, m: &Message) {
        self.send_raw(&m.to_bytes());
    }

    fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        while let Some(t) = [self.span.poll_timeout(), self.peer.poll_timeout()].into_iter().flatten().min() {
            if t > end {
                break;
            }
            self.now = self.now.max(t);
            self.span.handle_timeout(self.now);
            self.peer.handle_timeout(self.now);
            self.pump();
        }
        self.now = end;
    }

    fn kinds(&mut self) -> Vec<MessageType> {
        std::mem::take(&mut self.got).into_iter().map(|m| m.kind).collect()
    }
}

#[test]
fn t303_resends_setup_once_then_gives_up() {
    let mut b = Bare::new(Role::User);
    let c = b.span.connect(b.now, CallParams::speech("1", None)).expect("connect");
    b.pump();
    assert_eq!(b.kinds(), vec![MessageType::Setup]);
    b.advance(ms(4_000));
    assert_eq!(b.kinds(), vec![MessageType::Setup]);
    b.advance(ms(4_000));
    let got = std::mem::take(&mut b.got);
    assert_eq!(got[0].kind, MessageType::ReleaseComplete);
    assert_eq!(got[0].ies.cause.map(|c| c.value), Some(102));
    assert!(matches!(b.events[0], PriEvent::Hangup { call, .. } if call == c));
    assert_eq!(b.events[1], PriEvent::Released { call: c });
}

#[test]
fn t310_then_t305_then_t308_twice() {
    let mut b = Bare::new(Role::User);
    let c = b.span.connect(b.now, CallParams::speech("1", None)).expect("connect");
    b.pump();
    let cref = b.got[0].call_ref.value;
    b.got.clear();
    let mut proc_ = Message::new(MessageType::CallProceeding, CallRef { value: cref, flag: true });
    proc_.ies.channel = Some(ChannelIdent { exclusive: true, sel: ChannelSel::Timeslot(1) });
    b.send(&proc_);
    assert_eq!(b.events, vec![PriEvent::Proceeding { call: c }]);
    b.events.clear();
    // T310 (30 s): DISCONNECT with cause 102, and the daemon hears of it.
    b.advance(ms(30_000));
    assert_eq!(b.got[0].kind, MessageType::Disconnect);
    assert_eq!(b.got[0].ies.cause.map(|c| c.value), Some(102));
    assert!(matches!(b.events[0], PriEvent::Hangup { cause, .. } if cause.value == 102));
    b.got.clear();
    // T305 (30 s): RELEASE; T308 (4 s): RELEASE again; T308 again: the call is freed.
    b.advance(ms(30_000));
    assert_eq!(b.kinds(), vec![MessageType::Release]);
    b.advance(ms(4_000));
    assert_eq!(b.kinds(), vec![MessageType::Release]);
    assert_eq!(b.span.call_count(), 1);
    b.advance(ms(4_000));
    assert_eq!(b.span.call_count(), 0);
    assert_eq!(b.events.last(), Some(&PriEvent::Released { call: c }));
    assert_eq!(b.span.channel_state(1), Some(ChannelState::Idle));
}

#[test]
fn t313_clears_when_connect_is_not_acknowledged() {
    let mut b = Bare::new(Role::User);
    let mut setup = Message::new(MessageType::Setup, CallRef { value: 9, flag: false });
    setup.ies.bearer = Some(Bearer::SPEECH_ALAW);
    setup.ies.channel = Some(ChannelIdent { exclusive: true, sel: ChannelSel::Timeslot(17) });
    setup.ies.display = Some("Reception".into());
    b.send(&setup);
    let (c, ch) = incoming(&b.events);
    assert!(matches!(&b.events[0], PriEvent::Incoming { display: Some(d), .. } if d == "Reception"));
    assert_eq!(ch, 16, "timeslot 17 is B-channel 16");
    b.span.answer(b.now, c).expect("answer");
    b.pump();
    let connect = b.got.remove(0);
    assert_eq!(connect.kind, MessageType::Connect);
    assert_eq!(connect.call_ref, CallRef { value: 9, flag: true });
    assert_eq!(connect.ies.channel, Some(ChannelIdent { exclusive: true, sel: ChannelSel::Timeslot(17) }));
    b.advance(ms(4_000));
    assert_eq!(b.got[0].kind, MessageType::Disconnect);
    assert_eq!(b.got[0].ies.cause.map(|c| c.value), Some(102));
}

#[test]
fn repeated_setup_is_ignored_and_t304_clears_a_stalled_overlap_call() {
    let mut b = Bare::new(Role::Network);
    let setup = [0x08, 0x02, 0x00, 0x0A, 0x05, 0x04, 0x03, 0x80, 0x90, 0xA3, 0x70, 0x02, 0x80, b'1'];
    b.send_raw(&setup);
    let (c, _) = incoming(&b.events);
    b.send_raw(&setup);
    assert!(b.got.is_empty(), "{:?}", b.got);
    assert_eq!(b.span.call_count(), 1);
    b.span.hangup(b.now, c, cause::NORMAL_CLEARING).expect("reject");
    b.pump();
    assert_eq!(b.kinds(), vec![MessageType::ReleaseComplete]);
    b.events.clear();

    let mut p = CallParams::speech("1", None);
    p.sending_complete = false;
    let c = b.span.connect(b.now, p).expect("connect");
    b.pump();
    let cref = b.got[0].call_ref.value;
    b.got.clear();
    b.send(&Message::new(MessageType::SetupAck, CallRef { value: cref, flag: true }));
    assert_eq!(b.events, vec![PriEvent::SetupAck { call: c }]);
    b.span.send_digits(b.now, c, "2", false).expect("digits");
    b.pump();
    assert_eq!(b.kinds(), vec![MessageType::Information]);
    b.advance(ms(30_000));
    assert_eq!(b.got[0].kind, MessageType::Disconnect);
    assert!(b.events.iter().any(|e| matches!(e, PriEvent::Hangup { cause, .. } if cause.value == 102)));
}

#[test]
fn unknown_message_type_gets_status_97() {
    let mut b = Bare::new(Role::Network);
    let c = b.span.connect(b.now, CallParams::speech("1", None)).expect("connect");
    b.pump();
    let cref = b.got[0].call_ref.value;
    b.got.clear();
    b.send_raw(&[0x08, 0x02, 0x80, cref as u8, 0x33]);
    let st = b.got.remove(0);
    assert_eq!(st.kind, MessageType::Status);
    assert_eq!(st.ies.cause.map(|c| c.value), Some(97));
    // N6 call present, as the network side that sent SETUP.
    assert_eq!(st.ies.call_state, Some(6));
    assert_eq!(b.span.call_state(c).map(|s| s.0), Some(CallState::OutInitiated));
    assert_eq!(b.span.stats().unknown_messages, 1);
    // STATUS ENQUIRY gets STATUS 30 with the state.
    b.send(&Message::new(MessageType::StatusEnquiry, CallRef { value: cref, flag: true }));
    let st = b.got.remove(0);
    assert_eq!((st.ies.cause.map(|c| c.value), st.ies.call_state), (Some(30), Some(6)));
}

#[test]
fn messages_for_unknown_calls_and_malformed_setups() {
    let mut b = Bare::new(Role::User);
    // DISCONNECT for a call that does not exist: RELEASE COMPLETE 81.
    b.send_raw(&[0x08, 0x02, 0x00, 0x44, 0x45, 0x08, 0x02, 0x80, 0x90]);
    let m = b.got.remove(0);
    assert_eq!((m.kind, m.ies.cause.map(|c| c.value)), (MessageType::ReleaseComplete, Some(81)));
    assert_eq!(m.call_ref, CallRef { value: 0x44, flag: true });
    // RELEASE COMPLETE for one: ignored.
    b.send_raw(&[0x08, 0x02, 0x00, 0x45, 0x5A]);
    assert!(b.got.is_empty());
    // SETUP without bearer capability: 96.
    b.send_raw(&[0x08, 0x02, 0x00, 0x46, 0x05, 0x70, 0x02, 0x80, b'1']);
    assert_eq!(b.got.remove(0).ies.cause.map(|c| c.value), Some(96));
    // SETUP with a truncated called number: 100, counted.
    b.send_raw(&[0x08, 0x02, 0x00, 0x47, 0x05, 0x04, 0x03, 0x80, 0x90, 0xA3, 0x70, 0x09, 0x80, b'1']);
    assert_eq!(b.got.remove(0).ies.cause.map(|c| c.value), Some(100));
    assert_eq!(b.span.stats().bad_messages, 1);
    // SETUP for timeslot 16 (the D-channel): 82.
    b.send_raw(&[0x08, 0x02, 0x00, 0x48, 0x05, 0x04, 0x03, 0x80, 0x90, 0xA3, 0x18, 0x03, 0xA9, 0x83, 0x90]);
    assert_eq!(b.got.remove(0).ies.cause.map(|c| c.value), Some(82));
    // A data bearer: 65.
    b.send_raw(&[0x08, 0x02, 0x00, 0x49, 0x05, 0x04, 0x02, 0x88, 0x90]);
    assert_eq!(b.got.remove(0).ies.cause.map(|c| c.value), Some(65));
    // Not Q.931 at all: dropped.
    b.send_raw(&[0x03, 0x02, 0x00, 0x49, 0x05]);
    assert!(b.got.is_empty());
    assert!(b.events.is_empty(), "{:?}", b.events);
    assert_eq!(b.span.call_count(), 0);
}

#[test]
fn peer_that_forgot_a_call_after_reset_clears_it() {
    let mut b = Bare::new(Role::User);
    let c = b.span.connect(b.now, CallParams::speech("1", None)).expect("connect");
    b.pump();
    let cref = b.got[0].call_ref.value;
    b.got.clear();
    let mut conn = Message::new(MessageType::Connect, CallRef { value: cref, flag: true });
    conn.ies.channel = Some(ChannelIdent { exclusive: true, sel: ChannelSel::Timeslot(1) });
    b.send(&conn);
    assert_eq!(b.kinds(), vec![MessageType::ConnectAck]);
    // The peer restarts its data link: the span asks about its call.
    b.peer = Link::new(Role::Network, Q921Timers::default(), b.now);
    b.pump();
    assert!(b.events.contains(&PriEvent::LinkReset));
    assert_eq!(b.kinds(), vec![MessageType::StatusEnquiry]);
    let mut st = Message::new(MessageType::Status, CallRef { value: cref, flag: true });
    st.ies.cause = Some(Cause { location: 0, value: 30 });
    st.ies.call_state = Some(0);
    b.send(&st);
    assert!(b.events.contains(&PriEvent::Released { call: c }));
    assert_eq!(b.span.channel_state(1), Some(ChannelState::Idle));
}

#[test]
fn busy_channel_requests_on_the_network_side() {
    let mut b = Bare::new(Role::Network);
    let _ = b.span.connect(b.now, CallParams::speech("1", None)).expect("connect");
    b.pump();
    b.got.clear();
    assert_eq!(b.span.channel_state(30).map(|s| s != ChannelState::Idle), Some(true));
    let setup = |cref: u8, ident: u8| {
        vec![0x08, 0x02, 0x00, cref, 0x05, 0x04, 0x03, 0x80, 0x90, 0xA3, 0x18, 0x03, ident, 0x83, 0x9F]
    };
    // Exclusive request for B30 (timeslot 31), busy: 44.
    b.send_raw(&setup(0x50, 0xA9));
    let m = b.got.remove(0);
    assert_eq!((m.kind, m.ies.cause.map(|c| c.value)), (MessageType::ReleaseComplete, Some(44)));
    // Preferred: the network gives another channel.
    b.send_raw(&setup(0x51, 0xA1));
    let (_, ch) = incoming(&b.events);
    assert_eq!(ch, 29);
    // A user-side request the span cannot meet locally is refused before anything is sent.
    let mut p = CallParams::speech("2", None);
    p.channel = Some(30);
    p.exclusive = true;
    assert_eq!(b.span.connect(b.now, p.clone()), Err(PriError::ChannelBusy(30)));
    p.channel = Some(31);
    assert_eq!(b.span.connect(b.now, p), Err(PriError::NoSuchChannel(31)));
}

#[test]
fn t316_resends_restart_then_fails() {
    let mut b = Bare::new(Role::Network);
    b.span.restart(b.now, RestartScope::Channel(3)).expect("restart");
    b.pump();
    assert_eq!(b.kinds(), vec![MessageType::Restart]);
    b.advance(ms(120_000));
    assert_eq!(b.kinds(), vec![MessageType::Restart]);
    assert_eq!(b.span.channel_state(3), Some(ChannelState::Restarting));
    b.advance(ms(120_000));
    assert!(b.events.contains(&PriEvent::RestartFailed { scope: RestartScope::Channel(3) }));
    assert_eq!(b.span.channel_state(3), Some(ChannelState::Idle));
}

#[test]
fn link_loss_clears_calls_being_set_up_and_commands_need_the_link() {
    let mut b = Bare::new(Role::User);
    let c = b.span.connect(b.now, CallParams::speech("1", None)).expect("connect");
    b.pump();
    // The peer goes silent: T200 and N200 take the link down.
    b.peer = Link::new(
        Role::Network,
        Q921Timers { t200: Duration::from_secs(3600), ..Q921Timers::default() },
        b.now,
    );
    let mut now = b.now;
    // T203 (10 s) polls, then T200 runs out N200 times.
    for _ in 0..20 {
        now += ms(1_000);
        b.span.handle_timeout(now);
        while b.span.poll_transmit().is_some() {}
    }
    while let Some(e) = b.span.poll_event() {
        b.events.push(e);
    }
    assert!(b.events.contains(&PriEvent::LinkDown), "{:?}", b.events);
    assert!(b.events.contains(&PriEvent::Released { call: c }));
    assert_eq!(b.span.connect(now, CallParams::speech("1", None)), Err(PriError::LinkDown));
}

#[test]
fn e1_timeslot_mapping() {
    assert_eq!(timeslot_of(1), Some(1));
    assert_eq!(timeslot_of(15), Some(15));
    assert_eq!(timeslot_of(16), Some(17));
    assert_eq!(timeslot_of(30), Some(31));
    assert_eq!(timeslot_of(0), None);
    assert_eq!(timeslot_of(31), None);
    assert_eq!(bchan_of(16), None);
    assert_eq!(bchan_of(0), None);
    for b in 1..=30 {
        assert_eq!(timeslot_of(b).and_then(bchan_of), Some(b));
    }
}
