//! The real data of online-adaptive model learning: trajectories kept whole and in order
//! (GrBAL's "tasks" are their temporal segments), each split in time into a training head and
//! a validation tail, and windows of consecutive transitions drawn from them.

use std::collections::HashMap;

use candle_core::{Device, Tensor};
use mbrl_core::data::Trajectory;
use mbrl_core::{Error, Result};
use rand::{Rng, RngCore};
use serde::{Deserialize, Serialize};

/// Consecutive transitions of one trajectory, flat row-major.
#[derive(Debug, Clone, Default, PartialEq)]
struct Segment {
    obs: Vec<f32>,
    act: Vec<f32>,
    next_obs: Vec<f32>,
}

impl Segment {
    fn len(&self, act_dim: usize) -> usize {
        self.act.len() / act_dim.max(1)
    }
}

/// `N` windows of `W` consecutive transitions: `obs` and `next_obs` `[N, W, obs_dim]`, `act`
/// `[N, W, act_dim]`.
#[derive(Debug, Clone)]
pub struct Windows {
    /// Observations `s_t`.
    pub obs: Tensor,
    /// Actions `a_t`.
    pub act: Tensor,
    /// Next observations `s_{t+1}`.
    pub next_obs: Tensor,
}

impl Windows {
    /// Windows from flat rows: `n` windows of `w` transitions each.
    pub fn from_rows(
        obs: Vec<f32>,
        act: Vec<f32>,
        next_obs: Vec<f32>,
        n: usize,
        w: usize,
    ) -> Result<Self> {
        let (d, a) = (obs.len() / (n * w).max(1), act.len() / (n * w).max(1));
        Ok(Self {
            obs: Tensor::from_vec(obs, (n, w, d), &Device::Cpu)?,
            act: Tensor::from_vec(act, (n, w, a), &Device::Cpu)?,
            next_obs: Tensor::from_vec(next_obs, (n, w, d), &Device::Cpu)?,
        })
    }

    /// The first `m` transitions of every window and the rest (GrBAL's past and future).
    pub fn split(&self, m: usize) -> Result<(Windows, Windows)> {
        let w = self.obs.dim(1)?;
        if m == 0 || m >= w {
            return Err(Error::InvalidArgument(format!(
                "cannot split windows of {w} transitions after {m}"
            )));
        }
        let part = |start: usize, len: usize| -> Result<Windows> {
            Ok(Windows {
                obs: self.obs.narrow(1, start, len)?,
                act: self.act.narrow(1, start, len)?,
                next_obs: self.next_obs.narrow(1, start, len)?,
            })
        };
        Ok((part(0, m)?, part(m, w - m)?))
    }

    /// Number of windows `N`.
    pub fn count(&self) -> Result<usize> {
        Ok(self.obs.dim(0)?)
    }
}

/// Position of the data streams in a checkpoint: the segment lengths.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SegmentLengths {
    /// Transitions of each training segment, in order.
    pub train: Vec<usize>,
    /// Transitions of each validation segment, in order.
    pub validation: Vec<usize>,
}

/// Every real trajectory, split into training and validation segments.
#[derive(Debug, Clone)]
pub struct SegmentBuffer {
    obs_dim: usize,
    act_dim: usize,
    train: Vec<Segment>,
    validation: Vec<Segment>,
}

impl SegmentBuffer {
    /// An empty buffer for `(obs_dim, act_dim)` transitions.
    pub fn new(obs_dim: usize, act_dim: usize) -> Self {
        Self {
            obs_dim,
            act_dim,
            train: Vec::new(),
            validation: Vec::new(),
        }
    }

    /// Adds a trajectory: with a positive `validation_share`, its last
    /// `max(floor(validation_share * T), window)` transitions become a validation segment
    /// when the head left holds a whole `window` too; otherwise the whole trajectory trains.
    pub fn add(&mut self, traj: &Trajectory, window: usize, validation_share: f64) -> Result<()> {
        if traj.obs_dim != self.obs_dim || traj.act_dim != self.act_dim {
            return Err(Error::shape(
                "trajectory",
                format!("obs {} act {}", self.obs_dim, self.act_dim),
                format!("obs {} act {}", traj.obs_dim, traj.act_dim),
            ));
        }
        let t = traj.len();
        if t == 0 {
            return Ok(());
        }
        let next = traj.next_observations();
        let whole = Segment {
            obs: traj.observations.clone(),
            act: traj.actions.clone(),
            next_obs: next,
        };
        let tail = ((validation_share * t as f64).floor() as usize).max(window);
        if validation_share > 0.0 && t >= tail + window {
            let head = t - tail;
            let (d, a) = (self.obs_dim, self.act_dim);
            let cut = |s: &Segment, from: usize, to: usize| Segment {
                obs: s.obs[from * d..to * d].to_vec(),
                act: s.act[from * a..to * a].to_vec(),
                next_obs: s.next_obs[from * d..to * d].to_vec(),
            };
            self.train.push(cut(&whole, 0, head));
            self.validation.push(cut(&whole, head, t));
        } else {
            self.train.push(whole);
        }
        Ok(())
    }

    /// Training transitions.
    pub fn train_transitions(&self) -> usize {
        self.train.iter().map(|s| s.len(self.act_dim)).sum()
    }

    /// Validation transitions.
    pub fn validation_transitions(&self) -> usize {
        self.validation.iter().map(|s| s.len(self.act_dim)).sum()
    }

    /// `n` training windows of `window` consecutive transitions, uniform over every start
    /// position of every training segment long enough.
    pub fn sample(&self, n: usize, window: usize, rng: &mut dyn RngCore) -> Result<Windows> {
        let starts: Vec<usize> = self
            .train
            .iter()
            .map(|s| (s.len(self.act_dim) + 1).saturating_sub(window))
            .collect();
        let total: usize = starts.iter().sum();
        if total == 0 {
            return Err(Error::InvalidArgument(format!(
                "no training trajectory holds a window of {window} transitions yet ({} \
                 transitions in {} segments)",
                self.train_transitions(),
                self.train.len()
            )));
        }
        let mut picks = Vec::with_capacity(n);
        for _ in 0..n {
            let mut k = rng.random_range(0..total);
            let mut segment = 0;
            while k >= starts[segment] {
                k -= starts[segment];
                segment += 1;
            }
            picks.push((segment, k));
        }
        self.gather(&self.train, &picks, window)
    }

    /// The validation segments cut into consecutive non-overlapping windows (the same at
    /// every call); `None` without validation data.
    pub fn validation_windows(&self, window: usize) -> Result<Option<Windows>> {
        let picks: Vec<(usize, usize)> = self
            .validation
            .iter()
            .enumerate()
            .flat_map(|(i, s)| {
                (0..s.len(self.act_dim) / window.max(1)).map(move |j| (i, j * window))
            })
            .collect();
        if picks.is_empty() {
            return Ok(None);
        }
        self.gather(&self.validation, &picks, window).map(Some)
    }

    fn gather(
        &self,
        segments: &[Segment],
        picks: &[(usize, usize)],
        window: usize,
    ) -> Result<Windows> {
        let (d, a) = (self.obs_dim, self.act_dim);
        let (mut obs, mut act, mut next) = (Vec::new(), Vec::new(), Vec::new());
        for &(i, start) in picks {
            let s = &segments[i];
            obs.extend_from_slice(&s.obs[start * d..(start + window) * d]);
            act.extend_from_slice(&s.act[start * a..(start + window) * a]);
            next.extend_from_slice(&s.next_obs[start * d..(start + window) * d]);
        }
        Windows::from_rows(obs, act, next, picks.len(), window)
    }

    /// Every training transition as flat rows `(obs, act, next_obs - obs)` (for the
    /// normalisation statistics).
    pub fn train_rows(&self) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let (mut obs, mut act, mut delta) = (Vec::new(), Vec::new(), Vec::new());
        for s in &self.train {
            obs.extend_from_slice(&s.obs);
            act.extend_from_slice(&s.act);
            delta.extend(s.next_obs.iter().zip(&s.obs).map(|(n, o)| n - o));
        }
        (obs, act, delta)
    }

    /// The data as named tensors plus the segment lengths (for checkpoints).
    pub fn to_checkpoint(&self) -> Result<(HashMap<String, Tensor>, SegmentLengths)> {
        let mut tensors = HashMap::new();
        for (name, segments) in [("train", &self.train), ("validation", &self.validation)] {
            for (field, pick) in [
                ("obs", (|s: &Segment| &s.obs) as fn(&Segment) -> &Vec<f32>),
                ("act", |s: &Segment| &s.act),
                ("next_obs", |s: &Segment| &s.next_obs),
            ] {
                let flat: Vec<f32> = segments.iter().flat_map(|s| pick(s).clone()).collect();
                let n = flat.len();
                tensors.insert(
                    format!("data.{name}.{field}"),
                    Tensor::from_vec(flat, n, &Device::Cpu)?,
                );
            }
        }
        let lengths = SegmentLengths {
            train: self.train.iter().map(|s| s.len(self.act_dim)).collect(),
            validation: self
                .validation
                .iter()
                .map(|s| s.len(self.act_dim))
                .collect(),
        };
        Ok((tensors, lengths))
    }

    /// Restores what [`SegmentBuffer::to_checkpoint`] produced.
    pub fn load_checkpoint(
        &mut self,
        tensors: &HashMap<String, Tensor>,
        lengths: &SegmentLengths,
    ) -> Result<()> {
        let (d, a) = (self.obs_dim, self.act_dim);
        let read = |name: &str| -> Result<Vec<f32>> {
            tensors
                .get(name)
                .ok_or_else(|| {
                    Error::InvalidArgument(format!("the checkpoint has no tensor `{name}`"))
                })?
                .to_vec1::<f32>()
                .map_err(Into::into)
        };
        let split = |name: &str, lens: &[usize]| -> Result<Vec<Segment>> {
            let (obs, act, next) = (
                read(&format!("data.{name}.obs"))?,
                read(&format!("data.{name}.act"))?,
                read(&format!("data.{name}.next_obs"))?,
            );
            let total: usize = lens.iter().sum();
            if obs.len() != total * d || act.len() != total * a || next.len() != total * d {
                return Err(Error::InvalidArgument(format!(
                    "the checkpoint's {name} data does not match its {total} transitions"
                )));
            }
            let mut at = 0;
            Ok(lens
                .iter()
                .map(|&len| {
                    let s = Segment {
                        obs: obs[at * d..(at + len) * d].to_vec(),
                        act: act[at * a..(at + len) * a].to_vec(),
                        next_obs: next[at * d..(at + len) * d].to_vec(),
                    };
                    at += len;
                    s
                })
                .collect())
        };
        self.train = split("train", &lengths.train)?;
        self.validation = split("validation", &lengths.validation)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// A trajectory whose observation at step t is `[t]` and action `[10 t]`.
    fn counting(len: usize) -> Trajectory {
        let mut traj = Trajectory::new(vec![0.0], 1);
        for t in 0..len {
            traj.push(&[10.0 * t as f32], 0.0, vec![(t + 1) as f32])
                .unwrap();
        }
        traj
    }

    #[test]
    fn windows_are_consecutive_transitions_of_one_trajectory() {
        let mut buffer = SegmentBuffer::new(1, 1);
        buffer.add(&counting(40), 8, 0.25).unwrap();
        buffer.add(&counting(5), 8, 0.25).unwrap();
        assert_eq!(buffer.train_transitions(), 30 + 5);
        assert_eq!(buffer.validation_transitions(), 10);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let w = buffer.sample(50, 8, &mut rng).unwrap();
        let obs = w.obs.to_vec3::<f32>().unwrap();
        let act = w.act.to_vec3::<f32>().unwrap();
        let next = w.next_obs.to_vec3::<f32>().unwrap();
        for i in 0..50 {
            let s0 = obs[i][0][0];
            assert!(s0 + 8.0 <= 30.0, "windows stay in the training head");
            for t in 0..8 {
                assert_eq!(obs[i][t][0], s0 + t as f32);
                assert_eq!(act[i][t][0], 10.0 * (s0 + t as f32));
                assert_eq!(next[i][t][0], s0 + t as f32 + 1.0);
            }
        }
        let v = buffer.validation_windows(8).unwrap().unwrap();
        assert_eq!(v.obs.dims(), &[1, 8, 1]);
        assert_eq!(v.obs.to_vec3::<f32>().unwrap()[0][0][0], 30.0);
        let (past, future) = w.split(3).unwrap();
        assert_eq!(
            (past.obs.dim(1).unwrap(), future.obs.dim(1).unwrap()),
            (3, 5)
        );
    }

    #[test]
    fn too_short_data_is_a_clear_error_and_checkpoints_round_trip() {
        let mut buffer = SegmentBuffer::new(1, 1);
        buffer.add(&counting(5), 8, 0.1).unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let message = buffer.sample(1, 8, &mut rng).unwrap_err().to_string();
        assert!(message.contains("window of 8"), "{message}");
        buffer.add(&counting(100), 8, 0.1).unwrap();
        let (tensors, lengths) = buffer.to_checkpoint().unwrap();
        let mut restored = SegmentBuffer::new(1, 1);
        restored.load_checkpoint(&tensors, &lengths).unwrap();
        assert_eq!(restored.train, buffer.train);
        assert_eq!(restored.validation, buffer.validation);
    }
}
