//! Reading DAHDI's sysfs tree.
//!
//! DAHDI registers three buses. A device (board) is `/sys/bus/dahdi_devices/devices/<id>` with
//! `manufacturer`, `type`, `location` and `hardware_id`; its spans are child directories
//! `span-N` with `name`, `desc`, `spantype`, `alarms` (hex), `lineconfig`, `basechan`,
//! `channels` and `is_sync_master`; each span's channels are child directories
//! `dahdi!chan!SSS!CCC` with `channo`, `chanpos`, `name`, `sig`, `sigcap`, `in_use` and
//! `alarms`. `/sys/bus/dahdi_spans/devices/span-N` links to every span, including any not
//! found under a device. Attributes that are missing or unreadable are left empty: the tree
//! differs between DAHDI versions.

use std::path::{Path, PathBuf};

use crate::detect::{alarm_names, DetectedChannel, DetectedDevice, DetectedSpan, Detection, Source};
use crate::error::DahdiError;

/// Reads the DAHDI devices, spans and channels under `root`. No DAHDI buses: an empty result.
pub fn read(root: &Path) -> Result<Detection, DahdiError> {
    let devices_dir = root.join("sys/bus/dahdi_devices/devices");
    let spans_dir = root.join("sys/bus/dahdi_spans/devices");
    let mut out = Detection::default();

    for dev_path in list_dir(&devices_dir)? {
        let id = file_name(&dev_path);
        let device = DetectedDevice {
            id,
            manufacturer: attr(&dev_path, "manufacturer").unwrap_or_default(),
            devicetype: attr(&dev_path, "type").unwrap_or_default(),
            location: attr(&dev_path, "location").unwrap_or_default(),
            hardware_id: attr(&dev_path, "hardware_id").unwrap_or_default(),
        };
        let index = out.devices.len();
        out.devices.push(device);
        for span_path in list_dir(&dev_path)? {
            if file_name(&span_path).starts_with("span-") {
                if let Some(mut span) = read_span(&span_path)? {
                    span.device = Some(index);
                    out.spans.push(span);
                }
            }
        }
    }
    for span_path in list_dir(&spans_dir)? {
        if !file_name(&span_path).starts_with("span-") {
            continue;
        }
        if let Some(span) = read_span(&span_path)? {
            if !out.spans.iter().any(|s| s.spanno == span.spanno) {
                out.spans.push(span);
            }
        }
    }
    out.spans.sort_by_key(|s| s.spanno);
    if !out.spans.is_empty() {
        out.source = Some(Source::Sysfs);
        out.path = Some(root.join("sys/bus"));
    }
    Ok(out)
}

fn read_span(dir: &Path) -> Result<Option<DetectedSpan>, DahdiError> {
    let Some(spanno) = file_name(dir).strip_prefix("span-").and_then(|n| n.parse::<u32>().ok()) else {
        return Ok(None);
    };
    let alarms = attr(dir, "alarms").and_then(|a| parse_int(&a)).unwrap_or(0);
    let mut span = DetectedSpan {
        spanno,
        name: attr(dir, "name").unwrap_or_default(),
        description: attr(dir, "desc").unwrap_or_default(),
        spantype: attr(dir, "spantype").filter(|s| !s.is_empty()),
        lineconfig: attr(dir, "lineconfig").filter(|s| !s.is_empty()),
        alarms: alarm_names(alarms),
        sync_master: attr(dir, "is_sync_master").is_some_and(|v| v == "1"),
        device: None,
        channels: Vec::new(),
    };
    for ch_path in list_dir(dir)? {
        let name = file_name(&ch_path);
        if !name.starts_with("dahdi!chan!") {
            continue;
        }
        let pos_from_name = name.rsplit('!').next().and_then(|p| p.parse::<u16>().ok()).unwrap_or(0);
        let channo = attr(&ch_path, "channo").and_then(|v| v.parse().ok()).unwrap_or(0);
        let sig = attr(&ch_path, "sig").unwrap_or_default();
        span.channels.push(DetectedChannel {
            channo,
            chanpos: attr(&ch_path, "chanpos").and_then(|v| v.parse().ok()).unwrap_or(pos_from_name),
            name: attr(&ch_path, "name").unwrap_or_default(),
            signalling: match sig.as_str() {
                "" | "Unconfigured" | "Reserved" => None,
                s => Some(s.to_string()),
            },
            sigcap: attr(&ch_path, "sigcap").map(|s| sigcap_words(&s)).unwrap_or_default(),
            in_use: attr(&ch_path, "in_use").is_some_and(|v| v == "1"),
            alarms: attr(&ch_path, "alarms")
                .map(|a| a.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default(),
        });
    }
    // Without channel directories (older DAHDI), the span's base channel and count still
    // say which channels it has.
    if span.channels.is_empty() {
        let base: Option<u32> = attr(dir, "basechan").and_then(|v| v.parse().ok());
        let count: Option<u16> = attr(dir, "channels").and_then(|v| v.parse().ok());
        if let (Some(base), Some(count)) = (base, count) {
            for pos in 1..=count {
                span.channels.push(DetectedChannel {
                    channo: base + u32::from(pos) - 1,
                    chanpos: pos,
                    ..DetectedChannel::default()
                });
            }
        }
    }
    span.channels.sort_by_key(|c| c.chanpos);
    Ok(Some(span))
}

/// `sigcap` lists names separated by spaces, but one of them (`Hardware-assisted HDLC`) has
/// a space of its own, and `SF (ToneOnly)` another.
fn sigcap_words(text: &str) -> Vec<String> {
    let text = text
        .replace("Hardware-assisted HDLC", "Hardware-assisted_HDLC")
        .replace("SF (ToneOnly)", "SF_(ToneOnly)");
    text.split_whitespace().map(|w| w.replace('_', " ")).collect()
}

/// The entries of a directory, sorted; none when it does not exist.
fn list_dir(dir: &Path) -> Result<Vec<PathBuf>, DahdiError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(DahdiError::Read { path: dir.to_path_buf(), source }),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| DahdiError::Read { path: dir.to_path_buf(), source })?;
        // Follow symlinks (sysfs bus directories are links) and keep directories only.
        if entry.path().is_dir() {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// One attribute file, trimmed; None when missing or unreadable.
fn attr(dir: &Path, name: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(name)).ok().map(|s| s.trim().to_string())
}

/// A decimal or `0x` hexadecimal number.
fn parse_int(text: &str) -> Option<i64> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => i64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigcap_keeps_multiword_names() {
        assert_eq!(
            sigcap_words("Clear HDLCRAW HDLCFCS Hardware-assisted HDLC MTP2"),
            ["Clear", "HDLCRAW", "HDLCFCS", "Hardware-assisted HDLC", "MTP2"]
        );
    }

    #[test]
    fn alarm_attribute_is_hex() {
        assert_eq!(parse_int("0x8"), Some(8));
        assert_eq!(parse_int("12"), Some(12));
        assert_eq!(parse_int("junk"), None);
    }
}
