//! Exactly repeatable cost figures in QEMU: a clock read under `-icount`.
//!
//! QEMU models no pipeline. With `-icount shift=0,align=off,sleep=off` (which `qemu-run.sh`
//! passes by default) virtual time advances exactly 1 ns per executed instruction, and the
//! clock here counts in that virtual time, identically on every run:
//!
//! - Arm: SysTick counts the board's core clock ([`crate::board::SYSCLK_HZ`]): one tick is 40
//!   instructions on the 25 MHz MPS2 boards (Cortex-M3, M4, M7), 50 on the 20 MHz mps2-an505
//!   (Cortex-M33) and 31.25 on the 32 MHz mps3-an547 (Cortex-M55), where [`instructions`] is
//!   therefore exact to one tick. (QEMU 7.2 has no DWT cycle counter.) The 24-bit down-counter
//!   wraps every 0.52 to 0.84 s of virtual time; [`Clock`] extends it to 64 bits as long as it
//!   is read at least that often.
//! - RISC-V: the 64-bit `mcycle` CSR, which QEMU (7.2) derives from the instruction count under
//!   `-icount`: one tick is one instruction, exactly. QEMU's `virt` board defines no core
//!   clock; times are modelled at [`crate::board::SYSCLK_HZ`] with one instruction per cycle.
//!
//! On a real board (feature `hardware`) the clock is the DWT cycle counter (`CYCCNT`), which
//! counts core clock cycles at [`crate::board::SYSCLK_HZ`]: ticks are cycles, not
//! instructions, `profile`'s `calibrate` line shows the cycles per instruction of the loop, and
//! `edgeslim profile --from-log board.log --clock-mhz <MHz>` converts them. [`Clock`] extends
//! the 32-bit counter to 64 bits as long as it is read at least once per wrap (23.9 s at
//! 180 MHz).

/// The rate at which the clock counts in QEMU's virtual time under `-icount shift=0` (one
/// instruction per nanosecond): SysTick counts the core clock.
#[cfg(all(target_arch = "arm", feature = "qemu"))]
pub const TIMER_HZ: u32 = crate::board::SYSCLK_HZ;
/// The rate at which the clock counts in QEMU's virtual time under `-icount shift=0` (one
/// instruction per nanosecond): `mcycle` counts instructions, 10^9 per second.
#[cfg(target_arch = "riscv32")]
pub const TIMER_HZ: u32 = 1_000_000_000;

/// The rate at which the clock counts on a real board: core clock cycles.
#[cfg(feature = "hardware")]
pub const TIMER_HZ: u32 = crate::board::SYSCLK_HZ;

/// What the clock is, for logs.
#[cfg(all(target_arch = "arm", feature = "qemu"))]
pub const TIMER: &str = "SysTick at 25 MHz";
/// What the clock is, for logs.
#[cfg(feature = "hardware")]
pub const TIMER: &str = "DWT CYCCNT, core clock cycles";
/// What the clock is, for logs.
#[cfg(target_arch = "riscv32")]
pub const TIMER: &str = "mcycle, one count per instruction";

/// Nanoseconds per tick as a reduced fraction `(numerator, denominator)`: `10^9 / TIMER_HZ`.
const NS_PER_TICK: (u64, u64) = {
    let (mut a, mut b) = (1_000_000_000u64, TIMER_HZ as u64);
    while b != 0 {
        (a, b) = (b, a % b);
    }
    (1_000_000_000 / a, TIMER_HZ as u64 / a)
};

/// Instructions per tick under `-icount shift=0` (1 ns per instruction), rounded down: exact on
/// the boards whose timer rate divides 1 GHz (40 at 25 MHz, 50 at 20 MHz, 1 for `mcycle`); 31
/// for the 31.25 of the 32 MHz mps3-an547. Counts use [`instructions`].
pub const INSTRUCTIONS_PER_TICK: u64 = NS_PER_TICK.0 / NS_PER_TICK.1;

/// The instructions `ticks` ticks stand for under `-icount shift=0`: exact where a tick is a
/// whole number of instructions, rounded down to a whole instruction otherwise.
pub const fn instructions(ticks: u64) -> u64 {
    // Below 2^64 / 125 ticks (over 10^7 s of virtual time) the product cannot overflow.
    ticks * NS_PER_TICK.0 / NS_PER_TICK.1
}

/// Run `iterations` (at least 1) passes of a two-instruction countdown loop: `2 * iterations`
/// instructions, the calibration of the clock (`profile`'s `calibrate` line).
#[inline(always)]
pub fn spin(iterations: u32) {
    // `delay(n)` is a `subs; bne` loop of n + 1 passes.
    #[cfg(target_arch = "arm")]
    cortex_m::asm::delay(iterations.saturating_sub(1));
    #[cfg(target_arch = "riscv32")]
    // SAFETY: a loop over one register the asm owns (`inout`, discarded): it touches no memory,
    // no stack and no other register, so it cannot break any Rust invariant.
    unsafe {
        core::arch::asm!(
            "2:",
            "addi {n}, {n}, -1",
            "bnez {n}, 2b",
            n = inout(reg) iterations.max(1) => _,
            options(nomem, nostack),
        );
    }
}

#[cfg(all(target_arch = "arm", feature = "qemu"))]
const RELOAD: u32 = 0x00ff_ffff;

/// SysTick as a free-running 64-bit tick counter.
#[cfg(all(target_arch = "arm", feature = "qemu"))]
pub struct Clock {
    _syst: cortex_m::peripheral::SYST,
    last: u32,
    ticks: u64,
}

#[cfg(all(target_arch = "arm", feature = "qemu"))]
impl Clock {
    /// The core peripherals' SysTick as the clock, [`start`](Self::start)ed; `None` when the
    /// peripherals were taken already.
    pub fn take() -> Option<Self> {
        cortex_m::Peripherals::take().map(|p| Clock::start(p.SYST))
    }

    /// Start SysTick on the core clock, counting down from 2^24 - 1, no interrupt.
    pub fn start(mut syst: cortex_m::peripheral::SYST) -> Self {
        use cortex_m::peripheral::SYST;
        use cortex_m::peripheral::syst::SystClkSource;
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
        let cur = cortex_m::peripheral::SYST::get_current();
        // Down-counter: elapsed = last - cur modulo the 24-bit period.
        let d = self.last.wrapping_sub(cur) & RELOAD;
        self.last = cur;
        self.ticks += u64::from(d);
        self.ticks
    }
}

/// The DWT cycle counter (`CYCCNT`) as a free-running 64-bit count of core clock cycles.
#[cfg(feature = "hardware")]
pub struct Clock {
    _dwt: cortex_m::peripheral::DWT,
    _dcb: cortex_m::peripheral::DCB,
    last: u32,
    ticks: u64,
}

#[cfg(feature = "hardware")]
impl Clock {
    /// The core peripherals' cycle counter, [`start`](Self::start)ed; `None` when the
    /// peripherals were taken already.
    pub fn take() -> Option<Self> {
        cortex_m::Peripherals::take().map(|p| Clock::start(p.DWT, p.DCB))
    }

    /// Enable the trace unit (DEMCR.TRCENA, without which the DWT does not count) and start the
    /// cycle counter from 0. A core without one (DWT_CTRL.NOCYCCNT) ends the program (exit 1):
    /// every Cortex-M4 and M33 here has it.
    pub fn start(mut dwt: cortex_m::peripheral::DWT, mut dcb: cortex_m::peripheral::DCB) -> Self {
        use cortex_m::peripheral::DWT;
        dcb.enable_trace();
        if !DWT::has_cycle_counter() {
            defmt::error!("this core has no DWT cycle counter");
            crate::exit(1)
        }
        dwt.set_cycle_count(0);
        dwt.enable_cycle_counter();
        Clock {
            _dwt: dwt,
            _dcb: dcb,
            last: DWT::cycle_count(),
            ticks: 0,
        }
    }

    /// Core clock cycles since [`start`](Self::start).
    #[inline(always)]
    pub fn now(&mut self) -> u64 {
        let cur = cortex_m::peripheral::DWT::cycle_count();
        self.ticks += u64::from(cur.wrapping_sub(self.last));
        self.last = cur;
        self.ticks
    }
}

/// `mcycle` as a 64-bit tick counter from the moment the clock was taken.
#[cfg(target_arch = "riscv32")]
pub struct Clock {
    start: u64,
}

#[cfg(target_arch = "riscv32")]
impl Clock {
    /// The clock, counting from now; `None` when it was taken already (one owner, as on Arm).
    pub fn take() -> Option<Self> {
        use core::sync::atomic::{AtomicBool, Ordering};
        static TAKEN: AtomicBool = AtomicBool::new(false);
        if TAKEN.swap(true, Ordering::Relaxed) {
            return None;
        }
        Some(Clock {
            start: riscv::register::mcycle::read64(),
        })
    }

    /// Ticks (instructions under `-icount`) since [`take`](Self::take).
    #[inline(always)]
    pub fn now(&mut self) -> u64 {
        riscv::register::mcycle::read64().wrapping_sub(self.start)
    }
}

/// Ticks per second of a real board: its clock counts core cycles.
#[cfg(feature = "hardware")]
pub const MODELLED_TICK_HZ: u32 = crate::board::SYSCLK_HZ;

/// Ticks per second of the board QEMU models (one instruction per cycle at
/// [`crate::board::SYSCLK_HZ`]) for the clock under `-icount shift=0`, where virtual time runs
/// one instruction per nanosecond: `SYSCLK_HZ * TIMER_HZ / 10^9` (on Arm `SYSCLK_HZ^2 / 10^9`:
/// 625 kHz at 25 MHz, 400 kHz at 20 MHz, 1.024 MHz at 32 MHz; on RISC-V `SYSCLK_HZ`, a tick
/// being a cycle). Times from it are the latency table's (CPI 1 at the board clock).
#[cfg(feature = "qemu")]
pub const MODELLED_TICK_HZ: u32 = {
    let hz = crate::board::SYSCLK_HZ as u64;
    (hz * TIMER_HZ as u64 / 1_000_000_000) as u32
};

/// Inference times in the board's time: at CPI 1 ([`MODELLED_TICK_HZ`]) in QEMU, not QEMU's
/// virtual time; in core clock cycles on a real board.
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
    nop();
}

/// Marker for the instruction-count plugin: the count since [`edgeslim_icount_start`] is
/// reported when this function's first instruction executes.
// SAFETY (`no_mangle`): as for `edgeslim_icount_start`.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn edgeslim_icount_stop() {
    nop();
    nop();
}

/// One `nop` instruction.
#[inline(always)]
fn nop() {
    #[cfg(target_arch = "arm")]
    cortex_m::asm::nop();
    #[cfg(target_arch = "riscv32")]
    riscv::asm::nop();
}
