//! Board support for QEMU's Arm MPS2/MPS3 boards: the [`board`] a program is built for (one
//! Cargo feature each; `mps2-an386`, a Cortex-M4F at 25 MHz, by default) and what every program
//! shares.
//!
//! Linking this crate gives a program what every QEMU program here needs: the defmt logger
//! (frames over semihosting to QEMU's stdout, decoded by `defmt-print`), a panic handler that
//! logs and exits with code 101, and [`exit`], whose code becomes QEMU's exit status. A program
//! passes in `cargo xtask firmware` when it exits 0.
//!
//! [`assets`] holds the model the test pipeline generated (see `build.rs`) and [`icount`] the
//! SysTick clock and per-segment timer that turn QEMU's `-icount` virtual time into exactly
//! repeatable instruction counts. `cmsis_nn` (only when the firmware was built with
//! `CMSIS_NN_DIR`) declares Arm's CMSIS-NN C API for the programs that measure against it.
#![no_std]

pub mod board;
#[cfg(cmsis_nn)]
pub mod cmsis_nn;
pub mod icount;
pub mod memory;

/// The generated model assets (`build.rs`): the blob, the input samples, the bundle's levels.
pub mod assets {
    /// A value aligned to 16 bytes, for blobs placed in flash by `include_bytes!`.
    #[repr(C, align(16))]
    pub struct Aligned<T: ?Sized>(pub T);

    include!(concat!(env!("OUT_DIR"), "/assets.rs"));

    /// The generated model, parsed; an invalid blob is logged and ends the program (exit 1).
    pub fn model() -> edgeslim_runtime::Model<'static> {
        match edgeslim_runtime::Model::parse(&MODEL.0) {
            Ok(m) => m,
            Err(e) => {
                defmt::error!("invalid model blob: {}", e);
                crate::exit(1)
            }
        }
    }
}

use defmt_semihosting as _;
use embedded_hal::delay::DelayNs;

/// The core clock of the board in QEMU (SysTick also counts at this rate).
pub const SYSCLK_HZ: u32 = board::SYSCLK_HZ;

/// End the program: QEMU exits with `code` (semihosting `SYS_EXIT_EXTENDED`).
pub fn exit(code: i32) -> ! {
    // Keeps the board marker in every image (the linker drops unreferenced data): the runner
    // reads the QEMU machine from it.
    core::hint::black_box(board::QEMU_BOARD);
    semihosting::process::exit(code)
}

/// A busy-wait delay counted in core cycles. Under QEMU without `-icount` this follows host
/// speed, not wall time: fine for ordering, useless for timing.
pub struct Delay;

impl DelayNs for Delay {
    fn delay_ns(&mut self, ns: u32) {
        let cycles = u64::from(ns) * u64::from(SYSCLK_HZ) / 1_000_000_000;
        cortex_m::asm::delay(u32::try_from(cycles).unwrap_or(u32::MAX));
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    defmt::error!("panic: {}", defmt::Display2Format(info));
    exit(101)
}
