//! IVR flows: the files installers write, and the interpreter that runs them.
//!
//! `flow` parses and checks flow files (one TOML file per flow, see `docs/flows.md`) into
//! [`flow::FlowSet`]s; `run` is the interpreter, a state machine with no IO and no clock that
//! the daemon drives per call; `schedule` answers "are we open" and `template` fills
//! `${name}` placeholders. A reload builds a new `FlowSet`; calls keep the `Arc` of the set
//! they started with, so they finish on the version they began.

pub mod flow;
pub mod run;
pub mod schedule;
pub mod template;

pub use flow::{Context, Flow, FlowSet, Lang};
pub use run::{Input, Output, Run, Speak};

#[cfg(test)]
mod tests;
