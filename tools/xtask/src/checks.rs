//! Steps 2 to 6: formatting, lints, host tests, the no_std thumb build, the model checks.

use anyhow::{Context, Result};

use crate::cmd::{cmd, run, succeeds};
use crate::setup::{DEBIAN_RUSTC, debian_toolchain};
use crate::{Ctx, Outcome, firmware};

pub fn fmt(ctx: &Ctx) -> Result<Outcome> {
    run(ctx.cargo().args(["fmt", "--all", "--check"]))
        .context("formatting differs: run `cargo fmt --all`")?;
    if firmware::has_members(ctx)? {
        run(ctx.cargo().args([
            "fmt",
            "--all",
            "--check",
            "--manifest-path",
            "firmware/Cargo.toml",
        ]))
        .context("firmware formatting differs: run `cd firmware && cargo fmt --all`")?;
    }
    Ok(Outcome::Done)
}

pub fn clippy(ctx: &Ctx) -> Result<Outcome> {
    run(ctx.cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    Ok(Outcome::Done)
}

/// nextest when installed (it does not run doc tests: `cargo test --doc` does), else
/// `cargo test`. The runner's own summary lines end the step's output.
pub fn host_tests(ctx: &Ctx) -> Result<Outcome> {
    // The ONNX backend node tests are regenerated from the `onnx` wheel's own generators
    // (installed by setup) instead of being committed; the conformance test reads them.
    let node_tests = ctx.root.join("target/onnx-node-tests");
    run(cmd("python3")
        .current_dir(&ctx.root)
        .arg("tests/conformance/gen_node_tests.py")
        .arg(&node_tests))
    .context("generating the ONNX backend node tests (needs the `onnx` Python package: `cargo xtask setup`)")?;
    if succeeds(ctx.cargo().args(["nextest", "--version"])) {
        run(ctx.cargo().args(["test", "--workspace", "--doc"])).context("doc tests failed")?;
        // An empty workspace is not an error while the crates are being filled.
        run(ctx
            .cargo()
            .args(["nextest", "run", "--workspace", "--no-tests=warn"]))?;
    } else {
        println!("(cargo-nextest not installed: using cargo test)");
        run(ctx.cargo().args(["test", "--workspace"]))?;
    }
    Ok(Outcome::Done)
}

/// The runtime (and the Ethos-U driver on it) must build for a Cortex-M4F with `core` only:
/// no std, no alloc.
pub const THUMB_TARGET: &str = "thumbv7em-none-eabihf";

pub fn thumb(ctx: &Ctx) -> Result<Outcome> {
    let tc = debian_toolchain()?;
    println!("using {DEBIAN_RUSTC}: {}", tc.rustc_version);
    let target_dir = ctx.root.join("target/thumb");
    for features in [None, Some("defmt")] {
        let mut c = ctx.cargo();
        // rust-toolchain.toml picks rustup's cargo; the compiler must be Debian's, which has
        // the library source -Zbuild-std needs. RUSTC_BOOTSTRAP lets both accept -Z.
        c.env("RUSTC", DEBIAN_RUSTC)
            .env("RUSTC_BOOTSTRAP", "1")
            .args(["build", "-p", "edgeslim-runtime", "--no-default-features"]);
        match features {
            Some(f) => c.args(["--features", f]),
            None => c.args(["-p", "edgeslim-ethos-u"]),
        };
        c.args(["--target", THUMB_TARGET, "-Zbuild-std=core", "--release"])
            .arg("--target-dir")
            .arg(&target_dir);
        let what = features.map_or("no features".to_owned(), |f| format!("--features {f}"));
        run(&mut c).with_context(|| {
            format!(
                "edgeslim-runtime (or edgeslim-ethos-u) does not build for {THUMB_TARGET} with \
                 core only ({what}). The toolchain was checked above, so this is most likely \
                 code that needs std/alloc or does not compile without them"
            )
        })?;
    }
    Ok(Outcome::Done)
}

pub fn models(ctx: &Ctx) -> Result<Outcome> {
    let rel = "models/check.py";
    if !ctx.root.join(rel).is_file() {
        return Ok(Outcome::Skipped(format!("{rel} does not exist yet")));
    }
    let mut c = cmd("python3");
    c.current_dir(&ctx.root).arg(rel);
    run(&mut c).context("bundled-model checks failed")?;
    Ok(Outcome::Done)
}
