//! [`LoomPlatform`]: the constructors, and the model's controls.

use std::alloc::Layout;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use dmf_wdf::{
    Guid, InterfaceNotificationHandler, IoTarget, Notification, OpenMode, OpenParams, Platform,
    Result, ShareAccess, TimerHandler, WorkItemHandler,
};
use loom::sync::Mutex;
use loom::thread::JoinHandle;

use crate::context::assert_passive;
use crate::executor::{
    Executor, LoomTimer, LoomWorkItem, TimerCore, TimerHandle, WorkCore, WorkHandle,
};
use crate::sync::{LoomEvent, LoomLock, LoomWaitLock};
use crate::target::{LoomIoTarget, LoomRequest, NoTargetEvents};

struct Inner {
    exec: Arc<Executor>,
    workers: Mutex<Vec<JoinHandle<()>>>,
    timers: Mutex<Vec<TimerHandle>>,
    work_items: Mutex<Vec<WorkHandle>>,
    allocations: AtomicUsize,
    next_id: AtomicUsize,
    /// The handler of the interface-notification registration.
    notify: Mutex<Option<Arc<dyn InterfaceNotificationHandler>>>,
    /// Held while a notification is delivered (calls for one registration
    /// never overlap) and by the unregistration, which so waits for it.
    notifying: Mutex<()>,
}

/// The platform seam on loom's primitives (see the [crate docs](crate)).
/// Create one inside each model execution.
#[derive(Clone)]
pub struct LoomPlatform(Arc<Inner>);

impl Default for LoomPlatform {
    fn default() -> Self {
        Self::new()
    }
}

impl LoomPlatform {
    /// A platform without executor threads.
    pub fn new() -> Self {
        LoomPlatform(Arc::new(Inner {
            exec: Arc::new(Executor::new()),
            workers: Mutex::new(Vec::new()),
            timers: Mutex::new(Vec::new()),
            work_items: Mutex::new(Vec::new()),
            allocations: AtomicUsize::new(0),
            next_id: AtomicUsize::new(1),
            notify: Mutex::new(None),
            notifying: Mutex::new(()),
        }))
    }

    /// Starts `n` executor threads: they run work items, timer expiries and
    /// the device's completions until [`shutdown`](Self::shutdown).
    pub fn spawn_workers(&self, n: usize) {
        let mut workers = self.0.workers.lock().unwrap();
        for _ in 0..n {
            workers.push(self.0.exec.spawn());
        }
    }

    /// Lets the executor threads finish every queued job (armed timers fire),
    /// then joins them.
    pub fn shutdown(&self) {
        self.0.exec.shutdown();
        let workers = std::mem::take(&mut *self.0.workers.lock().unwrap());
        for worker in workers {
            worker.join().unwrap();
        }
    }

    /// Runs every queued job (work items, timer expiries, device
    /// completions, and those they queue) on this thread.
    pub fn run_pending(&self) {
        self.0.exec.run_pending();
    }

    /// The `index`th timer created on this platform.
    pub fn timer(&self, index: usize) -> TimerHandle {
        self.0.timers.lock().unwrap()[index].clone()
    }

    /// The `index`th work item created on this platform.
    pub fn work_item(&self, index: usize) -> WorkHandle {
        self.0.work_items.lock().unwrap()[index].clone()
    }

    /// Makes the next `n` work-item enqueues fail (`STATUS_INSUFFICIENT_RESOURCES`).
    pub fn refuse_enqueues(&self, n: usize) {
        self.0.exec.refuse_enqueues(n);
    }

    /// Memory blocks allocated with [`Platform::allocate`] and not freed.
    pub fn live_allocations(&self) -> usize {
        self.0.allocations.load(Ordering::SeqCst)
    }

    /// Reports the arrival of interface `symbolic_link` to the
    /// registration's handler, on this thread (the PnP thread); `false` if
    /// nothing is registered.
    pub fn interface_arrived(&self, symbolic_link: &str) -> bool {
        self.notify_with(|handler| handler.interface_arrived(symbolic_link))
    }

    /// Reports the removal of interface `symbolic_link` (as
    /// [`interface_arrived`](Self::interface_arrived)).
    pub fn interface_removed(&self, symbolic_link: &str) -> bool {
        self.notify_with(|handler| handler.interface_removed(symbolic_link))
    }

    fn notify_with(&self, call: impl FnOnce(&dyn InterfaceNotificationHandler)) -> bool {
        assert_passive("an interface notification");
        let _serial = self.0.notifying.lock().unwrap();
        let handler = self.0.notify.lock().unwrap().clone();
        match handler {
            Some(handler) => {
                call(&*handler);
                true
            }
            None => false,
        }
    }

    /// A new target, opened.
    pub fn open_target(&self) -> Arc<LoomIoTarget> {
        let target = Arc::new(self.create_io_target().expect("create a target"));
        let params = OpenParams {
            symbolic_link: "loom",
            open_mode: OpenMode::READ_WRITE,
            share_access: ShareAccess::READ_WRITE,
        };
        target
            .open(&params, Arc::new(NoTargetEvents))
            .expect("open a target");
        target
    }
}

/// A registration for interface notifications
/// ([`LoomPlatform::interface_arrived`] and
/// [`interface_removed`](LoomPlatform::interface_removed) deliver them).
pub struct LoomNotification(Arc<Inner>);

impl Notification for LoomNotification {
    fn unregister(self) {
        assert_passive("Notification::unregister");
        *self.0.notify.lock().unwrap() = None;
        // Waits for a notification being delivered.
        drop(self.0.notifying.lock().unwrap());
    }
}

// SAFETY: `allocate` returns fresh memory of the global allocator for the
// (non-zero-sized) layout, used by nobody else until `deallocate`; every
// associated type meets its own trait's contract (see their impls).
unsafe impl Platform for LoomPlatform {
    type IoTarget = LoomIoTarget;
    type Request = LoomRequest;
    type Lock<T: Send> = LoomLock<T>;
    type WaitLock<T: Send> = LoomWaitLock<T>;
    type Event = LoomEvent;
    type Timer = LoomTimer;
    type WorkItem = LoomWorkItem;
    type Notification = LoomNotification;

    fn now_100ns(&self) -> u64 {
        0
    }

    fn allocate(&self, layout: Layout) -> Option<NonNull<u8>> {
        assert!(
            layout.size() > 0,
            "dmf-loom-platform: zero-sized allocation"
        );
        // SAFETY: the layout is not zero-sized (checked above).
        let ptr = NonNull::new(unsafe { std::alloc::alloc(layout) })?;
        self.0.allocations.fetch_add(1, Ordering::SeqCst);
        Some(ptr)
    }

    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        self.0.allocations.fetch_sub(1, Ordering::SeqCst);
        // SAFETY: the caller's contract: `ptr` comes from `allocate` with
        // this layout and was not freed.
        unsafe { std::alloc::dealloc(ptr.as_ptr(), layout) }
    }

    fn create_wait_lock<T: Send>(&self, value: T) -> Result<LoomWaitLock<T>> {
        Ok(LoomWaitLock::new(value))
    }

    fn create_event(&self, signalled: bool) -> Result<LoomEvent> {
        Ok(LoomEvent::new(signalled))
    }

    fn create_timer<H: TimerHandler>(&self, handler: Arc<H>) -> Result<LoomTimer> {
        let core = TimerCore::new(handler, Arc::clone(&self.0.exec));
        self.0
            .timers
            .lock()
            .unwrap()
            .push(TimerHandle(Arc::clone(&core)));
        Ok(LoomTimer(core))
    }

    fn create_work_item<H: WorkItemHandler>(&self, handler: Arc<H>) -> Result<LoomWorkItem> {
        let core = WorkCore::new(handler, Arc::clone(&self.0.exec));
        self.0
            .work_items
            .lock()
            .unwrap()
            .push(WorkHandle(Arc::clone(&core)));
        Ok(LoomWorkItem(core))
    }

    fn create_io_target(&self) -> Result<LoomIoTarget> {
        assert_passive("Platform::create_io_target");
        let id = self.0.next_id.fetch_add(1, Ordering::SeqCst);
        Ok(LoomIoTarget::new(id, Arc::clone(&self.0.exec)))
    }

    fn create_request(&self, _target: Option<&LoomIoTarget>) -> Result<LoomRequest> {
        Ok(LoomRequest::new())
    }

    fn register_interface_notification<H: InterfaceNotificationHandler>(
        &self,
        _guid: &Guid,
        handler: Arc<H>,
    ) -> Result<LoomNotification> {
        assert_passive("Platform::register_interface_notification");
        let mut notify = self.0.notify.lock().unwrap();
        assert!(
            notify.is_none(),
            "dmf-loom-platform: one interface-notification registration at a time"
        );
        *notify = Some(handler);
        Ok(LoomNotification(Arc::clone(&self.0)))
    }
}
