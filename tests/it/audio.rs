//! WAV reading, writing, repair and the recording writer thread, through real files.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use switchboard::audio::{
    parse_wav, read_wav, repair_wav, to_8k, RecBlock, RecControl, RecDone, RecorderThread, Wav, WavError,
    WavFormat, WavWriter, REC_BLOCK,
};

/// A small deterministic generator, so the fuzz cases are reproducible without a crate.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn fmt_body(tag: u16, channels: u16, rate: u32, bits: u16) -> Vec<u8> {
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

/// A WAVE_FORMAT_EXTENSIBLE fmt body wrapping `code`.
fn fmt_extensible(code: u16, channels: u16, rate: u32, bits: u16) -> Vec<u8> {
    let mut f = fmt_body(0xFFFE, channels, rate, bits);
    f.extend_from_slice(&22u16.to_le_bytes());
    f.extend_from_slice(&bits.to_le_bytes());
    f.extend_from_slice(&0u32.to_le_bytes());
    f.extend_from_slice(&code.to_le_bytes());
    f.extend_from_slice(&[
        0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71,
    ]);
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

fn pcm16(samples: &[i16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

pub(crate) fn pcm16_wav(rate: u32, channels: u16, samples: &[i16]) -> Vec<u8> {
    riff(&[(b"fmt ", fmt_body(1, channels, rate, 16)), (b"data", pcm16(samples))])
}

fn err(bytes: &[u8]) -> String {
    match parse_wav(bytes, "prompt.wav") {
        Ok(w) => panic!("expected an error, decoded {} samples", w.samples.len()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn decodes_every_supported_format() {
    let wav = parse_wav(&pcm16_wav(8000, 1, &[0, 1000, -1000, 32767]), "m").unwrap();
    assert_eq!(wav.samples, vec![0, 1000, -1000, 32767]);
    assert_eq!(wav.source_format, WavFormat::Pcm { bits: 16 });
    assert_eq!(wav.source_channels, 1);

    // Stereo is averaged to mono.
    let wav = parse_wav(&pcm16_wav(16000, 2, &[100, 300, -32768, -32768, 32767, -32767]), "s").unwrap();
    assert_eq!(wav.samples, vec![200, -32768, 0]);
    assert_eq!(wav.sample_rate, 16000);

    // 8-bit PCM is unsigned around 128.
    let b = riff(&[(b"fmt ", fmt_body(1, 1, 8000, 8)), (b"data", vec![128, 0, 255, 192])]);
    assert_eq!(parse_wav(&b, "8").unwrap().samples, vec![0, -32768, 32512, 16384]);

    // G.711: the idle codes and the extremes.
    let b = riff(&[(b"fmt ", fmt_body(6, 1, 8000, 8)), (b"data", vec![0xD5, 0xAA, 0x2A])]);
    let wav = parse_wav(&b, "a").unwrap();
    assert_eq!(wav.samples, vec![8, 32256, -32256]);
    assert_eq!(wav.source_format, WavFormat::Alaw);
    let b = riff(&[(b"fmt ", fmt_body(7, 1, 8000, 8)), (b"data", vec![0xFF, 0x80, 0x00])]);
    let wav = parse_wav(&b, "u").unwrap();
    assert_eq!(wav.samples, vec![0, 32124, -32124]);
    assert_eq!(wav.source_format, WavFormat::Ulaw);

    // WAVE_FORMAT_EXTENSIBLE wrapping A-law and PCM.
    let b = riff(&[(b"fmt ", fmt_extensible(6, 1, 8000, 8)), (b"data", vec![0xD5, 0x55])]);
    assert_eq!(parse_wav(&b, "xa").unwrap().samples, vec![8, -8]);
    let b = riff(&[(b"fmt ", fmt_extensible(1, 2, 48000, 16)), (b"data", pcm16(&[10, 20]))]);
    let wav = parse_wav(&b, "xp").unwrap();
    assert_eq!(wav.samples, vec![15]);
    assert_eq!(wav.source_channels, 2);
}

#[test]
fn skips_unknown_chunks_and_padding() {
    let mut list = b"INFOISFT".to_vec();
    list.extend_from_slice(&5u32.to_le_bytes());
    list.extend_from_slice(b"sox\0\0");
    let b = riff(&[
        (b"LIST", list),
        (b"odd!", vec![1, 2, 3]),
        (b"fmt ", fmt_body(1, 1, 8000, 16)),
        (b"fact", vec![4, 0, 0, 0]),
        (b"data", pcm16(&[7, 8, 9])),
        (b"LIST", vec![0; 9]),
    ]);
    assert_eq!(parse_wav(&b, "l").unwrap().samples, vec![7, 8, 9]);

    // A data chunk before the fmt chunk is legal RIFF.
    let b = riff(&[(b"data", pcm16(&[5])), (b"fmt ", fmt_body(1, 1, 8000, 16))]);
    assert_eq!(parse_wav(&b, "r").unwrap().samples, vec![5]);

    // An 8-bit mono data chunk of odd length is followed by a pad byte.
    let b =
        riff(&[(b"fmt ", fmt_body(1, 1, 8000, 8)), (b"data", vec![128, 128, 128]), (b"junk", vec![0; 4])]);
    assert_eq!(parse_wav(&b, "p").unwrap().samples, vec![0, 0, 0]);

    // A streaming writer's unknown data length runs to the end of the file.
    let mut b = pcm16_wav(8000, 1, &[1, 2, 3]);
    let at = b.len() - 10;
    b[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(parse_wav(&b, "s").unwrap().samples, vec![1, 2, 3]);
}

#[test]
fn errors_name_the_file_and_the_defect() {
    let e = err(b"ID3\x04 this is an mp3 file really");
    assert!(e.contains("prompt.wav") && e.contains("not a RIFF file") && e.contains("ID3"), "{e}");

    let mut b = pcm16_wav(8000, 1, &[0]);
    b[8..12].copy_from_slice(b"AVI ");
    let e = err(&b);
    assert!(e.contains("prompt.wav") && e.contains("not a WAVE file") && e.contains("AVI"), "{e}");

    let e = err(&riff(&[(b"data", pcm16(&[1]))]));
    assert!(e.contains("prompt.wav") && e.contains("no \"fmt \" chunk"), "{e}");
    let e = err(&riff(&[(b"fmt ", fmt_body(1, 1, 8000, 16))]));
    assert!(e.contains("no \"data\" chunk"), "{e}");

    let full = pcm16_wav(8000, 1, &[1; 100]);
    let e = err(&full[..full.len() - 50]);
    assert!(e.contains("truncated data chunk") && e.contains("200 bytes expected, 150 present"), "{e}");
    let e = err(&full[..6]);
    assert!(e.contains("truncated RIFF header"), "{e}");

    let e = err(&riff(&[(b"fmt ", fmt_body(0x55, 1, 8000, 16)), (b"data", vec![])]));
    assert!(e.contains("unsupported WAVE format code 85"), "{e}");
    let e = err(&riff(&[(b"fmt ", fmt_body(1, 1, 8000, 12)), (b"data", vec![])]));
    assert!(e.contains("unsupported 12 bits per sample"), "{e}");
    let e = err(&riff(&[(b"fmt ", fmt_body(6, 1, 8000, 16)), (b"data", vec![])]));
    assert!(e.contains("unsupported 16 bits per sample for format code 6"), "{e}");
    let e = err(&riff(&[(b"fmt ", fmt_body(1, 0, 8000, 16)), (b"data", vec![])]));
    assert!(e.contains("zero channels"), "{e}");
    let e = err(&riff(&[(b"fmt ", fmt_body(1, 1, 0, 16)), (b"data", vec![])]));
    assert!(e.contains("sample rate of 0"), "{e}");
    let e = err(&riff(&[(b"fmt ", vec![1, 0, 1, 0]), (b"data", vec![])]));
    assert!(e.contains("malformed fmt chunk") && e.contains("4 bytes"), "{e}");
    let mut bad_guid = fmt_extensible(1, 1, 8000, 16);
    bad_guid[30] ^= 1;
    let e = err(&riff(&[(b"fmt ", bad_guid), (b"data", vec![])]));
    assert!(e.contains("sub-format"), "{e}");
    let mut bad_align = fmt_body(1, 2, 8000, 16);
    bad_align[12] = 3;
    let e = err(&riff(&[(b"fmt ", bad_align), (b"data", vec![])]));
    assert!(e.contains("block align is 3"), "{e}");

    let missing = Path::new("/nonexistent/dir/welcome.wav");
    let e = read_wav(missing).unwrap_err();
    assert!(matches!(e, WavError::Io { .. }));
    assert!(e.to_string().contains("/nonexistent/dir/welcome.wav"), "{e}");
}

#[test]
fn to_8k_passes_resamples_or_refuses() {
    let wav = parse_wav(&pcm16_wav(8000, 1, &[1, 2, 3]), "a").unwrap();
    assert_eq!(to_8k(wav).unwrap(), vec![1, 2, 3]);

    // One second of a 1 kHz tone at 48 kHz becomes one second at 8 kHz with the same peak.
    let tone: Vec<i16> = (0..48000)
        .map(|i| (8000.0 * (2.0 * std::f64::consts::PI * 1000.0 * f64::from(i) / 48000.0).sin()) as i16)
        .collect();
    let out = to_8k(parse_wav(&pcm16_wav(48000, 1, &tone), "t").unwrap()).unwrap();
    assert_eq!(out.len(), 8000);
    let peak = out[1000..7000].iter().map(|s| s.unsigned_abs()).max().unwrap();
    assert!((7900..=8100).contains(&peak), "peak {peak}");

    for rate in [7999, 6000, 96000, 1] {
        let wav = Wav {
            name: "slow.wav".into(),
            sample_rate: rate,
            samples: vec![0; 10],
            source_format: WavFormat::Pcm { bits: 16 },
            source_channels: 1,
        };
        let e = to_8k(wav).unwrap_err();
        assert!(matches!(e, WavError::UnsupportedRate { rate: r, .. } if r == rate));
        assert!(e.to_string().contains("slow.wav") && e.to_string().contains(&rate.to_string()));
    }
}

#[test]
fn never_panics_on_hostile_input() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let valid = [
        pcm16_wav(8000, 1, &[1, -2, 3, -4, 5]),
        pcm16_wav(44100, 2, &[1, -2, 3, -4]),
        riff(&[(b"LIST", vec![0; 7]), (b"fmt ", fmt_extensible(6, 1, 8000, 8)), (b"data", vec![1, 2, 3])]),
        riff(&[(b"fmt ", fmt_body(3, 1, 8000, 32)), (b"data", vec![0; 8])]),
        riff(&[(b"fmt ", fmt_body(1, 3, 22050, 24)), (b"data", vec![0; 18])]),
    ];
    let mut cases = 0;
    // Every truncation of every valid file.
    for v in &valid {
        for len in 0..=v.len() {
            let _ = parse_wav(&v[..len], "t").map(to_8k);
            cases += 1;
        }
    }
    // Random mutations of valid files, concentrated on the headers where sizes live.
    for _ in 0..20000 {
        let mut b = valid[rng.below(valid.len())].clone();
        for _ in 0..1 + rng.below(4) {
            let i = rng.below(b.len().min(64));
            b[i] = match rng.below(4) {
                0 => 0,
                1 => 0xFF,
                2 => b[i] ^ (1 << rng.below(8)),
                _ => rng.next() as u8,
            };
        }
        if rng.below(3) == 0 {
            let cut = rng.below(b.len() + 1);
            b.truncate(cut);
        }
        let _ = parse_wav(&b, "m").map(to_8k);
        cases += 1;
    }
    // Pure noise, with and without a plausible prefix.
    for _ in 0..5000 {
        let len = rng.below(200);
        let mut b: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if rng.below(2) == 0 && b.len() >= 12 {
            b[0..4].copy_from_slice(b"RIFF");
            b[8..12].copy_from_slice(b"WAVE");
        }
        let _ = parse_wav(&b, "n");
        cases += 1;
    }
    assert!(cases > 25000);
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn ramp(n: usize) -> Vec<i16> {
    (0..n).map(|i| (i % 2000) as i16 - 1000).collect()
}

#[test]
fn writer_round_trips() {
    let dir = tmp();
    let path = dir.path().join("a.wav");
    let mut w = WavWriter::create(&path).unwrap();
    let audio = ramp(50_000);
    for chunk in audio.chunks(160) {
        w.write(chunk).unwrap();
    }
    assert_eq!(w.samples(), 50_000);
    assert_eq!(w.finish().unwrap(), 50_000);
    let wav = read_wav(&path).unwrap();
    assert_eq!(wav.sample_rate, 8000);
    assert_eq!(wav.source_channels, 1);
    assert_eq!(wav.samples, audio);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 44 + 100_000);
    // A finished file needs no repair.
    let r = repair_wav(&path).unwrap();
    assert!(!r.changed);
    assert_eq!(r.samples, 50_000);
}

#[test]
fn flushed_then_killed_file_is_valid() {
    let dir = tmp();
    let path = dir.path().join("k.wav");
    let mut w = WavWriter::create(&path).unwrap();
    w.write(&ramp(8000)).unwrap();
    w.flush().unwrap();
    // Leaking the writer skips its destructor, as a SIGKILL would.
    std::mem::forget(w);
    assert_eq!(read_wav(&path).unwrap().samples, ramp(8000));
    assert!(!repair_wav(&path).unwrap().changed);
}

#[test]
fn killed_between_flushes_is_repaired() {
    let dir = tmp();
    let path = dir.path().join("r.wav");
    let mut w = WavWriter::create(&path).unwrap();
    w.write(&ramp(1000)).unwrap();
    w.flush().unwrap();
    // Enough to overflow the writer's buffer, so it reaches the file without a header update.
    let more = ramp(40_000);
    w.write(&more).unwrap();
    std::mem::forget(w);
    let on_disk = std::fs::metadata(&path).unwrap().len();
    assert!(on_disk > 44 + 2000, "the buffer should have spilled to the file");
    // The stale header describes only the first flush.
    assert_eq!(read_wav(&path).unwrap().samples.len(), 1000);

    let r = repair_wav(&path).unwrap();
    assert!(r.changed);
    assert_eq!(r.truncated_bytes, 0);
    let expected = (on_disk - 44) / 2;
    assert_eq!(r.samples, expected);
    let wav = read_wav(&path).unwrap();
    assert_eq!(wav.samples.len() as u64, expected);
    assert_eq!(&wav.samples[..1000], &ramp(1000)[..]);
    assert_eq!(&wav.samples[1000..], &more[..wav.samples.len() - 1000]);
    assert!(!repair_wav(&path).unwrap().changed, "repair is idempotent");
}

#[test]
fn repair_fixes_corrupt_sizes_and_half_samples() {
    let dir = tmp();
    let path = dir.path().join("c.wav");
    let mut w = WavWriter::create(&path).unwrap();
    w.write(&[1, 2, 3, 4]).unwrap();
    w.finish().unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    // Garbage sizes and half of a fifth sample.
    bytes[4..8].copy_from_slice(&0xDEAD_BEEFu32.to_le_bytes());
    bytes[40..44].copy_from_slice(&0u32.to_le_bytes());
    bytes.push(0x55);
    std::fs::write(&path, &bytes).unwrap();

    let r = repair_wav(&path).unwrap();
    assert_eq!(r, switchboard::audio::RepairOutcome { samples: 4, changed: true, truncated_bytes: 1 });
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 44 + 8);
    assert_eq!(read_wav(&path).unwrap().samples, vec![1, 2, 3, 4]);

    // A data size larger than the file is cut down to what is there.
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[40..44].copy_from_slice(&1_000_000u32.to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    assert!(read_wav(&path).is_err());
    assert_eq!(repair_wav(&path).unwrap().samples, 4);
    assert_eq!(read_wav(&path).unwrap().samples, vec![1, 2, 3, 4]);
}

#[test]
fn repair_handles_empty_and_foreign_files() {
    let dir = tmp();
    let empty = dir.path().join("empty.wav");
    std::fs::write(&empty, b"").unwrap();
    assert_eq!(repair_wav(&empty).unwrap().samples, 0);
    assert!(read_wav(&empty).unwrap().samples.is_empty());

    let short = dir.path().join("short.wav");
    std::fs::write(&short, b"RIFF").unwrap();
    assert!(matches!(repair_wav(&short), Err(WavError::Unrepairable { .. })));

    let text = dir.path().join("notes.wav");
    std::fs::write(&text, b"these are not the samples you are looking for").unwrap();
    let e = repair_wav(&text).unwrap_err();
    assert!(matches!(e, WavError::NotRiff { .. }), "{e}");
    assert_eq!(std::fs::read(&text).unwrap(), b"these are not the samples you are looking for");

    let no_data = dir.path().join("nodata.wav");
    std::fs::write(&no_data, riff(&[(b"fmt ", fmt_body(1, 1, 8000, 16))])).unwrap();
    assert!(matches!(repair_wav(&no_data), Err(WavError::Unrepairable { .. })));

    assert!(matches!(repair_wav(&dir.path().join("gone.wav")), Err(WavError::Io { .. })));
}

#[test]
fn dropping_a_writer_flushes_it() {
    let dir = tmp();
    let path = dir.path().join("d.wav");
    let mut w = WavWriter::create(&path).unwrap();
    w.write(&[9; 100]).unwrap();
    drop(w);
    assert_eq!(read_wav(&path).unwrap().samples, vec![9; 100]);
}

// ---- the recorder thread ----

fn block(slot: u16, value: i16) -> RecBlock {
    RecBlock { slot, samples: [value; REC_BLOCK] }
}

struct Rig {
    dir: tempfile::TempDir,
    producer: rtrb::Producer<RecBlock>,
    control: mpsc::Sender<RecControl>,
    done: mpsc::Receiver<RecDone>,
    thread: RecorderThread,
}

fn rig() -> Rig {
    let dir = tmp();
    let (producer, consumer) = rtrb::RingBuffer::new(256);
    let (control, control_rx) = mpsc::channel();
    let (done_tx, done) = mpsc::channel();
    let thread = RecorderThread::spawn(dir.path().to_owned(), consumer, control_rx, move |d| {
        let _ = done_tx.send(d);
    })
    .unwrap();
    Rig { dir, producer, control, done, thread }
}

fn rel(vocid: &str) -> PathBuf {
    PathBuf::from("recordings/2026/11/24").join(format!("{vocid}.wav"))
}

#[test]
fn recorder_writes_interleaved_slots_to_their_files() {
    let mut r = rig();
    r.control.send(RecControl::Open { slot: 1, vocid: "v1".into(), path: rel("v1") }).unwrap();
    r.control.send(RecControl::Open { slot: 2, vocid: "v2".into(), path: rel("v2") }).unwrap();
    // The blocks follow the Opens at once: the recorder must not drop them.
    for i in 0..50 {
        r.producer.push(block(1, i)).unwrap();
        r.producer.push(block(2, -i)).unwrap();
        if i % 10 == 0 {
            r.producer.push(block(9, 0)).unwrap();
        }
    }
    r.control.send(RecControl::Close { slot: 1 }).unwrap();
    r.control.send(RecControl::Close { slot: 2 }).unwrap();
    let mut done: Vec<RecDone> =
        (0..2).map(|_| r.done.recv_timeout(Duration::from_secs(5)).unwrap()).collect();
    done.sort_by_key(|d| d.slot);
    for (d, sign) in done.iter().zip([1i16, -1]) {
        assert!(d.result.is_ok(), "{:?}", d.result);
        assert_eq!(d.samples, 50 * REC_BLOCK as u64);
        let wav = read_wav(&r.dir.path().join(&d.path)).unwrap();
        let expected: Vec<i16> = (0..50).flat_map(|i| [sign * i; REC_BLOCK]).collect();
        assert_eq!(wav.samples, expected, "slot {}", d.slot);
    }
    assert_eq!(done[0].vocid, "v1");
    assert_eq!(done[0].path, rel("v1"));
    let stats = r.thread.stats();
    assert_eq!(stats.blocks_written(), 100);
    assert_eq!(stats.blocks_unknown_slot(), 5);
    assert_eq!(stats.files_failed(), 0);
    drop(r.control);
    r.thread.join().unwrap();
}

#[test]
fn recorder_flushes_while_recording_and_finishes_on_shutdown() {
    let mut r = rig();
    r.control.send(RecControl::Open { slot: 3, vocid: "live".into(), path: rel("live") }).unwrap();
    let path = r.dir.path().join(rel("live"));
    for i in 0..25 {
        r.producer.push(block(3, i)).unwrap();
    }
    // Within about a second the file on disk must hold the audio with a valid header, even
    // though the recording is still open: that is what survives a kill -9.
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        if let Ok(wav) = read_wav(&path) {
            if wav.samples.len() == 25 * REC_BLOCK {
                break;
            }
        }
        assert!(Instant::now() < deadline, "the recorder did not flush within 3 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Dropping the control channel shuts the thread down, finishing the open file.
    r.producer.push(block(3, 99)).unwrap();
    drop(r.control);
    let d = r.done.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(d.vocid, "live");
    assert_eq!(d.samples, 26 * REC_BLOCK as u64);
    assert!(d.result.is_ok());
    r.thread.join().unwrap();
    assert_eq!(read_wav(&path).unwrap().samples.len(), 26 * REC_BLOCK);
}

#[test]
fn recorder_reports_files_it_cannot_create() {
    let r = rig();
    // A regular file where a directory should be makes the Open fail.
    std::fs::write(r.dir.path().join("recordings"), b"x").unwrap();
    r.control.send(RecControl::Open { slot: 1, vocid: "bad".into(), path: rel("bad") }).unwrap();
    let d = r.done.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(d.vocid, "bad");
    assert!(d.result.is_err());
    assert_eq!(r.thread.stats().files_failed(), 1);
    drop(r.control);
    r.thread.join().unwrap();
}

#[test]
fn recorder_reopening_a_slot_finishes_the_old_file() {
    let mut r = rig();
    r.control.send(RecControl::Open { slot: 1, vocid: "a".into(), path: rel("a") }).unwrap();
    r.producer.push(block(1, 1)).unwrap();
    // Give the thread time to write the first block to the first file.
    std::thread::sleep(Duration::from_millis(100));
    r.control.send(RecControl::Open { slot: 1, vocid: "b".into(), path: rel("b") }).unwrap();
    r.producer.push(block(1, 2)).unwrap();
    let first = r.done.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(first.vocid, "a");
    assert_eq!(first.samples, REC_BLOCK as u64);
    r.control.send(RecControl::Close { slot: 1 }).unwrap();
    let second = r.done.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(second.vocid, "b");
    assert_eq!(read_wav(&r.dir.path().join(rel("b"))).unwrap().samples, vec![2; REC_BLOCK]);
}

#[test]
fn recording_paths_are_dated_in_utc() {
    let at = time::macros::datetime!(2026-11-24 23:30 -05:00);
    assert_eq!(
        switchboard::audio::recording_rel_path("20261125043000-000001", at),
        PathBuf::from("recordings/2026/11/25/20261125043000-000001.wav")
    );
}
