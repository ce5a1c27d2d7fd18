//! Per-segment cost of the generated model in exactly repeatable clock ticks under QEMU
//! `-icount shift=0` (one SysTick tick = 40 instructions on the 25 MHz Arm boards, one `mcycle`
//! count = one instruction on RISC-V; see `edgeslim_firmware::icount`).
//!
//! Every encoder configuration runs with every decoder width (all tasks, decoder `s` at
//! `min(k, widths_s - 1)` for `k` over the widest decoder's widths), so each decoder is timed
//! at every (last stage's width, decoder width) pair and each encoder stage at every (width of
//! the stage before, width) pair; an encoder of more than 16 configurations runs a set that
//! covers those pairs (for every `(a, b)` the stages alternate `a, b, a, ...`). Then each
//! decoder alone at the narrowest and widest configuration. Each configuration runs once observed (op and segment ticks) and once
//! unobserved (whole-inference ticks). The whole program is deterministic under `-icount`, so
//! two QEMU runs log the same ticks (xtask checks that); two runs of one configuration within a
//! program may differ by a tick, as they start at another phase of the 40-instruction tick.
//!
//! The observed run reads the clock when each op starts and ends: an op is charged from its
//! start until the next op starts (the interpreter's dispatch between them included), the last
//! op until it ends; a segment is charged its ops' ticks, so the segment ticks of a run are
//! exactly the sums of its op ticks. The log, which `edgeslim profile --from-log` turns into
//! an `edgeslim.latency/1` table (`tools/cli/src/profile/log.rs` parses it):
//!
//! ```text
//! calibrate instructions <n> ticks <t>     (a loop of n instructions took t ticks)
//! model_hash esm-crc32:<crc>:<bytes>
//! instructions_per_tick <n> (...)          (QEMU; on a real board `clock <counter> at <hz> Hz on <board>`: ticks are core cycles)
//! encoder_stages <n>
//! segment <i> <name> <multiplier f32 bits [u32]>
//! task <i> <name> segment <s>
//! op <i> <kind> segment <s>
//! run widths <[u8]> mask <m> total <ticks> observed <ticks> segments <[u64] ticks per segment> ops <[u64] ticks per op, 0 for ops that did not run>
//! marked run ticks <t>                     (the widest inference between the plugin markers)
//! done
//! ```
#![no_std]
#![no_main]

use edgeslim_firmware::assets::{self, ARENA_BYTES, NUM_OPS};
use edgeslim_firmware::entry;
use edgeslim_firmware::exit;
use edgeslim_firmware::icount::{
    Clock, INSTRUCTIONS_PER_TICK, edgeslim_icount_start, edgeslim_icount_stop,
};
use edgeslim_runtime::format::{MAX_SEGMENTS, MAX_WIDTHS};
use edgeslim_runtime::width::encoder;
use edgeslim_runtime::{Input, Interpreter, Observer, OpInfo, TaskMask, WidthConfig};

/// Iterations of the calibration loop.
const CALIBRATION_LOOPS: u32 = 1_000_000;

/// Charges ticks to ops and their segments: from an op starting until the next op starts, the
/// last op until it ends. What runs before the first op (input quantization, validation) and
/// after the last is the overhead.
struct OpTimer<'c> {
    clock: &'c mut Clock,
    /// Ticks per op of the last run.
    ops: [u64; NUM_OPS],
    /// Ticks per segment of the last run: the sums of its ops'.
    segments: [u64; MAX_SEGMENTS],
    /// The running op: (index, segment, start tick).
    current: Option<(usize, usize, u64)>,
    last_end: u64,
}

impl<'c> OpTimer<'c> {
    fn new(clock: &'c mut Clock) -> Self {
        OpTimer {
            clock,
            ops: [0; NUM_OPS],
            segments: [0; MAX_SEGMENTS],
            current: None,
            last_end: 0,
        }
    }

    /// Charge the running op up to `now`.
    fn close(&mut self, now: u64) {
        if let Some((i, s, since)) = self.current.take() {
            if let Some(t) = self.ops.get_mut(i) {
                *t += now - since;
            }
            if let Some(t) = self.segments.get_mut(s) {
                *t += now - since;
            }
        }
    }

    /// Close the last op at its end; call after a run.
    fn finish(&mut self) {
        let end = self.last_end;
        self.close(end);
    }
}

impl Observer for OpTimer<'_> {
    fn op_start(&mut self, index: usize, op: &OpInfo) {
        let now = self.clock.now();
        self.close(now);
        self.current = Some((index, op.segment, now));
    }

    fn op_end(&mut self, _index: usize, _op: &OpInfo) {
        self.last_end = self.clock.now();
    }
}

#[entry]
fn main() -> ! {
    // A real board's clocks (the core at its SYSCLK_HZ, which the cycle counter counts); in
    // QEMU nothing. The button and the serial line are not used here.
    let _io = edgeslim_firmware::board::init();
    if !assets::AVAILABLE {
        defmt::error!(
            "no model was generated ({=str}); run `cargo xtask firmware`",
            assets::MISSING
        );
        exit(1);
    }
    let Some(mut clock) = Clock::take() else {
        defmt::error!("the clock is taken already");
        exit(1)
    };
    // Calibration: `spin(n)` is a two-instruction loop of n passes, 2n instructions; under
    // -icount shift=0 they must take 2n / INSTRUCTIONS_PER_TICK ticks (xtask checks on the M4).
    let t0 = clock.now();
    edgeslim_icount_start();
    edgeslim_firmware::icount::spin(CALIBRATION_LOOPS);
    edgeslim_icount_stop();
    let t1 = clock.now();
    defmt::info!(
        "calibrate instructions {=u64} ticks {=u64}",
        2 * u64::from(CALIBRATION_LOOPS),
        t1 - t0
    );
    let model = assets::model();
    let (crc, bytes) = model.hash_parts();
    defmt::info!("model_hash esm-crc32:{=u32:08x}:{=usize}", crc, bytes);
    if edgeslim_firmware::board::HARDWARE {
        // Ticks are core cycles: `edgeslim profile --from-log --clock-mhz <MHz>` converts them.
        defmt::info!(
            "clock {=str} at {=u32} Hz on {=str}",
            edgeslim_firmware::icount::TIMER,
            edgeslim_firmware::SYSCLK_HZ,
            edgeslim_firmware::board::MACHINE
        );
    } else {
        defmt::info!(
            "instructions_per_tick {=u64} (qemu -icount shift=0, {=str})",
            INSTRUCTIONS_PER_TICK,
            edgeslim_firmware::icount::TIMER
        );
    }
    let n_seg = model.num_segments();
    let stages = model.num_encoder_segments().max(1);
    defmt::info!("encoder_stages {=usize}", stages);
    let mut n_widths = [0usize; MAX_SEGMENTS];
    for s in 0..n_seg {
        let Some(info) = model.segment(s) else {
            exit(1)
        };
        let mut bits = [0u32; MAX_WIDTHS];
        let m = info.multipliers();
        for (b, &w) in bits.iter_mut().zip(m) {
            *b = w.to_bits();
        }
        n_widths[s] = m.len();
        defmt::info!("segment {=usize} {=str} {}", s, info.name, &bits[..m.len()]);
    }
    for t in 0..model.num_tasks() {
        if let Some(info) = model.task(t) {
            defmt::info!(
                "task {=usize} {=str} segment {=usize}",
                t,
                info.name,
                info.segment
            );
        }
    }
    let n_ops = model.num_ops().min(NUM_OPS);
    for i in 0..n_ops {
        if let Some(op) = model.op(i) {
            defmt::info!(
                "op {=usize} {=str} segment {=usize}",
                i,
                op.kind.name(),
                op.segment
            );
        }
    }

    let Some(arena) = edgeslim_firmware::singleton!(ARENA: [u8; ARENA_BYTES] = [0; ARENA_BYTES])
    else {
        exit(1)
    };
    let mut interp = match Interpreter::new(&model, arena) {
        Ok(i) => i,
        Err(e) => {
            defmt::error!("interpreter: {}", e);
            exit(1)
        }
    };
    // Costs depend on the data (activation clamps, ties), so one fixed sample.
    let Some(x) = assets::SAMPLES.first() else {
        defmt::error!("no input samples");
        exit(1)
    };
    let all = TaskMask::all(&model);
    let widest_decoder = n_widths[stages.min(n_seg)..n_seg]
        .iter()
        .copied()
        .max()
        .unwrap_or(1);

    let mut run = |idx: &[u8], mask: TaskMask| {
        let Ok(widths) = WidthConfig::from_indices(idx) else {
            exit(1)
        };
        let mut timer = OpTimer::new(&mut clock);
        let t0 = timer.clock.now();
        if let Err(e) = interp.run_observed(Input::F32(x), &widths, mask, &mut timer) {
            defmt::error!("run {=[u8]}: {}", idx, e);
            exit(1);
        }
        let t1 = timer.clock.now();
        timer.finish();
        let (seg, ops) = (timer.segments, timer.ops);
        let observed = t1 - t0;
        let t0 = clock.now();
        if let Err(e) = interp.run(Input::F32(x), &widths, mask) {
            defmt::error!("run {=[u8]}: {}", idx, e);
            exit(1);
        }
        let total = clock.now() - t0;
        defmt::info!(
            "run widths {=[u8]} mask {=u32} total {=u64} observed {=u64} segments {} ops {}",
            idx,
            mask.0,
            total,
            observed,
            &seg[..n_seg],
            &ops[..n_ops]
        );
    };

    let mut idx = [0u8; MAX_SEGMENTS];
    let counts = &n_widths[..stages];
    for i in 0..encoder::cover_len(counts) {
        let e = encoder::cover(counts, i);
        for k in 0..stages {
            idx[k] = encoder::stage_width(counts, e, k) as u8;
        }
        for k in 0..widest_decoder {
            for s in stages..n_seg {
                idx[s] = k.min(n_widths[s] - 1) as u8;
            }
            run(&idx[..n_seg], all);
        }
    }
    // Each decoder alone, everything narrowest and everything widest: checks that the
    // per-segment sum predicts other task sets too.
    for widest in [false, true] {
        for s in 0..n_seg {
            idx[s] = if widest { (n_widths[s] - 1) as u8 } else { 0 };
        }
        for t in 0..model.num_tasks() {
            run(&idx[..n_seg], TaskMask::single(t));
        }
    }
    // One whole inference between the plugin's markers (widest, every task): xtask compares
    // the plugin's exact instruction count with the ticks.
    for s in 0..n_seg {
        idx[s] = (n_widths[s] - 1) as u8;
    }
    let Ok(widest) = WidthConfig::from_indices(&idx[..n_seg]) else {
        exit(1)
    };
    let t0 = clock.now();
    edgeslim_icount_start();
    let ok = interp.run(Input::F32(x), &widest, all).is_ok();
    edgeslim_icount_stop();
    let t1 = clock.now();
    if !ok {
        exit(1);
    }
    defmt::info!("marked run ticks {=u64}", t1 - t0);
    defmt::info!("done");
    exit(0)
}
