//! Running a policy in a real environment: single episodes and SB3-style evaluation.
//!
//! Evaluation runs `E` episodes with deterministic actions, each reset with its own seed
//! (drawn from the run's `Eval` stream, never from the training streams), and reports the
//! mean and spread of the returns.

use rand::RngCore;

use crate::data::Trajectory;
use crate::env::Env;
use crate::policy::Policy;
use crate::task::Task;
use crate::{Error, Result};

/// Cap on episode length for environments without a time limit.
pub const DEFAULT_MAX_EPISODE_STEPS: usize = 10_000;

/// Runs one episode of `policy` in `env`, resetting with `seed`, until it terminates, is
/// truncated, or reaches `max_steps` (then marked truncated). The policy hears of the new
/// episode ([`Policy::begin_episode`]) and of every transition ([`Policy::observe`]).
pub fn rollout_episode(
    env: &mut dyn Env,
    policy: &dyn Policy,
    seed: Option<u64>,
    deterministic: bool,
    max_steps: usize,
    rng: &mut dyn RngCore,
) -> Result<Trajectory> {
    rollout_episode_switching(env, policy, seed, deterministic, max_steps, None, rng)
}

/// A change of the active task in the middle of an episode: `task` is set before the step
/// numbered `at_step` (counted from 0), so transitions `at_step..` follow it.
#[derive(Debug, Clone, Copy)]
pub struct TaskSwitch<'a> {
    /// The first step in the new task.
    pub at_step: usize,
    /// The new task (of the environment's active family).
    pub task: &'a Task,
}

/// [`rollout_episode`] with an optional mid-episode task switch (thesis Ch. 9's fast-adaptation
/// tests). A switch needs an environment with a task family.
pub fn rollout_episode_switching(
    env: &mut dyn Env,
    policy: &dyn Policy,
    seed: Option<u64>,
    deterministic: bool,
    max_steps: usize,
    switch: Option<TaskSwitch<'_>>,
    rng: &mut dyn RngCore,
) -> Result<Trajectory> {
    let act_dim = env.action_space().flat_dim();
    let (obs, _) = env.reset(seed)?;
    let mut traj = Trajectory::new(obs.to_vec1::<f32>()?, act_dim);
    let mut obs = obs;
    policy.begin_episode()?;
    for t in 0..max_steps {
        if let Some(switch) = switch.filter(|s| s.at_step == t) {
            set_task(env, switch.task)?;
        }
        let action = policy
            .act(&obs.unsqueeze(0)?, deterministic, rng)?
            .squeeze(0)?;
        let step = env.step(&action)?;
        let (act_row, next_row) = (action.to_vec1::<f32>()?, step.obs.to_vec1::<f32>()?);
        policy.observe(&traj.final_observation, &act_row, &next_row)?;
        traj.push(&act_row, step.reward, next_row)?;
        if !step.reward.is_finite() {
            return Err(Error::NonFinite {
                what: format!("reward of {}", env.spec().name),
                iteration: traj.len() as u64,
            });
        }
        obs = step.obs;
        if step.terminated || step.truncated {
            traj.terminated = step.terminated;
            traj.truncated = step.truncated;
            return Ok(traj);
        }
    }
    traj.truncated = true;
    Ok(traj)
}

/// Makes `task` active in `env`, which needs an active task family.
pub fn set_task(env: &mut dyn Env, task: &Task) -> Result<()> {
    let name = env.spec().name;
    env.task_distribution()
        .ok_or_else(|| {
            Error::InvalidArgument(format!(
                "task `{}` needs a task family; `{name}` has none active (set env.task_family)",
                task.label
            ))
        })?
        .set_task(task)
}

/// Summary of an evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalResult {
    /// Return of each episode.
    pub returns: Vec<f64>,
    /// Length of each episode.
    pub lengths: Vec<usize>,
}

impl EvalResult {
    /// Mean episode return.
    pub fn mean_return(&self) -> f64 {
        self.returns.iter().sum::<f64>() / self.returns.len().max(1) as f64
    }

    /// Population standard deviation of the episode returns.
    pub fn std_return(&self) -> f64 {
        let m = self.mean_return();
        (self.returns.iter().map(|r| (r - m).powi(2)).sum::<f64>()
            / self.returns.len().max(1) as f64)
            .sqrt()
    }

    /// Mean episode length.
    pub fn mean_length(&self) -> f64 {
        self.lengths.iter().sum::<usize>() as f64 / self.lengths.len().max(1) as f64
    }
}

/// Evaluates `policy` with deterministic actions, one episode per seed.
pub fn evaluate(env: &mut dyn Env, policy: &dyn Policy, seeds: &[u64]) -> Result<EvalResult> {
    evaluate_in_tasks(env, policy, seeds, None, None)
}

/// [`evaluate`] with every episode started in `start` (when given) and switched per `switch`.
pub fn evaluate_in_tasks(
    env: &mut dyn Env,
    policy: &dyn Policy,
    seeds: &[u64],
    start: Option<&Task>,
    switch: Option<TaskSwitch<'_>>,
) -> Result<EvalResult> {
    let max_steps = env
        .spec()
        .max_episode_steps
        .unwrap_or(DEFAULT_MAX_EPISODE_STEPS);
    // Deterministic actions draw no randomness; the generator only satisfies the signature.
    let mut unused = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(0);
    let mut result = EvalResult {
        returns: Vec::with_capacity(seeds.len()),
        lengths: Vec::with_capacity(seeds.len()),
    };
    for &seed in seeds {
        if let Some(task) = start {
            set_task(env, task)?;
        }
        let traj = rollout_episode_switching(
            env,
            policy,
            Some(seed),
            true,
            max_steps,
            switch,
            &mut unused,
        )?;
        result.returns.push(traj.total_return());
        result.lengths.push(traj.len());
    }
    Ok(result)
}

/// Evaluation seeds for a run: `episodes` numbers from the run's `Eval` stream, the same at
/// every evaluation so successive evaluations are compared on the same start states.
pub fn eval_seeds(run_seed: u64, episodes: usize) -> Vec<u64> {
    let mut rng = crate::seeding::stream_rng(run_seed, crate::seeding::Stream::Eval);
    (0..episodes).map(|_| rng.next_u64()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::TimeLimit;
    use crate::policy::RandomPolicy;
    use crate::testing::{Drift, LinearGaussianPolicy};
    use rand::SeedableRng;

    #[test]
    fn a_task_switch_changes_the_rewards_from_its_step_on() {
        let mut env = TimeLimit::new(Drift::new(), 4);
        let policy = LinearGaussianPolicy::new(1, 1, 0.0).unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let task = Task::new("goal=-1", vec![-1.0]);
        let switch = TaskSwitch {
            at_step: 2,
            task: &task,
        };
        let traj =
            rollout_episode_switching(&mut env, &policy, Some(3), true, 10, Some(switch), &mut rng)
                .unwrap();
        for t in 0..4 {
            let next = if t + 1 < 4 {
                traj.obs(t + 1)[0] as f64
            } else {
                traj.final_observation[0] as f64
            };
            let goal = if t < 2 { 1.0 } else { -1.0 };
            assert!(
                (traj.rewards[t] + (next - goal).powi(2)).abs() < 1e-5,
                "step {t}"
            );
        }
    }

    #[test]
    fn episode_ends_on_the_time_limit_with_the_right_return() {
        let mut env = TimeLimit::new(Drift::new(), 4);
        let policy = LinearGaussianPolicy::new(1, 1, 0.0).unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let traj = rollout_episode(&mut env, &policy, Some(3), true, 100, &mut rng).unwrap();
        assert_eq!(traj.len(), 4);
        assert!(traj.truncated && !traj.terminated);
        // Hand computation: the policy's mean action is -0.05 * s, so s_{t+1} = 0.95 s_t.
        let s0 = traj.obs(0)[0] as f64;
        let expected: f64 = (1..=4).map(|t| -(s0 * 0.95f64.powi(t) - 1.0).powi(2)).sum();
        assert!(
            (traj.total_return() - expected).abs() < 1e-4,
            "{}",
            traj.total_return()
        );
    }

    #[test]
    fn episode_stops_at_termination() {
        let mut env = Drift::new();
        let policy =
            RandomPolicy::new(crate::space::BoxSpace::uniform(1.0, 1.0, 1).unwrap()).unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let traj = rollout_episode(&mut env, &policy, Some(0), false, 100, &mut rng).unwrap();
        assert!(traj.terminated);
        assert!(traj.len() <= 7);
    }

    #[test]
    fn evaluation_is_deterministic_and_uses_one_seed_per_episode() {
        let mut env = TimeLimit::new(Drift::new(), 5);
        let policy = LinearGaussianPolicy::new(1, 1, 0.0).unwrap();
        let seeds = eval_seeds(42, 10);
        assert_eq!(seeds, eval_seeds(42, 10));
        assert_ne!(seeds, eval_seeds(43, 10));
        let a = evaluate(&mut env, &policy, &seeds).unwrap();
        let b = evaluate(&mut env, &policy, &seeds).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.returns.len(), 10);
        assert_eq!(a.mean_length(), 5.0);
        assert!(
            a.std_return() > 0.0,
            "different seeds give different starts"
        );
    }
}
