//! The Arm DSP variant (see `conv/arm_dsp.rs` for the instructions and why the bytes are the
//! reference's): the input is widened once per chunk into `[x0 - zp, x2 - zp]`,
//! `[x1 - zp, x3 - zp]` pairs, and four weight rows at a time run against it with `SMLAD` (`dsp::dot_4x1`).

use crate::kernels::common::prefix;
use crate::kernels::conv::arm_dsp::dsp::{
    dot_4x1, lanes_of_neg, requantize, sxtab16, sxtab16_ror8, word,
};
use crate::kernels::{ChannelQuant, OutputStage};

/// Input values widened at a time (a 1 KiB stack buffer).
const CHUNK: usize = 512;
/// Outputs accumulated at a time: each chunk of the input is widened once per block.
const OUT_BLOCK: usize = 64;

/// Fully connected layer; same contract and bytes as
/// [`crate::kernels::reference::fully_connected`].
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
    let row = positions * i_full;
    let n_out = output.len();
    // With every column active, a weight row and the input are each one contiguous run.
    let (runs, run_len) = if in_ch == i_full {
        (1, positions * in_ch)
    } else {
        (positions, in_ch)
    };
    let off = lanes_of_neg(in_zp);
    let mut buf_mem = [const { core::mem::MaybeUninit::<[u32; 2]>::uninit() }; CHUNK / 4];
    let buf = prefix(&mut buf_mem, run_len.min(CHUNK) / 4, [0; 2]);
    let mut b0 = 0;
    while b0 < n_out {
        let nb = OUT_BLOCK.min(n_out - b0);
        let mut acc = [0i32; OUT_BLOCK];
        for r in 0..runs {
            let xs = &input[r * in_ch..][..run_len];
            for (ci, xc) in xs.chunks(CHUNK).enumerate() {
                let groups = xc.len() / 4;
                let body = groups * 4;
                let col = &mut buf[..groups];
                let quads = &xc.as_chunks::<4>().0[..groups];
                for i in 0..groups {
                    let x = word(&quads[i]);
                    col[i] = [sxtab16(off, x), sxtab16_ror8(off, x)];
                }
                let col = &col[..groups];
                let tail = &xc[body..];
                let w_at = r * i_full + ci * CHUNK;
                let mut j = 0;
                while j < nb {
                    // Four rows at a time; past the block's end the last row repeats
                    // (computed, not added).
                    let o: [usize; 4] = core::array::from_fn(|k| b0 + (j + k).min(nb - 1));
                    let rows = o.map(|o| &weights[o * row + w_at..][..xc.len()]);
                    let mut a = [0i32; 4];
                    if groups > 0 {
                        dot_4x1(col, rows.map(|r| &r[..body]), &mut a);
                    }
                    for (k, r) in rows.iter().enumerate() {
                        for (&x, &w) in tail.iter().zip(&r[body..]) {
                            a[k] = a[k].wrapping_add((x as i32 - in_zp) * w as i32);
                        }
                    }
                    for (k, &ak) in a.iter().enumerate().take(nb - j) {
                        acc[j + k] = acc[j + k].wrapping_add(ak);
                    }
                    j += 4;
                }
            }
        }
        for (j, (out, &a)) in output[b0..b0 + nb].iter_mut().zip(&acc).enumerate() {
            *out = stage.finish(requantize(a, chan.get(b0 + j)));
        }
        b0 += nb;
    }
}
