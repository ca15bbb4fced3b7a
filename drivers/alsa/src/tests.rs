//! Behaviour of the card against scripted devices: signalling, the audio path, xrun and
//! suspend recovery, unplug and reopen, and drift control. `tests/*.rs` repeat the parts that
//! can be done for real with alsa-lib's file plugin.

use std::time::{Duration, Instant};

use switchboard_driver_api::{Alarms, Card, CardError, ChannelId, Law, LineCommand, LineEvent, TickIo};

use crate::fake::FakeWorld;
use crate::pcm::{errno, StreamDir};
use crate::{g711, Clocking, Role, SoundCard, SoundConfig, SoundDevice, SoundError};

const LOS: LineEvent =
    LineEvent::Alarm(Alarms { red: false, yellow: false, blue: false, loss_of_signal: true });
const CAP: StreamDir = StreamDir::Capture;
const PLAY: StreamDir = StreamDir::Playback;

fn config(devs: &[(&str, Role)], clocking: Clocking) -> SoundConfig {
    SoundConfig {
        devices: devs.iter().map(|&(name, role)| SoundDevice { role, ..SoundDevice::seat(name) }).collect(),
        clocking,
        reopen_interval: Duration::from_millis(100),
        ..SoundConfig::default()
    }
}

fn card(world: &FakeWorld, devs: &[(&str, Role)], clocking: Clocking) -> (SoundCard, TickIo) {
    let card = match SoundCard::with_opener(config(devs, clocking), world.opener()) {
        Ok(c) => c,
        Err(e) => panic!("card: {e}"),
    };
    let io = TickIo::for_card(card.info());
    (card, io)
}

fn tick(card: &mut SoundCard, io: &mut TickIo) -> Vec<(u16, LineEvent)> {
    assert!(card.tick(io).is_ok());
    io.events.iter().map(|e| (e.channel.port(), e.event)).collect()
}

fn capture(world: &FakeWorld, name: &str, samples: impl IntoIterator<Item = i16>) {
    world.with(name, CAP, |s| s.captured.extend(samples));
}

/// Samples that are exact A-law values, so the expected codes are unambiguous.
fn coded(codes: &[u8]) -> Vec<i16> {
    codes.iter().map(|&c| g711::decode(Law::Alaw, c)).collect()
}

#[test]
fn seat_commands_come_back_as_hook_events_and_ring_the_headset() {
    let world = FakeWorld::default();
    let (mut card, mut io) = card(&world, &[("hs", Role::Seat)], Clocking::Slave);
    let ch = ChannelId(0);
    assert!(tick(&mut card, &mut io).is_empty());

    assert!(card.command(ch, LineCommand::Ring).is_ok());
    for _ in 0..10 {
        assert!(tick(&mut card, &mut io).is_empty());
        world.with("hs", PLAY, |s| s.consume(160));
    }
    let loud = world.with("hs", PLAY, |s| s.written.iter().filter(|x| x.unsigned_abs() > 2000).count());
    assert!(loud > 500, "the alert is audible in the headset ({loud} loud samples)");

    // The desktop answers: the alert stops and the seat goes off-hook.
    assert!(card.command(ch, LineCommand::OffHook).is_ok());
    assert_eq!(tick(&mut card, &mut io), vec![(1, LineEvent::OffHook)]);
    let before = world.with("hs", PLAY, |s| s.written.len());
    for _ in 0..5 {
        tick(&mut card, &mut io);
        world.with("hs", PLAY, |s| s.consume(160));
    }
    world.with("hs", PLAY, |s| assert!(s.written[before..].iter().all(|x| x.unsigned_abs() < 16)));
    // Off-hook commands are idempotent; Ring on an off-hook seat does nothing.
    assert!(card.command(ch, LineCommand::OffHook).is_ok());
    assert!(card.command(ch, LineCommand::Ring).is_ok());
    assert!(tick(&mut card, &mut io).is_empty());
    assert!(card.command(ch, LineCommand::Flash).is_ok());
    assert_eq!(tick(&mut card, &mut io), vec![(1, LineEvent::Flash)]);
    assert!(card.command(ch, LineCommand::OnHook).is_ok());
    assert!(card.command(ch, LineCommand::OnHook).is_ok());
    assert_eq!(tick(&mut card, &mut io), vec![(1, LineEvent::OnHook)]);
    // Ring then StopRing on an idle seat raises nothing.
    assert!(card.command(ch, LineCommand::Ring).is_ok());
    assert!(card.command(ch, LineCommand::StopRing).is_ok());
    assert!(tick(&mut card, &mut io).is_empty());
    assert!(matches!(card.command(ChannelId(1), LineCommand::Ring), Err(CardError::NoSuchChannel(_))));
}

#[test]
fn a_line_passes_audio_only_while_off_hook_and_cannot_ring() {
    let world = FakeWorld::default();
    let (mut card, mut io) = card(&world, &[("ln", Role::Line)], Clocking::Master);
    assert_eq!(card.info().channels[0].kind, switchboard_driver_api::ChannelKind::FxoTrunk);
    assert!(matches!(card.command(ChannelId(0), LineCommand::Ring), Err(CardError::BadCommand { .. })));
    let codes: Vec<u8> = (0..480).map(|i| (i % 200) as u8 + 20).collect();
    capture(&world, "ln", coded(&codes));
    tick(&mut card, &mut io);
    assert!(io.rx[0].iter().all(|&c| c == Law::Alaw.silence()), "on-hook: nothing heard");
    assert!(card.command(ChannelId(0), LineCommand::OffHook).is_ok());
    assert!(tick(&mut card, &mut io).is_empty(), "a line raises no hook events");
    assert_eq!(io.rx[0][..], codes[160..320]);
}

#[test]
fn the_clock_device_moves_exactly_one_period_each_way() {
    let world = FakeWorld::default();
    let (mut card, mut io) = card(&world, &[("hs", Role::Seat)], Clocking::Master);
    assert!(card.command(ChannelId(0), LineCommand::OffHook).is_ok());
    let codes: Vec<u8> = (0..480).map(|i| (i * 7 % 256) as u8).collect();
    capture(&world, "hs", coded(&codes));
    let mut sent = Vec::new();
    for t in 0..3 {
        let block: Vec<u8> = (0..160).map(|i| ((t * 160 + i) * 11 % 256) as u8).collect();
        io.tx[0].copy_from_slice(&block);
        sent.extend(coded(&block));
        let events = tick(&mut card, &mut io);
        assert_eq!(events, if t == 0 { vec![(1, LineEvent::OffHook)] } else { vec![] });
        assert_eq!(io.rx[0][..], codes[t * 160..(t + 1) * 160], "tick {t}");
        world.with("hs", PLAY, |s| s.consume(160));
    }
    world.with("hs", PLAY, |s| {
        // A period of prefilled silence, then the blocks exactly.
        assert!(s.written[..160].iter().all(|&x| x == 0));
        assert_eq!(s.written[160..], sent[..]);
    });
    let st = card.stats().device(ChannelId(0)).unwrap_or_default();
    assert_eq!((st.frames_padded, st.frames_dropped, st.xruns), (0, 0, 0));
}

#[test]
fn xruns_are_recovered_in_place_and_counted() {
    let world = FakeWorld::default();
    let (mut card, mut io) = card(&world, &[("hs", Role::Seat)], Clocking::Master);
    capture(&world, "hs", vec![100; 160 * 10]);
    tick(&mut card, &mut io);
    world.with("hs", CAP, |s| s.errors.push(("read", errno::EPIPE)));
    world.with("hs", PLAY, |s| s.errors.push(("write", errno::EPIPE)));
    assert!(tick(&mut card, &mut io).is_empty(), "an xrun raises no alarm");
    assert!(card.is_up(ChannelId(0)));
    world.with("hs", CAP, |s| assert_eq!((s.prepares, s.starts), (1, 2)));
    world.with("hs", PLAY, |s| {
        assert_eq!(s.prepares, 1);
        // Prepare emptied the buffer; it was primed with a period and the block resent.
        assert_eq!(s.queued, 320);
    });
    // The capture ran on: the next ticks read again.
    tick(&mut card, &mut io);
    let st = card.stats().device(ChannelId(0)).unwrap_or_default();
    assert_eq!(st.xruns, 2);
    assert_eq!(st.faults, 0);
}

#[test]
fn suspended_devices_are_resumed_or_restarted() {
    let world = FakeWorld::default();
    let (mut card, mut io) = card(&world, &[("hs", Role::Seat)], Clocking::Slave);
    tick(&mut card, &mut io);
    // Still resuming (EAGAIN): tried again on the next tick, counted once.
    world.with("hs", CAP, |s| s.errors.extend([("avail", errno::ESTRPIPE), ("resume", errno::EAGAIN)]));
    tick(&mut card, &mut io);
    world.with("hs", CAP, |s| s.errors.push(("avail", errno::ESTRPIPE)));
    tick(&mut card, &mut io);
    world.with("hs", CAP, |s| assert_eq!((s.resumes, s.prepares), (2, 0)));
    assert_eq!(card.stats().device(ChannelId(0)).map(|s| s.suspends), Some(1));
    // A driver that cannot resume in place (ENOSYS) gets a prepare and a restart.
    world.with("hs", CAP, |s| s.errors.extend([("avail", errno::ESTRPIPE), ("resume", 38)]));
    tick(&mut card, &mut io);
    world.with("hs", CAP, |s| assert_eq!((s.resumes, s.prepares, s.starts), (3, 1, 2)));
    assert_eq!(card.stats().device(ChannelId(0)).map(|s| s.suspends), Some(2));
    assert!(card.is_up(ChannelId(0)));
}

#[test]
fn an_unplugged_device_alarms_the_others_go_on_and_it_is_reopened_on_schedule() {
    let world = FakeWorld::default();
    let (mut card, mut io) = card(&world, &[("a", Role::Seat), ("b", Role::Seat)], Clocking::Slave);
    for ch in 0..2 {
        assert!(card.command(ChannelId(ch), LineCommand::OffHook).is_ok());
    }
    tick(&mut card, &mut io);
    world.with("a", CAP, |s| s.errors.push(("avail", errno::ENODEV)));
    world.set_absent("a", true);
    let started = Instant::now();
    let events = tick(&mut card, &mut io);
    assert_eq!(events, vec![(1, LOS)]);
    assert!(!card.is_up(ChannelId(0)));
    let fault = card.faults().next().map(|(ch, f)| (ch, f.stream, f.errno));
    assert_eq!(fault, Some((ChannelId(0), CAP, errno::ENODEV)));

    // Device b keeps working while a is down; a carries silence and is not retried on every
    // tick.
    let mut heard = 0;
    while started.elapsed() < Duration::from_millis(60) {
        capture(&world, "b", vec![1000; 160]);
        assert!(tick(&mut card, &mut io).is_empty());
        assert!(io.rx[0].iter().all(|&c| c == Law::Alaw.silence()));
        heard += usize::from(io.rx[1].iter().any(|&c| c != Law::Alaw.silence()));
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(heard > 10);
    let stats = card.stats();
    assert_eq!(stats.device(ChannelId(0)).map(|s| (s.up, s.faults, s.reopen_attempts)), Some((false, 1, 0)));

    // After the interval: one attempt, which fails without a second alarm.
    std::thread::sleep(Duration::from_millis(60));
    assert!(tick(&mut card, &mut io).is_empty());
    assert!(tick(&mut card, &mut io).is_empty());
    assert_eq!(stats.device(ChannelId(0)).map(|s| s.reopen_attempts), Some(1));

    // Plugged back in: cleared at the next attempt, audio flows again.
    world.set_absent("a", false);
    std::thread::sleep(Duration::from_millis(110));
    assert_eq!(tick(&mut card, &mut io), vec![(1, LineEvent::AlarmCleared)]);
    assert!(card.is_up(ChannelId(0)));
    assert_eq!(stats.device(ChannelId(0)).map(|s| (s.up, s.reopen_attempts, s.reopens)), Some((true, 2, 1)));
    assert_eq!(card.faults().count(), 0);
    assert_eq!(card.last_fault(ChannelId(0)).map(|f| f.errno), Some(2));
}

#[test]
fn a_device_missing_at_open_starts_in_alarm() {
    let world = FakeWorld::default();
    world.set_absent("gone", true);
    let (mut card, mut io) = card(&world, &[("ok", Role::Seat), ("gone", Role::Seat)], Clocking::Slave);
    assert_eq!(
        card.faults().map(|(ch, f)| (ch, f.op)).collect::<Vec<_>>(),
        vec![(ChannelId(1), "snd_pcm_open")]
    );
    assert_eq!(tick(&mut card, &mut io), vec![(2, LOS)]);
    assert!(tick(&mut card, &mut io).is_empty());
}

#[test]
fn a_stalled_clock_device_is_a_fault_and_the_wall_clock_takes_over() {
    let world = FakeWorld::default();
    let (mut card, mut io) = card(&world, &[("hs", Role::Seat)], Clocking::Master);
    // Nothing captured: the wait times out.
    assert_eq!(tick(&mut card, &mut io), vec![(1, LOS)]);
    assert_eq!(card.last_fault(ChannelId(0)).map(|f| f.errno), Some(errno::ETIMEDOUT));
    world.set_absent("hs", true);
    // With no device up, ticks are paced 20 ms apart.
    let t = Instant::now();
    for _ in 0..5 {
        tick(&mut card, &mut io);
    }
    let elapsed = t.elapsed();
    assert!(elapsed >= Duration::from_millis(75) && elapsed < Duration::from_millis(300), "{elapsed:?}");
}

#[test]
fn slave_mode_pads_silence_when_the_device_has_nothing() {
    let world = FakeWorld::default();
    let (mut card, mut io) = card(&world, &[("hs", Role::Seat)], Clocking::Slave);
    assert!(card.command(ChannelId(0), LineCommand::OffHook).is_ok());
    tick(&mut card, &mut io);
    for _ in 0..10 {
        tick(&mut card, &mut io);
        assert!(io.rx[0].iter().all(|&c| c == Law::Alaw.silence()));
    }
    assert_eq!(card.stats().device(ChannelId(0)).map(|s| s.frames_padded), Some(11 * 160));
    // Once a cushion of one period beyond the block has built up, audio flows.
    capture(&world, "hs", vec![3000; 320]);
    tick(&mut card, &mut io);
    assert!(io.rx[0].iter().all(|&c| c == g711::linear_to_alaw(3000)));
}

/// Runs a slave-mode device whose crystal delivers and consumes `per_tick` frames per tick.
fn run_drift(per_tick: usize, ticks: usize) -> (crate::DeviceStats, usize, usize) {
    let world = FakeWorld::default();
    let (mut card, mut io) = card(&world, &[("hs", Role::Seat)], Clocking::Slave);
    assert!(card.command(ChannelId(0), LineCommand::OffHook).is_ok());
    tick(&mut card, &mut io);
    let mut silent_blocks = 0;
    let mut phase = 0usize;
    for t in 0..ticks {
        let samples: Vec<i16> = (0..per_tick).map(|i| 2000 + ((phase + i) % 50) as i16 * 100).collect();
        phase += per_tick;
        capture(&world, "hs", samples);
        io.tx[0] = [g711::linear_to_alaw(1000); 160];
        tick(&mut card, &mut io);
        world.with("hs", PLAY, |s| s.consume(per_tick));
        if t > 10 && io.rx[0].iter().all(|&c| c == Law::Alaw.silence()) {
            silent_blocks += 1;
        }
    }
    let queued = world.with("hs", PLAY, |s| s.queued);
    let stats = card.stats().device(ChannelId(0)).unwrap_or_default();
    (stats, silent_blocks, queued)
}

#[test]
fn a_fast_device_has_its_excess_dropped_a_frame_at_a_time() {
    // 161 frames per 160: 6250 ppm, far worse than any real crystal.
    let (st, silent, queued) = run_drift(161, 3000);
    assert_eq!(silent, 0, "no gaps");
    // Capture drops about one frame per tick once the controller has measured the drift;
    // playback inserts about one per tick to keep the faster device fed.
    assert!(st.frames_dropped > 2700 && st.frames_dropped < 3100, "{st:?}");
    assert!(st.frames_padded > 2700 && st.frames_padded < 3300, "{st:?}");
    assert!(queued > 0, "playback never ran dry");
    assert_eq!(st.xruns, 0);
}

#[test]
fn a_slow_device_gets_frames_inserted_instead_of_gaps() {
    let (st, silent, queued) = run_drift(159, 3000);
    assert_eq!(silent, 0, "no gaps");
    assert!(st.frames_padded > 2700 && st.frames_padded < 3400, "{st:?}");
    assert!(st.frames_dropped > 2700 && st.frames_dropped < 3100, "{st:?}");
    assert!(queued < 640, "playback never overflowed");
}

#[test]
fn bad_configurations_are_refused_with_a_reason() {
    let world = FakeWorld::default();
    let open = |c: SoundConfig| SoundCard::with_opener(c, world.opener()).err().map(|e| e.to_string());
    assert!(matches!(
        SoundCard::with_opener(SoundConfig::default(), world.opener()),
        Err(SoundError::NoDevices)
    ));
    let mut c = config(&[("hs", Role::Seat)], Clocking::Master);
    c.devices[0].playback = "bad\0name".into();
    assert_eq!(
        open(c).as_deref(),
        Some("sound device 0: the playback PCM name \"bad\\0name\" contains a NUL byte")
    );
    let mut c = config(&[("hs", Role::Seat)], Clocking::Master);
    c.buffer_periods = 1;
    assert_eq!(open(c).as_deref(), Some("buffer_periods must be between 2 and 16 (got 1)"));
    let mut c = config(&[("hs", Role::Seat)], Clocking::Master);
    c.ring.freqs_hz = [5000, 0];
    assert!(open(c).is_some_and(|e| e.starts_with("ring tone:")));
}

#[test]
fn a_combined_card_ticks_the_devices_at_an_offset() {
    let world = FakeWorld::default();
    let (mut card, _) = card(&world, &[("hs", Role::Seat)], Clocking::Slave);
    // Buffers for a card whose first two channels belong to another card (the clock).
    let mut info = card.info().clone();
    let mut other = info.channels[0].clone();
    other.kind = switchboard_driver_api::ChannelKind::FxoTrunk;
    info.channels.insert(0, other.clone());
    info.channels.insert(0, other);
    let mut io = TickIo::for_card(&info);
    io.push_event(ChannelId(0), LineEvent::RingBegin);
    assert!(card.command(ChannelId(0), LineCommand::OffHook).is_ok());
    card.tick_at(&mut io, 2);
    capture(&world, "hs", vec![3000; 480]);
    card.tick_at(&mut io, 2);
    let events: Vec<_> = io.events.iter().map(|e| (e.channel.port(), e.event)).collect();
    assert_eq!(events, vec![(1, LineEvent::RingBegin), (3, LineEvent::OffHook)]);
    assert!(io.rx[2].iter().all(|&c| c == g711::linear_to_alaw(3000)));
    assert!(io.rx[0].iter().all(|&c| c == Law::Alaw.silence()));
}
