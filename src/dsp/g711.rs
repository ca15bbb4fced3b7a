//! ITU-T G.711 A-law and mu-law companding.
//!
//! Decoding is a lookup in a 256-entry table built at compile time. Encoding computes the
//! segment from the position of the highest set bit, which is a single instruction on every
//! target we care about and avoids the cache footprint of a 64 KiB encode table. Both
//! directions are bit-exact with spandsp's `linear_to_alaw`/`alaw_to_linear` and
//! `linear_to_ulaw`/`ulaw_to_linear` (the integration tests check every input).

use switchboard_driver_api::Law;

/// A-law codes have every even bit inverted (ITU "alternate mark inversion") so that an
/// idle line does not send long runs of zeros.
const ALAW_AMI: u8 = 0x55;
/// Mu-law adds this bias before finding the segment so that the segments line up on
/// powers of two.
const ULAW_BIAS: i32 = 0x84;

/// Linear value of every A-law code.
pub static ALAW_TO_LINEAR: [i16; 256] = build_alaw_table();
/// Linear value of every mu-law code.
pub static ULAW_TO_LINEAR: [i16; 256] = build_ulaw_table();

const fn alaw_decode_calc(code: u8) -> i16 {
    let c = code ^ ALAW_AMI;
    let mantissa = ((c & 0x0F) as i32) << 4;
    let segment = ((c >> 4) & 0x07) as i32;
    // Segment 0 is linear with a half-step offset; higher segments add the implicit leading
    // one (0x100) plus the half step (0x08) and double per segment.
    let magnitude = if segment == 0 { mantissa + 8 } else { (mantissa + 0x108) << (segment - 1) };
    if c & 0x80 != 0 {
        magnitude as i16
    } else {
        -(magnitude as i16)
    }
}

const fn ulaw_decode_calc(code: u8) -> i16 {
    let c = !code;
    let segment = ((c >> 4) & 0x07) as i32;
    let t = ((((c & 0x0F) as i32) << 3) + ULAW_BIAS) << segment;
    if c & 0x80 != 0 {
        (ULAW_BIAS - t) as i16
    } else {
        (t - ULAW_BIAS) as i16
    }
}

const fn build_alaw_table() -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = alaw_decode_calc(i as u8);
        i += 1;
    }
    table
}

const fn build_ulaw_table() -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = ulaw_decode_calc(i as u8);
        i += 1;
    }
    table
}

/// A-law from the segment and mantissa, used to build the encoding table.
const fn alaw_encode_calc(x: i16) -> u8 {
    // G.711 folds negative values with a ones' complement, so -1 and 0 share a magnitude and
    // -32768 still fits; the sign bit is set for non-negative values.
    let (magnitude, sign) = if x >= 0 { (x as u32, 0x80u8) } else { (!(x as i32) as u32, 0x00u8) };
    // The segment is the position of the top bit above bit 7 (0 for magnitudes below 256).
    // An i16 magnitude is at most 32767, so the segment never exceeds 7 and needs no clip.
    let segment = 24 - (magnitude | 0xFF).leading_zeros();
    let shift = if segment == 0 { 4 } else { segment + 3 };
    let code = ((segment << 4) | ((magnitude >> shift) & 0x0F)) as u8;
    (code | sign) ^ ALAW_AMI
}

/// A-law codes by `x >> 3`: A-law keeps 13 bits of the 16, so the 3 low bits never change the
/// code (the exhaustive test against spandsp checks it). 8 KiB, built at compile time; a
/// table lookup is faster than the segment search (see `cargo bench --bench dsp`).
static ALAW_ENCODE: [u8; 8192] = {
    let mut table = [0u8; 8192];
    let mut i = 0;
    while i < 8192 {
        // Index i holds the code of the 13-bit value whose two's complement bits are i.
        let x = ((i as i32) << 19 >> 16) as i16;
        table[i] = alaw_encode_calc(x);
        i += 1;
    }
    table
};

/// mu-law codes for every 16-bit input. mu-law's bias makes the low bits matter near full
/// scale, so the table covers all 65,536 values (64 KiB, built at compile time).
static ULAW_ENCODE: [u8; 65536] = {
    let mut table = [0u8; 65536];
    let mut i = 0;
    while i < 65536 {
        table[i] = ulaw_encode_calc(i as u16 as i16);
        i += 1;
    }
    table
};

/// Encodes one sample to A-law, bit-exact with spandsp's `linear_to_alaw`.
#[inline]
pub fn alaw_encode(x: i16) -> u8 {
    ALAW_ENCODE[(x as u16 >> 3) as usize]
}

/// Encodes one sample to mu-law, bit-exact with spandsp's `linear_to_ulaw`.
#[inline]
pub fn ulaw_encode(x: i16) -> u8 {
    ULAW_ENCODE[x as u16 as usize]
}

/// Decodes one A-law code to linear.
#[inline]
pub fn alaw_decode(c: u8) -> i16 {
    ALAW_TO_LINEAR[c as usize]
}

/// mu-law from the segment and mantissa, used to build the encoding table.
const fn ulaw_encode_calc(x: i16) -> u8 {
    // Mu-law is sign-magnitude with a bias; the negative sign is a cleared top bit after the
    // final inversion.
    let (magnitude, negative) =
        if x >= 0 { (x as i32 + ULAW_BIAS, 0x00u8) } else { (ULAW_BIAS - x as i32, 0x80u8) };
    let magnitude = magnitude as u32;
    let segment = 24 - (magnitude | 0xFF).leading_zeros();
    let code = if segment >= 8 {
        // Only the largest magnitudes (above 32635) reach segment 8: clip to the top code.
        0x7F
    } else {
        ((segment << 4) | ((magnitude >> (segment + 3)) & 0x0F)) as u8
    };
    !(code | negative)
}

/// Decodes one mu-law code to linear.
#[inline]
pub fn ulaw_decode(c: u8) -> i16 {
    ULAW_TO_LINEAR[c as usize]
}

/// Encodes one sample in the given law.
#[inline]
pub fn encode(law: Law, x: i16) -> u8 {
    match law {
        Law::Alaw => alaw_encode(x),
        Law::Ulaw => ulaw_encode(x),
    }
}

/// Decodes one code in the given law.
#[inline]
pub fn decode(law: Law, c: u8) -> i16 {
    match law {
        Law::Alaw => alaw_decode(c),
        Law::Ulaw => ulaw_decode(c),
    }
}

/// Decodes `src` into `dst`. Only the shorter of the two lengths is processed, so a short
/// destination never panics; the rest of `dst` is left untouched.
pub fn decode_block(law: Law, src: &[u8], dst: &mut [i16]) {
    // Choosing the table once outside the loop lets the loop compile to plain lookups.
    let table = match law {
        Law::Alaw => &ALAW_TO_LINEAR,
        Law::Ulaw => &ULAW_TO_LINEAR,
    };
    for (d, &c) in dst.iter_mut().zip(src) {
        *d = table[c as usize];
    }
}

/// Encodes `src` into `dst`. Only the shorter of the two lengths is processed, so a short
/// destination never panics; the rest of `dst` is left untouched.
pub fn encode_block(law: Law, src: &[i16], dst: &mut [u8]) {
    // The law is hoisted out of the loop so each branch is a tight, branch-free loop.
    match law {
        Law::Alaw => {
            for (d, &x) in dst.iter_mut().zip(src) {
                *d = alaw_encode(x);
            }
        }
        Law::Ulaw => {
            for (d, &x) in dst.iter_mut().zip(src) {
                *d = ulaw_encode(x);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_codes_decode_to_near_zero() {
        assert_eq!(alaw_decode(Law::Alaw.silence()), 8);
        assert_eq!(ulaw_decode(Law::Ulaw.silence()), 0);
        assert_eq!(alaw_encode(0), Law::Alaw.silence());
        assert_eq!(ulaw_encode(0), Law::Ulaw.silence());
    }

    #[test]
    fn round_trip_is_idempotent_for_every_code() {
        for c in 0..=255u8 {
            assert_eq!(alaw_encode(alaw_decode(c)), c, "A-law {c:#04x}");
            // Mu-law has two codes for zero (0x7F and 0xFF); both decode to 0 which
            // re-encodes as 0xFF.
            if c != 0x7F {
                assert_eq!(ulaw_encode(ulaw_decode(c)), c, "mu-law {c:#04x}");
            }
        }
    }

    #[test]
    fn extremes_do_not_overflow() {
        assert_eq!(alaw_decode(alaw_encode(i16::MAX)), 32256);
        assert_eq!(alaw_decode(alaw_encode(i16::MIN)), -32256);
        assert_eq!(ulaw_decode(ulaw_encode(i16::MAX)), 32124);
        assert_eq!(ulaw_decode(ulaw_encode(i16::MIN)), -32124);
    }

    #[test]
    fn blocks_process_the_shorter_length() {
        let src = [0i16, 1000, -1000, 30000];
        let mut codes = [0u8; 3];
        encode_block(Law::Alaw, &src, &mut codes);
        let mut back = [7i16; 5];
        decode_block(Law::Alaw, &codes, &mut back);
        assert_eq!(back[3..], [7, 7]);
        assert_eq!(back[0], 8);
        assert!((back[1] - 1000).abs() < 40);
    }
}
