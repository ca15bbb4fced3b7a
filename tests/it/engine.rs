//! The media engine in-process, on the simulated card with the real far end: audio through
//! bridges, tones, DTMF, the recording tap, and no allocation in the tick.

use std::sync::Arc;

use switchboard::audio::recorder::RecBlock;
use switchboard::dsp::callerid::{CallerId, Format, Standard};
use switchboard::dsp::tone::{ProgressTone, ToneZone};
use switchboard::line::CallerIdMode;
use switchboard::media::{Engine, EngineCmd, EngineConfig, EngineEvent, PromptId, Prompts};
use switchboard::sim::{Disconnect, ExchangeSettings, FarCommand, FarEndHandle, FarEndSim, FarReport};
use switchboard_driver_api::{ChannelId, LineCommand, Pacing};
use switchboard_driver_sim::{SimCard, SimConfig};

use crate::allocations_during;

const TRUNK: ChannelId = ChannelId(0);
const SEAT: ChannelId = ChannelId(2);
const SEAT2: ChannelId = ChannelId(3);

struct Rig {
    engine: Engine<SimCard<FarEndSim>>,
    ends: switchboard::media::EngineEnds,
    far: FarEndHandle,
    rec: rtrb::Consumer<RecBlock>,
}

fn rig(echo: bool) -> Rig {
    let sim = SimConfig {
        trunk_ports: 2,
        seat_ports: 2,
        e1_spans: 1,
        pacing: Pacing::FreeRunning,
        ..SimConfig::default()
    };
    let info = switchboard_driver_sim::describe(&sim);
    let zone = ToneZone::china();
    let (far, far_handle) = FarEndSim::new(&info.channels, &zone, Some(200), Disconnect::LoopDrop);
    let card = SimCard::new(sim, far);
    let (rec_tx, rec_rx) = rtrb::RingBuffer::new(10_000);
    // A 300 ms prompt: a 1 kHz square-ish wave.
    let prompt: Box<[i16]> = (0..2400).map(|i| if (i / 4) % 2 == 0 { 4000 } else { -4000 }).collect();
    let prompts = Arc::new(Prompts::from_audio(vec![prompt], 1));
    let config = EngineConfig { echo_canceller: echo, realtime: false, ..EngineConfig::default() };
    let (engine, ends) = Engine::new(card, &config, prompts, Some(rec_tx));
    Rig { engine, ends, far: far_handle, rec: rec_rx }
}

impl Rig {
    fn run(&mut self, ticks: u32, events: &mut Vec<EngineEvent>, reports: &mut Vec<FarReport>) {
        for _ in 0..ticks {
            self.engine.tick().unwrap();
            while let Ok(e) = self.ends.events.pop() {
                events.push(e);
            }
            while let Ok(r) = self.far.reports.pop() {
                reports.push(r);
            }
        }
    }

    fn cmd(&mut self, c: EngineCmd) {
        self.ends.commands.push(c).unwrap();
    }
}

fn heard_digits(reports: &[FarReport], channel: ChannelId) -> String {
    reports
        .iter()
        .filter_map(|r| match r {
            FarReport::HeardDigit { channel: c, digit } if *c == channel => Some(*digit),
            _ => None,
        })
        .collect()
}

#[test]
fn a_bridged_call_carries_audio_both_ways_and_is_recorded() {
    let mut r = rig(false);
    let (mut events, mut reports) = (vec![], vec![]);
    r.far
        .commands
        .push(FarCommand::Call {
            channel: TRUNK,
            caller_id: "2468".try_into().unwrap(),
            digits: "159".try_into().unwrap(),
            digits_delay_ms: 100,
            play: None,
            hangup_after_ms: None,
        })
        .unwrap();
    r.run(150, &mut events, &mut reports);
    let cid: String = events
        .iter()
        .filter_map(|e| match e {
            EngineEvent::Dtmf { channel, digit } if *channel == TRUNK => Some(*digit),
            _ => None,
        })
        .collect();
    assert_eq!(cid, "A2468C", "DTMF caller id detected on the idle trunk");
    assert!(events.iter().any(|e| matches!(e, EngineEvent::Line(l) if l.channel == TRUNK
        && l.event == switchboard_driver_api::LineEvent::RingBegin)));

    // Answer: ring the seat, which picks up by itself, then bridge and record.
    r.cmd(EngineCmd::Line { channel: SEAT, command: LineCommand::Ring });
    r.run(20, &mut events, &mut reports);
    assert!(events.iter().any(|e| matches!(e, EngineEvent::Line(l) if l.channel == SEAT
        && l.event == switchboard_driver_api::LineEvent::OffHook)));
    r.cmd(EngineCmd::Line { channel: TRUNK, command: LineCommand::OffHook });
    r.cmd(EngineCmd::Bridge { a: TRUNK, b: SEAT });
    r.cmd(EngineCmd::RecordStart { channel: TRUNK, slot: 7 });
    events.clear();
    r.run(100, &mut events, &mut reports);
    assert_eq!(heard_digits(&reports, SEAT), "159", "the seat heard the caller's digits");

    // The agent's phone types digits back; the caller hears them.
    r.far.commands.push(FarCommand::Dial { channel: SEAT, digits: "*0".try_into().unwrap() }).unwrap();
    r.run(50, &mut events, &mut reports);
    assert_eq!(heard_digits(&reports, TRUNK), "*0");

    // Recording: both directions mixed, in order, under slot 7.
    let mut recorded = vec![];
    while let Ok(b) = r.rec.pop() {
        assert_eq!(b.slot, 7);
        recorded.extend_from_slice(&b.samples);
    }
    assert_eq!(recorded.len(), 150 * 160);
    let mut digits = String::new();
    switchboard::dsp::dtmf::DtmfDetector::new().process(&recorded, |d| digits.push(d));
    assert_eq!(digits, "159*0");
}

#[test]
fn tones_prompts_and_generated_dtmf_reach_the_far_end() {
    let mut r = rig(false);
    let (mut events, mut reports) = (vec![], vec![]);
    r.far.commands.push(FarCommand::OffHook { channel: SEAT }).unwrap();
    r.far.commands.push(FarCommand::OffHook { channel: SEAT2 }).unwrap();
    r.run(2, &mut events, &mut reports);
    r.cmd(EngineCmd::PlayTone { channel: SEAT, tone: ProgressTone::Busy });
    r.cmd(EngineCmd::SendDtmf { channel: SEAT2, digits: "73#".try_into().unwrap() });
    r.run(200, &mut events, &mut reports);
    assert!(
        reports.contains(&FarReport::HeardTone { channel: SEAT, tone: ProgressTone::Busy }),
        "{reports:?}"
    );
    assert_eq!(heard_digits(&reports, SEAT2), "73#");
    assert!(events.contains(&EngineEvent::DtmfSent { channel: SEAT2 }));

    r.cmd(EngineCmd::StopPlay { channel: SEAT });
    r.run(50, &mut events, &mut reports);
    assert!(reports.contains(&FarReport::HeardSpeech { channel: SEAT, speech: false }), "{reports:?}");
    r.cmd(EngineCmd::PlayPrompt { channel: SEAT, prompt: PromptId(0), repeat: false });
    events.clear();
    reports.clear();
    r.run(40, &mut events, &mut reports);
    assert!(events.contains(&EngineEvent::PlayDone { channel: SEAT }));
    assert!(reports.contains(&FarReport::HeardSpeech { channel: SEAT, speech: true }), "{reports:?}");

    // Bad commands are refused with a reason, not a crash.
    r.cmd(EngineCmd::PlayPrompt { channel: SEAT, prompt: PromptId(9), repeat: false });
    r.cmd(EngineCmd::Bridge { a: SEAT, b: ChannelId(999) });
    r.cmd(EngineCmd::Line { channel: TRUNK, command: LineCommand::Ring });
    events.clear();
    r.run(1, &mut events, &mut reports);
    let reasons: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            EngineEvent::CommandFailed { reason, .. } => Some(*reason),
            _ => None,
        })
        .collect();
    assert_eq!(reasons, vec!["no such prompt", "no such channel", "line command refused by the card"]);
}

#[test]
fn the_tick_never_allocates() {
    let mut r = rig(true);
    let (mut events, mut reports) = (Vec::with_capacity(100_000), Vec::with_capacity(100_000));
    // Warm up: a call in progress with every feature busy.
    r.far
        .commands
        .push(FarCommand::Call {
            channel: TRUNK,
            caller_id: "123".try_into().unwrap(),
            digits: "0123456789".try_into().unwrap(),
            digits_delay_ms: 20,
            play: None,
            hangup_after_ms: None,
        })
        .unwrap();
    r.run(120, &mut events, &mut reports);
    r.cmd(EngineCmd::Line { channel: SEAT, command: LineCommand::Ring });
    r.run(20, &mut events, &mut reports);
    r.cmd(EngineCmd::Line { channel: TRUNK, command: LineCommand::OffHook });
    r.cmd(EngineCmd::Bridge { a: TRUNK, b: SEAT });
    r.cmd(EngineCmd::RecordStart { channel: TRUNK, slot: 1 });
    r.cmd(EngineCmd::PlayTone { channel: SEAT2, tone: ProgressTone::Ringback });
    r.run(10, &mut events, &mut reports);
    // Caller id: the exchange sends FSK between the rings on the second trunk, whose window
    // is open, and the idle second seat gets a burst of its own. The messages are built
    // here, as the core builds them; cloning one allocates nothing.
    const TRUNK2: ChannelId = ChannelId(1);
    let exchange =
        ExchangeSettings { caller_id: CallerIdMode::Fsk, standard: Standard::Etsi, ring_on_ms: 1000 };
    let to_seat = CallerId { number: Some("83366857".into()), ..CallerId::default() }
        .encode(Standard::Ydt1277, Format::Mdmf)
        .unwrap();

    let before = events.len();
    let (allocations, ()) = allocations_during(|| {
        for i in 0..500u32 {
            match i {
                0 => {
                    let _ = r.far.commands.push(FarCommand::Exchange(exchange));
                    let _ = r.ends.commands.push(EngineCmd::CallerIdListen { channel: TRUNK2, on: true });
                }
                1 => {
                    let _ = r.far.commands.push(FarCommand::Call {
                        channel: TRUNK2,
                        caller_id: heapless::String::try_from("13800138000").unwrap(),
                        digits: heapless::String::new(),
                        digits_delay_ms: 0,
                        play: None,
                        hangup_after_ms: None,
                    });
                }
                100 => {
                    let _ = r
                        .ends
                        .commands
                        .push(EngineCmd::SendCallerId { channel: SEAT2, message: to_seat.clone() });
                }
                _ => {}
            }
            // Commands arrive while ticking: they must not allocate either.
            if i % 50 == 25 {
                // Rewiring a call: a supervisor joins, the call is re-bridged, recording
                // restarts. None of it may allocate.
                let mut sources = heapless::Vec::new();
                let _ = sources.push(TRUNK);
                let _ = sources.push(SEAT);
                let _ = r.ends.commands.push(EngineCmd::Listen { channel: SEAT2, sources });
                let _ = r.ends.commands.push(EngineCmd::Unbridge { channel: TRUNK });
                let _ = r.ends.commands.push(EngineCmd::Bridge { a: TRUNK, b: SEAT });
                let _ = r.ends.commands.push(EngineCmd::RecordStop { channel: TRUNK });
                let _ = r.ends.commands.push(EngineCmd::RecordStart { channel: TRUNK, slot: 1 });
                let _ = r.ends.commands.push(EngineCmd::StopPlay { channel: ChannelId(6) });
            }
            if i % 50 == 0 {
                let _ = r.ends.commands.push(EngineCmd::SendDtmf {
                    channel: ChannelId(5),
                    digits: heapless::String::try_from("12").unwrap(),
                });
                let _ =
                    r.ends.commands.push(EngineCmd::PlayTone { channel: SEAT2, tone: ProgressTone::Busy });
                let _ = r.ends.commands.push(EngineCmd::PlayPrompt {
                    channel: ChannelId(6),
                    prompt: PromptId(0),
                    repeat: true,
                });
            }
            r.engine.tick().unwrap();
            while let Ok(e) = r.ends.events.pop() {
                events.push(e);
            }
            while let Ok(x) = r.far.reports.pop() {
                reports.push(x);
            }
            while r.rec.pop().is_ok() {}
        }
    });
    assert_eq!(allocations, 0, "the media tick allocated");
    // The ticks did real work: the caller's digits were detected.
    let digits: String = events[before..]
        .iter()
        .filter_map(|e| match e {
            EngineEvent::Dtmf { channel, digit } if *channel == TRUNK => Some(*digit),
            _ => None,
        })
        .collect();
    assert!(digits.len() >= 5, "digits detected during the counted ticks: {digits:?}");
    // And the caller id went both ways.
    let received: Vec<_> = events[before..]
        .iter()
        .filter_map(|e| match e {
            EngineEvent::CallerId { channel, message } if *channel == TRUNK2 => Some(message.body().to_vec()),
            _ => None,
        })
        .collect();
    assert_eq!(received, vec![b"\x02\x0b13800138000".to_vec()]);
    let stats = r.ends.stats.snapshot();
    assert_eq!((stats.caller_id_received, stats.caller_id_sent), (1, 1));
    assert_eq!(stats.ticks, 650);
}

#[test]
fn a_full_event_ring_counts_losses_instead_of_blocking() {
    let sim =
        SimConfig { trunk_ports: 1, seat_ports: 1, pacing: Pacing::FreeRunning, ..SimConfig::default() };
    let info = switchboard_driver_sim::describe(&sim);
    let (far, mut far_handle) =
        FarEndSim::new(&info.channels, &ToneZone::china(), Some(0), Disconnect::LoopDrop);
    let card = SimCard::new(sim, far);
    let config = EngineConfig { realtime: false, event_capacity: 4, ..EngineConfig::default() };
    let (mut engine, ends) = Engine::new(card, &config, Arc::new(Prompts::default()), None);
    far_handle
        .commands
        .push(FarCommand::Call {
            channel: TRUNK,
            caller_id: "0123456789".try_into().unwrap(),
            digits: heapless::String::new(),
            digits_delay_ms: 0,
            play: None,
            hangup_after_ms: None,
        })
        .unwrap();
    for _ in 0..300 {
        engine.tick().unwrap();
    }
    // 12 caller-id digits and ring events; only 4 fit; the rest are counted.
    assert_eq!(ends.events.slots(), 4);
    assert!(ends.stats.snapshot().events_dropped >= 8);
}
