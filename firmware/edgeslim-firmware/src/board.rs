//! The board a program is built for: one Cargo feature per board, exactly one enabled
//! (`mps2-an386` by default). A board is a module: its core clock, its memory map
//! (`memory/<feature>.x`, chosen by `build.rs`), what the runner needs to start it (a QEMU
//! machine and CPU, or the chip probe-rs flashes) and, on a real board, [`init`]: clocks, the
//! button pin and the UART the application reads its commands from. Everything else (programs,
//! logger, exit) is shared, and what differs by architecture (runtime, clock) is chosen by
//! `target_arch` in the crate's modules.
//!
//! QEMU boards:
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
//! Real boards (feature `hardware`: defmt over RTT, the DWT cycle counter as the clock, exit
//! through probe-rs; `cargo run` flashes them with probe-rs):
//!
//! | feature | board | chip (probe-rs `--chip`) | core, clock | Rust target | button | serial (115200 8N1) |
//! |---|---|---|---|---|---|---|
//! | `nucleo-f446re` | ST NUCLEO-F446RE | STM32F446RETx | Cortex-M4F, 180 MHz from HSI | `thumbv7em-none-eabihf` | B1 (PC13) | USART2 PA2/PA3, the ST-LINK virtual COM port |
//! | `nrf52840-dk` | Nordic nRF52840 DK | nRF52840_xxAA | Cortex-M4F, 64 MHz | `thumbv7em-none-eabihf` | Button 1 (P0.11) | UARTE0 P0.06/P0.08, the J-Link virtual COM port |
//! | `pico2` | Raspberry Pi Pico 2 | RP235x | Cortex-M33 (core 0), 150 MHz | `thumbv8m.main-none-eabihf` | a push button from GP15 to GND | UART0 GP0/GP1 |
//!
//! The runner (`qemu-run.sh`) reads the marker ([`MARKER`]) from the ELF: it starts the QEMU
//! machine a QEMU board names, or runs `probe-rs run --chip <chip>` for a real board, so
//! `cargo run --no-default-features --features mps2-an385 --target thumbv7m-none-eabi --bin
//! deploy` runs on the Cortex-M3 and `... --features nrf52840-dk --target
//! thumbv7em-none-eabihf --bin deploy` flashes the nRF52840 DK, without further flags.

use edgeslim_app::Button;

/// Defines the board constants and the runner's marker for one QEMU board.
#[cfg(feature = "qemu")]
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
        pub static MARKER: &str = concat!("edgeslim-qemu-board ", $machine, " ", $cpu, ";");
        /// Whether this is a real board (flashed by probe-rs) rather than a QEMU machine.
        pub const HARDWARE: bool = false;
    };
}

/// Defines the board constants and the runner's marker for one real board.
#[cfg(feature = "hardware")]
macro_rules! hardware_board {
    ($board:literal, $chip:literal, $core:literal, $hz:literal, $flash:literal) => {
        /// The board's name (the Cargo feature).
        pub const MACHINE: &str = $board;
        /// The chip, as probe-rs names it (`probe-rs chip list`).
        pub const CHIP: &str = $chip;
        /// The core, as a user names it.
        pub const CORE: &str = $core;
        /// The core clock [`init`] configures, which the DWT cycle counter counts.
        pub const SYSCLK_HZ: u32 = $hz;
        /// Where the image starts (`FLASH` in `memory/<feature>.x`): the vector table.
        pub const FLASH_ORIGIN: usize = $flash;
        /// Read by `qemu-run.sh` from the ELF: `edgeslim-probe-rs-chip <chip>;`.
        pub static MARKER: &str = concat!("edgeslim-probe-rs-chip ", $chip, ";");
        /// Whether this is a real board (flashed by probe-rs) rather than a QEMU machine.
        pub const HARDWARE: bool = true;
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

#[cfg(feature = "nucleo-f446re")]
hardware_board!(
    "nucleo-f446re",
    "STM32F446RETx",
    "Cortex-M4F",
    180_000_000,
    0x0800_0000
);
#[cfg(feature = "nrf52840-dk")]
hardware_board!(
    "nrf52840-dk",
    "nRF52840_xxAA",
    "Cortex-M4F",
    64_000_000,
    0x0000_0000
);
#[cfg(feature = "pico2")]
hardware_board!("pico2", "RP235x", "Cortex-M33", 150_000_000, 0x1000_0000);

#[cfg(feature = "nucleo-f446re")]
#[path = "board/nucleo_f446re.rs"]
mod hw;
#[cfg(feature = "nrf52840-dk")]
#[path = "board/nrf52840_dk.rs"]
mod hw;
#[cfg(feature = "pico2")]
#[path = "board/pico2.rs"]
mod hw;

#[cfg(feature = "hardware")]
pub use hw::{BUTTON, ButtonPin, SERIAL, SerialRx};

/// The board's button pin (an embedded-hal 1.0 `InputPin`): none in QEMU.
#[cfg(feature = "qemu")]
pub type ButtonPin = edgeslim_app::NoButton;
/// The board's serial command line (an embedded-hal-nb `serial::Read<u8>`): none in QEMU.
#[cfg(feature = "qemu")]
pub type SerialRx = edgeslim_app::NoSerial;
/// The button, for logs.
#[cfg(feature = "qemu")]
pub const BUTTON: &str = "none (QEMU)";
/// The serial command line, for logs.
#[cfg(feature = "qemu")]
pub const SERIAL: &str = "none (QEMU)";

/// Ends the program (exit 1) when the core clock the board set up, `actual` Hz, is not
/// [`SYSCLK_HZ`], which the cycle counts assume.
#[cfg(any(feature = "nucleo-f446re", feature = "pico2"))]
fn check_sysclk(actual: u32) {
    if actual != SYSCLK_HZ {
        defmt::error!(
            "the core clock is {=u32} Hz, not the {=u32} Hz the cycle counts assume",
            actual,
            SYSCLK_HZ
        );
        crate::exit(1)
    }
}

/// What [`init`] hands the application (`edgeslim_app::App::new`): the board's button and
/// the receiving half of its UART.
pub struct Io {
    /// The user button (`None` on a board without one).
    pub button: Option<Button<ButtonPin>>,
    /// The UART's receiver the commands arrive on.
    pub serial: SerialRx,
}

/// Set the board up: on a real board its clocks (the core at [`SYSCLK_HZ`], which the cycle
/// counter then counts), the button pin and the UART; in QEMU nothing (no button, no serial).
/// Call it once, first in `main` (after `memory::paint_stack`); a second call ends the program
/// (exit 1), as the peripherals are taken.
pub fn init() -> Io {
    use core::sync::atomic::{AtomicBool, Ordering};
    static DONE: AtomicBool = AtomicBool::new(false);
    if DONE.swap(true, Ordering::Relaxed) {
        defmt::error!("board::init called twice");
        crate::exit(1)
    }
    #[cfg(feature = "hardware")]
    {
        hw::init()
    }
    #[cfg(feature = "qemu")]
    {
        Io {
            button: None,
            serial: edgeslim_app::NoSerial,
        }
    }
}
