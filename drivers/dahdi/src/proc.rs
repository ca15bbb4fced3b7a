//! Parsing `/proc/dahdi/N`, one file per span.
//!
//! The format, as DAHDI's `dahdi_seq_show` prints it (the indentation is a tab):
//!
//! ```text
//! Span 1: TE4/0/1 "T4XXP (PCI) Card 0 Span 1" (MASTER) HDB3/CCS/CRC4 RED ClockSource
//!     IRQ misses: 3
//!
//!        1 TE4/0/1/1 Clear (In use)
//!       16 TE4/0/1/16 HDLCFCS (In use)
//! ```
//!
//! The header has the span's name, its quoted description, `(MASTER)` for the timing master,
//! the line configuration, the alarms and `ClockSource`; indented `Name: value` lines are
//! counters; each channel line has the channel number, its name, its signalling (absent when
//! unconfigured, `Reserved` when it cannot be), `(In use)`, `(no pcm)`, alarms and the echo
//! canceller. The parser keeps what it recognises and ignores the rest, so a newer DAHDI that
//! adds words does not break it.

use std::path::Path;

use crate::detect::{DetectedChannel, DetectedSpan, Detection, Source, ALARM_WORDS};
use crate::error::DahdiError;

/// Reads every `ROOT/proc/dahdi/N` file. A missing directory means no DAHDI: an empty result.
pub fn read(root: &Path) -> Result<Detection, DahdiError> {
    let dir = root.join("proc/dahdi");
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Detection::default()),
        Err(source) => return Err(DahdiError::Read { path: dir, source }),
    };
    let mut numbered = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| DahdiError::Read { path: dir.clone(), source })?;
        if let Some(n) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) {
            numbered.push((n, entry.path()));
        }
    }
    numbered.sort();
    let mut spans = Vec::new();
    for (n, path) in numbered {
        let text = std::fs::read_to_string(&path)
            .map_err(|source| DahdiError::Read { path: path.clone(), source })?;
        if let Some(mut span) = parse_span(&text) {
            // The file name is the span number; trust it over a header that did not parse.
            if span.spanno == 0 {
                span.spanno = n;
            }
            spans.push(span);
        }
    }
    let found = !spans.is_empty();
    Ok(Detection {
        source: found.then_some(Source::Proc),
        path: found.then_some(dir),
        devices: Vec::new(),
        spans,
    })
}

/// Parses one `/proc/dahdi/N` file; None when it has no `Span` header.
pub fn parse_span(text: &str) -> Option<DetectedSpan> {
    let mut lines = text.lines();
    let header = lines.by_ref().find(|l| l.starts_with("Span "))?;
    let mut span = parse_header(header)?;
    for line in lines {
        if let Some(ch) = parse_channel(line) {
            let chanpos = u16::try_from(span.channels.len() + 1).unwrap_or(u16::MAX);
            span.channels.push(DetectedChannel { chanpos, ..ch });
        }
    }
    Some(span)
}

fn parse_header(line: &str) -> Option<DetectedSpan> {
    let rest = line.strip_prefix("Span ")?;
    let (number, rest) = rest.split_once(':')?;
    let spanno = number.trim().parse().ok()?;
    let rest = rest.trim_start();
    let (name, rest) = match rest.split_once(' ') {
        Some((n, r)) => (n.to_string(), r),
        None => (rest.to_string(), ""),
    };
    let mut span = DetectedSpan { spanno, name, ..DetectedSpan::default() };
    let rest = rest.trim_start();
    let rest = match rest.strip_prefix('"').and_then(|r| r.split_once('"')) {
        Some((desc, after)) => {
            span.description = desc.to_string();
            after
        }
        None => rest,
    };
    for word in rest.split_whitespace() {
        match word {
            "(MASTER)" => span.sync_master = true,
            w if ALARM_WORDS.contains(&w) => span.alarms.push(w.to_string()),
            w if is_lineconfig(w) => span.lineconfig = Some(w.to_string()),
            _ => {}
        }
    }
    Some(span)
}

/// True for a line configuration such as `HDB3/CCS/CRC4`, `AMI/CAS` or `B8ZS/ESF`.
fn is_lineconfig(word: &str) -> bool {
    const PARTS: [&str; 9] = ["D4", "ESF", "AMI", "B8ZS", "CCS", "HDB3", "CRC4", "NTTE", "TERM"];
    word.split('/').all(|p| PARTS.contains(&p)) && !word.is_empty()
}

/// Parses a channel line (`\t   1 TE4/0/1/1 Clear (In use) `); None for other lines.
fn parse_channel(line: &str) -> Option<DetectedChannel> {
    let trimmed = line.trim_start();
    if trimmed.len() == line.len() {
        // Channel lines are indented; the header is not.
        return None;
    }
    let (number, rest) = trimmed.split_once(' ').unwrap_or((trimmed, ""));
    let channo: u32 = number.parse().ok()?;
    let rest = rest.trim_start();
    let (name, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    if name.is_empty() {
        return None;
    }
    let mut rest = rest.to_string();
    let in_use = take(&mut rest, "(In use)");
    take(&mut rest, "(no pcm)");
    if let Some(start) = rest.find("(EC:") {
        let end = rest[start..].find(')').map_or(rest.len(), |e| start + e + 1);
        rest.replace_range(start..end, "");
    }
    let mut alarms = Vec::new();
    let mut words = Vec::new();
    for w in rest.split_whitespace() {
        if ALARM_WORDS.contains(&w) {
            alarms.push(w.to_string());
        } else if w != "Master" {
            words.push(w);
        }
    }
    let sig = words.join(" ");
    let signalling = match sig.as_str() {
        "" | "Reserved" | "Unconfigured" => None,
        s => Some(s.to_string()),
    };
    Some(DetectedChannel {
        channo,
        chanpos: 0,
        name: name.to_string(),
        signalling,
        sigcap: Vec::new(),
        in_use,
        alarms,
    })
}

/// Removes `word` from `text`, returning whether it was there.
fn take(text: &mut String, word: &str) -> bool {
    match text.find(word) {
        Some(i) => {
            text.replace_range(i..i + word.len(), "");
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_words_are_recognised() {
        let s =
            parse_span("Span 2: TE4/0/2 \"T4XXP (PCI) Card 0 Span 2\" HDB3/CCS/CRC4 YELLOW RED \n").unwrap();
        assert_eq!(s.spanno, 2);
        assert_eq!(s.name, "TE4/0/2");
        assert_eq!(s.description, "T4XXP (PCI) Card 0 Span 2");
        assert_eq!(s.lineconfig.as_deref(), Some("HDB3/CCS/CRC4"));
        assert_eq!(s.alarms, ["YELLOW", "RED"]);
        assert!(!s.sync_master);
    }

    #[test]
    fn channel_lines_keep_multiword_signalling() {
        let c = parse_channel("\t  16 TE4/0/1/16 Hardware-assisted HDLC (In use) RED ").unwrap();
        assert_eq!(c.signalling.as_deref(), Some("Hardware-assisted HDLC"));
        assert!(c.in_use);
        assert_eq!(c.alarms, ["RED"]);
        let c = parse_channel("\t   3 WCTDM/0/2 FXOKS (EC: VPMOCT032 - INACTIVE) ").unwrap();
        assert_eq!(c.signalling.as_deref(), Some("FXOKS"));
        assert!(!c.in_use);
        let c = parse_channel("\t   4 WCTDM/0/3 ").unwrap();
        assert_eq!(c.signalling, None);
        assert!(parse_channel("\tIRQ misses: 3").is_none());
    }

    #[test]
    fn garbage_is_not_a_span() {
        assert!(parse_span("").is_none());
        assert!(parse_span("Span x: nothing").is_none());
    }
}
