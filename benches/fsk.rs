//! FSK caller id decoding throughput: our receiver against spandsp's ADSI receiver on the
//! same audio.
//!
//! Run with `cargo bench --bench fsk -- --warm-up-time 1 --measurement-time 3`.
//! Throughput is in samples, so "elem/s" reads as samples per second; one telephone
//! channel is 8000 samples per second, so elem/s ÷ 8000 is how many idle trunk channels one
//! core can watch for caller id.
//!
//! Two sets of audio, 10 s each, five caller id bursts (MDMF with date, number and name,
//! about 0.5 s each, from spandsp's transmitter) two seconds apart:
//!
//! * `fsk_callerid`: between the bursts, a -60 dBm0 noise floor, like an idle line;
//! * `fsk_callerid_noisy_line`: -35 dBm0 noise throughout, loud enough that no part of the
//!   audio is skipped as silence, so the comparison is of the demodulators alone.

use std::hint::black_box;
use std::os::raw::{c_int, c_void};
use std::ptr::NonNull;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use spandsp_sys as sys;
use switchboard::dsp::callerid::{CallerIdReceiver, Standard};
use switchboard::dsp::DBM0_MAX_SINE_POWER;

/// spandsp's `ADSI_STANDARD_CLASS` (adsi.h; an anonymous enum bindgen does not export).
const ADSI_STANDARD_CLASS: c_int = 1;

/// Counts the messages spandsp's receiver delivers.
unsafe extern "C" fn count_msg(user_data: *mut c_void, _msg: *const u8, _len: c_int) {
    if !user_data.is_null() {
        // SAFETY: `user_data` is the boxed counter of the `Rx` that owns the receiver.
        unsafe { *(user_data as *mut usize) += 1 };
    }
}

/// spandsp's ADSI receiver, counting messages.
struct Rx {
    state: NonNull<sys::adsi_rx_state_t>,
    count: Box<usize>,
}

impl Rx {
    fn new() -> Rx {
        let mut count = Box::new(0usize);
        let user = (&mut *count) as *mut usize as *mut c_void;
        // SAFETY: a null state asks spandsp to allocate one; the counter outlives it.
        let state =
            unsafe { sys::adsi_rx_init(std::ptr::null_mut(), ADSI_STANDARD_CLASS, Some(count_msg), user) };
        Rx { state: NonNull::new(state).expect("adsi_rx_init"), count }
    }

    fn run(&mut self, audio: &[i16]) -> usize {
        for chunk in audio.chunks(160) {
            // SAFETY: the state is live and the chunk holds `len` samples.
            unsafe { sys::adsi_rx(self.state.as_ptr(), chunk.as_ptr(), chunk.len() as c_int) };
        }
        *self.count
    }
}

impl Drop for Rx {
    fn drop(&mut self) {
        // SAFETY: allocated by adsi_rx_init with a null state, freed once.
        unsafe { sys::adsi_rx_free(self.state.as_ptr()) };
    }
}

/// One burst from spandsp's transmitter: MDMF with date, number and name.
fn burst() -> Vec<i16> {
    let msg = b"\x80\x1b\x01\x0812250930\x02\x0a5551234567\x07\x09JOHN DOE.";
    // SAFETY: a null state asks spandsp to allocate one; the message is copied; the
    // buffer holds 160 samples; the state is freed once at the end.
    unsafe {
        let tx = sys::adsi_tx_init(std::ptr::null_mut(), ADSI_STANDARD_CLASS);
        assert!(!tx.is_null(), "adsi_tx_init");
        assert!(sys::adsi_tx_put_message(tx, msg.as_ptr(), msg.len() as c_int) > 0);
        let mut out = Vec::new();
        let mut buf = [0i16; 160];
        loop {
            let n = sys::adsi_tx(tx, buf.as_mut_ptr(), buf.len() as c_int).max(0) as usize;
            out.extend_from_slice(&buf[..n]);
            if n < buf.len() {
                break;
            }
        }
        sys::adsi_tx_free(tx);
        out
    }
}

/// A seeded generator so the benchmark audio is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Roughly Gaussian (sum of four uniforms), unit variance.
    fn noise(&mut self) -> f64 {
        (self.next() + self.next() + self.next() + self.next() - 2.0) * 3f64.sqrt()
    }
}

fn amp(level_dbm0: f64) -> f64 {
    32767.0 * 10f64.powf((level_dbm0 - f64::from(DBM0_MAX_SINE_POWER)) / 20.0)
}

/// 10 s: a burst at the start of every two seconds over noise at `floor_dbm0`.
fn audio(floor_dbm0: f64) -> Vec<i16> {
    let b = burst();
    let mut rng = Rng(11);
    let rms = amp(floor_dbm0) / 2f64.sqrt();
    let mut out = Vec::with_capacity(80_000);
    for _ in 0..5 {
        let start = out.len();
        for i in 0..16_000 {
            let s = if i >= 800 && i - 800 < b.len() { f64::from(b[i - 800]) } else { 0.0 };
            out.push((s + rms * rng.noise()).round().clamp(-32768.0, 32767.0) as i16);
        }
        debug_assert_eq!(out.len() - start, 16_000);
    }
    out
}

fn run_ours(audio: &[i16]) -> usize {
    let mut rx = CallerIdReceiver::for_standard(Standard::Bellcore);
    let mut n = 0;
    for chunk in audio.chunks(160) {
        rx.process(chunk, |m| n += usize::from(m.is_ok()));
    }
    n
}

fn fsk(c: &mut Criterion) {
    for (name, floor) in [("fsk_callerid", -60.0), ("fsk_callerid_noisy_line", -35.0)] {
        let audio = audio(floor);
        // Both receivers must find the five messages, or the comparison means nothing.
        assert_eq!(run_ours(&audio), 5, "{name}: ours");
        assert_eq!(Rx::new().run(&audio), 5, "{name}: spandsp");

        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Elements(audio.len() as u64));
        group.bench_function("ours", |b| b.iter(|| run_ours(black_box(&audio))));
        group.bench_function("spandsp", |b| {
            // A fresh receiver per run, like ours, so neither carries state over.
            b.iter(|| Rx::new().run(black_box(&audio)))
        });
        group.finish();
    }
}

criterion_group!(benches, fsk);
criterion_main!(benches);
