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
/// script, fails a step when `fail-<step>` exists, prints what the real
/// step would print.
const FAKE_POWERSHELL: &str = r#"#!/bin/sh
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
if [ -f "$dir/fail-$step" ]; then
  echo "simulated failure in $step: pnputil: The hash for the file is not present in the specified catalog file." >&2
  exit 1
fi
case "$step" in
  status) printf '%s\n' 'ROOT\SYSTEM\0001: status OK, problem , class System, name DMF Sample Driver' ;;
  *) echo "vm: $step done" ;;
esac
"#;

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

#[test]
fn deploy_over_ssh_copies_and_runs_every_step_then_reports_failures() {
    if !prerequisites("deploy_over_ssh") {
        return;
    }
    let fx = fixture();
    let Some(vm) = vm(&fx) else { return };
    let sys = fx.sys.to_string_lossy().into_owned();

    // The whole flow: package, sign, copy, install.
    let out = fx.run_ok(&["deploy", "--sys", &sys, "--user", &vm.user]);
    for line in [
        "==> package: publish",
        "==> sign: verify sample_driver.sys in sample_driver.cat",
        "==> deploy: prepare:",
        "==> deploy: copy: package and certificate",
        "==> deploy: trust-cert:",
        "==> deploy: install-driver: pnputil /add-driver sample_driver.inf /install",
        "==> deploy: create-device:",
        "==> deploy: status:",
        "| ROOT\\SYSTEM\\0001: status OK",
        "==> deploy: done: sample_driver installed",
    ] {
        assert!(out.contains(line), "missing `{line}` in:\n{out}");
    }

    // The files arrived, byte for byte.
    let remote_pkg = vm.remote_dir.join("sample_driver_package");
    let local_pkg = fx.package_dir();
    assert_eq!(names(&remote_pkg), names(&local_pkg));
    assert_eq!(names(&remote_pkg).len(), 4);
    for f in names(&local_pkg) {
        assert_eq!(
            std::fs::read(remote_pkg.join(&f)).unwrap(),
            std::fs::read(local_pkg.join(&f)).unwrap(),
            "{f}"
        );
    }

    // The VM saw each step once, in order, with the expected scripts.
    let calls = vm.calls();
    let steps: Vec<&str> = calls.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(
        steps,
        [
            "prepare",
            "trust-cert",
            "install-driver",
            "create-device",
            "status"
        ]
    );
    let remote_pkg_ps = format!(
        "$pkg = '{}/sample_driver_package' -replace '/', '\\'",
        vm.remote_dir.display()
    );
    for (step, flags, script) in &calls {
        assert_eq!(
            flags, "-NoProfile -NonInteractive -ExecutionPolicy Bypass",
            "{step}"
        );
        assert!(script.contains(&remote_pkg_ps), "{step}: {script}");
        assert!(script.contains("$ErrorActionPreference = 'Stop'"), "{step}");
    }
    assert!(calls[1]
        .2
        .contains("$cer = Join-Path $pkg 'DmfSampleTestCert.cer'"));
    assert!(calls[1]
        .2
        .contains("-CertStoreLocation Cert:\\LocalMachine\\Root"));
    assert!(calls[1]
        .2
        .contains("-CertStoreLocation Cert:\\LocalMachine\\TrustedPublisher"));
    assert!(calls[2].2.contains("pnputil.exe /add-driver $inf /install"));
    assert!(calls[3].2.contains("$hwid = 'Root\\DMF_SAMPLE_DRIVER'"));
    assert!(calls[3]
        .2
        .contains("& $devgen /add /bus ROOT /hardwareid $hwid"));
    assert!(calls[4].2.contains("Get-PnpDevice"));

    // A step failing on the VM: named, with the VM's message, and stops there.
    std::fs::remove_file(vm.dir.join("log")).unwrap();
    std::fs::write(vm.dir.join("fail-install-driver"), "").unwrap();
    std::fs::remove_dir_all(&remote_pkg).unwrap();
    let err = fx.run_err(&["deploy", "--no-package", "--user", &vm.user]);
    assert!(
        err.contains("error: deploy: step install-driver failed: `ssh "),
        "{err}"
    );
    assert!(err.contains("(exit status 1)"), "{err}");
    assert!(err.contains("simulated failure in install-driver"), "{err}");
    assert!(err.contains("hint: the command failed on the VM"), "{err}");
    let steps: Vec<String> = vm.calls().into_iter().map(|c| c.0).collect();
    assert_eq!(steps, ["prepare", "trust-cert", "install-driver"]);
    std::fs::remove_file(vm.dir.join("fail-install-driver")).unwrap();

    // The wrong key: refused by the server, reported as a login problem of
    // the first step, nothing run on the VM.
    std::fs::remove_file(vm.dir.join("log")).unwrap();
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
        err.contains("error: deploy: step prepare failed: `ssh "),
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
    assert!(err.contains("step prepare failed"), "{err}");
    assert!(err.to_lowercase().contains("host key"), "{err}");
    assert!(vm.log().is_empty());
}
