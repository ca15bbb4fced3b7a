//! G.711 expansion for decoding A-law and mu-law WAV files.
//!
//! The DSP module owns the real-time codec; this private copy only expands whole files when
//! prompts are loaded, so the audio module does not depend on the DSP module's layout.

/// Expands one ITU-T G.711 A-law code to a 16-bit linear sample.
pub(crate) fn alaw_to_linear(code: u8) -> i16 {
    // A-law codes are transmitted with every even bit inverted.
    let a = code ^ 0x55;
    let mantissa = i32::from(a & 0x0F);
    let segment = u32::from((a & 0x70) >> 4);
    // The decision value sits in the middle of the quantisation interval, hence the half
    // step (8 in segment 0, 0x108 with the implicit leading bit in higher segments).
    let magnitude = match segment {
        0 => (mantissa << 4) + 8,
        1 => (mantissa << 4) + 0x108,
        s => ((mantissa << 4) + 0x108) << (s - 1),
    };
    // The sign bit set means a positive sample in A-law. The magnitude is at most 32256, so
    // the conversion cannot fail; the fallback only keeps the function total.
    let value = if a & 0x80 != 0 { magnitude } else { -magnitude };
    i16::try_from(value).unwrap_or(0)
}

/// Expands one ITU-T G.711 mu-law code to a 16-bit linear sample.
pub(crate) fn ulaw_to_linear(code: u8) -> i16 {
    // Mu-law codes are transmitted with all bits inverted.
    let u = !code;
    let mantissa = i32::from(u & 0x0F);
    let exponent = u32::from((u & 0x70) >> 4);
    // The bias of 0x84 (132) makes the segments line up; it is removed after shifting.
    let biased = ((mantissa << 3) + 0x84) << exponent;
    let value = if u & 0x80 != 0 {
        0x84 - biased
    } else {
        biased - 0x84
    };
    // The magnitude is at most 32124, so the conversion cannot fail.
    i16::try_from(value).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alaw_reference_points() {
        // 0xD5 is the A-law idle code: the smallest positive step, not an exact zero.
        assert_eq!(alaw_to_linear(0xD5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(alaw_to_linear(0xAA), 32256);
        assert_eq!(alaw_to_linear(0x2A), -32256);
    }

    #[test]
    fn ulaw_reference_points() {
        assert_eq!(ulaw_to_linear(0xFF), 0);
        assert_eq!(ulaw_to_linear(0x7F), 0);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(ulaw_to_linear(0x00), -32124);
    }

    #[test]
    fn expansions_are_monotonic_within_each_sign() {
        // Mu-law positive codes run from 0xFF (zero) down to 0x80 (largest).
        let positives: Vec<i16> = (0x80..=0xFFu8).rev().map(ulaw_to_linear).collect();
        assert!(positives.windows(2).all(|w| w[0] < w[1]));
        // A-law positive codes, after removing the even-bit inversion, run 0x80..=0xFF.
        let positives: Vec<i16> = (0x80..=0xFFu8).map(|c| alaw_to_linear(c ^ 0x55)).collect();
        assert!(positives.windows(2).all(|w| w[0] < w[1]));
    }
}
