//! Width configurations and task masks: what the caller picks per run.

use crate::error::Error;
use crate::format::{MAX_SEGMENTS, MAX_TASKS};
use crate::model::Model;

/// One width index per segment (encoder first). Fixed capacity, no allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct WidthConfig {
    idx: [u8; MAX_SEGMENTS],
    len: u8,
}

impl WidthConfig {
    /// Every segment at its widest.
    pub fn full(model: &Model<'_>) -> Self {
        let mut c = WidthConfig {
            idx: [0; MAX_SEGMENTS],
            len: model.num_segments() as u8,
        };
        for s in 0..model.num_segments() {
            let n = model.num_widths(s).max(1);
            c.idx[s] = (n - 1) as u8;
        }
        c
    }

    /// Every segment at its narrowest.
    pub fn narrowest(model: &Model<'_>) -> Self {
        WidthConfig {
            idx: [0; MAX_SEGMENTS],
            len: model.num_segments() as u8,
        }
    }

    /// From width indices, encoder first. Checked against a model when run.
    pub fn from_indices(indices: &[u8]) -> Result<Self, Error> {
        if indices.len() > MAX_SEGMENTS {
            return Err(Error::Capacity {
                what: "segments in a width config",
                limit: MAX_SEGMENTS as u32,
            });
        }
        let mut c = WidthConfig {
            idx: [0; MAX_SEGMENTS],
            len: indices.len() as u8,
        };
        c.idx[..indices.len()].copy_from_slice(indices);
        Ok(c)
    }

    /// Width index of segment `s`.
    pub fn get(&self, s: usize) -> Option<u8> {
        self.as_slice().get(s).copied()
    }

    /// Set the width index of segment `s`.
    pub fn set(&mut self, s: usize, index: u8) -> Result<(), Error> {
        let len = self.len as usize;
        match self.idx[..len].get_mut(s) {
            Some(v) => {
                *v = index;
                Ok(())
            }
            None => Err(Error::WidthCount {
                expected: s + 1,
                given: len,
            }),
        }
    }

    pub(crate) fn set_unchecked(&mut self, s: usize, index: u8) {
        if let Some(v) = self.idx.get_mut(s) {
            *v = index;
        }
    }

    /// The indices, encoder first.
    pub fn as_slice(&self) -> &[u8] {
        &self.idx[..self.len as usize]
    }

    /// Check against `model`: one index per segment, each in range.
    pub fn validate(&self, model: &Model<'_>) -> Result<(), Error> {
        if self.len as usize != model.num_segments() {
            return Err(Error::WidthCount {
                expected: model.num_segments(),
                given: self.len as usize,
            });
        }
        for (s, &i) in self.as_slice().iter().enumerate() {
            let n = model.num_widths(s);
            if i as usize >= n {
                return Err(Error::WidthOutOfRange {
                    segment: s as u32,
                    index: i as u32,
                    count: n as u32,
                });
            }
        }
        Ok(())
    }
}

/// Which tasks run: bit `i` selects task `i`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TaskMask(pub u32);

impl TaskMask {
    /// Every task of `model`.
    pub fn all(model: &Model<'_>) -> Self {
        let n = model.num_tasks().min(MAX_TASKS);
        TaskMask(if n == 32 { u32::MAX } else { (1u32 << n) - 1 })
    }

    /// Task `i` alone.
    pub fn single(i: usize) -> Self {
        TaskMask(if i < MAX_TASKS { 1 << i } else { 0 })
    }

    /// Whether task `i` is selected.
    pub fn contains(&self, i: usize) -> bool {
        i < MAX_TASKS && self.0 & (1 << i) != 0
    }

    /// Add task `i`.
    pub fn with(self, i: usize) -> Self {
        TaskMask(self.0 | TaskMask::single(i).0)
    }

    /// Check against `model`: not empty, no unknown task.
    pub fn validate(&self, model: &Model<'_>) -> Result<(), Error> {
        if self.0 == 0 {
            return Err(Error::EmptyTaskMask);
        }
        let extra = self.0 & !TaskMask::all(model).0;
        if extra != 0 {
            return Err(Error::UnknownTask {
                bit: extra.trailing_zeros(),
            });
        }
        Ok(())
    }
}

/// Encoder configurations of stages with `counts[k]` widths each, numbered in mixed radix
/// (stage 0's width index the least significant digit), and the covering set that calibration
/// and profiling run: every configuration when there are at most [`COVER_ALL_UP_TO`], else for
/// every pair `(a, b)` of width indices the configuration whose stages alternate `a, b, a, ...`
/// (each clamped to its stage's count). That set holds every pair of widths of consecutive
/// stages, which is what a stage's parameters (and a decoder's, with the last stage) key on.
pub mod encoder {
    /// Up to this many configurations the covering set is all of them.
    pub const COVER_ALL_UP_TO: usize = 16;

    /// Number of encoder configurations: the product of the counts (1 for none).
    pub fn configs(counts: &[usize]) -> usize {
        counts.iter().product::<usize>().max(1)
    }

    /// Width index of stage `k` in configuration `e`.
    pub fn stage_width(counts: &[usize], e: usize, k: usize) -> usize {
        let below: usize = counts[..k].iter().product();
        (e / below.max(1)) % counts[k].max(1)
    }

    /// The configuration with the stages' width indices `w`.
    pub fn config_of(counts: &[usize], w: &[usize]) -> usize {
        counts
            .iter()
            .zip(w)
            .rev()
            .fold(0, |acc, (&n, &i)| acc * n + i)
    }

    /// Number of members of the covering set (with repeats where clamping makes two pairs
    /// give one configuration).
    pub fn cover_len(counts: &[usize]) -> usize {
        let all = configs(counts);
        if all <= COVER_ALL_UP_TO {
            all
        } else {
            let n = counts.iter().copied().max().unwrap_or(1);
            n * n
        }
    }

    /// Member `i` of the covering set, as a configuration number.
    pub fn cover(counts: &[usize], i: usize) -> usize {
        if configs(counts) <= COVER_ALL_UP_TO {
            return i;
        }
        let n = counts.iter().copied().max().unwrap_or(1);
        let (a, b) = (i / n, i % n);
        counts.iter().enumerate().rev().fold(0, |acc, (k, &c)| {
            let w = if k % 2 == 0 { a } else { b };
            acc * c + w.min(c.max(1) - 1)
        })
    }
}
