//! Shared fixtures of the request-target integration tests.
#![allow(dead_code)]

pub use dmf_request_target::Sender;
pub use dmf_sim::NoTargetEvents;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use dmf_request_target::{
    CancelId, Completion, DeliveryContext, OwnedCompletion, OwnedSendCompleted, RequestTarget,
    RequestTargetConfig, ReuseId, SendCompleted,
};
use dmf_sim::{DeviceHandler, DeviceSpec, Sim, SimConfig, SimIoTarget, TestsIoctlHandler};
use dmf_wdf::{IoTarget, OpenMode, OpenParams, Platform, RequestType, ShareAccess, Status};

/// A simulator, an open target to a device running `handler`, and a module
/// with that target set.
pub struct Fixture {
    pub sim: Sim,
    pub target: Arc<SimIoTarget>,
    pub module: RequestTarget<Sim>,
}

impl Fixture {
    pub fn new(
        config: SimConfig,
        handler: Arc<dyn DeviceHandler>,
        rt: RequestTargetConfig,
    ) -> Self {
        let sim = Sim::new(config);
        let id = sim
            .bus()
            .add_device(DeviceSpec::new("dev", handler))
            .unwrap();
        let link = sim.bus().device_link(id).unwrap();
        let target = Arc::new(sim.create_io_target().unwrap());
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
        let module = RequestTarget::new(&sim, rt).unwrap();
        module.io_target_set(Arc::clone(&target)).unwrap();
        Fixture {
            sim,
            target,
            module,
        }
    }

    /// DMF's Tests_IoctlHandler on a real-time simulator.
    pub fn ioctl_handler(rt: RequestTargetConfig) -> Self {
        Fixture::new(
            SimConfig::default(),
            Arc::new(TestsIoctlHandler::default()),
            rt,
        )
    }

    /// Closes everything and checks the simulator's leak counters.
    pub fn finish(self) {
        let Fixture {
            sim,
            target,
            module,
        } = self;
        module.close();
        drop(module);
        assert!(
            sim.wait_quiescent(Duration::from_secs(10)),
            "not quiescent: {}",
            sim.counters()
        );
        target.close();
        drop(target);
        let c = sim.counters();
        assert!(c.is_clean(), "leak: {c}");
        assert_eq!(c.irps_sent, c.irps_completed, "{c}");
        assert!(sim.take_callback_panics().is_empty());
    }
}

/// One recorded completion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub status: Status,
    pub information: usize,
    pub request_type: RequestType,
    pub input: Vec<u8>,
    pub output: Vec<u8>,
    pub client_context: usize,
    pub cancel_id: Option<CancelId>,
    pub reuse_id: Option<ReuseId>,
    pub context: DeliveryContext,
    pub thread: String,
}

/// Records completions; can be waited on.
#[derive(Default)]
pub struct Recorder {
    pub records: Mutex<Vec<Record>>,
    cv: Condvar,
    pub calls: AtomicUsize,
}

impl Recorder {
    pub fn new() -> Arc<Recorder> {
        Arc::new(Recorder::default())
    }

    /// A completion callback feeding this recorder.
    pub fn callback(self: &Arc<Self>) -> Completion {
        let me = Arc::clone(self);
        Arc::new(move |c: &SendCompleted<'_>| me.record(c))
    }

    /// A completion callback of safe sends feeding this recorder (the
    /// buffers' bytes as DMF reports them, like [`Recorder::callback`]).
    pub fn owned_callback(self: &Arc<Self>) -> OwnedCompletion<Sim> {
        let me = Arc::clone(self);
        Arc::new(move |c: OwnedSendCompleted<Sim>| {
            me.record(&SendCompleted {
                status: c.status,
                information: c.information,
                request_type: c.request_type,
                input: c.input_bytes(),
                output: c.output_bytes(),
                client_context: c.client_context,
                cancel_id: c.cancel_id,
                reuse_id: c.reuse_id,
                context: c.context,
            })
        })
    }

    pub fn record(&self, c: &SendCompleted<'_>) {
        let r = Record {
            status: c.status,
            information: c.information,
            request_type: c.request_type,
            input: c.input.to_vec(),
            output: c.output.to_vec(),
            client_context: c.client_context,
            cancel_id: c.cancel_id,
            reuse_id: c.reuse_id,
            context: c.context,
            thread: std::thread::current().name().unwrap_or("?").to_string(),
        };
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.records.lock().unwrap().push(r);
        self.cv.notify_all();
    }

    pub fn count(&self) -> usize {
        self.records.lock().unwrap().len()
    }

    /// Waits (real time) for `n` completions.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut r = self.records.lock().unwrap();
        while r.len() < n {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            r = self.cv.wait_timeout(r, deadline - now).unwrap().0;
        }
        true
    }

    /// Waits for `n` completions and returns them.
    pub fn expect(&self, n: usize) -> Vec<Record> {
        assert!(
            self.wait_for(n, Duration::from_secs(10)),
            "only {} of {n} completions",
            self.count()
        );
        self.records.lock().unwrap().clone()
    }

    pub fn last(&self) -> Record {
        self.records
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("a completion")
    }
}

/// A small deterministic random generator for scenario parameters.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    /// Inclusive range, like DMF's `TestsUtility_GenerateRandomNumber`.
    pub fn range(&mut self, lo: u32, hi: u32) -> u32 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        lo + (z % u64::from(hi - lo + 1)) as u32
    }
}

pub fn sleep_ms(ms: u32) {
    std::thread::sleep(Duration::from_millis(u64::from(ms)));
}
