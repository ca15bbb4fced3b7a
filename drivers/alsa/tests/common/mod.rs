//! Helpers for the tests that run the card against alsa-lib's `file` plugin.
//!
//! alsa-lib reads its configuration from the files listed in `ALSA_CONFIG_PATH`. A test binary
//! points it at the system `alsa.conf` (which defines `null` and `plug`) followed by its own
//! file defining the PCMs it uses. The variable is process-wide and alsa-lib caches the
//! configuration, so each test binary (a separate process) sets it once, before any PCM is
//! opened, and every test in the binary shares the one configuration.

#![allow(dead_code)]

use std::f64::consts::TAU;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};

use switchboard_driver_alsa::g711;
use switchboard_driver_api::{Card, Law, LineEvent, TickIo};

static DIR: OnceLock<PathBuf> = OnceLock::new();
static SERIAL: Mutex<()> = Mutex::new(());

/// Creates this binary's scratch directory and ALSA configuration (once) and returns the
/// directory. `conf` receives the directory and returns the PCM definitions.
pub fn alsa_setup(name: &str, conf: impl FnOnce(&Path) -> String) -> &'static Path {
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("switchboard-alsa-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch directory");
        let file = dir.join("asound.conf");
        std::fs::write(&file, conf(&dir)).expect("asound.conf");
        let system = "/usr/share/alsa/alsa.conf";
        assert!(Path::new(system).exists(), "alsa-lib's configuration is installed");
        std::env::set_var("ALSA_CONFIG_PATH", format!("{system}:{}", file.display()));
        dir
    })
}

/// Tests in one binary share files and alsa-lib's global state; they run one at a time.
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// A `file`-plugin capture PCM reading `infile` (raw S16_LE) over the `null` PCM.
pub fn capture_pcm(name: &str, infile: &Path) -> String {
    format!(
        "pcm.{name} {{\n type file\n slave.pcm \"null\"\n file \"/dev/null\"\n infile \"{}\"\n format \"raw\"\n}}\n",
        infile.display()
    )
}

/// A `file`-plugin playback PCM writing raw S16_LE to `file` (or a `|command`).
pub fn playback_pcm(name: &str, file: &str) -> String {
    format!("pcm.{name} {{\n type file\n slave.pcm \"null\"\n file \"{file}\"\n format \"raw\"\n}}\n")
}

pub fn write_raw(path: &Path, samples: &[i16]) {
    let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    std::fs::write(path, bytes).expect("raw file");
}

pub fn read_raw(path: &Path) -> Vec<i16> {
    let bytes = std::fs::read(path).expect("raw file");
    bytes.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect()
}

pub fn sine(freq: f64, amplitude: f64, n: usize) -> Vec<i16> {
    (0..n).map(|i| (amplitude * (TAU * freq * i as f64 / 8000.0).sin()).round() as i16).collect()
}

pub fn encode(samples: &[i16]) -> Vec<u8> {
    samples.iter().map(|&s| g711::encode(Law::Alaw, s)).collect()
}

/// Power of `x` at `freq` (Goertzel), normalised so a sine of amplitude A gives about A.
pub fn tone_level(x: &[i16], freq: f64) -> f64 {
    let w = TAU * freq / 8000.0;
    let c = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &v in x {
        let s = f64::from(v) + c * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    let power = s1 * s1 + s2 * s2 - c * s1 * s2;
    2.0 * power.sqrt() / x.len() as f64
}

pub fn rms(x: &[i16]) -> f64 {
    (x.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() / x.len().max(1) as f64).sqrt()
}

/// Ticks once and returns the events as (port, event).
pub fn tick(card: &mut impl Card, io: &mut TickIo) -> Vec<(u16, LineEvent)> {
    card.tick(io).expect("tick");
    io.events.iter().map(|e| (e.channel.port(), e.event)).collect()
}
