//! A Windows `GUID`, laid out exactly like the C structure.
//!
//! ```
//! use dmf_wdf::Guid;
//! let g: Guid = "{5F7C2CF6-8A4E-4B8D-9C35-0E11F29A3B01}".parse().unwrap();
//! assert_eq!(g, Guid::from_u128(0x5F7C2CF6_8A4E_4B8D_9C35_0E11F29A3B01));
//! assert_eq!(g.to_string(), "{5F7C2CF6-8A4E-4B8D-9C35-0E11F29A3B01}");
//! ```

use core::fmt;
use core::str::FromStr;

/// A globally unique identifier (`GUID`), e.g. a device interface class.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[repr(C)]
pub struct Guid {
    /// First 32 bits.
    pub data1: u32,
    /// Next 16 bits.
    pub data2: u16,
    /// Next 16 bits.
    pub data3: u16,
    /// Last 64 bits, in byte order.
    pub data4: [u8; 8],
}

impl Guid {
    /// The all-zero GUID (`GUID_NULL`).
    pub const NULL: Guid = Guid::from_u128(0);

    /// Builds a GUID from its 128-bit big-endian textual value
    /// (`0xAAAAAAAA_BBBB_CCCC_DDDD_EEEEEEEEEEEE`).
    pub const fn from_u128(v: u128) -> Guid {
        let b = v.to_be_bytes();
        Guid {
            data1: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            data2: u16::from_be_bytes([b[4], b[5]]),
            data3: u16::from_be_bytes([b[6], b[7]]),
            data4: [b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]],
        }
    }

    /// The 128-bit value, the inverse of [`Guid::from_u128`].
    pub const fn to_u128(self) -> u128 {
        let d1 = self.data1.to_be_bytes();
        let d2 = self.data2.to_be_bytes();
        let d3 = self.data3.to_be_bytes();
        let d4 = self.data4;
        u128::from_be_bytes([
            d1[0], d1[1], d1[2], d1[3], d2[0], d2[1], d3[0], d3[1], d4[0], d4[1], d4[2], d4[3],
            d4[4], d4[5], d4[6], d4[7],
        ])
    }
}

/// Why a string is not a GUID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseGuidError;

impl fmt::Display for ParseGuidError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "expected a GUID of the form {XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX} (braces optional)",
        )
    }
}

impl core::error::Error for ParseGuidError {}

impl FromStr for Guid {
    type Err = ParseGuidError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let s = match (s.strip_prefix('{'), s.ends_with('}')) {
            (Some(inner), true) => &inner[..inner.len() - 1],
            (None, false) => s,
            _ => return Err(ParseGuidError),
        };
        let bytes = s.as_bytes();
        if bytes.len() != 36 {
            return Err(ParseGuidError);
        }
        let mut value: u128 = 0;
        for (i, &c) in bytes.iter().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                if c != b'-' {
                    return Err(ParseGuidError);
                }
                continue;
            }
            let digit = (c as char).to_digit(16).ok_or(ParseGuidError)?;
            value = (value << 4) | u128::from(digit);
        }
        Ok(Guid::from_u128(value))
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.data4;
        write!(
            f,
            "{{{:08X}-{:04X}-{:04X}-{:02X}{:02X}-{:02X}{:02X}{:02X}{:02X}{:02X}{:02X}}}",
            self.data1, self.data2, self.data3, d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]
        )
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let v = 0x0123_4567_89AB_CDEF_FEDC_BA98_7654_3210u128;
        assert_eq!(Guid::from_u128(v).to_u128(), v);
        let g = Guid::from_u128(v);
        assert_eq!(g.data1, 0x0123_4567);
        assert_eq!(g.data2, 0x89AB);
        assert_eq!(g.data3, 0xCDEF);
        assert_eq!(g.data4, [0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32, 0x10]);
    }

    #[test]
    fn parse_rejects_garbage() {
        assert!("".parse::<Guid>().is_err());
        assert!("{0123}".parse::<Guid>().is_err());
        assert!("{01234567-89AB-CDEF-FEDC-BA987654321G}"
            .parse::<Guid>()
            .is_err());
        assert!("{01234567-89AB-CDEF-FEDC-BA9876543210"
            .parse::<Guid>()
            .is_err());
        assert!("01234567-89ab-cdef-fedc-ba9876543210"
            .parse::<Guid>()
            .is_ok());
    }
}
