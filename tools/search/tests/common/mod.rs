//! Synthetic problems for the tests: deterministic from a seed.
#![allow(dead_code)]

use edgeslim_search::latency::LATENCY_FORMAT;
use edgeslim_search::*;

/// splitmix64: small, deterministic, good enough for test data.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// How to generate a problem.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub decoders: usize,
    pub max_widths: usize,
    /// Latency increases with width (as measured latencies normally do).
    pub monotone_latency: bool,
    /// Every segment uses the same width list.
    pub shared_lists: bool,
    /// Add a second task on the first decoder.
    pub shared_decoder: bool,
}

fn widths(rng: &mut Rng, max: usize) -> Vec<f64> {
    let n = 1 + rng.below(max as u64) as usize;
    // Pick n distinct eighths.
    let mut pool: Vec<u32> = (1..=8).collect();
    let mut pick = Vec::new();
    for _ in 0..n.min(8) {
        let i = rng.below(pool.len() as u64) as usize;
        pick.push(pool.remove(i));
    }
    pick.sort_unstable();
    pick.into_iter().map(|k| f64::from(k) / 8.0).collect()
}

pub fn segments(rng: &mut Rng, shape: Shape) -> Vec<SegmentWidths> {
    let shared = widths(rng, shape.max_widths);
    (0..=shape.decoders)
        .map(|s| SegmentWidths {
            name: if s == 0 {
                "encoder".into()
            } else {
                format!("dec{s}")
            },
            widths: if shape.shared_lists {
                shared.clone()
            } else {
                widths(rng, shape.max_widths)
            },
        })
        .collect()
}

pub fn latency_table(rng: &mut Rng, segs: &[SegmentWidths], monotone: bool) -> LatencyTable {
    LatencyTable {
        format: LATENCY_FORMAT.into(),
        model_hash: "synthetic".into(),
        target: "test".into(),
        unit: "us".into(),
        overhead_us: (rng.below(50) as f64) / 2.0,
        segments: segs
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let scale = if i == 0 { 400.0 } else { 80.0 };
                let mut acc = 0.0;
                let latency_us = s
                    .widths
                    .iter()
                    .map(|_| {
                        if monotone {
                            acc += 1.0 + (rng.below(1000) as f64 / 1000.0) * scale;
                            acc
                        } else {
                            (rng.below(1000) as f64 / 1000.0) * scale * 2.0
                        }
                    })
                    .collect::<Vec<f64>>();
                // Half the decoders also get a per-encoder-width table, as a profiled model's
                // do (a decoder's first layer scales with the encoder's active channels).
                let by_encoder_us = (i > 0 && rng.below(2) == 1).then(|| {
                    (0..segs[0].widths.len())
                        .map(|_| {
                            let f = 0.5 + rng.below(1000) as f64 / 1000.0;
                            latency_us.iter().map(|l| l * f).collect()
                        })
                        .collect()
                });
                SegmentLatency {
                    name: s.name.clone(),
                    widths: s.widths.clone(),
                    latency_us,
                    spread_us: None,
                    by_encoder_us,
                }
            })
            .collect(),
        encoder_stages: 1,
        configs: vec![],
        conversion: None,
        ops: vec![],
    }
}

pub fn metric_table(rng: &mut Rng, segs: &[SegmentWidths], shared_decoder: bool) -> MetricTable {
    let mut specs: Vec<TaskSpec> = segs[1..]
        .iter()
        .map(|s| TaskSpec {
            name: format!("task_{}", s.name),
            segment: s.name.clone(),
            metric: "accuracy".into(),
        })
        .collect();
    if shared_decoder {
        specs.push(TaskSpec {
            name: "extra".into(),
            segment: segs[1].name.clone(),
            metric: "accuracy".into(),
        });
    }
    let mut points = Vec::new();
    for spec in &specs {
        let nd = segs
            .iter()
            .find(|s| s.name == spec.segment)
            .map_or(1, |s| s.widths.len());
        for e in 0..segs[0].widths.len() {
            for d in 0..nd {
                // Coarse values (multiples of 1/64) so that ties happen.
                let v = (rng.below(64) as f64) / 64.0;
                points.push(MetricPoint {
                    encoder: e,
                    decoder: d,
                    task: spec.name.clone(),
                    value: v,
                });
            }
        }
    }
    MetricTable::from_points("synthetic", segs.to_vec(), specs, points)
        .expect("valid synthetic table")
}

/// A random problem with random preferences (some zero) and a random non-empty task set.
pub fn problem(seed: u64, shape: Shape) -> Problem {
    let mut rng = Rng(seed);
    let segs = segments(&mut rng, shape);
    let lat = latency_table(&mut rng, &segs, shape.monotone_latency);
    let met = metric_table(&mut rng, &segs, shape.shared_decoder);
    let n = met.tasks.len();
    let mut mask = 0u32;
    while mask == 0 {
        mask = (rng.next() as u32) & ((1u32 << n) - 1);
    }
    let mut prefs: Vec<f64> = (0..n).map(|_| (rng.below(5)) as f64).collect();
    if TaskMask(mask).iter().all(|t| prefs[t] == 0.0) {
        let t = TaskMask(mask).iter().next().unwrap_or(0);
        prefs[t] = 1.0;
    }
    Problem::new(lat, met, prefs, TaskMask(mask)).expect("valid synthetic problem")
}

/// A budget between the fastest and the slowest configuration, position `frac` in [0, 1].
pub fn budget(p: &Problem, frac: f64) -> f64 {
    let fast = p.fastest().latency_us;
    let slow = p
        .all_points()
        .iter()
        .map(|x| x.0)
        .fold(f64::NEG_INFINITY, f64::max);
    fast + frac * (slow - fast)
}

/// Small problem with fixed shape for readable tests: encoder 4 widths, two decoders.
pub fn two_task_problem(prefs: &str) -> Problem {
    let ws = vec![0.25, 0.5, 0.75, 1.0];
    let segs = vec![
        SegmentWidths {
            name: "encoder".into(),
            widths: ws.clone(),
        },
        SegmentWidths {
            name: "digit".into(),
            widths: ws.clone(),
        },
        SegmentWidths {
            name: "bold".into(),
            widths: vec![0.25, 0.5, 1.0],
        },
    ];
    let lat = LatencyTable {
        format: LATENCY_FORMAT.into(),
        model_hash: "h-two".into(),
        target: "host".into(),
        unit: "us".into(),
        overhead_us: 5.0,
        segments: segs
            .iter()
            .map(|s| SegmentLatency {
                name: s.name.clone(),
                widths: s.widths.clone(),
                latency_us: s
                    .widths
                    .iter()
                    .map(|m| {
                        if s.name == "encoder" {
                            400.0 * m
                        } else {
                            100.0 * m
                        }
                    })
                    .collect(),
                spread_us: None,
                by_encoder_us: None,
            })
            .collect(),
        encoder_stages: 1,
        configs: vec![],
        conversion: None,
        ops: vec![],
    };
    let mut points = Vec::new();
    for e in 0..4 {
        for d in 0..4 {
            let (me, md) = (ws[e], ws[d]);
            points.push(MetricPoint {
                encoder: e,
                decoder: d,
                task: "digit".into(),
                value: 0.5 + 0.3 * me + 0.15 * md,
            });
        }
        for (d, md) in [0.25, 0.5, 1.0].into_iter().enumerate() {
            points.push(MetricPoint {
                encoder: e,
                decoder: d,
                task: "bold".into(),
                value: 0.6 + 0.1 * ws[e] + 0.25 * md,
            });
        }
    }
    let specs = vec![
        TaskSpec {
            name: "digit".into(),
            segment: "digit".into(),
            metric: "accuracy".into(),
        },
        TaskSpec {
            name: "bold".into(),
            segment: "bold".into(),
            metric: "accuracy".into(),
        },
    ];
    let met = MetricTable::from_points("h-two", segs, specs, points).expect("valid table");
    let w = resolve_preferences(&met, &parse_preferences(prefs).expect("prefs")).expect("known");
    Problem::new(lat, met, w, TaskMask::all(2)).expect("valid problem")
}

/// A problem with every segment at `widths` widths (multipliers k / widths), `decoders` tasks,
/// all running, monotone latency and metrics rising with width plus noise; equal preferences.
pub fn grid_problem(seed: u64, decoders: usize, widths: usize) -> Problem {
    let mut rng = Rng(seed);
    let ws: Vec<f64> = (1..=widths).map(|k| k as f64 / widths as f64).collect();
    let segs: Vec<SegmentWidths> = (0..=decoders)
        .map(|s| SegmentWidths {
            name: if s == 0 {
                "encoder".into()
            } else {
                format!("task{s}")
            },
            widths: ws.clone(),
        })
        .collect();
    let lat = LatencyTable {
        format: LATENCY_FORMAT.into(),
        model_hash: "grid".into(),
        target: "synthetic".into(),
        unit: "us".into(),
        overhead_us: 20.0,
        segments: segs
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let scale = if i == 0 {
                    1000.0
                } else {
                    100.0 + 50.0 * rng.unit()
                };
                SegmentLatency {
                    name: s.name.clone(),
                    widths: ws.clone(),
                    latency_us: ws
                        .iter()
                        .map(|m| scale * m * m + 5.0 * rng.unit())
                        .collect(),
                    spread_us: None,
                    by_encoder_us: None,
                }
            })
            .collect(),
        encoder_stages: 1,
        configs: vec![],
        conversion: None,
        ops: vec![],
    };
    let specs: Vec<TaskSpec> = segs[1..]
        .iter()
        .map(|s| TaskSpec {
            name: s.name.clone(),
            segment: s.name.clone(),
            metric: "accuracy".into(),
        })
        .collect();
    let mut points = Vec::new();
    for spec in &specs {
        let (a, b) = (0.2 + 0.2 * rng.unit(), 0.1 + 0.2 * rng.unit());
        for (e, me) in ws.iter().enumerate() {
            for (d, md) in ws.iter().enumerate() {
                let v = 0.4 + a * me.sqrt() + b * md.sqrt() + 0.01 * rng.unit();
                points.push(MetricPoint {
                    encoder: e,
                    decoder: d,
                    task: spec.name.clone(),
                    value: v,
                });
            }
        }
    }
    let met = MetricTable::from_points("grid", segs, specs, points).expect("valid grid table");
    let n = met.tasks.len();
    Problem::new(lat, met, vec![1.0; n], TaskMask::all(n)).expect("valid grid problem")
}

/// An encoder of `stages` stages of `sw` widths each and `decoders` decoders of `dw` widths:
/// `sw^stages` encoder configurations times `dw^decoders`. Each later segment's latency depends
/// on the width of the segment it reads (`by_encoder_us`); a task's metric grows with every
/// stage's width and its decoder's. Every other task is RMSE-like (lower is better).
#[allow(dead_code)] // Used by the bench and the search tests, not by every test binary.
pub fn staged_grid_problem(
    seed: u64,
    stages: usize,
    sw: usize,
    decoders: usize,
    dw: usize,
) -> Problem {
    let mut rng = Rng(seed);
    let grid = |n: usize| -> Vec<f64> { (1..=n).map(|k| k as f64 / n as f64).collect() };
    let (ws_s, ws_d) = (grid(sw), grid(dw));
    let n_seg = stages + decoders;
    let segs: Vec<SegmentWidths> = (0..n_seg)
        .map(|s| SegmentWidths {
            name: if s < stages {
                format!("stage{s}")
            } else {
                format!("task{}", s - stages)
            },
            widths: if s < stages {
                ws_s.clone()
            } else {
                ws_d.clone()
            },
        })
        .collect();
    let segments = segs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let scale = if i < stages {
                300.0
            } else {
                80.0 + 40.0 * rng.unit()
            };
            // Rows: the widths of the segment read (a stage's predecessor, or the last stage).
            let rows: Option<Vec<Vec<f64>>> = (i > 0).then(|| {
                ws_s.iter()
                    .map(|r| {
                        s.widths
                            .iter()
                            .map(|m| scale * m * (0.5 + r) + 3.0 * rng.unit())
                            .collect()
                    })
                    .collect()
            });
            let lat = match &rows {
                Some(rows) => (0..s.widths.len())
                    .map(|d| rows.iter().map(|r| r[d]).sum::<f64>() / rows.len() as f64)
                    .collect(),
                None => s.widths.iter().map(|m| scale * m + rng.unit()).collect(),
            };
            SegmentLatency {
                name: s.name.clone(),
                widths: s.widths.clone(),
                latency_us: lat,
                spread_us: None,
                by_encoder_us: rows,
            }
        })
        .collect();
    let lat = LatencyTable {
        format: LATENCY_FORMAT.into(),
        model_hash: "staged-grid".into(),
        target: "synthetic".into(),
        unit: "us".into(),
        overhead_us: 20.0,
        segments,
        encoder_stages: stages,
        configs: vec![],
        conversion: None,
        ops: vec![],
    };
    let specs: Vec<TaskSpec> = segs[stages..]
        .iter()
        .enumerate()
        .map(|(k, s)| TaskSpec {
            name: s.name.clone(),
            segment: s.name.clone(),
            metric: if k % 2 == 0 { "miou" } else { "rmse" }.into(),
        })
        .collect();
    let n_enc = sw.pow(stages as u32);
    let mut points = Vec::new();
    for (k, spec) in specs.iter().enumerate() {
        let (a, b) = (0.2 + 0.2 * rng.unit(), 0.1 + 0.2 * rng.unit());
        for e in 0..n_enc {
            // Mean of the stages' multipliers.
            let (mut me, mut code) = (0.0, e);
            for _ in 0..stages {
                me += ws_s[code % sw] / stages as f64;
                code /= sw;
            }
            for (d, md) in ws_d.iter().enumerate() {
                let good = a * f64::sqrt(me) + b * md.sqrt() + 0.01 * rng.unit();
                points.push(MetricPoint {
                    encoder: e,
                    decoder: d,
                    task: spec.name.clone(),
                    value: if k % 2 == 0 { 0.3 + good } else { 1.0 - good },
                });
            }
        }
    }
    let met = MetricTable::from_points_staged("staged-grid", segs, stages, specs, points)
        .expect("valid staged grid table");
    let n = met.tasks.len();
    Problem::new(lat, met, vec![1.0; n], TaskMask::all(n)).expect("valid staged grid problem")
}
