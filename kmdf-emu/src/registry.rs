//! The service's `Parameters` key: `WdfDriverOpenParametersRegistryKey`,
//! `WdfRegistryQueryULong`, `WdfRegistryClose`, over the values the machine
//! was given ([`Machine::set_parameters`](crate::Machine::set_parameters)).

use std::collections::HashMap;

use wdk_sys::*;

use crate::kernel::assert_passive;
use crate::machine::current;
use crate::object::{self, create, get_live, lock, Attributes, Kind};

/// `STATUS_OBJECT_NAME_NOT_FOUND`.
const STATUS_OBJECT_NAME_NOT_FOUND: NTSTATUS = 0xC000_0034_u32 as i32;

/// `WDFKEY`: the values of the opened key.
pub(crate) struct KeyData {
    values: HashMap<String, u32>,
}

pub(crate) unsafe extern "C" fn wdf_driver_open_parameters_registry_key(
    _globals: PWDF_DRIVER_GLOBALS,
    driver: WDFDRIVER,
    _access: ACCESS_MASK,
    attributes: PWDF_OBJECT_ATTRIBUTES,
    key: *mut WDFKEY,
) -> NTSTATUS {
    const F: &str = "WdfDriverOpenParametersRegistryKey";
    assert_passive(F);
    let _ = get_live(driver.cast(), F);
    assert!(!key.is_null(), "{F}: NULL key");
    let Some(values) = lock(&current().parameters).clone() else {
        return STATUS_OBJECT_NAME_NOT_FOUND;
    };
    // SAFETY: caller contract.
    let attributes = unsafe { Attributes::read(attributes, F) };
    let object = create(Kind::Key(KeyData { values }), &attributes);
    // SAFETY: caller contract.
    unsafe { key.write(object.handle().cast()) };
    0
}

pub(crate) unsafe extern "C" fn wdf_registry_query_ulong(
    _globals: PWDF_DRIVER_GLOBALS,
    key: WDFKEY,
    name: PCUNICODE_STRING,
    value: PULONG,
) -> NTSTATUS {
    const F: &str = "WdfRegistryQueryULong";
    assert_passive(F);
    let object = get_live(key.cast(), F);
    let Kind::Key(k) = &object.kind else {
        panic!("{F}: {object:?} is not a WDFKEY");
    };
    // SAFETY: caller contract: a valid UNICODE_STRING.
    let name = unsafe { unicode_to_string(&*name) };
    match k.values.get(&name) {
        Some(v) => {
            // SAFETY: caller contract.
            unsafe { value.write(*v) };
            0
        }
        None => STATUS_OBJECT_NAME_NOT_FOUND,
    }
}

pub(crate) unsafe extern "C" fn wdf_registry_close(_globals: PWDF_DRIVER_GLOBALS, key: WDFKEY) {
    object::delete(key.cast(), "WdfRegistryClose");
}

/// Decodes a `UNICODE_STRING`.
///
/// # Safety
///
/// `s.Buffer` must hold `s.Length` bytes.
pub(crate) unsafe fn unicode_to_string(s: &UNICODE_STRING) -> String {
    if s.Buffer.is_null() || s.Length == 0 {
        return String::new();
    }
    // SAFETY: caller contract.
    let units = unsafe { std::slice::from_raw_parts(s.Buffer, usize::from(s.Length) / 2) };
    String::from_utf16_lossy(units)
}
