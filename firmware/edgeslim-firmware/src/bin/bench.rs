//! Exact instruction counts of edgeslim's convolution and fully connected kernels on the
//! Cortex-M4 (QEMU `-icount shift=0`: SysTick ticks x 40), beside Arm's CMSIS-NN on the same
//! layers, data and quantization when the firmware was built with `CMSIS_NN_DIR` (see
//! `build_cmsis_nn.rs`; without it the CMSIS-NN column is "not measured").
//!
//! Layers (NHWC int8, per-channel requantization, pseudo-random data): pointwise 64->64 at
//! 25x5, 3x3 convolution 16->32 at 25x5 (padding 1), depthwise 3x3 on 64 channels at 25x5
//! (padding 1), fully connected 1024->12, and a DS-CNN block (the depthwise then the
//! pointwise). Each runs through `kernels::portable` (the variant before the DSP kernels),
//! `kernels::active` (on this core the Arm DSP variants) and CMSIS-NN; all outputs must be
//! equal byte for byte, else the program names the layer and exits 1. The log, which
//! `cargo xtask bench-m4` turns into a table:
//!
//! ```text
//! layer <name> macs <n> portable <instr> arm_dsp <instr> cmsis_nn <instr | ->
//! ```
//!
//! On a core with Helium (the Cortex-M55 build, `cfg(arm_mve_kernels)`: `kernels::active` is
//! then the MVE set) the `arm_dsp` column runs `kernels::arm_dsp` by name and an `arm_mve`
//! column (`kernels::arm_mve`) comes before `cmsis_nn`; `cargo xtask bench-m55` prints that
//! table.
#![no_std]
#![no_main]

use edgeslim_firmware::entry;
use edgeslim_firmware::exit;
use edgeslim_firmware::icount::{Clock, INSTRUCTIONS_PER_TICK, instructions};
use edgeslim_runtime::kernels::{self, ChannelQuant, ConvGeometry, OutputStage, Shape};

#[cfg(not(arm_mve_kernels))]
use kernels::active as dsp_set;
/// The Arm DSP variants: by name where the runtime also has Helium ones, else what `active`
/// calls (the DSP set on the M4, M7 and M33; the portable one on cores without DSP).
#[cfg(arm_mve_kernels)]
use kernels::arm_dsp as dsp_set;

const MAX_ACT: usize = 25 * 5 * 64;
const MAX_W: usize = 12 * 1024;
const MAX_CH: usize = 192;
/// CMSIS-NN's scratch buffer.
#[cfg(cmsis_nn)]
const SCRATCH: usize = 16 * 1024;

/// xorshift32.
struct Rng(u32);

impl Rng {
    fn next(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        x
    }
    fn i8(&mut self) -> i8 {
        self.next() as i8
    }
}

/// One layer's quantization, in edgeslim's blob layout and CMSIS-NN's arrays.
struct Quant {
    bytes: [u8; MAX_CH * ChannelQuant::STRIDE],
    bias: [i32; MAX_CH],
    mult: [i32; MAX_CH],
    shift: [i32; MAX_CH],
    n: usize,
}

impl Quant {
    /// Per-channel multipliers (or one for all when `per_tensor`), shifts `-7..=-10`, biases
    /// of a few thousand.
    fn new(rng: &mut Rng, n: usize, per_tensor: bool) -> Self {
        let mut q = Quant {
            bytes: [0; MAX_CH * ChannelQuant::STRIDE],
            bias: [0; MAX_CH],
            mult: [0; MAX_CH],
            shift: [0; MAX_CH],
            n,
        };
        let (m0, s0) = (((1u32 << 30) | (rng.next() >> 2)) as i32, -8);
        for o in 0..n {
            let (m, s) = if per_tensor {
                (m0, s0)
            } else {
                (
                    ((1u32 << 30) | (rng.next() >> 2)) as i32,
                    -7 - (rng.next() % 4) as i32,
                )
            };
            let b = (rng.next() as i32) >> 19;
            q.bias[o] = b;
            q.mult[o] = m;
            q.shift[o] = s;
            let c = &mut q.bytes[o * ChannelQuant::STRIDE..][..ChannelQuant::STRIDE];
            c[0..4].copy_from_slice(&b.to_le_bytes());
            c[4..8].copy_from_slice(&m.to_le_bytes());
            c[8..12].copy_from_slice(&s.to_le_bytes());
        }
        q
    }
    fn chan(&self) -> ChannelQuant<'_> {
        ChannelQuant::new(&self.bytes[..self.n * ChannelQuant::STRIDE])
    }
}

/// Instruction counts of one layer.
#[derive(Clone, Copy, Default)]
struct Row {
    macs: u32,
    portable: u64,
    dsp: u64,
    /// The Helium variants (`None` without them).
    mve: Option<u64>,
    cmsis: Option<u64>,
}

impl Row {
    fn add(self, o: Row) -> Row {
        Row {
            macs: self.macs + o.macs,
            portable: self.portable + o.portable,
            dsp: self.dsp + o.dsp,
            mve: self.mve.zip(o.mve).map(|(a, b)| a + b),
            cmsis: self.cmsis.zip(o.cmsis).map(|(a, b)| a + b),
        }
    }
    fn log(&self, name: &str) {
        if let Some(mve) = self.mve {
            match self.cmsis {
                Some(c) => defmt::info!(
                    "layer {=str} macs {=u32} portable {=u64} arm_dsp {=u64} arm_mve {=u64} cmsis_nn {=u64}",
                    name,
                    self.macs,
                    self.portable,
                    self.dsp,
                    mve,
                    c
                ),
                None => defmt::info!(
                    "layer {=str} macs {=u32} portable {=u64} arm_dsp {=u64} arm_mve {=u64} cmsis_nn -",
                    name,
                    self.macs,
                    self.portable,
                    self.dsp,
                    mve
                ),
            }
            return;
        }
        match self.cmsis {
            Some(c) => defmt::info!(
                "layer {=str} macs {=u32} portable {=u64} arm_dsp {=u64} cmsis_nn {=u64}",
                name,
                self.macs,
                self.portable,
                self.dsp,
                c
            ),
            None => defmt::info!(
                "layer {=str} macs {=u32} portable {=u64} arm_dsp {=u64} cmsis_nn -",
                name,
                self.macs,
                self.portable,
                self.dsp
            ),
        }
    }
}

/// Instructions `f` takes (ticks x 40 on the M4; the two clock reads add a few).
fn measure(clock: &mut Clock, f: impl FnOnce()) -> u64 {
    let t0 = clock.now();
    f();
    instructions(clock.now() - t0)
}

const IN_ZP: i32 = -3;
const OUT_STAGE: OutputStage = OutputStage {
    zero_point: 5,
    act_min: -128,
    act_max: 127,
};

struct Conv {
    name: &'static str,
    h: usize,
    w: usize,
    cin: usize,
    cout: usize,
    k: usize,
    pad: usize,
    depthwise: bool,
}

struct Bufs {
    input: [i8; MAX_ACT],
    weights: [i8; MAX_W],
    /// The weights in CMSIS-NN's depthwise layout (`[1, kh, kw, c]`).
    #[cfg(cmsis_nn)]
    cm_weights: [i8; MAX_W],
    portable: [i8; MAX_ACT],
    dsp: [i8; MAX_ACT],
    #[cfg(arm_mve_kernels)]
    mve: [i8; MAX_ACT],
    cmsis: [i8; MAX_ACT],
    #[cfg(cmsis_nn)]
    scratch: [u8; SCRATCH],
}

fn fail(name: &str, what: &str, i: usize, a: i8, b: i8) -> ! {
    defmt::error!(
        "layer {=str}: {=str} differ at output {=usize}: {=i8} vs {=i8}",
        name,
        what,
        i,
        a,
        b
    );
    exit(1)
}

fn compare(name: &str, b: &Bufs, n: usize, cmsis: bool) {
    for i in 0..n {
        if b.portable[i] != b.dsp[i] {
            fail(name, "portable and arm_dsp", i, b.portable[i], b.dsp[i]);
        }
        if cmsis && b.cmsis[i] != b.dsp[i] {
            fail(name, "CMSIS-NN and arm_dsp", i, b.cmsis[i], b.dsp[i]);
        }
        #[cfg(arm_mve_kernels)]
        if b.mve[i] != b.dsp[i] {
            fail(name, "arm_mve and arm_dsp", i, b.mve[i], b.dsp[i]);
        }
    }
}

/// Run one convolution on `b.input` (fresh random weights); outputs in `b.portable`, `b.dsp`,
/// `b.cmsis`.
fn conv(l: &Conv, rng: &mut Rng, b: &mut Bufs, clock: &mut Clock) -> Row {
    let ins = Shape {
        h: l.h,
        w: l.w,
        c: l.cin,
    };
    let outs = Shape {
        h: l.h + 2 * l.pad - l.k + 1,
        w: l.w + 2 * l.pad - l.k + 1,
        c: l.cout,
    };
    let (groups, i_full) = if l.depthwise { (l.cin, 1) } else { (1, l.cin) };
    let w_shape = [l.cout, l.k, l.k, i_full];
    let w_len = l.cout * l.k * l.k * i_full;
    for x in &mut b.weights[..w_len] {
        *x = rng.i8();
    }
    let q = Quant::new(rng, l.cout, false);
    let geo = ConvGeometry {
        stride: [1, 1],
        pad: [l.pad, l.pad],
        dilation: [1, 1],
        groups,
    };
    let n = outs.len();
    let input = &b.input[..ins.len()];
    let weights = &b.weights[..w_len];
    // Opaque to the optimiser, as a model's shapes are to the interpreter: with the literal
    // shapes inlined, LLVM specialised the kernels to them (up to 20% fewer instructions than
    // the interpreter's calls get) while CMSIS-NN, compiled apart, could not be.
    let (geo, ins, outs, w_shape) = core::hint::black_box((geo, ins, outs, w_shape));
    let portable = measure(clock, || {
        kernels::portable::conv2d(
            &geo,
            input,
            ins,
            IN_ZP,
            weights,
            w_shape,
            q.chan(),
            OUT_STAGE,
            &mut b.portable[..n],
            outs,
        )
    });
    let dsp = measure(clock, || {
        dsp_set::conv2d(
            &geo,
            input,
            ins,
            IN_ZP,
            weights,
            w_shape,
            q.chan(),
            OUT_STAGE,
            &mut b.dsp[..n],
            outs,
        )
    });
    #[cfg(arm_mve_kernels)]
    let mve = Some(measure(clock, || {
        kernels::arm_mve::conv2d(
            &geo,
            input,
            ins,
            IN_ZP,
            weights,
            w_shape,
            q.chan(),
            OUT_STAGE,
            &mut b.mve[..n],
            outs,
        )
    }));
    #[cfg(not(arm_mve_kernels))]
    let mve = None;
    let cmsis = cmsis::conv(l, &q, b, outs, clock);
    compare(l.name, b, n, cmsis.is_some());
    Row {
        macs: (outs.h * outs.w * l.cout * l.k * l.k * (l.cin / groups)) as u32,
        portable,
        dsp,
        mve,
        cmsis,
    }
}

fn fc(
    name: &str,
    n_in: usize,
    n_out: usize,
    rng: &mut Rng,
    b: &mut Bufs,
    clock: &mut Clock,
) -> Row {
    for x in &mut b.weights[..n_in * n_out] {
        *x = rng.i8();
    }
    // CMSIS-NN's fully connected layer is per-tensor: one multiplier for every output.
    let q = Quant::new(rng, n_out, true);
    let input = &b.input[..n_in];
    let weights = &b.weights[..n_in * n_out];
    // Opaque to the optimiser, as in `conv`.
    let (positions, n_in) = core::hint::black_box((1usize, n_in));
    let portable = measure(clock, || {
        kernels::portable::fully_connected(
            input,
            positions,
            n_in,
            IN_ZP,
            weights,
            n_in,
            q.chan(),
            OUT_STAGE,
            &mut b.portable[..n_out],
        )
    });
    let dsp = measure(clock, || {
        dsp_set::fully_connected(
            input,
            positions,
            n_in,
            IN_ZP,
            weights,
            n_in,
            q.chan(),
            OUT_STAGE,
            &mut b.dsp[..n_out],
        )
    });
    #[cfg(arm_mve_kernels)]
    let mve = Some(measure(clock, || {
        kernels::arm_mve::fully_connected(
            input,
            positions,
            n_in,
            IN_ZP,
            weights,
            n_in,
            q.chan(),
            OUT_STAGE,
            &mut b.mve[..n_out],
        )
    }));
    #[cfg(not(arm_mve_kernels))]
    let mve = None;
    let cmsis = cmsis::fc(n_in, n_out, &q, b, clock);
    compare(name, b, n_out, cmsis.is_some());
    Row {
        macs: (n_in * n_out) as u32,
        portable,
        dsp,
        mve,
        cmsis,
    }
}

#[entry]
fn main() -> ! {
    let Some(mut clock) = Clock::take() else {
        exit(1)
    };
    let Some(b) = edgeslim_firmware::singleton!(BUFS: Bufs = Bufs {
        input: [0; MAX_ACT],
        weights: [0; MAX_W],
        #[cfg(cmsis_nn)]
        cm_weights: [0; MAX_W],
        portable: [0; MAX_ACT],
        dsp: [0; MAX_ACT],
        #[cfg(arm_mve_kernels)]
        mve: [0; MAX_ACT],
        cmsis: [0; MAX_ACT],
        #[cfg(cmsis_nn)]
        scratch: [0; SCRATCH],
    }) else {
        exit(1)
    };
    defmt::info!(
        "bench: instructions under qemu -icount shift=0 (SysTick ticks x {=u64}); CMSIS-NN {=str}",
        INSTRUCTIONS_PER_TICK,
        if cfg!(cmsis_nn) {
            "built (CMSIS_NN_DIR)"
        } else {
            "not measured (CMSIS_NN_DIR unset)"
        }
    );
    let mut rng = Rng(0x1234_5678);
    let fresh_input = |b: &mut Bufs, rng: &mut Rng| {
        for x in b.input.iter_mut() {
            *x = rng.i8();
        }
    };
    let pw = Conv {
        name: "pointwise_64x64_25x5",
        h: 25,
        w: 5,
        cin: 64,
        cout: 64,
        k: 1,
        pad: 0,
        depthwise: false,
    };
    let c3 = Conv {
        name: "conv3x3_16x32_25x5",
        h: 25,
        w: 5,
        cin: 16,
        cout: 32,
        k: 3,
        pad: 1,
        depthwise: false,
    };
    let dw = Conv {
        name: "depthwise3x3_64_25x5",
        h: 25,
        w: 5,
        cin: 64,
        cout: 64,
        k: 3,
        pad: 1,
        depthwise: true,
    };
    fresh_input(b, &mut rng);
    conv(&pw, &mut rng, b, &mut clock).log(pw.name);
    fresh_input(b, &mut rng);
    conv(&c3, &mut rng, b, &mut clock).log(c3.name);
    fresh_input(b, &mut rng);
    conv(&dw, &mut rng, b, &mut clock).log(dw.name);
    fresh_input(b, &mut rng);
    fc("fc_1024x12", 1024, 12, &mut rng, b, &mut clock).log("fc_1024x12");
    // DS-CNN block: depthwise 3x3 then pointwise, the second on the first's output.
    fresh_input(b, &mut rng);
    let first = conv(&dw, &mut rng, b, &mut clock);
    let n = dw.h * dw.w * dw.cout;
    let (input, dsp) = (&mut b.input, &b.dsp);
    input[..n].copy_from_slice(&dsp[..n]);
    let second = conv(&pw, &mut rng, b, &mut clock);
    first.add(second).log("dscnn_block_dw_pw_64_25x5");
    // Small-channel shapes of MobileNetV2-0.35 and the narrow configurations: an expand 1x1
    // from 8 channels, a 1x1 of 4 to 8 channels, depthwise 3x3 over a 3x3 map of 192 channels.
    for l in [
        Conv {
            name: "pointwise_8x48_12x12",
            h: 12,
            w: 12,
            cin: 8,
            cout: 48,
            k: 1,
            pad: 0,
            depthwise: false,
        },
        Conv {
            name: "pointwise_4x8_16x16",
            h: 16,
            w: 16,
            cin: 4,
            cout: 8,
            k: 1,
            pad: 0,
            depthwise: false,
        },
        Conv {
            name: "depthwise3x3_192_3x3",
            h: 3,
            w: 3,
            cin: 192,
            cout: 192,
            k: 3,
            pad: 1,
            depthwise: true,
        },
    ] {
        fresh_input(b, &mut rng);
        conv(&l, &mut rng, b, &mut clock).log(l.name);
    }
    defmt::info!("done");
    exit(0)
}

/// CMSIS-NN through its C API (built by `build_cmsis_nn.rs`).
#[cfg(cmsis_nn)]
mod cmsis {
    use super::{Bufs, Conv, IN_ZP, OUT_STAGE, Quant, SCRATCH, measure};
    #[cfg(arm_mve_kernels)]
    use edgeslim_firmware::cmsis_nn::arm_vector_sum_s8;
    use edgeslim_firmware::cmsis_nn::{
        Activation, Context, ConvParams, DwParams, FcParams, PerChannel, PerTensor, Tile,
        arm_convolve_wrapper_s8, arm_convolve_wrapper_s8_get_buffer_size,
        arm_depthwise_conv_wrapper_s8, arm_depthwise_conv_wrapper_s8_get_buffer_size,
        arm_fully_connected_s8, dims,
    };
    use edgeslim_firmware::exit;
    use edgeslim_firmware::icount::Clock;
    use edgeslim_runtime::kernels::Shape;

    fn act() -> Activation {
        Activation {
            min: OUT_STAGE.act_min as i32,
            max: OUT_STAGE.act_max as i32,
        }
    }

    fn check(what: &str, status: i32, need: i32) {
        if status != 0 || need < 0 || need as usize > SCRATCH {
            defmt::error!(
                "CMSIS-NN {=str}: status {=i32}, scratch {=i32} of {=usize} bytes",
                what,
                status,
                need,
                SCRATCH
            );
            exit(1);
        }
    }

    pub(super) fn conv(
        l: &Conv,
        q: &Quant,
        b: &mut Bufs,
        outs: Shape,
        clock: &mut Clock,
    ) -> Option<u64> {
        let in_d = dims(1, l.h, l.w, l.cin);
        let out_d = dims(1, outs.h, outs.w, outs.c);
        let bias_d = dims(1, 1, 1, l.cout);
        let quant = PerChannel {
            multiplier: q.mult.as_ptr(),
            shift: q.shift.as_ptr(),
        };
        let tile = |v: usize| Tile {
            w: v as i32,
            h: v as i32,
        };
        b.scratch.fill(0);
        let ctx = Context {
            buf: b.scratch.as_mut_ptr().cast(),
            size: SCRATCH as i32,
        };
        let (status, need, instr);
        if l.depthwise {
            // CMSIS-NN's depthwise weights are [1, kh, kw, c]; edgeslim's [c, kh, kw, 1].
            let taps = l.k * l.k;
            for c in 0..l.cout {
                for t in 0..taps {
                    b.cm_weights[t * l.cout + c] = b.weights[c * taps + t];
                }
            }
            let f_d = dims(1, l.k, l.k, l.cout);
            let p = DwParams {
                input_offset: -IN_ZP,
                output_offset: OUT_STAGE.zero_point,
                ch_mult: 1,
                stride: tile(1),
                padding: tile(l.pad),
                dilation: tile(1),
                activation: act(),
            };
            // SAFETY: every pointer is to a live value or buffer of the sizes the dims state
            // (input h*w*cin, filter k*k*cout, bias and quant cout, output n, scratch SCRATCH
            // bytes, checked against the size CMSIS-NN asks for), and CMSIS-NN reads and
            // writes only within them.
            need =
                unsafe { arm_depthwise_conv_wrapper_s8_get_buffer_size(&p, &in_d, &f_d, &out_d) };
            let (input, filter, out) = (
                b.input.as_ptr(),
                b.cm_weights.as_ptr(),
                b.cmsis.as_mut_ptr(),
            );
            let mut s = 0;
            instr = measure(clock, || {
                // SAFETY: as above.
                s = unsafe {
                    arm_depthwise_conv_wrapper_s8(
                        &ctx,
                        &p,
                        &quant,
                        &in_d,
                        input,
                        &f_d,
                        filter,
                        &bias_d,
                        q.bias.as_ptr(),
                        &out_d,
                        out,
                    )
                };
            });
            status = s;
        } else {
            let f_d = dims(l.cout, l.k, l.k, l.cin);
            let p = ConvParams {
                input_offset: -IN_ZP,
                output_offset: OUT_STAGE.zero_point,
                stride: tile(1),
                padding: tile(l.pad),
                dilation: tile(1),
                activation: act(),
            };
            // SAFETY: as for the depthwise call.
            need = unsafe { arm_convolve_wrapper_s8_get_buffer_size(&p, &in_d, &f_d, &out_d) };
            let (input, filter, out) = (b.input.as_ptr(), b.weights.as_ptr(), b.cmsis.as_mut_ptr());
            let mut s = 0;
            instr = measure(clock, || {
                // SAFETY: as for the depthwise call.
                s = unsafe {
                    arm_convolve_wrapper_s8(
                        &ctx,
                        &p,
                        &quant,
                        &in_d,
                        input,
                        &f_d,
                        filter,
                        &bias_d,
                        q.bias.as_ptr(),
                        &out_d,
                        out,
                    )
                };
            });
            status = s;
        }
        check(l.name, status, need);
        Some(instr)
    }

    pub(super) fn fc(
        n_in: usize,
        n_out: usize,
        q: &Quant,
        b: &mut Bufs,
        clock: &mut Clock,
    ) -> Option<u64> {
        let in_d = dims(1, 1, 1, n_in);
        let f_d = dims(n_in, 1, 1, n_out);
        let bias_d = dims(1, 1, 1, n_out);
        let out_d = dims(1, 1, 1, n_out);
        let p = FcParams {
            input_offset: -IN_ZP,
            filter_offset: 0,
            output_offset: OUT_STAGE.zero_point,
            activation: act(),
        };
        let quant = PerTensor {
            multiplier: q.mult[0],
            shift: q.shift[0],
        };
        // CMSIS-NN's MVE build (the Cortex-M55) reads per-row kernel sums from the context
        // buffer, which an interpreter computes once when it prepares the layer (TFLite
        // Micro's `Prepare`), so outside the count.
        #[cfg(arm_mve_kernels)]
        {
            if 4 * n_out > SCRATCH || b.scratch.as_ptr() as usize % 4 != 0 {
                defmt::error!("CMSIS-NN kernel sums: scratch too small or not 4-byte aligned");
                exit(1);
            }
            // SAFETY: `scratch` holds at least `n_out` i32 and is 4-byte aligned (both checked
            // just above); filter `n_in * n_out` and bias `n_out` values are live buffers at
            // least that long. CMSIS-NN writes only the `n_out` sums.
            let st = unsafe {
                arm_vector_sum_s8(
                    b.scratch.as_mut_ptr().cast(),
                    n_in as i32,
                    n_out as i32,
                    b.weights.as_ptr(),
                    p.input_offset,
                    p.filter_offset,
                    q.bias.as_ptr(),
                )
            };
            check("kernel sums", st, 0);
        }
        let ctx = Context {
            buf: b.scratch.as_mut_ptr().cast(),
            size: SCRATCH as i32,
        };
        let (input, filter, out) = (b.input.as_ptr(), b.weights.as_ptr(), b.cmsis.as_mut_ptr());
        let mut s = 0;
        let instr = measure(clock, || {
            // SAFETY: input n_in, filter n_in * n_out, bias n_out, output n_out values, all
            // live buffers at least that long; the DSP build needs no scratch.
            s = unsafe {
                arm_fully_connected_s8(
                    &ctx,
                    &p,
                    &quant,
                    &in_d,
                    input,
                    &f_d,
                    filter,
                    &bias_d,
                    q.bias.as_ptr(),
                    &out_d,
                    out,
                )
            };
        });
        check("fully connected", s, 0);
        Some(instr)
    }
}

/// Without `CMSIS_NN_DIR`: nothing to compare with.
#[cfg(not(cmsis_nn))]
mod cmsis {
    use super::{Bufs, Conv, Quant};
    use edgeslim_firmware::icount::Clock;
    use edgeslim_runtime::kernels::Shape;

    pub(super) fn conv(_: &Conv, _: &Quant, _: &mut Bufs, _: Shape, _: &mut Clock) -> Option<u64> {
        None
    }

    pub(super) fn fc(_: usize, _: usize, _: &Quant, _: &mut Bufs, _: &mut Clock) -> Option<u64> {
        None
    }
}
