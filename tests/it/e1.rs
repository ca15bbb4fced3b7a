//! ISDN PRI through the whole daemon: the simulated card's E1 span exposes its D-channel as a
//! `SOCK_SEQPACKET` socket in the data directory, and libpri (Debian libpri-dev) connects to it
//! as the exchange, while the bearer channels' audio stays simulated. Calls come in with their
//! numbers and ring the seats, agents place calls out, either side clears, the network refuses
//! numbers, and the span survives the exchange going away and coming back.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use switchboard::agent::client::AgentClient;
use switchboard::agent::protocol::EventKind;
use switchboard::store::Role;
use switchboard_libpri_peer::{Call, Event, Node, Peer, Setup};

use crate::harness::{eventually, Client, Daemon};

const PW: &str = "correct horse battery";

/// Seats 1-2, then E1 span 1: bearers on ports 3-17 and 19-33, the D-channel on port 18.
const CONFIG: &str = r#"
[card]
driver = "sim"
law = "alaw"

[sim]
trunk_ports = 0
seat_ports = 2
e1_spans = 1
seat_answer_delay_ms = 300

[engine]
realtime_priority = 0

[calls]
record = true

[agent]
listen = "127.0.0.1:0"
wrap_up_s = 1
ring_seats_without_agent = true

[[route]]
name = "sales"
e1_spans = [1]
number = "8000"
seats = [1, 2]
strategy = "sequential"

[[e1]]
span = 1
signalling = "pri-cpe"
"#;

/// What the test asks of the exchange thread.
enum Cmd {
    Call { called: String, calling: String },
    Hangup { cause: i32 },
    Stop,
}

/// libpri as the exchange (network side), on its own thread because libpri is not `Send`.
/// It answers our outgoing calls after alerting, except numbers starting with 17 (busy) and
/// 14 (unallocated), and acknowledges every clearing the way Asterisk does.
struct Exchange {
    cmds: mpsc::Sender<Cmd>,
    events: mpsc::Receiver<Event>,
    thread: Option<JoinHandle<()>>,
}

fn connect(path: &Path) -> OwnedFd {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // SAFETY: a plain socket call; the descriptor is owned at once.
        let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0) };
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        let bytes = path.as_os_str().as_encoded_bytes();
        assert!(bytes.len() < addr.sun_path.len(), "socket path too long");
        for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
            *d = *s as libc::c_char;
        }
        // SAFETY: addr is a valid sockaddr_un of the size given.
        let rc = unsafe {
            libc::connect(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_un).cast(),
                std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            return fd;
        }
        assert!(
            Instant::now() < deadline,
            "cannot connect to {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Exchange {
    fn start(socket: &Path) -> Exchange {
        let fd = connect(socket);
        let (cmd_tx, cmd_rx) = mpsc::channel::<Cmd>();
        let (ev_tx, ev_rx) = mpsc::channel::<Event>();
        let thread = std::thread::spawn(move || {
            let mut peer = Peer::new(fd.as_raw_fd(), Node::Network);
            let mut last: Option<Call> = None;
            // The network side picks the B-channel: a new one for each call.
            let mut next_channel = 0;
            let mut answer_at: Vec<(Instant, Call, i32)> = Vec::new();
            loop {
                match cmd_rx.try_recv() {
                    Ok(Cmd::Stop) | Err(mpsc::TryRecvError::Disconnected) => break,
                    Ok(Cmd::Call { called, calling }) => {
                        let setup = Setup {
                            called,
                            called_plan: 0x41,
                            complete: true,
                            calling: Some(calling),
                            calling_plan: 0x21,
                            calling_pres: 0x00,
                            channel: next_channel % 30 + 1,
                            exclusive: true,
                        };
                        next_channel += 1;
                        last = peer.call(&setup);
                    }
                    Ok(Cmd::Hangup { cause }) => {
                        if let Some(call) = last {
                            peer.hangup(call, cause);
                        }
                    }
                    Err(mpsc::TryRecvError::Empty) => {}
                }
                let now = Instant::now();
                answer_at.retain(|&(at, call, channel)| {
                    if now >= at {
                        peer.answer(call, channel);
                        false
                    } else {
                        true
                    }
                });
                let mut p = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
                // SAFETY: one valid pollfd.
                let ready = unsafe { libc::poll(&mut p, 1, 5) } > 0 && p.revents & libc::POLLIN != 0;
                let mut events = Vec::new();
                if ready {
                    events.extend(peer.check_event());
                }
                if peer.next_timeout().is_some_and(|t| t.is_zero()) {
                    events.extend(peer.schedule_run());
                }
                for e in events {
                    match &e {
                        Event::Ring { call, channel, called, .. } => {
                            last = Some(*call);
                            peer.proceeding(*call, *channel);
                            if called.starts_with("17") {
                                peer.hangup(*call, 17);
                            } else if called.starts_with("14") {
                                peer.hangup(*call, 1);
                            } else {
                                peer.alerting(*call, *channel);
                                answer_at.push((
                                    Instant::now() + Duration::from_millis(500),
                                    *call,
                                    *channel,
                                ));
                            }
                        }
                        Event::Hangup { call, cause, .. } | Event::HangupReq { call, cause } => {
                            peer.hangup(*call, if *cause > 0 { *cause } else { 16 });
                        }
                        _ => {}
                    }
                    if ev_tx.send(e).is_err() {
                        return;
                    }
                }
            }
        });
        Exchange { cmds: cmd_tx, events: ev_rx, thread: Some(thread) }
    }

    fn send(&self, cmd: Cmd) {
        self.cmds.send(cmd).expect("the exchange thread is running");
    }

    /// Waits for an event the predicate accepts, skipping others.
    fn wait(&self, what: &str, pred: impl Fn(&Event) -> bool) -> Event {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(e) if pred(&e) => return e,
                Ok(_) => {}
                Err(_) => panic!("the exchange did not see {what}"),
            }
        }
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        let _ = self.cmds.send(Cmd::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn daemon() -> Daemon {
    let mut d = Daemon::prepare(CONFIG);
    d.env.push(("RUST_LOG".into(), "info,switchboard::daemon::core::pri=debug".into()));
    d.add_agents(&[("1001", Role::Agent, PW)]);
    d.spawn();
    d
}

/// Notices until one the predicate accepts (or a timeout).
fn notice_until(c: &mut Client, pred: impl Fn(&Value) -> bool) -> Option<Value> {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Some(n) = c.recv_timeout(Duration::from_millis(500)) {
            if pred(&n["notice"]) {
                return Some(n["notice"].clone());
            }
        }
    }
    None
}

fn finished_cdrs(d: &Daemon, n: usize) -> Vec<Value> {
    let mut cdrs = Vec::new();
    eventually(Duration::from_secs(10), || {
        cdrs = d.cdrs().into_iter().filter(|c| c["disposition"] != "in_progress").collect();
        cdrs.len() >= n
    });
    cdrs
}

#[test]
fn calls_from_the_exchange_ring_the_seats_and_clear_either_way() {
    let _g = crate::pri::lock();
    let d = daemon();
    let mut watch = d.connect();
    watch.send(&json!({"id": 1, "cmd": "watch"}));
    let x = Exchange::start(&d.data().join("e1-span1.sock"));
    x.wait("the D-channel up", |e| *e == Event::DchanUp);

    // A call to the sales number: a seat rings and answers, the exchange sees the answer.
    x.send(Cmd::Call { called: "0108000".into(), calling: "83366857".into() });
    let offered = notice_until(&mut watch, |n| n["type"] == "call_offered")
        .unwrap_or_else(|| panic!("call offered: {}", d.log()));
    assert_eq!(offered["caller"], "83366857", "{offered}");
    let bearer = offered["trunk"].as_u64().expect("trunk port");
    assert!((3..=33).contains(&bearer) && bearer != 18, "a bearer channel: {bearer}");
    x.wait("the answer", |e| matches!(e, Event::Answer { .. }));
    // The bearer's audio is simulated: digits from the network side reach our detector.
    let r = d.request(json!({"cmd": "sim.dial", "port": bearer, "digits": "42"}));
    assert_eq!(r["ok"], true, "{r}");
    let digit =
        notice_until(&mut watch, |n| n["type"] == "digit" && n["digit"] == "2").expect("digits heard");
    assert_eq!(digit["port"], bearer);
    // The caller hangs up.
    x.send(Cmd::Hangup { cause: 16 });
    let cdr = &finished_cdrs(&d, 1)[0];
    assert_eq!(cdr["disposition"], "answered", "{cdr}");
    assert_eq!(cdr["caller"], "83366857");
    assert_eq!(cdr["trunk_port"], bearer);
    assert!(cdr["vocid"].is_string(), "recorded: {cdr}");

    // A second call, cleared by us: the seat's phone hangs up, the exchange is told.
    x.send(Cmd::Call { called: "8000".into(), calling: "13901234567".into() });
    let answered = notice_until(&mut watch, |n| n["type"] == "call_answered").expect("answered");
    let seat = answered["seat"].as_u64().expect("seat");
    x.wait("the answer", |e| matches!(e, Event::Answer { .. }));
    let r = d.request(json!({"cmd": "sim.hangup", "port": seat}));
    assert_eq!(r["ok"], true, "{r}");
    let e = x.wait("our clearing", |e| matches!(e, Event::HangupReq { .. } | Event::Hangup { .. }));
    let (Event::HangupReq { cause, .. } | Event::Hangup { cause, .. }) = e else { unreachable!() };
    assert_eq!(cause, 16, "normal clearing");

    // A number no route takes is refused as unallocated.
    x.send(Cmd::Call { called: "9999".into(), calling: "83366857".into() });
    let e = x.wait("the refusal", |e| matches!(e, Event::HangupReq { .. } | Event::Hangup { .. }));
    let (Event::HangupReq { cause, .. } | Event::Hangup { cause, .. }) = e else { unreachable!() };
    assert_eq!(cause, 1, "unallocated number");
    let cdrs = finished_cdrs(&d, 2);
    assert_eq!(cdrs.len(), 2, "the refused call rang nobody: {cdrs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_call_out_over_the_span_and_the_span_survives_the_exchange_restarting() {
    let _g = tokio::task::block_in_place(crate::pri::lock);
    let d = tokio::task::block_in_place(daemon);
    let socket = d.data().join("e1-span1.sock");
    let x = tokio::task::block_in_place(|| {
        let x = Exchange::start(&socket);
        x.wait("the D-channel up", |e| *e == Event::DchanUp);
        x
    });
    let mut a = AgentClient::connect(d.agent_addr()).await.expect("agent port");
    a.hello("tests").await.expect("hello");
    a.login("1001", PW).await.expect("login");
    a.open_app(1).await.expect("seat 1");
    let mut watch = tokio::task::block_in_place(|| {
        let mut w = d.connect();
        w.send(&json!({"id": 1, "cmd": "watch"}));
        w
    });
    // The Q.921 link may come up just after the D-channel; give it a moment.
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Click-to-call: the agent's phone rings and answers, the number goes out en bloc.
    a.do_action(7, 3, "12345").await.expect("call out");
    let ring = tokio::task::block_in_place(|| x.wait("our SETUP", |e| matches!(e, Event::Ring { .. })));
    let Event::Ring { called, .. } = ring else { unreachable!() };
    assert_eq!(called, "12345");
    a.wait_for(EventKind::Talk).await.expect("Talk once the exchange answers");
    a.do_action(2, 0, "").await.expect("hang up");
    tokio::task::block_in_place(|| {
        x.wait("our clearing", |e| matches!(e, Event::HangupReq { .. } | Event::Hangup { .. }))
    });

    // A busy number: the agent hears of it and the record says so.
    tokio::time::sleep(Duration::from_secs(2)).await;
    a.do_action(7, 3, "17000").await.expect("call out");
    let progress = loop {
        let e = a.wait_for(EventKind::Progress).await.expect("progress");
        if e.s_param.contains("busy") {
            break e;
        }
    };
    assert!(progress.s_param.contains("PROGRESS:busy"), "{}", progress.s_param);
    let cdrs = tokio::task::block_in_place(|| finished_cdrs(&d, 2));
    assert!(cdrs.iter().any(|c| c["disposition"] == "busy" && c["callee"] == "17000"), "{cdrs:?}");
    assert!(cdrs.iter().any(|c| c["disposition"] == "answered" && c["callee"] == "12345"), "{cdrs:?}");

    // The exchange goes away in the middle of a call: the span is in alarm and the call is
    // torn down. When it comes back, the span recovers and calls work again.
    let r = tokio::task::block_in_place(|| {
        x.send(Cmd::Call { called: "8000".into(), calling: "83366857".into() });
        notice_until(&mut watch, |n| n["type"] == "call_answered")
    });
    assert!(r.is_some(), "the call before the restart was answered");
    drop(x);
    let alarm = tokio::task::block_in_place(|| notice_until(&mut watch, |n| n["type"] == "span_alarm"))
        .expect("the span alarm");
    assert_eq!(alarm["span"], 2, "the card's second span: the seats' analog span is the first");
    assert!(alarm["alarm"].as_str().unwrap_or_default().contains("los"), "{alarm}");
    let ended = tokio::task::block_in_place(|| notice_until(&mut watch, |n| n["type"] == "call_ended"));
    assert!(ended.is_some(), "the call on the span in alarm ended");
    // The technician's shell shows it too.
    let shell = |line: &str| {
        let r = d.request(serde_json::json!({"cmd": "shell", "run": line}));
        assert_eq!(r["ok"], true, "{r}");
        r["result"]["lines"].to_string()
    };
    let alarms = tokio::task::block_in_place(|| shell("show alarms"));
    assert!(alarms.contains("span 2") && alarms.contains("los"), "{alarms}");
    let spans = tokio::task::block_in_place(|| shell("show spans"));
    assert!(spans.contains("PRI, down"), "{spans}");

    let x = tokio::task::block_in_place(|| {
        let x = Exchange::start(&socket);
        x.wait("the D-channel up again", |e| *e == Event::DchanUp);
        x
    });
    let cleared = tokio::task::block_in_place(|| notice_until(&mut watch, |n| n["type"] == "span_alarm"))
        .expect("the alarm cleared");
    assert_eq!(cleared["alarm"], "", "{cleared}");
    tokio::task::block_in_place(|| {
        x.send(Cmd::Call { called: "8000".into(), calling: "83366857".into() });
        x.wait("the answer after the restart", |e| matches!(e, Event::Answer { .. }));
        x.send(Cmd::Hangup { cause: 16 });
    });
}

/// On a machine without DAHDI (like this one), a DAHDI configuration checks fine, and the
/// daemon refuses to start with a message that names the device, instead of running without
/// its card.
#[test]
fn a_dahdi_configuration_checks_and_the_daemon_says_when_the_card_is_missing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("switchboard.toml");
    std::fs::write(
        &config,
        "[card]\ndriver = \"dahdi\"\n[dahdi]\nboard = \"digium-te420\"\nchannel_device = \"/nonexistent/dahdi/channel\"\n\
         [[e1]]\nspan = 1\n[[route]]\nname = \"isdn\"\ne1_spans = [1]\nqueue = \"sales\"\n\
         [[queue]]\nname = \"sales\"\nmembers = []\n[agent]\nlisten = \"127.0.0.1:0\"\n",
    )
    .expect("config");
    let out = std::process::Command::new(crate::harness::BIN)
        .args(["check"])
        .arg(&config)
        .output()
        .expect("run check");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("1 E1 spans") || text.contains("4 E1 spans"), "{text}");
    let out = std::process::Command::new(crate::harness::BIN)
        .args(["run", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .expect("run the daemon");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the daemon must not run without its card: {err}");
    assert!(err.contains("/nonexistent/dahdi/channel"), "the message names the device: {err}");
}
