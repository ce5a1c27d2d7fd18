//! Nordic nRF52840 DK (PCA10056; nRF52840, Cortex-M4F at 64 MHz): 1 MiB flash, 256 KiB RAM,
//! through `nrf52840-hal`. The high-frequency clock is switched to the external 32 MHz crystal
//! (the UART's baud rate from it, not from the RC oscillator). Button 1 pulls P0.11 low when
//! pressed (the pin's pull-up enabled); the commands arrive on UARTE0's RXD, P0.08, which the
//! J-Link OB's virtual COM port drives (TXD P0.06 is configured, unused: logs go over RTT).
//!
//! nrf-hal's UARTE receiver reads one byte per EasyDMA transfer and implements `embedded-io`
//! (and embedded-hal 0.2), not embedded-hal-nb 1.0's `serial::Read` that the application
//! takes: [`SerialRx`] adapts it without blocking (a byte is taken only when the transfer has
//! ended).

use edgeslim_app::Button;
use embedded_hal_nb::nb;
use embedded_hal_nb::serial::{self, ErrorKind};
use embedded_io::{Read as _, ReadReady as _};
use nrf52840_hal::clocks::Clocks;
use nrf52840_hal::gpio::{Input, Level, Pin, PullUp, p0};
use nrf52840_hal::pac;
use nrf52840_hal::uarte::{self, Baudrate, Parity, Pins, Uarte, UarteRx, UarteTx};

use super::Io;
use crate::exit;

/// The button pin.
pub type ButtonPin = Pin<Input<PullUp>>;
/// The button, for logs.
pub const BUTTON: &str = "Button 1 (P0.11, active low)";
/// The serial command line, for logs.
pub const SERIAL: &str = "UARTE0 RXD on P0.08 (J-Link virtual COM port), 115200 8N1";

/// UARTE0's receiver as an embedded-hal-nb 1.0 serial reader. The transmitter is kept so that
/// its drop (which stops the peripheral's transmit task) never runs.
pub struct SerialRx {
    rx: UarteRx<pac::UARTE0>,
    _tx: UarteTx<pac::UARTE0>,
}

/// A UARTE receive error (nrf-hal's), as an embedded-hal-nb error.
#[derive(Debug)]
pub struct SerialError(pub uarte::Error);

impl serial::Error for SerialError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Other
    }
}

impl serial::ErrorType for SerialRx {
    type Error = SerialError;
}

impl serial::Read<u8> for SerialRx {
    fn read(&mut self) -> nb::Result<u8, SerialError> {
        // `read_ready` starts a one-byte transfer when none is running and says whether the
        // running one has ended; only then does `read` take the byte, without waiting.
        match self.rx.read_ready() {
            Ok(false) => Err(nb::Error::WouldBlock),
            Ok(true) => {
                let mut b = [0u8; 1];
                match self.rx.read(&mut b) {
                    Ok(1) => Ok(b[0]),
                    Ok(_) => Err(nb::Error::WouldBlock),
                    Err(e) => Err(nb::Error::Other(SerialError(e))),
                }
            }
            Err(e) => Err(nb::Error::Other(SerialError(e))),
        }
    }
}

/// Clocks, button, UART.
pub fn init() -> Io {
    let Some(p) = pac::Peripherals::take() else {
        defmt::error!("the nRF52840 peripherals are taken already");
        exit(1)
    };
    // The returned handle only records the configuration; the crystal stays on.
    let _clocks = Clocks::new(p.CLOCK).enable_ext_hfosc();
    let port0 = p0::Parts::new(p.P0);
    let button = Button::active_low(port0.p0_11.into_pullup_input().degrade());
    let pins = Pins {
        rxd: port0.p0_08.into_floating_input().degrade(),
        txd: port0.p0_06.into_push_pull_output(Level::High).degrade(),
        cts: None,
        rts: None,
    };
    let uarte = Uarte::new(p.UARTE0, pins, Parity::EXCLUDED, Baudrate::BAUD115200);
    let (Some(tx_buf), Some(rx_buf)) = (
        crate::singleton!(UARTE_TX: [u8; 1] = [0; 1]),
        crate::singleton!(UARTE_RX: [u8; 1] = [0; 1]),
    ) else {
        defmt::error!("the UARTE buffers are taken already");
        exit(1)
    };
    let (tx, rx) = match uarte.split(tx_buf, rx_buf) {
        Ok(halves) => halves,
        Err(e) => {
            defmt::error!("UARTE0: {}", defmt::Debug2Format(&e));
            exit(1)
        }
    };
    Io {
        button: Some(button),
        serial: SerialRx { rx, _tx: tx },
    }
}
