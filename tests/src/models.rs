//! Random slimmable models built with the runtime's `writer::example::Builder`: chains and
//! diamonds (residual adds, concatenations) in an encoder and one or two decoders, each
//! segment with its own width multipliers.

use edgeslim_runtime::format::{OpKind, attr};
use edgeslim_runtime::writer::ModelDef;
use edgeslim_runtime::writer::example::{Act, Builder, Rng};

const WIDTH_SETS: [&[f32]; 5] = [
    &[1.0],
    &[0.5, 1.0],
    &[0.25, 0.5, 1.0],
    &[0.3, 0.6, 0.8, 1.0],
    &[0.2, 0.75, 1.0],
];

fn pick<'a, T>(r: &mut Rng, xs: &'a [T]) -> &'a T {
    &xs[r.range(0, xs.len() as i32 - 1) as usize]
}

fn act(r: &mut Rng) -> Act {
    if r.range(0, 1) == 0 {
        Act::None
    } else {
        Act::Relu
    }
}

/// A conv of `x` that fits its spatial size.
#[allow(clippy::too_many_arguments)]
fn conv(
    b: &mut Builder,
    r: &mut Rng,
    seg: usize,
    in_seg: Option<usize>,
    x: usize,
    out_c: usize,
    k: usize,
    same: bool,
    slim: bool,
) -> usize {
    let [h, w, _] = b.def.tensors[x].shape;
    let (k, pad, stride) = if same {
        (k, k / 2, 1)
    } else {
        let pad = r.range(0, (k / 2) as i32) as usize;
        (k, pad, r.range(1, 2) as usize)
    };
    let (k, pad) = if h + 2 * pad < k || w + 2 * pad < k {
        (1, 0)
    } else {
        (k, pad)
    };
    let a = act(r);
    let t = b.conv(seg, in_seg, x, out_c, k, stride, pad, false, slim, a);
    if k == 3 && !same && r.range(0, 3) == 0 {
        // Dilation 2: the geometry check only asks the windows to start in the input.
        let op = b.def.ops.last_mut().expect("just pushed");
        op.attrs[attr::DIL_H] = 2;
        op.attrs[attr::DIL_W] = 2;
    }
    t
}

/// One random block from `x`.
fn step(b: &mut Builder, r: &mut Rng, seg: usize, in_seg: Option<usize>, x: usize) -> usize {
    let [h, w, c] = b.def.tensors[x].shape;
    match r.range(0, 8) {
        0 => {
            let oc = r.range(1, 8) as usize;
            let k = *pick(r, &[1, 3]);
            let slim = r.range(0, 3) != 0;
            conv(b, r, seg, in_seg, x, oc, k, false, slim)
        }
        1 => {
            let mult = r.range(1, 2) as usize;
            let stride = r.range(1, 2) as usize;
            let a = act(r);
            b.conv(seg, in_seg, x, c * mult, 3, stride, 1, true, false, a)
        }
        2 => {
            // Residual diamond: two (or three, as a flattened chain of float Adds) slim convs
            // of equal width, added.
            let oc = r.range(1, 8) as usize;
            let p = conv(b, r, seg, in_seg, x, oc, 1, true, true);
            let q = conv(b, r, seg, in_seg, x, oc, 3, true, true);
            let a = act(r);
            if r.range(0, 2) == 0 {
                let s = conv(b, r, seg, in_seg, x, oc, 1, true, true);
                b.add(seg, in_seg, &[p, q, s], a)
            } else {
                b.add(seg, in_seg, &[p, q], a)
            }
        }
        3 => {
            // Concatenation diamond.
            let oc = r.range(1, 6) as usize;
            let slim = r.range(0, 1) == 0;
            let p = conv(b, r, seg, in_seg, x, oc, 3, true, slim);
            if r.range(0, 1) == 0 {
                b.concat(seg, in_seg, &[x, p])
            } else {
                let oc2 = r.range(1, 6) as usize;
                let q = conv(b, r, seg, in_seg, x, oc2, 1, true, true);
                b.concat(seg, in_seg, &[p, q, x])
            }
        }
        5 => {
            // Element-wise ops keep the channels (and their slimming).
            match r.range(0, 3) {
                0 => b.lut(seg, in_seg, x),
                1 => b.prelu(seg, in_seg, x),
                2 => {
                    // Up or down by any ratio, every mode and rule.
                    let oh = r.range(1, 2 * h as i32 + 1) as usize;
                    let ow = r.range(1, 2 * w as i32 + 1) as usize;
                    let linear = r.range(0, 1) == 1;
                    let (coord, nearest) = (r.range(0, 3) as u32, r.range(0, 3) as u32);
                    b.resize(seg, in_seg, x, [oh, ow], linear, coord, nearest)
                }
                _ => {
                    // Padding; reflect needs every pad smaller than the input.
                    let mode = r.range(0, 2) as u32;
                    let lim = |n: usize| if mode == 1 { (n - 1).min(2) } else { 2 } as i32;
                    let pads = [
                        r.range(0, lim(h)) as usize,
                        r.range(0, lim(w)) as usize,
                        r.range(0, lim(h)) as usize,
                        r.range(0, lim(w)) as usize,
                    ];
                    b.pad(seg, in_seg, x, pads, mode)
                }
            }
        }
        6 => {
            // Squeeze-excitation: x times a per-channel vector computed from x (same width);
            // or a product of two same-shape branches.
            let a = act(r);
            if r.range(0, 1) == 0 {
                let g = b.pool(OpKind::GlobalAvgPool, seg, in_seg, x, 0, 1, 0);
                let s = b.lut(seg, in_seg, g);
                b.mul(seg, in_seg, x, s, a)
            } else if r.range(0, 1) == 0 {
                let y = b.lut(seg, in_seg, x);
                b.mul(seg, in_seg, y, x, a)
            } else {
                let y = b.lut(seg, in_seg, x);
                let min = r.range(0, 1) == 1;
                b.minmax(seg, in_seg, x, y, min)
            }
        }
        7 => {
            if r.range(0, 1) == 0 {
                // Upsampling: stride 1 or 2, kernel 1 to 3, a leading pad the output can lose.
                let (k, stride) = (r.range(1, 3) as usize, r.range(1, 2) as usize);
                let extra = r.range(0, stride as i32 - 1) as usize;
                let pad = r.range(0, ((k + extra - 1) / 2).min(1) as i32) as usize;
                let oc = r.range(1, 6) as usize;
                let slim = r.range(0, 1) == 0;
                b.conv_transpose(seg, in_seg, x, oc, k, stride, pad, extra, slim)
            } else {
                // A permutation reads its whole input: make it from a fixed-width conv.
                let oc = r.range(1, 6) as usize;
                let f = conv(b, r, seg, in_seg, x, oc, 1, true, false);
                if r.range(0, 1) == 0 {
                    // Channels start + j * step of the fixed-width tensor.
                    let start = r.range(0, oc as i32 - 1) as usize;
                    let step = r.range(1, 2) as usize;
                    let count = r.range(1, ((oc - 1 - start) / step + 1) as i32) as usize;
                    return b.gather(seg, in_seg, f, start, step, count);
                }
                let perm = *pick(r, &[[0, 2, 1], [1, 0, 2], [2, 0, 1], [1, 2, 0], [2, 1, 0]]);
                let t = b.transpose(seg, in_seg, f, perm);
                let _ = c;
                t
            }
        }
        _ => {
            let kind = *pick(r, &[OpKind::MaxPool, OpKind::AvgPool]);
            let k = r.range(1, 3).min(h.min(w) as i32) as usize;
            let pad = r.range(0, k as i32 - 1) as usize;
            let stride = r.range(1, 2) as usize;
            let t = b.pool(kind, seg, in_seg, x, k, stride, pad);
            if kind == OpKind::AvgPool && r.range(0, 1) == 0 {
                let op = b.def.ops.last_mut().expect("just pushed");
                op.attrs[attr::COUNT_INCLUDE_PAD] = 1;
            }
            t
        }
    }
}

/// A task head on `x`.
fn head(b: &mut Builder, r: &mut Rng, seg: usize, in_seg: Option<usize>, x: usize) -> usize {
    match r.range(0, 3) {
        0 => {
            let g = b.pool(OpKind::GlobalAvgPool, seg, in_seg, x, 0, 1, 0);
            let n = r.range(2, 10) as usize;
            let f = b.fc(seg, in_seg, g, n, false);
            b.softmax(seg, in_seg, f)
        }
        1 => {
            let f = b.flatten(seg, in_seg, x);
            let n = r.range(1, 6) as usize;
            let slim = r.range(0, 1) == 0;
            b.fc(seg, in_seg, f, n, slim)
        }
        2 => {
            let n = r.range(1, 6) as usize;
            let slim = r.range(0, 1) == 0;
            b.fc(seg, in_seg, x, n, slim)
        }
        _ => {
            let n = r.range(1, 6) as usize;
            let slim = r.range(0, 1) == 0;
            conv(b, r, seg, in_seg, x, n, 1, true, slim)
        }
    }
}

/// A random model: an encoder of 1 to 4 blocks and 1 or 2 decoders of 0 to 2 blocks and a
/// head, each segment with random width multipliers.
pub fn random_model(seed: u64) -> ModelDef {
    let mut r = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let n_dec = r.range(1, 2) as usize;
    let names = ["encoder", "task_a", "task_b"];
    let segs: Vec<(&str, &[f32])> = (0..=n_dec)
        .map(|s| (names[s], *pick(&mut r, &WIDTH_SETS)))
        .collect();
    let shape = [
        r.range(2, 8) as usize,
        r.range(2, 8) as usize,
        r.range(1, 4) as usize,
    ];
    let mut b = Builder::new("random", &segs, shape, seed);
    let mut cur = b.def.input;
    // The first op of the encoder: always a conv, so the input tensor is not an output.
    let oc = r.range(2, 8) as usize;
    cur = conv(&mut b, &mut r, 0, None, cur, oc, 3, false, true);
    for _ in 0..r.range(0, 3) {
        cur = step(&mut b, &mut r, 0, None, cur);
    }
    for (d, name) in names.iter().enumerate().skip(1).take(n_dec) {
        let mut t = cur;
        for _ in 0..r.range(0, 2) {
            t = step(&mut b, &mut r, d, Some(0), t);
        }
        let out = head(&mut b, &mut r, d, Some(0), t);
        b.task(name, d, out);
    }
    b.def
}

/// A model holding every op kind of kinds 10-18 (and Conv2d, GlobalAvgPool, Reshape, fully
/// connected and softmax), slimmed wherever the op allows, for the robustness tests and the
/// fuzzing seeds: with `two_task_model` (kinds 1-9) their truncations and mutations reach
/// every record's decoding and validation.
///
/// The encoder (widths 0.5, 1) is a slimmed conv, a table, PRelu, reflect padding, a
/// squeeze-excitation product (per-channel broadcast), a same-shape product, a maximum and a
/// bilinear downscale; decoder `up` (0.25, 0.5, 1) a slimmed strided transposed convolution
/// with a cropping pad and output padding, a nearest upscale, edge and constant padding, a
/// minimum and a slimmed head conv; decoder `head` (0.5, 1) a fixed-width conv, a channel
/// selection, a transpose, a flatten, a fully connected layer and a softmax.
pub fn every_op_model(seed: u64) -> ModelDef {
    let mut b = Builder::new(
        "every-op",
        &[
            ("encoder", &[0.5, 1.0]),
            ("up", &[0.25, 0.5, 1.0]),
            ("head", &[0.5, 1.0]),
        ],
        [6, 5, 2],
        seed,
    );
    let x = b.def.input;
    let c1 = b.conv(0, None, x, 6, 3, 1, 1, false, true, Act::Relu);
    let l = b.lut(0, None, c1);
    let p = b.prelu(0, None, l);
    // Reflect: every pad below the input's 6 x 5.
    let pd = b.pad(0, None, p, [1, 2, 3, 0], 1);
    let g = b.pool(OpKind::GlobalAvgPool, 0, None, pd, 0, 1, 0);
    let s = b.lut(0, None, g);
    let se = b.mul(0, None, pd, s, Act::None);
    let sq = b.mul(0, None, se, pd, Act::Relu);
    let mx = b.minmax(0, None, sq, se, false);
    let enc = b.resize(0, None, mx, [4, 3], true, 0, 0);
    // up: 4 x 3 -> (3 * 2 + 3 + 1 - 2) x (2 * 2 + 3 + 1 - 2) = 8 x 6.
    let u1 = b.conv_transpose(1, Some(0), enc, 4, 3, 2, 1, 1, true);
    let u2 = b.resize(1, Some(0), u1, [11, 9], false, 1, 1);
    let u3 = b.pad(1, Some(0), u2, [0, 1, 2, 0], 2);
    let u4 = b.pad(1, Some(0), u3, [1, 0, 0, 1], 0);
    let u5 = b.lut(1, Some(0), u4);
    let u6 = b.minmax(1, Some(0), u4, u5, true);
    let up = b.conv(1, Some(0), u6, 3, 1, 1, 0, false, true, Act::None);
    b.task("up", 1, up);
    // head: selection and transpose read whole (fixed-width) tensors.
    let f = b.conv(2, Some(0), enc, 6, 1, 1, 0, false, false, Act::None);
    let gc = b.gather(2, Some(0), f, 1, 2, 3);
    let t = b.transpose(2, Some(0), gc, [2, 0, 1]);
    let fl = b.flatten(2, Some(0), t);
    let fc = b.fc(2, Some(0), fl, 5, false);
    let sm = b.softmax(2, Some(0), fc);
    b.task("head", 2, sm);
    b.def
}

/// The valid blobs the robustness suite's truncations and mutations start from, and the seed
/// corpus of the `parse_run` fuzz target (which writes them itself): the two-task model at two
/// seeds (kinds 1-9), the every-op model (kinds 10-18) and three random models. Together they
/// hold every op kind (the robustness test `blobs_hold_every_op_kind`).
pub fn seed_blobs() -> Vec<Vec<u8>> {
    use edgeslim_runtime::writer::example::{two_task_blob, two_task_model};
    let mut defs = vec![two_task_model(99), every_op_model(3)];
    defs.extend((0..3).map(random_model));
    let mut v = vec![two_task_blob()];
    v.extend(
        defs.iter()
            .map(|d| d.to_bytes_planned().unwrap_or_default()),
    );
    v
}
