//! `switchboard bench media`: the per-channel pipeline on the simulated card.
//!
//! Every channel receives a looping test signal (noise at speech level with DTMF digits in
//! it) and runs the full receive pipeline: G.711 decode, DTMF detection, call-progress tone
//! detection, and the recording tap, whose blocks a separate thread drains. The first run is
//! free-running and reports channels per core (seconds of audio processed per CPU second of
//! the engine thread, times channels). The second paces ticks in real time on a real-time
//! thread and reports deadline misses.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use switchboard_driver_api::{Block, ChannelInfo, Pacing, BLOCK_SAMPLES};
use switchboard_driver_sim::{FarAction, FarEnd, FarLine, SimCard, SimConfig};

use crate::audio::recorder::RecBlock;
use crate::dsp::dtmf::DtmfGenerator;
use crate::dsp::g711;
use crate::media::{spawn, Engine, EngineCmd, EngineConfig, EngineEnds, Prompts};

/// Seconds of looping test signal.
const SIGNAL_SECONDS: usize = 8;

/// A far end that plays a pre-encoded signal, each channel at its own offset.
struct LoopFarEnd {
    signal: Vec<u8>,
    offsets: Vec<usize>,
}

impl LoopFarEnd {
    fn new(channels: usize) -> LoopFarEnd {
        let len = SIGNAL_SECONDS * 8000;
        let mut linear = vec![0i16; len];
        // Pseudo-random noise around -25 dBm0, as a stand-in for speech energy.
        let mut seed: u32 = 0x1234_5678;
        for s in linear.iter_mut() {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            *s = ((seed >> 16) as i16) >> 5;
        }
        // A digit every second.
        let mut generator = DtmfGenerator::new(-10.0, 80, 920);
        let _ = generator.push_digits("12345678");
        let mut digits = vec![0i16; len];
        for chunk in digits.chunks_mut(BLOCK_SAMPLES) {
            generator.fill(chunk);
        }
        for (s, d) in linear.iter_mut().zip(&digits) {
            *s = s.saturating_add(*d);
        }
        let mut signal = vec![0u8; len];
        g711::encode_block(switchboard_driver_api::Law::Alaw, &linear, &mut signal);
        let offsets = (0..channels).map(|c| (c * 7 * BLOCK_SAMPLES) % len).collect();
        LoopFarEnd { signal, offsets }
    }
}

impl FarEnd for LoopFarEnd {
    fn tick(&mut self, ch: &ChannelInfo, _: FarLine, _: &Block, say: &mut Block) -> FarAction {
        let i = usize::from(ch.id.0);
        let offset = self.offsets[i];
        say.copy_from_slice(&self.signal[offset..offset + BLOCK_SAMPLES]);
        self.offsets[i] = (offset + BLOCK_SAMPLES) % self.signal.len();
        FarAction::None
    }
}

struct Rig {
    engine: Engine<SimCard<LoopFarEnd>>,
    ends: EngineEnds,
    drained: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    drain: std::thread::JoinHandle<()>,
}

fn rig(channels: u16, pacing: Pacing, echo: bool) -> Rig {
    let sim = SimConfig {
        trunk_ports: channels % 30,
        seat_ports: 0,
        e1_spans: channels / 30,
        pacing,
        ..SimConfig::default()
    };
    let info = switchboard_driver_sim::describe(&sim);
    let card = SimCard::new(sim, LoopFarEnd::new(info.channels.len()));
    let (rec_tx, mut rec_rx) = rtrb::RingBuffer::<RecBlock>::new(usize::from(channels) * 50);
    let config = EngineConfig {
        realtime: pacing == Pacing::RealTime,
        echo_canceller: echo,
        ..EngineConfig::default()
    };
    let (engine, mut ends) = Engine::new(card, &config, Arc::new(Prompts::default()), Some(rec_tx));
    for c in info.channels.iter().filter(|c| c.kind.carries_audio()) {
        let _ = ends.commands.push(EngineCmd::RecordStart { channel: c.id, slot: c.id.0 });
    }
    let drained = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (d, s) = (drained.clone(), stop.clone());
    let drain = std::thread::spawn(move || {
        while !s.load(Ordering::Relaxed) {
            let mut n = 0;
            while rec_rx.pop().is_ok() {
                n += 1;
            }
            d.fetch_add(n, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    Rig { engine, ends, drained, stop, drain }
}

fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes a timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Runs the benchmark and prints its figures.
pub fn media(channels: u16, seconds: f64, realtime: bool, echo: bool) -> Result<()> {
    let ticks = (seconds * 50.0).ceil() as u64;

    // Free-running throughput.
    let mut r = rig(channels, Pacing::FreeRunning, echo);
    let mut digits = 0u64;
    let cpu0 = thread_cpu_time();
    let wall0 = Instant::now();
    for _ in 0..ticks {
        r.engine.tick().context("card tick failed")?;
        while let Ok(ev) = r.ends.events.pop() {
            if matches!(ev, crate::media::EngineEvent::Dtmf { .. }) {
                digits += 1;
            }
        }
    }
    let cpu = thread_cpu_time().saturating_sub(cpu0).as_secs_f64();
    let wall = wall0.elapsed().as_secs_f64();
    r.stop.store(true, Ordering::Relaxed);
    let _ = r.drain.join();
    let audio_seconds = ticks as f64 / 50.0;
    let per_core = f64::from(channels) * audio_seconds / cpu.max(1e-9);
    println!(
        "media pipeline: G.711 decode + DTMF + call-progress tones + recording tap + encode (echo canceller {})",
        if echo { "on, 128 taps" } else { "off" }
    );
    println!(
        "free-running: {channels} channels x {audio_seconds:.1} s of audio in {cpu:.3} s CPU ({wall:.3} s wall)"
    );
    println!("  channels per core: {per_core:.0}");
    println!("  digits detected: {digits} (expected about {})", u64::from(channels) * (ticks / 50));
    println!("  recording blocks handed to the writer: {}", r.drained.load(Ordering::Relaxed));
    let s = r.ends.stats.snapshot();
    println!(
        "  events dropped: {}  recording blocks dropped: {}",
        s.events_dropped, s.recording_blocks_dropped
    );

    if realtime {
        let r = rig(channels, Pacing::RealTime, echo);
        let Rig { engine, ends, drained, stop, drain } = r;
        let stats = ends.stats.clone();
        let mut handle = spawn(engine, ends, "bench-media", 50).context("cannot start the engine thread")?;
        let rt = handle.realtime_scheduling;
        let until = Instant::now() + Duration::from_secs_f64(seconds);
        while Instant::now() < until {
            while handle.poll_event().is_some() {}
            std::thread::sleep(Duration::from_millis(10));
        }
        handle.stop();
        stop.store(true, Ordering::Relaxed);
        let _ = drain.join();
        let s = stats.snapshot();
        let load = s.busy_ns as f64 / (s.ticks.max(1) as f64 * 20e6) * 100.0;
        println!(
            "real-time: {channels} channels for {seconds:.0} s ({}): {} ticks, {} deadline misses, \
             max tick {:.3} ms, mean load {load:.1} % of one core",
            if rt { "SCHED_FIFO" } else { "normal priority: SCHED_FIFO not permitted" },
            s.ticks,
            s.deadline_misses,
            s.max_tick_ns as f64 / 1e6
        );
        println!(
            "  recording blocks handed to the writer: {}  dropped: {}  events dropped: {}",
            drained.load(Ordering::Relaxed),
            s.recording_blocks_dropped,
            s.events_dropped
        );
    }
    Ok(())
}
