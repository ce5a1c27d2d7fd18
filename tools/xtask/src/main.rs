//! `cargo xtask`: the one entry point for setup and every check, cheapest first.
//!
//! ```text
//! cargo xtask test [--quick]   setup, fmt, clippy, host tests, thumb build, model checks, firmware,
//!                               32-bit target
//! cargo xtask setup            install what is missing (Debian and Python packages, defmt-print)
//! cargo xtask thumb            the no_std thumbv7em-none-eabihf build of the runtime
//! cargo xtask firmware         generate the model assets, profile in QEMU (latency table,
//!                               bundle), build and run every program, check deploy bit-exact
//! cargo xtask bench-m4         kernels, then the bundled models op by op (the CLI), on the
//!                               Cortex-M4 in QEMU beside CMSIS-NN (CMSIS_NN_DIR)
//! cargo xtask bench-m55        the kernels on the Cortex-M55 in QEMU: portable, Arm DSP and
//!                               Helium (MVE) side by side (and CMSIS-NN with CMSIS_NN_DIR)
//! cargo xtask target32         runtime tests and robustness suite on i686 (32-bit usize)
//! cargo xtask fmt|clippy|host-tests|models    one step alone
//! ```
//!
//! `--quick` skips everything that needs the Debian toolchain (apt, thumb build, firmware).
//! Each step prints a banner and its time; the first failing step stops the run and is named.

mod bench_m4;
mod boards;
mod checks;
mod cmd;
mod deploy;
mod elf;
mod firmware;
mod setup;
mod target32;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

const USAGE: &str = "\
usage: cargo xtask <command> [--quick]

commands:
  test       every check, cheapest first: setup, fmt, clippy, host tests,
             thumb no_std build, model checks, firmware in QEMU
  setup      install what is missing (apt and Python packages, defmt-print); idempotent
  thumb      no_std build of edgeslim-runtime for thumbv7em-none-eabihf (no alloc)
  firmware   compile the firmware's model with the host CLI, profile it in QEMU
             (icount latency table, search/bundle --from-table), build and run
             every program, compare deploy's outputs with the host bit for bit
  bench-m4   exact instruction counts on the Cortex-M4 (QEMU) of the conv/fc kernels
             (edgeslim portable and arm_dsp), then of the bundled models op by op
             (edgeslim bench --target cortex-m4), beside CMSIS-NN when CMSIS_NN_DIR
             names a CMSIS-NN checkout (else \"not measured\")
  bench-m55  the same kernel counts on the Cortex-M55 (QEMU mps3-an547, built with
             target-cpu=cortex-m55): portable, arm_dsp and arm_mve (Helium) side by
             side, beside CMSIS-NN's MVE build when CMSIS_NN_DIR is set
  target32   the runtime's tests and the robustness suite on i686-unknown-linux-gnu
             (32-bit usize); installs the rustup target and gcc-multilib; the last step
             of `test` (the suite's crate depends on the runtime alone: about 2 minutes)
  fmt | clippy | host-tests | models
             one step of `test` alone

options:
  --quick    (test) skip apt packages, the thumb build and the firmware";

/// Shared state of one run.
pub struct Ctx {
    /// The host workspace root.
    pub root: PathBuf,
    /// The cargo that runs us (rustup's, pinned by rust-toolchain.toml).
    pub cargo: OsString,
    /// `--quick`: no Debian toolchain work.
    pub quick: bool,
}

impl Ctx {
    /// `cargo <args>` run from the workspace root.
    pub fn cargo(&self) -> std::process::Command {
        let mut c = cmd::cmd(&self.cargo);
        c.current_dir(&self.root);
        c
    }
}

/// What a step did when it did not fail.
pub enum Outcome {
    Done,
    Skipped(String),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Step {
    Setup,
    Fmt,
    Clippy,
    HostTests,
    Thumb,
    Models,
    Firmware,
    BenchM4,
    BenchM55,
    Target32,
}

impl Step {
    fn name(self) -> &'static str {
        match self {
            Step::Setup => "setup",
            Step::Fmt => "fmt",
            Step::Clippy => "clippy",
            Step::HostTests => "host tests",
            Step::Thumb => "thumb no_std build",
            Step::Models => "model checks",
            Step::Firmware => "firmware in QEMU",
            Step::BenchM4 => "Cortex-M4 kernel bench in QEMU",
            Step::BenchM55 => "Cortex-M55 kernel bench in QEMU (Helium)",
            Step::Target32 => "32-bit target (i686) tests",
        }
    }

    fn run(self, ctx: &Ctx) -> Result<Outcome> {
        match self {
            Step::Setup => setup::setup(ctx),
            Step::Fmt => checks::fmt(ctx),
            Step::Clippy => checks::clippy(ctx),
            Step::HostTests => checks::host_tests(ctx),
            Step::Thumb => checks::thumb(ctx),
            Step::Models => checks::models(ctx),
            Step::Firmware => firmware::firmware(ctx),
            Step::BenchM4 => bench_m4::bench_m4(ctx),
            Step::BenchM55 => bench_m4::bench_m55(ctx),
            Step::Target32 => target32::run(ctx),
        }
    }
}

fn main() -> ExitCode {
    match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn real_main() -> Result<ExitCode> {
    let mut command = None;
    let mut quick = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--quick" => quick = true,
            "-h" | "--help" | "help" => {
                println!("{USAGE}");
                return Ok(ExitCode::SUCCESS);
            }
            a if a.starts_with('-') => bail!("unknown option `{a}`\n\n{USAGE}"),
            a if command.is_none() => command = Some(a.to_owned()),
            a => bail!("unexpected argument `{a}`\n\n{USAGE}"),
        }
    }
    let Some(command) = command else {
        bail!("no command given\n\n{USAGE}");
    };
    let steps: &[Step] = match (command.as_str(), quick) {
        ("test", false) => &[
            Step::Setup,
            Step::Fmt,
            Step::Clippy,
            Step::HostTests,
            Step::Thumb,
            Step::Models,
            Step::Firmware,
            Step::Target32,
        ],
        ("test", true) => &[
            Step::Setup,
            Step::Fmt,
            Step::Clippy,
            Step::HostTests,
            Step::Models,
        ],
        ("setup", _) => &[Step::Setup],
        ("fmt", _) => &[Step::Fmt],
        ("clippy", _) => &[Step::Clippy],
        ("host-tests", _) => &[Step::HostTests],
        ("thumb", _) => &[Step::Thumb],
        ("models", _) => &[Step::Models],
        ("firmware", _) => &[Step::Firmware],
        ("bench-m4", _) => &[Step::BenchM4],
        ("bench-m55", _) => &[Step::BenchM55],
        ("target32", _) => &[Step::Target32],
        (other, _) => bail!("unknown command `{other}`\n\n{USAGE}"),
    };
    if quick && command != "test" {
        bail!("--quick only applies to `cargo xtask test`");
    }

    let ctx = Ctx {
        root: workspace_root()?,
        cargo: std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()),
        quick,
    };
    if quick {
        println!("xtask: --quick: skipping apt packages, the thumb build and the firmware");
    }
    Ok(run_steps(&ctx, steps))
}

/// Run the steps in order, stop at the first failure, print a summary either way.
fn run_steps(ctx: &Ctx, steps: &[Step]) -> ExitCode {
    let start = Instant::now();
    let mut done: Vec<(Step, Duration, String)> = Vec::new();
    let total = steps.len();
    for (i, &step) in steps.iter().enumerate() {
        println!("\n==> [{}/{total}] {}", i + 1, step.name());
        let t = Instant::now();
        let result = step.run(ctx);
        let dt = t.elapsed();
        match result {
            Ok(outcome) => {
                let status = match outcome {
                    Outcome::Done => "ok".to_owned(),
                    Outcome::Skipped(why) => format!("skipped: {why}"),
                };
                println!("<== {}: {status} ({})", step.name(), secs(dt));
                done.push((step, dt, status));
            }
            Err(e) => {
                done.push((step, dt, "FAILED".to_owned()));
                summary(&done, start.elapsed());
                eprintln!(
                    "\nxtask: step {}/{total} `{}` FAILED after {}:\n{e:#}",
                    i + 1,
                    step.name(),
                    secs(dt)
                );
                return ExitCode::FAILURE;
            }
        }
    }
    summary(&done, start.elapsed());
    println!("xtask: all {total} steps passed");
    ExitCode::SUCCESS
}

fn summary(done: &[(Step, Duration, String)], total: Duration) {
    println!("\nxtask summary:");
    for (step, dt, status) in done {
        println!("  {:<20} {:>8}  {status}", step.name(), secs(*dt));
    }
    println!("  {:<20} {:>8}", "total", secs(total));
}

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// The host workspace root: two levels above this crate's manifest.
fn workspace_root() -> Result<PathBuf> {
    // `cargo run` sets CARGO_MANIFEST_DIR for the program too; the compile-time value is the
    // fallback when the binary is started directly.
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    let root = manifest_dir
        .ancestors()
        .nth(2)
        .context("xtask is expected at <root>/tools/xtask")?
        .to_path_buf();
    if !root.join("Cargo.toml").is_file() {
        bail!("no Cargo.toml at the workspace root {}", root.display());
    }
    Ok(root)
}
