//! `cargo xtask deploy` over real SSH: a private sshd on 127.0.0.1 stands in
//! for the VM's OpenSSH server, and a recording shell script stands in for
//! powershell.exe, so copying, login, remote execution and their failures are
//! real while the Windows commands are only recorded.
//!
//! Skipped (with a message) when sshd, ssh/scp/ssh-keygen, osslsigncode or
//! openssl are not installed, or sshd cannot start here.

mod common;

use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use xtask::ps::decode_command;

const SSHD: &str = "/usr/sbin/sshd";

/// Stands in for powershell.exe on the "VM": records each step's decoded
/// script and plays a Windows VM with state files in its directory:
///
/// * `device` (a present test device), `phantom` (a removed, non-present
///   one: only `Get-PnpDevice -PresentOnly` ignores it);
/// * `installed` (`<oemNN.inf> <version>` bound to the device; pnputil
///   installs only a newer version, else exits 259), `pending` (installed,
///   but active only after a restart), `boots` (boot counter);
/// * switches the test sets: `need-reboot` (pnputil exits 3010),
///   `hang-<step>` (the VM freezes), `fail-<step>` (the step fails with its
///   reason on stdout only, PowerShell's CLIXML on stderr), `not-admin`,
///   `keep-old-driver` (pnputil publishes, the device keeps its old driver).
const FAKE_POWERSHELL: &str = r####"#!/bin/sh
dir=$(dirname "$0")
enc=""
flags=""
while [ $# -gt 0 ]; do
  case "$1" in
    -EncodedCommand) enc="$2"; shift ;;
    *) flags="$flags $1" ;;
  esac
  shift
done
script=$(printf '%s' "$enc" | base64 -d | tr -d '\000')
step=$(printf '%s\n' "$script" | sed -n 's/^# xtask-step: //p' | head -n 1)
printf '=== %s\nflags:%s\nencoded: %s\n' "$step" "$flags" "$enc" >> "$dir/log"
var() { printf '%s\n' "$script" | sed -n "s/^ *\$$1 = (*'\([^']*\)'.*/\1/p" | head -n 1; }
boots=$(cat "$dir/boots" 2>/dev/null || echo 1)
if [ -f "$dir/hang-$step" ]; then sleep 60; exit 0; fi
if [ -f "$dir/fail-$step" ]; then
  echo "Import-Certificate : Access is denied. (Exception from HRESULT: 0x80070005)"
  echo "xtask-error: simulated failure in $step: the VM refused"
  printf '#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04"><S S="Error">%s failed on the VM_x000D__x000A_</S></Objs>' "$step" >&2
  exit 1
fi
newer() { [ "$1" != "$2" ] && [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | tail -n 1)" = "$1" ]; }
case "$step" in
  preflight)
    for c in test-signing secure-boot free-space devgen; do echo "xtask-check: $c ok: fine"; done
    echo "xtask-boot: boot-$boots"
    if [ -f "$dir/not-admin" ]; then
      echo "xtask-check: admin FAIL: user VM\\guest; log in as a member of Administrators"
      echo "xtask-error: 1 preflight check(s) failed"; exit 1
    fi
    echo "xtask-check: admin ok: user VM\\admin" ;;
  create-device)
    if ! printf '%s' "$script" | grep -q -- '-PresentOnly' && [ -f "$dir/phantom" ]; then
      printf '%s\n' "device present: ROOT\\SYSTEM\\0000 (phantom)"
    elif [ -f "$dir/device" ]; then
      printf '%s\n' "device present: ROOT\\SYSTEM\\0001"
    else
      : > "$dir/device"; printf '%s\n' "Device node created. Instance ID: ROOT\\SYSTEM\\0001"
    fi ;;
  install-driver)
    pkg=$(var pkg)
    version=$(tr -d '\000\r' < "$pkg/sample_driver.inf" | sed -n 's/^DriverVer *= *[^,]*,\([0-9.]*\).*/\1/p')
    current=$(cut -d' ' -f2 "$dir/installed" 2>/dev/null || echo 0.0.0.0)
    echo "Adding driver package:  sample_driver.inf"
    if [ ! -f "$dir/device" ] || ! newer "$version" "$current"; then
      echo "Driver package added successfully. (Already exists in the system)"
      printf '%s\n' "Updating device: ROOT\\SYSTEM\\0001 ... no devices were updated."
      echo "xtask-error: pnputil /add-driver installed nothing (exit 259): the device already runs this driver or a newer one"
      exit 1
    fi
    n=$(( $(cat "$dir/oem" 2>/dev/null || echo 0) + 1 )); echo "$n" > "$dir/oem"
    # keep-old-driver: published, but the device stays on the old package.
    [ -f "$dir/keep-old-driver" ] || echo "oem$n.inf $version" > "$dir/installed"
    echo "Driver package added successfully."
    echo "Published Name:         oem$n.inf"
    echo "xtask-published: oem$n.inf"
    if [ -f "$dir/need-reboot" ]; then : > "$dir/pending"; echo "System reboot is needed to complete install operations!"; echo "xtask-reboot-required"; fi ;;
  verify)
    published=$(var published); expected=$(var expected)
    inf=$(cut -d' ' -f1 "$dir/installed"); ver=$(cut -d' ' -f2 "$dir/installed")
    if [ -f "$dir/pending" ]; then
      printf '%s\n' "xtask-device: ROOT\\SYSTEM\\0001 | status Error | problem 14 | inf $inf | version $ver"
      printf '%s\n' "xtask-error: ROOT\\SYSTEM\\0001 is not started (status Error, problem code 14; 14 means a restart is needed)"; exit 1
    fi
    printf '%s\n' "xtask-device: ROOT\\SYSTEM\\0001 | status OK | problem 0 | inf $inf | version $ver"
    if [ "$inf" != "$published" ]; then printf '%s\n' "xtask-error: ROOT\\SYSTEM\\0001 uses $inf, not $published that pnputil just published"; exit 1; fi
    if [ "$ver" != "$expected" ]; then printf '%s\n' "xtask-error: ROOT\\SYSTEM\\0001 runs driver version $ver, not $expected"; exit 1; fi
    echo "verified: 1 device(s) on $published, driver version $expected"
    if printf '%s' "$script" | grep -q 'Remove-Item -LiteralPath $pkg'; then pkg=$(var pkg); rm -rf "$pkg"; echo "removed $pkg"; fi ;;
  reboot)
    rm -f "$dir/pending" "$dir/need-reboot"; echo $((boots + 1)) > "$dir/boots"; echo restarting ;;
  boot) echo "xtask-boot: boot-$boots" ;;
  cleanup) pkg=$(var pkg); rm -rf "$pkg"; echo "removed $pkg" ;;
  logs)
    echo "### xtask-log: setupapi.dev.log"
    printf '%s\n' ">>>  [Device Install (Hardware initiated) - ROOT\\SYSTEM\\0001]"
    echo "!!!  dvi: Driver package is not newer than the installed one."
    echo "### xtask-log: pnputil-devices.txt"
    printf '%s\n' "Instance ID: ROOT\\SYSTEM\\0001"
    echo "### xtask-log: codeintegrity-events.txt"
    echo "Id : 3089" ;;
  undeploy)
    if [ -f "$dir/device" ] || [ -f "$dir/installed" ]; then
      rm -f "$dir/device" "$dir/installed" "$dir/pending"
      printf '%s\n' "removed device ROOT\\SYSTEM\\0001"; printf '%s\n' "deleted driver package oem1.inf"
    else
      echo "nothing to remove: the driver is not deployed"
    fi ;;
  *) echo "vm: $step done" ;;
esac
exit 0
"####;

struct Sshd {
    child: Child,
    port: u16,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn keygen(path: &Path) {
    assert!(run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", ""])
        .arg("-f")
        .arg(path)));
}

/// Starts sshd on a free 127.0.0.1 port; `None` (with a message) if it cannot.
fn start_sshd(dir: &Path) -> Option<Sshd> {
    // Debian's sshd insists on its privilege-separation directory, which only
    // the service manager creates.
    if !Path::new("/run/sshd").is_dir() {
        let _ = std::fs::create_dir_all("/run/sshd");
    }
    keygen(&dir.join("host_key"));
    keygen(&dir.join("client_key"));
    std::fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys")).unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = dir.join("sshd_config");
    std::fs::write(
        &cfg,
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\nAuthorizedKeysFile {d}/authorized_keys\nUsePAM no\nStrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin prohibit-password\nSubsystem sftp internal-sftp\nLogLevel ERROR\n",
            d = dir.display()
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("sshd.log")).unwrap();
    let mut child = Command::new(SSHD)
        .arg("-D")
        .arg("-e")
        .arg("-f")
        .arg(&cfg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .ok()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            // known_hosts with the server's key, for strict checking.
            let key = std::fs::read_to_string(dir.join("host_key.pub")).unwrap();
            std::fs::write(dir.join("known_hosts"), format!("[127.0.0.1]:{port} {key}")).unwrap();
            return Some(Sshd { child, port });
        }
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    skip(
        "deploy over ssh",
        &format!(
            "sshd did not start: {}",
            std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default()
        ),
    );
    None
}

fn whoami() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

struct Vm {
    _sshd: Sshd,
    dir: PathBuf,
    /// The "C:/dmf-deploy" of the VM.
    remote_dir: PathBuf,
    user: String,
}

impl Vm {
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    /// (step, flags, decoded script) of every recorded call.
    fn calls(&self) -> Vec<(String, String, String)> {
        let log = self.log();
        let mut calls = Vec::new();
        let mut lines = log.lines();
        while let Some(header) = lines.next() {
            let step = header.strip_prefix("=== ").unwrap().to_owned();
            let flags = lines
                .next()
                .unwrap()
                .trim_start_matches("flags:")
                .trim()
                .to_owned();
            let enc = lines
                .next()
                .unwrap()
                .trim_start_matches("encoded: ")
                .to_owned();
            calls.push((step, flags, decode_command(&enc).unwrap()));
        }
        calls
    }
}

/// The VM: sshd, a fake powershell.exe and a remote directory; plus an
/// xtask.toml in the fixture pointing at them.
fn vm(fx: &Fixture) -> Option<Vm> {
    let dir = fx.tmp.path().join("vm");
    std::fs::create_dir(&dir).unwrap();
    let sshd = start_sshd(&dir)?;
    let fake = dir.join("powershell.exe");
    std::fs::write(&fake, FAKE_POWERSHELL).unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let remote_dir = dir.join("C");
    std::fs::create_dir(&remote_dir).unwrap();
    std::fs::write(
        fx.root.join("xtask.toml"),
        format!(
            "[deploy]\nhost = \"127.0.0.1\"\nport = {}\nidentity_file = \"{}\"\nknown_hosts = \"{}\"\nremote_dir = \"{}\"\nremote_powershell = \"{}\"\n",
            sshd.port,
            dir.join("client_key").display(),
            dir.join("known_hosts").display(),
            remote_dir.display(),
            fake.display()
        ),
    )
    .unwrap();
    Some(Vm {
        _sshd: sshd,
        dir,
        remote_dir,
        user: whoami(),
    })
}

fn prerequisites(test: &str) -> bool {
    if !Path::new(SSHD).is_file() {
        skip(
            test,
            &format!("{SSHD} not found (Debian/Ubuntu: apt-get install openssh-server)"),
        );
        return false;
    }
    require(
        test,
        &[
            "ssh",
            "scp",
            "ssh-keygen",
            "osslsigncode",
            "openssl",
            "base64",
        ],
    )
}

fn steps(vm: &Vm) -> Vec<String> {
    vm.calls().into_iter().map(|c| c.0).collect()
}

fn reset_log(vm: &Vm) {
    let _ = std::fs::remove_file(vm.dir.join("log"));
}

#[test]
fn deploy_over_ssh_installs_verifies_and_a_second_build_the_same_day_replaces_the_first() {
    if !prerequisites("deploy_over_ssh") {
        return;
    }
    let fx = fixture();
    let Some(vm) = vm(&fx) else { return };
    let sys = fx.sys.to_string_lossy().into_owned();
    // Another run's folder (a concurrent deploy): must survive ours.
    let other_run = vm.remote_dir.join("sample_driver_package-999-1");
    std::fs::create_dir_all(&other_run).unwrap();
    std::fs::write(other_run.join("sample_driver.sys"), b"other").unwrap();
    // A phantom device with the same ID: only -PresentOnly ignores it.
    std::fs::write(vm.dir.join("phantom"), "").unwrap();

    let out = fx.run_ok(&["deploy", "--sys", &sys, "--user", &vm.user]);
    for line in [
        "==> deploy: preflight:",
        "preflight: 5 checks passed",
        "==> package: publish",
        "==> sign: verify sample_driver.sys in sample_driver.cat",
        "==> deploy: copy: package and certificate",
        "==> deploy: trust-cert:",
        "==> deploy: create-device:",
        "| Device node created.",
        "==> deploy: install-driver: pnputil /add-driver sample_driver.inf /install",
        "| Published Name:         oem1.inf",
        "==> deploy: verify:",
        "| verified: 1 device(s) on oem1.inf, driver version 0.1.0.0",
        "==> deploy: done: sample_driver 0.1.0.0 installed on",
    ] {
        assert!(out.contains(line), "missing `{line}` in:\n{out}");
    }
    // The preflight ran before anything was built.
    assert!(out.find("==> deploy: preflight:").unwrap() < out.find("==> package:").unwrap());
    assert_eq!(
        steps(&vm),
        [
            "preflight",
            "trust-cert",
            "create-device",
            "install-driver",
            "verify"
        ]
    );
    // The files arrived byte for byte in this run's folder (checked by the
    // fake pnputil, which read the INF from there), which cleanup removed;
    // the other run's folder is untouched.
    assert_eq!(names(&vm.remote_dir), ["sample_driver_package-999-1"]);
    assert_eq!(
        std::fs::read(other_run.join("sample_driver.sys")).unwrap(),
        b"other"
    );
    for (step, flags, script) in vm.calls() {
        assert_eq!(
            flags, "-NoProfile -NonInteractive -ExecutionPolicy Bypass",
            "{step}"
        );
        assert!(script.contains("$ErrorActionPreference = 'Stop'"), "{step}");
        assert!(
            script.contains("Write-Output ('xtask-error: ' + $_.Exception.Message)"),
            "{step}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(vm.dir.join("installed"))
            .unwrap()
            .trim(),
        "oem1.inf 0.1.0.0"
    );

    // A second build the same day (ten minutes later): a newer DriverVer,
    // so pnputil installs it and the device runs it.
    reset_log(&vm);
    let later = (EPOCH_2026_03_07.parse::<u64>().unwrap() + 600).to_string();
    let out = fx.run_env(
        &["deploy", "--sys", &sys, "--user", &vm.user],
        &[("SOURCE_DATE_EPOCH", later.as_str())],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("| verified: 1 device(s) on oem2.inf, driver version 0.1.0.300"),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read_to_string(vm.dir.join("installed"))
            .unwrap()
            .trim(),
        "oem2.inf 0.1.0.300"
    );

    // The same build again: pnputil installs nothing (259), which is a
    // failure with the reason, and the VM's logs are fetched.
    reset_log(&vm);
    let err = fx.run_err(&["deploy", "--no-package", "--user", &vm.user]);
    assert!(err.contains("error: deploy: step install-driver failed: pnputil /add-driver installed nothing (exit 259)"), "{err}");
    assert!(
        err.contains("no devices were updated."),
        "pnputil's stdout is shown: {err}"
    );
    let logs = err
        .lines()
        .find_map(|l| l.trim().strip_prefix("logs: "))
        .unwrap_or_else(|| panic!("no log folder named: {err}"));
    let logs = Path::new(logs);
    assert!(
        logs.starts_with(fx.target().join("xtask-deploy-logs")),
        "{}",
        logs.display()
    );
    assert_eq!(
        names(logs),
        [
            "codeintegrity-events.txt",
            "failure.txt",
            "pnputil-devices.txt",
            "setupapi.dev.log"
        ]
    );
    let setupapi = std::fs::read_to_string(logs.join("setupapi.dev.log")).unwrap();
    assert!(setupapi.starts_with(">>>  [Device Install"), "{setupapi}");
    assert!(std::fs::read_to_string(logs.join("failure.txt"))
        .unwrap()
        .contains("exit 259"));
    assert_eq!(
        steps(&vm),
        [
            "preflight",
            "trust-cert",
            "create-device",
            "install-driver",
            "logs"
        ]
    );

    // undeploy removes it; again is not an error.
    reset_log(&vm);
    let out = fx.run_ok(&["undeploy", "--user", &vm.user, "--remove-cert"]);
    assert!(out.contains("| removed device ROOT\\SYSTEM\\0001"), "{out}");
    assert!(!vm.dir.join("installed").exists());
    let out = fx.run_ok(&["undeploy", "--user", &vm.user]);
    assert!(
        out.contains("| nothing to remove: the driver is not deployed"),
        "{out}"
    );
    let calls = vm.calls();
    assert!(
        calls[0].2.contains("Cert:\\LocalMachine\\TrustedPublisher"),
        "--remove-cert: {}",
        calls[0].2
    );
    assert!(
        calls[0].2.contains("$_.Thumbprint -eq '"),
        "removed by thumbprint: {}",
        calls[0].2
    );
    assert!(
        !calls[1].2.contains("Cert:\\LocalMachine"),
        "no --remove-cert: {}",
        calls[1].2
    );
}

#[test]
fn deploy_over_ssh_reports_reboots_failures_hangs_and_preflight_problems() {
    if !prerequisites("deploy_over_ssh_failures") {
        return;
    }
    let fx = fixture();
    let Some(vm) = vm(&fx) else { return };
    let sys = fx.sys.to_string_lossy().into_owned();
    fx.run_ok(&["package", "--sys", &sys]);
    fx.run_ok(&["sign"]);

    // Preflight problems: each with what to do; --check only checks.
    std::fs::write(vm.dir.join("not-admin"), "").unwrap();
    let err = fx.run_err(&["deploy", "--check", "--user", &vm.user]);
    assert!(err.contains("preflight: the VM is not ready:"), "{err}");
    assert!(
        err.contains("admin FAIL: user VM\\guest; log in as a member of Administrators"),
        "{err}"
    );
    std::fs::remove_file(vm.dir.join("not-admin")).unwrap();
    reset_log(&vm);
    let out = fx.run_ok(&["deploy", "--check", "--user", &vm.user]);
    assert!(
        out.contains("==> deploy: check: the VM is ready for deployment"),
        "{out}"
    );
    assert_eq!(steps(&vm), ["preflight"]);

    // A failure explained on stdout only (and CLIXML on stderr): both shown, readable.
    reset_log(&vm);
    std::fs::write(vm.dir.join("fail-trust-cert"), "").unwrap();
    let err = fx.run_err(&["deploy", "--no-package", "--user", &vm.user]);
    assert!(
        err.contains("step trust-cert failed: simulated failure in trust-cert: the VM refused"),
        "{err}"
    );
    assert!(
        err.contains("Import-Certificate : Access is denied."),
        "{err}"
    );
    assert!(
        err.contains("trust-cert failed on the VM"),
        "decoded CLIXML: {err}"
    );
    assert!(!err.contains("CLIXML"), "{err}");
    assert!(err.contains("logs: "), "{err}");
    std::fs::remove_file(vm.dir.join("fail-trust-cert")).unwrap();

    // pnputil 3010 without --reboot: reported as pending, not as done.
    std::fs::write(vm.dir.join("need-reboot"), "").unwrap();
    let out = fx.run(&["deploy", "--no-package", "--user", &vm.user]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(!out.status.success(), "{stdout}");
    assert!(!stdout.contains("==> deploy: done"), "{stdout}");
    assert!(
        stderr.contains("Windows needs a restart to finish (pnputil exit 3010)"),
        "{stderr}"
    );
    assert!(stderr.contains("--reboot"), "{stderr}");

    // With --reboot a newer build restarts the VM, waits for it, verifies.
    reset_log(&vm);
    std::fs::write(vm.dir.join("need-reboot"), "").unwrap();
    let later = (EPOCH_2026_03_07.parse::<u64>().unwrap() + 60).to_string();
    let out = fx.run_env(
        &["deploy", "--sys", &sys, "--user", &vm.user, "--reboot"],
        &[("SOURCE_DATE_EPOCH", later.as_str())],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("==> deploy: reboot: the VM is back"),
        "{stdout}"
    );
    assert!(
        stdout.contains("| verified: 1 device(s) on oem2.inf, driver version 0.1.0.30"),
        "{stdout}"
    );
    let s = steps(&vm);
    let at = s.iter().position(|x| x == "install-driver").unwrap();
    assert_eq!(s[at + 1..], ["reboot", "boot", "verify"]);

    // pnputil published the new package but the device kept the old one:
    // verify says so (and nothing claims "done").
    std::fs::write(vm.dir.join("keep-old-driver"), "").unwrap();
    let newer = (EPOCH_2026_03_07.parse::<u64>().unwrap() + 90).to_string();
    let out = fx.run_env(
        &["deploy", "--sys", &sys, "--user", &vm.user],
        &[("SOURCE_DATE_EPOCH", newer.as_str())],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("step verify failed: ROOT\\SYSTEM\\0001 uses oem2.inf, not oem3.inf that pnputil just published"),
        "{stderr}"
    );
    std::fs::remove_file(vm.dir.join("keep-old-driver")).unwrap();

    // A VM that freezes during the install: deploy fails within the step
    // timeout instead of hanging, and says what may have happened.
    std::fs::write(vm.dir.join("hang-install-driver"), "").unwrap();
    let even_later = (EPOCH_2026_03_07.parse::<u64>().unwrap() + 120).to_string();
    let start = Instant::now();
    let out = fx.run_env(
        &[
            "deploy",
            "--sys",
            &sys,
            "--user",
            &vm.user,
            "--step-timeout",
            "3",
        ],
        &[("SOURCE_DATE_EPOCH", even_later.as_str())],
    );
    let elapsed = start.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(elapsed < Duration::from_secs(30), "took {elapsed:?}");
    assert!(
        stderr.contains("step install-driver failed: `ssh "),
        "{stderr}"
    );
    assert!(stderr.contains("did not finish within 3 s"), "{stderr}");
    assert!(stderr.contains("frozen or have bugchecked"), "{stderr}");
    assert!(
        stderr.contains("logs: not fetched (the VM does not answer)"),
        "{stderr}"
    );
    std::fs::remove_file(vm.dir.join("hang-install-driver")).unwrap();

    // The wrong key: refused by the server, reported as a login problem of
    // the first step, nothing run on the VM.
    reset_log(&vm);
    let wrong_key = vm.dir.join("host_key").to_string_lossy().into_owned();
    let err = fx.run_err(&[
        "deploy",
        "--no-package",
        "--user",
        &vm.user,
        "--key",
        &wrong_key,
    ]);
    assert!(
        err.contains("error: deploy: step preflight failed: `ssh "),
        "{err}"
    );
    assert!(err.contains("(exit status 255)"), "{err}");
    assert!(err.contains("Permission denied"), "{err}");
    assert!(err.contains("hint: could not reach or log in to"), "{err}");
    assert!(
        vm.log().is_empty(),
        "nothing may run on the VM: {}",
        vm.log()
    );

    // A host key that does not match known_hosts is refused too.
    let other = vm.dir.join("other_known_hosts");
    std::fs::write(
        &other,
        format!(
            "[127.0.0.1]:{} {}",
            vm._sshd.port,
            std::fs::read_to_string(vm.dir.join("client_key.pub")).unwrap()
        ),
    )
    .unwrap();
    let err = fx.run_err(&[
        "deploy",
        "--no-package",
        "--user",
        &vm.user,
        "--known-hosts",
        &other.to_string_lossy(),
    ]);
    assert!(err.contains("step preflight failed"), "{err}");
    assert!(err.to_lowercase().contains("host key"), "{err}");
    assert!(vm.log().is_empty());
}
