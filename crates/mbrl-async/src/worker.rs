//! The loop every worker runs (thesis Sec. 8.3: pull, step, push until the run stops), and
//! the names workers read and report under.

use std::thread;
use std::time::Duration;

use mbrl_core::Result;

use crate::servers::Control;

/// What one step of a worker did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It pulled, worked and pushed.
    Worked,
    /// It had nothing to do (no budget, no data, no model, or stopped early).
    Idle,
}

/// How long an idle worker waits before looking again.
pub const IDLE_WAIT: Duration = Duration::from_millis(20);

/// The reader name of the model worker on the rollout stream.
pub const MODEL_READER: &str = "model";
/// The reader name of the coordinator on the rollout stream.
pub const COORDINATOR_READER: &str = "coordinator";

/// A worker: one step of its loop.
pub trait Worker: Send {
    /// The role, for messages (`data 0`, `model`, `policy`).
    fn role(&self) -> String;
    /// One pull-step-push round.
    fn step(&mut self) -> Result<Outcome>;
}

/// Runs `worker` until `control` asks to stop; an idle step is followed by [`IDLE_WAIT`].
/// A failing step ends the loop with its error, prefixed by the worker's role.
pub fn run_until_stopped(mut worker: Box<dyn Worker>, control: &dyn Control) -> Result<()> {
    while !control.stop_requested()? {
        match worker.step() {
            Ok(Outcome::Worked) => {}
            Ok(Outcome::Idle) => thread::sleep(IDLE_WAIT),
            Err(e) => {
                return Err(mbrl_core::Error::InvalidArgument(format!(
                    "the {} worker failed: {e}",
                    worker.role()
                )))
            }
        }
    }
    Ok(())
}

/// Sleeps `seconds` in short slices, returning early when a stop is requested.
pub fn sleep_unless_stopped(seconds: f64, control: &dyn Control) -> Result<()> {
    let mut left = Duration::from_secs_f64(seconds.max(0.0));
    while !left.is_zero() && !control.stop_requested()? {
        let slice = left.min(Duration::from_millis(50));
        thread::sleep(slice);
        left -= slice;
    }
    Ok(())
}
