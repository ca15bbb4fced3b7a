//! DTMF (ITU-T Q.23/Q.24) detection and generation.
//!
//! # Detector
//!
//! The detector measures the eight DTMF frequencies over blocks of 102 samples (12.75 ms),
//! short enough that two consecutive blocks fit in a 40 ms tone whatever its alignment.
//! A block is a *hit* for a key when:
//!
//! * the strongest row and column tones are each at least -42 dBm0;
//! * each winner is at least 8 dB above every other tone of its group;
//! * each of the two tones is present in all four quarters of the block (this rejects
//!   blocks a tone only partly covers, and so tones shorter than about 23 ms);
//! * each tone is within 2.5 % of its nominal frequency — halfway between Q.24's
//!   must-accept 1.5 % and must-reject 3.5 % — judged for each tone on its own;
//! * the twist is within limits: the row (low group) tone may be up to 10 dB stronger than
//!   the column (high group) tone ("normal twist"), and the column up to 6 dB stronger than
//!   the row ("reverse twist"). These are spandsp's definitions; the limits are Q.24's 8 and
//!   4 dB plus 2 dB for the leakage between the two tones, which moves the measured twist
//!   by up to that much with their relative phase; and
//! * the two tones, corrected for their frequency error, carry at least 82 % (-0.85 dB) of
//!   the block's energy, which is what rejects speech, music and noise.
//!
//! A key is reported when two consecutive blocks hit the same key, and the key is
//! considered released after two consecutive blocks disagree with it. So a key press is
//! reported exactly once, 25.5 to 38.25 ms after it starts, and a single disturbed block
//! neither ends a digit nor starts a new one.
//!
//! The block length, level threshold, relative-peak and energy-share tests and the hit
//! logic match spandsp's `dtmf_rx`, so on clean, on-frequency digits both report the same
//! (the integration tests check that). Where spandsp falls short of Q.24 this detector
//! does not: spandsp judges frequency only through the energy share, so it misses digits
//! whose tones are both 1.5 % off (a 1633 Hz tone 1.5 % off loses 1.45 dB in the filter)
//! and accepts a low-group tone 3.5 % off next to an exact high tone; and its exact 8/4 dB
//! twist limits drop about half of the digits at exactly 8 or 4 dB twist.
//!
//! The computation is also different, and several times faster:
//!
//! * each block is buffered and split into four interleaved segments of 26 samples whose
//!   Goertzel recurrences run side by side in SIMD lanes. This breaks the serial dependency
//!   of one long recurrence, which is what bounds a plain Goertzel bank, and the segment
//!   results are joined with one complex rotation per segment at the end of the block.
//!   The per-segment phasors are also what the frequency and presence checks use: the
//!   phase turn from one segment to the next is the tone's frequency error, after the
//!   known leakage of the partner tone into the short segments has been subtracted;
//! * the recurrence is written as `c·s1 + (x − s2)` so only one multiply and one add sit on
//!   the loop-carried path;
//! * a block whose energy is too small for any tone to reach the threshold (by
//!   Cauchy–Schwarz, a tone's power can be at most 2·N times the block energy) skips the
//!   filters entirely, which makes silence nearly free without changing any decision.

use std::sync::OnceLock;

use heapless::Deque;

use super::tonegen::Oscillator;
use super::{dbm0_to_amplitude, saturate, SAMPLES_PER_MS};

/// Samples per detection block.
const BLOCK: usize = 102;
/// Number of interleaved segments per block, one per SIMD lane.
const LANES: usize = 4;
/// Samples per segment; `LANES * SEG` covers the block, the last two slots stay zero.
const SEG: usize = BLOCK.div_ceil(LANES);

/// Row (low group) then column (high group) frequencies in Hz.
const FREQS: [f32; 8] = [697.0, 770.0, 852.0, 941.0, 1209.0, 1336.0, 1477.0, 1633.0];

/// Keys by row then column.
const KEYS: [[char; 4]; 4] =
    [['1', '2', '3', 'A'], ['4', '5', '6', 'B'], ['7', '8', '9', 'C'], ['*', '0', '#', 'D']];

/// Minimum level of each of the two tones, in dBm0.
const THRESHOLD_DBM0: f32 = -42.0;
/// How much stronger the row tone may be than the column tone, in dB. Q.24 asks for 8 dB;
/// the limit is 2 dB wider because the rectangular window leaks the strong tone into the
/// weak tone's filter, which moves the measured twist by up to ±2 dB with the tones'
/// relative phase. With exactly 8 dB (spandsp's limit) only about half of the blocks of an
/// 8 dB-twisted digit pass.
const NORMAL_TWIST_DB: f32 = 10.0;
/// How much stronger the column tone may be than the row tone, in dB: Q.24's 4 dB plus the
/// same 2 dB allowance for leakage.
const REVERSE_TWIST_DB: f32 = 6.0;
/// How far above the other tones of its group the winner must be, in dB.
const RELATIVE_PEAK_DB: f32 = 8.0;
/// The share of the block energy the two tones must carry, in dB.
const TO_TOTAL_ENERGY_DB: f32 = -0.85;

/// Largest accepted frequency error of each tone, relative: halfway between Q.24's
/// must-accept 1.5 % and must-reject 3.5 %.
const MAX_FREQUENCY_ERROR: f32 = 0.025;
/// The window loss correction is capped here (a tone 2.5 % off at 1633 Hz loses 4.4 dB).
const MIN_WINDOW_GAIN: f32 = 0.25;

/// Marks "no key" in the hit history.
const NO_KEY: u8 = 0xFF;

fn db_to_power_ratio(db: f32) -> f32 {
    10f32.powf(db / 10.0)
}

/// True for the sixteen DTMF keys: `0`-`9`, `*`, `#` and `A`-`D` (upper case only).
pub fn is_dtmf_digit(c: char) -> bool {
    key_position(c).is_some()
}

/// Row and column of a key.
fn key_position(c: char) -> Option<(usize, usize)> {
    KEYS.iter().enumerate().find_map(|(r, row)| row.iter().position(|&k| k == c).map(|col| (r, col)))
}

/// A streaming DTMF detector. See the module documentation for the method.
#[derive(Clone, Debug)]
pub struct DtmfDetector {
    /// The block being gathered, linear, as f32; slots past `BLOCK` stay zero.
    block: [f32; LANES * SEG],
    filled: usize,
    /// Goertzel coefficient 2·cos(ω) per frequency.
    coef: [f32; 8],
    /// ω in radians per sample per frequency.
    omega: [f32; 8],
    /// cos(ω) and sin(ω) per frequency, to turn the final filter state into a phasor.
    cos_w: [f32; 8],
    sin_w: [f32; 8],
    /// e^{-jωL·m} per frequency and segment m, to align each segment's phasor with the block.
    rot_re: [[f32; LANES]; 8],
    rot_im: [[f32; LANES]; 8],
    /// Leakage kernels, see `Kernels`; shared by all detectors, built on first use.
    kernels: &'static Kernels,
    /// Acceptance limits, in the units of `Analysis::power` (see `new`).
    threshold: f32,
    normal_twist: f32,
    reverse_twist: f32,
    relative_peak: f32,
    to_total: f32,
    /// Key hit by the previous block, or `NO_KEY`.
    last_hit: u8,
    /// Key currently held down, or `NO_KEY`.
    current: u8,
}

impl Default for DtmfDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl DtmfDetector {
    /// A detector with the Q.24 limits described in the module documentation.
    pub fn new() -> Self {
        let mut coef = [0.0; 8];
        let mut omega = [0.0; 8];
        let mut cos_w = [0.0; 8];
        let mut sin_w = [0.0; 8];
        let mut rot_re = [[0.0; LANES]; 8];
        let mut rot_im = [[0.0; LANES]; 8];
        for (k, &f) in FREQS.iter().enumerate() {
            // Angles are computed in f64 so the rotations are exact to f32 precision.
            let w = 2.0 * core::f64::consts::PI * f64::from(f) / 8000.0;
            coef[k] = (2.0 * w.cos()) as f32;
            omega[k] = w as f32;
            cos_w[k] = w.cos() as f32;
            sin_w[k] = w.sin() as f32;
            for m in 0..LANES {
                // The extra SEG - 1 makes the aligned phasor exactly the segment's share
                // of the block DFT, which the leakage kernels assume.
                let a = -w * (SEG * m + SEG - 1) as f64;
                rot_re[k][m] = a.cos() as f32;
                rot_im[k][m] = a.sin() as f32;
            }
        }
        // A sine of peak A at a filter's frequency gives |X|^2 = (N·A/2)^2 over N samples;
        // `analyse` reports 2·|X|^2 = N^2·A^2/2, which is N times the block energy of
        // that sine (N·A^2/2). The energy share test below relies on that scaling.
        let n = BLOCK as f32;
        let a = dbm0_to_amplitude(THRESHOLD_DBM0);
        DtmfDetector {
            block: [0.0; LANES * SEG],
            filled: 0,
            coef,
            omega,
            cos_w,
            sin_w,
            rot_re,
            rot_im,
            kernels: Kernels::shared(),
            threshold: n * n * a * a / 2.0,
            normal_twist: db_to_power_ratio(NORMAL_TWIST_DB),
            reverse_twist: db_to_power_ratio(REVERSE_TWIST_DB),
            relative_peak: db_to_power_ratio(RELATIVE_PEAK_DB),
            to_total: n * db_to_power_ratio(TO_TOTAL_ENERGY_DB),
            last_hit: NO_KEY,
            current: NO_KEY,
        }
    }

    /// Forgets any partial block and any key in progress.
    pub fn reset(&mut self) {
        self.block = [0.0; LANES * SEG];
        self.filled = 0;
        self.last_hit = NO_KEY;
        self.current = NO_KEY;
    }

    /// The key currently held down, if any.
    pub fn current_digit(&self) -> Option<char> {
        key_char(self.current)
    }

    /// Feeds samples of any length; `on_digit` is called once per key press, when the press
    /// is confirmed. State carries across calls, so splitting audio differently gives the
    /// same digits.
    pub fn process(&mut self, samples: &[i16], mut on_digit: impl FnMut(char)) {
        let mut rest = samples;
        while !rest.is_empty() {
            let take = (BLOCK - self.filled).min(rest.len());
            let (now, later) = rest.split_at(take);
            for (dst, &s) in self.block[self.filled..self.filled + take].iter_mut().zip(now) {
                *dst = f32::from(s);
            }
            self.filled += take;
            rest = later;
            if self.filled == BLOCK {
                self.filled = 0;
                let hit = self.classify_block();
                self.debounce(hit, &mut on_digit);
            }
        }
    }

    /// Decides which key, if any, the full block in `self.block` holds.
    fn classify_block(&self) -> u8 {
        let energy = self.block_energy();
        // No tone can carry more than 2·N times the block energy, so a block that quiet
        // cannot pass the threshold test: skip the filters.
        if 2.0 * BLOCK as f32 * energy < self.threshold {
            return NO_KEY;
        }
        let a = self.analyse();
        let (rows, cols) = a.power.split_at(4);
        let best_row = argmax(rows);
        let best_col = argmax(cols);
        let r = rows[best_row];
        let c = cols[best_col];
        if r < self.threshold || c < self.threshold {
            return NO_KEY;
        }
        for i in 0..4 {
            if (i != best_row && rows[i] * self.relative_peak > r)
                || (i != best_col && cols[i] * self.relative_peak > c)
            {
                return NO_KEY;
            }
        }
        // Each tone's own frequency error decides Q.24's 1.5 % / 3.5 % limits; the power is
        // then corrected for what the error cost in the filter, so that the twist and
        // energy-share tests judge the tone as if it were on frequency.
        let Some(r) = a.check_tone(best_row, 4 + best_col, r, self) else { return NO_KEY };
        let Some(c) = a.check_tone(4 + best_col, best_row, c, self) else { return NO_KEY };
        // Normal twist: the row may be louder by the normal limit; reverse: the column by
        // the reverse limit.
        if !(c < r * self.reverse_twist && c * self.normal_twist > r) {
            return NO_KEY;
        }
        if r + c <= self.to_total * energy {
            return NO_KEY;
        }
        (best_row * 4 + best_col) as u8
    }

    /// Sets the twist limits in dB: how much stronger the row (low group) tone may be than
    /// the column tone (normal twist), and the reverse. Negative values are ignored.
    pub fn set_twist_limits(&mut self, normal_db: f32, reverse_db: f32) {
        if normal_db >= 0.0 {
            self.normal_twist = db_to_power_ratio(normal_db);
        }
        if reverse_db >= 0.0 {
            self.reverse_twist = db_to_power_ratio(reverse_db);
        }
    }

    /// Sum of squares of the block, with independent lane accumulators so the adds do not
    /// form one long dependency chain.
    fn block_energy(&self) -> f32 {
        let mut acc = [0.0f32; 8];
        for chunk in self.block.chunks_exact(8) {
            for (a, &x) in acc.iter_mut().zip(chunk) {
                *a += x * x;
            }
        }
        let mut total: f32 = acc.iter().sum();
        for &x in self.block.chunks_exact(8).remainder() {
            total += x * x;
        }
        total
    }

    /// Runs the eight filters over the block: 2·|X(ω)|^2 per frequency, and each
    /// segment's phasor aligned to the block, from which the frequency error is estimated.
    fn analyse(&self) -> Analysis {
        let mut s1 = [[0.0f32; LANES]; 8];
        let mut s2 = [[0.0f32; LANES]; 8];
        for i in 0..SEG {
            // Lane m carries sample m·SEG + i, so the four lanes run four independent
            // Goertzel recurrences over the four segments of the block.
            let x = [self.block[i], self.block[SEG + i], self.block[2 * SEG + i], self.block[3 * SEG + i]];
            for k in 0..8 {
                let c = self.coef[k];
                for m in 0..LANES {
                    let v = c * s1[k][m] + (x[m] - s2[k][m]);
                    s2[k][m] = s1[k][m];
                    s1[k][m] = v;
                }
            }
        }
        let mut a = Analysis {
            power: [0.0; 8],
            re: [[0.0; LANES]; 8],
            im: [[0.0; LANES]; 8],
            total: [(0.0, 0.0); 8],
        };
        for k in 0..8 {
            let mut re = 0.0f32;
            let mut im = 0.0f32;
            for m in 0..LANES {
                // The segment's DFT phasor, up to a phase common to all segments:
                // s1 - e^{-jω}·s2.
                let zr = s1[k][m] - self.cos_w[k] * s2[k][m];
                let zi = self.sin_w[k] * s2[k][m];
                // Shift it by the segment's start so the segments add coherently.
                let yr = zr * self.rot_re[k][m] - zi * self.rot_im[k][m];
                let yi = zr * self.rot_im[k][m] + zi * self.rot_re[k][m];
                a.re[k][m] = yr;
                a.im[k][m] = yi;
                re += yr;
                im += yi;
            }
            a.power[k] = 2.0 * (re * re + im * im);
            a.total[k] = (re, im);
        }
        a
    }

    /// Turns per-block hits into key presses: a change needs two consecutive blocks that
    /// disagree with the current state, and a new key needs both of them to agree on it.
    fn debounce(&mut self, hit: u8, on_digit: &mut impl FnMut(char)) {
        if hit != self.current && self.last_hit != self.current {
            let confirmed = if hit != NO_KEY && hit == self.last_hit { hit } else { NO_KEY };
            if let Some(c) = key_char(confirmed) {
                on_digit(c);
            }
            self.current = confirmed;
        }
        self.last_hit = hit;
    }
}

/// Filter outputs for one block.
struct Analysis {
    /// 2·|X(ω)|^2 per frequency.
    power: [f32; 8],
    /// Each segment's share of the block DFT, per frequency.
    re: [[f32; LANES]; 8],
    im: [[f32; LANES]; 8],
    /// The block DFT per frequency (the sum of the segments).
    total: [(f32, f32); 8],
}

impl Analysis {
    /// Checks the tone in filter `k`, whose partner tone of the other group is in filter
    /// `partner`, and returns its power corrected for its frequency error, or `None` when
    /// the tone is not present in every quarter of the block or is too far off frequency.
    ///
    /// Both checks look at the four segment phasors. A 26-sample segment resolves
    /// frequencies poorly, so the partner tone (and each tone's own negative-frequency
    /// image) leaks into them by up to -17 dB, enough to wreck the estimate of a tone 8 dB
    /// weaker than its partner. That leakage is known in form, so it is subtracted first:
    /// each tone's complex amplitude comes from the block DFT, and the precomputed kernels
    /// say what a tone of that amplitude puts into each segment of another filter.
    fn check_tone(&self, k: usize, partner: usize, power: f32, det: &DtmfDetector) -> Option<f32> {
        let kern = &det.kernels;
        let pp = partner % 4;
        let (pr, pi) = self.total[partner];
        let (sr, si) = self.total[k];
        let mut cr = [0.0f32; LANES];
        let mut ci = [0.0f32; LANES];
        for m in 0..LANES {
            let (xr, xi) = kern.cross[k][pp][m];
            let (yr, yi) = kern.cross_image[k][pp][m];
            let (zr, zi) = kern.self_image[k][m];
            // S_p·X + conj(S_p)·Y + conj(S_k)·Z, written out in real arithmetic.
            let lr = (pr * xr - pi * xi) + (pr * yr + pi * yi) + (sr * zr + si * zi);
            let li = (pr * xi + pi * xr) + (pr * yi - pi * yr) + (sr * zi - si * zr);
            cr[m] = self.re[k][m] - lr;
            ci[m] = self.im[k][m] - li;
        }
        // Present in every segment: each holds at least a quarter of the mean segment power
        // (half the amplitude). A tone covering less than about 88 % of the block fails, so
        // the frequency correction below cannot help a partial block through.
        let p: [f32; LANES] = core::array::from_fn(|m| cr[m] * cr[m] + ci[m] * ci[m]);
        let mean = p.iter().sum::<f32>() / LANES as f32;
        if p.iter().any(|&x| x < 0.25 * mean) {
            return None;
        }
        // conj(C_m)·C_{m+1} turns by the frequency error times the segment length.
        let mut dr = 0.0f32;
        let mut di = 0.0f32;
        for m in 0..LANES - 1 {
            dr += cr[m] * cr[m + 1] + ci[m] * ci[m + 1];
            di += cr[m] * ci[m + 1] - ci[m] * cr[m + 1];
        }
        let delta = di.atan2(dr) / SEG as f32;
        if delta.abs() > MAX_FREQUENCY_ERROR * det.omega[k] {
            return None;
        }
        // Power response of an N-sample rectangular window at `delta` rad/sample off.
        let half = 0.5 * delta;
        let gain = if half.abs() < 1e-6 {
            1.0
        } else {
            let g = (BLOCK as f32 * half).sin() / (BLOCK as f32 * half.sin());
            g * g
        };
        Some(power / gain.max(MIN_WINDOW_GAIN))
    }
}

/// What a unit tone puts into each segment of each filter, divided by the block length so
/// it can be scaled directly by a block DFT value. With `G(θ, m) = Σ e^{jθn}` over the
/// samples `n` of segment `m`, a tone `Re(a·e^{jω_j n})` whose block DFT at `ω_j` is
/// `S_j ≈ a·N/2` contributes `S_j·G(ω_j − ω_k, m)/N + conj(S_j)·G(−ω_j − ω_k, m)/N` to
/// segment `m` of filter `k`.
#[derive(Clone, Debug)]
struct Kernels {
    /// `[filter][partner within the other group][segment]`: `G(ω_j − ω_k, m)/N`.
    cross: [[[(f32, f32); LANES]; 4]; 8],
    /// `G(−ω_j − ω_k, m)/N`.
    cross_image: [[[(f32, f32); LANES]; 4]; 8],
    /// `[filter][segment]`: `G(−2ω_k, m)/N`, the tone's own negative-frequency image.
    self_image: [[(f32, f32); LANES]; 8],
}

impl Kernels {
    /// The process-wide table. Building it takes thousands of trigonometric calls, so it is
    /// done once; after that this is a single atomic load, with no lock on the real-time path.
    fn shared() -> &'static Kernels {
        static KERNELS: OnceLock<Kernels> = OnceLock::new();
        KERNELS.get_or_init(Kernels::new)
    }

    fn new() -> Self {
        let w = |k: usize| 2.0 * core::f64::consts::PI * f64::from(FREQS[k]) / 8000.0;
        let g = |theta: f64, m: usize| {
            let start = m * SEG;
            let end = (start + SEG).min(BLOCK);
            let (mut re, mut im) = (0.0f64, 0.0f64);
            for n in start..end {
                re += (theta * n as f64).cos();
                im += (theta * n as f64).sin();
            }
            ((re / BLOCK as f64) as f32, (im / BLOCK as f64) as f32)
        };
        let mut kern = Kernels {
            cross: [[[(0.0, 0.0); LANES]; 4]; 8],
            cross_image: [[[(0.0, 0.0); LANES]; 4]; 8],
            self_image: [[(0.0, 0.0); LANES]; 8],
        };
        for k in 0..8 {
            let other = if k < 4 { 4 } else { 0 };
            for p in 0..4 {
                let j = other + p;
                for m in 0..LANES {
                    kern.cross[k][p][m] = g(w(j) - w(k), m);
                    kern.cross_image[k][p][m] = g(-w(j) - w(k), m);
                }
            }
            for m in 0..LANES {
                kern.self_image[k][m] = g(-2.0 * w(k), m);
            }
        }
        kern
    }
}

fn key_char(k: u8) -> Option<char> {
    if k == NO_KEY {
        None
    } else {
        Some(KEYS[usize::from(k / 4)][usize::from(k % 4)])
    }
}

fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for i in 1..v.len() {
        if v[i] > v[best] {
            best = i;
        }
    }
    best
}

/// Capacity of the generator's digit queue.
pub const DTMF_QUEUE_CAPACITY: usize = 64;

/// Why digits could not be queued. Nothing is queued when an error is returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DtmfError {
    #[error("'{0}' is not a DTMF digit (expected 0-9, *, #, A-D)")]
    UnknownDigit(char),
    #[error("the DTMF digit queue is full ({DTMF_QUEUE_CAPACITY} digits)")]
    Full,
}

/// What the generator is playing now.
#[derive(Clone, Copy, Debug)]
enum GenState {
    Idle,
    Tone { remaining: u32 },
    Pause { remaining: u32 },
}

/// Plays queued DTMF digits as tone bursts separated by pauses.
#[derive(Clone, Debug)]
pub struct DtmfGenerator {
    queue: Deque<u8, DTMF_QUEUE_CAPACITY>,
    amplitude: f32,
    on_samples: u32,
    off_samples: u32,
    low: Oscillator,
    high: Oscillator,
    state: GenState,
}

impl DtmfGenerator {
    /// A generator playing each tone of a digit at `level_dbm0`, for `on_ms`, followed by
    /// `off_ms` of silence. Q.24 expects at least 40 ms of each; -10 dBm0 per tone with 50 ms
    /// on and 55 ms off are spandsp's defaults.
    pub fn new(level_dbm0: f32, on_ms: u32, off_ms: u32) -> Self {
        let amplitude = dbm0_to_amplitude(level_dbm0);
        DtmfGenerator {
            queue: Deque::new(),
            amplitude,
            on_samples: on_ms.saturating_mul(SAMPLES_PER_MS),
            off_samples: off_ms.saturating_mul(SAMPLES_PER_MS),
            low: Oscillator::new(0.0, 0.0),
            high: Oscillator::new(0.0, 0.0),
            state: GenState::Idle,
        }
    }

    /// Queues digits to play after those already queued. The whole string is checked first:
    /// an unknown character or too little room queues nothing.
    pub fn push_digits(&mut self, digits: &str) -> Result<(), DtmfError> {
        if let Some(bad) = digits.chars().find(|&c| !is_dtmf_digit(c)) {
            return Err(DtmfError::UnknownDigit(bad));
        }
        // Every accepted character is ASCII, so the byte length is the digit count.
        if digits.len() > self.queue.capacity() - self.queue.len() {
            return Err(DtmfError::Full);
        }
        for b in digits.bytes() {
            // Room was checked above, so this cannot fail; if it somehow did, dropping the
            // digit is the safe outcome on the real-time path.
            let _ = self.queue.push_back(b);
        }
        Ok(())
    }

    /// Digits queued and not yet started.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// True when nothing is playing and nothing is queued.
    pub fn is_idle(&self) -> bool {
        matches!(self.state, GenState::Idle) && self.queue.is_empty()
    }

    /// Drops queued digits and stops the one playing.
    pub fn clear(&mut self) {
        self.queue.clear();
        self.state = GenState::Idle;
    }

    /// Writes tones and pauses into `out` and returns how many samples were written: fewer
    /// than `out.len()` (possibly 0) when the queue runs out, leaving the rest of `out`
    /// untouched.
    pub fn fill(&mut self, out: &mut [i16]) -> usize {
        let mut written = 0;
        while written < out.len() {
            match self.state {
                GenState::Idle => {
                    let Some(b) = self.queue.pop_front() else {
                        break;
                    };
                    let Some((r, c)) = key_position(char::from(b)) else {
                        continue;
                    };
                    self.low = Oscillator::new(FREQS[r], self.amplitude);
                    self.high = Oscillator::new(FREQS[4 + c], self.amplitude);
                    self.state = GenState::Tone { remaining: self.on_samples };
                }
                GenState::Tone { remaining } => {
                    let n = (out.len() - written).min(remaining as usize);
                    for s in &mut out[written..written + n] {
                        *s = saturate(self.low.next_sample() + self.high.next_sample());
                    }
                    written += n;
                    let left = remaining - n as u32;
                    self.state = if left > 0 {
                        GenState::Tone { remaining: left }
                    } else {
                        GenState::Pause { remaining: self.off_samples }
                    };
                }
                GenState::Pause { remaining } => {
                    let n = (out.len() - written).min(remaining as usize);
                    out[written..written + n].fill(0);
                    written += n;
                    let left = remaining - n as u32;
                    self.state = if left > 0 { GenState::Pause { remaining: left } } else { GenState::Idle };
                }
            }
        }
        written
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detect(samples: &[i16]) -> heapless::String<64> {
        let mut d = DtmfDetector::new();
        let mut out = heapless::String::new();
        d.process(samples, |c| {
            let _ = out.push(c);
        });
        out
    }

    #[test]
    fn generated_digits_are_detected() {
        let mut g = DtmfGenerator::new(-10.0, 50, 55);
        g.push_digits("123A456B789C*0#D").expect("valid digits");
        let mut buf = [0i16; 16 * 105 * 8 + 800];
        let n = g.fill(&mut buf);
        assert_eq!(n, 16 * 105 * 8);
        assert!(g.is_idle());
        assert_eq!(detect(&buf).as_str(), "123A456B789C*0#D");
    }

    #[test]
    fn chunking_does_not_change_results() {
        let mut g = DtmfGenerator::new(-20.0, 45, 45);
        g.push_digits("9081726354").expect("valid digits");
        let mut buf = [0i16; 10 * 90 * 8];
        g.fill(&mut buf);
        let mut d = DtmfDetector::new();
        let mut out: heapless::String<16> = heapless::String::new();
        for chunk in buf.chunks(37) {
            d.process(chunk, |c| {
                let _ = out.push(c);
            });
        }
        assert_eq!(out.as_str(), "9081726354");
    }

    #[test]
    fn push_errors_queue_nothing() {
        let mut g = DtmfGenerator::new(-10.0, 50, 50);
        assert_eq!(g.push_digits("12x4"), Err(DtmfError::UnknownDigit('x')));
        assert_eq!(g.push_digits("12a"), Err(DtmfError::UnknownDigit('a')));
        assert!(g.is_idle());
        let long = "1".repeat(DTMF_QUEUE_CAPACITY + 1);
        assert_eq!(g.push_digits(&long), Err(DtmfError::Full));
        assert_eq!(g.queued(), 0);
        assert_eq!(g.push_digits(&long[1..]), Ok(()));
        assert_eq!(g.push_digits("1"), Err(DtmfError::Full));
        let mut none = [0i16; 0];
        assert_eq!(g.fill(&mut none), 0);
        assert_eq!(
            DtmfError::UnknownDigit('x').to_string(),
            "'x' is not a DTMF digit (expected 0-9, *, #, A-D)"
        );
    }

    #[test]
    fn silence_and_single_tones_give_nothing() {
        assert_eq!(detect(&[0i16; 4000]).as_str(), "");
        let mut osc = Oscillator::new(697.0, dbm0_to_amplitude(-10.0));
        let tone: [i16; 4000] = core::array::from_fn(|_| saturate(osc.next_sample()));
        assert_eq!(detect(&tone).as_str(), "");
    }
}
