//! The importer's op registry entries and the coverage table rendered from them (`edgeslim
//! ops`, `docs/operators.md`). The registry itself is [`super::registry`]: each op family file
//! exports its entries, `import/mod.rs` lists the families.

use super::Importer;
use anyhow::Result;
use std::fmt::Write as _;
use tract_onnx::pb;

/// How an op's operands may be quantized in the files it is accepted from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// float32 operands (the compiler calibrates and quantizes).
    Float,
    /// float op between DequantizeLinear and QuantizeLinear nodes (the file's scales are used).
    Qdq,
    /// The op itself takes quantized operands and their scales (`QLinear*`).
    QOperator,
}

impl Format {
    /// The name shown in the coverage table.
    pub fn name(self) -> &'static str {
        match self {
            Format::Float => "float",
            Format::Qdq => "QDQ",
            Format::QOperator => "QOperator",
        }
    }
}

/// One attribute an op importer reads, and what of it is supported.
#[derive(Debug, Clone, Copy)]
pub struct AttrSupport {
    /// ONNX attribute name.
    pub name: &'static str,
    /// Supported values and the default, e.g. "2 values >= 1; default 1".
    pub support: &'static str,
}

/// The import function of an op: read node `n` into the importer's graph.
pub(crate) type ImportFn = fn(&mut Importer, &pb::NodeProto) -> Result<()>;

/// One ONNX op type the importer accepts: how to import it and what the coverage table says.
#[derive(Debug, Clone, Copy)]
pub struct OpImporter {
    /// ONNX op type, e.g. `Conv`.
    pub op_type: &'static str,
    /// Fewest and most inputs (optional inputs may be given as empty names).
    pub inputs: (usize, usize),
    /// Attributes read, with their supported values; others are ignored.
    pub attributes: &'static [AttrSupport],
    /// The forms the op is accepted in.
    pub formats: &'static [Format],
    /// One line: restrictions on inputs and shapes, and what the op becomes.
    pub note: &'static str,
    /// The import function.
    pub(crate) import: ImportFn,
}

/// Shorthand for an [`AttrSupport`] in the family files.
pub(crate) const fn attr(name: &'static str, support: &'static str) -> AttrSupport {
    AttrSupport { name, support }
}

/// The inputs column: `2` or `2-3`.
fn inputs(op: &OpImporter) -> String {
    match op.inputs {
        (a, b) if a == b => a.to_string(),
        (a, usize::MAX) => format!("{a} or more"),
        (a, b) => format!("{a}-{b}"),
    }
}

/// The formats column.
fn formats(op: &OpImporter) -> String {
    op.formats
        .iter()
        .map(|f| f.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The coverage table as plain text, one block per op.
pub fn coverage_text() -> String {
    let mut s = String::new();
    for op in super::registry() {
        let _ = writeln!(s, "{} [{}] inputs: {}", op.op_type, formats(op), inputs(op));
        for a in op.attributes {
            let _ = writeln!(s, "    {}: {}", a.name, a.support);
        }
        let _ = writeln!(s, "    {}", op.note);
    }
    s
}

/// Escape `|` for a Markdown table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

/// The coverage table as Markdown: the text of `docs/operators.md`.
pub fn coverage_markdown() -> String {
    let mut s = String::from(
        "# Supported ONNX operators\n\n\
         Generated from the importer's registry (`tools/compiler/src/import/`) by\n\
         `edgeslim ops --markdown`; do not edit by hand. Regenerate with\n\
         `cargo run -p edgeslim -- ops --markdown > docs/operators.md`.\n\n\
         Every model: one float32 input of static shape `[1, C, H, W]` or `[1, K]` (batch 1),\n\
         operators of the standard ONNX domain only, constant weights. Formats: `float` (the\n\
         compiler calibrates and quantizes), `QDQ` (the op between DequantizeLinear and\n\
         QuantizeLinear nodes; the file's scales are used), `QOperator` (the op takes quantized\n\
         operands itself). Attributes not listed are ignored; a malformed attribute is an error\n\
         naming the node.\n\n\
         | op | formats | inputs | attributes | notes |\n\
         |---|---|---|---|---|\n",
    );
    for op in super::registry() {
        let attrs = if op.attributes.is_empty() {
            "—".to_string()
        } else {
            op.attributes
                .iter()
                .map(|a| format!("`{}`: {}", a.name, cell(a.support)))
                .collect::<Vec<_>>()
                .join("<br>")
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            op.op_type,
            formats(op),
            inputs(op),
            attrs,
            cell(op.note)
        );
    }
    s
}
