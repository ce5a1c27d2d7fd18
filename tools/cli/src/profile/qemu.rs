//! `edgeslim profile MODEL --target cortex-m4-qemu`: the whole device pipeline in one command.
//!
//! 1. **Assets.** The model blob and one input sample (NHWC float32: `--input`'s first sample,
//!    else the deterministic probe input of host profiling) go to
//!    `target/edgeslim-profile-m4/<content hash>/` of the repository, the directory the
//!    firmware's `build.rs` reads through `EDGESLIM_FW_ASSETS`.
//! 2. **Build and run.** The firmware's `profile` program is built with Debian's rustc and run
//!    in QEMU `mps2-an386` under `-icount shift=0` exactly as `edgeslim bench --target
//!    cortex-m4` builds and runs `opbench` (`crate::bench::m4`: the same code).
//! 3. **Convert.** Its log, kept as `profile.log` in the assets directory, becomes the table
//!    as with `--from-log` (`super::device`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use edgeslim_compiler::read_f32;
use edgeslim_compiler::run::split_batch;
use edgeslim_runtime::Model;

use super::host::probe_input;
use crate::bench::m4::{build_and_run, check_tools, firmware_dir, write_assets};

/// The target that runs the pipeline.
pub const TARGET: &str = "cortex-m4-qemu";
/// The firmware program whose log becomes the table.
pub const PROGRAM: &str = "profile";
/// The command, for errors.
const WHAT: &str = "profile --target cortex-m4-qemu";

/// The input sample the firmware profiles, NHWC.
fn sample(model: &Model<'_>, input: Option<&Path>) -> Result<Vec<f32>> {
    let Some(path) = input else {
        return Ok(probe_input(model));
    };
    let x = read_f32(path).with_context(|| format!("--input {}", path.display()))?;
    let (_, samples) = split_batch(model, &x)
        .with_context(|| format!("--input {} does not fit the model's input", path.display()))?;
    samples
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("--input {} holds no sample", path.display()))
}

/// Build and run the `profile` program with `blob` in QEMU; the log and where it was kept.
pub fn run_profile(
    blob: &[u8],
    model: &Model<'_>,
    input: Option<&Path>,
    progress: bool,
) -> Result<(String, PathBuf)> {
    // Everything missing is named before anything is built.
    let fw = firmware_dir(WHAT)?;
    check_tools(false, WHAT)?;
    let repo = fw
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let x = sample(model, input)?;
    let assets = write_assets(&repo.join("target/edgeslim-profile-m4"), blob, &x, &[])?;
    let runs = std::cell::Cell::new(0usize);
    let status = |line: &str| {
        line.contains("run widths ").then(|| {
            runs.set(runs.get() + 1);
            format!("profiling in QEMU: {} configurations", runs.get())
        })
    };
    let log = build_and_run(&fw, PROGRAM, &assets, None, progress, &status)?;
    let kept = assets.join("profile.log");
    std::fs::write(&kept, &log).with_context(|| format!("writing {}", kept.display()))?;
    Ok((log, kept))
}
