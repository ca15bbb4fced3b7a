//! DSP throughput: our blocks against spandsp's on the same audio.
//!
//! Run with `cargo bench --bench dsp -- --warm-up-time 1 --measurement-time 3`.
//! Throughput is in samples, so "elem/s" reads as samples per second; one telephone
//! channel is 8000 samples per second.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use spandsp::dtmf::DtmfRx;
use spandsp::g711::{G711Mode, G711State};
use switchboard::dsp::echo::EchoCanceller;
use switchboard::dsp::{g711, DtmfDetector, ToneDetector, ToneGenerator, ToneZone};
use switchboard_driver_api::Law;

/// A seeded generator so the benchmark audio is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Roughly Gaussian (sum of four uniforms), unit variance.
    fn noise(&mut self) -> f64 {
        (self.next() + self.next() + self.next() + self.next() - 2.0) * 3f64.sqrt()
    }
}

fn amp(level_dbm0: f64) -> f64 {
    32767.0 * 10f64.powf((level_dbm0 - f64::from(switchboard::dsp::DBM0_MAX_SINE_POWER)) / 20.0)
}

fn digit_freqs(d: char) -> (f64, f64) {
    let keys = ["123A", "456B", "789C", "*0#D"];
    let rows = [697.0, 770.0, 852.0, 941.0];
    let cols = [1209.0, 1336.0, 1477.0, 1633.0];
    for (r, row) in keys.iter().enumerate() {
        if let Some(c) = row.find(d) {
            return (rows[r], cols[c]);
        }
    }
    (0.0, 0.0)
}

/// 10 s in one-second cycles: four digits (50 ms on, 50 ms off) at -5 to -25 dBm0 over a
/// -45 dBm0 noise floor, 0.3 s of -25 dBm0 noise, 0.3 s of near-silence (the floor only).
/// With `floor` off the near-silence is replaced by -25 dBm0 noise, so no block is quiet
/// enough for the energy gate and the comparison is of the filter banks alone.
fn dtmf_audio(quiet_parts: bool) -> Vec<i16> {
    let mut rng = Rng(42);
    let digits: Vec<char> = "1234567890*#ABCD".chars().collect();
    let mut out = Vec::with_capacity(80_000);
    let mut k = 0;
    for second in 0..10 {
        for _ in 0..4 {
            let (fl, fh) = digit_freqs(digits[k % digits.len()]);
            let level = -5.0 - (k % 5) as f64 * 5.0;
            k += 1;
            for i in 0..400 {
                let t = i as f64 / 8000.0;
                let v = amp(level)
                    * ((2.0 * std::f64::consts::PI * fl * t).sin()
                        + (2.0 * std::f64::consts::PI * fh * t).sin());
                out.push(v + amp(-45.0) * rng.noise());
            }
            for _ in 0..400 {
                out.push(amp(-45.0) * rng.noise());
            }
        }
        for _ in 0..2400 {
            out.push(amp(-25.0) * rng.noise());
        }
        let quiet = if quiet_parts { -45.0 } else { -25.0 };
        for _ in 0..2400 {
            out.push(amp(quiet) * rng.noise());
        }
        let _ = second;
    }
    out.iter().map(|&v| v.round().clamp(-32768.0, 32767.0) as i16).collect()
}

fn run_ours(audio: &[i16]) -> usize {
    let mut d = DtmfDetector::new();
    let mut n = 0;
    for chunk in audio.chunks(160) {
        d.process(chunk, |_| n += 1);
    }
    n
}

fn run_spandsp(rx: &mut DtmfRx, audio: &[i16]) -> usize {
    let mut n = 0;
    for chunk in audio.chunks(160) {
        rx.rx(chunk);
        n += rx.get(128).len();
    }
    n
}

fn dtmf(c: &mut Criterion) {
    for (name, quiet) in [("dtmf_detect", true), ("dtmf_detect_no_quiet_blocks", false)] {
        let audio = dtmf_audio(quiet);
        // Both detectors must agree on this audio, or the comparison means nothing.
        let mut rx = DtmfRx::new().expect("spandsp dtmf_rx_init");
        let theirs = run_spandsp(&mut rx, &audio);
        let ours = run_ours(&audio);
        assert_eq!(ours, theirs, "{name}: detections differ");
        assert_eq!(ours, 40, "{name}: expected 40 digits");

        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Elements(audio.len() as u64));
        group.bench_function("ours", |b| b.iter(|| run_ours(black_box(&audio))));
        group.bench_function("spandsp", |b| {
            b.iter(|| {
                // A fresh receiver per run, like ours, so neither carries state over.
                let mut rx = DtmfRx::new().expect("spandsp dtmf_rx_init");
                run_spandsp(&mut rx, black_box(&audio))
            })
        });
        group.finish();
    }
}

fn g711_blocks(c: &mut Criterion) {
    let linear: Vec<i16> = (0..8000).map(|i| ((i * 7919) % 65536 - 32768) as i16).collect();
    let mut codes = vec![0u8; linear.len()];
    let mut back = vec![0i16; linear.len()];
    let mut group = c.benchmark_group("g711");
    group.throughput(Throughput::Elements(linear.len() as u64));
    group.bench_function("alaw_encode/ours", |b| {
        b.iter(|| g711::encode_block(Law::Alaw, black_box(&linear), &mut codes))
    });
    let mut state = G711State::new(G711Mode::ALaw).expect("g711_init");
    group.bench_function("alaw_encode/spandsp", |b| b.iter(|| state.encode(&mut codes, black_box(&linear))));
    g711::encode_block(Law::Alaw, &linear, &mut codes);
    group.bench_function("alaw_decode/ours", |b| {
        b.iter(|| g711::decode_block(Law::Alaw, black_box(&codes), &mut back))
    });
    group.bench_function("alaw_decode/spandsp", |b| b.iter(|| state.decode(&mut back, black_box(&codes))));
    group.bench_function("ulaw_encode/ours", |b| {
        b.iter(|| g711::encode_block(Law::Ulaw, black_box(&linear), &mut codes))
    });
    let mut ustate = G711State::new(G711Mode::ULaw).expect("g711_init");
    group.bench_function("ulaw_encode/spandsp", |b| b.iter(|| ustate.encode(&mut codes, black_box(&linear))));
    g711::encode_block(Law::Ulaw, &linear, &mut codes);
    group.bench_function("ulaw_decode/ours", |b| {
        b.iter(|| g711::decode_block(Law::Ulaw, black_box(&codes), &mut back))
    });
    group.bench_function("ulaw_decode/spandsp", |b| b.iter(|| ustate.decode(&mut back, black_box(&codes))));
    group.finish();
}

fn tone_detect(c: &mut Criterion) {
    // 10 s of Chinese busy tone at -20 dBm0 over light noise.
    let zone = ToneZone::china();
    let mut audio = vec![0i16; 80_000];
    let mut g = ToneGenerator::for_progress_tone(&zone, switchboard::dsp::ProgressTone::Busy, -20.0)
        .expect("busy tone");
    g.fill(&mut audio);
    let mut rng = Rng(7);
    for s in &mut audio {
        *s = s.saturating_add((amp(-50.0) * rng.noise()) as i16);
    }
    let mut group = c.benchmark_group("tone_detect");
    group.throughput(Throughput::Elements(audio.len() as u64));
    group.bench_function("ours", |b| {
        b.iter(|| {
            let mut d = ToneDetector::new(&zone);
            let mut n = 0;
            for chunk in black_box(&audio).chunks(160) {
                d.process(chunk, |_| n += 1);
            }
            n
        })
    });
    group.finish();
}

fn echo(c: &mut Criterion) {
    let mut rng = Rng(9);
    let tx: Vec<i16> = (0..8000).map(|_| (amp(-15.0) * rng.noise()) as i16).collect();
    let rx: Vec<i16> = (0..8000).map(|i| if i >= 40 { tx[i - 40] / 3 } else { 0 }).collect();
    let mut out = vec![0i16; tx.len()];
    let mut ec = EchoCanceller::new();
    let mut group = c.benchmark_group("echo_cancel");
    group.throughput(Throughput::Elements(tx.len() as u64));
    group.bench_function("ours_128_taps", |b| {
        b.iter(|| ec.process_block(black_box(&tx), black_box(&rx), &mut out))
    });
    group.finish();
}

/// The line test's level meter (wideband RMS plus a selective reading at 1004 Hz, over 20 ms
/// segments) against the same measurement made of spandsp's parts: its power meter fed
/// sample by sample and its Goertzel filter over the same 160-sample segments.
fn level_meter(c: &mut Criterion) {
    // 10 s of the 1004 Hz test tone at -16 dBm0 (a line with 6 dB loss) over noise.
    let mut rng = Rng(11);
    let audio: Vec<i16> = (0..80_000)
        .map(|i| {
            let t = f64::from(i) / 8000.0;
            (amp(-16.0) * (2.0 * std::f64::consts::PI * 1004.0 * t).sin() + amp(-50.0) * rng.noise()) as i16
        })
        .collect();
    let mut group = c.benchmark_group("level_meter");
    group.throughput(Throughput::Elements(audio.len() as u64));
    let mut meter = switchboard::dsp::level::LevelMeter::new();
    group.bench_function("ours", |b| {
        b.iter(|| {
            meter.start(Some(1004.0));
            for chunk in black_box(&audio).chunks(160) {
                meter.process(chunk);
            }
            meter.reading().tone_dbm0
        })
    });
    let mut desc = spandsp::tone_detect::GoertzelDescriptor::new(1004.0, 160);
    let mut goertzel = spandsp::tone_detect::GoertzelDetector::new(&mut desc).expect("goertzel");
    let mut power = spandsp::power_meter::PowerMeter::new(6).expect("power meter");
    group.bench_function("spandsp", |b| {
        b.iter(|| {
            goertzel.reset();
            let mut tone = 0.0f32;
            let mut total = 0;
            for chunk in black_box(&audio).chunks(160) {
                for &x in chunk {
                    total = power.update(x);
                }
                goertzel.update(chunk);
                tone += goertzel.result();
            }
            (tone, total)
        })
    });
    group.finish();
}

criterion_group!(benches, dtmf, g711_blocks, tone_detect, echo, level_meter);
criterion_main!(benches);
