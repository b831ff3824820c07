//! `cargo xtask`: see `cargo xtask --help`.

fn main() -> std::process::ExitCode {
    xtask::main_with_args(std::env::args_os())
}
