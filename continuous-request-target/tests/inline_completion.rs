//! Streaming when the target completes requests inline (inside `send`, or
//! inside the cancel of `stop`), as KMDF does when the lower driver completes
//! at once.
mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::{self, ThreadId};
use std::time::Duration;

use common::*;
use dmf_continuous_request_target::*;
use dmf_sim::{FixedResponseDevice, InlineCompletion, ParkingDevice, Sim, SimConfig};
use dmf_wdf::{RequestType, Status};

#[derive(Default)]
struct Count {
    completions: AtomicUsize,
    cancelled: AtomicUsize,
    threads: std::sync::Mutex<Vec<ThreadId>>,
}

impl StreamClient<Sim> for Count {
    fn buffer_output(&self, c: StreamCompletion<Sim>) -> OutputDisposition<Sim> {
        if c.status == Status::CANCELLED {
            self.cancelled.fetch_add(1, Ordering::SeqCst);
        }
        self.threads.lock().unwrap().push(thread::current().id());
        self.completions.fetch_add(1, Ordering::SeqCst);
        c.module_owns_and_continue()
    }
}

fn config(passive_level: bool) -> ContinuousRequestTargetConfig {
    ContinuousRequestTargetConfig {
        continuous_request_count: 2,
        buffer_count_output: 4,
        buffer_output_size: 8,
        request_type: RequestType::Read,
        passive_level,
        deliver_completions_during_stop: true,
        ..Default::default()
    }
}

/// A target that completes every request inside `send` would keep the
/// thread that sends in the CRT's resend loop forever (here: `start` never
/// returned). The loop is bounded: after a few inline completions in a row
/// the resend goes to the slot's timer.
#[test]
fn start_returns_when_every_request_completes_inline() {
    for passive_level in [false, true] {
        let (sim, target) = sim_with_device(
            SimConfig::default().with_inline_completion(InlineCompletion::Always),
            Arc::new(FixedResponseDevice::new(Status::SUCCESS, None)),
        );
        let crt = Arc::new(
            ContinuousRequestTarget::new(&sim, config(passive_level), Count::default()).unwrap(),
        );
        crt.io_target_set(target.clone()).unwrap();
        let (tx, rx) = mpsc::channel();
        let starter = {
            let crt = Arc::clone(&crt);
            thread::spawn(move || {
                let started = crt.start();
                tx.send(started).unwrap();
            })
        };
        let started = rx
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("passive={passive_level}: start did not return"));
        starter.join().unwrap();
        assert_eq!(started, Ok(()));
        wait_until("a long stream", Duration::from_secs(20), || {
            crt.client().completions.load(Ordering::SeqCst) >= 2_000
        });
        crt.stop().unwrap();
        assert_eq!(crt.active_stream_requests(), 0);
        let stats = crt.statistics();
        if !passive_level {
            // (At passive level each completion goes through a work item,
            // so the sender never loops.)
            assert!(stats.deferred_resends > 0, "{stats:?}");
        }
        assert!(sim.counters().inline_deliveries > 0);
        assert!(sim.take_callback_panics().is_empty());
        drop(crt);
        assert_clean(&sim, target);
    }
}

/// `stop` cancels the stream requests; the device completes each inside the
/// cancel, so the completion routines run on the stopping thread, inside
/// `stop`, which must still return with every request retired.
#[test]
fn stop_completes_inline_on_the_stopping_thread() {
    let device = ParkingDevice::new();
    let (sim, target) = sim_with_device(
        SimConfig::default().with_inline_completion(InlineCompletion::Always),
        device.clone(),
    );
    let crt = ContinuousRequestTarget::new(&sim, config(false), Count::default()).unwrap();
    crt.io_target_set(target.clone()).unwrap();
    crt.start().unwrap();
    assert_eq!(device.pending(), 2, "both requests parked at the device");
    crt.stop().unwrap();
    assert_eq!(crt.active_stream_requests(), 0);
    assert_eq!(device.pending(), 0);
    let client = crt.client();
    assert_eq!(client.cancelled.load(Ordering::SeqCst), 2);
    let me = thread::current().id();
    assert!(client.threads.lock().unwrap().iter().all(|t| *t == me));
    assert_eq!(crt.statistics().retired_stopped, 2);
    drop(crt);
    assert_clean(&sim, target);
}
