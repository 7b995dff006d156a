//! Second derivatives through the fused kernels (what MAML-style meta-gradients need): with
//! `CANDLE_GRAD_DO_NOT_DETACH=1` a Hessian-vector product of a loss through the bias-activation
//! kernel, the fused linear layer or the fused Gaussian log-density equals the one through
//! candle's unfused ops (and, for the layers, a central finite difference of gradients). Its own test binary, because the variable is read once per
//! thread.

use candle_core::{Device, Tensor, Var};
use mbrl_core::kernels::{bias_activation, gaussian_log_prob, linear, Activation};
use mbrl_core::policy::standard_normal;
use mbrl_core::seeding::{stream_rng, Stream};

/// How a layer `act(x w + b)` is computed.
#[derive(Clone, Copy, Debug)]
enum Path {
    /// candle's own ops.
    Plain,
    /// A matmul, then the fused bias-activation kernel.
    BiasActivation,
    /// The fused linear layer.
    Linear,
}

fn loss(x: &Tensor, w: &Tensor, b: &Tensor, act: Activation, path: Path) -> Tensor {
    let h = match path {
        Path::Plain => {
            let z = x
                .matmul(w)
                .unwrap()
                .broadcast_add(&b.unsqueeze(0).unwrap())
                .unwrap();
            match act {
                Activation::Tanh => z.tanh().unwrap(),
                Activation::Relu => z.relu().unwrap(),
                Activation::Swish => z.silu().unwrap(),
            }
        }
        Path::BiasActivation => bias_activation(&x.matmul(w).unwrap(), b, Some(act)).unwrap(),
        Path::Linear => linear(x, w, b, Some(act)).unwrap(),
    };
    h.sqr().unwrap().sum_all().unwrap()
}

/// Gradient of the loss in `(w, b)`, flattened.
fn flat_grad(grads: &candle_core::backprop::GradStore, w: &Var, b: &Var) -> Vec<f32> {
    let mut out: Vec<f32> = grads
        .get(w)
        .expect("gradient for w")
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    out.extend(
        grads
            .get(b)
            .expect("gradient for b")
            .to_vec1::<f32>()
            .unwrap(),
    );
    out
}

/// `H v` for the loss in `(w, b)` at their values, by double backward.
fn hvp(
    x: &Tensor,
    w: &Var,
    b: &Var,
    v: (&Tensor, &Tensor),
    act: Activation,
    path: Path,
) -> Vec<f32> {
    let g = loss(x, w, b, act, path).backward().unwrap();
    let (gw, gb) = (g.get(w).unwrap(), g.get(b).unwrap());
    let dot =
        ((gw * v.0).unwrap().sum_all().unwrap() + (gb * v.1).unwrap().sum_all().unwrap()).unwrap();
    flat_grad(&dot.backward().unwrap(), w, b)
}

#[test]
fn hessian_vector_products_through_the_kernel_are_exact() {
    std::env::set_var("CANDLE_GRAD_DO_NOT_DETACH", "1");
    std::thread::spawn(|| {
        let dev = Device::Cpu;
        let mut rng = stream_rng(0, Stream::Custom(0));
        let mut normal = |dims: &[usize], scale: f64| {
            (standard_normal(dims, &mut rng, &dev).unwrap() * scale).unwrap()
        };
        let x = normal(&[6, 3], 1.0);
        for act in [Activation::Tanh, Activation::Relu, Activation::Swish] {
            let w = Var::from_tensor(&normal(&[3, 4], 0.7)).unwrap();
            let b = Var::from_tensor(&normal(&[4], 0.3)).unwrap();
            let vw = normal(&[3, 4], 1.0);
            let vb = normal(&[4], 1.0);
            let plain = hvp(&x, &w, &b, (&vw, &vb), act, Path::Plain);
            // Central difference of first-order gradients along v.
            let eps = 1e-2;
            let grad_at = |sign: f64| {
                let w2 =
                    Var::from_tensor(&(w.as_tensor() + (&vw * (sign * eps)).unwrap()).unwrap())
                        .unwrap();
                let b2 =
                    Var::from_tensor(&(b.as_tensor() + (&vb * (sign * eps)).unwrap()).unwrap())
                        .unwrap();
                flat_grad(
                    &loss(&x, &w2, &b2, act, Path::Plain).backward().unwrap(),
                    &w2,
                    &b2,
                )
            };
            let (plus, minus) = (grad_at(1.0), grad_at(-1.0));
            let scale = plain.iter().map(|v| v.abs()).fold(1.0f32, f32::max);
            for path in [Path::BiasActivation, Path::Linear] {
                let fused = hvp(&x, &w, &b, (&vw, &vb), act, path);
                for i in 0..fused.len() {
                    let fd = (plus[i] - minus[i]) / (2.0 * eps as f32);
                    assert!(
                        (fused[i] - plain[i]).abs() < 1e-4 * scale,
                        "{act:?} {path:?} [{i}] fused {} plain {}",
                        fused[i],
                        plain[i]
                    );
                    // relu's second derivative is 0 almost everywhere but FD can straddle a kink.
                    if act != Activation::Relu {
                        assert!(
                            (fused[i] - fd).abs() < 1e-2 * scale,
                            "{act:?} {path:?} [{i}] fused {} fd {fd}",
                            fused[i]
                        );
                    }
                }
            }
        }
    })
    .join()
    .unwrap();
}

/// `sum_b weights_b log N(act_b; x_b w, diag(exp(2 s)))` by the fused kernel or candle's ops.
fn gaussian_loss(
    x: &Tensor,
    act: &Tensor,
    weights: &Tensor,
    w: &Tensor,
    s: &Tensor,
    fused: bool,
) -> Tensor {
    let mean = x.matmul(w).unwrap();
    let log_prob = if fused {
        gaussian_log_prob(act, &mean, s).unwrap()
    } else {
        let z = (act - &mean)
            .unwrap()
            .broadcast_div(&s.exp().unwrap())
            .unwrap();
        let per_dim = z.sqr().unwrap().broadcast_add(&(s * 2.0).unwrap()).unwrap();
        (per_dim.sum(1).unwrap() * -0.5).unwrap()
    };
    (log_prob * weights).unwrap().sum_all().unwrap()
}

#[test]
fn hessian_vector_products_through_the_gaussian_log_density_are_exact() {
    std::env::set_var("CANDLE_GRAD_DO_NOT_DETACH", "1");
    std::thread::spawn(|| {
        let dev = Device::Cpu;
        let mut rng = stream_rng(1, Stream::Custom(0));
        let mut normal = |dims: &[usize], scale: f64| {
            (standard_normal(dims, &mut rng, &dev).unwrap() * scale).unwrap()
        };
        let (x, act, weights) = (
            normal(&[6, 3], 1.0),
            normal(&[6, 2], 1.0),
            normal(&[6], 1.0),
        );
        let w = Var::from_tensor(&normal(&[3, 2], 0.7)).unwrap();
        let s = Var::from_tensor(&normal(&[2], 0.3)).unwrap();
        let (vw, vs) = (normal(&[3, 2], 1.0), normal(&[2], 1.0));
        let hvp = |fused: bool| {
            let g = gaussian_loss(&x, &act, &weights, &w, &s, fused)
                .backward()
                .unwrap();
            let (gw, gs) = (g.get(&w).unwrap(), g.get(&s).unwrap());
            let dot = ((gw * &vw).unwrap().sum_all().unwrap()
                + (gs * &vs).unwrap().sum_all().unwrap())
            .unwrap();
            flat_grad(&dot.backward().unwrap(), &w, &s)
        };
        let (fused, plain) = (hvp(true), hvp(false));
        let scale = plain.iter().map(|v| v.abs()).fold(1.0f32, f32::max);
        for (i, (f, p)) in fused.iter().zip(&plain).enumerate() {
            assert!((f - p).abs() < 1e-4 * scale, "[{i}] fused {f} plain {p}");
        }
    })
    .join()
    .unwrap();
}
