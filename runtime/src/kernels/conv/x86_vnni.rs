//! The AVX-512 VNNI variant of the matrix-product convolution (one group, pointwise or any
//! window of at most `x86::K_MAX` values): `vpdpbusd` multiplies four unsigned bytes by four
//! signed bytes and adds the four products to an i32 lane, 64 multiply-accumulates per
//! instruction on 512 bits, against 16 for AVX2's `vpmaddwd`. Chosen at run time when the CPU
//! has AVX-512 F, BW, VL and VNNI ([`crate::kernels::x86::vnni_available`]); same bytes as the
//! reference.
//!
//! # Layout
//!
//! Output channels go sixteen to a block, one channel per i32 lane. A block's weights are
//! packed once per call as `[k / 4][16 channels][4 values]` (the active values of each row,
//! `[kh][kw][in.c]`, zero past the row's end and for channels past the layer's), so the
//! weights of four consecutive window values of all sixteen channels are one 64-byte load.
//! The window of an output position is laid out as bytes; its four values `4q .. 4q + 4` are
//! one 32-bit broadcast. A tile is four positions by up to four blocks: sixteen accumulators,
//! and per group of four window values four broadcasts, up to four weight loads and up to
//! sixteen `vpdpbusd`. The sums come out one channel per lane: requantization is sixteen
//! lanes at a time ([`requant16`]) and the store one masked, narrowing `vpmovdb` per block.
//!
//! # Exactness
//!
//! `vpdpbusd` needs one unsigned operand. The window holds `u = x ^ 0x80 = x + 128`
//! (`0..=255`) and the weights stay signed, so a lane sums `w * (x + 128)`, and
//!
//! `sum(w * (x - zp)) = sum(w * u) - (128 + zp) * sum(w)`
//!
//! over the channel's active values. The second term depends on the weights only: it is
//! subtracted from the channel's bias once per call. Padding taps hold `u = zp + 128`, so they
//! add `w * (zp + 128)`, which the same term removes (it sums every active value, padding taps
//! included): they count as `x - zp = 0`, as in the reference. Window bytes past the row's end
//! meet zero weights. Each product is at most `255 * 128` in magnitude; `vpdpbusd` (not the
//! saturating `vpdpbusds`) adds the four products and the accumulator with wrapping i32
//! addition, and every other sum here wraps too. Addition modulo 2^32 is associative and
//! commutative, so the accumulator equals the reference's `bias + sum(w * (x - zp))` bit for
//! bit before requantization, which [`requant16`] reproduces exactly.

use core::arch::x86_64::*;
use core::mem::MaybeUninit;

use super::x86::Params;
use crate::kernels::common::{prefix, taps};
use crate::kernels::x86::{Stage16, requant16};

/// Output channels per block: one vector of sixteen i32 lanes.
const OC: usize = 16;
/// Positions per tile.
const TILE_POS: usize = 4;
/// Most blocks per tile (with [`TILE_POS`]: sixteen accumulators of the 32 vector registers).
const TILE_BLOCKS: usize = 4;
/// Bytes of packed weights on the stack (64 KiB): the output channels are taken in groups
/// whose packed weights fit.
const PACK: usize = 65536;
/// Most output channels of one group (their requantization parameters: 3 KiB of stack).
const MAX_GROUP: usize = 256;
/// Bytes of the window buffer on the stack (32 KiB).
const WIN: usize = 32768;
/// Most positions whose windows are laid out at once.
const CHUNK: usize = 32;
/// Bytes of the padded input rows of [`Rows`] (16 KiB on the stack).
const ROWS: usize = 16384;
/// Most kernel rows of [`Rows`].
const ROWS_KH: usize = 16;
/// Most groups of four window values (`x86::K_MAX / 4`, and a short-row layout's `kh * 4`).
const KQ_MAX: usize = 1024;
/// Bytes past the last window that a 16-byte copy may write.
const SLACK: usize = 16;

/// Whether [`gemm`] takes a window of `k_len` active values (the path check).
pub(super) fn fits(k_len: usize) -> bool {
    let ks = k_len.div_ceil(4) * 4;
    k_len > 0 && ks * OC <= PACK && TILE_POS * ks + SLACK <= WIN
}

/// One group (`groups == 1`), a window of `k_len = kh * kw * in.c` active values with
/// [`fits`]`(k_len)`; see the module documentation.
///
/// # Safety
/// AVX-512 F, BW, VL and VNNI must be available, and `Params::path` must have chosen this
/// path (slice lengths: `weights` holds `o_full * kh * kw * i_full` values with
/// `o_full >= out.c`, `input` and `output` hold their shapes, `in.c <= i_full`).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) unsafe fn gemm(p: &Params<'_, '_>, input: &[i8], output: &mut [i8]) {
    let [_, kh, kw, i_full] = p.w_shape;
    let (ins, outs) = (p.in_shape, p.out_shape);
    let cin = ins.c;
    let w_row = kh * kw * i_full;
    let k_len = kh * kw * cin;
    let pad = (p.zp as i8 as u8) ^ 0x80;
    let mut rows_buf = [MaybeUninit::<u8>::uninit(); ROWS];
    let mut rows = Rows::new(p, &mut rows_buf, pad);
    // A pointwise convolution with stride 1 and no padding: the windows of a chunk are one
    // run of the input (split into windows of `ks` bytes when `cin` is not a multiple of four).
    let contiguous = p.pixel_per_position();
    // Short kernel rows (`kw * in.c <= 16` values: a layer on a one- to five-channel input)
    // are read where they lie, in the padded input rows of `Rows`, instead of being copied
    // into windows: group `q` of four values is word `q % dq` of kernel row `q / dq`, each row
    // taking `dq` whole words (the values past the row's `kw * in.c` meet zero weights).
    let run = kw * cin;
    let row_dq = (!contiguous && rows.is_some() && run <= 16).then(|| run.div_ceil(4));
    let kq = match row_dq {
        Some(dq) => kh * dq,
        None => k_len.div_ceil(4),
    };
    let ks = 4 * kq;
    // Byte offset of group `q` from a position's first value.
    let mut qoff = [0u32; KQ_MAX];
    for (q, o) in qoff.iter_mut().enumerate().take(kq) {
        *o = match (row_dq, &rows) {
            (Some(dq), Some(r)) => ((q / dq) * r.row_len + (q % dq) * 4) as u32,
            _ => (4 * q) as u32,
        };
    }
    let n_pos = outs.h * outs.w;
    let n_out = outs.c;
    let zp = p.zp as i32;
    let st = Stage16::new(&p.stage);
    // Channels per group: as many whole blocks as `PACK` holds (at least one: `fits`).
    let group = ((PACK / (ks * OC)) * OC).min(MAX_GROUP);
    let chunk = ((WIN - SLACK) / ks).min(CHUNK);
    // Windows: only the `chunk * ks + SLACK` bytes used are initialised; the bytes past
    // `k_len` in a window meet zero weights and keep this value (or what a row copy of
    // `Rows::window` wrote past its run, before the next run or window overwrote it).
    let mut win_buf = [MaybeUninit::<u8>::uninit(); WIN];
    let win = prefix(&mut win_buf, chunk * ks + SLACK, pad);
    let mut packed_buf = [MaybeUninit::<i8>::uninit(); PACK];
    let mut bias = [0i32; MAX_GROUP];
    let mut mult = [0i32; MAX_GROUP];
    let mut total = [1i32; MAX_GROUP];
    let mut g0 = 0;
    while g0 < n_out {
        let gn = group.min(n_out - g0);
        let blocks = gn.div_ceil(OC);
        // Every column active and whole groups of four: each row is `kq` words, and a block is
        // a 16 x `kq` word transpose (`pack_rows`, which writes every byte of the blocks, so
        // they are not zeroed first); the loop below then only sums the rows.
        let transposed = i_full == cin && k_len % 4 == 0 && row_dq.is_none();
        let packed: &mut [i8] = if transposed {
            let region = &mut packed_buf[..blocks * kq * 64];
            // SAFETY: AVX-512 F is this function's contract; rows `g0 .. g0 + gn` of `w_row =
            // k_len` values lie in `weights` (path check) and `region` holds `blocks * kq *
            // 64` bytes.
            unsafe { pack_rows(p.weights, k_len, g0, gn, kq, region) };
            // SAFETY: `pack_rows` wrote every byte of `region` (all `kq` groups of every
            // block, rows past `gn` as zeros), and `MaybeUninit<i8>` has `i8`'s layout.
            unsafe { &mut *(region as *mut [MaybeUninit<i8>] as *mut [i8]) }
        } else {
            prefix(&mut packed_buf, blocks * kq * 64, 0)
        };
        for l in 0..gn {
            let row = &p.weights[(g0 + l) * w_row..][..w_row];
            let blk = &mut packed[(l / OC) * kq * 64..][..kq * 64];
            let lane = (l % OC) * 4;
            // Active value `v = t * cin + c` is stored at column `t * i_full + c`.
            let mut sum = 0i32;
            if transposed {
                sum = row.iter().map(|&w| w as i32).sum::<i32>();
            } else if let Some(dq) = row_dq {
                // Kernel row `ky`'s `run` values at group `ky * dq`, zero past them.
                for (ky, krow) in row.chunks_exact(kw * i_full).enumerate() {
                    for (r, v) in (0..run)
                        .map(|r| krow[(r / cin) * i_full + r % cin])
                        .enumerate()
                    {
                        let at = ky * 4 * dq + r;
                        blk[(at / 4) * 64 + lane + at % 4] = v;
                        sum += v as i32;
                    }
                }
            } else if cin % 4 == 0 || i_full == cin {
                // Whole groups of four values are contiguous in the row (per tap, or the row
                // is the compacted row): four bytes per move.
                let (run, step) = if i_full == cin {
                    (k_len, k_len)
                } else {
                    (cin, i_full)
                };
                let mut q = 0;
                for tap in row.chunks(step) {
                    let active = &tap[..run];
                    sum += active.iter().map(|&w| w as i32).sum::<i32>();
                    let (quads, rest) = active.as_chunks::<4>();
                    for quad in quads {
                        blk[q * 64 + lane..][..4].copy_from_slice(quad);
                        q += 1;
                    }
                    if !rest.is_empty() {
                        // Only in the compacted row: its last, partial group.
                        blk[q * 64 + lane..][..rest.len()].copy_from_slice(rest);
                    }
                }
            } else {
                let mut v = 0;
                for tap in row.chunks_exact(i_full) {
                    for &w in &tap[..cin] {
                        blk[(v / 4) * 64 + lane + v % 4] = w;
                        sum += w as i32;
                        v += 1;
                    }
                }
            }
            let (b, m, s) = p.chan.get(g0 + l);
            // |sum| <= 128 * 4096 and |128 + zp| <= 255: the product fits i32.
            bias[l] = b.wrapping_sub((128 + zp) * sum);
            mult[l] = m;
            total[l] = 31 - s.clamp(-31, 30);
        }
        // A layer of at most eight output channels in one group: several positions per vector.
        // SAFETY: AVX-512 F is this function's contract; `packed` holds the one block's `kq`
        // groups (`blocks == 1` as `gn == n_out <= 8`).
        let narrow = if gn == n_out && n_out <= NARROW_MAX {
            unsafe { Narrow::new(n_out, packed, kq, &bias, &mult, &total) }
        } else {
            None
        };
        let (mut oy, mut ox) = (0, 0);
        let mut c0 = 0;
        while c0 < n_pos {
            let mut nc = chunk.min(n_pos - c0);
            // The first value of each position's window (or of its first kernel row).
            let mut xs = [core::ptr::null::<u8>(); CHUNK];
            if let (Some(_), Some(rows)) = (row_dq, &mut rows) {
                // Positions of one output row: the rows buffer holds that row's input rows.
                nc = nc.min(outs.w - ox);
                rows.load(p, input, oy);
                for (slot, x) in xs.iter_mut().enumerate().take(nc) {
                    *x = rows.at(p, ox + slot, kq, row_dq.unwrap_or(1));
                }
                ox += nc;
                if ox == outs.w {
                    ox = 0;
                    oy += 1;
                }
            } else if contiguous {
                let src = &input[c0 * cin..(c0 + nc) * cin];
                if ks == cin {
                    for (d, &x) in win[..nc * ks].iter_mut().zip(src) {
                        *d = (x as u8) ^ 0x80;
                    }
                } else {
                    // Each pixel's `cin` values into its window, the window's tail untouched.
                    for (d, px) in win.chunks_exact_mut(ks).zip(src.chunks_exact(cin)) {
                        for (d, &x) in d.iter_mut().zip(px) {
                            *d = (x as u8) ^ 0x80;
                        }
                    }
                }
            } else if let Some(rows) = &mut rows {
                for slot in 0..nc {
                    rows.window(p, input, oy, ox, &mut win[slot * ks..]);
                    ox += 1;
                    if ox == outs.w {
                        ox = 0;
                        oy += 1;
                    }
                }
            } else {
                for slot in 0..nc {
                    window_u8(p, input, &mut win[slot * ks..][..k_len], pad, oy, ox);
                    ox += 1;
                    if ox == outs.w {
                        ox = 0;
                        oy += 1;
                    }
                }
            }
            if row_dq.is_none() {
                for (slot, x) in xs.iter_mut().enumerate().take(nc) {
                    *x = win[slot * ks..].as_ptr();
                }
            }
            let qoff = &qoff[..kq];
            if let Some(nw) = &narrow {
                // SAFETY: the CPU features are this function's contract; `xs[t] + qoff[q]`
                // addresses four readable bytes for every position `t < nc` and group `q <
                // kq` (a window of `ks` bytes inside `win`, or `Rows::at`'s guarantee), and
                // the chunk's outputs, positions `c0 .. c0 + nc` of `n_out == gn` channels,
                // lie in `output` (path check).
                unsafe {
                    nw.chunk(
                        &xs[..nc],
                        qoff,
                        &mut output[c0 * n_out..(c0 + nc) * n_out],
                        st,
                    )
                };
                c0 += nc;
                continue;
            }
            let mut b0 = 0;
            while b0 < blocks {
                let nb = TILE_BLOCKS.min(blocks - b0);
                let mut t0 = 0;
                while t0 < nc {
                    // Past the chunk's end the last slot repeats (computed, not stored).
                    let x = core::array::from_fn(|t| xs[(t0 + t).min(nc - 1)]);
                    let w = packed[b0 * kq * 64..].as_ptr();
                    let tile = Tile {
                        x,
                        w,
                        qoff: qoff.as_ptr(),
                        kq,
                        n_pos: TILE_POS.min(nc - t0),
                        pos0: c0 + t0,
                        ch0: b0 * OC,
                        g0,
                        gn,
                        n_out,
                    };
                    // SAFETY: the CPU features are this function's contract. Each window
                    // pointer plus `qoff[q]` addresses four readable bytes for every `q < kq`
                    // (a window of `ks = 4 * kq` bytes inside `win`, or `Rows::at`), and
                    // the weight pointer `nb` blocks of `kq * 64` bytes inside `packed`
                    // (`b0 + nb <= blocks`). `store` writes positions `< n_pos` and channels
                    // `< n_out` of `output`, which holds `n_pos * n_out` bytes (path check).
                    unsafe {
                        match nb {
                            1 => tile.run::<1>(output, &bias, &mult, &total, st),
                            2 => tile.run::<2>(output, &bias, &mult, &total, st),
                            3 => tile.run::<3>(output, &bias, &mult, &total, st),
                            _ => tile.run::<4>(output, &bias, &mult, &total, st),
                        }
                    }
                    t0 += TILE_POS;
                }
                b0 += nb;
            }
            c0 += nc;
        }
        g0 += gn;
    }
}

/// Most output channels of a layer [`Narrow`] takes.
const NARROW_MAX: usize = 4;
/// Most window groups of four values [`Narrow`] keeps (its weights: 64 bytes each).
const NARROW_KQ: usize = 64;

/// A layer of at most [`NARROW_MAX`] output channels (a slimmed layer at a narrow width): the
/// sixteen lanes of a vector hold `per = 16 / n_out` positions of `n_out` channels each (lane
/// `l` is position `l / n_out`, channel `l % n_out`, in the output's NHWC order), so the
/// requantization, the store and the `vpdpbusd` of one vector serve `per` positions instead of
/// one. Per group of four window values, each position's four bytes are broadcast to its lanes
/// (a masked `vpbroadcastd`); the weights and the requantization parameters are repeated per
/// position. Same arithmetic per lane as [`Tile`], so the same
/// bytes.
struct Narrow {
    n_out: usize,
    per: usize,
    /// Per group of four window values, the weights of lane `l`'s channel.
    w: [__m512i; NARROW_KQ],
    bias: __m512i,
    mult: __m512i,
    total: __m512i,
}

impl Narrow {
    /// # Safety
    /// AVX-512 F must be available; `packed` holds one block of `kq` groups of 64 bytes.
    #[target_feature(enable = "avx512f")]
    unsafe fn new(
        n_out: usize,
        packed: &[i8],
        kq: usize,
        bias: &[i32; MAX_GROUP],
        mult: &[i32; MAX_GROUP],
        total: &[i32; MAX_GROUP],
    ) -> Option<Self> {
        if n_out == 0 || kq > NARROW_KQ || packed.len() < kq * 64 {
            return None;
        }
        let load = |v: [i32; OC]| {
            // SAFETY: a 16-lane array: one unaligned 64-byte load (AVX-512 F: the contract).
            unsafe { _mm512_loadu_si512(v.as_ptr().cast()) }
        };
        let cidx = load(core::array::from_fn(|l| (l % n_out) as i32));
        let mut w = [_mm512_setzero_si512(); NARROW_KQ];
        for (q, v) in w.iter_mut().enumerate().take(kq) {
            // SAFETY: `q * 64 + 64 <= kq * 64 <= packed.len()`: one unaligned 64-byte load.
            let blk = unsafe { _mm512_loadu_si512(packed[q * 64..].as_ptr().cast()) };
            *v = _mm512_permutexvar_epi32(cidx, blk);
        }
        let pick = |a: &[i32; MAX_GROUP]| load(core::array::from_fn(|l| a[l % n_out]));
        Some(Narrow {
            n_out,
            per: OC / n_out,
            w,
            bias: pick(bias),
            mult: pick(mult),
            total: pick(total),
        })
    }

    /// Sums, requantizes and stores the positions whose windows start at `xs` (group `q` of
    /// position `t` at `xs[t] + qoff[q]`); `out` holds their `xs.len() * n_out` outputs.
    ///
    /// # Safety
    /// AVX-512 F, BW and VNNI must be available; `xs[t] + qoff[q]` is valid for four bytes
    /// for every position and group; `qoff` has the `kq` groups `self` was built for; `out`
    /// holds `xs.len() * n_out` bytes.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
    unsafe fn chunk(&self, xs: &[*const u8], qoff: &[u32], out: &mut [i8], st: Stage16) {
        let ones = (1u32 << self.n_out) - 1;
        let nc = xs.len();
        let mut t0 = 0;
        while t0 < nc {
            let n = self.per.min(nc - t0);
            let mask = ((1u32 << (n * self.n_out)) - 1) as u16;
            let mut acc = _mm512_setzero_si512();
            for (q, &off) in qoff.iter().enumerate().take(NARROW_KQ) {
                // Lanes of position `t` take its four window values of group `q`; lanes past
                // the `n` positions stay zero (their results are not stored).
                let mut x = _mm512_setzero_si512();
                for (t, &p) in xs[t0..t0 + n].iter().enumerate() {
                    // SAFETY: the contract: four readable bytes at `p + qoff[q]`; one
                    // unaligned 4-byte read.
                    let v = unsafe { p.add(off as usize).cast::<i32>().read_unaligned() };
                    x = _mm512_mask_set1_epi32(x, (ones << (t * self.n_out)) as u16, v);
                }
                acc = _mm512_dpbusd_epi32(acc, x, self.w[q]);
            }
            let r = requant16(acc, self.bias, self.mult, self.total, st);
            // SAFETY: the masked store writes bytes `t0 * n_out .. (t0 + n) * n_out` of `out`
            // (held, as `t0 + n <= nc`); masked-off bytes are neither written nor faulted on.
            unsafe {
                _mm512_mask_cvtepi32_storeu_epi8(out[t0 * self.n_out..].as_mut_ptr(), mask, r)
            };
            t0 += n;
        }
    }
}

/// Packs the rows `first .. first + n` of `weights` (`k_len = 4 * kq` values each, every
/// column active) as [`gemm`] lays them out, `[block][k / 4][16 channels][4 values]`: per block
/// of 16 rows and 16 groups of four values, 16 masked loads, a 16 x 16 transpose of words
/// ([`transpose16`]) and 16 stores (rows past `n` are zero): every byte of the
/// `n.div_ceil(16) * kq * 64` that `packed` holds is written.
///
/// # Safety
/// AVX-512 F must be available.
#[target_feature(enable = "avx512f")]
unsafe fn pack_rows(
    weights: &[i8],
    k_len: usize,
    first: usize,
    n: usize,
    kq: usize,
    packed: &mut [MaybeUninit<i8>],
) {
    for b in 0..n.div_ceil(OC) {
        let rows: [Option<&[i8]>; OC] = core::array::from_fn(|l| {
            let ch = b * OC + l;
            (ch < n).then(|| &weights[(first + ch) * k_len..][..k_len])
        });
        let mut q0 = 0;
        while q0 < kq {
            let m = OC.min(kq - q0);
            let mask = ((1u32 << m) - 1) as u16;
            let r: [__m512i; OC] = core::array::from_fn(|l| match rows[l] {
                // SAFETY: the row holds `4 * kq` bytes; the unmasked words `q0 .. q0 + m` end
                // at `4 * (q0 + m) <= 4 * kq`, and masked-off words are not accessed.
                Some(row) => unsafe {
                    _mm512_maskz_loadu_epi32(mask, row.as_ptr().add(4 * q0).cast())
                },
                None => _mm512_setzero_si512(),
            });
            let t = transpose16(r);
            for (i, v) in t.iter().enumerate().take(m) {
                let dst = &mut packed[(b * kq + q0 + i) * 64..][..64];
                // SAFETY: `dst` is 64 bytes: one unaligned 64-byte store.
                unsafe { _mm512_storeu_si512(dst.as_mut_ptr().cast(), *v) };
            }
            q0 += m;
        }
    }
}

/// Transposes 16 x 16 words: word `c` of `r[l]` becomes word `l` of the result's `c`.
#[inline]
#[target_feature(enable = "avx512f")]
fn transpose16(r: [__m512i; 16]) -> [__m512i; 16] {
    // Words interleaved in pairs of rows, then in fours: `u[4i + j]`, 128-bit lane `k`, holds
    // word `4k + j` of rows `4i .. 4i + 4`.
    let t: [__m512i; 16] = core::array::from_fn(|x| {
        let (i, hi) = (x / 2, x % 2 == 1);
        if hi {
            _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1])
        } else {
            _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1])
        }
    });
    let u: [__m512i; 16] = core::array::from_fn(|x| {
        let (i, j) = (x / 4, x % 4);
        let (a, b) = (t[4 * i + j / 2], t[4 * i + 2 + j / 2]);
        if j % 2 == 0 {
            _mm512_unpacklo_epi64(a, b)
        } else {
            _mm512_unpackhi_epi64(a, b)
        }
    });
    // Then the 128-bit lanes: result `4k + j` is lane `k` of `u[j]`, `u[4 + j]`, `u[8 + j]`,
    // `u[12 + j]`.
    let mut out = [_mm512_setzero_si512(); 16];
    for j in 0..4 {
        let (a, b, c, d) = (u[j], u[4 + j], u[8 + j], u[12 + j]);
        let e = _mm512_shuffle_i32x4::<0x44>(a, b); // a0 a1 b0 b1
        let f = _mm512_shuffle_i32x4::<0xEE>(a, b); // a2 a3 b2 b3
        let g = _mm512_shuffle_i32x4::<0x44>(c, d); // c0 c1 d0 d1
        let h = _mm512_shuffle_i32x4::<0xEE>(c, d); // c2 c3 d2 d3
        out[j] = _mm512_shuffle_i32x4::<0x88>(e, g); // a0 b0 c0 d0
        out[4 + j] = _mm512_shuffle_i32x4::<0xDD>(e, g); // a1 b1 c1 d1
        out[8 + j] = _mm512_shuffle_i32x4::<0x88>(f, h); // a2 b2 c2 d2
        out[12 + j] = _mm512_shuffle_i32x4::<0xDD>(f, h); // a3 b3 c3 d3
    }
    out
}

/// One tile of [`gemm`]: [`TILE_POS`] window pointers (`n_pos` of them stored), the packed
/// weights of its first block, and where its outputs go: positions from `pos0`, channels
/// `g0 + ch0 ..` of the group `g0 .. g0 + gn`.
struct Tile {
    x: [*const u8; TILE_POS],
    w: *const i8,
    /// `kq` byte offsets: group `q` of a position is at `x[t] + qoff[q]`.
    qoff: *const u32,
    kq: usize,
    n_pos: usize,
    pos0: usize,
    ch0: usize,
    g0: usize,
    gn: usize,
    n_out: usize,
}

impl Tile {
    /// Sums, requantizes and stores `B` blocks.
    ///
    /// # Safety
    /// As at the call in [`gemm`]: AVX-512 F, BW, VL and VNNI available; `qoff` valid for
    /// `kq` offsets and `x[t] + qoff[q]` for four bytes; `w` valid for `B * kq * 64` bytes; `output` holds
    /// `(pos0 + n_pos) * n_out` bytes and `g0 + gn <= n_out`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
    unsafe fn run<const B: usize>(
        &self,
        output: &mut [i8],
        bias: &[i32; MAX_GROUP],
        mult: &[i32; MAX_GROUP],
        total: &[i32; MAX_GROUP],
        st: Stage16,
    ) {
        let mut acc = [[_mm512_setzero_si512(); B]; TILE_POS];
        let stride = self.kq * 64;
        for q in 0..self.kq {
            // SAFETY: `g * stride + q * 64 + 64 <= B * kq * 64`, `q < kq` offsets and the four
            // bytes at `x[t] + qoff[q]`: every load lies in the ranges of the contract;
            // unaligned loads.
            unsafe {
                let w: [__m512i; B] = core::array::from_fn(|g| {
                    _mm512_loadu_si512(self.w.add(g * stride + q * 64).cast())
                });
                let off = *self.qoff.add(q) as usize;
                for (t, a) in acc.iter_mut().enumerate() {
                    let x = _mm512_set1_epi32(self.x[t].add(off).cast::<i32>().read_unaligned());
                    for g in 0..B {
                        a[g] = _mm512_dpbusd_epi32(a[g], x, w[g]);
                    }
                }
            }
        }
        for g in 0..B {
            let c = self.ch0 + g * OC;
            let n_valid = OC.min(self.gn - c);
            let mask = ((1u32 << n_valid) - 1) as u16;
            // SAFETY: `c + 16 <= MAX_GROUP` (a group is whole blocks of at most `MAX_GROUP`
            // channels): 16 i32 of each array.
            let (b, m, s) = unsafe {
                (
                    _mm512_loadu_si512(bias.as_ptr().add(c).cast()),
                    _mm512_loadu_si512(mult.as_ptr().add(c).cast()),
                    _mm512_loadu_si512(total.as_ptr().add(c).cast()),
                )
            };
            for (t, a) in acc.iter().enumerate().take(self.n_pos) {
                let r = requant16(a[g], b, m, s, st);
                let at = (self.pos0 + t) * self.n_out + self.g0 + c;
                // SAFETY: position `pos0 + t < n_pos` and channels `g0 + c .. + n_valid <=
                // n_out`: the masked store writes `n_valid` bytes inside `output` (contract),
                // and masked-off bytes are neither written nor faulted on.
                unsafe { _mm512_mask_cvtepi32_storeu_epi8(output.as_mut_ptr().add(at), mask, r) };
            }
        }
    }
}

/// The windows of a convolution with dilation 1 along the width, laid out from padded input
/// rows: each of the `kh` rows an output row needs is copied once, as bytes `x ^ 0x80` with
/// `pad` (`zp ^ 0x80`) for the padding columns (and for rows outside the input), so the window
/// row of any position is one run of `kw * in.c` bytes at `ox * stride * in.c`, copied 16
/// bytes at a time with no border case. A copy may write up to 15 bytes past its run: into
/// the next run of the window, the window's unused tail (zero weights), or the next window,
/// each written later, or the buffer's `SLACK`.
struct Rows<'b> {
    buf: &'b mut [u8],
    row_len: usize,
    run: usize,
    pad: u8,
    /// The output row whose input rows `buf` holds.
    oy: Option<usize>,
    /// Which input row each buffer row holds (`None`: the padding value throughout).
    held: [Option<usize>; ROWS_KH],
}

impl<'b> Rows<'b> {
    /// `None` when the layer has dilation along the width, more than [`ROWS_KH`] kernel rows
    /// or rows too long for [`ROWS`] (the caller then uses [`window_u8`]).
    fn new(p: &Params<'_, '_>, buf: &'b mut [MaybeUninit<u8>; ROWS], pad: u8) -> Option<Self> {
        let [_, kh, kw, _] = p.w_shape;
        let (geo, ins, outs) = (p.geo, p.in_shape, p.out_shape);
        let cin = ins.c;
        if geo.dilation[1] != 1 || kh > ROWS_KH || (kh == 1 && kw == 1 && geo.pad == [0, 0]) {
            return None;
        }
        let run = kw * cin;
        // Every copy reads `run` rounded up to 16 bytes from `ox * stride * cin`.
        let reads = (outs.w - 1) * geo.stride[1] * cin + run.next_multiple_of(16);
        let row_len = reads.max((geo.pad[1] + ins.w) * cin);
        if kh * row_len > ROWS {
            return None;
        }
        Some(Rows {
            buf: prefix(buf, kh * row_len, pad),
            row_len,
            run,
            pad,
            oy: None,
            held: [None; ROWS_KH],
        })
    }

    /// Lays out the window of output position (`oy`, `ox`) at the start of `dst`.
    #[inline(always)]
    fn window(&mut self, p: &Params<'_, '_>, input: &[i8], oy: usize, ox: usize, dst: &mut [u8]) {
        let [_, kh, _, _] = p.w_shape;
        let (geo, ins) = (p.geo, p.in_shape);
        let cin = ins.c;
        self.load(p, input, oy);
        self.copy(kh, ox * geo.stride[1] * cin, dst);
    }

    /// The first value of output column `ox`'s window in the rows of the output row last
    /// loaded, for a layout of `kq` groups of `dq` words per kernel row: every group's four
    /// bytes (`(q / dq) * row_len + (q % dq) * 4 .. + 4` from it) lie inside the buffer
    /// (asserted).
    #[inline(always)]
    fn at(&self, p: &Params<'_, '_>, ox: usize, kq: usize, dq: usize) -> *const u8 {
        let x0 = ox * p.geo.stride[1] * p.in_shape.c;
        let last = x0 + (kq.div_ceil(dq.max(1)).max(1) - 1) * self.row_len + 4 * dq;
        assert!(last <= self.buf.len());
        self.buf[x0..].as_ptr()
    }

    /// Copies the input rows of output row `oy` into the buffer (padding as `pad`), unless
    /// it holds them already.
    #[inline(always)]
    fn load(&mut self, p: &Params<'_, '_>, input: &[i8], oy: usize) {
        let [_, kh, _, _] = p.w_shape;
        let (geo, ins) = (p.geo, p.in_shape);
        let cin = ins.c;
        if self.oy != Some(oy) {
            self.oy = Some(oy);
            let lead = geo.pad[1] * cin;
            let in_run = ins.w * cin;
            for (ky, held) in self.held.iter_mut().enumerate().take(kh) {
                let iy = (oy * geo.stride[0] + ky * geo.dilation[0])
                    .checked_sub(geo.pad[0])
                    .filter(|&iy| iy < ins.h);
                if *held == iy {
                    continue;
                }
                *held = iy;
                let row = &mut self.buf[ky * self.row_len + lead..][..in_run];
                match iy {
                    Some(iy) => {
                        for (d, &x) in row.iter_mut().zip(&input[iy * in_run..][..in_run]) {
                            *d = (x as u8) ^ 0x80;
                        }
                    }
                    None => row.fill(self.pad),
                }
            }
        }
    }

    /// Copies the window whose first kernel row starts at `x0` in the buffer to `dst`.
    #[inline(always)]
    fn copy(&self, kh: usize, x0: usize, dst: &mut [u8]) {
        let copy = self.run.next_multiple_of(16);
        // Bounds, checked once per window (the copies below are unchecked): row `ky`'s copy
        // reads `x0 + ky * row_len .. + copy` of `buf` and writes `ky * run .. + copy` of
        // `dst`.
        let src_end = (kh - 1) * self.row_len + x0 + copy;
        let dst_end = (kh - 1) * self.run + copy;
        assert!(src_end <= self.buf.len() && dst_end <= dst.len());
        let (src, dst) = (self.buf[x0..].as_ptr(), dst.as_mut_ptr());
        for ky in 0..kh {
            let mut o = 0;
            while o < self.run {
                // SAFETY: `ky * row_len + o + 16 <= src_end - x0` and `ky * run + o + 16 <=
                // dst_end` (asserted above, `o + 16 <= copy`): 16 bytes read from `buf` and
                // written to `dst`, unaligned, the two buffers distinct.
                unsafe {
                    let v = _mm_loadu_si128(src.add(ky * self.row_len + o).cast());
                    _mm_storeu_si128(dst.add(ky * self.run + o).cast(), v);
                }
                o += 16;
            }
        }
    }
}

/// The window of output position (`oy`, `ox`) as bytes `x ^ 0x80`, tap `(ky, kx)` at
/// `(ky * kw + kx) * in.c` (`buf` is the window's `kh * kw * in.c` values). A window that is
/// not wholly inside the input is first filled with `pad` (`zp ^ 0x80`), so its padding taps
/// count as `x - zp = 0`.
#[inline(always)]
fn window_u8(p: &Params<'_, '_>, input: &[i8], buf: &mut [u8], pad: u8, oy: usize, ox: usize) {
    let [_, kh, kw, _] = p.w_shape;
    let (geo, ins) = (p.geo, p.in_shape);
    let cin = ins.c;
    let (y0, x0) = (oy * geo.stride[0], ox * geo.stride[1]);
    let ky_r = taps(y0, geo.pad[0], geo.dilation[0], kh, ins.h);
    let kx_r = taps(x0, geo.pad[1], geo.dilation[1], kw, ins.w);
    if ky_r.len() < kh || kx_r.len() < kw {
        buf.fill(pad);
    }
    for ky in ky_r {
        let iy = y0 + ky * geo.dilation[0] - geo.pad[0];
        if geo.dilation[1] == 1 && !kx_r.is_empty() {
            // The row's taps are one run of the input.
            let ix = x0 + kx_r.start - geo.pad[1];
            let run = kx_r.len() * cin;
            let src = &input[(iy * ins.w + ix) * cin..][..run];
            let dst = &mut buf[(ky * kw + kx_r.start) * cin..][..run];
            for (d, &s) in dst.iter_mut().zip(src) {
                *d = (s as u8) ^ 0x80;
            }
            continue;
        }
        for kx in kx_r.clone() {
            let ix = x0 + kx * geo.dilation[1] - geo.pad[1];
            let src = &input[(iy * ins.w + ix) * cin..][..cin];
            let dst = &mut buf[(ky * kw + kx) * cin..][..cin];
            for (d, &s) in dst.iter_mut().zip(src) {
                *d = (s as u8) ^ 0x80;
            }
        }
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;

    #[test]
    fn transpose16_transposes() {
        if !crate::kernels::x86::vnni_available() {
            std::println!("transpose16_transposes: not run, this CPU has no AVX-512");
            return;
        }
        let m: [[i32; 16]; 16] =
            core::array::from_fn(|l| core::array::from_fn(|c| (l * 100 + c) as i32));
        let mut got = [[0i32; 16]; 16];
        // SAFETY: AVX-512 F was detected; loads and stores of 16 i32 arrays.
        unsafe {
            let r = m.map(|row| _mm512_loadu_si512(row.as_ptr().cast()));
            for (g, v) in got.iter_mut().zip(transpose16(r)) {
                _mm512_storeu_si512(g.as_mut_ptr().cast(), v);
            }
        }
        for (c, col) in got.iter().enumerate() {
            for (l, &v) in col.iter().enumerate() {
                assert_eq!(v, m[l][c], "word {l} of column {c}");
            }
        }
    }
}
