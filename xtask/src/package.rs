//! `cargo xtask package`: driver binary + stamped INF + catalog in
//! `target/[<triple>/]<profile>/<name>_package/`.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::catalog::{self, CatalogError, CatalogSpec, Member};
use crate::cli::{BuildArgs, TargetArgs};
use crate::ctx::{Ctx, FsError, ToolError};
use crate::inf::{self, DriverDate, InfError, StampParams};
use crate::pe::{self, PeError};
use crate::runner::Cmd;
use crate::staging::Staged;
use crate::workspace::{cross_triple, DriverCrate, Layout, WorkspaceError};

/// Why packaging failed.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// Workspace or driver crate problem.
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
    /// No WDK here and no prebuilt binary given.
    #[error("cannot build a KMDF driver on this host ({host}): the WDK exists only on Windows.\n  Build {lib_name}.sys on Windows (`cargo xtask package` there) and pass it here:\n  cargo xtask package --sys PATH/TO/{lib_name}.sys   (deploy: --sys PATH, or --no-package for a package signed earlier)")]
    NeedPrebuiltSys {
        /// Host OS name.
        host: &'static str,
        /// Library name of the driver.
        lib_name: String,
    },
    /// `--sys` file unreadable.
    #[error("cannot read the driver binary {}: {source}", path.display())]
    SysUnreadable {
        /// The path given.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// `--sys` file is not a PE image.
    #[error("{} is {source}; the driver binary must be the PE image built on Windows (.sys or .dll)", path.display())]
    NotAPe {
        /// The path given.
        path: PathBuf,
        /// What is wrong with it.
        source: PeError,
    },
    /// `--sys` file built for another CPU.
    #[error("{} is built for {found}, but --target-arch is {wanted}", path.display())]
    ArchMismatch {
        /// The path given.
        path: PathBuf,
        /// Its architecture.
        found: String,
        /// The requested architecture.
        wanted: &'static str,
    },
    /// `cargo build` failed.
    #[error("building the driver failed (cargo's messages are above): {0}")]
    Build(ToolError),
    /// `cargo build` succeeded but produced no DLL.
    #[error("cargo build finished but {} does not exist: is `{package}` a cdylib with [package.metadata.wdk]?", path.display())]
    BuildOutputMissing {
        /// Expected output.
        path: PathBuf,
        /// Driver package.
        package: String,
    },
    /// The `.inx` could not be read.
    #[error("cannot read {}: {source}", path.display())]
    InxUnreadable {
        /// The template.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The `.inx` could not be stamped.
    #[error("stamping {}: {source}", path.display())]
    Stamp {
        /// The template.
        path: PathBuf,
        /// What is wrong.
        source: InfError,
    },
    /// A version/date option is malformed.
    #[error(transparent)]
    BadOption(InfError),
    /// `$SOURCE_DATE_EPOCH` is not a number of seconds.
    #[error(
        "SOURCE_DATE_EPOCH=`{0}` is not a number of seconds since 1970-01-01 UTC: fix or unset it"
    )]
    BadSourceDateEpoch(String),
    /// A file named in `[SourceDisksFiles]` is neither built nor in the driver crate.
    #[error("the INF's [SourceDisksFiles] names {file}, which is not in the package and not in {}: add it to the driver crate, or remove it from the .inx", dir.display())]
    SourceFileMissing {
        /// The file name.
        file: String,
        /// Where it was looked for.
        dir: PathBuf,
    },
    /// The WDK's stampinf failed.
    #[error("stampinf failed: {0}")]
    Stampinf(ToolError),
    /// infverif found problems in the INF.
    #[error("infverif rejected the INF: {0}")]
    Infverif(ToolError),
    /// inf2cat failed or is missing.
    #[error("inf2cat failed: {0}")]
    Inf2cat(ToolError),
    /// The built-in catalog writer failed.
    #[error("writing the catalog: {0}")]
    Catalog(#[from] CatalogError),
    /// A file operation failed.
    #[error(transparent)]
    Fs(#[from] FsError),
}

/// What `package` produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Package {
    /// `target/<profile>/<name>_package`.
    pub dir: PathBuf,
    /// The driver crate.
    pub driver: DriverCrate,
}

impl Package {
    /// `<dir>/<name>.<ext>`.
    pub fn file(&self, ext: &str) -> PathBuf {
        self.dir.join(format!("{}.{ext}", self.driver.lib_name))
    }
}

/// The package directory for a driver crate.
pub fn package_dir(layout: &Layout, target: &TargetArgs, driver: &DriverCrate) -> PathBuf {
    layout
        .output_dir(&target.profile, cross_triple(target.target_arch))
        .join(format!("{}_package", driver.lib_name))
}

/// Finds a WDK tool: on `PATH`, else (Windows) in the newest
/// `Windows Kits\10\bin\10.*\{x64,x86}` of `%WDKContentRoot%` or the default
/// install location.
pub fn find_wdk_tool(ctx: &Ctx<'_>, tool: &str) -> Option<String> {
    if let Some(p) = ctx.runner().find_program(tool) {
        return Some(p.to_string_lossy().into_owned());
    }
    if !ctx.host().is_windows() || !cfg!(windows) {
        return None;
    }
    let roots = std::env::var_os("WDKContentRoot")
        .map(PathBuf::from)
        .into_iter()
        .chain([PathBuf::from(r"C:\Program Files (x86)\Windows Kits\10")]);
    for root in roots {
        let Ok(entries) = std::fs::read_dir(root.join("bin")) else {
            continue;
        };
        let mut versions: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("10."))
            })
            .collect();
        versions.sort();
        for v in versions.iter().rev() {
            for arch in ["x64", "x86"] {
                let exe = v.join(arch).join(format!("{tool}.exe"));
                if exe.is_file() {
                    return Some(exe.to_string_lossy().into_owned());
                }
            }
        }
    }
    None
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The time of this build: `$SOURCE_DATE_EPOCH` (reproducible builds), else
/// now. It sets the default `DriverVer` date and version and the catalog's
/// creation time.
pub fn build_time() -> Result<u64, PackageError> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .map_err(|_| PackageError::BadSourceDateEpoch(v.clone())),
        _ => Ok(now_secs()),
    }
}

/// `DriverVer` as stamped: date and version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriverVer {
    /// The date, local time.
    pub date: DriverDate,
    /// `w.x.y.z`.
    pub version: String,
}

/// Works out `DriverVer` for a build at `build_secs`:
///
/// * date: `--driver-date`, else the local date (`$TZ`) of the build time
///   (what inf2cat `/uselocaltime` compares against); never after today;
/// * version: `--driver-version`, else `$STAMPINF_VERSION`, else
///   [`inf::build_version`] (the crate version with the build's time of day
///   as fourth part, so each build is newer than the last).
pub fn driver_ver(
    build: &BuildArgs,
    crate_version: &str,
    build_secs: u64,
    now_secs: u64,
) -> Result<DriverVer, InfError> {
    let today = DriverDate::local_from_unix_secs(now_secs);
    let date = match &build.driver_date {
        Some(d) => DriverDate::parse(d)?,
        None => DriverDate::local_from_unix_secs(build_secs),
    };
    date.check_not_after(today)?;
    let explicit = build.driver_version.clone().or_else(|| {
        std::env::var("STAMPINF_VERSION")
            .ok()
            .filter(|s| !s.trim().is_empty())
    });
    let version = match explicit {
        Some(v) => inf::driver_version(v.trim())?,
        None => inf::build_version(crate_version, build_secs)?,
    };
    Ok(DriverVer { date, version })
}

/// Reads and checks a prebuilt driver binary.
fn check_binary(path: &Path, target: &TargetArgs, ctx: &Ctx<'_>) -> Result<(), PackageError> {
    let bytes = std::fs::read(path).map_err(|source| PackageError::SysUnreadable {
        path: path.to_path_buf(),
        source,
    })?;
    let img = pe::parse(&bytes).map_err(|source| PackageError::NotAPe {
        path: path.to_path_buf(),
        source,
    })?;
    if img.machine != target.target_arch.machine() {
        return Err(PackageError::ArchMismatch {
            path: path.to_path_buf(),
            found: pe::machine_name(img.machine),
            wanted: target.target_arch.as_str(),
        });
    }
    if img.subsystem != pe::SUBSYSTEM_NATIVE {
        ctx.note(format!(
            "warning: {} has PE subsystem {} (a kernel driver has 1, native): was it linked by wdk-build?",
            path.display(),
            img.subsystem
        ));
    }
    Ok(())
}

/// Runs the package step; returns where the package is.
pub fn package(
    ctx: &Ctx<'_>,
    layout: &Layout,
    target: &TargetArgs,
    build: &BuildArgs,
) -> Result<Package, PackageError> {
    let driver = DriverCrate::load(layout, &target.driver_package)?;
    let lib = driver.lib_name.clone();
    let arch = target.target_arch;
    let build_secs = build_time()?;
    let DriverVer { date, version } = driver_ver(build, &driver.version, build_secs, now_secs())
        .map_err(PackageError::BadOption)?;
    let out_dir = layout.output_dir(&target.profile, cross_triple(arch));
    let pkg_dir = package_dir(layout, target, &driver);
    ctx.step(
        "package",
        format!(
            "{} {} ({}, profile {}) -> {}",
            driver.package,
            driver.version,
            arch.as_str(),
            target.profile,
            pkg_dir.display()
        ),
    );

    // 1. The driver binary.
    let binary = if let Some(sys) = &build.sys {
        ctx.step(
            "package",
            format!(
                "using prebuilt driver binary {} (--sys: not building on this host)",
                sys.display()
            ),
        );
        check_binary(sys, target, ctx)?;
        sys.clone()
    } else if ctx.host().is_windows() {
        ctx.step(
            "package",
            format!(
                "build {} with cargo (profile {})",
                driver.package, target.profile
            ),
        );
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let mut cmd = Cmd::new(cargo)
            .args([
                "build",
                "-p",
                driver.package.as_str(),
                "--profile",
                target.profile.as_str(),
            ])
            .current_dir(&layout.root);
        if let Some(triple) = cross_triple(arch) {
            cmd = cmd.args(["--target", triple]);
        }
        // Streamed to the terminal: a KMDF build takes minutes.
        ctx.exec(cmd.inherit_stdio()).map_err(PackageError::Build)?;
        let dll = out_dir.join(format!("{lib}.dll"));
        if !ctx.dry_run() {
            if !dll.is_file() {
                return Err(PackageError::BuildOutputMissing {
                    path: dll,
                    package: driver.package.clone(),
                });
            }
            check_binary(&dll, target, ctx)?;
        }
        dll
    } else {
        return Err(PackageError::NeedPrebuiltSys {
            host: ctx.host().name(),
            lib_name: lib,
        });
    };

    let staged = Staged::begin(ctx, &pkg_dir)?;
    let stage = staged.path().to_path_buf();
    let sys = stage.join(format!("{lib}.sys"));
    let inf_path = stage.join(format!("{lib}.inf"));
    let cat_name = format!("{lib}.cat");

    // 2. .dll -> .sys (+ .pdb when next to it).
    ctx.step(
        "package",
        format!(
            "{} -> {lib}.sys",
            binary
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        ),
    );
    ctx.copy(&binary, &sys)?;
    let pdb = binary.with_extension("pdb");
    if pdb.is_file() {
        ctx.copy(&pdb, &stage.join(format!("{lib}.pdb")))?;
    }

    // 3. .inx -> .inf.
    let params = StampParams {
        arch: arch.as_str().to_owned(),
        catalog_file: cat_name.clone(),
        date,
        version: version.clone(),
        kmdf_version: build.kmdf_version.clone(),
    };
    let stampinf = if ctx.host().is_windows() {
        find_wdk_tool(ctx, "stampinf")
    } else {
        None
    };
    if let Some(stampinf) = stampinf {
        ctx.step("package", format!("{lib}.inx -> {lib}.inf (stampinf)"));
        ctx.copy(&driver.inx, &inf_path)?;
        let cmd = Cmd::new(stampinf).arg("-f").arg_path(&inf_path).args([
            "-d",
            &date.to_string(),
            "-a",
            arch.as_str(),
            "-c",
            &cat_name,
            "-v",
            &version,
            "-k",
            &build.kmdf_version,
        ]);
        ctx.exec(cmd).map_err(PackageError::Stampinf)?;
    } else {
        ctx.step(
            "package",
            format!(
                "{lib}.inx -> {lib}.inf (built-in stampinf: $ARCH$={}, DriverVer={date},{version}, CatalogFile={cat_name}, KMDF {})",
                arch.as_str(),
                build.kmdf_version
            ),
        );
        let bytes = std::fs::read(&driver.inx).map_err(|source| PackageError::InxUnreadable {
            path: driver.inx.clone(),
            source,
        })?;
        let stamped = inf::stamp(&bytes, &params).map_err(|source| PackageError::Stamp {
            path: driver.inx.clone(),
            source,
        })?;
        ctx.write(&inf_path, &stamped)?;
    }

    // 3b. Every other file [SourceDisksFiles] names, from the driver crate.
    let inx_text = std::fs::read(&driver.inx)
        .ok()
        .and_then(|b| inf::decode(&b).ok())
        .map(|(t, _)| t.replace("$ARCH$", arch.as_str()))
        .unwrap_or_default();
    let source_files = inf::source_disks_files(&inx_text, arch.as_str());
    for file in &source_files {
        let in_stage = [format!("{lib}.sys"), format!("{lib}.inf"), cat_name.clone()];
        if in_stage.iter().any(|f| f.eq_ignore_ascii_case(file)) {
            continue;
        }
        let src = driver.dir.join(file);
        if !src.is_file() {
            return Err(PackageError::SourceFileMissing {
                file: file.clone(),
                dir: driver.dir.clone(),
            });
        }
        ctx.copy(&src, &stage.join(file))?;
    }

    // 4. infverif (Windows, when installed).
    if ctx.host().is_windows() {
        match find_wdk_tool(ctx, "infverif") {
            Some(infverif) => {
                ctx.step("package", format!("check {lib}.inf (infverif)"));
                let cmd = Cmd::new(infverif).args(["/v", "/w"]).arg_path(&inf_path);
                ctx.exec(cmd).map_err(PackageError::Infverif)?;
            }
            None => ctx.step("package", "infverif not found: INF check skipped"),
        }
    } else {
        ctx.step(
            "package",
            format!(
                "infverif is Windows-only: INF check skipped on {}",
                ctx.host().name()
            ),
        );
    }

    // 5. The catalog.
    if ctx.host().is_windows() {
        ctx.step("package", format!("{cat_name} (inf2cat)"));
        let inf2cat = find_wdk_tool(ctx, "inf2cat");
        let inf2cat = match inf2cat {
            Some(p) => p,
            None => ctx.require_tool("inf2cat").map_err(PackageError::Inf2cat)?,
        };
        let cmd = Cmd::new(inf2cat)
            .arg(format!("/driver:{}", stage.display()))
            .arg(format!("/os:{}", arch.inf2cat_os()))
            .arg("/uselocaltime");
        ctx.exec(cmd).map_err(PackageError::Inf2cat)?;
    } else {
        let (os, os_attr) = catalog::os_attributes(arch.as_str());
        let mut member_names = vec![format!("{lib}.inf")];
        for f in source_files
            .iter()
            .chain(std::iter::once(&format!("{lib}.sys")))
        {
            if !member_names.iter().any(|m| m.eq_ignore_ascii_case(f)) {
                member_names.push(f.clone());
            }
        }
        ctx.step(
            "package",
            format!(
                "{cat_name} (built-in inf2cat: SHA-1 members {}; OS {os})",
                member_names.join(", ")
            ),
        );
        let cat_path = stage.join(&cat_name);
        if ctx.dry_run() {
            ctx.note(format!(
                "write {} (catalog of the staged files)",
                cat_path.display()
            ));
        } else {
            let read = |p: &Path| std::fs::read(p).map_err(|e| FsError::new("read", p, e));
            let inf_bytes = read(&inf_path)?;
            let inf_text = inf::decode(&inf_bytes).map(|(t, _)| t).unwrap_or_default();
            let mut members = Vec::with_capacity(member_names.len());
            for name in &member_names {
                members.push(Member::from_bytes(name, &read(&stage.join(name))?));
            }
            let spec = CatalogSpec {
                members,
                hardware_ids: inf::hardware_ids(&inf_text),
                os,
                os_attr,
                unix_time: build_secs,
            };
            for m in &spec.members {
                ctx.note(format!("{}  {}", m.tag(), m.file_name));
            }
            let der = catalog::build(&spec)?;
            ctx.write(&cat_path, &der)?;
        }
    }

    ctx.step("package", format!("publish {}", pkg_dir.display()));
    staged.commit()?;
    Ok(Package {
        dir: pkg_dir,
        driver,
    })
}
