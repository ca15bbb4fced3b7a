//! End to end: the real daemon on the simulated card, driven through its control socket.

use std::time::Duration;

use serde_json::json;

use crate::harness::{eventually, of_type, Daemon, FAST_CONFIG};

fn digits_in(path: &std::path::Path) -> String {
    let wav = switchboard::audio::wav::read_wav(path).unwrap();
    let samples = switchboard::audio::wav::to_8k(wav).unwrap();
    let mut digits = String::new();
    switchboard::dsp::dtmf::DtmfDetector::new().process(&samples, |d| digits.push(d));
    digits
}

#[test]
fn inbound_call_is_routed_answered_recorded_and_logged() {
    let d = Daemon::start(FAST_CONFIG);
    let notices = d.call(1, "83366857", "1#", Some(2.5));

    let offered = of_type(&notices, "call_offered");
    assert_eq!(offered.len(), 1, "{notices:#?}");
    assert_eq!(offered[0]["caller"], "83366857", "caller id was sent as DTMF and decoded");
    assert_eq!(offered[0]["trunk"], 1);
    // Sequential routing rings the first seat of the route, which answers.
    assert_eq!(of_type(&notices, "seat_ringing")[0]["seat"], 3);
    assert_eq!(of_type(&notices, "call_answered")[0]["seat"], 3);
    let digits: String =
        of_type(&notices, "digit").iter().map(|n| n["digit"].as_str().unwrap().to_string()).collect();
    assert_eq!(digits, "1#", "digits detected from the caller's audio");
    // The seat's phone heard the caller's digits: audio went through the bridge.
    let heard: Vec<_> = notices
        .iter()
        .filter(|n| n["type"] == "far" && n["port"] == 3)
        .filter_map(|n| n["what"].as_str())
        .filter(|w| w.starts_with("heard digit"))
        .collect();
    assert_eq!(heard, vec!["heard digit 1", "heard digit #"]);
    let ended = of_type(&notices, "call_ended");
    assert_eq!(ended[0]["disposition"], "answered");
    assert_eq!(ended[0]["cause"], "caller hung up");
    let vocid = ended[0]["vocid"].as_str().expect("the call was recorded").to_string();

    // The CDR row.
    assert!(eventually(Duration::from_secs(5), || d.cdrs().first().is_some_and(|c| !c["end"].is_null())));
    let cdr = d.cdrs()[0].clone();
    assert_eq!(cdr["caller"], "83366857");
    assert_eq!(cdr["trunk_port"], 1);
    assert_eq!(cdr["seat_port"], 3);
    assert_eq!(cdr["disposition"], "answered");
    assert_eq!(cdr["cause"], "caller hung up");
    assert_eq!(cdr["vocid"], vocid.as_str());
    let talk = cdr["talk_ms"].as_i64().unwrap();
    assert!((2000..5000).contains(&talk), "talk time {talk} ms");

    // The recording, found by its VOCID, holds the call's audio.
    let recording = notices.iter().find(|n| n["type"] == "recording").unwrap();
    let path = d.data().join(recording["path"].as_str().unwrap());
    assert!(path.ends_with(format!("{vocid}.wav")));
    let done = format!("recording {vocid} complete");
    assert!(eventually(Duration::from_secs(5), || d.log().contains(&done)), "{}", d.log());
    assert_eq!(digits_in(&path), "1#");

    assert!(d.log().contains("DTMF digit '1' detected"), "{}", d.log());
}

#[test]
fn agent_hangs_up_first_and_audio_flows_both_ways() {
    let d = Daemon::start(FAST_CONFIG);
    let mut watch = d.connect();
    watch.send(&json!({"id": 1, "cmd": "watch"}));
    assert_eq!(watch.recv()["ok"], true);
    let r = d.request(json!({"id": 2, "cmd": "sim.call", "port": 2, "from": "5551234", "digits": ""}));
    assert_eq!(r["ok"], true, "{r}");

    let mut seen = vec![];
    let mut next = |want: &dyn Fn(&serde_json::Value) -> bool| loop {
        let n = watch.recv()["notice"].clone();
        seen.push(n.clone());
        if want(&n) {
            return n;
        }
    };
    let answered = next(&|n| n["type"] == "call_answered");
    let seat = answered["seat"].as_u64().unwrap() as u16;
    // Let the line settle, then the agent types a digit: the caller must hear it.
    std::thread::sleep(Duration::from_millis(300));
    let r = d.request(json!({"id": 3, "cmd": "sim.dial", "port": seat, "digits": "5"}));
    assert_eq!(r["ok"], true, "{r}");
    // Both the caller hearing the digit and the switch detecting it, in either order.
    let mut heard = false;
    let mut detected = false;
    while !(heard && detected) {
        let n = next(&|n| n["type"] == "digit" || (n["type"] == "far" && n["port"] == 2));
        if n["type"] == "digit" {
            assert_eq!((n["port"].as_u64(), n["digit"].as_str()), (Some(u64::from(seat)), Some("5")));
            detected = true;
        }
        heard |= n["what"] == "heard digit 5";
    }

    let r = d.request(json!({"id": 4, "cmd": "sim.hangup", "port": seat}));
    assert_eq!(r["ok"], true, "{r}");
    let ended = next(&|n| n["type"] == "call_ended");
    assert_eq!(ended["cause"], "agent hung up");
    // The trunk is released toward the exchange.
    next(&|n| n["type"] == "far" && n["port"] == 2 && n["what"] == "released by the switch");
    assert!(eventually(Duration::from_secs(5), || d.cdrs()[0]["cause"] == "agent hung up"));
}

#[test]
fn bad_requests_get_clear_errors_and_the_daemon_keeps_running() {
    let mut d = Daemon::start(FAST_CONFIG);
    let err = |v: serde_json::Value| {
        let r = d.request(v);
        assert_eq!(r["ok"], false, "{r}");
        r["error"].as_str().unwrap().to_string()
    };
    assert_eq!(
        err(json!({"cmd": "sim.call", "port": 99})),
        "port 99 does not exist (this card has ports 1-5)"
    );
    assert!(err(json!({"cmd": "sim.call", "port": 3})).contains("port 3 is a fxs port, not a trunk port"));
    assert!(err(json!({"cmd": "sim.call", "port": 1, "digits": "1x"})).contains("unknown digit 'x'"));
    assert!(err(json!({"cmd": "sim.call", "port": 1, "from": "12ab"})).contains("unknown digit 'a'"));
    assert!(err(json!({"cmd": "sim.call", "port": 1, "hangup_after": -1.0})).contains("hangup_after"));
    let broken = d.data().join("broken.wav");
    std::fs::write(&broken, b"RIFF\x10\x00\x00\x00WAVEfmt garbage").unwrap();
    let e = err(json!({"cmd": "sim.call", "port": 1, "play": broken}));
    assert!(e.contains("broken.wav"), "{e}");
    let e = err(json!({"cmd": "sim.call", "port": 1, "play": "/nonexistent/x.wav"}));
    assert!(e.contains("/nonexistent/x.wav"), "{e}");
    assert!(err(json!({"cmd": "reboot"})).contains("unknown variant `reboot`"));

    // Garbage on the socket: each line gets an error and the connection stays usable.
    let mut c = d.connect();
    c.send_raw(b"this is not json\n");
    assert!(c.recv()["error"].as_str().unwrap().starts_with("bad request"));
    c.send_raw(&[0xff, 0xfe, 0x00, 0x80, b'\n']);
    assert_eq!(c.recv()["error"], "bad request: not UTF-8");
    let mut long = vec![b'x'; 70 * 1024];
    long.push(b'\n');
    c.send_raw(&long);
    assert!(c.recv()["error"].as_str().unwrap().contains("longer than 65536 bytes"));
    c.send(&json!({"id": "s", "cmd": "status"}));
    let status = c.recv();
    assert_eq!(status["id"], "s");
    assert_eq!(status["ok"], true);
    assert_eq!(status["result"]["ports"].as_array().unwrap().len(), 5);
    drop(c);

    // A client that vanishes mid-line does not matter either.
    let mut c = d.connect();
    c.send_raw(b"{\"cmd\": \"sta");
    drop(c);
    assert!(d.is_running());
    assert_eq!(d.request(json!({"cmd": "status"}))["ok"], true);
}

#[test]
fn cdr_and_recording_survive_kill_9_mid_call() {
    let mut d = Daemon::start(FAST_CONFIG);
    let mut watch = d.connect();
    watch.send(&json!({"id": 1, "cmd": "sim.call", "port": 1, "from": "10086", "digits": "42",
                       "digits_delay_ms": 200, "watch": true}));
    assert_eq!(watch.recv()["ok"], true);
    let vocid = loop {
        let n = watch.recv()["notice"].clone();
        if n["type"] == "recording" {
            break n["vocid"].as_str().unwrap().to_string();
        }
    };
    loop {
        let n = watch.recv()["notice"].clone();
        if n["type"] == "digit" && n["digit"] == "2" {
            break;
        }
    }
    // The recorder flushes at least every second.
    std::thread::sleep(Duration::from_millis(1500));
    d.kill9();

    d.spawn();
    let cdrs = d.cdrs();
    assert_eq!(cdrs.len(), 1);
    assert_eq!(cdrs[0]["caller"], "10086");
    assert_eq!(cdrs[0]["disposition"], "interrupted");
    assert_eq!(cdrs[0]["cause"], "daemon restarted");
    assert_eq!(cdrs[0]["vocid"], vocid.as_str());
    let store = switchboard::store::Store::open(&d.data().join("switchboard.db")).unwrap();
    let rec = store.recording_get(&vocid).wait().unwrap().unwrap();
    assert_eq!(rec.state.as_str(), "repaired");
    assert!(rec.samples.unwrap() >= 8000, "at least a second of audio kept: {rec:?}");
    assert_eq!(digits_in(&d.data().join(&rec.path)), "42");
    // The daemon works normally after the restart.
    let notices = d.call(1, "10086", "", Some(0.5));
    assert_eq!(of_type(&notices, "call_ended")[0]["disposition"], "answered");
}

#[test]
fn sigterm_ends_calls_and_finishes_recordings() {
    let mut d = Daemon::start(FAST_CONFIG);
    let mut watch = d.connect();
    watch.send(&json!({"id": 1, "cmd": "sim.call", "port": 1, "from": "1", "watch": true}));
    assert_eq!(watch.recv()["ok"], true);
    let vocid = loop {
        let n = watch.recv()["notice"].clone();
        if n["type"] == "recording" {
            break n["vocid"].as_str().unwrap().to_string();
        }
    };
    std::thread::sleep(Duration::from_millis(500));
    assert!(d.terminate().success(), "{}", d.log());
    assert!(!d.data().join("control.sock").exists());
    let store = switchboard::store::Store::open(&d.data().join("switchboard.db")).unwrap();
    let rec = store.recording_get(&vocid).wait().unwrap().unwrap();
    assert_eq!(rec.state.as_str(), "complete");
    let cdr = store.cdr_list(1).wait().unwrap().remove(0);
    assert_eq!(cdr.disposition.as_str(), "interrupted");
    assert_eq!(cdr.cause.as_deref(), Some("daemon stopped"));
}

#[test]
fn a_second_daemon_on_the_same_data_directory_is_refused() {
    let d = Daemon::start(FAST_CONFIG);
    let out = std::process::Command::new(crate::harness::BIN)
        .args(["run", "--config"])
        .arg(&d.config)
        .arg("--data-dir")
        .arg(d.data())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("another daemon is already running"), "{err}");
    assert_eq!(d.request(json!({"cmd": "status"}))["ok"], true);
}

#[test]
fn busy_tone_alone_ends_the_call_and_the_agent_hangs_up_on_it() {
    let d = Daemon::start(
        &FAST_CONFIG
            .replace("seat_answer_delay_ms = 400", "seat_answer_delay_ms = 400\ndisconnect = \"busy-tone\""),
    );
    let mut watch = d.connect();
    watch.send(&json!({"id": 1, "cmd": "watch"}));
    assert_eq!(watch.recv()["ok"], true);
    let r = d.request(json!({"cmd": "sim.call", "port": 1, "from": "777", "hangup_after": 1.0}));
    assert_eq!(r["ok"], true, "{r}");
    let mut seen = vec![];
    let mut until = |want: &dyn Fn(&serde_json::Value) -> bool| loop {
        let n = watch.recv()["notice"].clone();
        seen.push(n.clone());
        if want(&n) {
            return n;
        }
    };
    // No loop drop: the switch hears the exchange's busy tone and releases the line.
    let ended = until(&|n| n["type"] == "call_ended");
    assert_eq!(ended["cause"], "caller hung up (busy tone)");
    // The seat gets busy tone; its simulated agent hears it and puts the phone down.
    until(&|n| n["type"] == "far" && n["port"] == 3 && n["what"] == "heard busy tone");
    until(&|n| n["type"] == "far" && n["port"] == 3 && n["what"] == "hung up");
    // The seat is free again: the next call rings it first.
    let r = d.request(json!({"cmd": "sim.call", "port": 2, "from": "888", "hangup_after": 0.5}));
    assert_eq!(r["ok"], true, "{r}");
    let answered = until(&|n| n["type"] == "call_answered");
    assert_eq!(answered["seat"], 3);
}

#[test]
fn the_far_end_records_what_it_hears() {
    let d = Daemon::start(FAST_CONFIG);
    let mut watch = d.connect();
    watch.send(&json!({"id": 1, "cmd": "sim.call", "port": 1, "from": "5", "watch": true}));
    assert_eq!(watch.recv()["ok"], true);
    loop {
        if watch.recv()["notice"]["type"] == "call_answered" {
            break;
        }
    }
    let out = d.data().join("sim-recordings/heard.wav");
    let recorder = {
        let data = d.data().to_path_buf();
        std::thread::spawn(move || {
            let mut c = crate::harness::Client::connect_to(&data);
            c.send(&json!({"cmd": "sim.record", "port": 1, "seconds": 2.0, "name": "heard"}));
            c.recv()
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(d.request(json!({"cmd": "sim.dial", "port": 3, "digits": "159"}))["ok"], true);
    let r = recorder.join().unwrap();
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["result"]["samples"], 16000);
    assert_eq!(r["result"]["path"], out.display().to_string());
    assert_eq!(digits_in(&out), "159");

    let e = d.request(json!({"cmd": "sim.record", "port": 1, "seconds": 0, "name": "x"}));
    assert!(e["error"].as_str().unwrap().contains("not between 0 and 600"), "{e}");
    let e = d.request(json!({"cmd": "sim.record", "port": 1, "seconds": 1, "name": "../../etc/passwd"}));
    assert!(e["error"].as_str().unwrap().contains("(no path)"), "{e}");
    let e = d.request(json!({"cmd": "sim.tone", "port": 1, "tone": "siren"}));
    assert!(e["error"].as_str().unwrap().contains("unknown tone \"siren\""), "{e}");
}

#[test]
fn the_caller_can_play_a_wav_file_into_the_call() {
    let d = Daemon::start(FAST_CONFIG);
    // A 16 kHz file: the daemon resamples it to the line's 8 kHz.
    let mut samples = vec![];
    let mut generator = switchboard::dsp::dtmf::DtmfGenerator::new(-12.0, 120, 120);
    generator.push_digits("987").unwrap();
    let mut block = [0i16; 160];
    while !generator.is_idle() {
        block.fill(0);
        generator.fill(&mut block);
        samples.extend_from_slice(&block);
    }
    let path = d.data().join("prompt16k.wav");
    let doubled: Vec<i16> = samples.iter().flat_map(|s| [*s, *s]).collect();
    std::fs::write(&path, crate::audio::pcm16_wav(16000, 1, &doubled)).unwrap();

    let mut c = d.connect();
    c.send(&json!({"cmd": "sim.call", "port": 1, "from": "1", "digits": "", "play": path,
                   "digits_delay_ms": 200, "hangup_after": 3.0, "watch": true}));
    assert_eq!(c.recv()["ok"], true);
    let notices = c.notices_until_end();
    let digits: String =
        of_type(&notices, "digit").iter().map(|n| n["digit"].as_str().unwrap().to_string()).collect();
    assert_eq!(digits, "987", "{notices:#?}");
    assert!(notices.iter().any(|n| n["port"] == 1 && n["what"] == "finished playing"));
}

#[test]
fn an_answer_after_the_caller_gave_up_ends_on_the_exchange_dial_tone() {
    let d = Daemon::start(&FAST_CONFIG.replace("seat_answer_delay_ms = 400", "seat_answer_delay_ms = 1500"));
    let mut watch = d.connect();
    watch.send(&json!({"id": 1, "cmd": "watch"}));
    assert_eq!(watch.recv()["ok"], true);
    assert_eq!(d.request(json!({"cmd": "sim.call", "port": 1, "from": "1"}))["ok"], true);
    loop {
        let n = watch.recv()["notice"].clone();
        if n["type"] == "seat_ringing" {
            break;
        }
    }
    // The caller gives up while the seat rings; the seat answers a second later.
    assert_eq!(d.request(json!({"cmd": "sim.hangup", "port": 1}))["ok"], true);
    let ended = loop {
        let n = watch.recv()["notice"].clone();
        if n["type"] == "call_ended" {
            break n;
        }
    };
    assert_eq!(ended["cause"], "caller hung up (dial tone)");
}

#[test]
fn play_files_that_are_not_regular_files_are_refused_without_blocking() {
    let d = Daemon::start(FAST_CONFIG);
    let fifo = d.data().join("prompt.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let r = d.request(json!({"cmd": "sim.call", "port": 1, "play": fifo}));
    assert!(r["error"].as_str().unwrap().contains("not a regular file"), "{r}");
    let r = d.request(json!({"cmd": "sim.call", "port": 1, "hangup_afer": 2}));
    assert!(r["error"].as_str().unwrap().contains("unknown field `hangup_afer`"), "{r}");
    assert_eq!(d.request(json!({"cmd": "status"}))["ok"], true);
}

#[test]
fn kill_9_with_a_talking_and_a_waiting_call_keeps_both_records() {
    let mut d = Daemon::start(FAST_CONFIG);
    let mut watch = d.connect();
    watch.send(&json!({"id": 1, "cmd": "watch"}));
    assert_eq!(watch.recv()["ok"], true);
    assert_eq!(d.request(json!({"cmd": "sim.call", "port": 1, "from": "111"}))["ok"], true);
    let vocid = loop {
        let n = watch.recv()["notice"].clone();
        if n["type"] == "recording" {
            break n["vocid"].as_str().unwrap().to_string();
        }
    };
    // The other seats are busy: the second call waits, ringing nobody.
    for port in [4, 5] {
        assert_eq!(d.request(json!({"cmd": "sim.offhook", "port": port}))["ok"], true);
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(d.request(json!({"cmd": "sim.call", "port": 2, "from": "222"}))["ok"], true);
    loop {
        let n = watch.recv()["notice"].clone();
        if n["type"] == "call_waiting" {
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(1200));
    d.kill9();
    d.spawn();
    let cdrs = d.cdrs();
    let by_caller = |c: &str| cdrs.iter().find(|r| r["caller"] == c).cloned().unwrap();
    let talking = by_caller("111");
    let waiting = by_caller("222");
    assert_eq!(
        (talking["disposition"].as_str(), talking["vocid"].as_str()),
        (Some("interrupted"), Some(vocid.as_str()))
    );
    assert_eq!(waiting["disposition"], "interrupted");
    assert!(waiting["answer"].is_null());
    let store = switchboard::store::Store::open(&d.data().join("switchboard.db")).unwrap();
    let rec = store.recording_get(&vocid).wait().unwrap().unwrap();
    assert_eq!(rec.state.as_str(), "repaired");
    assert!(switchboard::audio::wav::read_wav(&d.data().join(&rec.path)).is_ok());
}
