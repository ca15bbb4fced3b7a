//! Calls to the customer's web services, for the IVR's business plugins.
//!
//! A call-center flow often has to ask the customer's own systems something before it can go
//! on: is this caller a known user, what is the balance of this account. Those systems answer
//! over HTTP, either with JSON or with SOAP 1.1 (the reference product's `CheckUser(UserID,
//! PSW) -> Boolean` is a SOAP service). This module is the client side of that: a
//! [`ServiceConfig`] describes one service (embedded in the configuration file as a
//! `[[webservice]]` table), and [`WebClient::call`] sends the request built from the flow's
//! variables and maps the answer back into variables.
//!
//! Every call has one deadline that covers everything, retries included, because a caller is
//! waiting on the line while it runs; every failure is a [`WebError`] that names the service,
//! so that the flow can take its failure branch and the log says why.
//!
//! # Parameters and the substitution syntax
//!
//! A request field is a template: `${name}` is replaced by the value of `name` in the
//! arguments the flow passes to [`WebClient::call`] (for example `${caller}` or
//! `${var.UserID}`; names are made of ASCII letters, digits, `_`, `.` and `-`), `$$` stands for
//! one literal `$`, and everything else is taken literally. A `$` followed by anything else is
//! a configuration error, so that a typo such as `$caller` is caught when the configuration is
//! loaded instead of being sent to the customer. A name that has no value in the arguments
//! fails the call with [`WebError::Argument`] rather than sending an empty field.

mod client;
mod config;
mod soap;
mod template;

#[cfg(test)]
mod tests;

pub use client::{ClientInitError, WebClient, MAX_ANSWER_BYTES};
pub use config::{ConfigProblem, Kind, Params, ServiceConfig, MAX_RETRIES, MAX_TIMEOUT_MS};
pub use template::{check_template, substitute, TemplateError};

/// Why a web service call failed. Every message names the service, because the daemon logs
/// these for the installer, who has to know which of the customer's services misbehaved.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WebError {
    /// No complete answer arrived within the service's `timeout_ms`, retries included.
    #[error("web service `{service}`: no answer within {ms} ms")]
    Timeout { service: String, ms: u64 },
    /// The service answered with an HTTP status other than 2xx.
    #[error("web service `{service}`: the service answered HTTP status {status}")]
    Http { service: String, status: u16 },
    /// The service could not be reached, or the connection failed during the exchange
    /// (refused, reset, name not found, TLS handshake or certificate failure).
    #[error("web service `{service}`: cannot talk to the service: {detail}")]
    Connect { service: String, detail: String },
    /// The answer is not what the service's kind promises (not JSON, not a SOAP envelope,
    /// too large, a result that is an object rather than a value).
    #[error("web service `{service}`: malformed answer: {detail}")]
    Malformed { service: String, detail: String },
    /// A result named in the configuration is not in the answer (or is null or `xsi:nil`).
    #[error("web service `{service}`: result `{result}` not found in the answer at `{path}`")]
    Missing { service: String, result: String, path: String },
    /// The SOAP service answered with a Fault; `text` is its faultstring.
    #[error("web service `{service}`: the service answered with a SOAP fault: {text}")]
    Fault { service: String, text: String },
    /// The service's configuration is invalid (see [`ServiceConfig::validate`]), or its
    /// `ca_file` cannot be used.
    #[error("web service `{service}`: key `{key}`: {message}")]
    Config { service: String, key: String, message: String },
    /// A request field cannot be built from the arguments: a `${name}` with no value, or a
    /// value that XML cannot carry. Nothing was sent.
    #[error("web service `{service}`: parameter `{param}`: {detail}")]
    Argument { service: String, param: String, detail: String },
}

impl WebError {
    /// The name of the service the error is about.
    pub fn service(&self) -> &str {
        match self {
            WebError::Timeout { service, .. }
            | WebError::Http { service, .. }
            | WebError::Connect { service, .. }
            | WebError::Malformed { service, .. }
            | WebError::Missing { service, .. }
            | WebError::Fault { service, .. }
            | WebError::Config { service, .. }
            | WebError::Argument { service, .. } => service,
        }
    }
}
