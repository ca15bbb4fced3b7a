//! Runs the real `switchboard` binary as a daemon in a temporary data directory and talks to
//! it through its real control socket.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const BIN: &str = env!("CARGO_BIN_EXE_switchboard");

/// A configuration with short timings so calls take a few seconds.
pub const FAST_CONFIG: &str = r#"
[card]
driver = "sim"
law = "alaw"

[sim]
trunk_ports = 2
seat_ports = 3
pacing = "realtime"
ring_cadence_ms = [1000, 4000]
seat_answer_delay_ms = 400

[engine]
realtime_priority = 0

[calls]
record = true
seat_ring_timeout_s = 10

[agent]
listen = "127.0.0.1:0"
wrap_up_s = 2
integration_keys = ["crm-integration-key-0001"]

[[route]]
name = "support"
trunks = [1, 2]
seats = [3, 4, 5]
strategy = "sequential"
"#;

pub struct Daemon {
    pub dir: tempfile::TempDir,
    child: Option<Child>,
    pub config: PathBuf,
    /// Extra environment for the daemon process (e.g. `ALSA_CONFIG_PATH`).
    pub env: Vec<(String, String)>,
}

impl Daemon {
    /// Starts a daemon with `config` and waits until its control socket answers.
    pub fn start(config: &str) -> Daemon {
        let mut d = Daemon::prepare(config);
        d.spawn();
        d
    }

    /// A data directory and configuration, without starting the daemon.
    pub fn prepare(config: &str) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("switchboard.toml");
        std::fs::write(&path, config).unwrap();
        Daemon { dir, child: None, config: path, env: Vec::new() }
    }

    /// Creates accounts in the data directory's database.
    pub fn add_agents(&self, agents: &[(&str, switchboard::store::Role, &str)]) {
        let store = switchboard::store::Store::open(&self.data().join("switchboard.db")).unwrap();
        for (id, role, password) in agents {
            switchboard::accounts::add_agent(&store, "test", id, &format!("Agent {id}"), *role, password)
                .unwrap();
        }
    }

    /// The TCP address of the agent protocol.
    pub fn agent_addr(&self) -> String {
        let status = self.request(json!({"cmd": "status"}));
        format!("127.0.0.1:{}", status["result"]["agent_port"])
    }

    pub fn data(&self) -> &Path {
        self.dir.path()
    }

    /// Starts (or restarts) the daemon process on the same data directory.
    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data().join("daemon.log"))
            .unwrap();
        let child = Command::new(BIN)
            .args(["run", "--config"])
            .arg(&self.config)
            .arg("--data-dir")
            .arg(self.data())
            .env("RUST_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("daemon exited with {status}: {}", self.log());
            }
            if UnixStream::connect(self.data().join("control.sock")).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("daemon did not open its control socket: {}", self.log());
    }

    /// Sends a signal to the daemon process.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let child = self.child.as_ref().expect("the daemon runs");
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, signal).expect("signal the daemon");
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data().join("daemon.log")).unwrap_or_default()
    }

    /// SIGKILLs the daemon.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// Sends SIGTERM and waits for a clean exit. A daemon with calls up waits for them to end
    /// (the drain time); a second SIGTERM after a moment stops it at once, as tests want.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("daemon running");
        let pid = nix::unistd::Pid::from_raw(c.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let deadline = Instant::now() + Duration::from_millis(500);
        while Instant::now() < deadline {
            if let Some(status) = c.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        c.wait().unwrap()
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    pub fn connect(&self) -> Client {
        Client::connect_to(self.data())
    }

    /// One request, one answer.
    pub fn request(&self, request: Value) -> Value {
        let mut c = self.connect();
        c.send(&request);
        c.recv()
    }

    /// Places a simulated call and returns every notice until it ends.
    pub fn call(&self, port: u16, from: &str, digits: &str, hangup_after: Option<f64>) -> Vec<Value> {
        let mut c = self.connect();
        c.send(&json!({"id": 1, "cmd": "sim.call", "port": port, "from": from, "digits": digits,
                        "digits_delay_ms": 300, "hangup_after": hangup_after, "watch": true}));
        let answer = c.recv();
        assert_eq!(answer["ok"], true, "{answer}");
        c.notices_until_end()
    }

    pub fn cdrs(&self) -> Vec<Value> {
        let r = self.request(json!({"id": 9, "cmd": "cdr.list", "limit": 100}));
        assert_eq!(r["ok"], true, "{r}");
        r["result"].as_array().unwrap().clone()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub struct Client {
    stream: UnixStream,
    reader: BufReader<UnixStream>,
}

impl Client {
    pub fn connect_to(data: &Path) -> Client {
        let stream = UnixStream::connect(data.join("control.sock")).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        Client { reader: BufReader::new(stream.try_clone().unwrap()), stream }
    }

    pub fn send(&mut self, v: &Value) {
        self.send_raw(format!("{v}\n").as_bytes());
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// The next line, or None when nothing comes within `timeout`.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Option<Value> {
        self.stream.set_read_timeout(Some(timeout.max(Duration::from_millis(1)))).unwrap();
        let mut line = String::new();
        let got = self.reader.read_line(&mut line);
        self.stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        match got {
            Ok(n) if n > 0 => {
                Some(serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad line {line:?}: {e}")))
            }
            _ => None,
        }
    }

    pub fn recv(&mut self) -> Value {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad line {line:?}: {e}"))
    }

    /// Notices up to and including `call_ended`.
    pub fn notices_until_end(&mut self) -> Vec<Value> {
        let mut out = vec![];
        loop {
            let n = self.recv();
            let notice = n["notice"].clone();
            out.push(notice.clone());
            if notice["type"] == "call_ended" {
                return out;
            }
            if notice["type"] == "far" && notice["what"].as_str().unwrap_or("").starts_with("refused") {
                return out;
            }
        }
    }
}

/// The notices of one type.
pub fn of_type<'a>(notices: &'a [Value], kind: &str) -> Vec<&'a Value> {
    notices.iter().filter(|n| n["type"] == kind).collect()
}

/// Waits until `f` is true or the timeout passes.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}
