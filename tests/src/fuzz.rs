//! The body of the `parse_run` fuzz target (`runtime/fuzz/`), shared with the robustness
//! suite, which replays the committed corpus with it on the host and on a 32-bit target.

use edgeslim_runtime::format::{HEADER_LEN, crc32};
use edgeslim_runtime::{Input, Interpreter, Model, TaskMask, WidthConfig};

/// Largest arena (and input) allocated: bigger models are parsed only.
pub const MAX_ARENA: usize = 1 << 20;

/// `data` as a model blob as given (the header and CRC checks), then with the header's body
/// CRC recomputed (so that mutations reach the validator instead of dying at the CRC); each
/// that parses runs as [`parse_run`] does. Returns how many of the two parsed. Panics only
/// where the runtime broke a promise (an arena of the model's size refused, one byte less
/// accepted); a panic inside the runtime is the failure the fuzzer looks for.
pub fn parse_run_bytes(data: &[u8]) -> usize {
    let mut parsed = parse_run(data) as usize;
    if data.len() >= HEADER_LEN {
        let mut fixed = data.to_vec();
        let body_len = u32::from_le_bytes([data[8], data[9], data[10], data[11]]) as usize;
        let end = HEADER_LEN.saturating_add(body_len).min(data.len());
        let crc = crc32(&fixed[HEADER_LEN..end]);
        fixed[12..16].copy_from_slice(&crc.to_le_bytes());
        if fixed[12..16] != data[12..16] {
            parsed += parse_run(&fixed) as usize;
        }
    }
    parsed
}

/// Parse `data`; when it validates, run the model at every width configuration (up to 256)
/// on all tasks and on each task alone with a zero input, and on all tasks with an input of
/// the bytes themselves (values on both sides of every zero point, so that value-dependent
/// paths run too), on an arena of exactly the model's size (at most [`MAX_ARENA`]). Whether it
/// parsed.
pub fn parse_run(data: &[u8]) -> bool {
    let Ok(model) = Model::parse(data) else {
        return false;
    };
    if model.arena_bytes() > MAX_ARENA || model.input_len() > MAX_ARENA {
        return true;
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
                return true;
            }
            idx[s] += 1;
            if (idx[s] as usize) < counts[s] {
                break;
            }
            idx[s] = 0;
            s += 1;
        }
    }
    true
}
