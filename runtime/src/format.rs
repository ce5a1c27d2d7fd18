//! Model blob format v2: constants and record layouts.
//!
//! The byte-level description is `runtime/FORMAT.md`; this module is its executable form. All
//! integers are little-endian. Offsets of sections are from the start of the blob and are
//! multiples of [`SECTION_ALIGN`]; each op's weights start at a multiple of [`WEIGHT_ALIGN`]
//! within the weights section, so a blob placed at a 16-byte aligned address gives aligned
//! weight rows to SIMD kernels.

/// `ESLM`.
pub const MAGIC: [u8; 4] = *b"ESLM";
/// The format version this runtime writes and reads. Version 2 added each tensor's producer
/// (so that `Model::parse` runs in time linear in the ops and tensors); version 3 added encoder
/// stages (the graph's `encoder_segments`) and each segment's `in_segment`. Older blobs are
/// refused with [`Error::UnsupportedVersion`](crate::Error::UnsupportedVersion): recompile the
/// model.
pub const VERSION: u16 = 3;
/// Bytes of the fixed header.
pub const HEADER_LEN: usize = 32;
/// Bytes of one section-table entry.
pub const TABLE_ENTRY_LEN: usize = 16;
/// Alignment of every section.
pub const SECTION_ALIGN: usize = 16;
/// Alignment of every op's weights within the weights section.
pub const WEIGHT_ALIGN: usize = 16;
/// "None" in optional u32 fields.
pub const NONE: u32 = u32::MAX;

/// Most segments (encoder stages + decoders) a model may have.
pub const MAX_SEGMENTS: usize = 16;
/// Most widths one segment may have.
pub const MAX_WIDTHS: usize = 8;
/// Most tasks a model may have (one bit each in a [`crate::TaskMask`]).
pub const MAX_TASKS: usize = 32;
/// Most inputs one op may have.
pub const MAX_OP_INPUTS: usize = 8;
/// Most inputs one Add may have (an ONNX chain of float Adds flattens into one; the sum of this
/// many left-shifted, rescaled int8 inputs stays far inside int32).
pub const MAX_ADD_INPUTS: usize = 4;

/// Section kinds, as stored in the section table.
pub mod kind {
    /// Graph record.
    pub const GRAPH: u32 = 1;
    /// UTF-8 names.
    pub const STRINGS: u32 = 2;
    /// Segment records.
    pub const SEGMENTS: u32 = 3;
    /// Task records.
    pub const TASKS: u32 = 4;
    /// Output records.
    pub const OUTPUTS: u32 = 5;
    /// Tensor records.
    pub const TENSORS: u32 = 6;
    /// Op records.
    pub const OPS: u32 = 7;
    /// u32 tensor indices.
    pub const OP_INPUTS: u32 = 8;
    /// int8 weights.
    pub const WEIGHTS: u32 = 9;
    /// i32 parameter words.
    pub const PARAMS: u32 = 10;
    /// Number of section kinds; every one must be present exactly once.
    pub const COUNT: usize = 10;
}

/// Record sizes in bytes.
pub mod size {
    /// Graph record.
    pub const GRAPH: usize = 32;
    /// Segment record.
    pub const SEGMENT: usize = 48;
    /// Task record.
    pub const TASK: usize = 24;
    /// Output record.
    pub const OUTPUT: usize = 16;
    /// Tensor record.
    pub const TENSOR: usize = 48;
    /// Op record.
    pub const OP: usize = 112;
}

/// Op kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u32)]
pub enum OpKind {
    /// 2-D convolution with groups (regular, depthwise, pointwise).
    Conv2d = 1,
    /// Fully connected over `[positions, channels]`.
    FullyConnected = 2,
    /// Element-wise add of two requantized inputs.
    Add = 3,
    /// Max pooling.
    MaxPool = 4,
    /// Average pooling.
    AvgPool = 5,
    /// Global average pooling.
    GlobalAvgPool = 6,
    /// Reshape / flatten: a view, no data moves.
    Reshape = 7,
    /// Concatenation over channels.
    Concat = 8,
    /// Softmax over channels.
    Softmax = 9,
    /// Element-wise function by a 256-entry table (Sigmoid, Tanh, HardSwish, LeakyRelu, ...).
    Lut = 10,
    /// Element-wise product of two inputs; the second may be one value per channel.
    Mul = 11,
    /// Parametric ReLU with one int8 slope per channel.
    PRelu = 12,
    /// Spatial padding (constant, reflect, edge).
    Pad = 13,
    /// Spatial resize (nearest, bilinear).
    Resize = 14,
    /// Transposed convolution with groups.
    ConvTranspose = 15,
    /// Permutation of the stored axes.
    Transpose = 16,
    /// Channel selection (Slice, Split, Gather over channels).
    GatherChannels = 17,
    /// Element-wise maximum or minimum of two inputs.
    MinMax = 18,
}

impl OpKind {
    /// Decode a stored kind.
    pub const fn from_u32(v: u32) -> Option<OpKind> {
        Some(match v {
            1 => OpKind::Conv2d,
            2 => OpKind::FullyConnected,
            3 => OpKind::Add,
            4 => OpKind::MaxPool,
            5 => OpKind::AvgPool,
            6 => OpKind::GlobalAvgPool,
            7 => OpKind::Reshape,
            8 => OpKind::Concat,
            9 => OpKind::Softmax,
            10 => OpKind::Lut,
            11 => OpKind::Mul,
            12 => OpKind::PRelu,
            13 => OpKind::Pad,
            14 => OpKind::Resize,
            15 => OpKind::ConvTranspose,
            16 => OpKind::Transpose,
            17 => OpKind::GatherChannels,
            18 => OpKind::MinMax,
            _ => return None,
        })
    }

    /// Name as used in reports.
    pub const fn name(self) -> &'static str {
        match self {
            OpKind::Conv2d => "Conv2d",
            OpKind::FullyConnected => "FullyConnected",
            OpKind::Add => "Add",
            OpKind::MaxPool => "MaxPool",
            OpKind::AvgPool => "AvgPool",
            OpKind::GlobalAvgPool => "GlobalAvgPool",
            OpKind::Reshape => "Reshape",
            OpKind::Concat => "Concat",
            OpKind::Softmax => "Softmax",
            OpKind::Lut => "Lut",
            OpKind::Mul => "Mul",
            OpKind::PRelu => "PRelu",
            OpKind::Pad => "Pad",
            OpKind::Resize => "Resize",
            OpKind::ConvTranspose => "ConvTranspose",
            OpKind::Transpose => "Transpose",
            OpKind::GatherChannels => "GatherChannels",
            OpKind::MinMax => "MinMax",
        }
    }

    /// Number of op-specific parameter words that follow the common header of a width entry,
    /// for an op with `n_inputs` inputs.
    /// The layout of those words is the op's own (`ops::<op>::word`).
    pub fn extra_words(self, n_inputs: usize) -> usize {
        (crate::ops::registration(self).extra_words)(n_inputs)
    }

    /// Whether the op carries weights and per-channel requantization.
    pub const fn has_weights(self) -> bool {
        crate::ops::registration(self).has_weights
    }
}

/// Byte offsets of the fields of the graph record.
pub mod graph_field {
    /// Tensor index of the model input.
    pub const INPUT: usize = 0;
    /// Input scale, f32 bits.
    pub const INPUT_SCALE: usize = 4;
    /// Input zero point.
    pub const INPUT_ZP: usize = 8;
    /// Arena bytes.
    pub const ARENA_BYTES: usize = 12;
    /// Model name (string reference).
    pub const NAME: usize = 16;
    /// Number of encoder stages: segments `0..encoder_segments` are the encoder's stages (they
    /// always run), the rest are decoders.
    pub const ENCODER_SEGMENTS: usize = 24;
}

/// Byte offsets of the fields of a segment record.
pub mod segment_field {
    /// Name (string reference).
    pub const NAME: usize = 0;
    /// Number of widths.
    pub const N_WIDTHS: usize = 8;
    /// Width multipliers, 8 x f32.
    pub const WIDTHS: usize = 12;
    /// The one other segment whose width the segment's ops key on (an earlier encoder stage),
    /// or `NONE`.
    pub const IN_SEGMENT: usize = 44;
}

/// Byte offsets of the fields of an op record.
pub mod op_field {
    /// [`super::OpKind`] as u32.
    pub const KIND: usize = 0;
    /// Segment index the op belongs to.
    pub const SEGMENT: usize = 4;
    /// A second segment whose width the op's parameters depend on (its segment's
    /// `in_segment`: an encoder stage), or `NONE`.
    pub const IN_SEGMENT: usize = 8;
    /// First index into the op-inputs section.
    pub const FIRST_INPUT: usize = 12;
    /// Number of inputs.
    pub const N_INPUTS: usize = 16;
    /// Output tensor index.
    pub const OUTPUT: usize = 20;
    /// Byte offset of the weights within the weights section.
    pub const WEIGHTS_OFF: usize = 24;
    /// Byte length of the weights.
    pub const WEIGHTS_LEN: usize = 28;
    /// Weight shape `[out, kh, kw, in_per_group]` (conv) or `[out, positions, in, 1]` (FC).
    pub const WSHAPE: usize = 32;
    /// Word offset of the first width entry within the params section.
    pub const PARAMS_OFF: usize = 48;
    /// Words per width entry.
    pub const PARAM_WORDS: usize = 52;
    /// Number of width entries (product of the widths of `SEGMENT` and `IN_SEGMENT`).
    pub const N_KEYS: usize = 56;
    /// Twelve attribute words, meaning per kind (see [`attr`](super::attr)).
    pub const ATTRS: usize = 60;
    /// Number of attribute words.
    pub const N_ATTRS: usize = 12;
}

/// Attribute word indices of ops.
pub mod attr {
    /// Vertical stride.
    pub const STRIDE_H: usize = 0;
    /// Horizontal stride.
    pub const STRIDE_W: usize = 1;
    /// Padding rows above.
    pub const PAD_TOP: usize = 2;
    /// Padding columns left.
    pub const PAD_LEFT: usize = 3;
    /// Vertical dilation (conv).
    pub const DIL_H: usize = 4;
    /// Horizontal dilation (conv).
    pub const DIL_W: usize = 5;
    /// Groups at full width (conv).
    pub const GROUPS: usize = 6;
    /// 1 when the conv is depthwise: active groups follow the active input channels.
    pub const DEPTHWISE: usize = 7;
    /// Pool window height.
    pub const KERNEL_H: usize = 8;
    /// Pool window width.
    pub const KERNEL_W: usize = 9;
    /// 1 when AvgPool divides by the full window including padding.
    pub const COUNT_INCLUDE_PAD: usize = 10;
}

/// Word indices of the common header of a width entry.
pub mod word {
    /// Active input channels (first input).
    pub const IN_CH: usize = 0;
    /// Active output channels.
    pub const OUT_CH: usize = 1;
    /// Zero point of the first input.
    pub const IN_ZP: usize = 2;
    /// Zero point of the output.
    pub const OUT_ZP: usize = 3;
    /// Scale of the output, f32 bits.
    pub const OUT_SCALE: usize = 4;
    /// Lower clamp of the fused activation, in the output's quantized domain.
    pub const ACT_MIN: usize = 5;
    /// Upper clamp of the fused activation.
    pub const ACT_MAX: usize = 6;
    /// Word offset in the params section of `out_ch` triples `(bias, multiplier, shift)`, or
    /// `NONE`.
    pub const CHANNELS: usize = 7;
    /// Words of the common header.
    pub const COUNT: usize = 8;
}

/// CRC-32 (IEEE 802.3, reflected, as zlib's `crc32`).
pub fn crc32(data: &[u8]) -> u32 {
    // Slicing by 4 (four 256-entry tables, 4 KiB of read-only data): four bytes per step with
    // four independent table loads, about half the instructions per byte of the byte-wise
    // loop on a Cortex-M4 (the check runs over every byte of the blob at each `parse`).
    // Four statics, not one array of four: each gets its own base register on Thumb-2, so a
    // lookup is one `LDR` with a scaled index (15 instructions per word, not 18).
    static T0: [u32; 256] = crc32_tables()[0];
    static T1: [u32; 256] = crc32_tables()[1];
    static T2: [u32; 256] = crc32_tables()[2];
    static T3: [u32; 256] = crc32_tables()[3];
    let mut c = !0u32;
    let (words, rest) = data.as_chunks::<4>();
    for w in words {
        c ^= u32::from_le_bytes(*w);
        c = T3[(c & 0xFF) as usize]
            ^ T2[((c >> 8) & 0xFF) as usize]
            ^ T1[((c >> 16) & 0xFF) as usize]
            ^ T0[(c >> 24) as usize];
    }
    for &b in rest {
        c = T0[((c ^ b as u32) & 0xFF) as usize] ^ (c >> 8);
    }
    !c
}

/// CRC-32 (reflected polynomial 0xEDB88320) lookup tables: `t[0]` is the byte-wise table,
/// `t[k][i]` the CRC contribution of byte `i` followed by `k` zero bytes.
const fn crc32_tables() -> [[u32; 256]; 4] {
    let mut t = [[0u32; 256]; 4];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut k = 1;
    while k < 4 {
        let mut i = 0;
        while i < 256 {
            let prev = t[k - 1][i];
            t[k][i] = (prev >> 8) ^ t[0][(prev & 0xFF) as usize];
            i += 1;
        }
        k += 1;
    }
    t
}

/// Read a little-endian u32 at `off`, or `None` past the end.
#[inline]
pub fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// Read a little-endian u16 at `off`, or `None` past the end.
#[inline]
pub fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    let s = b.get(off..off.checked_add(2)?)?;
    Some(u16::from_le_bytes([s[0], s[1]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_check_value() {
        // The standard check value of CRC-32/ISO-HDLC.
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn crc32_slicing_equals_the_bitwise_definition() {
        // The polynomial division bit by bit, independent of the tables.
        fn bitwise(data: &[u8]) -> u32 {
            let mut c = !0u32;
            for &b in data {
                c ^= b as u32;
                for _ in 0..8 {
                    c = if c & 1 != 0 {
                        0xEDB8_8320 ^ (c >> 1)
                    } else {
                        c >> 1
                    };
                }
            }
            !c
        }
        let data: [u8; 1031] =
            core::array::from_fn(|i| ((i as u32).wrapping_mul(2654435761) >> 13) as u8);
        for len in [0, 1, 2, 3, 4, 5, 7, 8, 9, 63, 64, 65, 1000, 1031] {
            for start in [0, 1, 2, 3] {
                let d = &data[start.min(len)..len];
                assert_eq!(crc32(d), bitwise(d), "len {len} start {start}");
            }
        }
    }
}
