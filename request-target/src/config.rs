//! Module configuration and per-send parameters.

use dmf_wdf::RequestType;

use crate::completion::CompletionDelivery;

/// Configuration of a [`RequestTarget`](crate::RequestTarget).
///
/// DMF_RequestTarget has no config structure; its only knob is the module
/// attribute `PassiveLevel`. The send-context pool and the close policy are
/// in [`SendContextConfig`], the part the layers above embed unchanged.
///
/// ```
/// use dmf_request_target::{RequestTargetConfig, SendContextConfig};
/// let config = RequestTargetConfig {
///     contexts: SendContextConfig { max_contexts: 4, ..SendContextConfig::default() },
///     ..RequestTargetConfig::passive()
/// };
/// assert!(config.passive_level);
/// assert_eq!(config.contexts.preallocated_contexts, 1);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RequestTargetConfig {
    /// DMF `PassiveLevel`: deliver completions on a passive worker by
    /// default ([`CompletionDelivery::Module`]). Default `false` (dispatch).
    pub passive_level: bool,
    /// Send contexts and what close does with sends still in flight.
    pub contexts: SendContextConfig,
}

impl RequestTargetConfig {
    /// A configuration delivering completions at passive level by default.
    pub fn passive() -> Self {
        RequestTargetConfig {
            passive_level: true,
            ..RequestTargetConfig::default()
        }
    }
}

/// The pool of per-send contexts of a [`RequestTarget`](crate::RequestTarget)
/// (DMF: a child BufferPool with 1 buffer + look-aside) and what close does
/// with sends that never complete.
///
/// Layers that embed a request target (a continuous request target's single
/// sends, each target of a device-interface-multiple-target) carry this
/// struct whole in their own configuration and build the
/// [`RequestTargetConfig`] from it, so a setting added here reaches every
/// request target without further plumbing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SendContextConfig {
    /// Send contexts (each a platform request plus a work item) created by
    /// [`RequestTarget::new`](crate::RequestTarget::new). Default 1 (DMF).
    pub preallocated_contexts: usize,
    /// Upper bound on pooled send contexts, i.e. on concurrent sends; a send
    /// beyond it fails with `STATUS_INSUFFICIENT_RESOURCES`. `0` = no bound
    /// (DMF's look-aside behaviour, the default). Reusable requests are not
    /// counted.
    pub max_contexts: usize,
    /// Close waits for every asynchronous send in flight (DMF). With
    /// `Some(ms)`, after `ms` milliseconds of waiting close cancels the sends
    /// still in flight and keeps waiting for their completions.
    /// Default `None` (wait, like DMF).
    pub cancel_in_flight_on_close_after_ms: Option<u32>,
}

impl Default for SendContextConfig {
    fn default() -> Self {
        SendContextConfig {
            preallocated_contexts: 1,
            max_contexts: 0,
            cancel_in_flight_on_close_after_ms: None,
        }
    }
}

/// How to send one request: DMF's `RequestType`, `RequestIoctl`,
/// `RequestTimeoutMilliseconds`, plus the completion context for this call.
///
/// ```
/// use dmf_request_target::{CompletionDelivery, SendParams};
/// use dmf_wdf::RequestType;
/// let p = SendParams::ioctl(0x22_0000).with_timeout(50).with_delivery(CompletionDelivery::Passive);
/// assert_eq!(p.request_type, RequestType::Ioctl);
/// assert_eq!(p.timeout_ms, 50);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct SendParams {
    /// Read, write, IOCTL or internal IOCTL. `Invalid` fails the send with
    /// `STATUS_INVALID_PARAMETER`.
    pub request_type: RequestType,
    /// IOCTL code (ignored for read and write).
    pub ioctl: u32,
    /// Time after which the framework cancels the request; `0` = none.
    pub timeout_ms: u32,
    /// Where the completion callback runs (ignored by synchronous sends).
    pub delivery: CompletionDelivery,
}

impl SendParams {
    /// A request of `request_type` with IOCTL code `ioctl`, no timeout,
    /// module delivery.
    pub const fn new(request_type: RequestType, ioctl: u32) -> Self {
        SendParams {
            request_type,
            ioctl,
            timeout_ms: 0,
            delivery: CompletionDelivery::Module,
        }
    }

    /// `IRP_MJ_DEVICE_CONTROL` with `code`.
    pub const fn ioctl(code: u32) -> Self {
        Self::new(RequestType::Ioctl, code)
    }

    /// `IRP_MJ_INTERNAL_DEVICE_CONTROL` with `code`.
    pub const fn internal_ioctl(code: u32) -> Self {
        Self::new(RequestType::InternalIoctl, code)
    }

    /// `IRP_MJ_READ` (output buffer only).
    pub const fn read() -> Self {
        Self::new(RequestType::Read, 0)
    }

    /// `IRP_MJ_WRITE` (input buffer only).
    pub const fn write() -> Self {
        Self::new(RequestType::Write, 0)
    }

    /// Sets the timeout (`0` = none).
    pub const fn with_timeout(mut self, timeout_ms: u32) -> Self {
        self.timeout_ms = timeout_ms;
        self
    }

    /// Sets the completion context of this send.
    pub const fn with_delivery(mut self, delivery: CompletionDelivery) -> Self {
        self.delivery = delivery;
        self
    }
}
