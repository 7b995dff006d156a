//! Regression: with one ensemble member, the patience rule's best-weights snapshot was a view
//! of the variable's own storage, so restoring it failed ("cannot set a variable to a tensor
//! that is derived from its value") and training overwrote the snapshot.

use mbrl_core::data::ReplayBuffer;
use mbrl_models::{EnsembleConfig, MlpEnsemble};
use rand::SeedableRng;

#[test]
fn a_single_member_fit_keeps_and_restores_its_best_weights() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let config = EnsembleConfig {
        members: 1,
        hidden_sizes: vec![16],
        batch_size: 64,
        max_epochs: 40,
        validate_every: 2,
        patience: 10,
        ..EnsembleConfig::default()
    };
    let mut model = MlpEnsemble::new(&config, 1, 1, &mut rng).unwrap();
    let mut train = ReplayBuffer::new(400, 1, 1).unwrap();
    let mut validation = ReplayBuffer::new(100, 1, 1).unwrap();
    for i in 0..500 {
        let s = (i as f32 * 0.37).sin();
        let a = (i as f32 * 0.11).cos();
        let buffer = if i % 5 == 0 {
            &mut validation
        } else {
            &mut train
        };
        buffer.push(&[s], &[a], &[s + 0.5 * a], 0.0, false).unwrap();
    }
    let report = model.fit(&train, Some(&validation), &mut rng).unwrap();
    let loss = report.validation_loss.unwrap()[0];
    assert!(loss.is_finite() && loss < 0.1, "validation loss {loss}");
}
