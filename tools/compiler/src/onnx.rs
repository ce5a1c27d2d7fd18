//! ONNX import: tract-onnx decodes and checks the file (protobuf, operator set, shape
//! inference); the compiler then reads the node list into its [`Graph`] IR, resolving
//! QuantizeLinear/DequantizeLinear pairs (QDQ) and QLinear* ops (QOperator) into real-valued
//! nodes with quantization annotations.

use crate::ir::{Act, Const, ConstQuant, Graph, Node, Op, QParams, Tensor};
use anyhow::{Context, Result, anyhow, bail};
use std::collections::{HashMap, HashSet};

use edgeslim_runtime::format::MAX_ADD_INPUTS;
use std::path::Path;
use tract_onnx::pb;
use tract_onnx::prelude::*;

/// The metadata key of the slimming manifest.
pub const MANIFEST_KEY: &str = "edgeslim.manifest";

/// ONNX operator types the importer accepts.
pub const SUPPORTED_OPS: &[&str] = &[
    "Conv",
    "Gemm",
    "MatMul",
    "Relu",
    "Clip",
    "Add",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "Flatten",
    "Reshape",
    "Concat",
    "BatchNormalization",
    "Softmax",
    "Identity",
    "Dropout",
    "Constant",
    "QuantizeLinear",
    "DequantizeLinear",
    "QLinearConv",
    "QLinearMatMul",
];

/// Element data of a constant as the file stores it.
#[derive(Debug, Clone)]
enum Data {
    F32(Vec<f32>),
    I8(Vec<i8>),
    U8(Vec<u8>),
    I32(Vec<i32>),
    I64(Vec<i64>),
}

impl Data {
    fn to_f32(&self) -> Vec<f32> {
        match self {
            Data::F32(v) => v.clone(),
            Data::I8(v) => v.iter().map(|&x| x as f32).collect(),
            Data::U8(v) => v.iter().map(|&x| x as f32).collect(),
            Data::I32(v) => v.iter().map(|&x| x as f32).collect(),
            Data::I64(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }
    fn len(&self) -> usize {
        match self {
            Data::F32(v) => v.len(),
            Data::I8(v) => v.len(),
            Data::U8(v) => v.len(),
            Data::I32(v) => v.len(),
            Data::I64(v) => v.len(),
        }
    }
}

fn dtype_name(t: i32) -> &'static str {
    match t {
        1 => "float32",
        2 => "uint8",
        3 => "int8",
        5 => "int16",
        6 => "int32",
        7 => "int64",
        10 => "float16",
        11 => "float64",
        _ => "another type",
    }
}

fn read_tensor(t: &pb::TensorProto) -> Result<(Vec<usize>, Data)> {
    let dims: Vec<usize> = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| anyhow!("negative dimension {d}")))
        .collect::<Result<_>>()?;
    let n: usize = dims.iter().product();
    if t.data_location == Some(1) {
        bail!(
            "tensor {} uses external data, which is not supported",
            t.name
        );
    }
    let raw = &t.raw_data;
    let data = match t.data_type {
        1 => Data::F32(if raw.is_empty() {
            t.float_data.clone()
        } else {
            raw.chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        }),
        2 => Data::U8(if raw.is_empty() {
            t.int32_data.iter().map(|&x| x as u8).collect()
        } else {
            raw.clone()
        }),
        3 => Data::I8(if raw.is_empty() {
            t.int32_data.iter().map(|&x| x as i8).collect()
        } else {
            raw.iter().map(|&x| x as i8).collect()
        }),
        6 => Data::I32(if raw.is_empty() {
            t.int32_data.clone()
        } else {
            raw.chunks_exact(4)
                .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        }),
        7 => Data::I64(if raw.is_empty() {
            t.int64_data.clone()
        } else {
            raw.chunks_exact(8)
                .map(|b| i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
                .collect()
        }),
        other => bail!(
            "tensor {}: element type {} is not supported (float32, int8, uint8, int32, int64)",
            t.name,
            dtype_name(other)
        ),
    };
    if data.len() != n {
        bail!(
            "tensor {}: {} values for shape {:?}",
            t.name,
            data.len(),
            dims
        );
    }
    Ok((dims, data))
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

struct Importer {
    g: Graph,
    values: HashMap<String, Value>,
    opset: i64,
    /// Outputs of Adds of two activations, by ONNX name: read by name (not through a
    /// DequantizeLinear), they are unrounded float sums.
    add_outputs: HashSet<String>,
    /// `(node, input position)` of Adds reading such a float sum directly.
    float_add_reads: Vec<(usize, usize)>,
}

fn attr<'a>(n: &'a pb::NodeProto, name: &str) -> Option<&'a pb::AttributeProto> {
    n.attribute.iter().find(|a| a.name == name)
}
fn attr_i(n: &pb::NodeProto, name: &str, default: i64) -> i64 {
    attr(n, name).map_or(default, |a| a.i)
}
fn attr_f(n: &pb::NodeProto, name: &str, default: f32) -> f32 {
    attr(n, name).map_or(default, |a| a.f)
}
fn attr_ints(n: &pb::NodeProto, name: &str) -> Option<Vec<i64>> {
    attr(n, name).map(|a| a.ints.clone())
}
fn attr_s(n: &pb::NodeProto, name: &str) -> String {
    attr(n, name).map_or(String::new(), |a| {
        String::from_utf8_lossy(&a.s).into_owned()
    })
}

fn pair(v: &[i64], what: &str) -> Result<[usize; 2]> {
    match v {
        [a, b] if *a >= 0 && *b >= 0 => Ok([*a as usize, *b as usize]),
        _ => bail!("{what} must have two non-negative values (2-D), got {v:?}"),
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
    let ek = d * (k - 1) + 1;
    let padded = i + p0 + p1;
    if padded < ek || s == 0 {
        bail!("window larger than the padded input");
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
    let auto = attr_s(n, "auto_pad");
    match auto.as_str() {
        "" | "NOTSET" => {
            let p = attr_ints(n, "pads").unwrap_or(vec![0; 4]);
            match p.as_slice() {
                [a, b, c, e] if p.iter().all(|&x| x >= 0) => {
                    Ok([*a as usize, *b as usize, *c as usize, *e as usize])
                }
                _ => bail!("pads must have four non-negative values, got {p:?}"),
            }
        }
        "VALID" => Ok([0; 4]),
        "SAME_UPPER" | "SAME_LOWER" => {
            let mut pads = [0usize; 4];
            for a in 0..2 {
                let out = hw[a].div_ceil(s[a]);
                let total = ((out - 1) * s[a] + d[a] * (k[a] - 1) + 1).saturating_sub(hw[a]);
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
    fn add_tensor(&mut self, name: &str, shape: Vec<usize>, konst: Option<Const>) -> usize {
        self.g.tensors.push(Tensor {
            name: name.into(),
            shape,
            konst,
            quant: None,
        });
        self.g.tensors.len() - 1
    }

    fn value(&self, name: &str) -> Result<&Value> {
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

    fn is_const(&self, name: &str) -> bool {
        match self.values.get(name) {
            Some(Value::Raw(..)) => true,
            Some(Value::Tensor(t)) => self.g.tensors[*t].konst.is_some(),
            _ => false,
        }
    }

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
        let raw = data.to_f32();
        let real: Vec<f32> = raw
            .iter()
            .enumerate()
            .map(|(i, &q)| {
                (q - zps[per(zps.len(), i).min(zps.len() - 1)] as f32)
                    * scales[per(scales.len(), i)]
            })
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

    fn push(&mut self, n: &pb::NodeProto, op: Op, inputs: Vec<usize>, shape: Vec<usize>) -> usize {
        let out_name = n.output.first().cloned().unwrap_or_default();
        let t = self.add_tensor(&out_name, shape, None);
        self.values.insert(out_name.clone(), Value::Tensor(t));
        self.g.nodes.push(Node {
            name: if n.name.is_empty() {
                out_name
            } else {
                n.name.clone()
            },
            op_type: n.op_type.clone(),
            op,
            inputs,
            output: t,
            act: Act::None,
            positions: 1,
            dead: false,
        });
        t
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

    fn shape(&self, t: usize) -> Vec<usize> {
        self.g.tensors[t].shape.clone()
    }

    fn image(&self, t: usize) -> Result<[usize; 3]> {
        match self.shape(t).as_slice() {
            [1, c, h, w] => Ok([*c, *h, *w]),
            s => bail!("expects a [1, C, H, W] input, got {s:?}"),
        }
    }

    fn node(&mut self, n: &pb::NodeProto) -> Result<()> {
        let inp = |k: usize| n.input.get(k).map(String::as_str).unwrap_or("");
        let out_name = n.output.first().cloned().unwrap_or_default();
        match n.op_type.as_str() {
            "Constant" => {
                let a = attr(n, "value")
                    .and_then(|a| a.t.as_ref())
                    .ok_or_else(|| anyhow!("only the `value` attribute is supported"))?;
                let (d, v) = read_tensor(a)?;
                self.values.insert(out_name, Value::Raw(d, v));
            }
            "QuantizeLinear" => {
                if self.is_const(inp(0)) {
                    // Quantize of a constant: keep the real values.
                    let t = self.tensor_in(inp(0))?;
                    self.values.insert(out_name, Value::Tensor(t));
                } else {
                    let x = self.activation(inp(0), "input")?;
                    let q = self.qparams(inp(1), Some(inp(2)))?;
                    self.annotate(x, q);
                    self.values.insert(out_name, Value::Quantized(x));
                }
            }
            "DequantizeLinear" => match self.value(inp(0))?.clone() {
                Value::Quantized(x) | Value::Tensor(x) if self.g.tensors[x].konst.is_none() => {
                    let q = self.qparams(inp(1), Some(inp(2)))?;
                    self.annotate(x, q);
                    self.values.insert(out_name, Value::Tensor(x));
                }
                _ => {
                    let axis = attr_i(n, "axis", 1);
                    let dims = self.raw(inp(0))?.0;
                    let axis = if axis < 0 {
                        axis + dims.len() as i64
                    } else {
                        axis
                    };
                    let per_axis = self.raw(inp(1))?.1.len() > 1;
                    self.dequant_const(
                        &out_name,
                        inp(0),
                        inp(1),
                        Some(inp(2)),
                        if per_axis { axis.max(0) as usize } else { 0 },
                    )?;
                    self.g.prequantized = true;
                }
            },
            "Identity" | "Dropout" => {
                let v = self.value(inp(0))?.clone();
                self.values.insert(out_name, v);
            }
            "Conv" | "QLinearConv" => {
                let q = n.op_type == "QLinearConv";
                let x = self.activation(inp(0), "input")?;
                let [c, h, w] = self.image(x)?;
                let wt = if q {
                    let xq = self.qparams(inp(1), Some(inp(2)))?;
                    self.annotate(x, xq);
                    self.dequant_const(&format!("{}/W", n.name), inp(3), inp(4), Some(inp(5)), 0)?
                } else {
                    if !self.is_const(inp(1)) {
                        bail!("weight {} is not a constant", inp(1));
                    }
                    self.tensor_in(inp(1))?
                };
                let ws = self.shape(wt);
                let [o, ipg, kh, kw] = match ws.as_slice() {
                    [a, b, c2, d] => [*a, *b, *c2, *d],
                    _ => bail!("weights must be 4-D (2-D convolution), got {ws:?}"),
                };
                let group = attr_i(n, "group", 1).max(1) as usize;
                if ipg * group != c || o % group != 0 {
                    bail!("weights {ws:?} do not match {c} input channels in {group} groups");
                }
                let strides = pair(&attr_ints(n, "strides").unwrap_or(vec![1, 1]), "strides")?;
                let dilations = pair(
                    &attr_ints(n, "dilations").unwrap_or(vec![1, 1]),
                    "dilations",
                )?;
                let pads = window_pads(n, [h, w], [kh, kw], strides, dilations)?;
                let oh = out_dim(h, kh, strides[0], pads[0], pads[2], dilations[0], false)?;
                let ow = out_dim(w, kw, strides[1], pads[1], pads[3], dilations[1], false)?;
                let mut inputs = vec![x, wt];
                let bias_name = if q { inp(8) } else { inp(2) };
                if !bias_name.is_empty() {
                    let b = if q {
                        let s_x = self.g.tensors[x].quant.map_or(1.0, |q| q.scale);
                        let (_, bd) = self.raw(bias_name)?;
                        let s_w = self.g.tensors[wt]
                            .konst
                            .as_ref()
                            .and_then(|c| c.quant.as_ref())
                            .map(|q| q.scales.clone())
                            .ok_or_else(|| {
                                anyhow!("QLinearConv weights must be int8 with zero point 0")
                            })?;
                        let real = bd
                            .to_f32()
                            .iter()
                            .enumerate()
                            .map(|(i, &v)| v * s_x * s_w[i.min(s_w.len() - 1)])
                            .collect();
                        self.add_tensor(
                            bias_name,
                            vec![o],
                            Some(Const {
                                data: real,
                                quant: None,
                            }),
                        )
                    } else {
                        self.tensor_in(bias_name)?
                    };
                    if self.g.tensors[b]
                        .konst
                        .as_ref()
                        .is_none_or(|c| c.data.len() != o)
                    {
                        bail!("bias {bias_name} must be a constant of {o} values");
                    }
                    inputs.push(b);
                }
                let y = self.push(
                    n,
                    Op::Conv {
                        strides,
                        pads,
                        dilations,
                        group,
                    },
                    inputs,
                    vec![1, o, oh, ow],
                );
                if q {
                    let yq = self.qparams(inp(6), Some(inp(7)))?;
                    self.annotate(y, yq);
                    self.values.insert(out_name, Value::Tensor(y));
                }
            }
            "Gemm" | "MatMul" | "QLinearMatMul" => {
                let x = self.activation(inp(0), "input")?;
                let k = match self.shape(x).as_slice() {
                    [1, k] => *k,
                    s => bail!("expects a [1, K] input, got {s:?}"),
                };
                let (w_name, trans_b) = match n.op_type.as_str() {
                    "Gemm" => {
                        if attr_i(n, "transA", 0) != 0 {
                            bail!("transA = 1 is not supported");
                        }
                        (inp(1), attr_i(n, "transB", 0) != 0)
                    }
                    "MatMul" => (inp(1), false),
                    _ => (inp(3), false),
                };
                if !self.is_const(w_name) {
                    bail!(
                        "weight {w_name} is not a constant (only constant weights are supported)"
                    );
                }
                // Normalise to W [O, K] (rows are outputs).
                let (wd, wv, wq) = if n.op_type == "QLinearMatMul" {
                    let xq = self.qparams(inp(1), Some(inp(2)))?;
                    self.annotate(x, xq);
                    let t = self.dequant_const(
                        &format!("{}/W", n.name),
                        inp(3),
                        inp(4),
                        Some(inp(5)),
                        1,
                    )?;
                    let c = self.g.tensors[t].konst.clone().unwrap_or(Const {
                        data: vec![],
                        quant: None,
                    });
                    let (_, raw) = self.raw(inp(3))?;
                    let s = self.raw(inp(4))?.1.to_f32();
                    let zq = match self.raw(inp(5)) {
                        Ok((_, Data::I8(z))) => z.iter().all(|&z| z == 0),
                        _ => false,
                    };
                    let q = match raw {
                        Data::I8(v) if zq => Some((v, s)),
                        _ => None,
                    };
                    (self.shape(t), c.data, q)
                } else {
                    let t = self.tensor_in(w_name)?;
                    let c = self.g.tensors[t].konst.clone().unwrap_or(Const {
                        data: vec![],
                        quant: None,
                    });
                    let q = c
                        .quant
                        .as_ref()
                        .map(|q| (q.values.clone(), q.scales.clone()));
                    (self.shape(t), c.data, q)
                };
                let (rows, cols) = match wd.as_slice() {
                    [a, b] => (*a, *b),
                    s => bail!("weights must be 2-D, got {s:?}"),
                };
                let (o, kk) = if trans_b { (rows, cols) } else { (cols, rows) };
                if kk != k {
                    bail!("weights {wd:?} do not match {k} input features");
                }
                let mut w = vec![0f32; o * k];
                let mut wq8 = wq.as_ref().map(|_| vec![0i8; o * k]);
                for r in 0..rows {
                    for c2 in 0..cols {
                        let (oo, ii) = if trans_b { (r, c2) } else { (c2, r) };
                        w[oo * k + ii] = wv[r * cols + c2];
                        if let (Some(d), Some((v, _))) = (wq8.as_mut(), wq.as_ref()) {
                            d[oo * k + ii] = v[r * cols + c2];
                        }
                    }
                }
                let alpha = attr_f(n, "alpha", 1.0);
                let beta = attr_f(n, "beta", 1.0);
                let quant = match (wq8, wq) {
                    (Some(values), Some((_, s))) if alpha == 1.0 => {
                        // Per-tensor, or per output (ONNX axis of W [K, O] is 1; of W^T [O, K] 0).
                        let scales = if s.len() == 1 { vec![s[0]; o] } else { s };
                        (scales.len() == o).then_some(ConstQuant { values, scales })
                    }
                    _ => None,
                };
                if alpha != 1.0 {
                    w.iter_mut().for_each(|v| *v *= alpha);
                }
                let wt = self.add_tensor(
                    &format!("{}/W", n.name),
                    vec![o, k],
                    Some(Const { data: w, quant }),
                );
                let mut inputs = vec![x, wt];
                let bias_name = if n.op_type == "Gemm" { inp(2) } else { "" };
                if !bias_name.is_empty() {
                    let (bd, bv) = self.raw(bias_name)?;
                    let bv = bv.to_f32();
                    let data: Vec<f32> = if bv.len() == 1 {
                        vec![bv[0] * beta; o]
                    } else if bv.len() == o {
                        bv.iter().map(|v| v * beta).collect()
                    } else {
                        bail!("bias {bias_name} of shape {bd:?} does not broadcast to [1, {o}]");
                    };
                    let b = self.add_tensor(bias_name, vec![o], Some(Const { data, quant: None }));
                    inputs.push(b);
                }
                let y = self.push(n, Op::Gemm, inputs, vec![1, o]);
                if n.op_type == "QLinearMatMul" {
                    let yq = self.qparams(inp(6), Some(inp(7)))?;
                    self.annotate(y, yq);
                }
            }
            "Relu" => {
                let x = self.activation(inp(0), "input")?;
                let s = self.shape(x);
                self.push(n, Op::Relu, vec![x], s);
            }
            "Clip" => {
                let x = self.activation(inp(0), "input")?;
                let bound = |me: &Self, name: &str, default: f32| -> Result<f32> {
                    if name.is_empty() {
                        return Ok(default);
                    }
                    let v = me.raw(name)?.1.to_f32();
                    v.first()
                        .copied()
                        .ok_or_else(|| anyhow!("empty bound {name}"))
                };
                let (lo, hi) = if self.opset < 11 {
                    (
                        attr_f(n, "min", f32::NEG_INFINITY),
                        attr_f(n, "max", f32::INFINITY),
                    )
                } else {
                    (
                        bound(self, inp(1), f32::NEG_INFINITY)?,
                        bound(self, inp(2), f32::INFINITY)?,
                    )
                };
                let s = self.shape(x);
                self.push(n, Op::Clip(lo, hi), vec![x], s);
            }
            "Add" => {
                let (ca, cb) = (self.is_const(inp(0)), self.is_const(inp(1)));
                if ca || cb {
                    // A constant operand: a bias, folded into the producer by `bn_fold`.
                    let (x, c) = if ca {
                        (inp(1), inp(0))
                    } else {
                        (inp(0), inp(1))
                    };
                    let x = self.tensor_in(x)?;
                    let c = self.tensor_in(c)?;
                    let s = self.shape(x);
                    self.push(n, Op::Add, vec![x, c], s);
                    return Ok(());
                }
                let a = self.activation(inp(0), "input")?;
                let b = self.activation(inp(1), "input")?;
                if self.shape(a) != self.shape(b) {
                    bail!(
                        "broadcasting is not supported ({:?} + {:?})",
                        self.shape(a),
                        self.shape(b)
                    );
                }
                let s = self.shape(a);
                let node = self.g.nodes.len();
                for (pos, name) in [inp(0), inp(1)].into_iter().enumerate() {
                    if self.add_outputs.contains(name) {
                        self.float_add_reads.push((node, pos));
                    }
                }
                self.push(n, Op::Add, vec![a, b], s);
                self.add_outputs.insert(out_name);
            }
            "MaxPool" | "AveragePool" => {
                let x = self.activation(inp(0), "input")?;
                let [c, h, w] = self.image(x)?;
                let kernel = pair(
                    &attr_ints(n, "kernel_shape").ok_or_else(|| anyhow!("kernel_shape missing"))?,
                    "kernel_shape",
                )?;
                let strides = pair(&attr_ints(n, "strides").unwrap_or(vec![1, 1]), "strides")?;
                if attr_ints(n, "dilations").is_some_and(|d| d.iter().any(|&v| v != 1)) {
                    bail!("dilated pooling is not supported");
                }
                if n.output.len() > 1 && n.output[1..].iter().any(|o| !o.is_empty()) {
                    bail!("the Indices output is not supported");
                }
                let pads = window_pads(n, [h, w], kernel, strides, [1, 1])?;
                let ceil = attr_i(n, "ceil_mode", 0) != 0;
                let oh = out_dim(h, kernel[0], strides[0], pads[0], pads[2], 1, ceil)?;
                let ow = out_dim(w, kernel[1], strides[1], pads[1], pads[3], 1, ceil)?;
                if pads[0] >= kernel[0] || pads[1] >= kernel[1] {
                    bail!("padding must be smaller than the window");
                }
                let op = if n.op_type == "MaxPool" {
                    Op::MaxPool {
                        kernel,
                        strides,
                        pads,
                    }
                } else {
                    Op::AvgPool {
                        kernel,
                        strides,
                        pads,
                        count_include_pad: attr_i(n, "count_include_pad", 0) != 0,
                    }
                };
                self.push(n, op, vec![x], vec![1, c, oh, ow]);
            }
            "GlobalAveragePool" => {
                let x = self.activation(inp(0), "input")?;
                let [c, _, _] = self.image(x)?;
                self.push(n, Op::GlobalAvgPool, vec![x], vec![1, c, 1, 1]);
            }
            "Flatten" | "Reshape" => {
                let x = self.tensor_in(inp(0))?;
                let s = self.shape(x);
                let total: usize = s.iter().product();
                let out = if n.op_type == "Flatten" {
                    let axis = attr_i(n, "axis", 1);
                    if axis != 1 {
                        bail!("only axis = 1 is supported");
                    }
                    vec![1, total / s.first().copied().unwrap_or(1).max(1)]
                } else {
                    let (_, sv) = self.raw(inp(1))?;
                    let spec: Vec<i64> = match sv {
                        Data::I64(v) => v,
                        other => other.to_f32().iter().map(|&v| v as i64).collect(),
                    };
                    let mut out: Vec<usize> = Vec::new();
                    let mut infer = None;
                    for (i, &d) in spec.iter().enumerate() {
                        match d {
                            0 => out.push(s.get(i).copied().unwrap_or(1)),
                            -1 => {
                                infer = Some(i);
                                out.push(1);
                            }
                            d if d > 0 => out.push(d as usize),
                            _ => bail!("bad shape value {d}"),
                        }
                    }
                    if let Some(i) = infer {
                        let rest: usize = out.iter().product();
                        out[i] = total / rest.max(1);
                    }
                    if out.iter().product::<usize>() != total {
                        bail!("cannot reshape {s:?} to {spec:?}");
                    }
                    out
                };
                if out.first() != Some(&1) {
                    bail!("the batch dimension must stay 1, got {out:?}");
                }
                self.push(n, Op::Reshape, vec![x], out);
            }
            "Concat" => {
                let xs: Vec<usize> = n
                    .input
                    .iter()
                    .map(|i| self.activation(i, "input"))
                    .collect::<Result<_>>()?;
                let s0 = self.shape(xs[0]);
                let mut axis = attr_i(n, "axis", 1);
                if axis < 0 {
                    axis += s0.len() as i64;
                }
                if axis != 1 {
                    bail!("only concatenation over channels (axis 1) is supported");
                }
                let mut out = s0.clone();
                out[1] = 0;
                for &x in &xs {
                    let s = self.shape(x);
                    if s.len() != s0.len() || s[2..] != s0[2..] {
                        bail!("inputs differ in spatial shape");
                    }
                    out[1] += s[1];
                }
                self.push(n, Op::Concat, xs, out);
            }
            "BatchNormalization" => {
                let x = self.activation(inp(0), "input")?;
                let ins: Vec<usize> = (1..5)
                    .map(|k| {
                        if !self.is_const(inp(k)) {
                            bail!("parameter {} is not a constant", inp(k));
                        }
                        self.tensor_in(inp(k))
                    })
                    .collect::<Result<_>>()?;
                let s = self.shape(x);
                let mut inputs = vec![x];
                inputs.extend(ins);
                self.push(
                    n,
                    Op::BatchNorm {
                        eps: attr_f(n, "epsilon", 1e-5),
                    },
                    inputs,
                    s,
                );
            }
            "Softmax" => {
                let x = self.activation(inp(0), "input")?;
                let s = self.shape(x);
                let default = if self.opset >= 13 { -1 } else { 1 };
                let mut axis = attr_i(n, "axis", default);
                if axis < 0 {
                    axis += s.len() as i64;
                }
                let spatial: usize = s.iter().skip(2).product();
                if axis != 1 || spatial != 1 {
                    bail!(
                        "only softmax over channels of a [1, C] (or [1, C, 1, 1]) tensor is supported"
                    );
                }
                self.push(n, Op::Softmax, vec![x], s);
            }
            _ => unreachable!("checked before"),
        }
        Ok(())
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

/// Decode and check an ONNX file with tract, then import it.
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
    // Reject unsupported ops first, with the node's name.
    for n in &graph.node {
        if !(n.domain.is_empty() || n.domain == "ai.onnx") {
            bail!(
                "node {} ({}): operators of domain {} are not supported (only standard ONNX ops: {})",
                n.name,
                n.op_type,
                n.domain,
                SUPPORTED_OPS.join(", ")
            );
        }
        if !SUPPORTED_OPS.contains(&n.op_type.as_str()) {
            bail!(
                "node {} ({}): unsupported op type; supported: {}",
                n.name,
                n.op_type,
                SUPPORTED_OPS.join(", ")
            );
        }
    }
    // tract: operator set, types and shapes of the whole graph.
    let typed = std::panic::catch_unwind(|| -> TractResult<TypedModel> {
        onnx()
            .model_for_proto_model(&proto)?
            .into_typed()?
            .into_decluttered()
    })
    .map_err(|_| anyhow!("tract failed (panicked) while loading {}", path.display()))?
    .with_context(|| format!("tract could not load {}", path.display()))?;
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
                shape.push(v as usize)
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
    let x = imp.add_tensor(&vi.name, shape, None);
    imp.g.input = x;
    imp.values.insert(vi.name.clone(), Value::Tensor(x));
    for n in &graph.node {
        imp.node(n)
            .with_context(|| format!("node {} ({})", n.name, n.op_type))?;
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
