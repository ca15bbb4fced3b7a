//! Analog line signalling: state machines with no IO for FXO trunk ports and FXS seat ports.

/// Caller id as the line delivered it (FSK or DTMF), decoded by the control plane.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallerIdInfo {
    /// The calling number, when the line gave one.
    pub number: Option<String>,
    /// The calling name, when the line gave one.
    pub name: Option<String>,
    /// Why the number is missing: 'P' private (withheld), 'O' unavailable (out of area).
    pub absence: Option<char>,
}
