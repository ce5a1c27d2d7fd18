//! A float NHWC reference interpreter over the lowered model, with first-k slimming: what the
//! int8 model approximates at every width. Calibration runs it; tests compare against it.

use crate::passes::lower::{LOp, Lowered};
use edgeslim_runtime::OpKind;
use edgeslim_runtime::format::attr;

/// Values of every tensor (dense `[h, w, active c]`), `None` until computed.
pub type Values = Vec<Option<Vec<f32>>>;

/// Effective weights scale and bias of a weighted op at its segment's width index `w`.
pub fn width_params(op: &LOp, w: usize, out_ch: usize) -> (Vec<f32>, Vec<f32>) {
    match op
        .per_width
        .as_ref()
        .and_then(|p| p.get(w))
        .and_then(|e| e.as_ref())
    {
        Some(p) => (p.channel_scale.clone(), p.bias.clone()),
        None => (vec![1.0; out_ch], op.bias[..out_ch].to_vec()),
    }
}

/// Run the ops of the segments `run_segment` selects at grid point `(we, d)`; `values` keeps
/// what earlier calls computed (the encoder once per encoder width, then each decoder width).
pub fn run(
    l: &Lowered,
    values: &mut Values,
    we: usize,
    d: usize,
    run_segment: &dyn Fn(usize) -> bool,
) {
    for op in &l.ops {
        if !run_segment(op.segment) {
            continue;
        }
        let s = op.segment;
        let key = l.key(s, we, d);
        let ch = &op.channels[key];
        let out_t = &l.tensors[op.output];
        let in_t = &l.tensors[op.inputs[0]];
        let x = values[op.inputs[0]].clone().unwrap_or_default();
        let (cin, cout) = (ch.inputs[0], ch.out);
        let (ih, iw) = (in_t.shape[0], in_t.shape[1]);
        let (oh, ow) = (out_t.shape[0], out_t.shape[1]);
        let a = &op.attrs;
        let mut y = vec![0f32; oh * ow * cout];
        match op.kind {
            OpKind::Conv2d => {
                let (scale, bias) = width_params(op, l.width_at(s, we, d), cout);
                let [_, kh, kw, ifull] = op.wshape;
                let groups = if a[attr::DEPTHWISE] == 1 {
                    cin
                } else {
                    a[attr::GROUPS] as usize
                };
                let (cin_g, cout_g) = (cin / groups, cout / groups);
                for oy in 0..oh {
                    for ox in 0..ow {
                        for o in 0..cout {
                            let g = o / cout_g;
                            let mut acc = 0f32;
                            for ky in 0..kh {
                                let iy = (oy * a[attr::STRIDE_H] as usize
                                    + ky * a[attr::DIL_H] as usize)
                                    as isize
                                    - a[attr::PAD_TOP] as isize;
                                if iy < 0 || iy >= ih as isize {
                                    continue;
                                }
                                for kx in 0..kw {
                                    let ix = (ox * a[attr::STRIDE_W] as usize
                                        + kx * a[attr::DIL_W] as usize)
                                        as isize
                                        - a[attr::PAD_LEFT] as isize;
                                    if ix < 0 || ix >= iw as isize {
                                        continue;
                                    }
                                    let ib = (iy as usize * iw + ix as usize) * cin + g * cin_g;
                                    let wb = ((o * kh + ky) * kw + kx) * ifull;
                                    for ic in 0..cin_g {
                                        acc += x[ib + ic] * op.weights[wb + ic];
                                    }
                                }
                            }
                            y[(oy * ow + ox) * cout + o] = op.act.apply(acc * scale[o] + bias[o]);
                        }
                    }
                }
            }
            OpKind::FullyConnected => {
                let (scale, bias) = width_params(op, l.width_at(s, we, d), cout);
                let [_, p, ifull, _] = op.wshape;
                for o in 0..cout {
                    let mut acc = 0f32;
                    for pp in 0..p {
                        for c in 0..cin {
                            acc += x[pp * cin + c] * op.weights[(o * p + pp) * ifull + c];
                        }
                    }
                    y[o] = op.act.apply(acc * scale[o] + bias[o]);
                }
            }
            OpKind::Add => {
                let coef = |k: usize| op.add_coefs.get(k).copied().unwrap_or(1.0);
                for (v, a) in y.iter_mut().zip(x.iter()) {
                    *v = *a * coef(0);
                }
                for (k, &t) in op.inputs.iter().enumerate().skip(1) {
                    if let Some(xk) = values[t].as_ref() {
                        for (v, a) in y.iter_mut().zip(xk) {
                            *v += a * coef(k);
                        }
                    }
                }
                for v in y.iter_mut() {
                    *v = op.act.apply(*v);
                }
            }
            OpKind::MaxPool | OpKind::AvgPool => {
                let (kh, kw) = (a[attr::KERNEL_H] as usize, a[attr::KERNEL_W] as usize);
                for oy in 0..oh {
                    for ox in 0..ow {
                        for c in 0..cout {
                            let mut m = f32::NEG_INFINITY;
                            let mut sum = 0f32;
                            let mut n = 0;
                            for ky in 0..kh {
                                let iy = (oy * a[attr::STRIDE_H] as usize + ky) as isize
                                    - a[attr::PAD_TOP] as isize;
                                if iy < 0 || iy >= ih as isize {
                                    continue;
                                }
                                for kx in 0..kw {
                                    let ix = (ox * a[attr::STRIDE_W] as usize + kx) as isize
                                        - a[attr::PAD_LEFT] as isize;
                                    if ix < 0 || ix >= iw as isize {
                                        continue;
                                    }
                                    let v = x[(iy as usize * iw + ix as usize) * cin + c];
                                    m = m.max(v);
                                    sum += v;
                                    n += 1;
                                }
                            }
                            let v = if op.kind == OpKind::MaxPool {
                                if n == 0 { 0.0 } else { m }
                            } else {
                                let count = if a[attr::COUNT_INCLUDE_PAD] == 1 {
                                    kh * kw
                                } else {
                                    n
                                };
                                if count == 0 { 0.0 } else { sum / count as f32 }
                            };
                            y[(oy * ow + ox) * cout + c] = op.act.apply(v);
                        }
                    }
                }
            }
            OpKind::GlobalAvgPool => {
                let p = ih * iw;
                for c in 0..cout {
                    let s: f32 = (0..p).map(|i| x[i * cin + c]).sum();
                    y[c] = op.act.apply(s / p as f32);
                }
            }
            OpKind::Concat => {
                let parts: Vec<Vec<f32>> = op
                    .inputs
                    .iter()
                    .map(|&t| values[t].clone().unwrap_or_default())
                    .collect();
                let mut k = 0;
                for p in 0..oh * ow {
                    for (j, part) in parts.iter().enumerate() {
                        let c = ch.inputs[j];
                        for v in &part[p * c..(p + 1) * c] {
                            y[k] = op.act.apply(*v);
                            k += 1;
                        }
                    }
                }
            }
            OpKind::Softmax => {
                for p in 0..oh * ow {
                    let row = &x[p * cin..(p + 1) * cin];
                    let m = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
                    let e: Vec<f32> = row.iter().map(|v| (v - m).exp()).collect();
                    let s: f32 = e.iter().sum();
                    for c in 0..cin {
                        y[p * cin + c] = e[c] / s;
                    }
                }
            }
            OpKind::Reshape => y = x,
            OpKind::MinMax => {
                let x2 = values[op.inputs[1]].clone().unwrap_or_default();
                let min = a[edgeslim_runtime::ops::minmax::attr::MODE] == 1;
                for (j, v) in y.iter_mut().enumerate() {
                    let r = if min {
                        x[j].min(x2[j])
                    } else {
                        x[j].max(x2[j])
                    };
                    *v = op.act.apply(r);
                }
            }
            OpKind::GatherChannels => {
                use edgeslim_runtime::ops::gather::attr as ga;
                let (start, step) = (a[ga::START] as usize, a[ga::STEP] as usize);
                for p in 0..oh * ow {
                    for j in 0..cout {
                        y[p * cout + j] = op.act.apply(x[p * cin + start + j * step]);
                    }
                }
            }
            OpKind::ConvTranspose => {
                let (scale, bias) = width_params(op, l.width_at(s, we, d), cout);
                let [_, kh, kw, ifull] = op.wshape;
                let groups = a[attr::GROUPS] as usize;
                let (cin_g, cout_g) = (cin / groups, cout / groups);
                let (sh, sw) = (a[attr::STRIDE_H] as usize, a[attr::STRIDE_W] as usize);
                let (dh, dw) = (a[attr::DIL_H] as usize, a[attr::DIL_W] as usize);
                let (pt, pl) = (a[attr::PAD_TOP] as usize, a[attr::PAD_LEFT] as usize);
                let mut acc = vec![0f32; oh * ow * cout];
                // Scatter form (ONNX's definition), independent of the kernels' gather form.
                for iy in 0..ih {
                    for ix in 0..iw {
                        for o in 0..cout {
                            let grp = o / cout_g;
                            for ky in 0..kh {
                                let Some(oy) = (iy * sh + ky * dh).checked_sub(pt) else {
                                    continue;
                                };
                                if oy >= oh {
                                    continue;
                                }
                                for kx in 0..kw {
                                    let Some(ox) = (ix * sw + kx * dw).checked_sub(pl) else {
                                        continue;
                                    };
                                    if ox >= ow {
                                        continue;
                                    }
                                    let xb = (iy * iw + ix) * cin + grp * cin_g;
                                    let wb = ((o * kh + ky) * kw + kx) * ifull;
                                    let mut v = 0f32;
                                    for i in 0..cin_g {
                                        v += x[xb + i] * op.weights[wb + i];
                                    }
                                    acc[(oy * ow + ox) * cout + o] += v;
                                }
                            }
                        }
                    }
                }
                for (j, v) in y.iter_mut().enumerate() {
                    let o = j % cout;
                    *v = op.act.apply(acc[j] * scale[o] + bias[o]);
                }
            }
            OpKind::Transpose => {
                let p = [
                    a[edgeslim_runtime::ops::transpose::attr::PERM] as usize,
                    a[edgeslim_runtime::ops::transpose::attr::PERM + 1] as usize,
                    a[edgeslim_runtime::ops::transpose::attr::PERM + 2] as usize,
                ];
                let dims = [ih, iw, cin];
                let mut k = 0;
                let mut idx = [0usize; 3];
                for i0 in 0..dims[p[0] % 3] {
                    for i1 in 0..dims[p[1] % 3] {
                        for i2 in 0..dims[p[2] % 3] {
                            idx[p[0] % 3] = i0;
                            idx[p[1] % 3] = i1;
                            idx[p[2] % 3] = i2;
                            if let Some(v) = y.get_mut(k) {
                                *v = x[(idx[0] * iw + idx[1]) * cin + idx[2]];
                            }
                            k += 1;
                        }
                    }
                }
            }
            OpKind::Resize => {
                use edgeslim_runtime::kernels::resize::reference::{coordinate, nearest_index};
                use edgeslim_runtime::ops::resize::attr as ra;
                let (coord, nearest) = (a[ra::COORD], a[ra::NEAREST]);
                let sh = [a[ra::H_NUM], a[ra::H_DEN]];
                let sw = [a[ra::W_NUM], a[ra::W_DEN]];
                // Linear: the exact coordinate clamped to the input, its two taps and the
                // exact fraction (the runtime rounds the fraction to 1/1024).
                let taps = |(p, q): (i64, i64), n: usize| {
                    let v = (p as f64 / q as f64).clamp(0.0, (n - 1) as f64);
                    let i0 = v.floor() as usize;
                    (i0, (i0 + 1).min(n - 1), (v - i0 as f64) as f32)
                };
                for oy in 0..oh {
                    let cy = coordinate(oy, coord, sh, ih, oh);
                    for ox in 0..ow {
                        let cx = coordinate(ox, coord, sw, iw, ow);
                        for c in 0..cout {
                            let at = |yy: usize, xx: usize| x[(yy * iw + xx) * cin + c];
                            let v = if a[ra::MODE] == 1 {
                                let (y0, y1, fy) = taps(cy, ih);
                                let (x0, x1, fx) = taps(cx, iw);
                                let top = at(y0, x0) * (1.0 - fx) + at(y0, x1) * fx;
                                let bottom = at(y1, x0) * (1.0 - fx) + at(y1, x1) * fx;
                                top * (1.0 - fy) + bottom * fy
                            } else {
                                at(
                                    nearest_index(cy, nearest, ih),
                                    nearest_index(cx, nearest, iw),
                                )
                            };
                            y[(oy * ow + ox) * cout + c] = op.act.apply(v);
                        }
                    }
                }
            }
            OpKind::Pad => {
                let mode = edgeslim_runtime::kernels::PadMode::from_u32(
                    a[edgeslim_runtime::ops::pad::attr::MODE],
                )
                .unwrap_or(edgeslim_runtime::kernels::PadMode::Constant);
                let src =
                    |i, p, n| edgeslim_runtime::kernels::pad::reference::source(i, p, n, mode);
                let (top, left) = (a[attr::PAD_TOP] as usize, a[attr::PAD_LEFT] as usize);
                for oy in 0..oh {
                    for ox in 0..ow {
                        for c in 0..cout {
                            let v = match (src(oy, top, ih), src(ox, left, iw)) {
                                (Some(sy), Some(sx)) => x[(sy * iw + sx) * cin + c],
                                _ => op.pad_value,
                            };
                            y[(oy * ow + ox) * cout + c] = op.act.apply(v);
                        }
                    }
                }
            }
            OpKind::Lut => {
                // Lowering gives every table op its function.
                if let Some(f) = op.unary {
                    for (v, a) in y.iter_mut().zip(&x) {
                        *v = op.act.apply(f.apply(*a as f64) as f32);
                    }
                }
            }
            OpKind::Mul => {
                let x2 = values[op.inputs[1]].clone().unwrap_or_default();
                let per_channel = x2.len() == cin && x.len() != cin;
                for (j, v) in y.iter_mut().enumerate() {
                    let b = if per_channel { x2[j % cin] } else { x2[j] };
                    *v = op.act.apply(x[j] * b);
                }
            }
            OpKind::PRelu => {
                for (j, v) in y.iter_mut().enumerate() {
                    let a = x[j];
                    let r = if a >= 0.0 { a } else { a * op.weights[j % cin] };
                    *v = op.act.apply(r);
                }
            }
        }
        values[op.output] = Some(y);
    }
}

/// Run the whole model at grid point `(we, d)` on one NHWC input; every tensor's values.
pub fn run_all(l: &Lowered, input: &[f32], we: usize, d: usize) -> Values {
    let mut v: Values = vec![None; l.tensors.len()];
    v[l.input] = Some(input.to_vec());
    run(l, &mut v, we, d, &|_| true);
    v
}
