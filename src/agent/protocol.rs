//! The agent control protocol's wire format: one JSON object per line over TCP.
//!
//! `docs/agent-protocol.md` is the reference for client writers; this module is its codec.
//! Parsing does no IO and keeps no state, so it is tested directly.

use serde::{Deserialize, Serialize};

/// The protocol version `hello` reports. Incremented on incompatible changes.
pub const PROTOCOL_VERSION: u32 = 1;

/// Longest request line accepted, in bytes (without the newline).
pub const MAX_LINE: usize = 64 * 1024;

/// A request from a client, tagged by `cmd`. Field names follow the reference product's
/// (`sliceNo`, `actId`, `iParam`, `sParam`) so that integration code maps one to one.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(tag = "cmd", deny_unknown_fields)]
pub enum Request {
    /// Version exchange; optional, but a client should send it first.
    #[serde(rename = "hello")]
    Hello {
        #[serde(default)]
        client: String,
        #[serde(default)]
        protocol: Option<u32>,
    },
    /// Logs an agent in with a password, or with a one-time ticket from `SetLoginInfo`.
    Login {
        agent: String,
        #[serde(default)]
        password: Option<String>,
        #[serde(default)]
        ticket: Option<String>,
    },
    /// Single sign-on: a business system, authenticated by its integration key, asks for a
    /// one-time login ticket for an agent it has already authenticated.
    SetLoginInfo {
        #[serde(rename = "integrationKey")]
        integration_key: String,
        agent: String,
    },
    /// Binds the session to a seat (its `sliceNo`, the seat's port).
    OpenApp {
        #[serde(rename = "sliceNo")]
        slice_no: u16,
    },
    Logout {},
    DoAction {
        #[serde(rename = "actId")]
        act_id: i64,
        #[serde(rename = "iParam", default)]
        i_param: i64,
        #[serde(rename = "sParam", default)]
        s_param: String,
    },
    #[serde(rename = "getActionEnables")]
    GetActionEnables {},
    /// Supervisor operations on another seat.
    DoControl {
        #[serde(rename = "targetSliceNo")]
        target: u16,
        #[serde(rename = "controlType")]
        control: i64,
        #[serde(rename = "iParam", default)]
        i_param: i64,
        #[serde(rename = "sParam", default)]
        s_param: String,
    },
    /// Supervisors: receive the events of every seat, not only their own.
    SubscribeAll {},
    /// Seats and agents with their states.
    #[serde(rename = "querySeats")]
    QuerySeats {},
    /// Calls waiting for an agent (with waiting times) and calls in conversation.
    #[serde(rename = "queryCalls")]
    QueryCalls {},
    /// An agent's recent calls (their own; supervisors may name any agent).
    #[serde(rename = "queryRecentCalls")]
    QueryRecentCalls {
        #[serde(default)]
        agent: Option<String>,
        #[serde(default)]
        limit: Option<u32>,
    },
}

/// An incoming line: the request and the client's id for it.
#[derive(Clone, Debug, PartialEq)]
pub struct Envelope {
    pub id: Option<serde_json::Value>,
    pub request: Request,
}

/// Machine-readable error codes; `message` says the same for people.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    LineTooLong,
    NotLoggedIn,
    AuthFailed,
    RateLimited,
    NoSeat,
    SeatBusy,
    NoSuchSeat,
    NotAllowed,
    Forbidden,
    NotSupported,
    Internal,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
}

/// A line the server sends: a response or an event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ServerLine {
    Response {
        id: Option<serde_json::Value>,
        ok: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        result: Option<serde_json::Value>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<ErrorBody>,
    },
    Event(Event),
}

impl ServerLine {
    pub fn ok(id: Option<serde_json::Value>, result: serde_json::Value) -> ServerLine {
        ServerLine::Response { id, ok: true, result: Some(result), error: None }
    }

    pub fn error(id: Option<serde_json::Value>, code: ErrorCode, message: impl Into<String>) -> ServerLine {
        ServerLine::Response {
            id,
            ok: false,
            result: None,
            error: Some(ErrorBody { code, message: message.into() }),
        }
    }

    /// The line as sent, newline included.
    pub fn to_line(&self) -> String {
        // Serialising these types cannot fail: they hold only strings, numbers and JSON values.
        let mut s = serde_json::to_string(self).unwrap_or_else(|_| "{}".into());
        s.push('\n');
        s
    }
}

/// An event pushed to a client. Every event carries `sliceNo`, `iParam` and `sParam`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub event: EventKind,
    /// Per-session sequence number, from 1, without gaps.
    pub seq: u64,
    #[serde(rename = "sliceNo")]
    pub slice_no: u16,
    #[serde(rename = "iParam")]
    pub i_param: i64,
    #[serde(rename = "sParam")]
    pub s_param: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    /// The seat rings. iParam 0 internal, 1 external; sParam the tag string.
    Ring,
    /// The seat is in conversation. sParam the tag string, with `VOCID` when recorded.
    Talk,
    /// The seat's call ended. iParam a cause code, sParam `CAUSE:text|`.
    Hangup,
    /// The agent's state changed. iParam the state code, sParam `STATE:name|REASON:...|`.
    AgentState,
    /// The far end pressed a key. sParam the digit.
    Dtmf,
    /// Instant message. sParam `FROM:agent|TEXT:...|`.
    Message,
    /// An outgoing call made progress. sParam `PROGRESS:dialing|` (or ringback, busy).
    Progress,
    /// Every 5 s to supervisors watching all seats, one per queue. sliceNo 0; iParam the
    /// number of waiting calls; sParam `QUEUE:name|WAITING:n|LONGEST:seconds|AVAILABLE:agents|`.
    QueueStats,
    /// A span's alarm was raised (iParam 1) or cleared (iParam 0), to `SubscribeAll` sessions,
    /// sliceNo 0. sParam `SPAN:n|ALARM:red,yellow,blue,los|` (`ALARM:` empty when cleared).
    Alarm,
}

/// Agent states; the number is the state code in events (`StateMsg[code]` is the name).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AgentState {
    Offline = 0,
    Idle = 1,
    Ringing = 2,
    Talking = 3,
    Held = 4,
    Dialing = 5,
    WrapUp = 6,
    Paused = 7,
    Monitoring = 8,
}

/// The names of the states by code, for clients (the reference's `StateMsg`).
pub const STATE_NAMES: [&str; 9] =
    ["offline", "idle", "ringing", "talking", "held", "dialing", "wrap-up", "paused", "monitoring"];

impl AgentState {
    pub const fn code(self) -> i64 {
        self as i64
    }

    pub const fn name(self) -> &'static str {
        STATE_NAMES[self as usize]
    }
}

/// DoAction codes. The mask from `getActionEnables` has bit `1 << code` set when allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Act {
    Answer = 1,
    Hangup = 2,
    Hold = 3,
    Retrieve = 4,
    BlindTransfer = 5,
    ConsultTransfer = 6,
    CallOut = 7,
    CompleteTransfer = 8,
    CancelConsult = 9,
    SendDtmf = 10,
    Pause = 11,
    Unpause = 12,
    EndWrapUp = 13,
    ToIvr = 14,
    Conference = 15,
    Message = 16,
    SetState = 17,
}

impl Act {
    pub const ALL: [Act; 17] = [
        Act::Answer,
        Act::Hangup,
        Act::Hold,
        Act::Retrieve,
        Act::BlindTransfer,
        Act::ConsultTransfer,
        Act::CallOut,
        Act::CompleteTransfer,
        Act::CancelConsult,
        Act::SendDtmf,
        Act::Pause,
        Act::Unpause,
        Act::EndWrapUp,
        Act::ToIvr,
        Act::Conference,
        Act::Message,
        Act::SetState,
    ];

    pub fn from_code(code: i64) -> Option<Act> {
        Act::ALL.iter().copied().find(|a| *a as i64 == code)
    }

    pub const fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

/// DoControl codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Control {
    Monitor = 1,
    Whisper = 2,
    BargeIn = 3,
    Intercept = 4,
    ForceRelease = 5,
    ForceLogout = 6,
    ForceState = 7,
}

impl Control {
    pub fn from_code(code: i64) -> Option<Control> {
        [
            Control::Monitor,
            Control::Whisper,
            Control::BargeIn,
            Control::Intercept,
            Control::ForceRelease,
            Control::ForceLogout,
            Control::ForceState,
        ]
        .into_iter()
        .find(|c| *c as i64 == code)
    }

    pub const fn name(self) -> &'static str {
        match self {
            Control::Monitor => "monitor",
            Control::Whisper => "whisper",
            Control::BargeIn => "barge-in",
            Control::Intercept => "intercept",
            Control::ForceRelease => "force-release",
            Control::ForceLogout => "force-logout",
            Control::ForceState => "force-state",
        }
    }
}

/// Parses one request line, with an error fit to send back (echoing the id when present).
pub fn parse_request(line: &str) -> Result<Envelope, ServerLine> {
    let bad =
        |id, e: serde_json::Error| ServerLine::error(id, ErrorCode::BadRequest, format!("bad request: {e}"));
    let mut value: serde_json::Value = serde_json::from_str(line).map_err(|e| bad(None, e))?;
    // The id is taken out first so that the request itself is checked strictly: a misspelt
    // field is an error, not silently ignored.
    let id = value.as_object_mut().and_then(|o| o.remove("id"));
    match serde_json::from_value::<Request>(value) {
        Ok(request) => Ok(Envelope { id, request }),
        Err(e) => Err(bad(id, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_reference_style_requests() {
        let e =
            parse_request(r#"{"id":1,"cmd":"DoAction","actId":7,"iParam":3,"sParam":"83366857"}"#).unwrap();
        assert_eq!(e.request, Request::DoAction { act_id: 7, i_param: 3, s_param: "83366857".into() });
        let e = parse_request(r#"{"id":"a","cmd":"OpenApp","sliceNo":5}"#).unwrap();
        assert_eq!(e.request, Request::OpenApp { slice_no: 5 });
        assert_eq!(Act::CallOut.bit(), 128);
    }

    #[test]
    fn errors_echo_the_id_and_say_what_is_wrong() {
        let ServerLine::Response { id, ok, error, .. } =
            parse_request(r#"{"id":9,"cmd":"DoAction","actId":"x"}"#).unwrap_err()
        else {
            panic!("not a response")
        };
        assert_eq!((id, ok), (Some(serde_json::json!(9)), false));
        let error = error.unwrap();
        assert_eq!(error.code, ErrorCode::BadRequest);
        assert!(error.message.contains("invalid type"), "{}", error.message);
        assert!(parse_request("{").is_err());
        assert!(parse_request(r#"{"cmd":"OpenApp","sliceNo":3,"slice":4}"#).is_err());
        assert!(parse_request(r#"{"cmd":"Explode"}"#).is_err());
    }

    #[test]
    fn events_serialise_with_reference_names() {
        let line = ServerLine::Event(Event {
            event: EventKind::Ring,
            seq: 1,
            slice_no: 5,
            i_param: 1,
            s_param: "CALLERID:83366857|TTYPE:2|".into(),
        })
        .to_line();
        assert_eq!(
            line,
            "{\"event\":\"Ring\",\"seq\":1,\"sliceNo\":5,\"iParam\":1,\"sParam\":\"CALLERID:83366857|TTYPE:2|\"}\n"
        );
    }
}
