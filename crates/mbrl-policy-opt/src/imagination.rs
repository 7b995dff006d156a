//! Imagined rollouts: running a policy in a learned model (`ModelEnv`) as one batched
//! computation over all rollouts, and scoring a policy in each ensemble member.
//!
//! Every step evaluates the policy once on all live and finished rows together (no per-row
//! tensor ops); rows that reached a terminal state stop contributing transitions.

use candle_core::Tensor;
use mbrl_core::data::Trajectory;
use mbrl_core::model::DynamicsModel;
use mbrl_core::model_env::{ModelEnv, SamplingMode};
use mbrl_core::policy::Policy;
use mbrl_core::{Error, Result};
use rand::RngCore;

/// Which members step the rows.
enum Members<'a> {
    /// The environment's sampling mode.
    Mode,
    /// Row `i` always uses member `m[i]`.
    Fixed(&'a [usize]),
}

fn rollouts<M: DynamicsModel>(
    env: &ModelEnv<M>,
    policy: &dyn Policy,
    start_obs: &Tensor,
    horizon: usize,
    deterministic: bool,
    members: Members<'_>,
    rng: &mut dyn RngCore,
) -> Result<Vec<Trajectory>> {
    let (b, _) = start_obs.dims2()?;
    let episode_members = match (&members, env.config().sampling) {
        (Members::Mode, SamplingMode::EpsRand) => Some(env.draw_episode_members(b, rng)),
        _ => None,
    };
    let mut obs = start_obs.clone();
    let mut trajectories: Vec<Trajectory> = Vec::new();
    let mut alive = vec![true; b];
    for t in 0..horizon {
        let act = policy.act(&obs, deterministic, rng)?;
        if t == 0 {
            let act_dim = act.dim(1)?;
            trajectories = obs
                .to_vec2::<f32>()?
                .into_iter()
                .map(|o| Trajectory::new(o, act_dim))
                .collect();
        }
        let step = match (&members, &episode_members) {
            (Members::Fixed(m), _) => env.step_members(&obs, &act, m, rng)?,
            (Members::Mode, Some(m)) => env.step_episodes(&obs, &act, m, rng)?,
            (Members::Mode, None) => env.step(&obs, &act, rng)?,
        };
        let next = step.next_obs.to_vec2::<f32>()?;
        let rewards = step.reward.to_vec1::<f32>()?;
        let terminal = step.terminated.to_vec1::<f32>()?;
        let actions = act.to_vec2::<f32>()?;
        for i in 0..b {
            if !alive[i] {
                continue;
            }
            if !rewards[i].is_finite() {
                return Err(Error::NonFinite {
                    what: "imagined reward (the model diverged; consider model_env.obs_clip)"
                        .into(),
                    iteration: t as u64,
                });
            }
            trajectories[i].push(&actions[i], rewards[i] as f64, next[i].clone())?;
            if terminal[i] > 0.5 {
                alive[i] = false;
                trajectories[i].terminated = true;
            }
        }
        if !alive.iter().any(|&a| a) {
            break;
        }
        obs = step.next_obs.detach();
    }
    for (traj, live) in trajectories.iter_mut().zip(&alive) {
        traj.truncated = *live;
    }
    Ok(trajectories)
}

/// `start_obs.dims()[0]` imagined rollouts of at most `horizon` steps with the environment's
/// sampling mode.
pub fn imagine<M: DynamicsModel>(
    env: &ModelEnv<M>,
    policy: &dyn Policy,
    start_obs: &Tensor,
    horizon: usize,
    deterministic: bool,
    rng: &mut dyn RngCore,
) -> Result<Vec<Trajectory>> {
    rollouts(
        env,
        policy,
        start_obs,
        horizon,
        deterministic,
        Members::Mode,
        rng,
    )
}

/// Imagined rollouts with row `i` stepped by member `members[i]` for the whole rollout
/// (whatever the sampling mode), e.g. MB-MPO's tasks, one per ensemble member.
pub fn imagine_members<M: DynamicsModel>(
    env: &ModelEnv<M>,
    policy: &dyn Policy,
    start_obs: &Tensor,
    horizon: usize,
    deterministic: bool,
    members: &[usize],
    rng: &mut dyn RngCore,
) -> Result<Vec<Trajectory>> {
    rollouts(
        env,
        policy,
        start_obs,
        horizon,
        deterministic,
        Members::Fixed(members),
        rng,
    )
}

/// Mean return of `policy` (deterministic actions) in each ensemble member from the same start
/// states: all members are rolled out in one batch of `K * B` rows.
pub fn returns_per_member<M: DynamicsModel>(
    env: &ModelEnv<M>,
    policy: &dyn Policy,
    start_obs: &Tensor,
    horizon: usize,
    rng: &mut dyn RngCore,
) -> Result<Vec<f64>> {
    let k = env.model().ensemble_size();
    let b = start_obs.dim(0)?;
    let starts = Tensor::cat(&vec![start_obs.clone(); k], 0)?;
    let members: Vec<usize> = (0..k).flat_map(|m| std::iter::repeat_n(m, b)).collect();
    let trajs = rollouts(
        env,
        policy,
        &starts,
        horizon,
        true,
        Members::Fixed(&members),
        rng,
    )?;
    Ok(trajs
        .chunks(b)
        .map(|chunk| chunk.iter().map(Trajectory::total_return).sum::<f64>() / b as f64)
        .collect())
}
