//! NTSTATUS-compatible status codes.
//!
//! [`Status`] is a transparent wrapper around the 32-bit `NTSTATUS` value that
//! Windows kernel code uses everywhere. It converts losslessly to and from
//! `i32`, which is exactly `wdk_sys::NTSTATUS`, so the kernel backend passes
//! statuses through unchanged.
//!
//! ```
//! use dmf_wdf::Status;
//! let s = Status::CANCELLED;
//! assert!(s.is_error());
//! assert_eq!(i32::from(s), 0xC000_0120_u32 as i32);
//! assert_eq!(s.to_string(), "STATUS_CANCELLED (0xC0000120): the I/O request was cancelled");
//! assert_eq!(Status::from(0xC000_0120_u32 as i32), Status::CANCELLED);
//! ```

use core::fmt;

/// An `NTSTATUS` value.
///
/// # Invariants
///
/// None beyond being a 32-bit value: any `NTSTATUS` (including ones this crate
/// has no name for) round-trips unchanged.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(transparent)]
pub struct Status(i32);

/// `Result` whose error is an NTSTATUS.
///
/// By convention every `Err` holds a status for which [`Status::is_error`] or
/// [`Status::is_warning`] is true; use [`Status::ok`] to build one from a raw
/// status.
pub type Result<T = ()> = core::result::Result<T, Status>;

macro_rules! statuses {
    ($( $(#[$doc:meta])* $name:ident = $value:expr, $text:expr; )*) => {
        impl Status {
            $(
                $(#[$doc])*
                pub const $name: Status = Status($value as u32 as i32);
            )*

            /// The `STATUS_*` name of this code, if it is one this crate knows.
            pub const fn name(self) -> Option<&'static str> {
                match self.0 as u32 {
                    $( v if v == $value => Some(concat!("STATUS_", stringify!($name))), )*
                    _ => None,
                }
            }

            /// A short human-readable description, if the code is known.
            pub const fn description(self) -> Option<&'static str> {
                match self.0 as u32 {
                    $( v if v == $value => Some($text), )*
                    _ => None,
                }
            }
        }
    };
}

statuses! {
    /// The operation completed successfully.
    SUCCESS = 0x0000_0000u32, "the operation completed successfully";
    /// A wait timed out (a success-class code).
    TIMEOUT = 0x0000_0102u32, "the wait timed out";
    /// The operation is in progress and will complete later.
    PENDING = 0x0000_0103u32, "the operation is pending";
    /// Informational: the buffer was too small for all the data.
    BUFFER_OVERFLOW = 0x8000_0005u32, "the data was too large for the buffer";
    /// Warning: the device is busy.
    DEVICE_BUSY = 0x8000_0011u32, "the device is busy";
    /// Warning: there are no more entries.
    NO_MORE_ENTRIES = 0x8000_001Au32, "no more entries";
    /// Generic failure.
    UNSUCCESSFUL = 0xC000_0001u32, "the operation was unsuccessful";
    /// The request is not implemented.
    NOT_IMPLEMENTED = 0xC000_0002u32, "the request is not implemented";
    /// An invalid handle was given.
    INVALID_HANDLE = 0xC000_0008u32, "an invalid handle was given";
    /// An invalid parameter was given.
    INVALID_PARAMETER = 0xC000_000Du32, "an invalid parameter was given";
    /// The device does not exist.
    NO_SUCH_DEVICE = 0xC000_000Eu32, "the device does not exist";
    /// The request is not valid for this device.
    INVALID_DEVICE_REQUEST = 0xC000_0010u32, "the request is not valid for this device";
    /// Not enough memory.
    NO_MEMORY = 0xC000_0017u32, "not enough memory";
    /// Access was denied.
    ACCESS_DENIED = 0xC000_0022u32, "access was denied";
    /// The buffer is too small.
    BUFFER_TOO_SMALL = 0xC000_0023u32, "the buffer is too small";
    /// The object name was not found.
    OBJECT_NAME_NOT_FOUND = 0xC000_0034u32, "the object name was not found";
    /// The share access requested conflicts with an existing open.
    SHARING_VIOLATION = 0xC000_0043u32, "the requested share access conflicts with an existing open";
    /// A delete is pending on the object.
    DELETE_PENDING = 0xC000_0056u32, "a delete is pending";
    /// Insufficient system resources.
    INSUFFICIENT_RESOURCES = 0xC000_009Au32, "insufficient resources";
    /// The device is not ready.
    DEVICE_NOT_READY = 0xC000_00A3u32, "the device is not ready";
    /// The I/O operation timed out.
    IO_TIMEOUT = 0xC000_00B5u32, "the I/O operation timed out";
    /// The request is not supported.
    NOT_SUPPORTED = 0xC000_00BBu32, "the request is not supported";
    /// The request was not accepted.
    REQUEST_NOT_ACCEPTED = 0xC000_00D0u32, "the request was not accepted";
    /// The I/O request was cancelled.
    CANCELLED = 0xC000_0120u32, "the I/O request was cancelled";
    /// The object is in a state in which the operation is not allowed.
    INVALID_DEVICE_STATE = 0xC000_0184u32, "the device or object is in an invalid state for this operation";
    /// The buffer size is invalid.
    INVALID_BUFFER_SIZE = 0xC000_0206u32, "the buffer size is invalid";
    /// The device has been removed.
    DEVICE_REMOVED = 0xC000_02B6u32, "the device has been removed";
    /// No object with that id exists (or it is busy).
    OBJECTID_NOT_FOUND = 0xC000_02F0u32, "no object with that id was found";
    /// Memory corruption was detected (a guard area was overwritten).
    HEAP_CORRUPTION = 0xC000_0374u32, "memory corruption was detected";
    /// A request waiting in a stopped I/O target's queue was never sent: the
    /// target was purged or closed (`wdfstatus.h`).
    WDF_DEVICE_REMOVED_NOT_SENT = 0xC020_0206u32, "the request was not sent: its I/O target was purged or closed";
}

impl Status {
    /// Wraps a raw `NTSTATUS`.
    pub const fn from_raw(raw: i32) -> Self {
        Status(raw)
    }

    /// The raw `NTSTATUS` value.
    pub const fn raw(self) -> i32 {
        self.0
    }

    /// `NT_SUCCESS`: success and informational codes.
    pub const fn is_success(self) -> bool {
        self.0 >= 0
    }

    /// `NT_WARNING`: severity 2.
    pub const fn is_warning(self) -> bool {
        (self.0 as u32) >> 30 == 2
    }

    /// `NT_ERROR`: severity 3.
    pub const fn is_error(self) -> bool {
        (self.0 as u32) >> 30 == 3
    }

    /// `Ok(())` for success codes, `Err(self)` otherwise.
    pub const fn ok(self) -> Result<()> {
        if self.is_success() {
            Ok(())
        } else {
            Err(self)
        }
    }

    /// Folds a `Result` back into one status.
    pub fn from_result(result: Result<()>) -> Status {
        match result {
            Ok(()) => Status::SUCCESS,
            Err(s) => s,
        }
    }
}

impl From<i32> for Status {
    fn from(raw: i32) -> Self {
        Status(raw)
    }
}

impl From<Status> for i32 {
    fn from(status: Status) -> Self {
        status.0
    }
}

impl From<Result<()>> for Status {
    fn from(result: Result<()>) -> Self {
        Status::from_result(result)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.name(), self.description()) {
            (Some(name), Some(text)) => write!(f, "{name} (0x{:08X}): {text}", self.0 as u32),
            _ => write!(f, "NTSTATUS 0x{:08X}", self.0 as u32),
        }
    }
}

impl fmt::Debug for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name}"),
            None => write!(f, "NTSTATUS(0x{:08X})", self.0 as u32),
        }
    }
}

impl core::error::Error for Status {}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::string::ToString;

    #[test]
    fn severity_classes() {
        assert!(Status::SUCCESS.is_success());
        assert!(Status::PENDING.is_success());
        assert!(!Status::PENDING.is_error());
        assert!(Status::BUFFER_OVERFLOW.is_warning());
        assert!(!Status::BUFFER_OVERFLOW.is_success());
        assert!(Status::INVALID_DEVICE_STATE.is_error());
        assert_eq!(Status::CANCELLED.ok(), Err(Status::CANCELLED));
        assert_eq!(Status::SUCCESS.ok(), Ok(()));
    }

    #[test]
    fn names_and_display() {
        assert_eq!(
            Status::INVALID_DEVICE_STATE.name(),
            Some("STATUS_INVALID_DEVICE_STATE")
        );
        assert_eq!(Status::from_raw(0x1234).name(), None);
        assert_eq!(Status::from_raw(0x1234).to_string(), "NTSTATUS 0x00001234");
        assert_eq!(
            std::format!("{:?}", Status::IO_TIMEOUT),
            "STATUS_IO_TIMEOUT"
        );
        assert_eq!(
            Status::OBJECTID_NOT_FOUND.to_string(),
            "STATUS_OBJECTID_NOT_FOUND (0xC00002F0): no object with that id was found"
        );
    }

    #[test]
    fn raw_round_trip() {
        for raw in [0i32, 0x103, 0xC000_0120u32 as i32, -1, i32::MIN] {
            assert_eq!(i32::from(Status::from(raw)), raw);
        }
    }
}
