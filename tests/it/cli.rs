//! The command line: `check`, the offline DSP tools, and the README's `sim call`.

use std::process::Command;

use crate::harness::{Daemon, BIN, FAST_CONFIG};

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_accepts_a_good_file_and_names_file_line_and_key_of_errors() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, FAST_CONFIG).unwrap();
    let (code, out, _) = run(&["check", good.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(out.contains("ok (2 trunk ports, 3 seat ports"), "{out}");

    let bad = dir.path().join("bad.toml");
    let seats_line = FAST_CONFIG.lines().position(|l| l.starts_with("seats =")).unwrap() + 1;
    std::fs::write(&bad, FAST_CONFIG.replace("seats = [3, 4, 5]", "seats = [3, 4, 9]\ncolour = \"blue\""))
        .unwrap();
    let (code, _, err) = run(&["check", bad.to_str().unwrap()]);
    assert_eq!(code, 2);
    let path = bad.display().to_string();
    let want = format!("{path}:{}:1: key `route[0].colour`: unknown field `colour`", seats_line + 1);
    assert!(err.contains(&want), "{err}");

    std::fs::write(&bad, FAST_CONFIG.replace("seats = [3, 4, 5]", "seats = [3, 4, 9]")).unwrap();
    let (code, _, err) = run(&["check", bad.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        err.contains(&format!("{path}:{seats_line}:"))
            && err.contains("key `route[0].seats`: port 9 does not exist"),
        "{err}"
    );

    let (code, _, err) = run(&["check", "/nonexistent.toml"]);
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent.toml") && err.contains("cannot read the file"), "{err}");

    // `run` refuses a bad configuration with the same message.
    let (code, _, err) =
        run(&["run", "--config", bad.to_str().unwrap(), "--data-dir", dir.path().to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("port 9 does not exist"), "{err}");
}

#[test]
fn dsp_tools_round_trip_digits_and_reject_broken_files() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("digits.wav");
    let (code, _, err) = run(&["dsp", "gen-dtmf", "0123456789*#ABCD", wav.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = run(&["dsp", "dtmf", wav.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert_eq!(out, "0123456789*#ABCD\n");

    // A 44.1 kHz stereo file is resampled and downmixed.
    let wav44 = dir.path().join("digits44.wav");
    let sox = Command::new("sox").arg(&wav).args(["-r", "44100", "-c", "2"]).arg(&wav44).status();
    assert!(sox.is_ok_and(|s| s.success()), "sox is needed for this test: apt-get install sox");
    let (code, out, _) = run(&["dsp", "dtmf", wav44.to_str().unwrap()]);
    assert_eq!((code, out.as_str()), (0, "0123456789*#ABCD\n"));
    // A rate we do not resample is refused, naming the file and the rate.
    let wav5k = dir.path().join("digits5k.wav");
    let sox = Command::new("sox").arg(&wav).args(["-r", "5000"]).arg(&wav5k).status();
    assert!(sox.is_ok_and(|s| s.success()));
    let (code, _, err) = run(&["dsp", "dtmf", wav5k.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("digits5k.wav") && err.contains("5000"), "{err}");
    let bytes = std::fs::read(&wav).unwrap();

    let (code, _, err) = run(&["dsp", "gen-dtmf", "12x", wav.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("'x'"), "{err}");

    let broken = dir.path().join("broken.wav");
    std::fs::write(&broken, &bytes[..100]).unwrap();
    let (code, _, err) = run(&["dsp", "dtmf", broken.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("broken.wav") && err.contains("truncated"), "{err}");
    std::fs::write(&broken, b"hello").unwrap();
    let (code, _, err) = run(&["dsp", "dtmf", broken.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("broken.wav"), "{err}");
}

#[test]
fn sim_call_from_the_command_line_follows_the_call() {
    let d = Daemon::start(FAST_CONFIG);
    let data = d.data().to_str().unwrap().to_string();
    let (code, out, err) = run(&[
        "sim",
        "call",
        "--data-dir",
        &data,
        "--port",
        "1",
        "--from",
        "83366857",
        "--digits",
        "1#",
        "--hangup-after",
        "1.5",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(r#""type":"call_offered""#) && out.contains(r#""caller":"83366857""#), "{out}");
    assert!(out.contains(r#""type":"call_answered""#), "{out}");
    assert!(out.contains(r#""digit":"1""#) && out.contains(r##""digit":"#""##), "{out}");
    assert!(out.trim_end().lines().last().unwrap().contains(r#""type":"call_ended""#), "{out}");

    let (code, _, err) = run(&["sim", "call", "--data-dir", &data, "--port", "7", "--from", "1"]);
    assert_eq!(code, 1);
    assert!(err.contains("port 7 does not exist"), "{err}");

    let (code, out, _) = run(&["cdr", "--data-dir", &data]);
    assert_eq!(code, 0);
    assert!(out.contains("83366857"));

    let empty = tempfile::tempdir().unwrap();
    let (code, _, err) = run(&["sim", "call", "--data-dir", empty.path().to_str().unwrap(), "--port", "1"]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot reach the daemon"), "{err}");
}

/// Under systemd (`Type=notify`, `WatchdogSec=`), the daemon says READY=1 once it serves, and
/// WATCHDOG=1 at half the watchdog period while its media thread runs. The service manager
/// is played by a datagram socket, as `NOTIFY_SOCKET` describes it.
#[test]
fn the_daemon_tells_systemd_it_is_ready_and_alive() {
    use std::os::unix::net::UnixDatagram;
    let dir = tempfile::tempdir().expect("temp dir");
    let notify = dir.path().join("notify.sock");
    let manager = UnixDatagram::bind(&notify).expect("bind the notify socket");
    manager.set_read_timeout(Some(std::time::Duration::from_millis(500))).expect("timeout");
    let config = dir.path().join("switchboard.toml");
    std::fs::write(&config, FAST_CONFIG).expect("config");
    // systemd names the process the watchdog is for; `exec` keeps the shell's pid.
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("WATCHDOG_PID=$$ exec \"$0\" run --config \"$1\" --data-dir \"$2\"")
        .arg(BIN)
        .arg(&config)
        .arg(dir.path().join("data"))
        .env("NOTIFY_SOCKET", &notify)
        .env("WATCHDOG_USEC", "400000")
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the daemon");
    let mut ready = false;
    let mut alive = 0;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let mut buf = [0u8; 256];
    while std::time::Instant::now() < deadline && !(ready && alive >= 4) {
        if let Ok(n) = manager.recv(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]);
            ready |= text.lines().any(|l| l == "READY=1");
            alive += text.lines().filter(|l| *l == "WATCHDOG=1").count();
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(ready, "READY=1 was sent");
    assert!(alive >= 4, "WATCHDOG=1 every 200 ms: got {alive}");
}
