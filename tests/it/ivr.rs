//! IVR flows end to end on the simulated card: the far end dials in, hears the prompts
//! (checked through prompt_played notices and by analysing the audio it receives), types
//! keys; web services are real HTTP servers started here, one of them slow and one failing.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use switchboard::agent::client::AgentClient;
use switchboard::agent::protocol::EventKind;
use switchboard::agent::tags::Tags;
use switchboard::audio::wav::WavWriter;
use switchboard::store::Role;

use crate::harness::{eventually, of_type, Client, Daemon, BIN};

const PW: &str = "correct horse battery";

/// Prompts are pure tones, each at its own frequency, so the audio the far end hears tells
/// which prompt was playing.
const PROMPTS: &[(&str, f32, f32)] = &[
    ("welcome.wav", 500.0, 1.2),
    ("menu.wav", 650.0, 0.8),
    ("noinput.wav", 1100.0, 0.3),
    ("bye.wav", 1250.0, 0.3),
    ("sorry.wav", 1550.0, 0.3),
    ("rate.wav", 1800.0, 0.4),
    ("thanks.wav", 2000.0, 0.3),
    ("pin.wav", 2200.0, 0.3),
];

const MAIN: &str = r#"
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
keys = { "1" = "crm", "2" = "slow", "3" = "broken", "4" = "out", "5" = "out_busy" }
no_input = ["noinput.wav"]
timeout_s = 1
retries = 1
fail = "bye"
[node.crm]
type = "webservice"
service = "crm"
tags = { Name = "${name}", Level = "${level}" }
next = "to_support"
fail = "sorry"
[node.slow]
type = "webservice"
service = "slow"
next = "to_support"
fail = "sorry"
[node.broken]
type = "webservice"
service = "broken"
next = "to_support"
fail = "sorry"
[node.out]
type = "transfer"
number = "83366857"
fail = "sorry"
[node.out_busy]
type = "transfer"
number = "99990000"
fail = "sorry"
[node.sorry]
type = "play"
play = ["sorry.wav"]
next = "mark"
[node.mark]
type = "set"
tags = { Lookup = "failed" }
next = "to_support"
[node.to_support]
type = "queue"
queue = "support"
[node.bye]
type = "hangup"
play = ["bye.wav"]
"#;

const SURVEY: &str = r#"
start = "ask"
[node.ask]
type = "survey"
play = ["rate.wav"]
scale = 5
thanks = ["thanks.wav"]
next = "hangup"
"#;

const CHECK: &str = r#"
start = "pin"
[node.pin]
type = "collect"
play = ["pin.wav"]
var = "pin"
min = 4
max = 4
next = "done"
[node.done]
type = "set"
tags = { PinChecked = "${pin}" }
next = "back"
[node.back]
type = "return"
"#;

fn config(web: &str) -> String {
    format!(
        r#"
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

[[route]]
name = "hotline"
trunks = [1, 2]
number = "8000"
flow = "*"

[[queue]]
name = "support"
members = ["1001"]
survey = "survey"

[ivr]
flows = "flows"
prompts = "flows/prompts"
tts = "none"

[[webservice]]
name = "crm"
kind = "json"
url = "{web}/crm"
params = {{ caller = "${{caller}}" }}
results = {{ name = "/customer/name", level = "/customer/level" }}
timeout_ms = 2000

[[webservice]]
name = "slow"
kind = "json"
url = "{web}/slow"
timeout_ms = 1500

[[webservice]]
name = "broken"
kind = "json"
url = "{web}/broken"
retries = 1
timeout_ms = 2000
"#
    )
}

/// A web server for the flows' services: `/crm` answers, `/slow` never does, `/broken`
/// fails with 500. It keeps the requests it got as "PATH BODY".
fn web_server() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let log = log.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut first = String::new();
                if reader.read_line(&mut first).is_err() {
                    return;
                }
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                let path = first.split_whitespace().nth(1).unwrap_or("").to_string();
                log.lock().unwrap().push(format!("{path} {}", String::from_utf8_lossy(&body)));
                let (status, body) = match path.as_str() {
                    "/crm" => ("200 OK", r#"{"customer":{"name":"Li","level":"gold"}}"#),
                    "/slow" => {
                        std::thread::sleep(Duration::from_secs(20));
                        return;
                    }
                    _ => ("500 Internal Server Error", "{}"),
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    (url, seen)
}

fn tone(path: &Path, freq: f32, secs: f32) {
    let n = (secs * 8000.0) as usize;
    let samples: Vec<i16> =
        (0..n).map(|i| ((i as f32 * freq * std::f32::consts::TAU / 8000.0).sin() * 8000.0) as i16).collect();
    let mut w = WavWriter::create(path).unwrap();
    w.write(&samples).unwrap();
    w.finish().unwrap();
}

/// A daemon with the flows above, agent 1001 (queue support) and a supervisor.
fn ivr_daemon() -> (Daemon, Arc<Mutex<Vec<String>>>) {
    let (web, seen) = web_server();
    let d = tokio::task::block_in_place(|| {
        let mut d = Daemon::prepare(&config(&web));
        let flows = d.dir.path().join("flows");
        std::fs::create_dir_all(flows.join("prompts")).unwrap();
        for (name, freq, secs) in PROMPTS {
            tone(&flows.join("prompts").join(name), *freq, *secs);
        }
        for (name, text) in [("main", MAIN), ("survey", SURVEY), ("check", CHECK)] {
            std::fs::write(flows.join(format!("{name}.toml")), text).unwrap();
        }
        d.add_agents(&[("1001", Role::Agent, PW)]);
        d.spawn();
        d
    });
    (d, seen)
}

/// The strength of `freq` in `samples` (Goertzel), relative to the signal's energy.
fn strength(samples: &[i16], freq: f32) -> f32 {
    let k = 2.0 * (std::f32::consts::TAU * freq / 8000.0).cos();
    let (mut s1, mut s2) = (0.0f32, 0.0f32);
    let mut energy = 0.0f32;
    for &x in samples {
        let x = f32::from(x);
        let s = x + k * s1 - s2;
        s2 = s1;
        s1 = s;
        energy += x * x;
    }
    let power = s1 * s1 + s2 * s2 - k * s1 * s2;
    if energy == 0.0 {
        0.0
    } else {
        power / (energy * samples.len() as f32 / 2.0)
    }
}

/// Which of the prompts' frequencies dominates each 100 ms of a recording.
fn heard(path: &Path) -> Vec<Option<f32>> {
    let wav = switchboard::audio::wav::read_wav(path).unwrap();
    let samples = switchboard::audio::wav::to_8k(wav).unwrap();
    samples
        .chunks(800)
        .map(|chunk| {
            PROMPTS
                .iter()
                .map(|(_, f, _)| (*f, strength(chunk, *f)))
                .filter(|(_, s)| *s > 0.5)
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .map(|(f, _)| f)
        })
        .collect()
}

fn prompts_played(notices: &[Value]) -> Vec<String> {
    of_type(notices, "prompt_played").iter().map(|n| n["prompt"].as_str().unwrap().to_string()).collect()
}

async fn agent(addr: &str, id: &str, seat: u16) -> AgentClient {
    let mut c = AgentClient::connect(addr).await.unwrap();
    c.hello("tests").await.unwrap();
    c.login(id, PW).await.unwrap();
    c.open_app(seat).await.unwrap();
    c
}

/// Reads notices until one matches.
fn until(c: &mut Client, mut what: impl FnMut(&Value) -> bool) -> Vec<Value> {
    let mut out = Vec::new();
    loop {
        let n = c.recv()["notice"].clone();
        let done = what(&n);
        out.push(n);
        if done {
            return out;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_hears_the_prompts_in_order_and_silence_is_retried_then_hung_up() {
    let (d, _) = ivr_daemon();
    let mut watch = d.connect();
    watch.send(&json!({"id": 1, "cmd": "sim.call", "port": 1, "from": "13800138000", "hangup_after": 30.0,
                       "watch": true}));
    assert_eq!(watch.recv()["ok"], true);
    let start = until(&mut watch, |n| n["type"] == "far" && n["what"] == "connected");
    assert!(start.iter().any(|n| n["type"] == "flow_entered" && n["flow"] == "main"), "{start:?}");
    // What the caller hears for the next 1.8 s: the welcome, then the menu.
    let data = d.data().to_path_buf();
    let rec = tokio::task::spawn_blocking(move || {
        let mut c = Client::connect_to(&data);
        c.send(&json!({"cmd": "sim.record", "port": 1, "seconds": 1.8, "name": "ivr"}));
        c.recv()
    });
    let rest = tokio::task::block_in_place(|| watch.notices_until_end());
    let r = rec.await.unwrap();
    assert_eq!(r["ok"], true, "{r}");
    let mut all = start;
    all.extend(rest);
    assert_eq!(prompts_played(&all), ["welcome.wav", "menu.wav", "noinput.wav", "menu.wav", "bye.wav"]);
    let end = of_type(&all, "call_ended")[0];
    assert_eq!(end["cause"], "hung up by the flow", "{end}");

    let heard = heard(&d.data().join("sim-recordings/ivr.wav"));
    let first_menu = heard.iter().position(|f| *f == Some(650.0)).expect("the menu was heard");
    assert!(first_menu >= 8, "the welcome (1.2 s) comes first: {heard:?}");
    assert!(heard[..first_menu].iter().filter(|f| **f == Some(500.0)).count() >= 7, "{heard:?}");
    assert!(heard[first_menu..].iter().all(|f| *f != Some(500.0)), "{heard:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn type_ahead_and_a_crm_lookup_bring_the_caller_to_the_agent_with_tags_then_the_survey_is_stored() {
    let (d, seen) = ivr_daemon();
    let addr = d.agent_addr();
    let mut a = agent(&addr, "1001", 3).await;
    let mut watch = d.connect();
    // The caller types 1 during the welcome: it stops the prompt and answers the menu.
    watch.send(&json!({"id": 1, "cmd": "sim.call", "port": 1, "from": "13800138000", "digits": "1",
                       "digits_delay_ms": 300, "hangup_after": 60.0, "watch": true}));
    assert_eq!(watch.recv()["ok"], true);
    let ring = a.wait_for(EventKind::Ring).await.unwrap();
    let tags = Tags::parse(&ring.s_param).unwrap();
    assert_eq!(tags.get("Name"), Some("Li"));
    assert_eq!(tags.get("Level"), Some("gold"));
    assert_eq!(tags.get("CALLERID"), Some("13800138000"));
    assert_eq!(tags.get("QUEUE"), Some("support"));
    let requests = seen.lock().unwrap().clone();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert!(requests[0].starts_with("/crm ") && requests[0].contains("13800138000"), "{requests:?}");

    let talk = a.wait_for(EventKind::Talk).await.unwrap();
    assert!(Tags::parse(&talk.s_param).unwrap().get("VOCID").is_some());
    let notices = tokio::task::block_in_place(|| until(&mut watch, |n| n["type"] == "call_answered"));
    assert_eq!(prompts_played(&notices), ["welcome.wav"], "the menu prompt is skipped: {notices:?}");

    // The agent hangs up first: the caller is asked to rate the call, and answers 4.
    a.do_action(2, 0, "").await.unwrap();
    let notices = tokio::task::block_in_place(|| {
        until(&mut watch, |n| n["type"] == "prompt_played" && n["prompt"] == "rate.wav")
    });
    assert!(notices.iter().any(|n| n["type"] == "flow_entered" && n["flow"] == "survey"), "{notices:?}");
    assert_eq!(d.request(json!({"cmd": "sim.dial", "port": 1, "digits": "4"}))["ok"], true);
    let notices = tokio::task::block_in_place(|| watch.notices_until_end());
    assert_eq!(prompts_played(&notices), ["thanks.wav"], "{notices:?}");

    // The answer is in the satisfaction report, for agent 1001.
    let today = time::OffsetDateTime::now_utc().date().to_string();
    let report = tokio::task::block_in_place(|| {
        std::process::Command::new(BIN)
            .args([
                "report",
                "satisfaction",
                "--from",
                &today,
                "--to",
                &today,
                "--format",
                "csv",
                "--data-dir",
            ])
            .arg(d.data())
            .output()
            .unwrap()
    });
    let csv = String::from_utf8_lossy(&report.stdout);
    assert!(report.status.success(), "{csv} {}", String::from_utf8_lossy(&report.stderr));
    let row = csv.lines().find(|l| l.contains("1001")).unwrap_or_else(|| panic!("no row for 1001: {csv}"));
    assert!(row.contains(",1,") && row.contains('4'), "{csv}");
    let cdr = &d.cdrs()[0];
    assert_eq!(cdr["agent_id"], "1001", "{cdr}");
    assert_eq!(cdr["queue"], "support", "{cdr}");
    assert_eq!(cdr["flow"], "survey", "the last flow of the call: {cdr}");

    // The agent's recent calls, over the agent protocol.
    let recent = a.call(json!({"cmd": "queryRecentCalls", "limit": 5})).await.unwrap();
    assert_eq!(recent["agent"], "1001");
    assert_eq!(recent["calls"][0]["call_id"], cdr["call_id"], "{recent}");
    let e = a.call(json!({"cmd": "queryRecentCalls", "agent": "9001"})).await.unwrap_err();
    assert!(e.to_string().contains("only supervisors"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_failing_services_take_the_failure_branch_without_delaying_other_calls() {
    let (d, seen) = ivr_daemon();
    let mut watch = d.connect();
    watch.send(&json!({"id": 1, "cmd": "watch"}));
    let _ = watch.recv();
    // Call 1 asks the slow service (1.5 s timeout); call 2, a moment later, the fast one.
    for (port, digit) in [(1, "2"), (2, "1")] {
        let r = d.request(json!({"cmd": "sim.call", "port": port, "from": format!("2000{port}"),
                                 "digits": digit, "digits_delay_ms": 200, "hangup_after": 30.0}));
        assert_eq!(r["ok"], true, "{r}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Nobody is logged in: a call that reaches the queue waits there.
    let mut waiting = Vec::new();
    let mut sorry = None;
    let notices = tokio::task::block_in_place(|| {
        until(&mut watch, |n| {
            if n["type"] == "call_waiting" {
                waiting.push(n["call"].as_str().unwrap_or("").to_string());
            }
            if n["type"] == "prompt_played" && n["prompt"] == "sorry.wav" {
                sorry = Some(waiting.len());
            }
            waiting.len() == 2
        })
    });
    assert_eq!(sorry, Some(1), "the fast call was queued before the slow one failed: {notices:?}");
    let calls: Vec<&str> =
        of_type(&notices, "call_offered").iter().map(|n| n["call"].as_str().unwrap()).collect();
    assert_eq!(waiting, [calls[1], calls[0]], "{notices:?}");
    let requests = seen.lock().unwrap().clone();
    assert!(requests.iter().any(|r| r.starts_with("/slow")), "{requests:?}");

    for port in [1, 2] {
        assert_eq!(d.request(json!({"cmd": "sim.hangup", "port": port}))["ok"], true);
    }
    let mut ended = 0;
    tokio::task::block_in_place(|| {
        until(&mut watch, |n| {
            ended += usize::from(n["type"] == "call_ended");
            ended == 2
        })
    });

    // A service that fails with 500 is retried once, then the flow takes its failure branch.
    // The exchange takes a moment to free the line after a hang-up.
    let notices = tokio::task::block_in_place(|| loop {
        let notices = d.call(1, "20003", "3", Some(8.0));
        if !notices.iter().any(|n| n["what"].as_str().is_some_and(|w| w.starts_with("refused"))) {
            break notices;
        }
        std::thread::sleep(Duration::from_millis(300));
    });
    assert!(prompts_played(&notices).contains(&"sorry.wav".to_string()), "{notices:?}");
    let broken = seen.lock().unwrap().iter().filter(|r| r.starts_with("/broken")).count();
    assert_eq!(broken, 2, "one attempt and one retry");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_sends_the_caller_to_a_check_and_gets_them_back_with_the_result() {
    let (d, _) = ivr_daemon();
    let addr = d.agent_addr();
    let mut a = agent(&addr, "1001", 3).await;
    let r = d.request(json!({"cmd": "sim.call", "port": 1, "from": "13900139000", "digits": "1",
                             "digits_delay_ms": 300, "hangup_after": 60.0}));
    assert_eq!(r["ok"], true);
    a.wait_for(EventKind::Talk).await.unwrap();
    let e = a.do_action(14, 0, "no-such-flow").await.unwrap_err();
    assert!(e.to_string().contains("no IVR flow is named"), "{e}");

    let mut watch = d.connect();
    watch.send(&json!({"id": 1, "cmd": "watch"}));
    let _ = watch.recv();
    a.do_action(14, 0, "check").await.unwrap();
    let state = a.wait_for(EventKind::AgentState).await.unwrap();
    assert!(state.s_param.starts_with("STATE:held|"), "{}", state.s_param);
    tokio::task::block_in_place(|| {
        until(&mut watch, |n| n["type"] == "prompt_played" && n["prompt"] == "pin.wav")
    });
    assert_eq!(d.request(json!({"cmd": "sim.dial", "port": 1, "digits": "2468"}))["ok"], true);
    let talk = a.wait_for(EventKind::Talk).await.unwrap();
    let tags = Tags::parse(&talk.s_param).unwrap();
    assert_eq!(tags.get("PinChecked"), Some("2468"), "{}", talk.s_param);
    assert_eq!(tags.get("Name"), Some("Li"), "earlier tags stay");
}

#[test]
fn check_reports_flow_errors_with_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let flows = dir.path().join("flows");
    std::fs::create_dir_all(&flows).unwrap();
    let config = config("http://127.0.0.1:9").replace("survey = \"survey\"\n", "");
    std::fs::write(dir.path().join("sb.toml"), &config).unwrap();
    std::fs::write(
        flows.join("main.toml"),
        "start = \"a\"\n[select]\ncalled = [\"8000\"]\n[node.a]\ntype = \"menu\"\nplay = [\"missing.wav\"]\nkeys = { \"1\" = \"nowhere\" }\n[node.b]\ntype = \"hangup\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(BIN).arg("check").arg(dir.path().join("sb.toml")).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("main.toml:6:8: key `node.a.play`: prompt file"), "{err}");
    assert!(err.contains("missing.wav does not exist"), "{err}");
    assert!(err.contains("key `node.a.keys.1`: no node named `nowhere`"), "{err}");
    assert!(err.contains("main.toml:8:1: key `node.b`: no node leads here"), "{err}");

    std::fs::write(
        flows.join("main.toml"),
        "start = \"a\"\n[select]\ncalled = [\"8000\"]\n[node.a]\ntype = \"hangup\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(BIN).arg("check").arg(dir.path().join("sb.toml")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 flows in"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flows_and_agents_transfer_callers_to_external_numbers() {
    let (d, _) = ivr_daemon();
    // A busy number: the flow takes its failure branch.
    let notices = tokio::task::block_in_place(|| d.call(1, "13800138000", "5", Some(12.0)));
    assert!(prompts_played(&notices).contains(&"sorry.wav".to_string()), "{notices:?}");
    let busy = d.cdrs().into_iter().find(|c| c["callee"] == "99990000").expect("the outgoing leg's CDR");
    assert_eq!(busy["disposition"], "busy", "{busy}");

    // A number that answers: the caller talks with it through the second trunk until the
    // caller hangs up, which ends both legs.
    let notices = tokio::task::block_in_place(|| loop {
        let n = d.call(1, "13800138000", "4", Some(12.0));
        if !n.iter().any(|n| n["what"].as_str().is_some_and(|w| w.starts_with("refused"))) {
            break n;
        }
        std::thread::sleep(Duration::from_millis(300));
    });
    assert!(!prompts_played(&notices).contains(&"sorry.wav".to_string()), "{notices:?}");
    let cdrs = d.cdrs();
    let out = cdrs.iter().find(|c| c["callee"] == "83366857").expect("the outgoing leg's CDR");
    assert_eq!(out["disposition"], "answered", "{out} {}", d.log());
    assert_eq!(out["direction"], "out", "{out}");
    assert_eq!(out["trunk_port"], 2, "{out}");
    assert!(
        crate::harness::eventually(Duration::from_secs(5), || {
            d.cdrs().iter().all(|c| c["end"].is_string())
        }),
        "both legs end: {:?}",
        d.cdrs()
    );

    // An agent transfers their caller out (DoAction 5, iParam 3).
    let addr = d.agent_addr();
    let mut a = agent(&addr, "1001", 3).await;
    // The exchange frees the lines a moment after the last call.
    assert!(crate::harness::eventually(Duration::from_secs(10), || {
        d.request(json!({"cmd": "status"}))["result"]["calls"].as_array().is_some_and(|c| c.is_empty())
    }));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let r = d.request(json!({"cmd": "sim.call", "port": 1, "from": "13900139000", "digits": "1",
                             "digits_delay_ms": 300, "hangup_after": 20.0}));
    assert_eq!(r["ok"], true, "{r}");
    a.wait_for(EventKind::Talk).await.unwrap();
    let e = a.do_action(5, 3, "12ab").await.unwrap_err();
    assert!(e.to_string().contains("is not a number"), "{e}");
    a.do_action(5, 3, "83366857").await.unwrap();
    let state = a.wait_for(EventKind::AgentState).await.unwrap();
    assert!(state.s_param.starts_with("STATE:wrap-up|"), "{}", state.s_param);
    assert!(
        crate::harness::eventually(Duration::from_secs(8), || {
            d.cdrs().iter().filter(|c| c["callee"] == "83366857" && c["answer"].is_string()).count() == 2
        }),
        "{:?}",
        d.cdrs()
    );
}

#[test]
fn waiting_callers_hear_their_position_through_tts() {
    let config = config("http://127.0.0.1:9")
        .replace("tts = \"none\"", "tts = \"espeak-ng\"")
        .replace("survey = \"survey\"", "announce_every_s = 5");
    let mut d = Daemon::prepare(&config);
    let flows = d.dir.path().join("flows");
    std::fs::create_dir_all(flows.join("prompts")).unwrap();
    std::fs::write(
        flows.join("main.toml"),
        "start = \"q\"\n[select]\ncalled = [\"8000\"]\n[node.q]\ntype = \"queue\"\nqueue = \"support\"\n",
    )
    .unwrap();
    d.spawn();
    let mut watch = d.connect();
    watch.send(&json!({"id": 1, "cmd": "sim.call", "port": 1, "from": "13800138000", "hangup_after": 9.0,
                       "watch": true}));
    assert_eq!(watch.recv()["ok"], true);
    let notices = watch.notices_until_end();
    // Nobody is logged in: the caller waits, and after 5 s hears where they are.
    assert!(of_type(&notices, "call_waiting").len() == 1, "{notices:?}");
    assert_eq!(prompts_played(&notices), ["announcement"], "{notices:?}");
    let cached = std::fs::read_dir(d.data().join("tts-cache/en")).unwrap().count();
    assert!(cached >= 1, "the announcement was rendered and cached");
}

#[test]
fn prompt_sets_are_built_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(BIN)
        .args(["prompts", "--lang", "zh", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let made = std::fs::read_dir(dir.path().join("prompt-sets/zh")).unwrap().count();
    assert_eq!(made, switchboard::speech::items(switchboard::speech::Lang::Zh).len());
    let wav = switchboard::audio::wav::read_wav(&dir.path().join("prompt-sets/zh/yuan.wav")).unwrap();
    assert!(!switchboard::audio::wav::to_8k(wav).unwrap().is_empty());
    let out = std::process::Command::new(BIN).args(["prompts", "--lang", "fr"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("use en, zh or all"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloading_flows_keeps_calls_on_the_version_they_started_with() {
    let (d, _) = ivr_daemon();
    let mut first = d.connect();
    first.send(&json!({"id": 1, "cmd": "sim.call", "port": 1, "from": "13800138000", "hangup_after": 30.0,
                       "watch": true}));
    assert_eq!(first.recv()["ok"], true);
    tokio::task::block_in_place(|| until(&mut first, |n| n["type"] == "prompt_played"));

    // The new version greets with another prompt.
    let main = d.dir.path().join("flows/main.toml");
    std::fs::write(
        &main,
        MAIN.replace("play = [\"welcome.wav\"]", "play = [\"thanks.wav\", \"welcome.wav\"]"),
    )
    .unwrap();
    let r = d.request(json!({"id": 2, "cmd": "flows.reload"}));
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["result"]["calls_on_previous_version"], 1, "{r}");

    let mut second = d.connect();
    second.send(&json!({"id": 3, "cmd": "sim.call", "port": 2, "from": "13900139000", "hangup_after": 3.0,
                        "watch": true}));
    assert_eq!(second.recv()["ok"], true);
    let mut played = 0;
    let new = tokio::task::block_in_place(|| {
        until(&mut second, |n| {
            played += usize::from(n["type"] == "prompt_played");
            played == 2
        })
    });
    assert_eq!(prompts_played(&new), ["thanks.wav", "welcome.wav"], "{new:?}");
    let old = tokio::task::block_in_place(|| first.notices_until_end());
    let old = prompts_played(&old);
    assert_eq!(old, ["menu.wav", "noinput.wav", "menu.wav", "bye.wav"], "the first call's flow is unchanged");

    // A broken version is refused whole, with its errors; the running one stays.
    std::fs::write(&main, "start = \"x\"\n[node.y]\ntype = \"hangup\"\n").unwrap();
    let r = d.request(json!({"id": 4, "cmd": "flows.reload"}));
    assert_eq!(r["ok"], false, "{r}");
    let e = r["error"].as_str().unwrap();
    assert!(e.contains("main.toml:1:9: key `start`: no node named `x`"), "{e}");
    let status = d.request(json!({"id": 5, "cmd": "status"}));
    assert_eq!(status["result"]["ivr"]["flows"], json!(["check", "main", "survey"]), "{status}");

    // SIGHUP reloads the flows too (what `systemctl reload` sends).
    std::fs::write(&main, MAIN).unwrap();
    std::fs::write(d.dir.path().join("flows/goodbye.toml"), "start = \"h\"\n[node.h]\ntype = \"hangup\"\n")
        .unwrap();
    d.signal(nix::sys::signal::Signal::SIGHUP);
    let reloaded = tokio::task::block_in_place(|| {
        eventually(Duration::from_secs(10), || {
            let status = d.request(json!({"id": 6, "cmd": "status"}));
            status["result"]["ivr"]["flows"] == json!(["check", "goodbye", "main", "survey"])
        })
    });
    assert!(reloaded, "SIGHUP reloaded the flows: {}", d.log());
}

#[test]
fn a_voicemail_is_recorded_stored_and_listed() {
    let mut d = Daemon::prepare(&config("http://127.0.0.1:9").replace("survey = \"survey\"\n", ""));
    let flows = d.dir.path().join("flows");
    std::fs::create_dir_all(flows.join("prompts")).unwrap();
    tone(&flows.join("prompts/beep.wav"), 1000.0, 0.3);
    std::fs::write(
        flows.join("main.toml"),
        "start = \"vm\"\n[select]\ncalled = [\"8000\"]\n[node.vm]\ntype = \"voicemail\"\nplay = [\"beep.wav\"]\nmailbox = \"${called}\"\n",
    )
    .unwrap();
    d.spawn();
    // The caller speaks (types digits, which are audio too) for about 2 s, then presses #.
    let notices = d.call(1, "13800138000", "1234#", Some(10.0));
    let end = of_type(&notices, "call_ended")[0];
    assert_eq!(end["cause"], "hung up by the flow", "# ends the message, then the flow hangs up: {end}");
    let vocid = end["vocid"].as_str().expect("the message is recorded").to_string();
    let out = std::process::Command::new(BIN)
        .args(["voicemail", "list", "--mailbox", "8000", "--json", "--data-dir"])
        .arg(d.data())
        .output()
        .unwrap();
    let list: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    assert_eq!(list[0]["vocid"], vocid.as_str(), "{list}");
    assert_eq!(list[0]["caller"], "13800138000", "{list}");
    let ms = list[0]["duration_ms"].as_i64().expect("the message's length");
    assert!((300..5000).contains(&ms), "{list}");
    let wav = crate::harness::eventually(Duration::from_secs(5), || {
        std::fs::read_dir(d.data().join("recordings")).is_ok()
    });
    assert!(wav);
}
