//! Tests over real sockets: each test starts its own HTTP/1.1 server on 127.0.0.1 (hand-written
//! on a tokio listener, so that the tests see exactly what went over the wire) and calls it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::rustls;
use tokio_rustls::TlsAcceptor;

use super::soap::{read_answer, Answer};
use super::*;

// ---------------------------------------------------------------------------------------------
// The test server.

/// What the server saw of one request.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    target: String,
    /// Header names in lower case; the values of a repeated header joined with ", ".
    headers: BTreeMap<String, String>,
    body: String,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// The path and the decoded query pairs of the request target.
    fn path_and_query(&self) -> (String, Vec<(String, String)>) {
        let url = reqwest::Url::parse(&format!("http://test{}", self.target)).expect("request target");
        (url.path().to_string(), url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
    }
}

/// What the server does with a request.
enum Reply {
    Answer {
        status: u16,
        content_type: &'static str,
        body: String,
    },
    /// Reads the request and never answers.
    Hang,
}

fn json_reply(body: &str) -> Reply {
    Reply::Answer { status: 200, content_type: "application/json", body: body.into() }
}

fn xml_reply(status: u16, body: &str) -> Reply {
    Reply::Answer { status, content_type: "text/xml; charset=utf-8", body: body.into() }
}

fn status_reply(status: u16) -> Reply {
    Reply::Answer { status, content_type: "text/plain", body: format!("status {status}") }
}

type Handler = Arc<dyn Fn(usize, &Seen) -> Reply + Send + Sync>;

struct Server {
    /// `http://127.0.0.1:port` (or `https://`).
    base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    fn requests(&self) -> Vec<Seen> {
        self.seen.lock().expect("seen lock").clone()
    }
}

/// Starts a plain HTTP server; `handler` gets the index of the request (0 for the first).
async fn serve(handler: impl Fn(usize, &Seen) -> Reply + Send + Sync + 'static) -> Server {
    start(Arc::new(handler), None).await
}

async fn start(handler: Handler, tls: Option<TlsAcceptor>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let server = Server { base: format!("{scheme}://{addr}"), seen: seen.clone() };
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let (handler, seen, tls) = (handler.clone(), seen.clone(), tls.clone());
            tokio::spawn(async move {
                match tls {
                    None => connection(stream, handler, seen).await,
                    Some(acceptor) => {
                        // A client that does not trust the certificate aborts the handshake.
                        if let Ok(stream) = acceptor.accept(stream).await {
                            connection(stream, handler, seen).await;
                        }
                    }
                }
            });
        }
    });
    server
}

async fn connection<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    handler: Handler,
    seen: Arc<Mutex<Vec<Seen>>>,
) {
    let Some(request) = read_request(&mut stream).await else { return };
    let index = {
        let mut seen = seen.lock().expect("seen lock");
        seen.push(request.clone());
        seen.len() - 1
    };
    match handler(index, &request) {
        // Long enough for any test; the runtime drops the task when the test ends.
        Reply::Hang => tokio::time::sleep(Duration::from_secs(60)).await,
        Reply::Answer { status, content_type, body } => {
            let head = format!(
                "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                reason(status),
                body.len()
            );
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(body.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        404 => "Not Found",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Whatever",
    }
}

/// Reads one request: the head up to the blank line, then exactly Content-Length bytes.
async fn read_request<S: AsyncRead + Unpin>(stream: &mut S) -> Option<Seen> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..head_end]).ok()?.to_string();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_string();
    let target = request_line.next()?.to_string();
    let mut headers = BTreeMap::new();
    for line in lines {
        let (name, value) = line.split_once(':')?;
        // Repeated headers are joined, as HTTP allows, so that a test sees duplicates.
        headers
            .entry(name.trim().to_ascii_lowercase())
            .and_modify(|v: &mut String| *v = format!("{v}, {}", value.trim()))
            .or_insert_with(|| value.trim().to_string());
    }
    let length: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Some(Seen { method, target, headers, body: String::from_utf8(body).ok()? })
}

// ---------------------------------------------------------------------------------------------
// Helpers.

fn service(toml_text: &str) -> ServiceConfig {
    toml::from_str(toml_text).expect("service config")
}

fn args(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn client() -> WebClient {
    WebClient::new().expect("web client")
}

const CHECK_USER_OK: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema">
  <soap:Body>
    <CheckUserResponse xmlns="http://tempuri.org/">
      <CheckUserResult>true</CheckUserResult>
    </CheckUserResponse>
  </soap:Body>
</soap:Envelope>"#;

const CHECK_USER_FAULT: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">
  <soap:Body>
    <soap:Fault>
      <faultcode>soap:Server</faultcode>
      <faultstring>Unknown user 1001</faultstring>
      <detail/>
    </soap:Fault>
  </soap:Body>
</soap:Envelope>"#;

fn check_user_service(base: &str, extra: &str) -> ServiceConfig {
    service(&format!(
        r#"
        name = "check-user"
        kind = "soap"
        url = "{base}/UserService.asmx"
        soap_action = "http://tempuri.org/CheckUser"
        soap_namespace = "http://tempuri.org/"
        operation = "CheckUser"
        {extra}
        [params]
        UserID = "${{var.UserID}}"
        PSW = "${{var.PSW}}"
        [results]
        valid = "CheckUserResult"
        "#
    ))
}

// ---------------------------------------------------------------------------------------------
// JSON.

#[tokio::test]
async fn json_post_sends_the_substituted_params_and_maps_the_results() {
    let server =
        serve(|_, _| json_reply(r#"{"data": {"balance": 12.5, "currency": "EUR", "active": true}}"#)).await;
    let svc = service(&format!(
        r#"
        name = "balance"
        kind = "json"
        url = "{}/api/balance"
        headers = {{ X-Api-Key = "secret" }}
        params = {{ caller = "${{caller}}", account = "${{var.Account}}", channel = "ivr", price = "$$5" }}
        results = {{ balance = "/data/balance", currency = "/data/currency", active = "/data/active" }}
        "#,
        server.base
    ));
    let answer = client().call(&svc, &args(&[("caller", "0612345678"), ("var.Account", "A-17")])).await;
    assert_eq!(answer, Ok(args(&[("balance", "12.5"), ("currency", "EUR"), ("active", "true")])));

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.target, "/api/balance");
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("accept"), Some("application/json"));
    assert_eq!(request.header("x-api-key"), Some("secret"));
    let body: serde_json::Value = serde_json::from_str(&request.body).expect("request body is JSON");
    assert_eq!(
        body,
        serde_json::json!({"caller": "0612345678", "account": "A-17", "channel": "ivr", "price": "$5"})
    );
    // The fields go out in the order of the file.
    assert!(request.body.starts_with(r#"{"caller":"#), "{}", request.body);
}

#[tokio::test]
async fn json_get_sends_a_query_string() {
    let server = serve(|_, _| json_reply(r#"{"name": "Ann", "vip": false, "calls": 3}"#)).await;
    let svc = service(&format!(
        r#"
        name = "lookup"
        kind = "json"
        url = "{}/lookup?v=1"
        method = "get"
        headers = {{ Accept = "application/vnd.crm.v2+json" }}
        params = {{ caller = "${{caller}}", note = "a b&c=d" }}
        results = {{ name = "/name", vip = "/vip", calls = "/calls" }}
        "#,
        server.base
    ));
    let answer = client().call(&svc, &args(&[("caller", "+31 6 1234")])).await;
    assert_eq!(answer, Ok(args(&[("name", "Ann"), ("vip", "false"), ("calls", "3")])));

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, "GET");
    assert_eq!(requests[0].body, "");
    assert_eq!(requests[0].header("accept"), Some("application/vnd.crm.v2+json"));
    let (path, query) = requests[0].path_and_query();
    assert_eq!(path, "/lookup");
    let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(query, [("v", "1"), ("caller", "+31 6 1234"), ("note", "a b&c=d")]);
}

#[tokio::test]
async fn a_server_error_is_retried_and_the_retry_succeeds() {
    let server =
        serve(|index, _| if index == 0 { status_reply(500) } else { json_reply(r#"{"ok": "yes"}"#) }).await;
    let svc = service(&format!(
        r#"
        name = "flaky"
        kind = "json"
        url = "{}/"
        retries = 1
        results = {{ ok = "/ok" }}
        "#,
        server.base
    ));
    assert_eq!(client().call(&svc, &args(&[])).await, Ok(args(&[("ok", "yes")])));
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn a_client_error_is_not_retried() {
    let server = serve(|_, _| status_reply(404)).await;
    let svc = service(&format!(
        r#"
        name = "gone"
        kind = "json"
        url = "{}/nothing-here"
        retries = 2
        results = {{ ok = "/ok" }}
        "#,
        server.base
    ));
    let error = client().call(&svc, &args(&[])).await;
    assert_eq!(error, Err(WebError::Http { service: "gone".into(), status: 404 }));
    assert_eq!(server.requests().len(), 1);
    let message = error.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("`gone`") && message.contains("404"), "{message}");
}

#[tokio::test]
async fn malformed_json_is_an_error() {
    let server = serve(|_, _| json_reply(r#"{"data": {"balance": "#)).await;
    let svc = service(&format!(
        "name = \"bad\"\nkind = \"json\"\nurl = \"{}/\"\nresults = {{ balance = \"/data/balance\" }}",
        server.base
    ));
    match client().call(&svc, &args(&[])).await {
        Err(WebError::Malformed { service, detail }) => {
            assert_eq!(service, "bad");
            assert!(detail.contains("not JSON"), "{detail}");
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[tokio::test]
async fn a_missing_result_is_an_error() {
    let server = serve(|_, _| json_reply(r#"{"data": {"balance": 3, "note": null}}"#)).await;
    for pointer in ["/data/missing", "/data/note"] {
        let svc = service(&format!(
            "name = \"partial\"\nkind = \"json\"\nurl = \"{}/\"\nresults = {{ balance = \"/data/balance\", x = \"{pointer}\" }}",
            server.base
        ));
        assert_eq!(
            client().call(&svc, &args(&[])).await,
            Err(WebError::Missing { service: "partial".into(), result: "x".into(), path: pointer.into() })
        );
    }
}

#[tokio::test]
async fn an_object_result_is_an_error() {
    let server = serve(|_, _| json_reply(r#"{"data": {"balance": 3}}"#)).await;
    let svc = service(&format!(
        "name = \"obj\"\nkind = \"json\"\nurl = \"{}/\"\nresults = {{ x = \"/data\" }}",
        server.base
    ));
    assert!(matches!(client().call(&svc, &args(&[])).await, Err(WebError::Malformed { .. })));
}

#[tokio::test]
async fn an_oversized_answer_is_refused() {
    let server = serve(|_, _| json_reply(&format!(r#"{{"x": "{}"}}"#, "a".repeat(MAX_ANSWER_BYTES)))).await;
    let svc = service(&format!(
        "name = \"big\"\nkind = \"json\"\nurl = \"{}/\"\nresults = {{ x = \"/x\" }}",
        server.base
    ));
    match client().call(&svc, &args(&[])).await {
        Err(WebError::Malformed { detail, .. }) => assert!(detail.contains("larger than"), "{detail}"),
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[tokio::test]
async fn an_unset_argument_fails_before_anything_is_sent() {
    let server = serve(|_, _| json_reply("{}")).await;
    let svc = service(&format!(
        "name = \"needs-pin\"\nkind = \"json\"\nurl = \"{}/\"\nparams = {{ pin = \"${{var.PIN}}\" }}",
        server.base
    ));
    let error = client().call(&svc, &args(&[("caller", "1")])).await;
    assert_eq!(
        error,
        Err(WebError::Argument {
            service: "needs-pin".into(),
            param: "pin".into(),
            detail: "no value for `${var.PIN}`".into()
        })
    );
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn a_service_with_no_results_only_needs_a_2xx() {
    let server =
        serve(|_, _| Reply::Answer { status: 204, content_type: "text/plain", body: String::new() }).await;
    let svc = service(&format!(
        "name = \"notify\"\nkind = \"json\"\nurl = \"{}/\"\nparams = {{ caller = \"${{caller}}\" }}",
        server.base
    ));
    assert_eq!(client().call(&svc, &args(&[("caller", "1")])).await, Ok(BTreeMap::new()));
}

// ---------------------------------------------------------------------------------------------
// SOAP.

#[tokio::test]
async fn soap_check_user_sends_the_envelope_and_maps_the_boolean() {
    let server = serve(|_, _| xml_reply(200, CHECK_USER_OK)).await;
    let svc = check_user_service(&server.base, "");
    let answer = client().call(&svc, &args(&[("var.UserID", "1001"), ("var.PSW", "a<b&\"c'")])).await;
    assert_eq!(answer, Ok(args(&[("valid", "true")])));

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.target, "/UserService.asmx");
    assert_eq!(request.header("content-type"), Some("text/xml; charset=utf-8"));
    assert_eq!(request.header("soapaction"), Some("\"http://tempuri.org/CheckUser\""));
    assert_eq!(
        request.body,
        concat!(
            r#"<?xml version="1.0" encoding="utf-8"?>"#,
            r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>"#,
            r#"<CheckUser xmlns="http://tempuri.org/"><UserID>1001</UserID><PSW>a&lt;b&amp;&quot;c&apos;</PSW>"#,
            r#"</CheckUser></soap:Body></soap:Envelope>"#
        )
    );
    // What we send is what a SOAP server reads back.
    match read_answer(&request.body, &["UserID", "PSW"]) {
        Ok(Answer::Values(values)) => {
            assert_eq!(values.get("PSW"), Some(&Some("a<b&\"c'".to_string())));
        }
        other => panic!("our own envelope does not read back: {other:?}"),
    }
}

#[tokio::test]
async fn a_soap_fault_is_an_error_with_its_faultstring_and_is_not_retried() {
    let server = serve(|_, _| xml_reply(500, CHECK_USER_FAULT)).await;
    let svc = check_user_service(&server.base, "retries = 2");
    let error = client().call(&svc, &args(&[("var.UserID", "1001"), ("var.PSW", "x")])).await;
    assert_eq!(
        error,
        Err(WebError::Fault { service: "check-user".into(), text: "Unknown user 1001".into() })
    );
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_soap_500_without_a_fault_is_a_server_error_and_is_retried() {
    let server = serve(|_, _| xml_reply(500, "<html><body>oops</body></html>")).await;
    let svc = check_user_service(&server.base, "retries = 1");
    let error = client().call(&svc, &args(&[("var.UserID", "1001"), ("var.PSW", "x")])).await;
    assert_eq!(error, Err(WebError::Http { service: "check-user".into(), status: 500 }));
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn a_soap_answer_without_the_result_is_missing() {
    let server = serve(|_, _| xml_reply(200, &CHECK_USER_OK.replace("CheckUserResult", "OtherResult"))).await;
    let svc = check_user_service(&server.base, "");
    let error = client().call(&svc, &args(&[("var.UserID", "1"), ("var.PSW", "x")])).await;
    assert_eq!(
        error,
        Err(WebError::Missing {
            service: "check-user".into(),
            result: "valid".into(),
            path: "CheckUserResult".into()
        })
    );
}

#[tokio::test]
async fn a_soap_answer_that_is_not_an_envelope_is_malformed() {
    let server = serve(|_, _| xml_reply(200, "<html><body>login</body></html>")).await;
    let svc = check_user_service(&server.base, "");
    match client().call(&svc, &args(&[("var.UserID", "1"), ("var.PSW", "x")])).await {
        Err(WebError::Malformed { detail, .. }) => {
            assert!(detail.contains("not a SOAP envelope"), "{detail}")
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[test]
fn the_soap_reader_handles_what_real_servers_send() {
    let answer = r#"<?xml version="1.0"?>
        <!-- generated -->
        <s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:i="http://www.w3.org/2001/XMLSchema-instance">
          <s:Header><Trace>abc</Trace></s:Header>
          <s:Body>
            <r:GetInfoResponse xmlns:r="urn:crm">
              <r:Name>
                 Jean &amp; Fils &#x263A;
              </r:Name>
              <r:Note><![CDATA[<b>gold</b>]]></r:Note>
              <r:Balance>1&#48;</r:Balance>
              <r:Agent i:nil="true"/>
              <r:Empty/>
              <r:Outer><r:Inner>in</r:Inner></r:Outer>
              <r:Name>second</r:Name>
            </r:GetInfoResponse>
          </s:Body>
        </s:Envelope>"#;
    let wanted = ["Name", "Note", "Balance", "Agent", "Empty", "Outer", "Inner", "Absent"];
    let Ok(Answer::Values(values)) = read_answer(answer, &wanted) else { panic!("not read") };
    let get = |name: &str| values.get(name).cloned();
    assert_eq!(get("Name"), Some(Some("Jean & Fils \u{263A}".into())));
    assert_eq!(get("Note"), Some(Some("<b>gold</b>".into())));
    assert_eq!(get("Balance"), Some(Some("10".into())));
    assert_eq!(get("Agent"), Some(None));
    assert_eq!(get("Empty"), Some(Some(String::new())));
    assert_eq!(get("Outer"), Some(Some("in".into())));
    assert_eq!(get("Inner"), Some(Some("in".into())));
    assert_eq!(get("Absent"), None);
}

#[test]
fn the_soap_reader_refuses_what_is_not_a_soap_answer() {
    let cases = [
        ("", "no SOAP envelope"),
        ("<Envelope/>", "not a SOAP envelope"),
        (r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>"#, "before"),
        (
            r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><a></b></soap:Envelope>"#,
            "well-formed",
        ),
        (r#"<!DOCTYPE x [<!ENTITY e "boom">]><x/>"#, "DTD"),
        (
            r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><a>&e;</a></soap:Envelope>"#,
            "entity",
        ),
        (r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"/><x/>"#, "root"),
    ];
    for (xml, expected) in cases {
        match read_answer(xml, &["a"]) {
            Err(message) => assert!(message.contains(expected), "{xml}: {message}"),
            Ok(answer) => panic!("{xml}: accepted as {answer:?}"),
        }
    }
}

#[test]
fn the_soap_reader_reads_soap12_faults() {
    let fault = r#"<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body><env:Fault>
        <env:Code><env:Value>env:Sender</env:Value></env:Code>
        <env:Reason><env:Text xml:lang="en">Bad PIN</env:Text></env:Reason>
        </env:Fault></env:Body></env:Envelope>"#;
    assert_eq!(read_answer(fault, &["x"]), Ok(Answer::Fault("Bad PIN".into())));
}

#[tokio::test]
async fn a_value_xml_cannot_carry_is_refused() {
    let svc = check_user_service("http://127.0.0.1:9", "");
    let error = client().call(&svc, &args(&[("var.UserID", "1\u{1}"), ("var.PSW", "x")])).await;
    assert!(matches!(error, Err(WebError::Argument { ref param, .. }) if param == "UserID"), "{error:?}");
}

// ---------------------------------------------------------------------------------------------
// Time and connections.

#[tokio::test]
async fn a_server_that_never_answers_times_out_on_time() {
    let server = serve(|_, _| Reply::Hang).await;
    let svc = service(&format!(
        "name = \"slow\"\nkind = \"json\"\nurl = \"{}/\"\ntimeout_ms = 1000\nretries = 1\nresults = {{ x = \"/x\" }}",
        server.base
    ));
    let started = Instant::now();
    let error = client().call(&svc, &args(&[])).await;
    let elapsed = started.elapsed();
    assert_eq!(error, Err(WebError::Timeout { service: "slow".into(), ms: 1000 }));
    assert!(elapsed >= Duration::from_millis(950), "gave up early: {elapsed:?}");
    // Generous: the machine running the tests may be busy.
    assert!(elapsed < Duration::from_millis(2000), "overran its deadline: {elapsed:?}");
    // The first attempt got half the time, so the retry happened within the deadline.
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn a_refused_connection_is_a_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    drop(listener);
    let svc = service(&format!(
        "name = \"down\"\nkind = \"json\"\nurl = \"http://{addr}/\"\ntimeout_ms = 2000\nretries = 2\nresults = {{ x = \"/x\" }}"
    ));
    let started = Instant::now();
    match client().call(&svc, &args(&[])).await {
        Err(WebError::Connect { service, detail }) => {
            assert_eq!(service, "down");
            assert!(detail.to_lowercase().contains("refused"), "{detail}");
        }
        other => panic!("expected Connect, got {other:?}"),
    }
    // Three quick refusals and two short pauses, not the whole deadline.
    assert!(started.elapsed() < Duration::from_millis(1500), "{:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_calls_do_not_delay_a_fast_one() {
    let slow = serve(|_, _| Reply::Hang).await;
    let fast = serve(|_, _| json_reply(r#"{"balance": 7}"#)).await;
    let slow_svc = service(&format!(
        "name = \"slow\"\nkind = \"json\"\nurl = \"{}/\"\ntimeout_ms = 3000\nresults = {{ x = \"/x\" }}",
        slow.base
    ));
    let fast_svc = service(&format!(
        "name = \"fast\"\nkind = \"json\"\nurl = \"{}/\"\nresults = {{ balance = \"/balance\" }}",
        fast.base
    ));
    let web = client();
    let started = Instant::now();
    let slow_calls: Vec<_> = (0..20)
        .map(|_| {
            let (web, svc) = (web.clone(), slow_svc.clone());
            tokio::spawn(async move { web.call(&svc, &BTreeMap::new()).await })
        })
        .collect();
    // Let the slow calls get in flight first.
    while slow.requests().len() < 20 && started.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let fast_started = Instant::now();
    assert_eq!(web.call(&fast_svc, &BTreeMap::new()).await, Ok(args(&[("balance", "7")])));
    let fast_took = fast_started.elapsed();
    assert!(fast_took < Duration::from_secs(1), "the fast call waited for the slow ones: {fast_took:?}");
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "the fast call ended too late: {:?}",
        started.elapsed()
    );

    for call in slow_calls {
        let result = call.await.expect("slow call task");
        assert_eq!(result, Err(WebError::Timeout { service: "slow".into(), ms: 3000 }));
    }
    assert!(started.elapsed() >= Duration::from_millis(2900));
    assert_eq!(slow.requests().len(), 20);
}

// ---------------------------------------------------------------------------------------------
// HTTPS.

/// An HTTPS server with a fresh self-signed certificate for 127.0.0.1, and a PEM file of that
/// certificate to trust.
async fn serve_tls(dir: &tempfile::TempDir) -> (Server, PathBuf) {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).expect("certificate");
    let pem_path = dir.path().join("customer-ca.pem");
    std::fs::write(&pem_path, certified.cert.pem()).expect("write the PEM file");
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let config =
        rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(vec![certified.cert.der().clone()], key)
            .expect("server certificate");
    let server = start(
        Arc::new(|_, _: &Seen| json_reply(r#"{"ok": true}"#)),
        Some(TlsAcceptor::from(Arc::new(config))),
    )
    .await;
    (server, pem_path)
}

#[tokio::test]
async fn https_with_a_private_certificate_authority() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, pem) = serve_tls(&dir).await;
    let web = client();
    let with_ca = |ca: &str| {
        service(&format!(
            "name = \"tls\"\nkind = \"json\"\nurl = \"{}/secure\"\n{ca}\nresults = {{ ok = \"/ok\" }}",
            server.base
        ))
    };

    let trusted = with_ca(&format!("ca_file = {:?}", pem.display().to_string()));
    assert_eq!(web.call(&trusted, &BTreeMap::new()).await, Ok(args(&[("ok", "true")])));
    // The second call uses the client built by the first.
    assert_eq!(web.call(&trusted, &BTreeMap::new()).await, Ok(args(&[("ok", "true")])));
    assert_eq!(server.requests().len(), 2);

    // Without the file the certificate is not trusted, and nothing reaches the server.
    match web.call(&with_ca(""), &BTreeMap::new()).await {
        Err(WebError::Connect { detail, .. }) => assert!(detail.contains("certificate"), "{detail}"),
        other => panic!("expected Connect, got {other:?}"),
    }
    assert_eq!(server.requests().len(), 2);

    let missing = with_ca(&format!("ca_file = {:?}", dir.path().join("nope.pem").display().to_string()));
    assert!(matches!(
        web.call(&missing, &BTreeMap::new()).await,
        Err(WebError::Config { ref key, .. }) if key == "ca_file"
    ));
    let not_pem = dir.path().join("not.pem");
    std::fs::write(&not_pem, "hello").expect("write");
    let not_pem = with_ca(&format!("ca_file = {:?}", not_pem.display().to_string()));
    assert!(matches!(
        web.call(&not_pem, &BTreeMap::new()).await,
        Err(WebError::Config { ref key, .. }) if key == "ca_file"
    ));
}

// ---------------------------------------------------------------------------------------------
// Configuration and templates.

#[test]
fn defaults_and_unknown_keys() {
    let svc = service("name = \"a\"\nkind = \"json\"\nurl = \"http://crm.example/x\"");
    assert_eq!((svc.method.as_deref(), svc.timeout_ms, svc.retries), (None, 3000, 0));
    assert!(svc.params.is_empty() && svc.results.is_empty() && svc.headers.is_empty());
    assert_eq!(svc.validate(), Ok(()));

    let error =
        toml::from_str::<ServiceConfig>("name = \"a\"\nkind = \"json\"\nurl = \"http://x/\"\ntimeout = 5")
            .expect_err("unknown key accepted");
    assert!(error.to_string().contains("timeout"), "{error}");
    let error = toml::from_str::<ServiceConfig>("name = \"a\"\nkind = \"rest\"\nurl = \"http://x/\"")
        .expect_err("unknown kind accepted");
    assert!(error.to_string().contains("rest"), "{error}");
}

#[test]
fn params_keep_the_order_of_the_file() {
    let svc = service(
        "name = \"a\"\nkind = \"json\"\nurl = \"http://x/\"\n[params]\nz = \"1\"\na = \"2\"\nm = \"3\"",
    );
    let names: Vec<&str> = svc.params.iter().map(|(k, _)| k).collect();
    assert_eq!(names, ["z", "a", "m"]);
}

/// The keys of the problems `validate` finds in a service.
fn problem_keys(toml_text: &str) -> Vec<String> {
    match service(toml_text).validate() {
        Ok(()) => Vec::new(),
        Err(problems) => problems.into_iter().map(|p| p.key).collect(),
    }
}

#[test]
fn validation_names_the_key() {
    let base = "name = \"a\"\nkind = \"json\"\n";
    assert_eq!(problem_keys(&format!("{base}url = \"ftp://x/\"")), ["url"]);
    assert_eq!(problem_keys(&format!("{base}url = \"not a url\"")), ["url"]);
    assert_eq!(problem_keys(&format!("{base}url = \"http://x/\"\ntimeout_ms = 0")), ["timeout_ms"]);
    assert_eq!(problem_keys(&format!("{base}url = \"http://x/\"\ntimeout_ms = 60001")), ["timeout_ms"]);
    assert_eq!(problem_keys(&format!("{base}url = \"http://x/\"\ntimeout_ms = 60000")), Vec::<String>::new());
    assert_eq!(problem_keys(&format!("{base}url = \"http://x/\"\nretries = 11")), ["retries"]);
    assert_eq!(problem_keys(&format!("{base}url = \"http://x/\"\nmethod = \"PUT\"")), ["method"]);
    assert_eq!(problem_keys(&format!("{base}url = \"http://x/\"\noperation = \"Op\"")), ["operation"]);
    assert_eq!(problem_keys(&format!("{base}url = \"http://x/\"\nca_file = \"/etc/ca.pem\"")), ["ca_file"]);
    assert_eq!(
        problem_keys(&format!("{base}url = \"http://x/\"\nheaders = {{ Content-Type = \"x\" }}")),
        ["headers.Content-Type"]
    );
    assert_eq!(
        problem_keys(&format!("{base}url = \"http://x/\"\nparams = {{ p = \"$caller\" }}")),
        ["params.p"]
    );
    assert_eq!(
        problem_keys(&format!("{base}url = \"http://x/\"\nresults = {{ r = \"data/x\" }}")),
        ["results.r"]
    );
    assert_eq!(
        problem_keys(&format!("{base}url = \"http://x/\"\nresults = {{ r = \"/a~2\" }}")),
        ["results.r"]
    );
    assert_eq!(
        problem_keys(&format!("{base}url = \"http://x/\"\nresults = {{ r = \"\" }}")),
        Vec::<String>::new()
    );

    let soap = "name = \"s\"\nkind = \"soap\"\nurl = \"https://x/svc.asmx\"\n";
    assert_eq!(problem_keys(soap), ["soap_action", "soap_namespace", "operation"]);
    let complete = format!("{soap}soap_action = \"\"\nsoap_namespace = \"urn:x\"\noperation = \"Op\"\n");
    assert_eq!(problem_keys(&complete), Vec::<String>::new());
    assert_eq!(problem_keys(&format!("{complete}method = \"GET\"")), ["method"]);
    assert_eq!(problem_keys(&format!("{complete}results = {{ r = \"ns:Result\" }}")), ["results.r"]);
    assert_eq!(problem_keys(&format!("{complete}params = {{ \"1x\" = \"v\" }}")), ["params.1x"]);

    let problems = service(&format!("{base}url = \"ftp://x/\"")).validate().expect_err("ftp accepted");
    assert_eq!(problems[0].to_string(), "key `url`: must be an http:// or https:// URL, not ftp://");
}

#[tokio::test]
async fn an_invalid_service_is_refused_by_call() {
    let svc = service("name = \"cfg\"\nkind = \"json\"\nurl = \"http://127.0.0.1:9/\"\ntimeout_ms = 0");
    match client().call(&svc, &BTreeMap::new()).await {
        Err(WebError::Config { service, key, .. }) => {
            assert_eq!((service.as_str(), key.as_str()), ("cfg", "timeout_ms"))
        }
        other => panic!("expected Config, got {other:?}"),
    }
}

#[test]
fn templates() {
    let values = args(&[("caller", "0612"), ("var.UserID", "1001"), ("empty", "")]);
    assert_eq!(substitute("${caller}", &values), Ok("0612".into()));
    assert_eq!(substitute("id-${var.UserID}-${caller}", &values), Ok("id-1001-0612".into()));
    assert_eq!(substitute("$$${caller}$$", &values), Ok("$0612$".into()));
    assert_eq!(substitute("[${empty}]", &values), Ok("[]".into()));
    assert_eq!(substitute("plain text { }", &values), Ok("plain text { }".into()));
    assert_eq!(substitute("", &values), Ok(String::new()));
    assert_eq!(substitute("${nope}", &values), Err(TemplateError::Unset("nope".into())));
    // A value is never itself expanded.
    assert_eq!(substitute("${x}", &args(&[("x", "${caller}")])), Ok("${caller}".into()));
    for bad in ["$", "$caller", "${caller", "${}", "${a b}", "cost: $5"] {
        assert!(matches!(check_template(bad), Err(TemplateError::Syntax(_))), "{bad} accepted");
    }
}
