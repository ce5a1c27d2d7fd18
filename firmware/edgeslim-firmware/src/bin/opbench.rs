//! Exact instruction counts of the generated model on the Cortex-M4, op by op, at each width
//! configuration, beside Arm's CMSIS-NN on the same layers when the firmware was built with
//! `CMSIS_NN_DIR` (`build_cmsis_nn.rs`). `edgeslim bench MODEL --target cortex-m4` writes the
//! model, its input and `widths.txt` as assets (`build.rs`), builds this program and turns its
//! log into the bench report; under `cargo xtask firmware` it runs the pipeline's model at the
//! widest and the narrowest configuration.
//!
//! Counts are SysTick ticks under QEMU `-icount shift=0` times 40 (`edgeslim_firmware::icount`): exact and
//! identical on every run, in steps of 40 instructions. Per configuration, all tasks, the first
//! input sample:
//!
//! 1. **Timed run** with an observer reading the clock at the start and the end of every op:
//!    per-op instructions, and the gaps between ops (input quantization before the first op,
//!    the interpreter's dispatch and the observer's own clock reads) as the overhead; ops +
//!    overhead = the observed run, exactly.
//! 2. **Whole run** without an observer: the model's instruction count, and its outputs.
//! 3. **Data run** with an observer that sees each op's input and output: MACs from the active
//!    shapes, and every convolution, depthwise and fully connected op re-run through CMSIS-NN on
//!    the same input, weights and quantization (the slimmed weights and the channel table
//!    copied to RAM as CMSIS-NN lays them out, outside the timed region); its output must equal
//!    edgeslim's byte for byte, else the op line says `differ` with the first difference.
//!
//! The log (`{L} {s}`), parsed by the CLI (`tools/cli/src/bench/m4.rs`):
//!
//! ```text
//! opbench model <name> ops <n> cmsis_nn <built | not-built>
//! calibrate instructions <n> ticks <t>
//! config <k> widths <[u8]>
//! op <k> <index> <kind> segment <s> macs <m> instr <i> cmsis_nn <i | -> check <c> [at <j> edgeslim <a> cmsis_nn <b>]
//! run <k> whole <i> observed <i> ops <i> overhead <i>
//! out <k> <output name> <[i8], NHWC>
//! done
//! ```
//!
//! `kind` is `conv`, `depthwise`, `fc` or the op's name (`Add`, `Reshape`, ...); `check` is
//! `equal`, `differ`, `unsupported` (an op CMSIS-NN is not asked to run: not a convolution or
//! fully connected op, or a grouped convolution), `error` (CMSIS-NN refused the arguments or
//! needs more scratch than there is) or `none` (CMSIS-NN not built).
#![no_std]
#![no_main]

use edgeslim_firmware::assets::{self, ARENA_BYTES, NUM_OPS};
use edgeslim_firmware::entry;
use edgeslim_firmware::exit;
use edgeslim_firmware::icount::{Clock, instructions};
use edgeslim_runtime::format::{MAX_SEGMENTS, attr};
use edgeslim_runtime::{
    Input, Interpreter, Model, Observer, OpData, OpInfo, OpKind, TaskMask, WidthConfig,
};

/// Iterations of the calibration loop (as `profile`).
const CALIBRATION_LOOPS: u32 = 100_000;

/// What the data run found for one op.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(cmsis_nn), allow(dead_code))]
enum Check {
    /// CMSIS-NN not built, or the op did not run.
    None,
    Unsupported,
    Error,
    Equal,
    /// First differing output element: index, edgeslim's value, CMSIS-NN's.
    Differ(usize, i8, i8),
}

/// Per-op results of one configuration.
struct Results {
    ran: [bool; NUM_OPS],
    ticks: [u64; NUM_OPS],
    macs: [u64; NUM_OPS],
    cmsis: [Option<u64>; NUM_OPS],
    check: [Check; NUM_OPS],
}

/// Step 1: clock reads at every op boundary.
struct OpTimer<'c, 'r> {
    clock: &'c mut Clock,
    r: &'r mut Results,
    start: u64,
    last: u64,
    gaps: u64,
}

impl Observer for OpTimer<'_, '_> {
    fn op_start(&mut self, _index: usize, _op: &OpInfo) {
        let now = self.clock.now();
        self.gaps += now - self.last;
        self.start = now;
    }

    fn op_end(&mut self, index: usize, _op: &OpInfo) {
        let now = self.clock.now();
        if let (Some(t), Some(ran)) = (self.r.ticks.get_mut(index), self.r.ran.get_mut(index)) {
            *t = now - self.start;
            *ran = true;
        }
        self.last = now;
    }
}

/// The label of an op in the log.
fn kind(op: &OpInfo) -> &'static str {
    match op.kind {
        OpKind::Conv2d if op.attrs[attr::DEPTHWISE] == 1 => "depthwise",
        OpKind::Conv2d => "conv",
        OpKind::FullyConnected => "fc",
        k => k.name(),
    }
}

/// Multiply-accumulates of an op from its active shapes.
fn macs(op: &OpInfo, d: &OpData<'_, '_>) -> u64 {
    let (i, o) = (d.input_shape, d.output_shape);
    match op.kind {
        OpKind::Conv2d => {
            let g = edgeslim_runtime::ops::conv::geometry(op, i.c).groups.max(1);
            (o.h * o.w * o.c * op.wshape[1] * op.wshape[2] * (i.c / g)) as u64
        }
        OpKind::FullyConnected => (i.h * i.w * i.c * o.c) as u64,
        _ => 0,
    }
}

/// Step 3: MACs and the CMSIS-NN re-run of each op.
struct DataRun<'c, 'r, 'b, 'm> {
    model: Model<'m>,
    clock: &'c mut Clock,
    r: &'r mut Results,
    bufs: &'b mut reference::Bufs,
}

impl Observer for DataRun<'_, '_, '_, '_> {
    fn op_data(&mut self, index: usize, op: &OpInfo, d: &OpData<'_, '_>) {
        let m = macs(op, d);
        let (cmsis, check) = reference::run(&self.model, self.clock, self.bufs, op, d);
        if let Some(slot) = self.r.macs.get_mut(index) {
            *slot = m;
        }
        if let Some(slot) = self.r.cmsis.get_mut(index) {
            *slot = cmsis;
        }
        if let Some(slot) = self.r.check.get_mut(index) {
            *slot = check;
        }
    }
}

fn instr(ticks: u64) -> u64 {
    instructions(ticks)
}

/// The configurations to run: `widths.txt`, else the widest and the narrowest.
fn configs(model: &Model<'_>) -> ([[u8; MAX_SEGMENTS]; 2], usize, &'static [&'static [u8]]) {
    let n = model.num_segments();
    let mut wide = [0u8; MAX_SEGMENTS];
    for (s, w) in wide.iter_mut().enumerate().take(n) {
        *w = model.num_widths(s).saturating_sub(1) as u8;
    }
    let narrow = [0u8; MAX_SEGMENTS];
    let count = if wide == narrow { 1 } else { 2 };
    ([wide, narrow], count, assets::WIDTH_CONFIGS)
}

#[entry]
fn main() -> ! {
    if !assets::AVAILABLE {
        defmt::error!(
            "no model was generated ({=str}); run `edgeslim bench MODEL --target cortex-m4` or `cargo xtask firmware`",
            assets::MISSING
        );
        exit(1);
    }
    let Some(mut clock) = Clock::take() else {
        defmt::error!("the clock is taken already");
        exit(1)
    };
    let model = assets::model();
    defmt::info!(
        "opbench model {=str} ops {=usize} cmsis_nn {=str}",
        model.name(),
        model.num_ops(),
        if cfg!(cmsis_nn) { "built" } else { "not-built" }
    );
    // The tick-to-instruction factor, checked by the CLI: a loop of 2n instructions.
    let t0 = clock.now();
    edgeslim_firmware::icount::spin(CALIBRATION_LOOPS);
    let t1 = clock.now();
    defmt::info!(
        "calibrate instructions {=u64} ticks {=u64}",
        2 * u64::from(CALIBRATION_LOOPS),
        t1 - t0
    );

    let Some(arena) = edgeslim_firmware::singleton!(ARENA: [u8; ARENA_BYTES] = [0; ARENA_BYTES])
    else {
        exit(1)
    };
    let Some(bufs) = edgeslim_firmware::singleton!(BUFS: reference::Bufs = reference::Bufs::new())
    else {
        exit(1)
    };
    let Some(r) = edgeslim_firmware::singleton!(RESULTS: Results = Results {
        ran: [false; NUM_OPS],
        ticks: [0; NUM_OPS],
        macs: [0; NUM_OPS],
        cmsis: [None; NUM_OPS],
        check: [Check::None; NUM_OPS],
    }) else {
        exit(1)
    };
    let mut interp = match Interpreter::new(&model, arena) {
        Ok(i) => i,
        Err(e) => {
            defmt::error!("interpreter: {}", e);
            exit(1)
        }
    };
    let Some(x) = assets::SAMPLES.first() else {
        defmt::error!("no input sample");
        exit(1)
    };
    let all = TaskMask::all(&model);
    let n_seg = model.num_segments();
    let (defaults, n_defaults, given) = configs(&model);
    let n_configs = if given.is_empty() {
        n_defaults
    } else {
        given.len()
    };

    for k in 0..n_configs {
        let idx: &[u8] = match given.get(k) {
            Some(c) => c,
            None => &defaults[k][..n_seg],
        };
        let widths = match WidthConfig::from_indices(idx) {
            Ok(w) => w,
            Err(e) => {
                defmt::error!("config {=usize} {=[u8]}: {}", k, idx, e);
                exit(1)
            }
        };
        defmt::info!("config {=usize} widths {=[u8]}", k, idx);
        r.ran = [false; NUM_OPS];
        r.ticks = [0; NUM_OPS];
        r.macs = [0; NUM_OPS];
        r.cmsis = [None; NUM_OPS];
        r.check = [Check::None; NUM_OPS];

        // 1. Timed run.
        let t0 = clock.now();
        let mut timer = OpTimer {
            clock: &mut clock,
            r,
            start: t0,
            last: t0,
            gaps: 0,
        };
        if let Err(e) = interp.run_observed(Input::F32(x), &widths, all, &mut timer) {
            defmt::error!("config {=usize}: {}", k, e);
            exit(1);
        }
        let t1 = timer.clock.now();
        let gaps = timer.gaps + (t1 - timer.last);
        let observed = t1 - t0;

        // 2. Whole run.
        let t0 = clock.now();
        let res = interp.run(Input::F32(x), &widths, all);
        let whole = clock.now() - t0;
        let outputs = match res {
            Ok(o) => o,
            Err(e) => {
                defmt::error!("config {=usize}: {}", k, e);
                exit(1)
            }
        };
        for o in outputs.iter() {
            defmt::info!("out {=usize} {=str} {}", k, o.name, o.data);
        }

        // 3. Data run.
        let mut data = DataRun {
            model,
            clock: &mut clock,
            r,
            bufs,
        };
        if let Err(e) = interp.run_observed(Input::F32(x), &widths, all, &mut data) {
            defmt::error!("config {=usize}: {}", k, e);
            exit(1);
        }

        let mut sum = 0;
        for i in 0..model.num_ops() {
            if !r.ran[i] {
                continue;
            }
            let Some(op) = model.op(i) else { exit(1) };
            sum += r.ticks[i];
            log_op(k, i, &op, r);
        }
        defmt::info!(
            "run {=usize} whole {=u64} observed {=u64} ops {=u64} overhead {=u64}",
            k,
            instr(whole),
            instr(observed),
            instr(sum),
            instr(gaps)
        );
    }
    defmt::info!("done");
    exit(0)
}

fn log_op(k: usize, i: usize, op: &OpInfo, r: &Results) {
    let (name, seg, macs, ins) = (kind(op), op.segment, r.macs[i], instr(r.ticks[i]));
    let check = match r.check[i] {
        Check::None => "none",
        Check::Unsupported => "unsupported",
        Check::Error => "error",
        Check::Equal => "equal",
        Check::Differ(..) => "differ",
    };
    match (r.cmsis[i], r.check[i]) {
        (Some(c), Check::Differ(at, a, b)) => defmt::info!(
            "op {=usize} {=usize} {=str} segment {=usize} macs {=u64} instr {=u64} cmsis_nn {=u64} check differ at {=usize} edgeslim {=i8} cmsis_nn {=i8}",
            k,
            i,
            name,
            seg,
            macs,
            ins,
            c,
            at,
            a,
            b
        ),
        (Some(c), _) => defmt::info!(
            "op {=usize} {=usize} {=str} segment {=usize} macs {=u64} instr {=u64} cmsis_nn {=u64} check {=str}",
            k,
            i,
            name,
            seg,
            macs,
            ins,
            c,
            check
        ),
        (None, _) => defmt::info!(
            "op {=usize} {=usize} {=str} segment {=usize} macs {=u64} instr {=u64} cmsis_nn - check {=str}",
            k,
            i,
            name,
            seg,
            macs,
            ins,
            check
        ),
    }
}

/// CMSIS-NN on one op's captured input (built by `build_cmsis_nn.rs`).
#[cfg(cmsis_nn)]
mod reference {
    use super::Check;
    use edgeslim_firmware::assets::{
        MAX_OP_CHANNELS, MAX_OP_OUTPUT, MAX_OP_SCRATCH, MAX_OP_WEIGHTS,
    };
    use edgeslim_firmware::cmsis_nn::{self as cm, dims, tile};
    use edgeslim_firmware::icount::{Clock, instructions};
    use edgeslim_runtime::format::attr;
    use edgeslim_runtime::kernels::{ChannelQuant, as_i8};
    use edgeslim_runtime::ops::conv::geometry;
    use edgeslim_runtime::{Model, OpData, OpInfo, OpKind};

    /// The op's parameters as CMSIS-NN takes them, in RAM.
    pub struct Bufs {
        weights: [i8; MAX_OP_WEIGHTS],
        bias: [i32; MAX_OP_CHANNELS],
        mult: [i32; MAX_OP_CHANNELS],
        shift: [i32; MAX_OP_CHANNELS],
        out: [i8; MAX_OP_OUTPUT],
        scratch: [u8; MAX_OP_SCRATCH],
    }

    impl Bufs {
        pub const fn new() -> Self {
            Bufs {
                weights: [0; MAX_OP_WEIGHTS],
                bias: [0; MAX_OP_CHANNELS],
                mult: [0; MAX_OP_CHANNELS],
                shift: [0; MAX_OP_CHANNELS],
                out: [0; MAX_OP_OUTPUT],
                scratch: [0; MAX_OP_SCRATCH],
            }
        }
    }

    /// Whether CMSIS-NN's scratch request fits the buffer.
    fn fits(need: i32) -> bool {
        usize::try_from(need).is_ok_and(|n| n <= MAX_OP_SCRATCH)
    }

    /// Run `op` through CMSIS-NN on `d.input`: its instructions and the comparison with
    /// edgeslim's output.
    pub fn run(
        model: &Model<'_>,
        clock: &mut Clock,
        b: &mut Bufs,
        op: &OpInfo,
        d: &OpData<'_, '_>,
    ) -> (Option<u64>, Check) {
        let (i, o) = (d.input_shape, d.output_shape);
        let n_out = o.len();
        if !matches!(op.kind, OpKind::Conv2d | OpKind::FullyConnected) {
            return (None, Check::Unsupported);
        }
        if o.c > MAX_OP_CHANNELS || n_out > MAX_OP_OUTPUT || d.output.len() != n_out {
            return (None, Check::Error);
        }
        // The channel table: (bias, multiplier, shift) per output channel.
        let q = ChannelQuant::new(model.channel_bytes(&d.entry, o.c));
        for c in 0..o.c {
            let (bias, mult, shift) = q.get(c);
            b.bias[c] = bias;
            b.mult[c] = mult;
            b.shift[c] = shift;
        }
        let full = as_i8(model.weights(op));
        let [_, kh, kw, cols] = op.wshape;
        let (act_min, act_max) = d.entry.act();
        let activation = cm::Activation {
            min: i32::from(act_min),
            max: i32::from(act_max),
        };
        let quant = cm::PerChannel {
            multiplier: b.mult.as_ptr(),
            shift: b.shift.as_ptr(),
        };
        let in_zp = d.entry.in_zp();
        let out_zp = d.entry.out_zp();
        b.scratch.fill(0);
        let ctx = cm::Context {
            buf: b.scratch.as_mut_ptr().cast(),
            size: MAX_OP_SCRATCH as i32,
        };
        let bias_d = dims(1, 1, 1, o.c);
        let out_d = dims(1, o.h, o.w, o.c);
        let in_d = dims(1, i.h, i.w, i.c);
        let (status, ticks);
        match op.kind {
            OpKind::Conv2d => {
                let g = geometry(op, i.c);
                let depthwise = op.attrs[attr::DEPTHWISE] == 1;
                if !depthwise && g.groups != 1 {
                    return (None, Check::Unsupported);
                }
                let taps = kh * kw;
                if depthwise {
                    // edgeslim [out, kh, kw, 1] -> CMSIS-NN [1, kh, kw, out].
                    if taps * o.c > MAX_OP_WEIGHTS {
                        return (None, Check::Error);
                    }
                    for c in 0..o.c {
                        for t in 0..taps {
                            b.weights[t * o.c + c] = full[c * taps + t];
                        }
                    }
                    let f_d = dims(1, kh, kw, o.c);
                    let p = cm::DwParams {
                        input_offset: -in_zp,
                        output_offset: out_zp,
                        ch_mult: (o.c / i.c.max(1)) as i32,
                        stride: tile(g.stride),
                        padding: tile(g.pad),
                        dilation: tile(g.dilation),
                        activation,
                    };
                    // SAFETY: every pointer is to a live value or buffer of the size its dims
                    // state (input i.len(), filter kh*kw*o.c, bias and quantization o.c, output
                    // o.len(), all checked above against the buffers), the scratch is
                    // MAX_OP_SCRATCH bytes and its use is checked against the size CMSIS-NN asks
                    // for below; CMSIS-NN reads and writes only within them.
                    let need = unsafe {
                        cm::arm_depthwise_conv_wrapper_s8_get_buffer_size(&p, &in_d, &f_d, &out_d)
                    };
                    if !fits(need) {
                        return (None, Check::Error);
                    }
                    let (input, filter, out) =
                        (d.input.as_ptr(), b.weights.as_ptr(), b.out.as_mut_ptr());
                    let t0 = clock.now();
                    // SAFETY: as above.
                    status = unsafe {
                        cm::arm_depthwise_conv_wrapper_s8(
                            &ctx,
                            &p,
                            &quant,
                            &in_d,
                            input,
                            &f_d,
                            filter,
                            &bias_d,
                            b.bias.as_ptr(),
                            &out_d,
                            out,
                        )
                    };
                    ticks = clock.now() - t0;
                } else {
                    // edgeslim [out_full, kh, kw, in_full] -> [out, kh, kw, in], contiguous.
                    if o.c * taps * i.c > MAX_OP_WEIGHTS {
                        return (None, Check::Error);
                    }
                    for row in 0..o.c * taps {
                        b.weights[row * i.c..(row + 1) * i.c]
                            .copy_from_slice(&full[row * cols..row * cols + i.c]);
                    }
                    let f_d = dims(o.c, kh, kw, i.c);
                    let p = cm::ConvParams {
                        input_offset: -in_zp,
                        output_offset: out_zp,
                        stride: tile(g.stride),
                        padding: tile(g.pad),
                        dilation: tile(g.dilation),
                        activation,
                    };
                    // SAFETY: as for the depthwise call (filter o.c*kh*kw*i.c values).
                    let need = unsafe {
                        cm::arm_convolve_wrapper_s8_get_buffer_size(&p, &in_d, &f_d, &out_d)
                    };
                    if !fits(need) {
                        return (None, Check::Error);
                    }
                    let (input, filter, out) =
                        (d.input.as_ptr(), b.weights.as_ptr(), b.out.as_mut_ptr());
                    let t0 = clock.now();
                    // SAFETY: as above.
                    status = unsafe {
                        cm::arm_convolve_wrapper_s8(
                            &ctx,
                            &p,
                            &quant,
                            &in_d,
                            input,
                            &f_d,
                            filter,
                            &bias_d,
                            b.bias.as_ptr(),
                            &out_d,
                            out,
                        )
                    };
                    ticks = clock.now() - t0;
                }
            }
            _ => {
                // edgeslim [out_full, positions, in_full, 1] -> [out, positions * in].
                let positions = i.h * i.w;
                if o.c * positions * i.c > MAX_OP_WEIGHTS {
                    return (None, Check::Error);
                }
                let cols = op.wshape[2];
                for row in 0..o.c * positions {
                    b.weights[row * i.c..(row + 1) * i.c]
                        .copy_from_slice(&full[row * cols..row * cols + i.c]);
                }
                let f_d = dims(positions * i.c, 1, 1, o.c);
                let fc_in = dims(1, 1, 1, positions * i.c);
                let fc_out = dims(1, 1, 1, o.c);
                let p = cm::FcParams {
                    input_offset: -in_zp,
                    filter_offset: 0,
                    output_offset: out_zp,
                    activation,
                };
                let (input, filter, out) =
                    (d.input.as_ptr(), b.weights.as_ptr(), b.out.as_mut_ptr());
                let t0 = clock.now();
                // SAFETY: input positions*i.c values, filter o.c*positions*i.c, bias and
                // quantization o.c, output o.c, all within live buffers (checked above); the
                // DSP build reads no scratch.
                status = unsafe {
                    cm::arm_fully_connected_per_channel_s8(
                        &ctx,
                        &p,
                        &quant,
                        &fc_in,
                        input,
                        &f_d,
                        filter,
                        &bias_d,
                        b.bias.as_ptr(),
                        &fc_out,
                        out,
                    )
                };
                ticks = clock.now() - t0;
            }
        }
        if status != 0 {
            return (None, Check::Error);
        }
        let instructions = instructions(ticks);
        for (j, (&a, &c)) in d.output.iter().zip(&b.out[..n_out]).enumerate() {
            if a != c {
                return (Some(instructions), Check::Differ(j, a, c));
            }
        }
        (Some(instructions), Check::Equal)
    }
}

/// Without `CMSIS_NN_DIR`: nothing to compare with.
#[cfg(not(cmsis_nn))]
mod reference {
    use super::Check;
    use edgeslim_firmware::icount::Clock;
    use edgeslim_runtime::{Model, OpData, OpInfo};

    pub struct Bufs;

    impl Bufs {
        pub const fn new() -> Self {
            Bufs
        }
    }

    pub fn run(
        _: &Model<'_>,
        _: &mut Clock,
        _: &mut Bufs,
        _: &OpInfo,
        _: &OpData<'_, '_>,
    ) -> (Option<u64>, Check) {
        (None, Check::None)
    }
}
