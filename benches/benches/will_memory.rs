//! Memory the reference broker's core holds per will: live heap bytes, counted by a global
//! allocator, per connected client holding a will and per pending (delayed) will.
//!
//! Not a criterion benchmark (memory does not vary between runs): it prints one line per
//! case. `cargo bench -p lastwill-benches --bench will_memory`

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use lastwill_benches::{Shape, Storm};
use lastwill_broker::codec::Protocol;

/// The system allocator, keeping count of the bytes currently allocated.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded unchanged to `System`; the counter only observes sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument selects nothing here.
    const CLIENTS: usize = 10_000;
    println!("will_memory: live heap bytes held by the core, per will ({CLIENTS} clients)");
    for (name, shape) in [
        (
            "connected, will armed (5, 32-byte payload)",
            Shape::new(CLIENTS),
        ),
        (
            "connected, will armed (3.1.1, 32-byte payload)",
            Shape {
                protocol: Protocol::V311,
                ..Shape::new(CLIENTS)
            },
        ),
        (
            "connected, will armed (5, 1 KiB payload)",
            Shape {
                payload: 1024,
                ..Shape::new(CLIENTS)
            },
        ),
        (
            "connected, will armed, keep-alive 60 s (5)",
            Shape {
                keep_alive: 60,
                ..Shape::new(CLIENTS)
            },
        ),
    ] {
        let before = live();
        let storm = Storm::prepare(shape);
        let per_client = (live() - before) / CLIENTS as isize;
        println!("  {name:<48} {per_client:>6} bytes");
        drop(storm);
    }
    let before = live();
    let mut storm = Storm::prepare(Shape {
        will_delay: Some(60),
        ..Shape::new(CLIENTS)
    });
    let connected = (live() - before) / CLIENTS as isize;
    assert_eq!(storm.drop_all(), 0);
    let pending = (live() - before) / CLIENTS as isize;
    println!(
        "  {:<48} {connected:>6} bytes",
        "connected, delayed will armed (5)"
    );
    println!(
        "  {:<48} {pending:>6} bytes",
        "disconnected, will pending (5)"
    );
    assert_eq!(storm.fire_delayed(), CLIENTS);
    let after = (live() - before) / CLIENTS as isize;
    println!(
        "  {:<48} {after:>6} bytes",
        "after every will was published"
    );
}
