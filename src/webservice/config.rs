//! The configuration of one web service, as written in a `[[webservice]]` table.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use reqwest::header::{HeaderName, HeaderValue};
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::template::check_template;

/// The longest `timeout_ms` accepted. A caller is waiting on the line during the call, and a
/// minute of silence is already far more than any caller accepts.
pub const MAX_TIMEOUT_MS: u64 = 60_000;

/// The most retries accepted. Retries share the one deadline, so more of them only make each
/// attempt shorter; a large number is a configuration mistake rather than a wish.
pub const MAX_RETRIES: u32 = 10;

/// How the service is spoken to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A JSON object of the parameters in (POST body or GET query string), JSON out.
    Json,
    /// A SOAP 1.1 envelope in, a SOAP 1.1 envelope out.
    Soap,
}

/// One web service: where it is, how to ask it and where the answers are.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// The name flows use to call the service, and that every error message names.
    pub name: String,
    /// JSON or SOAP.
    pub kind: Kind,
    /// The service's `http://` or `https://` URL.
    pub url: String,
    /// `GET` or `POST` (case does not matter); absent means `POST`. Only JSON services may
    /// use `GET`, since a SOAP request is always a POSTed envelope.
    #[serde(default)]
    pub method: Option<String>,
    /// The deadline of the whole call, retries included, in milliseconds (1 to 60000).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// How many more attempts after a failure that may be passing: a connection that could
    /// not be made, a 5xx status, an attempt that timed out. At most 10.
    #[serde(default)]
    pub retries: u32,
    /// Extra request headers, for example an API key.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The SOAPAction header's value, sent quoted (SOAP only, required there; may be empty).
    #[serde(default)]
    pub soap_action: Option<String>,
    /// The namespace of the operation element (SOAP only, required there).
    #[serde(default)]
    pub soap_namespace: Option<String>,
    /// The SOAP operation, e.g. `CheckUser` (SOAP only, required there).
    #[serde(default)]
    pub operation: Option<String>,
    /// Request field name -> template (see the module documentation for the syntax). The
    /// order of the file is kept, because SOAP services that check their schema expect the
    /// operation's parameters in the order the WSDL declares them.
    #[serde(default)]
    pub params: Params,
    /// Variable name -> where its value is in the answer: an RFC 6901 JSON pointer such as
    /// `/data/balance` for JSON, the local name of an element such as `CheckUserResult` for
    /// SOAP.
    #[serde(default)]
    pub results: BTreeMap<String, String>,
    /// A PEM file of certificates to trust for this service's `https://` URL, besides the
    /// public roots, for customers whose servers use a private certificate authority or a
    /// self-signed certificate. It is read on the first call and kept for the life of the
    /// [`WebClient`](super::WebClient).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn default_timeout_ms() -> u64 {
    3000
}

/// One thing wrong with a [`ServiceConfig`]: the key, relative to the service's table (e.g.
/// `timeout_ms`, `params.UserID`), and what is wrong with it. The configuration loader
/// prefixes the key with the table's place in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The key, relative to the service's table.
    pub key: String,
    /// What is wrong, in words an installer understands.
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "key `{}`: {}", self.key, self.message)
    }
}

/// Headers the client sets itself; letting the configuration set them too would produce
/// duplicate or contradictory headers that some servers reject in confusing ways.
const RESERVED_HEADERS: [&str; 6] =
    ["content-type", "content-length", "host", "transfer-encoding", "connection", "soapaction"];

impl ServiceConfig {
    /// Checks everything that can be checked without calling the service, and returns every
    /// problem found, so that an installer can fix a file in one go.
    pub fn validate(&self) -> Result<(), Vec<ConfigProblem>> {
        let mut problems = Vec::new();
        let mut problem = |key: &str, message: String| {
            problems.push(ConfigProblem { key: key.to_string(), message });
        };

        if self.name.trim().is_empty() {
            problem("name", "must not be empty".into());
        }

        let mut https = false;
        match reqwest::Url::parse(&self.url) {
            Err(e) => problem("url", format!("`{}` is not a valid URL: {e}", self.url)),
            Ok(url) => match url.scheme() {
                "http" => {}
                "https" => https = true,
                other => problem("url", format!("must be an http:// or https:// URL, not {other}://")),
            },
        }

        if let Some(method) = &self.method {
            let upper = method.to_ascii_uppercase();
            if upper != "GET" && upper != "POST" {
                problem("method", format!("must be GET or POST, not `{method}`"));
            } else if upper == "GET" && self.kind == Kind::Soap {
                problem("method", "must be POST for kind = \"soap\" (SOAP requests are POSTed)".into());
            }
        }

        if !(1..=MAX_TIMEOUT_MS).contains(&self.timeout_ms) {
            problem("timeout_ms", format!("must be between 1 and {MAX_TIMEOUT_MS}, not {}", self.timeout_ms));
        }
        if self.retries > MAX_RETRIES {
            problem("retries", format!("must be at most {MAX_RETRIES}, not {}", self.retries));
        }

        for (name, value) in &self.headers {
            let key = format!("headers.{name}");
            match HeaderName::from_bytes(name.as_bytes()) {
                Err(_) => problem(&key, "is not a valid HTTP header name".into()),
                Ok(h) if RESERVED_HEADERS.contains(&h.as_str()) => {
                    problem(&key, "is set by the client itself and cannot be configured".into())
                }
                Ok(_) => {}
            }
            if HeaderValue::from_str(value).is_err() {
                problem(&key, "the value is not a valid HTTP header value".into());
            }
        }

        match self.kind {
            Kind::Soap => {
                match &self.soap_action {
                    None => problem("soap_action", "is required for kind = \"soap\"".into()),
                    Some(action) => {
                        if action.contains('"') || HeaderValue::from_str(action).is_err() {
                            problem(
                                "soap_action",
                                "must not contain `\"` or characters an HTTP header cannot carry".into(),
                            );
                        }
                    }
                }
                match &self.soap_namespace {
                    None => problem("soap_namespace", "is required for kind = \"soap\"".into()),
                    Some(ns) if ns.trim().is_empty() => problem("soap_namespace", "must not be empty".into()),
                    Some(ns) if ns.chars().any(|c| c.is_whitespace() || c.is_control()) => {
                        problem("soap_namespace", format!("`{ns}` is not a namespace URI"))
                    }
                    Some(_) => {}
                }
                match &self.operation {
                    None => problem("operation", "is required for kind = \"soap\"".into()),
                    Some(op) if !is_xml_ncname(op) => {
                        problem("operation", format!("`{op}` is not an XML element name"))
                    }
                    Some(_) => {}
                }
            }
            Kind::Json => {
                for (key, present) in [
                    ("soap_action", self.soap_action.is_some()),
                    ("soap_namespace", self.soap_namespace.is_some()),
                    ("operation", self.operation.is_some()),
                ] {
                    if present {
                        problem(key, "is only for kind = \"soap\"".into());
                    }
                }
            }
        }

        for (name, template) in self.params.iter() {
            let key = format!("params.{name}");
            if name.is_empty() {
                problem(&key, "the field name must not be empty".into());
            } else if self.kind == Kind::Soap && !is_xml_ncname(name) {
                problem(&key, format!("`{name}` is not an XML element name"));
            }
            if let Err(e) = check_template(template) {
                problem(&key, e.to_string());
            }
        }

        for (variable, path) in &self.results {
            let key = format!("results.{variable}");
            if variable.is_empty() {
                problem(&key, "the variable name must not be empty".into());
            }
            match self.kind {
                Kind::Json => {
                    if let Err(message) = check_json_pointer(path) {
                        problem(&key, message);
                    }
                }
                Kind::Soap => {
                    if !is_xml_ncname(path) {
                        problem(
                            &key,
                            format!("`{path}` must be the local name of an element, without a prefix"),
                        );
                    }
                }
            }
        }

        if self.ca_file.is_some() && !https {
            problem("ca_file", "is only for https:// URLs".into());
        }

        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// Whether the request is a GET (JSON services only).
    pub(crate) fn is_get(&self) -> bool {
        self.method.as_deref().is_some_and(|m| m.eq_ignore_ascii_case("GET"))
    }
}

/// Checks the syntax of an RFC 6901 JSON pointer: empty (the whole answer) or `/`-separated
/// tokens in which `~` is only ever followed by `0` or `1`.
fn check_json_pointer(path: &str) -> Result<(), String> {
    if !path.is_empty() && !path.starts_with('/') {
        return Err(format!("`{path}` is not a JSON pointer: it must start with `/`, e.g. `/data/balance`"));
    }
    let mut chars = path.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return Err(format!("`{path}` is not a JSON pointer: `~` must be followed by 0 or 1"));
        }
    }
    Ok(())
}

/// Whether `name` is an XML name without a colon (an NCName), which is what element names in
/// the request and the looked-up result names must be. Slightly stricter than the XML rules
/// for non-ASCII names, which do not occur in real service descriptions.
pub(crate) fn is_xml_ncname(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Request fields in the order they were written: a small ordered map.
///
/// A `BTreeMap` would sort the fields, and a SOAP service generated from a WSDL may insist on
/// the declared order (WCF silently drops out-of-order members), so the order of the file is
/// the order of the request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// The fields, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The template of field `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// How many fields there are, for sizing what is built from them.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no fields (a GET or a notification may need none).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds a field at the end, or replaces the template of an existing one in its place.
    pub fn insert(&mut self, name: impl Into<String>, template: impl Into<String>) {
        let (name, template) = (name.into(), template.into());
        match self.0.iter_mut().find(|(k, _)| *k == name) {
            Some(slot) => slot.1 = template,
            None => self.0.push((name, template)),
        }
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Params {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Params {
        let mut params = Params::default();
        for (k, v) in iter {
            params.insert(k, v);
        }
        params
    }
}

impl<'de> Deserialize<'de> for Params {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Params, D::Error> {
        struct ParamsVisitor;

        impl<'de> Visitor<'de> for ParamsVisitor {
            type Value = Params;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table of request field names to templates")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Params, A::Error> {
                let mut fields: Vec<(String, String)> = Vec::new();
                while let Some((name, template)) = map.next_entry::<String, String>()? {
                    if fields.iter().any(|(k, _)| *k == name) {
                        return Err(serde::de::Error::custom(format!("field `{name}` is given twice")));
                    }
                    fields.push((name, template));
                }
                Ok(Params(fields))
            }
        }

        deserializer.deserialize_map(ParamsVisitor)
    }
}

impl serde::Serialize for Params {
    /// Serializes as a map in order: this is the JSON request body.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}
