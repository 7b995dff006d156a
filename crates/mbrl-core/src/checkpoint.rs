//! Checkpoints: named tensors in safetensors plus a small JSON metadata file.
//!
//! A checkpoint of iteration `i` is `checkpoints/ckpt-<i>.safetensors` (zero-padded to 6
//! digits) with `ckpt-<i>.json` beside it, holding the algorithm, iteration, real env steps,
//! the hash of the configuration that produced it, and algorithm state that is not a tensor
//! (RNG positions, counters). Both files are written to temporary names and renamed, so an
//! interrupted save never replaces the last good checkpoint. Loading checks the algorithm and
//! the configuration hash and says what differs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Metadata stored beside a checkpoint's tensors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    /// Registry name of the algorithm.
    pub algorithm: String,
    /// Completed training iterations.
    pub iteration: u64,
    /// Cumulative real environment steps.
    pub env_steps: u64,
    /// [`config_hash`] of the configuration of the run.
    pub config_hash: String,
    /// Algorithm state that is not a tensor.
    pub state: serde_json::Value,
}

/// A stable 64-bit FNV-1a hash (hex) of a JSON value's canonical text (sorted keys).
pub fn config_hash(value: &serde_json::Value) -> String {
    let text = value.to_string();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= byte as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// An algorithm's non-tensor state as the JSON stored in [`CheckpointMeta::state`].
pub fn state_to_json<T: Serialize>(state: &T) -> Result<serde_json::Value> {
    serde_json::to_value(state)
        .map_err(|e| Error::InvalidArgument(format!("checkpoint state: {e}")))
}

/// Reads back what [`state_to_json`] stored; a mismatch (e.g. a checkpoint of another version)
/// is an error that says which field.
pub fn state_from_json<T: DeserializeOwned>(state: serde_json::Value) -> Result<T> {
    serde_json::from_value(state)
        .map_err(|e| Error::InvalidArgument(format!("checkpoint state: {e}")))
}

fn stem(iteration: u64) -> String {
    format!("ckpt-{iteration:06}")
}

/// Writes `path` through `write` on a temporary name, then renames it into place, so an
/// interrupted write never replaces the old file.
pub(crate) fn write_atomically(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let tmp = path.with_extension("tmp");
    write(&tmp)?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// Saves tensors and metadata into `dir` (created if needed), keeping only the newest
/// `keep_last` checkpoints. Returns the metadata file's path.
pub fn save_checkpoint(
    dir: &Path,
    tensors: &HashMap<String, Tensor>,
    meta: &CheckpointMeta,
    keep_last: usize,
) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let base = dir.join(stem(meta.iteration));
    let tensor_path = base.with_extension("safetensors");
    write_atomically(&tensor_path, |tmp| {
        candle_core::safetensors::save(tensors, tmp).map_err(|e| Error::Malformed {
            path: tmp.to_path_buf(),
            reason: e.to_string(),
        })
    })?;
    let meta_path = base.with_extension("json");
    write_atomically(&meta_path, |tmp| {
        let text = serde_json::to_string_pretty(meta).expect("metadata serialises");
        std::fs::write(tmp, text).map_err(|e| Error::io(tmp, e))
    })?;
    let all = list_checkpoints(dir)?;
    for old in all.iter().take(all.len().saturating_sub(keep_last.max(1))) {
        for ext in ["json", "safetensors"] {
            let path = old.with_extension(ext);
            std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
        }
    }
    Ok(meta_path)
}

/// Metadata files of complete checkpoints in `dir`, oldest first.
pub fn list_checkpoints(dir: &Path) -> Result<Vec<PathBuf>> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|e| e == "json")
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("ckpt-"))
                && p.with_extension("safetensors").exists()
        })
        .collect();
    found.sort();
    Ok(found)
}

/// The newest complete checkpoint in `dir`, if any.
pub fn latest_checkpoint(dir: &Path) -> Result<Option<PathBuf>> {
    Ok(list_checkpoints(dir)?.pop())
}

/// Loads a checkpoint, checking that it was written by `algorithm` under a configuration with
/// hash `config_hash`.
pub fn load_checkpoint(
    meta_path: &Path,
    algorithm: &str,
    config_hash: &str,
) -> Result<(CheckpointMeta, HashMap<String, Tensor>)> {
    let text = std::fs::read_to_string(meta_path).map_err(|e| Error::io(meta_path, e))?;
    let meta: CheckpointMeta = serde_json::from_str(&text).map_err(|e| Error::Malformed {
        path: meta_path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let mismatch = |reason: String| Error::CheckpointMismatch {
        path: meta_path.to_path_buf(),
        reason,
    };
    if meta.algorithm != algorithm {
        return Err(mismatch(format!(
            "it was written by algorithm `{}`, this run uses `{algorithm}`",
            meta.algorithm
        )));
    }
    if meta.config_hash != config_hash {
        return Err(mismatch(format!(
            "its configuration hash is {}, this configuration's is {config_hash}; \
             the config was edited after the checkpoint was written",
            meta.config_hash
        )));
    }
    let tensor_path = meta_path.with_extension("safetensors");
    let tensors = candle_core::safetensors::load(&tensor_path, &Device::Cpu).map_err(|e| {
        Error::Malformed {
            path: tensor_path.clone(),
            reason: e.to_string(),
        }
    })?;
    Ok((meta, tensors))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(iteration: u64, hash: &str) -> CheckpointMeta {
        CheckpointMeta {
            algorithm: "random".into(),
            iteration,
            env_steps: iteration * 10,
            config_hash: hash.into(),
            state: serde_json::json!({"counter": iteration}),
        }
    }

    fn tensors() -> HashMap<String, Tensor> {
        HashMap::from([(
            "policy.w".to_string(),
            Tensor::new(&[[1.0f32, 2.0], [3.0, 4.0]], &Device::Cpu).unwrap(),
        )])
    }

    #[test]
    fn round_trip_restores_tensors_and_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let path = save_checkpoint(dir.path(), &tensors(), &meta(3, "abc"), 5).unwrap();
        let (m, t) = load_checkpoint(&path, "random", "abc").unwrap();
        assert_eq!(m, meta(3, "abc"));
        assert_eq!(
            t["policy.w"].to_vec2::<f32>().unwrap(),
            vec![vec![1.0, 2.0], vec![3.0, 4.0]]
        );
    }

    #[test]
    fn mismatched_config_or_algorithm_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = save_checkpoint(dir.path(), &tensors(), &meta(1, "abc"), 5).unwrap();
        let err = load_checkpoint(&path, "random", "def")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("configuration hash is abc") && err.contains("def"),
            "{err}"
        );
        let err = load_checkpoint(&path, "me-trpo", "abc")
            .unwrap_err()
            .to_string();
        assert!(err.contains("algorithm `random`"), "{err}");
    }

    #[test]
    fn keeps_only_the_newest_and_finds_the_latest() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(latest_checkpoint(dir.path()).unwrap(), None);
        for i in [1, 2, 10, 11] {
            save_checkpoint(dir.path(), &tensors(), &meta(i, "h"), 2).unwrap();
        }
        let all = list_checkpoints(dir.path()).unwrap();
        assert_eq!(all.len(), 2);
        let latest = latest_checkpoint(dir.path()).unwrap().unwrap();
        assert!(latest.ends_with("ckpt-000011.json"));
        let empty = save_checkpoint(dir.path(), &HashMap::new(), &meta(12, "h"), 2).unwrap();
        assert!(load_checkpoint(&empty, "random", "h").unwrap().1.is_empty());
    }

    #[test]
    fn config_hash_is_stable_and_sensitive() {
        let a = serde_json::json!({"b": 1, "a": [1, 2]});
        let b = serde_json::json!({"a": [1, 2], "b": 1});
        assert_eq!(config_hash(&a), config_hash(&b));
        assert_ne!(
            config_hash(&a),
            config_hash(&serde_json::json!({"a": [1, 2], "b": 2}))
        );
    }
}
