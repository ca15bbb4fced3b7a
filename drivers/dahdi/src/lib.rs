//! The DAHDI backend: analog (FXO/FXS) and E1 cards through `/dev/dahdi`.
//!
//! The layers, bottom up:
//!
//! - [`abi`]: DAHDI's user ABI (`include/dahdi/user.h`): constants, `#[repr(C)]` structures
//!   and the ioctls, with request numbers built by nix's macros and checked against the real
//!   header by `tests/abi.rs`.
//! - [`fd`]: the [`DahdiFd`] trait over a channel descriptor's reads, writes and ioctls, with
//!   the real implementation on `/dev/dahdi/channel`; [`fake`] is an in-memory DAHDI for tests.
//! - [`signal`]: events to [`LineEvent`](switchboard_driver_api::LineEvent)s and commands to
//!   `DAHDI_HOOK` values, with FXO and FXS ports' inverted signalling.
//! - [`card`]: [`DahdiCard`], the [`Card`](switchboard_driver_api::Card) the media engine
//!   drives; [`dchan`]: [`DChannel`], the E1 D-channels handed to the control plane;
//!   [`alarms`]: [`SpanMonitor`], span alarms polled from outside the real-time thread.
//! - [`detect`], [`proc`], [`sysfs`]: which spans and channels a machine has, read from sysfs
//!   or `/proc/dahdi` under any root directory.
//! - [`spancfg`]: span and channel configuration on `/dev/dahdi/ctl` (`DAHDI_SPANCONFIG`,
//!   `DAHDI_CHANCONFIG`, `DAHDI_STARTUP`), what `dahdi_cfg` does with system.conf.
//!
//! Opening a card:
//!
//! ```no_run
//! use switchboard_driver_api::{ChannelKind, Law};
//! use switchboard_driver_dahdi::{CardOptions, CardSpec, ChannelSpec, DahdiCard, SpanMonitor};
//!
//! let spec = CardSpec {
//!     name: "TDM410P".into(),
//!     channels: vec![
//!         ChannelSpec { channo: 1, kind: ChannelKind::FxsSeat, law: Law::Alaw },
//!         ChannelSpec { channo: 4, kind: ChannelKind::FxoTrunk, law: Law::Alaw },
//!     ],
//!     options: CardOptions::default(),
//! };
//! let mut card = DahdiCard::open(&spec)?;
//! let dchannels = card.take_dchannels(); // empty for an analog card
//! let monitor = SpanMonitor::open(&card.span_numbers())?;
//! # Ok::<(), switchboard_driver_dahdi::DahdiError>(())
//! ```

#![deny(unsafe_op_in_unsafe_fn)]

pub mod abi;
pub mod alarms;
pub mod card;
pub mod dchan;
pub mod detect;
pub mod error;
pub mod fake;
pub mod fd;
pub mod proc;
pub mod signal;
pub mod spancfg;
pub mod sysfs;

pub use alarms::{span_alarms, SpanAlarmChange, SpanMonitor, SpanPoll};
pub use card::{CardOptions, CardSpec, CardStats, ChannelSpec, DahdiCard};
pub use dchan::{DChannel, DEvent, DRead, FCS_LEN, MAX_FRAME};
pub use detect::{detect, DetectedChannel, DetectedDevice, DetectedSpan, Detection, Source};
pub use error::DahdiError;
pub use fd::{ChannelFile, DahdiFd, CHANNEL_DEVICE, CTL_DEVICE};
pub use spancfg::{
    apply_span, configure_span, ChannelConfig, Coding, Framing, LineConfig, Signalling, SpanOutcome,
};
