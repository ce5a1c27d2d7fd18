//! Ops, one module each, as TensorFlow Lite Micro's `{prepare, invoke}` registrations: an op's
//! module holds its record decoding (the layout of its op-specific parameter words and how its
//! attributes become kernel arguments), its *prepare* checks (everything [`Model::parse`]
//! verifies for this kind of op, once, so that invoking it can never index out of bounds) and
//! its *invoke* (the call into its kernel folder, `kernels/<op>/`).
//!
//! [`Model::parse`] keeps the format, graph and plan checks that hold for every op and calls
//! [`Registration::prepare`] and [`Registration::prepare_entry`]; the interpreter calls
//! [`Registration::invoke`]. [`registration`] is the one table from [`OpKind`] to its op: a new
//! op is a new module here, a row there, and a kernel folder.

pub mod add;
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
pub mod reshape;
pub mod resize;
pub mod softmax;
pub mod transpose;

use crate::error::{Error, Section, invalid};
use crate::format::OpKind;
use crate::kernels::{OutputStage, Shape, as_i8};
use crate::model::{Entry, Model, OpInfo, TensorRec};
use crate::width::WidthConfig;

/// What every op's prepare step is given: the model (its tensors and producers), the op and
/// the records of its first input and its output.
pub(crate) struct Prepare<'p, 'a> {
    pub model: &'p Model<'a>,
    pub index: usize,
    pub op: &'p OpInfo,
    pub input: TensorRec,
    pub output: TensorRec,
}

impl Prepare<'_, '_> {
    /// An error naming this op's record and `field`.
    pub fn err(&self, field: &'static str, reason: &'static str) -> Error {
        invalid(Section::Ops, self.index as u32, field, reason)
    }
}

/// What every op's per-width check is given: [`Prepare`] plus one width entry and the width
/// configuration it belongs to (to read the producers' entries).
pub(crate) struct PrepareEntry<'p, 'a> {
    pub p: &'p Prepare<'p, 'a>,
    pub en: Entry<'a>,
    pub widths: &'p WidthConfig,
}

impl PrepareEntry<'_, '_> {
    /// An error naming this op's width entry and `field`.
    pub fn err(&self, field: &'static str, reason: &'static str) -> Error {
        invalid(Section::Params, self.p.index as u32, field, reason)
    }
    /// Active channels of input `k` under the entry's widths.
    pub fn active_in(&self, k: usize) -> usize {
        let m = self.p.model;
        m.tensor_quant(m.op_input(self.p.op, k), self.widths).0
    }
    /// Output zero point of the producer of input `k`.
    pub fn zp_of(&self, k: usize) -> i32 {
        let m = self.p.model;
        m.tensor_quant(m.op_input(self.p.op, k), self.widths).2
    }
    /// The record of input `k`.
    pub fn input(&self, k: usize) -> TensorRec {
        let m = self.p.model;
        m.tensor_rec(m.op_input(self.p.op, k))
    }
}

/// A multiplier and shift within what [`crate::quant`] accepts.
pub(crate) fn valid_multiplier(m: i32, s: i32) -> bool {
    m >= 0 && (-31..=30).contains(&s)
}

/// The arena split around one op's output: inputs come from before or after it.
#[derive(Clone, Copy)]
pub(crate) struct Io<'b> {
    pub head: &'b [u8],
    pub tail: &'b [u8],
    pub out_end: usize,
}

impl<'b> Io<'b> {
    /// `len` int8 values at arena `offset`, which must not overlap the output.
    pub fn input(&self, offset: usize, len: usize, op: usize) -> Result<&'b [i8], Error> {
        let bad = invalid(
            Section::Tensors,
            op as u32,
            "offset",
            "input overlaps the output",
        );
        if offset + len <= self.head.len() {
            Ok(as_i8(&self.head[offset..offset + len]))
        } else if offset >= self.out_end {
            let o = offset - self.out_end;
            self.tail.get(o..o + len).map(as_i8).ok_or(bad)
        } else {
            Err(bad)
        }
    }
}

/// What every op's invoke is given: its record and width entry, its first input already cut
/// to the active shape, the rest of the arena for further inputs, and the output stage.
pub(crate) struct Invoke<'x, 'a> {
    pub model: &'x Model<'a>,
    pub index: usize,
    pub op: &'x OpInfo,
    pub en: Entry<'a>,
    pub io: Io<'x>,
    pub x: &'x [i8],
    pub in_rec: TensorRec,
    pub out_rec: TensorRec,
    pub in_shape: Shape,
    pub out_shape: Shape,
    pub stage: OutputStage,
}

impl Invoke<'_, '_> {
    /// Input `k` at `len` values.
    pub fn input(&self, k: usize, len: usize) -> Result<&[i8], Error> {
        let t = self.model.tensor_rec(self.model.op_input(self.op, k));
        self.io.input(t.offset, len, self.index)
    }
}

/// One op kind's entry points and format facts.
pub(crate) struct Registration {
    /// Inputs the op takes, `min..=max`.
    pub inputs: (usize, usize),
    /// Whether the op carries weights and a per-channel `(bias, multiplier, shift)` table.
    pub has_weights: bool,
    /// Op-specific words of a width entry after the common header, for `n` inputs.
    pub extra_words: fn(n: usize) -> usize,
    /// Checks of the op record (attributes, weight shape, geometry), once per op.
    pub prepare: fn(&Prepare<'_, '_>) -> Result<(), Error>,
    /// Checks of one width entry.
    pub prepare_entry: fn(&PrepareEntry<'_, '_>) -> Result<(), Error>,
    /// Run the op into `out` (its output at the active shape).
    pub invoke: fn(&Invoke<'_, '_>, &mut [i8]) -> Result<(), Error>,
}

/// The registration of `kind`: the one dispatch from a stored kind to its op.
pub(crate) const fn registration(kind: OpKind) -> &'static Registration {
    match kind {
        OpKind::Conv2d => &conv::REGISTRATION,
        OpKind::FullyConnected => &fc::REGISTRATION,
        OpKind::Add => &add::REGISTRATION,
        OpKind::MaxPool => &pool::MAX_POOL,
        OpKind::AvgPool => &pool::AVG_POOL,
        OpKind::GlobalAvgPool => &pool::GLOBAL_AVG_POOL,
        OpKind::Reshape => &reshape::REGISTRATION,
        OpKind::Concat => &concat::REGISTRATION,
        OpKind::Softmax => &softmax::REGISTRATION,
        OpKind::Lut => &lut::REGISTRATION,
        OpKind::Mul => &mul::REGISTRATION,
        OpKind::PRelu => &prelu::REGISTRATION,
        OpKind::Pad => &pad::REGISTRATION,
        OpKind::Resize => &resize::REGISTRATION,
        OpKind::ConvTranspose => &conv_transpose::REGISTRATION,
        OpKind::Transpose => &transpose::REGISTRATION,
        OpKind::GatherChannels => &gather::REGISTRATION,
        OpKind::MinMax => &minmax::REGISTRATION,
    }
}

/// `extra_words` of ops with none.
pub(crate) const fn no_words(_: usize) -> usize {
    0
}

/// `prepare` of ops with nothing of their own to check.
pub(crate) fn no_prepare(_: &Prepare<'_, '_>) -> Result<(), Error> {
    Ok(())
}

/// Largest coordinate, extent or padding a validated geometry reaches: `i32::MAX`, which is
/// `isize::MAX` on 32-bit targets. Kernels form padded coordinates (`oy * stride + ky *
/// dilation`, `n + pad`, `o + pad`) in `usize` and some compare them as `isize`; when every
/// such value is at most this, none overflows or changes sign on any target. The bound does not
/// depend on the width of `usize`, so a blob parses on a 32-bit MCU exactly when it parses on a
/// 64-bit host.
pub const MAX_COORD: usize = i32::MAX as usize;

/// `a * b + c` when it is at most [`MAX_COORD`] (computed in `u64`: record fields are `u32`,
/// so nothing wraps on any target).
pub(crate) fn coord(a: usize, b: usize, c: usize) -> Option<usize> {
    (a as u64)
        .checked_mul(b as u64)
        .and_then(|v| v.checked_add(c as u64))
        .filter(|&v| v <= MAX_COORD as u64)
        .map(|v| v as usize)
}

/// The padded extent of a window of `k` taps `dil` apart: `(k - 1) * dil + 1`, at most
/// [`MAX_COORD`].
pub(crate) fn span(k: usize, dil: usize) -> Option<usize> {
    coord(k.saturating_sub(1), dil, 1)
}

/// A convolution or pooling window's last output position must start inside the padded input
/// (or within a window of its end), and the last window's start `(out - 1) * stride` and the
/// padded input `in + pad` must be at most [`MAX_COORD`] along each axis. The kernels rely on
/// this: the padded coordinates of the taps they clip to the input (`oy * stride + ky`, below
/// `in + pad`) and `n + pad` never overflow, on 32-bit targets included. A window may be
/// larger (a pooling window is clipped to the input before any coordinate is formed); a
/// convolution also bounds its window's end ([`span`], `conv::prepare`).
pub(crate) fn check_window(
    p: &Prepare<'_, '_>,
    window: [usize; 2],
    stride: [usize; 2],
    pad: [usize; 2],
) -> Result<(), Error> {
    let (t, out) = (p.input, p.output);
    for (a, (o, n)) in [(out.h, t.h), (out.w, t.w)].into_iter().enumerate() {
        let (Some(last), Some(padded)) = (
            coord(o.saturating_sub(1), stride[a], 0),
            coord(n, 1, pad[a]),
        ) else {
            return Err(p.err(
                "attrs",
                "stride or padding past the coordinate range (2^31 - 1)",
            ));
        };
        if last as u64 >= padded as u64 + window[a] as u64 {
            return Err(p.err("output", "output larger than the input geometry allows"));
        }
    }
    Ok(())
}
