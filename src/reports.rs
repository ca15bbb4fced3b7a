//! Rendering of the call, agent and satisfaction reports as CSV and as HTML.
//!
//! The store computes the numbers ([`StoreHandle::report_calls`] and friends); this module
//! only lays them out, so it does no IO and can be tested on plain values.
//!
//! CSV follows RFC 4180: a header row, CRLF line endings, and fields quoted when they hold
//! a comma, a quote or a line break, with quotes doubled. Durations are whole milliseconds
//! and scores have two decimals, so a spreadsheet gets exact, machine-readable numbers.
//!
//! HTML is one self-contained file that can be mailed or archived and opened years later on
//! a machine without network: the style sheet is inline, the charts are inline SVG drawn
//! here, and there is no script at all. A Content-Security-Policy forbids loading anything,
//! so even a value that slipped past escaping could not fetch or run anything. Every value
//! from the database is escaped, since agent names and grades are free text.
//!
//! [`StoreHandle::report_calls`]: crate::store::StoreHandle::report_calls

use std::fmt::Write as _;

use crate::store::{AgentReportRow, CallsDay, ReportPeriod, SatisfactionReport, SatisfactionRow};

/// Which report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportKind {
    /// Incoming calls per day: offered, answered, abandoned, answer rate, waits, talk time.
    Calls,
    /// Per agent: calls answered, talk time, average satisfaction score.
    Agents,
    /// Satisfaction survey answers per agent and per day.
    Satisfaction,
}

impl ReportKind {
    fn title(self) -> &'static str {
        match self {
            ReportKind::Calls => "Calls",
            ReportKind::Agents => "Agents",
            ReportKind::Satisfaction => "Customer satisfaction",
        }
    }
}

// ---- CSV ---------------------------------------------------------------------------------

/// One CSV field, quoted only when RFC 4180 requires it.
pub fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

/// Builds a CSV document from a header and rows, with CRLF line endings.
fn csv(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = String>| {
        let cells: Vec<String> = cells.map(|c| csv_field(&c)).collect();
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    };
    line(&mut header.iter().map(|h| (*h).to_owned()));
    for row in rows {
        line(&mut row.into_iter());
    }
    out
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

fn score_text(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.2}")).unwrap_or_default()
}

fn percent_text(v: Option<f64>) -> String {
    v.map(|v| format!("{:.1}", v * 100.0)).unwrap_or_default()
}

/// The grades of a row as `name=count` pairs separated by semicolons.
fn grades_text(grades: &[(String, u64)]) -> String {
    grades.iter().map(|(g, n)| format!("{g}={n}")).collect::<Vec<_>>().join(";")
}

/// The calls report as CSV: one row per day.
pub fn calls_csv(days: &[CallsDay]) -> String {
    csv(
        &[
            "day",
            "offered",
            "answered",
            "abandoned",
            "answer_rate_pct",
            "avg_wait_ms",
            "max_wait_ms",
            "avg_talk_ms",
        ],
        days.iter().map(|d| {
            vec![
                d.day.clone(),
                d.offered.to_string(),
                d.answered.to_string(),
                d.abandoned.to_string(),
                percent_text(d.answer_rate()),
                opt(d.avg_wait_ms),
                opt(d.max_wait_ms),
                opt(d.avg_talk_ms),
            ]
        }),
    )
}

/// The agents report as CSV: one row per agent.
pub fn agents_csv(rows: &[AgentReportRow]) -> String {
    csv(
        &["agent", "name", "answered", "talk_ms_total", "talk_ms_avg", "survey_scores", "avg_score"],
        rows.iter().map(|r| {
            vec![
                r.agent_id.clone(),
                opt(r.name.as_ref()),
                r.answered.to_string(),
                r.talk_ms_total.to_string(),
                opt(r.talk_ms_avg),
                r.scored.to_string(),
                score_text(r.avg_score),
            ]
        }),
    )
}

/// The satisfaction report as CSV: the rows by agent (`group` = `agent`, an empty key for
/// answers without an agent), then the rows by day (`group` = `day`). There is a `score_N`
/// column for every score of the report's scale: 1 to 5, or more for longer surveys.
pub fn satisfaction_csv(report: &SatisfactionReport) -> String {
    let row = |group: &str, r: &SatisfactionRow| {
        let mut cells = vec![
            group.to_owned(),
            opt(r.key.as_ref()),
            opt(r.name.as_ref()),
            r.responses.to_string(),
            r.scored.to_string(),
            score_text(r.avg_score),
        ];
        cells.extend(r.distribution.iter().map(u64::to_string));
        cells.push(grades_text(&r.grades));
        cells
    };
    let score_columns: Vec<String> = (1..=report.scale.max(5)).map(|n| format!("score_{n}")).collect();
    let mut header = vec!["group", "key", "name", "responses", "scored", "avg_score"];
    header.extend(score_columns.iter().map(String::as_str));
    header.push("grades");
    csv(
        &header,
        report.by_agent.iter().map(|r| row("agent", r)).chain(report.by_day.iter().map(|r| row("day", r))),
    )
}

// ---- HTML --------------------------------------------------------------------------------

/// Escapes text for HTML element content and quoted attribute values (and for SVG, which
/// is XML): the five characters that could end a text run or an attribute.
pub fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters are not allowed in XML and only garble HTML.
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// A duration for people: tenths of a second under a minute, then m:ss or h:mm:ss.
pub fn duration_text(ms: i64) -> String {
    if ms.abs() < 60_000 {
        return format!("{:.1} s", ms as f64 / 1000.0);
    }
    let s = ms / 1000;
    if s < 3600 {
        format!("{}:{:02}", s / 60, s % 60)
    } else {
        format!("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
    }
}

/// How a chart's values are measured, which decides the axis labels and their maximum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Unit {
    Count,
    /// Values in 0..=1, shown as percentages up to 100 %.
    Share,
    /// Milliseconds, shown as seconds.
    Seconds,
    /// Milliseconds, shown as minutes.
    Minutes,
    /// Scores, shown up to the top of their scale (5 for most surveys).
    Score(u8),
}

impl Unit {
    /// The value in the unit the axis shows.
    fn scale(self, v: f64) -> f64 {
        match self {
            Unit::Count | Unit::Score(_) => v,
            Unit::Share => v * 100.0,
            Unit::Seconds => v / 1000.0,
            Unit::Minutes => v / 60_000.0,
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            Unit::Count | Unit::Score(_) => "",
            Unit::Share => " %",
            Unit::Seconds => " s",
            Unit::Minutes => " min",
        }
    }

    fn label(self, v: f64) -> String {
        let text = if v.fract().abs() < 1e-9 { format!("{v:.0}") } else { format!("{v:.1}") };
        format!("{text}{}", self.suffix())
    }
}

/// One series of bars: a name for the legend, a colour, and a value per category (`None`
/// draws no bar).
struct Series {
    name: String,
    colour: String,
    values: Vec<Option<f64>>,
}

const BLUE: &str = "#3b6fb6";
const GREEN: &str = "#4a9a4a";
const RED: &str = "#c8553d";
const ORANGE: &str = "#e39b2d";
const GREY: &str = "#7f7f7f";

/// The colour of score `score` on a scale of 1 to `top`: from red for the worst through
/// yellow to green for the best.
fn score_colour(score: u8, top: u8) -> String {
    let share = if top > 1 { f64::from(score.saturating_sub(1)) / f64::from(top - 1) } else { 1.0 };
    format!("hsl({:.0}, 55%, 48%)", share.clamp(0.0, 1.0) * 120.0)
}

/// The top of the score axis: 5 for the usual survey, 9 (one key) when an average is above 5.
fn score_top(averages: impl IntoIterator<Item = Option<f64>>) -> u8 {
    if averages.into_iter().flatten().any(|a| a > 5.0) {
        9
    } else {
        5
    }
}

/// The smallest "round" number (1, 2 or 5 times a power of ten) at or above `v`, so that
/// axis ticks fall on readable values.
fn nice_ceiling(v: f64) -> f64 {
    if v.is_nan() || v <= 0.0 || v.is_infinite() {
        return 1.0;
    }
    let power = 10f64.powf(v.log10().floor());
    for step in [1.0, 2.0, 5.0, 10.0] {
        if step * power >= v - 1e-9 {
            return step * power;
        }
    }
    10.0 * power
}

/// Draws a grouped bar chart as inline SVG: one group per category, one bar per series,
/// a y axis with five gridlines, a legend, and a tooltip (`<title>`) on every bar. It has no
/// `xmlns`: inside HTML the parser puts `<svg>` in the SVG namespace itself, and leaving it
/// out keeps the page free of any URL.
fn bar_chart(title: &str, categories: &[String], series: &[Series], unit: Unit) -> String {
    const RIGHT: f64 = 16.0;
    const TOP: f64 = 40.0;
    const PLOT_H: f64 = 200.0;
    const BAR_W: f64 = 14.0;
    const GAP: f64 = 10.0;
    /// The average width of a character at font-size 11, for laying out labels.
    const CHAR_W: f64 = 6.2;
    /// Longer category labels are cut (the bars' tooltips keep the whole text).
    const MAX_LABEL: usize = 28;

    let n = categories.len();
    let labels: Vec<String> = categories
        .iter()
        .map(|c| {
            if c.chars().count() > MAX_LABEL {
                format!("{}…", c.chars().take(MAX_LABEL - 1).collect::<String>())
            } else {
                c.clone()
            }
        })
        .collect();
    let group_w = series.len().max(1) as f64 * BAR_W + GAP;
    let longest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0) as f64 * CHAR_W;
    // Labels wider than their group are turned 45 degrees so that they do not overlap; they
    // then reach down and to the left by the label's width over the square root of two.
    let rotate = longest > group_w - 2.0;
    let reach = if rotate { longest * std::f64::consts::FRAC_1_SQRT_2 } else { 0.0 };
    let left = 64f64.max(reach - group_w / 2.0 + 8.0);
    let bottom = if rotate { reach + 24.0 } else { 36.0 };
    let width = (left + RIGHT + n as f64 * group_w).max(480.0);
    let height = TOP + PLOT_H + bottom;

    let max_value =
        series.iter().flat_map(|s| s.values.iter().flatten()).map(|v| unit.scale(*v)).fold(0.0f64, f64::max);
    let top_value = match unit {
        Unit::Share => 100.0,
        Unit::Score(top) => f64::from(top),
        // Five gridlines on whole numbers.
        Unit::Count => nice_ceiling(max_value).max(5.0),
        Unit::Seconds | Unit::Minutes => nice_ceiling(max_value),
    };
    let y = |v: f64| TOP + PLOT_H - (v / top_value).clamp(0.0, 1.0) * PLOT_H;

    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg role="img" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif" font-size="11">"#
    );
    let _ = write!(svg, "<title>{}</title>", html_escape(title));
    // Legend.
    let mut x = left;
    for s in series {
        let _ = write!(
            svg,
            r#"<rect x="{x:.1}" y="12" width="10" height="10" fill="{}"/><text x="{:.1}" y="21">{}</text>"#,
            html_escape(&s.colour),
            x + 14.0,
            html_escape(&s.name)
        );
        x += 24.0 + CHAR_W * s.name.chars().count() as f64;
    }
    // Gridlines and y labels.
    for i in 0..=5 {
        let v = top_value * f64::from(i) / 5.0;
        let gy = y(v);
        let _ = write!(
            svg,
            r##"<line x1="{left:.1}" y1="{gy:.1}" x2="{:.1}" y2="{gy:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            width - RIGHT,
            left - 6.0,
            gy + 4.0,
            html_escape(&unit.label(v))
        );
    }
    if n == 0 {
        let _ = write!(
            svg,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#777">no data in this period</text>"##,
            (left + width - RIGHT) / 2.0,
            TOP + PLOT_H / 2.0
        );
    }
    let label_values = n * series.len() <= 40;
    for (i, (category, label)) in categories.iter().zip(&labels).enumerate() {
        let gx = left + i as f64 * group_w + GAP / 2.0;
        for (j, s) in series.iter().enumerate() {
            let Some(value) = s.values.get(i).copied().flatten() else { continue };
            let shown = unit.scale(value);
            let bx = gx + j as f64 * BAR_W;
            let by = y(shown);
            let tip = format!("{category} · {}: {}", s.name, unit.label((shown * 10.0).round() / 10.0));
            let _ = write!(
                svg,
                r#"<rect x="{bx:.1}" y="{by:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{}</title></rect>"#,
                BAR_W - 2.0,
                TOP + PLOT_H - by,
                html_escape(&s.colour),
                html_escape(&tip)
            );
            if label_values {
                let text =
                    if shown.fract().abs() < 1e-9 { format!("{shown:.0}") } else { format!("{shown:.1}") };
                let _ = write!(
                    svg,
                    r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="9">{}</text>"#,
                    bx + (BAR_W - 2.0) / 2.0,
                    by - 3.0,
                    html_escape(&text)
                );
            }
        }
        let cx = gx + (group_w - GAP) / 2.0;
        let ly = TOP + PLOT_H + 14.0;
        if rotate {
            let _ = write!(
                svg,
                r#"<text x="{cx:.1}" y="{ly:.1}" text-anchor="end" transform="rotate(-45 {cx:.1} {ly:.1})">{}</text>"#,
                html_escape(label)
            );
        } else {
            let _ = write!(
                svg,
                r#"<text x="{cx:.1}" y="{ly:.1}" text-anchor="middle">{}</text>"#,
                html_escape(label)
            );
        }
    }
    let _ = write!(
        svg,
        r##"<line x1="{left:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#555"/></svg>"##,
        TOP + PLOT_H,
        width - RIGHT,
        TOP + PLOT_H
    );
    svg
}

const STYLE: &str = "
body { font-family: system-ui, sans-serif; color: #222; margin: 2em auto; max-width: 72em; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; margin-top: 1.8em; border-bottom: 1px solid #ccc; }
p.meta { color: #555; margin-top: 0; }
p.summary { font-size: 1.05em; }
.chart { overflow-x: auto; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; }
th { background: #f0f0f0; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
tr:nth-child(even) td { background: #fafafa; }
@media print { .chart { overflow: visible; } }
";

/// A period's days and offset, as the reports' subtitle shows them.
fn period_text(period: &ReportPeriod) -> String {
    let offset = period.utc_offset();
    let (h, m, _) = offset.as_hms();
    let sign = if offset.is_negative() { '-' } else { '+' };
    format!("{} to {} (days at UTC{sign}{:02}:{:02})", period.from(), period.to(), h.abs(), m.abs())
}

/// The frame every HTML report shares: head with inline style and a policy that forbids
/// loading anything, title, period and generation time, then the body.
fn page(kind: ReportKind, period: &ReportPeriod, generated_utc: &str, body: &str) -> String {
    let title = format!("{} report, {} to {}", kind.title(), period.from(), period.to());
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Switchboard: {title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <h1>{h1}</h1>\n<p class=\"meta\">{period} · generated {generated} by Switchboard</p>\n{body}</body>\n</html>\n",
        title = html_escape(&title),
        h1 = html_escape(kind.title()),
        period = html_escape(&period_text(period)),
        generated = html_escape(generated_utc),
    )
}

/// A table cell: numbers right-aligned.
enum Cell {
    Text(String),
    Num(String),
}

fn table(headers: &[&str], rows: impl IntoIterator<Item = Vec<Cell>>) -> String {
    let mut out = String::from("<table>\n<thead><tr>");
    for h in headers {
        let _ = write!(out, "<th>{}</th>", html_escape(h));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            match cell {
                Cell::Text(t) => {
                    let _ = write!(out, "<td>{}</td>", html_escape(&t));
                }
                Cell::Num(t) => {
                    let _ = write!(out, "<td class=\"n\">{}</td>", html_escape(&t));
                }
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
    out
}

fn section(title: &str, content: &str) -> String {
    format!("<h2>{}</h2>\n{content}", html_escape(title))
}

fn chart(svg: String) -> String {
    format!("<div class=\"chart\">{svg}</div>\n")
}

fn num(v: impl ToString) -> Cell {
    Cell::Num(v.to_string())
}

fn dash_or(v: Option<String>) -> Cell {
    Cell::Num(v.unwrap_or_else(|| "–".to_owned()))
}

/// The calls report as one self-contained HTML page: calls, answer rate and waits per day
/// as charts, then the table.
pub fn calls_html(period: &ReportPeriod, days: &[CallsDay], generated_utc: &str) -> String {
    let labels: Vec<String> = days.iter().map(|d| d.day.clone()).collect();
    let count = |f: fn(&CallsDay) -> u64| days.iter().map(|d| Some(f(d) as f64)).collect::<Vec<_>>();
    let (offered, answered, abandoned) =
        days.iter().fold((0, 0, 0), |(o, a, b), d| (o + d.offered, a + d.answered, b + d.abandoned));
    let rate = if offered > 0 {
        format!(" ({:.1} %)", answered as f64 * 100.0 / offered as f64)
    } else {
        String::new()
    };
    let mut body = format!(
        "<p class=\"summary\">{offered} incoming calls, {answered} answered{rate}, {abandoned} abandoned.</p>\n"
    );
    body.push_str(&section(
        "Calls per day",
        &chart(bar_chart(
            "Calls per day",
            &labels,
            &[
                Series { name: "offered".into(), colour: BLUE.into(), values: count(|d| d.offered) },
                Series { name: "answered".into(), colour: GREEN.into(), values: count(|d| d.answered) },
                Series { name: "abandoned".into(), colour: RED.into(), values: count(|d| d.abandoned) },
            ],
            Unit::Count,
        )),
    ));
    body.push_str(&section(
        "Answer rate per day",
        &chart(bar_chart(
            "Answer rate per day",
            &labels,
            &[Series {
                name: "answered / offered".into(),
                colour: GREEN.into(),
                values: days.iter().map(CallsDay::answer_rate).collect(),
            }],
            Unit::Share,
        )),
    ));
    body.push_str(&section(
        "Waiting time per day",
        &chart(bar_chart(
            "Waiting time per day",
            &labels,
            &[
                Series {
                    name: "average wait".into(),
                    colour: ORANGE.into(),
                    values: days.iter().map(|d| d.avg_wait_ms.map(|v| v as f64)).collect(),
                },
                Series {
                    name: "longest wait".into(),
                    colour: RED.into(),
                    values: days.iter().map(|d| d.max_wait_ms.map(|v| v as f64)).collect(),
                },
            ],
            Unit::Seconds,
        )),
    ));
    body.push_str(&section(
        "Table",
        &table(
            &[
                "Day",
                "Offered",
                "Answered",
                "Abandoned",
                "Answer rate",
                "Average wait",
                "Longest wait",
                "Average talk",
            ],
            days.iter().map(|d| {
                vec![
                    Cell::Text(d.day.clone()),
                    num(d.offered),
                    num(d.answered),
                    num(d.abandoned),
                    dash_or(d.answer_rate().map(|r| format!("{:.1} %", r * 100.0))),
                    dash_or(d.avg_wait_ms.map(duration_text)),
                    dash_or(d.max_wait_ms.map(duration_text)),
                    dash_or(d.avg_talk_ms.map(duration_text)),
                ]
            }),
        ),
    ));
    page(ReportKind::Calls, period, generated_utc, &body)
}

/// How an agent is labelled in charts: the name with the id, or the id alone.
fn agent_label(id: Option<&str>, name: Option<&str>) -> String {
    match (id, name) {
        (Some(id), Some(name)) if name != id => format!("{name} ({id})"),
        (Some(id), _) => id.to_owned(),
        (None, _) => "(no agent)".to_owned(),
    }
}

/// The agents report as one self-contained HTML page: calls, talk time and average score
/// per agent as charts, then the table.
pub fn agents_html(period: &ReportPeriod, rows: &[AgentReportRow], generated_utc: &str) -> String {
    let labels: Vec<String> =
        rows.iter().map(|r| agent_label(Some(&r.agent_id), r.name.as_deref())).collect();
    let mut body =
        format!("<p class=\"summary\">{} agents took calls or got survey answers.</p>\n", rows.len());
    body.push_str(&section(
        "Calls answered per agent",
        &chart(bar_chart(
            "Calls answered per agent",
            &labels,
            &[Series {
                name: "answered".into(),
                colour: GREEN.into(),
                values: rows.iter().map(|r| Some(r.answered as f64)).collect(),
            }],
            Unit::Count,
        )),
    ));
    body.push_str(&section(
        "Talk time per agent",
        &chart(bar_chart(
            "Talk time per agent",
            &labels,
            &[Series {
                name: "total talk time".into(),
                colour: BLUE.into(),
                values: rows.iter().map(|r| Some(r.talk_ms_total as f64)).collect(),
            }],
            Unit::Minutes,
        )),
    ));
    body.push_str(&section(
        "Average satisfaction score per agent",
        &chart(bar_chart(
            "Average satisfaction score per agent",
            &labels,
            &[Series {
                name: "average score".into(),
                colour: ORANGE.into(),
                values: rows.iter().map(|r| r.avg_score).collect(),
            }],
            Unit::Score(score_top(rows.iter().map(|r| r.avg_score))),
        )),
    ));
    body.push_str(&section(
        "Table",
        &table(
            &["Agent", "Name", "Answered", "Talk time", "Average talk", "Survey scores", "Average score"],
            rows.iter().map(|r| {
                vec![
                    Cell::Text(r.agent_id.clone()),
                    Cell::Text(r.name.clone().unwrap_or_default()),
                    num(r.answered),
                    Cell::Num(duration_text(r.talk_ms_total)),
                    dash_or(r.talk_ms_avg.map(duration_text)),
                    num(r.scored),
                    dash_or(r.avg_score.map(|s| format!("{s:.2}"))),
                ]
            }),
        ),
    ));
    page(ReportKind::Agents, period, generated_utc, &body)
}

fn satisfaction_table(first: &str, with_name: bool, scale: u8, rows: &[SatisfactionRow]) -> String {
    let score_headers: Vec<String> = (1..=scale).map(|n| n.to_string()).collect();
    let mut headers = vec![first];
    if with_name {
        headers.push("Name");
    }
    headers.extend(["Answers", "Scores", "Average"]);
    headers.extend(score_headers.iter().map(String::as_str));
    headers.push("Grades");
    table(
        &headers,
        rows.iter().map(|r| {
            let mut cells = vec![Cell::Text(r.key.clone().unwrap_or_else(|| "(no agent)".to_owned()))];
            if with_name {
                cells.push(Cell::Text(r.name.clone().unwrap_or_default()));
            }
            cells.extend([num(r.responses), num(r.scored), dash_or(r.avg_score.map(|s| format!("{s:.2}")))]);
            cells.extend((0..usize::from(scale)).map(|i| num(r.distribution.get(i).copied().unwrap_or(0))));
            cells.push(Cell::Text(
                r.grades.iter().map(|(g, n)| format!("{g}: {n}")).collect::<Vec<_>>().join(", "),
            ));
            cells
        }),
    )
}

/// The score distribution of each row as one series per score of the scale.
fn distribution_series(rows: &[SatisfactionRow], scale: u8) -> Vec<Series> {
    (1..=scale)
        .map(|score| Series {
            name: format!("score {score}"),
            colour: score_colour(score, scale),
            values: rows
                .iter()
                .map(|r| Some(r.distribution.get(usize::from(score) - 1).copied().unwrap_or(0) as f64))
                .collect(),
        })
        .collect()
}

/// The satisfaction report as one self-contained HTML page: average scores and score
/// distributions per agent and per day as charts, then the two tables.
pub fn satisfaction_html(period: &ReportPeriod, report: &SatisfactionReport, generated_utc: &str) -> String {
    let agents: Vec<String> =
        report.by_agent.iter().map(|r| agent_label(r.key.as_deref(), r.name.as_deref())).collect();
    let days: Vec<String> = report.by_day.iter().map(|r| r.key.clone().unwrap_or_default()).collect();
    let responses: u64 = report.by_day.iter().map(|r| r.responses).sum();
    let scale = report.scale.max(5);
    let score_name = format!("average score (1-{scale})");
    let mut body = format!("<p class=\"summary\">{responses} survey answers.</p>\n");
    let average = |rows: &[SatisfactionRow]| rows.iter().map(|r| r.avg_score).collect::<Vec<_>>();
    body.push_str(&section(
        "Average score per agent",
        &chart(bar_chart(
            "Average score per agent",
            &agents,
            &[Series { name: score_name.clone(), colour: ORANGE.into(), values: average(&report.by_agent) }],
            Unit::Score(scale),
        )),
    ));
    body.push_str(&section(
        "Scores per agent",
        &chart(bar_chart(
            "Scores per agent",
            &agents,
            &distribution_series(&report.by_agent, scale),
            Unit::Count,
        )),
    ));
    body.push_str(&section(
        "Average score per day",
        &chart(bar_chart(
            "Average score per day",
            &days,
            &[Series { name: score_name, colour: ORANGE.into(), values: average(&report.by_day) }],
            Unit::Score(scale),
        )),
    ));
    body.push_str(&section(
        "Answers per day",
        &chart(bar_chart(
            "Answers per day",
            &days,
            &[
                Series {
                    name: "answers".into(),
                    colour: BLUE.into(),
                    values: report.by_day.iter().map(|r| Some(r.responses as f64)).collect(),
                },
                Series {
                    name: "with a score".into(),
                    colour: GREY.into(),
                    values: report.by_day.iter().map(|r| Some(r.scored as f64)).collect(),
                },
            ],
            Unit::Count,
        )),
    ));
    body.push_str(&section("By agent", &satisfaction_table("Agent", true, scale, &report.by_agent)));
    body.push_str(&section("By day", &satisfaction_table("Day", false, scale, &report.by_day)));
    page(ReportKind::Satisfaction, period, generated_utc, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn period() -> ReportPeriod {
        let d = time::macros::date!(2026 - 11 - 24);
        ReportPeriod::new(d, d, time::UtcOffset::from_hms(8, 0, 0).unwrap()).unwrap()
    }

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv(&["a", "b"], [vec!["1".into(), "x,y".into()]]), "a,b\r\n1,\"x,y\"\r\n");
    }

    #[test]
    fn satisfaction_csv_has_a_column_per_score_of_the_scale() {
        let row = SatisfactionRow {
            key: Some("1001".into()),
            name: Some("Li, Lei".into()),
            responses: 2,
            scored: 1,
            avg_score: Some(7.0),
            distribution: vec![0, 0, 0, 0, 0, 0, 1],
            grades: vec![("good".into(), 1)],
        };
        let report = SatisfactionReport { scale: 7, by_agent: vec![row], by_day: vec![] };
        assert_eq!(
            satisfaction_csv(&report),
            "group,key,name,responses,scored,avg_score,score_1,score_2,score_3,score_4,score_5,\
             score_6,score_7,grades\r\nagent,1001,\"Li, Lei\",2,1,7.00,0,0,0,0,0,0,1,good=1\r\n"
        );
        let html = satisfaction_html(&period(), &report, "t");
        assert!(html.contains("average score (1-7)") && html.contains("score 7"));
    }

    #[test]
    fn html_escaping_covers_text_and_attributes() {
        assert_eq!(html_escape("<script>&\"'"), "&lt;script&gt;&amp;&quot;&#39;");
        assert_eq!(html_escape("a\u{7}b"), "a\u{fffd}b");
    }

    #[test]
    fn durations_and_axis_steps_read_well() {
        assert_eq!(duration_text(1500), "1.5 s");
        assert_eq!(duration_text(125_000), "2:05");
        assert_eq!(duration_text(3_725_000), "1:02:05");
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(3.0), 5.0);
        assert_eq!(nice_ceiling(11.0), 20.0);
        assert_eq!(nice_ceiling(500.0), 500.0);
    }

    #[test]
    fn html_reports_are_self_contained_and_escape_names() {
        let row = AgentReportRow {
            agent_id: "1001".into(),
            name: Some("<b>Li \"Lei\"</b>".into()),
            answered: 3,
            talk_ms_total: 90_000,
            talk_ms_avg: Some(30_000),
            scored: 1,
            avg_score: Some(4.0),
        };
        let html = agents_html(&period(), &[row], "2026-11-25T00:00:00.000Z");
        assert!(html.contains("&lt;b&gt;Li &quot;Lei&quot;&lt;/b&gt;"), "{html}");
        assert!(!html.contains("<b>"));
        assert!(html.contains("<svg") && html.contains("UTC+08:00"));
        // Not even the SVG namespace: the HTML parser gives inline <svg> its namespace.
        assert!(!html.contains("<script") && !html.contains("https://") && !html.contains("http://"));

        let empty = calls_html(&period(), &[], "t");
        assert!(empty.contains("no data in this period"));
        let sat = satisfaction_html(&period(), &SatisfactionReport::default(), "t");
        assert!(sat.contains("0 survey answers"));
    }
}
