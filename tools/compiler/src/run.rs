//! Running a compiled blob on float NCHW batches (what `edgeslim run` and `eval` do).

use crate::npy::Array;
use anyhow::{Result, anyhow, bail};
use edgeslim_runtime::{Input, Interpreter, Model, TaskMask, WidthConfig};

/// NCHW `[c, h, w]` to NHWC `[h, w, c]`.
pub fn nchw_to_nhwc(x: &[f32], c: usize, h: usize, w: usize) -> Vec<f32> {
    let mut y = vec![0f32; c * h * w];
    for ci in 0..c {
        for p in 0..h * w {
            y[p * c + ci] = x[ci * h * w + p];
        }
    }
    y
}

/// NHWC `[h, w, c]` to NCHW `[c, h, w]`.
pub fn nhwc_to_nchw<T: Copy + Default>(x: &[T], h: usize, w: usize, c: usize) -> Vec<T> {
    let mut y = vec![T::default(); c * h * w];
    for ci in 0..c {
        for p in 0..h * w {
            y[ci * h * w + p] = x[p * c + ci];
        }
    }
    y
}

/// The ONNX shape of the model input without the batch axis: `[C, H, W]`, or `[K]` for a
/// vector input (stored as 1x1xK).
pub fn input_sample_shape(model: &Model<'_>) -> Vec<usize> {
    let t = model.input();
    if t.h == 1 && t.w == 1 {
        vec![t.c]
    } else {
        vec![t.c, t.h, t.w]
    }
}

/// One output of a batch run.
#[derive(Debug, Clone)]
pub struct BatchOutput {
    /// Graph output name.
    pub name: String,
    /// Task index.
    pub task: usize,
    /// Dequantized values, NCHW (or `[.., K]`), stacked like the input.
    pub float: Array<f32>,
    /// int8 values, same layout.
    pub raw: Array<i8>,
    /// `(scale, zero_point)` of the output.
    pub quant: (f32, i32),
}

/// Split an input batch into samples: `x` has the model input's shape (`[1, C, H, W]`), a
/// leading sample axis in place of the batch (`[N, C, H, W]`), or one in front of it
/// (`[N, 1, C, H, W]`). Returns the leading axes and the NHWC samples.
pub fn split_batch(model: &Model<'_>, x: &Array<f32>) -> Result<(Vec<usize>, Vec<Vec<f32>>)> {
    let sample = input_sample_shape(model);
    let lead = if x.shape.len() == sample.len() + 1 && x.shape[1..] == sample[..] {
        vec![x.shape[0]]
    } else if x.shape.len() == sample.len() + 2 && x.shape[1] == 1 && x.shape[2..] == sample[..] {
        vec![x.shape[0], 1]
    } else {
        bail!(
            "input shape {:?} does not match the model input [1, {}] (or [N, {}] for N samples)",
            x.shape,
            sample
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            sample
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    };
    let n = x.shape[0];
    let per: usize = sample.iter().product();
    let t = model.input();
    let samples = (0..n)
        .map(|i| {
            let s = &x.data[i * per..(i + 1) * per];
            if sample.len() == 3 {
                nchw_to_nhwc(s, t.c, t.h, t.w)
            } else {
                s.to_vec()
            }
        })
        .collect();
    Ok((lead, samples))
}

/// Run `blob` on every sample of `x` at `widths` for `tasks`; one stacked array per output of
/// the selected tasks, in model order.
pub fn run_batch(
    blob: &[u8],
    x: &Array<f32>,
    widths: &WidthConfig,
    tasks: TaskMask,
) -> Result<Vec<BatchOutput>> {
    let model = Model::parse(blob).map_err(|e| anyhow!("invalid model blob: {e}"))?;
    let (lead, samples) = split_batch(&model, x)?;
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut interp = Interpreter::new(&model, &mut arena).map_err(|e| anyhow!("{e}"))?;
    let mut outs: Vec<BatchOutput> = Vec::new();
    for (i, s) in samples.iter().enumerate() {
        let r = interp
            .run(Input::F32(s), widths, tasks)
            .map_err(|e| anyhow!("sample {i}: {e}"))?;
        for (k, o) in r.iter().enumerate() {
            let sh = o.shape;
            let mut f = vec![0f32; o.data.len()];
            o.dequantize_into(&mut f).map_err(|e| anyhow!("{e}"))?;
            let (f, q, shape) = if sh.h == 1 && sh.w == 1 {
                (f, o.data.to_vec(), vec![sh.c])
            } else {
                (
                    nhwc_to_nchw(&f, sh.h, sh.w, sh.c),
                    nhwc_to_nchw(o.data, sh.h, sh.w, sh.c),
                    vec![sh.c, sh.h, sh.w],
                )
            };
            if i == 0 {
                let mut full = lead.clone();
                full.extend(&shape);
                outs.push(BatchOutput {
                    name: o.name.to_string(),
                    task: o.task,
                    float: Array {
                        shape: full.clone(),
                        data: Vec::with_capacity(samples.len() * f.len()),
                    },
                    raw: Array {
                        shape: full,
                        data: Vec::with_capacity(samples.len() * f.len()),
                    },
                    quant: (o.scale, o.zero_point),
                });
            }
            let b = outs
                .get_mut(k)
                .ok_or_else(|| anyhow!("output {k} missing in sample {i}"))?;
            b.float.data.extend(f);
            b.raw.data.extend(q);
        }
    }
    Ok(outs)
}
