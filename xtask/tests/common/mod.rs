//! Shared fixtures: a throw-away workspace with a `sample-driver` crate, its
//! `.inx`, and a tiny PE driver image.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use xtask::inf::{encode, InfEncoding};
use xtask::pe::MACHINE_AMD64;
use xtask::testing::minimal_driver_pe;

/// The INF template of the fixture driver (LF line endings; tests convert).
pub const SAMPLE_INX: &str = r#";
; sample_driver.inx - DMF sample driver (root-enumerated KMDF driver)
;

[Version]
Signature   = "$WINDOWS NT$"
Class       = System
ClassGuid   = {4d36e97d-e325-11ce-bfc1-08002be10318}
Provider    = %ManufacturerName%
CatalogFile = sample_driver.cat
DriverVer   = ; stamped by cargo xtask package
PnpLockdown = 1

[DestinationDirs]
DefaultDestDir = 13

[SourceDisksNames]
1 = %DiskName%,,,""

[SourceDisksFiles]
sample_driver.sys = 1,,

[Manufacturer]
%ManufacturerName% = Standard,NT$ARCH$.10.0...22000

[Standard.NT$ARCH$.10.0...22000]
%DeviceDesc% = SampleDriver_Device, %HardwareId%

[SampleDriver_Device.NT]
CopyFiles = Drivers_Dir

[Drivers_Dir]
sample_driver.sys

[SampleDriver_Device.NT.Services]
AddService = %ServiceName%, %SPSVCINST_ASSOCSERVICE%, SampleDriver_Service_Inst

[SampleDriver_Service_Inst]
DisplayName   = %ServiceDesc%
ServiceType   = 1
StartType     = 3
ErrorControl  = 1
ServiceBinary = %13%\sample_driver.sys

[SampleDriver_Device.NT.Wdf]
KmdfService = %ServiceName%, SampleDriver_wdfsect

[SampleDriver_wdfsect]
KmdfLibraryVersion = $KMDFVERSION$

[Strings]
ServiceName = "sample_driver"
HardwareId = "Root\DMF_SAMPLE_DRIVER"
InterfaceGuid = "{8C0E1B52-3D6A-4F7B-9E21-5A4C7D93B160}"
SPSVCINST_ASSOCSERVICE = 0x00000002
ManufacturerName = "DMF-rs"
DiskName = "DMF Sample Driver Installation Disk"
DeviceDesc = "DMF Sample Driver"
ServiceDesc = "DMF Sample Driver Service"
"#;

/// What `SAMPLE_INX` must become for amd64, 03/07/2026, version 0.1.0.0.
pub const SAMPLE_INF_AMD64: &str = r#";
; sample_driver.inx - DMF sample driver (root-enumerated KMDF driver)
;

[Version]
Signature   = "$WINDOWS NT$"
Class       = System
ClassGuid   = {4d36e97d-e325-11ce-bfc1-08002be10318}
Provider    = %ManufacturerName%
CatalogFile = sample_driver.cat
DriverVer   = 03/07/2026,0.1.0.0
PnpLockdown = 1

[DestinationDirs]
DefaultDestDir = 13

[SourceDisksNames]
1 = %DiskName%,,,""

[SourceDisksFiles]
sample_driver.sys = 1,,

[Manufacturer]
%ManufacturerName% = Standard,NTamd64.10.0...22000

[Standard.NTamd64.10.0...22000]
%DeviceDesc% = SampleDriver_Device, %HardwareId%

[SampleDriver_Device.NT]
CopyFiles = Drivers_Dir

[Drivers_Dir]
sample_driver.sys

[SampleDriver_Device.NT.Services]
AddService = %ServiceName%, %SPSVCINST_ASSOCSERVICE%, SampleDriver_Service_Inst

[SampleDriver_Service_Inst]
DisplayName   = %ServiceDesc%
ServiceType   = 1
StartType     = 3
ErrorControl  = 1
ServiceBinary = %13%\sample_driver.sys

[SampleDriver_Device.NT.Wdf]
KmdfService = %ServiceName%, SampleDriver_wdfsect

[SampleDriver_wdfsect]
KmdfLibraryVersion = 1.33

[Strings]
ServiceName = "sample_driver"
HardwareId = "Root\DMF_SAMPLE_DRIVER"
InterfaceGuid = "{8C0E1B52-3D6A-4F7B-9E21-5A4C7D93B160}"
SPSVCINST_ASSOCSERVICE = 0x00000002
ManufacturerName = "DMF-rs"
DiskName = "DMF Sample Driver Installation Disk"
DeviceDesc = "DMF Sample Driver"
ServiceDesc = "DMF Sample Driver Service"
"#;

/// `SOURCE_DATE_EPOCH` for 03/07/2026.
pub const EPOCH_2026_03_07: &str = "1772841600";

/// A temporary workspace.
pub struct Fixture {
    /// Keeps the directory alive.
    pub tmp: tempfile::TempDir,
    /// Workspace root.
    pub root: PathBuf,
    /// A prebuilt driver image outside the workspace's target dir.
    pub sys: PathBuf,
}

impl Fixture {
    /// The target directory used by every run.
    pub fn target(&self) -> PathBuf {
        self.root.join("target")
    }

    /// The package directory for the dev profile.
    pub fn package_dir(&self) -> PathBuf {
        self.target().join("driver").join("sample_driver_package")
    }

    /// `--workspace <root> --target-dir <root>/target` followed by `args`.
    pub fn args<'a>(&'a self, args: &[&'a str]) -> Vec<String> {
        let mut v = vec![
            "--workspace".to_owned(),
            self.root.to_string_lossy().into_owned(),
            "--target-dir".to_owned(),
            self.target().to_string_lossy().into_owned(),
        ];
        v.extend(args.iter().map(|s| (*s).to_owned()));
        v
    }

    /// Runs the xtask binary in this workspace (`TZ=UTC`,
    /// `SOURCE_DATE_EPOCH` = 03/07/2026 00:00 UTC).
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_env(args, &[])
    }

    /// Like [`Fixture::run`] with extra (or overriding) environment variables.
    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
        cmd.args(self.args(args))
            .env("SOURCE_DATE_EPOCH", EPOCH_2026_03_07)
            .env("TZ", "UTC")
            .env_remove("STAMPINF_VERSION")
            .env_remove("XTASK_PFX_PASSWORD");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run xtask");
        println!("--- xtask {}", args.join(" "));
        println!("{}", String::from_utf8_lossy(&out.stdout));
        println!("stderr: {}", String::from_utf8_lossy(&out.stderr));
        out
    }

    /// Runs the binary and asserts success.
    pub fn run_ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "xtask {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs the binary and asserts failure; returns stderr.
    pub fn run_err(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "xtask {args:?} unexpectedly succeeded"
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

/// A workspace with `sample-driver/` holding `inx` as `sample_driver.inx`.
pub fn fixture_with_inx(inx: &[u8]) -> Fixture {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("ws");
    let krate = root.join("sample-driver");
    std::fs::create_dir_all(krate.join("src")).unwrap();
    std::fs::write(
        root.join("Cargo.toml"),
        "[workspace]\nresolver = \"2\"\nmembers = [\"sample-driver\"]\n\n[workspace.package]\nversion = \"0.1.0\"\n",
    )
    .unwrap();
    std::fs::write(
        krate.join("Cargo.toml"),
        "[package]\nname = \"sample-driver\"\nversion.workspace = true\nedition = \"2021\"\n\n[lib]\ncrate-type = [\"cdylib\"]\n\n[package.metadata.wdk.driver-model]\ndriver-type = \"KMDF\"\nkmdf-version-major = 1\ntarget-kmdf-version-minor = 33\n",
    )
    .unwrap();
    std::fs::write(krate.join("src/lib.rs"), "").unwrap();
    std::fs::write(krate.join("sample_driver.inx"), inx).unwrap();
    let sys = tmp.path().join("prebuilt").join("sample_driver.sys");
    std::fs::create_dir_all(sys.parent().unwrap()).unwrap();
    std::fs::write(&sys, minimal_driver_pe(MACHINE_AMD64, 42)).unwrap();
    Fixture { tmp, root, sys }
}

/// The usual fixture: UTF-16LE-with-BOM, CRLF `.inx` like Visual Studio's.
pub fn fixture() -> Fixture {
    fixture_with_inx(&encode(
        &SAMPLE_INX.replace('\n', "\r\n"),
        InfEncoding::Utf16LeBom,
    ))
}

/// Whether `tool` is on PATH.
pub fn have(tool: &str) -> bool {
    xtask::runner::find_in_path(tool, std::env::var_os("PATH")).is_some()
}

/// Whether this is a CI run (`CI=true`), where a test must not skip.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// A test cannot run here: under `CI=true` that is a failure (CI installs
/// every tool the tests need, from xtask/CI-PACKAGES.txt), elsewhere the
/// test says so and passes.
pub fn skip(test: &str, why: &str) {
    skip_in(test, why, under_ci());
}

/// [`skip`] with the CI flag given (for testing the rule itself).
pub fn skip_in(test: &str, why: &str, ci: bool) {
    if ci {
        panic!(
            "CI=true: {test} cannot run: {why} (xtask/CI-PACKAGES.txt lists what .ci/run installs)"
        );
    }
    println!("SKIPPED {test}: {why}");
    eprintln!("SKIPPED {test}: {why}");
}

/// Returns true when `tools` are all present (osslsigncode 2.8+); otherwise
/// [`skip`]s (a failure under `CI=true`) and returns false.
pub fn require(test: &str, tools: &[&str]) -> bool {
    require_in(test, tools, under_ci())
}

/// [`require`] with the CI flag given (for testing the rule itself).
pub fn require_in(test: &str, tools: &[&str], ci: bool) -> bool {
    let missing: Vec<&str> = tools.iter().copied().filter(|t| !have(t)).collect();
    if missing.is_empty() {
        if tools.contains(&"osslsigncode") {
            let out = Command::new("osslsigncode")
                .arg("--version")
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            if let Some(v) = xtask::sign::parse_osslsigncode_version(&text) {
                if v < (2, 8) {
                    skip_in(
                        test,
                        &format!(
                            "osslsigncode {}.{} cannot verify catalogs (2.8+ needed: {})",
                            v.0,
                            v.1,
                            xtask::ctx::OSSLSIGNCODE_HINT
                        ),
                        ci,
                    );
                    return false;
                }
            }
        }
        return true;
    }
    skip_in(
        test,
        &format!(
            "{} not installed (Debian/Ubuntu: apt-get install osslsigncode openssl openssh-client openssh-server)",
            missing.join(", ")
        ),
        ci,
    );
    false
}

/// Names of the entries of `dir`, sorted.
pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}
