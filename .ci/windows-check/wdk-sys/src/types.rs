//! Types, structures, enums, function-pointer types and the WDF function
//! table of KMDF 1.33, as far as `dmf-kmdf` and the sample driver use them.
//!
//! Written from the documented C declarations (`ntdef.h`, `wdm.h`, the KMDF
//! 1.33 `wdf*.h` headers) in the shapes bindgen gives them in the real
//! `wdk-sys`. `wdk-macros` parses this file: keep `_WDFFUNCENUM` and the
//! `PFN_WDF*` aliases in bindgen's form (module of `Type` constants; aliases
//! of `Option<unsafe extern "C" fn(DriverGlobals: PWDF_DRIVER_GLOBALS, ..)>`).
//!
//! Each `PFN_WDF*` alias is written out in full: `wdk-macros` refuses an
//! alias of an alias, and one malformed alias fails every call site.
//!
//! A new WDF function needs three things here: its `..TableIndex` (the
//! position in `wdffuncenum.h` of KMDF 1.33), its `PFN_` alias, and the types
//! of its parameters.

use core::ffi::{c_char, c_int, c_void};

// ---------------------------------------------------------------------------
// Base types (ntdef.h / basetsd.h). Windows is LLP64: `long` is 32 bits.
// ---------------------------------------------------------------------------

/// `VOID*`.
pub type PVOID = *mut c_void;
/// `HANDLE`.
pub type HANDLE = *mut c_void;
/// `CHAR`.
pub type CHAR = c_char;
/// `CCHAR`.
pub type CCHAR = c_char;
/// `PCHAR`.
pub type PCHAR = *mut CHAR;
/// `PCSTR`.
pub type PCSTR = *const CHAR;
/// `LPCSTR`.
pub type LPCSTR = *const CHAR;
/// `UCHAR`.
pub type UCHAR = u8;
/// `BOOLEAN`: `TRUE` is 1, `FALSE` 0.
pub type BOOLEAN = UCHAR;
/// `USHORT`.
pub type USHORT = u16;
/// `WCHAR`.
pub type WCHAR = u16;
/// `PWCH`.
pub type PWCH = *mut WCHAR;
/// `LONG` (32 bits on Windows).
pub type LONG = i32;
/// `ULONG` (32 bits on Windows).
pub type ULONG = u32;
/// `PULONG`.
pub type PULONG = *mut ULONG;
/// `LONGLONG`.
pub type LONGLONG = i64;
/// `PLONGLONG`.
pub type PLONGLONG = *mut LONGLONG;
/// `ULONG64`.
pub type ULONG64 = u64;
/// `PULONG64`.
pub type PULONG64 = *mut ULONG64;
/// `ULONG_PTR` (pointer-sized; x64 and ARM64 only here).
pub type ULONG_PTR = u64;
/// `SIZE_T`.
pub type SIZE_T = ULONG_PTR;
/// `ACCESS_MASK`.
pub type ACCESS_MASK = ULONG;
/// `NTSTATUS`.
pub type NTSTATUS = LONG;
/// `KIRQL`.
pub type KIRQL = UCHAR;
/// `KSPIN_LOCK`.
pub type KSPIN_LOCK = ULONG_PTR;
/// `PKSPIN_LOCK`.
pub type PKSPIN_LOCK = *mut KSPIN_LOCK;
/// `KPRIORITY`.
pub type KPRIORITY = LONG;
/// `KPROCESSOR_MODE`.
pub type KPROCESSOR_MODE = CCHAR;
/// `POOL_FLAGS` (`wdm.h`).
pub type POOL_FLAGS = ULONG64;

/// `LARGE_INTEGER` (`ntdef.h`).
#[repr(C)]
#[derive(Copy, Clone)]
pub union _LARGE_INTEGER {
    /// The low and high halves.
    pub __bindgen_anon_1: _LARGE_INTEGER__bindgen_ty_1,
    /// The same halves, named `u`.
    pub u: _LARGE_INTEGER__bindgen_ty_1,
    /// The whole 64-bit value.
    pub QuadPart: LONGLONG,
}
/// The halves of a `LARGE_INTEGER`.
#[repr(C)]
#[derive(Debug, Default, Copy, Clone)]
pub struct _LARGE_INTEGER__bindgen_ty_1 {
    /// Low 32 bits.
    pub LowPart: ULONG,
    /// High 32 bits.
    pub HighPart: LONG,
}
impl Default for _LARGE_INTEGER {
    fn default() -> Self {
        _LARGE_INTEGER { QuadPart: 0 }
    }
}
/// `LARGE_INTEGER`.
pub type LARGE_INTEGER = _LARGE_INTEGER;
/// `PLARGE_INTEGER`.
pub type PLARGE_INTEGER = *mut LARGE_INTEGER;

/// `GUID` (`guiddef.h`).
#[repr(C)]
#[derive(Debug, Default, Copy, Clone, PartialEq, Eq)]
pub struct _GUID {
    /// First 32 bits.
    pub Data1: ULONG,
    /// Next 16 bits.
    pub Data2: USHORT,
    /// Next 16 bits.
    pub Data3: USHORT,
    /// Last 64 bits, as bytes.
    pub Data4: [UCHAR; 8],
}
/// `GUID`.
pub type GUID = _GUID;

/// `UNICODE_STRING` (`ntdef.h`): counted UTF-16, lengths in bytes.
#[repr(C)]
#[derive(Debug, Copy, Clone)]
pub struct _UNICODE_STRING {
    /// Bytes in use (no terminator).
    pub Length: USHORT,
    /// Bytes available in `Buffer`.
    pub MaximumLength: USHORT,
    /// The characters.
    pub Buffer: PWCH,
}
impl Default for _UNICODE_STRING {
    fn default() -> Self {
        _UNICODE_STRING {
            Length: 0,
            MaximumLength: 0,
            Buffer: core::ptr::null_mut(),
        }
    }
}
/// `UNICODE_STRING`.
pub type UNICODE_STRING = _UNICODE_STRING;
/// `PUNICODE_STRING`.
pub type PUNICODE_STRING = *mut UNICODE_STRING;
/// `PCUNICODE_STRING`.
pub type PCUNICODE_STRING = *const UNICODE_STRING;

/// `LIST_ENTRY` (`ntdef.h`).
#[repr(C)]
#[derive(Debug, Copy, Clone)]
pub struct _LIST_ENTRY {
    /// Next entry.
    pub Flink: *mut _LIST_ENTRY,
    /// Previous entry.
    pub Blink: *mut _LIST_ENTRY,
}
impl Default for _LIST_ENTRY {
    fn default() -> Self {
        _LIST_ENTRY {
            Flink: core::ptr::null_mut(),
            Blink: core::ptr::null_mut(),
        }
    }
}
/// `LIST_ENTRY`.
pub type LIST_ENTRY = _LIST_ENTRY;

/// `DISPATCHER_HEADER` (`wdm.h`), reduced to its first word's `Lock` view:
/// the kernel owns every field; drivers only need its size and alignment.
#[repr(C)]
#[derive(Copy, Clone)]
pub struct _DISPATCHER_HEADER {
    /// The type/flags word (a union of views in C).
    pub __bindgen_anon_1: _DISPATCHER_HEADER__bindgen_ty_1,
    /// Signal state.
    pub SignalState: LONG,
    /// Threads waiting on the object.
    pub WaitListHead: LIST_ENTRY,
}
/// The first word of a `DISPATCHER_HEADER`.
#[repr(C)]
#[derive(Copy, Clone)]
pub union _DISPATCHER_HEADER__bindgen_ty_1 {
    /// The word as a lock.
    pub Lock: LONG,
    /// The same, non-volatile.
    pub LockNV: LONG,
}
impl Default for _DISPATCHER_HEADER {
    fn default() -> Self {
        _DISPATCHER_HEADER {
            __bindgen_anon_1: _DISPATCHER_HEADER__bindgen_ty_1 { Lock: 0 },
            SignalState: 0,
            WaitListHead: LIST_ENTRY::default(),
        }
    }
}
/// `DISPATCHER_HEADER`.
pub type DISPATCHER_HEADER = _DISPATCHER_HEADER;

/// `KEVENT` (`wdm.h`).
#[repr(C)]
#[derive(Copy, Clone, Default)]
pub struct _KEVENT {
    /// The dispatcher header.
    pub Header: DISPATCHER_HEADER,
}
/// `KEVENT`.
pub type KEVENT = _KEVENT;
/// `PRKEVENT`.
pub type PRKEVENT = *mut _KEVENT;

/// `EVENT_TYPE` (`ntdef.h`).
pub mod _EVENT_TYPE {
    /// The enum's C type.
    pub type Type = core::ffi::c_int;
    /// Manual reset.
    pub const NotificationEvent: Type = 0;
    /// Auto reset.
    pub const SynchronizationEvent: Type = 1;
}
/// `EVENT_TYPE`.
pub use self::_EVENT_TYPE::Type as EVENT_TYPE;

/// `KWAIT_REASON` (`wdm.h`), the first value only.
pub mod _KWAIT_REASON {
    /// The enum's C type.
    pub type Type = core::ffi::c_int;
    /// A driver waiting for its own reasons.
    pub const Executive: Type = 0;
}
/// `KWAIT_REASON`.
pub use self::_KWAIT_REASON::Type as KWAIT_REASON;

/// `MODE` (`wdm.h`).
pub mod _MODE {
    /// The enum's C type.
    pub type Type = core::ffi::c_int;
    /// Kernel mode.
    pub const KernelMode: Type = 0;
    /// User mode.
    pub const UserMode: Type = 1;
    /// Number of modes.
    pub const MaximumMode: Type = 2;
}

/// `DRIVER_OBJECT` (`wdm.h`): only ever handled by pointer here, so its
/// fields are not declared; the size is the x64/ARM64 one.
#[repr(C, align(8))]
pub struct _DRIVER_OBJECT {
    _opaque: [u8; 0x150],
}
/// `DRIVER_OBJECT`.
pub type DRIVER_OBJECT = _DRIVER_OBJECT;
/// `PDRIVER_OBJECT`.
pub type PDRIVER_OBJECT = *mut _DRIVER_OBJECT;

/// `DEVICE_OBJECT` (`wdm.h`): opaque here.
#[repr(C)]
pub struct _DEVICE_OBJECT {
    _unused: [u8; 0],
}
/// `PDEVICE_OBJECT`.
pub type PDEVICE_OBJECT = *mut _DEVICE_OBJECT;

/// `FILE_OBJECT` (`wdm.h`): opaque here.
#[repr(C)]
pub struct _FILE_OBJECT {
    _unused: [u8; 0],
}
/// `PFILE_OBJECT`.
pub type PFILE_OBJECT = *mut _FILE_OBJECT;

/// `IRP` (`wdm.h`): opaque here.
#[repr(C)]
pub struct _IRP {
    _unused: [u8; 0],
}
/// `PIRP`.
pub type PIRP = *mut _IRP;

/// `IO_STATUS_BLOCK` (`wdm.h`).
#[repr(C)]
#[derive(Copy, Clone)]
pub struct _IO_STATUS_BLOCK {
    /// `Status` or `Pointer`.
    pub __bindgen_anon_1: _IO_STATUS_BLOCK__bindgen_ty_1,
    /// Request-dependent (bytes transferred for reads, writes and IOCTLs).
    pub Information: ULONG_PTR,
}
/// The first member of an `IO_STATUS_BLOCK`.
#[repr(C)]
#[derive(Copy, Clone)]
pub union _IO_STATUS_BLOCK__bindgen_ty_1 {
    /// The completion status.
    pub Status: NTSTATUS,
    /// Reserved.
    pub Pointer: PVOID,
}
/// `IO_STATUS_BLOCK`.
pub type IO_STATUS_BLOCK = _IO_STATUS_BLOCK;

/// `IO_NOTIFICATION_EVENT_CATEGORY` (`wdm.h`).
pub mod _IO_NOTIFICATION_EVENT_CATEGORY {
    /// The enum's C type.
    pub type Type = core::ffi::c_int;
    /// Reserved.
    pub const EventCategoryReserved: Type = 0;
    /// Hardware profile changes.
    pub const EventCategoryHardwareProfileChange: Type = 1;
    /// Device interface arrivals and removals.
    pub const EventCategoryDeviceInterfaceChange: Type = 2;
    /// Changes of a target device.
    pub const EventCategoryTargetDeviceChange: Type = 3;
    /// Kernel soft restart.
    pub const EventCategoryKernelSoftRestart: Type = 4;
}
/// `IO_NOTIFICATION_EVENT_CATEGORY`.
pub use self::_IO_NOTIFICATION_EVENT_CATEGORY::Type as IO_NOTIFICATION_EVENT_CATEGORY;

/// `DRIVER_NOTIFICATION_CALLBACK_ROUTINE` (`wdm.h`).
pub type DRIVER_NOTIFICATION_CALLBACK_ROUTINE =
    Option<unsafe extern "C" fn(NotificationStructure: PVOID, Context: PVOID) -> NTSTATUS>;
/// `PDRIVER_NOTIFICATION_CALLBACK_ROUTINE`.
pub type PDRIVER_NOTIFICATION_CALLBACK_ROUTINE = DRIVER_NOTIFICATION_CALLBACK_ROUTINE;

/// `DEVICE_INTERFACE_CHANGE_NOTIFICATION` (`wdm.h`).
#[repr(C)]
#[derive(Debug, Copy, Clone)]
pub struct _DEVICE_INTERFACE_CHANGE_NOTIFICATION {
    /// Structure version (1).
    pub Version: USHORT,
    /// Structure size.
    pub Size: USHORT,
    /// `GUID_DEVICE_INTERFACE_ARRIVAL` or `..._REMOVAL`.
    pub Event: GUID,
    /// The interface class.
    pub InterfaceClassGuid: GUID,
    /// The interface's symbolic link.
    pub SymbolicLinkName: PUNICODE_STRING,
}
/// `DEVICE_INTERFACE_CHANGE_NOTIFICATION`.
pub type DEVICE_INTERFACE_CHANGE_NOTIFICATION = _DEVICE_INTERFACE_CHANGE_NOTIFICATION;

// ---------------------------------------------------------------------------
// WDF handles (wdftypes.h). The WDK defines STRICT, so each DECLARE_HANDLE is
// a pointer to its own struct; WDFOBJECT is a plain HANDLE.
// ---------------------------------------------------------------------------

macro_rules! wdf_handles {
    ($($handle:ident / $tag:ident),* $(,)?) => {$(
        #[doc = concat!("The struct behind `", stringify!($handle), "` (`DECLARE_HANDLE`).")]
        #[repr(C)]
        #[derive(Debug, Default, Copy, Clone)]
        pub struct $tag {
            /// Never read.
            pub unused: c_int,
        }
        #[doc = concat!("`", stringify!($handle), "`.")]
        pub type $handle = *mut $tag;
    )*};
}

wdf_handles!(
    WDFDRIVER / WDFDRIVER__,
    WDFDEVICE / WDFDEVICE__,
    WDFQUEUE / WDFQUEUE__,
    WDFREQUEST / WDFREQUEST__,
    WDFTIMER / WDFTIMER__,
    WDFWORKITEM / WDFWORKITEM__,
    WDFMEMORY / WDFMEMORY__,
    WDFIOTARGET / WDFIOTARGET__,
    WDFCMRESLIST / WDFCMRESLIST__,
    WDFKEY / WDFKEY__,
    WDFWAITLOCK / WDFWAITLOCK__,
);

/// `WDFOBJECT`: any WDF handle.
pub type WDFOBJECT = HANDLE;
/// `WDFCONTEXT`.
pub type WDFCONTEXT = PVOID;

/// `WDFDEVICE_INIT`: opaque, owned by the framework.
#[repr(C)]
pub struct WDFDEVICE_INIT {
    _unused: [u8; 0],
}
/// `PWDFDEVICE_INIT`.
pub type PWDFDEVICE_INIT = *mut WDFDEVICE_INIT;

/// `WDFMEMORY_OFFSET` (`wdfmemory.h`).
#[repr(C)]
#[derive(Debug, Default, Copy, Clone)]
pub struct _WDFMEMORY_OFFSET {
    /// Offset into the buffer.
    pub BufferOffset: usize,
    /// Bytes from the offset.
    pub BufferLength: usize,
}
/// `WDFMEMORY_OFFSET`.
pub type WDFMEMORY_OFFSET = _WDFMEMORY_OFFSET;
/// `PWDFMEMORY_OFFSET`.
pub type PWDFMEMORY_OFFSET = *mut _WDFMEMORY_OFFSET;

/// `WDF_DRIVER_GLOBALS` (`wdfglobals.h`): opaque here.
#[repr(C)]
pub struct _WDF_DRIVER_GLOBALS {
    _unused: [u8; 0],
}
/// `PWDF_DRIVER_GLOBALS`.
pub type PWDF_DRIVER_GLOBALS = *mut _WDF_DRIVER_GLOBALS;

/// `WDFFUNC` (`wdffuncenum.h`): an entry of the function table.
pub type WDFFUNC = Option<unsafe extern "C" fn()>;

unsafe extern "C" {
    /// `WdfFunctions` (`WdfFunctions_01033` for KMDF 1.33): the function table
    /// the loader binds the driver to.
    #[link_name = "WdfFunctions_01033"]
    pub static mut WdfFunctions: *const WDFFUNC;
    /// `WdfDriverGlobals`.
    pub static mut WdfDriverGlobals: PWDF_DRIVER_GLOBALS;
    /// `WdfFunctionCount`: entries in `WdfFunctions` (KMDF 1.25+).
    pub static mut WdfFunctionCount: ULONG;
}

// ---------------------------------------------------------------------------
// WDF enums (module constants of `c_int`, as bindgen's ModuleConsts style).
// ---------------------------------------------------------------------------

/// `WDF_TRI_STATE` (`wdftypes.h`).
pub mod _WDF_TRI_STATE {
    /// The enum's C type.
    pub type Type = core::ffi::c_int;
    /// False.
    pub const WdfFalse: Type = 0;
    /// True.
    pub const WdfTrue: Type = 1;
    /// The framework's default.
    pub const WdfUseDefault: Type = 2;
}
/// `WDF_TRI_STATE`.
pub use self::_WDF_TRI_STATE::Type as WDF_TRI_STATE;

/// `WDF_EXECUTION_LEVEL` (`wdfobject.h`).
pub mod _WDF_EXECUTION_LEVEL {
    /// The enum's C type.
    pub type Type = core::ffi::c_int;
    /// Invalid.
    pub const WdfExecutionLevelInvalid: Type = 0;
    /// As the parent object.
    pub const WdfExecutionLevelInheritFromParent: Type = 1;
    /// `PASSIVE_LEVEL`.
    pub const WdfExecutionLevelPassive: Type = 2;
    /// `DISPATCH_LEVEL`.
    pub const WdfExecutionLevelDispatch: Type = 3;
}
/// `WDF_EXECUTION_LEVEL`.
pub use self::_WDF_EXECUTION_LEVEL::Type as WDF_EXECUTION_LEVEL;

/// `WDF_SYNCHRONIZATION_SCOPE` (`wdfobject.h`).
pub mod _WDF_SYNCHRONIZATION_SCOPE {
    /// The enum's C type.
    pub type Type = core::ffi::c_int;
    /// Invalid.
    pub const WdfSynchronizationScopeInvalid: Type = 0;
    /// As the parent object.
    pub const WdfSynchronizationScopeInheritFromParent: Type = 1;
    /// Device-wide.
    pub const WdfSynchronizationScopeDevice: Type = 2;
    /// Per queue.
    pub const WdfSynchronizationScopeQueue: Type = 3;
    /// None.
    pub const WdfSynchronizationScopeNone: Type = 4;
}
/// `WDF_SYNCHRONIZATION_SCOPE`.
pub use self::_WDF_SYNCHRONIZATION_SCOPE::Type as WDF_SYNCHRONIZATION_SCOPE;

/// `WDF_IO_QUEUE_DISPATCH_TYPE` (`wdfio.h`).
pub mod _WDF_IO_QUEUE_DISPATCH_TYPE {
    /// The enum's C type.
    pub type Type = core::ffi::c_int;
    /// Invalid.
    pub const WdfIoQueueDispatchInvalid: Type = 0;
    /// One request at a time.
    pub const WdfIoQueueDispatchSequential: Type = 1;
    /// Many requests at a time.
    pub const WdfIoQueueDispatchParallel: Type = 2;
    /// The driver pulls requests.
    pub const WdfIoQueueDispatchManual: Type = 3;
    /// Bound.
    pub const WdfIoQueueDispatchMax: Type = 4;
}
/// `WDF_IO_QUEUE_DISPATCH_TYPE`.
pub use self::_WDF_IO_QUEUE_DISPATCH_TYPE::Type as WDF_IO_QUEUE_DISPATCH_TYPE;

/// `WDF_POWER_DEVICE_STATE` (`wdfdevice.h`).
pub mod _WDF_POWER_DEVICE_STATE {
    /// The enum's C type.
    pub type Type = core::ffi::c_int;
    /// Invalid.
    pub const WdfPowerDeviceInvalid: Type = 0;
    /// D0.
    pub const WdfPowerDeviceD0: Type = 1;
    /// D1.
    pub const WdfPowerDeviceD1: Type = 2;
    /// D2.
    pub const WdfPowerDeviceD2: Type = 3;
    /// D3.
    pub const WdfPowerDeviceD3: Type = 4;
    /// D3 before removal.
    pub const WdfPowerDeviceD3Final: Type = 5;
    /// Hibernation path.
    pub const WdfPowerDevicePrepareForHibernation: Type = 6;
    /// Bound.
    pub const WdfPowerDeviceMaximum: Type = 7;
}
/// `WDF_POWER_DEVICE_STATE`.
pub use self::_WDF_POWER_DEVICE_STATE::Type as WDF_POWER_DEVICE_STATE;

/// `WDF_IO_TARGET_STATE` (`wdfiotarget.h`).
pub mod _WDF_IO_TARGET_STATE {
    /// The enum's C type.
    pub type Type = core::ffi::c_int;
    /// Undefined.
    pub const WdfIoTargetStateUndefined: Type = 0;
    /// Started (also the state of a new target).
    pub const WdfIoTargetStarted: Type = 1;
    /// Stopped.
    pub const WdfIoTargetStopped: Type = 2;
    /// Closed for a query-remove.
    pub const WdfIoTargetClosedForQueryRemove: Type = 3;
    /// Closed.
    pub const WdfIoTargetClosed: Type = 4;
    /// Deleted.
    pub const WdfIoTargetDeleted: Type = 5;
    /// Purged.
    pub const WdfIoTargetPurged: Type = 6;
}
/// `WDF_IO_TARGET_STATE`.
pub use self::_WDF_IO_TARGET_STATE::Type as WDF_IO_TARGET_STATE;

/// `WDF_IO_TARGET_OPEN_TYPE` (`wdfiotarget.h`).
pub mod _WDF_IO_TARGET_OPEN_TYPE {
    /// The enum's C type.
    pub type Type = core::ffi::c_int;
    /// Undefined.
    pub const WdfIoTargetOpenUndefined: Type = 0;
    /// An existing `DEVICE_OBJECT`.
    pub const WdfIoTargetOpenUseExistingDevice: Type = 1;
    /// By device name (symbolic link).
    pub const WdfIoTargetOpenByName: Type = 2;
    /// Reopen with the previous parameters.
    pub const WdfIoTargetOpenReopen: Type = 3;
    /// A local target through a file object.
    pub const WdfIoTargetOpenLocalTargetByFile: Type = 4;
}
/// `WDF_IO_TARGET_OPEN_TYPE`.
pub use self::_WDF_IO_TARGET_OPEN_TYPE::Type as WDF_IO_TARGET_OPEN_TYPE;

/// `WDF_IO_TARGET_SENT_IO_ACTION` (`wdfiotarget.h`).
pub mod _WDF_IO_TARGET_SENT_IO_ACTION {
    /// The enum's C type.
    pub type Type = core::ffi::c_int;
    /// Undefined.
    pub const WdfIoTargetSentIoUndefined: Type = 0;
    /// Cancel sent I/O.
    pub const WdfIoTargetCancelSentIo: Type = 1;
    /// Wait for sent I/O.
    pub const WdfIoTargetWaitForSentIoToComplete: Type = 2;
    /// Leave sent I/O pending.
    pub const WdfIoTargetLeaveSentIoPending: Type = 3;
}
/// `WDF_IO_TARGET_SENT_IO_ACTION`.
pub use self::_WDF_IO_TARGET_SENT_IO_ACTION::Type as WDF_IO_TARGET_SENT_IO_ACTION;

/// `WDF_IO_TARGET_PURGE_IO_ACTION` (`wdfiotarget.h`).
pub mod _WDF_IO_TARGET_PURGE_IO_ACTION {
    /// The enum's C type.
    pub type Type = core::ffi::c_int;
    /// Undefined.
    pub const WdfIoTargetPurgeIoUndefined: Type = 0;
    /// Purge and wait.
    pub const WdfIoTargetPurgeIoAndWait: Type = 1;
    /// Purge without waiting.
    pub const WdfIoTargetPurgeIo: Type = 2;
}
/// `WDF_IO_TARGET_PURGE_IO_ACTION`.
pub use self::_WDF_IO_TARGET_PURGE_IO_ACTION::Type as WDF_IO_TARGET_PURGE_IO_ACTION;

/// `WDF_REQUEST_SEND_OPTIONS_FLAGS` (`wdfrequest.h`).
pub mod _WDF_REQUEST_SEND_OPTIONS_FLAGS {
    /// The enum's C type.
    pub type Type = core::ffi::c_int;
    /// `Timeout` is valid.
    pub const WDF_REQUEST_SEND_OPTION_TIMEOUT: Type = 1;
    /// Wait for completion.
    pub const WDF_REQUEST_SEND_OPTION_SYNCHRONOUS: Type = 2;
    /// Send whatever the target's state.
    pub const WDF_REQUEST_SEND_OPTION_IGNORE_TARGET_STATE: Type = 4;
    /// Send and forget.
    pub const WDF_REQUEST_SEND_OPTION_SEND_AND_FORGET: Type = 8;
}

/// `WDF_REQUEST_TYPE` (`wdfrequest.h`), as a plain type: only carried in
/// `WDF_REQUEST_COMPLETION_PARAMS`.
pub type WDF_REQUEST_TYPE = c_int;

// ---------------------------------------------------------------------------
// WDF callbacks.
// ---------------------------------------------------------------------------

/// `PFN_WDF_OBJECT_CONTEXT_CLEANUP`.
pub type PFN_WDF_OBJECT_CONTEXT_CLEANUP = Option<unsafe extern "C" fn(Object: WDFOBJECT)>;
/// `PFN_WDF_OBJECT_CONTEXT_DESTROY`.
pub type PFN_WDF_OBJECT_CONTEXT_DESTROY = Option<unsafe extern "C" fn(Object: WDFOBJECT)>;
/// `PFN_GET_UNIQUE_CONTEXT_TYPE`.
pub type PFN_GET_UNIQUE_CONTEXT_TYPE =
    Option<unsafe extern "C" fn() -> PCWDF_OBJECT_CONTEXT_TYPE_INFO>;
/// `PFN_WDF_DRIVER_DEVICE_ADD`.
pub type PFN_WDF_DRIVER_DEVICE_ADD =
    Option<unsafe extern "C" fn(Driver: WDFDRIVER, DeviceInit: PWDFDEVICE_INIT) -> NTSTATUS>;
/// `PFN_WDF_DRIVER_UNLOAD`.
pub type PFN_WDF_DRIVER_UNLOAD = Option<unsafe extern "C" fn(Driver: WDFDRIVER)>;
/// `PFN_WDF_DEVICE_D0_ENTRY`.
pub type PFN_WDF_DEVICE_D0_ENTRY = Option<
    unsafe extern "C" fn(Device: WDFDEVICE, PreviousState: WDF_POWER_DEVICE_STATE) -> NTSTATUS,
>;
/// `PFN_WDF_DEVICE_D0_ENTRY_POST_INTERRUPTS_ENABLED`.
pub type PFN_WDF_DEVICE_D0_ENTRY_POST_INTERRUPTS_ENABLED = Option<
    unsafe extern "C" fn(Device: WDFDEVICE, PreviousState: WDF_POWER_DEVICE_STATE) -> NTSTATUS,
>;
/// `PFN_WDF_DEVICE_D0_EXIT`.
pub type PFN_WDF_DEVICE_D0_EXIT = Option<
    unsafe extern "C" fn(Device: WDFDEVICE, TargetState: WDF_POWER_DEVICE_STATE) -> NTSTATUS,
>;
/// `PFN_WDF_DEVICE_D0_EXIT_PRE_INTERRUPTS_DISABLED`.
pub type PFN_WDF_DEVICE_D0_EXIT_PRE_INTERRUPTS_DISABLED = Option<
    unsafe extern "C" fn(Device: WDFDEVICE, TargetState: WDF_POWER_DEVICE_STATE) -> NTSTATUS,
>;
/// `PFN_WDF_DEVICE_PREPARE_HARDWARE`.
pub type PFN_WDF_DEVICE_PREPARE_HARDWARE = Option<
    unsafe extern "C" fn(
        Device: WDFDEVICE,
        ResourcesRaw: WDFCMRESLIST,
        ResourcesTranslated: WDFCMRESLIST,
    ) -> NTSTATUS,
>;
/// `PFN_WDF_DEVICE_RELEASE_HARDWARE`.
pub type PFN_WDF_DEVICE_RELEASE_HARDWARE =
    Option<unsafe extern "C" fn(Device: WDFDEVICE, ResourcesTranslated: WDFCMRESLIST) -> NTSTATUS>;
/// `PFN_WDF_DEVICE_SELF_MANAGED_IO_CLEANUP`.
pub type PFN_WDF_DEVICE_SELF_MANAGED_IO_CLEANUP = Option<unsafe extern "C" fn(Device: WDFDEVICE)>;
/// `PFN_WDF_DEVICE_SELF_MANAGED_IO_FLUSH`.
pub type PFN_WDF_DEVICE_SELF_MANAGED_IO_FLUSH = Option<unsafe extern "C" fn(Device: WDFDEVICE)>;
/// `PFN_WDF_DEVICE_SELF_MANAGED_IO_INIT`.
pub type PFN_WDF_DEVICE_SELF_MANAGED_IO_INIT =
    Option<unsafe extern "C" fn(Device: WDFDEVICE) -> NTSTATUS>;
/// `PFN_WDF_DEVICE_SELF_MANAGED_IO_SUSPEND`.
pub type PFN_WDF_DEVICE_SELF_MANAGED_IO_SUSPEND =
    Option<unsafe extern "C" fn(Device: WDFDEVICE) -> NTSTATUS>;
/// `PFN_WDF_DEVICE_SELF_MANAGED_IO_RESTART`.
pub type PFN_WDF_DEVICE_SELF_MANAGED_IO_RESTART =
    Option<unsafe extern "C" fn(Device: WDFDEVICE) -> NTSTATUS>;
/// `PFN_WDF_DEVICE_SURPRISE_REMOVAL`.
pub type PFN_WDF_DEVICE_SURPRISE_REMOVAL = Option<unsafe extern "C" fn(Device: WDFDEVICE)>;
/// `PFN_WDF_DEVICE_QUERY_REMOVE`.
pub type PFN_WDF_DEVICE_QUERY_REMOVE = Option<unsafe extern "C" fn(Device: WDFDEVICE) -> NTSTATUS>;
/// `PFN_WDF_DEVICE_QUERY_STOP`.
pub type PFN_WDF_DEVICE_QUERY_STOP = Option<unsafe extern "C" fn(Device: WDFDEVICE) -> NTSTATUS>;
/// The `WDF_PNPPOWER_EVENT_CALLBACKS` callbacks this code never sets
/// (`EvtDeviceUsageNotification`, `EvtDeviceRelationsQuery`,
/// `EvtDeviceUsageNotificationEx`): pointer-sized `Option<fn>`s without their
/// parameter lists, so that setting one fails to compile until its real type
/// is declared here.
pub type PFN_WDF_DEVICE_UNUSED_CALLBACK = Option<unsafe extern "C" fn()>;
/// `PFN_WDF_IO_QUEUE_IO_DEVICE_CONTROL`.
pub type PFN_WDF_IO_QUEUE_IO_DEVICE_CONTROL = Option<
    unsafe extern "C" fn(
        Queue: WDFQUEUE,
        Request: WDFREQUEST,
        OutputBufferLength: usize,
        InputBufferLength: usize,
        IoControlCode: ULONG,
    ),
>;
/// `PFN_WDF_IO_QUEUE_IO_INTERNAL_DEVICE_CONTROL`.
pub type PFN_WDF_IO_QUEUE_IO_INTERNAL_DEVICE_CONTROL = Option<
    unsafe extern "C" fn(
        Queue: WDFQUEUE,
        Request: WDFREQUEST,
        OutputBufferLength: usize,
        InputBufferLength: usize,
        IoControlCode: ULONG,
    ),
>;
/// The `WDF_IO_QUEUE_CONFIG` callbacks this code never sets (`EvtIoDefault`,
/// `EvtIoRead`, ...): as [`PFN_WDF_DEVICE_UNUSED_CALLBACK`].
pub type PFN_WDF_IO_QUEUE_UNUSED_CALLBACK = Option<unsafe extern "C" fn()>;
/// `PFN_WDF_IO_TARGET_QUERY_REMOVE`.
pub type PFN_WDF_IO_TARGET_QUERY_REMOVE =
    Option<unsafe extern "C" fn(IoTarget: WDFIOTARGET) -> NTSTATUS>;
/// `PFN_WDF_IO_TARGET_REMOVE_CANCELED`.
pub type PFN_WDF_IO_TARGET_REMOVE_CANCELED = Option<unsafe extern "C" fn(IoTarget: WDFIOTARGET)>;
/// `PFN_WDF_IO_TARGET_REMOVE_COMPLETE`.
pub type PFN_WDF_IO_TARGET_REMOVE_COMPLETE = Option<unsafe extern "C" fn(IoTarget: WDFIOTARGET)>;
/// `PFN_WDF_REQUEST_COMPLETION_ROUTINE`.
pub type PFN_WDF_REQUEST_COMPLETION_ROUTINE = Option<
    unsafe extern "C" fn(
        Request: WDFREQUEST,
        Target: WDFIOTARGET,
        Params: PWDF_REQUEST_COMPLETION_PARAMS,
        Context: WDFCONTEXT,
    ),
>;
/// `PFN_WDF_TIMER`.
pub type PFN_WDF_TIMER = Option<unsafe extern "C" fn(Timer: WDFTIMER)>;
/// `PFN_WDF_WORKITEM`.
pub type PFN_WDF_WORKITEM = Option<unsafe extern "C" fn(WorkItem: WDFWORKITEM)>;

// ---------------------------------------------------------------------------
// WDF structures.
// ---------------------------------------------------------------------------

/// `WDF_OBJECT_CONTEXT_TYPE_INFO` (`wdfobject.h`).
#[repr(C)]
#[derive(Debug, Copy, Clone)]
pub struct _WDF_OBJECT_CONTEXT_TYPE_INFO {
    /// `sizeof` this structure.
    pub Size: ULONG,
    /// The context type's name.
    pub ContextName: LPCSTR,
    /// The context's size.
    pub ContextSize: usize,
    /// The type info that identifies the type (usually itself).
    pub UniqueType: PCWDF_OBJECT_CONTEXT_TYPE_INFO,
    /// For contexts declared in another driver.
    pub EvtDriverGetUniqueContextType: PFN_GET_UNIQUE_CONTEXT_TYPE,
}
/// `WDF_OBJECT_CONTEXT_TYPE_INFO`.
pub type WDF_OBJECT_CONTEXT_TYPE_INFO = _WDF_OBJECT_CONTEXT_TYPE_INFO;
/// `PCWDF_OBJECT_CONTEXT_TYPE_INFO`.
pub type PCWDF_OBJECT_CONTEXT_TYPE_INFO = *const _WDF_OBJECT_CONTEXT_TYPE_INFO;

/// `WDF_OBJECT_ATTRIBUTES` (`wdfobject.h`).
#[repr(C)]
#[derive(Debug, Copy, Clone)]
pub struct _WDF_OBJECT_ATTRIBUTES {
    /// `sizeof` this structure.
    pub Size: ULONG,
    /// Called when the object is being deleted.
    pub EvtCleanupCallback: PFN_WDF_OBJECT_CONTEXT_CLEANUP,
    /// Called when the object's memory is freed.
    pub EvtDestroyCallback: PFN_WDF_OBJECT_CONTEXT_DESTROY,
    /// The callbacks' IRQL.
    pub ExecutionLevel: WDF_EXECUTION_LEVEL,
    /// The callbacks' serialisation.
    pub SynchronizationScope: WDF_SYNCHRONIZATION_SCOPE,
    /// The parent.
    pub ParentObject: WDFOBJECT,
    /// Context size override.
    pub ContextSizeOverride: usize,
    /// The context type.
    pub ContextTypeInfo: PCWDF_OBJECT_CONTEXT_TYPE_INFO,
}
impl Default for _WDF_OBJECT_ATTRIBUTES {
    fn default() -> Self {
        _WDF_OBJECT_ATTRIBUTES {
            Size: 0,
            EvtCleanupCallback: None,
            EvtDestroyCallback: None,
            ExecutionLevel: 0,
            SynchronizationScope: 0,
            ParentObject: core::ptr::null_mut(),
            ContextSizeOverride: 0,
            ContextTypeInfo: core::ptr::null(),
        }
    }
}
/// `WDF_OBJECT_ATTRIBUTES`.
pub type WDF_OBJECT_ATTRIBUTES = _WDF_OBJECT_ATTRIBUTES;
/// `PWDF_OBJECT_ATTRIBUTES`.
pub type PWDF_OBJECT_ATTRIBUTES = *mut _WDF_OBJECT_ATTRIBUTES;

/// `WDF_DRIVER_CONFIG` (`wdfdriver.h`).
#[repr(C)]
#[derive(Debug, Default, Copy, Clone)]
pub struct _WDF_DRIVER_CONFIG {
    /// `sizeof` this structure.
    pub Size: ULONG,
    /// `EvtDriverDeviceAdd`.
    pub EvtDriverDeviceAdd: PFN_WDF_DRIVER_DEVICE_ADD,
    /// `EvtDriverUnload`.
    pub EvtDriverUnload: PFN_WDF_DRIVER_UNLOAD,
    /// `WDF_DRIVER_INIT_FLAGS`.
    pub DriverInitFlags: ULONG,
    /// Pool tag for the framework's allocations on the driver's behalf.
    pub DriverPoolTag: ULONG,
}
/// `WDF_DRIVER_CONFIG`.
pub type WDF_DRIVER_CONFIG = _WDF_DRIVER_CONFIG;
/// `PWDF_DRIVER_CONFIG`.
pub type PWDF_DRIVER_CONFIG = *mut _WDF_DRIVER_CONFIG;

/// `WDF_PNPPOWER_EVENT_CALLBACKS` (`wdfdevice.h`).
#[repr(C)]
#[derive(Debug, Default, Copy, Clone)]
pub struct _WDF_PNPPOWER_EVENT_CALLBACKS {
    /// `sizeof` this structure.
    pub Size: ULONG,
    /// `EvtDeviceD0Entry`.
    pub EvtDeviceD0Entry: PFN_WDF_DEVICE_D0_ENTRY,
    /// `EvtDeviceD0EntryPostInterruptsEnabled`.
    pub EvtDeviceD0EntryPostInterruptsEnabled: PFN_WDF_DEVICE_D0_ENTRY_POST_INTERRUPTS_ENABLED,
    /// `EvtDeviceD0Exit`.
    pub EvtDeviceD0Exit: PFN_WDF_DEVICE_D0_EXIT,
    /// `EvtDeviceD0ExitPreInterruptsDisabled`.
    pub EvtDeviceD0ExitPreInterruptsDisabled: PFN_WDF_DEVICE_D0_EXIT_PRE_INTERRUPTS_DISABLED,
    /// `EvtDevicePrepareHardware`.
    pub EvtDevicePrepareHardware: PFN_WDF_DEVICE_PREPARE_HARDWARE,
    /// `EvtDeviceReleaseHardware`.
    pub EvtDeviceReleaseHardware: PFN_WDF_DEVICE_RELEASE_HARDWARE,
    /// `EvtDeviceSelfManagedIoCleanup`.
    pub EvtDeviceSelfManagedIoCleanup: PFN_WDF_DEVICE_SELF_MANAGED_IO_CLEANUP,
    /// `EvtDeviceSelfManagedIoFlush`.
    pub EvtDeviceSelfManagedIoFlush: PFN_WDF_DEVICE_SELF_MANAGED_IO_FLUSH,
    /// `EvtDeviceSelfManagedIoInit`.
    pub EvtDeviceSelfManagedIoInit: PFN_WDF_DEVICE_SELF_MANAGED_IO_INIT,
    /// `EvtDeviceSelfManagedIoSuspend`.
    pub EvtDeviceSelfManagedIoSuspend: PFN_WDF_DEVICE_SELF_MANAGED_IO_SUSPEND,
    /// `EvtDeviceSelfManagedIoRestart`.
    pub EvtDeviceSelfManagedIoRestart: PFN_WDF_DEVICE_SELF_MANAGED_IO_RESTART,
    /// `EvtDeviceSurpriseRemoval`.
    pub EvtDeviceSurpriseRemoval: PFN_WDF_DEVICE_SURPRISE_REMOVAL,
    /// `EvtDeviceQueryRemove`.
    pub EvtDeviceQueryRemove: PFN_WDF_DEVICE_QUERY_REMOVE,
    /// `EvtDeviceQueryStop`.
    pub EvtDeviceQueryStop: PFN_WDF_DEVICE_QUERY_STOP,
    /// `EvtDeviceUsageNotification` (not used here).
    pub EvtDeviceUsageNotification: PFN_WDF_DEVICE_UNUSED_CALLBACK,
    /// `EvtDeviceRelationsQuery` (not used here).
    pub EvtDeviceRelationsQuery: PFN_WDF_DEVICE_UNUSED_CALLBACK,
    /// `EvtDeviceUsageNotificationEx` (not used here).
    pub EvtDeviceUsageNotificationEx: PFN_WDF_DEVICE_UNUSED_CALLBACK,
}
/// `WDF_PNPPOWER_EVENT_CALLBACKS`.
pub type WDF_PNPPOWER_EVENT_CALLBACKS = _WDF_PNPPOWER_EVENT_CALLBACKS;
/// `PWDF_PNPPOWER_EVENT_CALLBACKS`.
pub type PWDF_PNPPOWER_EVENT_CALLBACKS = *mut _WDF_PNPPOWER_EVENT_CALLBACKS;

/// `WDF_IO_QUEUE_CONFIG` (`wdfio.h`).
#[repr(C)]
#[derive(Copy, Clone)]
pub struct _WDF_IO_QUEUE_CONFIG {
    /// `sizeof` this structure.
    pub Size: ULONG,
    /// How requests are presented.
    pub DispatchType: WDF_IO_QUEUE_DISPATCH_TYPE,
    /// Whether the queue follows the device's power state.
    pub PowerManaged: WDF_TRI_STATE,
    /// Whether zero-length reads and writes reach the driver.
    pub AllowZeroLengthRequests: BOOLEAN,
    /// Whether this is the device's default queue.
    pub DefaultQueue: BOOLEAN,
    /// `EvtIoDefault` (not used here).
    pub EvtIoDefault: PFN_WDF_IO_QUEUE_UNUSED_CALLBACK,
    /// `EvtIoRead` (not used here).
    pub EvtIoRead: PFN_WDF_IO_QUEUE_UNUSED_CALLBACK,
    /// `EvtIoWrite` (not used here).
    pub EvtIoWrite: PFN_WDF_IO_QUEUE_UNUSED_CALLBACK,
    /// `EvtIoDeviceControl`.
    pub EvtIoDeviceControl: PFN_WDF_IO_QUEUE_IO_DEVICE_CONTROL,
    /// `EvtIoInternalDeviceControl`.
    pub EvtIoInternalDeviceControl: PFN_WDF_IO_QUEUE_IO_INTERNAL_DEVICE_CONTROL,
    /// `EvtIoStop` (not used here).
    pub EvtIoStop: PFN_WDF_IO_QUEUE_UNUSED_CALLBACK,
    /// `EvtIoResume` (not used here).
    pub EvtIoResume: PFN_WDF_IO_QUEUE_UNUSED_CALLBACK,
    /// `EvtIoCanceledOnQueue` (not used here).
    pub EvtIoCanceledOnQueue: PFN_WDF_IO_QUEUE_UNUSED_CALLBACK,
    /// Dispatch-type settings.
    pub Settings: _WDF_IO_QUEUE_CONFIG__bindgen_ty_1,
    /// The driver (set by the framework).
    pub Driver: WDFDRIVER,
}
/// `WDF_IO_QUEUE_CONFIG.Settings`.
#[repr(C)]
#[derive(Copy, Clone)]
pub union _WDF_IO_QUEUE_CONFIG__bindgen_ty_1 {
    /// For `WdfIoQueueDispatchParallel`.
    pub Parallel: _WDF_IO_QUEUE_CONFIG__bindgen_ty_1__bindgen_ty_1,
}
/// `WDF_IO_QUEUE_CONFIG.Settings.Parallel`.
#[repr(C)]
#[derive(Debug, Default, Copy, Clone)]
pub struct _WDF_IO_QUEUE_CONFIG__bindgen_ty_1__bindgen_ty_1 {
    /// How many requests may be presented at once (`ULONG::MAX`: no limit).
    pub NumberOfPresentedRequests: ULONG,
}
impl Default for _WDF_IO_QUEUE_CONFIG {
    fn default() -> Self {
        _WDF_IO_QUEUE_CONFIG {
            Size: 0,
            DispatchType: 0,
            PowerManaged: 0,
            AllowZeroLengthRequests: 0,
            DefaultQueue: 0,
            EvtIoDefault: None,
            EvtIoRead: None,
            EvtIoWrite: None,
            EvtIoDeviceControl: None,
            EvtIoInternalDeviceControl: None,
            EvtIoStop: None,
            EvtIoResume: None,
            EvtIoCanceledOnQueue: None,
            Settings: _WDF_IO_QUEUE_CONFIG__bindgen_ty_1 {
                Parallel: _WDF_IO_QUEUE_CONFIG__bindgen_ty_1__bindgen_ty_1::default(),
            },
            Driver: core::ptr::null_mut(),
        }
    }
}
/// `WDF_IO_QUEUE_CONFIG`.
pub type WDF_IO_QUEUE_CONFIG = _WDF_IO_QUEUE_CONFIG;
/// `PWDF_IO_QUEUE_CONFIG`.
pub type PWDF_IO_QUEUE_CONFIG = *mut _WDF_IO_QUEUE_CONFIG;

/// `WDF_IO_TARGET_OPEN_PARAMS` (`wdfiotarget.h`).
#[repr(C)]
#[derive(Debug, Copy, Clone)]
pub struct _WDF_IO_TARGET_OPEN_PARAMS {
    /// `sizeof` this structure.
    pub Size: ULONG,
    /// How to open.
    pub Type: WDF_IO_TARGET_OPEN_TYPE,
    /// `EvtIoTargetQueryRemove`.
    pub EvtIoTargetQueryRemove: PFN_WDF_IO_TARGET_QUERY_REMOVE,
    /// `EvtIoTargetRemoveCanceled`.
    pub EvtIoTargetRemoveCanceled: PFN_WDF_IO_TARGET_REMOVE_CANCELED,
    /// `EvtIoTargetRemoveComplete`.
    pub EvtIoTargetRemoveComplete: PFN_WDF_IO_TARGET_REMOVE_COMPLETE,
    /// For `WdfIoTargetOpenUseExistingDevice`.
    pub TargetDeviceObject: PDEVICE_OBJECT,
    /// For `WdfIoTargetOpenUseExistingDevice`.
    pub TargetFileObject: PFILE_OBJECT,
    /// For `WdfIoTargetOpenByName`.
    pub TargetDeviceName: UNICODE_STRING,
    /// Desired access.
    pub DesiredAccess: ACCESS_MASK,
    /// Share access.
    pub ShareAccess: ULONG,
    /// File attributes.
    pub FileAttributes: ULONG,
    /// Create disposition (`FILE_OPEN`).
    pub CreateDisposition: ULONG,
    /// Create options.
    pub CreateOptions: ULONG,
    /// Extended attributes.
    pub EaBuffer: PVOID,
    /// Bytes in `EaBuffer`.
    pub EaBufferLength: ULONG,
    /// Allocation size.
    pub AllocationSize: PLONGLONG,
    /// Set by the open: the `IO_STATUS_BLOCK.Information` of the create.
    pub FileInformation: ULONG,
    /// For `WdfIoTargetOpenLocalTargetByFile`.
    pub FileName: UNICODE_STRING,
}
impl Default for _WDF_IO_TARGET_OPEN_PARAMS {
    fn default() -> Self {
        _WDF_IO_TARGET_OPEN_PARAMS {
            Size: 0,
            Type: 0,
            EvtIoTargetQueryRemove: None,
            EvtIoTargetRemoveCanceled: None,
            EvtIoTargetRemoveComplete: None,
            TargetDeviceObject: core::ptr::null_mut(),
            TargetFileObject: core::ptr::null_mut(),
            TargetDeviceName: UNICODE_STRING::default(),
            DesiredAccess: 0,
            ShareAccess: 0,
            FileAttributes: 0,
            CreateDisposition: 0,
            CreateOptions: 0,
            EaBuffer: core::ptr::null_mut(),
            EaBufferLength: 0,
            AllocationSize: core::ptr::null_mut(),
            FileInformation: 0,
            FileName: UNICODE_STRING::default(),
        }
    }
}
/// `WDF_IO_TARGET_OPEN_PARAMS`.
pub type WDF_IO_TARGET_OPEN_PARAMS = _WDF_IO_TARGET_OPEN_PARAMS;
/// `PWDF_IO_TARGET_OPEN_PARAMS`.
pub type PWDF_IO_TARGET_OPEN_PARAMS = *mut _WDF_IO_TARGET_OPEN_PARAMS;

/// `WDF_REQUEST_SEND_OPTIONS` (`wdfrequest.h`).
#[repr(C)]
#[derive(Debug, Default, Copy, Clone)]
pub struct _WDF_REQUEST_SEND_OPTIONS {
    /// `sizeof` this structure.
    pub Size: ULONG,
    /// `WDF_REQUEST_SEND_OPTIONS_FLAGS`.
    pub Flags: ULONG,
    /// Timeout in 100 ns units (negative: relative).
    pub Timeout: LONGLONG,
}
/// `WDF_REQUEST_SEND_OPTIONS`.
pub type WDF_REQUEST_SEND_OPTIONS = _WDF_REQUEST_SEND_OPTIONS;
/// `PWDF_REQUEST_SEND_OPTIONS`.
pub type PWDF_REQUEST_SEND_OPTIONS = *mut _WDF_REQUEST_SEND_OPTIONS;

/// `WDF_REQUEST_REUSE_PARAMS` (`wdfrequest.h`).
#[repr(C)]
#[derive(Debug, Copy, Clone)]
pub struct _WDF_REQUEST_REUSE_PARAMS {
    /// `sizeof` this structure.
    pub Size: ULONG,
    /// `WDF_REQUEST_REUSE_FLAGS`.
    pub Flags: ULONG,
    /// The status the reused request starts with.
    pub Status: NTSTATUS,
    /// With `WDF_REQUEST_REUSE_SET_NEW_IRP`.
    pub NewIrp: PIRP,
}
impl Default for _WDF_REQUEST_REUSE_PARAMS {
    fn default() -> Self {
        _WDF_REQUEST_REUSE_PARAMS {
            Size: 0,
            Flags: 0,
            Status: 0,
            NewIrp: core::ptr::null_mut(),
        }
    }
}
/// `WDF_REQUEST_REUSE_PARAMS`.
pub type WDF_REQUEST_REUSE_PARAMS = _WDF_REQUEST_REUSE_PARAMS;
/// `PWDF_REQUEST_REUSE_PARAMS`.
pub type PWDF_REQUEST_REUSE_PARAMS = *mut _WDF_REQUEST_REUSE_PARAMS;

/// `WDF_REQUEST_COMPLETION_PARAMS` (`wdfrequest.h`). The framework fills it;
/// the code reads `IoStatus` only, so `Parameters` (a union of per-type
/// records, the largest five pointer-sized words) is kept as raw words.
#[repr(C)]
#[derive(Copy, Clone)]
pub struct _WDF_REQUEST_COMPLETION_PARAMS {
    /// `sizeof` this structure.
    pub Size: ULONG,
    /// The request's type.
    pub Type: WDF_REQUEST_TYPE,
    /// How the request completed.
    pub IoStatus: IO_STATUS_BLOCK,
    /// Per-type parameters (not read here).
    pub Parameters: [ULONG_PTR; 6],
}
/// `WDF_REQUEST_COMPLETION_PARAMS`.
pub type WDF_REQUEST_COMPLETION_PARAMS = _WDF_REQUEST_COMPLETION_PARAMS;
/// `PWDF_REQUEST_COMPLETION_PARAMS`.
pub type PWDF_REQUEST_COMPLETION_PARAMS = *mut _WDF_REQUEST_COMPLETION_PARAMS;

/// `WDF_TIMER_CONFIG` (`wdftimer.h`).
#[repr(C)]
#[derive(Debug, Default, Copy, Clone)]
pub struct _WDF_TIMER_CONFIG {
    /// `sizeof` this structure.
    pub Size: ULONG,
    /// `EvtTimerFunc`.
    pub EvtTimerFunc: PFN_WDF_TIMER,
    /// Period in ms (0: one-shot).
    pub Period: ULONG,
    /// Serialise with the parent's callbacks.
    pub AutomaticSerialization: BOOLEAN,
    /// Tolerable delay in ms.
    pub TolerableDelay: ULONG,
    /// The padding `DECLSPEC_ALIGN(8)` puts before the next field.
    pub __bindgen_padding_0: [u8; 4usize],
    /// High-resolution timer (KMDF 1.13+), 8-aligned.
    pub UseHighResolutionTimer: BOOLEAN,
}
/// `WDF_TIMER_CONFIG`.
pub type WDF_TIMER_CONFIG = _WDF_TIMER_CONFIG;
/// `PWDF_TIMER_CONFIG`.
pub type PWDF_TIMER_CONFIG = *mut _WDF_TIMER_CONFIG;

/// `WDF_WORKITEM_CONFIG` (`wdfworkitem.h`).
#[repr(C)]
#[derive(Debug, Default, Copy, Clone)]
pub struct _WDF_WORKITEM_CONFIG {
    /// `sizeof` this structure.
    pub Size: ULONG,
    /// `EvtWorkItemFunc`.
    pub EvtWorkItemFunc: PFN_WDF_WORKITEM,
    /// Serialise with the parent's callbacks.
    pub AutomaticSerialization: BOOLEAN,
}
/// `WDF_WORKITEM_CONFIG`.
pub type WDF_WORKITEM_CONFIG = _WDF_WORKITEM_CONFIG;
/// `PWDF_WORKITEM_CONFIG`.
pub type PWDF_WORKITEM_CONFIG = *mut _WDF_WORKITEM_CONFIG;

// ---------------------------------------------------------------------------
// The WDF function table (wdffuncenum.h, KMDF 1.33) and the function types
// (the `PFN_WDF*` typedefs of the headers).
// ---------------------------------------------------------------------------

/// `WDFFUNCENUM`: positions in `WdfFunctions` (KMDF 1.33), for the functions
/// this code calls, and the table's length.
pub mod _WDFFUNCENUM {
    /// The enum's C type.
    pub type Type = core::ffi::c_int;
    pub const WdfDeviceGetDriverTableIndex: Type = 39;
    pub const WdfDeviceInitSetPnpPowerEventCallbacksTableIndex: Type = 55;
    pub const WdfDeviceCreateTableIndex: Type = 75;
    pub const WdfDeviceCreateDeviceInterfaceTableIndex: Type = 77;
    pub const WdfDriverCreateTableIndex: Type = 116;
    pub const WdfDriverWdmGetDriverObjectTableIndex: Type = 118;
    pub const WdfDriverOpenParametersRegistryKeyTableIndex: Type = 119;
    pub const WdfIoQueueCreateTableIndex: Type = 152;
    pub const WdfIoQueueGetDeviceTableIndex: Type = 157;
    pub const WdfIoTargetCreateTableIndex: Type = 167;
    pub const WdfIoTargetOpenTableIndex: Type = 168;
    pub const WdfIoTargetCloseForQueryRemoveTableIndex: Type = 169;
    pub const WdfIoTargetCloseTableIndex: Type = 170;
    pub const WdfIoTargetStartTableIndex: Type = 171;
    pub const WdfIoTargetStopTableIndex: Type = 172;
    pub const WdfIoTargetGetStateTableIndex: Type = 173;
    pub const WdfIoTargetFormatRequestForReadTableIndex: Type = 183;
    pub const WdfIoTargetFormatRequestForWriteTableIndex: Type = 185;
    pub const WdfIoTargetFormatRequestForIoctlTableIndex: Type = 187;
    pub const WdfIoTargetFormatRequestForInternalIoctlTableIndex: Type = 189;
    pub const WdfMemoryCreatePreallocatedTableIndex: Type = 193;
    pub const WdfMemoryAssignBufferTableIndex: Type = 195;
    pub const WdfObjectGetTypedContextWorkerTableIndex: Type = 202;
    pub const WdfObjectDeleteTableIndex: Type = 208;
    pub const WdfRegistryCloseTableIndex: Type = 231;
    pub const WdfRegistryQueryULongTableIndex: Type = 240;
    pub const WdfRequestCreateTableIndex: Type = 247;
    pub const WdfRequestReuseTableIndex: Type = 249;
    pub const WdfRequestSendTableIndex: Type = 253;
    pub const WdfRequestGetStatusTableIndex: Type = 254;
    pub const WdfRequestCancelSentRequestTableIndex: Type = 258;
    pub const WdfRequestSetCompletionRoutineTableIndex: Type = 260;
    pub const WdfRequestCompleteWithInformationTableIndex: Type = 265;
    pub const WdfRequestRetrieveOutputBufferTableIndex: Type = 270;
    pub const WdfRequestGetInformationTableIndex: Type = 276;
    pub const WdfWaitLockCreateTableIndex: Type = 312;
    pub const WdfWaitLockAcquireTableIndex: Type = 313;
    pub const WdfWaitLockReleaseTableIndex: Type = 314;
    pub const WdfTimerCreateTableIndex: Type = 318;
    pub const WdfTimerStartTableIndex: Type = 319;
    pub const WdfTimerStopTableIndex: Type = 320;
    pub const WdfWorkItemCreateTableIndex: Type = 379;
    pub const WdfWorkItemEnqueueTableIndex: Type = 380;
    pub const WdfWorkItemFlushTableIndex: Type = 382;
    pub const WdfIoTargetPurgeTableIndex: Type = 420;
    pub const WdfFunctionTableNumEntries: Type = 458;
}

/// `PFN_WDFDEVICEGETDRIVER`.
pub type PFN_WDFDEVICEGETDRIVER = Option<
    unsafe extern "C" fn(DriverGlobals: PWDF_DRIVER_GLOBALS, Device: WDFDEVICE) -> WDFDRIVER,
>;
/// `PFN_WDFDEVICEINITSETPNPPOWEREVENTCALLBACKS`.
pub type PFN_WDFDEVICEINITSETPNPPOWEREVENTCALLBACKS = Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        DeviceInit: PWDFDEVICE_INIT,
        PnpPowerEventCallbacks: PWDF_PNPPOWER_EVENT_CALLBACKS,
    ),
>;
/// `PFN_WDFDEVICECREATE`.
pub type PFN_WDFDEVICECREATE = Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        DeviceInit: *mut PWDFDEVICE_INIT,
        DeviceAttributes: PWDF_OBJECT_ATTRIBUTES,
        Device: *mut WDFDEVICE,
    ) -> NTSTATUS,
>;
/// `PFN_WDFDEVICECREATEDEVICEINTERFACE`.
pub type PFN_WDFDEVICECREATEDEVICEINTERFACE = Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        Device: WDFDEVICE,
        InterfaceClassGUID: *const GUID,
        ReferenceString: PCUNICODE_STRING,
    ) -> NTSTATUS,
>;
/// `PFN_WDFDRIVERCREATE`.
pub type PFN_WDFDRIVERCREATE = Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        DriverObject: PDRIVER_OBJECT,
        RegistryPath: PCUNICODE_STRING,
        DriverAttributes: PWDF_OBJECT_ATTRIBUTES,
        DriverConfig: PWDF_DRIVER_CONFIG,
        Driver: *mut WDFDRIVER,
    ) -> NTSTATUS,
>;
/// `PFN_WDFDRIVERWDMGETDRIVEROBJECT`.
pub type PFN_WDFDRIVERWDMGETDRIVEROBJECT = Option<
    unsafe extern "C" fn(DriverGlobals: PWDF_DRIVER_GLOBALS, Driver: WDFDRIVER) -> PDRIVER_OBJECT,
>;
/// `PFN_WDFDRIVEROPENPARAMETERSREGISTRYKEY`.
pub type PFN_WDFDRIVEROPENPARAMETERSREGISTRYKEY = Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        Driver: WDFDRIVER,
        DesiredAccess: ACCESS_MASK,
        KeyAttributes: PWDF_OBJECT_ATTRIBUTES,
        Key: *mut WDFKEY,
    ) -> NTSTATUS,
>;
/// `PFN_WDFIOQUEUECREATE`.
pub type PFN_WDFIOQUEUECREATE = Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        Device: WDFDEVICE,
        Config: PWDF_IO_QUEUE_CONFIG,
        QueueAttributes: PWDF_OBJECT_ATTRIBUTES,
        Queue: *mut WDFQUEUE,
    ) -> NTSTATUS,
>;
/// `PFN_WDFIOQUEUEGETDEVICE`.
pub type PFN_WDFIOQUEUEGETDEVICE =
    Option<unsafe extern "C" fn(DriverGlobals: PWDF_DRIVER_GLOBALS, Queue: WDFQUEUE) -> WDFDEVICE>;
/// `PFN_WDFIOTARGETCREATE`.
pub type PFN_WDFIOTARGETCREATE = Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        Device: WDFDEVICE,
        IoTargetAttributes: PWDF_OBJECT_ATTRIBUTES,
        IoTarget: *mut WDFIOTARGET,
    ) -> NTSTATUS,
>;
/// `PFN_WDFIOTARGETOPEN`.
pub type PFN_WDFIOTARGETOPEN = Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        IoTarget: WDFIOTARGET,
        OpenParams: PWDF_IO_TARGET_OPEN_PARAMS,
    ) -> NTSTATUS,
>;
/// `PFN_WDFIOTARGETCLOSEFORQUERYREMOVE`.
pub type PFN_WDFIOTARGETCLOSEFORQUERYREMOVE =
    Option<unsafe extern "C" fn(DriverGlobals: PWDF_DRIVER_GLOBALS, IoTarget: WDFIOTARGET)>;
/// `PFN_WDFIOTARGETCLOSE`.
pub type PFN_WDFIOTARGETCLOSE =
    Option<unsafe extern "C" fn(DriverGlobals: PWDF_DRIVER_GLOBALS, IoTarget: WDFIOTARGET)>;
/// `PFN_WDFIOTARGETSTART`.
pub type PFN_WDFIOTARGETSTART = Option<
    unsafe extern "C" fn(DriverGlobals: PWDF_DRIVER_GLOBALS, IoTarget: WDFIOTARGET) -> NTSTATUS,
>;
/// `PFN_WDFIOTARGETSTOP`.
pub type PFN_WDFIOTARGETSTOP = Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        IoTarget: WDFIOTARGET,
        Action: WDF_IO_TARGET_SENT_IO_ACTION,
    ),
>;
/// `PFN_WDFIOTARGETPURGE`.
pub type PFN_WDFIOTARGETPURGE = Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        IoTarget: WDFIOTARGET,
        Action: WDF_IO_TARGET_PURGE_IO_ACTION,
    ),
>;
/// `PFN_WDFIOTARGETGETSTATE`.
pub type PFN_WDFIOTARGETGETSTATE = Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        IoTarget: WDFIOTARGET,
    ) -> WDF_IO_TARGET_STATE,
>;
/// `PFN_WDFIOTARGETFORMATREQUESTFORREAD`.
pub type PFN_WDFIOTARGETFORMATREQUESTFORREAD = Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        IoTarget: WDFIOTARGET,
        Request: WDFREQUEST,
        OutputBuffer: WDFMEMORY,
        OutputBufferOffset: PWDFMEMORY_OFFSET,
        DeviceOffset: PLONGLONG,
    ) -> NTSTATUS,
>;
/// `PFN_WDFIOTARGETFORMATREQUESTFORWRITE`.
pub type PFN_WDFIOTARGETFORMATREQUESTFORWRITE = Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        IoTarget: WDFIOTARGET,
        Request: WDFREQUEST,
        InputBuffer: WDFMEMORY,
        InputBufferOffset: PWDFMEMORY_OFFSET,
        DeviceOffset: PLONGLONG,
    ) -> NTSTATUS,
>;
/// `PFN_WDFIOTARGETFORMATREQUESTFORIOCTL`.
pub type PFN_WDFIOTARGETFORMATREQUESTFORIOCTL = Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        IoTarget: WDFIOTARGET,
        Request: WDFREQUEST,
        IoctlCode: ULONG,
        InputBuffer: WDFMEMORY,
        InputBufferOffset: PWDFMEMORY_OFFSET,
        OutputBuffer: WDFMEMORY,
        OutputBufferOffset: PWDFMEMORY_OFFSET,
    ) -> NTSTATUS,
>;
/// `PFN_WDFIOTARGETFORMATREQUESTFORINTERNALIOCTL`.
pub type PFN_WDFIOTARGETFORMATREQUESTFORINTERNALIOCTL = Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        IoTarget: WDFIOTARGET,
        Request: WDFREQUEST,
        IoctlCode: ULONG,
        InputBuffer: WDFMEMORY,
        InputBufferOffset: PWDFMEMORY_OFFSET,
        OutputBuffer: WDFMEMORY,
        OutputBufferOffset: PWDFMEMORY_OFFSET,
    ) -> NTSTATUS,
>;
/// `PFN_WDFMEMORYCREATEPREALLOCATED`.
pub type PFN_WDFMEMORYCREATEPREALLOCATED = Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        Attributes: PWDF_OBJECT_ATTRIBUTES,
        Buffer: PVOID,
        BufferSize: usize,
        Memory: *mut WDFMEMORY,
    ) -> NTSTATUS,
>;
/// `PFN_WDFMEMORYASSIGNBUFFER`.
pub type PFN_WDFMEMORYASSIGNBUFFER = Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        Memory: WDFMEMORY,
        Buffer: PVOID,
        BufferSize: usize,
    ) -> NTSTATUS,
>;
/// `PFN_WDFOBJECTGETTYPEDCONTEXTWORKER` (`FASTCALL`, which is the C
/// convention on x64 and ARM64).
pub type PFN_WDFOBJECTGETTYPEDCONTEXTWORKER = Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        Handle: WDFOBJECT,
        TypeInfo: PCWDF_OBJECT_CONTEXT_TYPE_INFO,
    ) -> PVOID,
>;
/// `PFN_WDFOBJECTDELETE`.
pub type PFN_WDFOBJECTDELETE =
    Option<unsafe extern "C" fn(DriverGlobals: PWDF_DRIVER_GLOBALS, Object: WDFOBJECT)>;
/// `PFN_WDFREQUESTCREATE`.
pub type PFN_WDFREQUESTCREATE = Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        RequestAttributes: PWDF_OBJECT_ATTRIBUTES,
        IoTarget: WDFIOTARGET,
        Request: *mut WDFREQUEST,
    ) -> NTSTATUS,
>;
/// `PFN_WDFREQUESTREUSE`.
pub type PFN_WDFREQUESTREUSE = Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        Request: WDFREQUEST,
        ReuseParams: PWDF_REQUEST_REUSE_PARAMS,
    ) -> NTSTATUS,
>;
/// `PFN_WDFREQUESTSEND`.
pub type PFN_WDFREQUESTSEND = Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        Request: WDFREQUEST,
        Target: WDFIOTARGET,
        Options: PWDF_REQUEST_SEND_OPTIONS,
    ) -> BOOLEAN,
>;
/// `PFN_WDFREQUESTGETSTATUS`.
pub type PFN_WDFREQUESTGETSTATUS = Option<
    unsafe extern "C" fn(DriverGlobals: PWDF_DRIVER_GLOBALS, Request: WDFREQUEST) -> NTSTATUS,
>;
/// `PFN_WDFREQUESTCANCELSENTREQUEST`.
pub type PFN_WDFREQUESTCANCELSENTREQUEST = Option<
    unsafe extern "C" fn(DriverGlobals: PWDF_DRIVER_GLOBALS, Request: WDFREQUEST) -> BOOLEAN,
>;
/// `PFN_WDFREQUESTSETCOMPLETIONROUTINE`.
pub type PFN_WDFREQUESTSETCOMPLETIONROUTINE = Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        Request: WDFREQUEST,
        CompletionRoutine: PFN_WDF_REQUEST_COMPLETION_ROUTINE,
        CompletionContext: WDFCONTEXT,
    ),
>;
/// `PFN_WDFREQUESTCOMPLETEWITHINFORMATION`.
pub type PFN_WDFREQUESTCOMPLETEWITHINFORMATION = Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        Request: WDFREQUEST,
        Status: NTSTATUS,
        Information: ULONG_PTR,
    ),
>;
/// `PFN_WDFREQUESTRETRIEVEOUTPUTBUFFER`.
pub type PFN_WDFREQUESTRETRIEVEOUTPUTBUFFER = Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        Request: WDFREQUEST,
        MinimumRequiredSize: usize,
        Buffer: *mut PVOID,
        Length: *mut usize,
    ) -> NTSTATUS,
>;
/// `PFN_WDFREQUESTGETINFORMATION`.
pub type PFN_WDFREQUESTGETINFORMATION = Option<
    unsafe extern "C" fn(DriverGlobals: PWDF_DRIVER_GLOBALS, Request: WDFREQUEST) -> ULONG_PTR,
>;
/// `PFN_WDFREGISTRYCLOSE`.
pub type PFN_WDFREGISTRYCLOSE =
    Option<unsafe extern "C" fn(DriverGlobals: PWDF_DRIVER_GLOBALS, Key: WDFKEY)>;
/// `PFN_WDFREGISTRYQUERYULONG`.
pub type PFN_WDFREGISTRYQUERYULONG = Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        Key: WDFKEY,
        ValueName: PCUNICODE_STRING,
        Value: PULONG,
    ) -> NTSTATUS,
>;
/// `PFN_WDFWAITLOCKCREATE`.
pub type PFN_WDFWAITLOCKCREATE = Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        LockAttributes: PWDF_OBJECT_ATTRIBUTES,
        Lock: *mut WDFWAITLOCK,
    ) -> NTSTATUS,
>;
/// `PFN_WDFWAITLOCKACQUIRE`.
pub type PFN_WDFWAITLOCKACQUIRE = Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        Lock: WDFWAITLOCK,
        Timeout: PLONGLONG,
    ) -> NTSTATUS,
>;
/// `PFN_WDFWAITLOCKRELEASE`.
pub type PFN_WDFWAITLOCKRELEASE =
    Option<unsafe extern "C" fn(DriverGlobals: PWDF_DRIVER_GLOBALS, Lock: WDFWAITLOCK)>;
/// `PFN_WDFTIMERCREATE`.
pub type PFN_WDFTIMERCREATE = Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        Config: PWDF_TIMER_CONFIG,
        Attributes: PWDF_OBJECT_ATTRIBUTES,
        Timer: *mut WDFTIMER,
    ) -> NTSTATUS,
>;
/// `PFN_WDFTIMERSTART`.
pub type PFN_WDFTIMERSTART = Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        Timer: WDFTIMER,
        DueTime: LONGLONG,
    ) -> BOOLEAN,
>;
/// `PFN_WDFTIMERSTOP`.
pub type PFN_WDFTIMERSTOP = Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        Timer: WDFTIMER,
        Wait: BOOLEAN,
    ) -> BOOLEAN,
>;
/// `PFN_WDFWORKITEMCREATE`.
pub type PFN_WDFWORKITEMCREATE = Option<
    unsafe extern "C" fn(
        DriverGlobals: PWDF_DRIVER_GLOBALS,
        Config: PWDF_WORKITEM_CONFIG,
        Attributes: PWDF_OBJECT_ATTRIBUTES,
        WorkItem: *mut WDFWORKITEM,
    ) -> NTSTATUS,
>;
/// `PFN_WDFWORKITEMENQUEUE`.
pub type PFN_WDFWORKITEMENQUEUE =
    Option<unsafe extern "C" fn(DriverGlobals: PWDF_DRIVER_GLOBALS, WorkItem: WDFWORKITEM)>;
/// `PFN_WDFWORKITEMFLUSH`.
pub type PFN_WDFWORKITEMFLUSH =
    Option<unsafe extern "C" fn(DriverGlobals: PWDF_DRIVER_GLOBALS, WorkItem: WDFWORKITEM)>;

// ---------------------------------------------------------------------------
// Layouts: x64 and ARM64 (both LLP64 with 8-byte pointers), as the KMDF 1.33
// headers give them (see the README for how they were compared).
// ---------------------------------------------------------------------------

/// `assert_layout!(T, size, align, field @ offset, ...)`: compile-time checks.
macro_rules! assert_layout {
    ($t:ty, $size:expr, $align:expr $(, $field:ident @ $offset:expr)* $(,)?) => {
        const _: () = {
            assert!(core::mem::size_of::<$t>() == $size, concat!("size of ", stringify!($t)));
            assert!(core::mem::align_of::<$t>() == $align, concat!("align of ", stringify!($t)));
            $(assert!(
                core::mem::offset_of!($t, $field) == $offset,
                concat!("offset of ", stringify!($t), ".", stringify!($field))
            );)*
        };
    };
}

#[cfg(target_pointer_width = "64")]
mod layout {
    use super::*;

    assert_layout!(LARGE_INTEGER, 8, 8, QuadPart @ 0);
    assert_layout!(GUID, 16, 4, Data1 @ 0, Data2 @ 4, Data3 @ 6, Data4 @ 8);
    assert_layout!(UNICODE_STRING, 16, 8, Length @ 0, MaximumLength @ 2, Buffer @ 8);
    assert_layout!(LIST_ENTRY, 16, 8, Flink @ 0, Blink @ 8);
    assert_layout!(KEVENT, 24, 8, Header @ 0);
    assert_layout!(DISPATCHER_HEADER, 24, 8, SignalState @ 4, WaitListHead @ 8);
    assert_layout!(DRIVER_OBJECT, 0x150, 8);
    assert_layout!(IO_STATUS_BLOCK, 16, 8, Information @ 8);
    assert_layout!(
        DEVICE_INTERFACE_CHANGE_NOTIFICATION, 48, 8,
        Version @ 0, Size @ 2, Event @ 4, InterfaceClassGuid @ 20, SymbolicLinkName @ 40
    );
    assert_layout!(WDFMEMORY_OFFSET, 16, 8, BufferOffset @ 0, BufferLength @ 8);
    assert_layout!(
        WDF_OBJECT_CONTEXT_TYPE_INFO, 40, 8,
        Size @ 0, ContextName @ 8, ContextSize @ 16, UniqueType @ 24,
        EvtDriverGetUniqueContextType @ 32
    );
    assert_layout!(
        WDF_OBJECT_ATTRIBUTES, 56, 8,
        Size @ 0, EvtCleanupCallback @ 8, EvtDestroyCallback @ 16, ExecutionLevel @ 24,
        SynchronizationScope @ 28, ParentObject @ 32, ContextSizeOverride @ 40,
        ContextTypeInfo @ 48
    );
    assert_layout!(
        WDF_DRIVER_CONFIG, 32, 8,
        Size @ 0, EvtDriverDeviceAdd @ 8, EvtDriverUnload @ 16, DriverInitFlags @ 24,
        DriverPoolTag @ 28
    );
    assert_layout!(
        WDF_PNPPOWER_EVENT_CALLBACKS, 144, 8,
        Size @ 0, EvtDeviceD0Entry @ 8, EvtDeviceD0EntryPostInterruptsEnabled @ 16,
        EvtDeviceD0Exit @ 24, EvtDeviceD0ExitPreInterruptsDisabled @ 32,
        EvtDevicePrepareHardware @ 40, EvtDeviceReleaseHardware @ 48,
        EvtDeviceSelfManagedIoCleanup @ 56, EvtDeviceSelfManagedIoFlush @ 64,
        EvtDeviceSelfManagedIoInit @ 72, EvtDeviceSelfManagedIoSuspend @ 80,
        EvtDeviceSelfManagedIoRestart @ 88, EvtDeviceSurpriseRemoval @ 96,
        EvtDeviceQueryRemove @ 104, EvtDeviceQueryStop @ 112,
        EvtDeviceUsageNotification @ 120, EvtDeviceRelationsQuery @ 128,
        EvtDeviceUsageNotificationEx @ 136
    );
    assert_layout!(
        WDF_IO_QUEUE_CONFIG, 96, 8,
        Size @ 0, DispatchType @ 4, PowerManaged @ 8, AllowZeroLengthRequests @ 12,
        DefaultQueue @ 13, EvtIoDefault @ 16, EvtIoRead @ 24, EvtIoWrite @ 32,
        EvtIoDeviceControl @ 40, EvtIoInternalDeviceControl @ 48, EvtIoStop @ 56,
        EvtIoResume @ 64, EvtIoCanceledOnQueue @ 72, Settings @ 80, Driver @ 88
    );
    assert_layout!(
        WDF_IO_TARGET_OPEN_PARAMS, 136, 8,
        Size @ 0, Type @ 4, EvtIoTargetQueryRemove @ 8, EvtIoTargetRemoveCanceled @ 16,
        EvtIoTargetRemoveComplete @ 24, TargetDeviceObject @ 32, TargetFileObject @ 40,
        TargetDeviceName @ 48, DesiredAccess @ 64, ShareAccess @ 68, FileAttributes @ 72,
        CreateDisposition @ 76, CreateOptions @ 80, EaBuffer @ 88, EaBufferLength @ 96,
        AllocationSize @ 104, FileInformation @ 112, FileName @ 120
    );
    assert_layout!(WDF_REQUEST_SEND_OPTIONS, 16, 8, Size @ 0, Flags @ 4, Timeout @ 8);
    assert_layout!(WDF_REQUEST_REUSE_PARAMS, 24, 8, Size @ 0, Flags @ 4, Status @ 8, NewIrp @ 16);
    assert_layout!(
        WDF_REQUEST_COMPLETION_PARAMS, 72, 8,
        Size @ 0, Type @ 4, IoStatus @ 8, Parameters @ 24
    );
    assert_layout!(
        WDF_TIMER_CONFIG, 40, 8,
        Size @ 0, EvtTimerFunc @ 8, Period @ 16, AutomaticSerialization @ 20,
        TolerableDelay @ 24, UseHighResolutionTimer @ 32
    );
    assert_layout!(
        WDF_WORKITEM_CONFIG, 24, 8,
        Size @ 0, EvtWorkItemFunc @ 8, AutomaticSerialization @ 16
    );
}
