//! The firmware on every QEMU board besides the default Cortex-M4F (`firmware/edgeslim-firmware/src/
//! board.rs`): after `cargo xtask firmware` has run the model pipeline on the mps2-an386, each
//! other board (the Arm Cortex-M3, M7, M33, M55 and the RISC-V RV32IMAC `virt`) builds the same
//! programs for its own target and runs them in its own QEMU machine:
//!
//! - `hello`: the toolchain on that core (its log names the board);
//! - `kernels`: the kernels the interpreter calls on that core against the reference (the Arm
//!   DSP variants on the M7 and M33, the Helium (MVE) ones on the M55, built with
//!   [`M55_CONFIG`], the portable ones on the M3 and the RV32IMAC);
//! - `deploy`: the same model, levels and samples as on the M4, every int8 output equal to the
//!   host CLI's (`deploy::check_deploy`): bit-exact on every core; its flash and RAM within
//!   [`FLASH_BUDGET`] and [`RAM_BUDGET`];
//! - `profile`: the model's per-op cost on that core, to its last line.
//!
//! Then [`NPU_BOARD`]: the Cortex-M55 again with the Ethos-U55 driver (feature `ethos-u55`),
//! its `deploy` over the bundle's Vela command streams. QEMU has no NPU: the driver must find
//! none, decline every segment, and the outputs must still equal the host's.

use std::process::Command;

use anyhow::{Context, Result, bail, ensure};

use crate::Ctx;
use crate::cmd::on_path;
use crate::deploy::{self, Assets};

/// A QEMU board other than the default: its Cargo feature, QEMU machine, Rust target and the
/// QEMU that runs it.
pub struct Board {
    pub feature: &'static str,
    pub machine: &'static str,
    pub target: &'static str,
    pub core: &'static str,
    pub qemu: &'static str,
}

/// Every board but the default mps2-an386, which `firmware` runs first.
pub const OTHER_BOARDS: [Board; 5] = [
    Board {
        feature: "mps2-an385",
        machine: "mps2-an385",
        target: "thumbv7m-none-eabi",
        core: "Cortex-M3",
        qemu: "qemu-system-arm",
    },
    Board {
        feature: "mps2-an500",
        machine: "mps2-an500",
        target: "thumbv7em-none-eabihf",
        core: "Cortex-M7",
        qemu: "qemu-system-arm",
    },
    Board {
        feature: "mps2-an505",
        machine: "mps2-an505",
        target: "thumbv8m.main-none-eabihf",
        core: "Cortex-M33",
        qemu: "qemu-system-arm",
    },
    Board {
        feature: "mps3-an547",
        machine: "mps3-an547",
        target: "thumbv8m.main-none-eabihf",
        core: "Cortex-M55",
        qemu: "qemu-system-arm",
    },
    Board {
        feature: "virt-rv32",
        machine: "virt",
        target: "riscv32imac-unknown-none-elf",
        core: "RV32IMAC",
        qemu: "qemu-system-riscv32",
    },
];

/// The Corstone-300 variant: `mps3-an547` with the Ethos-U55 driver (`firmware/README.md`,
/// "Ethos-U55 (Corstone-300)").
pub const NPU_BOARD: Board = Board {
    feature: "mps3-an547,ethos-u55",
    machine: "mps3-an547",
    target: "thumbv8m.main-none-eabihf",
    core: "Cortex-M55 with the Ethos-U55 driver",
    qemu: "qemu-system-arm",
};

/// Upper bounds for the `deploy` image of the bundled model (`deploy::MODEL`) on every board,
/// from its `memory` line: flash (code, read-only data with the model blob and the 8 samples,
/// `.data`'s initial values; 204-221 KB measured on 2026-12-03, 220,856 B on the RV32IMAC) and
/// RAM (statics with the arena, plus the stack's painted high-water mark; 3.7 KB on the M3 and
/// the RV32IMAC, whose portable kernels keep no stack buffers, 8.5-8.7 KB on the others).
pub const FLASH_BUDGET: usize = 240 * 1024;
/// See [`FLASH_BUDGET`].
pub const RAM_BUDGET: usize = 12 * 1024;
/// What the Corstone-300 variant ([`NPU_BOARD`]) may take beyond [`FLASH_BUDGET`] and
/// [`RAM_BUDGET`]: the bundle's Vela command streams and weights in flash and the NPU scratch in
/// RAM, with the driver (2026-12-03, `cargo xtask test` on a fresh clone: digits-mtl's 7
/// streams for ethos-u55-128, 35,536 B; flash 264,604 B against 224,940 B without the feature,
/// RAM 11,120 B against 9,532 B with 1,408 B of scratch).
pub const NPU_EXTRA_BUDGET: (usize, usize) = (48 * 1024, 2 * 1024);

/// The `memory board <m> flash <n> ... ram <n> ...` line of a `deploy` log, checked against
/// the budgets; returns (flash, ram).
pub fn check_memory(log: &str, machine: &str) -> Result<(usize, usize)> {
    check_memory_within(log, machine, (FLASH_BUDGET, RAM_BUDGET))
}

/// [`check_memory`] against other budgets (flash, RAM).
pub fn check_memory_within(
    log: &str,
    machine: &str,
    (flash_budget, ram_budget): (usize, usize),
) -> Result<(usize, usize)> {
    let line = log
        .lines()
        .find_map(|l| l.split_once("memory board ").map(|(_, r)| r))
        .with_context(|| format!("`deploy` on {machine} logged no memory line"))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let field = |k: &str| -> Result<usize> {
        let i = words
            .iter()
            .position(|w| *w == k)
            .with_context(|| format!("no {k} in the memory line {line:?}"))?;
        words
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("bad {k} in the memory line {line:?}"))
    };
    ensure!(
        words.first() == Some(&machine),
        "the memory line {line:?} is not {machine}'s"
    );
    let (flash, ram) = (field("flash")?, field("ram")?);
    ensure!(
        flash <= flash_budget && ram <= ram_budget,
        "`deploy` on {machine}: flash {flash} B (budget {flash_budget}), RAM {ram} B (budget \
         {ram_budget}) in {line:?}"
    );
    println!("`deploy` on {machine}: flash {flash} B, RAM {ram} B (statics + stack peak)");
    Ok((flash, ram))
}

/// The NPU lines of a `deploy` log built with the `ethos-u55` feature, in QEMU (which has no
/// NPU): the driver found none, the bundle carried command streams for `config`, and every
/// offered segment was declined for want of an NPU. Returns the number of offers.
pub fn check_npu_declined(log: &str, config: &str) -> Result<u32> {
    let msg = |p: &str| {
        log.lines()
            .find_map(|l| l.split_once(p).map(|(_, r)| r.trim()))
    };
    ensure!(
        msg("npu: none at ").is_some(),
        "`deploy` with the Ethos-U55 driver found an NPU in QEMU, which has none"
    );
    let streams = msg("npu streams ").context("no `npu streams` line")?;
    let (n, rest) = streams
        .split_once(" for ")
        .with_context(|| format!("malformed {streams:?}"))?;
    let n: usize = n
        .parse()
        .with_context(|| format!("bad count in {streams:?}"))?;
    ensure!(
        n > 0 && rest.split(',').next().map(str::trim) == Some(config),
        "the bundle's NPU streams are missing or not for {config}: {streams:?}"
    );
    let counts = msg("npu offered ").context("no `npu offered` line")?;
    let words: Vec<&str> = counts.split_whitespace().collect();
    let field = |k: &str| -> Result<u32> {
        let i = words
            .iter()
            .position(|w| *w == k)
            .with_context(|| format!("no {k} in {counts:?}"))?;
        words
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("bad {k} in {counts:?}"))
    };
    let offered: u32 = words
        .first()
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("bad offer count in {counts:?}"))?;
    ensure!(
        offered > 0
            && field("accepted")? == 0
            && field("declined")? == offered
            && field("no_npu")? == offered,
        "in QEMU every offer must be declined for want of an NPU: {counts:?}"
    );
    Ok(offered)
}

/// The firmware package the boards share.
const PACKAGE: &str = "edgeslim-firmware";

/// Cargo `--config` of the Cortex-M55 builds (`mps3-an547`): `target-cpu=cortex-m55` after
/// the configuration's `cortex-m33` (rustc takes the last), which turns on Helium (MVE) and
/// with it the runtime's MVE kernels (`runtime/build.rs`). The M33 shares the target, so the
/// M55's flag cannot live in `firmware/.cargo/config.toml`.
pub const M55_CONFIG: [&str; 2] = [
    "--config",
    r#"target.thumbv8m.main-none-eabihf.rustflags=["-C","target-cpu=cortex-m55"]"#,
];

impl Board {
    /// Extra cargo arguments of this board's builds ([`M55_CONFIG`] on the Cortex-M55).
    pub fn config(&self) -> &'static [&'static str] {
        if self.machine == "mps3-an547" {
            &M55_CONFIG
        } else {
            &[]
        }
    }

    fn args<'a>(&'a self, verb: &'a str, bin: &'a str) -> Vec<&'a str> {
        let mut a = vec![
            verb,
            "--release",
            "-p",
            PACKAGE,
            "--no-default-features",
            "--features",
            self.feature,
            "--target",
            self.target,
            "--bin",
            bin,
        ];
        a.extend(self.config());
        a
    }
}

/// Run `bin` on `board` and return its log (level and message per line); an exit code other
/// than 0 is an error naming the board.
fn run(fw_cargo: &dyn Fn(&[&str]) -> Command, board: &Board, bin: &str) -> Result<String> {
    let mut c = fw_cargo(&board.args("run", bin));
    c.env("QEMU_RUN_LOG_FORMAT", "{L} {s}");
    let shown = crate::cmd::display(&c);
    println!("$ {shown}");
    let out = c
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("could not start `{shown}`"))?;
    let log = String::from_utf8_lossy(&out.stdout).into_owned();
    print!("{log}");
    if !out.status.success() {
        bail!(
            "program `{bin}` failed on {} ({}): {} (124: timed out)",
            board.machine,
            board.core,
            out.status
        );
    }
    Ok(log)
}

/// Build and run the programs on every other board; `fw_cargo` is `firmware`'s cargo in
/// `firmware/` with the Debian toolchain and the assets of the model pipeline.
pub fn run_all(ctx: &Ctx, assets: &Assets, fw_cargo: &dyn Fn(&[&str]) -> Command) -> Result<()> {
    for board in &OTHER_BOARDS {
        println!("== {} ({}, {})", board.feature, board.core, board.target);
        ensure!(
            on_path(board.qemu),
            "{} not found (for {}): run `cargo xtask setup`",
            board.qemu,
            board.feature
        );
        let hello = run(fw_cargo, board, "hello")?;
        let want = format!(
            "hello from edgeslim-firmware ({}, {})",
            board.machine, board.core
        );
        ensure!(
            hello.contains(&want),
            "`hello` on {} did not log {want:?}: the runner started another machine?",
            board.machine
        );
        let kernels = run(fw_cargo, board, "kernels")?;
        // The M55 must run its Helium kernels (a build without `M55_CONFIG` runs the DSP ones).
        let want = if board.machine == "mps3-an547" {
            "active (arm_mve) == reference"
        } else {
            "== reference"
        };
        ensure!(
            kernels.contains(want),
            "`kernels` on {} did not log {want:?}",
            board.machine
        );
        let log = run(fw_cargo, board, "deploy")?;
        deploy::check_deploy(ctx, assets, &log)
            .with_context(|| format!("`deploy` on {} ({})", board.machine, board.core))?;
        println!(
            "`deploy` on {}: every output equal to the host's",
            board.machine
        );
        check_memory(&log, board.machine)?;
        let profile = run(fw_cargo, board, "profile")?;
        ensure!(
            profile.lines().any(|l| l.trim_end().ends_with("done")),
            "`profile` on {} did not finish its log",
            board.machine
        );
    }
    let board = &NPU_BOARD;
    println!("== {} ({}, {})", board.feature, board.core, board.target);
    let log = run(fw_cargo, board, "deploy")?;
    deploy::check_deploy(ctx, assets, &log)
        .with_context(|| format!("`deploy` on {} ({})", board.machine, board.core))?;
    let offers = check_npu_declined(&log, deploy::NPU_CONFIG)?;
    println!(
        "`deploy` on {} with the Ethos-U55 driver: no NPU in QEMU, {offers} offers declined, \
         every output equal to the host's",
        board.machine
    );
    let (flash, ram) = NPU_EXTRA_BUDGET;
    check_memory_within(
        &log,
        board.machine,
        (FLASH_BUDGET + flash, RAM_BUDGET + ram),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_lines_are_checked() {
        let ok = "INFO  memory board mps2-an386 flash 219000 text 79344 rodata 139656 ram 8624 \
                  data 0 bss 1556 arena 1536 stack_peak 7068\n";
        assert_eq!(check_memory(ok, "mps2-an386").ok(), Some((219_000, 8624)));
        assert!(check_memory(ok, "mps2-an385").is_err());
        let rv = "INFO  memory board virt flash 220856 text 82524 rodata 138332 ram 3712 data 0 \
                  bss 1556 arena 1536 stack_peak 2156\n";
        assert_eq!(check_memory(rv, "virt").ok(), Some((220_856, 3712)));
        assert!(check_memory(rv, "mps2-an386").is_err());
        let big = ok.replace("ram 8624", &format!("ram {}", RAM_BUDGET + 1));
        let e = check_memory(&big, "mps2-an386")
            .err()
            .map(|e| e.to_string());
        assert!(
            e.is_some_and(|e| e.contains("RAM")),
            "over the RAM budget must fail"
        );
        assert!(check_memory("INFO  checksum 1234\n", "mps2-an386").is_err());
        assert!(check_memory(&ok.replace("flash 219000", "flash x"), "mps2-an386").is_err());
    }

    #[test]
    fn npu_lines_are_checked() {
        let ok = "INFO  npu: none at 0x58102000 (ID and CONFIG name no Ethos-U): every segment \
                  runs on the CPU\n\
                  INFO  npu streams 7 for ethos-u55-128, scratch 3072 fast scratch 0\n\
                  INFO  npu offered 80 accepted 0 declined 80 no_npu 80 no_stream 0 \
                  mismatched 0 faults 0 timeouts 0\n";
        assert_eq!(check_npu_declined(ok, "ethos-u55-128").ok(), Some(80));
        assert!(
            check_npu_declined(ok, "ethos-u55-256").is_err(),
            "other config"
        );
        let found = ok.replace("npu: none at", "npu: Ethos-U at");
        assert!(
            check_npu_declined(&found, "ethos-u55-128").is_err(),
            "an NPU in QEMU"
        );
        let empty = ok.replace("streams 7", "streams 0");
        assert!(
            check_npu_declined(&empty, "ethos-u55-128").is_err(),
            "no streams"
        );
        let ran = ok.replace("accepted 0 declined 80", "accepted 1 declined 79");
        assert!(
            check_npu_declined(&ran, "ethos-u55-128").is_err(),
            "accepted in QEMU"
        );
        let none = ok.replace("offered 80", "offered 0");
        assert!(
            check_npu_declined(&none, "ethos-u55-128").is_err(),
            "nothing offered"
        );
        assert!(check_npu_declined("INFO  checksum 1\n", "ethos-u55-128").is_err());
    }
}
