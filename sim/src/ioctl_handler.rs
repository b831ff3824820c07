//! DMF's `Tests_IoctlHandler`: the target emulator every DMF target-layer test
//! talks to (`Dmf_Tests_IoctlHandler.c`, `Dmf_Tests_IoctlHandler_Public.h`).
//!
//! | IOCTL | behaviour |
//! |---|---|
//! | [`IOCTL_SLEEP`] | input ≥ [`SLEEP_INPUT_SIZE`] bytes (`{ i32 time_to_sleep_ms; u64 reuse_event }`, packed, little-endian), else `STATUS_BUFFER_TOO_SMALL`. Parked cancelable for `time_to_sleep_ms` of simulated time, then `STATUS_SUCCESS`, information 0; cancelled while parked: `STATUS_CANCELLED`. |
//! | [`IOCTL_ZEROBUFFER`] | zeroes the output buffer, information = output length; parked cancelable for `rand(0, max)` ms (`max` = [`IoctlHandlerConfig::max_random_delay_ms`], 5000 by default), then success; cancelled: `STATUS_CANCELLED` (information stays the output length, as in DMF). |
//! | [`IOCTL_ZEROSIZE`] | information = output length (0 in DMF's test), same delay and cancellation. |
//! | other codes | `STATUS_NOT_SUPPORTED`. |
//!
//! Only `IRP_MJ_DEVICE_CONTROL` ([`RequestType::Ioctl`]) is handled, unless
//! [`IoctlHandlerConfig::handle_internal_ioctls`] is set; other request types
//! complete with `STATUS_INVALID_DEVICE_REQUEST`.
//!
//! ```
//! use dmf_sim::ioctl_handler::{SleepRequest, SLEEP_INPUT_SIZE};
//! let bytes = SleepRequest { time_to_sleep_ms: 250, reuse_event: 0 }.to_bytes();
//! assert_eq!(bytes.len(), SLEEP_INPUT_SIZE);
//! assert_eq!(SleepRequest::from_bytes(&bytes).unwrap().time_to_sleep_ms, 250);
//! ```

use dmf_wdf::{Guid, RequestType, Status};

use crate::device::DeviceHandler;
use crate::irp::Irp;

/// `FILE_DEVICE_UNKNOWN`.
pub const FILE_DEVICE_UNKNOWN: u32 = 0x0000_0022;
/// `METHOD_BUFFERED`.
pub const METHOD_BUFFERED: u32 = 0;
/// `FILE_WRITE_ACCESS`.
pub const FILE_WRITE_ACCESS: u32 = 0x0002;

/// The `CTL_CODE` macro.
pub const fn ctl_code(device_type: u32, function: u32, method: u32, access: u32) -> u32 {
    (device_type << 16) | (access << 14) | (function << 2) | method
}

/// `IOCTL_Tests_IoctlHandler_SLEEP`.
pub const IOCTL_SLEEP: u32 = ctl_code(
    FILE_DEVICE_UNKNOWN,
    4000,
    METHOD_BUFFERED,
    FILE_WRITE_ACCESS,
);
/// `IOCTL_Tests_IoctlHandler_ZEROBUFFER`.
pub const IOCTL_ZEROBUFFER: u32 = ctl_code(
    FILE_DEVICE_UNKNOWN,
    4001,
    METHOD_BUFFERED,
    FILE_WRITE_ACCESS,
);
/// `IOCTL_Tests_IoctlHandler_ZEROSIZE`.
pub const IOCTL_ZEROSIZE: u32 = ctl_code(
    FILE_DEVICE_UNKNOWN,
    4002,
    METHOD_BUFFERED,
    FILE_WRITE_ACCESS,
);

/// `GUID_DEVINTERFACE_Tests_IoctlHandler` (`{FD9FF0B7-029F-4D1E-94DA-8D8CC2BD40CF}`, DMF's value).
pub const GUID_DEVINTERFACE_TESTS_IOCTL_HANDLER: Guid =
    Guid::from_u128(0xFD9F_F0B7_029F_4D1E_94DA_8D8C_C2BD_40CF);

/// Size of the packed `Tests_IoctlHandler_Sleep` structure on 64-bit Windows.
pub const SLEEP_INPUT_SIZE: usize = 12;

/// `Tests_IoctlHandler_Sleep`: the input of [`IOCTL_SLEEP`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SleepRequest {
    /// How long the device holds the request, milliseconds (negative = 0).
    pub time_to_sleep_ms: i32,
    /// Opaque pointer-sized value (DMF stores the reuse event here); ignored by the device.
    pub reuse_event: u64,
}

impl SleepRequest {
    /// The packed little-endian encoding.
    pub fn to_bytes(&self) -> [u8; SLEEP_INPUT_SIZE] {
        let mut b = [0u8; SLEEP_INPUT_SIZE];
        b[..4].copy_from_slice(&self.time_to_sleep_ms.to_le_bytes());
        b[4..].copy_from_slice(&self.reuse_event.to_le_bytes());
        b
    }

    /// Writes the encoding into the first [`SLEEP_INPUT_SIZE`] bytes of `buf`;
    /// `false` if `buf` is too small.
    pub fn write_to(&self, buf: &mut [u8]) -> bool {
        match buf.get_mut(..SLEEP_INPUT_SIZE) {
            Some(dst) => {
                dst.copy_from_slice(&self.to_bytes());
                true
            }
            None => false,
        }
    }

    /// Decodes the first [`SLEEP_INPUT_SIZE`] bytes; `None` if too short.
    pub fn from_bytes(bytes: &[u8]) -> Option<SleepRequest> {
        let b = bytes.get(..SLEEP_INPUT_SIZE)?;
        let mut t = [0u8; 4];
        t.copy_from_slice(&b[..4]);
        let mut e = [0u8; 8];
        e.copy_from_slice(&b[4..]);
        Some(SleepRequest {
            time_to_sleep_ms: i32::from_le_bytes(t),
            reuse_event: u64::from_le_bytes(e),
        })
    }
}

/// Encodes an [`IOCTL_SLEEP`] input.
pub fn encode_sleep(time_to_sleep_ms: i32) -> [u8; SLEEP_INPUT_SIZE] {
    SleepRequest {
        time_to_sleep_ms,
        reuse_event: 0,
    }
    .to_bytes()
}

/// Settings of a [`TestsIoctlHandler`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoctlHandlerConfig {
    /// Upper bound of the random delay of `ZEROBUFFER` / `ZEROSIZE` (DMF: 5000).
    pub max_random_delay_ms: u32,
    /// Also handle `IRP_MJ_INTERNAL_DEVICE_CONTROL` (DMF: no).
    pub handle_internal_ioctls: bool,
}

impl Default for IoctlHandlerConfig {
    fn default() -> Self {
        IoctlHandlerConfig {
            max_random_delay_ms: 5000,
            handle_internal_ioctls: false,
        }
    }
}

/// The `Tests_IoctlHandler` device (see the [module documentation](self)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TestsIoctlHandler {
    config: IoctlHandlerConfig,
}

impl TestsIoctlHandler {
    /// A handler with `config`.
    pub fn new(config: IoctlHandlerConfig) -> Self {
        TestsIoctlHandler { config }
    }

    /// The configuration.
    pub fn config(&self) -> IoctlHandlerConfig {
        self.config
    }
}

impl DeviceHandler for TestsIoctlHandler {
    fn handle(&self, mut irp: Irp) {
        let accepted = match irp.request_type() {
            RequestType::Ioctl => true,
            RequestType::InternalIoctl => self.config.handle_internal_ioctls,
            _ => false,
        };
        if !accepted {
            irp.complete(Status::INVALID_DEVICE_REQUEST, 0);
            return;
        }
        match irp.ioctl() {
            IOCTL_SLEEP => {
                let sleep = SleepRequest::from_bytes(&irp.input());
                match sleep {
                    Some(s) => {
                        let ms = u64::try_from(s.time_to_sleep_ms).unwrap_or(0);
                        irp.complete_after_cancelable(ms, Status::SUCCESS, 0);
                    }
                    None => irp.complete(Status::BUFFER_TOO_SMALL, 0),
                }
            }
            IOCTL_ZEROBUFFER => {
                let len = {
                    let mut out = irp.output();
                    out.fill(0);
                    out.len()
                };
                let ms = irp.random(0, u64::from(self.config.max_random_delay_ms));
                irp.complete_after_cancelable(ms, Status::SUCCESS, len);
            }
            IOCTL_ZEROSIZE => {
                let len = irp.output_len();
                let ms = irp.random(0, u64::from(self.config.max_random_delay_ms));
                irp.complete_after_cancelable(ms, Status::SUCCESS, len);
            }
            _ => irp.complete(Status::NOT_SUPPORTED, 0),
        }
    }
}
