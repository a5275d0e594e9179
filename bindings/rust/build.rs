//! Finds liblstm for the linker.
//!
//! Order of precedence:
//! 1. `LSTM_LIB_DIR`: the directory holding `liblstm.so` (no pkg-config run).
//!    When the library's real file name carries its release
//!    (`liblstm.so.0.3.0`, as CMake installs it), a release older than
//!    `MIN_VERSION` is refused here; otherwise an older library fails at
//!    link time on the first missing symbol.
//! 2. The `pkg-config` program (or the one named by `PKG_CONFIG`), asked for
//!    `--libs-only-L --libs-only-l lstm`. It honours `PKG_CONFIG_PATH` and
//!    `PKG_CONFIG_LIBDIR` on its own, since it inherits our environment.
//!    The library must be at least `MIN_VERSION`, the release that added
//!    the newest function the crate declares.
//!
//! Every library directory found is also put in the binaries' run path
//! (`-Wl,-rpath`), so tests and examples run without `LD_LIBRARY_PATH`.
//! Only the old `cargo:` directive syntax is used, so that Debian 12's cargo
//! (1.65) reads it.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The oldest liblstm with every function of src/sys.rs (the `LSTM_1.7`
/// node: lstm_workspace_set_training_precision).
const MIN_VERSION: &str = "0.8.0";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    for var in [
        "LSTM_LIB_DIR",
        "PKG_CONFIG",
        "PKG_CONFIG_PATH",
        "PKG_CONFIG_LIBDIR",
        "PKG_CONFIG_SYSROOT_DIR",
    ] {
        println!("cargo:rerun-if-env-changed={}", var);
    }

    if let Some(dir) = env::var_os("LSTM_LIB_DIR").filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        if !dir.is_dir() {
            panic!("LSTM_LIB_DIR={} is not a directory", dir.display());
        }
        check_file_version(&dir);
        link_dir(&dir);
        println!("cargo:rustc-link-lib=dylib=lstm");
        return;
    }

    let program = env::var("PKG_CONFIG").unwrap_or_else(|_| "pkg-config".to_string());
    let output = Command::new(&program)
        .args(["--libs-only-L", "--libs-only-l", "lstm"])
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "could not run `{}` to find liblstm ({}). Install pkg-config, or set \
                 LSTM_LIB_DIR to the directory that holds liblstm.so",
                program, e
            )
        });
    if !output.status.success() {
        panic!(
            "`{} --libs-only-L --libs-only-l lstm` failed: {}\nSet PKG_CONFIG_PATH to the \
             directory holding lstm.pc (for example <prefix>/lib/pkgconfig), or set \
             LSTM_LIB_DIR to the directory that holds liblstm.so",
            program,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    check_version(&program);
    let flags = String::from_utf8(output.stdout).expect("pkg-config printed non-UTF-8 text");
    let mut linked = false;
    for flag in flags.split_whitespace() {
        if let Some(dir) = flag.strip_prefix("-L") {
            link_dir(Path::new(dir));
        } else if let Some(lib) = flag.strip_prefix("-l") {
            println!("cargo:rustc-link-lib={}", lib);
            linked |= lib == "lstm";
        }
    }
    if !linked {
        panic!("pkg-config gave no -llstm: {}", flags.trim());
    }
}

/// Panics, saying which version was found, unless pkg-config's lstm is at
/// least MIN_VERSION (an older library lacks symbols the crate links to).
fn check_version(program: &str) {
    let at_least = format!("--atleast-version={}", MIN_VERSION);
    let recent = Command::new(program)
        .args([at_least.as_str(), "lstm"])
        .status()
        .map_or(false, |status| status.success());
    if !recent {
        let found = Command::new(program)
            .args(["--modversion", "lstm"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        panic!(
            "pkg-config found liblstm {}; this crate needs liblstm {} or later",
            found, MIN_VERSION
        );
    }
}

/// "MAJOR.MINOR.PATCH" as numbers, or None.
fn parse_version(text: &str) -> Option<(u32, u32, u32)> {
    let mut parts = text.split('.').map(|p| p.parse::<u32>().ok());
    let version = (parts.next()??, parts.next()??, parts.next()??);
    if parts.next().is_some() {
        return None;
    }
    Some(version)
}

/// With LSTM_LIB_DIR: panics, saying which version was found, when the
/// real file behind liblstm.so (liblstm.so.MAJOR.MINOR.PATCH, as CMake
/// names it) is older than MIN_VERSION. A name without a release says
/// nothing, and is let through.
fn check_file_version(dir: &Path) {
    let min = parse_version(MIN_VERSION).expect("MIN_VERSION is MAJOR.MINOR.PATCH");
    for name in ["liblstm.so", "liblstm.so.1"] {
        let real = match dir.join(name).canonicalize() {
            Ok(real) => real,
            Err(_) => continue,
        };
        let found = real
            .file_name()
            .and_then(|f| f.to_str())
            .and_then(|f| f.strip_prefix("liblstm.so."))
            .and_then(parse_version);
        if let Some(found) = found {
            if found < min {
                panic!(
                    "LSTM_LIB_DIR={} holds liblstm {}.{}.{} ({}); this crate needs liblstm {} \
                     or later",
                    dir.display(),
                    found.0,
                    found.1,
                    found.2,
                    real.display(),
                    MIN_VERSION
                );
            }
            return;
        }
    }
}

/// Adds a library directory to the search path and to the run path.
fn link_dir(dir: &Path) {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    println!("cargo:rustc-link-search=native={}", dir.display());
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
    // With `links = "lstm"`, dependents' build scripts see this as DEP_LSTM_LIBDIR.
    println!("cargo:libdir={}", dir.display());
}
