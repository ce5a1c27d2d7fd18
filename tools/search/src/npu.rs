//! The NPU part of a bundle: per budget level, the Vela command streams of the segments it runs
//! on an Arm Ethos-U (each segment at the level's widths, compiled by Vela with
//! `--output-format raw`), and what firmware copies between the runtime's arena and the NPU.
//!
//! The command streams and weights are files beside the bundle (`npu/<name>.cmd`,
//! `npu/<name>.weights`); the JSON names them with their sizes, the Rust form includes them as
//! 16-byte-aligned statics of the `edgeslim-ethos-u` crate's types:
//!
//! ```ignore
//! pub const NPU_CONFIG: &str = "ethos-u55-128";
//! pub const NPU_SCRATCH_BYTES: usize = 3072;
//! pub const NPU_FAST_SCRATCH_BYTES: usize = 0;
//! static NPU_CMD_0: edgeslim_ethos_u::Aligned<[u8; 624]> =
//!     edgeslim_ethos_u::Aligned(*include_bytes!("npu/s0-e1-w1.cmd"));
//! pub static NPU_STREAMS: [edgeslim_ethos_u::Stream; 1] = [edgeslim_ethos_u::Stream { .. }];
//! pub static LEVEL_NPU: [&[u16]; 4] = [&[0], ..];
//! pub const LEVEL_NPU_FLASH: [u32; 4] = [9424, ..];
//! ```

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::bundle::Bundle;
use crate::error::{Error, Result};

/// Base-pointer regions of an Ethos-U (`BASEP0..BASEP7`).
pub const NPU_REGIONS: u8 = 8;

/// One tensor moved between the runtime's arena and an NPU region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NpuTransfer {
    /// The NPU region the tensor lives in.
    pub region: u8,
    /// Its byte offset in that region.
    pub offset: u32,
    /// Its byte offset in the runtime's arena.
    pub arena: u32,
    /// Bytes (int8 NHWC at the active widths).
    pub bytes: u32,
}

/// One segment at one width configuration, compiled by Vela.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NpuStream {
    /// The segment (0 = encoder).
    pub segment: u8,
    /// The encoder's width index it was compiled at (a decoder's weights follow the encoder's
    /// width); equal to `width` for the encoder.
    pub encoder_width: u8,
    /// The segment's width index.
    pub width: u8,
    /// File of the command stream, relative to the bundle (`npu/<name>.cmd`).
    pub command_stream: String,
    /// Its bytes.
    pub command_stream_bytes: u32,
    /// File of the weights and biases Vela encoded, relative to the bundle.
    pub weights: String,
    /// Their bytes.
    pub weight_bytes: u32,
    /// Region of the weights.
    pub weight_region: u8,
    /// Region of the scratch (activations, the transfers' tensors among them).
    pub scratch_region: u8,
    /// Region of the fast scratch.
    pub fast_scratch_region: u8,
    /// Scratch bytes.
    pub scratch_bytes: u32,
    /// Fast scratch bytes.
    pub fast_scratch_bytes: u32,
    /// Segment inputs, copied arena -> NPU before the run.
    pub inputs: Vec<NpuTransfer>,
    /// Segment outputs, copied NPU -> arena after it.
    pub outputs: Vec<NpuTransfer>,
}

impl NpuStream {
    /// Flash bytes: command stream and weights.
    pub fn flash_bytes(&self) -> u64 {
        u64::from(self.command_stream_bytes) + u64::from(self.weight_bytes)
    }
}

/// The command streams a bundle carries for an Ethos-U board.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NpuStreams {
    /// Vela's accelerator configuration (`ethos-u55-128`, ...).
    pub config: String,
    /// The Vela version that compiled them.
    pub vela: String,
    /// Every compiled (segment, widths), each once.
    pub streams: Vec<NpuStream>,
    /// Per level, in the bundle's level order: the streams it runs. A running segment without
    /// a stream runs on the CPU (Vela could not take all of its ops).
    pub levels: Vec<Vec<u16>>,
}

impl NpuStreams {
    /// Flash bytes of level `l`'s streams.
    pub fn level_flash_bytes(&self, l: usize) -> u64 {
        self.levels.get(l).map_or(0, |ix| {
            ix.iter()
                .filter_map(|&i| self.streams.get(usize::from(i)))
                .map(NpuStream::flash_bytes)
                .sum()
        })
    }

    /// Flash bytes of every stream (what an image holding all levels carries).
    pub fn total_flash_bytes(&self) -> u64 {
        self.streams.iter().map(NpuStream::flash_bytes).sum()
    }

    /// The largest scratch and fast scratch of any stream.
    pub fn scratch_bytes(&self) -> (u32, u32) {
        self.streams.iter().fold((0, 0), |(a, b), s| {
            (a.max(s.scratch_bytes), b.max(s.fast_scratch_bytes))
        })
    }
}

/// A file name the bundle may carry: `npu/` then letters, digits, `-`, `_`, `.`, no `..`.
fn valid_file(name: &str) -> bool {
    name.strip_prefix("npu/").is_some_and(|f| {
        !f.is_empty()
            && !f.contains("..")
            && f.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    })
}

/// Check the NPU part of `b` (called by [`Bundle::validate`]); errors name the field.
pub(crate) fn validate(b: &Bundle, n: &NpuStreams) -> Result<()> {
    if n.config.is_empty() || !n.config.bytes().all(|c| c.is_ascii_graphic()) {
        return Err(Error::invalid(
            "npu.config",
            "must be a non-empty Vela configuration name",
        ));
    }
    if n.vela.chars().any(char::is_control) {
        return Err(Error::invalid("npu.vela", "holds control characters"));
    }
    if n.streams.len() > usize::from(u16::MAX) {
        return Err(Error::invalid("npu.streams", "more than 65535 streams"));
    }
    let mut keys = BTreeSet::new();
    let mut files = BTreeSet::new();
    for (i, s) in n.streams.iter().enumerate() {
        let f = format!("npu.streams[{i}]");
        let seg = b.segments.get(usize::from(s.segment)).ok_or_else(|| {
            Error::invalid(
                format!("{f}.segment"),
                format!("{} out of range: {} segments", s.segment, b.segments.len()),
            )
        })?;
        let enc = &b.segments[0];
        if usize::from(s.width) >= seg.widths.len()
            || usize::from(s.encoder_width) >= enc.widths.len()
            || (s.segment == 0 && s.width != s.encoder_width)
        {
            return Err(Error::invalid(
                format!("{f}.width"),
                format!(
                    "width {} / encoder width {} out of range for segment {:?} ({} widths) \
                     and the encoder ({} widths), or unequal for the encoder",
                    s.width,
                    s.encoder_width,
                    seg.name,
                    seg.widths.len(),
                    enc.widths.len()
                ),
            ));
        }
        if !keys.insert((s.segment, s.encoder_width, s.width)) {
            return Err(Error::invalid(
                f,
                "a second stream for the same segment and widths",
            ));
        }
        for (field, name) in [
            ("command_stream", &s.command_stream),
            ("weights", &s.weights),
        ] {
            if !valid_file(name) || !files.insert(name.as_str()) {
                return Err(Error::invalid(
                    format!("{f}.{field}"),
                    format!("{name:?} is not a unique npu/<name> file name"),
                ));
            }
        }
        if s.command_stream_bytes == 0 {
            return Err(Error::invalid(
                format!("{f}.command_stream_bytes"),
                "an empty command stream",
            ));
        }
        for (field, r) in [
            ("weight_region", s.weight_region),
            ("scratch_region", s.scratch_region),
            ("fast_scratch_region", s.fast_scratch_region),
        ] {
            if r >= NPU_REGIONS {
                return Err(Error::invalid(
                    format!("{f}.{field}"),
                    format!("region {r}: an Ethos-U has {NPU_REGIONS}"),
                ));
            }
        }
        if s.outputs.is_empty() {
            return Err(Error::invalid(format!("{f}.outputs"), "no outputs"));
        }
        for (dir, list) in [("inputs", &s.inputs), ("outputs", &s.outputs)] {
            for (k, t) in list.iter().enumerate() {
                let size = if t.region == s.scratch_region {
                    s.scratch_bytes
                } else if t.region == s.fast_scratch_region {
                    s.fast_scratch_bytes
                } else {
                    return Err(Error::invalid(
                        format!("{f}.{dir}[{k}].region"),
                        format!("region {} is neither scratch region", t.region),
                    ));
                };
                if t.bytes == 0 || u64::from(t.offset) + u64::from(t.bytes) > u64::from(size) {
                    return Err(Error::invalid(
                        format!("{f}.{dir}[{k}]"),
                        format!(
                            "{} bytes at offset {} do not fit region {} ({size} bytes)",
                            t.bytes, t.offset, t.region
                        ),
                    ));
                }
            }
        }
    }
    if n.total_flash_bytes() > u64::from(u32::MAX) {
        return Err(Error::invalid("npu.streams", "more than 4 GiB of streams"));
    }
    if n.levels.len() != b.levels.len() {
        return Err(Error::invalid(
            "npu.levels",
            format!("{} entries for {} levels", n.levels.len(), b.levels.len()),
        ));
    }
    for (l, ix) in n.levels.iter().enumerate() {
        let level = &b.levels[l];
        let mut seen = 0u64;
        for (k, &i) in ix.iter().enumerate() {
            let f = format!("npu.levels[{l}][{k}]");
            let s = n.streams.get(usize::from(i)).ok_or_else(|| {
                Error::invalid(
                    f.clone(),
                    format!("stream {i} out of range ({})", n.streams.len()),
                )
            })?;
            let seg = usize::from(s.segment);
            if level.widths[seg] != s.width
                || level.widths[0] != s.encoder_width
                || seen & (1 << seg) != 0
            {
                return Err(Error::invalid(
                    f,
                    format!(
                        "stream {i} (segment {seg}, width {}, encoder width {}) is not at the \
                         level's widths {:?}, or repeats a segment",
                        s.width, s.encoder_width, level.widths
                    ),
                ));
            }
            seen |= 1 << seg;
        }
    }
    Ok(())
}

/// The NPU items of the Rust form (see the module documentation).
pub(crate) fn rust_items(s: &mut String, n: &NpuStreams) {
    let (scratch, fast) = n.scratch_bytes();
    // `write!` to a String cannot fail.
    let _ = writeln!(
        s,
        "/// Ethos-U configuration the command streams were compiled for (Vela {:?}); the \
         items below need the `edgeslim-ethos-u` crate.",
        n.vela
    );
    let _ = writeln!(s, "pub const NPU_CONFIG: &str = {:?};", n.config);
    let _ = writeln!(s, "/// The largest scratch of any stream, bytes.");
    let _ = writeln!(s, "pub const NPU_SCRATCH_BYTES: usize = {scratch};");
    let _ = writeln!(s, "/// The largest fast scratch of any stream, bytes.");
    let _ = writeln!(s, "pub const NPU_FAST_SCRATCH_BYTES: usize = {fast};");
    for (i, st) in n.streams.iter().enumerate() {
        for (kind, file, bytes) in [
            ("CMD", &st.command_stream, st.command_stream_bytes),
            ("WEIGHTS", &st.weights, st.weight_bytes),
        ] {
            let _ = writeln!(
                s,
                "static NPU_{kind}_{i}: edgeslim_ethos_u::Aligned<[u8; {bytes}]> = \
                 edgeslim_ethos_u::Aligned(*include_bytes!({file:?}));"
            );
        }
    }
    let transfers = |v: &[NpuTransfer]| -> String {
        let items: Vec<String> = v
            .iter()
            .map(|t| {
                format!(
                    "edgeslim_ethos_u::Transfer {{ region: {}, offset: {}, arena: {}, bytes: {} }}",
                    t.region, t.offset, t.arena, t.bytes
                )
            })
            .collect();
        format!("&[{}]", items.join(", "))
    };
    let _ = writeln!(
        s,
        "/// Every compiled (segment, encoder width, width), in the order `LEVEL_NPU` indexes."
    );
    let _ = writeln!(
        s,
        "pub static NPU_STREAMS: [edgeslim_ethos_u::Stream; {}] = [",
        n.streams.len()
    );
    for (i, st) in n.streams.iter().enumerate() {
        let _ = writeln!(
            s,
            "    edgeslim_ethos_u::Stream {{ segment: {}, encoder_width: {}, width: {}, \
             command_stream: &NPU_CMD_{i}.0, weights: &NPU_WEIGHTS_{i}.0, weight_region: {}, \
             scratch_region: {}, fast_scratch_region: {}, scratch_bytes: {}, \
             fast_scratch_bytes: {}, inputs: {}, outputs: {} }},",
            st.segment,
            st.encoder_width,
            st.width,
            st.weight_region,
            st.scratch_region,
            st.fast_scratch_region,
            st.scratch_bytes,
            st.fast_scratch_bytes,
            transfers(&st.inputs),
            transfers(&st.outputs)
        );
    }
    let _ = writeln!(s, "];");
    let _ = writeln!(
        s,
        "/// Per level (the order of `LEVELS`): the `NPU_STREAMS` it runs; its other segments \
         run on the CPU."
    );
    let _ = writeln!(s, "pub static LEVEL_NPU: [&[u16]; {}] = [", n.levels.len());
    for ix in &n.levels {
        let v: Vec<String> = ix.iter().map(u16::to_string).collect();
        let _ = writeln!(s, "    &[{}],", v.join(", "));
    }
    let _ = writeln!(s, "];");
    let _ = writeln!(
        s,
        "/// Per level: flash bytes of its streams (command streams and weights)."
    );
    let flash: Vec<String> = (0..n.levels.len())
        .map(|l| n.level_flash_bytes(l).to_string())
        .collect();
    let _ = writeln!(
        s,
        "pub const LEVEL_NPU_FLASH: [u32; {}] = [{}];",
        n.levels.len(),
        flash.join(", ")
    );
}
