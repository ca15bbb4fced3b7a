//! A byte-at-a-time line editor for dumb terminals.
//!
//! Serial consoles are often nothing more than a VT100 emulator or a teletype-like terminal
//! server, so the editor only ever appends at the end of the line and erases with
//! backspace-space-backspace, which every terminal understands. Cursor movement inside the
//! line is deliberately not supported: it would need escape sequences a dumb terminal does not
//! have.
//!
//! Bytes from a serial line are hostile (line noise, a modem's garbage, a binary file pasted
//! by mistake), so every byte has a defined meaning, escape sequences are parsed by a bounded
//! state machine that always returns to the normal state, and the line only ever holds
//! printable ASCII.
//!
//! What to echo is collected in an internal buffer the caller drains with
//! [`LineEditor::take_echo`] after each [`LineEditor::feed`], so echo and the events that
//! follow it can be written in the right order.

/// What a byte completed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EditorEvent {
    /// CR or LF ended the line; the editor is empty again.
    Line(String),
    /// Ctrl-C: the line was dropped.
    Interrupt,
    /// Ctrl-D on an empty line.
    Eof,
    /// Tab.
    Complete,
    /// Up arrow or Ctrl-P.
    HistoryPrev,
    /// Down arrow or Ctrl-N.
    HistoryNext,
    /// A byte that means nothing here (a stray control byte, a byte >= 0x80, an abandoned
    /// escape sequence) was dropped. Reported once per byte.
    Noise,
}

const BEL: u8 = 0x07;
const BS: u8 = 0x08;
const DEL: u8 = 0x7F;
const ESC: u8 = 0x1B;
const CR: u8 = b'\r';
const LF: u8 = b'\n';
const NUL: u8 = 0x00;

/// Control keys.
const CTRL_C: u8 = 0x03;
const CTRL_D: u8 = 0x04;
const CTRL_N: u8 = 0x0E;
const CTRL_P: u8 = 0x10;
const CTRL_U: u8 = 0x15;
const CTRL_W: u8 = 0x17;
const TAB: u8 = 0x09;

/// The erase sequence for one character; it works on every terminal that can backspace.
const ERASE: &[u8] = b"\x08 \x08";

/// A CSI sequence longer than this is not one a terminal sends for a key: it is noise, and
/// the parser gives up on it rather than wait for a final byte that may never come.
const MAX_CSI_LEN: usize = 16;

/// Where the escape sequence parser is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Escape {
    /// Not in a sequence.
    None,
    /// After ESC.
    Esc,
    /// After ESC [ and `len` parameter or intermediate bytes.
    Csi { len: usize },
    /// After ESC O (the cursor keys in application mode).
    Ss3,
}

/// A line editor for one terminal.
#[derive(Clone, Debug)]
pub struct LineEditor {
    max_len: usize,
    line: String,
    echo: bool,
    out: Vec<u8>,
    escape: Escape,
    /// The end-of-line byte just seen, so that its partner (LF after CR, CR after LF, NUL
    /// after CR) is not taken for a second end of line.
    last_eol: Option<u8>,
    noise: u64,
}

impl LineEditor {
    /// An empty editor that accepts lines of up to `max_len` characters, echo on.
    pub fn new(max_len: usize) -> LineEditor {
        LineEditor {
            max_len,
            line: String::new(),
            echo: true,
            out: Vec::new(),
            escape: Escape::None,
            last_eol: None,
            noise: 0,
        }
    }

    /// Turns echo on or off. With echo off (passwords) nothing of the line is echoed, not
    /// even BEL or erases, which would give its length away; only the line end and "^C"
    /// are, so the terminal still moves on to the next line.
    pub fn set_echo(&mut self, on: bool) {
        self.echo = on;
    }

    /// Whether echo is on.
    pub fn echo(&self) -> bool {
        self.echo
    }

    /// Changes the longest line accepted from now on. A longer line already typed is cut
    /// (without echo: the caller reprints what it needs).
    pub fn set_max_len(&mut self, max_len: usize) {
        self.max_len = max_len;
        self.line.truncate(max_len);
    }

    /// The line typed so far.
    pub fn line(&self) -> &str {
        &self.line
    }

    /// How many bytes were dropped as noise since the editor was made.
    pub fn noise(&self) -> u64 {
        self.noise
    }

    /// Takes what is to be echoed so far.
    pub fn take_echo(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// Drops the line and any half-read escape sequence, echoing nothing.
    pub fn clear(&mut self) {
        self.line.clear();
        self.escape = Escape::None;
    }

    /// Replaces the line without echoing anything, for a caller that reprints the prompt
    /// and the line itself. Characters that cannot be in a line are dropped.
    pub fn reset(&mut self, s: &str) {
        self.line.clear();
        self.line.extend(s.chars().filter(|c| is_printable(*c)).take(self.max_len));
    }

    /// Replaces the displayed line (history recall, completion): the old line is erased
    /// with backspace-space-backspace and the new one printed, into `out`. With echo off
    /// nothing is written.
    ///
    /// Only what differs is rewritten: the part the two lines have in common stays on the
    /// screen, which matters at 9600 baud.
    pub fn set_line(&mut self, s: &str, out: &mut Vec<u8>) {
        let old = std::mem::take(&mut self.line);
        self.reset(s);
        let common = old.bytes().zip(self.line.bytes()).take_while(|(a, b)| a == b).count();
        if self.echo {
            for _ in common..old.len() {
                out.extend_from_slice(ERASE);
            }
            out.extend_from_slice(&self.line.as_bytes()[common..]);
        }
    }

    /// Whether `byte` is the second half of a two-byte line end (LF after CR, CR after LF,
    /// NUL after CR) and must be dropped. [`feed`](Self::feed) does this itself; a caller
    /// that handles some bytes without the editor (a pager, say) calls it first for every
    /// byte, so a CR LF stays one key when the CR ends a line here and the LF arrives in
    /// the pager. Calling it twice for the same byte is harmless.
    pub fn take_eol_partner(&mut self, byte: u8) -> bool {
        let partner = matches!((self.last_eol, byte), (Some(CR), LF | NUL) | (Some(LF), CR));
        self.last_eol = if partner || !(byte == CR || byte == LF) { None } else { Some(byte) };
        partner
    }

    /// Takes one byte from the terminal. Anything to echo is appended to the echo buffer.
    pub fn feed(&mut self, byte: u8) -> Option<EditorEvent> {
        if self.take_eol_partner(byte) {
            return None;
        }
        match self.escape {
            Escape::None => self.normal(byte),
            Escape::Esc => self.after_esc(byte),
            Escape::Csi { len } => self.in_csi(byte, len),
            Escape::Ss3 => self.after_ss3(byte),
        }
    }

    fn after_esc(&mut self, byte: u8) -> Option<EditorEvent> {
        match byte {
            b'[' => {
                self.escape = Escape::Csi { len: 0 };
                None
            }
            b'O' => {
                self.escape = Escape::Ss3;
                None
            }
            // ESC ESC: the first one was a lone Escape key; start again.
            ESC => None,
            // A two-byte escape sequence (ESC c, ESC 7, ...): consumed.
            0x20..=0x7E => {
                self.escape = Escape::None;
                None
            }
            // A control byte is not part of any sequence: the ESC was on its own, and the
            // byte (Ctrl-C, CR) must still work.
            _ => {
                self.escape = Escape::None;
                self.normal(byte)
            }
        }
    }

    fn in_csi(&mut self, byte: u8, len: usize) -> Option<EditorEvent> {
        match byte {
            // Parameter and intermediate bytes.
            0x20..=0x3F => {
                if len + 1 >= MAX_CSI_LEN {
                    self.escape = Escape::None;
                    self.noise += 1;
                    return Some(EditorEvent::Noise);
                }
                self.escape = Escape::Csi { len: len + 1 };
                None
            }
            // The final byte. The arrows may carry modifiers (ESC [ 1 ; 5 A), which do not
            // change what they mean here.
            0x40..=0x7E => {
                self.escape = Escape::None;
                arrow(byte)
            }
            // ECMA-48 says a control byte inside a sequence is acted upon; acting on it and
            // dropping the sequence keeps Ctrl-C and CR working whatever came before.
            _ => {
                self.escape = Escape::None;
                self.normal(byte)
            }
        }
    }

    fn after_ss3(&mut self, byte: u8) -> Option<EditorEvent> {
        match byte {
            0x20..=0x7E => {
                self.escape = Escape::None;
                arrow(byte)
            }
            _ => {
                self.escape = Escape::None;
                self.normal(byte)
            }
        }
    }

    fn normal(&mut self, byte: u8) -> Option<EditorEvent> {
        match byte {
            0x20..=0x7E => {
                if self.line.len() >= self.max_len {
                    if self.echo {
                        self.out.push(BEL);
                    }
                } else {
                    self.line.push(char::from(byte));
                    if self.echo {
                        self.out.push(byte);
                    }
                }
                None
            }
            CR | LF => {
                self.out.extend_from_slice(b"\r\n");
                Some(EditorEvent::Line(std::mem::take(&mut self.line)))
            }
            BS | DEL => {
                self.erase(1);
                None
            }
            CTRL_U => {
                self.erase(self.line.len());
                None
            }
            CTRL_W => {
                self.erase(self.last_word_len());
                None
            }
            CTRL_C => {
                self.line.clear();
                self.out.extend_from_slice(b"^C\r\n");
                Some(EditorEvent::Interrupt)
            }
            CTRL_D if self.line.is_empty() => Some(EditorEvent::Eof),
            // Ctrl-D inside a line would delete under the cursor in readline; the cursor is
            // always at the end here, so there is nothing to do.
            CTRL_D => None,
            TAB => Some(EditorEvent::Complete),
            CTRL_P => Some(EditorEvent::HistoryPrev),
            CTRL_N => Some(EditorEvent::HistoryNext),
            ESC => {
                self.escape = Escape::Esc;
                None
            }
            _ => {
                self.noise += 1;
                Some(EditorEvent::Noise)
            }
        }
    }

    /// How many characters Ctrl-W erases: trailing spaces, then the word before them.
    fn last_word_len(&self) -> usize {
        let trimmed = self.line.trim_end_matches(' ');
        let word = trimmed.len() - trimmed.rfind(' ').map_or(0, |i| i + 1);
        self.line.len() - trimmed.len() + word
    }

    fn erase(&mut self, n: usize) {
        let n = n.min(self.line.len());
        self.line.truncate(self.line.len() - n);
        if self.echo {
            for _ in 0..n {
                self.out.extend_from_slice(ERASE);
            }
        }
    }
}

/// Whether a character may be in a line.
fn is_printable(c: char) -> bool {
    matches!(c, ' '..='~')
}

/// What the final byte of an escape sequence means: Up and Down walk the history; the
/// other keys (Left, Right, function keys) do nothing on a line this simple.
fn arrow(byte: u8) -> Option<EditorEvent> {
    match byte {
        b'A' => Some(EditorEvent::HistoryPrev),
        b'B' => Some(EditorEvent::HistoryNext),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shell::XorShift;

    /// Feeds bytes and returns the events and the echo.
    fn run(ed: &mut LineEditor, bytes: &[u8]) -> (Vec<EditorEvent>, Vec<u8>) {
        let events = bytes.iter().filter_map(|b| ed.feed(*b)).collect();
        (events, ed.take_echo())
    }

    fn line(s: &str) -> EditorEvent {
        EditorEvent::Line(s.to_string())
    }

    #[test]
    fn typing_and_enter() {
        let mut ed = LineEditor::new(80);
        let (events, echo) = run(&mut ed, b"show calls\r");
        assert_eq!(events, vec![line("show calls")]);
        assert_eq!(echo, b"show calls\r\n");
        assert_eq!(ed.line(), "");
    }

    #[test]
    fn backspace_and_del_both_erase() {
        let mut ed = LineEditor::new(80);
        let (events, echo) = run(&mut ed, b"abc\x08\x7f");
        assert!(events.is_empty());
        assert_eq!(ed.line(), "a");
        assert_eq!(echo, b"abc\x08 \x08\x08 \x08");
        // On an empty line there is nothing to erase and nothing to echo.
        let (_, echo) = run(&mut ed, b"\x08\x08\x7f");
        assert_eq!(ed.line(), "");
        assert_eq!(echo, b"\x08 \x08");
    }

    #[test]
    fn crlf_lfcr_and_cr_nul_are_one_line_end() {
        for ending in [&b"\r\n"[..], b"\n\r", b"\r\0", b"\r", b"\n"] {
            let mut ed = LineEditor::new(80);
            let mut input = b"a".to_vec();
            input.extend_from_slice(ending);
            input.extend_from_slice(b"b");
            input.extend_from_slice(ending);
            let (events, _) = run(&mut ed, &input);
            assert_eq!(events, vec![line("a"), line("b")], "{ending:?}");
        }
        // Two CRs are two lines, and so are CR LF LF.
        let mut ed = LineEditor::new(80);
        assert_eq!(run(&mut ed, b"\r\r").0, vec![line(""), line("")]);
        assert_eq!(run(&mut ed, b"\r\n\n").0, vec![line(""), line("")]);
    }

    #[test]
    fn eol_partner_checked_by_the_caller_is_not_checked_twice() {
        let mut ed = LineEditor::new(80);
        let mut events = Vec::new();
        for b in b"x\r\n\ny" {
            if !ed.take_eol_partner(*b) {
                events.extend(ed.feed(*b));
            }
        }
        assert_eq!(events, vec![line("x"), line("")]);
        assert_eq!(ed.line(), "y");
    }

    #[test]
    fn ctrl_u_and_ctrl_w() {
        let mut ed = LineEditor::new(80);
        let (_, echo) = run(&mut ed, b"ab\x15");
        assert_eq!(ed.line(), "");
        assert_eq!(echo, b"ab\x08 \x08\x08 \x08");
        run(&mut ed, b"show chan  \x17");
        assert_eq!(ed.line(), "show ");
        run(&mut ed, b"\x17");
        assert_eq!(ed.line(), "");
        let (_, echo) = run(&mut ed, b"\x17");
        assert!(echo.is_empty());
    }

    #[test]
    fn ctrl_c_drops_the_line() {
        let mut ed = LineEditor::new(80);
        let (events, echo) = run(&mut ed, b"show\x03");
        assert_eq!(events, vec![EditorEvent::Interrupt]);
        assert_eq!(echo, b"show^C\r\n");
        assert_eq!(ed.line(), "");
    }

    #[test]
    fn ctrl_d_only_on_an_empty_line() {
        let mut ed = LineEditor::new(80);
        assert_eq!(run(&mut ed, b"\x04").0, vec![EditorEvent::Eof]);
        assert!(run(&mut ed, b"a\x04").0.is_empty());
        assert_eq!(ed.line(), "a");
    }

    #[test]
    fn keys_for_history_and_completion() {
        let mut ed = LineEditor::new(80);
        let (events, echo) = run(&mut ed, b"\x1b[A\x1bOA\x10\x1b[B\x1bOB\x0e\t\x1b[1;5A");
        use EditorEvent::*;
        assert_eq!(
            events,
            vec![
                HistoryPrev,
                HistoryPrev,
                HistoryPrev,
                HistoryNext,
                HistoryNext,
                HistoryNext,
                Complete,
                HistoryPrev
            ]
        );
        assert!(echo.is_empty());
    }

    #[test]
    fn other_escape_sequences_are_ignored() {
        let mut ed = LineEditor::new(80);
        // Left, right, home, F5, delete, ESC c, a lone ESC before a letter.
        let (events, echo) = run(&mut ed, b"a\x1b[D\x1b[C\x1b[H\x1b[15~\x1b[3~\x1bcb\x1bOPc");
        assert!(events.is_empty());
        assert_eq!(ed.line(), "abc");
        assert_eq!(echo, b"abc");
    }

    #[test]
    fn control_bytes_break_out_of_an_escape() {
        let mut ed = LineEditor::new(80);
        assert_eq!(run(&mut ed, b"x\x1b[12\x03").0, vec![EditorEvent::Interrupt]);
        assert_eq!(run(&mut ed, b"y\x1b\r").0, vec![line("y")]);
        assert_eq!(run(&mut ed, b"z\x1bO\r").0, vec![line("z")]);
    }

    #[test]
    fn overlong_csi_is_abandoned() {
        let mut ed = LineEditor::new(80);
        let mut input = b"\x1b[".to_vec();
        input.extend(std::iter::repeat(b'1').take(40));
        let (events, _) = run(&mut ed, &input);
        assert_eq!(events, vec![EditorEvent::Noise]);
        // What follows the abandoned sequence is ordinary input again.
        assert_eq!(run(&mut ed, b"\x15help\r").0, vec![line("help")]);
    }

    #[test]
    fn max_len_rings_the_bell() {
        let mut ed = LineEditor::new(3);
        let (events, echo) = run(&mut ed, b"abcd");
        assert!(events.is_empty());
        assert_eq!(ed.line(), "abc");
        assert_eq!(echo, b"abc\x07");
    }

    #[test]
    fn echo_off_shows_only_the_line_end() {
        let mut ed = LineEditor::new(3);
        ed.set_echo(false);
        let (events, echo) = run(&mut ed, b"se\x08cret\x15pw\r");
        assert_eq!(events, vec![line("pw")]);
        assert_eq!(echo, b"\r\n");
        let (_, echo) = run(&mut ed, b"pw\x03");
        assert_eq!(echo, b"^C\r\n");
    }

    #[test]
    fn set_line_erases_and_prints() {
        let mut ed = LineEditor::new(10);
        run(&mut ed, b"ab");
        let mut out = Vec::new();
        ed.set_line("show\u{7}\u{e9} calls and more", &mut out);
        assert_eq!(ed.line(), "show calls");
        assert_eq!(out, b"\x08 \x08\x08 \x08show calls");
        // Completion only adds to the line: nothing is erased.
        let mut out = Vec::new();
        ed.set_line("show calls | grep x", &mut out);
        assert_eq!(ed.line(), "show calls");
        assert!(out.is_empty());
        ed.set_line("show spans", &mut out);
        assert_eq!(out, b"\x08 \x08\x08 \x08\x08 \x08\x08 \x08\x08 \x08spans");
        ed.reset("x");
        assert_eq!(ed.line(), "x");
        assert!(ed.take_echo().is_empty());
    }

    #[test]
    fn other_bytes_are_noise() {
        let mut ed = LineEditor::new(80);
        let (events, echo) = run(&mut ed, b"\x01\x80\xff\x0b");
        assert_eq!(events, vec![EditorEvent::Noise; 4]);
        assert!(echo.is_empty());
        assert_eq!(ed.noise(), 4);
        assert_eq!(ed.line(), "");
    }

    #[test]
    fn every_byte_in_random_order_then_still_usable() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        for _ in 0..200 {
            let mut bytes: Vec<u8> = (0..=255).collect();
            for i in (1..bytes.len()).rev() {
                let j = (rng.next() % (i as u64 + 1)) as usize;
                bytes.swap(i, j);
            }
            let mut ed = LineEditor::new(40);
            for b in &bytes {
                ed.feed(*b);
                assert!(ed.line().len() <= 40);
                assert!(ed.line().chars().all(is_printable));
            }
            // A Ctrl-U clears whatever was typed; the pending escape is broken by it too.
            let (events, _) = run(&mut ed, b"\x15help\r");
            assert_eq!(events.last(), Some(&line("help")));
        }
    }

    #[test]
    fn long_random_binary_stream() {
        let mut rng = XorShift(12345);
        let mut ed = LineEditor::new(64);
        for _ in 0..200_000 {
            ed.feed(rng.next() as u8);
            assert!(ed.line().len() <= 64);
        }
        ed.take_echo();
        let (events, _) = run(&mut ed, b"\x03help\r");
        assert_eq!(events, vec![EditorEvent::Interrupt, line("help")]);
    }
}
