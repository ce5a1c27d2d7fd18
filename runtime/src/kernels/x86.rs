//! Building blocks of the explicit x86-64 AVX2 kernel variants (`<op>/x86.rs`): run-time
//! feature detection without `std`, and the vectorised requantization.
//!
//! # Detection
//!
//! [`avx2_available`] reads CPUID once per process and caches the answer in an atomic: AVX2
//! needs CPUID.1:ECX.OSXSAVE (the OS enabled `xgetbv`), CPUID.1:ECX.AVX, XCR0 bits 1 and 2
//! (the OS saves SSE and YMM state) and CPUID.(7,0):EBX.AVX2. Every AVX2 kernel is a
//! `#[target_feature(enable = "avx2")]` function entered only after this returned `true`.
//!
//! # Exactness
//!
//! The kernels compute every product as `(x - in_zp) * w` in 16-bit lanes: `x - in_zp` lies in
//! `-255..=255` (`in_zp` is int8, `Model::parse` checks it) and `w` in `-128..=127`, so both fit
//! i16 exactly. `vpmaddwd` multiplies i16 pairs and adds the two products into one i32 lane;
//! each product is at most `255 * 128 = 32640` in magnitude, a pair at most `65280`, so the
//! pair sum is exact in i32. The accumulation is `vpaddd` (wrapping i32 addition), and addition
//! modulo 2^32 is associative and commutative, so any summation order gives the reference's
//! bits. (`vpmaddubsw` is not used: its i16 pair sum saturates for int8 data, e.g.
//! `255 * -128 * 2`.) Padding taps and inactive columns enter as `x - in_zp = 0`, adding
//! nothing, as in the reference which never reads them.
//!
//! [`requant8`] reproduces [`crate::quant::multiply_by_quantized_multiplier`] and
//! [`crate::kernels::OutputStage::finish`] bit for bit; its comments carry the argument.

use core::arch::x86_64::*;
use core::sync::atomic::{AtomicU8, Ordering};

/// 0: not yet detected, 1: no AVX2, 2: AVX2.
static AVX2: AtomicU8 = AtomicU8::new(0);

/// Whether this CPU and OS run AVX2 code (CPUID and XCR0, read once per process and cached).
#[inline]
pub fn avx2_available() -> bool {
    match AVX2.load(Ordering::Relaxed) {
        1 => false,
        2 => true,
        _ => {
            let yes = detect_avx2();
            // Racing first calls compute the same answer: a relaxed store suffices.
            AVX2.store(if yes { 2 } else { 1 }, Ordering::Relaxed);
            yes
        }
    }
}

fn detect_avx2() -> bool {
    // CPUID exists on every x86-64 CPU.
    let max_leaf = __cpuid(0).eax;
    if max_leaf < 7 {
        return false;
    }
    let ecx1 = __cpuid(1).ecx;
    let (osxsave, avx) = (ecx1 & (1 << 27) != 0, ecx1 & (1 << 28) != 0);
    if !(osxsave && avx) {
        return false;
    }
    // SAFETY: CPUID.1:ECX.OSXSAVE (checked above) means the OS set CR4.OSXSAVE, which is what
    // makes `xgetbv` executable; the `xsave` target feature of `xcr0` asks for nothing more.
    let xcr0 = unsafe { xcr0() };
    if xcr0 & 0b110 != 0b110 {
        return false;
    }
    __cpuid_count(7, 0).ebx & (1 << 5) != 0
}

/// 0: not yet detected, 1: no AVX-512 VNNI, 2: AVX-512 VNNI.
static VNNI: AtomicU8 = AtomicU8::new(0);

/// Whether this CPU and OS run the AVX-512 VNNI kernels (`vpdpbusd` on 512 bits, with
/// AVX-512 F, BW and VL beside it; CPUID and XCR0, read once per process and cached).
#[inline]
pub fn vnni_available() -> bool {
    match VNNI.load(Ordering::Relaxed) {
        1 => false,
        2 => true,
        _ => {
            let yes = avx2_available() && detect_vnni();
            // Racing first calls compute the same answer: a relaxed store suffices.
            VNNI.store(if yes { 2 } else { 1 }, Ordering::Relaxed);
            yes
        }
    }
}

/// 0: not yet detected, 1: no AVX-512 VBMI, 2: AVX-512 VBMI.
static VBMI: AtomicU8 = AtomicU8::new(0);

/// Whether [`vnni_available`] holds and the CPU also has AVX-512 VBMI (byte permutes across
/// the whole vector, CPUID.(7,0):ECX bit 1), read once per process and cached.
#[inline]
pub fn vbmi_available() -> bool {
    match VBMI.load(Ordering::Relaxed) {
        1 => false,
        2 => true,
        _ => {
            let yes = vnni_available() && __cpuid_count(7, 0).ecx & (1 << 1) != 0;
            // Racing first calls compute the same answer: a relaxed store suffices.
            VBMI.store(if yes { 2 } else { 1 }, Ordering::Relaxed);
            yes
        }
    }
}

/// AVX-512 F (CPUID.(7,0):EBX bit 16), BW (bit 30), VL (bit 31) and VNNI (ECX bit 11), with
/// the OS saving the opmask and the upper ZMM state (XCR0 bits 5, 6 and 7). Called only after
/// [`detect_avx2`] succeeded (leaf 7 exists, OSXSAVE is set).
fn detect_vnni() -> bool {
    // SAFETY: `avx2_available` returned true, so CPUID.1:ECX.OSXSAVE is set.
    let xcr0 = unsafe { xcr0() };
    if xcr0 & 0b1110_0000 != 0b1110_0000 {
        return false;
    }
    let leaf7 = __cpuid_count(7, 0);
    let ebx_bits = (1 << 16) | (1 << 30) | (1 << 31);
    leaf7.ebx & ebx_bits == ebx_bits && leaf7.ecx & (1 << 11) != 0
}

/// XCR0.
///
/// # Safety
/// CPUID.1:ECX.OSXSAVE must be set.
#[target_feature(enable = "xsave")]
unsafe fn xcr0() -> u64 {
    // SAFETY: the caller checked OSXSAVE, so `xgetbv` does not fault.
    unsafe { _xgetbv(0) }
}

/// Per-channel requantization parameters of up to `N` consecutive output channels, as
/// structure-of-arrays for vector loads: `bias`, `mult` and `total = 31 - clamp(shift, -31,
/// 30)` (the right shift of [`crate::quant::multiply_by_quantized_multiplier`], `1..=62`).
pub(crate) struct QuantBlock<const N: usize> {
    pub(crate) bias: [i32; N],
    pub(crate) mult: [i32; N],
    pub(crate) total: [i32; N],
}

impl<const N: usize> QuantBlock<N> {
    /// Parameters of channels `first .. first + N`, each index clamped to `last` (entries past
    /// the last channel repeat it: computed, never stored).
    pub(crate) fn load(chan: &crate::kernels::ChannelQuant<'_>, first: usize, last: usize) -> Self {
        Self::load_n(chan, first, last, N)
    }

    /// As [`Self::load`] for the first `count.min(N)` entries only (the rest keep neutral
    /// values and must not be used): a small layer does not pay for `N` decodes.
    pub(crate) fn load_n(
        chan: &crate::kernels::ChannelQuant<'_>,
        first: usize,
        last: usize,
        count: usize,
    ) -> Self {
        let mut q = QuantBlock {
            bias: [0; N],
            mult: [0; N],
            total: [1; N],
        };
        for i in 0..count.min(N) {
            let (b, m, s) = chan.get((first + i).min(last));
            q.bias[i] = b;
            q.mult[i] = m;
            q.total[i] = 31 - s.clamp(-31, 30);
        }
        q
    }
}

/// The phase rows of one input row, for kernels that run along output rows (depthwise in
/// `conv/x86_rows.rs`, max pooling in `pool/x86.rs`): with stride `sx` along the width, phase
/// row `r` holds the pixels of padded columns `sx * x + r` for `x < n_x`, `c` bytes each, so a
/// kernel tap `kx` is the run of phase row `kx % sx` shifted by `(kx / sx) * c`. A pixel is the
/// input's `cin` values, each repeated `c / cin` times (a depthwise channel multiplier).
pub(crate) struct PhaseRows {
    /// Stride along the width.
    pub(crate) sx: usize,
    /// Left padding (pixels).
    pub(crate) pad_l: usize,
    /// Input width (pixels).
    pub(crate) in_w: usize,
    /// Input channels per pixel.
    pub(crate) cin: usize,
    /// Bytes per pixel in a phase row (a multiple of `cin`).
    pub(crate) c: usize,
    /// Pixels of a phase row that taps read.
    pub(crate) n_x: usize,
    /// Bytes from one phase row to the next.
    pub(crate) row_len: usize,
}

impl PhaseRows {
    /// Writes the `sx` phase rows of input row `src` (`in_w * cin` values; `None`: every input
    /// column reads `blank`) into `rows` (`sx * row_len` bytes). Only the pixels of input
    /// columns are written: the padding pixels keep what the caller put there once.
    pub(crate) fn fill(&self, rows: &mut [i8], src: Option<&[i8]>, blank: i8) {
        let (sx, c, cin) = (self.sx, self.c, self.cin);
        let m = c / cin;
        for r in 0..sx {
            let row = &mut rows[r * self.row_len..][..self.row_len];
            // Pixels `x` with input column `sx * x + r - pad_l` in `0..in_w`.
            let x_lo = self.pad_l.saturating_sub(r).div_ceil(sx);
            let x_hi = (self.in_w + self.pad_l)
                .saturating_sub(r)
                .div_ceil(sx)
                .min(self.n_x);
            if x_lo >= x_hi {
                continue;
            }
            let dst = &mut row[x_lo * c..x_hi * c];
            let Some(src) = src else {
                dst.fill(blank);
                continue;
            };
            let col = sx * x_lo + r - self.pad_l;
            if m > 1 {
                // Input channel `g` of a pixel feeds output channels `g * m .. (g + 1) * m`.
                let pixels = dst
                    .chunks_exact_mut(c)
                    .zip(src[col * cin..].chunks(sx * cin));
                for (px, from) in pixels {
                    for (run, &v) in px.chunks_exact_mut(m).zip(&from[..cin]) {
                        run.fill(v);
                    }
                }
            } else if sx == 1 {
                dst.copy_from_slice(&src[col * c..][..dst.len()]);
            } else {
                let pixels = dst.chunks_exact_mut(c).zip(src[col * c..].chunks(sx * c));
                // Fixed-size moves for the common channel counts (a call to `memcpy` per
                // pixel cost more than the arithmetic of a slimmed layer).
                match c {
                    4 => pixels.for_each(|(px, from)| px.copy_from_slice(&from[..4])),
                    8 => pixels.for_each(|(px, from)| px.copy_from_slice(&from[..8])),
                    16 => pixels.for_each(|(px, from)| px.copy_from_slice(&from[..16])),
                    32 => pixels.for_each(|(px, from)| px.copy_from_slice(&from[..32])),
                    64 => pixels.for_each(|(px, from)| px.copy_from_slice(&from[..64])),
                    _ => pixels.for_each(|(px, from)| px.copy_from_slice(&from[..c])),
                }
            }
        }
    }
}

/// Output stage constants broadcast to 8 lanes.
#[derive(Clone, Copy)]
pub(crate) struct StageV {
    zp: __m256i,
    lo: __m256i,
    hi: __m256i,
}

impl StageV {
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(crate) fn new(stage: &crate::kernels::OutputStage) -> Self {
        StageV {
            zp: _mm256_set1_epi32(stage.zero_point),
            lo: _mm256_set1_epi32(stage.act_min as i32),
            hi: _mm256_set1_epi32(stage.act_max as i32),
        }
    }
}

/// Eight lanes of `stage.finish(multiply_by_quantized_multiplier(acc + bias, mult, shift))`,
/// with `total = 31 - clamp(shift, -31, 30)` per lane; results in `act_min..=act_max`.
///
/// Exactness, lane by lane against `quant.rs`:
/// - `acc + bias` wraps as `wrapping_add` does (`vpaddd`).
/// - `vpmuldq` forms the exact i64 product of the two signed 32-bit values (even lanes
///   directly, odd lanes after moving them down 32 bits); `|prod| <= 2^62`.
/// - `prod + 2^(total - 1)` cannot overflow i64 (`total <= 62`), as in `quant.rs`.
/// - AVX2 has no 64-bit arithmetic right shift, so `v >> total` is formed as
///   `((v ^ s) >>> total) ^ s` with `s = v < 0 ? -1 : 0` and `>>>` logical (`vpsrlvq`): for
///   `v >= 0` this is `v >>> total`; for `v < 0`, `!v = -v - 1 >= 0` and
///   `!(!v >>> t) = -floor((-v - 1) / 2^t) - 1 = floor(v / 2^t)`, the arithmetic shift.
/// - `quant.rs` then saturates to i32 and `OutputStage::finish` computes
///   `clamp(saturating_add(r, zp), act_min, act_max)` with `zp`, `act_min`, `act_max` in
///   `-128..=127`. Clamping `r` to `-256..=256` instead gives the same final value: if
///   `r > 256` then both `r + zp` (saturated or not) and `256 + zp >= 128` exceed
///   `act_max <= 127`, so both clamp to `act_max`; symmetrically `r < -256` and
///   `-256 + zp <= -129` both clamp to `act_min`; in between nothing changes. After the clamp
///   `r + zp` cannot overflow, so a plain `vpaddd` then `vpmaxsd`/`vpminsd` finish.
#[inline]
#[target_feature(enable = "avx2")]
pub(crate) fn requant8(
    acc: __m256i,
    bias: __m256i,
    mult: __m256i,
    total: __m256i,
    st: StageV,
) -> __m256i {
    let x = _mm256_add_epi32(acc, bias);
    let low = _mm256_set1_epi64x(0xFFFF_FFFF);
    let (t_even, t_odd) = (_mm256_and_si256(total, low), _mm256_srli_epi64::<32>(total));
    let one = _mm256_set1_epi64x(1);
    let shift_even = |p: __m256i, t: __m256i| -> __m256i {
        let p = _mm256_add_epi64(p, _mm256_sllv_epi64(one, _mm256_sub_epi64(t, one)));
        let s = _mm256_cmpgt_epi64(_mm256_setzero_si256(), p);
        let r = _mm256_xor_si256(_mm256_srlv_epi64(_mm256_xor_si256(p, s), t), s);
        let (cap, floor) = (_mm256_set1_epi64x(256), _mm256_set1_epi64x(-256));
        let r = _mm256_blendv_epi8(r, cap, _mm256_cmpgt_epi64(r, cap));
        _mm256_blendv_epi8(r, floor, _mm256_cmpgt_epi64(floor, r))
    };
    let even = shift_even(_mm256_mul_epi32(x, mult), t_even);
    let odd = shift_even(
        _mm256_mul_epi32(_mm256_srli_epi64::<32>(x), _mm256_srli_epi64::<32>(mult)),
        t_odd,
    );
    // Each i64 lane now holds a value in -256..=256: its low 32 bits are that value as i32.
    let r = _mm256_blend_epi32::<0b1010_1010>(even, _mm256_slli_epi64::<32>(odd));
    let v = _mm256_add_epi32(r, st.zp);
    _mm256_min_epi32(_mm256_max_epi32(v, st.lo), st.hi)
}

/// Output stage constants broadcast to 16 lanes.
#[derive(Clone, Copy)]
pub(crate) struct Stage16 {
    zp: __m512i,
    lo: __m512i,
    hi: __m512i,
}

impl Stage16 {
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(crate) fn new(stage: &crate::kernels::OutputStage) -> Self {
        Stage16 {
            zp: _mm512_set1_epi32(stage.zero_point),
            lo: _mm512_set1_epi32(stage.act_min as i32),
            hi: _mm512_set1_epi32(stage.act_max as i32),
        }
    }
}

/// Sixteen lanes of [`requant8`]'s result, with AVX-512 F's own 64-bit arithmetic shift
/// (`vpsravq`) and 64-bit min/max (`vpminsq`/`vpmaxsq`) in place of AVX2's emulations; the
/// exactness argument is [`requant8`]'s, step for step.
#[inline]
#[target_feature(enable = "avx512f")]
pub(crate) fn requant16(
    acc: __m512i,
    bias: __m512i,
    mult: __m512i,
    total: __m512i,
    st: Stage16,
) -> __m512i {
    let x = _mm512_add_epi32(acc, bias);
    let low = _mm512_set1_epi64(0xFFFF_FFFF);
    let (t_even, t_odd) = (_mm512_and_si512(total, low), _mm512_srli_epi64::<32>(total));
    let one = _mm512_set1_epi64(1);
    let (cap, floor) = (_mm512_set1_epi64(256), _mm512_set1_epi64(-256));
    let shift = |p: __m512i, t: __m512i| -> __m512i {
        let p = _mm512_add_epi64(p, _mm512_sllv_epi64(one, _mm512_sub_epi64(t, one)));
        let r = _mm512_srav_epi64(p, t);
        _mm512_min_epi64(_mm512_max_epi64(r, floor), cap)
    };
    let even = shift(_mm512_mul_epi32(x, mult), t_even);
    let odd = shift(
        _mm512_mul_epi32(_mm512_srli_epi64::<32>(x), _mm512_srli_epi64::<32>(mult)),
        t_odd,
    );
    // Each i64 lane holds a value in -256..=256: its low 32 bits are that value as i32.
    let r = _mm512_mask_blend_epi32(0b1010_1010_1010_1010, even, _mm512_slli_epi64::<32>(odd));
    let v = _mm512_add_epi32(r, st.zp);
    _mm512_min_epi32(_mm512_max_epi32(v, st.lo), st.hi)
}

/// The 8 i32 lanes of `v` (each in `-128..=127`) as 8 bytes, lane order.
#[inline]
#[target_feature(enable = "avx2")]
pub(crate) fn pack8(v: __m256i) -> [u8; 8] {
    let w = _mm256_packs_epi32(v, v); // [v0..3 v0..3 | v4..7 v4..7] as i16
    let b = _mm256_packs_epi16(w, w); // bytes; i32 unit 0 = v0..3, unit 4 = v4..7
    let p = _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 0, 0, 0, 0, 0, 0));
    (_mm_cvtsi128_si64(_mm256_castsi256_si128(p)) as u64).to_le_bytes()
}

/// The 16 i32 lanes of `a` then `b` (each in `-128..=127`) as 16 bytes, lane order.
#[inline]
#[target_feature(enable = "avx2")]
pub(crate) fn pack16(a: __m256i, b: __m256i) -> __m128i {
    let w = _mm256_packs_epi32(a, b); // [a0..3 b0..3 | a4..7 b4..7]
    let x = _mm256_packs_epi16(w, w); // i32 units: a0..3 b0..3 a0..3 b0..3 | a4..7 b4..7 ..
    let p = _mm256_permutevar8x32_epi32(x, _mm256_setr_epi32(0, 4, 1, 5, 0, 0, 0, 0));
    _mm256_castsi256_si128(p)
}

/// The first `dst.len()` (at most 16) of the 16 bytes of `v` into `dst`: one unaligned store
/// when `dst` has 16 bytes, else byte by byte without a call to `memcpy` (a stack copy and
/// `memcpy` of a few bytes cost more than the vector work of a narrow layer).
#[inline]
#[target_feature(enable = "avx2")]
pub(crate) fn store16(dst: &mut [i8], v: __m128i) {
    if dst.len() == 16 {
        // SAFETY: `dst` is 16 bytes long: an unaligned 16-byte store into it.
        unsafe { _mm_storeu_si128(dst.as_mut_ptr().cast(), v) };
    } else {
        let lo = _mm_cvtsi128_si64(v) as u64;
        let hi = _mm_extract_epi64::<1>(v) as u64;
        for (k, o) in dst.iter_mut().take(16).enumerate() {
            let word = if k < 8 { lo } else { hi };
            *o = (word >> (8 * (k % 8))) as u8 as i8;
        }
    }
}

/// Sums of the 8 lanes of each of `a0..a3` as lanes 0..3 of the result.
#[inline]
#[target_feature(enable = "avx2")]
pub(crate) fn hsum4(a0: __m256i, a1: __m256i, a2: __m256i, a3: __m256i) -> __m128i {
    let h = _mm256_hadd_epi32(_mm256_hadd_epi32(a0, a1), _mm256_hadd_epi32(a2, a3));
    // h = [s0_lo s1_lo s2_lo s3_lo | s0_hi s1_hi s2_hi s3_hi]
    _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256::<1>(h))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::OutputStage;
    use crate::quant::multiply_by_quantized_multiplier;

    /// `N` random lanes of requantization inputs (edge values included) and a random stage.
    struct Case<const N: usize> {
        acc: [i32; N],
        bias: [i32; N],
        mult: [i32; N],
        shift: [i32; N],
        total: [i32; N],
        stage: OutputStage,
    }

    impl<const N: usize> Case<N> {
        fn draw(next: &mut impl FnMut() -> u64) -> Self {
            let lanes: [[i32; 4]; N] = core::array::from_fn(|_| {
                let acc = match next() % 3 {
                    0 => next() as i32,
                    1 => (next() as i32) >> (next() % 31),
                    _ => [i32::MIN, i32::MAX, 0, -1, 1][(next() % 5) as usize],
                };
                let bias = (next() as i32) >> (next() % 32);
                let mult = match next() % 4 {
                    0 => 1 << 30,
                    1 => [0, i32::MAX, i32::MIN, -1][(next() % 4) as usize],
                    _ => next() as i32,
                };
                [acc, bias, mult, (next() % 70) as i32 - 35]
            });
            let [acc, bias, mult, shift]: [[i32; N]; 4] =
                core::array::from_fn(|k| core::array::from_fn(|i| lanes[i][k]));
            let a = (next() as i8, next() as i8);
            Case {
                acc,
                bias,
                mult,
                shift,
                total: core::array::from_fn(|i| 31 - shift[i].clamp(-31, 30)),
                stage: OutputStage {
                    zero_point: (next() as i8) as i32,
                    act_min: a.0.min(a.1),
                    act_max: a.0.max(a.1),
                },
            }
        }

        /// Lane `i` by the scalar code.
        fn want(&self, i: usize) -> i8 {
            self.stage.finish(multiply_by_quantized_multiplier(
                self.acc[i].wrapping_add(self.bias[i]),
                self.mult[i],
                self.shift[i],
            ))
        }
    }

    /// xorshift64 from `seed`.
    fn rng(mut seed: u64) -> impl FnMut() -> u64 {
        move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        }
    }

    #[test]
    fn requant8_matches_scalar() {
        if !avx2_available() {
            return;
        }
        let mut next = rng(0x9E37_79B9_7F4A_7C15);
        for round in 0..20_000 {
            let c = Case::<8>::draw(&mut next);
            // SAFETY: AVX2 was detected above; the loads read 8 i32 from 8-element arrays.
            let got = unsafe {
                let ld = |a: &[i32; 8]| _mm256_loadu_si256(a.as_ptr().cast());
                pack8(requant8(
                    ld(&c.acc),
                    ld(&c.bias),
                    ld(&c.mult),
                    ld(&c.total),
                    StageV::new(&c.stage),
                ))
            };
            for (i, &g) in got.iter().enumerate() {
                assert_eq!(g as i8, c.want(i), "round {round} lane {i}");
            }
        }
    }

    #[cfg(feature = "std")]
    #[test]
    fn requant16_matches_scalar() {
        if !vnni_available() {
            std::println!("requant16_matches_scalar: not run, this CPU has no AVX-512 VNNI");
            return;
        }
        let mut next = rng(0x2545_F491_4F6C_DD1D);
        for round in 0..20_000 {
            let c = Case::<16>::draw(&mut next);
            let mut got = [0i32; 16];
            // SAFETY: AVX-512 F was detected above (`vnni_available`); the loads and the store
            // touch 16 i32 of 16-element arrays.
            unsafe {
                let ld = |a: &[i32; 16]| _mm512_loadu_si512(a.as_ptr().cast());
                let r = requant16(
                    ld(&c.acc),
                    ld(&c.bias),
                    ld(&c.mult),
                    ld(&c.total),
                    Stage16::new(&c.stage),
                );
                _mm512_storeu_si512(got.as_mut_ptr().cast(), r);
            }
            for (i, &g) in got.iter().enumerate() {
                assert_eq!(g, c.want(i) as i32, "round {round} lane {i}");
            }
        }
    }
}
