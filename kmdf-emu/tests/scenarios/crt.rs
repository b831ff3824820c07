//! Continuous-request-target scenarios: a standalone CRT started and
//! stopped by its client.

use super::*;

/// Counts successful stream completions and checks their data.
#[derive(Default)]
struct Stream(AtomicUsize);

impl<P: Platform> StreamClient<P> for Stream {
    fn buffer_output(&self, c: StreamCompletion<P>) -> OutputDisposition<P> {
        if c.status.is_success() {
            assert_eq!(c.information, 4);
            assert_eq!(c.data(), &[0, 0, 0, 0]);
            self.0.fetch_add(1, Ordering::SeqCst);
            c.module_owns_and_continue()
        } else {
            c.module_owns_and_stop()
        }
    }
}

/// A continuous request target on its own: started and stopped by the
/// client, twice; stop leaves no stream request active.
pub fn crt_manual_start_stop<B: Backend>() {
    let b = B::new(sim());
    let id = add_device(b.sim(), "crt");
    let link = b.sim().bus().symbolic_link(id, &GUID).unwrap();
    let p = b.platform();
    let target = Arc::new(open_target(&p, &link, "open the target"));
    let config = ContinuousRequestTargetConfig {
        continuous_request_count: 4,
        buffer_count_output: 4,
        buffer_output_size: 4,
        request_type: RequestType::Ioctl,
        continuous_request_target_ioctl: IOCTL_ZEROBUFFER,
        ..ContinuousRequestTargetConfig::default()
    };
    let crt = ContinuousRequestTarget::new(&p, config, Stream::default()).unwrap();
    crt.io_target_set(Arc::clone(&target)).unwrap();
    for round in 1..=2 {
        let before = crt.client().0.load(Ordering::SeqCst);
        crt.start().unwrap();
        wait_until("stream completions", 5 * SECOND, || {
            crt.client().0.load(Ordering::SeqCst) >= before + 50
        });
        crt.stop().unwrap();
        assert_eq!(crt.active_stream_requests(), 0, "round {round}");
        let stopped = crt.client().0.load(Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(10));
        assert_eq!(
            crt.client().0.load(Ordering::SeqCst),
            stopped,
            "nothing after stop"
        );
    }
    drop(crt);
    assert!(b.sim().wait_quiescent(10 * SECOND));
    target.close();
    drop(target);
    b.finish();
}
