//! A RIFF/WAVE reader and writer.
//!
//! The reader accepts what prompt files come as in practice: integer PCM (8, 16, 24 and 32
//! bits), 32-bit float, G.711 A-law and mu-law, plain or wrapped in WAVE_FORMAT_EXTENSIBLE,
//! with any number of channels (mixed down to mono). It never panics on malformed input and
//! its errors name the file and the defect, because operators read them when a prompt does
//! not load.
//!
//! The writer produces 8 kHz mono 16-bit PCM recordings. It keeps the header sizes current
//! on every [`WavWriter::flush`], so a recording whose process is killed after a flush is
//! still a valid file; [`repair_wav`] fixes the sizes of a file killed between flushes.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::resample::{resample_to_8k, SUPPORTED_RATES, TARGET_RATE};
use crate::dsp::g711::{alaw_decode, ulaw_decode};

/// WAVE format codes, from the Microsoft registry of `wFormatTag` values.
const FORMAT_PCM: u16 = 0x0001;
const FORMAT_FLOAT: u16 = 0x0003;
const FORMAT_ALAW: u16 = 0x0006;
const FORMAT_ULAW: u16 = 0x0007;
const FORMAT_EXTENSIBLE: u16 = 0xFFFE;

/// Bytes 2..16 of every KSDATAFORMAT_SUBTYPE GUID that wraps a plain format code; the code
/// itself is in the first two bytes.
const EXTENSIBLE_GUID_TAIL: [u8; 14] =
    [0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71];

/// A chunk size of all ones is what streaming writers put when the length is unknown; the
/// data then runs to the end of the file.
const SIZE_UNKNOWN: u32 = u32::MAX;

/// Size of the canonical header the writer produces: RIFF header, 16-byte fmt chunk and the
/// data chunk header.
const CANONICAL_HEADER_LEN: u64 = 44;
/// Offset of the RIFF size field.
const RIFF_SIZE_OFFSET: u64 = 4;
/// Offset of the data size field in the canonical header.
const DATA_SIZE_OFFSET: u64 = 40;

/// The writer buffers this many bytes (about 2 s of audio) before it writes to the file.
const WRITE_BUFFER_BYTES: usize = 32 * 1024;

/// The sample encoding a WAV file was stored in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WavFormat {
    /// Integer PCM: 8-bit unsigned, or 16, 24 or 32-bit signed little-endian.
    Pcm { bits: u16 },
    /// 32-bit IEEE float, full scale at +/-1.0.
    Float32,
    /// ITU-T G.711 A-law, 8 bits per sample.
    Alaw,
    /// ITU-T G.711 mu-law, 8 bits per sample.
    Ulaw,
}

impl WavFormat {
    fn bytes_per_sample(self) -> usize {
        match self {
            WavFormat::Pcm { bits } => usize::from(bits / 8),
            WavFormat::Float32 => 4,
            WavFormat::Alaw | WavFormat::Ulaw => 1,
        }
    }

    /// Decodes one sample from exactly `bytes_per_sample` little-endian bytes.
    fn decode(self, b: &[u8]) -> i32 {
        match (self, b) {
            // 8-bit PCM is unsigned with its zero at 128.
            (WavFormat::Pcm { bits: 8 }, [x]) => (i32::from(*x) - 128) << 8,
            (WavFormat::Pcm { bits: 16 }, [lo, hi]) => i32::from(i16::from_le_bytes([*lo, *hi])),
            // Wider PCM keeps its 16 most significant bits.
            (WavFormat::Pcm { bits: 24 }, [_, mid, hi]) => i32::from(i16::from_le_bytes([*mid, *hi])),
            (WavFormat::Pcm { bits: 32 }, [_, _, mid, hi]) => i32::from(i16::from_le_bytes([*mid, *hi])),
            (WavFormat::Float32, [a, b0, c, d]) => {
                let v = f32::from_le_bytes([*a, *b0, *c, *d]);
                // The float-to-int cast saturates and maps NaN to 0, so no input can panic.
                (v * 32768.0).round().clamp(-32768.0, 32767.0) as i32
            }
            (WavFormat::Alaw, [x]) => i32::from(alaw_decode(*x)),
            (WavFormat::Ulaw, [x]) => i32::from(ulaw_decode(*x)),
            // The parser only builds the combinations above; anything else reads as silence.
            _ => 0,
        }
    }
}

impl std::fmt::Display for WavFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WavFormat::Pcm { bits } => write!(f, "{bits}-bit PCM"),
            WavFormat::Float32 => f.write_str("32-bit float"),
            WavFormat::Alaw => f.write_str("A-law"),
            WavFormat::Ulaw => f.write_str("mu-law"),
        }
    }
}

/// A decoded WAV file: mono linear samples at the file's own rate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wav {
    /// The file name (or other label) errors about this audio mention.
    pub name: String,
    pub sample_rate: u32,
    /// Mono, linear 16-bit samples; multi-channel files are averaged.
    pub samples: Vec<i16>,
    pub source_format: WavFormat,
    pub source_channels: u16,
}

/// Everything that can go wrong reading, converting, writing or repairing a WAV file. Each
/// variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum WavError {
    #[error("{file}: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: not a RIFF file (it starts with {found:?}, expected \"RIFF\")")]
    NotRiff { file: String, found: String },
    #[error("{file}: RIFF file is not a WAVE file (form type {found:?})")]
    NotWave { file: String, found: String },
    #[error("{file}: no \"{chunk}\" chunk")]
    MissingChunk { file: String, chunk: &'static str },
    #[error("{file}: truncated {what}: {expected} bytes expected, {present} present")]
    Truncated { file: String, what: &'static str, expected: u64, present: u64 },
    #[error("{file}: malformed fmt chunk: {reason}")]
    BadFmt { file: String, reason: String },
    #[error("{file}: unsupported WAVE format code {code} (0x{code:04X}); supported are PCM (1), float (3), A-law (6) and mu-law (7)")]
    UnsupportedFormat { file: String, code: u16 },
    #[error("{file}: unsupported {bits} bits per sample for format code {code}")]
    UnsupportedBits { file: String, code: u16, bits: u16 },
    #[error("{file}: the fmt chunk says zero channels")]
    ZeroChannels { file: String },
    #[error("{file}: the fmt chunk says a sample rate of 0 Hz")]
    ZeroSampleRate { file: String },
    #[error("{file}: unsupported sample rate {rate} Hz; supported are 8000, 11025, 16000, 22050, 32000, 44100 and 48000 Hz")]
    UnsupportedRate { file: String, rate: u32 },
    #[error("{file}: the audio would exceed the 4 GiB size limit of a WAV file")]
    TooLarge { file: String },
    #[error("{file}: cannot repair: {reason}")]
    Unrepairable { file: String, reason: String },
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes([s[0], s[1]]))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// Shows a four-character code readably in error messages, whatever bytes it holds.
fn fourcc(b: &[u8]) -> String {
    b.iter().map(|&c| if c.is_ascii_graphic() || c == b' ' { char::from(c) } else { '?' }).collect()
}

/// Reads and decodes a WAV file.
pub fn read_wav(path: &Path) -> Result<Wav, WavError> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| WavError::Io { file: name.clone(), source })?;
    parse_wav(&bytes, &name)
}

/// The parts of a fmt chunk the decoder needs.
struct Fmt {
    format: WavFormat,
    channels: u16,
    sample_rate: u32,
}

fn parse_fmt(fmt: &[u8], file: &str) -> Result<Fmt, WavError> {
    let bad = |reason: String| WavError::BadFmt { file: file.to_owned(), reason };
    let too_short = || bad(format!("it is {} bytes, at least 16 are needed", fmt.len()));
    let tag = u16_at(fmt, 0).ok_or_else(too_short)?;
    let channels = u16_at(fmt, 2).ok_or_else(too_short)?;
    let sample_rate = u32_at(fmt, 4).ok_or_else(too_short)?;
    let block_align = u16_at(fmt, 12).ok_or_else(too_short)?;
    let bits = u16_at(fmt, 14).ok_or_else(too_short)?;

    let code = if tag == FORMAT_EXTENSIBLE {
        let cb_size = u16_at(fmt, 16)
            .ok_or_else(|| bad("WAVE_FORMAT_EXTENSIBLE without its extension (cbSize missing)".to_owned()))?;
        let guid = fmt.get(24..40).filter(|_| cb_size >= 22).ok_or_else(|| {
            bad(format!(
                "WAVE_FORMAT_EXTENSIBLE extension is {} bytes, 22 are needed",
                fmt.len().saturating_sub(18)
            ))
        })?;
        if guid[2..] != EXTENSIBLE_GUID_TAIL {
            return Err(bad("WAVE_FORMAT_EXTENSIBLE sub-format is not a standard format GUID".to_owned()));
        }
        u16::from_le_bytes([guid[0], guid[1]])
    } else {
        tag
    };

    let format = match (code, bits) {
        (FORMAT_PCM, 8 | 16 | 24 | 32) => WavFormat::Pcm { bits },
        (FORMAT_FLOAT, 32) => WavFormat::Float32,
        (FORMAT_ALAW, 8) => WavFormat::Alaw,
        (FORMAT_ULAW, 8) => WavFormat::Ulaw,
        (FORMAT_PCM | FORMAT_FLOAT | FORMAT_ALAW | FORMAT_ULAW, _) => {
            return Err(WavError::UnsupportedBits { file: file.to_owned(), code, bits })
        }
        _ => return Err(WavError::UnsupportedFormat { file: file.to_owned(), code }),
    };
    if channels == 0 {
        return Err(WavError::ZeroChannels { file: file.to_owned() });
    }
    if sample_rate == 0 {
        return Err(WavError::ZeroSampleRate { file: file.to_owned() });
    }
    let frame = usize::from(channels) * format.bytes_per_sample();
    if usize::from(block_align) != frame {
        return Err(bad(format!(
            "block align is {block_align} bytes, but {channels} channel(s) of {format} need {frame}"
        )));
    }
    Ok(Fmt { format, channels, sample_rate })
}

/// Decodes a WAV file held in memory. `name` labels the errors.
pub fn parse_wav(bytes: &[u8], name: &str) -> Result<Wav, WavError> {
    let file = || name.to_owned();
    let head = bytes.get(0..12).ok_or_else(|| {
        if bytes.len() >= 4 && &bytes[0..4] != b"RIFF" {
            WavError::NotRiff { file: file(), found: fourcc(&bytes[0..4]) }
        } else {
            WavError::Truncated {
                file: file(),
                what: "RIFF header",
                expected: 12,
                present: bytes.len() as u64,
            }
        }
    })?;
    if &head[0..4] != b"RIFF" {
        return Err(WavError::NotRiff { file: file(), found: fourcc(&head[0..4]) });
    }
    if &head[8..12] != b"WAVE" {
        return Err(WavError::NotWave { file: file(), found: fourcc(&head[8..12]) });
    }

    // The RIFF size field is ignored: files from killed writers often have it wrong, and the
    // chunk sizes are checked against the real length below anyway.
    let mut fmt: Option<&[u8]> = None;
    let mut data: Option<&[u8]> = None;
    let mut pos: usize = 12;
    while let (Some(id), Some(size)) = (bytes.get(pos..pos + 4), u32_at(bytes, pos + 4)) {
        let body = pos + 8;
        let present = bytes.len() - body;
        match id {
            b"data" if data.is_none() => {
                if size == SIZE_UNKNOWN {
                    data = Some(&bytes[body..]);
                    break;
                }
                let len = size as usize;
                if len > present {
                    return Err(WavError::Truncated {
                        file: file(),
                        what: "data chunk",
                        expected: u64::from(size),
                        present: present as u64,
                    });
                }
                data = Some(&bytes[body..body + len]);
            }
            b"fmt " if fmt.is_none() => {
                let len = size as usize;
                if len > present {
                    return Err(WavError::Truncated {
                        file: file(),
                        what: "fmt chunk",
                        expected: u64::from(size),
                        present: present as u64,
                    });
                }
                fmt = Some(&bytes[body..body + len]);
            }
            // LIST, fact, cue and anything else is skipped.
            _ => {}
        }
        if fmt.is_some() && data.is_some() {
            break;
        }
        // Chunk bodies are padded to an even length.
        let next = (body as u64) + u64::from(size) + u64::from(size & 1);
        match usize::try_from(next) {
            Ok(n) if n <= bytes.len() => pos = n,
            _ => break,
        }
    }

    let fmt = fmt.ok_or(WavError::MissingChunk { file: file(), chunk: "fmt " })?;
    let fmt = parse_fmt(fmt, name)?;
    let data = data.ok_or(WavError::MissingChunk { file: file(), chunk: "data" })?;

    let bytes_per_sample = fmt.format.bytes_per_sample();
    let frame = usize::from(fmt.channels) * bytes_per_sample;
    let channels = i32::from(fmt.channels);
    // A trailing partial frame (a writer killed mid-sample) is dropped rather than refused.
    let samples = data
        .chunks_exact(frame)
        .map(|f| {
            let sum: i32 = f.chunks_exact(bytes_per_sample).map(|s| fmt.format.decode(s)).sum();
            // The average of i16 values always fits in an i16.
            i16::try_from(sum / channels).unwrap_or(0)
        })
        .collect();
    Ok(Wav {
        name: name.to_owned(),
        sample_rate: fmt.sample_rate,
        samples,
        source_format: fmt.format,
        source_channels: fmt.channels,
    })
}

/// Converts decoded audio to 8 kHz: 8 kHz passes through, the common rates (11025, 16000,
/// 22050, 32000, 44100 and 48000 Hz) are low-pass filtered and resampled, and any other rate
/// is refused.
pub fn to_8k(wav: Wav) -> Result<Vec<i16>, WavError> {
    if wav.sample_rate == TARGET_RATE {
        return Ok(wav.samples);
    }
    if SUPPORTED_RATES.contains(&wav.sample_rate) {
        return Ok(resample_to_8k(&wav.samples, wav.sample_rate));
    }
    Err(WavError::UnsupportedRate { file: wav.name, rate: wav.sample_rate })
}

/// The canonical 44-byte header of an 8 kHz mono 16-bit PCM file with `data_len` data bytes.
fn canonical_header(data_len: u32) -> [u8; CANONICAL_HEADER_LEN as usize] {
    let mut h = [0u8; CANONICAL_HEADER_LEN as usize];
    let riff_len = data_len.saturating_add((CANONICAL_HEADER_LEN - 8) as u32);
    h[0..4].copy_from_slice(b"RIFF");
    h[4..8].copy_from_slice(&riff_len.to_le_bytes());
    h[8..12].copy_from_slice(b"WAVE");
    h[12..16].copy_from_slice(b"fmt ");
    h[16..20].copy_from_slice(&16u32.to_le_bytes());
    h[20..22].copy_from_slice(&FORMAT_PCM.to_le_bytes());
    h[22..24].copy_from_slice(&1u16.to_le_bytes());
    h[24..28].copy_from_slice(&TARGET_RATE.to_le_bytes());
    h[28..32].copy_from_slice(&(TARGET_RATE * 2).to_le_bytes());
    h[32..34].copy_from_slice(&2u16.to_le_bytes());
    h[34..36].copy_from_slice(&16u16.to_le_bytes());
    h[36..40].copy_from_slice(b"data");
    h[40..44].copy_from_slice(&data_len.to_le_bytes());
    h
}

/// The largest data chunk a WAV header can describe, kept to whole 16-bit samples.
const MAX_DATA_BYTES: u64 = (u32::MAX as u64 - (CANONICAL_HEADER_LEN - 8)) & !1;

/// Writes an 8 kHz mono 16-bit PCM WAV file incrementally.
///
/// Samples are buffered in memory; [`WavWriter::flush`] writes them and rewrites the header
/// sizes, so after a flush the file on disk is complete and valid even if the process dies.
/// Dropping the writer without [`WavWriter::finish`] flushes on a best-effort basis.
#[derive(Debug)]
pub struct WavWriter {
    file: File,
    name: String,
    path: PathBuf,
    buffer: Vec<u8>,
    /// Data bytes already written to the file (not counting the buffer).
    written: u64,
    /// Set once `finish` has run, so `Drop` does not flush again.
    finished: bool,
}

impl WavWriter {
    /// Creates (or truncates) the file and writes a header for zero samples.
    pub fn create(path: &Path) -> Result<WavWriter, WavError> {
        let name = path.display().to_string();
        let io = |source| WavError::Io { file: name.clone(), source };
        let mut file = OpenOptions::new().write(true).create(true).truncate(true).open(path).map_err(io)?;
        file.write_all(&canonical_header(0)).map_err(io)?;
        Ok(WavWriter {
            file,
            name,
            path: path.to_owned(),
            buffer: Vec::with_capacity(WRITE_BUFFER_BYTES),
            written: 0,
            finished: false,
        })
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Samples accepted so far, flushed or not.
    pub fn samples(&self) -> u64 {
        (self.written + self.buffer.len() as u64) / 2
    }

    fn io_error(&self, source: std::io::Error) -> WavError {
        WavError::Io { file: self.name.clone(), source }
    }

    /// Appends samples. They reach the file when the buffer fills or on `flush`.
    pub fn write(&mut self, samples: &[i16]) -> Result<(), WavError> {
        let new_bytes = samples.len() as u64 * 2;
        if self.written + self.buffer.len() as u64 + new_bytes > MAX_DATA_BYTES {
            return Err(WavError::TooLarge { file: self.name.clone() });
        }
        self.buffer.extend(samples.iter().flat_map(|s| s.to_le_bytes()));
        if self.buffer.len() >= WRITE_BUFFER_BYTES {
            self.write_buffer()?;
        }
        Ok(())
    }

    fn write_buffer(&mut self) -> Result<(), WavError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        // The file cursor stays at the end: header updates use positioned writes.
        self.file.write_all(&self.buffer).map_err(|e| self.io_error(e))?;
        self.written += self.buffer.len() as u64;
        self.buffer.clear();
        Ok(())
    }

    /// Writes the buffered samples and updates the header sizes, leaving a valid file.
    pub fn flush(&mut self) -> Result<(), WavError> {
        self.write_buffer()?;
        // `written` never exceeds MAX_DATA_BYTES, which fits in a u32.
        let data_len = u32::try_from(self.written).unwrap_or(u32::MAX);
        let header = canonical_header(data_len);
        // The data size is updated before the RIFF size: a reader (or repair_wav) trusts the
        // data chunk size first, so it is the one that must be current.
        self.file
            .write_all_at(&header[40..44], DATA_SIZE_OFFSET)
            .and_then(|()| self.file.write_all_at(&header[4..8], RIFF_SIZE_OFFSET))
            .map_err(|e| self.io_error(e))
    }

    /// Flushes, forces the file to stable storage and returns the number of samples written.
    pub fn finish(mut self) -> Result<u64, WavError> {
        self.finished = true;
        self.flush()?;
        self.file.sync_all().map_err(|e| self.io_error(e))?;
        Ok(self.written / 2)
    }
}

impl Drop for WavWriter {
    fn drop(&mut self) {
        if !self.finished {
            // Nobody can receive an error from a destructor; a failure here leaves a file
            // that repair_wav can fix.
            let _ = self.flush();
        }
    }
}

/// What [`repair_wav`] found and did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RepairOutcome {
    /// Sample frames in the data chunk after repair.
    pub samples: u64,
    /// True when the file was modified.
    pub changed: bool,
    /// Bytes of a trailing partial sample frame that were cut off.
    pub truncated_bytes: u64,
}

/// Fixes the header of a WAV file whose writer died before finishing it.
///
/// The file is expected to be laid out the way [`WavWriter`] writes it, with the data chunk
/// last: everything from the start of the data chunk to the end of the file is taken as
/// audio, a trailing partial sample frame is cut off, and the RIFF and data sizes are
/// rewritten. A file whose sizes are already consistent is left alone, which also protects
/// complete files that carry chunks after their data. An empty file (the writer died before
/// its header was written) gets a fresh header for zero samples.
pub fn repair_wav(path: &Path) -> Result<RepairOutcome, WavError> {
    let name = path.display().to_string();
    let io = |source| WavError::Io { file: name.clone(), source };
    let unrepairable = |reason: String| WavError::Unrepairable { file: name.clone(), reason };
    let file = OpenOptions::new().read(true).write(true).open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();

    if len == 0 {
        file.write_all_at(&canonical_header(0), 0).map_err(io)?;
        file.sync_all().map_err(io)?;
        return Ok(RepairOutcome { samples: 0, changed: true, truncated_bytes: 0 });
    }
    if len < 12 {
        return Err(unrepairable(format!("the file is {len} bytes, shorter than a RIFF header")));
    }
    let mut head = [0u8; 12];
    file.read_exact_at(&mut head, 0).map_err(io)?;
    if &head[0..4] != b"RIFF" {
        return Err(WavError::NotRiff { file: name.clone(), found: fourcc(&head[0..4]) });
    }
    if &head[8..12] != b"WAVE" {
        return Err(WavError::NotWave { file: name.clone(), found: fourcc(&head[8..12]) });
    }
    let declared_riff = u64::from(u32::from_le_bytes([head[4], head[5], head[6], head[7]]));

    // Walk the chunks before the data chunk; their sizes are trusted because the writer
    // wrote them once, before any audio.
    let mut pos: u64 = 12;
    let mut block_align: Option<u64> = None;
    let (data_start, declared_data) = loop {
        if pos + 8 > len {
            return Err(unrepairable("no data chunk before the end of the file".to_owned()));
        }
        let mut chunk = [0u8; 8];
        file.read_exact_at(&mut chunk, pos).map_err(io)?;
        let size = u64::from(u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]));
        match &chunk[0..4] {
            b"data" => break (pos + 8, size),
            b"fmt " => {
                if size < 16 || pos + 8 + 16 > len {
                    return Err(unrepairable("the fmt chunk is truncated".to_owned()));
                }
                let mut fmt = [0u8; 16];
                file.read_exact_at(&mut fmt, pos + 8).map_err(io)?;
                block_align = Some(u64::from(u16::from_le_bytes([fmt[12], fmt[13]])));
            }
            _ => {}
        }
        pos += 8 + size + (size & 1);
    };
    let block_align = match block_align {
        Some(0) => return Err(unrepairable("the fmt chunk says a block align of 0".to_owned())),
        Some(b) => b,
        None => return Err(unrepairable("no fmt chunk before the data chunk".to_owned())),
    };

    // A file is consistent when the RIFF size matches its length and the data chunk fits in
    // it (possibly followed by other chunks). The writer updates the data size before the
    // RIFF size, so a writer killed at any point leaves the RIFF size stale and fails this.
    if declared_riff + 8 == len && data_start + declared_data <= len {
        return Ok(RepairOutcome {
            samples: declared_data / block_align,
            changed: false,
            truncated_bytes: 0,
        });
    }

    let present = len - data_start;
    let truncated_bytes = present % block_align;
    let data_len = present - truncated_bytes;
    let riff_len = data_start - 8 + data_len;
    let (Ok(data_len32), Ok(riff_len32)) = (u32::try_from(data_len), u32::try_from(riff_len)) else {
        return Err(WavError::TooLarge { file: name.clone() });
    };
    if truncated_bytes > 0 {
        file.set_len(data_start + data_len).map_err(io)?;
    }
    file.write_all_at(&data_len32.to_le_bytes(), data_start - 4).map_err(io)?;
    file.write_all_at(&riff_len32.to_le_bytes(), RIFF_SIZE_OFFSET).map_err(io)?;
    file.sync_all().map_err(io)?;
    Ok(RepairOutcome { samples: data_len / block_align, changed: true, truncated_bytes })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(tag: u16, channels: u16, rate: u32, bits: u16) -> Vec<u8> {
        let align = channels * bits / 8;
        let mut f = Vec::new();
        f.extend_from_slice(&tag.to_le_bytes());
        f.extend_from_slice(&channels.to_le_bytes());
        f.extend_from_slice(&rate.to_le_bytes());
        f.extend_from_slice(&(rate * u32::from(align)).to_le_bytes());
        f.extend_from_slice(&align.to_le_bytes());
        f.extend_from_slice(&bits.to_le_bytes());
        f
    }

    fn riff(chunks: &[(&[u8; 4], Vec<u8>)]) -> Vec<u8> {
        let mut body = b"WAVE".to_vec();
        for (id, data) in chunks {
            body.extend_from_slice(*id);
            body.extend_from_slice(&(data.len() as u32).to_le_bytes());
            body.extend_from_slice(data);
            if data.len() % 2 == 1 {
                body.push(0);
            }
        }
        let mut out = b"RIFF".to_vec();
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&body);
        out
    }

    #[test]
    fn canonical_header_round_trips() {
        let mut bytes = canonical_header(4).to_vec();
        bytes.extend_from_slice(&[1, 0, 0xFF, 0xFF]);
        let wav = parse_wav(&bytes, "t").unwrap();
        assert_eq!(wav.samples, vec![1, -1]);
        assert_eq!(wav.sample_rate, 8000);
        assert_eq!(wav.source_format, WavFormat::Pcm { bits: 16 });
    }

    #[test]
    fn float_and_wide_pcm_decode() {
        let f: Vec<u8> = [0.5f32, -1.0, 2.0, f32::NAN].iter().flat_map(|v| v.to_le_bytes()).collect();
        let wav = parse_wav(&riff(&[(b"fmt ", header(3, 1, 8000, 32)), (b"data", f)]), "f").unwrap();
        assert_eq!(wav.samples, vec![16384, -32768, 32767, 0]);
        let p24 = vec![0x00, 0x34, 0x12, 0xFF, 0xFF, 0xFF];
        let wav = parse_wav(&riff(&[(b"fmt ", header(1, 1, 8000, 24)), (b"data", p24)]), "p").unwrap();
        assert_eq!(wav.samples, vec![0x1234, -1]);
    }

    #[test]
    fn odd_sized_chunks_are_padded() {
        let bytes =
            riff(&[(b"junk", vec![1, 2, 3]), (b"fmt ", header(1, 1, 8000, 8)), (b"data", vec![128, 255, 0])]);
        let wav = parse_wav(&bytes, "odd").unwrap();
        assert_eq!(wav.samples, vec![0, 127 << 8, -128 << 8]);
    }
}
