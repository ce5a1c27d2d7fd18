//! The part of the TFLite flatbuffer schema (`schema.fbs`, file identifier `TFL3`, schema
//! version 3) that the exporter writes, as plain Rust values and one serializer over the
//! `flatbuffers` crate's builder.
//!
//! Each table is written field by field: a field's slot is `4 + 2 * id`, where `id` is its
//! position in the schema's table (deprecated fields keep their position; a union takes two
//! positions, its type and its value). The numbers below are the schema's, named where they
//! are used.

use flatbuffers::{FlatBufferBuilder, WIPOffset};

/// `TensorType` values used here.
pub mod tensor_type {
    /// 32-bit float.
    pub const FLOAT32: i8 = 0;
    /// 32-bit signed integer (biases, shape and axis operands).
    pub const INT32: i8 = 2;
    /// 8-bit signed integer (activations and weights).
    pub const INT8: i8 = 9;
}

/// `BuiltinOperator` codes used here.
#[allow(missing_docs)]
pub mod op {
    pub const ADD: i32 = 0;
    pub const AVERAGE_POOL_2D: i32 = 1;
    pub const CONCATENATION: i32 = 2;
    pub const CONV_2D: i32 = 3;
    pub const DEPTHWISE_CONV_2D: i32 = 4;
    pub const GATHER: i32 = 36;
    pub const TRANSPOSE: i32 = 39;
    pub const CAST: i32 = 53;
    pub const MIRROR_PAD: i32 = 100;
    pub const MAX_POOL_2D: i32 = 17;
    pub const MUL: i32 = 18;
    pub const RESHAPE: i32 = 22;
    pub const RESIZE_BILINEAR: i32 = 23;
    pub const SOFTMAX: i32 = 25;
    pub const SPLIT: i32 = 49;
    pub const PAD: i32 = 34;
    pub const MEAN: i32 = 40;
    pub const SUB: i32 = 41;
    pub const PRELU: i32 = 54;
    pub const MAXIMUM: i32 = 55;
    pub const MINIMUM: i32 = 57;
    pub const PADV2: i32 = 60;
    pub const SLICE: i32 = 65;
    pub const TRANSPOSE_CONV: i32 = 67;
    pub const RESIZE_NEAREST_NEIGHBOR: i32 = 97;
}

/// `Padding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    /// Output `ceil(in / stride)`, the padding split with the smaller half first.
    Same = 0,
    /// No padding.
    Valid = 1,
}

/// `ActivationFunctionType` values used here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// No clamp beyond int8.
    None = 0,
    /// Clamp below at the zero point.
    Relu = 1,
    /// Clamp to `[0, 6]` in real values.
    Relu6 = 3,
}

/// An operator's builtin options (the `BuiltinOptions` union members used here).
#[derive(Debug, Clone, PartialEq)]
pub enum Options {
    /// No options table.
    None,
    /// `Conv2DOptions` (union index 1).
    Conv2d {
        padding: Padding,
        stride: [i32; 2],
        dilation: [i32; 2],
        act: Activation,
    },
    /// `DepthwiseConv2DOptions` (union index 2).
    Depthwise {
        padding: Padding,
        stride: [i32; 2],
        dilation: [i32; 2],
        multiplier: i32,
        act: Activation,
    },
    /// `Pool2DOptions` (union index 5).
    Pool {
        padding: Padding,
        stride: [i32; 2],
        filter: [i32; 2],
        act: Activation,
    },
    /// `SoftmaxOptions` (union index 9).
    Softmax { beta: f32 },
    /// `ConcatenationOptions` (union index 10).
    Concat { axis: i32, act: Activation },
    /// `AddOptions` (union index 11).
    Add { act: Activation },
    /// `ResizeBilinearOptions` (union index 15).
    ResizeBilinear {
        align_corners: bool,
        half_pixel_centers: bool,
    },
    /// `ReshapeOptions` (union index 17).
    Reshape { new_shape: Vec<i32> },
    /// `MulOptions` (union index 21).
    Mul { act: Activation },
    /// `PadOptions` (union index 22).
    Pad,
    /// `ReducerOptions` (union index 27).
    Reducer { keep_dims: bool },
    /// `SubOptions` (union index 28).
    Sub { act: Activation },
    /// `MaximumMinimumOptions` (union index 39).
    MaxMin,
    /// `PadV2Options` (union index 43).
    PadV2,
    /// `GatherOptions` (union index 23).
    Gather { axis: i32 },
    /// `TransposeOptions` (union index 26).
    Transpose,
    /// `MirrorPadOptions` (union index 77): mode 0 is `REFLECT`, 1 `SYMMETRIC`.
    MirrorPad { mode: i8 },
    /// `SliceOptions` (union index 48).
    Slice,
    /// `SplitOptions` (union index 35).
    Split { num_splits: i32 },
    /// `TransposeConvOptions` (union index 49).
    TransposeConv {
        padding: Padding,
        stride: [i32; 2],
        act: Activation,
    },
    /// `ResizeNearestNeighborOptions` (union index 74).
    ResizeNearest {
        align_corners: bool,
        half_pixel_centers: bool,
    },
}

/// `QuantizationParameters`: per-tensor (one entry) or per-channel along `dimension`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Quant {
    /// Scales.
    pub scale: Vec<f32>,
    /// Zero points, one per scale.
    pub zero_point: Vec<i64>,
    /// The quantized dimension of per-channel parameters.
    pub dimension: i32,
}

/// A `Tensor`.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Shape, NHWC for activations.
    pub shape: Vec<i32>,
    /// A `TensorType`.
    pub ty: i8,
    /// Index into the model's buffers (0: no data).
    pub buffer: u32,
    /// Name.
    pub name: String,
    /// Quantization, if any.
    pub quant: Option<Quant>,
}

/// An `Operator`.
#[derive(Debug, Clone, PartialEq)]
pub struct Operator {
    /// Index into the model's operator codes.
    pub opcode: u32,
    /// Input tensor indices.
    pub inputs: Vec<i32>,
    /// Output tensor indices.
    pub outputs: Vec<i32>,
    /// Builtin options.
    pub options: Options,
}

/// A whole single-subgraph `Model`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Model {
    /// `(builtin code, version)` per operator code.
    pub opcodes: Vec<(i32, i32)>,
    /// Tensors of the subgraph.
    pub tensors: Vec<Tensor>,
    /// Subgraph inputs.
    pub inputs: Vec<i32>,
    /// Subgraph outputs.
    pub outputs: Vec<i32>,
    /// Operators in execution order.
    pub operators: Vec<Operator>,
    /// Buffers; buffer 0 must be empty.
    pub buffers: Vec<Vec<u8>>,
    /// Subgraph name.
    pub name: String,
    /// Model description.
    pub description: String,
}

/// Slot of field `id` of a table.
const fn slot(id: u16) -> u16 {
    4 + 2 * id
}

fn options<'b>(
    b: &mut FlatBufferBuilder<'b>,
    o: &Options,
) -> Option<(u8, WIPOffset<flatbuffers::UnionWIPOffset>)> {
    let (ty, start) = match o {
        Options::None => return None,
        Options::Conv2d {
            padding,
            stride,
            dilation,
            act,
        } => {
            let s = b.start_table();
            b.push_slot::<i8>(slot(0), *padding as i8, 0);
            b.push_slot::<i32>(slot(1), stride[1], 0);
            b.push_slot::<i32>(slot(2), stride[0], 0);
            b.push_slot::<i8>(slot(3), *act as i8, 0);
            b.push_slot::<i32>(slot(4), dilation[1], 1);
            b.push_slot::<i32>(slot(5), dilation[0], 1);
            (1, s)
        }
        Options::Depthwise {
            padding,
            stride,
            dilation,
            multiplier,
            act,
        } => {
            let s = b.start_table();
            b.push_slot::<i8>(slot(0), *padding as i8, 0);
            b.push_slot::<i32>(slot(1), stride[1], 0);
            b.push_slot::<i32>(slot(2), stride[0], 0);
            b.push_slot::<i32>(slot(3), *multiplier, 0);
            b.push_slot::<i8>(slot(4), *act as i8, 0);
            b.push_slot::<i32>(slot(5), dilation[1], 1);
            b.push_slot::<i32>(slot(6), dilation[0], 1);
            (2, s)
        }
        Options::Pool {
            padding,
            stride,
            filter,
            act,
        } => {
            let s = b.start_table();
            b.push_slot::<i8>(slot(0), *padding as i8, 0);
            b.push_slot::<i32>(slot(1), stride[1], 0);
            b.push_slot::<i32>(slot(2), stride[0], 0);
            b.push_slot::<i32>(slot(3), filter[1], 0);
            b.push_slot::<i32>(slot(4), filter[0], 0);
            b.push_slot::<i8>(slot(5), *act as i8, 0);
            (5, s)
        }
        Options::Concat { axis, act } => {
            let s = b.start_table();
            b.push_slot::<i32>(slot(0), *axis, 0);
            b.push_slot::<i8>(slot(1), *act as i8, 0);
            (10, s)
        }
        Options::Add { act } => {
            let s = b.start_table();
            b.push_slot::<i8>(slot(0), *act as i8, 0);
            (11, s)
        }
        Options::Reshape { new_shape } => {
            let v = b.create_vector(new_shape);
            let s = b.start_table();
            b.push_slot_always(slot(0), v);
            (17, s)
        }
        Options::Pad => (22, b.start_table()),
        Options::Reducer { keep_dims } => {
            let s = b.start_table();
            b.push_slot::<bool>(slot(0), *keep_dims, false);
            (27, s)
        }
        Options::Sub { act } => {
            let s = b.start_table();
            b.push_slot::<i8>(slot(0), *act as i8, 0);
            (28, s)
        }
        Options::MaxMin => (39, b.start_table()),
        Options::PadV2 => (43, b.start_table()),
        Options::Gather { axis } => {
            let s = b.start_table();
            b.push_slot::<i32>(slot(0), *axis, 0);
            (23, s)
        }
        Options::Transpose => (26, b.start_table()),
        Options::Softmax { beta } => {
            let s = b.start_table();
            b.push_slot::<f32>(slot(0), *beta, 0.0);
            (9, s)
        }
        // ResizeBilinearOptions: new_height 0 and new_width 1 (deprecated), align_corners 2,
        // half_pixel_centers 3.
        Options::ResizeBilinear {
            align_corners,
            half_pixel_centers,
        } => {
            let s = b.start_table();
            b.push_slot::<bool>(slot(2), *align_corners, false);
            b.push_slot::<bool>(slot(3), *half_pixel_centers, false);
            (15, s)
        }
        Options::Mul { act } => {
            let s = b.start_table();
            b.push_slot::<i8>(slot(0), *act as i8, 0);
            (21, s)
        }
        Options::Slice => (48, b.start_table()),
        Options::Split { num_splits } => {
            let s = b.start_table();
            b.push_slot::<i32>(slot(0), *num_splits, 0);
            (35, s)
        }
        // TransposeConvOptions: padding 0, stride_w 1, stride_h 2, fused activation 3.
        Options::TransposeConv {
            padding,
            stride,
            act,
        } => {
            let s = b.start_table();
            b.push_slot::<i8>(slot(0), *padding as i8, 0);
            b.push_slot::<i32>(slot(1), stride[1], 0);
            b.push_slot::<i32>(slot(2), stride[0], 0);
            b.push_slot::<i8>(slot(3), *act as i8, 0);
            (49, s)
        }
        Options::ResizeNearest {
            align_corners,
            half_pixel_centers,
        } => {
            let s = b.start_table();
            b.push_slot::<bool>(slot(0), *align_corners, false);
            b.push_slot::<bool>(slot(1), *half_pixel_centers, false);
            (74, s)
        }
        Options::MirrorPad { mode } => {
            let s = b.start_table();
            b.push_slot::<i8>(slot(0), *mode, 0);
            (77, s)
        }
    };
    Some((ty, b.end_table(start).as_union_value()))
}

impl Model {
    /// The flatbuffer bytes, with the `TFL3` file identifier.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = FlatBufferBuilder::with_capacity(
            1024 + self.buffers.iter().map(Vec::len).sum::<usize>(),
        );
        // Buffers (table Buffer: data = 0).
        let buffers: Vec<_> = self
            .buffers
            .iter()
            .map(|d| {
                let data = (!d.is_empty()).then(|| b.create_vector(d));
                let s = b.start_table();
                if let Some(data) = data {
                    b.push_slot_always(slot(0), data);
                }
                b.end_table(s)
            })
            .collect();
        // Tensors (table Tensor: shape 0, type 1, buffer 2, name 3, quantization 4).
        let tensors: Vec<_> = self
            .tensors
            .iter()
            .map(|t| {
                let shape = b.create_vector(&t.shape);
                let name = b.create_string(&t.name);
                // QuantizationParameters: min 0, max 1, scale 2, zero_point 3,
                // details_type 4, details 5, quantized_dimension 6.
                let quant = t.quant.as_ref().map(|q| {
                    let scale = b.create_vector(&q.scale);
                    let zp = b.create_vector(&q.zero_point);
                    let s = b.start_table();
                    b.push_slot_always(slot(2), scale);
                    b.push_slot_always(slot(3), zp);
                    b.push_slot::<i32>(slot(6), q.dimension, 0);
                    b.end_table(s)
                });
                let s = b.start_table();
                b.push_slot_always(slot(0), shape);
                b.push_slot::<i8>(slot(1), t.ty, 0);
                b.push_slot::<u32>(slot(2), t.buffer, 0);
                b.push_slot_always(slot(3), name);
                if let Some(q) = quant {
                    b.push_slot_always(slot(4), q);
                }
                b.end_table(s)
            })
            .collect();
        // Operators (table Operator: opcode_index 0, inputs 1, outputs 2,
        // builtin_options_type 3, builtin_options 4).
        let operators: Vec<_> = self
            .operators
            .iter()
            .map(|o| {
                let inputs = b.create_vector(&o.inputs);
                let outputs = b.create_vector(&o.outputs);
                let opts = options(&mut b, &o.options);
                let s = b.start_table();
                b.push_slot::<u32>(slot(0), o.opcode, 0);
                b.push_slot_always(slot(1), inputs);
                b.push_slot_always(slot(2), outputs);
                if let Some((ty, v)) = opts {
                    b.push_slot::<u8>(slot(3), ty, 0);
                    b.push_slot_always(slot(4), v);
                }
                b.end_table(s)
            })
            .collect();
        // SubGraph: tensors 0, inputs 1, outputs 2, operators 3, name 4.
        let tensors = b.create_vector(&tensors);
        let inputs = b.create_vector(&self.inputs);
        let outputs = b.create_vector(&self.outputs);
        let operators = b.create_vector(&operators);
        let name = b.create_string(&self.name);
        let s = b.start_table();
        b.push_slot_always(slot(0), tensors);
        b.push_slot_always(slot(1), inputs);
        b.push_slot_always(slot(2), outputs);
        b.push_slot_always(slot(3), operators);
        b.push_slot_always(slot(4), name);
        let subgraph = b.end_table(s);
        // OperatorCode: deprecated_builtin_code 0 (byte), custom_code 1, version 2 (default 1),
        // builtin_code 3. Readers take the larger of the two codes.
        let opcodes: Vec<_> = self
            .opcodes
            .iter()
            .map(|&(code, version)| {
                let s = b.start_table();
                b.push_slot::<i8>(slot(0), code.min(127) as i8, 0);
                b.push_slot::<i32>(slot(2), version, 1);
                b.push_slot::<i32>(slot(3), code, 0);
                b.end_table(s)
            })
            .collect();
        // Model: version 0, operator_codes 1, subgraphs 2, description 3, buffers 4.
        let opcodes = b.create_vector(&opcodes);
        let subgraphs = b.create_vector(&[subgraph]);
        let description = b.create_string(&self.description);
        let buffers = b.create_vector(&buffers);
        let s = b.start_table();
        b.push_slot::<u32>(slot(0), 3, 0);
        b.push_slot_always(slot(1), opcodes);
        b.push_slot_always(slot(2), subgraphs);
        b.push_slot_always(slot(3), description);
        b.push_slot_always(slot(4), buffers);
        let root = b.end_table(s);
        b.finish(root, Some("TFL3"));
        b.finished_data().to_vec()
    }
}
