//! Conversions between the seam's types and the kernel's raw values.
//!
//! Everything here except the `wdk` submodule (Windows only) is plain arithmetic on the
//! documented numeric values of WDK enums and macros, compiled and unit-tested
//! on every host. On Windows, `const` assertions in `wdk` check each value
//! against the `wdk-sys` binding of the same name, so a mismatch fails the
//! Windows build instead of misbehaving in a driver.

use alloc::string::String;

use dmf_wdf::{Guid, InterfaceNotificationHandler, PowerState, Status, TargetState};

/// 100 ns intervals per millisecond (`WDF_TIMEOUT_TO_MS` in `wdfcore.h`).
pub const HUNDRED_NS_PER_MS: i64 = 10_000;

/// A relative timeout of `ms` milliseconds in the kernel's format: negative
/// 100 ns units (`WDF_REL_TIMEOUT_IN_MS(ms)` = `ms * -1 * WDF_TIMEOUT_TO_MS`).
///
/// Saturates instead of overflowing. `0` stays `0`, which `KeWaitForSingleObject`
/// reads as "do not wait" and `WDF_REQUEST_SEND_OPTIONS` as "no timeout"
/// (callers only set the timeout flag for non-zero values).
///
/// ```
/// assert_eq!(dmf_kmdf::convert::relative_timeout_100ns(250), -2_500_000);
/// assert_eq!(dmf_kmdf::convert::relative_timeout_100ns(0), 0);
/// ```
pub const fn relative_timeout_100ns(ms: u64) -> i64 {
    let ms = if ms > i64::MAX as u64 {
        i64::MAX
    } else {
        ms as i64
    };
    ms.saturating_mul(HUNDRED_NS_PER_MS).saturating_neg()
}

/// The due time for `WdfTimerStart` for a one-shot timer due in `ms`
/// milliseconds: a relative timeout, at least one 100 ns tick so that `0`
/// ("as soon as possible") is never read as an absolute time.
///
/// ```
/// assert_eq!(dmf_kmdf::convert::timer_due_time_100ns(0), -1);
/// assert_eq!(dmf_kmdf::convert::timer_due_time_100ns(5), -50_000);
/// ```
pub const fn timer_due_time_100ns(ms: u64) -> i64 {
    let due = relative_timeout_100ns(ms);
    if due == 0 {
        -1
    } else {
        due
    }
}

/// `_WDF_IO_TARGET_STATE` values (`wdfiotarget.h`, KMDF 1.33).
pub mod io_target_state {
    /// `WdfIoTargetStateUndefined`.
    pub const UNDEFINED: i32 = 0;
    /// `WdfIoTargetStarted`.
    pub const STARTED: i32 = 1;
    /// `WdfIoTargetStopped`.
    pub const STOPPED: i32 = 2;
    /// `WdfIoTargetClosedForQueryRemove`.
    pub const CLOSED_FOR_QUERY_REMOVE: i32 = 3;
    /// `WdfIoTargetClosed`.
    pub const CLOSED: i32 = 4;
    /// `WdfIoTargetDeleted`.
    pub const DELETED: i32 = 5;
    /// `WdfIoTargetPurged` (KMDF 1.11+).
    pub const PURGED: i32 = 6;
}

/// What `EvtIoTargetQueryRemove` returns to PnP, and whether it must close
/// the target itself ([`query_remove_outcome`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueryRemoveOutcome {
    /// The status returned to the PnP manager (success: the removal may go on).
    pub status: Status,
    /// Call `WdfIoTargetCloseForQueryRemove` before returning.
    pub close_for_query_remove: bool,
}

/// The decision of the query-remove trampoline, after the client's
/// `query_remove` ran (`client`: its status; `None` when the target has no
/// events attached) and with the target's raw state afterwards.
///
/// KMDF requires a driver that registers `EvtIoTargetQueryRemove` to call
/// `WdfIoTargetCloseForQueryRemove` whenever it lets the removal go on: an
/// open handle holds the removal up. So an accepted query-remove (no events,
/// or the client returned success) closes the target unless the client
/// already did; a veto returns the client's status and leaves the target
/// open.
///
/// ```
/// use dmf_kmdf::convert::{io_target_state, query_remove_outcome};
/// use dmf_wdf::Status;
/// let o = query_remove_outcome(None, io_target_state::STARTED);
/// assert!(o.status.is_success() && o.close_for_query_remove);
/// let o = query_remove_outcome(Some(Status::DEVICE_BUSY), io_target_state::STARTED);
/// assert_eq!(o.status, Status::DEVICE_BUSY);
/// assert!(!o.close_for_query_remove);
/// ```
pub fn query_remove_outcome(client: Option<Status>, raw_state_after: i32) -> QueryRemoveOutcome {
    let status = client.unwrap_or(Status::SUCCESS);
    let already_closed = matches!(
        raw_state_after,
        io_target_state::CLOSED_FOR_QUERY_REMOVE
            | io_target_state::CLOSED
            | io_target_state::DELETED
    );
    QueryRemoveOutcome {
        status,
        close_for_query_remove: status.is_success() && !already_closed,
    }
}

/// Maps a raw `WDF_IO_TARGET_STATE` to the seam's [`TargetState`].
///
/// The seam reports what KMDF reports: a remote target is constructed
/// `WdfIoTargetStarted` (`FxIoTarget::Construct`) and stays so until it is
/// opened and closed, so a never-opened target reads `Started`. `Purged` does
/// not pass requests to the device, like `Stopped`; `Deleted` and unknown
/// values read as `Closed`.
///
/// ```
/// use dmf_kmdf::convert::{io_target_state, target_state_from_raw};
/// use dmf_wdf::TargetState;
/// assert_eq!(target_state_from_raw(io_target_state::STARTED), TargetState::Started);
/// assert_eq!(target_state_from_raw(io_target_state::PURGED), TargetState::Stopped);
/// ```
pub const fn target_state_from_raw(raw: i32) -> TargetState {
    match raw {
        io_target_state::STARTED => TargetState::Started,
        io_target_state::STOPPED | io_target_state::PURGED => TargetState::Stopped,
        io_target_state::CLOSED_FOR_QUERY_REMOVE => TargetState::ClosedForQueryRemove,
        _ => TargetState::Closed,
    }
}

/// Whether [`IoTarget::open`](dmf_wdf::IoTarget::open) may proceed on a
/// target in raw state `raw` that was (`ever_opened`) or was not opened
/// successfully before.
///
/// KMDF (`FxIoTargetRemote::Open`) accepts an open whenever the target is not
/// open, and a never-opened target reports `WdfIoTargetStarted`. The backend
/// also refuses a target closed for a query-remove (its PnP notification
/// is still registered, so a callback could read the events being
/// replaced): an opened target may be opened again only once `Closed`.
///
/// ```
/// use dmf_kmdf::convert::{io_target_state, open_allowed};
/// assert!(open_allowed(io_target_state::STARTED, false)); // a new target
/// assert!(!open_allowed(io_target_state::STARTED, true)); // already open
/// assert!(open_allowed(io_target_state::CLOSED, true));
/// ```
pub const fn open_allowed(raw: i32, ever_opened: bool) -> bool {
    !ever_opened || raw == io_target_state::CLOSED
}

/// `_WDF_POWER_DEVICE_STATE` values (`wdfdevice.h`).
pub mod power_device_state {
    /// `WdfPowerDeviceInvalid`.
    pub const INVALID: i32 = 0;
    /// `WdfPowerDeviceD0`.
    pub const D0: i32 = 1;
    /// `WdfPowerDeviceD1`.
    pub const D1: i32 = 2;
    /// `WdfPowerDeviceD2`.
    pub const D2: i32 = 3;
    /// `WdfPowerDeviceD3`.
    pub const D3: i32 = 4;
    /// `WdfPowerDeviceD3Final`.
    pub const D3_FINAL: i32 = 5;
    /// `WdfPowerDevicePrepareForHibernation`.
    pub const PREPARE_FOR_HIBERNATION: i32 = 6;
}

/// Maps a raw `WDF_POWER_DEVICE_STATE` to the seam's [`PowerState`].
///
/// `WdfPowerDevicePrepareForHibernation` (the device leaves D0 but stays on
/// the hibernation path) and any unknown value map to `D3`: a layer must treat
/// them as "leaving D0".
///
/// ```
/// use dmf_kmdf::convert::power_state_from_raw;
/// use dmf_wdf::PowerState;
/// assert_eq!(power_state_from_raw(5), PowerState::D3Final);
/// assert_eq!(power_state_from_raw(6), PowerState::D3);
/// ```
pub const fn power_state_from_raw(raw: i32) -> PowerState {
    match raw {
        power_device_state::D0 => PowerState::D0,
        power_device_state::D1 => PowerState::D1,
        power_device_state::D2 => PowerState::D2,
        power_device_state::D3_FINAL => PowerState::D3Final,
        _ => PowerState::D3,
    }
}

/// `GUID_DEVICE_INTERFACE_ARRIVAL` (`wdmguid.h`):
/// `{CB3A4004-46F0-11D0-B08F-00609713053F}`.
pub const GUID_DEVICE_INTERFACE_ARRIVAL: Guid =
    Guid::from_u128(0xCB3A4004_46F0_11D0_B08F_00609713053F);

/// `GUID_DEVICE_INTERFACE_REMOVAL` (`wdmguid.h`):
/// `{CB3A4005-46F0-11D0-B08F-00609713053F}`.
pub const GUID_DEVICE_INTERFACE_REMOVAL: Guid =
    Guid::from_u128(0xCB3A4005_46F0_11D0_B08F_00609713053F);

/// Delivers one device-interface notification to `handler`: an arrival or a
/// removal of `symbolic_link` (`None` when its name could not be decoded for
/// lack of memory: nothing is delivered), per `event`
/// ([`GUID_DEVICE_INTERFACE_ARRIVAL`] / [`GUID_DEVICE_INTERFACE_REMOVAL`];
/// others are ignored).
///
/// Returns what the notification callback returns to the PnP manager:
/// always `STATUS_SUCCESS`, which is what PnP expects from an
/// interface-change callback whatever happened (only a query-remove can be
/// vetoed, and not here). A removal missed for lack of memory still reaches
/// an open target through its own remove callbacks.
///
/// ```
/// use dmf_kmdf::convert::{deliver_interface_change, GUID_DEVICE_INTERFACE_ARRIVAL};
/// struct Quiet;
/// impl dmf_wdf::InterfaceNotificationHandler for Quiet {
///     fn interface_arrived(&self, _: &str) {}
///     fn interface_removed(&self, _: &str) {}
/// }
/// let status = deliver_interface_change(&Quiet, &GUID_DEVICE_INTERFACE_ARRIVAL, None);
/// assert!(status.is_success());
/// ```
pub fn deliver_interface_change<H: InterfaceNotificationHandler + ?Sized>(
    handler: &H,
    event: &Guid,
    symbolic_link: Option<String>,
) -> Status {
    if let Some(link) = symbolic_link {
        if *event == GUID_DEVICE_INTERFACE_ARRIVAL {
            handler.interface_arrived(&link);
        } else if *event == GUID_DEVICE_INTERFACE_REMOVAL {
            handler.interface_removed(&link);
        }
    }
    Status::SUCCESS
}

/// Decodes a UTF-16 string (a `UNICODE_STRING` buffer, `Length / 2` units).
///
/// Lossless for well-formed UTF-16; an unpaired surrogate (never produced by
/// the PnP manager for a symbolic link) becomes U+FFFD. Returns `None` only if
/// the `String` cannot be allocated.
///
/// ```
/// let wide: Vec<u16> = r"\??\ROOT#X#0000#{guid}".encode_utf16().collect();
/// assert_eq!(dmf_kmdf::convert::utf16_to_string(&wide).as_deref(), Some(r"\??\ROOT#X#0000#{guid}"));
/// ```
pub fn utf16_to_string(units: &[u16]) -> Option<String> {
    let mut out = String::new();
    // Most symbolic links are ASCII: one byte per unit; the rest grows on demand.
    out.try_reserve_exact(units.len()).ok()?;
    for c in char::decode_utf16(units.iter().copied()) {
        let c = c.unwrap_or(char::REPLACEMENT_CHARACTER);
        out.try_reserve(c.len_utf8()).ok()?;
        out.push(c);
    }
    Some(out)
}

/// The byte length of `s` encoded as UTF-16 without terminator, if it fits a
/// `UNICODE_STRING` (`Length` is a `USHORT` count of bytes).
///
/// ```
/// assert_eq!(dmf_kmdf::convert::unicode_string_byte_len("abc"), Some(6));
/// assert_eq!(dmf_kmdf::convert::unicode_string_byte_len(&"x".repeat(40_000)), None);
/// ```
pub fn unicode_string_byte_len(s: &str) -> Option<u16> {
    let units = s.encode_utf16().count();
    u16::try_from(units.checked_mul(2)?).ok()
}

/// Conversions to and from `wdk-sys` types (`cfg(kmdf)`: Windows MSVC, or
/// the `emulation` feature).
#[cfg(kmdf)]
pub mod wdk {
    use dmf_wdf::{Guid, Result, Status};
    use wdk_sys::{_WDF_IO_TARGET_STATE, _WDF_POWER_DEVICE_STATE, GUID, NTSTATUS};

    use super::{io_target_state as ts, power_device_state as ps};

    // The numeric mappings above are checked against the bindings here: a
    // renamed or renumbered constant fails the Windows build.
    const _: () = {
        assert!(ts::UNDEFINED == _WDF_IO_TARGET_STATE::WdfIoTargetStateUndefined);
        assert!(ts::STARTED == _WDF_IO_TARGET_STATE::WdfIoTargetStarted);
        assert!(ts::STOPPED == _WDF_IO_TARGET_STATE::WdfIoTargetStopped);
        assert!(
            ts::CLOSED_FOR_QUERY_REMOVE == _WDF_IO_TARGET_STATE::WdfIoTargetClosedForQueryRemove
        );
        assert!(ts::CLOSED == _WDF_IO_TARGET_STATE::WdfIoTargetClosed);
        assert!(ts::DELETED == _WDF_IO_TARGET_STATE::WdfIoTargetDeleted);
        assert!(ts::PURGED == _WDF_IO_TARGET_STATE::WdfIoTargetPurged);
        assert!(ps::INVALID == _WDF_POWER_DEVICE_STATE::WdfPowerDeviceInvalid);
        assert!(ps::D0 == _WDF_POWER_DEVICE_STATE::WdfPowerDeviceD0);
        assert!(ps::D1 == _WDF_POWER_DEVICE_STATE::WdfPowerDeviceD1);
        assert!(ps::D2 == _WDF_POWER_DEVICE_STATE::WdfPowerDeviceD2);
        assert!(ps::D3 == _WDF_POWER_DEVICE_STATE::WdfPowerDeviceD3);
        assert!(ps::D3_FINAL == _WDF_POWER_DEVICE_STATE::WdfPowerDeviceD3Final);
        assert!(
            ps::PREPARE_FOR_HIBERNATION
                == _WDF_POWER_DEVICE_STATE::WdfPowerDevicePrepareForHibernation
        );
    };

    /// A seam [`Guid`] as a `wdk_sys::GUID` (same layout, field by field).
    pub const fn guid_to_wdk(guid: &Guid) -> GUID {
        GUID {
            Data1: guid.data1,
            Data2: guid.data2,
            Data3: guid.data3,
            Data4: guid.data4,
        }
    }

    /// A `wdk_sys::GUID` as a seam [`Guid`].
    pub const fn guid_from_wdk(guid: &GUID) -> Guid {
        Guid {
            data1: guid.Data1,
            data2: guid.Data2,
            data3: guid.Data3,
            data4: guid.Data4,
        }
    }

    /// An `NTSTATUS` as a seam [`Status`] (both are the same 32-bit value).
    pub const fn status(nt: NTSTATUS) -> Status {
        Status::from_raw(nt)
    }

    /// `Ok(())` for `NT_SUCCESS(nt)`, `Err(status)` otherwise.
    pub const fn nt_result(nt: NTSTATUS) -> Result<()> {
        Status::from_raw(nt).ok()
    }

    /// A failure status for an `Err`: `nt` if it is a warning or an error,
    /// `fallback` if the framework reported a success code for a failed call.
    pub const fn failure(nt: NTSTATUS, fallback: Status) -> Status {
        let s = Status::from_raw(nt);
        if s.is_success() {
            fallback
        } else {
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Seen(std::sync::Mutex<std::vec::Vec<(bool, String)>>);
    impl InterfaceNotificationHandler for Seen {
        fn interface_arrived(&self, link: &str) {
            self.0.lock().unwrap().push((true, link.into()));
        }
        fn interface_removed(&self, link: &str) {
            self.0.lock().unwrap().push((false, link.into()));
        }
    }

    #[test]
    fn interface_notifications_always_return_success_to_pnp() {
        let seen = Seen::default();
        let link = || Some(String::from(r"\??\ROOT#X#0000#{g}"));
        let other = Guid::from_u128(1);
        for (event, name) in [
            (&GUID_DEVICE_INTERFACE_ARRIVAL, link()),
            (&GUID_DEVICE_INTERFACE_REMOVAL, link()),
            (&other, link()),
            // The name could not be allocated: nothing delivered, and still
            // success (a failure status means nothing to PnP here).
            (&GUID_DEVICE_INTERFACE_ARRIVAL, None),
        ] {
            assert_eq!(
                deliver_interface_change(&seen, event, name),
                Status::SUCCESS
            );
        }
        let seen = seen.0.into_inner().unwrap();
        assert_eq!(
            seen,
            [
                (true, String::from(r"\??\ROOT#X#0000#{g}")),
                (false, String::from(r"\??\ROOT#X#0000#{g}")),
            ]
        );
    }

    #[test]
    fn an_accepted_query_remove_closes_the_target() {
        let all = [
            io_target_state::UNDEFINED,
            io_target_state::STARTED,
            io_target_state::STOPPED,
            io_target_state::CLOSED_FOR_QUERY_REMOVE,
            io_target_state::CLOSED,
            io_target_state::DELETED,
            io_target_state::PURGED,
        ];
        for state in all {
            let open = !matches!(
                state,
                io_target_state::CLOSED_FOR_QUERY_REMOVE
                    | io_target_state::CLOSED
                    | io_target_state::DELETED
            );
            // No events attached: success, and the handle must not stay open.
            let o = query_remove_outcome(None, state);
            assert_eq!(o.status, Status::SUCCESS);
            assert_eq!(o.close_for_query_remove, open, "state {state}");
            // The client accepted but did not close: close for it.
            let o = query_remove_outcome(Some(Status::SUCCESS), state);
            assert_eq!(o.close_for_query_remove, open, "state {state}");
            // A veto keeps the target open and reaches PnP unchanged.
            let o = query_remove_outcome(Some(Status::DEVICE_BUSY), state);
            assert_eq!(o.status, Status::DEVICE_BUSY);
            assert!(!o.close_for_query_remove);
        }
    }
    use alloc::vec::Vec;

    #[test]
    fn timeouts_are_negative_100ns() {
        assert_eq!(relative_timeout_100ns(1), -10_000);
        assert_eq!(relative_timeout_100ns(1_000), -10_000_000);
        assert_eq!(relative_timeout_100ns(u64::MAX), -i64::MAX);
        assert_eq!(
            relative_timeout_100ns(u64::from(u32::MAX)),
            -42_949_672_950_000
        );
        assert_eq!(timer_due_time_100ns(0), -1);
        assert_eq!(timer_due_time_100ns(1), -10_000);
    }

    #[test]
    fn target_states() {
        use io_target_state::*;
        assert_eq!(target_state_from_raw(STARTED), TargetState::Started);
        assert_eq!(target_state_from_raw(STOPPED), TargetState::Stopped);
        assert_eq!(target_state_from_raw(PURGED), TargetState::Stopped);
        assert_eq!(
            target_state_from_raw(CLOSED_FOR_QUERY_REMOVE),
            TargetState::ClosedForQueryRemove
        );
        assert_eq!(target_state_from_raw(CLOSED), TargetState::Closed);
        assert_eq!(target_state_from_raw(DELETED), TargetState::Closed);
        assert_eq!(target_state_from_raw(UNDEFINED), TargetState::Closed);
        assert_eq!(target_state_from_raw(99), TargetState::Closed);
    }

    /// KMDF constructs every target `WdfIoTargetStarted`: the first open of a
    /// target must not be refused because it reads `Started`.
    #[test]
    fn a_never_opened_target_reads_started_and_may_be_opened() {
        use io_target_state::*;
        assert_eq!(target_state_from_raw(STARTED), TargetState::Started);
        assert!(open_allowed(STARTED, false));
        // A failed first open leaves the state as it was.
        assert!(open_allowed(STOPPED, false));
        assert!(open_allowed(CLOSED, false));
    }

    #[test]
    fn an_opened_target_may_be_opened_again_only_once_closed() {
        use io_target_state::*;
        assert!(open_allowed(CLOSED, true));
        for raw in [STARTED, STOPPED, PURGED, CLOSED_FOR_QUERY_REMOVE, DELETED] {
            assert!(!open_allowed(raw, true), "raw state {raw}");
        }
    }

    #[test]
    fn power_states_match_the_seam_discriminants() {
        for s in [
            PowerState::D0,
            PowerState::D1,
            PowerState::D2,
            PowerState::D3,
            PowerState::D3Final,
        ] {
            assert_eq!(power_state_from_raw(s as u32 as i32), s);
        }
        assert_eq!(
            power_state_from_raw(power_device_state::INVALID),
            PowerState::D3
        );
        assert_eq!(
            power_state_from_raw(power_device_state::PREPARE_FOR_HIBERNATION),
            PowerState::D3
        );
        assert_eq!(power_state_from_raw(-1), PowerState::D3);
    }

    #[test]
    fn interface_change_guids() {
        assert_eq!(
            GUID_DEVICE_INTERFACE_ARRIVAL,
            "{CB3A4004-46F0-11D0-B08F-00609713053F}".parse().unwrap()
        );
        assert_eq!(
            GUID_DEVICE_INTERFACE_ARRIVAL.data4,
            [0xB0, 0x8F, 0x00, 0x60, 0x97, 0x13, 0x05, 0x3F]
        );
        assert_eq!(GUID_DEVICE_INTERFACE_REMOVAL.data1, 0xCB3A_4005);
        assert_ne!(GUID_DEVICE_INTERFACE_ARRIVAL, GUID_DEVICE_INTERFACE_REMOVAL);
    }

    #[test]
    fn utf16_decoding() {
        let s = "\\??\\USB#VID_045E&PID_0001#ÄÖ€𝄞#{4d1e55b2-f16f-11cf-88cb-001111000030}";
        let wide: Vec<u16> = s.encode_utf16().collect();
        assert_eq!(utf16_to_string(&wide).as_deref(), Some(s));
        assert_eq!(utf16_to_string(&[]).as_deref(), Some(""));
        // An unpaired high surrogate is replaced, the rest kept.
        assert_eq!(
            utf16_to_string(&[0x61, 0xD800, 0x62]).as_deref(),
            Some("a\u{FFFD}b")
        );
    }

    #[test]
    fn unicode_string_lengths() {
        assert_eq!(unicode_string_byte_len(""), Some(0));
        assert_eq!(unicode_string_byte_len("€"), Some(2));
        assert_eq!(unicode_string_byte_len("𝄞"), Some(4));
        assert_eq!(unicode_string_byte_len(&"a".repeat(32_767)), Some(65_534));
        assert_eq!(unicode_string_byte_len(&"a".repeat(32_768)), None);
    }
}
