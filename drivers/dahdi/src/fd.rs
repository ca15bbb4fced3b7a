//! The file-descriptor layer: a trait over the reads, writes and ioctls a channel needs, the
//! real implementation on `/dev/dahdi/channel`, and helpers to classify DAHDI's errors.
//!
//! Everything above this layer (the card, the D-channel, the span monitor) talks to the trait,
//! so the channel logic runs unchanged against the in-memory fake in [`crate::fake`], which
//! can return ELAST, EAGAIN, short reads and events on demand.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use libc::c_int;

use crate::abi::{
    self, DahdiBufferInfo, DahdiChanConfig, DahdiLineConfig, DahdiParams, DahdiSpanInfo, ELAST,
};

/// The generic channel device: opened once per channel, then bound with `DAHDI_SPECIFY`.
pub const CHANNEL_DEVICE: &str = "/dev/dahdi/channel";
/// The control device, which answers `DAHDI_SPANSTAT` for any span and takes the span and
/// channel configuration (`DAHDI_SPANCONFIG`, `DAHDI_CHANCONFIG`, `DAHDI_STARTUP`).
pub const CTL_DEVICE: &str = "/dev/dahdi/ctl";

/// The operations Switchboard performs on a DAHDI channel descriptor.
///
/// The methods mirror the system calls one for one and return the kernel's error unchanged,
/// so the callers' handling of ELAST, EAGAIN and friends is the same for the real device and
/// the fake.
pub trait DahdiFd: Send {
    /// `read(2)`: one block of audio, or one HDLC frame on a D-channel.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    /// `write(2)`: one block of audio, or one HDLC frame on a D-channel.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize>;
    /// `DAHDI_SPECIFY`.
    fn specify(&mut self, channo: c_int) -> io::Result<()>;
    /// `DAHDI_SET_BLOCKSIZE`.
    fn set_blocksize(&mut self, bytes: c_int) -> io::Result<()>;
    /// `DAHDI_SET_BUFINFO`.
    fn set_bufinfo(&mut self, info: &DahdiBufferInfo) -> io::Result<()>;
    /// `DAHDI_SETLAW`.
    fn set_law(&mut self, law: c_int) -> io::Result<()>;
    /// `DAHDI_SETLINEAR`.
    fn set_linear(&mut self, linear: c_int) -> io::Result<()>;
    /// `DAHDI_GET_PARAMS`.
    fn get_params(&mut self, channo: c_int) -> io::Result<DahdiParams>;
    /// `DAHDI_HOOK` (EINPROGRESS already counts as success).
    fn hook(&mut self, value: c_int) -> io::Result<()>;
    /// `DAHDI_GETEVENT`.
    fn get_event(&mut self) -> io::Result<c_int>;
    /// `DAHDI_SPANSTAT`.
    fn span_stat(&mut self, spanno: c_int) -> io::Result<DahdiSpanInfo>;
    /// `DAHDI_SPANCONFIG` (on the control device).
    fn span_config(&mut self, config: &DahdiLineConfig) -> io::Result<()>;
    /// `DAHDI_CHANCONFIG` (on the control device).
    fn chan_config(&mut self, config: &DahdiChanConfig) -> io::Result<()>;
    /// `DAHDI_STARTUP` (on the control device).
    fn startup(&mut self, spanno: c_int) -> io::Result<()>;
    /// `DAHDI_SHUTDOWN` (on the control device).
    fn shutdown(&mut self, spanno: c_int) -> io::Result<()>;
    /// The descriptor to wait on with poll(2), if there is one. The fake has none, and the
    /// card then simply tries again after a short sleep.
    fn poll_fd(&self) -> Option<RawFd> {
        None
    }
}

/// A real descriptor on a DAHDI device file, opened non-blocking so that the real-time thread
/// waits only in poll(2), with a deadline, and never inside a read, write or `DAHDI_HOOK`.
#[derive(Debug)]
pub struct ChannelFile {
    file: File,
}

impl ChannelFile {
    /// Opens a DAHDI device file (normally [`CHANNEL_DEVICE`] or [`CTL_DEVICE`]).
    pub fn open(path: &Path) -> io::Result<ChannelFile> {
        let file = OpenOptions::new().read(true).write(true).custom_flags(libc::O_NONBLOCK).open(path)?;
        Ok(ChannelFile { file })
    }

    /// The descriptor itself, for a reactor that reads and writes it directly (it stays
    /// non-blocking and bound to its channel). Such a reader must still treat a read or write
    /// failing with ELAST as "take the events with `DAHDI_GETEVENT` first".
    pub fn into_owned_fd(self) -> OwnedFd {
        self.file.into()
    }
}

impl AsFd for ChannelFile {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

impl AsRawFd for ChannelFile {
    fn as_raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

impl DahdiFd for ChannelFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.file.read(buf)
    }
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }
    fn specify(&mut self, channo: c_int) -> io::Result<()> {
        abi::specify(self.file.as_fd(), channo)
    }
    fn set_blocksize(&mut self, bytes: c_int) -> io::Result<()> {
        abi::set_blocksize(self.file.as_fd(), bytes)
    }
    fn set_bufinfo(&mut self, info: &DahdiBufferInfo) -> io::Result<()> {
        abi::set_bufinfo(self.file.as_fd(), info)
    }
    fn set_law(&mut self, law: c_int) -> io::Result<()> {
        abi::set_law(self.file.as_fd(), law)
    }
    fn set_linear(&mut self, linear: c_int) -> io::Result<()> {
        abi::set_linear(self.file.as_fd(), linear)
    }
    fn get_params(&mut self, channo: c_int) -> io::Result<DahdiParams> {
        abi::get_params(self.file.as_fd(), channo)
    }
    fn hook(&mut self, value: c_int) -> io::Result<()> {
        abi::hook(self.file.as_fd(), value)
    }
    fn get_event(&mut self) -> io::Result<c_int> {
        abi::get_event(self.file.as_fd())
    }
    fn span_stat(&mut self, spanno: c_int) -> io::Result<DahdiSpanInfo> {
        abi::span_stat(self.file.as_fd(), spanno)
    }
    fn span_config(&mut self, config: &DahdiLineConfig) -> io::Result<()> {
        abi::span_config(self.file.as_fd(), config)
    }
    fn chan_config(&mut self, config: &DahdiChanConfig) -> io::Result<()> {
        abi::chan_config(self.file.as_fd(), config)
    }
    fn startup(&mut self, spanno: c_int) -> io::Result<()> {
        abi::startup(self.file.as_fd(), spanno)
    }
    fn shutdown(&mut self, spanno: c_int) -> io::Result<()> {
        abi::shutdown(self.file.as_fd(), spanno)
    }
    fn poll_fd(&self) -> Option<RawFd> {
        Some(self.file.as_raw_fd())
    }
}

/// True when DAHDI refused a read or write because events are queued on the channel: drain
/// them with `DAHDI_GETEVENT`, then try again.
pub fn is_elast(e: &io::Error) -> bool {
    e.raw_os_error() == Some(ELAST)
}

/// True when a non-blocking descriptor has nothing to read or no room to write yet.
pub fn is_would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

/// True when DAHDI refused because the span or channel is in use.
pub fn is_busy(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EBUSY)
}

/// True when a signal interrupted the call and it should simply be repeated.
pub fn is_interrupted(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::Interrupted
}

/// True when the channel's device went away (DAHDI answers ENODEV once a board driver has
/// unregistered the channel).
pub fn is_gone(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ENODEV)
}

/// An `io::Error` carrying a raw errno, for the fake and for tests.
pub fn errno(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}
