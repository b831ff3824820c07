//! `cargo xtask new-driver` makes a crate that stands alone: generated into a
//! temporary directory outside the workspace, it has a fresh, consistent
//! identity, its `cargo test` passes offline, and its KMDF build passes the
//! Windows-target check (`check-windows --manifest-path`).
//!
//! The generated crate builds in `target/new-driver-test` of this workspace
//! (incremental across runs); the Windows check needs its toolchain and is
//! skipped without it, except under `CI=true`.

use std::path::{Path, PathBuf};
use std::process::Command;

use dmf_driver_identity::{format_guid, Identity};
use xtask::check_windows::Toolchain;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn xtask(args: &[&str]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .output()
        .expect("run xtask");
    println!("--- xtask {}", args.join(" "));
    println!("{}", String::from_utf8_lossy(&out.stdout));
    println!("stderr: {}", String::from_utf8_lossy(&out.stderr));
    out
}

#[test]
fn refuses_bad_names_and_existing_directories() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_string_lossy().into_owned();
    let out = xtask(&["new-driver", "9lives", "--path", &dir]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("`9lives` is not a usable driver name"));

    std::fs::create_dir_all(tmp.path().join("taken")).unwrap();
    std::fs::write(tmp.path().join("taken/keep.txt"), "x").unwrap();
    let out = xtask(&["new-driver", "taken", "--path", &dir]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already exists and is not empty"), "{err}");
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("taken/keep.txt")).unwrap(),
        "x"
    );
}

#[test]
fn generated_driver_tests_pass_and_its_kmdf_build_checks() {
    let tmp = tempfile::tempdir().unwrap();
    let out = xtask(&[
        "new-driver",
        "mydrv",
        "--path",
        &tmp.path().to_string_lossy(),
    ]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("next steps:"), "{stdout}");
    assert!(stdout.contains("cargo test"), "{stdout}");
    let krate = tmp.path().join("mydrv");

    // A fresh identity, consistent across the INX and the manifest.
    let id = Identity::load(&krate, "mydrv").unwrap();
    let sample = Identity::load(&workspace_root().join("sample-driver"), "sample_driver").unwrap();
    assert_eq!(id.service_name, "mydrv");
    assert_eq!(id.hardware_id, r"Root\MYDRV");
    assert_ne!(id.interface_guid, sample.interface_guid);
    assert_eq!(id.kmdf, sample.kmdf);
    assert!(stdout.contains(&format_guid(id.interface_guid)), "{stdout}");
    for file in [
        "Cargo.toml",
        "build.rs",
        "mydrv.inx",
        "src/lib.rs",
        "src/kmdf.rs",
    ] {
        let text = std::fs::read_to_string(krate.join(file)).unwrap();
        assert!(
            !text.contains("sample_driver"),
            "{file} still names the sample"
        );
        assert!(
            !text.contains("DMF_SAMPLE_DRIVER"),
            "{file} still names the sample"
        );
    }
    assert!(krate.join("Cargo.lock").is_file());

    // Its tests pass out of the box, offline (the lock file is the seed).
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["test", "--offline", "--quiet"])
        .current_dir(&krate)
        .env(
            "CARGO_TARGET_DIR",
            workspace_root().join("target/new-driver-test"),
        )
        .env_remove("RUSTFLAGS")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "cargo test of the new driver failed:\n{stderr}"
    );
    assert!(
        !stderr.contains("warning:"),
        "the new driver builds with warnings:\n{stderr}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("test result: ok"), "{stdout}");

    // Its KMDF build passes the Windows-target check.
    if let Err(e) = Toolchain::locate() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("CI=true and the Windows-target check cannot run: {e}");
        }
        eprintln!("Windows-target check skipped (not under CI): {e}");
        return;
    }
    let manifest = krate.join("Cargo.toml");
    let out = xtask(&[
        "check-windows",
        "--target",
        "x64",
        "--no-doc",
        "--manifest-path",
        &manifest.to_string_lossy(),
    ]);
    assert!(
        out.status.success(),
        "the new driver fails the Windows-target check:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
