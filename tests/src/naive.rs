//! Naive reference implementations, written from the documented semantics of the kernels
//! (`runtime/src/kernels/reference/*.rs` doc comments, `quant.rs` module docs, `FORMAT.md`),
//! not from their code: wide integer math (i64 / i128), exact rational rounding, padded
//! copies instead of bounds checks, and a float softmax.
//!
//! Every integer function panics when an accumulator leaves the i32 range: the runtime
//! accumulates in i32 and the generators of the tests must bound the fan-in so that it never
//! wraps; a panic here is a bug of the generator, not of the runtime.

use edgeslim_runtime::format::{OpKind, attr};
use edgeslim_runtime::ops::{
    add::word as add_word, concat::word as concat_word, lut::word as lut_word,
    mul::word as mul_word, pad::word as pad_word, pool::word as pool_word,
    prelu::word as prelu_word, softmax::word as softmax_word,
};
use edgeslim_runtime::writer::{EntryDef, ModelDef, OpDef};

/// `num / den` rounded to nearest, ties away from zero (`den > 0`), exactly.
pub fn div_round_half_away(num: i128, den: i128) -> i128 {
    assert!(den > 0);
    let q = (2 * num.abs() + den) / (2 * den);
    if num < 0 { -q } else { q }
}

/// `num / den` rounded to nearest, ties toward +infinity (`den > 0`), exactly:
/// `floor(num / den + 1/2)`.
pub fn div_round_half_up(num: i128, den: i128) -> i128 {
    assert!(den > 0);
    (2 * num + den).div_euclid(2 * den)
}

/// The accumulator as i32, or a panic naming the generator bug.
pub fn acc_i32(acc: i128) -> i32 {
    i32::try_from(acc).unwrap_or_else(|_| {
        panic!("accumulator {acc} overflows i32: the test generator must bound the fan-in")
    })
}

/// The requantization of `quant.rs` (TFLM's `MultiplyByQuantizedMultiplier` built with
/// `TFLITE_SINGLE_ROUNDING`) in exact rational arithmetic: `M = multiplier * 2^(shift - 31)`,
/// shift clamped to `-31..=30`; `x * M` rounded once to nearest, ties toward +infinity,
/// saturated to i32.
pub fn requant(x: i32, multiplier: i32, shift: i32) -> i32 {
    requant_div(x as i128, multiplier, shift, 1)
}

/// `x * M / divisor` rounded once as [`requant`] (`divisor > 0`), saturated to i32.
pub fn requant_div(x: i128, multiplier: i32, shift: i32, divisor: i128) -> i32 {
    let s = shift.clamp(-31, 30);
    div_round_half_up(x * multiplier as i128, divisor << (31 - s) as u32)
        .clamp(i32::MIN as i128, i32::MAX as i128) as i32
}

/// TFLM's default two-rounding requantization (gemmlowp's SRDHM, then a rounding divide by a
/// power of two, ties away from zero), which this runtime used before: kept to show the
/// difference in the tests.
pub fn requant_two_roundings(x: i32, multiplier: i32, shift: i32) -> i32 {
    let s = shift.clamp(-31, 30);
    let xl = (x as i128 * (1i128 << s.max(0))).clamp(i32::MIN as i128, i32::MAX as i128);
    let y = div_round_half_up(xl * multiplier as i128, 1i128 << 31);
    div_round_half_away(y, 1i128 << (-s).max(0)) as i32
}

/// Output stage: add the zero point, clamp to the activation range (int8 bounds).
pub fn finish(v: i32, zero_point: i32, act: (i8, i8)) -> i8 {
    (v as i64 + zero_point as i64).clamp(act.0 as i64, act.1 as i64) as i8
}

/// Per-channel `(bias, multiplier, shift)`.
pub type Chan = (i32, i32, i32);

/// Output quantization of a kernel: zero point and activation clamp.
#[derive(Debug, Clone, Copy)]
pub struct OutQ {
    /// Output zero point.
    pub zp: i32,
    /// Activation clamp.
    pub act: (i8, i8),
}

/// Convolution geometry.
#[derive(Debug, Clone, Copy)]
pub struct Conv {
    /// `[vertical, horizontal]`.
    pub stride: [usize; 2],
    /// `[top, left]`.
    pub pad: [usize; 2],
    /// `[vertical, horizontal]`.
    pub dilation: [usize; 2],
    /// Active groups.
    pub groups: usize,
}

/// `x - zp` of an `[h, w, c]` tensor copied into a zero-padded `[h + top + extra_h,
/// w + left + extra_w, c]` array (padding is real zero).
fn padded(
    x: &[i8],
    [h, w, c]: [usize; 3],
    zp: i32,
    [top, left]: [usize; 2],
    [eh, ew]: [usize; 2],
) -> (Vec<i64>, usize, usize) {
    let (ph, pw) = (h + top + eh, w + left + ew);
    let mut p = vec![0i64; ph * pw * c];
    for y in 0..h {
        for xx in 0..w {
            for ch in 0..c {
                p[((y + top) * pw + xx + left) * c + ch] =
                    x[(y * w + xx) * c + ch] as i64 - zp as i64;
            }
        }
    }
    (p, ph, pw)
}

/// Conv2d, NHWC, `weights` dense `[o, kh, kw, i_per_group]` where `o` output channels are
/// split into `groups` consecutive groups and group `g` reads input channels
/// `g * c / groups ..`. Output `[oh, ow, o]`.
#[allow(clippy::too_many_arguments)]
pub fn conv2d(
    x: &[i8],
    in_shape: [usize; 3],
    in_zp: i32,
    weights: &[i8],
    wshape: [usize; 4],
    geo: Conv,
    chans: &[Chan],
    q: OutQ,
    [oh, ow]: [usize; 2],
) -> Vec<i8> {
    let [_, _, c] = in_shape;
    let [o_n, kh, kw, ig] = wshape;
    assert_eq!(weights.len(), o_n * kh * kw * ig);
    let groups = geo.groups;
    let (cin_g, cout_g) = (c / groups, o_n / groups);
    assert!(cin_g <= ig, "weights have fewer input columns than a group");
    // Enough padding below and right that every window of every output is inside.
    let need_h = (oh - 1) * geo.stride[0] + (kh - 1) * geo.dilation[0] + 1;
    let need_w = (ow - 1) * geo.stride[1] + (kw - 1) * geo.dilation[1] + 1;
    let eh = need_h.saturating_sub(in_shape[0] + geo.pad[0]);
    let ew = need_w.saturating_sub(in_shape[1] + geo.pad[1]);
    let (p, _, pw) = padded(x, in_shape, in_zp, geo.pad, [eh, ew]);
    let mut out = vec![0i8; oh * ow * o_n];
    for (o, &(bias, m, s)) in chans.iter().enumerate().take(o_n) {
        let g = o / cout_g;
        for oy in 0..oh {
            for ox in 0..ow {
                let mut acc = bias as i128;
                for ky in 0..kh {
                    for kx in 0..kw {
                        let py = oy * geo.stride[0] + ky * geo.dilation[0];
                        let px = ox * geo.stride[1] + kx * geo.dilation[1];
                        for i in 0..cin_g {
                            let xv = p[(py * pw + px) * c + g * cin_g + i];
                            let wv = weights[((o * kh + ky) * kw + kx) * ig + i] as i64;
                            acc += (xv * wv) as i128;
                        }
                    }
                }
                out[(oy * ow + ox) * o_n + o] = finish(requant(acc_i32(acc), m, s), q.zp, q.act);
            }
        }
    }
    out
}

/// Transposed convolution by ONNX's scatter definition: input `(iy, ix)` adds `x * w[o, ky,
/// kx, i]` into output `(iy * stride + ky * dilation - pad, ...)` where that lies inside the
/// output; then bias, requantization and the output stage per channel.
#[allow(clippy::too_many_arguments)]
pub fn conv_transpose(
    x: &[i8],
    [h, w, c]: [usize; 3],
    in_zp: i32,
    weights: &[i8],
    [o_n, kh, kw, ig]: [usize; 4],
    geo: Conv,
    chans: &[Chan],
    q: OutQ,
    [oh, ow]: [usize; 2],
) -> Vec<i8> {
    assert_eq!(weights.len(), o_n * kh * kw * ig);
    let (cin_g, cout_g) = (c / geo.groups, o_n / geo.groups);
    let mut acc: Vec<i128> = (0..oh * ow * o_n)
        .map(|j| chans[j % o_n].0 as i128)
        .collect();
    for iy in 0..h {
        for ix in 0..w {
            for o in 0..o_n {
                let g = o / cout_g;
                for ky in 0..kh {
                    for kx in 0..kw {
                        let oy =
                            (iy * geo.stride[0] + ky * geo.dilation[0]) as i64 - geo.pad[0] as i64;
                        let ox =
                            (ix * geo.stride[1] + kx * geo.dilation[1]) as i64 - geo.pad[1] as i64;
                        if oy < 0 || ox < 0 || oy >= oh as i64 || ox >= ow as i64 {
                            continue;
                        }
                        for i in 0..cin_g {
                            let xv = x[(iy * w + ix) * c + g * cin_g + i] as i64 - in_zp as i64;
                            let wv = weights[((o * kh + ky) * kw + kx) * ig + i] as i64;
                            acc[(oy as usize * ow + ox as usize) * o_n + o] += (xv * wv) as i128;
                        }
                    }
                }
            }
        }
    }
    acc.iter()
        .enumerate()
        .map(|(j, &a)| {
            let (_, m, s) = chans[j % o_n];
            finish(requant(acc_i32(a), m, s), q.zp, q.act)
        })
        .collect()
}

/// Maximum (or with `min`, minimum) of the two inputs each requantized to the output scale.
pub fn minmax(min: bool, a: &[i8], ra: Rs, b: &[i8], rb: Rs, q: OutQ) -> Vec<i8> {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| {
            let p = requant(x as i32 - ra.0, ra.1, ra.2);
            let r = requant(y as i32 - rb.0, rb.1, rb.2);
            finish(if min { p.min(r) } else { p.max(r) }, q.zp, q.act)
        })
        .collect()
}

/// Channel selection: output channel `j` is input channel `start + j * step`, requantized.
pub fn gather_channels(
    x: &[i8],
    in_c: usize,
    start: usize,
    step: usize,
    out_c: usize,
    r: Rs,
    q: OutQ,
) -> Vec<i8> {
    let positions = x.len() / in_c;
    let mut out = Vec::with_capacity(positions * out_c);
    for p in 0..positions {
        for j in 0..out_c {
            let v = x[p * in_c + start + j * step] as i32 - r.0;
            out.push(finish(requant(v, r.1, r.2), q.zp, q.act));
        }
    }
    out
}

/// Axis permutation: output element `(o0, o1, o2)` is the input element whose axis `perm[k]`
/// (0 h, 1 w, 2 c) has index `ok`.
pub fn transpose(x: &[i8], dims: [usize; 3], perm: [usize; 3]) -> Vec<i8> {
    let od = [dims[perm[0]], dims[perm[1]], dims[perm[2]]];
    let mut out = Vec::with_capacity(x.len());
    for a in 0..od[0] {
        for b in 0..od[1] {
            for cc in 0..od[2] {
                let mut idx = [0usize; 3];
                idx[perm[0]] = a;
                idx[perm[1]] = b;
                idx[perm[2]] = cc;
                out.push(x[(idx[0] * dims[1] + idx[1]) * dims[2] + idx[2]]);
            }
        }
    }
    out
}

/// Fully connected over `positions x in_ch` with dense weights `[o, positions, in_ch]`.
pub fn fully_connected(
    x: &[i8],
    positions: usize,
    in_ch: usize,
    in_zp: i32,
    weights: &[i8],
    chans: &[Chan],
    q: OutQ,
) -> Vec<i8> {
    let per_o = positions * in_ch;
    assert_eq!(x.len(), per_o);
    chans
        .iter()
        .enumerate()
        .map(|(o, &(bias, m, s))| {
            let acc: i128 = bias as i128
                + (0..per_o)
                    .map(|k| (x[k] as i128 - in_zp as i128) * weights[o * per_o + k] as i128)
                    .sum::<i128>();
            finish(requant(acc_i32(acc), m, s), q.zp, q.act)
        })
        .collect()
}

/// `(zero_point, multiplier, shift)` of one rescaled input.
pub type Rs = (i32, i32, i32);

/// TFLM int8 Add over any number of inputs: `sum_i requant((x_i - zp_i) << left_shift, M_i)`
/// (saturated to i32), then `* M_out`, output stage. The output is as long as the first input.
pub fn add(inputs: &[(&[i8], Rs)], left_shift: i32, out: (i32, i32), q: OutQ) -> Vec<i8> {
    (0..inputs[0].0.len())
        .map(|j| {
            let sum: i128 = inputs
                .iter()
                .map(|(x, r)| {
                    let v = acc_i32((x[j] as i128 - r.0 as i128) << left_shift);
                    requant(v, r.1, r.2) as i128
                })
                .sum();
            let sum = sum.clamp(i32::MIN as i128, i32::MAX as i128) as i32;
            finish(requant(sum, out.0, out.1), q.zp, q.act)
        })
        .collect()
}

/// Pool geometry.
#[derive(Debug, Clone, Copy)]
pub struct Pool {
    /// Window `[h, w]`.
    pub kernel: [usize; 2],
    /// Stride.
    pub stride: [usize; 2],
    /// `[top, left]` padding.
    pub pad: [usize; 2],
    /// AvgPool divides by the full window.
    pub count_include_pad: bool,
}

/// In-bounds `(y, x)` positions of the window of output `(oy, ox)`.
fn window(g: &Pool, [h, w]: [usize; 2], oy: usize, ox: usize) -> Vec<(usize, usize)> {
    let mut v = Vec::new();
    for ky in 0..g.kernel[0] {
        for kx in 0..g.kernel[1] {
            let y = (oy * g.stride[0] + ky) as i64 - g.pad[0] as i64;
            let xx = (ox * g.stride[1] + kx) as i64 - g.pad[1] as i64;
            if (0..h as i64).contains(&y) && (0..w as i64).contains(&xx) {
                v.push((y as usize, xx as usize));
            }
        }
    }
    v
}

/// Max pooling: max of the in-bounds window (an empty window counts as real zero), then
/// `(max - zp) * M`, output stage.
pub fn max_pool(
    x: &[i8],
    [h, w, c]: [usize; 3],
    g: Pool,
    r: Rs,
    q: OutQ,
    [oh, ow]: [usize; 2],
) -> Vec<i8> {
    let mut out = vec![0i8; oh * ow * c];
    for oy in 0..oh {
        for ox in 0..ow {
            let win = window(&g, [h, w], oy, ox);
            for ch in 0..c {
                let d = win
                    .iter()
                    .map(|&(y, xx)| x[(y * w + xx) * c + ch] as i32 - r.0)
                    .max()
                    .unwrap_or(0);
                out[(oy * ow + ox) * c + ch] = finish(requant(d, r.1, r.2), q.zp, q.act);
            }
        }
    }
    out
}

/// Average pooling: `sum(x - zp) * M / count` rounded once (count: in-bounds positions, or
/// the full window with `count_include_pad`), output stage.
pub fn avg_pool(
    x: &[i8],
    [h, w, c]: [usize; 3],
    g: Pool,
    r: Rs,
    q: OutQ,
    [oh, ow]: [usize; 2],
) -> Vec<i8> {
    let mut out = vec![0i8; oh * ow * c];
    for oy in 0..oh {
        for ox in 0..ow {
            let win = window(&g, [h, w], oy, ox);
            let count = if g.count_include_pad {
                g.kernel[0] * g.kernel[1]
            } else {
                win.len()
            };
            for ch in 0..c {
                let sum: i128 = win
                    .iter()
                    .map(|&(y, xx)| x[(y * w + xx) * c + ch] as i128 - r.0 as i128)
                    .sum();
                acc_i32(sum);
                let v = if count == 0 {
                    0
                } else {
                    requant_div(sum, r.1, r.2, count as i128)
                };
                out[(oy * ow + ox) * c + ch] = finish(v, q.zp, q.act);
            }
        }
    }
    out
}

/// Global average pooling: `sum(x - zp)` over all positions `* M` (the `1 / (h w)` is in
/// `M`), output stage.
pub fn global_avg_pool(x: &[i8], [h, w, c]: [usize; 3], r: Rs, q: OutQ) -> Vec<i8> {
    (0..c)
        .map(|ch| {
            let sum: i128 = (0..h * w)
                .map(|p| x[p * c + ch] as i128 - r.0 as i128)
                .sum();
            finish(requant(acc_i32(sum), r.1, r.2), q.zp, q.act)
        })
        .collect()
}

/// Channel concatenation of `(data, channels, rescale)` inputs over `positions`.
pub fn concat(inputs: &[(Vec<i8>, usize, Rs)], positions: usize, q: OutQ) -> Vec<i8> {
    let mut out = Vec::new();
    for p in 0..positions {
        for (data, c, r) in inputs {
            for &x in &data[p * c..(p + 1) * c] {
                out.push(finish(requant(x as i32 - r.0, r.1, r.2), q.zp, q.act));
            }
        }
    }
    out
}

/// Table lookup: the 256 table bytes are the little-endian bytes of `words`, entry `x + 128`
/// for input `x`.
pub fn lut(x: &[i8], words: &[i32]) -> Vec<i8> {
    let table: Vec<i8> = words
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .map(|b| b as i8)
        .collect();
    assert_eq!(table.len(), 256, "a table holds 256 entries");
    x.iter()
        .map(|&v| table[(v as i32 + 128) as usize])
        .collect()
}

/// Element-wise product `(x - zx) * (y - zy)` requantized; `y` is one value per channel
/// (`channels` of them) or as long as `x`.
pub fn mul(x: &[i8], zx: i32, y: &[i8], channels: usize, r: Rs, q: OutQ) -> Vec<i8> {
    let per_channel = y.len() == channels && x.len() != channels;
    (0..x.len())
        .map(|j| {
            let b = if per_channel { y[j % channels] } else { y[j] };
            let p = (x[j] as i64 - zx as i64) * (b as i64 - r.0 as i64);
            finish(requant(acc_i32(p as i128), r.1, r.2), q.zp, q.act)
        })
        .collect()
}

/// PRelu: `v = x - zx`; non-negative `v` requantized by `pos`, negative `v * alpha[c]` by the
/// channel's `(multiplier, shift)`.
pub fn prelu(x: &[i8], zx: i32, pos: (i32, i32), alpha: &[i8], ch: &[Chan], q: OutQ) -> Vec<i8> {
    let c = ch.len();
    (0..x.len())
        .map(|j| {
            let v = x[j] as i32 - zx;
            let r = if v >= 0 {
                requant(v, pos.0, pos.1)
            } else {
                let (_, m, s) = ch[j % c];
                requant(acc_i32(v as i128 * alpha[j % c] as i128), m, s)
            };
            finish(r, q.zp, q.act)
        })
        .collect()
}

/// Spatial padding, from ONNX's definition of the modes: output `(oy, ox)` reads input
/// `(oy - top, ox - left)`; outside the input, mode 0 gives `value`, mode 1 (reflect) the
/// mirror image `-j` or `2 (n - 1) - j`, mode 2 (edge) the nearest edge. Copies are requantized.
#[allow(clippy::too_many_arguments)]
pub fn pad(
    x: &[i8],
    [h, w, c]: [usize; 3],
    [top, left]: [usize; 2],
    mode: u32,
    value: i8,
    r: Rs,
    q: OutQ,
    [oh, ow]: [usize; 2],
) -> Vec<i8> {
    let src = |i: usize, p: usize, n: usize| -> Option<usize> {
        let j = i as i64 - p as i64;
        let n = n as i64;
        let k = if (0..n).contains(&j) {
            j
        } else {
            match mode {
                0 => return None,
                1 if j < 0 => -j,
                1 => 2 * (n - 1) - j,
                _ => j.clamp(0, n - 1),
            }
        };
        assert!(
            (0..n).contains(&k),
            "reflect padding must be smaller than the input"
        );
        Some(k as usize)
    };
    let mut out = Vec::with_capacity(oh * ow * c);
    for oy in 0..oh {
        for ox in 0..ow {
            for ch in 0..c {
                out.push(match (src(oy, top, h), src(ox, left, w)) {
                    (Some(y), Some(xx)) => {
                        let v = x[(y * w + xx) * c + ch] as i32 - r.0;
                        finish(requant(v, r.1, r.2), q.zp, q.act)
                    }
                    _ => value,
                });
            }
        }
    }
    out
}

/// Resize, from ONNX's formulas in exact rational arithmetic: the input coordinate of output
/// `x` is `(x + 1/2) * den / num - 1/2` (half_pixel; pytorch_half_pixel the same but 0 for a
/// one-position output), `x * den / num` (asymmetric) or `x * (n_in - 1) / (n_out - 1)`
/// (align_corners). Nearest rounds it by its rule and clamps; linear clamps it to the input,
/// takes the two neighbours and weighs them by the fraction rounded to 1/1024 (half up).
#[allow(clippy::too_many_arguments)]
pub fn resize(
    x: &[i8],
    [h, w, c]: [usize; 3],
    linear: bool,
    coord: u32,
    nearest: u32,
    scale: [[u32; 2]; 2],
    r: Rs,
    q: OutQ,
    [oh, ow]: [usize; 2],
) -> Vec<i8> {
    // Coordinate as (numerator, denominator) in i128.
    let coordinate = |i: usize, [num, den]: [u32; 2], n_in: usize, n_out: usize| -> (i128, i128) {
        let (i, num, den) = (i as i128, num as i128, den as i128);
        match coord {
            0 => (2 * i * den + den - num, 2 * num),
            1 if n_out > 1 => (2 * i * den + den - num, 2 * num),
            2 => (i * den, num),
            3 if n_out > 1 => (i * (n_in as i128 - 1), n_out as i128 - 1),
            _ => (0, 1),
        }
    };
    let pick = |(p, d): (i128, i128), n: usize| -> usize {
        let f = p.div_euclid(d);
        let twice = 2 * (p - f * d);
        let up = match nearest {
            0 => twice > d,
            1 => twice >= d,
            2 => false,
            _ => twice > 0,
        };
        (f + up as i128).clamp(0, n as i128 - 1) as usize
    };
    let taps = |(p, d): (i128, i128), n: usize| -> (usize, usize, i128) {
        let p = p.clamp(0, (n as i128 - 1) * d);
        let f = p.div_euclid(d);
        let wgt = div_round_half_up((p - f * d) * 1024, d);
        (f as usize, (f as usize + 1).min(n - 1), wgt)
    };
    let mut out = Vec::with_capacity(oh * ow * c);
    for oy in 0..oh {
        let cy = coordinate(oy, scale[0], h, oh);
        for ox in 0..ow {
            let cx = coordinate(ox, scale[1], w, ow);
            for ch in 0..c {
                let at = |y: usize, xx: usize| (x[(y * w + xx) * c + ch] as i32 - r.0) as i128;
                let acc = if linear {
                    let (y0, y1, wy) = taps(cy, h);
                    let (x0, x1, wx) = taps(cx, w);
                    (at(y0, x0) * (1024 - wx) + at(y0, x1) * wx) * (1024 - wy)
                        + (at(y1, x0) * (1024 - wx) + at(y1, x1) * wx) * wy
                } else {
                    at(pick(cy, h), pick(cx, w))
                };
                out.push(finish(requant(acc_i32(acc), r.1, r.2), q.zp, q.act));
            }
        }
    }
    out
}

/// The real input scale encoded by softmax parameters: `beta_multiplier * 2^(shift - 31)`
/// is `scale * 2^26` (5 integer bits of the scaled difference).
pub fn softmax_scale(beta_multiplier: i32, beta_left_shift: i32) -> f64 {
    beta_multiplier as f64 * 2f64.powi(beta_left_shift - 31) / 2f64.powi(26)
}

/// Float softmax over rows of `row_len`, quantized to the int8 output (scale 1/256, zero
/// point -128): `clamp(round(p * 256) - 128)`.
pub fn softmax_f64(x: &[i8], row_len: usize, scale: f64) -> Vec<i8> {
    let mut out = Vec::with_capacity(x.len());
    for row in x.chunks(row_len) {
        let max = *row.iter().max().expect("non-empty row") as f64;
        let e: Vec<f64> = row
            .iter()
            .map(|&v| ((v as f64 - max) * scale).exp())
            .collect();
        let sum: f64 = e.iter().sum();
        out.extend(
            e.iter()
                .map(|&v| ((v / sum * 256.0).round() - 128.0).clamp(-128.0, 127.0) as i8),
        );
    }
    out
}

/// ONNX `QuantizeLinear`: `clamp(round_half_even(x / scale) + zp)` with the division in f32;
/// NaN gives the zero point.
pub fn quantize(x: &[f32], scale: f32, zp: i32) -> Vec<i8> {
    x.iter()
        .map(|&v| {
            let d = v / scale; // the f32 division is part of the definition
            let r = if d.is_nan() {
                0.0
            } else {
                (d as f64).round_ties_even()
            };
            (r + zp as f64).clamp(-128.0, 127.0) as i8
        })
        .collect()
}

/// ONNX `DequantizeLinear`: `(q - zp) * scale`, one f32 rounding.
pub fn dequantize(q: &[i8], scale: f32, zp: i32) -> Vec<f32> {
    q.iter()
        .map(|&v| ((v as i64 - zp as i64) as f64 * scale as f64) as f32)
        .collect()
}

// ---------------------------------------------------------------------------------------
// Whole-model reference.
// ---------------------------------------------------------------------------------------

/// The width-entry key of `op` under per-segment width indices `widths`.
pub fn key(def: &ModelDef, op: &OpDef, widths: &[usize]) -> usize {
    let own = widths[op.segment];
    match op.in_segment {
        Some(s) => widths[s] * def.segments[op.segment].widths.len() + own,
        None => own,
    }
}

/// The groups a conv uses at entry `e`: depthwise convs follow the active input channels.
pub fn conv_groups(op: &OpDef, e: &EntryDef) -> usize {
    if op.attrs[attr::DEPTHWISE] == 1 {
        e.in_ch
    } else {
        op.attrs[attr::GROUPS] as usize
    }
}

/// First-k slice of conv weights: `W[:out_ch, :, :, :i]` of the stored `[o, kh, kw, i_full]`
/// tensor, with `i` the active input channels per group (1 for depthwise).
pub fn slice_conv_weights(op: &OpDef, e: &EntryDef) -> (Vec<i8>, [usize; 4]) {
    let [_, kh, kw, i_full] = op.wshape;
    let i = if op.attrs[attr::DEPTHWISE] == 1 {
        1
    } else {
        e.in_ch / conv_groups(op, e)
    };
    let mut w = Vec::with_capacity(e.out_ch * kh * kw * i);
    for o in 0..e.out_ch {
        for k in 0..kh * kw {
            let row = (o * kh * kw + k) * i_full;
            w.extend_from_slice(&op.weights[row..row + i]);
        }
    }
    (w, [e.out_ch, kh, kw, i])
}

/// First-k slice of fully connected weights: `W[:out_ch, :, :in_ch]` of the stored
/// `[o, positions, i_full]` tensor.
pub fn slice_fc_weights(op: &OpDef, e: &EntryDef) -> (Vec<i8>, [usize; 4]) {
    let [_, positions, i_full, _] = op.wshape;
    let mut w = Vec::with_capacity(e.out_ch * positions * e.in_ch);
    for o in 0..e.out_ch {
        for p in 0..positions {
            let row = (o * positions + p) * i_full;
            w.extend_from_slice(&op.weights[row..row + e.in_ch]);
        }
    }
    (w, [e.out_ch, positions, e.in_ch, 1])
}

fn chans(e: &EntryDef) -> Vec<Chan> {
    e.channels
        .iter()
        .take(e.out_ch)
        .map(|c| (c.bias, c.multiplier, c.shift))
        .collect()
}

fn outq(e: &EntryDef) -> OutQ {
    OutQ {
        zp: e.out_zp,
        act: e.act,
    }
}

/// One output of the whole-model reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefOutput {
    /// int8 data, NHWC at the active width.
    pub data: Vec<i8>,
    /// Largest allowed difference in quantization steps: 0 (exact), 1 (a softmax output,
    /// whose reference is float), `u8::MAX` (computed from a softmax: not checked).
    pub tolerance: u8,
}

impl RefOutput {
    /// Whether `got` matches within the tolerance (and has the same length).
    pub fn matches(&self, got: &[i8]) -> bool {
        got.len() == self.data.len()
            && got
                .iter()
                .zip(&self.data)
                .all(|(&g, &r)| (g as i32 - r as i32).unsigned_abs() <= self.tolerance as u32)
    }
}

/// Run `def` on int8 `input` with width index `widths[s]` for each segment `s` and the tasks
/// of bit mask `tasks`. Returns one entry per model output (tasks in order, each task's
/// outputs in order): the outputs of the tasks that ran, `None` for the others. Independent of `Model` and `Interpreter`: it reads the
/// def's own entries and slices the weights itself.
pub fn run_model(
    def: &ModelDef,
    widths: &[usize],
    tasks: u32,
    input: &[i8],
) -> Vec<Option<RefOutput>> {
    assert_eq!(widths.len(), def.segments.len());
    // Every encoder stage runs; a decoder when one of its tasks is selected.
    let mut active_segments: Vec<bool> = (0..def.segments.len())
        .map(|s| s < def.encoder_segments.max(1))
        .collect();
    for (i, t) in def.tasks.iter().enumerate() {
        if tasks & (1 << i) != 0 {
            active_segments[t.segment] = true;
        }
    }
    let mut vals: Vec<Option<Vec<i8>>> = vec![None; def.tensors.len()];
    let mut tol = vec![0u8; def.tensors.len()];
    vals[def.input] = Some(input.to_vec());
    for op in &def.ops {
        if !active_segments[op.segment] {
            continue;
        }
        let e = &op.entries[key(def, op, widths)];
        let get = |t: usize| -> &Vec<i8> { vals[t].as_ref().expect("input computed before use") };
        let x = get(op.inputs[0]);
        let [ih, iw, _] = def.tensors[op.inputs[0]].shape;
        let [oh, ow, _] = def.tensors[op.output].shape;
        let in_shape = [ih, iw, e.in_ch];
        if op.kind != OpKind::Reshape {
            assert_eq!(x.len(), ih * iw * e.in_ch, "op input has the active size");
        }
        let a = &op.attrs;
        let extra = |k: usize| e.extra[k];
        let pool_geo = Pool {
            kernel: [a[attr::KERNEL_H] as usize, a[attr::KERNEL_W] as usize],
            stride: [a[attr::STRIDE_H] as usize, a[attr::STRIDE_W] as usize],
            pad: [a[attr::PAD_TOP] as usize, a[attr::PAD_LEFT] as usize],
            count_include_pad: a[attr::COUNT_INCLUDE_PAD] == 1,
        };
        let pool_rs = || (e.in_zp, extra(pool_word::M), extra(pool_word::S));
        let y = match op.kind {
            OpKind::Conv2d => {
                let (w, ws) = slice_conv_weights(op, e);
                let geo = Conv {
                    stride: [a[attr::STRIDE_H] as usize, a[attr::STRIDE_W] as usize],
                    pad: [a[attr::PAD_TOP] as usize, a[attr::PAD_LEFT] as usize],
                    dilation: [a[attr::DIL_H] as usize, a[attr::DIL_W] as usize],
                    groups: conv_groups(op, e),
                };
                conv2d(
                    x,
                    in_shape,
                    e.in_zp,
                    &w,
                    ws,
                    geo,
                    &chans(e),
                    outq(e),
                    [oh, ow],
                )
            }
            OpKind::FullyConnected => {
                let (w, _) = slice_fc_weights(op, e);
                fully_connected(x, ih * iw, e.in_ch, e.in_zp, &w, &chans(e), outq(e))
            }
            OpKind::Add => {
                let vals: Vec<&Vec<i8>> = op.inputs.iter().map(|&t| get(t)).collect();
                let parts: Vec<(&[i8], Rs)> = vals
                    .iter()
                    .enumerate()
                    .map(|(k, v)| {
                        let (zp, m, s) = add_word::input(k);
                        let zp = zp.map_or(e.in_zp, extra);
                        (v.as_slice(), (zp, extra(m), extra(s)))
                    })
                    .collect();
                add(
                    &parts,
                    extra(add_word::LEFT_SHIFT),
                    (extra(add_word::MO), extra(add_word::SO)),
                    outq(e),
                )
            }
            OpKind::MaxPool => max_pool(x, in_shape, pool_geo, pool_rs(), outq(e), [oh, ow]),
            OpKind::AvgPool => avg_pool(x, in_shape, pool_geo, pool_rs(), outq(e), [oh, ow]),
            OpKind::GlobalAvgPool => global_avg_pool(x, in_shape, pool_rs(), outq(e)),
            OpKind::Reshape => x.clone(),
            OpKind::Concat => {
                let parts: Vec<(Vec<i8>, usize, Rs)> = op
                    .inputs
                    .iter()
                    .enumerate()
                    .map(|(k, &t)| {
                        let b = k * concat_word::PER_INPUT;
                        let ch = extra(b + concat_word::CH) as usize;
                        let r = (
                            extra(b + concat_word::ZP),
                            extra(b + concat_word::M),
                            extra(b + concat_word::S),
                        );
                        (get(t).clone(), ch, r)
                    })
                    .collect();
                concat(&parts, oh * ow, outq(e))
            }
            OpKind::Lut => lut(
                x,
                &e.extra[lut_word::TABLE..lut_word::TABLE + lut_word::COUNT],
            ),
            OpKind::Mul => {
                let y = get(op.inputs[1]);
                let r = (
                    extra(mul_word::IN2_ZP),
                    extra(mul_word::M),
                    extra(mul_word::S),
                );
                mul(x, e.in_zp, y, e.in_ch, r, outq(e))
            }
            OpKind::PRelu => {
                let alpha: Vec<i8> = op.weights[..e.out_ch].to_vec();
                let pos = (extra(prelu_word::M_POS), extra(prelu_word::S_POS));
                prelu(x, e.in_zp, pos, &alpha, &chans(e), outq(e))
            }
            OpKind::Pad => pad(
                x,
                in_shape,
                [a[attr::PAD_TOP] as usize, a[attr::PAD_LEFT] as usize],
                a[edgeslim_runtime::ops::pad::attr::MODE],
                extra(pad_word::VALUE) as i8,
                (e.in_zp, extra(pad_word::M), extra(pad_word::S)),
                outq(e),
                [oh, ow],
            ),
            OpKind::Resize => {
                use edgeslim_runtime::ops::resize::{attr as ra, word as rw};
                resize(
                    x,
                    in_shape,
                    a[ra::MODE] == 1,
                    a[ra::COORD],
                    a[ra::NEAREST],
                    [[a[ra::H_NUM], a[ra::H_DEN]], [a[ra::W_NUM], a[ra::W_DEN]]],
                    (e.in_zp, extra(rw::M), extra(rw::S)),
                    outq(e),
                    [oh, ow],
                )
            }
            OpKind::ConvTranspose => {
                let (w, ws) = slice_conv_weights(op, e);
                let geo = Conv {
                    stride: [a[attr::STRIDE_H] as usize, a[attr::STRIDE_W] as usize],
                    pad: [a[attr::PAD_TOP] as usize, a[attr::PAD_LEFT] as usize],
                    dilation: [a[attr::DIL_H] as usize, a[attr::DIL_W] as usize],
                    groups: a[attr::GROUPS] as usize,
                };
                conv_transpose(
                    x,
                    in_shape,
                    e.in_zp,
                    &w,
                    ws,
                    geo,
                    &chans(e),
                    outq(e),
                    [oh, ow],
                )
            }
            OpKind::MinMax => {
                use edgeslim_runtime::ops::minmax::{attr as ma, word as mw};
                minmax(
                    a[ma::MODE] == 1,
                    x,
                    (e.in_zp, extra(mw::M1), extra(mw::S1)),
                    get(op.inputs[1]),
                    (extra(mw::IN2_ZP), extra(mw::M2), extra(mw::S2)),
                    outq(e),
                )
            }
            OpKind::GatherChannels => {
                use edgeslim_runtime::ops::gather::{attr as ga, word as gw};
                gather_channels(
                    x,
                    e.in_ch,
                    a[ga::START] as usize,
                    a[ga::STEP] as usize,
                    e.out_ch,
                    (e.in_zp, extra(gw::M), extra(gw::S)),
                    outq(e),
                )
            }
            OpKind::Transpose => {
                use edgeslim_runtime::ops::transpose::attr::PERM;
                let perm = [a[PERM] as usize, a[PERM + 1] as usize, a[PERM + 2] as usize];
                transpose(x, in_shape, perm)
            }
            OpKind::Softmax => softmax_f64(
                x,
                e.in_ch,
                softmax_scale(extra(softmax_word::BETA_M), extra(softmax_word::BETA_SHIFT)),
            ),
        };
        // Softmax is compared within one step; anything computed from a softmax output
        // (other than a view of it) is not checked at all.
        let tol_in = op.inputs.iter().map(|&t| tol[t]).max().unwrap_or(0);
        tol[op.output] = match op.kind {
            OpKind::Softmax if tol_in == 0 => 1,
            OpKind::Reshape => tol_in,
            _ if tol_in == 0 => 0,
            _ => u8::MAX,
        };
        vals[op.output] = Some(y);
    }
    let mut outs = Vec::new();
    for (i, t) in def.tasks.iter().enumerate() {
        for o in &t.outputs {
            outs.push(if tasks & (1 << i) != 0 {
                vals[o.tensor].clone().map(|data| RefOutput {
                    data,
                    tolerance: tol[o.tensor],
                })
            } else {
                None
            });
        }
    }
    outs
}
