//! Arena planning: offsets over tensor liveness on the widest configuration.
//!
//! Every narrower configuration uses a prefix of each tensor's bytes, so one plan serves all
//! widths. Tensors that are views (reshape outputs) share their source's storage and extend its
//! live range. Placement is greedy, as TensorFlow Lite Micro's `GreedyMemoryPlanner`, tried in
//! several orders (largest first, longest-lived first, earliest first); the smallest arena wins.
//! When that is above the liveness lower bound, a bounded depth-first search improves it: each
//! buffer is tried at offset 0, on top of, or right below every buffer already placed that is
//! live at the same time (any packing can be compacted to such positions), pruned by the best
//! arena found so far, within a fixed budget of search nodes.

use super::ModelDef;
use crate::format::OpKind;

/// Offsets and live intervals of every tensor, and the arena size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryPlan {
    /// Byte offset of each tensor.
    pub offsets: Vec<usize>,
    /// First live step of each tensor (its storage group's).
    pub first: Vec<usize>,
    /// Last live step of each tensor (its storage group's).
    pub last: Vec<usize>,
    /// Arena bytes.
    pub arena_bytes: usize,
    /// Largest sum of the bytes of storage live at one step: no plan can be smaller.
    pub lower_bound: usize,
}

/// The storage root of each tensor (itself, or the source of the reshape chain it views).
pub fn aliases(def: &ModelDef) -> Vec<usize> {
    let mut root: Vec<usize> = (0..def.tensors.len()).collect();
    for op in &def.ops {
        if op.kind == OpKind::Reshape
            && let (Some(&src), true) = (op.inputs.first(), op.output < root.len())
            && src < root.len()
        {
            root[op.output] = root[src];
        }
    }
    root
}

/// Live interval `[first, last]` of each storage root (`None` for non-roots and unused).
fn intervals(def: &ModelDef, root: &[usize]) -> Vec<Option<(usize, usize)>> {
    let n = def.tensors.len();
    let mut iv: Vec<Option<(usize, usize)>> = vec![None; n];
    let last_step = def.ops.len().saturating_sub(1);
    let mut touch = |t: usize, step: usize| {
        if let Some(&r) = root.get(t) {
            iv[r] = Some(match iv[r] {
                None => (step, step),
                Some((a, b)) => (a.min(step), b.max(step)),
            });
        }
    };
    touch(def.input, 0);
    for (i, op) in def.ops.iter().enumerate() {
        touch(op.output, i);
        for &t in &op.inputs {
            touch(t, i);
        }
    }
    for t in &def.tasks {
        for o in &t.outputs {
            touch(o.tensor, last_step);
        }
    }
    iv
}

/// Plan the arena of `def`.
pub fn plan(def: &ModelDef) -> MemoryPlan {
    let root = aliases(def);
    let iv = intervals(def, &root);
    let bytes: Vec<usize> = def.tensors.iter().map(|t| t.bytes()).collect();
    let roots: Vec<usize> = (0..def.tensors.len())
        .filter(|&t| iv[t].is_some() && root[t] == t)
        .collect();
    let steps = def.ops.len().max(1);
    let mut lower_bound = 0;
    for s in 0..steps {
        let live: usize = roots
            .iter()
            .filter(|&&t| iv[t].is_some_and(|(a, b)| a <= s && s <= b))
            .map(|&t| bytes[t])
            .sum();
        lower_bound = lower_bound.max(live);
    }
    let span = |t: usize| iv[t].map_or(0, |(a, b)| b - a);
    let start = |t: usize| iv[t].map_or(0, |(a, _)| a);
    type Order<'a> = Box<dyn Fn(&usize, &usize) -> std::cmp::Ordering + 'a>;
    let orders: [Order<'_>; 3] = [
        Box::new(|&a, &b| bytes[b].cmp(&bytes[a]).then(a.cmp(&b))),
        Box::new(|&a, &b| span(b).cmp(&span(a)).then(bytes[b].cmp(&bytes[a]))),
        Box::new(|&a, &b| start(a).cmp(&start(b)).then(bytes[b].cmp(&bytes[a]))),
    ];
    let mut best: Option<(usize, Vec<usize>)> = None;
    for order in &orders {
        let mut sorted = roots.clone();
        sorted.sort_by(|a, b| order(a, b));
        let (size, offsets) = greedy(&sorted, &bytes, &iv, def.tensors.len());
        if best.as_ref().is_none_or(|(s, _)| size < *s) {
            best = Some((size, offsets));
        }
    }
    let (mut arena_bytes, mut offsets) = best.unwrap_or((0, vec![0; def.tensors.len()]));
    if arena_bytes > lower_bound {
        let mut sorted = roots.clone();
        sorted.sort_by(|&a, &b| {
            bytes[b]
                .cmp(&bytes[a])
                .then(span(b).cmp(&span(a)))
                .then(a.cmp(&b))
        });
        let mut search = Search {
            order: &sorted,
            bytes: &bytes,
            iv: &iv,
            offsets: vec![0; def.tensors.len()],
            best: arena_bytes,
            best_offsets: None,
            lower_bound,
            budget: SEARCH_BUDGET,
        };
        let mut used = vec![false; sorted.len()];
        search.dfs(&mut Vec::new(), &mut used, 0);
        if let Some(o) = search.best_offsets {
            arena_bytes = search.best;
            offsets = o;
        }
    }
    let mut first = vec![0; def.tensors.len()];
    let mut last = vec![0; def.tensors.len()];
    for t in 0..def.tensors.len() {
        let r = root[t];
        offsets[t] = offsets[r];
        let (a, b) = iv[r].unwrap_or((0, 0));
        first[t] = a;
        last[t] = b;
    }
    MemoryPlan {
        offsets,
        first,
        last,
        arena_bytes,
        lower_bound,
    }
}

/// Place `order` one by one at the lowest offset free of every already placed buffer that is
/// live at the same time.
fn greedy(
    order: &[usize],
    bytes: &[usize],
    iv: &[Option<(usize, usize)>],
    n: usize,
) -> (usize, Vec<usize>) {
    let mut offsets = vec![0usize; n];
    let mut placed: Vec<usize> = Vec::new();
    let mut size = 0;
    for &t in order {
        let (a, b) = iv[t].unwrap_or((0, 0));
        let mut busy: Vec<(usize, usize)> = placed
            .iter()
            .filter(|&&p| iv[p].is_some_and(|(pa, pb)| pa <= b && a <= pb))
            .map(|&p| (offsets[p], offsets[p] + bytes[p]))
            .collect();
        busy.sort_unstable();
        let mut at = 0;
        for (lo, hi) in busy {
            if at + bytes[t] <= lo {
                break;
            }
            at = at.max(hi);
        }
        offsets[t] = at;
        size = size.max(at + bytes[t]);
        placed.push(t);
    }
    (size, offsets)
}

/// Search nodes the placement search may visit.
const SEARCH_BUDGET: usize = 200_000;

/// Depth-first search over placement orders, each buffer at its lowest free offset (as the
/// greedy planner), pruned by the best arena so far.
struct Search<'a> {
    order: &'a [usize],
    bytes: &'a [usize],
    iv: &'a [Option<(usize, usize)>],
    offsets: Vec<usize>,
    best: usize,
    best_offsets: Option<Vec<usize>>,
    lower_bound: usize,
    budget: usize,
}

impl Search<'_> {
    fn overlaps(&self, a: usize, b: usize) -> bool {
        match (self.iv[a], self.iv[b]) {
            (Some((a0, a1)), Some((b0, b1))) => a0 <= b1 && b0 <= a1,
            _ => false,
        }
    }

    /// Lowest offset for `t` free of every placed buffer live at the same time.
    fn first_fit(&self, t: usize, placed: &[usize]) -> usize {
        let mut busy: Vec<(usize, usize)> = placed
            .iter()
            .filter(|&&p| self.overlaps(p, t))
            .map(|&p| (self.offsets[p], self.offsets[p] + self.bytes[p]))
            .collect();
        busy.sort_unstable();
        let mut at = 0;
        for (lo, hi) in busy {
            if at + self.bytes[t] <= lo {
                break;
            }
            at = at.max(hi);
        }
        at
    }

    /// Extend the placement `placed` (arena `size` so far) with the unplaced buffers.
    fn dfs(&mut self, placed: &mut Vec<usize>, used: &mut [bool], size: usize) {
        if self.budget == 0 || self.best <= self.lower_bound {
            return;
        }
        self.budget -= 1;
        if placed.len() == self.order.len() {
            if size < self.best {
                self.best = size;
                self.best_offsets = Some(self.offsets.clone());
            }
            return;
        }
        for k in 0..self.order.len() {
            if used[k] {
                continue;
            }
            let t = self.order[k];
            let at = self.first_fit(t, placed);
            let end = at + self.bytes[t];
            if end.max(size) >= self.best {
                continue;
            }
            self.offsets[t] = at;
            used[k] = true;
            placed.push(t);
            self.dfs(placed, used, size.max(end));
            placed.pop();
            used[k] = false;
            if self.budget == 0 {
                return;
            }
        }
    }
}
