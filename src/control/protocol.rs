//! The local control protocol: one JSON object per line over a Unix socket in the data
//! directory. The CLI (`switchboard sim ...`, `switchboard status`) speaks it; so can scripts.
//!
//! A request is `{"id": N, "cmd": "NAME", ...arguments}`. The daemon answers every request
//! with `{"id": N, "ok": true, "result": ...}` or `{"id": N, "ok": false, "error": "..."}`.
//! A request that asks to watch (`watch`, or `sim.call` with `"watch": true`) is then followed
//! by notices `{"notice": ...}` until the watched call ends or the client disconnects.

use serde::{Deserialize, Serialize};

/// Longest request line accepted, in bytes.
pub const MAX_LINE: usize = 64 * 1024;

/// A request, tagged by `cmd`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(tag = "cmd", deny_unknown_fields)]
pub enum Request {
    /// The daemon's state: card, engine counters, calls.
    #[serde(rename = "status")]
    Status {},
    /// Loads the IVR flows again; calls in progress finish on the flows they started with.
    #[serde(rename = "flows.reload")]
    FlowsReload {},
    /// The most recent CDRs.
    #[serde(rename = "cdr.list")]
    CdrList {
        #[serde(default = "default_limit")]
        limit: u32,
    },
    /// Streams every call event and far-end report until the client disconnects.
    #[serde(rename = "watch")]
    Watch {},
    /// Makes the simulated exchange call a trunk port.
    #[serde(rename = "sim.call")]
    SimCall {
        port: u16,
        #[serde(default)]
        from: String,
        #[serde(default)]
        digits: String,
        /// Milliseconds between the answer and the first digit.
        #[serde(default = "default_digits_delay")]
        digits_delay_ms: u32,
        /// A WAV file (path on the daemon's machine) the caller plays after the digits.
        #[serde(default)]
        play: Option<String>,
        /// Seconds after the answer at which the caller hangs up.
        #[serde(default)]
        hangup_after: Option<f64>,
        /// Keep the connection and stream this call's events until it ends.
        #[serde(default)]
        watch: bool,
    },
    /// The far end of a port hangs up (trunk) or puts the phone down (seat).
    #[serde(rename = "sim.hangup")]
    SimHangup { port: u16 },
    /// The phone on a seat port goes off-hook (answers if ringing).
    #[serde(rename = "sim.offhook")]
    SimOffHook { port: u16 },
    /// The far end of a connected port types digits.
    #[serde(rename = "sim.dial")]
    SimDial { port: u16, digits: String },
    /// How long the phone on a seat port rings before answering by itself (null: never).
    #[serde(rename = "sim.autoanswer")]
    SimAutoAnswer { port: u16, after_ms: Option<u32> },
    /// The far end of a port plays a call-progress tone of the zone (null: stops).
    #[serde(rename = "sim.tone")]
    SimTone { port: u16, tone: Option<String> },
    /// Records what the far end of a port hears for `seconds` into
    /// `DATA_DIR/sim-recordings/NAME.wav`. Answers with the path when the file is written.
    #[serde(rename = "sim.record")]
    SimRecord { port: u16, seconds: f64, name: String },
    /// The far end of a port sends back what it hears, `loss_db` quieter (null: stops), like
    /// a loop-back plug at the exchange: for line tests on the simulated card.
    #[serde(rename = "sim.echo")]
    SimEcho { port: u16, loss_db: Option<u8> },
    /// The maintenance shell. With `run`, runs that one command line and answers with its
    /// output lines; without, the connection carries the shell's bytes both ways after the
    /// answer, as a terminal would (see `switchboard shell`).
    #[serde(rename = "shell")]
    Shell {
        #[serde(default)]
        run: Option<String>,
    },
}

fn default_limit() -> u32 {
    20
}

fn default_digits_delay() -> u32 {
    1000
}

/// An incoming line: the request and the client's id for it.
#[derive(Clone, Debug, PartialEq)]
pub struct Envelope {
    pub id: Option<serde_json::Value>,
    pub request: Request,
}

/// The answer to one request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub id: Option<serde_json::Value>,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Response {
    pub fn ok(id: Option<serde_json::Value>, result: serde_json::Value) -> Response {
        Response { id, ok: true, result: Some(result), error: None }
    }

    pub fn error(id: Option<serde_json::Value>, error: impl Into<String>) -> Response {
        Response { id, ok: false, result: None, error: Some(error.into()) }
    }
}

/// Something that happened, pushed to watchers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Notice {
    /// A call entered an IVR flow.
    FlowEntered {
        call: String,
        flow: String,
    },
    /// A flow started playing something to the caller: the prompt file's name, `set:LANG:ITEM`
    /// for a prompt-set item, or `tts:TEXT`.
    PromptPlayed {
        call: String,
        prompt: String,
    },
    /// An E1 span's alarm was raised or cleared (`alarm` empty): red, yellow, blue, los.
    SpanAlarm {
        span: u16,
        alarm: String,
    },
    CallOffered {
        call: String,
        trunk: u16,
        caller: String,
    },
    SeatRinging {
        call: String,
        seat: u16,
    },
    CallWaiting {
        call: String,
    },
    CallAnswered {
        call: String,
        seat: u16,
    },
    /// A consulted seat joined (answered) or left a call.
    Consult {
        call: String,
        seat: u16,
        joined: bool,
    },
    /// The agent on `from_seat` transferred the call.
    Transferred {
        call: String,
        from_seat: u16,
    },
    /// The call waited too long and moved to another queue.
    Overflowed {
        call: String,
        to: String,
    },
    /// A seat rang out without answering.
    SeatNoAnswer {
        call: String,
        seat: u16,
    },
    /// A supervisor's seat joined (`joined` true) or left a call.
    Monitor {
        seat: u16,
        joined: bool,
    },
    /// An outgoing call made progress: dialing, ringback, busy.
    Progress {
        call: String,
        seat: u16,
        what: String,
    },
    Recording {
        call: String,
        vocid: String,
        path: String,
    },
    Digit {
        call: String,
        port: u16,
        digit: char,
    },
    CallEnded {
        call: String,
        disposition: String,
        cause: String,
        vocid: Option<String>,
    },
    /// A report from the simulated far end of a port.
    Far {
        port: u16,
        what: String,
        /// CLOCK_MONOTONIC nanoseconds of the event on the card, where known (ringing).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        at_ns: Option<u64>,
    },
}

impl Notice {
    /// The call the notice is about, if any.
    pub fn call(&self) -> Option<&str> {
        match self {
            Notice::CallOffered { call, .. }
            | Notice::SeatRinging { call, .. }
            | Notice::CallWaiting { call }
            | Notice::CallAnswered { call, .. }
            | Notice::Progress { call, .. }
            | Notice::SeatNoAnswer { call, .. }
            | Notice::Overflowed { call, .. }
            | Notice::Transferred { call, .. }
            | Notice::Consult { call, .. }
            | Notice::Recording { call, .. }
            | Notice::Digit { call, .. }
            | Notice::CallEnded { call, .. }
            | Notice::FlowEntered { call, .. }
            | Notice::PromptPlayed { call, .. } => Some(call),
            Notice::Far { .. } | Notice::Monitor { .. } | Notice::SpanAlarm { .. } => None,
        }
    }
}

/// A line pushed to a watcher.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NoticeLine {
    pub notice: Notice,
}

/// Parses one request line, with an error message fit to send back.
pub fn parse_request(line: &str) -> Result<Envelope, (Option<serde_json::Value>, String)> {
    let mut value: serde_json::Value =
        serde_json::from_str(line).map_err(|e| (None, format!("bad request: {e}")))?;
    // The id is taken out first so that the request itself is checked strictly: an unknown
    // or misspelt field is an error, not silently ignored.
    let id = value.as_object_mut().and_then(|o| o.remove("id"));
    match serde_json::from_value::<Request>(value) {
        Ok(request) => Ok(Envelope { id, request }),
        Err(e) => Err((id, format!("bad request: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_sim_call() {
        let e =
            parse_request(r#"{"id":7,"cmd":"sim.call","port":1,"from":"83366857","digits":"1#"}"#).unwrap();
        assert_eq!(e.id, Some(serde_json::json!(7)));
        assert!(
            matches!(e.request, Request::SimCall { port: 1, ref digits, watch: false, .. } if digits == "1#")
        );
    }

    #[test]
    fn garbage_gets_a_clear_error_with_the_id() {
        let (id, msg) = parse_request(r#"{"id":3,"cmd":"launch"}"#).unwrap_err();
        assert_eq!(id, Some(serde_json::json!(3)));
        assert!(msg.contains("unknown variant `launch`"), "{msg}");
        let (id, msg) = parse_request("\u{1}\u{2}not json").unwrap_err();
        assert_eq!(id, None);
        assert!(msg.starts_with("bad request"));
        let (_, msg) = parse_request(r#"{"cmd":"sim.call","port":"one"}"#).unwrap_err();
        assert!(msg.contains("invalid type"), "{msg}");
        let (_, msg) = parse_request(r#"{"cmd":"sim.call","port":1,"hangup_afer":2}"#).unwrap_err();
        assert!(msg.contains("unknown field `hangup_afer`"), "{msg}");
        let (_, msg) = parse_request(r#"{"cmd":"status","extra":1}"#).unwrap_err();
        assert!(msg.contains("extra"), "{msg}");
    }
}
