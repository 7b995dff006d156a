//! The uncertainty and plasticity maps of Sec. 5.5.4 (Fig. 11) on their edge cases: an
//! ensemble of identical members has zero uncertainty everywhere and members offset by known
//! constants have their known spread; MB-MPO with inner step size 0 adapts to no member, so
//! its plasticity map is zero everywhere, while with the thesis's step size it is not; and
//! `MbMpo::adapt_to_each_member` leaves training's random streams untouched.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use candle_core::{Device, Tensor};
use mbrl_core::algorithm::{Algorithm, BuildContext};
use mbrl_core::model::{DynamicsModel, MemberPredictions};
use mbrl_core::policy::GaussianPolicy;
use mbrl_core::Result;
use mbrl_envs::{make_factory, EnvConfig};
use mbrl_meta::mb_mpo::{MbMpo, MbMpoConfig, Settings};
use mbrl_meta::plasticity::{ensemble_std, grid, plasticity};
use mbrl_models::{ensemble_factory, EnsembleConfig};
use mbrl_policy_opt::model_data::env_and_model;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// `K` members predicting `s + a + offsets[k]` (the same offset in every dimension).
struct Offsets(Vec<f32>);

impl DynamicsModel for Offsets {
    fn ensemble_size(&self) -> usize {
        self.0.len()
    }

    fn predict_members(&self, obs: &Tensor, act: &Tensor) -> Result<MemberPredictions> {
        let next = (obs + act)?;
        let members = self
            .0
            .iter()
            .map(|&c| Ok((&next + c as f64)?))
            .collect::<Result<Vec<_>>>()?;
        Ok(MemberPredictions {
            mean: Tensor::stack(&members, 0)?,
            log_var: None,
        })
    }
}

fn max_abs(t: &Tensor) -> f64 {
    t.abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f64>()
        .unwrap()
}

#[test]
fn identical_members_have_zero_uncertainty_and_offsets_their_spread() {
    let states = grid(3.0, 7).unwrap();
    let act = (states.clone() * 0.05).unwrap();
    let identical = ensemble_std(&Offsets(vec![0.3; 5]), &states, &act).unwrap();
    assert_eq!(identical.dims(), [49]);
    assert_eq!(max_abs(&identical), 0.0);
    // Offsets -1, 0, 1: population std sqrt(2/3) in every state and dimension.
    let spread = ensemble_std(&Offsets(vec![-1.0, 0.0, 1.0]), &states, &act).unwrap();
    let err = max_abs(&(spread - (2.0f64 / 3.0).sqrt()).unwrap());
    assert!(err < 1e-6, "{err}");
}

/// MB-MPO on `point2d` with small budgets (as `mb_mpo_learning.rs`'s determinism test).
fn mb_mpo(inner_step_size: f64) -> MbMpo {
    let model = EnsembleConfig {
        members: 3,
        hidden_sizes: vec![32, 32],
        batch_size: 256,
        max_epochs: 30,
        ..EnsembleConfig::default()
    };
    let ctx = BuildContext {
        env_factory: make_factory(&EnvConfig::default()).unwrap(),
        model_factory: Some(ensemble_factory(model).unwrap()),
        seed: 2,
        config: serde_json::json!({}),
    };
    let (env, model, model_rng) = env_and_model(&ctx, "mb-mpo").unwrap();
    let settings = Settings {
        mb_mpo: MbMpoConfig {
            initial_random_steps: 300,
            steps_per_iteration: 60,
            meta_steps: 2,
            tasks_per_model: 1,
            rollouts_per_task: 10,
            start_state_pool: 100,
            inner_step_size,
            ..MbMpoConfig::default()
        },
        ..Settings::default()
    };
    MbMpo::new(env, model, model_rng, ctx.seed, settings).unwrap()
}

/// The plasticity map over a grid, from adaptation rollouts starting at 10 fixed states.
fn plasticity_map(algo: &MbMpo) -> Tensor {
    let starts = (grid(2.0, 4).unwrap().narrow(0, 3, 10).unwrap() * 0.9).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let adapted = algo.adapt_to_each_member(&starts, &mut rng).unwrap();
    assert_eq!(adapted.len(), algo.model().ensemble_size());
    let policy = algo.meta_policy();
    plasticity(
        policy,
        &policy.parameter_tensors(),
        &adapted,
        &grid(3.0, 9).unwrap(),
    )
    .unwrap()
}

#[test]
fn no_inner_step_means_no_plasticity_and_the_thesis_step_some() {
    let mut frozen = mb_mpo(0.0);
    frozen.train_iteration(1).unwrap();
    let map = plasticity_map(&frozen);
    assert_eq!(map.dims(), [81]);
    assert_eq!(max_abs(&map), 0.0);

    let mut plastic = mb_mpo(0.001);
    plastic.train_iteration(1).unwrap();
    let map = plasticity_map(&plastic).to_vec1::<f64>().unwrap();
    assert!(map.iter().all(|&kl| kl > 0.0), "{map:?}");
    assert!(map.iter().all(|kl| kl.is_finite()), "{map:?}");
}

#[test]
fn adapting_for_analysis_does_not_change_training() {
    let mut a = mb_mpo(0.001);
    let mut b = mb_mpo(0.001);
    a.train_iteration(1).unwrap();
    b.train_iteration(1).unwrap();
    plasticity_map(&a);
    let (sa, sb) = (a.train_iteration(2).unwrap(), b.train_iteration(2).unwrap());
    let key = "post_update_imagined_return";
    assert_eq!(sa.metrics[key].to_bits(), sb.metrics[key].to_bits());
    let obs = Tensor::new(&[[0.5f32, -1.0]], &Device::Cpu).unwrap();
    let act = |m: &MbMpo| {
        m.meta_policy()
            .distribution(&obs)
            .unwrap()
            .mean
            .to_vec2::<f32>()
            .unwrap()
    };
    assert_eq!(act(&a), act(&b));
}
