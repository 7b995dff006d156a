//! Observation and action spaces: continuous boxes and discrete sets, with seeded sampling
//! and containment checks (Gymnasium's `Box` and `Discrete`).

use rand::Rng;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// A continuous box `[low, high]` of a given shape; bounds may be infinite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoxSpace {
    low: Vec<f32>,
    high: Vec<f32>,
    shape: Vec<usize>,
}

impl BoxSpace {
    /// A box with per-element bounds; `low` and `high` are flat in row-major order.
    pub fn new(low: Vec<f32>, high: Vec<f32>, shape: Vec<usize>) -> Result<Self> {
        let size: usize = shape.iter().product();
        if low.len() != size || high.len() != size {
            return Err(Error::shape(
                "BoxSpace::new bounds",
                format!("{size} elements for shape {shape:?}"),
                format!("low {} / high {}", low.len(), high.len()),
            ));
        }
        if let Some(i) =
            (0..size).find(|&i| low[i].is_nan() || high[i].is_nan() || low[i] > high[i])
        {
            return Err(Error::InvalidArgument(format!(
                "BoxSpace bound {i}: low {} must be <= high {}",
                low[i], high[i]
            )));
        }
        Ok(Self { low, high, shape })
    }

    /// A one-dimensional box with the same bounds in every element.
    pub fn uniform(low: f32, high: f32, dim: usize) -> Result<Self> {
        Self::new(vec![low; dim], vec![high; dim], vec![dim])
    }

    /// A one-dimensional box with per-element bounds.
    pub fn from_bounds(low: Vec<f32>, high: Vec<f32>) -> Result<Self> {
        let dim = low.len();
        Self::new(low, high, vec![dim])
    }

    /// Lower bounds, flat.
    pub fn low(&self) -> &[f32] {
        &self.low
    }

    /// Upper bounds, flat.
    pub fn high(&self) -> &[f32] {
        &self.high
    }

    /// The element shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of scalar elements.
    pub fn flat_dim(&self) -> usize {
        self.low.len()
    }

    /// Whether every bound is finite (a box that can be sampled uniformly).
    pub fn is_bounded(&self) -> bool {
        self.low.iter().chain(&self.high).all(|b| b.is_finite())
    }

    /// Samples like Gymnasium: uniform on bounded elements, standard normal on unbounded
    /// ones, shifted exponential on half-bounded ones.
    pub fn sample(&self, rng: &mut dyn RngCore) -> Vec<f32> {
        self.low
            .iter()
            .zip(&self.high)
            .map(|(&lo, &hi)| match (lo.is_finite(), hi.is_finite()) {
                (true, true) => {
                    if lo == hi {
                        lo
                    } else {
                        rng.random_range(lo..=hi)
                    }
                }
                (false, false) => rng.sample::<f32, _>(rand_distr::StandardNormal),
                (true, false) => lo + rng.sample::<f32, _>(rand_distr::Exp1),
                (false, true) => hi - rng.sample::<f32, _>(rand_distr::Exp1),
            })
            .collect()
    }

    /// Whether `x` has the right length, is finite where bounded and lies inside the bounds.
    pub fn contains(&self, x: &[f32]) -> bool {
        x.len() == self.low.len()
            && x.iter()
                .zip(self.low.iter().zip(&self.high))
                .all(|(&v, (&lo, &hi))| !v.is_nan() && v >= lo && v <= hi)
    }

    /// Clips `x` into the box, element by element.
    pub fn clip(&self, x: &mut [f32]) {
        for (v, (&lo, &hi)) in x.iter_mut().zip(self.low.iter().zip(&self.high)) {
            *v = v.clamp(lo, hi);
        }
    }
}

/// A space of observations or actions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Space {
    /// A continuous box.
    Box(BoxSpace),
    /// The integers `0..n`, stored as one `f32` element holding the index.
    Discrete(usize),
}

impl Space {
    /// Number of `f32` elements a value of this space occupies in a flat vector.
    pub fn flat_dim(&self) -> usize {
        match self {
            Space::Box(b) => b.flat_dim(),
            Space::Discrete(_) => 1,
        }
    }

    /// Samples an element (discrete values as their index in one `f32`).
    pub fn sample(&self, rng: &mut dyn RngCore) -> Vec<f32> {
        match self {
            Space::Box(b) => b.sample(rng),
            Space::Discrete(n) => vec![rng.random_range(0..*n) as f32],
        }
    }

    /// Whether `x` is an element of the space.
    pub fn contains(&self, x: &[f32]) -> bool {
        match self {
            Space::Box(b) => b.contains(x),
            Space::Discrete(n) => {
                x.len() == 1 && x[0] >= 0.0 && x[0].fract() == 0.0 && (x[0] as usize) < *n
            }
        }
    }

    /// The box, if this is a continuous space.
    pub fn as_box(&self) -> Option<&BoxSpace> {
        match self {
            Space::Box(b) => Some(b),
            Space::Discrete(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn rng() -> rand_chacha::ChaCha8Rng {
        rand_chacha::ChaCha8Rng::seed_from_u64(7)
    }

    #[test]
    fn bounded_box_samples_stay_inside_and_cover_the_range() {
        let space = BoxSpace::from_bounds(vec![-1.0, 0.0], vec![1.0, 10.0]).unwrap();
        let mut r = rng();
        let samples: Vec<Vec<f32>> = (0..2000).map(|_| space.sample(&mut r)).collect();
        assert!(samples.iter().all(|s| space.contains(s)));
        let mean1: f32 = samples.iter().map(|s| s[1]).sum::<f32>() / 2000.0;
        assert!((mean1 - 5.0).abs() < 0.3, "uniform mean {mean1}");
    }

    #[test]
    fn unbounded_box_samples_standard_normal() {
        let space = BoxSpace::uniform(f32::NEG_INFINITY, f32::INFINITY, 1).unwrap();
        let mut r = rng();
        let xs: Vec<f32> = (0..4000).map(|_| space.sample(&mut r)[0]).collect();
        let mean = xs.iter().sum::<f32>() / 4000.0;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / 4000.0;
        assert!(
            mean.abs() < 0.06 && (var - 1.0).abs() < 0.08,
            "{mean} {var}"
        );
        assert!(!space.is_bounded());
    }

    #[test]
    fn half_bounded_box_respects_its_finite_side() {
        let space =
            BoxSpace::from_bounds(vec![2.0, f32::NEG_INFINITY], vec![f32::INFINITY, -3.0]).unwrap();
        let mut r = rng();
        for _ in 0..500 {
            let s = space.sample(&mut r);
            assert!(s[0] >= 2.0 && s[1] <= -3.0);
        }
    }

    #[test]
    fn contains_rejects_wrong_length_nan_and_out_of_bounds() {
        let space = BoxSpace::uniform(-1.0, 1.0, 2).unwrap();
        assert!(space.contains(&[0.0, 1.0]));
        assert!(!space.contains(&[0.0]));
        assert!(!space.contains(&[0.0, f32::NAN]));
        assert!(!space.contains(&[0.0, 1.01]));
    }

    #[test]
    fn clip_projects_into_the_box() {
        let space = BoxSpace::uniform(-1.0, 1.0, 3).unwrap();
        let mut x = [-5.0, 0.5, 7.0];
        space.clip(&mut x);
        assert_eq!(x, [-1.0, 0.5, 1.0]);
    }

    #[test]
    fn invalid_boxes_are_errors() {
        assert!(BoxSpace::from_bounds(vec![1.0], vec![0.0]).is_err());
        assert!(BoxSpace::new(vec![0.0; 3], vec![1.0; 3], vec![2, 2]).is_err());
    }

    #[test]
    fn discrete_space_samples_every_index() {
        let space = Space::Discrete(3);
        let mut r = rng();
        let mut seen = [false; 3];
        for _ in 0..100 {
            let s = space.sample(&mut r);
            assert!(space.contains(&s));
            seen[s[0] as usize] = true;
        }
        assert_eq!(seen, [true; 3]);
        assert!(!space.contains(&[3.0]));
        assert!(!space.contains(&[0.5]));
        assert_eq!(space.flat_dim(), 1);
    }

    #[test]
    fn sampling_is_deterministic_under_a_seed() {
        let space = Space::Box(BoxSpace::uniform(-2.0, 2.0, 4).unwrap());
        assert_eq!(space.sample(&mut rng()), space.sample(&mut rng()));
    }
}
