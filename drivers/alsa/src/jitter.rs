//! The jitter buffer and drift control for devices that are not the card's clock.
//!
//! A sound device runs on its own crystal. When something else clocks the ticks (a DAHDI or
//! simulated card, or another sound device), the device delivers and consumes slightly more or
//! fewer than 160 frames per 20 ms tick (100 ppm is 0.8 frames a second) and, because it
//! transfers whole periods, delivers them in uneven lumps. Two mechanisms absorb that:
//!
//! * a small FIFO of captured samples ([`SampleRing`]) smooths the lumps: reading starts once
//!   a cushion has built up, an empty FIFO yields a block of silence (counted as padded) and
//!   re-primes, and a FIFO that nearly fills is cut back to the cushion (counted as dropped);
//! * a slow controller ([`Drift`]) watches the lowest fill level over each second. When the
//!   level has drifted more than half a period from its target it removes (or adds) frames
//!   one per tick: a block is built from 161 samples with two averaged, or from 159 with the
//!   last repeated. One sample in 160 is inaudible, and at 50 frames a second the correction
//!   outruns any real crystal error by orders of magnitude.
//!
//! The playback side uses the same controller on the device's queue depth.

use switchboard_driver_api::BLOCK_SAMPLES;

/// Capacity of the capture FIFO: eight periods (160 ms).
pub(crate) const RING_CAP: usize = 8 * BLOCK_SAMPLES;
/// Ticks per drift measurement window (one second).
const WINDOW_TICKS: u32 = 50;
/// How far the windowed level may stray from its target before the controller acts.
const HYSTERESIS: usize = BLOCK_SAMPLES / 2;

/// A fixed-capacity FIFO of samples.
pub(crate) struct SampleRing {
    buf: [i16; RING_CAP],
    head: usize,
    len: usize,
}

impl SampleRing {
    pub fn new() -> SampleRing {
        SampleRing { buf: [0; RING_CAP], head: 0, len: 0 }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn space(&self) -> usize {
        RING_CAP - self.len
    }

    pub fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
    }

    /// Appends as much of `data` as fits; returns how much that was.
    pub fn push(&mut self, data: &[i16]) -> usize {
        let n = data.len().min(self.space());
        let mut tail = (self.head + self.len) % RING_CAP;
        for &s in &data[..n] {
            self.buf[tail] = s;
            tail = if tail + 1 == RING_CAP { 0 } else { tail + 1 };
        }
        self.len += n;
        n
    }

    /// Moves the oldest `out.len()` samples into `out` (fewer if the ring holds fewer).
    pub fn pop(&mut self, out: &mut [i16]) -> usize {
        let n = out.len().min(self.len);
        for o in &mut out[..n] {
            *o = self.buf[self.head];
            self.head = if self.head + 1 == RING_CAP { 0 } else { self.head + 1 };
        }
        self.len -= n;
        n
    }

    /// Throws away the oldest `n` samples.
    pub fn discard(&mut self, n: usize) {
        let n = n.min(self.len);
        self.head = (self.head + n) % RING_CAP;
        self.len -= n;
    }
}

/// One frame more or fewer than a block this tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Adjust {
    None,
    /// Consume one frame more than the block holds (the source runs fast).
    Drop,
    /// Consume one frame fewer (the source runs slow).
    Insert,
}

/// The slow drift controller.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Drift {
    window_min: usize,
    ticks: u32,
    /// Frames still to drop (positive) or insert (negative), one per tick.
    pending: i32,
}

impl Drift {
    pub const fn new() -> Drift {
        Drift { window_min: usize::MAX, ticks: 0, pending: 0 }
    }

    pub fn reset(&mut self) {
        *self = Drift::new();
    }

    /// Records this tick's fill level and returns the adjustment to make on this tick.
    pub fn step(&mut self, level: usize, target: usize) -> Adjust {
        self.window_min = self.window_min.min(level);
        self.ticks += 1;
        if self.ticks >= WINDOW_TICKS {
            // Each window replaces the previous correction with a fresh measurement, so the
            // controller cannot overshoot by acting on a stale one.
            let min = self.window_min;
            self.pending = if min > target + HYSTERESIS {
                (min - target).min(RING_CAP) as i32
            } else if min + HYSTERESIS < target {
                -((target - min).min(RING_CAP) as i32)
            } else {
                0
            };
            self.window_min = usize::MAX;
            self.ticks = 0;
        }
        match self.pending.signum() {
            1 => {
                self.pending -= 1;
                Adjust::Drop
            }
            -1 => {
                self.pending += 1;
                Adjust::Insert
            }
            _ => Adjust::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_wraps_and_keeps_order() {
        let mut r = SampleRing::new();
        let data: Vec<i16> = (0..1000).collect();
        let mut out = vec![0i16; 700];
        assert_eq!(r.push(&data), 1000);
        assert_eq!(r.pop(&mut out), 700);
        assert_eq!(r.push(&data), RING_CAP - 300);
        r.discard(100);
        let mut rest = vec![0i16; RING_CAP];
        let n = r.pop(&mut rest);
        assert_eq!(n, RING_CAP - 100);
        assert_eq!(rest[0], 800);
        assert_eq!(rest[200], 0);
        assert_eq!(r.len(), 0);
    }

    #[test]
    fn drift_corrects_one_frame_per_tick_after_a_window() {
        let mut d = Drift::new();
        // A level steadily 200 frames above target: nothing in the first window, then drops.
        let adj: Vec<Adjust> = (0..WINDOW_TICKS * 2).map(|_| d.step(360, 160)).collect();
        assert!(adj[..WINDOW_TICKS as usize - 1].iter().all(|&a| a == Adjust::None));
        assert!(adj[WINDOW_TICKS as usize - 1..].iter().all(|&a| a == Adjust::Drop));
        // Within the hysteresis nothing happens.
        let mut d = Drift::new();
        assert!((0..200).all(|_| d.step(200, 160) == Adjust::None));
        let mut d = Drift::new();
        let inserts = (0..200).filter(|_| d.step(10, 160) == Adjust::Insert).count();
        assert!(inserts > 100);
    }
}
