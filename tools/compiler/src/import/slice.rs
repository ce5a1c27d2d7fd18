//! Slice, Split and Gather over the channel axis of a `[1, C, H, W]` tensor: channel
//! selections `start + j * step`.

use super::registry::{Format, OpImporter, attr};
use super::{Importer, attrs, axis, input, label};
use crate::ir::Op;
use anyhow::{Result, bail};
use tract_onnx::pb;

/// The channel selections.
pub(crate) const OPS: &[OpImporter] = &[
    OpImporter {
        op_type: "Slice",
        inputs: (1, 5),
        attributes: &[attr(
            "starts, ends, axes",
            "opset < 10 (later: constant inputs)",
        )],
        formats: &[Format::Float, Format::Qdq],
        note: "over the channel axis only (other axes whole), steps >= 1; its input is not slimmed",
        import: slice,
    },
    OpImporter {
        op_type: "Split",
        inputs: (1, 2),
        attributes: &[
            attr("axis", "1 (channels)"),
            attr(
                "split",
                "opset < 13 (later: constant input); equal parts when absent",
            ),
        ],
        formats: &[Format::Float, Format::Qdq],
        note: "over the channel axis; its input is not slimmed",
        import: split,
    },
    OpImporter {
        op_type: "Gather",
        inputs: (2, 2),
        attributes: &[attr("axis", "1 (channels)")],
        formats: &[Format::Float, Format::Qdq],
        note: "constant 1-D indices in arithmetic progression (step >= 1) over the channels",
        import: gather,
    },
];

fn slice(imp: &mut Importer, n: &pb::NodeProto) -> Result<()> {
    let x = imp.activation(input(n, 0), "input")?;
    let [c, h, w] = imp.image(x)?;
    let dims = [1, c, h, w];
    let (starts, ends, axes, steps) = if imp.opset < 10 {
        let get =
            |name| -> Result<Option<Vec<i64>>> { Ok(attrs::ints(n, name)?.map(<[i64]>::to_vec)) };
        (get("starts")?, get("ends")?, get("axes")?, None)
    } else {
        (
            imp.const_ints(input(n, 1))?,
            imp.const_ints(input(n, 2))?,
            imp.const_ints(input(n, 3))?,
            imp.const_ints(input(n, 4))?,
        )
    };
    let (Some(starts), Some(ends)) = (starts, ends) else {
        bail!("starts and ends are required");
    };
    let axes = axes.unwrap_or_else(|| (0..starts.len() as i64).collect());
    let steps = steps.unwrap_or_else(|| vec![1; starts.len()]);
    if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
        bail!("starts, ends, axes and steps differ in length");
    }
    let (mut start, mut step, mut count) = (0usize, 1usize, c);
    for k in 0..starts.len() {
        let a = axis(axes[k], 4)?;
        let d = dims[a] as i64;
        if steps[k] < 1 {
            bail!("step {} is not supported (only >= 1)", steps[k]);
        }
        // ONNX: negative positions count from the end; both are clamped to the axis.
        let norm = |v: i64| if v < 0 { v + d } else { v }.clamp(0, d);
        let (s, e) = (norm(starts[k]), norm(ends[k]));
        let len = if e > s {
            (e - s + steps[k] - 1) / steps[k]
        } else {
            0
        };
        if a == 1 {
            if len == 0 {
                bail!("the slice selects no channel");
            }
            (start, step, count) = (s as usize, steps[k] as usize, len as usize);
        } else if len != d || steps[k] != 1 {
            bail!("only the channel axis may be sliced (axis {a} is cut)");
        }
    }
    imp.push(
        n,
        Op::GatherChannels { start, step },
        vec![x],
        vec![1, count, h, w],
    )?;
    Ok(())
}

fn split(imp: &mut Importer, n: &pb::NodeProto) -> Result<()> {
    let x = imp.activation(input(n, 0), "input")?;
    let [c, h, w] = imp.image(x)?;
    if axis(attrs::int(n, "axis", 0)?, 4)? != 1 {
        bail!("only a split over the channel axis (1) is supported");
    }
    let parts = n.output.len();
    let sizes: Vec<i64> = match (imp.opset < 13, imp.const_ints(input(n, 1))?) {
        (true, _) => attrs::ints(n, "split")?
            .map(<[i64]>::to_vec)
            .unwrap_or_default(),
        (false, Some(s)) => s,
        (false, None) => vec![],
    };
    let sizes: Vec<usize> = if sizes.is_empty() {
        if parts == 0 || c % parts != 0 {
            bail!("{c} channels do not split into {parts} equal parts");
        }
        vec![c / parts; parts]
    } else {
        sizes
            .iter()
            .map(|&s| usize::try_from(s).ok().filter(|&s| s >= 1))
            .collect::<Option<_>>()
            .ok_or_else(|| anyhow::anyhow!("split sizes {sizes:?} must be >= 1"))?
    };
    if sizes.len() != parts || sizes.iter().sum::<usize>() != c {
        bail!("split sizes {sizes:?} for {parts} outputs do not add up to {c} channels");
    }
    let mut start = 0;
    for (k, &len) in sizes.iter().enumerate() {
        let out = &n.output[k];
        if out.is_empty() {
            bail!("output {k} has no name");
        }
        imp.push_output(
            n,
            out,
            format!("{}/{k}", label(n)),
            Op::GatherChannels { start, step: 1 },
            vec![x],
            vec![1, len, h, w],
        )?;
        start += len;
    }
    Ok(())
}

fn gather(imp: &mut Importer, n: &pb::NodeProto) -> Result<()> {
    let x = imp.activation(input(n, 0), "input")?;
    let [c, h, w] = imp.image(x)?;
    if axis(attrs::int(n, "axis", 0)?, 4)? != 1 {
        bail!("only a gather over the channel axis (1) is supported");
    }
    let (dims, data) = imp.raw(input(n, 1))?;
    if dims.len() != 1 {
        bail!("indices must be a 1-D constant, got shape {dims:?}");
    }
    let idx: Vec<usize> = data
        .to_f32()
        .iter()
        .map(|&v| {
            let v = v as i64;
            let v = if v < 0 { v + c as i64 } else { v };
            usize::try_from(v)
                .ok()
                .filter(|&v| v < c)
                .ok_or_else(|| anyhow::anyhow!("index {v} outside {c} channels"))
        })
        .collect::<Result<_>>()?;
    let Some(&start) = idx.first() else {
        bail!("no indices");
    };
    let step = idx.get(1).map_or(1, |&b| b.wrapping_sub(start));
    if step == 0 || step > c || idx.iter().enumerate().any(|(j, &i)| i != start + j * step) {
        bail!("indices {idx:?} are not an increasing arithmetic progression");
    }
    imp.push(
        n,
        Op::GatherChannels { start, step },
        vec![x],
        vec![1, idx.len(), h, w],
    )?;
    Ok(())
}
