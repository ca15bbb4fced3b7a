//! The PCM streams a sound device is made of, behind a small trait.
//!
//! The device logic (xrun recovery, unplug, jitter buffering) talks to a [`Pcm`] rather than
//! to `alsa::PCM` directly, so that the recovery paths that cannot be provoked without
//! hardware (an overrun, a suspend) are unit-tested with a scripted stream, while the real
//! implementation here stays a thin layer over alsa-lib.

use std::ffi::CStr;
use std::fmt;

use alsa::pcm::{Access, Format, HwParams};
use alsa::{Direction, ValueOr, PCM};

use switchboard_driver_api::{BLOCK_SAMPLES, SAMPLE_RATE};

/// Linux errno values the recovery logic tells apart. They are the asm-generic numbers used
/// by every architecture Switchboard ships on (x86, Arm, RISC-V, PowerPC); the crate avoids a
/// libc dependency for nine constants.
pub(crate) mod errno {
    pub const EINTR: i32 = 4;
    pub const EIO: i32 = 5;
    pub const ENXIO: i32 = 6;
    pub const EAGAIN: i32 = 11;
    pub const ENODEV: i32 = 19;
    pub const EPIPE: i32 = 32;
    pub const EBADFD: i32 = 77;
    pub const ESTRPIPE: i32 = 86;
    pub const ETIMEDOUT: i32 = 110;
}

/// The direction of one PCM stream of a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StreamDir {
    Capture,
    Playback,
}

impl StreamDir {
    pub const fn name(self) -> &'static str {
        match self {
            StreamDir::Capture => "capture",
            StreamDir::Playback => "playback",
        }
    }
}

/// Why a device stopped working or could not be opened: which stream, which call, and the
/// errno alsa-lib returned. Plain data, so recording one allocates nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceFault {
    pub stream: StreamDir,
    /// The alsa-lib call (or step) that failed, e.g. `snd_pcm_open` or `snd_pcm_readi`.
    pub op: &'static str,
    /// The positive errno, e.g. 19 (ENODEV) for an unplugged USB headset.
    pub errno: i32,
}

impl fmt::Display for DeviceFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} failed: {}",
            self.stream.name(),
            self.op,
            std::io::Error::from_raw_os_error(self.errno)
        )
    }
}

impl std::error::Error for DeviceFault {}

/// How the device logic reacts to an error from a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Recovery {
    /// Nothing to do now (EAGAIN, EINTR): try again on the next tick.
    Again,
    /// An overrun or underrun (EPIPE): prepare and restart the stream.
    Xrun,
    /// The system suspended the device (ESTRPIPE): resume it, or prepare if that fails.
    Suspended,
    /// Anything else (ENODEV, EBADFD, ENXIO, EIO, ...): the device is gone; close it and try
    /// to open it again later.
    Fatal,
}

pub(crate) fn classify(errno: i32) -> Recovery {
    match errno {
        errno::EAGAIN | errno::EINTR => Recovery::Again,
        errno::EPIPE => Recovery::Xrun,
        errno::ESTRPIPE => Recovery::Suspended,
        // The ways a device goes away: unplugged (ENODEV, or EBADFD/ENXIO from a stream
        // whose card vanished) or failing (EIO). Spelled out because they are the common ones.
        errno::ENODEV | errno::EBADFD | errno::ENXIO | errno::EIO => Recovery::Fatal,
        _ => Recovery::Fatal,
    }
}

/// An error from one call on a stream: the call and the errno.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PcmError {
    pub op: &'static str,
    pub errno: i32,
}

impl PcmError {
    fn from_alsa(op: &'static str, e: alsa::Error) -> PcmError {
        PcmError { op, errno: e.errno() }
    }
}

/// The shape every stream is opened with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StreamParams {
    /// Frames per period; the tick size (160 frames, 20 ms).
    pub period: usize,
    /// Periods in the device buffer.
    pub periods: u32,
}

impl StreamParams {
    pub fn new(periods: u32) -> StreamParams {
        StreamParams { period: BLOCK_SAMPLES, periods }
    }
}

/// One open, configured PCM stream: S16 mono at 8 kHz, non-blocking, read-write access.
/// Methods return what alsa-lib returns; the caller decides what an error means.
pub(crate) trait Pcm: Send {
    /// Frames that can be read (capture) or written (playback) without blocking.
    fn avail(&mut self) -> Result<usize, PcmError>;
    /// Reads up to `buf.len()` frames; Ok(0) or EAGAIN when nothing is there.
    fn read(&mut self, buf: &mut [i16]) -> Result<usize, PcmError>;
    /// Writes up to `buf.len()` frames; returns how many were taken.
    fn write(&mut self, buf: &[i16]) -> Result<usize, PcmError>;
    /// Waits up to `timeout_ms` until at least one period can be transferred; true if so.
    fn wait(&mut self, timeout_ms: u32) -> Result<bool, PcmError>;
    fn prepare(&mut self) -> Result<(), PcmError>;
    fn start(&mut self) -> Result<(), PcmError>;
    fn resume(&mut self) -> Result<(), PcmError>;
    /// Size of the device buffer in frames.
    fn buffer_frames(&self) -> usize;
}

/// Opens streams by PCM name. Opening allocates (alsa-lib parses its configuration), which is
/// why it only happens at start and on the rare reopen after an unplug.
pub(crate) trait Opener: Send {
    /// `quiet` is set for the retries of a failed device: alsa-lib's own messages about why
    /// the open failed are then not printed to stderr, since a headset that stays unplugged
    /// would otherwise log the same lines every second for as long as it is away.
    fn open(
        &mut self,
        name: &CStr,
        dir: StreamDir,
        params: &StreamParams,
        quiet: bool,
    ) -> Result<Box<dyn Pcm>, PcmError>;
}

/// Opens real ALSA PCMs.
#[derive(Debug, Default)]
pub(crate) struct AlsaOpener;

impl Opener for AlsaOpener {
    fn open(
        &mut self,
        name: &CStr,
        dir: StreamDir,
        params: &StreamParams,
        quiet: bool,
    ) -> Result<Box<dyn Pcm>, PcmError> {
        if quiet {
            // This sends alsa-lib's messages on this thread to a fresh in-memory buffer (the
            // previous one, holding the last attempt's messages, is freed). Without a buffer
            // the messages go to stderr as usual; either way the fault is reported to the
            // caller with its errno.
            let _ = alsa::Output::local_error_handler();
        }
        let alsa_dir = match dir {
            StreamDir::Capture => Direction::Capture,
            StreamDir::Playback => Direction::Playback,
        };
        let pcm = PCM::open(name, alsa_dir, true).map_err(|e| PcmError::from_alsa("snd_pcm_open", e))?;
        let buffer = configure(&pcm, dir, params)?;
        // The scratch buffer converts between the bytes alsa-lib takes and our samples; a
        // whole device buffer is the most one call can move.
        let bytes = vec![0u8; buffer * 2];
        Ok(Box::new(AlsaPcm { pcm, bytes, buffer }))
    }
}

/// Sets the hardware and software parameters and returns the buffer size in frames.
fn configure(pcm: &PCM, dir: StreamDir, params: &StreamParams) -> Result<usize, PcmError> {
    let hw = |e| PcmError::from_alsa("snd_pcm_hw_params", e);
    let buffer = {
        let hwp = HwParams::any(pcm).map_err(hw)?;
        // The plug layer converts rate, format and channels when the device cannot do 8 kHz
        // mono S16 itself; a plain hw: device that cannot is refused here with EINVAL.
        hwp.set_rate_resample(true).map_err(hw)?;
        hwp.set_access(Access::RWInterleaved).map_err(hw)?;
        hwp.set_format(Format::S16LE).map_err(hw)?;
        hwp.set_channels(1).map_err(hw)?;
        hwp.set_rate(SAMPLE_RATE, ValueOr::Nearest).map_err(hw)?;
        hwp.set_period_size_near(params.period as alsa::pcm::Frames, ValueOr::Nearest).map_err(hw)?;
        let wanted = (params.period as u64) * u64::from(params.periods);
        hwp.set_buffer_size_near(wanted as alsa::pcm::Frames).map_err(hw)?;
        pcm.hw_params(&hwp).map_err(hw)?;
        let got = pcm.hw_params_current().map_err(hw)?;
        if got.get_rate().map_err(hw)? != SAMPLE_RATE || got.get_channels().map_err(hw)? != 1 {
            return Err(PcmError { op: "snd_pcm_hw_params (8 kHz mono)", errno: 22 });
        }
        let buffer = got.get_buffer_size().map_err(hw)?;
        usize::try_from(buffer).map_err(|_| PcmError { op: "snd_pcm_hw_params (buffer size)", errno: 22 })?
    };
    if buffer < 2 * params.period {
        // Fewer than two periods cannot absorb any scheduling jitter.
        return Err(PcmError { op: "snd_pcm_hw_params (buffer of two periods)", errno: 22 });
    }
    let sw = |e| PcmError::from_alsa("snd_pcm_sw_params", e);
    let swp = pcm.sw_params_current().map_err(sw)?;
    // Waking up for one period is what the master clock waits for.
    swp.set_avail_min(params.period as alsa::pcm::Frames).map_err(sw)?;
    if dir == StreamDir::Playback {
        // Playback starts once two periods are queued (one of prefilled silence and the first
        // block), so it begins with a period of cushion against scheduling jitter.
        swp.set_start_threshold((2 * params.period) as alsa::pcm::Frames).map_err(sw)?;
    } else {
        // Capture is started explicitly on the first tick; a read must not start it early.
        swp.set_start_threshold(buffer as alsa::pcm::Frames + 1).map_err(sw)?;
    }
    pcm.sw_params(&swp).map_err(sw)?;
    pcm.prepare().map_err(|e| PcmError::from_alsa("snd_pcm_prepare", e))?;
    Ok(buffer)
}

struct AlsaPcm {
    pcm: PCM,
    bytes: Vec<u8>,
    buffer: usize,
}

impl Pcm for AlsaPcm {
    fn avail(&mut self) -> Result<usize, PcmError> {
        let n = self.pcm.avail_update().map_err(|e| PcmError::from_alsa("snd_pcm_avail_update", e))?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    fn read(&mut self, buf: &mut [i16]) -> Result<usize, PcmError> {
        let frames = buf.len().min(self.bytes.len() / 2);
        let bytes = &mut self.bytes[..frames * 2];
        // Plugins that deliver no data for some frames (the file plugin past the end of its
        // input) leave the buffer as it was: clear it so that stale audio is never repeated.
        bytes.fill(0);
        let got = self.pcm.io_bytes().readi(bytes).map_err(|e| PcmError::from_alsa("snd_pcm_readi", e))?;
        let got = got.min(frames);
        for (s, b) in buf.iter_mut().zip(bytes.chunks_exact(2)).take(got) {
            *s = i16::from_le_bytes([b[0], b[1]]);
        }
        Ok(got)
    }

    fn write(&mut self, buf: &[i16]) -> Result<usize, PcmError> {
        let frames = buf.len().min(self.bytes.len() / 2);
        let bytes = &mut self.bytes[..frames * 2];
        for (b, s) in bytes.chunks_exact_mut(2).zip(buf) {
            b.copy_from_slice(&s.to_le_bytes());
        }
        self.pcm.io_bytes().writei(bytes).map_err(|e| PcmError::from_alsa("snd_pcm_writei", e))
    }

    fn wait(&mut self, timeout_ms: u32) -> Result<bool, PcmError> {
        self.pcm.wait(Some(timeout_ms)).map_err(|e| PcmError::from_alsa("snd_pcm_wait", e))
    }

    fn prepare(&mut self) -> Result<(), PcmError> {
        self.pcm.prepare().map_err(|e| PcmError::from_alsa("snd_pcm_prepare", e))
    }

    fn start(&mut self) -> Result<(), PcmError> {
        self.pcm.start().map_err(|e| PcmError::from_alsa("snd_pcm_start", e))
    }

    fn resume(&mut self) -> Result<(), PcmError> {
        self.pcm.resume().map_err(|e| PcmError::from_alsa("snd_pcm_resume", e))
    }

    fn buffer_frames(&self) -> usize {
        self.buffer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_recoveries() {
        assert_eq!(classify(errno::EAGAIN), Recovery::Again);
        assert_eq!(classify(errno::EPIPE), Recovery::Xrun);
        assert_eq!(classify(errno::ESTRPIPE), Recovery::Suspended);
        for e in [errno::ENODEV, errno::EBADFD, errno::ENXIO, errno::EIO] {
            assert_eq!(classify(e), Recovery::Fatal);
        }
    }

    #[test]
    fn faults_say_what_failed() {
        let f = DeviceFault { stream: StreamDir::Capture, op: "snd_pcm_readi", errno: errno::ENODEV };
        assert!(f.to_string().starts_with("capture snd_pcm_readi failed: No such device"));
    }
}
