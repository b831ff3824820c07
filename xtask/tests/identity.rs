//! xtask takes the driver's identity from its crate (`.inx` `[Strings]` and
//! `[package.metadata.wdk.driver-model]`), not from its own defaults, and
//! stops with a clear message when the two files disagree.

mod common;

use clap::Parser;
use common::{fixture_with_inx, SAMPLE_INX};
use xtask::cli::{Cli, Command};
use xtask::identity::with_defaults;
use xtask::workspace::Layout;

fn defaults(fx: &common::Fixture, args: &[&str]) -> Command {
    let mut argv = vec!["xtask".to_owned()];
    argv.extend(fx.args(args));
    let cli = Cli::parse_from(argv);
    let layout = Layout::resolve(Some(fx.root.clone()), Some(fx.target())).unwrap();
    with_defaults(&layout, &cli.command).unwrap()
}

fn set_minor(fx: &common::Fixture, minor: u32) {
    let manifest = fx.root.join("sample-driver/Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replace(
            "target-kmdf-version-minor = 33",
            &format!("target-kmdf-version-minor = {minor}"),
        ),
    )
    .unwrap();
}

#[test]
fn kmdf_version_and_hardware_id_come_from_the_driver_crate() {
    let inx = SAMPLE_INX
        .replace("Root\\DMF_SAMPLE_DRIVER", "Root\\OTHER_DEVICE")
        .replace("10.0...22000", "10.0...19041");
    let fx = fixture_with_inx(inx.as_bytes());
    set_minor(&fx, 31);
    let Command::Package(p) = defaults(&fx, &["package", "--sys", "x.sys"]) else {
        panic!("not package")
    };
    assert_eq!(p.build.kmdf_version, "1.31");
    let Command::Deploy(d) = defaults(&fx, &["deploy", "--no-package", "--host", "h"]) else {
        panic!("not deploy")
    };
    assert_eq!(d.vm.hardware_id.as_deref(), Some("Root\\OTHER_DEVICE"));
    assert_eq!(d.build.kmdf_version, "1.31");

    // Flags and xtask.toml still win.
    let Command::Deploy(d) = defaults(
        &fx,
        &[
            "deploy",
            "--no-package",
            "--hardware-id",
            "Root\\FLAG",
            "--kmdf-version",
            "1.29",
        ],
    ) else {
        panic!("not deploy")
    };
    assert_eq!(d.vm.hardware_id.as_deref(), Some("Root\\FLAG"));
    assert_eq!(d.build.kmdf_version, "1.29");
    std::fs::write(
        fx.root.join("xtask.toml"),
        "[deploy]\nhardware_id = \"Root\\\\FROM_TOML\"\n",
    )
    .unwrap();
    let Command::Deploy(d) = defaults(&fx, &["deploy", "--no-package"]) else {
        panic!("not deploy")
    };
    assert_eq!(d.vm.hardware_id, None, "left to xtask.toml");
}

#[test]
fn package_with_the_stamped_kmdf_version_of_the_manifest() {
    let fx = fixture_with_inx(
        SAMPLE_INX
            .replace("10.0...22000", "10.0...19041")
            .as_bytes(),
    );
    set_minor(&fx, 31);
    fx.run_ok(&["package", "--sys", &fx.sys.to_string_lossy()]);
    let inf = std::fs::read_to_string(fx.package_dir().join("sample_driver.inf")).unwrap();
    assert!(inf.contains("KmdfLibraryVersion = 1.31"), "{inf}");
}

#[test]
fn an_inx_older_than_the_kmdf_version_is_refused_clearly() {
    let fx = fixture_with_inx(
        SAMPLE_INX
            .replace("10.0...22000", "10.0...16299")
            .as_bytes(),
    );
    let err = fx.run_err(&["package", "--sys", &fx.sys.to_string_lossy()]);
    assert!(err.contains("sample_driver.inx"), "{err}");
    assert!(err.contains("allows Windows build 16299"), "{err}");
    assert!(err.contains("KMDF 1.33"), "{err}");
    assert!(err.contains("use NT$ARCH$.10.0...22000"), "{err}");
    assert!(!fx.package_dir().exists());
}

#[test]
fn a_manifest_without_driver_model_is_refused_clearly() {
    let fx = fixture_with_inx(SAMPLE_INX.as_bytes());
    let manifest = fx.root.join("sample-driver/Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let cut = text.find("[package.metadata.wdk.driver-model]").unwrap();
    std::fs::write(&manifest, &text[..cut]).unwrap();
    let err = fx.run_err(&["package", "--sys", &fx.sys.to_string_lossy()]);
    assert!(
        err.contains("[package.metadata.wdk.driver-model] is missing"),
        "{err}"
    );
}
