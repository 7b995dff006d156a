//! Per-dimension normalisation statistics: mean and floored standard deviation.
//!
//! The ensemble normalises its inputs (observations and actions) and its target (the state
//! change) with statistics recomputed over the whole training buffer at every fit, so stored
//! data and statistics can never disagree (the GrBAL reference recomputed them from the newest
//! batch only and diverged).

use candle_core::{Device, Tensor};

use crate::Result;

/// Mean and standard deviation of each dimension, as `[dim]` tensors.
#[derive(Debug, Clone)]
pub struct Normalizer {
    mean: Tensor,
    std: Tensor,
}

impl Normalizer {
    /// The identity normalisation (mean 0, std 1) of `dim` dimensions.
    pub fn identity(dim: usize, device: &Device) -> Result<Self> {
        Ok(Self {
            mean: Tensor::zeros(dim, candle_core::DType::F32, device)?,
            std: Tensor::ones(dim, candle_core::DType::F32, device)?,
        })
    }

    /// Statistics of the rows of a flat row-major `[n, dim]` array; each standard deviation
    /// (population, i.e. divided by `n`) is raised to at least `std_floor`. An empty array
    /// gives mean 0 and std 1.
    pub fn fit(data: &[f32], dim: usize, std_floor: f32, device: &Device) -> Result<Self> {
        let n = data.len().checked_div(dim).unwrap_or(0);
        if n == 0 {
            return Self::identity(dim, device);
        }
        let mut mean = vec![0f64; dim];
        for row in data.chunks_exact(dim) {
            for (m, &x) in mean.iter_mut().zip(row) {
                *m += x as f64;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        let mut var = vec![0f64; dim];
        for row in data.chunks_exact(dim) {
            for ((v, &x), m) in var.iter_mut().zip(row).zip(&mean) {
                *v += (x as f64 - m).powi(2);
            }
        }
        let std: Vec<f32> = var
            .iter()
            .map(|v| ((v / n as f64).sqrt() as f32).max(std_floor))
            .collect();
        let mean: Vec<f32> = mean.iter().map(|&m| m as f32).collect();
        Self::from_parts(&mean, &std, device)
    }

    /// Statistics given explicitly.
    pub fn from_parts(mean: &[f32], std: &[f32], device: &Device) -> Result<Self> {
        if mean.len() != std.len() {
            return Err(crate::Error::InvalidArgument(format!(
                "normaliser mean has {} entries but std has {}",
                mean.len(),
                std.len()
            )));
        }
        Ok(Self {
            mean: Tensor::from_slice(mean, mean.len(), device)?,
            std: Tensor::from_slice(std, std.len(), device)?,
        })
    }

    /// Number of dimensions.
    pub fn dim(&self) -> usize {
        self.mean.elem_count()
    }

    /// The means, `[dim]`.
    pub fn mean(&self) -> &Tensor {
        &self.mean
    }

    /// The (floored) standard deviations, `[dim]`.
    pub fn std(&self) -> &Tensor {
        &self.std
    }

    /// `(x - mean) / std` for any tensor whose last dimension is `dim`.
    pub fn normalize(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.broadcast_sub(&self.mean)?.broadcast_div(&self.std)?)
    }

    /// `x * std + mean`, the inverse of [`Normalizer::normalize`].
    pub fn denormalize(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.broadcast_mul(&self.std)?.broadcast_add(&self.mean)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_are_population_moments_with_the_std_floored() {
        // Column 0: 1, 3 -> mean 2, std 1. Column 1: constant 5 -> std 0, floored to 0.1.
        let n = Normalizer::fit(&[1.0, 5.0, 3.0, 5.0], 2, 0.1, &Device::Cpu).unwrap();
        assert_eq!(n.mean().to_vec1::<f32>().unwrap(), vec![2.0, 5.0]);
        assert_eq!(n.std().to_vec1::<f32>().unwrap(), vec![1.0, 0.1]);
        let x = Tensor::new(&[[3.0f32, 5.2]], &Device::Cpu).unwrap();
        let z = n.normalize(&x).unwrap().to_vec2::<f32>().unwrap();
        assert!((z[0][0] - 1.0).abs() < 1e-6 && (z[0][1] - 2.0).abs() < 1e-4);
        let back = n.denormalize(&n.normalize(&x).unwrap()).unwrap();
        assert!((back.to_vec2::<f32>().unwrap()[0][1] - 5.2).abs() < 1e-5);
    }

    #[test]
    fn empty_data_gives_the_identity() {
        let n = Normalizer::fit(&[], 3, 0.1, &Device::Cpu).unwrap();
        assert_eq!(n.std().to_vec1::<f32>().unwrap(), vec![1.0; 3]);
        assert!(Normalizer::from_parts(&[0.0], &[], &Device::Cpu).is_err());
    }
}
