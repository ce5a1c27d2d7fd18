//! The firmware on every QEMU board besides the default Cortex-M4F (`firmware/qemu-m4/src/
//! board.rs`): after `cargo xtask firmware` has run the model pipeline on the mps2-an386, each
//! other board (the Arm Cortex-M3, M7, M33, M55 and the RISC-V RV32IMAC `virt`) builds the same
//! programs for its own target and runs them in its own QEMU machine:
//!
//! - `hello`: the toolchain on that core (its log names the board);
//! - `kernels`: the kernels the interpreter calls on that core against the reference (the Arm
//!   DSP variants on the M7, M33 and M55, the portable ones on the M3 and the RV32IMAC);
//! - `deploy`: the same model, levels and samples as on the M4, every int8 output equal to the
//!   host CLI's (`deploy::check_deploy`): bit-exact on every core; its flash and RAM within
//!   [`FLASH_BUDGET`] and [`RAM_BUDGET`];
//! - `profile`: the model's per-op cost on that core, to its last line.

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

/// Upper bounds for the `deploy` image of the bundled model (`deploy::MODEL`) on every board,
/// from its `memory` line: flash (code, read-only data with the model blob and the 8 samples,
/// `.data`'s initial values; 204-221 KB measured on 2026-12-03, 220,856 B on the RV32IMAC) and
/// RAM (statics with the arena, plus the stack's painted high-water mark; 3.7 KB on the M3 and
/// the RV32IMAC, whose portable kernels keep no stack buffers, 8.5-8.7 KB on the others).
pub const FLASH_BUDGET: usize = 240 * 1024;
/// See [`FLASH_BUDGET`].
pub const RAM_BUDGET: usize = 12 * 1024;

/// The `memory board <m> flash <n> ... ram <n> ...` line of a `deploy` log, checked against
/// the budgets; returns (flash, ram).
pub fn check_memory(log: &str, machine: &str) -> Result<(usize, usize)> {
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
        flash <= FLASH_BUDGET && ram <= RAM_BUDGET,
        "`deploy` on {machine}: flash {flash} B (budget {FLASH_BUDGET}), RAM {ram} B (budget \
         {RAM_BUDGET}) in {line:?}"
    );
    println!("`deploy` on {machine}: flash {flash} B, RAM {ram} B (statics + stack peak)");
    Ok((flash, ram))
}

/// The firmware package the boards share.
const PACKAGE: &str = "qemu-m4";

impl Board {
    fn args<'a>(&'a self, verb: &'a str, bin: &'a str) -> [&'a str; 11] {
        [
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
        ]
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
        let want = format!("hello from qemu-m4 ({}, {})", board.machine, board.core);
        ensure!(
            hello.contains(&want),
            "`hello` on {} did not log {want:?}: the runner started another machine?",
            board.machine
        );
        run(fw_cargo, board, "kernels")?;
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
}
