//! Signal levels in dBm0 and a speech/silence classifier.
//!
//! See the [module root](super) for the dBm0 convention.

use super::{mean_square_to_dbm0, MIN_DBM0, SAMPLES_PER_MS};

/// Level of a block of samples in dBm0 (RMS against a 0 dBm0 sine). Empty input and
/// digital silence read [`MIN_DBM0`].
pub fn dbm0(samples: &[i16]) -> f32 {
    if samples.is_empty() {
        return MIN_DBM0;
    }
    mean_square_to_dbm0(mean_square(samples))
}

/// Mean of the squared samples, accumulated in f64 so long blocks lose no precision.
fn mean_square(samples: &[i16]) -> f32 {
    let mut acc = [0i64; 4];
    // Integer squares are exact, and four accumulators let the loop vectorise; an i64 holds
    // the sum of 2^33 full-scale squares, far more than any block we are given.
    let chunks = samples.chunks_exact(4);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += i64::from(x) * i64::from(x);
        }
    }
    let mut total: i64 = acc.iter().sum();
    for &x in rest {
        total += i64::from(x) * i64::from(x);
    }
    (total as f64 / samples.len() as f64) as f32
}

/// A running level meter: an exponentially weighted mean square with a configurable time
/// constant, read in dBm0.
#[derive(Clone, Debug)]
pub struct PowerMeter {
    mean_square: f32,
    /// Weight of each new sample, 1/(time constant in samples).
    alpha: f32,
}

impl Default for PowerMeter {
    fn default() -> Self {
        Self::new()
    }
}

impl PowerMeter {
    /// A meter with a 32 ms time constant, short enough to follow syllables.
    pub fn new() -> Self {
        Self::with_time_constant_ms(32)
    }

    /// A meter with the given time constant (at least one sample).
    pub fn with_time_constant_ms(ms: u32) -> Self {
        let samples = (ms.saturating_mul(SAMPLES_PER_MS)).max(1) as f32;
        PowerMeter { mean_square: 0.0, alpha: 1.0 / samples }
    }

    /// Forgets the history.
    pub fn reset(&mut self) {
        self.mean_square = 0.0;
    }

    /// Adds samples and returns the level after them, in dBm0.
    pub fn process(&mut self, samples: &[i16]) -> f32 {
        let mut ms = self.mean_square;
        for &x in samples {
            let x = f32::from(x);
            ms += self.alpha * (x * x - ms);
        }
        self.mean_square = ms;
        self.level_dbm0()
    }

    /// The current level in dBm0.
    pub fn level_dbm0(&self) -> f32 {
        mean_square_to_dbm0(self.mean_square)
    }
}

/// Samples per segment of a [`LevelMeter`]'s tone measurement: 20 ms, one engine block.
pub const TONE_SEGMENT: usize = 160;

/// Lowest level a [`LevelMeter`] reports, in dBm0: below anything G.711 carries except
/// digital silence (A-law's idle codes read about -66 dBm0), so silence reads this and not
/// minus infinity.
pub const METER_FLOOR_DBM0: f32 = -90.0;

/// What a [`LevelMeter`] read over its window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LevelReading {
    /// RMS level of the whole signal, in dBm0 (at least [`METER_FLOOR_DBM0`]).
    pub total_dbm0: f32,
    /// Level of the component at the meter's frequency, in dBm0: what a sine at that
    /// frequency would read on its own (at least [`METER_FLOOR_DBM0`]; the floor when the
    /// meter has no frequency or saw no whole segment).
    pub tone_dbm0: f32,
    /// Largest absolute sample value.
    pub peak: u16,
    /// Samples measured.
    pub samples: u64,
}

/// A line-test level meter: the RMS level of everything it is given, its peak, and the level
/// at one frequency, like a transmission measuring set's wideband and selective readings.
///
/// The selective reading is a Goertzel filter over Hann-windowed segments of
/// [`TONE_SEGMENT`] samples, whose powers are averaged: a filter about 75 Hz wide (noise
/// bandwidth), 0.06 dB down on a tone 5 Hz off the frequency and 0.23 dB down 10 Hz off
/// (1 %), and more than 80 dB down on a tone 1 kHz away. Calibrated so that a
/// sine at the frequency reads its own level. A segment left incomplete at the end of the
/// window counts for the total and the peak but not for the tone.
///
/// Allocation-free after construction; [`LevelMeter::start`] computes one cosine.
#[derive(Clone, Debug)]
pub struct LevelMeter {
    /// Hann window, periodic, over one segment.
    window: [f32; TONE_SEGMENT],
    /// Goertzel coefficient 2·cos(ω), or `None` when only the total is measured.
    coeff: Option<f32>,
    s1: f32,
    s2: f32,
    /// Position in the current segment.
    pos: usize,
    /// Sum of the segments' tone mean squares, and their count.
    tone_sum: f64,
    segments: u32,
    sum_squares: i64,
    samples: u64,
    peak: u16,
}

impl Default for LevelMeter {
    fn default() -> Self {
        Self::new()
    }
}

impl LevelMeter {
    /// A meter measuring the total level only, until [`LevelMeter::start`] sets a frequency.
    pub fn new() -> Self {
        let window = core::array::from_fn(|n| {
            0.5 - 0.5 * (2.0 * core::f32::consts::PI * n as f32 / TONE_SEGMENT as f32).cos()
        });
        LevelMeter {
            window,
            coeff: None,
            s1: 0.0,
            s2: 0.0,
            pos: 0,
            tone_sum: 0.0,
            segments: 0,
            sum_squares: 0,
            samples: 0,
            peak: 0,
        }
    }

    /// Starts a new measurement, forgetting the last one, with the selective filter at
    /// `freq_hz` (`None`, or a frequency not between 0 and half the sampling rate: total
    /// level only).
    pub fn start(&mut self, freq_hz: Option<f32>) {
        self.coeff = freq_hz
            .filter(|f| *f > 0.0 && *f < super::SAMPLE_RATE / 2.0)
            .map(|f| 2.0 * (2.0 * core::f32::consts::PI * f / super::SAMPLE_RATE).cos());
        self.s1 = 0.0;
        self.s2 = 0.0;
        self.pos = 0;
        self.tone_sum = 0.0;
        self.segments = 0;
        self.sum_squares = 0;
        self.samples = 0;
        self.peak = 0;
    }

    /// Adds samples to the measurement.
    pub fn process(&mut self, samples: &[i16]) {
        for &x in samples {
            self.sum_squares += i64::from(x) * i64::from(x);
            self.peak = self.peak.max(x.unsigned_abs());
        }
        self.samples += samples.len() as u64;
        let Some(coeff) = self.coeff else { return };
        let (mut s1, mut s2) = (self.s1, self.s2);
        for &x in samples {
            let s = f32::from(x) * self.window[self.pos] + coeff * s1 - s2;
            s2 = s1;
            s1 = s;
            self.pos += 1;
            if self.pos == TONE_SEGMENT {
                // |X(ω)|² of the windowed segment. A sine of peak A at ω gives
                // |X| = A·Σw/2, Σw = N/2 for the Hann window, and a mean square of A²/2.
                let power = f64::from(s1) * f64::from(s1) + f64::from(s2) * f64::from(s2)
                    - f64::from(coeff) * f64::from(s1) * f64::from(s2);
                let sum_w = TONE_SEGMENT as f64 / 2.0;
                self.tone_sum += 2.0 * power.max(0.0) / (sum_w * sum_w);
                self.segments += 1;
                self.pos = 0;
                s1 = 0.0;
                s2 = 0.0;
            }
        }
        self.s1 = s1;
        self.s2 = s2;
    }

    /// The readings over everything given since the last start.
    pub fn reading(&self) -> LevelReading {
        let floor = |level: f32| level.max(METER_FLOOR_DBM0);
        let total = if self.samples == 0 {
            METER_FLOOR_DBM0
        } else {
            floor(mean_square_to_dbm0((self.sum_squares as f64 / self.samples as f64) as f32))
        };
        let tone = if self.segments == 0 {
            METER_FLOOR_DBM0
        } else {
            floor(mean_square_to_dbm0((self.tone_sum / f64::from(self.segments)) as f32))
        };
        LevelReading { total_dbm0: total, tone_dbm0: tone, peak: self.peak, samples: self.samples }
    }
}

/// Absolute level below which nothing counts as speech, in dBm0. Telephone speech is
/// usually between -10 and -30 dBm0; line noise is below -55.
const SPEECH_FLOOR_DBM0: f32 = -45.0;
/// How far above the tracked noise floor a block must be to count as speech, in dB.
const SPEECH_OVER_NOISE_DB: f32 = 9.0;
/// How fast the noise floor estimate may rise, in dB per second. It falls at once, so a
/// quieter block always lowers it; rising slowly keeps long speech from being learnt as
/// noise.
const NOISE_RISE_DB_PER_S: f32 = 2.0;
/// How long speech is still reported after the last loud block, so the pauses between
/// words do not split an utterance.
const HANGOVER_MS: u32 = 300;

/// An energy-based speech/silence classifier with an adaptive noise floor and hangover.
///
/// It reports any signal clearly above the background, so tones count as "speech" too;
/// callers that care run the tone detectors beside it.
#[derive(Clone, Debug)]
pub struct VoiceActivity {
    noise_floor_dbm0: f32,
    hangover_left: u32,
    active: bool,
}

impl Default for VoiceActivity {
    fn default() -> Self {
        Self::new()
    }
}

impl VoiceActivity {
    /// A classifier that starts in silence, assuming a quiet line.
    pub fn new() -> Self {
        VoiceActivity { noise_floor_dbm0: -70.0, hangover_left: 0, active: false }
    }

    /// Back to the starting state.
    pub fn reset(&mut self) {
        *self = Self::new();
    }

    /// The current noise floor estimate in dBm0.
    pub fn noise_floor_dbm0(&self) -> f32 {
        self.noise_floor_dbm0
    }

    /// Classifies the next block (10-30 ms blocks work best) and returns whether speech is
    /// present. An empty block repeats the previous answer.
    pub fn process(&mut self, samples: &[i16]) -> bool {
        if samples.is_empty() {
            return self.active;
        }
        let level = dbm0(samples);
        let n = u32::try_from(samples.len()).unwrap_or(u32::MAX);
        let seconds = samples.len() as f32 / super::SAMPLE_RATE;
        if level < self.noise_floor_dbm0 {
            self.noise_floor_dbm0 = level;
        } else {
            self.noise_floor_dbm0 += NOISE_RISE_DB_PER_S * seconds;
        }
        let loud = level >= SPEECH_FLOOR_DBM0 && level >= self.noise_floor_dbm0 + SPEECH_OVER_NOISE_DB;
        if loud {
            self.hangover_left = HANGOVER_MS * SAMPLES_PER_MS;
            self.active = true;
        } else {
            self.hangover_left = self.hangover_left.saturating_sub(n);
            self.active = self.hangover_left > 0;
        }
        self.active
    }

    /// The last answer of [`VoiceActivity::process`].
    pub fn is_active(&self) -> bool {
        self.active
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::tonegen::Oscillator;
    use crate::dsp::{dbm0_to_amplitude, saturate};

    fn sine(level: f32, n: usize) -> [i16; 1600] {
        let mut osc = Oscillator::new(1000.0, dbm0_to_amplitude(level));
        let mut out = [0i16; 1600];
        for s in out.iter_mut().take(n) {
            *s = saturate(osc.next_sample());
        }
        out
    }

    #[test]
    fn sine_levels_read_back() {
        for level in [0.0, -10.0, -30.0, -50.0] {
            let s = sine(level, 1600);
            assert!((dbm0(&s) - level).abs() < 0.1, "{level}: {}", dbm0(&s));
        }
        assert_eq!(dbm0(&[]), MIN_DBM0);
        assert_eq!(dbm0(&[0; 100]), MIN_DBM0);
        let full: [i16; 64] = core::array::from_fn(|i| if i % 2 == 0 { i16::MAX } else { i16::MIN });
        assert!((dbm0(&full) - 6.16).abs() < 0.01);
    }

    #[test]
    fn meter_follows_level() {
        let mut m = PowerMeter::new();
        let s = sine(-20.0, 1600);
        let mut level = MIN_DBM0;
        for _ in 0..5 {
            level = m.process(&s);
        }
        assert!((level + 20.0).abs() < 0.3, "{level}");
        for _ in 0..10 {
            level = m.process(&[0; 1600]);
        }
        assert!(level < -60.0, "{level}");
    }

    #[test]
    fn vad_reports_speech_then_silence_after_hangover() {
        let mut v = VoiceActivity::new();
        let quiet = [0i16; 160];
        assert!(!v.process(&quiet));
        let loud = sine(-20.0, 1600);
        assert!(v.process(&loud[..160]));
        // The hangover keeps it active for 300 ms, then it drops.
        let mut active_blocks = 0;
        for _ in 0..40 {
            if v.process(&quiet) {
                active_blocks += 1;
            }
        }
        assert_eq!(active_blocks, 14);
        assert!(!v.is_active());
    }

    /// `components` (frequency, dBm0) summed, through G.711 of the given law and back.
    fn through_g711(law: switchboard_driver_api::Law, components: &[(f32, f32)], n: usize) -> Vec<i16> {
        let mut oscs: Vec<Oscillator> =
            components.iter().map(|&(f, l)| Oscillator::new(f, dbm0_to_amplitude(l))).collect();
        (0..n)
            .map(|_| {
                let x = saturate(oscs.iter_mut().map(|o| o.next_sample()).sum());
                crate::dsp::g711::decode(law, crate::dsp::g711::encode(law, x))
            })
            .collect()
    }

    fn measure(freq: Option<f32>, samples: &[i16]) -> LevelReading {
        let mut m = LevelMeter::new();
        m.start(freq);
        // In engine-sized blocks, as the engine feeds it.
        for block in samples.chunks(TONE_SEGMENT) {
            m.process(block);
        }
        m.reading()
    }

    #[test]
    fn meter_reads_a_test_tone_through_both_laws() {
        use switchboard_driver_api::Law;
        for law in [Law::Alaw, Law::Ulaw] {
            for (level, blocks) in [(-10.0, 50), (-10.0, 1), (0.0, 10), (-40.0, 25)] {
                let s = through_g711(law, &[(1004.0, level)], blocks * TONE_SEGMENT);
                let r = measure(Some(1004.0), &s);
                assert!((r.total_dbm0 - level).abs() < 0.1, "{law:?} {level}/{blocks}: {r:?}");
                assert!((r.tone_dbm0 - level).abs() < 0.1, "{law:?} {level}/{blocks}: {r:?}");
                let peak = dbm0_to_amplitude(level);
                assert!((f32::from(r.peak) - peak).abs() < peak * 0.04, "{law:?} {level}: {r:?}");
                assert_eq!(r.samples, (blocks * TONE_SEGMENT) as u64);
            }
        }
    }

    #[test]
    fn meter_tone_reading_ignores_other_frequencies() {
        use switchboard_driver_api::Law;
        // -20 dBm0 at 1004 Hz and -10 dBm0 at 2000 Hz: 10·log10(10^-2 + 10^-1) = -9.59.
        let expected_total = 10.0 * (0.01f32 + 0.1).log10();
        for law in [Law::Alaw, Law::Ulaw] {
            for blocks in [1, 5, 50] {
                let s = through_g711(law, &[(1004.0, -20.0), (2000.0, -10.0)], blocks * TONE_SEGMENT);
                let r = measure(Some(1004.0), &s);
                assert!((r.tone_dbm0 + 20.0).abs() < 0.3, "{law:?} {blocks}: {r:?}");
                assert!((r.total_dbm0 - expected_total).abs() < 0.3, "{law:?} {blocks}: {r:?}");
                // And the other way round: the selective reading picks the 2 kHz tone.
                let r = measure(Some(2000.0), &s);
                assert!((r.tone_dbm0 + 10.0).abs() < 0.3, "{law:?} {blocks}: {r:?}");
            }
        }
    }

    #[test]
    fn meter_selectivity() {
        use switchboard_driver_api::Law;
        // A tone 5 Hz off reads within 0.1 dB, 10 Hz (1 %) off within 0.3 dB; 300 Hz off,
        // next to nothing.
        let s = through_g711(Law::Alaw, &[(1009.0, -10.0)], 8000);
        let r = measure(Some(1004.0), &s);
        assert!((r.tone_dbm0 + 10.0).abs() < 0.1, "{r:?}");
        let s = through_g711(Law::Alaw, &[(1014.0, -10.0)], 8000);
        let r = measure(Some(1004.0), &s);
        assert!((r.tone_dbm0 + 10.0).abs() < 0.3, "{r:?}");
        let s = through_g711(Law::Alaw, &[(1304.0, -10.0)], 8000);
        let r = measure(Some(1004.0), &s);
        assert!(r.tone_dbm0 < -50.0, "{r:?}");
        // Without a frequency the total is still measured.
        let r = measure(None, &s);
        assert!((r.total_dbm0 + 10.0).abs() < 0.1 && r.tone_dbm0 == METER_FLOOR_DBM0, "{r:?}");
    }

    #[test]
    fn meter_silence_reads_the_floor() {
        let r = measure(Some(1004.0), &[0; 1600]);
        assert_eq!((r.total_dbm0, r.tone_dbm0, r.peak), (METER_FLOOR_DBM0, METER_FLOOR_DBM0, 0));
        let mut m = LevelMeter::new();
        m.start(Some(1004.0));
        assert_eq!(m.reading().total_dbm0, METER_FLOOR_DBM0);
        // A-law's idle code decodes to ±8: quiet, but not below the floor.
        let idle = crate::dsp::g711::alaw_decode(0xD5);
        let r = measure(Some(1004.0), &[idle; 1600]);
        assert!(r.total_dbm0 < -60.0 && r.tone_dbm0 < -60.0, "{r:?}");
    }
}
