//! The HTTP side: one shared client, the call's deadline, retries and reading the answers.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::time::Instant;

use super::config::{Kind, Params, ServiceConfig};
use super::soap::{self, Answer};
use super::template::{substitute, TemplateError};
use super::WebError;

/// The largest answer read. Anything bigger is not the small record an IVR asks for, and
/// reading it whole would let a misbehaving server fill the appliance's memory.
pub const MAX_ANSWER_BYTES: usize = 1 << 20;

/// The pause before a retry. A server that refused a connection or answered 503 a moment ago
/// is unlikely to have recovered within microseconds, and the pause keeps a refusing server
/// from being hammered in a tight loop until the deadline.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// The HTTP client could not be set up (the TLS backend failed to initialise).
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the HTTP client for web services: {0}")]
pub struct ClientInitError(String);

/// Calls web services. Cloning is cheap and clones share connections, so the daemon makes
/// one and hands a clone to every call; calls run concurrently and never wait for each
/// other, whatever a slow service does.
#[derive(Clone, Debug)]
pub struct WebClient {
    /// The client for services that trust the public roots only.
    http: reqwest::Client,
    /// Clients that also trust a service's `ca_file`, by path, built on first use. The lock is
    /// only held to look up or insert, never across an await.
    with_ca: Arc<Mutex<HashMap<PathBuf, reqwest::Client>>>,
}

/// The client settings every service gets.
///
/// Redirects are not followed, because a POSTed request turned into a GET by a 302 silently
/// loses its parameters; the 3xx status is reported instead, so the URL gets fixed. Proxies
/// from the environment are not used, because the appliance talks to the customer's services
/// directly and an inherited `HTTP_PROXY` would send callers' data elsewhere.
fn builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
        .pool_idle_timeout(Duration::from_secs(30))
}

/// A request, built once before the first attempt and sent as is by every attempt.
enum Body {
    /// POST of a JSON object.
    Json(Params),
    /// GET with a query string.
    Query(Params),
    /// POST of a SOAP envelope, with its SOAPAction header value.
    Soap { envelope: String, action: String },
}

/// Why an attempt failed, and whether another attempt may do better.
struct Failure {
    error: WebError,
    retry: bool,
}

impl WebClient {
    /// Sets up the shared HTTP client (TLS with the public roots and the `ring` provider).
    pub fn new() -> Result<WebClient, ClientInitError> {
        let http = builder().build().map_err(|e| ClientInitError(error_chain(&e)))?;
        Ok(WebClient { http, with_ca: Arc::default() })
    }

    /// Calls a service: builds the request from `args` (see the module documentation for the
    /// templates), sends it, and returns the configured results by variable name.
    ///
    /// Everything, retries included, happens within `svc.timeout_ms`. Retries are made only
    /// after failures that may pass (a connection that could not be made, a 5xx status, an
    /// attempt that ran out of its share of the time), and each attempt gets an equal share of
    /// the time left, so that a server that hangs on the first attempt still leaves time for
    /// the next one. Every result must be in the answer: a missing one is an error, so that the
    /// flow takes its failure branch instead of going on with an empty variable.
    pub async fn call(
        &self,
        svc: &ServiceConfig,
        args: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, WebError> {
        let body = prepare(svc, args)?;
        let deadline = Instant::now() + Duration::from_millis(svc.timeout_ms);
        match tokio::time::timeout_at(deadline, self.attempts(svc, &body, deadline)).await {
            Ok(result) => result,
            Err(_) => Err(timeout(svc)),
        }
    }

    async fn attempts(
        &self,
        svc: &ServiceConfig,
        body: &Body,
        deadline: Instant,
    ) -> Result<BTreeMap<String, String>, WebError> {
        let http = self.client_for(svc).await?;
        let attempts = svc.retries.saturating_add(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let share = deadline.saturating_duration_since(Instant::now()) / (attempts - attempt + 1);
            let failure = match tokio::time::timeout(share, attempt_once(&http, svc, body)).await {
                Ok(Ok(values)) => return Ok(values),
                Ok(Err(failure)) => failure,
                Err(_) => Failure { error: timeout(svc), retry: true },
            };
            if !failure.retry
                || attempt >= attempts
                || deadline.saturating_duration_since(Instant::now()) <= RETRY_PAUSE
            {
                return Err(failure.error);
            }
            tracing::debug!(service = %svc.name, attempt, error = %failure.error, "web service: retrying");
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }

    /// The client to use for `svc`: the shared one, or one that also trusts its `ca_file`.
    async fn client_for(&self, svc: &ServiceConfig) -> Result<reqwest::Client, WebError> {
        let Some(path) = &svc.ca_file else {
            return Ok(self.http.clone());
        };
        if let Some(client) = self.ca_clients().get(path) {
            return Ok(client.clone());
        }
        let problem =
            |message: String| WebError::Config { service: svc.name.clone(), key: "ca_file".into(), message };
        let pem = tokio::fs::read(path)
            .await
            .map_err(|e| problem(format!("cannot read `{}`: {e}", path.display())))?;
        let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            problem(format!("`{}` is not a PEM certificate file: {}", path.display(), error_chain(&e)))
        })?;
        if certificates.is_empty() {
            return Err(problem(format!("`{}` holds no PEM certificate", path.display())));
        }
        let client = certificates
            .into_iter()
            .fold(builder(), |b, certificate| b.add_root_certificate(certificate))
            .build()
            .map_err(|e| {
                problem(format!("cannot use the certificates in `{}`: {}", path.display(), error_chain(&e)))
            })?;
        self.ca_clients().insert(path.clone(), client.clone());
        Ok(client)
    }

    fn ca_clients(&self) -> MutexGuard<'_, HashMap<PathBuf, reqwest::Client>> {
        // Nothing panics while the lock is held, and the map is valid whatever happened.
        self.with_ca.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Validates the configuration and builds the request. Nothing is sent if this fails.
fn prepare(svc: &ServiceConfig, args: &BTreeMap<String, String>) -> Result<Body, WebError> {
    if let Err(problems) = svc.validate() {
        let (key, message) = match problems.into_iter().next() {
            Some(p) => (p.key, p.message),
            None => (String::new(), "invalid".into()),
        };
        return Err(WebError::Config { service: svc.name.clone(), key, message });
    }
    let mut fields = Params::default();
    for (name, template) in svc.params.iter() {
        let value = substitute(template, args).map_err(|e| match e {
            TemplateError::Unset(_) => WebError::Argument {
                service: svc.name.clone(),
                param: name.to_string(),
                detail: e.to_string(),
            },
            TemplateError::Syntax(message) => {
                WebError::Config { service: svc.name.clone(), key: format!("params.{name}"), message }
            }
        })?;
        fields.insert(name, value);
    }
    match svc.kind {
        Kind::Json if svc.is_get() => Ok(Body::Query(fields)),
        Kind::Json => Ok(Body::Json(fields)),
        Kind::Soap => {
            let (Some(operation), Some(namespace), Some(action)) =
                (&svc.operation, &svc.soap_namespace, &svc.soap_action)
            else {
                return Err(WebError::Config {
                    service: svc.name.clone(),
                    key: "operation".into(),
                    message: "operation, soap_namespace and soap_action are required for kind = \"soap\""
                        .into(),
                });
            };
            let mut escaped = Vec::with_capacity(fields.len());
            for (name, value) in fields.iter() {
                let value = soap::escape(value).map_err(|c| WebError::Argument {
                    service: svc.name.clone(),
                    param: name.to_string(),
                    detail: format!("the value contains {c:?}, which XML cannot carry"),
                })?;
                escaped.push((name, value));
            }
            Ok(Body::Soap {
                envelope: soap::envelope(operation, namespace, &escaped),
                action: format!("\"{action}\""),
            })
        }
    }
}

/// One attempt: send the request, read and interpret the answer.
async fn attempt_once(
    http: &reqwest::Client,
    svc: &ServiceConfig,
    body: &Body,
) -> Result<BTreeMap<String, String>, Failure> {
    let mut request = match body {
        Body::Json(fields) => http.post(&svc.url).json(fields),
        Body::Query(fields) => http.get(&svc.url).query(fields),
        Body::Soap { envelope, action } => http
            .post(&svc.url)
            .header(CONTENT_TYPE, "text/xml; charset=utf-8")
            .header("SOAPAction", action.as_str())
            .body(envelope.clone()),
    };
    // A configured Accept wins: some APIs pick their answer's version by it.
    if svc.kind == Kind::Json && !svc.headers.keys().any(|name| name.eq_ignore_ascii_case("accept")) {
        request = request.header(ACCEPT, "application/json");
    }
    for (name, value) in &svc.headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let response = request.send().await.map_err(|e| Failure {
        retry: e.is_connect(),
        error: WebError::Connect { service: svc.name.clone(), detail: error_chain(&e) },
    })?;
    let status = response.status();
    match svc.kind {
        Kind::Json => {
            if !status.is_success() {
                return Err(http_status(svc, status));
            }
            if svc.results.is_empty() {
                return Ok(BTreeMap::new());
            }
            let answer = read_body(svc, response).await?;
            json_results(svc, &answer).map_err(|error| Failure { error, retry: false })
        }
        Kind::Soap => {
            // SOAP 1.1 servers send faults with status 500, so a 500 is read for its fault.
            if !status.is_success() && status != StatusCode::INTERNAL_SERVER_ERROR {
                return Err(http_status(svc, status));
            }
            let answer = read_body(svc, response).await?;
            let wanted: Vec<&str> = svc.results.values().map(String::as_str).collect();
            let parsed = std::str::from_utf8(&answer)
                .map_err(|e| format!("not UTF-8: {e}"))
                .and_then(|text| soap::read_answer(text, &wanted));
            match parsed {
                Ok(Answer::Fault(text)) => {
                    Err(Failure { error: WebError::Fault { service: svc.name.clone(), text }, retry: false })
                }
                _ if !status.is_success() => Err(http_status(svc, status)),
                Ok(Answer::Values(values)) => {
                    soap_results(svc, values).map_err(|error| Failure { error, retry: false })
                }
                Err(detail) => Err(Failure {
                    error: WebError::Malformed { service: svc.name.clone(), detail },
                    retry: false,
                }),
            }
        }
    }
}

fn timeout(svc: &ServiceConfig) -> WebError {
    WebError::Timeout { service: svc.name.clone(), ms: svc.timeout_ms }
}

/// A non-2xx status: server errors may pass, client errors will not.
fn http_status(svc: &ServiceConfig, status: StatusCode) -> Failure {
    Failure {
        error: WebError::Http { service: svc.name.clone(), status: status.as_u16() },
        retry: status.is_server_error(),
    }
}

/// Reads the whole answer, up to [`MAX_ANSWER_BYTES`].
async fn read_body(svc: &ServiceConfig, mut response: reqwest::Response) -> Result<Vec<u8>, Failure> {
    let too_large = || Failure {
        error: WebError::Malformed {
            service: svc.name.clone(),
            detail: format!("the answer is larger than {MAX_ANSWER_BYTES} bytes"),
        },
        retry: false,
    };
    if response.content_length().is_some_and(|n| n > MAX_ANSWER_BYTES as u64) {
        return Err(too_large());
    }
    let mut answer = Vec::new();
    loop {
        let chunk = response.chunk().await.map_err(|e| Failure {
            error: WebError::Connect {
                service: svc.name.clone(),
                detail: format!("reading the answer: {}", error_chain(&e)),
            },
            retry: false,
        })?;
        let Some(chunk) = chunk else { return Ok(answer) };
        if answer.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(too_large());
        }
        answer.extend_from_slice(&chunk);
    }
}

/// Picks the results out of a JSON answer by their pointers. Strings are taken as they are,
/// numbers and booleans as their JSON text (`12.5`, `true`); null counts as missing.
fn json_results(svc: &ServiceConfig, answer: &[u8]) -> Result<BTreeMap<String, String>, WebError> {
    let value: Value = serde_json::from_slice(answer)
        .map_err(|e| WebError::Malformed { service: svc.name.clone(), detail: format!("not JSON: {e}") })?;
    let mut results = BTreeMap::new();
    for (variable, pointer) in &svc.results {
        let text = match value.pointer(pointer) {
            None | Some(Value::Null) => {
                return Err(WebError::Missing {
                    service: svc.name.clone(),
                    result: variable.clone(),
                    path: pointer.clone(),
                })
            }
            Some(Value::String(s)) => s.clone(),
            Some(v @ (Value::Number(_) | Value::Bool(_))) => v.to_string(),
            Some(Value::Array(_) | Value::Object(_)) => {
                return Err(WebError::Malformed {
                    service: svc.name.clone(),
                    detail: format!("result `{variable}` at `{pointer}` is an array or object, not a value"),
                })
            }
        };
        results.insert(variable.clone(), text);
    }
    Ok(results)
}

/// Maps the element texts found in a SOAP answer to the result variables.
fn soap_results(
    svc: &ServiceConfig,
    found: BTreeMap<String, Option<String>>,
) -> Result<BTreeMap<String, String>, WebError> {
    let mut results = BTreeMap::new();
    for (variable, element) in &svc.results {
        match found.get(element) {
            Some(Some(text)) => {
                results.insert(variable.clone(), text.clone());
            }
            _ => {
                return Err(WebError::Missing {
                    service: svc.name.clone(),
                    result: variable.clone(),
                    path: element.clone(),
                })
            }
        }
    }
    Ok(results)
}

/// An error and its causes on one line: reqwest's own message ("error sending request") says
/// little, the cause ("Connection refused", "invalid peer certificate") is what helps.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
