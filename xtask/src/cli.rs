//! Command-line interface (`cargo xtask --help`, `cargo xtask <cmd> --help`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::pe;

const ABOUT: &str = "Package, test-sign and deploy the sample KMDF driver; run its simulator demo.";

const LONG_ABOUT: &str = "\
Package, test-sign and deploy the sample KMDF driver; run its simulator demo.

The usual flow is one command:

    cargo xtask deploy --host 192.168.56.10 --user Administrator --key ~/.ssh/id_ed25519

which runs `package`, then `sign`, then copies the package and the test
certificate to the VM and installs the driver there. On a host without the
WDK (Linux, macOS) build the driver on Windows and pass the binary:

    cargo xtask deploy --sys path/to/sample_driver.sys --host ...

`cargo xtask deploy --check` only checks that the VM is ready; `cargo xtask
undeploy` removes the driver again.

Every step prints `==> step: what` and each command it runs; --dry-run prints
the exact commands and changes nothing. Settings can live in xtask.toml at the
workspace root (see `cargo xtask deploy --help`).";

/// `cargo xtask`: packaging, signing, deployment and demo for the sample driver.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", version, about = ABOUT, long_about = LONG_ABOUT)]
pub struct Cli {
    /// Options every subcommand accepts.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand accepts.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Print the exact commands and file operations without running them.
    #[arg(long, global = true)]
    pub dry_run: bool,
    /// Workspace root [default: the workspace this xtask belongs to].
    #[arg(long, global = true, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
    /// Cargo target directory [default: $CARGO_TARGET_DIR, else <workspace>/target].
    #[arg(long, global = true, value_name = "DIR")]
    pub target_dir: Option<PathBuf>,
}

/// The subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Build the driver and lay out target/<profile>/<name>_package/ (.sys, .inf, .cat).
    #[command(long_about = PACKAGE_LONG)]
    Package(PackageArgs),
    /// Test-sign the package's .sys and .cat (creating a test certificate if none is given) and verify.
    #[command(long_about = SIGN_LONG)]
    Sign(SignArgs),
    /// Package, sign, copy to a test VM and install the driver there.
    #[command(long_about = DEPLOY_LONG)]
    Deploy(Box<DeployArgs>),
    /// Remove the test device, the driver package(s) and optionally the test certificate from the VM.
    #[command(long_about = UNDEPLOY_LONG)]
    Undeploy(Box<UndeployArgs>),
    /// Run the sample driver on the simulator: `cargo run -p sample-demo -- ARGS`.
    #[command(long_about = DEMO_LONG)]
    Demo(DemoArgs),
    /// Type-check, lint and document the KMDF half for the Windows targets (no WDK needed).
    #[command(long_about = CHECK_WINDOWS_LONG)]
    CheckWindows(CheckWindowsArgs),
    /// Generate a standalone driver crate from the sample driver (fresh identity).
    #[command(long_about = crate::new_driver::LONG_ABOUT)]
    NewDriver(crate::new_driver::NewDriverArgs),
}

const CHECK_WINDOWS_LONG: &str = "\
Type-check, lint (clippy -D warnings) and document (rustdoc warnings denied)
dmf-kmdf and the sample driver's KMDF build for x86_64-pc-windows-msvc and
aarch64-pc-windows-msvc, on any host, without the WDK.

core and alloc are built from source (-Zbuild-std) by a toolchain that ships
the standard library's sources: Debian 12's rustc-web (apt-get install
rustc-web cargo-web rust-web-src rust-web-clippy), or the bin directory named
by $DMF_WINDOWS_TOOLCHAIN. The WDK crates are replaced by the declaration-only
stand-ins in .ci/windows-check/ (patched in on the command line, with a lock
file of their own under <target>/windows-check/), so the workspace's
manifests and Cargo.lock are not touched and the real build on Windows uses
the real crates.

Checked here: every WDF/kernel name, type, argument list, structure layout
and function-table index the code uses, clippy and rustdoc. Not checked:
linking, the WDK tools (stampinf, inf2cat, signtool), loading and running the
driver: those need Windows (.github/workflows/windows.yml).

--manifest-path checks a driver crate outside the workspace instead (e.g. one
made by `cargo xtask new-driver`), with its own Cargo.lock as the seed:

  cargo xtask check-windows --manifest-path ~/src/mydrv/Cargo.toml";

/// Options of `check-windows`.
#[derive(Debug, Clone, Args)]
pub struct CheckWindowsArgs {
    /// Which Windows target(s).
    #[arg(long, value_enum, default_value_t = WindowsTargetArg::All)]
    pub target: WindowsTargetArg,
    /// Check only this package (repeatable) [default: dmf-kmdf and sample-driver].
    #[arg(long, short = 'p', value_name = "PACKAGE")]
    pub package: Vec<String>,
    /// Skip `cargo doc`.
    #[arg(long)]
    pub no_doc: bool,
    /// Check the driver crate of this manifest instead (e.g. one made by
    /// `cargo xtask new-driver` outside the workspace); its own Cargo.lock
    /// seeds the check's lock file.
    #[arg(long, value_name = "FILE")]
    pub manifest_path: Option<PathBuf>,
}

impl CheckWindowsArgs {
    /// The targets selected by `--target`.
    pub fn targets(&self) -> Vec<WindowsTarget> {
        match self.target {
            WindowsTargetArg::X64 => vec![WindowsTarget::X64],
            WindowsTargetArg::Arm64 => vec![WindowsTarget::Arm64],
            WindowsTargetArg::All => vec![WindowsTarget::X64, WindowsTarget::Arm64],
        }
    }
}

/// `--target` of `check-windows`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WindowsTargetArg {
    /// x86_64-pc-windows-msvc.
    X64,
    /// aarch64-pc-windows-msvc.
    Arm64,
    /// Both.
    All,
}

/// A Windows target of the check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowsTarget {
    /// x86_64-pc-windows-msvc.
    X64,
    /// aarch64-pc-windows-msvc.
    Arm64,
}

impl WindowsTarget {
    /// The target triple.
    pub fn triple(self) -> &'static str {
        match self {
            WindowsTarget::X64 => "x86_64-pc-windows-msvc",
            WindowsTarget::Arm64 => "aarch64-pc-windows-msvc",
        }
    }
}

const PACKAGE_LONG: &str = "\
Build the driver and lay out target/[<triple>/]<profile>/<name>_package/ the way
cargo-wdk / the WDK's cargo-make flow do:

  1. build: on Windows `cargo build -p sample-driver --profile <p>` (needs the WDK);
     elsewhere pass a binary built on Windows with --sys PATH;
  2. <name>.dll -> <name>.sys;
  3. <name>.inx -> <name>.inf, stamped like `stampinf -a <arch> -d <date> -v <version>
     -c <name>.cat -k <kmdf>` (<kmdf>: --kmdf-version, by default the driver crate's
     [package.metadata.wdk.driver-model]; the WDK's stampinf on Windows when present, built-in
     otherwise; ASCII and UTF-16LE-with-BOM files keep their encoding);
  4. `infverif /v /w` (Windows, when installed);
  5. the catalog <name>.cat: `inf2cat /driver:<dir> /os:10_x64 /uselocaltime` on
     Windows; elsewhere written by xtask itself (SHA-1 catalog, same format).

Everything is built in a staging directory renamed into place at the end, so a
failed run never leaves a half-made package.

Examples:
  cargo xtask package                                   # Windows + WDK
  cargo xtask package --sys ../win-build/sample_driver.sys --profile release";

const SIGN_LONG: &str = "\
Test-sign the package made by `cargo xtask package`: the .sys, then the .cat,
then verify both signatures and that the catalog lists the .sys and .inf.

Without --pfx/--cer a self-signed code-signing certificate is created once and
kept in target/xtask-cert/ (DmfSampleTestCert.{pem,key.pem,cer,pfx}; the .pfx
password is `xtask-test`). Signing uses signtool on Windows and osslsigncode
elsewhere (Debian/Ubuntu: apt-get install osslsigncode openssl). Verification:
osslsigncode checks both signatures against the certificate and that the
catalog lists the .sys and .inf; on Windows Get-AuthenticodeSignature checks
that both files are intact and signed with the certificate (a test root need
not be trusted on the build machine). The public certificate (.cer) is added
to the package for `deploy`.

Examples:
  cargo xtask sign
  XTASK_PFX_PASSWORD=secret cargo xtask sign --pfx my.pfx --cer my.cer";

const DEPLOY_LONG: &str = "\
Package and sign (unless --no-package), copy the package to a test VM and
install it. Steps, each printed as `==> deploy: <step>`:

  preflight      reachable? administrator? test signing on? Secure Boot off?
                 free space? devgen? (--check runs only this)
  prepare        create <remote_dir> on the VM; each run copies into its own
                 <remote_dir>/<name>_package-<run id>, so runs do not collide
  copy           scp -r (SSH) or Copy-Item -ToSession (PowerShell Direct)
  trust-cert     Import-Certificate into LocalMachine\\Root and \\TrustedPublisher
  create-device  devgen /add /bus ROOT /hardwareid <HardwareId of the .inx>
                 (unless present)
  install-driver pnputil /add-driver <name>.inf /install: exit 259 (nothing
                 installed: same or newer driver there) is an error, 3010
                 means a restart is needed (--reboot restarts and waits)
  verify         the present device runs the oemNN.inf pnputil just
                 published, with this build's DriverVer version
  cleanup        remove this run's folder on the VM

When a step fails its output is shown and the VM's setupapi.dev.log (last
section), `pnputil /enum-devices /drivers` and CodeIntegrity events are saved
under target/xtask-deploy-logs/<run id>/ (the path is printed). Each remote
step has a time limit (--step-timeout, default 300 s) and SSH keep-alives, so
a frozen VM fails the deploy instead of hanging it.

Transports: `ssh` (default; any host, OpenSSH server on the VM, key-based login
in BatchMode) and `powershell-direct` (only on a Windows Hyper-V host, from an
elevated prompt; one session for the whole run, the VM password from
XTASK_VM_PASSWORD or asked once).

The VM needs test signing on (bcdedit /set testsigning on, Secure Boot off,
restart) and devgen.exe. devgen ships only with the WDK (Windows Kits\\10\\
Tools\\<version>\\x64\\devgen.exe) and may not be redistributed: from a
Linux host copy it from any Windows machine with the WDK once and pass it with
--devgen-local (copied with each deploy), or put it on the VM's PATH.

Settings come from flags, else from xtask.toml at the workspace root:

  [deploy]
  transport = \"ssh\"                 # or \"powershell-direct\"
  host = \"192.168.56.10\"
  user = \"Administrator\"
  port = 22
  identity_file = \"~/.ssh/id_ed25519\"
  known_hosts = \"vm_known_hosts\"    # optional: strict host-key check against this file
  remote_dir = \"C:/dmf-deploy\"
  vm_name = \"dmf-test\"              # powershell-direct only
  hardware_id = \"Root\\\\MY_DEVICE\"   # optional: default the .inx's [Strings] HardwareId
  devgen = \"devgen.exe\"             # on the VM, or:
  devgen_local = \"tools/devgen.exe\" # copied to the VM
  step_timeout = 300

Examples:
  cargo xtask deploy --check --host 192.168.56.10 --user Administrator --key ~/.ssh/vm
  cargo xtask deploy --sys sample_driver.sys --host 192.168.56.10 --user Administrator --key ~/.ssh/vm
  cargo xtask deploy --no-package --reboot
  cargo xtask deploy --transport powershell-direct --vm-name dmf-test   # on a Hyper-V host";

const UNDEPLOY_LONG: &str = "\
Remove what deploy installed on the test VM: every device with the hardware ID
(present or not), every driver package in the VM's driver store whose INF
names <name>.cat (pnputil /delete-driver /uninstall /force), this driver's
run folders under remote_dir, and with --remove-cert the test certificate
from LocalMachine\\Root and \\TrustedPublisher. Running it again when nothing
is left is not an error. Connection settings as for deploy.

Examples:
  cargo xtask undeploy
  cargo xtask undeploy --remove-cert --host 192.168.56.10 --user Administrator";

const DEMO_LONG: &str = "\
Run the sample driver against the simulated platform (any host):

  cargo run -p sample-demo [--release] -- ARGS

Examples:
  cargo xtask demo
  cargo xtask demo --release -- --help";

/// Target CPU architecture of the driver.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Arch {
    /// x64 (`$ARCH$` = amd64, inf2cat /os:10_x64).
    #[default]
    Amd64,
    /// ARM64 (`$ARCH$` = arm64, inf2cat /os:Server10_arm64).
    Arm64,
}

impl Arch {
    /// `amd64` / `arm64`, the value of `$ARCH$`.
    pub fn as_str(self) -> &'static str {
        match self {
            Arch::Amd64 => "amd64",
            Arch::Arm64 => "arm64",
        }
    }

    /// The PE machine type of a driver for this architecture.
    pub fn machine(self) -> u16 {
        match self {
            Arch::Amd64 => pe::MACHINE_AMD64,
            Arch::Arm64 => pe::MACHINE_ARM64,
        }
    }

    /// inf2cat's `/os:` value.
    pub fn inf2cat_os(self) -> &'static str {
        match self {
            Arch::Amd64 => "10_x64",
            Arch::Arm64 => "Server10_arm64",
        }
    }
}

/// Which driver, which profile, which architecture.
#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// Cargo profile. The default, `driver`, is the workspace's driver profile
    /// (release with `panic = "abort"` and LTO: a kernel image cannot unwind);
    /// dev -> target/debug, release -> target/release.
    #[arg(long, default_value = "driver")]
    pub profile: String,
    /// Driver architecture.
    #[arg(long, value_enum, default_value_t = Arch::Amd64)]
    pub target_arch: Arch,
    /// The driver crate (directory and package name in the workspace).
    #[arg(long, value_name = "PACKAGE", default_value = "sample-driver")]
    pub driver_package: String,
}

/// Options of the package step.
#[derive(Debug, Clone, Args)]
pub struct BuildArgs {
    /// Use this prebuilt driver binary (.sys or .dll built on Windows) instead of building.
    #[arg(long, value_name = "PATH")]
    pub sys: Option<PathBuf>,
    /// DriverVer version [default: $STAMPINF_VERSION, else unique per build: the crate's
    /// major.minor.patch and the build's local time of day in 2-second steps, e.g. 0.1.0.30601].
    #[arg(long, value_name = "W.X.Y.Z")]
    pub driver_version: Option<String>,
    /// DriverVer date [default: the local date ($TZ) of the build, i.e. of
    /// $SOURCE_DATE_EPOCH if set, else today; inf2cat /uselocaltime refuses later dates].
    #[arg(long, value_name = "MM/DD/YYYY")]
    pub driver_date: Option<String>,
    /// KMDF version for $KMDFVERSION$ and stampinf -k [default: the driver
    /// crate's package.metadata.wdk.driver-model].
    #[arg(
        long,
        value_name = "MAJOR.MINOR",
        default_value = "",
        hide_default_value = true
    )]
    pub kmdf_version: String,
}

/// `cargo xtask package`.
#[derive(Debug, Clone, Args)]
pub struct PackageArgs {
    /// Which driver.
    #[command(flatten)]
    pub target: TargetArgs,
    /// How to build it.
    #[command(flatten)]
    pub build: BuildArgs,
}

/// Which certificate signs.
#[derive(Debug, Clone, Args)]
pub struct CertArgs {
    /// Sign with this PKCS#12 file instead of the generated test certificate.
    #[arg(long, value_name = "FILE", requires = "cer")]
    pub pfx: Option<PathBuf>,
    /// The public certificate of --pfx (DER or PEM), imported on the VM.
    #[arg(long, value_name = "FILE", requires = "pfx")]
    pub cer: Option<PathBuf>,
    /// Password of --pfx.
    #[arg(
        long,
        env = "XTASK_PFX_PASSWORD",
        hide_env_values = true,
        default_value = ""
    )]
    pub pfx_password: String,
    /// RFC 3161 timestamp server (network access needed); none by default.
    #[arg(long, value_name = "URL")]
    pub timestamp_url: Option<String>,
    /// Skip signature verification after signing.
    #[arg(long)]
    pub no_verify: bool,
}

/// `cargo xtask sign`.
#[derive(Debug, Clone, Args)]
pub struct SignArgs {
    /// Which package.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Which certificate.
    #[command(flatten)]
    pub cert: CertArgs,
}

/// How deploy reaches the VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Transport {
    /// scp + ssh to the VM's OpenSSH server (any host).
    Ssh,
    /// Copy-VMFile + Invoke-Command -VMName (Windows Hyper-V host only).
    PowershellDirect,
}

/// Where the VM is and how to reach it (deploy and undeploy).
#[derive(Debug, Clone, Args)]
pub struct VmArgs {
    /// Settings file [default: <workspace>/xtask.toml if it exists].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// ssh or powershell-direct [default: ssh].
    #[arg(long, value_enum)]
    pub transport: Option<Transport>,
    /// VM address (SSH).
    #[arg(long)]
    pub host: Option<String>,
    /// User on the VM (an administrator).
    #[arg(long)]
    pub user: Option<String>,
    /// SSH port [default: 22].
    #[arg(long)]
    pub port: Option<u16>,
    /// SSH private key.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// known_hosts file holding the VM's host key (strict checking); without it new host keys are accepted once.
    #[arg(long, value_name = "FILE")]
    pub known_hosts: Option<PathBuf>,
    /// Directory on the VM under which each run gets its own folder [default: C:/dmf-deploy].
    #[arg(long, value_name = "DIR")]
    pub remote_dir: Option<String>,
    /// Hyper-V VM name (PowerShell Direct).
    #[arg(long)]
    pub vm_name: Option<String>,
    /// Hardware ID of the root-enumerated test device [default: HardwareId in the Strings section of the .inx].
    #[arg(long)]
    pub hardware_id: Option<String>,
    /// devgen.exe on the VM [default: devgen.exe, found on the VM's PATH].
    #[arg(long, value_name = "PATH")]
    pub devgen: Option<String>,
    /// A devgen.exe on this machine to copy to the VM with the package (then
    /// --devgen is not needed).
    #[arg(long, value_name = "FILE")]
    pub devgen_local: Option<PathBuf>,
    /// Seconds each remote step may take before deploy gives up on the VM
    /// (frozen or bugchecked) [default: 300].
    #[arg(long, value_name = "SECS")]
    pub step_timeout: Option<u64>,
    /// Program run on the VM for each step [default: powershell.exe]; tests use a recording script.
    #[arg(long, hide = true)]
    pub remote_powershell: Option<String>,
}

/// `cargo xtask deploy`.
#[derive(Debug, Clone, Args)]
pub struct DeployArgs {
    /// Which driver.
    #[command(flatten)]
    pub target: TargetArgs,
    /// How to build it.
    #[command(flatten)]
    pub build: BuildArgs,
    /// Which certificate.
    #[command(flatten)]
    pub cert: CertArgs,
    /// The VM.
    #[command(flatten)]
    pub vm: VmArgs,
    /// Deploy the existing signed package instead of packaging and signing first.
    #[arg(long)]
    pub no_package: bool,
    /// Only run the preflight checks on the VM (reachability, administrator,
    /// test signing, Secure Boot, free space, devgen) and report.
    #[arg(long)]
    pub check: bool,
    /// When the installation needs a restart: restart the VM and wait for it
    /// to come back, then verify. Without it a pending restart is an error.
    #[arg(long)]
    pub reboot: bool,
    /// Seconds to wait for the VM to come back after --reboot [default: 600].
    #[arg(long, value_name = "SECS")]
    pub reboot_timeout: Option<u64>,
}

/// `cargo xtask undeploy`.
#[derive(Debug, Clone, Args)]
pub struct UndeployArgs {
    /// Which driver.
    #[command(flatten)]
    pub target: TargetArgs,
    /// The VM.
    #[command(flatten)]
    pub vm: VmArgs,
    /// Also remove the test certificate from the VM's Root and TrustedPublisher stores.
    #[arg(long)]
    pub remove_cert: bool,
    /// The certificate to remove [default: the generated test certificate].
    #[arg(long, value_name = "FILE")]
    pub cer: Option<PathBuf>,
}

/// `cargo xtask demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Build the demo with the release profile.
    #[arg(long)]
    pub release: bool,
    /// The crate to run.
    #[arg(long, value_name = "PACKAGE", default_value = "sample-demo")]
    pub driver_package: String,
    /// Arguments for the demo (after `--`).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ARGS"
    )]
    pub args: Vec<String>,
}
