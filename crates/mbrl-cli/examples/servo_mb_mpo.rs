//! Train MB-MPO (thesis Ch. 5) on the user-defined servo of `servo/mod.rs`: a policy
//! meta-learned to adapt, with one gradient step, to each member of a learned ensemble.
//!
//! Run: `cargo run --release --example servo_mb_mpo`.

use mbrl_core::seeding::{stream_rng, Stream};
use mbrl_core::Result;
use mbrl_meta::mb_mpo::{MbMpo, MbMpoConfig, Settings};
use mbrl_models::{EnsembleConfig, MlpEnsemble};

mod servo;

/// MB-MPO on the servo, seeded.
fn mb_mpo(seed: u64) -> Result<MbMpo> {
    let env = servo::servo_factory()?()?;
    let ensemble = EnsembleConfig {
        hidden_sizes: vec![64, 64],
        max_epochs: 200,
        ..Default::default()
    };
    let mut model_rng = stream_rng(seed, Stream::Model);
    let model = MlpEnsemble::new(&ensemble, 2, 1, &mut model_rng)?;
    let settings = Settings {
        mb_mpo: MbMpoConfig {
            initial_random_steps: 500,
            steps_per_iteration: 500,
            meta_steps: 15,
            tasks_per_model: 1,
            rollouts_per_task: 40,
            start_state_pool: 1000,
            ..Default::default()
        },
        ..Default::default()
    };
    MbMpo::new(env, Box::new(model), model_rng, seed, settings)
}

fn main() -> Result<()> {
    servo::learning_curve(&mut mb_mpo(0)?, 4)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mb_mpo_learns_the_servo() {
        // Measured (AMD EPYC, 2026-12-07): -2.01 after the first iteration (500 random and 500
        // adapted-policy real steps); random actions -174.62 on the same 10 episodes.
        let curve = servo::learning_curve(&mut mb_mpo(0).unwrap(), 1).unwrap();
        let random = servo::random_return().unwrap();
        let (_, ret) = curve[curve.len() - 1];
        assert!(ret > -3.0, "{curve:?} (random actions {random:.2})");
    }
}
