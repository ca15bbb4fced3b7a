//! A scripted stand-in for ALSA, so that the recovery paths that need real hardware to
//! provoke (overruns, suspends, a device vanishing mid-read) can be tested anywhere.

use std::collections::{HashMap, HashSet, VecDeque};
use std::ffi::CStr;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::pcm::{Opener, Pcm, PcmError, StreamDir, StreamParams};

/// One fake stream. Capture: the test pushes what the "hardware" captured into `captured`.
/// Playback: everything written is kept in `written`, `queued` of it still in the buffer.
#[derive(Debug, Default)]
pub struct FakeStream {
    pub buffer: usize,
    pub captured: VecDeque<i16>,
    pub written: Vec<i16>,
    pub queued: usize,
    /// Errors the next calls of the named operation return, in order.
    pub errors: Vec<(&'static str, i32)>,
    pub prepares: u32,
    pub starts: u32,
    pub resumes: u32,
}

impl FakeStream {
    fn take_error(&mut self, op: &'static str) -> Result<(), PcmError> {
        match self.errors.iter().position(|(o, _)| *o == op) {
            Some(i) => {
                let (_, errno) = self.errors.remove(i);
                Err(PcmError { op, errno })
            }
            None => Ok(()),
        }
    }

    /// The device plays `n` queued frames.
    pub fn consume(&mut self, n: usize) {
        self.queued = self.queued.saturating_sub(n);
    }
}

#[derive(Default)]
struct World {
    absent: HashSet<String>,
    streams: HashMap<(String, StreamDir), Arc<Mutex<FakeStream>>>,
}

/// The set of fake devices; clones share it.
#[derive(Clone, Default)]
pub struct FakeWorld(Arc<Mutex<World>>);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl FakeWorld {
    pub fn opener(&self) -> Box<dyn Opener> {
        Box::new(FakeOpener(self.clone()))
    }

    /// Makes opening `name` fail with ENOENT (or succeed again).
    pub fn set_absent(&self, name: &str, absent: bool) {
        let mut w = lock(&self.0);
        if absent {
            w.absent.insert(name.to_owned());
        } else {
            w.absent.remove(name);
        }
    }

    /// The stream most recently opened under `name`.
    pub fn stream(&self, name: &str, dir: StreamDir) -> Arc<Mutex<FakeStream>> {
        let w = lock(&self.0);
        match w.streams.get(&(name.to_owned(), dir)) {
            Some(s) => Arc::clone(s),
            None => panic!("{name} {dir:?} was never opened"),
        }
    }

    pub fn with<R>(&self, name: &str, dir: StreamDir, f: impl FnOnce(&mut FakeStream) -> R) -> R {
        let s = self.stream(name, dir);
        let mut g = lock(&s);
        f(&mut g)
    }
}

struct FakeOpener(FakeWorld);

impl Opener for FakeOpener {
    fn open(
        &mut self,
        name: &CStr,
        dir: StreamDir,
        params: &StreamParams,
        _quiet: bool,
    ) -> Result<Box<dyn Pcm>, PcmError> {
        let name = name.to_string_lossy().into_owned();
        let mut w = lock(&self.0 .0);
        if w.absent.contains(&name) {
            return Err(PcmError { op: "snd_pcm_open", errno: 2 });
        }
        let stream = Arc::new(Mutex::new(FakeStream {
            buffer: params.period * params.periods as usize,
            ..FakeStream::default()
        }));
        w.streams.insert((name, dir), Arc::clone(&stream));
        Ok(Box::new(FakePcm { dir, stream }))
    }
}

struct FakePcm {
    dir: StreamDir,
    stream: Arc<Mutex<FakeStream>>,
}

impl Pcm for FakePcm {
    fn avail(&mut self) -> Result<usize, PcmError> {
        let mut s = lock(&self.stream);
        s.take_error("avail")?;
        Ok(match self.dir {
            StreamDir::Capture => s.captured.len(),
            StreamDir::Playback => s.buffer - s.queued,
        })
    }

    fn read(&mut self, buf: &mut [i16]) -> Result<usize, PcmError> {
        let mut s = lock(&self.stream);
        s.take_error("read")?;
        let n = buf.len().min(s.captured.len());
        for b in &mut buf[..n] {
            *b = s.captured.pop_front().unwrap_or(0);
        }
        Ok(n)
    }

    fn write(&mut self, buf: &[i16]) -> Result<usize, PcmError> {
        let mut s = lock(&self.stream);
        s.take_error("write")?;
        let n = buf.len().min(s.buffer - s.queued);
        s.written.extend_from_slice(&buf[..n]);
        s.queued += n;
        Ok(n)
    }

    fn wait(&mut self, _timeout_ms: u32) -> Result<bool, PcmError> {
        let mut s = lock(&self.stream);
        s.take_error("wait")?;
        Ok(s.captured.len() >= 160)
    }

    fn prepare(&mut self) -> Result<(), PcmError> {
        let mut s = lock(&self.stream);
        s.take_error("prepare")?;
        s.prepares += 1;
        s.queued = 0;
        Ok(())
    }

    fn start(&mut self) -> Result<(), PcmError> {
        let mut s = lock(&self.stream);
        s.take_error("start")?;
        s.starts += 1;
        Ok(())
    }

    fn resume(&mut self) -> Result<(), PcmError> {
        let mut s = lock(&self.stream);
        s.resumes += 1;
        s.take_error("resume")
    }

    fn buffer_frames(&self) -> usize {
        lock(&self.stream).buffer
    }
}
