//! Kernels: the reference implementations are the specification.
//!
//! Every kernel works on int8 NHWC tensors (batch 1, channels innermost, as TensorFlow Lite
//! Micro and CMSIS-NN) with int32 accumulation, and takes its tensors already cut to the active
//! widths: an input of `c` active channels is a dense `[h, w, c]` array. Weights are the full
//! stored tensor; a kernel reads only the rows and columns of the active channels (first-k
//! slimming), so one copy of the weights in flash serves every width.
//!
//! [`optimized`] is the same kernel set, faster, in portable safe Rust (window clipping once
//! per output position, slice dot products that LLVM vectorises, four output channels per
//! input load, depthwise and pooling over contiguous channels); it is chosen here, once, as
//! [`active`], the set the interpreter calls, on every target.
//!
//! How the optimized set is held to the specification: it must give identical bytes for every
//! input a valid model can produce. `tests/tests/kernels.rs` runs one property suite against
//! both [`reference`] and [`active`] (exact equality with an independent naive reference,
//! including the fast paths: row-merged and pointwise convolution, depthwise with a channel
//! multiplier, padding wider than the kernel, channel counts past the blocks); the model tests
//! (`slimming`, `robustness`, `arena`, `conformance`) run whole networks through `active`, and
//! the firmware check compares the thumb build's outputs in QEMU with the host's bit for bit.

pub mod optimized;
pub mod reference;

/// The kernel set the interpreter calls: [`optimized`]. Switching back to [`reference`] here
/// is the one change needed to run the specification instead.
pub use optimized as active;

/// Height, width and (active) channels of an NHWC activation tensor (batch 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Rows.
    pub h: usize,
    /// Columns.
    pub w: usize,
    /// Channels.
    pub c: usize,
}

impl Shape {
    /// Elements of the tensor.
    pub const fn len(&self) -> usize {
        self.h * self.w * self.c
    }

    /// Whether the tensor has no elements.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Per-output-channel `(bias, multiplier, shift)` triples, read in place from the blob
/// (little-endian i32 words).
#[derive(Debug, Clone, Copy)]
pub struct ChannelQuant<'a> {
    bytes: &'a [u8],
}

impl<'a> ChannelQuant<'a> {
    /// Bytes per channel.
    pub const STRIDE: usize = 12;

    /// Wrap `bytes` holding `len / 12` triples.
    pub const fn new(bytes: &'a [u8]) -> Self {
        ChannelQuant { bytes }
    }

    /// Number of channels.
    pub const fn len(&self) -> usize {
        self.bytes.len() / Self::STRIDE
    }

    /// Whether there are no channels.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `(bias, multiplier, shift)` of channel `o` (`o < len()`).
    #[inline]
    pub fn get(&self, o: usize) -> (i32, i32, i32) {
        let b = &self.bytes[o * Self::STRIDE..o * Self::STRIDE + Self::STRIDE];
        (
            i32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
            i32::from_le_bytes([b[8], b[9], b[10], b[11]]),
        )
    }
}

/// Output stage shared by kernels: zero point and fused-activation clamp.
#[derive(Debug, Clone, Copy)]
pub struct OutputStage {
    /// Zero point added after requantization.
    pub zero_point: i32,
    /// Lower clamp.
    pub act_min: i8,
    /// Upper clamp.
    pub act_max: i8,
}

impl OutputStage {
    /// Add the zero point and clamp.
    #[inline]
    pub fn finish(&self, v: i32) -> i8 {
        v.saturating_add(self.zero_point)
            .clamp(self.act_min as i32, self.act_max as i32) as i8
    }
}

/// Geometry of a convolution.
#[derive(Debug, Clone, Copy)]
pub struct ConvGeometry {
    /// `[vertical, horizontal]` stride.
    pub stride: [usize; 2],
    /// `[top, left]` padding.
    pub pad: [usize; 2],
    /// `[vertical, horizontal]` dilation.
    pub dilation: [usize; 2],
    /// Active groups.
    pub groups: usize,
}

/// Geometry of a pooling window.
#[derive(Debug, Clone, Copy)]
pub struct PoolGeometry {
    /// `[height, width]` of the window.
    pub kernel: [usize; 2],
    /// `[vertical, horizontal]` stride.
    pub stride: [usize; 2],
    /// `[top, left]` padding.
    pub pad: [usize; 2],
    /// AvgPool: divide by the whole window, padding included.
    pub count_include_pad: bool,
}

/// A requantization step `(x - zero_point) * M` with `M` as `(multiplier, shift)`.
#[derive(Debug, Clone, Copy)]
pub struct Rescale {
    /// Zero point subtracted first.
    pub zero_point: i32,
    /// Q31 multiplier.
    pub multiplier: i32,
    /// Power-of-two exponent.
    pub shift: i32,
}

/// View bytes as int8.
#[inline]
pub fn as_i8(b: &[u8]) -> &[i8] {
    // SAFETY: u8 and i8 have the same size and alignment and every bit pattern is valid for
    // both; the pointer, length and lifetime are those of `b`.
    unsafe { core::slice::from_raw_parts(b.as_ptr().cast::<i8>(), b.len()) }
}

/// View bytes as mutable int8.
#[inline]
pub fn as_i8_mut(b: &mut [u8]) -> &mut [i8] {
    // SAFETY: as in `as_i8`; the exclusive borrow of `b` moves into the result, so no alias
    // of the bytes exists while it lives.
    unsafe { core::slice::from_raw_parts_mut(b.as_mut_ptr().cast::<i8>(), b.len()) }
}
