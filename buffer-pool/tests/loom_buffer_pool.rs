//! Loom model checks of the buffer pool's concurrency protocols: lock-free
//! get/put on a source (including put-at-head and look-aside), a guard
//! dropped while its pool closes, and a buffer's expiry timer firing while a
//! sink `get`, an enumeration or the sink's close races for the same buffer.
//! Every interleaving must hand each buffer to exactly one owner and free
//! every block exactly once.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p dmf-buffer-pool --test loom_buffer_pool --release`.
#![cfg(loom)]

use std::alloc::Layout;
use std::ptr::NonNull;
use std::sync::Arc;

use dmf_buffer_pool::{
    BufferPool, BufferPoolConfig, EnumerationDisposition, ExpiryCallback, PoolBuffer, SinkPool,
};
use dmf_wdf::{
    CompletionRoutine, Event, Guid, InterfaceNotificationHandler, IoTarget, Lock, Notification,
    OpenParams, Platform, RawBuffer, Request, RequestType, Result, SendOptions, SentIoAction,
    Status, TargetEvents, TargetState, Timer, TimerHandler, WaitLock, WorkItem, WorkItemHandler,
};
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::{Mutex, MutexGuard};
use loom::thread;

/// Objects this platform cannot create (I/O targets, requests, work items,
/// notifications): the buffer pool never asks for them.
enum Never {}

impl Request for Never {
    fn reuse(&self) -> Result<()> {
        match *self {}
    }
    fn cancel_sent(&self) -> bool {
        match *self {}
    }
}

// SAFETY: uninhabited: no value exists, so no method is ever called.
unsafe impl IoTarget for Never {
    type Request = Never;
    fn open<E: TargetEvents>(&self, _: &OpenParams<'_>, _: std::sync::Arc<E>) -> Result<()> {
        match *self {}
    }
    fn reopen(&self) -> Result<()> {
        match *self {}
    }
    fn close(&self) {
        match *self {}
    }
    fn close_for_query_remove(&self) {
        match *self {}
    }
    fn start(&self) -> Result<()> {
        match *self {}
    }
    fn stop(&self, _: SentIoAction) {
        match *self {}
    }
    fn purge(&self, _: bool) {
        match *self {}
    }
    fn state(&self) -> TargetState {
        match *self {}
    }
    unsafe fn format_request(
        &self,
        _: &Never,
        _: RequestType,
        _: u32,
        _: Option<RawBuffer>,
        _: Option<RawBuffer>,
    ) -> Result<()> {
        match *self {}
    }
    fn send<C: CompletionRoutine>(
        &self,
        _: &Never,
        _: SendOptions,
        _: std::sync::Arc<C>,
    ) -> Result<()> {
        match *self {}
    }
    fn send_synchronously(&self, _: &Never, _: u32) -> Result<usize> {
        match *self {}
    }
}

/// A work item the model runs explicitly with
/// [`LoomPlatform::run_work_items`] (the pool's reaper).
struct WorkCore {
    queued: Mutex<bool>,
    handler: std::sync::Arc<dyn WorkItemHandler>,
}

struct LoomWorkItem(Arc<WorkCore>);

// SAFETY: `enqueue` only marks the item queued; the handler runs from
// `run_work`, which the model calls from its own top-level code (never from a
// timer handler or inside `enqueue`).
unsafe impl WorkItem for LoomWorkItem {
    fn enqueue(&self) -> Result<()> {
        *self.0.queued.lock().unwrap() = true;
        Ok(())
    }
    fn flush(&self) {
        run_work(&self.0);
    }
}

/// Runs `work` if queued, as the platform's worker thread would.
fn run_work(work: &WorkCore) {
    let queued = std::mem::replace(&mut *work.queued.lock().unwrap(), false);
    if queued {
        work.handler.run();
    }
}

impl Notification for Never {
    fn unregister(self) {
        match self {}
    }
}

/// A spin lock on loom's mutex.
struct LoomLock<T>(Mutex<T>);

// SAFETY: loom's mutex gives one guard at a time and orders its holders.
unsafe impl<T: Send> Lock<T> for LoomLock<T> {
    type Guard<'a>
        = MutexGuard<'a, T>
    where
        Self: 'a;
    fn new(value: T) -> Self {
        LoomLock(Mutex::new(value))
    }
    fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock().unwrap()
    }
}

struct LoomEvent(Mutex<bool>);

impl Event for LoomEvent {
    fn set(&self) {
        *self.0.lock().unwrap() = true;
    }
    fn reset(&self) {
        *self.0.lock().unwrap() = false;
    }
    fn is_set(&self) -> bool {
        *self.0.lock().unwrap()
    }
    fn wait(&self, _: Option<u32>) -> bool {
        while !self.is_set() {
            thread::yield_now();
        }
        true
    }
}

struct TimerState {
    armed: bool,
    running: bool,
}

/// A timer the model fires explicitly with [`fire`].
struct TimerCore {
    state: Mutex<TimerState>,
    handler: std::sync::Arc<dyn TimerHandler>,
}

struct LoomTimer(Arc<TimerCore>);

// SAFETY: the handler runs only from `fire`, for an arming by `start` (which
// `fire` consumes), never inside `start` or `stop`; `stop` reports `true`
// only when it cleared an arming `fire` had not consumed; `stop(true)` and
// the drop wait until `fire` has left the handler; a dropped timer is
// disarmed, so a later `fire` does nothing.
unsafe impl Timer for LoomTimer {
    fn start(&self, _due_ms: u64) -> bool {
        let mut s = self.0.state.lock().unwrap();
        std::mem::replace(&mut s.armed, true)
    }
    fn stop(&self, wait: bool) -> bool {
        let was = std::mem::replace(&mut self.0.state.lock().unwrap().armed, false);
        if wait {
            while self.0.state.lock().unwrap().running {
                thread::yield_now();
            }
        }
        was
    }
}

impl Drop for LoomTimer {
    fn drop(&mut self) {
        self.stop(true);
    }
}

/// Expires `timer` if armed: runs its handler as the platform would.
fn fire(timer: &TimerCore) {
    {
        let mut s = timer.state.lock().unwrap();
        if !s.armed {
            return;
        }
        s.armed = false;
        s.running = true;
    }
    timer.handler.fired();
    timer.state.lock().unwrap().running = false;
}

#[derive(Clone)]
struct LoomPlatform {
    timers: Arc<Mutex<Vec<Arc<TimerCore>>>>,
    work_items: Arc<Mutex<Vec<Arc<WorkCore>>>>,
    allocations: Arc<AtomicUsize>,
}

impl LoomPlatform {
    fn new() -> Self {
        LoomPlatform {
            timers: Arc::new(Mutex::new(Vec::new())),
            work_items: Arc::new(Mutex::new(Vec::new())),
            allocations: Arc::new(AtomicUsize::new(0)),
        }
    }
    fn timer(&self, index: usize) -> Arc<TimerCore> {
        self.timers.lock().unwrap()[index].clone()
    }
    /// Runs every queued work item (the pools' reapers) on this thread.
    fn run_work_items(&self) {
        let items: Vec<_> = self.work_items.lock().unwrap().clone();
        for w in items {
            run_work(&w);
        }
    }
    fn live_allocations(&self) -> usize {
        self.run_work_items();
        self.allocations.load(Ordering::SeqCst)
    }
}

/// A sleeping lock on loom's mutex (the buffer pool takes none).
struct LoomWaitLock<T>(Mutex<T>);

// SAFETY: loom's mutex gives one guard at a time and orders its holders.
unsafe impl<T: Send> WaitLock<T> for LoomWaitLock<T> {
    type Guard<'a>
        = MutexGuard<'a, T>
    where
        Self: 'a;
    fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock().unwrap()
    }
}

// SAFETY: `allocate` returns a fresh block of the global allocator for the
// layout, freed only by `deallocate`; the associated types are `unsafe impl`s
// with their own justification.
unsafe impl Platform for LoomPlatform {
    type IoTarget = Never;
    type Request = Never;
    type Lock<T: Send> = LoomLock<T>;
    type WaitLock<T: Send> = LoomWaitLock<T>;
    type Event = LoomEvent;
    type Timer = LoomTimer;
    type WorkItem = LoomWorkItem;
    type Notification = Never;

    fn now_100ns(&self) -> u64 {
        0
    }
    fn allocate(&self, layout: Layout) -> Option<NonNull<u8>> {
        self.allocations.fetch_add(1, Ordering::SeqCst);
        // SAFETY: the pool's block layouts are never zero-sized.
        NonNull::new(unsafe { std::alloc::alloc(layout) })
    }
    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        self.allocations.fetch_sub(1, Ordering::SeqCst);
        // SAFETY: forwarded contract.
        unsafe { std::alloc::dealloc(ptr.as_ptr(), layout) }
    }
    fn create_wait_lock<T: Send>(&self, value: T) -> Result<LoomWaitLock<T>> {
        Ok(LoomWaitLock(Mutex::new(value)))
    }
    fn create_event(&self, signalled: bool) -> Result<LoomEvent> {
        Ok(LoomEvent(Mutex::new(signalled)))
    }
    fn create_timer<H: TimerHandler>(&self, handler: std::sync::Arc<H>) -> Result<LoomTimer> {
        let core = Arc::new(TimerCore {
            state: Mutex::new(TimerState {
                armed: false,
                running: false,
            }),
            handler,
        });
        self.timers.lock().unwrap().push(core.clone());
        Ok(LoomTimer(core))
    }
    fn create_work_item<H: WorkItemHandler>(
        &self,
        handler: std::sync::Arc<H>,
    ) -> Result<LoomWorkItem> {
        let core = Arc::new(WorkCore {
            queued: Mutex::new(false),
            handler,
        });
        self.work_items.lock().unwrap().push(core.clone());
        Ok(LoomWorkItem(core))
    }
    fn create_io_target(&self) -> Result<Never> {
        Err(Status::NOT_SUPPORTED)
    }
    fn create_request(&self, _: Option<&Never>) -> Result<Never> {
        Err(Status::NOT_SUPPORTED)
    }
    fn register_interface_notification<H: InterfaceNotificationHandler>(
        &self,
        _: &Guid,
        _: std::sync::Arc<H>,
    ) -> Result<Never> {
        Err(Status::NOT_SUPPORTED)
    }
}

fn model<F: Fn() + Sync + Send + 'static>(f: F) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(4);
    let runs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let r = runs.clone();
    builder.check(move || {
        r.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        f()
    });
    eprintln!(
        "loom explored {} executions",
        runs.load(std::sync::atomic::Ordering::Relaxed)
    );
}

fn id(b: &PoolBuffer<LoomPlatform>) -> usize {
    b.data_ptr().as_ptr() as usize
}

#[test]
fn concurrent_get_put_hands_each_buffer_to_one_owner() {
    model(|| {
        let platform = LoomPlatform::new();
        let pool = Arc::new(BufferPool::new(&platform, BufferPoolConfig::new(2, 8)).unwrap());
        let t = {
            let pool = pool.clone();
            thread::spawn(move || {
                let mut b = pool.get().unwrap();
                b.data_mut()[0] = 1;
                let i = id(&b);
                b.put_home_at_head().unwrap();
                i
            })
        };
        let mine = pool.get().unwrap();
        assert_eq!(mine.data()[0], 0, "a zeroed buffer, not one in use");
        let mine_id = id(&mine);
        let theirs = t.join().unwrap();
        assert_ne!(mine_id, theirs, "one buffer, two owners");
        drop(mine);
        assert_eq!(pool.count(), 2);
        drop(pool);
        assert_eq!(platform.live_allocations(), 0);
    });
}

#[test]
fn look_aside_grow_and_shrink_race() {
    model(|| {
        let platform = LoomPlatform::new();
        let config = BufferPoolConfig::new(1, 8).with_look_aside(true);
        let pool = Arc::new(BufferPool::new(&platform, config).unwrap());
        let held = pool.get().unwrap();
        let t = {
            let pool = pool.clone();
            thread::spawn(move || drop(pool.get().unwrap()))
        };
        drop(held);
        t.join().unwrap();
        assert_eq!(pool.count(), 1);
        assert_eq!(
            pool.buffers_allocated(),
            1,
            "the pool shrank back to buffer_count"
        );
        drop(pool);
        assert_eq!(platform.live_allocations(), 0);
    });
}

#[test]
fn guard_dropped_while_its_pool_closes_is_freed_once() {
    model(|| {
        let platform = LoomPlatform::new();
        let pool = BufferPool::new(&platform, BufferPoolConfig::new(2, 8)).unwrap();
        let a = pool.get().unwrap();
        let b = pool.get().unwrap();
        let t = thread::spawn(move || {
            drop(a);
            b.put_home_at_head().unwrap();
        });
        drop(pool);
        t.join().unwrap();
        assert_eq!(platform.live_allocations(), 0);
    });
}

/// A sink holding one timed buffer, and a callback counting expiries.
fn timed_sink() -> (
    LoomPlatform,
    BufferPool<LoomPlatform>,
    SinkPool<LoomPlatform>,
    Arc<AtomicUsize>,
) {
    let platform = LoomPlatform::new();
    let pool = BufferPool::new(&platform, BufferPoolConfig::new(1, 8).with_timers(true)).unwrap();
    let sink = SinkPool::new(&platform);
    let expired = Arc::new(AtomicUsize::new(0));
    let e = expired.clone();
    let on_expiry: std::sync::Arc<dyn ExpiryCallback<LoomPlatform>> = std::sync::Arc::new(
        move |_: &SinkPool<LoomPlatform>, b: PoolBuffer<LoomPlatform>| {
            e.fetch_add(1, Ordering::SeqCst);
            drop(b);
        },
    );
    sink.put_with_timer(pool.get().unwrap(), 10, on_expiry)
        .unwrap();
    (platform, pool, sink, expired)
}

#[test]
fn timer_fire_races_sink_get() {
    model(|| {
        let (platform, pool, sink, expired) = timed_sink();
        let timer = platform.timer(0);
        let t = thread::spawn(move || fire(&timer));
        // Whoever got it sends it home (zeroing it, clearing its expiry
        // state) while the timer handler may still be running.
        let got_it = usize::from(sink.get().is_ok());
        t.join().unwrap();
        assert_eq!(
            got_it + expired.load(Ordering::SeqCst),
            1,
            "exactly one owner"
        );
        assert_eq!((sink.count(), pool.count()), (0, 1));
        drop((sink, pool));
        assert_eq!(platform.live_allocations(), 0);
    });
}

#[test]
fn timer_fire_races_enumeration() {
    for disposition in [
        EnumerationDisposition::RemoveAndStopEnumeration,
        EnumerationDisposition::ContinueEnumeration,
        EnumerationDisposition::StopTimerAndStopEnumeration,
    ] {
        model(move || {
            let (platform, pool, sink, expired) = timed_sink();
            let timer = platform.timer(0);
            let t = thread::spawn(move || fire(&timer));
            let removed_n = usize::from(sink.enumerate(|_| disposition).is_some());
            t.join().unwrap();
            let fired = expired.load(Ordering::SeqCst);
            assert!(fired + removed_n <= 1);
            // Whatever is left in the sink is still there, exactly once.
            assert_eq!(sink.count() + pool.count(), 1);
            // The timer may have been re-armed (Continue): fire it again.
            fire(&platform.timer(0));
            drop(sink);
            assert_eq!(pool.count(), 1);
            drop(pool);
            assert_eq!(platform.live_allocations(), 0);
        });
    }
}

#[test]
fn timer_fire_races_sink_close() {
    model(|| {
        let (platform, pool, sink, expired) = timed_sink();
        let timer = platform.timer(0);
        let t = thread::spawn(move || fire(&timer));
        drop(sink);
        t.join().unwrap();
        assert!(expired.load(Ordering::SeqCst) <= 1);
        assert_eq!(pool.count(), 1, "the buffer came home exactly once");
        drop(pool);
        assert_eq!(platform.live_allocations(), 0);
    });
}
