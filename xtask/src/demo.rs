//! `cargo xtask demo`: the sample driver on the simulator.

use crate::cli::DemoArgs;
use crate::ctx::{Ctx, ToolError};
use crate::runner::Cmd;
use crate::workspace::Layout;

/// Why the demo did not run.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The crate does not exist.
    #[error("crate `{0}` not found in the workspace ({1}/Cargo.toml): nothing to run")]
    CrateMissing(String, String),
    /// `cargo run` failed.
    #[error("{0}")]
    Run(ToolError),
}

/// The `cargo run` command for the demo.
pub fn demo_command(layout: &Layout, args: &DemoArgs) -> Cmd {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut cmd = Cmd::new(cargo).args(["run", "-p", args.driver_package.as_str()]);
    if args.release {
        cmd = cmd.arg("--release");
    }
    if !args.args.is_empty() {
        cmd = cmd.arg("--").args(args.args.iter().cloned());
    }
    cmd.current_dir(&layout.root).inherit_stdio()
}

/// Runs `demo`.
pub fn demo(ctx: &Ctx<'_>, layout: &Layout, args: &DemoArgs) -> Result<(), DemoError> {
    let dir = layout.root.join(&args.driver_package);
    if !dir.join("Cargo.toml").is_file() {
        return Err(DemoError::CrateMissing(
            args.driver_package.clone(),
            dir.display().to_string(),
        ));
    }
    ctx.step(
        "demo",
        format!("run {} on the simulator", args.driver_package),
    );
    ctx.exec(demo_command(layout, args))
        .map_err(DemoError::Run)?;
    Ok(())
}
