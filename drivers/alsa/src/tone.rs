//! The alert a headset hears while its seat rings.
//!
//! A headset has no ringer, so a `Ring` command on a sound seat mixes a locally generated
//! alert into the device's playback stream. The generator is a phase accumulator over a
//! 256-entry sine table with linear interpolation (built once when the card is opened), with
//! short ramps at the edges of each burst so that the cadence does not click.

use switchboard_driver_api::SAMPLE_RATE;

/// The alert played into a headset while its seat rings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RingTone {
    /// One or two frequencies in Hz, summed; 0 leaves a slot unused.
    pub freqs_hz: [u16; 2],
    /// Peak amplitude of the sum, in 16-bit linear units.
    pub amplitude: i16,
    /// The cadence: milliseconds of tone, then milliseconds of silence (0 = continuous).
    pub on_ms: u32,
    pub off_ms: u32,
}

impl Default for RingTone {
    /// 425 Hz, one second on and four off (the Chinese and European ringing cadence, the same
    /// the simulated exchange uses), at about -18 dBFS: clearly audible in a headset without
    /// being harsh.
    fn default() -> Self {
        RingTone { freqs_hz: [425, 0], amplitude: 4000, on_ms: 1000, off_ms: 4000 }
    }
}

impl RingTone {
    /// Why the tone cannot be played, if it cannot.
    pub(crate) fn problem(&self) -> Option<&'static str> {
        let nyquist = (SAMPLE_RATE / 2) as u16;
        if self.freqs_hz.iter().all(|&f| f == 0) {
            Some("the ring tone needs at least one frequency")
        } else if self.freqs_hz.iter().any(|&f| f >= nyquist) {
            Some("ring tone frequencies must be below 4000 Hz")
        } else if self.amplitude <= 0 {
            Some("the ring tone amplitude must be positive")
        } else if self.on_ms < 20 {
            Some("the ring tone must sound for at least 20 ms per cadence")
        } else {
            None
        }
    }
}

/// Samples of fade-in and fade-out at the edges of a burst (4 ms).
const RAMP: u32 = 32;

/// The per-card generator: the table and phase steps shared by every device.
pub(crate) struct RingGen {
    /// One period of a sine scaled to the per-tone amplitude, with the first sample repeated
    /// at the end so interpolation never wraps.
    table: [i32; 257],
    steps: [u32; 2],
    on: u32,
    period: u32,
}

/// Where one device is in its alert: the sample position in the cadence and the phases.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RingState {
    pos: u32,
    phases: [u32; 2],
}

impl RingState {
    pub fn restart(&mut self) {
        *self = RingState::default();
    }
}

impl RingGen {
    pub fn new(tone: &RingTone) -> RingGen {
        let tones = tone.freqs_hz.iter().filter(|&&f| f != 0).count().max(1) as f64;
        let per_tone = f64::from(tone.amplitude) / tones;
        let mut table = [0i32; 257];
        for (i, t) in table.iter_mut().enumerate() {
            *t = (per_tone * (std::f64::consts::TAU * i as f64 / 256.0).sin()).round() as i32;
        }
        let step = |f: u16| ((f64::from(f) / f64::from(SAMPLE_RATE)) * 4_294_967_296.0) as u32;
        let samples = |ms: u32| ms.saturating_mul(SAMPLE_RATE / 1000);
        let on = samples(tone.on_ms).max(1);
        RingGen {
            table,
            steps: [step(tone.freqs_hz[0]), step(tone.freqs_hz[1])],
            on,
            period: on.saturating_add(samples(tone.off_ms)),
        }
    }

    #[inline]
    fn sine(&self, phase: u32) -> i32 {
        let i = (phase >> 24) as usize;
        let frac = ((phase >> 8) & 0xFFFF) as i32;
        let a = self.table[i];
        let b = self.table[i + 1];
        a + (((b - a) * frac) >> 16)
    }

    /// Adds the next stretch of the alert to `out`, saturating.
    pub fn mix(&self, state: &mut RingState, out: &mut [i16]) {
        for o in out.iter_mut() {
            let pos = state.pos;
            state.pos = if pos + 1 >= self.period { 0 } else { pos + 1 };
            if pos >= self.on {
                continue;
            }
            let mut v = 0;
            for (phase, &step) in state.phases.iter_mut().zip(self.steps.iter()) {
                if step != 0 {
                    v += self.sine(*phase);
                    *phase = phase.wrapping_add(step);
                }
            }
            // The ramps are only applied when the cadence actually pauses; a continuous tone
            // (no off time) must not dip every period.
            if self.period > self.on {
                let edge = pos.min(self.on - 1 - pos);
                if edge < RAMP {
                    v = v * edge as i32 / RAMP as i32;
                }
            }
            *o = (i32::from(*o) + v).clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_cadence_at_the_set_level() {
        let tone = RingTone { freqs_hz: [425, 0], amplitude: 4000, on_ms: 100, off_ms: 200 };
        let gen = RingGen::new(&tone);
        let mut st = RingState::default();
        let mut out = vec![0i16; 2400];
        gen.mix(&mut st, &mut out);
        // 100 ms of tone (800 samples), then 200 ms of silence, then the next burst.
        let peak = out[..800].iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
        assert!((3950..=4000).contains(&peak), "peak {peak}");
        assert!(out[800..2400].iter().all(|&s| s == 0));
        let mut more = vec![0i16; 800];
        gen.mix(&mut st, &mut more);
        assert!(more.iter().any(|&s| s.unsigned_abs() > 3000));
        // The burst starts from silence (ramped), so the cadence does not click.
        assert!(out[0].unsigned_abs() < 10 && out[1].unsigned_abs() < 200);
    }

    #[test]
    fn rejects_unplayable_tones() {
        assert!(RingTone::default().problem().is_none());
        assert!(RingTone { freqs_hz: [0, 0], ..RingTone::default() }.problem().is_some());
        assert!(RingTone { freqs_hz: [4000, 0], ..RingTone::default() }.problem().is_some());
        assert!(RingTone { on_ms: 0, ..RingTone::default() }.problem().is_some());
    }
}
