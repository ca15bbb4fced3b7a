//! Q.931 codec throughput: messages decoded and encoded per second, and a whole received
//! D-channel frame (FCS check, Q.921 header, Q.931 decode).
//!
//! Run with `cargo bench --bench pri -- --warm-up-time 1 --measurement-time 3`.
//! Throughput is in messages, so "elem/s" reads as messages per second.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use switchboard::pri::fcs;
use switchboard::pri::q921;
use switchboard::pri::q931::{
    Bearer, CallRef, CalledNumber, CallingNumber, Cause, ChannelIdent, ChannelSel, Message, MessageType,
    NumberType, Presentation, Screening,
};

fn setup() -> Message {
    let mut m = Message::new(MessageType::Setup, CallRef { value: 0x1234, flag: false });
    m.ies.sending_complete = true;
    m.ies.bearer = Some(Bearer::SPEECH_ALAW);
    m.ies.channel = Some(ChannelIdent { exclusive: true, sel: ChannelSel::Timeslot(17) });
    m.ies.calling = Some(CallingNumber {
        kind: NumberType { ton: 2, plan: 1 },
        presentation: Presentation::Allowed,
        screening: Screening::Network,
        digits: "0201234567".into(),
    });
    m.ies.called = Some(CalledNumber { kind: NumberType { ton: 4, plan: 1 }, digits: "5000".into() });
    m
}

fn connect() -> Message {
    let mut m = Message::new(MessageType::Connect, CallRef { value: 0x1234, flag: true });
    m.ies.channel = Some(ChannelIdent { exclusive: true, sel: ChannelSel::Timeslot(17) });
    m
}

fn disconnect() -> Message {
    let mut m = Message::new(MessageType::Disconnect, CallRef { value: 0x1234, flag: false });
    m.ies.cause = Some(Cause { location: 0, value: 16 });
    m
}

fn codec(c: &mut Criterion) {
    let mut g = c.benchmark_group("q931");
    g.throughput(Throughput::Elements(1));
    for (name, msg) in [("setup", setup()), ("connect", connect()), ("disconnect", disconnect())] {
        let bytes = msg.to_bytes();
        g.bench_function(format!("decode_{name}"), |b| {
            b.iter(|| Message::decode(black_box(&bytes)).map(|m| m.ies.skipped))
        });
        let mut out = Vec::with_capacity(128);
        g.bench_function(format!("encode_{name}"), |b| {
            b.iter(|| {
                out.clear();
                black_box(&msg).encode(&mut out);
                out.len()
            })
        });
    }
    g.finish();

    // A SETUP as it arrives from DAHDI: an I-frame from the network with its FCS.
    let mut frame = vec![0x02, 0x01, 0x00, 0x00];
    frame.extend_from_slice(&setup().to_bytes());
    fcs::append(&mut frame);
    let mut g = c.benchmark_group("dchannel");
    g.throughput(Throughput::Elements(1));
    g.bench_function("frame_fcs_q921_q931_setup", |b| {
        b.iter(|| {
            let body = fcs::verify(black_box(&frame))?;
            let parsed = q921::parse(body).ok()?;
            match parsed.frame {
                q921::Frame::I { info, .. } => Message::decode(info).ok().map(|m| m.ies.skipped),
                _ => None,
            }
        })
    });
    g.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
