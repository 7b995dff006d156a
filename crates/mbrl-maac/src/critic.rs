//! Twin Q-functions with Polyak-averaged targets (clipped double Q, Fujimoto et al. 2018; SAC).
//!
//! Both critics are one stacked MLP of two members on `[obs, act]`, so every evaluation is one
//! batched computation; `q` returns `[2, B]`, `min_q` the element-wise minimum `[B]`. The
//! target critic is a separate copy of the weights, moved towards the online ones by
//! `target = tau * online + (1 - tau) * target` after every update.

use candle_core::{Tensor, D};
use mbrl_core::Result;
use rand::RngCore;

use mbrl_core::mlp::{Mlp, MlpShape};

/// Which weights a critic evaluation uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CriticWeights {
    /// The online weights, recording the graph (the critic's own loss).
    Online,
    /// Detached views of the online weights: differentiable in the inputs only (the actor's
    /// loss).
    OnlineDetached,
    /// The Polyak-averaged target weights (Bellman targets).
    Target,
}

/// The twin critic and its target.
#[derive(Debug)]
pub struct TwinCritic {
    net: Mlp,
    target: Vec<Tensor>,
}

impl TwinCritic {
    /// Two fresh critics on `obs_dim + act_dim` inputs with `hidden` widths; the target starts
    /// equal to them.
    pub fn new(
        obs_dim: usize,
        act_dim: usize,
        hidden: &[usize],
        rng: &mut dyn RngCore,
    ) -> Result<Self> {
        let net = Mlp::new(MlpShape::layers(obs_dim + act_dim, hidden, 1, Some(2)), rng)?;
        let target = net.copies()?;
        Ok(Self { net, target })
    }

    /// An independent copy of the online and target networks.
    pub fn snapshot(&self) -> Result<Self> {
        Ok(Self {
            net: self.net.snapshot()?,
            target: self.target.clone(),
        })
    }

    /// The online network (its variables are the critic's parameters).
    pub fn net(&self) -> &Mlp {
        &self.net
    }

    /// The target weights.
    pub fn target_weights(&self) -> &[Tensor] {
        &self.target
    }

    /// Replaces the target weights (checkpoint restore).
    pub fn set_target_weights(&mut self, weights: Vec<Tensor>) -> Result<()> {
        if weights.len() != self.target.len()
            || weights
                .iter()
                .zip(&self.target)
                .any(|(a, b)| a.dims() != b.dims())
        {
            return Err(mbrl_core::Error::InvalidArgument(
                "target critic weights of another shape".into(),
            ));
        }
        self.target = weights;
        Ok(())
    }

    /// Both critics' values `[2, B]` for `obs` `[B, O]` and `act` `[B, A]` (or, with a leading
    /// `2`, one batch per critic).
    pub fn q(&self, weights: CriticWeights, obs: &Tensor, act: &Tensor) -> Result<Tensor> {
        let x = Tensor::cat(&[obs, act], D::Minus1)?;
        let out = match weights {
            CriticWeights::Online => self.net.forward_with(&self.net.tracked(), &x)?,
            CriticWeights::OnlineDetached => self.net.forward_with(&self.net.detached(), &x)?,
            CriticWeights::Target => self.net.forward_with(&self.target, &x)?,
        };
        Ok(out.squeeze(D::Minus1)?)
    }

    /// `min(Q1, Q2)`, `[B]`.
    pub fn min_q(&self, weights: CriticWeights, obs: &Tensor, act: &Tensor) -> Result<Tensor> {
        Ok(self.q(weights, obs, act)?.min(0)?)
    }

    /// One Polyak step of the target towards the online weights.
    pub fn update_target(&mut self, tau: f64) -> Result<()> {
        self.target = polyak_update(&self.target, &self.net.detached(), tau)?;
        Ok(())
    }
}

/// Polyak averaging in place: `target = tau * online + (1 - tau) * target` (SAC's soft target
/// update).
pub fn polyak_update(target: &[Tensor], online: &[Tensor], tau: f64) -> Result<Vec<Tensor>> {
    target
        .iter()
        .zip(online)
        .map(|(t, o)| Ok(((o * tau)? + (t * (1.0 - tau))?)?.detach()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use rand::SeedableRng;

    #[test]
    fn polyak_moves_the_target_by_tau() {
        let t = vec![Tensor::new(&[0.0f32, 10.0], &Device::Cpu).unwrap()];
        let o = vec![Tensor::new(&[1.0f32, 0.0], &Device::Cpu).unwrap()];
        let next = polyak_update(&t, &o, 0.1).unwrap();
        let v: Vec<f32> = next[0].to_vec1().unwrap();
        assert!(
            (v[0] - 0.1).abs() < 1e-6 && (v[1] - 9.0).abs() < 1e-6,
            "{v:?}"
        );
    }

    /// With tau the target's distance to fixed online weights shrinks by (1 - tau) per step.
    #[test]
    fn targets_follow_polyak() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let mut critic = TwinCritic::new(3, 1, &[4], &mut rng).unwrap();
        let shifted: Vec<Tensor> = critic
            .net
            .copies()
            .unwrap()
            .iter()
            .map(|t| (t + 1.0).unwrap())
            .collect();
        critic.set_target_weights(shifted).unwrap();
        let gap = |c: &TwinCritic| -> f32 {
            c.target
                .iter()
                .zip(c.net.detached())
                .map(|(t, o)| {
                    (t - o)
                        .unwrap()
                        .abs()
                        .unwrap()
                        .max_all()
                        .unwrap()
                        .to_scalar::<f32>()
                        .unwrap()
                })
                .fold(0.0, f32::max)
        };
        assert!((gap(&critic) - 1.0).abs() < 1e-5);
        for _ in 0..10 {
            critic.update_target(0.1).unwrap();
        }
        let expected = 0.9f32.powi(10);
        assert!(
            (gap(&critic) - expected).abs() < 1e-4,
            "{} vs {expected}",
            gap(&critic)
        );
    }

    #[test]
    fn min_is_the_smaller_twin() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let critic = TwinCritic::new(2, 1, &[8], &mut rng).unwrap();
        let obs = Tensor::randn(0f32, 1.0, (6, 2), &Device::Cpu).unwrap();
        let act = Tensor::randn(0f32, 1.0, (6, 1), &Device::Cpu).unwrap();
        let q: Vec<Vec<f32>> = critic
            .q(CriticWeights::Online, &obs, &act)
            .unwrap()
            .to_vec2()
            .unwrap();
        let m: Vec<f32> = critic
            .min_q(CriticWeights::Target, &obs, &act)
            .unwrap()
            .to_vec1()
            .unwrap();
        for i in 0..6 {
            assert!((m[i] - q[0][i].min(q[1][i])).abs() < 1e-6);
        }
    }
}
