//! The portable variant: safe Rust for every target, the reference's bytes (see
//! `kernels/common.rs` for what it changes against the reference).

use crate::kernels::common::{BLOCK, dot4, taps};
use crate::kernels::{ChannelQuant, ConvGeometry, OutputStage, Shape};
use crate::quant::multiply_by_quantized_multiplier;

/// Channels of a depthwise block: accumulators kept on the stack (256 bytes).
const DW_BLOCK: usize = 64;

/// Longest window (`kh * kw * in_ch`) gathered into one stack buffer by the im2col path.
const COL_LEN: usize = 512;

/// 2-D convolution; same contract and bytes as [`crate::kernels::reference::conv2d`].
///
/// Four paths, by shape: one input channel per group (depthwise, any channel multiplier);
/// 1x1 of one group (pointwise); one group with a stored window of at most [`COL_LEN`] values
/// (im2col into a stack buffer, slimmed inputs included); anything else (grouped, larger
/// windows) one dot product per kernel tap.
#[allow(clippy::too_many_arguments)]
pub fn conv2d(
    geo: &ConvGeometry,
    input: &[i8],
    in_shape: Shape,
    in_zp: i32,
    weights: &[i8],
    w_shape: [usize; 4],
    chan: ChannelQuant<'_>,
    stage: OutputStage,
    output: &mut [i8],
    out_shape: Shape,
) {
    let groups = geo.groups.max(1);
    let p = Params {
        geo,
        in_shape,
        zp: in_zp as i16,
        weights,
        w_shape,
        chan,
        stage,
        out_shape,
        groups,
        cin_g: in_shape.c / groups,
        cout_g: out_shape.c / groups,
    };
    let [_, kh, kw, i_full] = w_shape;
    let window = kh * kw * i_full;
    if p.cin_g == 1 && groups > 1 && i_full > 0 {
        depthwise(&p, input, output);
    } else if groups == 1 && kh == 1 && kw == 1 {
        pointwise(&p, input, output);
    } else if groups == 1 && kh * kw > 1 && window <= COL_LEN {
        im2col(&p, input, output);
    } else {
        dot_product(&p, input, output);
    }
}

struct Params<'a, 'g> {
    geo: &'g ConvGeometry,
    in_shape: Shape,
    zp: i16,
    weights: &'a [i8],
    w_shape: [usize; 4],
    chan: ChannelQuant<'a>,
    stage: OutputStage,
    out_shape: Shape,
    groups: usize,
    cin_g: usize,
    cout_g: usize,
}

impl Params<'_, '_> {
    /// Requantize `acc` of output channel `o` and apply the output stage.
    #[inline]
    fn finish(&self, o: usize, acc: i32) -> i8 {
        let (bias, mult, shift) = self.chan.get(o);
        self.stage.finish(multiply_by_quantized_multiplier(
            acc.wrapping_add(bias),
            mult,
            shift,
        ))
    }
}

/// Regular, grouped and pointwise convolution: per output position, the window clipped to the
/// input, then for each block of four output channels one dot product per kernel tap (or per
/// kernel row, when a row of taps is contiguous in both input and weights).
fn dot_product(p: &Params<'_, '_>, input: &[i8], output: &mut [i8]) {
    let [_, kh, kw, i_full] = p.w_shape;
    let (geo, ins) = (p.geo, p.in_shape);
    let (cin_g, cout_g) = (p.cin_g, p.cout_g);
    // A kernel row reads `kw` consecutive input pixels of all channels and `kw` consecutive
    // weight columns of `i_full` values: one slice each when every channel is active and
    // there is no horizontal dilation.
    let merge_row = p.groups == 1 && geo.dilation[1] == 1 && i_full == cin_g;
    let w_row = kh * kw * i_full;
    for oy in 0..p.out_shape.h {
        let y0 = oy * geo.stride[0];
        let ky_r = taps(y0, geo.pad[0], geo.dilation[0], kh, ins.h);
        for ox in 0..p.out_shape.w {
            let x0 = ox * geo.stride[1];
            let kx_r = taps(x0, geo.pad[1], geo.dilation[1], kw, ins.w);
            let out_base = (oy * p.out_shape.w + ox) * p.out_shape.c;
            for g in 0..p.groups {
                let mut oc = 0;
                while oc < cout_g {
                    // The last block may be partial: its missing rows repeat the last
                    // channel (computed, not stored), keeping one code path.
                    let o0 = g * cout_g + oc;
                    let last = g * cout_g + cout_g - 1;
                    let rows: [usize; BLOCK] = core::array::from_fn(|j| (o0 + j).min(last) * w_row);
                    let mut acc = [0i32; BLOCK];
                    // An empty column range would leave `ix` past the input: skip the rows.
                    let ky_used = if kx_r.is_empty() { 0..0 } else { ky_r.clone() };
                    for ky in ky_used {
                        let iy = y0 + ky * geo.dilation[0] - geo.pad[0];
                        let tap_row = ky * kw;
                        let add = |acc: &mut [i32; BLOCK], kx: usize, len: usize| {
                            let ix = x0 + kx * geo.dilation[1] - geo.pad[1];
                            let xs = &input[(iy * ins.w + ix) * ins.c + g * cin_g..][..len];
                            let w0 = (tap_row + kx) * i_full;
                            dot4(
                                acc,
                                xs,
                                p.zp,
                                core::array::from_fn(|j| &p.weights[rows[j] + w0..]),
                            );
                        };
                        if merge_row {
                            add(&mut acc, kx_r.start, kx_r.len() * cin_g);
                        } else {
                            for kx in kx_r.clone() {
                                add(&mut acc, kx, cin_g);
                            }
                        }
                    }
                    let n = BLOCK.min(cout_g - oc);
                    for (j, &a) in acc.iter().enumerate().take(n) {
                        output[out_base + o0 + j] = p.finish(o0 + j, a);
                    }
                    oc += BLOCK;
                }
            }
        }
    }
}

/// 1x1 convolution of one group: per output position, the input pixel's channels against
/// each block of four weight rows (a matrix product over positions). Taps in the padding
/// leave the accumulator at zero, as in the reference.
fn pointwise(p: &Params<'_, '_>, input: &[i8], output: &mut [i8]) {
    let i_full = p.w_shape[3];
    let (geo, ins) = (p.geo, p.in_shape);
    let (cin, n_out) = (p.cin_g, p.cout_g);
    for oy in 0..p.out_shape.h {
        let y0 = oy * geo.stride[0];
        let y_in = !taps(y0, geo.pad[0], 1, 1, ins.h).is_empty();
        for ox in 0..p.out_shape.w {
            let x0 = ox * geo.stride[1];
            let inside = y_in && !taps(x0, geo.pad[1], 1, 1, ins.w).is_empty();
            let xs: &[i8] = if inside {
                let (iy, ix) = (y0 - geo.pad[0], x0 - geo.pad[1]);
                &input[(iy * ins.w + ix) * ins.c..][..cin]
            } else {
                &[]
            };
            let out = &mut output[(oy * p.out_shape.w + ox) * p.out_shape.c..][..n_out];
            channel_blocks(p, xs, i_full, out);
        }
    }
}

/// Every output channel `o < out.len()` of one position: `x` against weight row `o` (rows
/// `stride` apart), four channels per [`dot4`]. A partial last block repeats the last row
/// (computed, not stored).
#[inline]
fn channel_blocks(p: &Params<'_, '_>, x: &[i8], stride: usize, out: &mut [i8]) {
    let n_out = out.len();
    let mut o0 = 0;
    while o0 < n_out {
        let mut acc = [0i32; BLOCK];
        dot4(
            &mut acc,
            x,
            p.zp,
            core::array::from_fn(|j| &p.weights[(o0 + j).min(n_out - 1) * stride..]),
        );
        for (j, (o, &a)) in out[o0..].iter_mut().zip(&acc).enumerate() {
            *o = p.finish(o0 + j, a);
        }
        o0 += BLOCK;
    }
}

/// One group, a stored window (`kh * kw * i_full`) of at most [`COL_LEN`] values: per output
/// position the window is gathered into one buffer in the weights' layout
/// (`[kh][kw][i_full]`, the active `in_ch` first in every tap), padding taps and the inactive
/// columns of a slimmed input as the input zero point (so `x - in_zp = 0`: they add nothing,
/// as in the reference, which never reads them), and each block of four output channels is
/// one dot product over it against contiguous weight rows.
fn im2col(p: &Params<'_, '_>, input: &[i8], output: &mut [i8]) {
    let [_, kh, kw, i_full] = p.w_shape;
    let (geo, ins) = (p.geo, p.in_shape);
    let cin = p.cin_g;
    let len = kh * kw * i_full;
    let mut buf = [0i8; COL_LEN];
    let col = &mut buf[..len];
    // Inactive columns are never written below: they keep the zero point from here on.
    col.fill(p.zp as i8);
    let n_out = p.cout_g;
    for oy in 0..p.out_shape.h {
        let y0 = oy * geo.stride[0];
        let ky_r = taps(y0, geo.pad[0], geo.dilation[0], kh, ins.h);
        for ox in 0..p.out_shape.w {
            let x0 = ox * geo.stride[1];
            let kx_r = taps(x0, geo.pad[1], geo.dilation[1], kw, ins.w);
            if ky_r.len() < kh || kx_r.len() < kw {
                col.fill(p.zp as i8);
            }
            if !kx_r.is_empty() {
                for ky in ky_r.clone() {
                    let iy = y0 + ky * geo.dilation[0] - geo.pad[0];
                    let row = &mut col[ky * kw * i_full..(ky + 1) * kw * i_full];
                    if geo.dilation[1] == 1 && cin == i_full {
                        let ix = x0 + kx_r.start - geo.pad[1];
                        let run = kx_r.len() * cin;
                        row[kx_r.start * cin..][..run]
                            .copy_from_slice(&input[(iy * ins.w + ix) * ins.c..][..run]);
                    } else {
                        for kx in kx_r.clone() {
                            let ix = x0 + kx * geo.dilation[1] - geo.pad[1];
                            row[kx * i_full..][..cin]
                                .copy_from_slice(&input[(iy * ins.w + ix) * ins.c..][..cin]);
                        }
                    }
                }
            }
            let out = &mut output[(oy * p.out_shape.w + ox) * p.out_shape.c..][..n_out];
            channel_blocks(p, col, len, out);
        }
    }
}

/// One input channel per group: output channel `o = g * mult + m` reads input channel `g`.
/// Per output position and block of up to [`DW_BLOCK`] groups, each kernel tap adds one
/// contiguous run of input channels against one weight per channel (weights are
/// `[o][kh][kw][i_full]`, so consecutive channels' weights are `mult * kh * kw * i_full`
/// apart).
fn depthwise(p: &Params<'_, '_>, input: &[i8], output: &mut [i8]) {
    let [_, kh, kw, i_full] = p.w_shape;
    let (geo, ins) = (p.geo, p.in_shape);
    let mult = p.cout_g;
    let per_o = kh * kw * i_full;
    let g_stride = mult * per_o;
    for oy in 0..p.out_shape.h {
        let y0 = oy * geo.stride[0];
        let ky_r = taps(y0, geo.pad[0], geo.dilation[0], kh, ins.h);
        for ox in 0..p.out_shape.w {
            let x0 = ox * geo.stride[1];
            let kx_r = taps(x0, geo.pad[1], geo.dilation[1], kw, ins.w);
            let out_base = (oy * p.out_shape.w + ox) * p.out_shape.c;
            let mut g0 = 0;
            while g0 < p.groups {
                let n = DW_BLOCK.min(p.groups - g0);
                for m in 0..mult {
                    let mut acc = [0i32; DW_BLOCK];
                    let acc = &mut acc[..n];
                    for ky in ky_r.clone() {
                        let iy = y0 + ky * geo.dilation[0] - geo.pad[0];
                        for kx in kx_r.clone() {
                            let ix = x0 + kx * geo.dilation[1] - geo.pad[1];
                            let xs = &input[(iy * ins.w + ix) * ins.c + g0..][..n];
                            let w0 = (g0 * mult + m) * per_o + (ky * kw + kx) * i_full;
                            // Chunk `j` starts at the weight of channel `g0 + j`.
                            let ws = p.weights[w0..].chunks(g_stride).map(|c| c[0]);
                            for ((a, &x), w) in acc.iter_mut().zip(xs).zip(ws) {
                                *a = a.wrapping_add((x as i16 - p.zp) as i32 * w as i32);
                            }
                        }
                    }
                    for (j, &a) in acc.iter().enumerate() {
                        let o = (g0 + j) * mult + m;
                        output[out_base + o] = p.finish(o, a);
                    }
                }
                g0 += n;
            }
        }
    }
}
