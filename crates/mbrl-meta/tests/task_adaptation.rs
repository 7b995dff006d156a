//! `MetaTrainer::adapt_to_task`, the per-task part of a training iteration that the
//! exploration-pattern analysis (thesis Fig. 16) also uses after training: it adapts to the task
//! it is given, returns the adaptation of its own samples, and the post-update trajectories are
//! drawn by the adapted parameters, not by the meta-policy.

use mbrl_core::policy::GaussianPolicy;
use mbrl_core::task::Task;
use mbrl_envs::point_corners::CORNERS;
use mbrl_envs::{make_factory, EnvConfig};
use mbrl_meta::adaptation::adapt;
use mbrl_meta::estimators::Estimator;
use mbrl_meta::trainer::{MetaConfig, MetaSettings, MetaTrainer, Outer};
use mbrl_policy_opt::gaussian_mlp::PolicyConfig;

fn max_abs_diff(a: &candle_core::Tensor, b: &candle_core::Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

#[test]
fn adapt_to_task_adapts_to_the_given_task_and_samples_with_the_adapted_parameters() {
    let factory = make_factory(&EnvConfig {
        name: "point-corners".into(),
        task_family: Some("corner-goals".into()),
        ..EnvConfig::default()
    })
    .unwrap();
    let settings = MetaSettings {
        meta: MetaConfig {
            meta_batch_size: 2,
            rollouts_per_task: 4,
            num_inner_grad_steps: 2,
            // Large enough that the adapted policy differs visibly from the meta-policy.
            inner_step_size: 0.5,
            estimator: Some(Estimator::Lvc),
            ..MetaConfig::default()
        },
        policy: PolicyConfig {
            hidden_sizes: vec![8],
            ..PolicyConfig::default()
        },
        ..MetaSettings::default()
    };
    let mut trainer = MetaTrainer::new(&factory, 1, Outer::Trpo, settings).unwrap();
    let corner = CORNERS[1];
    let task = Task::new("corner", vec![corner[0] as f64, corner[1] as f64]);
    let result = trainer.adapt_to_task(&task).unwrap();

    // Three batches (theta_0, theta_1, theta_2) of four whole episodes each.
    assert_eq!(result.trajectories.len(), 3);
    assert_eq!(result.samples.inner.len(), 2);
    for batch in &result.trajectories {
        assert_eq!(batch.len(), 4);
        assert!(batch.iter().all(|t| t.len() == 100));
    }
    // The task was set: the (sparse) reward is minus the clipped distance to that corner.
    let last = &result.trajectories[2][0];
    let s = last.obs(last.len());
    let d = ((s[0] - corner[0]).powi(2) + (s[1] - corner[1]).powi(2)).sqrt() as f64;
    let r = *last.rewards.last().unwrap();
    assert!((r + d.min(0.5)).abs() < 1e-5, "reward {r}, distance {d}");

    // The adapted parameters are the inner steps on the returned pre-update batches.
    let policy = trainer.meta_policy();
    let theta = policy.parameter_tensors();
    let alpha = trainer.inner_step_size().tensors();
    let again = adapt(
        policy,
        &theta,
        &result.samples.inner,
        &alpha,
        Estimator::Lvc,
    )
    .unwrap();
    for (a, b) in again.iter().zip(&result.adapted) {
        assert!(max_abs_diff(a, b) < 1e-5);
    }
    let moved = theta
        .iter()
        .zip(&result.adapted)
        .map(|(a, b)| max_abs_diff(a, b))
        .fold(0.0f32, f32::max);
    assert!(moved > 1e-3, "the adaptation did not move the parameters");

    // The post-update batch was drawn by the adapted parameters: its sampling log-probabilities
    // are those of theta', not those of theta.
    let post = &result.samples.post;
    let reference = &post.terms.ref_log_prob;
    let under_adapted = post.log_prob(policy, &result.adapted).unwrap();
    let under_theta = post.log_prob(policy, &theta).unwrap();
    assert!(max_abs_diff(reference, &under_adapted) < 1e-4);
    assert!(max_abs_diff(reference, &under_theta) > 1e-2);
    // And the pre-update batch by theta.
    let pre = &result.samples.inner[0];
    let pre_theta = pre.log_prob(policy, &theta).unwrap();
    assert!(max_abs_diff(&pre.terms.ref_log_prob, &pre_theta) < 1e-4);
}
