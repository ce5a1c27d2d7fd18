//! Element-wise ops beyond Add: the nonlinearities that become int8 tables in the runtime
//! (Sigmoid, Tanh, HardSigmoid, HardSwish, LeakyRelu, Elu, and PRelu with one slope), PRelu
//! with a slope per channel, and Mul, Div and Sub: of two computed tensors (Mul, with a
//! `[1, C, 1, 1]` operand broadcast over the positions as squeeze-excitation writes it), or of
//! a computed tensor and a constant (a scalar becomes a table, one value per channel a
//! depthwise 1x1 convolution).

use super::registry::{Format, OpImporter, attr};
use super::{Importer, attrs, input};
use crate::ir::{Const, Op, Unary};
use anyhow::{Result, bail};
use tract_onnx::pb;

const FLOAT_QDQ: &[Format] = &[Format::Float, Format::Qdq];

/// The element-wise ops.
pub(crate) const OPS: &[OpImporter] = &[
    OpImporter {
        op_type: "Sigmoid",
        inputs: (1, 1),
        attributes: &[],
        formats: FLOAT_QDQ,
        note: "int8 table",
        import: |imp, n| unary(imp, n, Unary::Sigmoid),
    },
    OpImporter {
        op_type: "Tanh",
        inputs: (1, 1),
        attributes: &[],
        formats: FLOAT_QDQ,
        note: "int8 table",
        import: |imp, n| unary(imp, n, Unary::Tanh),
    },
    OpImporter {
        op_type: "HardSigmoid",
        inputs: (1, 1),
        attributes: &[
            attr("alpha", "finite; default 0.2"),
            attr("beta", "finite; default 0.5"),
        ],
        formats: FLOAT_QDQ,
        note: "int8 table",
        import: |imp, n| {
            let alpha = attrs::finite(n, "alpha", 0.2)?;
            let beta = attrs::finite(n, "beta", 0.5)?;
            unary(imp, n, Unary::HardSigmoid { alpha, beta })
        },
    },
    OpImporter {
        op_type: "HardSwish",
        inputs: (1, 1),
        attributes: &[],
        formats: FLOAT_QDQ,
        note: "int8 table",
        import: |imp, n| unary(imp, n, Unary::HardSwish),
    },
    OpImporter {
        op_type: "LeakyRelu",
        inputs: (1, 1),
        attributes: &[attr("alpha", "finite; default 0.01")],
        formats: FLOAT_QDQ,
        note: "int8 table",
        import: |imp, n| {
            let alpha = attrs::finite(n, "alpha", 0.01)?;
            unary(imp, n, Unary::LeakyRelu { alpha })
        },
    },
    OpImporter {
        op_type: "Elu",
        inputs: (1, 1),
        attributes: &[attr("alpha", "finite; default 1.0")],
        formats: FLOAT_QDQ,
        note: "int8 table",
        import: |imp, n| {
            let alpha = attrs::finite(n, "alpha", 1.0)?;
            unary(imp, n, Unary::Elu { alpha })
        },
    },
    OpImporter {
        op_type: "PRelu",
        inputs: (2, 2),
        attributes: &[],
        formats: FLOAT_QDQ,
        note: "constant slope: one value (an int8 table) or one per channel (int8 slopes)",
        import: prelu,
    },
    OpImporter {
        op_type: "Mul",
        inputs: (2, 2),
        attributes: &[],
        formats: FLOAT_QDQ,
        note: "two computed tensors of one shape, or one of them [1, C, 1, 1]; or times a constant scalar or per-channel vector",
        import: |imp, n| arith(imp, n, Arith::Mul),
    },
    OpImporter {
        op_type: "Div",
        inputs: (2, 2),
        attributes: &[],
        formats: FLOAT_QDQ,
        note: "a computed tensor divided by a constant scalar or per-channel vector",
        import: |imp, n| arith(imp, n, Arith::Div),
    },
    OpImporter {
        op_type: "Sub",
        inputs: (2, 2),
        attributes: &[],
        formats: FLOAT_QDQ,
        note: "two computed tensors of one shape (an Add with a negated input); or a computed tensor and a constant scalar or per-channel vector",
        import: |imp, n| arith(imp, n, Arith::Sub),
    },
    OpImporter {
        op_type: "Max",
        inputs: (1, 2),
        attributes: &[],
        formats: FLOAT_QDQ,
        note: "one or two computed tensors of one shape",
        import: |imp, n| minmax(imp, n, false),
    },
    OpImporter {
        op_type: "Min",
        inputs: (1, 2),
        attributes: &[],
        formats: FLOAT_QDQ,
        note: "one or two computed tensors of one shape",
        import: |imp, n| minmax(imp, n, true),
    },
    OpImporter {
        op_type: "Mean",
        inputs: (1, edgeslim_runtime::format::MAX_ADD_INPUTS),
        attributes: &[],
        formats: FLOAT_QDQ,
        note: "computed tensors of one shape: an Add with each input scaled by 1/n",
        import: mean,
    },
];

/// A table op on input 0.
fn unary(imp: &mut Importer, n: &pb::NodeProto, u: Unary) -> Result<()> {
    let x = imp.activation(input(n, 0), "input")?;
    let s = imp.shape(x);
    imp.push(n, Op::Unary(u), vec![x], s)?;
    Ok(())
}

/// The values of constant `name` as one per channel of a tensor of `shape`: one value (any
/// rank), or `C` values laid out along axis 1 (`[C]`, `[C, 1, 1]`, `[1, C, 1, 1]`, `[1, C]`).
fn per_channel(imp: &Importer, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
    let (dims, data) = imp.raw(name)?;
    let v = data.to_f32();
    let c = shape.get(1).copied().unwrap_or(1);
    if v.len() == 1 {
        return Ok(vec![v[0]; c]);
    }
    // Right-aligned broadcasting against [1, C, H, W] (or [1, C]): every dimension but the
    // channel axis must be 1.
    let rank = shape.len();
    let ok = dims.len() <= rank
        && dims.iter().rev().enumerate().all(|(i, &d)| {
            let axis = rank - 1 - i;
            if axis == 1 { d == c } else { d == 1 }
        });
    if !ok || v.len() != c {
        bail!(
            "constant {name} of shape {dims:?} is neither a scalar nor one value per channel of {shape:?}"
        );
    }
    if v.iter().any(|x| !x.is_finite()) {
        bail!("constant {name} holds a value that is not finite");
    }
    Ok(v)
}

/// PRelu: one slope is a LeakyRelu table; one per channel an op with int8 slopes.
fn prelu(imp: &mut Importer, n: &pb::NodeProto) -> Result<()> {
    let x = imp.activation(input(n, 0), "input")?;
    let s = imp.shape(x);
    let slope = per_channel(imp, input(n, 1), &s)?;
    if slope.iter().all(|&a| a == slope[0]) {
        return unary(imp, n, Unary::LeakyRelu { alpha: slope[0] });
    }
    let name = format!("{}/slope", super::label(n));
    let c = slope.len();
    let t = imp.add_tensor(
        &name,
        vec![c],
        Some(Const {
            data: slope,
            quant: None,
        }),
    );
    imp.push(n, Op::PRelu, vec![x, t], s)?;
    Ok(())
}

/// Max or Min of one or two computed tensors of one shape (one: the identity).
fn minmax(imp: &mut Importer, n: &pb::NodeProto, min: bool) -> Result<()> {
    let xs: Vec<usize> = n
        .input
        .iter()
        .map(|i| imp.activation(i, "input"))
        .collect::<Result<_>>()?;
    let s = imp.shape(xs[0]);
    if let Some(&x) = xs.iter().find(|&&x| imp.shape(x) != s) {
        bail!(
            "inputs of shapes {s:?} and {:?}: only equal shapes",
            imp.shape(x)
        );
    }
    let op = if xs.len() == 1 {
        Op::Unary(Unary::Affine { mul: 1.0, add: 0.0 })
    } else {
        Op::MinMax { min }
    };
    imp.push(n, op, xs, s)?;
    Ok(())
}

/// Mean of computed tensors of one shape.
fn mean(imp: &mut Importer, n: &pb::NodeProto) -> Result<()> {
    let xs: Vec<usize> = n
        .input
        .iter()
        .map(|i| imp.activation(i, "input"))
        .collect::<Result<_>>()?;
    let s = imp.shape(xs[0]);
    if let Some(&x) = xs.iter().find(|&&x| imp.shape(x) != s) {
        bail!(
            "inputs of shapes {s:?} and {:?}: only equal shapes",
            imp.shape(x)
        );
    }
    if xs.len() == 1 {
        let op = Op::Unary(Unary::Affine { mul: 1.0, add: 0.0 });
        imp.push(n, op, xs, s)?;
        return Ok(());
    }
    let k = xs.len();
    imp.push(n, Op::Sum(vec![1.0 / k as f32; k]), xs, s)?;
    Ok(())
}

/// The binary arithmetic ops.
#[derive(Clone, Copy, PartialEq)]
enum Arith {
    Mul,
    Div,
    Sub,
}

/// Mul, Div or Sub with at least one computed operand.
fn arith(imp: &mut Importer, n: &pb::NodeProto, op: Arith) -> Result<()> {
    let (a, b) = (input(n, 0), input(n, 1));
    let (ca, cb) = (imp.is_const(a), imp.is_const(b));
    if ca && cb {
        bail!("both operands are constants (fold them before export)");
    }
    if !ca && !cb {
        if op == Arith::Div {
            bail!("Div of two computed tensors is not supported (only by a constant)");
        }
        let (x, y) = (imp.activation(a, "input")?, imp.activation(b, "input")?);
        if op == Arith::Sub {
            let (sx, sy) = (imp.shape(x), imp.shape(y));
            if sx != sy {
                bail!("Sub of computed tensors of shapes {sx:?} and {sy:?}: only equal shapes");
            }
            imp.push(n, Op::Sum(vec![1.0, -1.0]), vec![x, y], sx)?;
            return Ok(());
        }
        let (sx, sy) = (imp.shape(x), imp.shape(y));
        let vector = |s: &[usize], full: &[usize]| {
            s.len() == 4 && full.len() == 4 && s[1] == full[1] && s[2] == 1 && s[3] == 1
        };
        let (x, y, s) = if sx == sy || vector(&sy, &sx) {
            (x, y, sx)
        } else if vector(&sx, &sy) {
            (y, x, sy)
        } else {
            bail!(
                "operands of shapes {sx:?} and {sy:?}: only equal shapes, or one [1, C, 1, 1] operand, broadcast"
            );
        };
        imp.push(n, Op::Mul, vec![x, y], s)?;
        return Ok(());
    }
    let (x_name, c_name) = if ca { (b, a) } else { (a, b) };
    if op == Arith::Div && ca {
        bail!("a constant divided by a computed tensor is not supported");
    }
    let x = imp.activation(x_name, "input")?;
    let s = imp.shape(x);
    let v = per_channel(imp, c_name, &s)?;
    // y = x * mul + add, per channel.
    let (mul, add): (Vec<f32>, Vec<f32>) = match op {
        Arith::Mul => (v.clone(), vec![0.0; v.len()]),
        Arith::Div => {
            if v.contains(&0.0) {
                bail!("division by zero (constant {c_name})");
            }
            (v.iter().map(|d| 1.0 / d).collect(), vec![0.0; v.len()])
        }
        Arith::Sub if ca => (vec![-1.0; v.len()], v.clone()),
        Arith::Sub => (vec![1.0; v.len()], v.iter().map(|d| -d).collect()),
    };
    if mul.iter().all(|&m| m == mul[0]) && add.iter().all(|&c| c == add[0]) {
        imp.push(
            n,
            Op::Unary(Unary::Affine {
                mul: mul[0],
                add: add[0],
            }),
            vec![x],
            s,
        )?;
        return Ok(());
    }
    // One value per channel: a depthwise 1x1 convolution with those weights and biases.
    let [c, _, _] = imp.image(x).map_err(|_| {
        anyhow::anyhow!("a per-channel constant needs a [1, C, H, W] operand, got {s:?}")
    })?;
    let label = super::label(n).to_string();
    let w = imp.add_tensor(
        &format!("{label}/W"),
        vec![c, 1, 1, 1],
        Some(Const {
            data: mul,
            quant: None,
        }),
    );
    let bias = imp.add_tensor(
        &format!("{label}/B"),
        vec![c],
        Some(Const {
            data: add,
            quant: None,
        }),
    );
    imp.push(
        n,
        Op::Conv {
            strides: [1, 1],
            pads: [0; 4],
            dilations: [1, 1],
            group: c,
        },
        vec![x, w, bias],
        s,
    )?;
    Ok(())
}
