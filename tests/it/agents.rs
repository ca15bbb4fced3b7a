//! The agent control protocol over real TCP, against the daemon on the simulated card.

use std::time::Duration;

use serde_json::json;
use switchboard::agent::client::{AgentClient, ClientError};
use switchboard::agent::protocol::{ErrorCode, EventKind};
use switchboard::agent::tags::Tags;
use switchboard::store::Role;

use crate::harness::{Daemon, FAST_CONFIG};

const PW: &str = "correct horse battery";

/// A daemon with two agents and a supervisor. The set-up blocks (argon2, SQLite, waiting for
/// the socket), so it runs outside the async worker.
fn daemon(config: &str) -> Daemon {
    tokio::task::block_in_place(|| {
        let mut d = Daemon::prepare(config);
        d.add_agents(&[("1001", Role::Agent, PW), ("1002", Role::Agent, PW), ("9001", Role::Supervisor, PW)]);
        d.spawn();
        d
    })
}

fn code(e: ClientError) -> ErrorCode {
    match e {
        ClientError::Server(body) => body.code,
        other => panic!("expected a server error, got {other}"),
    }
}

/// The sParam of the next AgentState event that starts with `prefix`.
async fn state_after(c: &mut AgentClient, prefix: &str) -> String {
    loop {
        let e = c.wait_for(EventKind::AgentState).await.unwrap();
        if e.s_param.starts_with(prefix) {
            return e.s_param;
        }
    }
}

async fn agent(addr: &str, id: &str, seat: u16) -> AgentClient {
    let mut c = AgentClient::connect(addr).await.unwrap();
    let hello = c.hello("tests").await.unwrap();
    assert_eq!(hello["protocol"], 1);
    let who = c.login(id, PW).await.unwrap();
    assert_eq!(who["agent"], id);
    let seat = c.open_app(seat).await.unwrap();
    assert_eq!(seat["kind"], 1);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_gets_ring_talk_with_vocid_dtmf_hangup_and_wrap_up() {
    let d = daemon(FAST_CONFIG);
    let addr = d.agent_addr();
    let mut a = agent(&addr, "1001", 3).await;
    assert_eq!(
        a.action_enables().await.unwrap(),
        (1 << 7) | (1 << 11) | (1 << 16) | (1 << 17),
        "idle: call out, pause, set state, message"
    );

    let r = d.request(json!({"cmd": "sim.call", "port": 1, "from": "83366857", "digits": "5",
                             "digits_delay_ms": 300, "hangup_after": 2.0}));
    assert_eq!(r["ok"], true);
    let ring = a.wait_for(EventKind::Ring).await.unwrap();
    assert_eq!(ring.slice_no, 3);
    assert_eq!(ring.i_param, 1, "external call");
    let tags = Tags::parse(&ring.s_param).unwrap();
    assert_eq!(tags.get("CALLERID"), Some("83366857"));
    assert_eq!(tags.get("TTYPE"), Some("2"));

    let talk = a.wait_for(EventKind::Talk).await.unwrap();
    let tags = Tags::parse(&talk.s_param).unwrap();
    let vocid = tags.get("VOCID").expect("Talk carries the VOCID").to_string();
    assert_eq!(
        a.action_enables().await.unwrap(),
        (1 << 2) | (1 << 3) | (1 << 5) | (1 << 6) | (1 << 10) | (1 << 14) | (1 << 16),
        "talking: hang up, hold, transfer, consult, send DTMF, to IVR, message"
    );
    let dtmf = a.wait_for(EventKind::Dtmf).await.unwrap();
    assert_eq!(dtmf.s_param, "5");
    let hangup = a.wait_for(EventKind::Hangup).await.unwrap();
    assert_eq!(hangup.s_param, "CAUSE:caller hung up|");
    let state = a.wait_for(EventKind::AgentState).await.unwrap();
    assert!(state.s_param.starts_with("STATE:wrap-up|"), "{}", state.s_param);
    // The wrap-up (2 s in this configuration) ends by itself.
    let state = a.wait_for(EventKind::AgentState).await.unwrap();
    assert!(state.s_param.starts_with("STATE:idle|"), "{}", state.s_param);

    let cdr = &d.cdrs()[0];
    assert_eq!(cdr["vocid"], vocid.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_agents_get_no_calls_and_the_desktop_can_hang_up() {
    let d = daemon(FAST_CONFIG);
    let addr = d.agent_addr();
    let mut a = agent(&addr, "1001", 3).await;
    let mut b = agent(&addr, "1002", 4).await;
    a.do_action(11, 0, "training").await.unwrap();
    assert_eq!(state_after(&mut a, "STATE:paused").await, "STATE:paused|REASON:training|AGENT:1001|");

    // Sequential routing would take seat 3 first; paused, the call goes to seat 4.
    let r = d.request(json!({"cmd": "sim.call", "port": 2, "from": "10010", "digits": ""}));
    assert_eq!(r["ok"], true);
    let ring = b.wait_for(EventKind::Ring).await.unwrap();
    assert_eq!(ring.slice_no, 4);
    b.wait_for(EventKind::Talk).await.unwrap();
    // An action not allowed in the state is refused and changes nothing.
    assert_eq!(code(b.do_action(12, 0, "").await.unwrap_err()), ErrorCode::NotAllowed);
    assert_eq!(code(b.do_action(10, 0, "12x").await.unwrap_err()), ErrorCode::BadRequest);
    b.do_action(2, 0, "").await.unwrap();
    let hangup = b.wait_for(EventKind::Hangup).await.unwrap();
    assert_eq!(hangup.s_param, "CAUSE:released from the agent desktop|");
    assert!(crate::harness::eventually(Duration::from_secs(5), || {
        d.cdrs().first().is_some_and(|c| c["cause"] == "released from the agent desktop")
    }));
    a.do_action(12, 0, "").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_are_checked_rate_limited_and_single_seat() {
    let d = daemon(FAST_CONFIG);
    let addr = d.agent_addr();
    let mut c = AgentClient::connect(&addr).await.unwrap();
    // Nothing works before login.
    assert_eq!(code(c.open_app(3).await.unwrap_err()), ErrorCode::NotLoggedIn);
    let e = code(c.login("1001", "wrong password").await.unwrap_err());
    assert_eq!(e, ErrorCode::AuthFailed);
    let e = c.login("nobody", "wrong password").await.unwrap_err();
    assert!(e.to_string().contains("unknown agent or wrong password"), "{e}");
    for _ in 0..5 {
        let _ = c.login("1002", "still wrong").await;
    }
    // Five failures lock the account, even with the right password.
    assert_eq!(code(c.login("1002", PW).await.unwrap_err()), ErrorCode::RateLimited);

    let mut a = agent(&addr, "1001", 3).await;
    let mut other = AgentClient::connect(&addr).await.unwrap();
    other.login("9001", PW).await.unwrap();
    assert_eq!(code(other.open_app(3).await.unwrap_err()), ErrorCode::SeatBusy);
    assert_eq!(code(other.open_app(1).await.unwrap_err()), ErrorCode::NoSuchSeat);
    // The same agent logging in again takes over; the old connection is closed.
    let mut again = AgentClient::connect(&addr).await.unwrap();
    again.login("1001", PW).await.unwrap();
    assert!(matches!(a.read_line().await, Err(ClientError::Closed)));
    assert_eq!(
        again.action_enables().await.unwrap(),
        (1 << 7) | (1 << 11) | (1 << 16) | (1 << 17),
        "the seat came back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supervisor_controls_are_enforced_and_audited() {
    let d = daemon(FAST_CONFIG);
    let addr = d.agent_addr();
    let mut a = agent(&addr, "1001", 3).await;
    let mut s = AgentClient::connect(&addr).await.unwrap();
    let who = s.login("9001", PW).await.unwrap();
    assert_eq!(who["role"], "supervisor");
    // An agent may not control another seat, whatever its client claims.
    assert_eq!(code(a.do_control(3, 7, 7).await.unwrap_err()), ErrorCode::Forbidden);
    let seats = s.call(json!({"cmd": "SubscribeAll"})).await.unwrap();
    assert_eq!(seats["seats"][0]["agent"], "1001");
    s.do_control(3, 7, 7).await.unwrap();
    assert_eq!(state_after(&mut a, "STATE:paused").await, "STATE:paused|REASON:forced by 9001|AGENT:1001|");
    // The supervisor sees the seat's events too.
    let seen = s.wait_for(EventKind::AgentState).await.unwrap();
    assert_eq!(seen.slice_no, 3);
    s.do_control(3, 6, 0).await.unwrap();
    assert_eq!(code(a.action_enables().await.unwrap_err()), ErrorCode::NotLoggedIn);
    // Listening in needs the supervisor's own seat (its phone is where they listen).
    assert_eq!(code(s.do_control(3, 1, 0).await.unwrap_err()), ErrorCode::NoSeat);
    assert_eq!(code(s.do_control(3, 4, 0).await.unwrap_err()), ErrorCode::NoSeat);

    // Audit rows are written by the store thread shortly after the answers.
    let db = d.data().join("switchboard.db");
    let rows = tokio::task::spawn_blocking(move || {
        let store = switchboard::store::Store::open(&db).unwrap();
        let mut rows = vec![];
        for _ in 0..50 {
            rows = store
                .audit_list(50)
                .wait()
                .unwrap()
                .iter()
                .filter(|r| r.action.starts_with("control."))
                .map(|r| (r.actor.clone(), r.action.clone(), r.result.as_str().to_string()))
                .collect::<Vec<(String, String, String)>>();
            if rows.len() >= 4 {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        rows
    })
    .await
    .unwrap();
    assert!(rows.contains(&("1001".into(), "control.force-state".into(), "denied".into())), "{rows:?}");
    assert!(rows.contains(&("9001".into(), "control.force-state".into(), "ok".into())), "{rows:?}");
    assert!(rows.contains(&("9001".into(), "control.force-logout".into(), "ok".into())), "{rows:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_lines_get_errors_and_slow_or_silent_clients_are_dropped() {
    let d = daemon(&FAST_CONFIG.replace("wrap_up_s = 2", "wrap_up_s = 2\nlogin_timeout_s = 1"));
    let addr = d.agent_addr();
    let mut a = agent(&addr, "1001", 3).await;
    for bad in [
        &b"not json\n"[..],
        b"{\"cmd\":\"Explode\"}\n",
        b"{\"cmd\":\"DoAction\",\"actId\":\"seven\"}\n",
        &[0xff, 0xfe, b'\n'],
    ] {
        a.send_raw(bad).await.unwrap();
        match a.read_line().await.unwrap() {
            switchboard::agent::protocol::ServerLine::Response { ok, error, .. } => {
                assert!(!ok);
                assert_eq!(error.unwrap().code, ErrorCode::BadRequest);
            }
            other => panic!("{other:?}"),
        }
    }
    let mut long = vec![b'x'; 70 * 1024];
    long.push(b'\n');
    a.send_raw(&long).await.unwrap();
    assert!(matches!(
        a.read_line().await.unwrap(),
        switchboard::agent::protocol::ServerLine::Response { error: Some(e), .. } if e.code == ErrorCode::LineTooLong
    ));
    assert_eq!(code(a.do_action(1234, 0, "").await.unwrap_err()), ErrorCode::BadRequest);
    assert_eq!(
        a.action_enables().await.unwrap(),
        (1 << 7) | (1 << 11) | (1 << 16) | (1 << 17),
        "the session is still usable"
    );

    // A connection that never logs in is closed.
    let mut silent = AgentClient::connect(&addr).await.unwrap();
    let line = silent.read_line().await.unwrap();
    assert!(
        matches!(line, switchboard::agent::protocol::ServerLine::Response { error: Some(e), .. } if e.code == ErrorCode::NotLoggedIn)
    );
    assert!(matches!(silent.read_line().await, Err(ClientError::Closed)));

    // A client that sends requests and never reads the answers is disconnected.
    let mut slow = agent(&addr, "1002", 4).await;
    let burst = "{\"cmd\":\"querySeats\"}\n".repeat(2000);
    let mut sent = 0;
    while sent < 40 {
        if tokio::time::timeout(Duration::from_secs(2), slow.send_raw(burst.as_bytes())).await.is_err() {
            break;
        }
        sent += 1;
    }
    assert!(
        crate::harness::eventually(Duration::from_secs(10), || d.log().contains("it stopped reading")),
        "{}",
        d.log()
    );
    // Everyone else is unaffected.
    assert_eq!(a.action_enables().await.unwrap(), (1 << 7) | (1 << 11) | (1 << 16) | (1 << 17));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_business_system_logs_an_agent_in_with_a_one_time_ticket() {
    let d = daemon(FAST_CONFIG);
    let addr = d.agent_addr();
    let mut crm = AgentClient::connect(&addr).await.unwrap();
    let bad = crm
        .call(json!({"cmd": "SetLoginInfo", "integrationKey": "guess-the-key-000001", "agent": "1001"}))
        .await;
    assert_eq!(code(bad.unwrap_err()), ErrorCode::AuthFailed);
    let issued = crm
        .call(json!({"cmd": "SetLoginInfo", "integrationKey": "crm-integration-key-0001", "agent": "1001"}))
        .await
        .unwrap();
    let ticket = issued["ticket"].as_str().unwrap().to_string();
    assert_eq!(ticket.len(), 32);

    let mut a = AgentClient::connect(&addr).await.unwrap();
    // A ticket is for one agent only.
    let wrong = a.call(json!({"cmd": "Login", "agent": "1002", "ticket": ticket})).await;
    assert_eq!(code(wrong.unwrap_err()), ErrorCode::AuthFailed);
    let issued = crm
        .call(json!({"cmd": "SetLoginInfo", "integrationKey": "crm-integration-key-0001", "agent": "1001"}))
        .await
        .unwrap();
    let ticket = issued["ticket"].as_str().unwrap().to_string();
    let who = a.call(json!({"cmd": "Login", "agent": "1001", "ticket": ticket})).await.unwrap();
    assert_eq!(who["agent"], "1001");
    assert_eq!(a.open_app(3).await.unwrap()["stateName"], "idle");
    // And it works once.
    let mut b = AgentClient::connect(&addr).await.unwrap();
    let again = b.call(json!({"cmd": "Login", "agent": "1001", "ticket": ticket})).await;
    assert_eq!(code(again.unwrap_err()), ErrorCode::AuthFailed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_caller_hears_hold_music_while_held_and_agents_exchange_messages() {
    let d = daemon(FAST_CONFIG);
    let addr = d.agent_addr();
    let mut a = agent(&addr, "1001", 3).await;
    let mut b = agent(&addr, "1002", 4).await;
    let mut watch = tokio::task::block_in_place(|| {
        let mut w = d.connect();
        w.send(&json!({"id": 1, "cmd": "watch"}));
        assert_eq!(w.recv()["ok"], true);
        w
    });
    let r = d.request(json!({"cmd": "sim.call", "port": 1, "from": "5"}));
    assert_eq!(r["ok"], true);
    a.wait_for(EventKind::Talk).await.unwrap();
    a.do_action(3, 0, "").await.unwrap();
    assert!(state_after(&mut a, "STATE:held").await.starts_with("STATE:held|"));
    assert_eq!(
        a.action_enables().await.unwrap(),
        (1 << 2) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 16),
        "held: hang up, retrieve, transfer, consult"
    );
    // The caller hears the hold music: sound on a line where nobody speaks.
    tokio::task::block_in_place(|| loop {
        let n = watch.recv()["notice"].clone();
        if n["type"] == "far" && n["port"] == 1 && n["what"] == "hears sound" {
            break;
        }
    });
    a.do_action(4, 0, "").await.unwrap();
    assert!(state_after(&mut a, "STATE:talking").await.starts_with("STATE:talking|"));

    // Messages: to one agent, then to everyone.
    let r = a.do_action(16, 0, "1002|please take line 2: VIP").await.unwrap();
    assert_eq!(r["delivered"], 1);
    let m = b.wait_for(EventKind::Message).await.unwrap();
    assert_eq!(Tags::parse(&m.s_param).unwrap().get("TEXT"), Some("please take line 2: VIP"));
    assert_eq!(Tags::parse(&m.s_param).unwrap().get("FROM"), Some("1001"));
    assert_eq!(code(a.do_action(16, 0, "7777|hello").await.unwrap_err()), ErrorCode::NotAllowed);
    assert_eq!(b.do_action(16, 2, "lunch at noon").await.unwrap()["delivered"], 1);
    let m = a.wait_for(EventKind::Message).await.unwrap();
    assert_eq!((m.i_param, m.slice_no), (2, 4));
    a.do_action(2, 0, "").await.unwrap();
    a.wait_for(EventKind::Hangup).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn click_to_call_reaches_the_far_end_and_busy_numbers_fail_cleanly() {
    let d = daemon(FAST_CONFIG);
    let addr = d.agent_addr();
    let mut a = agent(&addr, "1001", 3).await;
    let mut watch = tokio::task::block_in_place(|| {
        let mut w = d.connect();
        w.send(&json!({"id": 1, "cmd": "watch"}));
        assert_eq!(w.recv()["ok"], true);
        w
    });
    assert_eq!(a.action_enables().await.unwrap() & 128, 128, "call out allowed when idle");
    assert_eq!(code(a.do_action(7, 3, "8336x857").await.unwrap_err()), ErrorCode::BadRequest);
    // The reference's click-to-call: DoAction(7, 3, number).
    a.do_action(7, 3, "83366857").await.unwrap();
    let ring = a.wait_for(EventKind::Ring).await.unwrap();
    let tags = Tags::parse(&ring.s_param).unwrap();
    assert_eq!((tags.get("CALLERID"), tags.get("TTYPE")), (Some("83366857"), Some("1")));
    let progress = a.wait_for(EventKind::Progress).await.unwrap();
    assert_eq!(progress.s_param, "PROGRESS:dialing|");
    let talk = a.wait_for(EventKind::Talk).await.unwrap();
    assert!(Tags::parse(&talk.s_param).unwrap().get("VOCID").is_some());
    // The number reached the simulated exchange on a trunk.
    tokio::task::block_in_place(|| loop {
        let n = watch.recv()["notice"].clone();
        if n["type"] == "far" && n["what"] == "exchange got number 83366857" {
            break;
        }
    });
    a.do_action(2, 0, "").await.unwrap();
    a.wait_for(EventKind::Hangup).await.unwrap();
    let cdr = tokio::task::block_in_place(|| {
        assert!(crate::harness::eventually(Duration::from_secs(5), || d.cdrs()[0]["end"].is_string()));
        d.cdrs()[0].clone()
    });
    assert_eq!(cdr["direction"], "out");
    assert_eq!(cdr["callee"], "83366857");
    assert_eq!(cdr["caller"], "1001");
    assert_eq!(cdr["seat_port"], 3);
    assert_eq!(cdr["disposition"], "answered");

    // A busy number: the agent sees the progress and the call ends as busy.
    state_after(&mut a, "STATE:idle").await;
    a.do_action(7, 3, "99995555|4008001234").await.unwrap();
    let busy = loop {
        let e = a.wait_for(EventKind::Progress).await.unwrap();
        if e.s_param == "PROGRESS:busy|" {
            break e;
        }
    };
    assert_eq!(busy.slice_no, 3);
    let hangup = a.wait_for(EventKind::Hangup).await.unwrap();
    assert_eq!(hangup.s_param, "CAUSE:the called number is busy|");
    let cdr = tokio::task::block_in_place(|| {
        assert!(crate::harness::eventually(Duration::from_secs(5), || d.cdrs()[0]["callee"] == "99995555"
            && d.cdrs()[0]["end"].is_string()));
        d.cdrs()[0].clone()
    });
    assert_eq!((cdr["disposition"].as_str(), cdr["caller"].as_str()), (Some("busy"), Some("4008001234")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_terminal_client_runs_scripts_of_commands_and_expected_events() {
    let d = daemon(FAST_CONFIG);
    let addr = d.agent_addr();
    let script = d.data().join("call.script");
    std::fs::write(
        &script,
        "# an incoming call is taken, then the agent pauses\n\
         expect Ring CALLERID=83366857 TTYPE=2\n\
         expect Talk\n\
         expect Dtmf KEY=7\n\
         hangup\n\
         expect Hangup\n\
         pause lunch\n\
         expect AgentState STATE=paused REASON=lunch\n",
    )
    .unwrap();
    let run = |script: std::path::PathBuf, addr: String| {
        std::process::Command::new(crate::harness::BIN)
            .args(["agent", "--server", &addr, "--agent", "1001", "--seat", "3", "--script"])
            .arg(script)
            .env("SWITCHBOARD_PASSWORD", PW)
            .output()
            .unwrap()
    };
    let child = {
        let (script, addr) = (script.clone(), addr.clone());
        std::thread::spawn(move || run(script, addr))
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let r = tokio::task::block_in_place(|| {
        d.request(
            json!({"cmd": "sim.call", "port": 1, "from": "83366857", "digits": "7", "digits_delay_ms": 300}),
        )
    });
    assert_eq!(r["ok"], true);
    let out = tokio::task::spawn_blocking(move || child.join().unwrap()).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("Ring seat 3 (external): CALLERID=83366857 TTYPE=2"), "{stdout}");
    assert!(stdout.trim_end().ends_with("script passed"), "{stdout}");

    // A refused command fails the script, naming the file and line.
    std::fs::write(&script, "mask\nhold\n").unwrap();
    let out = tokio::task::spawn_blocking(move || run(script, addr)).await.unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("call.script:2: \"hold\" refused (NotAllowed)"), "{stderr}");
}

/// Waits for a far-end report on `port` and returns whether it came within `timeout`.
fn far_heard(watch: &mut crate::harness::Client, port: u16, what: &str, timeout: Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        let Some(v) = watch.recv_timeout(left) else { return false };
        let n = &v["notice"];
        if n["type"] == "far" && n["port"] == port && n["what"] == what {
            return true;
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supervisors_listen_whisper_and_barge_in() {
    let d = daemon(FAST_CONFIG);
    let addr = d.agent_addr();
    let mut a = agent(&addr, "1001", 3).await;
    let mut s = agent(&addr, "9001", 5).await;
    let mut watch = tokio::task::block_in_place(|| {
        let mut w = d.connect();
        w.send(&json!({"id": 1, "cmd": "watch"}));
        assert_eq!(w.recv()["ok"], true);
        w
    });
    assert_eq!(
        tokio::task::block_in_place(|| d.request(json!({"cmd": "sim.call", "port": 1, "from": "5"})))["ok"],
        true
    );
    a.wait_for(EventKind::Talk).await.unwrap();
    // An agent may not listen in; a supervisor must lift the handset first.
    assert_eq!(code(a.do_control(5, 1, 0).await.unwrap_err()), ErrorCode::Forbidden);
    let e = s.do_control(3, 1, 0).await.unwrap_err();
    assert!(e.to_string().contains("lift your handset first"), "{e}");
    let dial = |port: u16, digits: &str| {
        tokio::task::block_in_place(|| d.request(json!({"cmd": "sim.dial", "port": port, "digits": digits})))
    };
    tokio::task::block_in_place(|| d.request(json!({"cmd": "sim.offhook", "port": 5})));
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Listen: the supervisor hears the caller; nobody hears the supervisor.
    s.do_control(3, 1, 0).await.unwrap();
    assert!(state_after(&mut s, "STATE:monitoring").await.starts_with("STATE:monitoring|"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    dial(1, "4");
    assert!(tokio::task::block_in_place(|| far_heard(
        &mut watch,
        5,
        "heard digit 4",
        Duration::from_secs(5)
    )));
    dial(5, "6");
    assert!(!tokio::task::block_in_place(|| far_heard(
        &mut watch,
        3,
        "heard digit 6",
        Duration::from_millis(1500)
    )));

    // Whisper: the agent hears the supervisor, the caller does not.
    s.do_control(3, 2, 0).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    dial(5, "8");
    assert!(tokio::task::block_in_place(|| far_heard(
        &mut watch,
        3,
        "heard digit 8",
        Duration::from_secs(5)
    )));
    dial(5, "7");
    assert!(!tokio::task::block_in_place(|| far_heard(
        &mut watch,
        1,
        "heard digit 7",
        Duration::from_millis(1500)
    )));

    // Barge-in: everyone hears everyone.
    s.do_control(3, 3, 0).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    dial(5, "9");
    assert!(tokio::task::block_in_place(|| far_heard(
        &mut watch,
        1,
        "heard digit 9",
        Duration::from_secs(5)
    )));

    // Intercept: the supervisor takes the call over; the agent leaves.
    s.do_control(3, 4, 0).await.unwrap();
    assert_eq!(a.wait_for(EventKind::Hangup).await.unwrap().s_param, "CAUSE:transferred|");
    let talk = s.wait_for(EventKind::Talk).await.unwrap();
    assert_eq!(Tags::parse(&talk.s_param).unwrap().get("CALLERID"), Some("5"));
    assert_eq!(s.action_enables().await.unwrap() & (1 << 2), 1 << 2, "the supervisor has the call");
    tokio::time::sleep(Duration::from_millis(300)).await;
    dial(1, "1");
    assert!(tokio::task::block_in_place(|| far_heard(
        &mut watch,
        5,
        "heard digit 1",
        Duration::from_secs(5)
    )));
    // The supervisor hangs up: the call ends.
    tokio::task::block_in_place(|| d.request(json!({"cmd": "sim.hangup", "port": 5})));
    assert_eq!(s.wait_for(EventKind::Hangup).await.unwrap().s_param, "CAUSE:agent hung up|");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supervisors_see_waiting_calls_with_their_waiting_times() {
    let d = daemon(&FAST_CONFIG.replace("wrap_up_s = 2", "wrap_up_s = 2\nring_seats_without_agent = false"));
    let addr = d.agent_addr();
    // No agent is ready: the call waits.
    let mut s = AgentClient::connect(&addr).await.unwrap();
    s.login("9001", PW).await.unwrap();
    assert_eq!(
        tokio::task::block_in_place(|| d.request(json!({"cmd": "sim.call", "port": 2, "from": "66668888"})))
            ["ok"],
        true
    );
    let waiting = loop {
        let calls = s.call(json!({"cmd": "queryCalls"})).await.unwrap();
        if calls["waiting"].as_array().is_some_and(|w| !w.is_empty()) {
            break calls["waiting"][0].clone();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(waiting["caller"], "66668888");
    assert_eq!(waiting["trunk"], 2);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let calls = s.call(json!({"cmd": "queryCalls"})).await.unwrap();
    assert!(calls["waiting"][0]["waitingS"].as_f64().unwrap() >= 1.0, "{calls}");
    // An agent becomes ready and takes it.
    let mut a = agent(&addr, "1001", 3).await;
    a.wait_for(EventKind::Talk).await.unwrap();
    let calls = s.call(json!({"cmd": "queryCalls"})).await.unwrap();
    assert_eq!(calls["waiting"].as_array().unwrap().len(), 0);
    assert_eq!(calls["talking"][0]["sliceNo"], 3);
    let mut nobody = AgentClient::connect(&addr).await.unwrap();
    assert_eq!(code(nobody.call(json!({"cmd": "queryCalls"})).await.unwrap_err()), ErrorCode::NotLoggedIn);
}

const QUEUE_CONFIG: &str = r#"
[card]
driver = "sim"
[sim]
trunk_ports = 2
seat_ports = 3
seat_answer_delay_ms = 400
[engine]
realtime_priority = 0
[calls]
seat_ring_timeout_s = 10
[[queue]]
name = "sales"
strategy = "skill"
members = ["1001:3", "1002:9"]
overflow_after_s = 2
overflow_to = "support"
[[queue]]
name = "support"
members = ["9001"]
[[route]]
name = "hotline"
trunks = [1, 2]
queue = "sales"
[agent]
listen = "127.0.0.1:0"
wrap_up_s = 1
ring_seats_without_agent = false
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queues_ring_the_best_agent_and_overflow_when_nobody_is_free() {
    let d = daemon(QUEUE_CONFIG);
    let addr = d.agent_addr();
    let mut low = agent(&addr, "1001", 3).await;
    let mut high = agent(&addr, "1002", 4).await;
    let mut other = agent(&addr, "9001", 5).await;
    // Skill: the level-9 agent gets the call, with the queue in the tags.
    assert_eq!(
        tokio::task::block_in_place(
            || d.request(json!({"cmd": "sim.call", "port": 1, "from": "111", "hangup_after": 0.5}))
        )["ok"],
        true
    );
    let ring = high.wait_for(EventKind::Ring).await.unwrap();
    let tags = Tags::parse(&ring.s_param).unwrap();
    assert_eq!((tags.get("CALLERID"), tags.get("QUEUE")), (Some("111"), Some("sales")));
    high.wait_for(EventKind::Hangup).await.unwrap();

    // Nobody in sales is free: after 2 s the call moves to support.
    low.do_action(11, 0, "meeting").await.unwrap();
    high.do_action(11, 0, "meeting").await.unwrap();
    assert_eq!(
        tokio::task::block_in_place(
            || d.request(json!({"cmd": "sim.call", "port": 2, "from": "222", "hangup_after": 0.5}))
        )["ok"],
        true
    );
    let ring = other.wait_for(EventKind::Ring).await.unwrap();
    let tags = Tags::parse(&ring.s_param).unwrap();
    assert_eq!((tags.get("CALLERID"), tags.get("QUEUE")), (Some("222"), Some("support")));

    // A supervisor watching every seat gets each queue's figures every 5 s.
    other.call(json!({"cmd": "SubscribeAll"})).await.unwrap();
    let stats = loop {
        let e = other.wait_for(EventKind::QueueStats).await.unwrap();
        let tags = Tags::parse(&e.s_param).unwrap();
        if tags.get("QUEUE") == Some("sales") {
            break tags;
        }
    };
    assert_eq!(stats.get("AVAILABLE"), Some("0"), "both sales agents are paused");
    assert!(stats.get("WAITING").is_some() && stats.get("LONGEST").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_crash_mid_call_leaves_the_call_up_and_the_seat_reclaimable() {
    let d = daemon(FAST_CONFIG);
    let addr = d.agent_addr();
    let mut a = agent(&addr, "1001", 3).await;
    assert_eq!(
        tokio::task::block_in_place(|| d.request(json!({"cmd": "sim.call", "port": 1, "from": "42"})))["ok"],
        true
    );
    a.wait_for(EventKind::Talk).await.unwrap();
    drop(a);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let status = tokio::task::block_in_place(|| d.request(json!({"cmd": "status"})));
    assert_eq!(status["result"]["calls"][0]["seat"], 3, "the call is still up: {status}");
    // The agent comes back: same seat, still talking, and can hang up from the desktop.
    let mut again = AgentClient::connect(&addr).await.unwrap();
    again.login("1001", PW).await.unwrap();
    assert_eq!(again.action_enables().await.unwrap() & (1 << 2), 1 << 2);
    again.do_action(2, 0, "").await.unwrap();
    assert_eq!(
        again.wait_for(EventKind::Hangup).await.unwrap().s_param,
        "CAUSE:released from the agent desktop|"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blind_transfer_hands_the_caller_to_another_agent() {
    let d = daemon(FAST_CONFIG);
    let addr = d.agent_addr();
    let mut a = agent(&addr, "1001", 3).await;
    let mut b = agent(&addr, "1002", 4).await;
    assert_eq!(
        tokio::task::block_in_place(
            || d.request(json!({"cmd": "sim.call", "port": 1, "from": "13911112222"}))
        )["ok"],
        true
    );
    let talk = a.wait_for(EventKind::Talk).await.unwrap();
    let vocid = Tags::parse(&talk.s_param).unwrap().get("VOCID").map(String::from);
    assert_eq!(code(a.do_action(5, 0, "7777").await.unwrap_err()), ErrorCode::NotAllowed);
    assert_eq!(code(a.do_action(5, 3, "11x").await.unwrap_err()), ErrorCode::BadRequest);
    assert_eq!(code(a.do_action(5, 4, "1002").await.unwrap_err()), ErrorCode::BadRequest);
    a.do_action(5, 0, "1002").await.unwrap();
    assert_eq!(a.wait_for(EventKind::Hangup).await.unwrap().s_param, "CAUSE:transferred|");
    assert!(state_after(&mut a, "STATE:wrap-up").await.starts_with("STATE:wrap-up|"));
    // The other agent's phone rings with the caller and TTYPE 3, and the call goes on with
    // the same recording.
    let ring = b.wait_for(EventKind::Ring).await.unwrap();
    let tags = Tags::parse(&ring.s_param).unwrap();
    assert_eq!((tags.get("CALLERID"), tags.get("TTYPE")), (Some("13911112222"), Some("3")));
    let talk = b.wait_for(EventKind::Talk).await.unwrap();
    assert_eq!(Tags::parse(&talk.s_param).unwrap().get("VOCID").map(String::from), vocid);
    b.do_action(2, 0, "").await.unwrap();
    b.wait_for(EventKind::Hangup).await.unwrap();
    let cdr = tokio::task::block_in_place(|| {
        assert!(crate::harness::eventually(Duration::from_secs(5), || d.cdrs()[0]["end"].is_string()));
        d.cdrs()[0].clone()
    });
    assert_eq!(cdr["disposition"], "answered");
    assert_eq!(cdr["cause"], "released from the agent desktop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consultation_can_be_cancelled_completed_or_turned_into_a_conference() {
    let d = daemon(FAST_CONFIG);
    let addr = d.agent_addr();
    let mut a = agent(&addr, "1001", 3).await;
    let mut b = agent(&addr, "1002", 4).await;
    let mut watch = tokio::task::block_in_place(|| {
        let mut w = d.connect();
        w.send(&json!({"id": 1, "cmd": "watch"}));
        assert_eq!(w.recv()["ok"], true);
        w
    });
    let dial = |port: u16, digits: &str| {
        tokio::task::block_in_place(|| d.request(json!({"cmd": "sim.dial", "port": port, "digits": digits})))
    };
    assert_eq!(
        tokio::task::block_in_place(|| d.request(json!({"cmd": "sim.call", "port": 1, "from": "888"})))["ok"],
        true
    );
    a.wait_for(EventKind::Talk).await.unwrap();

    // Consult 1002, then cancel: back with the caller.
    a.do_action(6, 0, "1002").await.unwrap();
    b.wait_for(EventKind::Talk).await.unwrap();
    assert_eq!(a.action_enables().await.unwrap(), (1 << 2) | (1 << 8) | (1 << 9) | (1 << 15) | (1 << 16));
    tokio::time::sleep(Duration::from_millis(300)).await;
    dial(3, "3");
    assert!(tokio::task::block_in_place(|| far_heard(
        &mut watch,
        4,
        "heard digit 3",
        Duration::from_secs(5)
    )));
    assert!(!tokio::task::block_in_place(|| far_heard(
        &mut watch,
        1,
        "heard digit 3",
        Duration::from_millis(800)
    )));
    a.do_action(9, 0, "").await.unwrap();
    assert_eq!(b.wait_for(EventKind::Hangup).await.unwrap().s_param, "CAUSE:consultation ended|");
    tokio::task::block_in_place(|| d.request(json!({"cmd": "sim.hangup", "port": 4})));
    assert!(state_after(&mut b, "STATE:idle").await.starts_with("STATE:idle|"));

    // Consult again and make it a conference: everyone hears the caller.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    a.do_action(6, 0, "1002").await.unwrap();
    b.wait_for(EventKind::Talk).await.unwrap();
    a.do_action(15, 0, "").await.unwrap();
    // The conference shows in the calls query: seat 3's call has seat 4 with it.
    let calls = a.call(json!({"cmd": "queryCalls"})).await.unwrap();
    assert_eq!(calls["talking"][0]["sliceNo"], 3, "{calls}");
    assert_eq!(calls["talking"][0]["conference"], json!([4]), "{calls}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    dial(1, "5");
    assert!(tokio::task::block_in_place(|| far_heard(
        &mut watch,
        3,
        "heard digit 5",
        Duration::from_secs(5)
    )));
    dial(1, "6");
    assert!(tokio::task::block_in_place(|| far_heard(
        &mut watch,
        4,
        "heard digit 6",
        Duration::from_secs(5)
    )));
    // The consulting agent hangs up: the other agent keeps the caller.
    tokio::task::block_in_place(|| d.request(json!({"cmd": "sim.hangup", "port": 3})));
    assert!(state_after(&mut a, "STATE:").await.len() > 0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    dial(1, "7");
    assert!(tokio::task::block_in_place(|| far_heard(
        &mut watch,
        4,
        "heard digit 7",
        Duration::from_secs(5)
    )));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consultation_completes_into_a_transfer() {
    let d = daemon(FAST_CONFIG);
    let addr = d.agent_addr();
    let mut a = agent(&addr, "1001", 3).await;
    let mut b = agent(&addr, "1002", 4).await;
    assert_eq!(
        tokio::task::block_in_place(|| d.request(json!({"cmd": "sim.call", "port": 1, "from": "999"})))["ok"],
        true
    );
    a.wait_for(EventKind::Talk).await.unwrap();
    assert_eq!(
        code(a.do_action(8, 0, "").await.unwrap_err()),
        ErrorCode::NotAllowed,
        "nothing to complete yet"
    );
    a.do_action(6, 0, "1002").await.unwrap();
    let ring = b.wait_for(EventKind::Ring).await.unwrap();
    assert_eq!(Tags::parse(&ring.s_param).unwrap().get("CALLERID"), Some("999"));
    b.wait_for(EventKind::Talk).await.unwrap();
    assert_eq!(b.action_enables().await.unwrap(), (1 << 2) | (1 << 16), "consulted: talk and hang up only");
    a.do_action(8, 0, "").await.unwrap();
    assert_eq!(a.wait_for(EventKind::Hangup).await.unwrap().s_param, "CAUSE:transferred|");
    assert_eq!(
        b.action_enables().await.unwrap() & (1 << 3),
        1 << 3,
        "the other agent has the caller and can hold"
    );
    b.do_action(2, 0, "").await.unwrap();
    assert_eq!(
        b.wait_for(EventKind::Hangup).await.unwrap().s_param,
        "CAUSE:released from the agent desktop|"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_calls_another_agent_by_number() {
    let d = daemon(FAST_CONFIG);
    let addr = d.agent_addr();
    let mut a = agent(&addr, "1001", 3).await;
    let mut b = agent(&addr, "1002", 4).await;
    assert_eq!(code(a.do_action(7, 0, "7777").await.unwrap_err()), ErrorCode::NotAllowed);
    assert_eq!(code(a.do_action(7, 0, "1001").await.unwrap_err()), ErrorCode::NotAllowed);
    assert_eq!(code(a.do_action(7, 0, "").await.unwrap_err()), ErrorCode::BadRequest);

    let mut watch = d.connect();
    watch.send(&json!({"id": 1, "cmd": "watch"}));
    let _ = watch.recv();
    a.do_action(7, 0, "1002").await.unwrap();
    // The caller's own phone rings first; once it is picked up, the other agent's rings.
    let ring = b.wait_for(EventKind::Ring).await.unwrap();
    let tags = Tags::parse(&ring.s_param).unwrap();
    assert_eq!((tags.get("CALLERID"), tags.get("TTYPE")), (Some("1001"), Some("2")), "{}", ring.s_param);
    assert_eq!(ring.i_param, 0, "an internal call");
    b.wait_for(EventKind::Talk).await.unwrap();
    a.wait_for(EventKind::Talk).await.unwrap();
    // They hear each other.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(d.request(json!({"cmd": "sim.dial", "port": 3, "digits": "8"}))["ok"], true);
    assert!(tokio::task::block_in_place(|| far_heard(
        &mut watch,
        4,
        "heard digit 8",
        Duration::from_secs(5)
    )));
    a.do_action(2, 0, "").await.unwrap();
    b.wait_for(EventKind::Hangup).await.unwrap();
    let cdr = tokio::task::block_in_place(|| {
        assert!(crate::harness::eventually(Duration::from_secs(5), || d.cdrs()[0]["end"].is_string()));
        d.cdrs()[0].clone()
    });
    assert_eq!((cdr["caller"].as_str(), cdr["callee"].as_str()), (Some("1001"), Some("1002")), "{cdr}");
    assert_eq!(cdr["disposition"], "answered", "{cdr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_supervisor_console_shows_a_live_panel_of_seats_and_waiting_calls() {
    use std::io::BufRead;
    let d = daemon(&FAST_CONFIG.replace("wrap_up_s = 2", "wrap_up_s = 2\nring_seats_without_agent = false"));
    let mut child = std::process::Command::new(crate::harness::BIN)
        .args(["agent", "--server", &d.agent_addr(), "--agent", "9001", "--watch"])
        .env("SWITCHBOARD_PASSWORD", PW)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    // Nobody is logged in on a seat: the call waits, and the panel shows it within 2 s.
    let r = tokio::task::block_in_place(|| {
        d.request(json!({"cmd": "sim.call", "port": 1, "from": "83366857", "hangup_after": 30.0}))
    });
    assert_eq!(r["ok"], true);
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let found = loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                let hit = line.contains("from 83366857");
                seen.push(line);
                if hit {
                    break true;
                }
            }
            Err(_) if std::time::Instant::now() > deadline => break false,
            Err(_) => {}
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(found, "{seen:#?}");
    assert!(seen.iter().any(|l| l == "-- waiting calls: 1 --"), "{seen:#?}");
    assert!(seen.iter().any(|l| l == "-- seats --"), "{seen:#?}");
}
