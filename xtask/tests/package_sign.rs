//! `cargo xtask package` and `sign` end to end on Linux: stamped INF in both
//! encodings, package layout, atomic publishing, and real signing and
//! verification with osslsigncode (catalog included).

mod common;

use std::process::Command;

use common::*;
use sha1::{Digest, Sha1};
use xtask::inf::{encode, InfEncoding};

#[test]
fn package_from_utf16_inx_lays_out_package_and_keeps_encoding() {
    let fx = fixture();
    let sys = fx.sys.to_string_lossy().into_owned();
    let out = fx.run_ok(&["package", "--sys", &sys]);
    assert!(
        out.contains("==> package: using prebuilt driver binary"),
        "{out}"
    );
    assert!(out.contains("built-in stampinf"), "{out}");

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
        encode(
            &SAMPLE_INF_AMD64.replace('\n', "\r\n"),
            InfEncoding::Utf16LeBom
        ),
        "UTF-16LE input must give the expected UTF-16LE INF"
    );
    // Nothing but the package next to it: no staging leftovers.
    assert_eq!(
        names(&fx.target().join("driver")),
        ["sample_driver_package"]
    );
}

#[test]
fn package_from_ascii_inx_gives_ascii_inf() {
    let fx = fixture_with_inx(SAMPLE_INX.as_bytes());
    let sys = fx.sys.to_string_lossy().into_owned();
    fx.run_ok(&[
        "package",
        "--sys",
        &sys,
        "--profile",
        "release",
        "--driver-date",
        "03/07/2026",
    ]);
    let inf = std::fs::read(
        fx.target()
            .join("release/sample_driver_package/sample_driver.inf"),
    )
    .unwrap();
    assert_eq!(String::from_utf8(inf).unwrap(), SAMPLE_INF_AMD64);
}

#[test]
fn package_version_override_and_arm64_mismatch() {
    let fx = fixture_with_inx(SAMPLE_INX.as_bytes());
    let sys = fx.sys.to_string_lossy().into_owned();
    fx.run_ok(&["package", "--sys", &sys, "--driver-version", "2.1.0.7"]);
    let inf = std::fs::read_to_string(fx.package_dir().join("sample_driver.inf")).unwrap();
    assert!(inf.contains("DriverVer   = 03/07/2026,2.1.0.7\n"), "{inf}");

    let err = fx.run_err(&["package", "--sys", &sys, "--target-arch", "arm64"]);
    assert!(
        err.contains("is built for amd64, but --target-arch is arm64"),
        "{err}"
    );
}

#[test]
fn driver_ver_uses_the_local_date_and_a_version_unique_per_build() {
    let fx = fixture_with_inx(SAMPLE_INX.as_bytes());
    let sys = fx.sys.to_string_lossy().into_owned();
    let la = [("TZ", "America/Los_Angeles")];
    let driver_ver = || {
        let inf = std::fs::read_to_string(fx.package_dir().join("sample_driver.inf")).unwrap();
        inf.lines()
            .find_map(|l| l.strip_prefix("DriverVer   = "))
            .unwrap()
            .to_owned()
    };
    // 03/07/2026 03:00 UTC is 03/06/2026 19:00 in Los Angeles: the date
    // inf2cat /uselocaltime expects there, not the UTC one (in its future).
    let at = |secs: u64| -> (String, String) {
        let epoch = secs.to_string();
        let out = fx.run_env(
            &["package", "--sys", &sys],
            &[la[0], ("SOURCE_DATE_EPOCH", epoch.as_str())],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let cat = std::fs::read(fx.package_dir().join("sample_driver.cat")).unwrap();
        (driver_ver(), String::from_utf8_lossy(&cat).into_owned())
    };
    let (first, cat) = at(1_772_852_400);
    assert_eq!(first, "03/06/2026,0.1.0.34200");
    // The catalog's time is SOURCE_DATE_EPOCH's (UTCTime 260307030000Z).
    assert!(
        cat.contains("260307030000Z"),
        "catalog time is not SOURCE_DATE_EPOCH"
    );
    // A second build the same (local) day is newer.
    let (second, _) = at(1_772_852_400 + 3600);
    assert_eq!(second, "03/06/2026,0.1.0.36000");
    // Two seconds later still differs; an explicit version wins.
    let (third, _) = at(1_772_852_400 + 3602);
    assert_eq!(third, "03/06/2026,0.1.0.36001");
    let out = fx.run_env(
        &["package", "--sys", &sys, "--driver-version", "3.2.1.0"],
        &la,
    );
    assert!(out.status.success());
    assert_eq!(driver_ver(), "03/06/2026,3.2.1.0");
    let out = fx.run_env(
        &["package", "--sys", &sys],
        &[la[0], ("STAMPINF_VERSION", "4.0")],
    );
    assert!(out.status.success());
    assert_eq!(driver_ver(), "03/06/2026,4.0.0.0");
}

#[test]
fn driver_ver_validation_refuses_what_windows_refuses() {
    let fx = fixture_with_inx(SAMPLE_INX.as_bytes());
    let sys = fx.sys.to_string_lossy().into_owned();
    for (args, expected) in [
        (
            vec!["--driver-date", "02/31/2026"],
            "invalid driver date `02/31/2026`",
        ),
        (
            vec!["--driver-date", "12/31/2999"],
            "driver date 12/31/2999 is in the future",
        ),
        (
            vec!["--driver-version", "0.0.0.0"],
            "invalid driver version `0.0.0.0`",
        ),
        (
            vec!["--driver-version", "1.0.0.65535"],
            "invalid driver version `1.0.0.65535`",
        ),
    ] {
        let mut a = vec!["package", "--sys", sys.as_str()];
        a.extend(args);
        let err = fx.run_err(&a);
        assert!(err.contains(expected), "{a:?}: {err}");
    }
    // SOURCE_DATE_EPOCH in the future (year 2100) or not a number.
    let out = fx.run_env(
        &["package", "--sys", &sys],
        &[("SOURCE_DATE_EPOCH", "4102444800")],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is in the future"));
    let out = fx.run_env(
        &["package", "--sys", &sys],
        &[("SOURCE_DATE_EPOCH", "yesterday")],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("SOURCE_DATE_EPOCH=`yesterday`"));
    assert!(!fx.package_dir().exists(), "nothing may be published");
}

#[test]
fn catalog_lists_every_file_source_disks_files_names() {
    let inx = SAMPLE_INX.replace(
        "sample_driver.sys = 1,,\n",
        "sample_driver.sys = 1,,\nsample_helper.dat = 1,,\n",
    );
    let fx = fixture_with_inx(inx.as_bytes());
    let sys = fx.sys.to_string_lossy().into_owned();
    let err = fx.run_err(&["package", "--sys", &sys]);
    assert!(
        err.contains("[SourceDisksFiles] names sample_helper.dat, which is not in the package"),
        "{err}"
    );
    std::fs::write(
        fx.root.join("sample-driver/sample_helper.dat"),
        b"helper data",
    )
    .unwrap();
    let out = fx.run_ok(&["package", "--sys", &sys]);
    assert!(
        out.contains("SHA-1 members sample_driver.inf, sample_driver.sys, sample_helper.dat"),
        "{out}"
    );
    let dir = fx.package_dir();
    assert!(names(&dir).contains(&"sample_helper.dat".to_owned()));
    let cat = std::fs::read(dir.join("sample_driver.cat")).unwrap();
    let digest: [u8; 20] = Sha1::digest(b"helper data").into();
    assert!(
        cat.windows(20).any(|w| w == digest),
        "helper not hashed in the catalog"
    );
    let name: Vec<u8> = "sample_helper.dat"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    assert!(cat.windows(name.len()).any(|w| w == name.as_slice()));
}

#[test]
fn package_without_sys_on_linux_explains_what_to_do() {
    let fx = fixture();
    let err = fx.run_err(&["package"]);
    assert!(
        err.contains("cannot build a KMDF driver on this host (linux)"),
        "{err}"
    );
    assert!(err.contains("--sys PATH"), "{err}");
    assert!(!fx.target().exists(), "nothing may be written");
}

#[test]
fn package_errors_are_clear() {
    let fx = fixture();
    // Not a PE image.
    let bogus = fx.tmp.path().join("bogus.sys");
    std::fs::write(&bogus, b"\x7fELF not a driver").unwrap();
    let err = fx.run_err(&["package", "--sys", &bogus.to_string_lossy()]);
    assert!(err.contains("is not a PE image: no MZ signature"), "{err}");
    // Missing driver crate.
    let err = fx.run_err(&[
        "package",
        "--sys",
        &fx.sys.to_string_lossy(),
        "--driver-package",
        "nope",
    ]);
    assert!(err.contains("driver crate `nope` not found"), "{err}");
    // Missing .inx.
    std::fs::remove_file(fx.root.join("sample-driver/sample_driver.inx")).unwrap();
    let err = fx.run_err(&["package", "--sys", &fx.sys.to_string_lossy()]);
    assert!(err.contains("sample_driver.inx not found"), "{err}");
}

#[test]
fn failed_package_leaves_previous_package_untouched_and_no_staging() {
    let fx = fixture_with_inx(SAMPLE_INX.as_bytes());
    let sys = fx.sys.to_string_lossy().into_owned();
    fx.run_ok(&["package", "--sys", &sys]);
    let before = std::fs::read(fx.package_dir().join("sample_driver.inf")).unwrap();

    // A template without [Version] (its identity is fine) fails after
    // staging has started.
    std::fs::write(
        fx.root.join("sample-driver/sample_driver.inx"),
        "[Manufacturer]\n%M% = S,NT$ARCH$.10.0...22000\n[S.NT$ARCH$.10.0...22000]\n\
         %D% = Dev, %HardwareId%\n[Dev.NT.Services]\nAddService = %ServiceName%, 2, Svc\n\
         [Strings]\nServiceName = \"sample_driver\"\nHardwareId = \"Root\\X\"\n\
         InterfaceGuid = \"{8C0E1B52-3D6A-4F7B-9E21-5A4C7D93B160}\"\n",
    )
    .unwrap();
    let err = fx.run_err(&["package", "--sys", &sys]);
    assert!(err.contains("the INF has no [Version] section"), "{err}");
    assert_eq!(
        std::fs::read(fx.package_dir().join("sample_driver.inf")).unwrap(),
        before
    );
    assert_eq!(
        names(&fx.target().join("driver")),
        ["sample_driver_package"]
    );
}

#[test]
fn sign_without_package_is_clear() {
    let fx = fixture();
    let err = fx.run_err(&["sign"]);
    assert!(err.contains("no package at"), "{err}");
    assert!(err.contains("run `cargo xtask package` first"), "{err}");
}

fn osslsigncode(args: &[&str]) -> (bool, String) {
    let out = Command::new("osslsigncode").args(args).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn sign_with_test_certificate_then_verify_sys_and_catalog_independently() {
    if !require("sign_with_test_certificate", &["osslsigncode", "openssl"]) {
        return;
    }
    let fx = fixture();
    let sys_arg = fx.sys.to_string_lossy().into_owned();
    fx.run_ok(&["package", "--sys", &sys_arg]);
    let out = fx.run_ok(&["sign"]);
    assert!(out.contains("create test certificate"), "{out}");
    assert!(
        out.contains("==> sign: verify sample_driver.sys in sample_driver.cat"),
        "{out}"
    );

    let dir = fx.package_dir();
    assert_eq!(
        names(&dir),
        [
            "DmfSampleTestCert.cer",
            "sample_driver.cat",
            "sample_driver.inf",
            "sample_driver.sys"
        ]
    );
    let certs = fx.target().join("xtask-cert");
    assert_eq!(
        names(&certs),
        [
            "DmfSampleTestCert.cer",
            "DmfSampleTestCert.key.pem",
            "DmfSampleTestCert.pem",
            "DmfSampleTestCert.pfx"
        ]
    );
    let ca = certs.join("DmfSampleTestCert.pem");
    let ca = ca.to_string_lossy();
    let sys = dir.join("sample_driver.sys");
    let cat = dir.join("sample_driver.cat");
    let (sys, cat) = (sys.to_string_lossy(), cat.to_string_lossy());

    // Embedded signature of the .sys.
    let (ok, text) = osslsigncode(&["verify", "-CAfile", &ca, "-in", &sys]);
    assert!(ok && text.contains("Signature verification: ok"), "{text}");
    // Signature of the catalog.
    let (ok, text) = osslsigncode(&["verify", "-CAfile", &ca, "-in", &cat]);
    assert!(ok && text.contains("Signature verification: ok"), "{text}");
    // The .sys is a member of the signed catalog (Authenticode hash matches).
    let (ok, text) = osslsigncode(&["verify", "-CAfile", &ca, "-catalog", &cat, "-in", &sys]);
    assert!(ok && text.contains("File is signed in catalog"), "{text}");
    // The catalog lists the INF with the SHA-1 of its bytes.
    let (ok, text) = osslsigncode(&["verify", "-verbose", "-CAfile", &ca, "-in", &cat]);
    assert!(ok, "{text}");
    let inf_sha1: String = Sha1::digest(std::fs::read(dir.join("sample_driver.inf")).unwrap())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    assert!(text.contains("File name: sample_driver.inf"), "{text}");
    assert!(
        text.contains(&inf_sha1),
        "INF digest {inf_sha1} not listed: {text}"
    );

    // A changed driver no longer matches the catalog.
    let tampered = fx.tmp.path().join("tampered.sys");
    let mut bytes = std::fs::read(dir.join("sample_driver.sys")).unwrap();
    bytes[0x208] ^= 0xFF;
    std::fs::write(&tampered, bytes).unwrap();
    let (ok, text) = osslsigncode(&[
        "verify",
        "-CAfile",
        &ca,
        "-catalog",
        &cat,
        "-in",
        &tampered.to_string_lossy(),
    ]);
    assert!(!ok, "tampered file must fail catalog verification: {text}");

    // Signing again reuses the certificate and re-signs cleanly.
    let out = fx.run_ok(&["sign"]);
    assert!(out.contains("(reused)"), "{out}");
    let (ok, text) = osslsigncode(&["verify", "-CAfile", &ca, "-catalog", &cat, "-in", &sys]);
    assert!(ok, "{text}");
}

#[test]
fn sign_with_given_pfx_and_der_certificate() {
    if !require("sign_with_given_pfx", &["osslsigncode", "openssl"]) {
        return;
    }
    let fx = fixture_with_inx(SAMPLE_INX.as_bytes());
    let sys = fx.sys.to_string_lossy().into_owned();
    fx.run_ok(&["package", "--sys", &sys]);
    // Make a certificate elsewhere (as a developer would bring one).
    let own = fx.tmp.path().join("own");
    std::fs::create_dir(&own).unwrap();
    let key = own.join("k.pem");
    let pem = own.join("c.pem");
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "30",
            "-subj",
            "/CN=Own Test Signer",
        ])
        .args([
            "-addext",
            "extendedKeyUsage=codeSigning",
            "-addext",
            "keyUsage=critical,digitalSignature",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&pem)
        .output()
        .unwrap();
    assert!(status.status.success());
    let cer = own.join("own.cer");
    let pfx = own.join("own.pfx");
    assert!(Command::new("openssl")
        .args(["x509", "-outform", "DER", "-in"])
        .arg(&pem)
        .arg("-out")
        .arg(&cer)
        .status()
        .unwrap()
        .success());
    assert!(Command::new("openssl")
        .args(["pkcs12", "-export", "-passout", "pass:s3cret", "-inkey"])
        .arg(&key)
        .arg("-in")
        .arg(&pem)
        .arg("-out")
        .arg(&pfx)
        .status()
        .unwrap()
        .success());

    // Signed once with the test certificate first: re-signing must replace its .cer.
    fx.run_ok(&["sign", "--no-verify"]);
    assert!(names(&fx.package_dir()).contains(&"DmfSampleTestCert.cer".to_owned()));
    std::fs::remove_dir_all(fx.target().join("xtask-cert")).unwrap();

    let (pfx, cer) = (
        pfx.to_string_lossy().into_owned(),
        cer.to_string_lossy().into_owned(),
    );
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(fx.args(&["sign", "--pfx", &pfx, "--cer", &cer]))
        .env("XTASK_PFX_PASSWORD", "s3cret")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("-pkcs12"), "{stdout}");
    assert!(
        stdout.contains("-pass ******"),
        "password must be redacted: {stdout}"
    );
    assert!(!stdout.contains("s3cret"), "password leaked: {stdout}");
    assert_eq!(
        names(&fx.package_dir()),
        [
            "own.cer",
            "sample_driver.cat",
            "sample_driver.inf",
            "sample_driver.sys"
        ]
    );
    assert!(
        !fx.target().join("xtask-cert").exists(),
        "no test certificate when one is given"
    );

    // A wrong password fails at signing and leaves the package as it was.
    let cat_before = std::fs::read(fx.package_dir().join("sample_driver.cat")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(fx.args(&[
            "sign",
            "--pfx",
            &pfx,
            "--cer",
            &cer,
            "--pfx-password",
            "wrong",
        ]))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("sign: signing sample_driver.sys failed"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(fx.package_dir().join("sample_driver.cat")).unwrap(),
        cat_before
    );
    assert_eq!(
        names(&fx.target().join("driver")),
        ["sample_driver_package"]
    );
}
