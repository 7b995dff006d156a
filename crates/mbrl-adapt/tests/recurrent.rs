//! ReBAL: the gradient of truncated backpropagation through time against central
//! differences, a controller whose hidden state comes from earlier transitions alone and never
//! plans from a NaN, and, on held-out pendulums of the mass-length family, a GRU that predicts
//! the next `K` steps better after reading the `M` before them than without, and better than MB.

mod common;

use mbrl_adapt::adaptation::InnerLearningRate;
use mbrl_adapt::config::{AdaptConfig, RebalConfig};
use mbrl_adapt::model::{DeltaModel, Normalization};
use mbrl_adapt::recurrent::{GruDeltaModel, RecurrentLearner};
use mbrl_adapt::recurrent_controller::RecurrentController;
use mbrl_adapt::segments::{SegmentBuffer, Windows};
use mbrl_adapt::training::{ModelLearner, Objective, WindowLearner};
use mbrl_core::env::Env;
use mbrl_core::policy::Policy;
use mbrl_core::testing::max_abs_diff;
use mbrl_policy_opt::planners::{PlannerConfig, PlannerKind};
use rand::SeedableRng;

const PAST: usize = 4;
const WINDOW: usize = 8;

fn windows() -> Windows {
    common::gain_windows(WINDOW)
}

fn gru() -> GruDeltaModel {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let mut model = GruDeltaModel::new(2, 1, 8, &[16], &mut rng).unwrap();
    model.set_normalization(Normalization::identity(2, 1).unwrap());
    model
}

/// The windows' loss on their last steps under the context of their first `PAST`, with every weight moved by
/// `step * direction`.
fn loss_along(direction: &[f32], step: f32) -> f64 {
    let model = gru();
    let moved = common::moved_along(&model.vars(), direction, step);
    let loss = model.future_loss(&moved, &windows(), PAST, true).unwrap();
    loss.to_scalar::<f32>().unwrap() as f64
}

#[test]
fn the_bptt_gradient_matches_central_differences() {
    let model = gru();
    let loss = model
        .future_loss(&model.tracked(), &windows(), PAST, true)
        .unwrap();
    let grads = loss.backward().unwrap();
    let mut gradient = Vec::new();
    for var in model.vars() {
        let g = grads
            .get(var.as_tensor())
            .expect("every weight has a gradient");
        gradient.extend(g.flatten_all().unwrap().to_vec1::<f32>().unwrap());
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
    // A short step keeps clear of the decoder's ReLU kinks.
    let eps = 1e-3f32;
    let mut worst = 0.0f64;
    for _ in 0..4 {
        let v = common::unit_direction(gradient.len(), &mut rng);
        let fd = (loss_along(&v, eps) - loss_along(&v, -eps)) / (2.0 * eps as f64);
        worst = worst.max((common::dot(&gradient, &v) - fd).abs() / fd.abs().max(1e-3));
    }
    println!("BPTT gradient vs central differences: worst relative error {worst:.2e}");
    assert!(worst < 0.02, "relative error {worst}");
}

fn controller(env: &dyn Env, past_steps: usize) -> RecurrentController {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let model = GruDeltaModel::new(3, 1, 8, &[16], &mut rng).unwrap();
    let planner = PlannerConfig {
        kind: PlannerKind::RandomShooting,
        candidates: 64,
        horizon: 5,
        ..PlannerConfig::default()
    }
    .build(env.action_space().as_box().unwrap())
    .unwrap();
    RecurrentController::new(model, past_steps, planner, env.task_functions()).unwrap()
}

#[test]
fn the_hidden_state_behind_each_action_was_read_from_earlier_transitions_only() {
    const M: usize = 4;
    let mut env = common::pendulum();
    let controller = controller(env.as_ref(), M);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let (mut obs, _) = env.reset(Some(5)).unwrap();
    controller.begin_episode().unwrap();
    let mut past: Vec<(Vec<f32>, Vec<f32>, Vec<f32>)> = Vec::new();
    for t in 0..12 {
        let action = controller
            .act(&obs.unsqueeze(0).unwrap(), true, &mut rng)
            .unwrap();
        let window = controller.last_adaptation_window();
        let expected = &past[past.len().saturating_sub(M)..];
        assert_eq!(window.len(), expected.len(), "step {t}");
        for (w, e) in window.iter().zip(expected) {
            assert_eq!(
                (&w.obs, &w.act, &w.next_obs),
                (&e.0, &e.1, &e.2),
                "step {t}"
            );
        }
        let state = controller.last_state().unwrap();
        let recomputed = controller.hidden_state(&window).unwrap();
        assert_eq!(max_abs_diff(&state, &recomputed).unwrap(), 0.0, "step {t}");
        let magnitude = state.abs().unwrap().sum_all().unwrap();
        let magnitude = magnitude.to_scalar::<f32>().unwrap();
        match t {
            0 => assert_eq!(magnitude, 0.0, "no past: the zero state"),
            _ => assert!(magnitude > 0.0, "step {t}"),
        }
        let action = action.squeeze(0).unwrap();
        let step = env.step(&action).unwrap();
        let row = (
            obs.to_vec1::<f32>().unwrap(),
            action.to_vec1::<f32>().unwrap(),
            step.obs.to_vec1::<f32>().unwrap(),
        );
        controller.observe(&row.0, &row.1, &row.2).unwrap();
        past.push(row);
        obs = step.obs;
    }
    controller.begin_episode().unwrap();
    controller
        .act(&obs.unsqueeze(0).unwrap(), true, &mut rng)
        .unwrap();
    assert!(controller.last_adaptation_window().is_empty());
}

#[test]
fn a_non_finite_hidden_state_is_reported_and_the_zero_state_plans() {
    let mut env = common::pendulum();
    let controller = controller(env.as_ref(), 4);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let (obs, _) = env.reset(Some(5)).unwrap();
    controller.begin_episode().unwrap();
    // A sensor glitch: a NaN in the remembered past.
    controller
        .observe(&[f32::NAN, 0.0, 0.0], &[0.0], &[0.0, 1.0, 0.0])
        .unwrap();
    let action = controller
        .act(&obs.unsqueeze(0).unwrap(), true, &mut rng)
        .unwrap();
    assert!(action.to_vec2::<f32>().unwrap()[0][0].is_finite());
    assert_eq!(controller.non_finite_adaptations(), 1);
    let state = controller.last_state().unwrap();
    assert_eq!(
        state
            .abs()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap(),
        0.0
    );
}

/// Held-out windows of the mass-length family's test tasks, random actions.
fn held_out_windows(config: &AdaptConfig) -> Windows {
    let mut env = common::pendulum();
    let tasks = env.task_distribution().unwrap().test_tasks();
    let mut buffer = SegmentBuffer::new(3, 1);
    for (i, task) in tasks.iter().enumerate() {
        for e in 0..2 {
            let traj = common::random_episode(env.as_mut(), task, 1000 + 10 * i as u64 + e);
            buffer.add(&traj, config.window(), 0.0).unwrap();
        }
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
    buffer.sample(200, config.window(), &mut rng).unwrap()
}

/// Measured (normalised MSE of the state change over the `K` steps): MB 0.0768, ReBAL under the
/// zero context 0.0907, under the context of the `M` steps before 0.0159 (GrBAL adapted, in
/// `adaptation.rs`: 0.0521). MB is the same 64-64 MLP as there.
#[test]
fn on_held_out_pendulums_the_gru_predicts_better_after_reading_the_past_and_better_than_mb() {
    let config = AdaptConfig {
        hidden_sizes: vec![64, 64],
        max_epochs: 60,
        rebal: RebalConfig {
            hidden_size: 64,
            learning_rate: 1e-2,
        },
        ..AdaptConfig::default()
    };
    let mut env = common::pendulum();
    let buffer = common::training_data(env.as_mut(), 30, config.window(), 7);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let model = DeltaModel::new(3, 1, &config.hidden_sizes, &mut rng).unwrap();
    let rates = InnerLearningRate::new(model.mlp().vars().len(), 0.05, false).unwrap();
    let mut mb =
        ModelLearner::new(model, rates, Objective::Supervised, config.learning_rate).unwrap();
    let gru = GruDeltaModel::new(
        3,
        1,
        config.rebal.hidden_size,
        &config.hidden_sizes,
        &mut rng,
    )
    .unwrap();
    let mut rebal = RecurrentLearner::new(gru, config.rebal.learning_rate).unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
    let mb_fit = mb.fit(&buffer, &config, &mut rng).unwrap();
    let rebal_fit = rebal.fit(&buffer, &config, &mut rng).unwrap();
    let windows = held_out_windows(&config);
    let mb_err = mb.window_losses(&windows, config.past_steps).unwrap().1;
    let rebal_err = rebal.window_losses(&windows, config.past_steps).unwrap().1;
    let (before, after) = (rebal_err.pre_adaptation, rebal_err.post_adaptation);
    println!(
        "held-out K-step error: MB {:.4}, ReBAL without the past {before:.4}, after reading it \
         {after:.4} (fits: MB {} epochs, ReBAL {} epochs)",
        mb_err.pre_adaptation, mb_fit.epochs, rebal_fit.epochs
    );
    assert!(
        after < before,
        "reading the past helps: {before} -> {after}"
    );
    assert!(
        after < mb_err.pre_adaptation,
        "ReBAL {after} vs MB {}",
        mb_err.pre_adaptation
    );
}
