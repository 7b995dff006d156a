//! Run directories: `<out>/<algo>/<env>/<UTC timestamp>-s<seed>/`, holding the resolved
//! config (`config.toml`), metrics (`metrics.csv`, `metrics.jsonl`), `checkpoints/` and the
//! log (`train.log`).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use crate::config::ExperimentConfig;

/// Name of the resolved config inside a run directory.
pub const CONFIG_FILE: &str = "config.toml";
/// Name of the log inside a run directory.
pub const LOG_FILE: &str = "train.log";

/// Creates a new run directory for `config` under `out` and writes the resolved config.
pub fn create(out: &Path, config: &ExperimentConfig) -> Result<PathBuf> {
    let parent = out.join(&config.algo).join(&config.env.name);
    let stamp = utc_timestamp(SystemTime::now());
    let mut dir = parent.join(format!("{stamp}-s{}", config.seed));
    let mut n = 1;
    while dir.exists() {
        n += 1;
        dir = parent.join(format!("{stamp}-s{}-{n}", config.seed));
    }
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("creating run directory {}", dir.display()))?;
    let path = dir.join(CONFIG_FILE);
    std::fs::write(&path, config.to_toml())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(dir)
}

/// `YYYYmmdd-HHMMSS` in UTC.
pub fn utc_timestamp(time: SystemTime) -> String {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Gregorian date of a day count since 1970-01-01 (H. Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Appends timestamped lines to a run's `train.log`.
pub struct RunLog {
    path: PathBuf,
}

impl RunLog {
    /// The log of run directory `dir`.
    pub fn new(dir: &Path) -> Self {
        Self {
            path: dir.join(LOG_FILE),
        }
    }

    /// Appends one line (failures to write the log are reported on stderr, not fatal).
    pub fn line(&self, message: &str) {
        let stamp = utc_timestamp(SystemTime::now());
        let result = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .and_then(|mut f| writeln!(f, "{stamp} {message}"));
        if let Err(e) = result {
            eprintln!("warning: cannot write {}: {e}", self.path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_utc_calendar_dates() {
        let t = |s| UNIX_EPOCH + Duration::from_secs(s);
        assert_eq!(utc_timestamp(t(0)), "19700101-000000");
        // 2024-02-29T23:59:59Z, a leap day.
        assert_eq!(utc_timestamp(t(1_709_251_199)), "20240229-235959");
        // 2026-11-26T01:02:03Z.
        assert_eq!(utc_timestamp(t(1_795_654_923)), "20261126-010203");
    }
}
