//! Thread settings for candle on small CPUs, applied once at start-up.
//!
//! candle runs matmuls on rayon's pool (`RAYON_NUM_THREADS`) and large element-wise ops on a
//! second, spinning pool (`CANDLE_NUM_THREADS`, default: as many threads as rayon). On a 2-core
//! machine the two pools compete for the same cores, and mbrl's hot element-wise work runs in
//! its own fused kernels anyway: with `CANDLE_NUM_THREADS=1` one half-cheetah ME-TRPO
//! iteration's policy phase took 8.2 s instead of 11.8 s, bit-identical results
//! (docs/performance.md). Without `RAYON_NUM_THREADS` candle also re-derives the core count
//! from `/proc/cpuinfo` on every matmul (3.5% of a training profile). Values the user set win.

/// Sets `RAYON_NUM_THREADS` (physical cores) and `CANDLE_NUM_THREADS` (1) unless already set.
/// Call before any tensor operation, while the process is single-threaded.
pub fn configure() {
    let physical = num_cpus::get_physical().max(1).to_string();
    for (key, value) in [
        ("RAYON_NUM_THREADS", physical.as_str()),
        ("CANDLE_NUM_THREADS", "1"),
    ] {
        if std::env::var_os(key).is_none() {
            std::env::set_var(key, value);
        }
    }
}
