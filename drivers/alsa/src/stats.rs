//! Per-device counters, readable from any thread while the card runs on the real-time one.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::Arc;

use switchboard_driver_api::ChannelId;

/// The live counters of one device. Updated with relaxed atomics from the tick: they are
/// statistics, not synchronisation.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub xruns: AtomicU64,
    pub suspends: AtomicU64,
    pub faults: AtomicU64,
    pub reopen_attempts: AtomicU64,
    pub reopens: AtomicU64,
    pub frames_padded: AtomicU64,
    pub frames_dropped: AtomicU64,
    pub up: AtomicBool,
    /// Errno of the last fault (0 when there was none).
    pub last_errno: AtomicI32,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// A snapshot of one device's counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceStats {
    pub channel: ChannelId,
    /// Whether the device is open and running.
    pub up: bool,
    /// Overruns and underruns recovered with a prepare/restart.
    pub xruns: u64,
    /// Times the device was found suspended (ESTRPIPE).
    pub suspends: u64,
    /// Times the device failed (unplugged, I/O error, stalled) and was closed.
    pub faults: u64,
    /// Attempts to open a failed device again, and how many succeeded.
    pub reopen_attempts: u64,
    pub reopens: u64,
    /// Frames of silence inserted, and captured or queued frames thrown away, to keep the
    /// device in step with the card's clock (capture and playback together).
    pub frames_padded: u64,
    pub frames_dropped: u64,
    /// Errno of the last fault, 0 if none.
    pub last_errno: i32,
}

impl Default for DeviceStats {
    fn default() -> Self {
        DeviceStats {
            channel: ChannelId(0),
            up: false,
            xruns: 0,
            suspends: 0,
            faults: 0,
            reopen_attempts: 0,
            reopens: 0,
            frames_padded: 0,
            frames_dropped: 0,
            last_errno: 0,
        }
    }
}

/// A cloneable handle on the counters of every device of a card.
#[derive(Clone, Debug)]
pub struct StatsHandle(pub(crate) Arc<[Counters]>);

impl StatsHandle {
    /// The counters of the device on `channel`.
    pub fn device(&self, channel: ChannelId) -> Option<DeviceStats> {
        let c = self.0.get(usize::from(channel.0))?;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Some(DeviceStats {
            channel,
            up: c.up.load(Ordering::Relaxed),
            xruns: get(&c.xruns),
            suspends: get(&c.suspends),
            faults: get(&c.faults),
            reopen_attempts: get(&c.reopen_attempts),
            reopens: get(&c.reopens),
            frames_padded: get(&c.frames_padded),
            frames_dropped: get(&c.frames_dropped),
            last_errno: c.last_errno.load(Ordering::Relaxed),
        })
    }

    /// The counters of every device, in channel order.
    pub fn snapshot(&self) -> Vec<DeviceStats> {
        (0..self.0.len()).filter_map(|i| self.device(ChannelId(i as u16))).collect()
    }
}
