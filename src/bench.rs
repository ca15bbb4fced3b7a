//! `switchboard bench media`: the per-channel pipeline on the simulated card.
//!
//! Every channel receives a looping test signal (noise at speech level with DTMF digits in
//! it) and runs the full receive pipeline: G.711 decode, DTMF detection, call-progress tone
//! detection, and the recording tap, whose blocks a separate thread drains. The first run is
//! free-running and reports channels per core (seconds of audio processed per CPU second of
//! the engine thread, times channels). The second paces ticks in real time on a real-time
//! thread and reports deadline misses.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use switchboard_driver_api::{Block, ChannelInfo, Pacing, BLOCK_SAMPLES};
use switchboard_driver_sim::{FarAction, FarEnd, FarLine, SimCard, SimConfig};

use crate::audio::recorder::RecBlock;
use crate::dsp::dtmf::DtmfGenerator;
use crate::dsp::g711;
use crate::media::{spawn, Engine, EngineCmd, EngineConfig, EngineEnds, Prompts};

/// Seconds of looping test signal.
const SIGNAL_SECONDS: usize = 8;

/// A far end that plays a pre-encoded signal, each channel at its own offset.
struct LoopFarEnd {
    signal: Vec<u8>,
    offsets: Vec<usize>,
}

impl LoopFarEnd {
    fn new(channels: usize) -> LoopFarEnd {
        let len = SIGNAL_SECONDS * 8000;
        let mut linear = vec![0i16; len];
        // Pseudo-random noise around -25 dBm0, as a stand-in for speech energy.
        let mut seed: u32 = 0x1234_5678;
        for s in linear.iter_mut() {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            *s = ((seed >> 16) as i16) >> 5;
        }
        // A digit every second.
        let mut generator = DtmfGenerator::new(-10.0, 80, 920);
        let _ = generator.push_digits("12345678");
        let mut digits = vec![0i16; len];
        for chunk in digits.chunks_mut(BLOCK_SAMPLES) {
            generator.fill(chunk);
        }
        for (s, d) in linear.iter_mut().zip(&digits) {
            *s = s.saturating_add(*d);
        }
        let mut signal = vec![0u8; len];
        g711::encode_block(switchboard_driver_api::Law::Alaw, &linear, &mut signal);
        let offsets = (0..channels).map(|c| (c * 7 * BLOCK_SAMPLES) % len).collect();
        LoopFarEnd { signal, offsets }
    }
}

impl FarEnd for LoopFarEnd {
    fn tick(&mut self, ch: &ChannelInfo, _: FarLine, _: &Block, say: &mut Block) -> FarAction {
        let i = usize::from(ch.id.0);
        let offset = self.offsets[i];
        say.copy_from_slice(&self.signal[offset..offset + BLOCK_SAMPLES]);
        self.offsets[i] = (offset + BLOCK_SAMPLES) % self.signal.len();
        FarAction::None
    }
}

struct Rig {
    engine: Engine<SimCard<LoopFarEnd>>,
    ends: EngineEnds,
    drained: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    drain: std::thread::JoinHandle<()>,
}

fn rig(channels: u16, pacing: Pacing, echo: bool) -> Rig {
    let sim = SimConfig {
        trunk_ports: channels % 30,
        seat_ports: 0,
        e1_spans: channels / 30,
        pacing,
        ..SimConfig::default()
    };
    let info = switchboard_driver_sim::describe(&sim);
    let card = SimCard::new(sim, LoopFarEnd::new(info.channels.len()));
    let (rec_tx, mut rec_rx) = rtrb::RingBuffer::<RecBlock>::new(usize::from(channels) * 50);
    let config = EngineConfig {
        realtime: pacing == Pacing::RealTime,
        echo_canceller: echo,
        ..EngineConfig::default()
    };
    let (engine, mut ends) = Engine::new(card, &config, Arc::new(Prompts::default()), Some(rec_tx));
    for c in info.channels.iter().filter(|c| c.kind.carries_audio()) {
        let _ = ends.commands.push(EngineCmd::RecordStart { channel: c.id, slot: c.id.0 });
    }
    let drained = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (d, s) = (drained.clone(), stop.clone());
    let drain = std::thread::spawn(move || {
        while !s.load(Ordering::Relaxed) {
            let mut n = 0;
            while rec_rx.pop().is_ok() {
                n += 1;
            }
            d.fetch_add(n, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    Rig { engine, ends, drained, stop, drain }
}

fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes a timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Runs the benchmark and prints its figures.
pub fn media(channels: u16, seconds: f64, realtime: bool, echo: bool) -> Result<()> {
    let ticks = (seconds * 50.0).ceil() as u64;

    // Free-running throughput.
    let mut r = rig(channels, Pacing::FreeRunning, echo);
    let mut digits = 0u64;
    let cpu0 = thread_cpu_time();
    let wall0 = Instant::now();
    for _ in 0..ticks {
        r.engine.tick().context("card tick failed")?;
        while let Ok(ev) = r.ends.events.pop() {
            if matches!(ev, crate::media::EngineEvent::Dtmf { .. }) {
                digits += 1;
            }
        }
    }
    let cpu = thread_cpu_time().saturating_sub(cpu0).as_secs_f64();
    let wall = wall0.elapsed().as_secs_f64();
    r.stop.store(true, Ordering::Relaxed);
    let _ = r.drain.join();
    let audio_seconds = ticks as f64 / 50.0;
    let per_core = f64::from(channels) * audio_seconds / cpu.max(1e-9);
    println!(
        "media pipeline: G.711 decode + DTMF + call-progress tones + recording tap + encode (echo canceller {})",
        if echo { "on, 128 taps" } else { "off" }
    );
    println!(
        "free-running: {channels} channels x {audio_seconds:.1} s of audio in {cpu:.3} s CPU ({wall:.3} s wall)"
    );
    println!("  channels per core: {per_core:.0}");
    println!("  digits detected: {digits} (expected about {})", u64::from(channels) * (ticks / 50));
    println!("  recording blocks handed to the writer: {}", r.drained.load(Ordering::Relaxed));
    let s = r.ends.stats.snapshot();
    println!(
        "  events dropped: {}  recording blocks dropped: {}",
        s.events_dropped, s.recording_blocks_dropped
    );

    if realtime {
        let r = rig(channels, Pacing::RealTime, echo);
        let Rig { engine, ends, drained, stop, drain } = r;
        let stats = ends.stats.clone();
        let mut handle = spawn(engine, ends, "bench-media", 50).context("cannot start the engine thread")?;
        let rt = handle.realtime_scheduling;
        let until = Instant::now() + Duration::from_secs_f64(seconds);
        while Instant::now() < until {
            while handle.poll_event().is_some() {}
            std::thread::sleep(Duration::from_millis(10));
        }
        handle.stop();
        stop.store(true, Ordering::Relaxed);
        let _ = drain.join();
        let s = stats.snapshot();
        let load = s.busy_ns as f64 / (s.ticks.max(1) as f64 * 20e6) * 100.0;
        println!(
            "real-time: {channels} channels for {seconds:.0} s ({}): {} ticks, {} deadline misses, \
             max tick {:.3} ms, mean load {load:.1} % of one core",
            if rt { "SCHED_FIFO" } else { "normal priority: SCHED_FIFO not permitted" },
            s.ticks,
            s.deadline_misses,
            s.max_tick_ns as f64 / 1e6
        );
        println!(
            "  recording blocks handed to the writer: {}  dropped: {}  events dropped: {}",
            drained.load(Ordering::Relaxed),
            s.recording_blocks_dropped,
            s.events_dropped
        );
    }
    Ok(())
}

/// `switchboard bench agents`: a daemon on the simulated card with `agents` seats, each with
/// a logged-in agent connected over TCP, and `calls_per_second` inbound calls. Reports the
/// time from the ring on the card (the trunk starts ringing, stamped by the simulated card
/// with CLOCK_MONOTONIC) to the Ring event read by the agent's client, then the rate of
/// actions one connection can have answered, and the daemon's memory per session.
pub fn agents(agents: u16, calls_per_second: f64, seconds: f64) -> Result<()> {
    use crate::agent::client::AgentClient;
    use crate::agent::protocol::EventKind;
    use crate::agent::tags::Tags;

    // Each call holds a trunk for about 4.5 s (caller id, ring, 1 s of talk, release).
    let trunks = ((calls_per_second * 5.0).ceil() as u16).clamp(4, 1024);
    let seats = agents.max(1);
    let dir = tempdir_in_tmp()?;
    let config = format!(
        "[card]\ndriver = \"sim\"\n[sim]\ntrunk_ports = {trunks}\nseat_ports = {seats}\nseat_answer_delay_ms = 300\n\
         [engine]\nrealtime_priority = 50\n[calls]\nrecord = false\n\
         [[route]]\nname = \"bench\"\ntrunks = [{}]\nseats = [{}]\nstrategy = \"round-robin\"\n\
         [agent]\nlisten = \"127.0.0.1:0\"\nwrap_up_s = 0\nmax_sessions = {}\n[log]\nlevel = \"warn\"\n",
        (1..=trunks).map(|p| p.to_string()).collect::<Vec<_>>().join(", "),
        (trunks + 1..=trunks + seats).map(|p| p.to_string()).collect::<Vec<_>>().join(", "),
        u32::from(seats) + 16,
    );
    let config_path = dir.join("bench.toml");
    std::fs::write(&config_path, config)?;

    // Accounts: one argon2 hash shared by every bench agent, to keep set-up fast.
    let password = "bench-password-1";
    {
        let store = crate::store::Store::open(&crate::paths::database(&dir))?;
        let hash = crate::accounts::hash_password(password).map_err(|e| anyhow::anyhow!("{e}"))?;
        let now = time::OffsetDateTime::now_utc();
        for a in 0..seats {
            let record = crate::store::AgentRecord {
                id: format!("b{a}"),
                name: format!("Bench {a}"),
                role: crate::store::Role::Agent,
                password_hash: hash.clone(),
                disabled: false,
                created_utc: crate::store::format_utc(now),
                updated_utc: crate::store::format_utc(now),
            };
            let audit =
                crate::store::AuditEntry::new(now, "bench", "user.add", crate::store::AuditResult::Ok);
            store.agent_put(record, audit).wait()?;
        }
    }

    let exe = std::env::current_exe().context("cannot find the switchboard binary")?;
    let mut child = std::process::Command::new(exe)
        .args(["run", "--config"])
        .arg(&config_path)
        .arg("--data-dir")
        .arg(&dir)
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .context("cannot start the daemon")?;
    let result = run_agents_bench(&dir, child.id(), trunks, seats, password, calls_per_second, seconds);
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    return result;

    fn tempdir_in_tmp() -> Result<std::path::PathBuf> {
        let dir = std::env::temp_dir().join(format!("switchboard-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    fn rss_kib(pid: u32) -> u64 {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            })
            .unwrap_or(0)
    }

    fn run_agents_bench(
        dir: &std::path::Path,
        pid: u32,
        trunks: u16,
        seats: u16,
        password: &str,
        calls_per_second: f64,
        seconds: f64,
    ) -> Result<()> {
        use std::io::{BufRead, BufReader, Write};
        // Wait for the control socket, then ask for the agent port.
        let socket = crate::paths::socket(dir);
        let deadline = Instant::now() + Duration::from_secs(20);
        let control = loop {
            if let Ok(s) = std::os::unix::net::UnixStream::connect(&socket) {
                break s;
            }
            if Instant::now() > deadline {
                anyhow::bail!("the daemon did not start");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut w = control.try_clone()?;
        let mut r = BufReader::new(control);
        w.write_all(b"{\"cmd\":\"status\"}\n")?;
        let mut line = String::new();
        r.read_line(&mut line)?;
        let status: serde_json::Value = serde_json::from_str(&line)?;
        let port = status["result"]["agent_port"].as_u64().context("no agent port")?;
        let addr = format!("127.0.0.1:{port}");
        let rss_before = rss_kib(pid);

        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        runtime.block_on(async move {
            // Connect and log in every agent. Memory is measured between the first and the
            // second half, so that what the first logins leave behind (argon2's work memory
            // kept by the allocator) does not count as per-session cost.
            let (ring_tx, mut ring_rx) = tokio::sync::mpsc::unbounded_channel::<(String, u64)>();
            let mut tasks = Vec::new();
            let half = seats / 2;
            let mut rss_half = rss_before;
            for a in 0..seats {
                if a == half {
                    rss_half = rss_kib(pid);
                }
                let mut c = AgentClient::connect(addr.as_str()).await?;
                c.login(&format!("b{a}"), password).await?;
                c.open_app(trunks + 1 + a).await?;
                let tx = ring_tx.clone();
                tasks.push(tokio::spawn(async move {
                    while let Ok(e) = c.next_event_no_timeout().await {
                        if e.event == EventKind::Ring {
                            let now = crate::sim::monotonic_ns();
                            let caller = Tags::parse(&e.s_param).ok().and_then(|t| t.get("CALLERID").map(String::from));
                            if let Some(caller) = caller {
                                let _ = tx.send((caller, now));
                            }
                        }
                    }
                }));
            }
            drop(ring_tx);
            let rss_after = rss_kib(pid);
            println!(
                "agents: {seats} logged in; daemon RSS {rss_before} KiB before, {rss_half} KiB at {half}, {rss_after} KiB at {seats}: \
                 {:.1} KiB per session",
                (rss_after.saturating_sub(rss_half)) as f64 / f64::from((seats - half).max(1))
            );

            // Watch the far ends for the ring instants, then place calls at the rate.
            let mut watch = tokio::net::UnixStream::connect(crate::paths::socket(dir)).await?;
            tokio::io::AsyncWriteExt::write_all(&mut watch, b"{\"cmd\":\"watch\"}\n").await?;
            let (ring_ns_tx, mut ring_ns_rx) = tokio::sync::mpsc::unbounded_channel::<(u16, u64)>();
            tokio::spawn(async move {
                let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(watch));
                while let Ok(Some(line)) = lines.next_line().await {
                    let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
                    let n = &v["notice"];
                    if n["type"] == "far" && n["what"] == "ringing" {
                        if let (Some(port), Some(at)) = (n["port"].as_u64(), n["at_ns"].as_u64()) {
                            let _ = ring_ns_tx.send((port as u16, at));
                        }
                    }
                }
            });
            let (control_r, mut control) = tokio::net::UnixStream::connect(crate::paths::socket(dir)).await?.into_split();
            let total = (calls_per_second * seconds).round() as u64;
            let interval = Duration::from_secs_f64(1.0 / calls_per_second);
            let mut placed: std::collections::HashMap<String, u16> = std::collections::HashMap::new();
            let mut next_port = 0u16;
            let start = tokio::time::Instant::now();
            let mut replies = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(control_r));
            for k in 0..total {
                tokio::time::sleep_until(start + interval * k as u32).await;
                let port = next_port % trunks + 1;
                next_port += 1;
                let caller = format!("{}", 10_000_000 + k);
                placed.insert(caller.clone(), port);
                let req = format!(
                    "{{\"cmd\":\"sim.call\",\"port\":{port},\"from\":\"{caller}\",\"hangup_after\":1.0}}\n"
                );
                tokio::io::AsyncWriteExt::write_all(&mut control, req.as_bytes()).await?;
                let _ = replies.next_line().await;
            }
            // Let the last calls ring.
            tokio::time::sleep(Duration::from_secs(4)).await;
            let mut rings: std::collections::HashMap<u16, Vec<u64>> = std::collections::HashMap::new();
            while let Ok((port, at)) = ring_ns_rx.try_recv() {
                rings.entry(port).or_default().push(at);
            }
            let mut received: Vec<(String, u64)> = Vec::new();
            while let Ok(x) = ring_rx.try_recv() {
                received.push(x);
            }
            // Match each Ring to the ring on its trunk: the latest trunk ring before it.
            let mut latencies: Vec<u64> = received
                .iter()
                .filter_map(|(caller, got)| {
                    let port = placed.get(caller)?;
                    let at = rings.get(port)?.iter().filter(|&&t| t <= *got).max()?;
                    Some(got - at)
                })
                .collect();
            latencies.sort_unstable();
            let pct = |p: f64| -> f64 {
                if latencies.is_empty() {
                    return f64::NAN;
                }
                let i = ((latencies.len() as f64 - 1.0) * p).round() as usize;
                latencies[i] as f64 / 1e6
            };
            println!(
                "calls: {total} placed at {calls_per_second}/s on {trunks} trunks; {} far-end rings, {} Ring events, {} matched",
                rings.values().map(Vec::len).sum::<usize>(),
                received.len(),
                latencies.len()
            );
            println!(
                "ring on the card -> Ring read by the client: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                pct(0.5),
                pct(0.99),
                pct(1.0)
            );
            for t in tasks {
                t.abort();
            }

            // Actions: one connection pipelining getActionEnables.
            let mut c = AgentClient::connect(addr.as_str()).await?;
            c.login("b0", password).await?;
            c.open_app(trunks + 1).await?;
            let n = 20_000u64;
            let (r, mut w) = tokio::net::TcpStream::connect(addr.as_str()).await?.into_split();
            let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(r));
            let login = format!("{{\"id\":0,\"cmd\":\"Login\",\"agent\":\"b1\",\"password\":\"{password}\"}}\n{{\"id\":0,\"cmd\":\"OpenApp\",\"sliceNo\":{}}}\n", trunks + 2);
            tokio::io::AsyncWriteExt::write_all(&mut w, login.as_bytes()).await?;
            // A window of 200 requests in flight, as a busy client would have, below the
            // 1024 queued lines at which the server drops a client that does not read.
            let done = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
            let seen = done.clone();
            let reader = tokio::spawn(async move {
                let mut answered = 0u64;
                let t0 = Instant::now();
                while let Ok(Some(line)) = lines.next_line().await {
                    if line.contains("\"mask\"") && line.contains("\"id\":1") {
                        answered += 1;
                        seen.store(answered, std::sync::atomic::Ordering::Relaxed);
                        if answered == n {
                            break;
                        }
                    }
                }
                (answered, t0.elapsed())
            });
            let batch = "{\"id\":1,\"cmd\":\"getActionEnables\"}\n".repeat(100);
            let t0 = Instant::now();
            let mut sent = 0u64;
            while sent < n {
                if sent.saturating_sub(done.load(std::sync::atomic::Ordering::Relaxed)) > 100 {
                    tokio::task::yield_now().await;
                    continue;
                }
                tokio::io::AsyncWriteExt::write_all(&mut w, batch.as_bytes()).await?;
                sent += 100;
            }
            let (answered, _) = reader.await?;
            let elapsed = t0.elapsed().as_secs_f64();
            println!(
                "actions: {answered} getActionEnables answered in {elapsed:.3} s on one connection: {:.0} actions/s",
                answered as f64 / elapsed
            );
            let _ = c;
            Ok::<(), anyhow::Error>(())
        })
    }
}

/// Call set-ups through a realistic flow: the caller types a menu key during the welcome,
/// the flow asks a web service (served here, on loopback) and queues the call, a seat
/// answers. Measures set-ups per second, set-up time, calls up at once and the engine's
/// deadline misses. The card runs in real time by default, because only then are deadlines
/// counted; `free_running` measures the control plane's ceiling instead.
pub fn ivr(calls_per_second: f64, seconds: f64, free_running: bool) -> Result<()> {
    use std::io::{BufRead, BufReader, Write};

    // Each call holds its trunk about 4 s (caller id before the ring, the flow, 1.5 s with
    // the agent, the release); trunks are reused round robin with time to spare.
    let trunks = ((calls_per_second * 6.0).ceil() as u16).clamp(8, 1400);
    let seats = ((calls_per_second * 1.6).ceil() as u16).clamp(4, 800);
    let dir = std::env::temp_dir().join(format!("switchboard-bench-ivr-{}", std::process::id()));
    let flows = dir.join("flows");
    std::fs::create_dir_all(flows.join("prompts"))?;
    for (name, freq, ms) in [("welcome.wav", 500.0f32, 400usize), ("menu.wav", 650.0, 300)] {
        let n = ms * 8;
        let samples: Vec<i16> = (0..n)
            .map(|i| ((i as f32 * freq * std::f32::consts::TAU / 8000.0).sin() * 6000.0) as i16)
            .collect();
        let mut w = crate::audio::wav::WavWriter::create(&flows.join("prompts").join(name))?;
        w.write(&samples)?;
        w.finish()?;
    }
    std::fs::write(
        flows.join("bench.toml"),
        r#"
start = "welcome"
[select]
called = ["8000"]
[node.welcome]
type = "play"
play = ["welcome.wav"]
next = "menu"
[node.menu]
type = "menu"
play = ["menu.wav"]
keys = { "1" = "lookup" }
fail = "hangup"
[node.lookup]
type = "webservice"
service = "crm"
tags = { Level = "${level}" }
next = "queue"
fail = "queue"
[node.queue]
type = "queue"
queue = "agents"
"#,
    )?;

    // The customer's web service.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let web = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let web_addr = web.local_addr()?;
    runtime.spawn(async move {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
        while let Ok((stream, _)) = web.accept().await {
            tokio::spawn(async move {
                let (r, mut w) = stream.into_split();
                let mut r = tokio::io::BufReader::new(r);
                loop {
                    let mut length = 0usize;
                    let mut line = String::new();
                    if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    loop {
                        line.clear();
                        if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; length];
                    if r.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    let answer = "{\"level\":\"gold\"}";
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
                        answer.len()
                    );
                    if w.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });

    let list = |a: u16, b: u16| (a..=b).map(|p| p.to_string()).collect::<Vec<_>>().join(", ");
    let config = format!(
        "[card]\ndriver = \"sim\"\n[sim]\ntrunk_ports = {trunks}\nseat_ports = {seats}\nseat_answer_delay_ms = 200\n\
         pacing = \"{}\"\n[engine]\nrealtime_priority = 50\n[calls]\nrecord = false\n\
         [[route]]\nname = \"hotline\"\ntrunks = [{}]\nnumber = \"8000\"\nflow = \"*\"\n\
         [[route]]\nname = \"agents\"\ntrunks = []\nseats = [{}]\nstrategy = \"round-robin\"\n\
         [ivr]\nflows = \"flows\"\nprompts = \"flows/prompts\"\ntts = \"none\"\n\
         [[webservice]]\nname = \"crm\"\nkind = \"json\"\nurl = \"http://{web_addr}/crm\"\n\
         params = {{ caller = \"${{caller}}\" }}\nresults = {{ level = \"/level\" }}\ntimeout_ms = 2000\n\
         [agent]\nlisten = \"127.0.0.1:0\"\n[log]\nlevel = \"warn\"\n",
        if free_running { "free-running" } else { "realtime" },
        list(1, trunks),
        list(trunks + 1, trunks + seats),
    );
    let config_path = dir.join("bench.toml");
    std::fs::write(&config_path, config)?;
    let exe = std::env::current_exe().context("cannot find the switchboard binary")?;
    let mut child = std::process::Command::new(exe)
        .args(["run", "--config"])
        .arg(&config_path)
        .arg("--data-dir")
        .arg(&dir)
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .context("cannot start the daemon")?;
    let result = run(&dir, trunks, seats, calls_per_second, seconds);
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    drop(runtime);
    return result;

    fn status(socket: &std::path::Path) -> Result<serde_json::Value> {
        let s = std::os::unix::net::UnixStream::connect(socket)?;
        let mut w = s.try_clone()?;
        w.write_all(b"{\"cmd\":\"status\"}\n")?;
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line)?;
        let v: serde_json::Value = serde_json::from_str(&line)?;
        Ok(v["result"].clone())
    }

    fn run(
        dir: &std::path::Path,
        trunks: u16,
        seats: u16,
        calls_per_second: f64,
        seconds: f64,
    ) -> Result<()> {
        // Check the card size before starting anything.
        let socket = crate::paths::socket(dir);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            if Instant::now() > deadline {
                anyhow::bail!("the daemon did not start");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let before = status(&socket)?;

        // Every notice, time-stamped as it arrives.
        let watch = std::os::unix::net::UnixStream::connect(&socket)?;
        let mut w = watch.try_clone()?;
        w.write_all(b"{\"cmd\":\"watch\"}\n")?;
        let (tx, rx) = std::sync::mpsc::channel::<(Instant, serde_json::Value)>();
        std::thread::spawn(move || {
            for line in BufReader::new(watch).lines() {
                let Ok(line) = line else { return };
                let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
                if tx.send((Instant::now(), v["notice"].clone())).is_err() {
                    return;
                }
            }
        });
        // Calls up at once, sampled every 100 ms.
        let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (sock2, flag) = (socket.clone(), sampling.clone());
        let sampler = std::thread::spawn(move || {
            let mut peak = 0usize;
            let mut samples = Vec::new();
            while flag.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(s) = status(&sock2) {
                    let n = s["calls"].as_array().map_or(0, Vec::len);
                    peak = peak.max(n);
                    samples.push(n);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            (peak, samples)
        });

        let control = std::os::unix::net::UnixStream::connect(&socket)?;
        let mut cw = control.try_clone()?;
        let mut cr = BufReader::new(control);
        let total = (calls_per_second * seconds).round() as u64;
        let interval = Duration::from_secs_f64(1.0 / calls_per_second);
        let start = Instant::now();
        let mut refused = 0u64;
        for k in 0..total {
            let due = start + interval.mul_f64(k as f64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let port = (k % u64::from(trunks)) as u16 + 1;
            let req = format!(
                "{{\"cmd\":\"sim.call\",\"port\":{port},\"from\":\"{}\",\"digits\":\"1\",\"digits_delay_ms\":100,\"hangup_after\":1.2}}\n",
                20_000_000 + k
            );
            cw.write_all(req.as_bytes())?;
            let mut line = String::new();
            cr.read_line(&mut line)?;
            if !line.contains("\"ok\":true") {
                refused += 1;
            }
        }
        let placing = start.elapsed();
        std::thread::sleep(Duration::from_secs(4));
        sampling.store(false, std::sync::atomic::Ordering::Relaxed);
        let (peak, samples) = sampler.join().map_err(|_| anyhow::anyhow!("the sampler failed"))?;
        let after = status(&socket)?;

        let mut offered: std::collections::HashMap<String, Instant> = std::collections::HashMap::new();
        let mut setup = Vec::new();
        let mut answered_at = Vec::new();
        let mut answered = 0u64;
        let mut tagged = 0u64;
        let mut flows = 0u64;
        while let Ok((at, n)) = rx.try_recv() {
            let call = n["call"].as_str().unwrap_or("").to_string();
            match n["type"].as_str() {
                Some("call_offered") => {
                    offered.insert(call, at);
                }
                Some("flow_entered") => flows += 1,
                Some("call_answered") => answered += 1,
                // The set-up is done when an agent's phone rings: what follows is the
                // simulated agent's reaction time (200 ms to 2 s).
                Some("seat_ringing") => {
                    tagged += 1;
                    if let Some(t0) = offered.get(&call) {
                        setup.push(at.duration_since(*t0));
                        answered_at.push(at);
                    }
                }
                Some("far") if n["what"].as_str().is_some_and(|w| w.starts_with("refused")) => refused += 1,
                _ => {}
            }
        }
        setup.sort_unstable();
        let pct = |p: f64| {
            if setup.is_empty() {
                return f64::NAN;
            }
            setup[((setup.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1000.0
        };
        // The steady rate: answers in the middle of the run, away from ramp-up and drain.
        answered_at.sort_unstable();
        let (lo, hi) = (start + placing.mul_f64(0.2), start + placing.mul_f64(0.9));
        let steady = answered_at.iter().filter(|t| **t >= lo && **t < hi).count();
        let rate = steady as f64 / (hi - lo).as_secs_f64();
        let mid: Vec<usize> = samples[samples.len() / 5..samples.len() * 4 / 5].to_vec();
        let avg_up = mid.iter().sum::<usize>() as f64 / mid.len().max(1) as f64;
        let misses = after["engine"]["deadline_misses"].as_u64().unwrap_or(0)
            - before["engine"]["deadline_misses"].as_u64().unwrap_or(0);
        println!(
            "ivr: {total} calls placed at {calls_per_second}/s for {:.1} s on {trunks} trunks and {seats} seats ({refused} refused)",
            placing.as_secs_f64()
        );
        println!(
            "flow: welcome, menu key typed ahead, web-service lookup, queue; {flows} flows entered, {tagged} seats rung, {answered} answered"
        );
        println!("set-ups: {rate:.1} per second in the steady part; calls up at once: {avg_up:.0} on average, {peak} at most");
        println!(
            "set-up time (offered -> agent's phone rings; includes the caller's 100 ms before the key and the key's 100 ms of DTMF): p50 {:.0} ms, p99 {:.0} ms",
            pct(0.5),
            pct(0.99)
        );
        println!(
            "engine: {misses} deadline misses, max tick {:.2} ms, {} events dropped, IVR web calls {} ({} failed)",
            after["engine"]["max_tick_ns"].as_u64().unwrap_or(0) as f64 / 1e6,
            after["engine"]["events_dropped"].as_u64().unwrap_or(0),
            after["ivr"]["web_calls"],
            after["ivr"]["web_failures"],
        );
        Ok(())
    }
}
