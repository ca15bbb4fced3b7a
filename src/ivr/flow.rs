//! Flow files: parsing, compiling and checking.
//!
//! One flow per TOML file (`docs/flows.md` is the installer's reference). A flow is a set of
//! named nodes; compiling resolves every reference to an index, so the interpreter never looks
//! a name up during a call, and collects every problem with its file, line and key, so that
//! `switchboard check` reports them all at once.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::schedule::Schedule;
use super::template::Template;
use crate::config::{line_col, ConfigError};

pub use crate::speech::Lang;

/// How a value is read out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SayKind {
    Number,
    Digits,
    Amount,
    Date,
}

impl SayKind {
    fn parse(s: &str) -> Option<SayKind> {
        match s {
            "number" => Some(SayKind::Number),
            "digits" => Some(SayKind::Digits),
            "amount" => Some(SayKind::Amount),
            "date" => Some(SayKind::Date),
            _ => None,
        }
    }
}

/// One thing to play, as written in a flow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlayItem {
    /// A prompt file (8 kHz WAV or anything `audio::wav` reads).
    File(PathBuf),
    /// Text spoken by the TTS engine.
    Tts(Template, Lang),
    /// A value read out from the prompt set of a language.
    Say(SayKind, Template, Lang),
}

/// What the query plugin reads out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuerySay {
    Text,
    Value(SayKind),
}

/// A node's successor: `None` hangs up.
pub type Target = Option<usize>;

/// A condition of a branch node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Case {
    pub var: String,
    pub op: Op,
    pub value: Template,
    pub next: Target,
}

/// Comparison operators; `<` and friends compare as numbers when both sides are numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    StartsWith,
    Empty,
    NotEmpty,
}

impl Op {
    fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "==" => Op::Eq,
            "!=" => Op::Ne,
            "<" => Op::Lt,
            "<=" => Op::Le,
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "starts-with" => Op::StartsWith,
            "empty" => Op::Empty,
            "not-empty" => Op::NotEmpty,
            _ => return None,
        })
    }
}

/// Satisfaction survey answers: a score on a scale, or a grade from a list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SurveyScale {
    Score { max: u8, unhappy_below: u8 },
    Grades { keys: Vec<(char, String)>, unhappy: Vec<String> },
}

/// A compiled node.
#[derive(Clone, Debug, PartialEq)]
pub enum NodeKind {
    Play {
        play: Vec<PlayItem>,
        interrupt: bool,
        next: Target,
    },
    Menu {
        play: Vec<PlayItem>,
        keys: Vec<(char, Target)>,
        timeout: Duration,
        retries: u32,
        invalid: Vec<PlayItem>,
        no_input: Vec<PlayItem>,
        fail: Target,
    },
    Collect {
        play: Vec<PlayItem>,
        var: String,
        min: usize,
        max: usize,
        terminator: Option<char>,
        timeout: Duration,
        digit_timeout: Duration,
        readback: bool,
        confirm: Vec<PlayItem>,
        retries: u32,
        next: Target,
        fail: Target,
    },
    Set {
        vars: Vec<(String, Template)>,
        tags: Vec<(String, Template)>,
        next: Target,
    },
    Branch {
        cases: Vec<Case>,
        default: Target,
    },
    Schedule {
        schedule: Schedule,
        open: Target,
        closed: Target,
    },
    Queue {
        play: Vec<PlayItem>,
        queue: String,
        priority: i32,
    },
    Transfer {
        play: Vec<PlayItem>,
        number: Template,
        caller_id: Option<Template>,
        fail: Target,
    },
    Voicemail {
        play: Vec<PlayItem>,
        mailbox: Template,
        max: Duration,
        next: Target,
    },
    Record {
        play: Vec<PlayItem>,
        name: String,
        end_keys: String,
        max: Duration,
        next: Target,
    },
    Goto {
        next: Target,
    },
    Call {
        flow: String,
        next: Target,
    },
    Return,
    WebService {
        service: String,
        tags: Vec<(String, Template)>,
        next: Target,
        fail: Target,
    },
    Hangup {
        play: Vec<PlayItem>,
        cause: String,
    },
    Survey {
        play: Vec<PlayItem>,
        scale: SurveyScale,
        queue: Option<String>,
        thanks: Vec<PlayItem>,
        retries: u32,
        timeout: Duration,
        unhappy: Target,
        next: Target,
    },
    Auth {
        play: Vec<PlayItem>,
        password: Vec<PlayItem>,
        service: String,
        result: String,
        min: usize,
        max: usize,
        readback: bool,
        tag: String,
        retries: u32,
        timeout: Duration,
        next: Target,
        fail: Target,
    },
    Filter {
        blocked: Target,
        vip_priority: i32,
        next: Target,
    },
    Area {
        table: Vec<(String, String)>,
        tag: String,
        routes: Vec<(String, Target)>,
        next: Target,
    },
    Greet {
        table: HashMap<String, (String, String)>,
        service: Option<String>,
        text: Template,
        lang: Lang,
        next: Target,
    },
    SmartRoute {
        agent: Template,
        fail: Target,
    },
    Query {
        play: Vec<PlayItem>,
        service: String,
        value: Template,
        say: QuerySay,
        lang: Lang,
        next: Target,
        fail: Target,
    },
}

impl NodeKind {
    /// Whether the node waits for the caller (or hands the call on), which makes a loop
    /// through it harmless.
    fn waits(&self) -> bool {
        matches!(
            self,
            NodeKind::Menu { .. }
                | NodeKind::Collect { .. }
                | NodeKind::Queue { .. }
                | NodeKind::Transfer { .. }
                | NodeKind::Voicemail { .. }
                | NodeKind::Record { .. }
                | NodeKind::Hangup { .. }
                | NodeKind::Survey { .. }
                | NodeKind::Auth { .. }
                | NodeKind::SmartRoute { .. }
                | NodeKind::Return
        )
    }

    /// The nodes this one can go to.
    pub fn targets(&self) -> Vec<usize> {
        let mut t: Vec<Target> = Vec::new();
        match self {
            NodeKind::Play { next, .. }
            | NodeKind::Set { next, .. }
            | NodeKind::Goto { next }
            | NodeKind::Call { next, .. }
            | NodeKind::Voicemail { next, .. }
            | NodeKind::Record { next, .. } => t.push(*next),
            NodeKind::Menu { keys, fail, .. } => {
                t.extend(keys.iter().map(|k| k.1));
                t.push(*fail);
            }
            NodeKind::Collect { next, fail, .. }
            | NodeKind::WebService { next, fail, .. }
            | NodeKind::Auth { next, fail, .. }
            | NodeKind::Query { next, fail, .. } => t.extend([*next, *fail]),
            NodeKind::Branch { cases, default } => {
                t.extend(cases.iter().map(|c| c.next));
                t.push(*default);
            }
            NodeKind::Schedule { open, closed, .. } => t.extend([*open, *closed]),
            NodeKind::Transfer { fail, .. } | NodeKind::SmartRoute { fail, .. } => t.push(*fail),
            NodeKind::Survey { unhappy, next, .. } => t.extend([*unhappy, *next]),
            NodeKind::Filter { blocked, next, .. } => t.extend([*blocked, *next]),
            NodeKind::Area { routes, next, .. } => {
                t.extend(routes.iter().map(|r| r.1));
                t.push(*next);
            }
            NodeKind::Greet { next, .. } => t.push(*next),
            NodeKind::Queue { .. } | NodeKind::Return | NodeKind::Hangup { .. } => {}
        }
        t.into_iter().flatten().collect()
    }
}

/// A node with its name and where it is written.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub name: String,
    pub line: usize,
    pub kind: NodeKind,
}

/// Which calls a flow takes when a route lets flows choose.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Select {
    /// Called numbers (exact); empty takes any.
    pub called: Vec<String>,
    /// Calling-number patterns: digits, `?` for any one digit, a final `*` for any rest.
    pub caller: Vec<String>,
    pub schedule: Option<Schedule>,
    /// Among the flows that match, the highest priority wins.
    pub priority: i32,
}

/// Whether `number` matches a caller pattern.
pub fn pattern_matches(pattern: &str, number: &str) -> bool {
    let (body, open) = match pattern.strip_suffix('*') {
        Some(b) => (b, true),
        None => (pattern, false),
    };
    if open {
        if number.chars().count() < body.chars().count() {
            return false;
        }
    } else if number.chars().count() != body.chars().count() {
        return false;
    }
    body.chars().zip(number.chars()).all(|(p, c)| p == '?' || p == c)
}

/// A compiled flow.
#[derive(Clone, Debug, PartialEq)]
pub struct Flow {
    pub name: String,
    pub file: PathBuf,
    pub description: String,
    pub lang: Lang,
    pub start: usize,
    pub nodes: Vec<Node>,
    pub select: Select,
}

/// What compiling a flow checks its references against.
#[derive(Clone, Debug, Default)]
pub struct Context {
    /// Where relative prompt file names are looked up.
    pub prompt_dir: PathBuf,
    /// Whether prompt files must exist (true for `check` and the daemon).
    pub check_files: bool,
    pub services: Vec<String>,
    pub queues: Vec<String>,
    /// The language of flows that do not name one.
    pub lang: Lang,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFlow {
    #[serde(default)]
    description: String,
    #[serde(default)]
    lang: Option<Spanned<String>>,
    start: Spanned<String>,
    #[serde(default)]
    select: Option<Spanned<RawSelect>>,
    node: BTreeMap<String, Spanned<RawNode>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSelect {
    #[serde(default)]
    called: Vec<String>,
    #[serde(default)]
    caller: Vec<String>,
    #[serde(default)]
    hours: Vec<String>,
    #[serde(default)]
    holidays: Vec<String>,
    #[serde(default)]
    workdays: Vec<String>,
    #[serde(default)]
    priority: i32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    var: String,
    op: String,
    #[serde(default)]
    value: String,
    next: String,
}

/// Declares the flat node table: every key any node type may have. Which keys a type
/// accepts is checked after parsing, so that a misplaced key gets an error naming the type.
macro_rules! raw_node {
    ($($field:ident : $ty:ty),* $(,)?) => {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct RawNode {
            #[serde(rename = "type")]
            kind: Spanned<String>,
            $(#[serde(default)] $field: Option<Spanned<$ty>>,)*
        }

        impl RawNode {
            /// The keys present, with where their values are.
            fn present(&self) -> Vec<(&'static str, Range<usize>)> {
                let mut v = Vec::new();
                $(if let Some(x) = &self.$field { v.push((stringify!($field), x.span())); })*
                v
            }
        }
    };
}

raw_node! {
    next: String,
    fail: String,
    play: Vec<String>,
    lang: String,
    interrupt: bool,
    keys: BTreeMap<String, Spanned<String>>,
    timeout_s: f64,
    digit_timeout_s: f64,
    retries: u32,
    invalid: Vec<String>,
    no_input: Vec<String>,
    var: String,
    min: u32,
    max: u32,
    terminator: String,
    readback: bool,
    confirm: Vec<String>,
    vars: BTreeMap<String, String>,
    tags: BTreeMap<String, String>,
    cases: Vec<RawCase>,
    default: String,
    hours: Vec<String>,
    holidays: Vec<String>,
    workdays: Vec<String>,
    open: String,
    closed: String,
    queue: String,
    priority: i32,
    number: String,
    caller_id: String,
    mailbox: String,
    max_s: u32,
    name: String,
    end_keys: String,
    flow: String,
    service: String,
    cause: String,
    scale: u32,
    grades: BTreeMap<String, String>,
    unhappy_below: u32,
    unhappy_grades: Vec<String>,
    unhappy: String,
    thanks: Vec<String>,
    password: Vec<String>,
    result: String,
    tag: String,
    blocked: String,
    vip_priority: i32,
    table: String,
    routes: BTreeMap<String, Spanned<String>>,
    text: String,
    agent: String,
    say: String,
    value: String,
}

/// The keys each node type takes: (type, required, optional).
const NODE_TYPES: &[(&str, &[&str], &[&str])] = &[
    ("play", &["play"], &["next", "interrupt", "lang"]),
    ("menu", &["play", "keys"], &["timeout_s", "retries", "invalid", "no_input", "fail", "lang"]),
    (
        "collect",
        &["play", "var", "next"],
        &[
            "min",
            "max",
            "terminator",
            "timeout_s",
            "digit_timeout_s",
            "readback",
            "confirm",
            "retries",
            "fail",
            "lang",
        ],
    ),
    ("set", &["next"], &["vars", "tags"]),
    ("branch", &["cases", "default"], &[]),
    ("schedule", &["open", "closed"], &["hours", "holidays", "workdays"]),
    ("queue", &["queue"], &["priority", "play", "lang"]),
    ("transfer", &["number"], &["caller_id", "fail", "play", "lang"]),
    ("voicemail", &["mailbox"], &["play", "max_s", "next", "lang"]),
    ("record", &["name", "next"], &["play", "end_keys", "max_s", "lang"]),
    ("goto", &["next"], &[]),
    ("call", &["flow", "next"], &[]),
    ("return", &[], &[]),
    ("webservice", &["service", "next", "fail"], &["tags"]),
    ("hangup", &[], &["play", "cause", "lang"]),
    (
        "survey",
        &["play"],
        &[
            "scale",
            "grades",
            "unhappy_below",
            "unhappy_grades",
            "unhappy",
            "thanks",
            "retries",
            "timeout_s",
            "next",
            "queue",
            "lang",
        ],
    ),
    (
        "auth",
        &["play", "service", "next", "fail"],
        &["password", "result", "min", "max", "readback", "tag", "retries", "timeout_s", "lang"],
    ),
    ("filter", &["next"], &["blocked", "vip_priority"]),
    ("area", &["table", "next"], &["tag", "routes"]),
    ("greet", &["text", "next"], &["table", "service", "lang"]),
    ("smartroute", &["agent", "fail"], &[]),
    ("query", &["service", "value", "say", "next", "fail"], &["play", "lang"]),
];

/// Compiles one flow file's text. `file` names it in errors and gives the flow its name.
pub fn compile(text: &str, file: &Path, ctx: &Context) -> Result<Flow, Vec<ConfigError>> {
    let fname = file.display().to_string();
    let at = |span: Option<Range<usize>>, key: &str, message: String| {
        let (line, column) = span.map(|s| line_col(text, s.start)).unwrap_or((0, 0));
        ConfigError { file: fname.clone(), line, column, key: key.to_string(), message }
    };
    let de = toml::Deserializer::parse(text).map_err(|e| vec![at(e.span(), "", e.message().to_string())])?;
    let raw: RawFlow = serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        let inner = e.into_inner();
        let key = if key == "." { String::new() } else { key };
        vec![at(inner.span(), &key, inner.message().to_string())]
    })?;
    let name = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let mut c = Compiler { at: &at, errors: Vec::new(), ctx, names: HashMap::new(), file };
    let lang = match &raw.lang {
        Some(l) => c.lang(l, "lang"),
        None => ctx.lang,
    };
    for (i, n) in raw.node.keys().enumerate() {
        c.names.insert(n.clone(), i);
    }
    let start = c.target_str(&raw.start, "start").flatten();
    let select = match &raw.select {
        Some(s) => {
            let sel = s.get_ref();
            for p in &sel.caller {
                let body = p.strip_suffix('*').unwrap_or(p);
                if body.is_empty() && p != "*" || !body.chars().all(|ch| ch.is_ascii_digit() || ch == '?') {
                    c.err(
                        Some(s.span()),
                        "select.caller",
                        format!("`{p}` is not a number pattern (digits, `?`, a final `*`)"),
                    );
                }
            }
            let schedule = if sel.hours.is_empty() && sel.holidays.is_empty() && sel.workdays.is_empty() {
                None
            } else {
                match Schedule::parse(&sel.hours, &sel.holidays, &sel.workdays) {
                    Ok(s) => Some(s),
                    Err(e) => {
                        c.err(Some(s.span()), "select", e);
                        None
                    }
                }
            };
            Select {
                called: sel.called.clone(),
                caller: sel.caller.clone(),
                schedule,
                priority: sel.priority,
            }
        }
        None => Select::default(),
    };
    let mut nodes = Vec::new();
    for (node_name, raw_node) in &raw.node {
        let line = line_col(text, raw_node.span().start).0;
        let kind = c.node(node_name, raw_node, lang);
        nodes.push(Node { name: node_name.clone(), line, kind });
    }
    let flow = Flow {
        name,
        file: file.to_path_buf(),
        description: raw.description.clone(),
        lang,
        start: start.unwrap_or(0),
        nodes,
        select,
    };
    if start.is_some() {
        graph_checks(&flow, &mut c, &raw);
    }
    if c.errors.is_empty() {
        Ok(flow)
    } else {
        Err(c.errors)
    }
}

/// Unreachable nodes and loops that never wait for the caller.
fn graph_checks(flow: &Flow, c: &mut Compiler<'_>, raw: &RawFlow) {
    let span_of = |name: &str| raw.node.get(name).map(|n| n.span());
    let mut seen = vec![false; flow.nodes.len()];
    let mut stack = vec![flow.start];
    while let Some(n) = stack.pop() {
        if std::mem::replace(&mut seen[n], true) {
            continue;
        }
        stack.extend(flow.nodes[n].kind.targets());
    }
    for (i, node) in flow.nodes.iter().enumerate() {
        if !seen[i] {
            c.err(
                span_of(&node.name),
                &format!("node.{}", node.name),
                "no node leads here (unreachable)".into(),
            );
        }
    }
    // A cycle among nodes that do not wait would spin forever: look for one with a
    // depth-first search restricted to such nodes.
    let n = flow.nodes.len();
    let mut state = vec![0u8; n]; // 0 new, 1 on the stack, 2 done
    for root in 0..n {
        if state[root] != 0 || flow.nodes[root].kind.waits() {
            continue;
        }
        let mut path: Vec<(usize, Vec<usize>)> = vec![(root, flow.nodes[root].kind.targets())];
        state[root] = 1;
        while let Some((node, next)) = path.last_mut() {
            let node = *node;
            match next.pop() {
                Some(t) if flow.nodes[t].kind.waits() => {}
                Some(t) if state[t] == 1 => {
                    let start = path.iter().position(|(p, _)| *p == t).unwrap_or(0);
                    let names: Vec<&str> =
                        path[start..].iter().map(|(p, _)| flow.nodes[*p].name.as_str()).collect();
                    c.err(
                        span_of(&flow.nodes[t].name),
                        &format!("node.{}", flow.nodes[t].name),
                        format!(
                            "the loop {} -> {} never waits for the caller",
                            names.join(" -> "),
                            flow.nodes[t].name
                        ),
                    );
                    return;
                }
                Some(t) if state[t] == 0 => {
                    state[t] = 1;
                    path.push((t, flow.nodes[t].kind.targets()));
                }
                Some(_) => {}
                None => {
                    state[node] = 2;
                    path.pop();
                }
            }
        }
    }
}

struct Compiler<'a> {
    at: &'a dyn Fn(Option<Range<usize>>, &str, String) -> ConfigError,
    errors: Vec<ConfigError>,
    ctx: &'a Context,
    names: HashMap<String, usize>,
    file: &'a Path,
}

impl Compiler<'_> {
    fn err(&mut self, span: Option<Range<usize>>, key: &str, message: String) {
        self.errors.push((self.at)(span, key, message));
    }

    fn lang(&mut self, l: &Spanned<String>, key: &str) -> Lang {
        Lang::parse(l.get_ref()).unwrap_or_else(|| {
            self.err(
                Some(l.span()),
                key,
                format!("unknown language `{}`: use \"en\" or \"zh\"", l.get_ref()),
            );
            Lang::En
        })
    }

    /// Resolves a node name; `Some(None)` is the built-in `hangup`.
    fn target_str(&mut self, s: &Spanned<String>, key: &str) -> Option<Target> {
        if s.get_ref() == "hangup" && !self.names.contains_key("hangup") {
            return Some(None);
        }
        match self.names.get(s.get_ref()) {
            Some(&i) => Some(Some(i)),
            None => {
                let mut known: Vec<&str> = self.names.keys().map(String::as_str).collect();
                known.sort_unstable();
                self.err(
                    Some(s.span()),
                    key,
                    format!("no node named `{}` (this flow has: {})", s.get_ref(), known.join(", ")),
                );
                None
            }
        }
    }

    fn template(&mut self, s: &Spanned<String>, key: &str) -> Template {
        self.template_at(s.get_ref(), Some(s.span()), key)
    }

    fn template_at(&mut self, s: &str, span: Option<Range<usize>>, key: &str) -> Template {
        Template::parse(s).unwrap_or_else(|e| {
            self.err(span, key, e.to_string());
            Template::default()
        })
    }

    fn play(&mut self, items: Option<&Spanned<Vec<String>>>, lang: Lang, key: &str) -> Vec<PlayItem> {
        let Some(items) = items else {
            return Vec::new();
        };
        let span = Some(items.span());
        let mut out = Vec::new();
        for item in items.get_ref() {
            let parsed = if let Some(text) = item.strip_prefix("tts:") {
                PlayItem::Tts(self.template_at(text, span.clone(), key), lang)
            } else if let Some((kind, value)) =
                item.split_once(':').and_then(|(k, v)| Some((SayKind::parse(k)?, v)))
            {
                PlayItem::Say(kind, self.template_at(value, span.clone(), key), lang)
            } else {
                let path = Path::new(item);
                let path =
                    if path.is_absolute() { path.to_path_buf() } else { self.ctx.prompt_dir.join(path) };
                if self.ctx.check_files && !path.is_file() {
                    self.err(span.clone(), key, format!("prompt file {} does not exist", path.display()));
                }
                PlayItem::File(path)
            };
            out.push(parsed);
        }
        out
    }

    fn seconds(&mut self, v: Option<&Spanned<f64>>, default: f64, key: &str) -> Duration {
        let s = v.map(|v| *v.get_ref()).unwrap_or(default);
        if !(0.5..=600.0).contains(&s) {
            self.err(v.map(|v| v.span()), key, format!("{s} is out of range: use 0.5-600 seconds"));
            return Duration::from_secs_f64(default);
        }
        Duration::from_secs_f64(s)
    }

    fn key_char(&mut self, s: &str, span: Option<Range<usize>>, key: &str) -> Option<char> {
        let mut chars = s.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) if c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D') => Some(c),
            _ => {
                self.err(span, key, format!("`{s}` is not a key: use one of 0-9, *, #, A-D"));
                None
            }
        }
    }

    fn node(&mut self, name: &str, raw: &Spanned<RawNode>, flow_lang: Lang) -> NodeKind {
        let span = raw.span();
        let r = raw.get_ref();
        let k = |field: &str| format!("node.{name}.{field}");
        let ty = r.kind.get_ref().as_str();
        let Some(&(_, required, optional)) = NODE_TYPES.iter().find(|t| t.0 == ty) else {
            let names: Vec<&str> = NODE_TYPES.iter().map(|t| t.0).collect();
            self.err(
                Some(r.kind.span()),
                &k("type"),
                format!("unknown node type `{ty}` (known: {})", names.join(", ")),
            );
            return NodeKind::Return;
        };
        let present = r.present();
        for (field, fspan) in &present {
            if !required.contains(field) && !optional.contains(field) {
                self.err(Some(fspan.clone()), &k(field), format!("a `{ty}` node has no `{field}` setting"));
            }
        }
        for field in required {
            if !present.iter().any(|(f, _)| f == field) {
                self.err(Some(span.clone()), &k(field), format!("a `{ty}` node needs `{field}`"));
            }
        }
        let lang = match &r.lang {
            Some(l) => self.lang(l, &k("lang")),
            None => flow_lang,
        };
        macro_rules! target {
            ($f:ident) => {
                match &r.$f {
                    Some(s) => self.target_str(s, &k(stringify!($f))).flatten(),
                    None => None,
                }
            };
        }
        macro_rules! play {
            ($f:ident) => {
                self.play(r.$f.as_ref(), lang, &k(stringify!($f)))
            };
        }
        let string =
            |f: &Option<Spanned<String>>| f.as_ref().map(|s| s.get_ref().clone()).unwrap_or_default();
        let retries = r.retries.as_ref().map(|v| *v.get_ref()).unwrap_or(2).min(10);
        match ty {
            "play" => NodeKind::Play {
                play: play!(play),
                interrupt: r.interrupt.as_ref().map(|v| *v.get_ref()).unwrap_or(true),
                next: target!(next),
            },
            "menu" => {
                let mut keys = Vec::new();
                if let Some(map) = &r.keys {
                    for (key, to) in map.get_ref() {
                        let Some(ch) = self.key_char(key, Some(map.span()), &k("keys")) else {
                            continue;
                        };
                        let target = self.target_str(to, &format!("node.{name}.keys.{key}")).flatten();
                        keys.push((ch, target));
                    }
                }
                NodeKind::Menu {
                    play: play!(play),
                    keys,
                    timeout: self.seconds(r.timeout_s.as_ref(), 5.0, &k("timeout_s")),
                    retries,
                    invalid: play!(invalid),
                    no_input: play!(no_input),
                    fail: target!(fail),
                }
            }
            "collect" => {
                let min = r.min.as_ref().map(|v| *v.get_ref()).unwrap_or(1) as usize;
                let max = r.max.as_ref().map(|v| *v.get_ref()).unwrap_or(20) as usize;
                if min == 0 || max < min || max > 64 {
                    self.err(
                        Some(span.clone()),
                        &k("max"),
                        format!("min {min} and max {max}: need 1 <= min <= max <= 64"),
                    );
                }
                let terminator = match &r.terminator {
                    Some(t) if t.get_ref().is_empty() => None,
                    Some(t) => self.key_char(t.get_ref(), Some(t.span()), &k("terminator")),
                    None => Some('#'),
                };
                NodeKind::Collect {
                    play: play!(play),
                    var: string(&r.var),
                    min,
                    max,
                    terminator,
                    timeout: self.seconds(r.timeout_s.as_ref(), 8.0, &k("timeout_s")),
                    digit_timeout: self.seconds(r.digit_timeout_s.as_ref(), 4.0, &k("digit_timeout_s")),
                    readback: r.readback.as_ref().map(|v| *v.get_ref()).unwrap_or(false),
                    confirm: play!(confirm),
                    retries,
                    next: target!(next),
                    fail: target!(fail),
                }
            }
            "set" => {
                let mut pairs =
                    |m: &Option<Spanned<BTreeMap<String, String>>>, key: &str| -> Vec<(String, Template)> {
                        m.as_ref()
                            .map(|m| {
                                m.get_ref()
                                    .iter()
                                    .map(|(n, v)| (n.clone(), self.template_at(v, Some(m.span()), &k(key))))
                                    .collect()
                            })
                            .unwrap_or_default()
                    };
                let vars = pairs(&r.vars, "vars");
                let tags = pairs(&r.tags, "tags");
                for (tag, _) in &tags {
                    if tag.is_empty() || tag.contains(['|', ':']) {
                        self.err(
                            Some(span.clone()),
                            &k("tags"),
                            format!("tag name `{tag}` may not be empty or hold `|` or `:`"),
                        );
                    }
                }
                NodeKind::Set { vars, tags, next: target!(next) }
            }
            "branch" => {
                let mut cases = Vec::new();
                if let Some(list) = &r.cases {
                    for (i, case) in list.get_ref().iter().enumerate() {
                        let key = format!("node.{name}.cases[{i}]");
                        let Some(op) = Op::parse(&case.op) else {
                            self.err(
                                Some(list.span()),
                                &key,
                                format!("unknown op `{}` (use ==, !=, <, <=, >, >=, starts-with, empty, not-empty)", case.op),
                            );
                            continue;
                        };
                        let next =
                            self.target_str(&Spanned::new(list.span(), case.next.clone()), &key).flatten();
                        let value = self.template_at(&case.value, Some(list.span()), &key);
                        cases.push(Case { var: case.var.clone(), op, value, next });
                    }
                }
                NodeKind::Branch { cases, default: target!(default) }
            }
            "schedule" => {
                let list = |f: &Option<Spanned<Vec<String>>>| {
                    f.as_ref().map(|v| v.get_ref().clone()).unwrap_or_default()
                };
                let schedule = Schedule::parse(&list(&r.hours), &list(&r.holidays), &list(&r.workdays))
                    .unwrap_or_else(|e| {
                        self.err(Some(span.clone()), &k("hours"), e);
                        Schedule::default()
                    });
                NodeKind::Schedule { schedule, open: target!(open), closed: target!(closed) }
            }
            "queue" => {
                let queue = string(&r.queue);
                if let Some(q) = &r.queue {
                    if !self.ctx.queues.iter().any(|n| n == q.get_ref()) {
                        self.err(
                            Some(q.span()),
                            &k("queue"),
                            format!(
                                "no queue named `{}` in the configuration (known: {})",
                                q.get_ref(),
                                self.ctx.queues.join(", ")
                            ),
                        );
                    }
                }
                NodeKind::Queue {
                    play: play!(play),
                    queue,
                    priority: r.priority.as_ref().map(|v| *v.get_ref()).unwrap_or(0),
                }
            }
            "transfer" => NodeKind::Transfer {
                play: play!(play),
                number: r.number.as_ref().map(|n| self.template(n, &k("number"))).unwrap_or_default(),
                caller_id: r.caller_id.as_ref().map(|n| self.template(n, &k("caller_id"))),
                fail: target!(fail),
            },
            "voicemail" => NodeKind::Voicemail {
                play: play!(play),
                mailbox: r.mailbox.as_ref().map(|n| self.template(n, &k("mailbox"))).unwrap_or_default(),
                max: Duration::from_secs(u64::from(
                    r.max_s.as_ref().map(|v| *v.get_ref()).unwrap_or(120).clamp(1, 3600),
                )),
                next: target!(next),
            },
            "record" => {
                let end_keys = r.end_keys.as_ref().map(|v| v.get_ref().clone()).unwrap_or_else(|| "#".into());
                for ch in end_keys.chars() {
                    self.key_char(&ch.to_string(), r.end_keys.as_ref().map(|v| v.span()), &k("end_keys"));
                }
                NodeKind::Record {
                    play: play!(play),
                    name: string(&r.name),
                    end_keys,
                    max: Duration::from_secs(u64::from(
                        r.max_s.as_ref().map(|v| *v.get_ref()).unwrap_or(60).clamp(1, 3600),
                    )),
                    next: target!(next),
                }
            }
            "goto" => NodeKind::Goto { next: target!(next) },
            "call" => NodeKind::Call { flow: string(&r.flow), next: target!(next) },
            "return" => NodeKind::Return,
            "webservice" => {
                let service = self.service(&r.service, &k("service"));
                let tags = r
                    .tags
                    .as_ref()
                    .map(|m| {
                        m.get_ref()
                            .iter()
                            .map(|(n, v)| (n.clone(), self.template_at(v, Some(m.span()), &k("tags"))))
                            .collect()
                    })
                    .unwrap_or_default();
                NodeKind::WebService { service, tags, next: target!(next), fail: target!(fail) }
            }
            "hangup" => NodeKind::Hangup {
                play: play!(play),
                cause: r.cause.as_ref().map(|c| c.get_ref().clone()).unwrap_or_else(|| "flow hung up".into()),
            },
            "survey" => {
                let scale = match (&r.scale, &r.grades) {
                    (Some(_), Some(g)) => {
                        self.err(
                            Some(g.span()),
                            &k("grades"),
                            "a survey has either `scale` or `grades`, not both".into(),
                        );
                        SurveyScale::Score { max: 5, unhappy_below: 0 }
                    }
                    (_, Some(g)) => {
                        let mut keys = Vec::new();
                        for (key, grade) in g.get_ref() {
                            if let Some(ch) = self.key_char(key, Some(g.span()), &k("grades")) {
                                keys.push((ch, grade.clone()));
                            }
                        }
                        let unhappy =
                            r.unhappy_grades.as_ref().map(|u| u.get_ref().clone()).unwrap_or_default();
                        for u in &unhappy {
                            if !keys.iter().any(|(_, g)| g == u) {
                                self.err(
                                    r.unhappy_grades.as_ref().map(|v| v.span()),
                                    &k("unhappy_grades"),
                                    format!("`{u}` is not one of the grades"),
                                );
                            }
                        }
                        SurveyScale::Grades { keys, unhappy }
                    }
                    (s, None) => {
                        let max = s.as_ref().map(|v| *v.get_ref()).unwrap_or(5);
                        if !(2..=5).contains(&max) {
                            self.err(
                                s.as_ref().map(|v| v.span()),
                                &k("scale"),
                                format!(
                                    "{max} is out of range: use 2-5 (the reports average scores of 1 to 5)"
                                ),
                            );
                        }
                        let below = r.unhappy_below.as_ref().map(|v| *v.get_ref()).unwrap_or(0);
                        SurveyScale::Score { max: max.clamp(2, 5) as u8, unhappy_below: below.min(5) as u8 }
                    }
                };
                NodeKind::Survey {
                    play: play!(play),
                    scale,
                    queue: r.queue.as_ref().map(|q| q.get_ref().clone()),
                    thanks: play!(thanks),
                    retries,
                    timeout: self.seconds(r.timeout_s.as_ref(), 8.0, &k("timeout_s")),
                    unhappy: target!(unhappy),
                    next: target!(next),
                }
            }
            "auth" => {
                let min = r.min.as_ref().map(|v| *v.get_ref()).unwrap_or(4) as usize;
                let max = r.max.as_ref().map(|v| *v.get_ref()).unwrap_or(20) as usize;
                if min == 0 || max < min || max > 64 {
                    self.err(
                        Some(span.clone()),
                        &k("max"),
                        format!("min {min} and max {max}: need 1 <= min <= max <= 64"),
                    );
                }
                NodeKind::Auth {
                    play: play!(play),
                    password: play!(password),
                    service: self.service(&r.service, &k("service")),
                    result: r.result.as_ref().map(|v| v.get_ref().clone()).unwrap_or_else(|| "valid".into()),
                    min,
                    max,
                    readback: r.readback.as_ref().map(|v| *v.get_ref()).unwrap_or(false),
                    tag: r.tag.as_ref().map(|v| v.get_ref().clone()).unwrap_or_else(|| "MemberID".into()),
                    retries,
                    timeout: self.seconds(r.timeout_s.as_ref(), 8.0, &k("timeout_s")),
                    next: target!(next),
                    fail: target!(fail),
                }
            }
            "filter" => NodeKind::Filter {
                blocked: target!(blocked),
                vip_priority: r.vip_priority.as_ref().map(|v| *v.get_ref()).unwrap_or(10),
                next: target!(next),
            },
            "area" => {
                let table = match &r.table {
                    Some(t) => self.area_table(t, &k("table")),
                    None => Vec::new(),
                };
                let mut routes = Vec::new();
                if let Some(map) = &r.routes {
                    for (region, to) in map.get_ref() {
                        routes.push((
                            region.clone(),
                            self.target_str(to, &format!("node.{name}.routes.{region}")).flatten(),
                        ));
                    }
                }
                NodeKind::Area {
                    table,
                    tag: r.tag.as_ref().map(|v| v.get_ref().clone()).unwrap_or_else(|| "AREA".into()),
                    routes,
                    next: target!(next),
                }
            }
            "greet" => {
                let table = match &r.table {
                    Some(t) => self.name_table(t, &k("table")),
                    None => HashMap::new(),
                };
                let service = r.service.as_ref().map(|_| self.service(&r.service, &k("service")));
                NodeKind::Greet {
                    table,
                    service,
                    text: r.text.as_ref().map(|t| self.template(t, &k("text"))).unwrap_or_default(),
                    lang,
                    next: target!(next),
                }
            }
            "smartroute" => NodeKind::SmartRoute {
                agent: r.agent.as_ref().map(|t| self.template(t, &k("agent"))).unwrap_or_default(),
                fail: target!(fail),
            },
            "query" => {
                let say = match r.say.as_ref().map(|s| s.get_ref().as_str()) {
                    Some("text") | None => QuerySay::Text,
                    Some(s) => match SayKind::parse(s) {
                        Some(kind) => QuerySay::Value(kind),
                        None => {
                            self.err(
                                r.say.as_ref().map(|s| s.span()),
                                &k("say"),
                                format!("`{s}`: use text, number, digits, amount or date"),
                            );
                            QuerySay::Text
                        }
                    },
                };
                NodeKind::Query {
                    play: play!(play),
                    service: self.service(&r.service, &k("service")),
                    value: r.value.as_ref().map(|t| self.template(t, &k("value"))).unwrap_or_default(),
                    say,
                    lang,
                    next: target!(next),
                    fail: target!(fail),
                }
            }
            _ => NodeKind::Return,
        }
    }

    fn service(&mut self, s: &Option<Spanned<String>>, key: &str) -> String {
        let Some(s) = s else {
            return String::new();
        };
        if !self.ctx.services.iter().any(|n| n == s.get_ref()) {
            self.err(
                Some(s.span()),
                key,
                format!(
                    "no web service named `{}` in the configuration (known: {})",
                    s.get_ref(),
                    if self.ctx.services.is_empty() { "none".into() } else { self.ctx.services.join(", ") }
                ),
            );
        }
        s.get_ref().clone()
    }

    fn relative(&self, name: &str) -> PathBuf {
        let p = Path::new(name);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.file.parent().unwrap_or(Path::new(".")).join(p)
        }
    }

    /// Reads a number-prefix table: `prefix,region` per line, `#` comments.
    fn area_table(&mut self, t: &Spanned<String>, key: &str) -> Vec<(String, String)> {
        let path = self.relative(t.get_ref());
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) => {
                self.err(
                    Some(t.span()),
                    key,
                    format!("cannot read the prefix table {}: {e}", path.display()),
                );
                return Vec::new();
            }
        };
        let mut rows = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            match line.split_once(',') {
                Some((prefix, region))
                    if !prefix.trim().is_empty()
                        && prefix.trim().chars().all(|c| c.is_ascii_digit())
                        && !region.trim().is_empty() =>
                {
                    rows.push((prefix.trim().to_string(), region.trim().to_string()))
                }
                _ => self.err(
                    Some(t.span()),
                    key,
                    format!(
                        "{}:{}: expected `prefix,region` with a numeric prefix, found `{line}`",
                        path.display(),
                        i + 1
                    ),
                ),
            }
        }
        // Longest prefix first, so the first match is the best one.
        rows.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        rows
    }

    /// Reads a customer name table: `number,name,title` per line, `#` comments.
    fn name_table(&mut self, t: &Spanned<String>, key: &str) -> HashMap<String, (String, String)> {
        let path = self.relative(t.get_ref());
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) => {
                self.err(Some(t.span()), key, format!("cannot read the name table {}: {e}", path.display()));
                return HashMap::new();
            }
        };
        let mut rows = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let mut f = line.splitn(3, ',').map(str::trim);
            match (f.next(), f.next(), f.next()) {
                (Some(number), Some(name), title) if !number.is_empty() && !name.is_empty() => {
                    rows.insert(number.to_string(), (name.to_string(), title.unwrap_or("").to_string()));
                }
                _ => self.err(
                    Some(t.span()),
                    key,
                    format!("{}:{}: expected `number,name,title`, found `{line}`", path.display(), i + 1),
                ),
            }
        }
        rows
    }
}

/// Every flow of a directory, compiled together so that sub-flow calls are checked.
#[derive(Debug, Default)]
pub struct FlowSet {
    pub flows: Vec<Flow>,
}

impl FlowSet {
    /// Compiles every `*.toml` file in `dir` (sorted by name).
    pub fn load_dir(dir: &Path, ctx: &Context) -> Result<FlowSet, Vec<ConfigError>> {
        let entries = std::fs::read_dir(dir).map_err(|e| {
            vec![ConfigError {
                file: dir.display().to_string(),
                line: 0,
                column: 0,
                key: String::new(),
                message: format!("cannot read the flow directory: {e}"),
            }]
        })?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        let mut texts = Vec::new();
        let mut errors = Vec::new();
        for f in files {
            match std::fs::read_to_string(&f) {
                Ok(t) => texts.push((f, t)),
                Err(e) => errors.push(ConfigError {
                    file: f.display().to_string(),
                    line: 0,
                    column: 0,
                    key: String::new(),
                    message: format!("cannot read the flow: {e}"),
                }),
            }
        }
        let set = FlowSet::compile(texts.iter().map(|(f, t)| (f.as_path(), t.as_str())), ctx);
        match set {
            Ok(set) if errors.is_empty() => Ok(set),
            Ok(_) => Err(errors),
            Err(mut e) => {
                errors.append(&mut e);
                Err(errors)
            }
        }
    }

    /// Compiles flows given as (file, text).
    pub fn compile<'a>(
        files: impl Iterator<Item = (&'a Path, &'a str)>,
        ctx: &Context,
    ) -> Result<FlowSet, Vec<ConfigError>> {
        let mut flows = Vec::new();
        let mut errors = Vec::new();
        for (file, text) in files {
            match compile(text, file, ctx) {
                Ok(f) => flows.push(f),
                Err(mut e) => errors.append(&mut e),
            }
        }
        for flow in &flows {
            for node in &flow.nodes {
                if let NodeKind::Call { flow: target, .. } = &node.kind {
                    if !flows.iter().any(|f| &f.name == target) {
                        errors.push(ConfigError {
                            file: flow.file.display().to_string(),
                            line: node.line,
                            column: 1,
                            key: format!("node.{}.flow", node.name),
                            message: format!("no flow named `{target}` in the flow directory"),
                        });
                    }
                }
            }
        }
        if errors.is_empty() {
            Ok(FlowSet { flows })
        } else {
            Err(errors)
        }
    }

    pub fn get(&self, name: &str) -> Option<usize> {
        self.flows.iter().position(|f| f.name == name)
    }

    /// Picks the flow for a call: among the flows whose `[select]` matches the called and
    /// calling numbers and whose schedule is open, the highest priority, then the first by
    /// name. Flows without a `[select]` table are only entered by name.
    pub fn select(&self, called: &str, caller: &str, local: time::PrimitiveDateTime) -> Option<usize> {
        let mut best: Option<(i32, usize)> = None;
        for (i, f) in self.flows.iter().enumerate() {
            let s = &f.select;
            let has_rules =
                !s.called.is_empty() || !s.caller.is_empty() || s.schedule.is_some() || s.priority != 0;
            if !has_rules {
                continue;
            }
            if !s.called.is_empty() && !s.called.iter().any(|c| c == called) {
                continue;
            }
            if !s.caller.is_empty() && !s.caller.iter().any(|p| pattern_matches(p, caller)) {
                continue;
            }
            if s.schedule.as_ref().is_some_and(|sch| !sch.is_open(local)) {
                continue;
            }
            if best.map_or(true, |(p, _)| s.priority > p) {
                best = Some((s.priority, i));
            }
        }
        best.map(|(_, i)| i)
    }

    /// Prompt files used by every flow, for preloading.
    pub fn prompt_files(&self) -> Vec<PathBuf> {
        let mut files = Vec::new();
        for f in &self.flows {
            for n in &f.nodes {
                for_each_play(&n.kind, |item| {
                    if let PlayItem::File(p) = item {
                        if !files.contains(p) {
                            files.push(p.clone());
                        }
                    }
                });
            }
        }
        files
    }
}

/// Calls `f` on every play item of a node.
pub fn for_each_play(kind: &NodeKind, mut f: impl FnMut(&PlayItem)) {
    let lists: Vec<&Vec<PlayItem>> = match kind {
        NodeKind::Play { play, .. }
        | NodeKind::Queue { play, .. }
        | NodeKind::Transfer { play, .. }
        | NodeKind::Voicemail { play, .. }
        | NodeKind::Record { play, .. }
        | NodeKind::Hangup { play, .. }
        | NodeKind::Query { play, .. } => vec![play],
        NodeKind::Menu { play, invalid, no_input, .. } => vec![play, invalid, no_input],
        NodeKind::Collect { play, confirm, .. } => vec![play, confirm],
        NodeKind::Survey { play, thanks, .. } => vec![play, thanks],
        NodeKind::Auth { play, password, .. } => vec![play, password],
        _ => Vec::new(),
    };
    for list in lists {
        for item in list {
            f(item);
        }
    }
}
