//! The wire format between workers: parameter sets and rollouts as safetensors bytes, the
//! format of checkpoints, so a blob is self-describing (names, shapes, dtypes) and a
//! mismatch is caught when it is read.

use std::collections::HashMap;

use candle_core::{Device, Tensor};
use mbrl_core::data::Trajectory;
use mbrl_core::{Error, Result};

/// Named tensors as bytes.
pub fn encode_tensors(tensors: &HashMap<String, Tensor>) -> Result<Vec<u8>> {
    let mut entries: Vec<(&String, &Tensor)> = tensors.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    safetensors::serialize(entries, None)
        .map_err(|e| Error::InvalidArgument(format!("cannot encode tensors: {e}")))
}

/// What [`encode_tensors`] wrote; `what` names the blob in the error when the bytes are not
/// safetensors.
pub fn decode_tensors(bytes: &[u8], what: &str) -> Result<HashMap<String, Tensor>> {
    candle_core::safetensors::load_buffer(bytes, &Device::Cpu)
        .map_err(|e| Error::InvalidArgument(format!("{what} is not a safetensors blob: {e}")))
}

/// A real rollout as a data worker pushes it.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutRecord {
    /// The transitions.
    pub trajectory: Trajectory,
    /// Version of the policy that acted (0: the initial random actions).
    pub policy_version: u64,
    /// Index of the data worker that collected it.
    pub worker: u64,
}

impl RolloutRecord {
    /// The record as bytes.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let t = &self.trajectory;
        let n = t.len();
        let flags = [t.terminated as u32, t.truncated as u32];
        let ids = [self.policy_version as i64, self.worker as i64];
        let tensors: HashMap<String, Tensor> = [
            (
                "observations",
                Tensor::from_slice(&t.observations, (n, t.obs_dim), &Device::Cpu)?,
            ),
            (
                "actions",
                Tensor::from_slice(&t.actions, (n, t.act_dim), &Device::Cpu)?,
            ),
            ("rewards", Tensor::from_slice(&t.rewards, n, &Device::Cpu)?),
            (
                "final_observation",
                Tensor::from_slice(&t.final_observation, t.obs_dim, &Device::Cpu)?,
            ),
            ("flags", Tensor::from_slice(&flags, 2, &Device::Cpu)?),
            ("ids", Tensor::from_slice(&ids, 2, &Device::Cpu)?),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        encode_tensors(&tensors)
    }

    /// What [`RolloutRecord::encode`] wrote.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        Self::from_tensors(&decode_tensors(bytes, "a rollout record")?)
    }

    /// The record from its decoded tensors.
    fn from_tensors(tensors: &HashMap<String, Tensor>) -> Result<Self> {
        let get = |name: &str| {
            tensors.get(name).ok_or_else(|| {
                Error::InvalidArgument(format!("a rollout record lacks its `{name}` tensor"))
            })
        };
        let observations = get("observations")?;
        let (n, obs_dim) = observations.dims2()?;
        let actions = get("actions")?;
        let act_dim = actions.dim(1)?;
        let flags: Vec<u32> = get("flags")?.to_vec1()?;
        let ids: Vec<i64> = get("ids")?.to_vec1()?;
        let rewards: Vec<f64> = get("rewards")?.to_vec1()?;
        let final_observation: Vec<f32> = get("final_observation")?.to_vec1()?;
        if actions.dim(0)? != n
            || rewards.len() != n
            || final_observation.len() != obs_dim
            || flags.len() != 2
            || ids.len() != 2
        {
            return Err(Error::InvalidArgument(format!(
                "a rollout record's tensors disagree: {n} observations of width {obs_dim}, {} \
                 actions, {} rewards, a final observation of width {}",
                actions.dim(0)?,
                rewards.len(),
                final_observation.len()
            )));
        }
        Ok(Self {
            trajectory: Trajectory {
                obs_dim,
                act_dim,
                observations: observations.flatten_all()?.to_vec1()?,
                actions: actions.flatten_all()?.to_vec1()?,
                rewards,
                final_observation,
                terminated: flags[0] != 0,
                truncated: flags[1] != 0,
            },
            policy_version: ids[0] as u64,
            worker: ids[1] as u64,
        })
    }
}

/// The tensor that marks a data snapshot among the stream's entries.
const SNAPSHOT_MARK: &str = "data_snapshot";

/// An entry of the rollout stream: a rollout, or a snapshot of the real-data buffers that a
/// resumed run pushes first (`ModelData::named_tensors`), so the model worker starts from the
/// checkpoint's data.
#[derive(Debug, Clone)]
pub enum StreamEntry {
    /// One real rollout.
    Rollout(RolloutRecord),
    /// The training and validation buffers, to replace the reader's.
    Snapshot(HashMap<String, Tensor>),
}

impl StreamEntry {
    /// A snapshot entry of the buffers' named tensors, as bytes.
    pub fn encode_snapshot(buffers: &HashMap<String, Tensor>) -> Result<Vec<u8>> {
        let mut tensors = buffers.clone();
        tensors.insert(SNAPSHOT_MARK.into(), Tensor::new(&[1u32], &Device::Cpu)?);
        encode_tensors(&tensors)
    }

    /// A stream entry from its bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut tensors = decode_tensors(bytes, "a rollout stream entry")?;
        if tensors.remove(SNAPSHOT_MARK).is_some() {
            return Ok(Self::Snapshot(tensors));
        }
        Ok(Self::Rollout(RolloutRecord::from_tensors(&tensors)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trajectory() -> Trajectory {
        let mut t = Trajectory::new(vec![0.5, -1.0], 1);
        for i in 0..3 {
            t.push(&[i as f32], 0.25 * i as f64, vec![i as f32, 2.0])
                .unwrap();
        }
        t.truncated = true;
        t
    }

    #[test]
    fn rollout_records_round_trip_exactly() {
        let record = RolloutRecord {
            trajectory: trajectory(),
            policy_version: 42,
            worker: 3,
        };
        let back = RolloutRecord::decode(&record.encode().unwrap()).unwrap();
        assert_eq!(back, record);
        match StreamEntry::decode(&record.encode().unwrap()).unwrap() {
            StreamEntry::Rollout(r) => assert_eq!(r, record),
            StreamEntry::Snapshot(_) => panic!("a rollout decoded as a snapshot"),
        }
        let buffers: HashMap<String, Tensor> = [(
            "train_buffer.obs".to_string(),
            Tensor::new(&[1f32, 2.0], &Device::Cpu).unwrap(),
        )]
        .into_iter()
        .collect();
        match StreamEntry::decode(&StreamEntry::encode_snapshot(&buffers).unwrap()).unwrap() {
            StreamEntry::Snapshot(t) => {
                assert_eq!(t.len(), 1);
                assert_eq!(
                    t["train_buffer.obs"].to_vec1::<f32>().unwrap(),
                    vec![1.0, 2.0]
                );
            }
            StreamEntry::Rollout(_) => panic!("a snapshot decoded as a rollout"),
        }
    }

    #[test]
    fn tensors_round_trip_and_garbage_is_named() {
        let tensors: HashMap<String, Tensor> = [(
            "w".to_string(),
            Tensor::new(&[[1f32, 2.0], [3.0, 4.0]], &Device::Cpu).unwrap(),
        )]
        .into_iter()
        .collect();
        let back = decode_tensors(&encode_tensors(&tensors).unwrap(), "model").unwrap();
        assert_eq!(
            back["w"].to_vec2::<f32>().unwrap(),
            vec![vec![1.0, 2.0], vec![3.0, 4.0]]
        );
        let err = decode_tensors(b"not a blob", "the model blob").unwrap_err();
        assert!(err.to_string().contains("the model blob"), "{err}");
        assert!(RolloutRecord::decode(&encode_tensors(&tensors).unwrap()).is_err());
    }
}
