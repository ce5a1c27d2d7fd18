//! The compiler's graph IR: ONNX semantics (NCHW shapes, OIHW weights), real-valued tensors,
//! quantization carried as annotations (from QDQ / QOperator files) rather than as nodes.

/// Quantization of an activation tensor, int8 (uint8 files are shifted by 128 on import).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QParams {
    /// Scale.
    pub scale: f32,
    /// Zero point in int8.
    pub zero_point: i32,
}

/// Quantized form of a constant, kept exactly as the file stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConstQuant {
    /// int8 values (weights), same order as the float data.
    pub values: Vec<i8>,
    /// Scales along axis 0 (one, or one per output channel).
    pub scales: Vec<f32>,
}

/// A constant tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Const {
    /// Real values.
    pub data: Vec<f32>,
    /// Exact int8 form, when the file stored the constant quantized.
    pub quant: Option<ConstQuant>,
}

/// A tensor of the graph: an activation (`konst == None`) or a constant.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// ONNX name.
    pub name: String,
    /// ONNX shape (NCHW for images, batch included).
    pub shape: Vec<usize>,
    /// Constant value.
    pub konst: Option<Const>,
    /// Quantization stated by the file (full width).
    pub quant: Option<QParams>,
}

/// Fused output activation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Act {
    /// None.
    None,
    /// `max(x, 0)`.
    Relu,
    /// `clamp(x, lo, hi)`.
    Clip(f32, f32),
}

impl Act {
    /// Apply to a real value.
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Act::None => x,
            Act::Relu => x.max(0.0),
            Act::Clip(lo, hi) => x.clamp(lo, hi),
        }
    }
    /// Compose `self` then `next`.
    pub fn then(self, next: Act) -> Act {
        let (a, b) = self.range();
        let (c, d) = next.range();
        let (lo, hi) = (a.max(c), b.min(d));
        if lo == 0.0 && hi == f32::INFINITY {
            Act::Relu
        } else if lo == f32::NEG_INFINITY && hi == f32::INFINITY {
            Act::None
        } else {
            Act::Clip(lo, hi)
        }
    }
    /// `(lo, hi)` of the clamp.
    pub fn range(self) -> (f32, f32) {
        match self {
            Act::None => (f32::NEG_INFINITY, f32::INFINITY),
            Act::Relu => (0.0, f32::INFINITY),
            Act::Clip(lo, hi) => (lo, hi),
        }
    }
}

/// An element-wise function of one real value (int8 in the runtime: a 256-entry table).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Unary {
    /// `1 / (1 + e^-x)`.
    Sigmoid,
    /// `tanh(x)`.
    Tanh,
    /// `max(0, min(1, alpha * x + beta))`.
    HardSigmoid {
        /// Slope.
        alpha: f32,
        /// Offset.
        beta: f32,
    },
    /// `x * max(0, min(1, x / 6 + 1 / 2))`.
    HardSwish,
    /// `x` for `x >= 0`, else `alpha * x` (also PRelu with one slope).
    LeakyRelu {
        /// Slope of the negative side.
        alpha: f32,
    },
    /// `x` for `x > 0`, else `alpha * (e^x - 1)`.
    Elu {
        /// Scale of the negative side.
        alpha: f32,
    },
    /// `x * mul + add` (Mul, Div, Add or Sub of a scalar constant).
    Affine {
        /// Factor.
        mul: f32,
        /// Offset.
        add: f32,
    },
}

impl Unary {
    /// Apply to a real value (in f64, so the int8 tables round the exact value once).
    pub fn apply(self, x: f64) -> f64 {
        match self {
            Unary::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Unary::Tanh => x.tanh(),
            Unary::HardSigmoid { alpha, beta } => (alpha as f64 * x + beta as f64).clamp(0.0, 1.0),
            Unary::HardSwish => x * (x / 6.0 + 0.5).clamp(0.0, 1.0),
            Unary::LeakyRelu { alpha } => {
                if x >= 0.0 {
                    x
                } else {
                    alpha as f64 * x
                }
            }
            Unary::Elu { alpha } => {
                if x > 0.0 {
                    x
                } else {
                    alpha as f64 * (x.exp() - 1.0)
                }
            }
            Unary::Affine { mul, add } => x * mul as f64 + add as f64,
        }
    }
}

/// Operators the compiler understands (after import).
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Convolution; inputs `[x, W (OIHW), B?]`.
    Conv {
        /// `[h, w]`.
        strides: [usize; 2],
        /// `[top, left, bottom, right]`.
        pads: [usize; 4],
        /// `[h, w]`.
        dilations: [usize; 2],
        /// Groups.
        group: usize,
    },
    /// Fully connected; inputs `[x (2-D), W [O, K] after normalisation, B?]`.
    Gemm,
    /// `max(x, 0)`.
    Relu,
    /// `clamp(x, lo, hi)`.
    Clip(f32, f32),
    /// Element-wise add of two activations.
    Add,
    /// Max pooling.
    MaxPool {
        /// `[h, w]`.
        kernel: [usize; 2],
        /// `[h, w]`.
        strides: [usize; 2],
        /// `[top, left, bottom, right]`.
        pads: [usize; 4],
    },
    /// Average pooling.
    AvgPool {
        /// `[h, w]`.
        kernel: [usize; 2],
        /// `[h, w]`.
        strides: [usize; 2],
        /// `[top, left, bottom, right]`.
        pads: [usize; 4],
        /// Divide by the whole window.
        count_include_pad: bool,
    },
    /// Global average pooling.
    GlobalAvgPool,
    /// Flatten / Reshape to the output's shape.
    Reshape,
    /// Concatenation over channels (axis 1).
    Concat,
    /// Batch normalisation; inputs `[x, scale, bias, mean, var]`.
    BatchNorm {
        /// Epsilon.
        eps: f32,
    },
    /// Softmax over channels.
    Softmax,
    /// Identity (Dropout, Identity, Q->DQ pairs resolved on import).
    Identity,
    /// Element-wise function of one activation.
    Unary(Unary),
    /// Element-wise product of two activations; the second may be `[1, C, 1, 1]`, broadcast
    /// over the positions (squeeze-excitation).
    Mul,
    /// Parametric ReLU; inputs `[x, slope]`, the slope one value per channel.
    PRelu,
    /// Spatial padding.
    Pad {
        /// `[top, left, bottom, right]`.
        pads: [usize; 4],
        /// 0 constant, 1 reflect, 2 edge (the runtime's `PadMode` numbering).
        mode: u32,
        /// Fill value of constant mode.
        value: f32,
    },
    /// Spatial resize (the runtime's `ResizeGeometry`: nearest or bilinear, ONNX coordinate
    /// transformation, nearest rounding, exact scale fractions).
    Resize(edgeslim_runtime::kernels::ResizeGeometry),
    /// Transposed convolution; inputs `[x, W (I, O / group, KH, KW), B?]`.
    ConvTranspose {
        /// `[h, w]`.
        strides: [usize; 2],
        /// `[top, left]`: ONNX's leading pads, which crop the output.
        pads: [usize; 2],
        /// `[h, w]`.
        dilations: [usize; 2],
        /// Groups.
        group: usize,
    },
    /// `sum(coefs[k] * inputs[k])` of activations of equal shape (Sub: `[1, -1]`; Mean:
    /// `1 / n` each); the runtime's Add with signed, scaled input multipliers.
    Sum(Vec<f32>),
    /// Element-wise maximum (or with `min`, minimum) of two activations of one shape.
    MinMax {
        /// Minimum instead of maximum.
        min: bool,
    },
    /// Channels `start + j * step` of the input (Slice, Split, Gather over channels).
    GatherChannels {
        /// First channel.
        start: usize,
        /// Channel step (>= 1).
        step: usize,
    },
    /// Permutation of the axes of a `[1, C, H, W]` tensor (`perm[0] == 0`).
    Transpose {
        /// ONNX's `perm`.
        perm: [usize; 4],
    },
}

/// A node: one op, its inputs (activations and constants) and its one output.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// ONNX node name (or the output name when the node had none).
    pub name: String,
    /// ONNX op type, for messages.
    pub op_type: String,
    /// Operator.
    pub op: Op,
    /// Input tensors.
    pub inputs: Vec<usize>,
    /// Output tensor.
    pub output: usize,
    /// Fused output activation.
    pub act: Act,
    /// For a fully connected layer reading a flattened NCHW `[C, H, W]` tensor directly:
    /// `H * W` (set by reshape elimination); 1 otherwise.
    pub positions: usize,
    /// Removed by a pass.
    pub dead: bool,
}

/// The graph.
#[derive(Debug, Clone, PartialEq)]
pub struct Graph {
    /// Model name.
    pub name: String,
    /// Tensors.
    pub tensors: Vec<Tensor>,
    /// Nodes in topological order.
    pub nodes: Vec<Node>,
    /// The graph input.
    pub input: usize,
    /// Graph outputs: `(ONNX output name, tensor)`.
    pub outputs: Vec<(String, usize)>,
    /// The manifest JSON from `metadata_props`, if any.
    pub manifest_json: Option<String>,
    /// Whether the file stated quantization (QDQ or QOperator).
    pub prequantized: bool,
}

impl Graph {
    /// Live nodes.
    pub fn live(&self) -> impl Iterator<Item = (usize, &Node)> {
        self.nodes.iter().enumerate().filter(|(_, n)| !n.dead)
    }
    /// The live node producing tensor `t`.
    pub fn producer(&self, t: usize) -> Option<usize> {
        self.live().find(|(_, n)| n.output == t).map(|(i, _)| i)
    }
    /// Live nodes reading tensor `t`.
    pub fn consumers(&self, t: usize) -> Vec<usize> {
        self.live()
            .filter(|(_, n)| n.inputs.contains(&t))
            .map(|(i, _)| i)
            .collect()
    }
    /// Whether `t` is a graph output.
    pub fn is_output(&self, t: usize) -> bool {
        self.outputs.iter().any(|o| o.1 == t)
    }
    /// Replace every use of tensor `from` by `to` (node inputs and graph outputs).
    pub fn replace_uses(&mut self, from: usize, to: usize) {
        for n in self.nodes.iter_mut().filter(|n| !n.dead) {
            for i in n.inputs.iter_mut() {
                if *i == from {
                    *i = to;
                }
            }
        }
        for o in self.outputs.iter_mut() {
            if o.1 == from {
                o.1 = to;
            }
        }
    }
    /// The constant value of tensor `t`.
    pub fn konst(&self, t: usize) -> Option<&Const> {
        self.tensors.get(t).and_then(|t| t.konst.as_ref())
    }
}
