//! The sample driver streams without allocating: once its targets are open,
//! completions, re-sends, the statistics and the IOCTL reading them use no
//! heap memory (whole simulated machine, every thread counted).
#![cfg(not(all(windows, target_env = "msvc")))]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dmf_sim::{
    DeviceSpec, IoctlHandlerConfig, Sim, SimConfig, TestsIoctlHandler,
    GUID_DEVINTERFACE_TESTS_IOCTL_HANDLER,
};
use dmf_wdf::DeviceCallbacks;
use sample_driver::ioctl::{
    StatisticsHeader, HEADER_SIZE, IOCTL_SAMPLE_GET_STATISTICS, RECORD_SIZE,
};
use sample_driver::{SampleConfig, SampleDriver};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static COUNTING: AtomicBool = AtomicBool::new(false);

// SAFETY: forwards to the system allocator, only counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn completed(driver: &SampleDriver<Sim>, buf: &mut [u8]) -> u64 {
    let n = driver
        .handle_ioctl(IOCTL_SAMPLE_GET_STATISTICS, &[], buf)
        .unwrap();
    assert!(n >= HEADER_SIZE);
    let h = StatisticsHeader::decode(buf).unwrap();
    h.completed + h.errors
}

#[test]
fn streaming_steady_state_allocates_nothing() {
    let sim = Sim::new(SimConfig::default().with_seed(11));
    let bus = sim.bus();
    let ids: Vec<_> = (0..3)
        .map(|i| {
            bus.add_device(
                DeviceSpec::new(
                    format!("d{i}"),
                    Arc::new(TestsIoctlHandler::new(IoctlHandlerConfig {
                        max_random_delay_ms: 5,
                        handle_internal_ioctls: false,
                    })),
                )
                .with_interface(GUID_DEVINTERFACE_TESTS_IOCTL_HANDLER),
            )
            .unwrap()
        })
        .collect();
    let driver = Arc::new(SampleDriver::new(sim.clone(), SampleConfig::default()).unwrap());
    let client = sim.client_device();
    client.register(Arc::clone(&driver) as Arc<dyn DeviceCallbacks>);
    client.start().unwrap();
    let mut buf = vec![0u8; HEADER_SIZE + 8 * RECORD_SIZE];
    // Warm up: targets open, pools and queues at their working size.
    std::thread::sleep(Duration::from_millis(300));

    let before = completed(&driver, &mut buf);
    COUNTING.store(true, Ordering::SeqCst);
    for _ in 0..10 {
        std::thread::sleep(Duration::from_millis(50));
        completed(&driver, &mut buf);
    }
    COUNTING.store(false, Ordering::SeqCst);
    let after = completed(&driver, &mut buf);
    let allocations = ALLOCATIONS.load(Ordering::SeqCst);

    client.stop().unwrap();
    drop(client);
    drop(driver);
    for id in ids {
        bus.remove_device(id).unwrap();
    }
    assert!(sim.wait_quiescent(Duration::from_secs(10)));
    assert!(sim.counters().is_clean(), "{}", sim.counters());

    let requests = after - before;
    assert!(requests > 300, "only {requests} requests in 0.5 s");
    assert_eq!(
        allocations, 0,
        "{allocations} allocations for {requests} requests in steady state"
    );
}
