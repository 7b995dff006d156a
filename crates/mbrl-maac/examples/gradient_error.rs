//! Thesis Fig. 20: the L1 error of MAAC's policy gradient against the model horizon `H`, on the
//! `double-integrator`, where the gradient of a linear policy's expected return is known in
//! closed form (`mbrl_envs::double_integrator::expected_return_gradient`).
//!
//! For a linear Gaussian policy `u = K x + sigma eps` and start states `x0 ~ U([-1, 1]^2)`,
//! MAAC's objective `E[sum_{t<H} gamma^t r_t + gamma^H Q(x_H, u_H)]` equals the expected return
//! `J(K)` when the model and Q are exact, so its pathwise gradient (through the sampled actions,
//! the model and the terminal Q) can be compared with the exact `dJ/dK`. Two estimators per `H`:
//! - **true dynamics**: the exact linear model, with a learned Q (the only error: Q's, weighted
//!   by `gamma^H`, plus Monte-Carlo noise);
//! - **learned dynamics**: an `mbrl-models` ensemble fitted to random transitions, with the same
//!   learned Q; twice, from 5000 and from 250 transitions, so that the model's error, which
//!   compounds with `H`, is visible next to Q's, which `gamma^H` shrinks.
//!
//! The Q-function (64-64 ReLU) is regressed on discounted Monte-Carlo returns of the policy from
//! perturbed first actions; the models (5 x 64-64, deterministic) on uniformly random
//! transitions. Each seed learns its own Q and model and draws its own samples.
//!
//! Run: `cargo run --release -p mbrl-maac --example gradient_error -- [--seeds 0,1,2] [--out
//! docs/results]`; writes `maac_gradient_error.csv` (one row per seed, estimator and H) and
//! `maac_gradient_error.png` (mean and sample standard deviation over seeds), and prints a
//! Markdown table.

use std::sync::Arc;

use candle_core::{Device, Tensor, Var};
use mbrl_core::adam::Adam;
use mbrl_core::data::ReplayBuffer;
use mbrl_core::env::Env;
use mbrl_core::metrics::mean_and_sample_std;
use mbrl_core::mlp::{Mlp, MlpShape};
use mbrl_core::model::{DynamicsModel, MemberPredictions};
use mbrl_core::policy::standard_normal;
use mbrl_core::task::TaskFunctions;
use mbrl_envs::double_integrator::{
    expected_return_gradient, DoubleIntegrator, LinearPolicy, A, B,
};
use mbrl_models::{EnsembleConfig, MlpEnsemble};
use plotters::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Discount of the objective (and of Q's returns).
const GAMMA: f64 = 0.9;
/// Length of the returns Q learns and of the exact objective (gamma^100 = 2.7e-5).
const RETURN_STEPS: usize = 100;
/// The policy the gradient is taken at.
const POLICY: LinearPolicy = LinearPolicy {
    gain: [-1.0, -1.5],
    noise_std: 0.3,
};
/// Model horizons compared.
const HORIZONS: [usize; 9] = [0, 1, 2, 3, 5, 10, 15, 20, 30];
/// Start states per gradient estimate (a batch), and batches averaged.
const BATCH: usize = 4096;
const BATCHES: usize = 8;

/// The exact linear dynamics as a one-member model.
struct TrueModel;

impl DynamicsModel for TrueModel {
    fn ensemble_size(&self) -> usize {
        1
    }

    fn predict_members(&self, obs: &Tensor, act: &Tensor) -> mbrl_core::Result<MemberPredictions> {
        let a = Tensor::new(
            &[
                [A[0][0] as f32, A[1][0] as f32],
                [A[0][1] as f32, A[1][1] as f32],
            ],
            &Device::Cpu,
        )?;
        let b = Tensor::new(&[[B[0] as f32, B[1] as f32]], &Device::Cpu)?;
        let next = (obs.matmul(&a)? + act.matmul(&b)?)?;
        Ok(MemberPredictions {
            mean: next.unsqueeze(0)?,
            log_var: None,
        })
    }
}

/// One exact step of the double integrator for `[N, 2]` states and `[N, 1]` actions.
fn true_step(obs: &Tensor, act: &Tensor) -> Result<Tensor> {
    Ok(TrueModel.predict_members(obs, act)?.mean.squeeze(0)?)
}

fn uniform(n: usize, dims: usize, half_width: f32, rng: &mut ChaCha8Rng) -> Result<Tensor> {
    let v: Vec<f32> = (0..n * dims)
        .map(|_| rng.random_range(-half_width..=half_width))
        .collect();
    Ok(Tensor::from_vec(v, (n, dims), &Device::Cpu)?)
}

/// The policy's actions `K x + sigma eps` for `[N, 2]` states, with `gain` `[2, 1]`.
fn act(obs: &Tensor, gain: &Tensor, rng: &mut ChaCha8Rng) -> Result<Tensor> {
    let eps = standard_normal(&[obs.dim(0)?, 1], rng, &Device::Cpu)?;
    Ok((obs.matmul(gain)? + (eps * POLICY.noise_std)?)?)
}

/// Q(x, u) regressed on discounted Monte-Carlo returns of the policy after a first action
/// `K x + N(0, 1)` from `x ~ U([-1.5, 1.5]^2)` (the states the objective's rollouts reach).
fn learn_q(task: &dyn TaskFunctions, rng: &mut ChaCha8Rng) -> Result<Mlp> {
    let gain = gain_tensor()?;
    let n = 20_000;
    let x0 = uniform(n, 2, 1.5, rng)?;
    let u0 = (x0.matmul(&gain)? + standard_normal(&[n, 1], rng, &Device::Cpu)?)?;
    let (mut x, mut u) = (x0.clone(), u0.clone());
    let mut ret = Tensor::zeros(n, candle_core::DType::F32, &Device::Cpu)?;
    for t in 0..RETURN_STEPS {
        let next = true_step(&x, &u)?;
        ret = (ret + (task.reward(&x, &u, &next)? * GAMMA.powi(t as i32))?)?;
        x = next;
        u = act(&x, &gain, rng)?;
    }
    let q = Mlp::new(
        MlpShape {
            widths: vec![3, 64, 64, 1],
            stacked: None,
        },
        rng,
    )?;
    let inputs = Tensor::cat(&[&x0, &u0], 1)?;
    let mut adam = Adam::new(q.vars().to_vec(), 1e-3)?;
    for _ in 0..6000 {
        let idx: Vec<u32> = (0..256).map(|_| rng.random_range(0..n as u32)).collect();
        let idx = Tensor::from_vec(idx, 256, &Device::Cpu)?;
        let pred = q
            .forward_with(&q.tracked(), &inputs.index_select(&idx, 0)?)?
            .squeeze(1)?;
        let loss = (pred - ret.index_select(&idx, 0)?)?.sqr()?.mean_all()?;
        adam.step(&loss.backward()?)?;
    }
    Ok(q)
}

/// Learned-model estimators: their names and the random transitions each model is fitted to.
const LEARNED: [(&str, usize); 2] = [
    ("learned dynamics, 5000 transitions", 5000),
    ("learned dynamics, 250 transitions", 250),
];
/// Every estimator, in table and plot order.
const ESTIMATORS: [&str; 3] = ["true dynamics", LEARNED[0].0, LEARNED[1].0];

/// A deterministic 5 x 64-64 ensemble fitted to `n` uniformly random transitions.
fn learn_model(n: usize, rng: &mut ChaCha8Rng) -> Result<MlpEnsemble> {
    let config = EnsembleConfig {
        members: 5,
        hidden_sizes: vec![64, 64],
        batch_size: 256,
        max_epochs: 400,
        validation_fraction: 0.2,
        ..EnsembleConfig::default()
    };
    let mut model = MlpEnsemble::new(&config, 2, 1, rng)?;
    let x = uniform(n, 2, 2.0, rng)?;
    let u = uniform(n, 1, 3.0, rng)?;
    let next = true_step(&x, &u)?;
    let mut buffer = ReplayBuffer::new(n, 2, 1)?;
    let (x, u, next) = (
        x.to_vec2::<f32>()?,
        u.to_vec2::<f32>()?,
        next.to_vec2::<f32>()?,
    );
    for i in 0..n {
        buffer.push(&x[i], &u[i], &next[i], 0.0, false)?;
    }
    model.fit(&buffer, None, rng)?;
    Ok(model)
}

fn gain_tensor() -> Result<Tensor> {
    Ok(Tensor::new(
        &[[POLICY.gain[0] as f32], [POLICY.gain[1] as f32]],
        &Device::Cpu,
    )?)
}

/// MAAC's pathwise gradient of the `horizon`-step objective with respect to `K`, averaged
/// over [`BATCHES`] batches; the model steps each row in a member drawn per step.
fn maac_gradient(
    model: &dyn DynamicsModel,
    q: &Mlp,
    task: &dyn TaskFunctions,
    horizon: usize,
    rng: &mut ChaCha8Rng,
) -> Result<[f64; 2]> {
    let gain = Var::from_tensor(&gain_tensor()?)?;
    let mut total = [0.0; 2];
    for _ in 0..BATCHES {
        let mut x = uniform(BATCH, 2, 1.0, rng)?;
        let mut u = act(&x, gain.as_tensor(), rng)?;
        let mut value = Tensor::zeros(BATCH, candle_core::DType::F32, &Device::Cpu)?;
        for t in 0..horizon {
            let all = model.predict_members(&x, &u)?.mean;
            let k = all.dim(0)?;
            let pick: Vec<u32> = (0..BATCH)
                .map(|i| (rng.random_range(0..k) * BATCH + i) as u32)
                .collect();
            let pick = Tensor::from_vec(pick, BATCH, &Device::Cpu)?;
            let next = all.reshape((k * BATCH, 2))?.index_select(&pick, 0)?;
            value = (value + (task.reward(&x, &u, &next)? * GAMMA.powi(t as i32))?)?;
            x = next;
            u = act(&x, gain.as_tensor(), rng)?;
        }
        let terminal = q
            .forward_with(&q.detached(), &Tensor::cat(&[&x, &u], 1)?)?
            .squeeze(1)?;
        let objective = (value + (terminal * GAMMA.powi(horizon as i32))?)?.mean_all()?;
        let grad: Vec<f32> = objective
            .backward()?
            .get(gain.as_tensor())
            .ok_or("no gradient for the gain")?
            .flatten_all()?
            .to_vec1()?;
        total[0] += grad[0] as f64 / BATCHES as f64;
        total[1] += grad[1] as f64 / BATCHES as f64;
    }
    Ok(total)
}

/// One CSV row.
struct Row {
    seed: u64,
    estimator: &'static str,
    horizon: usize,
    l1_error: f64,
}

fn arg(args: &[String], flag: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.into())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let seeds: Vec<u64> = arg(&args, "--seeds", "0,1,2")
        .split(',')
        .map(|s| s.trim().parse())
        .collect::<std::result::Result<_, _>>()?;
    let out = std::path::PathBuf::from(arg(&args, "--out", "docs/results"));
    std::fs::create_dir_all(&out)?;
    let task = DoubleIntegrator::new()?.task_functions();
    let exact = expected_return_gradient(&POLICY, RETURN_STEPS, GAMMA);
    eprintln!("exact dJ/dK = {exact:?}");
    let mut rows = Vec::new();
    for &seed in &seeds {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let q = learn_q(task.as_ref(), &mut rng)?;
        let mut models: Vec<(&'static str, Arc<dyn DynamicsModel>)> =
            vec![(ESTIMATORS[0], Arc::new(TrueModel))];
        for (name, transitions) in LEARNED {
            models.push((
                name,
                Arc::new(learn_model(transitions, &mut rng)?.freeze()?),
            ));
        }
        for &horizon in &HORIZONS {
            for (estimator, model) in &models {
                let estimator = *estimator;
                let g = maac_gradient(model.as_ref(), &q, task.as_ref(), horizon, &mut rng)?;
                let l1_error = (g[0] - exact[0]).abs() + (g[1] - exact[1]).abs();
                eprintln!(
                    "seed {seed} {estimator} H={horizon}: gradient {g:?}, L1 error {l1_error:.4}"
                );
                rows.push(Row {
                    seed,
                    estimator,
                    horizon,
                    l1_error,
                });
            }
        }
    }
    let mut csv = String::from("seed,estimator,horizon,l1_error\n");
    for r in &rows {
        // The estimator's name contains commas: quoted (RFC 4180; the names have no `"`).
        csv.push_str(&format!(
            "{},\"{}\",{},{}\n",
            r.seed, r.estimator, r.horizon, r.l1_error
        ));
    }
    std::fs::write(out.join("maac_gradient_error.csv"), csv)?;
    let summary = |estimator: &str, horizon: usize| {
        let v: Vec<f64> = rows
            .iter()
            .filter(|r| r.estimator == estimator && r.horizon == horizon)
            .map(|r| r.l1_error)
            .collect();
        mean_and_sample_std(&v)
    };
    println!(
        "L1 error of MAAC's policy gradient on double-integrator (|exact| = {:.3}; mean +- sample \
         std over seeds {seeds:?})\n",
        exact[0].abs() + exact[1].abs()
    );
    println!("| H | {} |\n|---|---|---|---|", ESTIMATORS.join(" | "));
    for &h in &HORIZONS {
        let cells: Vec<String> = ESTIMATORS
            .iter()
            .map(|e| {
                let (m, s) = summary(e, h);
                format!("{m:.4} +- {s:.4}")
            })
            .collect();
        println!("| {h} | {} |", cells.join(" | "));
    }
    plot(&out.join("maac_gradient_error.png"), &summary)?;
    Ok(())
}

fn plot(path: &std::path::Path, summary: &dyn Fn(&str, usize) -> (f64, f64)) -> Result<()> {
    mbrl_core::plot::register_font()?;
    let root = BitMapBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let top = HORIZONS
        .iter()
        .flat_map(|&h| ESTIMATORS.map(|e| summary(e, h)))
        .map(|(m, s)| m + s)
        .fold(0.0, f64::max)
        * 1.1;
    let max_h = *HORIZONS.last().unwrap_or(&1) as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "MAAC gradient error, double integrator (Fig. 20)",
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..max_h, 0.0..top)?;
    chart
        .configure_mesh()
        .x_desc("model horizon H")
        .y_desc("L1 error of the policy gradient")
        .label_style(("sans-serif", 13))
        .draw()?;
    for (estimator, color) in ESTIMATORS.into_iter().zip([BLUE, RED, GREEN]) {
        let points: Vec<(f64, f64, f64)> = HORIZONS
            .iter()
            .map(|&h| {
                let (m, s) = summary(estimator, h);
                (h as f64, m, s)
            })
            .collect();
        chart
            .draw_series(LineSeries::new(
                points.iter().map(|p| (p.0, p.1)),
                color.stroke_width(2),
            ))?
            .label(estimator)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        chart.draw_series(points.iter().map(|&(h, m, s)| {
            PathElement::new(vec![(h, (m - s).max(0.0)), (h, m + s)], color.mix(0.5))
        }))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()?;
    root.present()?;
    Ok(())
}
