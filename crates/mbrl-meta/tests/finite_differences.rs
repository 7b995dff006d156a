//! The second-order machinery agrees with finite differences on small Gaussian MLP policies
//! with fixed (synthetic) samples:
//! - the meta-gradient `d J_outer(theta') / d theta` with `theta' = theta + alpha grad
//!   J_inner(theta)`, computed by double backward through [`adapt`], equals central finite
//!   differences of the whole composite objective, coordinate by coordinate;
//! - MAML-TRPO's Fisher-vector product ([`post_update_fvp`]: finite differences of the
//!   gradient of the post-update KL, differentiated through the inner step) equals the product
//!   with an explicit finite-difference Hessian of that KL, built from KL values only.
//!
//! Both checks would pass trivially if the inner step did not matter, so each test also shows
//! that dropping the dependence of `theta'` on `theta` (first-order MAML, or `alpha = 0`)
//! moves the result by far more than the tolerance.
//!
//! Everything is `f32` (the policy's dtype); tolerances follow from that, see each test.

#![allow(clippy::needless_range_loop)] // matrix code reads best with indices

use candle_core::Tensor;
use mbrl_core::data::Trajectory;
use mbrl_core::policy::{flatten, unflatten, GaussianPolicy};
use mbrl_meta::adaptation::{adapt, gradient_at};
use mbrl_meta::estimators::{lvc_surrogate, Estimator};
use mbrl_meta::higher_order;
use mbrl_meta::maml_trpo::{adapted_params, post_update_fvp};
use mbrl_meta::meta_objective::{post_update_kl, MetaTaskSamples};
use mbrl_meta::samples::{snapshot, TaskSamples};
use mbrl_policy_opt::advantages::AdvantageConfig;
use mbrl_policy_opt::baseline::LinearFeatureBaseline;
use mbrl_policy_opt::gaussian_mlp::{GaussianMlpPolicy, PolicyConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A policy with `hidden` tanh units, its initial log-std 0 and output weights of normal size
/// (so that the mean depends noticeably on every parameter).
fn policy(obs_dim: usize, hidden: usize, act_dim: usize, seed: u64) -> GaussianMlpPolicy {
    let config = PolicyConfig {
        hidden_sizes: vec![hidden],
        output_init_scale: 1.0,
        ..PolicyConfig::default()
    };
    GaussianMlpPolicy::new(
        obs_dim,
        act_dim,
        config,
        &mut ChaCha8Rng::seed_from_u64(seed),
    )
    .unwrap()
}

/// `n` random trajectories of length `len` with rewards a fixed smooth function of the state
/// and action, laid out as one task's samples (sampling policy: `params`).
fn samples(
    policy: &GaussianMlpPolicy,
    params: &[Tensor],
    n: usize,
    len: usize,
    reward_sign: f64,
    seed: u64,
) -> TaskSamples {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (obs_dim, act_dim) = (policy.obs_dim(), policy.act_dim());
    let trajectories: Vec<Trajectory> = (0..n)
        .map(|_| {
            let mut obs: Vec<f32> = (0..obs_dim).map(|_| rng.random_range(-1.0..1.0)).collect();
            let mut traj = Trajectory::new(obs.clone(), act_dim);
            for _ in 0..len {
                let act: Vec<f32> = (0..act_dim).map(|_| rng.random_range(-1.5..1.5)).collect();
                let reward = reward_sign
                    * (act
                        .iter()
                        .zip(&obs)
                        .map(|(a, o)| (a - o) as f64)
                        .sum::<f64>()
                        - 0.3 * obs.iter().map(|o| (o * o) as f64).sum::<f64>());
                obs = obs
                    .iter()
                    .enumerate()
                    .map(|(i, o)| 0.9 * o + 0.1 * act[i % act_dim])
                    .collect();
                traj.push(&act, reward, obs.clone()).unwrap();
            }
            traj
        })
        .collect();
    TaskSamples::from_trajectories(
        &trajectories,
        policy,
        params,
        &mut LinearFeatureBaseline::new(),
        &AdvantageConfig::default(),
    )
    .unwrap()
}

fn to_vec(t: &Tensor) -> Vec<f64> {
    t.flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
        .into_iter()
        .map(|x| x as f64)
        .collect()
}

fn shapes(params: &[Tensor]) -> Vec<Vec<usize>> {
    params.iter().map(|p| p.dims().to_vec()).collect()
}

/// `flat` (as `f64`) back into parameter tensors of `shapes`.
fn params_from(flat: &[f64], shapes: &[Vec<usize>]) -> Vec<Tensor> {
    let values: Vec<f32> = flat.iter().map(|&x| x as f32).collect();
    let flat = Tensor::from_vec(values, flat.len(), &candle_core::Device::Cpu).unwrap();
    unflatten(&flat, shapes).unwrap()
}

fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |m, x| m.max(x.abs()))
}

fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).fold(0.0, |m, (x, y)| m.max((x - y).abs()))
}

/// Meta-gradient through one inner VPG step versus central differences of the composite
/// objective `J_outer(theta + alpha grad J_inner(theta))`.
///
/// Tolerance: `2e-3 * max|g|`. Central differences with `h = 1e-2` have truncation error
/// `h^2 / 6 * |J'''|`, about `2e-5 * |J'''|`; the `f32` objective (value about 1, relative
/// rounding about `1e-7` over a few hundred summands) gives rounding error `~1e-6 / h = 1e-4`
/// absolute at most. With `max|g|` of order 1 (asserted), `2e-3 * max|g|` covers both by a
/// factor of several (measured: `8e-5` relative), while the first-order (no second derivative) gradient misses by
/// more than `10x` the tolerance (asserted).
#[test]
fn meta_gradient_through_the_inner_step_matches_central_differences() {
    let policy = policy(2, 5, 2, 3);
    let theta = snapshot(&policy.parameter_tensors()).unwrap();
    let shapes = shapes(&theta);
    let inner = samples(&policy, &theta, 8, 6, 1.0, 11);
    let post = samples(&policy, &theta, 8, 6, -0.7, 12);
    let alpha_value = 0.5;
    let alpha: Vec<Tensor> = theta
        .iter()
        .map(|p| Tensor::full(alpha_value as f32, p.dims(), p.device()).unwrap())
        .collect();
    let objective = |p: &[Tensor]| -> mbrl_core::Result<Tensor> {
        let adapted = adapt(
            &policy,
            p,
            std::slice::from_ref(&inner),
            &alpha,
            Estimator::Lvc,
        )?;
        lvc_surrogate(&post.log_prob(&policy, &adapted)?, &post.terms)
    };
    let (exact, first_order) = higher_order::run(|| {
        let (_, g) = gradient_at(&theta, objective)?;
        // First-order MAML: the outer gradient at theta', ignoring d theta' / d theta - I.
        let adapted = snapshot(&adapt(
            &policy,
            &theta,
            std::slice::from_ref(&inner),
            &alpha,
            Estimator::Lvc,
        )?)?;
        let (_, g1) = gradient_at(&adapted, |p| {
            lvc_surrogate(&post.log_prob(&policy, p)?, &post.terms)
        })?;
        Ok((to_vec(&flatten(&g)?), to_vec(&flatten(&g1)?)))
    })
    .unwrap();
    let base = to_vec(&flatten(&theta).unwrap());
    let h = 1e-2;
    let value = |flat: &[f64]| -> f64 {
        objective(&params_from(flat, &shapes))
            .unwrap()
            .to_scalar::<f32>()
            .unwrap() as f64
    };
    let numeric: Vec<f64> = (0..base.len())
        .map(|i| {
            let (mut plus, mut minus) = (base.clone(), base.clone());
            plus[i] += h;
            minus[i] -= h;
            (value(&plus) - value(&minus)) / (2.0 * h)
        })
        .collect();
    let scale = max_abs(&numeric);
    let tolerance = 2e-3 * scale;
    let error = max_abs_diff(&exact, &numeric);
    let first_order_error = max_abs_diff(&first_order, &numeric);
    eprintln!(
        "{} parameters, max|g| {scale:.4}, error {error:.2e} (tolerance {tolerance:.2e}), \
         first-order error {first_order_error:.2e}",
        base.len()
    );
    assert!(scale > 0.05, "degenerate test: gradient {scale}");
    assert!(error <= tolerance, "error {error:.3e} > {tolerance:.3e}");
    assert!(
        first_order_error > 10.0 * tolerance,
        "the inner step barely matters ({first_order_error:.3e}); the test could not fail"
    );
}

/// MAML-TRPO's Fisher-vector product of the post-update KL versus `H v` with `H` the Hessian
/// of `KL(theta) = 1/K sum_k KL(pi_theta'_k(theta_o) || pi_theta'_k(theta))` at `theta_o`
/// from second differences of KL values:
/// `H_ij ~ [f(+h e_i + h e_j) - f(+h e_i - h e_j) - f(-h e_i + h e_j) + f(-h e_i - h e_j)] / 4h^2`.
///
/// Tolerance: `5e-3 * max|H v|`. The second differences have truncation error
/// `O(h^2 |f''''|)`, about `1e-3` relative at `h = 3e-2`; the KL values near `theta_o` are of
/// order `h^2 |H| ~ 1e-3` and their `f32` rounding (about `1e-7` absolute after averaging)
/// enters `H_ij` as `~1e-7 / 4h^2 ~ 3e-5`. The FVP's own finite difference (step `1e-3` along
/// the unit direction, on `f32` gradients) is accurate to about `1e-3` relative. `5e-3`
/// leaves a margin over their sum (measured: `7e-4` relative); the product without the inner step (`alpha = 0`, the
/// plain Fisher matrix) differs by more than `5x` the tolerance (asserted).
#[test]
fn maml_trpo_fisher_vector_product_matches_a_finite_difference_kl_hessian() {
    let policy = policy(1, 3, 1, 5);
    let theta = snapshot(&policy.parameter_tensors()).unwrap();
    let shapes = shapes(&theta);
    let n = to_vec(&flatten(&theta).unwrap()).len();
    let tasks: Vec<MetaTaskSamples> = (0..2)
        .map(|k| MetaTaskSamples {
            inner: vec![samples(
                &policy,
                &theta,
                10,
                5,
                1.0 - 2.0 * k as f64,
                20 + k,
            )],
            post: samples(&policy, &theta, 10, 5, 1.0, 30 + k),
        })
        .collect();
    let alpha_of = |value: f32| -> Vec<Tensor> {
        theta
            .iter()
            .map(|p| Tensor::full(value, p.dims(), p.device()).unwrap())
            .collect()
    };
    let alpha = alpha_of(0.5);
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let v: Vec<f64> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
    let (fvp, fisher) = higher_order::run(|| {
        let fvp = post_update_fvp(&policy, &theta, &alpha, &tasks, Estimator::Lvc, 1e-3, &v)?;
        let fisher = post_update_fvp(
            &policy,
            &theta,
            &alpha_of(0.0),
            &tasks,
            Estimator::Lvc,
            1e-3,
            &v,
        )?;
        Ok((fvp, fisher))
    })
    .unwrap();

    let adapted_o: Vec<Vec<Tensor>> =
        adapted_params(&policy, &theta, &alpha, &tasks, Estimator::Lvc)
            .unwrap()
            .iter()
            .map(|p| snapshot(p).unwrap())
            .collect();
    let base = to_vec(&flatten(&theta).unwrap());
    let kl = |flat: &[f64]| -> f64 {
        let p = params_from(flat, &shapes);
        let adapted = adapted_params(&policy, &p, &alpha, &tasks, Estimator::Lvc).unwrap();
        post_update_kl(&policy, &tasks, &adapted_o, &adapted)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap() as f64
    };
    let h = 3e-2;
    let shifted = |i: usize, si: f64, j: usize, sj: f64| {
        let mut p = base.clone();
        p[i] += si * h;
        p[j] += sj * h;
        kl(&p)
    };
    let mut hessian = vec![vec![0.0; n]; n];
    for i in 0..n {
        for j in i..n {
            let value =
                (shifted(i, 1.0, j, 1.0) - shifted(i, 1.0, j, -1.0) - shifted(i, -1.0, j, 1.0)
                    + shifted(i, -1.0, j, -1.0))
                    / (4.0 * h * h);
            hessian[i][j] = value;
            hessian[j][i] = value;
        }
    }
    let hv: Vec<f64> = hessian
        .iter()
        .map(|row| row.iter().zip(&v).map(|(a, b)| a * b).sum())
        .collect();
    let scale = max_abs(&hv);
    let tolerance = 5e-3 * scale;
    let error = max_abs_diff(&fvp, &hv);
    let without_inner = max_abs_diff(&fisher, &hv);
    eprintln!(
        "{n} parameters, max|Hv| {scale:.4}, error {error:.2e} (tolerance {tolerance:.2e}), \
         plain Fisher off by {without_inner:.2e}"
    );
    assert!(scale > 1e-2, "degenerate test: |Hv| {scale}");
    assert!(error <= tolerance, "error {error:.3e} > {tolerance:.3e}");
    assert!(
        without_inner > 5.0 * tolerance,
        "the inner step barely matters ({without_inner:.3e}); the test could not fail"
    );
}
