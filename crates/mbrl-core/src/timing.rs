//! The timing protocol of the workspace's side-by-side benchmarks (`scripts/perf_compare.py`
//! pairs their output with `scripts/perf_torch.py`'s, which follows the same protocol): each
//! workload is warmed up for `--warmup` seconds, then called for `--measure` seconds (at least
//! 5 calls), and the median per-call time is printed as one JSON line
//! `{"name": ..., "median_ms": ..., "calls": ...}`; `--only NAME` times just that workload.

use std::time::{Duration, Instant};

/// Warm-up, measuring time and workload selection.
#[derive(Debug, Clone, PartialEq)]
pub struct TimingProtocol {
    /// Time spent calling the workload before measuring.
    pub warmup: Duration,
    /// Time spent measuring (at least 5 calls).
    pub measure: Duration,
    /// Time only the workload of this name.
    pub only: Option<String>,
}

impl TimingProtocol {
    /// From command-line arguments `[--warmup S] [--measure S] [--only NAME]` (defaults 1 s and
    /// 3 s); a non-numeric number of seconds is an error naming the flag.
    pub fn from_args(args: &[String]) -> Result<Self, String> {
        let value = |flag: &str| {
            args.iter()
                .position(|a| a == flag)
                .and_then(|i| args.get(i + 1))
        };
        let seconds = |flag: &str, default: f64| -> Result<Duration, String> {
            match value(flag) {
                None => Ok(Duration::from_secs_f64(default)),
                Some(v) => v
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s >= 0.0)
                    .map(Duration::from_secs_f64)
                    .ok_or_else(|| format!("{flag} takes seconds, got `{v}`")),
            }
        };
        Ok(Self {
            warmup: seconds("--warmup", 1.0)?,
            measure: seconds("--measure", 3.0)?,
            only: value("--only").cloned(),
        })
    }

    /// The median per-call time of `f` in seconds and the number of calls measured, or `None`
    /// when `--only` names another workload.
    pub fn median_seconds(&self, name: &str, mut f: impl FnMut()) -> Option<(f64, usize)> {
        if self.only.as_deref().is_some_and(|only| only != name) {
            return None;
        }
        let end = Instant::now() + self.warmup;
        while Instant::now() < end {
            f();
        }
        let mut times = Vec::new();
        let end = Instant::now() + self.measure;
        while Instant::now() < end || times.len() < 5 {
            let start = Instant::now();
            f();
            times.push(start.elapsed().as_secs_f64());
        }
        times.sort_by(f64::total_cmp);
        let n = times.len();
        let median = match n % 2 {
            1 => times[n / 2],
            _ => 0.5 * (times[n / 2 - 1] + times[n / 2]),
        };
        Some((median, n))
    }

    /// Times `f` and prints its JSON line (nothing when `--only` names another workload).
    pub fn timed(&self, name: &str, f: impl FnMut()) {
        if let Some((median, calls)) = self.median_seconds(name, f) {
            println!(
                "{{\"name\": \"{name}\", \"median_ms\": {}, \"calls\": {calls}}}",
                1e3 * median
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn flags_parse_and_bad_seconds_name_the_flag() {
        let p = TimingProtocol::from_args(&args(&["bench", "--measure", "0.5", "--only", "x"]))
            .unwrap();
        assert_eq!(p.warmup, Duration::from_secs(1));
        assert_eq!(p.measure, Duration::from_millis(500));
        assert_eq!(p.only.as_deref(), Some("x"));
        let err = TimingProtocol::from_args(&args(&["--warmup", "soon"])).unwrap_err();
        assert!(err.contains("--warmup takes seconds"), "{err}");
    }

    #[test]
    fn only_skips_other_workloads_and_the_median_is_of_at_least_five_calls() {
        let p = TimingProtocol {
            warmup: Duration::ZERO,
            measure: Duration::ZERO,
            only: Some("a".into()),
        };
        let mut calls = 0;
        assert_eq!(p.median_seconds("b", || calls += 1), None);
        assert_eq!(calls, 0);
        assert!(p.median_seconds("a", || calls += 1).is_some());
        assert_eq!(calls, 5);
    }
}
