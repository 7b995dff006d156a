#!/usr/bin/env python3
"""PyTorch side of the candle/PyTorch comparison (docs/performance.md, issue 5).

Times the same workloads, with the same shapes and the same timing protocol, as the Rust
binary `crates/mbrl-policy-opt/benches/side_by_side.rs`:

- sgemm_1024: one 1024 x 1024 x 1024 f32 matmul (the GEMM rate, the limit for these shapes);
- ensemble_train_step: 5 members of 23 -> 512 -> 512 -> 17 ReLU as batched matmuls, inputs
  and targets normalised, MSE on the state change, backward, Adam, batch 256 per member;
- rollout_step_all_members / rollout_step_own_member: one imagined step of 500 states in
  `step_rand` mode (each state advanced by a member drawn at random) plus a half-cheetah-like
  reward, under no_grad, in the two idiomatic ways: every member on every state then a gather
  (MBRL-Lib's way, 5x the FLOPs), and each state through its own member only (mbrl's
  ModelEnv's way, the same FLOPs as the Rust side);
- policy_fwd_bwd: 17 -> 32 -> 32 -> 6 tanh Gaussian policy, mean log-likelihood of a batch
  of 20000 actions, backward;
- fisher_vector_product: the same policy and batch, the same algorithm as mbrl (Gauss-Newton:
  `J v` by forward-mode differentiation, then one backward pass);
- fisher_vector_product_double_backward: `F v` by double backpropagation of the mean KL to a
  detached copy (the usual PyTorch TRPO implementation, a different algorithm).

Protocol (identical in Rust): each workload is warmed up for `--warmup` seconds, then run for
`--measure` seconds; the median of the per-call times is printed as one JSON line
`{"name": ..., "median_ms": ..., "calls": ...}`.

Usage: python scripts/perf_torch.py [--threads 2] [--warmup 1] [--measure 3] [--only NAME]
Run it through scripts/perf_compare.py, which alternates it with the Rust side.
"""

import argparse
import json
import statistics
import time

import torch

OBS, ACT = 17, 6


def timed(name, fn, warmup, measure):
    end = time.perf_counter() + warmup
    while time.perf_counter() < end:
        fn()
    times = []
    end = time.perf_counter() + measure
    while time.perf_counter() < end or len(times) < 5:
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return {"name": name, "median_ms": 1e3 * statistics.median(times), "calls": len(times)}


def ensemble_params(k, sizes, generator):
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        bound = (1.0 / fan_in) ** 0.5
        w = (torch.rand(k, fan_in, fan_out, generator=generator) * 2 - 1) * bound
        b = torch.zeros(k, 1, fan_out)
        params += [w.requires_grad_(), b.requires_grad_()]
    return params


def ensemble_forward(params, x):
    layers = len(params) // 2
    for i in range(layers):
        x = torch.baddbmm(params[2 * i + 1], x, params[2 * i])
        if i + 1 < layers:
            x = torch.relu(x)
    return x


def ensemble_train_step(generator):
    k, batch = 5, 256
    params = ensemble_params(k, [OBS + ACT, 512, 512, OBS], generator)
    opt = torch.optim.Adam(params, lr=1e-3)
    obs = torch.randn(k, batch, OBS, generator=generator)
    act = torch.randn(k, batch, ACT, generator=generator)
    nxt = obs + 0.1
    in_mean, in_std = torch.zeros(OBS + ACT), torch.ones(OBS + ACT)
    out_mean, out_std = torch.zeros(OBS), torch.ones(OBS)

    def step():
        x = (torch.cat([obs, act], dim=2) - in_mean) / in_std
        y = ((nxt - obs) - out_mean) / out_std
        loss = ((ensemble_forward(params, x) - y) ** 2).mean(dim=(1, 2)).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def sgemm_1024(generator):
    a = torch.randn(1024, 1024, generator=generator)
    b = torch.randn(1024, 1024, generator=generator)
    return lambda: a @ b


def cheetah_reward(act, next_obs):
    return next_obs[:, 8] - 0.05 * (act**2).sum(dim=1)


def rollout_step_all_members(generator):
    k, n = 5, 500
    params = [p.detach() for p in ensemble_params(k, [OBS + ACT, 512, 512, OBS], generator)]
    obs = torch.randn(n, OBS, generator=generator)
    act = torch.randn(n, ACT, generator=generator)
    rows = torch.arange(n)

    @torch.no_grad()
    def step():
        x = torch.cat([obs, act], dim=1).expand(k, n, OBS + ACT)
        delta = ensemble_forward(params, x)
        member = torch.randint(0, k, (n,), generator=generator)
        nxt = obs + delta[member, rows]
        return nxt, cheetah_reward(act, nxt)

    return step


def rollout_step_own_member(generator):
    k, n = 5, 500
    params = [p.detach() for p in ensemble_params(k, [OBS + ACT, 512, 512, OBS], generator)]
    obs = torch.randn(n, OBS, generator=generator)
    act = torch.randn(n, ACT, generator=generator)

    @torch.no_grad()
    def step():
        x = torch.cat([obs, act], dim=1)
        member = torch.randint(0, k, (n,), generator=generator)
        delta = torch.empty(n, OBS)
        for m in range(k):
            idx = (member == m).nonzero(as_tuple=True)[0]
            h = x[idx]
            for i in range(len(params) // 2):
                h = torch.addmm(params[2 * i + 1][m], h, params[2 * i][m])
                if i + 1 < len(params) // 2:
                    h = torch.relu(h)
            delta[idx] = h
        nxt = obs + delta
        return nxt, cheetah_reward(act, nxt)

    return step


class GaussianMlp(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(OBS, 32),
            torch.nn.Tanh(),
            torch.nn.Linear(32, 32),
            torch.nn.Tanh(),
            torch.nn.Linear(32, ACT),
        )
        self.log_std = torch.nn.Parameter(torch.zeros(ACT))

    def log_prob(self, obs, act):
        mean = self.net(obs)
        z = (act - mean) * torch.exp(-self.log_std)
        return -0.5 * (z**2).sum(1) - self.log_std.sum() - 0.5 * ACT * torch.log(
            torch.tensor(2 * torch.pi)
        )

    def kl_to(self, obs, old_mean, old_log_std):
        mean = self.net(obs)
        var, old_var = torch.exp(2 * self.log_std), torch.exp(2 * old_log_std)
        kl = self.log_std - old_log_std + (old_var + (old_mean - mean) ** 2) / (2 * var) - 0.5
        return kl.sum(1).mean()


def policy_fwd_bwd(generator):
    policy = GaussianMlp()
    obs = torch.randn(20000, OBS, generator=generator)
    act = torch.randn(20000, ACT, generator=generator)

    def step():
        policy.zero_grad(set_to_none=True)
        policy.log_prob(obs, act).mean().backward()

    return step


def fisher_vector_product_double_backward(generator):
    policy = GaussianMlp()
    obs = torch.randn(20000, OBS, generator=generator)
    params = list(policy.parameters())
    v = torch.randn(sum(p.numel() for p in params), generator=generator)
    with torch.no_grad():
        old_mean, old_log_std = policy.net(obs), policy.log_std.clone()

    def step():
        kl = policy.kl_to(obs, old_mean, old_log_std)
        grads = torch.autograd.grad(kl, params, create_graph=True)
        flat = torch.cat([g.reshape(-1) for g in grads])
        hv = torch.autograd.grad(flat @ v, params)
        return torch.cat([h.reshape(-1) for h in hv])

    return step


def fisher_vector_product_gauss_newton(generator):
    """mbrl's algorithm: `F v = J^T M J v` with `J v` by forward-mode differentiation of the
    means (torch.func.jvp), `M = diag(1 / sigma^2)` for the means and 2 for each log-std, and
    one backward pass for `J^T (.)`."""
    policy = GaussianMlp()
    obs = torch.randn(20000, OBS, generator=generator)
    params = list(policy.parameters())
    v = torch.randn(sum(p.numel() for p in params), generator=generator)
    sizes = [p.numel() for p in params]
    is_log_std = [p is policy.log_std for p in params]
    names = [name for name, _ in policy.net.named_parameters()]

    def means(*values):
        return torch.func.functional_call(policy.net, dict(zip(names, values)), (obs,))

    def step():
        parts = [d.reshape(p.shape) for d, p in zip(torch.split(v, sizes), params)]
        net_dirs = tuple(d for d, log_std in zip(parts, is_log_std) if not log_std)
        log_std_dir = next(d for d, log_std in zip(parts, is_log_std) if log_std)
        primals = tuple(p.detach() for p in policy.net.parameters())
        _, dmean = torch.func.jvp(means, primals, net_dirs)
        inv_var = torch.exp(-2 * policy.log_std.detach())
        weight_mean = dmean * inv_var / obs.shape[0]
        scalar = (policy.net(obs) * weight_mean).sum() + (policy.log_std * 2 * log_std_dir).sum()
        grads = torch.autograd.grad(scalar, params)
        return torch.cat([g.reshape(-1) for g in grads])

    return step


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--measure", type=float, default=3.0)
    parser.add_argument("--only", help="time just this workload")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    workloads = [
        ("sgemm_1024", sgemm_1024),
        ("ensemble_train_step", ensemble_train_step),
        ("rollout_step_all_members", rollout_step_all_members),
        ("rollout_step_own_member", rollout_step_own_member),
        ("policy_fwd_bwd", policy_fwd_bwd),
        ("fisher_vector_product", fisher_vector_product_gauss_newton),
        ("fisher_vector_product_double_backward", fisher_vector_product_double_backward),
    ]
    results = [
        timed(name, make(generator), args.warmup, args.measure)
        for name, make in workloads
        if args.only in (None, name)
    ]
    for r in results:
        print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
