//! Search: exact vs branch and bound, optimality by brute force, paper-mode invariants,
//! Pareto fronts, errors.

mod common;

use common::{Shape, budget, problem, two_task_problem};
use edgeslim_search::*;
use proptest::prelude::*;

/// Every configuration, built independently of the search loops: the cartesian product of the
/// running decoders' width indices, evaluated through `Problem::evaluate`, with latency
/// re-predicted from the latency table and the score recomputed from the metric table.
fn brute_force(p: &Problem) -> Vec<(Vec<u8>, f64, f64)> {
    let met = p.metrics();
    let lat = p.latency();
    let running: Vec<usize> = p.tasks().iter().collect();
    let mut decs: Vec<usize> = running
        .iter()
        .map(|&t| met.task_segment(t).unwrap())
        .collect();
    decs.sort_unstable();
    decs.dedup();
    let n_seg = lat.segments.len();
    let mut out = Vec::new();
    let mut stack: Vec<Vec<u8>> = vec![vec![0u8; n_seg]];
    // Expand encoder, then each running decoder.
    let mut dims = vec![0usize];
    dims.extend(&decs);
    for &s in &dims {
        let n = lat.segments[s].widths.len();
        stack = stack
            .into_iter()
            .flat_map(|cfg| {
                (0..n).map(move |i| {
                    let mut c = cfg.clone();
                    c[s] = i as u8;
                    c
                })
            })
            .collect();
    }
    let wsum: f64 = running.iter().map(|&t| p.preferences()[t]).sum();
    for cfg in stack {
        let l = lat.predict(&cfg, &decs).unwrap();
        let score: f64 = running
            .iter()
            .map(|&t| {
                let s = met.task_segment(t).unwrap();
                // The utility: the metric rescaled so the table's worst is 0, its best 1.
                let all = met.tasks[t].values.iter().flatten();
                let lo = all.clone().copied().fold(f64::INFINITY, f64::min);
                let hi = all.copied().fold(f64::NEG_INFINITY, f64::max);
                let v = met.tasks[t].values[cfg[0] as usize][cfg[s] as usize];
                let u = if hi > lo { (v - lo) / (hi - lo) } else { 0.0 };
                p.preferences()[t] * u
            })
            .sum::<f64>()
            / wsum;
        out.push((cfg, l, score));
    }
    out
}

fn decoder_prefs(p: &Problem) -> Vec<(usize, f64)> {
    let met = p.metrics();
    let mut out: Vec<(usize, f64)> = Vec::new();
    for t in p.tasks().iter() {
        let s = met.task_segment(t).unwrap();
        match out.iter_mut().find(|(seg, _)| *seg == s) {
            Some((_, w)) => *w += p.preferences()[t],
            None => out.push((s, p.preferences()[t])),
        }
    }
    out
}

fn assert_paper_invariants(p: &Problem, r: &SearchResult, budget_us: f64) {
    assert!(r.chosen.latency_us <= budget_us, "over budget: {r:?}");
    let prefs = decoder_prefs(p);
    let m = &r.chosen.config.multipliers;
    for &(a, pa) in &prefs {
        for &(b, pb) in &prefs {
            if pa > pb {
                assert!(
                    m[a] >= m[b] - 1e-12,
                    "decoder {a} (pref {pa}) at {} narrower than decoder {b} (pref {pb}) at {}",
                    m[a],
                    m[b]
                );
            }
        }
    }
    // The encoder is the best that fits at the chosen decoder widths.
    let n_enc = p.latency().segments[0].widths.len();
    for e in 0..n_enc {
        let mut cfg = r.chosen.config.indices.clone();
        cfg[0] = e as u8;
        let c = p.evaluate(&cfg).unwrap();
        if c.latency_us <= budget_us {
            assert!(
                c.score <= r.chosen.score,
                "encoder {e} scores better: {c:?} vs {r:?}"
            );
        }
    }
}

const SMALL: Shape = Shape {
    decoders: 3,
    max_widths: 4,
    monotone_latency: false,
    shared_lists: false,
    shared_decoder: true,
};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn exhaustive_and_branch_and_bound_agree(seed in any::<u64>(), frac in 0.0f64..1.0,
                                            decoders in 1usize..5, monotone in any::<bool>()) {
        let p = problem(seed, Shape { decoders, max_widths: 5, monotone_latency: monotone, ..SMALL });
        let b = budget(&p, frac);
        let ex = p.exact(b, ExactMethod::Exhaustive).unwrap();
        let bb = p.exact(b, ExactMethod::BranchAndBound).unwrap();
        prop_assert_eq!(ex.mode, Mode::Exhaustive);
        prop_assert_eq!(bb.mode, Mode::BranchAndBound);
        prop_assert_eq!(&ex.chosen, &bb.chosen);
        prop_assert_eq!(&ex.runner_up, &bb.runner_up);
        prop_assert!(bb.evaluated <= ex.evaluated);
    }

    #[test]
    fn exact_is_optimal_by_brute_force(seed in any::<u64>(), frac in 0.0f64..1.0) {
        let p = problem(seed, SMALL);
        let b = budget(&p, frac);
        let r = p.exact(b, ExactMethod::Auto).unwrap();
        prop_assert!(r.chosen.latency_us <= b);
        let all = brute_force(&p);
        prop_assert_eq!(all.len() as u64, p.config_count());
        let best = all.iter().filter(|c| c.1 <= b).map(|c| c.2).fold(f64::NEG_INFINITY, f64::max);
        prop_assert!((r.chosen.score - best).abs() < 1e-9, "search {} brute force {}", r.chosen.score, best);
        // The runner-up is the best of the rest.
        let rest = all
            .iter()
            .filter(|c| c.1 <= b && c.0 != r.chosen.config.indices)
            .map(|c| c.2)
            .fold(f64::NEG_INFINITY, f64::max);
        match &r.runner_up {
            Some(u) => prop_assert!((u.score - rest).abs() < 1e-9),
            None => prop_assert!(rest == f64::NEG_INFINITY),
        }
        // Reported latency matches the latency table's own prediction.
        let entry = all.iter().find(|c| c.0 == r.chosen.config.indices).unwrap();
        prop_assert!((entry.1 - r.chosen.latency_us).abs() < 1e-9);
    }

    #[test]
    fn paper_mode_is_monotone_and_within_budget(seed in any::<u64>(), frac in 0.0f64..1.0,
                                                decoders in 1usize..5) {
        // Shared width lists and monotone latency: paper mode must always find a configuration.
        let shape = Shape { decoders, max_widths: 6, monotone_latency: true, shared_lists: true, shared_decoder: false };
        let p = problem(seed, shape);
        let b = budget(&p, frac);
        let r = p.paper(b).unwrap();
        assert_paper_invariants(&p, &r, b);
        let ex = p.exact(b, ExactMethod::Auto).unwrap();
        prop_assert!(ex.chosen.score >= r.chosen.score);
    }

    #[test]
    fn paper_mode_with_mixed_lists(seed in any::<u64>(), frac in 0.0f64..1.0) {
        let p = problem(seed, SMALL);
        let b = budget(&p, frac);
        match p.paper(b) {
            Ok(r) => assert_paper_invariants(&p, &r, b),
            Err(Error::PaperInfeasible(msg)) => prop_assert!(!msg.is_empty()),
            Err(e) => prop_assert!(false, "unexpected error {e}"),
        }
    }

    #[test]
    fn reachable_matches_brute_force(seed in any::<u64>(), probes in prop::collection::vec((0.0f64..1.2, prop::collection::vec(0.0f64..1.0, 8)), 20)) {
        let p = problem(seed, SMALL);
        let all: Vec<Choice> = brute_force(&p).iter().map(|c| p.evaluate(&c.0).unwrap()).collect();
        let slowest = all.iter().map(|c| c.latency_us).fold(0.0, f64::max);
        for (frac, need) in probes {
            let lat = frac * slowest;
            let need = &need[..p.tasks().count()];
            let expected = all.iter().any(|c| {
                c.latency_us <= lat && c.task_metrics.iter().zip(need).all(|(m, &n)| m.value >= n)
            });
            prop_assert_eq!(p.reachable(lat, need), expected, "lat {} need {:?}", lat, need);
        }
        prop_assert!(!p.reachable(f64::INFINITY, &[]));
    }

    #[test]
    fn pareto_fronts_are_nondominated_and_complete(seed in any::<u64>()) {
        let p = problem(seed, SMALL);
        let all: Vec<Choice> = brute_force(&p).iter().map(|c| p.evaluate(&c.0).unwrap()).collect();
        for front in p.pareto_fronts().unwrap() {
            let value = |c: &Choice| -> f64 {
                if front.objective == "score" {
                    c.score
                } else {
                    c.task_metrics.iter().find(|m| m.task == front.objective).unwrap().value
                }
            };
            let dominated = |l: f64, v: f64| {
                all.iter().any(|o| o.latency_us <= l && value(o) >= v && (o.latency_us < l || value(o) > v))
            };
            for pt in &front.points {
                prop_assert!(!dominated(pt.latency_us, pt.value), "dominated front point {pt:?}");
            }
            let expected = all.iter().filter(|c| !dominated(c.latency_us, value(c))).count();
            prop_assert_eq!(front.points.len(), expected);
            for c in all.iter().filter(|c| !dominated(c.latency_us, value(c))) {
                prop_assert!(front.points.iter().any(|pt| pt.config.indices == c.config.indices));
            }
            prop_assert!(front.points.windows(2).all(|w| w[0].latency_us <= w[1].latency_us));
        }
    }
}

#[test]
fn pareto_2d_small_cases() {
    // (cost, value): 0 and 1 tie exactly and are both kept; 2 dominated; 3 on the front.
    let pts = [
        (1.0, 0.5),
        (1.0, 0.5),
        (2.0, 0.4),
        (3.0, 0.9),
        (3.0, 0.9 - 1e-9),
    ];
    assert_eq!(pareto_indices_2d(&pts), vec![0, 1, 3]);
    assert!(pareto_indices_2d(&[]).is_empty());
}

#[test]
fn preference_order_drives_decoder_widths() {
    let budget = 600.0;
    let a = two_task_problem("digit=3,bold=1").paper(budget).unwrap();
    let b = two_task_problem("digit=1,bold=3").paper(budget).unwrap();
    let (ma, mb) = (&a.chosen.config.multipliers, &b.chosen.config.multipliers);
    assert!(ma[1] >= ma[2], "digit preferred: {ma:?}");
    assert!(mb[2] >= mb[1], "bold preferred: {mb:?}");
    assert!(
        ma[1] > mb[1] || ma[2] < mb[2],
        "preferences changed nothing: {ma:?} {mb:?}"
    );
    for r in [&a, &b] {
        assert!(r.chosen.latency_us <= budget);
        assert_eq!(r.mode, Mode::Paper);
    }
}

#[test]
fn compare_reports_the_gap() {
    let p = two_task_problem("digit=2,bold=1");
    let r = p.compare(450.0, ExactMethod::Auto).unwrap();
    let paper = r.paper.as_ref().unwrap();
    assert_eq!(
        r.score_gap.unwrap(),
        r.exact.chosen.score - paper.chosen.score
    );
    assert!(r.score_gap.unwrap() >= 0.0);
    assert_eq!(
        r.latency_diff_us.unwrap(),
        paper.chosen.latency_us - r.exact.chosen.latency_us
    );
    assert!(r.exact.runner_up.as_ref().unwrap().score <= r.exact.chosen.score);
}

#[test]
fn infeasible_budget_names_the_fastest_configuration() {
    let p = two_task_problem("digit=1,bold=1");
    let fastest = p.fastest();
    let err = p
        .exact(fastest.latency_us - 1.0, ExactMethod::Auto)
        .unwrap_err();
    match &err {
        Error::BudgetInfeasible {
            fastest_us,
            fastest_widths,
            ..
        } => {
            assert_eq!(*fastest_us, fastest.latency_us);
            assert_eq!(fastest_widths, &fastest.config.indices);
        }
        e => panic!("unexpected {e}"),
    }
    assert!(
        err.to_string()
            .contains(&format!("{:.3}", fastest.latency_us)),
        "{err}"
    );
    assert!(matches!(p.paper(1.0), Err(Error::BudgetInfeasible { .. })));
    assert!(matches!(
        p.paper(f64::NAN),
        Err(Error::BudgetInfeasible { .. })
    ));
    // Exactly the fastest latency is feasible.
    assert_eq!(
        p.exact(fastest.latency_us, ExactMethod::Auto)
            .unwrap()
            .chosen
            .latency_us,
        fastest.latency_us
    );
}

#[test]
fn preference_strings() {
    assert_eq!(
        parse_preferences(" digit = 3 ,bold=0.5").unwrap(),
        vec![("digit".to_string(), 3.0), ("bold".to_string(), 0.5)]
    );
    for bad in [
        "",
        "digit",
        "digit=",
        "=3",
        "digit=3,",
        "digit=x",
        "digit=-1",
        "digit=inf",
        "digit=NaN",
        "digit=1,digit=2",
        "digit=3;bold=1",
    ] {
        match parse_preferences(bad) {
            Err(Error::BadPreference { input, .. }) => assert_eq!(input, bad),
            other => panic!("{bad:?} gave {other:?}"),
        }
    }
    let p = two_task_problem("digit=1");
    assert_eq!(p.preferences(), &[1.0, 0.0]);
    let err = resolve_preferences(p.metrics(), &parse_preferences("digit=3,italic=1").unwrap())
        .unwrap_err();
    assert!(
        matches!(&err, Error::UnknownTask { name, .. } if name == "italic"),
        "{err}"
    );
    assert!(err.to_string().contains("digit,bold"), "{err}");
    assert_eq!(parse_task_set(p.metrics(), "bold").unwrap(), TaskMask(0b10));
    assert_eq!(parse_task_set(p.metrics(), "all").unwrap(), TaskMask(0b11));
    assert!(matches!(
        parse_task_set(p.metrics(), "digit,italic"),
        Err(Error::UnknownTask { .. })
    ));
    assert!(parse_task_set(p.metrics(), "digit,digit").is_err());
}

#[test]
fn problem_rejects_bad_inputs() {
    let p = two_task_problem("digit=1,bold=1");
    let (lat, met) = (p.latency().clone(), p.metrics().clone());
    // All running weights zero.
    assert!(matches!(
        Problem::new(lat.clone(), met.clone(), vec![0.0, 1.0], TaskMask(0b01)),
        Err(Error::Problem(_))
    ));
    assert!(matches!(
        Problem::new(lat.clone(), met.clone(), vec![1.0, 1.0], TaskMask(0)),
        Err(Error::Problem(_))
    ));
    assert!(matches!(
        Problem::new(lat.clone(), met.clone(), vec![1.0, 1.0], TaskMask(0b100)),
        Err(Error::Problem(_))
    ));
    assert!(matches!(
        Problem::new(lat.clone(), met.clone(), vec![1.0], TaskMask(0b11)),
        Err(Error::Problem(_))
    ));
    assert!(matches!(
        Problem::new(lat.clone(), met.clone(), vec![-1.0, 1.0], TaskMask(0b11)),
        Err(Error::Problem(_))
    ));
    let mut other = met.clone();
    other.model_hash = "other".into();
    assert!(matches!(
        Problem::new(lat.clone(), other, vec![1.0, 1.0], TaskMask(0b11)),
        Err(Error::HashMismatch { .. })
    ));
    let mut widths = lat.clone();
    widths.segments[2].widths[1] = 0.6;
    assert!(matches!(
        Problem::new(widths, met.clone(), vec![1.0, 1.0], TaskMask(0b11)),
        Err(Error::Problem(_))
    ));
    // Only one task running: the other decoder does not run and is reported at index 0.
    let single = Problem::new(lat, met, vec![1.0, 1.0], TaskMask(0b01)).unwrap();
    let r = single.exact(1e9, ExactMethod::Auto).unwrap();
    assert_eq!(r.chosen.config.indices[2], 0);
    assert_eq!(r.chosen.task_metrics.len(), 1);
    assert_eq!(single.config_count(), 16);
}

#[test]
fn paper_mode_steps_the_least_preferred_decoder_first() {
    // digit=3,bold=1: digit targets 1.0, bold 1/3 -> 0.5 (narrowest width >= 1/3).
    // Latency: 5 + 400 m_enc + 100 m_digit + 100 m_bold.
    let p = two_task_problem("digit=3,bold=1");
    let roomy = p.paper(5.0 + 400.0 + 100.0 + 50.0).unwrap();
    assert_eq!(roomy.chosen.config.multipliers, vec![1.0, 1.0, 0.5]);
    // 240 us: even the narrowest encoder (100) does not fit with 100 + 50; bold steps to 0.25
    // before digit gives anything up.
    let tight = p.paper(240.0).unwrap();
    assert_eq!(tight.chosen.config.multipliers, vec![0.25, 1.0, 0.25]);
    // Further down digit has to step, never below bold.
    let tighter = p.paper(5.0 + 100.0 + 50.0 + 25.0).unwrap();
    assert_eq!(tighter.chosen.config.multipliers, vec![0.25, 0.5, 0.25]);
}

#[test]
fn budget_strings() {
    for (s, us) in [
        ("2ms", 2000.0),
        ("1500 us", 1500.0),
        ("1500us", 1500.0),
        ("0.5s", 5e5),
        ("750", 750.0),
        ("1e3us", 1000.0),
        ("3µs", 3.0),
    ] {
        assert_eq!(parse_budget_us(s).unwrap(), us, "{s}");
    }
    for s in ["", "ms", "2 furlongs", "-1ms", "0", "inf", "NaN us", "2msx"] {
        assert!(
            matches!(parse_budget_us(s), Err(Error::BadBudget { .. })),
            "{s}"
        );
    }
}

#[test]
fn exhaustive_and_branch_and_bound_agree_on_a_large_space() {
    // 8^6 = 262,144 configurations, continuous metrics, budgets across the whole range.
    let p = common::grid_problem(11, 5, 8);
    assert_eq!(p.config_count(), 262_144);
    for frac in [0.0, 0.05, 0.3, 0.5, 0.77, 1.0] {
        let b = budget(&p, frac);
        let ex = p.exact(b, ExactMethod::Exhaustive).unwrap();
        let bb = p.exact(b, ExactMethod::BranchAndBound).unwrap();
        assert_eq!(ex.chosen, bb.chosen, "budget {b}");
        assert_eq!(ex.runner_up, bb.runner_up, "budget {b}");
        assert_eq!(ex.evaluated, 262_144);
        // Auto picks branch and bound above the threshold.
        assert_eq!(
            p.exact(b, ExactMethod::Auto).unwrap().mode,
            Mode::BranchAndBound
        );
        let paper = p.paper(b).unwrap();
        assert_paper_invariants(&p, &paper, b);
        assert!(paper.chosen.score <= ex.chosen.score);
    }
}

#[test]
fn budget_lists_and_problem_from_spec() {
    assert_eq!(
        parse_budgets_us("1ms, 2.5ms,5000,0.9999ms").unwrap(),
        vec![1000, 2500, 5000, 999]
    );
    assert!(parse_budgets_us("1ms,,2ms").is_err());
    assert!(parse_budgets_us("0.5us").is_err());
    let base = two_task_problem("digit=1,bold=1");
    let (lat, met) = (base.latency().clone(), base.metrics().clone());
    let p = Problem::from_spec(lat.clone(), met.clone(), None, None).unwrap();
    assert_eq!(p.preferences(), &[1.0, 1.0]);
    assert_eq!(p.tasks(), TaskMask(0b11));
    let p = Problem::from_spec(lat.clone(), met.clone(), Some("bold=2"), Some("bold")).unwrap();
    assert_eq!(p.preferences(), &[0.0, 2.0]);
    assert_eq!(p.tasks(), TaskMask(0b10));
    assert!(matches!(
        Problem::from_spec(lat.clone(), met.clone(), Some("bold=2"), Some("digit")),
        Err(Error::Problem(_))
    ));
    assert!(matches!(
        Problem::from_spec(lat.clone(), met.clone(), Some("digit=3,bold"), None),
        Err(Error::BadPreference { .. })
    ));
    assert!(matches!(
        Problem::from_spec(lat, met, None, Some("italic")),
        Err(Error::UnknownTask { .. })
    ));
}

/// An encoder of three stages (2, 2 and 3 widths: 12 configurations), a segmentation decoder
/// (mIoU, higher is better) and a depth decoder (RMSE, lower is better), with every later
/// segment's latency depending on the width of the segment it reads.
fn staged_problem(seed: u64, prefer: &str) -> Problem {
    use edgeslim_search::latency::{LATENCY_FORMAT, LATENCY_UNIT};
    let mut s = seed | 1;
    let mut rnd = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    let segs: Vec<(&str, Vec<f64>)> = vec![
        ("s0", vec![0.5, 1.0]),
        ("s1", vec![0.5, 1.0]),
        ("s2", vec![0.25, 0.5, 1.0]),
        ("seg", vec![0.5, 1.0]),
        ("depth", vec![0.25, 0.5, 1.0]),
    ];
    // Rows: the widths of the segment read (s0 none, s1 reads s0, s2 reads s1, decoders s2).
    let reads = [None, Some(0), Some(1), Some(2), Some(2)];
    let segments = segs
        .iter()
        .zip(reads)
        .map(|((name, w), r)| {
            let rows: Option<Vec<Vec<f64>>> = r.map(|r: usize| {
                (0..segs[r].1.len())
                    .map(|a| {
                        w.iter()
                            .map(|m| 10.0 * m * (1.0 + a as f64) + 5.0 * rnd())
                            .collect()
                    })
                    .collect()
            });
            let lat = match &rows {
                Some(rows) => (0..w.len())
                    .map(|d| rows.iter().map(|r| r[d]).sum::<f64>() / rows.len() as f64)
                    .collect(),
                None => w.iter().map(|m| 20.0 * m + rnd()).collect(),
            };
            SegmentLatency {
                name: name.to_string(),
                widths: w.clone(),
                latency_us: lat,
                spread_us: None,
                by_encoder_us: rows,
            }
        })
        .collect();
    let latency = LatencyTable {
        format: LATENCY_FORMAT.into(),
        model_hash: "staged".into(),
        target: "host".into(),
        unit: LATENCY_UNIT.into(),
        overhead_us: 3.0,
        segments,
        encoder_stages: 3,
        configs: Vec::new(),
        conversion: None,
        ops: Vec::new(),
    };
    let widths: Vec<SegmentWidths> = segs
        .iter()
        .map(|(n, w)| SegmentWidths {
            name: n.to_string(),
            widths: w.clone(),
        })
        .collect();
    let mut points = Vec::new();
    for e in 0..12 {
        for d in 0..2 {
            points.push(MetricPoint {
                encoder: e,
                decoder: d,
                task: "seg".into(),
                value: 0.3 + 0.02 * e as f64 + 0.1 * d as f64 + 0.01 * rnd(),
            });
        }
        for d in 0..3 {
            points.push(MetricPoint {
                encoder: e,
                decoder: d,
                task: "depth".into(),
                value: 0.2 - 0.005 * e as f64 - 0.03 * d as f64 + 0.002 * rnd(),
            });
        }
    }
    let tasks = vec![
        TaskSpec {
            name: "seg".into(),
            segment: "seg".into(),
            metric: "miou".into(),
        },
        TaskSpec {
            name: "depth".into(),
            segment: "depth".into(),
            metric: "rmse".into(),
        },
    ];
    let metrics = MetricTable::from_points_staged("staged", widths, 3, tasks, points)
        .unwrap_or_else(|e| panic!("{e}"));
    Problem::from_spec(latency, metrics, Some(prefer), None).unwrap_or_else(|e| panic!("{e}"))
}

/// Per-stage encoder widths: the search space is every stage's width times every decoder's;
/// exact search finds the best configuration a brute force over that space finds (latency from
/// `LatencyTable::predict`, score from utilities computed here: mIoU rescaled up, RMSE down).
#[test]
fn per_stage_encoder_configurations_are_searched_exactly() {
    for seed in 1..40u64 {
        let p = staged_problem(seed, "seg=1,depth=2");
        assert_eq!(p.config_count(), 12 * 2 * 3);
        let met = p.metrics();
        let lat = p.latency();
        let scale = |t: usize| {
            let all: Vec<f64> = met.tasks[t].values.iter().flatten().copied().collect();
            let lo = all.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = all.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            (lo, hi)
        };
        let (seg_lo, seg_hi) = scale(0);
        let (dep_lo, dep_hi) = scale(1);
        let budget = 120.0 + seed as f64;
        let mut best: Option<(f64, f64, Vec<u8>)> = None;
        for (a, b, c, ds, dd) in all_indices(&[2, 2, 3, 2, 3]) {
            let w = vec![a, b, c, ds, dd];
            let l = lat.predict(&w, &[3, 4]).unwrap();
            let e = usize::from(a) + 2 * usize::from(b) + 4 * usize::from(c);
            let seg = (met.tasks[0].values[e][usize::from(ds)] - seg_lo) / (seg_hi - seg_lo);
            let dep = (dep_hi - met.tasks[1].values[e][usize::from(dd)]) / (dep_hi - dep_lo);
            let score = (seg + 2.0 * dep) / 3.0;
            if l <= budget && best.as_ref().is_none_or(|b| score > b.0 + 1e-12) {
                best = Some((score, l, w));
            }
        }
        let Some((score, l, w)) = best else {
            assert!(p.exact(budget, ExactMethod::Auto).is_err());
            continue;
        };
        for method in [ExactMethod::Exhaustive, ExactMethod::BranchAndBound] {
            let r = p.exact(budget, method).unwrap();
            assert!((r.chosen.score - score).abs() < 1e-9, "seed {seed}");
            assert!(r.chosen.latency_us <= budget);
            let again = p.evaluate(&r.chosen.config.indices).unwrap();
            assert_eq!(again, r.chosen, "evaluate round-trips the stage widths");
            if r.chosen.config.indices == w {
                assert!((r.chosen.latency_us - l).abs() < 1e-9);
            }
        }
        // The depth metric is reported as measured (an RMSE), not as its utility.
        let r = p.exact(budget, ExactMethod::Auto).unwrap();
        let depth = r
            .chosen
            .task_metrics
            .iter()
            .find(|t| t.task == "depth")
            .unwrap();
        assert_eq!(depth.metric, "rmse");
        assert!(depth.value > 0.0 && depth.value < 0.25);
    }
}

/// More preference for depth (lower RMSE is better) never gives it a narrower decoder in paper
/// mode, and the sweep's controllability for it is positive: the direction is handled.
#[test]
fn lower_is_better_metrics_are_controllable() {
    let widths = |prefer: &str| {
        let p = staged_problem(7, prefer);
        let r = p.paper(1e9).unwrap();
        r.chosen.config.indices[4]
    };
    assert!(widths("seg=1,depth=4") >= widths("seg=4,depth=1"));
    let p = staged_problem(7, "seg=1,depth=1");
    let r = sweep(
        &p,
        150.0,
        &SweepOptions {
            divisions: 8,
            ..SweepOptions::default()
        },
    )
    .unwrap();
    let depth = r
        .controllability
        .iter()
        .find(|c| c.task == "depth")
        .unwrap();
    assert!(depth.spearman.unwrap() > 0.0, "{depth:?}");
}

/// Every index vector below `counts`, first index fastest.
fn all_indices(counts: &[u8; 5]) -> Vec<(u8, u8, u8, u8, u8)> {
    let mut out = Vec::new();
    for e in 0..counts[4] {
        for d in 0..counts[3] {
            for c in 0..counts[2] {
                for b in 0..counts[1] {
                    for a in 0..counts[0] {
                        out.push((a, b, c, d, e));
                    }
                }
            }
        }
    }
    out
}

/// The per-stage space of the bench (4 stages x 4 widths, 3 decoders x 8 widths: 131,072
/// configurations): exhaustive search and branch and bound agree, and paper mode's decoder
/// widths follow preference there too.
#[test]
fn staged_space_of_the_bench_is_searched_exactly() {
    let p = common::staged_grid_problem(1, 4, 4, 3, 8);
    assert_eq!(p.config_count(), 131_072);
    for frac in [0.2, 0.5, 0.8] {
        let b = budget(&p, frac);
        let ex = p.exact(b, ExactMethod::Exhaustive).unwrap();
        let bb = p.exact(b, ExactMethod::BranchAndBound).unwrap();
        assert_eq!(ex.chosen, bb.chosen);
        assert!(ex.chosen.latency_us <= b);
        assert_eq!(ex.chosen.config.indices.len(), 7);
    }
}
