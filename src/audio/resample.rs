//! Rational-ratio resampling of whole prompt files down to the 8 kHz telephony rate.
//!
//! The resampler is a polyphase windowed-sinc filter. Conceptually the input is upsampled by
//! `L`, low-pass filtered, and decimated by `M`; only the filter taps that land on real input
//! samples are computed, and they are precomputed once per phase. The low-pass is a Kaiser
//! window designed for about 80 dB of stop-band attenuation with its stop band starting at
//! 4 kHz, so nothing above the new Nyquist frequency folds back into the voice band.

use std::f64::consts::PI;

/// Output rate of every resampled file.
pub(crate) const TARGET_RATE: u32 = 8000;

/// Edge of the pass band in Hz. Telephone voice stops at 3.4 kHz.
const PASS_EDGE_HZ: f64 = 3400.0;
/// Start of the stop band in Hz: the 8 kHz Nyquist frequency.
const STOP_EDGE_HZ: f64 = 4000.0;
/// Stop-band attenuation the Kaiser design aims for, in dB.
const ATTENUATION_DB: f64 = 80.0;

/// The input rates `to_8k` accepts besides 8 kHz itself.
pub(crate) const SUPPORTED_RATES: [u32; 6] = [11025, 16000, 22050, 32000, 44100, 48000];

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        let t = a % b;
        a = b;
        b = t;
    }
    a
}

/// Zeroth-order modified Bessel function of the first kind, by its power series. The series
/// converges quickly for the arguments a Kaiser window uses (below about 15).
fn bessel_i0(x: f64) -> f64 {
    let half = x / 2.0;
    let mut term = 1.0;
    let mut sum = 1.0;
    for k in 1..64 {
        let kf = f64::from(k);
        term *= (half / kf) * (half / kf);
        sum += term;
        if term < sum * 1e-17 {
            break;
        }
    }
    sum
}

fn sinc(x: f64) -> f64 {
    if x.abs() < 1e-12 {
        1.0
    } else {
        (PI * x).sin() / (PI * x)
    }
}

/// Resamples `input` from `rate_in` to 8 kHz. The caller has checked that `rate_in` is in
/// [`SUPPORTED_RATES`]; any other positive rate above 8 kHz would also work.
pub(crate) fn resample_to_8k(input: &[i16], rate_in: u32) -> Vec<i16> {
    if input.is_empty() || rate_in == 0 {
        return Vec::new();
    }
    let g = gcd(u64::from(rate_in), u64::from(TARGET_RATE));
    // Upsampling factor L (number of phases) and decimation factor M.
    let up = u64::from(TARGET_RATE) / g;
    let down = u64::from(rate_in) / g;
    let fs = f64::from(rate_in);

    // Kaiser design: the transition width sets the filter length, the attenuation sets beta.
    let transition = 2.0 * PI * (STOP_EDGE_HZ - PASS_EDGE_HZ) / fs;
    let length = ((ATTENUATION_DB - 8.0) / (2.285 * transition)).ceil();
    let half = (length / 2.0).ceil().max(1.0);
    let beta = 0.1102 * (ATTENUATION_DB - 8.7);
    let i0_beta = bessel_i0(beta);
    // Cut-off in cycles per input sample, centred in the transition band.
    let cutoff = (PASS_EDGE_HZ + STOP_EDGE_HZ) / 2.0 / fs;
    // `half` is a small positive whole number (a few hundred at 48 kHz), so the conversion
    // to an integer is exact.
    let half_taps = half as i64;
    let taps_per_phase = (2 * half_taps + 1) as usize;

    // One row of taps per phase p, for the fractional input offset p / L.
    let phases = up as usize;
    let mut table = vec![0.0f64; phases * taps_per_phase];
    for (p, row) in table.chunks_mut(taps_per_phase).enumerate() {
        let frac = p as f64 / up as f64;
        let mut sum = 0.0;
        for (i, tap) in row.iter_mut().enumerate() {
            let k = i as i64 - half_taps;
            let x = k as f64 - frac;
            let r = x / (half + 1.0);
            let window = if r.abs() >= 1.0 { 0.0 } else { bessel_i0(beta * (1.0 - r * r).sqrt()) / i0_beta };
            *tap = 2.0 * cutoff * sinc(2.0 * cutoff * x) * window;
            sum += *tap;
        }
        // Normalising every phase to unity gain at DC keeps a constant input constant and
        // removes the small gain ripple between phases that truncating the sinc introduces.
        if sum.abs() > 1e-12 {
            for tap in row.iter_mut() {
                *tap /= sum;
            }
        }
    }

    let in_len = input.len() as u64;
    // Output sample n sits at input position n * M / L; emit every n whose position lies
    // inside the input.
    let out_len = (in_len * up).div_ceil(down);
    let mut out = Vec::with_capacity(out_len as usize);
    for n in 0..out_len {
        let pos = n * down;
        let centre = (pos / up) as i64;
        let phase = (pos % up) as usize;
        let row = &table[phase * taps_per_phase..(phase + 1) * taps_per_phase];
        let mut acc = 0.0;
        for (i, tap) in row.iter().enumerate() {
            let idx = centre + i as i64 - half_taps;
            // Samples outside the file are silence, which tapers the first and last few
            // milliseconds instead of inventing signal.
            if idx >= 0 && (idx as u64) < in_len {
                acc += f64::from(input[idx as usize]) * tap;
            }
        }
        out.push(acc.round().clamp(f64::from(i16::MIN), f64::from(i16::MAX)) as i16);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: u32, freq: f64, seconds: f64, amplitude: f64) -> Vec<i16> {
        let n = (f64::from(rate) * seconds) as usize;
        (0..n).map(|i| (amplitude * (2.0 * PI * freq * i as f64 / f64::from(rate)).sin()) as i16).collect()
    }

    /// RMS over the middle of the signal, away from the tapered edges.
    fn rms_middle(x: &[i16]) -> f64 {
        let a = x.len() / 4;
        let b = x.len() * 3 / 4;
        let sum: f64 = x[a..b].iter().map(|&s| f64::from(s) * f64::from(s)).sum();
        (sum / (b - a) as f64).sqrt()
    }

    /// Amplitude of one frequency, by correlating with a complex exponential.
    fn amplitude_at(x: &[i16], rate: f64, freq: f64) -> f64 {
        let a = x.len() / 4;
        let b = x.len() * 3 / 4;
        let (mut re, mut im) = (0.0, 0.0);
        for (i, &s) in x[a..b].iter().enumerate() {
            let w = 2.0 * PI * freq * (i + a) as f64 / rate;
            re += f64::from(s) * w.cos();
            im += f64::from(s) * w.sin();
        }
        2.0 * (re * re + im * im).sqrt() / (b - a) as f64
    }

    #[test]
    fn voice_band_tones_pass_at_every_rate() {
        for rate in SUPPORTED_RATES {
            for freq in [300.0, 1000.0, 3000.0] {
                let out = resample_to_8k(&tone(rate, freq, 1.0, 10000.0), rate);
                let expected_len = 8000;
                assert!((out.len() as i64 - expected_len).abs() <= 1, "{rate}: {} samples", out.len());
                let amp = amplitude_at(&out, 8000.0, freq);
                assert!((amp - 10000.0).abs() < 150.0, "{rate} Hz, {freq} Hz tone: amplitude {amp}");
            }
        }
    }

    #[test]
    fn tones_above_4k_are_removed_not_aliased() {
        for rate in SUPPORTED_RATES {
            // 4.6 kHz would alias to 3.4 kHz; 5 kHz (below 5.5125 kHz) exists at every rate.
            for freq in [4600.0, 5000.0] {
                let out = resample_to_8k(&tone(rate, freq, 1.0, 20000.0), rate);
                let rms = rms_middle(&out);
                // 80 dB below a 20000 amplitude tone is 2; allow rounding noise.
                assert!(rms < 4.0, "{rate} Hz, {freq} Hz tone leaked: rms {rms}");
            }
        }
    }

    #[test]
    fn dc_is_preserved() {
        let input = vec![1234i16; 44100];
        let out = resample_to_8k(&input, 44100);
        assert!(out[100..out.len() - 100].iter().all(|&s| s == 1234));
    }

    #[test]
    fn empty_input_gives_empty_output() {
        assert!(resample_to_8k(&[], 16000).is_empty());
    }
}
