//! FSK and DTMF caller id against spandsp's ADSI transmitter and receiver.
//!
//! Both directions: our sender into spandsp's `adsi_rx` (which must find the same fields),
//! spandsp's `adsi_tx` into our receiver (which must return what spandsp was given), for
//! GR-30 on Bell 202 and ETSI on V.23; DTMF caller id from spandsp through our DTMF
//! detector and parser. Then the same noisy audio through both receivers across a range of
//! signal-to-noise ratios: ours must decode at least as many messages as spandsp's wherever
//! spandsp manages 90 %. The safe `crate` does not wrap ADSI, so a small wrapper over
//! `spandsp-sys` lives here.

use std::f64::consts::PI;

use switchboard::dsp::callerid::{
    parse_dtmf_clip, Absence, CallerId, CallerIdError, CallerIdReceiver, CallerIdSender, Format, Message,
    RawMessage, Standard,
};
use switchboard::dsp::fsk::{FskMode, Preamble};
use switchboard::dsp::{DtmfDetector, DBM0_MAX_SINE_POWER};

use crate::allocations_during;

// ---------------------------------------------------------------------------------------
// spandsp's ADSI, wrapped
// ---------------------------------------------------------------------------------------

mod adsi {
    use std::os::raw::{c_int, c_void};
    use std::ptr::NonNull;

    use spandsp_sys as sys;

    // The `ADSI_STANDARD_*` values of spandsp's adsi.h (an anonymous enum, so bindgen does
    // not export them).
    pub const CLASS: c_int = 1;
    pub const CLIP: c_int = 2;
    pub const CLIP_DTMF: c_int = 5;

    /// Collects the messages the receiver delivers.
    unsafe extern "C" fn put_msg(user_data: *mut c_void, msg: *const u8, len: c_int) {
        if user_data.is_null() || msg.is_null() || len < 0 {
            return;
        }
        // SAFETY: `user_data` is the `Vec` boxed by `AdsiRx::new`, which outlives the
        // receiver state and is only touched from inside `adsi_rx` (called with `&mut
        // self`); spandsp passes `len` valid bytes at `msg` for the duration of the call.
        unsafe {
            let out = &mut *(user_data as *mut Vec<Vec<u8>>);
            out.push(std::slice::from_raw_parts(msg, len as usize).to_vec());
        }
    }

    /// spandsp's ADSI receiver. Messages come out without their checksum, which spandsp
    /// has checked.
    pub struct AdsiRx {
        state: NonNull<sys::adsi_rx_state_t>,
        standard: c_int,
        // Boxed so the address handed to spandsp stays put when `AdsiRx` moves.
        #[allow(clippy::box_collection)]
        messages: Box<Vec<Vec<u8>>>,
    }

    impl AdsiRx {
        pub fn new(standard: c_int) -> AdsiRx {
            let mut messages: Box<Vec<Vec<u8>>> = Box::default();
            let user = (&mut *messages) as *mut Vec<Vec<u8>> as *mut c_void;
            // SAFETY: a null state asks spandsp to allocate one; the callback and its user
            // data stay valid for the receiver's life (the box moves with `AdsiRx` but its
            // heap address does not change).
            let state = unsafe { sys::adsi_rx_init(std::ptr::null_mut(), standard, Some(put_msg), user) };
            AdsiRx { state: NonNull::new(state).expect("adsi_rx_init"), standard, messages }
        }

        pub fn rx(&mut self, samples: &[i16]) {
            for chunk in samples.chunks(160) {
                // SAFETY: the state is live and the buffer holds `chunk.len()` samples.
                unsafe { sys::adsi_rx(self.state.as_ptr(), chunk.as_ptr(), chunk.len() as c_int) };
            }
        }

        pub fn take(&mut self) -> Vec<Vec<u8>> {
            std::mem::take(&mut *self.messages)
        }

        /// spandsp's own field splitter over a delivered message: (type, body) pairs,
        /// the message type first with an empty body. `None` if spandsp finds it corrupt.
        pub fn fields(&self, msg: &[u8]) -> Option<Vec<(u8, Vec<u8>)>> {
            let mut out = Vec::new();
            let mut pos: c_int = -1;
            loop {
                let mut field_type = 0u8;
                let mut body: *const u8 = std::ptr::null();
                let mut len: c_int = 0;
                // SAFETY: `msg` is valid for its length; spandsp writes the three outputs
                // and returns a position within the message or a negative end code.
                pos = unsafe {
                    sys::adsi_next_field(
                        self.state.as_ptr(),
                        msg.as_ptr(),
                        msg.len() as c_int,
                        pos,
                        &mut field_type,
                        &mut body,
                        &mut len,
                    )
                };
                match pos {
                    -1 => return Some(out),
                    p if p < 0 => return None,
                    _ => {}
                }
                let value = if body.is_null() || len <= 0 {
                    Vec::new()
                } else {
                    // SAFETY: spandsp points `body` at `len` bytes inside `msg`.
                    unsafe { std::slice::from_raw_parts(body, len as usize).to_vec() }
                };
                out.push((field_type, value));
                if self.standard == CLIP_DTMF && out.len() > 64 {
                    return Some(out);
                }
            }
        }
    }

    impl Drop for AdsiRx {
        fn drop(&mut self) {
            // SAFETY: allocated by adsi_rx_init with a null state, freed once.
            unsafe { sys::adsi_rx_free(self.state.as_ptr()) };
        }
    }

    /// spandsp's ADSI transmitter.
    pub struct AdsiTx {
        state: NonNull<sys::adsi_tx_state_t>,
    }

    impl AdsiTx {
        pub fn new(standard: c_int) -> AdsiTx {
            // SAFETY: a null state asks spandsp to allocate one.
            let state = unsafe { sys::adsi_tx_init(std::ptr::null_mut(), standard) };
            AdsiTx { state: NonNull::new(state).expect("adsi_tx_init") }
        }

        /// Builds a message with spandsp's own encoder: the message type, then fields.
        /// spandsp stuffs an extra byte into FSK fields that are exactly 16 bytes long (a
        /// JCLIP rule it applies to every standard), so tests avoid that length.
        pub fn build(&mut self, message_type: u8, fields: &[(u8, &[u8])]) -> Vec<u8> {
            let mut buf = vec![0u8; 256];
            // SAFETY: the buffer has room for the header and every field (callers keep
            // messages short); spandsp returns the new length.
            unsafe {
                let mut len = sys::adsi_add_field(
                    self.state.as_ptr(),
                    buf.as_mut_ptr(),
                    -1,
                    message_type,
                    std::ptr::null(),
                    0,
                );
                for (t, v) in fields {
                    len = sys::adsi_add_field(
                        self.state.as_ptr(),
                        buf.as_mut_ptr(),
                        len,
                        *t,
                        v.as_ptr(),
                        v.len() as c_int,
                    );
                }
                buf.truncate(len as usize);
            }
            buf
        }

        pub fn put(&mut self, msg: &[u8]) {
            // SAFETY: the message is valid for its length; spandsp copies it.
            let n =
                unsafe { sys::adsi_tx_put_message(self.state.as_ptr(), msg.as_ptr(), msg.len() as c_int) };
            assert!(n > 0, "adsi_tx_put_message returned {n}");
        }

        /// Everything the transmitter has to send.
        pub fn drain(&mut self) -> Vec<i16> {
            let mut out = Vec::new();
            let mut buf = [0i16; 160];
            loop {
                // SAFETY: the buffer holds 160 samples.
                let n = unsafe { sys::adsi_tx(self.state.as_ptr(), buf.as_mut_ptr(), buf.len() as c_int) };
                let n = n.max(0) as usize;
                out.extend_from_slice(&buf[..n]);
                if n < buf.len() {
                    return out;
                }
            }
        }
    }

    impl Drop for AdsiTx {
        fn drop(&mut self) {
            // SAFETY: allocated by adsi_tx_init with a null state, freed once.
            unsafe { sys::adsi_tx_free(self.state.as_ptr()) };
        }
    }
}

use adsi::{AdsiRx, AdsiTx};

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// A seeded generator so noise is reproducible without a crate.
struct Rng(u64);

impl Rng {
    fn uniform(&mut self) -> f64 {
        // xorshift64*: small, fast and good enough for test noise.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A standard normal sample (Box–Muller).
    fn gauss(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * PI * u2).cos()
    }
}

fn mean_square(x: &[i16]) -> f64 {
    x.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() / x.len().max(1) as f64
}

/// `burst` between stretches of silence, with white noise `snr_db` below the burst's power
/// over the whole clip, and optionally scaled first.
fn on_the_line(burst: &[i16], gain: f64, snr_db: Option<f64>, rng: &mut Rng) -> Vec<i16> {
    let lead = 400 + (rng.uniform() * 400.0) as usize;
    let mut x: Vec<f64> = vec![0.0; lead];
    x.extend(burst.iter().map(|&v| f64::from(v) * gain));
    x.resize(x.len() + 800, 0.0);
    if let Some(snr) = snr_db {
        let rms = (mean_square(burst) * gain * gain).sqrt() * 10f64.powf(-snr / 20.0);
        for v in &mut x {
            *v += rms * rng.gauss();
        }
    }
    x.iter().map(|&v| v.round().clamp(-32768.0, 32767.0) as i16).collect()
}

fn our_burst(standard: Standard, msg: &RawMessage) -> Vec<i16> {
    let mut tx = CallerIdSender::new(standard, -13.5);
    tx.send(msg).expect("idle sender");
    let mut out = vec![0i16; tx.burst_samples(msg)];
    assert_eq!(tx.fill(&mut out), out.len());
    assert!(tx.is_idle());
    out
}

fn spandsp_burst(adsi_standard: std::os::raw::c_int, msg: &[u8]) -> Vec<i16> {
    let mut tx = AdsiTx::new(adsi_standard);
    tx.put(msg);
    let out = tx.drain();
    assert!(out.len() > 1000, "spandsp sent only {} samples", out.len());
    out
}

/// Our receiver over `audio` in 160-sample ticks.
fn ours(standard: Standard, audio: &[i16]) -> Vec<Result<RawMessage, CallerIdError>> {
    let mut rx = CallerIdReceiver::for_standard(standard);
    let mut out = Vec::new();
    for chunk in audio.chunks(160) {
        rx.process(chunk, |m| out.push(m));
    }
    out
}

fn spandsp(adsi_standard: std::os::raw::c_int, audio: &[i16]) -> Vec<Vec<u8>> {
    let mut rx = AdsiRx::new(adsi_standard);
    rx.rx(audio);
    rx.take()
}

/// The caller ids both directions are tested with. No field is 16 bytes long (see
/// `AdsiTx::build`).
fn callers() -> Vec<CallerId> {
    vec![
        CallerId {
            number: Some("5551234567".into()),
            name: Some("JOHN DOE".into()),
            datetime: Some((12, 25, 9, 30)),
            ..CallerId::default()
        },
        CallerId {
            number_absence: Some(Absence::Private),
            name_absence: Some(Absence::Private),
            datetime: Some((1, 1, 0, 0)),
            ..CallerId::default()
        },
        CallerId {
            number: Some("08001234".into()),
            name_absence: Some(Absence::Unavailable),
            datetime: Some((7, 4, 23, 59)),
            ..CallerId::default()
        },
        CallerId {
            number_absence: Some(Absence::Unavailable),
            name: Some("Acme Widgets Ltd".chars().take(15).collect()),
            ..CallerId::default()
        },
    ]
}

/// spandsp's view of a message we sent: its fields, as a `CallerId`.
fn caller_from_spandsp_fields(fields: &[(u8, Vec<u8>)]) -> CallerId {
    let text = |v: &[u8]| String::from_utf8(v.to_vec()).expect("ASCII in the test data");
    let mut id = CallerId::default();
    let mut it = fields.iter();
    let (message_type, _) = it.next().expect("the message type comes first");
    for (t, v) in it {
        let date = |v: &[u8]| {
            let n = |i: usize| text(&v[i..i + 2]).parse::<u8>().expect("digits");
            (n(0), n(2), n(4), n(6))
        };
        match (*message_type, *t) {
            // SDMF: one field of type 0, date then number or O/P.
            (0x04, 0) => {
                id.datetime = Some(date(&v[..8]));
                match &v[8..] {
                    b"O" => id.number_absence = Some(Absence::Unavailable),
                    b"P" => id.number_absence = Some(Absence::Private),
                    n => id.number = Some(text(n)),
                }
            }
            (_, 0x01) => id.datetime = Some(date(v)),
            (_, 0x02) => id.number = Some(text(v)),
            (_, 0x04) => {
                id.number_absence = Some(if v == b"P" { Absence::Private } else { Absence::Unavailable })
            }
            (_, 0x07) => {
                id.name = Some(text(v));
                id.name_bytes = Some(v.clone());
            }
            (_, 0x08) => {
                id.name_absence = Some(if v == b"P" { Absence::Private } else { Absence::Unavailable })
            }
            other => panic!("unexpected field {other:?}"),
        }
    }
    id
}

/// What a round trip through a format should give back.
fn expected_after(id: &CallerId, format: Format) -> CallerId {
    let mut want = id.clone();
    if format == Format::Sdmf {
        want.name = None;
        want.name_absence = None;
    }
    if want.name.is_some() {
        want.name_bytes = want.name.as_ref().map(|n| n.as_bytes().to_vec());
    }
    want
}

// ---------------------------------------------------------------------------------------
// Our sender into spandsp's receiver
// ---------------------------------------------------------------------------------------

#[test]
fn our_sender_is_decoded_by_spandsp() {
    let cases = [
        (Standard::Bellcore, adsi::CLASS, Format::Sdmf),
        (Standard::Bellcore, adsi::CLASS, Format::Mdmf),
        (Standard::Ydt1277, adsi::CLASS, Format::Mdmf),
        (Standard::Etsi, adsi::CLIP, Format::Mdmf),
    ];
    let mut rng = Rng(1);
    for (standard, theirs, format) in cases {
        for id in callers() {
            let Ok(msg) = id.encode(standard, format) else {
                // SDMF needs a date; the callers without one are for MDMF.
                assert_eq!(format, Format::Sdmf);
                continue;
            };
            let audio = on_the_line(&our_burst(standard, &msg), 1.0, None, &mut rng);
            let mut rx = AdsiRx::new(theirs);
            rx.rx(&audio);
            let got = rx.take();
            let frame = msg.as_bytes();
            assert_eq!(got, vec![frame[..frame.len() - 1].to_vec()], "{standard:?} {format:?} {id:?}");
            let fields = rx.fields(&got[0]).expect("spandsp parses the fields");
            assert_eq!(
                caller_from_spandsp_fields(&fields),
                expected_after(&id, format),
                "{standard:?} {format:?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// spandsp's sender into our receiver
// ---------------------------------------------------------------------------------------

/// The fields of `id` in the order our encoder sends them, through spandsp's encoder: the
/// frame without its checksum, as spandsp's receiver delivers it.
fn spandsp_message(tx: &mut AdsiTx, id: &CallerId, format: Format) -> Vec<u8> {
    let mut msg = spandsp_fields(tx, id, format);
    // adsi_add_field leaves the length byte at zero; adsi_tx_put_message fills it in.
    msg[1] = u8::try_from(msg.len() - 2).expect("short test messages");
    msg
}

fn spandsp_fields(tx: &mut AdsiTx, id: &CallerId, format: Format) -> Vec<u8> {
    let date = id.datetime.map(|(mo, d, h, mi)| format!("{mo:02}{d:02}{h:02}{mi:02}"));
    let absence = |a: Absence| if a == Absence::Private { b"P" as &[u8] } else { b"O" };
    match format {
        Format::Sdmf => {
            let mut body = date.expect("SDMF callers have a date").into_bytes();
            match (&id.number, id.number_absence) {
                (Some(n), _) => body.extend_from_slice(n.as_bytes()),
                (None, Some(a)) => body.extend_from_slice(absence(a)),
                (None, None) => unreachable!("test callers have one or the other"),
            }
            // Field type 0 is spandsp's "no type or length" for SDMF bodies.
            tx.build(0x04, &[(0, &body)])
        }
        Format::Mdmf => {
            let mut fields: Vec<(u8, Vec<u8>)> = Vec::new();
            if let Some(d) = date {
                fields.push((0x01, d.into_bytes()));
            }
            match (&id.number, id.number_absence) {
                (Some(n), _) => fields.push((0x02, n.clone().into_bytes())),
                (None, Some(a)) => fields.push((0x04, absence(a).to_vec())),
                (None, None) => {}
            }
            match (&id.name, id.name_absence) {
                (Some(n), _) => fields.push((0x07, n.clone().into_bytes())),
                (None, Some(a)) => fields.push((0x08, absence(a).to_vec())),
                (None, None) => {}
            }
            let refs: Vec<(u8, &[u8])> = fields.iter().map(|(t, v)| (*t, v.as_slice())).collect();
            tx.build(0x80, &refs)
        }
    }
}

#[test]
fn spandsp_sender_is_decoded_by_ours() {
    let cases = [
        (Standard::Bellcore, adsi::CLASS, Format::Sdmf),
        (Standard::Bellcore, adsi::CLASS, Format::Mdmf),
        (Standard::Ydt1277, adsi::CLASS, Format::Mdmf),
        (Standard::Etsi, adsi::CLIP, Format::Mdmf),
    ];
    let mut rng = Rng(2);
    for (standard, theirs, format) in cases {
        for id in callers() {
            if format == Format::Sdmf && id.datetime.is_none() {
                continue;
            }
            let mut tx = AdsiTx::new(theirs);
            let msg = spandsp_message(&mut tx, &id, format);
            tx.put(&msg);
            let audio = on_the_line(&tx.drain(), 1.0, None, &mut rng);
            let got = ours(standard, &audio);
            assert_eq!(got.len(), 1, "{standard:?} {format:?}: {got:?}");
            let raw = got[0].clone().expect("a good frame");
            // spandsp appends the checksum.
            assert_eq!(&raw.as_bytes()[..msg.len()], &msg[..]);
            assert_eq!(raw.parse(standard), Ok(Message::CallerId(expected_after(&id, format))));
        }
    }
}

#[test]
fn our_receiver_takes_either_modulation_for_ydt1277() {
    // Chinese exchanges send Bell 202 or V.23; a receiver set up for either decodes both.
    let id = &callers()[0];
    let mut rng = Rng(3);
    for theirs in [adsi::CLASS, adsi::CLIP] {
        let mut tx = AdsiTx::new(theirs);
        let msg = spandsp_message(&mut tx, id, Format::Mdmf);
        tx.put(&msg);
        let audio = on_the_line(&tx.drain(), 1.0, Some(20.0), &mut rng);
        for mode in [FskMode::Bell202, FskMode::V23] {
            let mut rx = CallerIdReceiver::new(mode);
            let mut got = Vec::new();
            rx.process(&audio, |m| got.push(m));
            let raw = got.iter().find_map(|m| m.as_ref().ok()).expect("a frame");
            assert_eq!(raw.parse(Standard::Ydt1277), Ok(Message::CallerId(expected_after(id, Format::Mdmf))));
        }
    }
}

#[test]
fn levels_from_minus_40_to_0_dbm0_and_baud_rate_one_percent_off() {
    let id = &callers()[0];
    let mut rng = Rng(4);
    for standard in [Standard::Bellcore, Standard::Etsi] {
        let msg = id.encode(standard, Format::Mdmf).expect("encodes");
        for level in [-40.0f32, -30.0, -20.0, -10.0, 0.0] {
            for baud in [1188.0f32, 1200.0, 1212.0] {
                let mut tx = CallerIdSender::new(standard, level);
                tx.transmitter_mut().set_baud_rate(baud);
                tx.send(&msg).expect("idle");
                let mut burst = vec![0i16; tx.burst_samples(&msg)];
                tx.fill(&mut burst);
                // Light noise (40 dB below the signal) so quiet signals are not digitally clean.
                let audio = on_the_line(&burst, 1.0, Some(40.0), &mut rng);
                let got: Vec<_> = ours(standard, &audio).into_iter().filter_map(Result::ok).collect();
                assert_eq!(got, vec![msg.clone()], "{standard:?} at {level} dBm0, {baud} baud");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// DTMF caller id
// ---------------------------------------------------------------------------------------

#[test]
fn spandsp_dtmf_caller_id_through_our_detector_and_parser() {
    let cases: [(&str, CallerId); 5] = [
        ("A0123456789C", CallerId { number: Some("0123456789".into()), ..CallerId::default() }),
        ("D0123456789C", CallerId { number: Some("0123456789".into()), ..CallerId::default() }),
        ("A5551234#", CallerId { number: Some("5551234".into()), ..CallerId::default() }),
        ("D1#", CallerId { number_absence: Some(Absence::Private), ..CallerId::default() }),
        ("B00C", CallerId { number_absence: Some(Absence::Unavailable), ..CallerId::default() }),
    ];
    let mut rng = Rng(5);
    for (digits, want) in cases {
        let burst = spandsp_burst(adsi::CLIP_DTMF, digits.as_bytes());
        let audio = on_the_line(&burst, 1.0, Some(30.0), &mut rng);
        let mut det = DtmfDetector::new();
        let mut heard = String::new();
        for chunk in audio.chunks(160) {
            det.process(chunk, |c| heard.push(c));
        }
        assert_eq!(heard, digits);
        assert_eq!(parse_dtmf_clip(&heard), Ok(want));
        // spandsp's own receiver hears the same string.
        assert_eq!(spandsp(adsi::CLIP_DTMF, &audio), vec![digits.as_bytes().to_vec()]);
    }
}

// ---------------------------------------------------------------------------------------
// Robustness against spandsp: noise, twist
// ---------------------------------------------------------------------------------------

/// Decodes per receiver at one SNR: (ours, spandsp) counts of exactly right messages.
fn sweep_point(
    standard: Standard,
    theirs: std::os::raw::c_int,
    snr: f64,
    trials: usize,
    seed: u64,
) -> (usize, usize) {
    let mut rng = Rng(seed);
    let ids = callers();
    let (mut a, mut b) = (0, 0);
    for t in 0..trials {
        let id = &ids[t % ids.len()];
        // spandsp's transmitter makes the audio, so the comparison does not favour ours.
        let mut tx = AdsiTx::new(theirs);
        let msg = spandsp_message(&mut tx, id, Format::Mdmf);
        tx.put(&msg);
        let burst = tx.drain();
        let audio = on_the_line(&burst, 1.0, Some(snr), &mut rng);
        let good: Vec<_> = ours(standard, &audio).into_iter().filter_map(Result::ok).collect();
        if good.len() == 1 && good[0].as_bytes()[..msg.len()] == msg[..] {
            a += 1;
        }
        let theirs_got = spandsp(theirs, &audio);
        if theirs_got.len() == 1 && theirs_got[0] == msg {
            b += 1;
        }
    }
    (a, b)
}

#[test]
fn snr_sweep_ours_is_not_worse_than_spandsp() {
    const TRIALS: usize = 100;
    let mut report = String::new();
    let mut failures = Vec::new();
    for (standard, theirs, name) in
        [(Standard::Bellcore, adsi::CLASS, "Bell 202"), (Standard::Etsi, adsi::CLIP, "V.23")]
    {
        for (i, snr) in [30.0, 20.0, 15.0, 12.0, 10.0, 9.0, 8.0, 7.0, 6.0, 5.0, 4.0].into_iter().enumerate() {
            let (a, b) = sweep_point(standard, theirs, snr, TRIALS, 100 + i as u64);
            report.push_str(&format!(
                "{name:8} SNR {snr:4.0} dB: ours {a:3}/{TRIALS}, spandsp {b:3}/{TRIALS}\n"
            ));
            if b * 10 >= TRIALS * 9 && a < b {
                failures.push(format!("{name} at {snr} dB: ours {a}, spandsp {b}"));
            }
            // And an absolute floor, so a change that makes both worse is caught too.
            if snr >= 10.0 && a * 100 < TRIALS * 98 {
                failures.push(format!("{name} at {snr} dB: ours only {a}"));
            }
        }
    }
    println!("{report}");
    assert!(failures.is_empty(), "ours decodes fewer than spandsp:\n{}\n{report}", failures.join("\n"));
}

/// Tilts the spectrum with a three-tap filter whose gain at the space frequency is
/// `twist_db` below its gain at the mark frequency, as a line with more loss at one end of
/// the band does.
fn tilt(x: &[i16], mode: FskMode, twist_db: f64) -> Vec<i16> {
    let w = |f: f32| 2.0 * PI * f64::from(f) / 8000.0;
    let (cm, cs) = (w(mode.mark_hz()).cos(), w(mode.space_hz()).cos());
    let (gm, gs) = (10f64.powf(twist_db / 40.0), 10f64.powf(-twist_db / 40.0));
    let h0 = (gm - gs) / (2.0 * (cm - cs));
    let h1 = gm - 2.0 * h0 * cm;
    (0..x.len())
        .map(|n| {
            let at = |k: usize| if n >= k { f64::from(x[n - k]) } else { 0.0 };
            (h0 * at(0) + h1 * at(1) + h0 * at(2)).round().clamp(-32768.0, 32767.0) as i16
        })
        .collect()
}

#[test]
fn twist_up_to_10_db_either_way_is_decoded() {
    const TRIALS: usize = 100;
    let mut report = String::new();
    let mut failed = false;
    for (standard, theirs, mode) in
        [(Standard::Bellcore, adsi::CLASS, FskMode::Bell202), (Standard::Etsi, adsi::CLIP, FskMode::V23)]
    {
        for (twist, snr) in [(-6.0, 15.0), (6.0, 15.0), (-10.0, 20.0), (10.0, 20.0)] {
            let mut rng = Rng(7);
            let (mut a, mut b) = (0, 0);
            for id in callers().iter().cycle().take(TRIALS) {
                let mut tx = AdsiTx::new(theirs);
                let msg = spandsp_message(&mut tx, id, Format::Mdmf);
                tx.put(&msg);
                let burst = tilt(&tx.drain(), mode, twist);
                let audio = on_the_line(&burst, 1.0, Some(snr), &mut rng);
                let o = ours(standard, &audio);
                let ok = o.iter().any(|m| m.as_ref().is_ok_and(|m| m.as_bytes()[..msg.len()] == msg[..]));
                a += usize::from(ok);
                b += usize::from(spandsp(theirs, &audio) == vec![msg.clone()]);
            }
            report.push_str(&format!(
                "{mode:?} twist {twist:+} dB at {snr} dB SNR: ours {a}/{TRIALS}, spandsp {b}/{TRIALS}\n"
            ));
            failed |= a < b || a * 100 < TRIALS * 95;
        }
    }
    println!("{report}");
    assert!(!failed, "ours below 95 % or below spandsp:\n{report}");
}

// ---------------------------------------------------------------------------------------
// No allocation
// ---------------------------------------------------------------------------------------

#[test]
fn receiver_and_sender_do_not_allocate_after_construction() {
    let msg = callers()[0].encode(Standard::Bellcore, Format::Mdmf).expect("encodes");
    let mut tx = CallerIdSender::new(Standard::Bellcore, -13.5);
    let mut rx = CallerIdReceiver::for_standard(Standard::Bellcore);
    let mut audio = vec![0i16; tx.burst_samples(&msg) + 1600];
    let mut got = 0;
    let (allocations, ()) = allocations_during(|| {
        tx.set_preamble(Preamble { mark_bits: 80, ..Standard::Bellcore.preamble() });
        tx.send(&msg).expect("idle");
        tx.fill(&mut audio[800..]);
        for chunk in audio.chunks(160) {
            rx.process(chunk, |m| got += usize::from(m.is_ok()));
        }
    });
    assert_eq!(allocations, 0);
    assert_eq!(got, 1);
}

/// The level convention of the sender matches spandsp's (its ADSI sends at -14 dBm0).
#[test]
fn sender_level_matches_spandsp_convention() {
    let msg = callers()[0].encode(Standard::Etsi, Format::Mdmf).expect("encodes");
    let mut tx = CallerIdSender::new(Standard::Etsi, -14.0);
    tx.send(&msg).expect("idle");
    let mut ours = vec![0i16; tx.burst_samples(&msg)];
    tx.fill(&mut ours);
    let theirs = spandsp_burst(adsi::CLIP, &msg.as_bytes()[..msg.as_bytes().len() - 1]);
    let db = |x: &[i16]| {
        10.0 * (mean_square(x) / (32767.0f64 * 32767.0 / 2.0)).log10() + f64::from(DBM0_MAX_SINE_POWER)
    };
    assert!((db(&ours) + 14.0).abs() < 0.1, "ours {}", db(&ours));
    assert!((db(&ours) - db(&theirs)).abs() < 0.2, "ours {} spandsp {}", db(&ours), db(&theirs));
}
