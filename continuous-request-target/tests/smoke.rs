//! Smoke test: a CRT streams to the sim's IOCTL handler and closes clean.
mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use dmf_continuous_request_target::*;
use dmf_sim::ioctl_handler::IOCTL_ZEROBUFFER;
use dmf_sim::Sim;
use dmf_wdf::RequestType;

#[derive(Default)]
struct Count(AtomicUsize);
impl StreamClient<Sim> for Count {
    fn buffer_output(&self, c: StreamCompletion<Sim>) -> OutputDisposition<Sim> {
        if c.status.is_success() {
            assert_eq!(c.information, 4);
            assert_eq!(c.data(), &[0, 0, 0, 0]);
            self.0.fetch_add(1, Ordering::Relaxed);
            c.module_owns_and_continue()
        } else {
            c.module_owns_and_stop()
        }
    }
}

#[test]
fn smoke_stream() {
    let (sim, target) = sim_with_ioctl_handler(2);
    let config = ContinuousRequestTargetConfig {
        continuous_request_count: 4,
        buffer_count_output: 4,
        buffer_output_size: 4,
        request_type: RequestType::Ioctl,
        continuous_request_target_ioctl: IOCTL_ZEROBUFFER,
        ..Default::default()
    };
    let crt = ContinuousRequestTarget::new(&sim, config, Count::default()).unwrap();
    crt.io_target_set(target.clone()).unwrap();
    crt.start().unwrap();
    wait_until("100 completions", Duration::from_secs(10), || {
        crt.client().0.load(Ordering::Relaxed) >= 100
    });
    crt.stop().unwrap();
    assert_eq!(crt.active_stream_requests(), 0);
    println!("{:?}", crt.statistics());
    drop(crt);
    assert_clean(&sim, target);
}
