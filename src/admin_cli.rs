//! The offline administration commands: `switchboard recordings`, `list`, `voicemail` and
//! `report`.
//!
//! Like `switchboard user`, they open the database in the data directory directly instead of
//! asking the daemon, so that they work whether or not it runs: WAL lets them read while the
//! daemon writes, and the store's busy timeout makes their few writes wait for the daemon's
//! instead of failing. All SQL stays in [`crate::store`]; this module parses arguments,
//! checks them, and prints.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use time::{Date, OffsetDateTime, UtcOffset};

use crate::paths;
use crate::reports::{self, ReportKind};
use crate::store::{
    format_utc, CallerList, RecordingInfo, RecordingQuery, RecordingState, ReportPeriod, Store, StoreHandle,
};

/// Recordings are 8 kHz mono.
const SAMPLE_RATE: f64 = 8000.0;

/// `switchboard recordings ...`
#[derive(Debug, Args)]
pub struct RecordingsArgs {
    /// Where the database and recordings live.
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: RecordingsCommand,
}

#[derive(Debug, Subcommand)]
pub enum RecordingsCommand {
    /// Lists recordings, newest first, with their calls' numbers and agents.
    List {
        /// Only this recording.
        #[arg(long)]
        vocid: Option<String>,
        /// Only calls taken by this agent (id).
        #[arg(long)]
        agent: Option<String>,
        /// Only calls with this customer number (the caller, or the number dialled out).
        #[arg(long)]
        caller: Option<String>,
        /// Only recordings started on or after this day (YYYY-MM-DD).
        #[arg(long, value_name = "DATE", value_parser = parse_date)]
        from: Option<Date>,
        /// Only recordings started on or before this day (YYYY-MM-DD).
        #[arg(long, value_name = "DATE", value_parser = parse_date)]
        to: Option<Date>,
        /// The UTC offset the days are in, e.g. +08:00.
        #[arg(long, value_name = "±HH:MM", default_value = "+00:00", value_parser = parse_offset, allow_hyphen_values = true)]
        utc_offset: UtcOffset,
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Copies a recording's WAV file out of the data directory.
    Export {
        vocid: String,
        /// The file to write, or a directory to write VOCID.wav into.
        #[arg(long)]
        out: PathBuf,
        /// Overwrite the file if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Deletes recordings (files and index rows) started more than N days ago.
    Expire {
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=36_500))]
        days: u32,
    },
}

/// `switchboard list ...`
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Where the database lives.
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: ListCommand,
}

#[derive(Debug, Subcommand)]
pub enum ListCommand {
    /// Puts a number on a list (or changes its note).
    Add {
        /// blacklist, vip or member.
        #[arg(value_parser = parse_list)]
        list: CallerList,
        /// The caller's number as it arrives: 0-9, *, # and +.
        number: String,
        #[arg(long)]
        note: Option<String>,
    },
    /// Takes a number off a list.
    Del {
        /// blacklist, vip or member.
        #[arg(value_parser = parse_list)]
        list: CallerList,
        number: String,
    },
    /// Shows the numbers on a list.
    Show {
        /// blacklist, vip or member.
        #[arg(value_parser = parse_list)]
        list: CallerList,
    },
}

/// `switchboard voicemail ...`
#[derive(Debug, Args)]
pub struct VoicemailArgs {
    /// Where the database lives.
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: VoicemailCommand,
}

#[derive(Debug, Subcommand)]
pub enum VoicemailCommand {
    /// Lists voicemail messages, newest first.
    List {
        /// Only this mailbox.
        #[arg(long)]
        mailbox: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// The formats a report is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Comma-separated values (RFC 4180) with a header row.
    Csv,
    /// One self-contained HTML page with charts.
    Html,
}

/// `switchboard report calls|agents|satisfaction ...`
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// calls, agents or satisfaction.
    #[arg(value_enum)]
    pub kind: ReportKind,
    /// The first day (YYYY-MM-DD).
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    pub from: Date,
    /// The last day, included (YYYY-MM-DD).
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    pub to: Date,
    #[arg(long, value_enum, default_value = "csv")]
    pub format: ReportFormat,
    /// Write to this file instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The UTC offset the days are in, e.g. +08:00.
    #[arg(long, value_name = "±HH:MM", default_value = "+00:00", value_parser = parse_offset, allow_hyphen_values = true)]
    pub utc_offset: UtcOffset,
    /// Where the database lives.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// Parses a day given on the command line. Clap names the flag in its error.
pub fn parse_date(s: &str) -> Result<Date, String> {
    let expected = || format!("expected a date as YYYY-MM-DD, e.g. 2026-11-24, not {s:?}");
    let parts: Vec<&str> = s.split('-').collect();
    let [y, m, d] = parts.as_slice() else { return Err(expected()) };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 || !s.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        return Err(expected());
    }
    let (Ok(y), Ok(m), Ok(d)) = (y.parse::<i32>(), m.parse::<u8>(), d.parse::<u8>()) else {
        return Err(expected());
    };
    let month =
        time::Month::try_from(m).map_err(|_| format!("{s:?} has no month {m}: expected YYYY-MM-DD"))?;
    Date::from_calendar_date(y, month, d)
        .map_err(|_| format!("{s:?} is not a day of the calendar: expected YYYY-MM-DD"))
}

/// Parses a UTC offset, `+HH:MM` or `-HH:MM` (also `Z`).
pub fn parse_offset(s: &str) -> Result<UtcOffset, String> {
    let expected = || format!("expected a UTC offset as +HH:MM or -HH:MM, e.g. +08:00, not {s:?}");
    if s == "Z" {
        return Ok(UtcOffset::UTC);
    }
    let (sign, rest) = match s.as_bytes().first() {
        Some(b'+') => (1i8, &s[1..]),
        Some(b'-') => (-1i8, &s[1..]),
        _ => return Err(expected()),
    };
    let Some((h, m)) = rest.split_once(':') else { return Err(expected()) };
    if h.len() != 2 || m.len() != 2 || !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return Err(expected());
    }
    let (Ok(h), Ok(m)) = (h.parse::<i8>(), m.parse::<i8>()) else { return Err(expected()) };
    if !(0..=14).contains(&h) || !(0..=59).contains(&m) {
        return Err(expected());
    }
    UtcOffset::from_hms(sign * h, sign * m, 0).map_err(|_| expected())
}

/// Parses a caller list's name.
pub fn parse_list(s: &str) -> Result<CallerList, String> {
    CallerList::parse(s).ok_or_else(|| "expected blacklist, vip or member".to_owned())
}

/// Opens the database in the data directory. Only commands that store something may
/// create it: a read in a mistyped directory should say so, not show an empty database.
fn open(data_dir: Option<PathBuf>, create: bool) -> Result<(PathBuf, StoreHandle)> {
    let data_dir = paths::data_dir(data_dir);
    let db = paths::database(&data_dir);
    if create {
        std::fs::create_dir_all(&data_dir)
            .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
    } else if !db.exists() {
        bail!("no database at {}: is this the daemon's data directory (--data-dir)?", db.display());
    }
    let store = Store::open(&db).with_context(|| format!("cannot open {}", db.display()))?;
    Ok((data_dir, store))
}

/// Replaces control characters, which would garble a terminal, in text from the database.
fn printable(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}

/// Lays out rows under headers in columns two spaces apart.
fn format_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (cell, width) in cells.zip(&widths) {
            text.push_str(&format!("{cell:<width$}  "));
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut headers.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

fn seconds(samples: Option<u64>) -> Option<f64> {
    samples.map(|n| n as f64 / SAMPLE_RATE)
}

/// Writes to standard output, reporting a closed pipe or a full disk instead of panicking
/// the way `print!` does.
fn write_stdout(text: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text).and_then(|()| out.flush()).context("cannot write to standard output")
}

/// The first instant of `day` at `offset`.
fn day_start(day: Date, offset: UtcOffset) -> OffsetDateTime {
    OffsetDateTime::new_in_offset(day, time::Time::MIDNIGHT, offset)
}

/// Runs `switchboard recordings ...`.
pub fn recordings(args: RecordingsArgs) -> Result<ExitCode> {
    match args.command {
        RecordingsCommand::List { vocid, agent, caller, from, to, utc_offset, limit, json } => {
            if let (Some(from), Some(to)) = (from, to) {
                if to < from {
                    bail!("--to {to} is before --from {from}");
                }
            }
            let (_, store) = open(args.data_dir, false)?;
            let query = RecordingQuery {
                vocid,
                agent_id: agent,
                caller,
                from: from.map(|d| day_start(d, utc_offset)),
                // The last day is included: the search ends where the next day begins.
                to: to.map(|d| day_start(d, utc_offset).saturating_add(time::Duration::DAY)),
                limit,
            };
            let found = store.recordings_find(query).wait()?;
            if json {
                let list: Vec<serde_json::Value> = found.iter().map(recording_json).collect();
                write_stdout(format!("{}\n", serde_json::to_string_pretty(&list)?).as_bytes())?;
            } else if found.is_empty() {
                eprintln!("no recordings found");
            } else {
                write_stdout(recordings_table(&found).as_bytes())?;
            }
            Ok(ExitCode::SUCCESS)
        }
        RecordingsCommand::Export { vocid, out, force } => {
            let (data_dir, store) = open(args.data_dir, false)?;
            let Some(rec) = store.recording_get(&vocid).wait()? else {
                bail!("no recording with vocid {vocid}");
            };
            let rel = Path::new(&rec.path);
            if !crate::store::is_data_relative(rel) {
                bail!(
                    "recording {vocid} has the path {:?}, which is outside the data directory; not copied",
                    rec.path
                );
            }
            let source = data_dir.join(rel);
            if !source.is_file() {
                bail!(
                    "the file of recording {vocid} is missing: {} (state {}; it may have expired or been lost in a crash)",
                    source.display(),
                    rec.state
                );
            }
            let target = if out.is_dir() { out.join(format!("{vocid}.wav")) } else { out };
            if target.exists() && !force {
                bail!("{} already exists; use --force to overwrite it", target.display());
            }
            if rec.state == RecordingState::Recording {
                eprintln!(
                    "warning: recording {vocid} is still being written; the copy has what is on disk now"
                );
            }
            let bytes = std::fs::copy(&source, &target)
                .with_context(|| format!("cannot copy {} to {}", source.display(), target.display()))?;
            println!("exported {vocid} to {} ({bytes} bytes)", target.display());
            Ok(ExitCode::SUCCESS)
        }
        RecordingsCommand::Expire { days } => {
            let (data_dir, store) = open(args.data_dir, false)?;
            let before = OffsetDateTime::now_utc() - time::Duration::days(i64::from(days));
            let report = store.recordings_expire(before, &data_dir).wait()?;
            println!(
                "deleted {} files and {} index rows of recordings started before {}",
                report.files_deleted,
                report.rows_deleted,
                format_utc(before)
            );
            for (vocid, error) in &report.failed {
                eprintln!("switchboard: recording {vocid} was kept: {error}");
            }
            Ok(if report.failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
    }
}

fn recording_json(i: &RecordingInfo) -> serde_json::Value {
    let r = &i.recording;
    serde_json::json!({
        "vocid": r.vocid,
        "call_id": r.call_id,
        "path": r.path,
        "started": r.started_utc,
        "ended": r.ended_utc,
        "samples": r.samples,
        "seconds": seconds(r.samples),
        "state": r.state.as_str(),
        "caller": i.caller,
        "callee": i.callee,
        "direction": i.direction.map(|d| d.as_str()),
        "agent_id": i.agent_id,
        "queue": i.queue,
    })
}

fn recordings_table(found: &[RecordingInfo]) -> String {
    let rows: Vec<Vec<String>> = found
        .iter()
        .map(|i| {
            let r = &i.recording;
            let dash = |v: &Option<String>| v.as_deref().map(printable).unwrap_or_else(|| "-".into());
            vec![
                printable(&r.vocid),
                r.started_utc.clone(),
                seconds(r.samples).map(|s| format!("{s:.1}")).unwrap_or_else(|| "-".into()),
                r.state.to_string(),
                printable(&r.call_id),
                dash(&i.caller),
                dash(&i.callee),
                dash(&i.agent_id),
                dash(&i.queue),
            ]
        })
        .collect();
    format_table(
        &["VOCID", "STARTED (UTC)", "SECONDS", "STATE", "CALL", "CALLER", "CALLEE", "AGENT", "QUEUE"],
        &rows,
    )
}

/// Runs `switchboard list ...`.
pub fn list(args: ListArgs) -> Result<ExitCode> {
    match args.command {
        ListCommand::Add { list, number, note } => {
            let (_, store) = open(args.data_dir, true)?;
            let added = store.list_add(list, &number, note.as_deref(), OffsetDateTime::now_utc()).wait()?;
            if added {
                println!("added {number} to the {list} list");
            } else {
                println!("{number} is already on the {list} list; its note was updated");
            }
        }
        ListCommand::Del { list, number } => {
            let (_, store) = open(args.data_dir, false)?;
            if !store.list_del(list, &number).wait()? {
                bail!("{} is not on the {list} list", printable(&number));
            }
            println!("deleted {number} from the {list} list");
        }
        ListCommand::Show { list } => {
            let (_, store) = open(args.data_dir, false)?;
            let entries = store.list_show(list).wait()?;
            if entries.is_empty() {
                eprintln!("the {list} list is empty");
            } else {
                let rows: Vec<Vec<String>> = entries
                    .iter()
                    .map(|e| {
                        vec![
                            e.number.clone(),
                            e.added_utc.clone(),
                            e.note.as_deref().map(printable).unwrap_or_default(),
                        ]
                    })
                    .collect();
                write_stdout(format_table(&["NUMBER", "ADDED (UTC)", "NOTE"], &rows).as_bytes())?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `switchboard voicemail ...`.
pub fn voicemail(args: VoicemailArgs) -> Result<ExitCode> {
    let VoicemailCommand::List { mailbox, json } = args.command;
    let (_, store) = open(args.data_dir, false)?;
    let messages = store.voicemail_list(mailbox.as_deref()).wait()?;
    if json {
        let list: Vec<serde_json::Value> = messages
            .iter()
            .map(|m| {
                serde_json::json!({
                    "id": m.id,
                    "mailbox": m.mailbox,
                    "call_id": m.call_id,
                    "caller": m.caller,
                    "vocid": m.vocid,
                    "at": m.at_utc,
                    "duration_ms": m.duration_ms,
                    "heard": m.heard,
                })
            })
            .collect();
        write_stdout(format!("{}\n", serde_json::to_string_pretty(&list)?).as_bytes())?;
    } else if messages.is_empty() {
        eprintln!("no voicemail messages");
    } else {
        let rows: Vec<Vec<String>> = messages
            .iter()
            .map(|m| {
                vec![
                    m.id.to_string(),
                    m.at_utc.clone(),
                    printable(&m.mailbox),
                    m.caller.as_deref().map(printable).unwrap_or_else(|| "-".into()),
                    m.duration_ms.map(|d| format!("{:.1}", d as f64 / 1000.0)).unwrap_or_else(|| "-".into()),
                    if m.heard { "yes" } else { "no" }.to_owned(),
                    printable(&m.vocid),
                ]
            })
            .collect();
        write_stdout(
            format_table(&["ID", "AT (UTC)", "MAILBOX", "CALLER", "SECONDS", "HEARD", "VOCID"], &rows)
                .as_bytes(),
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `switchboard report ...`.
pub fn report(args: ReportArgs) -> Result<ExitCode> {
    if args.to < args.from {
        bail!(
            "--to {} is before --from {}: the period must end on or after its first day",
            args.to,
            args.from
        );
    }
    let period = ReportPeriod::new(args.from, args.to, args.utc_offset)?;
    let (_, store) = open(args.data_dir, false)?;
    let generated = format_utc(OffsetDateTime::now_utc());
    let text = match (args.kind, args.format) {
        (ReportKind::Calls, format) => {
            let days = store.report_calls(period).wait()?;
            match format {
                ReportFormat::Csv => reports::calls_csv(&days),
                ReportFormat::Html => reports::calls_html(&period, &days, &generated),
            }
        }
        (ReportKind::Agents, format) => {
            let rows = store.report_agents(period).wait()?;
            match format {
                ReportFormat::Csv => reports::agents_csv(&rows),
                ReportFormat::Html => reports::agents_html(&period, &rows, &generated),
            }
        }
        (ReportKind::Satisfaction, format) => {
            let report = store.report_satisfaction(period).wait()?;
            match format {
                ReportFormat::Csv => reports::satisfaction_csv(&report),
                ReportFormat::Html => reports::satisfaction_html(&period, &report, &generated),
            }
        }
    };
    match &args.out {
        Some(path) => {
            std::fs::write(path, text.as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        None => write_stdout(text.as_bytes())?,
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_strict_and_errors_say_the_format() {
        assert_eq!(parse_date("2026-11-24").unwrap(), time::macros::date!(2026 - 11 - 24));
        for bad in [
            "2026-11-31",
            "2026-13-01",
            "26-11-24",
            "2026/11/24",
            "2026-1-24",
            "+202-11-24",
            "",
            "2026-11-24x",
        ] {
            let e = parse_date(bad).unwrap_err();
            assert!(e.contains("YYYY-MM-DD"), "{bad}: {e}");
        }
    }

    #[test]
    fn offsets_parse_both_signs() {
        assert_eq!(parse_offset("+08:00").unwrap(), UtcOffset::from_hms(8, 0, 0).unwrap());
        assert_eq!(parse_offset("-03:30").unwrap(), UtcOffset::from_hms(-3, -30, 0).unwrap());
        assert_eq!(parse_offset("Z").unwrap(), UtcOffset::UTC);
        for bad in ["8", "+8:00", "+15:00", "+08:60", "08:00", "+08", "++8:00", "+08:-1"] {
            assert!(parse_offset(bad).unwrap_err().contains("+HH:MM"), "{bad}");
        }
    }

    #[test]
    fn tables_align_columns() {
        let t = format_table(&["A", "LONG"], &[vec!["xyz".into(), "1".into()]]);
        assert_eq!(t, "A    LONG\nxyz  1\n");
    }
}
