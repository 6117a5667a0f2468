"""Algorithm 1 with and without a state term on the soft linear-quadratic test bed.

The problem (:data:`PROBLEM`) has the reward :math:`-(s^\\top Q s + a^\\top R a)`: its maximum
over actions, :math:`-s^\\top Q s` at :math:`a = 0`, depends on the state, which a Gaussian
log-density with one covariance cannot carry. A soft policy iteration learner is observed
(1024 transitions per policy, linear policies, ``hidden=()``); Algorithm 1 recovers
:math:`r_\\phi` in the paper's log-density form and in the state-term form
:math:`\\ln \\pi_\\phi(a|s) + g_\\phi(s)` with a quadratic :math:`g_\\phi`. Both rewards are
quadratic, so the mean of each one's soft-optimal policy is exact (:func:`lfl_lib.lq.soft_optimal`);
the error is its relative distance to the optimum's, :math:`\\|G_\\phi - G^*\\|/\\|G^*\\|`.

``lfl lq-state-term`` (or ``python -m lfl_lib.experiments.lq_state_term``) writes ``book/data/reward_bench/lq_state_term.json``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence, cast

import numpy as np
import torch

from .. import lq
from ..deep_lfl import DeepLfLConfig, RewardModel, recover_reward
from ..nets import GaussianActor
from .._io import git_commit, versions, write_json

__all__ = [
    "PROBLEM",
    "CONFIG",
    "state_term_matrix",
    "kl_state_matrix",
    "reward_matrix_of",
    "observer_error",
    "theorem2_state_term_error",
    "run",
    "main",
]

#: The LQ test bed (deterministic dynamics, horizon 5); ``tests/test_deep_lfl.py`` imports it.
PROBLEM = lq.LQProblem(
    A=np.array([[1.0, 0.2], [0.0, 0.9]]),
    B=np.array([[0.0], [0.5]]),
    Q=np.eye(2),
    R=np.array([[0.5]]),
    gamma=0.9,
    alpha=1.0,
    horizon=5,
    start_cov=0.25 * np.eye(2),
)
#: Linear policies and reward; the end-to-end test of ``tests/test_deep_lfl.py`` imports them.
CONFIG = DeepLfLConfig(
    alpha_model=1.0,
    gamma=0.9,
    hidden=(),
    shared_units=64,
    lr=2e-2,
    policy_steps=300,
    kl_steps=1000,
    reward_init_steps=200,
    consistency_steps=800,
)
#: The first policy of the learner: it ignores the state.
PI1 = lq.LinearGaussianPolicy(np.array([[0.0, 0.0]]), np.array([0.0]), np.array([[0.05]]))


def _embed_state(problem: lq.LQProblem, Mx: np.ndarray) -> np.ndarray:
    d = problem.n + 1
    M = np.zeros((d + problem.m, d + problem.m))
    M[:d, :d] = Mx
    return M


def state_term_matrix(
    problem: lq.LQProblem, U: np.ndarray, b: np.ndarray, mean: np.ndarray, std: np.ndarray
) -> np.ndarray:
    """:math:`M` with :math:`-z^\\top M z = g(s)` for :math:`g = u^\\top U u + b^\\top u`, :math:`u = (s - \\mathrm{mean})/\\mathrm{std}`."""
    n = problem.n
    D = np.hstack([np.diag(1.0 / std), (-mean / std)[:, None]])  # u = D x, x = (s, 1)
    Us = 0.5 * (U + U.T)
    e = np.zeros(n + 1)
    e[n] = 1.0
    lin = D.T @ b  # b'u = lin'x = x' e lin' x
    Mx = -(D.T @ Us @ D + 0.5 * (np.outer(e, lin) + np.outer(lin, e)))
    return _embed_state(problem, Mx)


def kl_state_matrix(
    problem: lq.LQProblem, p: lq.LinearGaussianPolicy, q: lq.LinearGaussianPolicy, scale: float
) -> np.ndarray:
    """:math:`M` of the state reward :math:`\\mathrm{scale} \\cdot KL(p(\\cdot|s) \\| q(\\cdot|s))` (a quadratic in x)."""
    n, m = problem.n, problem.m
    Qi = np.linalg.inv(q.cov)
    Dg = q.G - p.G
    Mx = -0.5 * scale * Dg.T @ Qi @ Dg
    const = 0.5 * (np.trace(Qi @ p.cov) - m + np.linalg.slogdet(q.cov)[1] - np.linalg.slogdet(p.cov)[1])
    Mx[n, n] -= scale * const
    return _embed_state(problem, Mx)


def reward_matrix_of(problem: lq.LQProblem, reward: RewardModel) -> np.ndarray:
    """The quadratic :math:`M` of a linear recovered reward (``hidden=()``, state term None or quadratic)."""
    mean = reward.norm.mean.double().numpy()
    std = reward.norm.std.double().numpy()
    phi = lq.from_actor(cast(GaussianActor, reward.policy), mean, std)
    M = lq.log_policy_reward_matrix(phi)
    if reward.state_term == "quadratic":
        g = cast(Any, reward.g)  # the quadratic state term: U and b
        M = M + state_term_matrix(problem, g.U.detach().double().numpy(), g.b.detach().double().numpy(), mean, std)
    elif reward.state_term is not None:
        raise ValueError("reward must have no state term or a quadratic one")
    return M


def observer_error(problem: lq.LQProblem, M: np.ndarray) -> float:
    """Relative error :math:`\\|G - G^*\\|/\\|G^*\\|` of the mean of the soft-optimal policy of the reward M."""
    opt, _ = lq.soft_optimal(problem)
    pol, _ = lq.soft_optimal(problem, M)
    return float(np.linalg.norm(pol.G - opt.G) / np.linalg.norm(opt.G))


def theorem2_state_term_error(problem: lq.LQProblem, pi1: lq.LinearGaussianPolicy) -> float:
    """Error of the exact reward :math:`\\alpha \\ln \\pi_2(a|s) + \\alpha KL(\\pi_1(\\cdot|s) \\| \\pi_2(\\cdot|s))`.

    :math:`\\pi_2` is the soft improvement of ``pi1``; by Theorem 2 this reward is the true one
    up to a shaping (deterministic dynamics), so the error is 0 up to round-off.
    """
    pi2 = lq.soft_improve(problem, pi1)
    M = lq.log_policy_reward_matrix(pi2, problem.alpha) + kl_state_matrix(problem, pi1, pi2, problem.alpha)
    return observer_error(problem, M)


def run(seed: int, n_improvements: int = 1, n_transitions: int = 1024, without_kl: bool = True) -> dict[str, Any]:
    """Both forms on one draw of data: errors with the KL term (and, if ``without_kl``, with it dropped), and the fitted terms' sizes."""
    pis = lq.spi_learner(PROBLEM, PI1, n_improvements)
    opt, _ = lq.soft_optimal(PROBLEM)
    rng = np.random.default_rng(seed)
    rolls = [lq.rollout(PROBLEM, p, n_transitions, rng) for p in pis]
    out: dict[str, Any] = {
        "seed": seed,
        "n_improvements": n_improvements,
        "n_transitions": n_transitions,
        "learner_error": float(np.linalg.norm(pis[-1].G - opt.G) / np.linalg.norm(opt.G)),
    }
    S = torch.as_tensor(rolls[-1].observations, dtype=torch.float32)
    A = torch.as_tensor(rolls[-1].actions, dtype=torch.float32)
    for form, cfg in (
        ("log-density", CONFIG),
        ("state-term", replace(CONFIG, reward_form="state-term", state_term="quadratic")),
    ):
        states: list[dict[str, Any]] = []
        reward, info = recover_reward(rolls, cfg, seed=seed, checkpoint=states.append)
        # the same fit with the divergence term dropped (rho = 0): what the fit takes from the small KL signal
        if without_kl:
            no_kl = dict(states[2])
            no_kl["rho"] = {k: torch.zeros_like(v) if k.startswith("net.2") else v for k, v in states[1]["rho"].items()}
            reward0, _ = recover_reward(rolls, cfg, seed=seed, state=no_kl)
        with torch.no_grad():
            logd = reward.policy.log_prob(reward.norm(S), A).numpy()
            g = reward.state_value(S).numpy()
        out[form] = {
            "error": observer_error(PROBLEM, reward_matrix_of(PROBLEM, reward)),
            "consistency": info["consistency"],
            "kl_mse": info["kl_mse"],
            "sd_log_density": float(np.std(logd)),
            "sd_state_term": float(np.std(g)),
        }
        if without_kl:
            out[form]["error_without_kl"] = observer_error(PROBLEM, reward_matrix_of(PROBLEM, reward0))
    # the size of the signal: alpha * gamma * KL(pi_k || pi_{k+1})(s') against alpha * ln pi_{k+1}(a|s)
    kls = np.concatenate(
        [lq.gaussian_kl(pis[k], pis[k + 1], rolls[k + 1].next_observations) for k in range(n_improvements)]
    )
    lps = np.concatenate(
        [pis[k + 1].log_prob(rolls[k + 1].observations, rolls[k + 1].actions) for k in range(n_improvements)]
    )
    out["signal"] = {
        "sd_alpha_gamma_kl": float(PROBLEM.alpha * PROBLEM.gamma * np.std(kls)),
        "mean_alpha_gamma_kl": float(PROBLEM.alpha * PROBLEM.gamma * np.mean(kls)),
        "sd_alpha_log_pi": float(PROBLEM.alpha * np.std(lps)),
    }
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="lfl lq-state-term", description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--improvements", nargs="+", type=int, default=[1, 2])
    p.add_argument("--out", default="book/data/reward_bench/lq_state_term.json")
    a = p.parse_args(argv)
    t0 = time.perf_counter()
    runs = [run(s, k) for k in a.improvements for s in a.seeds]
    res = {
        "runs": runs,
        "theorem2_state_term_error": theorem2_state_term_error(PROBLEM, PI1),
        "config": CONFIG.to_dict(),
        "command": "python -m lfl_lib.experiments.lq_state_term "
        + " ".join(shlex.quote(x) for x in (argv or sys.argv[1:])),
        "git_commit": git_commit(),
        "versions": versions(),
        "wall_time_s": round(time.perf_counter() - t0, 1),
    }
    path = Path(a.out)
    write_json(res, path, mkdir=True)
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
