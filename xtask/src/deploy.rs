//! `cargo xtask deploy`: copy the signed package to a test VM and install it,
//! over SSH (any host) or PowerShell Direct (Windows Hyper-V host).
//!
//! Each VM-side step is a PowerShell script sent as `-EncodedCommand`, so no
//! quoting layer (ssh, cmd.exe, PowerShell) can alter it. Which program runs
//! it on the VM is a setting (`remote_powershell`, default `powershell.exe`);
//! the tests point it at a recording shell script on a local sshd, so the
//! SSH transport and its error paths are exercised for real.

use std::path::{Path, PathBuf};

use crate::cli::{DeployArgs, Transport};
use crate::config::{self, ConfigError, DeployConfig};
use crate::ctx::{Ctx, FsError, ToolError};
use crate::package::{self, package_dir, PackageError};
use crate::ps;
use crate::runner::{Cmd, Output};
use crate::sign::{self, SignError, TEST_CERT_NAME};
use crate::workspace::{DriverCrate, Layout, WorkspaceError};

/// Default directory on the VM.
pub const DEFAULT_REMOTE_DIR: &str = "C:/dmf-deploy";
/// Default hardware ID of the root-enumerated test device.
pub const DEFAULT_HARDWARE_ID: &str = r"Root\DMF_SAMPLE_DRIVER";

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
    /// A step failed.
    #[error("step {step} failed: {source}{hint}")]
    Step {
        /// Step name (prepare, copy, trust-cert, install-driver, create-device, status).
        step: &'static str,
        /// What failed.
        source: ToolError,
        /// How to fix it.
        hint: String,
    },
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
    /// Directory on the VM that receives the package.
    pub remote_dir: String,
    /// Hyper-V VM name.
    pub vm_name: Option<String>,
    /// Hardware ID of the test device.
    pub hardware_id: String,
    /// devgen.exe on the VM.
    pub devgen: String,
    /// Program that runs each step's script on the VM.
    pub remote_powershell: String,
}

/// Merges flags over xtask.toml over defaults.
pub fn settings(args: &DeployArgs, cfg: &DeployConfig) -> Result<DeploySettings, DeployError> {
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
    Ok(DeploySettings {
        transport,
        host: pick(&args.host, &cfg.host),
        user: pick(&args.user, &cfg.user),
        port: args.port.or(cfg.port).unwrap_or(22),
        key: args
            .key
            .as_ref()
            .map(|k| config::resolve_path(k, &cwd))
            .or_else(|| cfg.identity_file.clone()),
        known_hosts: args
            .known_hosts
            .as_ref()
            .map(|k| config::resolve_path(k, &cwd))
            .or_else(|| cfg.known_hosts.clone()),
        remote_dir: pick(&args.remote_dir, &cfg.remote_dir)
            .unwrap_or_else(|| DEFAULT_REMOTE_DIR.to_owned()),
        vm_name: pick(&args.vm_name, &cfg.vm_name),
        hardware_id: pick(&args.hardware_id, &cfg.hardware_id)
            .unwrap_or_else(|| DEFAULT_HARDWARE_ID.to_owned()),
        devgen: pick(&args.devgen, &cfg.devgen).unwrap_or_else(|| "devgen.exe".to_owned()),
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

    /// `scp <options> -r <local dir> <dest>:<remote dir>`.
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
    /// The PowerShell script.
    pub script: String,
}

fn prologue(name: &str, remote_pkg: &str) -> String {
    format!(
        "# xtask-step: {name}\n$ErrorActionPreference = 'Stop'\n$ProgressPreference = 'SilentlyContinue'\n$pkg = {} -replace '/', '\\'\n",
        ps::quote(remote_pkg)
    )
}

/// The directory the package lands in on the VM.
pub fn remote_package_dir(s: &DeploySettings, pkg_name: &str) -> String {
    format!("{}/{pkg_name}", s.remote_dir.trim_end_matches(['/', '\\']))
}

/// The step that empties the target directory before the copy.
pub fn prepare_step(s: &DeploySettings, pkg_name: &str) -> RemoteStep {
    let remote_pkg = remote_package_dir(s, pkg_name);
    let script = format!(
        "{}$dir = {} -replace '/', '\\'\nif (Test-Path -LiteralPath $pkg) {{ Remove-Item -LiteralPath $pkg -Recurse -Force }}\nNew-Item -ItemType Directory -Force -Path $dir | Out-Null\n",
        prologue("prepare", &remote_pkg),
        ps::quote(s.remote_dir.trim_end_matches(['/', '\\']))
    );
    RemoteStep {
        name: "prepare",
        what: format!("empty {remote_pkg} on the VM"),
        script,
    }
}

/// Joins script lines, each ending in `\n`.
fn lines(lines: &[&str]) -> String {
    lines.iter().flat_map(|l| [*l, "\n"]).collect()
}

/// The steps after the copy: trust, install, create the device, report.
pub fn install_steps(
    s: &DeploySettings,
    pkg_name: &str,
    lib: &str,
    cer_name: &str,
) -> Vec<RemoteStep> {
    let remote_pkg = remote_package_dir(s, pkg_name);
    let p = |name| prologue(name, &remote_pkg);
    let hwid = format!("$hwid = {}", ps::quote(&s.hardware_id));
    let find_devices =
        "@(Get-PnpDevice -ErrorAction SilentlyContinue | Where-Object { $_.HardwareID -contains $hwid })";
    vec![
        RemoteStep {
            name: "trust-cert",
            what: format!(
                "import {cer_name} into LocalMachine\\Root and LocalMachine\\TrustedPublisher"
            ),
            script: p("trust-cert")
                + &lines(&[
                    &format!("$cer = Join-Path $pkg {}", ps::quote(cer_name)),
                    r"Import-Certificate -FilePath $cer -CertStoreLocation Cert:\LocalMachine\Root | Out-Null",
                    r"Import-Certificate -FilePath $cer -CertStoreLocation Cert:\LocalMachine\TrustedPublisher | Out-Null",
                    r#"Write-Output "imported $cer into LocalMachine\Root and LocalMachine\TrustedPublisher""#,
                ]),
        },
        RemoteStep {
            name: "install-driver",
            what: format!("pnputil /add-driver {lib}.inf /install"),
            script: p("install-driver")
                + &lines(&[
                    &format!("$inf = Join-Path $pkg {}", ps::quote(&format!("{lib}.inf"))),
                    "pnputil.exe /add-driver $inf /install",
                    "$code = $LASTEXITCODE",
                    // 259: nothing to update; 3010: reboot required.
                    "if ($code -eq 3010) { Write-Output 'pnputil: reboot required to finish the installation' } \
                     elseif ($code -ne 0 -and $code -ne 259) { throw \"pnputil /add-driver failed with exit code $code \
                     (is test signing on? bcdedit /set testsigning on, then reboot)\" }",
                ]),
        },
        RemoteStep {
            name: "create-device",
            what: format!(
                "create the root-enumerated device {} (devgen) unless it exists",
                s.hardware_id
            ),
            script: p("create-device")
                + &lines(&[
                    &hwid,
                    &format!("$existing = {find_devices}"),
                    "if ($existing.Count -gt 0) { Write-Output \"device exists: $($existing[0].InstanceId)\" } else {",
                    &format!("  $devgen = {}", ps::quote(&s.devgen)),
                    "  if (-not (Get-Command $devgen -ErrorAction SilentlyContinue)) { throw \"$devgen not found on the VM: \
                     copy devgen.exe from the WDK (Windows Kits\\10\\Tools\\<version>\\x64) to the VM and set devgen in xtask.toml\" }",
                    "  & $devgen /add /bus ROOT /hardwareid $hwid",
                    "  if ($LASTEXITCODE -ne 0) { throw \"devgen /add failed with exit code $LASTEXITCODE\" }",
                    "}",
                ]),
        },
        RemoteStep {
            name: "status",
            what: format!("status of {}", s.hardware_id),
            script: p("status")
                + &lines(&[
                    &hwid,
                    // PnP installs the driver on the new device asynchronously.
                    "$deadline = (Get-Date).AddSeconds(30)",
                    "do {",
                    &format!("  $devs = {find_devices}"),
                    "  $bad = @($devs | Where-Object { $_.Status -ne 'OK' })",
                    "  if ($devs.Count -gt 0 -and $bad.Count -eq 0) { break }",
                    "  Start-Sleep -Seconds 2",
                    "} while ((Get-Date) -lt $deadline)",
                    "if ($devs.Count -eq 0) { throw \"no device with hardware ID $hwid\" }",
                    "foreach ($d in $devs) { Write-Output (\"{0}: status {1}, problem {2}, class {3}, name {4}\" -f \
                     $d.InstanceId, $d.Status, $d.Problem, $d.Class, $d.FriendlyName) }",
                    "if ($bad.Count -gt 0) { throw \"device not started (status $($bad[0].Status)): \
                     see pnputil /enum-devices /problem and C:\\Windows\\INF\\setupapi.dev.log\" }",
                ]),
        },
    ]
}

/// The local command that runs `step` through PowerShell Direct.
pub fn powershell_direct_step(vm: &str, user: &str, step: &RemoteStep) -> Cmd {
    let (vm, user) = (ps::quote(vm), ps::quote(user));
    let script = lines(&[
        "$ErrorActionPreference = 'Stop'",
        &format!("$vm = {vm}"),
        &format!(
            "$cred = if ($env:XTASK_VM_PASSWORD) {{ New-Object System.Management.Automation.PSCredential({user}, \
             (ConvertTo-SecureString $env:XTASK_VM_PASSWORD -AsPlainText -Force)) }} \
             else {{ Get-Credential -UserName {user} -Message ('Administrator of VM ' + $vm) }}"
        ),
        "Invoke-Command -VMName $vm -Credential $cred -ScriptBlock {",
    ]) + &step.script
        + "}\n";
    ps::local_script(&script, true)
}

/// The local command that copies `files` into the VM with Copy-VMFile.
pub fn powershell_direct_copy(vm: &str, files: &[PathBuf], remote_pkg: &str) -> Cmd {
    let list: Vec<String> = files
        .iter()
        .map(|f| ps::quote(&f.to_string_lossy()))
        .collect();
    let script = lines(&[
        "$ErrorActionPreference = 'Stop'",
        &format!("$vm = {}", ps::quote(vm)),
        &format!("$dest = {} -replace '/', '\\'", ps::quote(remote_pkg)),
        // String concatenation, not Join-Path: the guest's drive need not exist on the host.
        &format!(
            "foreach ($f in @({})) {{ Copy-VMFile -Name $vm -SourcePath $f -DestinationPath ($dest + '\\' + (Split-Path $f -Leaf)) \
             -CreateFullPath -FileSource Host -Force }}",
            list.join(", ")
        ),
    ]);
    ps::local_script(&script, false)
}

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

fn step_error(plan: &Plan, step: &'static str, source: ToolError) -> DeployError {
    let hint = match (&source, plan) {
        (e, Plan::Ssh(t)) if e.exit_code() == Some(255) => ssh_hint(t),
        (ToolError::NotFound { .. }, _) => String::new(),
        (_, Plan::Ssh(_)) if step == "copy" => {
            "\n  hint: scp could not write the files; check remote_dir and free space on the VM"
                .to_owned()
        }
        _ => "\n  hint: the command failed on the VM; its messages are above".to_owned(),
    };
    DeployError::Step { step, source, hint }
}

fn print_output(ctx: &Ctx<'_>, out: &Output) {
    for line in out.stdout.lines().filter(|l| !l.trim().is_empty()) {
        ctx.note(format!("| {line}"));
    }
}

fn run_step(
    ctx: &Ctx<'_>,
    plan: &Plan,
    s: &DeploySettings,
    step: &RemoteStep,
) -> Result<(), DeployError> {
    ctx.step("deploy", format!("{}: {}", step.name, step.what));
    let cmd = match plan {
        Plan::Ssh(t) => t.ssh(&ps::remote_command_line(&s.remote_powershell, &step.script)),
        Plan::PowerShellDirect { vm, user } => powershell_direct_step(vm, user, step),
    };
    let out = ctx.exec(cmd).map_err(|e| step_error(plan, step.name, e))?;
    if ctx.dry_run() {
        for line in step.script.lines() {
            ctx.note(format!("  script> {line}"));
        }
    }
    print_output(ctx, &out);
    Ok(())
}

/// Runs `deploy`.
pub fn deploy(ctx: &Ctx<'_>, layout: &Layout, args: &DeployArgs) -> Result<(), DeployError> {
    let (cfg, cfg_path) = config::load(args.config.as_deref(), &layout.root.join("xtask.toml"))?;
    if let Some(p) = &cfg_path {
        ctx.step("deploy", format!("settings from {}", p.display()));
    }
    let s = settings(args, &cfg.deploy)?;
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
                .map_err(|e| step_error(&plan, "prepare", e))?;
        }
    }

    // The signed package.
    let (pkg_dir, lib, cer_name) = if args.no_package {
        let driver = DriverCrate::load(layout, &args.target.driver_package)?;
        let dir = package_dir(layout, &args.target, &driver);
        ctx.step(
            "deploy",
            format!("using existing package {}", dir.display()),
        );
        let cer = existing_cer(ctx, &dir, args)?;
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
    let remote_pkg = remote_package_dir(&s, &pkg_name);
    let target = match &plan {
        Plan::Ssh(t) => format!("{}:{remote_pkg}", t.destination()),
        Plan::PowerShellDirect { vm, .. } => format!("VM {vm}:{remote_pkg}"),
    };
    ctx.step("deploy", format!("{} -> {target}", pkg_dir.display()));

    run_step(ctx, &plan, &s, &prepare_step(&s, &pkg_name))?;

    ctx.step(
        "deploy",
        format!("copy: package and certificate -> {target}"),
    );
    let copy = match &plan {
        Plan::Ssh(t) => t.scp_dir(&pkg_dir, s.remote_dir.trim_end_matches(['/', '\\'])),
        Plan::PowerShellDirect { vm, .. } => {
            let files = package_files(ctx, &pkg_dir, &lib, &cer_name)?;
            powershell_direct_copy(vm, &files, &remote_pkg)
        }
    };
    ctx.exec(copy).map_err(|e| step_error(&plan, "copy", e))?;

    for step in install_steps(&s, &pkg_name, &lib, &cer_name) {
        run_step(ctx, &plan, &s, &step)?;
    }
    ctx.step("deploy", format!("done: {lib} installed on {target}"));
    Ok(())
}

/// The `.cer` inside an existing package (for `--no-package`).
fn existing_cer(ctx: &Ctx<'_>, dir: &Path, args: &DeployArgs) -> Result<String, DeployError> {
    let expected = args
        .cert
        .cer
        .as_ref()
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

/// Files to copy (PowerShell Direct copies file by file).
fn package_files(
    ctx: &Ctx<'_>,
    dir: &Path,
    lib: &str,
    cer_name: &str,
) -> Result<Vec<PathBuf>, DeployError> {
    if ctx.dry_run() && !dir.is_dir() {
        return Ok(["sys", "inf", "cat"]
            .iter()
            .map(|e| dir.join(format!("{lib}.{e}")))
            .chain(std::iter::once(dir.join(cer_name)))
            .collect());
    }
    let entries = std::fs::read_dir(dir).map_err(|e| FsError::new("read directory", dir, e))?;
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    Ok(files)
}
