//! The exact-search loops do not allocate per configuration: the number of allocations of a
//! search does not grow with the size of the space.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use edgeslim_search::ExactMethod;

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations(f: impl FnOnce()) -> usize {
    let before = ALLOCS.load(Ordering::Relaxed);
    f();
    ALLOCS.load(Ordering::Relaxed) - before
}

#[test]
fn exact_search_allocations_do_not_grow_with_the_space() {
    let small = common::grid_problem(3, 2, 4); // 64 configurations
    let large = common::grid_problem(3, 4, 6); // 7776 configurations
    for method in [ExactMethod::Exhaustive, ExactMethod::BranchAndBound] {
        let count = |p: &edgeslim_search::Problem| {
            let b = common::budget(p, 0.5);
            allocations(|| {
                std::hint::black_box(p.exact(b, method).unwrap());
            })
        };
        let (a, b) = (count(&small), count(&large));
        // Result construction allocates a little per segment; nothing per configuration.
        assert!(
            b < 100,
            "{method:?}: {b} allocations for 7776 configurations"
        );
        assert!(
            b <= a + 40,
            "{method:?}: {a} allocations for 64 configurations, {b} for 7776"
        );
    }
}
