//! The QEMU board a program is built for: one Cargo feature per board, exactly one enabled
//! (`mps2-an386` by default). A board is its QEMU machine and CPU, its core clock, and its
//! memory map (`memory/<feature>.x`, chosen by `build.rs`); everything else (programs, logger,
//! exit) is shared, and what differs by architecture (runtime, clock) is chosen by
//! `target_arch` in the crate's modules.
//!
//! | feature | QEMU machine | core | Rust target | clock |
//! |---|---|---|---|---|
//! | `mps2-an385` | `mps2-an385` | Cortex-M3 (no DSP, no FPU) | `thumbv7m-none-eabi` | 25 MHz |
//! | `mps2-an386` | `mps2-an386` | Cortex-M4F | `thumbv7em-none-eabihf` | 25 MHz |
//! | `mps2-an500` | `mps2-an500` | Cortex-M7 | `thumbv7em-none-eabihf` | 25 MHz |
//! | `mps2-an505` | `mps2-an505` | Cortex-M33 (DSP, FPU, TrustZone; runs secure) | `thumbv8m.main-none-eabihf` | 20 MHz |
//! | `mps3-an547` | `mps3-an547` | Cortex-M55 (DSP, FPU, MVE; runs secure) | `thumbv8m.main-none-eabihf` | 32 MHz |
//! | `virt-rv32` | `virt` (`-bios none`) | RV32IMAC (QEMU's `rv32` CPU) | `riscv32imac-unknown-none-elf` | 25 MHz modelled |
//!
//! QEMU's RISC-V `virt` board has no core clock of its own (its CLINT timer runs at 10 MHz);
//! its programs count instructions with `mcycle` (`src/icount.rs`) and model times at 25 MHz,
//! one instruction per cycle, as the 25 MHz MPS2 boards', so budgets compare like for like.
//!
//! The runner (`qemu-run.sh`) starts the machine a program names in [`QEMU_BOARD`], so
//! `cargo run --no-default-features --features mps2-an385 --target thumbv7m-none-eabi --bin
//! deploy` runs on the Cortex-M3 without further flags.

/// Defines the board constants and the runner's marker for one board.
macro_rules! board {
    ($machine:literal, $cpu:literal, $core:literal, $hz:literal, $flash:literal) => {
        /// QEMU's `-machine`.
        pub const MACHINE: &str = $machine;
        /// QEMU's `-cpu`.
        pub const CPU: &str = $cpu;
        /// The core, as a user names it.
        pub const CORE: &str = $core;
        /// The core clock: on Arm, the clock SysTick counts in QEMU; on RISC-V, the modelled
        /// clock (QEMU's `virt` has none).
        pub const SYSCLK_HZ: u32 = $hz;
        /// Where the image starts (`FLASH` in `memory/<feature>.x`): the vector table on Arm,
        /// the reset code on RISC-V.
        pub const FLASH_ORIGIN: usize = $flash;
        /// Read by `qemu-run.sh` from the ELF: `edgeslim-qemu-board <machine> <cpu>;`.
        pub static QEMU_BOARD: &str = concat!("edgeslim-qemu-board ", $machine, " ", $cpu, ";");
    };
}

#[cfg(feature = "mps2-an385")]
board!(
    "mps2-an385",
    "cortex-m3",
    "Cortex-M3",
    25_000_000,
    0x0000_0000
);
#[cfg(feature = "mps2-an386")]
board!(
    "mps2-an386",
    "cortex-m4",
    "Cortex-M4F",
    25_000_000,
    0x0000_0000
);
#[cfg(feature = "mps2-an500")]
board!(
    "mps2-an500",
    "cortex-m7",
    "Cortex-M7",
    25_000_000,
    0x0000_0000
);
#[cfg(feature = "mps2-an505")]
board!(
    "mps2-an505",
    "cortex-m33",
    "Cortex-M33",
    20_000_000,
    0x1000_0000
);
#[cfg(feature = "mps3-an547")]
board!(
    "mps3-an547",
    "cortex-m55",
    "Cortex-M55",
    32_000_000,
    0x1000_0000
);
#[cfg(feature = "virt-rv32")]
board!("virt", "rv32", "RV32IMAC", 25_000_000, 0x8000_0000);

/// The Ethos-U55's registers on Corstone-300 (SSE-300, the MPS3 AN547 image): `0x4810_2000`
/// non-secure, `0x5810_2000` secure. This firmware runs secure (the M55 starts secure and
/// nothing switches it), so it uses the secure alias, and the driver resets the NPU into the
/// secure, privileged level. QEMU 7.2's `mps3-an547` does not model the NPU: it maps an
/// unimplemented-device window at `0x4810_2000` (named "U55 timing adapter 0" in its memory
/// tree, reached from the secure alias) that reads as zero and ignores writes, so the probe
/// reads `ID` = 0 and finds no NPU, without a fault.
#[cfg(feature = "mps3-an547")]
pub const ETHOS_U55_BASE: usize = 0x5810_2000;
