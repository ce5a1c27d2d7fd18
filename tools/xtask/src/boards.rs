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
//!
//! Last the real boards ([`HARDWARE_BOARDS`]: NUCLEO-F446RE, nRF52840 DK, Raspberry Pi Pico
//! 2), which cannot run here: [`build_hardware`] builds their programs
//! ([`HARDWARE_PROGRAMS`]) with their HALs and sizes `deploy` from its ELF's section headers
//! ([`Footprint`]): flash (code and vector table, read-only data with the model and samples,
//! `.data`'s initial values) and RAM (`.data`, `.bss` with the arena, `.uninit` with the RTT
//! buffer, plus the stack high-water mark that `deploy` painted on the QEMU board of the same
//! core and target, [`HardwareBoard::stack_from`]), checked against the board's budgets.

use std::ops::Range;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};

use crate::Ctx;
use crate::cmd::on_path;
use crate::deploy::{self, Assets};
use crate::elf::{self, SHF_ALLOC, SHT_NOBITS, Section};

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

/// The number after `key` in the `memory board <m> ...` line of a `deploy` log.
pub fn memory_field(log: &str, key: &str) -> Result<usize> {
    let line = log
        .lines()
        .find_map(|l| l.split_once("memory board ").map(|(_, r)| r))
        .context("`deploy` logged no memory line")?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let i = words
        .iter()
        .position(|w| *w == key)
        .with_context(|| format!("no {key} in the memory line {line:?}"))?;
    words
        .get(i + 1)
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("bad {key} in the memory line {line:?}"))
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
/// `firmware/` with the Debian toolchain and the assets of the model pipeline. Returns each
/// board's `deploy` log by QEMU machine.
pub fn run_all(
    ctx: &Ctx,
    assets: &Assets,
    fw_cargo: &dyn Fn(&[&str]) -> Command,
) -> Result<Vec<(&'static str, String)>> {
    let mut logs = Vec::new();
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
        logs.push((board.machine, log));
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
    Ok(logs)
}

/// A real board: built by `cargo xtask firmware`, never run here (`firmware/README.md`,
/// "Flashing a real board").
pub struct HardwareBoard {
    pub feature: &'static str,
    pub target: &'static str,
    /// The chip, as probe-rs names it (`firmware/edgeslim-firmware/src/board.rs`).
    pub chip: &'static str,
    pub core: &'static str,
    /// The RAM region of its memory map (`memory/<feature>.x`): sections there are RAM.
    pub ram: Range<u32>,
    /// The QEMU machine whose `deploy` runs the same code on the same target and kernels
    /// (the Cortex-M4F's for the M4F boards, the Cortex-M33's for the RP2350): the stack
    /// high-water mark painted there stands for this board's.
    pub stack_from: &'static str,
    /// Upper bounds for the `deploy` image of the bundled model, (flash, RAM) in bytes: see
    /// [`HARDWARE_BOARDS`].
    pub budget: (usize, usize),
}

/// The real boards. Budgets: flash and RAM of `deploy` with the bundled model (digits-mtl,
/// 8 samples) as [`Footprint`] counts them, RAM with the stack peak of
/// [`HardwareBoard::stack_from`]. Measured by `cargo xtask firmware` on 2026-12-03: flash
/// 227,376 B (NUCLEO-F446RE), 227,404 B (nRF52840 DK), 230,800 B (Pico 2, embassy-rp and its
/// boot block); RAM 10,732 B, 10,736 B and 10,896 B (statics 2.6-2.9 KB with the 1,536 B arena
/// and defmt-rtt's 1 KiB buffer, stack peaks 8,100 B from mps2-an386 and 7,988 B from
/// mps2-an505). The chips have 512 KiB to 4 MiB of flash and 128 to 520 KiB of RAM: the
/// budgets pin the image, not the chip.
pub const HARDWARE_BOARDS: [HardwareBoard; 3] = [
    HardwareBoard {
        feature: "nucleo-f446re",
        target: "thumbv7em-none-eabihf",
        chip: "STM32F446RETx",
        core: "Cortex-M4F",
        ram: 0x2000_0000..0x2002_0000,
        stack_from: "mps2-an386",
        budget: (HW_FLASH_BUDGET, HW_RAM_BUDGET),
    },
    HardwareBoard {
        feature: "nrf52840-dk",
        target: "thumbv7em-none-eabihf",
        chip: "nRF52840_xxAA",
        core: "Cortex-M4F",
        ram: 0x2000_0000..0x2004_0000,
        stack_from: "mps2-an386",
        budget: (HW_FLASH_BUDGET, HW_RAM_BUDGET),
    },
    HardwareBoard {
        feature: "pico2",
        target: "thumbv8m.main-none-eabihf",
        chip: "RP235x",
        core: "Cortex-M33",
        ram: 0x2000_0000..0x2008_0000,
        stack_from: "mps2-an505",
        budget: (HW_FLASH_BUDGET, HW_RAM_BUDGET),
    },
];

/// See [`HARDWARE_BOARDS`].
pub const HW_FLASH_BUDGET: usize = 248 * 1024;
/// See [`HARDWARE_BOARDS`].
pub const HW_RAM_BUDGET: usize = 14 * 1024;

/// The programs built for the real boards; `parse`, `bench` and `opbench` count instructions
/// under QEMU's `-icount` and are QEMU-only (`required-features = ["qemu"]`).
pub const HARDWARE_PROGRAMS: [&str; 4] = ["hello", "kernels", "deploy", "profile"];

/// An image by section, in bytes, from its ELF section headers. Sections in the board's RAM
/// region are RAM: `.data` (its initial values in flash too), `.bss`, and the rest
/// (`.uninit`, the RTT buffer among it) as `uninit`; allocated sections elsewhere are flash:
/// `.rodata`, and the rest (vector table, RP2350 boot block, code) as `text`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Footprint {
    pub text: usize,
    pub rodata: usize,
    pub data: usize,
    pub bss: usize,
    pub uninit: usize,
}

impl Footprint {
    pub fn of(sections: &[Section], ram: &Range<u32>) -> Footprint {
        let mut f = Footprint::default();
        for s in sections.iter().filter(|s| s.flags & SHF_ALLOC != 0) {
            let n = s.size as usize;
            if ram.contains(&s.addr) {
                match (s.name.as_str(), s.kind) {
                    (".data", _) => f.data += n,
                    (".bss", _) => f.bss += n,
                    _ => f.uninit += n,
                }
            } else if s.kind != SHT_NOBITS {
                match s.name.as_str() {
                    ".rodata" => f.rodata += n,
                    _ => f.text += n,
                }
            }
        }
        f
    }

    /// Flash the image takes: code, read-only data and `.data`'s initial values.
    pub fn flash(&self) -> usize {
        self.text + self.rodata + self.data
    }

    /// RAM the statics take.
    pub fn statics(&self) -> usize {
        self.data + self.bss + self.uninit
    }
}

/// `deploy`'s footprint on `board` against its budget: flash, and RAM as statics plus
/// `stack_peak`; `.bss` must hold the `arena`. Returns (flash, RAM).
pub fn check_footprint(
    board: &HardwareBoard,
    f: &Footprint,
    arena: usize,
    stack_peak: usize,
) -> Result<(usize, usize)> {
    let (flash, ram) = (f.flash(), f.statics() + stack_peak);
    ensure!(
        f.bss >= arena,
        "`deploy` for {}: .bss of {} B cannot hold the {arena} B arena: built without the model?",
        board.feature,
        f.bss
    );
    let (flash_budget, ram_budget) = board.budget;
    ensure!(
        flash <= flash_budget && ram <= ram_budget,
        "`deploy` for {} ({}): flash {flash} B (budget {flash_budget}), RAM {ram} B (budget \
         {ram_budget}: statics {} + stack peak {stack_peak} from {}) ({f:?})",
        board.feature,
        board.core,
        f.statics(),
        board.stack_from
    );
    Ok((flash, ram))
}

/// Build the real boards' programs and check `deploy`'s footprint; `target_dir` is the
/// firmware's cargo target directory, `deploy_logs` the QEMU boards' `deploy` logs by machine
/// (their memory lines give the arena and the stack peaks).
pub fn build_hardware(
    fw_cargo: &dyn Fn(&[&str]) -> Command,
    target_dir: &Path,
    deploy_logs: &[(&str, String)],
) -> Result<()> {
    for board in &HARDWARE_BOARDS {
        println!(
            "== {} ({}, {}, probe-rs chip {}): build only",
            board.feature, board.core, board.target, board.chip
        );
        let mut args = vec![
            "build",
            "--release",
            "-p",
            PACKAGE,
            "--no-default-features",
            "--features",
            board.feature,
            "--target",
            board.target,
        ];
        for bin in HARDWARE_PROGRAMS {
            args.extend(["--bin", bin]);
        }
        crate::cmd::run(&mut fw_cargo(&args))
            .with_context(|| format!("the firmware does not build for {}", board.feature))?;
        let elf_path = target_dir.join(board.target).join("release").join("deploy");
        let bytes =
            std::fs::read(&elf_path).with_context(|| format!("reading {}", elf_path.display()))?;
        let f = Footprint::of(
            &elf::sections(&bytes).with_context(|| elf_path.display().to_string())?,
            &board.ram,
        );
        let log = deploy_logs
            .iter()
            .find(|(m, _)| *m == board.stack_from)
            .map(|(_, l)| l)
            .with_context(|| format!("no `deploy` log from {}", board.stack_from))?;
        let stack = memory_field(log, "stack_peak")?;
        let arena = memory_field(log, "arena")?;
        let (flash, ram) = check_footprint(board, &f, arena, stack)?;
        println!(
            "`deploy` for {}: flash {flash} B (text {} rodata {} data {}), RAM {ram} B (data {} \
             bss {} with the {arena} B arena, uninit {}, stack peak {stack} painted on {})",
            board.feature, f.text, f.rodata, f.data, f.data, f.bss, f.uninit, board.stack_from
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

    #[test]
    fn hardware_footprints_are_checked() {
        use crate::elf::tests::image;
        let (alloc, write) = (SHF_ALLOC, SHF_ALLOC | 0x1);
        let b = image(&[
            (".vector_table", 1, alloc, 0x1000_0000, 0x114),
            (".start_block", 1, alloc, 0x1000_0114, 0x14),
            (".text", 1, alloc | 0x4, 0x1000_0128, 80_000),
            (".rodata", 1, alloc, 0x1001_3a28, 140_000),
            (".data", 1, write, 0x2000_0000, 0x38),
            (".bss", SHT_NOBITS, write, 0x2000_0038, 1_700),
            (".uninit", SHT_NOBITS, write, 0x2000_0700, 1_024),
            (".debug_info", 1, 0, 0, 900_000),
        ]);
        let board = &HARDWARE_BOARDS[2];
        let f = Footprint::of(&elf::sections(&b).unwrap(), &board.ram);
        assert_eq!(
            f,
            Footprint {
                text: 0x114 + 0x14 + 80_000,
                rodata: 140_000,
                data: 0x38,
                bss: 1_700,
                uninit: 1_024
            }
        );
        assert_eq!(f.flash(), 0x128 + 80_000 + 140_000 + 0x38);
        assert_eq!(f.statics(), 0x38 + 1_700 + 1_024);
        let (flash, ram) = check_footprint(board, &f, 1_536, 7_000).unwrap();
        assert_eq!((flash, ram), (f.flash(), f.statics() + 7_000));
        assert!(
            check_footprint(board, &f, 2_048, 7_000).is_err(),
            "the arena must fit in .bss"
        );
        assert!(
            check_footprint(board, &f, 1_536, HW_RAM_BUDGET).is_err(),
            "over the RAM budget"
        );
        let big = Footprint {
            rodata: HW_FLASH_BUDGET,
            ..f
        };
        assert!(
            check_footprint(board, &big, 1_536, 7_000).is_err(),
            "over flash"
        );
        let log = "INFO  memory board mps2-an505 flash 1 text 1 rodata 1 ram 9 data 0 bss 1556 \
                   arena 1536 stack_peak 7068\n";
        assert_eq!(memory_field(log, "stack_peak").ok(), Some(7068));
        assert_eq!(memory_field(log, "arena").ok(), Some(1536));
        assert!(memory_field(log, "heap").is_err());
        // Every board's feature, target and chip are the firmware's.
        let board_rs = include_str!("../../../firmware/edgeslim-firmware/src/board.rs");
        for b in &HARDWARE_BOARDS {
            assert!(
                board_rs.contains(&format!("\"{}\"", b.feature)),
                "{}",
                b.feature
            );
            assert!(board_rs.contains(&format!("\"{}\"", b.chip)), "{}", b.chip);
            assert!(
                OTHER_BOARDS
                    .iter()
                    .any(|q| q.machine == b.stack_from && q.target == b.target)
                    || (b.stack_from == "mps2-an386" && b.target == "thumbv7em-none-eabihf"),
                "{}: the stack peak must come from a QEMU board of the same target",
                b.feature
            );
        }
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
