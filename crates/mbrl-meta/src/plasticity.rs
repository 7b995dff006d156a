//! Model uncertainty and policy plasticity over a set of states (thesis Sec. 5.5.4, Fig. 11).
//!
//! The thesis hypothesises that MB-MPO's meta-optimisation makes the policy more *plastic*
//! (its action distribution moves more under the inner step) where the ensemble is more
//! *uncertain*. Per state `s`:
//! - uncertainty, [`ensemble_std`]: the standard deviation across members of the predicted next
//!   state `f_k(s, a)` (population std over the `K` members, averaged over the state
//!   dimensions), with `a` the pre-update policy's mean action;
//! - plasticity, [`plasticity`]: the KL divergence between the pre-update policy and each
//!   member's adapted policy, averaged over members, `1/K sum_k KL(pi_theta(.|s) ||
//!   pi_theta'_k(.|s))` (Sec. 5.5.4: "the average KL-divergence between pi_theta and the
//!   different adapted policies").
//!
//! [`grid`] lays out the states of a square arena, [`pearson`], [`spearman`] and
//! [`partial_pearson`] measure how the two maps relate.

use candle_core::{DType, Device, Tensor};
use mbrl_core::model::DynamicsModel;
use mbrl_core::policy::GaussianPolicy;
use mbrl_core::{Error, Result};

/// `n * n` states of `[-extent, extent]^2` as `[n * n, 2]`, row `i * n + j` at
/// `(x_j, y_i)` with `x_j = -extent + 2 extent j / (n - 1)` (cell centres of a heat map whose
/// rows are `y` and columns `x`).
pub fn grid(extent: f64, n: usize) -> Result<Tensor> {
    if n < 2 || !(extent.is_finite() && extent > 0.0) {
        return Err(Error::InvalidArgument(format!(
            "a grid needs at least 2 points per side and a positive extent, got {n} and {extent}"
        )));
    }
    let coord = |j: usize| (-extent + 2.0 * extent * j as f64 / (n - 1) as f64) as f32;
    let values: Vec<f32> = (0..n)
        .flat_map(|i| (0..n).flat_map(move |j| [coord(j), coord(i)]))
        .collect();
    Ok(Tensor::from_vec(values, (n * n, 2), &Device::Cpu)?)
}

/// The ensemble's epistemic uncertainty at `(obs, act)` (`[B, dim]` each): per row, the
/// population standard deviation over members of the predicted next observation, averaged
/// over the observation dimensions (`[B]`). Zero when all members agree.
pub fn ensemble_std<M: DynamicsModel + ?Sized>(
    model: &M,
    obs: &Tensor,
    act: &Tensor,
) -> Result<Tensor> {
    let mean = model.predict_members(obs, act)?.mean.to_dtype(DType::F64)?;
    let centred = mean.broadcast_sub(&mean.mean_keepdim(0)?)?;
    Ok(centred.sqr()?.mean(0)?.sqrt()?.mean(1)?)
}

/// The policy's plasticity at each row of `obs` (`[B]`): the mean over `adapted` (one
/// parameter set `theta'_k` per member) of `KL(pi_theta(.|s) || pi_theta'_k(.|s))`.
pub fn plasticity(
    policy: &dyn GaussianPolicy,
    theta: &[Tensor],
    adapted: &[Vec<Tensor>],
    obs: &Tensor,
) -> Result<Tensor> {
    if adapted.is_empty() {
        return Err(Error::InvalidArgument(
            "plasticity needs at least one adapted policy".into(),
        ));
    }
    let pre = policy.distribution_with(theta, obs)?;
    let kls = adapted
        .iter()
        .map(|params| pre.kl(&policy.distribution_with(params, obs)?))
        .collect::<Result<Vec<_>>>()?;
    Ok(Tensor::stack(&kls, 0)?.to_dtype(DType::F64)?.mean(0)?)
}

/// Pearson's correlation coefficient of `a` and `b` (NaN if either is constant or the
/// lengths differ).
pub fn pearson(a: &[f64], b: &[f64]) -> f64 {
    if a.len() != b.len() || a.is_empty() {
        return f64::NAN;
    }
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut cov, mut va, mut vb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        cov += (x - ma) * (y - mb);
        va += (x - ma).powi(2);
        vb += (y - mb).powi(2);
    }
    if va == 0.0 || vb == 0.0 {
        return f64::NAN;
    }
    cov / (va * vb).sqrt()
}

/// Pearson's partial correlation of `a` and `b` given `z`: their correlation once the linear
/// dependence of both on `z` is removed (NaN when undefined). In Fig. 11 `z` is the distance
/// to the origin, on which both maps may depend for reasons of their own.
pub fn partial_pearson(a: &[f64], b: &[f64], z: &[f64]) -> f64 {
    let (ab, az, bz) = (pearson(a, b), pearson(a, z), pearson(b, z));
    (ab - az * bz) / ((1.0 - az * az) * (1.0 - bz * bz)).sqrt()
}

/// Spearman's rank correlation of `a` and `b`: Pearson's on the ranks, ties sharing their
/// mean rank.
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    pearson(&ranks(a), &ranks(b))
}

/// Ranks `0..n` of `values`, tied values getting the mean of their ranks.
fn ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&i, &j| values[i].total_cmp(&values[j]));
    let mut ranks = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }
        let mean_rank = (start + end - 1) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = mean_rank;
        }
        start = end;
    }
    ranks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grid_runs_over_x_within_rows_of_y() {
        let g = grid(2.0, 3).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(g.len(), 9);
        assert_eq!(g[0], [-2.0, -2.0]);
        assert_eq!(g[1], [0.0, -2.0]);
        assert_eq!(g[3], [-2.0, 0.0]);
        assert_eq!(g[8], [2.0, 2.0]);
        assert!(grid(2.0, 1).is_err());
        assert!(grid(-1.0, 5).is_err());
    }

    #[test]
    fn correlations_match_hand_computed_values() {
        let a = [1.0, 2.0, 3.0, 4.0];
        assert!((pearson(&a, &[2.0, 4.0, 6.0, 8.0]) - 1.0).abs() < 1e-12);
        assert!((pearson(&a, &[4.0, 3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
        // x = (-1.5, -0.5, 0.5, 1.5), y - mean(y) = (-0.75, -0.75, -0.75, 2.25):
        // cov = 4.5, var_x = 5, var_y = 6.75.
        let r = pearson(&a, &[0.0, 0.0, 0.0, 3.0]);
        assert!((r - 4.5 / (5.0f64 * 6.75).sqrt()).abs() < 1e-12, "{r}");
        // A monotone but non-linear relation has rank correlation 1.
        assert!((spearman(&a, &[1.0, 10.0, 100.0, 1000.0]) - 1.0).abs() < 1e-12);
        assert_eq!(ranks(&[3.0, 1.0, 3.0, 2.0]), vec![2.5, 0.0, 2.5, 1.0]);
        assert!(pearson(&a, &[1.0; 4]).is_nan());
        // a = z + u, b = z + v with u, v uncorrelated: strongly correlated through z
        // (r = 0.794), barely once z is partialled out (-0.108, computed independently).
        let z = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
        let u = [1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0, -1.0];
        let v = [1.0, 1.0, -1.0, -1.0, 1.0, 1.0, -1.0, -1.0];
        let plus = |e: &[f64]| z.iter().zip(e).map(|(p, q)| p + q).collect::<Vec<_>>();
        let (pa, pb) = (plus(&u), plus(&v));
        assert!((pearson(&pa, &pb) - 0.793_884_186).abs() < 1e-8);
        let partial = partial_pearson(&pa, &pb, &z);
        assert!((partial + 0.108_465_229).abs() < 1e-8, "{partial}");
    }
}
