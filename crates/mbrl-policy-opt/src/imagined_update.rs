//! One policy update in a learned model: imagined rollouts from given start states, advantages
//! against a linear baseline, then a TRPO step or a PPO update. It is the body of ME-TRPO's
//! (and ME-PPO's) policy phase, and the whole step of the asynchronous policy worker (thesis
//! Algorithm 8), so both run the same code.

use candle_core::{Device, Tensor};
use mbrl_core::model::DynamicsModel;
use mbrl_core::model_env::ModelEnv;
use mbrl_core::policy::GaussianPolicy;
use mbrl_core::Result;
use rand::{Rng, RngCore};

use crate::advantages::{process_trajectories, AdvantageConfig};
use crate::baseline::LinearFeatureBaseline;
use crate::gaussian_mlp::GaussianMlpPolicy;
use crate::imagination::imagine;
use crate::me_trpo::ImaginedOptimiser;
use crate::ppo::{Ppo, PpoConfig};
use crate::trpo::{trpo_step, TrpoConfig};

/// The optimiser state of imagined policy updates.
pub struct ImaginedUpdate {
    ppo: Option<Ppo>,
    baseline: LinearFeatureBaseline,
    advantage: AdvantageConfig,
    trpo: TrpoConfig,
    horizon: usize,
}

impl ImaginedUpdate {
    /// Updates of `policy` by `optimiser` over imagined rollouts of `horizon` steps.
    pub fn new(
        policy: &GaussianMlpPolicy,
        optimiser: ImaginedOptimiser,
        settings: (&AdvantageConfig, &TrpoConfig, &PpoConfig),
        horizon: usize,
    ) -> Result<Self> {
        let (advantage, trpo, ppo) = settings;
        let ppo = match optimiser {
            ImaginedOptimiser::Ppo => Some(Ppo::new(policy.parameters().to_vec(), ppo.clone())?),
            ImaginedOptimiser::Trpo => None,
        };
        Ok(Self {
            ppo,
            baseline: LinearFeatureBaseline::new(),
            advantage: advantage.clone(),
            trpo: trpo.clone(),
            horizon,
        })
    }

    /// The PPO optimiser (its Adam moments go into checkpoints); `None` for TRPO.
    pub fn ppo(&self) -> Option<&Ppo> {
        self.ppo.as_ref()
    }

    /// Mutable access to the PPO optimiser (restoring a checkpoint).
    pub fn ppo_mut(&mut self) -> Option<&mut Ppo> {
        self.ppo.as_mut()
    }

    /// One update of `policy` from imagined rollouts in `model_env` that start at `starts`
    /// (`[n, obs_dim]`); `rng` draws the imagined actions and model samples (and PPO's
    /// minibatches). Returns the rollouts' mean imagined return.
    pub fn step<M: DynamicsModel>(
        &mut self,
        model_env: &ModelEnv<M>,
        policy: &GaussianMlpPolicy,
        starts: &Tensor,
        rng: &mut dyn RngCore,
    ) -> Result<f64> {
        let trajs = imagine(model_env, policy, starts, self.horizon, false, rng)?;
        let batch = process_trajectories(&trajs, &mut self.baseline, &self.advantage)?;
        match &mut self.ppo {
            Some(ppo) => {
                ppo.update(policy, &batch, rng)?;
            }
            None => {
                trpo_step(policy, &batch, &self.trpo)?;
            }
        }
        Ok(batch.mean_return)
    }
}

/// `n` rows of `pool` drawn uniformly with replacement by `rng` (imagined start states).
pub fn draw_rows(pool: &Tensor, n: usize, rng: &mut dyn RngCore) -> Result<Tensor> {
    let size = pool.dim(0)?.max(1);
    let picks: Vec<u32> = (0..n).map(|_| rng.random_range(0..size) as u32).collect();
    Ok(pool.index_select(&Tensor::from_vec(picks, n, &Device::Cpu)?, 0)?)
}
