//! Detection from fixture trees: `/proc/dahdi` as DAHDI prints it for a TE420 (four E1 spans:
//! one running PRI, one in red alarm, two unconfigured) and a TDM410P (two FXS and two FXO
//! modules), and the same machine as DAHDI's sysfs buses describe it.

use std::fs;
use std::path::{Path, PathBuf};

use switchboard_driver_api::ChannelKind;
use switchboard_driver_dahdi::{detect, proc, sysfs, Source};

fn machine() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/machine")
}

#[test]
fn proc_dahdi_of_a_te420_and_a_tdm410p() {
    let d = proc::read(&machine()).unwrap();
    assert_eq!(d.source, Some(Source::Proc));
    assert_eq!(d.spans.len(), 5);

    let s1 = &d.spans[0];
    assert_eq!((s1.spanno, s1.name.as_str()), (1, "TE4/0/1"));
    assert_eq!(s1.description, "T4XXP (PCI) Card 0 Span 1");
    assert_eq!(s1.lineconfig.as_deref(), Some("HDB3/CCS/CRC4"));
    assert!(s1.sync_master && s1.alarms.is_empty());
    assert!(s1.is_digital() && s1.is_e1());
    assert_eq!(s1.channels.len(), 31);
    let d16 = &s1.channels[15];
    assert_eq!((d16.channo, d16.chanpos, d16.name.as_str()), (16, 16, "TE4/0/1/16"));
    assert_eq!(d16.signalling.as_deref(), Some("HDLCFCS"));
    assert_eq!(d16.port_kind(), Some(ChannelKind::E1Signalling));
    assert_eq!(s1.channels[0].port_kind(), Some(ChannelKind::E1Bearer));
    assert!(s1.channels[0].in_use);

    let s2 = &d.spans[1];
    assert_eq!(s2.alarms, ["RED"]);
    assert_eq!(s2.channels[0].channo, 32);
    assert_eq!(s2.channels[0].alarms, ["RED"]);
    assert!(!s2.channels[0].in_use);

    let s3 = &d.spans[2];
    assert!(s3.lineconfig.is_none());
    assert!(s3.channels.iter().all(|c| c.signalling.is_none()));
    assert_eq!(s3.channels.len(), 31);
    assert!(s3.is_e1(), "31 channels make an E1 even unconfigured");

    let s5 = &d.spans[4];
    assert_eq!((s5.name.as_str(), s5.description.as_str()), ("WCTDM/0", "Wildcard TDM410P"));
    assert!(!s5.is_digital());
    let kinds: Vec<_> = s5.channels.iter().map(|c| c.port_kind()).collect();
    assert_eq!(
        kinds,
        [
            Some(ChannelKind::FxsSeat),
            Some(ChannelKind::FxsSeat),
            Some(ChannelKind::FxoTrunk),
            Some(ChannelKind::FxoTrunk)
        ]
    );
    assert_eq!(s5.channels.iter().map(|c| c.channo).collect::<Vec<_>>(), [125, 126, 127, 128]);
}

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, format!("{text}\n")).unwrap();
}

/// The same machine as sysfs shows it: a device per board, its spans as children, their
/// channels as grandchildren, and the span bus linking to the spans.
pub fn sysfs_machine(root: &Path) {
    let devices = root.join("sys/bus/dahdi_devices/devices");
    let span_bus = root.join("sys/bus/dahdi_spans/devices");
    fs::create_dir_all(&span_bus).unwrap();
    let boards = [
        (
            "pci:0000:03:00.0",
            "Wildcard TE420 (5th Gen) (VPMOCT128)",
            "PCI Express Bus 03 Slot 01",
            1u32,
            4u32,
            31u32,
        ),
        ("pci:0000:04:00.0", "Wildcard TDM410P", "PCI Bus 04 Slot 02", 5, 1, 4),
    ];
    let mut channo = 1;
    for (id, devtype, location, first_span, spans, chans) in boards {
        // Real sysfs devices live elsewhere and the bus lists links; the fixture does the same.
        let dev = root.join("sys/devices").join(id);
        write(&dev.join("manufacturer"), "Digium");
        write(&dev.join("type"), devtype);
        write(&dev.join("location"), location);
        write(&dev.join("hardware_id"), if chans == 31 { "1TE420F-012345" } else { "" });
        fs::create_dir_all(&devices).unwrap();
        std::os::unix::fs::symlink(&dev, devices.join(id)).unwrap();
        for spanno in first_span..first_span + spans {
            let span = dev.join(format!("span-{spanno}"));
            let digital = chans == 31;
            let local = spanno - first_span + 1;
            write(&span.join("name"), &if digital { format!("TE4/0/{local}") } else { "WCTDM/0".into() });
            write(
                &span.join("desc"),
                &if digital { format!("T4XXP (PCI) Card 0 Span {local}") } else { "Wildcard TDM410P".into() },
            );
            write(&span.join("spantype"), if digital { "E1" } else { "ANALOG_MIXED" });
            write(&span.join("alarms"), if spanno == 2 { "0x8" } else { "0x0" });
            write(&span.join("lineconfig"), if digital && spanno <= 2 { "HDB3/CCS/CRC4" } else { "" });
            write(&span.join("basechan"), &channo.to_string());
            write(&span.join("channels"), &chans.to_string());
            write(&span.join("is_sync_master"), if spanno == 1 { "1" } else { "0" });
            std::os::unix::fs::symlink(&span, span_bus.join(format!("span-{spanno}"))).unwrap();
            for pos in 1..=chans {
                let ch = span.join(format!("dahdi!chan!{spanno:03}!{pos:03}"));
                write(&ch.join("channo"), &channo.to_string());
                write(&ch.join("chanpos"), &pos.to_string());
                let name =
                    if digital { format!("TE4/0/{local}/{pos}") } else { format!("WCTDM/0/{}", pos - 1) };
                write(&ch.join("name"), &name);
                let (sig, cap) = match (digital, pos) {
                    (true, _) if spanno > 2 => {
                        ("Unconfigured", "Clear HDLCRAW HDLCFCS Hardware-assisted HDLC CAS")
                    }
                    (true, 16) => ("HDLCFCS", "Clear HDLCRAW HDLCFCS Hardware-assisted HDLC CAS"),
                    (true, _) => ("Clear", "Clear HDLCRAW HDLCFCS Hardware-assisted HDLC CAS"),
                    // Port 2 has an FXS module nobody configured: sigcap still says what it is.
                    (false, 1) => ("FXOKS", "FXOLS FXOGS FXOKS"),
                    (false, 2) => ("Unconfigured", "FXOLS FXOGS FXOKS"),
                    (false, _) => ("FXSKS", "FXSLS FXSGS FXSKS"),
                };
                write(&ch.join("sig"), sig);
                write(&ch.join("sigcap"), cap);
                write(&ch.join("in_use"), if pos == 1 { "1" } else { "0" });
                write(&ch.join("alarms"), if spanno == 2 { "RED " } else { "" });
                channo += 1;
            }
        }
    }
}

#[test]
fn sysfs_of_the_same_machine() {
    let dir = tempfile::tempdir().unwrap();
    sysfs_machine(dir.path());
    let d = sysfs::read(dir.path()).unwrap();
    assert_eq!(d.source, Some(Source::Sysfs));
    assert_eq!(d.devices.len(), 2);
    assert_eq!(d.devices[0].devicetype, "Wildcard TE420 (5th Gen) (VPMOCT128)");
    assert_eq!(d.devices[0].manufacturer, "Digium");
    assert_eq!(d.spans.len(), 5);
    assert!(d.spans[..4].iter().all(|s| s.device == Some(0) && s.is_e1()));
    assert_eq!(d.spans[1].alarms, ["RED"]);
    assert!(d.spans[0].sync_master);
    assert_eq!(d.spans[0].channels[15].signalling.as_deref(), Some("HDLCFCS"));
    assert_eq!(d.spans[0].channels[15].sigcap.len(), 5);
    assert_eq!(d.spans[2].channels[0].signalling, None);
    let tdm = &d.spans[4];
    assert_eq!((tdm.spanno, tdm.device, tdm.spantype.as_deref()), (5, Some(1), Some("ANALOG_MIXED")));
    assert!(!tdm.is_digital());
    let kinds: Vec<_> = tdm.channels.iter().map(|c| c.port_kind()).collect();
    assert_eq!(
        kinds,
        [
            Some(ChannelKind::FxsSeat),
            Some(ChannelKind::FxsSeat),
            Some(ChannelKind::FxoTrunk),
            Some(ChannelKind::FxoTrunk)
        ],
        "the unconfigured port 2 is known by its sigcap"
    );
    assert_eq!(tdm.channels[3].channo, 128);

    // detect() prefers sysfs when both are there.
    let both = tempfile::tempdir().unwrap();
    sysfs_machine(both.path());
    fs::create_dir_all(both.path().join("proc/dahdi")).unwrap();
    fs::copy(machine().join("proc/dahdi/5"), both.path().join("proc/dahdi/5")).unwrap();
    assert_eq!(detect(both.path()).unwrap().source, Some(Source::Sysfs));
}

#[test]
fn spans_without_channel_directories_use_basechan() {
    let dir = tempfile::tempdir().unwrap();
    let span = dir.path().join("sys/bus/dahdi_spans/devices/span-3");
    write(&span.join("name"), "WCTDM/1");
    write(&span.join("basechan"), "9");
    write(&span.join("channels"), "4");
    let d = sysfs::read(dir.path()).unwrap();
    assert_eq!(d.spans.len(), 1);
    assert_eq!(
        d.spans[0].channels.iter().map(|c| (c.channo, c.chanpos)).collect::<Vec<_>>(),
        [(9, 1), (10, 2), (11, 3), (12, 4)]
    );
    assert_eq!(d.spans[0].device, None);
}

#[test]
fn an_empty_machine_has_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = detect(dir.path()).unwrap();
    assert_eq!(d.source, None);
    assert!(d.spans.is_empty() && d.devices.is_empty());
}
