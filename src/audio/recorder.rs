//! The recording writer thread.
//!
//! The real-time media thread must never block on a disk, so it pushes recording audio into
//! an `rtrb` ring and forgets about it. This thread drains the ring into WAV files: the
//! control plane opens and closes recording slots through a channel, the thread appends each
//! block to its slot's file, flushes the files at least twice a second so a killed process
//! loses at most about half a second of audio, and reports every finished file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::wav::{WavError, WavWriter};

/// Samples in one recording block: 20 ms at 8 kHz, one media tick.
pub const REC_BLOCK: usize = 160;

/// How often open files are flushed (data written and header sizes updated).
const FLUSH_INTERVAL: Duration = Duration::from_millis(500);
/// How long the thread waits for control messages when there is nothing to do. Shorter than
/// a media tick, so the ring never holds more than one or two blocks per slot.
const IDLE_WAIT: Duration = Duration::from_millis(10);
/// How long a closed slot keeps accepting blocks. The engine may still push a tick or two
/// for the slot after the control plane decided to close it; they belong to the recording.
const CLOSE_GRACE: Duration = Duration::from_millis(100);

/// One tick of linear audio for one recording slot.
#[derive(Clone, Copy, Debug)]
pub struct RecBlock {
    /// The recording slot, chosen by the control plane when it opened the recording.
    pub slot: u16,
    pub samples: [i16; REC_BLOCK],
}

/// Commands from the control plane to the recorder.
#[derive(Clone, Debug)]
pub enum RecControl {
    /// Starts a recording. `path` is relative to the data directory (see
    /// [`recording_rel_path`]); missing directories are created. Send this before telling
    /// the engine to tap the slot. Reusing a slot id that is still open (or closing)
    /// finishes the previous recording first.
    Open { slot: u16, vocid: String, path: PathBuf },
    /// Finishes a recording, after a short grace period for blocks still in flight.
    Close { slot: u16 },
}

/// A finished (or failed) recording.
#[derive(Debug)]
pub struct RecDone {
    pub slot: u16,
    pub vocid: String,
    /// The path as given in [`RecControl::Open`], relative to the data directory.
    pub path: PathBuf,
    /// Samples in the file.
    pub samples: u64,
    /// `Ok` when the file was finished and synced to disk.
    pub result: Result<(), WavError>,
}

/// Counters the recorder keeps, readable from any thread.
#[derive(Debug, Default)]
pub struct RecorderStats {
    blocks_written: AtomicU64,
    blocks_unknown_slot: AtomicU64,
    files_failed: AtomicU64,
}

impl RecorderStats {
    /// Blocks appended to a file.
    pub fn blocks_written(&self) -> u64 {
        self.blocks_written.load(Ordering::Relaxed)
    }

    /// Blocks dropped because their slot was not open (never opened, already closed, or
    /// failed).
    pub fn blocks_unknown_slot(&self) -> u64 {
        self.blocks_unknown_slot.load(Ordering::Relaxed)
    }

    /// Recordings that could not be created, written or finished.
    pub fn files_failed(&self) -> u64 {
        self.files_failed.load(Ordering::Relaxed)
    }
}

/// The path of a recording relative to the data directory:
/// `recordings/YYYY/MM/DD/<vocid>.wav`, dated in UTC.
pub fn recording_rel_path(vocid: &str, at: time::OffsetDateTime) -> PathBuf {
    let at = at.to_offset(time::UtcOffset::UTC);
    PathBuf::from("recordings")
        .join(format!("{:04}", at.year()))
        .join(format!("{:02}", u8::from(at.month())))
        .join(format!("{:02}", at.day()))
        .join(format!("{vocid}.wav"))
}

/// The running recorder thread.
#[derive(Debug)]
pub struct RecorderThread {
    join: JoinHandle<()>,
    stats: Arc<RecorderStats>,
}

impl RecorderThread {
    /// Starts the thread. It runs until the `control` sender is dropped, then writes what is
    /// left in the ring, finishes every open file (reporting each through `done`) and exits.
    pub fn spawn<F>(
        data_dir: PathBuf,
        audio: rtrb::Consumer<RecBlock>,
        control: Receiver<RecControl>,
        done: F,
    ) -> std::io::Result<RecorderThread>
    where
        F: FnMut(RecDone) + Send + 'static,
    {
        let stats = Arc::new(RecorderStats::default());
        let worker = Worker {
            data_dir,
            audio,
            control,
            done,
            slots: HashMap::new(),
            stats: Arc::clone(&stats),
            control_closed: false,
        };
        let join = std::thread::Builder::new().name("recorder".into()).spawn(move || worker.run())?;
        Ok(RecorderThread { join, stats })
    }

    /// The thread's counters.
    pub fn stats(&self) -> Arc<RecorderStats> {
        Arc::clone(&self.stats)
    }

    /// True once the thread has exited.
    pub fn is_finished(&self) -> bool {
        self.join.is_finished()
    }

    /// Waits for the thread to exit (drop the control sender first).
    pub fn join(self) -> std::thread::Result<()> {
        self.join.join()
    }
}

struct OpenSlot {
    vocid: String,
    path: PathBuf,
    writer: WavWriter,
    last_flush: Instant,
    /// Set by Close: the moment after which the file is finished.
    close_at: Option<Instant>,
}

struct Worker<F> {
    data_dir: PathBuf,
    audio: rtrb::Consumer<RecBlock>,
    control: Receiver<RecControl>,
    done: F,
    slots: HashMap<u16, OpenSlot>,
    stats: Arc<RecorderStats>,
    control_closed: bool,
}

impl<F: FnMut(RecDone)> Worker<F> {
    fn run(mut self) {
        loop {
            // Control messages come first so an Open is in place before the blocks that
            // follow it are drained.
            let mut busy = self.poll_control();
            busy |= self.drain_audio();
            if self.control_closed {
                break;
            }
            let now = Instant::now();
            self.finish_due(now);
            self.flush_due(now);
            if !busy {
                match self.control.recv_timeout(IDLE_WAIT) {
                    Ok(msg) => self.handle_control(msg),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => self.control_closed = true,
                }
            }
        }
        // Shutting down: write what the engine already pushed, then finish everything.
        self.drain_audio();
        let slots: Vec<u16> = self.slots.keys().copied().collect();
        for slot in slots {
            self.finish(slot);
        }
    }

    /// Handles every control message already queued. Returns true if there was any.
    fn poll_control(&mut self) -> bool {
        let mut any = false;
        loop {
            match self.control.try_recv() {
                Ok(msg) => {
                    any = true;
                    self.handle_control(msg);
                }
                Err(TryRecvError::Empty) => return any,
                Err(TryRecvError::Disconnected) => {
                    self.control_closed = true;
                    return any;
                }
            }
        }
    }

    fn handle_control(&mut self, msg: RecControl) {
        match msg {
            RecControl::Open { slot, vocid, path } => self.open(slot, vocid, path),
            RecControl::Close { slot } => match self.slots.get_mut(&slot) {
                Some(open) => {
                    if open.close_at.is_none() {
                        open.close_at = Some(Instant::now() + CLOSE_GRACE);
                    }
                }
                None => tracing::debug!(slot, "recorder: close for a slot that is not open"),
            },
        }
    }

    fn open(&mut self, slot: u16, vocid: String, path: PathBuf) {
        if self.slots.contains_key(&slot) {
            tracing::warn!(slot, "recorder: slot reopened before its recording finished");
            self.finish(slot);
        }
        let full = self.data_dir.join(&path);
        match create_writer(&full) {
            Ok(writer) => {
                tracing::debug!(slot, %vocid, path = %full.display(), "recording started");
                self.slots.insert(
                    slot,
                    OpenSlot { vocid, path, writer, last_flush: Instant::now(), close_at: None },
                );
            }
            Err(e) => {
                tracing::warn!(slot, %vocid, error = %e, "recording could not be created");
                self.stats.files_failed.fetch_add(1, Ordering::Relaxed);
                (self.done)(RecDone { slot, vocid, path, samples: 0, result: Err(e) });
            }
        }
    }

    /// Appends every block in the ring to its file. Returns true if there was any.
    fn drain_audio(&mut self) -> bool {
        let mut any = false;
        while let Ok(block) = self.audio.pop() {
            any = true;
            if !self.slots.contains_key(&block.slot) {
                // The Open for this slot may have been sent after the last poll: the engine
                // only taps a slot once its Open is queued, so look again before dropping.
                self.poll_control();
            }
            let Some(open) = self.slots.get_mut(&block.slot) else {
                self.stats.blocks_unknown_slot.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            match open.writer.write(&block.samples) {
                Ok(()) => {
                    self.stats.blocks_written.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => self.fail(block.slot, e),
            }
        }
        any
    }

    fn finish_due(&mut self, now: Instant) {
        let due: Vec<u16> = self
            .slots
            .iter()
            .filter(|(_, s)| s.close_at.is_some_and(|t| t <= now))
            .map(|(&slot, _)| slot)
            .collect();
        for slot in due {
            self.finish(slot);
        }
    }

    fn flush_due(&mut self, now: Instant) {
        let mut failed = Vec::new();
        for (&slot, open) in self.slots.iter_mut() {
            if now.duration_since(open.last_flush) >= FLUSH_INTERVAL {
                open.last_flush = now;
                if let Err(e) = open.writer.flush() {
                    failed.push((slot, e));
                }
            }
        }
        for (slot, e) in failed {
            self.fail(slot, e);
        }
    }

    /// Finishes a slot's file and reports it.
    fn finish(&mut self, slot: u16) {
        let Some(open) = self.slots.remove(&slot) else {
            return;
        };
        let samples = open.writer.samples();
        let result = open.writer.finish().map(|_| ());
        if let Err(e) = &result {
            tracing::warn!(slot, vocid = %open.vocid, error = %e, "recording could not be finished");
            self.stats.files_failed.fetch_add(1, Ordering::Relaxed);
        }
        (self.done)(RecDone { slot, vocid: open.vocid, path: open.path, samples, result });
    }

    /// Gives up on a slot after a write error and reports it. The writer's destructor still
    /// tries to leave a valid header behind.
    fn fail(&mut self, slot: u16, error: WavError) {
        let Some(open) = self.slots.remove(&slot) else {
            return;
        };
        tracing::warn!(slot, vocid = %open.vocid, %error, "recording failed");
        self.stats.files_failed.fetch_add(1, Ordering::Relaxed);
        let samples = open.writer.samples();
        (self.done)(RecDone { slot, vocid: open.vocid, path: open.path, samples, result: Err(error) });
    }
}

fn create_writer(full: &Path) -> Result<WavWriter, WavError> {
    if let Some(dir) = full.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|source| WavError::Io { file: dir.display().to_string(), source })?;
    }
    WavWriter::create(full)
}
