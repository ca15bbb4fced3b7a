//! The maintenance shell through real interfaces: a serial port that is one end of a pty pair
//! (the test holds the other, as the technician's terminal would), the control socket with
//! `switchboard shell`, and the daemon's signals (SIGTERM drains calls, SIGHUP reloads).

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;
use switchboard::store::Role;

use crate::harness::{eventually, Daemon, BIN, FAST_CONFIG};

const TECH: &str = "tech";
const TECH_PW: &str = "Line-Test-2026!";

/// The technician's end of a serial line: the master of a pty pair whose slave the daemon
/// opens through a symlink (as it would a `/dev/serial/by-id` link).
struct Terminal {
    master: std::fs::File,
    _slave: OwnedFd,
    seen: Vec<u8>,
}

impl Terminal {
    /// A new pty pair, with `link` pointing at its slave.
    fn plug(link: &Path) -> Terminal {
        let pty = nix::pty::openpty(None, None).unwrap();
        // Not inherited by the daemon (or any other child): the line must hang up when the
        // test lets go of it.
        for fd in [pty.master.as_fd(), pty.slave.as_fd()] {
            nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC)).unwrap();
        }
        let name = nix::unistd::ttyname(pty.slave.as_fd()).unwrap();
        let _ = std::fs::remove_file(link);
        std::os::unix::fs::symlink(&name, link).unwrap();
        Terminal { master: std::fs::File::from(pty.master), _slave: pty.slave, seen: Vec::new() }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.master.write_all(bytes).unwrap();
    }

    /// Reads until `what` appears; returns everything read up to and including it.
    fn expect(&mut self, what: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(at) = find(&self.seen, what.as_bytes()) {
                let rest = self.seen.split_off(at + what.len());
                let got = std::mem::replace(&mut self.seen, rest);
                return String::from_utf8_lossy(&got).into_owned();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "expected {what:?} within {timeout:?}; got {:?}",
                String::from_utf8_lossy(&self.seen)
            );
            let mut fds = [nix::poll::PollFd::new(self.master.as_fd(), nix::poll::PollFlags::POLLIN)];
            let ms = left.as_millis().min(200) as u16;
            if nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms)).unwrap_or(0) == 0 {
                continue;
            }
            let mut buf = [0u8; 4096];
            match self.master.read(&mut buf) {
                Ok(n) => self.seen.extend_from_slice(&buf[..n]),
                // EIO until the daemon has the slave open.
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// Reads and forgets everything until the line has been quiet for half a second.
    fn drain(&mut self) -> String {
        let mut all = std::mem::take(&mut self.seen);
        loop {
            let mut fds = [nix::poll::PollFd::new(self.master.as_fd(), nix::poll::PollFlags::POLLIN)];
            if nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(500u16)).unwrap_or(0) == 0 {
                return String::from_utf8_lossy(&all).into_owned();
            }
            let mut buf = [0u8; 4096];
            match self.master.read(&mut buf) {
                Ok(n) if n > 0 => all.extend_from_slice(&buf[..n]),
                _ => return String::from_utf8_lossy(&all).into_owned(),
            }
        }
    }

    /// Runs a command at the prompt and returns its output (without the next prompt).
    fn run(&mut self, command: &str) -> String {
        self.send(format!("{command}\r").as_bytes());
        let out = self.expect(&format!("{PROMPT}"), Duration::from_secs(20));
        let out = out.strip_suffix(PROMPT).unwrap_or(&out).to_string();
        // The echo of the command line comes first.
        out.split_once("\r\n").map(|(_, rest)| rest.to_string()).unwrap_or_default()
    }

    fn login(&mut self) {
        self.expect("login: ", Duration::from_secs(20));
        self.send(format!("{TECH}\r").as_bytes());
        self.expect("Password: ", Duration::from_secs(5));
        self.send(format!("{TECH_PW}\r").as_bytes());
        self.expect(PROMPT, Duration::from_secs(10));
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The prompt, with the host name the test configurations set.
const PROMPT: &str = "pbx-test> ";

fn config_with_serial(link: &Path, lockout_seconds: u32) -> String {
    format!(
        "{FAST_CONFIG}\n[shell]\nhostname = \"pbx-test\"\nmax_failures = 2\nlockout_seconds = {lockout_seconds}\n\n[[serial]]\ndevice = \"{}\"\n",
        link.display()
    )
}

fn daemon_with_serial(lockout_seconds: u32) -> (Daemon, PathBuf, Terminal) {
    let mut d = Daemon::prepare("");
    let link = d.data().join("ttyTECH");
    std::fs::write(&d.config, config_with_serial(&link, lockout_seconds)).unwrap();
    let term = Terminal::plug(&link);
    d.add_agents(&[(TECH, Role::Admin, TECH_PW), ("1001", Role::Agent, TECH_PW)]);
    d.spawn();
    (d, link, term)
}

/// Every line the shell printed fits 80 columns.
fn assert_fits(out: &str) {
    // What the terminal shows: a CR returns to the start of the same row.
    for line in out.split(['\r', '\n']) {
        assert!(line.chars().count() <= 80, "line longer than 80 columns: {line:?}");
    }
}

#[test]
fn a_technician_logs_in_on_the_serial_port_and_runs_every_command() {
    let (d, _link, mut t) = daemon_with_serial(2);
    let banner = t.expect("login: ", Duration::from_secs(20));
    assert!(banner.contains("maintenance shell"), "{banner:?}");
    t.send(format!("{TECH}\r").as_bytes());
    t.expect("Password: ", Duration::from_secs(5));
    t.send(format!("{TECH_PW}\r").as_bytes());
    let after = t.expect(PROMPT, Duration::from_secs(10));
    assert!(!after.contains(TECH_PW), "the password was echoed: {after:?}");

    let out = t.run("show version");
    assert!(out.contains("Switchboard 0.") && out.contains("Uptime:"), "{out}");
    let out = t.run("show spans");
    assert!(out.contains("analog") && out.contains("OK"), "{out}");
    let out = t.run("show channels");
    assert_eq!(out.matches("trunk").count(), 2, "{out}");
    assert_eq!(out.matches("seat").count(), 3, "{out}");
    let out = t.run("sh ch trunk");
    assert!(out.contains("trunk") && !out.contains("seat"), "abbreviated and filtered: {out}");
    let out = t.run("show channels | grep seat");
    assert_eq!(out.matches("seat").count(), 3, "{out}");
    assert!(!out.contains("trunk"), "{out}");
    let out = t.run("show calls");
    assert!(out.contains("(no calls)"), "{out}");
    let out = t.run("show agents");
    assert!(out.contains("offline"), "{out}");
    let out = t.run("show queues");
    assert!(out.contains("Queue"), "{out}");
    let out = t.run("show alarms");
    assert!(out.contains("No span is in alarm"), "{out}");
    let out = t.run("show stats");
    assert!(
        out.contains("deadline misses") && out.contains("media"),
        "per-thread load names the media thread: {out}"
    );
    let out = t.run("log tail 50");
    assert!(out.contains("maintenance shell: tech logged in"), "{out}");
    let out = t.run("log tail 50 warn");
    assert!(!out.contains(" INFO "), "{out}");
    let out = t.run("log level");
    assert!(out.contains("info"), "{out}");
    let out = t.run("log level debug");
    assert!(out.contains("set to debug"), "{out}");
    assert!(t.run("log level").contains("debug"));
    let out = t.run("log level pri=loud");
    assert!(out.contains("error"), "{out}");
    let out = t.run("block 1");
    assert!(out.contains("Port 1 blocked"), "{out}");
    let out = t.run("show channels 1");
    assert!(out.contains("yes"), "{out}");
    assert!(t.run("unblock 1").contains("Port 1 unblocked"));
    let out = t.run("hangup 1");
    assert!(out.contains("no call on port 1"), "{out}");
    let out = t.run("reload");
    assert!(out.contains("Configuration reloaded") && out.contains("Flows reloaded"), "{out}");
    let out = t.run("test dtmf send 3 159");
    assert!(out.contains("sent 159"), "{out}");
    // `help` is longer than a page: space shows the rest.
    t.send(b"help\r");
    let first = t.expect("--More--", Duration::from_secs(5));
    t.send(b" ");
    let out = first + &t.expect(PROMPT, Duration::from_secs(5));
    assert!(out.contains("show") && out.contains("test") && out.contains("hangup"), "{out}");
    assert_fits(&out);
    let out = t.run("help test tone");
    assert!(out.contains("1004"), "{out}");
    let out = t.run("frobnicate");
    assert!(out.contains("unknown command"), "{out}");
    let out = t.run("history | grep show");
    assert!(out.contains("show version") && !out.contains(TECH_PW), "{out}");
    // Tab completes a unique word.
    t.send(b"show ver\t");
    t.expect("show version ", Duration::from_secs(5));
    t.send(b"\r");
    let out = t.expect(PROMPT, Duration::from_secs(5));
    assert!(out.contains("Uptime:"), "{out}");
    t.send(b"logout\r");
    t.expect("login: ", Duration::from_secs(5));
    drop(d);
}

#[test]
fn the_serial_port_gets_the_configured_speed_and_framing() {
    let mut d = Daemon::prepare("");
    let link = d.data().join("ttyTECH");
    let config = format!(
        "{FAST_CONFIG}\n[[serial]]\ndevice = \"{}\"\nspeed = 9600\nparity = \"even\"\ndata_bits = 7\nstop_bits = 2\n",
        link.display()
    );
    std::fs::write(&d.config, config).unwrap();
    let mut t = Terminal::plug(&link);
    d.spawn();
    t.expect("login: ", Duration::from_secs(20));
    // On a pty the master reads the line settings the daemon gave the slave. The speed is
    // set the termios2 way (any rate), so it is read that way too.
    use nix::sys::termios::{tcgetattr, ControlFlags};
    let mut t2: libc::termios2 = unsafe { std::mem::zeroed() };
    // SAFETY: TCGETS2 fills a termios2 on a valid terminal descriptor.
    let rc = unsafe { libc::ioctl(std::os::fd::AsRawFd::as_raw_fd(&t.master), libc::TCGETS2, &mut t2) };
    assert_eq!(rc, 0);
    assert_eq!(t2.c_ospeed, 9600);
    // A pty keeps 8 data bits and no parity whatever it is told (the kernel's
    // pty_set_termios), so of the framing only the stop bits show here.
    let c = tcgetattr(&t.master).unwrap().control_flags;
    assert!(c.contains(ControlFlags::CSTOPB), "two stop bits: {c:?}");
}

#[test]
fn wrong_passwords_lock_the_port_for_a_while() {
    let (d, _link, mut t) = daemon_with_serial(2);
    for _ in 0..2 {
        t.expect("login: ", Duration::from_secs(20));
        t.send(format!("{TECH}\r").as_bytes());
        t.expect("Password: ", Duration::from_secs(5));
        t.send(b"not-the-password\r");
    }
    t.expect("locked", Duration::from_secs(10));
    // During the lockout even the right password does not get in.
    t.send(format!("{TECH}\r{TECH_PW}\r").as_bytes());
    std::thread::sleep(Duration::from_millis(500));
    // After it, the right password does; an agent account does not.
    t.expect("login: ", Duration::from_secs(10));
    t.send(b"1001\r");
    t.expect("Password: ", Duration::from_secs(5));
    t.send(format!("{TECH_PW}\r").as_bytes());
    t.expect("incorrect", Duration::from_secs(10));
    t.login();
    assert!(t.run("show version").contains("Uptime:"));
    assert!(d.log().contains("failed login"), "{}", d.log());
}

#[test]
fn pulling_the_cable_does_not_end_a_lockout() {
    let (_d, link, mut t) = daemon_with_serial(30);
    for _ in 0..2 {
        t.expect("login: ", Duration::from_secs(20));
        t.send(format!("{TECH}\r").as_bytes());
        t.expect("Password: ", Duration::from_secs(5));
        t.send(b"guess\r");
    }
    t.expect("locked for 30 seconds", Duration::from_secs(10));
    drop(t);
    let mut t = Terminal::plug(&link);
    let out = t.expect("more seconds", Duration::from_secs(10));
    assert!(out.contains("Locked for"), "{out}");
    t.send(format!("{TECH}\r{TECH_PW}\r").as_bytes());
    let out = t.drain();
    assert!(!out.contains(PROMPT), "{out}");
}

#[test]
fn line_noise_and_binary_bytes_neither_crash_the_daemon_nor_wedge_the_shell() {
    let (mut d, _link, mut t) = daemon_with_serial(2);
    t.expect("login: ", Duration::from_secs(20));
    // Noise at the login prompt: every byte value, then pseudo-random bytes.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut noise: Vec<u8> = (0..=255u8).collect();
    for _ in 0..16 * 1024 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        noise.push(x as u8);
    }
    // Noise can be read as a user name and a password: it earns failed logins, and the
    // lockout that follows; both end.
    t.send(&noise);
    t.drain();
    // Whatever lockout the noise earned ends; a fresh login prompt follows a Ctrl-C.
    std::thread::sleep(Duration::from_secs(3));
    t.drain();
    t.send(b"\x03");
    t.login();
    // Noise at the command prompt: mostly unknown commands; it may even spell `exit`.
    t.send(&noise[..4096]);
    t.drain();
    t.send(b"\x03\x15\r");
    if t.drain().contains("login: ") {
        t.send(format!("{TECH}\r").as_bytes());
        t.expect("Password: ", Duration::from_secs(5));
        t.send(format!("{TECH_PW}\r").as_bytes());
        t.expect(PROMPT, Duration::from_secs(10));
    }
    let out = t.run("show version");
    assert!(out.contains("Uptime:"), "{out}");
    assert!(d.is_running());
    assert_eq!(d.request(json!({"cmd": "status"}))["ok"], true);
}

#[test]
fn the_shell_comes_back_when_the_serial_port_vanishes_and_returns() {
    let (mut d, link, mut t) = daemon_with_serial(2);
    t.login();
    // A command is running (listening for digits) when the cable is pulled.
    t.send(b"test dtmf detect 1 30\r");
    t.expect("listening", Duration::from_secs(5));
    drop(t);
    assert!(
        eventually(Duration::from_secs(10), || d.log().contains("hung up") || d.log().contains("lost:")),
        "the daemon noticed the port going: {}",
        d.log()
    );
    assert!(d.is_running());
    assert_eq!(d.request(json!({"cmd": "status"}))["ok"], true);
    // The test the session ran is stopped with it: the trunk is back in service.
    assert!(eventually(Duration::from_secs(5), || {
        let out = shell_lines(&d, "show channels 1").unwrap();
        !out.contains("yes") && !out.contains("testing")
    }));
    // The adapter is plugged back in (a new tty behind the same link).
    let mut t = Terminal::plug(&link);
    t.login();
    assert!(t.run("show version").contains("Uptime:"));
}

fn shell_cmd(d: &Daemon, line: &str) -> std::process::Output {
    Command::new(BIN).args(["shell", "--data-dir"]).arg(d.data()).args(["-c", line]).output().unwrap()
}

#[test]
fn switchboard_shell_runs_the_same_commands_over_the_control_socket() {
    let d = Daemon::start(FAST_CONFIG);
    let out = shell_cmd(&d, "show channels trunk");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches("trunk").count(), 2, "{text}");
    let out = shell_cmd(&d, "show nonsense");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("show"), "{out:?}");
    let out = shell_cmd(&d, "test tone 99");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("99"), "{out:?}");

    // Interactive, with the keystrokes piped in: no login on the local socket.
    let mut child = Command::new(BIN)
        .args(["shell", "--data-dir"])
        .arg(d.data())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"show version\rshow calls\rexit\r").unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Uptime:") && text.contains("(no calls)"), "{text}");
    assert!(!text.contains("login:"), "{text}");
}

/// Runs one shell command line over the control socket and returns its lines.
fn shell_lines(d: &Daemon, line: &str) -> Result<String, String> {
    let r = d.request(json!({"cmd": "shell", "run": line}));
    if r["ok"] == true {
        Ok(r["result"]["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap().to_string() + "\n")
            .collect())
    } else {
        Err(r["error"].as_str().unwrap_or_default().to_string())
    }
}

/// The first number after `label` in `text`.
fn number_after(text: &str, label: &str) -> f64 {
    let at = text.find(label).unwrap_or_else(|| panic!("{label:?} not in {text}")) + label.len();
    let num: String = text[at..]
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '-' || *c == '.')
        .collect();
    num.parse().unwrap_or_else(|_| panic!("no number after {label:?} in {text}"))
}

#[test]
fn line_tests_measure_a_tone_hear_digits_loop_back_and_record() {
    let d = Daemon::start(FAST_CONFIG);
    // A loop-back plug at the far end of trunk 1 that returns the tone 6 dB down.
    assert_eq!(d.request(json!({"cmd": "sim.echo", "port": 1, "loss_db": 6}))["ok"], true);
    let out = shell_lines(&d, "test tone 1 2").unwrap();
    let loss = number_after(&out, "loss:");
    assert!((loss - 6.0).abs() < 0.5, "measured loss {loss} dB: {out}");
    let received = number_after(&out, "received:");
    assert!((received - -16.0).abs() < 0.5, "{out}");
    // Without the plug nothing comes back.
    assert_eq!(d.request(json!({"cmd": "sim.echo", "port": 1, "loss_db": null}))["ok"], true);
    let out = shell_lines(&d, "test tone 1 1").unwrap();
    assert!(out.contains("nothing came back"), "{out}");

    // Digits typed at the far end of an idle trunk are heard.
    let dialer = {
        let data = d.data().to_path_buf();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(600));
            let mut c = crate::harness::Client::connect_to(&data);
            c.send(&json!({"cmd": "sim.dial", "port": 2, "digits": "147"}));
            c.recv()
        })
    };
    let out = shell_lines(&d, "test dtmf detect 2 3").unwrap();
    assert_eq!(dialer.join().unwrap()["ok"], true);
    assert!(out.contains("heard 147"), "{out}");

    // Loopback: the far end hears its own digits come back.
    let mut watch = d.connect();
    watch.send(&json!({"cmd": "watch"}));
    watch.recv();
    let looper = {
        let data = d.data().to_path_buf();
        std::thread::spawn(move || {
            let mut c = crate::harness::Client::connect_to(&data);
            c.send(&json!({"cmd": "shell", "run": "test loopback 2 3"}));
            c.recv()
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(d.request(json!({"cmd": "sim.dial", "port": 2, "digits": "9"}))["ok"], true);
    let mut heard = false;
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && !heard {
        if let Some(n) = watch.recv_timeout(Duration::from_millis(200)) {
            let n = &n["notice"];
            heard |=
                n["type"] == "far" && n["port"] == 2 && n["what"].as_str().unwrap_or("").contains("digit 9");
        }
    }
    assert!(heard, "the far end heard its digit come back");
    assert_eq!(looper.join().unwrap()["ok"], true);

    // A recording of the line, as a WAV file.
    let out = shell_lines(&d, "test record 1 1").unwrap();
    let path =
        out.split("wrote ").nth(1).and_then(|s| s.split(" (").next()).unwrap_or_else(|| panic!("{out}"));
    let wav = switchboard::audio::wav::read_wav(Path::new(path)).unwrap();
    assert!((7000..=9000).contains(&wav.samples.len()), "{} samples", wav.samples.len());
    // The channel is back in service after every test.
    let out = shell_lines(&d, "show channels 1-2").unwrap();
    assert!(!out.contains("yes") && !out.contains("testing"), "{out}");
    // A port the card does not have is named in the error.
    let err = shell_lines(&d, "test tone 39").unwrap_err();
    assert!(err.contains("39"), "{err}");
}

#[test]
fn blocked_trunks_take_no_calls_and_hangup_releases_a_call() {
    let d = Daemon::start(FAST_CONFIG);
    shell_lines(&d, "block 1").unwrap();
    let mut c = d.connect();
    c.send(&json!({"id": 1, "cmd": "sim.call", "port": 1, "from": "5550100", "hangup_after": 3.0, "watch": true}));
    let mut notices = vec![];
    while let Some(n) = c.recv_timeout(Duration::from_secs(15)) {
        let end = n["notice"]["type"] == "call_ended";
        notices.push(n["notice"].clone());
        if end {
            break;
        }
    }
    // The exchange gives up ringing the unanswered line.
    assert_eq!(d.request(json!({"cmd": "sim.hangup", "port": 1}))["ok"], true);
    let ended = notices.iter().find(|n| n["type"] == "call_ended").unwrap();
    assert_eq!(ended["cause"], "the trunk is blocked for maintenance", "{notices:?}");
    shell_lines(&d, "unblock 1").unwrap();
    let out = shell_lines(&d, "show channels 1").unwrap();
    assert!(!out.contains("yes"), "{out}");

    // A call in conversation, released from the shell by its port.
    let mut c = d.connect();
    c.send(&json!({"id": 1, "cmd": "sim.call", "port": 2, "from": "5550101", "watch": true}));
    assert_eq!(c.recv()["ok"], true);
    loop {
        let n = c.recv();
        if n["notice"]["type"] == "call_answered" {
            break;
        }
    }
    let calls = shell_lines(&d, "show calls").unwrap();
    assert!(calls.contains("5550101") && calls.contains("talking"), "{calls}");
    let out = shell_lines(&d, "hangup 2").unwrap();
    assert!(out.contains("released"), "{out}");
    let rest = c.notices_until_end();
    let ended = rest.iter().find(|n| n["type"] == "call_ended").unwrap();
    assert_eq!(ended["cause"], "released from the maintenance shell", "{rest:?}");
}

#[test]
fn sigterm_lets_calls_finish_then_stops() {
    let config = format!("{FAST_CONFIG}\n[daemon]\ndrain_seconds = 20\n");
    let mut d = Daemon::start(&config);
    let mut c = d.connect();
    c.send(&json!({"id": 1, "cmd": "sim.call", "port": 1, "from": "5550102", "hangup_after": 3.0, "watch": true}));
    assert_eq!(c.recv()["ok"], true);
    loop {
        if c.recv()["notice"]["type"] == "call_answered" {
            break;
        }
    }
    let asked = Instant::now();
    d.signal(nix::sys::signal::Signal::SIGTERM);
    std::thread::sleep(Duration::from_millis(800));
    assert!(d.is_running(), "the daemon waits for the call");
    // A new call is refused meanwhile.
    let refused = d.call(2, "5550103", "", Some(1.0));
    let ended = refused.iter().find(|n| n["type"] == "call_ended").unwrap();
    assert_eq!(ended["cause"], "the daemon is stopping", "{refused:?}");
    let rest = c.notices_until_end();
    assert!(rest.iter().any(|n| n["type"] == "call_ended"));
    assert!(eventually(Duration::from_secs(10), || !d.is_running()), "{}", d.log());
    assert!(asked.elapsed() < Duration::from_secs(15));
    assert!(d.log().contains("every call has ended"), "{}", d.log());
    // The call was answered and is complete in the database.
    let store = switchboard::store::Store::open(&d.data().join("switchboard.db")).unwrap();
    let cdrs = store.cdr_list(10).wait().unwrap();
    assert!(cdrs.iter().any(|c| c.caller == "5550102" && c.disposition.as_str() == "answered"), "{cdrs:?}");
}

#[test]
fn sigterm_stops_after_the_drain_time_even_with_calls_up() {
    let config = format!("{FAST_CONFIG}\n[daemon]\ndrain_seconds = 2\n");
    let mut d = Daemon::start(&config);
    let mut c = d.connect();
    c.send(&json!({"id": 1, "cmd": "sim.call", "port": 1, "from": "5550104", "watch": true}));
    assert_eq!(c.recv()["ok"], true);
    loop {
        if c.recv()["notice"]["type"] == "call_answered" {
            break;
        }
    }
    let asked = Instant::now();
    d.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(eventually(Duration::from_secs(10), || !d.is_running()), "{}", d.log());
    let took = asked.elapsed();
    assert!(took >= Duration::from_millis(1500), "stopped after {took:?}");
    assert!(d.log().contains("drain time is over"), "{}", d.log());
}

#[test]
fn sighup_reloads_the_configuration_and_keeps_the_old_one_when_the_new_is_broken() {
    let mut d = Daemon::start(FAST_CONFIG);
    let level = |d: &Daemon| shell_lines(d, "log level").unwrap();
    assert!(level(&d).contains("info"));
    // A new log level and an extra route: the first applies now, the second at the next start.
    let changed = FAST_CONFIG.replace("wrap_up_s = 2", "wrap_up_s = 3") + "\n[log]\nlevel = \"debug\"\n";
    std::fs::write(&d.config, changed).unwrap();
    d.signal(nix::sys::signal::Signal::SIGHUP);
    assert!(eventually(Duration::from_secs(5), || level(&d).contains("debug")), "{}", d.log());
    assert!(d.log().contains("take effect at the next restart"), "{}", d.log());
    assert!(d.log().contains("[agent]"), "{}", d.log());
    // A broken file changes nothing, and says where it is broken.
    std::fs::write(&d.config, FAST_CONFIG.to_string() + "\n[log]\nlevel = \"loud\"\n").unwrap();
    d.signal(nix::sys::signal::Signal::SIGHUP);
    assert!(
        eventually(Duration::from_secs(5), || d.log().contains("configuration not reloaded")),
        "{}",
        d.log()
    );
    assert!(d.log().contains("log.level"), "{}", d.log());
    assert!(level(&d).contains("debug"));
    assert!(d.is_running());
}
