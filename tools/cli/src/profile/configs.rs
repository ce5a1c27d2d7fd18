//! The whole configurations a host profile times directly: every width configuration with
//! every set of running decoders, or a fixed-seed spread over them.

use anyhow::{Result, bail};
use edgeslim_runtime::Model;

/// Parse `--configs`: `all` or a positive count.
pub fn parse_config_count(s: &str) -> Result<usize, String> {
    if s == "all" {
        return Ok(usize::MAX);
    }
    match s.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{s:?} is neither `all` nor a positive count")),
    }
}

/// One whole configuration: a width index per segment (encoder first) and the decoder
/// segments that run. A decoder that does not run has width index 0.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Config {
    /// Width index per segment.
    pub widths: Vec<u8>,
    /// Running decoder segments (indices `>= 1`), increasing.
    pub decoders: Vec<usize>,
}

/// Every configuration of `model`: every non-empty set of decoders that some task computes,
/// the encoder at every width and each running decoder at every width; at most `max` of them
/// (see [`configs_of`]). A model without decoders (a plain single-segment network) has one
/// configuration per encoder width.
pub fn config_space(model: &Model<'_>, max: usize) -> Result<Vec<Config>> {
    let n_widths: Vec<usize> = (0..model.num_segments())
        .map(|s| model.segment(s).map_or(1, |g| g.n_widths))
        .collect();
    // Decoders some task computes: only those can be selected by a task mask.
    let runnable: Vec<usize> = (0..model.num_tasks())
        .filter_map(|t| model.task(t).map(|t| t.segment))
        .collect();
    configs_of_staged(&n_widths, model.num_encoder_segments(), &runnable, max)
}

/// Most configurations a profile times directly.
pub const MAX_TIMED_CONFIGS: usize = 1 << 20;

/// The configurations of segments with `n_widths[s]` widths each (the encoder's stages first)
/// whose runnable decoders are `runnable`. Without runnable decoders the only set of running
/// decoders is the empty one: one configuration per encoder width (the encoder's own tasks
/// run). All of them, sorted, when there are at most `max`;
/// otherwise `max` distinct ones drawn with a fixed-seed generator (the same on every
/// machine): a non-empty decoder set uniformly, then every running segment's width uniformly,
/// so that no width or task set is systematically left out. More than [`MAX_TIMED_CONFIGS`]
/// is an error. An encoder of `stages` stages is the first `stages` segments, which always run
/// and whose widths all vary (one configuration per combination).
pub fn configs_of_staged(
    n_widths: &[usize],
    stages: usize,
    runnable: &[usize],
    max: usize,
) -> Result<Vec<Config>> {
    let n_seg = n_widths.len();
    let mut runnable: Vec<usize> = runnable
        .iter()
        .copied()
        .filter(|&s| s >= stages && s < n_seg && n_widths[s] > 0)
        .collect();
    runnable.sort_unstable();
    runnable.dedup();
    let stages = stages.clamp(1, n_seg.max(1));
    if n_seg == 0 || n_widths[..stages].contains(&0) || max == 0 {
        return Ok(Vec::new());
    }
    let n_enc: usize = n_widths[..stages].iter().product();
    let encoder = |mut code: usize| {
        let mut widths = vec![0u8; n_seg];
        for k in 0..stages {
            widths[k] = (code % n_widths[k]) as u8;
            code /= n_widths[k];
        }
        widths
    };
    if runnable.is_empty() {
        return Ok((0..n_enc.min(max))
            .map(|e| Config {
                widths: encoder(e),
                decoders: Vec::new(),
            })
            .collect());
    }
    // n_enc * (prod over decoders of (1 + n_s) - 1), saturating.
    let total = runnable
        .iter()
        .fold(1u128, |acc, &s| acc.saturating_mul(1 + n_widths[s] as u128))
        .saturating_sub(1)
        .saturating_mul(n_enc as u128);
    let config = |set: &[usize], mut code: u128| {
        let mut widths = vec![0u8; n_seg];
        for &s in (0..stages).collect::<Vec<_>>().iter().chain(set) {
            let n = n_widths[s] as u128;
            widths[s] = (code % n) as u8;
            code /= n;
        }
        Config {
            widths,
            decoders: set.to_vec(),
        }
    };
    let subset = |bits: u64| -> Vec<usize> {
        runnable
            .iter()
            .enumerate()
            .filter(|(i, _)| bits & (1 << i) != 0)
            .map(|(_, &s)| s)
            .collect()
    };
    if total.min(max as u128) > MAX_TIMED_CONFIGS as u128 {
        bail!(
            "the model has {total} configurations: time at most {MAX_TIMED_CONFIGS} of them (--configs N)"
        );
    }
    if total <= max as u128 {
        // At most MAX_TIMED_CONFIGS, so fewer than 21 runnable decoders.
        let mut all = Vec::new();
        for bits in 1u64..(1u64 << runnable.len()) {
            let set = subset(bits);
            let n: u128 = (0..stages)
                .chain(set.iter().copied())
                .map(|s| n_widths[s] as u128)
                .product();
            all.extend((0..n).map(|code| config(&set, code)));
        }
        all.sort();
        return Ok(all);
    }
    // xorshift64*: a fixed sequence, the same on every machine.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let mut chosen = std::collections::BTreeSet::new();
    let mut attempts = 0usize;
    while chosen.len() < max && attempts < max.saturating_mul(64) {
        attempts += 1;
        let set: Vec<usize> = loop {
            let set: Vec<usize> = runnable
                .iter()
                .copied()
                .filter(|_| next() >> 63 == 1)
                .collect();
            if !set.is_empty() {
                break set;
            }
        };
        let code = (next() as u128) << 64 | next() as u128;
        chosen.insert(config(&set, code));
    }
    Ok(chosen.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One encoder stage.
    fn configs_of(n_widths: &[usize], runnable: &[usize], max: usize) -> Result<Vec<Config>> {
        configs_of_staged(n_widths, 1, runnable, max)
    }

    #[test]
    fn stages_all_vary_and_always_run() {
        // Two stages of 2 and 3 widths, one decoder of 2: 6 encoder configurations x 2.
        let all = configs_of_staged(&[2, 3, 2], 2, &[2], usize::MAX).unwrap();
        assert_eq!(all.len(), 12);
        let mut enc: Vec<(u8, u8)> = all.iter().map(|c| (c.widths[0], c.widths[1])).collect();
        enc.sort();
        enc.dedup();
        assert_eq!(enc.len(), 6);
        assert!(all.iter().all(|c| c.decoders == [2]));
    }

    #[test]
    fn every_configuration_with_every_task_subset() {
        // digits-mtl's shape: encoder and two decoders at four widths.
        let all = configs_of(&[4, 4, 4], &[1, 2], usize::MAX).unwrap();
        assert_eq!(all.len(), 4 * (4 + 4 + 16));
        let mut dedup = all.clone();
        dedup.dedup();
        assert_eq!(dedup.len(), all.len(), "sorted and distinct");
        for c in &all {
            assert!(!c.decoders.is_empty());
            for s in 1..3 {
                if !c.decoders.contains(&s) {
                    assert_eq!(c.widths[s], 0, "a decoder that does not run has width 0");
                }
            }
        }
        // A decoder no task computes is never selected; tasks sharing a decoder count once.
        let some = configs_of(&[2, 3, 3], &[2, 2], usize::MAX).unwrap();
        assert_eq!(some.len(), 2 * 3);
        assert!(some.iter().all(|c| c.decoders == [2] && c.widths[1] == 0));
    }

    #[test]
    fn a_spread_when_there_are_too_many() {
        // mnist-mtl's shape: 496 configurations, 100 of them.
        let n = [4, 4, 4, 4];
        let all = configs_of(&n, &[1, 2, 3], usize::MAX).unwrap();
        assert_eq!(all.len(), 496);
        let some = configs_of(&n, &[1, 2, 3], 100).unwrap();
        assert_eq!(some.len(), 100);
        assert_eq!(
            some,
            configs_of(&n, &[1, 2, 3], 100).unwrap(),
            "deterministic"
        );
        assert!(some.iter().all(|c| all.contains(c)));
        for e in 0..4 {
            assert!(some.iter().any(|c| c.widths[0] == e), "encoder width {e}");
        }
        for set in [
            vec![1],
            vec![2],
            vec![3],
            vec![1, 2],
            vec![1, 3],
            vec![2, 3],
        ] {
            assert!(some.iter().any(|c| c.decoders == set), "decoders {set:?}");
        }
        // A space too large to time whole is an error, not a hang.
        let err = configs_of(&[8; 21], &(1..21).collect::<Vec<_>>(), usize::MAX).unwrap_err();
        assert!(err.to_string().contains("--configs N"), "{err}");
        assert_eq!(
            configs_of(&[8; 21], &(1..21).collect::<Vec<_>>(), 256)
                .unwrap()
                .len(),
            256
        );
    }

    #[test]
    fn config_counts() {
        assert_eq!(parse_config_count("all"), Ok(usize::MAX));
        assert_eq!(parse_config_count("12"), Ok(12));
        assert!(parse_config_count("0").is_err());
        assert!(parse_config_count("many").is_err());
    }

    /// The re-measurement path, forced: a threshold of 0 re-measures every configuration
    /// once. Only what was measured is checked here, never how fast; the bounds on the

    #[test]
    fn a_model_without_decoders_has_one_configuration_per_encoder_width() {
        let c = configs_of(&[3], &[], usize::MAX).unwrap();
        assert_eq!(c.len(), 3);
        for (e, c) in c.iter().enumerate() {
            assert_eq!(c.widths, [e as u8]);
            assert!(c.decoders.is_empty());
        }
        assert_eq!(configs_of(&[3], &[], 2).unwrap().len(), 2);
        // Decoders no task computes leave the encoder alone, at every width.
        assert_eq!(configs_of(&[2, 4], &[], usize::MAX).unwrap().len(), 2);
    }
}
