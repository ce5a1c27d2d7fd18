//! Activation fusion: a Relu or Clip becomes the clamp of its producer's output stage (the
//! runtime has no standalone activation op). Quantized files also imply activations: ONNX
//! Runtime drops a Relu whose output quantization starts at zero (uint8 zero point 0), leaving
//! the clamp to the Q range. At full width that is the same, but narrower widths calibrate
//! their own ranges, so such an op gets an explicit Relu.
//!
//! When the file quantizes the activation's input and output differently (QOperator's
//! `QLinearConv -> DequantizeLinear -> Relu -> QuantizeLinear`, or a QDQ file with its own Q/DQ
//! pair around the Relu), ONNX rounds and saturates at the producer's scale first, then again
//! at the activation's. Folding the clamp into the producer would drop that first rounding, and
//! the difference compounds over the layers (MobileNetV2 QOperator: half the outputs more than
//! two steps off). Such an activation stays a node of its own: an identity-window (1x1, stride
//! 1) MaxPool, which the runtime executes as exactly that requantization plus clamp.
//!
//! When only the input is quantized (`DequantizeLinear -> Clip -> GlobalAveragePool`, the
//! activation's output left in float), the fused output keeps the input's quantization: ONNX
//! rounds at the producer's scale and clamps the dequantized values, which the clamp of the
//! producer's output stage does at that same scale.

use crate::ir::{Act, Graph, Op};
use anyhow::{Result, bail};

/// Run the pass.
pub fn run(g: &mut Graph) -> Result<()> {
    for n in g.nodes.iter_mut().filter(|n| !n.dead) {
        if n.act == Act::None
            && !matches!(n.op, Op::Relu | Op::Clip(..) | Op::Softmax | Op::Reshape)
            && g.tensors[n.output]
                .quant
                .is_some_and(|q| q.zero_point == -128)
        {
            n.act = Act::Relu;
        }
    }
    for i in 0..g.nodes.len() {
        if g.nodes[i].dead {
            continue;
        }
        let act = match g.nodes[i].op {
            Op::Relu => Act::Relu,
            Op::Clip(lo, hi) => Act::Clip(lo, hi),
            _ => continue,
        };
        let n = g.nodes[i].clone();
        let x = n.inputs[0];
        let p = g.producer(x).filter(|&p| {
            !matches!(
                g.nodes[p].op,
                Op::Reshape | Op::Softmax | Op::BatchNorm { .. }
            ) && g.consumers(x).len() == 1
                && !g.is_output(x)
        });
        let Some(p) = p else {
            bail!(
                "node {} ({}): an activation must follow a Conv, Gemm, Add, pooling or Concat whose output it alone reads",
                n.name,
                n.op_type
            );
        };
        let q_in = g.tensors[x].quant;
        let q_out = g.tensors[n.output].quant;
        if q_in.is_some() && q_out.is_some() && q_in != q_out {
            let node = &mut g.nodes[i];
            node.op = Op::MaxPool {
                kernel: [1, 1],
                strides: [1, 1],
                pads: [0; 4],
            };
            node.act = act;
            continue;
        }
        if q_out.is_none() {
            g.tensors[n.output].quant = q_in;
        }
        let prod = &mut g.nodes[p];
        prod.act = prod.act.then(act);
        prod.output = n.output;
        g.nodes[i].dead = true;
    }
    Ok(())
}
