//! Per-iteration metrics written to `metrics.csv` and `metrics.jsonl`.
//!
//! Every algorithm logs at least [`REQUIRED_COLUMNS`], so runs can be compared and plotted
//! uniformly: `iteration`, `env_steps` (cumulative real environment steps), `eval_return`
//! (mean evaluation return; NaN in rows without an evaluation) and `wall_time_s`. Further
//! columns are declared when the logger is created; the CSV header never changes mid-run.
//! NaN is written as `NaN` in the CSV and as `null` in JSON lines.
//! [`mean_and_sample_std`] is the summary over seeds every results table uses.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use crate::checkpoint::write_atomically;
use crate::{Error, Result};

/// Columns every algorithm writes, in this order, first.
pub const REQUIRED_COLUMNS: [&str; 4] = ["iteration", "env_steps", "eval_return", "wall_time_s"];

/// One row of metrics: column name to value.
pub type MetricsRow = BTreeMap<String, f64>;

/// Appends rows to `metrics.csv` and `metrics.jsonl` in a run directory.
pub struct MetricsLogger {
    columns: Vec<String>,
    csv: File,
    jsonl: File,
    csv_path: PathBuf,
}

impl MetricsLogger {
    /// Creates both files in `dir` (truncating old ones) with the required columns followed by
    /// `extra_columns`.
    pub fn create(dir: &Path, extra_columns: &[String]) -> Result<Self> {
        let columns = Self::column_list(extra_columns)?;
        let csv_path = dir.join("metrics.csv");
        let mut csv = File::create(&csv_path).map_err(|e| Error::io(&csv_path, e))?;
        writeln!(csv, "{}", columns.join(",")).map_err(|e| Error::io(&csv_path, e))?;
        let jsonl_path = dir.join("metrics.jsonl");
        let jsonl = File::create(&jsonl_path).map_err(|e| Error::io(&jsonl_path, e))?;
        Ok(Self {
            columns,
            csv,
            jsonl,
            csv_path,
        })
    }

    /// Opens existing files in `dir` to continue a run resumed from its checkpoint of
    /// iteration `checkpoint_iteration`; the CSV header must equal the columns this run would
    /// write. Rows after the checkpoint (logged by a run killed before its next checkpoint, and
    /// about to be trained again) and torn last lines are dropped, so every iteration keeps
    /// exactly one row.
    pub fn append(dir: &Path, extra_columns: &[String], checkpoint_iteration: u64) -> Result<Self> {
        let columns = Self::column_list(extra_columns)?;
        let csv_path = dir.join("metrics.csv");
        let header = File::open(&csv_path)
            .and_then(|f| {
                BufReader::new(f)
                    .lines()
                    .next()
                    .unwrap_or_else(|| Ok(String::new()))
            })
            .map_err(|e| Error::io(&csv_path, e))?;
        if header != columns.join(",") {
            return Err(Error::Malformed {
                path: csv_path,
                reason: format!(
                    "header `{header}` differs from this run's columns `{}`",
                    columns.join(",")
                ),
            });
        }
        let jsonl_path = dir.join("metrics.jsonl");
        keep_rows_through(&csv_path, 1, checkpoint_iteration, |line| {
            line.split(',').next()?.parse().ok()
        })?;
        keep_rows_through(&jsonl_path, 0, checkpoint_iteration, |line| {
            serde_json::from_str::<serde_json::Value>(line).ok()?["iteration"].as_f64()
        })?;
        let open = |path: &Path| {
            OpenOptions::new()
                .append(true)
                .open(path)
                .map_err(|e| Error::io(path, e))
        };
        let csv = open(&csv_path)?;
        let jsonl = open(&jsonl_path)?;
        Ok(Self {
            columns,
            csv,
            jsonl,
            csv_path,
        })
    }

    fn column_list(extra: &[String]) -> Result<Vec<String>> {
        let mut columns: Vec<String> = REQUIRED_COLUMNS.iter().map(|c| c.to_string()).collect();
        for c in extra {
            if columns.contains(c) {
                return Err(Error::InvalidArgument(format!(
                    "metrics column `{c}` declared twice"
                )));
            }
            if c.contains([',', '"', '\n']) {
                return Err(Error::InvalidArgument(format!(
                    "metrics column `{c}` has a CSV delimiter"
                )));
            }
            columns.push(c.clone());
        }
        Ok(columns)
    }

    /// The columns, in CSV order.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// Writes one row. Required columns must be present; undeclared columns are an error;
    /// declared but missing columns are written as NaN.
    pub fn log(&mut self, row: &MetricsRow) -> Result<()> {
        for required in REQUIRED_COLUMNS {
            if !row.contains_key(required) {
                return Err(Error::InvalidArgument(format!(
                    "metrics row lacks the required column `{required}`"
                )));
            }
        }
        if let Some(extra) = row.keys().find(|k| !self.columns.contains(k)) {
            return Err(Error::InvalidArgument(format!(
                "metrics column `{extra}` was not declared when the logger was created"
            )));
        }
        let values: Vec<f64> = self
            .columns
            .iter()
            .map(|c| row.get(c).copied().unwrap_or(f64::NAN))
            .collect();
        let csv_line: Vec<String> = values.iter().map(|v| format_value(*v)).collect();
        let json: serde_json::Map<String, serde_json::Value> = self
            .columns
            .iter()
            .zip(&values)
            .map(|(c, v)| {
                let value = serde_json::Number::from_f64(*v)
                    .map(serde_json::Value::Number)
                    .unwrap_or(serde_json::Value::Null);
                (c.clone(), value)
            })
            .collect();
        let path = self.csv_path.clone();
        writeln!(self.csv, "{}", csv_line.join(",")).map_err(|e| Error::io(&path, e))?;
        writeln!(self.jsonl, "{}", serde_json::Value::Object(json))
            .map_err(|e| Error::io(path.with_extension("jsonl"), e))?;
        self.csv.flush().map_err(|e| Error::io(&path, e))?;
        self.jsonl.flush().map_err(|e| Error::io(&path, e))
    }
}

/// Rewrites `path` keeping its first `header_lines` lines and the rows whose iteration (read
/// by `iteration`) is at most `last`; rows it cannot read are dropped.
fn keep_rows_through(
    path: &Path,
    header_lines: usize,
    last: u64,
    iteration: impl Fn(&str) -> Option<f64>,
) -> Result<()> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let kept: String = text
        .lines()
        .enumerate()
        .filter(|(i, line)| {
            *i < header_lines || iteration(line).is_some_and(|it| it <= last as f64)
        })
        .map(|(_, line)| format!("{line}\n"))
        .collect();
    if kept == text {
        return Ok(());
    }
    write_atomically(path, |tmp| {
        std::fs::write(tmp, &kept).map_err(|e| Error::io(tmp, e))
    })
}

/// Integers without a fractional part, others in shortest round-trip form, NaN as `NaN`.
fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// Mean and sample standard deviation (divided by `n - 1`; 0 for a single value) of
/// `values`, the spread over seeds of the results tables.
pub fn mean_and_sample_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, var.sqrt())
}

#[cfg(test)]
mod tests {
    #[test]
    fn sample_std_divides_by_n_minus_one() {
        let (mean, std) = super::mean_and_sample_std(&[1.0, 2.0, 3.0, 6.0]);
        assert_eq!(mean, 3.0);
        assert!((std - (14.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!(super::mean_and_sample_std(&[5.0]), (5.0, 0.0));
    }

    use super::*;

    fn row(i: f64, eval: f64) -> MetricsRow {
        MetricsRow::from([
            ("iteration".into(), i),
            ("env_steps".into(), 100.0 * i),
            ("eval_return".into(), eval),
            ("wall_time_s".into(), 0.5),
        ])
    }

    #[test]
    fn writes_csv_and_json_lines_with_nan_for_missing_evaluations() {
        let dir = tempfile::tempdir().unwrap();
        let mut logger = MetricsLogger::create(dir.path(), &["loss".to_string()]).unwrap();
        let mut r = row(1.0, -12.5);
        r.insert("loss".into(), 0.25);
        logger.log(&r).unwrap();
        logger.log(&row(2.0, f64::NAN)).unwrap();
        let csv = std::fs::read_to_string(dir.path().join("metrics.csv")).unwrap();
        assert_eq!(
            csv,
            "iteration,env_steps,eval_return,wall_time_s,loss\n1,100,-12.5,0.5,0.25\n2,200,NaN,0.5,NaN\n"
        );
        let jsonl = std::fs::read_to_string(dir.path().join("metrics.jsonl")).unwrap();
        let lines: Vec<serde_json::Value> = jsonl
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["eval_return"], -12.5);
        assert!(lines[1]["eval_return"].is_null());
    }

    #[test]
    fn rejects_missing_required_and_undeclared_columns() {
        let dir = tempfile::tempdir().unwrap();
        let mut logger = MetricsLogger::create(dir.path(), &[]).unwrap();
        let mut partial = row(1.0, 0.0);
        partial.remove("env_steps");
        assert!(logger
            .log(&partial)
            .unwrap_err()
            .to_string()
            .contains("env_steps"));
        let mut extra = row(1.0, 0.0);
        extra.insert("surprise".into(), 1.0);
        assert!(logger
            .log(&extra)
            .unwrap_err()
            .to_string()
            .contains("surprise"));
        assert!(MetricsLogger::create(dir.path(), &["iteration".to_string()]).is_err());
    }

    #[test]
    fn append_continues_a_run_with_the_same_columns_only() {
        let dir = tempfile::tempdir().unwrap();
        MetricsLogger::create(dir.path(), &["loss".into()])
            .unwrap()
            .log(&row(1.0, 1.0))
            .unwrap();
        MetricsLogger::append(dir.path(), &["loss".into()], 1)
            .unwrap()
            .log(&row(2.0, 2.0))
            .unwrap();
        let csv = std::fs::read_to_string(dir.path().join("metrics.csv")).unwrap();
        assert_eq!(csv.lines().count(), 3);
        assert!(MetricsLogger::append(dir.path(), &["other".into()], 2).is_err());
    }

    #[test]
    fn append_drops_rows_logged_after_the_checkpoint_and_torn_lines() {
        let dir = tempfile::tempdir().unwrap();
        let mut logger = MetricsLogger::create(dir.path(), &[]).unwrap();
        for i in 1..=5 {
            logger.log(&row(i as f64, i as f64)).unwrap();
        }
        drop(logger);
        // A kill in the middle of writing iteration 6.
        for (file, torn) in [("metrics.csv", "6,60"), ("metrics.jsonl", "{\"iterat")] {
            let path = dir.path().join(file);
            let text = std::fs::read_to_string(&path).unwrap();
            std::fs::write(&path, format!("{text}{torn}")).unwrap();
        }
        let mut resumed = MetricsLogger::append(dir.path(), &[], 3).unwrap();
        resumed.log(&row(4.0, -4.0)).unwrap();
        let csv = std::fs::read_to_string(dir.path().join("metrics.csv")).unwrap();
        let iterations: Vec<&str> = csv.lines().map(|l| l.split(',').next().unwrap()).collect();
        assert_eq!(iterations, ["iteration", "1", "2", "3", "4"]);
        assert!(csv.ends_with("4,400,-4,0.5\n"));
        let jsonl = std::fs::read_to_string(dir.path().join("metrics.jsonl")).unwrap();
        let rows: Vec<serde_json::Value> = jsonl
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let evals: Vec<f64> = rows
            .iter()
            .map(|r| r["eval_return"].as_f64().unwrap())
            .collect();
        assert_eq!(evals, [1.0, 2.0, 3.0, -4.0]);
    }
}
