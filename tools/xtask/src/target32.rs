//! `cargo xtask target32`: the runtime on a 32-bit `usize`. Thumb and RISC-V MCUs are 32-bit,
//! and a blob's geometry arithmetic (strides, pads, dilations, shapes) that fits 64 bits can
//! wrap on 32 (issue 12): `Model::parse` bounds every padded coordinate by
//! `edgeslim_runtime::ops::MAX_COORD` whatever the width of `usize`, and this step holds it to
//! that on a 32-bit host target, `i686-unknown-linux-gnu`, where the tests run natively:
//!
//! - the runtime's own tests (unit and integration, with and without `std`),
//! - the robustness suite (`tests/robustness/tests/robustness.rs`, crate `edgeslim-robustness`,
//!   which depends on the runtime alone: truncations, mutations, every op's
//!   record checks and the crafted records that wrap a 32-bit `usize`),
//! - clippy on the runtime for that target (code behind `cfg`s the 64-bit build skips).
//!
//! Installs what is missing: the target's standard library (`rustup target add`, a download of
//! a few minutes) and Debian's `gcc-multilib` (the 32-bit C runtime the linker needs). Builds go
//! to `target/i686/`, beside the host's.

use anyhow::{Context, Result, bail};

use crate::cmd::{cmd, on_path, output, run as run_cmd};
use crate::setup::apt_install_missing;
use crate::{Ctx, Outcome};

/// The 32-bit target the tests run on natively (x86-64 Linux runs i686 binaries).
pub const TARGET: &str = "i686-unknown-linux-gnu";

/// Debian packages to link and run i686 binaries.
pub const APT_PACKAGES: &[&str] = &["gcc-multilib"];

pub fn run(ctx: &Ctx) -> Result<Outcome> {
    if ctx.quick {
        return Ok(Outcome::Skipped(
            "--quick: no rustup target or apt packages".into(),
        ));
    }
    rust_target(ctx)
        .with_context(|| format!("installing the Rust standard library for {TARGET}"))?;
    apt_install_missing(APT_PACKAGES).context("installing the 32-bit C runtime (gcc-multilib)")?;
    let target_dir = ctx.root.join("target/i686");
    let cargo = |args: &[&str]| {
        let mut c = ctx.cargo();
        c.args(args)
            .args(["--target", TARGET])
            .arg("--target-dir")
            .arg(&target_dir);
        c
    };
    let tests: [(&[&str], &str); 3] = [
        (
            &["-p", "edgeslim-runtime"],
            "the runtime's tests (no features)",
        ),
        (
            &["-p", "edgeslim-runtime", "--features", "std"],
            "the runtime's tests (std)",
        ),
        (&["-p", "edgeslim-robustness"], "the robustness suite"),
    ];
    for (args, what) in tests {
        let mut c = cargo(&["test"]);
        c.args(args);
        run_cmd(&mut c).with_context(|| format!("{what} fail on a 32-bit target"))?;
    }
    let mut clippy = cargo(&["clippy", "-p", "edgeslim-runtime", "--all-targets"]);
    clippy.args(["--features", "std", "--", "-D", "warnings"]);
    run_cmd(&mut clippy).context("clippy warns on the runtime for a 32-bit target")?;
    Ok(Outcome::Done)
}

/// `rustup target add` for the toolchain this workspace pins, when its standard library for
/// [`TARGET`] is missing.
fn rust_target(ctx: &Ctx) -> Result<()> {
    if !on_path("rustup") {
        bail!(
            "rustup not found: install the standard library for {TARGET} with your toolchain \
             manager (rustup: `rustup target add {TARGET}`)"
        );
    }
    // Run from the workspace root: rust-toolchain.toml picks the toolchain.
    let mut list = cmd("rustup");
    list.current_dir(&ctx.root)
        .args(["target", "list", "--installed"]);
    if output(&mut list)?.lines().any(|l| l.trim() == TARGET) {
        println!("rustup: {TARGET} present");
        return Ok(());
    }
    println!("rustup: {TARGET} missing: installing (a download of a few minutes)");
    let mut add = cmd("rustup");
    add.current_dir(&ctx.root).args(["target", "add", TARGET]);
    run_cmd(&mut add)
}
