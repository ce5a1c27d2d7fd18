//! Affine folding into the preceding Conv or Gemm: an Add of a constant (a bias, as ONNX
//! exporters write `MatMul + Add`) and BatchNormalization:
//! `W'[o] = W[o] * s[o]`, `b'[o] = (b[o] - mean[o]) * s[o] + beta[o]`,
//! `s = gamma / sqrt(var + eps)`.
//!
//! In a pre-quantized file the bias Add may come after the layer's output quantization
//! (`QLinearMatMul -> DequantizeLinear -> Add(bias)`, as ONNX Runtime's QOperator format writes
//! `MatMul + Add`): ONNX rounds and saturates at the layer's scale, then adds the bias in
//! float. Folding would move the saturation past the bias (logits off by many steps where the
//! layer saturates), so such an Add becomes its own per-channel op: a depthwise 1x1 Conv with
//! unit weights (int8 127 at scale 1/127, so the bias is kept to 1/127 of the input's step).

use crate::ir::{Act, Const, ConstQuant, Graph, Op, Tensor};
use anyhow::{Result, bail};

/// Run the pass.
pub fn run(g: &mut Graph) -> Result<()> {
    fold_bias_adds(g)?;
    for i in 0..g.nodes.len() {
        let Op::BatchNorm { eps } = g.nodes[i].op else {
            continue;
        };
        if g.nodes[i].dead {
            continue;
        }
        let bn = g.nodes[i].clone();
        let x = bn.inputs[0];
        let p = g.producer(x);
        let foldable = p.is_some_and(|p| {
            matches!(g.nodes[p].op, Op::Conv { .. } | Op::Gemm)
                && g.nodes[p].act == crate::ir::Act::None
                && g.consumers(x).len() == 1
                && !g.is_output(x)
        });
        let Some(p) = p.filter(|_| foldable) else {
            bail!(
                "node {} (BatchNormalization): supported only right after a Conv or Gemm whose output it alone reads",
                bn.name
            );
        };
        let get = |k: usize| -> Vec<f32> {
            g.konst(bn.inputs[k])
                .map(|c| c.data.clone())
                .unwrap_or_default()
        };
        let (gamma, beta, mean, var) = (get(1), get(2), get(3), get(4));
        let o = gamma.len();
        if [beta.len(), mean.len(), var.len()].iter().any(|&l| l != o) {
            bail!(
                "node {} (BatchNormalization): parameter lengths differ",
                bn.name
            );
        }
        let s: Vec<f32> = (0..o).map(|c| gamma[c] / (var[c] + eps).sqrt()).collect();
        let conv = g.nodes[p].clone();
        let wt = conv.inputs[1];
        let shape_ok = g.tensors[wt].shape.first() == Some(&o);
        let Some(w) = g.tensors[wt].konst.as_mut() else {
            bail!("node {}: weights are not constant", conv.name);
        };
        if w.data.len() % o != 0 || !shape_ok {
            bail!(
                "node {} (BatchNormalization): {o} channels do not match {}",
                bn.name,
                conv.name
            );
        }
        let per = w.data.len() / o;
        for (k, v) in w.data.iter_mut().enumerate() {
            *v *= s[k / per];
        }
        w.quant = None;
        let old_b = bias_of(g, p, o);
        let nb: Vec<f32> = (0..o)
            .map(|c| (old_b[c] - mean[c]) * s[c] + beta[c])
            .collect();
        rebias(g, p, "folded_bias", nb, bn.output);
        g.nodes[i].dead = true;
    }
    Ok(())
}

/// `Add(x, c)` with `c` constant and `x` computed by a Conv/Gemm read by nothing else: `c`
/// joins the layer's bias (`c` broadcasts per output channel).
fn fold_bias_adds(g: &mut Graph) -> Result<()> {
    for i in 0..g.nodes.len() {
        if g.nodes[i].dead || g.nodes[i].op != Op::Add {
            continue;
        }
        let n = g.nodes[i].clone();
        let Some(c) = n.inputs.iter().position(|&t| g.konst(t).is_some()) else {
            continue;
        };
        let x = n.inputs[1 - c];
        if g.konst(x).is_some() {
            continue; // both constant: constant folding
        }
        let add = g
            .konst(n.inputs[c])
            .map(|k| k.data.clone())
            .unwrap_or_default();
        if g.prequantized && g.tensors[x].quant.is_some() && g.tensors[n.output].quant.is_none() {
            bias_as_depthwise(g, i, x, &add);
            continue;
        }
        let p = g.producer(x).filter(|&p| {
            matches!(g.nodes[p].op, Op::Conv { .. } | Op::Gemm)
                && g.nodes[p].act == crate::ir::Act::None
                && g.consumers(x).len() == 1
                && !g.is_output(x)
        });
        let o = p.map_or(0, |p| g.tensors[g.nodes[p].inputs[1]].shape[0]);
        let Some(p) = p.filter(|_| add.len() == o || add.len() == 1) else {
            bail!(
                "node {} (Add): adding a constant is supported only as a per-channel bias right after a Conv/Gemm/MatMul",
                n.name
            );
        };
        let old_b = bias_of(g, p, o);
        let nb: Vec<f32> = (0..o)
            .map(|k| old_b[k] + add[k.min(add.len() - 1)])
            .collect();
        rebias(g, p, "bias", nb, n.output);
        g.nodes[i].dead = true;
    }
    Ok(())
}

/// The bias of Conv/Gemm node `p` with `o` output channels (zeros when it has none).
fn bias_of(g: &Graph, p: usize, o: usize) -> Vec<f32> {
    g.nodes[p]
        .inputs
        .get(2)
        .and_then(|&b| g.konst(b))
        .map_or(vec![0.0; o], |c| c.data.clone())
}

/// A new constant tensor `<node name>/<suffix>`; its index.
fn push_const(g: &mut Graph, node: usize, suffix: &str, shape: Vec<usize>, k: Const) -> usize {
    g.tensors.push(Tensor {
        name: format!("{}/{suffix}", g.nodes[node].name),
        shape,
        konst: Some(k),
        quant: None,
    });
    g.tensors.len() - 1
}

/// Give Conv/Gemm node `p` the bias `bias` (a new constant `<p>/<suffix>`) and make it write
/// `output`: the folded node's output.
fn rebias(g: &mut Graph, p: usize, suffix: &str, bias: Vec<f32>, output: usize) {
    let shape = vec![bias.len()];
    let bt = push_const(
        g,
        p,
        suffix,
        shape,
        Const {
            data: bias,
            quant: None,
        },
    );
    let node = &mut g.nodes[p];
    node.inputs.truncate(2);
    node.inputs.push(bt);
    node.output = output;
}

/// Turn node `i`, `x + add` (per channel), into a depthwise 1x1 Conv with unit weights.
fn bias_as_depthwise(g: &mut Graph, i: usize, x: usize, add: &[f32]) {
    let c = match g.tensors[x].shape.as_slice() {
        [_, c, ..] => *c,
        _ => add.len(),
    };
    let w = push_const(
        g,
        i,
        "unit_weights",
        vec![c, 1, 1, 1],
        Const {
            data: vec![1.0; c],
            quant: Some(ConstQuant {
                values: vec![127; c],
                scales: vec![1.0 / 127.0; c],
            }),
        },
    );
    let b = push_const(
        g,
        i,
        "bias",
        vec![c],
        Const {
            data: (0..c).map(|k| add[k.min(add.len() - 1)]).collect(),
            quant: None,
        },
    );
    let node = &mut g.nodes[i];
    node.op = Op::Conv {
        strides: [1, 1],
        pads: [0; 4],
        dilations: [1, 1],
        group: c,
    };
    node.inputs = vec![x, w, b];
    node.act = Act::None;
}
