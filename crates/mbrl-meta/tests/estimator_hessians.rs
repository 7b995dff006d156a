//! The meta-gradient estimators on a two-step MDP whose four trajectories are enumerated
//! exactly, so every expectation is a finite sum and no Monte Carlo error enters:
//! - the exact Hessian of `J(theta) = E[R]` decomposes as `H1 + H2 + H12 + H12^T` (Eq. 14);
//! - the expected DiCE Hessian is that Hessian (Eq. 16), LVC's is `H1 + H2` (Eq. 18) and the
//!   score-function surrogate of the original MAML gives `H2` only (Appendix C.2.3);
//! - the formulation-I meta-gradient `grad_theta J'(theta + alpha grad J(theta))` is matched
//!   exactly by DiCE, and by LVC / MAML up to the missing curvature terms, as the theory says.
//!
//! The MDP: start state `s0`, two actions; `s1 = 1 + a0` (two possible states); `H = 2`;
//! tabular softmax policy with 6 logits; rewards from fixed tables. The expectation of a
//! per-trajectory surrogate is the surrogate weighted by the (constant) trajectory
//! probabilities, so its Hessian by double backward is the estimator's expected Hessian.

#![allow(clippy::needless_range_loop)] // matrix code reads best with indices

use candle_core::{Device, Tensor, Var};
use mbrl_meta::adaptation::gradient_at;
use mbrl_meta::estimators::{inner_surrogate, Estimator};
use mbrl_meta::higher_order;
use mbrl_meta::samples::SurrogateTerms;

const N: usize = 6;
type Matrix = [[f64; N]; N];

/// Rewards `r[s][a]` of the inner task and of the outer (post-update) task.
const REWARD: [[f32; 2]; 3] = [[1.0, -0.5], [0.3, 2.0], [-1.0, 0.7]];
const REWARD_OUTER: [[f32; 2]; 3] = [[-0.2, 0.4], [1.5, -1.0], [0.1, 0.9]];
/// The four trajectories `(a0, a1)`.
const TRAJ: [(usize, usize); 4] = [(0, 0), (0, 1), (1, 0), (1, 1)];

fn dev() -> Device {
    Device::Cpu
}

/// `log softmax` of the `[3, 2]` logits, flattened to `[6]` (index `2 s + a`).
fn log_policy(theta: &Tensor) -> Tensor {
    let logits = theta.reshape((3, 2)).unwrap();
    let lse = logits.exp().unwrap().sum_keepdim(1).unwrap().log().unwrap();
    logits.broadcast_sub(&lse).unwrap().reshape(6).unwrap()
}

/// A `[rows, 6]` selection matrix picking entries of the flattened `[6]` tables.
fn select(indices: &[usize]) -> Tensor {
    let mut m = vec![0f32; indices.len() * 6];
    for (r, &i) in indices.iter().enumerate() {
        m[r * 6 + i] = 1.0;
    }
    Tensor::from_vec(m, (indices.len(), 6), &dev()).unwrap()
}

/// Table index of step `t` of trajectory `(a0, a1)`.
fn cell(t: usize, (a0, a1): (usize, usize)) -> usize {
    if t == 0 {
        a0
    } else {
        2 * (1 + a0) + a1
    }
}

/// Log-probabilities `[4, 2]` of every step of every trajectory (differentiable in theta).
fn log_probs(theta: &Tensor) -> Tensor {
    let idx: Vec<usize> = TRAJ
        .iter()
        .flat_map(|&tr| [cell(0, tr), cell(1, tr)])
        .collect();
    select(&idx)
        .matmul(&log_policy(theta).unsqueeze(1).unwrap())
        .unwrap()
        .reshape((4, 2))
        .unwrap()
}

fn rewards(table: &[[f32; 2]; 3]) -> Vec<[f64; 2]> {
    TRAJ.iter()
        .map(|&tr| {
            let r = |t: usize| {
                let c = cell(t, tr);
                table[c / 2][c % 2] as f64
            };
            [r(0), r(1)]
        })
        .collect()
}

fn grid(values: impl Iterator<Item = f64>) -> Tensor {
    let v: Vec<f32> = values.map(|x| x as f32).collect();
    Tensor::from_vec(v, (4, 2), &dev()).unwrap()
}

/// Exact `J(theta) = sum_tau p(tau) R(tau)`.
fn exact_objective(theta: &Tensor, table: &[[f32; 2]; 3]) -> Tensor {
    let p = log_probs(theta).sum(1).unwrap().exp().unwrap();
    let r = rewards(table);
    let ret = Tensor::from_vec(
        r.iter().map(|x| (x[0] + x[1]) as f32).collect::<Vec<_>>(),
        4,
        &dev(),
    )
    .unwrap();
    (p * ret).unwrap().sum_all().unwrap()
}

/// The surrogate terms at `theta`: weights are the trajectory probabilities (constants),
/// advantages the rewards-to-go, no baseline, `gamma = 1`.
fn terms(theta: &Tensor) -> SurrogateTerms {
    let lp = log_probs(&theta.detach());
    let p: Vec<f32> = lp.sum(1).unwrap().exp().unwrap().to_vec1().unwrap();
    let r = rewards(&REWARD);
    SurrogateTerms {
        weights: grid((0..8).map(|k| p[k / 2] as f64)),
        advantages: grid((0..8).map(|k| {
            let row = r[k / 2];
            if k % 2 == 0 {
                row[0] + row[1]
            } else {
                row[1]
            }
        })),
        discounted_rewards: grid((0..8).map(|k| r[k / 2][k % 2])),
        discounted_baselines: grid((0..8).map(|_| 0.0)),
        ref_log_prob: lp,
    }
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

/// Gradient (as a differentiable tensor) of `f` at the variable `theta`.
fn grad(f: &Tensor, theta: &Var) -> Tensor {
    f.backward()
        .unwrap()
        .get(theta.as_tensor())
        .expect("gradient")
        .clone()
}

/// Hessian of the scalar `f(theta)` by double backward, column by column.
fn hessian(theta: &Var, f: impl Fn(&Tensor) -> Tensor) -> Matrix {
    let mut h = [[0.0; N]; N];
    for j in 0..N {
        let g = grad(&f(theta.as_tensor()), theta);
        let gj = g.narrow(0, j, 1).unwrap().sum_all().unwrap();
        let col = to_vec(&grad(&gj, theta));
        for i in 0..N {
            h[i][j] = col[i];
        }
    }
    h
}

fn theta() -> Var {
    Var::from_slice(&[0.3f32, -0.2, 0.5, 0.1, -0.4, 0.25], 6, &dev()).unwrap()
}

fn add(a: &Matrix, b: &Matrix) -> Matrix {
    let mut c = *a;
    for i in 0..N {
        for j in 0..N {
            c[i][j] += b[i][j];
        }
    }
    c
}

fn transpose(a: &Matrix) -> Matrix {
    let mut t = [[0.0; N]; N];
    for i in 0..N {
        for j in 0..N {
            t[i][j] = a[j][i];
        }
    }
    t
}

fn max_diff(a: &Matrix, b: &Matrix) -> f64 {
    let mut m: f64 = 0.0;
    for i in 0..N {
        for j in 0..N {
            m = m.max((a[i][j] - b[i][j]).abs());
        }
    }
    m
}

fn norm(a: &Matrix) -> f64 {
    a.iter().flatten().map(|x| x * x).sum::<f64>().sqrt()
}

/// `H1`, `H2` and `H12` of Eq. (14) from their definitions, by enumeration.
fn decomposition(theta: &Var) -> (Matrix, Matrix, Matrix) {
    let (mut h1, mut h2, mut h12) = ([[0.0; N]; N], [[0.0; N]; N], [[0.0; N]; N]);
    let r = rewards(&REWARD);
    let p: Vec<f64> = to_vec(&log_probs(theta.as_tensor()).sum(1).unwrap().exp().unwrap());
    for (n, &tr) in TRAJ.iter().enumerate() {
        for t in 0..2 {
            let reward_to_go = if t == 0 { r[n][0] + r[n][1] } else { r[n][1] };
            let step_log_prob = |th: &Tensor| {
                log_policy(th)
                    .narrow(0, cell(t, tr), 1)
                    .unwrap()
                    .sum_all()
                    .unwrap()
            };
            let g = to_vec(&grad(&step_log_prob(theta.as_tensor()), theta));
            let hess = hessian(theta, step_log_prob);
            // Q_0(s0, a0) = r(s0, a0) + sum_a1 pi(a1 | s1) r(s1, a1); Q_1 has no theta.
            let dq = if t == 0 {
                let s1 = 1 + tr.0;
                let q = |th: &Tensor| {
                    let probs = log_policy(th).exp().unwrap();
                    let r_s1 = Tensor::from_slice(&REWARD[s1], 2, &dev()).unwrap();
                    (probs.narrow(0, 2 * s1, 2).unwrap() * r_s1)
                        .unwrap()
                        .sum_all()
                        .unwrap()
                };
                to_vec(&grad(&q(theta.as_tensor()), theta))
            } else {
                vec![0.0; N]
            };
            for i in 0..N {
                for j in 0..N {
                    h1[i][j] += p[n] * g[i] * g[j] * reward_to_go;
                    h2[i][j] += p[n] * hess[i][j] * reward_to_go;
                    h12[i][j] += p[n] * g[i] * dq[j];
                }
            }
        }
    }
    (h1, h2, h12)
}

fn expected_hessian(theta: &Var, estimator: Estimator) -> Matrix {
    let terms = terms(theta.as_tensor());
    hessian(theta, |th| {
        inner_surrogate(estimator, &log_probs(th), &terms).unwrap()
    })
}

#[test]
fn expected_hessians_of_dice_lvc_and_maml_match_eqs_14_to_18() {
    higher_order::run(|| {
        let theta = theta();
        let exact = hessian(&theta, |th| exact_objective(th, &REWARD));
        let (h1, h2, h12) = decomposition(&theta);
        let full = add(&add(&h1, &h2), &add(&h12, &transpose(&h12)));
        let tol = 2e-4 * (1.0 + norm(&exact));
        assert!(norm(&h12) > 0.05, "H12 must matter for the test to bite");
        assert!(
            max_diff(&exact, &full) < tol,
            "Eq. 14: {}",
            max_diff(&exact, &full)
        );
        let dice = expected_hessian(&theta, Estimator::Dice);
        assert!(
            max_diff(&dice, &exact) < tol,
            "Eq. 16: {}",
            max_diff(&dice, &exact)
        );
        let lvc = expected_hessian(&theta, Estimator::Lvc);
        let h1_h2 = add(&h1, &h2);
        assert!(
            max_diff(&lvc, &h1_h2) < tol,
            "Eq. 18: {}",
            max_diff(&lvc, &h1_h2)
        );
        assert!(max_diff(&lvc, &exact) > 0.05, "LVC drops H12 + H12^T");
        let maml = expected_hessian(&theta, Estimator::Maml);
        assert!(max_diff(&maml, &h2) < tol, "MAML: {}", max_diff(&maml, &h2));
        // Every estimator's expected gradient is the policy gradient.
        let exact_grad = to_vec(&grad(&exact_objective(theta.as_tensor(), &REWARD), &theta));
        for est in [Estimator::Dice, Estimator::Lvc, Estimator::Maml] {
            let terms = terms(theta.as_tensor());
            let g = to_vec(&grad(
                &inner_surrogate(est, &log_probs(theta.as_tensor()), &terms)?,
                &theta,
            ));
            for (a, b) in g.iter().zip(&exact_grad) {
                assert!((a - b).abs() < 1e-5, "{est:?} gradient {a} vs {b}");
            }
        }
        Ok(())
    })
    .unwrap();
}

/// `grad_theta J'(theta')` with `theta' = theta + alpha grad E[J^est]`, the inner gradient
/// taken through `gradient_at` (the library's differentiable gradient).
fn meta_gradient(theta: &Var, alpha: f64, estimator: Option<Estimator>) -> Vec<f64> {
    let terms = terms(theta.as_tensor());
    let (_, inner) = gradient_at(&[theta.as_tensor().clone()], |p| match estimator {
        Some(est) => inner_surrogate(est, &log_probs(&p[0]), &terms),
        None => Ok(exact_objective(&p[0], &REWARD)),
    })
    .unwrap();
    let adapted = (theta.as_tensor() + (&inner[0] * alpha).unwrap()).unwrap();
    to_vec(&grad(&exact_objective(&adapted, &REWARD_OUTER), theta))
}

#[test]
fn formulation_one_meta_gradient_is_matched_as_the_theory_says() {
    higher_order::run(|| {
        let theta = theta();
        let alpha = 0.5;
        let exact = meta_gradient(&theta, alpha, None);
        let dice = meta_gradient(&theta, alpha, Some(Estimator::Dice));
        let lvc = meta_gradient(&theta, alpha, Some(Estimator::Lvc));
        let maml = meta_gradient(&theta, alpha, Some(Estimator::Maml));
        // The outer gradient at theta' (the same theta' for all: equal inner gradients).
        let adapted = {
            let g = grad(&exact_objective(theta.as_tensor(), &REWARD), &theta);
            Var::from_tensor(&(theta.as_tensor() + (g * alpha)?)?.detach())?
        };
        let outer = to_vec(&grad(
            &exact_objective(adapted.as_tensor(), &REWARD_OUTER),
            &adapted,
        ));
        let (h1, h2, _) = decomposition(&theta);
        // (I + alpha H)^T grad J'(theta') for a curvature H.
        let transform = |h: &Matrix| -> Vec<f64> {
            (0..N)
                .map(|i| outer[i] + alpha * (0..N).map(|j| h[j][i] * outer[j]).sum::<f64>())
                .collect()
        };
        let close = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 2e-4);
        assert!(close(&dice, &exact), "DiCE {dice:?} vs exact {exact:?}");
        assert!(close(&lvc, &transform(&add(&h1, &h2))), "LVC uses H1 + H2");
        assert!(close(&maml, &transform(&h2)), "MAML uses H2 only");
        assert!(!close(&lvc, &exact) && !close(&maml, &exact));
        Ok(())
    })
    .unwrap();
}
