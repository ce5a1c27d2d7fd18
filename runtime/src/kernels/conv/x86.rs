//! The x86-64 variant: explicit AVX2 for the hot paths (pointwise and im2col convolution as a
//! matrix product, depthwise convolution across channels), chosen at run time; the portable
//! variant for every other shape and on CPUs without AVX2. Same bytes as the reference (the
//! exactness argument is in `kernels/x86.rs`).

use core::arch::x86_64::*;
use core::mem::MaybeUninit;

use super::portable;
use super::{x86_rows, x86_vnni};
use crate::kernels::common::{prefix, taps};
use crate::kernels::x86::{
    QuantBlock, StageV, avx2_available, hsum4, pack8, pack16, requant8, store16, vnni_available,
};
use crate::kernels::{ChannelQuant, ConvGeometry, OutputStage, Shape};

/// Longest dot product (`kh * kw * i_full` values) of the matrix-product paths: two i16
/// buffers of this length live on the stack (16 KiB).
const K_MAX: usize = 4096;

/// Output channels whose requantization parameters are loaded together.
const Q_CHUNK: usize = 256;

/// Output channels per block of [`gemm_v`] (two vectors of eight i32 lanes).
const V_OC: usize = 16;
/// Most output channels of [`gemm_v`] (their requantization parameters are loaded once).
const V_MAX_OUT: usize = 256;
/// Positions whose windows [`gemm_v`] lays out at once.
const V_CHUNK: usize = 16;
/// i16 values of [`gemm_v`]'s window buffer (`V_CHUNK` windows; 32 KiB on the stack).
const V_WIN: usize = 16384;
/// i16 pairs of [`gemm_v`]'s packed weights (64 KiB on the stack).
const V_PACK: usize = 16384;

/// Packed depthwise weights (i16) held on the stack (32 KiB).
const DW_PACK: usize = 16384;

/// Most kernel taps of the depthwise path.
const DW_TAPS: usize = 64;

/// 2-D convolution; same contract and bytes as [`crate::kernels::reference::conv2d`].
///
/// With AVX-512 VNNI: one group with at most [`K_MAX`] active window values runs as a matrix
/// product through `vpdpbusd` (`x86_vnni.rs`), depthwise (any channel multiplier) by output
/// rows, 32 outputs per step (`x86_rows.rs`). With AVX2: one group with 1x1 taps (pointwise)
/// or a window of at most [`K_MAX`] stored values (im2col) runs as a matrix product of
/// broadcast window pairs against sixteen output channels (`vpmaddwd`); depthwise by output
/// rows, 16 outputs per step. Depthwise layers whose rows the row path's buffers cannot hold
/// run 16 channels of one position per step. Everything else, and every CPU without AVX2,
/// runs the portable variant.
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
    Params::new(
        geo, in_shape, in_zp, weights, w_shape, chan, stage, out_shape,
    )
    .run(vnni_available(), input, output);
}

/// [`conv2d`] without the AVX-512 VNNI path (the AVX2 kernels even on a CPU with VNNI): the
/// kernel suites hold both instruction sets to the reference on one machine.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_avx2(
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
    Params::new(
        geo, in_shape, in_zp, weights, w_shape, chan, stage, out_shape,
    )
    .run(false, input, output);
}

// The row plan (600 bytes) lives on the stack for one call; the runtime does not allocate.
#[allow(clippy::large_enum_variant)]
enum Path {
    Vnni,
    DwRows(x86_rows::Plan),
    GemmV,
    Gemm,
    Depthwise,
    Portable,
}

/// One call's operands, as the kernels of this file and of `x86_vnni.rs` take them.
pub(super) struct Params<'a, 'g> {
    pub(super) geo: &'g ConvGeometry,
    pub(super) in_shape: Shape,
    pub(super) zp: i16,
    pub(super) weights: &'a [i8],
    pub(super) w_shape: [usize; 4],
    pub(super) chan: ChannelQuant<'a>,
    pub(super) stage: OutputStage,
    pub(super) out_shape: Shape,
}

impl<'a, 'g> Params<'a, 'g> {
    #[allow(clippy::too_many_arguments)]
    fn new(
        geo: &'g ConvGeometry,
        in_shape: Shape,
        in_zp: i32,
        weights: &'a [i8],
        w_shape: [usize; 4],
        chan: ChannelQuant<'a>,
        stage: OutputStage,
        out_shape: Shape,
    ) -> Self {
        Params {
            geo,
            in_shape,
            zp: in_zp as i16,
            weights,
            w_shape,
            chan,
            stage,
            out_shape,
        }
    }

    /// A pointwise convolution with stride 1 and no padding: output position `q` reads input
    /// pixel `q` alone, so the windows of consecutive positions are consecutive pixels.
    pub(super) fn pixel_per_position(&self) -> bool {
        let [_, kh, kw, _] = self.w_shape;
        let (geo, ins, outs) = (self.geo, self.in_shape, self.out_shape);
        kh == 1
            && kw == 1
            && geo.stride == [1, 1]
            && geo.pad == [0, 0]
            && outs.h == ins.h
            && outs.w == ins.w
    }

    /// Runs the path [`Self::path`] chooses (`avx512`: whether the AVX-512 paths may be taken,
    /// passed only when `vnni_available()`: AVX-512 F, BW, VL and VNNI).
    fn run(&self, avx512: bool, input: &[i8], output: &mut [i8]) {
        let path = if avx2_available() {
            self.path(avx512, input, output)
        } else {
            Path::Portable
        };
        match path {
            // SAFETY (this and `DwRows`): `path` chose them only after `avx2_available()` and
            // after checking every slice length the kernels rely on; the VNNI path, and
            // `DwRows` with 32 lanes, only with `avx512`, which callers pass only when
            // `vnni_available()` (AVX-512 F, BW, VL, VNNI) held.
            Path::Vnni => unsafe { x86_vnni::gemm(self, input, output) },
            // SAFETY (all four): AVX2 was detected (`avx2_available`) before `path` chose an
            // AVX2 path, and `path` checked every slice length the kernel relies on.
            Path::GemmV => unsafe { gemm_v(self, input, output) },
            Path::Gemm => unsafe { gemm(self, input, output) },
            Path::Depthwise => unsafe { depthwise(self, input, output) },
            Path::DwRows(plan) => unsafe { x86_rows::run(self, &plan, input, output) },
            Path::Portable => portable::conv2d(
                self.geo,
                input,
                self.in_shape,
                self.zp as i32,
                self.weights,
                self.w_shape,
                self.chan,
                self.stage,
                output,
                self.out_shape,
            ),
        }
    }

    /// The AVX2 path for this shape, or `Portable`. An AVX2 path is only chosen when every
    /// slice is at least as long as the contract states (so that the kernels' unchecked loads
    /// stay in bounds); otherwise the portable variant runs and behaves as it always did.
    fn path(&self, avx512: bool, input: &[i8], output: &[i8]) -> Path {
        let [o_full, kh, kw, i_full] = self.w_shape;
        let (ins, outs, geo) = (self.in_shape, self.out_shape, self.geo);
        let groups = geo.groups.max(1);
        let taps = kh * kw;
        let sizes_ok = input.len() >= ins.len()
            && output.len() >= outs.len()
            && self.chan.len() >= outs.c
            && o_full >= outs.c
            && geo.dilation[0] >= 1
            && geo.dilation[1] >= 1
            && outs.c > 0
            && taps > 0
            && i_full > 0
            && o_full
                .checked_mul(taps)
                .and_then(|n| n.checked_mul(i_full))
                .is_some_and(|n| n <= self.weights.len());
        if !sizes_ok {
            return Path::Portable;
        }
        let cin_g = ins.c / groups;
        // Depthwise, any channel multiplier. (A one-channel input, depthwise with one group,
        // runs faster through the matrix paths: measured 8 against 22 us on mcu-bench-mtl's
        // first layer.)
        if groups > 1 && cin_g == 1 && ins.c == groups && outs.c % groups == 0 {
            // By output rows (`x86_rows.rs`), 32 outputs per step with AVX-512, else 16.
            let lanes = if avx512 { 32 } else { 16 };
            if let Some(plan) = x86_rows::Plan::new(self, lanes) {
                return Path::DwRows(plan);
            }
        }
        if groups == 1 && ins.c > 0 && ins.c <= i_full && taps * i_full <= K_MAX {
            if avx512 && x86_vnni::fits(taps * ins.c) {
                return Path::Vnni;
            }
            // gemm_v works on the active columns only (`taps * ins.c` values).
            let pairs = (taps * ins.c).div_ceil(2);
            if outs.c <= V_MAX_OUT
                && V_CHUNK * 2 * pairs <= V_WIN
                && outs.c.div_ceil(V_OC) * V_OC * pairs <= V_PACK
            {
                return Path::GemmV;
            }
            return Path::Gemm;
        }
        let blocks = outs.c.div_ceil(16);
        if groups > 1
            && cin_g == 1
            && outs.c == groups
            && taps <= DW_TAPS
            && taps.div_ceil(2) * blocks * 32 <= DW_PACK
        {
            return Path::Depthwise;
        }
        Path::Portable
    }
}

/// Input offsets of the in-bounds pixels along one axis: `Some(i)` for kernel tap `k` when
/// `start + k * dil - pad` lies in `0..n`.
#[inline(always)]
fn coord(start: usize, k: usize, dil: usize, pad: usize, n: usize) -> Option<usize> {
    (start + k * dil).checked_sub(pad).filter(|&i| i < n)
}

/// One group, any window of at most [`K_MAX`] stored values (pointwise included): per pair of
/// output positions, each window is laid out as i16 `x - in_zp` in the weights' order
/// (`[kh][kw][i_full]`, zero for padding taps and inactive columns, zero-padded to a multiple
/// of 16), then every block of four output channels takes one dot product per position
/// against its four contiguous weight rows (`vpmovsxbw` + `vpmaddwd`).
#[target_feature(enable = "avx2")]
unsafe fn gemm(p: &Params<'_, '_>, input: &[i8], output: &mut [i8]) {
    let [_, kh, kw, i_full] = p.w_shape;
    let outs = p.out_shape;
    let k_len = kh * kw * i_full;
    let mut buf_a = [0i16; K_MAX];
    let mut buf_b = [0i16; K_MAX];
    let n_pos = outs.h * outs.w;
    let n_out = outs.c;
    let st = StageV::new(&p.stage);
    // Lay out the window of output position `pos` in `buf`, taps `i_full` apart. Entries this
    // does not write stay zero: the inactive columns (never written) and, at the border, the
    // whole buffer is cleared first.
    let fill = |buf: &mut [i16; K_MAX], pos: usize| {
        window(
            p,
            input,
            &mut buf[..k_len],
            i_full,
            pos / outs.w,
            pos % outs.w,
        );
    };
    let k16 = k_len - k_len % 16;
    let mut q0 = 0;
    while q0 < n_out {
        let q_n = Q_CHUNK.min(n_out - q0);
        let q = QuantBlock::<{ Q_CHUNK + 4 }>::load(&p.chan, q0, n_out - 1);
        let mut pos = 0;
        while pos < n_pos {
            // An odd last position is computed twice, stored once.
            let pos_b = (pos + 1).min(n_pos - 1);
            fill(&mut buf_a, pos);
            fill(&mut buf_b, pos_b);
            let mut oc = 0;
            while oc < q_n {
                let o0 = q0 + oc;
                let rows: [usize; 4] = core::array::from_fn(|j| (o0 + j).min(n_out - 1) * k_len);
                // SAFETY: `Params::path` checked `o_full * k_len <= weights.len()` and
                // `n_out <= o_full`, so every row `rows[j] .. rows[j] + k_len` is in bounds;
                // the buffers hold `k_pad <= K_MAX` values.
                let v = unsafe { dot_4x2(p.weights, rows, k_len, k16, &buf_a, &buf_b) };
                let ld = |a: &[i32; Q_CHUNK + 4]| {
                    // SAFETY: `oc + 4 <= Q_CHUNK + 4`: four i32 in bounds.
                    let h = unsafe { _mm_loadu_si128(a.as_ptr().add(oc).cast()) };
                    _mm256_broadcastsi128_si256(h)
                };
                let r = requant8(v, ld(&q.bias), ld(&q.mult), ld(&q.total), st);
                let bytes = pack8(r);
                let n = 4.min(n_out - o0);
                let put = |output: &mut [i8], at: usize, b: &[u8]| {
                    for (o, &b) in output[at * n_out + o0..][..n].iter_mut().zip(b) {
                        *o = b as i8;
                    }
                };
                put(output, pos, &bytes[..4]);
                if pos_b != pos {
                    put(output, pos_b, &bytes[4..]);
                }
                oc += 4;
            }
            pos += 2;
        }
        q0 += q_n;
    }
}

/// The window of output position (`oy`, `ox`) as i16 `x - in_zp`, tap `(ky, kx)` at
/// `(ky * kw + kx) * tap_stride` (`tap_stride` is `i_full` for the stored layout, `in.c` for
/// the compacted one); `buf` is the window's `kh * kw * tap_stride` values. A window that is
/// not wholly inside the input is cleared first, so its padding taps are 0; otherwise only the
/// active values are written (the rest keep what the caller put there: zeros).
#[inline(always)]
fn window(
    p: &Params<'_, '_>,
    input: &[i8],
    buf: &mut [i16],
    tap_stride: usize,
    oy: usize,
    ox: usize,
) {
    let [_, kh, kw, _] = p.w_shape;
    let (geo, ins) = (p.geo, p.in_shape);
    let cin = ins.c;
    let (y0, x0) = (oy * geo.stride[0], ox * geo.stride[1]);
    let ky_r = taps(y0, geo.pad[0], geo.dilation[0], kh, ins.h);
    let kx_r = taps(x0, geo.pad[1], geo.dilation[1], kw, ins.w);
    if ky_r.len() < kh || kx_r.len() < kw {
        buf.fill(0);
    }
    for ky in ky_r {
        let iy = y0 + ky * geo.dilation[0] - geo.pad[0];
        for kx in kx_r.clone() {
            let ix = x0 + kx * geo.dilation[1] - geo.pad[1];
            let src = &input[(iy * ins.w + ix) * cin..][..cin];
            let dst = &mut buf[(ky * kw + kx) * tap_stride..][..cin];
            for (d, &s) in dst.iter_mut().zip(src) {
                *d = s as i16 - p.zp;
            }
        }
    }
}

/// One group, a window of `k_len` stored values (pointwise included) whose packed weights fit
/// [`V_PACK`]: the weights are packed once per call as i16 pairs `(w[o][2j], w[o][2j + 1])`,
/// sixteen output channels side by side (`[block][j][16]`), and the windows of up to
/// [`V_CHUNK`] output positions are laid out as i16 `x - in_zp` pairs (as [`gemm`] does). Then
/// per block of sixteen channels and tile of four positions, each pair of window values is
/// broadcast to all lanes and one `vpmaddwd` per eight channels adds two products to each
/// lane's accumulator: the sums come out one output channel per lane, so requantization and
/// the store work on whole vectors (no horizontal sums), and the output row of a position is
/// contiguous in NHWC.
///
/// # Safety
/// AVX2 must be available and `Params::path` must have chosen this path (slice lengths,
/// buffer bounds).
#[target_feature(enable = "avx2")]
unsafe fn gemm_v(p: &Params<'_, '_>, input: &[i8], output: &mut [i8]) {
    let [_, kh, kw, i_full] = p.w_shape;
    let (ins, outs) = (p.in_shape, p.out_shape);
    let cin = ins.c;
    // The stored row of an output channel is `[kh][kw][i_full]`; only the first `cin` columns
    // of each tap are active (a slimmed input). Weights and windows are laid out compacted to
    // the active values, `[kh][kw][cin]`: a layer at a quarter of the width does a quarter of
    // the work, not all of it against zeros.
    let w_row = kh * kw * i_full;
    let k_len = kh * kw * cin;
    let kp = k_len.div_ceil(2);
    let ks = 2 * kp;
    let n_pos = outs.h * outs.w;
    let n_out = outs.c;
    let blocks = n_out.div_ceil(V_OC);
    let zp = p.zp;
    let st = StageV::new(&p.stage);
    // Packed weights: channels past `n_out` and the value past an odd `k_len` are zero. Only
    // the `blocks * kp * V_OC` entries used are written (zeroing all 64 KiB per call cost more
    // than a small layer's arithmetic).
    // `used <= V_PACK` (path check), so `packed.len() == used`.
    let used = blocks * kp * V_OC;
    let mut packed_buf = [MaybeUninit::<i32>::uninit(); V_PACK];
    let packed = prefix(&mut packed_buf, used, 0);
    for (b, blk) in packed.chunks_exact_mut(kp * V_OC).enumerate() {
        for l in 0..V_OC.min(n_out - b * V_OC) {
            let row = &p.weights[(b * V_OC + l) * w_row..][..w_row];
            if i_full == cin {
                // Every column active: the row is the compacted row.
                for (j, pair) in row.chunks(2).enumerate() {
                    let lo = pair[0] as i16 as u16 as u32;
                    let hi = pair.get(1).map_or(0, |&v| v as i16 as u16 as u32);
                    blk[j * V_OC + l] = (lo | (hi << 16)) as i32;
                }
                continue;
            }
            // Active value `v = t * cin + c` is stored column `t * i_full + c`; walked tap by
            // tap (no division per value), each value going to the low or high half of pair
            // `v / 2`.
            let mut v = 0;
            for tap in row.chunks_exact(i_full) {
                for &w in &tap[..cin] {
                    let e = &mut blk[(v / 2) * V_OC + l];
                    let h = w as i16 as u16 as u32;
                    *e = if v % 2 == 0 {
                        h as i32
                    } else {
                        (*e as u32 | (h << 16)) as i32
                    };
                    v += 1;
                }
            }
        }
    }
    // Requantization parameters of every channel (padded blocks repeat the last one).
    let q = QuantBlock::<V_MAX_OUT>::load_n(&p.chan, 0, n_out - 1, blocks * V_OC);
    // The windows: as for the packed weights, only the `V_CHUNK * ks` values used are zeroed.
    // `V_CHUNK * ks <= V_WIN` (path check), so `win.len() == V_CHUNK * ks`.
    let mut win_buf = [MaybeUninit::<i16>::uninit(); V_WIN];
    let win = prefix(&mut win_buf, V_CHUNK * ks, 0);
    // Lays out the window of output position (oy, ox) in slot `slot`, compacted (taps `cin`
    // apart; entries not written stay zero, at the border the window is cleared first).
    let fill = |win: &mut [i16], slot: usize, oy: usize, ox: usize| {
        window(p, input, &mut win[slot * ks..][..k_len], cin, oy, ox);
    };
    // A pointwise convolution with stride 1, no padding and an even channel count reads each
    // position's pixel whole, and the windows of consecutive
    // positions are consecutive pixels: a chunk's windows are one run of the input, converted
    // in one loop (the per-position set-up dominated narrow layers).
    let contiguous = p.pixel_per_position() && ks == cin;
    let (mut oy, mut ox) = (0, 0);
    let mut c0 = 0;
    while c0 < n_pos {
        let nc = V_CHUNK.min(n_pos - c0);
        if contiguous {
            let src = &input[c0 * cin..(c0 + nc) * cin];
            for (d, &x) in win[..nc * ks].iter_mut().zip(src) {
                *d = x as i16 - zp;
            }
        } else {
            for slot in 0..nc {
                fill(win, slot, oy, ox);
                ox += 1;
                if ox == outs.w {
                    ox = 0;
                    oy += 1;
                }
            }
        }
        for b in 0..blocks {
            let ld = |a: &[i32; V_MAX_OUT], h: usize| {
                // SAFETY: `b * V_OC + 8 * h + 8 <= blocks * V_OC <= V_MAX_OUT` (path check).
                unsafe { _mm256_loadu_si256(a.as_ptr().add(b * V_OC + 8 * h).cast()) }
            };
            let (bias, mult, total) = (
                [ld(&q.bias, 0), ld(&q.bias, 1)],
                [ld(&q.mult, 0), ld(&q.mult, 1)],
                [ld(&q.total, 0), ld(&q.total, 1)],
            );
            let n_valid = V_OC.min(n_out - b * V_OC);
            let pk = packed[b * kp * V_OC..].as_ptr();
            let mut t0 = 0;
            while t0 < nc {
                // Four slots; past the chunk's end the last one repeats (computed, not stored).
                let slots: [usize; 4] = core::array::from_fn(|t| (t0 + t).min(nc - 1));
                let wp = slots.map(|s| win[s * ks..].as_ptr());
                let z = _mm256_setzero_si256();
                let mut acc = [[z; 2]; 4];
                // At most eight channels in the block (slimmed layers): the second vector of
                // lanes holds no stored channel, so it is neither summed nor requantized.
                let half = n_valid <= 8;
                for j in 0..kp {
                    // SAFETY: `(b * kp + j) * V_OC + 16 <= blocks * kp * V_OC = packed.len()`
                    // (path check), and each slot's pair `2j, 2j + 1 < ks` lies inside its
                    // window, `(slot + 1) * ks <= V_CHUNK * ks = win.len()`; unaligned loads.
                    unsafe {
                        let w0 = _mm256_loadu_si256(pk.add(j * V_OC).cast());
                        if half {
                            for (t, a) in acc.iter_mut().enumerate() {
                                let x = _mm256_set1_epi32(
                                    wp[t].add(2 * j).cast::<i32>().read_unaligned(),
                                );
                                a[0] = _mm256_add_epi32(a[0], _mm256_madd_epi16(x, w0));
                            }
                        } else {
                            let w1 = _mm256_loadu_si256(pk.add(j * V_OC + 8).cast());
                            for (t, a) in acc.iter_mut().enumerate() {
                                let x = _mm256_set1_epi32(
                                    wp[t].add(2 * j).cast::<i32>().read_unaligned(),
                                );
                                a[0] = _mm256_add_epi32(a[0], _mm256_madd_epi16(x, w0));
                                a[1] = _mm256_add_epi32(a[1], _mm256_madd_epi16(x, w1));
                            }
                        }
                    }
                }
                for (t, a) in acc.iter().enumerate().take(nc - t0) {
                    let r0 = requant8(a[0], bias[0], mult[0], total[0], st);
                    let r1 = if half {
                        r0
                    } else {
                        requant8(a[1], bias[1], mult[1], total[1], st)
                    };
                    let v = pack16(r0, r1);
                    let at = (c0 + t0 + t) * n_out + b * V_OC;
                    let dst = &mut output[at..at + n_valid];
                    store16(dst, v);
                }
                t0 += 4;
            }
        }
        c0 += nc;
    }
}

/// Dot products of the four weight rows at `rows` (`k_len` values each) with the two i16
/// windows `a` and `b`: lanes 0..3 of the result are row `j` against `a`, lanes 4..7 against
/// `b`. The vector loop covers `k16` values; the remaining `k_len - k16 < 16` go through one
/// more step whose weights are copied (zero-padded) unless the row has 16 bytes left.
///
/// # Safety
/// AVX2 must be available; `rows[j] + k_len <= w.len()` for every `j`; `k_len <= K_MAX`
/// and `k16 = k_len - k_len % 16`; `a` and `b` hold zeros from `k_len` to the next multiple of
/// 16 (at most `K_MAX`, itself a multiple of 16).
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn dot_4x2(
    w: &[i8],
    rows: [usize; 4],
    k_len: usize,
    k16: usize,
    a: &[i16; K_MAX],
    b: &[i16; K_MAX],
) -> __m256i {
    let z = _mm256_setzero_si256();
    let mut acc = [z; 8];
    let wp = w.as_ptr();
    let (ap, bp) = (a.as_ptr(), b.as_ptr());
    let step = |acc: &mut [__m256i; 8], ws: [__m256i; 4], k: usize| {
        // SAFETY: `k + 16 <= k_len.next_multiple_of(16) <= K_MAX`: in bounds.
        let (xa, xb) = unsafe {
            (
                _mm256_loadu_si256(ap.add(k).cast()),
                _mm256_loadu_si256(bp.add(k).cast()),
            )
        };
        for j in 0..4 {
            acc[j] = _mm256_add_epi32(acc[j], _mm256_madd_epi16(ws[j], xa));
            acc[4 + j] = _mm256_add_epi32(acc[4 + j], _mm256_madd_epi16(ws[j], xb));
        }
    };
    let mut k = 0;
    while k < k16 {
        // SAFETY: `rows[j] + k + 16 <= rows[j] + k16 <= rows[j] + k_len <= w.len()`.
        let ws: [__m256i; 4] = core::array::from_fn(|j| unsafe {
            _mm256_cvtepi8_epi16(_mm_loadu_si128(wp.add(rows[j] + k).cast()))
        });
        step(&mut acc, ws, k);
        k += 16;
    }
    if k16 < k_len {
        let ws: [__m256i; 4] = core::array::from_fn(|j| {
            let start = rows[j] + k16;
            let t = if start + 16 <= w.len() {
                // SAFETY: 16 bytes from `start` are in bounds (just checked). The values past
                // `k_len` meet zeros in `a` and `b`.
                unsafe { _mm_loadu_si128(wp.add(start).cast()) }
            } else {
                let mut tmp = [0i8; 16];
                tmp[..k_len - k16].copy_from_slice(&w[start..rows[j] + k_len]);
                // SAFETY: 16 bytes of a 16-byte array.
                unsafe { _mm_loadu_si128(tmp.as_ptr().cast()) }
            };
            _mm256_cvtepi8_epi16(t)
        });
        step(&mut acc, ws, k16);
    }
    let sa = hsum4(acc[0], acc[1], acc[2], acc[3]);
    let sb = hsum4(acc[4], acc[5], acc[6], acc[7]);
    _mm256_set_m128i(sb, sa)
}

/// Depthwise, channel multiplier 1: output channel `c` reads input channel `c` and weight row
/// `c`. Sixteen channels per step; kernel taps are taken in pairs `(t, t + 1)` whose inputs
/// are interleaved (`vpunpck{l,h}wd`) against weights packed once per call in the same order,
/// so one `vpmaddwd` adds two taps of eight channels. Taps outside the input read a row of the
/// zero point (`x - in_zp = 0`), so every position runs the same code.
///
/// # Safety
/// AVX2 must be available and `Params::path` must have chosen this path (slice lengths).
#[target_feature(enable = "avx2")]
unsafe fn depthwise(p: &Params<'_, '_>, input: &[i8], output: &mut [i8]) {
    let [_, kh, kw, i_full] = p.w_shape;
    let (geo, ins, outs) = (p.geo, p.in_shape, p.out_shape);
    let n_c = outs.c;
    let n_taps = kh * kw;
    let pairs = n_taps.div_ceil(2);
    let blocks = n_c.div_ceil(16);
    let per_o = n_taps * i_full;
    // packed[(pair * blocks + blk) * 32 ..][..32]: the low half holds the weights of taps
    // (2 * pair, 2 * pair + 1) interleaved for channels 0..3 and 8..11 of the block, the high
    // half for channels 4..7 and 12..15 (the lane order of `vpunpck{l,h}wd` on 256 bits).
    // Only the `pairs * blocks * 32` values used are zeroed (not 32 KiB per call).
    // `pairs * blocks * 32 <= DW_PACK` (path check), so `packed.len()` is that.
    let mut packed_buf = [MaybeUninit::<i16>::uninit(); DW_PACK];
    let packed = prefix(&mut packed_buf, pairs * blocks * 32, 0);
    for pair in 0..pairs {
        for blk in 0..blocks {
            let dst = &mut packed[(pair * blocks + blk) * 32..][..32];
            for (j, d) in dst.iter_mut().enumerate() {
                let (half, l) = (j / 16, j % 16);
                let c = blk * 16 + (l / 8) * 8 + half * 4 + (l % 8) / 2;
                let t = 2 * pair + l % 2;
                if c < n_c && t < n_taps {
                    *d = p.weights[c * per_o + t * i_full] as i16;
                }
            }
        }
    }
    let st = StageV::new(&p.stage);
    let zp8 = _mm_set1_epi8(p.zp as i8);
    let zp16 = _mm256_set1_epi16(p.zp);
    // Per-position input offset of each tap (`None` outside the input; an odd tap count's
    // last pair meets a `None`, whose weights are zero anyway).
    let mut offs = [None::<usize>; DW_TAPS + 1];
    let offs = &mut offs[..2 * pairs];
    let mut c_start = 0;
    while c_start < n_c {
        let c_end = n_c.min(c_start + Q_CHUNK);
        // Entries up to the last block's end: `c_end - c_start` rounded up to 16.
        let q = QuantBlock::<{ Q_CHUNK + 16 }>::load_n(
            &p.chan,
            c_start,
            n_c - 1,
            (c_end - c_start).next_multiple_of(16),
        );
        for oy in 0..outs.h {
            let y0 = oy * geo.stride[0];
            for ox in 0..outs.w {
                let x0 = ox * geo.stride[1];
                for ky in 0..kh {
                    let iy = coord(y0, ky, geo.dilation[0], geo.pad[0], ins.h);
                    for kx in 0..kw {
                        let ix = coord(x0, kx, geo.dilation[1], geo.pad[1], ins.w);
                        offs[ky * kw + kx] = iy.zip(ix).map(|(iy, ix)| (iy * ins.w + ix) * ins.c);
                    }
                }
                let out_base = (oy * outs.w + ox) * n_c;
                let mut c0 = c_start;
                while c0 < c_end {
                    let blk = c0 / 16;
                    let n = 16.min(n_c - c0);
                    // SAFETY: AVX2 is available (this function's contract); `offs` holds
                    // in-bounds pixel offsets (`coord`), `c0 - c_start + 16 <= Q_CHUNK + 16`,
                    // and `packed` and `offs` have the sizes `dw_block` reads.
                    unsafe {
                        dw_block(
                            p,
                            input,
                            offs,
                            packed,
                            blocks,
                            blk,
                            n,
                            &q,
                            c0 - c_start,
                            zp8,
                            zp16,
                            st,
                            &mut output[out_base + c0..][..n],
                        )
                    };
                    c0 += 16;
                }
            }
        }
        c_start = c_end;
    }
}

/// Sixteen channels from `c0 = blk * 16` (`n <= 16` of them stored) of one output position of
/// [`depthwise`]; `qi` indexes `c0` in `q`.
///
/// # Safety
/// As [`depthwise`]; `offs` holds offsets of in-bounds pixels (or `None`), `qi + 16` is within
/// `q`, and `packed` holds `pairs * blocks * 32` values with `offs.len() == 2 * pairs`.
#[allow(clippy::too_many_arguments)]
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn dw_block(
    p: &Params<'_, '_>,
    input: &[i8],
    offs: &[Option<usize>],
    packed: &[i16],
    blocks: usize,
    blk: usize,
    n: usize,
    q: &QuantBlock<{ Q_CHUNK + 16 }>,
    qi: usize,
    zp8: __m128i,
    zp16: __m256i,
    st: StageV,
    out: &mut [i8],
) {
    let c0 = blk * 16;
    let load = |off: Option<usize>| -> __m128i {
        match off {
            // SAFETY: `off` is the offset of an in-bounds pixel, so `off + ins.c <= ins.len()
            // <= input.len()` (checked by `Params::path`), and `c0 + 16 <= n_c <= ins.c` here.
            Some(o) if n == 16 => unsafe { _mm_loadu_si128(input.as_ptr().add(o + c0).cast()) },
            // Fewer than 16 channels left but 16 bytes readable: the lanes past `n` (the next
            // pixel's channels, or anything) meet zero weights (`packed` is zero for channels
            // past `n_c`) and add nothing. Loading them directly avoids a store-forwarding
            // stall on the copy below, which narrow layers hit at every tap.
            // SAFETY: `o + c0 + 16 <= input.len()` (checked in the guard).
            Some(o) if o + c0 + 16 <= input.len() => unsafe {
                _mm_loadu_si128(input.as_ptr().add(o + c0).cast())
            },
            Some(o) => {
                let mut tmp = [p.zp as i8; 16];
                tmp[..n].copy_from_slice(&input[o + c0..][..n]);
                // SAFETY: 16 bytes of a 16-byte array.
                unsafe { _mm_loadu_si128(tmp.as_ptr().cast()) }
            }
            None => zp8,
        }
    };
    let mut acc_lo = _mm256_setzero_si256();
    let mut acc_hi = _mm256_setzero_si256();
    for (pair, xs) in offs.chunks_exact(2).enumerate() {
        let xa = _mm256_sub_epi16(_mm256_cvtepi8_epi16(load(xs[0])), zp16);
        let xb = _mm256_sub_epi16(_mm256_cvtepi8_epi16(load(xs[1])), zp16);
        let wq = &packed[(pair * blocks + blk) * 32..][..32];
        // SAFETY: `wq` holds 32 i16: two 256-bit loads.
        let (w_lo, w_hi) = unsafe {
            (
                _mm256_loadu_si256(wq.as_ptr().cast()),
                _mm256_loadu_si256(wq.as_ptr().add(16).cast()),
            )
        };
        let lo = _mm256_madd_epi16(_mm256_unpacklo_epi16(xa, xb), w_lo);
        let hi = _mm256_madd_epi16(_mm256_unpackhi_epi16(xa, xb), w_hi);
        acc_lo = _mm256_add_epi32(acc_lo, lo);
        acc_hi = _mm256_add_epi32(acc_hi, hi);
    }
    // acc_lo holds channels 0..3 | 8..11, acc_hi 4..7 | 12..15.
    let a = _mm256_permute2x128_si256::<0x20>(acc_lo, acc_hi);
    let b = _mm256_permute2x128_si256::<0x31>(acc_lo, acc_hi);
    // SAFETY: `qi + 16` is within each array (caller): loads at `qi` and `qi + 8` in bounds.
    let ld = |v: &[i32; Q_CHUNK + 16], i: usize| unsafe {
        _mm256_loadu_si256(v.as_ptr().add(qi + i).cast())
    };
    let ra = requant8(a, ld(&q.bias, 0), ld(&q.mult, 0), ld(&q.total, 0), st);
    let rb = requant8(b, ld(&q.bias, 8), ld(&q.mult, 8), ld(&q.total, 8), st);
    store16(out, pack16(ra, rb));
}

/// Needs `std` for `Vec` (the test crate enables it).
#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn bytes(&mut self, n: usize) -> std::vec::Vec<i8> {
            (0..n).map(|_| self.next() as i8).collect()
        }
    }

    /// The AVX2 paths against the reference on random shapes (the full property suite is
    /// `tests/tests/kernels.rs`; this one builds without the test crate's dependencies).
    #[test]
    fn matches_reference_on_random_shapes() {
        let mut r = Rng(0x2545_F491_4F6C_DD1D);
        for case in 0..3000 {
            let dw = r.below(3) == 0;
            let (kh, kw) = (1 + r.below(3), 1 + r.below(3));
            let (h, w) = (1 + r.below(7), 1 + r.below(7));
            let cin = if dw { 1 + r.below(70) } else { 1 + r.below(40) };
            // Now and then more output channels than `gemm_v` takes (the 4x2 `gemm` path).
            let cout = if dw {
                cin
            } else if r.below(20) == 0 {
                V_MAX_OUT + 1 + r.below(40)
            } else {
                1 + r.below(20)
            };
            let i_full = if dw { 1 } else { cin + r.below(2) * r.below(5) };
            let o_full = cout + r.below(3);
            let stride = [1 + r.below(2), 1 + r.below(2)];
            let dil = [1 + r.below(2), 1 + r.below(2)];
            let pad = [r.below(3), r.below(3)];
            let eff = [(kh - 1) * dil[0] + 1, (kw - 1) * dil[1] + 1];
            let (ph, pw) = (h + 2 * pad[0], w + 2 * pad[1]);
            if ph < eff[0] || pw < eff[1] {
                continue;
            }
            let oh = (ph - eff[0]) / stride[0] + 1;
            let ow = (pw - eff[1]) / stride[1] + 1;
            let x = r.bytes(h * w * cin);
            let wts = r.bytes(o_full * kh * kw * i_full);
            let chan: std::vec::Vec<u8> = (0..o_full)
                .flat_map(|_| {
                    let m = (1i32 << 30) + (r.next() % (1 << 30)) as i32;
                    let s = -(r.below(16) as i32) + 2;
                    [(r.next() as i32) >> 12, m, s]
                })
                .flat_map(i32::to_le_bytes)
                .collect();
            let geo = ConvGeometry {
                stride,
                pad,
                dilation: dil,
                groups: if dw { cin } else { 1 },
            };
            let stage = OutputStage {
                zero_point: r.next() as i8 as i32,
                act_min: -128 + r.below(20) as i8,
                act_max: 127 - r.below(20) as i8,
            };
            let zp = r.next() as i8 as i32;
            let out_shape = Shape {
                h: oh,
                w: ow,
                c: cout,
            };
            let in_shape = Shape { h, w, c: cin };
            let ws = [o_full, kh, kw, i_full];
            let mut got = std::vec![0i8; out_shape.len()];
            let mut got_avx2 = got.clone();
            let mut want = got.clone();
            let cq = ChannelQuant::new(&chan);
            conv2d(
                &geo, &x, in_shape, zp, &wts, ws, cq, stage, &mut got, out_shape,
            );
            conv2d_avx2(
                &geo,
                &x,
                in_shape,
                zp,
                &wts,
                ws,
                cq,
                stage,
                &mut got_avx2,
                out_shape,
            );
            crate::kernels::reference::conv2d(
                &geo, &x, in_shape, zp, &wts, ws, cq, stage, &mut want, out_shape,
            );
            assert_eq!(
                got, want,
                "case {case}: {geo:?} {in_shape:?} {ws:?} {out_shape:?}"
            );
            assert_eq!(
                got_avx2, want,
                "case {case} (AVX2): {geo:?} {in_shape:?} {ws:?} {out_shape:?}"
            );
        }
    }

    /// Depthwise layers whose rows are too long for the row path's buffers (the per-position
    /// path), against the reference, with both instruction sets.
    #[test]
    fn long_rows_match_reference() {
        let mut r = Rng(0x9E37_79B9_7F4A_7C15);
        for (w, c, stride) in [(800, 16, 1), (700, 20, 2), (1500, 8, 1)] {
            let h = 4;
            let x = r.bytes(h * w * c);
            let wts = r.bytes(c * 9);
            let chan: std::vec::Vec<u8> = (0..c)
                .flat_map(|_| {
                    [
                        (r.next() as i32) >> 12,
                        (1 << 30) + (r.next() % (1 << 29)) as i32,
                        -9,
                    ]
                })
                .flat_map(i32::to_le_bytes)
                .collect();
            let geo = ConvGeometry {
                stride: [stride, stride],
                pad: [1, 1],
                dilation: [1, 1],
                groups: c,
            };
            let in_shape = Shape { h, w, c };
            let out_shape = Shape {
                h: (h - 1) / stride + 1,
                w: (w - 1) / stride + 1,
                c,
            };
            let p = Params::new(
                &geo,
                in_shape,
                5,
                &wts,
                [c, 3, 3, 1],
                ChannelQuant::new(&chan),
                OutputStage {
                    zero_point: -3,
                    act_min: -128,
                    act_max: 127,
                },
                out_shape,
            );
            let mut want = std::vec![0i8; out_shape.len()];
            assert!(
                !avx2_available() || matches!(p.path(false, &x, &want), Path::Depthwise),
                "{w}x{c}: not the per-position path"
            );
            crate::kernels::reference::conv2d(
                &geo,
                &x,
                in_shape,
                5,
                &wts,
                [c, 3, 3, 1],
                p.chan,
                p.stage,
                &mut want,
                out_shape,
            );
            for f in [conv2d, conv2d_avx2] {
                let mut got = std::vec![0i8; out_shape.len()];
                f(
                    &geo,
                    &x,
                    in_shape,
                    5,
                    &wts,
                    [c, 3, 3, 1],
                    p.chan,
                    p.stage,
                    &mut got,
                    out_shape,
                );
                assert_eq!(got, want, "{w}x{c} stride {stride}");
            }
        }
    }
}
