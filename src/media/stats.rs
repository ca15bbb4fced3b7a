//! Counters the engine keeps for operators: plain atomics, so the real-time thread updates
//! them without locks and anyone can read them at any time.

use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters of one engine.
#[derive(Debug, Default)]
pub struct EngineStats {
    pub ticks: AtomicU64,
    /// Ticks that finished after the next block was due (only counted in real-time pacing).
    pub deadline_misses: AtomicU64,
    /// Time spent processing ticks, excluding the wait for the card.
    pub busy_ns: AtomicU64,
    pub max_tick_ns: AtomicU64,
    /// Events lost because the event ring to the control plane was full.
    pub events_dropped: AtomicU64,
    /// Commands refused because the command ring to the engine was full (counted by the sender).
    pub commands_dropped: AtomicU64,
    /// Recording blocks lost because the ring to the recording writer was full.
    pub recording_blocks_dropped: AtomicU64,
    /// Line events the card could not report because its per-tick list was full.
    pub card_events_lost: AtomicU64,
    /// Ticks that failed in the card.
    pub card_errors: AtomicU64,
    /// FSK caller id frames received on trunks.
    pub caller_id_received: AtomicU64,
    /// FSK caller id frames lost on trunks (bad checksum, lost character, signal cut off).
    pub caller_id_errors: AtomicU64,
    /// FSK caller id bursts sent to seat phones to the end.
    pub caller_id_sent: AtomicU64,
    /// Caller id bursts for seat phones that were refused (a burst still going out, the
    /// phone off-hook, a message too long) or cut short by the phone going off-hook.
    pub caller_id_not_sent: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct StatsSnapshot {
    pub ticks: u64,
    pub deadline_misses: u64,
    pub busy_ns: u64,
    pub max_tick_ns: u64,
    pub events_dropped: u64,
    pub commands_dropped: u64,
    pub recording_blocks_dropped: u64,
    pub card_events_lost: u64,
    pub card_errors: u64,
    pub caller_id_received: u64,
    pub caller_id_errors: u64,
    pub caller_id_sent: u64,
    pub caller_id_not_sent: u64,
}

impl EngineStats {
    pub fn snapshot(&self) -> StatsSnapshot {
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StatsSnapshot {
            ticks: r(&self.ticks),
            deadline_misses: r(&self.deadline_misses),
            busy_ns: r(&self.busy_ns),
            max_tick_ns: r(&self.max_tick_ns),
            events_dropped: r(&self.events_dropped),
            commands_dropped: r(&self.commands_dropped),
            recording_blocks_dropped: r(&self.recording_blocks_dropped),
            card_events_lost: r(&self.card_events_lost),
            card_errors: r(&self.card_errors),
            caller_id_received: r(&self.caller_id_received),
            caller_id_errors: r(&self.caller_id_errors),
            caller_id_sent: r(&self.caller_id_sent),
            caller_id_not_sent: r(&self.caller_id_not_sent),
        }
    }
}
