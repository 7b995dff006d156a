//! Experience data: trajectories, tensor batches of transitions, and a FIFO replay buffer.
//!
//! A [`Trajectory`] keeps the final observation and whether the episode ended by termination
//! or by truncation, so bootstrapping code can tell them apart. A [`ReplayBuffer`] stores
//! transitions in flat `f32` arrays (oldest dropped first), samples minibatches with the
//! caller's seeded RNG, and saves to / loads from a safetensors file.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use rand::{Rng, RngCore};

use crate::{Error, Result};

/// One episode (or a piece of one) collected in an environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Trajectory {
    /// Observation width.
    pub obs_dim: usize,
    /// Action width.
    pub act_dim: usize,
    /// `o_0 .. o_{T-1}`, flat `[T * obs_dim]`.
    pub observations: Vec<f32>,
    /// `a_0 .. a_{T-1}`, flat `[T * act_dim]`.
    pub actions: Vec<f32>,
    /// `r_0 .. r_{T-1}`.
    pub rewards: Vec<f64>,
    /// `o_T`, the observation after the last action.
    pub final_observation: Vec<f32>,
    /// The last transition reached a terminal state.
    pub terminated: bool,
    /// The trajectory was cut by a time limit (or by the collector's budget).
    pub truncated: bool,
}

impl Trajectory {
    /// An empty trajectory starting at `first_obs`.
    pub fn new(first_obs: Vec<f32>, act_dim: usize) -> Self {
        Self {
            obs_dim: first_obs.len(),
            act_dim,
            observations: Vec::new(),
            actions: Vec::new(),
            rewards: Vec::new(),
            final_observation: first_obs,
            terminated: false,
            truncated: false,
        }
    }

    /// Appends a transition from the current last observation.
    pub fn push(&mut self, action: &[f32], reward: f64, next_obs: Vec<f32>) -> Result<()> {
        if action.len() != self.act_dim || next_obs.len() != self.obs_dim {
            return Err(Error::shape(
                "Trajectory::push",
                format!("action {} / obs {}", self.act_dim, self.obs_dim),
                format!("action {} / obs {}", action.len(), next_obs.len()),
            ));
        }
        let current = std::mem::replace(&mut self.final_observation, next_obs);
        self.observations.extend(current);
        self.actions.extend_from_slice(action);
        self.rewards.push(reward);
        Ok(())
    }

    /// Number of transitions.
    pub fn len(&self) -> usize {
        self.rewards.len()
    }

    /// Whether there are no transitions.
    pub fn is_empty(&self) -> bool {
        self.rewards.is_empty()
    }

    /// Undiscounted sum of rewards.
    pub fn total_return(&self) -> f64 {
        self.rewards.iter().sum()
    }

    /// Observation `t` (`t == len()` gives the final observation).
    pub fn obs(&self, t: usize) -> &[f32] {
        if t == self.len() {
            &self.final_observation
        } else {
            &self.observations[t * self.obs_dim..(t + 1) * self.obs_dim]
        }
    }

    /// Flat next observations `o_1 .. o_T`.
    pub fn next_observations(&self) -> Vec<f32> {
        let mut next = self.observations[self.obs_dim.min(self.observations.len())..].to_vec();
        next.extend_from_slice(&self.final_observation);
        next
    }

    /// Terminal flags per transition (only the last can be set).
    pub fn terminal_flags(&self) -> Vec<f32> {
        let mut flags = vec![0.0; self.len()];
        if self.terminated {
            if let Some(last) = flags.last_mut() {
                *last = 1.0;
            }
        }
        flags
    }

    /// The trajectory's transitions as tensors.
    pub fn to_batch(&self, device: &Device) -> Result<TransitionBatch> {
        let t = self.len();
        Ok(TransitionBatch {
            obs: Tensor::from_slice(&self.observations, (t, self.obs_dim), device)?,
            act: Tensor::from_slice(&self.actions, (t, self.act_dim), device)?,
            next_obs: Tensor::from_vec(self.next_observations(), (t, self.obs_dim), device)?,
            reward: Tensor::from_vec(
                self.rewards.iter().map(|&r| r as f32).collect::<Vec<_>>(),
                t,
                device,
            )?,
            terminated: Tensor::from_vec(self.terminal_flags(), t, device)?,
        })
    }
}

/// A batch of transitions as `f32` tensors: `obs`, `act`, `next_obs` are `[B, dim]`;
/// `reward` and `terminated` (1.0 or 0.0) are `[B]`.
#[derive(Debug, Clone)]
pub struct TransitionBatch {
    /// Observations.
    pub obs: Tensor,
    /// Actions.
    pub act: Tensor,
    /// Next observations.
    pub next_obs: Tensor,
    /// Rewards.
    pub reward: Tensor,
    /// Terminal flags.
    pub terminated: Tensor,
}

impl TransitionBatch {
    /// Number of transitions.
    pub fn len(&self) -> usize {
        self.reward.dims().first().copied().unwrap_or(0)
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A first-in-first-out store of transitions with seeded minibatch sampling.
#[derive(Debug, Clone)]
pub struct ReplayBuffer {
    capacity: usize,
    obs_dim: usize,
    act_dim: usize,
    /// Index of the slot the next transition goes to.
    head: usize,
    len: usize,
    obs: Vec<f32>,
    act: Vec<f32>,
    next_obs: Vec<f32>,
    reward: Vec<f32>,
    terminated: Vec<f32>,
}

impl ReplayBuffer {
    /// An empty buffer holding at most `capacity` transitions.
    pub fn new(capacity: usize, obs_dim: usize, act_dim: usize) -> Result<Self> {
        if capacity == 0 {
            return Err(Error::InvalidArgument(
                "replay buffer capacity must be positive".into(),
            ));
        }
        Ok(Self {
            capacity,
            obs_dim,
            act_dim,
            head: 0,
            len: 0,
            obs: vec![0.0; capacity * obs_dim],
            act: vec![0.0; capacity * act_dim],
            next_obs: vec![0.0; capacity * obs_dim],
            reward: vec![0.0; capacity],
            terminated: vec![0.0; capacity],
        })
    }

    /// Number of stored transitions.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Maximum number of transitions.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Observation width.
    pub fn obs_dim(&self) -> usize {
        self.obs_dim
    }

    /// Action width.
    pub fn act_dim(&self) -> usize {
        self.act_dim
    }

    /// Stores one transition, dropping the oldest when full.
    pub fn push(
        &mut self,
        obs: &[f32],
        act: &[f32],
        next_obs: &[f32],
        reward: f32,
        terminated: bool,
    ) -> Result<()> {
        if obs.len() != self.obs_dim || next_obs.len() != self.obs_dim || act.len() != self.act_dim
        {
            return Err(Error::shape(
                "ReplayBuffer::push",
                format!("obs {} / act {}", self.obs_dim, self.act_dim),
                format!(
                    "obs {} / act {} / next {}",
                    obs.len(),
                    act.len(),
                    next_obs.len()
                ),
            ));
        }
        let i = self.head;
        self.obs[i * self.obs_dim..(i + 1) * self.obs_dim].copy_from_slice(obs);
        self.next_obs[i * self.obs_dim..(i + 1) * self.obs_dim].copy_from_slice(next_obs);
        self.act[i * self.act_dim..(i + 1) * self.act_dim].copy_from_slice(act);
        self.reward[i] = reward;
        self.terminated[i] = if terminated { 1.0 } else { 0.0 };
        self.head = (self.head + 1) % self.capacity;
        self.len = (self.len + 1).min(self.capacity);
        Ok(())
    }

    /// Stores every transition of a trajectory.
    pub fn push_trajectory(&mut self, traj: &Trajectory) -> Result<()> {
        for (t, flag) in traj.terminal_flags().into_iter().enumerate() {
            self.push(
                traj.obs(t),
                &traj.actions[t * traj.act_dim..(t + 1) * traj.act_dim],
                traj.obs(t + 1),
                traj.rewards[t] as f32,
                flag > 0.5,
            )?;
        }
        Ok(())
    }

    /// Slot of the `i`-th oldest transition.
    fn slot(&self, i: usize) -> usize {
        (self.head + self.capacity - self.len + i) % self.capacity
    }

    /// Gathers the transitions at the given age indices (0 = oldest) into a batch.
    pub fn gather(&self, indices: &[usize], device: &Device) -> Result<TransitionBatch> {
        let n = indices.len();
        let (od, ad) = (self.obs_dim, self.act_dim);
        let mut obs = Vec::with_capacity(n * od);
        let mut act = Vec::with_capacity(n * ad);
        let mut next_obs = Vec::with_capacity(n * od);
        let mut reward = Vec::with_capacity(n);
        let mut terminated = Vec::with_capacity(n);
        for &i in indices {
            if i >= self.len {
                return Err(Error::InvalidArgument(format!(
                    "replay index {i} out of range for {} transitions",
                    self.len
                )));
            }
            let s = self.slot(i);
            obs.extend_from_slice(&self.obs[s * od..(s + 1) * od]);
            act.extend_from_slice(&self.act[s * ad..(s + 1) * ad]);
            next_obs.extend_from_slice(&self.next_obs[s * od..(s + 1) * od]);
            reward.push(self.reward[s]);
            terminated.push(self.terminated[s]);
        }
        Ok(TransitionBatch {
            obs: Tensor::from_vec(obs, (n, od), device)?,
            act: Tensor::from_vec(act, (n, ad), device)?,
            next_obs: Tensor::from_vec(next_obs, (n, od), device)?,
            reward: Tensor::from_vec(reward, n, device)?,
            terminated: Tensor::from_vec(terminated, n, device)?,
        })
    }

    /// A minibatch of `batch_size` transitions drawn uniformly with replacement.
    pub fn sample(
        &self,
        batch_size: usize,
        rng: &mut dyn RngCore,
        device: &Device,
    ) -> Result<TransitionBatch> {
        if self.is_empty() {
            return Err(Error::InvalidArgument(
                "cannot sample from an empty replay buffer".into(),
            ));
        }
        let indices: Vec<usize> = (0..batch_size)
            .map(|_| rng.random_range(0..self.len))
            .collect();
        self.gather(&indices, device)
    }

    /// Every stored transition, oldest first.
    pub fn all(&self, device: &Device) -> Result<TransitionBatch> {
        self.gather(&(0..self.len).collect::<Vec<_>>(), device)
    }

    /// The buffer (oldest first) as named tensors: `obs`, `act`, `next_obs`, `reward`,
    /// `terminated` and `meta` (capacity, obs_dim, act_dim).
    pub fn named_tensors(&self) -> Result<HashMap<String, Tensor>> {
        let batch = self.all(&Device::Cpu)?;
        let meta = Tensor::new(
            &[
                self.capacity as u32,
                self.obs_dim as u32,
                self.act_dim as u32,
            ],
            &Device::Cpu,
        )?;
        Ok(HashMap::from([
            ("obs".to_string(), batch.obs),
            ("act".to_string(), batch.act),
            ("next_obs".to_string(), batch.next_obs),
            ("reward".to_string(), batch.reward),
            ("terminated".to_string(), batch.terminated),
            ("meta".to_string(), meta),
        ]))
    }

    /// Rebuilds a buffer from [`ReplayBuffer::named_tensors`].
    pub fn from_named_tensors(tensors: &HashMap<String, Tensor>) -> Result<Self> {
        let get = |name: &str| {
            tensors.get(name).cloned().ok_or_else(|| {
                Error::InvalidArgument(format!("replay buffer lacks tensor `{name}`"))
            })
        };
        let meta: Vec<u32> = get("meta")?.to_vec1()?;
        let [capacity, obs_dim, act_dim] = meta[..] else {
            return Err(Error::InvalidArgument(
                "replay buffer `meta` must hold capacity, obs_dim, act_dim".into(),
            ));
        };
        let mut buffer = Self::new(capacity as usize, obs_dim as usize, act_dim as usize)?;
        let n = get("reward")?.dim(0)?;
        let rows = |name: &str, width: usize| -> Result<Vec<f32>> {
            let t = get(name)?;
            if t.elem_count() != n * width {
                return Err(Error::shape(
                    format!("replay tensor `{name}`"),
                    format!("{n} x {width}"),
                    format!("{:?}", t.dims()),
                ));
            }
            Ok(t.flatten_all()?.to_vec1()?)
        };
        let (od, ad) = (obs_dim as usize, act_dim as usize);
        let (obs, act, next_obs) = (rows("obs", od)?, rows("act", ad)?, rows("next_obs", od)?);
        let (reward, terminated) = (rows("reward", 1)?, rows("terminated", 1)?);
        for i in 0..n {
            buffer.push(
                &obs[i * od..(i + 1) * od],
                &act[i * ad..(i + 1) * ad],
                &next_obs[i * od..(i + 1) * od],
                reward[i],
                terminated[i] > 0.5,
            )?;
        }
        Ok(buffer)
    }

    /// Writes the buffer (oldest first) to a safetensors file.
    pub fn save(&self, path: &Path) -> Result<()> {
        candle_core::safetensors::save(&self.named_tensors()?, path).map_err(|e| Error::Malformed {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    }

    /// Reads a buffer written by [`ReplayBuffer::save`].
    pub fn load(path: &Path) -> Result<Self> {
        if !path.exists() {
            return Err(Error::io(
                path,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such replay buffer file"),
            ));
        }
        let tensors =
            candle_core::safetensors::load(path, &Device::Cpu).map_err(|e| Error::Malformed {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        Self::from_named_tensors(&tensors).map_err(|e| Error::Malformed {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn traj() -> Trajectory {
        let mut t = Trajectory::new(vec![0.0, 0.0], 1);
        t.push(&[1.0], 1.0, vec![1.0, 0.0]).unwrap();
        t.push(&[2.0], 2.0, vec![3.0, 0.0]).unwrap();
        t.push(&[3.0], 3.0, vec![6.0, 0.0]).unwrap();
        t.terminated = true;
        t
    }

    #[test]
    fn trajectory_keeps_final_observation_and_terminal_flag() {
        let t = traj();
        assert_eq!(t.len(), 3);
        assert_eq!(t.total_return(), 6.0);
        assert_eq!(t.obs(0), &[0.0, 0.0]);
        assert_eq!(t.obs(3), &[6.0, 0.0]);
        assert_eq!(t.next_observations(), vec![1.0, 0.0, 3.0, 0.0, 6.0, 0.0]);
        assert_eq!(t.terminal_flags(), vec![0.0, 0.0, 1.0]);
        let b = t.to_batch(&Device::Cpu).unwrap();
        assert_eq!(b.len(), 3);
        assert_eq!(b.next_obs.to_vec2::<f32>().unwrap()[2], vec![6.0, 0.0]);
        assert!(Trajectory::new(vec![0.0], 1)
            .push(&[1.0, 2.0], 0.0, vec![0.0])
            .is_err());
    }

    #[test]
    fn buffer_is_fifo_once_full() {
        let mut buf = ReplayBuffer::new(2, 2, 1).unwrap();
        buf.push_trajectory(&traj()).unwrap();
        assert_eq!(buf.len(), 2);
        let all = buf.all(&Device::Cpu).unwrap();
        assert_eq!(
            all.act.to_vec2::<f32>().unwrap(),
            vec![vec![2.0], vec![3.0]]
        );
        assert_eq!(all.terminated.to_vec1::<f32>().unwrap(), vec![0.0, 1.0]);
    }

    #[test]
    fn sampling_is_seeded_and_covers_the_buffer() {
        let mut buf = ReplayBuffer::new(10, 2, 1).unwrap();
        buf.push_trajectory(&traj()).unwrap();
        let draw = |seed| {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            buf.sample(64, &mut rng, &Device::Cpu)
                .unwrap()
                .act
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
        };
        assert_eq!(draw(1), draw(1));
        assert_ne!(draw(1), draw(2));
        for a in [1.0, 2.0, 3.0] {
            assert!(draw(1).contains(&a));
        }
        assert!(ReplayBuffer::new(3, 1, 1)
            .unwrap()
            .sample(
                1,
                &mut rand_chacha::ChaCha8Rng::seed_from_u64(0),
                &Device::Cpu
            )
            .is_err());
    }

    #[test]
    fn save_and_load_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("buffer.safetensors");
        let mut buf = ReplayBuffer::new(2, 2, 1).unwrap();
        buf.push_trajectory(&traj()).unwrap();
        buf.save(&path).unwrap();
        let loaded = ReplayBuffer::load(&path).unwrap();
        assert_eq!(loaded.capacity(), 2);
        let (a, b) = (
            buf.all(&Device::Cpu).unwrap(),
            loaded.all(&Device::Cpu).unwrap(),
        );
        assert_eq!(
            a.obs.to_vec2::<f32>().unwrap(),
            b.obs.to_vec2::<f32>().unwrap()
        );
        assert_eq!(
            a.reward.to_vec1::<f32>().unwrap(),
            b.reward.to_vec1::<f32>().unwrap()
        );
        assert!(ReplayBuffer::load(&dir.path().join("missing")).is_err());
    }
}
