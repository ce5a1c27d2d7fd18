//! Inference speed, side by side in one run: the edgeslim runtime (`kernels::active`) at full
//! width and at its narrowest configuration, against tract running the same bundled model's
//! float ONNX file and its int8 QDQ file (`into_optimized`), one sample at a time on one core.
//!
//! `cargo bench -p edgeslim-tests --bench inference`; criterion's report gives the medians, and
//! the ratios print at the end (`edgeslim full / tract float` etc.).

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use edgeslim_compiler::npy::read_f32;
use edgeslim_compiler::run::nchw_to_nhwc;
use edgeslim_compiler::{CompileOptions, compile};
use edgeslim_runtime::{Input, Interpreter, Model, TaskMask, WidthConfig};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tract_onnx::prelude::*;

const MODELS: &[&str] = &["digits-mtl", "mnist-mtl", "mcu-bench-mtl"];

fn model_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../models")
        .join(name)
}

type Plan = std::sync::Arc<TypedRunnableModel>;

fn tract_plan(path: &Path) -> Plan {
    tract_onnx::onnx()
        .model_for_path(path)
        .and_then(|m| m.into_optimized())
        .and_then(|m| m.into_runnable())
        .unwrap_or_else(|e| panic!("tract cannot load {}: {e:?}", path.display()))
}

/// Median time of `f` over `n` runs (for the ratio table; criterion reports its own).
fn median_of(n: usize, mut f: impl FnMut()) -> Duration {
    let mut t: Vec<Duration> = (0..n)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed()
        })
        .collect();
    t.sort();
    t[n / 2]
}

fn inference(c: &mut Criterion) {
    let mut ratios = Vec::new();
    for &name in MODELS {
        let dir = model_dir(name);
        let compiled = compile(
            &dir.join("model.onnx"),
            &CompileOptions {
                calib: Some(dir.join("calib.npy")),
                ..Default::default()
            },
        )
        .unwrap_or_else(|e| panic!("{name}: {e:#}"));
        let model = Model::parse(&compiled.blob).unwrap_or_else(|e| panic!("{name}: {e}"));
        let calib = read_f32(&dir.join("calib.npy")).unwrap_or_else(|e| panic!("{e:#}"));
        let [c_in, h, w] = [calib.shape[1], calib.shape[2], calib.shape[3]];
        let sample = &calib.data[..c_in * h * w];
        let nhwc = nchw_to_nhwc(sample, c_in, h, w);
        let x = Tensor::from_shape(&[1, c_in, h, w], sample).unwrap_or_else(|e| panic!("{e}"));
        let float = tract_plan(&dir.join("model.onnx"));
        let qdq = tract_plan(&dir.join("model_qdq.onnx"));
        let mut arena = vec![0u8; model.arena_bytes()];
        let mut interp = Interpreter::new(&model, &mut arena).unwrap_or_else(|e| panic!("{e}"));
        let full = WidthConfig::full(&model);
        let narrow = WidthConfig::narrowest(&model);
        let all = TaskMask::all(&model);

        let mut g = c.benchmark_group(format!("inference/{name}"));
        g.sample_size(30).measurement_time(Duration::from_secs(3));
        for (label, widths) in [("edgeslim full", &full), ("edgeslim narrowest", &narrow)] {
            g.bench_function(BenchmarkId::from_parameter(label), |b| {
                b.iter(|| {
                    let out = interp
                        .run(Input::F32(black_box(&nhwc)), widths, all)
                        .unwrap_or_else(|e| panic!("{e}"));
                    black_box(out.get(0).map(|o| o.data[0]).ok());
                })
            });
        }
        for (label, plan) in [("tract float", &float), ("tract qdq", &qdq)] {
            g.bench_function(BenchmarkId::from_parameter(label), |b| {
                b.iter(|| {
                    let r = plan
                        .run(tvec!(x.clone().into()))
                        .unwrap_or_else(|e| panic!("{e:?}"));
                    black_box(r.len());
                })
            });
        }
        g.finish();

        let n = 51;
        let mut ours = |wc: &WidthConfig| {
            median_of(n, || {
                let out = interp
                    .run(Input::F32(&nhwc), wc, all)
                    .unwrap_or_else(|e| panic!("{e}"));
                black_box(out.get(0).map(|o| o.data[0]).ok());
            })
        };
        let (t_full, t_narrow) = (ours(&full), ours(&narrow));
        let theirs = |p: &Plan| {
            median_of(n, || {
                black_box(
                    p.run(tvec!(x.clone().into()))
                        .unwrap_or_else(|e| panic!("{e:?}")),
                );
            })
        };
        let (t_float, t_qdq) = (theirs(&float), theirs(&qdq));
        ratios.push((name, t_full, t_narrow, t_float, t_qdq));
    }
    println!(
        "\n{:>14} | {:>12} {:>12} {:>12} {:>12} | {:>12} {:>12}",
        "model", "full", "narrowest", "tract f32", "tract qdq", "full/f32", "full/qdq"
    );
    for (name, f, nw, tf, tq) in ratios {
        println!(
            "{name:>14} | {:>10.1}us {:>10.1}us {:>10.1}us {:>10.1}us | {:>12.2} {:>12.2}",
            f.as_secs_f64() * 1e6,
            nw.as_secs_f64() * 1e6,
            tf.as_secs_f64() * 1e6,
            tq.as_secs_f64() * 1e6,
            f.as_secs_f64() / tf.as_secs_f64(),
            f.as_secs_f64() / tq.as_secs_f64(),
        );
    }
}

criterion_group!(benches, inference);
criterion_main!(benches);
