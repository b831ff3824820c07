//! Build a directory next to its final place and move it there in one
//! rename, so a half-written package never looks like a package.

use std::path::{Path, PathBuf};

use crate::ctx::{Ctx, FsError};

/// A staging directory that becomes `dest` on [`Staged::commit`] and is
/// removed if dropped before that (any failed step).
pub struct Staged<'a, 'r> {
    ctx: &'a Ctx<'r>,
    staging: PathBuf,
    dest: PathBuf,
    committed: bool,
}

fn sibling(dest: &Path, tag: &str) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dest.with_file_name(format!(".{name}.{tag}-{}", std::process::id()))
}

impl<'a, 'r> Staged<'a, 'r> {
    /// Creates an empty staging directory for `dest` (removing leftovers of
    /// earlier interrupted runs, but never the directory of a run that is
    /// still going on: see [`is_stale`]).
    pub fn begin(ctx: &'a Ctx<'r>, dest: &Path) -> Result<Self, FsError> {
        let staging = sibling(dest, "staging");
        if !ctx.dry_run() {
            remove_leftovers(dest);
        }
        ctx.create_dir_all(&staging)?;
        Ok(Self {
            ctx,
            staging,
            dest: dest.to_path_buf(),
            committed: false,
        })
    }

    /// The staging directory to fill.
    pub fn path(&self) -> &Path {
        &self.staging
    }

    /// The final location.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// Moves the staging directory to `dest`, replacing what was there.
    pub fn commit(mut self) -> Result<(), FsError> {
        let old = sibling(&self.dest, "old");
        let had_old = !self.ctx.dry_run() && self.dest.exists();
        if had_old {
            self.ctx.rename(&self.dest, &old)?;
        } else if self.ctx.dry_run() {
            self.ctx
                .note(format!("(replace {} if it exists)", self.dest.display()));
        }
        if let Err(e) = self.ctx.rename(&self.staging, &self.dest) {
            if had_old {
                // Put the previous version back rather than leave nothing.
                let _ = std::fs::rename(&old, &self.dest);
            }
            return Err(e);
        }
        self.committed = true;
        if had_old {
            let _ = std::fs::remove_dir_all(&old);
        }
        Ok(())
    }
}

impl Drop for Staged<'_, '_> {
    fn drop(&mut self) {
        if self.committed || self.ctx.dry_run() {
            return;
        }
        if std::fs::remove_dir_all(&self.staging).is_ok() {
            self.ctx
                .note(format!("removed incomplete {}", self.staging.display()));
        }
    }
}

/// Whether a leftover staging directory of process `pid` may be removed:
/// on Linux when that process no longer exists; elsewhere when the
/// directory has not changed for an hour (a concurrent run is younger).
pub fn is_stale(path: &Path, pid: Option<u32>) -> bool {
    if cfg!(target_os = "linux") {
        if let Some(pid) = pid {
            return !Path::new(&format!("/proc/{pid}")).exists();
        }
    }
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age > std::time::Duration::from_secs(3600))
}

fn remove_leftovers(dest: &Path) {
    let (Some(parent), Some(name)) = (dest.parent(), dest.file_name()) else {
        return;
    };
    let prefixes = [
        format!(".{}.staging-", name.to_string_lossy()),
        format!(".{}.old-", name.to_string_lossy()),
    ];
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let n = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = prefixes.iter().find_map(|p| n.strip_prefix(p.as_str())) else {
            continue;
        };
        if is_stale(&entry.path(), rest.parse().ok()) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctx::Host;
    use crate::runner::RecordingRunner;

    #[test]
    fn commit_replaces_and_drop_cleans_up() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("pkg");
        std::fs::create_dir(&dest).unwrap();
        std::fs::write(dest.join("old.txt"), "old").unwrap();
        let r = RecordingRunner::new(Vec::<String>::new());
        let ctx = Ctx::new(&r, false, Host::Other("linux"));

        let s = Staged::begin(&ctx, &dest).unwrap();
        std::fs::write(s.path().join("new.txt"), "new").unwrap();
        s.commit().unwrap();
        assert!(dest.join("new.txt").exists());
        assert!(!dest.join("old.txt").exists());

        let s = Staged::begin(&ctx, &dest).unwrap();
        let staging = s.path().to_path_buf();
        std::fs::write(staging.join("half.txt"), "half").unwrap();
        drop(s);
        assert!(!staging.exists());
        assert!(
            dest.join("new.txt").exists(),
            "failed run must not touch the package"
        );
        let names: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("pkg")]);
    }

    #[test]
    fn a_concurrent_runs_staging_directory_is_left_alone() {
        if !cfg!(target_os = "linux") {
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("pkg");
        // A live process (another xtask run) and a finished one.
        let mut live = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let mut done = std::process::Command::new("true").spawn().unwrap();
        done.wait().unwrap();
        let theirs = tmp.path().join(format!(".pkg.staging-{}", live.id()));
        let stale = tmp.path().join(format!(".pkg.staging-{}", done.id()));
        std::fs::create_dir(&theirs).unwrap();
        std::fs::create_dir(&stale).unwrap();
        let r = RecordingRunner::new(Vec::<String>::new());
        let ctx = Ctx::new(&r, false, Host::Other("linux"));
        let s = Staged::begin(&ctx, &dest).unwrap();
        assert!(
            theirs.is_dir(),
            "a running run's staging directory was removed"
        );
        assert!(!stale.exists(), "a dead run's leftover was kept");
        drop(s);
        assert!(theirs.is_dir());
        let _ = live.kill();
        let _ = live.wait();
    }
}
