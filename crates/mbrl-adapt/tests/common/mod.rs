//! Shared helpers of the mbrl-adapt integration tests: the pendulum mass-length family,
//! random-action data in its tasks, windows of a small system with a gain per window, and the
//! pieces of directional central-difference checks.

#![allow(dead_code)]

use candle_core::{Device, Tensor, Var};
use mbrl_adapt::segments::{SegmentBuffer, Windows};
use mbrl_core::data::Trajectory;
use mbrl_core::env::Env;
use mbrl_core::policy::RandomPolicy;
use mbrl_core::rollout::rollout_episode;
use mbrl_core::task::Task;
use mbrl_envs::registry::{make_factory, EnvConfig};
use rand::{Rng, RngCore, SeedableRng};

/// `pendulum` with its `mass-length` family active.
pub fn pendulum() -> Box<dyn Env> {
    pendulum_with("mass-length")
}

/// `pendulum` with task family `family` active.
pub fn pendulum_with(family: &str) -> Box<dyn Env> {
    let config = EnvConfig {
        name: "pendulum".into(),
        task_family: Some(family.into()),
        ..EnvConfig::default()
    };
    make_factory(&config).unwrap()().unwrap()
}

/// A random-action episode in `task`.
pub fn random_episode(env: &mut dyn Env, task: &Task, seed: u64) -> Trajectory {
    env.task_distribution().unwrap().set_task(task).unwrap();
    let policy = RandomPolicy::new(env.action_space().as_box().unwrap().clone()).unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    rollout_episode(env, &policy, Some(seed), false, 200, &mut rng).unwrap()
}

/// `episodes` random-action episodes, each in a freshly drawn training task.
pub fn training_data(
    env: &mut dyn Env,
    episodes: usize,
    window: usize,
    seed: u64,
) -> SegmentBuffer {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut buffer = SegmentBuffer::new(3, 1);
    for _ in 0..episodes {
        let task = env
            .task_distribution()
            .unwrap()
            .sample_tasks(1, &mut rng)
            .remove(0);
        let traj = random_episode(env, &task, rng.next_u64());
        buffer.add(&traj, window, 0.1).unwrap();
    }
    buffer
}

/// Windows of a nonlinear system `s' = s + 0.3 tanh(A s + b a) * g_n`, where each of the 3
/// windows has its own gain `g_n` (a task per window).
pub fn gain_windows(window: usize) -> Windows {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let (mut obs, mut act, mut next) = (Vec::new(), Vec::new(), Vec::new());
    for n in 0..3 {
        let gain = 0.5 + n as f32;
        let mut s = [
            rng.random_range(-1.0f32..1.0),
            rng.random_range(-1.0f32..1.0),
        ];
        for _ in 0..window {
            let a: f32 = rng.random_range(-1.0..1.0);
            let s2 = [
                s[0] + 0.3 * gain * (0.8 * s[1] + a).tanh(),
                s[1] + 0.3 * gain * (-0.5 * s[0] + 0.2 * a).tanh(),
            ];
            obs.extend_from_slice(&s);
            act.push(a);
            next.extend_from_slice(&s2);
            s = s2;
        }
    }
    Windows::from_rows(obs, act, next, 3, window).unwrap()
}

/// `sum_i a_i b_i` in `f64`.
pub fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (*x as f64) * (*y as f64))
        .sum()
}

/// A random direction of unit length over `len` flat parameters.
pub fn unit_direction(len: usize, rng: &mut impl Rng) -> Vec<f32> {
    let raw: Vec<f32> = (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    let norm = dot(&raw, &raw).sqrt() as f32;
    raw.iter().map(|x| x / norm).collect()
}

/// Every variable moved by `step * direction`, `direction` flat over the variables in order.
pub fn moved_along(vars: &[Var], direction: &[f32], step: f32) -> Vec<Tensor> {
    let mut offset = 0;
    vars.iter()
        .map(|v| {
            let n = v.elem_count();
            let d =
                Tensor::from_slice(&direction[offset..offset + n], v.dims(), &Device::Cpu).unwrap();
            offset += n;
            (v.as_tensor() + (d * step as f64).unwrap()).unwrap()
        })
        .collect()
}
