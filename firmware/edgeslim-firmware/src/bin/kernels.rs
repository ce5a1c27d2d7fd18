//! The kernels the interpreter calls on this core against the reference, in QEMU: pseudo-random
//! convolutions and fully connected layers (pointwise, `kxk` with stride, padding and
//! dilation, depthwise 3x3 (also over tall inputs split into strips and inputs wider than the
//! DSP variant's plane buffer) and other sizes with a channel multiplier, grouped, slimmed inputs
//! whose weight rows are longer than the active input, channel counts that leave tails, dot
//! products past the variants' stack buffers), every int8 value in play (weights, zero points
//! from -128 to 127), requantization shifts on both sides of the fast path. Each case runs
//! through `kernels::reference` and `kernels::active` (on `thumbv7em` and the Cortex-M33 the
//! Arm DSP variants, on the Cortex-M55 the Helium (MVE) ones; the log names them,
//! `kernels::ACTIVE_NAME`); the first differing byte names the case and ends the program
//! with exit code 1.
#![no_std]
#![no_main]

use edgeslim_firmware::entry;
use edgeslim_firmware::exit;
use edgeslim_runtime::kernels::{self, ChannelQuant, ConvGeometry, OutputStage, Shape};

/// Cases of each kind.
const CONV_CASES: u32 = 1500;
const FC_CASES: u32 = 500;

const MAX_IN: usize = 12 * 12 * 72;
const MAX_W: usize = 40_000;
const MAX_OUT: usize = 12 * 12 * 144;
const MAX_CH: usize = 256;

/// xorshift32: small, deterministic, good enough to spread shapes and values.
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
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() as usize) % (hi - lo + 1)
    }
    fn i8(&mut self) -> i8 {
        self.next() as i8
    }
    fn chance(&mut self, percent: u32) -> bool {
        self.next() % 100 < percent
    }
}

/// Random `(bias, multiplier, shift)` triples for `n` channels, as the blob stores them.
fn quant(rng: &mut Rng, n: usize, out: &mut [u8]) {
    for c in out[..n * ChannelQuant::STRIDE].chunks_exact_mut(ChannelQuant::STRIDE) {
        let bias = match rng.next() % 4 {
            0 => 0,
            1 => (rng.next() as i32) >> 12,
            2 => (rng.next() as i32) >> 4,
            _ => rng.next() as i32,
        };
        let mult = ((1u32 << 30) | (rng.next() >> 2)) as i32;
        // Mostly the usual right shifts (the fast path), sometimes none or a left shift.
        let shift = match rng.next() % 8 {
            0 => rng.range(0, 3) as i32 - 1,
            1 => -(rng.range(20, 31) as i32),
            _ => -(rng.range(2, 14) as i32),
        };
        c[0..4].copy_from_slice(&bias.to_le_bytes());
        c[4..8].copy_from_slice(&mult.to_le_bytes());
        c[8..12].copy_from_slice(&shift.to_le_bytes());
    }
}

fn stage(rng: &mut Rng) -> OutputStage {
    let zero_point = rng.i8() as i32;
    let (a, b) = (rng.i8(), rng.i8());
    let (act_min, act_max) = if rng.chance(50) {
        (-128, 127)
    } else {
        (a.min(b), a.max(b))
    };
    OutputStage {
        zero_point,
        act_min,
        act_max,
    }
}

struct Bufs {
    input: [i8; MAX_IN],
    weights: [i8; MAX_W],
    quant: [u8; MAX_CH * ChannelQuant::STRIDE],
    want: [i8; MAX_OUT],
    got: [i8; MAX_OUT],
}

#[entry]
fn main() -> ! {
    let Some(b) = edgeslim_firmware::singleton!(BUFS: Bufs = Bufs {
        input: [0; MAX_IN],
        weights: [0; MAX_W],
        quant: [0; MAX_CH * ChannelQuant::STRIDE],
        want: [0; MAX_OUT],
        got: [0; MAX_OUT],
    }) else {
        exit(1)
    };
    let mut rng = Rng(0x2545_f491);
    let mut macs = 0u64;
    for case in 0..CONV_CASES {
        macs += conv_case(case, &mut rng, b);
    }
    for case in 0..FC_CASES {
        macs += fc_case(case, &mut rng, b);
    }
    defmt::info!(
        "kernels: {=u32} convolution and {=u32} fully connected cases, {=u64} MACs: active ({=str}) == reference",
        CONV_CASES,
        FC_CASES,
        macs,
        kernels::ACTIVE_NAME
    );
    exit(0)
}

/// Input sizes beyond the usual 1..9 square.
#[derive(Clone, Copy, PartialEq)]
enum Big {
    No,
    Tall,
    Wide,
}

#[derive(defmt::Format, Clone, Copy, PartialEq)]
enum Kind {
    Pointwise,
    Kxk,
    Depthwise3x3,
    Depthwise,
    Grouped,
    LongDot,
}

fn conv_case(case: u32, rng: &mut Rng, b: &mut Bufs) -> u64 {
    let kind = match rng.next() % 16 {
        0..=4 => Kind::Pointwise,
        5..=8 => Kind::Kxk,
        9..=12 => Kind::Depthwise3x3,
        13 => Kind::Depthwise,
        14 => Kind::Grouped,
        _ => Kind::LongDot,
    };
    let (h, w) = (rng.range(1, 9), rng.range(1, 9));
    let stride = [rng.range(1, 2), rng.range(1, 2)];
    let mut dilation = [1, 1];
    let mut big = Big::No;
    let (groups, cin_g, cout_g, k) = match kind {
        // A third with short dot products (the unrolled path of at most 16 values) and
        // more than 64 output channels (row pairs across the 32-pair blocks).
        Kind::Pointwise if rng.chance(33) => (1, rng.range(1, 20), rng.range(1, 80), [1, 1]),
        Kind::Pointwise => (1, rng.range(1, 70), rng.range(1, 40), [1, 1]),
        Kind::Kxk => {
            if rng.chance(15) {
                dilation = [rng.range(1, 2), rng.range(1, 2)];
            }
            let k = [rng.range(1, 3), rng.range(1, 5)];
            (1, rng.range(1, 24), rng.range(1, 24), k)
        }
        // Now and then a few channels over a tall input (the DSP variant's plane strips) or
        // a very wide one (wider than its plane buffer: the quad path).
        Kind::Depthwise3x3 if rng.chance(8) => {
            big = if rng.chance(50) { Big::Tall } else { Big::Wide };
            (rng.range(2, 4), 1, 1, [3, 3])
        }
        Kind::Depthwise3x3 => {
            let c = if rng.chance(20) {
                rng.range(60, 72)
            } else {
                rng.range(2, 20)
            };
            let mult = if rng.chance(70) { 1 } else { rng.range(2, 3) };
            (c, 1, mult, [3, 3])
        }
        Kind::Depthwise => {
            dilation = [rng.range(1, 2), rng.range(1, 2)];
            (
                rng.range(2, 16),
                1,
                rng.range(1, 2),
                [rng.range(1, 5), rng.range(1, 5)],
            )
        }
        Kind::Grouped => (
            rng.range(2, 4),
            rng.range(2, 6),
            rng.range(1, 5),
            [rng.range(1, 3); 2],
        ),
        // Pointwise and 3x3 whose dot product is longer than the DSP variant's buffer.
        Kind::LongDot => {
            if rng.chance(50) {
                (1, rng.range(500, 700), rng.range(1, 9), [1, 1])
            } else {
                (1, rng.range(50, 70), rng.range(1, 9), [3, 3])
            }
        }
    };
    let (h, w) = match (kind, big) {
        (Kind::LongDot, _) => (h.min(3), w.min(3)),
        (_, Big::Tall) => (rng.range(40, 60), rng.range(28, 40)),
        (_, Big::Wide) => (rng.range(2, 5), rng.range(340, 400)),
        _ => (h, w),
    };
    // Padding up to k - 1, now and then wider than the kernel.
    let mut pad = [0; 2];
    for (p, &k) in pad.iter_mut().zip(&k) {
        let wide = if rng.chance(10) { 2 } else { 0 };
        *p = rng.range(0, (k - 1).max(wide));
    }
    let cin = groups * cin_g;
    let cout = groups * cout_g;
    // Slimmed: the stored rows are longer than the active input (not for depthwise).
    let i_full = if cin_g > 1 && rng.chance(40) {
        cin_g + rng.range(1, 5)
    } else {
        cin_g
    };
    let o_full = cout + if rng.chance(30) { rng.range(1, 4) } else { 0 };
    let span = |n: usize, k: usize, d: usize, s: usize, p: usize| {
        let eff = d * (k - 1) + 1;
        if n + 2 * p < eff {
            0
        } else {
            (n + 2 * p - eff) / s + 1
        }
    };
    let out = Shape {
        h: span(h, k[0], dilation[0], stride[0], pad[0]),
        w: span(w, k[1], dilation[1], stride[1], pad[1]),
        c: cout,
    };
    let ins = Shape { h, w, c: cin };
    let w_shape = [o_full, k[0], k[1], i_full];
    let w_len = o_full * k[0] * k[1] * i_full;
    if out.h == 0
        || out.w == 0
        || ins.len() > MAX_IN
        || w_len > MAX_W
        || out.len() > MAX_OUT
        || cout > MAX_CH
    {
        return 0;
    }
    let in_zp = rng.i8() as i32;
    for x in &mut b.input[..ins.len()] {
        *x = rng.i8();
    }
    // Now and then inputs at the extremes, where (x - zp) is largest.
    if rng.chance(10) {
        let v = if rng.chance(50) { -128 } else { 127 };
        b.input[..ins.len()].fill(v);
    }
    for x in &mut b.weights[..w_len] {
        *x = rng.i8();
    }
    if rng.chance(10) {
        b.weights[..w_len].fill(if rng.chance(50) { -128 } else { 127 });
    }
    quant(rng, cout, &mut b.quant);
    let st = stage(rng);
    let geo = ConvGeometry {
        stride,
        pad,
        dilation,
        groups,
    };
    let chan = ChannelQuant::new(&b.quant[..cout * ChannelQuant::STRIDE]);
    let n = out.len();
    b.want[..n].fill(0x55);
    b.got[..n].fill(-0x56);
    let input = &b.input[..ins.len()];
    let weights = &b.weights[..w_len];
    kernels::reference::conv2d(
        &geo,
        input,
        ins,
        in_zp,
        weights,
        w_shape,
        chan,
        st,
        &mut b.want[..n],
        out,
    );
    kernels::active::conv2d(
        &geo,
        input,
        ins,
        in_zp,
        weights,
        w_shape,
        chan,
        st,
        &mut b.got[..n],
        out,
    );
    if let Some(i) = (0..n).find(|&i| b.want[i] != b.got[i]) {
        defmt::error!(
            "conv case {=u32} ({}) differs at output {=usize} (pos {=usize}, channel {=usize}): reference {=i8}, active {=i8}",
            case,
            kind,
            i,
            i / cout,
            i % cout,
            b.want[i],
            b.got[i]
        );
        defmt::error!(
            "  in {=usize}x{=usize}x{=usize} zp {=i32}, weights {}, groups {=usize}, stride {}, pad {}, dilation {}, out {=usize}x{=usize}x{=usize}",
            h,
            w,
            cin,
            in_zp,
            &w_shape[..],
            groups,
            &stride[..],
            &pad[..],
            &dilation[..],
            out.h,
            out.w,
            cout
        );
        exit(1);
    }
    (out.len() * k[0] * k[1] * cin_g) as u64
}

fn fc_case(case: u32, rng: &mut Rng, b: &mut Bufs) -> u64 {
    let positions = rng.range(1, 4);
    let in_ch = if rng.chance(20) {
        rng.range(200, 700)
    } else {
        rng.range(1, 80)
    };
    let i_full = in_ch + if rng.chance(40) { rng.range(1, 5) } else { 0 };
    let n_out = if rng.chance(15) {
        rng.range(60, 140)
    } else {
        rng.range(1, 20)
    };
    let o_full = n_out + if rng.chance(30) { rng.range(1, 3) } else { 0 };
    let in_len = positions * in_ch;
    let w_len = o_full * positions * i_full;
    if in_len > MAX_IN || w_len > MAX_W || n_out > MAX_CH {
        return 0;
    }
    let in_zp = rng.i8() as i32;
    for x in &mut b.input[..in_len] {
        *x = rng.i8();
    }
    for x in &mut b.weights[..w_len] {
        *x = rng.i8();
    }
    quant(rng, n_out, &mut b.quant);
    let st = stage(rng);
    let chan = ChannelQuant::new(&b.quant[..n_out * ChannelQuant::STRIDE]);
    b.want[..n_out].fill(0x55);
    b.got[..n_out].fill(-0x56);
    let (input, weights) = (&b.input[..in_len], &b.weights[..w_len]);
    kernels::reference::fully_connected(
        input,
        positions,
        in_ch,
        in_zp,
        weights,
        i_full,
        chan,
        st,
        &mut b.want[..n_out],
    );
    kernels::active::fully_connected(
        input,
        positions,
        in_ch,
        in_zp,
        weights,
        i_full,
        chan,
        st,
        &mut b.got[..n_out],
    );
    if let Some(i) = (0..n_out).find(|&i| b.want[i] != b.got[i]) {
        defmt::error!(
            "fc case {=u32} differs at output {=usize}: reference {=i8}, active {=i8}; positions {=usize}, in_ch {=usize}, i_full {=usize}, zp {=i32}, outputs {=usize}",
            case,
            i,
            b.want[i],
            b.got[i],
            positions,
            in_ch,
            i_full,
            in_zp,
            n_out
        );
        exit(1);
    }
    (n_out * in_len) as u64
}
