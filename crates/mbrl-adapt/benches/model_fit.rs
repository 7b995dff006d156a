//! One step of the model fit at the thesis's sizes (GrBAL's half-cheetah settings: the 3 x 512
//! ReLU state-change MLP on obs 17 / act 6, meta-batch 10 windows of `M = K = 16`), timed with
//! `mbrl_core::timing`'s protocol. A study run's cost is mostly this fit (it runs `max_epochs`
//! passes whose length grows with the data):
//! - `grbal_meta_step_second_order`: adapt each window on its first 16 transitions, the loss on
//!   the next 16, one Adam step through the inner step (GrBAL's default);
//! - `grbal_meta_step_first_order`: the same with the inner gradient detached;
//! - `mb_supervised_step`: MB's plain regression step on the same windows;
//! - `grbal_validation_80_windows`: the pre- and post-adaptation losses of 80 windows (about
//!   2500 validation transitions, as after 25k real steps), computed once per epoch.
//!
//! Run: `cargo bench -p mbrl-adapt --bench model_fit -- [--warmup S] [--measure S]
//! [--only NAME]`.

use candle_core::Device;
use mbrl_adapt::adaptation::InnerLearningRate;
use mbrl_adapt::model::DeltaModel;
use mbrl_adapt::segments::Windows;
use mbrl_adapt::training::{ModelLearner, Objective, WindowLearner};
use mbrl_core::policy::standard_normal;
use mbrl_core::timing::TimingProtocol;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const OBS: usize = 17;
const ACT: usize = 6;
const PAST: usize = 16;
const WINDOW: usize = 32;
const META_BATCH: usize = 10;
const HIDDEN: [usize; 3] = [512, 512, 512];

/// `n` windows of random transitions.
fn windows(n: usize, rng: &mut ChaCha8Rng) -> Windows {
    let rows = |d: usize, rng: &mut ChaCha8Rng| {
        standard_normal(&[n, WINDOW, d], rng, &Device::Cpu).expect("random rows")
    };
    Windows {
        obs: rows(OBS, rng),
        act: rows(ACT, rng),
        next_obs: rows(OBS, rng),
    }
}

fn learner(objective: Objective, rng: &mut ChaCha8Rng) -> ModelLearner {
    let model = DeltaModel::new(OBS, ACT, &HIDDEN, rng).expect("model");
    let rates = InnerLearningRate::new(model.mlp().vars().len(), 0.001, false).expect("rates");
    ModelLearner::new(model, rates, objective, 1e-3).expect("learner")
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let protocol = TimingProtocol::from_args(&args).unwrap_or_else(|e| panic!("{e}"));
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let batch = windows(META_BATCH, &mut rng);
    let validation = windows(80, &mut rng);
    for (name, objective) in [
        (
            "grbal_meta_step_second_order",
            Objective::MetaLearned { first_order: false },
        ),
        (
            "grbal_meta_step_first_order",
            Objective::MetaLearned { first_order: true },
        ),
        ("mb_supervised_step", Objective::Supervised),
    ] {
        let mut learner = learner(objective, &mut rng);
        protocol.timed(name, || {
            learner.step(&batch, PAST).expect("step");
        });
    }
    let learner = learner(Objective::MetaLearned { first_order: false }, &mut rng);
    protocol.timed("grbal_validation_80_windows", || {
        learner.losses(&validation, PAST).expect("losses");
    });
}
