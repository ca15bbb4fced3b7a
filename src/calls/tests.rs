//! Deterministic tests of the call model, driven with a fake clock.

use super::*;
use crate::media::EngineCmd;
use switchboard_driver_api::{ChannelInfo, Law};

const T1: ChannelId = ChannelId(0);
const S1: ChannelId = ChannelId(2);
const S2: ChannelId = ChannelId(3);
const S3: ChannelId = ChannelId(4);

fn card() -> CardInfo {
    let kinds = [
        ChannelKind::FxoTrunk,
        ChannelKind::FxoTrunk,
        ChannelKind::FxsSeat,
        ChannelKind::FxsSeat,
        ChannelKind::FxsSeat,
    ];
    CardInfo {
        name: "test".into(),
        spans: vec![],
        channels: kinds
            .iter()
            .enumerate()
            .map(|(i, &kind)| ChannelInfo {
                id: ChannelId(i as u16),
                kind,
                span: 0,
                position: i as u16 + 1,
                law: Law::Alaw,
            })
            .collect(),
    }
}

fn manager(strategy: Strategy) -> (CallManager, Instant) {
    let settings = CallSettings {
        routes: vec![Route {
            name: "sales".into(),
            trunks: vec![1],
            seats: vec![3, 4, 5],
            strategy,
            overflow: None,
            max_waiting: None,
            flows: Default::default(),
        }],
        ..CallSettings::default()
    };
    (CallManager::new(&card(), settings), Instant::now())
}

fn drain(m: &mut CallManager) -> Vec<Action> {
    std::iter::from_fn(|| m.poll_action()).collect()
}

fn line(m: &mut CallManager, now: Instant, channel: ChannelId, event: LineEvent) -> Vec<Action> {
    m.handle(now, Input::Line { channel, event });
    drain(m)
}

fn ringing(actions: &[Action]) -> Vec<ChannelId> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Media(EngineCmd::Line { channel, command: LineCommand::Ring }) => Some(*channel),
            _ => None,
        })
        .collect()
}

fn send_cid(m: &mut CallManager, now: Instant, digits: &str) {
    for d in digits.chars() {
        m.handle(now, Input::Digit { channel: T1, digit: d });
    }
}

#[test]
fn inbound_call_is_answered_bridged_recorded_and_ended_by_the_agent() {
    let (mut m, t0) = manager(Strategy::RingAll);
    send_cid(&mut m, t0, "A83366857C");
    let a = line(&mut m, t0 + Duration::from_millis(500), T1, LineEvent::RingBegin);
    assert!(a.contains(&Action::Event(CallEvent::Offered {
        call: CallId(1),
        trunk: T1,
        caller: "83366857".into()
    })));
    assert_eq!(ringing(&a), vec![S1, S2, S3]);

    let a = line(&mut m, t0 + Duration::from_secs(2), S2, LineEvent::OffHook);
    assert!(a.contains(&Action::Media(EngineCmd::Line { channel: S1, command: LineCommand::StopRing })));
    assert!(a.contains(&Action::Media(EngineCmd::Line { channel: S3, command: LineCommand::StopRing })));
    assert!(a.contains(&Action::Media(EngineCmd::Line { channel: T1, command: LineCommand::OffHook })));
    assert!(a.contains(&Action::Media(EngineCmd::Bridge { a: T1, b: S2 })));
    assert!(a.contains(&Action::StartRecording { call: CallId(1), channel: T1 }));

    m.handle(t0 + Duration::from_secs(3), Input::Digit { channel: T1, digit: '1' });
    assert_eq!(
        drain(&mut m),
        vec![Action::Event(CallEvent::Digit { call: CallId(1), channel: T1, digit: '1' })]
    );

    let a = line(&mut m, t0 + Duration::from_secs(9), S2, LineEvent::OnHook);
    assert!(a.contains(&Action::Media(EngineCmd::Line { channel: T1, command: LineCommand::OnHook })));
    assert!(a.contains(&Action::Cdr(CdrUpdate::End {
        call: CallId(1),
        at: t0 + Duration::from_secs(9),
        disposition: Disposition::Answered,
        cause: "agent hung up"
    })));
    assert_eq!(m.active_calls(), 0);
}

#[test]
fn stale_caller_id_is_not_used() {
    let (mut m, t0) = manager(Strategy::RingAll);
    send_cid(&mut m, t0, "A123C");
    let a = line(&mut m, t0 + Duration::from_secs(30), T1, LineEvent::RingBegin);
    assert!(a.contains(&Action::Event(CallEvent::Offered {
        call: CallId(1),
        trunk: T1,
        caller: String::new()
    })));
}

#[test]
fn caller_hangup_releases_the_line_and_gives_the_agent_busy_tone() {
    let (mut m, t0) = manager(Strategy::RingAll);
    line(&mut m, t0, T1, LineEvent::RingBegin);
    line(&mut m, t0, S1, LineEvent::OffHook);
    let a = line(&mut m, t0 + Duration::from_secs(5), T1, LineEvent::OnHook);
    assert!(a.contains(&Action::Media(EngineCmd::Line { channel: T1, command: LineCommand::OnHook })));
    assert!(a.contains(&Action::Media(EngineCmd::PlayTone { channel: S1, tone: ProgressTone::Busy })));
    assert!(a.iter().any(|x| matches!(x, Action::Cdr(CdrUpdate::End { cause: "caller hung up", .. }))));
    let a = line(&mut m, t0 + Duration::from_secs(6), S1, LineEvent::OnHook);
    assert_eq!(a, vec![Action::Media(EngineCmd::StopPlay { channel: S1 })]);
}

#[test]
fn busy_tone_on_the_trunk_is_a_disconnect() {
    let (mut m, t0) = manager(Strategy::RingAll);
    line(&mut m, t0, T1, LineEvent::RingBegin);
    line(&mut m, t0, S1, LineEvent::OffHook);
    m.handle(t0, Input::Tone { channel: T1, tone: ProgressTone::Busy });
    let a = drain(&mut m);
    assert!(a.contains(&Action::Media(EngineCmd::Line { channel: T1, command: LineCommand::OnHook })));
    assert_eq!(m.active_calls(), 0);
}

#[test]
fn caller_who_stops_ringing_has_abandoned() {
    let (mut m, t0) = manager(Strategy::RingAll);
    line(&mut m, t0, T1, LineEvent::RingBegin);
    line(&mut m, t0 + Duration::from_secs(5), T1, LineEvent::RingBegin);
    let deadline = m.poll_timeout().unwrap();
    assert_eq!(deadline, t0 + Duration::from_secs(11));
    m.handle_timeout(deadline - Duration::from_millis(1));
    assert_eq!(m.active_calls(), 1);
    m.handle_timeout(deadline);
    let a = drain(&mut m);
    assert_eq!(ringing(&a), vec![]);
    assert_eq!(
        a.iter()
            .filter(|x| matches!(x, Action::Media(EngineCmd::Line { command: LineCommand::StopRing, .. })))
            .count(),
        3
    );
    assert!(a.contains(&Action::Event(CallEvent::Ended {
        call: CallId(1),
        disposition: Disposition::NoAnswer,
        cause: "caller abandoned"
    })));
}

#[test]
fn sequential_moves_to_the_next_seat_on_timeout() {
    let (mut m, t0) = manager(Strategy::Sequential);
    let a = line(&mut m, t0, T1, LineEvent::RingBegin);
    assert_eq!(ringing(&a), vec![S1]);
    // Keep the caller ringing past the seat timeout.
    let mut now = t0;
    while now < t0 + Duration::from_secs(20) {
        now += Duration::from_secs(5);
        line(&mut m, now, T1, LineEvent::RingBegin);
    }
    m.handle_timeout(t0 + Duration::from_secs(20));
    let a = drain(&mut m);
    assert!(a.contains(&Action::Media(EngineCmd::Line { channel: S1, command: LineCommand::StopRing })));
    assert!(a.contains(&Action::Event(CallEvent::SeatNoAnswer { call: CallId(1), seat: S1 })));
    assert_eq!(ringing(&a), vec![S2]);
}

#[test]
fn round_robin_starts_after_the_last_seat_that_answered() {
    let (mut m, t0) = manager(Strategy::RoundRobin);
    assert_eq!(ringing(&line(&mut m, t0, T1, LineEvent::RingBegin)), vec![S1]);
    line(&mut m, t0, S1, LineEvent::OffHook);
    line(&mut m, t0, S1, LineEvent::OnHook);
    assert_eq!(ringing(&line(&mut m, t0, T1, LineEvent::RingBegin)), vec![S2]);
}

#[test]
fn a_call_waits_when_every_seat_is_busy_and_rings_when_one_frees() {
    let (mut m, t0) = manager(Strategy::Sequential);
    for seat in [S1, S2, S3] {
        line(&mut m, t0, seat, LineEvent::OffHook);
    }
    let a = line(&mut m, t0, T1, LineEvent::RingBegin);
    assert!(a.contains(&Action::Event(CallEvent::Waiting { call: CallId(1) })));
    let a = line(&mut m, t0 + Duration::from_secs(1), S2, LineEvent::OnHook);
    assert_eq!(ringing(&a), vec![S2]);
}

#[test]
fn unrouted_trunk_gets_a_failed_cdr() {
    let (mut m, t0) = manager(Strategy::RingAll);
    let a = line(&mut m, t0, ChannelId(1), LineEvent::RingBegin);
    assert!(a
        .iter()
        .any(|x| matches!(x, Action::Cdr(CdrUpdate::End { disposition: Disposition::Failed, .. }))));
    assert_eq!(m.active_calls(), 0);
    // The next ring burst of the same call is not a new call.
    assert!(line(&mut m, t0 + Duration::from_secs(5), ChannelId(1), LineEvent::RingBegin).is_empty());
}

#[test]
fn seats_freed_by_an_answer_go_to_the_waiting_call() {
    let t0 = Instant::now();
    // Call 1 rings every seat; call 2 arrives and waits.
    let settings = CallSettings {
        routes: vec![Route {
            name: "all".into(),
            trunks: vec![1, 2],
            seats: vec![3, 4, 5],
            strategy: Strategy::RingAll,
            overflow: None,
            max_waiting: None,
            flows: Default::default(),
        }],
        ..CallSettings::default()
    };
    let mut m = CallManager::new(&card(), settings);
    line(&mut m, t0, T1, LineEvent::RingBegin);
    let a = line(&mut m, t0, ChannelId(1), LineEvent::RingBegin);
    assert!(a.contains(&Action::Event(CallEvent::Waiting { call: CallId(2) })));
    // S1 answers call 1: S2 and S3 stop ringing for it and ring for call 2 at once.
    let a = line(&mut m, t0, S1, LineEvent::OffHook);
    assert_eq!(ringing(&a), vec![S2, S3]);
    assert!(a.contains(&Action::Event(CallEvent::SeatRinging { call: CallId(2), seat: S2 })));
}

#[test]
fn unavailable_seats_are_skipped_and_a_seat_becoming_available_takes_a_waiting_call() {
    let (mut m, t0) = manager(Strategy::Sequential);
    for seat in [S1, S2, S3] {
        m.set_available(t0, seat, false);
    }
    let a = line(&mut m, t0, T1, LineEvent::RingBegin);
    assert!(a.contains(&Action::Event(CallEvent::Waiting { call: CallId(1) })));
    m.set_available(t0, S2, true);
    assert_eq!(ringing(&drain(&mut m)), vec![S2]);
}

#[test]
fn a_released_seat_call_ends_and_frees_the_trunk() {
    let (mut m, t0) = manager(Strategy::Sequential);
    line(&mut m, t0, T1, LineEvent::RingBegin);
    line(&mut m, t0, S1, LineEvent::OffHook);
    assert_eq!(m.trunk_of_seat(S1), Some(T1));
    assert!(m.release_seat(t0, S1, "released from the agent desktop"));
    let a = drain(&mut m);
    assert!(a.contains(&Action::Media(EngineCmd::Line { channel: T1, command: LineCommand::OnHook })));
    assert!(a.contains(&Action::Media(EngineCmd::PlayTone { channel: S1, tone: ProgressTone::Busy })));
    assert!(!m.release_seat(t0, S1, "again"));
    assert_eq!(m.active_calls(), 0);
}

#[test]
fn an_outgoing_call_rings_the_seat_seizes_a_trunk_dials_and_is_answered_by_polarity_reversal() {
    let (mut m, t0) = manager(Strategy::RingAll);
    assert_eq!(m.call_out(t0, S1, "12a", ""), Err(outbound::CallOutError::BadNumber));
    let call = m.call_out(t0, S1, "83366857", "1001").unwrap();
    let a = drain(&mut m);
    assert_eq!(ringing(&a), vec![S1]);
    assert!(matches!(&a[0], Action::Cdr(CdrUpdate::Start { outbound_from: Some(S1), trunk: T1, .. })));
    // The agent picks up: the trunk is seized.
    let a = line(&mut m, t0, S1, LineEvent::OffHook);
    assert_eq!(a, vec![Action::Media(EngineCmd::Line { channel: T1, command: LineCommand::OffHook })]);
    // Dial tone: the number goes out as DTMF.
    m.handle(t0, Input::Tone { channel: T1, tone: ProgressTone::Dial });
    let a = drain(&mut m);
    assert!(a.contains(&Action::Media(EngineCmd::SendDtmf {
        channel: T1,
        digits: "83366857".try_into().unwrap()
    })));
    m.handle(t0, Input::DtmfSent { channel: T1 });
    assert_eq!(drain(&mut m), vec![Action::Media(EngineCmd::Bridge { a: T1, b: S1 })]);
    // The card has two trunks: a second call out takes the other, a third finds none.
    assert!(m.call_out(t0, S2, "1", "").is_ok());
    assert_eq!(m.call_out(t0, S3, "1", ""), Err(outbound::CallOutError::NoTrunk));
    assert_eq!(m.call_out(t0, S1, "1", ""), Err(outbound::CallOutError::SeatBusy));
    drain(&mut m);
    let a = line(&mut m, t0 + Duration::from_secs(9), T1, LineEvent::PolarityReversal);
    assert!(a.contains(&Action::StartRecording { call, channel: T1 }));
    assert!(a.contains(&Action::Event(CallEvent::Answered { call, seat: S1 })));
    let a = line(&mut m, t0 + Duration::from_secs(20), S1, LineEvent::OnHook);
    assert!(a
        .iter()
        .any(|x| matches!(x, Action::Cdr(CdrUpdate::End { disposition: Disposition::Answered, .. }))));
}

#[test]
fn an_outgoing_call_without_dial_tone_fails() {
    let (mut m, t0) = manager(Strategy::RingAll);
    line(&mut m, t0, S1, LineEvent::OffHook);
    m.call_out(t0, S1, "110", "").unwrap();
    drain(&mut m);
    let deadline = m.poll_timeout().unwrap();
    m.handle_timeout(deadline);
    let a = drain(&mut m);
    assert!(a.contains(&Action::Media(EngineCmd::Line { channel: T1, command: LineCommand::OnHook })));
    assert!(a.iter().any(|x| matches!(
        x,
        Action::Cdr(CdrUpdate::End {
            disposition: Disposition::Failed,
            cause: "no dial tone on the trunk",
            ..
        })
    )));
}

#[test]
fn round_robin_wraps_around_and_skips_busy_seats() {
    let (mut m, t0) = manager(Strategy::RoundRobin);
    let mut answered = vec![];
    for _ in 0..4 {
        let seat = ringing(&line(&mut m, t0, T1, LineEvent::RingBegin))[0];
        line(&mut m, t0, seat, LineEvent::OffHook);
        line(&mut m, t0, seat, LineEvent::OnHook);
        answered.push(seat);
    }
    assert_eq!(answered, vec![S1, S2, S3, S1]);
    // S2 is busy (off-hook): the turn passes to S3.
    line(&mut m, t0, S2, LineEvent::OffHook);
    assert_eq!(ringing(&line(&mut m, t0, T1, LineEvent::RingBegin)), vec![S3]);
}

#[test]
fn a_waiting_call_overflows_to_another_route() {
    let settings = CallSettings {
        routes: vec![
            Route {
                name: "sales".into(),
                trunks: vec![1],
                seats: vec![3],
                strategy: Strategy::Sequential,
                overflow: Some((Duration::from_secs(30), 1)),
                max_waiting: None,
                flows: Default::default(),
            },
            Route {
                name: "support".into(),
                trunks: vec![],
                seats: vec![4],
                strategy: Strategy::Sequential,
                overflow: None,
                max_waiting: None,
                flows: Default::default(),
            },
        ],
        ..CallSettings::default()
    };
    let mut m = CallManager::new(&card(), settings);
    let t0 = Instant::now();
    line(&mut m, t0, S1, LineEvent::OffHook);
    let a = line(&mut m, t0, T1, LineEvent::RingBegin);
    assert!(a.contains(&Action::Event(CallEvent::Waiting { call: CallId(1) })));
    // Keep the caller ringing, then pass the overflow time.
    let mut now = t0;
    while now < t0 + Duration::from_secs(30) {
        now += Duration::from_secs(5);
        line(&mut m, now, T1, LineEvent::RingBegin);
    }
    m.handle_timeout(now);
    let a = drain(&mut m);
    assert!(a.contains(&Action::Event(CallEvent::Overflowed { call: CallId(1), to: "support".into() })));
    assert!(
        !a.iter().any(|x| matches!(x, Action::Event(CallEvent::RingStopped { .. }))),
        "nothing was ringing"
    );
    assert_eq!(ringing(&a), vec![S2]);
}

#[test]
fn a_full_queue_sends_new_calls_straight_to_its_overflow() {
    let settings = CallSettings {
        routes: vec![
            Route {
                name: "sales".into(),
                trunks: vec![1, 2],
                seats: vec![3],
                strategy: Strategy::Sequential,
                overflow: None,
                max_waiting: Some((1, 1)),
                flows: Default::default(),
            },
            Route {
                name: "support".into(),
                trunks: vec![],
                seats: vec![4],
                strategy: Strategy::Sequential,
                overflow: None,
                max_waiting: None,
                flows: Default::default(),
            },
        ],
        ..CallSettings::default()
    };
    let mut m = CallManager::new(&card(), settings);
    let t0 = Instant::now();
    line(&mut m, t0, S1, LineEvent::OffHook);
    line(&mut m, t0, S2, LineEvent::OffHook);
    // The first call waits in sales; the second finds the queue full.
    line(&mut m, t0, T1, LineEvent::RingBegin);
    let a = line(&mut m, t0, ChannelId(1), LineEvent::RingBegin);
    assert!(a.contains(&Action::Event(CallEvent::Overflowed { call: CallId(2), to: "support".into() })));
    // When the support seat frees, it takes the overflowed call, not the sales one.
    let a = line(&mut m, t0, S2, LineEvent::OnHook);
    assert!(a.contains(&Action::Event(CallEvent::SeatRinging { call: CallId(2), seat: S2 })));
}

/// A hotline route (trunk 1) that starts a flow, and the sales route of seats 3-5 that the
/// flow sends callers to, with a survey when the agent hangs up first.
fn flow_manager() -> (CallManager, Instant) {
    let settings = CallSettings {
        routes: vec![
            Route {
                name: "hotline".into(),
                trunks: vec![1],
                seats: vec![],
                strategy: Strategy::RingAll,
                overflow: None,
                max_waiting: None,
                flows: RouteFlows { entry: Some("*".into()), number: "8000".into(), ..RouteFlows::default() },
            },
            Route {
                name: "sales".into(),
                trunks: vec![],
                seats: vec![3, 4],
                strategy: Strategy::Sequential,
                overflow: None,
                max_waiting: None,
                flows: RouteFlows { after: Some("survey".into()), ..RouteFlows::default() },
            },
        ],
        ..CallSettings::default()
    };
    (CallManager::new(&card(), settings), Instant::now())
}

#[test]
fn a_flow_route_answers_at_once_and_the_flow_queues_the_caller() {
    let (mut m, t0) = flow_manager();
    let a = line(&mut m, t0, T1, LineEvent::RingBegin);
    assert!(a.contains(&Action::Media(EngineCmd::Line { channel: T1, command: LineCommand::OffHook })));
    assert!(a.contains(&Action::Event(CallEvent::FlowEntered {
        call: CallId(1),
        flow: "*".into(),
        back_to: None
    })));
    assert!(ringing(&a).is_empty(), "no seat rings while the flow has the caller");
    assert!(m.is_in_flow(CallId(1)));
    // Keys go to the flow; no more ring bursts come, and none are needed.
    m.handle(t0 + Duration::from_secs(1), Input::Digit { channel: T1, digit: '1' });
    assert_eq!(
        drain(&mut m),
        vec![Action::Event(CallEvent::Digit { call: CallId(1), channel: T1, digit: '1' })]
    );
    m.handle_timeout(t0 + Duration::from_secs(30));
    assert!(m.is_in_flow(CallId(1)), "a flow call is not abandoned for lack of rings");

    // VIP priority: a second caller queued with a higher priority is offered first.
    assert!(m.flow_to_route(t0 + Duration::from_secs(2), CallId(1), 1, 0));
    let a = drain(&mut m);
    assert!(a.contains(&Action::Media(EngineCmd::PlayPrompt {
        channel: T1,
        prompt: HOLD_MUSIC,
        repeat: true
    })));
    assert_eq!(ringing(&a), vec![S1]);
    let a = line(&mut m, t0 + Duration::from_secs(3), S1, LineEvent::OffHook);
    // The trunk was answered by the flow: not again; recording starts now.
    assert!(!a.contains(&Action::Media(EngineCmd::Line { channel: T1, command: LineCommand::OffHook })));
    assert!(a.contains(&Action::Media(EngineCmd::StopPlay { channel: T1 })));
    assert!(a.contains(&Action::StartRecording { call: CallId(1), channel: T1 }));
    assert!(a.contains(&Action::Media(EngineCmd::Bridge { a: T1, b: S1 })));

    // The agent hangs up first: the caller goes to the survey, the line stays up.
    let a = line(&mut m, t0 + Duration::from_secs(20), S1, LineEvent::OnHook);
    assert!(a.contains(&Action::Event(CallEvent::FlowEntered {
        call: CallId(1),
        flow: "survey".into(),
        back_to: None
    })));
    assert!(!a.contains(&Action::Media(EngineCmd::Line { channel: T1, command: LineCommand::OnHook })));
    assert!(m.is_in_flow(CallId(1)));
    // The flow hangs up: the recording stops and the call ends.
    assert!(m.flow_hangup(t0 + Duration::from_secs(25), CallId(1)));
    let a = drain(&mut m);
    assert!(a.contains(&Action::StopRecording { call: CallId(1), channel: T1 }));
    assert!(a.contains(&Action::Media(EngineCmd::Line { channel: T1, command: LineCommand::OnHook })));
    assert!(a.iter().any(|x| matches!(x, Action::Event(CallEvent::Ended { call: CallId(1), .. }))));
    assert_eq!(m.active_calls(), 0);
}

#[test]
fn higher_priority_callers_are_offered_first() {
    let (mut m, t0) = flow_manager();
    m.set_available(t0, S1, false);
    m.set_available(t0, S2, false);
    for (i, trunk) in [T1, ChannelId(1)].into_iter().enumerate() {
        m.settings.routes[0].trunks = vec![trunk.port()];
        line(&mut m, t0 + Duration::from_millis(i as u64), trunk, LineEvent::RingBegin);
    }
    assert!(m.flow_to_route(t0, CallId(1), 1, 0));
    assert!(m.flow_to_route(t0, CallId(2), 1, 10));
    drain(&mut m);
    m.set_available(t0, S1, true);
    let a = drain(&mut m);
    assert!(a.contains(&Action::Event(CallEvent::SeatRinging { call: CallId(2), seat: S1 })), "{a:?}");
}

#[test]
fn a_caller_hanging_up_in_a_flow_ends_the_call_and_frees_a_waiting_agent() {
    let (mut m, t0) = flow_manager();
    line(&mut m, t0, T1, LineEvent::RingBegin);
    assert!(m.flow_to_route(t0, CallId(1), 1, 0));
    drain(&mut m);
    line(&mut m, t0 + Duration::from_secs(1), S1, LineEvent::OffHook);
    // The agent sends the caller to a check that brings them back, and waits with music.
    let call = m.transfer_to_flow(t0 + Duration::from_secs(5), S1, "check", true).unwrap();
    let a = drain(&mut m);
    assert!(a.contains(&Action::Media(EngineCmd::PlayPrompt {
        channel: S1,
        prompt: HOLD_MUSIC,
        repeat: true
    })));
    assert!(a.contains(&Action::Event(CallEvent::FlowEntered {
        call,
        flow: "check".into(),
        back_to: Some(S1)
    })));
    // The caller hangs up during the check: the agent hears busy tone, the call ends.
    let a = line(&mut m, t0 + Duration::from_secs(8), T1, LineEvent::OnHook);
    assert!(a.contains(&Action::Media(EngineCmd::PlayTone { channel: S1, tone: ProgressTone::Busy })));
    assert!(a.contains(&Action::Cdr(CdrUpdate::End {
        call,
        at: t0 + Duration::from_secs(8),
        disposition: Disposition::Answered,
        cause: "caller hung up"
    })));
}

#[test]
fn an_internal_call_rings_the_caller_then_the_callee_and_rings_out() {
    let (mut m, t0) = manager(Strategy::RingAll);
    assert_eq!(m.call_seat(t0, S1, S1, "1001", "1001"), Err(outbound::CallOutError::NoSuchSeat));
    assert_eq!(m.call_seat(t0, S1, T1, "1001", "x"), Err(outbound::CallOutError::NoSuchSeat));
    let call = m.call_seat(t0, S1, S2, "1001", "1002").unwrap();
    assert_eq!(ringing(&drain(&mut m)), vec![S1], "the caller's phone rings first");
    let a = line(&mut m, t0 + Duration::from_secs(1), S1, LineEvent::OffHook);
    assert_eq!(ringing(&a), vec![S2]);
    assert!(a.contains(&Action::Media(EngineCmd::PlayTone { channel: S1, tone: ProgressTone::Ringback })));
    assert!(m.is_called_seat(call, S2) && !m.is_called_seat(call, S1));
    // Nobody answers: the called phone stops, the caller hears busy tone.
    m.handle_timeout(t0 + Duration::from_secs(30));
    let a = drain(&mut m);
    assert!(a.contains(&Action::Media(EngineCmd::Line { channel: S2, command: LineCommand::StopRing })));
    assert!(a.contains(&Action::Media(EngineCmd::PlayTone { channel: S1, tone: ProgressTone::Busy })));
    assert!(a
        .iter()
        .any(|x| matches!(x, Action::Event(CallEvent::Ended { disposition: Disposition::NoAnswer, .. }))));
    assert_eq!(m.active_calls(), 0);
}

fn line_manager(line: crate::line::LineSettings) -> (CallManager, Instant) {
    let (mut m, t0) = manager(Strategy::Sequential);
    m.set_line_settings(line);
    (m, t0)
}

#[test]
fn fsk_caller_id_between_the_rings_is_listened_for_and_offered_with_the_call() {
    use crate::line::{fxo::FxoSettings, CallerIdInfo, CallerIdMode, LineSettings};
    let settings = LineSettings {
        fxo: FxoSettings { caller_id: CallerIdMode::Fsk, ..FxoSettings::default() },
        ..LineSettings::default()
    };
    let (mut m, t0) = line_manager(settings);
    assert!(line(&mut m, t0, T1, LineEvent::RingBegin).is_empty(), "the call waits for its caller id");
    let a = line(&mut m, t0 + Duration::from_secs(1), T1, LineEvent::RingEnd);
    assert_eq!(a, vec![Action::CallerIdListen { trunk: T1, on: true }]);
    m.handle(
        t0 + Duration::from_secs(2),
        Input::CallerId { channel: T1, caller: CallerIdInfo::number("777") },
    );
    let a = drain(&mut m);
    assert_eq!(a[0], Action::CallerIdListen { trunk: T1, on: false });
    assert!(a.contains(&Action::Event(CallEvent::Offered {
        call: CallId(1),
        trunk: T1,
        caller: "777".into()
    })));
    assert_eq!(ringing(&a), vec![S1]);
    // The second ring measures the cadence.
    line(&mut m, t0 + Duration::from_secs(5), T1, LineEvent::RingBegin);
    let cadence = m.ring_cadence(CallId(1)).unwrap();
    assert_eq!((cadence.on, cadence.off), (Duration::from_secs(1), Duration::from_secs(4)));
}

#[test]
fn one_ring_without_caller_id_in_fsk_mode_is_recorded_as_a_missed_call() {
    use crate::line::{fxo::FxoSettings, CallerIdMode, LineSettings};
    let settings = LineSettings {
        fxo: FxoSettings { caller_id: CallerIdMode::Fsk, ..FxoSettings::default() },
        ..LineSettings::default()
    };
    let (mut m, t0) = line_manager(settings);
    line(&mut m, t0, T1, LineEvent::RingBegin);
    line(&mut m, t0 + Duration::from_secs(1), T1, LineEvent::RingEnd);
    let mut a = Vec::new();
    while let Some(t) = m.poll_timeout().filter(|&t| t <= t0 + Duration::from_secs(8)) {
        m.handle_timeout(t);
        a.extend(drain(&mut m));
    }
    assert!(a.contains(&Action::CallerIdListen { trunk: T1, on: false }));
    assert!(ringing(&a).is_empty(), "no seat rang");
    assert!(a.contains(&Action::Event(CallEvent::Ended {
        call: CallId(1),
        disposition: Disposition::NoAnswer,
        cause: "caller abandoned"
    })));
    assert_eq!(m.active_calls(), 0);
}

#[test]
fn fsk_before_the_ring_after_a_polarity_reversal() {
    use crate::line::{fxo::FxoSettings, CallerIdInfo, CallerIdMode, LineSettings};
    let settings = LineSettings {
        fxo: FxoSettings { caller_id: CallerIdMode::FskBeforeRing, ..FxoSettings::default() },
        ..LineSettings::default()
    };
    let (mut m, t0) = line_manager(settings);
    let a = line(&mut m, t0, T1, LineEvent::PolarityReversal);
    assert_eq!(a, vec![Action::CallerIdListen { trunk: T1, on: true }]);
    m.handle(
        t0 + Duration::from_millis(700),
        Input::CallerId { channel: T1, caller: CallerIdInfo::number("88") },
    );
    assert_eq!(drain(&mut m), vec![Action::CallerIdListen { trunk: T1, on: false }]);
    let a = line(&mut m, t0 + Duration::from_secs(2), T1, LineEvent::RingBegin);
    assert!(a.contains(&Action::Event(CallEvent::Offered {
        call: CallId(1),
        trunk: T1,
        caller: "88".into()
    })));
}

#[test]
fn the_cadence_is_kept_even_when_the_second_ring_announces_the_call() {
    use crate::line::{fxo::FxoSettings, CadenceKind, CallerIdMode, LineSettings};
    let settings = LineSettings {
        fxo: FxoSettings { caller_id: CallerIdMode::Fsk, ..FxoSettings::default() },
        ..LineSettings::default()
    };
    let (mut m, t0) = line_manager(settings);
    line(&mut m, t0, T1, LineEvent::RingBegin);
    line(&mut m, t0 + Duration::from_millis(400), T1, LineEvent::RingEnd);
    let a = line(&mut m, t0 + Duration::from_millis(600), T1, LineEvent::RingBegin);
    assert!(a.contains(&Action::Event(CallEvent::Offered {
        call: CallId(1),
        trunk: T1,
        caller: String::new()
    })));
    assert_eq!(m.ring_cadence(CallId(1)).map(|c| c.kind), Some(CadenceKind::Distinctive));
}

#[test]
fn seats_get_the_callers_id_after_the_first_ring() {
    use crate::line::{fxs::FxsSettings, CallerIdInfo, LineSettings};
    let settings = LineSettings {
        fxs: FxsSettings { caller_id: true, ..FxsSettings::default() },
        ..LineSettings::default()
    };
    let (mut m, t0) = line_manager(settings);
    send_cid(&mut m, t0, "A83366857C");
    let a = line(&mut m, t0, T1, LineEvent::RingBegin);
    assert_eq!(ringing(&a), vec![S1]);
    // The command's time may lag: the cadence starts at the next timeout call.
    m.handle_timeout(m.poll_timeout().unwrap());
    assert!(drain(&mut m).is_empty());
    let due = m.poll_timeout().unwrap();
    assert_eq!(due, t0 + Duration::from_millis(1600));
    m.handle_timeout(due);
    assert_eq!(
        drain(&mut m),
        vec![Action::SendCallerId { seat: S1, caller: CallerIdInfo::number("83366857") }]
    );
}

#[test]
fn a_hook_flash_holds_the_caller_and_the_next_one_takes_them_back() {
    let (mut m, t0) = manager(Strategy::Sequential);
    line(&mut m, t0, T1, LineEvent::RingBegin);
    line(&mut m, t0, S1, LineEvent::OffHook);
    let a = line(&mut m, t0 + Duration::from_secs(3), S1, LineEvent::Flash);
    assert!(a.contains(&Action::Media(EngineCmd::PlayPrompt {
        channel: T1,
        prompt: HOLD_MUSIC,
        repeat: true
    })));
    assert!(a.contains(&Action::Event(CallEvent::HookFlash { call: CallId(1), seat: S1, held: true })));
    let a = line(&mut m, t0 + Duration::from_secs(9), S1, LineEvent::Flash);
    assert!(a.contains(&Action::Media(EngineCmd::StopPlay { channel: T1 })));
    assert!(a.contains(&Action::Event(CallEvent::HookFlash { call: CallId(1), seat: S1, held: false })));
    assert_eq!(m.active_calls(), 1, "a flash is not a hang-up");
}

#[test]
fn on_a_card_without_flash_detection_a_short_on_hook_is_a_flash_and_a_long_one_hangs_up() {
    use crate::line::{fxs::FxsSettings, LineSettings};
    let fxs = FxsSettings { flash_window: Some(Duration::from_millis(800)), ..FxsSettings::default() };
    let (mut m, t0) = line_manager(LineSettings { fxs, ..LineSettings::default() });
    line(&mut m, t0, T1, LineEvent::RingBegin);
    line(&mut m, t0, S1, LineEvent::OffHook);
    assert!(line(&mut m, t0 + Duration::from_secs(3), S1, LineEvent::OnHook).is_empty());
    let a = line(&mut m, t0 + Duration::from_millis(3300), S1, LineEvent::OffHook);
    assert!(a.contains(&Action::Event(CallEvent::HookFlash { call: CallId(1), seat: S1, held: true })));
    assert!(line(&mut m, t0 + Duration::from_secs(5), S1, LineEvent::OnHook).is_empty());
    assert_eq!(m.poll_timeout(), Some(t0 + Duration::from_millis(5800)));
    m.handle_timeout(t0 + Duration::from_millis(5800));
    let a = drain(&mut m);
    assert!(a.contains(&Action::Media(EngineCmd::Line { channel: T1, command: LineCommand::OnHook })));
    assert_eq!(m.active_calls(), 0);
}

#[test]
fn polarity_reversal_and_congestion_tone_end_an_answered_call_with_their_cause() {
    for (input, cause) in [
        (
            Input::Line { channel: T1, event: LineEvent::PolarityReversal },
            "caller hung up (polarity reversal)",
        ),
        (Input::Tone { channel: T1, tone: ProgressTone::Congestion }, "caller hung up (congestion tone)"),
    ] {
        let (mut m, t0) = manager(Strategy::Sequential);
        line(&mut m, t0, T1, LineEvent::RingBegin);
        line(&mut m, t0, S1, LineEvent::OffHook);
        m.handle(t0 + Duration::from_secs(4), input);
        let a = drain(&mut m);
        assert!(a.contains(&Action::Media(EngineCmd::Line { channel: T1, command: LineCommand::OnHook })));
        assert!(a.contains(&Action::Event(CallEvent::Ended {
            call: CallId(1),
            disposition: Disposition::Answered,
            cause
        })));
        // The line went on-hook once.
        let on_hooks = a
            .iter()
            .filter(|x| matches!(x, Action::Media(EngineCmd::Line { command: LineCommand::OnHook, .. })))
            .count();
        assert_eq!(on_hooks, 1);
    }
}

#[test]
fn an_outgoing_call_to_a_busy_number_fails_busy() {
    let (mut m, t0) = manager(Strategy::RingAll);
    line(&mut m, t0, S1, LineEvent::OffHook);
    let call = m.call_out(t0, S1, "110", "").unwrap();
    m.handle(t0, Input::Tone { channel: T1, tone: ProgressTone::Dial });
    m.handle(t0, Input::DtmfSent { channel: T1 });
    drain(&mut m);
    m.handle(t0 + Duration::from_secs(3), Input::Tone { channel: T1, tone: ProgressTone::Busy });
    let a = drain(&mut m);
    assert!(a.contains(&Action::Event(CallEvent::Progress { call, seat: S1, what: "busy" })));
    assert!(a.contains(&Action::Media(EngineCmd::PlayTone { channel: S1, tone: ProgressTone::Busy })));
    assert!(a.contains(&Action::Event(CallEvent::Ended {
        call,
        disposition: Disposition::Busy,
        cause: "the called number is busy"
    })));
    // The trunk is free again.
    assert!(m.call_out(t0 + Duration::from_secs(4), S2, "1", "").is_ok());
}

#[test]
fn a_trunk_receiving_dtmf_caller_id_is_not_taken_for_an_outgoing_call() {
    let (mut m, t0) = manager(Strategy::RingAll);
    send_cid(&mut m, t0, "A8336");
    m.call_out(t0, S1, "110", "").unwrap();
    let a = drain(&mut m);
    assert!(matches!(&a[0], Action::Cdr(CdrUpdate::Start { trunk: ChannelId(1), .. })), "{a:?}");
}
