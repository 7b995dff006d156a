//! Normalisation statistics are recomputed from the whole training buffer at every fit, with
//! the standard deviations floored.

use mbrl_core::data::ReplayBuffer;
use mbrl_models::{EarlyStoppingRule, EnsembleConfig, MlpEnsemble};

mod common;
use common::{rng, values};

fn config(std_floor: f32) -> EnsembleConfig {
    EnsembleConfig {
        members: 2,
        hidden_sizes: vec![8],
        std_floor,
        max_epochs: 1,
        early_stopping: EarlyStoppingRule::Never,
        ..Default::default()
    }
}

/// Observations `(i, 7)`, actions `(2 i)`, next observations `(i + 1, 7)` for `i = 0..4`:
/// obs mean (1.5, 7), population std (sqrt(1.25), 0); act mean 3, std 2 sqrt(1.25);
/// state change mean (1, 0), std (0, 0).
fn buffer() -> ReplayBuffer {
    let mut b = ReplayBuffer::new(4, 2, 1).unwrap();
    for i in 0..4 {
        let x = i as f32;
        b.push(&[x, 7.0], &[2.0 * x], &[x + 1.0, 7.0], 0.0, false)
            .unwrap();
    }
    b
}

#[test]
fn statistics_match_the_buffer_and_the_floor_applies() {
    let mut r = rng(0);
    let mut model = MlpEnsemble::new(&config(0.1), 2, 1, &mut r).unwrap();
    model.fit(&buffer(), None, &mut r).unwrap();
    let s = model.norm_stats();
    let close = |a: Vec<f32>, b: Vec<f32>| {
        a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-5) || panic!("{a:?} vs {b:?}")
    };
    let sd = 1.25f32.sqrt();
    close(values(s.obs.mean()), vec![1.5, 7.0]);
    close(values(s.obs.std()), vec![sd, 0.1]);
    close(values(s.act.mean()), vec![3.0]);
    close(values(s.act.std()), vec![2.0 * sd]);
    close(values(s.delta.mean()), vec![1.0, 0.0]);
    close(values(s.delta.std()), vec![0.1, 0.1]);
}

#[test]
fn statistics_follow_the_buffer_at_each_fit() {
    let mut r = rng(1);
    let mut model = MlpEnsemble::new(&config(0.01), 2, 1, &mut r).unwrap();
    model.fit(&buffer(), None, &mut r).unwrap();
    let mut bigger = ReplayBuffer::new(8, 2, 1).unwrap();
    for i in 0..8 {
        let x = i as f32;
        bigger
            .push(&[x, 7.0], &[0.0], &[x, 7.0], 0.0, false)
            .unwrap();
    }
    model.fit(&bigger, None, &mut r).unwrap();
    let s = model.norm_stats();
    assert!((values(s.obs.mean())[0] - 3.5).abs() < 1e-6);
    assert_eq!(values(s.act.std()), vec![0.01]);
}
