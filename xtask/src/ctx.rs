//! The execution context every step runs in: which host we are on, whether
//! this is a dry run, the [`CommandRunner`], and the "==> step: what" output.

use std::cell::RefCell;
use std::fmt::Display;
use std::io;
use std::path::{Path, PathBuf};

use crate::runner::{Cmd, CommandRunner, Output};

/// The operating system the steps run on (selectable in tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Host {
    /// Windows: the WDK tools, signtool and PowerShell Direct are usable.
    Windows,
    /// Anything else, named as in `std::env::consts::OS`.
    Other(&'static str),
}

impl Host {
    /// The host this binary was built for.
    pub fn current() -> Self {
        if cfg!(windows) {
            Host::Windows
        } else {
            Host::Other(std::env::consts::OS)
        }
    }

    /// Whether this is Windows.
    pub fn is_windows(self) -> bool {
        self == Host::Windows
    }

    /// Name for messages ("windows", "linux", ...).
    pub fn name(self) -> &'static str {
        match self {
            Host::Windows => "windows",
            Host::Other(name) => name,
        }
    }
}

/// An external tool failed or is missing.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// The program is not installed.
    #[error("{tool} not found: {hint}")]
    NotFound {
        /// Program name.
        tool: String,
        /// How to install it.
        hint: String,
    },
    /// The program exists but could not be started.
    #[error("could not start {tool}: {source}")]
    Spawn {
        /// Program name.
        tool: String,
        /// The OS error.
        source: io::Error,
    },
    /// The program ran and reported failure.
    #[error("`{}` failed ({}){}", .0.command, .0.status, .0.details)]
    Failed(Box<Failure>),
    /// The program did not finish within its time limit and was killed.
    #[error("`{}` did not finish within {} s and was stopped{}", .0.command, .0.status, .0.details)]
    TimedOut(Box<Failure>),
}

/// How a program failed (boxed in [`ToolError::Failed`] to keep errors small).
#[derive(Debug)]
pub struct Failure {
    /// The command line (secrets redacted, long arguments elided).
    pub command: String,
    /// "exit status N" or "killed by a signal".
    pub status: String,
    /// The last lines of its output, indented, or empty.
    pub details: String,
    /// Exit code, if any.
    pub code: Option<i32>,
    /// Everything it printed on stdout.
    pub stdout: String,
}

impl ToolError {
    /// The exit code of a [`ToolError::Failed`] program.
    pub fn exit_code(&self) -> Option<i32> {
        match self {
            ToolError::Failed(f) => f.code,
            _ => None,
        }
    }

    /// The captured standard output of a failed or timed-out program.
    pub fn stdout(&self) -> &str {
        match self {
            ToolError::Failed(f) | ToolError::TimedOut(f) => &f.stdout,
            _ => "",
        }
    }
}

/// A file-system operation failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} {}: {source}", path.display())]
pub struct FsError {
    /// What was being done ("create directory", "copy", ...).
    pub action: &'static str,
    /// The path it was done to.
    pub path: PathBuf,
    /// The OS error.
    pub source: io::Error,
}

impl FsError {
    /// Wraps an I/O error with what was being done to which path.
    pub fn new(action: &'static str, path: &Path, source: io::Error) -> Self {
        Self {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// How to get an osslsigncode that can verify catalogs (2.8+).
pub const OSSLSIGNCODE_HINT: &str = "apt-get install osslsigncode (Debian 13 and later: 2.9; Fedora: dnf install osslsigncode). \
Debian 12 ships 2.5, which signs but cannot verify catalogs (then sign with --no-verify); 2.8+ is in bookworm-backports, \
which is not configured by default: add a `bookworm-backports main` line to your APT sources, apt-get update, \
then apt-get install -t bookworm-backports osslsigncode";

/// How to install `tool`, for "not found" messages.
pub fn install_hint(tool: &str) -> String {
    let base = Path::new(tool)
        .file_stem()
        .map(|s| s.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    match base.as_str() {
        "osslsigncode" => OSSLSIGNCODE_HINT.into(),
        "openssl" => "apt-get install openssl".into(),
        "ssh" | "scp" => "apt-get install openssh-client (Windows: Add-WindowsCapability -Online -Name OpenSSH.Client~~~~0.0.1.0)".into(),
        "stampinf" | "inf2cat" | "infverif" | "signtool" => format!(
            "{base} ships with the Windows Driver Kit: install the WDK and run from a Developer Command Prompt / eWDK shell, or set WDKContentRoot"
        ),
        "powershell" => "PowerShell Direct needs a Windows host with Hyper-V (use --transport ssh elsewhere)".into(),
        "cargo" => "install Rust with rustup".into(),
        _ => format!("install {base} and make sure it is on PATH"),
    }
}

/// Shared state of one xtask invocation.
pub struct Ctx<'r> {
    runner: &'r dyn CommandRunner,
    dry_run: bool,
    host: Host,
    commands: RefCell<Vec<Cmd>>,
    lines: RefCell<Vec<String>>,
}

impl<'r> Ctx<'r> {
    /// A context running commands through `runner`.
    pub fn new(runner: &'r dyn CommandRunner, dry_run: bool, host: Host) -> Self {
        Self {
            runner,
            dry_run,
            host,
            commands: RefCell::new(Vec::new()),
            lines: RefCell::new(Vec::new()),
        }
    }

    /// Whether commands and file changes are only printed.
    pub fn dry_run(&self) -> bool {
        self.dry_run
    }

    /// The host the steps run on.
    pub fn host(&self) -> Host {
        self.host
    }

    /// The runner (for program lookups).
    pub fn runner(&self) -> &dyn CommandRunner {
        self.runner
    }

    /// Every command executed (or, in a dry run, printed) so far.
    pub fn commands(&self) -> Vec<Cmd> {
        self.commands.borrow().clone()
    }

    /// Every line printed so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.borrow().clone()
    }

    fn say(&self, line: String) {
        println!("{line}");
        self.lines.borrow_mut().push(line);
    }

    /// Prints `==> step: what`.
    pub fn step(&self, step: &str, what: impl Display) {
        self.say(format!("==> {step}: {what}"));
    }

    /// Prints an indented detail line.
    pub fn note(&self, msg: impl Display) {
        self.say(format!("    {msg}"));
    }

    /// Checks that `tool` is installed. In a dry run a missing tool is only
    /// reported, so the whole plan can still be printed.
    pub fn require_tool(&self, tool: &str) -> Result<String, ToolError> {
        match self.runner.find_program(tool) {
            Some(path) => Ok(path.to_string_lossy().into_owned()),
            None if self.dry_run => {
                self.note(format!(
                    "warning: {tool} not found (needed for a real run: {})",
                    install_hint(tool)
                ));
                Ok(tool.to_owned())
            }
            None => Err(ToolError::NotFound {
                tool: tool.to_owned(),
                hint: install_hint(tool),
            }),
        }
    }

    /// Prints `$ command` and runs it (not in a dry run, where it returns an
    /// empty success). A non-zero exit is a [`ToolError::Failed`].
    pub fn exec(&self, cmd: Cmd) -> Result<Output, ToolError> {
        self.say(format!("    $ {}", cmd.display()));
        self.commands.borrow_mut().push(cmd.clone());
        if self.dry_run {
            return Ok(Output::ok(""));
        }
        let out = self.runner.run(&cmd).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                ToolError::NotFound {
                    tool: cmd.program.clone(),
                    hint: install_hint(&cmd.program),
                }
            } else {
                ToolError::Spawn {
                    tool: cmd.program.clone(),
                    source: e,
                }
            }
        })?;
        if out.timed_out {
            return Err(ToolError::TimedOut(Box::new(Failure {
                command: cmd.display_short(),
                status: cmd.timeout.map(|t| t.as_secs()).unwrap_or(0).to_string(),
                details: output_tail(&out),
                code: None,
                stdout: out.stdout,
            })));
        }
        if out.success() {
            return Ok(out);
        }
        let status = match out.code {
            Some(code) => format!("exit status {code}"),
            None => "killed by a signal".to_owned(),
        };
        Err(ToolError::Failed(Box::new(Failure {
            command: cmd.display_short(),
            status,
            details: output_tail(&out),
            code: out.code,
            stdout: out.stdout,
        })))
    }

    /// Creates a directory and its parents.
    pub fn create_dir_all(&self, path: &Path) -> Result<(), FsError> {
        self.note(format!("mkdir -p {}", path.display()));
        if self.dry_run {
            return Ok(());
        }
        std::fs::create_dir_all(path).map_err(|e| FsError::new("create directory", path, e))
    }

    /// Copies a file.
    pub fn copy(&self, from: &Path, to: &Path) -> Result<(), FsError> {
        self.note(format!("copy {} -> {}", from.display(), to.display()));
        if self.dry_run {
            return Ok(());
        }
        std::fs::copy(from, to)
            .map(|_| ())
            .map_err(|e| FsError::new("copy", from, e))
    }

    /// Writes a file.
    pub fn write(&self, path: &Path, bytes: &[u8]) -> Result<(), FsError> {
        self.note(format!("write {} ({} bytes)", path.display(), bytes.len()));
        if self.dry_run {
            return Ok(());
        }
        std::fs::write(path, bytes).map_err(|e| FsError::new("write", path, e))
    }

    /// Renames a file or directory.
    pub fn rename(&self, from: &Path, to: &Path) -> Result<(), FsError> {
        self.note(format!("rename {} -> {}", from.display(), to.display()));
        if self.dry_run {
            return Ok(());
        }
        std::fs::rename(from, to).map_err(|e| FsError::new("rename", from, e))
    }
}

/// How many lines of each stream a failure message keeps.
pub const TAIL_LINES: usize = 40;

/// A failed command's output for error messages: the last [`TAIL_LINES`]
/// lines of stdout *and* of stderr (tools such as pnputil explain failures
/// on stdout), PowerShell's `#< CLIXML` error records decoded to text.
pub fn output_tail(out: &Output) -> String {
    fn tail(text: &str) -> Vec<&str> {
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let start = lines.len().saturating_sub(TAIL_LINES);
        lines[start..].to_vec()
    }
    let stderr = crate::ps::decode_clixml(&out.stderr);
    let (o, e) = (tail(&out.stdout), tail(&stderr));
    let mut s = String::new();
    let both = !o.is_empty() && !e.is_empty();
    for (label, lines) in [("stdout", o), ("stderr", e)] {
        if lines.is_empty() {
            continue;
        }
        if both {
            s.push_str(&format!("\n      {label}:"));
        } else {
            s.push(':');
        }
        for l in lines {
            s.push_str("\n        ");
            s.push_str(l);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::RecordingRunner;

    #[test]
    fn dry_run_records_but_does_not_run() {
        let r = RecordingRunner::new(Vec::<String>::new());
        let ctx = Ctx::new(&r, true, Host::Other("linux"));
        ctx.exec(Cmd::new("osslsigncode").arg("sign")).unwrap();
        assert!(r.calls().is_empty());
        assert_eq!(ctx.commands().len(), 1);
        assert!(ctx.lines()[0].contains("$ osslsigncode sign"));
    }

    #[test]
    fn missing_tool_names_tool_and_fix() {
        let r = RecordingRunner::new(Vec::<String>::new());
        let ctx = Ctx::new(&r, false, Host::Other("linux"));
        let err = ctx.require_tool("osslsigncode").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("osslsigncode not found: {OSSLSIGNCODE_HINT}")
        );
        assert!(err.to_string().contains("not configured by default"));
        let err = ctx.exec(Cmd::new("osslsigncode")).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("osslsigncode not found: apt-get install osslsigncode"));
    }

    #[test]
    fn failure_reports_status_and_output() {
        let r = RecordingRunner::with_responder(
            ["ssh"],
            Box::new(|_| Ok(Output::failed(255, "Permission denied (publickey).\n"))),
        );
        let ctx = Ctx::new(&r, false, Host::Other("linux"));
        let err = ctx.exec(Cmd::new("ssh").arg("vm")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`ssh vm` failed (exit status 255):\n        Permission denied (publickey)."
        );
    }

    #[test]
    fn failure_shows_stdout_and_decoded_stderr() {
        let r = RecordingRunner::with_responder(
            ["ssh"],
            Box::new(|_| {
                Ok(Output {
                    timed_out: false,
                    code: Some(1),
                    stdout: "Adding driver package:  sample_driver.inf\nFailed to add driver package: The hash for the file is not present in the specified catalog file.\n".into(),
                    stderr: "#< CLIXML\r\n<Objs Version=\"1.1.0.1\"><S S=\"Error\">pnputil failed_x000D__x000A_</S></Objs>".into(),
                })
            }),
        );
        let ctx = Ctx::new(&r, false, Host::Other("linux"));
        let err = ctx.exec(Cmd::new("ssh").arg("vm")).unwrap_err().to_string();
        assert!(
            err.contains("stdout:\n        Adding driver package:"),
            "{err}"
        );
        assert!(
            err.contains("The hash for the file is not present"),
            "{err}"
        );
        assert!(err.contains("stderr:\n        pnputil failed"), "{err}");
        assert!(!err.contains("CLIXML"), "{err}");
    }
}
