//! Parse arbitrary bytes as a model blob; when they validate, run the model at every width
//! configuration (up to 256) on all tasks and on each task alone with a zero input, and on all
//! tasks with an input of the fuzzed bytes themselves (values on both sides of every zero
//! point, so that value-dependent paths run too: PRelu's negative side, saturating
//! requantizations, table lookups over the whole table), on an arena of exactly the model's
//! size (at most 1 MiB). Nothing may panic, hang or read out of bounds.
//!
//! `cargo +nightly fuzz run parse_run` from `runtime/fuzz/` (`README.md`). Before fuzzing, the
//! target writes its seeds, the valid blobs of `edgeslim_tests::models::seed_blobs` (the
//! two-task model, the every-op model and random models: every op kind), into the corpus
//! directory it is given (`corpus/parse_run/` under `cargo fuzz run`), so that a new user's
//! first run starts past the header checks.
#![no_main]

use edgeslim_runtime::format::{HEADER_LEN, crc32};
use edgeslim_runtime::{Input, Interpreter, Model, TaskMask, WidthConfig};
use libfuzzer_sys::fuzz_target;

/// Largest arena (and input) the target allocates: bigger models are parsed only.
const MAX_ARENA: usize = 1 << 20;

/// Write the seed blobs as `seed-<i>.eslm` into the first corpus directory on the command line
/// (libFuzzer reads its corpus after this runs). Nothing when no directory is given.
fn write_seeds() {
    let Some(dir) = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .map(std::path::PathBuf::from)
        .find(|p| p.is_dir())
    else {
        return;
    };
    for (i, blob) in edgeslim_tests::models::seed_blobs().iter().enumerate() {
        assert!(Model::parse(blob).is_ok(), "seed {i} must be a valid model");
        let path = dir.join(format!("seed-{i}.eslm"));
        if let Err(e) = std::fs::write(&path, blob) {
            panic!("cannot write the seed {}: {e}", path.display());
        }
    }
}

fuzz_target!(init: write_seeds(), |data: &[u8]| {
    // As given (exercises the header and CRC checks), then with the header's body CRC
    // recomputed, so that mutations reach the validator instead of dying at the CRC.
    parse_run(data);
    if data.len() >= HEADER_LEN {
        let mut fixed = data.to_vec();
        let body_len = u32::from_le_bytes([data[8], data[9], data[10], data[11]]) as usize;
        let end = HEADER_LEN.saturating_add(body_len).min(data.len());
        let crc = crc32(&fixed[HEADER_LEN..end]);
        fixed[12..16].copy_from_slice(&crc.to_le_bytes());
        if fixed[12..16] != data[12..16] {
            parse_run(&fixed);
        }
    }
});

fn parse_run(data: &[u8]) {
    let Ok(model) = Model::parse(data) else {
        return;
    };
    if model.arena_bytes() > MAX_ARENA || model.input_len() > MAX_ARENA {
        return;
    }
    // One byte short must be refused.
    if model.arena_bytes() > 0 {
        let mut small = vec![0u8; model.arena_bytes() - 1];
        assert!(Interpreter::new(&model, &mut small).is_err());
    }
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut interp = Interpreter::new(&model, &mut arena).expect("an arena of the model's size");
    let input = vec![0i8; model.input_len()];
    let varied: Vec<i8> = data
        .iter()
        .rev()
        .cycle()
        .take(model.input_len())
        .map(|&b| b as i8)
        .collect();
    let n_seg = model.num_segments();
    let counts: Vec<usize> = (0..n_seg)
        .map(|s| model.segment(s).map_or(1, |g| g.n_widths))
        .collect();
    let mut masks = vec![TaskMask::all(&model)];
    masks.extend((0..model.num_tasks()).map(TaskMask::single));
    let mut idx = vec![0u8; n_seg];
    for _ in 0..256 {
        let widths = WidthConfig::from_indices(&idx).expect("at most 16 segments");
        let runs = masks
            .iter()
            .map(|&m| (&input, m))
            .chain([(&varied, TaskMask::all(&model))]);
        for (x, mask) in runs {
            if let Ok(outs) = interp.run(Input::I8(x), &widths, mask) {
                for o in outs.iter() {
                    let mut f = vec![0f32; o.data.len()];
                    let _ = o.dequantize_into(&mut f);
                    let _ = o.argmax();
                }
            }
        }
        // Next configuration (odometer order); stop after the last.
        let mut s = 0;
        loop {
            if s == n_seg {
                return;
            }
            idx[s] += 1;
            if (idx[s] as usize) < counts[s] {
                break;
            }
            idx[s] = 0;
            s += 1;
        }
    }
}
