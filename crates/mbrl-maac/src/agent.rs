//! The soft actor-critic learner shared by SAC, MBPO and MAAC: actor, twin critic with targets,
//! learned temperature, their optimisers, and one gradient step of each.
//!
//! One [`SoftActorCritic::update`] (Haarnoja et al. 2018, Algorithm 1; CleanRL's order):
//! 1. critic: minimise `sum_i mean((Q_i(s, a) - y)^2)` towards targets `y` given by the caller
//!    (one-step soft Bellman targets or STEVE's, [`crate::targets`]);
//! 2. actor: minimise the loss given by the caller (SAC's `mean(alpha log pi - min Q)` or
//!    MAAC's H-step objective, [`crate::objective`]);
//! 3. temperature: minimise `mean(-log_alpha (log pi + target_entropy))` (Haarnoja et al.
//!    2018b, Eq. 18), driving the policy's entropy towards `target_entropy` (default `-|A|`);
//! 4. targets: one Polyak step.

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor, Var};
use mbrl_core::adam::Adam;
use mbrl_core::data::TransitionBatch;
use mbrl_core::{Error, Result};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::actor::{ActorConfig, SquashedGaussianActor};
use crate::critic::TwinCritic;

/// The `[sac]` table: the soft actor-critic learner (SAC, and the actor-critic inside MBPO and
/// MAAC).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SacConfig {
    /// Discount. Default `0.99`.
    pub gamma: f64,
    /// Polyak step of the target critic. Default `0.005`.
    pub tau: f64,
    /// Adam learning rate of the actor. Default `3e-4`.
    pub actor_learning_rate: f64,
    /// Adam learning rate of the critics. Default `3e-4`.
    pub critic_learning_rate: f64,
    /// Adam learning rate of the log-temperature. Default `3e-4`.
    pub alpha_learning_rate: f64,
    /// Critic hidden widths (ReLU). Default `[256, 256]`.
    pub critic_hidden_sizes: Vec<usize>,
    /// Learn the temperature towards `target_entropy`. Default `true`.
    pub learn_alpha: bool,
    /// Initial (or, with `learn_alpha = false`, fixed) temperature. Default `1.0`.
    pub initial_alpha: f64,
    /// Target entropy; default `-|A|` (Haarnoja et al. 2018b).
    pub target_entropy: Option<f64>,
    /// Minibatch size of every gradient step. Default `256`.
    pub batch_size: usize,
}

impl Default for SacConfig {
    fn default() -> Self {
        Self {
            gamma: 0.99,
            tau: 0.005,
            actor_learning_rate: 3e-4,
            critic_learning_rate: 3e-4,
            alpha_learning_rate: 3e-4,
            critic_hidden_sizes: vec![256, 256],
            learn_alpha: true,
            initial_alpha: 1.0,
            target_entropy: None,
            batch_size: 256,
        }
    }
}

impl SacConfig {
    /// Checks every key; errors name it.
    pub fn validate(&self) -> Result<()> {
        let unit = [("sac.gamma", self.gamma), ("sac.tau", self.tau)];
        for (key, value) in unit {
            if !(0.0..=1.0).contains(&value) {
                return Err(Error::InvalidArgument(format!(
                    "{key} must be in [0, 1], got {value}"
                )));
            }
        }
        let positive = [
            ("sac.actor_learning_rate", self.actor_learning_rate),
            ("sac.critic_learning_rate", self.critic_learning_rate),
            ("sac.alpha_learning_rate", self.alpha_learning_rate),
            ("sac.initial_alpha", self.initial_alpha),
        ];
        for (key, value) in positive {
            if !(value > 0.0 && value.is_finite()) {
                return Err(Error::InvalidArgument(format!(
                    "{key} must be a positive number, got {value}"
                )));
            }
        }
        if self.batch_size == 0 {
            return Err(Error::InvalidArgument(
                "sac.batch_size must be at least 1".into(),
            ));
        }
        if self.critic_hidden_sizes.is_empty() || self.critic_hidden_sizes.contains(&0) {
            return Err(Error::InvalidArgument(format!(
                "sac.critic_hidden_sizes must list at least one positive width, got {:?}",
                self.critic_hidden_sizes
            )));
        }
        if let Some(t) = self.target_entropy {
            if !t.is_finite() {
                return Err(Error::InvalidArgument(format!(
                    "sac.target_entropy must be finite, got {t}"
                )));
            }
        }
        Ok(())
    }
}

/// What one update did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UpdateStats {
    /// The critics' loss.
    pub critic_loss: f64,
    /// The actor's loss.
    pub actor_loss: f64,
    /// The temperature after the update.
    pub alpha: f64,
    /// Mean `-log pi` of the actor's batch (an entropy estimate).
    pub entropy: f64,
    /// STEVE's mean weight of each horizon (empty for one-step targets).
    pub steve_weights: Vec<f64>,
}

/// An actor loss and the log-densities `[B]` of the actions it sampled at the batch's states
/// (for the temperature's update).
pub struct ActorLoss {
    /// The loss to minimise (a scalar with the graph over the actor's variables).
    pub loss: Tensor,
    /// `log pi(a_0 | s_0)` of the batch.
    pub log_prob: Tensor,
}

/// Actor, twin critic, temperature and their optimisers.
pub struct SoftActorCritic {
    /// The policy.
    pub actor: SquashedGaussianActor,
    /// The twin critic and its target.
    pub critic: TwinCritic,
    log_alpha: Var,
    actor_adam: Adam,
    critic_adam: Adam,
    alpha_adam: Adam,
    target_entropy: f64,
    config: SacConfig,
}

impl SoftActorCritic {
    /// A fresh learner for `obs_dim` observations and actions in `action_space`.
    pub fn new(
        obs_dim: usize,
        action_space: &mbrl_core::space::BoxSpace,
        actor_config: ActorConfig,
        config: SacConfig,
        rng: &mut dyn RngCore,
    ) -> Result<Self> {
        config.validate()?;
        let actor = SquashedGaussianActor::new(obs_dim, action_space, actor_config, rng)?;
        let act_dim = actor.act_dim();
        let critic = TwinCritic::new(obs_dim, act_dim, &config.critic_hidden_sizes, rng)?;
        let log_alpha = Var::from_tensor(&Tensor::new(
            &[config.initial_alpha.ln() as f32],
            &Device::Cpu,
        )?)?;
        Ok(Self {
            actor_adam: Adam::new(actor.vars().to_vec(), config.actor_learning_rate)?,
            critic_adam: Adam::new(critic.net().vars().to_vec(), config.critic_learning_rate)?,
            alpha_adam: Adam::new(vec![log_alpha.clone()], config.alpha_learning_rate)?,
            target_entropy: config.target_entropy.unwrap_or(-(act_dim as f64)),
            actor,
            critic,
            log_alpha,
            config,
        })
    }

    /// The settings.
    pub fn config(&self) -> &SacConfig {
        &self.config
    }

    /// The current temperature `alpha`.
    pub fn alpha(&self) -> Result<f64> {
        Ok(self.log_alpha.as_tensor().exp()?.to_vec1::<f32>()?[0] as f64)
    }

    /// The entropy the temperature steers towards.
    pub fn target_entropy(&self) -> f64 {
        self.target_entropy
    }

    /// One step of each part (module docs) on `batch`. `targets` gives the critic's targets
    /// `[n]` for a part of the batch (and STEVE's horizon weights, or nothing), `actor_loss`
    /// the actor's loss on a part's observations (computed after the critic step, as in SAC).
    ///
    /// The batch is cut into two halves whose losses and gradients are computed in parallel
    /// (rayon) and added, each half drawing from its own generator seeded from `rng`: a batch
    /// of 256 is bound by per-op costs, which a second thread halves, where splitting the
    /// matrix products alone left one core idle. Each half's loss is its mean scaled by its
    /// share of the batch, so the sum is the full batch's gradient; the halves and their order
    /// are fixed, so results do not depend on the number of threads.
    pub fn update(
        &mut self,
        batch: &TransitionBatch,
        targets: &TargetFn<'_>,
        actor_loss: &ActorLossFn<'_>,
        rng: &mut dyn RngCore,
    ) -> Result<UpdateStats> {
        let (critic_loss, steve_weights) = self.critic_step(batch, targets, rng)?;
        let (actor_loss, log_prob) = self.actor_step(&batch.obs, actor_loss, rng)?;
        let entropy = -finite_scalar(&log_prob.mean_all()?, "log-density")?;
        if self.config.learn_alpha {
            let alpha_loss =
                (self.log_alpha.as_tensor().broadcast_mul(
                    &((log_prob + self.target_entropy)?.mean_all()?.unsqueeze(0)?),
                )? * -1.0)?
                    .sum_all()?;
            self.alpha_adam.step(&alpha_loss.backward()?)?;
        }
        self.critic.update_target(self.config.tau)?;
        Ok(UpdateStats {
            critic_loss,
            actor_loss,
            alpha: self.alpha()?,
            entropy,
            steve_weights,
        })
    }

    /// The critics' step of [`SoftActorCritic::update`]: their loss and STEVE's weights.
    pub fn critic_step(
        &mut self,
        batch: &TransitionBatch,
        targets: &TargetFn<'_>,
        rng: &mut dyn RngCore,
    ) -> Result<(f64, Vec<f64>)> {
        let n = batch.obs.dim(0)?;
        let parts = halves(batch, n)?;
        let this = &*self;
        let part = |part: &TransitionBatch, rng: &mut ChaCha8Rng| {
            let (y, weights) = targets(this, part, rng)?;
            let q = this
                .critic
                .q(crate::critic::CriticWeights::Online, &part.obs, &part.act)?;
            let share = part.obs.dim(0)? as f64 / n as f64;
            let loss = (q
                .broadcast_sub(&y.detach().unsqueeze(0)?)?
                .sqr()?
                .mean(1)?
                .sum_all()?
                * share)?;
            let value = finite_scalar(&loss, "critic loss")?;
            Ok::<_, Error>((loss.backward()?, value, weights))
        };
        let [(grads_a, loss_a, weights_a), (grads_b, loss_b, weights_b)] =
            in_parallel(&parts, part, rng)?;
        let grads = add_gradients(grads_a, grads_b, self.critic.net().vars())?;
        self.critic_adam.step(&grads)?;
        let weights = weights_a
            .iter()
            .zip(&weights_b)
            .map(|(a, b)| 0.5 * (a + b))
            .collect();
        Ok((loss_a + loss_b, weights))
    }

    /// The actor's step of [`SoftActorCritic::update`] on start states `obs`: its loss and the
    /// log-densities `[B]` of the actions it sampled there.
    pub fn actor_step(
        &mut self,
        obs: &Tensor,
        actor_loss: &ActorLossFn<'_>,
        rng: &mut dyn RngCore,
    ) -> Result<(f64, Tensor)> {
        let n = obs.dim(0)?;
        let first = n / 2;
        if first == 0 {
            return Err(Error::InvalidArgument(format!(
                "an actor-critic update needs a batch of at least 2, got {n}"
            )));
        }
        let parts = [obs.narrow(0, 0, first)?, obs.narrow(0, first, n - first)?];
        let this = &*self;
        let part = |obs: &Tensor, rng: &mut ChaCha8Rng| {
            let ActorLoss { loss, log_prob } = actor_loss(this, obs, rng)?;
            let loss = (loss * (obs.dim(0)? as f64 / n as f64))?;
            let value = finite_scalar(&loss, "actor loss")?;
            Ok::<_, Error>((loss.backward()?, value, log_prob.detach()))
        };
        let [(grads_a, loss_a, log_prob_a), (grads_b, loss_b, log_prob_b)] =
            in_parallel(&parts, part, rng)?;
        let grads = add_gradients(grads_a, grads_b, self.actor.vars())?;
        self.actor_adam.step(&grads)?;
        Ok((
            loss_a + loss_b,
            Tensor::cat(&[&log_prob_a, &log_prob_b], 0)?,
        ))
    }

    /// Everything a resume needs, as named tensors (`actor.*`, `critic.*`, `critic_target.*`,
    /// `log_alpha`, and the three optimisers' moments and step counts).
    pub fn named_tensors(&self) -> Result<HashMap<String, Tensor>> {
        let mut out = HashMap::new();
        for (i, t) in self.actor.net().copies()?.into_iter().enumerate() {
            out.insert(format!("actor.{i}"), t);
        }
        for (i, t) in self.critic.net().copies()?.into_iter().enumerate() {
            out.insert(format!("critic.{i}"), t);
        }
        for (i, t) in self.critic.target_weights().iter().enumerate() {
            out.insert(format!("critic_target.{i}"), t.copy()?);
        }
        out.insert("log_alpha".into(), self.log_alpha.as_tensor().copy()?);
        out.extend(self.actor_adam.state_tensors("actor_adam")?);
        out.extend(self.critic_adam.state_tensors("critic_adam")?);
        out.extend(self.alpha_adam.state_tensors("alpha_adam")?);
        Ok(out)
    }

    /// Restores [`SoftActorCritic::named_tensors`].
    pub fn load_named_tensors(&mut self, tensors: &HashMap<String, Tensor>) -> Result<()> {
        let list = |prefix: &str, n: usize| -> Result<Vec<Tensor>> {
            (0..n)
                .map(|i| {
                    let name = format!("{prefix}.{i}");
                    tensors
                        .get(&name)
                        .cloned()
                        .ok_or_else(|| Error::InvalidArgument(format!("checkpoint lacks `{name}`")))
                })
                .collect()
        };
        let actor = list("actor", self.actor.vars().len())?;
        let critic = list("critic", self.critic.net().vars().len())?;
        let target = list("critic_target", self.critic.target_weights().len())?;
        let log_alpha = tensors
            .get("log_alpha")
            .ok_or_else(|| Error::InvalidArgument("checkpoint lacks `log_alpha`".into()))?;
        self.actor.net().set(&actor)?;
        self.critic.net().set(&critic)?;
        self.critic.set_target_weights(target)?;
        self.log_alpha.set(log_alpha)?;
        self.actor_adam.load_state_tensors("actor_adam", tensors)?;
        self.critic_adam
            .load_state_tensors("critic_adam", tensors)?;
        self.alpha_adam.load_state_tensors("alpha_adam", tensors)?;
        Ok(())
    }
}

/// The critics' targets for a part of a batch, and STEVE's horizon weights (or nothing).
pub type TargetFn<'a> = dyn Fn(&SoftActorCritic, &TransitionBatch, &mut ChaCha8Rng) -> Result<(Tensor, Vec<f64>)>
    + Sync
    + 'a;

/// The actor's loss on some start states.
pub type ActorLossFn<'a> =
    dyn Fn(&SoftActorCritic, &Tensor, &mut ChaCha8Rng) -> Result<ActorLoss> + Sync + 'a;

/// `f` on both parts at once (rayon), each with its own generator seeded from `rng`.
fn in_parallel<P: Sync, R: Send>(
    parts: &[P; 2],
    f: impl Fn(&P, &mut ChaCha8Rng) -> Result<R> + Sync,
    rng: &mut dyn RngCore,
) -> Result<[R; 2]> {
    let mut rngs = [
        ChaCha8Rng::seed_from_u64(rng.next_u64()),
        ChaCha8Rng::seed_from_u64(rng.next_u64()),
    ];
    let [r0, r1] = &mut rngs;
    let (a, b) = rayon::join(|| f(&parts[0], r0), || f(&parts[1], r1));
    Ok([a?, b?])
}

/// The batch's first and second half.
fn halves(batch: &TransitionBatch, n: usize) -> Result<[TransitionBatch; 2]> {
    if n < 2 {
        return Err(Error::InvalidArgument(format!(
            "an actor-critic update needs a batch of at least 2, got {n}"
        )));
    }
    let part = |start: usize, len: usize| -> Result<TransitionBatch> {
        Ok(TransitionBatch {
            obs: batch.obs.narrow(0, start, len)?,
            act: batch.act.narrow(0, start, len)?,
            next_obs: batch.next_obs.narrow(0, start, len)?,
            reward: batch.reward.narrow(0, start, len)?,
            terminated: batch.terminated.narrow(0, start, len)?,
        })
    };
    let first = n / 2;
    Ok([part(0, first)?, part(first, n - first)?])
}

/// `a + b` for every variable in `vars` (a variable missing from one side keeps the other's).
fn add_gradients(mut a: GradStore, mut b: GradStore, vars: &[Var]) -> Result<GradStore> {
    for v in vars {
        let sum = match (a.remove(v.as_tensor()), b.remove(v.as_tensor())) {
            (Some(x), Some(y)) => Some((x + y)?),
            (x, y) => x.or(y),
        };
        if let Some(g) = sum {
            a.insert(v.as_tensor(), g);
        }
    }
    Ok(a)
}

/// The value of a scalar tensor; a non-finite value is an error naming `what`.
pub(crate) fn finite_scalar(t: &Tensor, what: &str) -> Result<f64> {
    let v = t
        .to_dtype(candle_core::DType::F64)?
        .flatten_all()?
        .to_vec1::<f64>()?[0];
    if !v.is_finite() {
        return Err(Error::NonFinite {
            what: format!("{what} ({v}; the critic or the model diverged)"),
            iteration: 0,
        });
    }
    Ok(v)
}
