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

/// Sends one request and returns its result.
fn ask(data_dir: &Path, request: &Request) -> Result<serde_json::Value> {
    let mut stream = connect(data_dir)?;
    let mut line = serde_json::to_string(request)?;
    line.push('\n');
    stream.write_all(line.as_bytes()).context("cannot send the request")?;
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer).context("lost the connection to the daemon")?;
    let response: Response =
        serde_json::from_str(&answer).context("the daemon closed the connection without a valid answer")?;
    if !response.ok {
        bail!("{}", response.error.unwrap_or_else(|| "the daemon refused the request".into()));
    }
    Ok(response.result.unwrap_or(serde_json::Value::Null))
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

/// Runs the maintenance shell: one command line (`run`), printing its output; or a session
/// on this terminal, raw (no echo, byte at a time) when stdin is a terminal, so that the
/// shell's line editing, history and completion work as on a serial console.
pub fn shell(data_dir: &Path, run: Option<String>) -> Result<ExitCode> {
    if let Some(line) = run {
        let result = ask(data_dir, &Request::Shell { run: Some(line) })?;
        for line in result["lines"].as_array().into_iter().flatten() {
            println!("{}", line.as_str().unwrap_or_default());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut stream = connect(data_dir)?;
    let mut line = serde_json::to_string(&Request::Shell { run: None })?;
    line.push('\n');
    stream.write_all(line.as_bytes()).context("cannot send the request")?;
    // The answer line comes first; the shell's bytes follow it.
    let mut first = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        let n = std::io::Read::read(&mut stream, &mut byte).context("lost the connection to the daemon")?;
        if n == 0 || byte[0] == b'\n' {
            break;
        }
        first.push(byte[0]);
    }
    let response: Response = serde_json::from_slice(&first).context("the daemon sent a malformed answer")?;
    if !response.ok {
        bail!("{}", response.error.unwrap_or_else(|| "the daemon refused the shell".into()));
    }
    let _raw = RawTerminal::enter();
    let mut from_daemon = stream.try_clone().context("cannot share the connection")?;
    let printer = std::thread::spawn(move || {
        let mut out = std::io::stdout();
        let mut buf = [0u8; 4096];
        loop {
            match std::io::Read::read(&mut from_daemon, &mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if out.write_all(&buf[..n]).and_then(|()| out.flush()).is_err() {
                        return;
                    }
                }
            }
        }
    });
    let mut stdin = std::io::stdin();
    let mut buf = [0u8; 1024];
    loop {
        if printer.is_finished() {
            break;
        }
        match std::io::Read::read(&mut stdin, &mut buf) {
            Ok(0) | Err(_) => {
                // End of input (a script piped in): let the daemon finish answering.
                let _ = stream.shutdown(std::net::Shutdown::Write);
                break;
            }
            Ok(n) => {
                if stream.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = printer.join();
    Ok(ExitCode::SUCCESS)
}

/// Puts stdin in raw mode while alive (when it is a terminal), and restores it after.
struct RawTerminal {
    saved: Option<nix::sys::termios::Termios>,
}

impl RawTerminal {
    fn enter() -> RawTerminal {
        use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
        let stdin = std::io::stdin();
        let Ok(saved) = tcgetattr(&stdin) else { return RawTerminal { saved: None } };
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        // Keep output processing so that the daemon's CR LF line ends print normally.
        raw.output_flags = saved.output_flags;
        if tcsetattr(&stdin, SetArg::TCSANOW, &raw).is_err() {
            return RawTerminal { saved: None };
        }
        RawTerminal { saved: Some(saved) }
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ = nix::sys::termios::tcsetattr(std::io::stdin(), nix::sys::termios::SetArg::TCSANOW, saved);
        }
    }
}

/// Prints the daemon's state for a person, or as JSON.
pub fn status(data_dir: &Path, json: bool) -> Result<ExitCode> {
    let s = ask(data_dir, &Request::Status {})?;
    if json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(ExitCode::SUCCESS);
    }
    let e = &s["engine"];
    let n = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
    let ticks = n(&e["ticks"]);
    println!(
        "switchboard {} on card {}",
        s["version"].as_str().unwrap_or("?"),
        s["card"].as_str().unwrap_or("?")
    );
    println!(
        "media thread: {}, {} ticks ({:.0} s), load {:.1} %, longest tick {:.2} ms",
        if s["realtime_scheduling"] == true { "SCHED_FIFO" } else { "normal priority" },
        ticks,
        ticks as f64 / 50.0,
        n(&e["busy_ns"]) as f64 / (ticks.max(1) as f64 * 20e6) * 100.0,
        n(&e["max_tick_ns"]) as f64 / 1e6
    );
    println!(
        "losses: {} deadline misses, {} events, {} commands, {} recording blocks, {} card events",
        n(&e["deadline_misses"]),
        n(&e["events_dropped"]),
        n(&e["commands_dropped"]),
        n(&e["recording_blocks_dropped"]),
        n(&e["card_events_lost"])
    );
    println!(
        "recorder: {} blocks written, {} without a recording, {} files failed; simulator: {} reports lost",
        n(&s["recorder"]["blocks_written"]),
        n(&s["recorder"]["blocks_unknown_slot"]),
        n(&s["recorder"]["files_failed"]),
        n(&s["sim_reports_dropped"])
    );
    println!("agents: {} sessions on port {}", n(&s["agent_sessions"]), n(&s["agent_port"]));
    let mut kinds: Vec<(String, u64)> = Vec::new();
    for p in s["ports"].as_array().into_iter().flatten() {
        let kind = p["kind"].as_str().unwrap_or("?").to_string();
        match kinds.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, c)) => *c += 1,
            None => kinds.push((kind, 1)),
        }
    }
    let kinds: Vec<String> = kinds.iter().map(|(k, c)| format!("{c} {k}")).collect();
    println!("ports: {}", kinds.join(", "));
    let calls = s["calls"].as_array().cloned().unwrap_or_default();
    println!("calls in progress: {}", calls.len());
    for c in calls {
        println!(
            "  {:<18} trunk port {:<4} {}  {}",
            c["call"].as_str().unwrap_or("?"),
            n(&c["trunk"]),
            match c["seat"].as_u64() {
                Some(seat) => format!("talking with seat port {seat}"),
                None => "ringing".to_string(),
            },
            c["vocid"].as_str().map(|v| format!("recording {v}")).unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints the most recent CDRs as a table, or as JSON.
pub fn cdr(data_dir: &Path, limit: u32, json: bool) -> Result<ExitCode> {
    let cdrs = ask(data_dir, &Request::CdrList { limit })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&cdrs)?);
        return Ok(ExitCode::SUCCESS);
    }
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("-").to_string();
    let port = |v: &serde_json::Value| v.as_u64().map(|p| p.to_string()).unwrap_or_else(|| "-".into());
    println!(
        "{:<18} {:<24} {:<14} {:>5} {:>5} {:<11} {:>7}  {:<22} cause",
        "call", "start (UTC)", "caller", "trunk", "seat", "disposition", "talk s", "vocid"
    );
    for c in cdrs.as_array().into_iter().flatten() {
        println!(
            "{:<18} {:<24} {:<14} {:>5} {:>5} {:<11} {:>7}  {:<22} {}",
            text(&c["call_id"]),
            text(&c["start"]),
            text(&c["caller"]),
            port(&c["trunk_port"]),
            port(&c["seat_port"]),
            text(&c["disposition"]),
            c["talk_ms"].as_i64().map(|t| format!("{:.1}", t as f64 / 1000.0)).unwrap_or_else(|| "-".into()),
            text(&c["vocid"]),
            text(&c["cause"]),
        );
    }
    Ok(ExitCode::SUCCESS)
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
