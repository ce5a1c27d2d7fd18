//! Building blocks shared by the portable kernel variants (`<op>/portable.rs`).
//!
//! What the portable variants change against the reference is only the order of work and how
//! indices are formed:
//!
//! - convolution and pooling windows are clipped to the input once per output position (one
//!   range per axis, [`taps`]), so the hot loops carry no per-tap bounds test and no padding
//!   branch;
//! - the inner loop of a convolution or fully connected layer is a dot product over two
//!   equal-length slices (input channels of one tap against one weight row, [`dot4`]), which
//!   LLVM vectorises on the host and keeps branch-free on the MCU; four output channels share
//!   each input load;
//! - depthwise convolution and pooling run over contiguous channels of one position, with a
//!   small stack block of accumulators.
//!
//! The arithmetic is the reference's: every product is `(x - in_zp) * w` (formed in i16, where
//! it is exact because `Model::parse` bounds zero points to int8), accumulated in i32 with
//! wrapping adds (addition modulo 2^32 is associative and commutative, so any summation order
//! gives the reference's bits), then the same requantization and output stage.

/// Independent partial sums per output channel in [`dot4`]: eight on targets with SIMD
/// registers (LLVM turns each group into vector multiply-adds), one on scalar MCUs (where eight
/// would spill: a Cortex-M4 has 13 free registers).
pub(crate) const LANES: usize = if cfg!(any(
    target_arch = "x86_64",
    target_arch = "x86",
    target_arch = "aarch64"
)) {
    8
} else {
    1
};

/// Output channels computed together, sharing each load of the input.
pub(crate) const BLOCK: usize = 4;

/// Adds `sum((x - zp) * w_j)` to `acc[j]` for the four weight slices `w`, each at least
/// `x.len()` long.
///
/// `zp` is an int8 zero point, so `x - zp` fits i16 and each product fits i32 exactly as in
/// the reference; the sums wrap as the reference's do.
#[inline(always)]
pub(crate) fn dot4(acc: &mut [i32; BLOCK], x: &[i8], zp: i16, w: [&[i8]; BLOCK]) {
    const L: usize = LANES;
    let n = x.len();
    // Cutting every row to `n` up front lets LLVM drop the per-element bounds checks.
    let (w0, w1, w2, w3) = (&w[0][..n], &w[1][..n], &w[2][..n], &w[3][..n]);
    let mut lanes = [[0i32; L]; BLOCK];
    let body = n - n % L;
    for i in (0..body).step_by(L) {
        let xc = &x[i..i + L];
        let (c0, c1, c2, c3) = (&w0[i..i + L], &w1[i..i + L], &w2[i..i + L], &w3[i..i + L]);
        for l in 0..L {
            let xv = (xc[l] as i16 - zp) as i32;
            lanes[0][l] = lanes[0][l].wrapping_add(xv * c0[l] as i32);
            lanes[1][l] = lanes[1][l].wrapping_add(xv * c1[l] as i32);
            lanes[2][l] = lanes[2][l].wrapping_add(xv * c2[l] as i32);
            lanes[3][l] = lanes[3][l].wrapping_add(xv * c3[l] as i32);
        }
    }
    let a = acc;
    for (a, lanes) in a.iter_mut().zip(&lanes) {
        *a = lanes.iter().fold(*a, |s, &v| s.wrapping_add(v));
    }
    for i in body..n {
        let xv = (x[i] as i16 - zp) as i32;
        a[0] = a[0].wrapping_add(xv * w0[i] as i32);
        a[1] = a[1].wrapping_add(xv * w1[i] as i32);
        a[2] = a[2].wrapping_add(xv * w2[i] as i32);
        a[3] = a[3].wrapping_add(xv * w3[i] as i32);
    }
}

/// The kernel taps `k` in `0..k_n` whose input coordinate `start + k * dil - pad` lies in
/// `0..n` (`dil >= 1`): the window clipped to the input, as one range.
#[inline]
pub(crate) fn taps(
    start: usize,
    pad: usize,
    dil: usize,
    k_n: usize,
    n: usize,
) -> core::ops::Range<usize> {
    let dil = dil.max(1);
    // Dilation 1 (nearly every layer) needs no division: it runs once per output position.
    let up = |v: usize| if dil == 1 { v } else { v.div_ceil(dil) };
    let lo = if start >= pad { 0 } else { up(pad - start) };
    let hi = if n + pad > start {
        up(n + pad - start).min(k_n)
    } else {
        0
    };
    lo..hi.max(lo)
}

/// The first `n` elements (at most `N`) of a stack buffer, set to `v`: a kernel's scratch is
/// sized for its largest shape, and zeroing all of it on every call cost more than a slimmed
/// layer's arithmetic (a `[T; N]` initialiser always writes all `N`). Used by the variants
/// with fixed stack scratch (Arm DSP, x86).
#[cfg(any(target_arch = "x86_64", edgeslim_arm_dsp))]
#[inline(always)]
pub(crate) fn prefix<T: Copy, const N: usize>(
    buf: &mut [core::mem::MaybeUninit<T>; N],
    n: usize,
    v: T,
) -> &mut [T] {
    let n = n.min(N);
    for e in &mut buf[..n] {
        e.write(v);
    }
    // SAFETY: the first `n <= N` elements were initialised just above, and `MaybeUninit<T>`
    // has the size, alignment and layout of `T`.
    unsafe { core::slice::from_raw_parts_mut(buf.as_mut_ptr().cast::<T>(), n) }
}
