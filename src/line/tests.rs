//! Tests of the line machines, driven with a fake clock.

use std::time::{Duration, Instant};

use switchboard_driver_api::{LineCommand, LineEvent};

use super::fxo::{DialFailure, FxoInput, FxoLine, FxoOutput, FxoSettings, FxoSignal, ReleaseReason};
use super::fxs::{FxsInput, FxsLine, FxsOutput, FxsSettings, FxsSignal};
use super::{CadenceKind, CallerIdInfo, CallerIdMode};
use crate::dsp::tone::ProgressTone;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn drain(l: &mut FxoLine) -> Vec<FxoOutput> {
    std::iter::from_fn(|| l.poll_output()).collect()
}

fn signals(out: &[FxoOutput]) -> Vec<FxoSignal> {
    out.iter()
        .filter_map(|o| match o {
            FxoOutput::Signal(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

fn ev(l: &mut FxoLine, now: Instant, e: LineEvent) -> Vec<FxoOutput> {
    l.handle(now, FxoInput::Event(e));
    drain(l)
}

fn fxo(mode: CallerIdMode) -> (FxoLine, Instant) {
    (FxoLine::new(FxoSettings { caller_id: mode, ..FxoSettings::default() }), Instant::now())
}

/// Runs the line's timers up to `until`, collecting what they produce.
fn run_until(l: &mut FxoLine, until: Instant) -> Vec<FxoOutput> {
    let mut out = Vec::new();
    while let Some(t) = l.poll_timeout().filter(|&t| t <= until) {
        l.handle_timeout(t);
        out.extend(drain(l));
    }
    out
}

fn incoming(number: &str) -> FxoSignal {
    FxoSignal::Incoming { caller: CallerIdInfo::number(number) }
}

#[test]
fn dtmf_caller_id_before_the_first_ring() {
    let (mut l, t0) = fxo(CallerIdMode::Dtmf);
    for d in "A83366857C".chars() {
        l.handle(t0, FxoInput::Digit(d));
    }
    assert!(l.is_idle(t0 + ms(10)), "a complete block leaves the line free");
    let out = ev(&mut l, t0 + ms(800), LineEvent::RingBegin);
    assert_eq!(signals(&out), vec![incoming("83366857")]);
    // No window: DTMF needs no demodulator.
    assert!(!out.iter().any(|o| matches!(o, FxoOutput::CallerIdWindow(_))));
}

#[test]
fn dtmf_caller_id_absence_and_staleness() {
    let (mut l, t0) = fxo(CallerIdMode::Dtmf);
    for d in "B10C".chars() {
        l.handle(t0, FxoInput::Digit(d));
    }
    let out = ev(&mut l, t0 + ms(500), LineEvent::RingBegin);
    let private = CallerIdInfo { absence: Some('P'), ..CallerIdInfo::default() };
    assert_eq!(signals(&out), vec![FxoSignal::Incoming { caller: private }]);

    let (mut l, t0) = fxo(CallerIdMode::Dtmf);
    for d in "A123C".chars() {
        l.handle(t0, FxoInput::Digit(d));
    }
    let out = ev(&mut l, t0 + Duration::from_secs(30), LineEvent::RingBegin);
    assert_eq!(signals(&out), vec![FxoSignal::Incoming { caller: CallerIdInfo::default() }]);
}

#[test]
fn an_unfinished_dtmf_block_keeps_the_line_busy_and_still_counts() {
    let (mut l, t0) = fxo(CallerIdMode::Dtmf);
    for d in "D5551".chars() {
        l.handle(t0, FxoInput::Digit(d));
    }
    assert!(!l.is_idle(t0 + ms(100)), "caller id is arriving: not free for an outgoing call");
    assert!(l.is_idle(t0 + Duration::from_secs(11)), "a stale block does not block the line");
    let out = ev(&mut l, t0 + ms(700), LineEvent::RingBegin);
    assert_eq!(signals(&out), vec![incoming("5551")]);
}

#[test]
fn fsk_between_the_first_and_second_ring() {
    let (mut l, t0) = fxo(CallerIdMode::Fsk);
    let out = ev(&mut l, t0, LineEvent::RingBegin);
    assert!(signals(&out).is_empty(), "the call waits for its caller id");
    let out = ev(&mut l, t0 + ms(1000), LineEvent::RingEnd);
    assert_eq!(out, vec![FxoOutput::CallerIdWindow(true)]);
    assert_eq!(l.poll_timeout(), Some(t0 + ms(1000) + FxoSettings::default().fsk_window));
    l.handle(t0 + ms(2500), FxoInput::CallerId(CallerIdInfo::number("13800138000")));
    let out = drain(&mut l);
    assert_eq!(out, vec![FxoOutput::CallerIdWindow(false), FxoOutput::Signal(incoming("13800138000"))]);
    // The second ring measures the cadence and announces nothing more.
    let out = ev(&mut l, t0 + ms(5000), LineEvent::RingBegin);
    assert_eq!(signals(&out).len(), 1);
    match &signals(&out)[0] {
        FxoSignal::Cadence(c) => {
            assert_eq!((c.on, c.off, c.kind), (ms(1000), ms(4000), CadenceKind::Normal));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn fsk_window_closes_at_the_second_ring_without_caller_id() {
    let (mut l, t0) = fxo(CallerIdMode::Fsk);
    ev(&mut l, t0, LineEvent::RingBegin);
    ev(&mut l, t0 + ms(400), LineEvent::RingEnd);
    // A double ring: short bursts close together.
    let out = ev(&mut l, t0 + ms(600), LineEvent::RingBegin);
    assert!(out.contains(&FxoOutput::CallerIdWindow(false)));
    let s = signals(&out);
    assert_eq!(s[0], FxoSignal::Incoming { caller: CallerIdInfo::default() });
    assert!(matches!(&s[1], FxoSignal::Cadence(c) if c.kind == CadenceKind::Distinctive), "{s:?}");
}

#[test]
fn fsk_window_times_out_and_one_ring_is_a_missed_call() {
    let (mut l, t0) = fxo(CallerIdMode::Fsk);
    ev(&mut l, t0, LineEvent::RingBegin);
    ev(&mut l, t0 + ms(1000), LineEvent::RingEnd);
    let out = run_until(&mut l, t0 + ms(6500));
    assert_eq!(out, vec![FxoOutput::CallerIdWindow(false)]);
    let out = run_until(&mut l, t0 + ms(7000));
    assert_eq!(signals(&out), vec![FxoSignal::Missed { caller: CallerIdInfo::default() }]);
    assert!(l.is_idle(t0 + ms(7000)));
}

#[test]
fn fsk_before_the_ring_after_a_polarity_reversal() {
    let (mut l, t0) = fxo(CallerIdMode::FskBeforeRing);
    let out = ev(&mut l, t0, LineEvent::PolarityReversal);
    assert_eq!(out, vec![FxoOutput::CallerIdWindow(true)]);
    assert!(!l.is_idle(t0), "caller id is arriving");
    l.handle(t0 + ms(600), FxoInput::CallerId(CallerIdInfo::number("02088888888")));
    assert_eq!(drain(&mut l), vec![FxoOutput::CallerIdWindow(false)]);
    let out = ev(&mut l, t0 + ms(1200), LineEvent::RingBegin);
    assert_eq!(signals(&out), vec![incoming("02088888888")]);

    // No caller id: the window closes by itself, and the ring still announces the call.
    let (mut l, t0) = fxo(CallerIdMode::FskBeforeRing);
    ev(&mut l, t0, LineEvent::PolarityReversal);
    assert_eq!(run_until(&mut l, t0 + ms(5000)), vec![FxoOutput::CallerIdWindow(false)]);
    let out = ev(&mut l, t0 + ms(5200), LineEvent::RingBegin);
    assert_eq!(signals(&out), vec![FxoSignal::Incoming { caller: CallerIdInfo::default() }]);
}

#[test]
fn a_caller_who_stops_ringing_has_abandoned() {
    let (mut l, t0) = fxo(CallerIdMode::Dtmf);
    ev(&mut l, t0, LineEvent::RingBegin);
    ev(&mut l, t0 + ms(1000), LineEvent::RingEnd);
    ev(&mut l, t0 + ms(5000), LineEvent::RingBegin);
    ev(&mut l, t0 + ms(6000), LineEvent::RingEnd);
    // The gap counts from the last burst's end.
    assert_eq!(l.poll_timeout(), Some(t0 + ms(12000)));
    assert!(run_until(&mut l, t0 + ms(11999)).is_empty());
    assert_eq!(signals(&run_until(&mut l, t0 + ms(12000))), vec![FxoSignal::Abandoned]);
    assert!(l.is_idle(t0 + ms(12000)));
}

#[test]
fn answer_and_every_release_reason() {
    let cases: Vec<(FxoInput, ReleaseReason)> = vec![
        (FxoInput::Event(LineEvent::OnHook), ReleaseReason::LoopDrop),
        (FxoInput::Event(LineEvent::PolarityReversal), ReleaseReason::PolarityReversal),
        (FxoInput::Tone(ProgressTone::Busy), ReleaseReason::BusyTone),
        (FxoInput::Tone(ProgressTone::Congestion), ReleaseReason::CongestionTone),
        (FxoInput::Tone(ProgressTone::Dial), ReleaseReason::DialTone),
    ];
    for (input, reason) in cases {
        let (mut l, t0) = fxo(CallerIdMode::Dtmf);
        ev(&mut l, t0, LineEvent::RingBegin);
        l.handle(t0 + ms(100), FxoInput::Answer);
        assert_eq!(drain(&mut l), vec![FxoOutput::Line(LineCommand::OffHook)]);
        assert!(l.is_off_hook());
        assert_eq!(l.poll_timeout(), None, "an answered call does not abandon");
        // Ringback or silence on the call is nothing.
        l.handle(t0 + ms(200), FxoInput::Tone(ProgressTone::Silence));
        assert!(drain(&mut l).is_empty());
        l.handle(t0 + ms(9000), input);
        assert_eq!(
            drain(&mut l),
            vec![FxoOutput::Line(LineCommand::OnHook), FxoOutput::Signal(FxoSignal::Released(reason))]
        );
        // Releasing the line again does nothing: it is on-hook already.
        l.handle(t0 + ms(9001), FxoInput::Release);
        assert!(drain(&mut l).is_empty());
    }
}

#[test]
fn tone_and_reversal_disconnect_can_be_turned_off() {
    let settings =
        FxoSettings { tone_disconnect: false, reversal_disconnect: false, ..FxoSettings::default() };
    let mut l = FxoLine::new(settings);
    let t0 = Instant::now();
    ev(&mut l, t0, LineEvent::RingBegin);
    l.handle(t0, FxoInput::Answer);
    drain(&mut l);
    l.handle(t0, FxoInput::Tone(ProgressTone::Busy));
    l.handle(t0, FxoInput::Event(LineEvent::PolarityReversal));
    assert!(drain(&mut l).is_empty());
    assert!(l.is_off_hook());
}

#[test]
fn flash_by_card_and_by_hook_timing() {
    let (mut l, t0) = fxo(CallerIdMode::Dtmf);
    ev(&mut l, t0, LineEvent::RingBegin);
    l.handle(t0, FxoInput::Answer);
    drain(&mut l);
    l.handle(t0 + ms(10), FxoInput::Flash);
    assert_eq!(drain(&mut l), vec![FxoOutput::Line(LineCommand::Flash)]);
    assert_eq!(signals(&run_until(&mut l, t0 + ms(1000))), vec![FxoSignal::FlashDone]);

    let settings = FxoSettings { flash_by_card: false, flash: ms(300), ..FxoSettings::default() };
    let mut l = FxoLine::new(settings);
    ev(&mut l, t0, LineEvent::RingBegin);
    l.handle(t0, FxoInput::Answer);
    drain(&mut l);
    l.handle(t0 + ms(10), FxoInput::Flash);
    assert_eq!(drain(&mut l), vec![FxoOutput::Line(LineCommand::OnHook)]);
    // The loop current drops during our own flash: not a release.
    assert!(ev(&mut l, t0 + ms(20), LineEvent::OnHook).is_empty());
    // Digits given during the flash go out after it (a transfer on the exchange).
    l.handle(t0 + ms(30), FxoInput::Dial("8001".into()));
    assert!(drain(&mut l).is_empty());
    assert_eq!(l.poll_timeout(), Some(t0 + ms(310)));
    assert_eq!(
        run_until(&mut l, t0 + ms(310)),
        vec![
            FxoOutput::Line(LineCommand::OffHook),
            FxoOutput::Signal(FxoSignal::FlashDone),
            FxoOutput::SendDtmf("8001".into())
        ]
    );
    assert!(l.is_off_hook());
}

#[test]
fn dialling_after_dial_tone_and_answer_by_polarity_reversal() {
    let (mut l, t0) = fxo(CallerIdMode::Dtmf);
    l.handle(t0, FxoInput::Dial("83366857".into()));
    assert_eq!(drain(&mut l), vec![FxoOutput::Line(LineCommand::OffHook)]);
    assert!(!l.is_idle(t0));
    assert_eq!(l.poll_timeout(), Some(t0 + Duration::from_secs(5)));
    l.handle(t0 + ms(800), FxoInput::Tone(ProgressTone::Dial));
    assert_eq!(
        drain(&mut l),
        vec![
            FxoOutput::SendDtmf("83366857".into()),
            FxoOutput::Signal(FxoSignal::Dialling { dial_tone: true })
        ]
    );
    l.handle(t0 + ms(2000), FxoInput::DtmfSent);
    assert_eq!(signals(&drain(&mut l)), vec![FxoSignal::Dialled]);
    l.handle(t0 + ms(3000), FxoInput::Tone(ProgressTone::Ringback));
    assert_eq!(signals(&drain(&mut l)), vec![FxoSignal::Ringback]);
    assert_eq!(signals(&ev(&mut l, t0 + ms(9000), LineEvent::PolarityReversal)), vec![FxoSignal::Answered]);
    assert_eq!(l.poll_timeout(), None);
    // The reversal back is the release.
    assert_eq!(
        signals(&ev(&mut l, t0 + ms(30000), LineEvent::PolarityReversal)),
        vec![FxoSignal::Released(ReleaseReason::PolarityReversal)]
    );
}

#[test]
fn seize_then_dial_when_the_tone_is_there() {
    let (mut l, t0) = fxo(CallerIdMode::Dtmf);
    l.handle(t0, FxoInput::Seize);
    drain(&mut l);
    l.handle(t0 + ms(500), FxoInput::Tone(ProgressTone::Dial));
    assert_eq!(signals(&drain(&mut l)), vec![FxoSignal::DialTone]);
    assert_eq!(l.poll_timeout(), None);
    l.handle(t0 + ms(900), FxoInput::Dial("110".into()));
    assert_eq!(drain(&mut l)[0], FxoOutput::SendDtmf("110".into()));
}

#[test]
fn no_dial_tone_fails_or_dials_blind() {
    let (mut l, t0) = fxo(CallerIdMode::Dtmf);
    l.handle(t0, FxoInput::Dial("110".into()));
    drain(&mut l);
    assert_eq!(
        run_until(&mut l, t0 + Duration::from_secs(5)),
        vec![
            FxoOutput::Line(LineCommand::OnHook),
            FxoOutput::Signal(FxoSignal::Failed(DialFailure::NoDialTone))
        ]
    );
    assert!(l.is_idle(t0 + Duration::from_secs(5)));

    let mut l = FxoLine::new(FxoSettings { blind_dial: true, ..FxoSettings::default() });
    l.handle(t0, FxoInput::Dial("110".into()));
    drain(&mut l);
    assert_eq!(
        run_until(&mut l, t0 + Duration::from_secs(5)),
        vec![FxoOutput::SendDtmf("110".into()), FxoOutput::Signal(FxoSignal::Dialling { dial_tone: false })]
    );
}

#[test]
fn busy_congestion_no_answer_and_slow_dialling_fail_the_call() {
    for (tone, failure) in
        [(ProgressTone::Busy, DialFailure::Busy), (ProgressTone::Congestion, DialFailure::Congestion)]
    {
        let (mut l, t0) = fxo(CallerIdMode::Dtmf);
        l.handle(t0, FxoInput::Dial("1".into()));
        l.handle(t0, FxoInput::Tone(ProgressTone::Dial));
        l.handle(t0, FxoInput::DtmfSent);
        drain(&mut l);
        l.handle(t0 + ms(3000), FxoInput::Tone(tone));
        assert_eq!(
            drain(&mut l),
            vec![FxoOutput::Line(LineCommand::OnHook), FxoOutput::Signal(FxoSignal::Failed(failure))]
        );
    }
    let (mut l, t0) = fxo(CallerIdMode::Dtmf);
    l.handle(t0, FxoInput::Dial("1".into()));
    l.handle(t0, FxoInput::Tone(ProgressTone::Dial));
    l.handle(t0, FxoInput::DtmfSent);
    drain(&mut l);
    assert_eq!(
        signals(&run_until(&mut l, t0 + Duration::from_secs(60))),
        vec![FxoSignal::Failed(DialFailure::NoAnswer)]
    );
    let (mut l, t0) = fxo(CallerIdMode::Dtmf);
    l.handle(t0, FxoInput::Dial("1".into()));
    l.handle(t0, FxoInput::Tone(ProgressTone::Dial));
    drain(&mut l);
    assert_eq!(
        signals(&run_until(&mut l, t0 + Duration::from_secs(15))),
        vec![FxoSignal::Failed(DialFailure::DialTimeout)]
    );
}

#[test]
fn answer_assumed_after_dialling_on_lines_without_reversal() {
    let settings =
        FxoSettings { assume_answer_after: Some(Duration::from_secs(8)), ..FxoSettings::default() };
    let mut l = FxoLine::new(settings);
    let t0 = Instant::now();
    l.handle(t0, FxoInput::Dial("1".into()));
    l.handle(t0, FxoInput::Tone(ProgressTone::Dial));
    l.handle(t0 + ms(500), FxoInput::DtmfSent);
    drain(&mut l);
    assert_eq!(l.poll_timeout(), Some(t0 + ms(8500)));
    assert_eq!(signals(&run_until(&mut l, t0 + ms(8500))), vec![FxoSignal::Answered]);
    // A late reversal is the real answer, not a release; a second one is the release.
    assert!(ev(&mut l, t0 + ms(9000), LineEvent::PolarityReversal).is_empty());
    assert_eq!(
        signals(&ev(&mut l, t0 + ms(20000), LineEvent::PolarityReversal)),
        vec![FxoSignal::Released(ReleaseReason::PolarityReversal)]
    );
}

#[test]
fn loop_drop_while_dialling_is_a_release() {
    let (mut l, t0) = fxo(CallerIdMode::Dtmf);
    l.handle(t0, FxoInput::Dial("1".into()));
    drain(&mut l);
    assert_eq!(
        signals(&ev(&mut l, t0 + ms(100), LineEvent::OnHook)),
        vec![FxoSignal::Released(ReleaseReason::LoopDrop)]
    );
}

#[test]
fn release_closes_an_open_window_and_goes_on_hook_only_when_off_hook() {
    let (mut l, t0) = fxo(CallerIdMode::Fsk);
    ev(&mut l, t0, LineEvent::RingBegin);
    ev(&mut l, t0 + ms(1000), LineEvent::RingEnd);
    l.handle(t0 + ms(1100), FxoInput::Release);
    assert!(drain(&mut l).is_empty(), "a ringing line is not off-hook");
    l.handle(t0 + ms(1200), FxoInput::Answer);
    assert_eq!(drain(&mut l), vec![FxoOutput::CallerIdWindow(false), FxoOutput::Line(LineCommand::OffHook)]);
}

// FXS seat ports.

fn fxs_drain(l: &mut FxsLine) -> Vec<FxsOutput> {
    std::iter::from_fn(|| l.poll_output()).collect()
}

fn fxs_run(l: &mut FxsLine, until: Instant) -> Vec<(Instant, FxsOutput)> {
    let mut out = Vec::new();
    while let Some(t) = l.poll_timeout().filter(|&t| t <= until) {
        l.handle_timeout(t);
        out.extend(fxs_drain(l).into_iter().map(|o| (t, o)));
    }
    out
}

#[test]
fn card_cadence_rings_once_and_sends_caller_id_after_the_first_ring() {
    let settings = FxsSettings { caller_id: true, ..FxsSettings::default() };
    let mut l = FxsLine::new(settings);
    let t0 = Instant::now();
    l.handle(t0, FxsInput::Ring { caller: Some(CallerIdInfo::number("777")) });
    assert_eq!(fxs_drain(&mut l), vec![FxsOutput::Line(LineCommand::Ring)]);
    let out = fxs_run(&mut l, t0 + Duration::from_secs(20));
    assert_eq!(out, vec![(t0 + ms(1600), FxsOutput::SendCallerId(CallerIdInfo::number("777")))]);
    l.handle(t0 + ms(7000), FxsInput::Event(LineEvent::OffHook));
    assert_eq!(fxs_drain(&mut l), vec![FxsOutput::Signal(FxsSignal::OffHook)]);
    assert!(l.is_off_hook() && !l.is_ringing());
}

#[test]
fn no_caller_id_to_phones_unless_enabled() {
    let mut l = FxsLine::new(FxsSettings::default());
    let t0 = Instant::now();
    l.handle(t0, FxsInput::Ring { caller: Some(CallerIdInfo::number("777")) });
    fxs_drain(&mut l);
    let out = fxs_run(&mut l, t0 + Duration::from_secs(20));
    assert!(out.is_empty(), "{out:?}");
    l.handle(t0 + ms(3000), FxsInput::StopRing);
    assert_eq!(fxs_drain(&mut l), vec![FxsOutput::Line(LineCommand::StopRing)]);
    // Stopping a phone that is not ringing is passed on (harmless); one that is off-hook
    // has had its ring tripped by the card.
    l.handle(t0 + ms(3001), FxsInput::StopRing);
    assert_eq!(fxs_drain(&mut l), vec![FxsOutput::Line(LineCommand::StopRing)]);
    l.handle(t0 + ms(4000), FxsInput::Event(LineEvent::OffHook));
    fxs_drain(&mut l);
    l.handle(t0 + ms(4001), FxsInput::StopRing);
    assert!(fxs_drain(&mut l).is_empty());
}

#[test]
fn burst_cadence_rings_at_the_cadence_times_with_caller_id_in_the_first_gap() {
    let settings = FxsSettings { card_cadence: false, caller_id: true, ..FxsSettings::default() };
    let mut l = FxsLine::new(settings);
    let t0 = Instant::now();
    l.handle(t0, FxsInput::Ring { caller: Some(CallerIdInfo::number("777")) });
    assert_eq!(fxs_drain(&mut l), vec![FxsOutput::Line(LineCommand::Ring)]);
    let out = fxs_run(&mut l, t0 + ms(10_500));
    assert_eq!(
        out,
        vec![
            (t0 + ms(1000), FxsOutput::Line(LineCommand::StopRing)),
            (t0 + ms(1600), FxsOutput::SendCallerId(CallerIdInfo::number("777"))),
            (t0 + ms(5000), FxsOutput::Line(LineCommand::Ring)),
            (t0 + ms(6000), FxsOutput::Line(LineCommand::StopRing)),
            (t0 + ms(10_000), FxsOutput::Line(LineCommand::Ring)),
        ]
    );
    // Answered during a burst: the card trips the ring, and the bursts stop.
    l.handle(t0 + ms(10_200), FxsInput::Event(LineEvent::OffHook));
    assert_eq!(fxs_drain(&mut l), vec![FxsOutput::Signal(FxsSignal::OffHook)]);
    assert_eq!(l.poll_timeout(), None);
}

#[test]
fn the_cadence_starts_at_the_first_timeout_after_a_late_command() {
    let settings = FxsSettings { card_cadence: false, ..FxsSettings::default() };
    let mut l = FxsLine::new(settings);
    let t0 = Instant::now();
    // The command carries a stale time; the driver's next timeout call anchors the cadence.
    l.handle(t0, FxsInput::Ring { caller: None });
    fxs_drain(&mut l);
    assert_eq!(l.poll_timeout(), Some(t0));
    l.handle_timeout(t0 + ms(7000));
    assert!(fxs_drain(&mut l).is_empty());
    assert_eq!(l.poll_timeout(), Some(t0 + ms(8000)));
}

#[test]
fn flash_reported_by_the_card_and_hang_up() {
    let mut l = FxsLine::new(FxsSettings::default());
    let t0 = Instant::now();
    l.handle(t0, FxsInput::Event(LineEvent::Flash));
    assert!(fxs_drain(&mut l).is_empty(), "an on-hook phone cannot flash");
    l.handle(t0, FxsInput::Event(LineEvent::OffHook));
    l.handle(t0 + ms(10), FxsInput::Event(LineEvent::OffHook));
    assert_eq!(fxs_drain(&mut l), vec![FxsOutput::Signal(FxsSignal::OffHook)], "repeats are ignored");
    l.handle(t0 + ms(1000), FxsInput::Event(LineEvent::Flash));
    assert_eq!(fxs_drain(&mut l), vec![FxsOutput::Signal(FxsSignal::Flash)]);
    l.handle(t0 + ms(2000), FxsInput::Event(LineEvent::OnHook));
    assert_eq!(fxs_drain(&mut l), vec![FxsOutput::Signal(FxsSignal::OnHook)]);
}

#[test]
fn a_short_on_hook_is_a_flash_a_long_one_a_hang_up_and_a_tiny_one_a_bounce() {
    let settings = FxsSettings { flash_window: Some(ms(800)), ..FxsSettings::default() };
    let mut l = FxsLine::new(settings);
    let t0 = Instant::now();
    l.handle(t0, FxsInput::Event(LineEvent::OffHook));
    fxs_drain(&mut l);
    // 300 ms down: a flash.
    l.handle(t0 + ms(1000), FxsInput::Event(LineEvent::OnHook));
    assert!(fxs_drain(&mut l).is_empty());
    assert!(l.is_off_hook(), "still in the call while it may be a flash");
    l.handle(t0 + ms(1300), FxsInput::Event(LineEvent::OffHook));
    assert_eq!(fxs_drain(&mut l), vec![FxsOutput::Signal(FxsSignal::Flash)]);
    // 20 ms down: contact bounce.
    l.handle(t0 + ms(2000), FxsInput::Event(LineEvent::OnHook));
    l.handle(t0 + ms(2020), FxsInput::Event(LineEvent::OffHook));
    assert!(fxs_drain(&mut l).is_empty());
    // Down for good: a hang-up once the window has passed.
    l.handle(t0 + ms(3000), FxsInput::Event(LineEvent::OnHook));
    assert_eq!(l.poll_timeout(), Some(t0 + ms(3800)));
    assert_eq!(fxs_run(&mut l, t0 + ms(3800)), vec![(t0 + ms(3800), FxsOutput::Signal(FxsSignal::OnHook))]);
    assert!(!l.is_off_hook());
}
