//! Native telephony DSP: G.711, DTMF, call-progress tones, levels, echo cancellation and
//! tone generation.
//!
//! Everything here is pure signal processing for the real-time media thread: no IO, no
//! clock, no locks, and no allocation once a component is constructed. The per-sample and
//! per-block paths use fixed-size arrays only, so the engine tick stays allocation-free.
//!
//! # Level convention
//!
//! Levels are in dBm0 with the same convention as spandsp: a sine wave whose peak is full
//! scale (32767) is +3.14 dBm0 ([`DBM0_MAX_SINE_POWER`]). So a 0 dBm0 sine has a peak of
//! 32767 · 10^(-3.14/20) ≈ 22 828 and an RMS of about 16 142. This is the G.711 digital
//! milliwatt: the A-law and mu-law overload points sit 3.14 dB and 3.17 dB above it, and
//! spandsp rounds both to 3.14. Power of arbitrary signals is measured as RMS against the
//! RMS of that reference sine, so [`level::dbm0`] of a sine generated at L dBm0 reads L.

pub mod callerid;
pub mod dtmf;
pub mod echo;
pub mod fsk;
pub mod g711;
pub mod level;
pub mod tone;
pub mod tonegen;

pub use dtmf::{is_dtmf_digit, DtmfDetector, DtmfError, DtmfGenerator};
pub use echo::EchoCanceller;
pub use level::{dbm0, LevelMeter, LevelReading, PowerMeter, VoiceActivity};
pub use tone::{ProgressTone, ToneDetector, ToneSpec, ToneZone, ToneZoneError};
pub use tonegen::{Cadence, ToneGenerator};

/// Sampling rate every DSP component assumes, in Hz.
pub const SAMPLE_RATE: f32 = 8000.0;

/// Samples per millisecond at [`SAMPLE_RATE`], for converting cadences and durations.
pub const SAMPLES_PER_MS: u32 = 8;

/// Level in dBm0 of a sine whose peak is full scale (32767), as in spandsp.
// The value happens to resemble π; it is the G.711 overload point, not an approximation.
#[allow(clippy::approx_constant)]
pub const DBM0_MAX_SINE_POWER: f32 = 3.14;

/// The lowest level [`level::dbm0`] and [`PowerMeter`] report; digital silence reads this
/// instead of minus infinity so that comparisons and arithmetic on levels stay finite.
pub const MIN_DBM0: f32 = -100.0;

/// Peak amplitude, in linear sample units, of a sine at `level_dbm0`.
pub fn dbm0_to_amplitude(level_dbm0: f32) -> f32 {
    32767.0 * 10f32.powf((level_dbm0 - DBM0_MAX_SINE_POWER) / 20.0)
}

/// Level in dBm0 of a signal with the given mean square (power per sample, in linear sample
/// units squared), clamped below at [`MIN_DBM0`].
pub fn mean_square_to_dbm0(mean_square: f32) -> f32 {
    // A full-scale sine has a mean square of 32767^2 / 2 and reads DBM0_MAX_SINE_POWER.
    const FULL_SCALE_SINE_MS: f32 = 32767.0 * 32767.0 / 2.0;
    if mean_square <= 0.0 {
        return MIN_DBM0;
    }
    let level = 10.0 * (mean_square / FULL_SCALE_SINE_MS).log10() + DBM0_MAX_SINE_POWER;
    level.max(MIN_DBM0)
}

/// Rounds a sample to i16, saturating, so oscillator sums near full scale never wrap.
#[inline]
pub(crate) fn saturate(x: f32) -> i16 {
    // `as` from f32 to i16 saturates and maps NaN to 0, which is the behaviour we want.
    x.round() as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_convention_round_trips() {
        let a = dbm0_to_amplitude(0.0);
        assert!((a - 22_828.0).abs() < 2.0, "{a}");
        let ms = a * a / 2.0;
        assert!(mean_square_to_dbm0(ms).abs() < 0.001);
        assert_eq!(mean_square_to_dbm0(0.0), MIN_DBM0);
        assert!((dbm0_to_amplitude(DBM0_MAX_SINE_POWER) - 32767.0).abs() < 0.01);
    }

    #[test]
    fn saturate_clamps() {
        assert_eq!(saturate(40_000.0), i16::MAX);
        assert_eq!(saturate(-40_000.0), i16::MIN);
        assert_eq!(saturate(f32::NAN), 0);
        assert_eq!(saturate(1.6), 2);
    }
}
