//! Cadenced tone generation (ringback, busy, dial tone played to callers) and the
//! oscillator the DTMF generator shares.
//!
//! Oscillators are recursive: each sample rotates a unit phasor by a fixed angle, which
//! costs four multiplies and avoids calling `sin()` per sample. The phasor's length is
//! pulled back to one on every sample with a first-order correction, so rounding cannot make
//! the amplitude drift however long a tone plays.

use super::tone::{ProgressTone, ToneZone};
use super::{dbm0_to_amplitude, saturate, SAMPLES_PER_MS, SAMPLE_RATE};

/// A sine oscillator built on a rotating phasor.
#[derive(Clone, Copy, Debug)]
pub struct Oscillator {
    re: f32,
    im: f32,
    cos_step: f32,
    sin_step: f32,
    amplitude: f32,
}

impl Oscillator {
    /// An oscillator at `freq_hz` with peak `amplitude` (linear sample units), starting at
    /// phase zero so the first sample is 0 and tones begin without a click.
    pub fn new(freq_hz: f32, amplitude: f32) -> Self {
        let w = 2.0 * core::f32::consts::PI * freq_hz / SAMPLE_RATE;
        Oscillator { re: 1.0, im: 0.0, cos_step: w.cos(), sin_step: w.sin(), amplitude }
    }

    /// Restarts at phase zero.
    pub fn restart(&mut self) {
        self.re = 1.0;
        self.im = 0.0;
    }

    /// The next sample, in linear sample units.
    #[inline]
    pub fn next_sample(&mut self) -> f32 {
        let out = self.im * self.amplitude;
        let re = self.re * self.cos_step - self.im * self.sin_step;
        let im = self.re * self.sin_step + self.im * self.cos_step;
        // One Newton step towards |z| = 1: cheap, and enough because the error per sample
        // is at the level of f32 rounding.
        let g = 1.5 - 0.5 * (re * re + im * im);
        self.re = re * g;
        self.im = im * g;
        out
    }
}

/// Longest on/off pattern a [`Cadence`] can hold (UK ringback needs two pairs; four leaves
/// room for the fancier national tones).
pub const MAX_CADENCE_PAIRS: usize = 4;

/// An on/off pattern in milliseconds, optionally repeating.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cadence {
    pairs: [(u32, u32); MAX_CADENCE_PAIRS],
    count: usize,
    repeat: bool,
}

impl Cadence {
    /// A tone that never stops.
    pub const fn continuous() -> Self {
        Cadence { pairs: [(0, 0); MAX_CADENCE_PAIRS], count: 0, repeat: true }
    }

    /// A repeating pattern of one on and one off period.
    pub const fn on_off(on_ms: u32, off_ms: u32) -> Self {
        let mut pairs = [(0, 0); MAX_CADENCE_PAIRS];
        pairs[0] = (on_ms, off_ms);
        Cadence { pairs, count: 1, repeat: true }
    }

    /// A pattern of up to [`MAX_CADENCE_PAIRS`] (on, off) pairs in milliseconds, played
    /// once or repeated. Returns `None` when there are no pairs, too many, or every period
    /// is zero (which would never produce a sample).
    pub fn new(pairs: &[(u32, u32)], repeat: bool) -> Option<Self> {
        if pairs.is_empty() || pairs.len() > MAX_CADENCE_PAIRS {
            return None;
        }
        if pairs.iter().all(|&(on, off)| on == 0 && off == 0) {
            return None;
        }
        let mut out = [(0, 0); MAX_CADENCE_PAIRS];
        out[..pairs.len()].copy_from_slice(pairs);
        Some(Cadence { pairs: out, count: pairs.len(), repeat })
    }

    /// True for a tone that never stops.
    pub const fn is_continuous(&self) -> bool {
        self.count == 0
    }

    /// The (on, off) pairs in milliseconds.
    pub fn pairs(&self) -> &[(u32, u32)] {
        &self.pairs[..self.count]
    }

    /// Whether the pattern repeats.
    pub const fn repeats(&self) -> bool {
        self.repeat
    }
}

/// Plays a one- or two-frequency tone with a cadence into sample buffers.
#[derive(Clone, Debug)]
pub struct ToneGenerator {
    oscillators: [Oscillator; 2],
    active: usize,
    cadence: Cadence,
    /// Index of the current period: even = on, odd = off, over `2 * cadence.count`.
    section: usize,
    /// Samples left in the current period.
    remaining: u64,
    finished: bool,
}

impl ToneGenerator {
    /// A generator for up to two (frequency in Hz, level in dBm0) components; a component
    /// with a frequency of zero or less is skipped. Each component has its own level, so a
    /// dual tone at -13 dBm0 per tone is `[(480.0, -13.0), (620.0, -13.0)]`.
    pub fn new(components: [(f32, f32); 2], cadence: Cadence) -> Self {
        let mut oscillators = [Oscillator::new(0.0, 0.0); 2];
        let mut active = 0;
        for (freq, level) in components {
            if freq > 0.0 {
                oscillators[active] = Oscillator::new(freq, dbm0_to_amplitude(level));
                active += 1;
            }
        }
        let mut generator =
            ToneGenerator { oscillators, active, cadence, section: 0, remaining: 0, finished: false };
        generator.reset();
        generator
    }

    /// A single-frequency tone.
    pub fn single(freq_hz: f32, level_dbm0: f32, cadence: Cadence) -> Self {
        Self::new([(freq_hz, level_dbm0), (0.0, 0.0)], cadence)
    }

    /// The generator for one of a zone's call-progress tones, each component at
    /// `level_dbm0`. Returns `None` for [`ProgressTone::Silence`], which is not a tone.
    pub fn for_progress_tone(zone: &ToneZone, tone: ProgressTone, level_dbm0: f32) -> Option<Self> {
        let spec = zone.spec(tone)?;
        let [f1, f2] = spec.frequencies();
        let cadence = if spec.is_continuous() {
            Cadence::continuous()
        } else {
            Cadence::on_off(spec.on_ms(), spec.off_ms())
        };
        Some(Self::new([(f1, level_dbm0), (f2, level_dbm0)], cadence))
    }

    /// Starts the pattern again from the beginning of its first on period.
    pub fn reset(&mut self) {
        self.section = 0;
        self.finished = false;
        self.remaining = if self.cadence.is_continuous() { u64::MAX } else { self.period_samples(0) };
        for osc in &mut self.oscillators {
            osc.restart();
        }
    }

    /// True once a non-repeating pattern has played to its end.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    fn period_samples(&self, section: usize) -> u64 {
        let (on, off) = self.cadence.pairs[section / 2];
        let ms = if section % 2 == 0 { on } else { off };
        u64::from(ms) * u64::from(SAMPLES_PER_MS)
    }

    /// Writes the tone (and the silent parts of its cadence) into `out` and returns the
    /// number of samples written: all of `out` unless a non-repeating pattern ends inside
    /// it, in which case the rest of `out` is left untouched.
    pub fn fill(&mut self, out: &mut [i16]) -> usize {
        let mut written = 0;
        while written < out.len() && !self.finished {
            if self.remaining == 0 {
                self.advance();
                continue;
            }
            let n = (out.len() - written).min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
            let chunk = &mut out[written..written + n];
            if self.section % 2 == 0 {
                self.synthesise(chunk);
            } else {
                chunk.fill(0);
            }
            written += n;
            self.remaining -= n as u64;
        }
        written
    }

    fn synthesise(&mut self, chunk: &mut [i16]) {
        match self.active {
            0 => chunk.fill(0),
            1 => {
                let [a, _] = &mut self.oscillators;
                for s in chunk {
                    *s = saturate(a.next_sample());
                }
            }
            _ => {
                let [a, b] = &mut self.oscillators;
                for s in chunk {
                    *s = saturate(a.next_sample() + b.next_sample());
                }
            }
        }
    }

    fn advance(&mut self) {
        let sections = 2 * self.cadence.count;
        // Skip zero-length periods; `Cadence::new` guarantees at least one is non-zero, so
        // this loop ends within one pass over the pattern.
        for _ in 0..sections {
            self.section += 1;
            if self.section >= sections {
                if !self.cadence.repeat {
                    self.finished = true;
                    return;
                }
                self.section = 0;
            }
            self.remaining = self.period_samples(self.section);
            if self.section % 2 == 0 {
                for osc in &mut self.oscillators {
                    osc.restart();
                }
            }
            if self.remaining > 0 {
                return;
            }
        }
        // Every period was zero: the cadence cannot produce audio, so stop.
        self.finished = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::level::dbm0;

    #[test]
    fn oscillator_keeps_level_and_frequency() {
        let mut osc = Oscillator::new(1000.0, dbm0_to_amplitude(-10.0));
        let mut buf = [0i16; 80_000];
        for s in buf.iter_mut() {
            *s = saturate(osc.next_sample());
        }
        // Ten seconds in, the level is still what was asked for.
        let tail = &buf[72_000..];
        assert!((dbm0(tail) + 10.0).abs() < 0.05, "{}", dbm0(tail));
        // 1000 Hz at 8 kHz has a period of 8 samples: count positive-going zero crossings.
        let crossings = tail.windows(2).filter(|w| w[0] < 0 && w[1] >= 0).count();
        assert!((999..=1000).contains(&crossings), "{crossings}");
    }

    #[test]
    fn cadence_switches_on_and_off() {
        let mut g = ToneGenerator::single(425.0, -10.0, Cadence::on_off(100, 50));
        let mut buf = [1i16; 2400];
        assert_eq!(g.fill(&mut buf), 2400);
        assert!(buf[..800].iter().any(|&s| s != 0));
        assert!(buf[800..1200].iter().all(|&s| s == 0));
        assert!(buf[1200..2000].iter().any(|&s| s != 0));
        assert!(buf[2000..].iter().all(|&s| s == 0));
    }

    #[test]
    fn one_shot_cadence_stops_and_leaves_the_rest() {
        let cadence = Cadence::new(&[(10, 5)], false).expect("valid cadence");
        let mut g = ToneGenerator::single(425.0, -10.0, cadence);
        let mut buf = [7i16; 200];
        assert_eq!(g.fill(&mut buf), 120);
        assert!(g.is_finished());
        assert!(buf[120..].iter().all(|&s| s == 7));
        assert_eq!(g.fill(&mut buf), 0);
    }

    #[test]
    fn invalid_cadences_are_refused() {
        assert!(Cadence::new(&[], true).is_none());
        assert!(Cadence::new(&[(0, 0)], true).is_none());
        assert!(Cadence::new(&[(1, 1); 5], true).is_none());
    }
}
