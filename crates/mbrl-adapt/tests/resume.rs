//! A checkpoint carries everything a resume needs: model (MLP or GRU), optimiser moments, inner
//! step sizes, data and random streams; the restored run's next iteration is bit-identical.

mod common;

use mbrl_adapt::config::{AdaptConfig, GrbalConfig, RebalConfig};
use mbrl_adapt::trainer::{AdaptiveMbrl, Method};
use mbrl_core::algorithm::Algorithm;
use mbrl_core::resume_check::check_resume;
use mbrl_policy_opt::planners::PlannerConfig;

fn tiny() -> AdaptConfig {
    AdaptConfig {
        hidden_sizes: vec![16],
        max_epochs: 3,
        rollouts_per_iteration: 1,
        grbal: GrbalConfig {
            learn_inner_learning_rate: true,
            ..GrbalConfig::default()
        },
        rebal: RebalConfig {
            hidden_size: 8,
            ..RebalConfig::default()
        },
        planner: PlannerConfig {
            candidates: 16,
            horizon: 3,
            ..AdaptConfig::default().planner
        },
        ..AdaptConfig::default()
    }
}

#[test]
fn every_method_resumes_bit_identically() {
    for method in [Method::Grbal, Method::Rebal, Method::MbMpc, Method::MbDe] {
        let build = |seed| -> mbrl_core::Result<Box<dyn Algorithm>> {
            Ok(Box::new(AdaptiveMbrl::new(
                common::pendulum_with("motor"),
                method,
                tiny(),
                seed,
            )?))
        };
        check_resume(&build, 3, 4, 2).unwrap_or_else(|e| panic!("{}: {e}", method.name()));
    }
}
