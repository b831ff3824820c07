//! `xtask.toml`: per-developer settings (git-ignored), overridden by flags.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Problems with the settings file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `--config` names a file that does not exist or cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Not valid TOML or unknown keys.
    #[error("{}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
}

/// The whole file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XtaskToml {
    /// `[deploy]`.
    #[serde(default)]
    pub deploy: DeployConfig,
}

/// `[deploy]`: where the test VM is and how to reach it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployConfig {
    /// `ssh` or `powershell-direct`.
    pub transport: Option<String>,
    /// VM address.
    pub host: Option<String>,
    /// Administrator account on the VM.
    pub user: Option<String>,
    /// SSH port.
    pub port: Option<u16>,
    /// SSH private key (relative to the file's directory; `~/` allowed).
    pub identity_file: Option<PathBuf>,
    /// known_hosts file for strict host-key checking.
    pub known_hosts: Option<PathBuf>,
    /// Directory on the VM that receives the package.
    pub remote_dir: Option<String>,
    /// Hyper-V VM name.
    pub vm_name: Option<String>,
    /// Hardware ID of the test device.
    pub hardware_id: Option<String>,
    /// devgen.exe on the VM.
    pub devgen: Option<String>,
    /// devgen.exe on this machine, copied to the VM.
    pub devgen_local: Option<PathBuf>,
    /// Seconds each remote step may take.
    pub step_timeout: Option<u64>,
    /// Program run on the VM for each step (default `powershell.exe`).
    pub remote_powershell: Option<String>,
}

/// Expands `~/` and makes relative paths relative to `base`.
pub fn resolve_path(path: &Path, base: &Path) -> PathBuf {
    if let Ok(rest) = path.strip_prefix("~") {
        if let Some(home) = std::env::var_os("HOME").or_else(|| std::env::var_os("USERPROFILE")) {
            return PathBuf::from(home).join(rest);
        }
    }
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

/// Loads `explicit` (which must exist) or `default` (if it exists).
/// Relative paths inside are resolved against the file's directory.
pub fn load(
    explicit: Option<&Path>,
    default: &Path,
) -> Result<(XtaskToml, Option<PathBuf>), ConfigError> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None if default.is_file() => default.to_path_buf(),
        None => return Ok((XtaskToml::default(), None)),
    };
    let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
        path: path.clone(),
        source,
    })?;
    let mut cfg: XtaskToml = toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    for p in [
        &mut cfg.deploy.identity_file,
        &mut cfg.deploy.known_hosts,
        &mut cfg.deploy.devgen_local,
    ]
    .into_iter()
    .flatten()
    {
        *p = resolve_path(p, &base);
    }
    Ok((cfg, Some(path)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_and_resolves_paths() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("xtask.toml");
        std::fs::write(
            &f,
            "[deploy]\nhost = \"10.0.0.5\"\nport = 2222\nidentity_file = \"keys/vm\"\nremote_dir = \"C:/drv\"\n",
        )
        .unwrap();
        let (cfg, used) = load(None, &f).unwrap();
        assert_eq!(used.as_deref(), Some(f.as_path()));
        assert_eq!(cfg.deploy.host.as_deref(), Some("10.0.0.5"));
        assert_eq!(cfg.deploy.port, Some(2222));
        assert_eq!(cfg.deploy.identity_file, Some(tmp.path().join("keys/vm")));

        std::fs::write(&f, "[deploy]\nhots = \"typo\"\n").unwrap();
        let err = load(Some(&f), &f).unwrap_err().to_string();
        assert!(err.contains("unknown field `hots`"), "{err}");

        let (cfg, used) = load(None, &tmp.path().join("absent.toml")).unwrap();
        assert_eq!((cfg, used), (XtaskToml::default(), None));
        assert!(load(Some(&tmp.path().join("absent.toml")), &f).is_err());
    }
}
