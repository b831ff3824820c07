//! The Windows-target check can fail: in a scratch copy of the workspace it
//! plants, one at a time, a misspelled WDF function, a wrong handle type and
//! a wrong argument count in `dmf-kmdf`, and asserts that the check's clippy
//! run fails on each with the diagnostic that names it (and passes on the
//! unmodified copy first, so the failures are the plants').
//!
//! Needs the check's toolchain (see `cargo xtask check-windows --help`).
//! Without it the test says so and passes, except under `CI=true`, where a
//! missing tool is a failure.

use std::fs;
use std::path::{Path, PathBuf};
use xtask::check_windows::{commands, prepare, Toolchain};
use xtask::cli::{CheckWindowsArgs, WindowsTarget, WindowsTargetArg};
use xtask::runner::{CommandRunner, SystemRunner};
use xtask::workspace::Layout;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Copies the workspace's sources (no `target/`, no `.git/`).
fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "target" || name == ".git" {
            continue;
        }
        let src = entry.path();
        let dst = to.join(&name);
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&src, &dst);
        } else {
            fs::copy(&src, &dst).unwrap();
        }
    }
}

/// Runs the check's clippy step for x64 on `dmf-kmdf`; (success, stderr).
fn run_check(layout: &Layout, toolchain: &Toolchain) -> (bool, String) {
    prepare(layout).unwrap();
    let args = CheckWindowsArgs {
        target: WindowsTargetArg::X64,
        package: vec!["dmf-kmdf".to_owned()],
        no_doc: true,
        manifest_path: None,
    };
    let (what, mut cmd) = commands(layout, toolchain, &args, WindowsTarget::X64)
        .into_iter()
        .next()
        .unwrap();
    assert_eq!(what, "clippy");
    // Capture the diagnostics instead of streaming them.
    cmd.inherit_stdio = false;
    let out = SystemRunner.run(&cmd).unwrap();
    (out.success(), out.stderr)
}

/// Replaces `from` by `to` in `file` (exactly once); returns the original.
fn plant(file: &Path, from: &str, to: &str) -> String {
    let original = fs::read_to_string(file).unwrap();
    assert_eq!(
        original.matches(from).count(),
        1,
        "the planting site `{from}` must occur once in {}",
        file.display()
    );
    fs::write(file, original.replacen(from, to, 1)).unwrap();
    original
}

#[test]
fn the_windows_check_fails_on_planted_errors() {
    let toolchain = match Toolchain::locate() {
        Ok(t) => t,
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true and the Windows-target check cannot run: {e}")
        }
        Err(e) => {
            eprintln!("skipped (not under CI): {e}");
            return;
        }
    };
    let scratch = tempfile::tempdir().unwrap();
    let root = scratch.path().join("ws");
    copy_tree(&workspace_root(), &root);
    // Share the real check's target directory: core/alloc and the
    // dependencies are built once for both.
    let layout = Layout {
        root: root.clone(),
        target_dir: workspace_root().join("target"),
    };

    let (ok, stderr) = run_check(&layout, &toolchain);
    assert!(ok, "the unmodified copy must pass the check:\n{stderr}");

    let request = root.join("kmdf/src/request.rs");
    let io_target = root.join("kmdf/src/io_target.rs");
    let plants: [(&Path, &str, &str, &str); 3] = [
        (
            &request,
            "call_unsafe_wdf_function_binding!(WdfRequestReuse,",
            "call_unsafe_wdf_function_binding!(WdfRequestReuze,",
            // wdk-macros finds no `PFN_WDFREQUESTREUZE`.
            "WdfRequestReuze",
        ),
        (
            &request,
            "call_unsafe_wdf_function_binding!(WdfRequestCancelSentRequest, self.handle)",
            "call_unsafe_wdf_function_binding!(WdfRequestCancelSentRequest, self.handle as WDFIOTARGET)",
            "mismatched types",
        ),
        (
            &io_target,
            "call_unsafe_wdf_function_binding!(WdfIoTargetStart, self.handle)",
            "call_unsafe_wdf_function_binding!(WdfIoTargetStart, self.handle, 0)",
            "takes 1 argument but 2 arguments were supplied",
        ),
    ];
    for (file, from, to, expected) in plants {
        let original = plant(file, from, to);
        let (ok, stderr) = run_check(&layout, &toolchain);
        fs::write(file, original).unwrap();
        assert!(!ok, "the check passed with `{to}` planted");
        assert!(
            stderr.contains(expected),
            "planting `{to}`: expected a diagnostic containing `{expected}`, got:\n{stderr}"
        );
    }
}
