//! `switchboard hw list` on fixture machines: a TE420 and a TDM410P in `/proc/dahdi` with a
//! USB headset and on-board sound in `/proc/asound`; a sysfs machine whose analog modules
//! differ from the board file; an empty machine; and every board file in `board/`.
//!
//! `switchboard hw system-conf` for a TE420 with two `[[e1]]` spans and for a TDM410P, and
//! the daemon's `apply_dahdi_settings` on the DAHDI crate's fake kernel.

use std::path::{Path, PathBuf};
use std::process::Command;

use switchboard::board::{Board, BUILTIN};
use switchboard::config::Config;
use switchboard::hw::{apply_dahdi_settings, apply_plan, dahdi_plan, HwError};
use switchboard_driver_api::ChannelKind;
use switchboard_driver_dahdi::abi::*;
use switchboard_driver_dahdi::fake::{CtlCall, FakeDahdi, FXO_MODULE_SIGCAP, FXS_MODULE_SIGCAP};
use switchboard_driver_dahdi::{configure_span, Coding, LineConfig};

use crate::harness::BIN;

fn hw_list(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).arg("hw").arg("list").args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("drivers/dahdi/tests/fixtures/machine")
}

/// The drafts a report contains.
fn drafts(out: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut current: Option<String> = None;
    for line in out.lines() {
        if line.contains("--- draft board file") {
            current = Some(String::new());
        } else if line.contains("--- end of draft ---") {
            found.extend(current.take());
        } else if let Some(d) = current.as_mut() {
            d.push_str(line);
            d.push('\n');
        }
    }
    found
}

#[test]
fn hw_list_names_the_boards_of_a_proc_dahdi_machine() {
    let root = fixture();
    let (code, out, err) = hw_list(&["--root", root.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    for want in [
        "DAHDI: 5 span(s), 128 channel(s)",
        "card: T4XXP (PCI), spans 1-4",
        "card: Wildcard TDM410P, span 5",
        "span 1: TE4/0/1 \"T4XXP (PCI) Card 0 Span 1\": E1 HDB3/CCS/CRC4, channels 1-31 (1-15 e1-b, 16 e1-d, 17-31 e1-b), 31 in use, timing master",
        "span 2: TE4/0/2 \"T4XXP (PCI) Card 0 Span 2\": E1 HDB3/CCS/CRC4, channels 32-62",
        "alarms: RED",
        "span 3: TE4/0/3 \"T4XXP (PCI) Card 0 Span 3\": E1, channels 63-93 (not configured)",
        "board: board/digium-te420.toml (Digium TE420 (4 x E1)); also fits board/openvox-d410p.toml",
        "span 5: WCTDM/0 \"Wildcard TDM410P\": analog, channels 125-128 (125-126 fxs, 127-128 fxo), 2 in use",
        "board: board/digium-tdm410p.toml",
        "sound devices: 2",
        "card 1 [H340]: USB-Audio - Logitech USB Headset H340 (playback, capture)",
        "board: board/usb-headset.toml (USB headset)",
        "card 0 [PCH]: HDA-Intel - HDA Intel PCH (playback, capture)",
        "no board file matches this card; a draft for it:",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    assert!(!out.contains("no DAHDI spans found") && !out.contains("no sound devices found"), "{out}");

    // The one draft (for the on-board sound) is a valid board file: saved in a board
    // directory, it makes that card match.
    let drafts = drafts(&out);
    assert_eq!(drafts.len(), 1, "{out}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pch.toml"), &drafts[0]).unwrap();
    let (code, out, err) =
        hw_list(&["--root", root.to_str().unwrap(), "--boards", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("board: ") && out.contains("pch.toml (HDA Intel PCH)"), "{out}");
    // With only that board, the two DAHDI cards and the headset get drafts of their own.
    assert_eq!(self::drafts(&out).len(), 3, "{out}");
}

#[test]
fn hw_list_on_an_empty_machine_says_nothing_was_found() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = hw_list(&["--root", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let dahdi = out.find("no DAHDI spans found").unwrap_or_else(|| panic!("{out}"));
    let sound = out.find("no sound devices found").unwrap_or_else(|| panic!("{out}"));
    assert!(dahdi < sound, "{out}");
    assert!(out.contains("ALSA is not loaded"), "{out}");

    std::fs::create_dir_all(dir.path().join("proc/asound")).unwrap();
    std::fs::write(dir.path().join("proc/asound/cards"), "--- no soundcards ---\n").unwrap();
    let (_, out, _) = hw_list(&["--root", dir.path().to_str().unwrap()]);
    assert!(out.contains("no sound devices found") && out.contains("lists none"), "{out}");
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, format!("{text}\n")).unwrap();
}

#[test]
fn hw_list_on_sysfs_drafts_the_modules_as_fitted() {
    // A TDM410P fitted with four FXO modules; port 4's is not configured yet.
    let dir = tempfile::tempdir().unwrap();
    let dev = dir.path().join("sys/bus/dahdi_devices/devices/pci:0000:04:00.0");
    write(&dev.join("manufacturer"), "Digium");
    write(&dev.join("type"), "Wildcard TDM410P");
    write(&dev.join("location"), "PCI Bus 04 Slot 02");
    let span = dev.join("span-1");
    write(&span.join("name"), "WCTDM/0");
    write(&span.join("desc"), "Wildcard TDM410P");
    write(&span.join("spantype"), "ANALOG_MIXED");
    write(&span.join("alarms"), "0x0");
    for pos in 1..=4 {
        let ch = span.join(format!("dahdi!chan!001!{pos:03}"));
        write(&ch.join("channo"), &pos.to_string());
        write(&ch.join("chanpos"), &pos.to_string());
        write(&ch.join("name"), &format!("WCTDM/0/{}", pos - 1));
        write(&ch.join("sig"), if pos == 4 { "Unconfigured" } else { "FXSKS" });
        write(&ch.join("sigcap"), "FXSLS FXSGS FXSKS");
        write(&ch.join("in_use"), "0");
    }
    let (code, out, err) = hw_list(&["--root", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    for want in [
        "DAHDI: 1 span(s), 4 channel(s) (from sysfs",
        "card: Digium Wildcard TDM410P (pci:0000:04:00.0, PCI Bus 04 Slot 02), span 1",
        "channels 1-4 (1-3 fxo, 4 fxo (unconfigured))",
        "board: board/digium-tdm410p.toml",
        "differ from the board file at port(s) 1, 2",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    let drafts = drafts(&out);
    assert_eq!(drafts.len(), 1, "{out}");
    let board = Board::parse(&drafts[0], "draft").unwrap_or_else(|e| panic!("{e}\n{}", drafts[0]));
    assert_eq!(board.model, "Digium Wildcard TDM410P");
    assert_eq!(board.spans[0].port_kinds(), [switchboard_driver_api::ChannelKind::FxoTrunk; 4]);
}

#[test]
fn hw_list_refuses_a_broken_board_directory_with_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "model = \"x\"\ndriver = \"dahdi\"\ndetect.device = [\"x\"]\n[[span]]\nkind = \"analog\"\nports = [ { first = 2, count = 1, kind = \"fxo\" } ]\n").unwrap();
    let (code, _, err) = hw_list(&["--root", "/nonexistent", "--boards", dir.path().to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!("{}:6:", bad.display())) && err.contains("key `span[0].ports[0].first`"),
        "{err}"
    );
}

#[test]
fn every_board_file_parses_and_is_consistent() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("board");
    let boards = Board::load_dir(&dir).unwrap_or_else(|e| panic!("{e}"));
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    names.sort();
    let builtin: Vec<String> = BUILTIN.iter().map(|(n, _)| n.to_string()).collect();
    assert_eq!(names, builtin, "board/ and board::BUILTIN must list the same files");
    for (b, (name, text)) in boards.iter().zip(BUILTIN) {
        assert_eq!(
            std::fs::read_to_string(dir.join(name)).unwrap(),
            *text,
            "{name} is built in as it is on disk"
        );
        // Ports are numbered 1..=N without gaps and each span's count matches its ranges.
        let mut next = 1u32;
        for s in &b.spans {
            for r in &s.ports {
                assert_eq!(u32::from(r.first), next, "{}", b.file);
                next += u32::from(r.count);
            }
        }
        assert_eq!(b.port_count() as u32, next - 1, "{}", b.file);
        if b.driver == switchboard::board::Driver::Dahdi {
            let bases: Vec<u32> = (0..b.spans.len() as u32).map(|i| 1 + 31 * i).collect();
            let channels = b.dahdi_channels(&bases).unwrap();
            assert_eq!(channels.len(), b.port_count(), "{}", b.file);
        }
    }
    let model = |file: &str| boards.iter().find(|b| b.file.ends_with(file)).unwrap();
    assert_eq!(model("digium-te420.toml").port_count(), 124);
    assert_eq!(model("digium-te420.toml").spans.len(), 4);
    assert_eq!(model("openvox-d410p.toml").port_count(), 124);
    assert_eq!(model("digium-tdm410p.toml").port_count(), 4);
    assert_eq!(model("openvox-a400p.toml").port_count(), 4);
    assert_eq!(model("usb-headset.toml").port_count(), 1);
    assert_eq!(model("sim.toml").port_count(), 12);
}

/// A TE420 whose first span faces the exchange (timing source) and whose second has a PBX
/// behind it (we are the network side and its clock; no CRC-4); spans 3 and 4 have no
/// `[[e1]]` section.
const TE420: &str = "[card]\ndriver = \"dahdi\"\n[dahdi]\nboard = \"digium-te420\"\n\
    [engine]\ntone_zone = \"europe\"\n\
    [[e1]]\nspan = 1\nsignalling = \"pri-cpe\"\ntiming = 1\n\
    [[e1]]\nspan = 2\nsignalling = \"pri-net\"\ncrc4 = false\ntiming = 0\n";

/// A TDM410P registered after the TE420 of the fixture machine, at channels 125-128.
const TDM410P: &str =
    "[card]\ndriver = \"dahdi\"\n[dahdi]\nboard = \"digium-tdm410p\"\nfirst_channels = [125]\n";

fn system_conf(config_text: &str, args: &[&str]) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("switchboard.toml");
    std::fs::write(&config, config_text).unwrap();
    let out =
        Command::new(BIN).args(["hw", "system-conf", "--config"]).arg(&config).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The lines dahdi_cfg reads: no comments, no blank lines.
fn directives(text: &str) -> Vec<&str> {
    text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).collect()
}

#[test]
fn system_conf_of_a_te420_with_two_e1_spans() {
    let empty = tempfile::tempdir().unwrap();
    let (code, out, err) = system_conf(TE420, &["--root", empty.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        directives(&out),
        [
            "span=1,1,0,ccs,hdb3,crc4",
            "bchan=1-15,17-31",
            "dchan=16",
            "span=2,0,0,ccs,hdb3",
            "bchan=32-46,48-62",
            "dchan=47",
            "span=3,0,0,ccs,hdb3,crc4",
            "bchan=63-77,79-93",
            "dchan=78",
            "span=4,0,0,ccs,hdb3,crc4",
            "bchan=94-108,110-124",
            "dchan=109",
            "loadzone=nl",
            "defaultzone=nl",
        ],
        "{out}"
    );
    for want in [
        "# DAHDI configuration for the Digium TE420 (4 x E1), board file board/digium-te420.toml.",
        "# Span 1: the card's E1 span 1, [[e1]] span = 1: ISDN PRI, user (CPE) side, timing source",
        "# Span 2: the card's E1 span 2, [[e1]] span = 2: ISDN PRI, network side, not a timing source.",
        "# Span 3: the card's E1 span 3, no [[e1]] section: the board's line defaults, not a timing",
        "# DAHDI span numbers: assumed to be 1-4",
        "engine.tone_zone = \"europe\"",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }

    // On the fixture machine the spans are read from /proc/dahdi: same numbers, named.
    let (code, found, err) = system_conf(TE420, &["--root", fixture().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(directives(&found), directives(&out));
    assert!(
        found.contains("# Span 1 (TE4/0/1 \"T4XXP (PCI) Card 0 Span 1\"): the card's E1 span 1"),
        "{found}"
    );
    assert!(found.contains("# DAHDI span numbers: as DAHDI numbers them on this machine"), "{found}");
    assert!(!found.contains("WARNING") && err.is_empty(), "{found}{err}");

    // A card registered after another one: its spans numbered from --first-span.
    let (code, later, _) =
        system_conf(TE420, &["--root", empty.path().to_str().unwrap(), "--first-span", "3"]);
    assert_eq!(code, 0);
    let spans: Vec<&str> = directives(&later).into_iter().filter(|l| l.starts_with("span=")).collect();
    assert_eq!(
        spans,
        [
            "span=3,1,0,ccs,hdb3,crc4",
            "span=4,0,0,ccs,hdb3",
            "span=5,0,0,ccs,hdb3,crc4",
            "span=6,0,0,ccs,hdb3,crc4"
        ]
    );
}

#[test]
fn system_conf_of_a_tdm410p_names_the_far_end_signalling() {
    let (code, out, err) = system_conf(TDM410P, &["--root", fixture().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        directives(&out),
        ["fxoks=125-126", "fxsks=127-128", "loadzone=cn", "defaultzone=cn"],
        "{out}"
    );
    assert!(
        out.contains("# Span 5 (WCTDM/0 \"Wildcard TDM410P\"): the card's analog span (ports 1-4)."),
        "{out}"
    );
    assert!(!out.contains("span="), "an analog span has no span= line: {out}");

    // `first_channels` one off: the output says so, and so does stderr.
    let (code, out, err) =
        system_conf(&TDM410P.replace("[125]", "[126]"), &["--root", fixture().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("# WARNING: the card's analog span (ports 1-4) starts at channel 126"), "{out}");
    assert!(
        err.contains("warning: the card's analog span (ports 1-4) starts at channel 126")
            && err.contains("channel 2 of DAHDI span 5"),
        "{err}"
    );
}

#[test]
fn system_conf_says_when_there_is_no_dahdi_card() {
    let out = Command::new(BIN).args(["hw", "system-conf"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(out.stdout.is_empty(), "nothing to redirect into system.conf");
    assert!(err.contains("simulated card") && err.contains("no DAHDI card to configure"), "{err}");

    let (code, out, err) =
        system_conf("[card]\ndriver = \"alsa\"\n[[sound]]\nname = \"headset\"\ndevice = \"hw:1\"\n", &[]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.is_empty() && err.contains("sound devices only") && err.contains("no DAHDI card to configure"),
        "{err}"
    );
}

/// A fake TE420: four E1 spans of 31 unconfigured channels, channels 1-124.
fn fake_te420() -> FakeDahdi {
    let dahdi = FakeDahdi::new();
    for n in 1..=4 {
        dahdi.add_e1_span(
            n,
            1 + 31 * (n - 1),
            &format!("TE4/0/{n}"),
            &format!("T4XXP (PCI) Card 0 Span {n}"),
        );
    }
    dahdi
}

fn e1_ports(first: u32) -> Vec<(u32, ChannelKind)> {
    (0..31)
        .map(|i| (first + i, if i == 15 { ChannelKind::E1Signalling } else { ChannelKind::E1Bearer }))
        .collect()
}

#[test]
fn apply_configures_fresh_spans_and_keeps_what_dahdi_cfg_configured() {
    let config = Config::parse(TE420, "te420.toml").unwrap();
    let plan = dahdi_plan(&config).unwrap();
    let dahdi = fake_te420();
    let mut ctl = dahdi.open().unwrap();
    // dahdi_cfg configured span 3 as the configuration says, and span 4 with AMI and no CRC-4.
    configure_span(&mut ctl, 3, &LineConfig { timing: 0, ..LineConfig::default() }, &e1_ports(63)).unwrap();
    let ami = LineConfig { coding: Coding::Ami, crc4: false, timing: 0, ..LineConfig::default() };
    configure_span(&mut ctl, 4, &ami, &e1_ports(94)).unwrap();
    let before = dahdi.ctl_calls().len();

    let applied = apply_plan(&plan, &mut ctl).unwrap();
    assert_eq!(applied.notes.len(), 3, "{applied:?}");
    assert!(applied.notes[0].starts_with("DAHDI span 1 (the card's E1 span 1, channels 1-31): configured, HDB3/CCS/CRC4, timing priority 1"), "{applied:?}");
    assert!(
        applied.notes[1].starts_with(
            "DAHDI span 2 (the card's E1 span 2, channels 32-62): configured, HDB3/CCS, timing priority 0"
        ),
        "{applied:?}"
    );
    assert!(
        applied.notes[2]
            .starts_with("DAHDI span 3 (the card's E1 span 3, channels 63-93): already configured"),
        "{applied:?}"
    );
    assert_eq!(applied.warnings.len(), 1, "{applied:?}");
    assert!(
        applied.warnings[0]
            .starts_with("DAHDI span 4 (the card's E1 span 4, channels 94-124) was configured before")
            && applied.warnings[0].contains("the line runs AMI/CCS, the configuration says HDB3/CCS/CRC4"),
        "{applied:?}"
    );

    // What reached the kernel: spans 1 and 2, each SPANCONFIG, 31 CHANCONFIG, STARTUP.
    let calls = &dahdi.ctl_calls()[before..];
    assert_eq!(calls.len(), 2 * 33, "{calls:?}");
    let CtlCall::SpanConfig(lc) = calls[0] else { panic!("{calls:?}") };
    assert_eq!(
        (lc.span, lc.lineconfig, lc.sync),
        (1, DAHDI_CONFIG_CCS | DAHDI_CONFIG_HDB3 | DAHDI_CONFIG_CRC4, 1)
    );
    let CtlCall::SpanConfig(lc) = calls[33] else { panic!("{calls:?}") };
    assert_eq!((lc.span, lc.lineconfig, lc.sync), (2, DAHDI_CONFIG_CCS | DAHDI_CONFIG_HDB3, 0));
    assert_eq!(calls[32], CtlCall::Startup(1));
    assert_eq!(calls[65], CtlCall::Startup(2));
    assert_eq!(dahdi.channel(16).sigtype, DAHDI_SIG_HDLCFCS);
    assert_eq!(dahdi.channel(47).sigtype, DAHDI_SIG_HDLCFCS);
    assert_eq!(dahdi.channel(48).sigtype, DAHDI_SIG_CLEAR);
    assert_eq!(dahdi.span(4).lineconfig, ami.bits(), "span 4 keeps what system.conf gave it");

    // The next start finds everything configured and changes nothing.
    let again = apply_plan(&plan, &mut ctl).unwrap();
    assert_eq!(again.notes.len(), 3);
    assert!(again.notes.iter().all(|n| n.contains("already configured")), "{again:?}");
    assert_eq!(again.warnings.len(), 1);
    assert_eq!(dahdi.ctl_calls().len(), before + 66);
}

#[test]
fn apply_sets_analog_ports_and_names_what_does_not_fit() {
    let config = Config::parse(TDM410P, "tdm.toml").unwrap();
    let plan = dahdi_plan(&config).unwrap();
    let dahdi = FakeDahdi::new();
    dahdi.add_span(5, "WCTDM/0", "Wildcard TDM410P");
    for (channo, caps) in [
        (125, FXS_MODULE_SIGCAP),
        (126, FXS_MODULE_SIGCAP),
        (127, FXO_MODULE_SIGCAP),
        (128, FXO_MODULE_SIGCAP),
    ] {
        dahdi.add_channel(channo, 5, channo - 124, DAHDI_SIG_NONE);
        dahdi.set_sigcap(channo, caps);
    }
    let mut ctl = dahdi.open().unwrap();
    let applied = apply_plan(&plan, &mut ctl).unwrap();
    assert_eq!(
        applied.notes,
        ["DAHDI span 5 (the card's analog span (ports 1-4), channels 125-128): configured, FXS ports fxoks, FXO ports fxsks"]
    );
    assert!(applied.warnings.is_empty());
    let sigs: Vec<_> = (125..=128).map(|c| dahdi.channel(c).sigtype).collect();
    assert_eq!(sigs, [DAHDI_SIG_FXOKS, DAHDI_SIG_FXOKS, DAHDI_SIG_FXSKS, DAHDI_SIG_FXSKS]);
    assert!(!dahdi.ctl_calls().iter().any(|c| matches!(c, CtlCall::SpanConfig(_) | CtlCall::Startup(_))));

    // A card with an FXS module where the board file has an FXO port: the error names it.
    let wrong = FakeDahdi::new();
    wrong.add_span(5, "WCTDM/0", "Wildcard TDM410P");
    for channo in 125..=128 {
        wrong.add_channel(channo, 5, channo - 124, DAHDI_SIG_NONE);
        wrong.set_sigcap(channo, FXS_MODULE_SIGCAP);
    }
    let e = apply_plan(&plan, &mut wrong.open().unwrap()).unwrap_err().to_string();
    assert!(e.contains("DAHDI_CHANCONFIG (FXSKS) failed on channel 127 of DAHDI span 5"), "{e}");

    // `first_channels` that do not start a span.
    let shifted = Config::parse(&TDM410P.replace("[125]", "[126]"), "tdm.toml").unwrap();
    let e = apply_plan(&dahdi_plan(&shifted).unwrap(), &mut dahdi.open().unwrap()).unwrap_err();
    assert!(matches!(e, HwError::NotFirst { channo: 126, spanno: 5, chanpos: 2, .. }), "{e:?}");
    assert!(e.to_string().contains("channel 2 of DAHDI span 5"), "{e}");
}

#[test]
fn apply_without_dahdi_warns_and_leaves_the_error_to_opening_the_channels() {
    let text = TE420.replace("[dahdi]\n", "[dahdi]\nchannel_device = \"/nonexistent/dahdi/channel\"\n");
    let config = Config::parse(&text, "te420.toml").unwrap();
    let applied = apply_dahdi_settings(&config).unwrap();
    assert!(applied.notes.is_empty());
    assert_eq!(applied.warnings.len(), 1);
    assert!(applied.warnings[0].starts_with("cannot open /nonexistent/dahdi/ctl"), "{applied:?}");

    let sim = Config::builtin().unwrap();
    assert_eq!(apply_dahdi_settings(&sim).unwrap(), Default::default());
}
