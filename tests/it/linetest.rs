//! Line tests on the simulated card, through the real engine and the real far end: a test
//! tone and its level measured back through a far-end echo, loopback, DTMF both ways and the
//! far end's recording on idle ports, and no allocation in the tick while they run.

use std::sync::Arc;

use switchboard::audio::recorder::RecBlock;
use switchboard::dsp::level::LevelMeter;
use switchboard::dsp::tone::ToneZone;
use switchboard::media::{Engine, EngineCmd, EngineConfig, EngineEvent, LevelReport, Prompts};
use switchboard::sim::{Disconnect, FarCommand, FarEndHandle, FarEndSim, FarReport};
use switchboard_driver_api::{ChannelId, Pacing};
use switchboard_driver_sim::{SimCard, SimConfig};

use crate::allocations_during;

const TRUNK: ChannelId = ChannelId(0);
const SEAT: ChannelId = ChannelId(2);
/// The first bearer of the E1 span.
const BEARER: ChannelId = ChannelId(4);

struct Rig {
    engine: Engine<SimCard<FarEndSim>>,
    ends: switchboard::media::EngineEnds,
    far: FarEndHandle,
    rec: rtrb::Consumer<RecBlock>,
    events: Vec<EngineEvent>,
    reports: Vec<FarReport>,
}

/// Two trunks, two seats and an E1 span, all idle; seat phones answer only on command.
fn rig(echo_canceller: bool) -> Rig {
    let sim = SimConfig {
        trunk_ports: 2,
        seat_ports: 2,
        e1_spans: 1,
        pacing: Pacing::FreeRunning,
        ..SimConfig::default()
    };
    let info = switchboard_driver_sim::describe(&sim);
    let (far, far_handle) = FarEndSim::new(&info.channels, &ToneZone::china(), None, Disconnect::LoopDrop);
    let (rec_tx, rec) = rtrb::RingBuffer::new(10_000);
    let config = EngineConfig { echo_canceller, realtime: false, ..EngineConfig::default() };
    let (engine, ends) =
        Engine::new(SimCard::new(sim, far), &config, Arc::new(Prompts::default()), Some(rec_tx));
    Rig {
        engine,
        ends,
        far: far_handle,
        rec,
        events: Vec::with_capacity(100_000),
        reports: Vec::with_capacity(100_000),
    }
}

impl Rig {
    fn run(&mut self, ticks: u32) {
        for _ in 0..ticks {
            self.engine.tick().unwrap();
            while let Ok(e) = self.ends.events.pop() {
                self.events.push(e);
            }
            while let Ok(r) = self.far.reports.pop() {
                self.reports.push(r);
            }
            while self.rec.pop().is_ok() {}
        }
    }

    fn cmd(&mut self, c: EngineCmd) {
        self.ends.commands.push(c).unwrap();
    }

    fn far(&mut self, c: FarCommand) {
        self.far.commands.push(c).unwrap();
    }

    fn clear(&mut self) {
        self.events.clear();
        self.reports.clear();
    }

    /// Measures what `channel` receives over `blocks` blocks and returns the report.
    fn measure(&mut self, channel: ChannelId, freq_hz: u16, blocks: u16) -> LevelReport {
        self.clear();
        self.cmd(EngineCmd::MeasureLevel { channel, freq_hz, blocks });
        self.run(u32::from(blocks));
        let got: Vec<_> = self
            .events
            .iter()
            .filter_map(|e| match e {
                EngineEvent::Level { channel: c, level } if *c == channel => Some(*level),
                _ => None,
            })
            .collect();
        assert_eq!(got.len(), 1, "one report after {blocks} blocks: {:?}", self.events);
        got[0]
    }

    fn loopback(&mut self, channel: ChannelId, on: bool) {
        let mut sources = heapless::Vec::new();
        if on {
            sources.push(channel).unwrap();
        }
        self.cmd(EngineCmd::Listen { channel, sources });
    }

    /// The digits the engine detected on `channel`.
    fn detected(&self, channel: ChannelId) -> String {
        self.events
            .iter()
            .filter_map(|e| match e {
                EngineEvent::Dtmf { channel: c, digit } if *c == channel => Some(*digit),
                _ => None,
            })
            .collect()
    }

    /// The digits the far end of `channel` heard.
    fn far_heard(&self, channel: ChannelId) -> String {
        self.reports
            .iter()
            .filter_map(|r| match r {
                FarReport::HeardDigit { channel: c, digit } if *c == channel => Some(*digit),
                _ => None,
            })
            .collect()
    }
}

fn within(report: &LevelReport, cdbm0: i32, tolerance: i32) -> bool {
    (report.total_cdbm0 - cdbm0).abs() <= tolerance && (report.tone_cdbm0 - cdbm0).abs() <= tolerance
}

#[test]
fn a_test_tone_returned_by_the_far_end_reads_its_loss_down() {
    for echo_canceller in [false, true] {
        let mut r = rig(echo_canceller);
        for channel in [TRUNK, SEAT, BEARER] {
            // A loop-back plug with 6 dB of loss at the far end of the idle port.
            r.far(FarCommand::Echo { channel, loss_db: Some(6) });
            r.cmd(EngineCmd::PlayTestTone { channel, freq_hz: 1004, level_dbm0: -10 });
            r.run(5);
            let level = r.measure(channel, 1004, 50);
            assert!(within(&level, -1600, 50), "{channel} (canceller {echo_canceller}): {level:?}");
            assert_eq!(level.blocks, 50);
            // Another loss.
            r.far(FarCommand::Echo { channel, loss_db: Some(20) });
            r.run(2);
            let level = r.measure(channel, 1004, 10);
            assert!(within(&level, -3000, 50), "{channel}: {level:?}");
            // The plug pulled: the line is quiet, though the tone still goes out.
            r.far(FarCommand::Echo { channel, loss_db: None });
            r.run(2);
            let level = r.measure(channel, 1004, 25);
            assert!(level.total_cdbm0 < -6000 && level.tone_cdbm0 < -6000, "{channel}: {level:?}");
            r.cmd(EngineCmd::StopPlay { channel });
        }
    }
}

#[test]
fn a_loopback_sends_the_far_ends_digits_back_to_it() {
    let mut r = rig(true);
    for channel in [TRUNK, SEAT] {
        // Without a loopback the engine hears the far end's digits and sends nothing back.
        r.clear();
        r.far(FarCommand::Dial { channel, digits: "159#".try_into().unwrap() });
        r.run(50);
        assert_eq!(r.detected(channel), "159#", "{channel}");
        assert_eq!(r.far_heard(channel), "", "{channel}");
        // With the channel listening to itself the far end hears its own digits.
        r.loopback(channel, true);
        r.clear();
        r.far(FarCommand::Dial { channel, digits: "*0D7".try_into().unwrap() });
        r.run(50);
        assert_eq!(r.detected(channel), "*0D7", "{channel}");
        assert_eq!(r.far_heard(channel), "*0D7", "{channel}");
        // And not any more once the loopback is undone.
        r.loopback(channel, false);
        r.clear();
        r.far(FarCommand::Dial { channel, digits: "42".try_into().unwrap() });
        r.run(30);
        assert_eq!((r.detected(channel).as_str(), r.far_heard(channel).as_str()), ("42", ""), "{channel}");
    }
}

#[test]
fn dtmf_goes_both_ways_on_idle_ports() {
    let mut r = rig(false);
    for channel in [TRUNK, SEAT, BEARER] {
        r.clear();
        r.cmd(EngineCmd::SendDtmf { channel, digits: "0123456789*#ABCD".try_into().unwrap() });
        r.far(FarCommand::Dial { channel, digits: "9876".try_into().unwrap() });
        r.run(200);
        assert_eq!(r.far_heard(channel), "0123456789*#ABCD", "{channel}");
        assert!(r.events.contains(&EngineEvent::DtmfSent { channel }), "{channel}");
        assert_eq!(r.detected(channel), "9876", "{channel}");
    }
}

#[test]
fn the_far_end_records_what_an_idle_port_sends() {
    let mut r = rig(false);
    for channel in [TRUNK, SEAT] {
        r.cmd(EngineCmd::PlayTestTone { channel, freq_hz: 1004, level_dbm0: -13 });
        r.run(2);
        r.far(FarCommand::Record { channel, buffer: vec![0i16; 8000].into_boxed_slice() });
        r.run(51);
        let (c, audio) = r.far.captured.pop().expect("the recording came back");
        assert_eq!((c, audio.len()), (channel, 8000));
        assert!(r.reports.contains(&FarReport::Recorded { channel }));
        let mut meter = LevelMeter::new();
        meter.start(Some(1004.0));
        meter.process(&audio);
        let reading = meter.reading();
        assert!((reading.tone_dbm0 + 13.0).abs() < 0.1, "{channel}: {reading:?}");
        assert!((reading.total_dbm0 + 13.0).abs() < 0.1, "{channel}: {reading:?}");
        r.cmd(EngineCmd::StopPlay { channel });
    }
}

#[test]
fn line_tests_do_not_allocate_in_the_tick() {
    let mut r = rig(true);
    // Warm up: every line-test feature once, so lazily built state exists.
    r.far(FarCommand::Echo { channel: TRUNK, loss_db: Some(6) });
    r.cmd(EngineCmd::PlayTestTone { channel: TRUNK, freq_hz: 1004, level_dbm0: -10 });
    r.cmd(EngineCmd::MeasureLevel { channel: TRUNK, freq_hz: 1004, blocks: 5 });
    r.loopback(SEAT, true);
    r.cmd(EngineCmd::RecordStart { channel: SEAT, slot: 1 });
    r.far(FarCommand::Dial { channel: SEAT, digits: "12".try_into().unwrap() });
    r.run(50);
    r.clear();

    let (allocations, ()) = allocations_during(|| {
        for i in 0..500u32 {
            match i % 50 {
                0 => {
                    let _ = r.ends.commands.push(EngineCmd::MeasureLevel {
                        channel: TRUNK,
                        freq_hz: 1004,
                        blocks: 20,
                    });
                    let _ = r.ends.commands.push(EngineCmd::PlayTestTone {
                        channel: BEARER,
                        freq_hz: 2000,
                        level_dbm0: -20,
                    });
                    let _ = r.far.commands.push(FarCommand::Echo { channel: BEARER, loss_db: Some(3) });
                    let _ = r
                        .far
                        .commands
                        .push(FarCommand::Dial { channel: SEAT, digits: "*9".try_into().unwrap() });
                }
                10 => {
                    // A new measurement replaces the running one.
                    let _ = r.ends.commands.push(EngineCmd::MeasureLevel {
                        channel: TRUNK,
                        freq_hz: 1004,
                        blocks: 25,
                    });
                    let _ = r.ends.commands.push(EngineCmd::MeasureLevel {
                        channel: BEARER,
                        freq_hz: 0,
                        blocks: 1,
                    });
                    let _ = r.ends.commands.push(EngineCmd::PlayTestTone {
                        channel: TRUNK,
                        freq_hz: 1004,
                        level_dbm0: -10,
                    });
                }
                25 => {
                    let mut sources = heapless::Vec::new();
                    let _ = sources.push(SEAT);
                    let _ = r.ends.commands.push(EngineCmd::Listen { channel: SEAT, sources });
                    let _ = r.ends.commands.push(EngineCmd::StopPlay { channel: BEARER });
                    let _ = r.far.commands.push(FarCommand::Echo { channel: BEARER, loss_db: None });
                    // Refused commands allocate nothing either.
                    let _ = r.ends.commands.push(EngineCmd::MeasureLevel {
                        channel: TRUNK,
                        freq_hz: 1004,
                        blocks: 0,
                    });
                }
                _ => {}
            }
            r.engine.tick().unwrap();
            while let Ok(e) = r.ends.events.pop() {
                r.events.push(e);
            }
            while let Ok(x) = r.far.reports.pop() {
                r.reports.push(x);
            }
            while r.rec.pop().is_ok() {}
        }
    });
    assert_eq!(allocations, 0, "the media tick allocated");
    // The ticks did the work: measurements came back, and the seat's far end heard its
    // digits through the loopback.
    let trunk_levels: Vec<LevelReport> = r
        .events
        .iter()
        .filter_map(|e| match e {
            EngineEvent::Level { channel, level } if *channel == TRUNK => Some(*level),
            _ => None,
        })
        .collect();
    assert_eq!(trunk_levels.len(), 10, "{trunk_levels:?}");
    assert!(trunk_levels.iter().all(|l| within(l, -1600, 50) && l.blocks == 25), "{trunk_levels:?}");
    assert_eq!(r.far_heard(SEAT), "*9".repeat(10));
}
