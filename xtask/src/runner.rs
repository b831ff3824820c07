//! The one seam through which xtask starts external programs.
//!
//! Every external effect that is a process (cargo, osslsigncode, openssl,
//! ssh, scp, signtool, stampinf, inf2cat, powershell, ...) is described as a
//! [`Cmd`] and handed to a [`CommandRunner`]. [`SystemRunner`] really runs it;
//! [`RecordingRunner`] records it and answers from a closure, so tests can
//! assert the exact argv without any of those tools installed.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One external command: program, arguments, working directory and extra
/// environment variables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cmd {
    /// Program name (looked up in `PATH`) or path.
    pub program: String,
    /// Arguments, in order.
    pub args: Vec<String>,
    /// Working directory, if not the current one.
    pub cwd: Option<PathBuf>,
    /// Extra environment variables for the child.
    pub env: Vec<(String, String)>,
    /// Indexes into `args` whose values are secrets: shown as `******`.
    pub secret_args: Vec<usize>,
    /// Connect the child's stdin/stdout/stderr to ours instead of capturing
    /// them (used for `cargo run` in `demo` and the driver build).
    pub inherit_stdio: bool,
    /// Kill the child when it has not finished after this long.
    pub timeout: Option<Duration>,
}

impl Cmd {
    /// A command running `program` with no arguments.
    pub fn new(program: impl Into<String>) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
            cwd: None,
            env: Vec::new(),
            secret_args: Vec::new(),
            inherit_stdio: false,
            timeout: None,
        }
    }

    /// Kills the command if it runs longer than `limit` (its [`Output`] then
    /// has `timed_out` set).
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.timeout = Some(limit);
        self
    }

    /// Appends one argument.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Appends one path argument (lossy UTF-8 conversion).
    pub fn arg_path(self, path: &Path) -> Self {
        self.arg(path.to_string_lossy().into_owned())
    }

    /// Appends several arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Appends an argument whose value must never be printed.
    pub fn secret_arg(mut self, arg: impl Into<String>) -> Self {
        self.secret_args.push(self.args.len());
        self.args.push(arg.into());
        self
    }

    /// Sets the working directory.
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// Adds an environment variable for the child.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Lets the child use our terminal instead of capturing its output.
    pub fn inherit_stdio(mut self) -> Self {
        self.inherit_stdio = true;
        self
    }

    /// Program followed by arguments, secrets included (what is executed).
    pub fn argv(&self) -> Vec<String> {
        std::iter::once(self.program.clone())
            .chain(self.args.iter().cloned())
            .collect()
    }

    /// The command as a copy-pasteable POSIX shell line, secrets redacted.
    pub fn display(&self) -> String {
        self.render(usize::MAX)
    }

    /// Like [`Cmd::display`], with arguments longer than 100 characters
    /// (encoded scripts) elided, for error messages.
    pub fn display_short(&self) -> String {
        self.render(100)
    }

    fn render(&self, max_arg: usize) -> String {
        let mut out = String::new();
        if let Some(cwd) = &self.cwd {
            out.push_str("(cd ");
            out.push_str(&shell_quote(&cwd.to_string_lossy()));
            out.push_str(" && ");
        }
        for (k, _) in &self.env {
            if k.contains("PASSWORD") {
                out.push_str(&format!("{k}=****** "));
            }
        }
        out.push_str(&shell_quote(&self.program));
        for (i, a) in self.args.iter().enumerate() {
            out.push(' ');
            if self.secret_args.contains(&i) {
                out.push_str("******");
            } else if a.chars().count() > max_arg {
                let head: String = a.chars().take(60).collect();
                out.push_str(&shell_quote(&format!(
                    "{head}... ({} chars)",
                    a.chars().count()
                )));
            } else {
                out.push_str(&shell_quote(a));
            }
        }
        if self.cwd.is_some() {
            out.push(')');
        }
        out
    }
}

/// Quotes `s` for a POSIX shell when it contains anything but safe characters.
pub fn shell_quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '-' | '_' | '.' | '/' | ':' | '=' | ',' | '@' | '+' | '%')
        });
    if safe {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// What a finished command left behind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Output {
    /// Exit code; `None` if the process was killed by a signal.
    pub code: Option<i32>,
    /// Captured standard output (empty when stdio was inherited).
    pub stdout: String,
    /// Captured standard error (empty when stdio was inherited).
    pub stderr: String,
    /// The command was killed after running longer than its timeout.
    pub timed_out: bool,
}

impl Output {
    /// A successful run with the given stdout.
    pub fn ok(stdout: impl Into<String>) -> Self {
        Self {
            code: Some(0),
            stdout: stdout.into(),
            ..Self::default()
        }
    }

    /// A failed run with the given exit code and stderr.
    pub fn failed(code: i32, stderr: impl Into<String>) -> Self {
        Self {
            code: Some(code),
            stderr: stderr.into(),
            ..Self::default()
        }
    }

    /// Whether the command exited with status 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// Runs external commands and finds programs. Implemented by
/// [`SystemRunner`] (real processes) and [`RecordingRunner`] (tests).
pub trait CommandRunner {
    /// Runs `cmd` to completion. `Err` only when it could not be started
    /// (`io::ErrorKind::NotFound` for a missing program); a non-zero exit is
    /// an `Ok` [`Output`].
    fn run(&self, cmd: &Cmd) -> io::Result<Output>;

    /// Finds `program` the way the OS would when running it (`PATH`, and
    /// `PATHEXT` on Windows); `None` if it is not installed.
    fn find_program(&self, program: &str) -> Option<PathBuf>;
}

/// Runs commands as real child processes.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemRunner;

impl CommandRunner for SystemRunner {
    fn run(&self, cmd: &Cmd) -> io::Result<Output> {
        let mut command = Command::new(&cmd.program);
        command.args(&cmd.args);
        if let Some(cwd) = &cmd.cwd {
            command.current_dir(cwd);
        }
        for (k, v) in &cmd.env {
            command.env(k, v);
        }
        if cmd.inherit_stdio {
            let status = command.status()?;
            return Ok(Output {
                code: status.code(),
                ..Output::default()
            });
        }
        command.stdin(Stdio::null());
        let Some(limit) = cmd.timeout else {
            let out = command.output()?;
            return Ok(Output {
                code: out.status.code(),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                timed_out: false,
            });
        };
        run_with_timeout(command, limit)
    }

    fn find_program(&self, program: &str) -> Option<PathBuf> {
        find_in_path(program, std::env::var_os("PATH"))
    }
}

/// Runs `command` with piped output, killing it after `limit`. Output is
/// collected as it comes, so what a killed command printed is kept even when
/// a grandchild still holds its pipes open.
fn run_with_timeout(mut command: Command, limit: Duration) -> io::Result<Output> {
    use std::io::Read;
    use std::sync::Arc;
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn()?;
    type Sink = Arc<Mutex<Vec<u8>>>;
    let drain = |pipe: Option<Box<dyn Read + Send>>, sink: Sink| {
        std::thread::spawn(move || {
            let Some(mut p) = pipe else { return };
            let mut buf = [0u8; 8192];
            while let Ok(n) = p.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .extend_from_slice(&buf[..n]);
            }
        })
    };
    let (out, err): (Sink, Sink) = Default::default();
    let readers = [
        drain(
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
            Arc::clone(&out),
        ),
        drain(
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
            Arc::clone(&err),
        ),
    ];
    let deadline = Instant::now() + limit;
    let (status, timed_out) = loop {
        if let Some(status) = child.try_wait()? {
            break (Some(status), false);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break (None, true);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // Let the readers take what is left, but do not wait on pipes that a
    // grandchild may keep open.
    let grace = Instant::now() + Duration::from_secs(if timed_out { 1 } else { 5 });
    while readers.iter().any(|r| !r.is_finished()) && Instant::now() < grace {
        std::thread::sleep(Duration::from_millis(10));
    }
    let text = |sink: &Sink| {
        String::from_utf8_lossy(
            &sink
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
        .into_owned()
    };
    Ok(Output {
        code: status.and_then(|s| s.code()),
        stdout: text(&out),
        stderr: text(&err),
        timed_out,
    })
}

/// Looks `program` up in a `PATH`-style list (adding `.exe`/`.cmd`/`.bat` on
/// Windows). A program given as a path is checked directly.
pub fn find_in_path(program: &str, path: Option<OsString>) -> Option<PathBuf> {
    let candidate = Path::new(program);
    let extensions: &[&str] = if cfg!(windows) {
        &["", ".exe", ".cmd", ".bat"]
    } else {
        &[""]
    };
    let is_file = |p: &Path| p.is_file();
    if candidate.components().count() > 1 || candidate.is_absolute() {
        return extensions
            .iter()
            .map(|e| PathBuf::from(format!("{program}{e}")))
            .find(|p| is_file(p));
    }
    let path = path?;
    std::env::split_paths(&path).find_map(|dir| {
        extensions
            .iter()
            .map(|e| dir.join(format!("{program}{e}")))
            .find(|p| is_file(p))
    })
}

/// The handler a [`RecordingRunner`] answers with.
pub type Responder = Box<dyn Fn(&Cmd) -> io::Result<Output> + Send + Sync>;

/// A fake runner for tests: records every command and answers through a
/// closure. Programs listed as installed are "found"; others are not.
pub struct RecordingRunner {
    calls: Mutex<Vec<Cmd>>,
    responder: Responder,
    installed: Vec<String>,
}

impl RecordingRunner {
    /// A runner where every listed program is installed and every command
    /// succeeds with empty output.
    pub fn new<I, S>(installed: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::with_responder(installed, Box::new(|_| Ok(Output::ok(""))))
    }

    /// Like [`RecordingRunner::new`], answering with `responder`.
    pub fn with_responder<I, S>(installed: I, responder: Responder) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            calls: Mutex::new(Vec::new()),
            responder,
            installed: installed.into_iter().map(Into::into).collect(),
        }
    }

    /// Every command run so far, in order.
    pub fn calls(&self) -> Vec<Cmd> {
        self.calls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl CommandRunner for RecordingRunner {
    fn run(&self, cmd: &Cmd) -> io::Result<Output> {
        self.calls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(cmd.clone());
        if !self.installed.iter().any(|p| p == &cmd.program) {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} is not installed (fake)", cmd.program),
            ));
        }
        (self.responder)(cmd)
    }

    fn find_program(&self, program: &str) -> Option<PathBuf> {
        self.installed
            .iter()
            .any(|p| p == program)
            .then(|| PathBuf::from(program))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_and_redacts() {
        let cmd = Cmd::new("osslsigncode")
            .arg("sign")
            .arg("-pass")
            .secret_arg("hunter2")
            .arg("-n")
            .arg("my driver")
            .arg("it's");
        assert_eq!(
            cmd.display(),
            r"osslsigncode sign -pass ****** -n 'my driver' 'it'\''s'"
        );
        assert_eq!(cmd.argv()[3], "hunter2");
        let long = Cmd::new("ssh").arg("x".repeat(150));
        assert_eq!(
            long.display_short(),
            format!("ssh '{}... (150 chars)'", "x".repeat(60))
        );
        assert_eq!(long.display(), format!("ssh {}", "x".repeat(150)));
    }

    #[test]
    fn recording_runner_records_and_reports_missing_programs() {
        let r = RecordingRunner::new(["ssh"]);
        assert!(r.run(&Cmd::new("ssh").arg("-V")).unwrap().success());
        let err = r.run(&Cmd::new("scp")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert_eq!(r.calls().len(), 2);
        assert!(r.find_program("ssh").is_some());
        assert!(r.find_program("scp").is_none());
    }

    #[test]
    fn a_command_over_its_timeout_is_killed_and_keeps_its_output() {
        if !cfg!(unix) {
            return;
        }
        let start = Instant::now();
        let out = SystemRunner
            .run(
                &Cmd::new("sh")
                    .args(["-c", "echo started; sleep 30"])
                    .timeout(Duration::from_millis(500)),
            )
            .unwrap();
        assert!(out.timed_out);
        assert_eq!(out.stdout, "started\n");
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{:?}",
            start.elapsed()
        );
        let out = SystemRunner
            .run(
                &Cmd::new("sh")
                    .args(["-c", "echo fast; exit 3"])
                    .timeout(Duration::from_secs(20)),
            )
            .unwrap();
        assert!(!out.timed_out);
        assert_eq!((out.code, out.stdout.as_str()), (Some(3), "fast\n"));
    }

    #[test]
    fn find_in_path_finds_sh() {
        if cfg!(unix) {
            assert!(find_in_path("sh", std::env::var_os("PATH")).is_some());
            assert!(
                find_in_path("definitely-not-a-program-xyz", std::env::var_os("PATH")).is_none()
            );
        }
    }
}
