//! [`DChannel`]: an E1 signalling channel (timeslot 16), which carries HDLC frames for the
//! control plane's Q.921/Q.931 stack instead of audio.
//!
//! DAHDI runs the HDLC layer in the kernel (`dchan` / `hardhdlc` in system.conf). One read
//! returns one received frame followed by its two FCS bytes, exactly as DAHDI delivers it; the
//! frames are not touched here, so the PRI stack drops the last two bytes itself. One write
//! sends one frame, which must likewise end with two placeholder bytes where DAHDI puts the
//! FCS it computes. Frames with a bad FCS, aborts and overruns are reported as events.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

use libc::c_int;
use switchboard_driver_api::ChannelId;

use crate::abi::*;
use crate::error::DahdiError;
use crate::fd::{self, ChannelFile, DahdiFd};

/// Bytes DAHDI appends to each received frame and expects at the end of each frame written.
pub const FCS_LEN: usize = 2;
/// The largest frame (with its FCS) a D-channel buffer holds.
pub const MAX_FRAME: usize = 1024;

/// Something the D-channel reported instead of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DEvent {
    /// A frame arrived with a bad checksum and was dropped.
    BadFcs,
    /// The far end aborted a frame.
    Abort,
    /// A frame was too long for the buffer, or frames came faster than they were read.
    Overrun,
    /// The span raised an alarm: the link is down.
    Alarm,
    /// The span's alarms cleared.
    NoAlarm,
    /// The channel's device went away.
    Removed,
    /// Any other event, by its `DAHDI_EVENT_*` number.
    Other(c_int),
}

impl DEvent {
    fn from_raw(event: c_int) -> DEvent {
        match event {
            DAHDI_EVENT_BADFCS => DEvent::BadFcs,
            DAHDI_EVENT_ABORT => DEvent::Abort,
            DAHDI_EVENT_OVERRUN => DEvent::Overrun,
            DAHDI_EVENT_ALARM => DEvent::Alarm,
            DAHDI_EVENT_NOALARM => DEvent::NoAlarm,
            DAHDI_EVENT_REMOVED => DEvent::Removed,
            other => DEvent::Other(other),
        }
    }
}

/// The outcome of one [`DChannel::read_frame`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DRead {
    /// A frame of this many bytes, the last [`FCS_LEN`] of them its FCS.
    Frame(usize),
    /// An event took the place of a frame.
    Event(DEvent),
    /// Nothing yet: wait until the descriptor is readable.
    WouldBlock,
}

/// Events saved while retrying a write, handed out by the next reads.
const SAVED_EVENTS: usize = 16;

/// An E1 D-channel.
pub struct DChannel<F: DahdiFd = ChannelFile> {
    fd: F,
    channel: ChannelId,
    channo: u32,
    span: u16,
    spanno: c_int,
    saved: heapless::Deque<DEvent, SAVED_EVENTS>,
}

impl<F: DahdiFd> DChannel<F> {
    pub(crate) fn new(fd: F, channel: ChannelId, channo: u32, span: u16, spanno: c_int) -> DChannel<F> {
        DChannel { fd, channel, channo, span, spanno, saved: heapless::Deque::new() }
    }

    /// The channel's id on the card (its port is `channel().port()`).
    pub fn channel(&self) -> ChannelId {
        self.channel
    }

    /// DAHDI's channel number.
    pub fn channo(&self) -> u32 {
        self.channo
    }

    /// The span's index on the card.
    pub fn span(&self) -> u16 {
        self.span
    }

    /// DAHDI's span number.
    pub fn spanno(&self) -> u32 {
        self.spanno.unsigned_abs()
    }

    /// Reads one frame into `buf` (which should hold [`MAX_FRAME`] bytes), or the next event.
    /// ELAST means events are queued: the first is taken with `DAHDI_GETEVENT` and returned.
    pub fn read_frame(&mut self, buf: &mut [u8]) -> Result<DRead, DahdiError> {
        if let Some(event) = self.saved.pop_front() {
            return Ok(DRead::Event(event));
        }
        loop {
            match self.fd.read(buf) {
                Ok(0) => return Ok(DRead::WouldBlock),
                Ok(n) => return Ok(DRead::Frame(n)),
                Err(e) if fd::is_elast(&e) => match self.fd.get_event() {
                    Ok(DAHDI_EVENT_NONE) => continue,
                    Ok(event) => return Ok(DRead::Event(DEvent::from_raw(event))),
                    Err(source) => return Err(self.error("DAHDI_GETEVENT", source)),
                },
                Err(e) if fd::is_would_block(&e) => return Ok(DRead::WouldBlock),
                Err(e) if fd::is_interrupted(&e) => continue,
                Err(source) => return Err(self.error("read", source)),
            }
        }
    }

    /// Writes one frame whose last [`FCS_LEN`] bytes are placeholders for the FCS. Returns
    /// false when the channel has no free buffer: wait until the descriptor is writable and
    /// try again. Events that block the write are saved for [`DChannel::read_frame`].
    pub fn write_frame(&mut self, frame: &[u8]) -> Result<bool, DahdiError> {
        if frame.len() <= FCS_LEN || frame.len() > MAX_FRAME {
            return Err(self.error(
                "write",
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "a frame must be {}-{MAX_FRAME} bytes with its FCS, not {}",
                        FCS_LEN + 1,
                        frame.len()
                    ),
                ),
            ));
        }
        // Each ELAST is followed by draining the queue, so a write that keeps failing is
        // facing a queue refilled faster than it is read; give up after a few rounds.
        for _ in 0..4 {
            match self.fd.write(frame) {
                Ok(_) => return Ok(true),
                Err(e) if fd::is_elast(&e) => self.save_events()?,
                Err(e) if fd::is_would_block(&e) => return Ok(false),
                Err(e) if fd::is_interrupted(&e) => {}
                Err(source) => return Err(self.error("write", source)),
            }
        }
        Ok(false)
    }

    fn save_events(&mut self) -> Result<(), DahdiError> {
        for _ in 0..DAHDI_MAX_EVENTSIZE {
            match self.fd.get_event() {
                Ok(DAHDI_EVENT_NONE) => return Ok(()),
                // When the saved list is full the oldest event makes room: the newest say most
                // about the link's state now.
                Ok(event) => {
                    if self.saved.is_full() {
                        self.saved.pop_front();
                    }
                    let _ = self.saved.push_back(DEvent::from_raw(event));
                }
                Err(e) if fd::is_interrupted(&e) => {}
                Err(source) => return Err(self.error("DAHDI_GETEVENT", source)),
            }
        }
        Ok(())
    }

    fn error(&self, op: &'static str, source: io::Error) -> DahdiError {
        DahdiError::Channel { channo: self.channo, op, source }
    }

    /// The descriptor, for tests and for the ioctls this type does not wrap.
    pub fn fd_mut(&mut self) -> &mut F {
        &mut self.fd
    }

    /// Gives up the descriptor (e.g. to register it with an async reactor; see
    /// [`ChannelFile::into_owned_fd`]).
    pub fn into_fd(self) -> F {
        self.fd
    }
}

impl AsFd for DChannel<ChannelFile> {
    /// The descriptor to register with the control plane's reactor (it is non-blocking).
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for DChannel<ChannelFile> {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}
