//! ITU-T G.711 A-law and mu-law for the sound devices.
//!
//! The card trait exchanges G.711 blocks, while a sound device speaks 16-bit linear PCM, so
//! the driver converts at its edge. A driver crate cannot use the main crate's DSP module,
//! hence this small copy of the algorithm: decoding is a lookup in a 256-entry table built at
//! compile time and encoding computes the segment from the position of the top bit. Both
//! follow the usual reference conventions (ones' complement folding for negative A-law
//! values, the 0x84 bias for mu-law), which the main crate's integration test
//! `tests/it/alsa.rs` checks against the engine's own G.711 for every one of the 65,536
//! inputs, so audio that crosses the driver is coded exactly as the engine would code it.

use switchboard_driver_api::{Block, Law, BLOCK_SAMPLES};

/// A-law inverts every even bit of the code so that idle lines do not send runs of zeros.
const ALAW_AMI: u8 = 0x55;
/// Mu-law adds this bias before finding the segment so that segments start at powers of two.
const ULAW_BIAS: i32 = 0x84;

const fn alaw_to_linear(code: u8) -> i16 {
    let c = code ^ ALAW_AMI;
    let mantissa = ((c & 0x0F) as i32) << 4;
    let segment = ((c >> 4) & 0x07) as i32;
    // Segment 0 is linear; the others add the implied leading one (0x100) and then double.
    // Every segment decodes to the middle of its step (the + 8).
    let magnitude = if segment == 0 { mantissa + 8 } else { (mantissa + 0x108) << (segment - 1) };
    // A set sign bit means a positive value in A-law.
    if c & 0x80 != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

const fn ulaw_to_linear(code: u8) -> i16 {
    let c = !code;
    let segment = ((c >> 4) & 0x07) as i32;
    let biased = ((((c & 0x0F) as i32) << 3) + ULAW_BIAS) << segment;
    // A set sign bit (after the inversion) means a negative value in mu-law.
    if c & 0x80 != 0 {
        (ULAW_BIAS - biased) as i16
    } else {
        (biased - ULAW_BIAS) as i16
    }
}

const fn build(law: Law) -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = match law {
            Law::Alaw => alaw_to_linear(i as u8),
            Law::Ulaw => ulaw_to_linear(i as u8),
        };
        i += 1;
    }
    table
}

static ALAW_DECODE: [i16; 256] = build(Law::Alaw);
static ULAW_DECODE: [i16; 256] = build(Law::Ulaw);

/// The segment (0..=7, or 8 for an overflow) of a non-negative magnitude: the position of its
/// top bit above bit 7.
#[inline]
fn segment(magnitude: u32) -> u32 {
    32 - (magnitude >> 8).leading_zeros()
}

/// Encodes one linear sample to A-law.
#[inline]
pub fn linear_to_alaw(x: i16) -> u8 {
    // Negative values fold with a ones' complement so that -32768 keeps a 15-bit magnitude;
    // A-law therefore never needs a clip.
    let (magnitude, sign) = if x >= 0 { (x as u32, 0x80u8) } else { (!(x as i32) as u32, 0x00u8) };
    let seg = segment(magnitude);
    let shift = if seg == 0 { 4 } else { seg + 3 };
    let code = ((seg << 4) as u8) | ((magnitude >> shift) & 0x0F) as u8;
    (code | sign) ^ ALAW_AMI
}

/// Encodes one linear sample to mu-law.
#[inline]
pub fn linear_to_ulaw(x: i16) -> u8 {
    let (magnitude, sign) = if x >= 0 {
        ((x as i32 + ULAW_BIAS) as u32, 0x00u8)
    } else {
        ((ULAW_BIAS - x as i32) as u32, 0x80u8)
    };
    let seg = segment(magnitude);
    // Only the loudest inputs (the bias pushes them past 32767) land in segment 8: clip them
    // to the top code.
    let code = if seg >= 8 { 0x7F } else { ((seg << 4) as u8) | ((magnitude >> (seg + 3)) & 0x0F) as u8 };
    !(code | sign)
}

/// Encodes one sample in the given law.
#[inline]
pub fn encode(law: Law, x: i16) -> u8 {
    match law {
        Law::Alaw => linear_to_alaw(x),
        Law::Ulaw => linear_to_ulaw(x),
    }
}

/// Decodes one code in the given law.
#[inline]
pub fn decode(law: Law, code: u8) -> i16 {
    match law {
        Law::Alaw => ALAW_DECODE[usize::from(code)],
        Law::Ulaw => ULAW_DECODE[usize::from(code)],
    }
}

/// Decodes a block into linear samples.
pub fn decode_block(law: Law, block: &Block, out: &mut [i16; BLOCK_SAMPLES]) {
    // Choosing the table once keeps the loop a plain lookup.
    let table = match law {
        Law::Alaw => &ALAW_DECODE,
        Law::Ulaw => &ULAW_DECODE,
    };
    for (o, &c) in out.iter_mut().zip(block.iter()) {
        *o = table[usize::from(c)];
    }
}

/// Encodes linear samples into a block.
pub fn encode_block(law: Law, samples: &[i16; BLOCK_SAMPLES], out: &mut Block) {
    match law {
        Law::Alaw => out.iter_mut().zip(samples.iter()).for_each(|(o, &x)| *o = linear_to_alaw(x)),
        Law::Ulaw => out.iter_mut().zip(samples.iter()).for_each(|(o, &x)| *o = linear_to_ulaw(x)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_codes_decode_to_the_smallest_step() {
        assert_eq!(decode(Law::Alaw, Law::Alaw.silence()), 8);
        assert_eq!(decode(Law::Ulaw, Law::Ulaw.silence()), 0);
        assert_eq!(encode(Law::Alaw, 0), 0xD5);
        assert_eq!(encode(Law::Ulaw, 0), 0xFF);
    }

    #[test]
    fn every_code_survives_a_round_trip() {
        for code in 0..=255u8 {
            assert_eq!(linear_to_alaw(decode(Law::Alaw, code)), code, "A-law {code:#04x}");
            // Mu-law has two zeros (0x7F is "negative zero"); it encodes back as 0xFF.
            let expected = if code == 0x7F { 0xFF } else { code };
            assert_eq!(linear_to_ulaw(decode(Law::Ulaw, code)), expected, "mu-law {code:#04x}");
        }
    }

    #[test]
    fn extremes_and_known_values() {
        // Full scale: A-law's top codes are 0xAA (positive) and 0x2A (negative).
        assert_eq!(linear_to_alaw(i16::MAX), 0xAA);
        assert_eq!(linear_to_alaw(i16::MIN), 0x2A);
        assert_eq!(decode(Law::Alaw, 0xAA), 32256);
        assert_eq!(decode(Law::Alaw, 0x2A), -32256);
        // Mu-law clips to 0x80 / 0x00 and decodes them to +-32124.
        assert_eq!(linear_to_ulaw(i16::MAX), 0x80);
        assert_eq!(linear_to_ulaw(i16::MIN), 0x00);
        assert_eq!(decode(Law::Ulaw, 0x80), 32124);
        assert_eq!(decode(Law::Ulaw, 0x00), -32124);
    }

    #[test]
    fn encoding_is_monotonic() {
        for law in [Law::Alaw, Law::Ulaw] {
            let mut last = i32::MIN;
            for x in i16::MIN..=i16::MAX {
                let y = i32::from(decode(law, encode(law, x)));
                assert!(y >= last, "{law:?} not monotonic at {x}");
                last = y;
            }
        }
    }
}
