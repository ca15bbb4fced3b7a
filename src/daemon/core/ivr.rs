//! The core's IVR driver: runs the flow interpreter of every call in a flow and carries out
//! what it asks for. Prompts are resolved to slots of the engine's prompt bank (files and
//! prompt sets are loaded when the daemon starts; TTS renderings when first needed, on a
//! blocking thread); web services and store lookups run as tasks whose answers come back
//! through a channel, so no call ever waits for another call's service.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use switchboard_driver_api::ChannelId;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::Core;
use crate::calls::CallId;
use crate::config::Config;
use crate::control::protocol::Notice;
use crate::ivr::flow::{for_each_play, NodeKind, PlayItem, QuerySay, SayKind};
use crate::ivr::run::{Input, Output, RecordPurpose, Run, Speak};
use crate::ivr::{Context, FlowSet, Lang};
use crate::media::{EngineCmd, PromptId, Prompts};
use crate::speech::{self, EspeakNg, Tts, TtsCache};
use crate::store;
use crate::webservice::{ServiceConfig, WebClient};

/// Slots in the prompt bank: flow prompts, two prompt sets, and TTS renderings.
pub(super) const PROMPT_SLOTS: usize = 8192;

/// Compiles the configuration's flows and checks what they refer to: routes' and queues'
/// flows, prompt files, web services, queues, and the TTS engine or prompt sets they need.
/// Used by the daemon at start and by `switchboard check`.
pub fn load_flows(config: &Config, prompt_sets: Option<&Path>) -> Result<FlowSet, Vec<String>> {
    let uses_flows = config
        .calls
        .routes
        .iter()
        .any(|r| r.flows.entry.is_some() || r.flows.after.is_some() || r.flows.overflow.is_some());
    if !config.ivr.flows.is_dir() {
        if uses_flows {
            return Err(vec![format!(
                "{}: the flow directory does not exist, and routes or queues use flows (see [ivr] flows)",
                config.ivr.flows.display()
            )]);
        }
        return Ok(FlowSet::default());
    }
    let ctx = Context {
        prompt_dir: config.ivr.prompts.clone(),
        check_files: true,
        services: config.webservices.iter().map(|w| w.name.clone()).collect(),
        // A flow's `queue` node may name an ACD queue or a route of fixed seats.
        queues: config
            .calls
            .routes
            .iter()
            .filter(|r| r.flows.entry.is_none())
            .map(|r| r.name.clone())
            .collect(),
        lang: config.ivr.lang,
    };
    let set = FlowSet::load_dir(&config.ivr.flows, &ctx)
        .map_err(|errors| errors.iter().map(|e| e.to_string()).collect::<Vec<_>>())?;
    let mut errors = Vec::new();
    for r in &config.calls.routes {
        let named =
            [("flow", &r.flows.entry), ("survey", &r.flows.after), ("overflow_to", &r.flows.overflow)];
        for (key, flow) in named {
            match flow {
                Some(f) if f == "*" && key == "flow" => {
                    if !set.flows.iter().any(|f| f.select != Default::default()) {
                        errors.push(format!(
                            "route {}: `flow = \"*\"` but no flow in {} has a [select] table",
                            r.name,
                            config.ivr.flows.display()
                        ));
                    }
                }
                Some(f) if set.get(f).is_none() => errors.push(format!(
                    "route or queue {}: `{key}` names the flow `{f}`, which is not in {}",
                    r.name,
                    config.ivr.flows.display()
                )),
                _ => {}
            }
        }
    }
    let (tts_used, say_langs) = speech_needs(&set);
    let engine = tts_engine(config);
    let engine_ok = engine.as_ref().map(|e| e.check().map_err(|e| e.to_string()));
    if tts_used {
        match &engine_ok {
            None => errors.push("flows speak text (tts:, greet, query) but [ivr] tts = \"none\"".into()),
            Some(Err(e)) => errors.push(format!("flows speak text (tts:, greet, query) but {e}")),
            Some(Ok(())) => {}
        }
    }
    for lang in say_langs {
        let missing = prompt_sets.map(|d| speech::missing_items(d, lang).len()).unwrap_or(usize::MAX);
        if missing > 0 && !matches!(engine_ok, Some(Ok(()))) {
            errors.push(format!(
                "flows read out numbers in {lang}, the {lang} prompt set is incomplete, and no TTS engine \
                 can make it: install espeak-ng or record the prompt set (see `switchboard prompts`)"
            ));
        }
    }
    if errors.is_empty() {
        Ok(set)
    } else {
        Err(errors)
    }
}

/// Whether the flows speak text, and the languages in which they read out values.
fn speech_needs(set: &FlowSet) -> (bool, Vec<Lang>) {
    let (mut tts_used, mut say_langs) = (false, Vec::new());
    for f in &set.flows {
        for n in &f.nodes {
            let mut note = |item: &PlayItem| match item {
                PlayItem::Tts(..) => tts_used = true,
                PlayItem::Say(_, _, lang) if !say_langs.contains(lang) => say_langs.push(*lang),
                _ => {}
            };
            for_each_play(&n.kind, &mut note);
            let say_lang = match &n.kind {
                NodeKind::Greet { .. } | NodeKind::Query { say: QuerySay::Text, .. } => {
                    tts_used = true;
                    None
                }
                NodeKind::Query { say: QuerySay::Value(_), lang, .. } => Some(*lang),
                NodeKind::Collect { readback: true, .. } | NodeKind::Auth { readback: true, .. } => {
                    Some(f.lang)
                }
                _ => None,
            };
            if let Some(lang) = say_lang {
                if !say_langs.contains(&lang) {
                    say_langs.push(lang);
                }
            }
        }
    }
    (tts_used, say_langs)
}

fn tts_engine(config: &Config) -> Option<EspeakNg> {
    config.ivr.tts.as_ref().map(|_| EspeakNg::new())
}

/// What a task started for a call brings back.
pub(super) enum IvrDone {
    Web {
        call: CallId,
        result: Result<BTreeMap<String, String>, String>,
    },
    Lists {
        call: CallId,
        lists: Vec<String>,
    },
    /// TTS renderings for the play waiting on `call`, as (cache key, audio).
    Tts {
        call: CallId,
        play: u64,
        rendered: Vec<(String, Result<Vec<i16>, String>)>,
    },
    /// A position announcement rendered for a waiting caller.
    Announce {
        call: CallId,
        key: String,
        audio: Result<Vec<i16>, String>,
    },
}

/// A call in a flow.
pub(super) struct IvrCall {
    run: Run,
    trunk: ChannelId,
    back_to: Option<ChannelId>,
    /// The prompts of the current play still to come.
    queue: VecDeque<PromptId>,
    /// Counts plays, so that a TTS result for an abandoned play is dropped.
    play: u64,
    /// What the flow's current recording is for, and since when.
    purpose: Option<(RecordPurpose, Instant)>,
}

/// The IVR's state in the core.
pub(super) struct Ivr {
    pub(super) flows: Arc<FlowSet>,
    utc_offset: UtcOffset,
    bank: Arc<Prompts>,
    next_slot: usize,
    loaded: HashMap<String, PromptId>,
    /// The latest loaded version of each prompt file.
    paths: HashMap<PathBuf, PromptId>,
    pub(super) calls: HashMap<CallId, IvrCall>,
    web: Option<WebClient>,
    services: HashMap<String, Arc<ServiceConfig>>,
    tts: Option<Arc<TtsCache<EspeakNg>>>,
    lang: Lang,
    done_tx: mpsc::UnboundedSender<IvrDone>,
    pub(super) done_rx: mpsc::UnboundedReceiver<IvrDone>,
    /// Counters for `status`.
    pub(super) started: u64,
    pub(super) web_calls: u64,
    pub(super) web_failures: u64,
    /// What flows were loaded with, for reloads.
    config: Config,
    sets: PathBuf,
}

fn set_key(lang: Lang, item: &str) -> String {
    format!("set:{lang}:{item}")
}

/// A prompt file's key in the bank: its path, size and modification time, so that a file
/// changed before a reload is loaded again and not taken for the old one.
fn file_key(path: &Path) -> String {
    let meta = std::fs::metadata(path).ok();
    let len = meta.as_ref().map_or(0, |m| m.len());
    let mtime =
        meta.and_then(|m| m.modified().ok()).and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
    format!("file:{}:{len}:{}", path.display(), mtime.map_or(0, |t| t.as_nanos()))
}

impl Ivr {
    /// Loads the flows and every prompt they use into the bank (slot 0 is hold music).
    pub(super) async fn start(config: &Config, data_dir: &Path, bank: Arc<Prompts>) -> Result<Ivr, String> {
        let sets = data_dir.join("prompt-sets");
        let engine = tts_engine(config);
        // Build the prompt sets the flows need before checking them, when an engine can.
        let flows = match load_flows(config, Some(&sets)) {
            Ok(f) => f,
            Err(errors) => return Err(errors.join("\n")),
        };
        let tts = engine.map(|e| Arc::new(TtsCache::new(e, data_dir.join("tts-cache"))));
        let web = if config.webservices.is_empty() {
            None
        } else {
            Some(WebClient::new().map_err(|e| format!("cannot start the web-service client: {e}"))?)
        };
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let mut ivr = Ivr {
            flows: Arc::new(flows),
            utc_offset: config.ivr.utc_offset,
            bank,
            next_slot: 1,
            loaded: HashMap::new(),
            paths: HashMap::new(),
            calls: HashMap::new(),
            web,
            services: config.webservices.iter().map(|s| (s.name.clone(), Arc::new(s.clone()))).collect(),
            tts,
            lang: config.ivr.lang,
            done_tx,
            done_rx,
            started: 0,
            web_calls: 0,
            web_failures: 0,
            config: config.clone(),
            sets: sets.clone(),
        };
        ivr.preload(&sets).await?;
        Ok(ivr)
    }

    fn put(&mut self, key: String, audio: Vec<i16>) -> Option<PromptId> {
        if let Some(id) = self.loaded.get(&key) {
            return Some(*id);
        }
        if self.next_slot >= self.bank.capacity() {
            warn!("the prompt bank is full ({} prompts): {key} cannot be played", self.bank.capacity());
            return None;
        }
        let id = PromptId(self.next_slot as u16);
        self.next_slot += 1;
        if self.bank.set(id, audio.into_boxed_slice()).is_err() {
            return None;
        }
        self.loaded.insert(key, id);
        Some(id)
    }

    async fn preload(&mut self, sets: &Path) -> Result<(), String> {
        let mut files = self.flows.prompt_files();
        let (_, langs) = speech_needs(&self.flows);
        let mut texts = Vec::new();
        for f in &self.flows.flows {
            for n in &f.nodes {
                for_each_play(&n.kind, |item| {
                    if let PlayItem::Tts(t, lang) = item {
                        if t.is_literal() {
                            texts.push((t.render(|_| None), *lang));
                        }
                    }
                });
            }
        }
        files.sort();
        for path in files {
            let key = file_key(&path);
            let id = match self.loaded.get(&key) {
                Some(id) => Some(*id),
                None => {
                    let audio = super::load_wav(path.clone()).await?;
                    self.put(key, audio.to_vec())
                }
            };
            if let Some(id) = id {
                self.paths.insert(path, id);
            }
        }
        // Prompt sets: build what is missing with the TTS engine, then load them.
        for lang in langs {
            let missing = speech::missing_items(sets, lang);
            if !missing.is_empty() {
                if let Some(tts) = self.tts.clone() {
                    info!("building the {lang} prompt set in {} ({} prompts)", sets.display(), missing.len());
                    let dir = sets.to_path_buf();
                    let built = tokio::task::spawn_blocking(move || {
                        speech::build_prompt_set(&dir, lang, tts.tts(), false)
                    })
                    .await
                    .map_err(|e| e.to_string())?;
                    built.map_err(|e| format!("cannot build the {lang} prompt set: {e}"))?;
                }
            }
            for (item, _) in speech::items(lang) {
                let path = speech::prompt_path(sets, lang, item);
                if path.is_file() {
                    let audio = super::load_wav(path).await?;
                    self.put(set_key(lang, item), audio.to_vec());
                }
            }
        }
        // Fixed TTS texts are rendered now, so the first caller does not wait for them.
        if let Some(tts) = self.tts.clone() {
            for (text, lang) in texts {
                let key = tts.key(&text, lang);
                let t = tts.clone();
                let audio = tokio::task::spawn_blocking(move || t.render_cached(&text, lang))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| format!("text to speech failed: {e}"))?;
                self.put(format!("tts:{key}"), audio.1);
            }
        }
        info!(
            "IVR: {} flows, {} prompts loaded{}",
            self.flows.flows.len(),
            self.next_slot - 1,
            if self.services.is_empty() {
                String::new()
            } else {
                format!(", {} web services", self.services.len())
            }
        );
        Ok(())
    }

    fn local_now(&self) -> PrimitiveDateTime {
        let t = OffsetDateTime::now_utc().to_offset(self.utc_offset);
        PrimitiveDateTime::new(t.date(), t.time())
    }
}

/// The prompt-set items that read out a value.
fn say_items(kind: SayKind, value: &str, lang: Lang) -> Result<Vec<&'static str>, String> {
    let value = value.trim();
    match kind {
        SayKind::Digits => speech::say_digits(value, lang).map_err(|e| e.to_string()),
        SayKind::Number => {
            let n: f64 = value.parse().map_err(|_| format!("`{value}` is not a number"))?;
            Ok(speech::say_number(n.trunc() as i64, lang))
        }
        SayKind::Amount => {
            let n: f64 = value.parse().map_err(|_| format!("`{value}` is not an amount"))?;
            Ok(speech::say_amount((n * 100.0).round() as i64, lang))
        }
        SayKind::Date => {
            let d = crate::ivr::schedule::parse_date(value)?;
            speech::say_date(d.year(), u32::from(u8::from(d.month())), u32::from(d.day()), lang)
                .map_err(|e| e.to_string())
        }
    }
}

impl Core {
    /// A call entered a flow: pick the flow and start its interpreter.
    pub(super) async fn flow_entered(&mut self, call: CallId, flow: String, back_to: Option<ChannelId>) {
        let now = Instant::now();
        let Some(trunk) = self.calls.trunk_of(call) else { return };
        let route = self.calls.route_of(call);
        let number =
            route.and_then(|r| self.calls.route(r)).map(|r| r.flows.number.clone()).unwrap_or_default();
        let (caller, call_id) = self
            .records
            .get(&call)
            .map(|r| (r.caller.clone(), r.call_id.clone()))
            .unwrap_or_else(|| (String::new(), format!("X{}", call.0)));
        let local = self.ivr.local_now();
        let index = if flow == "*" {
            self.ivr.flows.select(&number, &caller, local)
        } else {
            self.ivr.flows.get(&flow)
        };
        let Some(index) = index else {
            warn!("call {call_id}: no flow `{flow}` for called number {number:?} and caller {caller:?}: hanging up");
            self.calls.flow_hangup(now, call);
            self.apply_actions().await;
            return;
        };
        let mut vars = BTreeMap::from([
            ("caller".to_string(), caller),
            ("called".to_string(), number),
            ("call_id".to_string(), call_id.clone()),
        ]);
        if let Some(agent) = self.last_agent.get(&call) {
            vars.insert("agent".into(), agent.clone());
        }
        if let Some(q) = self.last_queue.get(&call) {
            vars.insert("queue".into(), q.clone());
        }
        // The tags set by earlier flows of the call stay.
        let old_tags: Vec<(String, String)> =
            self.ivr.calls.get(&call).map(|c| c.run.tags().to_vec()).unwrap_or_default();
        let flows = self.ivr.flows.clone();
        let name = flows.flows[index].name.clone();
        info!("call {call_id}: entering flow {name}");
        self.notify(Notice::FlowEntered { call: call_id.clone(), flow: name.clone() });
        self.persist("the call's flow", self.store.cdr_set_flow(&call_id, &name));
        self.ivr.started += 1;
        let run = Run::start_with_tags(flows, index, vars, old_tags, now, local);
        self.ivr
            .calls
            .insert(call, IvrCall { run, trunk, back_to, queue: VecDeque::new(), play: 0, purpose: None });
        self.ivr_outputs(call).await;
    }

    /// Feeds an input to a call's flow and carries out what follows.
    pub(super) async fn ivr_input(&mut self, call: CallId, input: Input) {
        let Some(c) = self.ivr.calls.get_mut(&call) else { return };
        c.run.handle(Instant::now(), input);
        self.ivr_outputs(call).await;
    }

    /// A prompt ended on a channel: play the next one of the flow's list, or tell the flow.
    pub(super) async fn ivr_play_done(&mut self, channel: ChannelId) {
        let Some((&call, c)) = self.ivr.calls.iter_mut().find(|(_, c)| c.trunk == channel) else { return };
        if !self.calls.is_in_flow(call) {
            return;
        }
        match c.queue.pop_front() {
            Some(prompt) => {
                let cmd = EngineCmd::PlayPrompt { channel, prompt, repeat: false };
                self.engine(cmd);
            }
            None => self.ivr_input(call, Input::PlayDone).await,
        }
    }

    /// Carries out the flow work that call events queued: flows entered, keys pressed.
    pub(super) async fn ivr_work(&mut self) {
        for _ in 0..1000 {
            if let Some((call, flow, back_to)) = self.flow_queue.pop_front() {
                self.flow_entered(call, flow, back_to).await;
            } else if let Some((call, input)) = self.ivr_inbox.pop_front() {
                self.ivr_input(call, input).await;
            } else {
                return;
            }
        }
    }

    /// Loads the flows again. Calls in flows keep the set they started with (their `Run`
    /// holds its `Arc`); new calls get the new one. A set with errors is refused whole and
    /// the old one stays.
    /// Takes a reloaded configuration's IVR settings and web services; the flows are loaded
    /// again by [`Core::reload_flows`] next.
    pub(super) fn set_ivr_config(&mut self, config: &Config) -> Result<(), String> {
        if self.ivr.web.is_none() && !config.webservices.is_empty() {
            self.ivr.web =
                Some(WebClient::new().map_err(|e| format!("cannot start the web-service client: {e}"))?);
        }
        self.ivr.services =
            config.webservices.iter().map(|s| (s.name.clone(), Arc::new(s.clone()))).collect();
        self.ivr.utc_offset = config.ivr.utc_offset;
        self.ivr.config = config.clone();
        Ok(())
    }

    pub(super) async fn reload_flows(&mut self) -> Result<serde_json::Value, String> {
        let set = load_flows(&self.ivr.config, Some(&self.ivr.sets)).map_err(|errors| {
            warn!("flows not reloaded: {}", errors.join("; "));
            format!("the flows have errors; the running ones stay:\n{}", errors.join("\n"))
        })?;
        let old = std::mem::replace(&mut self.ivr.flows, Arc::new(set));
        let sets = self.ivr.sets.clone();
        if let Err(e) = self.ivr.preload(&sets).await {
            self.ivr.flows = old;
            return Err(format!("the flows' prompts cannot be loaded; the running flows stay: {e}"));
        }
        let names: Vec<String> = self.ivr.flows.flows.iter().map(|f| f.name.clone()).collect();
        let busy = self.ivr.calls.keys().filter(|c| self.calls.is_in_flow(**c)).count();
        info!("flows reloaded: {} ({busy} calls finish on the previous version)", names.join(", "));
        Ok(serde_json::json!({ "flows": names, "calls_on_previous_version": busy }))
    }

    /// Runs due flow timers.
    pub(super) async fn ivr_timers(&mut self, now: Instant) {
        let due: Vec<CallId> = self
            .ivr
            .calls
            .iter()
            .filter(|(_, c)| c.run.poll_timeout().is_some_and(|t| t <= now))
            .map(|(id, _)| *id)
            .collect();
        for call in due {
            if let Some(c) = self.ivr.calls.get_mut(&call) {
                c.run.handle_timeout(now);
            }
            self.ivr_outputs(call).await;
        }
    }

    /// A task for a call finished.
    pub(super) async fn ivr_done(&mut self, done: IvrDone) {
        match done {
            IvrDone::Web { call, result } => {
                if result.is_err() {
                    self.ivr.web_failures += 1;
                }
                if let Err(e) = &result {
                    warn!("call {}: {e}", self.call_id(call));
                }
                self.ivr_input(call, Input::Web(result)).await;
            }
            IvrDone::Lists { call, lists } => self.ivr_input(call, Input::Lists(lists)).await,
            IvrDone::Announce { call, key, audio } => match audio {
                Ok(audio) => {
                    if let Some(id) = self.ivr.put(key, audio) {
                        self.play_announcement(call, id);
                    }
                }
                Err(e) => warn!("call {}: the position announcement failed: {e}", self.call_id(call)),
            },
            IvrDone::Tts { call, play, rendered } => {
                for (key, audio) in rendered {
                    match audio {
                        Ok(audio) => {
                            self.ivr.put(key, audio);
                        }
                        Err(e) => warn!("call {}: text to speech failed: {e}", self.call_id(call)),
                    }
                }
                let current = self.ivr.calls.get(&call).is_some_and(|c| c.play == play);
                if current {
                    if let Some(items) = self.pending_speech.remove(&call) {
                        self.ivr_play(call, items);
                        self.ivr_outputs(call).await;
                    }
                }
            }
        }
    }

    /// Resolves a play to prompt slots and starts it; TTS that is not rendered yet is
    /// rendered first on a blocking thread.
    fn ivr_play(&mut self, call: CallId, items: Vec<Speak>) {
        let Some(c) = self.ivr.calls.get_mut(&call) else { return };
        c.play += 1;
        let play = c.play;
        let trunk = c.trunk;
        let mut prompts = VecDeque::new();
        let mut to_render = Vec::new();
        for item in &items {
            match item {
                Speak::File(path) => match self.ivr.paths.get(path) {
                    Some(id) => prompts.push_back(*id),
                    None => warn!("prompt {} is not loaded: skipped", path.display()),
                },
                Speak::Say { kind, value, lang } => match say_items(*kind, value, *lang) {
                    Ok(names) => {
                        for name in names {
                            match self.ivr.loaded.get(&set_key(*lang, name)) {
                                Some(id) => prompts.push_back(*id),
                                None => warn!("the {lang} prompt set has no `{name}`: skipped"),
                            }
                        }
                    }
                    Err(e) => warn!("call {}: cannot read out {value:?}: {e}", self.call_id(call)),
                },
                Speak::Tts { text, lang } => {
                    let Some(tts) = &self.ivr.tts else {
                        warn!("no TTS engine: {text:?} skipped");
                        continue;
                    };
                    let key = format!("tts:{}", tts.key(text, *lang));
                    match self.ivr.loaded.get(&key) {
                        Some(id) => prompts.push_back(*id),
                        None => to_render.push((key, text.clone(), *lang)),
                    }
                }
            }
        }
        if !to_render.is_empty() {
            if let Some(tts) = self.ivr.tts.clone() {
                self.pending_speech.insert(call, items);
                let tx = self.ivr.done_tx.clone();
                tokio::task::spawn_blocking(move || {
                    let rendered = to_render
                        .into_iter()
                        .map(|(key, text, lang)| {
                            (
                                key,
                                tts.render_cached(&text, lang)
                                    .map(|(_, audio)| audio)
                                    .map_err(|e| e.to_string()),
                            )
                        })
                        .collect();
                    let _ = tx.send(IvrDone::Tts { call, play, rendered });
                });
                return;
            }
        }
        let call_id = self.call_id(call);
        for item in &items {
            let prompt = match item {
                Speak::File(path) => {
                    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
                }
                Speak::Say { kind, value, lang } => format!("say:{lang}:{kind:?}:{value}"),
                Speak::Tts { text, .. } => format!("tts:{text}"),
            };
            self.notify(Notice::PromptPlayed { call: call_id.clone(), prompt });
        }
        let Some(c) = self.ivr.calls.get_mut(&call) else { return };
        match prompts.pop_front() {
            Some(first) => {
                c.queue = prompts;
                self.engine(EngineCmd::PlayPrompt { channel: trunk, prompt: first, repeat: false });
            }
            None => {
                // Nothing playable: the flow goes on as if it had played; its next outputs
                // are polled by the caller's loop.
                c.queue.clear();
                c.run.handle(Instant::now(), Input::PlayDone);
            }
        }
    }

    /// Carries out the outputs of a call's flow.
    pub(super) async fn ivr_outputs(&mut self, call: CallId) {
        loop {
            let Some(c) = self.ivr.calls.get_mut(&call) else { return };
            let Some(out) = c.run.poll_output() else { return };
            let trunk = c.trunk;
            let now = Instant::now();
            match out {
                Output::Play(items) => self.ivr_play(call, items),
                Output::StopPlay => {
                    if let Some(c) = self.ivr.calls.get_mut(&call) {
                        c.queue.clear();
                        c.play += 1;
                    }
                    self.pending_speech.remove(&call);
                    self.engine(EngineCmd::StopPlay { channel: trunk });
                }
                Output::Web { service, args } => {
                    self.ivr.web_calls += 1;
                    let tx = self.ivr.done_tx.clone();
                    match (self.ivr.web.clone(), self.ivr.services.get(&service).cloned()) {
                        (Some(client), Some(svc)) => {
                            tokio::spawn(async move {
                                let result = client.call(&svc, &args).await.map_err(|e| e.to_string());
                                let _ = tx.send(IvrDone::Web { call, result });
                            });
                        }
                        _ => {
                            let _ = tx.send(IvrDone::Web {
                                call,
                                result: Err(format!("no web service {service}")),
                            });
                        }
                    }
                }
                Output::LookupLists { number } => {
                    let tx = self.ivr.done_tx.clone();
                    let pending = self.store.list_lookup(&number);
                    tokio::spawn(async move {
                        let lists = match pending.await {
                            Ok(lists) => lists.iter().map(|l| l.as_str().to_string()).collect(),
                            Err(e) => {
                                warn!("caller lists: {e}");
                                Vec::new()
                            }
                        };
                        let _ = tx.send(IvrDone::Lists { call, lists });
                    });
                }
                Output::RecordStart(purpose) => {
                    if let Some(c) = self.ivr.calls.get_mut(&call) {
                        c.purpose = Some((purpose, now));
                    }
                    self.calls.flow_record(call);
                    self.apply_actions().await;
                }
                Output::RecordStop => {
                    let purpose = self.ivr.calls.get_mut(&call).and_then(|c| c.purpose.take());
                    if let Some((RecordPurpose::Voicemail { mailbox }, since)) = purpose {
                        self.save_voicemail(call, mailbox, now.saturating_duration_since(since));
                    }
                }
                Output::StoreInput { name, value } => {
                    let (call_id, vocid) = self
                        .records
                        .get(&call)
                        .map(|r| (r.call_id.clone(), r.vocid.clone()))
                        .unwrap_or_default();
                    info!("call {call_id}: input {name} = {value:?}");
                    let input =
                        store::NewIvrInput { call_id, at: OffsetDateTime::now_utc(), name, value, vocid };
                    self.persist_id("a caller's input", self.store.ivr_input_add(input));
                }
                Output::Survey(answer) => {
                    let call_id = self.call_id(call);
                    let result = store::SurveyResult {
                        call_id: call_id.clone(),
                        at: OffsetDateTime::now_utc(),
                        agent_id: self.last_agent.get(&call).cloned(),
                        queue: answer.queue.clone().or_else(|| self.last_queue.get(&call).cloned()),
                        answer: match (answer.score, answer.grade) {
                            (Some(s), _) => store::SurveyAnswer::Score(s),
                            (None, g) => store::SurveyAnswer::Grade(g.unwrap_or_default()),
                        },
                    };
                    info!("call {call_id}: survey answer {:?}", result.answer);
                    self.persist_id("a survey answer", self.store.survey_add(result));
                }
                Output::Queue { queue, priority } => {
                    let route =
                        self.acd.queues().iter().position(|q| q.name == queue).map(|q| self.queue_base + q);
                    let route = route.or_else(|| self.calls.route_named(&queue));
                    let moved = route.is_some_and(|r| self.calls.flow_to_route(now, call, r, priority));
                    if moved {
                        info!("call {}: to queue {queue} (priority {priority})", self.call_id(call));
                        self.last_queue.insert(call, queue);
                    } else {
                        warn!("call {}: no queue {queue}: hanging up", self.call_id(call));
                        self.calls.flow_hangup(now, call);
                    }
                    self.apply_actions().await;
                }
                Output::Agent { agent } => {
                    let seat = self.hub.agent_seats().get(agent.as_str()).copied();
                    let ok = seat.is_some_and(|s| self.calls.flow_to_seat(now, call, s).is_ok());
                    if ok {
                        info!("call {}: to agent {agent}", self.call_id(call));
                        self.apply_actions().await;
                    } else if let Some(c) = self.ivr.calls.get_mut(&call) {
                        c.run.handle(now, Input::AgentUnavailable);
                    }
                }
                Output::Transfer { number, caller_id } => {
                    let caller = self.records.get(&call).map(|r| r.caller.clone()).unwrap_or_default();
                    let shown = caller_id.unwrap_or(caller);
                    match self.calls.forward(now, call, &number, &shown) {
                        Ok(_) => {
                            info!("call {}: transferring to {number}", self.call_id(call));
                            self.apply_actions().await;
                        }
                        Err(e) => {
                            warn!("call {}: cannot transfer to {number}: {e}", self.call_id(call));
                            if let Some(c) = self.ivr.calls.get_mut(&call) {
                                c.run.handle(now, Input::TransferFailed(e.to_string()));
                            }
                        }
                    }
                }
                Output::Hangup { cause } => {
                    info!("call {}: the flow hangs up ({cause})", self.call_id(call));
                    self.calls.flow_hangup(now, call);
                    self.apply_actions().await;
                }
                Output::Return => {
                    let back = self.ivr.calls.get(&call).and_then(|c| c.back_to);
                    let to_seat = back.is_some_and(|s| self.calls.flow_return(now, call, s));
                    if !to_seat {
                        let route = self.calls.route_of(call);
                        let queued = route.is_some_and(|r| self.calls.flow_to_route(now, call, r, 0));
                        if !queued {
                            self.calls.flow_hangup(now, call);
                        }
                    }
                    self.apply_actions().await;
                }
            }
        }
    }

    /// Tells callers waiting in queues with announcements their place in line and how long
    /// they have waited, every `announce` interval of their queue. The text goes through
    /// TTS (cached: positions and minutes repeat), and hold music resumes after it.
    pub(super) fn announce_positions(&mut self, now: Instant) {
        if self.ivr.tts.is_none() {
            return;
        }
        let positions = self.calls.queue_positions(now);
        let waiting: std::collections::HashSet<CallId> = positions.iter().map(|p| p.call).collect();
        self.last_announced.retain(|c, _| waiting.contains(c));
        for p in positions {
            let Some(every) = self.calls.route(p.route).and_then(|r| r.flows.announce) else { continue };
            let last = *self.last_announced.entry(p.call).or_insert(now);
            if now.saturating_duration_since(last) < every {
                continue;
            }
            self.last_announced.insert(p.call, now);
            let minutes = p.waited.as_secs() / 60;
            let text = match self.ivr.lang {
                Lang::Zh => format!("您前面还有{}位客户，您已等待{}分钟，请稍候。", p.position - 1, minutes),
                Lang::En => format!(
                    "You are number {} in line. You have been waiting {} minute{}. Thank you for holding.",
                    p.position,
                    minutes,
                    if minutes == 1 { "" } else { "s" }
                ),
            };
            let Some(tts) = self.ivr.tts.clone() else { return };
            let key = format!("tts:{}", tts.key(&text, self.ivr.lang));
            if let Some(&id) = self.ivr.loaded.get(&key) {
                self.play_announcement(p.call, id);
                continue;
            }
            let (tx, lang, call) = (self.ivr.done_tx.clone(), self.ivr.lang, p.call);
            tokio::task::spawn_blocking(move || {
                let audio = tts.render_cached(&text, lang).map(|(_, a)| a).map_err(|e| e.to_string());
                let _ = tx.send(IvrDone::Announce { call, key, audio });
            });
        }
    }

    fn play_announcement(&mut self, call: CallId, prompt: PromptId) {
        let still_waiting = self.calls.queue_positions(Instant::now()).iter().any(|p| p.call == call);
        let Some(trunk) = self.calls.trunk_of(call).filter(|_| still_waiting) else { return };
        self.announcing.insert(trunk);
        self.notify(Notice::PromptPlayed { call: self.call_id(call), prompt: "announcement".into() });
        self.engine(EngineCmd::PlayPrompt { channel: trunk, prompt, repeat: false });
    }

    /// An announcement ended: back to the music, if the caller still waits.
    pub(super) fn announcement_done(&mut self, channel: ChannelId) -> bool {
        if !self.announcing.remove(&channel) {
            return false;
        }
        let waiting = self.calls.queue_positions(Instant::now()).iter().any(|p| p.trunk == channel);
        if waiting {
            self.engine(EngineCmd::PlayPrompt { channel, prompt: crate::media::HOLD_MUSIC, repeat: true });
        }
        true
    }

    /// The tags the flows of a call set, for the agent's Ring.
    pub(super) fn flow_tags(&self, call: CallId) -> Vec<(String, String)> {
        self.ivr.calls.get(&call).map(|c| c.run.tags().to_vec()).unwrap_or_default()
    }

    /// Stores a voicemail message under a mailbox: the call's recording (VOCID) and the
    /// message's length, from the start of the recording to `#` or the hang-up.
    fn save_voicemail(&mut self, call: CallId, mailbox: String, length: std::time::Duration) {
        let (call_id, caller, vocid) = self
            .records
            .get(&call)
            .map(|r| (r.call_id.clone(), r.caller.clone(), r.vocid.clone()))
            .unwrap_or_default();
        let Some(vocid) = vocid else {
            warn!("call {call_id}: the voicemail's recording has no VOCID: message lost");
            return;
        };
        info!("call {call_id}: voicemail for {mailbox} in recording {vocid}");
        let message = store::NewVoicemail {
            mailbox,
            call_id: Some(call_id),
            caller: Some(caller).filter(|c| !c.is_empty()),
            vocid,
            at: OffsetDateTime::now_utc(),
            duration_ms: Some(length.as_millis().min(i64::MAX as u128) as i64),
        };
        self.persist_id("a voicemail", self.store.voicemail_add(message));
    }

    /// Writes something to the store in the background, logging a failure.
    fn persist_id(&self, what: &'static str, pending: store::Pending<i64>) {
        tokio::spawn(async move {
            if let Err(e) = pending.await {
                warn!("cannot store {what}: {e}");
            }
        });
    }

    pub(super) fn flow_ended(&mut self, call: CallId) {
        // A caller who hangs up while leaving a message has left it.
        let purpose = self.ivr.calls.get_mut(&call).and_then(|c| c.purpose.take());
        if let Some((RecordPurpose::Voicemail { mailbox }, since)) = purpose {
            self.save_voicemail(call, mailbox, Instant::now().saturating_duration_since(since));
        }
        self.ivr.calls.remove(&call);
        self.pending_speech.remove(&call);
        self.last_agent.remove(&call);
        self.last_queue.remove(&call);
    }

    pub(super) fn ivr_status(&self) -> serde_json::Value {
        serde_json::json!({
            "flows": self.ivr.flows.flows.iter().map(|f| f.name.clone()).collect::<Vec<_>>(),
            "calls_in_flows": self.ivr.calls.iter().filter(|(id, _)| self.calls.is_in_flow(**id)).count(),
            "flows_started": self.ivr.started,
            "web_calls": self.ivr.web_calls,
            "web_failures": self.ivr.web_failures,
            "prompts_loaded": self.ivr.next_slot - 1,
        })
    }
}

/// Where prompt sets live in a data directory.
pub fn prompt_set_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("prompt-sets")
}
