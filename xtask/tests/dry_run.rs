//! `--dry-run` plans (exact argv) for every subcommand, the Windows flow
//! with fake WDK tools, PowerShell Direct, and `--help`.

mod common;

use std::io;
use std::path::Path;
use std::process::Command as Process;

use clap::Parser;
use common::*;
use xtask::cli::Cli;
use xtask::ctx::{Ctx, Host};
use xtask::ps::decode_command;
use xtask::runner::{Cmd, Output, RecordingRunner};

fn parse(fx: &Fixture, args: &[&str]) -> Cli {
    let mut argv = vec!["xtask".to_owned()];
    argv.extend(fx.args(args));
    Cli::parse_from(argv)
}

/// Runs in-process; returns the planned/executed commands and the runner's calls.
fn plan(
    fx: &Fixture,
    host: Host,
    runner: &RecordingRunner,
    args: &[&str],
) -> Result<Vec<Cmd>, String> {
    let cli = parse(fx, args);
    let ctx = Ctx::new(runner, cli.global.dry_run, host);
    match xtask::run_in(&ctx, &cli) {
        Ok(()) => Ok(ctx.commands()),
        Err(e) => Err(e.to_string()),
    }
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| (*x).to_owned()).collect()
}

/// The script inside `... -EncodedCommand <b64>` (last word of `line`).
fn script_of(line: &str) -> String {
    let b64 = line.split_whitespace().last().unwrap();
    decode_command(b64).expect("valid -EncodedCommand")
}

const LINUX: Host = Host::Other("linux");

#[test]
fn deploy_dry_run_over_ssh_prints_exact_argv_and_runs_nothing() {
    let fx = fixture();
    let runner = RecordingRunner::new(["ssh", "scp"]);
    let cmds = plan(
        &fx,
        LINUX,
        &runner,
        &[
            "deploy",
            "--dry-run",
            "--no-package",
            "--host",
            "192.168.56.10",
            "--user",
            "Administrator",
            "--port",
            "2222",
            "--key",
            "/keys/vm",
            "--known-hosts",
            "/keys/known_hosts",
        ],
    )
    .unwrap();
    assert!(runner.calls().is_empty(), "a dry run must not run anything");
    assert!(!fx.target().exists(), "a dry run must not write anything");

    let opts = [
        "-i",
        "/keys/vm",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        "ConnectTimeout=15",
        "-o",
        "ServerAliveInterval=5",
        "-o",
        "ServerAliveCountMax=3",
        "-o",
        "LogLevel=ERROR",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "UserKnownHostsFile=/keys/known_hosts",
    ];
    let names: Vec<&str> = cmds.iter().map(|c| c.program.as_str()).collect();
    assert_eq!(names, ["ssh", "scp", "ssh", "ssh", "ssh", "ssh"]);
    // Every remote command has the step time limit (default 300 s).
    for c in &cmds {
        assert_eq!(
            c.timeout,
            Some(std::time::Duration::from_secs(300)),
            "{c:?}"
        );
    }

    let mut ssh = s(&["ssh", "-p", "2222"]);
    ssh.extend(s(&opts));
    ssh.push("Administrator@192.168.56.10".into());
    let argv = cmds[0].argv();
    assert_eq!(argv[..argv.len() - 1], ssh[..]);
    let remote = argv.last().unwrap();
    assert!(
        remote.starts_with(
            "powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand "
        ),
        "{remote}"
    );

    // A folder of this run's own under remote_dir: concurrent runs do not
    // touch each other's files.
    let scp_argv = cmds[1].argv();
    let dest = scp_argv.last().unwrap();
    let prefix = "Administrator@192.168.56.10:C:/dmf-deploy/sample_driver_package-";
    assert!(dest.starts_with(prefix), "{dest}");
    let run_id = &dest[prefix.len()..];
    assert!(
        run_id.ends_with(&format!("-{}", std::process::id())),
        "{run_id}"
    );
    let mut scp = s(&["scp", "-P", "2222"]);
    scp.extend(s(&opts));
    scp.push("-r".into());
    scp.push(fx.package_dir().to_string_lossy().into_owned());
    scp.push(dest.clone());
    assert_eq!(scp_argv, scp);

    let scripts: Vec<String> = [0, 2, 3, 4, 5]
        .iter()
        .map(|&i| script_of(cmds[i].args.last().unwrap()))
        .collect();
    let steps: Vec<&str> = scripts
        .iter()
        .map(|sc| {
            sc.lines()
                .next()
                .unwrap()
                .trim_start_matches("# xtask-step: ")
        })
        .collect();
    assert_eq!(
        steps,
        [
            "preflight",
            "trust-cert",
            "create-device",
            "install-driver",
            "verify"
        ]
    );
    for sc in &scripts {
        // Wrapped: errors reach stdout as `xtask-error:` and exit 1.
        assert!(sc.contains("try {\n"), "{sc}");
        assert!(
            sc.contains("Write-Output ('xtask-error: ' + $_.Exception.Message)"),
            "{sc}"
        );
        assert!(sc.ends_with("    exit 1\n}\nexit 0\n"), "{sc}");
    }
    let pkg = format!("$pkg = ('C:/dmf-deploy/sample_driver_package-{run_id}' -replace '/', '\\')");
    assert!(scripts[1].contains(&pkg), "{}", scripts[1]);
    // The preflight also creates remote_dir (one connection less).
    assert!(
        scripts[0].contains("$root = ('C:/dmf-deploy' -replace '/', '\\')"),
        "{}",
        scripts[0]
    );
    assert!(scripts[0].contains("New-Item -ItemType Directory -Force -Path $root | Out-Null"));
    for check in [
        "'admin'",
        "'test-signing'",
        "'secure-boot'",
        "'free-space'",
        "'devgen'",
    ] {
        assert!(
            scripts[0].contains(&format!("Check {check}")),
            "{check}: {}",
            scripts[0]
        );
    }
    assert!(scripts[0].contains("Confirm-SecureBootUEFI"));
    assert!(scripts[0].contains("SystemStartOptions"));
    assert!(
        scripts[1].contains("$cer = Join-Path $pkg 'DmfSampleTestCert.cer'"),
        "{}",
        scripts[1]
    );
    assert!(scripts[1].contains(
        "Import-Certificate -FilePath $cer -CertStoreLocation Cert:\\LocalMachine\\Root"
    ));
    assert!(scripts[1].contains("Import-Certificate -FilePath $cer -CertStoreLocation Cert:\\LocalMachine\\TrustedPublisher"));
    assert!(scripts[2].contains("$hwid = 'Root\\DMF_SAMPLE_DRIVER'"));
    assert!(
        scripts[2].contains("Get-PnpDevice -PresentOnly"),
        "{}",
        scripts[2]
    );
    assert!(scripts[2].contains("& $devgen /add /bus ROOT /hardwareid $hwid"));
    assert!(scripts[3].contains(
        "$inf = Join-Path $pkg 'sample_driver.inf'\n    $out = & pnputil.exe /add-driver $inf /install | Out-String\n"
    ), "{}", scripts[3]);
    assert!(scripts[3].contains(
        "elseif ($code -eq 259) { throw 'pnputil /add-driver installed nothing (exit 259)"
    ));
    assert!(scripts[3].contains("if ($code -eq 3010) { Write-Output 'xtask-reboot-required' }"));
    assert!(
        scripts[4].contains("Get-PnpDevice -PresentOnly"),
        "{}",
        scripts[4]
    );
    assert!(scripts[4].contains("DEVPKEY_Device_DriverInfPath"));
    assert!(scripts[4].contains("DEVPKEY_Device_DriverVersion"));
    assert!(scripts[4].contains("Remove-Item -LiteralPath $pkg -Recurse -Force"));
    // Windows OpenSSH runs the command through cmd.exe: 8191 characters at most.
    for c in cmds.iter().filter(|c| c.program == "ssh") {
        let len = c.args.last().unwrap().len();
        assert!(
            len < 8000,
            "remote command of {len} characters is too long for cmd.exe"
        );
    }
}

#[test]
fn deploy_dry_run_full_flow_plans_package_sign_and_copy_without_touching_disk() {
    let fx = fixture();
    let sys = fx.sys.to_string_lossy().into_owned();
    let runner = RecordingRunner::new(["ssh", "scp", "osslsigncode", "openssl"]);
    let cmds = plan(
        &fx,
        LINUX,
        &runner,
        &["deploy", "--dry-run", "--sys", &sys, "--host", "vm.test"],
    )
    .unwrap();
    assert!(runner.calls().is_empty());
    assert!(!fx.target().exists(), "a dry run must not write anything");
    let names: Vec<&str> = cmds.iter().map(|c| c.program.as_str()).collect();
    assert_eq!(
        names,
        [
            "ssh", // preflight, before building anything
            "openssl",
            "openssl",
            "openssl", // test certificate
            "osslsigncode",
            "osslsigncode", // sign .sys, .cat
            "osslsigncode",
            "osslsigncode",
            "osslsigncode", // verify
            "scp",
            "ssh",
            "ssh",
            "ssh",
            "ssh",
        ]
    );
    let sign_sys = cmds[4].argv();
    assert_eq!(
        sign_sys[1..4],
        s(&[
            "sign",
            "-certs",
            &fx.target()
                .join("xtask-cert/DmfSampleTestCert.pem")
                .to_string_lossy()
        ])
    );
    assert!(
        sign_sys
            .windows(4)
            .any(|w| w == ["-h", "sha256", "-n", "sample_driver"]),
        "{sign_sys:?}"
    );
    let verify_cat = cmds[8].argv();
    assert!(
        verify_cat.contains(&"-catalog".to_owned()),
        "{verify_cat:?}"
    );
    // No user given: just the host, accept-new host keys.
    assert!(cmds[0].argv().contains(&"vm.test".to_owned()));
    assert!(cmds[0]
        .argv()
        .contains(&"StrictHostKeyChecking=accept-new".to_owned()));
}

#[test]
fn deploy_needs_a_host_and_says_where_to_set_it() {
    let fx = fixture();
    let runner = RecordingRunner::new(["ssh", "scp"]);
    let err = plan(
        &fx,
        LINUX,
        &runner,
        &["deploy", "--dry-run", "--no-package"],
    )
    .unwrap_err();
    assert_eq!(
        err,
        "deploy: no VM address: pass --host or set `host` under [deploy] in xtask.toml"
    );
}

#[test]
fn deploy_reads_xtask_toml_and_flags_override_it() {
    let fx = fixture();
    std::fs::write(
        fx.root.join("xtask.toml"),
        "[deploy]\nhost = \"10.1.2.3\"\nuser = \"tester\"\nport = 2200\nidentity_file = \"keys/id\"\nremote_dir = \"D:/drivers\"\nhardware_id = \"Root\\\\OTHER\"\n",
    )
    .unwrap();
    let runner = RecordingRunner::new(["ssh", "scp"]);
    let cmds = plan(
        &fx,
        LINUX,
        &runner,
        &["deploy", "--dry-run", "--no-package", "--port", "2201"],
    )
    .unwrap();
    let argv = cmds[0].argv();
    assert_eq!(argv[1..3], s(&["-p", "2201"]));
    assert_eq!(
        argv[3..5],
        s(&["-i", &fx.root.join("keys/id").to_string_lossy()])
    );
    assert!(argv.contains(&"tester@10.1.2.3".to_owned()));
    assert!(cmds[1]
        .argv()
        .last()
        .unwrap()
        .starts_with("tester@10.1.2.3:D:/drivers/sample_driver_package-"));
    assert!(script_of(cmds[3].args.last().unwrap()).contains("$hwid = 'Root\\OTHER'"));
}

#[test]
fn powershell_direct_dry_run_on_linux_prints_the_plan_and_real_run_refuses() {
    let fx = fixture();
    let runner = RecordingRunner::new(Vec::<String>::new());
    let args = [
        "deploy",
        "--no-package",
        "--transport",
        "powershell-direct",
        "--vm-name",
        "dmf-test",
        "--user",
        "admin",
    ];
    let mut dry = vec!["--dry-run"];
    dry.extend(args);
    let cli = parse(&fx, &dry);
    let ctx = Ctx::new(&runner, true, LINUX);
    xtask::run_in(&ctx, &cli).unwrap();
    let cmds = ctx.commands();
    assert!(runner.calls().is_empty());
    assert!(!fx.target().exists(), "a dry run must not write anything");
    // One local PowerShell for the whole run: one session, one credential.
    // The script is too long for a command line: it runs from a file.
    assert_eq!(cmds.len(), 1, "{cmds:?}");
    let c = &cmds[0];
    assert_eq!(c.program, "powershell.exe");
    let n = c.args.len();
    assert_eq!(
        c.args[..n - 1],
        s(&["-NoProfile", "-ExecutionPolicy", "Bypass", "-File"])[..]
    );
    let file = std::path::PathBuf::from(c.args.last().unwrap());
    assert!(
        file.starts_with(fx.target().join("xtask-deploy-logs")),
        "{file:?}"
    );
    assert!(file.ends_with("powershell-direct.ps1"), "{file:?}");
    let script: String = ctx
        .lines()
        .iter()
        .filter_map(|l| l.strip_prefix("      script> "))
        .flat_map(|l| [l, "\n"])
        .collect();
    assert!(script.contains("$vm = 'dmf-test'"), "{script}");
    assert!(script.contains("PSCredential('admin'"), "{script}");
    assert_eq!(script.matches("Get-Credential").count(), 1, "{script}");
    assert_eq!(
        script.matches("New-PSSession").count(),
        2,
        "open, and reopen after a restart: {script}"
    );
    assert!(
        script.contains("$s = New-PSSession -VMName $vm -Credential $cred\n"),
        "{script}"
    );
    assert!(
        !script.contains("Copy-VMFile"),
        "Copy-VMFile needs the Guest Service Interface: {script}"
    );
    // Every step is a job with the step timeout (default 300 s).
    assert_eq!(
        script.matches("Invoke-Command -Session $s -AsJob").count(),
        script.matches("Wait-Job -Job $job -Timeout 300").count(),
        "{script}"
    );
    assert!(
        script.matches("Wait-Job -Job $job -Timeout 300").count() >= 7,
        "{script}"
    );
    assert!(
        !script.contains("Invoke-Command -VMName"),
        "every step reuses the session: {script}"
    );
    assert!(
        script.contains("Copy-Item -ToSession $s -Path (Join-Path $pkgLocal '*') -Destination $pkg -Recurse -Force"),
        "{script}"
    );
    for step in [
        "preflight",
        "prepare",
        "copy",
        "trust-cert",
        "create-device",
        "install-driver",
        "verify",
        "cleanup",
    ] {
        assert!(
            script.contains(&format!("Write-Output '### xtask-step: {step}'")),
            "{step}: {script}"
        );
    }
    assert!(
        script.contains("pnputil.exe /add-driver $inf /install"),
        "{script}"
    );
    assert!(script.contains("$published = $using:published"), "{script}");
    assert!(
        script.contains("if (-not $reboot) { throw 'reboot-pending' }"),
        "{script}"
    );
    assert!(
        script.contains("### xtask-log: setupapi.dev.log"),
        "{script}"
    );

    let err = plan(&fx, LINUX, &runner, &args).unwrap_err();
    assert_eq!(
        err,
        "deploy: PowerShell Direct needs a Windows host with Hyper-V, this is linux: use --transport ssh (OpenSSH server on the VM)"
    );
}

#[test]
fn windows_package_and_sign_dry_run_argv() {
    let fx = fixture();
    let runner = RecordingRunner::new([
        "stampinf",
        "infverif",
        "inf2cat",
        "signtool",
        "powershell.exe",
    ]);
    let cmds = plan(
        &fx,
        Host::Windows,
        &runner,
        &[
            "package",
            "--dry-run",
            "--profile",
            "release",
            "--driver-date",
            "03/07/2026",
            "--driver-version",
            "0.1.0.7",
        ],
    )
    .unwrap();
    assert!(runner.calls().is_empty());
    let stage = fx.target().join("release").join(format!(
        ".sample_driver_package.staging-{}",
        std::process::id()
    ));
    let inf = stage
        .join("sample_driver.inf")
        .to_string_lossy()
        .into_owned();
    assert_eq!(cmds.len(), 4, "{cmds:?}");
    assert!(cmds[0].program.ends_with("cargo"), "{:?}", cmds[0]);
    assert_eq!(
        cmds[0].args,
        s(&["build", "-p", "sample-driver", "--profile", "release"])
    );
    assert_eq!(cmds[0].cwd.as_deref(), Some(fx.root.as_path()));
    assert!(
        cmds[0].inherit_stdio,
        "the build's output is streamed, not captured"
    );
    assert_eq!(
        cmds[1].argv(),
        s(&[
            "stampinf",
            "-f",
            &inf,
            "-d",
            "03/07/2026",
            "-a",
            "amd64",
            "-c",
            "sample_driver.cat",
            "-v",
            "0.1.0.7",
            "-k",
            "1.33"
        ])
    );
    assert_eq!(cmds[2].argv(), s(&["infverif", "/v", "/w", &inf]));
    assert_eq!(
        cmds[3].argv(),
        s(&[
            "inf2cat",
            &format!("/driver:{}", stage.display()),
            "/os:10_x64",
            "/uselocaltime"
        ])
    );

    let cmds = plan(
        &fx,
        Host::Windows,
        &runner,
        &["sign", "--dry-run", "--profile", "release"],
    )
    .unwrap();
    let names: Vec<&str> = cmds.iter().map(|c| c.program.as_str()).collect();
    assert_eq!(
        names,
        ["powershell.exe", "signtool", "signtool", "powershell.exe"]
    );
    let cert = script_of(cmds[0].args.last().unwrap());
    assert!(
        cert.contains("New-SelfSignedCertificate -Type CodeSigningCert"),
        "{cert}"
    );
    assert!(cert.contains("Export-PfxCertificate"), "{cert}");
    let pfx = fx
        .target()
        .join("xtask-cert/DmfSampleTestCert.pfx")
        .to_string_lossy()
        .into_owned();
    let sys = stage
        .join("sample_driver.sys")
        .to_string_lossy()
        .into_owned();
    assert_eq!(
        cmds[1].argv(),
        s(&[
            "signtool",
            "sign",
            "/v",
            "/fd",
            "SHA256",
            "/f",
            &pfx,
            "/p",
            "xtask-test",
            &sys
        ])
    );
    assert!(cmds[1].display().contains("/p ******"));
    let cat = stage
        .join("sample_driver.cat")
        .to_string_lossy()
        .into_owned();
    assert_eq!(cmds[2].args.last().unwrap(), &cat);
    let verify = script_of(cmds[3].args.last().unwrap());
    assert!(
        verify.contains("Get-AuthenticodeSignature -FilePath $f"),
        "{verify}"
    );
    assert!(verify.contains(&format!("@('{sys}', '{cat}')")), "{verify}");
    assert!(
        verify.contains("DmfSampleTestCert.cer').Thumbprint"),
        "{verify}"
    );
}

/// The Windows flow for real, with fake WDK tools that create what the
/// real ones would.
#[test]
fn windows_package_flow_with_fake_wdk_tools() {
    let fx = fixture();
    let out_dir = fx.target().join("driver");
    let dll = out_dir.join("sample_driver.dll");
    let pe = std::fs::read(&fx.sys).unwrap();
    let responder = move |c: &Cmd| -> io::Result<Output> {
        if c.args.first().map(String::as_str) == Some("build") {
            std::fs::create_dir_all(dll.parent().unwrap())?;
            std::fs::write(&dll, &pe)?;
        } else if c.program == "inf2cat" {
            let dir = c.args[0].strip_prefix("/driver:").unwrap();
            std::fs::write(Path::new(dir).join("sample_driver.cat"), b"fake catalog")?;
        } else if c.program == "stampinf" {
            // The copied .inx is what stampinf edits in place.
            assert!(Path::new(&c.args[1]).is_file());
        }
        Ok(Output::ok(""))
    };
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let runner = RecordingRunner::with_responder(
        [cargo.as_str(), "stampinf", "infverif", "inf2cat"],
        Box::new(responder),
    );
    plan(&fx, Host::Windows, &runner, &["package"]).unwrap();
    assert_eq!(runner.calls().len(), 4);
    let dir = fx.package_dir();
    assert_eq!(
        names(&dir),
        [
            "sample_driver.cat",
            "sample_driver.inf",
            "sample_driver.sys"
        ]
    );
    assert_eq!(
        std::fs::read(dir.join("sample_driver.sys")).unwrap(),
        std::fs::read(&fx.sys).unwrap()
    );
    assert_eq!(
        std::fs::read(dir.join("sample_driver.inf")).unwrap(),
        std::fs::read(fx.root.join("sample-driver/sample_driver.inx")).unwrap(),
        "with stampinf present the .inx is copied for stampinf to edit"
    );

    // inf2cat failing: clear error, previous package intact, no staging left.
    let runner = RecordingRunner::with_responder(
        [cargo.as_str(), "stampinf", "infverif", "inf2cat"],
        Box::new(|c: &Cmd| {
            Ok(if c.program == "inf2cat" {
                Output::failed(-2, "Errors:\n22.9.7: DriverVer set to a date in the future")
            } else {
                Output::ok("")
            })
        }),
    );
    let err = plan(&fx, Host::Windows, &runner, &["package"]).unwrap_err();
    assert!(
        err.starts_with("package: inf2cat failed: `inf2cat /driver:"),
        "{err}"
    );
    assert!(
        err.contains("DriverVer set to a date in the future"),
        "{err}"
    );
    assert_eq!(
        names(&dir),
        [
            "sample_driver.cat",
            "sample_driver.inf",
            "sample_driver.sys"
        ]
    );
    assert_eq!(
        names(&out_dir),
        ["sample_driver.dll", "sample_driver_package"]
    );

    // No inf2cat at all: names the tool and the fix.
    let runner =
        RecordingRunner::with_responder([cargo.as_str()], Box::new(|_| Ok(Output::ok(""))));
    let err = plan(&fx, Host::Windows, &runner, &["package"]).unwrap_err();
    assert!(
        err.contains("inf2cat not found: inf2cat ships with the Windows Driver Kit"),
        "{err}"
    );
}

#[test]
fn sign_on_linux_without_osslsigncode_names_the_package_to_install() {
    let fx = fixture();
    std::fs::create_dir_all(fx.package_dir()).unwrap();
    for f in [
        "sample_driver.sys",
        "sample_driver.inf",
        "sample_driver.cat",
    ] {
        std::fs::write(fx.package_dir().join(f), b"x").unwrap();
    }
    let runner = RecordingRunner::new(["openssl"]);
    let err = plan(&fx, LINUX, &runner, &["sign"]).unwrap_err();
    assert_eq!(
        err,
        format!(
            "sign: signing sample_driver.sys failed: osslsigncode not found: {}",
            xtask::ctx::OSSLSIGNCODE_HINT
        )
    );
    assert!(err.contains("bookworm-backports, which is not configured by default"));
}

#[test]
fn demo_runs_cargo_run_with_forwarded_args() {
    let fx = fixture();
    std::fs::create_dir_all(fx.root.join("sample-demo")).unwrap();
    std::fs::write(
        fx.root.join("sample-demo/Cargo.toml"),
        "[package]\nname = \"sample-demo\"\n",
    )
    .unwrap();
    let runner = RecordingRunner::new(Vec::<String>::new());
    let cmds = plan(
        &fx,
        LINUX,
        &runner,
        &["demo", "--dry-run", "--release", "--", "--seed", "7", "-v"],
    )
    .unwrap();
    assert_eq!(cmds.len(), 1);
    assert_eq!(
        cmds[0].args,
        s(&[
            "run",
            "-p",
            "sample-demo",
            "--release",
            "--",
            "--seed",
            "7",
            "-v"
        ])
    );
    assert!(cmds[0].inherit_stdio);

    std::fs::remove_dir_all(fx.root.join("sample-demo")).unwrap();
    let err = plan(&fx, LINUX, &runner, &["demo"]).unwrap_err();
    assert!(
        err.starts_with("demo: crate `sample-demo` not found in the workspace"),
        "{err}"
    );
}

#[test]
fn help_exists_for_every_subcommand() {
    let bin = env!("CARGO_BIN_EXE_xtask");
    for (args, needle) in [
        (vec!["--help"], "cargo xtask deploy"),
        (vec!["package", "--help"], "--sys <PATH>"),
        (vec!["sign", "--help"], "osslsigncode"),
        (vec!["deploy", "--help"], "xtask.toml"),
        (vec!["deploy", "--help"], "--devgen-local"),
        (vec!["deploy", "--help"], "--step-timeout"),
        (vec!["undeploy", "--help"], "--remove-cert"),
        (vec!["demo", "--help"], "cargo run -p sample-demo"),
        (vec!["new-driver", "--help"], "fresh"),
    ] {
        let out = Process::new(bin).args(&args).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{args:?}");
        assert!(text.contains(needle), "`{args:?}` lacks {needle}: {text}");
        assert!(text.contains("--dry-run"), "`{args:?}` lacks --dry-run");
    }
}

#[test]
fn dry_run_from_the_binary_prints_commands_prefixed_with_dollar() {
    let fx = fixture();
    let sys = fx.sys.to_string_lossy().into_owned();
    let out = fx.run_ok(&[
        "deploy",
        "--dry-run",
        "--sys",
        &sys,
        "--host",
        "vm.test",
        "--user",
        "admin",
    ]);
    assert!(
        out.contains("==> dry-run: printing commands and file operations only"),
        "{out}"
    );
    assert!(out.contains("==> package: "), "{out}");
    assert!(out.contains("==> sign: "), "{out}");
    assert!(out.contains("    $ scp -P 22 "), "{out}");
    assert!(
        out.contains("script>     $out = & pnputil.exe /add-driver $inf /install | Out-String"),
        "{out}"
    );
    assert!(!fx.target().exists(), "a dry run must not write anything");
}

#[test]
fn a_missing_tool_skips_locally_but_fails_under_ci() {
    let tools = ["xtask-test-tool-that-does-not-exist"];
    assert!(!require_in("local run", &tools, false));
    let ci = std::panic::catch_unwind(|| require_in("ci run", &tools, true));
    let msg = ci.expect_err("CI=true must fail, not skip");
    let msg = msg.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("CI=true: ci run cannot run"), "{msg}");
    assert!(
        msg.contains("xtask-test-tool-that-does-not-exist not installed"),
        "{msg}"
    );
    assert!(require_in("present", &["sh"], true));
}

#[test]
fn devgen_from_the_host_is_copied_and_used_and_a_missing_one_is_explained() {
    let fx = fixture();
    let devgen = fx.tmp.path().join("devgen.exe");
    let devgen_arg = devgen.to_string_lossy().into_owned();
    let args = [
        "deploy",
        "--no-package",
        "--host",
        "vm",
        "--devgen-local",
        devgen_arg.as_str(),
    ];
    // Not there: says where devgen comes from.
    let runner = RecordingRunner::new(["ssh", "scp"]);
    let err = plan(&fx, LINUX, &runner, &args).unwrap_err();
    assert!(err.contains("devgen_local"), "{err}");
    assert!(err.contains("ships only with the WDK"), "{err}");
    assert!(err.contains("--devgen-local FILE"), "{err}");
    assert!(runner.calls().is_empty());

    let mut dry = vec!["--dry-run"];
    dry.extend(args);
    let cmds = plan(&fx, LINUX, &runner, &dry).unwrap();
    let scps: Vec<Vec<String>> = cmds
        .iter()
        .filter(|c| c.program == "scp")
        .map(|c| c.argv())
        .collect();
    assert_eq!(scps.len(), 2, "{scps:?}");
    assert_eq!(scps[1][scps[1].len() - 2], devgen_arg);
    assert!(
        scps[1].last().unwrap().ends_with("/devgen.exe"),
        "{:?}",
        scps[1]
    );
    let scripts: Vec<String> = cmds
        .iter()
        .filter(|c| c.program == "ssh")
        .map(|c| script_of(c.args.last().unwrap()))
        .collect();
    assert!(
        scripts[0].contains("Check 'devgen' $true 'copied from this host"),
        "{}",
        scripts[0]
    );
    assert!(
        scripts[2].contains("$devgen = Join-Path $pkg 'devgen.exe'"),
        "{}",
        scripts[2]
    );

    // Without it, the preflight looks for devgen on the VM and says how to get it there.
    let cmds = plan(
        &fx,
        LINUX,
        &runner,
        &["--dry-run", "deploy", "--no-package", "--host", "vm"],
    )
    .unwrap();
    let preflight = script_of(cmds[0].args.last().unwrap());
    assert!(
        preflight.contains("$found = Get-Command $devgen"),
        "{preflight}"
    );
    assert!(preflight.contains("--devgen-local FILE"), "{preflight}");
}
