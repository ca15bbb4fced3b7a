//! Prompt sets: one short WAV file per item of [`items`], the words values are spoken with.
//!
//! A prompt set for a language lives in `<dir>/<lang>/<item>.wav`. It is built once with a
//! TTS engine by [`build_prompt_set`], or recorded by a voice talent under the same file
//! names (any WAV format the reader accepts); the IVR then speaks a value by playing the files
//! [`crate::speech::say`] names, one after the other.

use std::path::{Path, PathBuf};

use super::say::{items, Lang};
use super::tts::{write_wav_atomic, Tts, TtsError};
use crate::audio::read_wav;

/// Samples of a rendering that count as sound: 1/100 of its peak (40 dB down). Relative to
/// the peak, because voices and engines differ in level.
const SILENCE_BELOW_PEAK: i32 = 100;
/// Silence kept before the first sound, so soft onsets ("f", "h") are not clipped: 40 ms.
const LEAD_SAMPLES: usize = 320;
/// Silence kept after the last sound, so decays are not clipped: 60 ms.
const TAIL_SAMPLES: usize = 480;

/// The file of one item of a language's prompt set.
pub fn prompt_path(dir: &Path, lang: Lang, item: &str) -> PathBuf {
    dir.join(lang.as_str()).join(format!("{item}.wav"))
}

/// The items of a language's prompt set that have no usable file: absent, or not a WAV file
/// the reader accepts. Use it at start-up to report an incomplete prompt set before a caller
/// hears a gap in a number.
pub fn missing_items(dir: &Path, lang: Lang) -> Vec<&'static str> {
    items(lang)
        .iter()
        .map(|(item, _)| *item)
        .filter(|item| read_wav(&prompt_path(dir, lang, item)).is_err())
        .collect()
}

/// Renders the prompt set of a language with `tts` into `<dir>/<lang>/` and returns the
/// number of files written.
///
/// Items whose file already exists and reads as a WAV file are kept unless `force` is set, so
/// a half-built set can be completed and recordings a voice talent put in place are not
/// overwritten; damaged files are replaced. Each rendering has its leading and trailing
/// silence trimmed (keeping 40 ms before and 60 ms after the sound), because TTS engines pad
/// words with a few hundred milliseconds of silence and "twenty" "one" played back to back
/// would otherwise sound halting. Files are written atomically, 8 kHz mono 16-bit.
pub fn build_prompt_set(dir: &Path, lang: Lang, tts: &dyn Tts, force: bool) -> Result<usize, TtsError> {
    let lang_dir = dir.join(lang.as_str());
    std::fs::create_dir_all(&lang_dir).map_err(|source| TtsError::Io { path: lang_dir.clone(), source })?;
    let mut written = 0;
    for (item, text) in items(lang) {
        let path = prompt_path(dir, lang, item);
        if !force && read_wav(&path).is_ok() {
            continue;
        }
        let samples = tts.render(text, lang)?;
        write_wav_atomic(&path, trim_silence(&samples))?;
        written += 1;
    }
    Ok(written)
}

/// The part of a rendering from just before its first sound to just after its last. A
/// rendering without any sound is returned whole: there is nothing to find the edges of.
fn trim_silence(samples: &[i16]) -> &[i16] {
    let peak = samples.iter().map(|&s| i32::from(s).abs()).max().unwrap_or(0);
    let threshold = peak / SILENCE_BELOW_PEAK;
    let loud = |s: &i16| i32::from(*s).abs() > threshold;
    match (samples.iter().position(loud), samples.iter().rposition(loud)) {
        (Some(first), Some(last)) if peak > 0 => {
            let start = first.saturating_sub(LEAD_SAMPLES);
            let end = last.saturating_add(TAIL_SAMPLES + 1).min(samples.len());
            &samples[start..end]
        }
        _ => samples,
    }
}

#[cfg(test)]
mod tests {
    use std::f64::consts::PI;
    use std::sync::Mutex;

    use super::*;
    use crate::speech::tts::{is_8k_mono_pcm16, EspeakNg};

    /// True when an item's file has the format [`build_prompt_set`] writes.
    fn is_generated_format(dir: &Path, lang: Lang, item: &str) -> bool {
        read_wav(&prompt_path(dir, lang, item)).is_ok_and(|wav| is_8k_mono_pcm16(&wav))
    }

    /// Half a second of silence, a 100 ms tone whose pitch depends on the text, and another
    /// half second of silence; records every text it was asked for.
    #[derive(Default)]
    struct Tone {
        asked: Mutex<Vec<String>>,
    }

    impl Tts for Tone {
        fn render(&self, text: &str, _lang: Lang) -> Result<Vec<i16>, TtsError> {
            self.asked.lock().unwrap().push(text.to_owned());
            let freq = 300.0 + 10.0 * text.chars().count() as f64;
            let mut out = vec![0i16; 4000];
            out.extend((0..800).map(|i| (8000.0 * (2.0 * PI * freq * f64::from(i) / 8000.0).sin()) as i16));
            out.extend(std::iter::repeat(0).take(4000));
            Ok(out)
        }
        fn name(&self) -> &str {
            "tone"
        }
        fn check(&self) -> Result<(), TtsError> {
            Ok(())
        }
    }

    #[test]
    fn builds_every_item_once() {
        let dir = tempfile::tempdir().unwrap();
        for lang in Lang::ALL {
            let tts = Tone::default();
            assert_eq!(missing_items(dir.path(), lang).len(), items(lang).len());
            let written = build_prompt_set(dir.path(), lang, &tts, false).unwrap();
            assert_eq!(written, items(lang).len());
            let asked = tts.asked.lock().unwrap().clone();
            let texts: Vec<&str> = items(lang).iter().map(|(_, text)| *text).collect();
            assert_eq!(asked, texts);
            assert!(missing_items(dir.path(), lang).is_empty());
            for (item, _) in items(lang) {
                assert!(is_generated_format(dir.path(), lang, item), "{lang}/{item}");
            }
            // Nothing to do the second time; everything again when forced.
            assert_eq!(build_prompt_set(dir.path(), lang, &tts, false).unwrap(), 0);
            assert_eq!(build_prompt_set(dir.path(), lang, &tts, true).unwrap(), items(lang).len());
        }
        let hundred = read_wav(&prompt_path(dir.path(), Lang::Zh, "hundred")).unwrap();
        assert_eq!(hundred.sample_rate, 8000);
        // The tone with 40 ms before and 60 ms after it, not the second of padding.
        assert!((800..=800 + LEAD_SAMPLES + TAIL_SAMPLES + 2).contains(&hundred.samples.len()));
        // Only the Mandarin set is in the zh directory, with plain item file names.
        assert_eq!(std::fs::read_dir(dir.path().join("zh")).unwrap().count(), items(Lang::Zh).len());
    }

    #[test]
    fn completes_a_partial_set_and_replaces_damaged_files() {
        let dir = tempfile::tempdir().unwrap();
        let tts = Tone::default();
        build_prompt_set(dir.path(), Lang::En, &tts, false).unwrap();
        std::fs::remove_file(prompt_path(dir.path(), Lang::En, "hundred")).unwrap();
        std::fs::write(prompt_path(dir.path(), Lang::En, "month_3"), b"junk").unwrap();
        assert_eq!(missing_items(dir.path(), Lang::En), vec!["hundred", "month_3"]);
        tts.asked.lock().unwrap().clear();
        assert_eq!(build_prompt_set(dir.path(), Lang::En, &tts, false).unwrap(), 2);
        assert_eq!(*tts.asked.lock().unwrap(), vec!["hundred".to_owned(), "March".to_owned()]);
        assert!(missing_items(dir.path(), Lang::En).is_empty());
    }

    #[test]
    fn keeps_recorded_prompts_in_other_formats() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("en")).unwrap();
        // A 16 kHz recording, as a voice talent might deliver it.
        let mut bytes =
            b"RIFF\x2c\0\0\0WAVEfmt \x10\0\0\0\x01\0\x01\0\x80\x3e\0\0\0\x7d\0\0\x02\0\x10\0data\x08\0\0\0"
                .to_vec();
        bytes.extend_from_slice(&[1, 0, 2, 0, 3, 0, 4, 0]);
        let recorded = prompt_path(dir.path(), Lang::En, "0");
        std::fs::write(&recorded, &bytes).unwrap();
        let written = build_prompt_set(dir.path(), Lang::En, &Tone::default(), false).unwrap();
        assert_eq!(written, items(Lang::En).len() - 1);
        assert_eq!(std::fs::read(&recorded).unwrap(), bytes);
        assert!(!is_generated_format(dir.path(), Lang::En, "0"));
    }

    #[test]
    fn render_errors_stop_the_build() {
        let dir = tempfile::tempdir().unwrap();
        let tts = EspeakNg::new().with_program("/nonexistent/espeak-ng");
        let err = build_prompt_set(dir.path(), Lang::En, &tts, false).unwrap_err();
        assert!(matches!(err, TtsError::NotInstalled { .. }), "{err:?}");
    }

    #[test]
    fn trimming_keeps_the_sound_and_short_margins() {
        let mut x = vec![0i16; 8000];
        x[3000] = 5;
        x[4000] = 10000;
        x[4500] = -10000;
        // Below 1/100 of the peak: counted as silence.
        x[7000] = 50;
        let t = trim_silence(&x);
        assert_eq!(t.len(), 500 + 1 + LEAD_SAMPLES + TAIL_SAMPLES);
        assert_eq!(t[LEAD_SAMPLES], 10000);
        // Sound at the very edges keeps the edges; silence stays whole.
        let edge = [9000i16, 0, 0, -9000];
        assert_eq!(trim_silence(&edge), &edge);
        assert_eq!(trim_silence(&[0; 10]).len(), 10);
        assert!(trim_silence(&[]).is_empty());
    }

    #[test]
    fn espeak_renders_real_prompts() {
        let dir = tempfile::tempdir().unwrap();
        let tts = EspeakNg::new();
        for lang in Lang::ALL {
            // Every item but two is already in place, so only those two are rendered.
            build_prompt_set(dir.path(), lang, &Tone::default(), false).unwrap();
            let rendered = ["hundred", "7"];
            for item in rendered {
                std::fs::remove_file(prompt_path(dir.path(), lang, item)).unwrap();
            }
            assert_eq!(build_prompt_set(dir.path(), lang, &tts, false).unwrap(), 2, "{lang}");
            for item in rendered {
                let wav = read_wav(&prompt_path(dir.path(), lang, item)).unwrap();
                assert!(is_8k_mono_pcm16(&wav));
                let seconds = wav.samples.len() as f64 / 8000.0;
                assert!((0.15..1.5).contains(&seconds), "{lang}/{item}: {seconds} s");
                let peak = wav.samples.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
                assert!(peak > 3000, "{lang}/{item}: peak {peak}");
            }
        }
    }
}
