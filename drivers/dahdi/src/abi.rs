//! The part of DAHDI's user ABI (`include/dahdi/user.h`) that Switchboard uses: constants,
//! the structures passed to ioctls, the ioctl request numbers and safe wrappers around them.
//!
//! The request numbers are built with nix's `request_code_*` macros from the same direction,
//! type, number and structure size as the header's `_IOR`/`_IOW`/`_IOWR` lines, and the
//! wrappers use exactly those constants, so the test that compares the constants with the
//! numbers a C compiler computes from the real header (`tests/abi.rs`) covers the calls too.
//! The structures are `#[repr(C)]` (packed where the header packs) and the same test checks
//! their sizes and field offsets.

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, BorrowedFd};

use libc::c_int;

/// The type of an ioctl request number on this platform.
pub type IoctlRequest = nix::sys::ioctl::ioctl_num_type;

/// The errno DAHDI returns from `read` and `write` when the channel has events queued. It is
/// not a Linux errno; the header defines it when the C library does not.
pub const ELAST: i32 = 500;

/// The ioctl "type" byte of every DAHDI request.
pub const DAHDI_CODE: u8 = 0xDA;

/// Largest block size DAHDI accepts.
pub const DAHDI_MAX_BLOCKSIZE: c_int = 8192;
/// Most buffers a channel may have.
pub const DAHDI_MAX_NUM_BUFS: c_int = 32;
/// Most bytes of buffers a channel may have in total (`bufsize * numbufs`).
pub const DAHDI_MAX_BUF_SPACE: c_int = 32768;
/// Size of a channel's event queue: draining more than this many events in a row means the
/// queue is being refilled as fast as it is read.
pub const DAHDI_MAX_EVENTSIZE: usize = 64;

/// Buffer policy: start playing or recording at once.
pub const DAHDI_POLICY_IMMEDIATE: c_int = 0;
/// Buffer policy: start when the buffers are full.
pub const DAHDI_POLICY_WHEN_FULL: c_int = 1;

/// `DAHDI_SETLAW` values.
pub const DAHDI_LAW_DEFAULT: c_int = 0;
pub const DAHDI_LAW_MULAW: c_int = 1;
pub const DAHDI_LAW_ALAW: c_int = 2;

/// `DAHDI_HOOK` values.
pub const DAHDI_ONHOOK: c_int = 0;
pub const DAHDI_OFFHOOK: c_int = 1;
pub const DAHDI_WINK: c_int = 2;
pub const DAHDI_FLASH: c_int = 3;
pub const DAHDI_START: c_int = 4;
pub const DAHDI_RING: c_int = 5;
pub const DAHDI_RINGOFF: c_int = 6;

/// `DAHDI_GETEVENT` values.
pub const DAHDI_EVENT_NONE: c_int = 0;
pub const DAHDI_EVENT_ONHOOK: c_int = 1;
pub const DAHDI_EVENT_RINGOFFHOOK: c_int = 2;
pub const DAHDI_EVENT_WINKFLASH: c_int = 3;
pub const DAHDI_EVENT_ALARM: c_int = 4;
pub const DAHDI_EVENT_NOALARM: c_int = 5;
pub const DAHDI_EVENT_ABORT: c_int = 6;
pub const DAHDI_EVENT_OVERRUN: c_int = 7;
pub const DAHDI_EVENT_BADFCS: c_int = 8;
pub const DAHDI_EVENT_DIALCOMPLETE: c_int = 9;
pub const DAHDI_EVENT_RINGERON: c_int = 10;
pub const DAHDI_EVENT_RINGEROFF: c_int = 11;
pub const DAHDI_EVENT_HOOKCOMPLETE: c_int = 12;
pub const DAHDI_EVENT_BITSCHANGED: c_int = 13;
pub const DAHDI_EVENT_PULSE_START: c_int = 14;
pub const DAHDI_EVENT_POLARITY: c_int = 17;
pub const DAHDI_EVENT_RINGBEGIN: c_int = 18;
pub const DAHDI_EVENT_REMOVED: c_int = 20;
pub const DAHDI_EVENT_READ_OVERRUN: c_int = 29;
pub const DAHDI_EVENT_WRITE_UNDERRUN: c_int = 30;
/// Flags OR'd with a digit in pulse-dial and DTMF events.
pub const DAHDI_EVENT_PULSEDIGIT: c_int = 1 << 16;
pub const DAHDI_EVENT_DTMFDOWN: c_int = 1 << 17;
pub const DAHDI_EVENT_DTMFUP: c_int = 1 << 18;

/// Span alarm bits (`dahdi_spaninfo.alarms`).
pub const DAHDI_ALARM_NONE: c_int = 0;
pub const DAHDI_ALARM_RECOVER: c_int = 1 << 0;
pub const DAHDI_ALARM_LOOPBACK: c_int = 1 << 1;
pub const DAHDI_ALARM_YELLOW: c_int = 1 << 2;
pub const DAHDI_ALARM_RED: c_int = 1 << 3;
pub const DAHDI_ALARM_BLUE: c_int = 1 << 4;
pub const DAHDI_ALARM_NOTOPEN: c_int = 1 << 5;
pub const DAHDI_ALARM_LOS: c_int = 1 << 8;
pub const DAHDI_ALARM_LFA: c_int = 1 << 9;
pub const DAHDI_ALARM_LMFA: c_int = 1 << 10;

/// Line configuration bits (`dahdi_lineconfig.lineconfig`, `dahdi_spaninfo.lineconfig` and
/// `.linecompat`). The low three bits are the transmit level; then T1 framing and coding, E1
/// framing and coding, and BRI termination.
pub const DAHDI_CONFIG_TXLEVEL: c_int = 7;
pub const DAHDI_CONFIG_D4: c_int = 1 << 4;
pub const DAHDI_CONFIG_ESF: c_int = 1 << 5;
pub const DAHDI_CONFIG_AMI: c_int = 1 << 6;
pub const DAHDI_CONFIG_B8ZS: c_int = 1 << 7;
/// E1: common-channel signalling (ISDN PRI on timeslot 16) instead of CAS.
pub const DAHDI_CONFIG_CCS: c_int = 1 << 8;
/// E1: HDB3 line code instead of AMI.
pub const DAHDI_CONFIG_HDB3: c_int = 1 << 9;
/// E1: CRC-4 multiframe.
pub const DAHDI_CONFIG_CRC4: c_int = 1 << 10;
pub const DAHDI_CONFIG_NTTE: c_int = 1 << 11;
pub const DAHDI_CONFIG_TERM: c_int = 1 << 12;
/// Send yellow alarm while no channel of the span is open (`yellow` in system.conf).
pub const DAHDI_CONFIG_NOTOPEN: c_int = 1 << 16;

/// Signalling types (`dahdi_params.sigtype`). DAHDI names them from the far end's point of
/// view: an FXO *port* (facing the exchange) runs FXS signalling, an FXS port runs FXO.
pub const DAHDI_SIG_NONE: c_int = 0;
pub const DAHDI_SIG_FXO_BIT: c_int = 1 << 12;
pub const DAHDI_SIG_FXS_BIT: c_int = 1 << 13;
pub const DAHDI_SIG_FXSLS: c_int = (1 << 0) | DAHDI_SIG_FXS_BIT;
pub const DAHDI_SIG_FXSGS: c_int = (1 << 1) | DAHDI_SIG_FXS_BIT;
pub const DAHDI_SIG_FXSKS: c_int = (1 << 2) | DAHDI_SIG_FXS_BIT;
pub const DAHDI_SIG_FXOLS: c_int = (1 << 3) | DAHDI_SIG_FXO_BIT;
pub const DAHDI_SIG_FXOGS: c_int = (1 << 4) | DAHDI_SIG_FXO_BIT;
pub const DAHDI_SIG_FXOKS: c_int = (1 << 5) | DAHDI_SIG_FXO_BIT;
pub const DAHDI_SIG_EM: c_int = 1 << 6;
pub const DAHDI_SIG_CLEAR: c_int = 1 << 7;
pub const DAHDI_SIG_HDLCRAW: c_int = (1 << 8) | DAHDI_SIG_CLEAR;
pub const DAHDI_SIG_HDLCFCS: c_int = (1 << 9) | DAHDI_SIG_HDLCRAW;
pub const DAHDI_SIG_HDLCNET: c_int = (1 << 10) | DAHDI_SIG_HDLCFCS;
pub const DAHDI_SIG_SLAVE: c_int = 1 << 11;
pub const DAHDI_SIG_CAS: c_int = 1 << 15;
pub const DAHDI_SIG_DACS_BIT: c_int = 1 << 16;
/// Cross-connect: DAHDI accepts it (and the HDLC modes) on any channel that can run clear.
pub const DAHDI_SIG_DACS: c_int = DAHDI_SIG_DACS_BIT | DAHDI_SIG_CLEAR;
pub const DAHDI_SIG_EM_E1: c_int = 1 << 17;
pub const DAHDI_SIG_HARDHDLC: c_int = (1 << 19) | DAHDI_SIG_CLEAR;
pub const DAHDI_SIG_MTP2: c_int = (1 << 20) | DAHDI_SIG_HDLCFCS;

/// `struct dahdi_params`: a channel's parameters, filled by `DAHDI_GET_PARAMS`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DahdiParams {
    pub channo: c_int,
    pub spanno: c_int,
    pub chanpos: c_int,
    pub sigtype: c_int,
    pub sigcap: c_int,
    pub rxisoffhook: c_int,
    pub rxbits: c_int,
    pub txbits: c_int,
    pub txhooksig: c_int,
    pub rxhooksig: c_int,
    pub curlaw: c_int,
    pub idlebits: c_int,
    pub name: [u8; 40],
    pub prewinktime: c_int,
    pub preflashtime: c_int,
    pub winktime: c_int,
    pub flashtime: c_int,
    pub starttime: c_int,
    pub rxwinktime: c_int,
    pub rxflashtime: c_int,
    pub debouncetime: c_int,
    pub pulsebreaktime: c_int,
    pub pulsemaketime: c_int,
    pub pulseaftertime: c_int,
    pub chan_alarms: u32,
}

impl DahdiParams {
    /// All fields zero: what the kernel expects before it fills the structure in.
    pub const fn zeroed() -> DahdiParams {
        DahdiParams {
            channo: 0,
            spanno: 0,
            chanpos: 0,
            sigtype: 0,
            sigcap: 0,
            rxisoffhook: 0,
            rxbits: 0,
            txbits: 0,
            txhooksig: 0,
            rxhooksig: 0,
            curlaw: 0,
            idlebits: 0,
            name: [0; 40],
            prewinktime: 0,
            preflashtime: 0,
            winktime: 0,
            flashtime: 0,
            starttime: 0,
            rxwinktime: 0,
            rxflashtime: 0,
            debouncetime: 0,
            pulsebreaktime: 0,
            pulsemaketime: 0,
            pulseaftertime: 0,
            chan_alarms: 0,
        }
    }

    /// The channel's name (e.g. `WCTDM/0/0`), up to the first NUL.
    pub fn name(&self) -> String {
        c_text(&self.name)
    }
}

/// `struct dahdi_spaninfo`: a span's status, filled by `DAHDI_SPANSTAT`. The header declares
/// it `__attribute__((packed))`, so fields must be copied out before use, never borrowed.
#[repr(C, packed)]
#[derive(Clone, Copy, Debug)]
pub struct DahdiSpanInfo {
    pub spanno: c_int,
    pub name: [u8; 20],
    pub desc: [u8; 40],
    pub alarms: c_int,
    pub txlevel: c_int,
    pub rxlevel: c_int,
    pub bpvcount: c_int,
    pub crc4count: c_int,
    pub ebitcount: c_int,
    pub fascount: c_int,
    pub fecount: u32,
    pub cvcount: u32,
    pub becount: u32,
    pub prbs: u32,
    pub errsec: u32,
    pub irqmisses: c_int,
    pub syncsrc: c_int,
    pub numchans: c_int,
    pub totalchans: c_int,
    pub totalspans: c_int,
    pub lbo: c_int,
    pub lineconfig: c_int,
    pub lboname: [u8; 40],
    pub location: [u8; 40],
    pub manufacturer: [u8; 40],
    pub devicetype: [u8; 40],
    pub irq: c_int,
    pub linecompat: c_int,
    pub spantype: [u8; 6],
}

impl DahdiSpanInfo {
    /// A request for span `spanno` (0 asks for the span of the channel the fd is bound to).
    pub const fn request(spanno: c_int) -> DahdiSpanInfo {
        DahdiSpanInfo {
            spanno,
            name: [0; 20],
            desc: [0; 40],
            alarms: 0,
            txlevel: 0,
            rxlevel: 0,
            bpvcount: 0,
            crc4count: 0,
            ebitcount: 0,
            fascount: 0,
            fecount: 0,
            cvcount: 0,
            becount: 0,
            prbs: 0,
            errsec: 0,
            irqmisses: 0,
            syncsrc: 0,
            numchans: 0,
            totalchans: 0,
            totalspans: 0,
            lbo: 0,
            lineconfig: 0,
            lboname: [0; 40],
            location: [0; 40],
            manufacturer: [0; 40],
            devicetype: [0; 40],
            irq: 0,
            linecompat: 0,
            spantype: [0; 6],
        }
    }

    /// The span's short name (e.g. `TE4/0/1`).
    pub fn name(&self) -> String {
        let name = self.name;
        c_text(&name)
    }

    /// The span's description (e.g. `T4XXP (PCI) Card 0 Span 1`).
    pub fn desc(&self) -> String {
        let desc = self.desc;
        c_text(&desc)
    }
}

/// `struct dahdi_bufferinfo`: a channel's buffer policy, set by `DAHDI_SET_BUFINFO`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct DahdiBufferInfo {
    pub txbufpolicy: c_int,
    pub rxbufpolicy: c_int,
    pub numbufs: c_int,
    pub bufsize: c_int,
    pub readbufs: c_int,
    pub writebufs: c_int,
}

/// `struct dahdi_lineconfig`: a span's line settings, sent with `DAHDI_SPANCONFIG` on
/// `/dev/dahdi/ctl` (what a `span=` line of system.conf becomes). Not packed in the header.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DahdiLineConfig {
    /// The span number (0: find the span by `name`).
    pub span: c_int,
    pub name: [u8; 20],
    /// Line build-out, 0-7 (0 for E1 on 120 ohm).
    pub lbo: c_int,
    /// `DAHDI_CONFIG_*` bits: framing, coding, CRC-4.
    pub lineconfig: c_int,
    /// Timing source priority: 1 is the first choice, 0 never.
    pub sync: c_int,
}

impl DahdiLineConfig {
    /// A configuration for span `span` with every other field zero.
    pub const fn for_span(span: c_int) -> DahdiLineConfig {
        DahdiLineConfig { span, name: [0; 20], lbo: 0, lineconfig: 0, sync: 0 }
    }
}

/// `struct dahdi_chanconfig`: a channel's signalling, sent with `DAHDI_CHANCONFIG` on
/// `/dev/dahdi/ctl` (what `bchan=`, `dchan=`, `fxoks=`... lines become). Not packed.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DahdiChanConfig {
    /// The channel number (0: find the channel by `name`).
    pub chan: c_int,
    pub name: [u8; 40],
    /// One of the `DAHDI_SIG_*` values.
    pub sigtype: c_int,
    /// The law the channel starts in (`DAHDI_LAW_*`).
    pub deflaw: c_int,
    /// The master channel of a `DAHDI_SIG_SLAVE` channel; the channel itself otherwise.
    pub master: c_int,
    /// CAS idle bits, or the channel to cross-connect for DACS.
    pub idlebits: c_int,
    /// The network device name of a `DAHDI_SIG_HDLCNET` channel.
    pub netdev_name: [u8; 16],
}

impl DahdiChanConfig {
    /// Channel `chan` with signalling `sigtype`, its own master, in its driver's default law,
    /// as dahdi_cfg fills the structure for a channel that is not a slave.
    pub const fn new(chan: c_int, sigtype: c_int) -> DahdiChanConfig {
        DahdiChanConfig {
            chan,
            name: [0; 40],
            sigtype,
            deflaw: DAHDI_LAW_DEFAULT,
            master: chan,
            idlebits: 0,
            netdev_name: [0; 16],
        }
    }
}

const INT: usize = size_of::<c_int>();

/// `_IOW(DAHDI_CODE, 1, int)`
pub const DAHDI_SET_BLOCKSIZE: IoctlRequest = nix::request_code_write!(DAHDI_CODE, 1, INT);
/// `_IOWR(DAHDI_CODE, 5, struct dahdi_params)`
pub const DAHDI_GET_PARAMS: IoctlRequest =
    nix::request_code_readwrite!(DAHDI_CODE, 5, size_of::<DahdiParams>());
/// `_IOW(DAHDI_CODE, 7, int)`
pub const DAHDI_HOOK: IoctlRequest = nix::request_code_write!(DAHDI_CODE, 7, INT);
/// `_IOR(DAHDI_CODE, 8, int)`
pub const DAHDI_GETEVENT: IoctlRequest = nix::request_code_read!(DAHDI_CODE, 8, INT);
/// `_IOWR(DAHDI_CODE, 10, struct dahdi_spaninfo)`
pub const DAHDI_SPANSTAT: IoctlRequest =
    nix::request_code_readwrite!(DAHDI_CODE, 10, size_of::<DahdiSpanInfo>());
/// `_IOW(DAHDI_CODE, 18, struct dahdi_lineconfig)`
pub const DAHDI_SPANCONFIG: IoctlRequest =
    nix::request_code_write!(DAHDI_CODE, 18, size_of::<DahdiLineConfig>());
/// `_IOW(DAHDI_CODE, 19, struct dahdi_chanconfig)`
pub const DAHDI_CHANCONFIG: IoctlRequest =
    nix::request_code_write!(DAHDI_CODE, 19, size_of::<DahdiChanConfig>());
/// `_IOR(DAHDI_CODE, 27, struct dahdi_bufferinfo)`
pub const DAHDI_GET_BUFINFO: IoctlRequest =
    nix::request_code_read!(DAHDI_CODE, 27, size_of::<DahdiBufferInfo>());
/// `_IOW(DAHDI_CODE, 27, struct dahdi_bufferinfo)`
pub const DAHDI_SET_BUFINFO: IoctlRequest =
    nix::request_code_write!(DAHDI_CODE, 27, size_of::<DahdiBufferInfo>());
/// `_IOW(DAHDI_CODE, 38, int)`
pub const DAHDI_SPECIFY: IoctlRequest = nix::request_code_write!(DAHDI_CODE, 38, INT);
/// `_IOW(DAHDI_CODE, 39, int)`
pub const DAHDI_SETLAW: IoctlRequest = nix::request_code_write!(DAHDI_CODE, 39, INT);
/// `_IOW(DAHDI_CODE, 40, int)`
pub const DAHDI_SETLINEAR: IoctlRequest = nix::request_code_write!(DAHDI_CODE, 40, INT);
/// `_IOW(DAHDI_CODE, 99, int)`
pub const DAHDI_STARTUP: IoctlRequest = nix::request_code_write!(DAHDI_CODE, 99, INT);
/// `_IOW(DAHDI_CODE, 100, int)`
pub const DAHDI_SHUTDOWN: IoctlRequest = nix::request_code_write!(DAHDI_CODE, 100, INT);

/// The raw calls, generated by nix from the request numbers above. They are private: the
/// safe functions below are the interface.
mod sys {
    use super::*;

    nix::ioctl_write_ptr_bad!(set_blocksize, DAHDI_SET_BLOCKSIZE, c_int);
    nix::ioctl_readwrite_bad!(get_params, DAHDI_GET_PARAMS, DahdiParams);
    nix::ioctl_write_ptr_bad!(hook, DAHDI_HOOK, c_int);
    nix::ioctl_read_bad!(get_event, DAHDI_GETEVENT, c_int);
    nix::ioctl_readwrite_bad!(span_stat, DAHDI_SPANSTAT, DahdiSpanInfo);
    nix::ioctl_read_bad!(get_bufinfo, DAHDI_GET_BUFINFO, DahdiBufferInfo);
    nix::ioctl_write_ptr_bad!(set_bufinfo, DAHDI_SET_BUFINFO, DahdiBufferInfo);
    nix::ioctl_write_ptr_bad!(specify, DAHDI_SPECIFY, c_int);
    nix::ioctl_write_ptr_bad!(set_law, DAHDI_SETLAW, c_int);
    nix::ioctl_write_ptr_bad!(set_linear, DAHDI_SETLINEAR, c_int);
    nix::ioctl_write_ptr_bad!(span_config, DAHDI_SPANCONFIG, DahdiLineConfig);
    // The header declares DAHDI_CHANCONFIG write-only, but DAHDI copies the structure back to
    // the caller after applying it, so the call is declared read-write here: the kernel then
    // only ever writes to memory that Rust handed over as mutable.
    nix::ioctl_readwrite_bad!(chan_config, DAHDI_CHANCONFIG, DahdiChanConfig);
    nix::ioctl_write_ptr_bad!(startup, DAHDI_STARTUP, c_int);
    nix::ioctl_write_ptr_bad!(shutdown, DAHDI_SHUTDOWN, c_int);
}

/// Turns an ioctl result into an `io::Result`, reading errno directly so that codes nix does
/// not know (DAHDI's ELAST) survive.
fn check(result: nix::Result<c_int>) -> io::Result<c_int> {
    result.map_err(|errno| {
        let raw = io::Error::last_os_error();
        if raw.raw_os_error().is_some_and(|e| e != 0) {
            raw
        } else {
            io::Error::from(errno)
        }
    })
}

// SAFETY (for every wrapper below): the file descriptor is valid for the duration of the
// borrow, and the pointer passed is to a live value of exactly the type the request number
// encodes, which `tests/abi.rs` checks against the C header. The kernel reads or writes at most
// that many bytes, so no memory outside the value is touched.

/// `DAHDI_SPECIFY`: binds a descriptor opened on `/dev/dahdi/channel` to channel `channo`.
pub fn specify(fd: BorrowedFd<'_>, channo: c_int) -> io::Result<()> {
    check(unsafe { sys::specify(fd.as_raw_fd(), &channo) }).map(drop)
}

/// `DAHDI_SET_BLOCKSIZE`: bytes per read and write (160 for 20 ms of G.711).
pub fn set_blocksize(fd: BorrowedFd<'_>, bytes: c_int) -> io::Result<()> {
    check(unsafe { sys::set_blocksize(fd.as_raw_fd(), &bytes) }).map(drop)
}

/// `DAHDI_SET_BUFINFO`: the buffer policy and the number and size of buffers.
pub fn set_bufinfo(fd: BorrowedFd<'_>, info: &DahdiBufferInfo) -> io::Result<()> {
    check(unsafe { sys::set_bufinfo(fd.as_raw_fd(), info) }).map(drop)
}

/// `DAHDI_GET_BUFINFO`.
pub fn get_bufinfo(fd: BorrowedFd<'_>) -> io::Result<DahdiBufferInfo> {
    let mut info = DahdiBufferInfo::default();
    check(unsafe { sys::get_bufinfo(fd.as_raw_fd(), &mut info) })?;
    Ok(info)
}

/// `DAHDI_SETLAW`: one of the `DAHDI_LAW_*` values.
pub fn set_law(fd: BorrowedFd<'_>, law: c_int) -> io::Result<()> {
    check(unsafe { sys::set_law(fd.as_raw_fd(), &law) }).map(drop)
}

/// `DAHDI_SETLINEAR`: 0 keeps the channel in its companding law, non-zero exchanges 16-bit
/// linear samples.
pub fn set_linear(fd: BorrowedFd<'_>, linear: c_int) -> io::Result<()> {
    check(unsafe { sys::set_linear(fd.as_raw_fd(), &linear) }).map(drop)
}

/// `DAHDI_GET_PARAMS` for channel `channo` (0: the channel the descriptor is bound to).
pub fn get_params(fd: BorrowedFd<'_>, channo: c_int) -> io::Result<DahdiParams> {
    let mut params = DahdiParams::zeroed();
    params.channo = channo;
    check(unsafe { sys::get_params(fd.as_raw_fd(), &mut params) })?;
    Ok(params)
}

/// `DAHDI_HOOK`: one of the `DAHDI_ONHOOK`..`DAHDI_RINGOFF` values. On a non-blocking
/// descriptor DAHDI answers EINPROGRESS for the commands that take time (ring, flash, wink):
/// that is success, the command runs in the kernel.
pub fn hook(fd: BorrowedFd<'_>, value: c_int) -> io::Result<()> {
    match check(unsafe { sys::hook(fd.as_raw_fd(), &value) }) {
        Ok(_) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok(()),
        Err(e) => Err(e),
    }
}

/// `DAHDI_GETEVENT`: the next queued event, or `DAHDI_EVENT_NONE`.
pub fn get_event(fd: BorrowedFd<'_>) -> io::Result<c_int> {
    let mut event: c_int = DAHDI_EVENT_NONE;
    check(unsafe { sys::get_event(fd.as_raw_fd(), &mut event) })?;
    Ok(event)
}

/// `DAHDI_SPANSTAT` for span `spanno` (0: the span of the channel the descriptor is bound to).
pub fn span_stat(fd: BorrowedFd<'_>, spanno: c_int) -> io::Result<DahdiSpanInfo> {
    let mut info = DahdiSpanInfo::request(spanno);
    check(unsafe { sys::span_stat(fd.as_raw_fd(), &mut info) })?;
    Ok(info)
}

/// `DAHDI_SPANCONFIG` on `/dev/dahdi/ctl`: a span's framing, coding, CRC-4, build-out and
/// timing priority. The span's driver applies them at once if the span is running.
pub fn span_config(fd: BorrowedFd<'_>, config: &DahdiLineConfig) -> io::Result<()> {
    check(unsafe { sys::span_config(fd.as_raw_fd(), config) }).map(drop)
}

/// `DAHDI_CHANCONFIG` on `/dev/dahdi/ctl`: a channel's signalling. DAHDI hangs the channel
/// up when it applies it.
pub fn chan_config(fd: BorrowedFd<'_>, config: &DahdiChanConfig) -> io::Result<()> {
    // A copy, because the kernel writes the structure back.
    let mut copy = *config;
    check(unsafe { sys::chan_config(fd.as_raw_fd(), &mut copy) }).map(drop)
}

/// `DAHDI_STARTUP` on `/dev/dahdi/ctl`: starts span `spanno` (a running span is left as it
/// is).
pub fn startup(fd: BorrowedFd<'_>, spanno: c_int) -> io::Result<()> {
    check(unsafe { sys::startup(fd.as_raw_fd(), &spanno) }).map(drop)
}

/// `DAHDI_SHUTDOWN` on `/dev/dahdi/ctl`: stops span `spanno` and unconfigures its channels.
pub fn shutdown(fd: BorrowedFd<'_>, spanno: c_int) -> io::Result<()> {
    check(unsafe { sys::shutdown(fd.as_raw_fd(), &spanno) }).map(drop)
}

/// The text of a NUL-terminated C character array, lossily decoded.
pub fn c_text(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// The name `/proc/dahdi` and sysfs show for a signalling type (DAHDI's `sigstr`).
pub fn sig_name(sigtype: c_int) -> &'static str {
    match sigtype {
        DAHDI_SIG_FXSLS => "FXSLS",
        DAHDI_SIG_FXSKS => "FXSKS",
        DAHDI_SIG_FXSGS => "FXSGS",
        DAHDI_SIG_FXOLS => "FXOLS",
        DAHDI_SIG_FXOKS => "FXOKS",
        DAHDI_SIG_FXOGS => "FXOGS",
        DAHDI_SIG_EM => "E&M",
        DAHDI_SIG_EM_E1 => "E&M-E1",
        DAHDI_SIG_CLEAR => "Clear",
        DAHDI_SIG_HDLCRAW => "HDLCRAW",
        DAHDI_SIG_HDLCFCS => "HDLCFCS",
        DAHDI_SIG_HDLCNET => "HDLCNET",
        DAHDI_SIG_HARDHDLC => "Hardware-assisted HDLC",
        DAHDI_SIG_MTP2 => "MTP2",
        DAHDI_SIG_SLAVE => "Slave",
        DAHDI_SIG_CAS => "CAS",
        _ => "Unconfigured",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    // The request type is `c_ulong` here but `c_int` on musl, so the casts are not the same
    // everywhere.
    #[allow(clippy::unnecessary_cast)]
    fn request_numbers_follow_the_linux_encoding() {
        // _IOW(0xDA, 38, int) on Linux: write direction 1, size 4, type 0xDA, number 38. The
        // full comparison against the C header is in tests/abi.rs.
        if cfg!(any(target_arch = "x86_64", target_arch = "aarch64", target_arch = "x86")) {
            assert_eq!(DAHDI_SPECIFY as u64, 0x4004_DA26);
            assert_eq!(DAHDI_GETEVENT as u64, 0x8004_DA08);
        }
    }

    #[test]
    fn c_text_stops_at_the_first_nul() {
        assert_eq!(c_text(b"TE4/0/1\0junk"), "TE4/0/1");
        assert_eq!(c_text(b"full"), "full");
    }
}
