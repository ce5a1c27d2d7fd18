//! Every reference kernel against the independent naive reference (`edgeslim_tests::naive`)
//! over random shapes, strides, paddings, dilations, groups, zero points, multipliers, shifts
//! and activation clamps: exact equality for the integer paths, one quantization step for
//! softmax (whose reference is float). The kernels of op kinds 10-18 (table, product, PRelu,
//! pad, resize, transposed convolution, transpose, channel selection, min/max) are held to the
//! same, with "wide" cases past 16, 32 and 64 channels or values for the variants with vector
//! blocks, and first-k slimmed weights and channel tables as the convolutions.
//!
//! Fan-in, weights and biases are bounded so that no int32 accumulator can wrap (the naive
//! reference panics if one would).

use edgeslim_runtime::kernels::{
    ChannelQuant, ConvGeometry, OutputStage, PoolGeometry, Rescale, ResizeGeometry, Shape,
};
use edgeslim_runtime::quant::{self, host};
use edgeslim_tests::blob::random_i8;
use edgeslim_tests::naive::{self, Chan, OutQ};
use proptest::prelude::*;

/// Multipliers: random Q31 values, the exact power of two `2^30` (whose products with odd
/// values land on rounding ties), near-extremes and zero.
fn multiplier() -> impl Strategy<Value = i32> {
    prop_oneof![
        4 => (1i32 << 30)..=i32::MAX,
        2 => Just(1i32 << 30),
        1 => prop::sample::select(vec![0, i32::MAX, (1 << 30) + 1, 3 << 29]),
    ]
}

/// `(multiplier, shift)` pairs of real multipliers mostly below 1.
fn rescale_ms(shifts: std::ops::RangeInclusive<i32>) -> impl Strategy<Value = (i32, i32)> {
    (multiplier(), shifts)
}

fn zp() -> impl Strategy<Value = i32> {
    prop_oneof![3 => -128i32..=127, 1 => prop::sample::select(vec![-128, 0, 127])]
}

/// Activation clamp `(min, max)`, `min <= max`.
fn act() -> impl Strategy<Value = (i8, i8)> {
    prop_oneof![
        2 => Just((-128i8, 127i8)),
        3 => (any::<i8>(), any::<i8>()).prop_map(|(a, b)| (a.min(b), a.max(b))),
    ]
}

fn stage(zp: i32, act: (i8, i8)) -> OutputStage {
    OutputStage {
        zero_point: zp,
        act_min: act.0,
        act_max: act.1,
    }
}

fn chan_bytes(ch: &[Chan]) -> Vec<u8> {
    ch.iter()
        .flat_map(|&(b, m, s)| [b, m, s])
        .flat_map(i32::to_le_bytes)
        .collect()
}

/// Random per-channel triples from a seed: biases within +-2^20, shifts in `lo..=hi`, a
/// quarter of the multipliers exactly `2^30`.
fn chans(n: usize, seed: u64, lo: i32, hi: i32) -> Vec<Chan> {
    let r = random_i8(3 * n, seed);
    (0..n)
        .map(|i| {
            let bias = (r[3 * i] as i32) << 13;
            let m = if r[3 * i + 1] & 3 == 0 {
                1 << 30
            } else {
                (1 << 30) + ((r[3 * i + 1] as u8 as i32) << 22) + r[3 * i + 2] as i32 * 977
            };
            let s = lo + (r[3 * i + 2] as u8 as i32) % (hi - lo + 1);
            (bias, m, s)
        })
        .collect()
}

#[derive(Debug, Clone, Copy)]
enum GroupMode {
    Regular,
    Grouped(usize),
    Depthwise(usize),
    Pointwise,
}

fn group_mode() -> impl Strategy<Value = GroupMode> {
    prop_oneof![
        Just(GroupMode::Regular),
        (2usize..=3).prop_map(GroupMode::Grouped),
        (1usize..=3).prop_map(GroupMode::Depthwise),
        Just(GroupMode::Pointwise),
    ]
}

/// The first `keep` of every `stored` channels of a `[positions, stored]` tensor, dense.
fn first_channels(x: &[i8], stored: usize, keep: usize) -> Vec<i8> {
    x.chunks_exact(stored)
        .flat_map(|row| &row[..keep])
        .copied()
        .collect()
}

/// First-k slice of transposed-convolution (or convolution) weights stored `[o_full, kh, kw,
/// i_full]`: `W[:o, :, :, :i]`, dense, for the naive references.
fn first_k_weights(w: &[i8], [kh, kw, i_full]: [usize; 3], o: usize, i: usize) -> Vec<i8> {
    let mut dense = Vec::with_capacity(o * kh * kw * i);
    for oo in 0..o {
        for kk in 0..kh * kw {
            let row = (oo * kh * kw + kk) * i_full;
            dense.extend_from_slice(&w[row..row + i]);
        }
    }
    dense
}

/// A Lut table and the 64 little-endian words a width entry stores it as (the naive
/// reference's input).
fn lut_table(seed: u64) -> ([i8; 256], Vec<i32>) {
    let t: [i8; 256] = random_i8(256, seed).try_into().expect("256 values");
    let words = t
        .chunks_exact(4)
        .map(|b| i32::from_le_bytes([b[0] as u8, b[1] as u8, b[2] as u8, b[3] as u8]))
        .collect();
    (t, words)
}

/// How one resize axis is given: as an output size (the scale is `out / in`, as the compiler
/// stores it), as a small ratio whose output size is `floor(in * num / den)`, or as any
/// fraction up to 2^24 over 2^24 beside an unrelated output size (the op checks only that
/// both are in range).
#[derive(Debug, Clone, Copy)]
enum ResizeAxis {
    Size(usize),
    Ratio(u32, u32),
    Free(u32, u32, usize),
}

fn resize_axis(max_out: usize) -> impl Strategy<Value = ResizeAxis> {
    let big = prop_oneof![1u32..=16, (1u32 << 20)..=(1u32 << 24), Just(1u32 << 24)];
    prop_oneof![
        3 => (1usize..=max_out).prop_map(ResizeAxis::Size),
        2 => (1u32..=6, 1u32..=6).prop_map(|(n, d)| ResizeAxis::Ratio(n, d)),
        1 => (big.clone(), big, 1usize..=max_out).prop_map(|(n, d, o)| ResizeAxis::Free(n, d, o)),
    ]
}

/// `([num, den], output size)` of an axis of `n` input positions.
fn resize_axis_of(a: ResizeAxis, n: usize) -> ([u32; 2], usize) {
    match a {
        ResizeAxis::Size(o) => ([o as u32, n as u32], o),
        ResizeAxis::Ratio(num, den) => ([num, den], (n * num as usize / den as usize).max(1)),
        ResizeAxis::Free(num, den, o) => ([num, den], o),
    }
}

/// Every permutation of the three stored axes.
const PERMS: [[usize; 3]; 6] = [
    [0, 1, 2],
    [0, 2, 1],
    [1, 0, 2],
    [1, 2, 0],
    [2, 0, 1],
    [2, 1, 0],
];

/// Conv-transpose output size along one axis: the full scatter `(n - 1) stride + (k - 1) dil +
/// 1`, plus `output_padding` rows (below `max(stride, dil)`, as ONNX requires), less the
/// leading and trailing crops (each below the kernel's extent); at least 1.
fn conv_transpose_out(
    n: usize,
    k: usize,
    stride: usize,
    dil: usize,
    crop: [usize; 2],
    out_pad: usize,
) -> usize {
    let eff = (k - 1) * dil + 1;
    let full = (n - 1) * stride + eff + out_pad % stride.max(dil);
    full.saturating_sub(crop[0] + crop[1]).max(1)
}

/// One suite, run against every kernel set: the reference kernels (the specification), the
/// portable variants, and the set the interpreter calls (`kernels::active`); each must give the
/// reference's bytes.
macro_rules! kernel_suite {
    ($name:ident, $($k:tt)+) => {
        mod $name {
            use super::*;
            use $($k)+ as k;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(1000))]

            /// The kernels' requantization against the exact rational two-rounding scheme, over the
            /// whole accumulator range and every shift.
            #[test]
            fn requant_matches_rational(
                x in prop_oneof![any::<i32>(), -70_000i32..70_000],
                m in multiplier(),
                s in prop_oneof![-31i32..=30, -2i32..=1],
            ) {
                prop_assert_eq!(quant::multiply_by_quantized_multiplier(x, m, s), naive::requant(x, m, s));
            }

            #[test]
            fn conv2d_matches_naive(
                mode in group_mode(),
                h in 1usize..=6, w in 1usize..=6,
                cin_g in 1usize..=4, cout_g in 1usize..=9,
                extra_o in 0usize..=3, extra_i in 0usize..=2,
                kh in 1usize..=3, kw in 1usize..=3,
                stride in (1usize..=3, 1usize..=3),
                dil in (1usize..=2, 1usize..=2),
                pad in (0usize..=2, 0usize..=2, 0usize..=2, 0usize..=2),
                in_zp in zp(), out_zp in zp(), act in act(),
                shifts in (-14i32..=-4, 0i32..=4),
                seed in any::<u64>(),
            ) {
                let (groups, cin_g, cout_g, kh, kw) = match mode {
                    GroupMode::Regular => (1, cin_g, cout_g, kh, kw),
                    GroupMode::Grouped(g) => (g, cin_g, cout_g, kh, kw),
                    GroupMode::Depthwise(mult) => (cin_g, 1, mult, kh, kw),
                    GroupMode::Pointwise => (1, cin_g, cout_g, 1, 1),
                };
                let depthwise = matches!(mode, GroupMode::Depthwise(_));
                let c = cin_g * groups;
                let o = cout_g * groups;
                let i_full = if depthwise { 1 } else { cin_g + extra_i };
                let o_full = o + extra_o;
                let (pt, pl, mut pb, mut pr) = pad;
                let eff_h = (kh - 1) * dil.0 + 1;
                let eff_w = (kw - 1) * dil.1 + 1;
                pb = pb.max(eff_h.saturating_sub(h + pt));
                pr = pr.max(eff_w.saturating_sub(w + pl));
                let oh = (h + pt + pb - eff_h) / stride.0 + 1;
                let ow = (w + pl + pr - eff_w) / stride.1 + 1;
                let x = random_i8(h * w * c, seed);
                let wts = random_i8(o_full * kh * kw * i_full, seed ^ 1);
                let ch = chans(o_full, seed ^ 2, shifts.0, shifts.1.min(shifts.0 + 14).max(shifts.0));
                let mut out = vec![0i8; oh * ow * o];
                let bytes = chan_bytes(&ch);
                k::conv2d(
                    &ConvGeometry { stride: [stride.0, stride.1], pad: [pt, pl], dilation: [dil.0, dil.1], groups },
                    &x, Shape { h, w, c }, in_zp,
                    &wts, [o_full, kh, kw, i_full],
                    ChannelQuant::new(&bytes), stage(out_zp, act),
                    &mut out, Shape { h: oh, w: ow, c: o },
                );
                // The naive reference takes dense weights: slice W[:o, :, :, :cin_g] here.
                let mut dense = Vec::new();
                for oo in 0..o {
                    for kk in 0..kh * kw {
                        let row = (oo * kh * kw + kk) * i_full;
                        dense.extend_from_slice(&wts[row..row + cin_g]);
                    }
                }
                let want = naive::conv2d(
                    &x, [h, w, c], in_zp, &dense, [o, kh, kw, cin_g],
                    naive::Conv { stride: [stride.0, stride.1], pad: [pt, pl], dilation: [dil.0, dil.1], groups },
                    &ch[..o], OutQ { zp: out_zp, act }, [oh, ow],
                );
                prop_assert_eq!(out, want);
            }

            #[test]
            fn fully_connected_matches_naive(
                positions in 1usize..=6, in_ch in 1usize..=8, extra_i in 0usize..=3,
                out_n in 1usize..=6, extra_o in 0usize..=3,
                in_zp in zp(), out_zp in zp(), act in act(),
                lo in -14i32..=-2,
                seed in any::<u64>(),
            ) {
                let i_full = in_ch + extra_i;
                let o_full = out_n + extra_o;
                let x = random_i8(positions * in_ch, seed);
                let wts = random_i8(o_full * positions * i_full, seed ^ 1);
                let ch = chans(o_full, seed ^ 2, lo, lo + 6);
                let bytes = chan_bytes(&ch);
                let mut out = vec![0i8; out_n];
                k::fully_connected(&x, positions, in_ch, in_zp, &wts, i_full, ChannelQuant::new(&bytes), stage(out_zp, act), &mut out);
                let mut dense = Vec::new();
                for o in 0..out_n {
                    for p in 0..positions {
                        let row = (o * positions + p) * i_full;
                        dense.extend_from_slice(&wts[row..row + in_ch]);
                    }
                }
                let want = naive::fully_connected(&x, positions, in_ch, in_zp, &dense, &ch[..out_n], OutQ { zp: out_zp, act });
                prop_assert_eq!(out, want);
            }

            /// Up to 1500 elements: from 256 on, the portable variant tabulates each input and the
            /// x86 variants take two inputs with vectors. Input multipliers may be negative (a
            /// Sub's second input).
            #[test]
            fn add_matches_naive(
                n in 1usize..=1500,
                ins in proptest::collection::vec((zp(), rescale_ms(-12..=0), any::<bool>()), 2..=edgeslim_runtime::format::MAX_ADD_INPUTS),
                out_zp in zp(), act in act(),
                mo in rescale_ms(-31..=2),
                left_shift in 0i32..=20,
                seed in any::<u64>(),
            ) {
                let data: Vec<Vec<i8>> = (0..ins.len()).map(|k| random_i8(n, seed ^ k as u64)).collect();
                let ins: Vec<(i32, (i32, i32))> = ins.iter().map(|&(z, (m, s), neg)| (z, (if neg { -m } else { m }, s))).collect();
                let parts: Vec<(&[i8], Rescale)> = data.iter().zip(&ins).map(|(d, &(z, (m, s)))| {
                    (d.as_slice(), Rescale { zero_point: z, multiplier: m, shift: s })
                }).collect();
                let mut out = vec![0i8; n];
                k::add(&parts, left_shift, mo.0, mo.1, stage(out_zp, act), &mut out);
                let nparts: Vec<(&[i8], naive::Rs)> = data.iter().zip(&ins).map(|(d, &(z, (m, s)))| (d.as_slice(), (z, m, s))).collect();
                let want = naive::add(&nparts, left_shift, mo, OutQ { zp: out_zp, act });
                prop_assert_eq!(out, want);
            }

            /// Add with the parameters TFLM derives from real scales.
            #[test]
            fn add_with_tflm_params_matches_naive(
                n in 1usize..=400,
                s in (0.001f64..0.2, 0.001f64..0.2, 0.001f64..0.4),
                zps in (zp(), zp(), zp()),
                seed in any::<u64>(),
            ) {
                let [m1, s1, m2, s2, mo, so, ls] = host::add_params(s.0, s.1, s.2);
                let a = random_i8(n, seed);
                let b = random_i8(n, seed ^ 1);
                let mut out = vec![0i8; n];
                k::add(
                    &[
                        (&a, Rescale { zero_point: zps.0, multiplier: m1, shift: s1 }),
                        (&b, Rescale { zero_point: zps.1, multiplier: m2, shift: s2 }),
                    ],
                    ls, mo, so, stage(zps.2, (-128, 127)), &mut out,
                );
                let want = naive::add(&[(&a, (zps.0, m1, s1)), (&b, (zps.1, m2, s2))], ls, (mo, so), OutQ { zp: zps.2, act: (-128, 127) });
                prop_assert_eq!(out, want);
            }

            // Up to 24 channels: outputs of 256 elements and more take max pooling's table path.
            #[test]
            fn pools_match_naive(
                h in 1usize..=7, w in 1usize..=7, c in 1usize..=24,
                kernel in (1usize..=3, 1usize..=3),
                stride in (1usize..=3, 1usize..=3),
                pad in (0usize..=2, 0usize..=2, 0usize..=2, 0usize..=2),
                count_include_pad in any::<bool>(),
                in_zp in zp(), out_zp in zp(), act in act(),
                ms in rescale_ms(-8..=2),
                seed in any::<u64>(),
            ) {
                // Padding smaller than the window on every side: no window is empty.
                let (kh, kw) = kernel;
                let (pt, pl) = (pad.0 % kh, pad.1 % kw);
                let (mut pb, mut pr) = (pad.2 % kh, pad.3 % kw);
                pb = pb.max(kh.saturating_sub(h + pt));
                pr = pr.max(kw.saturating_sub(w + pl));
                prop_assume!(pb < kh && pr < kw);
                let oh = (h + pt + pb - kh) / stride.0 + 1;
                let ow = (w + pl + pr - kw) / stride.1 + 1;
                let x = random_i8(h * w * c, seed);
                let geo = PoolGeometry { kernel: [kh, kw], stride: [stride.0, stride.1], pad: [pt, pl], count_include_pad };
                let r = Rescale { zero_point: in_zp, multiplier: ms.0, shift: ms.1 };
                let ngeo = naive::Pool { kernel: [kh, kw], stride: [stride.0, stride.1], pad: [pt, pl], count_include_pad };
                let q = OutQ { zp: out_zp, act };
                let mut out = vec![0i8; oh * ow * c];
                let shape_out = Shape { h: oh, w: ow, c };
                k::max_pool(&geo, &x, Shape { h, w, c }, r, stage(out_zp, act), &mut out, shape_out);
                prop_assert_eq!(&out, &naive::max_pool(&x, [h, w, c], ngeo, (in_zp, ms.0, ms.1), q, [oh, ow]), "max pool");
                k::avg_pool(&geo, &x, Shape { h, w, c }, r, stage(out_zp, act), &mut out, shape_out);
                prop_assert_eq!(&out, &naive::avg_pool(&x, [h, w, c], ngeo, (in_zp, ms.0, ms.1), q, [oh, ow]), "avg pool");
            }

            #[test]
            fn global_avg_pool_matches_naive(
                h in 1usize..=8, w in 1usize..=8, c in 1usize..=6,
                in_zp in zp(), out_zp in zp(), act in act(),
                ms in rescale_ms(-12..=0),
                seed in any::<u64>(),
            ) {
                let x = random_i8(h * w * c, seed);
                let mut out = vec![0i8; c];
                k::global_avg_pool(&x, Shape { h, w, c }, Rescale { zero_point: in_zp, multiplier: ms.0, shift: ms.1 }, stage(out_zp, act), &mut out);
                prop_assert_eq!(out, naive::global_avg_pool(&x, [h, w, c], (in_zp, ms.0, ms.1), OutQ { zp: out_zp, act }));
            }

            #[test]
            fn concat_matches_naive(
                parts in prop::collection::vec((1usize..=5, zp(), rescale_ms(-4..=1)), 1..=4),
                positions in 1usize..=6,
                out_zp in zp(), act in act(),
                seed in any::<u64>(),
            ) {
                let data: Vec<Vec<i8>> = parts.iter().enumerate()
                    .map(|(i, p)| random_i8(positions * p.0, seed ^ i as u64)).collect();
                let inputs: Vec<(&[i8], usize, Rescale)> = parts.iter().zip(&data)
                    .map(|(p, d)| (d.as_slice(), p.0, Rescale { zero_point: p.1, multiplier: p.2.0, shift: p.2.1 }))
                    .collect();
                let total: usize = parts.iter().map(|p| p.0).sum();
                let mut out = vec![0i8; positions * total];
                k::concat(&inputs, positions, stage(out_zp, act), &mut out);
                let ninputs: Vec<(Vec<i8>, usize, naive::Rs)> = parts.iter().zip(&data)
                    .map(|(p, d)| (d.clone(), p.0, (p.1, p.2.0, p.2.1))).collect();
                prop_assert_eq!(out, naive::concat(&ninputs, positions, OutQ { zp: out_zp, act }));
            }

            /// Softmax within one output step (1/256) of the float softmax of the dequantized input.
            #[test]
            fn softmax_within_one_step_of_float(
                row_len in 1usize..=24, rows in 1usize..=4,
                scale in prop_oneof![0.002f64..0.05, 0.05f64..0.5, 0.5f64..4.0],
                seed in any::<u64>(),
            ) {
                let x = random_i8(rows * row_len, seed);
                let (m, s, diff_min) = host::softmax_params(scale);
                let mut out = vec![0i8; x.len()];
                k::softmax(&x, row_len, m, s, diff_min, &mut out);
                let want = naive::softmax_f64(&x, row_len, naive::softmax_scale(m, s));
                for (i, (&g, &r)) in out.iter().zip(&want).enumerate() {
                    prop_assert!((g as i32 - r as i32).abs() <= 1, "element {}: got {}, float reference {} (x = {:?})", i, g, r, x);
                }
            }

            /// Quantize and dequantize exactly as ONNX (round half to even, f32 division), ties and
            /// non-finite values included.
            #[test]
            fn quantize_dequantize_match_naive(
                scale in 0.0005f32..2.0,
                zp in zp(),
                vals in prop::collection::vec(prop_oneof![
                    4 => -300.0f32..300.0,
                    3 => (-300i32..300).prop_map(|n| n as f32 + 0.5),
                    1 => prop::sample::select(vec![f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.0, -0.0, 1e30, -1e30]),
                ], 1..64),
                seed in any::<u64>(),
            ) {
                // Half of the values are multiples of the scale plus one half: exact ties.
                let x: Vec<f32> = vals.iter().enumerate()
                    .map(|(i, &v)| if i % 2 == 0 { v * scale } else { v }).collect();
                let mut q = vec![0i8; x.len()];
                k::quantize(&x, scale, zp, &mut q);
                prop_assert_eq!(&q, &naive::quantize(&x, scale, zp));
                let qs = random_i8(x.len(), seed);
                let mut f = vec![0f32; x.len()];
                k::dequantize(&qs, scale, zp, &mut f);
                let want = naive::dequantize(&qs, scale, zp);
                prop_assert_eq!(f.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), want.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
            }

            /// Every table entry is reachable: inputs of up to 600 values, a quarter of the cases
            /// holding every int8 value once.
            #[test]
            fn lut_matches_naive(
                n in 1usize..=600,
                every_value in prop::bool::weighted(0.25),
                seed in any::<u64>(),
            ) {
                let x: Vec<i8> = if every_value {
                    (-128i32..=127).map(|v| v as i8).chain(random_i8(n, seed)).collect()
                } else {
                    random_i8(n, seed)
                };
                let (table, words) = lut_table(seed ^ 1);
                let mut out = vec![0i8; x.len()];
                k::lut(&x, &table, &mut out);
                prop_assert_eq!(out, naive::lut(&x, &words));
            }

            /// Same-shape operands and one value per channel broadcast over the positions.
            #[test]
            fn mul_matches_naive(
                positions in 1usize..=9, c in 1usize..=8,
                broadcast in any::<bool>(),
                x_zp in zp(), y_zp in zp(), out_zp in zp(), act in act(),
                ms in rescale_ms(-20..=2),
                seed in any::<u64>(),
            ) {
                let x = random_i8(positions * c, seed);
                let y = random_i8(if broadcast { c } else { positions * c }, seed ^ 1);
                let mut out = vec![0i8; x.len()];
                let r = Rescale { zero_point: y_zp, multiplier: ms.0, shift: ms.1 };
                k::mul(&x, x_zp, &y, broadcast.then_some(c), r, stage(out_zp, act), &mut out);
                let want = naive::mul(&x, x_zp, &y, c, (y_zp, ms.0, ms.1), OutQ { zp: out_zp, act });
                prop_assert_eq!(out, want);
            }

            /// Slopes and per-channel multipliers stored for `c_full` channels, read first-k;
            /// the (unused) bias words are random.
            #[test]
            fn prelu_matches_naive(
                positions in 1usize..=9, c in 1usize..=8, extra_c in 0usize..=3,
                in_zp in zp(), out_zp in zp(), act in act(),
                pos in rescale_ms(-6..=2),
                lo in -14i32..=-2,
                seed in any::<u64>(),
            ) {
                let c_full = c + extra_c;
                let x = random_i8(positions * c, seed);
                let alpha = random_i8(c_full, seed ^ 1);
                let ch = chans(c_full, seed ^ 2, lo, lo + 8);
                let bytes = chan_bytes(&ch);
                let mut out = vec![0i8; x.len()];
                k::prelu(&x, c, in_zp, pos, &alpha, ChannelQuant::new(&bytes), stage(out_zp, act), &mut out);
                let want = naive::prelu(&x, in_zp, pos, &alpha[..c], &ch[..c], OutQ { zp: out_zp, act });
                prop_assert_eq!(out, want);
            }

            /// Constant, reflect and edge padding with four independent (asymmetric) pads;
            /// reflect pads stay below the input's size. A quarter of the cases read the first
            /// `c` of more stored input channels (the kernel's input row is `in_shape.c` wide).
            #[test]
            fn pad_matches_naive(
                h in 1usize..=6, w in 1usize..=6, c in 1usize..=6,
                extra_c in prop_oneof![3 => Just(0usize), 1 => 1usize..=3],
                mode in 0u32..=2,
                pads in (0usize..=4, 0usize..=4, 0usize..=4, 0usize..=4),
                value in any::<i8>(),
                in_zp in zp(), out_zp in zp(), act in act(),
                ms in rescale_ms(-4..=2),
                seed in any::<u64>(),
            ) {
                let (mut pt, mut pl, mut pb, mut pr) = pads;
                if mode == 1 {
                    (pt, pb, pl, pr) = (pt % h, pb % h, pl % w, pr % w);
                }
                let (oh, ow) = (h + pt + pb, w + pl + pr);
                let c_in = c + extra_c;
                let x = random_i8(h * w * c_in, seed);
                let m = edgeslim_runtime::kernels::PadMode::from_u32(mode).expect("mode");
                let r = Rescale { zero_point: in_zp, multiplier: ms.0, shift: ms.1 };
                let mut out = vec![0i8; oh * ow * c];
                k::pad(&x, Shape { h, w, c: c_in }, [pt, pl], m, value, r, stage(out_zp, act), &mut out, Shape { h: oh, w: ow, c });
                let want = naive::pad(
                    &first_channels(&x, c_in, c), [h, w, c], [pt, pl], mode, value,
                    (in_zp, ms.0, ms.1), OutQ { zp: out_zp, act }, [oh, ow],
                );
                prop_assert_eq!(out, want);
            }

            /// Nearest (every rounding rule) and bilinear, every coordinate transformation, up
            /// and down scales given as sizes, ratios or unrelated fractions; a quarter of the
            /// cases read the first `c` of more stored input channels.
            #[test]
            fn resize_matches_naive(
                h in 1usize..=6, w in 1usize..=6, c in 1usize..=5,
                extra_c in prop_oneof![3 => Just(0usize), 1 => 1usize..=3],
                linear in any::<bool>(), coord in 0u32..=3, nearest in 0u32..=3,
                ay in resize_axis(13), ax in resize_axis(13),
                in_zp in zp(), out_zp in zp(), act in act(),
                m in multiplier(), ds in -3i32..=2,
                seed in any::<u64>(),
            ) {
                let (sy, oh) = resize_axis_of(ay, h);
                let (sx, ow) = resize_axis_of(ax, w);
                // Bilinear sums carry 2^20 of weights: scale them back to int8 range.
                let shift = if linear { ds - 19 } else { ds };
                let c_in = c + extra_c;
                let x = random_i8(h * w * c_in, seed);
                let g = ResizeGeometry { linear, coord, nearest, scale: [sy, sx] };
                let r = Rescale { zero_point: in_zp, multiplier: m, shift };
                let mut out = vec![0i8; oh * ow * c];
                k::resize(&g, &x, Shape { h, w, c: c_in }, r, stage(out_zp, act), &mut out, Shape { h: oh, w: ow, c });
                let want = naive::resize(
                    &first_channels(&x, c_in, c), [h, w, c], linear, coord, nearest, [sy, sx],
                    (in_zp, m, shift), OutQ { zp: out_zp, act }, [oh, ow],
                );
                prop_assert_eq!(out, want);
            }

            /// Regular, grouped, depthwise (with a channel multiplier) and 1x1 transposed
            /// convolutions; stride, dilation, leading and trailing crops, output padding;
            /// weights stored `[O_full, KH, KW, I_full / groups]` and read first-k.
            #[test]
            fn conv_transpose_matches_naive(
                mode in group_mode(),
                h in 1usize..=5, w in 1usize..=5,
                cin_g in 1usize..=4, cout_g in 1usize..=9,
                extra_o in 0usize..=3, extra_i in 0usize..=2,
                kh in 1usize..=3, kw in 1usize..=3,
                stride in (1usize..=3, 1usize..=3),
                dil in (1usize..=2, 1usize..=2),
                crop in (0usize..=4, 0usize..=4, 0usize..=4, 0usize..=4),
                out_pad in (0usize..=2, 0usize..=2),
                in_zp in zp(), out_zp in zp(), act in act(),
                shifts in (-14i32..=-4, 0i32..=4),
                seed in any::<u64>(),
            ) {
                let (groups, cin_g, cout_g, kh, kw) = match mode {
                    GroupMode::Regular => (1, cin_g, cout_g, kh, kw),
                    GroupMode::Grouped(g) => (g, cin_g, cout_g, kh, kw),
                    GroupMode::Depthwise(mult) => (cin_g, 1, mult, kh, kw),
                    GroupMode::Pointwise => (1, cin_g, cout_g, 1, 1),
                };
                let depthwise = matches!(mode, GroupMode::Depthwise(_));
                let (c, o) = (cin_g * groups, cout_g * groups);
                let i_full = if depthwise { 1 } else { cin_g + extra_i };
                let o_full = o + extra_o;
                let (eff_h, eff_w) = ((kh - 1) * dil.0 + 1, (kw - 1) * dil.1 + 1);
                let (pt, pl, pb, pr) = (crop.0 % eff_h, crop.1 % eff_w, crop.2 % eff_h, crop.3 % eff_w);
                let oh = conv_transpose_out(h, kh, stride.0, dil.0, [pt, pb], out_pad.0);
                let ow = conv_transpose_out(w, kw, stride.1, dil.1, [pl, pr], out_pad.1);
                let x = random_i8(h * w * c, seed);
                let wts = random_i8(o_full * kh * kw * i_full, seed ^ 1);
                let ch = chans(o_full, seed ^ 2, shifts.0, shifts.1.min(shifts.0 + 14).max(shifts.0));
                let bytes = chan_bytes(&ch);
                let geo = ConvGeometry { stride: [stride.0, stride.1], pad: [pt, pl], dilation: [dil.0, dil.1], groups };
                let mut out = vec![0i8; oh * ow * o];
                k::conv_transpose(
                    &geo, &x, Shape { h, w, c }, in_zp,
                    &wts, [o_full, kh, kw, i_full],
                    ChannelQuant::new(&bytes), stage(out_zp, act),
                    &mut out, Shape { h: oh, w: ow, c: o },
                );
                let want = naive::conv_transpose(
                    &x, [h, w, c], in_zp, &first_k_weights(&wts, [kh, kw, i_full], o, cin_g), [o, kh, kw, cin_g],
                    naive::Conv { stride: [stride.0, stride.1], pad: [pt, pl], dilation: [dil.0, dil.1], groups },
                    &ch[..o], OutQ { zp: out_zp, act }, [oh, ow],
                );
                prop_assert_eq!(out, want);
            }

            /// Every permutation of the three axes of each random tensor.
            #[test]
            fn transpose_matches_naive(
                h in 1usize..=9, w in 1usize..=9, c in 1usize..=9,
                seed in any::<u64>(),
            ) {
                let x = random_i8(h * w * c, seed);
                for perm in PERMS {
                    let mut out = vec![0i8; x.len()];
                    k::transpose(&x, Shape { h, w, c }, perm, &mut out);
                    prop_assert_eq!(&out, &naive::transpose(&x, [h, w, c], perm), "perm {:?}", perm);
                }
            }

            /// Channels `start + j * step`: any start, steps 1 to 4, every count that fits.
            #[test]
            fn gather_channels_matches_naive(
                positions in 1usize..=9, in_c in 1usize..=12,
                start in any::<prop::sample::Index>(), step in 1usize..=4,
                count in any::<prop::sample::Index>(),
                in_zp in zp(), out_zp in zp(), act in act(),
                ms in rescale_ms(-4..=2),
                seed in any::<u64>(),
            ) {
                let start = start.index(in_c);
                let out_c = 1 + count.index((in_c - 1 - start) / step + 1);
                let x = random_i8(positions * in_c, seed);
                let r = Rescale { zero_point: in_zp, multiplier: ms.0, shift: ms.1 };
                let mut out = vec![0i8; positions * out_c];
                k::gather_channels(&x, in_c, start, step, r, stage(out_zp, act), &mut out, out_c);
                let want = naive::gather_channels(&x, in_c, start, step, out_c, (in_zp, ms.0, ms.1), OutQ { zp: out_zp, act });
                prop_assert_eq!(out, want);
            }

            /// Maximum and minimum of two inputs of different scales and zero points.
            #[test]
            fn minmax_matches_naive(
                n in 1usize..=64,
                min in any::<bool>(),
                a_zp in zp(), b_zp in zp(), out_zp in zp(), act in act(),
                ma in rescale_ms(-6..=2), mb in rescale_ms(-6..=2),
                seed in any::<u64>(),
            ) {
                let a = random_i8(n, seed);
                let b = random_i8(n, seed ^ 1);
                let ra = Rescale { zero_point: a_zp, multiplier: ma.0, shift: ma.1 };
                let rb = Rescale { zero_point: b_zp, multiplier: mb.0, shift: mb.1 };
                let mut out = vec![0i8; n];
                k::minmax(min, (&a, ra), (&b, rb), stage(out_zp, act), &mut out);
                let want = naive::minmax(min, &a, (a_zp, ma.0, ma.1), &b, (b_zp, mb.0, mb.1), OutQ { zp: out_zp, act });
                prop_assert_eq!(out, want);
            }
        }
        proptest! {
            #![proptest_config(ProptestConfig::with_cases(300))]

            /// Wide channel counts: past the portable kernels' blocks (4 output channels per dot
            /// product, 64 channels per depthwise and pooling block, 512-value im2col windows),
            /// full-width rows (every
            /// weight column active, so a kernel row is one contiguous run) and slimmed ones,
            /// depthwise with a channel multiplier, padding up to twice the kernel.
            #[test]
            fn conv2d_wide_matches_naive(
                mode in prop_oneof![
                    1 => (1usize..=40, 1usize..=11).prop_map(|(i, o)| (1usize, i, o, false)),
                    // Windows of 6 or more taps hold more than 512 values (the portable
                    // im2col buffer).
                    2 => (86usize..=100, 1usize..=5).prop_map(|(i, o)| (1usize, i, o, false)),
                    1 => (2usize..=3, 1usize..=12, 1usize..=6).prop_map(|(g, i, o)| (g, i, o, false)),
                    1 => (60usize..=70, 1usize..=2).prop_map(|(g, m)| (g, 1, m, true)),
                ],
                h in 1usize..=5, w in 1usize..=5,
                extra_o in 0usize..=2, extra_i in prop_oneof![Just(0usize), 1usize..=3],
                kh in 1usize..=3, kw in 1usize..=3,
                stride in (1usize..=2, 1usize..=2),
                dil in (1usize..=2, 1usize..=2),
                pad in (0usize..=4, 0usize..=4, 0usize..=4, 0usize..=4),
                in_zp in zp(), out_zp in zp(), act in act(),
                seed in any::<u64>(),
            ) {
                let (groups, cin_g, cout_g, depthwise) = mode;
                let c = cin_g * groups;
                let o = cout_g * groups;
                let i_full = if depthwise { 1 } else { cin_g + extra_i };
                let o_full = o + extra_o;
                let (pt, pl, mut pb, mut pr) = pad;
                let eff_h = (kh - 1) * dil.0 + 1;
                let eff_w = (kw - 1) * dil.1 + 1;
                pb = pb.max(eff_h.saturating_sub(h + pt));
                pr = pr.max(eff_w.saturating_sub(w + pl));
                let oh = (h + pt + pb - eff_h) / stride.0 + 1;
                let ow = (w + pl + pr - eff_w) / stride.1 + 1;
                let x = random_i8(h * w * c, seed);
                let wts = random_i8(o_full * kh * kw * i_full, seed ^ 1);
                let ch = chans(o_full, seed ^ 2, -16, -6);
                let mut out = vec![0i8; oh * ow * o];
                let bytes = chan_bytes(&ch);
                k::conv2d(
                    &ConvGeometry { stride: [stride.0, stride.1], pad: [pt, pl], dilation: [dil.0, dil.1], groups },
                    &x, Shape { h, w, c }, in_zp,
                    &wts, [o_full, kh, kw, i_full],
                    ChannelQuant::new(&bytes), stage(out_zp, act),
                    &mut out, Shape { h: oh, w: ow, c: o },
                );
                let mut dense = Vec::new();
                for oo in 0..o {
                    for kk in 0..kh * kw {
                        let row = (oo * kh * kw + kk) * i_full;
                        dense.extend_from_slice(&wts[row..row + cin_g]);
                    }
                }
                let want = naive::conv2d(
                    &x, [h, w, c], in_zp, &dense, [o, kh, kw, cin_g],
                    naive::Conv { stride: [stride.0, stride.1], pad: [pt, pl], dilation: [dil.0, dil.1], groups },
                    &ch[..o], OutQ { zp: out_zp, act }, [oh, ow],
                );
                prop_assert_eq!(out, want);
            }

            /// Fully connected with wide rows, full-width (one contiguous run) and slimmed.
            #[test]
            fn fully_connected_wide_matches_naive(
                positions in 1usize..=9, in_ch in 1usize..=48,
                extra_i in prop_oneof![Just(0usize), 1usize..=5],
                out_n in 1usize..=13, extra_o in 0usize..=3,
                in_zp in zp(), out_zp in zp(), act in act(),
                seed in any::<u64>(),
            ) {
                let i_full = in_ch + extra_i;
                let o_full = out_n + extra_o;
                let x = random_i8(positions * in_ch, seed);
                let wts = random_i8(o_full * positions * i_full, seed ^ 1);
                let ch = chans(o_full, seed ^ 2, -16, -8);
                let bytes = chan_bytes(&ch);
                let mut out = vec![0i8; out_n];
                k::fully_connected(&x, positions, in_ch, in_zp, &wts, i_full, ChannelQuant::new(&bytes), stage(out_zp, act), &mut out);
                let mut dense = Vec::new();
                for o in 0..out_n {
                    for p in 0..positions {
                        let row = (o * positions + p) * i_full;
                        dense.extend_from_slice(&wts[row..row + in_ch]);
                    }
                }
                let want = naive::fully_connected(&x, positions, in_ch, in_zp, &dense, &ch[..out_n], OutQ { zp: out_zp, act });
                prop_assert_eq!(out, want);
            }

            /// Pooling over more channels than one block, windows larger than the input.
            #[test]
            fn pools_wide_match_naive(
                h in 1usize..=5, w in 1usize..=5, c in 60usize..=140,
                kernel in (1usize..=7, 1usize..=7),
                stride in (1usize..=3, 1usize..=3),
                pad in (0usize..=6, 0usize..=6, 0usize..=6, 0usize..=6),
                count_include_pad in any::<bool>(),
                in_zp in zp(), out_zp in zp(), act in act(),
                ms in rescale_ms(-8..=2),
                seed in any::<u64>(),
            ) {
                let (kh, kw) = kernel;
                let (pt, pl) = (pad.0 % kh, pad.1 % kw);
                let (mut pb, mut pr) = (pad.2 % kh, pad.3 % kw);
                pb = pb.max(kh.saturating_sub(h + pt));
                pr = pr.max(kw.saturating_sub(w + pl));
                prop_assume!(pb < kh && pr < kw);
                let oh = (h + pt + pb - kh) / stride.0 + 1;
                let ow = (w + pl + pr - kw) / stride.1 + 1;
                let x = random_i8(h * w * c, seed);
                let geo = PoolGeometry { kernel: [kh, kw], stride: [stride.0, stride.1], pad: [pt, pl], count_include_pad };
                let r = Rescale { zero_point: in_zp, multiplier: ms.0, shift: ms.1 };
                let ngeo = naive::Pool { kernel: [kh, kw], stride: [stride.0, stride.1], pad: [pt, pl], count_include_pad };
                let q = OutQ { zp: out_zp, act };
                let mut out = vec![0i8; oh * ow * c];
                let shape_out = Shape { h: oh, w: ow, c };
                k::max_pool(&geo, &x, Shape { h, w, c }, r, stage(out_zp, act), &mut out, shape_out);
                prop_assert_eq!(&out, &naive::max_pool(&x, [h, w, c], ngeo, (in_zp, ms.0, ms.1), q, [oh, ow]), "max pool");
                k::avg_pool(&geo, &x, Shape { h, w, c }, r, stage(out_zp, act), &mut out, shape_out);
                prop_assert_eq!(&out, &naive::avg_pool(&x, [h, w, c], ngeo, (in_zp, ms.0, ms.1), q, [oh, ow]), "avg pool");
            }

            /// Max pooling over maps of 1024 outputs and more (the x86 row path), stride up to
            /// 3, padding below the window.
            #[test]
            fn max_pool_wide_matches_naive(
                h in 6usize..=14, w in 6usize..=14, c in 12usize..=40,
                kernel in (1usize..=3, 1usize..=3),
                stride in (1usize..=3, 1usize..=3),
                pad in (0usize..=2, 0usize..=2),
                in_zp in zp(), out_zp in zp(), act in act(),
                ms in rescale_ms(-8..=2),
                seed in any::<u64>(),
            ) {
                let (kh, kw) = kernel;
                let (pt, pl) = (pad.0 % kh, pad.1 % kw);
                let oh = (h + pt - kh) / stride.0 + 1;
                let ow = (w + pl - kw) / stride.1 + 1;
                let x = random_i8(h * w * c, seed);
                let geo = PoolGeometry { kernel: [kh, kw], stride: [stride.0, stride.1], pad: [pt, pl], count_include_pad: false };
                let ngeo = naive::Pool { kernel: [kh, kw], stride: [stride.0, stride.1], pad: [pt, pl], count_include_pad: false };
                let r = Rescale { zero_point: in_zp, multiplier: ms.0, shift: ms.1 };
                let mut out = vec![0i8; oh * ow * c];
                k::max_pool(&geo, &x, Shape { h, w, c }, r, stage(out_zp, act), &mut out, Shape { h: oh, w: ow, c });
                prop_assert_eq!(&out, &naive::max_pool(&x, [h, w, c], ngeo, (in_zp, ms.0, ms.1), OutQ { zp: out_zp, act }, [oh, ow]), "max pool");
            }

            #[test]
            fn global_avg_pool_wide_matches_naive(
                h in 1usize..=6, w in 1usize..=6, c in 60usize..=140,
                in_zp in zp(), out_zp in zp(), act in act(),
                ms in rescale_ms(-14..=0),
                seed in any::<u64>(),
            ) {
                let x = random_i8(h * w * c, seed);
                let mut out = vec![0i8; c];
                k::global_avg_pool(&x, Shape { h, w, c }, Rescale { zero_point: in_zp, multiplier: ms.0, shift: ms.1 }, stage(out_zp, act), &mut out);
                prop_assert_eq!(out, naive::global_avg_pool(&x, [h, w, c], (in_zp, ms.0, ms.1), OutQ { zp: out_zp, act }));
            }

            /// Long inputs: past 16, 32 and 64-value vector blocks, with odd tails.
            #[test]
            fn lut_wide_matches_naive(
                n in prop_oneof![1usize..=200, 200usize..=5000],
                seed in any::<u64>(),
            ) {
                let x = random_i8(n, seed);
                let (table, words) = lut_table(seed ^ 1);
                let mut out = vec![0i8; n];
                k::lut(&x, &table, &mut out);
                prop_assert_eq!(out, naive::lut(&x, &words));
            }

            /// Wide channel counts and many positions, broadcast or not.
            #[test]
            fn mul_wide_matches_naive(
                positions in 1usize..=24, c in 1usize..=140,
                broadcast in any::<bool>(),
                x_zp in zp(), y_zp in zp(), out_zp in zp(), act in act(),
                ms in rescale_ms(-20..=2),
                seed in any::<u64>(),
            ) {
                let x = random_i8(positions * c, seed);
                let y = random_i8(if broadcast { c } else { positions * c }, seed ^ 1);
                let mut out = vec![0i8; x.len()];
                let r = Rescale { zero_point: y_zp, multiplier: ms.0, shift: ms.1 };
                k::mul(&x, x_zp, &y, broadcast.then_some(c), r, stage(out_zp, act), &mut out);
                let want = naive::mul(&x, x_zp, &y, c, (y_zp, ms.0, ms.1), OutQ { zp: out_zp, act });
                prop_assert_eq!(out, want);
            }

            #[test]
            fn prelu_wide_matches_naive(
                positions in 1usize..=12, c in 1usize..=140, extra_c in 0usize..=5,
                in_zp in zp(), out_zp in zp(), act in act(),
                pos in rescale_ms(-6..=2),
                lo in -14i32..=-2,
                seed in any::<u64>(),
            ) {
                let c_full = c + extra_c;
                let x = random_i8(positions * c, seed);
                let alpha = random_i8(c_full, seed ^ 1);
                let ch = chans(c_full, seed ^ 2, lo, lo + 8);
                let bytes = chan_bytes(&ch);
                let mut out = vec![0i8; x.len()];
                k::prelu(&x, c, in_zp, pos, &alpha, ChannelQuant::new(&bytes), stage(out_zp, act), &mut out);
                let want = naive::prelu(&x, in_zp, pos, &alpha[..c], &ch[..c], OutQ { zp: out_zp, act });
                prop_assert_eq!(out, want);
            }

            /// Padding of tensors of 15 to 140 channels (past 16, 32 and 64-byte rows), every mode.
            #[test]
            fn pad_wide_matches_naive(
                h in 1usize..=5, w in 1usize..=5, c in 15usize..=140,
                extra_c in prop_oneof![3 => Just(0usize), 1 => 1usize..=5],
                mode in 0u32..=2,
                pads in (0usize..=3, 0usize..=3, 0usize..=3, 0usize..=3),
                value in any::<i8>(),
                in_zp in zp(), out_zp in zp(), act in act(),
                ms in rescale_ms(-4..=2),
                seed in any::<u64>(),
            ) {
                let (mut pt, mut pl, mut pb, mut pr) = pads;
                if mode == 1 {
                    (pt, pb, pl, pr) = (pt % h, pb % h, pl % w, pr % w);
                }
                let (oh, ow) = (h + pt + pb, w + pl + pr);
                let c_in = c + extra_c;
                let x = random_i8(h * w * c_in, seed);
                let m = edgeslim_runtime::kernels::PadMode::from_u32(mode).expect("mode");
                let r = Rescale { zero_point: in_zp, multiplier: ms.0, shift: ms.1 };
                let mut out = vec![0i8; oh * ow * c];
                k::pad(&x, Shape { h, w, c: c_in }, [pt, pl], m, value, r, stage(out_zp, act), &mut out, Shape { h: oh, w: ow, c });
                let want = naive::pad(
                    &first_channels(&x, c_in, c), [h, w, c], [pt, pl], mode, value,
                    (in_zp, ms.0, ms.1), OutQ { zp: out_zp, act }, [oh, ow],
                );
                prop_assert_eq!(out, want);
            }

            /// Resize of tensors of 15 to 140 channels, every mode, rule and transformation.
            #[test]
            fn resize_wide_matches_naive(
                h in 1usize..=5, w in 1usize..=5, c in 15usize..=140,
                extra_c in prop_oneof![3 => Just(0usize), 1 => 1usize..=5],
                linear in any::<bool>(), coord in 0u32..=3, nearest in 0u32..=3,
                ay in resize_axis(10), ax in resize_axis(10),
                in_zp in zp(), out_zp in zp(), act in act(),
                m in multiplier(), ds in -3i32..=2,
                seed in any::<u64>(),
            ) {
                let (sy, oh) = resize_axis_of(ay, h);
                let (sx, ow) = resize_axis_of(ax, w);
                let shift = if linear { ds - 19 } else { ds };
                let c_in = c + extra_c;
                let x = random_i8(h * w * c_in, seed);
                let g = ResizeGeometry { linear, coord, nearest, scale: [sy, sx] };
                let r = Rescale { zero_point: in_zp, multiplier: m, shift };
                let mut out = vec![0i8; oh * ow * c];
                k::resize(&g, &x, Shape { h, w, c: c_in }, r, stage(out_zp, act), &mut out, Shape { h: oh, w: ow, c });
                let want = naive::resize(
                    &first_channels(&x, c_in, c), [h, w, c], linear, coord, nearest, [sy, sx],
                    (in_zp, m, shift), OutQ { zp: out_zp, act }, [oh, ow],
                );
                prop_assert_eq!(out, want);
            }

            /// Transposed convolutions with wide rows (up to 100 input channels per group,
            /// full-width and slimmed), grouped, and depthwise over 60 to 70 channels.
            #[test]
            fn conv_transpose_wide_matches_naive(
                mode in prop_oneof![
                    1 => (1usize..=40, 1usize..=17).prop_map(|(i, o)| (1usize, i, o, false)),
                    1 => (60usize..=100, 1usize..=5).prop_map(|(i, o)| (1usize, i, o, false)),
                    1 => (2usize..=3, 1usize..=12, 1usize..=6).prop_map(|(g, i, o)| (g, i, o, false)),
                    1 => (60usize..=70, 1usize..=2).prop_map(|(g, m)| (g, 1, m, true)),
                ],
                h in 1usize..=4, w in 1usize..=4,
                extra_o in 0usize..=2, extra_i in prop_oneof![Just(0usize), 1usize..=3],
                kh in 1usize..=3, kw in 1usize..=3,
                stride in (1usize..=2, 1usize..=2),
                dil in (1usize..=2, 1usize..=2),
                crop in (0usize..=2, 0usize..=2, 0usize..=2, 0usize..=2),
                out_pad in (0usize..=1, 0usize..=1),
                in_zp in zp(), out_zp in zp(), act in act(),
                seed in any::<u64>(),
            ) {
                let (groups, cin_g, cout_g, depthwise) = mode;
                let (c, o) = (cin_g * groups, cout_g * groups);
                let i_full = if depthwise { 1 } else { cin_g + extra_i };
                let o_full = o + extra_o;
                let (eff_h, eff_w) = ((kh - 1) * dil.0 + 1, (kw - 1) * dil.1 + 1);
                let (pt, pl, pb, pr) = (crop.0 % eff_h, crop.1 % eff_w, crop.2 % eff_h, crop.3 % eff_w);
                let oh = conv_transpose_out(h, kh, stride.0, dil.0, [pt, pb], out_pad.0);
                let ow = conv_transpose_out(w, kw, stride.1, dil.1, [pl, pr], out_pad.1);
                let x = random_i8(h * w * c, seed);
                let wts = random_i8(o_full * kh * kw * i_full, seed ^ 1);
                let ch = chans(o_full, seed ^ 2, -16, -6);
                let bytes = chan_bytes(&ch);
                let geo = ConvGeometry { stride: [stride.0, stride.1], pad: [pt, pl], dilation: [dil.0, dil.1], groups };
                let mut out = vec![0i8; oh * ow * o];
                k::conv_transpose(
                    &geo, &x, Shape { h, w, c }, in_zp,
                    &wts, [o_full, kh, kw, i_full],
                    ChannelQuant::new(&bytes), stage(out_zp, act),
                    &mut out, Shape { h: oh, w: ow, c: o },
                );
                let want = naive::conv_transpose(
                    &x, [h, w, c], in_zp, &first_k_weights(&wts, [kh, kw, i_full], o, cin_g), [o, kh, kw, cin_g],
                    naive::Conv { stride: [stride.0, stride.1], pad: [pt, pl], dilation: [dil.0, dil.1], groups },
                    &ch[..o], OutQ { zp: out_zp, act }, [oh, ow],
                );
                prop_assert_eq!(out, want);
            }

            /// Transposes of up to 70 channels, every permutation.
            #[test]
            fn transpose_wide_matches_naive(
                h in 1usize..=12, w in 1usize..=12, c in 15usize..=70,
                seed in any::<u64>(),
            ) {
                let x = random_i8(h * w * c, seed);
                for perm in PERMS {
                    let mut out = vec![0i8; x.len()];
                    k::transpose(&x, Shape { h, w, c }, perm, &mut out);
                    prop_assert_eq!(&out, &naive::transpose(&x, [h, w, c], perm), "perm {:?}", perm);
                }
            }

            #[test]
            fn gather_channels_wide_matches_naive(
                positions in 1usize..=12, in_c in 15usize..=140,
                start in any::<prop::sample::Index>(), step in prop_oneof![Just(1usize), 1usize..=5],
                count in any::<prop::sample::Index>(),
                in_zp in zp(), out_zp in zp(), act in act(),
                ms in rescale_ms(-4..=2),
                seed in any::<u64>(),
            ) {
                let start = start.index(in_c);
                let out_c = 1 + count.index((in_c - 1 - start) / step + 1);
                let x = random_i8(positions * in_c, seed);
                let r = Rescale { zero_point: in_zp, multiplier: ms.0, shift: ms.1 };
                let mut out = vec![0i8; positions * out_c];
                k::gather_channels(&x, in_c, start, step, r, stage(out_zp, act), &mut out, out_c);
                let want = naive::gather_channels(&x, in_c, start, step, out_c, (in_zp, ms.0, ms.1), OutQ { zp: out_zp, act });
                prop_assert_eq!(out, want);
            }

            /// Long inputs: past 16, 32 and 64-value vector blocks, with odd tails.
            #[test]
            fn minmax_wide_matches_naive(
                n in prop_oneof![1usize..=200, 200usize..=3000],
                min in any::<bool>(),
                a_zp in zp(), b_zp in zp(), out_zp in zp(), act in act(),
                ma in rescale_ms(-6..=2), mb in rescale_ms(-6..=2),
                seed in any::<u64>(),
            ) {
                let a = random_i8(n, seed);
                let b = random_i8(n, seed ^ 1);
                let ra = Rescale { zero_point: a_zp, multiplier: ma.0, shift: ma.1 };
                let rb = Rescale { zero_point: b_zp, multiplier: mb.0, shift: mb.1 };
                let mut out = vec![0i8; n];
                k::minmax(min, (&a, ra), (&b, rb), stage(out_zp, act), &mut out);
                let want = naive::minmax(min, &a, (a_zp, ma.0, ma.1), &b, (b_zp, mb.0, mb.1), OutQ { zp: out_zp, act });
                prop_assert_eq!(out, want);
            }
        }
        }
    };
}

kernel_suite!(reference, edgeslim_runtime::kernels::reference);
kernel_suite!(portable, edgeslim_runtime::kernels::portable);
kernel_suite!(active, edgeslim_runtime::kernels::active);
#[cfg(target_arch = "x86_64")]
kernel_suite!(x86_avx2, edgeslim_runtime::kernels::x86_avx2);
#[cfg(target_arch = "x86_64")]
kernel_suite!(x86_vnni, edgeslim_runtime::kernels::x86_vnni);

/// The runtime's `no_std` AVX-512 VNNI detection agrees with std's (the `x86_vnni` suite runs
/// the VNNI convolution only where this is true; it says so when it is not).
#[cfg(target_arch = "x86_64")]
#[test]
fn vnni_detection_agrees_with_std() {
    let std_says = std::is_x86_feature_detected!("avx512f")
        && std::is_x86_feature_detected!("avx512bw")
        && std::is_x86_feature_detected!("avx512vl")
        && std::is_x86_feature_detected!("avx512vnni")
        && std::is_x86_feature_detected!("avx2");
    assert_eq!(edgeslim_runtime::kernels::x86::vnni_available(), std_says);
    if !std_says {
        eprintln!("this CPU has no AVX-512 VNNI: the x86_vnni suite ran the AVX2 kernels");
    }
}

/// The runtime's `no_std` AVX2 detection (CPUID and XCR0) agrees with std's.
#[cfg(target_arch = "x86_64")]
#[test]
fn avx2_detection_agrees_with_std() {
    assert_eq!(
        edgeslim_runtime::kernels::x86::avx2_available(),
        std::is_x86_feature_detected!("avx2")
    );
    // Cached: the same answer again.
    assert_eq!(
        edgeslim_runtime::kernels::x86::avx2_available(),
        std::is_x86_feature_detected!("avx2")
    );
}

/// Ties: requantization rounds once, to nearest with ties toward +infinity (TFLM's single
/// rounding), so `-3 * 0.5` is `-1`; no second, half-away-from-zero rounding as in TFLM's
/// default two-rounding mode.
#[test]
fn requant_rounding_of_ties() {
    let half = (1 << 30, 0); // M = 0.5 exactly
    let got: Vec<i32> = [-3, -1, 1, 3]
        .iter()
        .map(|&x| quant::multiply_by_quantized_multiplier(x, half.0, half.1))
        .collect();
    assert_eq!(got, [-1, 0, 1, 2]);
    // M = 0.25 as (2^30, -1): -2 * 0.25 = -0.5 -> 0 in one rounding; two roundings give -1.
    assert_eq!(quant::multiply_by_quantized_multiplier(-2, 1 << 30, -1), 0);
    assert_eq!(naive::requant(-2, 1 << 30, -1), 0);
    assert_eq!(naive::requant_two_roundings(-2, 1 << 30, -1), -1);
    assert_eq!(quant::multiply_by_quantized_multiplier(2, 1 << 30, -1), 1);
    // A near-tie the first rounding of the two-rounding scheme turns into a tie:
    // x * M = 1.49999... rounds to 1 once, but to 2 after rounding 2.99999... to 3, then 3/2.
    let (m, s) = (i32::MAX, -1); // M just below 0.5
    assert_eq!(quant::multiply_by_quantized_multiplier(3, m, s), 1);
    assert_eq!(naive::requant_two_roundings(3, m, s), 2);
}
