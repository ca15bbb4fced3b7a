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
}
