//! `cargo xtask sign`: test certificate, signing of `.sys` and `.cat`,
//! verification.

use std::path::{Path, PathBuf};

use crate::catalog::Member;
use crate::cli::{CertArgs, TargetArgs};
use crate::ctx::{Ctx, FsError, ToolError};
use crate::package::{package_dir, Package};
use crate::ps;
use crate::runner::Cmd;
use crate::staging::Staged;
use crate::workspace::{DriverCrate, Layout, WorkspaceError};

/// File stem of the generated test certificate.
pub const TEST_CERT_NAME: &str = "DmfSampleTestCert";
/// Subject of the generated test certificate.
pub const TEST_CERT_SUBJECT: &str = "DMF Sample Driver Test Certificate (xtask)";
/// Password of the generated `.pfx` (a throw-away test key).
pub const TEST_PFX_PASSWORD: &str = "xtask-test";

/// Why signing failed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// Workspace or driver crate problem.
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
    /// Nothing to sign.
    #[error("no package at {}: run `cargo xtask package` first", .0.display())]
    NoPackage(PathBuf),
    /// The package lacks a file.
    #[error("{} is missing from the package: run `cargo xtask package` again", .0.display())]
    Incomplete(PathBuf),
    /// A given certificate file does not exist.
    #[error("certificate file {} does not exist", .0.display())]
    CertMissing(PathBuf),
    /// Creating the test certificate failed.
    #[error("creating the test certificate failed: {0}")]
    CertCreate(ToolError),
    /// A signing tool is missing or failed.
    #[error("signing {file} failed: {source}")]
    Sign {
        /// The file being signed.
        file: String,
        /// What went wrong.
        source: ToolError,
    },
    /// A signature did not verify.
    #[error("verifying {what} failed: {source}{hint}")]
    Verify {
        /// What was verified.
        what: String,
        /// What went wrong.
        source: ToolError,
        /// How to proceed.
        hint: String,
    },
    /// The catalog does not list a file of the package.
    #[error("{cat} does not list {file} (SHA-1 {tag}): the package changed after the catalog was made; run `cargo xtask package` again")]
    NotInCatalog {
        /// Catalog name.
        cat: String,
        /// File name.
        file: String,
        /// Its expected tag.
        tag: String,
    },
    /// osslsigncode too old to verify catalogs.
    #[error("osslsigncode {0} cannot verify catalog membership (2.8 or newer needed): {hint}; or pass --no-verify", hint = crate::ctx::OSSLSIGNCODE_HINT)]
    OldOsslsigncode(String),
    /// A file operation failed.
    #[error(transparent)]
    Fs(#[from] FsError),
}

/// The certificate and key used to sign.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SigningCert {
    /// PKCS#12 with key and certificate.
    pub pfx: PathBuf,
    /// Its password.
    pub password: String,
    /// The public certificate shipped in the package and imported on the VM.
    pub cer: PathBuf,
    /// PEM certificate (osslsigncode `-certs`/`-CAfile`), when available.
    pub cert_pem: Option<PathBuf>,
    /// PEM private key (osslsigncode `-key`), when available.
    pub key_pem: Option<PathBuf>,
}

/// The generated test certificate's files in `dir`.
pub fn test_cert_files(dir: &Path) -> SigningCert {
    SigningCert {
        pfx: dir.join(format!("{TEST_CERT_NAME}.pfx")),
        password: TEST_PFX_PASSWORD.to_owned(),
        cer: dir.join(format!("{TEST_CERT_NAME}.cer")),
        cert_pem: Some(dir.join(format!("{TEST_CERT_NAME}.pem"))),
        key_pem: Some(dir.join(format!("{TEST_CERT_NAME}.key.pem"))),
    }
}

fn cert_complete(cert: &SigningCert, windows: bool) -> bool {
    let mut files = vec![&cert.pfx, &cert.cer];
    if !windows {
        files.extend(cert.cert_pem.iter());
        files.extend(cert.key_pem.iter());
    }
    files.iter().all(|f| f.is_file())
}

/// Returns the test certificate under `target/xtask-cert/`, creating it
/// (openssl, or New-SelfSignedCertificate on Windows) if it is missing.
pub fn ensure_test_cert(ctx: &Ctx<'_>, layout: &Layout) -> Result<SigningCert, SignError> {
    let dir = layout.cert_dir();
    let cert = test_cert_files(&dir);
    let windows = ctx.host().is_windows();
    if cert_complete(&cert, windows) {
        ctx.step(
            "sign",
            format!("test certificate {} (reused)", cert.cer.display()),
        );
        return Ok(cert);
    }
    ctx.step(
        "sign",
        format!(
            "create test certificate CN={TEST_CERT_SUBJECT} in {}",
            dir.display()
        ),
    );
    let staged = Staged::begin(ctx, &dir)?;
    let s = test_cert_files(staged.path());
    if windows {
        let script = format!(
            "$ErrorActionPreference = 'Stop'\n\
             $c = New-SelfSignedCertificate -Type CodeSigningCert -Subject {subject} -CertStoreLocation Cert:\\CurrentUser\\My -KeyAlgorithm RSA -KeyLength 3072 -HashAlgorithm SHA256 -KeyExportPolicy Exportable -NotAfter (Get-Date).AddYears(5)\n\
             $pw = ConvertTo-SecureString -String {pw} -Force -AsPlainText\n\
             Export-PfxCertificate -Cert $c -FilePath {pfx} -Password $pw | Out-Null\n\
             Export-Certificate -Cert $c -FilePath {cer} -Type CERT | Out-Null\n\
             Remove-Item -Path ('Cert:\\CurrentUser\\My\\' + $c.Thumbprint)\n",
            subject = ps::quote(&format!("CN={TEST_CERT_SUBJECT}")),
            pw = ps::quote(TEST_PFX_PASSWORD),
            pfx = ps::quote(&s.pfx.to_string_lossy()),
            cer = ps::quote(&s.cer.to_string_lossy()),
        );
        ctx.exec(ps::local_script(&script, false))
            .map_err(SignError::CertCreate)?;
    } else {
        let openssl = ctx.require_tool("openssl").map_err(SignError::CertCreate)?;
        let pem = &staged.path().join(format!("{TEST_CERT_NAME}.pem"));
        let key = &staged.path().join(format!("{TEST_CERT_NAME}.key.pem"));
        let req = Cmd::new(openssl.clone())
            .args([
                "req", "-x509", "-newkey", "rsa:3072", "-sha256", "-days", "1825", "-nodes",
            ])
            .args(["-subj", &format!("/CN={TEST_CERT_SUBJECT}")])
            .args(["-addext", "extendedKeyUsage=codeSigning"])
            .args(["-addext", "keyUsage=critical,digitalSignature"])
            .args(["-addext", "basicConstraints=critical,CA:FALSE"])
            .arg("-keyout")
            .arg_path(key)
            .arg("-out")
            .arg_path(pem);
        ctx.exec(req).map_err(SignError::CertCreate)?;
        let der = Cmd::new(openssl.clone())
            .args(["x509", "-in"])
            .arg_path(pem)
            .args(["-outform", "DER", "-out"])
            .arg_path(&s.cer);
        ctx.exec(der).map_err(SignError::CertCreate)?;
        let pfx = Cmd::new(openssl)
            .args(["pkcs12", "-export", "-inkey"])
            .arg_path(key)
            .arg("-in")
            .arg_path(pem)
            .args([
                "-name",
                TEST_CERT_NAME,
                "-passout",
                &format!("pass:{TEST_PFX_PASSWORD}"),
                "-out",
            ])
            .arg_path(&s.pfx);
        ctx.exec(pfx).map_err(SignError::CertCreate)?;
    }
    staged.commit()?;
    Ok(cert)
}

/// The certificate to sign with: `--pfx`/`--cer`, else the test certificate.
pub fn signing_cert(
    ctx: &Ctx<'_>,
    layout: &Layout,
    args: &CertArgs,
) -> Result<SigningCert, SignError> {
    match (&args.pfx, &args.cer) {
        (Some(pfx), Some(cer)) => {
            for f in [pfx, cer] {
                if !ctx.dry_run() && !f.is_file() {
                    return Err(SignError::CertMissing(f.clone()));
                }
            }
            ctx.step(
                "sign",
                format!("certificate {} (key {})", cer.display(), pfx.display()),
            );
            Ok(SigningCert {
                pfx: pfx.clone(),
                password: args.pfx_password.clone(),
                cer: cer.clone(),
                cert_pem: None,
                key_pem: None,
            })
        }
        _ => ensure_test_cert(ctx, layout),
    }
}

/// A signed package.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedPackage {
    /// The package.
    pub package: Package,
    /// File name of the certificate inside the package.
    pub cer_name: String,
}

fn sign_cmd(
    ctx: &Ctx<'_>,
    tool: &str,
    cert: &SigningCert,
    args: &CertArgs,
    file: &Path,
    out: &Path,
    desc: &str,
) -> Cmd {
    if ctx.host().is_windows() {
        let mut cmd = Cmd::new(tool)
            .args(["sign", "/v", "/fd", "SHA256", "/f"])
            .arg_path(&cert.pfx)
            .arg("/p")
            .secret_arg(cert.password.clone());
        if let Some(url) = &args.timestamp_url {
            cmd = cmd.args(["/tr", url.as_str(), "/td", "SHA256"]);
        }
        return cmd.arg_path(file);
    }
    let mut cmd = Cmd::new(tool).arg("sign");
    cmd = match (&cert.cert_pem, &cert.key_pem) {
        (Some(pem), Some(key)) => cmd.arg("-certs").arg_path(pem).arg("-key").arg_path(key),
        _ => cmd
            .arg("-pkcs12")
            .arg_path(&cert.pfx)
            .arg("-pass")
            .secret_arg(cert.password.clone()),
    };
    cmd = cmd.args(["-h", "sha256", "-n", desc]);
    if let Some(url) = &args.timestamp_url {
        cmd = cmd.args(["-ts", url.as_str()]);
    }
    cmd.arg("-in").arg_path(file).arg("-out").arg_path(out)
}

/// Runs the sign step on the package of `target`.
pub fn sign(
    ctx: &Ctx<'_>,
    layout: &Layout,
    target: &TargetArgs,
    args: &CertArgs,
) -> Result<SignedPackage, SignError> {
    let driver = DriverCrate::load(layout, &target.driver_package)?;
    let pkg = Package {
        dir: package_dir(layout, target, &driver),
        driver,
    };
    let lib = pkg.driver.lib_name.clone();
    ctx.step("sign", format!("package {}", pkg.dir.display()));
    if !ctx.dry_run() {
        if !pkg.dir.is_dir() {
            return Err(SignError::NoPackage(pkg.dir.clone()));
        }
        for ext in ["sys", "inf", "cat"] {
            if !pkg.file(ext).is_file() {
                return Err(SignError::Incomplete(pkg.file(ext)));
            }
        }
    }
    let windows = ctx.host().is_windows();
    let tool = if windows { "signtool" } else { "osslsigncode" };
    let tool = match (windows, crate::package::find_wdk_tool(ctx, tool)) {
        (true, Some(found)) => found,
        _ => ctx.require_tool(tool).map_err(|source| SignError::Sign {
            file: format!("{lib}.sys"),
            source,
        })?,
    };
    if !windows && !args.no_verify && !ctx.dry_run() {
        check_osslsigncode_version(ctx, &tool)?;
    }
    let cert = signing_cert(ctx, layout, args)?;

    ctx.step("sign", format!("stage a copy of {}", pkg.dir.display()));
    let staged = Staged::begin(ctx, &pkg.dir)?;
    let stage = staged.path().to_path_buf();
    if ctx.dry_run() {
        ctx.note(format!(
            "copy {}/* -> {}/",
            pkg.dir.display(),
            stage.display()
        ));
    } else {
        let entries =
            std::fs::read_dir(&pkg.dir).map_err(|e| FsError::new("read directory", &pkg.dir, e))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_ascii_lowercase();
            // A certificate from an earlier signing is replaced below.
            if entry.path().is_file() && !name.ends_with(".cer") && !name.ends_with(".signed") {
                ctx.copy(&entry.path(), &stage.join(entry.file_name()))?;
            }
        }
    }

    for ext in ["sys", "cat"] {
        let name = format!("{lib}.{ext}");
        let file = stage.join(&name);
        let signed = stage.join(format!("{name}.signed"));
        ctx.step(
            "sign",
            format!(
                "{name} ({})",
                if windows { "signtool" } else { "osslsigncode" }
            ),
        );
        if !windows && !ctx.dry_run() {
            // osslsigncode refuses to overwrite; a stale output would fail.
            let _ = std::fs::remove_file(&signed);
        }
        let cmd = sign_cmd(ctx, &tool, &cert, args, &file, &signed, &lib);
        ctx.exec(cmd).map_err(|source| SignError::Sign {
            file: name.clone(),
            source,
        })?;
        if !windows {
            ctx.rename(&signed, &file)?;
        }
    }

    let cer_name = cert
        .cer
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| format!("{TEST_CERT_NAME}.cer"));

    if args.no_verify {
        ctx.step("sign", "verification skipped (--no-verify)");
    } else {
        verify(ctx, layout, &tool, &cert, &stage, &lib)?;
    }

    ctx.step("sign", format!("add {cer_name} to the package"));
    ctx.copy(&cert.cer, &stage.join(&cer_name))?;
    ctx.step("sign", format!("publish {}", pkg.dir.display()));
    staged.commit()?;
    Ok(SignedPackage {
        package: pkg,
        cer_name,
    })
}

/// `osslsigncode 2.9, using: ...` -> `(2, 9)`.
pub fn parse_osslsigncode_version(output: &str) -> Option<(u32, u32)> {
    let word = output
        .split_whitespace()
        .skip_while(|w| *w != "osslsigncode")
        .nth(1)?;
    let mut parts = word.trim_end_matches(',').split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().map_or(Some(0), |m| m.parse().ok())?;
    Some((major, minor))
}

/// Catalog verification (`verify -catalog`) needs osslsigncode 2.8 or newer.
fn check_osslsigncode_version(ctx: &Ctx<'_>, tool: &str) -> Result<(), SignError> {
    let out = ctx
        .exec(Cmd::new(tool).arg("--version"))
        .map_err(|source| SignError::Verify {
            what: "the osslsigncode version".into(),
            source,
            hint: String::new(),
        })?;
    match parse_osslsigncode_version(&format!("{}{}", out.stdout, out.stderr)) {
        Some((major, minor)) if (major, minor) < (2, 8) => {
            Err(SignError::OldOsslsigncode(format!("{major}.{minor}")))
        }
        _ => Ok(()),
    }
}

/// The PEM certificate to verify against (converting a DER `.cer` once).
fn ca_pem(ctx: &Ctx<'_>, layout: &Layout, cert: &SigningCert) -> Result<PathBuf, SignError> {
    if let Some(pem) = &cert.cert_pem {
        return Ok(pem.clone());
    }
    let is_pem = std::fs::read(&cert.cer)
        .map(|b| b.starts_with(b"-----BEGIN"))
        .unwrap_or(false);
    if is_pem {
        return Ok(cert.cer.clone());
    }
    let out = layout.target_dir.join("xtask-verify-ca.pem");
    let hint = String::new();
    let openssl = ctx
        .require_tool("openssl")
        .map_err(|source| SignError::Verify {
            what: "the certificate".into(),
            source,
            hint: hint.clone(),
        })?;
    if !ctx.dry_run() {
        std::fs::create_dir_all(&layout.target_dir)
            .map_err(|e| FsError::new("create directory", &layout.target_dir, e))?;
    }
    let cmd = Cmd::new(openssl)
        .args(["x509", "-inform", "DER", "-in"])
        .arg_path(&cert.cer)
        .arg("-out")
        .arg_path(&out);
    ctx.exec(cmd).map_err(|source| SignError::Verify {
        what: format!("{} (DER -> PEM)", cert.cer.display()),
        source,
        hint,
    })?;
    Ok(out)
}

fn verify(
    ctx: &Ctx<'_>,
    layout: &Layout,
    tool: &str,
    cert: &SigningCert,
    stage: &Path,
    lib: &str,
) -> Result<(), SignError> {
    let sys = stage.join(format!("{lib}.sys"));
    let cat = stage.join(format!("{lib}.cat"));
    let inf = stage.join(format!("{lib}.inf"));
    let windows = ctx.host().is_windows();
    if windows {
        // signtool verify /pa insists on a trusted root, which a fresh test
        // certificate is not on the build machine; check the signer and the
        // signature's integrity instead (UnknownError = untrusted root).
        ctx.step(
            "sign",
            format!(
                "verify {lib}.sys and {lib}.cat (Get-AuthenticodeSignature, signer {})",
                cert.cer.display()
            ),
        );
        let script = format!(
            "$ErrorActionPreference = 'Stop'\n\
             $expected = (New-Object System.Security.Cryptography.X509Certificates.X509Certificate2 {cer}).Thumbprint\n\
             foreach ($f in @({sys}, {cat})) {{\n\
             \x20 $s = Get-AuthenticodeSignature -FilePath $f\n\
             \x20 if ($null -eq $s.SignerCertificate -or $s.SignerCertificate.Thumbprint -ne $expected) {{ throw \"$f is not signed with {cer_name}\" }}\n\
             \x20 if ($s.Status -ne 'Valid' -and $s.Status -ne 'UnknownError') {{ throw \"${{f}}: signature $($s.Status): $($s.StatusMessage)\" }}\n\
             \x20 Write-Output \"${{f}}: signed by $expected ($($s.Status))\"\n\
             }}\n",
            cer = ps::quote(&cert.cer.to_string_lossy()),
            sys = ps::quote(&sys.to_string_lossy()),
            cat = ps::quote(&cat.to_string_lossy()),
            cer_name = cert.cer.file_name().map(|n| n.to_string_lossy()).unwrap_or_default(),
        );
        let out = ctx
            .exec(ps::local_script(&script, false))
            .map_err(|source| SignError::Verify {
                what: format!("{lib}.sys and {lib}.cat"),
                source,
                hint: "\n  hint: the files were not signed with the given certificate, or were changed after signing".into(),
            })?;
        for line in out.stdout.lines().filter(|l| !l.trim().is_empty()) {
            ctx.note(line);
        }
        // The catalog is inf2cat's; checking membership on Windows
        // (signtool verify /pa /c) would again need a trusted root.
        return Ok(());
    }
    let hint = "\n  hint: the signature does not chain to the certificate given; check --pfx/--cer"
        .to_owned();
    let checks: Vec<(String, Cmd)> = {
        let pem = ca_pem(ctx, layout, cert)?;
        let base = || Cmd::new(tool).arg("verify").arg("-CAfile").arg_path(&pem);
        vec![
            (format!("{lib}.sys"), base().arg("-in").arg_path(&sys)),
            (format!("{lib}.cat"), base().arg("-in").arg_path(&cat)),
            (
                format!("{lib}.sys in {lib}.cat"),
                base()
                    .arg("-catalog")
                    .arg_path(&cat)
                    .arg("-in")
                    .arg_path(&sys),
            ),
        ]
    };
    for (what, cmd) in checks {
        ctx.step("sign", format!("verify {what}"));
        let out = ctx.exec(cmd).map_err(|source| SignError::Verify {
            what: what.clone(),
            source,
            hint: hint.clone(),
        })?;
        if !ctx.dry_run() && !out.stdout.contains("Signature verification: ok") {
            return Err(SignError::Verify {
                what,
                source: ToolError::Failed(Box::new(crate::ctx::Failure {
                    command: "osslsigncode verify".into(),
                    status: "no \"Signature verification: ok\" in its output".into(),
                    details: crate::ctx::output_tail(&out),
                    code: out.code,
                    stdout: out.stdout.clone(),
                })),
                hint,
            });
        }
    }
    // osslsigncode only checks PE members; check the INF too.
    ctx.step("sign", format!("check {lib}.cat lists {lib}.inf"));
    if !ctx.dry_run() {
        let read = |p: &Path| std::fs::read(p).map_err(|e| FsError::new("read", p, e));
        let member = Member::from_bytes(&format!("{lib}.inf"), &read(&inf)?);
        let cat_bytes = read(&cat)?;
        let tag: Vec<u8> = member
            .tag()
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        let has = |needle: &[u8]| cat_bytes.windows(needle.len()).any(|w| w == needle);
        if !has(&member.sha1) || !has(&tag) {
            return Err(SignError::NotInCatalog {
                cat: format!("{lib}.cat"),
                tag: member.tag(),
                file: member.file_name,
            });
        }
        ctx.note(format!("{}  {lib}.inf", member.tag()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_osslsigncode_versions() {
        assert_eq!(
            parse_osslsigncode_version("osslsigncode 2.9, using:\n\tOpenSSL 3.0.13"),
            Some((2, 9))
        );
        assert_eq!(
            parse_osslsigncode_version("osslsigncode 2.5\n"),
            Some((2, 5))
        );
        assert_eq!(
            parse_osslsigncode_version("osslsigncode 10.1.2"),
            Some((10, 1))
        );
        assert_eq!(parse_osslsigncode_version(""), None);
    }
}
