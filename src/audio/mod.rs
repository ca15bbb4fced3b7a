//! Audio files: WAV reading and writing, resampling of prompt files to 8 kHz, and the
//! recording writer thread that drains the media engine's recording ring to disk.
//!
//! Everything here runs outside the real-time media thread: files are read when prompts are
//! loaded and written by the recorder thread, so allocation and blocking I/O are allowed.

pub mod recorder;
mod resample;
pub mod wav;

pub use recorder::{
    recording_rel_path, RecBlock, RecControl, RecDone, RecorderStats, RecorderThread, REC_BLOCK,
};
pub use wav::{parse_wav, read_wav, repair_wav, to_8k, RepairOutcome, Wav, WavError, WavFormat, WavWriter};
