//! Train MAAC (thesis Ch. 7) on the user-defined servo of `servo/mod.rs`: a soft actor-critic
//! whose actor follows the pathwise gradient of a 3-step return through a learned
//! probabilistic ensemble, ended by the twin Q. `Variant::Sac` or `Variant::Mbpo` run the
//! baselines on the same loop.
//!
//! Run: `cargo run --release --example servo_maac`.

use mbrl_core::seeding::{stream_rng, Stream};
use mbrl_core::Result;
use mbrl_maac::actor::ActorConfig;
use mbrl_maac::agent::SacConfig;
use mbrl_maac::config::{ImaginationConfig, OffPolicyConfig};
use mbrl_maac::imagined::RolloutSchedule;
use mbrl_maac::trainer::{OffPolicyTrainer, Settings, Variant};
use mbrl_models::{EarlyStoppingRule, EnsembleConfig, Head, MlpEnsemble};

mod servo;

/// MAAC on the servo, seeded: one iteration is one 100-step episode.
fn maac(seed: u64) -> Result<OffPolicyTrainer> {
    let env = servo::servo_factory()?()?;
    let ensemble = EnsembleConfig {
        hidden_sizes: vec![64, 64],
        head: Head::Probabilistic,
        early_stopping: EarlyStoppingRule::MovingAverage,
        moving_average_persistence: 0.9,
        max_epochs: 100,
        ..Default::default()
    };
    let mut model_rng = stream_rng(seed, Stream::Model);
    let model = MlpEnsemble::new(&ensemble, 2, 1, &mut model_rng)?;
    let settings = Settings {
        actor: ActorConfig {
            hidden_sizes: vec![64, 64],
            ..Default::default()
        },
        sac: SacConfig {
            critic_hidden_sizes: vec![64, 64],
            ..Default::default()
        },
        off_policy: OffPolicyConfig {
            steps_per_iteration: 100,
            random_steps: 200,
            updates_per_step: 5,
            ..Default::default()
        },
        imagination: ImaginationConfig {
            model_train_every: 100,
            rollout_every: 100,
            rollout_batch: 2000,
            rollout_schedule: RolloutSchedule([1, 10, 1, 1]),
            ..Default::default()
        },
        ..Default::default()
    };
    OffPolicyTrainer::new(
        Variant::Maac,
        env,
        Some((Box::new(model), model_rng)),
        seed,
        settings,
    )
}

fn main() -> Result<()> {
    servo::learning_curve(&mut maac(0)?, 10)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maac_learns_the_servo() {
        // Measured (AMD EPYC, 2026-12-07): -16.88, -8.41, -4.65, -2.49, -2.66, -2.91 after each
        // 100-step episode (the first two of random actions); random actions -174.62 on the
        // same 10 episodes.
        let curve = servo::learning_curve(&mut maac(0).unwrap(), 6).unwrap();
        let random = servo::random_return().unwrap();
        let (_, ret) = curve[curve.len() - 1];
        assert!(ret > -4.0, "{curve:?} (random actions {random:.2})");
    }
}
