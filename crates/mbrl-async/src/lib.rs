//! Asynchronous model-based training (thesis Ch. 8): data-collection, model-learning and
//! policy-improvement workers run in parallel and meet only at three servers (Fig. 23a): the
//! policy and the model parameter servers (the latest version wins) and a stream of real
//! rollouts that each reader consumes once.
//!
//! - [`servers`]: the servers as traits; [`memory`]: the `threads` backend (workers are
//!   threads of one process); [`redis_backend`]: the `redis` backend (workers are processes,
//!   [`remote::run_worker`], on any machine that reaches the server), over TLS with
//!   [`redis_tls`].
//! - [`recipe`]: how each worker is built from a run's config, shared by both backends.
//! - [`data_worker`], [`model_worker`], [`policy_worker`]: Algorithms 6, 7 and 8, each one
//!   step of [`worker::run_until_stopped`]'s loop. The policy step is ME-TRPO's own
//!   (`mbrl_policy_opt::imagined_update`), and the model step is the ensemble's one-epoch
//!   `TrainableModel::train_epoch` with the moving-average early stop.
//! - [`trainer`]: the coordinator the run loop drives (`async-me-trpo`, `async-me-ppo`), and
//!   the partially-asynchronous ME-TRPO variants of Sec. 8.4.2-8.4.3
//!   (`me-trpo-interleaved-model`, `me-trpo-interleaved-data`), which run the same workers'
//!   steps in a fixed order on one thread.
//! - [`codec`]: the safetensors wire format of parameters and rollouts.
//! - [`testing`]: a throwaway `redis-server` for tests of the `redis` backend.

pub mod codec;
pub mod config;
pub mod data_worker;
pub mod memory;
pub mod meta_improver;
pub mod model_worker;
pub mod policy_worker;
pub mod recipe;
pub mod redis_backend;
pub mod redis_tls;
pub mod remote;
pub mod servers;
pub mod testing;
pub mod trainer;
pub mod worker;
