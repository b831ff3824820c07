//! Just enough of the PE/COFF format to check a driver binary and compute
//! its Authenticode hash (the hash a catalog stores for it).
//!
//! The Authenticode hash covers the whole file except the optional
//! header's `CheckSum`, the certificate-table data-directory entry and the
//! certificate table itself (the embedded signature), so signing the `.sys`
//! after the catalog was made does not change it. An unsigned file whose
//! length is not a multiple of 8 is hashed as if padded with zeros to 8,
//! because signing pads it so. This is the linear form used by signtool,
//! Windows and osslsigncode.

use sha1::{Digest, Sha1};

/// `IMAGE_FILE_MACHINE_AMD64`.
pub const MACHINE_AMD64: u16 = 0x8664;
/// `IMAGE_FILE_MACHINE_ARM64`.
pub const MACHINE_ARM64: u16 = 0xAA64;
/// `IMAGE_FILE_MACHINE_I386`.
pub const MACHINE_I386: u16 = 0x014C;
/// `IMAGE_SUBSYSTEM_NATIVE` (kernel drivers).
pub const SUBSYSTEM_NATIVE: u16 = 1;

/// Why bytes are not a usable PE image.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a PE image: {0}")]
pub struct PeError(pub &'static str);

/// The parsed fields xtask needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeImage {
    /// COFF `Machine`.
    pub machine: u16,
    /// PE32+ (64-bit optional header).
    pub pe32plus: bool,
    /// Optional header `Subsystem`.
    pub subsystem: u16,
    /// Offset of the optional header's `CheckSum` field.
    pub checksum_offset: usize,
    /// Offset of the certificate-table data-directory entry.
    pub cert_dir_offset: usize,
    /// `(offset, length)` of the embedded signature, if there is a valid one
    /// at the end of the file.
    pub cert_table: Option<(usize, usize)>,
    /// File length.
    pub len: usize,
}

fn u16_at(b: &[u8], at: usize) -> Result<u16, PeError> {
    b.get(at..at + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
        .ok_or(PeError("truncated"))
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, PeError> {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or(PeError("truncated"))
}

/// Parses the headers of a PE image.
pub fn parse(bytes: &[u8]) -> Result<PeImage, PeError> {
    if !bytes.starts_with(b"MZ") {
        return Err(PeError("no MZ signature"));
    }
    let pe = u32_at(bytes, 0x3C)? as usize;
    if pe < 0x40 || pe.checked_add(24).is_none_or(|end| end > bytes.len()) {
        return Err(PeError("bad e_lfanew"));
    }
    if &bytes[pe..pe + 4] != b"PE\0\0" {
        return Err(PeError("no PE signature"));
    }
    let machine = u16_at(bytes, pe + 4)?;
    let opt = pe + 24;
    let magic = u16_at(bytes, opt)?;
    let pe32plus = match magic {
        0x20B => true,
        0x10B => false,
        _ => return Err(PeError("unknown optional-header magic")),
    };
    let dirs = opt + if pe32plus { 112 } else { 96 };
    let nrvas = u32_at(bytes, dirs - 4)?;
    if nrvas < 5 {
        return Err(PeError("no certificate-table directory entry"));
    }
    let cert_dir_offset = dirs + 4 * 8;
    let sig_pos = u32_at(bytes, cert_dir_offset)? as usize;
    let sig_len = u32_at(bytes, cert_dir_offset + 4)? as usize;
    let subsystem = u16_at(bytes, opt + 68)?;
    // Like signtool and osslsigncode, only a certificate table that ends
    // the file counts as a signature.
    let cert_table = (sig_pos != 0
        && sig_len != 0
        && sig_pos < bytes.len()
        && sig_pos.checked_add(sig_len) == Some(bytes.len()))
    .then_some((sig_pos, sig_len));
    Ok(PeImage {
        machine,
        pe32plus,
        subsystem,
        checksum_offset: opt + 64,
        cert_dir_offset,
        cert_table,
        len: bytes.len(),
    })
}

impl PeImage {
    /// SHA-1 Authenticode hash of `bytes` (which must be the image parsed).
    pub fn authenticode_sha1(&self, bytes: &[u8]) -> [u8; 20] {
        let mut h = Sha1::new();
        let end = self.cert_table.map_or(bytes.len(), |(pos, _)| pos);
        h.update(&bytes[..self.checksum_offset]);
        h.update(&bytes[self.checksum_offset + 4..self.cert_dir_offset]);
        h.update(&bytes[self.cert_dir_offset + 8..end]);
        if self.cert_table.is_none() && end % 8 != 0 {
            h.update(&[0u8; 8][..8 - end % 8]);
        }
        h.finalize().into()
    }
}

/// `amd64`, `arm64`, `x86` or the number in hex.
pub fn machine_name(machine: u16) -> String {
    match machine {
        MACHINE_AMD64 => "amd64".into(),
        MACHINE_ARM64 => "arm64".into(),
        MACHINE_I386 => "x86".into(),
        other => format!("machine 0x{other:04x}"),
    }
}

/// The PE `CheckSum` of `bytes` (the field at `checksum_offset` counts as 0).
pub fn checksum(bytes: &[u8], checksum_offset: usize) -> u32 {
    let mut sum: u64 = 0;
    for (i, chunk) in bytes.chunks(2).enumerate() {
        let at = i * 2;
        if at >= checksum_offset && at < checksum_offset + 4 {
            continue;
        }
        let word = u16::from_le_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
        sum += u64::from(word);
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    sum = (sum & 0xFFFF) + (sum >> 16);
    (sum as u32).wrapping_add(bytes.len() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::minimal_driver_pe;

    #[test]
    fn parses_fixture() {
        let pe = minimal_driver_pe(MACHINE_AMD64, 1);
        let img = parse(&pe).unwrap();
        assert_eq!(img.machine, MACHINE_AMD64);
        assert!(img.pe32plus);
        assert_eq!(img.subsystem, SUBSYSTEM_NATIVE);
        assert_eq!(img.cert_table, None);
        let stored = u32::from_le_bytes(
            pe[img.checksum_offset..img.checksum_offset + 4]
                .try_into()
                .unwrap(),
        );
        assert_eq!(stored, checksum(&pe, img.checksum_offset));
    }

    #[test]
    fn hash_ignores_checksum_cert_entry_and_signature() {
        let pe = minimal_driver_pe(MACHINE_AMD64, 2);
        let img = parse(&pe).unwrap();
        let h = img.authenticode_sha1(&pe);

        // Pretend it was signed: cert entry points at an appended table.
        let mut signed = pe.clone();
        let pos = signed.len() as u32;
        signed.extend_from_slice(&[0xAB; 16]);
        signed[img.cert_dir_offset..img.cert_dir_offset + 4].copy_from_slice(&pos.to_le_bytes());
        signed[img.cert_dir_offset + 4..img.cert_dir_offset + 8]
            .copy_from_slice(&16u32.to_le_bytes());
        signed[img.checksum_offset] ^= 0xFF;
        let simg = parse(&signed).unwrap();
        assert_eq!(simg.cert_table, Some((pos as usize, 16)));
        assert_eq!(simg.authenticode_sha1(&signed), h);

        // Any other byte changes it.
        let mut other = pe.clone();
        *other.last_mut().unwrap() ^= 1;
        assert_ne!(parse(&other).unwrap().authenticode_sha1(&other), h);
    }

    #[test]
    fn rejects_non_pe() {
        assert_eq!(parse(b"\x7fELF...."), Err(PeError("no MZ signature")));
        let mut pe = minimal_driver_pe(MACHINE_AMD64, 3);
        pe[0x80] = b'X';
        assert_eq!(parse(&pe), Err(PeError("no PE signature")));
        assert_eq!(parse(&pe[..0x50]), Err(PeError("bad e_lfanew")));
    }
}
