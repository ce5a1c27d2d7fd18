//! Board support for QEMU's boards (the Arm MPS2/MPS3 boards: Cortex-M3, M4F, M7, M33, M55;
//! the RISC-V `virt` board: RV32IMAC) and for real boards (NUCLEO-F446RE, nRF52840 DK,
//! Raspberry Pi Pico 2). The [`board`] a program is built for is one Cargo feature each
//! (`mps2-an386`, a Cortex-M4F at 25 MHz, by default); what differs between the two
//! architectures (reset and link script, the timer, the stack pointer, a busy loop) is chosen by
//! `target_arch` here, in [`icount`] and in [`memory`], what differs between QEMU and a real
//! board (the defmt transport, the clock, how a program ends) by the `qemu` and `hardware`
//! features the board features enable, and every program is the same source on every board.
//!
//! Linking this crate gives a program what every program here needs: the defmt logger (in
//! QEMU frames over semihosting to QEMU's stdout, decoded by `defmt-print`; on a real board
//! over RTT, which probe-rs reads and decodes), a panic handler that logs and exits with code
//! 101, [`exit`], whose code becomes QEMU's (or `probe-rs run`'s) exit status, the [`entry`]
//! attribute of the architecture's runtime (`cortex-m-rt` or `riscv-rt`) and [`singleton!`].
//! A program passes in `cargo xtask firmware` when it exits 0.
//!
//! [`assets`] holds the model the test pipeline generated (see `build.rs`) and [`icount`] the
//! clock: in QEMU SysTick on Arm, `mcycle` on RISC-V, which turn QEMU's `-icount` virtual time
//! into exactly repeatable instruction counts; on a real board the DWT cycle counter. `cmsis_nn` (only when the firmware was built with
//! `CMSIS_NN_DIR`) declares Arm's CMSIS-NN C API for the programs that measure against it.
#![no_std]

pub mod board;
#[cfg(cmsis_nn)]
pub mod cmsis_nn;
pub mod icount;
pub mod memory;
#[cfg(feature = "ethos-u55")]
pub mod npu;

#[cfg(all(feature = "qemu", feature = "hardware"))]
compile_error!(
    "a QEMU board and a real board are enabled together: build one board \
     (`--no-default-features --features <board>`)"
);

#[cfg(all(feature = "ethos-u55", not(feature = "mps3-an547")))]
compile_error!("the `ethos-u55` feature is for the `mps3-an547` board (Corstone-300) only");

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

// The defmt transport: semihosting in QEMU, RTT (read by probe-rs) on a real board.
#[cfg(feature = "hardware")]
use defmt_rtt as _;
#[cfg(feature = "qemu")]
use defmt_semihosting as _;
use embedded_hal::delay::DelayNs;

/// The program's entry point (`#[entry] fn main() -> !`), from the architecture's runtime.
#[cfg(target_arch = "arm")]
pub use cortex_m_rt::entry;
/// The program's entry point (`#[entry] fn main() -> !`), from the architecture's runtime.
#[cfg(target_arch = "riscv32")]
pub use riscv_rt::entry;

#[doc(hidden)]
pub use critical_section as __critical_section;

/// `singleton!(NAME: Type = expr)`: a `&'static mut Type` initialised with `expr` the first
/// time this line runs, `None` every later time. The value lives in a static (in `.bss` when
/// `expr` is zeroes), not on the stack. The same as `cortex_m::singleton!`, for every
/// architecture here.
#[macro_export]
macro_rules! singleton {
    ($name:ident: $ty:ty = $expr:expr) => {
        $crate::__critical_section::with(|_| {
            // A MaybeUninit and a flag, not an Option: an Option's niche could make the
            // initializer non-zero and move the whole static from `.bss` into `.data`.
            static mut $name: (::core::mem::MaybeUninit<$ty>, bool) =
                (::core::mem::MaybeUninit::uninit(), false);
            let cell = &raw mut $name;
            // SAFETY: the static is reached only through this block, inside a critical section
            // (nothing else runs on this single core meanwhile): reading the flag races with
            // nothing.
            let taken = unsafe { (*cell).1 };
            if taken {
                None
            } else {
                let value = $expr;
                // SAFETY: as above, and the flag is set before the one `&mut` to the value is
                // handed out, so no second reference to it can ever exist.
                unsafe {
                    (*cell).1 = true;
                    Some((*cell).0.write(value))
                }
            }
        })
    };
}

/// The core clock of the board (on Arm SysTick counts it in QEMU, the DWT cycle counter on a
/// real board; see [`icount`]).
pub const SYSCLK_HZ: u32 = board::SYSCLK_HZ;

/// End the program: QEMU exits with `code` (semihosting `SYS_EXIT_EXTENDED`). On a real board
/// the same call ends `probe-rs run` with the code (probe-rs serves semihosting exits) when a
/// debugger is attached; without one a semihosting call would fault, so the core sleeps
/// instead, the log of the run complete.
pub fn exit(code: i32) -> ! {
    // Keeps the board marker in every image (the linker drops unreferenced data): the runner
    // reads the QEMU machine or the probe-rs chip from it.
    core::hint::black_box(board::MARKER);
    #[cfg(feature = "hardware")]
    if !cortex_m::peripheral::DCB::is_debugger_attached() {
        defmt::info!("exit {=i32} (no debugger attached: halting)", code);
        loop {
            cortex_m::asm::wfi();
        }
    }
    semihosting::process::exit(code)
}

/// A busy-wait delay counted in core cycles. Under QEMU without `-icount` this follows host
/// speed, not wall time: fine for ordering, useless for timing.
pub struct Delay;

impl DelayNs for Delay {
    fn delay_ns(&mut self, ns: u32) {
        let cycles = u64::from(ns) * u64::from(SYSCLK_HZ) / 1_000_000_000;
        let cycles = u32::try_from(cycles).unwrap_or(u32::MAX);
        #[cfg(target_arch = "arm")]
        cortex_m::asm::delay(cycles);
        #[cfg(target_arch = "riscv32")]
        riscv::asm::delay(cycles);
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    defmt::error!("panic: {}", defmt::Display2Format(info));
    exit(101)
}
