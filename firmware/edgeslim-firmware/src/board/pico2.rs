//! Raspberry Pi Pico 2 (RP2350A, its two Cortex-M33 cores; this firmware runs on core 0 only):
//! 4 MiB QSPI flash, 520 KiB SRAM, through `embassy-rp` (blocking drivers only, no executor).
//! `embassy_rp::init` runs the system PLL from the 12 MHz crystal at 150 MHz; the boot ROM
//! finds the image through the IMAGE_DEF block embassy-rp places in `.start_block`
//! (`memory/pico2.x` puts it after the vector table). The Pico 2 has no user button (BOOTSEL
//! sits on the flash's chip select): wire a push button from GP15 (pin 20) to GND (pin 18 or
//! 23); the pin's pull-up holds it high. The commands arrive on UART0's RX, GP1 (pin 2),
//! 115200 8N1, e.g. from the Raspberry Pi Debug Probe's UART (its TX to GP1, GND to GND).
//!
//! The critical section is cortex-m's single-core one: core 1 is never started.

use edgeslim_app::Button;
use embassy_rp::gpio::{Input, Pull};
use embassy_rp::uart::{self, Blocking, UartRx};

use super::Io;

/// The button pin.
pub type ButtonPin = Input<'static>;
/// The UART receiver.
pub type SerialRx = UartRx<'static, Blocking>;
/// The button, for logs.
pub const BUTTON: &str = "a push button from GP15 to GND (active low)";
/// The serial command line, for logs.
pub const SERIAL: &str = "UART0 RX on GP1, 115200 8N1";

/// Clocks, button, UART.
pub fn init() -> Io {
    let p = embassy_rp::init(embassy_rp::config::Config::default());
    let sysclk = embassy_rp::clocks::clk_sys_freq();
    super::check_sysclk(sysclk);
    let button = Button::active_low(Input::new(p.PIN_15, Pull::Up));
    let mut config = uart::Config::default();
    config.baudrate = 115_200;
    let serial = UartRx::new_blocking(p.UART0, p.PIN_1, config);
    Io {
        button: Some(button),
        serial,
    }
}
