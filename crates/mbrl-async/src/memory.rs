//! The `threads` backend: the servers of [`crate::servers`] in the memory of one process,
//! behind mutexes, for workers that are threads.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use mbrl_core::{Error, Result};

use crate::servers::{Control, ParameterServer, RolloutStream, Servers, Versioned};

/// Locks `mutex`; a worker that panicked while holding it is an error, not a second panic.
fn lock<'a, T>(mutex: &'a Mutex<T>, what: &str) -> Result<MutexGuard<'a, T>> {
    mutex.lock().map_err(|_| {
        Error::InvalidArgument(format!(
            "the in-memory {what} is unusable: a worker panicked while using it"
        ))
    })
}

/// A parameter server in memory.
#[derive(Default)]
pub struct MemoryParameters {
    newest: Mutex<Option<Versioned>>,
}

impl ParameterServer for MemoryParameters {
    fn push(&self, bytes: Vec<u8>) -> Result<u64> {
        let mut newest = lock(&self.newest, "parameter server")?;
        let version = newest.as_ref().map_or(0, |v| v.version) + 1;
        *newest = Some(Versioned {
            version,
            bytes: Arc::new(bytes),
        });
        Ok(version)
    }

    fn pull_newer(&self, have: u64) -> Result<Option<Versioned>> {
        let newest = lock(&self.newest, "parameter server")?;
        Ok(newest.as_ref().filter(|v| v.version > have).cloned())
    }

    fn version(&self) -> Result<u64> {
        Ok(lock(&self.newest, "parameter server")?
            .as_ref()
            .map_or(0, |v| v.version))
    }
}

/// Entries and each reader's position.
#[derive(Default)]
struct StreamState {
    entries: Vec<Arc<Vec<u8>>>,
    cursors: HashMap<String, usize>,
}

/// A rollout stream in memory.
#[derive(Default)]
pub struct MemoryStream {
    state: Mutex<StreamState>,
    pushed: Condvar,
}

impl RolloutStream for MemoryStream {
    fn push(&self, bytes: Vec<u8>) -> Result<()> {
        lock(&self.state, "rollout stream")?
            .entries
            .push(Arc::new(bytes));
        self.pushed.notify_all();
        Ok(())
    }

    fn take_new(&self, reader: &str, wait: Duration) -> Result<Vec<Arc<Vec<u8>>>> {
        let deadline = Instant::now() + wait;
        let mut state = lock(&self.state, "rollout stream")?;
        loop {
            let cursor = state.cursors.get(reader).copied().unwrap_or(0);
            if cursor < state.entries.len() {
                let new = state.entries[cursor..].to_vec();
                let end = state.entries.len();
                state.cursors.insert(reader.to_string(), end);
                return Ok(new);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(Vec::new());
            }
            state = self
                .pushed
                .wait_timeout(state, left)
                .map_err(|_| {
                    Error::InvalidArgument(
                        "the in-memory rollout stream is unusable: a worker panicked".into(),
                    )
                })?
                .0;
        }
    }

    fn taken(&self, reader: &str) -> Result<Vec<Arc<Vec<u8>>>> {
        let state = lock(&self.state, "rollout stream")?;
        let cursor = state.cursors.get(reader).copied().unwrap_or(0);
        Ok(state.entries[..cursor].to_vec())
    }
}

/// Budget, stop flag and reports.
#[derive(Default)]
struct ControlState {
    budget: u64,
    reserved: u64,
    stop: bool,
    reports: BTreeMap<String, f64>,
}

/// The run's control in memory.
#[derive(Default)]
pub struct MemoryControl {
    state: Mutex<ControlState>,
}

impl Control for MemoryControl {
    fn add_budget(&self, rollouts: u64) -> Result<()> {
        lock(&self.state, "control")?.budget += rollouts;
        Ok(())
    }

    fn reserve_rollout(&self) -> Result<bool> {
        let mut state = lock(&self.state, "control")?;
        if state.reserved < state.budget {
            state.reserved += 1;
            return Ok(true);
        }
        Ok(false)
    }

    fn request_stop(&self) -> Result<()> {
        lock(&self.state, "control")?.stop = true;
        Ok(())
    }

    fn stop_requested(&self) -> Result<bool> {
        Ok(lock(&self.state, "control")?.stop)
    }

    fn report(&self, key: &str, value: f64) -> Result<()> {
        lock(&self.state, "control")?
            .reports
            .insert(key.to_string(), value);
        Ok(())
    }

    fn reports(&self) -> Result<BTreeMap<String, f64>> {
        Ok(lock(&self.state, "control")?.reports.clone())
    }
}

/// Fresh in-memory servers for one run.
pub fn memory_servers() -> Servers {
    Servers {
        policy: Arc::new(MemoryParameters::default()),
        model: Arc::new(MemoryParameters::default()),
        rollouts: Arc::new(MemoryStream::default()),
        control: Arc::new(MemoryControl::default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    #[test]
    fn the_latest_version_wins_and_pulls_only_newer() {
        let server = MemoryParameters::default();
        assert_eq!(server.version().unwrap(), 0);
        assert!(server.pull_newer(0).unwrap().is_none());
        assert_eq!(server.push(vec![1]).unwrap(), 1);
        assert_eq!(server.push(vec![2]).unwrap(), 2);
        let newest = server.pull_newer(0).unwrap().unwrap();
        assert_eq!((newest.version, newest.bytes.as_slice()), (2, &[2u8][..]));
        assert!(server.pull_newer(2).unwrap().is_none());
    }

    #[test]
    fn every_reader_takes_every_entry_exactly_once_across_threads() {
        let stream = Arc::new(MemoryStream::default());
        let writers: Vec<_> = (0..4u8)
            .map(|w| {
                let stream = stream.clone();
                thread::spawn(move || {
                    for i in 0..50u8 {
                        stream.push(vec![w, i]).unwrap();
                    }
                })
            })
            .collect();
        let mut taken = Vec::new();
        while taken.len() < 200 {
            let new = stream
                .take_new("model", Duration::from_millis(200))
                .unwrap();
            assert!(!new.is_empty(), "a push was lost after {}", taken.len());
            taken.extend(new.iter().map(|b| (b[0], b[1])));
        }
        writers.into_iter().for_each(|w| w.join().unwrap());
        assert!(stream.take_new("model", Duration::ZERO).unwrap().is_empty());
        let mut sorted = taken.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(
            sorted.len(),
            200,
            "duplicates among {} entries",
            taken.len()
        );
        // A second reader sees all of them too, in the same order.
        let other: Vec<(u8, u8)> = stream
            .take_new("coordinator", Duration::ZERO)
            .unwrap()
            .iter()
            .map(|b| (b[0], b[1]))
            .collect();
        assert_eq!(other, taken);
        assert_eq!(stream.taken("model").unwrap().len(), 200);
        assert!(stream.taken("nobody").unwrap().is_empty());
    }

    #[test]
    fn a_waiting_reader_wakes_on_a_push_and_times_out_without_one() {
        let stream = Arc::new(MemoryStream::default());
        let clock = Instant::now();
        assert!(stream
            .take_new("r", Duration::from_millis(30))
            .unwrap()
            .is_empty());
        assert!(clock.elapsed() >= Duration::from_millis(30));
        let writer = {
            let stream = stream.clone();
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(20));
                stream.push(vec![7]).unwrap();
            })
        };
        let new = stream.take_new("r", Duration::from_secs(10)).unwrap();
        assert_eq!(new.len(), 1);
        writer.join().unwrap();
    }

    #[test]
    fn the_budget_grants_exactly_what_was_added() {
        let control = Arc::new(MemoryControl::default());
        assert!(!control.reserve_rollout().unwrap());
        control.add_budget(30).unwrap();
        let granted: u64 = (0..3)
            .map(|_| {
                let control = control.clone();
                thread::spawn(move || {
                    (0..20)
                        .filter(|_| control.reserve_rollout().unwrap())
                        .count()
                })
            })
            .map(|h| h.join().unwrap() as u64)
            .sum();
        assert_eq!(granted, 30);
        control.report("model_epochs", 3.0).unwrap();
        assert_eq!(control.reports().unwrap()["model_epochs"], 3.0);
        assert!(!control.stop_requested().unwrap());
        control.request_stop().unwrap();
        assert!(control.stop_requested().unwrap());
    }
}
