//! The card, the D-channel and the span monitor on the in-memory DAHDI: channel set-up, the
//! ELAST convention, EAGAIN and short reads, event mapping for FXO and FXS ports, hook
//! commands, alarms and their recovery, removed channels.

use std::time::Duration;

use switchboard_driver_api::{
    Alarms, Card, CardError, ChannelEvent, ChannelId, ChannelKind, Law, LineCommand, LineEvent, SpanKind,
    TickIo,
};
use switchboard_driver_dahdi::abi::*;
use switchboard_driver_dahdi::fake::{FakeDahdi, FakeFd, FakeRead, FakeWrite};
use switchboard_driver_dahdi::{
    CardOptions, CardSpec, ChannelSpec, DEvent, DRead, DahdiCard, DahdiError, SpanMonitor,
};

/// Span 1: a TDM410P with FXS modules on channels 1-2 (FXO signalling) and FXO modules on
/// 3-4 (FXS signalling). Span 2: an E1 on channels 5-35, D-channel on timeslot 16 (channel 20).
fn system() -> FakeDahdi {
    let fake = FakeDahdi::new();
    fake.add_span(1, "WCTDM/0", "Wildcard TDM410P");
    fake.add_span(2, "TE4/0/1", "T4XXP (PCI) Card 0 Span 1");
    fake.add_channel(1, 1, 1, DAHDI_SIG_FXOKS);
    fake.add_channel(2, 1, 2, DAHDI_SIG_FXOKS);
    fake.add_channel(3, 1, 3, DAHDI_SIG_FXSKS);
    fake.add_channel(4, 1, 4, DAHDI_SIG_FXSKS);
    for pos in 1..=31 {
        let sig = if pos == 16 { DAHDI_SIG_HDLCFCS } else { DAHDI_SIG_CLEAR };
        fake.add_channel(4 + pos, 2, pos, sig);
    }
    fake
}

const SEAT: ChannelId = ChannelId(0);
const TRUNK: ChannelId = ChannelId(2);
const E1_FIRST: ChannelId = ChannelId(4);
const DCHAN: u32 = 20;

fn spec(options: CardOptions) -> CardSpec {
    let mut channels = vec![
        ChannelSpec { channo: 1, kind: ChannelKind::FxsSeat, law: Law::Alaw },
        ChannelSpec { channo: 2, kind: ChannelKind::FxsSeat, law: Law::Alaw },
        ChannelSpec { channo: 3, kind: ChannelKind::FxoTrunk, law: Law::Alaw },
        ChannelSpec { channo: 4, kind: ChannelKind::FxoTrunk, law: Law::Alaw },
    ];
    for pos in 1..=31u32 {
        let kind = if pos == 16 { ChannelKind::E1Signalling } else { ChannelKind::E1Bearer };
        channels.push(ChannelSpec { channo: 4 + pos, kind, law: Law::Alaw });
    }
    CardSpec { name: "test".into(), channels, options }
}

fn fast() -> CardOptions {
    CardOptions { stall_timeout: Duration::from_millis(20), ..CardOptions::default() }
}

fn open(fake: &FakeDahdi, spec: &CardSpec) -> Result<DahdiCard<FakeFd>, DahdiError> {
    DahdiCard::open_with(spec, |_| Ok(fake.open().unwrap()))
}

/// Every audio channel delivers endless blocks (the card is running).
fn run_all(fake: &FakeDahdi) {
    for ch in (1..=35).filter(|&c| c != DCHAN as i32) {
        fake.set_stream(ch, Some(0x55));
    }
}

fn events(io: &TickIo) -> Vec<ChannelEvent> {
    io.events.iter().copied().collect()
}

#[test]
fn open_sets_up_each_channel_and_describes_the_card() {
    let fake = system();
    let mut card = open(&fake, &spec(fast())).unwrap();
    for ch in [1, 3, 5, 21] {
        let s = fake.channel(ch);
        assert_eq!(s.specified, 1);
        assert_eq!(s.blocksize, Some(160), "channel {ch}");
        assert_eq!(s.linear, Some(0), "channel {ch} stays in its law");
        assert_eq!(s.law, DAHDI_LAW_ALAW);
        let b = s.bufinfo.unwrap();
        assert_eq!((b.txbufpolicy, b.rxbufpolicy, b.numbufs, b.bufsize), (DAHDI_POLICY_IMMEDIATE, 0, 4, 160));
    }
    // The D-channel gets HDLC buffers and no audio settings.
    let d = fake.channel(DCHAN as i32);
    assert_eq!(d.linear, None);
    assert_eq!(d.bufinfo.map(|b| (b.numbufs, b.bufsize)), Some((32, 1024)));

    let info = card.info().clone();
    assert_eq!(info.channels.len(), 35);
    assert_eq!(info.spans.len(), 2);
    assert_eq!(info.spans[0].kind, SpanKind::Analog);
    assert_eq!(info.spans[0].name, "WCTDM/0 \"Wildcard TDM410P\"");
    assert_eq!(info.spans[1].kind, SpanKind::E1);
    assert_eq!(info.channels[2].kind, ChannelKind::FxoTrunk);
    assert_eq!(info.channels[2].position, 3);
    assert_eq!(info.channels[19].kind, ChannelKind::E1Signalling);
    assert_eq!((info.channels[19].span, info.channels[19].position), (1, 16));
    assert_eq!(card.span_numbers(), [(0, 1), (1, 2)]);

    let d = card.take_dchannels();
    assert_eq!(d.len(), 1);
    assert_eq!((d[0].channo(), d[0].channel(), d[0].span(), d[0].spanno()), (DCHAN, ChannelId(19), 1, 2));
    assert!(card.take_dchannels().is_empty());
}

#[test]
fn mu_law_channels_are_set_to_mu_law() {
    let fake = system();
    let spec = CardSpec {
        name: "t".into(),
        channels: vec![ChannelSpec { channo: 1, kind: ChannelKind::FxsSeat, law: Law::Ulaw }],
        options: fast(),
    };
    open(&fake, &spec).unwrap();
    assert_eq!(fake.channel(1).law, DAHDI_LAW_MULAW);
}

#[test]
fn bad_specs_and_misconfigured_channels_are_refused_with_a_reason() {
    let fake = system();
    let one = |channo, kind| CardSpec {
        name: "t".into(),
        channels: vec![ChannelSpec { channo, kind, law: Law::Alaw }],
        options: fast(),
    };
    // Channel 1 is an FXS port (FXO signalling): it cannot be a trunk.
    let err = open(&fake, &one(1, ChannelKind::FxoTrunk)).err().unwrap();
    let msg = err.to_string();
    assert!(matches!(err, DahdiError::Signalling { channo: 1, .. }), "{msg}");
    assert!(msg.contains("FXOKS") && msg.contains("fxsks") && msg.contains("system.conf"), "{msg}");
    let err = open(&fake, &one(DCHAN, ChannelKind::E1Bearer)).err().unwrap();
    assert!(err.to_string().contains("HDLCFCS"), "{err}");
    let err = open(&fake, &one(99, ChannelKind::FxsSeat)).err().unwrap();
    assert!(matches!(err, DahdiError::Channel { channo: 99, op: "DAHDI_SPECIFY", .. }), "{err}");
    assert!(err.to_string().contains("dahdi_cfg"), "{err}");
    assert!(matches!(open(&fake, &one(0, ChannelKind::FxsSeat)), Err(DahdiError::ZeroChannel)));
    assert!(matches!(open(&fake, &one(1, ChannelKind::Sound)), Err(DahdiError::NotDahdi(1))));
    let mut twice = one(1, ChannelKind::FxsSeat);
    twice.channels.push(twice.channels[0]);
    assert!(matches!(open(&fake, &twice), Err(DahdiError::DuplicateChannel(1))));
    let none = CardSpec { name: "t".into(), channels: vec![], options: fast() };
    assert!(matches!(open(&fake, &none), Err(DahdiError::NoChannels)));
    fake.fail_next(2, "DAHDI_SET_BLOCKSIZE", libc::EINVAL);
    let err = open(&fake, &one(2, ChannelKind::FxsSeat)).err().unwrap();
    assert!(matches!(err, DahdiError::Channel { channo: 2, op: "DAHDI_SET_BLOCKSIZE", .. }), "{err}");
}

#[test]
fn a_tick_writes_every_tx_block_and_reads_every_rx_block() {
    let fake = system();
    let mut card = open(&fake, &spec(fast())).unwrap();
    let mut io = TickIo::for_card(card.info());
    run_all(&fake);
    fake.set_stream(3, Some(0x13));
    io.tx[2] = [0x42; 160];
    card.tick(&mut io).unwrap();
    assert_eq!(io.rx[2], [0x13; 160]);
    assert_eq!(io.rx[0], [0x55; 160]);
    // The D-channel's block stays silent: it is not read as audio.
    assert_eq!(io.rx[19], [Law::Alaw.silence(); 160]);
    assert_eq!(fake.channel(3).last_write, [0x42; 160]);
    assert_eq!(fake.channel(1).writes, 1);
    assert_eq!(fake.channel(DCHAN as i32).writes, 0);
    assert!(io.events.is_empty());
    assert_eq!(card.stats().stalls, 0);
}

#[test]
fn elast_on_read_drains_the_events_then_reads_the_block() {
    let fake = system();
    let mut card = open(&fake, &spec(fast())).unwrap();
    let mut io = TickIo::for_card(card.info());
    run_all(&fake);
    // The event arrives after this tick's write, so the read is the one refused with ELAST.
    fake.set_stream(3, None);
    fake.push_read(3, FakeRead::Event(DAHDI_EVENT_RINGBEGIN));
    fake.push_read(3, FakeRead::Block { fill: 0x77, len: 160 });
    card.tick(&mut io).unwrap();
    assert_eq!(events(&io), [ChannelEvent { channel: TRUNK, event: LineEvent::RingBegin }]);
    assert_eq!(io.rx[2], [0x77; 160]);
    assert_eq!(fake.channel(3).pending_events(), 0);
    assert!(card.stats().events >= 1);
}

#[test]
fn elast_on_write_drains_the_events_then_writes_the_block() {
    let fake = system();
    let mut card = open(&fake, &spec(fast())).unwrap();
    let mut io = TickIo::for_card(card.info());
    run_all(&fake);
    fake.push_event(1, DAHDI_EVENT_RINGOFFHOOK);
    io.tx[0] = [0x99; 160];
    card.tick(&mut io).unwrap();
    assert_eq!(events(&io), [ChannelEvent { channel: SEAT, event: LineEvent::OffHook }]);
    let s = fake.channel(1);
    assert_eq!((s.writes, s.last_write), (1, [0x99; 160]));
}

#[test]
fn events_are_mapped_by_port_kind() {
    let fake = system();
    let mut card = open(&fake, &spec(fast())).unwrap();
    let mut io = TickIo::for_card(card.info());
    run_all(&fake);
    card.tick(&mut io).unwrap();
    // The same DAHDI events on an FXS port (FXO signalling) and an FXO port (FXS signalling).
    for e in [DAHDI_EVENT_RINGOFFHOOK, DAHDI_EVENT_WINKFLASH, DAHDI_EVENT_ONHOOK, DAHDI_EVENT_RINGERON] {
        fake.push_event(1, e);
    }
    for e in [DAHDI_EVENT_RINGBEGIN, DAHDI_EVENT_RINGOFFHOOK, DAHDI_EVENT_POLARITY, DAHDI_EVENT_ONHOOK] {
        fake.push_event(3, e);
    }
    card.tick(&mut io).unwrap();
    let seat: Vec<_> = io.events.iter().filter(|e| e.channel == SEAT).map(|e| e.event).collect();
    let trunk: Vec<_> = io.events.iter().filter(|e| e.channel == TRUNK).map(|e| e.event).collect();
    assert_eq!(seat, [LineEvent::OffHook, LineEvent::Flash, LineEvent::OnHook]);
    assert_eq!(
        trunk,
        [LineEvent::RingBegin, LineEvent::RingEnd, LineEvent::PolarityReversal, LineEvent::OnHook]
    );
}

#[test]
fn eagain_waits_and_short_reads_are_assembled() {
    let fake = system();
    let mut card = open(&fake, &spec(fast())).unwrap();
    let mut io = TickIo::for_card(card.info());
    run_all(&fake);
    fake.set_stream(3, None);
    fake.push_read(3, FakeRead::Error(libc::EAGAIN));
    fake.push_read(3, FakeRead::Block { fill: 0x22, len: 100 });
    fake.push_read(3, FakeRead::Error(libc::EAGAIN));
    fake.push_read(3, FakeRead::Block { fill: 0x33, len: 60 });
    card.tick(&mut io).unwrap();
    assert_eq!(io.rx[2][..100], [0x22; 100]);
    assert_eq!(io.rx[2][100..], [0x33; 60]);
    assert_eq!(card.stats().short_reads, 1);
    assert_eq!(card.stats().stalls, 0);
}

#[test]
fn a_stuck_channel_gets_silence_and_a_dead_card_an_error() {
    let fake = system();
    let mut card = open(&fake, &spec(fast())).unwrap();
    let mut io = TickIo::for_card(card.info());
    run_all(&fake);
    fake.set_stream(4, None);
    fake.push_read(4, FakeRead::Block { fill: 0x44, len: 40 });
    card.tick(&mut io).unwrap();
    assert_eq!(io.rx[3][..40], [0x44; 40]);
    assert_eq!(io.rx[3][40..], [Law::Alaw.silence(); 120]);
    assert_eq!(card.stats().stalls, 1);

    for ch in 1..=35 {
        fake.set_stream(ch, None);
    }
    match card.tick(&mut io) {
        Err(CardError::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::TimedOut),
        other => panic!("expected a timeout, got {other:?}"),
    }
}

#[test]
fn read_and_write_errors_are_counted_not_fatal() {
    let fake = system();
    let mut card = open(&fake, &spec(fast())).unwrap();
    let mut io = TickIo::for_card(card.info());
    run_all(&fake);
    fake.push_write(1, FakeWrite::Error(libc::EAGAIN));
    fake.push_write(2, FakeWrite::Short(100));
    fake.push_write(3, FakeWrite::Error(libc::EIO));
    fake.push_read(4, FakeRead::Error(libc::EIO));
    card.tick(&mut io).unwrap();
    let s = card.stats();
    assert_eq!((s.tx_overruns, s.short_writes, s.write_errors, s.read_errors), (1, 1, 1, 1));
    assert_eq!(io.rx[3], [Law::Alaw.silence(); 160]);
}

#[test]
fn a_removed_channel_goes_quiet() {
    let fake = system();
    let mut card = open(&fake, &spec(fast())).unwrap();
    let mut io = TickIo::for_card(card.info());
    run_all(&fake);
    fake.push_event(2, DAHDI_EVENT_REMOVED);
    card.tick(&mut io).unwrap();
    assert_eq!(card.stats().removed, 1);
    let writes = fake.channel(2).writes;
    card.tick(&mut io).unwrap();
    assert_eq!(fake.channel(2).writes, writes, "nothing is written to a removed channel");
    assert_eq!(io.rx[1], [Law::Alaw.silence(); 160]);
    fake.push_read(3, FakeRead::Error(libc::ENODEV));
    card.tick(&mut io).unwrap();
    assert_eq!(card.stats().removed, 2);
}

#[test]
fn span_alarms_are_raised_once_per_span_and_clear_by_themselves() {
    let fake = system();
    let opts = CardOptions { alarm_poll_ticks: 3, ..fast() };
    let mut card = open(&fake, &spec(opts)).unwrap();
    let mut io = TickIo::for_card(card.info());
    run_all(&fake);
    card.tick(&mut io).unwrap();
    assert!(io.events.is_empty(), "no alarm at start");

    // The kernel queues DAHDI_EVENT_ALARM on all 31 channels; the card reads the span's
    // status once and raises one event on the span's first port.
    fake.set_span_alarms(2, DAHDI_ALARM_RED | DAHDI_ALARM_LOS | DAHDI_ALARM_LFA);
    card.tick(&mut io).unwrap();
    let red = Alarms { red: true, loss_of_signal: true, ..Alarms::default() };
    assert_eq!(events(&io), [ChannelEvent { channel: E1_FIRST, event: LineEvent::Alarm(red) }]);
    assert_eq!(card.span_alarms()[1], red);

    // The far end answers with a yellow alarm, reported without an event: the periodic
    // poll finds it.
    fake.set_span_alarm_bits(2, DAHDI_ALARM_YELLOW);
    let mut seen = Vec::new();
    for _ in 0..3 {
        card.tick(&mut io).unwrap();
        seen.extend(events(&io));
    }
    let yellow = Alarms { yellow: true, ..Alarms::default() };
    assert_eq!(seen, [ChannelEvent { channel: E1_FIRST, event: LineEvent::Alarm(yellow) }]);

    fake.set_span_alarms(2, 0);
    card.tick(&mut io).unwrap();
    assert_eq!(events(&io), [ChannelEvent { channel: E1_FIRST, event: LineEvent::AlarmCleared }]);
    card.tick(&mut io).unwrap();
    assert!(io.events.is_empty());
}

#[test]
fn a_span_already_in_alarm_is_reported_on_the_first_tick() {
    let fake = system();
    fake.set_span_alarm_bits(2, DAHDI_ALARM_BLUE);
    let mut card = open(&fake, &spec(fast())).unwrap();
    let mut io = TickIo::for_card(card.info());
    run_all(&fake);
    card.tick(&mut io).unwrap();
    let blue = Alarms { blue: true, ..Alarms::default() };
    assert_eq!(events(&io), [ChannelEvent { channel: E1_FIRST, event: LineEvent::Alarm(blue) }]);
}

#[test]
fn commands_become_hook_values_with_the_right_sense() {
    let fake = system();
    let mut card = open(&fake, &spec(fast())).unwrap();
    card.command(SEAT, LineCommand::Ring).unwrap();
    card.command(SEAT, LineCommand::StopRing).unwrap();
    card.command(SEAT, LineCommand::OnHook).unwrap();
    assert_eq!(fake.channel(1).hooks, [DAHDI_RING, DAHDI_RINGOFF, DAHDI_ONHOOK]);
    card.command(TRUNK, LineCommand::OffHook).unwrap();
    card.command(TRUNK, LineCommand::Flash).unwrap();
    card.command(TRUNK, LineCommand::OnHook).unwrap();
    assert_eq!(fake.channel(3).hooks, [DAHDI_OFFHOOK, DAHDI_FLASH, DAHDI_ONHOOK]);

    assert!(matches!(card.command(TRUNK, LineCommand::Ring), Err(CardError::BadCommand { .. })));
    assert!(matches!(card.command(SEAT, LineCommand::OffHook), Err(CardError::BadCommand { .. })));
    assert!(matches!(card.command(E1_FIRST, LineCommand::OffHook), Err(CardError::BadCommand { .. })));
    assert!(matches!(card.command(ChannelId(19), LineCommand::OnHook), Err(CardError::BadCommand { .. })));
    assert!(matches!(card.command(ChannelId(35), LineCommand::OnHook), Err(CardError::NoSuchChannel(_))));
    fake.fail_next(2, "DAHDI_HOOK", libc::EBUSY);
    match card.command(ChannelId(1), LineCommand::Ring) {
        Err(CardError::Io(e)) => assert_eq!(e.raw_os_error(), Some(libc::EBUSY)),
        other => panic!("expected EBUSY, got {other:?}"),
    }
}

#[test]
fn the_d_channel_carries_frames_with_their_fcs_and_reports_events() {
    let fake = system();
    let mut card = open(&fake, &spec(fast())).unwrap();
    let mut d = card.take_dchannels().pop().unwrap();
    let mut buf = [0u8; switchboard_driver_dahdi::MAX_FRAME];
    assert_eq!(d.read_frame(&mut buf).unwrap(), DRead::WouldBlock);

    // A SABME from the network with DAHDI's two FCS bytes at the end, untouched.
    let frame = vec![0x02, 0x01, 0x7f, 0xa1, 0xb2];
    fake.push_read(DCHAN as i32, FakeRead::Frame(frame.clone()));
    assert_eq!(d.read_frame(&mut buf).unwrap(), DRead::Frame(5));
    assert_eq!(buf[..5], frame[..]);

    // ELAST: the event takes the frame's place, then the frame comes.
    fake.push_event(DCHAN as i32, DAHDI_EVENT_BADFCS);
    fake.push_read(DCHAN as i32, FakeRead::Frame(frame.clone()));
    assert_eq!(d.read_frame(&mut buf).unwrap(), DRead::Event(DEvent::BadFcs));
    assert_eq!(d.read_frame(&mut buf).unwrap(), DRead::Frame(5));

    // A write blocked by a queued alarm: the event is saved for the next read and the frame
    // goes out, placeholders for the FCS included.
    fake.push_event(DCHAN as i32, DAHDI_EVENT_ALARM);
    let out = [0x00, 0x01, 0x73, 0, 0];
    assert!(d.write_frame(&out).unwrap());
    assert_eq!(fake.channel(DCHAN as i32).frames, [out.to_vec()]);
    assert_eq!(d.read_frame(&mut buf).unwrap(), DRead::Event(DEvent::Alarm));

    fake.push_write(DCHAN as i32, FakeWrite::Error(libc::EAGAIN));
    assert!(!d.write_frame(&out).unwrap(), "no free buffer: try again later");
    assert!(d.write_frame(&[0x00, 0x01]).is_err(), "a frame is more than its FCS");
    fake.push_read(DCHAN as i32, FakeRead::Error(libc::EIO));
    let err = d.read_frame(&mut buf).unwrap_err();
    assert!(err.to_string().contains(&format!("channel {DCHAN}")), "{err}");
}

#[test]
fn the_span_monitor_reports_changes_and_keeps_going_past_bad_spans() {
    let fake = system();
    let mut mon = SpanMonitor::with_fd(fake.open().unwrap(), &[(0, 1), (1, 2), (2, 7)]);
    let poll = mon.poll();
    assert!(poll.changes.is_empty());
    assert_eq!(poll.errors.len(), 1, "span 7 does not exist");
    assert!(poll.errors[0].to_string().contains("span 7"));

    fake.set_span_alarm_bits(2, DAHDI_ALARM_RED);
    let poll = mon.poll();
    assert_eq!(poll.changes.len(), 1);
    assert_eq!((poll.changes[0].span, poll.changes[0].spanno), (1, 2));
    assert_eq!(poll.changes[0].event, LineEvent::Alarm(Alarms { red: true, ..Alarms::default() }));
    assert!(mon.poll().changes.is_empty(), "no change, no report");
    fake.set_span_alarm_bits(2, 0);
    assert_eq!(mon.poll().changes[0].event, LineEvent::AlarmCleared);
    assert_eq!(mon.alarms()[1], (1, Some(Alarms::default())));
}

#[test]
fn the_real_device_layer_fails_cleanly_without_dahdi() {
    use switchboard_driver_dahdi::{ChannelFile, DahdiFd};
    let mut spec = spec(fast());
    spec.options.channel_device = "/nonexistent/dahdi/channel".into();
    let err = DahdiCard::open(&spec).err().unwrap();
    assert!(matches!(err, DahdiError::Open { channo: 1, .. }), "{err}");
    assert!(err.to_string().contains("/nonexistent/dahdi/channel"), "{err}");

    // The ioctls on a file that is not a DAHDI device come back as errors (ENOTTY), never as
    // a crash: the request numbers and structures are only handed to the kernel.
    let mut f = ChannelFile::open(std::path::Path::new("/dev/null")).unwrap();
    assert_eq!(f.specify(1).unwrap_err().raw_os_error(), Some(libc::ENOTTY));
    assert_eq!(f.get_params(1).unwrap_err().raw_os_error(), Some(libc::ENOTTY));
    assert_eq!(f.get_event().unwrap_err().raw_os_error(), Some(libc::ENOTTY));
    assert_eq!(f.span_stat(1).unwrap_err().raw_os_error(), Some(libc::ENOTTY));
    assert_eq!(f.hook(DAHDI_ONHOOK).unwrap_err().raw_os_error(), Some(libc::ENOTTY));
    assert!(f.poll_fd().is_some());
}
