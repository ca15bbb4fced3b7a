//! Line echo cancellation: a normalised LMS (NLMS) adaptive FIR filter with Geigel
//! double-talk detection.
//!
//! The filter models the echo path from what we send (`tx_ref`) to what comes back (`rx`)
//! over [`ECHO_TAPS`] samples (16 ms, enough for the hybrid of an analog line or an E1
//! channel bank), subtracts its estimate of the echo from `rx`, and adapts on the residual.
//! The reference history is stored twice in a row (a "doubled" ring buffer), so the window
//! the filter needs is always one contiguous slice and the dot product and the update
//! vectorise without any wrap-around handling.
//!
//! Adaptation stops while the near end talks: the Geigel test declares double talk when
//! `|rx|` reaches half the largest `|tx_ref|` in the filter window (an echo return loss of
//! at least 6 dB is assumed, which every hybrid meets), and holds that for a hangover
//! after the last such sample. The filter keeps cancelling with the coefficients it had,
//! so the near-end speech passes through untouched instead of being learnt as echo.

/// Filter length in samples (16 ms at 8 kHz).
pub const ECHO_TAPS: usize = 128;

/// NLMS step size: large enough to converge within a few hundred milliseconds on speech,
/// small enough to stay stable with some noise on the line.
const STEP: f32 = 0.5;
/// Regulariser added to the window power so near-silent references do not blow up the
/// normalised step; equals the window power of a -60 dBFS signal.
const REGULARISER: f32 = ECHO_TAPS as f32 * 1e-6;
/// How long adaptation stays frozen after the last double-talk sample (30 ms).
const DOUBLE_TALK_HANGOVER: u32 = 240;
/// Fraction of the peak reference that `rx` must reach to declare double talk (6 dB).
const GEIGEL_RATIO: f32 = 0.5;
/// Window power below which we do not adapt: the reference carries nothing to learn from.
const MIN_ADAPT_POWER: f32 = ECHO_TAPS as f32 * 1e-7;
/// Number of samples after which the running window power is recomputed exactly, to stop
/// rounding in the incremental update from accumulating.
const POWER_RESYNC: u32 = 4096;

/// Converts samples to the [-1, 1) range the filter works in.
const SCALE: f32 = 1.0 / 32768.0;

/// An NLMS echo canceller with Geigel double-talk detection. See the module docs.
#[derive(Clone, Debug)]
pub struct EchoCanceller {
    /// Filter coefficients; `taps[k]` weighs the reference `k` samples ago.
    taps: [f32; ECHO_TAPS],
    /// Reference history, stored twice so `history[pos..pos + ECHO_TAPS]` is always the
    /// window, newest first.
    history: [f32; 2 * ECHO_TAPS],
    pos: usize,
    /// Sum of squares of the window.
    power: f32,
    since_resync: u32,
    double_talk_left: u32,
    adapt: bool,
}

impl Default for EchoCanceller {
    fn default() -> Self {
        Self::new()
    }
}

impl EchoCanceller {
    /// A canceller with zero coefficients (it passes `rx` through until it has adapted).
    pub fn new() -> Self {
        EchoCanceller {
            taps: [0.0; ECHO_TAPS],
            history: [0.0; 2 * ECHO_TAPS],
            pos: 0,
            power: 0.0,
            since_resync: 0,
            double_talk_left: 0,
            adapt: true,
        }
    }

    /// Forgets the learnt echo path and the history, for a new call.
    pub fn reset(&mut self) {
        let adapt = self.adapt;
        *self = Self::new();
        self.adapt = adapt;
    }

    /// Enables or disables adaptation (for example while a tone is being played that should
    /// not train the filter). Cancellation continues either way.
    pub fn set_adaptation(&mut self, on: bool) {
        self.adapt = on;
    }

    /// True while double talk holds adaptation.
    pub fn in_double_talk(&self) -> bool {
        self.double_talk_left > 0
    }

    /// Processes one sample pair: `tx_ref` is what we sent to the line, `rx` what came back
    /// at the same instant. Returns `rx` with the estimated echo removed.
    pub fn process(&mut self, tx_ref: i16, rx: i16) -> i16 {
        let x = f32::from(tx_ref) * SCALE;
        let d = f32::from(rx) * SCALE;

        // Push the newest reference at the front of the window.
        self.pos = if self.pos == 0 { ECHO_TAPS - 1 } else { self.pos - 1 };
        let oldest = self.history[self.pos + ECHO_TAPS];
        self.history[self.pos] = x;
        self.history[self.pos + ECHO_TAPS] = x;
        self.power += x * x - oldest * oldest;
        self.since_resync += 1;
        if self.since_resync >= POWER_RESYNC {
            self.since_resync = 0;
            self.power = sum_squares(self.window());
        }
        let power = self.power.max(0.0);

        let (estimate, peak) = dot_and_peak(&self.taps, self.window());
        let error = d - estimate;

        // Geigel: near-end speech shows up as rx louder than any echo the reference could
        // have produced.
        if d.abs() >= GEIGEL_RATIO * peak && d != 0.0 {
            self.double_talk_left = DOUBLE_TALK_HANGOVER;
        } else {
            self.double_talk_left = self.double_talk_left.saturating_sub(1);
        }

        if self.adapt && self.double_talk_left == 0 && power > MIN_ADAPT_POWER {
            let g = STEP * error / (power + REGULARISER);
            let start = self.pos;
            let window = &self.history[start..start + ECHO_TAPS];
            for (t, &h) in self.taps.iter_mut().zip(window) {
                *t += g * h;
            }
        }
        super::saturate(error * 32768.0)
    }

    /// Processes a block: `out[i] = process(tx_ref[i], rx[i])` over the shortest of the
    /// three lengths.
    pub fn process_block(&mut self, tx_ref: &[i16], rx: &[i16], out: &mut [i16]) {
        for ((o, &t), &r) in out.iter_mut().zip(tx_ref).zip(rx) {
            *o = self.process(t, r);
        }
    }

    fn window(&self) -> &[f32] {
        &self.history[self.pos..self.pos + ECHO_TAPS]
    }
}

fn sum_squares(v: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    for c in v.chunks_exact(8) {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += x * x;
        }
    }
    acc.iter().sum()
}

/// The filter output and the peak magnitude of the window, in one pass. Eight independent
/// accumulators let the compiler use SIMD without reassociating floating point.
fn dot_and_peak(taps: &[f32; ECHO_TAPS], window: &[f32]) -> (f32, f32) {
    let mut acc = [0.0f32; 8];
    let mut peak = [0.0f32; 8];
    for (tc, wc) in taps.chunks_exact(8).zip(window.chunks_exact(8)) {
        for i in 0..8 {
            acc[i] += tc[i] * wc[i];
            peak[i] = peak[i].max(wc[i].abs());
        }
    }
    let sum = acc.iter().sum();
    let max = peak.iter().fold(0.0f32, |m, &p| m.max(p));
    (sum, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_rx_through_before_adapting() {
        let mut ec = EchoCanceller::new();
        assert_eq!(ec.process(0, 1234), 1234);
        assert_eq!(ec.process(0, -32768), -32768);
    }

    #[test]
    fn cancels_a_pure_delay() {
        let mut ec = EchoCanceller::new();
        let mut seed = 1u32;
        let mut hist = [0i16; 64];
        let mut last_err = 0i32;
        for n in 0..16_000usize {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let x = ((seed >> 16) as i16) / 4;
            hist[n % 64] = x;
            let echo = hist[(n + 64 - 20) % 64] / 2;
            let e = ec.process(x, echo);
            if n > 15_000 {
                last_err = last_err.max(i32::from(e).abs());
            }
        }
        assert!(last_err < 20, "{last_err}");
    }
}
