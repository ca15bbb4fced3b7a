//! Q.931 call states and timers for basic call, seen from either side.
//!
//! The states are named by what happened from this stack's point of view (we sent SETUP, or
//! we received it) so one machine serves both roles; [`CallState::q931_number`] gives the
//! number of the corresponding U or N state for STATUS messages.

use std::time::Duration;

use super::Role;

/// The state of one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CallState {
    Null,
    /// We sent SETUP (U1 call initiated, N6 call present).
    OutInitiated,
    /// The peer asked for more digits (U2 overlap sending, N25 overlap receiving).
    OutOverlapSending,
    /// The peer sent CALL PROCEEDING (U3, N9).
    OutProceeding,
    /// The peer is alerting (U4 call delivered, N7 call received).
    OutDelivered,
    /// We received SETUP and have not answered it yet (U6 call present, N1 call initiated).
    InPresent,
    /// We sent SETUP ACKNOWLEDGE and collect digits (U25 overlap receiving, N2 overlap
    /// sending).
    InOverlapReceiving,
    /// We sent CALL PROCEEDING (U9, N3).
    InProceeding,
    /// We sent ALERTING (U7 call received, N4 call delivered).
    InReceived,
    /// We sent CONNECT and wait for CONNECT ACKNOWLEDGE (U8; the network side goes straight
    /// to active).
    ConnectRequest,
    /// U10, N10.
    Active,
    /// We sent DISCONNECT (U11 disconnect request, N12 disconnect indication).
    DisconnectRequest,
    /// The peer sent DISCONNECT (U12, N11).
    DisconnectIndication,
    /// We sent RELEASE (U19, N19).
    ReleaseRequest,
}

impl CallState {
    /// The Q.931 call state value for the call state information element.
    pub fn q931_number(self, role: Role) -> u8 {
        use CallState::*;
        match (role, self) {
            (_, Null) => 0,
            (_, Active) => 10,
            (_, ReleaseRequest) => 19,
            (Role::User, OutInitiated) => 1,
            (Role::User, OutOverlapSending) => 2,
            (Role::User, OutProceeding) => 3,
            (Role::User, OutDelivered) => 4,
            (Role::User, InPresent) => 6,
            (Role::User, InReceived) => 7,
            (Role::User, ConnectRequest) => 8,
            (Role::User, InProceeding) => 9,
            (Role::User, DisconnectRequest) => 11,
            (Role::User, DisconnectIndication) => 12,
            (Role::User, InOverlapReceiving) => 25,
            (Role::Network, InPresent) => 1,
            (Role::Network, InOverlapReceiving) => 2,
            (Role::Network, InProceeding) => 3,
            (Role::Network, InReceived) => 4,
            (Role::Network, OutInitiated) => 6,
            (Role::Network, OutDelivered) => 7,
            (Role::Network, ConnectRequest) => 8,
            (Role::Network, OutProceeding) => 9,
            (Role::Network, DisconnectIndication) => 11,
            (Role::Network, DisconnectRequest) => 12,
            (Role::Network, OutOverlapSending) => 25,
        }
    }

    /// True in the states where the daemon may still answer, alert or proceed.
    pub fn is_incoming_setup(self) -> bool {
        matches!(
            self,
            CallState::InPresent
                | CallState::InOverlapReceiving
                | CallState::InProceeding
                | CallState::InReceived
        )
    }

    /// True once clearing has started in either direction.
    pub fn is_clearing(self) -> bool {
        matches!(
            self,
            CallState::DisconnectRequest | CallState::DisconnectIndication | CallState::ReleaseRequest
        )
    }
}

/// The Q.931 timers (ETSI EN 300 403 values by default).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Q931Timers {
    /// Overlap receiving: time allowed between digits.
    pub t302: Duration,
    /// SETUP sent, no answer at all: sent twice, then the call fails.
    pub t303: Duration,
    /// Overlap sending: time allowed for the peer to react to digits.
    pub t304: Duration,
    /// DISCONNECT sent, no RELEASE or DISCONNECT back.
    pub t305: Duration,
    /// RELEASE sent, no RELEASE COMPLETE: sent twice, then the call reference is freed.
    pub t308: Duration,
    /// CALL PROCEEDING received, then nothing.
    pub t310: Duration,
    /// User side: CONNECT sent, no CONNECT ACKNOWLEDGE.
    pub t313: Duration,
    /// RESTART sent, no RESTART ACKNOWLEDGE.
    pub t316: Duration,
    /// How many times RESTART is sent before giving up.
    pub n316: u8,
}

impl Default for Q931Timers {
    fn default() -> Self {
        Q931Timers {
            t302: Duration::from_secs(15),
            t303: Duration::from_secs(4),
            t304: Duration::from_secs(30),
            t305: Duration::from_secs(30),
            t308: Duration::from_secs(4),
            t310: Duration::from_secs(30),
            t313: Duration::from_secs(4),
            t316: Duration::from_secs(120),
            n316: 2,
        }
    }
}

/// Which call timer is running (a call runs at most one at a time).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallTimer {
    T302,
    T303,
    T304,
    T305,
    T308,
    T310,
    T313,
}
