//! Exactly repeatable cost figures in QEMU: SysTick under `-icount`.
//!
//! QEMU models no pipeline and (in 7.2) no DWT cycle counter. With
//! `-icount shift=0,align=off,sleep=off` (which `qemu-run.sh` passes by default) virtual time
//! advances exactly 1 ns per executed instruction, and SysTick counts the board's core clock
//! ([`crate::board::SYSCLK_HZ`]) in that virtual time, identically on every run: one tick is
//! 40 instructions on the 25 MHz MPS2 boards (Cortex-M3, M4, M7), 50 on the 20 MHz mps2-an505
//! (Cortex-M33) and 31.25 on the 32 MHz mps3-an547 (Cortex-M55), where [`instructions`] is
//! therefore exact to one tick. The 24-bit down-counter wraps every 0.52 to 0.84 s of virtual
//! time; [`Clock`] extends it to 64 bits as long as it is read at least that often.

use cortex_m::peripheral::SYST;
use cortex_m::peripheral::syst::SystClkSource;

/// Nanoseconds per tick as a reduced fraction `(numerator, denominator)`: `10^9 / SYSCLK_HZ`.
const NS_PER_TICK: (u64, u64) = {
    let (mut a, mut b) = (1_000_000_000u64, crate::board::SYSCLK_HZ as u64);
    while b != 0 {
        (a, b) = (b, a % b);
    }
    (1_000_000_000 / a, crate::board::SYSCLK_HZ as u64 / a)
};

/// Instructions per SysTick tick under `-icount shift=0` (1 ns per instruction), rounded down:
/// exact on the boards whose clock divides 1 GHz (40 at 25 MHz, 50 at 20 MHz); 31 for the
/// 31.25 of the 32 MHz mps3-an547. Counts use [`instructions`].
pub const INSTRUCTIONS_PER_TICK: u64 = NS_PER_TICK.0 / NS_PER_TICK.1;

/// The instructions `ticks` SysTick ticks stand for under `-icount shift=0`: exact where a
/// tick is a whole number of instructions, rounded down to a whole instruction otherwise.
pub const fn instructions(ticks: u64) -> u64 {
    // Below 2^64 / 125 ticks (over 10^7 s of virtual time) the product cannot overflow.
    ticks * NS_PER_TICK.0 / NS_PER_TICK.1
}

const RELOAD: u32 = 0x00ff_ffff;

/// SysTick as a free-running 64-bit tick counter.
pub struct Clock {
    _syst: SYST,
    last: u32,
    ticks: u64,
}

impl Clock {
    /// Start SysTick on the core clock, counting down from 2^24 - 1, no interrupt.
    pub fn start(mut syst: SYST) -> Self {
        syst.disable_counter();
        syst.disable_interrupt();
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(RELOAD);
        syst.clear_current();
        syst.enable_counter();
        Clock {
            _syst: syst,
            last: SYST::get_current(),
            ticks: 0,
        }
    }

    /// Ticks since [`start`](Self::start).
    #[inline(always)]
    pub fn now(&mut self) -> u64 {
        let cur = SYST::get_current();
        // Down-counter: elapsed = last - cur modulo the 24-bit period.
        let d = self.last.wrapping_sub(cur) & RELOAD;
        self.last = cur;
        self.ticks += u64::from(d);
        self.ticks
    }
}

/// SysTick ticks per second of the board QEMU models (one instruction per cycle at
/// [`crate::board::SYSCLK_HZ`]) under `-icount shift=0`, where virtual time runs one
/// instruction per nanosecond: `SYSCLK_HZ^2 / 10^9` (625 kHz at 25 MHz, 400 kHz at 20 MHz,
/// 1.024 MHz at 32 MHz). Times from it are the latency table's (CPI 1 at the board clock).
pub const MODELLED_TICK_HZ: u32 = {
    let hz = crate::board::SYSCLK_HZ as u64;
    (hz * hz / 1_000_000_000) as u32
};

/// Inference times in the board's time at CPI 1 ([`MODELLED_TICK_HZ`]), not QEMU's
/// virtual time.
impl edgeslim_app::Ticks for Clock {
    fn now(&mut self) -> u64 {
        Clock::now(self)
    }
    fn hz(&self) -> u32 {
        MODELLED_TICK_HZ
    }
}

/// Marker for the instruction-count plugin (`firmware/icount-plugin`): counting starts when
/// this function's first instruction executes. Not inlined and with a body unlike
/// [`edgeslim_icount_stop`]'s, so the two keep distinct addresses (found by `nm`).
// SAFETY (`no_mangle`): the `edgeslim_icount_` names are defined nowhere else in a program, so
// the unmangled symbols cannot clash with another definition.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn edgeslim_icount_start() {
    cortex_m::asm::nop();
}

/// Marker for the instruction-count plugin: the count since [`edgeslim_icount_start`] is
/// reported when this function's first instruction executes.
// SAFETY (`no_mangle`): as for `edgeslim_icount_start`.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn edgeslim_icount_stop() {
    cortex_m::asm::nop();
    cortex_m::asm::nop();
}
