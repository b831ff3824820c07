//! Which completion thread runs a completion: one queued by a completion
//! routine (a resend completed at once) stays on the routine's thread, like
//! a DPC queued to the current processor; independent completions still
//! spread over the completion threads.

use dmf_sim::NoTargetEvents;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use dmf_sim::{
    DeviceSpec, FixedResponseDevice, InlineCompletion, Latency, Sim, SimConfig, SimIoTarget,
    SimRequest,
};
use dmf_wdf::{
    Completed, CompletionRoutine, IoTarget, OpenMode, OpenParams, Platform, Request, RequestType,
    SendOptions, ShareAccess, Status,
};

fn setup(completion_threads: usize) -> (Sim, Arc<SimIoTarget>) {
    let sim = Sim::new(
        SimConfig::default()
            // Where *deferred* completions run is the subject: no inline
            // delivery (the resending routines here would recurse).
            .with_inline_completion(InlineCompletion::Off)
            .with_latency(Latency::ZERO)
            .with_completion_threads(completion_threads),
    );
    let device = FixedResponseDevice::new(Status::SUCCESS, None);
    let id = sim
        .bus()
        .add_device(DeviceSpec::new("fixed", Arc::new(device)))
        .unwrap();
    let link = sim.bus().device_link(id).unwrap();
    let target = sim.create_io_target().unwrap();
    target
        .open(
            &OpenParams {
                symbolic_link: &link,
                open_mode: OpenMode::READ_WRITE,
                share_access: ShareAccess::READ_WRITE,
            },
            Arc::new(NoTargetEvents),
        )
        .unwrap();
    (sim, Arc::new(target))
}

/// Resends its request from its completion routine until `left` reaches 0,
/// recording the thread of every completion.
struct Resender {
    target: Arc<SimIoTarget>,
    request: SimRequest,
    left: AtomicUsize,
    threads: Mutex<Vec<ThreadId>>,
    me: Mutex<Option<Arc<Resender>>>,
}

impl Resender {
    fn send(self: &Arc<Self>) {
        self.request.reuse().unwrap();
        // SAFETY: no buffers.
        unsafe {
            self.target
                .format_request(&self.request, RequestType::Ioctl, 0x0022_2000, None, None)
                .unwrap();
        }
        self.target
            .send(&self.request, SendOptions::default(), Arc::clone(self))
            .unwrap();
    }
}

impl CompletionRoutine for Resender {
    fn completed(self: Arc<Self>, c: Completed) {
        assert!(c.status.is_success());
        self.threads
            .lock()
            .unwrap()
            .push(std::thread::current().id());
        if self.left.fetch_sub(1, Ordering::AcqRel) > 1 {
            self.send();
        } else {
            self.me.lock().unwrap().take();
        }
    }
}

fn resender(sim: &Sim, target: &Arc<SimIoTarget>, sends: usize) -> Arc<Resender> {
    let r = Arc::new(Resender {
        target: Arc::clone(target),
        request: sim.create_request(Some(&**target)).unwrap(),
        left: AtomicUsize::new(sends),
        threads: Mutex::new(Vec::new()),
        me: Mutex::new(None),
    });
    *r.me.lock().unwrap() = Some(Arc::clone(&r));
    r
}

#[test]
fn a_completion_queued_by_a_completion_routine_stays_on_its_thread() {
    let (sim, target) = setup(2);
    let r = resender(&sim, &target, 2000);
    r.send();
    assert!(sim.wait_quiescent(Duration::from_secs(10)));
    let threads = r.threads.lock().unwrap().clone();
    assert_eq!(threads.len(), 2000);
    let switches = threads.windows(2).filter(|w| w[0] != w[1]).count();
    assert_eq!(
        switches, 0,
        "resends hopped between completion threads {switches} times"
    );
    assert_ne!(threads[0], std::thread::current().id());
    drop(r);
    target.close();
    drop(target);
    assert!(sim.counters().is_clean(), "{}", sim.counters());
}

#[test]
fn independent_streams_still_use_every_completion_thread() {
    // Two resend chains started together from this (non-completion) thread:
    // the second start finds the first completion waiting and wakes the
    // other idle completion thread, so both threads get work.
    let (sim, target) = setup(2);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let a = resender(&sim, &target, 200);
        let b = resender(&sim, &target, 200);
        a.send();
        b.send();
        assert!(sim.wait_quiescent(Duration::from_secs(10)));
        let mut all: Vec<ThreadId> = a.threads.lock().unwrap().clone();
        all.extend(b.threads.lock().unwrap().iter().copied());
        all.sort_by_key(|t| format!("{t:?}"));
        all.dedup();
        if all.len() == 2 {
            break;
        }
        // A start can find the first chain already done on a busy machine;
        // try again.
        assert!(
            Instant::now() < deadline,
            "only one completion thread ever ran"
        );
    }
    target.close();
    drop(target);
    assert!(sim.counters().is_clean(), "{}", sim.counters());
}
