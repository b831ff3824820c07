//! `cargo xtask`: build, package, test-sign and deploy the sample KMDF
//! driver, run its simulator demo, type-check its KMDF build, and start a
//! new driver from it.
//!
//! ```text
//! cargo xtask package [--sys PATH] [--profile driver|dev|release] [--target-arch amd64|arm64]
//! cargo xtask sign    [--pfx FILE --cer FILE] [--no-verify]
//! cargo xtask deploy  [--sys PATH] --host ADDR --user NAME --key FILE [--no-package] [--check] [--reboot]
//! cargo xtask undeploy [--remove-cert] --host ADDR --user NAME --key FILE
//! cargo xtask demo    [--release] [-- ARGS]
//! cargo xtask check-windows [--target x64|arm64|all] [-p PACKAGE] [--no-doc] [--manifest-path FILE]
//! cargo xtask new-driver NAME [--path DIR]
//! ```
//!
//! (`--dry-run` on any of them prints the exact commands and changes
//! nothing; `--help` on each explains every option.)
//!
//! The flow follows windows-drivers-rs (cargo-wdk's `PackageTask` and the
//! WDK cargo-make makefile): `<name>.dll` -> `<name>.sys`, `stampinf` on the
//! `.inx`, `infverif`, `inf2cat`, then `signtool sign` of the `.sys` and the
//! `.cat`, in `target/<profile>/<name>_package/`. It also works on a host
//! without the WDK:
//!
//! | step | Windows + WDK | Linux / macOS |
//! | --- | --- | --- |
//! | build | `cargo build -p sample-driver` | `--sys PATH` (built on Windows) |
//! | `.inx` -> `.inf` | `stampinf` (built-in if absent) | built-in ([`inf`]) |
//! | INF check | `infverif /v /w` | skipped |
//! | catalog | `inf2cat` | built-in ([`catalog`]) |
//! | test certificate | `New-SelfSignedCertificate` | `openssl req -x509` |
//! | sign, verify | `signtool` | `osslsigncode` |
//! | deploy, undeploy | ssh/scp or PowerShell Direct | ssh/scp |
//!
//! `DriverVer` is stamped with the build's local date and a version unique
//! per build ([`package::driver_ver`]); deploy checks the VM first, gives
//! every remote step a time limit, verifies what got installed and fetches
//! the VM's logs on failure ([`deploy`]).
//!
//! All processes are started through [`runner::CommandRunner`], so tests
//! substitute a recording fake; each step has its own error type whose
//! message names the failing tool and how to fix it.

pub mod catalog;
pub mod check_windows;
pub mod cli;
pub mod config;
pub mod ctx;
pub mod demo;
pub mod deploy;
pub mod identity;
pub mod inf;
pub mod new_driver;
pub mod package;
pub mod pe;
pub mod ps;
pub mod runner;
pub mod sign;
pub mod staging;
pub mod testing;
pub mod workspace;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::ctx::{Ctx, Host};
use crate::runner::{CommandRunner, SystemRunner};
use crate::workspace::{Layout, WorkspaceError};

/// Any xtask failure; the message says which step failed and how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Workspace not found.
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
    /// `package` failed.
    #[error("package: {0}")]
    Package(#[from] package::PackageError),
    /// `sign` failed.
    #[error("sign: {0}")]
    Sign(#[from] sign::SignError),
    /// `deploy` or `undeploy` failed.
    #[error("deploy: {0}")]
    Deploy(#[from] deploy::DeployError),
    /// `demo` failed.
    #[error("demo: {0}")]
    Demo(#[from] demo::DemoError),
    /// `check-windows` failed.
    #[error("check-windows: {0}")]
    CheckWindows(#[from] check_windows::CheckWindowsError),
    /// The driver's identity (`.inx` + `[package.metadata.wdk]`) is unusable.
    #[error(transparent)]
    Identity(#[from] identity::IdentityLoadError),
    /// `new-driver` failed.
    #[error("new-driver: {0}")]
    NewDriver(#[from] new_driver::NewDriverError),
}

/// Runs a parsed command line on `host` through `runner`.
pub fn run(cli: &Cli, runner: &dyn CommandRunner, host: Host) -> Result<(), Error> {
    let ctx = Ctx::new(runner, cli.global.dry_run, host);
    run_in(&ctx, cli)
}

/// Runs a parsed command line in an existing context (tests inspect the
/// context afterwards).
pub fn run_in(ctx: &Ctx<'_>, cli: &Cli) -> Result<(), Error> {
    let layout = Layout::resolve(cli.global.workspace.clone(), cli.global.target_dir.clone())?;
    if ctx.dry_run() {
        ctx.step(
            "dry-run",
            "printing commands and file operations only; nothing is changed",
        );
    }
    let command = identity::with_defaults(&layout, &cli.command)?;
    match &command {
        Command::Package(a) => {
            package::package(ctx, &layout, &a.target, &a.build)?;
        }
        Command::Sign(a) => {
            sign::sign(ctx, &layout, &a.target, &a.cert)?;
        }
        Command::Deploy(a) => deploy::deploy(ctx, &layout, a)?,
        Command::Undeploy(a) => deploy::undeploy(ctx, &layout, a)?,
        Command::Demo(a) => demo::demo(ctx, &layout, a)?,
        Command::CheckWindows(a) => check_windows::check_windows(ctx, &layout, a)?,
        Command::NewDriver(a) => {
            new_driver::new_driver(ctx, &layout, a)?;
        }
    }
    Ok(())
}

/// The binary's entry point: parse, run, print the error, exit code.
pub fn main_with_args<I>(args: I) -> ExitCode
where
    I: IntoIterator<Item = OsString>,
{
    let cli = Cli::parse_from(args);
    match run(&cli, &SystemRunner, Host::current()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Error::Demo(demo::DemoError::Run(e))) if e.exit_code().is_some() => {
            // The demo printed its own output; just pass its status on.
            ExitCode::from(
                e.exit_code()
                    .and_then(|c| u8::try_from(c).ok())
                    .unwrap_or(1),
            )
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
