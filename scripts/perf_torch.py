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
- sac_update / maac_actor_update: the inner loops of SAC and MAAC, as
  `crates/mbrl-maac/benches/actor_critic.rs` (one SAC update at batch 256 with 256-256 actor and
  twin critics; MAAC's H = 3 actor update through an 8 x (4 x 200) probabilistic ensemble);
- fisher_vector_product_double_backward: `F v` by double backpropagation of the mean KL to a
  detached copy (the usual PyTorch TRPO implementation, a different algorithm);
- grbal_step_mppi / grbal_step_random_shooting / rebal_step_mppi: one control step of the
  adaptive controllers, as `crates/mbrl-adapt/benches/control_step.rs`: a 3 x 512 ReLU
  state-change model (normalised inputs and target) adapted on the last 16 transitions (GrBAL:
  one SGD step of 0.001; ReBAL: a 256-unit GRU reads them, and the MLP takes its state as extra
  inputs), then 500 candidates over 10 steps (MPPI: one iteration, warm start; or random
  shooting) with the half-cheetah reward;
- rebal_step_mppi_folded: ReBAL's step with the context's part of the first layer folded into
  its bias once per step (`[x, c] W + b = x W_x + (c W_c + b)`), as mbrl plans; the plain
  rebal_step_mppi concatenates the context to every candidate's input, the usual way.

Protocol (identical in Rust): each workload is warmed up for `--warmup` seconds, then run for
`--measure` seconds; the median of the per-call times is printed as one JSON line
`{"name": ..., "median_ms": ..., "calls": ...}`.

Usage: python scripts/perf_torch.py [--threads 2] [--warmup 1] [--measure 3] [--only NAME]
Run it through scripts/perf_compare.py, which alternates it with the Rust side.
"""

import argparse
import copy
import json
import math
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


class SquashedGaussianActor(torch.nn.Module):
    """256-256 ReLU, mean and clipped log-std heads, tanh squashing (SAC / MAAC)."""

    def __init__(self, hidden=256):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(OBS, hidden),
            torch.nn.ReLU(),
            torch.nn.Linear(hidden, hidden),
            torch.nn.ReLU(),
            torch.nn.Linear(hidden, 2 * ACT),
        )

    def sample(self, obs):
        mean, log_std = self.net(obs).chunk(2, dim=-1)
        log_std = log_std.clamp(-20, 2)
        eps = torch.randn_like(mean)
        u = mean + log_std.exp() * eps
        log_jac = 2 * (math.log(2) - u - torch.nn.functional.softplus(-2 * u))
        log_prob = (-0.5 * eps**2 - log_std - log_jac).sum(-1) - 0.5 * ACT * math.log(2 * math.pi)
        return torch.tanh(u), log_prob


class TwinCritic(torch.nn.Module):
    """Two 256-256 ReLU Q-functions as one batched network (as mbrl stacks them)."""

    def __init__(self, hidden=256):
        super().__init__()
        self.params = torch.nn.ParameterList(ensemble_params(2, [OBS + ACT, hidden, hidden, 1], None))

    def forward(self, obs, act):
        x = torch.cat([obs, act], -1).expand(2, *obs.shape[:-1], OBS + ACT)
        return ensemble_forward(list(self.params), x).squeeze(-1)


def sac_update(generator):
    """One SAC update (CleanRL's order): one-step targets, twin critics, actor, temperature,
    Polyak step; batch 256, obs 17, act 6, Adam 3e-4."""
    actor, critic = SquashedGaussianActor(), TwinCritic()
    target = copy.deepcopy(critic)
    log_alpha = torch.zeros(1, requires_grad=True)
    opts = [
        torch.optim.Adam(actor.parameters(), lr=3e-4),
        torch.optim.Adam(critic.parameters(), lr=3e-4),
        torch.optim.Adam([log_alpha], lr=3e-4),
    ]
    b = 256
    obs, nxt = torch.randn(b, OBS, generator=generator), torch.randn(b, OBS, generator=generator)
    act = torch.randn(b, ACT, generator=generator).clamp(-1, 1)
    rew, done = torch.randn(b, generator=generator), torch.zeros(b)

    def step():
        alpha = log_alpha.exp().detach()
        with torch.no_grad():
            a2, lp2 = actor.sample(nxt)
            y = rew + 0.99 * (1 - done) * (target(nxt, a2).min(0).values - alpha * lp2)
        critic_loss = ((critic(obs, act) - y) ** 2).mean(1).sum()
        opts[1].zero_grad(set_to_none=True)
        critic_loss.backward()
        opts[1].step()
        a, lp = actor.sample(obs)
        actor_loss = (alpha * lp - critic(obs, a).min(0).values).mean()
        opts[0].zero_grad(set_to_none=True)
        actor_loss.backward()
        opts[0].step()
        alpha_loss = -(log_alpha * (lp.detach() - ACT)).mean()
        opts[2].zero_grad(set_to_none=True)
        alpha_loss.backward()
        opts[2].step()
        with torch.no_grad():
            for t, o in zip(target.parameters(), critic.parameters()):
                t.mul_(0.995).add_(o, alpha=0.005)

    return step


def maac_actor_update(generator):
    """MAAC's actor update: H = 3 steps through an 8-member 4 x 200 swish probabilistic ensemble
    (each row a member drawn per step, its predictive noise), the cheetah-like reward, 5
    terminal action samples on the twin critic, batch 256, one Adam step."""
    k, b, h = 8, 256, 3
    model = [p.detach() for p in ensemble_params(k, [OBS + ACT, 200, 200, 200, 200, 2 * OBS], generator)]
    actor, critic = SquashedGaussianActor(), TwinCritic()
    for p in critic.parameters():
        p.requires_grad_(False)
    opt = torch.optim.Adam(actor.parameters(), lr=3e-4)
    obs = torch.randn(b, OBS, generator=generator)

    def model_step(s, a):
        x = torch.cat([s, a], -1)
        member = torch.randint(0, k, (b,))
        out = torch.empty(b, 2 * OBS)
        for m in range(k):
            idx = (member == m).nonzero(as_tuple=True)[0]
            z = x[idx]
            for i in range(len(model) // 2):
                z = torch.baddbmm(model[2 * i + 1][m], z.unsqueeze(0), model[2 * i][m].unsqueeze(0))[0]
                if i + 1 < len(model) // 2:
                    z = z * torch.sigmoid(z)
            out = out.index_copy(0, idx, z)
        mean, log_var = out.chunk(2, -1)
        nxt = s + mean + (0.5 * log_var.clamp(-10, 0.5)).exp() * torch.randn_like(mean)
        return nxt.clamp(-100, 100), nxt[:, 8] - 0.1 * (a**2).sum(-1)

    def step():
        a, lp = actor.sample(obs)
        s, value = obs, torch.zeros(b)
        for t in range(h):
            s, r = model_step(s, a)
            value = value + 0.99**t * r
            a, _ = actor.sample(s)
        terminal = critic(s, a).min(0).values
        for _ in range(4):
            terminal = terminal + critic(s, actor.sample(s)[0]).min(0).values
        value = value + 0.99**h * terminal / 5
        loss = (0.2 * lp - value).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def adaptive_control_step(generator, planner, recurrent, fold=False):
    """One action of GrBAL's or ReBAL's controller (see the module docstring); `fold` folds
    ReBAL's context into the first layer's bias."""
    past, n, h, hidden = 16, 500, 10, 256
    context = hidden if recurrent else 0
    sizes = [OBS + ACT + context, 512, 512, 512, OBS]
    weights = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        bound = 1 / math.sqrt(fan_in)
        weights.append((torch.rand(fan_in, fan_out, generator=generator) * 2 - 1) * bound)
        weights.append((torch.rand(fan_out, generator=generator) * 2 - 1) * bound)
    in_mean, in_std = torch.randn(OBS + ACT, generator=generator), torch.rand(OBS + ACT, generator=generator) + 0.5
    d_mean, d_std = torch.randn(OBS, generator=generator), torch.rand(OBS, generator=generator) + 0.5
    gru = torch.nn.GRU(2 * OBS + ACT, hidden, batch_first=True) if recurrent else None
    obs = torch.randn(past, OBS, generator=generator)
    act = torch.randn(past, ACT, generator=generator).clamp(-1, 1)
    nxt = torch.randn(past, OBS, generator=generator)
    state = torch.randn(1, OBS, generator=generator)
    warm = torch.zeros(h, ACT)

    def delta(w, s, a, c):
        z = (torch.cat([s, a], -1) - in_mean) / in_std
        if c is not None:
            z = torch.cat([z, c.expand(z.shape[0], -1)], -1)
        for i in range(len(w) // 2):
            z = torch.addmm(w[2 * i + 1], z, w[2 * i])
            if i + 1 < len(w) // 2:
                z = torch.relu(z)
        return z

    def step():
        nonlocal warm
        target = (nxt - obs - d_mean) / d_std
        if recurrent:
            with torch.no_grad():
                x = torch.cat([(torch.cat([obs, act], -1) - in_mean) / in_std, target], -1)
                _, c = gru(x.unsqueeze(0))
                c = c[0]
            w = weights
            if fold:
                n_in = OBS + ACT
                w = [weights[0][:n_in], c @ weights[0][n_in:] + weights[1]] + weights[2:]
                c = None
        else:
            params = [p.clone().requires_grad_(True) for p in weights]
            loss = ((delta(params, obs, act, None) - target) ** 2).mean()
            grads = torch.autograd.grad(loss, params)
            w = [(p - 0.001 * g).detach() for p, g in zip(params, grads)]
            c = None
        with torch.no_grad():
            if planner == "mppi":
                cand = (warm + 0.5 * torch.randn(n, h, ACT)).clamp(-1, 1)
            else:
                cand = torch.rand(n, h, ACT) * 2 - 1
            s, ret = state.expand(n, OBS), torch.zeros(n)
            for t in range(h):
                a = cand[:, t]
                s = s + delta(w, s, a, c) * d_std + d_mean
                ret = ret + s[:, 8] - 0.05 * (a**2).sum(-1)
            if planner == "mppi":
                weight = torch.softmax(ret - ret.max(), 0)
                plan = (weight[:, None, None] * cand).sum(0)
                warm = torch.cat([plan[1:], plan[-1:]], 0)
                return plan[0]
            return cand[ret.argmax(), 0]

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
        ("sac_update", sac_update),
        ("maac_actor_update", maac_actor_update),
        ("grbal_step_mppi", lambda g: adaptive_control_step(g, "mppi", False)),
        ("grbal_step_random_shooting", lambda g: adaptive_control_step(g, "random_shooting", False)),
        ("rebal_step_mppi", lambda g: adaptive_control_step(g, "mppi", True)),
        ("rebal_step_mppi_folded", lambda g: adaptive_control_step(g, "mppi", True, fold=True)),
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
