//! Call-progress tone detection (dial, ringback, busy, congestion) with cadence matching.
//!
//! A [`ToneZone`] describes a country's tones: for each, one or two frequencies and either
//! "continuous" or an on/off cadence. The detector measures every frequency the zone uses
//! (at most four) over 25 ms blocks. 200 samples put the filter nulls 40 Hz apart, which
//! is exactly what separates the North American 440 and 480 Hz components. A block is
//! classified as one of the zone's frequency *signatures* (for example {480, 620}) when
//!
//! * every frequency of the signature is at least -40 dBm0,
//! * the signature's frequencies carry at least 60 % of the block's energy (speech, music,
//!   noise and DTMF spread their energy elsewhere and fail this), and
//! * every other zone frequency is at least 8 dB below the weakest one of the signature.
//!
//! Block classifications are debounced (a change needs two consecutive blocks) into
//! *segments* of tone and silence with measured durations. A cadenced tone is recognised
//! when the last `2·cycles` finished segments alternate tone/silence with durations within
//! ±(15 % + 50 ms) of its cadence — two cycles for busy and congestion, one for ringback —
//! that is, when the tone starts again after the last matched pause. A continuous tone is
//! recognised after 1 s, or longer when a cadenced tone of the same signature has bursts
//! that long (China's 1 s ringback bursts share dial tone's 450 Hz, so dial tone there is
//! confirmed after 1.25 s). [`ProgressTone::Silence`] is reported once when a recognised
//! tone stops matching: a continuous tone ends, or a cadenced tone's period runs too long
//! or ends too early.

use super::SAMPLES_PER_MS;

/// Samples per detection block (25 ms).
const BLOCK: usize = 200;
/// Block length in milliseconds.
const BLOCK_MS: u32 = BLOCK as u32 / SAMPLES_PER_MS;
/// The most distinct frequencies a zone may use.
pub const MAX_ZONE_FREQUENCIES: usize = 4;
/// Minimum level of each frequency of a signature, in dBm0.
const MIN_LEVEL_DBM0: f32 = -40.0;
/// Share of the block energy a signature must carry.
const PURITY: f32 = 0.6;
/// How far below the weakest signature frequency the other zone frequencies must be (dB).
const OTHER_FREQUENCY_REJECTION_DB: f32 = 8.0;
/// Relative cadence tolerance.
const CADENCE_TOLERANCE: f32 = 0.15;
/// Absolute cadence tolerance in milliseconds, covering block quantisation and debounce.
const CADENCE_SLACK_MS: u32 = 50;
/// Minimum duration of a continuous tone before it is recognised.
const CONTINUOUS_CONFIRM_MS: u32 = 1000;
/// Cadenced tones need this many matched on/off cycles.
const BUSY_CYCLES: usize = 2;
const RINGBACK_CYCLES: usize = 1;
/// Finished segments remembered for cadence matching (two busy cycles need four).
const HISTORY: usize = 2 * BUSY_CYCLES;
/// Shortest on or off period a zone may define: shorter ones cannot be measured reliably
/// with 25 ms blocks and debouncing.
const MIN_PERIOD_MS: u32 = 100;

/// A call-progress tone the detector reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProgressTone {
    Dial,
    Ringback,
    Busy,
    Congestion,
    /// The tone reported last has stopped (or stopped matching its cadence).
    Silence,
}

impl ProgressTone {
    /// Lower-case name for logs and configuration.
    pub const fn name(self) -> &'static str {
        match self {
            ProgressTone::Dial => "dial",
            ProgressTone::Ringback => "ringback",
            ProgressTone::Busy => "busy",
            ProgressTone::Congestion => "congestion",
            ProgressTone::Silence => "silence",
        }
    }
}

/// One tone of a zone: one or two frequencies and a cadence.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ToneSpec {
    freqs: [f32; 2],
    on_ms: u32,
    off_ms: u32,
}

impl ToneSpec {
    /// A tone that does not stop. `f2` of zero (or less) means a single frequency.
    pub const fn continuous(f1: f32, f2: f32) -> Self {
        ToneSpec { freqs: [f1, f2], on_ms: 0, off_ms: 0 }
    }

    /// A tone on for `on_ms`, off for `off_ms`, repeating. `f2` of zero (or less) means a
    /// single frequency.
    pub const fn cadenced(f1: f32, f2: f32, on_ms: u32, off_ms: u32) -> Self {
        ToneSpec { freqs: [f1, f2], on_ms, off_ms }
    }

    /// The frequencies in Hz; the second is 0 for a single-frequency tone.
    pub fn frequencies(&self) -> [f32; 2] {
        [self.freqs[0], if self.freqs[1] > 0.0 { self.freqs[1] } else { 0.0 }]
    }

    /// True for a tone without cadence.
    pub const fn is_continuous(&self) -> bool {
        self.on_ms == 0 && self.off_ms == 0
    }

    /// On period in milliseconds (0 for a continuous tone).
    pub const fn on_ms(&self) -> u32 {
        self.on_ms
    }

    /// Off period in milliseconds (0 for a continuous tone).
    pub const fn off_ms(&self) -> u32 {
        self.off_ms
    }
}

/// Why a zone definition was refused.
#[derive(Clone, Copy, Debug, PartialEq, thiserror::Error)]
pub enum ToneZoneError {
    #[error("{tone} tone: frequency {freq} Hz is outside 200-3000 Hz")]
    BadFrequency { tone: &'static str, freq: f32 },
    #[error("the zone uses more than {MAX_ZONE_FREQUENCIES} distinct frequencies")]
    TooManyFrequencies,
    #[error("{tone} tone: on and off periods must both be at least {MIN_PERIOD_MS} ms (or both 0 for a continuous tone)")]
    BadCadence { tone: &'static str },
    #[error("{a} and {b} tones cannot be told apart (same frequencies and overlapping cadences)")]
    Ambiguous { a: &'static str, b: &'static str },
}

/// A country's call-progress tones.
#[derive(Clone, Debug, PartialEq)]
pub struct ToneZone {
    dial: ToneSpec,
    ringback: ToneSpec,
    busy: ToneSpec,
    congestion: ToneSpec,
}

impl ToneZone {
    /// A zone from explicit values, as a configuration file defines it. Frequencies must be
    /// within 200-3000 Hz, the zone may use at most four distinct frequencies, and two tones
    /// with the same frequencies must differ in cadence by more than the detector's
    /// tolerance.
    pub fn new(
        dial: ToneSpec,
        ringback: ToneSpec,
        busy: ToneSpec,
        congestion: ToneSpec,
    ) -> Result<ToneZone, ToneZoneError> {
        let zone = ToneZone { dial, ringback, busy, congestion };
        let specs = zone.specs();
        for (tone, spec) in specs {
            let name = tone.name();
            for f in spec.freqs {
                if f > 0.0 && !(200.0..=3000.0).contains(&f) || (f == spec.freqs[0] && f <= 0.0) {
                    return Err(ToneZoneError::BadFrequency { tone: name, freq: f });
                }
            }
            if !spec.is_continuous() && (spec.on_ms < MIN_PERIOD_MS || spec.off_ms < MIN_PERIOD_MS) {
                return Err(ToneZoneError::BadCadence { tone: name });
            }
        }
        let mut freqs = [0.0f32; MAX_ZONE_FREQUENCIES];
        let mut count = 0;
        for (_, spec) in specs {
            for f in spec.frequencies() {
                if f > 0.0 && !freqs[..count].contains(&f) {
                    if count == MAX_ZONE_FREQUENCIES {
                        return Err(ToneZoneError::TooManyFrequencies);
                    }
                    freqs[count] = f;
                    count += 1;
                }
            }
        }
        for i in 0..specs.len() {
            for j in i + 1..specs.len() {
                let (ta, a) = specs[i];
                let (tb, b) = specs[j];
                if same_signature(&a, &b) && cadences_overlap(&a, &b) {
                    return Err(ToneZoneError::Ambiguous { a: ta.name(), b: tb.name() });
                }
            }
        }
        Ok(zone)
    }

    /// China (GB 9043 / YD/T 1008): 450 Hz throughout. Dial continuous, ringback 1 s on
    /// 4 s off, busy 0.35/0.35 s, congestion 0.7/0.7 s.
    pub fn china() -> ToneZone {
        ToneZone {
            dial: ToneSpec::continuous(450.0, 0.0),
            ringback: ToneSpec::cadenced(450.0, 0.0, 1000, 4000),
            busy: ToneSpec::cadenced(450.0, 0.0, 350, 350),
            congestion: ToneSpec::cadenced(450.0, 0.0, 700, 700),
        }
    }

    /// North America (Precise Tone Plan): dial 350+440 continuous, ringback 440+480 2 s on
    /// 4 s off, busy 480+620 0.5/0.5 s, reorder (congestion) 480+620 0.25/0.25 s.
    pub fn north_america() -> ToneZone {
        ToneZone {
            dial: ToneSpec::continuous(350.0, 440.0),
            ringback: ToneSpec::cadenced(440.0, 480.0, 2000, 4000),
            busy: ToneSpec::cadenced(480.0, 620.0, 500, 500),
            congestion: ToneSpec::cadenced(480.0, 620.0, 250, 250),
        }
    }

    /// Europe (CEPT/ETSI recommendation, ITU-T E.180 supplement): 425 Hz throughout. Dial
    /// continuous, ringback 1 s on 4 s off, busy 0.5/0.5 s, congestion 0.25/0.25 s.
    pub fn europe() -> ToneZone {
        ToneZone {
            dial: ToneSpec::continuous(425.0, 0.0),
            ringback: ToneSpec::cadenced(425.0, 0.0, 1000, 4000),
            busy: ToneSpec::cadenced(425.0, 0.0, 500, 500),
            congestion: ToneSpec::cadenced(425.0, 0.0, 250, 250),
        }
    }

    /// The definition of one tone; `None` for [`ProgressTone::Silence`].
    pub fn spec(&self, tone: ProgressTone) -> Option<&ToneSpec> {
        match tone {
            ProgressTone::Dial => Some(&self.dial),
            ProgressTone::Ringback => Some(&self.ringback),
            ProgressTone::Busy => Some(&self.busy),
            ProgressTone::Congestion => Some(&self.congestion),
            ProgressTone::Silence => None,
        }
    }

    fn specs(&self) -> [(ProgressTone, ToneSpec); 4] {
        [
            (ProgressTone::Dial, self.dial),
            (ProgressTone::Ringback, self.ringback),
            (ProgressTone::Busy, self.busy),
            (ProgressTone::Congestion, self.congestion),
        ]
    }
}

fn same_signature(a: &ToneSpec, b: &ToneSpec) -> bool {
    let norm = |s: &ToneSpec| {
        let [x, y] = s.frequencies();
        if y > 0.0 && y < x {
            [y, x]
        } else {
            [x, y]
        }
    };
    norm(a) == norm(b)
}

/// Acceptance window for a period, in milliseconds.
fn window(ms: u32) -> (u32, u32) {
    let slack = (ms as f32 * CADENCE_TOLERANCE) as u32 + CADENCE_SLACK_MS;
    (ms.saturating_sub(slack), ms + slack)
}

fn cadences_overlap(a: &ToneSpec, b: &ToneSpec) -> bool {
    if a.is_continuous() || b.is_continuous() {
        return a.is_continuous() && b.is_continuous();
    }
    let overlap = |x: u32, y: u32| {
        let (xl, xh) = window(x);
        let (yl, yh) = window(y);
        xl <= yh && yl <= xh
    };
    overlap(a.on_ms, b.on_ms) && overlap(a.off_ms, b.off_ms)
}

/// Signature index meaning "no zone tone in this block".
const NONE: u8 = 0xFF;

/// A tone the detector looks for, compiled from a [`ToneSpec`].
#[derive(Clone, Copy, Debug)]
struct Target {
    tone: ProgressTone,
    signature: u8,
    continuous: bool,
    on: (u32, u32),
    off: (u32, u32),
    cycles: usize,
    /// For continuous tones: how long the tone must last before it is recognised.
    confirm_ms: u32,
}

/// Streaming call-progress tone detector for one zone.
#[derive(Clone, Debug)]
pub struct ToneDetector {
    coef: [f32; MAX_ZONE_FREQUENCIES],
    /// Bit mask over the zone frequencies, per signature.
    signatures: [u8; 4],
    signature_count: usize,
    targets: [Target; 4],
    min_ms: f32,
    // Block accumulation.
    s1: [f32; MAX_ZONE_FREQUENCIES],
    s2: [f32; MAX_ZONE_FREQUENCIES],
    energy: f32,
    filled: usize,
    // Debounced segments.
    seg_sig: u8,
    seg_blocks: u32,
    pending_sig: u8,
    pending_blocks: u32,
    history: [(u8, u32); HISTORY],
    history_len: usize,
    recognised: Option<usize>,
}

impl ToneDetector {
    /// A detector for `zone`.
    pub fn new(zone: &ToneZone) -> Self {
        let mut freqs = [0.0f32; MAX_ZONE_FREQUENCIES];
        let mut freq_count = 0;
        let mut signatures = [0u8; 4];
        let mut signature_count = 0;
        let mut targets = [Target {
            tone: ProgressTone::Silence,
            signature: 0,
            continuous: true,
            on: (0, 0),
            off: (0, 0),
            cycles: 0,
            confirm_ms: 0,
        }; 4];
        for (i, (tone, spec)) in zone.specs().into_iter().enumerate() {
            let mut mask = 0u8;
            for f in spec.frequencies() {
                if f <= 0.0 {
                    continue;
                }
                let idx = match freqs[..freq_count].iter().position(|&g| g == f) {
                    Some(idx) => idx,
                    // `ToneZone::new` guarantees at most four distinct frequencies; a zone
                    // built otherwise simply ignores the extra ones.
                    None if freq_count < MAX_ZONE_FREQUENCIES => {
                        freqs[freq_count] = f;
                        freq_count += 1;
                        freq_count - 1
                    }
                    None => continue,
                };
                mask |= 1 << idx;
            }
            let signature = match signatures[..signature_count].iter().position(|&m| m == mask) {
                Some(s) => s,
                None => {
                    signatures[signature_count] = mask;
                    signature_count += 1;
                    signature_count - 1
                }
            };
            let cycles = if tone == ProgressTone::Ringback { RINGBACK_CYCLES } else { BUSY_CYCLES };
            targets[i] = Target {
                tone,
                signature: signature as u8,
                continuous: spec.is_continuous(),
                on: window(spec.on_ms),
                off: window(spec.off_ms),
                cycles,
                confirm_ms: CONTINUOUS_CONFIRM_MS,
            };
        }
        // A continuous tone must outlast every burst of a cadenced tone with the same
        // signature, or each burst would first be taken for it.
        for i in 0..4 {
            if !targets[i].continuous {
                continue;
            }
            let longest = targets
                .iter()
                .filter(|t| !t.continuous && t.signature == targets[i].signature)
                .map(|t| t.on.1 + CADENCE_SLACK_MS)
                .max()
                .unwrap_or(0);
            targets[i].confirm_ms = targets[i].confirm_ms.max(longest);
        }
        let mut coef = [0.0f32; MAX_ZONE_FREQUENCIES];
        for (c, &f) in coef.iter_mut().zip(&freqs[..freq_count]) {
            *c = 2.0 * (2.0 * core::f32::consts::PI * f / super::SAMPLE_RATE).cos();
        }
        // A frequency slot past `freq_count` has coefficient 0 and never appears in a mask,
        // so it costs a lane of arithmetic and nothing else.
        ToneDetector {
            coef,
            signatures,
            signature_count,
            targets,
            min_ms: 10f32.powf((MIN_LEVEL_DBM0 - super::DBM0_MAX_SINE_POWER) / 10.0) * 32767.0 * 32767.0
                / 2.0,
            s1: [0.0; MAX_ZONE_FREQUENCIES],
            s2: [0.0; MAX_ZONE_FREQUENCIES],
            energy: 0.0,
            filled: 0,
            seg_sig: NONE,
            seg_blocks: 0,
            pending_sig: NONE,
            pending_blocks: 0,
            history: [(NONE, 0); HISTORY],
            history_len: 0,
            recognised: None,
        }
    }

    /// Forgets everything heard so far.
    pub fn reset(&mut self) {
        self.s1 = [0.0; MAX_ZONE_FREQUENCIES];
        self.s2 = [0.0; MAX_ZONE_FREQUENCIES];
        self.energy = 0.0;
        self.filled = 0;
        self.seg_sig = NONE;
        self.seg_blocks = 0;
        self.pending_sig = NONE;
        self.pending_blocks = 0;
        self.history_len = 0;
        self.recognised = None;
    }

    /// The tone recognised and not yet gone, if any.
    pub fn current(&self) -> Option<ProgressTone> {
        self.recognised.map(|i| self.targets[i].tone)
    }

    /// Feeds samples of any length; `on_tone` is called when a tone is recognised and with
    /// [`ProgressTone::Silence`] when it goes away.
    pub fn process(&mut self, samples: &[i16], mut on_tone: impl FnMut(ProgressTone)) {
        let mut rest = samples;
        while !rest.is_empty() {
            let take = (BLOCK - self.filled).min(rest.len());
            let (now, later) = rest.split_at(take);
            rest = later;
            for &s in now {
                let x = f32::from(s);
                self.energy += x * x;
                for k in 0..MAX_ZONE_FREQUENCIES {
                    let v = self.coef[k] * self.s1[k] + (x - self.s2[k]);
                    self.s2[k] = self.s1[k];
                    self.s1[k] = v;
                }
            }
            self.filled += take;
            if self.filled == BLOCK {
                let sig = self.classify_block();
                self.filled = 0;
                self.s1 = [0.0; MAX_ZONE_FREQUENCIES];
                self.s2 = [0.0; MAX_ZONE_FREQUENCIES];
                self.energy = 0.0;
                self.on_block(sig, &mut on_tone);
            }
        }
    }

    /// Which signature, if any, the finished block holds.
    fn classify_block(&self) -> u8 {
        let n = BLOCK as f32;
        let mean_square = self.energy / n;
        if mean_square < self.min_ms {
            return NONE;
        }
        // Mean square of the sine each filter sees: 2·|X|^2 / N^2 = A^2 / 2.
        let ms: [f32; MAX_ZONE_FREQUENCIES] = core::array::from_fn(|k| {
            let (a, b, c) = (self.s1[k], self.s2[k], self.coef[k]);
            2.0 * (a * a + b * b - c * a * b) / (n * n)
        });
        let reject = 10f32.powf(-OTHER_FREQUENCY_REJECTION_DB / 10.0);
        for (s, &mask) in self.signatures[..self.signature_count].iter().enumerate() {
            let mut sum = 0.0;
            let mut weakest = f32::MAX;
            for (k, &p) in ms.iter().enumerate() {
                if mask & (1 << k) != 0 {
                    sum += p;
                    weakest = weakest.min(p);
                }
            }
            if weakest < self.min_ms || sum < PURITY * mean_square {
                continue;
            }
            let others_quiet =
                (0..MAX_ZONE_FREQUENCIES).filter(|k| mask & (1 << k) == 0).all(|k| ms[k] < weakest * reject);
            if others_quiet {
                return s as u8;
            }
        }
        NONE
    }

    /// Debounces block classifications into segments and runs the cadence logic.
    fn on_block(&mut self, sig: u8, on_tone: &mut impl FnMut(ProgressTone)) {
        if sig == self.seg_sig {
            // A lone disagreeing block was a glitch: it belongs to the running segment.
            self.seg_blocks += 1 + self.pending_blocks;
            self.pending_blocks = 0;
        } else if sig == self.pending_sig && self.pending_blocks > 0 {
            self.pending_blocks += 1;
            if self.pending_blocks >= 2 {
                let finished = (self.seg_sig, self.seg_blocks);
                self.seg_sig = sig;
                self.seg_blocks = self.pending_blocks;
                self.pending_blocks = 0;
                self.segment_finished(finished, on_tone);
            }
        } else {
            self.seg_blocks += self.pending_blocks;
            self.pending_sig = sig;
            self.pending_blocks = 1;
        }
        self.check_running_segment(on_tone);
    }

    fn segment_finished(&mut self, seg: (u8, u32), on_tone: &mut impl FnMut(ProgressTone)) {
        if self.history_len == HISTORY {
            self.history.copy_within(1.., 0);
            self.history_len -= 1;
        }
        self.history[self.history_len] = seg;
        self.history_len += 1;

        if let Some(i) = self.recognised {
            let t = self.targets[i];
            let still = !t.continuous && fits(&t, seg);
            if still {
                return;
            }
            self.recognised = None;
            on_tone(ProgressTone::Silence);
        }
        // A pause just ended: see whether the last cycles match a cadenced tone.
        if seg.0 != NONE {
            return;
        }
        for (i, t) in self.targets.iter().enumerate() {
            if t.continuous || self.history_len < 2 * t.cycles {
                continue;
            }
            let recent = &self.history[self.history_len - 2 * t.cycles..self.history_len];
            if recent.iter().all(|&s| fits(t, s)) {
                self.recognised = Some(i);
                on_tone(t.tone);
                return;
            }
        }
    }

    fn check_running_segment(&mut self, on_tone: &mut impl FnMut(ProgressTone)) {
        let ms = self.seg_blocks * BLOCK_MS;
        match self.recognised {
            Some(i) => {
                let t = self.targets[i];
                if t.continuous {
                    return;
                }
                // A period that outlasts its cadence means the tone stopped or changed.
                let max = if self.seg_sig == NONE { t.off.1 } else { t.on.1 };
                if ms > max {
                    self.recognised = None;
                    on_tone(ProgressTone::Silence);
                }
            }
            None => {
                if self.seg_sig == NONE {
                    return;
                }
                for (i, t) in self.targets.iter().enumerate() {
                    if t.continuous && t.signature == self.seg_sig && ms >= t.confirm_ms {
                        self.recognised = Some(i);
                        on_tone(t.tone);
                        return;
                    }
                }
            }
        }
    }
}

/// Whether a finished segment fits a cadenced target: a tone period of its signature within
/// the on window, or a pause within the off window.
fn fits(t: &Target, (sig, blocks): (u8, u32)) -> bool {
    let ms = blocks * BLOCK_MS;
    if sig == NONE {
        (t.off.0..=t.off.1).contains(&ms)
    } else {
        sig == t.signature && (t.on.0..=t.on.1).contains(&ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::tonegen::ToneGenerator;

    fn run(
        zone: &ToneZone,
        tone: ProgressTone,
        level: f32,
        seconds: usize,
    ) -> heapless::Vec<(usize, ProgressTone), 16> {
        let mut g = ToneGenerator::for_progress_tone(zone, tone, level).expect("a tone");
        let mut d = ToneDetector::new(zone);
        let mut out = heapless::Vec::new();
        let mut buf = [0i16; 160];
        for block in 0..seconds * 50 {
            g.fill(&mut buf);
            d.process(&buf, |t| {
                let _ = out.push((block, t));
            });
        }
        out
    }

    #[test]
    fn china_tones_are_told_apart() {
        let zone = ToneZone::china();
        for tone in [ProgressTone::Dial, ProgressTone::Ringback, ProgressTone::Busy, ProgressTone::Congestion]
        {
            let got = run(&zone, tone, -15.0, 12);
            assert_eq!(got.first().map(|g| g.1), Some(tone), "{tone:?}: {got:?}");
            assert_eq!(got.len(), 1, "{tone:?}: {got:?}");
        }
    }

    #[test]
    fn zones_validate() {
        assert!(ToneZone::new(
            ToneSpec::continuous(450.0, 0.0),
            ToneSpec::cadenced(450.0, 0.0, 1000, 4000),
            ToneSpec::cadenced(450.0, 0.0, 350, 350),
            ToneSpec::cadenced(450.0, 0.0, 360, 360),
        )
        .is_err());
        assert_eq!(
            ToneZone::new(
                ToneSpec::continuous(50.0, 0.0),
                ToneSpec::cadenced(450.0, 0.0, 1000, 4000),
                ToneSpec::cadenced(450.0, 0.0, 350, 350),
                ToneSpec::cadenced(450.0, 0.0, 700, 700),
            ),
            Err(ToneZoneError::BadFrequency { tone: "dial", freq: 50.0 })
        );
        for z in [ToneZone::china(), ToneZone::north_america(), ToneZone::europe()] {
            let rebuilt = ToneZone::new(z.dial, z.ringback, z.busy, z.congestion);
            assert_eq!(rebuilt.as_ref(), Ok(&z));
        }
    }
}
