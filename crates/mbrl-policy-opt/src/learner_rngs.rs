//! The random streams of a model-based learner (ME-TRPO, MB-MPO, BPTT) and what of them a
//! checkpoint keeps, so that a resumed run draws exactly what the uninterrupted one would.

use mbrl_core::seeding::RngState;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// The four streams a model-based learner draws from.
pub struct LearnerRngs {
    /// Real-environment resets and data-collection noise.
    pub env: ChaCha8Rng,
    /// Policy initialisation and action sampling.
    pub policy: ChaCha8Rng,
    /// Model initialisation, minibatch order and data splits.
    pub model: ChaCha8Rng,
    /// Imagined rollouts: start states and ensemble picks.
    pub sampler: ChaCha8Rng,
}

/// A model-based learner's progress as saved in a checkpoint: the real steps taken and the
/// positions of its [`LearnerRngs`].
#[derive(Serialize, Deserialize)]
pub struct LearnerProgress {
    env_steps: u64,
    env_rng: RngState,
    policy_rng: RngState,
    model_rng: RngState,
    sampler_rng: RngState,
}

impl LearnerProgress {
    /// Where a learner with `env_steps` real steps and `rngs` is.
    pub fn capture(env_steps: u64, rngs: &LearnerRngs) -> Self {
        Self {
            env_steps,
            env_rng: RngState::capture(&rngs.env),
            policy_rng: RngState::capture(&rngs.policy),
            model_rng: RngState::capture(&rngs.model),
            sampler_rng: RngState::capture(&rngs.sampler),
        }
    }

    /// Puts the saved streams back into `rngs`; returns the saved real-step count.
    pub fn restore(&self, rngs: &mut LearnerRngs) -> u64 {
        rngs.env = self.env_rng.restore();
        rngs.policy = self.policy_rng.restore();
        rngs.model = self.model_rng.restore();
        rngs.sampler = self.sampler_rng.restore();
        self.env_steps
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mbrl_core::seeding::{stream_rng, Stream};
    use rand::RngCore;

    fn rngs(seed: u64) -> LearnerRngs {
        LearnerRngs {
            env: stream_rng(seed, Stream::Env),
            policy: stream_rng(seed, Stream::Policy),
            model: stream_rng(seed, Stream::Model),
            sampler: stream_rng(seed, Stream::Sampler),
        }
    }

    fn draws(rngs: &mut LearnerRngs) -> [u64; 4] {
        [
            rngs.env.next_u64(),
            rngs.policy.next_u64(),
            rngs.model.next_u64(),
            rngs.sampler.next_u64(),
        ]
    }

    #[test]
    fn restored_streams_continue_where_the_captured_ones_were() {
        let mut original = rngs(3);
        draws(&mut original);
        let saved = serde_json::to_value(LearnerProgress::capture(42, &original)).unwrap();
        let mut other = rngs(7);
        let progress: LearnerProgress = serde_json::from_value(saved).unwrap();
        assert_eq!(progress.restore(&mut other), 42);
        assert_eq!(draws(&mut other), draws(&mut original));
    }
}
