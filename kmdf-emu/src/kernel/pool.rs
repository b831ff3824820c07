//! Non-paged pool: `ExAllocatePool2`, `ExFreePool`.

use std::ffi::c_void;
use std::ptr::NonNull;

use dmf_wdf::Platform;
use wdk_sys::*;

use crate::machine::current;
use crate::object::lock;

use super::irql::{current_irql, DISPATCH_LEVEL};

/// Alignment of every pool block (`MEMORY_ALLOCATION_ALIGNMENT` on 64-bit
/// Windows).
const POOL_ALIGNMENT: usize = 16;

/// `ExAllocatePool2`: non-paged memory from the simulator's allocator,
/// 16-byte aligned; null when it fails (the simulator may inject failures).
///
/// # Safety
///
/// None beyond the documented contract.
#[no_mangle]
pub unsafe extern "C" fn ExAllocatePool2(flags: POOL_FLAGS, size: SIZE_T, _tag: ULONG) -> PVOID {
    assert!(
        flags & POOL_FLAG_NON_PAGED != 0 || current_irql() < DISPATCH_LEVEL,
        "ExAllocatePool2: paged pool at DISPATCH_LEVEL"
    );
    let machine = current();
    let size = size as usize;
    let Ok(layout) = std::alloc::Layout::from_size_align(size.max(1), POOL_ALIGNMENT) else {
        return std::ptr::null_mut();
    };
    match machine.sim.allocate(layout) {
        Some(block) => {
            lock(&machine.pool).insert(block.as_ptr() as usize, size.max(1));
            block.as_ptr().cast::<c_void>()
        }
        None => std::ptr::null_mut(),
    }
}

/// `ExFreePool`: returns a block of `ExAllocatePool2`. The kernel events
/// initialised inside it end with it.
///
/// # Safety
///
/// `block` must come from `ExAllocatePool2` and not have been freed.
#[no_mangle]
pub unsafe extern "C" fn ExFreePool(block: PVOID) {
    let machine = current();
    let address = block as usize;
    let size = lock(&machine.pool).remove(&address).unwrap_or_else(|| {
        panic!("ExFreePool: {block:p} is not a live pool block (BAD_POOL_CALLER)")
    });
    let events: Vec<_> = {
        let mut map = lock(&machine.events);
        let inside: Vec<usize> = map
            .range(address..address + size)
            .map(|(a, _)| *a)
            .collect();
        inside.into_iter().filter_map(|a| map.remove(&a)).collect()
    };
    drop(events);
    let layout = std::alloc::Layout::from_size_align(size, POOL_ALIGNMENT).expect("valid before");
    // SAFETY: allocated by `ExAllocatePool2` with this layout, freed once.
    unsafe {
        machine
            .sim
            .deallocate(NonNull::new(block.cast::<u8>()).expect("non-null"), layout)
    };
}
