//! Train ME-TRPO (thesis Ch. 4) on a user-defined environment from code: the servo of
//! `servo/mod.rs`, a learned 5-member ensemble, TRPO in imagination.
//!
//! Run: `cargo run --release --example servo_me_trpo` (about 30 s on 2 cores).

use mbrl_core::seeding::{stream_rng, Stream};
use mbrl_core::Result;
use mbrl_models::{EnsembleConfig, MlpEnsemble};
use mbrl_policy_opt::me_trpo::{MeTrpo, MeTrpoConfig, Settings};

mod servo;

/// ME-TRPO on the servo, seeded: `steps_per_iteration` real steps per iteration.
fn me_trpo(seed: u64, steps_per_iteration: usize) -> Result<MeTrpo> {
    let env = servo::servo_factory()?()?;
    let (obs_dim, act_dim) = (2, 1);
    let ensemble = EnsembleConfig {
        hidden_sizes: vec![64, 64],
        max_epochs: 200,
        ..Default::default()
    };
    let mut model_rng = stream_rng(seed, Stream::Model);
    let model = MlpEnsemble::new(&ensemble, obs_dim, act_dim, &mut model_rng)?;
    let settings = Settings {
        me_trpo: MeTrpoConfig {
            steps_per_iteration,
            imagined_rollouts: 200,
            start_state_pool: 1000,
            validation_rollouts: 100,
            max_policy_iterations: 50,
            ..Default::default()
        },
        ..Default::default()
    };
    MeTrpo::new(env, Box::new(model), model_rng, seed, settings)
}

fn main() -> Result<()> {
    servo::learning_curve(&mut me_trpo(0, 1000)?, 4)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn me_trpo_learns_the_servo() {
        // Measured (AMD EPYC, 2026-12-07): -2.04 after 1000 real steps; random actions -174.62
        // on the same 10 episodes.
        let curve = servo::learning_curve(&mut me_trpo(0, 1000).unwrap(), 1).unwrap();
        let random = servo::random_return().unwrap();
        let (_, ret) = curve[curve.len() - 1];
        assert!(ret > -3.0, "{curve:?} (random actions {random:.2})");
    }
}
