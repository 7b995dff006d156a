//! One control step of the adaptive controllers at the thesis's sizes (Sec. 9.4 and the
//! reference's settings), timed with `mbrl_core::timing`'s protocol so that
//! `scripts/perf_compare.py` pairs each with `scripts/perf_torch.py`'s same shapes. The robot is
//! the rapier half-cheetah (obs 17, act 6, reward `v_x - 0.05 |a|^2`); the state-change MLP is
//! 3 x 512 ReLU; each step adapts on the last `M = 16` transitions, then plans:
//! - `grbal_step_mppi`: GrBAL's inner step, then MPPI with 500 candidates over 10 steps (one
//!   iteration, warm start);
//! - `grbal_step_random_shooting`: the same adaptation, then random shooting with 500
//!   candidates over 10 steps (the reference's planner);
//! - `rebal_step_mppi`: ReBAL's GRU (256 units) reads the 16 transitions, then the same MPPI in
//!   the context-conditioned 3 x 512 MLP.
//!
//! A real robot at 20 Hz leaves 50 ms per step.
//!
//! Run: `cargo bench -p mbrl-adapt --bench control_step -- [--warmup S] [--measure S]
//! [--only NAME]`.

use candle_core::{Device, Tensor};
use mbrl_adapt::controller::{AdaptiveController, OnlineUpdate};
use mbrl_adapt::model::DeltaModel;
use mbrl_adapt::recurrent::GruDeltaModel;
use mbrl_adapt::recurrent_controller::RecurrentController;
use mbrl_core::env::Env;
use mbrl_core::policy::{standard_normal, Policy};
use mbrl_core::timing::TimingProtocol;
use mbrl_envs::registry::{make_factory, EnvConfig};
use mbrl_policy_opt::planners::{Planner, PlannerConfig, PlannerKind};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const OBS: usize = 17;
const ACT: usize = 6;
const PAST: usize = 16;
const HIDDEN: [usize; 3] = [512, 512, 512];

fn planner(env: &dyn Env, kind: PlannerKind) -> Planner {
    PlannerConfig {
        kind,
        candidates: 500,
        horizon: 10,
        iterations: 1,
        ..PlannerConfig::default()
    }
    .build(env.action_space().as_box().expect("box actions"))
    .expect("planner")
}

fn rows(n: usize, d: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    standard_normal(&[n, d], rng, &Device::Cpu)
        .and_then(|t| Ok(t.flatten_all()?.to_vec1::<f32>()?))
        .expect("random rows")
}

/// Feeds `policy` `PAST` random transitions, then times one action from a random state.
fn time_steps(protocol: &TimingProtocol, name: &str, policy: &dyn Policy, rng: &mut ChaCha8Rng) {
    policy.begin_episode().expect("episode");
    let (obs, act, next) = (
        rows(PAST, OBS, rng),
        rows(PAST, ACT, rng),
        rows(PAST, OBS, rng),
    );
    for t in 0..PAST {
        policy
            .observe(
                &obs[t * OBS..(t + 1) * OBS],
                &act[t * ACT..(t + 1) * ACT]
                    .iter()
                    .map(|a| a.clamp(-1.0, 1.0))
                    .collect::<Vec<_>>(),
                &next[t * OBS..(t + 1) * OBS],
            )
            .expect("observe");
    }
    let state = Tensor::from_vec(rows(1, OBS, rng), (1, OBS), &Device::Cpu).expect("state");
    let mut act_rng = ChaCha8Rng::seed_from_u64(1);
    protocol.timed(name, || {
        policy.act(&state, true, &mut act_rng).expect("act");
    });
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let protocol = TimingProtocol::from_args(&args).unwrap_or_else(|e| panic!("{e}"));
    let config = EnvConfig {
        name: "half-cheetah".into(),
        ..EnvConfig::default()
    };
    let env = make_factory(&config).expect("factory")().expect("half-cheetah");
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    for (name, kind) in [
        ("grbal_step_mppi", PlannerKind::Mppi),
        ("grbal_step_random_shooting", PlannerKind::RandomShooting),
    ] {
        let model = DeltaModel::new(OBS, ACT, &HIDDEN, &mut rng).expect("model");
        let rate = Tensor::new(&[0.001f32], &Device::Cpu).expect("rate");
        let update = OnlineUpdate::FromPrior {
            rates: vec![rate; 2 * HIDDEN.len() + 2],
        };
        let controller = AdaptiveController::new(
            model,
            update,
            PAST,
            planner(env.as_ref(), kind),
            env.task_functions(),
        )
        .expect("controller");
        time_steps(&protocol, name, &controller, &mut rng);
    }
    let model = GruDeltaModel::new(OBS, ACT, 256, &HIDDEN, &mut rng).expect("model");
    let controller = RecurrentController::new(
        model,
        PAST,
        planner(env.as_ref(), PlannerKind::Mppi),
        env.task_functions(),
    )
    .expect("controller");
    time_steps(&protocol, "rebal_step_mppi", &controller, &mut rng);
}
