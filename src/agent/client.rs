//! An async client of the agent protocol, for the tests, the terminal client and anyone
//! integrating Switchboard from Rust.

use std::collections::VecDeque;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpStream, ToSocketAddrs};

use super::protocol::{ErrorBody, Event, EventKind, ServerLine};

/// What can go wrong on the client side.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("the server closed the connection")]
    Closed,
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("the server refused: {} ({:?})", .0.message, .0.code)]
    Server(ErrorBody),
    #[error("the server sent a malformed line: {0}")]
    Malformed(String),
}

/// A connection to the agent port.
pub struct AgentClient {
    /// `Lines::next_line` is cancel-safe, so a read can be raced against other input.
    reader: Lines<BufReader<OwnedReadHalf>>,
    writer: OwnedWriteHalf,
    next_id: u64,
    events: VecDeque<Event>,
    /// How long to wait for an answer or an event.
    pub timeout: Duration,
}

impl AgentClient {
    pub async fn connect(addr: impl ToSocketAddrs) -> Result<AgentClient, ClientError> {
        let stream = TcpStream::connect(addr).await?;
        let _ = stream.set_nodelay(true);
        let (read, writer) = stream.into_split();
        Ok(AgentClient {
            reader: BufReader::new(read).lines(),
            writer,
            next_id: 1,
            events: VecDeque::new(),
            timeout: Duration::from_secs(10),
        })
    }

    /// Sends raw bytes, for testing what the server does with them.
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.writer.write_all(bytes).await?;
        Ok(())
    }

    /// Reads the next line from the server, whatever it is.
    pub async fn read_line(&mut self) -> Result<ServerLine, ClientError> {
        tokio::time::timeout(self.timeout, self.read_line_no_timeout())
            .await
            .map_err(|_| ClientError::Timeout(self.timeout))?
    }

    async fn read_line_no_timeout(&mut self) -> Result<ServerLine, ClientError> {
        let line = self.reader.next_line().await?.ok_or(ClientError::Closed)?;
        serde_json::from_str(&line).map_err(|e| ClientError::Malformed(format!("{e}: {line}")))
    }

    /// The next event, waiting as long as it takes. Cancel-safe: it can be raced against
    /// other input in `select!`.
    pub async fn next_event_no_timeout(&mut self) -> Result<Event, ClientError> {
        if let Some(e) = self.events.pop_front() {
            return Ok(e);
        }
        loop {
            if let ServerLine::Event(e) = self.read_line_no_timeout().await? {
                return Ok(e);
            }
        }
    }

    /// Sends a request (`cmd` and arguments as a JSON object) and waits for its response,
    /// keeping the events that arrive meanwhile. Returns the response's `result`.
    pub async fn call(&mut self, mut request: Value) -> Result<Value, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        if let Some(obj) = request.as_object_mut() {
            obj.insert("id".into(), json!(id));
        }
        let mut line = request.to_string();
        line.push('\n');
        self.writer.write_all(line.as_bytes()).await?;
        loop {
            match self.read_line().await? {
                ServerLine::Event(e) => self.events.push_back(e),
                ServerLine::Response { id: Some(rid), ok, result, error } if rid == json!(id) => {
                    return if ok {
                        Ok(result.unwrap_or(Value::Null))
                    } else {
                        Err(ClientError::Server(error.unwrap_or(ErrorBody {
                            code: super::protocol::ErrorCode::Internal,
                            message: "error without a body".into(),
                        })))
                    };
                }
                // A response to something else (e.g. an unsolicited error) is skipped.
                ServerLine::Response { .. } => {}
            }
        }
    }

    pub async fn hello(&mut self, client: &str) -> Result<Value, ClientError> {
        self.call(json!({ "cmd": "hello", "client": client, "protocol": super::protocol::PROTOCOL_VERSION }))
            .await
    }

    pub async fn login(&mut self, agent: &str, password: &str) -> Result<Value, ClientError> {
        self.call(json!({ "cmd": "Login", "agent": agent, "password": password })).await
    }

    pub async fn open_app(&mut self, slice_no: u16) -> Result<Value, ClientError> {
        self.call(json!({ "cmd": "OpenApp", "sliceNo": slice_no })).await
    }

    pub async fn do_action(
        &mut self,
        act_id: i64,
        i_param: i64,
        s_param: &str,
    ) -> Result<Value, ClientError> {
        self.call(json!({ "cmd": "DoAction", "actId": act_id, "iParam": i_param, "sParam": s_param })).await
    }

    pub async fn action_enables(&mut self) -> Result<u32, ClientError> {
        let r = self.call(json!({ "cmd": "getActionEnables" })).await?;
        Ok(r["mask"].as_u64().unwrap_or(0) as u32)
    }

    pub async fn do_control(
        &mut self,
        target: u16,
        control: i64,
        i_param: i64,
    ) -> Result<Value, ClientError> {
        self.call(
            json!({ "cmd": "DoControl", "targetSliceNo": target, "controlType": control, "iParam": i_param }),
        )
        .await
    }

    /// The next event, from those already received or from the connection.
    pub async fn next_event(&mut self) -> Result<Event, ClientError> {
        if let Some(e) = self.events.pop_front() {
            return Ok(e);
        }
        loop {
            if let ServerLine::Event(e) = self.read_line().await? {
                return Ok(e);
            }
        }
    }

    /// Skips events until one of `kind` arrives, and returns it.
    pub async fn wait_for(&mut self, kind: EventKind) -> Result<Event, ClientError> {
        loop {
            let e = self.next_event().await?;
            if e.event == kind {
                return Ok(e);
            }
        }
    }
}
