//! Client side of the commands that talk to a running daemon, and the offline DSP tools.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};

use crate::control::protocol::{NoticeLine, Request, Response};
use crate::paths;

fn connect(data_dir: &Path) -> Result<UnixStream> {
    let path = paths::socket(data_dir);
    UnixStream::connect(&path).with_context(|| {
        format!(
            "cannot reach the daemon at {} (is `switchboard run` running with this data directory?)",
            path.display()
        )
    })
}

/// Sends one request, prints the result, and with `follow` prints notices until the daemon
/// closes the stream.
pub fn request(data_dir: &Path, request: &Request, follow: bool) -> Result<ExitCode> {
    let mut stream = connect(data_dir)?;
    let mut line = serde_json::to_string(request)?;
    line.push('\n');
    stream.write_all(line.as_bytes()).context("cannot send the request")?;
    let mut lines = BufReader::new(stream).lines();
    let first = lines.next().context("the daemon closed the connection without answering")??;
    let response: Response = serde_json::from_str(&first).context("the daemon sent a malformed answer")?;
    if !response.ok {
        bail!("{}", response.error.unwrap_or_else(|| "the daemon refused the request".into()));
    }
    if let Some(result) = &response.result {
        if !result.is_null() {
            println!("{}", serde_json::to_string_pretty(result)?);
        }
    }
    if follow {
        for line in lines {
            let line = line.context("lost the connection to the daemon")?;
            match serde_json::from_str::<NoticeLine>(&line) {
                Ok(n) => println!("{}", serde_json::to_string(&n.notice)?),
                Err(_) => println!("{line}"),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn status(data_dir: &Path) -> Result<ExitCode> {
    request(data_dir, &Request::Status, false)
}

pub fn cdr(data_dir: &Path, limit: u32) -> Result<ExitCode> {
    request(data_dir, &Request::CdrList { limit }, false)
}

/// The digits detected in a WAV file, as one string.
pub fn dtmf_in_wav(file: &Path) -> Result<String> {
    let wav = crate::audio::wav::read_wav(file)?;
    let samples = crate::audio::wav::to_8k(wav)?;
    let mut detector = crate::dsp::dtmf::DtmfDetector::new();
    let mut digits = String::new();
    detector.process(&samples, |d| digits.push(d));
    Ok(digits)
}

/// Writes DTMF digits (100 ms tones, 100 ms pauses, -10 dBm0) to an 8 kHz WAV file.
pub fn gen_dtmf(digits: &str, out: &Path) -> Result<()> {
    let mut samples = Vec::new();
    let mut generator = crate::dsp::dtmf::DtmfGenerator::new(-10.0, 100, 100);
    // Queue in chunks so that strings longer than the generator's queue still work.
    let chars: Vec<char> = digits.chars().collect();
    for chunk in chars.chunks(16) {
        let chunk: String = chunk.iter().collect();
        generator.push_digits(&chunk).map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut block = [0i16; 160];
        loop {
            block.fill(0);
            let n = generator.fill(&mut block);
            samples.extend_from_slice(&block);
            if n < block.len() && generator.is_idle() {
                break;
            }
        }
    }
    let mut writer = crate::audio::wav::WavWriter::create(out)?;
    writer.write(&samples)?;
    writer.finish()?;
    Ok(())
}
