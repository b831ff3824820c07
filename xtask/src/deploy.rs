//! `cargo xtask deploy` and `undeploy`: copy the signed package to a test
//! VM and install it, over SSH (any host) or PowerShell Direct (Windows
//! Hyper-V host), and remove it again.
//!
//! Each VM-side step is a PowerShell script sent as `-EncodedCommand`, so no
//! quoting layer (ssh, cmd.exe, PowerShell) can alter it. Every script is
//! wrapped ([`wrap_ssh`]) so that a failure reaches the user as text: the
//! reason is written to stdout as `xtask-error: <message>` and the script
//! exits 1. Other machine-readable lines a step prints:
//!
//! * `xtask-check: <name> ok|FAIL: <detail>` (preflight);
//! * `xtask-boot: <time>` (the VM's last boot time, to see a restart);
//! * `xtask-published: oemNN.inf` and `xtask-reboot-required` (install);
//! * `xtask-device: <instance> | status .. | problem .. | inf .. | version ..` (verify);
//! * `### xtask-log: <file>` starting a section of the failure logs.
//!
//! Which program runs a script on the VM is a setting (`remote_powershell`,
//! default `powershell.exe`); the tests point it at a scripted fake VM on a
//! local sshd, so the SSH transport and its error paths run for real.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::cli::{DeployArgs, Transport, UndeployArgs, VmArgs};
use crate::config::{self, ConfigError, DeployConfig};
use crate::ctx::{Ctx, FsError, ToolError};
use crate::inf;
use crate::package::{self, package_dir, PackageError};
use crate::ps;
use crate::runner::Cmd;
use crate::sign::{self, SignError, TEST_CERT_NAME};
use crate::workspace::{DriverCrate, Layout, WorkspaceError};

/// Default directory on the VM.
pub const DEFAULT_REMOTE_DIR: &str = "C:/dmf-deploy";
/// Default hardware ID of the root-enumerated test device.
pub const DEFAULT_HARDWARE_ID: &str = r"Root\DMF_SAMPLE_DRIVER";
/// Default time limit of one remote step, in seconds.
pub const DEFAULT_STEP_TIMEOUT: u64 = 300;
/// Default time to wait for the VM after a restart, in seconds.
pub const DEFAULT_REBOOT_TIMEOUT: u64 = 600;
/// Free space the preflight wants on the remote directory's drive, in MB.
pub const MIN_FREE_MB: u64 = 200;

/// The short form of [`DEVGEN_HINT`] used inside the remote scripts (whose
/// command line cmd.exe limits to 8191 characters).
pub const DEVGEN_HINT_SHORT: &str = "copy devgen.exe from a WDK install (Windows Kits\\10\\Tools\\<version>\\x64) and pass --devgen-local FILE (see cargo xtask deploy --help)";

/// How to get devgen.exe onto the VM (it ships only with the WDK).
pub const DEVGEN_HINT: &str = "devgen.exe ships only with the WDK (Windows Kits\\10\\Tools\\<version>\\x64\\devgen.exe) and may not be redistributed, \
so a Linux host has none: copy it once from any Windows machine with the WDK and pass it with --devgen-local FILE \
(or devgen_local in xtask.toml; it is copied with each deploy), or put it on the VM's PATH, or set --devgen to its path on the VM";

/// Why deployment failed.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// Bad settings file.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Workspace or driver crate problem.
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
    /// Packaging failed.
    #[error("package: {0}")]
    Package(#[from] PackageError),
    /// Signing failed.
    #[error("sign: {0}")]
    Sign(#[from] SignError),
    /// Unknown `transport` in xtask.toml.
    #[error("unknown transport `{0}` in xtask.toml: use \"ssh\" or \"powershell-direct\"")]
    BadTransport(String),
    /// SSH without a host.
    #[error("no VM address: pass --host or set `host` under [deploy] in xtask.toml")]
    NoHost,
    /// PowerShell Direct without a VM name.
    #[error("no VM name: pass --vm-name or set `vm_name` under [deploy] in xtask.toml")]
    NoVmName,
    /// PowerShell Direct on a non-Windows host.
    #[error("PowerShell Direct needs a Windows host with Hyper-V, this is {0}: use --transport ssh (OpenSSH server on the VM)")]
    PowerShellDirectNeedsWindows(&'static str),
    /// `--no-package` without a package.
    #[error("no package at {}: run `cargo xtask package` and `cargo xtask sign`, or deploy without --no-package", .0.display())]
    NoPackage(PathBuf),
    /// `--no-package` with an unsigned package.
    #[error("package {} is not signed (no .cer in it): run `cargo xtask sign`, or deploy without --no-package", .0.display())]
    Unsigned(PathBuf),
    /// The package's INF has no readable `DriverVer`.
    #[error("{} has no DriverVer = MM/DD/YYYY,w.x.y.z in [Version]: run `cargo xtask package` again", .0.display())]
    NoDriverVer(PathBuf),
    /// `--devgen-local` names a file that does not exist.
    #[error("devgen_local {} does not exist: {DEVGEN_HINT}", .0.display())]
    DevgenLocalMissing(PathBuf),
    /// A step failed.
    #[error("step {step} failed: {reason}{source}{hint}")]
    Step {
        /// Step name (preflight, prepare, copy, trust-cert, create-device,
        /// install-driver, reboot, verify, ...).
        step: &'static str,
        /// The VM's own explanation (`xtask-error:` lines), then a newline; or empty.
        reason: String,
        /// What failed.
        source: ToolError,
        /// How to fix it, and where the failure logs were saved.
        hint: String,
    },
    /// Preflight checks failed.
    #[error("preflight: the VM is not ready:\n{failures}\n  (fix these, then run `cargo xtask deploy --check` again)")]
    Preflight {
        /// One line per failed check, with what to do.
        failures: String,
    },
    /// pnputil needs a restart and `--reboot` was not given.
    #[error("install-driver: the driver package is installed but Windows needs a restart to finish (pnputil exit 3010); the new driver is not running yet: deploy again with --reboot (restarts the VM and waits for it), or restart the VM yourself and run `cargo xtask deploy --no-package`")]
    RebootPending,
    /// The VM did not come back after a restart.
    #[error("reboot: the VM did not come back within {0} s: check it in its console (raise --reboot-timeout for slow VMs)")]
    RebootTimeout(u64),
    /// A file operation failed.
    #[error(transparent)]
    Fs(#[from] FsError),
}

/// Deploy settings after merging flags, xtask.toml and defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeploySettings {
    /// How to reach the VM.
    pub transport: Transport,
    /// VM address (SSH).
    pub host: Option<String>,
    /// Account on the VM.
    pub user: Option<String>,
    /// SSH port.
    pub port: u16,
    /// SSH private key.
    pub key: Option<PathBuf>,
    /// known_hosts for strict checking.
    pub known_hosts: Option<PathBuf>,
    /// Directory on the VM under which each run gets its own folder.
    pub remote_dir: String,
    /// Hyper-V VM name.
    pub vm_name: Option<String>,
    /// Hardware ID of the test device.
    pub hardware_id: String,
    /// devgen.exe on the VM.
    pub devgen: String,
    /// devgen.exe on this machine, copied to the VM.
    pub devgen_local: Option<PathBuf>,
    /// Time limit of each remote step.
    pub step_timeout: Duration,
    /// Program that runs each step's script on the VM.
    pub remote_powershell: String,
}

/// Merges flags over xtask.toml over defaults.
pub fn settings(args: &VmArgs, cfg: &DeployConfig) -> Result<DeploySettings, DeployError> {
    let transport = match (&args.transport, &cfg.transport) {
        (Some(t), _) => *t,
        (None, Some(t)) => match t.as_str() {
            "ssh" => Transport::Ssh,
            "powershell-direct" => Transport::PowershellDirect,
            other => return Err(DeployError::BadTransport(other.to_owned())),
        },
        (None, None) => Transport::Ssh,
    };
    let cwd = std::env::current_dir().unwrap_or_default();
    let pick = |flag: &Option<String>, file: &Option<String>| flag.clone().or_else(|| file.clone());
    let path = |flag: &Option<PathBuf>, file: &Option<PathBuf>| {
        flag.as_ref()
            .map(|k| config::resolve_path(k, &cwd))
            .or_else(|| file.clone())
    };
    Ok(DeploySettings {
        transport,
        host: pick(&args.host, &cfg.host),
        user: pick(&args.user, &cfg.user),
        port: args.port.or(cfg.port).unwrap_or(22),
        key: path(&args.key, &cfg.identity_file),
        known_hosts: path(&args.known_hosts, &cfg.known_hosts),
        remote_dir: pick(&args.remote_dir, &cfg.remote_dir)
            .unwrap_or_else(|| DEFAULT_REMOTE_DIR.to_owned()),
        vm_name: pick(&args.vm_name, &cfg.vm_name),
        hardware_id: pick(&args.hardware_id, &cfg.hardware_id)
            .unwrap_or_else(|| DEFAULT_HARDWARE_ID.to_owned()),
        devgen: pick(&args.devgen, &cfg.devgen).unwrap_or_else(|| "devgen.exe".to_owned()),
        devgen_local: path(&args.devgen_local, &cfg.devgen_local),
        step_timeout: Duration::from_secs(
            args.step_timeout
                .or(cfg.step_timeout)
                .unwrap_or(DEFAULT_STEP_TIMEOUT)
                .max(1),
        ),
        remote_powershell: pick(&args.remote_powershell, &cfg.remote_powershell)
            .unwrap_or_else(|| "powershell.exe".to_owned()),
    })
}

/// An SSH destination and the options every ssh/scp call uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshTarget {
    /// Address.
    pub host: String,
    /// Login name.
    pub user: Option<String>,
    /// Port.
    pub port: u16,
    /// Private key.
    pub key: Option<PathBuf>,
    /// known_hosts file for strict checking.
    pub known_hosts: Option<PathBuf>,
}

impl SshTarget {
    /// `user@host` or `host`.
    pub fn destination(&self) -> String {
        match &self.user {
            Some(u) => format!("{u}@{}", self.host),
            None => self.host.clone(),
        }
    }

    fn options(&self, port_flag: &str) -> Vec<String> {
        let mut o = vec![port_flag.to_owned(), self.port.to_string()];
        if let Some(key) = &self.key {
            o.extend(["-i".to_owned(), key.to_string_lossy().into_owned()]);
            o.extend(["-o".to_owned(), "IdentitiesOnly=yes".to_owned()]);
        }
        o.extend(
            [
                "-o",
                "BatchMode=yes",
                "-o",
                "ConnectTimeout=15",
                // A VM that freezes or bugchecks stops answering: ssh gives
                // up after 3 unanswered keep-alives 5 s apart.
                "-o",
                "ServerAliveInterval=5",
                "-o",
                "ServerAliveCountMax=3",
                "-o",
                "LogLevel=ERROR",
            ]
            .map(str::to_owned),
        );
        match &self.known_hosts {
            Some(kh) => {
                o.extend(["-o".to_owned(), "StrictHostKeyChecking=yes".to_owned()]);
                o.extend([
                    "-o".to_owned(),
                    format!("UserKnownHostsFile={}", kh.to_string_lossy()),
                ]);
            }
            None => o.extend([
                "-o".to_owned(),
                "StrictHostKeyChecking=accept-new".to_owned(),
            ]),
        }
        o
    }

    /// `ssh <options> <dest> <remote command>`.
    pub fn ssh(&self, remote_command: &str) -> Cmd {
        Cmd::new("ssh")
            .args(self.options("-p"))
            .arg(self.destination())
            .arg(remote_command)
    }

    /// `scp <options> -r <local> <dest>:<remote>`: copies the directory
    /// `local` to the (new) directory `remote`, or a file to `remote`.
    pub fn scp_dir(&self, local: &Path, remote_dir: &str) -> Cmd {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let dest = match &self.user {
            Some(u) => format!("{u}@{host}:{remote_dir}"),
            None => format!("{host}:{remote_dir}"),
        };
        Cmd::new("scp")
            .args(self.options("-P"))
            .arg("-r")
            .arg_path(local)
            .arg(dest)
    }
}

/// One step run on the VM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteStep {
    /// Short name used in messages (`install-driver`).
    pub name: &'static str,
    /// What it does, for the `==>` line.
    pub what: String,
    /// The PowerShell statements (not yet wrapped, see [`wrap_ssh`]).
    pub body: String,
}

/// Joins script lines, each ending in `\n`.
fn lines(lines: &[&str]) -> String {
    lines.iter().flat_map(|l| [*l, "\n"]).collect()
}

/// A Windows path as a PowerShell expression: quoted, `/` turned into `\`.
fn win_path(path: &str) -> String {
    format!("({} -replace '/', '\\')", ps::quote(path))
}

/// The whole script for one SSH step: `$ErrorActionPreference = 'Stop'`,
/// the body in `try`, and a `catch` that prints `xtask-error: <message>`
/// (and where it happened) on stdout and exits 1; exit 0 otherwise.
pub fn wrap_ssh(step: &RemoteStep) -> String {
    let mut body = String::new();
    for l in step.body.lines() {
        body.push_str("    ");
        body.push_str(l);
        body.push('\n');
    }
    format!(
        "# xtask-step: {name}\n\
         $ErrorActionPreference = 'Stop'\n\
         $ProgressPreference = 'SilentlyContinue'\n\
         try {{\n{body}}} catch {{\n\
         \x20   Write-Output ('xtask-error: ' + $_.Exception.Message)\n\
         \x20   Write-Output ('xtask-error-at: ' + ($_.InvocationInfo.PositionMessage -replace '\\s+', ' '))\n\
         \x20   exit 1\n\
         }}\n\
         exit 0\n",
        name = step.name
    )
}

/// A unique name for this run: its folder on the VM and its log folder.
pub fn run_id() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}-{}", now.as_secs(), std::process::id())
}

/// What the steps need to know about the package and the run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    /// Library name (`sample_driver`).
    pub lib: String,
    /// The `.cer` file name in the package.
    pub cer_name: String,
    /// This run's folder on the VM (`C:/dmf-deploy/sample_driver_package-<run id>`).
    pub remote_pkg: String,
    /// The DriverVer version the device must end up running.
    pub version: String,
    /// devgen.exe as the VM sees it (on PATH, configured, or copied).
    pub devgen: String,
    /// Whether devgen.exe is copied from the host.
    pub devgen_copied: bool,
}

/// Where the run's folder goes on the VM.
pub fn remote_run_dir(s: &DeploySettings, pkg_name: &str, run: &str) -> String {
    format!(
        "{}/{pkg_name}-{run}",
        s.remote_dir.trim_end_matches(['/', '\\'])
    )
}

/// Preflight: administrator, test signing, Secure Boot, free space, devgen
/// (reachability is that the step runs at all).
/// With `create_root`, a VM that passes also gets `remote_dir` created (the
/// SSH flow saves a connection that way).
pub fn preflight_step(s: &DeploySettings, devgen_copied: bool, create_root: bool) -> RemoteStep {
    let devgen_check = if devgen_copied {
        "Check 'devgen' $true 'copied from this host with the package (devgen_local)' ''".to_owned()
    } else {
        format!(
            "$devgen = {}\n$found = Get-Command $devgen -ErrorAction SilentlyContinue\n\
             Check 'devgen' ($null -ne $found) $(if ($found) {{ $found.Source }} else {{ \"$devgen not found on the VM\" }}) {}",
            ps::quote(&s.devgen),
            ps::quote(DEVGEN_HINT_SHORT)
        )
    };
    let body = lines(&[
        // A hashtable: the count survives the function's scope wherever the
        // body runs (script, or Invoke-Command's script block).
        "$state = @{ fail = 0 }",
        "function Check([string]$name, [bool]$ok, [string]$detail, [string]$fix) {",
        "    if ($ok) { Write-Output \"xtask-check: $name ok: $detail\" }",
        "    else { Write-Output \"xtask-check: $name FAIL: $detail; $fix\"; $state.fail++ }",
        "}",
        "$id = [Security.Principal.WindowsIdentity]::GetCurrent()",
        "$admin = ([Security.Principal.WindowsPrincipal]$id).IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)",
        "Check 'admin' $admin \"user $($id.Name)\" 'log in as a member of Administrators (over SSH: its key in C:\\ProgramData\\ssh\\administrators_authorized_keys)'",
        "$opts = [string](Get-ItemProperty -Path 'HKLM:\\SYSTEM\\CurrentControlSet\\Control' -Name SystemStartOptions -ErrorAction SilentlyContinue).SystemStartOptions",
        "Check 'test-signing' ($opts -match 'TESTSIGNING') \"boot options:$opts\" 'run bcdedit /set testsigning on as administrator on the VM, then restart it'",
        "$secureBoot = $false",
        "try { $secureBoot = [bool](Confirm-SecureBootUEFI) } catch { $secureBoot = $false }",
        "Check 'secure-boot' (-not $secureBoot) $(if ($secureBoot) { 'on' } else { 'off (or not UEFI)' }) 'turn Secure Boot off in the VM firmware (Hyper-V: Set-VMFirmware -VMName <vm> -EnableSecureBoot Off; QEMU: OVMF without Secure Boot): test-signed drivers do not load with it on'",
        &format!("$root = {}", win_path(&s.remote_dir)),
        "$drive = Split-Path -Qualifier $root",
        "$free = (Get-PSDrive -Name $drive.TrimEnd(':')).Free",
        &format!(
            "Check 'free-space' ($free -ge {}) (\"{{0:N0}} MB free on $drive\" -f ($free / 1048576)) \"free at least {MIN_FREE_MB} MB on $drive, or set remote_dir to another drive\"",
            MIN_FREE_MB * 1_048_576
        ),
        &devgen_check,
        "Write-Output ('xtask-boot: ' + (Get-CimInstance Win32_OperatingSystem).LastBootUpTime.ToString('o'))",
        "if ($state.fail -gt 0) { throw \"$($state.fail) preflight check(s) failed\" }",
        if create_root {
            "New-Item -ItemType Directory -Force -Path $root | Out-Null"
        } else {
            ""
        },
    ]);
    RemoteStep {
        name: "preflight",
        what: "administrator, test signing, Secure Boot, free space, devgen".to_owned(),
        body,
    }
}

/// Creates the remote directory; this run's folder must not exist yet.
pub fn prepare_step(s: &DeploySettings, job: &Job) -> RemoteStep {
    RemoteStep {
        name: "prepare",
        what: format!("create {} on the VM", s.remote_dir),
        body: lines(&[
            &format!("$root = {}", win_path(&s.remote_dir)),
            &format!("$pkg = {}", win_path(&job.remote_pkg)),
            "New-Item -ItemType Directory -Force -Path $root | Out-Null",
            "if (Test-Path -LiteralPath $pkg) { throw \"$pkg already exists: another run with the same id?\" }",
            "Write-Output \"ready: $root\"",
        ]),
    }
}

/// The steps after the copy, up to the install: trust, device, install.
pub fn install_steps(s: &DeploySettings, job: &Job) -> Vec<RemoteStep> {
    let pkg = format!("$pkg = {}", win_path(&job.remote_pkg));
    let hwid = format!("$hwid = {}", ps::quote(&s.hardware_id));
    let devgen = if job.devgen_copied {
        "$devgen = Join-Path $pkg 'devgen.exe'".to_owned()
    } else {
        format!("$devgen = {}", ps::quote(&job.devgen))
    };
    vec![
        RemoteStep {
            name: "trust-cert",
            what: format!(
                "import {} into LocalMachine\\Root and LocalMachine\\TrustedPublisher",
                job.cer_name
            ),
            body: lines(&[
                &pkg,
                &format!("$cer = Join-Path $pkg {}", ps::quote(&job.cer_name)),
                r"Import-Certificate -FilePath $cer -CertStoreLocation Cert:\LocalMachine\Root | Out-Null",
                r"Import-Certificate -FilePath $cer -CertStoreLocation Cert:\LocalMachine\TrustedPublisher | Out-Null",
                r#"Write-Output "imported $cer into LocalMachine\Root and LocalMachine\TrustedPublisher""#,
            ]),
        },
        RemoteStep {
            name: "create-device",
            what: format!(
                "create the root-enumerated device {} (devgen) unless one is present",
                s.hardware_id
            ),
            body: lines(&[
                &pkg,
                &hwid,
                // -PresentOnly: a phantom (removed, not present) device with
                // the ID must not stop the creation of a real one.
                "$existing = @(Get-PnpDevice -PresentOnly -ErrorAction SilentlyContinue | Where-Object { $_.HardwareID -contains $hwid })",
                "if ($existing.Count -gt 0) {",
                "    Write-Output \"device present: $($existing[0].InstanceId)\"",
                "} else {",
                &format!("    {devgen}"),
                &format!(
                    "    if (-not (Get-Command $devgen -ErrorAction SilentlyContinue)) {{ throw (\"$devgen not found on the VM: \" + {}) }}",
                    ps::quote(DEVGEN_HINT_SHORT)
                ),
                "    $out = & $devgen /add /bus ROOT /hardwareid $hwid | Out-String",
                "    $code = $LASTEXITCODE",
                "    Write-Output $out",
                "    if ($code -ne 0) { throw \"devgen /add failed with exit code $code (its output is above)\" }",
                "}",
            ]),
        },
        RemoteStep {
            name: "install-driver",
            what: format!("pnputil /add-driver {}.inf /install", job.lib),
            body: lines(&[
                &pkg,
                &format!("$inf = Join-Path $pkg {}", ps::quote(&format!("{}.inf", job.lib))),
                "$out = & pnputil.exe /add-driver $inf /install | Out-String",
                "$code = $LASTEXITCODE",
                "Write-Output $out",
                "$published = [regex]::Match($out, 'oem[0-9]+\\.inf', 'IgnoreCase')",
                "if ($published.Success) { Write-Output ('xtask-published: ' + $published.Value) }",
                "if ($code -eq 3010) { Write-Output 'xtask-reboot-required' }",
                &format!(
                    "elseif ($code -eq 259) {{ throw 'pnputil /add-driver installed nothing (exit 259): the device already runs this driver or a newer one (same or higher DriverVer than {}), or no present device matches the INF. Package again (each build gets a newer DriverVer), or run cargo xtask undeploy first' }}",
                    job.version
                ),
                "elseif ($code -ne 0) { throw \"pnputil /add-driver failed with exit code $code (its output is above): is test signing on and the certificate trusted?\" }",
                "if (-not $published.Success) { throw 'pnputil did not name the oemNN.inf it published (its output is above)' }",
            ]),
        },
    ]
}

/// Checks that every present device with the hardware ID is started, bound
/// to `published_expr` (a PowerShell expression giving the `oemNN.inf`) and
/// runs the expected DriverVer version.
pub fn verify_step(s: &DeploySettings, job: &Job, published_expr: &str) -> RemoteStep {
    RemoteStep {
        name: "verify",
        what: format!(
            "{} runs the INF pnputil published, version {}",
            s.hardware_id, job.version
        ),
        body: lines(&[
            &format!("$hwid = {}", ps::quote(&s.hardware_id)),
            &format!("$published = {published_expr}"),
            &format!("$expected = {}", ps::quote(&job.version)),
            // PnP starts the device asynchronously.
            "$deadline = (Get-Date).AddSeconds(60)",
            "do {",
            "    $devs = @(Get-PnpDevice -PresentOnly -ErrorAction SilentlyContinue | Where-Object { $_.HardwareID -contains $hwid })",
            "    $ready = @($devs | Where-Object { $_.Status -eq 'OK' })",
            "    if ($devs.Count -gt 0 -and $ready.Count -eq $devs.Count) { break }",
            "    Start-Sleep -Seconds 2",
            "} while ((Get-Date) -lt $deadline)",
            "if ($devs.Count -eq 0) { throw \"no present device with hardware ID $hwid\" }",
            "$bad = @()",
            "foreach ($d in $devs) {",
            "    $inf = (Get-PnpDeviceProperty -InstanceId $d.InstanceId -KeyName 'DEVPKEY_Device_DriverInfPath').Data",
            "    $ver = (Get-PnpDeviceProperty -InstanceId $d.InstanceId -KeyName 'DEVPKEY_Device_DriverVersion').Data",
            "    Write-Output ('xtask-device: {0} | status {1} | problem {2} | inf {3} | version {4}' -f $d.InstanceId, $d.Status, $d.Problem, $inf, $ver)",
            "    if ($d.Status -ne 'OK') { $bad += \"$($d.InstanceId) is not started (status $($d.Status), problem code $($d.Problem); 14 means a restart is needed)\" }",
            "    elseif ($inf -ne $published) { $bad += \"$($d.InstanceId) uses $inf, not $published that pnputil just published\" }",
            "    elseif ($ver -ne $expected) { $bad += \"$($d.InstanceId) runs driver version $ver, not $expected\" }",
            "}",
            "if ($bad.Count -gt 0) { throw ($bad -join '; ') }",
            "Write-Output \"verified: $($devs.Count) device(s) on $published, driver version $expected\"",
        ]),
    }
}

/// Restarts the VM.
pub fn reboot_step() -> RemoteStep {
    RemoteStep {
        name: "reboot",
        what: "restart the VM".to_owned(),
        body: lines(&["Write-Output 'restarting'", "Restart-Computer -Force"]),
    }
}

/// Prints the VM's last boot time.
pub fn boot_step() -> RemoteStep {
    RemoteStep {
        name: "boot",
        what: "is the VM up again?".to_owned(),
        body: lines(&[
            "Write-Output ('xtask-boot: ' + (Get-CimInstance Win32_OperatingSystem).LastBootUpTime.ToString('o'))",
        ]),
    }
}

/// `first` then `second` in one remote call (one SSH connection less),
/// named after `first`.
pub fn joined(first: RemoteStep, second: RemoteStep) -> RemoteStep {
    RemoteStep {
        name: first.name,
        what: format!("{}; {}", first.what, second.what),
        body: first.body + &second.body,
    }
}

/// Removes this run's folder on the VM (only this run's).
pub fn cleanup_step(job: &Job) -> RemoteStep {
    RemoteStep {
        name: "cleanup",
        what: format!("remove {} on the VM", job.remote_pkg),
        body: lines(&[
            &format!("$pkg = {}", win_path(&job.remote_pkg)),
            "if (Test-Path -LiteralPath $pkg) { Remove-Item -LiteralPath $pkg -Recurse -Force }",
            "Write-Output \"removed $pkg\"",
        ]),
    }
}

/// Prints the failure logs, each section after `### xtask-log: <file>`:
/// the last section of setupapi.dev.log, `pnputil /enum-devices /drivers`
/// for the hardware ID and the latest CodeIntegrity events. Never fails.
pub fn logs_step(s: &DeploySettings) -> RemoteStep {
    RemoteStep {
        name: "logs",
        what: "fetch setupapi.dev.log, pnputil /enum-devices and CodeIntegrity events".to_owned(),
        body: lines(&[
            "$ErrorActionPreference = 'Continue'",
            &format!("$hwid = {}", ps::quote(&s.hardware_id)),
            "Write-Output '### xtask-log: setupapi.dev.log'",
            "$log = Join-Path $env:windir 'INF\\setupapi.dev.log'",
            "if (Test-Path -LiteralPath $log) {",
            "    $all = @(Get-Content -LiteralPath $log -Tail 4000)",
            "    $start = 0",
            "    for ($i = $all.Count - 1; $i -ge 0; $i--) { if ($all[$i].StartsWith('>>>  [')) { $start = $i; break } }",
            "    if ($all.Count -gt 0) { $all[$start..($all.Count - 1)] }",
            "} else { Write-Output \"$log not found\" }",
            "Write-Output '### xtask-log: pnputil-devices.txt'",
            "& pnputil.exe /enum-devices /deviceid $hwid /drivers",
            "if ($LASTEXITCODE -ne 0) { & pnputil.exe /enum-devices /drivers }",
            "Write-Output '### xtask-log: codeintegrity-events.txt'",
            "Get-WinEvent -LogName 'Microsoft-Windows-CodeIntegrity/Operational' -MaxEvents 30 -ErrorAction SilentlyContinue | Format-List TimeCreated, Id, LevelDisplayName, Message | Out-String -Width 250",
        ]),
    }
}

/// `undeploy`: devices (present or not), driver packages naming
/// `<lib>.cat`, this driver's run folders, optionally the certificate
/// (by SHA-1 thumbprint, else by the test certificate's subject).
pub fn undeploy_step(
    s: &DeploySettings,
    lib: &str,
    pkg_name: &str,
    cert: Option<&CertToRemove>,
) -> RemoteStep {
    let mut l: Vec<String> = vec![
        format!("$hwid = {}", ps::quote(&s.hardware_id)),
        format!("$cat = {}", ps::quote(&format!("{lib}.cat"))),
        "$removed = 0".into(),
        "foreach ($d in @(Get-PnpDevice -ErrorAction SilentlyContinue | Where-Object { $_.HardwareID -contains $hwid })) {".into(),
        "    $out = & pnputil.exe /remove-device $d.InstanceId | Out-String".into(),
        "    if ($LASTEXITCODE -ne 0) { throw \"pnputil /remove-device $($d.InstanceId) failed with exit code $($LASTEXITCODE): $out\" }".into(),
        "    Write-Output \"removed device $($d.InstanceId)\"; $removed++".into(),
        "}".into(),
        "$pattern = '^\\s*CatalogFile\\s*=\\s*' + [regex]::Escape($cat) + '\\s*(;.*)?$'".into(),
        "foreach ($f in @(Get-ChildItem -Path (Join-Path $env:windir 'INF') -Filter 'oem*.inf' -ErrorAction SilentlyContinue)) {".into(),
        "    if (Select-String -LiteralPath $f.FullName -Pattern $pattern -Quiet) {".into(),
        "        $out = & pnputil.exe /delete-driver $f.Name /uninstall /force | Out-String".into(),
        "        if ($LASTEXITCODE -ne 0) { throw \"pnputil /delete-driver $($f.Name) failed with exit code $($LASTEXITCODE): $out\" }".into(),
        "        Write-Output \"deleted driver package $($f.Name)\"; $removed++".into(),
        "    }".into(),
        "}".into(),
        format!("$root = {}", win_path(&s.remote_dir)),
        format!(
            "foreach ($d in @(Get-ChildItem -LiteralPath $root -Directory -Filter {} -ErrorAction SilentlyContinue)) {{ Remove-Item -LiteralPath $d.FullName -Recurse -Force; Write-Output \"removed $($d.FullName)\"; $removed++ }}",
            ps::quote(&format!("{pkg_name}-*"))
        ),
    ];
    if let Some(c) = cert {
        let filter = match &c.thumbprint {
            Some(t) => format!("$_.Thumbprint -eq {}", ps::quote(t)),
            None => format!("$_.Subject -eq {}", ps::quote(&c.subject)),
        };
        l.push(r"foreach ($store in @('Cert:\LocalMachine\Root', 'Cert:\LocalMachine\TrustedPublisher')) {".into());
        l.push(format!(
            "    foreach ($c in @(Get-ChildItem -Path $store | Where-Object {{ {filter} }})) {{ Remove-Item -LiteralPath $c.PSPath -Force; Write-Output \"removed certificate $($c.Thumbprint) from $store\"; $removed++ }}"
        ));
        l.push("}".into());
    }
    l.push(
        "if ($removed -eq 0) { Write-Output 'nothing to remove: the driver is not deployed' }"
            .into(),
    );
    let refs: Vec<&str> = l.iter().map(String::as_str).collect();
    RemoteStep {
        name: "undeploy",
        what: format!(
            "remove devices {}, driver packages of {lib}.cat{}",
            s.hardware_id,
            if cert.is_some() {
                ", the test certificate"
            } else {
                ""
            }
        ),
        body: lines(&refs),
    }
}

/// Which certificate `undeploy --remove-cert` removes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertToRemove {
    /// SHA-1 thumbprint (upper-case hex) of the certificate file, if found.
    pub thumbprint: Option<String>,
    /// Subject to match when there is no file.
    pub subject: String,
}

/// The SHA-1 thumbprint of a DER or PEM certificate file.
pub fn cert_thumbprint(bytes: &[u8]) -> Option<String> {
    use sha1::{Digest, Sha1};
    let der = if bytes.starts_with(b"-----BEGIN") {
        let text = std::str::from_utf8(bytes).ok()?;
        let b64: String = text
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<Vec<_>>()
            .concat();
        ps::base64_decode(b64.trim())?
    } else {
        bytes.to_vec()
    };
    if der.first() != Some(&0x30) {
        return None;
    }
    Some(
        Sha1::digest(&der)
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect(),
    )
}

/// The local command that runs the whole deployment through PowerShell
/// Direct: one session (one credential prompt at most), `Copy-Item
/// -ToSession` for the files (no Guest Service Interface needed), every
/// step's body through `Invoke-Command -Session`, restart and reconnect
/// when needed, the failure logs on error. The output carries `### xtask-step:`
/// lines and the step markers, parsed like the SSH steps' output.
#[allow(clippy::too_many_arguments)]
pub fn powershell_direct_script(
    vm: &str,
    user: &str,
    s: &DeploySettings,
    job: &Job,
    local_pkg: &Path,
    reboot: bool,
    reboot_timeout: u64,
    check_only: bool,
) -> String {
    let block = |step: &RemoteStep| -> String {
        let mut b = String::new();
        for l in step.body.lines() {
            b.push_str("        ");
            b.push_str(l);
            b.push('\n');
        }
        b
    };
    let limit = s.step_timeout.as_secs();
    // Each step is a job in the session, so a frozen VM fails the step after
    // the step timeout instead of hanging the deploy.
    let run = |step: &RemoteStep, capture: bool| -> String {
        let mut r = format!(
            "    $step = '{n}'\n    Write-Output '### xtask-step: {n}'\n    $job = Invoke-Command -Session $s -AsJob -ScriptBlock {{\n",
            n = step.name
        );
        r += "        $ErrorActionPreference = 'Stop'\n        $ProgressPreference = 'SilentlyContinue'\n";
        r += &block(step);
        r += "    }\n";
        r += &format!(
            "    if (-not (Wait-Job -Job $job -Timeout {limit})) {{ Stop-Job -Job $job; throw \"step {n} did not finish within {limit} s: the VM may be frozen or have bugchecked (look at its console; raise --step-timeout if it is just slow)\" }}\n",
            n = step.name
        );
        r += if capture {
            "    $out = @(Receive-Job -Job $job)\n    $out\n"
        } else {
            "    Receive-Job -Job $job\n"
        };
        r
    };
    let mut script = lines(&[
        "$ErrorActionPreference = 'Stop'",
        "$ProgressPreference = 'SilentlyContinue'",
        &format!("$vm = {}", ps::quote(vm)),
        &format!(
            "$cred = if ($env:XTASK_VM_PASSWORD) {{ New-Object System.Management.Automation.PSCredential({u}, (ConvertTo-SecureString $env:XTASK_VM_PASSWORD -AsPlainText -Force)) }} else {{ Get-Credential -UserName {u} -Message ('Administrator of VM ' + $vm) }}",
            u = ps::quote(user)
        ),
        &format!("$pkgLocal = {}", ps::quote(&local_pkg.to_string_lossy())),
        &format!("$pkg = {}", win_path(&job.remote_pkg)),
        &format!("$reboot = {}", if reboot { "$true" } else { "$false" }),
        "$step = 'connect'",
        "$s = New-PSSession -VMName $vm -Credential $cred",
        "try {",
    ]);
    script += &run(&preflight_step(s, job.devgen_copied, false), false);
    if check_only {
        script += "    Write-Output 'ready: every preflight check passed'\n";
    } else {
        script += &pd_install(s, job, &run, reboot_timeout);
    }
    script += &lines(&[
        "} catch {",
        "    Write-Output ('xtask-error: ' + $_.Exception.Message)",
        "    Write-Output ('xtask-failed-step: ' + $step)",
        "    if ($null -ne $s -and $step -ne 'preflight' -and $step -ne 'connect') {",
        "        Write-Output '### xtask-step: logs'",
        "        Invoke-Command -Session $s -ErrorAction Continue -ScriptBlock {",
    ]);
    script += &block(&logs_step(s)).replace("        ", "            ");
    script += &lines(&[
        "        }",
        "    }",
        "    exit 1",
        "} finally {",
        "    if ($null -ne $s) { Remove-PSSession $s -ErrorAction SilentlyContinue }",
        "}",
    ]);
    script
}

/// The PowerShell Direct steps after the preflight.
fn pd_install(
    s: &DeploySettings,
    job: &Job,
    run: &dyn Fn(&RemoteStep, bool) -> String,
    reboot_timeout: u64,
) -> String {
    let mut script = String::new();
    script += &run(&prepare_step(s, job), false);
    script += "    $step = 'copy'\n    Write-Output '### xtask-step: copy'\n";
    script += "    Invoke-Command -Session $s -ScriptBlock { New-Item -ItemType Directory -Force -Path $using:pkg | Out-Null }\n";
    script += "    Copy-Item -ToSession $s -Path (Join-Path $pkgLocal '*') -Destination $pkg -Recurse -Force\n";
    if let Some(d) = &s.devgen_local {
        script += &format!(
            "    Copy-Item -ToSession $s -Path {} -Destination (Join-Path $pkg 'devgen.exe') -Force\n",
            ps::quote(&d.to_string_lossy())
        );
    }
    let steps = install_steps(s, job);
    script += &run(&steps[0], false);
    script += &run(&steps[1], false);
    script += &run(&steps[2], true);
    script += &lines(&[
        "    $published = (@($out | Where-Object { \"$_\" -like 'xtask-published: *' }) | Select-Object -First 1) -replace '^xtask-published: ', ''",
        "    if (@($out | Where-Object { \"$_\" -eq 'xtask-reboot-required' }).Count -gt 0) {",
        "        if (-not $reboot) { throw 'reboot-pending' }",
        "        $step = 'reboot'",
        "        Write-Output '### xtask-step: reboot'",
        "        Invoke-Command -Session $s -ScriptBlock { Restart-Computer -Force }",
        "        Remove-PSSession $s",
        "        $s = $null",
        &format!("        $deadline = (Get-Date).AddSeconds({reboot_timeout})"),
        "        Start-Sleep -Seconds 10",
        "        while ($null -eq $s) {",
        "            try { $s = New-PSSession -VMName $vm -Credential $cred -ErrorAction Stop }",
        "            catch { if ((Get-Date) -gt $deadline) { throw \"VM $vm did not come back within the reboot timeout\" }; Start-Sleep -Seconds 5 }",
        "        }",
        "    }",
    ]);
    script += &run(&verify_step(s, job, "$using:published"), false);
    script += &run(&cleanup_step(job), false);
    script
}

/// How deploy reaches the VM.
enum Plan {
    Ssh(SshTarget),
    PowerShellDirect { vm: String, user: String },
}

fn ssh_hint(t: &SshTarget) -> String {
    format!(
        "\n  hint: could not reach or log in to {}:{} over SSH: check --host/--port, the VM's host key (--known-hosts), that the VM's OpenSSH server runs (Start-Service sshd), and that the public key of {} is in the VM's authorized_keys (C:\\ProgramData\\ssh\\administrators_authorized_keys for administrators)",
        t.destination(),
        t.port,
        t.key.as_ref().map_or("your key".to_owned(), |k| k.display().to_string())
    )
}

/// The `xtask-error:` lines of a step's output, as the reason of a failure.
fn reason_of(stdout: &str) -> String {
    let r: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.trim_end().strip_prefix("xtask-error: "))
        .collect();
    if r.is_empty() {
        String::new()
    } else {
        format!("{}\n  ", r.join("\n  "))
    }
}

fn step_error(plan: &Plan, step: &'static str, source: ToolError) -> DeployError {
    let hint = match (&source, plan) {
        (ToolError::TimedOut(_), _) => format!(
            "\n  hint: the VM did not answer within the step timeout: it may be frozen or have bugchecked (look at its console); raise --step-timeout if {step} is just slow"
        ),
        (e, Plan::Ssh(t)) if e.exit_code() == Some(255) => ssh_hint(t),
        (ToolError::NotFound { .. }, _) => String::new(),
        (_, Plan::Ssh(_)) if step == "copy" => {
            "\n  hint: scp could not write the files; check remote_dir and free space on the VM"
                .to_owned()
        }
        _ => "\n  hint: the command failed on the VM; its output is above".to_owned(),
    };
    DeployError::Step {
        step,
        reason: reason_of(source.stdout()),
        source,
        hint,
    }
}

fn print_output(ctx: &Ctx<'_>, stdout: &str) {
    for line in stdout.lines().filter(|l| !l.trim().is_empty()) {
        ctx.note(format!("| {}", line.trim_end()));
    }
}

/// Splits `### xtask-log: <file>` sections out of `stdout`.
pub fn log_sections(stdout: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in stdout.lines() {
        if let Some(name) = line.trim_end().strip_prefix("### xtask-log: ") {
            out.push((name.trim().to_owned(), String::new()));
        } else if let Some((_, text)) = out.last_mut() {
            text.push_str(line.trim_end_matches('\r'));
            text.push('\n');
        }
    }
    out
}

/// Values of `<prefix>` lines.
fn markers<'a>(stdout: &'a str, prefix: &str) -> Vec<&'a str> {
    stdout
        .lines()
        .filter_map(|l| l.trim_end().strip_prefix(prefix))
        .map(str::trim)
        .collect()
}

/// One connection to the VM and the settings of this run.
struct Remote<'a, 'r> {
    ctx: &'a Ctx<'r>,
    plan: Plan,
    s: DeploySettings,
    logs_dir: PathBuf,
}

impl Remote<'_, '_> {
    fn ssh(&self) -> Option<&SshTarget> {
        match &self.plan {
            Plan::Ssh(t) => Some(t),
            Plan::PowerShellDirect { .. } => None,
        }
    }

    fn command(&self, t: &SshTarget, step: &RemoteStep, limit: Duration) -> Cmd {
        t.ssh(&ps::remote_command_line(
            &self.s.remote_powershell,
            &wrap_ssh(step),
        ))
        .timeout(limit)
    }

    /// Runs one step over SSH, printing its output; the output on success.
    fn run(&self, step: &RemoteStep) -> Result<String, DeployError> {
        self.run_limited(step, self.s.step_timeout)
    }

    fn run_limited(&self, step: &RemoteStep, limit: Duration) -> Result<String, DeployError> {
        let ctx = self.ctx;
        ctx.step("deploy", format!("{}: {}", step.name, step.what));
        let Some(t) = self.ssh() else {
            unreachable!("SSH steps run only with the SSH plan")
        };
        let res = ctx.exec(self.command(t, step, limit));
        if ctx.dry_run() {
            for line in wrap_ssh(step).lines() {
                ctx.note(format!("  script> {line}"));
            }
        }
        match res {
            Ok(out) => {
                print_output(ctx, &out.stdout);
                Ok(out.stdout)
            }
            Err(e) => {
                print_output(ctx, e.stdout());
                Err(step_error(&self.plan, step.name, e))
            }
        }
    }

    /// Runs a step that changes the VM; on failure fetches the logs and
    /// names where they went.
    fn run_logged(&self, step: &RemoteStep) -> Result<String, DeployError> {
        self.run(step).map_err(|e| self.with_logs(e))
    }

    fn with_logs(&self, mut e: DeployError) -> DeployError {
        if !matches!(e, DeployError::Step { .. }) {
            return e;
        }
        let unreachable = match &e {
            DeployError::Step { source, .. } => {
                matches!(source, ToolError::TimedOut(_)) || source.exit_code() == Some(255)
            }
            _ => false,
        };
        let where_ = if unreachable {
            "\n  logs: not fetched (the VM does not answer)".to_owned()
        } else {
            match self.fetch_logs(&e) {
                Ok(dir) => format!("\n  logs: {}", dir.display()),
                Err(why) => format!("\n  logs: could not be fetched: {why}"),
            }
        };
        if let DeployError::Step { hint, .. } = &mut e {
            hint.push_str(&where_);
        }
        e
    }

    fn fetch_logs(&self, failure: &DeployError) -> Result<PathBuf, String> {
        let step = logs_step(&self.s);
        let out = self.run(&step).map_err(|e| e.to_string())?;
        save_logs(self.ctx, &self.logs_dir, &out, &failure.to_string())
    }
}

/// Writes the `### xtask-log:` sections of `stdout` and the failure itself
/// into `dir`; returns `dir`.
fn save_logs(ctx: &Ctx<'_>, dir: &Path, stdout: &str, failure: &str) -> Result<PathBuf, String> {
    if ctx.dry_run() {
        return Ok(dir.to_path_buf());
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).map_err(|e| format!("cannot write {}: {e}", p.display()))
    };
    write("failure.txt", &format!("{failure}\n"))?;
    for (name, text) in log_sections(stdout) {
        // Only plain file names from the VM.
        if name.contains(['/', '\\']) || name.starts_with('.') || name.is_empty() {
            continue;
        }
        write(&name, &text)?;
    }
    ctx.step(
        "deploy",
        format!("logs of the failure saved in {}", dir.display()),
    );
    Ok(dir.to_path_buf())
}

fn make_plan(ctx: &Ctx<'_>, s: &DeploySettings) -> Result<Plan, DeployError> {
    let plan = match s.transport {
        Transport::Ssh => Plan::Ssh(SshTarget {
            host: s.host.clone().ok_or(DeployError::NoHost)?,
            user: s.user.clone(),
            port: s.port,
            key: s.key.clone(),
            known_hosts: s.known_hosts.clone(),
        }),
        Transport::PowershellDirect => {
            let vm = s.vm_name.clone().ok_or(DeployError::NoVmName)?;
            if !ctx.host().is_windows() {
                if !ctx.dry_run() {
                    return Err(DeployError::PowerShellDirectNeedsWindows(ctx.host().name()));
                }
                ctx.note(format!(
                    "note: PowerShell Direct runs only on a Windows Hyper-V host; printing the plan on {}",
                    ctx.host().name()
                ));
            }
            Plan::PowerShellDirect {
                vm,
                user: s.user.clone().unwrap_or_else(|| "Administrator".to_owned()),
            }
        }
    };
    if let Plan::Ssh(_) = &plan {
        for tool in ["ssh", "scp"] {
            ctx.require_tool(tool)
                .map_err(|e| step_error(&plan, "preflight", e))?;
        }
    }
    Ok(plan)
}

/// Reads the preflight's `xtask-check:` lines; an error listing the failed
/// ones (with what to do) if any failed.
fn check_preflight(ctx: &Ctx<'_>, stdout: &str) -> Result<(), DeployError> {
    let checks = markers(stdout, "xtask-check: ");
    let failed: Vec<String> = checks
        .iter()
        .filter(|c| c.contains(" FAIL: "))
        .map(|c| format!("  - {c}"))
        .collect();
    if !failed.is_empty() {
        let mut failures = failed.join("\n");
        if failed.iter().any(|f| f.starts_with("  - devgen FAIL")) {
            failures.push_str(&format!("\n    devgen: {DEVGEN_HINT}"));
        }
        return Err(DeployError::Preflight { failures });
    }
    if !ctx.dry_run() {
        ctx.note(format!("preflight: {} checks passed", checks.len()));
    }
    Ok(())
}

/// The DriverVer version in the package's INF.
fn package_version(ctx: &Ctx<'_>, inf_path: &Path) -> Result<String, DeployError> {
    let text = std::fs::read(inf_path)
        .ok()
        .and_then(|b| inf::decode(&b).ok())
        .map(|(t, _)| t);
    match text.as_deref().and_then(inf::driver_ver_of) {
        Some((_, v)) => Ok(v),
        None if ctx.dry_run() => Ok("<DriverVer version of the package>".to_owned()),
        None => Err(DeployError::NoDriverVer(inf_path.to_path_buf())),
    }
}

/// Runs `deploy`.
pub fn deploy(ctx: &Ctx<'_>, layout: &Layout, args: &DeployArgs) -> Result<(), DeployError> {
    let (cfg, cfg_path) = config::load(args.vm.config.as_deref(), &layout.root.join("xtask.toml"))?;
    if let Some(p) = &cfg_path {
        ctx.step("deploy", format!("settings from {}", p.display()));
    }
    let s = settings(&args.vm, &cfg.deploy)?;
    if let Some(d) = &s.devgen_local {
        if !d.is_file() && !ctx.dry_run() {
            return Err(DeployError::DevgenLocalMissing(d.clone()));
        }
    }
    let plan = make_plan(ctx, &s)?;
    let run = run_id();
    let remote = Remote {
        ctx,
        plan,
        logs_dir: layout.target_dir.join("xtask-deploy-logs").join(&run),
        s,
    };
    let s = &remote.s;
    let reboot_timeout = args.reboot_timeout.unwrap_or(DEFAULT_REBOOT_TIMEOUT);

    // 1. Preflight first: a VM that cannot take the driver fails before the build.
    let boot_before = if remote.ssh().is_some() {
        let out = match remote.run(&preflight_step(s, s.devgen_local.is_some(), !args.check)) {
            Ok(out) => out,
            // Failed checks: list them with what to do.
            Err(DeployError::Step { source, .. }) if source.stdout().contains(" FAIL: ") => {
                check_preflight(ctx, source.stdout())?;
                source.stdout().to_owned()
            }
            Err(e) => return Err(e),
        };
        check_preflight(ctx, &out)?;
        markers(&out, "xtask-boot: ")
            .first()
            .map(|b| (*b).to_owned())
    } else {
        None
    };
    if args.check {
        if let Plan::PowerShellDirect { vm, user } = &remote.plan {
            let job = Job {
                lib: String::new(),
                cer_name: String::new(),
                remote_pkg: remote_run_dir(s, "check", &run),
                version: String::new(),
                devgen: s.devgen.clone(),
                devgen_copied: s.devgen_local.is_some(),
            };
            return deploy_powershell_direct(
                &remote,
                vm,
                user,
                &job,
                Path::new("."),
                args,
                reboot_timeout,
            );
        }
        ctx.step("deploy", "check: the VM is ready for deployment");
        return Ok(());
    }

    // 2. The signed package.
    let (pkg_dir, lib, cer_name) = if args.no_package {
        let driver = DriverCrate::load(layout, &args.target.driver_package)?;
        let dir = package_dir(layout, &args.target, &driver);
        ctx.step(
            "deploy",
            format!("using existing package {}", dir.display()),
        );
        let cer = existing_cer(ctx, &dir, args.cert.cer.as_deref())?;
        (dir, driver.lib_name, cer)
    } else {
        let pkg = package::package(ctx, layout, &args.target, &args.build)?;
        let signed = sign::sign(ctx, layout, &args.target, &args.cert)?;
        (pkg.dir, pkg.driver.lib_name, signed.cer_name)
    };
    let pkg_name = pkg_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let job = Job {
        version: package_version(ctx, &pkg_dir.join(format!("{lib}.inf")))?,
        remote_pkg: remote_run_dir(s, &pkg_name, &run),
        devgen: s.devgen.clone(),
        devgen_copied: s.devgen_local.is_some(),
        lib: lib.clone(),
        cer_name,
    };

    let Some(t) = remote.ssh() else {
        let Plan::PowerShellDirect { vm, user } = &remote.plan else {
            unreachable!()
        };
        return deploy_powershell_direct(&remote, vm, user, &job, &pkg_dir, args, reboot_timeout);
    };
    let target = format!("{}:{}", t.destination(), job.remote_pkg);
    ctx.step("deploy", format!("{} -> {target}", pkg_dir.display()));

    // 3. Copy into this run's own folder (the preflight made remote_dir).
    ctx.step(
        "deploy",
        format!("copy: package and certificate -> {target}"),
    );
    ctx.exec(t.scp_dir(&pkg_dir, &job.remote_pkg).timeout(s.step_timeout))
        .map_err(|e| step_error(&remote.plan, "copy", e))?;
    if let Some(d) = &s.devgen_local {
        ctx.step(
            "deploy",
            format!("copy: {} -> {target}/devgen.exe", d.display()),
        );
        ctx.exec(
            t.scp_dir(d, &format!("{}/devgen.exe", job.remote_pkg))
                .timeout(s.step_timeout),
        )
        .map_err(|e| step_error(&remote.plan, "copy", e))?;
    }

    // 4. Trust, device, install.
    let mut published = String::new();
    let mut reboot_required = false;
    for step in install_steps(s, &job) {
        let out = remote.run_logged(&step)?;
        if step.name == "install-driver" {
            published = markers(&out, "xtask-published: ")
                .first()
                .map(|p| (*p).to_owned())
                .unwrap_or_default();
            reboot_required = markers(&out, "xtask-reboot-required")
                .iter()
                .any(|m| m.is_empty());
        }
    }
    if ctx.dry_run() {
        published = "<oemNN.inf from install-driver>".to_owned();
    }

    // 5. Restart if pnputil asked for it.
    if reboot_required {
        ctx.step(
            "deploy",
            "install-driver: Windows needs a restart to finish (pnputil exit 3010)",
        );
        if !args.reboot {
            return Err(DeployError::RebootPending);
        }
        reboot(&remote, boot_before.as_deref(), reboot_timeout)?;
    } else if ctx.dry_run() && args.reboot {
        ctx.note(
            "(with --reboot: if pnputil exits 3010, restart the VM and wait for it to come back)",
        );
    }

    // 6. Verify, clean up.
    let verify = verify_step(s, &job, &ps::quote(&published));
    remote.run_logged(&joined(verify, cleanup_step(&job)))?;
    if ctx.dry_run() {
        ctx.step("deploy", "dry run: nothing was copied or installed");
        return Ok(());
    }
    ctx.step(
        "deploy",
        format!(
            "done: {lib} {} installed on {} as {published} and running",
            job.version,
            t.destination()
        ),
    );
    Ok(())
}

/// Restarts the VM and waits until it answers with a new boot time.
fn reboot(
    remote: &Remote<'_, '_>,
    boot_before: Option<&str>,
    timeout: u64,
) -> Result<(), DeployError> {
    let ctx = remote.ctx;
    // The connection drops while Windows shuts down: any outcome is fine.
    let _ = remote.run_limited(&reboot_step(), Duration::from_secs(30));
    if ctx.dry_run() {
        return Ok(());
    }
    let deadline = Instant::now() + Duration::from_secs(timeout);
    let probe = Duration::from_secs(20).min(remote.s.step_timeout);
    loop {
        std::thread::sleep(Duration::from_secs(1));
        if let Ok(out) = remote.run_limited(&boot_step(), probe) {
            let boot = markers(&out, "xtask-boot: ")
                .first()
                .map(|b| (*b).to_owned());
            if boot.is_some() && boot.as_deref() != boot_before {
                ctx.step("deploy", "reboot: the VM is back");
                return Ok(());
            }
        }
        if Instant::now() >= deadline {
            return Err(DeployError::RebootTimeout(timeout));
        }
    }
}

fn deploy_powershell_direct(
    remote: &Remote<'_, '_>,
    vm: &str,
    user: &str,
    job: &Job,
    pkg_dir: &Path,
    args: &DeployArgs,
    reboot_timeout: u64,
) -> Result<(), DeployError> {
    let ctx = remote.ctx;
    let s = &remote.s;
    ctx.step(
        "deploy",
        format!(
            "PowerShell Direct: one session to VM {vm}: preflight, prepare, copy, trust-cert, create-device, install-driver, verify, cleanup -> {}",
            job.remote_pkg
        ),
    );
    let script = powershell_direct_script(
        vm,
        user,
        s,
        job,
        pkg_dir,
        args.reboot,
        reboot_timeout,
        args.check,
    );
    // One process for every step: its limit covers them all and a restart.
    let limit =
        s.step_timeout * 8 + Duration::from_secs(if args.reboot { reboot_timeout } else { 0 });
    // Too long for a command line (-EncodedCommand would pass 32767
    // characters): run it from a file, kept with this run's logs. UTF-8 with
    // a BOM, or Windows PowerShell reads it as ANSI.
    let file = remote.logs_dir.join("powershell-direct.ps1");
    ctx.create_dir_all(&remote.logs_dir)?;
    let mut bytes = vec![0xEF, 0xBB, 0xBF];
    bytes.extend_from_slice(script.as_bytes());
    ctx.write(&file, &bytes)?;
    let cmd = Cmd::new("powershell.exe")
        .args(["-NoProfile", "-ExecutionPolicy", "Bypass", "-File"])
        .arg_path(&file)
        .timeout(limit);
    let res = ctx.exec(cmd);
    if ctx.dry_run() {
        for line in script.lines() {
            ctx.note(format!("  script> {line}"));
        }
        return Ok(());
    }
    let stdout = match &res {
        Ok(out) => out.stdout.clone(),
        Err(e) => e.stdout().to_owned(),
    };
    for line in stdout.lines() {
        match line.trim_end().strip_prefix("### xtask-step: ") {
            Some(step) => ctx.step("deploy", step),
            None if line.trim().is_empty() => {}
            None => ctx.note(format!("| {}", line.trim_end())),
        }
    }
    match res {
        Ok(_) => {
            ctx.step(
                "deploy",
                format!(
                    "done: {} {} installed on VM {vm} and running",
                    job.lib, job.version
                ),
            );
            Ok(())
        }
        Err(e) => {
            let step = markers(&stdout, "xtask-failed-step: ")
                .last()
                .map(|s| (*s).to_owned());
            if markers(&stdout, "xtask-error: ").contains(&"reboot-pending") {
                return Err(DeployError::RebootPending);
            }
            let mut err = step_error(&remote.plan, "powershell-direct", e);
            let saved = save_logs(ctx, &remote.logs_dir, &stdout, &err.to_string());
            if let DeployError::Step { hint, reason, .. } = &mut err {
                if let Some(st) = step {
                    *reason = format!("(in step {st}) {reason}");
                }
                if let Ok(d) = saved {
                    if !log_sections(&stdout).is_empty() {
                        hint.push_str(&format!("\n  logs: {}", d.display()));
                    }
                }
            }
            Err(err)
        }
    }
}

/// Runs `undeploy`.
pub fn undeploy(ctx: &Ctx<'_>, layout: &Layout, args: &UndeployArgs) -> Result<(), DeployError> {
    let (cfg, cfg_path) = config::load(args.vm.config.as_deref(), &layout.root.join("xtask.toml"))?;
    if let Some(p) = &cfg_path {
        ctx.step("undeploy", format!("settings from {}", p.display()));
    }
    let s = settings(&args.vm, &cfg.deploy)?;
    let plan = make_plan(ctx, &s)?;
    let driver = DriverCrate::load(layout, &args.target.driver_package)?;
    let pkg_dir = package_dir(layout, &args.target, &driver);
    let pkg_name = format!("{}_package", driver.lib_name);
    let cert = args.remove_cert.then(|| {
        let file = args
            .cer
            .clone()
            .unwrap_or_else(|| layout.cert_dir().join(format!("{TEST_CERT_NAME}.cer")));
        let file = if file.is_file() {
            file
        } else {
            pkg_dir.join(format!("{TEST_CERT_NAME}.cer"))
        };
        CertToRemove {
            thumbprint: std::fs::read(&file).ok().and_then(|b| cert_thumbprint(&b)),
            subject: format!("CN={}", sign::TEST_CERT_SUBJECT),
        }
    });
    let step = undeploy_step(&s, &driver.lib_name, &pkg_name, cert.as_ref());
    let remote = Remote {
        ctx,
        plan,
        logs_dir: layout.target_dir.join("xtask-deploy-logs").join(run_id()),
        s,
    };
    match &remote.plan {
        Plan::Ssh(t) => {
            remote.run(&step)?;
            ctx.step(
                "undeploy",
                format!(
                    "done: nothing of {} left on {}",
                    driver.lib_name,
                    t.destination()
                ),
            );
        }
        Plan::PowerShellDirect { vm, user } => {
            let script = lines(&[
                "$ErrorActionPreference = 'Stop'",
                &format!(
                    "$cred = if ($env:XTASK_VM_PASSWORD) {{ New-Object System.Management.Automation.PSCredential({u}, (ConvertTo-SecureString $env:XTASK_VM_PASSWORD -AsPlainText -Force)) }} else {{ Get-Credential -UserName {u} -Message ('Administrator of VM ' + {v}) }}",
                    u = ps::quote(user),
                    v = ps::quote(vm)
                ),
                &format!("Invoke-Command -VMName {} -Credential $cred -ScriptBlock {{", ps::quote(vm)),
            ]) + &step.body
                + "}\n";
            ctx.step("undeploy", step.what.clone());
            let out = ctx
                .exec(ps::local_script(&script, true).timeout(remote.s.step_timeout))
                .map_err(|e| step_error(&remote.plan, "undeploy", e))?;
            if ctx.dry_run() {
                for line in script.lines() {
                    ctx.note(format!("  script> {line}"));
                }
            }
            print_output(ctx, &out.stdout);
            ctx.step(
                "undeploy",
                format!("done: nothing of {} left on VM {vm}", driver.lib_name),
            );
        }
    }
    Ok(())
}

/// Every script deploy and undeploy can send, by name, for checking (the
/// tests parse each with a PowerShell grammar).
pub fn all_scripts(s: &DeploySettings, job: &Job, local_pkg: &Path) -> Vec<(String, String)> {
    let mut steps = vec![
        preflight_step(s, false, false),
        preflight_step(s, true, true),
        prepare_step(s, job),
        joined(verify_step(s, job, "'oem1.inf'"), cleanup_step(job)),
    ];
    steps.extend(install_steps(s, job));
    steps.push(verify_step(s, job, "'oem7.inf'"));
    steps.extend([reboot_step(), boot_step(), cleanup_step(job), logs_step(s)]);
    let cert = CertToRemove {
        thumbprint: Some("00".repeat(20)),
        subject: "CN=x".into(),
    };
    steps.push(undeploy_step(s, &job.lib, "pkg", None));
    steps.push(undeploy_step(s, &job.lib, "pkg", Some(&cert)));
    let mut out: Vec<(String, String)> = steps
        .iter()
        .map(|st| (st.name.to_owned(), wrap_ssh(st)))
        .collect();
    for reboot in [false, true] {
        out.push((
            format!("powershell-direct (reboot {reboot})"),
            powershell_direct_script("vm", "admin", s, job, local_pkg, reboot, 600, false),
        ));
    }
    out.push((
        "powershell-direct (check)".to_owned(),
        powershell_direct_script("vm", "admin", s, job, local_pkg, false, 600, true),
    ));
    out
}

/// The `.cer` inside an existing package (for `--no-package`).
fn existing_cer(ctx: &Ctx<'_>, dir: &Path, cer: Option<&Path>) -> Result<String, DeployError> {
    let expected = cer
        .and_then(|c| c.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| format!("{TEST_CERT_NAME}.cer"));
    if !dir.is_dir() {
        if ctx.dry_run() {
            return Ok(expected);
        }
        return Err(DeployError::NoPackage(dir.to_path_buf()));
    }
    let entries = std::fs::read_dir(dir).map_err(|e| FsError::new("read directory", dir, e))?;
    let mut cers: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.to_ascii_lowercase().ends_with(".cer"))
        .collect();
    cers.sort();
    match cers.into_iter().next() {
        Some(c) => Ok(c),
        None if ctx.dry_run() => Ok(expected),
        None => Err(DeployError::Unsigned(dir.to_path_buf())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprint_of_der_and_pem_certificates() {
        // Any DER SEQUENCE will do for the digest.
        let der = [0x30u8, 0x03, 0x02, 0x01, 0x05];
        let expected: String = {
            use sha1::{Digest, Sha1};
            Sha1::digest(der)
                .iter()
                .map(|b| format!("{b:02X}"))
                .collect()
        };
        assert_eq!(cert_thumbprint(&der).as_deref(), Some(expected.as_str()));
        let pem = format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            ps::base64(&der)
        );
        assert_eq!(cert_thumbprint(pem.as_bytes()), Some(expected));
        assert_eq!(cert_thumbprint(b"not a certificate"), None);
    }

    #[test]
    fn log_sections_and_reasons_are_read_from_stdout() {
        let out = "noise\r\n### xtask-log: a.txt\r\nline 1\r\nline 2\n### xtask-log: b.log\nx\n";
        assert_eq!(
            log_sections(out),
            [
                ("a.txt".to_owned(), "line 1\nline 2\n".to_owned()),
                ("b.log".to_owned(), "x\n".to_owned())
            ]
        );
        assert_eq!(reason_of("a\nxtask-error: it broke\r\nb\n"), "it broke\n  ");
        assert_eq!(reason_of("all fine\n"), "");
    }
}
