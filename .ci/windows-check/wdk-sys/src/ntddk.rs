//! Kernel routines (`wdm.h` / `ntddk.h`) that the code calls directly, with
//! the documented signatures in bindgen's shape (`extern "C"`: `NTAPI` and
//! `__cdecl` are the same convention on x64 and ARM64).

use crate::types::{
    BOOLEAN, EVENT_TYPE, IO_NOTIFICATION_EVENT_CATEGORY, KIRQL, KPRIORITY, KPROCESSOR_MODE,
    KWAIT_REASON, LONG, NTSTATUS, PCSTR, PDRIVER_NOTIFICATION_CALLBACK_ROUTINE, PDRIVER_OBJECT,
    PKSPIN_LOCK, PLARGE_INTEGER, POOL_FLAGS, PRKEVENT, PULONG64, PVOID, SIZE_T, ULONG, ULONG64,
    ULONG_PTR,
};

unsafe extern "C" {
    /// `KeAcquireSpinLockRaiseToDpc`: acquires, raising to `DISPATCH_LEVEL`;
    /// returns the previous IRQL.
    pub fn KeAcquireSpinLockRaiseToDpc(SpinLock: PKSPIN_LOCK) -> KIRQL;
    /// `KeReleaseSpinLock`: releases, restoring `NewIrql`.
    pub fn KeReleaseSpinLock(SpinLock: PKSPIN_LOCK, NewIrql: KIRQL);
    /// `KeInitializeEvent`.
    pub fn KeInitializeEvent(Event: PRKEVENT, Type: EVENT_TYPE, State: BOOLEAN);
    /// `KeSetEvent`: returns the previous state.
    pub fn KeSetEvent(Event: PRKEVENT, Increment: KPRIORITY, Wait: BOOLEAN) -> LONG;
    /// `KeClearEvent`.
    pub fn KeClearEvent(Event: PRKEVENT);
    /// `KeReadStateEvent`.
    pub fn KeReadStateEvent(Event: PRKEVENT) -> LONG;
    /// `KeWaitForSingleObject`.
    pub fn KeWaitForSingleObject(
        Object: PVOID,
        WaitReason: KWAIT_REASON,
        WaitMode: KPROCESSOR_MODE,
        Alertable: BOOLEAN,
        Timeout: PLARGE_INTEGER,
    ) -> NTSTATUS;
    /// `KeQueryInterruptTimePrecise`: interrupt time in 100 ns units.
    pub fn KeQueryInterruptTimePrecise(QpcTimeStamp: PULONG64) -> ULONG64;
    /// `KeBugCheckEx`: does not return.
    pub fn KeBugCheckEx(
        BugCheckCode: ULONG,
        BugCheckParameter1: ULONG_PTR,
        BugCheckParameter2: ULONG_PTR,
        BugCheckParameter3: ULONG_PTR,
        BugCheckParameter4: ULONG_PTR,
    ) -> !;
    /// `ExAllocatePool2`: null on failure (without `POOL_FLAG_RAISE_ON_FAILURE`).
    pub fn ExAllocatePool2(Flags: POOL_FLAGS, NumberOfBytes: SIZE_T, Tag: ULONG) -> PVOID;
    /// `ExFreePool`.
    pub fn ExFreePool(P: PVOID);
    /// `IoRegisterPlugPlayNotification`.
    pub fn IoRegisterPlugPlayNotification(
        EventCategory: IO_NOTIFICATION_EVENT_CATEGORY,
        EventCategoryFlags: ULONG,
        EventCategoryData: PVOID,
        DriverObject: PDRIVER_OBJECT,
        CallbackRoutine: PDRIVER_NOTIFICATION_CALLBACK_ROUTINE,
        Context: PVOID,
        NotificationEntry: *mut PVOID,
    ) -> NTSTATUS;
    /// `IoUnregisterPlugPlayNotificationEx`: returns when no callback of the
    /// registration runs any more.
    pub fn IoUnregisterPlugPlayNotificationEx(NotificationEntry: PVOID) -> NTSTATUS;
    /// `DbgPrint`: `printf`-style output to the kernel debugger.
    pub fn DbgPrint(Format: PCSTR, ...) -> ULONG;
    /// `DbgPrintEx`: as `DbgPrint`, filtered by component and level.
    pub fn DbgPrintEx(ComponentId: ULONG, Level: ULONG, Format: PCSTR, ...) -> ULONG;
}
