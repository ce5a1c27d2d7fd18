//! `Model<'a>`: a validated, zero-copy view of a model blob in flash.

use crate::error::{Error, Section, invalid};
use crate::format::{
    self, HEADER_LEN, MAX_OP_INPUTS, MAX_SEGMENTS, MAX_TASKS, MAX_WIDTHS, NONE, OpKind,
    SECTION_ALIGN, TABLE_ENTRY_LEN, VERSION, WEIGHT_ALIGN, attr, concat_word, kind, op_field, size,
    softmax_word, u16_at, u32_at, word,
};
use crate::width::WidthConfig;

/// One segment: the encoder (index 0) or a task decoder.
#[derive(Debug, Clone, Copy)]
pub struct SegmentInfo<'a> {
    /// Name.
    pub name: &'a str,
    /// Width multipliers, the first `n_widths` valid.
    pub widths: [f32; MAX_WIDTHS],
    /// Number of widths.
    pub n_widths: usize,
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
            n_tasks: counts[kind::TASKS as usize],
            n_outputs: counts[kind::OUTPUTS as usize],
            n_tensors: counts[kind::TENSORS as usize],
            n_ops: counts[kind::OPS as usize],
            input_tensor: u32_at(g, 0).unwrap_or(0) as usize,
            input_scale: f32::from_bits(u32_at(g, 4).unwrap_or(0)),
            input_zp: u32_at(g, 8).unwrap_or(0) as i32,
            arena_bytes: u32_at(g, 12).unwrap_or(0) as usize,
            name: "",
            body_crc: computed,
            blob_len: given_len,
        };
        m.name = m.string(g, 16, Section::Graph, 0, "name")?;
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
    /// Index of the task named `name`.
    pub fn task_index(&self, name: &str) -> Option<usize> {
        (0..self.n_tasks).find(|&i| self.task_unchecked(i).name == name)
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
            .get(op.weights_off..op.weights_off + op.weights_len)
            .unwrap_or(&[])
    }

    /// The width entry of `op` for `key`.
    pub fn entry(&self, op: &OpInfo, key: usize) -> Entry<'a> {
        let start = (op.params_off + key * op.param_words) * 4;
        Entry {
            bytes: self
                .s
                .params
                .get(start..start + op.param_words * 4)
                .unwrap_or(&[]),
        }
    }

    /// The per-channel `(bias, multiplier, shift)` bytes of an entry with `n` channels.
    pub fn channel_bytes(&self, e: &Entry<'_>, n: usize) -> &'a [u8] {
        let start = e.channels() as usize * 4;
        self.s.params.get(start..start + n * 12).unwrap_or(&[])
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
        (0..self.n_ops).find(|&i| self.read_op(i).is_ok_and(|op| op.output == t))
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
                let t = self.tensor_unchecked(t);
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
            *w = f32::from_bits(u32_at(r, 12 + 4 * k).unwrap_or(0));
        }
        SegmentInfo {
            name: self
                .string(r, 0, Section::Segments, i, "name")
                .unwrap_or(""),
            widths,
            n_widths: self.n_widths(i),
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
        let alias = u32_at(r, 24).unwrap_or(NONE);
        TensorInfo {
            name: self.string(r, 0, Section::Tensors, i, "name").unwrap_or(""),
            h: u32_at(r, 8).unwrap_or(0) as usize,
            w: u32_at(r, 12).unwrap_or(0) as usize,
            c: u32_at(r, 16).unwrap_or(0) as usize,
            segment: u32_at(r, 20).unwrap_or(0) as usize,
            alias: (alias != NONE).then_some(alias as usize),
            offset: u32_at(r, 28).unwrap_or(0) as usize,
            first: u32_at(r, 32).unwrap_or(0) as usize,
            last: u32_at(r, 36).unwrap_or(0) as usize,
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
        for i in 0..self.n_segments {
            let r = &self.s.segments[i * size::SEGMENT..(i + 1) * size::SEGMENT];
            self.string(r, 0, Section::Segments, i, "name")?;
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
            let t = self.tensor_unchecked(i);
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
                let base = self.tensor_unchecked(a);
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
            }
        }
        Ok(())
    }

    fn root(&self, t: usize) -> usize {
        self.tensor_unchecked(t).alias.unwrap_or(t)
    }

    fn validate_op(&self, i: usize) -> Result<(), Error> {
        let idx = i as u32;
        let e =
            |field: &'static str, reason: &'static str| invalid(Section::Ops, idx, field, reason);
        let op = self.read_op(i)?;
        if op.segment >= self.n_segments {
            return Err(e("segment", "no such segment"));
        }
        if let Some(s) = op.in_segment
            && (s != 0 || op.segment == 0)
        {
            return Err(e(
                "in_segment",
                "only a decoder op may depend on the encoder's width",
            ));
        }
        let (min_in, max_in) = match op.kind {
            OpKind::Add => (2, crate::format::MAX_ADD_INPUTS),
            OpKind::Concat => (1, MAX_OP_INPUTS),
            _ => (1, 1),
        };
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
        if (0..i).any(|j| self.read_op(j).is_ok_and(|o| o.output == op.output)) {
            return Err(e("output", "tensor produced twice"));
        }
        let out = self.tensor_unchecked(op.output);
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
                let allowed = |s: usize| s == op.segment || Some(s) == op.in_segment;
                if !allowed(prod.segment) || prod.in_segment.is_some_and(|s| !allowed(s)) {
                    return Err(e(
                        "inputs",
                        "reads a tensor of a segment whose width it does not key on",
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
        if op.kind.has_weights() {
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
        // Attributes.
        let a = &op.attrs;
        match op.kind {
            OpKind::Conv2d => {
                if a[attr::STRIDE_H] == 0
                    || a[attr::STRIDE_W] == 0
                    || a[attr::DIL_H] == 0
                    || a[attr::DIL_W] == 0
                {
                    return Err(e("attrs", "stride and dilation must be >= 1"));
                }
                if a[attr::GROUPS] == 0 || a[attr::DEPTHWISE] > 1 {
                    return Err(e("attrs", "groups must be >= 1, depthwise 0 or 1"));
                }
                if a[attr::DEPTHWISE] == 1 && op.wshape[3] != 1 {
                    return Err(e("wshape", "depthwise weights have one input column"));
                }
            }
            OpKind::FullyConnected => {
                let t = self.tensor_unchecked(in0);
                if op.wshape[1] != t.h * t.w || op.wshape[3] != 1 || out.h != 1 || out.w != 1 {
                    return Err(e(
                        "wshape",
                        "fully connected weights must be [out, positions, in, 1]",
                    ));
                }
            }
            OpKind::MaxPool | OpKind::AvgPool => {
                if a[attr::STRIDE_H] == 0
                    || a[attr::STRIDE_W] == 0
                    || a[attr::KERNEL_H] == 0
                    || a[attr::KERNEL_W] == 0
                {
                    return Err(e("attrs", "kernel and stride must be >= 1"));
                }
                if a[attr::PAD_TOP] >= a[attr::KERNEL_H] || a[attr::PAD_LEFT] >= a[attr::KERNEL_W] {
                    return Err(e("attrs", "padding must be smaller than the window"));
                }
            }
            OpKind::GlobalAvgPool if out.h != 1 || out.w != 1 => {
                return Err(e("output", "global pooling output must be 1x1"));
            }
            _ => {}
        }
        if matches!(op.kind, OpKind::Conv2d | OpKind::MaxPool | OpKind::AvgPool) {
            let t = self.tensor_unchecked(in0);
            let kh = if op.kind == OpKind::Conv2d {
                (op.wshape[1] - 1) * a[attr::DIL_H] as usize + 1
            } else {
                a[attr::KERNEL_H] as usize
            };
            let kw = if op.kind == OpKind::Conv2d {
                (op.wshape[2] - 1) * a[attr::DIL_W] as usize + 1
            } else {
                a[attr::KERNEL_W] as usize
            };
            // Every output position's window must start inside the padded input.
            let last_y = (out.h - 1) * a[attr::STRIDE_H] as usize;
            let last_x = (out.w - 1) * a[attr::STRIDE_W] as usize;
            if last_y >= t.h + a[attr::PAD_TOP] as usize + kh
                || last_x >= t.w + a[attr::PAD_LEFT] as usize + kw
            {
                return Err(e("output", "output larger than the input geometry allows"));
            }
        }
        // Width tables.
        let nw = self.n_widths(op.segment);
        let nw_in = op.in_segment.map_or(1, |s| self.n_widths(s));
        if op.n_keys != nw * nw_in {
            return Err(e(
                "n_keys",
                "must be the product of the widths of segment and in_segment",
            ));
        }
        if op.param_words != word::COUNT + op.kind.extra_words(op.n_inputs) {
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
                self.validate_entry(i, &op, &widths)?;
            }
        }
        Ok(())
    }

    /// Check one width entry of `op` against its tensors and its producers' entries.
    fn validate_entry(&self, i: usize, op: &OpInfo, widths: &WidthConfig) -> Result<(), Error> {
        let idx = i as u32;
        let e = |field: &'static str, reason: &'static str| {
            invalid(Section::Params, idx, field, reason)
        };
        let en = self.entry(op, self.key(op, widths));
        let out = self.tensor_unchecked(op.output);
        let in_t = self.tensor_unchecked(self.op_input(op, 0));
        let active_in = |k: usize| self.tensor_quant(self.op_input(op, k), widths).0;
        let (in_ch, out_ch) = (en.in_ch(), en.out_ch());
        if in_ch == 0 || out_ch == 0 || out_ch > out.c {
            return Err(e(
                "out_ch",
                "active output channels outside 1..=tensor channels",
            ));
        }
        if in_ch != active_in(0) {
            return Err(e("in_ch", "differs from the producer's active channels"));
        }
        let zp_of = |k: usize| self.tensor_quant(self.op_input(op, k), widths).2;
        let add_zps_differ = op.kind == OpKind::Add
            && (1..op.n_inputs).any(|k| {
                let (zp, _, _) = crate::format::add_word::input(k);
                zp.is_some_and(|w| en.extra(w) != zp_of(k))
            });
        if en.in_zp() != zp_of(0) || add_zps_differ {
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
        let check_mult = |m: i32, s: i32| m >= 0 && (-31..=30).contains(&s);
        match op.kind {
            OpKind::Conv2d | OpKind::FullyConnected => {
                let n_words = self.s.params.len() / 4;
                let ch = en.channels() as usize;
                if ch.checked_add(out_ch * 3).is_none_or(|end| end > n_words) {
                    return Err(e(
                        "channels",
                        "per-channel table outside the params section",
                    ));
                }
                let cq = self.channel_bytes(&en, out_ch);
                for o in 0..out_ch {
                    let (_, m, s) = crate::kernels::ChannelQuant::new(cq).get(o);
                    if !check_mult(m, s) {
                        return Err(e("channels", "multiplier < 0 or shift outside -31..=30"));
                    }
                }
                if op.kind == OpKind::FullyConnected {
                    if in_ch > op.wshape[2] {
                        return Err(e("in_ch", "more input channels than weight columns"));
                    }
                } else if op.attrs[attr::DEPTHWISE] == 1 {
                    let mult = out.c / in_t.c.max(1);
                    if out.c != in_t.c * mult || out_ch != in_ch * mult {
                        return Err(e(
                            "out_ch",
                            "depthwise output must be input x channel multiplier",
                        ));
                    }
                } else {
                    let g = op.attrs[attr::GROUPS] as usize;
                    if in_ch % g != 0 || out_ch % g != 0 || in_ch / g > op.wshape[3] {
                        return Err(e("in_ch", "channels do not split into the groups"));
                    }
                }
            }
            OpKind::Add => {
                let same_shape = (0..op.n_inputs).all(|k| {
                    let t = self.tensor_unchecked(self.op_input(op, k));
                    active_in(k) == in_ch && t.h == out.h && t.w == out.w
                });
                if !same_shape || out_ch != in_ch || in_t.h != out.h || in_t.w != out.w {
                    return Err(e("in_ch", "add inputs and output must have equal shapes"));
                }
                let x = |w| en.extra(w);
                use crate::format::add_word as aw;
                for k in 1..op.n_inputs {
                    let (zp, m, s) = aw::input(k);
                    if zp.is_some_and(|w| !i8r.contains(&x(w))) {
                        return Err(e("in2_zp", "an input zero point is outside int8"));
                    }
                    if !check_mult(x(m), x(s)) {
                        return Err(e("add", "multiplier or shift out of range"));
                    }
                }
                if !check_mult(x(aw::M1), x(aw::S1))
                    || !check_mult(x(aw::MO), x(aw::SO))
                    || !(0..=20).contains(&x(aw::LEFT_SHIFT))
                {
                    return Err(e("add", "multiplier, shift or left shift out of range"));
                }
            }
            OpKind::MaxPool | OpKind::AvgPool | OpKind::GlobalAvgPool => {
                if out_ch != in_ch {
                    return Err(e("out_ch", "pooling keeps the channels"));
                }
                use crate::format::pool_word as pw;
                if !check_mult(en.extra(pw::M), en.extra(pw::S)) {
                    return Err(e("pool", "multiplier or shift out of range"));
                }
            }
            OpKind::Reshape => {
                if in_t.h * in_t.w * in_ch != out.h * out.w * out_ch {
                    return Err(e("out_ch", "reshape changes the element count"));
                }
                if en.out_zp() != en.in_zp() {
                    return Err(e("out_zp", "a reshape keeps the quantization"));
                }
            }
            OpKind::Concat => {
                let mut sum = 0usize;
                for k in 0..op.n_inputs {
                    let base = k * concat_word::PER_INPUT;
                    let ch = en.extra(base + concat_word::CH) as u32 as usize;
                    let t = self.tensor_unchecked(self.op_input(op, k));
                    if ch != active_in(k)
                        || t.h != out.h
                        || t.w != out.w
                        || en.extra(base + concat_word::ZP) != zp_of(k)
                    {
                        return Err(e("concat", "input channels or shape mismatch"));
                    }
                    if !i8r.contains(&en.extra(base + concat_word::ZP))
                        || !check_mult(
                            en.extra(base + concat_word::M),
                            en.extra(base + concat_word::S),
                        )
                    {
                        return Err(e("concat", "zero point, multiplier or shift out of range"));
                    }
                    sum += ch;
                }
                if sum != out_ch {
                    return Err(e("out_ch", "concat output must hold all input channels"));
                }
            }
            OpKind::Softmax => {
                if out_ch != in_ch || in_t.h != out.h || in_t.w != out.w || en.out_zp() != -128 {
                    return Err(e(
                        "softmax",
                        "softmax keeps the shape; output zero point is -128",
                    ));
                }
                let (m, s) = (
                    en.extra(softmax_word::BETA_M),
                    en.extra(softmax_word::BETA_SHIFT),
                );
                if !check_mult(m, 0)
                    || !(0..=30).contains(&s)
                    || en.extra(softmax_word::DIFF_MIN) > 0
                {
                    return Err(e(
                        "softmax",
                        "beta multiplier, shift or diff_min out of range",
                    ));
                }
            }
        }
        if op.kind != OpKind::Reshape && in_t.h * in_t.w * in_ch > in_t.bytes() {
            return Err(e("in_ch", "input larger than its tensor"));
        }
        Ok(())
    }

    /// Each tensor's recorded live interval covers its producer and every consumer; outputs
    /// live to the end.
    fn validate_liveness(&self) -> Result<(), Error> {
        for t in 0..self.n_tensors {
            let info = self.tensor_unchecked(t);
            let start = if t == self.input_tensor {
                0
            } else {
                self.producer(t).ok_or(invalid(
                    Section::Tensors,
                    t as u32,
                    "producer",
                    "tensor is never computed",
                ))?
            };
            let mut end = start;
            for i in 0..self.n_ops {
                let op = self.read_op(i)?;
                if (0..op.n_inputs).any(|k| self.op_input(&op, k) == t) {
                    end = end.max(i);
                }
            }
            if (0..self.n_outputs).any(|o| self.output_unchecked(o).tensor == t) {
                end = self.n_ops - 1;
            }
            if info.first > start || info.last < end {
                return Err(invalid(
                    Section::Tensors,
                    t as u32,
                    "live",
                    "interval does not cover all uses",
                ));
            }
        }
        Ok(())
    }

    /// Live interval of the storage group of root tensor `r` (the tensor and its views).
    fn group_interval(&self, r: usize) -> (usize, usize) {
        let mut lo = usize::MAX;
        let mut hi = 0;
        for t in 0..self.n_tensors {
            if self.root(t) == r {
                let i = self.tensor_unchecked(t);
                lo = lo.min(i.first);
                hi = hi.max(i.last);
            }
        }
        (lo, hi)
    }

    /// No two storage groups that are live at the same step share bytes.
    fn validate_arena(&self) -> Result<(), Error> {
        for a in 0..self.n_tensors {
            if self.root(a) != a {
                continue;
            }
            let ta = self.tensor_unchecked(a);
            let (fa, la) = self.group_interval(a);
            for b in a + 1..self.n_tensors {
                if self.root(b) != b {
                    continue;
                }
                let tb = self.tensor_unchecked(b);
                let (fb, lb) = self.group_interval(b);
                let live_together = fa <= lb && fb <= la;
                let share_bytes =
                    ta.offset < tb.offset + tb.bytes() && tb.offset < ta.offset + ta.bytes();
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
