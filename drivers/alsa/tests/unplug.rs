//! Devices that disappear and come back, for real through alsa-lib.
//!
//! Two ways to make a `file`-plugin PCM behave like a USB headset being pulled out:
//! * its capture `infile` does not exist, so `snd_pcm_open` fails (a device that is absent);
//! * its playback is a pipe to `cat` (the plugin's `|command` form): killing the `cat` makes
//!   the next write fail (EPIPE inside the plugin, EIO to us), as an unplug fails a running
//!   stream. Removing the capture input at the same time keeps it "absent" until restored.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use switchboard_driver_alsa::{Clocking, SoundCard, SoundConfig, SoundDevice, StreamDir};
use switchboard_driver_api::{Alarms, Card, ChannelId, Law, LineCommand, LineEvent, TickIo};

const LOS: LineEvent =
    LineEvent::Alarm(Alarms { red: false, yellow: false, blue: false, loss_of_signal: true });

fn setup() -> &'static Path {
    alsa_setup("unplug", |dir| {
        let d = dir.display();
        std::fs::create_dir_all(dir.join("late")).expect("dir");
        std::fs::create_dir_all(dir.join("pipe")).expect("dir");
        let mut conf = String::new();
        conf += &capture_pcm("ok_in", &dir.join("ok_in.raw"));
        conf += &playback_pcm("ok_out", &format!("{d}/ok_out.raw"));
        conf += &capture_pcm("late_in", &dir.join("late/in.raw"));
        conf += &playback_pcm("late_out", &format!("{d}/late_out.raw"));
        conf += &capture_pcm("pipe_in", &dir.join("pipe/in.raw"));
        conf += &playback_pcm("pipe_out", &format!("|echo $$ >> {d}/cat.pids; exec cat >> {d}/pipe_out.raw"));
        conf
    })
}

fn device(name: &str) -> SoundDevice {
    SoundDevice {
        capture: format!("plug:{name}_in"),
        playback: format!("plug:{name}_out"),
        ..SoundDevice::seat("")
    }
}

/// Ticks for up to `limit` (throttled, as the null PCM would otherwise run flat out) until
/// `until` accepts an event; returns everything seen and whether `until` matched.
struct Run {
    events: Vec<(u16, LineEvent)>,
    ticks: u32,
    /// Ticks on which each port received something other than silence.
    heard: [u32; 3],
}

fn run(card: &mut SoundCard, io: &mut TickIo, limit: Duration, until: Option<(u16, LineEvent)>) -> Run {
    let start = Instant::now();
    let mut r = Run { events: Vec::new(), ticks: 0, heard: [0; 3] };
    while start.elapsed() < limit {
        let events = tick(card, io);
        r.ticks += 1;
        for (p, rx) in io.rx.iter().enumerate() {
            r.heard[p] += u32::from(rx.iter().any(|&c| c != Law::Alaw.silence()));
        }
        let done = until.is_some_and(|u| events.contains(&u));
        r.events.extend(events);
        if done {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    r
}

fn last_pid(dir: &Path) -> String {
    let pids = std::fs::read_to_string(dir.join("cat.pids")).expect("cat.pids");
    pids.lines().last().expect("a pid").trim().to_owned()
}

#[test]
fn devices_that_vanish_raise_alarms_the_others_carry_on_and_they_come_back() {
    let _serial = serial();
    let dir = setup();
    let input = sine(300.0, 6000.0, 8000 * 60);
    write_raw(&dir.join("ok_in.raw"), &input);
    write_raw(&dir.join("pipe/in.raw"), &input);
    let _ = std::fs::remove_file(dir.join("late/in.raw"));

    let config = SoundConfig {
        devices: vec![device("ok"), device("late"), device("pipe")],
        clocking: Clocking::Master,
        reopen_interval: Duration::from_millis(200),
        ..SoundConfig::default()
    };
    let mut card = SoundCard::open(config).expect("open");
    let mut io = TickIo::for_card(card.info());
    for ch in 0..3 {
        card.command(ChannelId(ch), LineCommand::OffHook).expect("off-hook");
    }
    // The absent device is reported at open and by an alarm on the first tick.
    let faults: Vec<_> = card.faults().map(|(ch, f)| (ch, f.stream, f.op, f.errno)).collect();
    assert_eq!(faults, vec![(ChannelId(1), StreamDir::Capture, "snd_pcm_open", 2)]);
    let first = tick(&mut card, &mut io);
    assert!(first.contains(&(2, LOS)), "{first:?}");

    // For 500 ms the others work, and the absent one is retried twice, not on every tick.
    let r = run(&mut card, &mut io, Duration::from_millis(500), None);
    assert!(!r.events.contains(&(2, LineEvent::AlarmCleared)));
    assert!(r.heard[0] + 2 >= r.ticks && r.heard[2] + 5 >= r.ticks, "{:?} of {}", r.heard, r.ticks);
    assert_eq!(r.heard[1], 0);
    let late = card.stats().device(ChannelId(1)).expect("stats");
    assert!(
        (1..=3).contains(&late.reopen_attempts),
        "{} attempts in {} ticks",
        late.reopen_attempts,
        r.ticks
    );
    assert!(r.ticks > 50);

    // Plugged in: cleared at the next attempt, and its audio arrives.
    write_raw(&dir.join("late/in.raw"), &input);
    let r = run(&mut card, &mut io, Duration::from_secs(2), Some((2, LineEvent::AlarmCleared)));
    assert!(r.events.contains(&(2, LineEvent::AlarmCleared)), "{:?}", r.events);
    let r = run(&mut card, &mut io, Duration::from_millis(100), None);
    assert!(r.heard[1] + 5 >= r.ticks, "{:?} of {}", r.heard, r.ticks);
    assert!(card.is_up(ChannelId(1)));

    // The piped device is pulled out while running.
    let cat = last_pid(dir);
    let out_before = std::fs::metadata(dir.join("pipe_out.raw")).map(|m| m.len()).unwrap_or(0);
    assert!(out_before > 0, "the piped device played");
    std::fs::remove_file(dir.join("pipe/in.raw")).expect("unplug capture");
    let killed = std::process::Command::new("kill").args(["-9", &cat]).status().expect("kill");
    assert!(killed.success());
    let r = run(&mut card, &mut io, Duration::from_secs(2), Some((3, LOS)));
    assert!(r.events.contains(&(3, LOS)), "{:?}", r.events);
    let fault = card.last_fault(ChannelId(2)).expect("fault");
    assert_eq!((fault.stream, fault.op, fault.errno), (StreamDir::Playback, "snd_pcm_writei", 5), "{fault}");
    // The others did not notice.
    let r = run(&mut card, &mut io, Duration::from_millis(300), None);
    assert!(r.heard[0] + 2 >= r.ticks && r.heard[1] + 5 >= r.ticks, "{:?} of {}", r.heard, r.ticks);
    assert_eq!(r.heard[2], 0);
    assert!(r.events.is_empty(), "{:?}", r.events);

    // Plugged back in: a new cat, the alarm cleared, audio flowing again.
    write_raw(&dir.join("pipe/in.raw"), &input);
    let r = run(&mut card, &mut io, Duration::from_secs(2), Some((3, LineEvent::AlarmCleared)));
    assert!(r.events.contains(&(3, LineEvent::AlarmCleared)), "{:?}", r.events);
    let r = run(&mut card, &mut io, Duration::from_millis(200), None);
    assert!(r.heard[2] + 5 >= r.ticks);
    assert_ne!(last_pid(dir), cat);
    let stats = card.stats().device(ChannelId(2)).expect("stats");
    assert_eq!((stats.faults, stats.reopens, stats.up), (1, 1, true), "{stats:?}");
    assert_eq!(card.stats().device(ChannelId(0)).map(|s| (s.faults, s.xruns)), Some((0, 0)));
    drop(card);
    let out_after = std::fs::metadata(dir.join("pipe_out.raw")).map(|m| m.len()).unwrap_or(0);
    assert!(out_after > out_before, "the new cat got audio");
    let _ = std::fs::remove_dir_all(dir);
}
