//! The runtime's accelerator interface (`Accelerator`, `Interpreter::run_accelerated`,
//! `run_op`): segments handed off, declined ones run on the CPU, outputs bit-exact with the
//! plain interpreter; a device that accepts a segment really replaces the CPU for it; errors
//! come through.

use edgeslim_compiler::{CompileOptions, compile};
use edgeslim_runtime::{
    Accelerator, Error, Input, Interpreter, Model, TaskMask, WidthConfig, run_op,
};
use edgeslim_tests::blob::random_i8;
use std::path::Path;

fn blob(rel: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel);
    let opts = CompileOptions {
        calib: Some(path.with_file_name("calib.npy")),
        max_calib_samples: 64,
        progress: false,
    };
    compile(&path, &opts)
        .unwrap_or_else(|e| panic!("{rel}: {e:#}"))
        .blob
}

/// Runs the segments `accept` picks itself, op by op through `run_op` (as a device driver
/// would run what it supports and fall back for the rest), and records every offer.
struct Recording<F: Fn(usize) -> bool> {
    accept: F,
    offers: Vec<(usize, Vec<u8>, bool)>,
    ops_run: usize,
}

impl<F: Fn(usize) -> bool> Accelerator for Recording<F> {
    fn run_segment(
        &mut self,
        model: &Model<'_>,
        segment: usize,
        widths: &WidthConfig,
        arena: &mut [u8],
    ) -> Result<bool, Error> {
        let take = (self.accept)(segment);
        self.offers
            .push((segment, widths.as_slice().to_vec(), take));
        if take {
            for i in 0..model.num_ops() {
                if model.op(i).is_some_and(|o| o.segment == segment) {
                    run_op(model, arena, i, widths)?;
                    self.ops_run += 1;
                }
            }
        }
        Ok(take)
    }
}

/// Every output's bytes from the plain interpreter, or with `acc` when given.
fn outputs<A: Accelerator>(
    model: &Model<'_>,
    x: &[i8],
    w: &WidthConfig,
    t: TaskMask,
    acc: Option<&mut A>,
) -> Vec<Vec<i8>> {
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut interp = Interpreter::new(model, &mut arena).expect("interpreter");
    let out = match acc {
        Some(a) => interp.run_accelerated(Input::I8(x), w, t, a),
        None => interp.run(Input::I8(x), w, t),
    };
    out.expect("run").iter().map(|o| o.data.to_vec()).collect()
}

fn configs(model: &Model<'_>) -> Vec<WidthConfig> {
    let mut v = vec![WidthConfig::full(model), WidthConfig::narrowest(model)];
    let mut w = WidthConfig::full(model);
    w.set(0, 0).expect("encoder");
    v.push(w);
    v
}

fn masks(model: &Model<'_>) -> Vec<TaskMask> {
    let mut v = vec![TaskMask::all(model)];
    v.extend((0..model.num_tasks()).map(TaskMask::single));
    v
}

#[test]
fn handed_off_and_declined_segments_give_the_cpu_bytes() {
    let mut compared = 0;
    for rel in [
        "models/digits-mtl/model.onnx",
        "models/mcu-bench-mtl/model.onnx",
    ] {
        let b = blob(rel);
        let model = Model::parse(&b).expect("parse");
        let x = random_i8(model.input_len(), 7);
        for w in configs(&model) {
            for t in masks(&model) {
                let plain = outputs::<Failing>(&model, &x, &w, t, None);
                // Decoders on the device, the encoder declined; then the reverse.
                for accept_decoders in [true, false] {
                    let mut acc = Recording {
                        accept: |s: usize| (s > 0) == accept_decoders,
                        offers: Vec::new(),
                        ops_run: 0,
                    };
                    let got = outputs(&model, &x, &w, t, Some(&mut acc));
                    assert_eq!(got, plain, "{rel} {:?} tasks {:#b}", w.as_slice(), t.0);
                    // Each running segment offered once, in order, with the run's widths.
                    let mut running = vec![0];
                    for k in 0..model.num_tasks() {
                        let s = model.task_segment(k);
                        if t.contains(k) && !running.contains(&s) {
                            running.push(s);
                        }
                    }
                    running.sort();
                    let offered: Vec<usize> = acc.offers.iter().map(|o| o.0).collect();
                    assert_eq!(offered, running, "{rel}: offers");
                    assert!(acc.offers.iter().all(|o| o.1 == w.as_slice()));
                    let taken = acc.offers.iter().filter(|o| o.2).count();
                    assert_eq!(taken > 0, acc.ops_run > 0);
                    compared += 1;
                }
            }
        }
    }
    assert!(compared >= 24, "compared {compared} runs");
}

/// A device that accepts a decoder but writes a constant into its output: the run returns
/// the device's bytes, so the CPU did not run that decoder.
struct Constant {
    segment: usize,
    fill: u8,
}

impl Accelerator for Constant {
    fn run_segment(
        &mut self,
        model: &Model<'_>,
        segment: usize,
        _: &WidthConfig,
        arena: &mut [u8],
    ) -> Result<bool, Error> {
        if segment != self.segment {
            return Ok(false);
        }
        for k in 0..model.num_outputs() {
            let o = model.output(k).expect("output");
            if model.task_segment(o.task) == segment {
                let t = model.tensor(o.tensor).expect("tensor");
                arena[t.offset..t.offset + t.bytes()].fill(self.fill);
            }
        }
        Ok(true)
    }
}

struct Failing;

impl Accelerator for Failing {
    fn run_segment(
        &mut self,
        _: &Model<'_>,
        _: usize,
        _: &WidthConfig,
        _: &mut [u8],
    ) -> Result<bool, Error> {
        Err(Error::ArenaTooSmall {
            needed: 1,
            given: 0,
        })
    }
}

#[test]
fn an_accepted_segment_is_not_run_on_the_cpu_and_errors_come_through() {
    let b = blob("models/digits-mtl/model.onnx");
    let model = Model::parse(&b).expect("parse");
    let x = random_i8(model.input_len(), 3);
    let w = WidthConfig::full(&model);
    let all = TaskMask::all(&model);
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut interp = Interpreter::new(&model, &mut arena).expect("interpreter");
    let plain: Vec<Vec<i8>> = interp
        .run(Input::I8(&x), &w, all)
        .expect("run")
        .iter()
        .map(|o| o.data.to_vec())
        .collect();
    let mut acc = Constant {
        segment: 1,
        fill: 0x7f,
    };
    let got: Vec<(usize, Vec<i8>)> = interp
        .run_accelerated(Input::I8(&x), &w, all, &mut acc)
        .expect("run")
        .iter()
        .map(|o| (o.task, o.data.to_vec()))
        .collect();
    let mut device_outputs = 0;
    for ((task, g), p) in got.iter().zip(&plain) {
        if model.task_segment(*task) == 1 {
            assert!(g.iter().all(|&v| v == 0x7f), "the device's bytes");
            assert_ne!(g, p, "the CPU's result would differ");
            device_outputs += 1;
        } else {
            assert_eq!(g, p, "the other decoder ran on the CPU");
        }
    }
    assert!(device_outputs > 0);
    let err = interp
        .run_accelerated(Input::I8(&x), &w, all, &mut Failing)
        .unwrap_err();
    assert_eq!(
        err,
        Error::ArenaTooSmall {
            needed: 1,
            given: 0
        }
    );
    // run_op: a missing op and a short arena are errors, not panics.
    let mut small = vec![0u8; 4];
    assert!(run_op(&model, &mut small, 0, &w).is_err());
    let mut arena = vec![0u8; model.arena_bytes()];
    assert!(run_op(&model, &mut arena, model.num_ops(), &w).is_err());
}
