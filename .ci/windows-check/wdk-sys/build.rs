//! Writes `call_unsafe_wdf_function_binding.rs` into `OUT_DIR`: the same
//! `macro_rules!` forwarder the real `wdk-sys` build script generates, pointing
//! `wdk-macros` at this crate's `src/types.rs` (the real crate points it at
//! the bindings bindgen wrote into `OUT_DIR`).

use std::path::PathBuf;

/// Set by `cargo xtask check-windows` to the stand-ins' directory.
const STAND_INS_ENV: &str = "DMF_WINDOWS_CHECK_STAND_INS";

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    let types = manifest_dir.join("src").join("types.rs");
    let types = types.to_str().expect("the stand-in's path must be UTF-8");
    assert!(
        !types.contains('"'),
        "the stand-in's path must not contain a double quote: {types}"
    );
    let forwarder = format!(
        r####"/// Calls a WDF function by name through the `WdfFunctions` table (the
/// same forwarder the real `wdk-sys` generates; see its documentation).
#[macro_export]
macro_rules! call_unsafe_wdf_function_binding {{
    ( $($tt:tt)* ) => {{
        $crate::__proc_macros::call_unsafe_wdf_function_binding! (
            r"{types}",
            $($tt)*
        )
    }}
}}
"####
    );
    std::fs::write(
        out_dir.join("call_unsafe_wdf_function_binding.rs"),
        forwarder,
    )
    .expect("write OUT_DIR/call_unsafe_wdf_function_binding.rs");
    clear_host_macro_cache(&out_dir);
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=src/types.rs");
    // Cargo hashes path packages relative to their workspace root, so a
    // copy of the workspace elsewhere (the check's own test) shares this
    // OUT_DIR; `cargo xtask check-windows` names the stand-ins' location in
    // this variable, so a check from another copy reruns this script and
    // the forwarder never points at another copy's `types.rs`.
    println!("cargo::rerun-if-env-changed={STAND_INS_ENV}");
}

/// Deletes `wdk-macros`' function-table cache of a host build, so that a
/// changed `types.rs` (this script reruns then) is read again.
///
/// `wdk-macros` writes the table it parsed from `types.rs` once, into the
/// `OUT_DIR` of its `scratch` dependency, and never invalidates it. In a host
/// build (dmf-kmdf's `emulation` feature) that directory is a sibling of this
/// script's own under `<target>/<profile>/build/`. `cargo xtask
/// check-windows` clears its own (cross-target) cache before every run.
fn clear_host_macro_cache(out_dir: &std::path::Path) {
    let Some(build_dir) = out_dir.parent().and_then(std::path::Path::parent) else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(build_dir) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().starts_with("scratch-") {
            continue;
        }
        let Ok(caches) = std::fs::read_dir(entry.path().join("out")) else {
            continue;
        };
        for cache in caches.flatten() {
            if cache
                .file_name()
                .to_string_lossy()
                .starts_with("wdk_macros_ast_fragments")
            {
                // A missing file is what we want; any other error leaves
                // the stale cache, which the next compile error names.
                let _ = std::fs::remove_file(cache.path().join("cached_function_info_map.json"));
            }
        }
    }
}
