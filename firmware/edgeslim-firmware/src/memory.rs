//! What a program occupies: flash (vector table, code, read-only data with the model blob, the
//! initial values of `.data`) and RAM (`.data`, `.bss` with the arena, `.uninit`, and the stack
//! up to its deepest point), from the linker's section symbols (cortex-m-rt's `link.x`) and by
//! stack painting.
//!
//! [`paint_stack`] fills the free RAM between the end of the statics and the current stack
//! pointer with a pattern; [`stack_peak`] later finds the lowest word the stack overwrote. A
//! program that calls `paint_stack` first thing in `main` thus measures the stack high-water mark
//! of everything after it (the painting itself and what ran before `main` excluded, a few dozen
//! bytes). A word that happens to be written with the pattern's own value is missed, so the peak
//! is a lower bound by at most that word's distance; with a 32-bit pattern this is rare.

// Addresses of the linker's symbols only: never read or written through these declarations.
unsafe extern "C" {
    safe static __stext: u8;
    safe static __etext: u8;
    safe static __srodata: u8;
    safe static __erodata: u8;
    safe static __sdata: u8;
    safe static __edata: u8;
    safe static __sbss: u8;
    safe static __ebss: u8;
    safe static __euninit: u8;
    safe static _stack_start: u8;
}

/// The value painted into free stack words.
const PATTERN: u32 = 0xA5C3_3C5A;

/// Bytes below the current stack pointer left unpainted (the painting loop's own frame).
const MARGIN: usize = 64;

fn addr(s: &'static u8) -> usize {
    core::ptr::from_ref(s) as usize
}

/// The current stack pointer (the main stack on Arm).
#[inline(always)]
fn stack_pointer() -> usize {
    #[cfg(target_arch = "arm")]
    let sp = cortex_m::register::msp::read() as usize;
    #[cfg(target_arch = "riscv32")]
    let sp = {
        let sp: usize;
        // SAFETY: copies the stack pointer into a register the asm owns; nothing is read or
        // written in memory and no other register changes.
        unsafe {
            core::arch::asm!("mv {}, sp", out(reg) sp, options(nomem, nostack, preserves_flags))
        };
        sp
    };
    sp
}

/// The program's memory by section, in bytes.
#[derive(Debug, Clone, Copy, defmt::Format)]
pub struct Sections {
    /// The vector table and the code.
    pub text: usize,
    /// Read-only data: constants, the model blob, the input samples.
    pub rodata: usize,
    /// Initialised statics (in RAM, their initial values in flash too).
    pub data: usize,
    /// Zeroed statics, the arena among them.
    pub bss: usize,
    /// Uninitialised statics.
    pub uninit: usize,
    /// The RAM the stack may grow into: from the end of the statics to the top of RAM.
    pub stack_room: usize,
}

impl Sections {
    /// Read from the linker's symbols.
    pub fn get() -> Self {
        Sections {
            text: addr(&__etext) - crate::board::FLASH_ORIGIN,
            rodata: addr(&__erodata) - addr(&__srodata),
            data: addr(&__edata) - addr(&__sdata),
            bss: addr(&__ebss) - addr(&__sbss),
            uninit: addr(&__euninit) - addr(&__ebss),
            stack_room: addr(&_stack_start) - addr(&__euninit),
        }
    }

    /// Flash the image takes: code, read-only data and the initial values of `.data`.
    pub fn flash(&self) -> usize {
        self.text + self.rodata + self.data
    }

    /// RAM the statics take.
    pub fn ram_static(&self) -> usize {
        self.data + self.bss + self.uninit
    }
}

/// Paint the free stack (see the module documentation). Call it first in `main`.
#[inline(never)]
pub fn paint_stack() {
    let sp = stack_pointer();
    let start = addr(&__euninit);
    let end = sp.saturating_sub(MARGIN);
    let mut p = start;
    while p + 4 <= end {
        // SAFETY: `[__euninit, sp - MARGIN)` is RAM that no static occupies (the statics end at
        // `__euninit`, there is no heap) and that the stack, which grows down from
        // `_stack_start`, has not reached: the current frame and its callees live above
        // `sp - MARGIN`. The address is 4-aligned (`__euninit` is, by cortex-m-rt's link.x
        // assertion on `__sheap` and riscv-rt's `ALIGN(4)` before it, and p moves by 4), so a volatile word write there is sound and
        // changes nothing any Rust value owns.
        unsafe { core::ptr::write_volatile(p as *mut u32, PATTERN) };
        p += 4;
    }
}

/// The deepest the stack has reached since [`paint_stack`], in bytes below its top.
pub fn stack_peak() -> usize {
    let start = addr(&__euninit);
    let top = addr(&_stack_start);
    let sp = stack_pointer();
    let mut p = start;
    while p + 4 <= sp {
        // SAFETY: `p` is 4-aligned RAM between the end of the statics and the current stack
        // pointer (see `paint_stack`); reading a word there aliases no live Rust value mutably.
        let w = unsafe { core::ptr::read_volatile(p as *const u32) };
        if w != PATTERN {
            break;
        }
        p += 4;
    }
    top - p
}
