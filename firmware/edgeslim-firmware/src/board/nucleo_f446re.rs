//! ST NUCLEO-F446RE (STM32F446RE, Cortex-M4F): 512 KiB flash, 128 KiB SRAM, through
//! `stm32f4xx-hal`. The core runs at 180 MHz from the internal 16 MHz HSI through the PLL (the
//! HAL turns on the regulator's over-drive above 168 MHz), so no solder bridge for the ST-LINK's
//! 8 MHz clock output matters. The user button B1 pulls PC13 low when pressed (the board has
//! the pull-up; the pin's own is enabled too); the commands arrive on USART2's RX pin PA3,
//! which the ST-LINK's virtual COM port drives (PA2 is its TX, unused: logs go over RTT).

use edgeslim_app::Button;
use stm32f4xx_hal::gpio::{Input, PC13};
use stm32f4xx_hal::pac;
use stm32f4xx_hal::prelude::*;
use stm32f4xx_hal::rcc::Config;
use stm32f4xx_hal::serial::Rx;

use super::{Io, SYSCLK_HZ};
use crate::exit;

/// The button pin.
pub type ButtonPin = PC13<Input>;
/// The UART receiver.
pub type SerialRx = Rx<pac::USART2, u8>;
/// The button, for logs.
pub const BUTTON: &str = "B1 USER (PC13, active low)";
/// The serial command line, for logs.
pub const SERIAL: &str = "USART2 RX on PA3 (ST-LINK virtual COM port), 115200 8N1";

/// Clocks, button, UART.
pub fn init() -> Io {
    let Some(dp) = pac::Peripherals::take() else {
        defmt::error!("the STM32 peripherals are taken already");
        exit(1)
    };
    let mut rcc = dp.RCC.freeze(Config::hsi().sysclk(SYSCLK_HZ.Hz()));
    let sysclk = rcc.clocks.sysclk().raw();
    super::check_sysclk(sysclk);
    let gpioa = dp.GPIOA.split(&mut rcc);
    let gpioc = dp.GPIOC.split(&mut rcc);
    let button = Button::active_low(gpioc.pc13.into_pull_up_input());
    let serial = match dp.USART2.rx::<u8>(gpioa.pa3, 115_200.bps(), &mut rcc) {
        Ok(rx) => rx,
        Err(_) => {
            defmt::error!("USART2 refused 115200 baud at this clock");
            exit(1)
        }
    };
    Io {
        button: Some(button),
        serial,
    }
}
