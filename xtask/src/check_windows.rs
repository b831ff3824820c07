//! `cargo xtask check-windows`: the KMDF half (`dmf-kmdf` and the sample
//! driver's KMDF build) type-checked, linted and documented for the Windows
//! targets, on a host without Windows or the WDK.
//!
//! How:
//!
//! * **Toolchain**: a `rustc` whose standard library sources are installed
//!   (`-Zbuild-std=core,alloc` builds `core` and `alloc` for the Windows
//!   target from them; `RUSTC_BOOTSTRAP=1` enables the flag on a stable
//!   compiler). On Debian 12 that is `rustc-web`, `cargo-web`,
//!   `rust-web-src` and `rust-web-clippy` in `/usr/bin` ([`Toolchain`]).
//! * **WDK crates**: the declaration-only stand-ins in `.ci/windows-check/`
//!   (`wdk-sys`, `wdk-build`) replace the real ones through `[patch]` given on
//!   the command line, with a lock file of their own under the target
//!   directory: the workspace's `Cargo.lock` and manifests stay untouched and
//!   the real build on Windows uses the real crates.
//! * **What runs**: `cargo clippy -- -D warnings` and `cargo doc` (rustdoc
//!   warnings denied) of the selected packages' libraries with the `driver`
//!   profile (`panic = "abort"`), for each selected target.

use std::fs;
use std::path::{Path, PathBuf};

use crate::cli::{CheckWindowsArgs, WindowsTarget};
use crate::ctx::{Ctx, ToolError};
use crate::runner::Cmd;
use crate::workspace::Layout;

/// Where the stand-in crates live, relative to the workspace root.
pub const STAND_IN_DIR: &str = ".ci/windows-check";

/// The packages checked by default: the kernel backend and the driver.
pub const DEFAULT_PACKAGES: [&str; 2] = ["dmf-kmdf", "sample-driver"];

/// The environment variable naming the directory of the toolchain to use
/// (holding `cargo`, `rustc`, `rustdoc`, `cargo-clippy`, `clippy-driver`).
pub const TOOLCHAIN_ENV: &str = "DMF_WINDOWS_TOOLCHAIN";

/// Why the check did not pass.
#[derive(Debug, thiserror::Error)]
pub enum CheckWindowsError {
    /// No usable toolchain.
    #[error(
        "no toolchain for the Windows-target check in {dir}: {missing}.\n  \
         Install one with the standard library's sources, e.g. on Debian 12:\n    \
         apt-get install rustc-web cargo-web rust-web-src rust-web-clippy\n  \
         or point ${TOOLCHAIN_ENV} at the bin directory of another such toolchain"
    )]
    Toolchain {
        /// The directory looked in.
        dir: String,
        /// What is missing there.
        missing: String,
    },
    /// The stand-in crates are missing.
    #[error(
        "the WDK stand-in crates are missing: {0} (expected in {STAND_IN_DIR}/ of the workspace)"
    )]
    StandIns(String),
    /// Preparing the target directory failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// On what.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Clippy or rustdoc reported errors (printed above).
    #[error("{what} for {target} failed: {source}")]
    Check {
        /// `clippy` or `doc`.
        what: &'static str,
        /// The target triple.
        target: &'static str,
        /// The failure.
        source: ToolError,
    },
}

/// The toolchain the check runs with.
#[derive(Debug, Clone)]
pub struct Toolchain {
    /// The directory holding its programs.
    pub bin: PathBuf,
}

impl Toolchain {
    /// The toolchain in `$DMF_WINDOWS_TOOLCHAIN`, else `/usr/bin` (Debian's
    /// `rustc-web`), checked for every program and the library sources.
    ///
    /// # Errors
    ///
    /// [`CheckWindowsError::Toolchain`] naming what is missing.
    pub fn locate() -> Result<Self, CheckWindowsError> {
        let bin = std::env::var_os(TOOLCHAIN_ENV)
            .map_or_else(|| PathBuf::from("/usr/bin"), PathBuf::from);
        let toolchain = Toolchain { bin };
        toolchain.verify()?;
        Ok(toolchain)
    }

    /// Checks that the programs and the standard library's sources exist.
    ///
    /// # Errors
    ///
    /// [`CheckWindowsError::Toolchain`] naming what is missing.
    pub fn verify(&self) -> Result<(), CheckWindowsError> {
        let missing: Vec<String> = ["cargo", "rustc", "rustdoc", "cargo-clippy", "clippy-driver"]
            .iter()
            .filter(|p| !self.bin.join(p).is_file())
            .map(|p| (*p).to_owned())
            .collect();
        let library = self.library_sources();
        let mut missing = missing;
        if !library.as_ref().is_some_and(|l| l.join("core").is_dir()) {
            missing.push(format!(
                "the standard library's sources ({})",
                library.map_or_else(|| "sysroot unknown".to_owned(), |l| l.display().to_string())
            ));
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(CheckWindowsError::Toolchain {
                dir: self.bin.display().to_string(),
                missing: missing.join(", "),
            })
        }
    }

    /// `<sysroot>/lib/rustlib/src/rust/library` of this toolchain's `rustc`.
    fn library_sources(&self) -> Option<PathBuf> {
        let out = std::process::Command::new(self.bin.join("rustc"))
            .args(["--print", "sysroot"])
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        let sysroot = String::from_utf8(out.stdout).ok()?;
        Some(PathBuf::from(sysroot.trim()).join("lib/rustlib/src/rust/library"))
    }

    fn program(&self, name: &str) -> String {
        self.bin.join(name).display().to_string()
    }
}

/// A TOML string literal for a path (for `--config` values).
fn toml_path(path: &Path) -> String {
    crate::new_driver::toml_string(&path.display().to_string())
}

/// The arguments every cargo invocation of the check shares: build-std, the
/// stand-in patches and the check's own lock file.
pub fn common_args(layout: &Layout, check_dir: &Path) -> Vec<String> {
    let stand_ins = layout.root.join(STAND_IN_DIR);
    vec![
        "-Zbuild-std=core,alloc".to_owned(),
        "-Zlockfile-path".to_owned(),
        "--config".to_owned(),
        format!(
            "resolver.lockfile-path={}",
            toml_path(&check_dir.join("Cargo.lock"))
        ),
        "--config".to_owned(),
        format!(
            "patch.crates-io.wdk-sys.path={}",
            toml_path(&stand_ins.join("wdk-sys"))
        ),
        "--config".to_owned(),
        format!(
            "patch.crates-io.wdk-build.path={}",
            toml_path(&stand_ins.join("wdk-build"))
        ),
    ]
}

/// The `cargo clippy` and `cargo doc` commands for one target.
pub fn commands(
    layout: &Layout,
    toolchain: &Toolchain,
    args: &CheckWindowsArgs,
    target: WindowsTarget,
) -> Vec<(&'static str, Cmd)> {
    let check_dir = check_dir(layout, args);
    let packages: Vec<String> = if args.manifest_path.is_some() {
        args.package.clone()
    } else if args.package.is_empty() {
        DEFAULT_PACKAGES.iter().map(|p| (*p).to_owned()).collect()
    } else {
        args.package.clone()
    };
    let base = |sub: &str| {
        let mut cmd = Cmd::new(toolchain.program("cargo"))
            .arg(sub)
            .args(common_args(layout, &check_dir));
        if let Some(manifest) = &args.manifest_path {
            cmd = cmd
                .arg("--manifest-path")
                .arg(manifest.display().to_string());
        }
        for p in &packages {
            cmd = cmd.arg("-p").arg(p.clone());
        }
        cmd.args(["--lib", "--profile", "driver", "--target", target.triple()])
            .current_dir(&layout.root)
            .env(
                "PATH",
                std::env::join_paths(std::iter::once(toolchain.bin.clone()).chain(
                    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
                ))
                .map_or_else(
                    |_| toolchain.bin.display().to_string(),
                    |p| p.to_string_lossy().into_owned(),
                ),
            )
            .env("RUSTC", toolchain.program("rustc"))
            .env("RUSTDOC", toolchain.program("rustdoc"))
            .env("RUSTC_BOOTSTRAP", "1")
            // The stand-in's build script reruns when this changes: a check
            // of another copy of the workspace shares its OUT_DIR.
            .env(
                "DMF_WINDOWS_CHECK_STAND_INS",
                layout.root.join(STAND_IN_DIR).display().to_string(),
            )
            .env("CARGO_TARGET_DIR", check_dir.display().to_string())
            .inherit_stdio()
    };
    let mut out = vec![("clippy", base("clippy").args(["--", "-D", "warnings"]))];
    if !args.no_doc {
        out.push((
            "doc",
            base("doc")
                .arg("--no-deps")
                .env("RUSTDOCFLAGS", "-D warnings"),
        ));
    }
    out
}

/// Removes `wdk-macros`' cache of the function table (it is written once per
/// target directory and never invalidated, so a declaration added to the
/// stand-in would otherwise stay unknown to `call_unsafe_wdf_function_binding!`).
fn clear_macro_cache(dir: &Path) -> Result<(), CheckWindowsError> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            clear_macro_cache(&path)?;
        } else if path
            .file_name()
            .is_some_and(|n| n == "cached_function_info_map.json")
            && path
                .parent()
                .and_then(Path::file_name)
                .is_some_and(|n| n.to_string_lossy().starts_with("wdk_macros_ast_fragments"))
        {
            fs::remove_file(&path).map_err(|source| CheckWindowsError::Io {
                action: "remove",
                path: path.display().to_string(),
                source,
            })?;
        }
    }
    Ok(())
}

/// Prepares `<target>/windows-check/`: a fresh copy of the workspace's lock
/// file (the same versions as every other build, plus the two stand-ins) and
/// no stale `wdk-macros` cache.
///
/// # Errors
///
/// [`CheckWindowsError::Io`] if the directory or the lock file cannot be written.
pub fn prepare(layout: &Layout) -> Result<(), CheckWindowsError> {
    prepare_lock(
        &layout.target_dir.join("windows-check"),
        &layout.root.join("Cargo.lock"),
    )
}

/// The check's own target directory, `<target>/windows-check`, also for a
/// crate given with `--manifest-path`: its lock file is replaced by the
/// checked graph's on every run, and the standard library and layer crates
/// built for the Windows targets are shared. Run one check at a time.
pub fn check_dir(layout: &Layout, _args: &CheckWindowsArgs) -> PathBuf {
    layout.target_dir.join("windows-check")
}

/// The lock file that seeds the check's: the workspace's, or the one beside
/// `--manifest-path`.
fn lock_source(layout: &Layout, args: &CheckWindowsArgs) -> PathBuf {
    match &args.manifest_path {
        None => layout.root.join("Cargo.lock"),
        Some(manifest) => manifest.with_file_name("Cargo.lock"),
    }
}

/// Creates `check_dir`, copies `lock` into it (when it exists) and clears
/// the macro cache.
fn prepare_lock(check_dir: &Path, lock: &Path) -> Result<(), CheckWindowsError> {
    let check_dir = check_dir.to_path_buf();
    fs::create_dir_all(&check_dir).map_err(|source| CheckWindowsError::Io {
        action: "create",
        path: check_dir.display().to_string(),
        source,
    })?;
    if lock.is_file() {
        fs::copy(lock, check_dir.join("Cargo.lock")).map_err(|source| CheckWindowsError::Io {
            action: "copy",
            path: lock.display().to_string(),
            source,
        })?;
    }
    clear_macro_cache(&check_dir)
}

/// Runs `check-windows`.
///
/// # Errors
///
/// A missing toolchain or stand-in, or the first failing clippy/doc run.
pub fn check_windows(
    ctx: &Ctx<'_>,
    layout: &Layout,
    args: &CheckWindowsArgs,
) -> Result<(), CheckWindowsError> {
    let toolchain = Toolchain::locate()?;
    for crate_dir in ["wdk-sys", "wdk-build"] {
        let manifest = layout
            .root
            .join(STAND_IN_DIR)
            .join(crate_dir)
            .join("Cargo.toml");
        if !manifest.is_file() {
            return Err(CheckWindowsError::StandIns(manifest.display().to_string()));
        }
    }
    if !ctx.dry_run() {
        prepare_lock(&check_dir(layout, args), &lock_source(layout, args))?;
    }
    let targets = args.targets();
    for target in targets {
        for (what, cmd) in commands(layout, &toolchain, args, target) {
            ctx.step(
                &format!("check-windows {what}"),
                format!("{} ({})", target.triple(), what),
            );
            ctx.exec(cmd).map_err(|source| CheckWindowsError::Check {
                what,
                target: target.triple(),
                source,
            })?;
        }
    }
    ctx.note(format!(
        "Windows-target check passed for {}: names, types, layouts, lints and docs \
         (linking, the WDK tools and running need Windows)",
        args.targets()
            .iter()
            .map(|t| t.triple())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_paths_are_quoted_and_escaped() {
        assert_eq!(toml_path(Path::new("/a b/c")), "\"/a b/c\"");
        assert_eq!(toml_path(Path::new("/a\"b\\c")), "\"/a\\\"b\\\\c\"");
    }

    #[test]
    fn only_the_macro_cache_is_cleared() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = tmp
            .path()
            .join("debug/build/scratch-1/out/wdk_macros_ast_fragments");
        fs::create_dir_all(&cache).unwrap();
        fs::write(cache.join("cached_function_info_map.json"), "{}").unwrap();
        fs::write(cache.join(".lock"), "").unwrap();
        let other = tmp.path().join("debug/other");
        fs::create_dir_all(&other).unwrap();
        fs::write(other.join("cached_function_info_map.json"), "{}").unwrap();
        clear_macro_cache(tmp.path()).unwrap();
        assert!(!cache.join("cached_function_info_map.json").exists());
        assert!(cache.join(".lock").exists());
        assert!(other.join("cached_function_info_map.json").exists());
    }
}
