//! `tick` and `command` allocate nothing in the steady state, checked with a counting global
//! allocator on real alsa-lib streams. (This sees Rust allocations only; alsa-lib's own
//! `malloc`s are not counted, but its read/write paths for these plugins use the stack.)

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::Path;

use common::*;
use switchboard_driver_alsa::{Clocking, SoundCard, SoundConfig, SoundDevice};
use switchboard_driver_api::{Card, ChannelId, LineCommand, TickIo};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    // `try_with` fails only while the thread is torn down; nothing to count then.
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

fn setup() -> &'static Path {
    alsa_setup("noalloc", |_| {
        let mut conf = capture_pcm("z_in", Path::new("/dev/zero"));
        conf += &playback_pcm("z_out", "/dev/null");
        conf
    })
}

#[test]
fn ticks_and_commands_do_not_allocate() {
    let _serial = serial();
    setup();
    for clocking in [Clocking::Master, Clocking::Slave] {
        let dev = SoundDevice {
            capture: "plug:z_in".into(),
            playback: "plug:z_out".into(),
            ..SoundDevice::seat("")
        };
        let config = SoundConfig { devices: vec![dev.clone(), dev], clocking, ..SoundConfig::default() };
        let mut card = SoundCard::open(config).expect("open");
        assert_eq!(card.faults().count(), 0);
        let mut io = TickIo::for_card(card.info());
        // The first ticks start the streams; after that the card is in its steady state.
        for _ in 0..10 {
            card.tick(&mut io).expect("tick");
        }
        let before = allocations();
        for t in 0..2000u32 {
            match t % 400 {
                0 => card.command(ChannelId(0), LineCommand::Ring).expect("ring"),
                100 => card.command(ChannelId(0), LineCommand::OffHook).expect("off-hook"),
                200 => card.command(ChannelId(1), LineCommand::Flash).expect("flash"),
                300 => card.command(ChannelId(0), LineCommand::OnHook).expect("on-hook"),
                _ => {}
            }
            card.tick(&mut io).expect("tick");
        }
        assert_eq!(allocations() - before, 0, "{clocking:?}");
    }
}
