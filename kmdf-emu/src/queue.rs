//! The device's default queue: `WdfIoQueueCreate`, `WdfIoQueueGetDevice`,
//! and the IOCTLs the framework presents to its `EvtIoDeviceControl`
//! ([`IoControl`]) with the functions of such a request
//! (`WdfRequestRetrieveOutputBuffer`, `WdfRequestCompleteWithInformation`).

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use dmf_wdf::Status;
use wdk_sys::*;

use crate::kernel::assert_passive;
use crate::object::{self, create, get_live, lock, Attributes, Kind, Object};

use crate::device::check_size;

/// `WDFQUEUE`.
pub(crate) struct QueueData {
    device: usize,
    device_control: PFN_WDF_IO_QUEUE_IO_DEVICE_CONTROL,
    /// Requests presented and not completed, and whether new ones are
    /// still presented (not once the device is being deleted).
    gate: Mutex<(usize, bool)>,
    idle: std::sync::Condvar,
}

impl QueueData {
    /// Stops presenting requests and waits for those presented to complete
    /// (the framework purges a device's queues before deleting it).
    pub(crate) fn purge_and_wait(&self) {
        let mut gate = lock(&self.gate);
        gate.1 = false;
        while gate.0 > 0 {
            gate = self
                .idle
                .wait(gate)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }
}

pub(crate) unsafe extern "C" fn wdf_io_queue_create(
    _globals: PWDF_DRIVER_GLOBALS,
    device: WDFDEVICE,
    config: PWDF_IO_QUEUE_CONFIG,
    attributes: PWDF_OBJECT_ATTRIBUTES,
    queue: *mut WDFQUEUE,
) -> NTSTATUS {
    const F: &str = "WdfIoQueueCreate";
    assert_passive(F);
    let object = get_live(device.cast(), F);
    let Kind::Device(d) = &object.kind else {
        panic!("{F}: {object:?} is not a WDFDEVICE");
    };
    // SAFETY: caller contract.
    let config = unsafe { &*config };
    check_size::<WDF_IO_QUEUE_CONFIG>(config.Size, F, "WDF_IO_QUEUE_CONFIG");
    assert!(
        config.DispatchType == _WDF_IO_QUEUE_DISPATCH_TYPE::WdfIoQueueDispatchParallel
            && config.DefaultQueue != 0,
        "{F}: only a parallel default queue is emulated"
    );
    assert!(
        config.EvtIoDefault.is_none() && config.EvtIoRead.is_none() && config.EvtIoWrite.is_none(),
        "{F}: only EvtIoDeviceControl is emulated"
    );
    // SAFETY: caller contract.
    let mut attributes = unsafe { Attributes::read(attributes, F) };
    assert!(
        attributes.parent.is_null(),
        "{F}: a queue's parent is its device"
    );
    attributes.parent = device.cast();
    let mut slot = lock(&d.queue);
    assert!(*slot == 0, "{F}: a second default queue");
    let q = create(
        Kind::Queue(QueueData {
            device: device as usize,
            device_control: config.EvtIoDeviceControl,
            gate: Mutex::new((0, true)),
            idle: std::sync::Condvar::new(),
        }),
        &attributes,
    );
    *slot = q.handle() as usize;
    if !queue.is_null() {
        // SAFETY: caller contract.
        unsafe { queue.write(q.handle().cast()) };
    }
    0
}

pub(crate) unsafe extern "C" fn wdf_io_queue_get_device(
    _globals: PWDF_DRIVER_GLOBALS,
    queue: WDFQUEUE,
) -> WDFDEVICE {
    let object = get_live(queue.cast(), "WdfIoQueueGetDevice");
    match &object.kind {
        Kind::Queue(q) => q.device as WDFDEVICE,
        _ => panic!("WdfIoQueueGetDevice: {object:?} is not a WDFQUEUE"),
    }
}

/// Sends IOCTLs to a device's default queue (see [`Device::io_control`](crate::Device::io_control)).
pub struct IoControl {
    pub(crate) queue: Arc<Object>,
}

// SAFETY: the queue object is shared, its state behind locks; the driver's
// EvtIoDeviceControl may be called from any thread (parallel queue).
unsafe impl Send for IoControl {}
// SAFETY: as above.
unsafe impl Sync for IoControl {}

impl std::fmt::Debug for IoControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IoControl({:?})", self.queue)
    }
}

/// `STATUS_BUFFER_TOO_SMALL`.
const STATUS_BUFFER_TOO_SMALL: NTSTATUS = 0xC000_0023_u32 as i32;

/// `STATUS_DELETE_PENDING`.
const STATUS_DELETE_PENDING: NTSTATUS = 0xC000_0056_u32 as i32;

impl IoControl {
    /// [`Device::device_control`](crate::Device::device_control); `STATUS_DELETE_PENDING` once the device
    /// is being deleted.
    pub fn send(&self, code: u32, output_len: usize) -> (Status, Vec<u8>) {
        let Kind::Queue(q) = &self.queue.kind else {
            unreachable!()
        };
        {
            let mut gate = lock(&q.gate);
            if !gate.1 {
                return (Status::from_raw(STATUS_DELETE_PENDING), Vec::new());
            }
            gate.0 += 1;
        }
        let callback = q
            .device_control
            .expect("the default queue has no EvtIoDeviceControl");
        let result = present_ioctl(self.queue.handle().cast(), callback, code, output_len);
        let mut gate = lock(&q.gate);
        gate.0 -= 1;
        if gate.0 == 0 {
            q.idle.notify_all();
        }
        result
    }
}

/// A request the framework presented to the default queue.
pub(crate) struct IncomingData {
    output: Mutex<Vec<u8>>,
    pub(crate) completed: Mutex<Option<(NTSTATUS, usize)>>,
    done: Condvar,
}

/// Presents an IOCTL to a queue's `EvtIoDeviceControl` and waits for its
/// completion (see [`crate::Device::device_control`]).
pub(crate) fn present_ioctl(
    queue: WDFQUEUE,
    callback: unsafe extern "C" fn(WDFQUEUE, WDFREQUEST, usize, usize, ULONG),
    code: u32,
    output_len: usize,
) -> (Status, Vec<u8>) {
    let attributes = Attributes {
        parent: queue.cast(),
        context: std::ptr::null(),
        cleanup: None,
    };
    let object = create(
        Kind::Incoming(IncomingData {
            output: Mutex::new(vec![0u8; output_len]),
            completed: Mutex::new(None),
            done: Condvar::new(),
        }),
        &attributes,
    );
    let handle = object.handle();
    // SAFETY: the driver's EvtIoDeviceControl with its queue and a new
    // request; no input buffer.
    unsafe { callback(queue, handle.cast(), output_len, 0, code) };
    let Kind::Incoming(i) = &object.kind else {
        unreachable!()
    };
    let mut completed = lock(&i.completed);
    while completed.is_none() {
        let (c, timeout) = i
            .done
            .wait_timeout(completed, Duration::from_secs(30))
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        completed = c;
        assert!(
            !timeout.timed_out() || completed.is_some(),
            "EvtIoDeviceControl did not complete the request within 30 s"
        );
    }
    let (status, information) = completed.expect("completed");
    drop(completed);
    let mut output = std::mem::take(&mut *lock(&i.output));
    output.truncate(information);
    object::delete(handle, "request completion");
    (Status::from_raw(status), output)
}

pub(crate) unsafe extern "C" fn wdf_request_retrieve_output_buffer(
    _globals: PWDF_DRIVER_GLOBALS,
    request: WDFREQUEST,
    minimum: usize,
    buffer: *mut PVOID,
    length: *mut usize,
) -> NTSTATUS {
    const F: &str = "WdfRequestRetrieveOutputBuffer";
    let object = get_live(request.cast(), F);
    let Kind::Incoming(i) = &object.kind else {
        panic!("{F}: {object:?} is not a request presented by a queue");
    };
    assert!(
        lock(&i.completed).is_none(),
        "{F}: the request was completed"
    );
    let mut output = lock(&i.output);
    if output.is_empty() || output.len() < minimum {
        return STATUS_BUFFER_TOO_SMALL;
    }
    // SAFETY: caller contract (writable out-parameters).
    unsafe {
        buffer.write(output.as_mut_ptr().cast());
        if !length.is_null() {
            length.write(output.len());
        }
    }
    0
}

pub(crate) unsafe extern "C" fn wdf_request_complete_with_information(
    _globals: PWDF_DRIVER_GLOBALS,
    request: WDFREQUEST,
    status: NTSTATUS,
    information: ULONG_PTR,
) {
    const F: &str = "WdfRequestCompleteWithInformation";
    let object = get_live(request.cast(), F);
    let Kind::Incoming(i) = &object.kind else {
        panic!("{F}: {object:?} is not a request presented by a queue (a driver-created request is not completed by the driver)");
    };
    let len = lock(&i.output).len();
    assert!(
        information as usize <= len,
        "{F}: Information {information} exceeds the {len}-byte output buffer"
    );
    let mut completed = lock(&i.completed);
    assert!(completed.is_none(), "{F}: request completed twice");
    *completed = Some((status, information as usize));
    i.done.notify_all();
}
