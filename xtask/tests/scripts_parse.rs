//! Every PowerShell script xtask generates is parsed with a real PowerShell
//! grammar (tree-sitter-powershell); any ERROR or MISSING node fails the
//! test, with the line it is on. The check itself is shown to catch a
//! planted syntax error first.

mod common;

use std::path::Path;
use std::time::Duration;

use clap::Parser as _;
use common::*;
use xtask::cli::{Cli, Transport};
use xtask::ctx::{Ctx, Host};
use xtask::deploy::{all_scripts, DeploySettings, Job};
use xtask::ps::decode_command;
use xtask::runner::RecordingRunner;

/// The syntax errors of `script`: (line, column, node kind, the line).
fn syntax_errors(script: &str) -> Vec<String> {
    let mut parser = tree_sitter::Parser::new();
    parser
        .set_language(&tree_sitter_powershell::LANGUAGE.into())
        .expect("load the PowerShell grammar");
    let tree = parser.parse(script, None).expect("parse");
    let mut errors = Vec::new();
    let mut cursor = tree.walk();
    let mut stack = vec![tree.root_node()];
    while let Some(node) = stack.pop() {
        if node.is_error() || node.is_missing() {
            let p = node.start_position();
            let line = script.lines().nth(p.row).unwrap_or_default();
            errors.push(format!(
                "{}:{}: {} `{}` in: {}",
                p.row + 1,
                p.column + 1,
                if node.is_missing() {
                    "MISSING"
                } else {
                    "ERROR"
                },
                node.kind(),
                line.trim()
            ));
        }
        if node.has_error() {
            stack.extend(node.children(&mut cursor));
        }
    }
    errors
}

fn assert_parses(name: &str, script: &str) {
    let errors = syntax_errors(script);
    assert!(
        errors.is_empty(),
        "{name}: PowerShell syntax errors:\n  {}\n--- script:\n{script}",
        errors.join("\n  ")
    );
}

#[test]
fn the_check_catches_broken_powershell() {
    assert_parses(
        "fine",
        "$x = @(1, 2)\nif ($x.Count -gt 1) { Write-Output 'ok' } else { throw 'no' }\n",
    );
    for broken in [
        "if ($x -eq 1) { Write-Output 'unclosed'\n",
        "$s = 'it's broken'\n",
        "foreach ($f in @(1, 2) { $f }\n",
        "$a = (1 + \n",
    ] {
        assert!(!syntax_errors(broken).is_empty(), "not caught: {broken}");
    }
}

fn settings() -> DeploySettings {
    DeploySettings {
        transport: Transport::Ssh,
        host: Some("vm".into()),
        user: Some("admin".into()),
        port: 22,
        key: None,
        known_hosts: None,
        // Quotes of every kind PowerShell knows, and spaces, in the values.
        remote_dir: "C:/dmf deploy/it's \u{2018}here\u{2019}".into(),
        vm_name: Some("dmf \u{201B}test\u{201A}".into()),
        hardware_id: "Root\\DMF_'SAMPLE'_\u{2019}DRIVER".into(),
        devgen: "C:\\Tools\\dev gen's.exe".into(),
        devgen_local: Some("/tmp/devgen.exe".into()),
        step_timeout: Duration::from_secs(300),
        remote_powershell: "powershell.exe".into(),
    }
}

#[test]
fn every_deploy_and_undeploy_script_parses() {
    let s = settings();
    for devgen_copied in [false, true] {
        let job = Job {
            lib: "sample_driver".into(),
            cer_name: "Dmf'Cert\u{2018}.cer".into(),
            remote_pkg: format!("{}/sample_driver_package-1-2", s.remote_dir),
            version: "0.1.0.34200".into(),
            devgen: s.devgen.clone(),
            devgen_copied,
        };
        let scripts = all_scripts(&s, &job, Path::new("/tmp/it's a \u{201A}pkg"));
        assert!(scripts.len() >= 14, "{}", scripts.len());
        for (name, script) in scripts {
            assert_parses(&name, &script);
        }
    }
}

/// Every `-EncodedCommand` of a dry run (deploy over SSH and PowerShell
/// Direct, undeploy, sign on Windows) parses.
#[test]
fn every_script_of_the_dry_runs_parses() {
    let fx = fixture();
    let sys = fx.sys.to_string_lossy().into_owned();
    let runs: [(Host, Vec<&str>); 6] = [
        (
            Host::Other("linux"),
            vec![
                "deploy",
                "--dry-run",
                "--sys",
                &sys,
                "--host",
                "vm",
                "--hardware-id",
                "Root\\it's",
            ],
        ),
        (
            Host::Other("linux"),
            vec![
                "deploy",
                "--dry-run",
                "--no-package",
                "--host",
                "vm",
                "--reboot",
                "--devgen-local",
                "/x/devgen.exe",
            ],
        ),
        (
            Host::Windows,
            vec![
                "deploy",
                "--dry-run",
                "--no-package",
                "--transport",
                "powershell-direct",
                "--vm-name",
                "v'm",
                "--reboot",
            ],
        ),
        (
            Host::Windows,
            vec![
                "deploy",
                "--dry-run",
                "--check",
                "--transport",
                "powershell-direct",
                "--vm-name",
                "vm",
            ],
        ),
        (
            Host::Other("linux"),
            vec!["undeploy", "--dry-run", "--host", "vm", "--remove-cert"],
        ),
        (Host::Windows, vec!["sign", "--dry-run"]),
    ];
    let mut seen = 0;
    for (host, args) in runs {
        let mut argv = vec!["xtask".to_owned()];
        argv.extend(fx.args(&args));
        let cli = Cli::parse_from(argv);
        let runner = RecordingRunner::new([
            "ssh",
            "scp",
            "osslsigncode",
            "openssl",
            "signtool",
            "powershell.exe",
        ]);
        let ctx = Ctx::new(&runner, true, host);
        xtask::run_in(&ctx, &cli).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        // Everything printed as `script>` (PowerShell Direct runs its script
        // from a file; the SSH steps' scripts one after the other).
        let printed: String = ctx
            .lines()
            .iter()
            .filter_map(|l| l.strip_prefix("      script> "))
            .flat_map(|l| [l, "\n"])
            .collect();
        if !printed.is_empty() {
            assert_parses(&format!("{args:?} (printed)"), &printed);
            seen += 1;
        }
        for cmd in ctx.commands() {
            let Some(i) = cmd.args.iter().position(|a| a == "-EncodedCommand") else {
                // ssh: the script is inside the remote command line.
                if let Some(line) = cmd.args.last().filter(|_| cmd.program == "ssh") {
                    let enc = line.split_whitespace().last().unwrap();
                    assert_parses(&format!("{args:?}"), &decode_command(enc).unwrap());
                    seen += 1;
                }
                continue;
            };
            assert_parses(
                &format!("{args:?}"),
                &decode_command(&cmd.args[i + 1]).unwrap(),
            );
            seen += 1;
        }
    }
    assert!(seen >= 15, "only {seen} scripts checked");
}
