//! Flows driven faster than real time: every wait is an input the test feeds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use time::macros::datetime;

use super::flow::{Context, FlowSet, SayKind};
use super::run::{Input, Output, RecordPurpose, Run, Speak, SurveyAnswer};

fn ctx() -> Context {
    Context {
        prompt_dir: PathBuf::from("/prompts"),
        check_files: false,
        services: vec!["crm".into(), "auth".into(), "balance".into()],
        queues: vec!["sales".into(), "support".into(), "complaints".into()],
        lang: super::Lang::En,
    }
}

fn set(files: &[(&str, &str)]) -> Arc<FlowSet> {
    let files: Vec<(PathBuf, &str)> =
        files.iter().map(|(n, t)| (PathBuf::from(format!("/flows/{n}.toml")), *t)).collect();
    match FlowSet::compile(files.iter().map(|(p, t)| (p.as_path(), *t)), &ctx()) {
        Ok(s) => Arc::new(s),
        Err(e) => panic!("{}", e.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n")),
    }
}

fn errors(text: &str) -> Vec<String> {
    match FlowSet::compile(std::iter::once((Path::new("/flows/bad.toml"), text)), &ctx()) {
        Ok(_) => panic!("the flow compiled"),
        Err(e) => e.iter().map(|e| e.to_string()).collect(),
    }
}

struct Call {
    run: Run,
    now: Instant,
    out: Vec<Output>,
}

impl Call {
    fn start(set: Arc<FlowSet>, flow: &str) -> Call {
        let now = Instant::now();
        let idx = set.get(flow).expect("flow");
        let vars = BTreeMap::from([("caller".to_string(), "13800138000".to_string())]);
        let mut c =
            Call { run: Run::start(set, idx, vars, now, datetime!(2026-11-30 10:00)), now, out: Vec::new() };
        c.drain();
        c
    }

    fn drain(&mut self) {
        while let Some(o) = self.run.poll_output() {
            self.out.push(o);
        }
    }

    fn feed(&mut self, input: Input) -> &mut Self {
        self.run.handle(self.now, input);
        self.drain();
        self
    }

    fn wait(&mut self, d: Duration) -> &mut Self {
        self.now += d;
        self.run.handle_timeout(self.now);
        self.drain();
        self
    }

    fn keys(&mut self, keys: &str) -> &mut Self {
        for k in keys.chars() {
            self.feed(Input::Digit(k));
        }
        self
    }

    fn take(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.out)
    }
}

fn file(name: &str) -> Speak {
    Speak::File(PathBuf::from("/prompts").join(name))
}

const MENU: &str = r#"
start = "welcome"
[node.welcome]
type = "play"
play = ["welcome.wav"]
next = "menu"
[node.menu]
type = "menu"
play = ["menu.wav"]
keys = { "1" = "sales", "2" = "support" }
invalid = ["invalid.wav"]
no_input = ["noinput.wav"]
retries = 2
timeout_s = 5
fail = "bye"
[node.sales]
type = "set"
tags = { Dept = "sales", Caller = "${caller}" }
next = "to_sales"
[node.to_sales]
type = "queue"
queue = "sales"
[node.support]
type = "queue"
queue = "support"
priority = 3
[node.bye]
type = "hangup"
play = ["bye.wav"]
"#;

#[test]
fn a_menu_choice_sets_tags_and_queues_the_call() {
    let mut c = Call::start(set(&[("main", MENU)]), "main");
    assert_eq!(c.take(), [Output::Play(vec![file("welcome.wav")])]);
    c.feed(Input::PlayDone);
    assert_eq!(c.take(), [Output::Play(vec![file("menu.wav")])]);
    c.feed(Input::PlayDone).keys("1");
    assert_eq!(c.take(), [Output::Queue { queue: "sales".into(), priority: 0 }]);
    assert_eq!(
        c.run.tags(),
        // A set node's tags are set in name order.
        [("Caller".to_string(), "13800138000".to_string()), ("Dept".into(), "sales".into())]
    );
    assert_eq!(c.run.trail(), ["main.welcome", "main.menu", "main.sales", "main.to_sales"]);
}

#[test]
fn keys_typed_during_a_prompt_interrupt_it_and_are_kept() {
    let mut c = Call::start(set(&[("main", MENU)]), "main");
    c.take();
    // The caller knows the menu: "2" during the welcome stops it and answers the menu.
    c.keys("2");
    assert_eq!(c.take(), [Output::StopPlay, Output::Queue { queue: "support".into(), priority: 3 }]);
}

#[test]
fn invalid_keys_and_silence_are_retried_then_fail() {
    let mut c = Call::start(set(&[("main", MENU)]), "main");
    c.feed(Input::PlayDone).feed(Input::PlayDone);
    c.take();
    c.keys("9");
    assert_eq!(c.take(), [Output::Play(vec![file("invalid.wav"), file("menu.wav")])]);
    c.feed(Input::PlayDone).wait(Duration::from_secs(5));
    assert_eq!(c.take(), [Output::Play(vec![file("noinput.wav"), file("menu.wav")])]);
    // A key during the retry prompt stops it; a third failure goes to `fail`.
    c.keys("7");
    assert_eq!(c.take(), [Output::StopPlay, Output::Play(vec![file("bye.wav")])]);
    c.feed(Input::PlayDone);
    assert_eq!(c.take(), [Output::Hangup { cause: "flow hung up".into() }]);
    assert!(c.run.ended());
}

#[test]
fn no_timer_fires_early() {
    let mut c = Call::start(set(&[("main", MENU)]), "main");
    c.feed(Input::PlayDone).feed(Input::PlayDone);
    c.take();
    c.wait(Duration::from_millis(4999));
    assert!(c.take().is_empty());
    c.wait(Duration::from_millis(1));
    assert_eq!(c.take().len(), 1);
}

#[test]
fn collect_with_readback_confirmation_and_web_service() {
    let flow = r#"
start = "ask"
[node.ask]
type = "collect"
play = ["account.wav"]
var = "account"
min = 4
max = 8
readback = true
confirm = ["confirm.wav"]
next = "lookup"
fail = "bye"
[node.lookup]
type = "webservice"
service = "crm"
tags = { Account = "${account}", Level = "${level}" }
next = "balance"
fail = "sorry"
[node.balance]
type = "play"
play = ["balance.wav", "amount:${balance}"]
next = "to_sales"
[node.to_sales]
type = "queue"
queue = "sales"
[node.sorry]
type = "hangup"
play = ["sorry.wav"]
cause = "crm down"
[node.bye]
type = "hangup"
"#;
    let s = set(&[("main", flow)]);
    let mut c = Call::start(s.clone(), "main");
    c.take();
    // Too short, then a terminator ends a good one.
    c.feed(Input::PlayDone).keys("12#");
    assert_eq!(c.take(), [Output::Play(vec![file("account.wav")])]);
    c.keys("123456#");
    assert_eq!(
        c.take(),
        [
            Output::StopPlay,
            Output::Play(vec![Speak::Say {
                kind: SayKind::Digits,
                value: "123456".into(),
                lang: super::Lang::En
            }])
        ]
    );
    c.feed(Input::PlayDone);
    assert_eq!(c.take(), [Output::Play(vec![file("confirm.wav")])]);
    c.keys("1");
    let out = c.take();
    let [Output::StopPlay, Output::Web { service, args }] = &out[..] else { panic!("{out:?}") };
    assert_eq!(service, "crm");
    assert_eq!(args.get("account").map(String::as_str), Some("123456"));
    assert_eq!(args.get("caller").map(String::as_str), Some("13800138000"));
    let answer =
        BTreeMap::from([("level".to_string(), "gold".to_string()), ("balance".into(), "1234.50".into())]);
    c.feed(Input::Web(Ok(answer)));
    assert_eq!(
        c.take(),
        [Output::Play(vec![
            file("balance.wav"),
            Speak::Say { kind: SayKind::Amount, value: "1234.50".into(), lang: super::Lang::En }
        ])]
    );
    assert_eq!(
        c.run.tags(),
        [("Account".to_string(), "123456".to_string()), ("Level".into(), "gold".into())]
    );

    // The same flow with a failing service takes the failure branch.
    let mut c = Call::start(s, "main");
    c.feed(Input::PlayDone).keys("55555#");
    c.feed(Input::PlayDone).keys("1");
    c.take();
    c.feed(Input::Web(Err("crm: timed out after 3000 ms".into())));
    assert_eq!(c.take(), [Output::Play(vec![file("sorry.wav")])]);
    assert_eq!(c.run.var("error"), Some("crm: timed out after 3000 ms"));
    assert!(c.run.tags().is_empty());
}

#[test]
fn survey_scores_are_reported_and_unhappy_callers_go_to_complaints() {
    let flow = r#"
start = "ask"
[node.ask]
type = "survey"
play = ["rate.wav"]
scale = 5
unhappy_below = 3
queue = "sales"
thanks = ["thanks.wav"]
unhappy = "complain"
next = "bye"
[node.complain]
type = "queue"
queue = "complaints"
[node.bye]
type = "hangup"
"#;
    let s = set(&[("survey", flow)]);
    let mut c = Call::start(s.clone(), "survey");
    c.feed(Input::PlayDone).keys("7"); // Out of the scale: asked again.
    assert_eq!(c.take(), [Output::Play(vec![file("rate.wav")]), Output::Play(vec![file("rate.wav")])]);
    c.keys("5");
    assert_eq!(
        c.take(),
        [
            Output::StopPlay,
            Output::Survey(SurveyAnswer { score: Some(5), grade: None, queue: Some("sales".into()) }),
            Output::Play(vec![file("thanks.wav")])
        ]
    );
    c.feed(Input::PlayDone);
    assert_eq!(c.take(), [Output::Hangup { cause: "flow hung up".into() }]);

    let mut c = Call::start(s, "survey");
    c.feed(Input::PlayDone).keys("2").feed(Input::PlayDone);
    let out = c.take();
    assert!(out.contains(&Output::Queue { queue: "complaints".into(), priority: 0 }), "{out:?}");
}

#[test]
fn auth_checks_number_and_password_and_tags_the_member() {
    let flow = r#"
start = "auth"
[node.auth]
type = "auth"
play = ["member.wav"]
password = ["pin.wav"]
service = "auth"
result = "ok"
retries = 1
next = "agent"
fail = "bye"
[node.agent]
type = "queue"
queue = "sales"
[node.bye]
type = "hangup"
"#;
    let mut c = Call::start(set(&[("auth", flow)]), "auth");
    c.feed(Input::PlayDone).keys("10086#").feed(Input::PlayDone).keys("1234#");
    let web = c.take().into_iter().find_map(|o| match o {
        Output::Web { args, .. } => Some(args),
        _ => None,
    });
    let web = web.expect("a web call");
    assert_eq!((web["user"].as_str(), web["password"].as_str()), ("10086", "1234"));
    // Wrong: asked again from the number.
    c.feed(Input::Web(Ok(BTreeMap::from([("ok".to_string(), "false".to_string())]))));
    assert_eq!(c.take(), [Output::Play(vec![file("member.wav")])]);
    c.keys("10086#").feed(Input::PlayDone).keys("4321#");
    c.take();
    c.feed(Input::Web(Ok(BTreeMap::from([("ok".to_string(), "true".to_string())]))));
    assert_eq!(c.take(), [Output::Queue { queue: "sales".into(), priority: 0 }]);
    assert_eq!(c.run.tags(), [("MemberID".to_string(), "10086".to_string())]);
}

#[test]
fn filter_raises_vip_priority_and_blocks_the_blacklist() {
    let flow = r#"
start = "filter"
[node.filter]
type = "filter"
blocked = "hangup"
vip_priority = 10
next = "q"
[node.q]
type = "queue"
queue = "sales"
priority = 1
"#;
    let s = set(&[("f", flow)]);
    let mut c = Call::start(s.clone(), "f");
    assert_eq!(c.take(), [Output::LookupLists { number: "13800138000".into() }]);
    c.feed(Input::Lists(vec!["vip".into(), "member".into()]));
    assert_eq!(c.take(), [Output::Queue { queue: "sales".into(), priority: 11 }]);
    assert_eq!(c.run.tags(), [("VIP".to_string(), "1".to_string()), ("MEMBER".into(), "1".into())]);
    let mut c = Call::start(s, "f");
    c.take();
    c.feed(Input::Lists(vec!["blacklist".into()]));
    assert_eq!(c.take(), [Output::Hangup { cause: "flow ended".into() }]);
}

#[test]
fn sub_flows_return_and_a_top_level_return_goes_back() {
    let main = r#"
start = "c"
[node.c]
type = "call"
flow = "common"
next = "after"
[node.after]
type = "branch"
cases = [{ var = "checked", op = "==", value = "yes", next = "back" }]
default = "hangup"
[node.back]
type = "return"
"#;
    let common = r#"
start = "s"
[node.s]
type = "set"
vars = { checked = "yes" }
next = "r"
[node.r]
type = "return"
"#;
    let mut c = Call::start(set(&[("main", main), ("common", common)]), "main");
    assert_eq!(c.take(), [Output::Return]);
    assert_eq!(c.run.trail(), ["main.c", "common.s", "common.r", "main.after", "main.back"]);
}

#[test]
fn record_stores_the_key_with_the_recording() {
    let flow = r#"
start = "confirm"
[node.confirm]
type = "record"
play = ["terms.wav"]
name = "agree"
end_keys = "12"
next = "hangup"
"#;
    let mut c = Call::start(set(&[("r", flow)]), "r");
    assert_eq!(
        c.take(),
        [
            Output::RecordStart(RecordPurpose::Input { name: "agree".into() }),
            Output::Play(vec![file("terms.wav")])
        ]
    );
    c.keys("5"); // Not an end key: ignored, the prompt goes on.
    assert_eq!(c.take(), [Output::StopPlay]);
    c.keys("1");
    assert_eq!(
        c.take(),
        [
            Output::StoreInput { name: "agree".into(), value: "1".into() },
            Output::RecordStop,
            Output::Hangup { cause: "flow ended".into() }
        ]
    );
}

#[test]
fn schedules_and_selection_pick_the_flow() {
    let day = r#"
start = "q"
[select]
called = ["8000"]
hours = ["mon-fri 09:00-18:00"]
priority = 1
[node.q]
type = "queue"
queue = "sales"
"#;
    let night = r#"
start = "vm"
[select]
called = ["8000"]
[node.vm]
type = "voicemail"
mailbox = "sales"
"#;
    let vip = r#"
start = "q"
[select]
caller = ["139????????", "0755*"]
priority = 5
[node.q]
type = "queue"
queue = "support"
"#;
    let s = set(&[("day", day), ("night", night), ("vip", vip)]);
    let name = |i: Option<usize>| i.map(|i| s.flows[i].name.as_str());
    assert_eq!(name(s.select("8000", "13800138000", datetime!(2026-11-30 10:00))), Some("day"));
    assert_eq!(name(s.select("8000", "13800138000", datetime!(2026-11-30 20:00))), Some("night"));
    assert_eq!(name(s.select("8000", "13900139000", datetime!(2026-11-30 10:00))), Some("vip"));
    assert_eq!(name(s.select("8000", "075512345678", datetime!(2026-11-30 10:00))), Some("vip"));
    assert_eq!(name(s.select("9000", "13800138000", datetime!(2026-11-30 10:00))), None);
}

#[test]
fn voicemail_records_until_hash() {
    let flow = r#"
start = "vm"
[node.vm]
type = "voicemail"
play = ["leave.wav"]
mailbox = "${called}"
max_s = 60
"#;
    let now = Instant::now();
    let s = set(&[("vm", flow)]);
    let vars = BTreeMap::from([("called".to_string(), "8000".to_string())]);
    let mut run = Run::start(s, 0, vars, now, datetime!(2026-11-30 10:00));
    assert_eq!(run.poll_output(), Some(Output::Play(vec![file("leave.wav")])));
    run.handle(now, Input::Digit('#')); // During the greeting: not the end of a message.
    run.handle(now, Input::PlayDone);
    assert_eq!(
        run.poll_output(),
        Some(Output::RecordStart(RecordPurpose::Voicemail { mailbox: "8000".into() }))
    );
    assert_eq!(run.poll_timeout(), Some(now + Duration::from_secs(60)));
    run.handle(now, Input::Digit('#'));
    assert_eq!(run.poll_output(), Some(Output::RecordStop));
    assert_eq!(run.poll_output(), Some(Output::Hangup { cause: "flow ended".into() }));
}

#[test]
fn check_reports_unknown_types_dangling_and_unreachable_nodes_with_lines() {
    let e = errors("start = \"a\"\n[node.a]\ntype = \"plya\"\n");
    assert!(e[0].starts_with("/flows/bad.toml:3:8: key `node.a.type`: unknown node type `plya`"), "{e:?}");
    let e = errors("start = \"a\"\n[node.a]\ntype = \"goto\"\nnext = \"b\"\n");
    assert!(e[0].contains("4:8: key `node.a.next`: no node named `b`"), "{e:?}");
    let e = errors("start = \"a\"\n[node.a]\ntype = \"hangup\"\n[node.b]\ntype = \"hangup\"\n");
    assert!(e[0].contains(":4:1: key `node.b`: no node leads here"), "{e:?}");
    let e =
        errors("start = \"a\"\n[node.a]\ntype = \"play\"\nplay = [\"x.wav\"]\nkeys = { \"1\" = \"a\" }\n");
    assert!(e[0].contains("key `node.a.keys`: a `play` node has no `keys` setting"), "{e:?}");
    let e = errors("start = \"a\"\n[node.a]\ntype = \"queue\"\nqueue = \"nobody\"\n");
    assert!(e[0].contains("no queue named `nobody`"), "{e:?}");
    let e = errors(
        "start = \"a\"\n[node.a]\ntype = \"webservice\"\nservice = \"x\"\nnext = \"a\"\nfail = \"a\"\n",
    );
    assert!(e.iter().any(|e| e.contains("no web service named `x`")), "{e:?}");
    let e =
        errors("start = \"a\"\n[node.a]\ntype = \"menu\"\nplay = [\"m.wav\"]\nkeys = { \"x\" = \"a\" }\n");
    assert!(e[0].contains("`x` is not a key"), "{e:?}");
}

#[test]
fn check_finds_loops_that_never_wait() {
    let e = errors(
        r#"
start = "a"
[node.a]
type = "set"
vars = { x = "1" }
next = "b"
[node.b]
type = "branch"
cases = [{ var = "x", op = "==", value = "1", next = "a" }]
default = "hangup"
"#,
    );
    assert!(e[0].contains("the loop a -> b -> a never waits for the caller"), "{e:?}");
    // The same loop through a menu is fine.
    set(&[(
        "ok",
        r#"
start = "a"
[node.a]
type = "menu"
play = ["m.wav"]
keys = { "1" = "a" }
"#,
    )]);
}

#[test]
fn check_finds_missing_prompt_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("here.wav"), b"RIFF").unwrap();
    let ctx = Context { prompt_dir: dir.path().to_path_buf(), check_files: true, ..Context::default() };
    let text = "start = \"a\"\n[node.a]\ntype = \"play\"\nplay = [\"here.wav\", \"gone.wav\"]\n";
    let e = FlowSet::compile(std::iter::once((Path::new("f.toml"), text)), &ctx).unwrap_err();
    assert_eq!(e.len(), 1);
    assert!(e[0].to_string().contains("gone.wav does not exist"), "{}", e[0]);
    assert_eq!(e[0].line, 4);
}

#[test]
fn runaway_flows_are_stopped() {
    // Flows that call each other for ever are not caught by `check` (each call could come
    // back); at run time the interpreter stops them.
    let a = "start = \"c\"\n[node.c]\ntype = \"call\"\nflow = \"b\"\nnext = \"hangup\"\n";
    let b = "start = \"c\"\n[node.c]\ntype = \"call\"\nflow = \"a\"\nnext = \"hangup\"\n";
    let mut c = Call::start(set(&[("a", a), ("b", b)]), "a");
    assert_eq!(c.take(), [Output::Hangup { cause: "sub-flows nest too deep".into() }]);
    // And the checker does catch a loop through a sub-flow call in one flow.
    let e = errors("start = \"c\"\n[node.c]\ntype = \"call\"\nflow = \"bad\"\nnext = \"c\"\n");
    assert!(e[0].contains("the loop c -> c never waits"), "{e:?}");
}

#[test]
fn area_greet_query_and_smart_routing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("areas.csv"),
        "# prefix,region\n138,mobile\n0755,shenzhen\n075,guangdong\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("names.csv"), "13800138000,Li,Manager\n").unwrap();
    let flow = r#"
start = "area"
[node.area]
type = "area"
table = "areas.csv"
routes = { shenzhen = "own" }
next = "greet"
[node.greet]
type = "greet"
table = "names.csv"
text = "${title} ${name}, good ${daypart}"
next = "balance"
[node.balance]
type = "query"
service = "balance"
play = ["your-balance.wav"]
value = "${balance}"
say = "amount"
next = "own"
fail = "hangup"
[node.own]
type = "smartroute"
agent = "${owner}"
fail = "q"
[node.q]
type = "queue"
queue = "sales"
"#;
    let path = dir.path().join("f.toml");
    let s = Arc::new(FlowSet::compile(std::iter::once((path.as_path(), flow)), &ctx()).unwrap());
    let now = Instant::now();
    let vars = BTreeMap::from([("caller".to_string(), "13800138000".to_string())]);
    let mut run = Run::start(s.clone(), 0, vars, now, datetime!(2026-11-30 15:00));
    // Mobile numbers are tagged, and the caller is greeted by name with TTS.
    assert_eq!(run.tags(), [("AREA".to_string(), "mobile".to_string())]);
    assert_eq!(
        run.poll_output(),
        Some(Output::Play(vec![Speak::Tts {
            text: "Manager Li, good afternoon".into(),
            lang: super::Lang::En
        }]))
    );
    run.handle(now, Input::PlayDone);
    let Some(Output::Web { service, .. }) = run.poll_output() else { panic!("a web call") };
    assert_eq!(service, "balance");
    run.handle(
        now,
        Input::Web(Ok(BTreeMap::from([("balance".into(), "88.05".into()), ("owner".into(), "1002".into())]))),
    );
    assert_eq!(
        run.poll_output(),
        Some(Output::Play(vec![
            file("your-balance.wav"),
            Speak::Say { kind: SayKind::Amount, value: "88.05".into(), lang: super::Lang::En }
        ]))
    );
    run.handle(now, Input::PlayDone);
    // The customer's own agent, and the queue when they are not there.
    assert_eq!(run.poll_output(), Some(Output::Agent { agent: "1002".into() }));
    run.handle(now, Input::AgentUnavailable);
    assert_eq!(run.poll_output(), Some(Output::Queue { queue: "sales".into(), priority: 0 }));

    // A Shenzhen number goes straight to smart routing (longest prefix wins), and without
    // an owner to the queue.
    let vars = BTreeMap::from([("caller".to_string(), "075512345678".to_string())]);
    let mut run = Run::start(s, 0, vars, now, datetime!(2026-11-30 15:00));
    assert_eq!(run.tags(), [("AREA".to_string(), "shenzhen".to_string())]);
    assert_eq!(run.poll_output(), Some(Output::Queue { queue: "sales".into(), priority: 0 }));
}
