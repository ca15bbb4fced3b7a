//! The ALSA driver against the engine.
//!
//! A driver crate cannot use the main crate, so the ALSA driver carries its own G.711 (the
//! card trait exchanges G.711 blocks while sound devices speak linear PCM). Audio that
//! crosses the driver must be coded exactly as the engine codes it, which is bit-exact with
//! spandsp (`tests/it/dsp.rs`); this checks every input. The driver's behaviour with real
//! alsa-lib is tested in `drivers/alsa/tests`.

use switchboard::dsp::g711;
use switchboard_driver_alsa::g711 as driver;
use switchboard_driver_api::Law;

#[test]
fn alsa_driver_g711_matches_the_engine_for_every_input() {
    for law in [Law::Alaw, Law::Ulaw] {
        for x in i16::MIN..=i16::MAX {
            assert_eq!(driver::encode(law, x), g711::encode(law, x), "{law:?} encode {x}");
        }
        for code in 0..=255u8 {
            assert_eq!(driver::decode(law, code), g711::decode(law, code), "{law:?} decode {code:#04x}");
        }
    }
}
