//! The `[async]` table: how the asynchronous workers pace themselves and report.

use std::path::PathBuf;

use mbrl_core::{Error, Result};
use serde::{Deserialize, Serialize};

use crate::redis_tls::TlsFiles;

/// Where the servers live and the workers run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// In memory; the workers are threads of `mbrl-cli train`.
    Threads,
    /// In a Redis server; `mbrl-cli train` coordinates and each worker is an `mbrl-cli
    /// worker` process, on this machine or another.
    Redis,
}

/// The `[async]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AsyncConfig {
    /// `threads` (default) or `redis`.
    pub backend: Backend,
    /// The Redis server (`redis` backend), credentials included:
    /// `redis://user:password@host:port/db`. Default `redis://127.0.0.1:6379`.
    pub redis_url: String,
    /// PEM file of the certificate authority that signed a `rediss://` server's certificate
    /// (a private CA). Default none: the web PKI's public roots.
    pub redis_tls_ca_file: Option<PathBuf>,
    /// PEM file of this process's client certificate, for a `rediss://` server that checks
    /// its clients (redis-server's default with TLS); with `redis_tls_key_file`. Default none.
    pub redis_tls_cert_file: Option<PathBuf>,
    /// PEM file of the client certificate's key. Default none.
    pub redis_tls_key_file: Option<PathBuf>,
    /// Namespace of the run's keys in Redis; the coordinator and its workers must agree.
    /// Default `mbrl`.
    pub run_id: String,
    /// How long a lost Redis connection is retried (exponential backoff) before the worker or
    /// the coordinator stops with an error naming the server. Default 30.
    pub reconnect_seconds: f64,
    /// The coordinator stops with an error when no rollout arrived for this long (are the data
    /// workers running?). Default 600.
    pub worker_timeout_seconds: f64,
    /// New real rollouts per run iteration: an iteration (a row of the metrics, an evaluation
    /// and checkpoint opportunity) ends when this many more rollouts have been pushed. The run
    /// stops after `run.iterations` of them. Default 1.
    pub rollouts_per_iteration: usize,
    /// Real rollouts of uniformly random actions before the data workers use the policy
    /// (the authors' initial random data). Default 1.
    pub initial_random_rollouts: usize,
    /// Data-collection workers (several robots feeding one run). Default 1.
    pub data_workers: usize,
    /// Simulated real time per environment step in seconds: a data worker sleeps until each
    /// rollout has lasted `steps * step_seconds * time_scale` (thesis Sec. 8.4: 0.05 s for
    /// half-cheetah). Default 0: as fast as the simulator.
    pub step_seconds: f64,
    /// Multiplier on `step_seconds` (Fig. 27b: 2.0 collects at half speed, 0.5 at twice).
    /// Default 1.
    pub time_scale: f64,
    /// Persistence `p` of the model worker's moving-average early stop,
    /// `avg = p * avg + (1 - p) * validation_loss`, reset when new data arrives. Default 0.99
    /// (the authors' code).
    pub moving_average_weight: f64,
    /// Capacity of the model worker's FIFO training and validation buffers. Default 1000000.
    pub buffer_capacity: usize,
    /// Share of every pushed rollout's transitions (its first steps) sent to the validation
    /// buffer. Default 1/3 (ME-TRPO's split).
    pub validation_share: f64,
}

impl Default for AsyncConfig {
    fn default() -> Self {
        Self {
            backend: Backend::Threads,
            redis_url: "redis://127.0.0.1:6379".into(),
            redis_tls_ca_file: None,
            redis_tls_cert_file: None,
            redis_tls_key_file: None,
            run_id: "mbrl".into(),
            reconnect_seconds: 30.0,
            worker_timeout_seconds: 600.0,
            rollouts_per_iteration: 1,
            initial_random_rollouts: 1,
            data_workers: 1,
            step_seconds: 0.0,
            time_scale: 1.0,
            moving_average_weight: 0.99,
            buffer_capacity: 1_000_000,
            validation_share: 1.0 / 3.0,
        }
    }
}

impl AsyncConfig {
    /// Checks every key and names the one out of range.
    pub fn validate(&self) -> Result<()> {
        let bad = |key: &str, expected: &str, got: String| {
            Err(Error::InvalidArgument(format!(
                "async.{key} must be {expected}, got {got}"
            )))
        };
        if self.rollouts_per_iteration == 0 {
            return bad("rollouts_per_iteration", "at least 1", "0".into());
        }
        if self.data_workers == 0 {
            return bad("data_workers", "at least 1", "0".into());
        }
        if !(self.step_seconds >= 0.0 && self.step_seconds.is_finite()) {
            return bad(
                "step_seconds",
                "a finite number >= 0",
                self.step_seconds.to_string(),
            );
        }
        if !(self.time_scale > 0.0 && self.time_scale.is_finite()) {
            return bad(
                "time_scale",
                "a finite number > 0",
                self.time_scale.to_string(),
            );
        }
        if !(0.0..1.0).contains(&self.moving_average_weight) {
            return bad(
                "moving_average_weight",
                "in [0, 1)",
                self.moving_average_weight.to_string(),
            );
        }
        for (key, value) in [
            ("reconnect_seconds", self.reconnect_seconds),
            ("worker_timeout_seconds", self.worker_timeout_seconds),
        ] {
            if !(value > 0.0 && value.is_finite()) {
                return bad(key, "a finite number > 0", value.to_string());
            }
        }
        if self.run_id.is_empty() || self.run_id.contains(char::is_whitespace) {
            return bad("run_id", "a non-empty word", format!("`{}`", self.run_id));
        }
        let tls = self.tls_files();
        if !tls.is_empty() && !self.redis_url.starts_with("rediss://") {
            return bad(
                "redis_url",
                "a rediss:// URL when async.redis_tls_* files are set",
                format!("`{}`", crate::redis_backend::masked(&self.redis_url)),
            );
        }
        if tls.client_cert.is_some() != tls.client_key.is_some() {
            return bad(
                "redis_tls_cert_file",
                "set together with async.redis_tls_key_file (both or neither)",
                "only one of them".into(),
            );
        }
        if self.buffer_capacity == 0 {
            return bad("buffer_capacity", "at least 1", "0".into());
        }
        if !(0.0..1.0).contains(&self.validation_share) {
            return bad(
                "validation_share",
                "in [0, 1)",
                self.validation_share.to_string(),
            );
        }
        Ok(())
    }

    /// The TLS files of a `rediss://` server.
    pub fn tls_files(&self) -> TlsFiles {
        TlsFiles {
            ca: self.redis_tls_ca_file.clone(),
            client_cert: self.redis_tls_cert_file.clone(),
            client_key: self.redis_tls_key_file.clone(),
        }
    }

    /// How long a lost Redis connection is retried.
    pub fn reconnect_patience(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.reconnect_seconds)
    }

    /// Seconds a rollout of `steps` steps must last in simulated real time.
    pub fn rollout_seconds(&self, steps: usize) -> f64 {
        steps as f64 * self.step_seconds * self.time_scale
    }
}

/// The `[interleaved]` table of the partially-asynchronous ME-TRPO variants (thesis Sec.
/// 8.4.2-8.4.3; defaults from the authors' code).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InterleavedConfig {
    /// `me-trpo-interleaved-model`: model epochs per round. Default 5.
    pub model_epochs: usize,
    /// Policy steps per round (`-model`) or per new rollout (`-data`). Default 10.
    pub policy_steps: usize,
    /// `me-trpo-interleaved-model`: rounds per iteration. Default 10.
    pub rounds: usize,
    /// `me-trpo-interleaved-data`: most model epochs of each iteration's fit (it ends earlier
    /// when every member's moving average rose). Default 200.
    pub max_model_epochs: usize,
}

impl Default for InterleavedConfig {
    fn default() -> Self {
        Self {
            model_epochs: 5,
            policy_steps: 10,
            rounds: 10,
            max_model_epochs: 200,
        }
    }
}

impl InterleavedConfig {
    /// Checks every key and names the one out of range.
    pub fn validate(&self) -> Result<()> {
        for (key, value) in [
            ("model_epochs", self.model_epochs),
            ("policy_steps", self.policy_steps),
            ("rounds", self.rounds),
            ("max_model_epochs", self.max_model_epochs),
        ] {
            if value == 0 {
                return Err(Error::InvalidArgument(format!(
                    "interleaved.{key} must be at least 1, got 0"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_keys_are_named() {
        assert!(AsyncConfig::default().validate().is_ok());
        let cases = [
            (
                AsyncConfig {
                    rollouts_per_iteration: 0,
                    ..AsyncConfig::default()
                },
                "async.rollouts_per_iteration",
            ),
            (
                AsyncConfig {
                    time_scale: 0.0,
                    ..AsyncConfig::default()
                },
                "async.time_scale",
            ),
            (
                AsyncConfig {
                    moving_average_weight: 1.0,
                    ..AsyncConfig::default()
                },
                "async.moving_average_weight",
            ),
            (
                AsyncConfig {
                    step_seconds: f64::NAN,
                    ..AsyncConfig::default()
                },
                "async.step_seconds",
            ),
            (
                AsyncConfig {
                    redis_tls_ca_file: Some("ca.pem".into()),
                    ..AsyncConfig::default()
                },
                "async.redis_url",
            ),
            (
                AsyncConfig {
                    redis_url: "rediss://127.0.0.1:6380".into(),
                    redis_tls_key_file: Some("client.key".into()),
                    ..AsyncConfig::default()
                },
                "async.redis_tls_cert_file",
            ),
        ];
        for (config, key) in cases {
            let message = config.validate().unwrap_err().to_string();
            assert!(message.contains(key), "{message}");
        }
    }

    #[test]
    fn rollout_time_scales_with_steps_and_time_scale() {
        let config = AsyncConfig {
            step_seconds: 0.05,
            time_scale: 2.0,
            ..AsyncConfig::default()
        };
        assert!((config.rollout_seconds(200) - 20.0).abs() < 1e-12);
    }
}
