//! Showing a run's progress: a progress bar with ETA on a terminal, plain periodic log lines
//! otherwise. Every line also goes to the run's `train.log`.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};
use mbrl_core::runner::{Progress, RunObserver};

use crate::run_dir::RunLog;

/// Reports progress of one run.
pub struct ProgressReporter {
    bar: Option<ProgressBar>,
    log: RunLog,
    /// Print a plain line every this many iterations (non-terminal output).
    every: u64,
}

impl ProgressReporter {
    /// A reporter for a run of `total` iterations starting after `done`.
    pub fn new(log: RunLog, done: u64, total: u64) -> Self {
        let bar = std::io::stdout().is_terminal().then(|| {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{bar:30} {pos}/{len} it [{elapsed_precise} < {eta_precise}] {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.set_position(done);
            bar
        });
        let every = (total / 20).max(1);
        Self { bar, log, every }
    }

    /// Prints a message above the bar (or as a plain line) and logs it.
    pub fn message(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => println!("{text}"),
        }
        self.log.line(text);
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.2}"))
}

impl RunObserver for ProgressReporter {
    fn on_iteration(&mut self, p: &Progress) {
        let highlights: String = p
            .highlights
            .iter()
            .map(|(key, value)| format!(" {key} {}", fmt_opt(Some(*value))))
            .collect();
        let line = format!(
            "iteration {}/{} env_steps {} train_return {} eval_return {} wall_time {:.1}s{highlights}",
            p.iteration,
            p.total_iterations,
            p.env_steps,
            fmt_opt(p.train_return),
            fmt_opt(p.eval_return),
            p.wall_time_s
        );
        self.log.line(&line);
        match &self.bar {
            Some(bar) => {
                bar.set_position(p.iteration);
                bar.set_message(format!(
                    "steps {} | return {} | eval {}{highlights}",
                    p.env_steps,
                    fmt_opt(p.train_return),
                    fmt_opt(p.eval_return)
                ));
            }
            None => {
                if p.iteration.is_multiple_of(self.every) || p.iteration == p.total_iterations {
                    println!("{line}");
                }
            }
        }
    }
}
