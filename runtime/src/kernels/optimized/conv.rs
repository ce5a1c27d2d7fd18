use super::{BLOCK, dot4, taps};
use crate::kernels::{ChannelQuant, ConvGeometry, OutputStage, Shape};
use crate::quant::multiply_by_quantized_multiplier;

/// Channels of a depthwise block: accumulators kept on the stack (256 bytes).
const DW_BLOCK: usize = 64;

/// 2-D convolution; same contract and bytes as [`crate::kernels::reference::conv2d`].
///
/// One channel per group (depthwise, any channel multiplier) takes the depthwise path; every
/// other convolution (regular, grouped, pointwise) the dot-product path.
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
    if p.cin_g == 1 && groups > 1 && w_shape[3] > 0 {
        depthwise(&p, input, output);
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
        self.stage
            .finish(multiply_by_quantized_multiplier(acc.wrapping_add(bias), mult, shift))
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
                    let rows: [usize; BLOCK] =
                        core::array::from_fn(|j| (o0 + j).min(last) * w_row);
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
                            let d = dot4(
                                xs,
                                p.zp,
                                core::array::from_fn(|j| &p.weights[rows[j] + w0..]),
                            );
                            for (a, d) in acc.iter_mut().zip(d) {
                                *a = a.wrapping_add(d);
                            }
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
