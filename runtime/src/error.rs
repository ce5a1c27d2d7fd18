//! Errors of the runtime: every bad input ends here, never in a panic.

use core::fmt;

/// The section of a model blob an error refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Section {
    /// The fixed 32-byte header.
    Header,
    /// The section table that follows the header.
    Table,
    /// Model-level record (input tensor, input quantization, arena size).
    Graph,
    /// Names.
    Strings,
    /// Segments (encoder and decoders) with their width multipliers.
    Segments,
    /// Tasks.
    Tasks,
    /// Task outputs.
    Outputs,
    /// Activation tensors and their arena plan.
    Tensors,
    /// Operators.
    Ops,
    /// Operator input lists.
    OpInputs,
    /// int8 weights.
    Weights,
    /// Per-(op, width) parameter tables and per-channel requantization.
    Params,
}

impl Section {
    /// The section's name as the format documentation spells it.
    pub const fn name(self) -> &'static str {
        match self {
            Section::Header => "header",
            Section::Table => "section table",
            Section::Graph => "graph",
            Section::Strings => "strings",
            Section::Segments => "segments",
            Section::Tasks => "tasks",
            Section::Outputs => "outputs",
            Section::Tensors => "tensors",
            Section::Ops => "ops",
            Section::OpInputs => "op inputs",
            Section::Weights => "weights",
            Section::Params => "params",
        }
    }
}

/// Everything that can go wrong when loading or running a model.
///
/// Blob errors name the section, the record index and the field; run errors say what was
/// expected and what was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error {
    /// The blob does not start with the `ESLM` magic.
    BadMagic,
    /// The blob's format version is not one this runtime reads.
    UnsupportedVersion {
        /// Version found in the header.
        found: u16,
        /// Newest version this runtime reads.
        supported: u16,
    },
    /// The body's CRC-32 does not match the header.
    CrcMismatch {
        /// CRC stored in the header.
        expected: u32,
        /// CRC computed over the body.
        computed: u32,
    },
    /// The blob is shorter than its header says.
    Truncated {
        /// Bytes the header asks for.
        needed: usize,
        /// Bytes given.
        given: usize,
    },
    /// A field of a record is invalid.
    Invalid {
        /// Section of the record.
        section: Section,
        /// Index of the record within its section (0 for single records).
        index: u32,
        /// Field name as in FORMAT.md.
        field: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// Two tensors that are live at the same step share arena bytes.
    ArenaOverlap {
        /// First tensor.
        a: u32,
        /// Second tensor.
        b: u32,
    },
    /// The arena given to the interpreter is smaller than the model's plan.
    ArenaTooSmall {
        /// Bytes the plan needs.
        needed: usize,
        /// Bytes given.
        given: usize,
    },
    /// The input has the wrong number of elements.
    InputLength {
        /// Elements the model expects.
        expected: usize,
        /// Elements given.
        given: usize,
    },
    /// The width configuration has the wrong number of segments.
    WidthCount {
        /// Segments of the model.
        expected: usize,
        /// Entries given.
        given: usize,
    },
    /// A width index is out of range for its segment.
    WidthOutOfRange {
        /// Segment index.
        segment: u32,
        /// Index given.
        index: u32,
        /// Number of widths of that segment.
        count: u32,
    },
    /// The task mask selects no task.
    EmptyTaskMask,
    /// The task mask selects a task the model does not have.
    UnknownTask {
        /// Lowest bit set that names no task.
        bit: u32,
    },
    /// No task or output has this name.
    UnknownName,
    /// An output index is out of range or its task did not run.
    OutputNotAvailable {
        /// Output index asked for.
        index: u32,
    },
    /// A caller buffer is too small.
    BufferTooSmall {
        /// Elements needed.
        needed: usize,
        /// Elements given.
        given: usize,
    },
    /// A fixed capacity of this runtime build is exceeded.
    Capacity {
        /// What ran out.
        what: &'static str,
        /// The limit.
        limit: u32,
    },
    /// An accelerator's description of a job is inconsistent (an NPU command stream that is
    /// malformed, a transfer outside the arena or the NPU's buffers, a misaligned buffer):
    /// nothing ran on the device, and the fault is in what was built or deployed, not in the
    /// model.
    Accelerator {
        /// Index of the job (an NPU driver: its stream table's index).
        index: u32,
        /// The field or buffer at fault.
        field: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::BadMagic => write!(f, "not an edgeslim model: bad magic (expected \"ESLM\")"),
            Error::UnsupportedVersion { found, supported } if found < supported => write!(
                f,
                "model format version {found} is older than this runtime reads (version \
                 {supported}): recompile the model with this edgeslim (`edgeslim compile`)"
            ),
            Error::UnsupportedVersion { found, supported } => write!(
                f,
                "model format version {found} is newer than this runtime reads (up to {supported})"
            ),
            Error::CrcMismatch { expected, computed } => write!(
                f,
                "model body CRC mismatch: header says {expected:#010x}, body has {computed:#010x}"
            ),
            Error::Truncated { needed, given } => {
                write!(f, "model blob truncated: needs {needed} bytes, got {given}")
            }
            Error::Invalid {
                section,
                index,
                field,
                reason,
            } => write!(
                f,
                "invalid model: {} record {index}, field `{field}`: {reason}",
                section.name()
            ),
            Error::ArenaOverlap { a, b } => write!(
                f,
                "invalid arena plan: tensors {a} and {b} are live at the same step and overlap"
            ),
            Error::ArenaTooSmall { needed, given } => {
                write!(
                    f,
                    "arena too small: the model needs {needed} bytes, got {given}"
                )
            }
            Error::InputLength { expected, given } => write!(
                f,
                "wrong input length: the model expects {expected} elements, got {given}"
            ),
            Error::WidthCount { expected, given } => write!(
                f,
                "width config has {given} entries, the model has {expected} segments"
            ),
            Error::WidthOutOfRange {
                segment,
                index,
                count,
            } => write!(
                f,
                "width index {index} out of range for segment {segment} ({count} widths)"
            ),
            Error::EmptyTaskMask => write!(f, "task mask selects no task"),
            Error::UnknownTask { bit } => {
                write!(f, "task mask bit {bit} names no task of this model")
            }
            Error::UnknownName => write!(f, "no task or output has that name"),
            Error::OutputNotAvailable { index } => {
                write!(f, "output {index} does not exist or its task did not run")
            }
            Error::BufferTooSmall { needed, given } => {
                write!(f, "buffer too small: needs {needed} elements, got {given}")
            }
            Error::Capacity { what, limit } => {
                write!(f, "{what} exceeds this runtime's limit of {limit}")
            }
            Error::Accelerator {
                index,
                field,
                reason,
            } => write!(f, "accelerator job {index}, `{field}`: {reason}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}

/// Shorthand for an [`Error::Invalid`].
pub(crate) const fn invalid(
    section: Section,
    index: u32,
    field: &'static str,
    reason: &'static str,
) -> Error {
    Error::Invalid {
        section,
        index,
        field,
        reason,
    }
}
