//! The shell's command grammar, its help and its completion.
//!
//! One static table, [`COMMANDS`], drives all three, so what `help` says, what Tab offers and
//! what the parser accepts can never disagree. A command is a path of words (`test dtmf send`)
//! followed by arguments; every word may be abbreviated to any unique prefix, in any case
//! (`sh ch` is `show channels`, as on a Cisco console), and the arguments are checked here so
//! that the executor only ever sees values in range.
//!
//! A line may end in `| grep WORD` or `| include WORD`: the filter is returned beside the
//! command and the session applies it to the reply.

use std::fmt;

use switchboard_driver_api::ChannelKind;

/// A command for the daemon's executor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// The cards' spans with their state, alarms and counters.
    ShowSpans,
    /// The channels, all or those the filter selects.
    ShowChannels { filter: Option<ChannelFilter> },
    /// The calls in progress.
    ShowCalls,
    /// The agents logged in.
    ShowAgents,
    /// The queues.
    ShowQueues,
    /// The active alarms.
    ShowAlarms,
    /// Version and uptime.
    ShowVersion,
    /// Real-time statistics: deadline misses, ring and queue overflows, per-thread load.
    ShowStats,
    /// The last `lines` log lines at `level` or more severe (all levels if `None`); with
    /// `follow`, then every new one until Ctrl-C.
    ShowLog { lines: usize, level: Option<LogLevel>, follow: bool },
    /// Shows the log filter (`None`) or sets it. The filter is passed as typed (a bare
    /// level word is spelled out in full) and the daemon validates it.
    LogLevel { filter: Option<String> },
    /// Loops a channel's received audio back to the line.
    TestLoopback { port: u16, seconds: u32 },
    /// Sends a 1004 Hz tone at `level_dbm0` and measures the level received.
    TestTone { port: u16, seconds: u32, level_dbm0: i32 },
    /// Sends DTMF digits (1 to 32 of `0-9 * # A-D`, upper case).
    TestDtmfSend { port: u16, digits: String },
    /// Reports the DTMF digits received.
    TestDtmfDetect { port: u16, seconds: u32 },
    /// Records what a channel receives to a WAV file.
    TestRecord { port: u16, seconds: u32 },
    /// Hangs up a call: a call id as `show calls` lists it, or a port number. The executor
    /// resolves which.
    Hangup { target: String },
    /// Takes a channel out of service.
    Block { port: u16 },
    /// Puts a blocked channel back in service.
    Unblock { port: u16 },
    /// Reloads the configuration and the IVR flows.
    Reload,
}

/// A command the session answers itself; it never reaches the executor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Local {
    /// `help` with the canonical words of the topic (empty: every command). Render it with
    /// [`help_lines`].
    Help { topic: Vec<&'static str> },
    /// `history`.
    History,
    /// `logout`, `exit` or `quit`.
    Logout,
}

/// What a line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Run(Command),
    Local(Local),
}

/// A parsed line: what to do, and the `| grep` filter for its reply lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    pub action: Action,
    /// Keep only the reply lines that contain this, ignoring case.
    pub filter: Option<String>,
}

/// Log levels, from the least to the most verbose.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    pub const ALL: [LogLevel; 5] =
        [LogLevel::Error, LogLevel::Warn, LogLevel::Info, LogLevel::Debug, LogLevel::Trace];

    pub const fn name(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

const LEVEL_WORDS: &[&str] = &["error", "warn", "info", "debug", "trace"];

/// Which channels `show channels` lists. It prints as the word that parses back to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelFilter {
    /// Analog trunks (FXO).
    Trunk,
    /// Analog seats (FXS).
    Seat,
    /// E1 bearer and signalling channels.
    E1,
    /// Sound devices.
    Sound,
    /// Ports `first..=last` (1-based, as users see them).
    Ports { first: u16, last: u16 },
}

const CHANNEL_KIND_WORDS: &[&str] = &["trunk", "seat", "e1", "sound"];

impl ChannelFilter {
    /// Parses a kind word (abbreviated to a unique prefix), a port or a range `FIRST-LAST`.
    pub fn parse(word: &str) -> Result<ChannelFilter, String> {
        if word.starts_with(|c: char| c.is_ascii_digit()) {
            let (first, last) = match word.split_once('-') {
                Some((a, b)) => (a, b),
                None => (word, word),
            };
            return match (parse_port(first), parse_port(last)) {
                (Some(first), Some(last)) if first <= last => Ok(ChannelFilter::Ports { first, last }),
                _ => Err(format!("'{word}' is not a port or a port range like 1-8")),
            };
        }
        match choose(word, CHANNEL_KIND_WORDS) {
            Ok("trunk") => Ok(ChannelFilter::Trunk),
            Ok("seat") => Ok(ChannelFilter::Seat),
            Ok("e1") => Ok(ChannelFilter::E1),
            Ok(_) => Ok(ChannelFilter::Sound),
            Err(_) => {
                Err(format!("'{word}' is not one of trunk, seat, e1, sound, a port or a range like 1-8"))
            }
        }
    }

    /// Whether the filter selects a channel.
    pub fn matches(&self, port: u16, kind: ChannelKind) -> bool {
        match self {
            ChannelFilter::Trunk => kind == ChannelKind::FxoTrunk,
            ChannelFilter::Seat => kind == ChannelKind::FxsSeat,
            ChannelFilter::E1 => matches!(kind, ChannelKind::E1Bearer | ChannelKind::E1Signalling),
            ChannelFilter::Sound => kind == ChannelKind::Sound,
            ChannelFilter::Ports { first, last } => (*first..=*last).contains(&port),
        }
    }
}

impl fmt::Display for ChannelFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChannelFilter::Trunk => f.write_str("trunk"),
            ChannelFilter::Seat => f.write_str("seat"),
            ChannelFilter::E1 => f.write_str("e1"),
            ChannelFilter::Sound => f.write_str("sound"),
            ChannelFilter::Ports { first, last } if first == last => write!(f, "{first}"),
            ChannelFilter::Ports { first, last } => write!(f, "{first}-{last}"),
        }
    }
}

/// Why a line is not a command. The message names the command and the word at fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Nothing but blanks.
    #[error("empty line")]
    Empty,
    /// The first word is no command.
    #[error("unknown command '{0}': type help")]
    UnknownCommand(String),
    /// A later command word is not one of those that may follow.
    #[error("{context}: unknown word '{word}': expected one of {}", expected.join(", "))]
    UnknownWord { context: String, word: String, expected: Vec<&'static str> },
    /// The line stopped before the command was complete (`show`).
    #[error("{context}: expected one of {}", expected.join(", "))]
    Incomplete { context: String, expected: Vec<&'static str> },
    /// An abbreviation fits more than one word.
    #[error("{}", ambiguous_message(context, word, candidates))]
    Ambiguous { context: String, word: String, candidates: Vec<&'static str> },
    /// An argument is missing.
    #[error("{command}: missing {what} (usage: {usage})")]
    Missing { command: String, what: &'static str, usage: &'static str },
    /// An argument is wrong.
    #[error("{command}: {message}")]
    Invalid { command: String, message: String },
    /// More arguments than the command takes.
    #[error("{command}: unexpected '{word}' (usage: {usage})")]
    Unexpected { command: String, word: String, usage: &'static str },
    /// The part after `|` is not `grep WORD` or `include WORD`.
    #[error("{0}")]
    Filter(&'static str),
}

fn ambiguous_message(context: &str, word: &str, candidates: &[&str]) -> String {
    if context.is_empty() {
        format!("ambiguous command '{word}': could be {}", candidates.join(", "))
    } else {
        format!("{context}: '{word}' is ambiguous: could be {}", candidates.join(", "))
    }
}

/// One command of the table.
#[derive(Debug)]
pub struct Spec {
    /// The command's words, in full.
    pub words: &'static [&'static str],
    /// The usage line, words in full and arguments in capitals.
    pub usage: &'static str,
    /// A line for the `help` listing (at most 58 characters, so the listing fits 80 columns).
    pub summary: &'static str,
    /// What `help COMMAND` explains, one paragraph; wrapped when shown.
    pub help: &'static str,
    /// A line that parses (the tests check it).
    pub example: &'static str,
    /// Keyword arguments Tab completes.
    pub arg_words: &'static [&'static str],
    parse: fn(&mut Args) -> Result<Action, ParseError>,
}

/// Every command. No command's words are a prefix of another's, so a path of words names
/// at most one command.
pub static COMMANDS: &[Spec] = &[
    Spec {
        words: &["show", "spans"],
        usage: "show spans",
        summary: "Spans: kind, channels, D-channel state and alarms",
        help: "Lists every span of the configured cards: its kind (analog, E1, sound), its \
               number of channels, its alarm (red, yellow, blue, loss of signal; a sound \
               device unplugged) or OK. A PRI span also shows whether its D-channel is up.",
        example: "show spans",
        arg_words: &[],
        parse: |a| a.run(Command::ShowSpans),
    },
    Spec {
        words: &["show", "channels"],
        usage: "show channels [trunk|seat|e1|sound|PORT|FIRST-LAST]",
        summary: "Channels: kind, state, blocking and the call on each",
        help: "Lists the channels with their port number, kind, line state, whether they are \
               blocked, and the call on them. A kind word keeps only the channels of that kind; \
               a port or a range like 1-8 keeps only those ports.",
        example: "show channels 1-8",
        arg_words: CHANNEL_KIND_WORDS,
        parse: |a| {
            let filter = match a.next() {
                None => None,
                Some(word) => Some(ChannelFilter::parse(word).map_err(|message| a.invalid(message))?),
            };
            a.run(Command::ShowChannels { filter })
        },
    },
    Spec {
        words: &["show", "calls"],
        usage: "show calls",
        summary: "Calls in progress, with their call ids",
        help: "Lists the calls in progress: the call id (which hangup takes), the ports, the \
               caller, the state and how long the call has lasted.",
        example: "show calls",
        arg_words: &[],
        parse: |a| a.run(Command::ShowCalls),
    },
    Spec {
        words: &["show", "agents"],
        usage: "show agents",
        summary: "Seats with their agent and agent state",
        help: "Lists every seat (phone or headset) with the agent logged in on it, if any, \
               the agent's state (idle, ringing, talking, held, wrap-up, paused, monitoring) \
               and the reason given for a pause.",
        example: "show agents",
        arg_words: &[],
        parse: |a| a.run(Command::ShowAgents),
    },
    Spec {
        words: &["show", "queues"],
        usage: "show queues",
        summary: "Queues: calls waiting, longest wait, agents",
        help: "Lists the queues with the number of calls waiting, the longest wait and the \
               agents available, busy and paused.",
        example: "show queues",
        arg_words: &[],
        parse: |a| a.run(Command::ShowQueues),
    },
    Spec {
        words: &["show", "alarms"],
        usage: "show alarms",
        summary: "Alarms now and recent changes; blocked ports",
        help: "Lists the alarms active now (span alarms, unplugged sound devices) with the \
               time each was raised, the last alarm changes, and the ports blocked for \
               maintenance.",
        example: "show alarms",
        arg_words: &[],
        parse: |a| a.run(Command::ShowAlarms),
    },
    Spec {
        words: &["show", "version"],
        usage: "show version",
        summary: "Version and uptime",
        help: "Shows the daemon's version, the cards it drives and how long it has been \
               running.",
        example: "show version",
        arg_words: &[],
        parse: |a| a.run(Command::ShowVersion),
    },
    Spec {
        words: &["show", "stats"],
        usage: "show stats",
        summary: "Real-time statistics: deadline misses, overflows, load",
        help: "Shows the media engine's real-time statistics: ticks, deadline misses, ring and \
               queue overflows, and the load of each thread.",
        example: "show stats",
        arg_words: &[],
        parse: |a| a.run(Command::ShowStats),
    },
    Spec {
        words: &["log", "tail"],
        usage: "log tail [N] [error|warn|info|debug|trace] [-f|follow]",
        summary: "The last N log lines (default 20); -f follows",
        help: "Shows the last N log lines (1 to 1000, default 20). A level keeps only the lines \
               at that level or more severe. With -f (or follow) new lines are shown as they \
               are logged until Ctrl-C. The arguments may come in any order.",
        example: "log tail 50 warn -f",
        arg_words: &["error", "warn", "info", "debug", "trace", "follow", "-f"],
        parse: parse_log_tail,
    },
    Spec {
        words: &["log", "level"],
        usage: "log level [FILTER]",
        summary: "Show the log level, or set it at run time",
        help: "Without a filter, shows the log filter in force. With one, sets it until the \
               next restart: a level (error, warn, info, debug, trace) or a comma-separated \
               list of TARGET=LEVEL and a default level, for example \
               switchboard::pri=trace,info.",
        example: "log level switchboard::pri=trace,info",
        arg_words: LEVEL_WORDS,
        parse: parse_log_level,
    },
    Spec {
        words: &["test", "loopback"],
        usage: "test loopback PORT [SECONDS]",
        summary: "Loop a channel's received audio back to the line",
        help: "Sends back to the line what the channel receives, for SECONDS seconds (1 to \
               600, default 5), so the far end hears itself. The channel must be idle.",
        example: "test loopback 3 10",
        arg_words: &[],
        parse: |a| {
            let port = a.port()?;
            let seconds = a.seconds(5)?;
            a.run(Command::TestLoopback { port, seconds })
        },
    },
    Spec {
        words: &["test", "tone"],
        usage: "test tone PORT [SECONDS] [DBM0]",
        summary: "Send a 1004 Hz tone and measure the level received",
        help: "Sends a 1004 Hz test tone on the channel at DBM0 (-60 to 3, default -10 dBm0) \
               for SECONDS seconds (1 to 600, default 5) and measures what comes back: the \
               level at 1004 Hz, the level in all, the peak, and the difference from what was \
               sent. On a line looped at the far end that is the line's loss; on a 2-wire line \
               with nothing at the far end, its echo return loss. The channel must be idle; \
               an analog trunk is taken off-hook for the test.",
        example: "test tone 3 5 -10",
        arg_words: &[],
        parse: |a| {
            let port = a.port()?;
            let seconds = a.seconds(5)?;
            let level_dbm0 = a.level(-10)?;
            a.run(Command::TestTone { port, seconds, level_dbm0 })
        },
    },
    Spec {
        words: &["test", "dtmf", "send"],
        usage: "test dtmf send PORT DIGITS",
        summary: "Send DTMF digits on a channel",
        help: "Sends DIGITS (1 to 32 of 0-9 * # A-D) on the channel as DTMF tones. The \
               channel must be idle or in a test.",
        example: "test dtmf send 3 123*#A",
        arg_words: &[],
        parse: |a| {
            let port = a.port()?;
            let digits = a.dtmf()?;
            a.run(Command::TestDtmfSend { port, digits })
        },
    },
    Spec {
        words: &["test", "dtmf", "detect"],
        usage: "test dtmf detect PORT [SECONDS]",
        summary: "Show the DTMF digits received on a channel",
        help: "Reports every DTMF digit received on the channel, with its duration and level, \
               for SECONDS seconds (1 to 600, default 10) or until Ctrl-C.",
        example: "test dtmf detect 3 30",
        arg_words: &[],
        parse: |a| {
            let port = a.port()?;
            let seconds = a.seconds(10)?;
            a.run(Command::TestDtmfDetect { port, seconds })
        },
    },
    Spec {
        words: &["test", "record"],
        usage: "test record PORT [SECONDS]",
        summary: "Record a channel, both directions, to a WAV file",
        help: "Records what the channel receives and sends, mixed, for SECONDS seconds (1 to \
               600, default 10) to DATA_DIR/line-tests/portN-DATE-TIME.wav and shows its name.",
        example: "test record 3 60",
        arg_words: &[],
        parse: |a| {
            let port = a.port()?;
            let seconds = a.seconds(10)?;
            a.run(Command::TestRecord { port, seconds })
        },
    },
    Spec {
        words: &["hangup"],
        usage: "hangup CALL|PORT",
        summary: "Hang up a call, by call id or port",
        help: "Hangs up a call: give its call id as show calls lists it, or the number of a \
               port it is on. Every leg of the call is released.",
        example: "hangup 12",
        arg_words: &[],
        parse: |a| {
            let target = a.required("a call id or port")?;
            if target.len() > 64 {
                return Err(a.invalid(format!("'{target}' is too long for a call id")));
            }
            a.run(Command::Hangup { target: target.to_string() })
        },
    },
    Spec {
        words: &["block"],
        usage: "block PORT",
        summary: "Take a channel out of service",
        help: "Takes a channel out of service: no call is routed to it or placed on it until \
               unblock. A call on it now is not cleared.",
        example: "block 5",
        arg_words: &[],
        parse: |a| {
            let port = a.port()?;
            a.run(Command::Block { port })
        },
    },
    Spec {
        words: &["unblock"],
        usage: "unblock PORT",
        summary: "Put a blocked channel back in service",
        help: "Puts a channel taken out of service with block back in service.",
        example: "unblock 5",
        arg_words: &[],
        parse: |a| {
            let port = a.port()?;
            a.run(Command::Unblock { port })
        },
    },
    Spec {
        words: &["reload"],
        usage: "reload",
        summary: "Reload the configuration and the IVR flows",
        help: "Reads the configuration and the IVR flows again and applies them. Calls in \
               progress keep the flows they started with. Errors are listed and nothing is \
               changed.",
        example: "reload",
        arg_words: &[],
        parse: |a| a.run(Command::Reload),
    },
    Spec {
        words: &["help"],
        usage: "help [COMMAND]",
        summary: "List the commands, or explain one",
        help: "Without a command, lists every command. With one (abbreviated as you like), \
               shows its usage and what it does.",
        example: "help test tone",
        arg_words: &[],
        parse: parse_help,
    },
    Spec {
        words: &["history"],
        usage: "history",
        summary: "The commands typed in this session",
        help: "Lists the last 50 commands typed in this session. The up and down arrows (or \
               Ctrl-P and Ctrl-N) bring them back.",
        example: "history",
        arg_words: &[],
        parse: |a| a.local(Local::History),
    },
    Spec {
        words: &["logout"],
        usage: "logout",
        summary: "Log out (also exit, quit or Ctrl-D)",
        help: "Ends the session.",
        example: "logout",
        arg_words: &[],
        parse: |a| a.local(Local::Logout),
    },
    Spec {
        words: &["exit"],
        usage: "exit",
        summary: "Log out",
        help: "Ends the session, like logout.",
        example: "exit",
        arg_words: &[],
        parse: |a| a.local(Local::Logout),
    },
    Spec {
        words: &["quit"],
        usage: "quit",
        summary: "Log out",
        help: "Ends the session, like logout.",
        example: "quit",
        arg_words: &[],
        parse: |a| a.local(Local::Logout),
    },
];

/// The widest line `help` writes.
pub const HELP_WIDTH: usize = 80;

const MAX_PORT_DIGITS: usize = 5;
const SECONDS_RANGE: std::ops::RangeInclusive<u32> = 1..=600;
const LEVEL_RANGE: std::ops::RangeInclusive<i32> = -60..=3;
const LINES_RANGE: std::ops::RangeInclusive<usize> = 1..=1000;
const MAX_DTMF_DIGITS: usize = 32;
const DEFAULT_LOG_LINES: usize = 20;

/// Parses a line typed at the prompt.
pub fn parse(line: &str) -> Result<Parsed, ParseError> {
    let (command, filter) = match line.split_once('|') {
        Some((command, filter)) => (command, Some(parse_filter(filter)?)),
        None => (line, None),
    };
    let words: Vec<&str> = command.split_whitespace().collect();
    if words.is_empty() {
        return Err(match filter {
            Some(_) => ParseError::Filter("expected a command before '|'"),
            None => ParseError::Empty,
        });
    }
    let action = match walk(&words)? {
        Walk::Leaf(spec, rest) => (spec.parse)(&mut Args { spec, words: rest, next: 0 })?,
        Walk::Inner(prefix) => {
            return Err(ParseError::Incomplete { context: prefix.join(" "), expected: children(&prefix) })
        }
    };
    Ok(Parsed { action, filter })
}

/// Parses what follows `|`.
fn parse_filter(text: &str) -> Result<String, ParseError> {
    const MESSAGE: &str = "'|' must be followed by grep WORD or include WORD";
    let text = text.trim_start();
    let (keyword, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    choose(keyword, &["grep", "include"]).map_err(|_| ParseError::Filter(MESSAGE))?;
    let word = rest.trim();
    if word.is_empty() {
        return Err(ParseError::Filter(MESSAGE));
    }
    Ok(word.to_string())
}

/// Where a path of words leads in the table.
enum Walk<'w> {
    /// To a command; the rest are its arguments.
    Leaf(&'static Spec, &'w [&'w str]),
    /// The words ran out before a command was complete; these are the canonical words so far.
    Inner(Vec<&'static str>),
}

fn walk<'w>(words: &'w [&'w str]) -> Result<Walk<'w>, ParseError> {
    let mut prefix: Vec<&'static str> = Vec::new();
    loop {
        if let Some(spec) = COMMANDS.iter().find(|s| s.words == prefix.as_slice()) {
            return Ok(Walk::Leaf(spec, &words[prefix.len()..]));
        }
        let Some(word) = words.get(prefix.len()) else {
            return Ok(Walk::Inner(prefix));
        };
        let options = children(&prefix);
        match choose(word, &options) {
            Ok(chosen) => prefix.push(chosen),
            Err(Choice::None) if prefix.is_empty() => {
                return Err(ParseError::UnknownCommand(word.to_string()))
            }
            Err(Choice::None) => {
                return Err(ParseError::UnknownWord {
                    context: prefix.join(" "),
                    word: word.to_string(),
                    expected: options,
                })
            }
            Err(Choice::Ambiguous(candidates)) => {
                return Err(ParseError::Ambiguous {
                    context: prefix.join(" "),
                    word: word.to_string(),
                    candidates,
                })
            }
        }
    }
}

/// The words that may follow `prefix`, in table order, each once.
fn children(prefix: &[&str]) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for spec in COMMANDS {
        if spec.words.len() > prefix.len() && spec.words.starts_with(prefix) {
            let word = spec.words[prefix.len()];
            if !out.contains(&word) {
                out.push(word);
            }
        }
    }
    out
}

/// Why a word chose nothing.
enum Choice {
    None,
    Ambiguous(Vec<&'static str>),
}

/// The option `word` names: the one it equals, or the only one it is a prefix of, ignoring
/// case.
fn choose(word: &str, options: &[&'static str]) -> Result<&'static str, Choice> {
    let word = word.to_ascii_lowercase();
    if let Some(exact) = options.iter().find(|o| **o == word) {
        return Ok(exact);
    }
    let matches: Vec<&'static str> = options.iter().copied().filter(|o| o.starts_with(&word)).collect();
    match matches.as_slice() {
        [] => Err(Choice::None),
        [one] => Ok(one),
        _ => Err(Choice::Ambiguous(matches)),
    }
}

/// A port number as users see them: 1 to 65535.
fn parse_port(word: &str) -> Option<u16> {
    if word.is_empty() || word.len() > MAX_PORT_DIGITS || !word.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    word.parse().ok().filter(|p| *p != 0)
}

/// A command's arguments, taken one at a time.
struct Args<'a> {
    spec: &'static Spec,
    words: &'a [&'a str],
    next: usize,
}

impl<'a> Args<'a> {
    fn name(&self) -> String {
        self.spec.words.join(" ")
    }

    fn next(&mut self) -> Option<&'a str> {
        let word = self.words.get(self.next).copied();
        self.next += usize::from(word.is_some());
        word
    }

    fn invalid(&self, message: String) -> ParseError {
        ParseError::Invalid { command: self.name(), message }
    }

    fn required(&mut self, what: &'static str) -> Result<&'a str, ParseError> {
        self.next().ok_or_else(|| ParseError::Missing { command: self.name(), what, usage: self.spec.usage })
    }

    fn port(&mut self) -> Result<u16, ParseError> {
        let word = self.required("the port number")?;
        parse_port(word).ok_or_else(|| self.invalid(format!("'{word}' is not a port number")))
    }

    fn seconds(&mut self, default: u32) -> Result<u32, ParseError> {
        let Some(word) = self.next() else { return Ok(default) };
        word.parse()
            .ok()
            .filter(|s| SECONDS_RANGE.contains(s))
            .ok_or_else(|| self.invalid(format!("'{word}' is not a number of seconds from 1 to 600")))
    }

    fn level(&mut self, default: i32) -> Result<i32, ParseError> {
        let Some(word) = self.next() else { return Ok(default) };
        // "-10dbm0" is what a technician may well type; the unit is optional.
        let lower = word.to_ascii_lowercase();
        let number = lower.strip_suffix("dbm0").or_else(|| lower.strip_suffix("dbm")).unwrap_or(&lower);
        number
            .parse()
            .ok()
            .filter(|l| LEVEL_RANGE.contains(l))
            .ok_or_else(|| self.invalid(format!("'{word}' is not a level from -60 to 3 dBm0")))
    }

    fn dtmf(&mut self) -> Result<String, ParseError> {
        let word = self.required("the digits")?;
        if word.len() > MAX_DTMF_DIGITS {
            return Err(self.invalid(format!("at most {MAX_DTMF_DIGITS} digits at a time")));
        }
        let digits = word.to_ascii_uppercase();
        if let Some(bad) = digits.chars().find(|c| !matches!(c, '0'..='9' | '*' | '#' | 'A'..='D')) {
            return Err(self.invalid(format!("'{bad}' is not a DTMF digit (0-9 * # A-D)")));
        }
        Ok(digits)
    }

    /// Ends the arguments: anything left over is an error.
    fn finish(&mut self) -> Result<(), ParseError> {
        match self.next() {
            None => Ok(()),
            Some(word) => Err(ParseError::Unexpected {
                command: self.name(),
                word: word.to_string(),
                usage: self.spec.usage,
            }),
        }
    }

    fn run(&mut self, command: Command) -> Result<Action, ParseError> {
        self.finish()?;
        Ok(Action::Run(command))
    }

    fn local(&mut self, local: Local) -> Result<Action, ParseError> {
        self.finish()?;
        Ok(Action::Local(local))
    }
}

fn parse_log_tail(a: &mut Args) -> Result<Action, ParseError> {
    let mut lines = None;
    let mut level = None;
    let mut follow = false;
    while let Some(word) = a.next() {
        if word.starts_with(|c: char| c.is_ascii_digit()) {
            let n = word
                .parse()
                .ok()
                .filter(|n| LINES_RANGE.contains(n))
                .ok_or_else(|| a.invalid(format!("'{word}' is not a line count from 1 to 1000")))?;
            if lines.replace(n).is_some() {
                return Err(a.invalid("the line count is given twice".to_string()));
            }
        } else if word == "-f" || choose(word, &["follow"]).is_ok() {
            follow = true;
        } else if let Ok(name) = choose(word, LEVEL_WORDS) {
            let found = LogLevel::ALL.into_iter().find(|l| l.name() == name);
            if level.is_some() {
                return Err(a.invalid("the level is given twice".to_string()));
            }
            level = found;
        } else {
            return Err(a.invalid(format!(
                "'{word}' is not a line count, a level (error, warn, info, debug, trace) or -f"
            )));
        }
    }
    a.run(Command::ShowLog { lines: lines.unwrap_or(DEFAULT_LOG_LINES), level, follow })
}

fn parse_log_level(a: &mut Args) -> Result<Action, ParseError> {
    let filter = match a.next() {
        None => None,
        // A bare level may be abbreviated like any word; a full filter is the daemon's to
        // check, but only characters a filter can hold get that far.
        Some(word) => match choose(word, LEVEL_WORDS) {
            Ok(level) => Some(level.to_string()),
            Err(_) if word.chars().all(|c| c.is_ascii_alphanumeric() || "_:=,.-".contains(c)) => {
                Some(word.to_string())
            }
            Err(_) => {
                return Err(
                    a.invalid(format!("'{word}' is not a log filter like switchboard::pri=trace,info"))
                )
            }
        },
    };
    a.run(Command::LogLevel { filter })
}

fn parse_help(a: &mut Args) -> Result<Action, ParseError> {
    let topic = match walk(a.words)? {
        // Words after a complete command (help test tone 3) are what the technician was
        // about to type; the help for the command is what they want.
        Walk::Leaf(spec, _) => spec.words.to_vec(),
        Walk::Inner(prefix) => prefix,
    };
    Ok(Action::Local(Local::Help { topic }))
}

/// The help for a topic: every command under it (all of them for an empty topic), or the
/// usage and explanation of one command. Every line fits in [`HELP_WIDTH`] columns.
pub fn help_lines(topic: &[&str]) -> Vec<String> {
    let spec = COMMANDS.iter().find(|s| s.words == topic);
    if let Some(spec) = spec {
        let mut lines = vec![format!("Usage: {}", spec.usage), String::new()];
        lines.extend(wrap(spec.help, HELP_WIDTH - 2));
        lines.push(String::new());
        lines.push(format!("Example: {}", spec.example));
        return lines;
    }
    let mut lines = Vec::new();
    if topic.is_empty() {
        lines.push("Commands (any unique abbreviation works: sh ch = show channels):".to_string());
    }
    for spec in COMMANDS.iter().filter(|s| s.words.starts_with(topic)) {
        lines.push(format!("  {:<17} {}", spec.words.join(" "), spec.summary));
    }
    lines.push(String::new());
    lines.push("Type help COMMAND for its usage; end any command with | grep WORD to filter.".to_string());
    lines
}

/// Splits a paragraph into lines of at most `width` characters, at spaces.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// What Tab does with a line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Completion {
    /// One word fits: the new line, with a space after the word.
    Unique(String),
    /// Several fit: show them, and continue with `line`, extended by what they have in
    /// common.
    Candidates { line: String, words: Vec<&'static str> },
    /// Nothing fits (ring the bell).
    Nothing,
}

/// Completes the last word of a line (the word being typed; empty after a space).
pub fn complete(line: &str) -> Completion {
    let start = line.rfind(char::is_whitespace).map_or(0, |i| i + 1);
    let (head, partial) = line.split_at(start);
    let candidates = match head.split_once('|') {
        // After the pipe only the filter keyword is completed.
        Some((_, after)) if after.trim().is_empty() => filter_candidates(partial),
        Some(_) => Vec::new(),
        None => {
            let words: Vec<&str> = head.split_whitespace().collect();
            word_candidates(&words, partial)
        }
    };
    match candidates.as_slice() {
        [] => Completion::Nothing,
        [one] => Completion::Unique(format!("{head}{one} ")),
        _ => {
            let common = common_prefix(&candidates);
            let line =
                if common.len() > partial.len() { format!("{head}{common}") } else { line.to_string() };
            Completion::Candidates { line, words: candidates }
        }
    }
}

fn filter_candidates(partial: &str) -> Vec<&'static str> {
    let partial = partial.to_ascii_lowercase();
    ["grep", "include"].into_iter().filter(|w| w.starts_with(&partial)).collect()
}

/// The words that may come after `words` and begin with `partial`.
fn word_candidates(words: &[&str], partial: &str) -> Vec<&'static str> {
    let partial = partial.to_ascii_lowercase();
    let options = match walk(words) {
        Ok(Walk::Inner(prefix)) => children(&prefix),
        // After help, the words of a command.
        Ok(Walk::Leaf(spec, rest)) if spec.words == ["help"] => return word_candidates(rest, &partial),
        Ok(Walk::Leaf(spec, _)) => spec.arg_words.to_vec(),
        Err(_) => Vec::new(),
    };
    options.into_iter().filter(|o| o.starts_with(&partial)).collect()
}

fn common_prefix(words: &[&str]) -> String {
    let Some(first) = words.first() else { return String::new() };
    let mut len = first.len();
    for word in &words[1..] {
        len = first.bytes().zip(word.bytes()).take(len).take_while(|(a, b)| a == b).count();
    }
    first[..len].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(line: &str) -> Command {
        match parse(line) {
            Ok(Parsed { action: Action::Run(command), filter: None }) => command,
            other => panic!("{line}: {other:?}"),
        }
    }

    fn error(line: &str) -> String {
        match parse(line) {
            Err(e) => e.to_string(),
            Ok(p) => panic!("{line}: parsed as {p:?}"),
        }
    }

    #[test]
    fn every_example_parses_to_its_own_command() {
        for spec in COMMANDS {
            let parsed = parse(spec.example).unwrap_or_else(|e| panic!("{}: {e}", spec.example));
            let words: Vec<&str> = spec.example.split_whitespace().collect();
            match walk(&words) {
                Ok(Walk::Leaf(found, _)) => assert_eq!(found.words, spec.words),
                _ => panic!("{}", spec.example),
            }
            assert_eq!(parsed.filter, None);
        }
    }

    #[test]
    fn every_usage_starts_with_the_words_and_parses_without_its_arguments() {
        for spec in COMMANDS {
            assert!(spec.usage.starts_with(&spec.words.join(" ")), "{}", spec.usage);
            let required: Vec<&str> = spec
                .usage
                .split_whitespace()
                .skip(spec.words.len())
                .filter(|w| !w.starts_with('['))
                .collect();
            if required.is_empty() {
                assert!(parse(&spec.words.join(" ")).is_ok(), "{}", spec.usage);
            } else {
                assert!(
                    matches!(parse(&spec.words.join(" ")), Err(ParseError::Missing { .. })),
                    "{}",
                    spec.usage
                );
            }
        }
    }

    #[test]
    fn no_command_is_a_prefix_of_another() {
        for a in COMMANDS {
            for b in COMMANDS {
                if !std::ptr::eq(a, b) {
                    assert!(!b.words.starts_with(a.words), "{:?} {:?}", a.words, b.words);
                }
            }
        }
    }

    #[test]
    fn every_entry_has_help_that_fits() {
        for spec in COMMANDS {
            assert!(!spec.summary.is_empty() && spec.summary.len() <= 58, "{}", spec.summary);
            assert!(!spec.help.is_empty());
            let lines = help_lines(spec.words);
            assert_eq!(lines[0], format!("Usage: {}", spec.usage));
            for line in &lines {
                assert!(line.len() <= HELP_WIDTH, "{line}");
            }
            let asked = parse(&format!("help {}", spec.words.join(" "))).unwrap();
            assert_eq!(asked.action, Action::Local(Local::Help { topic: spec.words.to_vec() }));
        }
        let all = help_lines(&[]);
        for spec in COMMANDS {
            assert!(all.iter().any(|l| l.contains(spec.summary)), "{}", spec.summary);
        }
        for line in all.iter().chain(help_lines(&["show"]).iter()) {
            assert!(line.len() <= HELP_WIDTH, "{line}");
        }
    }

    #[test]
    fn help_topics() {
        assert_eq!(parse("help").unwrap().action, Action::Local(Local::Help { topic: vec![] }));
        assert_eq!(parse("he sh").unwrap().action, Action::Local(Local::Help { topic: vec!["show"] }));
        assert_eq!(
            parse("help t t 3").unwrap().action,
            Action::Local(Local::Help { topic: vec!["test", "tone"] })
        );
        assert_eq!(error("help shwo"), "unknown command 'shwo': type help");
        let show = help_lines(&["show"]);
        assert_eq!(show.iter().filter(|l| l.starts_with("  show ")).count(), 8);
        let tone = help_lines(&["test", "tone"]);
        assert!(tone.iter().any(|l| l.contains("1004 Hz")));
        assert_eq!(tone.last().map(String::as_str), Some("Example: test tone 3 5 -10"));
    }

    #[test]
    fn show_commands_and_abbreviations() {
        assert_eq!(run("show spans"), Command::ShowSpans);
        assert_eq!(run("sh ch"), Command::ShowChannels { filter: None });
        assert_eq!(run("SHOW CALLS"), Command::ShowCalls);
        assert_eq!(run("s ag"), Command::ShowAgents);
        assert_eq!(run("show q"), Command::ShowQueues);
        assert_eq!(run("show al"), Command::ShowAlarms);
        assert_eq!(run("show v"), Command::ShowVersion);
        assert_eq!(run("show st"), Command::ShowStats);
        assert_eq!(run("  show   spans  "), Command::ShowSpans);
    }

    #[test]
    fn show_errors() {
        assert_eq!(error("shwo"), "unknown command 'shwo': type help");
        assert_eq!(
            error("show"),
            "show: expected one of spans, channels, calls, agents, queues, alarms, version, stats"
        );
        assert_eq!(error("show c"), "show: 'c' is ambiguous: could be channels, calls");
        assert_eq!(error("h"), "ambiguous command 'h': could be hangup, help, history");
        assert_eq!(
            error("show x"),
            "show: unknown word 'x': expected one of spans, channels, calls, agents, queues, alarms, version, stats"
        );
        assert_eq!(error("show spans now"), "show spans: unexpected 'now' (usage: show spans)");
        assert_eq!(parse("   "), Err(ParseError::Empty));
    }

    #[test]
    fn channel_filters() {
        let f = |s: &str| match run(&format!("show channels {s}")) {
            Command::ShowChannels { filter } => filter,
            other => panic!("{other:?}"),
        };
        assert_eq!(f("trunk"), Some(ChannelFilter::Trunk));
        assert_eq!(f("SE"), Some(ChannelFilter::Seat));
        assert_eq!(f("e"), Some(ChannelFilter::E1));
        assert_eq!(f("so"), Some(ChannelFilter::Sound));
        assert_eq!(f("1-8"), Some(ChannelFilter::Ports { first: 1, last: 8 }));
        assert_eq!(f("7"), Some(ChannelFilter::Ports { first: 7, last: 7 }));
        assert!(error("show channels s").contains("'s' is not one of trunk"));
        assert!(error("show channels 8-1").contains("not a port or a port range"));
        assert!(error("show channels 0").contains("not a port"));
        assert!(error("show channels 1-99999").contains("not a port"));
        for filter in ["trunk", "seat", "e1", "sound", "3", "1-8"] {
            assert_eq!(ChannelFilter::parse(filter).map(|f| f.to_string()), Ok(filter.to_string()));
        }
        let f = ChannelFilter::Ports { first: 2, last: 4 };
        assert!(f.matches(3, ChannelKind::Sound) && !f.matches(5, ChannelKind::Sound));
        assert!(ChannelFilter::E1.matches(1, ChannelKind::E1Signalling));
        assert!(!ChannelFilter::Trunk.matches(1, ChannelKind::FxsSeat));
    }

    #[test]
    fn log_tail() {
        let log = |lines, level, follow| Command::ShowLog { lines, level, follow };
        assert_eq!(run("log tail"), log(20, None, false));
        assert_eq!(run("log t 50"), log(50, None, false));
        assert_eq!(run("log tail warn -f 5"), log(5, Some(LogLevel::Warn), true));
        assert_eq!(run("log ta d follow"), log(20, Some(LogLevel::Debug), true));
        assert_eq!(run("log tail f"), log(20, None, true));
        assert!(error("log tail 0").contains("'0' is not a line count from 1 to 1000"));
        assert!(error("log tail 5000").contains("from 1 to 1000"));
        assert!(error("log tail x").contains("'x' is not a line count, a level"));
        assert!(error("log tail 5 6").contains("given twice"));
        assert!(error("log tail warn error").contains("given twice"));
        assert!(error("lo tail").contains("ambiguous command 'lo'"));
    }

    #[test]
    fn log_level() {
        assert_eq!(run("log level"), Command::LogLevel { filter: None });
        assert_eq!(run("log lev deb"), Command::LogLevel { filter: Some("debug".into()) });
        assert_eq!(
            run("log level switchboard::pri=trace,info"),
            Command::LogLevel { filter: Some("switchboard::pri=trace,info".into()) }
        );
        assert!(error("log level a;b").contains("is not a log filter"));
        assert!(error("log level a b").contains("unexpected 'b'"));
        assert!(error("log").starts_with("log: expected one of tail, level"));
    }

    #[test]
    fn tests_on_channels() {
        assert_eq!(run("test loopback 3"), Command::TestLoopback { port: 3, seconds: 5 });
        assert_eq!(run("te l 3 600"), Command::TestLoopback { port: 3, seconds: 600 });
        assert_eq!(run("test tone 3"), Command::TestTone { port: 3, seconds: 5, level_dbm0: -10 });
        assert_eq!(run("test tone 3 7 -20"), Command::TestTone { port: 3, seconds: 7, level_dbm0: -20 });
        assert_eq!(run("test tone 3 7 0dBm0"), Command::TestTone { port: 3, seconds: 7, level_dbm0: 0 });
        assert_eq!(
            run("test dtmf send 2 12*#ad"),
            Command::TestDtmfSend { port: 2, digits: "12*#AD".into() }
        );
        assert_eq!(run("t d d 2"), Command::TestDtmfDetect { port: 2, seconds: 10 });
        assert_eq!(run("test record 4 600"), Command::TestRecord { port: 4, seconds: 600 });
        assert_eq!(run("test record 4"), Command::TestRecord { port: 4, seconds: 10 });

        assert_eq!(error("test tone x"), "test tone: 'x' is not a port number");
        assert_eq!(error("test tone 0"), "test tone: '0' is not a port number");
        assert_eq!(error("test tone 65536"), "test tone: '65536' is not a port number");
        assert_eq!(
            error("test tone"),
            "test tone: missing the port number (usage: test tone PORT [SECONDS] [DBM0])"
        );
        assert!(error("test tone 3 0").contains("'0' is not a number of seconds from 1 to 600"));
        assert!(error("test record 3 601").contains("from 1 to 600"));
        assert!(error("test tone 3 5 9").contains("'9' is not a level from -60 to 3 dBm0"));
        assert!(error("test tone 3 5 -10 x").contains("unexpected 'x'"));
        assert!(error("test dtmf send 3 12E").contains("'E' is not a DTMF digit"));
        assert!(error("test dtmf send 3").contains("missing the digits"));
        assert!(error(&format!("test dtmf send 3 {}", "1".repeat(33))).contains("at most 32"));
        assert!(error("test dtmf 3").starts_with("test dtmf: unknown word '3': expected one of send, detect"));
    }

    #[test]
    fn call_and_channel_control() {
        assert_eq!(run("hangup C-0012"), Command::Hangup { target: "C-0012".into() });
        assert_eq!(run("ha 5"), Command::Hangup { target: "5".into() });
        assert!(error("hangup").contains("missing a call id or port"));
        assert!(error(&format!("hangup {}", "x".repeat(65))).contains("too long"));
        assert_eq!(run("block 5"), Command::Block { port: 5 });
        assert_eq!(run("unb 5"), Command::Unblock { port: 5 });
        assert_eq!(error("block"), "block: missing the port number (usage: block PORT)");
        assert_eq!(run("rel"), Command::Reload);
    }

    #[test]
    fn local_commands() {
        assert_eq!(parse("hist").unwrap().action, Action::Local(Local::History));
        for line in ["logout", "exit", "quit", "logo", "q", "e"] {
            assert_eq!(parse(line).unwrap().action, Action::Local(Local::Logout), "{line}");
        }
    }

    #[test]
    fn pipe_filters() {
        let p = parse("show channels | grep idle").unwrap();
        assert_eq!(p.action, Action::Run(Command::ShowChannels { filter: None }));
        assert_eq!(p.filter.as_deref(), Some("idle"));
        assert_eq!(parse("sh ca|inc  C-1 x ").unwrap().filter.as_deref(), Some("C-1 x"));
        assert_eq!(parse("help | g tone").unwrap().filter.as_deref(), Some("tone"));
        assert!(error("show calls | grep").contains("grep WORD"));
        assert!(error("show calls | sort x").contains("grep WORD"));
        assert!(error("| grep x").contains("before '|'"));
    }

    #[test]
    fn completion() {
        assert_eq!(complete("sh"), Completion::Unique("show ".into()));
        assert_eq!(complete("sh ch"), Completion::Unique("sh channels ".into()));
        assert_eq!(complete("show channels tr"), Completion::Unique("show channels trunk ".into()));
        assert_eq!(complete("test dtmf s"), Completion::Unique("test dtmf send ".into()));
        assert_eq!(complete("help te t"), Completion::Unique("help te tone ".into()));
        assert_eq!(complete("log tail 5 w"), Completion::Unique("log tail 5 warn ".into()));
        assert_eq!(complete("show calls | g"), Completion::Unique("show calls | grep ".into()));
        assert_eq!(
            complete("show c"),
            Completion::Candidates { line: "show c".into(), words: vec!["channels", "calls"] }
        );
        assert_eq!(
            complete("lo"),
            Completion::Candidates { line: "log".into(), words: vec!["log", "logout"] }
        );
        assert_eq!(
            complete("show "),
            Completion::Candidates { line: "show ".into(), words: children(&["show"]) }
        );
        match complete("") {
            Completion::Candidates { words, .. } => assert!(words.contains(&"reload")),
            other => panic!("{other:?}"),
        }
        assert_eq!(complete("shwo"), Completion::Nothing);
        assert_eq!(complete("show x "), Completion::Nothing);
        assert_eq!(complete("test tone "), Completion::Nothing);
        assert_eq!(complete("show calls | grep x"), Completion::Nothing);
    }

    #[test]
    fn wrap_keeps_words_and_width() {
        let text = "a bb ccc dddd eeeee ffffff";
        let lines = wrap(text, 8);
        assert!(lines.iter().all(|l| l.len() <= 8));
        assert_eq!(lines.join(" "), text);
    }

    #[test]
    fn random_lines_never_panic() {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let alphabet = b"show chanels test tone dtmf 0123456789-|grep * # log tail level help x";
        for _ in 0..20_000 {
            let len = (state % 40) as usize;
            let mut line = String::new();
            for _ in 0..len {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                line.push(char::from(alphabet[(state % alphabet.len() as u64) as usize]));
            }
            let _ = parse(&line);
            let _ = complete(&line);
        }
    }
}
