//! The x86-64 variant: explicit AVX2, chosen at run time; the portable variant on CPUs without
//! AVX2. Same bytes as the reference (the exactness argument is in `kernels/x86.rs`).

use core::arch::x86_64::*;

use super::portable;
use crate::kernels::x86::{QuantBlock, StageV, avx2_available, hsum4, pack8, requant8};
use crate::kernels::{ChannelQuant, OutputStage};

/// Fully connected layer; same contract and bytes as
/// [`crate::kernels::reference::fully_connected`].
///
/// With AVX2: four outputs at a time, 16 inputs per step (`vpmovsxbw`, `vpsubw`, then one
/// `vpmaddwd` per output row), over one contiguous run when every column is active, else one
/// run per position.
#[allow(clippy::too_many_arguments)]
pub fn fully_connected(
    input: &[i8],
    positions: usize,
    in_ch: usize,
    in_zp: i32,
    weights: &[i8],
    i_full: usize,
    chan: ChannelQuant<'_>,
    stage: OutputStage,
    output: &mut [i8],
) {
    let n_out = output.len();
    let row = positions.checked_mul(i_full);
    let fits = avx2_available()
        && n_out > 0
        && positions > 0
        && in_ch > 0
        && in_ch <= i_full
        && chan.len() >= n_out
        && positions
            .checked_mul(in_ch)
            .is_some_and(|n| n <= input.len())
        && row
            .and_then(|r| r.checked_mul(n_out))
            .is_some_and(|n| n <= weights.len());
    if fits {
        // SAFETY: AVX2 was detected just above, and the checks above are the slice lengths
        // `fc` relies on.
        unsafe {
            fc(
                input,
                positions,
                in_ch,
                in_zp as i16,
                weights,
                i_full,
                chan,
                stage,
                output,
            )
        }
    } else {
        portable::fully_connected(
            input, positions, in_ch, in_zp, weights, i_full, chan, stage, output,
        );
    }
}

/// # Safety
/// AVX2 must be available; `positions * in_ch <= input.len()`, `n_out * positions * i_full
/// <= weights.len()` with `n_out = output.len() >= 1`, `in_ch <= i_full`, and `chan` holds
/// `n_out` channels.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2")]
unsafe fn fc(
    input: &[i8],
    positions: usize,
    in_ch: usize,
    zp: i16,
    weights: &[i8],
    i_full: usize,
    chan: ChannelQuant<'_>,
    stage: OutputStage,
    output: &mut [i8],
) {
    let n_out = output.len();
    let row = positions * i_full;
    let (runs, run_len) = if in_ch == i_full {
        (1, positions * in_ch)
    } else {
        (positions, in_ch)
    };
    let len16 = run_len - run_len % 16;
    let zp16 = _mm256_set1_epi16(zp);
    let st = StageV::new(&stage);
    let (xp, wp) = (input.as_ptr(), weights.as_ptr());
    let mut o0 = 0;
    while o0 < n_out {
        // A partial last block repeats the last output (computed, not stored).
        let rows: [usize; 4] = core::array::from_fn(|j| (o0 + j).min(n_out - 1) * row);
        let mut acc = [_mm256_setzero_si256(); 4];
        for r in 0..runs {
            let (x0, w0) = (r * in_ch, r * i_full);
            let mut step = |xv: __m128i, ws: [__m128i; 4]| {
                let x = _mm256_sub_epi16(_mm256_cvtepi8_epi16(xv), zp16);
                for (a, w) in acc.iter_mut().zip(ws) {
                    *a = _mm256_add_epi32(*a, _mm256_madd_epi16(x, _mm256_cvtepi8_epi16(w)));
                }
            };
            let mut k = 0;
            while k < len16 {
                // SAFETY: `x0 + k + 16 <= x0 + run_len <= positions * in_ch <= input.len()`,
                // and `rows[j] + w0 + k + 16 <= rows[j] + w0 + run_len <= (o + 1) * row <=
                // weights.len()` for the row's output `o < n_out`.
                let (xv, ws) = unsafe {
                    (
                        _mm_loadu_si128(xp.add(x0 + k).cast()),
                        core::array::from_fn(|j| _mm_loadu_si128(wp.add(rows[j] + w0 + k).cast())),
                    )
                };
                step(xv, ws);
                k += 16;
            }
            if len16 < run_len {
                let tail = run_len - len16;
                // Inputs past the run are the zero point (`x - zp = 0`), weights zero.
                let mut xt = [zp as i8; 16];
                xt[..tail].copy_from_slice(&input[x0 + len16..][..tail]);
                let ws = core::array::from_fn(|j| {
                    let mut wt = [0i8; 16];
                    wt[..tail].copy_from_slice(&weights[rows[j] + w0 + len16..][..tail]);
                    // SAFETY: 16 bytes of a 16-byte array.
                    unsafe { _mm_loadu_si128(wt.as_ptr().cast()) }
                });
                // SAFETY: 16 bytes of a 16-byte array.
                step(unsafe { _mm_loadu_si128(xt.as_ptr().cast()) }, ws);
            }
        }
        let s = _mm256_castsi128_si256(hsum4(acc[0], acc[1], acc[2], acc[3]));
        let q = QuantBlock::<8>::load(&chan, o0, n_out - 1);
        // SAFETY: each array holds 8 i32.
        let ld = |v: &[i32; 8]| unsafe { _mm256_loadu_si256(v.as_ptr().cast()) };
        let bytes = pack8(requant8(s, ld(&q.bias), ld(&q.mult), ld(&q.total), st));
        let n = 4.min(n_out - o0);
        for (o, &b) in output[o0..o0 + n].iter_mut().zip(&bytes) {
            *o = b as i8;
        }
        o0 += 4;
    }
}

/// Needs `std` for `Vec` (the test crate enables it).
#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;

    #[test]
    fn matches_reference_on_random_shapes() {
        let mut s = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        for case in 0..3000 {
            let positions = 1 + (next() % 9) as usize;
            let in_ch = 1 + (next() % 70) as usize;
            let i_full = in_ch + (next() % 2 * (next() % 5)) as usize;
            let n_out = 1 + (next() % 13) as usize;
            let o_full = n_out + (next() % 3) as usize;
            let x: std::vec::Vec<i8> = (0..positions * in_ch).map(|_| next() as i8).collect();
            let w: std::vec::Vec<i8> = (0..o_full * positions * i_full)
                .map(|_| next() as i8)
                .collect();
            let chan: std::vec::Vec<u8> = (0..o_full)
                .flat_map(|_| {
                    let m = (1i32 << 30) + (next() % (1 << 30)) as i32;
                    [(next() as i32) >> 12, m, -((next() % 16) as i32) + 2]
                })
                .flat_map(i32::to_le_bytes)
                .collect();
            let stage = OutputStage {
                zero_point: next() as i8 as i32,
                act_min: -128,
                act_max: 127,
            };
            let zp = next() as i8 as i32;
            let cq = ChannelQuant::new(&chan);
            let mut got = std::vec![0i8; n_out];
            let mut want = got.clone();
            fully_connected(&x, positions, in_ch, zp, &w, i_full, cq, stage, &mut got);
            crate::kernels::reference::fully_connected(
                &x, positions, in_ch, zp, &w, i_full, cq, stage, &mut want,
            );
            assert_eq!(
                got, want,
                "case {case}: {positions} {in_ch} {i_full} {n_out}"
            );
        }
    }
}
