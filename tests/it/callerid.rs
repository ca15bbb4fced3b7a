//! FSK caller id end to end, through the real daemon on the simulated card: the simulated
//! exchange presents the caller's number as the `[line]` settings say (FSK between the rings
//! or before the first ring, in each standard), the engine demodulates it in the trunk's
//! window, and the call arrives with it; seat phones get it on their display while they ring.

use std::time::Duration;

use serde_json::{json, Value};
use switchboard::agent::client::AgentClient;
use switchboard::agent::protocol::EventKind;
use switchboard::agent::tags::Tags;
use switchboard::store::Role;

use crate::harness::{eventually, of_type, Daemon, FAST_CONFIG};

/// The fast test configuration with `[line]` settings, and seat phones that answer after
/// `answer_ms`.
fn config(trunk_caller_id: &str, standard: &str, seat_caller_id: bool, answer_ms: u32) -> String {
    let from = "seat_answer_delay_ms = 400";
    assert!(FAST_CONFIG.contains(from), "the test configuration changed: update this replacement");
    let base = FAST_CONFIG.replace(from, &format!("seat_answer_delay_ms = {answer_ms}"));
    format!(
        "{base}\n[line]\ntrunk_caller_id = \"{trunk_caller_id}\"\ncaller_id_standard = \"{standard}\"\n\
         seat_caller_id = {seat_caller_id}\n"
    )
}

/// The CDR of the only call, once it has ended.
fn ended_cdr(d: &Daemon) -> Value {
    assert!(
        eventually(Duration::from_secs(5), || d.cdrs().first().is_some_and(|c| !c["end"].is_null())),
        "no ended CDR: {}",
        d.log()
    );
    d.cdrs()[0].clone()
}

/// Places a call from the simulated exchange and returns every notice (of every port, not
/// only those the call's own watch follows) until the call ends.
fn call_watching_all(d: &Daemon, port: u16, from: &str) -> Vec<Value> {
    let mut watch = d.connect();
    watch.send(&json!({"id": 1, "cmd": "watch"}));
    assert_eq!(watch.recv()["ok"], true);
    let r = d.request(json!({"id": 2, "cmd": "sim.call", "port": port, "from": from, "hangup_after": 1.0}));
    assert_eq!(r["ok"], true, "{r}");
    let mut notices = Vec::new();
    loop {
        let notice = watch.recv()["notice"].clone();
        let ended = notice["type"] == "call_ended";
        notices.push(notice);
        if ended {
            return notices;
        }
    }
}

/// What the far end of `port` reported, in order.
fn far(notices: &[Value], port: u16) -> Vec<String> {
    notices
        .iter()
        .filter(|n| n["type"] == "far" && n["port"] == port)
        .filter_map(|n| n["what"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn fsk_between_the_rings_in_every_standard_gives_the_call_its_number() {
    std::thread::scope(|s| {
        for standard in ["bellcore", "etsi", "ydt1277"] {
            s.spawn(move || {
                let d = Daemon::start(&config("fsk", standard, false, 400));
                let notices = d.call(1, "83366857", "", Some(1.0));
                let offered = of_type(&notices, "call_offered");
                assert_eq!(offered.len(), 1, "{standard}: {notices:#?}");
                assert_eq!(offered[0]["caller"], "83366857", "{standard}: {}", d.log());
                assert_eq!(of_type(&notices, "call_answered")[0]["seat"], 3, "{standard}");
                assert_eq!(ended_cdr(&d)["caller"], "83366857", "{standard}");
                assert!(d.log().contains("FSK caller id"), "{standard}: {}", d.log());
                // No DTMF was sent before the ring: the number came only as FSK.
                assert!(!d.log().contains("DTMF digit 'A' detected"), "{standard}: {}", d.log());
                let status = d.request(json!({"cmd": "status"}));
                assert_eq!(status["result"]["engine"]["caller_id_received"], 1, "{standard}");
                assert_eq!(status["result"]["engine"]["caller_id_errors"], 0, "{standard}");
            });
        }
    });
}

#[test]
fn a_withheld_number_reaches_the_seat_phone_as_private() {
    let d = Daemon::start(&config("fsk", "etsi", true, 3000));
    let notices = call_watching_all(&d, 1, "P");
    assert_eq!(of_type(&notices, "call_offered")[0]["caller"], "", "{notices:#?}");
    assert!(d.log().contains("absence: Some('P')"), "{}", d.log());
    let seat = far(&notices, 3);
    assert!(seat.contains(&"display private".to_string()), "{seat:?}");
    assert_eq!(ended_cdr(&d)["caller"], "");
    // A caller id that is neither digits nor P or O is refused with a reason.
    let r = d.request(json!({"cmd": "sim.call", "port": 1, "from": "12P"}));
    assert_eq!(r["ok"], false);
    assert!(r["error"].as_str().unwrap_or("").contains("withheld"), "{r}");
}

#[test]
fn seat_phones_show_the_caller_before_they_answer() {
    // The trunk gets DTMF caller id, which still works, and the seat phone gets the number as
    // FSK between its first and second ring.
    let d = Daemon::start(&config("dtmf", "bellcore", true, 3000));
    let notices = call_watching_all(&d, 2, "13800138000");
    assert_eq!(of_type(&notices, "call_offered")[0]["caller"], "13800138000");
    let seat = far(&notices, 3);
    let display = seat.iter().position(|w| w == "display 13800138000");
    let connected = seat.iter().position(|w| w == "connected");
    assert!(display.is_some() && display < connected, "{seat:?}");
    assert!(!seat.iter().any(|w| w.starts_with("display garbled")), "{seat:?}");
    let status = d.request(json!({"cmd": "status"}));
    assert_eq!(status["result"]["engine"]["caller_id_sent"], 1);
    assert_eq!(ended_cdr(&d)["caller"], "13800138000");
}

#[test]
fn a_phone_answered_before_its_caller_id_gets_none() {
    // Seat caller id is on, but the phone answers after 400 ms, before the burst is due.
    let d = Daemon::start(&config("dtmf", "ydt1277", true, 400));
    let notices = call_watching_all(&d, 1, "5551234");
    assert_eq!(of_type(&notices, "call_answered")[0]["seat"], 3);
    assert!(!far(&notices, 3).iter().any(|w| w.starts_with("display")), "{notices:#?}");
    let status = d.request(json!({"cmd": "status"}));
    assert_eq!(status["result"]["engine"]["caller_id_sent"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fsk_before_the_ring_gives_the_agent_the_callerid() {
    const PW: &str = "correct horse battery";
    let d = tokio::task::block_in_place(|| {
        let mut d = Daemon::prepare(&config("fsk-before-ring", "etsi", false, 400));
        d.add_agents(&[("1001", Role::Agent, PW)]);
        d.spawn();
        d
    });
    let addr = d.agent_addr();
    let mut a = AgentClient::connect(&addr).await.unwrap();
    a.hello("tests").await.unwrap();
    a.login("1001", PW).await.unwrap();
    a.open_app(3).await.unwrap();

    let r = d.request(json!({"cmd": "sim.call", "port": 1, "from": "83366857", "hangup_after": 1.0}));
    assert_eq!(r["ok"], true, "{r}");
    let ring =
        tokio::time::timeout(Duration::from_secs(15), a.wait_for(EventKind::Ring)).await.unwrap().unwrap();
    let tags = Tags::parse(&ring.s_param).unwrap();
    assert_eq!(tags.get("CALLERID"), Some("83366857"), "{}", d.log());
    a.wait_for(EventKind::Talk).await.unwrap();
    a.wait_for(EventKind::Hangup).await.unwrap();
    let cdr = tokio::task::block_in_place(|| ended_cdr(&d));
    assert_eq!(cdr["caller"], "83366857");
    assert!(d.log().contains("FSK caller id"), "{}", d.log());
}
