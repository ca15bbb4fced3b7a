//! `switchboard agent`: a terminal client of the agent protocol for agents, supervisors and
//! installers, and a script runner for automated checks.
//!
//! Commands are words (`call 83366857`, `hangup`, `pause lunch`...) mapped to the protocol's
//! requests; events are printed as they arrive with their tag strings parsed. A script is a
//! file of the same commands plus `expect EVENT [NAME=VALUE...]` and `sleep SECONDS` lines;
//! the run fails at the first expectation that is not met in time.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

use super::client::{AgentClient, ClientError};
use super::protocol::{Event, EventKind, STATE_NAMES};
use super::tags::Tags;

/// How long `expect` waits for its event.
const EXPECT_TIMEOUT: Duration = Duration::from_secs(30);

/// What to connect to and as whom.
pub struct Options {
    pub server: String,
    pub agent: String,
    pub password: String,
    /// The seat to open; none for a supervisor who only watches.
    pub seat: Option<u16>,
    /// Watch every seat (supervisors).
    pub watch: bool,
}

/// Errors of the console.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("{file}:{line}: {message}")]
    Script { file: String, line: usize, message: String },
    #[error("cannot read {0}: {1}")]
    Io(String, std::io::Error),
}

/// Formats an event for people: `Ring seat 5: CALLERID=83366857 TTYPE=2`.
pub fn describe(e: &Event) -> String {
    let detail = match e.event {
        EventKind::Dtmf => format!("key {}", e.s_param),
        _ => match Tags::parse(&e.s_param) {
            Ok(tags) => tags.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join(" "),
            Err(_) => e.s_param.clone(),
        },
    };
    let extra = match e.event {
        EventKind::AgentState => {
            format!(" ({})", STATE_NAMES.get(e.i_param as usize).copied().unwrap_or("?"))
        }
        EventKind::Ring | EventKind::Talk => {
            (if e.i_param == 1 { " (external)" } else { " (internal)" }).to_string()
        }
        _ => String::new(),
    };
    format!("{:?} seat {}{extra}: {detail}", e.event, e.slice_no)
}

/// Turns a command line into a request. `None` for an empty line or a comment.
pub fn request_for(line: &str) -> Result<Option<Value>, String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    let rest = rest.trim();
    let act = |id: i64, i: i64, s: &str| {
        Ok(Some(json!({"cmd": "DoAction", "actId": id, "iParam": i, "sParam": s})))
    };
    match word {
        "answer" => act(1, 0, ""),
        "hangup" => act(2, 0, ""),
        "hold" => act(3, 0, ""),
        "retrieve" | "resume" => act(4, 0, ""),
        "call" => {
            let mut parts = rest.split_whitespace();
            let number = parts.next().ok_or("call needs a NUMBER")?;
            match parts.next() {
                Some(caller) => act(7, 3, &format!("{number}|{caller}")),
                None => act(7, 3, number),
            }
        }
        "transfer" if !rest.is_empty() => act(5, 0, rest),
        "transfer-queue" if !rest.is_empty() => act(5, 1, rest),
        "transfer-ivr" if !rest.is_empty() => act(5, 2, rest),
        "transfer-out" if !rest.is_empty() => act(5, 3, rest),
        "ivr" if !rest.is_empty() => act(14, 0, rest),
        "consult" if !rest.is_empty() => act(6, 0, rest),
        "complete" => act(8, 0, ""),
        "cancel" => act(9, 0, ""),
        "conference" => act(15, 0, ""),
        "dtmf" if !rest.is_empty() => act(10, 0, rest),
        "pause" => act(11, 0, rest),
        "ready" => act(12, 0, ""),
        "done" => act(13, 0, ""),
        "msg" => match rest.split_once(char::is_whitespace) {
            Some((to, text)) => act(16, 0, &format!("{to}|{}", text.trim())),
            None => Err("msg needs AGENT TEXT".into()),
        },
        "msgall" if !rest.is_empty() => act(16, 2, rest),
        "msggroup" => match rest.split_once(char::is_whitespace) {
            Some((group, text)) => act(16, 1, &format!("{group}|{}", text.trim())),
            None => Err("msggroup needs QUEUE TEXT".into()),
        },
        "calls" => Ok(Some(json!({"cmd": "queryCalls"}))),
        "recent" if rest.is_empty() => Ok(Some(json!({"cmd": "queryRecentCalls"}))),
        "recent" => Ok(Some(json!({"cmd": "queryRecentCalls", "agent": rest}))),
        "seats" => Ok(Some(json!({"cmd": "querySeats"}))),
        "mask" => Ok(Some(json!({"cmd": "getActionEnables"}))),
        "watch" => Ok(Some(json!({"cmd": "SubscribeAll"}))),
        "control" => {
            let mut parts = rest.split_whitespace().map(str::parse::<i64>);
            match (parts.next(), parts.next(), parts.next()) {
                (Some(Ok(seat)), Some(Ok(kind)), param) => Ok(Some(json!({
                    "cmd": "DoControl", "targetSliceNo": seat, "controlType": kind,
                    "iParam": param.and_then(Result::ok).unwrap_or(0)
                }))),
                _ => Err("control needs SEAT TYPE [IPARAM] (numbers)".into()),
            }
        }
        _ => Err(format!(
            "unknown command {word:?}: answer, hangup, hold, retrieve, call NUMBER [CALLERID], transfer AGENT, \
             transfer-queue QUEUE, transfer-ivr FLOW, transfer-out NUMBER, ivr FLOW (and back), consult AGENT, \
             complete, cancel, conference, dtmf DIGITS, pause [REASON], ready, done, msg AGENT TEXT, \
             msggroup QUEUE TEXT, msgall TEXT, seats, calls, recent [AGENT], mask, watch, control SEAT TYPE [IPARAM], quit"
        )),
    }
}

async fn connect(opts: &Options) -> Result<AgentClient, ClientError> {
    let mut client = AgentClient::connect(opts.server.as_str()).await?;
    let hello = client.hello("switchboard-agent").await?;
    println!("connected to {} (protocol {})", hello["server"].as_str().unwrap_or("?"), hello["protocol"]);
    let who = client.login(&opts.agent, &opts.password).await?;
    println!(
        "logged in as {} ({}, {})",
        who["agent"],
        who["name"].as_str().unwrap_or(""),
        who["role"].as_str().unwrap_or("")
    );
    if let Some(seat) = opts.seat {
        let r = client.open_app(seat).await?;
        println!("seat {seat}: {} (actions mask {})", r["stateName"].as_str().unwrap_or("?"), r["mask"]);
    }
    if opts.watch {
        let seats = client.call(json!({"cmd": "SubscribeAll"})).await?;
        print_seats(&seats);
    }
    Ok(client)
}

fn print_seats(v: &Value) {
    println!("{:<6} {:<10} {:<12} {:<12} tags", "seat", "agent", "state", "reason");
    for s in v["seats"].as_array().into_iter().flatten() {
        println!(
            "{:<6} {:<10} {:<12} {:<12} {}",
            s["sliceNo"],
            s["agent"].as_str().unwrap_or("-"),
            s["stateName"].as_str().unwrap_or("?"),
            s["reason"].as_str().unwrap_or(""),
            s["tags"].as_str().unwrap_or("")
        );
    }
}

fn print_result(r: Result<Value, ClientError>) -> Result<(), ClientError> {
    match r {
        Ok(v) if v.get("seats").is_some() => print_seats(&v),
        Ok(Value::Null) => println!("ok"),
        Ok(v) => println!("ok: {v}"),
        Err(ClientError::Server(e)) => println!("refused ({:?}): {}", e.code, e.message),
        Err(e) => return Err(e),
    }
    Ok(())
}

/// The supervisor's panel: every seat's state and the waiting calls, as one block of text.
async fn panel(client: &mut AgentClient) -> Result<String, ClientError> {
    use std::fmt::Write;
    let seats = client.call(json!({"cmd": "querySeats"})).await?;
    let calls = client.call(json!({"cmd": "queryCalls"})).await?;
    let mut out = String::from("-- seats --\n");
    for s in seats["seats"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "{:<5} {:<8} {:<10} {}",
            s["sliceNo"],
            s["agent"].as_str().unwrap_or("-"),
            s["stateName"].as_str().unwrap_or("?"),
            s["reason"].as_str().unwrap_or("")
        );
    }
    let waiting = calls["waiting"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let _ = writeln!(out, "-- waiting calls: {} --", waiting.len());
    for c in waiting {
        let _ = writeln!(
            out,
            "{:<18} from {:<14} waiting {:>5.0} s",
            c["call"].as_str().unwrap_or("?"),
            c["caller"].as_str().unwrap_or(""),
            c["waitingS"].as_f64().unwrap_or(0.0)
        );
    }
    Ok(out)
}

/// Runs interactively: commands from stdin, events printed as they come. With `--watch`,
/// the panel of seats and waiting calls is printed again whenever it changes (checked
/// every 2 s), so a supervisor's terminal stays a live view.
pub async fn interactive(opts: Options) -> Result<(), ConsoleError> {
    let mut client = connect(&opts).await?;
    println!("type a command (help for the list), quit to leave");
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut refresh = tokio::time::interval(std::time::Duration::from_secs(2));
    let mut shown = String::new();
    loop {
        tokio::select! {
            _ = refresh.tick(), if opts.watch => {
                let now = panel(&mut client).await?;
                if now != shown {
                    print!("{now}");
                    shown = now;
                }
            }
            line = lines.next_line() => {
                let Ok(Some(line)) = line else { return Ok(()) };
                match line.trim() {
                    "quit" | "exit" => return Ok(()),
                    "help" => {
                        let _ = request_for("?").map_err(|e| println!("{e}"));
                        continue;
                    }
                    _ => {}
                }
                match request_for(&line) {
                    Ok(Some(request)) => print_result(client.call(request).await)?,
                    Ok(None) => {}
                    Err(e) => println!("{e}"),
                }
            }
            event = client.next_event_no_timeout() => println!("{}", describe(&event?)),
        }
    }
}

/// Runs a script; returns an error naming the line of the first failure.
pub async fn script(opts: Options, path: &str) -> Result<(), ConsoleError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConsoleError::Io(path.into(), e))?;
    let mut client = connect(&opts).await?;
    for (n, line) in text.lines().enumerate() {
        let fail = |message: String| ConsoleError::Script { file: path.into(), line: n + 1, message };
        let trimmed = line.trim();
        let (word, rest) = trimmed.split_once(char::is_whitespace).unwrap_or((trimmed, ""));
        match word {
            "expect" => {
                let mut parts = rest.split_whitespace();
                let kind = parts.next().ok_or_else(|| fail("expect needs an event name".into()))?;
                let wanted: Vec<(&str, &str)> = parts.filter_map(|p| p.split_once('=')).collect();
                let found = tokio::time::timeout(EXPECT_TIMEOUT, async {
                    loop {
                        let e = client.next_event_no_timeout().await?;
                        println!("{}", describe(&e));
                        let tags = Tags::parse(&e.s_param).unwrap_or_default();
                        let matches = format!("{:?}", e.event) == kind
                            && wanted.iter().all(|(n, v)| {
                                tags.get(n) == Some(*v)
                                    || (e.event == EventKind::Dtmf && *n == "KEY" && e.s_param == *v)
                            });
                        if matches {
                            return Ok::<Event, ClientError>(e);
                        }
                    }
                })
                .await;
                match found {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return Err(e.into()),
                    Err(_) => {
                        return Err(fail(format!("no {trimmed:?} within {} s", EXPECT_TIMEOUT.as_secs())))
                    }
                }
            }
            "sleep" => {
                let s: f64 =
                    rest.trim().parse().map_err(|_| fail(format!("bad number of seconds {rest:?}")))?;
                tokio::time::sleep(Duration::from_secs_f64(s.clamp(0.0, 3600.0))).await;
            }
            _ => match request_for(line) {
                Ok(Some(request)) => {
                    println!("> {trimmed}");
                    match client.call(request).await {
                        Ok(v) => print_result(Ok(v))?,
                        Err(ClientError::Server(e)) => {
                            return Err(fail(format!("{trimmed:?} refused ({:?}): {}", e.code, e.message)))
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                Ok(None) => {}
                Err(e) => return Err(fail(e)),
            },
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_map_to_the_protocol() {
        let r = |l: &str| request_for(l).unwrap().unwrap();
        assert_eq!(
            r("call 83366857 4008001234"),
            json!({"cmd": "DoAction", "actId": 7, "iParam": 3, "sParam": "83366857|4008001234"})
        );
        assert_eq!(r("transfer 1002")["actId"], 5);
        assert_eq!(r("transfer-queue sales")["iParam"], 1);
        assert_eq!(r("msg 1002 see you at 3:00")["sParam"], "1002|see you at 3:00");
        assert_eq!(
            r("ivr check-pin"),
            json!({"cmd": "DoAction", "actId": 14, "iParam": 0, "sParam": "check-pin"})
        );
        assert_eq!(
            r("transfer-ivr survey"),
            json!({"cmd": "DoAction", "actId": 5, "iParam": 2, "sParam": "survey"})
        );
        assert_eq!(r("transfer-out 83366857")["iParam"], 3);
        assert_eq!(r("msggroup sales meeting at 3")["sParam"], "sales|meeting at 3");
        assert_eq!(r("recent 1002"), json!({"cmd": "queryRecentCalls", "agent": "1002"}));
        assert_eq!(r("calls"), json!({"cmd": "queryCalls"}));
        assert!(request_for("msggroup sales").is_err());
        assert_eq!(
            r("control 5 1"),
            json!({"cmd": "DoControl", "targetSliceNo": 5, "controlType": 1, "iParam": 0})
        );
        assert_eq!(request_for("  # a comment").unwrap(), None);
        assert!(request_for("launch").unwrap_err().contains("unknown command \"launch\""));
        assert!(request_for("control five 1").is_err());
    }
}
