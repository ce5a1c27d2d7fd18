//! Parser and interpreter robustness: bad bytes and bad run arguments give an `Error`, never
//! a panic, and the specific errors are the documented ones.

use edgeslim_runtime::format::{HEADER_LEN, VERSION, kind};
use edgeslim_runtime::writer::example::{two_task_blob, two_task_model};
use edgeslim_runtime::{Error, Input, Interpreter, Model, Section, TaskMask, WidthConfig};
use edgeslim_tests::blob::{
    crc32, fix_crc, model_width_counts, random_i8, section, wc, width_configs,
};
use edgeslim_tests::models::random_model;

/// Largest arena the robustness tests allocate for a mutated model.
const MAX_ARENA: usize = 1 << 20;

/// Run a parsed (possibly mutated) model at every width config (up to 64) with a zero input,
/// on all tasks and on each task alone; nothing may panic. Returns how many runs succeeded.
fn run_everywhere(m: &Model<'_>) -> usize {
    if m.arena_bytes() > MAX_ARENA || m.input_len() > MAX_ARENA {
        return 0;
    }
    let mut arena = vec![0u8; m.arena_bytes()];
    let Ok(mut it) = Interpreter::new(m, &mut arena) else {
        panic!("an arena of the model's size must be accepted");
    };
    let x = vec![0i8; it.model().input_len()];
    let counts = model_width_counts(it.model());
    let n_tasks = it.model().num_tasks();
    let mut masks = vec![TaskMask::all(it.model())];
    masks.extend((0..n_tasks.min(4)).map(TaskMask::single));
    let mut ok = 0;
    for cfg in width_configs(&counts).into_iter().take(64) {
        for &mask in &masks {
            if let Ok(outs) = it.run(Input::I8(&x), &wc(&cfg), mask) {
                for o in outs.iter() {
                    let mut f = vec![0f32; o.data.len()];
                    o.dequantize_into(&mut f)
                        .expect("buffer of the output's size");
                    let _ = o.argmax();
                }
                ok += 1;
            }
        }
    }
    ok
}

fn blobs() -> Vec<Vec<u8>> {
    let mut v = vec![
        two_task_blob(),
        two_task_model(99).to_bytes_planned().expect("writes"),
    ];
    v.extend((0..3).map(|s| random_model(s).to_bytes_planned().expect("writes")));
    v
}

#[test]
fn every_truncation_is_an_error() {
    for blob in blobs() {
        assert!(Model::parse(&blob).is_ok());
        for len in 0..blob.len() {
            let r = Model::parse(&blob[..len]);
            let needed = if len < HEADER_LEN {
                HEADER_LEN
            } else {
                blob.len()
            };
            assert_eq!(r.unwrap_err(), Error::Truncated { needed, given: len });
        }
    }
}

/// Truncations whose header is patched to the new length (and the CRC fixed), so that the
/// section table and records are what is cut: an error, or (cutting trailing padding only) a
/// model that runs.
#[test]
fn truncations_with_a_consistent_header_are_errors_or_run() {
    for blob in blobs() {
        let mut valid = 0;
        for len in HEADER_LEN..blob.len() {
            let mut b = blob[..len].to_vec();
            b[8..12].copy_from_slice(&((len - HEADER_LEN) as u32).to_le_bytes());
            fix_crc(&mut b);
            if let Ok(m) = Model::parse(&b) {
                run_everywhere(&m);
                valid += 1;
            }
        }
        assert!(valid < 16, "only trailing padding may be cut");
    }
}

/// xorshift64.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Apply 1 to 4 random mutations, biased toward the structural sections (not the weights)
/// and toward "interesting" u32 values at aligned offsets.
fn mutate(blob: &mut [u8], r: &mut Rng) {
    let structural: Vec<(usize, usize)> = [
        kind::GRAPH,
        kind::SEGMENTS,
        kind::TASKS,
        kind::OUTPUTS,
        kind::TENSORS,
        kind::OPS,
        kind::OP_INPUTS,
        kind::PARAMS,
    ]
    .iter()
    .map(|&k| section(blob, k))
    .collect();
    for _ in 0..1 + r.below(4) {
        let pos = match r.below(4) {
            0 => r.below(blob.len()),
            1 => HEADER_LEN + r.below(10 * 16),
            _ => {
                let (off, len) = structural[r.below(structural.len())];
                off + r.below(len.max(1))
            }
        };
        if r.below(3) == 0 {
            let at = (pos & !3).min(blob.len() - 4);
            let v: u32 = match r.below(6) {
                0 => 0,
                1 => 1,
                2 => u32::MAX,
                3 => r.below(64) as u32,
                4 => 0x8000_0000,
                _ => r.next() as u32,
            };
            blob[at..at + 4].copy_from_slice(&v.to_le_bytes());
        } else {
            blob[pos] ^= 1 + r.below(255) as u8;
        }
    }
}

#[test]
fn random_mutations_with_fixed_crc_give_errors_or_models_that_run() {
    let mut r = Rng(0x0123_4567_89AB_CDEF);
    let (mut parsed, mut runs, mut total) = (0, 0, 0);
    for blob in blobs() {
        for _ in 0..1000 {
            let mut b = blob.clone();
            mutate(&mut b, &mut r);
            fix_crc(&mut b);
            total += 1;
            if let Ok(m) = Model::parse(&b) {
                parsed += 1;
                runs += run_everywhere(&m);
            }
        }
    }
    // The validator is exercised (most mutations are caught) and some mutants still run.
    assert!(parsed < total / 2, "{parsed} of {total} mutants parsed");
    assert!(
        parsed > 0 && runs > 0,
        "{parsed} mutants parsed, {runs} runs"
    );
}

#[test]
fn random_mutations_without_crc_fix_are_errors() {
    let mut r = Rng(0xFEED_FACE_CAFE_BEEF);
    for blob in blobs() {
        for _ in 0..1000 {
            let mut b = blob.clone();
            mutate(&mut b, &mut r);
            let header_same = b[..HEADER_LEN] == blob[..HEADER_LEN];
            match Model::parse(&b) {
                Err(Error::CrcMismatch { expected, computed }) => {
                    assert_eq!(expected, u32::from_le_bytes(b[12..16].try_into().unwrap()));
                    let end = (HEADER_LEN
                        + u32::from_le_bytes(b[8..12].try_into().unwrap()) as usize)
                        .min(b.len());
                    assert_eq!(computed, crc32(&b[HEADER_LEN..end]));
                }
                Err(e) => assert!(
                    !header_same || b == blob,
                    "body mutation gave {e:?}, not CrcMismatch"
                ),
                Ok(m) => {
                    assert!(
                        b[HEADER_LEN..] == blob[HEADER_LEN..],
                        "a changed body passed the CRC"
                    );
                    run_everywhere(&m);
                }
            }
        }
    }
}

/// Every single-byte change of the header and section table, CRC fixed.
#[test]
fn every_header_and_table_byte_change_is_handled() {
    let blob = two_task_blob();
    for pos in 0..HEADER_LEN + 10 * 16 {
        for v in [0u8, 1, 0x7F, 0x80, 0xFF, blob[pos] ^ 0x10] {
            let mut b = blob.clone();
            b[pos] = v;
            if (8..16).contains(&pos) {
                // Keep the body length's and CRC's own mutations: no fix-up.
            } else {
                fix_crc(&mut b);
            }
            if let Ok(m) = Model::parse(&b) {
                run_everywhere(&m);
            }
        }
    }
}

#[test]
fn specific_blob_errors() {
    let blob = two_task_blob();
    let mut b = blob.clone();
    b[0] = b'X';
    assert_eq!(Model::parse(&b).unwrap_err(), Error::BadMagic);

    for v in [VERSION + 1, 0, u16::MAX] {
        let mut b = blob.clone();
        b[4..6].copy_from_slice(&v.to_le_bytes());
        assert_eq!(
            Model::parse(&b).unwrap_err(),
            Error::UnsupportedVersion {
                found: v,
                supported: VERSION
            }
        );
    }
    // A blob of the previous format version (v1: no tensor producers) is refused with a hint
    // to recompile, a newer one as too new.
    let mut b = blob.clone();
    b[4..6].copy_from_slice(&1u16.to_le_bytes());
    let old = Model::parse(&b).unwrap_err().to_string();
    assert!(
        old.contains("version 1 is older") && old.contains("recompile"),
        "{old}"
    );
    let mut b = blob.clone();
    b[4..6].copy_from_slice(&(VERSION + 1).to_le_bytes());
    let new = Model::parse(&b).unwrap_err().to_string();
    assert!(new.contains("newer"), "{new}");

    let mut b = blob.clone();
    let (w_off, _) = section(&b, kind::WEIGHTS);
    b[w_off] ^= 1;
    assert_eq!(
        Model::parse(&b).unwrap_err(),
        Error::CrcMismatch {
            expected: crc32(&blob[HEADER_LEN..]),
            computed: crc32(&b[HEADER_LEN..]),
        }
    );
    // The same change with the CRC fixed is a valid model (weights are not validated).
    fix_crc(&mut b);
    assert!(Model::parse(&b).is_ok());

    let mut b = blob.clone();
    b[16] = 9;
    fix_crc(&mut b);
    assert!(matches!(
        Model::parse(&b).unwrap_err(),
        Error::Invalid {
            section: Section::Header,
            field: "section_count",
            ..
        }
    ));
}

#[test]
fn specific_run_errors() {
    let blob = two_task_blob();
    let m = Model::parse(&blob).expect("parses");
    let needed = m.arena_bytes();
    let mut small = vec![0u8; needed - 1];
    assert_eq!(
        Interpreter::new(&m, &mut small).unwrap_err(),
        Error::ArenaTooSmall {
            needed,
            given: needed - 1
        }
    );
    let mut arena = vec![0u8; needed];
    let mut it = Interpreter::new(&m, &mut arena).expect("exact size is enough");
    let n = m.input_len();
    let full = WidthConfig::full(&m);
    let all = TaskMask::all(&m);
    let x = random_i8(n + 1, 1);
    assert_eq!(
        it.run(Input::I8(&x), &full, all).unwrap_err(),
        Error::InputLength {
            expected: n,
            given: n + 1
        }
    );
    let xf = vec![0.0f32; n - 1];
    assert_eq!(
        it.run(Input::F32(&xf), &full, all).unwrap_err(),
        Error::InputLength {
            expected: n,
            given: n - 1
        }
    );
    let x = &x[..n];
    // Segment widths are (2, 2, 3).
    assert_eq!(
        it.run(Input::I8(x), &wc(&[1, 1, 3]), all).unwrap_err(),
        Error::WidthOutOfRange {
            segment: 2,
            index: 3,
            count: 3
        }
    );
    assert_eq!(
        it.run(Input::I8(x), &wc(&[2, 0, 0]), all).unwrap_err(),
        Error::WidthOutOfRange {
            segment: 0,
            index: 2,
            count: 2
        }
    );
    assert_eq!(
        it.run(Input::I8(x), &wc(&[1, 1]), all).unwrap_err(),
        Error::WidthCount {
            expected: 3,
            given: 2
        }
    );
    assert_eq!(
        it.run(Input::I8(x), &wc(&[1, 1, 2, 0]), all).unwrap_err(),
        Error::WidthCount {
            expected: 3,
            given: 4
        }
    );
    assert_eq!(
        it.run(Input::I8(x), &full, TaskMask(0)).unwrap_err(),
        Error::EmptyTaskMask
    );
    assert_eq!(
        it.run(Input::I8(x), &full, TaskMask(0b101)).unwrap_err(),
        Error::UnknownTask { bit: 2 }
    );
    assert_eq!(
        it.run(Input::I8(x), &full, TaskMask(1 << 31)).unwrap_err(),
        Error::UnknownTask { bit: 31 }
    );
    // After the errors the interpreter still runs.
    assert!(it.run(Input::I8(x), &full, all).is_ok());
    assert!(matches!(
        WidthConfig::from_indices(&[0; 17]),
        Err(Error::Capacity { .. })
    ));
}

/// Regression: a valid blob may hold a pooling window of `u32::MAX` x `u32::MAX`. The window
/// loops used to visit every window position (a hang: 15 s for a 15M-wide window found by the
/// mutation test above; 2^64 steps for this one) and the `count_include_pad` divisor
/// `kh * kw` was truncated to i32 (to 1 here).
#[test]
fn huge_pool_windows_run_in_bounded_time() {
    use edgeslim_runtime::format::{OpKind, attr};
    let mut def = two_task_model(5);
    for op in def
        .ops
        .iter_mut()
        .filter(|o| o.kind == OpKind::AvgPool || o.kind == OpKind::MaxPool)
    {
        op.attrs[attr::KERNEL_H] = u32::MAX;
        op.attrs[attr::KERNEL_W] = u32::MAX;
        op.attrs[attr::COUNT_INCLUDE_PAD] = 1;
    }
    let blob = def.to_bytes_planned().expect("writes");
    let m = Model::parse(&blob).expect("a huge window is valid");
    let t = std::time::Instant::now();
    assert_eq!(run_everywhere(&m), 12 * 3);
    assert!(t.elapsed().as_secs() < 5, "took {:?}", t.elapsed());
}

/// Not a test: writes valid blobs as seeds for the cargo-fuzz target
/// (`runtime/fuzz/corpus/parse_run/`).
#[test]
#[ignore]
fn write_fuzz_seeds() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../runtime/fuzz/corpus/parse_run");
    std::fs::create_dir_all(&dir).expect("corpus directory");
    for (i, b) in blobs().iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{i}.eslm")), b).expect("seed written");
    }
}

/// Regression (found by `cargo fuzz run parse_run`): an op that writes the graph input, with
/// an out-of-range segment. Validating an earlier op that reads the graph input looked up the
/// input's quantization through its "producer" (that later, not yet validated op) and indexed
/// the segments section with its segment: a panic instead of an error.
#[test]
fn an_op_writing_the_graph_input_is_an_error() {
    for (segment, in_segment) in [
        (7, Some(0)),
        (3, Some(0)),
        (7, None),
        (1, Some(9)),
        (0, None),
    ] {
        let mut def = two_task_model(1);
        let last = def.ops.len() - 1;
        def.ops[last].output = def.input;
        def.ops[last].segment = segment;
        def.ops[last].in_segment = in_segment;
        let blob = def.to_bytes_planned().expect("writes");
        assert!(Model::parse(&blob).is_err());
    }
}

/// Structured mutations: random changes of the fields of a `ModelDef` (op kinds, inputs,
/// outputs, segments, attributes, weight shapes, width entries, tensor shapes, tasks,
/// segment widths, op order), written with a fresh plan. Coordinated changes that byte flips
/// rarely make (an op writing the graph input, a decoder keyed on a missing segment) reach
/// the validator; every blob is an error or a model that runs.
#[test]
fn random_model_def_mutations_give_errors_or_models_that_run() {
    use edgeslim_runtime::format::{OpKind, op_field};
    let mut r = Rng(0xA11C_E5ED_0BAD_F00D);
    let interesting = |r: &mut Rng| -> i64 {
        match r.below(7) {
            0 => 0,
            1 => 1,
            2 => -1,
            3 => r.below(9) as i64,
            4 => i32::MAX as i64,
            5 => i32::MIN as i64,
            _ => r.below(300) as i64 - 150,
        }
    };
    let (mut parsed, mut total) = (0, 0);
    for i in 0..2500u64 {
        let mut def = if i % 2 == 0 {
            two_task_model(i)
        } else {
            random_model(i)
        };
        for _ in 0..1 + r.below(3) {
            let n_t = def.tensors.len();
            let n_ops = def.ops.len();
            let oi = r.below(n_ops);
            let v = interesting(&mut r);
            let small = r.below(n_t + 2);
            let op = &mut def.ops[oi];
            match r.below(16) {
                0 => op.output = small,
                1 => op.segment = r.below(5),
                2 => op.in_segment = [None, Some(0), Some(1), Some(4)][r.below(4)],
                3 => {
                    let k = r.below(op.inputs.len());
                    op.inputs[k] = small;
                }
                4 => {
                    if r.below(2) == 0 {
                        op.inputs.push(small);
                    } else if op.inputs.len() > 1 {
                        op.inputs.pop();
                    }
                }
                5 => op.attrs[r.below(op_field::N_ATTRS)] = v as u32,
                6 => op.wshape[r.below(4)] = r.below(20),
                7 => op.kind = OpKind::from_u32(1 + r.below(9) as u32).expect("kind"),
                8 | 9 if !op.entries.is_empty() => {
                    let k = r.below(op.entries.len());
                    let e = &mut op.entries[k];
                    match r.below(8) {
                        0 => e.in_ch = (e.in_ch as i64 + v).clamp(0, 1 << 20) as usize,
                        1 => e.out_ch = (e.out_ch as i64 + v).clamp(0, 1 << 20) as usize,
                        2 => e.in_zp = v as i32,
                        3 => e.out_zp = v as i32,
                        4 => e.act = (v as i8, (v >> 3) as i8),
                        5 => {
                            if !e.extra.is_empty() {
                                let k = r.below(e.extra.len());
                                e.extra[k] = v as i32;
                            }
                        }
                        6 => {
                            e.channels.pop();
                        }
                        _ => {
                            if let Some(c) = e.channels.first_mut() {
                                c.multiplier = v as i32;
                                c.shift = (v >> 2) as i32;
                            }
                        }
                    }
                }
                10 => {
                    if r.below(2) == 0 {
                        op.entries.pop();
                    } else if let Some(e) = op.entries.first().cloned() {
                        op.entries.push(e);
                    }
                }
                11 => {
                    let t = r.below(n_t);
                    def.tensors[t].shape[r.below(3)] = r.below(10);
                }
                12 => {
                    let t = r.below(n_t);
                    def.tensors[t].segment = r.below(4);
                }
                13 => {
                    let k = r.below(def.tasks.len());
                    if r.below(2) == 0 {
                        def.tasks[k].segment = r.below(4);
                    } else {
                        def.tasks[k].outputs[0].tensor = small;
                    }
                }
                14 => {
                    let s = r.below(def.segments.len());
                    let w = &mut def.segments[s].widths;
                    if r.below(2) == 0 && w.len() > 1 {
                        w.remove(0);
                    } else {
                        w.insert(0, 0.1);
                    }
                }
                _ => {
                    let oj = r.below(n_ops);
                    def.ops.swap(oi, oj);
                }
            }
        }
        let Ok(blob) = def.to_bytes_planned() else {
            continue;
        };
        total += 1;
        if let Ok(m) = Model::parse(&blob) {
            parsed += 1;
            run_everywhere(&m);
        }
    }
    eprintln!("{parsed} of {total} mutated defs parsed");
    assert!(
        total > 2000 && parsed > 50 && parsed < total,
        "{parsed} of {total} parsed"
    );
}

/// Format v2's tensor producers: a producer field naming another op, an op index past the
/// end, `NONE` on a computed tensor or an op on the graph input is an error naming the tensor's
/// `producer` field.
#[test]
fn tensor_producer_fields_are_checked() {
    use edgeslim_runtime::format::{NONE, size};
    let blob = two_task_blob();
    let model = Model::parse(&blob).expect("parses");
    let (t_off, _) = section(&blob, kind::TENSORS);
    let producer_at = |t: usize| t_off + t * size::TENSOR + 40;
    let computed = (0..model.num_tensors())
        .find(|&t| model.producer(t).is_some_and(|p| p > 0))
        .expect("a tensor computed by an op other than the first");
    let p = model.producer(computed).expect("has a producer") as u32;
    let cases = [
        (computed, NONE),
        (computed, p - 1),
        (computed, model.num_ops() as u32),
        (model.input_index(), 0),
    ];
    for (t, value) in cases {
        let mut b = blob.clone();
        b[producer_at(t)..producer_at(t) + 4].copy_from_slice(&value.to_le_bytes());
        fix_crc(&mut b);
        let e = Model::parse(&b).expect_err("a wrong producer must be refused");
        assert!(
            e.to_string().contains("producer"),
            "tensor {t} producer {value}: {e}"
        );
    }
}
