//! The card against real alsa-lib, through the plug layer and the `file` plugin over `null`:
//! audio both ways, the headset alert, hook commands, slave mode, and the cost of a tick.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use switchboard_driver_alsa::{g711, Clocking, SoundCard, SoundConfig, SoundDevice};
use switchboard_driver_api::{Card, ChannelId, Law, LineCommand, LineEvent, TickIo};

fn setup() -> &'static Path {
    alsa_setup("file", |dir| {
        let mut conf = String::new();
        conf += &capture_pcm("hs_in", &dir.join("hs_in.raw"));
        conf += &playback_pcm("hs_out", &dir.join("hs_out.raw").display().to_string());
        conf += &capture_pcm("sl_in", &dir.join("sl_in.raw"));
        conf += &playback_pcm("sl_out", &dir.join("sl_out.raw").display().to_string());
        conf += &capture_pcm("bench_in", Path::new("/dev/zero"));
        conf += &playback_pcm("bench_out", "/dev/null");
        conf
    })
}

fn device(capture: &str, playback: &str) -> SoundDevice {
    SoundDevice { capture: capture.into(), playback: playback.into(), ..SoundDevice::seat("") }
}

fn open(devices: Vec<SoundDevice>, clocking: Clocking) -> (SoundCard, TickIo) {
    let card = SoundCard::open(SoundConfig { devices, clocking, ..SoundConfig::default() }).expect("open");
    if let Some((ch, f)) = card.faults().next() {
        panic!("{ch} did not open: {f}");
    }
    let io = TickIo::for_card(card.info());
    (card, io)
}

#[test]
fn master_mode_audio_both_ways_alert_and_hook_events() {
    let _serial = serial();
    let dir = setup();
    // The capture input: exact A-law values, so the codes the card must deliver are known.
    let codes: Vec<u8> = (0..60 * 160).map(|i| (i * 37 % 256) as u8).collect();
    let input: Vec<i16> = codes.iter().map(|&c| g711::decode(Law::Alaw, c)).collect();
    write_raw(&dir.join("hs_in.raw"), &input);

    let (mut card, mut io) = open(vec![device("plug:hs_in", "plug:hs_out")], Clocking::Master);
    let ch = ChannelId(0);
    card.command(ch, LineCommand::OffHook).expect("off-hook");

    // 50 ticks (1 s) of a 1 kHz tone at -12 dBFS peak sent, the input received.
    let tone = encode(&sine(1000.0, 8000.0, 50 * 160));
    for t in 0..50 {
        io.tx[0].copy_from_slice(&tone[t * 160..(t + 1) * 160]);
        let events = tick(&mut card, &mut io);
        assert_eq!(events, if t == 0 { vec![(1, LineEvent::OffHook)] } else { vec![] }, "tick {t}");
        assert_eq!(io.rx[0][..], codes[t * 160..(t + 1) * 160], "received block {t}");
    }

    // The desktop hangs up, then the seat is rung for 2 s (1 s of alert, 1 s of pause).
    card.command(ch, LineCommand::OnHook).expect("on-hook");
    card.command(ch, LineCommand::Ring).expect("ring");
    io.tx[0] = [Law::Alaw.silence(); 160];
    for t in 0..100 {
        let events = tick(&mut card, &mut io);
        assert_eq!(events, if t == 0 { vec![(1, LineEvent::OnHook)] } else { vec![] });
        // On-hook, the microphone is not heard.
        assert!(io.rx[0].iter().all(|&c| c == Law::Alaw.silence()));
    }
    card.command(ch, LineCommand::StopRing).expect("stop ring");
    for _ in 0..10 {
        assert!(tick(&mut card, &mut io).is_empty());
    }
    let stats = card.stats().device(ch).expect("stats");
    assert_eq!((stats.xruns, stats.faults, stats.frames_padded, stats.frames_dropped), (0, 0, 0, 0));
    // Closing the card flushes the file plugin's buffer.
    drop(card);

    let out = read_raw(&dir.join("hs_out.raw"));
    // One period of prefilled silence, then exactly one period per tick.
    assert_eq!(out.len(), 160 * (1 + 50 + 100 + 10));
    assert!(out[..160].iter().all(|&s| s == 0));
    let sent = &out[160..160 + 50 * 160];
    let expected: Vec<i16> = tone.iter().map(|&c| g711::decode(Law::Alaw, c)).collect();
    assert_eq!(sent, &expected[..], "the tone arrives sample for sample");
    // The level within G.711's quantisation (A-law steps are 1/32 of the segment, and a 1 kHz
    // tone at 8 kHz samples the same eight phases every period, so the error does not
    // average out): 0.3 dB.
    let level = tone_level(sent, 1000.0);
    assert!((level / 8000.0 - 1.0).abs() < 0.035, "1 kHz at {level:.0}");
    assert!(tone_level(sent, 600.0) < 50.0 && tone_level(sent, 1400.0) < 50.0);
    let rms = rms(sent);
    assert!((rms / (8000.0 / 2f64.sqrt()) - 1.0).abs() < 0.035, "rms {rms:.0}");

    let alert = &out[160 + 50 * 160..160 + 100 * 160];
    let pause = &out[160 + 100 * 160..];
    let level = tone_level(alert, 425.0);
    assert!((level - 4000.0).abs() < 100.0, "425 Hz alert at {level:.0}");
    assert!(tone_level(alert, 1000.0) < 50.0);
    assert!(pause.iter().all(|&s| s == 0), "the cadence pauses and StopRing silences it");
}

#[test]
fn slave_mode_never_blocks_and_keeps_the_audio_flowing() {
    let _serial = serial();
    let dir = setup();
    // The null PCM under the file plugin is infinitely fast: every tick finds the whole
    // buffer captured and free, so the jitter buffer has to throw the excess away.
    write_raw(&dir.join("sl_in.raw"), &sine(1000.0, 8000.0, 8000 * 60));
    let (mut card, mut io) = open(vec![device("plug:sl_in", "plug:sl_out")], Clocking::Slave);
    card.command(ChannelId(0), LineCommand::OffHook).expect("off-hook");
    let tone = encode(&sine(500.0, 8000.0, 160));
    let mut slowest = Duration::ZERO;
    let mut heard = 0;
    for _ in 0..500 {
        io.tx[0].copy_from_slice(&tone);
        let t = Instant::now();
        card.tick(&mut io).expect("tick");
        slowest = slowest.max(t.elapsed());
        let rx: Vec<i16> = io.rx[0].iter().map(|&c| g711::decode(Law::Alaw, c)).collect();
        if tone_level(&rx, 1000.0) > 6000.0 {
            heard += 1;
        }
    }
    eprintln!("slave mode: slowest tick {slowest:?}");
    assert!(slowest < Duration::from_millis(5), "a slave tick does not wait: {slowest:?}");
    assert!(heard > 490, "the captured tone arrives ({heard} of 500 blocks)");
    let stats = card.stats().device(ChannelId(0)).expect("stats");
    assert!(stats.frames_dropped > 0, "the excess of a fast device is dropped and counted: {stats:?}");
    drop(card);
    let out = read_raw(&dir.join("sl_out.raw"));
    assert!(out.len() >= 500 * 159);
    // Playback to a device that seems to run fast gets a frame inserted per tick, so look at
    // the tone one block at a time.
    for w in out[8000..16000].chunks(160) {
        assert!(tone_level(w, 500.0) > 7000.0);
    }
}

/// The cost of a tick, measured on the file plugin (one read and one write system call per
/// device per tick, about what a hw device costs). Printed; bounded loosely so a slow CI
/// machine does not fail it.
#[test]
fn tick_cost() {
    let _serial = serial();
    setup();
    for (n, clocking) in [(1, Clocking::Master), (8, Clocking::Master), (8, Clocking::Slave)] {
        let (mut card, mut io) = open(vec![device("plug:bench_in", "plug:bench_out"); n], clocking);
        for ch in 0..n {
            card.command(ChannelId(ch as u16), LineCommand::OffHook).expect("off-hook");
        }
        card.command(ChannelId(0), LineCommand::OnHook).expect("on-hook");
        card.command(ChannelId(0), LineCommand::Ring).expect("ring");
        for _ in 0..100 {
            card.tick(&mut io).expect("tick");
        }
        let ticks = 5000;
        let t = Instant::now();
        for _ in 0..ticks {
            card.tick(&mut io).expect("tick");
        }
        let per_tick = t.elapsed() / ticks;
        let per_device = per_tick / n as u32;
        eprintln!("{clocking:?}, {n} device(s): {per_tick:?} per tick, {per_device:?} per device");
        assert!(per_device < Duration::from_millis(1));
    }
}
