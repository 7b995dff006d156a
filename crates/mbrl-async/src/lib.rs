//! Asynchronous model-based training (thesis Ch. 8): data-collection, model-learning and
//! policy-improvement workers running in parallel threads, exchanging parameters and data
//! through channels, driving the algorithms of the sister crates.
//!
//! Filled by the asynchronous-training issue.
