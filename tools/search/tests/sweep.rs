//! Controllability: Spearman, hypervolume, the sweep.

mod common;

use common::{Shape, budget, problem, two_task_problem};
use edgeslim_search::sweep::HypervolumeMethod;
use edgeslim_search::sweep::{
    average_ranks, hypervolume, nondominated, simplex_grid, simplex_grid_len, spearman,
};
use edgeslim_search::*;
use proptest::prelude::*;

#[test]
fn spearman_known_permutations() {
    let x = [1.0, 2.0, 3.0, 4.0, 5.0];
    assert!((spearman(&x, &x).unwrap() - 1.0).abs() < 1e-12);
    assert!((spearman(&x, &[50.0, 40.0, 30.0, 20.0, 10.0]).unwrap() + 1.0).abs() < 1e-12);
    // Two adjacent swaps: sum d^2 = 4, rho = 1 - 6*4/(5*24) = 0.8.
    assert!((spearman(&x, &[2.0, 1.0, 4.0, 3.0, 5.0]).unwrap() - 0.8).abs() < 1e-12);
    // Ties share ranks: x ranks (1, 2.5, 2.5, 4) against (1, 2, 3, 4): 4.5 / sqrt(4.5 * 5).
    assert_eq!(
        average_ranks(&[1.0, 2.0, 2.0, 3.0]),
        vec![1.0, 2.5, 2.5, 4.0]
    );
    let r = spearman(&[1.0, 2.0, 2.0, 3.0], &[1.0, 2.0, 3.0, 4.0]).unwrap();
    assert!((r - 4.5 / (4.5f64 * 5.0).sqrt()).abs() < 1e-12);
    assert_eq!(spearman(&x, &[1.0; 5]), None);
    assert_eq!(spearman(&[1.0], &[1.0]), None);
    assert_eq!(spearman(&x, &x[..4]), None);
}

/// Dominated unit cells of an integer grid: cell c counts when some point p has p <= c
/// (minimisation) and c < reference in every coordinate.
fn grid_volume(points: &[Vec<f64>], reference: &[i64]) -> f64 {
    let d = reference.len();
    let total: i64 = reference.iter().product();
    let mut count = 0;
    for mut k in 0..total {
        let mut cell = vec![0i64; d];
        for i in 0..d {
            cell[i] = k % reference[i];
            k /= reference[i];
        }
        if points
            .iter()
            .any(|p| p.iter().zip(&cell).all(|(&x, &c)| x <= c as f64))
        {
            count += 1;
        }
    }
    count as f64
}

proptest! {
    #[test]
    fn spearman_matches_the_no_ties_formula(perm in Just((0..12).collect::<Vec<usize>>()).prop_shuffle()) {
        let n = perm.len() as f64;
        let x: Vec<f64> = (0..perm.len()).map(|i| i as f64).collect();
        let y: Vec<f64> = perm.iter().map(|&v| v as f64 * 3.0 + 1.0).collect();
        let d2: f64 = perm.iter().enumerate().map(|(i, &v)| ((i as f64) - (v as f64)).powi(2)).sum();
        let expected = 1.0 - 6.0 * d2 / (n * (n * n - 1.0));
        prop_assert!((spearman(&x, &y).unwrap() - expected).abs() < 1e-12);
    }

    #[test]
    fn hypervolume_2d_against_grid(pts in prop::collection::vec((0i64..12, 0i64..12), 0..12)) {
        let points: Vec<Vec<f64>> = pts.iter().map(|&(a, b)| vec![a as f64, b as f64]).collect();
        prop_assert_eq!(hypervolume(&points, &[12.0, 12.0]), grid_volume(&points, &[12, 12]));
    }

    #[test]
    fn hypervolume_3d_and_4d_against_grid(pts in prop::collection::vec(prop::collection::vec(0i64..6, 4), 0..10)) {
        let p4: Vec<Vec<f64>> = pts.iter().map(|p| p.iter().map(|&x| x as f64).collect()).collect();
        let p3: Vec<Vec<f64>> = p4.iter().map(|p| p[..3].to_vec()).collect();
        prop_assert_eq!(hypervolume(&p3, &[6.0, 6.0, 6.0]), grid_volume(&p3, &[6, 6, 6]));
        prop_assert_eq!(hypervolume(&p4, &[6.0, 6.0, 6.0, 6.0]), grid_volume(&p4, &[6, 6, 6, 6]));
        // Filtering to the non-dominated set changes nothing.
        prop_assert_eq!(hypervolume(&nondominated(&p4), &[6.0; 4]), hypervolume(&p4, &[6.0; 4]));
    }
}

#[test]
fn hypervolume_by_hand() {
    // Staircase (1,3), (2,2), (3,1) with reference (4,4): boxes add 3, then 2, then 1.
    let pts = vec![vec![1.0, 3.0], vec![2.0, 2.0], vec![3.0, 1.0]];
    assert_eq!(hypervolume(&pts, &[4.0, 4.0]), 6.0);
    // Points outside the reference box add nothing.
    assert_eq!(hypervolume(&[vec![5.0, 0.0]], &[4.0, 4.0]), 0.0);
}

#[test]
fn simplex_grid_counts_and_sums() {
    for (t, k) in [(1, 4), (2, 10), (3, 10), (5, 4)] {
        let g = simplex_grid(t, k);
        assert_eq!(g.len() as u128, simplex_grid_len(t, k));
        for v in &g {
            assert_eq!(v.len(), t);
            assert!((v.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        }
    }
    assert_eq!(simplex_grid_len(3, 10), 66);
}

#[test]
fn sweep_on_two_tasks() {
    let p = two_task_problem("digit=1,bold=1");
    let b = 500.0;
    let r = sweep(
        &p,
        b,
        &SweepOptions {
            divisions: 10,
            ..SweepOptions::default()
        },
    )
    .unwrap();
    assert_eq!(r.points.len(), 11);
    for pt in &r.points {
        let c = pt.choice.as_ref().unwrap();
        assert!(c.latency_us <= b);
    }
    // More weight on a task never hurts it here: decoders are ordered by preference.
    for c in &r.controllability {
        assert!(c.spearman.unwrap() > 0.5, "{c:?}");
    }
    let hv = r.hypervolume.as_ref().unwrap();
    assert_eq!(hv.axes, vec!["latency_us", "digit", "bold"]);
    assert_eq!(hv.reference[0], b);
    assert!(
        hv.front > 0.0 && hv.chosen <= hv.front * (1.0 + 1e-12),
        "{hv:?}"
    );
    assert!((0.0..=1.0).contains(&hv.ratio));
}

#[test]
fn sweep_on_random_problems() {
    for seed in 0..6u64 {
        let shape = Shape {
            decoders: 3,
            max_widths: 4,
            monotone_latency: true,
            shared_lists: seed % 2 == 0,
            shared_decoder: false,
        };
        let p = problem(seed, shape);
        let b = budget(&p, 0.5);
        let r = sweep(
            &p,
            b,
            &SweepOptions {
                divisions: 4,
                ..SweepOptions::default()
            },
        )
        .unwrap();
        assert_eq!(
            r.points.len() as u128,
            simplex_grid_len(p.tasks().count(), 4)
        );
        if let Some(hv) = &r.hypervolume {
            assert!(hv.chosen <= hv.front * (1.0 + 1e-9) + 1e-12, "{hv:?}");
            assert!(hv.ratio <= 1.0 + 1e-9);
        }
    }
    let p = two_task_problem("digit=1,bold=1");
    assert!(matches!(
        sweep(&p, 10.0, &SweepOptions::default()),
        Err(Error::BudgetInfeasible { .. })
    ));
    assert!(
        sweep(
            &p,
            500.0,
            &SweepOptions {
                divisions: 0,
                ..SweepOptions::default()
            }
        )
        .is_err()
    );
    let skipped = sweep(
        &p,
        500.0,
        &SweepOptions {
            max_exact_hypervolume_configs: 3,
            hypervolume_samples: 0,
            ..SweepOptions::default()
        },
    )
    .unwrap();
    assert!(skipped.hypervolume.is_none() && skipped.hypervolume_skipped.is_some());
}

#[test]
fn monte_carlo_hypervolume_agrees_with_exact() {
    for (seed, decoders) in [(1u64, 2usize), (2, 3)] {
        let p = common::grid_problem(seed, decoders, 5);
        let b = budget(&p, 0.5);
        let opts = SweepOptions {
            divisions: 6,
            ..SweepOptions::default()
        };
        let exact = sweep(&p, b, &opts).unwrap().hypervolume.unwrap();
        assert_eq!(exact.method, HypervolumeMethod::Exact);
        let mc_opts = SweepOptions {
            max_exact_hypervolume_configs: 0,
            hypervolume_samples: 40_000,
            ..opts
        };
        let mc = sweep(&p, b, &mc_opts).unwrap().hypervolume.unwrap();
        let HypervolumeMethod::MonteCarlo {
            ratio_std_error,
            samples,
        } = mc.method
        else {
            panic!("expected Monte Carlo, got {:?}", mc.method);
        };
        assert_eq!(samples, 40_000);
        assert!(
            (mc.ratio - exact.ratio).abs() <= 5.0 * ratio_std_error + 1e-3,
            "ratio: exact {} estimate {} (se {ratio_std_error})",
            exact.ratio,
            mc.ratio
        );
        let rel = (mc.front - exact.front).abs() / exact.front;
        assert!(
            rel < 0.05,
            "front volume: exact {} estimate {}",
            exact.front,
            mc.front
        );
        assert_eq!(mc.reference, exact.reference);
    }
}
