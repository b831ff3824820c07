//! Where things are: the workspace root, the target directory, the driver
//! crate and its `.inx`, and the package directory.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::cli::Arch;

/// Problems finding the workspace or the driver crate.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    /// The workspace root has no `Cargo.toml`.
    #[error("{} is not a cargo workspace (no Cargo.toml); pass --workspace DIR", .0.display())]
    NoWorkspace(PathBuf),
    /// The driver crate directory does not exist.
    #[error("driver crate `{package}` not found: expected {}/Cargo.toml (a cdylib crate with {package_underscored}.inx next to it); create it or pass --driver-package NAME", dir.display(), package_underscored = package.replace('-', "_"))]
    DriverCrateMissing {
        /// Package name looked for.
        package: String,
        /// Directory looked in.
        dir: PathBuf,
    },
    /// The driver crate has no `.inx`.
    #[error("{} not found: the driver crate needs an INF template named after its library ({lib_name}.inx, ASCII or UTF-16LE with BOM)", path.display())]
    InxMissing {
        /// Library name.
        lib_name: String,
        /// Expected path.
        path: PathBuf,
    },
    /// A manifest could not be read or parsed.
    #[error("cannot read {}: {message}", path.display())]
    Manifest {
        /// Manifest path.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// The workspace root and target directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Directory holding the workspace `Cargo.toml`.
    pub root: PathBuf,
    /// Cargo's target directory.
    pub target_dir: PathBuf,
}

impl Layout {
    /// Resolves the workspace root (`--workspace`, else the workspace this
    /// xtask was built in) and the target directory (`--target-dir`, else
    /// `$CARGO_TARGET_DIR`, else `<root>/target`).
    pub fn resolve(
        workspace: Option<PathBuf>,
        target_dir: Option<PathBuf>,
    ) -> Result<Self, WorkspaceError> {
        let root = workspace.unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from("."))
        });
        let root = std::path::absolute(&root).unwrap_or(root);
        if !root.join("Cargo.toml").is_file() {
            return Err(WorkspaceError::NoWorkspace(root));
        }
        let target_dir = target_dir
            .or_else(|| std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from))
            .unwrap_or_else(|| root.join("target"));
        let target_dir = if target_dir.is_absolute() {
            target_dir
        } else {
            std::path::absolute(&target_dir).unwrap_or(target_dir)
        };
        Ok(Self { root, target_dir })
    }

    /// `target/[<triple>/]<profile-dir>`: where cargo puts the build output
    /// and where the package goes.
    pub fn output_dir(&self, profile: &str, cross_triple: Option<&str>) -> PathBuf {
        let mut dir = self.target_dir.clone();
        if let Some(triple) = cross_triple {
            dir.push(triple);
        }
        dir.push(profile_dir_name(profile));
        dir
    }

    /// Where the generated test certificate is kept.
    pub fn cert_dir(&self) -> PathBuf {
        self.target_dir.join("xtask-cert")
    }
}

/// Cargo's output directory name for a profile (`dev` -> `debug`).
pub fn profile_dir_name(profile: &str) -> &str {
    match profile {
        "dev" | "test" => "debug",
        "bench" => "release",
        other => other,
    }
}

/// The triple to pass as `--target` when building for `arch` on Windows:
/// none for the default (amd64) so the output stays in `target/<profile>`.
pub fn cross_triple(arch: Arch) -> Option<&'static str> {
    match arch {
        Arch::Amd64 => None,
        Arch::Arm64 => Some("aarch64-pc-windows-msvc"),
    }
}

/// The driver crate as xtask needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriverCrate {
    /// Package name (`sample-driver`).
    pub package: String,
    /// Library name (`sample_driver`): names the `.dll`/`.sys`/`.inf`/`.cat`.
    pub lib_name: String,
    /// Package version (`0.1.0`).
    pub version: String,
    /// Crate directory.
    pub dir: PathBuf,
    /// The INF template.
    pub inx: PathBuf,
}

#[derive(Deserialize)]
struct Manifest {
    package: Option<ManifestPackage>,
    lib: Option<ManifestLib>,
    workspace: Option<ManifestWorkspace>,
}

#[derive(Deserialize)]
struct ManifestPackage {
    name: String,
    version: Option<toml::Value>,
}

#[derive(Deserialize)]
struct ManifestLib {
    name: Option<String>,
}

#[derive(Deserialize)]
struct ManifestWorkspace {
    package: Option<WorkspacePackage>,
}

#[derive(Deserialize)]
struct WorkspacePackage {
    version: Option<String>,
}

fn read_manifest(path: &Path) -> Result<Manifest, WorkspaceError> {
    let text = std::fs::read_to_string(path).map_err(|e| WorkspaceError::Manifest {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    toml::from_str(&text).map_err(|e| WorkspaceError::Manifest {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

impl DriverCrate {
    /// Loads `<root>/<package>/Cargo.toml` and checks for the `.inx`.
    pub fn load(layout: &Layout, package: &str) -> Result<Self, WorkspaceError> {
        let dir = layout.root.join(package);
        let manifest_path = dir.join("Cargo.toml");
        if !manifest_path.is_file() {
            return Err(WorkspaceError::DriverCrateMissing {
                package: package.to_owned(),
                dir,
            });
        }
        let manifest = read_manifest(&manifest_path)?;
        let pkg = manifest.package.ok_or_else(|| WorkspaceError::Manifest {
            path: manifest_path.clone(),
            message: "no [package] section".into(),
        })?;
        let lib_name = manifest
            .lib
            .and_then(|l| l.name)
            .unwrap_or_else(|| pkg.name.replace('-', "_"));
        let version = match pkg.version {
            Some(toml::Value::String(v)) => v,
            Some(toml::Value::Table(t))
                if t.get("workspace") == Some(&toml::Value::Boolean(true)) =>
            {
                let ws_path = layout.root.join("Cargo.toml");
                read_manifest(&ws_path)?
                    .workspace
                    .and_then(|w| w.package)
                    .and_then(|p| p.version)
                    .ok_or_else(|| WorkspaceError::Manifest {
                        path: ws_path,
                        message: "no [workspace.package] version".into(),
                    })?
            }
            _ => "0.0.0".to_owned(),
        };
        let inx = dir.join(format!("{lib_name}.inx"));
        if !inx.is_file() {
            return Err(WorkspaceError::InxMissing {
                lib_name,
                path: inx,
            });
        }
        Ok(Self {
            package: pkg.name,
            lib_name,
            version,
            dir,
            inx,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_driver_crate_with_workspace_version() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(
            tmp.path().join("Cargo.toml"),
            "[workspace]\nmembers=[\"sample-driver\"]\n[workspace.package]\nversion = \"1.2.3\"\n",
        )
        .unwrap();
        let layout = Layout::resolve(Some(tmp.path().into()), Some(tmp.path().join("t"))).unwrap();
        let err = DriverCrate::load(&layout, "sample-driver").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("driver crate `sample-driver` not found"),
            "{err}"
        );

        let dir = tmp.path().join("sample-driver");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(
            dir.join("Cargo.toml"),
            "[package]\nname = \"sample-driver\"\nversion.workspace = true\n[lib]\ncrate-type = [\"cdylib\"]\n",
        )
        .unwrap();
        let err = DriverCrate::load(&layout, "sample-driver").unwrap_err();
        assert!(
            err.to_string().contains("sample_driver.inx not found"),
            "{err}"
        );
        std::fs::write(dir.join("sample_driver.inx"), "[Version]\n").unwrap();
        let c = DriverCrate::load(&layout, "sample-driver").unwrap();
        assert_eq!(c.lib_name, "sample_driver");
        assert_eq!(c.version, "1.2.3");
        assert_eq!(
            layout.output_dir("dev", None),
            tmp.path().join("t").join("debug")
        );
        assert_eq!(
            layout.output_dir("release", Some("aarch64-pc-windows-msvc")),
            tmp.path().join("t/aarch64-pc-windows-msvc/release")
        );
    }
}
