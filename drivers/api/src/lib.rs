//! The card abstraction every Switchboard backend implements.
//!
//! The model follows DAHDI's: a card has spans, a span has channels, and every channel
//! exchanges one fixed-size block of G.711 samples per tick with the host. Line signalling
//! (hook state, ringing, flash, polarity, alarms) travels beside the audio as events in and
//! commands out, the way DAHDI's `DAHDI_GETEVENT` and `DAHDI_HOOK` ioctls carry it. A DAHDI
//! backend maps one channel to one `/dev/dahdi/channel` file descriptor with a 160-sample
//! block size; the simulated card implements the same trait in memory.
//!
//! This crate has no async runtime and does no allocation in the per-tick calls, because its
//! trait methods are called from the real-time media thread.

#![forbid(unsafe_code)]

use std::fmt;

/// Sampling rate of every telephony channel.
pub const SAMPLE_RATE: u32 = 8000;
/// Samples per channel per tick: 20 ms at 8 kHz.
pub const BLOCK_SAMPLES: usize = 160;
/// Duration of one tick in microseconds.
pub const TICK_MICROS: u64 = 20_000;

/// One tick of G.711-coded audio for one channel.
pub type Block = [u8; BLOCK_SAMPLES];

/// The companding law a channel carries on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Law {
    /// ITU-T G.711 A-law, the European and Chinese default.
    #[default]
    Alaw,
    /// ITU-T G.711 mu-law, North America and Japan.
    Ulaw,
}

impl Law {
    /// The code that carries silence (a linear zero) in this law, used to fill idle channels.
    pub const fn silence(self) -> u8 {
        match self {
            Law::Alaw => 0xD5,
            Law::Ulaw => 0xFF,
        }
    }
}

/// What a channel is connected to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChannelKind {
    /// An analog line from the exchange, seen from our side (we are the phone: FXO signalling).
    FxoTrunk,
    /// An analog phone connected to us (we are the exchange: FXS signalling).
    FxsSeat,
    /// A bearer channel of an E1 span.
    E1Bearer,
    /// The signalling channel of an E1 span (timeslot 16), carrying HDLC frames.
    E1Signalling,
    /// A sound device (headset) used as a seat.
    Sound,
}

impl ChannelKind {
    /// True when the channel carries audio blocks (everything but the E1 D-channel).
    pub const fn carries_audio(self) -> bool {
        !matches!(self, ChannelKind::E1Signalling)
    }

    /// A short lowercase name used in logs and configuration.
    pub const fn name(self) -> &'static str {
        match self {
            ChannelKind::FxoTrunk => "fxo",
            ChannelKind::FxsSeat => "fxs",
            ChannelKind::E1Bearer => "e1-b",
            ChannelKind::E1Signalling => "e1-d",
            ChannelKind::Sound => "sound",
        }
    }
}

/// Index of a channel on its card, from 0. Ports as users know them are numbered from 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelId(pub u16);

impl ChannelId {
    /// The 1-based port number shown to users and used in configuration.
    pub const fn port(self) -> u16 {
        self.0 + 1
    }

    /// The channel of a 1-based port number.
    pub const fn from_port(port: u16) -> Option<ChannelId> {
        if port == 0 {
            None
        } else {
            Some(ChannelId(port - 1))
        }
    }
}

impl fmt::Display for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "port {}", self.port())
    }
}

/// The kind of a span.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpanKind {
    /// A group of analog ports (FXO and/or FXS modules on one card).
    Analog,
    /// A 2048 kbit/s E1 span: 30 bearer channels and one signalling channel.
    E1,
    /// A sound device.
    Sound,
}

/// Static description of one channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelInfo {
    pub id: ChannelId,
    pub kind: ChannelKind,
    /// Span index on the card, from 0.
    pub span: u16,
    /// Position within the span, from 1 (DAHDI's `chanpos`).
    pub position: u16,
    pub law: Law,
}

/// Static description of one span.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpanInfo {
    pub index: u16,
    pub kind: SpanKind,
    pub name: String,
}

/// Static description of a card, returned once by [`Card::info`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardInfo {
    pub name: String,
    pub spans: Vec<SpanInfo>,
    pub channels: Vec<ChannelInfo>,
}

impl CardInfo {
    /// The channel of a 1-based port number, if the card has it.
    pub fn channel_of_port(&self, port: u16) -> Option<&ChannelInfo> {
        let id = ChannelId::from_port(port)?;
        self.channels.get(usize::from(id.0))
    }
}

/// Span alarms, as DAHDI reports them in `DAHDI_SPANSTAT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Alarms {
    pub red: bool,
    pub yellow: bool,
    pub blue: bool,
    pub loss_of_signal: bool,
}

impl Alarms {
    pub const fn any(self) -> bool {
        self.red || self.yellow || self.blue || self.loss_of_signal
    }
}

/// A line signalling event raised by the card, DAHDI's `DAHDI_EVENT_*` family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineEvent {
    /// FXO: ringing voltage started on the line (DAHDI_EVENT_RINGBEGIN).
    RingBegin,
    /// FXO: ringing voltage stopped (end of one ring burst).
    RingEnd,
    /// FXS: the phone went off-hook. FXO: loop current appeared after we went off-hook.
    OffHook,
    /// FXS: the phone went on-hook. FXO: loop current dropped (the far end released).
    OnHook,
    /// FXS: a short on-hook pulse from the phone (hook flash, DAHDI_EVENT_WINKFLASH).
    Flash,
    /// FXO: the exchange reversed the line polarity (answer or release supervision).
    PolarityReversal,
    /// The span raised or changed alarms.
    Alarm(Alarms),
    /// The span's alarms cleared.
    AlarmCleared,
}

/// A signalling command for a channel, DAHDI's `DAHDI_HOOK` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineCommand {
    /// FXO: seize the line (answer an incoming call or start an outgoing one).
    OffHook,
    /// FXO: release the line. FXS: stop ringing.
    OnHook,
    /// FXS: start ringing with the zone's cadence.
    Ring,
    /// FXS: stop ringing without changing anything else.
    StopRing,
    /// FXO: send a hook flash to the exchange.
    Flash,
}

/// A line event tagged with the channel that raised it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelEvent {
    pub channel: ChannelId,
    pub event: LineEvent,
}

/// Capacity of the per-tick event list. A card that raises more events in one tick counts
/// the extra ones as lost instead of allocating.
pub const MAX_EVENTS_PER_TICK: usize = 64;

/// The buffers exchanged with a card on every tick. They are allocated once, sized for the
/// card, and reused, so a tick allocates nothing.
#[derive(Debug)]
pub struct TickIo {
    /// Audio received from the line on this tick, one block per channel (index = channel id).
    pub rx: Vec<Block>,
    /// Audio to send to the line, one block per channel; the card sends it on the next tick.
    pub tx: Vec<Block>,
    /// Line events raised during this tick.
    pub events: heapless::Vec<ChannelEvent, MAX_EVENTS_PER_TICK>,
    /// Events the card had to drop this tick because `events` was full.
    pub events_lost: u32,
}

impl TickIo {
    /// Buffers for a card, filled with each channel's silence code.
    pub fn for_card(info: &CardInfo) -> TickIo {
        let rx = info.channels.iter().map(|c| [c.law.silence(); BLOCK_SAMPLES]).collect();
        let tx = info.channels.iter().map(|c| [c.law.silence(); BLOCK_SAMPLES]).collect();
        TickIo { rx, tx, events: heapless::Vec::new(), events_lost: 0 }
    }

    /// Records an event, counting it as lost when this tick's list is full.
    pub fn push_event(&mut self, channel: ChannelId, event: LineEvent) {
        if self.events.push(ChannelEvent { channel, event }).is_err() {
            self.events_lost = self.events_lost.saturating_add(1);
        }
    }
}

/// How a card is clocked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Pacing {
    /// One tick every 20 ms of wall-clock time, as real hardware delivers audio.
    #[default]
    RealTime,
    /// As fast as the CPU allows, for tests and benchmarks.
    FreeRunning,
}

/// Errors a card reports.
#[derive(Debug, thiserror::Error)]
pub enum CardError {
    #[error("no such channel {0}")]
    NoSuchChannel(ChannelId),
    #[error("{command:?} is not valid on a {kind} channel ({channel})")]
    BadCommand { channel: ChannelId, kind: &'static str, command: LineCommand },
    #[error("card I/O failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the card was stopped")]
    Stopped,
}

/// A telephony card, driven by the media engine's real-time thread.
///
/// The engine calls [`Card::tick`] in a loop. A hardware backend blocks in it until the next
/// block of audio is ready (the hardware is the clock); the simulated card sleeps until the
/// next 20 ms deadline or returns at once when free-running.
pub trait Card: Send {
    /// The card's spans and channels. Stable for the card's lifetime.
    fn info(&self) -> &CardInfo;

    /// Waits for the next tick, sends `io.tx` to the lines, fills `io.rx` with what the lines
    /// sent and appends the line events raised since the last tick. Must not allocate.
    fn tick(&mut self, io: &mut TickIo) -> Result<(), CardError>;

    /// Carries out a signalling command on a channel.
    fn command(&mut self, channel: ChannelId, command: LineCommand) -> Result<(), CardError>;
}

impl<C: Card + ?Sized> Card for Box<C> {
    fn info(&self) -> &CardInfo {
        (**self).info()
    }

    fn tick(&mut self, io: &mut TickIo) -> Result<(), CardError> {
        (**self).tick(io)
    }

    fn command(&mut self, channel: ChannelId, command: LineCommand) -> Result<(), CardError> {
        (**self).command(channel, command)
    }
}

/// Several cards driven as one by one real-time thread.
///
/// The first card is the clock: its `tick` waits for the hardware. The others must have been
/// opened so that their `tick` never blocks (a sound device in slave mode, say), taking what
/// their hardware has buffered and padding or dropping to stay in step. Their channels follow
/// the first card's, in order, so ports and spans are numbered across the cards as one.
///
/// Sharing one clock is what lets a headset on the sound card talk to a trunk on the
/// telephony card: both are mixed in the same engine tick.
pub struct CompositeCard {
    cards: Vec<Box<dyn Card>>,
    info: CardInfo,
    /// Each card's own buffers, reused on every tick.
    ios: Vec<TickIo>,
    /// The first channel (and span) of each card in the combined numbering.
    offsets: Vec<(u16, u16)>,
}

impl CompositeCard {
    /// Combines cards; `cards[0]` is the clock. Fails when the channels do not fit the
    /// 16-bit channel numbering.
    pub fn new(cards: Vec<Box<dyn Card>>) -> Result<CompositeCard, CardError> {
        let mut info = CardInfo { name: String::new(), spans: Vec::new(), channels: Vec::new() };
        let mut offsets = Vec::with_capacity(cards.len());
        let mut names = Vec::new();
        for card in &cards {
            let sub = card.info();
            let too_many = || CardError::Io(std::io::Error::other("too many channels for one engine"));
            let first_channel = u16::try_from(info.channels.len()).map_err(|_| too_many())?;
            let first_span = u16::try_from(info.spans.len()).map_err(|_| too_many())?;
            offsets.push((first_channel, first_span));
            names.push(sub.name.clone());
            for span in &sub.spans {
                let mut span = span.clone();
                span.index = span.index.checked_add(first_span).ok_or_else(too_many)?;
                info.spans.push(span);
            }
            for channel in &sub.channels {
                let mut channel = channel.clone();
                channel.id = ChannelId(channel.id.0.checked_add(first_channel).ok_or_else(too_many)?);
                channel.span = channel.span.checked_add(first_span).ok_or_else(too_many)?;
                info.channels.push(channel);
            }
        }
        info.name = names.join(" + ");
        let ios = cards.iter().map(|c| TickIo::for_card(c.info())).collect();
        Ok(CompositeCard { cards, info, ios, offsets })
    }

    /// The card that owns a combined channel, and the channel's number on that card.
    fn locate(&self, channel: ChannelId) -> Option<(usize, ChannelId)> {
        let i = self.offsets.iter().rposition(|&(first, _)| first <= channel.0)?;
        let local = ChannelId(channel.0 - self.offsets[i].0);
        (usize::from(local.0) < self.cards[i].info().channels.len()).then_some((i, local))
    }
}

impl Card for CompositeCard {
    fn info(&self) -> &CardInfo {
        &self.info
    }

    fn tick(&mut self, io: &mut TickIo) -> Result<(), CardError> {
        for (i, card) in self.cards.iter_mut().enumerate() {
            let first = usize::from(self.offsets[i].0);
            let sub = &mut self.ios[i];
            let n = sub.tx.len();
            sub.tx.copy_from_slice(&io.tx[first..first + n]);
            sub.events.clear();
            sub.events_lost = 0;
            card.tick(sub)?;
            io.rx[first..first + n].copy_from_slice(&sub.rx);
            for e in &sub.events {
                io.push_event(ChannelId(e.channel.0 + self.offsets[i].0), e.event);
            }
            io.events_lost = io.events_lost.saturating_add(sub.events_lost);
        }
        Ok(())
    }

    fn command(&mut self, channel: ChannelId, command: LineCommand) -> Result<(), CardError> {
        let (i, local) = self.locate(channel).ok_or(CardError::NoSuchChannel(channel))?;
        self.cards[i].command(local, command)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_one_based() {
        assert_eq!(ChannelId(0).port(), 1);
        assert_eq!(ChannelId::from_port(1), Some(ChannelId(0)));
        assert_eq!(ChannelId::from_port(0), None);
    }

    #[test]
    fn full_event_list_counts_losses() {
        let info = CardInfo {
            name: "t".into(),
            spans: vec![],
            channels: vec![ChannelInfo {
                id: ChannelId(0),
                kind: ChannelKind::FxsSeat,
                span: 0,
                position: 1,
                law: Law::Alaw,
            }],
        };
        let mut io = TickIo::for_card(&info);
        for _ in 0..MAX_EVENTS_PER_TICK + 3 {
            io.push_event(ChannelId(0), LineEvent::OffHook);
        }
        assert_eq!(io.events.len(), MAX_EVENTS_PER_TICK);
        assert_eq!(io.events_lost, 3);
        assert_eq!(io.rx[0][0], 0xD5);
    }

    /// A card that counts its ticks and echoes what it is sent, to check the composite's
    /// numbering and buffer copying.
    struct Echo {
        info: CardInfo,
        ticks: u32,
        commands: Vec<(ChannelId, LineCommand)>,
    }

    impl Echo {
        fn new(name: &str, channels: u16) -> Echo {
            let channels = (0..channels)
                .map(|c| ChannelInfo {
                    id: ChannelId(c),
                    kind: ChannelKind::Sound,
                    span: 0,
                    position: c + 1,
                    law: Law::Alaw,
                })
                .collect();
            let spans = vec![SpanInfo { index: 0, kind: SpanKind::Sound, name: name.into() }];
            Echo { info: CardInfo { name: name.into(), spans, channels }, ticks: 0, commands: Vec::new() }
        }
    }

    impl Card for Echo {
        fn info(&self) -> &CardInfo {
            &self.info
        }
        fn tick(&mut self, io: &mut TickIo) -> Result<(), CardError> {
            self.ticks += 1;
            for (rx, tx) in io.rx.iter_mut().zip(&io.tx) {
                *rx = *tx;
            }
            io.push_event(ChannelId(0), LineEvent::OffHook);
            Ok(())
        }
        fn command(&mut self, channel: ChannelId, command: LineCommand) -> Result<(), CardError> {
            self.commands.push((channel, command));
            Ok(())
        }
    }

    #[test]
    fn a_composite_numbers_channels_across_its_cards_and_copies_their_audio() {
        let mut card =
            CompositeCard::new(vec![Box::new(Echo::new("a", 2)), Box::new(Echo::new("b", 3))]).expect("fits");
        assert_eq!(card.info().channels.len(), 5);
        assert_eq!(card.info().name, "a + b");
        assert_eq!(card.info().channels[3].id, ChannelId(3));
        assert_eq!(card.info().channels[3].span, 1);
        assert_eq!(card.info().spans[1].index, 1);
        let mut io = TickIo::for_card(card.info());
        for (i, tx) in io.tx.iter_mut().enumerate() {
            tx.fill(i as u8);
        }
        card.tick(&mut io).expect("tick");
        for (i, rx) in io.rx.iter().enumerate() {
            assert!(rx.iter().all(|&b| b == i as u8), "channel {i} came back wrong");
        }
        let channels: Vec<u16> = io.events.iter().map(|e| e.channel.0).collect();
        assert_eq!(channels, [0, 2]);
        card.command(ChannelId(4), LineCommand::Ring).expect("command");
        assert!(matches!(card.command(ChannelId(5), LineCommand::Ring), Err(CardError::NoSuchChannel(_))));
    }
}
