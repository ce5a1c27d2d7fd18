//! The firmware toolchain end to end: boot, log through defmt, use heapless and embedded-hal,
//! compute in f32, exit 0 through semihosting.
#![no_std]
#![no_main]

use edgeslim_firmware::entry;
use edgeslim_firmware::{Delay, board, exit};
use embedded_hal::delay::DelayNs;
use heapless::Vec;

#[entry]
fn main() -> ! {
    defmt::info!(
        "hello from edgeslim-firmware ({=str}, {=str})",
        board::MACHINE,
        board::CORE
    );

    // Fixed capacity: a full Vec refuses the push instead of allocating or panicking.
    let mut widths: Vec<u8, 4> = Vec::new();
    for w in [25, 50, 75, 100] {
        if widths.push(w).is_err() {
            defmt::error!("Vec<_, 4> full after {} pushes", widths.len());
            exit(1);
        }
    }
    let refused = widths.push(125).is_err();
    defmt::info!(
        "widths {} (push onto full Vec refused: {})",
        widths.as_slice(),
        refused
    );

    Delay.delay_us(10);

    // eabihf targets: f32 arithmetic runs on the FPU, which cortex-m-rt enables before main;
    // the Cortex-M3 (eabi) computes it in software.
    let x = core::hint::black_box(1.5f32) * 2.25;
    defmt::info!("f32: 1.5 * 2.25 = {}", x);

    if !refused || x != 3.375 {
        defmt::error!("unexpected result");
        exit(1);
    }
    defmt::info!("done");
    exit(0)
}
