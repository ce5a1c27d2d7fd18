//! Compile arbitrary bytes as an ONNX file: `edgeslim-compiler`'s import (protobuf decoding,
//! tract's analysis, every op importer), graph passes, lowering, calibration, quantization,
//! arena plan and blob writing must return an error or a blob, never panic (a panic inside
//! tract is caught by the importer and reported as an error: it is not a crash here). A blob
//! the compiler returns must parse and run in the runtime.
//!
//! `cargo +nightly fuzz run compile corpus/compile ../tests/data` from `tools/compiler/fuzz/`
//! (the seeds are the compiler tests' small ONNX files; `runtime/fuzz/README.md`).
#![no_main]

use std::path::PathBuf;
use std::sync::LazyLock;

use edgeslim_compiler::passes::{self, quantize};
use edgeslim_runtime::{Input, Interpreter, Model, TaskMask, WidthConfig};
use libfuzzer_sys::fuzz_target;

/// Largest input (elements) calibrated and run: bigger models are compiled up to lowering.
const MAX_INPUT: usize = 1 << 14;
/// Largest arena the target allocates.
const MAX_ARENA: usize = 1 << 20;

/// The file the compiler reads: one per process (libFuzzer workers are processes).
static FILE: LazyLock<PathBuf> = LazyLock::new(|| {
    std::env::temp_dir().join(format!("edgeslim-fuzz-compile-{}.onnx", std::process::id()))
});

/// libFuzzer's panic hook aborts on every panic; the importer catches tract's panics and turns
/// them into errors, so only the panics it does not expect may abort.
fn hook() {
    let fuzzer = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !edgeslim_compiler::panic_expected() {
            fuzzer(info);
        }
    }));
}

fuzz_target!(init: hook(), |data: &[u8]| {
    std::fs::write(&*FILE, data).expect("the fuzz input is written to the temporary file");
    compile(&FILE);
});

fn compile(path: &std::path::Path) {
    let Ok(l) = edgeslim_compiler::lower(path) else {
        return;
    };
    let [h, w, c] = l.tensors[l.input].shape;
    let n = if l.input_is_vector { c } else { h * w * c };
    // A float model is calibrated on two samples (zeros and a ramp); a pre-quantized one uses
    // the file's scales, as `compile` does without `--calib`.
    let ranges = if l.prequantized {
        None
    } else if n <= MAX_INPUT {
        let ramp = (0..n).map(|i| (i % 17) as f32 / 8.0 - 1.0).collect();
        Some(quantize::calibrate(&l, &[vec![0.0; n], ramp], false))
    } else {
        return;
    };
    let mut warnings = Vec::new();
    let Ok(def) = quantize::run(&l, ranges.as_ref(), &mut warnings) else {
        return;
    };
    let plan = passes::plan::run(&def);
    let Ok(blob) = def.to_bytes(&plan) else {
        return;
    };
    let model = match Model::parse(&blob) {
        Ok(m) => m,
        Err(e) => panic!("the runtime rejects a blob the compiler wrote: {e}"),
    };
    if model.arena_bytes() > MAX_ARENA || model.input_len() > MAX_INPUT {
        return;
    }
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut interp = Interpreter::new(&model, &mut arena).expect("an arena of the model's size");
    let x = vec![0i8; model.input_len()];
    for widths in [WidthConfig::narrowest(&model), WidthConfig::full(&model)] {
        if let Err(e) = interp.run(Input::I8(&x), &widths, TaskMask::all(&model)) {
            panic!("a compiled model fails to run: {e}");
        }
    }
}
