//! The algorithm registry: every algorithm crate's entry, by name.

use mbrl_core::algorithm::AlgorithmEntry;

/// Every registered algorithm.
pub fn registry() -> Vec<&'static AlgorithmEntry> {
    vec![
        &mbrl_policy_opt::random_baseline::ENTRY,
        &mbrl_policy_opt::model_free::TRPO_ENTRY,
        &mbrl_policy_opt::model_free::PPO_ENTRY,
        &mbrl_policy_opt::me_trpo::ENTRY,
        &mbrl_policy_opt::vanilla::ENTRY,
        &mbrl_meta::trainer::PROMP_ENTRY,
        &mbrl_meta::trainer::MAML_TRPO_ENTRY,
        &mbrl_meta::trainer::MAML_VPG_ENTRY,
        &mbrl_meta::mb_mpo::ENTRY,
        &mbrl_maac::trainer::SAC_ENTRY,
        &mbrl_maac::trainer::MBPO_ENTRY,
        &mbrl_maac::trainer::MAAC_ENTRY,
        &mbrl_adapt::trainer::GRBAL_ENTRY,
        &mbrl_adapt::trainer::REBAL_ENTRY,
        &mbrl_adapt::trainer::MB_MPC_ENTRY,
        &mbrl_adapt::trainer::MB_DE_ENTRY,
        &mbrl_async::trainer::ASYNC_ME_TRPO_ENTRY,
        &mbrl_async::trainer::ASYNC_ME_PPO_ENTRY,
        &mbrl_async::trainer::ASYNC_MB_MPO_ENTRY,
        &mbrl_async::trainer::INTERLEAVED_MODEL_ENTRY,
        &mbrl_async::trainer::INTERLEAVED_DATA_ENTRY,
    ]
}

/// The entry named `name`.
pub fn find(name: &str) -> Option<&'static AlgorithmEntry> {
    registry().into_iter().find(|a| a.name == name)
}
