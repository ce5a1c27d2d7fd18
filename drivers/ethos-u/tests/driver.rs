//! The driver against a simulated Ethos-U55 (`sim/`): segments handed to the NPU give the
//! plain interpreter's bytes at every width configuration; no stream, no NPU, a stream for
//! another configuration, error bits and timeouts are declined with the CPU's result exact; a
//! stream table that does not fit the arena or the buffers is an error.

mod sim;

use edgeslim_ethos_u::regs::{self, status};
use edgeslim_ethos_u::{Config, EthosU, Stats, Stream};
use edgeslim_runtime::{Error, Input, Interpreter, Model, TaskMask, WidthConfig};
use sim::{Layout, Mode, Sim};

fn model() -> Model<'static> {
    Model::parse(sim::blob()).expect("parse")
}

fn input(model: &Model<'_>, seed: u32) -> Vec<i8> {
    let mut s = seed.wrapping_mul(747_796_405).wrapping_add(2_891_336_453);
    (0..model.input_len())
        .map(|_| {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (s >> 24) as i8
        })
        .collect()
}

/// Every width configuration of the model.
fn configs(model: &Model<'_>) -> Vec<WidthConfig> {
    let mut out = vec![Vec::new()];
    for s in 0..model.num_segments() {
        out = out
            .into_iter()
            .flat_map(|p: Vec<u8>| {
                (0..model.num_widths(s) as u8).map(move |w| {
                    let mut q = p.clone();
                    q.push(w);
                    q
                })
            })
            .collect();
    }
    out.iter()
        .map(|v| WidthConfig::from_indices(v).expect("widths"))
        .collect()
}

fn masks(model: &Model<'_>) -> Vec<TaskMask> {
    let mut v = vec![TaskMask::all(model)];
    v.extend((0..model.num_tasks()).map(TaskMask::single));
    v
}

/// The segments a run offers, in order.
fn running(model: &Model<'_>, t: TaskMask) -> Vec<usize> {
    let mut v = vec![0];
    for k in 0..model.num_tasks() {
        let s = model.task_segment(k);
        if t.contains(k) && !v.contains(&s) {
            v.push(s);
        }
    }
    v.sort();
    v
}

fn plain(model: &Model<'_>, x: &[i8], w: &WidthConfig, t: TaskMask) -> Vec<Vec<i8>> {
    let mut arena = vec![0u8; model.arena_bytes()];
    let mut interp = Interpreter::new(model, &mut arena).expect("interpreter");
    let out = interp.run(Input::I8(x), w, t).expect("run");
    out.iter().map(|o| o.data.to_vec()).collect()
}

/// A run with the driver, in an arena full of garbage (stale right answers cannot pass).
fn accelerated(
    npu: &mut EthosU<'static, Sim>,
    model: &Model<'_>,
    x: &[i8],
    w: &WidthConfig,
    t: TaskMask,
) -> Result<Vec<Vec<i8>>, Error> {
    let mut arena = vec![0xA5u8; model.arena_bytes()];
    let mut interp = Interpreter::new(model, &mut arena)?;
    let out = interp.run_accelerated(Input::I8(x), w, t, npu)?;
    Ok(out.iter().map(|o| o.data.to_vec()).collect())
}

/// The driver over a simulated NPU and `streams`, with scratch buffers of the given sizes.
fn rig(
    streams: Vec<Stream>,
    scratch: usize,
    fast: usize,
    config: Config,
    setup: impl FnOnce(&mut Sim),
) -> EthosU<'static, Sim> {
    let streams: &'static [Stream] = streams.leak();
    let scratch = sim::aligned(scratch, |_| 0);
    let fast = sim::aligned(fast, |_| 0);
    let mut s = Sim::new(model(), streams, scratch, fast);
    setup(&mut s);
    EthosU::new(s, streams, scratch, fast, config)
}

fn max_scratch(streams: &[Stream]) -> (usize, usize) {
    let s = streams.iter().map(|s| s.scratch_bytes).max().unwrap_or(0);
    let f = streams
        .iter()
        .map(|s| s.fast_scratch_bytes)
        .max()
        .unwrap_or(0);
    (s as usize, f as usize)
}

/// Run every width configuration and task selection on `npu` and compare with the plain
/// interpreter; returns the offers made.
fn all_exact(npu: &mut EthosU<'static, Sim>, model: &Model<'_>) -> usize {
    let mut offers = 0;
    for (k, w) in configs(model).iter().enumerate() {
        for t in masks(model) {
            let x = input(model, k as u32);
            let got = accelerated(npu, model, &x, w, t).expect("accelerated run");
            assert_eq!(
                got,
                plain(model, &x, w, t),
                "{:?} tasks {:#b}",
                w.as_slice(),
                t.0
            );
            offers += running(model, t).len();
        }
    }
    assert_eq!(npu.stats().offered as usize, offers);
    offers
}

#[test]
fn every_segment_on_the_npu_gives_the_cpu_bytes_at_every_width() {
    let m = model();
    let streams = sim::table(&m, &Layout::default(), |_, _, _| true);
    assert_eq!(
        streams.len(),
        4 + 2 * 4 * 4,
        "digits-mtl: 3 segments, 4 widths each"
    );
    let (s, f) = max_scratch(&streams);
    let mut npu = rig(streams, s, f, Config::default(), |_| {});
    assert!(npu.hardware().is_some_and(|h| h.macs() == 128));
    npu.check(m.arena_bytes()).expect("the table fits");
    let offers = all_exact(&mut npu, &m);
    assert!(offers >= 64 * 3 * 2, "{offers} offers");
    let st = npu.stats();
    assert_eq!(st.accepted as usize, offers, "{st:?}");
    assert_eq!(st.declined(), 0);
    // Each start ran the stream of the offered segment at the run's widths: the same order
    // of (segment, encoder width, width) as the runs made them.
    let sim = npu.registers();
    assert_eq!(sim.starts.len(), offers);
    let mut expected = Vec::new();
    for w in configs(&m) {
        for t in masks(&m) {
            for seg in running(&m, t) {
                let key = (seg as u8, w.as_slice()[0], w.as_slice()[seg]);
                expected.push(key);
            }
        }
    }
    let started: Vec<_> = sim
        .starts
        .iter()
        .map(|s| {
            let st = &npu.streams()[s.stream];
            (st.segment, st.encoder_width, st.width)
        })
        .collect();
    assert_eq!(started, expected);
    assert!(
        sim.starts
            .iter()
            .all(|s| s.qsize.is_multiple_of(4) && s.qsize >= 16)
    );
    // Idle between runs: the last command lets the Q-channels gate the NPU.
    assert_eq!(
        sim.writes
            .iter()
            .rev()
            .find(|w| w.0 == regs::CMD)
            .map(|w| w.1),
        Some(regs::cmd::CLOCK_Q_ENABLE | regs::cmd::POWER_Q_ENABLE)
    );
}

#[test]
fn streams_are_found_by_segment_encoder_width_and_width() {
    let m = model();
    // Every decoder stream compiled at encoder width 2 only, in reverse order.
    let mut streams = sim::table(&m, &Layout::default(), |seg, e, _| seg == 0 || e == 2);
    streams.reverse();
    let keys: Vec<_> = streams
        .iter()
        .map(|s| (s.segment, s.encoder_width, s.width))
        .collect();
    let (s, f) = max_scratch(&streams);
    let mut npu = rig(streams, s, f, Config::default(), |_| {});
    for (i, &(seg, e, w)) in keys.iter().enumerate() {
        assert_eq!(npu.find(usize::from(seg), e, w), Some(i));
    }
    assert_eq!(
        npu.find(1, 1, 3),
        None,
        "decoder under another encoder width"
    );
    assert_eq!(npu.find(0, 1, 2), None, "the encoder at two widths");
    assert_eq!(npu.find(3, 0, 0), None, "no such segment");
    let w = WidthConfig::from_indices(&[2, 3, 0]).expect("widths");
    assert_eq!(npu.stream_for(&m, 1, &w), npu.find(1, 2, 3));
    assert_eq!(npu.stream_for(&m, 2, &w), npu.find(2, 2, 0));
    assert_eq!(npu.stream_for(&m, 7, &w), None);

    // Decoders run on the NPU only where the encoder ran at width 2; the CPU takes the rest.
    let offers = all_exact(&mut npu, &m);
    let st = npu.stats();
    let decoder_offers_at_2: usize = masks(&m)
        .iter()
        .map(|&t| running(&m, t).len() - 1)
        .sum::<usize>()
        * configs(&m).iter().filter(|w| w.as_slice()[0] == 2).count();
    let encoder_offers = configs(&m).len() * masks(&m).len();
    assert_eq!(
        st.accepted as usize,
        encoder_offers + decoder_offers_at_2,
        "{st:?}"
    );
    assert_eq!(st.no_stream as usize, offers - st.accepted as usize);
}

#[test]
fn a_missing_stream_is_declined_and_the_cpu_runs_the_segment() {
    let m = model();
    // No `bold` decoder at all, no encoder at width 1.
    let streams = sim::table(&m, &Layout::default(), |seg, e, _| {
        seg != 2 && !(seg == 0 && e == 1)
    });
    let (s, f) = max_scratch(&streams);
    let mut npu = rig(streams, s, f, Config::default(), |_| {});
    let offers = all_exact(&mut npu, &m);
    let st = npu.stats();
    assert!(st.no_stream > 0 && st.accepted > 0, "{st:?}");
    assert_eq!((st.accepted + st.no_stream) as usize, offers);
    assert!(
        npu.registers()
            .starts
            .iter()
            .all(|s| npu.streams()[s.stream].segment != 2)
    );
}

#[test]
fn no_npu_declines_everything_without_a_register_write() {
    let m = model();
    let streams = sim::table(&m, &Layout::default(), |_, _, _| true);
    let (s, f) = max_scratch(&streams);
    // Reads as zero, as QEMU's mps3-an547 at the NPU's address; the simulation fails the test
    // on any write.
    let mut npu = rig(streams, s, f, Config::default(), |sim| {
        sim.id = 0;
        sim.config = 0;
    });
    assert_eq!(npu.hardware(), None);
    npu.check(m.arena_bytes())
        .expect("the table is checked all the same");
    let offers = all_exact(&mut npu, &m);
    assert_eq!(
        npu.stats(),
        Stats {
            offered: offers as u32,
            no_npu: offers as u32,
            ..Stats::default()
        }
    );
    assert!(npu.registers().writes.is_empty());
}

#[test]
fn a_stream_for_another_npu_configuration_is_declined() {
    let m = model();
    let streams = sim::table(&m, &Layout::default(), |_, _, _| true);
    let (s, f) = max_scratch(&streams);
    // An Ethos-U55-256 runs no stream compiled for the -128.
    let mut npu = rig(streams, s, f, Config::default(), |sim| {
        sim.config = sim::U55_256_CONFIG;
    });
    assert!(npu.hardware().is_some_and(|h| h.macs() == 256));
    let offers = all_exact(&mut npu, &m);
    assert_eq!(npu.stats().mismatched as usize, offers);
    assert!(npu.registers().starts.is_empty());
}

#[test]
fn error_bits_and_timeouts_are_declined_and_the_cpu_result_stays_exact() {
    let m = model();
    let w = WidthConfig::full(&m);
    let t = TaskMask::all(&m);
    let x = input(&m, 11);
    let want = plain(&m, &x, &w, t);
    let offers = running(&m, t).len();
    // Each error bit, and an interrupt without the end of the stream: the NPU scribbled over
    // its outputs in the scratch, none of which may reach the arena.
    for bits in [
        status::BUS_ERROR,
        status::CMD_PARSE_ERROR,
        status::WD_FAULT,
        status::ECC_FAULT,
        0,
    ] {
        let streams = sim::table(&m, &Layout::default(), |_, _, _| true);
        let (s, f) = max_scratch(&streams);
        let mut npu = rig(streams, s, f, Config::default(), |sim| {
            sim.mode = Mode::Fail(bits);
        });
        let got = accelerated(&mut npu, &m, &x, &w, t).expect("run");
        assert_eq!(got, want, "error bits {bits:#x}");
        let st = npu.stats();
        assert_eq!((st.faults as usize, st.accepted), (offers, 0), "{st:?}");
        assert_eq!(st.last_status & status::ERRORS, bits);
        assert!(st.last_status & status::IRQ_RAISED != 0);
        assert_after_start_reset_and_idle(npu.registers());
    }
    // Never finishing: the bounded wait gives up, the NPU is reset.
    let streams = sim::table(&m, &Layout::default(), |_, _, _| true);
    let (s, f) = max_scratch(&streams);
    let config = Config {
        poll_limit: 50,
        ..Config::default()
    };
    let mut npu = rig(streams, s, f, config, |sim| sim.mode = Mode::Hang);
    let got = accelerated(&mut npu, &m, &x, &w, t).expect("run");
    assert_eq!(got, want, "timeout");
    let st = npu.stats();
    assert_eq!((st.timeouts as usize, st.accepted), (offers, 0), "{st:?}");
    assert_eq!(st.last_status, status::RUNNING);
    let sim = npu.registers();
    assert!(
        sim.status_reads as usize <= offers * (50 + 10),
        "{} STATUS reads for {offers} timed-out runs of 50 polls",
        sim.status_reads
    );
    assert_after_start_reset_and_idle(sim);
}

/// After the last start: a soft reset, then the idle command.
fn assert_after_start_reset_and_idle(sim: &Sim) {
    let start = sim
        .writes
        .iter()
        .rposition(|&(o, v)| o == regs::CMD && v & regs::cmd::START != 0)
        .expect("started");
    let after = &sim.writes[start + 1..];
    assert!(
        after.iter().any(|w| w.0 == regs::RESET),
        "reset after the failure"
    );
    assert_eq!(
        after.last(),
        Some(&(
            regs::CMD,
            regs::cmd::CLOCK_Q_ENABLE | regs::cmd::POWER_Q_ENABLE
        ))
    );
}

#[test]
fn a_separate_fast_scratch_region_is_programmed_and_used() {
    let m = model();
    let layout = Layout {
        fast_region: 2,
        outputs_fast: true,
        ..Layout::default()
    };
    let streams = sim::table(&m, &layout, |_, _, _| true);
    assert!(streams.iter().all(|s| s.fast_scratch_bytes > 0));
    let (s, f) = max_scratch(&streams);
    let mut npu = rig(streams, s, f, Config::default(), |_| {});
    let offers = all_exact(&mut npu, &m);
    assert_eq!(npu.stats().accepted as usize, offers);
    // BASEP2 (checked against the fast buffer at every start) was written.
    assert!(
        npu.registers()
            .writes
            .iter()
            .any(|w| w.0 == regs::BASEP0 + 16)
    );
}

/// `mutate` spoils the first encoder stream; the run and `check` must both give `want`.
fn spoilt(mutate: impl Fn(&mut Stream), scratch_short: usize, want: (&'static str, &'static str)) {
    let m = model();
    let mut streams = sim::table(&m, &Layout::default(), |_, _, _| true);
    mutate(&mut streams[0]);
    // Sized for stream 0 (the first checked and the first run): the others may not fit, and
    // are never reached.
    let s = streams[0].scratch_bytes as usize - scratch_short;
    let mut npu = rig(streams, s, 0, Config::default(), |_| {});
    let index = 0;
    let expected = Error::Accelerator {
        index,
        field: want.0,
        reason: want.1,
    };
    assert_eq!(npu.check(m.arena_bytes()), Err(expected), "check");
    let x = input(&m, 1);
    let w = WidthConfig::narrowest(&m);
    let err = accelerated(&mut npu, &m, &x, &w, TaskMask::all(&m)).unwrap_err();
    assert_eq!(err, expected, "run");
    let text = err.to_string();
    assert!(text.contains(want.0) && text.contains(want.1), "{text}");
    assert!(npu.registers().starts.is_empty(), "nothing started");
}

#[test]
fn a_transfer_outside_the_arena_or_the_scratch_is_an_error() {
    let arena = model().arena_bytes() as u32;
    spoilt(
        |s| {
            let mut t = s.inputs.to_vec();
            t[0].arena = arena - t[0].bytes + 1;
            s.inputs = t.leak();
        },
        0,
        ("inputs", "outside the arena"),
    );
    spoilt(
        |s| {
            let mut t = s.outputs.to_vec();
            t[0].arena = u32::MAX;
            s.outputs = t.leak();
        },
        0,
        ("outputs", "outside the arena"),
    );
    spoilt(
        |s| {
            let mut t = s.outputs.to_vec();
            t[0].offset = s.scratch_bytes - t[0].bytes + 1;
            s.outputs = t.leak();
        },
        0,
        ("outputs", "outside its NPU region"),
    );
    spoilt(
        |s| {
            let mut t = s.inputs.to_vec();
            t[0].region = 5;
            s.inputs = t.leak();
        },
        0,
        ("inputs", "region is neither scratch region"),
    );
    // The firmware's scratch buffer one byte short of the stream's scratch.
    spoilt(
        |_| {},
        1,
        ("scratch_bytes", "larger than the scratch buffer"),
    );
}

#[test]
fn a_malformed_stream_is_an_error() {
    spoilt(
        |s| s.command_stream = &s.command_stream[4..],
        0,
        (
            "command_stream",
            "does not start with COP1 (not Vela's command-stream payload)",
        ),
    );
    spoilt(
        |s| s.command_stream = &s.command_stream[..s.command_stream.len() - 4],
        0,
        (
            "command_stream",
            "command stream length outside the payload",
        ),
    );
    spoilt(
        |s| s.weights = &s.weights[1..],
        0,
        ("weights", "not 16-byte aligned"),
    );
    spoilt(
        |s| s.weight_region = 1,
        0,
        ("weight_region", "shared with a scratch region"),
    );
    spoilt(
        |s| s.scratch_region = 8,
        0,
        ("region", "past the NPU's eight base pointers"),
    );
}
