//! `cargo xtask new-driver NAME [--path DIR]`: a standalone driver crate
//! made from the sample driver, with its own identity.
//!
//! What it writes into `DIR/NAME/` (default `./NAME/`):
//!
//! | file | from |
//! |---|---|
//! | `Cargo.toml` | written here: the sample's shape with concrete values, the layer crates of this checkout by path, `[package.metadata.wdk.driver-model]` with the sample's KMDF version, a `driver` profile (`panic = "abort"`), an empty `[workspace]` so it stands alone anywhere |
//! | `Cargo.lock` | this checkout's, as the seed: nothing new to resolve (works offline) |
//! | `.cargo/config.toml` | static CRT for the Windows MSVC target, which wdk-build requires |
//! | `build.rs`, `src/*.rs`, the driver's tests | the sample driver's, `sample_driver` renamed |
//! | `<name>.inx` | the sample's INX with a fresh identity in `[Strings]`: `ServiceName` = the library name, `HardwareId` = `Root\<NAME>`, `InterfaceGuid` = a new random GUID |
//!
//! It refuses an existing non-empty directory and a name that is not a
//! valid crate and service name.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};

use clap::Args;
use dmf_driver_identity::{format_guid, Identity};

use crate::ctx::Ctx;
use crate::workspace::{DriverCrate, Layout};

/// `cargo xtask new-driver --help`.
pub const LONG_ABOUT: &str = "\
Generate a standalone KMDF driver crate from the sample driver, with a fresh
identity: service name NAME (dashes become underscores), hardware ID
Root\\NAME (upper case) and a new random device interface GUID, all in the
[Strings] of NAME.inx, which the crate's build script turns into constants.

The crate depends on the layer crates of this checkout by path and starts
from this checkout's Cargo.lock, so `cargo test` works at once (offline too).
It is its own workspace: put it anywhere.

Examples:
  cargo xtask new-driver mydrv --path ~/src
  cargo xtask check-windows --manifest-path ~/src/mydrv/Cargo.toml";

/// Options of `new-driver`.
#[derive(Debug, Clone, Args)]
pub struct NewDriverArgs {
    /// Package name of the new driver (letters, digits, `-`, `_`; starts with a letter).
    pub name: String,
    /// Directory to create the crate in (the crate goes to DIR/NAME) [default: .].
    #[arg(long, value_name = "DIR")]
    pub path: Option<PathBuf>,
}

/// Why no crate was generated.
#[derive(Debug, thiserror::Error)]
pub enum NewDriverError {
    /// The name cannot be a crate and service name.
    #[error("`{0}` is not a usable driver name: use 1 to 32 ASCII letters, digits, `-` or `_`, starting with a letter (it becomes the crate, library and service name)")]
    BadName(String),
    /// The destination exists and is not empty.
    #[error("{} already exists and is not empty; choose another NAME or --path", .0.display())]
    Exists(PathBuf),
    /// The sample driver (the template) is unusable.
    #[error("the template (the sample driver) is unusable: {0}")]
    Template(String),
    /// A file could not be read or written.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// The template crate in the workspace.
pub const TEMPLATE_PACKAGE: &str = "sample-driver";

/// The identity of a new driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewIdentity {
    /// Package name (`my-drv`).
    pub package: String,
    /// Library and service name (`my_drv`).
    pub lib_name: String,
    /// `Root\MY_DRV`.
    pub hardware_id: String,
    /// The device interface GUID.
    pub interface_guid: u128,
}

impl NewIdentity {
    /// Checks `name` and derives the identity, with `interface_guid`.
    pub fn new(name: &str, interface_guid: u128) -> Result<Self, NewDriverError> {
        let ok = (1..=32).contains(&name.len())
            && name.starts_with(|c: char| c.is_ascii_alphabetic())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            && !matches!(name, "test" | "core" | "std" | "alloc" | "self" | "crate");
        if !ok {
            return Err(NewDriverError::BadName(name.to_owned()));
        }
        let lib_name = name.replace('-', "_");
        Ok(NewIdentity {
            package: name.to_owned(),
            hardware_id: format!("Root\\{}", lib_name.to_ascii_uppercase()),
            lib_name,
            interface_guid,
        })
    }
}

/// A fresh random (version 4) GUID, from the standard library's per-process
/// random hash keys, the time and the process id.
pub fn fresh_guid() -> u128 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut v: u128 = 0;
    for half in 0u8..2 {
        let mut h = RandomState::new().build_hasher();
        h.write_u128(nanos);
        h.write_u32(std::process::id());
        h.write_u8(half);
        v = (v << 64) | u128::from(h.finish());
    }
    // Version 4 (bits 76..80), RFC 4122 variant (bits 62..64).
    v = (v & !(0xF << 76)) | (0x4 << 76);
    (v & !(0x3 << 62)) | (0x2 << 62)
}

/// The generated `Cargo.toml`.
pub fn manifest(id: &NewIdentity, root: &Path, template: &Identity) -> String {
    let p = |dir: &str| toml_string(&root.join(dir).display().to_string());
    format!(
        r#"[package]
name = "{package}"
description = "A KMDF driver on the DMF layers (generated by `cargo xtask new-driver` from dmf-rs' sample driver)."
version = "0.1.0"
edition = "2021"
rust-version = "1.85"
license = "MIT"
publish = false

[lib]
# cdylib: the driver image ({lib}.dll, renamed .sys when packaged);
# rlib: the same logic for the tests.
crate-type = ["cdylib", "rlib"]

# wdk-build reads this when building the driver; the build script checks the
# INX against it (minimum Windows build) and exports it as constants.
[package.metadata.wdk.driver-model]
driver-type = "KMDF"
kmdf-version-major = {major}
target-kmdf-version-minor = {minor}

[dependencies]
dmf-wdf = {{ path = {wdf}, default-features = false }}
dmf-device-interface-multiple-target = {{ path = {dimt}, default-features = false }}
dmf-continuous-request-target = {{ path = {crt}, default-features = false }}
dmf-kmdf = {{ path = {kmdf} }}

[features]
# The KMDF shell on a non-Windows host, over dmf-kmdf's emulation of KMDF
# (dmf-kmdf-emu), for host runs of the whole driver. Tests only.
emulation = ["dmf-kmdf/emulation"]

# The KMDF build (the WDK crates exist only for Windows MSVC).
[target.'cfg(all(windows, target_env = "msvc"))'.dependencies]
wdk-sys = "0.5.2"

[build-dependencies]
dmf-driver-identity = {{ path = {identity} }}

# Selected by the target; the build script calls wdk-build only on a Windows host.
[target.'cfg(all(windows, target_env = "msvc"))'.build-dependencies]
wdk-build = "0.6.0"

[dev-dependencies]
dmf-driver-identity = {{ path = {identity} }}
dmf-sim = {{ path = {sim} }}

[lints.rust]
missing_docs = "warn"
unsafe_op_in_unsafe_fn = "deny"
unexpected_cfgs = {{ level = "warn", check-cfg = ["cfg(loom)"] }}

[lints.clippy]
undocumented_unsafe_blocks = "warn"

# The driver build: a kernel image cannot unwind.
[profile.driver]
inherits = "release"
panic = "abort"
lto = true

# A crate of its own, wherever it is put.
[workspace]
"#,
        package = id.package,
        lib = id.lib_name,
        major = template.kmdf.major,
        minor = template.kmdf.minor,
        wdf = p("wdf"),
        dimt = p("device-interface-multiple-target"),
        crt = p("continuous-request-target"),
        kmdf = p("kmdf"),
        identity = p("driver-identity"),
        sim = p("sim"),
    )
}

/// `s` as a TOML basic string.
pub(crate) fn toml_string(s: &str) -> String {
    let mut out = String::from('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A source file of the template, renamed for the new driver.
pub fn rename(text: &str, id: &NewIdentity, template: &Identity) -> String {
    text.replace(&template.hardware_id, &id.hardware_id)
        .replace(
            &format_guid(template.interface_guid),
            &format_guid(id.interface_guid),
        )
        .replace("sample_driver", &id.lib_name)
        .replace("sample-driver", &id.package)
}

/// The template's INX with the new identity: [`rename`], then the service
/// name and the display strings.
pub fn inx(text: &str, id: &NewIdentity, template: &Identity) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_strings = false;
    for line in rename(text, id, template).split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') {
            in_strings = trimmed.to_ascii_lowercase().starts_with("[strings]");
        }
        let key = trimmed.split('=').next().unwrap_or("").trim();
        let eol = if line.ends_with("\r\n") {
            "\r\n"
        } else if line.ends_with('\n') {
            "\n"
        } else {
            ""
        };
        match key {
            "ServiceName" if in_strings => {
                out.push_str(&format!("ServiceName = \"{}\"{eol}", id.lib_name));
            }
            "DiskName" if in_strings => {
                out.push_str(&format!(
                    "DiskName = \"{} Installation Disk\"{eol}",
                    id.package
                ));
            }
            "DeviceDesc" if in_strings => {
                out.push_str(&format!("DeviceDesc = \"{}\"{eol}", id.package));
            }
            "ServiceDesc" if in_strings => {
                out.push_str(&format!("ServiceDesc = \"{} Service\"{eol}", id.package));
            }
            _ => out.push_str(line),
        }
    }
    out
}

/// The `.cargo/config.toml` of the new crate.
pub const CARGO_CONFIG: &str = "\
# wdk-build requires the static C runtime for the driver build.
[target.'cfg(all(windows, target_env = \"msvc\"))']
rustflags = [\"-C\", \"target-feature=+crt-static\"]
";

fn read(path: &Path) -> Result<String, NewDriverError> {
    std::fs::read_to_string(path).map_err(|source| NewDriverError::Io {
        action: "read",
        path: path.to_path_buf(),
        source,
    })
}

/// The template's files to copy, relative to its directory: `build.rs`, the
/// library's sources and the tests (a `main.rs` or anything that uses a
/// `host` module is left out: the driver crate holds the driver only).
pub fn template_files(dir: &Path) -> Result<Vec<PathBuf>, NewDriverError> {
    let mut files = vec![PathBuf::from("build.rs")];
    for sub in ["src", "tests"] {
        let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
            continue;
        };
        let mut names: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "rs"))
            .collect();
        names.sort();
        for path in names {
            let text = read(&path)?;
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            let host_only = name.as_deref() == Some("main.rs") || text.contains("::host");
            if !host_only {
                files.push(Path::new(sub).join(path.file_name().unwrap_or_default()));
            }
        }
    }
    Ok(files)
}

fn write(ctx: &Ctx<'_>, path: &Path, text: &str) -> Result<(), NewDriverError> {
    ctx.note(format!("write {}", path.display()));
    if ctx.dry_run() {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|source| NewDriverError::Io {
            action: "create",
            path: parent.to_path_buf(),
            source,
        })?;
    }
    std::fs::write(path, text).map_err(|source| NewDriverError::Io {
        action: "write",
        path: path.to_path_buf(),
        source,
    })
}

/// Runs `new-driver`; returns the new crate's directory.
pub fn new_driver(
    ctx: &Ctx<'_>,
    layout: &Layout,
    args: &NewDriverArgs,
) -> Result<PathBuf, NewDriverError> {
    let id = NewIdentity::new(&args.name, fresh_guid())?;
    let parent = args.path.clone().unwrap_or_else(|| PathBuf::from("."));
    let dest = parent.join(&id.package);
    if dest
        .read_dir()
        .is_ok_and(|mut entries| entries.next().is_some())
    {
        return Err(NewDriverError::Exists(dest));
    }
    let template = DriverCrate::load(layout, TEMPLATE_PACKAGE)
        .map_err(|e| NewDriverError::Template(e.to_string()))?;
    let template_id = Identity::load(&template.dir, &template.lib_name)
        .map_err(|e| NewDriverError::Template(e.to_string()))?;
    let root = layout
        .root
        .canonicalize()
        .map_err(|source| NewDriverError::Io {
            action: "resolve",
            path: layout.root.clone(),
            source,
        })?;
    ctx.step(
        "new-driver",
        format!(
            "{} from {} into {}",
            id.package,
            TEMPLATE_PACKAGE,
            dest.display()
        ),
    );

    write(
        ctx,
        &dest.join("Cargo.toml"),
        &manifest(&id, &root, &template_id),
    )?;
    write(ctx, &dest.join(".cargo/config.toml"), CARGO_CONFIG)?;
    write(ctx, &dest.join(".gitignore"), "/target\n")?;
    let lock = root.join("Cargo.lock");
    if lock.is_file() {
        write(ctx, &dest.join("Cargo.lock"), &read(&lock)?)?;
    }
    let inx_text = dmf_driver_identity::read_inx(&template.inx)
        .map_err(|e| NewDriverError::Template(e.to_string()))?;
    write(
        ctx,
        &dest.join(format!("{}.inx", id.lib_name)),
        &inx(&inx_text, &id, &template_id),
    )?;
    for file in template_files(&template.dir)? {
        let text = read(&template.dir.join(&file))?;
        write(ctx, &dest.join(&file), &rename(&text, &id, &template_id))?;
    }

    let shown = dest.display();
    ctx.note(format!(
        "created {shown}: driver `{pkg}` (service {lib}, hardware ID {hwid}, device interface {guid}, KMDF {kmdf})\n\
         \n\
         next steps:\n  \
         cd {shown} && cargo test                     # the driver logic, on any host\n  \
         cargo xtask check-windows --manifest-path {shown}/Cargo.toml   # (in {ws}) its KMDF build for x64/ARM64, no WDK needed\n  \
         on Windows with the WDK: cargo build --profile driver --target x86_64-pc-windows-msvc\n  \
         edit src/driver.rs (the logic), src/kmdf.rs (the shell: settings, IOCTLs) and\n  \
         {lib}.inx ([Strings]: the identity; the Parameters AddReg: the settings' defaults)",
        pkg = id.package,
        lib = id.lib_name,
        hwid = id.hardware_id,
        guid = format_guid(id.interface_guid),
        kmdf = template_id.kmdf_version(),
        ws = root.display(),
    ));
    Ok(dest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_derived() {
        let id = NewIdentity::new("my-drv", 7).unwrap();
        assert_eq!(id.lib_name, "my_drv");
        assert_eq!(id.hardware_id, r"Root\MY_DRV");
        for bad in ["", "1drv", "my drv", "drv!", "test", &"x".repeat(33)] {
            let err = NewIdentity::new(bad, 7).unwrap_err();
            assert!(
                err.to_string().contains("not a usable driver name"),
                "{bad}"
            );
        }
    }

    #[test]
    fn fresh_guids_are_v4_and_differ() {
        let a = fresh_guid();
        let b = fresh_guid();
        assert_ne!(a, b);
        for g in [a, b] {
            let text = format_guid(g);
            assert_eq!(&text[15..16], "4", "{text}");
            assert!("89AB".contains(&text[20..21]), "{text}");
        }
    }

    #[test]
    fn inx_gets_the_new_identity() {
        let template_text = "[Standard.NT$ARCH$.10.0...22000]\n%DeviceDesc% = Dev, %HardwareId%\n\
            [Dev.NT.Services]\nAddService = %ServiceName%, 2, Svc\n[Svc]\nServiceBinary = %13%\\sample_driver.sys\n\
            [Manufacturer]\n%M% = Standard,NT$ARCH$.10.0...22000\n\
            [Strings]\nServiceName = \"sample_driver\"\nHardwareId = \"Root\\DMF_SAMPLE_DRIVER\"\n\
            InterfaceGuid = \"{8C0E1B52-3D6A-4F7B-9E21-5A4C7D93B160}\"\nDeviceDesc = \"DMF Sample Driver\"\n";
        let manifest = "[package.metadata.wdk.driver-model]\ndriver-type = \"KMDF\"\nkmdf-version-major = 1\ntarget-kmdf-version-minor = 33\n";
        let template = Identity::parse(manifest, "M", template_text, "t.inx").unwrap();
        let id = NewIdentity::new("mydrv", 0x1234_5678_9ABC_4DEF_8123_4567_89AB_CDEF).unwrap();
        let out = inx(template_text, &id, &template);
        let new = Identity::parse(manifest, "M", &out, "n.inx").unwrap();
        assert_eq!(new.service_name, "mydrv");
        assert_eq!(new.hardware_id, r"Root\MYDRV");
        assert_eq!(new.interface_guid, id.interface_guid);
        assert!(out.contains("ServiceBinary = %13%\\mydrv.sys"));
        assert!(out.contains("DeviceDesc = \"mydrv\""));
        assert!(!out.contains("sample"), "{out}");
    }
}
