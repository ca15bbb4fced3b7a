//! libpri (Debian libpri-dev) as an independent Q.921/Q.931 peer for tests.
//!
//! [`Peer`] owns one libpri instance created with `pri_new_cb` on a file descriptor, normally
//! one end of a `socketpair(AF_UNIX, SOCK_SEQPACKET)`. The read and write callbacks behave
//! like DAHDI's D-channel: a frame read carries two FCS octets (libpri strips them without
//! looking), and a frame written has two spare octets at the end, which the callback fills
//! with the FCS as the HDLC controller would. libpri is not thread-safe: a `Peer` stays on the
//! thread that made it (it is not `Send`).

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::os::fd::RawFd;
use std::sync::Once;
use std::time::Duration;

mod ffi {
    use std::ffi::{c_char, c_int, c_void};

    #[repr(C)]
    pub struct Pri {
        _private: [u8; 0],
    }

    #[repr(C)]
    pub struct PriSr {
        _private: [u8; 0],
    }

    #[repr(C)]
    pub struct Timeval {
        pub tv_sec: libc::time_t,
        pub tv_usec: libc::suseconds_t,
    }

    /// Mirrors `struct sb_event` in shim.c.
    #[repr(C)]
    pub struct SbEvent {
        pub e: c_int,
        pub channel: c_int,
        pub cause: c_int,
        pub cref: c_int,
        pub complete: c_int,
        pub calling_pres: c_int,
        pub calling_plan: c_int,
        pub called_plan: c_int,
        pub progress: c_int,
        pub call: *mut c_void,
        pub calling: [c_char; 64],
        pub called: [c_char; 64],
    }

    pub type IoCb = extern "C" fn(*mut Pri, *mut c_void, c_int) -> c_int;
    pub type MsgCb = extern "C" fn(*mut Pri, *mut c_char);

    extern "C" {
        pub fn sb_flatten(ev: *const c_void, out: *mut SbEvent);

        pub fn pri_new_cb(
            fd: c_int,
            nodetype: c_int,
            switchtype: c_int,
            io_read: IoCb,
            io_write: IoCb,
            userdata: *mut c_void,
        ) -> *mut Pri;
        pub fn pri_set_debug(pri: *mut Pri, debug: c_int);
        pub fn pri_set_message(cb: MsgCb);
        pub fn pri_set_error(cb: MsgCb);
        pub fn pri_set_overlapdial(pri: *mut Pri, state: c_int);
        pub fn pri_set_timer(pri: *mut Pri, timer: c_int, value: c_int) -> c_int;
        pub fn pri_timer2idx(name: *const c_char) -> c_int;
        pub fn pri_fd(pri: *mut Pri) -> c_int;
        pub fn pri_check_event(pri: *mut Pri) -> *const c_void;
        pub fn pri_schedule_next(pri: *mut Pri) -> *const Timeval;
        pub fn pri_schedule_run(pri: *mut Pri) -> *const c_void;
        pub fn pri_new_call(pri: *mut Pri) -> *mut c_void;
        pub fn pri_sr_new() -> *mut PriSr;
        pub fn pri_sr_free(sr: *mut PriSr);
        pub fn pri_sr_set_channel(sr: *mut PriSr, channel: c_int, exclusive: c_int, nonisdn: c_int) -> c_int;
        pub fn pri_sr_set_bearer(sr: *mut PriSr, transmode: c_int, userl1: c_int) -> c_int;
        pub fn pri_sr_set_called(sr: *mut PriSr, called: *mut c_char, plan: c_int, complete: c_int) -> c_int;
        pub fn pri_sr_set_caller(
            sr: *mut PriSr,
            caller: *mut c_char,
            name: *mut c_char,
            plan: c_int,
            pres: c_int,
        ) -> c_int;
        pub fn pri_setup(pri: *mut Pri, call: *mut c_void, sr: *mut PriSr) -> c_int;
        pub fn pri_acknowledge(pri: *mut Pri, call: *mut c_void, channel: c_int, info: c_int) -> c_int;
        pub fn pri_proceeding(pri: *mut Pri, call: *mut c_void, channel: c_int, info: c_int) -> c_int;
        pub fn pri_need_more_info(pri: *mut Pri, call: *mut c_void, channel: c_int, nonisdn: c_int) -> c_int;
        pub fn pri_answer(pri: *mut Pri, call: *mut c_void, channel: c_int, nonisdn: c_int) -> c_int;
        pub fn pri_information(pri: *mut Pri, call: *mut c_void, digit: c_char) -> c_int;
        pub fn pri_hangup(pri: *mut Pri, call: *mut c_void, cause: c_int) -> c_int;
        pub fn pri_reset(pri: *mut Pri, channel: c_int) -> c_int;
    }
}

pub const PRI_NETWORK: c_int = 1;
pub const PRI_CPE: c_int = 2;
pub const PRI_SWITCH_EUROISDN_E1: c_int = 5;
pub const PRI_DEBUG_Q921_RAW: c_int = 1 << 0;
pub const PRI_DEBUG_Q921_STATE: c_int = 1 << 2;
pub const PRI_DEBUG_Q931_DUMP: c_int = 1 << 5;
pub const PRI_DEBUG_Q931_STATE: c_int = 1 << 6;
pub const PRI_DEBUG_Q931_ANOMALY: c_int = 1 << 7;
const PRI_TRANS_CAP_SPEECH: c_int = 0;
const PRI_LAYER_1_ALAW: c_int = 0x23;

/// Which side libpri plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Node {
    Network,
    Cpe,
}

/// A libpri call (its opaque `q931_call` pointer, compared by address).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Call(usize);

impl Call {
    fn ptr(self) -> *mut c_void {
        self.0 as *mut c_void
    }
}

/// libpri's events, with the fields the tests use. Channels are the wire channel numbers
/// (E1 timeslots), with libpri's span and flag bits removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    DchanUp,
    DchanDown,
    Restart {
        channel: i32,
    },
    RestartAck {
        channel: i32,
    },
    Ring {
        call: Call,
        channel: i32,
        calling: String,
        calling_pres: i32,
        calling_plan: i32,
        called: String,
        called_plan: i32,
        complete: bool,
    },
    InfoReceived {
        call: Call,
        digits: String,
        complete: bool,
    },
    KeypadDigit {
        call: Call,
        digits: String,
    },
    Hangup {
        call: Call,
        channel: i32,
        cause: i32,
    },
    HangupReq {
        call: Call,
        cause: i32,
    },
    HangupAck {
        call: Call,
        cause: i32,
    },
    Ringing {
        call: Call,
        channel: i32,
    },
    Answer {
        call: Call,
        channel: i32,
    },
    Proceeding {
        call: Call,
        channel: i32,
    },
    Progress {
        call: Call,
    },
    SetupAck {
        call: Call,
        channel: i32,
    },
    ConnectAck {
        call: Call,
    },
    Other(i32),
}

/// What libpri puts in a SETUP it sends.
#[derive(Clone, Debug)]
pub struct Setup {
    pub called: String,
    /// libpri's plan octet: type of number << 4 | numbering plan (0x21 national E.164).
    pub called_plan: i32,
    pub complete: bool,
    pub calling: Option<String>,
    pub calling_plan: i32,
    /// libpri's presentation value (0x00 allowed, 0x20 restricted, plus screening bits).
    pub calling_pres: i32,
    /// Wire channel number (timeslot); 0 lets the far end choose.
    pub channel: i32,
    pub exclusive: bool,
}

/// The FCS an HDLC controller appends (CRC-16/X.25), computed bit by bit here so that it is
/// independent of the stack under test.
pub fn hdlc_fcs(data: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &byte in data {
        let mut b = byte;
        for _ in 0..8 {
            let mix = (crc ^ u16::from(b)) & 1;
            crc >>= 1;
            if mix != 0 {
                crc ^= 0x8408;
            }
            b >>= 1;
        }
    }
    !crc
}

extern "C" fn read_cb(pri: *mut ffi::Pri, buf: *mut c_void, len: c_int) -> c_int {
    // SAFETY: libpri passes its own instance and a buffer of `len` bytes.
    unsafe {
        let fd = ffi::pri_fd(pri);
        let n = libc::recv(fd, buf, len.max(0) as usize, libc::MSG_DONTWAIT);
        if n < 0 {
            0
        } else {
            n as c_int
        }
    }
}

extern "C" fn write_cb(pri: *mut ffi::Pri, buf: *mut c_void, len: c_int) -> c_int {
    if len < 2 {
        return 0;
    }
    // SAFETY: libpri passes a frame of `len` bytes whose last two are room for the FCS.
    unsafe {
        let frame = std::slice::from_raw_parts_mut(buf as *mut u8, len as usize);
        let body = frame.len() - 2;
        let fcs = hdlc_fcs(&frame[..body]).to_le_bytes();
        frame[body..].copy_from_slice(&fcs);
        let fd = ffi::pri_fd(pri);
        let n = libc::send(fd, buf, len as usize, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL);
        if n < 0 {
            0
        } else {
            n as c_int
        }
    }
}

extern "C" fn message_cb(_pri: *mut ffi::Pri, text: *mut c_char) {
    if std::env::var_os("SWITCHBOARD_PRI_DEBUG").is_some() && !text.is_null() {
        // SAFETY: libpri passes a NUL-terminated string.
        let s = unsafe { CStr::from_ptr(text) };
        eprint!("libpri: {}", s.to_string_lossy());
    }
}

static QUIET: Once = Once::new();

fn c_string(s: &str) -> CString {
    CString::new(s.replace('\0', "")).unwrap_or_default()
}

fn text(chars: &[c_char; 64]) -> String {
    let bytes: Vec<u8> = chars.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// One libpri instance. There is no way to free one in libpri 1.6, so dropping a `Peer`
/// leaks it (fine in tests); the file descriptor is not closed either, it belongs to the
/// caller.
pub struct Peer {
    pri: *mut ffi::Pri,
}

impl Peer {
    /// Starts libpri on `fd` as `node`, EuroISDN E1. libpri starts Q.921 establishment at
    /// once.
    pub fn new(fd: RawFd, node: Node) -> Peer {
        QUIET.call_once(|| unsafe {
            ffi::pri_set_message(message_cb);
            ffi::pri_set_error(message_cb);
        });
        let nodetype = match node {
            Node::Network => PRI_NETWORK,
            Node::Cpe => PRI_CPE,
        };
        // SAFETY: the callbacks match libpri's pri_io_cb type; userdata is unused.
        let pri = unsafe {
            ffi::pri_new_cb(fd, nodetype, PRI_SWITCH_EUROISDN_E1, read_cb, write_cb, std::ptr::null_mut())
        };
        assert!(!pri.is_null(), "pri_new_cb failed");
        let mut peer = Peer { pri };
        if std::env::var_os("SWITCHBOARD_PRI_DEBUG").is_some() {
            peer.set_debug(
                PRI_DEBUG_Q921_STATE | PRI_DEBUG_Q931_DUMP | PRI_DEBUG_Q931_STATE | PRI_DEBUG_Q931_ANOMALY,
            );
        }
        peer
    }

    pub fn set_debug(&mut self, bits: c_int) {
        unsafe { ffi::pri_set_debug(self.pri, bits) }
    }

    /// Overlap dialing: libpri reports SETUPs without sending complete and INFORMATION.
    pub fn set_overlap_dial(&mut self, on: bool) {
        unsafe { ffi::pri_set_overlapdial(self.pri, c_int::from(on)) }
    }

    /// Sets a timer by libpri's name ("T200", "T303", ...), in milliseconds.
    pub fn set_timer(&mut self, name: &str, ms: i32) -> bool {
        let n = c_string(name);
        unsafe {
            let idx = ffi::pri_timer2idx(n.as_ptr());
            idx >= 0 && ffi::pri_set_timer(self.pri, idx, ms) == 0
        }
    }

    pub fn fd(&self) -> RawFd {
        unsafe { ffi::pri_fd(self.pri) }
    }

    /// Reads one frame from the descriptor (call when it is readable) and returns the event
    /// it caused, if any.
    pub fn check_event(&mut self) -> Option<Event> {
        let ev = unsafe { ffi::pri_check_event(self.pri) };
        Self::event(ev)
    }

    /// How long until libpri's next timer, if one runs.
    pub fn next_timeout(&self) -> Option<Duration> {
        unsafe {
            let tv = ffi::pri_schedule_next(self.pri);
            if tv.is_null() {
                return None;
            }
            let mut now = libc::timeval { tv_sec: 0, tv_usec: 0 };
            libc::gettimeofday(&mut now, std::ptr::null_mut());
            let due = (*tv).tv_sec as i64 * 1_000_000 + (*tv).tv_usec as i64;
            let now = now.tv_sec * 1_000_000 + now.tv_usec;
            Some(Duration::from_micros(due.saturating_sub(now).max(0) as u64))
        }
    }

    /// Runs libpri's due timers.
    pub fn schedule_run(&mut self) -> Option<Event> {
        let ev = unsafe { ffi::pri_schedule_run(self.pri) };
        Self::event(ev)
    }

    fn event(ev: *const c_void) -> Option<Event> {
        if ev.is_null() {
            return None;
        }
        let mut f = ffi::SbEvent {
            e: 0,
            channel: 0,
            cause: 0,
            cref: 0,
            complete: 0,
            calling_pres: 0,
            calling_plan: 0,
            called_plan: 0,
            progress: 0,
            call: std::ptr::null_mut(),
            calling: [0; 64],
            called: [0; 64],
        };
        // SAFETY: `ev` is libpri's event, valid until its next call; the shim copies it.
        unsafe { ffi::sb_flatten(ev, &mut f) };
        let call = Call(f.call as usize);
        let channel = if f.channel < 0 { f.channel } else { f.channel & 0xFF };
        Some(match f.e {
            1 => Event::DchanUp,
            2 => Event::DchanDown,
            3 => Event::Restart { channel },
            5 => Event::Ring {
                call,
                channel,
                calling: text(&f.calling),
                calling_pres: f.calling_pres,
                calling_plan: f.calling_plan,
                called: text(&f.called),
                called_plan: f.called_plan,
                complete: f.complete != 0,
            },
            6 => Event::Hangup { call, channel, cause: f.cause },
            7 => Event::Ringing { call, channel },
            8 => Event::Answer { call, channel },
            9 => Event::HangupAck { call, cause: f.cause },
            10 => Event::RestartAck { channel },
            12 => Event::InfoReceived { call, digits: text(&f.called), complete: f.complete != 0 },
            13 => Event::Proceeding { call, channel },
            14 => Event::SetupAck { call, channel },
            15 => Event::HangupReq { call, cause: f.cause },
            17 => Event::Progress { call },
            18 => Event::KeypadDigit { call, digits: text(&f.called) },
            27 => Event::ConnectAck { call },
            other => Event::Other(other),
        })
    }

    /// Places a call.
    pub fn call(&mut self, setup: &Setup) -> Option<Call> {
        unsafe {
            let call = ffi::pri_new_call(self.pri);
            if call.is_null() {
                return None;
            }
            let sr = ffi::pri_sr_new();
            if sr.is_null() {
                return None;
            }
            let mut called = c_string(&setup.called).into_bytes_with_nul();
            let mut calling = setup.calling.as_deref().map(|c| c_string(c).into_bytes_with_nul());
            let mut name = vec![0u8];
            ffi::pri_sr_set_channel(sr, setup.channel, c_int::from(setup.exclusive), 0);
            ffi::pri_sr_set_bearer(sr, PRI_TRANS_CAP_SPEECH, PRI_LAYER_1_ALAW);
            ffi::pri_sr_set_called(
                sr,
                called.as_mut_ptr() as *mut c_char,
                setup.called_plan,
                c_int::from(setup.complete),
            );
            if let Some(c) = calling.as_mut() {
                ffi::pri_sr_set_caller(
                    sr,
                    c.as_mut_ptr() as *mut c_char,
                    name.as_mut_ptr() as *mut c_char,
                    setup.calling_plan,
                    setup.calling_pres,
                );
            }
            let res = ffi::pri_setup(self.pri, call, sr);
            ffi::pri_sr_free(sr);
            (res == 0).then_some(Call(call as usize))
        }
    }

    /// ALERTING (`pri_acknowledge`, in-band information available).
    pub fn alerting(&mut self, call: Call, channel: i32) -> i32 {
        unsafe { ffi::pri_acknowledge(self.pri, call.ptr(), channel, 1) }
    }

    pub fn proceeding(&mut self, call: Call, channel: i32) -> i32 {
        unsafe { ffi::pri_proceeding(self.pri, call.ptr(), channel, 0) }
    }

    /// SETUP ACKNOWLEDGE: more digits, please.
    pub fn need_more_info(&mut self, call: Call, channel: i32) -> i32 {
        unsafe { ffi::pri_need_more_info(self.pri, call.ptr(), channel, 0) }
    }

    pub fn answer(&mut self, call: Call, channel: i32) -> i32 {
        unsafe { ffi::pri_answer(self.pri, call.ptr(), channel, 0) }
    }

    /// Sends one overlap digit (INFORMATION).
    pub fn information(&mut self, call: Call, digit: char) -> i32 {
        unsafe { ffi::pri_information(self.pri, call.ptr(), digit as u8 as c_char) }
    }

    pub fn hangup(&mut self, call: Call, cause: i32) -> i32 {
        unsafe { ffi::pri_hangup(self.pri, call.ptr(), cause) }
    }

    /// RESTART of one channel (wire channel number).
    pub fn reset(&mut self, channel: i32) -> i32 {
        unsafe { ffi::pri_reset(self.pri, channel) }
    }
}
