//! # dmf-driver-identity: a KMDF driver's identity, from one place
//!
//! A driver's identity lives in two files of its crate, and nowhere else:
//!
//! | what | where |
//! |---|---|
//! | service name | `<lib>.inx`, `[Strings]` `ServiceName` (used by `AddService` and `KmdfService` as `%ServiceName%`) |
//! | hardware ID of the (root-enumerated) device | `<lib>.inx`, `[Strings]` `HardwareId` (used in the models section as `%HardwareId%`) |
//! | device interface GUID the driver exposes | `<lib>.inx`, `[Strings]` `InterfaceGuid` (`{xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}`) |
//! | KMDF version | `Cargo.toml`, `[package.metadata.wdk.driver-model]` (`kmdf-version-major`, `target-kmdf-version-minor`), which wdk-build reads too |
//! | minimum Windows build | `<lib>.inx`, `[Manufacturer]` `NT$ARCH$.10.0...<build>`: must be at least the first build that ships that KMDF version ([`min_windows_build`]) |
//!
//! The driver's build script calls [`Identity::load`] and writes
//! [`Identity::rust_source`] into `OUT_DIR` (constants the driver and its
//! tools include); `cargo xtask` loads the same files for its defaults
//! (KMDF version of `stampinf -k`, the deploy hardware ID). Anything
//! inconsistent — a missing string, a malformed GUID, a minimum build too old
//! for the KMDF version, a hardware ID or service name the INX does not use —
//! is an [`IdentityError`] naming the file, the entry and the fix.
//!
//! ```
//! let manifest = "[package]\nname = \"x\"\n\n[package.metadata.wdk.driver-model]\n\
//!                 driver-type = \"KMDF\"\nkmdf-version-major = 1\ntarget-kmdf-version-minor = 33\n";
//! let inx = "[Manufacturer]\n%M% = Std,NT$ARCH$.10.0...22000\n\
//!            [Std.NT$ARCH$.10.0...22000]\n%D% = Dev, %HardwareId%\n\
//!            [Dev.NT.Services]\nAddService = %ServiceName%, 2, Svc\n\
//!            [Strings]\nServiceName = \"x\"\nHardwareId = \"Root\\X\"\n\
//!            InterfaceGuid = \"{8C0E1B52-3D6A-4F7B-9E21-5A4C7D93B160}\"\n";
//! let id = dmf_driver_identity::Identity::parse(manifest, "Cargo.toml", inx, "x.inx").unwrap();
//! assert_eq!((id.kmdf.major, id.kmdf.minor, id.min_windows_build), (1, 33, 22000));
//! assert_eq!(id.interface_guid, 0x8C0E1B52_3D6A_4F7B_9E21_5A4C7D93B160);
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// A KMDF version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct KmdfVersion {
    /// Major version (1).
    pub major: u32,
    /// Minor version (33 for KMDF 1.33).
    pub minor: u32,
}

impl fmt::Display for KmdfVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The first Windows build that ships each KMDF 1.x version (Windows 10
/// 1507 ... Windows 11 21H2), from Microsoft's KMDF version history.
const KMDF_FIRST_BUILD: [(u32, u32); 10] = [
    (15, 10240),
    (17, 10586),
    (19, 14393),
    (21, 15063),
    (23, 16299),
    (25, 17134),
    (27, 17763),
    (29, 18362),
    (31, 19041),
    (33, 22000),
];

/// The oldest Windows 10/11 build whose inbox framework is `kmdf`, if known
/// (KMDF 1.15 to 1.33): KMDF 1.33 needs build 22000 (Windows 11 21H2 /
/// Server 2022).
///
/// ```
/// use dmf_driver_identity::{min_windows_build, KmdfVersion};
/// assert_eq!(min_windows_build(KmdfVersion { major: 1, minor: 33 }), Some(22000));
/// assert_eq!(min_windows_build(KmdfVersion { major: 1, minor: 34 }), None);
/// ```
pub fn min_windows_build(kmdf: KmdfVersion) -> Option<u32> {
    if kmdf.major != 1 {
        return None;
    }
    KMDF_FIRST_BUILD
        .iter()
        .find(|(minor, _)| *minor == kmdf.minor)
        .map(|(_, build)| *build)
}

/// Everything that identifies a driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// Service name (`[Strings]` `ServiceName`).
    pub service_name: String,
    /// Hardware ID (`[Strings]` `HardwareId`), e.g. `Root\DMF_SAMPLE_DRIVER`.
    pub hardware_id: String,
    /// The device interface GUID as a number (`{8C0E1B52-...}` ->
    /// `0x8C0E1B52...`), the form `dmf_wdf::Guid::from_u128` takes.
    pub interface_guid: u128,
    /// KMDF version from `[package.metadata.wdk.driver-model]`.
    pub kmdf: KmdfVersion,
    /// The INX's minimum Windows build (`NT$ARCH$.10.0...<build>`).
    pub min_windows_build: u32,
}

/// Why an identity could not be read, or is inconsistent.
#[derive(Debug)]
pub enum IdentityError {
    /// A file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The INX is UTF-16 with an odd number of bytes or invalid UTF-16/UTF-8.
    Encoding {
        /// The INX.
        path: String,
    },
    /// `[package.metadata.wdk.driver-model]` is missing or incomplete.
    DriverModel {
        /// The manifest.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A required `[Strings]` entry is missing.
    MissingString {
        /// The INX.
        path: String,
        /// The key (`ServiceName`, `HardwareId`, `InterfaceGuid`).
        key: &'static str,
    },
    /// `InterfaceGuid` is not a braced GUID.
    BadGuid {
        /// The INX.
        path: String,
        /// The value found.
        value: String,
    },
    /// No `NT$ARCH$.10.0...<build>` decoration in `[Manufacturer]`.
    NoMinimumBuild {
        /// The INX.
        path: String,
    },
    /// The INX allows a Windows build older than the KMDF version needs.
    MinimumBuildTooOld {
        /// The INX.
        path: String,
        /// The build the INX names.
        found: u32,
        /// The KMDF version of the manifest.
        kmdf: KmdfVersion,
        /// The build that KMDF version needs.
        needed: u32,
    },
    /// The KMDF version has no known minimum build.
    UnknownKmdf {
        /// The manifest.
        path: String,
        /// The version.
        kmdf: KmdfVersion,
    },
    /// A `[Strings]` entry is defined but the INX never uses it.
    Unused {
        /// The INX.
        path: String,
        /// The key.
        key: &'static str,
        /// Where it should be used.
        expected: &'static str,
    },
}

impl fmt::Display for IdentityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdentityError::Read { path, source } => {
                write!(f, "cannot read {}: {source}", path.display())
            }
            IdentityError::Encoding { path } => write!(
                f,
                "{path}: not valid UTF-8, nor UTF-16LE with a byte-order mark"
            ),
            IdentityError::DriverModel { path, message } => write!(
                f,
                "{path}: [package.metadata.wdk.driver-model] {message} (expected driver-type = \"KMDF\", kmdf-version-major = 1, target-kmdf-version-minor = 33)"
            ),
            IdentityError::MissingString { path, key } => write!(
                f,
                "{path}: [Strings] has no {key} entry; the driver's identity (ServiceName, HardwareId, InterfaceGuid) is defined there"
            ),
            IdentityError::BadGuid { path, value } => write!(
                f,
                "{path}: [Strings] InterfaceGuid = {value:?} is not a GUID like {{8C0E1B52-3D6A-4F7B-9E21-5A4C7D93B160}}"
            ),
            IdentityError::NoMinimumBuild { path } => write!(
                f,
                "{path}: [Manufacturer] names no minimum Windows build (expected a decoration like NT$ARCH$.10.0...22000)"
            ),
            IdentityError::MinimumBuildTooOld {
                path,
                found,
                kmdf,
                needed,
            } => write!(
                f,
                "{path}: the INX allows Windows build {found} (NT$ARCH$.10.0...{found}), but KMDF {kmdf} (Cargo.toml [package.metadata.wdk.driver-model]) exists only from build {needed}: use NT$ARCH$.10.0...{needed} in [Manufacturer] and the models section"
            ),
            IdentityError::UnknownKmdf { path, kmdf } => write!(
                f,
                "{path}: KMDF {kmdf} is not a known KMDF version (1.15 to 1.33)"
            ),
            IdentityError::Unused {
                path,
                key,
                expected,
            } => write!(
                f,
                "{path}: [Strings] defines {key} but the INX does not use %{key}% ({expected}); the identity must come from [Strings]"
            ),
        }
    }
}

impl std::error::Error for IdentityError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            IdentityError::Read { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Reads an INX: UTF-8/ASCII, or UTF-16LE with a byte-order mark (the WDK's
/// templates are UTF-16).
pub fn read_inx(path: &Path) -> Result<String, IdentityError> {
    let bytes = std::fs::read(path).map_err(|source| IdentityError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    decode_inx(&bytes).ok_or_else(|| IdentityError::Encoding {
        path: path.display().to_string(),
    })
}

/// Decodes INX bytes (see [`read_inx`]); `None` if neither encoding fits.
pub fn decode_inx(bytes: &[u8]) -> Option<String> {
    if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        if rest.len() % 2 != 0 {
            return None;
        }
        let units: Vec<u16> = rest
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        return String::from_utf16(&units).ok();
    }
    let bytes = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes);
    String::from_utf8(bytes.to_vec()).ok()
}

/// A line without its `;` comment (outside quotes), trimmed.
fn strip_comment(line: &str) -> &str {
    let mut quoted = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ';' if !quoted => return line[..i].trim(),
            _ => {}
        }
    }
    line.trim()
}

/// The `[Strings]` section of an INX: keys lower-cased (INF keys are
/// case-insensitive), values without their quotes.
pub fn inx_strings(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut in_strings = false;
    for line in text.lines() {
        let line = strip_comment(line);
        if line.starts_with('[') {
            in_strings = line.eq_ignore_ascii_case("[strings]");
            continue;
        }
        if !in_strings {
            continue;
        }
        if let Some((key, value)) = line.split_once('=') {
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            out.insert(key.trim().to_ascii_lowercase(), value.to_owned());
        }
    }
    out
}

/// Every `<build>` of an `NT$ARCH$.10.0...<build>` decoration in the INX
/// (outside comments).
pub fn inx_minimum_builds(text: &str) -> Vec<u32> {
    const MARK: &str = "NT$ARCH$.10.0...";
    let mut out = Vec::new();
    for line in text.lines() {
        let line = strip_comment(line);
        let mut rest = line;
        while let Some(at) = rest.find(MARK) {
            rest = &rest[at + MARK.len()..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if let Ok(build) = digits.parse() {
                out.push(build);
            }
        }
    }
    out
}

/// `{8C0E1B52-3D6A-4F7B-9E21-5A4C7D93B160}` (braces optional) as a number.
///
/// ```
/// assert_eq!(dmf_driver_identity::parse_guid("{00000000-0000-0000-0000-00000000000A}"), Some(10));
/// assert_eq!(dmf_driver_identity::parse_guid("{0000-0000}"), None);
/// ```
pub fn parse_guid(text: &str) -> Option<u128> {
    let t = text.trim();
    let t = t
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .unwrap_or(t);
    let groups: Vec<&str> = t.split('-').collect();
    let lens: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    if lens != [8, 4, 4, 4, 12]
        || !groups
            .iter()
            .all(|g| g.chars().all(|c| c.is_ascii_hexdigit()))
    {
        return None;
    }
    u128::from_str_radix(&groups.concat(), 16).ok()
}

/// `value` as the canonical braced upper-case GUID text.
pub fn format_guid(value: u128) -> String {
    let h = format!("{value:032X}");
    format!(
        "{{{}-{}-{}-{}-{}}}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The `[package.metadata.wdk.driver-model]` of a manifest: its KMDF
/// version (the driver type must be `KMDF`).
///
/// Reads the table's `key = value` lines (the form wdk-build's own templates
/// use); an inline-table form is not recognised.
pub fn driver_model(manifest: &str, path: &str) -> Result<KmdfVersion, IdentityError> {
    let err = |message: String| IdentityError::DriverModel {
        path: path.to_owned(),
        message,
    };
    let mut in_table = false;
    let mut seen = false;
    let mut entries = BTreeMap::new();
    for line in manifest.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.starts_with('[') {
            in_table = line == "[package.metadata.wdk.driver-model]";
            seen |= in_table;
            continue;
        }
        if in_table {
            if let Some((k, v)) = line.split_once('=') {
                entries.insert(k.trim().to_owned(), v.trim().trim_matches('"').to_owned());
            }
        }
    }
    if !seen {
        return Err(err("is missing".into()));
    }
    match entries.get("driver-type").map(String::as_str) {
        Some("KMDF") => {}
        Some(other) => return Err(err(format!("has driver-type = \"{other}\", not \"KMDF\""))),
        None => return Err(err("has no driver-type".into())),
    }
    let number = |key: &str| -> Result<u32, IdentityError> {
        let v = entries
            .get(key)
            .ok_or_else(|| err(format!("has no {key}")))?;
        v.parse()
            .map_err(|_| err(format!("has {key} = {v}, not a number")))
    };
    Ok(KmdfVersion {
        major: number("kmdf-version-major")?,
        minor: number("target-kmdf-version-minor")?,
    })
}

/// Whether `%key%` appears in the INX outside `[Strings]` and comments.
fn uses_token(text: &str, key: &str) -> bool {
    let token = format!("%{}%", key.to_ascii_lowercase());
    let mut in_strings = false;
    text.lines().any(|line| {
        let line = strip_comment(line);
        if line.starts_with('[') {
            in_strings = line.eq_ignore_ascii_case("[strings]");
            return false;
        }
        !in_strings && line.to_ascii_lowercase().contains(&token)
    })
}

impl Identity {
    /// Parses and cross-checks a manifest and an INX (`*_path` only name
    /// them in errors).
    pub fn parse(
        manifest: &str,
        manifest_path: &str,
        inx: &str,
        inx_path: &str,
    ) -> Result<Identity, IdentityError> {
        let kmdf = driver_model(manifest, manifest_path)?;
        let strings = inx_strings(inx);
        let get = |key: &'static str| {
            strings
                .get(&key.to_ascii_lowercase())
                .filter(|v| !v.is_empty())
                .cloned()
                .ok_or(IdentityError::MissingString {
                    path: inx_path.to_owned(),
                    key,
                })
        };
        let service_name = get("ServiceName")?;
        let hardware_id = get("HardwareId")?;
        let guid_text = get("InterfaceGuid")?;
        let interface_guid = parse_guid(&guid_text).ok_or_else(|| IdentityError::BadGuid {
            path: inx_path.to_owned(),
            value: guid_text.clone(),
        })?;
        for (key, expected) in [
            ("HardwareId", "in the models section"),
            ("ServiceName", "in AddService"),
        ] {
            if !uses_token(inx, key) {
                return Err(IdentityError::Unused {
                    path: inx_path.to_owned(),
                    key,
                    expected,
                });
            }
        }
        let needed = min_windows_build(kmdf).ok_or_else(|| IdentityError::UnknownKmdf {
            path: manifest_path.to_owned(),
            kmdf,
        })?;
        let builds = inx_minimum_builds(inx);
        let found = builds
            .iter()
            .copied()
            .min()
            .ok_or_else(|| IdentityError::NoMinimumBuild {
                path: inx_path.to_owned(),
            })?;
        if found < needed {
            return Err(IdentityError::MinimumBuildTooOld {
                path: inx_path.to_owned(),
                found,
                kmdf,
                needed,
            });
        }
        Ok(Identity {
            service_name,
            hardware_id,
            interface_guid,
            kmdf,
            min_windows_build: found,
        })
    }

    /// Loads `<crate_dir>/Cargo.toml` and `<crate_dir>/<lib_name>.inx`.
    pub fn load(crate_dir: &Path, lib_name: &str) -> Result<Identity, IdentityError> {
        let manifest_path = crate_dir.join("Cargo.toml");
        let manifest =
            std::fs::read_to_string(&manifest_path).map_err(|source| IdentityError::Read {
                path: manifest_path.clone(),
                source,
            })?;
        let inx_path = Self::inx_path(crate_dir, lib_name);
        let inx = read_inx(&inx_path)?;
        Self::parse(
            &manifest,
            &manifest_path.display().to_string(),
            &inx,
            &inx_path.display().to_string(),
        )
    }

    /// `<crate_dir>/<lib_name>.inx`.
    pub fn inx_path(crate_dir: &Path, lib_name: &str) -> PathBuf {
        crate_dir.join(format!("{lib_name}.inx"))
    }

    /// `1.33`, the form of `stampinf -k` and `$KMDFVERSION$`.
    pub fn kmdf_version(&self) -> String {
        self.kmdf.to_string()
    }

    /// Rust constants for a driver's `OUT_DIR` (`include!`d by the driver):
    /// `SERVICE_NAME`, `SERVICE_NAME_C`, `HARDWARE_ID`, `INTERFACE_GUID`
    /// (a `dmf_wdf::Guid`), `KMDF_VERSION_MAJOR`/`MINOR` and
    /// `MIN_WINDOWS_BUILD`, each documented with its source.
    pub fn rust_source(&self, inx_name: &str) -> String {
        format!(
            "// Generated by the build script from {inx_name} and Cargo.toml; edit those.\n\
             /// The service name (`{inx_name}`, `[Strings]` `ServiceName`).\n\
             pub const SERVICE_NAME: &str = {service:?};\n\
             /// [`SERVICE_NAME`], NUL-terminated (debugger output).\n\
             pub const SERVICE_NAME_C: &core::ffi::CStr = {service_c};\n\
             /// The device's hardware ID (`{inx_name}`, `[Strings]` `HardwareId`).\n\
             pub const HARDWARE_ID: &str = {hwid:?};\n\
             /// The device interface the driver exposes, `{guid_text}` (`{inx_name}`, `[Strings]` `InterfaceGuid`).\n\
             pub const INTERFACE_GUID: dmf_wdf::Guid = dmf_wdf::Guid::from_u128(0x{guid:032X});\n\
             /// KMDF major version (`Cargo.toml`, `[package.metadata.wdk.driver-model]`).\n\
             pub const KMDF_VERSION_MAJOR: u32 = {major};\n\
             /// KMDF minor version (`Cargo.toml`, `[package.metadata.wdk.driver-model]`).\n\
             pub const KMDF_VERSION_MINOR: u32 = {minor};\n\
             /// The oldest Windows build the INX installs on (`NT$ARCH$.10.0...{build}`).\n\
             pub const MIN_WINDOWS_BUILD: u32 = {build};\n",
            service = self.service_name,
            service_c = c_literal(&self.service_name),
            hwid = self.hardware_id,
            guid_text = format_guid(self.interface_guid),
            guid = self.interface_guid,
            major = self.kmdf.major,
            minor = self.kmdf.minor,
            build = self.min_windows_build,
        )
    }
}

/// `c"..."` for an ASCII string (escaped like a Rust string).
fn c_literal(s: &str) -> String {
    format!("c{s:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = "[package]\nname = \"d\"\n\n[package.metadata.wdk.driver-model]\n\
        driver-type = \"KMDF\"  # wdk-build\nkmdf-version-major = 1\ntarget-kmdf-version-minor = 33\n\n[dependencies]\n";

    fn inx(build: u32) -> String {
        format!(
            "; comment %HardwareId% NT$ARCH$.10.0...1\n[Version]\nSignature = \"$WINDOWS NT$\"\n\
             [Manufacturer]\n%Mfg% = Standard,NT$ARCH$.10.0...{build}\n\
             [Standard.NT$ARCH$.10.0...{build}]\n%Desc% = Dev, %HARDWAREID% ; root\n\
             [Dev.NT.Services]\nAddService = %ServiceName%, %SPSVCINST_ASSOCSERVICE%, Svc\n\
             [Strings]\nSPSVCINST_ASSOCSERVICE = 0x00000002\nServiceName = \"drv\"\n\
             HardwareId = \"Root\\DRV\" ; the device\nInterfaceGuid = \"{{8c0e1b52-3d6a-4f7b-9e21-5a4c7d93b160}}\"\n"
        )
    }

    #[test]
    fn parses_identity() {
        let id = Identity::parse(MANIFEST, "Cargo.toml", &inx(22000), "d.inx").unwrap();
        assert_eq!(id.service_name, "drv");
        assert_eq!(id.hardware_id, r"Root\DRV");
        assert_eq!(id.interface_guid, 0x8C0E_1B52_3D6A_4F7B_9E21_5A4C_7D93_B160);
        assert_eq!(id.kmdf_version(), "1.33");
        assert_eq!(id.min_windows_build, 22000);
        let later = Identity::parse(MANIFEST, "Cargo.toml", &inx(22621), "d.inx").unwrap();
        assert_eq!(later.min_windows_build, 22621);
    }

    #[test]
    fn too_old_minimum_build_is_reported_with_the_fix() {
        let err = Identity::parse(MANIFEST, "Cargo.toml", &inx(16299), "d.inx").unwrap_err();
        assert!(matches!(
            err,
            IdentityError::MinimumBuildTooOld {
                found: 16299,
                needed: 22000,
                ..
            }
        ));
        let msg = err.to_string();
        assert!(msg.contains("d.inx"), "{msg}");
        assert!(msg.contains("KMDF 1.33"), "{msg}");
        assert!(msg.contains("NT$ARCH$.10.0...22000"), "{msg}");
    }

    #[test]
    fn missing_and_malformed_entries() {
        let no_guid = inx(22000).replace("InterfaceGuid", "Other");
        let err = Identity::parse(MANIFEST, "Cargo.toml", &no_guid, "d.inx").unwrap_err();
        assert!(err.to_string().contains("no InterfaceGuid entry"), "{err}");

        let bad_guid = inx(22000).replace("5a4c7d93b160", "5a4c7d93b16");
        let err = Identity::parse(MANIFEST, "Cargo.toml", &bad_guid, "d.inx").unwrap_err();
        assert!(matches!(err, IdentityError::BadGuid { .. }), "{err}");

        let literal_hwid = inx(22000).replace("%HARDWAREID%", r"Root\DRV");
        let err = Identity::parse(MANIFEST, "Cargo.toml", &literal_hwid, "d.inx").unwrap_err();
        assert!(err.to_string().contains("%HardwareId%"), "{err}");

        let no_build = inx(22000).replace("NT$ARCH$.10.0...22000", "NT$ARCH$");
        let err = Identity::parse(MANIFEST, "Cargo.toml", &no_build, "d.inx").unwrap_err();
        assert!(matches!(err, IdentityError::NoMinimumBuild { .. }), "{err}");
    }

    #[test]
    fn driver_model_errors() {
        let err = driver_model("[package]\nname = \"x\"\n", "M").unwrap_err();
        assert!(err
            .to_string()
            .contains("M: [package.metadata.wdk.driver-model] is missing"));
        let umdf = MANIFEST.replace("\"KMDF\"", "\"UMDF\"");
        assert!(driver_model(&umdf, "M")
            .unwrap_err()
            .to_string()
            .contains("UMDF"));
        let unknown = MANIFEST.replace("minor = 33", "minor = 35");
        let err = Identity::parse(&unknown, "M", &inx(22000), "d.inx").unwrap_err();
        assert!(matches!(err, IdentityError::UnknownKmdf { .. }), "{err}");
        let no_minor = MANIFEST.replace("target-kmdf-version-minor = 33\n", "");
        assert!(driver_model(&no_minor, "M")
            .unwrap_err()
            .to_string()
            .contains("has no target-kmdf-version-minor"));
    }

    #[test]
    fn utf16_inx_decodes() {
        let text = inx(22000);
        let mut bytes = vec![0xFF, 0xFE];
        for u in text.encode_utf16() {
            bytes.extend_from_slice(&u.to_le_bytes());
        }
        assert_eq!(decode_inx(&bytes).as_deref(), Some(text.as_str()));
        bytes.push(0);
        assert_eq!(decode_inx(&bytes), None);
    }

    #[test]
    fn guid_round_trip_and_rust_source() {
        let g = 0x8C0E_1B52_3D6A_4F7B_9E21_5A4C_7D93_B160;
        assert_eq!(format_guid(g), "{8C0E1B52-3D6A-4F7B-9E21-5A4C7D93B160}");
        assert_eq!(parse_guid(&format_guid(g)), Some(g));
        let id = Identity::parse(MANIFEST, "Cargo.toml", &inx(22000), "d.inx").unwrap();
        let src = id.rust_source("d.inx");
        assert!(
            src.contains("pub const SERVICE_NAME: &str = \"drv\";"),
            "{src}"
        );
        assert!(
            src.contains("pub const SERVICE_NAME_C: &core::ffi::CStr = c\"drv\";"),
            "{src}"
        );
        assert!(
            src.contains(r#"pub const HARDWARE_ID: &str = "Root\\DRV";"#),
            "{src}"
        );
        assert!(
            src.contains("from_u128(0x8C0E1B523D6A4F7B9E215A4C7D93B160)"),
            "{src}"
        );
        assert!(
            src.contains("pub const MIN_WINDOWS_BUILD: u32 = 22000;"),
            "{src}"
        );
    }
}
