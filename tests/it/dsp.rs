//! The DSP blocks against spandsp and against the ITU-T Q.24 DTMF properties.
//!
//! spandsp (a dev-dependency that builds the C library) is the reference: G.711 must be
//! bit-exact with it, and on the DTMF conformance set both detectors must report the same
//! digits. Talk-off material is speech synthesised with espeak-ng and resampled with sox;
//! both tools are required, and the tests fail with an install hint when they are missing.

use std::f64::consts::PI;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use spandsp::dtmf::{DtmfRx, DtmfTx};
use spandsp::g711::{G711Mode, G711State};
use switchboard::dsp::DBM0_MAX_SINE_POWER;
use switchboard::dsp::{
    dbm0, dtmf, echo::EchoCanceller, g711, tonegen::Cadence, DtmfDetector, DtmfError, DtmfGenerator,
    ProgressTone, ToneDetector, ToneGenerator, ToneSpec, ToneZone, VoiceActivity,
};
use switchboard_driver_api::Law;

// ---------------------------------------------------------------------------------------
// Signal helpers
// ---------------------------------------------------------------------------------------

/// A seeded generator so noise and timing jitter are reproducible without a crate.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        // xorshift64*: small, fast and good enough for test noise.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// A standard normal sample (Box–Muller).
    fn gauss(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * PI * u2).cos()
    }
}

/// Peak amplitude of a sine at `level` dBm0 (spandsp's convention: full scale = +3.14).
fn amp(level: f64) -> f64 {
    32767.0 * 10f64.powf((level - f64::from(DBM0_MAX_SINE_POWER)) / 20.0)
}

fn key_freqs(digit: char) -> (f64, f64) {
    const ROWS: [f64; 4] = [697.0, 770.0, 852.0, 941.0];
    const COLS: [f64; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
    const KEYS: [&str; 4] = ["123A", "456B", "789C", "*0#D"];
    for (r, row) in KEYS.iter().enumerate() {
        if let Some(c) = row.find(digit) {
            return (ROWS[r], COLS[c]);
        }
    }
    panic!("not a DTMF digit: {digit}");
}

/// How one DTMF burst is synthesised.
#[derive(Clone, Copy, Debug)]
struct Burst {
    /// Relative frequency error of the low and high tone (0.015 = +1.5 %).
    low_dev: f64,
    high_dev: f64,
    /// Level of the low and high tone in dBm0.
    low_dbm0: f64,
    high_dbm0: f64,
    on_ms: f64,
    off_ms: f64,
}

impl Burst {
    fn nominal() -> Burst {
        Burst { low_dev: 0.0, high_dev: 0.0, low_dbm0: -10.0, high_dbm0: -10.0, on_ms: 50.0, off_ms: 50.0 }
    }
}

fn push_silence(out: &mut Vec<f64>, samples: usize) {
    out.extend(std::iter::repeat(0.0).take(samples));
}

/// Appends one digit burst and its pause, with random starting phases.
fn push_digit(out: &mut Vec<f64>, digit: char, b: &Burst, rng: &mut Rng) {
    let (fl, fh) = key_freqs(digit);
    let (fl, fh) = (fl * (1.0 + b.low_dev), fh * (1.0 + b.high_dev));
    let (al, ah) = (amp(b.low_dbm0), amp(b.high_dbm0));
    let (pl, ph) = (rng.uniform() * 2.0 * PI, rng.uniform() * 2.0 * PI);
    let n = (b.on_ms * 8.0).round() as usize;
    for i in 0..n {
        let t = i as f64 / 8000.0;
        out.push(al * (2.0 * PI * fl * t + pl).sin() + ah * (2.0 * PI * fh * t + ph).sin());
    }
    push_silence(out, (b.off_ms * 8.0).round() as usize);
}

fn add_noise(signal: &mut [f64], level_dbm0: f64, rng: &mut Rng) {
    // White Gaussian noise whose RMS equals that of a sine at `level_dbm0`.
    let rms = amp(level_dbm0) / 2f64.sqrt();
    for s in signal {
        *s += rms * rng.gauss();
    }
}

fn to_i16(signal: &[f64]) -> Vec<i16> {
    signal.iter().map(|&x| x.round().clamp(-32768.0, 32767.0) as i16).collect()
}

// ---------------------------------------------------------------------------------------
// Running the detectors
// ---------------------------------------------------------------------------------------

/// Our detector over `samples`, fed in 160-sample ticks like the media engine does.
fn ours(samples: &[i16]) -> String {
    let mut d = DtmfDetector::new();
    let mut out = String::new();
    for chunk in samples.chunks(160) {
        d.process(chunk, |c| out.push(c));
    }
    out
}

/// spandsp's `dtmf_rx` with its default settings over the same samples.
fn spandsp(samples: &[i16]) -> String {
    let mut rx = DtmfRx::new().expect("spandsp dtmf_rx_init");
    let mut out = String::new();
    for chunk in samples.chunks(160) {
        rx.rx(chunk);
        out.push_str(&rx.get(128));
    }
    out
}

/// One case of the conformance set.
struct Case {
    name: String,
    audio: Vec<i16>,
    /// What Q.24 requires the detector to report.
    expect: String,
}

/// Runs every case through both detectors. Ours must give exactly what Q.24 requires.
/// spandsp must give the same digits as ours, except in a set whose `spandsp_deviation`
/// explains why spandsp itself does not conform there; those cases are printed, not hidden.
fn assert_conformance(cases: &[Case], spandsp_deviation: Option<&str>) {
    let mut wrong = Vec::new();
    let mut disagree = Vec::new();
    for c in cases {
        let a = ours(&c.audio);
        let b = spandsp(&c.audio);
        if a != c.expect {
            wrong.push(format!("{}: expected {:?}, ours {:?}", c.name, c.expect, a));
        }
        if a != b {
            disagree.push(format!("{}: ours {:?}, spandsp {:?}", c.name, a, b));
        }
    }
    assert!(wrong.is_empty(), "{} of {} cases fail Q.24:\n{}", wrong.len(), cases.len(), wrong.join("\n"));
    match spandsp_deviation {
        None => assert!(
            disagree.is_empty(),
            "{} of {} cases differ from spandsp:\n{}",
            disagree.len(),
            cases.len(),
            disagree.join("\n")
        ),
        Some(why) => {
            println!("spandsp differs in {} of {} cases ({why}):", disagree.len(), cases.len());
            for d in &disagree {
                println!("  {d}");
            }
        }
    }
}

const ALL_KEYS: &str = "123A456B789C*0#D";

/// Every key with the same burst, each clip with a random lead-in so block alignment varies.
fn keys_case(name: &str, b: &Burst, noise_dbm0: Option<f64>, seed: u64, expect_all: bool) -> Case {
    let mut rng = Rng(seed);
    let mut sig = Vec::new();
    push_silence(&mut sig, 100 + rng.below(102));
    for d in ALL_KEYS.chars() {
        push_digit(&mut sig, d, b, &mut rng);
        push_silence(&mut sig, rng.below(102));
    }
    push_silence(&mut sig, 400);
    if let Some(level) = noise_dbm0 {
        add_noise(&mut sig, level, &mut rng);
    }
    Case {
        name: name.to_string(),
        audio: to_i16(&sig),
        expect: if expect_all { ALL_KEYS.to_string() } else { String::new() },
    }
}

// ---------------------------------------------------------------------------------------
// G.711
// ---------------------------------------------------------------------------------------

#[test]
fn g711_encode_is_bit_exact_with_spandsp_for_every_input() {
    let all: Vec<i16> = (i16::MIN..=i16::MAX).collect();
    for (mode, law) in [(G711Mode::ALaw, Law::Alaw), (G711Mode::ULaw, Law::Ulaw)] {
        // The C codec, through its block API.
        let mut state = G711State::new(mode).expect("g711_init");
        let mut theirs = vec![0u8; all.len()];
        assert_eq!(state.encode(&mut theirs, &all), all.len());
        let mut mine = vec![0u8; all.len()];
        g711::encode_block(law, &all, &mut mine);
        for (i, &x) in all.iter().enumerate() {
            assert_eq!(mine[i], theirs[i], "{law:?} encode({x})");
            // The crate's inline helpers (spandsp's g711.h) and our scalar functions.
            let reference = match law {
                Law::Alaw => spandsp::g711::linear_to_alaw(x),
                Law::Ulaw => spandsp::g711::linear_to_ulaw(x),
            };
            assert_eq!(g711::encode(law, x), reference, "{law:?} encode({x})");
        }
    }
}

#[test]
fn g711_decode_is_bit_exact_with_spandsp_for_every_code() {
    let codes: Vec<u8> = (0..=255).collect();
    for (mode, law) in [(G711Mode::ALaw, Law::Alaw), (G711Mode::ULaw, Law::Ulaw)] {
        let mut state = G711State::new(mode).expect("g711_init");
        let mut theirs = vec![0i16; 256];
        assert_eq!(state.decode(&mut theirs, &codes), 256);
        let mut mine = vec![0i16; 256];
        g711::decode_block(law, &codes, &mut mine);
        assert_eq!(mine, theirs, "{law:?}");
        for &c in &codes {
            let reference = match law {
                Law::Alaw => spandsp::g711::alaw_to_linear(c),
                Law::Ulaw => spandsp::g711::ulaw_to_linear(c),
            };
            assert_eq!(g711::decode(law, c), reference, "{law:?} decode({c:#04x})");
        }
    }
    assert_eq!(g711::alaw_decode(0xD5), 8);
    assert_eq!(g711::ulaw_decode(0xFF), 0);
}

// ---------------------------------------------------------------------------------------
// DTMF conformance (ITU-T Q.24)
// ---------------------------------------------------------------------------------------

#[test]
fn dtmf_nominal_keys_are_detected_once_each() {
    let cases: Vec<Case> = (0..20)
        .map(|seed| keys_case(&format!("nominal seed {seed}"), &Burst::nominal(), None, seed + 1, true))
        .collect();
    assert_conformance(&cases, None);
}

#[test]
fn dtmf_frequency_within_1_5_percent_is_accepted() {
    let mut cases = Vec::new();
    let mut seed = 100;
    for low_dev in [-0.015, 0.0, 0.015] {
        for high_dev in [-0.015, 0.0, 0.015] {
            seed += 1;
            let b = Burst { low_dev, high_dev, ..Burst::nominal() };
            cases.push(keys_case(&format!("dev low {low_dev:+} high {high_dev:+}"), &b, None, seed, true));
        }
    }
    // spandsp judges frequency only through its energy-share test: with both tones 1.5 %
    // off, a high-group tone loses up to 1.45 dB in the 102-sample filter and the pair falls
    // below its -0.85 dB share, so it misses digits (mostly the 1477 and 1633 Hz columns).
    assert_conformance(
        &cases,
        Some("spandsp misses digits with both tones 1.5 % off: no compensation for the filter loss"),
    );
    let on_frequency: Vec<Case> = cases.into_iter().filter(|c| c.name == "dev low +0 high +0").collect();
    assert_eq!(on_frequency.len(), 1);
    assert_conformance(&on_frequency, None);
}

#[test]
fn dtmf_frequency_beyond_3_5_percent_is_rejected() {
    let mut cases = Vec::new();
    let mut seed = 200;
    // Both tones off by 3.5 % (or more) in any direction.
    for low_dev in [-0.035, 0.035] {
        for high_dev in [-0.035, 0.035] {
            seed += 1;
            let b = Burst { low_dev, high_dev, ..Burst::nominal() };
            cases.push(keys_case(&format!("dev low {low_dev:+} high {high_dev:+}"), &b, None, seed, false));
        }
    }
    for dev in [-0.05, 0.05] {
        seed += 1;
        let b = Burst { low_dev: dev, high_dev: dev, ..Burst::nominal() };
        cases.push(keys_case(&format!("dev both {dev:+}"), &b, None, seed, false));
    }
    assert_conformance(&cases, None);
}

#[test]
fn dtmf_one_tone_3_5_percent_off_is_rejected() {
    // A digit with one good tone and one tone 3.5 % off must be rejected too. spandsp
    // sums both tones in its energy-share test, so a low-group tone 3.5 % off (only 24-33 Hz,
    // 1.4 dB down its filter) passes with a perfect partner: spandsp reports such digits.
    // Ours measures each tone's frequency error separately and rejects it.
    let mut cases = Vec::new();
    let mut seed = 300;
    for (low_dev, high_dev) in [(-0.035, 0.0), (0.035, 0.0), (0.0, -0.035), (0.0, 0.035)] {
        seed += 1;
        let b = Burst { low_dev, high_dev, ..Burst::nominal() };
        cases.push(keys_case(&format!("low {low_dev:+} high {high_dev:+}"), &b, None, seed, false));
    }
    assert_conformance(
        &cases,
        Some("spandsp accepts a low-group tone 3.5 % off when the high tone is exact"),
    );
    // With the high tone off, spandsp rejects as well: the two agree there.
    assert_conformance(&cases[2..], None);
}

#[test]
fn dtmf_40ms_tones_with_40ms_pauses_are_all_detected() {
    let mut cases = Vec::new();
    for seed in 0..30u64 {
        let mut rng = Rng(1000 + seed);
        let b = Burst { on_ms: 40.0, off_ms: 40.0, ..Burst::nominal() };
        // Repeated keys check that a 40 ms pause is enough to separate presses.
        let digits = "1111555599990000####DDDD".to_string() + ALL_KEYS;
        let mut sig = Vec::new();
        push_silence(&mut sig, rng.below(102) + 8);
        for d in digits.chars() {
            push_digit(&mut sig, d, &b, &mut rng);
        }
        push_silence(&mut sig, 400);
        cases.push(Case { name: format!("40/40 ms seed {seed}"), audio: to_i16(&sig), expect: digits });
    }
    assert_conformance(&cases, None);
}

#[test]
fn dtmf_tones_shorter_than_23ms_are_rejected() {
    let mut cases = Vec::new();
    for on_ms in [10.0, 15.0, 20.0] {
        for seed in 0..8u64 {
            let b = Burst { on_ms, off_ms: 60.0, ..Burst::nominal() };
            cases.push(keys_case(&format!("{on_ms} ms seed {seed}"), &b, None, 2000 + seed, false));
        }
    }
    assert_conformance(&cases, None);
    // At 23 ms a tone can straddle two blocks with 90 % of each. spandsp then reports it
    // (its energy-share test passes from 83 % coverage); ours also wants the tone in all
    // four quarter-blocks, which needs about 88 %, so ours reports fewer of these. Q.24
    // does not require either outcome; the count is printed.
    let mut edge = Vec::new();
    for seed in 0..8u64 {
        let b = Burst { on_ms: 23.0, off_ms: 60.0, ..Burst::nominal() };
        let mut c = keys_case(&format!("23 ms seed {seed}"), &b, None, 2100 + seed, false);
        c.expect = ours(&c.audio);
        edge.push(c);
    }
    assert_conformance(&edge, Some("23 ms tones are at the edge of both detectors' duration limit"));
}

#[test]
fn dtmf_twist_within_limits_is_accepted() {
    // Normal twist: the low-group (row) tone louder, accepted up to 8 dB. Reverse twist: the
    // high-group (column) tone louder, accepted up to 4 dB. These are spandsp's definitions.
    let mut cases = Vec::new();
    let mut seed = 3000;
    for twist in [-8.0f64, -7.0, -6.0, -4.0, -2.0, 0.0, 2.0, 3.0, 4.0] {
        // twist > 0: column louder (reverse); twist < 0: row louder (normal).
        seed += 1;
        let b =
            Burst { low_dbm0: -10.0 - twist.max(0.0), high_dbm0: -10.0 + twist.min(0.0), ..Burst::nominal() };
        cases.push(keys_case(&format!("twist {twist:+} dB"), &b, None, seed, true));
    }
    // spandsp's limits are exactly 8 and 4 dB, and leakage between the tones moves the
    // measured twist by up to about 2 dB, so it misses some digits at -8 and +4 dB (about
    // half of them in our runs). Ours allows 2 dB for that leakage.
    assert_conformance(&cases, Some("spandsp misses digits at exactly 8 dB normal or 4 dB reverse twist"));
    let inner: Vec<Case> =
        cases.into_iter().filter(|c| !c.name.contains("-8 dB") && !c.name.contains("+4 dB")).collect();
    assert_conformance(&inner, None);
}

#[test]
fn dtmf_twist_beyond_limits_is_rejected() {
    let mut cases = Vec::new();
    let mut seed = 3100;
    for twist in [-13.0f64, -16.0, 8.0, 10.0] {
        seed += 1;
        let b =
            Burst { low_dbm0: -10.0 - twist.max(0.0), high_dbm0: -10.0 + twist.min(0.0), ..Burst::nominal() };
        cases.push(keys_case(&format!("twist {twist:+} dB"), &b, None, seed, false));
    }
    assert_conformance(&cases, None);
}

#[test]
fn dtmf_levels_from_0_to_minus_30_dbm0_are_accepted() {
    let mut cases = Vec::new();
    for level in (0..=30).map(|l| -f64::from(l)) {
        let b = Burst { low_dbm0: level, high_dbm0: level, ..Burst::nominal() };
        cases.push(keys_case(&format!("{level} dBm0"), &b, None, 4000 + level.abs() as u64, true));
    }
    // Far below the -42 dBm0 threshold nothing is reported.
    let b = Burst { low_dbm0: -50.0, high_dbm0: -50.0, ..Burst::nominal() };
    cases.push(keys_case("-50 dBm0", &b, None, 4100, false));
    assert_conformance(&cases, None);
}

#[test]
fn dtmf_works_at_15db_snr_in_white_noise() {
    // Both tones at -10 dBm0 make -6.99 dBm0 of signal; the noise is 15 dB below that.
    let signal_dbm0 = -10.0 + 10.0 * 2f64.log10();
    let mut cases = Vec::new();
    for seed in 0..20u64 {
        let b = Burst { on_ms: 50.0, off_ms: 50.0, ..Burst::nominal() };
        cases.push(keys_case(
            &format!("15 dB SNR seed {seed}"),
            &b,
            Some(signal_dbm0 - 15.0),
            5000 + seed,
            true,
        ));
    }
    // Noise alone, at several levels, must not produce digits.
    for (i, level) in [-40.0, -20.0, -10.0, 0.0].into_iter().enumerate() {
        let mut rng = Rng(5100 + i as u64);
        let mut sig = vec![0.0; 8000 * 5];
        add_noise(&mut sig, level, &mut rng);
        cases.push(Case {
            name: format!("noise only {level} dBm0"),
            audio: to_i16(&sig),
            expect: String::new(),
        });
    }
    assert_conformance(&cases, None);
}

#[test]
fn dtmf_detection_does_not_depend_on_chunking() {
    let c = keys_case("chunking", &Burst::nominal(), Some(-25.0), 6000, true);
    for size in [1usize, 7, 101, 102, 103, 160, 1000] {
        let mut d = DtmfDetector::new();
        let mut out = String::new();
        for chunk in c.audio.chunks(size) {
            d.process(chunk, |ch| out.push(ch));
        }
        assert_eq!(out, ALL_KEYS, "chunk size {size}");
    }
    // After a reset the detector starts clean mid-stream.
    let mut d = DtmfDetector::new();
    let mut out = String::new();
    d.process(&c.audio[..c.audio.len() / 2], |_| {});
    d.reset();
    d.process(&c.audio, |ch| out.push(ch));
    assert_eq!(out, ALL_KEYS);
}

// ---------------------------------------------------------------------------------------
// DTMF generator
// ---------------------------------------------------------------------------------------

fn generate(g: &mut DtmfGenerator) -> Vec<i16> {
    let mut out = Vec::new();
    let mut buf = [0i16; 160];
    loop {
        let n = g.fill(&mut buf);
        out.extend_from_slice(&buf[..n]);
        if n < buf.len() {
            break;
        }
    }
    out.extend(std::iter::repeat(0).take(800));
    out
}

#[test]
fn generated_digits_are_detected_by_both_detectors() {
    for (level, on, off) in [(-10.0, 50, 55), (-25.0, 40, 40), (-3.0, 100, 100), (-30.0, 45, 45)] {
        let mut g = DtmfGenerator::new(level, on, off);
        let digits = "0123456789*#ABCD5551212";
        g.push_digits(digits).expect("valid digits");
        let audio = generate(&mut g);
        assert!(g.is_idle());
        assert_eq!(ours(&audio), digits, "ours at {level} dBm0 {on}/{off} ms");
        assert_eq!(spandsp(&audio), digits, "spandsp at {level} dBm0 {on}/{off} ms");
        // The level is what was asked for: one tone of the pair reads `level`, so the
        // pair reads 3 dB more (measured over the first tone burst only).
        let burst = &audio[..(on * 8) as usize];
        assert!((dbm0(burst) - (level + 3.01)).abs() < 0.2, "{} vs {level}", dbm0(burst));
    }
}

#[test]
fn spandsp_generated_digits_are_detected_by_ours() {
    let mut tx = DtmfTx::new().expect("dtmf_tx_init");
    let digits = "147*2580369#ABCD";
    tx.put(digits).expect("put");
    let mut audio = Vec::new();
    let mut buf = [0i16; 160];
    loop {
        let n = tx.generate(&mut buf);
        audio.extend_from_slice(&buf[..n]);
        if n == 0 {
            break;
        }
    }
    audio.extend(std::iter::repeat(0).take(800));
    assert_eq!(ours(&audio), digits);
}

#[test]
fn generator_rejects_unknown_digits_and_overflow() {
    let mut g = DtmfGenerator::new(-10.0, 50, 50);
    let err = g.push_digits("12E4").expect_err("E is not a key");
    assert_eq!(err, DtmfError::UnknownDigit('E'));
    assert!(err.to_string().contains("'E'"), "{err}");
    assert!(g.is_idle(), "nothing is queued on error");
    assert!(dtmf::is_dtmf_digit('#') && dtmf::is_dtmf_digit('D') && !dtmf::is_dtmf_digit('d'));
    let fits = "5".repeat(dtmf::DTMF_QUEUE_CAPACITY);
    g.push_digits(&fits).expect("fits exactly");
    assert_eq!(g.push_digits("1"), Err(DtmfError::Full));
    let mut buf = [123i16; 10];
    assert_eq!(g.fill(&mut buf), 10);
    g.clear();
    assert!(g.is_idle());
    assert_eq!(g.fill(&mut buf), 0);
}

// ---------------------------------------------------------------------------------------
// Talk-off: speech and music
// ---------------------------------------------------------------------------------------

/// Reads a 16-bit PCM mono WAV (what sox writes) into samples and its rate.
fn read_wav_i16(path: &Path) -> (u32, Vec<i16>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    assert!(
        bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WAVE",
        "{} is not a WAV",
        path.display()
    );
    let mut pos = 12;
    let mut rate = 0;
    let mut bits = 0;
    let mut channels = 0;
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let len =
            u32::from_le_bytes([bytes[pos + 4], bytes[pos + 5], bytes[pos + 6], bytes[pos + 7]]) as usize;
        let body_start = pos + 8;
        let body_end = (body_start + len).min(bytes.len());
        let body = &bytes[body_start..body_end];
        if id == b"fmt " && body.len() >= 16 {
            channels = u16::from_le_bytes([body[2], body[3]]);
            rate = u32::from_le_bytes([body[4], body[5], body[6], body[7]]);
            bits = u16::from_le_bytes([body[14], body[15]]);
        } else if id == b"data" {
            assert_eq!((channels, bits), (1, 16), "{}: expected 16-bit mono", path.display());
            let samples = body.chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]])).collect();
            return (rate, samples);
        }
        // Chunks are padded to an even length.
        pos = body_start + len + (len & 1);
    }
    panic!("{}: no data chunk", path.display());
}

fn require_tool(name: &str) {
    let ok = Command::new(name).arg("--version").output().map(|o| o.status.success()).unwrap_or(false);
    assert!(
        ok,
        "`{name}` is required for the DSP talk-off tests but was not found; \
         install it with `apt-get install espeak-ng sox` (the README's install command does this)"
    );
}

/// Speech samples at 8 kHz synthesised once per test run: several voices and texts,
/// including Mandarin, French and German.
fn speech_corpus() -> &'static [(String, Vec<i16>)] {
    static CORPUS: OnceLock<Vec<(String, Vec<i16>)>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        require_tool("espeak-ng");
        require_tool("sox");
        let dir = tempfile::tempdir().expect("temporary directory");
        let texts: &[(&str, &str)] = &[
            ("en", "Thank you for calling. All of our agents are busy at the moment. Please stay on the line and your call will be answered in the order it was received."),
            ("en-us", "Hello, my account number is four seven one one, and I would like to check my balance. Could you also tell me the opening hours on Saturday?"),
            ("en+f3", "The quick brown fox jumps over the lazy dog while the telephone keeps ringing, one, two, three, four, five, six, seven, eight, nine, zero."),
            ("en-us+m7", "Press one for sales, press two for support, press star to return to the main menu, or press the pound key to repeat these options."),
            ("cmn", "您好，欢迎致电客户服务中心。请问有什么可以帮您？我的电话号码是一三八零零一三八零零零。"),
            ("fr", "Bonjour, vous êtes bien au service clientèle. Tous nos conseillers sont actuellement occupés, merci de patienter."),
            ("de", "Guten Tag, Sie sind mit dem Kundendienst verbunden. Bitte haben Sie einen Moment Geduld, der nächste freie Mitarbeiter ist gleich für Sie da."),
            ("en+whisper", "Is anybody there? I can hear a tone on the line, but nobody is answering my call."),
        ];
        let mut out = Vec::new();
        for (i, (voice, text)) in texts.iter().enumerate() {
            let raw: PathBuf = dir.path().join(format!("raw{i}.wav"));
            let pcm: PathBuf = dir.path().join(format!("s{i}.wav"));
            let status = Command::new("espeak-ng").args(["-v", voice, "-w"]).arg(&raw).arg(text).status().expect("running espeak-ng");
            assert!(status.success(), "espeak-ng -v {voice} failed");
            let status = Command::new("sox")
                .arg(&raw)
                .args(["-r", "8000", "-c", "1", "-b", "16"])
                .arg(&pcm)
                .status()
                .expect("running sox");
            assert!(status.success(), "sox failed on {}", raw.display());
            let (rate, samples) = read_wav_i16(&pcm);
            assert_eq!(rate, 8000);
            assert!(samples.len() > 8000, "{voice}: speech too short");
            out.push((voice.to_string(), samples));
        }
        out
    })
}

/// Speech at several gains, so both quiet and hot talkers are covered.
fn speech_at_gains() -> Vec<(String, Vec<i16>)> {
    let mut out = Vec::new();
    for (name, s) in speech_corpus() {
        for gain_db in [-10.0f64, 0.0, 6.0] {
            let g = 10f64.powf(gain_db / 20.0);
            let v = s.iter().map(|&x| (f64::from(x) * g).round().clamp(-32768.0, 32767.0) as i16).collect();
            out.push((format!("{name} {gain_db:+} dB"), v));
        }
    }
    out
}

#[test]
fn dtmf_talk_off_on_speech_is_rare() {
    let mut ours_total = 0;
    let mut theirs_total = 0;
    let mut seconds = 0.0;
    let mut report = String::new();
    for (name, s) in speech_at_gains() {
        let a = ours(&s);
        let b = spandsp(&s);
        seconds += s.len() as f64 / 8000.0;
        ours_total += a.len();
        theirs_total += b.len();
        report.push_str(&format!("  {name}: ours {a:?}, spandsp {b:?}\n"));
    }
    println!("talk-off on {seconds:.0} s of speech: ours {ours_total}, spandsp {theirs_total}\n{report}");
    assert!(ours_total <= theirs_total, "more false digits than spandsp:\n{report}");
    assert!(ours_total <= 2, "too many false digits on speech:\n{report}");
}

fn music(seed: u64) -> Vec<i16> {
    // Chords of equal-tempered notes with a few harmonics, and slow and fast sweeps.
    let mut rng = Rng(seed);
    let mut sig = Vec::new();
    for _ in 0..40 {
        let notes: Vec<f64> =
            (0..3 + rng.below(2)).map(|_| 220.0 * 2f64.powf(rng.below(36) as f64 / 12.0)).collect();
        let n = 8 * (150 + rng.below(400));
        for i in 0..n {
            let t = i as f64 / 8000.0;
            let mut v = 0.0;
            for &f in &notes {
                for h in 1..=3 {
                    let fh = f * f64::from(h);
                    if fh < 3800.0 {
                        v += amp(-18.0) / f64::from(h * h) * (2.0 * PI * fh * t).sin();
                    }
                }
            }
            sig.push(v);
        }
    }
    for &(f0, f1, secs) in &[(300.0, 3400.0, 2.0), (3400.0, 300.0, 0.5), (600.0, 1700.0, 8.0)] {
        let n = (secs * 8000.0) as usize;
        let mut phase = 0.0;
        for i in 0..n {
            let f = f0 + (f1 - f0) * i as f64 / n as f64;
            phase += 2.0 * PI * f / 8000.0;
            sig.push(amp(-10.0) * phase.sin());
        }
    }
    to_i16(&sig)
}

#[test]
fn dtmf_talk_off_on_music_like_signals() {
    let mut ours_total = 0;
    let mut theirs_total = 0;
    for seed in 1..=5 {
        let m = music(seed);
        let a = ours(&m);
        let b = spandsp(&m);
        println!("music seed {seed}: ours {a:?}, spandsp {b:?}");
        ours_total += a.len();
        theirs_total += b.len();
    }
    assert!(ours_total <= theirs_total);
    assert!(ours_total <= 3, "{ours_total} false digits on music");
}

// ---------------------------------------------------------------------------------------
// Call-progress tones
// ---------------------------------------------------------------------------------------

/// Synthesises a zone tone directly (not with our generator) with a small frequency error
/// and cadence jitter, like a real exchange.
fn synth_progress(spec: &ToneSpec, level: f64, seconds: f64, rng: &mut Rng) -> Vec<i16> {
    let [f1, f2] = spec.frequencies();
    let dev = 1.0 + (rng.uniform() - 0.5) * 0.02;
    let n = (seconds * 8000.0) as usize;
    let mut sig = vec![0.0; n];
    let mut i = 0;
    let mut on = true;
    while i < n {
        let period_ms = if spec.is_continuous() {
            seconds * 1000.0
        } else if on {
            f64::from(spec.on_ms())
        } else {
            f64::from(spec.off_ms())
        };
        let jitter = if spec.is_continuous() { 1.0 } else { 1.0 + (rng.uniform() - 0.5) * 0.08 };
        let len = ((period_ms * jitter * 8.0) as usize).min(n - i);
        if on {
            for (k, s) in sig[i..i + len].iter_mut().enumerate() {
                let t = k as f64 / 8000.0;
                *s = amp(level) * (2.0 * PI * f64::from(f1) * dev * t).sin();
                if f2 > 0.0 {
                    *s += amp(level) * (2.0 * PI * f64::from(f2) * dev * t + 1.0).sin();
                }
            }
        }
        i += len;
        on = !on;
    }
    to_i16(&sig)
}

fn detect_tones(zone: &ToneZone, audio: &[i16]) -> Vec<(f64, ProgressTone)> {
    let mut d = ToneDetector::new(zone);
    let mut out = Vec::new();
    for (i, chunk) in audio.chunks(160).enumerate() {
        d.process(chunk, |t| out.push((i as f64 * 0.02, t)));
    }
    out
}

#[test]
fn china_progress_tones_are_recognised_at_minus_10_to_minus_30_dbm0() {
    let zone = ToneZone::china();
    let mut rng = Rng(7000);
    for tone in [ProgressTone::Dial, ProgressTone::Ringback, ProgressTone::Busy, ProgressTone::Congestion] {
        let spec = *zone.spec(tone).expect("a tone");
        for level in [-10.0, -15.0, -20.0, -25.0, -30.0] {
            let mut audio = synth_progress(&spec, level, 12.0, &mut rng);
            // Then the tone stops: Silence must follow.
            audio.extend(std::iter::repeat(0).take(8000 * 6));
            let got = detect_tones(&zone, &audio);
            let kinds: Vec<ProgressTone> = got.iter().map(|g| g.1).collect();
            assert_eq!(kinds, [tone, ProgressTone::Silence], "{tone:?} at {level} dBm0: {got:?}");
            let when = got[0].0;
            let limit = match tone {
                ProgressTone::Dial => 1.5,
                ProgressTone::Ringback => 5.6,
                ProgressTone::Busy => 1.6,
                _ => 3.0,
            };
            assert!(when <= limit, "{tone:?} recognised after {when} s");
        }
    }
}

#[test]
fn other_zones_recognise_their_tones() {
    let mut rng = Rng(7100);
    for zone in [ToneZone::north_america(), ToneZone::europe()] {
        for tone in [ProgressTone::Dial, ProgressTone::Ringback, ProgressTone::Busy, ProgressTone::Congestion]
        {
            let spec = *zone.spec(tone).expect("a tone");
            for level in [-13.0, -24.0] {
                let audio = synth_progress(&spec, level, 14.0, &mut rng);
                let got = detect_tones(&zone, &audio);
                assert_eq!(got.first().map(|g| g.1), Some(tone), "{zone:?} {tone:?} at {level}: {got:?}");
                assert_eq!(got.len(), 1, "{tone:?}: {got:?}");
            }
        }
    }
    // North American busy is not mistaken in the Chinese zone (different frequencies).
    let na = ToneZone::north_america();
    let busy = synth_progress(na.spec(ProgressTone::Busy).expect("busy"), -13.0, 8.0, &mut rng);
    assert!(detect_tones(&ToneZone::china(), &busy).is_empty());
}

#[test]
fn progress_tones_from_our_generator_are_recognised_and_change() {
    // Ringback, then 3 s into a pause the callee's line turns busy: ringback, silence (the
    // pause was too short for ringback), busy.
    let zone = ToneZone::china();
    let mut audio = vec![0i16; 8000 * 8];
    let mut g = ToneGenerator::for_progress_tone(&zone, ProgressTone::Ringback, -12.0).expect("ringback");
    g.fill(&mut audio);
    let mut busy = vec![0i16; 8000 * 4];
    let mut g = ToneGenerator::for_progress_tone(&zone, ProgressTone::Busy, -12.0).expect("busy");
    g.fill(&mut busy);
    audio.extend(busy);
    let kinds: Vec<ProgressTone> = detect_tones(&zone, &audio).iter().map(|g| g.1).collect();
    assert_eq!(kinds, [ProgressTone::Ringback, ProgressTone::Silence, ProgressTone::Busy]);
    assert!(ToneGenerator::for_progress_tone(&zone, ProgressTone::Silence, -10.0).is_none());
    // A custom cadence from a configuration file plays and is detected.
    let zone = ToneZone::new(
        ToneSpec::continuous(400.0, 0.0),
        ToneSpec::cadenced(400.0, 450.0, 400, 2000),
        ToneSpec::cadenced(400.0, 0.0, 375, 375),
        ToneSpec::cadenced(400.0, 0.0, 400, 1000),
    )
    .expect("valid zone");
    let mut g = ToneGenerator::single(400.0, -15.0, Cadence::on_off(375, 375));
    let mut audio = vec![0i16; 8000 * 4];
    g.fill(&mut audio);
    assert_eq!(detect_tones(&zone, &audio).first().map(|g| g.1), Some(ProgressTone::Busy));
}

#[test]
fn progress_tone_detector_ignores_dtmf_speech_and_music() {
    let zone = ToneZone::china();
    let mut g = DtmfGenerator::new(-8.0, 60, 60);
    for _ in 0..5 {
        g.push_digits("0123456789*#ABCD").expect("digits");
        let audio = generate(&mut g);
        assert!(detect_tones(&zone, &audio).is_empty());
    }
    for zone in [ToneZone::china(), ToneZone::north_america(), ToneZone::europe()] {
        for (name, s) in speech_at_gains() {
            let got = detect_tones(&zone, &s);
            assert!(got.is_empty(), "{name} in {zone:?}: {got:?}");
        }
        for seed in 1..=3 {
            let got = detect_tones(&zone, &music(seed));
            assert!(got.is_empty(), "music {seed} in {zone:?}: {got:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Levels and voice activity
// ---------------------------------------------------------------------------------------

#[test]
fn voice_activity_follows_speech_and_silence() {
    for (name, s) in speech_corpus() {
        let mut v = VoiceActivity::new();
        let mut audio = vec![0i16; 8000];
        audio.extend_from_slice(s);
        audio.extend(std::iter::repeat(0).take(8000));
        let flags: Vec<bool> = audio.chunks(160).map(|c| v.process(c)).collect();
        // Silent lead-in: no speech. The speech: mostly active. The tail: back to silence.
        assert!(flags[..45].iter().all(|&f| !f), "{name}: speech in the lead-in");
        let speech = &flags[50..flags.len() - 50];
        let active = speech.iter().filter(|&&f| f).count() as f64 / speech.len() as f64;
        assert!(active > 0.6, "{name}: only {active:.2} of speech blocks active");
        assert!(!flags[flags.len() - 1], "{name}: still active in the silent tail");
    }
}

// ---------------------------------------------------------------------------------------
// Echo cancellation
// ---------------------------------------------------------------------------------------

/// A hybrid-like echo path: 5 ms of flat delay, then a decaying, ringing response, scaled
/// so its loss is at least 8 dB at every frequency (hybrids give 6 dB or more, which the
/// Geigel detector relies on).
fn echo_path() -> Vec<f64> {
    let mut h = vec![0.0; 100];
    for (k, v) in h.iter_mut().enumerate().skip(40) {
        let t = (k - 40) as f64;
        *v = (-t / 8.0).exp() * (t * 0.7).cos();
    }
    let peak = (0..512)
        .map(|i| {
            let w = PI * i as f64 / 512.0;
            let (re, im) = h.iter().enumerate().fold((0.0, 0.0), |(re, im), (k, &c)| {
                (re + c * (w * k as f64).cos(), im - c * (w * k as f64).sin())
            });
            (re * re + im * im).sqrt()
        })
        .fold(0.0, f64::max);
    let g = 10f64.powf(-8.0 / 20.0) / peak;
    h.iter().map(|c| c * g).collect()
}

fn erle_db(rx: &[i16], out: &[i16]) -> f64 {
    let p = |s: &[i16]| s.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / s.len() as f64;
    10.0 * (p(rx) / p(out).max(1e-9)).log10()
}

/// Coloured, speech-like noise: white noise through a one-pole low-pass.
fn coloured_noise(rng: &mut Rng, n: usize, level: f64) -> Vec<f64> {
    let mut y = 0.0;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        y = 0.8 * y + rng.gauss();
        out.push(y);
    }
    let rms = (out.iter().map(|x| x * x).sum::<f64>() / n as f64).sqrt();
    let g = amp(level) / 2f64.sqrt() / rms;
    out.iter().map(|x| x * g).collect()
}

fn convolve(x: &[f64], h: &[f64]) -> Vec<f64> {
    (0..x.len())
        .map(|n| h.iter().enumerate().filter(|(k, _)| *k <= n).map(|(k, &c)| c * x[n - k]).sum())
        .collect()
}

#[test]
fn echo_canceller_reaches_20db_erle_and_survives_double_talk() {
    let mut rng = Rng(8000);
    let h = echo_path();
    let n = 8000 * 6;
    let tx = coloured_noise(&mut rng, n, -15.0);
    let mut echo = convolve(&tx, &h);
    // A little line noise (-65 dBm0) so the residual is not limited by arithmetic only.
    add_noise(&mut echo, -65.0, &mut rng);
    let tx = to_i16(&tx);
    let rx = to_i16(&echo);
    let mut ec = EchoCanceller::new();
    let mut out = vec![0i16; n];
    ec.process_block(&tx, &rx, &mut out);
    let converged = erle_db(&rx[8000 * 2..8000 * 3], &out[8000 * 2..8000 * 3]);
    let end = erle_db(&rx[8000 * 5..], &out[8000 * 5..]);
    println!("ERLE after 2-3 s: {converged:.1} dB, after 5-6 s: {end:.1} dB");
    assert!(converged >= 20.0, "ERLE {converged:.1} dB");
    assert!(end >= 20.0, "ERLE {end:.1} dB");

    // Double talk for two seconds: a near-end talker 5 dB louder than the far end, which is
    // typical (the far end reaches us through the network's loss, the near end does not).
    // Geigel only sees near-end samples above half the far end's recent peak, so a
    // near-end talker much quieter than the far end is partly missed and disturbs the
    // filter more; that is the known limit of the Geigel detector.
    let m = 8000 * 4;
    let tx2 = coloured_noise(&mut rng, m, -15.0);
    let echo2 = convolve(&tx2, &h);
    let near: Vec<f64> = (0..m)
        .map(|i| {
            if (8000..8000 * 3).contains(&i) {
                amp(-10.0) * (2.0 * PI * 300.0 * i as f64 / 8000.0).sin()
            } else {
                0.0
            }
        })
        .collect();
    let rx2: Vec<f64> = echo2.iter().zip(&near).map(|(e, s)| e + s).collect();
    let (tx2, rx2, near) = (to_i16(&tx2), to_i16(&rx2), to_i16(&near));
    let mut out2 = vec![0i16; m];
    ec.process_block(&tx2, &rx2, &mut out2);
    // The near-end speech passes: what is left after removing it is at least 20 dB down.
    let dt = 8000 + 800..8000 * 3;
    let residual: Vec<i16> = dt.clone().map(|i| out2[i].saturating_sub(near[i])).collect();
    let kept = erle_db(&near[dt.clone()], &residual);
    println!("near-end speech over residual during double talk: {kept:.1} dB");
    assert!(kept >= 20.0, "near end damaged: {kept:.1} dB");
    // And the filter did not diverge: right after double talk, echo is still cancelled.
    let after = erle_db(&rx2[8000 * 3 + 800..], &out2[8000 * 3 + 800..]);
    println!("ERLE after double talk: {after:.1} dB");
    assert!(after >= 20.0, "ERLE after double talk {after:.1} dB");
}
