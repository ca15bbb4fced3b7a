//! The card's tick allocates nothing, on the busy paths too: events drained after ELAST, span
//! alarms read with SPANSTAT, short reads. A counting global allocator proves it; this test
//! has its own binary so that the allocator counts only this thread's work.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

use switchboard_driver_api::{Card, ChannelKind, Law, TickIo};
use switchboard_driver_dahdi::abi::*;
use switchboard_driver_dahdi::fake::{FakeDahdi, FakeRead};
use switchboard_driver_dahdi::{CardOptions, CardSpec, ChannelSpec, DahdiCard};

struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    // `try_with` fails only while the thread is being torn down; nothing to count then.
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: every method forwards to the system allocator unchanged.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count();
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

fn allocations_during<R>(f: impl FnOnce() -> R) -> (u64, R) {
    let before = ALLOCATIONS.with(Cell::get);
    let r = f();
    (ALLOCATIONS.with(Cell::get) - before, r)
}

#[test]
fn tick_allocates_nothing() {
    let fake = FakeDahdi::new();
    fake.add_span(1, "WCTDM/0", "Wildcard TDM410P");
    fake.add_span(2, "TE4/0/1", "T4XXP (PCI) Card 0 Span 1");
    fake.add_channel(1, 1, 1, DAHDI_SIG_FXOKS);
    fake.add_channel(2, 1, 2, DAHDI_SIG_FXSKS);
    let mut channels = vec![
        ChannelSpec { channo: 1, kind: ChannelKind::FxsSeat, law: Law::Alaw },
        ChannelSpec { channo: 2, kind: ChannelKind::FxoTrunk, law: Law::Alaw },
    ];
    for pos in 1..=31 {
        let sig = if pos == 16 { DAHDI_SIG_HDLCFCS } else { DAHDI_SIG_CLEAR };
        fake.add_channel(2 + pos, 2, pos, sig);
        let kind = if pos == 16 { ChannelKind::E1Signalling } else { ChannelKind::E1Bearer };
        channels.push(ChannelSpec { channo: 2 + pos as u32, kind, law: Law::Alaw });
        if pos != 16 {
            fake.set_stream(2 + pos, Some(0x55));
        }
    }
    fake.set_stream(1, Some(0x55));
    fake.set_stream(2, Some(0x55));
    let options = CardOptions {
        stall_timeout: Duration::from_millis(20),
        alarm_poll_ticks: 2,
        ..CardOptions::default()
    };
    let spec = CardSpec { name: "alloc".into(), channels, options };
    let mut card = DahdiCard::open_with(&spec, |_| Ok(fake.open().unwrap())).unwrap();
    let mut io = TickIo::for_card(card.info());
    card.tick(&mut io).unwrap();

    // Script a busy tick before measuring: the script's own allocations happen here.
    for round in 0..3 {
        fake.push_event(1, DAHDI_EVENT_RINGOFFHOOK);
        fake.push_event(2, DAHDI_EVENT_RINGBEGIN);
        fake.set_span_alarms(2, if round % 2 == 0 { DAHDI_ALARM_RED } else { 0 });
        fake.push_read(2, FakeRead::Block { fill: 1, len: 80 });
        fake.push_read(2, FakeRead::Event(DAHDI_EVENT_POLARITY));
        let (allocs, result) = allocations_during(|| card.tick(&mut io));
        result.unwrap();
        assert!(!io.events.is_empty());
        assert_eq!(allocs, 0, "tick {round} allocated");
    }
}
