//! Memory handed to devices: `std::alloc` with counting and injectable failure.

use std::alloc::Layout;
use std::ptr::NonNull;

use crate::core::Core;
use crate::counters;
use crate::faults::FaultPoint;

fn size_as_i64(layout: Layout) -> i64 {
    i64::try_from(layout.size()).unwrap_or(i64::MAX)
}

/// Allocates `layout`; `None` on (injected or real) failure.
pub(crate) fn allocate(core: &Core, layout: Layout) -> Option<NonNull<u8>> {
    if core.faults.check(FaultPoint::Allocation).is_some() {
        return None;
    }
    let ptr = if layout.size() == 0 {
        // A zero-sized allocation: any non-null, suitably aligned pointer.
        NonNull::new(std::ptr::without_provenance_mut::<u8>(layout.align()))?
    } else {
        // SAFETY: the layout has a non-zero size.
        NonNull::new(unsafe { std::alloc::alloc(layout) })?
    };
    counters::add(&core.counters.allocations, 1);
    counters::add(&core.counters.allocated_bytes, size_as_i64(layout));
    Some(ptr)
}

/// Frees memory from [`allocate`].
///
/// # Safety
///
/// `ptr` must come from [`allocate`] on the same simulator with the same
/// `layout`, and not have been freed.
pub(crate) unsafe fn deallocate(core: &Core, ptr: NonNull<u8>, layout: Layout) {
    if layout.size() != 0 {
        // SAFETY: per this function's contract, `ptr` was returned by
        // `std::alloc::alloc(layout)` and is freed once.
        unsafe { std::alloc::dealloc(ptr.as_ptr(), layout) };
    }
    counters::add(&core.counters.allocations, -1);
    counters::add(&core.counters.allocated_bytes, -size_as_i64(layout));
}
