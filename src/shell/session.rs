//! One shell session, sans-IO: bytes and `now` in, [`Output`]s out.
//!
//! The session owns everything a technician sees: the login dialogue and its lockout, the
//! prompt, line editing, history, completion, help, paging and filtering. It does not check
//! passwords (the caller does, with the account store, and answers with
//! [`Session::auth_result`]) and it does not run commands (the caller does, and answers with
//! [`Session::reply`], [`Session::stream`] and [`Session::done`]). It reads no clock: every
//! call takes `now`, and [`Session::timeout`] says when [`Session::handle_timeout`] is due.
//!
//! A serial port keeps one `Session` for as long as the port is open, so that the lockout
//! survives a logout; the control socket makes one per connection with `login: false`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::command::{self, Action, Completion, Local, ParseError};
use super::editor::{EditorEvent, LineEditor};

/// Wrong logins and lockouts, carried from one session to the next on the same line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LockoutState {
    pub failures: u32,
    pub lockouts: u32,
    /// When the lockout in force ends, if one is.
    pub until: Option<Instant>,
}

/// Keys kept while a command runs; more are dropped.
const MAX_TYPEAHEAD: usize = 4096;

/// How a session behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionSettings {
    /// Whether to ask for a login. False for the local control socket, where the socket's
    /// file permissions are the check.
    pub login: bool,
    /// Logged in, or at "Password:", a session with no input for this long is logged out.
    /// Zero: never.
    pub idle_timeout: Duration,
    /// Consecutive wrong logins before the session locks (0 counts as 1).
    pub max_failures: u32,
    /// How long the first lockout lasts; each further one without a good login in between
    /// lasts twice as long as the one before, up to [`MAX_LOCKOUT`] (or `lockout` itself if
    /// that is longer).
    pub lockout: Duration,
    /// Reply lines per page before "--More--"; 0: no paging.
    pub page_lines: usize,
    /// Printed before the login prompt, e.g. "Switchboard 0.1.0 on ttyS0".
    pub banner: String,
    /// The prompt is "{hostname}> ".
    pub hostname: String,
}

/// What the session asks of its caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Bytes for the terminal, with CRLF line ends.
    Write(Vec<u8>),
    /// Check this login and call [`Session::auth_result`].
    Authenticate { user: String, password: String },
    /// Run this command, then call [`Session::reply`] (a complete answer, which ends the
    /// command) or [`Session::stream`] as often as needed and then [`Session::done`].
    Run(command::Command),
    /// Stop the running command (Ctrl-C or idle logout); still call [`Session::done`] when
    /// it has stopped.
    Cancel,
    /// Close the connection (only in sessions without login: logout, Ctrl-D, idle).
    Close { reason: String },
}

/// Where a session is, for the transport and for tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// At "login: ".
    LoggedOut,
    /// At "Password: ".
    Password,
    /// Waiting for [`Session::auth_result`]; input is discarded.
    Authenticating,
    /// Too many failed logins; input is discarded until the lockout ends.
    Locked,
    /// At the command prompt.
    Ready,
    /// Waiting for a command to end; only Ctrl-C is taken.
    Running,
    /// At "--More--".
    Paging,
    /// A session without login has ended; the transport closes it.
    Closed,
}

/// The longest lockout the doubling reaches (unless the configured one is longer).
pub const MAX_LOCKOUT: Duration = Duration::from_secs(15 * 60);
/// The width of the terminal: no line written is wider.
pub const WIDTH: usize = 80;
/// How many commands history keeps.
pub const HISTORY_LEN: usize = 50;
/// The longest user name.
pub const MAX_USER: usize = 64;
/// The longest password.
pub const MAX_PASSWORD: usize = 256;

const MORE: &str = "--More-- (space: page, enter: line, q: quit)";
const CTRL_C: u8 = 0x03;
const BEL: &[u8] = b"\x07";

/// Where the session is, with what each state needs.
#[derive(Debug)]
enum Phase {
    LoggedOut,
    Password { user: String },
    Authenticating { user: String },
    Locked { until: Instant },
    Ready,
    Running { filter: Option<String>, cancelled: bool },
    Paging { rest: VecDeque<String> },
    Closed,
}

/// A shell session on one terminal.
#[derive(Debug)]
pub struct Session {
    settings: SessionSettings,
    phase: Phase,
    /// Keys typed while a command runs, replayed when it ends (a script piped into
    /// `switchboard shell`, or a technician typing ahead); Ctrl-C acts at once instead.
    typeahead: VecDeque<u8>,
    editor: LineEditor,
    out: VecDeque<Output>,
    user: Option<String>,
    /// Wrong logins since the last good one or the last lockout.
    failures: u32,
    /// Lockouts since the last good login; each doubles the next.
    lockouts: u32,
    /// The last byte that was not noise, for the idle timeout.
    last_input: Instant,
    /// The idle timeout expired while a command ran: log out when it is done.
    logout_when_done: bool,
    history: VecDeque<String>,
    /// The history entry on the line, while browsing.
    recall: Option<usize>,
    /// What was typed before browsing started, brought back after the newest entry.
    draft: String,
}

impl Session {
    /// A new session: the banner and the first prompt are queued.
    pub fn new(settings: SessionSettings, now: Instant) -> Session {
        let mut session = Session {
            editor: LineEditor::new(MAX_USER),
            phase: Phase::LoggedOut,
            typeahead: VecDeque::new(),
            out: VecDeque::new(),
            user: None,
            failures: 0,
            lockouts: 0,
            last_input: now,
            logout_when_done: false,
            history: VecDeque::new(),
            recall: None,
            draft: String::new(),
            settings,
        };
        session.banner();
        if session.settings.login {
            session.enter_login();
        } else {
            session.enter_ready();
        }
        session
    }

    /// The wrong logins and lockouts so far, to hand on to the next session on the same
    /// line ([`Session::carry_lockout`]): pulling the cable must not reset the lockout.
    pub fn lockout_state(&self) -> LockoutState {
        let until = match self.phase {
            Phase::Locked { until } => Some(until),
            _ => None,
        };
        LockoutState { failures: self.failures, lockouts: self.lockouts, until }
    }

    /// Takes on a previous session's wrong logins and lockouts; a lockout still running goes
    /// on in this session.
    pub fn carry_lockout(&mut self, now: Instant, state: LockoutState) {
        self.failures = state.failures;
        self.lockouts = state.lockouts;
        if let Some(until) = state.until.filter(|u| *u > now) {
            self.phase = Phase::Locked { until };
            let left = until.saturating_duration_since(now);
            self.write_line(&format!("Locked for {} more seconds.", ceil_secs(left)));
        }
    }

    /// Where the session is.
    pub fn state(&self) -> State {
        match self.phase {
            Phase::LoggedOut => State::LoggedOut,
            Phase::Password { .. } => State::Password,
            Phase::Authenticating { .. } => State::Authenticating,
            Phase::Locked { .. } => State::Locked,
            Phase::Ready => State::Ready,
            Phase::Running { .. } => State::Running,
            Phase::Paging { .. } => State::Paging,
            Phase::Closed => State::Closed,
        }
    }

    /// Who is logged in (None before login, and always in sessions without login).
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// How many noise bytes the line editor dropped (for the port's statistics).
    pub fn noise(&self) -> u64 {
        self.editor.noise()
    }

    /// The next thing for the caller to do.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// Bytes from the terminal.
    pub fn input(&mut self, now: Instant, bytes: &[u8]) {
        for &byte in bytes {
            // Checked here for every state, so that the LF of a CR LF that ended a line is
            // not taken by the pager or lost in a state change as a key of its own.
            if self.editor.take_eol_partner(byte) {
                continue;
            }
            let noise = self.editor.noise();
            self.byte(now, byte);
            // Line noise must not keep an abandoned session logged in.
            if self.editor.noise() == noise {
                self.last_input = now;
            }
        }
        // A page ended with keys typed ahead while the command ran.
        self.replay(now);
    }

    /// The caller's answer to [`Output::Authenticate`].
    pub fn auth_result(&mut self, now: Instant, ok: bool) {
        let Phase::Authenticating { user } = std::mem::replace(&mut self.phase, Phase::LoggedOut) else {
            return;
        };
        self.last_input = now;
        if ok {
            self.failures = 0;
            self.lockouts = 0;
            self.user = Some(user);
            self.enter_ready();
            return;
        }
        self.write(b"Login incorrect\r\n");
        self.failures += 1;
        if self.failures < self.settings.max_failures.max(1) {
            self.write(b"\r\n");
            self.enter_login();
            return;
        }
        self.lockouts += 1;
        let lockout = self.lockout_duration();
        self.phase = Phase::Locked { until: now + lockout };
        self.write_line(&format!("Too many failed logins: locked for {} seconds", ceil_secs(lockout)));
    }

    /// A complete answer to the running command: filtered, paged, then the prompt. It ends
    /// the command; a [`done`](Self::done) after it is ignored.
    pub fn reply(&mut self, now: Instant, lines: Vec<String>) {
        let Phase::Running { filter, .. } = std::mem::replace(&mut self.phase, Phase::Ready) else {
            return;
        };
        if self.logout_when_done {
            self.idle_logout();
            return;
        }
        self.show(lines, filter.as_deref());
        self.replay(now);
    }

    /// Feeds the keys typed while the command ran, now that the session takes lines again.
    fn replay(&mut self, now: Instant) {
        if !matches!(self.phase, Phase::Ready) || self.typeahead.is_empty() {
            return;
        }
        let keys: Vec<u8> = self.typeahead.drain(..).collect();
        self.input(now, &keys);
    }

    /// Lines from a command that is still running (a log being followed, test progress):
    /// filtered and written at once, without paging.
    pub fn stream(&mut self, _now: Instant, lines: Vec<String>) {
        let Phase::Running { filter, .. } = &self.phase else {
            return;
        };
        let lines = prepare(lines, filter.as_deref());
        for line in lines {
            self.write_line(&line);
        }
    }

    /// The running command has ended, with an error to show or not.
    pub fn done(&mut self, now: Instant, error: Option<String>) {
        if !matches!(self.phase, Phase::Running { .. }) {
            return;
        }
        self.phase = Phase::Ready;
        if let Some(error) = error {
            for line in prepare(vec![format!("error: {error}")], None) {
                self.write_line(&line);
            }
        }
        if self.logout_when_done {
            self.idle_logout();
        } else {
            self.prompt();
            self.replay(now);
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) is due next, if ever.
    pub fn timeout(&self) -> Option<Instant> {
        let idle = self.idle_deadline();
        match &self.phase {
            Phase::Locked { until } => Some(*until),
            // Only a half-typed name times out at "login: ": an idle login prompt has
            // nothing to reset, and a serial port would otherwise be reprompted forever.
            Phase::LoggedOut if !self.editor.line().is_empty() => idle,
            Phase::Password { .. } | Phase::Ready | Phase::Paging { .. } => idle,
            Phase::Running { .. } if !self.logout_when_done => idle,
            _ => None,
        }
    }

    /// Acts on the timeout if it is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.timeout().map_or(true, |due| now < due) {
            return;
        }
        match &mut self.phase {
            Phase::Locked { .. } => {
                self.failures = 0;
                self.enter_login();
            }
            Phase::LoggedOut => {
                self.editor.clear();
                self.write(b"\r\n");
                self.enter_login();
            }
            Phase::Password { .. } => {
                self.write(b"\r\nLogin timed out.\r\n\r\n");
                self.enter_login();
            }
            Phase::Running { cancelled, .. } => {
                // The command is stopped first; the logout follows when it is done, so
                // the caller never has a command running for a session that has gone.
                self.logout_when_done = true;
                if !std::mem::replace(cancelled, true) {
                    self.out.push_back(Output::Cancel);
                }
            }
            Phase::Paging { .. } => {
                self.erase_more();
                self.idle_logout();
            }
            Phase::Ready => {
                self.write(b"\r\n");
                self.idle_logout();
            }
            Phase::Authenticating { .. } | Phase::Closed => {}
        }
    }

    fn idle_deadline(&self) -> Option<Instant> {
        if self.settings.idle_timeout.is_zero() {
            return None;
        }
        self.last_input.checked_add(self.settings.idle_timeout)
    }

    fn lockout_duration(&self) -> Duration {
        let doublings = self.lockouts.saturating_sub(1);
        let factor = 1u32.checked_shl(doublings).unwrap_or(u32::MAX);
        let cap = MAX_LOCKOUT.max(self.settings.lockout);
        self.settings.lockout.saturating_mul(factor).min(cap)
    }

    fn byte(&mut self, now: Instant, byte: u8) {
        match &mut self.phase {
            Phase::Closed | Phase::Authenticating { .. } => {}
            Phase::Locked { until } => {
                if byte == CTRL_C {
                    let left = until.saturating_duration_since(now);
                    self.write_line(&format!("Locked for {} more seconds.", ceil_secs(left)));
                }
            }
            Phase::Running { cancelled, .. } => {
                if byte == CTRL_C {
                    if !std::mem::replace(cancelled, true) {
                        self.write(b"^C\r\n");
                        self.out.push_back(Output::Cancel);
                    }
                    // What was typed ahead was meant for before the interrupt.
                    self.typeahead.clear();
                } else if self.typeahead.len() < MAX_TYPEAHEAD {
                    self.typeahead.push_back(byte);
                }
            }
            Phase::Paging { .. } => self.page_key(byte),
            Phase::LoggedOut | Phase::Password { .. } | Phase::Ready => {
                let event = self.editor.feed(byte);
                let echo = self.editor.take_echo();
                self.write(&echo);
                if let Some(event) = event {
                    self.event(event);
                }
            }
        }
    }

    fn event(&mut self, event: EditorEvent) {
        match std::mem::replace(&mut self.phase, Phase::Closed) {
            Phase::LoggedOut => {
                self.phase = Phase::LoggedOut;
                match event {
                    EditorEvent::Line(name) => self.user_name(name),
                    EditorEvent::Interrupt => self.enter_login(),
                    _ => {}
                }
            }
            Phase::Password { user } => match event {
                EditorEvent::Line(password) => {
                    self.phase = Phase::Authenticating { user: user.clone() };
                    self.out.push_back(Output::Authenticate { user, password });
                }
                EditorEvent::Interrupt => self.enter_login(),
                _ => self.phase = Phase::Password { user },
            },
            phase => {
                self.phase = phase;
                self.ready_event(event);
            }
        }
    }

    fn user_name(&mut self, name: String) {
        let name = name.trim();
        if name.is_empty() || name.len() > MAX_USER {
            self.enter_login();
            return;
        }
        self.phase = Phase::Password { user: name.to_string() };
        self.editor.set_echo(false);
        self.editor.set_max_len(MAX_PASSWORD);
        self.write(b"Password: ");
    }

    fn ready_event(&mut self, event: EditorEvent) {
        match event {
            EditorEvent::Line(line) => {
                self.recall = None;
                self.command_line(line.trim());
            }
            EditorEvent::Interrupt => {
                self.recall = None;
                self.prompt();
            }
            EditorEvent::Eof => {
                self.write(b"\r\n");
                self.logout("Logged out.", "logout");
            }
            EditorEvent::Complete => self.complete(),
            EditorEvent::HistoryPrev => self.history_prev(),
            EditorEvent::HistoryNext => self.history_next(),
            EditorEvent::Noise => {}
        }
    }

    fn command_line(&mut self, line: &str) {
        if line.is_empty() {
            self.prompt();
            return;
        }
        if self.history.back().map_or(true, |last| last != line) {
            self.history.push_back(line.to_string());
            if self.history.len() > HISTORY_LEN {
                self.history.pop_front();
            }
        }
        let parsed = match command::parse(line) {
            Ok(parsed) => parsed,
            Err(ParseError::Empty) => {
                self.prompt();
                return;
            }
            Err(e) => {
                for line in prepare(vec![e.to_string()], None) {
                    self.write_line(&line);
                }
                self.prompt();
                return;
            }
        };
        match parsed.action {
            Action::Run(command) => {
                self.phase = Phase::Running { filter: parsed.filter, cancelled: false };
                self.out.push_back(Output::Run(command));
            }
            Action::Local(Local::Help { topic }) => {
                self.show(command::help_lines(&topic), parsed.filter.as_deref())
            }
            Action::Local(Local::History) => {
                let lines =
                    self.history.iter().enumerate().map(|(i, l)| format!("{:>4}  {l}", i + 1)).collect();
                self.show(lines, parsed.filter.as_deref());
            }
            Action::Local(Local::Logout) => self.logout("Logged out.", "logout"),
        }
    }

    fn complete(&mut self) {
        match command::complete(self.editor.line()) {
            Completion::Unique(line) => {
                let mut out = Vec::new();
                self.editor.set_line(&line, &mut out);
                self.write(&out);
            }
            Completion::Candidates { line, words } => {
                self.write(b"\r\n");
                for row in columns(&words) {
                    self.write_line(&row);
                }
                self.editor.reset(&line);
                self.prompt();
                let line = self.editor.line().to_string();
                self.write(line.as_bytes());
            }
            Completion::Nothing => self.write(BEL),
        }
    }

    fn history_prev(&mut self) {
        let index = match self.recall {
            None if !self.history.is_empty() => {
                self.draft = self.editor.line().to_string();
                self.history.len() - 1
            }
            Some(i) if i > 0 => i - 1,
            _ => {
                self.write(BEL);
                return;
            }
        };
        self.recall = Some(index);
        let line = self.history.get(index).cloned().unwrap_or_default();
        self.set_line(&line);
    }

    fn history_next(&mut self) {
        let Some(index) = self.recall else {
            self.write(BEL);
            return;
        };
        let line = if index + 1 < self.history.len() {
            self.recall = Some(index + 1);
            self.history.get(index + 1).cloned().unwrap_or_default()
        } else {
            self.recall = None;
            std::mem::take(&mut self.draft)
        };
        self.set_line(&line);
    }

    fn set_line(&mut self, line: &str) {
        let mut out = Vec::new();
        self.editor.set_line(line, &mut out);
        self.write(&out);
    }

    /// Shows a complete answer: filtered, cut to the width, and paged.
    fn show(&mut self, lines: Vec<String>, filter: Option<&str>) {
        let mut lines: VecDeque<String> = prepare(lines, filter).into();
        let page = self.settings.page_lines;
        if page == 0 || lines.len() <= page {
            for line in lines {
                self.write_line(&line);
            }
            self.enter_ready();
            return;
        }
        for line in lines.drain(..page) {
            self.write_line(&line);
        }
        self.phase = Phase::Paging { rest: lines };
        self.write(MORE.as_bytes());
    }

    fn page_key(&mut self, byte: u8) {
        let count = match byte {
            b' ' => self.settings.page_lines.max(1),
            b'\r' | b'\n' => 1,
            b'q' | b'Q' | CTRL_C => 0,
            _ => return,
        };
        let Phase::Paging { rest } = &mut self.phase else {
            return;
        };
        let rest = std::mem::take(rest);
        let mut rest = if count == 0 { VecDeque::new() } else { rest };
        self.erase_more();
        for line in rest.drain(..count.min(rest.len())) {
            self.write_line(&line);
        }
        if rest.is_empty() {
            self.enter_ready();
        } else {
            self.phase = Phase::Paging { rest };
            self.write(MORE.as_bytes());
        }
    }

    /// Erases "--More--" from the line: a dumb terminal can do CR and spaces.
    fn erase_more(&mut self) {
        let mut erase = vec![b'\r'];
        erase.extend(std::iter::repeat(b' ').take(MORE.len()));
        erase.push(b'\r');
        self.write(&erase);
    }

    fn idle_logout(&mut self) {
        let secs = self.settings.idle_timeout.as_secs();
        let message = if secs >= 60 && secs % 60 == 0 {
            format!("Idle for {} minutes: logged out.", secs / 60)
        } else {
            format!("Idle for {secs} seconds: logged out.")
        };
        self.logout(&message, "idle");
    }

    /// Ends the login: back to "login: ", or closed without login.
    fn logout(&mut self, message: &str, reason: &str) {
        self.write_line(message);
        self.user = None;
        self.logout_when_done = false;
        self.history.clear();
        self.recall = None;
        self.draft.clear();
        self.editor.clear();
        if self.settings.login {
            self.write(b"\r\n");
            self.banner();
            self.enter_login();
        } else {
            self.phase = Phase::Closed;
            self.out.push_back(Output::Close { reason: reason.to_string() });
        }
    }

    fn banner(&mut self) {
        if self.settings.banner.trim().is_empty() {
            return;
        }
        for line in prepare(vec![self.settings.banner.clone()], None) {
            self.write_line(&line);
        }
        self.write(b"\r\n");
    }

    fn enter_login(&mut self) {
        self.phase = Phase::LoggedOut;
        self.editor.clear();
        self.editor.set_echo(true);
        self.editor.set_max_len(MAX_USER);
        self.write(b"login: ");
    }

    fn enter_ready(&mut self) {
        self.phase = Phase::Ready;
        self.editor.set_echo(true);
        // Prompt and line stay on one 80-column line: a dumb terminal cannot backspace
        // into the line above.
        let prompt = self.settings.hostname.chars().count() + 2;
        self.editor.set_max_len((WIDTH - 1).saturating_sub(prompt).max(20));
        self.prompt();
    }

    fn prompt(&mut self) {
        let prompt = format!("{}> ", self.settings.hostname);
        self.write(prompt.as_bytes());
    }

    fn write_line(&mut self, line: &str) {
        self.write(line.as_bytes());
        self.write(b"\r\n");
    }

    /// Queues bytes, joined to the write before if nothing came between.
    fn write(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if let Some(Output::Write(last)) = self.out.back_mut() {
            last.extend_from_slice(bytes);
        } else {
            self.out.push_back(Output::Write(bytes.to_vec()));
        }
    }
}

/// Makes lines fit for the terminal: split at line ends, tabs expanded, other control
/// characters shown as '?', filtered (ignoring case, on the whole line) and cut to
/// [`WIDTH`] columns with '>' marking the cut.
fn prepare(lines: Vec<String>, filter: Option<&str>) -> Vec<String> {
    let filter = filter.map(str::to_lowercase);
    lines
        .iter()
        .flat_map(|l| l.split('\n'))
        .map(sanitize)
        .filter(|l| filter.as_ref().map_or(true, |f| l.to_lowercase().contains(f.as_str())))
        .map(|l| fit(&l))
        .collect()
}

fn sanitize(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut column = 0;
    for c in line.chars() {
        match c {
            '\r' => continue,
            '\t' => {
                let spaces = 8 - column % 8;
                out.extend(std::iter::repeat(' ').take(spaces));
                column += spaces;
                continue;
            }
            c if c.is_control() => out.push('?'),
            c => out.push(c),
        }
        column += 1;
    }
    out
}

fn fit(line: &str) -> String {
    if line.chars().count() <= WIDTH {
        return line.to_string();
    }
    let mut cut: String = line.chars().take(WIDTH - 1).collect();
    cut.push('>');
    cut
}

/// Completion candidates in columns across the terminal.
fn columns(words: &[&str]) -> Vec<String> {
    let width = words.iter().map(|w| w.len()).max().unwrap_or(0) + 2;
    let per_row = (WIDTH / width).max(1);
    words
        .chunks(per_row)
        .map(|row| {
            let mut line = String::new();
            for word in row {
                line.push_str(&format!("{word:<width$}"));
            }
            line.trim_end().to_string()
        })
        .collect()
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::command::Command;
    use super::*;
    use crate::shell::XorShift;

    const IDLE: Duration = Duration::from_secs(600);

    fn settings(login: bool) -> SessionSettings {
        SessionSettings {
            login,
            idle_timeout: IDLE,
            max_failures: 3,
            lockout: Duration::from_secs(60),
            page_lines: 0,
            banner: "Switchboard 0.1.0 on ttyS0".to_string(),
            hostname: "sb".to_string(),
        }
    }

    /// A session under test with its own clock.
    struct T {
        s: Session,
        now: Instant,
        /// Everything written so far.
        screen: String,
    }

    impl T {
        fn new(settings: SessionSettings) -> T {
            let now = Instant::now();
            let mut t = T { s: Session::new(settings, now), now, screen: String::new() };
            t.drain();
            t
        }

        fn logged_in() -> T {
            let mut t = T::new(settings(true));
            t.login("tech", "pw", true);
            t
        }

        fn advance(&mut self, secs: u64) {
            self.now += Duration::from_secs(secs);
            self.s.handle_timeout(self.now);
        }

        /// Takes the outputs: the text written, and the rest.
        fn drain(&mut self) -> (String, Vec<Output>) {
            let mut text = String::new();
            let mut other = Vec::new();
            while let Some(output) = self.s.poll_output() {
                match output {
                    Output::Write(bytes) => text.push_str(&String::from_utf8_lossy(&bytes)),
                    output => other.push(output),
                }
            }
            self.screen.push_str(&text);
            (text, other)
        }

        fn type_(&mut self, input: &str) -> (String, Vec<Output>) {
            self.s.input(self.now, input.as_bytes());
            self.drain()
        }

        fn login(&mut self, user: &str, password: &str, ok: bool) -> String {
            let (_, out) = self.type_(&format!("{user}\r{password}\r"));
            assert_eq!(out, vec![Output::Authenticate { user: user.into(), password: password.into() }]);
            assert_eq!(self.s.state(), State::Authenticating);
            self.s.auth_result(self.now, ok);
            self.drain().0
        }

        /// Types a command line and returns the command to run.
        fn run(&mut self, line: &str) -> Command {
            match self.type_(&format!("{line}\r")).1.as_slice() {
                [Output::Run(command)] => command.clone(),
                other => panic!("{line}: {other:?}"),
            }
        }
    }

    #[test]
    fn banner_and_login() {
        let now = Instant::now();
        let mut s = Session::new(settings(true), now);
        assert_eq!(
            s.poll_output(),
            Some(Output::Write(b"Switchboard 0.1.0 on ttyS0\r\n\r\nlogin: ".to_vec()))
        );
        assert_eq!(s.poll_output(), None);
        assert_eq!(s.state(), State::LoggedOut);
        assert_eq!(s.timeout(), None);

        let mut t = T::new(settings(true));
        let (text, out) = t.type_("tech\r");
        assert_eq!(text, "tech\r\nPassword: ");
        assert!(out.is_empty());
        assert_eq!(t.s.state(), State::Password);
        let (text, out) = t.type_("secret\r");
        assert_eq!(text, "\r\n");
        assert_eq!(out, vec![Output::Authenticate { user: "tech".into(), password: "secret".into() }]);
        // Input while the check runs is discarded.
        assert_eq!(t.type_("show calls\r"), (String::new(), vec![]));
        t.s.auth_result(t.now, true);
        assert_eq!(t.drain().0, "sb> ");
        assert_eq!(t.s.state(), State::Ready);
        assert_eq!(t.s.user(), Some("tech"));
        // A late or repeated answer changes nothing.
        t.s.auth_result(t.now, false);
        assert_eq!(t.drain(), (String::new(), vec![]));
    }

    #[test]
    fn empty_or_long_user_names_reprompt() {
        let mut t = T::new(settings(true));
        assert_eq!(t.type_("\r\n").0, "\r\nlogin: ");
        assert_eq!(t.type_("   \r").0, "   \r\nlogin: ");
        // The editor stops a name at 64 characters with BEL; the 65th is not taken.
        let (text, _) = t.type_(&"x".repeat(65));
        assert!(text.ends_with("x\x07"));
        assert_eq!(t.type_("\x03").0, "^C\r\nlogin: ");
        assert_eq!(t.s.state(), State::LoggedOut);
    }

    #[test]
    fn wrong_password() {
        let mut t = T::new(settings(true));
        let text = t.login("tech", "nope", false);
        assert_eq!(text, "Login incorrect\r\n\r\nlogin: ");
        assert_eq!(t.s.state(), State::LoggedOut);
        assert_eq!(t.s.user(), None);
        // Ctrl-C at the password prompt goes back to the login prompt.
        t.type_("tech\r");
        assert_eq!(t.type_("abc\x03").0, "^C\r\nlogin: ");
        assert_eq!(t.s.state(), State::LoggedOut);
    }

    #[test]
    fn lockout_expiry_and_doubling() {
        let mut t = T::new(settings(true));
        t.login("tech", "a", false);
        t.login("tech", "b", false);
        let text = t.login("tech", "c", false);
        assert_eq!(text, "Login incorrect\r\nToo many failed logins: locked for 60 seconds\r\n");
        assert_eq!(t.s.state(), State::Locked);
        assert_eq!(t.s.timeout(), Some(t.now + Duration::from_secs(60)));
        // Input is ignored, but Ctrl-C says how long is left.
        assert_eq!(t.type_("tech\rpw\r"), (String::new(), vec![]));
        t.now += Duration::from_secs(20);
        assert_eq!(t.type_("\x03").0, "Locked for 40 more seconds.\r\n");
        t.advance(39);
        assert_eq!(t.s.state(), State::Locked);
        t.advance(1);
        assert_eq!(t.s.state(), State::LoggedOut);
        assert_eq!(t.drain().0, "login: ");

        // The next lockout is twice as long, then four times, up to 15 minutes.
        for expected in [120, 240, 480, 900, 900] {
            for pw in ["a", "b", "c"] {
                t.login("tech", pw, false);
            }
            assert_eq!(t.s.state(), State::Locked);
            assert!(t.screen.ends_with(&format!("locked for {expected} seconds\r\n")), "{expected}");
            t.advance(expected);
            assert_eq!(t.s.state(), State::LoggedOut);
        }

        // A good login resets both counts.
        t.login("tech", "a", false);
        t.login("tech", "ok", true);
        assert_eq!(t.s.state(), State::Ready);
        t.type_("logout\r");
        t.drain();
        t.login("tech", "a", false);
        t.login("tech", "b", false);
        assert_eq!(t.s.state(), State::LoggedOut);
        t.login("tech", "c", false);
        assert!(t.screen.ends_with("locked for 60 seconds\r\n"));
    }

    #[test]
    fn a_lockout_carries_over_to_the_next_session_on_the_line() {
        let mut t = T::new(settings(true));
        for pw in ["a", "b", "c"] {
            t.login("tech", pw, false);
        }
        assert_eq!(t.s.state(), State::Locked);
        t.now += Duration::from_secs(10);
        let state = t.s.lockout_state();
        assert_eq!(state.until, Some(t.now + Duration::from_secs(50)));

        // The cable is pulled and plugged back: a new session on the same line.
        let mut u = T::new(settings(true));
        u.now = t.now;
        u.s.carry_lockout(u.now, state);
        assert_eq!(u.s.state(), State::Locked);
        assert_eq!(u.drain().0, "Locked for 50 more seconds.\r\n");
        assert_eq!(u.type_("tech\rok\r"), (String::new(), vec![]));
        u.advance(50);
        assert_eq!(u.s.state(), State::LoggedOut);
        // The count goes on: the next lockout is the doubled one.
        for pw in ["a", "b", "c"] {
            u.login("tech", pw, false);
        }
        assert!(u.screen.ends_with("locked for 120 seconds\r\n"), "{}", u.screen);
        // A lockout that ended while the line was away does not come back.
        let mut v = T::new(settings(true));
        v.now = u.now + Duration::from_secs(200);
        v.s.carry_lockout(v.now, u.s.lockout_state());
        assert_eq!(v.s.state(), State::LoggedOut);
    }

    #[test]
    fn keys_typed_while_a_command_runs_run_after_it() {
        let mut t = T::logged_in();
        assert_eq!(t.run("show version"), Command::ShowVersion);
        // Typed ahead: two commands; nothing happens until the first one ends.
        assert_eq!(t.type_("show calls\rshow spans\r"), (String::new(), vec![]));
        t.s.reply(t.now, vec!["Switchboard 0.1.0".into()]);
        let (_, out) = t.drain();
        assert_eq!(out, vec![Output::Run(Command::ShowCalls)]);
        t.s.stream(t.now, vec!["...".into()]);
        t.s.done(t.now, None);
        let (_, out) = t.drain();
        assert_eq!(out, vec![Output::Run(Command::ShowSpans)]);
        // Ctrl-C stops the command and forgets what was typed after it.
        t.type_("show alarms\r\x03");
        t.s.done(t.now, None);
        let (_, out) = t.drain();
        assert_eq!(out, vec![]);
        assert_eq!(t.s.state(), State::Ready);
    }

    #[test]
    fn idle_logout() {
        let mut t = T::logged_in();
        assert_eq!(t.s.timeout(), Some(t.now + IDLE));
        t.advance(300);
        t.type_("sh");
        assert_eq!(t.s.timeout(), Some(t.now + IDLE));
        t.advance(599);
        assert_eq!(t.s.state(), State::Ready);
        t.advance(1);
        assert_eq!(
            t.drain().0,
            "\r\nIdle for 10 minutes: logged out.\r\n\r\nSwitchboard 0.1.0 on ttyS0\r\n\r\nlogin: "
        );
        assert_eq!(t.s.state(), State::LoggedOut);
        assert_eq!(t.s.user(), None);
        // The half-typed command is gone, and so is history.
        t.login("tech", "pw", true);
        assert_eq!(t.type_("history\r").0, "history\r\n   1  history\r\nsb> ");
    }

    #[test]
    fn noise_does_not_keep_a_session_alive() {
        let mut t = T::logged_in();
        let deadline = t.s.timeout();
        t.now += Duration::from_secs(100);
        t.s.input(t.now, &[0x80, 0xff, 0x01]);
        assert_eq!(t.s.timeout(), deadline);
        assert_eq!(t.s.noise(), 3);
    }

    #[test]
    fn logged_out_timeouts() {
        let mut t = T::new(settings(true));
        t.type_("te");
        assert_eq!(t.s.timeout(), Some(t.now + IDLE));
        t.advance(600);
        assert_eq!(t.drain().0, "\r\nlogin: ");
        assert_eq!(t.s.timeout(), None);
        assert_eq!(t.type_("x\r").0, "x\r\nPassword: ");
        assert_eq!(t.s.timeout(), Some(t.now + IDLE));
        t.advance(600);
        assert_eq!(t.drain().0, "\r\nLogin timed out.\r\n\r\nlogin: ");
        assert_eq!(t.s.state(), State::LoggedOut);
        // The session is usable: the editor echoes again.
        assert_eq!(t.type_("tech").0, "tech");
    }

    #[test]
    fn without_login() {
        let now = Instant::now();
        let mut s = Session::new(settings(false), now);
        assert_eq!(s.poll_output(), Some(Output::Write(b"Switchboard 0.1.0 on ttyS0\r\n\r\nsb> ".to_vec())));
        assert_eq!(s.state(), State::Ready);
        assert_eq!(s.user(), None);
        s.input(now, b"exit\r");
        assert_eq!(s.poll_output(), Some(Output::Write(b"exit\r\nLogged out.\r\n".to_vec())));
        assert_eq!(s.poll_output(), Some(Output::Close { reason: "logout".into() }));
        assert_eq!(s.state(), State::Closed);
        s.input(now, b"show calls\r");
        assert_eq!(s.poll_output(), None);
        assert_eq!(s.timeout(), None);

        let mut t = T::new(settings(false));
        assert_eq!(
            t.type_("\x04"),
            ("\r\nLogged out.\r\n".into(), vec![Output::Close { reason: "logout".into() }])
        );
        let mut t = T::new(settings(false));
        t.advance(600);
        assert_eq!(
            t.drain(),
            (
                "\r\nIdle for 10 minutes: logged out.\r\n".into(),
                vec![Output::Close { reason: "idle".into() }]
            )
        );
    }

    #[test]
    fn ctrl_d_logs_out_only_on_an_empty_line() {
        let mut t = T::logged_in();
        assert_eq!(t.type_("x\x04").0, "x");
        assert_eq!(t.s.state(), State::Ready);
        t.type_("\x15");
        assert!(t.type_("\x04").0.starts_with("\r\nLogged out.\r\n"));
        assert_eq!(t.s.state(), State::LoggedOut);
    }

    #[test]
    fn commands_run_and_reply() {
        let mut t = T::logged_in();
        assert_eq!(t.type_("\r").0, "\r\nsb> ");
        assert_eq!(t.run("sh ca"), Command::ShowCalls);
        assert_eq!(t.s.state(), State::Running);
        t.s.reply(t.now, vec!["C-1 port 3".into(), "C-2 port 4\nsecond\tline".into()]);
        assert_eq!(t.drain().0, "C-1 port 3\r\nC-2 port 4\r\nsecond  line\r\nsb> ");
        assert_eq!(t.s.state(), State::Ready);
        // A done() after a reply is stale.
        t.s.done(t.now, Some("late".into()));
        assert_eq!(t.drain().0, "");
        // Parse errors are printed and the prompt comes back.
        assert_eq!(t.type_("shwo\r").0, "shwo\r\nunknown command 'shwo': type help\r\nsb> ");
        assert_eq!(t.type_("test tone x\r").0, "test tone x\r\ntest tone: 'x' is not a port number\r\nsb> ");
    }

    #[test]
    fn long_reply_lines_are_cut() {
        let mut t = T::logged_in();
        t.run("show channels");
        t.s.reply(t.now, vec!["a".repeat(80), "b".repeat(81), "c\x1b[31m".into()]);
        let text = t.drain().0;
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(lines[0], "a".repeat(80));
        assert_eq!(lines[1], format!("{}>", "b".repeat(79)));
        assert_eq!(lines[2], "c?[31m");
    }

    #[test]
    fn paging() {
        let mut t = T::new(SessionSettings { page_lines: 3, ..settings(true) });
        t.login("tech", "pw", true);
        t.run("show channels");
        t.s.reply(t.now, (1..=8).map(|i| format!("line {i}")).collect());
        assert_eq!(t.drain().0, format!("line 1\r\nline 2\r\nline 3\r\n{MORE}"));
        assert_eq!(t.s.state(), State::Paging);
        let erase = format!("\r{}\r", " ".repeat(MORE.len()));
        // Other keys do nothing.
        assert_eq!(t.type_("x").0, "");
        assert_eq!(t.type_(" ").0, format!("{erase}line 4\r\nline 5\r\nline 6\r\n{MORE}"));
        // CR LF is one key: one line.
        assert_eq!(t.type_("\r\n").0, format!("{erase}line 7\r\n{MORE}"));
        assert_eq!(t.type_(" ").0, format!("{erase}line 8\r\nsb> "));
        assert_eq!(t.s.state(), State::Ready);

        // q and Ctrl-C stop.
        for key in ["q", "\x03"] {
            t.run("show channels");
            t.s.reply(t.now, (1..=8).map(|i| format!("line {i}")).collect());
            t.drain();
            assert_eq!(t.type_(key).0, format!("{erase}sb> "));
            assert_eq!(t.s.state(), State::Ready);
        }

        // Exactly a page is not paged.
        t.run("show channels");
        t.s.reply(t.now, vec!["a".into(), "b".into(), "c".into()]);
        assert_eq!(t.drain().0, "a\r\nb\r\nc\r\nsb> ");

        // A command whose line ended with CR LF does not lose its first page to the LF.
        t.s.input(t.now, b"help\r\n");
        assert!(t.drain().0.ends_with(MORE));
        assert_eq!(t.s.state(), State::Paging);

        // Idle at --More-- logs out.
        t.advance(600);
        assert_eq!(t.s.state(), State::LoggedOut);
    }

    #[test]
    fn grep_filters_replies_and_streams() {
        let mut t = T::logged_in();
        assert_eq!(t.run("show calls | grep PORT 3"), Command::ShowCalls);
        t.s.reply(t.now, vec!["C-1 port 3".into(), "C-2 port 4".into(), "C-3 Port 3".into()]);
        assert_eq!(t.drain().0, "C-1 port 3\r\nC-3 Port 3\r\nsb> ");
        t.run("log tail -f | include pri");
        t.s.stream(t.now, vec!["pri: up".into(), "calls: ring".into()]);
        assert_eq!(t.drain().0, "pri: up\r\n");
        t.s.done(t.now, None);
        assert_eq!(t.drain().0, "sb> ");
        let text = t.type_("help | grep tone\r").0;
        assert_eq!(text.matches("\r\n").count(), 2, "{text}");
        assert!(text.contains("test tone"));
    }

    #[test]
    fn ctrl_c_cancels_a_running_command() {
        let mut t = T::logged_in();
        t.run("log tail -f");
        // Other input is discarded.
        assert_eq!(t.type_("show calls\r\x1b[A"), (String::new(), vec![]));
        assert_eq!(t.type_("\x03"), ("^C\r\n".into(), vec![Output::Cancel]));
        assert_eq!(t.type_("\x03\x03"), (String::new(), vec![]));
        assert_eq!(t.s.state(), State::Running);
        t.s.done(t.now, None);
        assert_eq!(t.drain().0, "sb> ");
        assert_eq!(t.s.state(), State::Ready);
    }

    #[test]
    fn stream_lines_and_errors() {
        let mut t = T::new(SessionSettings { page_lines: 2, ..settings(true) });
        t.login("tech", "pw", true);
        t.run("test tone 3");
        t.s.stream(t.now, (1..=5).map(|i| format!("{i} s: -10.1 dBm0")).collect());
        let text = t.drain().0;
        assert_eq!(text.matches("dBm0\r\n").count(), 5);
        assert_eq!(t.s.state(), State::Running);
        t.s.done(t.now, Some("port 3 is busy".into()));
        assert_eq!(t.drain().0, "error: port 3 is busy\r\nsb> ");
        // Nothing is taken when no command runs.
        t.s.stream(t.now, vec!["late".into()]);
        t.s.reply(t.now, vec!["late".into()]);
        assert_eq!(t.drain().0, "");
    }

    #[test]
    fn idle_while_running_cancels_then_logs_out() {
        let mut t = T::logged_in();
        t.run("log tail -f");
        t.advance(600);
        assert_eq!(t.drain(), (String::new(), vec![Output::Cancel]));
        assert_eq!(t.s.timeout(), None);
        t.s.stream(t.now, vec!["last".into()]);
        t.s.done(t.now, None);
        let text = t.drain().0;
        assert!(text.starts_with("last\r\nIdle for 10 minutes: logged out.\r\n"), "{text}");
        assert_eq!(t.s.state(), State::LoggedOut);

        // With a reply instead of done.
        t.login("tech", "pw", true);
        t.run("show calls");
        t.advance(600);
        t.s.reply(t.now, vec!["C-1".into()]);
        assert!(t.drain().0.starts_with("Idle for 10 minutes"));
        assert_eq!(t.s.state(), State::LoggedOut);
    }

    #[test]
    fn history_recall_and_listing() {
        let mut t = T::logged_in();
        t.run("show calls");
        t.s.done(t.now, None);
        t.run("show spans");
        t.s.done(t.now, None);
        t.run("show spans");
        t.s.done(t.now, None);
        t.drain();
        // What the line and the entry have in common stays on the screen.
        assert_eq!(t.type_("sh\x1b[A").0, "show spans");
        assert_eq!(t.type_("\x1b[A").0, "\x08 \x08\x08 \x08\x08 \x08\x08 \x08\x08 \x08calls");
        // At the oldest entry: BEL.
        assert_eq!(t.type_("\x1bOA").0, "\x07");
        t.type_("\x1b[B");
        // Past the newest entry the draft comes back.
        t.type_("\x0e");
        assert_eq!(t.s.editor.line(), "sh");
        assert_eq!(t.type_("\x1b[B").0, "\x07");
        t.type_("\x10");
        assert_eq!(t.run(""), Command::ShowSpans);
        t.s.done(t.now, None);
        t.drain();
        assert_eq!(t.type_("hi\r").0, "hi\r\n   1  show calls\r\n   2  show spans\r\n   3  hi\r\nsb> ");

        for i in 0..60 {
            t.type_(&format!("shwo {i}\r"));
        }
        let text = t.type_("history\r").0;
        assert!(text.contains("   1  shwo 11\r\n"), "{text}");
        assert!(text.contains("  50  history\r\n"));
    }

    #[test]
    fn tab_completion() {
        let mut t = T::logged_in();
        assert_eq!(t.type_("sh\t").0, "show ");
        assert_eq!(t.type_("c\t").0, "c\r\nchannels  calls\r\nsb> show c");
        assert_eq!(t.type_("a\t").0, "alls ");
        assert_eq!(t.type_("x\t").0, "x\x07");
        assert_eq!(t.s.editor.line(), "show calls x");
    }

    #[test]
    fn help_fits_80_columns() {
        let mut t = T::logged_in();
        let text = t.type_("help\r").0;
        assert!(text.contains("test tone"));
        for line in text.split("\r\n") {
            assert!(line.chars().count() <= WIDTH, "{line}");
        }
        for spec in command::COMMANDS {
            let text = t.type_(&format!("help {}\r", spec.words.join(" "))).0;
            assert!(text.contains(spec.usage));
            for line in text.split("\r\n") {
                assert!(line.chars().count() <= WIDTH, "{line}");
            }
        }
    }

    #[test]
    fn password_never_written_nor_in_history() {
        let secret = "Sup3rS3cret!";
        let mut t = T::new(settings(true));
        t.login("tech", secret, false);
        // Typed with edits and a Ctrl-U.
        t.type_(&format!("tech\rxx\x08\x7f\x15{secret}\r"));
        t.s.auth_result(t.now, true);
        t.drain();
        t.type_("history\r");
        assert!(!t.screen.contains(secret));
        assert!(!t.screen.contains("Sup3r"));
        assert!(t.s.history.iter().all(|h| !h.contains("Sup3r")));
    }

    #[test]
    fn random_bytes_in_every_state() {
        let mut rng = XorShift(0xDEAD_BEEF_CAFE_F00D);
        let states: [fn() -> T; 6] = [
            || T::new(settings(true)),
            || {
                let mut t = T::new(settings(true));
                t.type_("tech\r");
                t
            },
            || {
                let mut t = T::new(settings(true));
                t.type_("tech\rpw\r");
                t
            },
            || {
                let mut t = T::new(settings(true));
                for _ in 0..3 {
                    t.login("tech", "x", false);
                }
                t
            },
            T::logged_in,
            || {
                let mut t = T::new(SessionSettings { page_lines: 3, ..settings(true) });
                t.login("tech", "pw", true);
                t.run("show calls");
                t
            },
        ];
        for make in states {
            for round in 0..50 {
                let mut t = make();
                let bytes: Vec<u8> = (0..2000).map(|_| rng.next() as u8).collect();
                for chunk in bytes.chunks(1 + round % 7) {
                    t.s.input(t.now, chunk);
                    t.drain();
                }
                assert!(t.s.editor.line().chars().all(|c| (' '..='~').contains(&c)));
                recover(&mut t);
            }
        }
    }

    #[test]
    fn random_everything_never_panics_and_recovers() {
        let mut rng = XorShift(42);
        for _ in 0..20 {
            let mut t = T::new(SessionSettings { page_lines: 4, ..settings(rng.next() % 2 == 0) });
            for _ in 0..3000 {
                match rng.next() % 10 {
                    0 => t.s.auth_result(t.now, rng.next() % 3 == 0),
                    1 => t.s.reply(t.now, (0..rng.next() % 12).map(|i| format!("reply {i}")).collect()),
                    2 => t.s.stream(t.now, vec!["stream".into()]),
                    3 => t.s.done(t.now, (rng.next() % 2 == 0).then(|| "oops".to_string())),
                    4 => t.advance(rng.next() % 700),
                    5 => {
                        let words =
                            ["help\r", "show calls\r", "tech\r", "\t", "\x1b[A", "q", " ", "\x03", "\x04"];
                        let word = words[(rng.next() % words.len() as u64) as usize];
                        t.type_(word);
                    }
                    _ => {
                        let bytes: Vec<u8> = (0..rng.next() % 16).map(|_| rng.next() as u8).collect();
                        t.s.input(t.now, &bytes);
                    }
                }
                t.drain();
                if t.s.state() == State::Closed {
                    assert_eq!(t.s.timeout(), None);
                }
            }
            recover(&mut t);
        }
    }

    /// Brings a session back to the prompt from wherever it is, the way a technician would,
    /// and checks that it answers.
    fn recover(t: &mut T) {
        if t.s.state() == State::Closed {
            return;
        }
        if t.s.state() == State::Running {
            // Keys typed ahead run now, and may log out.
            t.s.done(t.now, None);
            if t.s.state() == State::Closed {
                return;
            }
        }
        if t.s.state() == State::Paging {
            t.s.input(t.now, b"q");
        }
        if t.s.state() == State::Authenticating {
            t.s.auth_result(t.now, false);
        }
        if t.s.state() == State::Locked {
            t.advance(MAX_LOCKOUT.as_secs());
        }
        t.s.input(t.now, b"\x03");
        if t.s.state() != State::Ready {
            assert_eq!(t.s.state(), State::LoggedOut);
            t.drain();
            t.login("tech", "pw", true);
        }
        let text = t.type_("help | grep tone\r").0;
        assert!(text.contains("test tone"), "{text:?}");
        assert_eq!(t.s.state(), State::Ready);
    }
}
