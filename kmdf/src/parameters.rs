//! Driver settings from the registry, validated: the host-independent half.
//!
//! A driver keeps its settings as `REG_DWORD` values under its service's
//! `Parameters` key
//! (`HKLM\SYSTEM\CurrentControlSet\Services\<service>\Parameters`), which an
//! INF fills with an `HKR` `AddReg` in the service-install section. Each
//! setting is a [`UlongSetting`]: a name, a default and an inclusive range.
//! [`UlongSetting::resolve`] decides what a value read from the registry
//! means: absent -> the default; in range -> the value; out of range -> the
//! default, reported as [`Resolved::OutOfRange`] so the shell can log it.
//!
//! On Windows, `dmf_kmdf::shell::Parameters` reads the key
//! (`WdfDriverOpenParametersRegistryKey`, `WdfRegistryQueryULong`,
//! `WdfRegistryClose`) and logs every fallback with `DbgPrint`; everything
//! here is plain logic, tested on any host.
//!
//! ```
//! use dmf_kmdf::parameters::{Resolved, UlongSetting};
//! const DEPTH: UlongSetting = UlongSetting { name: "Depth", default: 4, min: 1, max: 64 };
//! assert_eq!(DEPTH.resolve(None), (4, Resolved::Default));
//! assert_eq!(DEPTH.resolve(Some(8)), (8, Resolved::Set));
//! assert_eq!(DEPTH.resolve(Some(0)), (4, Resolved::OutOfRange(0)));
//! ```

use core::fmt;

/// One `REG_DWORD` setting under the driver's `Parameters` key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UlongSetting {
    /// Value name under `Parameters` (ASCII, at most
    /// [`MAX_NAME_LEN`] characters).
    pub name: &'static str,
    /// Used when the value is absent, unreadable or out of range.
    pub default: u32,
    /// Smallest accepted value.
    pub min: u32,
    /// Largest accepted value.
    pub max: u32,
}

/// The longest value name the shell can query (it builds the name's
/// `UNICODE_STRING` on the stack).
pub const MAX_NAME_LEN: usize = 64;

/// Where a resolved setting came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolved {
    /// The value was absent (or could not be read): the default.
    Default,
    /// The registry's value, within range.
    Set,
    /// The registry held this value, outside the range: the default is used.
    OutOfRange(u32),
}

impl UlongSetting {
    /// What `raw` (the registry's value, `None` if absent) resolves to.
    pub const fn resolve(&self, raw: Option<u32>) -> (u32, Resolved) {
        match raw {
            None => (self.default, Resolved::Default),
            Some(v) if v >= self.min && v <= self.max => (v, Resolved::Set),
            Some(v) => (self.default, Resolved::OutOfRange(v)),
        }
    }

    /// Whether the setting itself is well-formed: a non-empty ASCII name of
    /// at most [`MAX_NAME_LEN`] characters, `min <= default <= max`.
    pub const fn is_valid(&self) -> bool {
        let bytes = self.name.as_bytes();
        if bytes.is_empty() || bytes.len() > MAX_NAME_LEN {
            return false;
        }
        let mut i = 0;
        while i < bytes.len() {
            if !bytes[i].is_ascii_graphic() {
                return false;
            }
            i += 1;
        }
        self.min <= self.default && self.default <= self.max
    }
}

/// The log line of an out-of-range value (what the shell prints).
#[derive(Clone, Copy, Debug)]
pub struct OutOfRange<'a> {
    /// The setting.
    pub setting: &'a UlongSetting,
    /// The value the registry held.
    pub value: u32,
}

impl fmt::Display for OutOfRange<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.setting;
        write!(
            f,
            "Parameters\\{} = {} is outside {}..={}; using the default {}",
            s.name, self.value, s.min, s.max, s.default
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: UlongSetting = UlongSetting {
        name: "RequestsPerTarget",
        default: 4,
        min: 1,
        max: 64,
    };

    #[test]
    fn bounds_are_inclusive() {
        assert_eq!(S.resolve(Some(1)), (1, Resolved::Set));
        assert_eq!(S.resolve(Some(64)), (64, Resolved::Set));
        assert_eq!(S.resolve(Some(65)), (4, Resolved::OutOfRange(65)));
        assert_eq!(
            S.resolve(Some(u32::MAX)),
            (4, Resolved::OutOfRange(u32::MAX))
        );
        assert_eq!(S.resolve(None), (4, Resolved::Default));
    }

    #[test]
    fn validity() {
        assert!(S.is_valid());
        assert!(!UlongSetting { default: 0, ..S }.is_valid());
        assert!(!UlongSetting { name: "", ..S }.is_valid());
        assert!(!UlongSetting {
            name: "two words",
            ..S
        }
        .is_valid());
        let long: &'static str = "x".repeat(MAX_NAME_LEN + 1).leak();
        assert!(!UlongSetting { name: long, ..S }.is_valid());
    }

    #[test]
    fn log_line_names_value_range_and_default() {
        let line = OutOfRange {
            setting: &S,
            value: 0,
        }
        .to_string();
        assert_eq!(
            line,
            "Parameters\\RequestsPerTarget = 0 is outside 1..=64; using the default 4"
        );
    }
}
