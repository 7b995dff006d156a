//! Run configuration files: the schema, strict parsing, `--set` overrides, validation.
//!
//! A config is TOML with `algo`, `seed`, an `[env]` table, a `[run]` table and one table per
//! component (`[random]`, ...). Parsing is strict: an unknown key, a wrong type, or an unknown
//! env, task family or algorithm is a [`ConfigError`] naming the file, the key path, what was
//! expected, and the valid choices.

use std::fmt;
use std::path::Path;

use mbrl_adapt::config::AdaptConfig;
use mbrl_async::config::{AsyncConfig, InterleavedConfig};
use mbrl_core::runner::RunConfig;
use mbrl_envs::registry::{check_task_family, registry as env_registry};
use mbrl_envs::EnvConfig;
use mbrl_maac::actor::ActorConfig;
use mbrl_maac::agent::SacConfig;
use mbrl_maac::config::{ImaginationConfig, MaacConfig, OffPolicyConfig};
use mbrl_meta::mb_mpo::MbMpoConfig;
use mbrl_meta::trainer::MetaConfig;
use mbrl_models::EnsembleConfig;
use mbrl_policy_opt::advantages::AdvantageConfig;
use mbrl_policy_opt::gaussian_mlp::PolicyConfig;
use mbrl_policy_opt::me_trpo::MeTrpoConfig;
use mbrl_policy_opt::model_free::ModelFreeConfig;
use mbrl_policy_opt::ppo::PpoConfig;
use mbrl_policy_opt::random_baseline::RandomConfig;
use mbrl_policy_opt::trpo::TrpoConfig;
use mbrl_policy_opt::vanilla::BpttConfig;
use serde::{Deserialize, Serialize};

use crate::algorithms;

/// The embedded default experiment: this crate's `default.toml`, which the repository's
/// `configs/default.toml` links to.
pub const DEFAULT_CONFIG: &str = include_str!("../default.toml");
/// How the embedded default is named in messages.
pub const DEFAULT_CONFIG_LABEL: &str = "<embedded default.toml>";

/// A whole run configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    /// Algorithm to train (`mbrl-cli algos` lists them). Required.
    pub algo: String,
    /// Run seed; every random stream derives from it. Default 0.
    #[serde(default)]
    pub seed: u64,
    /// The environment.
    #[serde(default)]
    pub env: EnvConfig,
    /// Run length, evaluation and checkpoint schedule.
    #[serde(default)]
    pub run: RunConfig,
    /// The random baseline.
    #[serde(default)]
    pub random: RandomConfig,
    /// The Gaussian MLP policy of the policy-gradient algorithms.
    #[serde(default)]
    pub policy: PolicyConfig,
    /// Discounting and advantage estimation.
    #[serde(default)]
    pub advantage: AdvantageConfig,
    /// TRPO's trust region.
    #[serde(default)]
    pub trpo: TrpoConfig,
    /// PPO's optimiser.
    #[serde(default)]
    pub ppo: PpoConfig,
    /// Real-data collection of the model-free trainers.
    #[serde(default)]
    pub model_free: ModelFreeConfig,
    /// The dynamics-model ensemble of the model-based algorithms.
    #[serde(default)]
    pub model: EnsembleConfig,
    /// ME-TRPO (thesis Ch. 4).
    #[serde(default)]
    pub me_trpo: MeTrpoConfig,
    /// Vanilla model-based RL with BPTT (thesis Ch. 2.2).
    #[serde(default)]
    pub bptt: BpttConfig,
    /// Gradient-based meta-RL: ProMP, MAML-TRPO, MAML-VPG (thesis Ch. 6).
    #[serde(default)]
    pub meta: MetaConfig,
    /// MB-MPO (thesis Ch. 5).
    #[serde(default)]
    pub mb_mpo: MbMpoConfig,
    /// The squashed Gaussian actor of SAC, MBPO and MAAC.
    #[serde(default)]
    pub actor: ActorConfig,
    /// The soft actor-critic learner (SAC, MBPO, MAAC).
    #[serde(default)]
    pub sac: SacConfig,
    /// Real data and update frequency of SAC, MBPO and MAAC.
    #[serde(default)]
    pub off_policy: OffPolicyConfig,
    /// The model's imagined data (MBPO, MAAC).
    #[serde(default)]
    pub imagination: ImaginationConfig,
    /// MAAC's objective and critic targets (thesis Ch. 7).
    #[serde(default)]
    pub maac: MaacConfig,
    /// GrBAL, MB and MB+DE: online-adaptive models with MPC (thesis Ch. 9).
    #[serde(default)]
    pub adapt: AdaptConfig,
    /// Asynchronous ME-TRPO and ME-PPO: worker pacing and reports (thesis Ch. 8).
    #[serde(default, rename = "async")]
    pub asynchronous: AsyncConfig,
    /// The partially-asynchronous ME-TRPO variants (thesis Sec. 8.4.2-8.4.3).
    #[serde(default)]
    pub interleaved: InterleavedConfig,
}

impl ExperimentConfig {
    /// The configuration as JSON (what algorithms are built from).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// Hash of everything that determines training; `[run]` is left out so a finished run can
    /// be resumed with more iterations.
    pub fn training_hash(&self) -> String {
        let mut json = self.to_json();
        if let Some(map) = json.as_object_mut() {
            map.remove("run");
        }
        mbrl_core::checkpoint::config_hash(&json)
    }

    /// The resolved configuration as TOML (written to each run directory).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }
}

/// A configuration problem, reported with the file and the key.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    /// The file (or the embedded default's label).
    pub file: String,
    /// The key path, e.g. `env.name`; `None` for syntax errors.
    pub key: Option<String>,
    /// What is wrong and what is expected.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(key) => write!(f, "{}: key `{}`: {}", self.file, key, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Reads and validates a config file (or the embedded default when `path` is `None`), after
/// applying `key.path=value` overrides.
pub fn load(path: Option<&Path>, overrides: &[String]) -> Result<ExperimentConfig, ConfigError> {
    let (label, text) = match path {
        Some(p) => {
            let label = p.display().to_string();
            let text = std::fs::read_to_string(p).map_err(|e| ConfigError {
                file: label.clone(),
                key: None,
                message: format!("cannot read the file: {e}"),
            })?;
            (label, text)
        }
        None => (DEFAULT_CONFIG_LABEL.to_string(), DEFAULT_CONFIG.to_string()),
    };
    parse(&label, &text, overrides)
}

/// Parses and validates config text; `label` names it in errors.
pub fn parse(
    label: &str,
    text: &str,
    overrides: &[String],
) -> Result<ExperimentConfig, ConfigError> {
    let error = |key: Option<String>, message: String| ConfigError {
        file: label.to_string(),
        key,
        message,
    };
    let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        error(None, format!("invalid TOML: {}", e.to_string().trim()))
    })?;
    for item in overrides {
        apply_override(&mut table, item).map_err(|(key, message)| ConfigError {
            file: format!("{label} (--set {item})"),
            key: Some(key),
            message,
        })?;
    }
    let config: ExperimentConfig = serde_path_to_error::deserialize(toml::Value::Table(table))
        .map_err(|e| {
            let path = e.path().to_string();
            let message = strip_location(&e.into_inner().to_string());
            match overrides
                .iter()
                .find(|o| o.split('=').next().map(str::trim) == Some(path.as_str()))
            {
                Some(item) => ConfigError {
                    file: format!("{label} (--set {item})"),
                    key: Some(path),
                    message,
                },
                None => error((path != ".").then_some(path), message),
            }
        })?;
    validate(&config).map_err(|(key, message)| error(Some(key), message))?;
    Ok(config)
}

/// Drops the ``in `key` `` trailer toml adds to messages (the key is reported separately).
fn strip_location(message: &str) -> String {
    message
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("in `"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Sets `a.b.c` to `value` (parsed as a TOML value; bare words become strings).
fn apply_override(table: &mut toml::Table, item: &str) -> Result<(), (String, String)> {
    let (path, raw) = item.split_once('=').ok_or_else(|| {
        (
            item.to_string(),
            "expected KEY.PATH=VALUE, e.g. --set run.iterations=5".to_string(),
        )
    })?;
    let path = path.trim();
    let value = format!("v = {}", raw.trim())
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.trim().to_string()));
    let keys: Vec<&str> = path.split('.').collect();
    if keys.iter().any(|k| k.is_empty()) {
        return Err((path.to_string(), "empty key segment".to_string()));
    }
    let (last, parents) = keys.split_last().expect("split yields at least one key");
    let mut current = table;
    for (i, key) in parents.iter().enumerate() {
        let entry = current
            .entry(key.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = entry
            .as_table_mut()
            .ok_or_else(|| (keys[..=i].join("."), "is a value, not a table".to_string()))?;
    }
    current.insert(last.to_string(), value);
    Ok(())
}

/// Checks names against the registries and values against their ranges.
pub fn validate(config: &ExperimentConfig) -> Result<(), (String, String)> {
    let algo_names: Vec<&str> = algorithms::registry().iter().map(|a| a.name).collect();
    if !algo_names.contains(&config.algo.as_str()) {
        return Err((
            "algo".into(),
            format!(
                "unknown algorithm `{}`; valid algorithms: {}",
                config.algo,
                algo_names.join(", ")
            ),
        ));
    }
    let env = env_registry()
        .iter()
        .find(|e| e.name == config.env.name)
        .ok_or_else(|| {
            let names: Vec<&str> = env_registry().iter().map(|e| e.name).collect();
            (
                "env.name".to_string(),
                format!(
                    "unknown env `{}`; valid envs: {}",
                    config.env.name,
                    names.join(", ")
                ),
            )
        })?;
    check_task_family(env, config.env.task_family.as_deref())
        .map_err(|e| ("env.task_family".to_string(), e.to_string()))?;
    let positive = [
        (
            "env.max_episode_steps",
            config.env.max_episode_steps.unwrap_or(1) as u64,
        ),
        ("run.iterations", config.run.iterations),
        ("run.eval_episodes", config.run.eval_episodes as u64),
        ("run.keep_checkpoints", config.run.keep_checkpoints as u64),
        (
            "random.steps_per_iteration",
            config.random.steps_per_iteration as u64,
        ),
        ("random.num_envs", config.random.num_envs as u64),
        (
            "model_free.steps_per_iteration",
            config.model_free.steps_per_iteration as u64,
        ),
        ("model_free.num_envs", config.model_free.num_envs as u64),
        ("ppo.epochs", config.ppo.epochs as u64),
        ("ppo.num_minibatches", config.ppo.num_minibatches as u64),
    ];
    for (key, value) in positive {
        if value == 0 {
            return Err((key.to_string(), "must be at least 1".to_string()));
        }
    }
    let in_unit_interval = [
        ("advantage.gamma", config.advantage.gamma),
        ("advantage.gae_lambda", config.advantage.gae_lambda),
        ("trpo.backtrack_ratio", config.trpo.backtrack_ratio),
        ("trpo.fvp_subsample", config.trpo.fvp_subsample),
    ];
    for (key, value) in in_unit_interval {
        if !(0.0..=1.0).contains(&value) {
            return Err((key.to_string(), format!("must be in [0, 1], got {value}")));
        }
    }
    let positive_reals = [
        ("trpo.max_kl", config.trpo.max_kl),
        ("trpo.fvp_subsample", config.trpo.fvp_subsample),
        ("ppo.clip", config.ppo.clip),
        ("ppo.learning_rate", config.ppo.learning_rate),
    ];
    for (key, value) in positive_reals {
        if !(value > 0.0 && value.is_finite()) {
            return Err((
                key.to_string(),
                format!("must be a positive number, got {value}"),
            ));
        }
    }
    config
        .model
        .validate()
        .map_err(|e| ("model".to_string(), e.to_string()))?;
    let me = &config.me_trpo;
    let positive_me = [
        ("me_trpo.steps_per_iteration", me.steps_per_iteration),
        ("me_trpo.imagined_rollouts", me.imagined_rollouts),
        ("me_trpo.validate_every", me.validate_every),
        ("me_trpo.validation_rollouts", me.validation_rollouts),
        ("me_trpo.max_policy_iterations", me.max_policy_iterations),
        ("me_trpo.buffer_capacity", me.buffer_capacity),
    ];
    for (key, value) in positive_me {
        if value == 0 {
            return Err((key.to_string(), "must be at least 1".to_string()));
        }
    }
    let bptt = &config.bptt;
    for (key, value) in [
        ("bptt.steps_per_iteration", bptt.steps_per_iteration),
        ("bptt.imagined_rollouts", bptt.imagined_rollouts),
        ("bptt.evaluate_every", bptt.evaluate_every),
        ("bptt.evaluation_rollouts", bptt.evaluation_rollouts),
        ("bptt.buffer_capacity", bptt.buffer_capacity),
    ] {
        if value == 0 {
            return Err((key.to_string(), "must be at least 1".to_string()));
        }
    }
    if !(0.0..1.0).contains(&bptt.validation_share) {
        return Err((
            "bptt.validation_share".into(),
            format!("must be in [0, 1), got {}", bptt.validation_share),
        ));
    }
    if !(0.0..1.0).contains(&me.validation_share) {
        return Err((
            "me_trpo.validation_share".into(),
            format!("must be in [0, 1), got {}", me.validation_share),
        ));
    }
    config.meta.validate().map_err(|e| {
        let message = e.to_string();
        let key = message
            .split_whitespace()
            .find(|w| w.starts_with("meta."))
            .unwrap_or("meta")
            .to_string();
        (key, message)
    })?;
    config.mb_mpo.validate().map_err(|e| {
        let message = e.to_string();
        let key = message
            .split_whitespace()
            .find(|w| w.starts_with("mb_mpo."))
            .unwrap_or("mb_mpo")
            .to_string();
        (key, message)
    })?;
    for check in [
        config.actor.validate(),
        config.sac.validate(),
        config.off_policy.validate(),
        config.imagination.validate(),
        config.maac.validate(),
        config.adapt.validate(),
        config.asynchronous.validate(),
        config.interleaved.validate(),
    ] {
        check.map_err(|e| {
            let message = e.to_string();
            let key = message
                .split_whitespace()
                .find(|w| {
                    [
                        "actor.",
                        "sac.",
                        "off_policy.",
                        "imagination.",
                        "maac.",
                        "adapt.",
                        "async.",
                        "interleaved.",
                    ]
                    .iter()
                    .any(|t| w.starts_with(t))
                })
                .unwrap_or("config")
                .trim_end_matches(|c: char| !c.is_alphanumeric() && c != '_')
                .to_string();
            (key, message)
        })?;
    }
    if config.policy.hidden_sizes.contains(&0) {
        return Err((
            "policy.hidden_sizes".into(),
            "layer widths must be at least 1".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str, overrides: &[&str]) -> String {
        let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        parse("test.toml", text, &overrides)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn the_embedded_default_is_valid_and_round_trips() {
        let config = load(None, &[]).unwrap();
        let again = parse("resolved", &config.to_toml(), &[]).unwrap();
        assert_eq!(config, again);
    }

    /// Optional keys (unset by default) are left out of the resolved TOML, and come back when
    /// set.
    #[test]
    fn an_optional_key_round_trips_set_and_unset() {
        let unset = load(None, &[]).unwrap();
        assert!(!unset.to_toml().contains("redis_tls_ca_file"));
        let overrides = [
            "async.redis_url=\"rediss://127.0.0.1:6380\"".to_string(),
            "async.redis_tls_ca_file=\"/etc/ca.pem\"".to_string(),
        ];
        let set = load(None, &overrides).unwrap();
        let text = set.to_toml();
        assert!(
            text.contains("redis_tls_ca_file = \"/etc/ca.pem\""),
            "{text}"
        );
        assert_eq!(parse("resolved", &text, &[]).unwrap(), set);
    }

    #[test]
    fn defaults_fill_missing_tables() {
        let config = parse("t", "algo = \"random\"", &[]).unwrap();
        assert_eq!(config.run, RunConfig::default());
        assert_eq!(config.env, EnvConfig::default());
    }

    #[test]
    fn errors_name_the_file_key_and_expectation() {
        assert_eq!(
            err("algo = \"random\"\n[run]\niteratons = 3", &[]),
            "test.toml: key `run.iteratons`: unknown field `iteratons`, expected one of \
             `iterations`, `eval_every`, `eval_episodes`, `checkpoint_every`, `keep_checkpoints`"
        );
        assert_eq!(
            err("algo = \"random\"\nseed = \"x\"", &[]),
            "test.toml: key `seed`: invalid type: string \"x\", expected u64"
        );
        assert!(err("algo = \"random\"\n[env]\nname = \"nope\"", &[])
            .starts_with("test.toml: key `env.name`: unknown env `nope`; valid envs: point2d"));
        assert!(err("algo = \"nope\"", &[]).contains(
            "key `algo`: unknown algorithm `nope`; valid algorithms: random, trpo, ppo, me-trpo, mb-bptt"
        ));
        assert!(err("seed = 1", &[]).contains("missing field `algo`"));
        assert!(err("algo = \"random\"\n[sacc]\nx = 1", &[]).contains("unknown field `sacc`"));
        assert!(
            err("algo = \"random\"\n[sac]\nx = 1", &[]).contains("key `sac.x`: unknown field `x`")
        );
        assert!(err("algo = \"random\"\n[trpo]\nx = 1", &[])
            .contains("key `trpo.x`: unknown field `x`"));
        assert!(err("algo = [", &[]).contains("invalid TOML"));
        assert!(err("algo = \"random\"\n[run]\niterations = 0", &[])
            .contains("key `run.iterations`: must be at least 1"));
        assert!(err("algo = \"random\"\n[env]\ntask_family = \"x\"", &[])
            .contains("key `env.task_family`"));
    }

    #[test]
    fn overrides_apply_and_their_errors_name_the_override() {
        let config = parse(
            "t",
            "algo = \"random\"",
            &["run.iterations=7".into(), "env.name=point2d".into()],
        )
        .unwrap();
        assert_eq!(config.run.iterations, 7);
        let e = err("algo = \"random\"", &["run.iterations=abc"]);
        assert_eq!(e, "test.toml (--set run.iterations=abc): key `run.iterations`: invalid type: string \"abc\", expected u64");
        assert!(err("algo = \"random\"", &["run.iterations"]).contains("expected KEY.PATH=VALUE"));
        assert!(err("algo = \"random\"\nseed = 1", &["seed.x=1"])
            .contains("key `seed`: is a value, not a table"));
    }

    #[test]
    fn training_hash_ignores_the_run_table_only() {
        let a = parse("t", "algo = \"random\"", &[]).unwrap();
        let b = parse("t", "algo = \"random\"", &["run.iterations=99".into()]).unwrap();
        let c = parse("t", "algo = \"random\"", &["seed=1".into()]).unwrap();
        assert_eq!(a.training_hash(), b.training_hash());
        assert_ne!(a.training_hash(), c.training_hash());
    }
}
