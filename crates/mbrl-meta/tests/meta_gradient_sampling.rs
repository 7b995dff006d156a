//! What the Fig. 15 / Fig. 17 examples rely on (`mbrl_meta::gradient_variance`):
//! - under [`finite_horizon_advantages`] every estimator takes the same inner step on sampled
//!   `point1d-goal` batches (so one batch gives paired meta-gradient samples), while the
//!   meta-gradients themselves differ;
//! - the averages of sampled meta-gradients ([`meta_gradient`]) of DiCE, LVC and MAML equal
//!   their closed-form expectations `E[(I + alpha H_est)^T grad J'(theta')]` within Monte
//!   Carlo error, on a Gaussian bandit whose estimates are polynomials in the action noise;
//!   MAML's, which lacks the pre-update sampling term `H1`, misses DiCE's by many standard
//!   errors.

use candle_core::{Device, Tensor};
use mbrl_core::policy::{standard_normal, GaussianPolicy};
use mbrl_core::seeding::{stream_rng, Stream};
use mbrl_envs::{make_factory, EnvConfig};
use mbrl_meta::adaptation::{adapt, InnerStepSize};
use mbrl_meta::estimators::Estimator;
use mbrl_meta::gradient_variance::{
    draw_meta_batch, finite_horizon_advantages, meta_gradient, GradientSpread,
};
use mbrl_meta::higher_order;
use mbrl_meta::linear_policy::LinearGaussianPolicy;
use mbrl_meta::meta_objective::MetaTaskSamples;
use mbrl_meta::samples::{snapshot, SurrogateTerms, TaskSamples};
use mbrl_meta::task_sampler::TaskSampler;
use mbrl_policy_opt::advantages::AdvantageConfig;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const ALL: [Estimator; 4] = [
    Estimator::Lvc,
    Estimator::Dice,
    Estimator::Maml,
    Estimator::EMaml,
];

fn to_vec(params: &[Tensor]) -> Vec<f64> {
    params
        .iter()
        .flat_map(|p| p.flatten_all().unwrap().to_vec1::<f32>().unwrap())
        .map(f64::from)
        .collect()
}

fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).fold(0.0, |m, (x, y)| m.max((x - y).abs()))
}

/// `point1d-goal` with its `goal-sign` task family.
fn point1d_goal() -> mbrl_core::env::EnvFactory {
    make_factory(&EnvConfig {
        name: "point1d-goal".into(),
        max_episode_steps: None,
        task_family: Some("goal-sign".into()),
        ..EnvConfig::default()
    })
    .unwrap()
}

/// The inner step of every estimator on one sampled `point1d-goal` task.
fn inner_steps(advantage: &AdvantageConfig) -> Vec<Vec<f64>> {
    let factory = point1d_goal();
    let mut sampler = TaskSampler::new(&factory, 8, 5).unwrap();
    let mut rng = stream_rng(5, Stream::Policy);
    let tasks = sampler.sample_tasks(1, &mut rng).unwrap();
    let policy = LinearGaussianPolicy::new(&[-0.6], &[0.2], 0.3).unwrap();
    let theta = policy.parameter_tensors();
    let alpha = InnerStepSize::uniform(&policy, 0.05, false)
        .unwrap()
        .tensors();
    let batch = draw_meta_batch(
        &mut sampler,
        &policy,
        &theta,
        &alpha,
        &tasks,
        Estimator::Lvc,
        advantage,
        &mut rng,
    )
    .unwrap();
    let pre = &batch.tasks[0].inner;
    ALL.iter()
        .map(|&est| to_vec(&adapt(&policy, &theta, pre, &alpha, est).unwrap()))
        .collect()
}

#[test]
fn every_estimator_takes_the_same_inner_step_under_finite_horizon_advantages() {
    higher_order::run(|| {
        let steps = inner_steps(&finite_horizon_advantages());
        let theta = [-0.6, 0.2];
        let moved = max_abs_diff(&steps[0], &theta);
        assert!(moved > 0.05, "the inner step must move theta: {moved}");
        for (est, step) in ALL.iter().zip(&steps) {
            let d = max_abs_diff(step, &steps[0]);
            assert!(
                d < 1e-4 * (1.0 + moved),
                "{est:?}: {step:?} vs {:?}",
                steps[0]
            );
        }
        // With the trainer's default advantages (gamma 0.99, normalised) DiCE's step differs.
        let default = inner_steps(&AdvantageConfig::default());
        let d = max_abs_diff(&default[1], &default[0]);
        assert!(d > 1e-2, "DiCE vs LVC under normalised advantages: {d}");
        Ok(())
    })
    .unwrap();
}

#[test]
fn estimators_give_different_meta_gradients_on_one_batch() {
    higher_order::run(|| {
        let factory = point1d_goal();
        let mut sampler = TaskSampler::new(&factory, 10, 1).unwrap();
        let mut rng = stream_rng(1, Stream::Policy);
        let tasks = sampler.sample_tasks(4, &mut rng).unwrap();
        let policy = LinearGaussianPolicy::new(&[-0.6], &[0.2], 0.3).unwrap();
        let alpha = InnerStepSize::uniform(&policy, 0.05, false)
            .unwrap()
            .tensors();
        let batch = draw_meta_batch(
            &mut sampler,
            &policy,
            &policy.parameter_tensors(),
            &alpha,
            &tasks,
            Estimator::Lvc,
            &finite_horizon_advantages(),
            &mut rng,
        )
        .unwrap();
        let grads: Vec<Vec<f64>> = ALL
            .iter()
            .map(|&e| meta_gradient(&policy, &alpha, &batch.tasks, e).unwrap())
            .collect();
        let scale = grads[0].iter().map(|g| g.abs()).fold(0.0, f64::max);
        assert!(scale > 0.0 && grads.iter().all(|g| g.iter().all(|x| x.is_finite())));
        for (i, j) in [(0, 1), (0, 2), (2, 3)] {
            let d = max_abs_diff(&grads[i], &grads[j]);
            assert!(d > 1e-3 * scale, "{:?} vs {:?}: {d}", ALL[i], ALL[j]);
        }
        Ok(())
    })
    .unwrap();
}

/// Polynomials in the standard-normal noise `eps`, lowest degree first.
type Poly = Vec<f64>;

fn mul(a: &Poly, b: &Poly) -> Poly {
    let mut c = vec![0.0; a.len() + b.len() - 1];
    for (i, x) in a.iter().enumerate() {
        for (j, y) in b.iter().enumerate() {
            c[i + j] += x * y;
        }
    }
    c
}

fn add(a: &Poly, b: &Poly) -> Poly {
    (0..a.len().max(b.len()))
        .map(|i| a.get(i).unwrap_or(&0.0) + b.get(i).unwrap_or(&0.0))
        .collect()
}

fn scale(a: &Poly, s: f64) -> Poly {
    a.iter().map(|x| x * s).collect()
}

/// `E[p(eps)]` for `eps ~ N(0, 1)`: `E[eps^k] = (k - 1)!!` for even `k`.
fn expectation(p: &Poly) -> f64 {
    let mut moment = 1.0;
    let mut total = p[0];
    for (k, c) in p.iter().enumerate().skip(1) {
        if k % 2 == 0 {
            moment *= (k - 1) as f64;
            total += c * moment;
        }
    }
    total
}

/// The bandit: one pre-update step from `s = 1`, `a ~ N(theta_0 + theta_1, sigma^2)`, reward
/// `-(a - G)^2`; post-update steps from `s = -1` and `s = +1` (half each), reward
/// `-(a' - G_POST)^2`. No baselines, inner step `ALPHA`.
const SIGMA: f64 = 0.3;
const G: f64 = 1.0;
const G_POST: f64 = 0.5;
const ALPHA: f64 = 0.05;
const THETA: [f64; 2] = [0.3, 0.2];

/// The expectation of an estimator's meta-gradient `(I + ALPHA H(eps))^T g'(theta'(eps))`
/// (the post-update gradient estimate is unbiased given `theta'`, so it is replaced by
/// `g' = grad J'(theta') = -2 (theta'_0, theta'_1 - G_POST)`, with
/// `J'(theta') = -(theta'_0^2 + (theta'_1 - G_POST)^2) - sigma^2`).
///
/// With `a = mu + sigma eps`: `grad log pi(a) = (eps / sigma) (1, 1)`, `grad^2 log pi =
/// -(1 / sigma^2) 1 1^T`, `r = -(d + sigma eps)^2` with `d = theta_0 + theta_1 - G`, so
/// `theta' = theta + c (1, 1)`, `c = -(ALPHA / sigma) eps (d + sigma eps)^2`, and every
/// curvature estimate is `h(eps) 1 1^T`: DiCE's (= LVC's, one step) `r (eps^2 - 1) / sigma^2`
/// (`H1 + H2`), MAML's `-r / sigma^2` (`H2` only). All are polynomials in `eps`.
fn expected_meta_gradient(estimator: Estimator) -> [f64; 2] {
    let d = THETA[0] + THETA[1] - G;
    let k = ALPHA / SIGMA;
    let c = scale(&vec![0.0, d * d, 2.0 * d * SIGMA, SIGMA * SIGMA], -k);
    let r = scale(&vec![d * d, 2.0 * d * SIGMA, SIGMA * SIGMA], -1.0);
    let h = match estimator {
        Estimator::Maml => scale(&r, -1.0 / (SIGMA * SIGMA)),
        _ => scale(&mul(&r, &vec![-1.0, 0.0, 1.0]), 1.0 / (SIGMA * SIGMA)),
    };
    let g0 = scale(&add(&c, &vec![THETA[0]]), -2.0);
    let g1 = scale(&add(&c, &vec![THETA[1] - G_POST]), -2.0);
    let curvature = scale(&mul(&h, &add(&g0, &g1)), ALPHA);
    [
        expectation(&add(&g0, &curvature)),
        expectation(&add(&g1, &curvature)),
    ]
}

/// One task's samples of `n` one-step trajectories.
fn one_step_samples(
    policy: &LinearGaussianPolicy,
    params: &[Tensor],
    obs: Vec<f32>,
    act: Tensor,
    goal: f64,
) -> TaskSamples {
    let n = obs.len();
    let dev = Device::Cpu;
    let obs = Tensor::from_vec(obs, (n, 1), &dev).unwrap();
    let rewards: Vec<f32> = act
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
        .iter()
        .map(|&a| -((a as f64 - goal).powi(2)) as f32)
        .collect();
    let grid = |v: Vec<f32>| Tensor::from_vec(v, (n, 1), &dev).unwrap();
    let ref_log_prob = policy
        .distribution_with(params, &obs)
        .unwrap()
        .log_prob(&act)
        .unwrap()
        .reshape((n, 1))
        .unwrap()
        .detach();
    TaskSamples {
        obs,
        act,
        terms: SurrogateTerms {
            weights: grid(vec![1.0 / n as f32; n]),
            advantages: grid(rewards.clone()),
            discounted_rewards: grid(rewards.clone()),
            discounted_baselines: grid(vec![0.0; n]),
            ref_log_prob,
        },
        returns: rewards.iter().map(|&r| r as f64).collect(),
        steps: n,
    }
}

#[test]
fn sampled_meta_gradients_average_to_their_closed_form_expectations() {
    higher_order::run(|| {
        let policy =
            LinearGaussianPolicy::new(&[THETA[0] as f32], &[THETA[1] as f32], SIGMA).unwrap();
        let theta = policy.parameter_tensors();
        let alpha = InnerStepSize::uniform(&policy, ALPHA, false)
            .unwrap()
            .tensors();
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let (batches, post_n) = (3000, 16);
        let mut samples = vec![Vec::new(); ALL.len()];
        for _ in 0..batches {
            let pre_obs = Tensor::from_slice(&[1.0f32], (1, 1), &Device::Cpu).unwrap();
            let pre_act = policy
                .distribution(&pre_obs)
                .unwrap()
                .sample(&mut rng)
                .unwrap()
                .detach();
            let pre = one_step_samples(&policy, &theta, vec![1.0], pre_act, G);
            let adapted = snapshot(
                &adapt(
                    &policy,
                    &theta,
                    std::slice::from_ref(&pre),
                    &alpha,
                    Estimator::Lvc,
                )
                .unwrap(),
            )
            .unwrap();
            let post_obs: Vec<f32> = (0..post_n)
                .map(|i| if i % 2 == 0 { -1.0 } else { 1.0 })
                .collect();
            let obs = Tensor::from_vec(post_obs.clone(), (post_n, 1), &Device::Cpu).unwrap();
            let dist = policy.distribution_with(&adapted, &obs).unwrap();
            let noise = standard_normal(&[post_n, 1], &mut rng, &Device::Cpu).unwrap();
            let post_act = dist.sample_with(&noise).unwrap();
            let post = one_step_samples(&policy, &adapted, post_obs, post_act, G_POST);
            let tasks = [MetaTaskSamples {
                inner: vec![pre],
                post,
            }];
            for (acc, est) in samples.iter_mut().zip(ALL) {
                if est != Estimator::EMaml {
                    acc.push(meta_gradient(&policy, &alpha, &tasks, est).unwrap());
                }
            }
        }
        let within = |est: Estimator, target: Estimator, k: f64| {
            let i = ALL.iter().position(|&e| e == est).unwrap();
            let s = GradientSpread::from_samples(&samples[i]).unwrap();
            let se = s.standard_error();
            let exact = expected_meta_gradient(target);
            eprintln!(
                "{est:?}: mean {:?} +- {se:?}, {target:?}'s expectation {exact:?}",
                s.mean
            );
            (0..2).all(|j| (s.mean[j] - exact[j]).abs() < k * se[j] + 1e-4)
        };
        assert!(
            within(Estimator::Dice, Estimator::Dice, 4.0),
            "DiCE: H1 + H2"
        );
        assert!(
            within(Estimator::Lvc, Estimator::Dice, 4.0),
            "LVC = DiCE on one step"
        );
        assert!(
            within(Estimator::Maml, Estimator::Maml, 4.0),
            "MAML: H2 only"
        );
        assert!(
            !within(Estimator::Maml, Estimator::Dice, 8.0),
            "MAML drops the sampling-distribution term H1"
        );
        Ok(())
    })
    .unwrap();
}
