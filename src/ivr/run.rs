//! The flow interpreter: one [`Run`] per call, with no IO and no clock.
//!
//! The driver feeds it what happened on the call (a prompt ended, a key, a web service's
//! answer, the timers at `now`) and polls [`Output`]s: what to play, which service to call,
//! where the call goes when it leaves the flow. Everything a node waits for comes back as an
//! [`Input`], so a flow runs in a test as fast as the test can feed it.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use time::PrimitiveDateTime;

use super::flow::{FlowSet, Lang, NodeKind, Op, PlayItem, QuerySay, SayKind, SurveyScale, Target};

/// Something to play, with its placeholders filled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Speak {
    File(PathBuf),
    Tts { text: String, lang: Lang },
    Say { kind: SayKind, value: String, lang: Lang },
}

/// What a recording started by a flow is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordPurpose {
    Voicemail {
        mailbox: String,
    },
    /// The caller's answer to a question, stored with the key pressed under `name`.
    Input {
        name: String,
    },
}

/// A satisfaction survey answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SurveyAnswer {
    pub score: Option<u8>,
    pub grade: Option<String>,
    pub queue: Option<String>,
}

/// What the interpreter asks the driver to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Plays the items one after the other; answer with [`Input::PlayDone`].
    Play(Vec<Speak>),
    StopPlay,
    /// Calls a web service with the call's variables; answer with [`Input::Web`].
    Web {
        service: String,
        args: BTreeMap<String, String>,
    },
    /// Looks the number up in the caller lists; answer with [`Input::Lists`].
    LookupLists {
        number: String,
    },
    RecordStart(RecordPurpose),
    RecordStop,
    /// A key pressed in a record node, stored with the recording.
    StoreInput {
        name: String,
        value: String,
    },
    Survey(SurveyAnswer),
    /// The call leaves the flow for a queue.
    Queue {
        queue: String,
        priority: i32,
    },
    /// The call leaves the flow for one agent; [`Input::AgentUnavailable`] brings it back.
    Agent {
        agent: String,
    },
    /// The call leaves the flow for an external number; [`Input::TransferFailed`] brings
    /// it back.
    Transfer {
        number: String,
        caller_id: Option<String>,
    },
    Hangup {
        cause: String,
    },
    /// The flow returned at its top level: the call goes back to where it came from (the
    /// agent who sent it to the flow).
    Return,
}

/// What happened on the call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    PlayDone,
    Digit(char),
    Web(Result<BTreeMap<String, String>, String>),
    Lists(Vec<String>),
    TransferFailed(String),
    AgentUnavailable,
}

/// How a key gathering ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Gather {
    max: usize,
    terminator: Option<char>,
    first: Duration,
    inter: Duration,
    /// Keys that end the gathering at once (a [`key_set`]); others are ignored.
    only: Option<u16>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Wait {
    Nothing,
    /// A prompt plays; then the node's `played` step runs.
    Play {
        interrupt: bool,
    },
    /// A prompt plays, then keys are gathered; a key stops the prompt.
    PlayThenGather(Gather),
    Keys(Gather),
    Web,
    Lists,
    /// The call left the flow and may come back (transfer, agent).
    Away,
    Ended,
}

/// How many nodes may run without waiting before the run is stopped as a loop.
const MAX_STEPS: u32 = 256;
/// How deep sub-flows may nest.
const MAX_DEPTH: usize = 16;
/// Keys kept for type-ahead.
const MAX_TYPEAHEAD: usize = 64;

/// One call's way through the flows.
#[derive(Debug)]
pub struct Run {
    set: Arc<FlowSet>,
    flow: usize,
    node: usize,
    stack: Vec<(usize, Target)>,
    vars: BTreeMap<String, String>,
    tags: Vec<(String, String)>,
    typeahead: VecDeque<char>,
    wait: Wait,
    deadline: Option<Instant>,
    /// Failed attempts at the current node.
    attempts: u32,
    /// The current node's step, for nodes that do several things.
    step: u8,
    keys: String,
    priority: i32,
    started: (Instant, PrimitiveDateTime),
    out: VecDeque<Output>,
    /// The node names visited, for the log and tests.
    trail: Vec<String>,
}

impl Run {
    /// Starts `flow` of `set` for a call; `local` is the local wall time at `now`.
    pub fn start(
        set: Arc<FlowSet>,
        flow: usize,
        vars: BTreeMap<String, String>,
        now: Instant,
        local: PrimitiveDateTime,
    ) -> Run {
        Run::start_with_tags(set, flow, vars, Vec::new(), now, local)
    }

    /// Starts a flow for a call that already has tags (from an earlier flow of the call),
    /// so the agent who gets the call next sees them all.
    pub fn start_with_tags(
        set: Arc<FlowSet>,
        flow: usize,
        vars: BTreeMap<String, String>,
        tags: Vec<(String, String)>,
        now: Instant,
        local: PrimitiveDateTime,
    ) -> Run {
        let start = set.flows.get(flow).map(|f| f.start).unwrap_or(0);
        let mut run = Run {
            set,
            flow,
            node: start,
            stack: Vec::new(),
            vars,
            tags,
            typeahead: VecDeque::new(),
            wait: Wait::Nothing,
            deadline: None,
            attempts: 0,
            step: 0,
            keys: String::new(),
            priority: 0,
            started: (now, local),
            out: VecDeque::new(),
            trail: Vec::new(),
        };
        let hour = local.hour();
        let daypart = match hour {
            5..=11 => "morning",
            12..=17 => "afternoon",
            _ => "evening",
        };
        run.vars.entry("daypart".into()).or_insert_with(|| daypart.into());
        if run.set.flows.get(flow).is_some_and(|f| !f.nodes.is_empty()) {
            run.enter(now, Some(start));
        } else {
            run.finish(Output::Hangup { cause: "the flow has no nodes".into() });
        }
        run
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When [`Run::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// Whether the call has left the flow for good.
    pub fn ended(&self) -> bool {
        self.wait == Wait::Ended
    }

    /// The tags set so far, in the order set.
    pub fn tags(&self) -> &[(String, String)] {
        &self.tags
    }

    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// The flow the call is in and its nodes visited.
    pub fn flow_name(&self) -> &str {
        self.set.flows.get(self.flow).map(|f| f.name.as_str()).unwrap_or("")
    }

    pub fn trail(&self) -> &[String] {
        &self.trail
    }

    /// The queue priority the flow gave the call (VIP callers get more).
    pub fn priority(&self) -> i32 {
        self.priority
    }

    fn lookup<'a>(
        vars: &'a BTreeMap<String, String>,
        tags: &'a [(String, String)],
        name: &str,
    ) -> Option<&'a str> {
        if let Some(v) = vars.get(name) {
            return Some(v);
        }
        let tag = name.strip_prefix("tag.")?;
        tags.iter().rev().find(|(n, _)| n == tag).map(|(_, v)| v.as_str())
    }

    fn render(&self, t: &super::template::Template) -> String {
        t.render(|n| Self::lookup(&self.vars, &self.tags, n))
    }

    fn speak(&self, items: &[PlayItem]) -> Vec<Speak> {
        items
            .iter()
            .map(|i| match i {
                PlayItem::File(p) => Speak::File(p.clone()),
                PlayItem::Tts(t, lang) => Speak::Tts { text: self.render(t), lang: *lang },
                PlayItem::Say(kind, t, lang) => {
                    Speak::Say { kind: *kind, value: self.render(t), lang: *lang }
                }
            })
            .collect()
    }

    fn set_tag(&mut self, name: &str, value: String) {
        match self.tags.iter_mut().find(|(n, _)| n == name) {
            Some(t) => t.1 = value,
            None => self.tags.push((name.to_string(), value)),
        }
    }

    fn kind(&self) -> Option<NodeKind> {
        self.set.flows.get(self.flow)?.nodes.get(self.node).map(|n| n.kind.clone())
    }

    fn finish(&mut self, out: Output) {
        self.out.push_back(out);
        self.wait = Wait::Ended;
        self.deadline = None;
    }

    /// Feeds one input.
    pub fn handle(&mut self, now: Instant, input: Input) {
        if self.ended() {
            return;
        }
        match (input, self.wait.clone()) {
            (Input::Digit(d), Wait::Play { interrupt }) => {
                self.push_key(d);
                if interrupt {
                    self.out.push_back(Output::StopPlay);
                    self.played(now);
                }
            }
            (Input::Digit(d), Wait::PlayThenGather(g)) => {
                self.out.push_back(Output::StopPlay);
                self.wait = Wait::Keys(g);
                self.key(now, d, g);
            }
            (Input::Digit(d), Wait::Keys(g)) => self.key(now, d, g),
            (Input::Digit(d), _) => self.push_key(d),
            (Input::PlayDone, Wait::Play { .. }) => self.played(now),
            (Input::PlayDone, Wait::PlayThenGather(g)) => {
                self.wait = Wait::Keys(g);
                self.deadline = Some(now + g.first);
            }
            (Input::Web(result), Wait::Web) => {
                self.wait = Wait::Nothing;
                self.web_done(now, result);
            }
            (Input::Lists(lists), Wait::Lists) => {
                self.wait = Wait::Nothing;
                self.lists_done(now, lists);
            }
            (Input::TransferFailed(cause), Wait::Away) => {
                self.wait = Wait::Nothing;
                self.vars.insert("transfer_failure".into(), cause);
                if let Some(NodeKind::Transfer { fail, .. }) = self.kind() {
                    self.enter(now, fail);
                }
            }
            (Input::AgentUnavailable, Wait::Away) => {
                self.wait = Wait::Nothing;
                if let Some(NodeKind::SmartRoute { fail, .. }) = self.kind() {
                    self.enter(now, fail);
                }
            }
            _ => {}
        }
    }

    /// Handles the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.deadline.map_or(true, |d| now < d) {
            return;
        }
        self.deadline = None;
        if let Wait::Keys(_) = self.wait {
            let keys = std::mem::take(&mut self.keys);
            self.wait = Wait::Nothing;
            self.gathered(now, keys);
        }
    }

    fn push_key(&mut self, d: char) {
        if self.typeahead.len() < MAX_TYPEAHEAD {
            self.typeahead.push_back(d);
        }
    }

    fn key(&mut self, now: Instant, d: char, g: Gather) {
        if let Some(only) = g.only {
            if only & key_set(&d.to_string()) == 0 {
                return;
            }
            self.keys.push(d);
            self.wait = Wait::Nothing;
            self.deadline = None;
            let keys = std::mem::take(&mut self.keys);
            self.gathered(now, keys);
            return;
        }
        let done = if g.terminator == Some(d) {
            true
        } else {
            self.keys.push(d);
            self.keys.len() >= g.max
        };
        if done {
            self.wait = Wait::Nothing;
            self.deadline = None;
            let keys = std::mem::take(&mut self.keys);
            self.gathered(now, keys);
        } else {
            self.deadline = Some(now + g.inter);
        }
    }

    /// Plays `prompt` (a key interrupts it) and then gathers keys, using type-ahead first.
    fn gather(&mut self, now: Instant, prompt: Vec<Speak>, g: Gather) {
        self.keys.clear();
        if !self.typeahead.is_empty() {
            self.wait = Wait::Keys(g);
            while let Some(d) = self.typeahead.pop_front() {
                self.key(now, d, g);
                if self.wait != Wait::Keys(g) {
                    return;
                }
            }
            return;
        }
        if prompt.is_empty() {
            self.wait = Wait::Keys(g);
            self.deadline = Some(now + g.first);
        } else {
            self.out.push_back(Output::Play(prompt));
            self.wait = Wait::PlayThenGather(g);
        }
    }

    fn play(&mut self, now: Instant, items: Vec<Speak>, interrupt: bool) {
        if items.is_empty() {
            self.wait = Wait::Nothing;
            self.played(now);
        } else {
            self.out.push_back(Output::Play(items));
            self.wait = Wait::Play { interrupt };
        }
    }

    /// Goes to a node and runs it until something must be waited for.
    fn enter(&mut self, now: Instant, target: Target) {
        let mut target = target;
        for _ in 0..MAX_STEPS {
            let Some(node) = target else {
                self.finish(Output::Hangup { cause: "flow ended".into() });
                return;
            };
            self.node = node;
            self.step = 0;
            self.attempts = 0;
            self.wait = Wait::Nothing;
            self.deadline = None;
            if let Some(n) = self.set.flows.get(self.flow).and_then(|f| f.nodes.get(node)) {
                let name = format!("{}.{}", self.set.flows[self.flow].name, n.name);
                self.trail.push(name);
            }
            match self.run_node(now) {
                Some(next) => target = next,
                None => return,
            }
        }
        self.finish(Output::Hangup { cause: "the flow went round a loop without waiting".into() });
    }

    /// Runs the current node's first step: `Some(target)` to go on at once, `None` when it
    /// waits (or the run ended).
    fn run_node(&mut self, now: Instant) -> Option<Target> {
        let kind = self.kind()?;
        match kind {
            NodeKind::Play { play, interrupt, next } => {
                if play.is_empty() {
                    return Some(next);
                }
                let items = self.speak(&play);
                self.play(now, items, interrupt);
                None
            }
            NodeKind::Menu { play, timeout, .. } => {
                let items = self.speak(&play);
                self.gather(
                    now,
                    items,
                    Gather { max: 1, terminator: None, first: timeout, inter: timeout, only: None },
                );
                None
            }
            NodeKind::Collect { play, max, terminator, timeout, digit_timeout, .. } => {
                let items = self.speak(&play);
                self.gather(
                    now,
                    items,
                    Gather { max, terminator, first: timeout, inter: digit_timeout, only: None },
                );
                None
            }
            NodeKind::Set { vars, tags, next } => {
                for (name, t) in &vars {
                    let v = self.render(t);
                    self.vars.insert(name.clone(), v);
                }
                for (name, t) in &tags {
                    let v = self.render(t);
                    self.set_tag(name, v);
                }
                Some(next)
            }
            NodeKind::Branch { cases, default } => {
                for c in &cases {
                    let left = Self::lookup(&self.vars, &self.tags, &c.var).unwrap_or("").to_string();
                    let right = self.render(&c.value);
                    if compare(&left, c.op, &right) {
                        return Some(c.next);
                    }
                }
                Some(default)
            }
            NodeKind::Schedule { schedule, open, closed } => {
                let local = self.started.1 + now.saturating_duration_since(self.started.0);
                Some(if schedule.is_open(local) { open } else { closed })
            }
            NodeKind::Queue { play, .. }
            | NodeKind::Transfer { play, .. }
            | NodeKind::Hangup { play, .. } => {
                let items = self.speak(&play);
                self.play(now, items, false);
                None
            }
            NodeKind::Voicemail { play, .. } => {
                let items = self.speak(&play);
                self.play(now, items, false);
                None
            }
            NodeKind::Record { play, name, end_keys, max, .. } => {
                self.out.push_back(Output::RecordStart(RecordPurpose::Input { name }));
                let items = self.speak(&play);
                self.typeahead.clear();
                let only = Some(key_set(&end_keys));
                self.gather(now, items, Gather { max: 1, terminator: None, first: max, inter: max, only });
                None
            }
            NodeKind::Goto { next } => Some(next),
            NodeKind::Call { flow, next } => {
                let Some(target) = self.set.get(&flow) else {
                    self.finish(Output::Hangup { cause: format!("no flow named {flow}") });
                    return None;
                };
                if self.stack.len() >= MAX_DEPTH {
                    self.finish(Output::Hangup { cause: "sub-flows nest too deep".into() });
                    return None;
                }
                self.stack.push((self.flow, next));
                self.flow = target;
                Some(Some(self.set.flows[target].start))
            }
            NodeKind::Return => match self.stack.pop() {
                Some((flow, next)) => {
                    self.flow = flow;
                    Some(next)
                }
                None => {
                    self.finish(Output::Return);
                    None
                }
            },
            NodeKind::WebService { service, .. } => {
                self.out.push_back(Output::Web { service, args: self.vars.clone() });
                self.wait = Wait::Web;
                None
            }
            NodeKind::Survey { play, scale, timeout, .. } => {
                let items = self.speak(&play);
                let _ = scale;
                self.gather(
                    now,
                    items,
                    Gather { max: 1, terminator: None, first: timeout, inter: timeout, only: None },
                );
                None
            }
            NodeKind::Auth { play, max, timeout, .. } => {
                let items = self.speak(&play);
                self.gather(
                    now,
                    items,
                    Gather { max, terminator: Some('#'), first: timeout, inter: timeout, only: None },
                );
                None
            }
            NodeKind::Filter { .. } => {
                let number = self.vars.get("caller").cloned().unwrap_or_default();
                self.out.push_back(Output::LookupLists { number });
                self.wait = Wait::Lists;
                None
            }
            NodeKind::Area { table, tag, routes, next } => {
                let caller = self.vars.get("caller").cloned().unwrap_or_default();
                let region =
                    table.iter().find(|(p, _)| caller.starts_with(p.as_str())).map(|(_, r)| r.clone());
                match region {
                    Some(region) => {
                        self.vars.insert("area".into(), region.clone());
                        self.set_tag(&tag, region.clone());
                        Some(routes.iter().find(|(r, _)| *r == region).map(|(_, t)| *t).unwrap_or(next))
                    }
                    None => Some(next),
                }
            }
            NodeKind::Greet { table, service, text, lang, next } => {
                let caller = self.vars.get("caller").cloned().unwrap_or_default();
                if let Some((name, title)) = table.get(&caller) {
                    self.vars.insert("name".into(), name.clone());
                    self.vars.insert("title".into(), title.clone());
                    let text = self.render(&text);
                    self.play(now, vec![Speak::Tts { text, lang }], true);
                    return None;
                }
                match service {
                    Some(service) => {
                        self.out.push_back(Output::Web { service, args: self.vars.clone() });
                        self.wait = Wait::Web;
                        None
                    }
                    None => Some(next),
                }
            }
            NodeKind::SmartRoute { agent, fail } => {
                let agent = self.render(&agent);
                if agent.is_empty() {
                    return Some(fail);
                }
                self.out.push_back(Output::Agent { agent });
                self.wait = Wait::Away;
                None
            }
            NodeKind::Query { service, .. } => {
                self.out.push_back(Output::Web { service, args: self.vars.clone() });
                self.wait = Wait::Web;
                None
            }
        }
    }

    /// A prompt of the current node ended (or was interrupted).
    fn played(&mut self, now: Instant) {
        self.wait = Wait::Nothing;
        let Some(kind) = self.kind() else {
            return;
        };
        match kind {
            NodeKind::Play { next, .. } | NodeKind::Greet { next, .. } | NodeKind::Query { next, .. } => {
                self.enter(now, next)
            }
            NodeKind::Queue { queue, priority, .. } => {
                let priority = priority + self.priority;
                self.out.push_back(Output::Queue { queue, priority });
                self.wait = Wait::Away;
            }
            NodeKind::Transfer { number, caller_id, .. } => {
                let number = self.render(&number);
                let caller_id = caller_id.map(|c| self.render(&c)).filter(|c| !c.is_empty());
                self.out.push_back(Output::Transfer { number, caller_id });
                self.wait = Wait::Away;
            }
            NodeKind::Hangup { cause, .. } => self.finish(Output::Hangup { cause }),
            NodeKind::Voicemail { mailbox, max, .. } => {
                let mailbox = self.render(&mailbox);
                self.out.push_back(Output::RecordStart(RecordPurpose::Voicemail { mailbox }));
                self.typeahead.clear();
                self.gather(
                    now,
                    Vec::new(),
                    Gather { max: 1, terminator: None, first: max, inter: max, only: Some(key_set("#")) },
                );
            }
            NodeKind::Collect { next, confirm, .. } if self.step == 1 => {
                // The read-back ended: ask for confirmation, or go on.
                if confirm.is_empty() {
                    self.enter(now, next);
                } else {
                    self.step = 2;
                    let items = self.speak(&confirm);
                    let g = Gather {
                        max: 1,
                        terminator: None,
                        first: Duration::from_secs(5),
                        inter: Duration::from_secs(5),
                        only: Some(key_set("12")),
                    };
                    self.gather(now, items, g);
                }
            }
            NodeKind::Survey { next, unhappy, .. } => {
                let happy = self.vars.get("survey_unhappy").map_or(true, |v| v != "1");
                self.enter(now, if happy { next } else { unhappy.or(next) });
            }
            NodeKind::Auth { password, max, timeout, .. } if self.step == 1 => {
                // The number was read back: ask for the password, or check now.
                self.auth_password(now, password, max, timeout);
            }
            // A retry prompt (invalid key, no input) ended: gather again.
            NodeKind::Menu { .. } | NodeKind::Collect { .. } | NodeKind::Auth { .. } => {}
            _ => {}
        }
    }

    fn auth_password(&mut self, now: Instant, password: Vec<PlayItem>, max: usize, timeout: Duration) {
        if password.is_empty() {
            self.auth_check(String::new());
        } else {
            self.step = 2;
            let items = self.speak(&password);
            self.gather(
                now,
                items,
                Gather { max, terminator: Some('#'), first: timeout, inter: timeout, only: None },
            );
        }
    }

    fn auth_check(&mut self, password: String) {
        let Some(NodeKind::Auth { service, .. }) = self.kind() else {
            return;
        };
        self.step = 3;
        let mut args = self.vars.clone();
        args.insert("user".into(), self.vars.get("auth_user").cloned().unwrap_or_default());
        args.insert("password".into(), password);
        self.out.push_back(Output::Web { service, args });
        self.wait = Wait::Web;
    }

    /// Keys were gathered (empty: nothing typed before the timeout).
    fn gathered(&mut self, now: Instant, keys: String) {
        let Some(kind) = self.kind() else {
            return;
        };
        match kind {
            NodeKind::Menu { play, keys: map, retries, invalid, no_input, fail, timeout } => {
                let key = keys.chars().next();
                if let Some(&(_, target)) = key.and_then(|k| map.iter().find(|(c, _)| *c == k)) {
                    self.vars.insert("last_key".into(), keys);
                    self.enter(now, target);
                    return;
                }
                self.attempts += 1;
                if self.attempts > retries {
                    self.enter(now, fail);
                    return;
                }
                let mut items = self.speak(if key.is_some() { &invalid } else { &no_input });
                items.extend(self.speak(&play));
                self.gather(
                    now,
                    items,
                    Gather { max: 1, terminator: None, first: timeout, inter: timeout, only: None },
                );
            }
            NodeKind::Collect {
                play,
                var,
                min,
                max,
                terminator,
                timeout,
                digit_timeout,
                readback,
                retries,
                next,
                fail,
                ..
            } if self.step == 0 => {
                if keys.chars().count() < min {
                    self.attempts += 1;
                    if self.attempts > retries {
                        self.enter(now, fail);
                        return;
                    }
                    let items = self.speak(&play);
                    self.gather(
                        now,
                        items,
                        Gather { max, terminator, first: timeout, inter: digit_timeout, only: None },
                    );
                    return;
                }
                self.vars.insert(var, keys.clone());
                if readback {
                    self.step = 1;
                    let lang = self.set.flows.get(self.flow).map(|f| f.lang).unwrap_or_default();
                    self.play(now, vec![Speak::Say { kind: SayKind::Digits, value: keys, lang }], false);
                } else {
                    self.enter(now, next);
                }
            }
            NodeKind::Collect {
                play, max, terminator, timeout, digit_timeout, retries, next, fail, ..
            } => {
                // Step 2: the confirmation key.
                if keys == "1" {
                    self.enter(now, next);
                    return;
                }
                self.attempts += 1;
                if self.attempts > retries {
                    self.enter(now, fail);
                    return;
                }
                self.step = 0;
                let items = self.speak(&play);
                self.gather(
                    now,
                    items,
                    Gather { max, terminator, first: timeout, inter: digit_timeout, only: None },
                );
            }
            NodeKind::Record { name, next, .. } => {
                self.out.push_back(Output::StoreInput { name, value: keys });
                self.out.push_back(Output::RecordStop);
                self.enter(now, next);
            }
            NodeKind::Voicemail { next, .. } => {
                self.out.push_back(Output::RecordStop);
                self.enter(now, next);
            }
            NodeKind::Survey { play, scale, queue, thanks, retries, timeout, next, .. } => {
                let key = keys.chars().next();
                let answer = match (&scale, key) {
                    (SurveyScale::Score { max, unhappy_below }, Some(k @ '1'..='9'))
                        if (k as u8 - b'0') <= *max =>
                    {
                        let score = k as u8 - b'0';
                        Some((
                            SurveyAnswer { score: Some(score), grade: None, queue: queue.clone() },
                            score < *unhappy_below,
                        ))
                    }
                    (SurveyScale::Grades { keys: grades, unhappy }, Some(k)) => {
                        grades.iter().find(|(c, _)| *c == k).map(|(_, g)| {
                            (
                                SurveyAnswer { score: None, grade: Some(g.clone()), queue: queue.clone() },
                                unhappy.contains(g),
                            )
                        })
                    }
                    _ => None,
                };
                match answer {
                    Some((answer, unhappy)) => {
                        let value =
                            answer.score.map(|s| s.to_string()).or(answer.grade.clone()).unwrap_or_default();
                        self.vars.insert("survey".into(), value);
                        self.vars.insert("survey_unhappy".into(), if unhappy { "1" } else { "0" }.into());
                        self.out.push_back(Output::Survey(answer));
                        let items = self.speak(&thanks);
                        self.play(now, items, false);
                    }
                    None => {
                        self.attempts += 1;
                        if self.attempts > retries {
                            self.enter(now, next);
                            return;
                        }
                        let items = self.speak(&play);
                        self.gather(
                            now,
                            items,
                            Gather { max: 1, terminator: None, first: timeout, inter: timeout, only: None },
                        );
                    }
                }
            }
            NodeKind::Auth { play, password, min, max, readback, retries, timeout, fail, .. } => {
                if self.step == 2 {
                    self.auth_check(keys);
                    return;
                }
                if keys.chars().count() < min {
                    self.attempts += 1;
                    if self.attempts > retries {
                        self.enter(now, fail);
                        return;
                    }
                    let items = self.speak(&play);
                    self.gather(
                        now,
                        items,
                        Gather { max, terminator: Some('#'), first: timeout, inter: timeout, only: None },
                    );
                    return;
                }
                self.vars.insert("auth_user".into(), keys.clone());
                if readback {
                    self.step = 1;
                    let lang = self.set.flows.get(self.flow).map(|f| f.lang).unwrap_or_default();
                    self.play(now, vec![Speak::Say { kind: SayKind::Digits, value: keys, lang }], false);
                } else {
                    self.auth_password(now, password, max, timeout);
                }
            }
            _ => {}
        }
    }

    fn web_done(&mut self, now: Instant, result: Result<BTreeMap<String, String>, String>) {
        let Some(kind) = self.kind() else {
            return;
        };
        let ok = match result {
            Ok(values) => {
                self.vars.remove("error");
                self.vars.extend(values);
                true
            }
            Err(e) => {
                self.vars.insert("error".into(), e);
                false
            }
        };
        match kind {
            NodeKind::WebService { tags, next, fail, .. } => {
                if ok {
                    for (name, t) in &tags {
                        let v = self.render(t);
                        self.set_tag(name, v);
                    }
                }
                self.enter(now, if ok { next } else { fail });
            }
            NodeKind::Auth { result, tag, retries, play, max, timeout, fail, next, .. } => {
                let valid =
                    ok && self.vars.get(&result).is_some_and(|v| matches!(v.as_str(), "true" | "1" | "yes"));
                if valid {
                    let user = self.vars.get("auth_user").cloned().unwrap_or_default();
                    self.set_tag(&tag, user);
                    self.enter(now, next);
                    return;
                }
                if !ok {
                    // The service failed: asking again would not help.
                    self.enter(now, fail);
                    return;
                }
                self.attempts += 1;
                if self.attempts > retries {
                    self.enter(now, fail);
                    return;
                }
                self.step = 0;
                let items = self.speak(&play);
                self.gather(
                    now,
                    items,
                    Gather { max, terminator: Some('#'), first: timeout, inter: timeout, only: None },
                );
            }
            NodeKind::Greet { text, lang, next, .. } => {
                if ok && self.vars.get("name").is_some_and(|n| !n.is_empty()) {
                    let text = self.render(&text);
                    self.play(now, vec![Speak::Tts { text, lang }], true);
                } else {
                    self.enter(now, next);
                }
            }
            NodeKind::Query { play, value, say, lang, fail, .. } => {
                if !ok {
                    self.enter(now, fail);
                    return;
                }
                let value = self.render(&value);
                let mut items = self.speak(&play);
                items.push(match say {
                    QuerySay::Text => Speak::Tts { text: value, lang },
                    QuerySay::Value(kind) => Speak::Say { kind, value, lang },
                });
                self.play(now, items, true);
            }
            _ => {}
        }
    }

    fn lists_done(&mut self, now: Instant, lists: Vec<String>) {
        let Some(NodeKind::Filter { blocked, vip_priority, next }) = self.kind() else {
            return;
        };
        if lists.iter().any(|l| l == "blacklist") {
            self.vars.insert("blocked".into(), "1".into());
            self.enter(now, blocked);
            return;
        }
        if lists.iter().any(|l| l == "vip") {
            self.priority += vip_priority;
            self.set_tag("VIP", "1".into());
        }
        if lists.iter().any(|l| l == "member") {
            self.set_tag("MEMBER", "1".into());
        }
        self.enter(now, next);
    }

    /// The call came back to the flow at `target` after it left (e.g. a queue overflowing
    /// to a flow): keeps the variables and tags.
    pub fn resume_at(&mut self, now: Instant, flow: usize, target: Target) {
        self.flow = flow;
        self.stack.clear();
        self.enter(now, target);
    }
}

/// A set of telephone keys as a bit mask, which keeps [`Gather`] `Copy`.
fn key_set(keys: &str) -> u16 {
    const KEYS: &str = "0123456789*#ABCD";
    keys.chars().filter_map(|c| KEYS.find(c)).fold(0, |m, i| m | 1 << i)
}

fn compare(left: &str, op: Op, right: &str) -> bool {
    let nums = (left.trim().parse::<f64>(), right.trim().parse::<f64>());
    let ord = match nums {
        (Ok(a), Ok(b)) => a.partial_cmp(&b),
        _ => Some(left.cmp(right)),
    };
    use std::cmp::Ordering::*;
    match op {
        Op::Eq => ord == Some(Equal),
        Op::Ne => ord != Some(Equal),
        Op::Lt => ord == Some(Less),
        Op::Le => matches!(ord, Some(Less | Equal)),
        Op::Gt => ord == Some(Greater),
        Op::Ge => matches!(ord, Some(Greater | Equal)),
        Op::StartsWith => left.starts_with(right),
        Op::Empty => left.is_empty(),
        Op::NotEmpty => !left.is_empty(),
    }
}
