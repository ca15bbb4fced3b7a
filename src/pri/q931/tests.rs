//! Codec tests: golden bytes hand-assembled from the Q.931 / EN 300 403 octet layouts, round
//! trips, and malformed input.

use super::*;

fn cr(value: u16, flag: bool) -> CallRef {
    CallRef { value, flag }
}

fn decode_ok(b: &[u8]) -> Message {
    match Message::decode(b) {
        Ok(m) => m,
        Err(e) => panic!("decode of {b:02x?} failed: {e}"),
    }
}

/// Encodes `m`, compares with `golden`, and decodes the golden bytes back to `m`.
fn golden(m: &Message, golden: &[u8]) {
    assert_eq!(m.to_bytes(), golden, "encoding of {m}");
    assert_eq!(&decode_ok(golden), m, "decoding of {golden:02x?}");
}

fn setup_message() -> Message {
    let mut m = Message::new(MessageType::Setup, cr(1, false));
    m.ies.sending_complete = true;
    m.ies.bearer = Some(Bearer::SPEECH_ALAW);
    m.ies.channel = Some(ChannelIdent { exclusive: true, sel: ChannelSel::Timeslot(1) });
    m.ies.calling = Some(CallingNumber {
        kind: NumberType { ton: 2, plan: 1 },
        presentation: Presentation::Allowed,
        screening: Screening::Network,
        digits: "020123456".into(),
    });
    m.ies.called = Some(CalledNumber { kind: NumberType { ton: 4, plan: 1 }, digits: "1234".into() });
    m
}

#[rustfmt::skip]
const SETUP: &[u8] = &[
    0x08, 0x02, 0x00, 0x01, 0x05,             // Q.931, call reference 1 from the originator, SETUP
    0xA1,                                     // sending complete
    0x04, 0x03, 0x80, 0x90, 0xA3,             // bearer: speech, circuit 64 kbit/s, G.711 A-law
    0x18, 0x03, 0xA9, 0x83, 0x81,             // channel: PRI, exclusive, B-channel units, timeslot 1
    0x6C, 0x0B, 0x21, 0x83, b'0', b'2', b'0', b'1', b'2', b'3', b'4', b'5', b'6', // national E.164, allowed, network provided
    0x70, 0x05, 0xC1, b'1', b'2', b'3', b'4', // subscriber E.164
];

#[test]
fn setup_golden() {
    golden(&setup_message(), SETUP);
}

#[test]
fn call_control_messages_golden() {
    let mut m = Message::new(MessageType::CallProceeding, cr(1, true));
    m.ies.channel = Some(ChannelIdent { exclusive: true, sel: ChannelSel::Timeslot(17) });
    golden(&m, &[0x08, 0x02, 0x80, 0x01, 0x02, 0x18, 0x03, 0xA9, 0x83, 0x91]);

    let mut m = Message::new(MessageType::Alerting, cr(1, true));
    m.ies.progress = Some(ProgressInd { location: 1, description: 8 });
    golden(&m, &[0x08, 0x02, 0x80, 0x01, 0x01, 0x1E, 0x02, 0x81, 0x88]);

    golden(&Message::new(MessageType::Connect, cr(0x1234, true)), &[0x08, 0x02, 0x92, 0x34, 0x07]);
    golden(&Message::new(MessageType::ConnectAck, cr(1, false)), &[0x08, 0x02, 0x00, 0x01, 0x0F]);
    golden(&Message::new(MessageType::SetupAck, cr(1, true)), &[0x08, 0x02, 0x80, 0x01, 0x0D]);

    let mut m = Message::new(MessageType::Disconnect, cr(1, false));
    m.ies.cause = Some(Cause { location: 0, value: 16 });
    golden(&m, &[0x08, 0x02, 0x00, 0x01, 0x45, 0x08, 0x02, 0x80, 0x90]);

    let mut m = Message::new(MessageType::Release, cr(1, true));
    m.ies.cause = Some(Cause { location: 2, value: 1 });
    golden(&m, &[0x08, 0x02, 0x80, 0x01, 0x4D, 0x08, 0x02, 0x82, 0x81]);

    let mut m = Message::new(MessageType::ReleaseComplete, cr(1, true));
    m.ies.cause = Some(Cause { location: 1, value: 17 });
    golden(&m, &[0x08, 0x02, 0x80, 0x01, 0x5A, 0x08, 0x02, 0x81, 0x91]);

    let mut m = Message::new(MessageType::Information, cr(1, false));
    m.ies.sending_complete = true;
    m.ies.called = Some(CalledNumber { kind: NumberType::default(), digits: "5".into() });
    golden(&m, &[0x08, 0x02, 0x00, 0x01, 0x7B, 0xA1, 0x70, 0x02, 0x80, b'5']);

    let mut m = Message::new(MessageType::Progress, cr(7, true));
    m.ies.progress = Some(ProgressInd { location: 2, description: 1 });
    golden(&m, &[0x08, 0x02, 0x80, 0x07, 0x03, 0x1E, 0x02, 0x82, 0x81]);

    let mut m = Message::new(MessageType::Status, cr(5, true));
    m.ies.cause = Some(Cause { location: 0, value: 30 });
    m.ies.call_state = Some(10);
    golden(&m, &[0x08, 0x02, 0x80, 0x05, 0x7D, 0x08, 0x02, 0x80, 0x9E, 0x14, 0x01, 0x0A]);

    golden(&Message::new(MessageType::StatusEnquiry, cr(5, false)), &[0x08, 0x02, 0x00, 0x05, 0x75]);

    let mut m = Message::new(MessageType::Setup, cr(2, false));
    m.ies.bearer = Some(Bearer::AUDIO_3K1_ALAW);
    m.ies.channel = Some(ChannelIdent { exclusive: false, sel: ChannelSel::Any });
    m.ies.display = Some("Bob".into());
    m.ies.calling = Some(CallingNumber {
        kind: NumberType::default(),
        presentation: Presentation::Restricted,
        screening: Screening::UserNotScreened,
        digits: "99".into(),
    });
    #[rustfmt::skip]
    let bytes = [
        0x08, 0x02, 0x00, 0x02, 0x05,
        0x04, 0x03, 0x90, 0x90, 0xA3,
        0x18, 0x01, 0xA3,
        0x28, 0x03, b'B', b'o', b'b',
        0x6C, 0x04, 0x00, 0xA0, b'9', b'9',
    ];
    golden(&m, &bytes);
}

#[test]
fn restart_golden() {
    let mut m = Message::new(MessageType::Restart, CallRef::GLOBAL);
    m.ies.restart = Some(RestartClass::AllInterfaces);
    golden(&m, &[0x08, 0x02, 0x00, 0x00, 0x46, 0x79, 0x01, 0x87]);

    // B-channel 17 is timeslot 18.
    let mut m = Message::new(MessageType::Restart, CallRef::GLOBAL);
    m.ies.channel = Some(ChannelIdent { exclusive: true, sel: ChannelSel::Timeslot(18) });
    m.ies.restart = Some(RestartClass::Indicated);
    golden(&m, &[0x08, 0x02, 0x00, 0x00, 0x46, 0x18, 0x03, 0xA9, 0x83, 0x92, 0x79, 0x01, 0x80]);

    let mut m = Message::new(MessageType::RestartAck, CallRef { value: 0, flag: true });
    m.ies.restart = Some(RestartClass::SingleInterface);
    golden(&m, &[0x08, 0x02, 0x80, 0x00, 0x4E, 0x79, 0x01, 0x86]);
}

#[test]
fn one_octet_and_empty_call_references_decode() {
    let m = decode_ok(&[0x08, 0x01, 0x85, 0x07]);
    assert_eq!(m.call_ref, cr(5, true));
    assert_eq!(m.kind, MessageType::Connect);
    let m = decode_ok(&[0x08, 0x00, 0x46, 0x79, 0x01, 0x87]);
    assert!(m.call_ref.is_global());
}

#[test]
fn unknown_elements_and_other_codesets_are_skipped() {
    let mut b = SETUP.to_vec();
    // High layer compatibility (not used here), a non-locking shift to codeset 6 with an
    // element in it, then a locking shift to codeset 5 with one more: all skipped, and the
    // called number before them still decodes.
    b.extend_from_slice(&[0x7D, 0x02, 0x91, 0x81, 0x9E, 0x01, 0x01, 0xFF, 0x95, 0x70, 0x01, 0x80]);
    let m = decode_ok(&b);
    assert_eq!(m.ies.skipped, 3);
    assert_eq!(m.ies.called.as_ref().map(|c| c.digits.as_str()), Some("1234"));
    // An element in codeset 0 after a non-locking shift is read again.
    let mut b = SETUP[..SETUP.len() - 7].to_vec();
    b.extend_from_slice(&[0x9E, 0x01, 0x01, 0xFF, 0x70, 0x02, 0x80, b'7']);
    assert_eq!(decode_ok(&b).ies.called.map(|c| c.digits), Some("7".into()));
}

#[test]
fn calling_number_without_octet_3a_is_allowed_and_unscreened() {
    let m = decode_ok(&[0x08, 0x02, 0x00, 0x01, 0x05, 0x6C, 0x03, 0x81, b'1', b'2']);
    let c = m.ies.calling.expect("calling number");
    assert_eq!(c.presentation, Presentation::Allowed);
    assert_eq!(c.screening, Screening::UserNotScreened);
    assert_eq!(c.kind, NumberType { ton: 0, plan: 1 });
    assert_eq!(c.digits, "12");
}

#[test]
fn channel_slot_map_and_interface_octet() {
    // Slot map with timeslot 5 set (four octets on an E1).
    let m = decode_ok(&[0x08, 0x02, 0x80, 0x01, 0x02, 0x18, 0x06, 0xA9, 0x93, 0x00, 0x00, 0x00, 0x20]);
    assert_eq!(m.ies.channel, Some(ChannelIdent { exclusive: true, sel: ChannelSel::Timeslot(5) }));
    // An explicit interface octet 3.1 before octets 3.2 and 3.3.
    let m = decode_ok(&[0x08, 0x02, 0x80, 0x01, 0x02, 0x18, 0x04, 0xE9, 0x80, 0x83, 0x85]);
    assert_eq!(m.ies.channel, Some(ChannelIdent { exclusive: true, sel: ChannelSel::Timeslot(5) }));
}

#[test]
fn cause_with_recommendation_and_diagnostics() {
    let m = decode_ok(&[0x08, 0x02, 0x80, 0x01, 0x5A, 0x08, 0x04, 0x02, 0x80, 0xE1, 0x05]);
    assert_eq!(m.ies.cause, Some(Cause { location: 2, value: 97 }));
}

#[test]
fn unknown_message_type_decodes_as_other() {
    let m = decode_ok(&[0x08, 0x02, 0x80, 0x01, 0x33]);
    assert_eq!(m.kind, MessageType::Other(0x33));
}

#[test]
fn malformed_messages_give_typed_errors() {
    assert_eq!(Message::decode(&[]), Err(DecodeError::TooShort(0)));
    assert_eq!(Message::decode(&[0x09, 0x02, 0x00, 0x01, 0x05]), Err(DecodeError::Discriminator(0x09)));
    assert_eq!(Message::decode(&[0x08, 0x03, 0x00, 0x00, 0x01, 0x05]), Err(DecodeError::CallRefLength(3)));
    assert_eq!(Message::decode(&[0x08, 0x02, 0x00, 0x01]), Err(DecodeError::TooShort(4)));
    // The called number says 5 octets but 2 are there.
    let e = Message::decode(&[0x08, 0x02, 0x00, 0x01, 0x05, 0x70, 0x05, 0xC1, b'1']);
    assert_eq!(e, Err(DecodeError::Truncated { id: 0x70, len: 5, left: 2 }));
    // A length octet missing altogether.
    let e = Message::decode(&[0x08, 0x02, 0x00, 0x01, 0x05, 0x70]);
    assert_eq!(e, Err(DecodeError::Truncated { id: 0x70, len: 0, left: 1 }));
    // A cause too short to hold its value.
    let e = Message::decode(&[0x08, 0x02, 0x00, 0x01, 0x45, 0x08, 0x01, 0x80]);
    assert_eq!(e, Err(DecodeError::Invalid { id: 0x08, what: "no cause value octet" }));
    // A basic-rate channel identification on a PRI.
    let e = Message::decode(&[0x08, 0x02, 0x80, 0x01, 0x02, 0x18, 0x01, 0x89]);
    assert!(matches!(e, Err(DecodeError::Invalid { id: 0x18, .. })));
    // Channel type other than B-channel units.
    let e = Message::decode(&[0x08, 0x02, 0x80, 0x01, 0x02, 0x18, 0x03, 0xA9, 0x86, 0x81]);
    assert!(matches!(e, Err(DecodeError::Invalid { id: 0x18, what: "channel type is not B-channel units" })));
    // A digit outside IA5.
    let e = Message::decode(&[0x08, 0x02, 0x00, 0x01, 0x05, 0x70, 0x02, 0x80, 0xB1]);
    assert!(matches!(e, Err(DecodeError::Invalid { id: 0x70, .. })));
    // A reserved restart class.
    let e = Message::decode(&[0x08, 0x02, 0x00, 0x00, 0x46, 0x79, 0x01, 0x83]);
    assert!(matches!(e, Err(DecodeError::Invalid { id: 0x79, .. })));
    // The error says what was wrong, naming the element.
    let e = Message::decode(&[0x08, 0x02, 0x00, 0x01, 0x05, 0x70, 0x05, 0xC1, b'1']).unwrap_err();
    assert_eq!(
        e.to_string(),
        "called party number information element (0x70) truncated: length 5, 2 octets left"
    );
}

#[test]
fn every_message_type_round_trips() {
    let kinds = [
        MessageType::Alerting,
        MessageType::CallProceeding,
        MessageType::Connect,
        MessageType::ConnectAck,
        MessageType::Progress,
        MessageType::Setup,
        MessageType::SetupAck,
        MessageType::Disconnect,
        MessageType::Release,
        MessageType::ReleaseComplete,
        MessageType::Restart,
        MessageType::RestartAck,
        MessageType::Status,
        MessageType::StatusEnquiry,
        MessageType::Information,
        MessageType::Notify,
        MessageType::Facility,
    ];
    for k in kinds {
        assert_eq!(MessageType::from_code(k.code()), k);
        let mut m = setup_message();
        m.kind = k;
        m.call_ref = cr(0x7FFF, true);
        m.ies.cause = Some(Cause { location: 4, value: 127 });
        m.ies.keypad = Some("*12#".into());
        assert_eq!(decode_ok(&m.to_bytes()), m);
    }
}
