//! Writes an (unsigned) Windows security catalog, the `.cat` that `inf2cat`
//! makes, so a driver package can be built on a host without the WDK.
//!
//! A catalog is a PKCS #7 `SignedData` whose content is a Microsoft
//! certificate trust list (`szOID_CTL`, 1.3.6.1.4.1.311.10.1) listing each
//! file of the package by hash ("catalog list", 1.3.6.1.4.1.311.12.1.1, with
//! SHA-1 members, 1.3.6.1.4.1.311.12.1.2 — the format `makecat`/`inf2cat`
//! write for catalog version 1, which every Windows 10/11 accepts). Each
//! member has
//!
//! * a tag: the hash as upper-case hex, UTF-16LE, NUL-terminated;
//! * `SPC_INDIRECT_DATA` (1.3.6.1.4.1.311.2.1.4): the Authenticode hash for
//!   a PE file (`SPC_PE_IMAGE_DATA`, 1.3.6.1.4.1.311.2.1.15) or the SHA-1 of
//!   the bytes for any other file (`SPC_CAB_DATA`, 1.3.6.1.4.1.311.2.1.25);
//! * `CAT_MEMBERINFO` (1.3.6.1.4.1.311.12.2.2): the subject-interface
//!   package GUID (PE or flat file) and version 512;
//! * `CAT_NAMEVALUE` (1.3.6.1.4.1.311.12.2.1) attributes `File` and `OSAttr`.
//!
//! Catalog-wide `CAT_NAMEVALUE` extensions give `OS` and `HWID1..n`. The
//! signature (`SignerInfo`, certificates) is added afterwards by
//! `osslsigncode sign` or `signtool sign`, exactly as for an `inf2cat`
//! catalog.

use std::time::Duration;

use der::asn1::{Any, BmpString, Null, ObjectIdentifier as Oid, OctetString, UtcTime};
use der::{Encode, Tag, TagNumber};
use sha1::{Digest, Sha1};

use crate::pe;

const OID_SIGNED_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.2");
const OID_CTL: Oid = Oid::new_unwrap("1.3.6.1.4.1.311.10.1");
const OID_CATALOG_LIST: Oid = Oid::new_unwrap("1.3.6.1.4.1.311.12.1.1");
const OID_CATALOG_LIST_MEMBER: Oid = Oid::new_unwrap("1.3.6.1.4.1.311.12.1.2");
const OID_CAT_NAMEVALUE: Oid = Oid::new_unwrap("1.3.6.1.4.1.311.12.2.1");
const OID_CAT_MEMBERINFO: Oid = Oid::new_unwrap("1.3.6.1.4.1.311.12.2.2");
const OID_SPC_INDIRECT_DATA: Oid = Oid::new_unwrap("1.3.6.1.4.1.311.2.1.4");
const OID_SPC_PE_IMAGE_DATA: Oid = Oid::new_unwrap("1.3.6.1.4.1.311.2.1.15");
const OID_SPC_CAB_DATA: Oid = Oid::new_unwrap("1.3.6.1.4.1.311.2.1.25");
const OID_SHA1: Oid = Oid::new_unwrap("1.3.14.3.2.26");

/// Subject interface package for PE images.
const GUID_SIP_PE: &str = "{C689AAB8-8E78-11D0-8C47-00C04FC295EE}";
/// Subject interface package for flat files (INF, anything not PE).
const GUID_SIP_FLAT: &str = "{DE351A42-8E59-11D0-8C47-00C04FC295EE}";
/// `CRYPTCAT_ATTR_AUTHENTICATED | CRYPTCAT_ATTR_NAMEASCII | CRYPTCAT_ATTR_DATAASCII`.
const NAMEVALUE_FLAGS: i64 = 0x1001_0001;

/// How a member file is hashed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberKind {
    /// A PE image (`.sys`, `.dll`): Authenticode hash.
    PeImage,
    /// Any other file (`.inf`): hash of all bytes.
    Flat,
}

/// One file listed in the catalog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// File name as written in the package (`sample_driver.sys`).
    pub file_name: String,
    /// How it was hashed.
    pub kind: MemberKind,
    /// Its SHA-1 hash.
    pub sha1: [u8; 20],
}

impl Member {
    /// Hashes a file: Authenticode for a PE image, plain SHA-1 otherwise.
    pub fn from_bytes(file_name: &str, bytes: &[u8]) -> Self {
        match pe::parse(bytes) {
            Ok(img) => Self {
                file_name: file_name.to_owned(),
                kind: MemberKind::PeImage,
                sha1: img.authenticode_sha1(bytes),
            },
            Err(_) => Self {
                file_name: file_name.to_owned(),
                kind: MemberKind::Flat,
                sha1: Sha1::digest(bytes).into(),
            },
        }
    }

    /// The member tag: the hash in upper-case hex.
    pub fn tag(&self) -> String {
        self.sha1.iter().map(|b| format!("{b:02X}")).collect()
    }
}

/// Everything a catalog says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogSpec {
    /// The files, in any order.
    pub members: Vec<Member>,
    /// Hardware IDs from the INF (`HWID1..n`).
    pub hardware_ids: Vec<String>,
    /// The `OS` attribute, e.g. `_v100_X64`.
    pub os: String,
    /// The per-file `OSAttr` attribute, e.g. `2:10.0`.
    pub os_attr: String,
    /// Creation time (`thisUpdate`), seconds since the Unix epoch.
    pub unix_time: u64,
}

/// The `OS` and `OSAttr` values inf2cat writes for `/os:10_x64` and
/// `/os:10_arm64` (Windows 10 and later).
pub fn os_attributes(arch: &str) -> (String, String) {
    let os = match arch {
        "arm64" => "_v100_ARM64",
        _ => "_v100_X64",
    };
    (os.to_owned(), "2:10.0".to_owned())
}

/// Why a catalog could not be written.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// No files to list.
    #[error("a catalog needs at least one file")]
    Empty,
    /// A value could not be DER-encoded.
    #[error("cannot encode the catalog: {0}")]
    Der(#[from] der::Error),
}

type R = Result<Vec<u8>, der::Error>;

fn tlv(tag: Tag, content: Vec<u8>) -> R {
    Any::new(tag, content)?.to_der()
}

fn seq(parts: &[Vec<u8>]) -> R {
    tlv(Tag::Sequence, parts.concat())
}

/// DER `SET OF`: elements sorted by their encodings.
fn set_of(mut parts: Vec<Vec<u8>>) -> R {
    parts.sort();
    tlv(Tag::Set, parts.concat())
}

fn context(number: u32, constructed: bool, content: Vec<u8>) -> R {
    tlv(
        Tag::ContextSpecific {
            constructed,
            number: TagNumber(number),
        },
        content,
    )
}

fn oid(o: Oid) -> R {
    o.to_der()
}

fn octets(bytes: &[u8]) -> R {
    OctetString::new(bytes)?.to_der()
}

fn bmp(s: &str) -> R {
    BmpString::from_utf8(s)?.to_der()
}

/// UTF-16LE with a terminating NUL, as Windows stores catalog strings.
fn utf16z(s: &str) -> Vec<u8> {
    s.encode_utf16()
        .chain(std::iter::once(0))
        .flat_map(u16::to_le_bytes)
        .collect()
}

/// `SEQUENCE { BMPString name, INTEGER flags, OCTET STRING value }`.
fn name_value(name: &str, value: &str) -> R {
    seq(&[
        bmp(name)?,
        NAMEVALUE_FLAGS.to_der()?,
        octets(&utf16z(value))?,
    ])
}

/// `SpcLink ::= file [2] { unicode [0] "<<<Obsolete>>>" }`.
fn obsolete_link() -> R {
    let text: Vec<u8> = "<<<Obsolete>>>"
        .encode_utf16()
        .flat_map(u16::to_be_bytes)
        .collect();
    context(2, true, context(0, false, text)?)
}

/// `SpcIndirectDataContent` for one member.
fn indirect_data(m: &Member) -> R {
    let data = match m.kind {
        MemberKind::PeImage => {
            // SpcPeImageData { flags BIT STRING (includeResources,
            // includeImportAddressTable), file [0] SpcLink }.
            let flags = tlv(Tag::BitString, vec![0x05, 0xA0])?;
            let image = seq(&[flags, context(0, true, obsolete_link()?)?])?;
            seq(&[oid(OID_SPC_PE_IMAGE_DATA)?, image])?
        }
        MemberKind::Flat => seq(&[oid(OID_SPC_CAB_DATA)?, obsolete_link()?])?,
    };
    let digest = seq(&[seq(&[oid(OID_SHA1)?, Null.to_der()?])?, octets(&m.sha1)?])?;
    seq(&[data, digest])
}

fn attribute(kind: Oid, value: Vec<u8>) -> R {
    seq(&[oid(kind)?, set_of(vec![value])?])
}

fn member(m: &Member, os_attr: &str) -> R {
    let guid = match m.kind {
        MemberKind::PeImage => GUID_SIP_PE,
        MemberKind::Flat => GUID_SIP_FLAT,
    };
    let attributes = set_of(vec![
        attribute(OID_CAT_NAMEVALUE, name_value("File", &m.file_name)?)?,
        attribute(OID_CAT_NAMEVALUE, name_value("OSAttr", os_attr)?)?,
        attribute(OID_SPC_INDIRECT_DATA, indirect_data(m)?)?,
        attribute(OID_CAT_MEMBERINFO, seq(&[bmp(guid)?, 512i64.to_der()?])?)?,
    ])?;
    seq(&[octets(&utf16z(&m.tag()))?, attributes])
}

/// A catalog-wide attribute, encoded like an X.509 extension.
fn extension(name: &str, value: &str) -> R {
    seq(&[oid(OID_CAT_NAMEVALUE)?, octets(&name_value(name, value)?)?])
}

/// DER bytes of the unsigned catalog.
pub fn build(spec: &CatalogSpec) -> Result<Vec<u8>, CatalogError> {
    if spec.members.is_empty() {
        return Err(CatalogError::Empty);
    }
    let mut members = spec.members.clone();
    members.sort_by_key(Member::tag);

    let mut id_hash = Sha1::new();
    for m in &members {
        id_hash.update(m.tag().as_bytes());
    }
    let list_identifier: [u8; 20] = id_hash.finalize().into();

    let subjects: Vec<Vec<u8>> = members
        .iter()
        .map(|m| member(m, &spec.os_attr))
        .collect::<Result<_, _>>()?;
    let mut extensions = vec![extension("OS", &spec.os)?];
    for (i, id) in spec.hardware_ids.iter().enumerate() {
        extensions.push(extension(&format!("HWID{}", i + 1), id)?);
    }
    let this_update = UtcTime::from_unix_duration(Duration::from_secs(spec.unix_time))?;

    let ctl = seq(&[
        seq(&[oid(OID_CATALOG_LIST)?])?,
        octets(&list_identifier[..16])?,
        this_update.to_der()?,
        seq(&[oid(OID_CATALOG_LIST_MEMBER)?, Null.to_der()?])?,
        seq(&subjects)?,
        context(0, true, seq(&extensions)?)?,
    ])?;
    let signed_data = seq(&[
        1i64.to_der()?,
        set_of(Vec::new())?,
        seq(&[oid(OID_CTL)?, context(0, true, ctl)?])?,
        set_of(Vec::new())?,
    ])?;
    Ok(seq(&[
        oid(OID_SIGNED_DATA)?,
        context(0, true, signed_data)?,
    ])?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::minimal_driver_pe;

    /// Walks DER, checking every length, and returns each (depth, tag byte).
    fn walk(mut b: &[u8], depth: usize, out: &mut Vec<(usize, u8)>) {
        while !b.is_empty() {
            let tag = b[0];
            let (len, hdr) = match b[1] {
                l if l < 0x80 => (l as usize, 2),
                0x81 => (b[2] as usize, 3),
                0x82 => (usize::from(b[2]) << 8 | usize::from(b[3]), 4),
                0x83 => (
                    usize::from(b[2]) << 16 | usize::from(b[3]) << 8 | usize::from(b[4]),
                    5,
                ),
                other => panic!("unexpected length byte {other:#x}"),
            };
            out.push((depth, tag));
            let content = &b[hdr..hdr + len];
            if tag & 0x20 != 0 {
                walk(content, depth + 1, out);
            }
            b = &b[hdr + len..];
        }
    }

    fn spec() -> CatalogSpec {
        let sys = minimal_driver_pe(pe::MACHINE_AMD64, 7);
        CatalogSpec {
            members: vec![
                Member::from_bytes("sample_driver.sys", &sys),
                Member::from_bytes("sample_driver.inf", b"[Version]\r\n"),
            ],
            hardware_ids: vec!["root\\dmf_sample_driver".into()],
            os: "_v100_X64".into(),
            os_attr: "2:10.0".into(),
            unix_time: 1_772_841_600,
        }
    }

    #[test]
    fn members_are_hashed_by_kind() {
        let s = spec();
        assert_eq!(s.members[0].kind, MemberKind::PeImage);
        assert_eq!(s.members[1].kind, MemberKind::Flat);
        // SHA-1 of "[Version]\r\n".
        let expected: [u8; 20] = Sha1::digest(b"[Version]\r\n").into();
        assert_eq!(s.members[1].sha1, expected);
        assert_eq!(s.members[1].tag().len(), 40);
        assert!(s.members[1]
            .tag()
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()));
    }

    #[test]
    fn catalog_is_well_formed_der_with_the_expected_shape() {
        let s = spec();
        let cat = build(&s).unwrap();
        let mut tags = Vec::new();
        walk(&cat, 0, &mut tags);
        assert_eq!(tags[0], (0, 0x30));
        let contains = |needle: &[u8]| cat.windows(needle.len()).any(|w| w == needle);
        for o in [
            OID_SIGNED_DATA,
            OID_CTL,
            OID_CATALOG_LIST,
            OID_CATALOG_LIST_MEMBER,
            OID_CAT_NAMEVALUE,
            OID_CAT_MEMBERINFO,
            OID_SPC_INDIRECT_DATA,
            OID_SPC_PE_IMAGE_DATA,
            OID_SPC_CAB_DATA,
            OID_SHA1,
        ] {
            assert!(contains(&o.to_der().unwrap()), "missing {o}");
        }
        for m in &s.members {
            assert!(contains(&m.sha1), "missing digest of {}", m.file_name);
            assert!(
                contains(&utf16z(&m.tag())),
                "missing tag of {}",
                m.file_name
            );
            assert!(contains(&utf16z(&m.file_name)));
        }
        assert!(contains(&utf16z("root\\dmf_sample_driver")));
        assert!(contains(&utf16z("_v100_X64")));
        // Same input, same bytes.
        assert_eq!(build(&s).unwrap(), cat);
    }

    #[test]
    fn empty_catalog_is_an_error() {
        let mut s = spec();
        s.members.clear();
        assert!(matches!(build(&s), Err(CatalogError::Empty)));
    }
}
