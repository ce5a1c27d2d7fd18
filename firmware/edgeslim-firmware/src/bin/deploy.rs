//! A deployed bundle: the compiled model in flash, the bundle's budget levels, a static arena
//! of exactly the model's arena size.
//!
//! At load the bundle is checked against the model (`MODEL_BODY_CRC`/`MODEL_BYTES` against
//! `Model::hash_parts()`, and the hash string): levels searched for another model are refused
//! with exit code 2. Then every level runs every input sample and logs each int8 output and
//! the time of each inference:
//!
//! ```text
//! level <l> budget_us <b> widths <[u8]> mask <m>
//! out <level> <sample> <output name> argmax <a> shape <h> <w> <c> data <[i8], NHWC>
//! infer level <l> budget_us <b> time_us <t> ticks <n> within_budget <yes|no>
//! checksum <FNV-1a 32 of every logged int8 value, in log order>
//! memory board <machine> flash <bytes> text <b> rodata <b> ram <statics + stack peak> data <b> bss <b> arena <b> stack_peak <b>
//! ```
//!
//! `flash` is what the image takes (code, read-only data with the model blob and the samples,
//! `.data`'s initial values); `ram` the statics (the arena among `.bss`) plus the stack's
//! high-water mark, measured by painting the free stack at the start of `main`
//! (`edgeslim_firmware::memory`).
//!
//! The level is chosen by the application logic of `edgeslim-app` (`app/`): a button press or
//! a serial command (`level <n>`, `next`, ...) changes it between inferences. The pass above
//! steps through every level in order on its own schedule (`App::apply(Command::Next)`), the
//! inputs polled before each level; QEMU's boards wire neither input (`board::init` gives none)
//! and the program exits after it. A real board (`board::init`: its HAL's button pin and UART)
//! then stays in the interactive loop: every [`PERIOD_MS`] it runs the next sample at the level
//! the button or the serial line chose, polling both every [`POLL_MS`] in between (the polling
//! interval debounces the button):
//!
//! ```text
//! interactive: button <which>, serial <which>: level <n>, next, prev, status
//! input: level <l>                         (a press or a command changed it)
//! infer level <l> budget_us <b> time_us <t> ticks <n> within_budget <yes|no>
//! ```
//!
//! Times are the modelled board's in QEMU (one instruction per cycle at its clock, as in the
//! latency table, from SysTick under `-icount`); on a real board core clock cycles from the DWT
//! cycle counter at its clock.
//!
//! `cargo xtask firmware` runs the same samples and levels through the host CLI
//! (`edgeslim run --raw`) and requires every value to be equal.
//!
//! With the `ethos-u55` feature (board `mps3-an547`, Corstone-300) each inference runs through
//! the Ethos-U55 driver (`edgeslim-ethos-u`): every segment is offered to the NPU, which runs
//! it when the bundle has its Vela command stream, and the CPU runs what it declines. The
//! driver's findings and counts are logged:
//!
//! ```text
//! npu: <Ethos-U at <base>: ID .. CONFIG .., <n> MACs per cycle | none at <base> ...>
//! npu streams <k> for <config>, scratch <b> fast scratch <b>
//! npu level <l> streams <[stream indices]> flash <bytes>
//! npu offered <n> accepted <n> declined <n> no_npu <n> no_stream <n> mismatched <n> faults <n> timeouts <n>
//! ```
#![no_std]
#![no_main]

use edgeslim_app::{App, Command, Event, Inference, timed};
use edgeslim_firmware::assets::{self, ARENA_BYTES, levels};
use edgeslim_firmware::entry;
use edgeslim_firmware::icount::{Clock, MODELLED_TICK_HZ};
use edgeslim_firmware::{board, exit, memory};
use edgeslim_runtime::{Input, Interpreter, TaskMask, WidthConfig};

/// FNV-1a, 32 bits.
struct Fnv(u32);

impl Fnv {
    fn add(&mut self, data: &[i8]) {
        for &b in data {
            self.0 ^= u32::from(b as u8);
            self.0 = self.0.wrapping_mul(0x0100_0193);
        }
    }
}

/// On a real board: one inference per period in the interactive loop, in milliseconds.
const PERIOD_MS: u64 = 1000;
/// On a real board: how often the button and the serial line are polled, in milliseconds.
const POLL_MS: u64 = 10;

/// What `App::poll` reports, logged.
fn log_event<BE, SE>(e: Event<BE, SE>)
where
    BE: embedded_hal::digital::Error,
    SE: embedded_hal_nb::serial::Error,
{
    match e {
        Event::Level { level, .. } | Event::Status(level) => {
            defmt::info!("input: level {=usize}", level)
        }
        Event::Rejected(e) => defmt::warn!("input refused: {}", defmt::Display2Format(&e)),
        Event::ButtonError(e) => defmt::warn!("button: {}", defmt::Debug2Format(&e.kind())),
        Event::SerialError(e) => defmt::warn!("serial: {}", defmt::Debug2Format(&e.kind())),
    }
}

#[entry]
fn main() -> ! {
    memory::paint_stack();
    let io = board::init();
    if !assets::AVAILABLE || !assets::HAS_LEVELS {
        defmt::error!(
            "no model or no bundle was generated ({=str}); run `cargo xtask firmware`",
            assets::MISSING
        );
        exit(1);
    }
    let model = assets::model();
    let (crc, bytes) = model.hash_parts();
    defmt::info!(
        "model {=str}: esm-crc32:{=u32:08x}:{=usize}, arena {=usize} bytes",
        model.name(),
        crc,
        bytes,
        model.arena_bytes()
    );
    // The bundle check: integers first (what a bootloader would compare), then the string.
    if (crc, bytes) != (levels::MODEL_BODY_CRC, levels::MODEL_BYTES)
        || !model.matches_hash(levels::MODEL_HASH)
    {
        defmt::error!(
            "bundle refused: its levels are for model {=str} (crc {=u32:08x}, {=usize} bytes), this model is esm-crc32:{=u32:08x}:{=usize}",
            levels::MODEL_HASH,
            levels::MODEL_BODY_CRC,
            levels::MODEL_BYTES,
            crc,
            bytes
        );
        exit(2);
    }
    defmt::info!(
        "bundle accepted: {=usize} levels for {=str}",
        levels::LEVELS.len(),
        levels::MODEL_HASH
    );

    // Exactly the plan's size: the interpreter refuses anything smaller.
    let Some(arena) = edgeslim_firmware::singleton!(ARENA: [u8; ARENA_BYTES] = [0; ARENA_BYTES])
    else {
        defmt::error!("arena already taken");
        exit(1)
    };
    let mut interp = match Interpreter::new(&model, arena) {
        Ok(i) => i,
        Err(e) => {
            defmt::error!("interpreter: {}", e);
            exit(1)
        }
    };

    let mut acc = npu::accelerator();

    let Some(mut clock) = Clock::take() else {
        defmt::error!("the clock is taken already");
        exit(1)
    };
    let Some(mut app) = App::new(io.button, io.serial, levels::LEVELS.len(), 0) else {
        defmt::error!("the bundle has no levels");
        exit(1)
    };

    let mut sum = Fnv(0x811c_9dc5);
    for step in 0..levels::LEVELS.len() {
        // Inputs first (none on QEMU), then the schedule's level.
        app.poll(log_event);
        let l = app.level();
        let Some((budget_us, widths, mask)) = levels::LEVELS.get(l) else {
            defmt::error!("level {=usize} is not in the bundle", l);
            exit(1)
        };
        defmt::info!(
            "level {=usize} budget_us {=u32} widths {=[u8]} mask {=u32}",
            l,
            *budget_us,
            &widths[..],
            *mask
        );
        npu::level(l);
        let widths = match WidthConfig::from_indices(widths) {
            Ok(w) => w,
            Err(e) => {
                defmt::error!("level {=usize}: {}", l, e);
                exit(1)
            }
        };
        for (s, x) in assets::SAMPLES.iter().enumerate() {
            let (run, ticks) = timed(&mut clock, || {
                interp.run_accelerated(Input::F32(x), &widths, TaskMask(*mask), &mut acc)
            });
            let outputs = match run {
                Ok(o) => o,
                Err(e) => {
                    defmt::error!("level {=usize} sample {=usize}: {}", l, s, e);
                    exit(1)
                }
            };
            for o in outputs.iter() {
                sum.add(o.data);
                defmt::info!(
                    "out {=usize} {=usize} {=str} argmax {=usize} shape {=usize} {=usize} {=usize} data {}",
                    l,
                    s,
                    o.name,
                    o.argmax(),
                    o.shape.h,
                    o.shape.w,
                    o.shape.c,
                    o.data
                );
            }
            let inference = Inference {
                level: l,
                budget_us: *budget_us,
                ticks,
                hz: MODELLED_TICK_HZ,
            };
            defmt::info!("{}", defmt::Display2Format(&inference));
        }
        if step + 1 < levels::LEVELS.len() && app.apply(Command::Next).is_err() {
            defmt::error!("no next level after {=usize}", l);
            exit(1)
        }
    }
    npu::report(&acc);
    defmt::info!("checksum {=u32:08x}", sum.0);
    let m = memory::Sections::get();
    defmt::info!(
        "memory board {=str} flash {=usize} text {=usize} rodata {=usize} ram {=usize} data {=usize} bss {=usize} arena {=usize} stack_peak {=usize}",
        board::MACHINE,
        m.flash(),
        m.text,
        m.rodata,
        m.ram_static() + memory::stack_peak(),
        m.data,
        m.bss,
        ARENA_BYTES,
        memory::stack_peak()
    );
    if !board::HARDWARE {
        exit(0)
    }
    interactive(&mut app, &mut interp, &mut acc, &mut clock)
}

/// A real board after the pass: one inference per [`PERIOD_MS`] at the level the inputs chose,
/// over the samples in turn, the inputs polled every [`POLL_MS`]. Never returns.
fn interactive<B, S>(
    app: &mut App<B, S>,
    interp: &mut Interpreter<'_, '_>,
    acc: &mut npu::Accel,
    clock: &mut Clock,
) -> !
where
    B: embedded_hal::digital::InputPin,
    S: embedded_hal_nb::serial::Read<u8>,
{
    defmt::info!(
        "interactive: button {=str}, serial {=str}: level <n>, next, prev, status",
        board::BUTTON,
        board::SERIAL
    );
    let ticks_per_ms = u64::from(MODELLED_TICK_HZ) / 1000;
    let mut sample = 0usize;
    loop {
        let l = app.level();
        let Some((budget_us, widths, mask)) = levels::LEVELS.get(l) else {
            defmt::error!("level {=usize} is not in the bundle", l);
            exit(1)
        };
        let Ok(widths) = WidthConfig::from_indices(widths) else {
            defmt::error!("level {=usize}: bad widths", l);
            exit(1)
        };
        let Some(x) = assets::SAMPLES.get(sample) else {
            exit(1)
        };
        let start = clock.now();
        let (run, ticks) = timed(clock, || {
            interp.run_accelerated(Input::F32(x), &widths, TaskMask(*mask), acc)
        });
        match run {
            Ok(outputs) => {
                for o in outputs.iter() {
                    defmt::info!(
                        "out {=usize} {=usize} {=str} argmax {=usize}",
                        l,
                        sample,
                        o.name,
                        o.argmax()
                    );
                }
            }
            Err(e) => {
                defmt::error!("level {=usize} sample {=usize}: {}", l, sample, e);
                exit(1)
            }
        }
        let inference = Inference {
            level: l,
            budget_us: *budget_us,
            ticks,
            hz: MODELLED_TICK_HZ,
        };
        defmt::info!("{}", defmt::Display2Format(&inference));
        sample = (sample + 1) % assets::SAMPLES.len().max(1);
        // Poll until the period is over; a level chosen meanwhile runs at the next period.
        let mut next_poll = clock.now();
        while clock.now().wrapping_sub(start) < PERIOD_MS * ticks_per_ms {
            if clock.now() >= next_poll {
                app.poll(log_event);
                next_poll += POLL_MS * ticks_per_ms;
            }
        }
    }
}

/// The Ethos-U55 driver over the bundle's command streams (feature `ethos-u55`).
#[cfg(feature = "ethos-u55")]
mod npu {
    use edgeslim_ethos_u::{Aligned, Config, EthosU, Mmio};
    use edgeslim_firmware::assets::{ARENA_BYTES, HAS_NPU_STREAMS, levels};
    use edgeslim_firmware::{board, exit};

    /// What `deploy` hands segments to.
    pub type Accel = EthosU<'static, Mmio>;

    /// The driver, its scratch buffers in two statics of the bundle's sizes, its stream table
    /// checked against the arena (a table that does not fit ends the program, exit 1).
    pub fn accelerator() -> Accel {
        let Some(regs) = edgeslim_firmware::npu::registers() else {
            defmt::error!("npu: the registers are taken already");
            exit(1)
        };
        const S: usize = levels::NPU_SCRATCH_BYTES;
        const F: usize = levels::NPU_FAST_SCRATCH_BYTES;
        let Some(scratch) =
            edgeslim_firmware::singleton!(NPU_SCRATCH: Aligned<[u8; S]> = Aligned([0; S]))
        else {
            defmt::error!("npu: scratch taken already");
            exit(1)
        };
        let Some(fast) =
            edgeslim_firmware::singleton!(NPU_FAST: Aligned<[u8; F]> = Aligned([0; F]))
        else {
            defmt::error!("npu: fast scratch taken already");
            exit(1)
        };
        let base = board::ETHOS_U55_BASE as u32;
        let npu = EthosU::new(
            regs,
            &levels::NPU_STREAMS,
            &mut scratch.0,
            &mut fast.0,
            Config::default(),
        );
        match npu.hardware() {
            Some(hw) => defmt::info!(
                "npu: Ethos-U at {=u32:#010x}: ID {=u32:#010x} CONFIG {=u32:#010x}, {=u32} MACs per cycle",
                base,
                hw.id,
                hw.config,
                hw.macs()
            ),
            None => defmt::info!(
                "npu: none at {=u32:#010x} (ID and CONFIG name no Ethos-U): every segment runs on the CPU",
                base
            ),
        }
        if !HAS_NPU_STREAMS {
            defmt::info!("npu: the bundle has no NPU command streams");
        }
        defmt::info!(
            "npu streams {=usize} for {=str}, scratch {=usize} fast scratch {=usize}",
            levels::NPU_STREAMS.len(),
            levels::NPU_CONFIG,
            S,
            F
        );
        if let Err(e) = npu.check(ARENA_BYTES) {
            defmt::error!("npu: the bundle's streams do not fit: {}", e);
            exit(1)
        }
        npu
    }

    /// The streams level `l` runs on the NPU and their flash bytes.
    pub fn level(l: usize) {
        let streams: &[u16] = levels::LEVEL_NPU.get(l).copied().unwrap_or(&[]);
        let flash = levels::LEVEL_NPU_FLASH.get(l).copied().unwrap_or(0);
        defmt::info!(
            "npu level {=usize} streams {=[?]} flash {=u32}",
            l,
            streams,
            flash
        );
    }

    /// What the driver did with the offers.
    pub fn report(npu: &Accel) {
        let s = npu.stats();
        defmt::info!(
            "npu offered {=u32} accepted {=u32} declined {=u32} no_npu {=u32} no_stream {=u32} mismatched {=u32} faults {=u32} timeouts {=u32}",
            s.offered,
            s.accepted,
            s.declined(),
            s.no_npu,
            s.no_stream,
            s.mismatched,
            s.faults,
            s.timeouts
        );
        if s.faults > 0 || s.timeouts > 0 {
            defmt::warn!(
                "npu: last failure STATUS {=u32:#010x} QREAD {=u32}",
                s.last_status,
                s.last_qread
            );
        }
    }
}

/// Without the `ethos-u55` feature: the CPU alone (the interpreter's offers compile out).
#[cfg(not(feature = "ethos-u55"))]
mod npu {
    pub type Accel = edgeslim_runtime::CpuOnly;

    pub fn accelerator() -> Accel {
        edgeslim_runtime::CpuOnly
    }

    pub fn level(_: usize) {}

    pub fn report(_: &Accel) {}
}
