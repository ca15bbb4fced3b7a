//! Span alarm polling from outside the real-time thread.
//!
//! [`DahdiCard`](crate::DahdiCard) already raises Alarm and AlarmCleared in its ticks. A
//! [`SpanMonitor`] answers the same question for the control plane (status pages, `switchboard
//! status`, a watchdog) on its own descriptor on `/dev/dahdi/ctl`, so it never touches the
//! card's channels. A span recovers by itself: the monitor just reads it again and reports the
//! change.

use std::path::Path;

use libc::c_int;
use switchboard_driver_api::{Alarms, LineEvent};

use crate::error::DahdiError;
use crate::fd::{ChannelFile, DahdiFd, CTL_DEVICE};
use crate::signal::alarms_from_bits;

/// The alarms of DAHDI span `spanno`, read with `DAHDI_SPANSTAT`.
pub fn span_alarms<F: DahdiFd>(fd: &mut F, spanno: u32) -> Result<Alarms, DahdiError> {
    let n = c_int::try_from(spanno).map_err(|_| DahdiError::SpanStat {
        spanno,
        source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
    })?;
    let info = fd.span_stat(n).map_err(|source| DahdiError::SpanStat { spanno, source })?;
    Ok(alarms_from_bits(info.alarms))
}

/// A change of a span's alarms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpanAlarmChange {
    /// The span's index on the card.
    pub span: u16,
    /// DAHDI's span number.
    pub spanno: u32,
    /// [`LineEvent::Alarm`] with the alarms now raised, or [`LineEvent::AlarmCleared`].
    pub event: LineEvent,
}

/// The result of one [`SpanMonitor::poll`]: the changes, and the spans that could not be read
/// (the others were still read).
#[derive(Debug, Default)]
pub struct SpanPoll {
    pub changes: Vec<SpanAlarmChange>,
    pub errors: Vec<DahdiError>,
}

struct Watched {
    span: u16,
    spanno: u32,
    /// None until the span has been read once.
    alarms: Option<Alarms>,
}

/// Watches the alarms of a set of spans.
pub struct SpanMonitor<F: DahdiFd = ChannelFile> {
    fd: F,
    spans: Vec<Watched>,
}

impl SpanMonitor<ChannelFile> {
    /// Watches `spans` (each the span's index on the card and its DAHDI span number, as
    /// [`DahdiCard::span_numbers`](crate::DahdiCard::span_numbers) gives them) through
    /// `/dev/dahdi/ctl`.
    pub fn open(spans: &[(u16, u32)]) -> Result<SpanMonitor<ChannelFile>, DahdiError> {
        let path = Path::new(CTL_DEVICE);
        let fd =
            ChannelFile::open(path).map_err(|source| DahdiError::OpenCtl { path: path.into(), source })?;
        Ok(SpanMonitor::with_fd(fd, spans))
    }
}

impl<F: DahdiFd> SpanMonitor<F> {
    /// Watches `spans` through any descriptor that answers `DAHDI_SPANSTAT` (tests use a fake).
    pub fn with_fd(fd: F, spans: &[(u16, u32)]) -> SpanMonitor<F> {
        let spans = spans.iter().map(|&(span, spanno)| Watched { span, spanno, alarms: None }).collect();
        SpanMonitor { fd, spans }
    }

    /// Reads every span. The first read of a span reports it only if it is in alarm; later
    /// reads report each change, including the recovery.
    pub fn poll(&mut self) -> SpanPoll {
        let mut out = SpanPoll::default();
        for w in &mut self.spans {
            match span_alarms(&mut self.fd, w.spanno) {
                Ok(now) => {
                    let before = w.alarms.unwrap_or_default();
                    w.alarms = Some(now);
                    if now != before {
                        let event = if now.any() { LineEvent::Alarm(now) } else { LineEvent::AlarmCleared };
                        out.changes.push(SpanAlarmChange { span: w.span, spanno: w.spanno, event });
                    }
                }
                Err(e) => out.errors.push(e),
            }
        }
        out
    }

    /// Each watched span's index and its alarms as last read (None: never read).
    pub fn alarms(&self) -> Vec<(u16, Option<Alarms>)> {
        self.spans.iter().map(|w| (w.span, w.alarms)).collect()
    }
}
