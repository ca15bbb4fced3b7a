//! `switchboard hw list` on fixture machines: a TE420 and a TDM410P in `/proc/dahdi` with a
//! USB headset and on-board sound in `/proc/asound`; a sysfs machine whose analog modules
//! differ from the board file; an empty machine; and every board file in `board/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use switchboard::board::{Board, BUILTIN};

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
