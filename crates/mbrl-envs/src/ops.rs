//! Differentiable tensor operations candle lacks.
//!
//! [`atan2`] is a candle custom op (CPU, `f32` and `f64`) with a backward pass:
//! `d atan2(y, x) = (x dy - y dx) / (x^2 + y^2)`. At `x = y = 0`, where the angle is undefined,
//! the gradient is taken as zero so it never turns into NaN.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};

/// The four-quadrant arctangent `atan2(y, x)`, element by element, in `(-pi, pi]`; both
/// tensors must have the same shape and dtype (`f32` or `f64`) and live on the CPU.
pub fn atan2(y: &Tensor, x: &Tensor) -> candle_core::Result<Tensor> {
    if y.shape() != x.shape() {
        return Err(candle_core::Error::Msg(format!(
            "atan2: y has shape {:?} but x has shape {:?}; they must match",
            y.dims(),
            x.dims()
        )));
    }
    y.contiguous()?.apply_op2(&x.contiguous()?, Atan2)
}

/// The custom op behind [`atan2`].
struct Atan2;

/// The contiguous slice a layout covers.
fn contiguous<'a, T>(data: &'a [T], layout: &Layout) -> candle_core::Result<&'a [T]> {
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => Err(candle_core::Error::Msg(
            "atan2: inputs must be contiguous".to_string(),
        )),
    }
}

impl CustomOp2 for Atan2 {
    fn name(&self) -> &'static str {
        "atan2"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let storage = match (s1, s2) {
            (CpuStorage::F32(y), CpuStorage::F32(x)) => {
                let (y, x) = (contiguous(y, l1)?, contiguous(x, l2)?);
                CpuStorage::F32(y.iter().zip(x).map(|(y, x)| y.atan2(*x)).collect())
            }
            (CpuStorage::F64(y), CpuStorage::F64(x)) => {
                let (y, x) = (contiguous(y, l1)?, contiguous(x, l2)?);
                CpuStorage::F64(y.iter().zip(x).map(|(y, x)| y.atan2(*x)).collect())
            }
            (a, b) => {
                return Err(candle_core::Error::Msg(format!(
                    "atan2: supports two f32 or two f64 tensors, got {:?} and {:?}",
                    a.dtype(),
                    b.dtype()
                )))
            }
        };
        Ok((storage, l1.shape().clone()))
    }

    fn bwd(
        &self,
        y: &Tensor,
        x: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let r2 = (x.sqr()? + y.sqr()?)?;
        // Where r2 == 0 both numerators vanish; dividing by 1 there gives a zero gradient.
        let safe_r2 = (&r2 + r2.eq(0.0)?.to_dtype(r2.dtype())?)?;
        let scale = (grad_res / safe_r2)?;
        let dy = (&scale * x)?;
        let dx = (&scale * y)?.neg()?;
        Ok((Some(dy), Some(dx)))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, Var};

    use super::*;

    fn points() -> (Vec<f64>, Vec<f64>) {
        // Every quadrant, the axes and values near the branch cut at x < 0, y = 0.
        let y = vec![0.3, 1.2, -0.7, -2.0, 0.0, 1.0, 0.0, -1.0, 1e-3, -1e-3, 0.5];
        let x = vec![0.4, -0.5, -1.1, 0.9, 1.0, 0.0, -1.0, 0.0, -1.0, -1.0, 2.5];
        (y, x)
    }

    #[test]
    fn forward_matches_std_atan2_in_every_quadrant() {
        let (y, x) = points();
        let n = y.len();
        for dtype in [DType::F32, DType::F64] {
            let yt = Tensor::from_vec(y.clone(), n, &Device::Cpu)
                .unwrap()
                .to_dtype(dtype)
                .unwrap();
            let xt = Tensor::from_vec(x.clone(), n, &Device::Cpu)
                .unwrap()
                .to_dtype(dtype)
                .unwrap();
            let got = atan2(&yt, &xt)
                .unwrap()
                .to_dtype(DType::F64)
                .unwrap()
                .to_vec1::<f64>()
                .unwrap();
            for i in 0..n {
                let expected = y[i].atan2(x[i]);
                assert!(
                    (got[i] - expected).abs() < 1e-6,
                    "{i}: {} vs {expected}",
                    got[i]
                );
            }
        }
    }

    #[test]
    fn works_on_non_contiguous_and_batched_inputs() {
        let obs =
            Tensor::from_vec(vec![1.0f32, 0.0, 0.0, 1.0, -1.0, 0.0], (3, 2), &Device::Cpu).unwrap();
        let x = obs.narrow(1, 0, 1).unwrap().squeeze(1).unwrap();
        let y = obs.narrow(1, 1, 1).unwrap().squeeze(1).unwrap();
        let got = atan2(&y, &x).unwrap().to_vec1::<f32>().unwrap();
        let pi = std::f32::consts::PI;
        assert_eq!(got, vec![0.0, pi / 2.0, pi]);
    }

    #[test]
    fn gradient_matches_central_finite_differences() {
        let (y, x) = points();
        let n = y.len();
        let yv = Var::from_tensor(&Tensor::from_vec(y.clone(), n, &Device::Cpu).unwrap()).unwrap();
        let xv = Var::from_tensor(&Tensor::from_vec(x.clone(), n, &Device::Cpu).unwrap()).unwrap();
        let grads = atan2(yv.as_tensor(), xv.as_tensor())
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let gy = grads.get(yv.as_tensor()).unwrap().to_vec1::<f64>().unwrap();
        let gx = grads.get(xv.as_tensor()).unwrap().to_vec1::<f64>().unwrap();
        let h = 1e-6;
        for i in 0..n {
            // Points straddling the branch cut (x < 0, y = 0) have a jump, not a derivative.
            if x[i] < 0.0 && y[i] == 0.0 {
                continue;
            }
            let fd_y = ((y[i] + h).atan2(x[i]) - (y[i] - h).atan2(x[i])) / (2.0 * h);
            let fd_x = (y[i].atan2(x[i] + h) - y[i].atan2(x[i] - h)) / (2.0 * h);
            assert!(
                (gy[i] - fd_y).abs() < 1e-6,
                "dy at {i}: {} vs {fd_y}",
                gy[i]
            );
            assert!(
                (gx[i] - fd_x).abs() < 1e-6,
                "dx at {i}: {} vs {fd_x}",
                gx[i]
            );
        }
    }

    #[test]
    fn gradient_at_the_origin_is_zero_not_nan() {
        let yv = Var::zeros(2, DType::F32, &Device::Cpu).unwrap();
        let xv = Var::zeros(2, DType::F32, &Device::Cpu).unwrap();
        let grads = atan2(yv.as_tensor(), xv.as_tensor())
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        assert_eq!(
            grads.get(yv.as_tensor()).unwrap().to_vec1::<f32>().unwrap(),
            vec![0.0, 0.0]
        );
        assert_eq!(
            grads.get(xv.as_tensor()).unwrap().to_vec1::<f32>().unwrap(),
            vec![0.0, 0.0]
        );
    }

    #[test]
    fn mismatched_shapes_and_dtypes_are_errors() {
        let a = Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap();
        let b = Tensor::zeros(2, DType::F32, &Device::Cpu).unwrap();
        assert!(atan2(&a, &b)
            .unwrap_err()
            .to_string()
            .contains("must match"));
        let c = Tensor::zeros(3, DType::F64, &Device::Cpu).unwrap();
        assert!(atan2(&a, &c).is_err());
    }
}
