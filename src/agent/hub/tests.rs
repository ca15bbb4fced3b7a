//! The hub driven directly: sessions, seats, states, events and permissions.

use super::*;
use crate::agent::protocol::ServerLine;
use switchboard_driver_api::{ChannelInfo, Law};

fn card() -> CardInfo {
    let kinds = [ChannelKind::FxoTrunk, ChannelKind::FxsSeat, ChannelKind::FxsSeat];
    CardInfo {
        name: "t".into(),
        spans: vec![],
        channels: kinds
            .iter()
            .enumerate()
            .map(|(i, &kind)| ChannelInfo {
                id: ChannelId(i as u16),
                kind,
                span: 0,
                position: i as u16 + 1,
                law: Law::Alaw,
            })
            .collect(),
    }
}

fn ident(agent: &str, role: Role) -> Identity {
    Identity { agent: agent.into(), name: format!("Agent {agent}"), role }
}

struct T {
    hub: Hub,
    now: Instant,
}

impl T {
    fn new() -> T {
        T {
            hub: Hub::new(
                &card(),
                HubSettings {
                    wrap_up: Duration::from_secs(5),
                    ring_seats_without_agent: false,
                    pause_on_no_answer: true,
                },
            ),
            now: Instant::now(),
        }
    }

    fn login(&mut self, session: SessionId, agent: &str, role: Role) {
        self.hub.connect(session, "127.0.0.1".parse().unwrap());
        self.hub.logged_in(session, ident(agent, role));
    }

    fn req(&mut self, session: SessionId, request: Request) -> serde_json::Value {
        self.hub.request(self.now, session, Some(json!(1)), request);
        let mut answer = None;
        for a in self.drain() {
            if let HubAction::Send { session: s, line } = a {
                let v: serde_json::Value = serde_json::from_str(&line).unwrap();
                if s == session && v.get("ok").is_some() {
                    answer = Some(v);
                }
            }
        }
        answer.expect("a response")
    }

    fn drain(&mut self) -> Vec<HubAction> {
        std::iter::from_fn(|| self.hub.poll_action()).collect()
    }

    fn events(actions: &[HubAction], session: SessionId) -> Vec<Event> {
        actions
            .iter()
            .filter_map(|a| match a {
                HubAction::Send { session: s, line } if *s == session => match serde_json::from_str(line) {
                    Ok(ServerLine::Event(e)) => Some(e),
                    _ => None,
                },
                _ => None,
            })
            .collect()
    }
}

const SEAT: ChannelId = ChannelId(1);

#[test]
fn an_agent_opens_a_seat_and_gets_ring_talk_hangup_and_wrap_up() {
    let mut t = T::new();
    t.login(1, "1001", Role::Agent);
    let r = t.req(1, Request::OpenApp { slice_no: 2 });
    assert_eq!(r["result"]["kind"], 1);
    assert_eq!(r["result"]["stateName"], "idle");
    assert!(t.drain().is_empty());

    let mut tags = Tags::new();
    tags.set(tags::CALLERID, "83366857");
    tags.set(tags::TTYPE, "2");
    t.hub.ringing(SEAT, 7, tags, true);
    let a = t.drain();
    assert!(a.contains(&HubAction::Availability { seat: SEAT, available: false }));
    let ev = T::events(&a, 1);
    assert_eq!(ev.last().unwrap().event, EventKind::Ring);
    assert_eq!(ev.last().unwrap().s_param, "CALLERID:83366857|TTYPE:2|");
    assert_eq!(ev.last().unwrap().i_param, 1);

    t.hub.answered(SEAT, 7, Some("20261124080412-000017"));
    let ev = T::events(&t.drain(), 1);
    assert_eq!(ev.last().unwrap().event, EventKind::Talk);
    assert_eq!(ev.last().unwrap().s_param, "CALLERID:83366857|TTYPE:2|VOCID:20261124080412-000017|");
    let mask = t.req(1, Request::GetActionEnables {})["result"]["mask"].as_u64().unwrap();
    assert_eq!(mask, (1 << 2) | (1 << 3) | (1 << 5) | (1 << 6) | (1 << 10) | (1 << 14) | (1 << 16));

    t.hub.ended(t.now, 7, "caller hung up");
    let ev = T::events(&t.drain(), 1);
    let kinds: Vec<_> = ev.iter().map(|e| e.event).collect();
    assert_eq!(kinds, vec![EventKind::Hangup, EventKind::AgentState]);
    assert_eq!(ev[1].s_param, "STATE:wrap-up|AGENT:1001|");
    // Sequence numbers have no gaps.
    assert!(ev.windows(2).all(|w| w[1].seq == w[0].seq + 1));
    assert_eq!(t.hub.poll_timeout(), Some(t.now + Duration::from_secs(5)));
    t.hub.handle_timeout(t.now + Duration::from_secs(5));
    let a = t.drain();
    assert!(a.contains(&HubAction::Availability { seat: SEAT, available: true }));
}

#[test]
fn actions_not_allowed_in_the_state_change_nothing() {
    let mut t = T::new();
    t.login(1, "1001", Role::Agent);
    t.req(1, Request::OpenApp { slice_no: 2 });
    let r = t.req(1, Request::DoAction { act_id: 2, i_param: 0, s_param: String::new() });
    assert_eq!(r["error"]["code"], "not_allowed");
    assert!(t.drain().is_empty());
    let r = t.req(1, Request::DoAction { act_id: 99, i_param: 0, s_param: String::new() });
    assert_eq!(r["error"]["code"], "bad_request");
    // Pause with a reason, then resume.
    assert_eq!(t.req(1, Request::DoAction { act_id: 11, i_param: 0, s_param: "lunch".into() })["ok"], true);
    let r = t.req(1, Request::GetActionEnables {});
    assert_eq!(r["result"]["mask"], (1 << 12) | (1 << 16) | (1 << 17));
    assert_eq!(t.req(1, Request::DoAction { act_id: 12, i_param: 0, s_param: String::new() })["ok"], true);
}

#[test]
fn a_seat_has_one_agent_and_a_reconnecting_agent_gets_it_back() {
    let mut t = T::new();
    t.login(1, "1001", Role::Agent);
    t.login(2, "1002", Role::Agent);
    t.req(1, Request::OpenApp { slice_no: 2 });
    assert_eq!(t.req(2, Request::OpenApp { slice_no: 2 })["error"]["code"], "seat_busy");
    assert_eq!(t.req(2, Request::OpenApp { slice_no: 1 })["error"]["code"], "no_such_seat");
    t.hub.disconnect(1);
    t.login(3, "1001", Role::Agent);
    assert_eq!(t.req(3, Request::GetActionEnables {})["ok"], true, "the seat came back without OpenApp");
    // Logging in again elsewhere closes the older connection.
    t.login(4, "1001", Role::Agent);
    assert!(t.drain().iter().any(|a| matches!(a, HubAction::Close { session: 3, .. })));
}

#[test]
fn supervisor_controls_are_checked_on_the_server_and_audited() {
    let mut t = T::new();
    t.login(1, "1001", Role::Agent);
    t.login(2, "9001", Role::Supervisor);
    t.req(1, Request::OpenApp { slice_no: 2 });
    let r = t.req(1, Request::DoControl { target: 2, control: 6, i_param: 0, s_param: String::new() });
    assert_eq!(r["error"]["code"], "forbidden");
    let force_state = Request::DoControl { target: 2, control: 7, i_param: 7, s_param: String::new() };
    t.hub.request(t.now, 2, None, force_state);
    let a = t.drain();
    assert!(a.iter().any(|x| matches!(x, HubAction::Audit { actor, result: "ok", .. } if actor == "9001")));
    assert_eq!(T::events(&a, 1).last().unwrap().s_param, "STATE:paused|REASON:forced by 9001|AGENT:1001|");
    t.hub.request(
        t.now,
        1,
        None,
        Request::DoControl { target: 2, control: 6, i_param: 0, s_param: String::new() },
    );
    assert!(t.drain().iter().any(|x| matches!(x, HubAction::Audit { result: "denied", .. })));
    assert_eq!(
        t.req(2, Request::DoControl { target: 2, control: 6, i_param: 0, s_param: String::new() })["ok"],
        true
    );
    assert_eq!(t.req(1, Request::GetActionEnables {})["error"]["code"], "not_logged_in");
}

#[test]
fn an_agent_who_lets_a_call_ring_out_is_paused() {
    let mut t = T::new();
    t.login(1, "1001", Role::Agent);
    t.req(1, Request::OpenApp { slice_no: 2 });
    t.hub.ringing(SEAT, 9, Tags::new(), true);
    t.drain();
    t.hub.no_answer(SEAT, 9);
    let a = t.drain();
    let ev = T::events(&a, 1);
    assert_eq!(ev[0].s_param, "CAUSE:not answered|");
    assert_eq!(ev[1].s_param, "STATE:paused|REASON:no answer|AGENT:1001|");
    assert!(!a.contains(&HubAction::Availability { seat: SEAT, available: true }));
}

#[test]
fn messages_reach_the_members_of_a_group() {
    let mut t = T::new();
    t.hub.set_groups(HashMap::from([("sales".to_string(), vec!["1001".to_string(), "1002".to_string()])]));
    t.login(1, "1001", Role::Agent);
    t.req(1, Request::OpenApp { slice_no: 2 });
    t.login(2, "1002", Role::Agent);
    t.login(3, "1003", Role::Agent);
    t.drain();
    t.hub.request(
        t.now,
        1,
        Some(json!(1)),
        Request::DoAction { act_id: 16, i_param: 1, s_param: "sales|meeting at 3".into() },
    );
    let actions = t.drain();
    let to_member = T::events(&actions, 2);
    assert_eq!(to_member.len(), 1);
    assert_eq!(to_member[0].event, EventKind::Message);
    assert_eq!(to_member[0].s_param, "FROM:1001|TEXT:meeting at 3|");
    assert!(T::events(&actions, 3).is_empty(), "1003 is not in the group");
    assert!(T::events(&actions, 1).is_empty(), "not back to the sender");
    let r = t.req(1, Request::DoAction { act_id: 16, i_param: 1, s_param: "nobody|hi".into() });
    assert_eq!(r["error"]["code"], "not_allowed", "{r}");
    let r = t.req(1, Request::DoAction { act_id: 16, i_param: 1, s_param: "no separator".into() });
    assert_eq!(r["error"]["code"], "bad_request", "{r}");
}
