//! Running an engine on its own real-time thread, and the control plane's handle to it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use switchboard_driver_api::Card;

use super::{Engine, EngineCmd, EngineEnds, EngineEvent, EngineStats};

/// The engine thread could not be started.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the media thread: {0}")]
pub struct SpawnError(#[from] std::io::Error);

/// The control plane's side of a running engine.
pub struct EngineHandle {
    commands: rtrb::Producer<EngineCmd>,
    events: rtrb::Consumer<EngineEvent>,
    stats: Arc<EngineStats>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// Whether the thread got real-time scheduling.
    pub realtime_scheduling: bool,
}

impl EngineHandle {
    /// Queues a command. A full ring hands the command back and counts the loss.
    pub fn send(&mut self, cmd: EngineCmd) -> Result<(), EngineCmd> {
        self.commands.push(cmd).map_err(|rtrb::PushError::Full(cmd)| {
            self.stats.commands_dropped.fetch_add(1, Ordering::Relaxed);
            cmd
        })
    }

    /// The next event the engine raised, if any.
    pub fn poll_event(&mut self) -> Option<EngineEvent> {
        self.events.pop().ok()
    }

    pub fn stats(&self) -> &Arc<EngineStats> {
        &self.stats
    }

    /// Stops the thread and waits for it.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for EngineHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Gives the calling thread SCHED_FIFO at `priority` and locks the process's memory, so page
/// faults and ordinary tasks cannot delay a tick. Returns why not when it is not permitted.
fn make_realtime(priority: i32) -> Result<(), String> {
    if priority <= 0 {
        return Err("real-time priority is 0 in the configuration".into());
    }
    let param = libc::sched_param { sched_priority: priority };
    // SAFETY: sched_setscheduler reads a valid sched_param for the calling thread (pid 0).
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) };
    if rc != 0 {
        return Err(format!("SCHED_FIFO refused: {}", std::io::Error::last_os_error()));
    }
    use nix::sys::mman::{mlockall, MlockAllFlags};
    mlockall(MlockAllFlags::MCL_CURRENT | MlockAllFlags::MCL_FUTURE)
        .map_err(|e| format!("mlockall refused: {e}"))
}

/// Starts the engine on a thread named `name`.
pub fn spawn<C: Card + 'static>(
    mut engine: Engine<C>,
    ends: EngineEnds,
    name: &str,
    priority: i32,
) -> Result<EngineHandle, SpawnError> {
    let stop = Arc::new(AtomicBool::new(false));
    let stop_flag = stop.clone();
    let (rt_tx, rt_rx) = std::sync::mpsc::channel();
    let stats = ends.stats.clone();
    let thread = std::thread::Builder::new().name(name.to_string()).spawn(move || {
        let rt = make_realtime(priority);
        let _ = rt_tx.send(rt);
        while !stop_flag.load(Ordering::Relaxed) {
            if let Err(e) = engine.tick() {
                stats.card_errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!("card tick failed: {e}");
                // Do not spin on a broken card.
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    })?;
    let realtime_scheduling = match rt_rx.recv() {
        Ok(Ok(())) => true,
        Ok(Err(why)) => {
            tracing::warn!("media thread runs at normal priority: {why}");
            false
        }
        Err(_) => false,
    };
    Ok(EngineHandle {
        commands: ends.commands,
        events: ends.events,
        stats: ends.stats,
        stop,
        thread: Some(thread),
        realtime_scheduling,
    })
}
