//! The bundled models (`models/<name>/`): compile the float ONNX with its calibration set;
//! full-width top-1 agreement with the PyTorch golden outputs; per-task accuracy at every
//! width configuration within 1.5 points of the float accuracy in `accuracy.json`; arena
//! within 2% of the liveness lower bound. Skipped (with a message) when a model is absent.

use edgeslim_compiler::{Array, CompileOptions, compile, read_npz, run_batch};
use edgeslim_runtime::{Input, Interpreter, Model, TaskMask, WidthConfig};
use std::path::{Path, PathBuf};

fn model_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../models")
        .join(name)
}

fn argmax(v: &[f32]) -> usize {
    let mut b = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[b] {
            b = i;
        }
    }
    b
}

fn check(name: &str, qdq: bool) {
    let dir = model_dir(name);
    let onnx = dir.join(if qdq { "model_qdq.onnx" } else { "model.onnx" });
    if !onnx.exists() {
        eprintln!("{name}: not bundled, skipped");
        return;
    }
    let t0 = std::time::Instant::now();
    let opts = CompileOptions {
        calib: Some(dir.join("calib.npy")),
        ..CompileOptions::default()
    };
    let c = compile(&onnx, &opts).unwrap_or_else(|e| panic!("{name}: {e:#}"));
    let r = &c.report;
    eprintln!(
        "{name}{}: compiled in {:.1} s; arena {} B, lower bound {} B; blob {} B",
        if qdq { " (QDQ)" } else { "" },
        t0.elapsed().as_secs_f64(),
        r.arena_bytes,
        r.arena_lower_bound,
        r.blob_bytes
    );
    assert!(
        r.arena_bytes as f64 <= 1.02 * r.arena_lower_bound as f64,
        "{name}: arena"
    );
    let m = Model::parse(&c.blob).unwrap_or_else(|e| panic!("{e}"));

    // Golden outputs at full width.
    let golden = read_npz(&dir.join("golden.npz")).unwrap_or_else(|e| panic!("{e:#}"));
    let gx = golden
        .get("x")
        .cloned()
        .and_then(|a| a.into_f32().ok())
        .unwrap_or_else(|| panic!("golden x"));
    let outs = run_batch(&c.blob, &gx, &WidthConfig::full(&m), TaskMask::all(&m))
        .unwrap_or_else(|e| panic!("{e:#}"));
    let full_id = {
        let j: serde_json::Value = serde_json::from_slice(
            &std::fs::read(dir.join("golden.json")).unwrap_or_else(|e| panic!("{e}")),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        j["configs"]
            .as_array()
            .and_then(|cs| {
                cs.iter().find(|c| {
                    c["widths"]
                        .as_object()
                        .is_some_and(|w| w.values().all(|v| v.as_f64() == Some(1.0)))
                })
            })
            .and_then(|c| c["id"].as_str().map(String::from))
            .unwrap_or_else(|| panic!("no full-width golden config"))
    };
    for o in &outs {
        let key = format!("out__{full_id}__{}", o.name);
        let g: Array<f32> = golden
            .get(&key)
            .cloned()
            .and_then(|a| a.into_f32().ok())
            .unwrap_or_else(|| panic!("golden {key}"));
        let n = gx.shape[0];
        let k = g.data.len() / n;
        // A golden top-2 margin below one output quantization step is a tie no int8 model
        // resolves (mnist-mtl `bold` has one at 0.002 with steps of 0.06): such samples are
        // reported but not held against the compiler.
        let margin = |v: &[f32]| {
            let mut s = v.to_vec();
            s.sort_by(|a, b| b.total_cmp(a));
            if s.len() > 1 {
                s[0] - s[1]
            } else {
                f32::INFINITY
            }
        };
        let (mut agree, mut decidable, mut raw) = (0, 0, 0);
        for i in 0..n {
            let gi = &g.data[i * k..(i + 1) * k];
            let same = argmax(gi) == argmax(&o.float.data[i * k..(i + 1) * k]);
            raw += same as usize;
            if margin(gi) >= o.quant.0 {
                decidable += 1;
                agree += same as usize;
            }
        }
        let frac = agree as f64 / decidable.max(1) as f64;
        eprintln!(
            "{name} {}: top-1 agreement with golden {:.2}% of {decidable} decidable samples ({raw}/{n} overall)",
            o.name,
            frac * 100.0
        );
        assert!(frac >= 0.99, "{name} {}: top-1 agreement {frac}", o.name);
    }

    // Accuracy at every (encoder width, decoder width).
    let eval = read_npz(&dir.join("eval.npz")).unwrap_or_else(|e| panic!("{e:#}"));
    let ex = eval
        .get("x")
        .cloned()
        .and_then(|a| a.into_f32().ok())
        .unwrap_or_else(|| panic!("eval x"));
    let acc: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join("accuracy.json")).unwrap_or_else(|e| panic!("{e}")),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let (_, samples) =
        edgeslim_compiler::run::split_batch(&m, &ex).unwrap_or_else(|e| panic!("{e:#}"));
    let labels: Vec<Vec<i64>> = (0..m.num_tasks())
        .map(|t| {
            let tn = m.task(t).map_or("", |t| t.name);
            eval.get(&format!("y_{tn}"))
                .cloned()
                .and_then(|a| a.into_i64().ok())
                .map(|a| a.data)
                .unwrap_or_else(|| panic!("labels y_{tn}"))
        })
        .collect();
    let mut arena = vec![0u8; m.arena_bytes()];
    let mut interp = Interpreter::new(&m, &mut arena).unwrap_or_else(|e| panic!("{e}"));
    let l = &c.lowered;
    let mut worst: f64 = f64::NEG_INFINITY;
    for (we, d) in l.grid() {
        let idx: Vec<u8> = (0..m.num_segments())
            .map(|s| l.width_at(s, we, d) as u8)
            .collect();
        let cfg = WidthConfig::from_indices(&idx).unwrap_or_else(|e| panic!("{e}"));
        let mut correct = vec![0usize; m.num_tasks()];
        for (i, s) in samples.iter().enumerate() {
            let r = interp
                .run(Input::F32(s), &cfg, TaskMask::all(&m))
                .unwrap_or_else(|e| panic!("{e}"));
            for (t, c) in correct.iter_mut().enumerate() {
                let o = r.task(t).unwrap_or_else(|e| panic!("{e}"));
                if o.argmax() as i64 == labels[t][i] {
                    *c += 1;
                }
            }
        }
        let seg_m = |s: usize| m.segment(s).map_or(0.0, |g| g.widths[idx[s] as usize]);
        for (t, &n_correct) in correct.iter().enumerate() {
            let task = m.task(t).unwrap_or_else(|| panic!("task"));
            let ours = n_correct as f64 / samples.len() as f64;
            let enc = m.segment(0).map_or("", |s| s.name);
            let dec = m.segment(task.segment).map_or("", |s| s.name);
            let float = acc["float"].as_array().and_then(|es| {
                es.iter().find(|e| {
                    let w = &e["widths"];
                    (w[enc].as_f64().unwrap_or(-1.0) - seg_m(0) as f64).abs() < 1e-4
                        && (w[dec].as_f64().unwrap_or(-1.0) - seg_m(task.segment) as f64).abs()
                            < 1e-4
                })
            });
            let Some(f) = float.and_then(|e| e["accuracy"][task.name].as_f64()) else {
                continue;
            };
            worst = worst.max(f - ours);
            assert!(
                f - ours <= 0.015,
                "{name} {}: accuracy {ours:.4} at {enc}={}, {dec}={} vs float {f:.4}",
                task.name,
                seg_m(0),
                seg_m(task.segment)
            );
        }
    }
    eprintln!(
        "{name}: worst accuracy drop vs float over every width config: {:.2} points",
        worst * 100.0
    );
}

#[test]
fn digits_mtl() {
    check("digits-mtl", false);
}

#[test]
fn digits_mtl_qdq() {
    check("digits-mtl", true);
}

#[test]
fn mnist_mtl() {
    check("mnist-mtl", false);
}

#[test]
fn mcu_bench_mtl() {
    check("mcu-bench-mtl", false);
}

/// Width indices of `model` for a `{"segment": multiplier}` object (every segment named).
fn indices_of(m: &Model<'_>, widths: &serde_json::Value) -> Vec<u8> {
    (0..m.num_segments())
        .map(|s| {
            let seg = m.segment(s).unwrap_or_else(|| panic!("segment {s}"));
            let want = widths[seg.name]
                .as_f64()
                .unwrap_or_else(|| panic!("no width for {}", seg.name));
            seg.multipliers()
                .iter()
                .position(|&w| (f64::from(w) - want).abs() < 1e-4)
                .unwrap_or_else(|| panic!("{} has no width {want}", seg.name)) as u8
        })
        .collect()
}

/// mIoU over the classes present in labels or predictions (NCHW logits `[n, k, h, w]` against
/// labels `[n, h, w]`), and the fraction of pixels whose predicted class is `other`'s.
fn miou(logits: &Array<f32>, labels: &[i64]) -> f64 {
    let [n, k, h, w] = logits.shape[..] else {
        panic!("segmentation output {:?}", logits.shape)
    };
    let (mut tp, mut fp, mut fneg) = (vec![0u64; k], vec![0u64; k], vec![0u64; k]);
    for i in 0..n {
        for p in 0..h * w {
            let px = |c: usize| logits.data[(i * k + c) * h * w + p];
            let best = (0..k).fold(0, |b, c| if px(c) > px(b) { c } else { b });
            let l = labels[i * h * w + p] as usize;
            if l == best {
                tp[l] += 1;
            } else {
                fp[best] += 1;
                fneg[l] += 1;
            }
        }
    }
    let ious: Vec<f64> = (0..k)
        .filter(|&c| tp[c] + fp[c] + fneg[c] > 0)
        .map(|c| tp[c] as f64 / (tp[c] + fp[c] + fneg[c]) as f64)
        .collect();
    ious.iter().sum::<f64>() / ious.len().max(1) as f64
}

fn rmse(pred: &[f32], target: &[f32]) -> f64 {
    let sq: f64 = pred
        .iter()
        .zip(target)
        .map(|(p, t)| f64::from(p - t).powi(2))
        .sum();
    (sq / pred.len().max(1) as f64).sqrt()
}

/// A bundled dense model (tasks with `miou` and `rmse` metrics): compiled from the float ONNX,
/// its int8 outputs against PyTorch's golden outputs at every golden configuration, and its
/// int8 test metrics at every configuration of `accuracy.json` within 1 point of mIoU and 3%
/// of RMSE of the float model's there (computed here from the runtime's outputs).
fn check_dense(name: &str) {
    let dir = model_dir(name);
    let onnx = dir.join("model.onnx");
    assert!(onnx.exists(), "{name} is bundled");
    let t0 = std::time::Instant::now();
    let opts = CompileOptions {
        calib: Some(dir.join("calib.npy")),
        ..CompileOptions::default()
    };
    let c = compile(&onnx, &opts).unwrap_or_else(|e| panic!("{name}: {e:#}"));
    eprintln!(
        "{name}: compiled in {:.1} s; arena {} B; blob {} B",
        t0.elapsed().as_secs_f64(),
        c.report.arena_bytes,
        c.report.blob_bytes
    );
    assert!(c.report.arena_bytes as f64 <= 1.02 * c.report.arena_lower_bound as f64);
    let m = Model::parse(&c.blob).unwrap_or_else(|e| panic!("{e}"));
    let json = |f: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(dir.join(f)).unwrap_or_else(|e| panic!("{e}")))
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let task_of = |out: &str| -> usize {
        (0..m.num_tasks())
            .find(|&t| m.task(t).is_some_and(|i| i.name == out))
            .unwrap_or_else(|| panic!("task {out}"))
    };
    let (seg, depth) = (task_of("seg"), task_of("depth"));

    // Golden outputs: the segmentation's per-pixel class and the depth map.
    let golden = read_npz(&dir.join("golden.npz")).unwrap_or_else(|e| panic!("{e:#}"));
    let f32_of = |k: &str| -> Array<f32> {
        golden
            .get(k)
            .cloned()
            .and_then(|a| a.into_f32().ok())
            .unwrap_or_else(|| panic!("golden {k}"))
    };
    let gx = f32_of("x");
    let configs = json("golden.json");
    let configs = configs["configs"].as_array().expect("golden configs");
    assert!(configs.len() >= 4, "{} golden configs", configs.len());
    for cfg in configs {
        let id = cfg["id"].as_str().expect("id");
        let idx = indices_of(&m, &cfg["widths"]);
        let w = WidthConfig::from_indices(&idx).unwrap_or_else(|e| panic!("{e}"));
        let outs =
            run_batch(&c.blob, &gx, &w, TaskMask::all(&m)).unwrap_or_else(|e| panic!("{e:#}"));
        let gs = f32_of(&format!("out__{id}__seg"));
        let gd = f32_of(&format!("out__{id}__depth"));
        let [n, k, h, wd] = gs.shape[..] else {
            panic!("golden seg {:?}", gs.shape)
        };
        let (mut same, mut total) = (0usize, 0usize);
        for i in 0..n {
            for p in 0..h * wd {
                let arg = |v: &[f32]| {
                    (0..k).fold(0, |b, c| {
                        if v[(i * k + c) * h * wd + p] > v[(i * k + b) * h * wd + p] {
                            c
                        } else {
                            b
                        }
                    })
                };
                same += (arg(&gs.data) == arg(&outs[seg].float.data)) as usize;
                total += 1;
            }
        }
        let step = f64::from(outs[depth].quant.0);
        let close = outs[depth]
            .float
            .data
            .iter()
            .zip(&gd.data)
            .filter(|(a, b)| f64::from(*a - *b).abs() <= 3.0 * step)
            .count() as f64
            / gd.data.len() as f64;
        let agree = same as f64 / total as f64;
        eprintln!(
            "{name} {id}: seg class agreement {:.2}%, depth within 3 steps {:.2}%",
            100.0 * agree,
            100.0 * close
        );
        assert!(
            agree >= 0.95 && close >= 0.95,
            "{name} {id}: {agree} {close}"
        );
    }

    // Test metrics at every configuration of accuracy.json, int8 against float.
    let eval = read_npz(&dir.join("eval.npz")).unwrap_or_else(|e| panic!("{e:#}"));
    let ex = eval
        .get("x")
        .cloned()
        .and_then(|a| a.into_f32().ok())
        .expect("eval x");
    let y_seg = eval
        .get("y_seg")
        .cloned()
        .and_then(|a| a.into_i64().ok())
        .expect("y_seg");
    let y_depth = eval
        .get("y_depth")
        .cloned()
        .and_then(|a| a.into_f32().ok())
        .expect("y_depth");
    let acc = json("accuracy.json");
    let rows = acc["float"].as_array().expect("float rows");
    assert!(
        rows.len() >= 5,
        "{} configurations in accuracy.json",
        rows.len()
    );
    let (mut worst_miou, mut worst_rmse) = (0f64, 0f64);
    for row in rows {
        let idx = indices_of(&m, &row["widths"]);
        let w = WidthConfig::from_indices(&idx).unwrap_or_else(|e| panic!("{e}"));
        let outs =
            run_batch(&c.blob, &ex, &w, TaskMask::all(&m)).unwrap_or_else(|e| panic!("{e:#}"));
        let ours_miou = miou(&outs[seg].float, &y_seg.data);
        let ours_rmse = rmse(&outs[depth].float.data, &y_depth.data);
        let f_miou = row["metrics"]["seg"]["miou"].as_f64().expect("float miou");
        let f_rmse = row["metrics"]["depth"]["rmse"]
            .as_f64()
            .expect("float rmse");
        eprintln!(
            "{name} {idx:?}: mIoU {ours_miou:.4} (float {f_miou:.4}), RMSE {ours_rmse:.4} (float {f_rmse:.4})"
        );
        worst_miou = worst_miou.max(f_miou - ours_miou);
        worst_rmse = worst_rmse.max(ours_rmse / f_rmse - 1.0);
        assert!(
            f_miou - ours_miou <= 0.01,
            "{name} {idx:?}: mIoU {ours_miou} vs float {f_miou}"
        );
        assert!(
            ours_rmse <= 1.03 * f_rmse,
            "{name} {idx:?}: RMSE {ours_rmse} vs float {f_rmse}"
        );
    }
    eprintln!(
        "{name}: worst int8 loss over {} configurations: mIoU {:.2} points, RMSE {:+.1}%",
        rows.len(),
        100.0 * worst_miou,
        100.0 * worst_rmse
    );
}

#[test]
fn scenes_mtl() {
    check_dense("scenes-mtl");
}
