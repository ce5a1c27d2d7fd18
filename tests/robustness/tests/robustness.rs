//! Parser and interpreter robustness: bad bytes and bad run arguments give an `Error`, never
//! a panic, and the specific errors are the documented ones.

use edgeslim_runtime::format::{HEADER_LEN, VERSION, kind};
use edgeslim_runtime::writer::example::{two_task_blob, two_task_model};
use edgeslim_runtime::{Error, Input, Interpreter, Model, Section, TaskMask, WidthConfig};
use edgeslim_tests::blob::{
    crc32, fix_crc, model_width_counts, random_i8, section, wc, width_configs,
};
use edgeslim_tests::models::{every_op_model, random_model, seed_blobs};

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

/// The blobs the truncation and mutation tests start from, the fuzzing seeds
/// (`models::seed_blobs`); together they hold every op kind (`blobs_hold_every_op_kind`).
fn blobs() -> Vec<Vec<u8>> {
    let v = seed_blobs();
    assert!(v.iter().all(|b| !b.is_empty()), "every seed model writes");
    v
}

/// Every op kind the format defines (every value `OpKind::from_u32` accepts) that no blob of
/// `blobs` holds.
fn kinds_missing_from(blobs: &[Vec<u8>]) -> Vec<u32> {
    use edgeslim_runtime::format::OpKind;
    let mut seen = std::collections::BTreeSet::new();
    for b in blobs {
        let m = Model::parse(b).expect("every blob of the set parses");
        for i in 0..m.num_ops() {
            seen.insert(m.op(i).expect("op of a parsed model").kind as u32);
        }
    }
    (0..=255u32)
        .filter(|&k| OpKind::from_u32(k).is_some() && !seen.contains(&k))
        .collect()
}

/// The truncation and mutation tests reach every op kind's record decoding and validation:
/// the blob set holds each kind (1 to 18; 0 is no kind) at least once.
#[test]
fn blobs_hold_every_op_kind() {
    use edgeslim_runtime::format::OpKind;
    assert!(OpKind::from_u32(0).is_none(), "kind 0 is not an op kind");
    assert!(OpKind::from_u32(18).is_some(), "kind 18 (MinMax) exists");
    let missing = kinds_missing_from(&blobs());
    assert!(
        missing.is_empty(),
        "op kinds {missing:?} are in no blob of the robustness set"
    );
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
    // Blobs of the previous format versions (v1: no tensor producers; v2: no encoder stages)
    // are refused with a hint to recompile, a newer one as too new.
    for v in 1..VERSION {
        let mut b = blob.clone();
        b[4..6].copy_from_slice(&v.to_le_bytes());
        let old = Model::parse(&b).unwrap_err().to_string();
        assert!(
            old.contains(&format!("version {v} is older")) && old.contains("recompile"),
            "{old}"
        );
    }
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
        let mut def = match i % 3 {
            0 => two_task_model(i),
            1 => every_op_model(i),
            _ => random_model(i),
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
                // Any kind (1 to 18): a record of one kind read as another's.
                7 => op.kind = OpKind::from_u32(1 + r.below(18) as u32).expect("kind"),
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

/// Format v3's encoder stages: the graph's `encoder_segments` outside `1..=segments`, a
/// segment's `in_segment` that is not an earlier encoder stage, or an op keyed on a segment its
/// segment does not name, are errors naming the field; a decoder made a second stage is a valid
/// model that computes that task on every run.
#[test]
fn encoder_stage_fields_are_checked() {
    use edgeslim_runtime::format::{NONE, graph_field, op_field, segment_field, size};
    let blob = two_task_blob();
    let model = Model::parse(&blob).expect("parses");
    assert_eq!(model.num_encoder_segments(), 1);
    let n_seg = model.num_segments() as u32;
    let (g_off, _) = section(&blob, kind::GRAPH);
    let (s_off, _) = section(&blob, kind::SEGMENTS);
    let (o_off, _) = section(&blob, kind::OPS);
    let put = |b: &mut Vec<u8>, at: usize, v: u32| {
        b[at..at + 4].copy_from_slice(&v.to_le_bytes());
        fix_crc(b);
    };
    let enc_at = g_off + graph_field::ENCODER_SEGMENTS;
    let seg_in_at = |s: usize| s_off + s * size::SEGMENT + segment_field::IN_SEGMENT;
    let mut checked = 0;
    for (at, value, field) in [
        (enc_at, 0, "encoder_segments"),
        (enc_at, n_seg + 1, "encoder_segments"),
        (seg_in_at(0), 0, "in_segment"),
        (seg_in_at(1), 1, "in_segment"),
        (seg_in_at(1), 2, "in_segment"),
        (seg_in_at(2), NONE - 1, "in_segment"),
    ] {
        let mut b = blob.clone();
        put(&mut b, at, value);
        let e = Model::parse(&b).expect_err("must be refused");
        assert!(e.to_string().contains(field), "{field} = {value}: {e}");
        checked += 1;
    }
    // A decoder whose ops key on the encoder but whose segment names no in_segment.
    let op1 = (0..model.num_ops())
        .find(|&i| model.op(i).is_some_and(|o| o.in_segment.is_some()))
        .expect("a decoder op keyed on the encoder");
    let seg = model.op(op1).map(|o| o.segment).unwrap_or(0);
    let mut b = blob.clone();
    put(&mut b, seg_in_at(seg), NONE);
    let e = Model::parse(&b).expect_err("op keyed on a segment its segment does not name");
    assert!(e.to_string().contains("in_segment"), "{e}");
    let mut b = blob.clone();
    put(&mut b, o_off + op1 * size::OP + op_field::IN_SEGMENT, 1);
    assert!(Model::parse(&b).is_err(), "op in_segment 1 is refused");
    checked += 2;
    // The first decoder made a second encoder stage: valid, and it runs with the other task.
    let mut b = blob.clone();
    put(&mut b, enc_at, 2);
    let staged = Model::parse(&b).expect("a second encoder stage keyed on the first is valid");
    assert_eq!(staged.num_encoder_segments(), 2);
    assert_eq!(staged.encoder_mask(), 0b11);
    assert!(run_everywhere(&staged) > 0);
    assert_eq!(checked, 8);
}

/// Each record of kinds 10-18 with a field its op's prepare must refuse: `Model::parse` gives
/// `Error::Invalid` naming the op's record (or its width entries) and the field, and nothing
/// panics.
#[test]
fn new_op_records_are_validated() {
    use edgeslim_runtime::format::{OpKind, attr, op_field, size};
    use edgeslim_runtime::ops::{
        gather::attr as ga, lut::word as lw, minmax::attr as mma, mul::word as mw, pad::attr as pa,
        resize::attr as ra, resize::word as rw, transpose::attr::PERM,
    };
    use edgeslim_runtime::writer::ModelDef;

    let base = every_op_model(3);
    let blob = base.to_bytes_planned().expect("writes");
    let m = Model::parse(&blob).expect("the every-op model is valid");
    // 2 x 3 x 2 width configurations, each on both tasks and on each alone.
    assert_eq!(
        run_everywhere(&m),
        12 * 3,
        "the every-op model runs everywhere"
    );
    // The index of the `nth` op of `kind`.
    let find = |kind: OpKind, nth: usize| -> usize {
        base.ops
            .iter()
            .enumerate()
            .filter(|(_, o)| o.kind == kind)
            .nth(nth)
            .unwrap_or_else(|| panic!("the every-op model has {nth} ops of {kind:?}"))
            .0
    };
    let check = |what: &str,
                 kind: OpKind,
                 nth: usize,
                 section: Section,
                 field: &str,
                 change: &dyn Fn(&mut ModelDef, usize)| {
        let i = find(kind, nth);
        let mut def = base.clone();
        change(&mut def, i);
        let blob = def.to_bytes_planned().expect("writes");
        match Model::parse(&blob) {
            Err(Error::Invalid {
                section: s,
                index,
                field: f,
                ..
            }) if s == section && index == i as u32 && f == field => {}
            other => panic!(
                "{what}: expected Invalid {{ {section:?}, index {i}, {field:?} }}, got {other:?}"
            ),
        }
    };
    let ops = Section::Ops;
    let params = Section::Params;
    let set_attr = |k: usize, v: u32| move |d: &mut ModelDef, i: usize| d.ops[i].attrs[k] = v;

    // Lut: an entry of 63 or 65 table words (the writer refuses to write one: the record's
    // param_words is patched in the blob, the CRC fixed).
    let (ops_off, _) = section(&blob, kind::OPS);
    for (nth, words) in [
        (0, lw::COUNT - 1),
        (1, lw::COUNT + 1),
        (0, 0),
        (1, u32::MAX as usize - 8),
    ] {
        let i = find(OpKind::Lut, nth);
        let at = ops_off + i * size::OP + op_field::PARAM_WORDS;
        let mut b = blob.clone();
        b[at..at + 4].copy_from_slice(&((8 + words) as u32).to_le_bytes());
        fix_crc(&mut b);
        match Model::parse(&b) {
            Err(Error::Invalid {
                section: Section::Ops,
                index,
                field: "param_words",
                ..
            }) if index == i as u32 => {}
            other => panic!("lut table of {words} words: {other:?}"),
        }
    }

    // Mul: a second input of another shape (not 1x1), a zero point that is not the producer's,
    // a negative multiplier, a shift out of range.
    // The first conv's 6 x 5 output beside the 9 x 7 padded tensor.
    check("mul shape", OpKind::Mul, 1, ops, "inputs", &|d, i| {
        d.ops[i].inputs[1] = d.ops[0].output;
    });
    check("mul in2_zp", OpKind::Mul, 1, params, "in2_zp", &|d, i| {
        d.ops[i].entries[1].extra[mw::IN2_ZP] ^= 1;
    });
    check("mul multiplier", OpKind::Mul, 0, params, "mul", &|d, i| {
        d.ops[i].entries[0].extra[mw::M] = -1;
    });
    check("mul shift", OpKind::Mul, 1, params, "mul", &|d, i| {
        d.ops[i].entries[0].extra[mw::S] = 31;
    });

    // PRelu: slopes not [C, 1, 1, 1] (weights of the shape's size).
    check("prelu wshape", OpKind::PRelu, 0, ops, "wshape", &|d, i| {
        let op = &mut d.ops[i];
        op.wshape[3] = 2;
        op.weights = op.weights.repeat(2);
    });
    check(
        "prelu positive multiplier",
        OpKind::PRelu,
        0,
        params,
        "prelu",
        &|d, i| {
            d.ops[i].entries[1].extra[0] = -7;
        },
    );

    // Pad: reflect padding as large as the input (6 rows, 5 columns), an unknown mode, an
    // output smaller than the input and its leading pad, a fill value outside int8.
    check(
        "reflect pad = input height",
        OpKind::Pad,
        0,
        ops,
        "attrs",
        &|d, i| {
            let op = &mut d.ops[i];
            op.attrs[attr::PAD_TOP] = 6;
            let out = op.output;
            d.tensors[out].shape[0] += 5;
        },
    );
    check(
        "reflect bottom pad = input width",
        OpKind::Pad,
        0,
        ops,
        "attrs",
        &|d, i| {
            // Left 2, right 0 -> right 5 (the input's width).
            let out = d.ops[i].output;
            d.tensors[out].shape[1] += 5;
        },
    );
    check(
        "pad mode 3",
        OpKind::Pad,
        1,
        ops,
        "attrs",
        &set_attr(pa::MODE, 3),
    );
    check(
        "pad leading > output",
        OpKind::Pad,
        2,
        ops,
        "output",
        &set_attr(attr::PAD_TOP, 99),
    );
    check(
        "pad huge leading",
        OpKind::Pad,
        2,
        ops,
        "output",
        &set_attr(attr::PAD_LEFT, u32::MAX),
    );
    check("pad fill value", OpKind::Pad, 1, params, "pad", &|d, i| {
        d.ops[i].entries[0].extra[0] = 128;
    });

    // Resize: zero scales, a fraction past 2^24, an unknown mode, coordinate mode or rule,
    // an output past 2^16 rows, a negative multiplier.
    for (what, k, v) in [
        ("resize zero h_num", ra::H_NUM, 0),
        ("resize zero h_den", ra::H_DEN, 0),
        ("resize zero w_num", ra::W_NUM, 0),
        ("resize zero w_den", ra::W_DEN, 0),
        ("resize w_num past 2^24", ra::W_NUM, (1 << 24) + 1),
        ("resize h_den u32::MAX", ra::H_DEN, u32::MAX),
        ("resize mode 2", ra::MODE, 2),
        ("resize coord 4", ra::COORD, 4),
        ("resize nearest 4", ra::NEAREST, 4),
    ] {
        check(what, OpKind::Resize, 0, ops, "attrs", &set_attr(k, v));
        check(what, OpKind::Resize, 1, ops, "attrs", &set_attr(k, v));
    }
    check(
        "resize output rows past 2^16",
        OpKind::Resize,
        1,
        ops,
        "output",
        &|d, i| {
            let out = d.ops[i].output;
            d.tensors[out].shape[0] = (1 << 16) + 1;
        },
    );
    check(
        "resize multiplier",
        OpKind::Resize,
        0,
        params,
        "resize",
        &|d, i| {
            d.ops[i].entries[1].extra[rw::M] = i32::MIN;
        },
    );

    // ConvTranspose: an output longer than the geometry gives (4 x 3 input, 3 x 3 kernel,
    // stride 2, pad 1 -> at most 8 + 1 rows), a huge crop, zero stride, dilation or groups,
    // groups that do not divide the channels, a depthwise flag, weights narrower than the
    // active input channels.
    check(
        "conv transpose rows",
        OpKind::ConvTranspose,
        0,
        ops,
        "output",
        &|d, i| {
            let out = d.ops[i].output;
            d.tensors[out].shape[0] = 10;
        },
    );
    check(
        "conv transpose columns",
        OpKind::ConvTranspose,
        0,
        ops,
        "output",
        &|d, i| {
            let out = d.ops[i].output;
            d.tensors[out].shape[1] = 9;
        },
    );
    check(
        "conv transpose huge pad",
        OpKind::ConvTranspose,
        0,
        ops,
        "output",
        &set_attr(attr::PAD_TOP, u32::MAX),
    );
    check(
        "conv transpose stride 0",
        OpKind::ConvTranspose,
        0,
        ops,
        "attrs",
        &set_attr(attr::STRIDE_H, 0),
    );
    check(
        "conv transpose dilation 0",
        OpKind::ConvTranspose,
        0,
        ops,
        "attrs",
        &set_attr(attr::DIL_W, 0),
    );
    check(
        "conv transpose groups 0",
        OpKind::ConvTranspose,
        0,
        ops,
        "attrs",
        &set_attr(attr::GROUPS, 0),
    );
    check(
        "conv transpose groups 3",
        OpKind::ConvTranspose,
        0,
        ops,
        "attrs",
        &set_attr(attr::GROUPS, 3),
    );
    check(
        "conv transpose depthwise",
        OpKind::ConvTranspose,
        0,
        ops,
        "attrs",
        &set_attr(attr::DEPTHWISE, 1),
    );
    check(
        "conv transpose narrow weights",
        OpKind::ConvTranspose,
        0,
        params,
        "in_ch",
        &|d, i| {
            let op = &mut d.ops[i];
            let i_full = op.wshape[3];
            op.weights = op.weights.chunks(i_full).map(|row| row[0]).collect();
            op.wshape[3] = 1;
        },
    );

    // Transpose: repeated axes, an axis past 2, an output that is not the permuted input,
    // a quantization change.
    for (what, perm) in [
        ("transpose repeated axis", [0u32, 0, 1]),
        ("transpose axis 3", [3, 0, 1]),
        ("transpose axis u32::MAX", [2, u32::MAX, 0]),
    ] {
        check(what, OpKind::Transpose, 0, ops, "attrs", &|d, i| {
            for (k, &p) in perm.iter().enumerate() {
                d.ops[i].attrs[PERM + k] = p;
            }
        });
    }
    check(
        "transpose shape",
        OpKind::Transpose,
        0,
        ops,
        "output",
        &|d, i| {
            // [2, 0, 1] of [4, 3, 3] is [3, 4, 3]; [1, 2, 0] would be [3, 3, 4].
            for (k, p) in [1u32, 2, 0].into_iter().enumerate() {
                d.ops[i].attrs[PERM + k] = p;
            }
        },
    );
    check(
        "transpose zero point",
        OpKind::Transpose,
        0,
        params,
        "out_zp",
        &|d, i| {
            d.ops[i].entries[0].out_zp ^= 1;
        },
    );

    // GatherChannels: reading past the input's 6 channels (1 + 2 * 2 = 5 is the last read),
    // step 0, a start past the end, a step that wraps.
    check(
        "gather start past",
        OpKind::GatherChannels,
        0,
        ops,
        "attrs",
        &set_attr(ga::START, 2),
    );
    check(
        "gather step",
        OpKind::GatherChannels,
        0,
        ops,
        "attrs",
        &set_attr(ga::STEP, 3),
    );
    check(
        "gather step 0",
        OpKind::GatherChannels,
        0,
        ops,
        "attrs",
        &set_attr(ga::STEP, 0),
    );
    check(
        "gather start u32::MAX",
        OpKind::GatherChannels,
        0,
        ops,
        "attrs",
        &set_attr(ga::START, u32::MAX),
    );
    check(
        "gather step u32::MAX",
        OpKind::GatherChannels,
        0,
        ops,
        "attrs",
        &set_attr(ga::STEP, u32::MAX),
    );
    check(
        "gather more outputs",
        OpKind::GatherChannels,
        0,
        ops,
        "attrs",
        &|d, i| {
            let out = d.ops[i].output;
            d.tensors[out].shape[2] = 4;
            for e in &mut d.ops[i].entries {
                e.out_ch = 4;
            }
        },
    );

    // MinMax: an unknown mode, inputs of two shapes, a second zero point not the producer's.
    check(
        "minmax mode",
        OpKind::MinMax,
        0,
        ops,
        "inputs",
        &set_attr(mma::MODE, 2),
    );
    check(
        "minmax shapes",
        OpKind::MinMax,
        0,
        ops,
        "inputs",
        &|d, i| {
            d.ops[i].inputs[1] = d.ops[0].output;
        },
    );
    check(
        "minmax in2_zp",
        OpKind::MinMax,
        1,
        params,
        "in2_zp",
        &|d, i| {
            d.ops[i].entries[4].extra[0] ^= 1;
        },
    );
}

/// `def` parses to `Error::Invalid` naming `section`, record `index` and `field`.
fn assert_invalid(
    what: &str,
    def: &edgeslim_runtime::writer::ModelDef,
    section: Section,
    index: usize,
    field: &str,
) {
    let blob = def.to_bytes_planned().expect("writes");
    match Model::parse(&blob) {
        Err(Error::Invalid {
            section: s,
            index: i,
            field: f,
            ..
        }) if s == section && i == index as u32 && f == field => {}
        other => panic!(
            "{what}: expected Invalid {{ {section:?}, index {index}, {field:?} }}, got {other:?}"
        ),
    }
}

/// Geometry whose arithmetic overflows a 32-bit `usize` but not a 64-bit one (`(k - 1) *
/// dilation`, `(out - 1) * stride`, `in + pad`, `out + pad`, an output side past `isize` on
/// 32 bits) is refused on every target, naming the op and field: validation bounds every
/// padded coordinate by `ops::MAX_COORD` (2^31 - 1) whatever the width of `usize`, so the
/// kernels never see a geometry that wraps. Run on i686 by `cargo xtask target32`.
#[test]
fn geometry_past_32_bit_usize_is_refused_everywhere() {
    use edgeslim_runtime::format::{OpKind, attr};
    use edgeslim_runtime::ops::MAX_COORD;
    use edgeslim_runtime::writer::ModelDef;
    assert_eq!(MAX_COORD, (1 << 31) - 1, "the bound is 32-bit isize::MAX");
    let two = two_task_model(5);
    let every = every_op_model(3);
    let nth = |d: &ModelDef, kind: OpKind, n: usize| {
        d.ops
            .iter()
            .enumerate()
            .filter(|(_, o)| o.kind == kind)
            .nth(n)
            .unwrap_or_else(|| panic!("the model has {} ops of {kind:?}", n + 1))
            .0
    };
    let big = 1u32 << 31;
    // (what, model, kind, nth op of the kind, [(attribute, value)], field).
    type Case<'a> = (
        &'a str,
        &'a ModelDef,
        OpKind,
        usize,
        &'a [(usize, u32)],
        &'a str,
    );
    let cases: &[Case<'_>] = &[
        // A 3x3 conv on 8x8 (stride 1, pad 1): (3 - 1) * 2^31 = 2^32.
        (
            "conv dilation_h 2^31",
            &two,
            OpKind::Conv2d,
            0,
            &[(attr::DIL_H, big)],
            "attrs",
        ),
        (
            "conv dilation_w 2^31 + 1",
            &two,
            OpKind::Conv2d,
            0,
            &[(attr::DIL_W, big + 1)],
            "attrs",
        ),
        // (8 - 1) * 2^31.
        (
            "conv stride_h 2^31",
            &two,
            OpKind::Conv2d,
            0,
            &[(attr::STRIDE_H, big)],
            "attrs",
        ),
        // 8 + 2^32 - 2.
        (
            "conv pad_top",
            &two,
            OpKind::Conv2d,
            0,
            &[(attr::PAD_TOP, u32::MAX - 1)],
            "attrs",
        ),
        (
            "conv pad_left 2^31",
            &two,
            OpKind::Conv2d,
            0,
            &[(attr::PAD_LEFT, big)],
            "attrs",
        ),
        // The depthwise conv (stride 2, 4x4 output): 3 * 2^31.
        (
            "depthwise stride_w",
            &two,
            OpKind::Conv2d,
            1,
            &[(attr::STRIDE_W, big)],
            "attrs",
        ),
        // MaxPool 2x2 stride 2 to 2x2: (2 - 1) * (2^31 + 7).
        (
            "pool stride_w",
            &two,
            OpKind::MaxPool,
            0,
            &[(attr::STRIDE_W, big + 7)],
            "attrs",
        ),
        // A window of 2^32 - 1 with padding 2^32 - 2 (below the window): 4 + 2^32 - 2.
        (
            "pool pad_top",
            &two,
            OpKind::MaxPool,
            0,
            &[(attr::KERNEL_H, u32::MAX), (attr::PAD_TOP, u32::MAX - 1)],
            "attrs",
        ),
        // The transposed 3x3 conv (stride 2, 4x3 -> 8x6): (3 - 1) * 2^31, and 8 + 2^32 - 1.
        (
            "conv-transpose dilation",
            &every,
            OpKind::ConvTranspose,
            0,
            &[(attr::DIL_H, big)],
            "attrs",
        ),
        (
            "conv-transpose pad_left",
            &every,
            OpKind::ConvTranspose,
            0,
            &[(attr::PAD_LEFT, u32::MAX)],
            "output",
        ),
    ];
    for &(what, base, kind, n, set, field) in cases {
        let mut def = base.clone();
        let i = nth(&def, kind, n);
        for &(a, v) in set {
            def.ops[i].attrs[a] = v;
        }
        assert_invalid(what, &def, Section::Ops, i, field);
    }

    // A padded output side of 2^31 + 3 (one column, one channel: 2 GiB of arena, which the
    // plan only records): its rows compared as `isize` would turn negative on 32 bits.
    let mut b = edgeslim_runtime::writer::example::Builder::new(
        "tall-pad",
        &[("encoder", &[1.0])],
        [3, 1, 1],
        9,
    );
    let x = b.def.input;
    let p = b.pad(0, None, x, [1, 0, 0, 0], 0);
    b.task("tall", 0, p);
    let mut def = b.def;
    assert!(
        Model::parse(&def.to_bytes_planned().expect("writes")).is_ok(),
        "the small pad model is valid"
    );
    let i = nth(&def, OpKind::Pad, 0);
    def.ops[i].attrs[attr::PAD_TOP] = big;
    def.tensors[p].shape[0] = big as usize + 3;
    assert_invalid("pad output side 2^31 + 3", &def, Section::Ops, i, "output");
    // One row less than the leading padding needs: refused by checked subtraction.
    def.ops[i].attrs[attr::PAD_TOP] = u32::MAX;
    def.tensors[p].shape[0] = 2;
    assert_invalid(
        "pad output below top padding",
        &def,
        Section::Ops,
        i,
        "output",
    );
}

/// Tensor records whose element count (`h * w * c`) or arena end (`offset + bytes`) wraps a
/// 32-bit `usize` are refused on every target (patched in the blob: the writer would compute
/// the same products).
#[test]
fn tensor_sizes_past_32_bit_usize_are_refused_everywhere() {
    use edgeslim_runtime::format::size;
    let blob = two_task_blob();
    let m = Model::parse(&blob).expect("parses");
    let (t_off, _) = section(&blob, kind::TENSORS);
    // The first conv's output (tensor 1, 8x8x8 at full width).
    let t = 1;
    assert_eq!(m.tensor(t).map(|x| (x.h, x.w, x.c)), Some((8, 8, 8)));
    let patch = |fields: &[(usize, u32)]| {
        let mut b = blob.clone();
        for &(off, v) in fields {
            let at = t_off + t * size::TENSOR + off;
            b[at..at + 4].copy_from_slice(&v.to_le_bytes());
        }
        fix_crc(&mut b);
        Model::parse(&b).map(|_| ())
    };
    // h, w, c at record offsets 8, 12, 16; the arena offset at 28.
    for (what, fields, field) in [
        (
            "2^16 x 2^16 x 1",
            &[(8, 1 << 16), (12, 1 << 16), (16, 1)][..],
            "shape",
        ),
        (
            "2^31 x 2 x 2",
            &[(8, 1 << 31), (12, 2), (16, 2)][..],
            "shape",
        ),
        ("offset 2^32 - 4", &[(28, u32::MAX - 3)][..], "offset"),
    ] {
        match patch(fields) {
            Err(Error::Invalid {
                section: Section::Tensors,
                index: 1,
                field: f,
                ..
            }) if f == field => {}
            other => {
                panic!("tensor {what}: expected Invalid {{ Tensors, 1, {field:?} }}, got {other:?}")
            }
        }
    }
}

/// Geometry just within `ops::MAX_COORD` is valid and runs on every target: a dilation of
/// 2^29 + 1 puts every tap of the 3x3 conv but its first row and column's (`oy + ky * dil -
/// 1`, pad 1) outside the 8x8 input, so it computes tap (0, 0) only, on 32-bit targets
/// without wrapping.
#[test]
fn geometry_within_the_coordinate_range_runs_everywhere() {
    use edgeslim_runtime::format::{OpKind, attr};
    let mut def = two_task_model(5);
    let i = def
        .ops
        .iter()
        .position(|o| o.kind == OpKind::Conv2d)
        .expect("a conv");
    def.ops[i].attrs[attr::DIL_H] = (1 << 29) + 1;
    def.ops[i].attrs[attr::DIL_W] = (1 << 29) + 1;
    let blob = def.to_bytes_planned().expect("writes");
    let m = Model::parse(&blob).expect("a dilation within the coordinate range is valid");
    assert_eq!(
        run_everywhere(&m),
        12 * 3,
        "runs at every width on every task"
    );
    // The same outputs as the undilated conv with only tap (0, 0): the weights of the other
    // taps zeroed (dilated, they never reach the input); with padding 1 tap (0, 0) reads the
    // same input position either way.
    let mut corner = two_task_model(5);
    let [o, kh, kw, ci] = corner.ops[i].wshape;
    for oc in 0..o {
        for ky in 0..kh {
            for kx in 0..kw {
                if (ky, kx) != (0, 0) {
                    let at = ((oc * kh + ky) * kw + kx) * ci;
                    corner.ops[i].weights[at..at + ci].fill(0);
                }
            }
        }
    }
    let cblob = corner.to_bytes_planned().expect("writes");
    let cm = Model::parse(&cblob).expect("valid");
    let outputs = |m: &Model<'_>| {
        let mut arena = vec![0u8; m.arena_bytes()];
        let mut it = Interpreter::new(m, &mut arena).expect("arena");
        let x = random_i8(m.input_len(), 11);
        let outs = it
            .run(Input::I8(&x), &WidthConfig::full(m), TaskMask::all(m))
            .expect("runs");
        outs.iter().map(|o| o.data.to_vec()).collect::<Vec<_>>()
    };
    assert_eq!(
        outputs(&m),
        outputs(&cm),
        "the dilated taps read only padding"
    );
}

/// The `parse_run` fuzz target's minimized corpus, committed in
/// `runtime/fuzz/replay/parse_run/` (`runtime/fuzz/README.md`), replays through the target's
/// own body without a panic: here and, through `cargo xtask target32`, on a 32-bit target,
/// where the parser's geometry arithmetic has the least room.
#[test]
fn fuzz_corpus_replays() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../runtime/fuzz/replay/parse_run");
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("the committed corpus {}: {e}", dir.display()));
    let (mut files, mut parsed) = (0usize, 0usize);
    for e in entries {
        let path = e.expect("a directory entry").path();
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        parsed += edgeslim_tests::fuzz::parse_run_bytes(&data);
        files += 1;
    }
    eprintln!("fuzz corpus: {files} inputs, {parsed} parsed as models and run");
    assert!(
        files >= 100,
        "only {files} corpus inputs in {}",
        dir.display()
    );
    assert!(
        parsed >= 10,
        "only {parsed} of {files} corpus inputs parsed: nothing ran"
    );
}
