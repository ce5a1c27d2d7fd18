//! Exact search over 262,144 configurations: encoder 8 widths, 5 decoders x 8 widths; and over
//! 131,072 with an encoder of 4 stages x 4 widths (256 encoder configurations) and 3 decoders x
//! 8 widths (the per-stage space of a dense multi-task model).
//!
//! `CARGO_TARGET_DIR=target/search cargo bench -p edgeslim-search` reports configurations per
//! second (criterion "elements").

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use edgeslim_search::{ExactMethod, Problem};

#[path = "../tests/common/mod.rs"]
mod common;

fn mid_budget(p: &Problem) -> f64 {
    common::budget(p, 0.5)
}

/// Exhaustive, branch and bound and paper mode on `p`, at the middle budget.
fn group(c: &mut Criterion, name: &str, p: &Problem) {
    let budget = mid_budget(p);
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(p.config_count()));
    g.bench_function("exhaustive", |b| {
        b.iter(|| p.exact(black_box(budget), ExactMethod::Exhaustive))
    });
    g.bench_function("branch_and_bound", |b| {
        b.iter(|| p.exact(black_box(budget), ExactMethod::BranchAndBound))
    });
    g.bench_function("paper", |b| b.iter(|| p.paper(black_box(budget))));
    g.finish();
}

fn bench(c: &mut Criterion) {
    let p = common::grid_problem(1, 5, 8);
    assert_eq!(p.config_count(), 262_144);
    group(c, "search_262144", &p);
    // Per-stage encoder widths: 4 stages x 4 widths (256 encoder configurations), 3 decoders x
    // 8 widths: 131,072 configurations.
    let p = common::staged_grid_problem(1, 4, 4, 3, 8);
    assert_eq!(p.config_count(), 131_072);
    group(c, "search_staged_131072", &p);
}

criterion_group!(benches, bench);
criterion_main!(benches);
