//! The simulated card: FXO trunk ports, FXS seat ports and E1 spans in memory, clocked like
//! real hardware, with a far end on every port.
//!
//! The card simulates the *line*: the exchange's ringing cadence on trunk ports, loop current
//! and its drop when the far end releases, the phone's hook switch on seat ports, and the
//! 20 ms clock. What the far end *does* (answer after a delay, type digits, play a WAV, listen
//! for tones) is supplied by a [`FarEnd`] implementation, because that behaviour needs the DSP
//! of the main crate and a driver crate must not depend on it. Everything the card does per
//! tick is allocation-free, so the media engine's no-allocation guarantee covers it.

#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use switchboard_driver_api::{
    Block, Card, CardError, CardInfo, ChannelId, ChannelInfo, ChannelKind, Law, LineCommand, LineEvent,
    Pacing, SpanInfo, SpanKind, TickIo, TICK_MICROS,
};

/// Ticks per second.
const TICKS_PER_SECOND: u32 = 50;

/// The shape of the simulated card.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimConfig {
    /// Analog trunk ports (lines from the exchange), numbered from port 1.
    pub trunk_ports: u16,
    /// Analog seat ports (phones), numbered after the trunk ports.
    pub seat_ports: u16,
    /// E1 spans, each with 30 bearer channels and one signalling channel, numbered last.
    pub e1_spans: u16,
    pub law: Law,
    pub pacing: Pacing,
    /// The exchange's ring cadence on trunk ports: (on, off) in milliseconds.
    pub ring_cadence_ms: (u32, u32),
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            trunk_ports: 4,
            seat_ports: 8,
            e1_spans: 0,
            law: Law::Alaw,
            pacing: Pacing::RealTime,
            // The Chinese exchange cadence: 1 s of ringing, 4 s of silence.
            ring_cadence_ms: (1000, 4000),
        }
    }
}

/// The state of a line as its far end sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FarLine {
    /// Nothing happening. A seat phone is on-hook; a trunk line is free.
    Idle,
    /// Trunk: the exchange is ringing our port on behalf of the far-end caller.
    /// Seat: the switch is ringing the phone.
    Alerting,
    /// Trunk: the switch seized the line without a call waiting (an outgoing call); the
    /// exchange gives dial tone. Seat: the phone is off-hook without having been rung.
    Seized,
    /// Both ends are connected.
    Connected,
    /// Trunk only: the far end released while our side still holds the line.
    Released,
}

/// What a far end asks of its line after a tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FarAction {
    None,
    /// Trunk: the far-end caller dials our port, so the exchange starts ringing it.
    /// Seat: ignored.
    Call,
    /// Seat: the phone goes off-hook (answers, or lifts the handset to dial). Trunk: ignored.
    OffHook,
    /// Trunk: the far end hangs up or abandons. Seat: the phone goes on-hook.
    Hangup,
    /// Seat: a short on-hook pulse (hook flash).
    Flash,
    /// Trunk: the party our side dialled answers; the exchange reverses the line polarity
    /// (answer supervision).
    Answer,
    /// Trunk, idle: the exchange reverses the line polarity to announce the caller id it
    /// sends before the first ring (ETSI EN 300 659-1 with line reversal).
    Reverse,
}

/// The behaviour at the far end of every port, called once per channel per tick from the
/// real-time thread. Implementations must not allocate, lock or block.
pub trait FarEnd: Send {
    /// `heard` is what the switch sent on the line during the last tick; the far end fills
    /// `say` with what it sends back (both G.711 in the card's law) and returns the hook
    /// action it wants.
    fn tick(&mut self, channel: &ChannelInfo, line: FarLine, heard: &Block, say: &mut Block) -> FarAction;
}

/// A far end that stays silent and never does anything: idle lines.
#[derive(Debug, Default)]
pub struct SilentFarEnd;

impl FarEnd for SilentFarEnd {
    fn tick(&mut self, ch: &ChannelInfo, _: FarLine, _: &Block, say: &mut Block) -> FarAction {
        *say = [ch.law.silence(); switchboard_driver_api::BLOCK_SAMPLES];
        FarAction::None
    }
}

/// Per-port line state kept by the card.
#[derive(Clone, Copy, Debug)]
struct Line {
    far: FarLine,
    /// Whether our side (the switch) holds the line off-hook (trunks) or rings it (seats).
    switch_offhook: bool,
    seat_ringing: bool,
    /// Ticks since the exchange started alerting a trunk port, for the ring cadence.
    alert_ticks: u32,
    /// Whether the ringing voltage is on in the current cadence phase.
    ring_on: bool,
}

impl Line {
    const IDLE: Line = Line {
        far: FarLine::Idle,
        switch_offhook: false,
        seat_ringing: false,
        alert_ticks: 0,
        ring_on: false,
    };
}

/// The simulated card.
pub struct SimCard<F: FarEnd> {
    info: CardInfo,
    config: SimConfig,
    lines: Vec<Line>,
    far: F,
    next_deadline: Option<Instant>,
    ticks: u64,
}

impl<F: FarEnd> SimCard<F> {
    /// Builds a card with the given shape and far end.
    pub fn new(config: SimConfig, far: F) -> SimCard<F> {
        let info = describe(&config);
        let lines = vec![Line::IDLE; info.channels.len()];
        SimCard { info, config, lines, far, next_deadline: None, ticks: 0 }
    }

    /// The far end, for inspection by tests and the daemon.
    pub fn far_end(&self) -> &F {
        &self.far
    }

    /// Ticks run so far.
    pub fn ticks(&self) -> u64 {
        self.ticks
    }

    fn ring_phase_ticks(&self) -> (u32, u32) {
        let to_ticks = |ms: u32| (ms / (1000 / TICKS_PER_SECOND)).max(1);
        (to_ticks(self.config.ring_cadence_ms.0), to_ticks(self.config.ring_cadence_ms.1))
    }

    fn pace(&mut self) {
        if self.config.pacing != Pacing::RealTime {
            return;
        }
        let tick = Duration::from_micros(TICK_MICROS);
        let now = Instant::now();
        let deadline = match self.next_deadline {
            None => now,
            Some(d) => d,
        };
        if deadline > now {
            std::thread::sleep(deadline - now);
        }
        // A late engine does not make the card deliver a burst of catch-up ticks beyond one
        // block: real hardware would have overrun its buffer, and the engine counts the miss.
        let next = deadline + tick;
        self.next_deadline = Some(if next + tick < now { now + tick } else { next });
    }

    /// Moves one line one tick forward and raises the events the switch would see.
    fn step_line(&mut self, index: usize, io: &mut TickIo) {
        let (ring_on_ticks, ring_off_ticks) = self.ring_phase_ticks();
        let ch = &self.info.channels[index];
        let id = ch.id;
        let line = &mut self.lines[index];
        let action = self.far.tick(ch, line.far, &io.tx[index], &mut io.rx[index]);

        match ch.kind {
            ChannelKind::FxoTrunk => {
                match (line.far, action) {
                    (FarLine::Idle, FarAction::Call) if !line.switch_offhook => {
                        line.far = FarLine::Alerting;
                        line.alert_ticks = 0;
                        line.ring_on = false;
                    }
                    (FarLine::Alerting, FarAction::Hangup) => {
                        if line.ring_on {
                            io.push_event(id, LineEvent::RingEnd);
                        }
                        *line = Line::IDLE;
                    }
                    (FarLine::Idle, FarAction::Reverse) if !line.switch_offhook => {
                        io.push_event(id, LineEvent::PolarityReversal);
                    }
                    (FarLine::Seized, FarAction::Answer) => {
                        line.far = FarLine::Connected;
                        io.push_event(id, LineEvent::PolarityReversal);
                    }
                    (FarLine::Connected, FarAction::Hangup) => {
                        // The exchange drops loop current when the far end releases.
                        line.far = FarLine::Released;
                        io.push_event(id, LineEvent::OnHook);
                    }
                    _ => {}
                }
                if line.far == FarLine::Alerting {
                    // The cadence starts with the ringing phase.
                    let period = ring_on_ticks + ring_off_ticks;
                    let phase = line.alert_ticks % period;
                    let on = phase < ring_on_ticks;
                    if on != line.ring_on {
                        line.ring_on = on;
                        io.push_event(id, if on { LineEvent::RingBegin } else { LineEvent::RingEnd });
                    }
                    line.alert_ticks = line.alert_ticks.saturating_add(1);
                }
            }
            ChannelKind::FxsSeat | ChannelKind::Sound => match action {
                FarAction::OffHook if matches!(line.far, FarLine::Idle | FarLine::Alerting) => {
                    line.far =
                        if line.far == FarLine::Alerting { FarLine::Connected } else { FarLine::Seized };
                    line.seat_ringing = false;
                    io.push_event(id, LineEvent::OffHook);
                }
                FarAction::Hangup if matches!(line.far, FarLine::Connected | FarLine::Seized) => {
                    *line = Line::IDLE;
                    io.push_event(id, LineEvent::OnHook);
                }
                FarAction::Flash if matches!(line.far, FarLine::Connected | FarLine::Seized) => {
                    io.push_event(id, LineEvent::Flash);
                }
                _ => {}
            },
            ChannelKind::E1Bearer | ChannelKind::E1Signalling => {}
        }
    }
}

impl<F: FarEnd> Card for SimCard<F> {
    fn info(&self) -> &CardInfo {
        &self.info
    }

    fn tick(&mut self, io: &mut TickIo) -> Result<(), CardError> {
        self.pace();
        io.events.clear();
        io.events_lost = 0;
        for index in 0..self.lines.len() {
            self.step_line(index, io);
        }
        self.ticks += 1;
        Ok(())
    }

    fn command(&mut self, channel: ChannelId, command: LineCommand) -> Result<(), CardError> {
        let index = usize::from(channel.0);
        let kind = self.info.channels.get(index).ok_or(CardError::NoSuchChannel(channel))?.kind;
        let line = &mut self.lines[index];
        let bad = || CardError::BadCommand { channel, kind: kind.name(), command };
        match (kind, command) {
            (ChannelKind::FxoTrunk, LineCommand::OffHook) => {
                line.switch_offhook = true;
                line.far = match line.far {
                    FarLine::Alerting => FarLine::Connected,
                    FarLine::Idle => FarLine::Seized,
                    other => other,
                };
                line.ring_on = false;
            }
            (ChannelKind::FxoTrunk, LineCommand::OnHook) => *line = Line::IDLE,
            (ChannelKind::FxoTrunk, LineCommand::Flash) => {}
            (ChannelKind::FxsSeat | ChannelKind::Sound, LineCommand::Ring) => {
                if line.far == FarLine::Idle {
                    line.far = FarLine::Alerting;
                    line.seat_ringing = true;
                }
            }
            // An E1 bearer has no hook: its signalling runs on the D-channel. The switch tells
            // the card when a call connects and ends on it, so that the bearer's far end
            // knows when it is in conversation.
            (ChannelKind::E1Bearer, LineCommand::OffHook) => line.far = FarLine::Connected,
            (ChannelKind::E1Bearer, LineCommand::OnHook) => *line = Line::IDLE,
            (ChannelKind::FxsSeat | ChannelKind::Sound, LineCommand::StopRing | LineCommand::OnHook) => {
                if line.far == FarLine::Alerting {
                    *line = Line::IDLE;
                }
            }
            _ => return Err(bad()),
        }
        Ok(())
    }
}

/// The channel table of a card of the given shape: trunk ports, then seat ports, then for each
/// E1 span its 30 bearer channels (timeslots 1-15 and 17-31) and its signalling channel.
pub fn describe(config: &SimConfig) -> CardInfo {
    let mut spans = Vec::new();
    let mut channels = Vec::new();
    let push = |kind, span: u16, position: u16, channels: &mut Vec<ChannelInfo>| {
        let id = ChannelId(channels.len() as u16);
        channels.push(ChannelInfo { id, kind, span, position, law: config.law });
    };
    if config.trunk_ports + config.seat_ports > 0 {
        spans.push(SpanInfo { index: 0, kind: SpanKind::Analog, name: "sim analog".into() });
        for p in 0..config.trunk_ports {
            push(ChannelKind::FxoTrunk, 0, p + 1, &mut channels);
        }
        for p in 0..config.seat_ports {
            push(ChannelKind::FxsSeat, 0, config.trunk_ports + p + 1, &mut channels);
        }
    }
    for e in 0..config.e1_spans {
        let span = spans.len() as u16;
        spans.push(SpanInfo { index: span, kind: SpanKind::E1, name: format!("sim E1 {}", e + 1) });
        for ts in 1..=31u16 {
            let kind = if ts == 16 { ChannelKind::E1Signalling } else { ChannelKind::E1Bearer };
            push(kind, span, ts, &mut channels);
        }
    }
    CardInfo { name: "sim".into(), spans, channels }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A far end driven by a list of (tick, action) pairs that records the line states.
    struct Scripted {
        script: Vec<(u64, u16, FarAction)>,
        now: u64,
        seen: Vec<(u16, FarLine)>,
    }

    impl FarEnd for Scripted {
        fn tick(&mut self, ch: &ChannelInfo, line: FarLine, _: &Block, say: &mut Block) -> FarAction {
            say.fill(ch.law.silence());
            if ch.id.0 == 0 {
                self.now += 1;
            }
            if self.seen.last() != Some(&(ch.id.port(), line)) && line != FarLine::Idle {
                self.seen.push((ch.id.port(), line));
            }
            self.script
                .iter()
                .find(|(t, p, _)| *t == self.now && *p == ch.id.port())
                .map(|s| s.2)
                .unwrap_or(FarAction::None)
        }
    }

    fn card(script: Vec<(u64, u16, FarAction)>) -> (SimCard<Scripted>, TickIo) {
        let config = SimConfig {
            trunk_ports: 1,
            seat_ports: 1,
            pacing: Pacing::FreeRunning,
            ring_cadence_ms: (1000, 4000),
            ..SimConfig::default()
        };
        let card = SimCard::new(config, Scripted { script, now: 0, seen: vec![] });
        let io = TickIo::for_card(card.info());
        (card, io)
    }

    fn run(card: &mut SimCard<Scripted>, io: &mut TickIo, ticks: u32) -> Vec<(u16, LineEvent)> {
        let mut out = vec![];
        for _ in 0..ticks {
            card.tick(io).unwrap();
            out.extend(io.events.iter().map(|e| (e.channel.port(), e.event)));
        }
        out
    }

    #[test]
    fn trunk_rings_with_cadence_until_answered() {
        let (mut card, mut io) = card(vec![(1, 1, FarAction::Call)]);
        let events = run(&mut card, &mut io, 300);
        // 300 ticks = 6 s: ring 0-1 s, silence 1-5 s, ring from 5 s.
        assert_eq!(
            events,
            vec![(1, LineEvent::RingBegin), (1, LineEvent::RingEnd), (1, LineEvent::RingBegin)]
        );
        card.command(ChannelId(0), LineCommand::OffHook).unwrap();
        assert!(run(&mut card, &mut io, 100).is_empty());
        assert_eq!(card.lines[0].far, FarLine::Connected);
    }

    #[test]
    fn an_idle_trunk_reverses_polarity_before_the_ring() {
        let (mut card, mut io) = card(vec![(1, 1, FarAction::Reverse), (10, 1, FarAction::Call)]);
        let events = run(&mut card, &mut io, 20);
        assert_eq!(events, vec![(1, LineEvent::PolarityReversal), (1, LineEvent::RingBegin)]);
    }

    #[test]
    fn far_release_drops_loop_current() {
        let (mut card, mut io) = card(vec![(1, 1, FarAction::Call), (20, 1, FarAction::Hangup)]);
        run(&mut card, &mut io, 5);
        card.command(ChannelId(0), LineCommand::OffHook).unwrap();
        let events = run(&mut card, &mut io, 30);
        assert_eq!(events, vec![(1, LineEvent::OnHook)]);
        assert_eq!(card.lines[0].far, FarLine::Released);
        card.command(ChannelId(0), LineCommand::OnHook).unwrap();
        assert_eq!(card.lines[0].far, FarLine::Idle);
    }

    #[test]
    fn seat_answers_and_hangs_up() {
        let (mut card, mut io) = card(vec![(10, 2, FarAction::OffHook), (20, 2, FarAction::Hangup)]);
        card.command(ChannelId(1), LineCommand::Ring).unwrap();
        let events = run(&mut card, &mut io, 30);
        assert_eq!(events, vec![(2, LineEvent::OffHook), (2, LineEvent::OnHook)]);
        assert!(card.far_end().seen.contains(&(2, FarLine::Alerting)));
        assert!(card.far_end().seen.contains(&(2, FarLine::Connected)));
    }

    #[test]
    fn commands_are_checked_against_the_port_kind() {
        let (mut card, _) = card(vec![]);
        assert!(matches!(card.command(ChannelId(0), LineCommand::Ring), Err(CardError::BadCommand { .. })));
        assert!(matches!(card.command(ChannelId(9), LineCommand::OffHook), Err(CardError::NoSuchChannel(_))));
    }

    #[test]
    fn e1_spans_have_thirty_bearers() {
        let info =
            describe(&SimConfig { trunk_ports: 0, seat_ports: 0, e1_spans: 2, ..SimConfig::default() });
        assert_eq!(info.channels.len(), 62);
        let bearers = info.channels.iter().filter(|c| c.kind == ChannelKind::E1Bearer).count();
        assert_eq!(bearers, 60);
        assert_eq!(info.channels[15].kind, ChannelKind::E1Signalling);
        assert_eq!(info.channels[15].position, 16);
    }
}
