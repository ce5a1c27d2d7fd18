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

use edgeslim_runtime::Model;
use libfuzzer_sys::fuzz_target;

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
    // The body is shared with the robustness suite, which replays the committed corpus.
    edgeslim_tests::fuzz::parse_run_bytes(data);
});
