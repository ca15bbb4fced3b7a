//! The ABI mirror against the real header: a C program built from DAHDI's own `user.h`
//! prints the size and every field offset of each structure we mirror and the value of every
//! ioctl number and constant we use, and each must equal the Rust side.
//!
//! The header comes from Debian's dahdi-source package (`/usr/src/dahdi.tar.bz2`), which CI
//! installs through `.ci/deps`. Without it the test fails and says so, rather than passing
//! without having checked anything.

use std::collections::BTreeMap;
use std::mem::{offset_of, size_of};
use std::path::{Path, PathBuf};
use std::process::Command;

use switchboard_driver_dahdi::abi::*;

/// Where dahdi-source puts the kernel tree; `DAHDI_SOURCE_TARBALL` overrides it.
const TARBALL: &str = "/usr/src/dahdi.tar.bz2";
const HEADERS: [&str; 2] =
    ["modules/dahdi/include/dahdi/user.h", "modules/dahdi/include/dahdi/dahdi_config.h"];

/// The checks: a C expression and the value the Rust side has for it.
fn checks() -> Vec<(String, i128)> {
    let mut v: Vec<(String, i128)> = Vec::new();
    macro_rules! c {
        ($($name:ident),* $(,)?) => { $( v.push((stringify!($name).to_string(), $name as i128)); )* };
    }
    macro_rules! layout {
        ($rust:ty, $c:literal, [$($field:ident),* $(,)?]) => {
            v.push((format!("sizeof(struct {})", $c), size_of::<$rust>() as i128));
            $( v.push((format!("offsetof(struct {}, {})", $c, stringify!($field)), offset_of!($rust, $field) as i128)); )*
        };
    }
    layout!(
        DahdiParams,
        "dahdi_params",
        [
            channo,
            spanno,
            chanpos,
            sigtype,
            sigcap,
            rxisoffhook,
            rxbits,
            txbits,
            txhooksig,
            rxhooksig,
            curlaw,
            idlebits,
            name,
            prewinktime,
            preflashtime,
            winktime,
            flashtime,
            starttime,
            rxwinktime,
            rxflashtime,
            debouncetime,
            pulsebreaktime,
            pulsemaketime,
            pulseaftertime,
            chan_alarms,
        ]
    );
    layout!(
        DahdiSpanInfo,
        "dahdi_spaninfo",
        [
            spanno,
            name,
            desc,
            alarms,
            txlevel,
            rxlevel,
            bpvcount,
            crc4count,
            ebitcount,
            fascount,
            fecount,
            cvcount,
            becount,
            prbs,
            errsec,
            irqmisses,
            syncsrc,
            numchans,
            totalchans,
            totalspans,
            lbo,
            lineconfig,
            lboname,
            location,
            manufacturer,
            devicetype,
            irq,
            linecompat,
            spantype,
        ]
    );
    layout!(
        DahdiBufferInfo,
        "dahdi_bufferinfo",
        [txbufpolicy, rxbufpolicy, numbufs, bufsize, readbufs, writebufs,]
    );
    layout!(DahdiLineConfig, "dahdi_lineconfig", [span, name, lbo, lineconfig, sync]);
    layout!(
        DahdiChanConfig,
        "dahdi_chanconfig",
        [chan, name, sigtype, deflaw, master, idlebits, netdev_name]
    );
    c!(
        DAHDI_SPANCONFIG,
        DAHDI_CHANCONFIG,
        DAHDI_STARTUP,
        DAHDI_SHUTDOWN,
        DAHDI_CONFIG_TXLEVEL,
        DAHDI_CONFIG_D4,
        DAHDI_CONFIG_ESF,
        DAHDI_CONFIG_AMI,
        DAHDI_CONFIG_B8ZS,
        DAHDI_CONFIG_CCS,
        DAHDI_CONFIG_HDB3,
        DAHDI_CONFIG_CRC4,
        DAHDI_CONFIG_NTTE,
        DAHDI_CONFIG_TERM,
        DAHDI_CONFIG_NOTOPEN,
        DAHDI_SIG_DACS,
    );
    c!(
        DAHDI_SET_BLOCKSIZE,
        DAHDI_GET_PARAMS,
        DAHDI_HOOK,
        DAHDI_GETEVENT,
        DAHDI_SPANSTAT,
        DAHDI_GET_BUFINFO,
        DAHDI_SET_BUFINFO,
        DAHDI_SPECIFY,
        DAHDI_SETLAW,
        DAHDI_SETLINEAR,
    );
    c!(
        ELAST,
        DAHDI_CODE,
        DAHDI_MAX_BLOCKSIZE,
        DAHDI_MAX_NUM_BUFS,
        DAHDI_MAX_BUF_SPACE,
        DAHDI_MAX_EVENTSIZE,
        DAHDI_POLICY_IMMEDIATE,
        DAHDI_POLICY_WHEN_FULL,
        DAHDI_LAW_DEFAULT,
        DAHDI_LAW_MULAW,
        DAHDI_LAW_ALAW,
        DAHDI_ONHOOK,
        DAHDI_OFFHOOK,
        DAHDI_WINK,
        DAHDI_FLASH,
        DAHDI_START,
        DAHDI_RING,
        DAHDI_RINGOFF,
        DAHDI_EVENT_NONE,
        DAHDI_EVENT_ONHOOK,
        DAHDI_EVENT_RINGOFFHOOK,
        DAHDI_EVENT_WINKFLASH,
        DAHDI_EVENT_ALARM,
        DAHDI_EVENT_NOALARM,
        DAHDI_EVENT_ABORT,
        DAHDI_EVENT_OVERRUN,
        DAHDI_EVENT_BADFCS,
        DAHDI_EVENT_DIALCOMPLETE,
        DAHDI_EVENT_RINGERON,
        DAHDI_EVENT_RINGEROFF,
        DAHDI_EVENT_HOOKCOMPLETE,
        DAHDI_EVENT_BITSCHANGED,
        DAHDI_EVENT_PULSE_START,
        DAHDI_EVENT_POLARITY,
        DAHDI_EVENT_RINGBEGIN,
        DAHDI_EVENT_REMOVED,
        DAHDI_EVENT_READ_OVERRUN,
        DAHDI_EVENT_WRITE_UNDERRUN,
        DAHDI_EVENT_PULSEDIGIT,
        DAHDI_EVENT_DTMFDOWN,
        DAHDI_EVENT_DTMFUP,
        DAHDI_ALARM_NONE,
        DAHDI_ALARM_RECOVER,
        DAHDI_ALARM_LOOPBACK,
        DAHDI_ALARM_YELLOW,
        DAHDI_ALARM_RED,
        DAHDI_ALARM_BLUE,
        DAHDI_ALARM_NOTOPEN,
        DAHDI_ALARM_LOS,
        DAHDI_ALARM_LFA,
        DAHDI_ALARM_LMFA,
        DAHDI_SIG_NONE,
        DAHDI_SIG_FXSLS,
        DAHDI_SIG_FXSGS,
        DAHDI_SIG_FXSKS,
        DAHDI_SIG_FXOLS,
        DAHDI_SIG_FXOGS,
        DAHDI_SIG_FXOKS,
        DAHDI_SIG_EM,
        DAHDI_SIG_CLEAR,
        DAHDI_SIG_HDLCRAW,
        DAHDI_SIG_HDLCFCS,
        DAHDI_SIG_HDLCNET,
        DAHDI_SIG_SLAVE,
        DAHDI_SIG_CAS,
        DAHDI_SIG_EM_E1,
        DAHDI_SIG_HARDHDLC,
        DAHDI_SIG_MTP2,
    );
    // The header's reserved names for the FXO/FXS signalling bits.
    v.push(("__DAHDI_SIG_FXO".into(), DAHDI_SIG_FXO_BIT as i128));
    v.push(("__DAHDI_SIG_FXS".into(), DAHDI_SIG_FXS_BIT as i128));
    v.push(("__DAHDI_SIG_DACS".into(), DAHDI_SIG_DACS_BIT as i128));
    v
}

fn tarball() -> PathBuf {
    let path = std::env::var_os("DAHDI_SOURCE_TARBALL").map_or_else(|| PathBuf::from(TARBALL), PathBuf::from);
    assert!(
        path.is_file(),
        "{} is missing: the ABI test needs DAHDI's user.h from Debian's dahdi-source package; \
         install it with `apt-get install dahdi-source` (or run .ci/deps), or point \
         DAHDI_SOURCE_TARBALL at a DAHDI source tarball",
        path.display()
    );
    path
}

fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Values of the C expressions, computed by a program compiled against the header.
fn c_values(include: &Path, dir: &Path, exprs: &[&str]) -> BTreeMap<String, i128> {
    let mut src =
        String::from("#include <stdio.h>\n#include <stddef.h>\n#include <dahdi/user.h>\nint main(void) {\n");
    for (i, e) in exprs.iter().enumerate() {
        src.push_str(&format!("    printf(\"%d %lld\\n\", {i}, (long long)({e}));\n"));
    }
    src.push_str("    return 0;\n}\n");
    let c_file = dir.join("abi.c");
    let exe = dir.join("abi");
    std::fs::write(&c_file, src).unwrap();
    run(Command::new("cc").arg("-std=gnu11").arg("-I").arg(include).arg("-o").arg(&exe).arg(&c_file), "cc");
    let out = run(&mut Command::new(&exe), "the compiled ABI program");
    let mut values = BTreeMap::new();
    for line in out.lines() {
        let (i, v) = line.split_once(' ').unwrap();
        let i: usize = i.parse().unwrap();
        values.insert(exprs[i].to_string(), v.parse::<i128>().unwrap());
    }
    values
}

#[test]
fn structures_ioctls_and_constants_match_dahdi_user_h() {
    let tarball = tarball();
    let dir = tempfile::tempdir().unwrap();
    run(
        Command::new("tar").arg("-xjf").arg(&tarball).arg("-C").arg(dir.path()).args(HEADERS),
        "tar (extracting user.h from the dahdi-source tarball)",
    );
    let include = dir.path().join("modules/dahdi/include");
    let checks = checks();
    let exprs: Vec<&str> = checks.iter().map(|(e, _)| e.as_str()).collect();
    let c = c_values(&include, dir.path(), &exprs);

    let mut wrong = Vec::new();
    for (expr, rust) in &checks {
        let Some(&cv) = c.get(expr) else {
            wrong.push(format!("{expr}: not printed by the C program"));
            continue;
        };
        // The ioctl numbers are unsigned in Rust and may be printed negative by C when the
        // top bit is set; compare them as 32-bit patterns.
        let same = cv == *rust
            || (cv as u32 == *rust as u32 && expr.starts_with("DAHDI_") && *rust > i32::MAX as i128);
        if !same {
            wrong.push(format!("{expr}: C says {cv} ({cv:#x}), Rust has {rust} ({rust:#x})"));
        }
    }
    assert!(wrong.is_empty(), "the Rust mirror of user.h differs from the header:\n{}", wrong.join("\n"));
    assert!(checks.len() > 100, "every mirrored item is checked ({} checks)", checks.len());
}
