//! The client's per-target context: created once per opening (with the
//! link, before `Open`), handed to every callback about the target and to
//! the completions of its sends (which name their target), dropped only
//! after the last of them; and `target_state`.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{add_device, assert_clean, config, sim, wait_until};
use dmf_continuous_request_target::{
    ContinuousRequestTargetConfig, OutputDisposition, StreamCompletion, StreamMode,
};
use dmf_device_interface_multiple_target::*;
use dmf_sim::ioctl_handler::{encode_sleep, IOCTL_SLEEP, IOCTL_ZEROBUFFER};
use dmf_sim::Sim;
use dmf_wdf::{RawBuffer, RequestType, Status};

const SECOND: Duration = Duration::from_secs(1);

/// What happened, in order.
type Log = Arc<Mutex<Vec<String>>>;

/// The per-target context: its identity, and a log entry when dropped.
struct Ctx {
    id: usize,
    handle: TargetHandle,
    link: String,
    log: Log,
    streamed: AtomicUsize,
}

impl Drop for Ctx {
    fn drop(&mut self) {
        self.log.lock().unwrap().push(format!("drop {}", self.id));
    }
}

#[derive(Default)]
struct Client {
    log: Log,
    contexts: AtomicUsize,
}

impl Client {
    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

impl DimtClient<Sim> for Client {
    type Target = Ctx;

    fn target_context(&self, m: &Dimt<Sim, Self>, t: TargetHandle, link: &str) -> Ctx {
        let id = self.contexts.fetch_add(1, Ordering::SeqCst);
        assert_eq!(
            m.target_state(t),
            Ok(TargetStateType::Invalid),
            "before Open"
        );
        self.log.lock().unwrap().push(format!("create {id}"));
        Ctx {
            id,
            handle: t,
            link: link.to_string(),
            log: Arc::clone(&self.log),
            streamed: AtomicUsize::new(0),
        }
    }

    fn on_state_change(
        &self,
        m: &Dimt<Sim, Self>,
        t: TargetHandle,
        ctx: &Ctx,
        state: TargetStateType,
    ) -> Status {
        assert_eq!(ctx.handle, t);
        assert_eq!(m.target_state(t), Ok(state), "reported before the callback");
        self.log
            .lock()
            .unwrap()
            .push(format!("{state:?} {}", ctx.id));
        Status::SUCCESS
    }

    fn buffer_output(
        &self,
        _m: &Dimt<Sim, Self>,
        t: TargetHandle,
        ctx: &Ctx,
        c: StreamCompletion<Sim>,
    ) -> OutputDisposition<Sim> {
        assert_eq!(ctx.handle, t);
        ctx.streamed.fetch_add(1, Ordering::SeqCst);
        c.module_owns_and_continue()
    }

    fn send_completed(
        &self,
        _m: &Dimt<Sim, Self>,
        t: TargetHandle,
        ctx: &Ctx,
        c: OwnedSendCompleted<Sim>,
    ) {
        assert_eq!(ctx.handle, t);
        let input = c.input.expect("the buffer comes back");
        assert_eq!(input.as_slice(), &encode_sleep(10_000));
        self.log.lock().unwrap().push(format!(
            "send {} {} {:?}",
            ctx.id,
            c.client_context,
            c.status.is_success()
        ));
    }

    fn raw_send_completed(
        &self,
        _m: &Dimt<Sim, Self>,
        t: TargetHandle,
        ctx: &Ctx,
        c: &SendCompleted<'_>,
    ) {
        assert_eq!(ctx.handle, t);
        self.log
            .lock()
            .unwrap()
            .push(format!("raw {} {}", ctx.id, c.client_context));
    }
}

fn streaming() -> DeviceInterfaceMultipleTargetConfig {
    DeviceInterfaceMultipleTargetConfig {
        continuous_request_target_module_config: ContinuousRequestTargetConfig {
            continuous_request_count: 1,
            buffer_count_output: 1,
            buffer_output_size: 4,
            request_type: RequestType::Ioctl,
            continuous_request_target_ioctl: IOCTL_ZEROBUFFER,
            continuous_request_target_mode: StreamMode::Automatic,
            ..ContinuousRequestTargetConfig::default()
        },
        ..config(PnpRegisterWhen::Create)
    }
}

#[test]
fn the_context_lives_from_open_to_the_last_completion() {
    let sim = sim();
    let device = add_device(&sim, "a");
    let dimt = DeviceInterfaceMultipleTarget::new(&sim, streaming(), Client::default()).unwrap();
    sim.bus().flush().unwrap();
    let t = dimt.targets()[0];
    assert_eq!(dimt.target_state(t), Ok(TargetStateType::Open));
    {
        let guard = dimt.target_guard(t).unwrap();
        assert_eq!(guard.context().handle, t);
        assert_eq!(guard.context().link, dimt.symbolic_link(t).unwrap());
    }
    wait_until("stream completions", 10 * SECOND, || {
        dimt.target_guard(t)
            .is_ok_and(|g| g.context().streamed.load(Ordering::SeqCst) > 0)
    });

    // A send that outlives the target: it completes (cancelled) after Close,
    // and the context is dropped only after its completion.
    let long = encode_sleep(10_000).to_vec();
    dimt.send_ex(
        t,
        Some(long.into()),
        None,
        SendParams::ioctl(IOCTL_SLEEP),
        5,
    )
    .unwrap();
    static INPUT: [u8; 4] = [0; 4];
    // SAFETY: `INPUT` is 'static and never written.
    unsafe {
        dimt.send_raw(
            t,
            Some(RawBuffer::from_slice(&INPUT)),
            None,
            SendParams::ioctl(IOCTL_SLEEP),
            6,
        )
    }
    .unwrap();
    wait_until("raw completion", 10 * SECOND, || {
        dimt.client().log().contains(&"raw 0 6".to_string())
    });
    sim.bus().surprise_remove(device).unwrap();
    wait_until("context dropped", 10 * SECOND, || {
        dimt.client().log().contains(&"drop 0".to_string())
    });
    let log = dimt.client().log();
    assert_eq!(
        log,
        [
            "create 0",
            "Open 0",
            "raw 0 6",
            "QueryRemoveComplete 0",
            "Close 0",
            "send 0 5 false",
            "drop 0"
        ]
    );
    assert_eq!(dimt.target_state(t), Err(Status::INVALID_DEVICE_STATE));
    drop(dimt);
    assert_clean(&sim);
}

#[test]
fn every_opening_gets_its_own_context() {
    let sim = sim();
    let device = add_device(&sim, "a");
    let client = Client::default();
    let log = Arc::clone(&client.log);
    let dimt =
        DeviceInterfaceMultipleTarget::new(&sim, config(PnpRegisterWhen::Create), client).unwrap();
    sim.bus().flush().unwrap();
    sim.bus().disable_interface(device, &common::GUID).unwrap();
    sim.bus().enable_interface(device, &common::GUID).unwrap();
    let t = dimt.targets()[0];
    assert_eq!(dimt.target_guard(t).unwrap().context().id, 1);
    drop(dimt);
    assert_eq!(
        *log.lock().unwrap(),
        ["create 0", "Open 0", "Close 0", "drop 0", "create 1", "Open 1", "Close 1", "drop 1"]
    );
    assert_clean(&sim);
}
