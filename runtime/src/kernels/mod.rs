//! Kernels, one folder per op: `<op>/reference.rs` is the specification, `<op>/portable.rs`
//! (and, per target, further siblings) the faster variants, and `<op>/mod.rs` names the variant
//! the interpreter calls. A new kernel variant is a new file in its op's folder.
//!
//! Every kernel works on int8 NHWC tensors (batch 1, channels innermost, as TensorFlow Lite
//! Micro and CMSIS-NN) with int32 accumulation, and takes its tensors already cut to the active
//! widths: an input of `c` active channels is a dense `[h, w, c]` array. Weights are the full
//! stored tensor; a kernel reads only the rows and columns of the active channels (first-k
//! slimming), so one copy of the weights in flash serves every width.
//!
//! The variants are also gathered into *kernel sets* with one signature per op, so that one
//! test suite runs against each: [`reference`] (the specification), [`portable`] (safe Rust,
//! every target), `x86_avx2` (x86-64: AVX2 chosen at run time), `x86_vnni` (x86-64: AVX-512
//! VNNI where the CPU has it, else AVX2) and [`active`] (what the interpreter calls: each op's
//! chosen variant).
//!
//! How the variants are held to the specification: they must give identical bytes for every
//! input a valid model can produce. `tests/tests/kernels.rs` runs one property suite against
//! every kernel set (exact equality with an independent naive reference, including the fast
//! paths: row-merged and pointwise convolution, depthwise with a channel multiplier, padding
//! wider than the kernel, channel counts past the blocks); the model tests (`slimming`,
//! `robustness`, `arena`, `conformance`) run whole networks through [`active`], and the
//! firmware check compares the thumb build's outputs in QEMU with the host's bit for bit.

pub mod add;
pub mod boundary;
pub(crate) mod common;
pub mod concat;
pub mod conv;
pub mod conv_transpose;
pub mod fc;
pub mod gather;
pub mod lut;
pub mod minmax;
pub mod mul;
pub mod pad;
pub mod pool;
pub mod prelu;
pub mod resize;
pub mod softmax;
pub mod transpose;
#[cfg(target_arch = "x86_64")]
pub mod x86;

/// The reference kernels: clear loops that define the results every other variant must
/// reproduce. Callers pass slices of exactly the sizes the shapes state; the interpreter checks
/// this before calling. Accumulation is int32 with wrapping adds (the compiler bounds the
/// accumulator range so that wrapping never happens for its models).
pub mod reference {
    pub use super::add::reference::add;
    pub use super::boundary::reference::{dequantize, quantize};
    pub use super::concat::reference::concat;
    pub use super::conv::reference::conv2d;
    pub use super::conv_transpose::reference::conv_transpose;
    pub use super::fc::reference::fully_connected;
    pub use super::gather::reference::gather_channels;
    pub use super::lut::reference::lut;
    pub use super::minmax::portable::minmax;
    pub use super::mul::reference::mul;
    pub use super::pad::reference::pad;
    pub use super::pool::reference::{avg_pool, global_avg_pool, max_pool};
    pub use super::prelu::reference::prelu;
    pub use super::resize::reference::resize;
    pub use super::softmax::reference::softmax;
    pub use super::transpose::reference::transpose;
}

/// The portable variants (safe Rust, every target; see `common.rs` for what they change
/// against the reference), with the reference where it is already a single pass.
pub mod portable {
    pub use super::add::portable::add;
    pub use super::boundary::reference::{dequantize, quantize};
    pub use super::concat::portable::concat;
    pub use super::conv::portable::conv2d;
    pub use super::conv_transpose::portable::conv_transpose;
    pub use super::fc::portable::fully_connected;
    pub use super::gather::portable::gather_channels;
    pub use super::lut::reference::lut;
    pub use super::minmax::portable::minmax;
    pub use super::mul::portable::mul;
    pub use super::pad::portable::pad;
    pub use super::pool::portable::{avg_pool, global_avg_pool, max_pool};
    pub use super::prelu::portable::prelu;
    pub use super::resize::portable::resize;
    pub use super::softmax::reference::softmax;
    pub use super::transpose::reference::transpose;
}

/// The x86-64 AVX2 variants: explicit AVX2 kernels (convolution, fully connected) behind
/// run-time feature detection ([`x86::avx2_available`]), falling back to the portable variants
/// on CPUs without AVX2 and for shapes the AVX2 paths do not take; never the AVX-512 VNNI path.
#[cfg(target_arch = "x86_64")]
pub mod x86_avx2 {
    pub use super::add::x86::add_avx2 as add;
    pub use super::boundary::reference::dequantize;
    pub use super::boundary::x86::quantize;
    pub use super::concat::portable::concat;
    pub use super::conv::x86::conv2d_avx2 as conv2d;
    pub use super::conv_transpose::portable::conv_transpose;
    pub use super::fc::x86::fully_connected;
    pub use super::gather::portable::gather_channels;
    pub use super::lut::reference::lut;
    pub use super::minmax::portable::minmax;
    pub use super::mul::portable::mul;
    pub use super::pad::portable::pad;
    pub use super::pool::portable::{avg_pool, global_avg_pool, max_pool};
    pub use super::prelu::portable::prelu;
    pub use super::resize::portable::resize;
    pub use super::softmax::reference::softmax;
    pub use super::transpose::reference::transpose;
}

/// The x86-64 variants at their best: the AVX-512 VNNI convolution where the CPU has it
/// ([`x86::vnni_available`]), else as [`x86_avx2`]. This is what the interpreter runs on
/// x86-64.
#[cfg(target_arch = "x86_64")]
pub mod x86_vnni {
    pub use super::add::x86::add;
    pub use super::boundary::reference::dequantize;
    pub use super::boundary::x86::quantize;
    pub use super::concat::portable::concat;
    pub use super::conv::x86::conv2d;
    pub use super::conv_transpose::portable::conv_transpose;
    pub use super::fc::x86::fully_connected;
    pub use super::gather::portable::gather_channels;
    pub use super::lut::reference::lut;
    pub use super::minmax::portable::minmax;
    pub use super::mul::portable::mul;
    pub use super::pad::portable::pad;
    pub use super::pool::portable::{avg_pool, global_avg_pool};
    pub use super::pool::x86::max_pool;
    pub use super::prelu::portable::prelu;
    pub use super::resize::portable::resize;
    pub use super::softmax::reference::softmax;
    pub use super::transpose::reference::transpose;
}

/// The Arm DSP (SMLAD) variants of the convolution and fully connected layer, on every Arm
/// core with the DSP extension: what [`active`] calls on the Cortex-M4, M7 and M33, and
/// on the Cortex-M55 the baseline its Helium variants are measured against.
#[cfg(edgeslim_arm_dsp)]
pub mod arm_dsp {
    pub use super::conv::arm_dsp::conv2d;
    pub use super::fc::arm_dsp::fully_connected;
}

/// The Helium (MVE) variants of the convolution and fully connected layer (Cortex-M55),
/// which [`active`] calls on such a core.
#[cfg(edgeslim_arm_mve)]
pub mod arm_mve {
    pub use super::conv::arm_mve::conv2d;
    pub use super::fc::arm_mve::fully_connected;
}

/// The name of the convolution and fully connected variants [`active`] calls on this build:
/// `arm_mve` (Helium), `arm_dsp` (SMLAD), `x86` (AVX2 or AVX-512 VNNI, chosen at run time) or
/// `portable`.
pub const ACTIVE_NAME: &str = if cfg!(edgeslim_arm_mve) {
    "arm_mve"
} else if cfg!(edgeslim_arm_dsp) {
    "arm_dsp"
} else if cfg!(target_arch = "x86_64") {
    "x86"
} else {
    "portable"
};

/// The kernel set the interpreter calls: each op folder's chosen variant.
pub mod active {
    pub use super::add::add;
    pub use super::boundary::{dequantize, quantize};
    pub use super::concat::concat;
    pub use super::conv::conv2d;
    pub use super::conv_transpose::conv_transpose;
    pub use super::fc::fully_connected;
    pub use super::gather::gather_channels;
    pub use super::lut::lut;
    pub use super::minmax::minmax;
    pub use super::mul::mul;
    pub use super::pad::pad;
    pub use super::pool::{avg_pool, global_avg_pool, max_pool};
    pub use super::prelu::prelu;
    pub use super::resize::resize;
    pub use super::softmax::softmax;
    pub use super::transpose::transpose;
}

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
        Self::decode(&self.bytes[o * Self::STRIDE..o * Self::STRIDE + Self::STRIDE])
    }

    /// The stored triples, [`Self::STRIDE`] bytes per channel (for kernels that walk the
    /// channels in step with their weight rows).
    #[inline]
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// `(bias, multiplier, shift)` from one channel's [`Self::STRIDE`] bytes (`b.len() >= 12`).
    #[inline(always)]
    pub fn decode(b: &[u8]) -> (i32, i32, i32) {
        let b = &b[..Self::STRIDE];
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

/// How [`pad`](active::pad) fills positions outside the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PadMode {
    /// One value.
    Constant,
    /// The input mirrored about its first and last row or column, which are not repeated.
    Reflect,
    /// The first or last row or column repeated.
    Edge,
}

impl PadMode {
    /// Decode a stored mode (0 constant, 1 reflect, 2 edge).
    pub const fn from_u32(v: u32) -> Option<PadMode> {
        match v {
            0 => Some(PadMode::Constant),
            1 => Some(PadMode::Reflect),
            2 => Some(PadMode::Edge),
            _ => None,
        }
    }
}

/// The mapping of a [`resize`](active::resize) from output to input positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResizeGeometry {
    /// Bilinear (else nearest).
    pub linear: bool,
    /// Coordinate transformation (see `ops::resize::attr::COORD`).
    pub coord: u32,
    /// Nearest rounding rule (see `ops::resize::attr::NEAREST`).
    pub nearest: u32,
    /// `[[num, den]; 2]`: the vertical and horizontal scale, output over input.
    pub scale: [[u32; 2]; 2],
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
