//! `Model<'a>`: a validated, zero-copy view of a model blob in flash.

use crate::error::{Error, Section, invalid};
use crate::format::{
    self, HEADER_LEN, MAX_SEGMENTS, MAX_TASKS, MAX_WIDTHS, NONE, OpKind, SECTION_ALIGN,
    TABLE_ENTRY_LEN, VERSION, WEIGHT_ALIGN, graph_field, kind, op_field, segment_field, size,
    u16_at, u32_at, word,
};
use crate::ops::{self, Prepare, PrepareEntry, valid_multiplier};
use crate::width::WidthConfig;

/// One segment: an encoder stage (the first [`Model::num_encoder_segments`]) or a task
/// decoder.
#[derive(Debug, Clone, Copy)]
pub struct SegmentInfo<'a> {
    /// Name.
    pub name: &'a str,
    /// Width multipliers, the first `n_widths` valid.
    pub widths: [f32; MAX_WIDTHS],
    /// Number of widths.
    pub n_widths: usize,
    /// The one other segment whose width the parameters of this segment's ops depend on (an
    /// earlier encoder stage; for a decoder, the stage it reads), if any.
    pub in_segment: Option<usize>,
    /// Whether this segment is an encoder stage (always runs).
    pub encoder: bool,
}

impl SegmentInfo<'_> {
    /// The valid width multipliers.
    pub fn multipliers(&self) -> &[f32] {
        &self.widths[..self.n_widths]
    }
}

/// One task.
#[derive(Debug, Clone, Copy)]
pub struct TaskInfo<'a> {
    /// Name.
    pub name: &'a str,
    /// The segment (decoder) that computes it.
    pub segment: usize,
    /// First output index.
    pub first_output: usize,
    /// Number of outputs.
    pub n_outputs: usize,
}

/// One model output.
#[derive(Debug, Clone, Copy)]
pub struct OutputInfo<'a> {
    /// Name (the graph output name).
    pub name: &'a str,
    /// Tensor index.
    pub tensor: usize,
    /// Task index.
    pub task: usize,
}

/// One activation tensor with its place in the arena.
#[derive(Debug, Clone, Copy)]
pub struct TensorInfo<'a> {
    /// Name.
    pub name: &'a str,
    /// Rows.
    pub h: usize,
    /// Columns.
    pub w: usize,
    /// Channels at full width.
    pub c: usize,
    /// Segment of the producer.
    pub segment: usize,
    /// The tensor whose storage this one views (reshape), if any.
    pub alias: Option<usize>,
    /// Byte offset in the arena.
    pub offset: usize,
    /// First step (op index) at which the tensor is live.
    pub first: usize,
    /// Last step at which it is live.
    pub last: usize,
}

impl TensorInfo<'_> {
    /// Bytes at full width.
    pub fn bytes(&self) -> usize {
        self.h * self.w * self.c
    }
}

/// A tensor record without its name: what validation and inference read (no UTF-8 check, no
/// string lookup).
#[derive(Debug, Clone, Copy)]
pub(crate) struct TensorRec {
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub segment: usize,
    pub alias: Option<usize>,
    pub offset: usize,
    pub first: usize,
    pub last: usize,
    /// The op computing it (`None` for the graph input).
    pub producer: Option<usize>,
}

impl TensorRec {
    /// Bytes at full width.
    pub fn bytes(&self) -> usize {
        self.h * self.w * self.c
    }
}

/// One op record.
#[derive(Debug, Clone, Copy)]
pub struct OpInfo {
    /// Kind.
    pub kind: OpKind,
    /// Segment it belongs to.
    pub segment: usize,
    /// Second segment its parameters depend on (the encoder for a decoder op reading encoder
    /// tensors).
    pub in_segment: Option<usize>,
    /// First index into the op-inputs list.
    pub first_input: usize,
    /// Number of inputs.
    pub n_inputs: usize,
    /// Output tensor.
    pub output: usize,
    /// Byte offset of the weights in the weights section.
    pub weights_off: usize,
    /// Byte length of the weights.
    pub weights_len: usize,
    /// Weight shape.
    pub wshape: [usize; 4],
    /// Word offset of the first width entry in the params section.
    pub params_off: usize,
    /// Words per width entry.
    pub param_words: usize,
    /// Number of width entries.
    pub n_keys: usize,
    /// Attributes.
    pub attrs: [u32; op_field::N_ATTRS],
}

/// The per-(op, width) parameter entry: common header words and op-specific words.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    bytes: &'a [u8],
}

impl<'a> Entry<'a> {
    /// Word `i` as i32 (0 past the end; the parser checked the length).
    #[inline]
    pub fn word(&self, i: usize) -> i32 {
        u32_at(self.bytes, i * 4).unwrap_or(0) as i32
    }
    /// Op-specific word `i` (after the common header).
    #[inline]
    pub fn extra(&self, i: usize) -> i32 {
        self.word(word::COUNT + i)
    }
    /// `n` bytes of op-specific words from word `first` on (empty past the end; the parser
    /// checked the length).
    #[inline]
    pub fn extra_bytes(&self, first: usize, n: usize) -> &'a [u8] {
        let start = (word::COUNT + first) * 4;
        self.bytes.get(start..start + n).unwrap_or(&[])
    }
    /// Active input channels.
    pub fn in_ch(&self) -> usize {
        self.word(word::IN_CH) as u32 as usize
    }
    /// Active output channels.
    pub fn out_ch(&self) -> usize {
        self.word(word::OUT_CH) as u32 as usize
    }
    /// Input zero point.
    pub fn in_zp(&self) -> i32 {
        self.word(word::IN_ZP)
    }
    /// Output zero point.
    pub fn out_zp(&self) -> i32 {
        self.word(word::OUT_ZP)
    }
    /// Output scale.
    pub fn out_scale(&self) -> f32 {
        f32::from_bits(self.word(word::OUT_SCALE) as u32)
    }
    /// Fused activation clamp `(min, max)`.
    pub fn act(&self) -> (i8, i8) {
        (
            self.word(word::ACT_MIN).clamp(-128, 127) as i8,
            self.word(word::ACT_MAX).clamp(-128, 127) as i8,
        )
    }
    /// Word offset of the per-channel triples.
    pub fn channels(&self) -> u32 {
        self.word(word::CHANNELS) as u32
    }
}

/// Byte ranges of the sections.
#[derive(Debug, Clone, Copy, Default)]
struct Sections<'a> {
    graph: &'a [u8],
    strings: &'a [u8],
    segments: &'a [u8],
    tasks: &'a [u8],
    outputs: &'a [u8],
    tensors: &'a [u8],
    ops: &'a [u8],
    op_inputs: &'a [u8],
    weights: &'a [u8],
    params: &'a [u8],
}

/// A validated model blob, borrowed from flash (or any byte slice) with zero copies.
///
/// ```
/// # use edgeslim_runtime::{Model, Error};
/// assert_eq!(Model::parse(b"not a model").unwrap_err(), Error::Truncated { needed: 32, given: 11 });
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Model<'a> {
    s: Sections<'a>,
    n_segments: usize,
    n_encoder: usize,
    n_tasks: usize,
    n_outputs: usize,
    n_tensors: usize,
    n_ops: usize,
    input_tensor: usize,
    input_scale: f32,
    input_zp: i32,
    arena_bytes: usize,
    name: &'a str,
    body_crc: u32,
    blob_len: usize,
}

fn u32f(
    b: &[u8],
    off: usize,
    section: Section,
    index: usize,
    field: &'static str,
) -> Result<u32, Error> {
    u32_at(b, off).ok_or(invalid(section, index as u32, field, "record truncated"))
}

impl<'a> Model<'a> {
    /// Parse and validate a blob. Every offset, length, type, shape, op parameter, tensor
    /// reference, width table and the arena plan is checked; nothing later can index out of
    /// bounds.
    pub fn parse(blob: &'a [u8]) -> Result<Self, Error> {
        if blob.len() < HEADER_LEN {
            return Err(Error::Truncated {
                needed: HEADER_LEN,
                given: blob.len(),
            });
        }
        if blob[0..4] != format::MAGIC {
            return Err(Error::BadMagic);
        }
        let version = u16_at(blob, 4).unwrap_or(0);
        if version != VERSION {
            return Err(Error::UnsupportedVersion {
                found: version,
                supported: VERSION,
            });
        }
        let body_len = u32_at(blob, 8).unwrap_or(0) as usize;
        let needed = HEADER_LEN.saturating_add(body_len);
        if blob.len() < needed {
            return Err(Error::Truncated {
                needed,
                given: blob.len(),
            });
        }
        let expected = u32_at(blob, 12).unwrap_or(0);
        let computed = format::crc32(&blob[HEADER_LEN..needed]);
        if expected != computed {
            return Err(Error::CrcMismatch { expected, computed });
        }
        // The identity (`hash_parts`) counts every byte given, as the host tools hash the file.
        let given_len = blob.len();
        let blob = &blob[..needed];
        let n_sections = u32_at(blob, 16).unwrap_or(0) as usize;
        if n_sections != kind::COUNT {
            return Err(invalid(Section::Header, 0, "section_count", "must be 10"));
        }
        let table_end = HEADER_LEN + n_sections * TABLE_ENTRY_LEN;
        if blob.len() < table_end {
            return Err(invalid(Section::Table, 0, "entries", "table past the end"));
        }
        let mut s = Sections::default();
        let mut seen = [false; kind::COUNT + 1];
        let mut counts = [0usize; kind::COUNT + 1];
        for i in 0..n_sections {
            let e = HEADER_LEN + i * TABLE_ENTRY_LEN;
            let k = u32_at(blob, e).unwrap_or(0) as usize;
            let off = u32_at(blob, e + 4).unwrap_or(0) as usize;
            let len = u32_at(blob, e + 8).unwrap_or(0) as usize;
            let count = u32_at(blob, e + 12).unwrap_or(0) as usize;
            let idx = i as u32;
            if k == 0 || k > kind::COUNT {
                return Err(invalid(Section::Table, idx, "kind", "unknown section kind"));
            }
            if seen[k] {
                return Err(invalid(
                    Section::Table,
                    idx,
                    "kind",
                    "section appears twice",
                ));
            }
            seen[k] = true;
            if !off.is_multiple_of(SECTION_ALIGN) {
                return Err(invalid(
                    Section::Table,
                    idx,
                    "offset",
                    "not 16-byte aligned",
                ));
            }
            if off < table_end || off.checked_add(len).is_none_or(|end| end > blob.len()) {
                return Err(invalid(
                    Section::Table,
                    idx,
                    "offset",
                    "section outside the blob",
                ));
            }
            let rec = match k as u32 {
                kind::GRAPH => size::GRAPH,
                kind::SEGMENTS => size::SEGMENT,
                kind::TASKS => size::TASK,
                kind::OUTPUTS => size::OUTPUT,
                kind::TENSORS => size::TENSOR,
                kind::OPS => size::OP,
                kind::OP_INPUTS | kind::PARAMS => 4,
                _ => 1,
            };
            if count.checked_mul(rec) != Some(len) {
                return Err(invalid(
                    Section::Table,
                    idx,
                    "length",
                    "length is not count x record size",
                ));
            }
            counts[k] = count;
            let bytes = &blob[off..off + len];
            match k as u32 {
                kind::GRAPH => s.graph = bytes,
                kind::STRINGS => s.strings = bytes,
                kind::SEGMENTS => s.segments = bytes,
                kind::TASKS => s.tasks = bytes,
                kind::OUTPUTS => s.outputs = bytes,
                kind::TENSORS => s.tensors = bytes,
                kind::OPS => s.ops = bytes,
                kind::OP_INPUTS => s.op_inputs = bytes,
                kind::WEIGHTS => s.weights = bytes,
                _ => s.params = bytes,
            }
        }
        if counts[kind::GRAPH as usize] != 1 {
            return Err(invalid(
                Section::Graph,
                0,
                "count",
                "exactly one graph record",
            ));
        }
        let g = s.graph;
        let mut m = Model {
            s,
            n_segments: counts[kind::SEGMENTS as usize],
            n_encoder: u32_at(g, graph_field::ENCODER_SEGMENTS).unwrap_or(0) as usize,
            n_tasks: counts[kind::TASKS as usize],
            n_outputs: counts[kind::OUTPUTS as usize],
            n_tensors: counts[kind::TENSORS as usize],
            n_ops: counts[kind::OPS as usize],
            input_tensor: u32_at(g, graph_field::INPUT).unwrap_or(0) as usize,
            input_scale: f32::from_bits(u32_at(g, graph_field::INPUT_SCALE).unwrap_or(0)),
            input_zp: u32_at(g, graph_field::INPUT_ZP).unwrap_or(0) as i32,
            arena_bytes: u32_at(g, graph_field::ARENA_BYTES).unwrap_or(0) as usize,
            name: "",
            body_crc: computed,
            blob_len: given_len,
        };
        m.name = m.string(g, graph_field::NAME, Section::Graph, 0, "name")?;
        m.validate()?;
        Ok(m)
    }

    fn string(
        &self,
        rec: &[u8],
        off: usize,
        section: Section,
        index: usize,
        field: &'static str,
    ) -> Result<&'a str, Error> {
        let so = u32f(rec, off, section, index, field)? as usize;
        let sl = u32f(rec, off + 4, section, index, field)? as usize;
        let bytes = so
            .checked_add(sl)
            .and_then(|end| self.s.strings.get(so..end))
            .ok_or(invalid(
                section,
                index as u32,
                field,
                "name outside the strings section",
            ))?;
        core::str::from_utf8(bytes)
            .map_err(|_| invalid(section, index as u32, field, "name is not UTF-8"))
    }

    // ---- accessors (valid after parse) ----

    /// The model's name.
    pub fn name(&self) -> &'a str {
        self.name
    }
    /// CRC-32 of the blob body: identifies the model (bundles are checked against it).
    pub fn body_crc(&self) -> u32 {
        self.body_crc
    }
    /// Length of the blob given to [`parse`](Self::parse), in bytes.
    pub fn blob_len(&self) -> usize {
        self.blob_len
    }
    /// The model's identity as the host tools write it, `esm-crc32:<body_crc %08x>:<blob_len>`,
    /// as integers: `(body_crc, blob_len)`. Firmware compares a bundle's `MODEL_BODY_CRC` and
    /// `MODEL_BYTES` with these at load.
    pub fn hash_parts(&self) -> (u32, usize) {
        (self.body_crc, self.blob_len)
    }
    /// Parse a model hash `esm-crc32:<8 lowercase hex digits>:<decimal byte length>`
    /// (exactly the form `edgeslim` writes into tables and bundles) into `(body_crc, blob_len)`,
    /// without allocating. `None` for anything else, so a string matches exactly when the host
    /// tools' string comparison would.
    ///
    /// ```
    /// use edgeslim_runtime::Model;
    /// assert_eq!(Model::parse_hash("esm-crc32:0badf00d:1234"), Some((0x0bad_f00d, 1234)));
    /// assert_eq!(Model::parse_hash("esm-crc32:0badf00d"), None);
    /// ```
    pub fn parse_hash(hash: &str) -> Option<(u32, usize)> {
        let rest = hash.strip_prefix("esm-crc32:")?;
        let (crc, len) = rest.split_once(':')?;
        if crc.len() != 8 || !crc.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return None;
        }
        if len.is_empty()
            || !len.bytes().all(|b| b.is_ascii_digit())
            || (len.len() > 1 && len.starts_with('0'))
        {
            return None;
        }
        let crc = u32::from_str_radix(crc, 16).ok()?;
        let len = len.parse::<usize>().ok()?;
        Some((crc, len))
    }
    /// Is `hash` (a bundle's or table's `model_hash`, `esm-crc32:xxxxxxxx:len`) this model's?
    /// Parses without allocating; any other string is `false`.
    pub fn matches_hash(&self, hash: &str) -> bool {
        Self::parse_hash(hash) == Some(self.hash_parts())
    }
    /// Arena bytes the plan needs.
    pub fn arena_bytes(&self) -> usize {
        self.arena_bytes
    }
    /// Number of segments (encoder first).
    pub fn num_segments(&self) -> usize {
        self.n_segments
    }
    /// Number of tasks.
    pub fn num_tasks(&self) -> usize {
        self.n_tasks
    }
    /// Number of outputs.
    pub fn num_outputs(&self) -> usize {
        self.n_outputs
    }
    /// Number of tensors.
    pub fn num_tensors(&self) -> usize {
        self.n_tensors
    }
    /// Number of ops.
    pub fn num_ops(&self) -> usize {
        self.n_ops
    }
    /// Bytes of int8 weights.
    pub fn weight_bytes(&self) -> usize {
        self.s.weights.len()
    }
    /// Bytes of parameter tables.
    pub fn param_bytes(&self) -> usize {
        self.s.params.len()
    }
    /// The input tensor.
    pub fn input(&self) -> TensorInfo<'a> {
        self.tensor_unchecked(self.input_tensor)
    }
    /// Index of the input tensor.
    pub fn input_index(&self) -> usize {
        self.input_tensor
    }
    /// Input quantization `(scale, zero_point)`.
    pub fn input_quant(&self) -> (f32, i32) {
        (self.input_scale, self.input_zp)
    }
    /// Input elements (`h * w * c`).
    pub fn input_len(&self) -> usize {
        self.input().bytes()
    }

    /// Segment `i`.
    pub fn segment(&self, i: usize) -> Option<SegmentInfo<'a>> {
        (i < self.n_segments).then(|| self.segment_unchecked(i))
    }
    /// Task `i`.
    pub fn task(&self, i: usize) -> Option<TaskInfo<'a>> {
        (i < self.n_tasks).then(|| self.task_unchecked(i))
    }
    /// Output `i`.
    pub fn output(&self, i: usize) -> Option<OutputInfo<'a>> {
        (i < self.n_outputs).then(|| self.output_unchecked(i))
    }
    /// Tensor `i`.
    pub fn tensor(&self, i: usize) -> Option<TensorInfo<'a>> {
        (i < self.n_tensors).then(|| self.tensor_unchecked(i))
    }
    /// Op `i`.
    pub fn op(&self, i: usize) -> Option<OpInfo> {
        if i < self.n_ops {
            self.read_op(i).ok()
        } else {
            None
        }
    }
    /// The decoder segment of task `t` (`t < num_tasks()`; 0 otherwise), read without decoding
    /// the task's name: the interpreter's run path.
    pub fn task_segment(&self, t: usize) -> usize {
        if t < self.n_tasks {
            u32_at(self.s.tasks, t * size::TASK + 8).unwrap_or(0) as usize
        } else {
            0
        }
    }
    /// Number of widths of segment `s` (0 past the last segment), read without decoding the
    /// segment's name: every run checks its width configuration with it.
    pub fn num_widths(&self, s: usize) -> usize {
        if s < self.n_segments {
            self.n_widths(s)
        } else {
            0
        }
    }
    /// Index of the task named `name`.
    pub fn task_index(&self, name: &str) -> Option<usize> {
        (0..self.n_tasks).find(|&i| self.task_unchecked(i).name == name)
    }
    /// Number of encoder stages: segments `0..num_encoder_segments()` are the encoder's stages,
    /// which run on every inference; the other segments are task decoders.
    pub fn num_encoder_segments(&self) -> usize {
        self.n_encoder
    }
    /// The one other segment whose width the ops of segment `s` key on (read without decoding
    /// the segment's name), if any.
    pub fn segment_in(&self, s: usize) -> Option<usize> {
        let v = if s < self.n_segments {
            u32_at(
                self.s.segments,
                s * size::SEGMENT + segment_field::IN_SEGMENT,
            )
            .unwrap_or(NONE)
        } else {
            NONE
        };
        (v != NONE).then_some(v as usize)
    }
    /// Bit `s` set for every encoder stage: the segments every inference runs.
    pub fn encoder_mask(&self) -> u32 {
        if self.n_encoder >= 32 {
            u32::MAX
        } else {
            (1u32 << self.n_encoder) - 1
        }
    }
    /// Index of the segment named `name`.
    pub fn segment_index(&self, name: &str) -> Option<usize> {
        (0..self.n_segments).find(|&i| self.segment_unchecked(i).name == name)
    }

    /// The `k`-th input tensor index of `op`.
    pub fn op_input(&self, op: &OpInfo, k: usize) -> usize {
        u32_at(self.s.op_inputs, (op.first_input + k) * 4).unwrap_or(0) as usize
    }

    /// The weights of `op`.
    pub fn weights(&self, op: &OpInfo) -> &'a [u8] {
        self.s
            .weights
            .get(op.weights_off..op.weights_off.saturating_add(op.weights_len))
            .unwrap_or(&[])
    }

    /// The width entry of `op` for `key`: empty when it lies outside the params section (never
    /// for a parsed model's op and a key below its `n_keys`; checked arithmetic, as the
    /// record's words may be read before the op is validated).
    pub fn entry(&self, op: &OpInfo, key: usize) -> Entry<'a> {
        let range = key
            .checked_mul(op.param_words)
            .and_then(|w| w.checked_add(op.params_off))
            .and_then(|w| w.checked_mul(4))
            .and_then(|start| Some(start..start.checked_add(op.param_words.checked_mul(4)?)?));
        Entry {
            bytes: range.and_then(|r| self.s.params.get(r)).unwrap_or(&[]),
        }
    }

    /// The per-channel `(bias, multiplier, shift)` bytes of an entry with `n` channels (empty
    /// when they lie outside the params section).
    pub fn channel_bytes(&self, e: &Entry<'_>, n: usize) -> &'a [u8] {
        let range = (e.channels() as usize)
            .checked_mul(4)
            .and_then(|start| Some(start..start.checked_add(n.checked_mul(12)?)?));
        range.and_then(|r| self.s.params.get(r)).unwrap_or(&[])
    }

    /// The width-entry key of `op` under `widths`.
    pub fn key(&self, op: &OpInfo, widths: &WidthConfig) -> usize {
        let own = widths.get(op.segment).unwrap_or(0) as usize;
        match op.in_segment {
            None => own,
            Some(s) => widths.get(s).unwrap_or(0) as usize * self.n_widths(op.segment) + own,
        }
    }

    /// Index of the op producing tensor `t`, if any.
    pub fn producer(&self, t: usize) -> Option<usize> {
        if t < self.n_tensors {
            self.tensor_rec(t).producer
        } else {
            None
        }
    }

    /// Active channels and quantization `(channels, scale, zero_point)` of tensor `t` under
    /// `widths`.
    pub fn tensor_quant(&self, t: usize, widths: &WidthConfig) -> (usize, f32, i32) {
        // The graph input has no producer, even in a blob where a later op (not yet validated,
        // and rejected when it is) writes it.
        let producer = if t == self.input_tensor {
            None
        } else {
            self.producer(t)
        };
        match producer.and_then(|p| self.read_op(p).ok()) {
            Some(op) => {
                let e = self.entry(&op, self.key(&op, widths));
                (e.out_ch(), e.out_scale(), e.out_zp())
            }
            None => {
                let t = self.tensor_rec(t);
                (t.c, self.input_scale, self.input_zp)
            }
        }
    }

    /// Number of widths of segment `i`, read straight from its record: `key` runs for every op
    /// of every inference and needs nothing else of the segment (no name decoding).
    fn n_widths(&self, i: usize) -> usize {
        (u32_at(self.s.segments, i * size::SEGMENT + 8).unwrap_or(1) as usize).clamp(1, MAX_WIDTHS)
    }

    fn segment_unchecked(&self, i: usize) -> SegmentInfo<'a> {
        let r = &self.s.segments[i * size::SEGMENT..(i + 1) * size::SEGMENT];
        let mut widths = [0f32; MAX_WIDTHS];
        for (k, w) in widths.iter_mut().enumerate() {
            *w = f32::from_bits(u32_at(r, segment_field::WIDTHS + 4 * k).unwrap_or(0));
        }
        SegmentInfo {
            name: self
                .string(r, segment_field::NAME, Section::Segments, i, "name")
                .unwrap_or(""),
            widths,
            n_widths: self.n_widths(i),
            in_segment: self.segment_in(i),
            encoder: i < self.n_encoder,
        }
    }

    fn task_unchecked(&self, i: usize) -> TaskInfo<'a> {
        let r = &self.s.tasks[i * size::TASK..(i + 1) * size::TASK];
        TaskInfo {
            name: self.string(r, 0, Section::Tasks, i, "name").unwrap_or(""),
            segment: u32_at(r, 8).unwrap_or(0) as usize,
            first_output: u32_at(r, 12).unwrap_or(0) as usize,
            n_outputs: u32_at(r, 16).unwrap_or(0) as usize,
        }
    }

    fn output_unchecked(&self, i: usize) -> OutputInfo<'a> {
        let r = &self.s.outputs[i * size::OUTPUT..(i + 1) * size::OUTPUT];
        OutputInfo {
            name: self.string(r, 0, Section::Outputs, i, "name").unwrap_or(""),
            tensor: u32_at(r, 8).unwrap_or(0) as usize,
            task: u32_at(r, 12).unwrap_or(0) as usize,
        }
    }

    fn tensor_unchecked(&self, i: usize) -> TensorInfo<'a> {
        let r = self
            .s
            .tensors
            .get(i * size::TENSOR..(i + 1) * size::TENSOR)
            .unwrap_or(&[]);
        let t = self.tensor_rec(i);
        TensorInfo {
            name: self.string(r, 0, Section::Tensors, i, "name").unwrap_or(""),
            h: t.h,
            w: t.w,
            c: t.c,
            segment: t.segment,
            alias: t.alias,
            offset: t.offset,
            first: t.first,
            last: t.last,
        }
    }

    /// Tensor `i`'s record without its name (zeros past the end of the section).
    pub(crate) fn tensor_rec(&self, i: usize) -> TensorRec {
        let r = self
            .s
            .tensors
            .get(i * size::TENSOR..(i + 1) * size::TENSOR)
            .unwrap_or(&[]);
        let f = |off: usize| u32_at(r, off).unwrap_or(0) as usize;
        let alias = u32_at(r, 24).unwrap_or(NONE);
        let producer = u32_at(r, 40).unwrap_or(NONE);
        TensorRec {
            h: f(8),
            w: f(12),
            c: f(16),
            segment: f(20),
            alias: (alias != NONE).then_some(alias as usize),
            offset: f(28),
            first: f(32),
            last: f(36),
            producer: (producer != NONE).then_some(producer as usize),
        }
    }

    fn read_op(&self, i: usize) -> Result<OpInfo, Error> {
        let r = self
            .s
            .ops
            .get(i * size::OP..(i + 1) * size::OP)
            .ok_or(invalid(Section::Ops, i as u32, "index", "no such op"))?;
        let f = |off: usize| u32_at(r, off).unwrap_or(0);
        let kind = OpKind::from_u32(f(op_field::KIND)).ok_or(invalid(
            Section::Ops,
            i as u32,
            "kind",
            "unknown op kind",
        ))?;
        let in_seg = f(op_field::IN_SEGMENT);
        let mut attrs = [0u32; op_field::N_ATTRS];
        for (k, a) in attrs.iter_mut().enumerate() {
            *a = f(op_field::ATTRS + 4 * k);
        }
        Ok(OpInfo {
            kind,
            segment: f(op_field::SEGMENT) as usize,
            in_segment: (in_seg != NONE).then_some(in_seg as usize),
            first_input: f(op_field::FIRST_INPUT) as usize,
            n_inputs: f(op_field::N_INPUTS) as usize,
            output: f(op_field::OUTPUT) as usize,
            weights_off: f(op_field::WEIGHTS_OFF) as usize,
            weights_len: f(op_field::WEIGHTS_LEN) as usize,
            wshape: [
                f(op_field::WSHAPE) as usize,
                f(op_field::WSHAPE + 4) as usize,
                f(op_field::WSHAPE + 8) as usize,
                f(op_field::WSHAPE + 12) as usize,
            ],
            params_off: f(op_field::PARAMS_OFF) as usize,
            param_words: f(op_field::PARAM_WORDS) as usize,
            n_keys: f(op_field::N_KEYS) as usize,
            attrs,
        })
    }

    // ---- validation ----

    fn validate(&self) -> Result<(), Error> {
        self.validate_segments_tasks()?;
        self.validate_tensors()?;
        for i in 0..self.n_ops {
            self.validate_op(i)?;
        }
        self.validate_liveness()?;
        self.validate_arena()
    }

    fn validate_segments_tasks(&self) -> Result<(), Error> {
        if self.n_segments == 0 || self.n_segments > MAX_SEGMENTS {
            return Err(invalid(Section::Segments, 0, "count", "1 to 16 segments"));
        }
        if self.n_encoder == 0 || self.n_encoder > self.n_segments {
            return Err(invalid(
                Section::Graph,
                0,
                "encoder_segments",
                "1 to the number of segments",
            ));
        }
        for i in 0..self.n_segments {
            let r = &self.s.segments[i * size::SEGMENT..(i + 1) * size::SEGMENT];
            self.string(r, 0, Section::Segments, i, "name")?;
            let raw_in = u32_at(r, segment_field::IN_SEGMENT).unwrap_or(NONE);
            // A decoder may key on any encoder stage; a stage only on an earlier one.
            let limit = if i < self.n_encoder {
                i
            } else {
                self.n_encoder
            };
            if raw_in != NONE && raw_in as usize >= limit {
                return Err(invalid(
                    Section::Segments,
                    i as u32,
                    "in_segment",
                    "must be NONE or an encoder stage before this segment",
                ));
            }
            let n = u32_at(r, 8).unwrap_or(0) as usize;
            if n == 0 || n > MAX_WIDTHS {
                return Err(invalid(
                    Section::Segments,
                    i as u32,
                    "n_widths",
                    "1 to 8 widths",
                ));
            }
            let seg = self.segment_unchecked(i);
            let mut prev = 0.0f32;
            for &w in seg.multipliers() {
                if !(w.is_finite() && w > prev && w <= 1.0) {
                    return Err(invalid(
                        Section::Segments,
                        i as u32,
                        "widths",
                        "multipliers must increase within (0, 1]",
                    ));
                }
                prev = w;
            }
        }
        if self.n_tasks == 0 || self.n_tasks > MAX_TASKS {
            return Err(invalid(Section::Tasks, 0, "count", "1 to 32 tasks"));
        }
        for i in 0..self.n_tasks {
            let r = &self.s.tasks[i * size::TASK..(i + 1) * size::TASK];
            self.string(r, 0, Section::Tasks, i, "name")?;
            let t = self.task_unchecked(i);
            if t.segment >= self.n_segments {
                return Err(invalid(
                    Section::Tasks,
                    i as u32,
                    "segment",
                    "no such segment",
                ));
            }
            if t.n_outputs == 0
                || t.first_output
                    .checked_add(t.n_outputs)
                    .is_none_or(|e| e > self.n_outputs)
            {
                return Err(invalid(
                    Section::Tasks,
                    i as u32,
                    "outputs",
                    "output range out of bounds",
                ));
            }
        }
        for i in 0..self.n_outputs {
            let r = &self.s.outputs[i * size::OUTPUT..(i + 1) * size::OUTPUT];
            self.string(r, 0, Section::Outputs, i, "name")?;
            let o = self.output_unchecked(i);
            if o.tensor >= self.n_tensors {
                return Err(invalid(
                    Section::Outputs,
                    i as u32,
                    "tensor",
                    "no such tensor",
                ));
            }
            let owner = self.task(o.task).ok_or(invalid(
                Section::Outputs,
                i as u32,
                "task",
                "no such task",
            ))?;
            if i < owner.first_output || i >= owner.first_output + owner.n_outputs {
                return Err(invalid(
                    Section::Outputs,
                    i as u32,
                    "task",
                    "output not in its task's range",
                ));
            }
            if o.tensor == self.input_tensor {
                return Err(invalid(
                    Section::Outputs,
                    i as u32,
                    "tensor",
                    "an output must be computed",
                ));
            }
        }
        Ok(())
    }

    fn validate_tensors(&self) -> Result<(), Error> {
        if self.n_tensors == 0 || self.input_tensor >= self.n_tensors {
            return Err(invalid(Section::Graph, 0, "input", "no such tensor"));
        }
        if !(self.input_scale.is_finite() && self.input_scale > 0.0) {
            return Err(invalid(
                Section::Graph,
                0,
                "input_scale",
                "must be finite and > 0",
            ));
        }
        if !(-128..=127).contains(&self.input_zp) {
            return Err(invalid(
                Section::Graph,
                0,
                "input_zero_point",
                "outside int8",
            ));
        }
        if self.n_ops == 0 {
            return Err(invalid(
                Section::Ops,
                0,
                "count",
                "a model needs at least one op",
            ));
        }
        for i in 0..self.n_tensors {
            let idx = i as u32;
            let r = &self.s.tensors[i * size::TENSOR..(i + 1) * size::TENSOR];
            self.string(r, 0, Section::Tensors, i, "name")?;
            let t = self.tensor_rec(i);
            if t.h == 0 || t.w == 0 || t.c == 0 {
                return Err(invalid(Section::Tensors, idx, "shape", "zero dimension"));
            }
            let bytes =
                t.h.checked_mul(t.w)
                    .and_then(|v| v.checked_mul(t.c))
                    .filter(|&b| b <= u32::MAX as usize)
                    .ok_or(invalid(Section::Tensors, idx, "shape", "tensor too large"))?;
            if t.segment >= self.n_segments {
                return Err(invalid(Section::Tensors, idx, "segment", "no such segment"));
            }
            if t.offset
                .checked_add(bytes)
                .is_none_or(|e| e > self.arena_bytes)
            {
                return Err(invalid(
                    Section::Tensors,
                    idx,
                    "offset",
                    "tensor outside the arena",
                ));
            }
            if t.first > t.last || t.last >= self.n_ops {
                return Err(invalid(Section::Tensors, idx, "live", "bad live interval"));
            }
            if let Some(a) = t.alias {
                if a >= i {
                    return Err(invalid(
                        Section::Tensors,
                        idx,
                        "alias",
                        "must name an earlier tensor",
                    ));
                }
                let base = self.tensor_rec(a);
                if base.alias.is_some() {
                    return Err(invalid(
                        Section::Tensors,
                        idx,
                        "alias",
                        "must name a tensor that owns storage",
                    ));
                }
                if base.offset != t.offset || bytes > base.bytes() {
                    return Err(invalid(
                        Section::Tensors,
                        idx,
                        "alias",
                        "view does not match its storage",
                    ));
                }
                // The storage's interval is its group's: the arena check reads only roots.
                if t.first < base.first || t.last > base.last {
                    return Err(invalid(
                        Section::Tensors,
                        idx,
                        "live",
                        "a view must live within its storage's interval",
                    ));
                }
            }
            let produced = match t.producer {
                None => i == self.input_tensor,
                Some(p) => {
                    i != self.input_tensor
                        && p < self.n_ops
                        && self.read_op(p).is_ok_and(|op| op.output == i)
                }
            };
            if !produced {
                return Err(invalid(
                    Section::Tensors,
                    idx,
                    "producer",
                    "not the op that computes this tensor (NONE only for the graph input)",
                ));
            }
            if t.first > t.producer.unwrap_or(0) {
                return Err(invalid(
                    Section::Tensors,
                    idx,
                    "live",
                    "interval does not cover all uses",
                ));
            }
        }
        Ok(())
    }

    fn root(&self, t: usize) -> usize {
        self.tensor_rec(t).alias.unwrap_or(t)
    }

    fn validate_op(&self, i: usize) -> Result<(), Error> {
        let idx = i as u32;
        let e =
            |field: &'static str, reason: &'static str| invalid(Section::Ops, idx, field, reason);
        let op = self.read_op(i)?;
        let reg = ops::registration(op.kind);
        if op.segment >= self.n_segments {
            return Err(e("segment", "no such segment"));
        }
        if op.in_segment.is_some() && op.in_segment != self.segment_in(op.segment) {
            return Err(e("in_segment", "must be NONE or its segment's in_segment"));
        }
        let (min_in, max_in) = reg.inputs;
        if op.n_inputs < min_in || op.n_inputs > max_in {
            return Err(e("n_inputs", "wrong number of inputs for this op kind"));
        }
        let n_idx = self.s.op_inputs.len() / 4;
        if op
            .first_input
            .checked_add(op.n_inputs)
            .is_none_or(|end| end > n_idx)
        {
            return Err(e("first_input", "input list outside the op-inputs section"));
        }
        if op.output >= self.n_tensors || op.output == self.input_tensor {
            return Err(e("output", "no such tensor, or the graph input"));
        }
        let out = self.tensor_rec(op.output);
        // validate_tensors checked that the producer field names an op writing this tensor;
        // any other op writing it writes a tensor already produced.
        if out.producer != Some(i) {
            return Err(e("output", "tensor produced twice"));
        }
        if out.segment != op.segment {
            return Err(e("output", "output tensor belongs to another segment"));
        }
        for k in 0..op.n_inputs {
            let t = self.op_input(&op, k);
            if t >= self.n_tensors {
                return Err(invalid(
                    Section::OpInputs,
                    (op.first_input + k) as u32,
                    "tensor",
                    "no such tensor",
                ));
            }
            if t != self.input_tensor {
                let p = self.producer(t).filter(|&p| p < i).ok_or(invalid(
                    Section::OpInputs,
                    (op.first_input + k) as u32,
                    "tensor",
                    "input not produced by an earlier op",
                ))?;
                let prod = self.read_op(p)?;
                // Only tensors that are computed whenever this op runs: its own segment's and
                // the encoder stages' (which always run).
                if prod.segment != op.segment && prod.segment >= self.n_encoder {
                    return Err(e(
                        "inputs",
                        "reads a tensor of another decoder, which may not run",
                    ));
                }
                // The entries are checked below at every key of this op with the other
                // segments at full width: complete only if the producer's channels and
                // quantization depend on no other segment's width, or do not vary at all.
                let allowed = |s: usize| s == op.segment || Some(s) == op.in_segment;
                let free_own = !allowed(prod.segment);
                let free_in = prod.in_segment.is_some_and(|s| !allowed(s));
                if (free_own || free_in) && !self.entries_constant_along(&prod, free_own, free_in) {
                    return Err(e(
                        "inputs",
                        "reads a slimmed tensor of a segment whose width it does not key on",
                    ));
                }
            }
        }
        // Alias tensors are exactly the outputs of reshapes.
        let in0 = self.op_input(&op, 0);
        match (op.kind, out.alias) {
            (OpKind::Reshape, Some(a)) if a == self.root(in0) => {}
            (OpKind::Reshape, _) => {
                return Err(e(
                    "output",
                    "a reshape output must view its input's storage",
                ));
            }
            (_, Some(_)) => return Err(e("output", "only a reshape may produce a view")),
            _ => {}
        }
        // Weights.
        if reg.has_weights {
            let n = op.wshape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
            if op.wshape.contains(&0) || n != Some(op.weights_len) {
                return Err(e("weights_len", "does not match the weight shape"));
            }
            if !op.weights_off.is_multiple_of(WEIGHT_ALIGN)
                || op
                    .weights_off
                    .checked_add(op.weights_len)
                    .is_none_or(|end| end > self.s.weights.len())
            {
                return Err(e(
                    "weights_off",
                    "weights outside the section or misaligned",
                ));
            }
            if op.wshape[0] != out.c {
                return Err(e(
                    "wshape",
                    "output rows differ from the output tensor's channels",
                ));
            }
        } else if op.weights_len != 0 {
            return Err(e("weights_len", "this op kind has no weights"));
        }
        // The op's own checks: attributes, weight shape, geometry.
        let prep = Prepare {
            model: self,
            index: i,
            op: &op,
            input: self.tensor_rec(in0),
            output: out,
        };
        (reg.prepare)(&prep)?;
        // Width tables.
        let nw = self.n_widths(op.segment);
        let nw_in = op.in_segment.map_or(1, |s| self.n_widths(s));
        if op.n_keys != nw * nw_in {
            return Err(e(
                "n_keys",
                "must be the product of the widths of segment and in_segment",
            ));
        }
        if op.param_words != word::COUNT + (reg.extra_words)(op.n_inputs) {
            return Err(e("param_words", "wrong entry size for this op kind"));
        }
        let n_words = self.s.params.len() / 4;
        if op
            .n_keys
            .checked_mul(op.param_words)
            .and_then(|w| w.checked_add(op.params_off))
            .is_none_or(|end| end > n_words)
        {
            return Err(e("params_off", "width entries outside the params section"));
        }
        let mut widths = WidthConfig::full(self);
        for w_in in 0..nw_in {
            for w in 0..nw {
                widths.set_unchecked(op.segment, w as u8);
                if let Some(s) = op.in_segment {
                    widths.set_unchecked(s, w_in as u8);
                }
                self.validate_entry(&prep, &widths)?;
            }
        }
        Ok(())
    }

    /// Whether the output channels and quantization of `op`'s width entries stay the same when
    /// only its own segment's width changes (`own`) and/or only its `in_segment`'s (`inw`):
    /// then a reader that keys on neither sees one tensor whatever that width.
    fn entries_constant_along(&self, op: &OpInfo, own: bool, inw: bool) -> bool {
        let n = self.n_widths(op.segment).max(1);
        (0..op.n_keys).all(|k| {
            let (k_in, k_own) = (k / n, k % n);
            // The representative key: the free coordinates at 0.
            let r = if inw { 0 } else { k_in } * n + if own { 0 } else { k_own };
            let (a, b) = (self.entry(op, k), self.entry(op, r));
            a.out_ch() == b.out_ch()
                && a.out_zp() == b.out_zp()
                && a.out_scale().to_bits() == b.out_scale().to_bits()
        })
    }

    /// Check one width entry of an op against its tensors and its producers' entries.
    fn validate_entry(&self, p: &Prepare<'_, 'a>, widths: &WidthConfig) -> Result<(), Error> {
        let op = p.op;
        let idx = p.index as u32;
        let e = |field: &'static str, reason: &'static str| {
            invalid(Section::Params, idx, field, reason)
        };
        let en = self.entry(op, self.key(op, widths));
        let (out, in_t) = (p.output, p.input);
        let (in_ch, out_ch) = (en.in_ch(), en.out_ch());
        if in_ch == 0 || out_ch == 0 || out_ch > out.c {
            return Err(e(
                "out_ch",
                "active output channels outside 1..=tensor channels",
            ));
        }
        let (active_in, _, zp_in) = self.tensor_quant(self.op_input(op, 0), widths);
        if in_ch != active_in {
            return Err(e("in_ch", "differs from the producer's active channels"));
        }
        if en.in_zp() != zp_in {
            return Err(e("in_zp", "differs from the producer's output zero point"));
        }
        let i8r = -128..=127;
        if !i8r.contains(&en.in_zp()) || !i8r.contains(&en.out_zp()) {
            return Err(e("zero_point", "outside int8"));
        }
        if !(en.out_scale().is_finite() && en.out_scale() > 0.0) {
            return Err(e("out_scale", "must be finite and > 0"));
        }
        let (lo, hi) = (en.word(word::ACT_MIN), en.word(word::ACT_MAX));
        if !i8r.contains(&lo) || !i8r.contains(&hi) || lo > hi {
            return Err(e("act", "activation clamp outside int8 or empty"));
        }
        if ops::registration(op.kind).has_weights {
            let n_words = self.s.params.len() / 4;
            let ch = en.channels() as usize;
            if out_ch
                .checked_mul(3)
                .and_then(|n| n.checked_add(ch))
                .is_none_or(|end| end > n_words)
            {
                return Err(e(
                    "channels",
                    "per-channel table outside the params section",
                ));
            }
            let cq = crate::kernels::ChannelQuant::new(self.channel_bytes(&en, out_ch));
            for o in 0..out_ch {
                let (_, m, s) = cq.get(o);
                if !valid_multiplier(m, s) {
                    return Err(e("channels", "multiplier < 0 or shift outside -31..=30"));
                }
            }
        }
        let pe = PrepareEntry { p, en, widths };
        (ops::registration(op.kind).prepare_entry)(&pe)?;
        if op.kind != OpKind::Reshape && in_t.h * in_t.w * in_ch > in_t.bytes() {
            return Err(e("in_ch", "input larger than its tensor"));
        }
        Ok(())
    }

    /// Each tensor's recorded live interval covers every consumer, and outputs live to the end
    /// (the producer is covered by `validate_tensors`). Linear in ops, inputs and outputs.
    fn validate_liveness(&self) -> Result<(), Error> {
        let uncovered = |t: usize| {
            invalid(
                Section::Tensors,
                t as u32,
                "live",
                "interval does not cover all uses",
            )
        };
        for i in 0..self.n_ops {
            let op = self.read_op(i)?;
            for k in 0..op.n_inputs {
                let t = self.op_input(&op, k);
                let r = self.tensor_rec(t);
                if r.first > i || r.last < i {
                    return Err(uncovered(t));
                }
            }
        }
        for o in 0..self.n_outputs {
            let t = u32_at(self.s.outputs, o * size::OUTPUT + 8).unwrap_or(0) as usize;
            if self.tensor_rec(t).last < self.n_ops - 1 {
                return Err(uncovered(t));
            }
        }
        Ok(())
    }

    /// No two storage groups that are live at the same step share bytes. A group's interval is
    /// its root's (views lie within it, checked in `validate_tensors`), so each pair of roots
    /// is a constant-time test: quadratic in the roots with a small constant, and no scan per
    /// pair.
    fn validate_arena(&self) -> Result<(), Error> {
        for a in 0..self.n_tensors {
            let ta = self.tensor_rec(a);
            if ta.alias.is_some() {
                continue;
            }
            let (a_lo, a_hi) = (ta.offset, ta.offset + ta.bytes());
            for b in a + 1..self.n_tensors {
                let tb = self.tensor_rec(b);
                if tb.alias.is_some() {
                    continue;
                }
                let live_together = ta.first <= tb.last && tb.first <= ta.last;
                let share_bytes = a_lo < tb.offset + tb.bytes() && tb.offset < a_hi;
                if live_together && share_bytes {
                    return Err(Error::ArenaOverlap {
                        a: a as u32,
                        b: b as u32,
                    });
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_hash_parses_only_the_canonical_form() {
        assert_eq!(
            Model::parse_hash("esm-crc32:deadbeef:42"),
            Some((0xdead_beef, 42))
        );
        assert_eq!(Model::parse_hash("esm-crc32:00000000:0"), Some((0, 0)));
        for bad in [
            "",
            "esm-crc32:",
            "esm-crc32:deadbeef",
            "esm-crc32:deadbeef:",
            "esm-crc32:deadbee:42",
            "esm-crc32:deadbeef0:42",
            "esm-crc32:+eadbeef:42",
            "esm-crc32:DEADBEEF:42",
            "esm-crc32:deadbeef:-1",
            "esm-crc32:deadbeef:+1",
            "esm-crc32:deadbeef:042",
            "esm-crc32:deadbeef:4 2",
            "esm-crc32:deadbeef:99999999999999999999999",
            "crc32:deadbeef:42",
            "h-two",
        ] {
            assert_eq!(Model::parse_hash(bad), None, "{bad:?}");
        }
    }

    #[cfg(feature = "std")]
    #[test]
    fn matches_its_own_hash_and_refuses_others() {
        extern crate std;
        use std::format;
        let blob = crate::writer::example::two_task_blob();
        let m = Model::parse(&blob).unwrap_or_else(|e| panic!("{e}"));
        let (crc, len) = m.hash_parts();
        assert_eq!((crc, len), (m.body_crc(), blob.len()));
        let hash = format!("esm-crc32:{crc:08x}:{len}");
        assert!(m.matches_hash(&hash));
        assert!(!m.matches_hash(&format!("esm-crc32:{:08x}:{len}", crc ^ 1)));
        assert!(!m.matches_hash(&format!("esm-crc32:{crc:08x}:{}", len + 1)));
        assert!(!m.matches_hash("h-two"));
        // Trailing bytes after the body change the length, hence the identity.
        let mut longer = blob.clone();
        longer.push(0);
        let m2 = Model::parse(&longer).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m2.body_crc(), crc);
        assert!(!m2.matches_hash(&hash));
    }
}
