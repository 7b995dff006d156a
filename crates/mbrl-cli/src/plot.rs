//! `mbrl-cli plot`: learning curves of one or more runs, as a PNG and a CSV.
//!
//! Runs are grouped by algorithm (their `config.toml`'s `algo`, or an explicit label); each
//! group's seeds are aligned by iteration and drawn as the mean with a band of one sample
//! standard deviation (n - 1) over seeds, against a metrics column (default `env_steps`). The CSV beside the PNG holds the
//! aggregated curves (`group, x, mean, std, seeds`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use mbrl_core::metrics::mean_and_sample_std;
use plotters::prelude::*;

use crate::config;
use crate::run_dir::CONFIG_FILE;
use crate::UsageError;

/// One group's aggregated curve.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    /// Legend label.
    pub label: String,
    /// `(x, mean, std, seeds)` per point.
    pub points: Vec<(f64, f64, f64, usize)>,
}

/// Reads column `name` of a run's `metrics.csv` (NaN where a row has no value).
pub fn read_column(run: &Path, name: &str) -> Result<Vec<f64>> {
    let path = run.join("metrics.csv");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    let Some(col) = header.iter().position(|h| *h == name) else {
        return Err(UsageError(format!(
            "{} has no column `{name}`; columns: {}",
            path.display(),
            header.join(", ")
        ))
        .into());
    };
    Ok(lines
        .map(|l| {
            l.split(',')
                .nth(col)
                .and_then(|v| v.parse().ok())
                .unwrap_or(f64::NAN)
        })
        .collect())
}

/// The `(x, y)` columns of each seed of a group.
type SeedColumns = Vec<(Vec<f64>, Vec<f64>)>;

/// Groups runs by label and averages `y` over seeds at each iteration (rows where `y` is NaN
/// are skipped, e.g. iterations without an evaluation).
pub fn curves(runs: &[(String, PathBuf)], x: &str, y: &str) -> Result<Vec<Curve>> {
    let mut groups: BTreeMap<String, SeedColumns> = BTreeMap::new();
    for (label, run) in runs {
        groups
            .entry(label.clone())
            .or_default()
            .push((read_column(run, x)?, read_column(run, y)?));
    }
    Ok(groups
        .into_iter()
        .map(|(label, seeds)| {
            let rows = seeds.iter().map(|(xs, _)| xs.len()).max().unwrap_or(0);
            let points = (0..rows)
                .filter_map(|i| {
                    let pairs: Vec<(f64, f64)> = seeds
                        .iter()
                        .filter_map(|(xs, ys)| Some((*xs.get(i)?, *ys.get(i)?)))
                        .filter(|(a, b)| a.is_finite() && b.is_finite())
                        .collect();
                    if pairs.is_empty() {
                        return None;
                    }
                    let mx = pairs.iter().map(|p| p.0).sum::<f64>() / pairs.len() as f64;
                    let ys: Vec<f64> = pairs.iter().map(|p| p.1).collect();
                    let (my, sd) = mean_and_sample_std(&ys);
                    Some((mx, my, sd, pairs.len()))
                })
                .collect();
            Curve { label, points }
        })
        .collect())
}

/// The label of a run: its algorithm.
fn run_label(run: &Path) -> Result<String> {
    let path = run.join(CONFIG_FILE);
    if !path.is_file() {
        return Err(UsageError(format!(
            "{} is not a run directory (no {CONFIG_FILE})",
            run.display()
        ))
        .into());
    }
    Ok(config::load(Some(&path), &[])?.algo)
}

/// Writes the curves as CSV.
pub fn write_csv(curves: &[Curve], path: &Path) -> Result<()> {
    let mut text = String::from("group,x,mean,std,seeds\n");
    for c in curves {
        for (x, m, s, n) in &c.points {
            text.push_str(&format!("{},{x},{m},{s},{n}\n", c.label));
        }
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Draws the curves (mean line, one-std band) into a PNG.
pub fn draw_png(curves: &[Curve], path: &Path, x: &str, y: &str, title: &str) -> Result<()> {
    mbrl_core::plot::register_font()?;
    let all: Vec<&(f64, f64, f64, usize)> = curves.iter().flat_map(|c| &c.points).collect();
    if all.is_empty() {
        bail!(UsageError(format!("no finite `{y}` values to plot")));
    }
    let (mut x0, mut x1) = (f64::INFINITY, f64::NEG_INFINITY);
    let (mut y0, mut y1) = (f64::INFINITY, f64::NEG_INFINITY);
    for (px, m, s, _) in &all {
        x0 = x0.min(*px);
        x1 = x1.max(*px);
        y0 = y0.min(m - s);
        y1 = y1.max(m + s);
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    let pad = ((y1 - y0) * 0.05).max(1e-6);
    let root = BitMapBackend::new(path, (900, 560)).into_drawing_area();
    let draw_err = |e: &dyn std::fmt::Display| anyhow::anyhow!("drawing {}: {e}", path.display());
    root.fill(&WHITE).map_err(|e| draw_err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(x0..x1, (y0 - pad)..(y1 + pad))
        .map_err(|e| draw_err(&e))?;
    chart
        .configure_mesh()
        .x_desc(x)
        .y_desc(y)
        .label_style(("sans-serif", 15))
        .draw()
        .map_err(|e| draw_err(&e))?;
    for (i, curve) in curves.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let band: Vec<(f64, f64)> = curve
            .points
            .iter()
            .map(|p| (p.0, p.1 + p.2))
            .chain(curve.points.iter().rev().map(|p| (p.0, p.1 - p.2)))
            .collect();
        chart
            .draw_series(std::iter::once(Polygon::new(band, color.mix(0.2).filled())))
            .map_err(|e| draw_err(&e))?;
        let seeds = curve.points.iter().map(|p| p.3).max().unwrap_or(0);
        chart
            .draw_series(LineSeries::new(
                curve.points.iter().map(|p| (p.0, p.1)),
                color.stroke_width(2),
            ))
            .map_err(|e| draw_err(&e))?
            .label(format!("{} ({seeds} seeds)", curve.label))
            .legend(move |(lx, ly)| {
                PathElement::new(vec![(lx, ly), (lx + 20, ly)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .draw()
        .map_err(|e| draw_err(&e))?;
    root.present().map_err(|e| draw_err(&e))?;
    Ok(())
}

/// A markdown table: for each group, the first `x` at which the mean reaches `threshold`,
/// and the final mean and sample standard deviation over seeds.
pub fn threshold_table(curves: &[Curve], x: &str, y: &str, threshold: f64) -> String {
    let mut text = format!("| group | first `{x}` with mean `{y}` >= {threshold} | final mean | final sample std | seeds |\n|---|---|---|---|---|\n");
    for c in curves {
        let first = c
            .points
            .iter()
            .find(|p| p.1 >= threshold)
            .map_or_else(|| "not reached".to_string(), |p| format!("{}", p.0));
        match c.points.last() {
            Some((_, m, s, n)) => text.push_str(&format!(
                "| {} | {first} | {m:.1} | {s:.1} | {n} |\n",
                c.label
            )),
            None => text.push_str(&format!("| {} | {first} | - | - | 0 |\n", c.label)),
        }
    }
    text
}

/// Reads an aggregated CSV as [`write_csv`] writes it, groups in order of first appearance.
pub fn read_csv(path: &Path) -> Result<Vec<Curve>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    if header != "group,x,mean,std,seeds" {
        return Err(UsageError(format!(
            "{}: expected the header `group,x,mean,std,seeds` (a CSV written by `mbrl-cli plot`), \
             got `{header}`",
            path.display()
        ))
        .into());
    }
    let mut curves: Vec<Curve> = Vec::new();
    for (i, line) in lines.enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let bad = || {
            UsageError(format!(
                "{} line {}: malformed row `{line}`",
                path.display(),
                i + 2
            ))
        };
        // The group label may itself contain commas: the last four fields are numbers.
        let fields: Vec<&str> = line.rsplitn(5, ',').collect();
        let [seeds, std, mean, x, label] = fields[..] else {
            return Err(bad().into());
        };
        let number = |f: &str| f.parse::<f64>().map_err(|_| bad());
        let point = (
            number(x)?,
            number(mean)?,
            number(std)?,
            seeds.parse().map_err(|_| bad())?,
        );
        match curves.iter_mut().find(|c| c.label == label) {
            Some(curve) => curve.points.push(point),
            None => curves.push(Curve {
                label: label.to_string(),
                points: vec![point],
            }),
        }
    }
    Ok(curves)
}

/// Where `mbrl-cli plot` takes its curves from.
pub enum Source<'a> {
    /// Run directories, folders of run directories, or `LABEL=DIR` (labelled by algorithm
    /// otherwise): aggregated over seeds, and the aggregate written as a CSV beside the PNG.
    Runs(&'a [String]),
    /// A CSV this command wrote earlier: the figure is redrawn from it, nothing is re-read.
    Csv(&'a Path),
}

/// `mbrl-cli plot`: draws the curves of `source` into `out` (a PNG), prints the threshold
/// table if asked.
pub fn plot(
    source: Source,
    out: &Path,
    x: &str,
    y: &str,
    title: Option<&str>,
    threshold: Option<f64>,
    log_x: bool,
) -> Result<()> {
    let curves = match source {
        Source::Runs(runs) => curves(&labelled_runs(runs)?, x, y)?,
        Source::Csv(path) => read_csv(path)?,
    };
    let title = title
        .map(String::from)
        .unwrap_or_else(|| format!("{y} vs {x}"));
    if log_x {
        let logged: Vec<Curve> = curves
            .iter()
            .map(|c| Curve {
                label: c.label.clone(),
                points: c
                    .points
                    .iter()
                    .filter(|p| p.0 > 0.0)
                    .map(|p| (p.0.log10(), p.1, p.2, p.3))
                    .collect(),
            })
            .collect();
        draw_png(&logged, out, &format!("log10({x})"), y, &title)?;
    } else {
        draw_png(&curves, out, x, y, &title)?;
    }
    if let Source::Runs(_) = source {
        write_csv(&curves, &out.with_extension("csv"))?;
        eprintln!(
            "wrote {} and {}",
            out.display(),
            out.with_extension("csv").display()
        );
    } else {
        eprintln!("wrote {}", out.display());
    }
    if let Some(t) = threshold {
        print!("{}", threshold_table(&curves, x, y, t));
    }
    Ok(())
}

/// The run directories of `runs` (each a run, a folder of runs, or `LABEL=DIR`) with their
/// labels.
fn labelled_runs(runs: &[String]) -> Result<Vec<(String, PathBuf)>> {
    let mut labelled = Vec::new();
    for arg in runs {
        let (label, dir) = match arg.split_once('=') {
            Some((l, d)) => (Some(l.to_string()), PathBuf::from(d)),
            None => (None, PathBuf::from(arg)),
        };
        let dirs: Vec<PathBuf> = if dir.join(CONFIG_FILE).is_file() {
            vec![dir]
        } else {
            let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
                .map_err(|e| UsageError(format!("{}: {e}", dir.display())))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.join(CONFIG_FILE).is_file())
                .collect();
            found.sort();
            if found.is_empty() {
                return Err(
                    UsageError(format!("{} holds no run directories", dir.display())).into(),
                );
            }
            found
        };
        for d in dirs {
            let l = match &label {
                Some(l) => l.clone(),
                None => run_label(&d)?,
            };
            labelled.push((l, d));
        }
    }
    Ok(labelled)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(dir: &Path, rows: &[(f64, f64)]) -> PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        let mut text = String::from("iteration,env_steps,eval_return,wall_time_s\n");
        for (i, (x, y)) in rows.iter().enumerate() {
            text.push_str(&format!("{},{x},{y},0\n", i + 1));
        }
        std::fs::write(dir.join("metrics.csv"), text).unwrap();
        dir.to_path_buf()
    }

    #[test]
    fn seeds_are_averaged_per_iteration_and_nan_rows_skipped() {
        let tmp = tempfile::tempdir().unwrap();
        let a = run(
            &tmp.path().join("a"),
            &[(10.0, 1.0), (20.0, f64::NAN), (30.0, 5.0)],
        );
        let b = run(
            &tmp.path().join("b"),
            &[(10.0, 3.0), (20.0, f64::NAN), (30.0, 9.0)],
        );
        let c = curves(
            &[("x".into(), a), ("x".into(), b)],
            "env_steps",
            "eval_return",
        )
        .unwrap();
        assert_eq!(c.len(), 1);
        // The band is the sample standard deviation (n - 1): sqrt(2) of {1, 3}, sqrt(8) of {5, 9}.
        assert_eq!(
            c[0].points,
            vec![(10.0, 2.0, 2f64.sqrt(), 2), (30.0, 7.0, 8f64.sqrt(), 2)]
        );
        let table = threshold_table(&c, "env_steps", "eval_return", 6.0);
        assert!(table.contains("| x | 30 | 7.0 | 2.8 | 2 |"), "{table}");
        assert!(threshold_table(&c, "env_steps", "eval_return", 60.0).contains("not reached"));
        let csv = tmp.path().join("curves.csv");
        write_csv(&c, &csv).unwrap();
        assert_eq!(
            read_csv(&csv).unwrap(),
            c,
            "the CSV gives back the curves it was written from"
        );
    }
}
