//! The configuration of a [`ContinuousRequestTarget`](crate::ContinuousRequestTarget)
//! (`DMF_CONFIG_ContinuousRequestTarget`).

use dmf_request_target::{RequestTargetConfig, SendContextConfig};
use dmf_wdf::RequestType;

use crate::PoolType;

/// Who starts and stops streaming (`ContinuousRequestTarget_ModeType`).
///
/// The discriminants are DMF's header values (`Manual = 0`, so a zeroed
/// configuration is manual; the `.md` disagrees, the header wins).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum StreamMode {
    /// The client calls [`start`](crate::ContinuousRequestTarget::start) and
    /// [`stop`](crate::ContinuousRequestTarget::stop).
    #[default]
    Manual = 0,
    /// Streaming starts when a target is set
    /// ([`io_target_set`](crate::ContinuousRequestTarget::io_target_set)) and
    /// stops when it is cleared. (In DMF the parent modules implemented this;
    /// here the CRT does it itself, so a parent must not also call `start`.)
    Automatic = 1,
}

/// Retry timing for failing stream requests (fix for DMF's busy resend loop,
/// see "Failing stream requests are re-sent with back-off" in `docs/dmf-differences.md`).
///
/// When a stream request completes with an error status and the client (or
/// the default policy) asks to continue, the resend is delayed: the first
/// consecutive failure waits `initial_ms`, each further one doubles the delay
/// up to `max_ms`. A successful completion resets the delay. `initial_ms == 0`
/// disables back-off (DMF behaviour: resend at once).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Backoff {
    /// Delay after the first failure, milliseconds; 0 disables back-off.
    pub initial_ms: u32,
    /// Largest delay, milliseconds.
    pub max_ms: u32,
}

impl Backoff {
    /// No back-off: failed stream requests are re-sent at once (DMF).
    pub const DISABLED: Backoff = Backoff {
        initial_ms: 0,
        max_ms: 0,
    };

    /// Whether back-off is enabled.
    pub const fn is_enabled(&self) -> bool {
        self.initial_ms != 0
    }

    /// The delay after `failures` consecutive failures (`failures >= 1`).
    ///
    /// ```
    /// use dmf_continuous_request_target::Backoff;
    /// let b = Backoff { initial_ms: 1, max_ms: 1000 };
    /// assert_eq!(b.delay_ms(1), 1);
    /// assert_eq!(b.delay_ms(2), 2);
    /// assert_eq!(b.delay_ms(11), 1000);
    /// assert_eq!(b.delay_ms(500), 1000);
    /// ```
    pub fn delay_ms(&self, failures: u32) -> u32 {
        if !self.is_enabled() {
            return 0;
        }
        let shift = failures.saturating_sub(1).min(31);
        let delay = u64::from(self.initial_ms) << shift;
        delay.min(u64::from(self.max_ms.max(self.initial_ms))) as u32
    }
}

impl Default for Backoff {
    /// 1 ms doubling up to 1 s.
    fn default() -> Self {
        Backoff {
            initial_ms: 1,
            max_ms: 1000,
        }
    }
}

/// `DMF_CONFIG_ContinuousRequestTarget`, field by field, plus the module
/// attribute `PassiveLevel` and the options this port adds.
///
/// | DMF field | here |
/// |---|---|
/// | `ContinuousRequestCount` | [`continuous_request_count`](Self::continuous_request_count) |
/// | `BufferCountInput` | [`buffer_count_input`](Self::buffer_count_input) |
/// | `BufferCountOutput` | [`buffer_count_output`](Self::buffer_count_output) |
/// | `RequestType` | [`request_type`](Self::request_type) |
/// | `BufferInputSize` | [`buffer_input_size`](Self::buffer_input_size) |
/// | `BufferContextInputSize` | [`buffer_context_input_size`](Self::buffer_context_input_size) |
/// | `BufferOutputSize` | [`buffer_output_size`](Self::buffer_output_size) |
/// | `BufferContextOutputSize` | [`buffer_context_output_size`](Self::buffer_context_output_size) |
/// | `EnableLookAsideOutput` | [`enable_look_aside_output`](Self::enable_look_aside_output) |
/// | `PoolTypeInput` / `PoolTypeOutput` | [`pool_type_input`](Self::pool_type_input) / [`pool_type_output`](Self::pool_type_output) |
/// | `EvtContinuousRequestTargetBufferInput` | [`StreamClient::buffer_input`](crate::StreamClient::buffer_input) |
/// | `EvtContinuousRequestTargetBufferOutput` | [`StreamClient::buffer_output`](crate::StreamClient::buffer_output) |
/// | `ContinuousRequestTargetIoctl` | [`continuous_request_target_ioctl`](Self::continuous_request_target_ioctl) |
/// | `PurgeAndStartTargetInD0Callbacks` | [`purge_and_start_target_in_d0_callbacks`](Self::purge_and_start_target_in_d0_callbacks) |
/// | `CancelAndResendRequestInD0Callbacks` | [`cancel_and_resend_request_in_d0_callbacks`](Self::cancel_and_resend_request_in_d0_callbacks) |
/// | `ContinuousRequestTargetMode` | [`continuous_request_target_mode`](Self::continuous_request_target_mode) |
/// | module attribute `PassiveLevel` | [`passive_level`](Self::passive_level) |
/// | — (new: "Completions during stop are counted and may be delivered" in `docs/dmf-differences.md`) | [`deliver_completions_during_stop`](Self::deliver_completions_during_stop) |
/// | — (new: "Retired stream requests are reported" in `docs/dmf-differences.md`) | [`auto_refill`](Self::auto_refill), [`auto_refill_retry_ms`](Self::auto_refill_retry_ms) |
/// | — (new: "Failing stream requests are re-sent with back-off" in `docs/dmf-differences.md`) | [`backoff`](Self::backoff) |
/// | child context pool of single sends (8 + look-aside) | [`single_send`](Self::single_send) ([`SendContextConfig`]) |
/// | — (new) | [`single_send`](Self::single_send)`.cancel_in_flight_on_close_after_ms` |
///
/// The embedded request target (single sends) is configured by
/// [`request_target_config`](Self::request_target_config), from
/// [`passive_level`](Self::passive_level) and [`single_send`](Self::single_send).
///
/// `Default` is DMF's zeroed configuration (no streaming, manual mode) with
/// the new options at their defaults (back-off on, the rest off).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ContinuousRequestTargetConfig {
    /// N: stream requests created at construction. 0 = no streaming; the CRT is
    /// then a plain non-streaming transport.
    pub continuous_request_count: u32,
    /// Input buffers pre-allocated (the input pool never grows).
    pub buffer_count_input: u32,
    /// Output buffers pre-allocated.
    pub buffer_count_output: u32,
    /// Type of the stream requests (`Invalid` makes every stream send fail).
    pub request_type: RequestType,
    /// Size of each input buffer; 0 = stream requests carry no input buffer.
    pub buffer_input_size: u32,
    /// Size of the client context area of each input buffer.
    pub buffer_context_input_size: u32,
    /// Size of each output buffer; 0 = stream requests carry no output buffer
    /// (zero-size streaming).
    pub buffer_output_size: u32,
    /// Size of the client context area of each output buffer.
    pub buffer_context_output_size: u32,
    /// The output pool allocates more buffers when empty.
    pub enable_look_aside_output: bool,
    /// Memory kind of the input buffers.
    pub pool_type_input: PoolType,
    /// Memory kind of the output buffers.
    pub pool_type_output: PoolType,
    /// IOCTL code of `Ioctl` / `InternalIoctl` stream requests.
    pub continuous_request_target_ioctl: u32,
    /// D0 exit: purge the target; D0 entry: restart it (before streaming is
    /// restarted). Independent of
    /// [`cancel_and_resend_request_in_d0_callbacks`](Self::cancel_and_resend_request_in_d0_callbacks)
    /// (see "Either power flag enables the power callbacks" in `docs/dmf-differences.md`). See [`ContinuousRequestTarget`](crate::ContinuousRequestTarget#power).
    pub purge_and_start_target_in_d0_callbacks: bool,
    /// D0 exit: stop streaming (remembering whether it ran); D0 entry:
    /// restart it if it ran. Works alone (see "Either power flag enables the power callbacks" in `docs/dmf-differences.md`).
    pub cancel_and_resend_request_in_d0_callbacks: bool,
    /// Who starts streaming.
    pub continuous_request_target_mode: StreamMode,
    /// Module attribute `PassiveLevel`: deliver stream completions (output
    /// callback) and single-send completions on a passive worker instead of
    /// the completion context.
    pub passive_level: bool,
    /// Deliver completions that arrive while streaming is stopping to
    /// [`StreamClient::buffer_output`](crate::StreamClient::buffer_output)
    /// (flagged with [`StreamCompletion::stopping`](crate::StreamCompletion::stopping));
    /// DMF discards them silently. They are counted either way.
    pub deliver_completions_during_stop: bool,
    /// When a stream request cannot get an output buffer, park it until one
    /// comes back (through [`buffer_put`](crate::ContinuousRequestTarget::buffer_put)
    /// at once, or on the next retry) instead of retiring it.
    pub auto_refill: bool,
    /// Auto-refill retry period, milliseconds: a request parked for a buffer
    /// also retries on this timer, catching buffers returned by dropping their
    /// guard. 0 = retry only on `buffer_put`.
    pub auto_refill_retry_ms: u32,
    /// Resend back-off for failing stream requests (see "Failing stream requests are re-sent with back-off" in `docs/dmf-differences.md`).
    pub backoff: Backoff,
    /// The send contexts of the non-streaming transport (single sends) and
    /// what close does with single sends still in flight. Default: 8
    /// contexts created up front (DMF: 8 pre-allocated context buffers),
    /// growing on demand (`max_contexts == 0`, DMF's look-aside), close
    /// waits (`cancel_in_flight_on_close_after_ms == None`, DMF).
    pub single_send: SendContextConfig,
}

impl Default for ContinuousRequestTargetConfig {
    fn default() -> Self {
        ContinuousRequestTargetConfig {
            continuous_request_count: 0,
            buffer_count_input: 0,
            buffer_count_output: 0,
            request_type: RequestType::Invalid,
            buffer_input_size: 0,
            buffer_context_input_size: 0,
            buffer_output_size: 0,
            buffer_context_output_size: 0,
            enable_look_aside_output: false,
            pool_type_input: PoolType::default(),
            pool_type_output: PoolType::default(),
            continuous_request_target_ioctl: 0,
            purge_and_start_target_in_d0_callbacks: false,
            cancel_and_resend_request_in_d0_callbacks: false,
            continuous_request_target_mode: StreamMode::Manual,
            passive_level: false,
            deliver_completions_during_stop: false,
            auto_refill: false,
            auto_refill_retry_ms: 10,
            backoff: Backoff::default(),
            single_send: SendContextConfig {
                preallocated_contexts: 8,
                ..SendContextConfig::default()
            },
        }
    }
}

impl ContinuousRequestTargetConfig {
    /// The configuration of the request target that carries the single
    /// sends: [`passive_level`](Self::passive_level) and
    /// [`single_send`](Self::single_send). Every request target a layer
    /// builds from this configuration (the CRT's own, a non-streaming DIMT
    /// target's) uses it.
    ///
    /// ```
    /// use dmf_continuous_request_target::{ContinuousRequestTargetConfig, SendContextConfig};
    /// let config = ContinuousRequestTargetConfig {
    ///     passive_level: true,
    ///     single_send: SendContextConfig {
    ///         max_contexts: 2,
    ///         cancel_in_flight_on_close_after_ms: Some(50),
    ///         ..ContinuousRequestTargetConfig::default().single_send
    ///     },
    ///     ..ContinuousRequestTargetConfig::default()
    /// };
    /// let rt = config.request_target_config();
    /// assert!(rt.passive_level);
    /// assert_eq!(rt.contexts, config.single_send);
    /// assert_eq!(rt.contexts.preallocated_contexts, 8);
    /// ```
    pub fn request_target_config(&self) -> RequestTargetConfig {
        RequestTargetConfig {
            passive_level: self.passive_level,
            contexts: self.single_send,
        }
    }

    /// Checks the combinations DMF only asserted. Returns a description of
    /// the first problem.
    pub fn validate(&self) -> Result<(), &'static str> {
        if self.buffer_input_size == 0 && self.buffer_count_input != 0 {
            return Err("buffer_count_input must be 0 when buffer_input_size is 0");
        }
        if self.buffer_output_size == 0 && self.buffer_count_output != 0 {
            return Err("buffer_count_output must be 0 when buffer_output_size is 0");
        }
        if self.buffer_output_size == 0 && self.enable_look_aside_output {
            return Err("enable_look_aside_output needs buffer_output_size > 0");
        }
        if self.continuous_request_count > 0
            && self.buffer_input_size > 0
            && self.buffer_count_input == 0
        {
            return Err("streaming with input buffers needs buffer_count_input > 0");
        }
        if self.continuous_request_count > 0
            && self.buffer_output_size > 0
            && self.buffer_count_output == 0
            && !self.enable_look_aside_output
        {
            return Err(
                "streaming with output buffers needs buffer_count_output > 0 or look-aside",
            );
        }
        Ok(())
    }
}
