//! The slimming invariants, on the hand-built two-task model (several seeds) and on random
//! models:
//!
//! - at every width configuration, the slimmable blob's outputs equal bit for bit those of a
//!   separately built narrow single-width model made of the sliced weights and that width's
//!   entries (`edgeslim_tests::slice`);
//! - running a subset of the tasks gives the same outputs for those tasks as running all;
//! - the outputs equal the naive whole-model reference (`naive::run_model`) at every width
//!   configuration (the "done when" check of issue 2: a hand-built two-task model, through
//!   the blob writer, runs at every width config with outputs checked against the naive
//!   reference);
//! - switching widths and tasks between runs on one interpreter gives what a fresh
//!   interpreter gives (no state leaks between runs, no read of stale arena bytes).

use edgeslim_runtime::writer::ModelDef;
use edgeslim_runtime::writer::example::two_task_model;
use edgeslim_runtime::{Error, Input, Interpreter, Model, TaskMask};
use edgeslim_tests::blob::{random_i8, run, run_blob, width_configs};
use edgeslim_tests::models::random_model;
use edgeslim_tests::naive;
use edgeslim_tests::slice::narrow_model;

const SEEDS: [u64; 5] = [1, 2, 7, 42, 0xDEAD_BEEF];

fn counts(def: &ModelDef) -> Vec<usize> {
    def.segments.iter().map(|s| s.widths.len()).collect()
}

fn all_tasks(def: &ModelDef) -> u32 {
    (1u32 << def.tasks.len()) - 1
}

fn input_len(def: &ModelDef) -> usize {
    def.tensors[def.input].bytes()
}

/// Every non-empty set of at most two tasks.
fn small_task_sets(n: usize) -> Vec<u32> {
    (1u32..1 << n).filter(|m| m.count_ones() <= 2).collect()
}

/// The narrow-model check for one def at every width config.
fn check_narrow(def: &ModelDef, inputs: &[Vec<i8>]) {
    let blob = def.to_bytes_planned().expect("writes");
    let full_weights = Model::parse(&blob).expect("parses").weight_bytes();
    for cfg in width_configs(&counts(def)) {
        let narrow = narrow_model(def, &cfg);
        let nblob = narrow.to_bytes_planned().expect("narrow writes");
        let nm = Model::parse(&nblob).unwrap_or_else(|e| panic!("narrow model at {cfg:?}: {e}"));
        assert!(nm.weight_bytes() <= full_weights);
        let ones = vec![0; cfg.len()];
        for x in inputs {
            let wide = run_blob(&blob, x, &cfg, all_tasks(def), 0).expect("slimmable runs");
            let thin = run_blob(&nblob, x, &ones, all_tasks(def), 0).expect("narrow runs");
            assert_eq!(wide, thin, "{}: width config {cfg:?}", def.name);
        }
    }
}

/// The naive-reference check for one def at every width config and every small task set.
fn check_naive(def: &ModelDef, inputs: &[Vec<i8>]) -> usize {
    let blob = def.to_bytes_planned().expect("writes");
    let mut checked = 0;
    for cfg in width_configs(&counts(def)) {
        for tasks in small_task_sets(def.tasks.len()) {
            for x in inputs {
                let got = run_blob(&blob, x, &cfg, tasks, 0).expect("runs");
                // No op reads arena bytes it did not write in this run.
                assert_eq!(got, run_blob(&blob, x, &cfg, tasks, 0xA5).expect("runs"));
                let want = naive::run_model(def, &cfg, tasks, x);
                assert_eq!(got.len(), want.len());
                for (o, (g, w)) in got.iter().zip(&want).enumerate() {
                    match (g, w) {
                        (None, None) => {}
                        (Some(g), Some(w)) => {
                            assert!(
                                w.matches(g),
                                "{}: output {o} at widths {cfg:?}, tasks {tasks:#b}:\n got  {g:?}\n want {:?} (tolerance {})",
                                def.name,
                                w.data,
                                w.tolerance
                            );
                            checked += 1;
                        }
                        _ => panic!(
                            "output {o}: ran {} vs reference {}",
                            g.is_some(),
                            w.is_some()
                        ),
                    }
                }
            }
        }
    }
    checked
}

fn inputs(def: &ModelDef, seed: u64) -> Vec<Vec<i8>> {
    let n = input_len(def);
    vec![
        random_i8(n, seed),
        random_i8(n, seed ^ 0x55),
        vec![127; n],
        vec![-128; n],
    ]
}

#[test]
fn two_task_model_equals_narrow_models_at_every_width() {
    for seed in SEEDS {
        let def = two_task_model(seed);
        assert_eq!(width_configs(&counts(&def)).len(), 12);
        check_narrow(&def, &inputs(&def, seed));
    }
}

#[test]
fn two_task_model_matches_naive_reference_at_every_width() {
    for seed in SEEDS {
        let def = two_task_model(seed);
        let n = check_naive(&def, &inputs(&def, seed));
        // 12 configs x (2 single tasks + 1 pair, 4 outputs) x 4 inputs.
        assert_eq!(n, 12 * 4 * 4, "every output was compared");
    }
}

#[test]
fn task_subsets_give_the_outputs_of_all_tasks() {
    for seed in SEEDS {
        let def = two_task_model(seed);
        let blob = def.to_bytes_planned().expect("writes");
        let x = random_i8(input_len(&def), seed);
        for cfg in width_configs(&counts(&def)) {
            let all = run_blob(&blob, &x, &cfg, all_tasks(&def), 0).expect("runs");
            assert!(all.iter().all(Option::is_some));
            for tasks in small_task_sets(def.tasks.len()) {
                let some = run_blob(&blob, &x, &cfg, tasks, 0).expect("runs");
                for (o, out) in some.iter().enumerate() {
                    if tasks & (1 << o) != 0 {
                        assert_eq!(out, &all[o], "output {o}, tasks {tasks:#b}, widths {cfg:?}");
                    } else {
                        assert_eq!(out, &None, "task {o} did not run");
                    }
                }
            }
        }
    }
}

/// Outputs of tasks that did not run are `OutputNotAvailable`, not stale data.
#[test]
fn outputs_of_tasks_not_run_are_not_available() {
    let def = two_task_model(3);
    let blob = def.to_bytes_planned().expect("writes");
    let m = Model::parse(&blob).expect("parses");
    let mut arena = vec![0u8; m.arena_bytes()];
    let mut it = Interpreter::new(&m, &mut arena).expect("arena fits");
    let x = random_i8(m.input_len(), 3);
    let w = edgeslim_tests::blob::wc(&[1, 1, 2]);
    it.run(Input::I8(&x), &w, TaskMask::all(&m)).expect("runs");
    let outs = it
        .run(Input::I8(&x), &w, TaskMask::single(1))
        .expect("runs");
    assert_eq!(
        outs.get(0).unwrap_err(),
        Error::OutputNotAvailable { index: 0 }
    );
    assert!(outs.get(1).is_ok());
    assert_eq!(outs.iter().count(), 1);
}

#[test]
fn switching_widths_leaks_no_state() {
    for seed in SEEDS {
        let def = two_task_model(seed);
        let blob = def.to_bytes_planned().expect("writes");
        let m = Model::parse(&blob).expect("parses");
        let x = random_i8(m.input_len(), seed);
        let cfgs = width_configs(&counts(&def));
        let mut runs: Vec<(Vec<usize>, u32)> = Vec::new();
        for tasks in small_task_sets(def.tasks.len()) {
            runs.extend(cfgs.iter().map(|c| (c.clone(), tasks)));
            runs.extend(cfgs.iter().rev().map(|c| (c.clone(), tasks)));
        }
        // Interleave: widest, narrowest, and back, on alternating task sets.
        let n = runs.len();
        let order: Vec<usize> = (0..n).map(|i| (i * 7 + 3) % n).collect();
        // A fresh interpreter on a zeroed and on a garbage arena give the same outputs.
        let fresh = |c: &[usize], t: u32| {
            let a = run_blob(&blob, &x, c, t, 0).expect("runs");
            assert_eq!(
                a,
                run_blob(&blob, &x, c, t, 0xA5).expect("runs"),
                "reads stale arena bytes"
            );
            a
        };
        let mut arena = vec![0x5Au8; m.arena_bytes()];
        let mut it = Interpreter::new(&m, &mut arena).expect("arena fits");
        for i in order.into_iter().chain(0..n) {
            let (c, t) = &runs[i];
            assert_eq!(
                run(&mut it, &x, c, *t).expect("runs"),
                fresh(c, *t),
                "widths {c:?} tasks {t:#b}"
            );
        }
    }
}

/// The float input path quantizes exactly as ONNX `QuantizeLinear` with the model's input
/// parameters.
#[test]
fn float_input_equals_its_quantized_int8_input() {
    let def = two_task_model(11);
    let blob = def.to_bytes_planned().expect("writes");
    let m = Model::parse(&blob).expect("parses");
    let (scale, zp) = m.input_quant();
    let xf: Vec<f32> = random_i8(m.input_len(), 5)
        .iter()
        .map(|&v| v as f32 * 0.013 + 0.25 * scale)
        .collect();
    let xq = naive::quantize(&xf, scale, zp);
    let mut arena = vec![0u8; m.arena_bytes()];
    let mut it = Interpreter::new(&m, &mut arena).expect("arena fits");
    let w = edgeslim_runtime::WidthConfig::full(&m);
    let a: Vec<Vec<i8>> = it
        .run(Input::F32(&xf), &w, TaskMask::all(&m))
        .expect("runs")
        .iter()
        .map(|o| o.data.to_vec())
        .collect();
    let b: Vec<Vec<i8>> = it
        .run(Input::I8(&xq), &w, TaskMask::all(&m))
        .expect("runs")
        .iter()
        .map(|o| o.data.to_vec())
        .collect();
    assert_eq!(a, b);
}

/// Random chains and diamonds in an encoder and one or two decoders, each segment with its
/// own widths: the narrow-model and naive-reference checks at every width config.
#[test]
fn random_models_match_narrow_models_and_naive_reference() {
    let mut compared = 0;
    let mut kinds = std::collections::BTreeSet::new();
    for seed in 0..40u64 {
        let def = random_model(seed);
        kinds.extend(def.ops.iter().map(|o| o.kind as u32));
        let ins = vec![
            random_i8(input_len(&def), seed),
            random_i8(input_len(&def), !seed),
        ];
        check_narrow(&def, &ins[..1]);
        compared += check_naive(&def, &ins);
    }
    assert!(compared > 100, "compared {compared} outputs");
    // Every op kind the generator knows must have been drawn (and so checked) at least once.
    let missing: Vec<u32> = (1..=32)
        .filter(|&k| edgeslim_runtime::OpKind::from_u32(k).is_some() && !kinds.contains(&k))
        .collect();
    assert!(missing.is_empty(), "op kinds never generated: {missing:?}");
}

/// A compiled model whose encoder has three stages, each at its own width (tiny_staged.onnx:
/// a fixed skip from stage 1 into the segmentation decoder, a ConvTranspose depth decoder):
/// at every one of its 48 width configurations (decoders independent) and every task set, the
/// blob equals the narrow model of that configuration and the naive reference.
#[test]
fn per_stage_encoder_matches_narrow_models_and_naive_reference() {
    let data =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/compiler/tests/data");
    let l = edgeslim_compiler::lower(&data.join("tiny_staged.onnx")).expect("lowers");
    let samples =
        edgeslim_compiler::load_calibration(&l, &data.join("calib.npy"), 32).expect("calib");
    let ranges = edgeslim_compiler::passes::quantize::calibrate(&l, &samples, false);
    let def = edgeslim_compiler::passes::quantize::run(&l, Some(&ranges), &mut Vec::new())
        .expect("quantizes");
    assert_eq!(def.encoder_segments, 3);
    assert_eq!(width_configs(&counts(&def)).len(), 48);
    let x = inputs(&def, 11);
    check_narrow(&def, &x);
    assert!(check_naive(&def, &x) > 48 * 4);
}
