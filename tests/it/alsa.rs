//! A headset on the appliance as an agent's seat, end to end: the daemon runs the simulated
//! card with a sound device on the same clock, and the sound device is real alsa-lib through
//! its `file` plugin (no sound card needed). The agent answers from the desktop (ActID 1), the
//! caller and the agent hear each other, and the desktop hangs up.

use std::path::Path;
use std::time::Duration;

use serde_json::json;
use switchboard::agent::client::AgentClient;
use switchboard::agent::protocol::EventKind;
use switchboard::dsp::dtmf::{DtmfDetector, DtmfGenerator};
use switchboard::store::Role;

use crate::harness::{eventually, Client, Daemon};

const PW: &str = "correct horse battery";

const CONFIG: &str = r#"
[card]
driver = "sim"
law = "alaw"

[sim]
trunk_ports = 1
seat_ports = 1
seat_answer_delay_ms = 0

[engine]
realtime_priority = 0

[calls]
record = true
seat_ring_timeout_s = 20

[agent]
listen = "127.0.0.1:0"
wrap_up_s = 1

[[route]]
name = "headset"
trunks = [1]
seats = [3]

# Port 3: the headset, after trunk 1 and seat phone 2.
[[sound]]
name = "headset"
capture = "plug:hs_in"
playback = "plug:hs_out"
"#;

/// The headset's microphone: silence with the digit 4 every two seconds, for a minute.
fn microphone(path: &Path) {
    let mut samples = vec![0i16; 60 * 8000];
    for chunk in samples.chunks_mut(16000) {
        let mut gen = DtmfGenerator::new(-10.0, 100, 100);
        gen.push_digits("4").expect("a DTMF digit");
        gen.fill(&mut chunk[8000..]);
    }
    let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    std::fs::write(path, bytes).expect("microphone file");
}

/// The amplitude of the `freq` component of `x` (Goertzel): a sine of amplitude A gives about A.
fn level_at(x: &[i16], freq: f64) -> f64 {
    let c = 2.0 * (std::f64::consts::TAU * freq / 8000.0).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &v in x {
        let s = f64::from(v) + c * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    (s1 * s1 + s2 * s2 - c * s1 * s2).max(0.0).sqrt() * 2.0 / x.len() as f64
}

/// The ALSA configuration: alsa-lib's own, then our two `file` PCMs over `null`.
fn alsa_config(dir: &Path) -> String {
    let conf = dir.join("asound.conf");
    let text = format!(
        "pcm.hs_in {{\n type file\n slave.pcm \"null\"\n file \"/dev/null\"\n infile \"{}\"\n format \"raw\"\n}}\n\
         pcm.hs_out {{\n type file\n slave.pcm \"null\"\n file \"{}\"\n format \"raw\"\n}}\n",
        dir.join("hs_in.raw").display(),
        dir.join("hs_out.raw").display()
    );
    std::fs::write(&conf, text).expect("asound.conf");
    format!("/usr/share/alsa/alsa.conf:{}", conf.display())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_headset_seat_rings_is_answered_from_the_desktop_and_carries_audio_both_ways() {
    let mut d = tokio::task::block_in_place(|| {
        let mut d = Daemon::prepare(CONFIG);
        microphone(&d.data().join("hs_in.raw"));
        let path = alsa_config(d.data());
        d.env.push(("ALSA_CONFIG_PATH".into(), path));
        d.add_agents(&[("1001", Role::Agent, PW)]);
        d.spawn();
        d
    });
    let mut a = AgentClient::connect(d.agent_addr()).await.expect("agent port");
    a.hello("tests").await.expect("hello");
    a.login("1001", PW).await.expect("login");
    let seat = a.open_app(3).await.expect("seat");
    assert_eq!(seat["kind"], 2, "a sound-device seat is kind 2");

    let mut caller = tokio::task::block_in_place(|| {
        let mut c = Client::connect_to(d.data());
        c.send(&json!({"id": 1, "cmd": "sim.call", "port": 1, "from": "83366857", "digits": "5",
                        "digits_delay_ms": 2500, "hangup_after": 12.0, "watch": true}));
        assert_eq!(c.recv()["ok"], true);
        c
    });
    let ring = a.wait_for(EventKind::Ring).await.expect("Ring");
    assert_eq!(ring.slice_no, 3);
    let mask = a.action_enables().await.expect("mask");
    assert_ne!(mask & (1 << 1), 0, "a ringing headset seat may be answered from the desktop: {mask:#b}");
    // Let the headset alert for a moment before answering.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    a.do_action(1, 0, "").await.expect("answer");
    a.wait_for(EventKind::Talk).await.expect("Talk");

    // The caller hears the agent's microphone (the 4s), and types a 5 after 2.5 s, which the
    // agent must hear in the headset.
    let (heard_four, sent_five) = tokio::task::block_in_place(|| {
        let (mut heard, mut sent) = (false, false);
        while let Some(n) = caller.recv_timeout(Duration::from_secs(8)) {
            if n["notice"]["port"] == 1 && n["notice"]["what"] == "heard digit 4" {
                heard = true;
            }
            if n["notice"]["port"] == 1 && n["notice"]["what"] == "digits sent" {
                sent = true;
            }
            if heard && sent {
                break;
            }
        }
        (heard, sent)
    });
    assert!(heard_four, "the caller hears the headset's microphone: {}", d.log());
    assert!(sent_five, "the caller typed their digit: {}", d.log());
    tokio::time::sleep(Duration::from_millis(500)).await;
    a.do_action(2, 0, "").await.expect("hang up from the desktop");
    let hangup = a.wait_for(EventKind::Hangup).await.expect("Hangup");
    assert!(hangup.s_param.contains("CAUSE:"), "{}", hangup.s_param);

    let cdr = tokio::task::block_in_place(|| {
        let mut cdr = None;
        eventually(Duration::from_secs(5), || {
            cdr = d.cdrs().into_iter().find(|c| c["disposition"] != "in_progress");
            cdr.is_some()
        });
        cdr
    })
    .expect("a finished CDR");
    assert_eq!(cdr["seat_port"], 3);
    assert_eq!(cdr["disposition"], "answered");

    // Stopping the daemon closes the device, which flushes the file plugin.
    tokio::task::block_in_place(|| d.terminate());
    let bytes = std::fs::read(d.data().join("hs_out.raw")).expect("headset output");
    let played: Vec<i16> = bytes.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect();
    assert!(played.len() > 8000 * 3, "the headset played {} samples", played.len());
    let mut digits = String::new();
    DtmfDetector::new().process(&played, |c| digits.push(c));
    assert!(
        digits.contains('5'),
        "the agent heard the caller's 5 in the headset: {digits:?} in {} samples; {}",
        played.len(),
        d.log()
    );
    // Before it was answered, the headset played its alert: 425 Hz for a while.
    let alerting = played.chunks_exact(160).filter(|w| level_at(w, 425.0) > 1000.0).count();
    assert!(alerting >= 20, "the headset alerted before the answer ({alerting} blocks of 425 Hz)");
}

/// A driver crate cannot use the main crate, so the ALSA driver carries its own G.711 (the
/// card trait exchanges G.711 blocks while sound devices speak linear PCM). Audio that crosses
/// the driver must be coded exactly as the engine codes it, which is bit-exact with spandsp
/// (`tests/it/dsp.rs`); this checks every input.
#[test]
fn alsa_driver_g711_matches_the_engine_for_every_input() {
    use switchboard::dsp::g711;
    use switchboard_driver_alsa::g711 as driver;
    use switchboard_driver_api::Law;
    for law in [Law::Alaw, Law::Ulaw] {
        for x in i16::MIN..=i16::MAX {
            assert_eq!(driver::encode(law, x), g711::encode(law, x), "{law:?} encode {x}");
        }
        for code in 0..=255u8 {
            assert_eq!(driver::decode(law, code), g711::decode(law, code), "{law:?} decode {code:#04x}");
        }
    }
}
