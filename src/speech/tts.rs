//! Text to speech: the engine interface, the espeak-ng engine and a disk cache.
//!
//! An engine turns text into 8 kHz mono linear samples, the rate the media engine plays. The
//! only engine so far is [`EspeakNg`], which runs the `espeak-ng` program once per text:
//! running a program keeps a crashing or hanging synthesiser out of the daemon's address
//! space, and a timeout kills it if it hangs. [`TtsCache`] puts any engine behind a directory
//! of WAV files so that a text is rendered once, however often callers hear it.

use std::io::{self, ErrorKind, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::say::Lang;
use crate::audio::{parse_wav, read_wav, to_8k, Wav, WavError, WavFormat, WavWriter};

/// The program [`EspeakNg`] runs unless told otherwise; found on `PATH`.
pub const DEFAULT_PROGRAM: &str = "espeak-ng";
/// The English voice: American English, the voice espeak-ng speaks most clearly.
pub const DEFAULT_VOICE_EN: &str = "en-us";
/// The Mandarin voice. espeak-ng's plain `cmn` voice reads the pinyin it derives from Chinese
/// characters with English letter rules on Debian's build (你好 comes out as "nee three
/// hey-oh three"), while `cmn-latn-pinyin` speaks the same characters as Mandarin.
pub const DEFAULT_VOICE_ZH: &str = "cmn-latn-pinyin";
/// How long one rendering may take before the program is killed. espeak-ng needs well under
/// a second for a sentence; ten seconds only trips on a hung process.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The most WAV output accepted from the program, about 25 minutes at 22050 Hz: far more than
/// any prompt, small enough that a runaway process cannot exhaust memory.
const MAX_OUTPUT_BYTES: u64 = 64 << 20;
/// The most of the program's error output kept for error messages.
const MAX_STDERR_BYTES: u64 = 16 << 10;
/// How often a running program is checked for exit or timeout.
const POLL_INTERVAL: Duration = Duration::from_millis(5);
/// Texts longer than this are shortened in error messages.
const TEXT_IN_ERRORS: usize = 60;
/// Names the hashing scheme of cache keys; changing the scheme changes this, so old cache
/// files are simply never hit again instead of being mistaken for new ones.
const CACHE_KEY_VERSION: &[u8] = b"switchboard-tts-cache-v1";

/// Everything that can go wrong rendering speech or caching it. Each variant says what to do
/// about it or names the text, program or file involved.
#[derive(Debug, thiserror::Error)]
pub enum TtsError {
    #[error("espeak-ng is not installed: apt-get install espeak-ng (there is no program {program:?})")]
    NotInstalled { program: String },
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "{program} has no voice {voice:?} for language {lang}: install espeak-ng-data or configure another \
         voice (`espeak-ng --voices` lists them): {detail}"
    )]
    VoiceMissing { program: String, voice: String, lang: Lang, detail: String },
    #[error("{program} did not finish speaking {text:?} within {timeout:?} and was killed")]
    Timeout { program: String, text: String, timeout: Duration },
    #[error("{program} failed ({status}) speaking {text:?}: {stderr}")]
    Failed { program: String, status: String, text: String, stderr: String },
    #[error("{program} produced more than {limit} bytes of audio for {text:?}")]
    OutputTooLarge { program: String, text: String, limit: u64 },
    #[error("{program} produced audio that cannot be read for {text:?}: {source}")]
    BadAudio {
        program: String,
        text: String,
        #[source]
        source: WavError,
    },
    #[error("nothing to speak: the text is empty or only whitespace")]
    EmptyText,
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Wav(#[from] WavError),
}

/// A text-to-speech engine.
pub trait Tts: Send + Sync {
    /// Speaks `text` in `lang` and returns 8 kHz mono linear samples.
    fn render(&self, text: &str, lang: Lang) -> Result<Vec<i16>, TtsError>;

    /// A short stable name of the engine. It is part of cache keys, so two engines never
    /// share cached audio.
    fn name(&self) -> &str;

    /// Checks that the engine can speak every language, so a missing program or voice is
    /// reported when the daemon starts rather than when the first caller waits for audio.
    fn check(&self) -> Result<(), TtsError>;

    /// The voice used for `lang`. It is part of cache keys, so changing the voice renders
    /// everything again instead of mixing voices; engines with one fixed voice keep the
    /// default.
    fn voice(&self, _lang: Lang) -> &str {
        ""
    }
}

impl<T: Tts + ?Sized> Tts for Box<T> {
    fn render(&self, text: &str, lang: Lang) -> Result<Vec<i16>, TtsError> {
        (**self).render(text, lang)
    }
    fn name(&self) -> &str {
        (**self).name()
    }
    fn check(&self) -> Result<(), TtsError> {
        (**self).check()
    }
    fn voice(&self, lang: Lang) -> &str {
        (**self).voice(lang)
    }
}

impl<T: Tts + ?Sized> Tts for Arc<T> {
    fn render(&self, text: &str, lang: Lang) -> Result<Vec<i16>, TtsError> {
        (**self).render(text, lang)
    }
    fn name(&self) -> &str {
        (**self).name()
    }
    fn check(&self) -> Result<(), TtsError> {
        (**self).check()
    }
    fn voice(&self, lang: Lang) -> &str {
        (**self).voice(lang)
    }
}

/// Shortens a text for an error message, so a paragraph does not drown the message.
fn excerpt(text: &str) -> String {
    match text.char_indices().nth(TEXT_IN_ERRORS) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_owned(),
    }
}

/// The espeak-ng speech synthesiser, run as a child process for every rendering.
///
/// The text goes to the program on standard input, never on the command line, so no text
/// can be taken for an option and no length limit of the command line applies. The program
/// writes a WAV file to standard output (22050 Hz for its own voices), which is resampled to
/// 8 kHz.
#[derive(Clone, Debug)]
pub struct EspeakNg {
    program: PathBuf,
    voice_en: String,
    voice_zh: String,
    timeout: Duration,
}

impl Default for EspeakNg {
    fn default() -> Self {
        EspeakNg::new()
    }
}

/// What a finished child process left behind.
struct RunOutput {
    status: ExitStatus,
    stdout: Vec<u8>,
    stdout_overflow: bool,
    stderr: String,
}

/// The threads that feed and drain a child's pipes, so that neither side can block the other.
struct PipeThreads {
    stdin: JoinHandle<()>,
    stdout: JoinHandle<io::Result<(Vec<u8>, bool)>>,
    stderr: JoinHandle<io::Result<(Vec<u8>, bool)>>,
}

impl EspeakNg {
    /// The engine with the default program (`espeak-ng` on `PATH`), voices and timeout.
    pub fn new() -> EspeakNg {
        EspeakNg {
            program: PathBuf::from(DEFAULT_PROGRAM),
            voice_en: DEFAULT_VOICE_EN.to_owned(),
            voice_zh: DEFAULT_VOICE_ZH.to_owned(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Uses another program: a path, or a name looked up on `PATH`.
    pub fn with_program(mut self, program: impl Into<PathBuf>) -> EspeakNg {
        self.program = program.into();
        self
    }

    /// Uses another espeak-ng voice for one language (anything `espeak-ng -v` accepts).
    pub fn with_voice(mut self, lang: Lang, voice: impl Into<String>) -> EspeakNg {
        match lang {
            Lang::En => self.voice_en = voice.into(),
            Lang::Zh => self.voice_zh = voice.into(),
        }
        self
    }

    /// Changes how long a rendering may take before the program is killed.
    pub fn with_timeout(mut self, timeout: Duration) -> EspeakNg {
        self.timeout = timeout;
        self
    }

    /// The program this engine runs.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// How long a rendering may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Checks one language's voice by running the program with it and no text. Use this
    /// instead of [`Tts::check`] when only one language is configured.
    pub fn check_voice(&self, lang: Lang) -> Result<(), TtsError> {
        let voice = self.voice(lang);
        let out = self.run(&["-q", "-v", voice, "--stdin"], "", "")?;
        self.check_status(&out, lang, "")
    }

    fn program_name(&self) -> String {
        self.program.display().to_string()
    }

    /// Turns a failed exit into the error that says what to do: a missing voice, or the
    /// program's own message.
    fn check_status(&self, out: &RunOutput, lang: Lang, text: &str) -> Result<(), TtsError> {
        if out.status.success() {
            return Ok(());
        }
        let stderr = out.stderr.trim().to_owned();
        // espeak-ng says "The specified espeak-ng voice does not exist." and exits with 1.
        if stderr.to_ascii_lowercase().contains("voice") {
            return Err(TtsError::VoiceMissing {
                program: self.program_name(),
                voice: self.voice(lang).to_owned(),
                lang,
                detail: stderr,
            });
        }
        Err(TtsError::Failed {
            program: self.program_name(),
            status: out.status.to_string(),
            text: excerpt(text),
            stderr,
        })
    }

    /// Runs the program with `args`, feeds it `input`, and collects its output, killing it
    /// (and anything it started) when the timeout expires. `text` labels errors.
    fn run(&self, args: &[&str], input: &str, text: &str) -> Result<RunOutput, TtsError> {
        let program = self.program_name();
        let mut child = Command::new(&self.program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // A process group of its own, so a timeout can kill whatever the program started.
            .process_group(0)
            .spawn()
            .map_err(|source| match source.kind() {
                ErrorKind::NotFound => TtsError::NotInstalled { program: program.clone() },
                _ => TtsError::Spawn { program: program.clone(), source },
            })?;
        let pipes = (child.stdin.take(), child.stdout.take(), child.stderr.take());
        let threads = match start_pipe_threads(pipes, input.as_bytes().to_vec()) {
            Ok(threads) => threads,
            Err(source) => {
                kill(&mut child);
                return Err(TtsError::Spawn { program, source });
            }
        };

        let deadline = Instant::now() + self.timeout;
        let waited = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Ok(status),
                Ok(None) if Instant::now() >= deadline => {
                    kill(&mut child);
                    break Err(None);
                }
                Ok(None) => std::thread::sleep(POLL_INTERVAL),
                Err(e) => {
                    kill(&mut child);
                    break Err(Some(e));
                }
            }
        };
        // The pipes close when the process exits or is killed, so the threads end.
        let _ = threads.stdin.join();
        let stdout = join_reader(threads.stdout);
        let stderr = join_reader(threads.stderr);

        let status = match waited {
            Ok(status) => status,
            Err(None) => {
                return Err(TtsError::Timeout { program, text: excerpt(text), timeout: self.timeout })
            }
            Err(Some(source)) => return Err(TtsError::Spawn { program, source }),
        };
        let (stdout, stdout_overflow) =
            stdout.map_err(|source| TtsError::Spawn { program: program.clone(), source })?;
        let stderr = match stderr {
            Ok((bytes, _)) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) => format!("(error output unreadable: {e})"),
        };
        Ok(RunOutput { status, stdout, stdout_overflow, stderr })
    }
}

impl Tts for EspeakNg {
    fn render(&self, text: &str, lang: Lang) -> Result<Vec<i16>, TtsError> {
        if text.trim().is_empty() {
            return Err(TtsError::EmptyText);
        }
        let voice = self.voice(lang);
        let out = self.run(&["-v", voice, "--stdout", "--stdin"], text, text)?;
        if out.stdout_overflow {
            return Err(TtsError::OutputTooLarge {
                program: self.program_name(),
                text: excerpt(text),
                limit: MAX_OUTPUT_BYTES,
            });
        }
        self.check_status(&out, lang, text)?;
        let mut bytes = out.stdout;
        fix_streamed_sizes(&mut bytes);
        let program = self.program_name();
        let bad_audio = |source| TtsError::BadAudio { program: program.clone(), text: excerpt(text), source };
        let wav = parse_wav(&bytes, &format!("output of {program}")).map_err(bad_audio)?;
        to_8k(wav).map_err(bad_audio)
    }

    fn name(&self) -> &str {
        "espeak-ng"
    }

    /// Checks that the program runs and has the voices of both languages.
    fn check(&self) -> Result<(), TtsError> {
        let out = self.run(&["--version"], "", "")?;
        if !out.status.success() {
            return Err(TtsError::Failed {
                program: self.program_name(),
                status: out.status.to_string(),
                text: String::new(),
                stderr: out.stderr.trim().to_owned(),
            });
        }
        Lang::ALL.iter().try_for_each(|&lang| self.check_voice(lang))
    }

    fn voice(&self, lang: Lang) -> &str {
        match lang {
            Lang::En => &self.voice_en,
            Lang::Zh => &self.voice_zh,
        }
    }
}

/// Kills a child and its process group and reaps it. Errors are ignored: the process may
/// have exited on its own in the meantime, which is what killing it wants anyway.
fn kill(child: &mut Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn start_pipe_threads(
    (stdin, stdout, stderr): (Option<ChildStdin>, Option<ChildStdout>, Option<ChildStderr>),
    input: Vec<u8>,
) -> io::Result<PipeThreads> {
    let stdin = std::thread::Builder::new().name("tts-stdin".to_owned()).spawn(move || {
        if let Some(mut pipe) = stdin {
            // A program that exits without reading its input is reported by its exit status.
            let _ = pipe.write_all(&input);
        }
    })?;
    let stdout = std::thread::Builder::new()
        .name("tts-stdout".to_owned())
        .spawn(move || read_limited(stdout, MAX_OUTPUT_BYTES, false))?;
    let stderr = std::thread::Builder::new()
        .name("tts-stderr".to_owned())
        .spawn(move || read_limited(stderr, MAX_STDERR_BYTES, true))?;
    Ok(PipeThreads { stdin, stdout, stderr })
}

/// Reads at most `limit` bytes; says whether there was more. With `drain`, the rest is read
/// and thrown away so the program never blocks on a full pipe; without, the pipe is closed,
/// which ends a program that keeps writing.
fn read_limited(pipe: Option<impl Read>, limit: u64, drain: bool) -> io::Result<(Vec<u8>, bool)> {
    let Some(mut pipe) = pipe else {
        return Ok((Vec::new(), false));
    };
    let mut buf = Vec::new();
    (&mut pipe).take(limit).read_to_end(&mut buf)?;
    let more = if drain { io::copy(&mut pipe, &mut io::sink())? > 0 } else { pipe.read(&mut [0u8])? > 0 };
    Ok((buf, more))
}

fn join_reader(handle: JoinHandle<io::Result<(Vec<u8>, bool)>>) -> io::Result<(Vec<u8>, bool)> {
    handle.join().unwrap_or_else(|_| Err(io::Error::other("the pipe reader thread panicked")))
}

/// Makes the header of a WAV file written to a pipe readable. A program writing to a pipe
/// cannot go back to fill in the sizes, so espeak-ng leaves placeholders (0x7FFFF000 and the
/// like) that claim more data than there is; the data chunk size is set to what is present.
fn fix_streamed_sizes(bytes: &mut [u8]) {
    let mut pos: usize = 12;
    while let Some(header) = bytes.get(pos..pos.saturating_add(8)) {
        let id = [header[0], header[1], header[2], header[3]];
        let size = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        let body = pos + 8;
        if &id == b"data" {
            let present = u32::try_from(bytes.len() - body).unwrap_or(u32::MAX);
            if size > present {
                bytes[pos + 4..pos + 8].copy_from_slice(&present.to_le_bytes());
            }
            return;
        }
        let next = u64::try_from(body).unwrap_or(u64::MAX) + u64::from(size) + u64::from(size & 1);
        match usize::try_from(next) {
            Ok(next) => pos = next,
            Err(_) => return,
        }
    }
}

/// Distinguishes the temporary files of concurrent writers within one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes an 8 kHz mono 16-bit WAV file so that `path` is always either absent, the old file
/// or the complete new file: the audio goes to a hidden temporary file in the same directory,
/// is synced, and is renamed over `path`. A crash can leave a temporary file behind, never a
/// half-written prompt.
pub(crate) fn write_wav_atomic(path: &Path, samples: &[i16]) -> Result<(), TtsError> {
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = path.with_file_name(format!(".{file_name}.tmp-{}-{n}", std::process::id()));
    let result = (|| {
        let mut writer = WavWriter::create(&tmp)?;
        writer.write(samples)?;
        writer.finish()?;
        std::fs::rename(&tmp, path).map_err(|source| TtsError::Io { path: path.to_owned(), source })
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// True for a file in exactly the format the cache and prompt sets write.
pub(crate) fn is_8k_mono_pcm16(wav: &Wav) -> bool {
    wav.sample_rate == 8000 && wav.source_channels == 1 && wav.source_format == WavFormat::Pcm { bits: 16 }
}

/// An engine behind a directory of rendered texts.
///
/// Each rendering is kept as `<dir>/<lang>/<key>.wav`, 8 kHz mono 16-bit, where the key is
/// the SHA-256 of the engine name, voice, language and text: a text is rendered once per
/// voice, and changing the voice or engine never plays stale audio. Files are written
/// atomically, so concurrent renderings of the same text (in this process or another) at
/// worst do the work twice. A cache file that cannot be read is rendered again and replaced.
/// Nothing is ever deleted; the directory can be emptied at any time to reclaim space.
#[derive(Debug)]
pub struct TtsCache<T> {
    tts: T,
    dir: PathBuf,
}

impl<T: Tts> TtsCache<T> {
    /// Caches `tts` in `dir`. The directory is created on the first rendering.
    pub fn new(tts: T, dir: impl Into<PathBuf>) -> TtsCache<T> {
        TtsCache { tts, dir: dir.into() }
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The engine that renders what is not cached.
    pub fn tts(&self) -> &T {
        &self.tts
    }

    /// The cache key of a text: 64 lowercase hex digits. Every field is length-prefixed
    /// before hashing, so no two different (engine, voice, language, text) tuples can
    /// produce the same input to the hash.
    pub fn key(&self, text: &str, lang: Lang) -> String {
        let mut hasher = Sha256::new();
        hasher.update(CACHE_KEY_VERSION);
        for field in [self.tts.name(), self.tts.voice(lang), lang.as_str(), text] {
            hasher.update((field.len() as u64).to_le_bytes());
            hasher.update(field.as_bytes());
        }
        hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Where the rendering of a text is (or will be) kept.
    pub fn path(&self, text: &str, lang: Lang) -> PathBuf {
        self.dir.join(lang.as_str()).join(format!("{}.wav", self.key(text, lang)))
    }

    /// Returns the cached rendering of a text, rendering and storing it first when there is
    /// none or the cached file is damaged. The path is returned for callers that play files.
    pub fn render_cached(&self, text: &str, lang: Lang) -> Result<(PathBuf, Vec<i16>), TtsError> {
        let path = self.path(text, lang);
        match read_wav(&path) {
            Ok(wav) if is_8k_mono_pcm16(&wav) => return Ok((path, wav.samples)),
            Ok(wav) => tracing::warn!(
                file = %path.display(),
                rate = wav.sample_rate,
                format = %wav.source_format,
                "TTS cache file has the wrong format; rendering it again"
            ),
            Err(WavError::Io { source, .. }) if source.kind() == ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(error = %e, "TTS cache file is damaged; rendering it again"),
        }
        let samples = self.tts.render(text, lang)?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|source| TtsError::Io { path: parent.to_owned(), source })?;
        }
        write_wav_atomic(&path, &samples)?;
        Ok((path, samples))
    }
}

/// A cache is itself an engine, so code that takes a [`Tts`] gets caching for free.
impl<T: Tts> Tts for TtsCache<T> {
    fn render(&self, text: &str, lang: Lang) -> Result<Vec<i16>, TtsError> {
        self.render_cached(text, lang).map(|(_, samples)| samples)
    }
    fn name(&self) -> &str {
        self.tts.name()
    }
    fn check(&self) -> Result<(), TtsError> {
        self.tts.check()
    }
    fn voice(&self, lang: Lang) -> &str {
        self.tts.voice(lang)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// Counts renderings of the engine it wraps, to tell cache hits from misses.
    struct Counting<T> {
        inner: T,
        renders: AtomicUsize,
    }

    impl<T: Tts> Counting<T> {
        fn new(inner: T) -> Counting<T> {
            Counting { inner, renders: AtomicUsize::new(0) }
        }
        fn renders(&self) -> usize {
            self.renders.load(Ordering::SeqCst)
        }
    }

    impl<T: Tts> Tts for Counting<T> {
        fn render(&self, text: &str, lang: Lang) -> Result<Vec<i16>, TtsError> {
            self.renders.fetch_add(1, Ordering::SeqCst);
            self.inner.render(text, lang)
        }
        fn name(&self) -> &str {
            self.inner.name()
        }
        fn check(&self) -> Result<(), TtsError> {
            self.inner.check()
        }
        fn voice(&self, lang: Lang) -> &str {
            self.inner.voice(lang)
        }
    }

    /// An engine that "speaks" the text as its bytes, so every text has distinct audio.
    struct Bytes {
        name: &'static str,
    }

    impl Tts for Bytes {
        fn render(&self, text: &str, _lang: Lang) -> Result<Vec<i16>, TtsError> {
            Ok(text.bytes().map(|b| i16::from(b) * 100).collect())
        }
        fn name(&self) -> &str {
            self.name
        }
        fn check(&self) -> Result<(), TtsError> {
            Ok(())
        }
    }

    fn rms(x: &[i16]) -> f64 {
        (x.iter().map(|&s| f64::from(s) * f64::from(s)).sum::<f64>() / x.len().max(1) as f64).sqrt()
    }

    fn espeak() -> EspeakNg {
        let tts = EspeakNg::new();
        if let Err(e) = tts.check() {
            panic!("these tests need espeak-ng with its en-us and cmn-latn-pinyin voices (.ci/deps installs it): {e}");
        }
        tts
    }

    /// Writes an executable shell script and waits until it can be run. Another test thread
    /// forking while the script is open for writing makes exec fail with ETXTBSY until that
    /// fork has exec'd; one successful run proves no writable descriptor is left anywhere.
    fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n[ \"$1\" = --probe ] && exit 0\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        for _ in 0..200 {
            match Command::new(&path).arg("--probe").status() {
                Ok(status) if status.success() => return path,
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                other => panic!("probing {}: {other:?}", path.display()),
            }
        }
        panic!("{} stayed busy", path.display());
    }

    #[test]
    fn espeak_speaks_english() {
        let samples = espeak().render("hello", Lang::En).unwrap();
        let seconds = samples.len() as f64 / 8000.0;
        assert!((0.2..3.0).contains(&seconds), "{seconds} s");
        assert!(rms(&samples) > 300.0, "rms {}", rms(&samples));
    }

    #[test]
    fn espeak_speaks_mandarin() {
        let samples = espeak().render("你好", Lang::Zh).unwrap();
        let seconds = samples.len() as f64 / 8000.0;
        assert!((0.2..3.0).contains(&seconds), "{seconds} s");
        assert!(rms(&samples) > 300.0, "rms {}", rms(&samples));
    }

    #[test]
    fn text_that_looks_like_an_option_is_spoken() {
        // On the command line "-v" would select a voice; on standard input it is text.
        let samples = espeak().render("-v x", Lang::En).unwrap();
        assert!(samples.len() > 1600, "{} samples", samples.len());
    }

    #[test]
    fn empty_text_is_refused() {
        assert!(matches!(EspeakNg::new().render(" \n", Lang::En), Err(TtsError::EmptyText)));
    }

    #[test]
    fn missing_program_says_how_to_install_it() {
        let tts = EspeakNg::new().with_program("/nonexistent/espeak-ng");
        let err = tts.check().unwrap_err();
        assert!(matches!(err, TtsError::NotInstalled { .. }), "{err:?}");
        assert!(
            err.to_string().starts_with("espeak-ng is not installed: apt-get install espeak-ng"),
            "{err}"
        );
        let err = tts.render("hello", Lang::En).unwrap_err();
        assert!(matches!(err, TtsError::NotInstalled { .. }), "{err:?}");
    }

    #[test]
    fn missing_voice_is_named() {
        let tts = espeak().with_voice(Lang::Zh, "zz-nonexistent");
        let err = tts.check().unwrap_err();
        match &err {
            TtsError::VoiceMissing { voice, lang, .. } => {
                assert_eq!(voice, "zz-nonexistent");
                assert_eq!(*lang, Lang::Zh);
            }
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().contains("\"zz-nonexistent\""), "{err}");
        assert!(tts.check_voice(Lang::En).is_ok());
        assert!(matches!(tts.render("你好", Lang::Zh), Err(TtsError::VoiceMissing { .. })));
    }

    #[test]
    fn hung_program_is_killed() {
        let dir = tempfile::tempdir().unwrap();
        // Not `exec sleep`: the shell's child must die too, or it would hold the pipes open.
        let program = script(dir.path(), "hang", "sleep 30; echo never");
        let tts = EspeakNg::new().with_program(&program).with_timeout(Duration::from_millis(300));
        let start = Instant::now();
        let err = tts.render("hello", Lang::En).unwrap_err();
        assert!(matches!(err, TtsError::Timeout { .. }), "{err:?}");
        assert!(start.elapsed() < Duration::from_secs(5), "took {:?}", start.elapsed());
        assert!(err.to_string().contains("\"hello\""), "{err}");
    }

    #[test]
    fn failing_program_reports_its_error() {
        let dir = tempfile::tempdir().unwrap();
        let program = script(dir.path(), "fail", "cat >/dev/null; echo 'out of phonemes' >&2; exit 3");
        let err = EspeakNg::new().with_program(&program).render("hello", Lang::En).unwrap_err();
        match &err {
            TtsError::Failed { status, stderr, .. } => {
                assert!(status.contains('3'), "{status}");
                assert_eq!(stderr, "out of phonemes");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn garbage_output_is_bad_audio() {
        let dir = tempfile::tempdir().unwrap();
        let program = script(dir.path(), "garbage", "cat >/dev/null; echo 'this is not a wav file'");
        let err = EspeakNg::new().with_program(&program).render("hello", Lang::En).unwrap_err();
        assert!(matches!(err, TtsError::BadAudio { .. }), "{err:?}");
    }

    #[test]
    fn streamed_header_sizes_are_fixed() {
        // A 16-bit 8 kHz header whose data size claims far more than the 4 bytes present.
        let mut bytes = b"RIFF\x24\xf0\xff\x7fWAVEfmt \x10\0\0\0\x01\0\x01\0\x40\x1f\0\0\x80\x3e\0\0\x02\0\x10\0data\0\xf0\xff\x7f"
            .to_vec();
        bytes.extend_from_slice(&[1, 0, 0xFF, 0xFF]);
        assert!(parse_wav(&bytes, "t").is_err());
        fix_streamed_sizes(&mut bytes);
        assert_eq!(parse_wav(&bytes, "t").unwrap().samples, vec![1, -1]);
        // Garbage and truncated headers are left alone without panicking.
        for len in 0..bytes.len() {
            let mut cut = bytes[..len].to_vec();
            fix_streamed_sizes(&mut cut);
        }
    }

    #[test]
    fn cache_renders_once() {
        let dir = tempfile::tempdir().unwrap();
        let cache = TtsCache::new(Counting::new(Bytes { name: "bytes" }), dir.path());
        let (path, first) = cache.render_cached("hello", Lang::En).unwrap();
        assert_eq!(cache.tts().renders(), 1);
        assert_eq!(path.parent().unwrap(), dir.path().join("en"));
        assert_eq!(path.file_name().unwrap().len(), 64 + 4);
        let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();

        let (again, second) = cache.render_cached("hello", Lang::En).unwrap();
        assert_eq!((again.clone(), second.clone()), (path.clone(), first.clone()));
        assert_eq!(cache.tts().renders(), 1);
        assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), mtime);

        // The same text in the other language is another rendering.
        let (zh_path, _) = cache.render_cached("hello", Lang::Zh).unwrap();
        assert_ne!(zh_path, path);
        assert_eq!(cache.tts().renders(), 2);
        // No temporary files are left behind.
        assert_eq!(std::fs::read_dir(dir.path().join("en")).unwrap().count(), 1);
    }

    #[test]
    fn damaged_cache_files_are_rendered_again() {
        let dir = tempfile::tempdir().unwrap();
        let cache = TtsCache::new(Counting::new(Bytes { name: "bytes" }), dir.path());
        let (path, samples) = cache.render_cached("hello", Lang::En).unwrap();

        std::fs::write(&path, b"not a wav file at all").unwrap();
        assert_eq!(cache.render_cached("hello", Lang::En).unwrap().1, samples);
        assert_eq!(cache.tts().renders(), 2);
        assert_eq!(read_wav(&path).unwrap().samples, samples);

        // A file cut short in its data is damaged too.
        let len = std::fs::metadata(&path).unwrap().len();
        std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(len - 3).unwrap();
        assert_eq!(cache.render_cached("hello", Lang::En).unwrap().1, samples);
        assert_eq!(cache.tts().renders(), 3);
        assert_eq!(cache.render_cached("hello", Lang::En).unwrap().1, samples);
        assert_eq!(cache.tts().renders(), 3);
    }

    #[test]
    fn cache_keys_are_stable_and_separate_engines_and_voices() {
        let dir = tempfile::tempdir().unwrap();
        let a = TtsCache::new(Bytes { name: "bytes" }, dir.path());
        // The scheme must not change silently: caches on disk would be rendered again.
        assert_eq!(
            a.key("hello", Lang::En),
            "9132733e398ace93756662f3b959b94dc5185ad4739c82847536e879ad1b9028"
        );
        let b = TtsCache::new(Bytes { name: "other" }, dir.path());
        assert_ne!(a.key("hello", Lang::En), b.key("hello", Lang::En));
        assert_ne!(a.key("hello", Lang::En), a.key("hello", Lang::Zh));
        assert_ne!(a.key("hello", Lang::En), a.key("hello ", Lang::En));
        let en_us = TtsCache::new(EspeakNg::new(), dir.path());
        let en_gb = TtsCache::new(EspeakNg::new().with_voice(Lang::En, "en-gb"), dir.path());
        assert_ne!(en_us.key("hello", Lang::En), en_gb.key("hello", Lang::En));
        assert_eq!(en_us.key("你好", Lang::Zh), en_gb.key("你好", Lang::Zh));
    }

    #[test]
    fn cache_with_espeak_hits_the_second_time() {
        let dir = tempfile::tempdir().unwrap();
        let cache = TtsCache::new(Counting::new(espeak()), dir.path());
        let (path, first) = cache.render_cached("你好", Lang::Zh).unwrap();
        let wav = read_wav(&path).unwrap();
        assert!(is_8k_mono_pcm16(&wav));
        assert_eq!(wav.samples, first);
        let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
        let (_, second) = cache.render_cached("你好", Lang::Zh).unwrap();
        assert_eq!(second, first);
        assert_eq!(cache.tts().renders(), 1);
        assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), mtime);
    }
}
