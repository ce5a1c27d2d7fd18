//! ONNX import: the compiler reads the node list into its [`Graph`] IR, resolving
//! QuantizeLinear/DequantizeLinear pairs (QDQ) and QLinear* ops (QOperator) into real-valued
//! nodes with quantization annotations.
//!
//! tract does what it does well on both sides of that reading:
//! - before it, tract's analysis of the file (its inference model, from the graph input and
//!   the ops' semantics, ignoring the file's shape annotations) gives every named tensor's
//!   shape and evaluates every subgraph computed from constants alone ([`TractFacts`]). Such
//!   nodes are folded: their outputs are the constants tract computed, so the shape
//!   arithmetic of PyTorch exports (`Shape`, `Cast`, `Gather`, `Concat` of shape vectors, ...)
//!   needs no importer of its own; every tensor the importer creates is checked against
//!   tract's shape for it, so a disagreement is an error naming the node;
//! - after it, tract types and declutters the whole graph (operator set, types), and the
//!   output shapes are cross-checked again.
//!
//! Each ONNX op is an [`OpImporter`] in the registry ([`registry`]): one file per op family
//! (`conv.rs`, `gemm.rs`, ...) exports its entries as `OPS`, and [`FAMILIES`] lists the
//! families. Adding an op is an entry in a family file (or a new file) plus its line in
//! [`FAMILIES`]; the supported-op list of the error messages, `edgeslim ops` and
//! `docs/operators.md` all come from the registry.
//!
//! Every malformed node (missing inputs, attributes of the wrong type, length or range, shapes
//! that do not fit) is an error naming the node, never a panic. tract runs inside
//! [`catch_panic`], so a tract panic is an error too, and a panic hook that checks
//! [`panic_expected`] stays quiet while it unwinds.

mod activation;
mod add;
mod attrs;
mod concat;
mod conv;
mod conv_transpose;
mod elementwise;
mod gemm;
mod misc;
mod norm;
mod pad;
mod pool;
mod quant;
mod reduce;
mod registry;
mod resize;
mod shape;
mod slice;
mod softmax;
mod squeeze;
mod tensor;
mod transpose;

pub use registry::{AttrSupport, Format, OpImporter, coverage_markdown, coverage_text};

use crate::ir::{Act, Const, ConstQuant, Graph, Node, Op, QParams, Tensor};
use anyhow::{Context, Result, anyhow, bail};
use edgeslim_runtime::format::MAX_ADD_INPUTS;
use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use tensor::{Data, dtype_name, element_count, read_tensor};
use tract_onnx::pb;
use tract_onnx::prelude::*;

/// The metadata key of the slimming manifest.
pub const MANIFEST_KEY: &str = "edgeslim.manifest";

/// The op families of the registry, in the order of the coverage table and of the supported
/// list in messages. A new family file adds one line here.
const FAMILIES: &[&[OpImporter]] = &[
    conv::OPS,
    conv_transpose::OPS,
    gemm::OPS,
    activation::OPS,
    elementwise::OPS,
    add::OPS,
    pool::OPS,
    reduce::OPS,
    pad::OPS,
    resize::OPS,
    shape::OPS,
    slice::OPS,
    squeeze::OPS,
    transpose::OPS,
    concat::OPS,
    norm::OPS,
    softmax::OPS,
    quant::OPS,
    misc::OPS,
];

/// Every op the importer accepts.
pub fn registry() -> impl Iterator<Item = &'static OpImporter> {
    FAMILIES.iter().flat_map(|f| f.iter())
}

/// ONNX op types the importer accepts, in registry order.
pub fn supported_ops() -> Vec<&'static str> {
    registry().map(|op| op.op_type).collect()
}

/// The registry entry of ONNX op type `op_type`.
pub fn find_op(op_type: &str) -> Option<&'static OpImporter> {
    registry().find(|op| op.op_type == op_type)
}

/// Largest element count of a tensor the importer creates (the runtime's arena is far
/// smaller; this only keeps shape arithmetic in range).
const MAX_ELEMENTS: usize = 1 << 31;

/// Whether a tensor of `shape` has at most [`MAX_ELEMENTS`] elements.
fn fits(shape: &[usize]) -> bool {
    element_count(shape).is_ok_and(|e| e <= MAX_ELEMENTS)
}

thread_local! {
    /// Depth of [`catch_panic`] calls on this thread.
    static CATCHING: Cell<u32> = const { Cell::new(0) };
}

/// Whether a panic on the current thread will be caught by the compiler and reported as an
/// error (tract running inside the importer). A process-wide panic hook should print nothing
/// when this is true: the user sees the importer's error instead.
pub fn panic_expected() -> bool {
    CATCHING.with(|c| c.get() > 0)
}

/// Run `f`, turning a panic into an error carrying the panic's message. While `f` runs,
/// [`panic_expected`] is true on this thread.
pub fn catch_panic<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    /// Decrements the depth on every exit, unwinding included.
    struct Depth;
    impl Drop for Depth {
        fn drop(&mut self) {
            CATCHING.with(|c| c.set(c.get().saturating_sub(1)));
        }
    }
    CATCHING.with(|c| c.set(c.get() + 1));
    let _depth = Depth;
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown panic".into())
    })
}

/// What a name of the ONNX graph stands for during import.
#[derive(Debug, Clone)]
enum Value {
    /// An IR tensor (activation or float constant).
    Tensor(usize),
    /// A raw constant (zero points, scales, int weights, shapes).
    Raw(Vec<usize>, Data),
    /// The quantized form of an IR activation tensor.
    Quantized(usize),
}

/// The import state: the graph built so far and what each ONNX name stands for.
pub(crate) struct Importer {
    /// The graph built so far.
    g: Graph,
    /// ONNX names defined so far.
    values: HashMap<String, Value>,
    /// The file's operator set version of the standard domain.
    opset: i64,
    /// Outputs of Adds of two activations, by ONNX name: read by name (not through a
    /// DequantizeLinear), they are unrounded float sums.
    add_outputs: HashSet<String>,
    /// `(node, input position)` of Adds reading such a float sum directly.
    float_add_reads: Vec<(usize, usize)>,
    /// Names of the tensors some node reads as they are, in float: every node's inputs but a
    /// QuantizeLinear's or a Shape's, and the graph's outputs.
    float_reads: HashSet<String>,
    /// What tract's analysis of the file knows of its named tensors.
    facts: TractFacts,
}

/// What tract's type and shape analysis of the file (its inference model, before the importer
/// runs, from the graph input and the ops alone) knows of each named tensor: its concrete shape, and its value when it is computed from
/// constants only (tract evaluates such subgraphs: shape arithmetic, casts, constant fills).
/// Empty when tract cannot analyse the file; the check after import then reports why.
#[derive(Default)]
struct TractFacts {
    shapes: HashMap<String, Vec<usize>>,
    values: HashMap<String, (Vec<usize>, Data)>,
}

impl TractFacts {
    /// Analyse `proto` with tract (a panic or an error leaves what was learnt so far).
    fn of(proto: &pb::ModelProto) -> Self {
        let mut facts = TractFacts::default();
        let analysed = catch_panic(|| -> TractResult<InferenceModel> {
            // Shapes from the ops' semantics, not from the file's annotations (`value_info`
            // and output shapes, which exports can leave stale).
            let mut model = onnx()
                .with_ignore_value_info(true)
                .with_ignore_output_shapes(true)
                .model_for_proto_model(proto)?;
            // Obstinate: analyse every node it can, past the ones it cannot.
            let _ = model.analyse(true);
            Ok(model)
        });
        let Ok(Ok(model)) = analysed else {
            return facts;
        };
        for node in model.nodes() {
            for (ix, out) in node.outputs.iter().enumerate() {
                let Some(name) = model.outlet_label(OutletId::new(node.id, ix)) else {
                    continue;
                };
                if let Ok(Some(shape)) = out.fact.shape.as_concrete_finite() {
                    facts.shapes.insert(name.to_string(), shape.to_vec());
                }
                if let Some(v) = tract_onnx::tract_hir::infer::Factoid::concretize(&out.fact.value)
                    && let Some(data) = tract_data(&v)
                {
                    facts
                        .values
                        .insert(name.to_string(), (v.shape().to_vec(), data));
                }
            }
        }
        facts
    }

    /// Whether tract computed every output of node `n` from constants.
    fn folds(&self, n: &pb::NodeProto) -> bool {
        let outs: Vec<&String> = n.output.iter().filter(|o| !o.is_empty()).collect();
        !outs.is_empty() && outs.iter().all(|o| self.values.contains_key(*o))
    }
}

/// A tract tensor as the importer's constant data (the element types constants carry).
fn tract_data(t: &tract_onnx::prelude::Tensor) -> Option<Data> {
    let dt = t.datum_type();
    Some(if dt == f32::datum_type() {
        Data::F32(
            t.to_plain_array_view::<f32>()
                .ok()?
                .iter()
                .copied()
                .collect(),
        )
    } else if dt == i64::datum_type() {
        Data::I64(
            t.to_plain_array_view::<i64>()
                .ok()?
                .iter()
                .copied()
                .collect(),
        )
    } else if dt == i32::datum_type() {
        Data::I32(
            t.to_plain_array_view::<i32>()
                .ok()?
                .iter()
                .copied()
                .collect(),
        )
    } else if dt == i8::datum_type() {
        Data::I8(
            t.to_plain_array_view::<i8>()
                .ok()?
                .iter()
                .copied()
                .collect(),
        )
    } else if dt == u8::datum_type() {
        Data::U8(
            t.to_plain_array_view::<u8>()
                .ok()?
                .iter()
                .copied()
                .collect(),
        )
    } else if dt == TDim::datum_type() {
        // Shape arithmetic: tract keeps dimensions symbolic until they are concrete.
        Data::I64(
            t.to_plain_array_view::<TDim>()
                .ok()?
                .iter()
                .map(|d| d.to_i64().ok())
                .collect::<Option<_>>()?,
        )
    } else if dt == bool::datum_type() {
        Data::I64(
            t.to_plain_array_view::<bool>()
                .ok()?
                .iter()
                .map(|&b| b as i64)
                .collect(),
        )
    } else {
        return None;
    })
}

/// Input `k` of node `n`, or `""` when absent.
fn input(n: &pb::NodeProto, k: usize) -> &str {
    n.input.get(k).map(String::as_str).unwrap_or("")
}

/// Axis `a` of a rank-`rank` tensor, negative counted from the end.
fn axis(a: i64, rank: usize) -> Result<usize> {
    let v = if a < 0 { a + rank as i64 } else { a };
    usize::try_from(v)
        .ok()
        .filter(|&v| v < rank)
        .ok_or_else(|| anyhow!("axis {a} outside a rank-{rank} tensor"))
}

/// The first output of node `n` (its only output the importer defines).
fn output(n: &pb::NodeProto) -> String {
    n.output.first().cloned().unwrap_or_default()
}

/// The name of node `n` in messages: its name, or its first output's when it has none.
fn label(n: &pb::NodeProto) -> &str {
    if n.name.is_empty() {
        n.output.first().map_or("", String::as_str)
    } else {
        &n.name
    }
}

/// Output size of a window op along one axis. With `ceil`, a last window that would start in
/// the end padding is dropped (ONNX, PyTorch and tract agree on this rule).
fn out_dim(
    i: usize,
    k: usize,
    s: usize,
    p0: usize,
    p1: usize,
    d: usize,
    ceil: bool,
) -> Result<usize> {
    if k == 0 || s == 0 || d == 0 {
        bail!("kernel ({k}), stride ({s}) and dilation ({d}) must be at least 1");
    }
    let ek = d.checked_mul(k - 1).and_then(|x| x.checked_add(1));
    let padded = i.checked_add(p0).and_then(|x| x.checked_add(p1));
    let (Some(ek), Some(padded)) = (ek, padded) else {
        bail!("window or padding too large");
    };
    if padded < ek {
        bail!("window larger than the padded input ({ek} > {padded})");
    }
    let num = padded - ek;
    let mut out = if ceil { num.div_ceil(s) } else { num / s } + 1;
    if ceil && (out - 1) * s >= i + p0 {
        out -= 1;
    }
    Ok(out)
}

/// Resolve `auto_pad` and `pads` of a window op over spatial dims `hw`.
fn window_pads(
    n: &pb::NodeProto,
    hw: [usize; 2],
    k: [usize; 2],
    s: [usize; 2],
    d: [usize; 2],
) -> Result<[usize; 4]> {
    let auto = attrs::string(n, "auto_pad")?;
    match auto.as_str() {
        "" | "NOTSET" => attrs::pads(n),
        "VALID" => Ok([0; 4]),
        "SAME_UPPER" | "SAME_LOWER" => {
            let mut pads = [0usize; 4];
            for a in 0..2 {
                if hw[a] == 0 || k[a] == 0 || s[a] == 0 || d[a] == 0 {
                    bail!("auto_pad {auto}: empty input, kernel, stride or dilation");
                }
                let out = hw[a].div_ceil(s[a]);
                let total = (out - 1)
                    .checked_mul(s[a])
                    .and_then(|x| x.checked_add(d[a].checked_mul(k[a] - 1)?))
                    .and_then(|x| x.checked_add(1))
                    .ok_or_else(|| anyhow!("auto_pad {auto}: window too large"))?
                    .saturating_sub(hw[a]);
                let (lo, hi) = if auto == "SAME_UPPER" {
                    (total / 2, total - total / 2)
                } else {
                    (total - total / 2, total / 2)
                };
                pads[a] = lo;
                pads[a + 2] = hi;
            }
            Ok(pads)
        }
        other => bail!("auto_pad {other} is not supported"),
    }
}

impl Importer {
    /// Import node `n` with registry entry `op`: the generic checks (inputs, output), then
    /// the op's import function.
    fn node(&mut self, op: &OpImporter, n: &pb::NodeProto) -> Result<()> {
        let (min, max) = op.inputs;
        if n.input.len() < min || n.input.len() > max {
            let want = if min == max {
                min.to_string()
            } else if max == usize::MAX {
                format!("at least {min}")
            } else {
                format!("{min} to {max}")
            };
            let noun = if want == "1" { "input" } else { "inputs" };
            bail!("expects {want} {noun}, got {}", n.input.len());
        }
        if output(n).is_empty() {
            bail!("the node has no (named) output");
        }
        (op.import)(self, n)
    }

    /// Whether node `n` of a supported op is folded: tract computed its outputs, and it reads
    /// raw constants only (shape arithmetic: Gather, Concat, Unsqueeze, ... of shape vectors).
    /// Quantize and dequantize nodes are never folded: the importer keeps the file's int8
    /// weights and their scales, not the float values tract computes; nor are Constant nodes,
    /// whose data the importer reads and checks itself.
    fn folds(&self, n: &pb::NodeProto) -> bool {
        !matches!(
            n.op_type.as_str(),
            "QuantizeLinear" | "DequantizeLinear" | "Constant"
        ) && self.facts.folds(n)
            && n.input
                .iter()
                .filter(|i| !i.is_empty())
                .all(|i| matches!(self.values.get(i), Some(Value::Raw(..))))
    }

    /// Define the outputs of node `n` as the constants tract computed for them.
    fn fold(&mut self, n: &pb::NodeProto) {
        for o in n.output.iter().filter(|o| !o.is_empty()) {
            if let Some((dims, data)) = self.facts.values.get(o) {
                self.values
                    .insert(o.clone(), Value::Raw(dims.clone(), data.clone()));
            }
        }
    }

    /// A new IR tensor; its index.
    fn add_tensor(&mut self, name: &str, shape: Vec<usize>, konst: Option<Const>) -> usize {
        self.g.tensors.push(Tensor {
            name: name.into(),
            shape,
            konst,
            quant: None,
        });
        self.g.tensors.len() - 1
    }

    /// What ONNX name `name` stands for.
    fn value(&self, name: &str) -> Result<&Value> {
        if name.is_empty() {
            bail!("a required input is missing (empty name)");
        }
        self.values
            .get(name)
            .ok_or_else(|| anyhow!("input {name} is not defined before use"))
    }

    /// An activation or float-constant input as an IR tensor.
    fn tensor_in(&mut self, name: &str) -> Result<usize> {
        match self.value(name)?.clone() {
            Value::Tensor(t) => Ok(t),
            Value::Quantized(t) => Ok(t),
            Value::Raw(dims, data) => {
                let t = self.add_tensor(
                    name,
                    dims,
                    Some(Const {
                        data: data.to_f32(),
                        quant: None,
                    }),
                );
                self.values.insert(name.into(), Value::Tensor(t));
                Ok(t)
            }
        }
    }

    /// A constant input: its shape and data.
    fn raw(&self, name: &str) -> Result<(Vec<usize>, Data)> {
        match self.value(name)? {
            Value::Raw(d, v) => Ok((d.clone(), v.clone())),
            Value::Tensor(t) => match &self.g.tensors[*t].konst {
                Some(c) => Ok((self.g.tensors[*t].shape.clone(), Data::F32(c.data.clone()))),
                None => bail!("input {name} must be a constant"),
            },
            Value::Quantized(_) => bail!("input {name} must be a constant"),
        }
    }

    /// The integers of constant input `name` (int64 and int32 read exactly), `None` for an
    /// absent optional input (empty name).
    fn const_ints(&self, name: &str) -> Result<Option<Vec<i64>>> {
        if name.is_empty() {
            return Ok(None);
        }
        Ok(Some(match self.raw(name)?.1 {
            Data::I64(v) => v,
            Data::I32(v) => v.iter().map(|&x| x as i64).collect(),
            other => other.to_f32().iter().map(|&x| x as i64).collect(),
        }))
    }

    /// Whether ONNX name `name` is a constant.
    fn is_const(&self, name: &str) -> bool {
        match self.values.get(name) {
            Some(Value::Raw(..)) => true,
            Some(Value::Tensor(t)) => self.g.tensors[*t].konst.is_some(),
            _ => false,
        }
    }

    /// A computed (non-constant) input as an IR tensor; `what` names it in the error.
    fn activation(&mut self, name: &str, what: &str) -> Result<usize> {
        let t = self.tensor_in(name)?;
        if self.g.tensors[t].konst.is_some() {
            bail!("{what} {name} is a constant; a computed tensor is expected");
        }
        Ok(t)
    }

    /// Scalar `(scale, zero point as int8)` from Q/DQ inputs.
    fn qparams(&self, scale: &str, zp: Option<&str>) -> Result<QParams> {
        let (_, s) = self.raw(scale)?;
        let s = s.to_f32();
        if s.is_empty() {
            bail!("scale {scale} is empty");
        }
        if s.len() != 1 {
            bail!("per-axis quantization of activations is not supported ({scale})");
        }
        let zero_point = match zp {
            None | Some("") => 0,
            Some(z) => match self.raw(z)?.1 {
                Data::U8(v) if v.len() == 1 => v[0] as i32 - 128,
                Data::I8(v) if v.len() == 1 => v[0] as i32,
                _ => bail!("zero point {z} must be one uint8 or int8 value"),
            },
        };
        if !(s[0].is_finite() && s[0] > 0.0) {
            bail!("scale {scale} must be finite and > 0");
        }
        Ok(QParams {
            scale: s[0],
            zero_point,
        })
    }

    /// Annotate activation `t` with the file's quantization (the first one stated wins).
    fn annotate(&mut self, t: usize, q: QParams) {
        if self.g.tensors[t].quant.is_none() {
            self.g.tensors[t].quant = Some(q);
        }
        self.g.prequantized = true;
    }

    /// Dequantize a constant weight (`axis` 0 per-channel or per-tensor), keeping int8 values.
    fn dequant_const(
        &mut self,
        name: &str,
        v: &str,
        scale: &str,
        zp: Option<&str>,
        axis: usize,
    ) -> Result<usize> {
        let (dims, data) = self.raw(v)?;
        let scales = self.raw(scale)?.1.to_f32();
        let zps: Vec<i32> = match zp {
            None | Some("") => vec![0],
            Some(z) => match self.raw(z)?.1 {
                Data::I8(x) => x.iter().map(|&x| x as i32).collect(),
                Data::U8(x) => x.iter().map(|&x| x as i32).collect(),
                Data::I32(x) => x,
                _ => bail!("zero point {z}: unsupported type"),
            },
        };
        if scales.is_empty() {
            bail!("scale {scale} is empty");
        }
        if let Some(s) = scales.iter().find(|s| !s.is_finite()) {
            bail!("scale {scale} has a non-finite value {s}");
        }
        let n_axis = dims.get(axis).copied().unwrap_or(1);
        let inner: usize = dims.iter().skip(axis + 1).product();
        let per = |vec_len: usize, i: usize| {
            if vec_len == 1 {
                0
            } else {
                (i / inner) % n_axis
            }
        };
        if scales.len() != 1 && scales.len() != n_axis {
            bail!(
                "scale {scale}: {} values for axis of {n_axis}",
                scales.len()
            );
        }
        if zps.len() != 1 && zps.len() != n_axis {
            bail!(
                "zero point {}: {} values for axis of {n_axis}",
                zp.unwrap_or(""),
                zps.len()
            );
        }
        let raw = data.to_f32();
        let real: Vec<f32> = raw
            .iter()
            .enumerate()
            .map(|(i, &q)| (q - zps[per(zps.len(), i)] as f32) * scales[per(scales.len(), i)])
            .collect();
        let quant = match &data {
            Data::I8(x) if zps.iter().all(|&z| z == 0) && axis == 0 => Some(ConstQuant {
                values: x.clone(),
                scales: if scales.len() == 1 {
                    vec![scales[0]; n_axis]
                } else {
                    scales.clone()
                },
            }),
            _ => None,
        };
        let t = self.add_tensor(name, dims, Some(Const { data: real, quant }));
        self.values.insert(name.into(), Value::Tensor(t));
        Ok(t)
    }

    /// Add the IR node of ONNX node `n`, writing a new tensor of `shape` named after the
    /// node's first output; that tensor's index.
    fn push(
        &mut self,
        n: &pb::NodeProto,
        op: Op,
        inputs: Vec<usize>,
        shape: Vec<usize>,
    ) -> Result<usize> {
        let name = if n.name.is_empty() {
            output(n)
        } else {
            n.name.clone()
        };
        self.push_output(n, &output(n), name, op, inputs, shape)
    }

    /// [`Self::push`] for output `out_name` of a node with several (Split), as IR node `name`.
    fn push_output(
        &mut self,
        n: &pb::NodeProto,
        out_name: &str,
        name: String,
        op: Op,
        inputs: Vec<usize>,
        shape: Vec<usize>,
    ) -> Result<usize> {
        if !fits(&shape) {
            bail!("output shape {shape:?} is too large");
        }
        if let Some(theirs) = self.facts.shapes.get(out_name)
            && *theirs != shape
        {
            bail!("output {out_name}: tract infers shape {theirs:?}, the importer {shape:?}");
        }
        let t = self.add_tensor(out_name, shape, None);
        self.values.insert(out_name.to_string(), Value::Tensor(t));
        self.g.nodes.push(Node {
            name,
            op_type: n.op_type.clone(),
            op,
            inputs,
            output: t,
            act: Act::None,
            positions: 1,
            dead: false,
        });
        Ok(t)
    }

    /// A quantized file whose Adds stay in float (ONNX Runtime's QOperator format quantizes
    /// Conv and MatMul only) chains residual Adds in float: `s2 = s1 + DQ(c)` reads `s1 =
    /// DQ(a) + DQ(b)` unrounded, while another path quantizes `s1` for the next conv. The
    /// runtime's tensors are int8, so reading the quantized `s1` would add a rounding ONNX does
    /// not have; instead the outer Add takes the inner Add's operands (`s2 = DQ(a) + DQ(b) +
    /// DQ(c)`), up to the runtime's `MAX_ADD_INPUTS`. Files that are not pre-quantized, or
    /// whose inner sum is not quantized anywhere, are left as they are.
    fn flatten_float_add_chains(&mut self) {
        if !self.g.prequantized {
            return;
        }
        // Inner Adds first (file order), and within a node the later input first, so splicing
        // one input does not move the other.
        let mut reads = std::mem::take(&mut self.float_add_reads);
        reads.sort_by_key(|&(node, pos)| (node, std::cmp::Reverse(pos)));
        for (node, pos) in reads {
            let t = self.g.nodes[node].inputs[pos];
            if self.g.tensors[t].quant.is_none() {
                continue;
            }
            let Some(p) = self.g.producer(t) else {
                continue;
            };
            let inner = self.g.nodes[p].inputs.clone();
            let n = &mut self.g.nodes[node];
            if n.op != Op::Add || n.inputs.len() - 1 + inner.len() > MAX_ADD_INPUTS {
                continue;
            }
            n.inputs.splice(pos..=pos, inner);
        }
    }

    /// The shape of tensor `t`.
    fn shape(&self, t: usize) -> Vec<usize> {
        self.g.tensors[t].shape.clone()
    }

    /// `[C, H, W]` of a `[1, C, H, W]` tensor.
    fn image(&self, t: usize) -> Result<[usize; 3]> {
        match self.shape(t).as_slice() {
            [1, c, h, w] => Ok([*c, *h, *w]),
            s => bail!("expects a [1, C, H, W] input, got {s:?}"),
        }
    }
}

/// The model's name: the file stem, or for `models/<name>/model*.onnx` the directory's name
/// (plus what follows `model` in the stem).
fn model_name(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map_or("model".into(), |s| s.to_string_lossy().into_owned());
    match (
        stem.strip_prefix("model"),
        path.parent().and_then(|p| p.file_name()),
    ) {
        (Some(rest), Some(dir)) => format!("{}{rest}", dir.to_string_lossy()),
        _ => stem,
    }
}

/// Decode an ONNX file, import it into the IR, then check it with tract (types and shapes of
/// the whole graph, cross-checked against the importer's output shapes).
pub fn import(path: &Path) -> Result<Graph> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let proto = onnx().proto_model_for_read(&mut &bytes[..]).map_err(|e| {
        anyhow!(
            "{} is not an ONNX model (protobuf decoding failed: {e})",
            path.display()
        )
    })?;
    let graph = proto
        .graph
        .as_ref()
        .filter(|g| !g.node.is_empty() && !g.output.is_empty())
        .ok_or_else(|| {
            anyhow!(
                "{} is not an ONNX model (no graph, nodes or outputs)",
                path.display()
            )
        })?;
    let facts = TractFacts::of(&proto);
    // Reject unsupported ops first, with the node's name. A node tract computes from
    // constants alone is folded whatever its op (shape arithmetic of exports).
    let mut ops = Vec::with_capacity(graph.node.len());
    for n in &graph.node {
        if find_op(&n.op_type).is_none() && facts.folds(n) {
            ops.push(None);
            continue;
        }
        if !(n.domain.is_empty() || n.domain == "ai.onnx") {
            bail!(
                "node {} ({}): operators of domain {} are not supported (only standard ONNX ops: {})",
                label(n),
                n.op_type,
                n.domain,
                supported_ops().join(", ")
            );
        }
        let Some(op) = find_op(&n.op_type) else {
            bail!(
                "node {} ({}): unsupported op type; supported: {}",
                label(n),
                n.op_type,
                supported_ops().join(", ")
            );
        };
        ops.push(Some(op));
    }
    let opset = proto
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map_or(13, |o| o.version);
    let mut imp = Importer {
        g: Graph {
            name: model_name(path),
            tensors: Vec::new(),
            nodes: Vec::new(),
            input: 0,
            outputs: Vec::new(),
            manifest_json: proto
                .metadata_props
                .iter()
                .find(|p| p.key == MANIFEST_KEY)
                .map(|p| p.value.clone()),
            prequantized: false,
        },
        values: HashMap::new(),
        opset,
        add_outputs: HashSet::new(),
        float_add_reads: Vec::new(),
        float_reads: graph
            .node
            .iter()
            .filter(|n| !matches!(n.op_type.as_str(), "QuantizeLinear" | "Shape"))
            .flat_map(|n| n.input.iter().cloned())
            .chain(graph.output.iter().map(|o| o.name.clone()))
            .collect(),
        facts,
    };
    for t in &graph.initializer {
        let (d, v) = read_tensor(t).with_context(|| format!("initializer {}", t.name))?;
        imp.values.insert(t.name.clone(), Value::Raw(d, v));
    }
    let inputs: Vec<&pb::ValueInfoProto> = graph
        .input
        .iter()
        .filter(|i| !imp.values.contains_key(&i.name))
        .collect();
    if inputs.len() != 1 {
        bail!(
            "the model must have exactly one input, it has {}",
            inputs.len()
        );
    }
    let vi = inputs[0];
    let tt = match vi.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(pb::type_proto::Value::TensorType(t)) => t,
        _ => bail!("input {}: not a tensor", vi.name),
    };
    if tt.elem_type != 1 {
        bail!(
            "input {}: element type {} (float32 expected)",
            vi.name,
            dtype_name(tt.elem_type)
        );
    }
    let mut shape = Vec::new();
    for d in tt.shape.as_ref().map_or(&[][..], |s| &s.dim[..]) {
        match d.value {
            Some(pb::tensor_shape_proto::dimension::Value::DimValue(v)) if v > 0 => {
                shape.push(usize::try_from(v).context("input dimension")?)
            }
            _ => bail!(
                "input {}: dynamic shape (dimension {:?}); export with static shapes",
                vi.name,
                d.value
            ),
        }
    }
    if !matches!(shape.as_slice(), [1, _, _, _] | [1, _]) {
        bail!(
            "input {}: shape {shape:?}, expected [1, C, H, W] or [1, K]",
            vi.name
        );
    }
    if !fits(&shape) {
        bail!("input {}: shape {shape:?} is too large", vi.name);
    }
    let x = imp.add_tensor(&vi.name, shape, None);
    imp.g.input = x;
    imp.values.insert(vi.name.clone(), Value::Tensor(x));
    for (n, op) in graph.node.iter().zip(ops) {
        match op {
            Some(op) if !imp.folds(n) => imp
                .node(op, n)
                .with_context(|| format!("node {} ({})", label(n), n.op_type))?,
            _ => imp.fold(n),
        }
    }
    imp.flatten_float_add_chains();
    for o in &graph.output {
        let t = match imp.values.get(&o.name) {
            Some(Value::Tensor(t)) | Some(Value::Quantized(t)) => *t,
            _ => bail!(
                "graph output {} is not computed by a supported node",
                o.name
            ),
        };
        if imp.g.tensors[t].konst.is_some() || t == x {
            bail!("graph output {} must be computed from the input", o.name);
        }
        imp.g.outputs.push((o.name.clone(), t));
    }
    // tract: operator set, types and shapes of the whole graph; a panic is an error.
    let typed = catch_panic(|| -> TractResult<TypedModel> {
        onnx()
            .model_for_proto_model(&proto)?
            .into_typed()?
            .into_decluttered()
    })
    .map_err(|msg| {
        anyhow!(
            "tract failed (panicked: {}) while loading {}",
            msg.replace('\n', " "),
            path.display()
        )
    })?
    .with_context(|| format!("tract could not load {}", path.display()))?;
    // Cross-check output shapes with tract's inference.
    for (k, outlet) in typed.output_outlets()?.iter().enumerate() {
        let fact = typed.outlet_fact(*outlet)?;
        if let (Some(s), Some((name, t))) = (fact.shape.as_concrete(), imp.g.outputs.get(k)) {
            let mine = &imp.g.tensors[*t].shape;
            if s != mine.as_slice() {
                bail!("output {name}: tract infers shape {s:?}, the importer {mine:?}");
            }
        }
    }
    Ok(imp.g)
}
