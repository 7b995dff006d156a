//! What every worker of a run is built from (the run's config, env and model factories and
//! seed), and how each worker is built: shared by the coordinator, which starts them on
//! threads, and by `mbrl-cli worker`, which starts one in its own process.

use std::collections::HashMap;

use candle_core::Tensor;
use mbrl_core::algorithm::BuildContext;
use mbrl_core::env::EnvFactory;
use mbrl_core::model::{ModelFactory, TrainableModel};
use mbrl_core::rollout::DEFAULT_MAX_EPISODE_STEPS;
use mbrl_core::seeding::{stream_rng, Stream};
use mbrl_core::{Error, Result};
use mbrl_policy_opt::gaussian_mlp::GaussianMlpPolicy;
use mbrl_policy_opt::imagined_update::ImaginedUpdate;
use mbrl_policy_opt::me_trpo::{ImaginedOptimiser, Settings};
use mbrl_policy_opt::model_data::{real_start_states, ModelData};
use mbrl_policy_opt::model_free::table;
use rand_chacha::ChaCha8Rng;

use crate::config::AsyncConfig;
use crate::data_worker::DataWorker;
use crate::meta_improver::MetaImprover;
use crate::model_worker::ModelWorker;
use crate::policy_worker::{Imagination, Improver, PolicyWorker, TrpoImprover};
use crate::servers::Servers;

/// Observation and action widths.
pub type Dims = (usize, usize);

/// How the policy worker improves the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Improvement {
    /// ME-TRPO's imagined TRPO step (`[me_trpo]`, `[trpo]`).
    Trpo,
    /// ME-PPO's imagined PPO update (`[me_trpo]`, `[ppo]`).
    Ppo,
    /// One MB-MPO meta step (`[mb_mpo]`, `[trpo]`).
    MbMpo,
}

/// The settings tables of the policy step.
enum StepSettings {
    MeTrpo(Settings),
    MbMpo(mbrl_meta::mb_mpo::Settings),
}

/// The ingredients of a run's workers.
pub struct Recipe {
    env_factory: EnvFactory,
    model_factory: ModelFactory,
    seed: u64,
    settings: StepSettings,
    /// The `[async]` table.
    pub config: AsyncConfig,
    /// Observation and action widths of the run's environment.
    pub dims: Dims,
}

impl Recipe {
    /// The recipe of `algo` (for messages) improving its policy by `improvement`.
    pub fn new(ctx: &BuildContext, algo: &str, improvement: Improvement) -> Result<Self> {
        let config: AsyncConfig = table(&ctx.config, "async")?;
        config.validate()?;
        let settings = match improvement {
            Improvement::Trpo | Improvement::Ppo => {
                let mut settings = Settings {
                    me_trpo: table(&ctx.config, "me_trpo")?,
                    policy: table(&ctx.config, "policy")?,
                    advantage: table(&ctx.config, "advantage")?,
                    trpo: table(&ctx.config, "trpo")?,
                    ppo: table(&ctx.config, "ppo")?,
                };
                settings.me_trpo.optimiser = match improvement {
                    Improvement::Ppo => ImaginedOptimiser::Ppo,
                    _ => ImaginedOptimiser::Trpo,
                };
                if settings.me_trpo.imagined_rollouts == 0 {
                    return Err(Error::InvalidArgument(
                        "me_trpo.imagined_rollouts must be at least 1".into(),
                    ));
                }
                StepSettings::MeTrpo(settings)
            }
            Improvement::MbMpo => {
                let settings = mbrl_meta::mb_mpo::Settings {
                    mb_mpo: table(&ctx.config, "mb_mpo")?,
                    policy: table(&ctx.config, "policy")?,
                    advantage: table(&ctx.config, "advantage")?,
                    trpo: table(&ctx.config, "trpo")?,
                };
                settings.mb_mpo.validate()?;
                if settings.mb_mpo.model_bias_max.is_some() {
                    return Err(Error::InvalidArgument(format!(
                        "mb_mpo.model_bias_max (the biased-model study) is not available in {algo}"
                    )));
                }
                StepSettings::MbMpo(settings)
            }
        };
        let model_factory = ctx.model_factory.clone().ok_or_else(|| {
            Error::InvalidArgument(format!("{algo} needs a dynamics model ([model] table)"))
        })?;
        let probe = (ctx.env_factory)()?;
        let dims = (
            probe.observation_space().flat_dim(),
            probe.action_space().flat_dim(),
        );
        Ok(Self {
            env_factory: ctx.env_factory.clone(),
            model_factory,
            seed: ctx.seed,
            settings,
            config,
            dims,
        })
    }

    /// An independent random stream for worker slot `slot`.
    pub fn rng(&self, slot: u32) -> ChaCha8Rng {
        stream_rng(self.seed, Stream::Custom(800 + slot))
    }

    /// A fresh model from the run's factory, initialised from slot `slot`'s stream.
    pub fn fresh_model(&self, slot: u32) -> Result<Box<dyn TrainableModel>> {
        (self.model_factory)(self.dims.0, self.dims.1, &mut self.rng(slot))
    }

    /// The run's initial policy (from the seed's policy stream, as the sequential trainers).
    pub fn fresh_policy(&self) -> Result<GaussianMlpPolicy> {
        let mut rng = stream_rng(self.seed, Stream::Policy);
        let config = match &self.settings {
            StepSettings::MeTrpo(s) => &s.policy,
            StepSettings::MbMpo(s) => &s.policy,
        };
        GaussianMlpPolicy::new(self.dims.0, self.dims.1, config.clone(), &mut rng)
    }

    /// Empty real-data buffers with the run's capacity and validation share.
    pub fn empty_data(&self) -> Result<ModelData> {
        let c = &self.config;
        ModelData::new(
            c.buffer_capacity,
            self.dims.0,
            self.dims.1,
            c.validation_share,
        )
    }

    /// The model worker, starting from `data` and, when given, the weights `model`.
    pub fn model_worker(
        &self,
        data: ModelData,
        model: Option<&HashMap<String, Tensor>>,
        servers: Servers,
    ) -> Result<ModelWorker> {
        let mut fresh = self.fresh_model(1)?;
        if let Some(tensors) = model {
            fresh.load_named_tensors(tensors)?;
        }
        let persistence = self.config.moving_average_weight;
        ModelWorker::new(fresh, data, persistence, self.rng(2), servers)
    }

    /// The policy worker, improving `policy`.
    pub fn policy_worker(
        &self,
        policy: GaussianMlpPolicy,
        servers: Servers,
    ) -> Result<PolicyWorker> {
        let mut env = (self.env_factory)()?;
        let (imagined_horizon, pool) = match &self.settings {
            StepSettings::MeTrpo(s) => (
                s.me_trpo.imagined_horizon,
                s.me_trpo.start_state_pool.max(s.me_trpo.imagined_rollouts),
            ),
            StepSettings::MbMpo(s) => (s.mb_mpo.imagined_horizon, s.mb_mpo.start_state_pool),
        };
        let horizon = imagined_horizon
            .or(env.spec().max_episode_steps)
            .unwrap_or(DEFAULT_MAX_EPISODE_STEPS);
        let start_pool = real_start_states(env.as_mut(), &mut self.rng(3), pool)?;
        let improver: Box<dyn Improver> = match &self.settings {
            StepSettings::MeTrpo(s) => {
                let c = &s.me_trpo;
                let update = ImaginedUpdate::new(
                    &policy,
                    c.optimiser,
                    (&s.advantage, &s.trpo, &s.ppo),
                    horizon,
                )?;
                Box::new(TrpoImprover {
                    policy,
                    update,
                    imagination: Imagination {
                        start_pool,
                        rollouts: c.imagined_rollouts,
                        task: env.task_functions(),
                        model_env: c.model_env.clone(),
                    },
                })
            }
            StepSettings::MbMpo(s) => Box::new(MetaImprover::new(
                policy,
                s.clone(),
                horizon,
                start_pool,
                env.task_functions(),
            )?),
        };
        Ok(PolicyWorker::new(
            improver,
            self.fresh_model(4)?,
            self.rng(5),
            servers,
        ))
    }

    /// Data worker `index`, acting with a copy of `policy` until it pulls a newer one.
    pub fn data_worker(
        &self,
        index: u32,
        policy: &GaussianMlpPolicy,
        servers: Servers,
    ) -> Result<DataWorker> {
        DataWorker::new(
            index as u64,
            (self.env_factory)()?,
            policy.snapshot()?,
            &self.config,
            (self.rng(100 + 2 * index), self.rng(101 + 2 * index)),
            servers,
        )
    }
}
