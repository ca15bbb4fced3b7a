//! Compiles the small C shim that flattens libpri's events and links libpri (Debian
//! libpri-dev), statically so the test binaries do not depend on the runtime package.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn run(cmd: &mut Command) {
    let status = cmd.status().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(status.success(), "{cmd:?} failed: {status}");
}

fn main() {
    println!("cargo:rerun-if-changed=shim.c");
    println!("cargo:rerun-if-changed=build.rs");
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let cc = env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let obj = out.join("shim.o");
    run(Command::new(&cc).args(["-c", "-O2", "-fPIC", "-Wall", "shim.c", "-o"]).arg(&obj));
    let ar = env::var("AR").unwrap_or_else(|_| "ar".to_owned());
    let lib = out.join("libsbshim.a");
    let _ = std::fs::remove_file(&lib);
    run(Command::new(ar).arg("crs").arg(&lib).arg(&obj));
    println!("cargo:rustc-link-search=native={}", out.display());
    println!("cargo:rustc-link-lib=static=sbshim");
    // Debian installs libpri.a in /usr/lib (not the multiarch directory).
    println!("cargo:rustc-link-search=native=/usr/lib");
    println!("cargo:rustc-link-lib=static=pri");
}
