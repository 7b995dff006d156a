//! A user's own system for the library examples: a DC-motor position servo. The state is the
//! angle error `theta` (rad) and the angular velocity `omega`; the action is the normalised
//! voltage `u` in [-1, 1]; every 0.05 s `omega += dt (K u - b omega)`, `theta += dt omega`.
//! Reward `-(theta'^2 + 0.1 omega'^2 + 0.01 u^2)`; episodes of 100 steps (5 s) from a random
//! angle in [-1, 1] rad at rest.
// Shared by the servo examples, each of which uses a part of it.
#![allow(dead_code)]

use std::sync::Arc;

use candle_core::Tensor;
use mbrl_core::algorithm::Algorithm;
use mbrl_core::env::{read_action, vector, EnvFactory, EnvSpec, Info, Step};
use mbrl_core::rollout::evaluate;
use mbrl_core::task::{never_terminated, TaskFunctions};
use mbrl_core::{check_env, BoxSpace, Env, Result, Space, TimeLimit};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const DT: f32 = 0.05;
const GAIN: f32 = 10.0;
const FRICTION: f32 = 2.0;

/// The servo (wrap it in a `TimeLimit`: it never ends on its own).
pub struct Servo {
    state: [f32; 2],
    rng: ChaCha8Rng,
    obs_space: Space,
    act_space: Space,
}

impl Env for Servo {
    fn spec(&self) -> EnvSpec {
        EnvSpec {
            name: "servo".into(),
            max_episode_steps: None,
        }
    }
    fn observation_space(&self) -> &Space {
        &self.obs_space
    }
    fn action_space(&self) -> &Space {
        &self.act_space
    }
    fn reset(&mut self, seed: Option<u64>) -> Result<(Tensor, Info)> {
        if let Some(seed) = seed {
            self.rng = ChaCha8Rng::seed_from_u64(seed);
        }
        self.state = [self.rng.random_range(-1.0..=1.0), 0.0];
        Ok((vector(&self.state)?, Info::new()))
    }
    fn step(&mut self, action: &Tensor) -> Result<Step> {
        let u = read_action(action, 1)?[0].clamp(-1.0, 1.0);
        let [theta, omega] = self.state;
        let omega = omega + DT * (GAIN * u - FRICTION * omega);
        self.state = [theta + DT * omega, omega];
        let reward = -(self.state[0].powi(2) + 0.1 * omega.powi(2) + 0.01 * u * u) as f64;
        let obs = vector(&self.state)?;
        Ok(Step {
            obs,
            reward,
            terminated: false,
            truncated: false,
            info: Info::new(),
        })
    }
    fn task_functions(&self) -> Arc<dyn TaskFunctions> {
        Arc::new(ServoReward)
    }
}

/// The reward and termination as batched, differentiable functions of `[B, dim]` tensors: what
/// planning and learning in a model use instead of `step`.
struct ServoReward;

impl TaskFunctions for ServoReward {
    fn reward(&self, _obs: &Tensor, act: &Tensor, next_obs: &Tensor) -> Result<Tensor> {
        let weights = Tensor::new(&[1f32, 0.1], next_obs.device())?;
        let state_cost = next_obs.sqr()?.broadcast_mul(&weights)?.sum(1)?;
        Ok((state_cost + (act.sqr()?.sum(1)? * 0.01)?)?.neg()?)
    }
    fn terminated(&self, _obs: &Tensor, _act: &Tensor, next_obs: &Tensor) -> Result<Tensor> {
        never_terminated(next_obs)
    }
}

impl Servo {
    /// A servo at rest (call `reset` first).
    pub fn new() -> Self {
        let box_space =
            |bound: f32, dim| Space::Box(BoxSpace::uniform(-bound, bound, dim).expect("bounds"));
        Self {
            state: [0.0; 2],
            rng: ChaCha8Rng::seed_from_u64(0),
            obs_space: box_space(f32::INFINITY, 2),
            act_space: box_space(1.0, 1),
        }
    }
}

/// Fresh 100-step servos, after checking that the environment keeps the `Env` contract
/// (seeding, spaces, task functions that agree with `step`).
pub fn servo_factory() -> Result<EnvFactory> {
    let factory = check_env::factory(|| TimeLimit::new(Servo::new(), 100));
    check_env::check_env(&factory, &check_env::CheckEnvOptions::default())?;
    Ok(factory)
}

/// The evaluation episodes of every example: 10 seeded servo episodes.
fn eval_episodes() -> Vec<u64> {
    mbrl_core::rollout::eval_seeds(0, 10)
}

/// Trains `algo` for `iterations` iterations and prints, after each, the real steps so far
/// and the mean return of the deterministic policy on the evaluation episodes: the learning
/// curve, as `(real steps, return)` pairs.
pub fn learning_curve(algo: &mut dyn Algorithm, iterations: u64) -> Result<Vec<(u64, f64)>> {
    let factory = servo_factory()?;
    let mut curve = Vec::new();
    for i in 1..=iterations {
        let steps = algo.train_iteration(i)?.env_steps;
        let ret = evaluate(factory()?.as_mut(), algo.policy(), &eval_episodes())?.mean_return();
        println!("iteration {i}: {steps:>5} real steps, return {ret:8.2}");
        curve.push((steps, ret));
    }
    Ok(curve)
}

/// What uniformly random actions score on the evaluation episodes (the reference of the tests).
pub fn random_return() -> Result<f64> {
    let random = mbrl_core::testing::random_return(&servo_factory()?, &eval_episodes())?;
    println!("random actions: return {random:8.2}");
    Ok(random)
}
