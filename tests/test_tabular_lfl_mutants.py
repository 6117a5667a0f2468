"""Contracts of lfl_lib.tabular_lfl that the mutation run (``make mutation``) found untested.

Closed forms on small random MDPs: the learner models' predictions reproduce an exact
learner's next policies, the reward of a pair outside the loss is the documented
:math:`r_0`, the loss weights are the documented counts; and the exact messages and
defaults of the entry points.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch  # the reference Adam (imported once, not in every test)
from numpy.testing import assert_allclose, assert_array_equal
from scipy.special import logsumexp

from conftest import random_consistency_problem, random_positive_policy
from lfl_lib.learners import kl_soft_improvement
from lfl_lib.mdp import random_mdp, soft_evaluate
from lfl_lib.tabular_lfl import (
    LfLResult,
    consistency_fit,
    estimate_policies,
    fit_lfl,
    kl_targets,
    predict_next_policies,
    recover_reward,
    select_learner_model,
    targets,
)
from lfl_lib.trajectories import Trajectory

# the predictions are a linear solve and a softmax on well-conditioned problems (gamma = 0.8):
# they agree with the independent computations to ~1e-13; 1e-10 leaves margin
EXACT = dict(rtol=0, atol=1e-10)


def _kl_potential(mdp, pi, alpha, lam):
    """Z(s) = beta ln sum_a pi^(lam/beta) exp(Q^pi/beta), beta = alpha + lam: the KL step's normaliser."""
    Q, _ = soft_evaluate(mdp, pi, alpha)
    beta = alpha + lam
    return beta * logsumexp(Q / beta + (lam / beta) * np.log(pi), axis=1)


@pytest.mark.parametrize("lam", [0.0, 0.6, 1.3])
@pytest.mark.parametrize("big", [0.0, 5000.0])
def test_spi_and_kl_predictions_reproduce_an_exact_learner(lam, big):
    """With the true reward and the exact shapings f_k = -Z_k, both kinds of prediction give the learner's steps.

    The KL learner's step satisfies t_k = r + f_k - gamma P f_k with t_k its targets
    (:func:`kl_targets`) and f_k = -Z_k (book chapter "What kind of learner?"). With
    ``big`` > 0 state 0's rewards are thousands above the others: the softmax must be
    taken row by row, stably (the dynamics then ignore the action, so that the policies stay soft).
    """
    from lfl_lib.mdp import TabularMDP

    rng = np.random.default_rng(3)
    mdp = random_mdp(5, 3, rng, gamma=0.8)
    if big:
        r = mdp.r.copy()
        r[0] += big
        mdp = TabularMDP(np.repeat(mdp.P[:, :1], 3, axis=1), r, 0.8)
    alpha = 0.7
    pis = [random_positive_policy(rng, 5, 3)]
    for _ in range(2):
        pis.append(kl_soft_improvement(mdp, pis[-1], alpha, lam))
    f = np.array([-_kl_potential(mdp, pi, alpha, lam) for pi in pis[:-1]])
    tk = kl_targets(pis, mdp.P, mdp.gamma, alpha, lam)
    shaping = f[:, :, None] - mdp.gamma * np.einsum("sat,kt->ksa", mdp.P, f)
    # the premise: f_k are the exact shapings (to rounding of potentials of order big / (1 - gamma))
    assert_allclose(tk, mdp.r[None] + shaping, rtol=0, atol=1e-8 if big else 1e-10)
    res = LfLResult(mdp.r, pis, tk, np.full(tk.shape, 1.0 / 15), f, mdp.P, "kl" if lam else "spi", lam)
    for kind in ("forward", "equation"):
        pred = predict_next_policies(res, mdp.gamma, alpha, kind)
        assert len(pred) == 2
        assert_allclose(pred, pis[1:], rtol=0, atol=1e-8 if big else 1e-10)
    assert_array_equal(
        predict_next_policies(res, mdp.gamma, alpha), predict_next_policies(res, mdp.gamma, alpha, "forward")
    )


def test_forward_spi_prediction_from_a_policy_with_zero_probabilities():
    """An action of probability 0 contributes 0 ln 0 = 0 to the entropy of the evaluated policy."""
    from lfl_lib.improvement import soft_improvement

    rng = np.random.default_rng(5)
    mdp = random_mdp(4, 3, rng, gamma=0.8)
    pi = random_positive_policy(rng, 4, 3)
    pi[1] = [0.0, 0.4, 0.6]
    pi[2] = [0.0, 0.0, 1.0]
    res = LfLResult(mdp.r, [pi, pi], np.zeros((1, 4, 3)), np.full((1, 4, 3), 1 / 12), np.zeros((1, 4)), mdp.P)
    assert_allclose(predict_next_policies(res, mdp.gamma, 0.5)[0], soft_improvement(mdp, pi, 0.5), **EXACT)


def test_svi_predictions_reproduce_soft_value_iteration():
    """Soft value iteration from V_0: pi_{k+1} = softmax((r + gamma P V_{k-1})/alpha), V_k = alpha lse(.)."""
    rng = np.random.default_rng(4)
    mdp = random_mdp(5, 3, rng, gamma=0.8)
    alpha = 0.6
    V = [3.0 * rng.standard_normal(5)]
    pis = [np.full((5, 3), 1.0 / 3)]  # the first policy is not predicted
    for _ in range(3):
        Q = mdp.r + mdp.gamma * (mdp.P @ V[-1])
        pis.append(np.exp(Q / alpha - logsumexp(Q / alpha, axis=1, keepdims=True)))
        V.append(alpha * logsumexp(Q / alpha, axis=1))
    potentials = np.array(V)  # V_0, ..., V_{N-1}: one per policy, as value_iteration_fit returns them
    res = LfLResult(mdp.r, pis, np.zeros((3, 5, 3)), np.full((3, 5, 3), 1.0 / 15), potentials, mdp.P, "svi", 0.0)
    for kind in ("forward", "equation"):
        pred = predict_next_policies(res, mdp.gamma, alpha, kind)
        assert len(pred) == 3
        assert_allclose(pred, pis[1:], **EXACT)


# ----------------------------------------------------------------------------- policy estimates and the loss


def _torch_adam_estimate(counts, lam, n_steps, lr):
    """An independent reference: torch's Adam ascending sum_s [sum_a n(s,a) ln pi(a|s) + lam n(s) H(pi(.|s))]."""
    c = torch.tensor(counts, dtype=torch.float64)
    theta = torch.zeros_like(c, requires_grad=True)
    opt = torch.optim.Adam([theta], lr=lr, betas=(0.9, 0.999), eps=1e-8, maximize=True)
    for _ in range(n_steps):
        opt.zero_grad()
        logp = torch.log_softmax(theta, dim=1)
        H = -(logp.exp() * logp).sum(dim=1)
        ((c * logp).sum() + lam * (c.sum(dim=1) * H).sum()).backward()
        opt.step()
    return torch.softmax(theta.detach(), dim=1).numpy()


@pytest.mark.parametrize("n_steps, lr, lam", [(1, 0.5, 0.3), (10, 0.5, 0.3), (25, 0.2, 0.3), (1000, 1.0, 1e-3)])
def test_entropy_ml_adam_is_adam_on_the_papers_objective(n_steps, lr, lam):
    """Also far from uniform (lambda = 1e-3, 1000 steps of rate 1: logits in the hundreds, softmax taken stably)."""
    trajs = [
        Trajectory(states=[0, 1, 0, 1, 2, 0], actions=[0, 2, 0, 1, 1]),
        Trajectory(states=[2, 2, 1, 0, 0], actions=[1, 0, 2, 2]),
    ]
    counts = [np.zeros((4, 3)), np.zeros((4, 3))]
    for c, tr in zip(counts, trajs):
        np.add.at(c, (tr.states[:-1], tr.actions), 1.0)
    got = estimate_policies(trajs, 4, 3, "entropy_ml_adam", entropy_bonus=lam, n_steps=n_steps, lr=lr)
    assert len(got) == 2
    for c, pi in zip(counts, got):
        assert_allclose(pi, _torch_adam_estimate(c, lam, n_steps, lr), rtol=0, atol=1e-9)
    assert_allclose(got[0][3], 1 / 3, rtol=0, atol=1e-15)  # state 3 is never visited: uniform


def test_consistency_loss_is_the_weighted_squared_residual_of_eq5():
    from lfl_lib.tabular_lfl import consistency_loss

    rng = np.random.default_rng(8)
    mdp = random_mdp(4, 3, rng, gamma=0.8)
    K = 2
    r = rng.standard_normal((4, 3))
    f = rng.standard_normal((K, 4))
    w = rng.random((K, 4, 3))
    exact = np.array([r + f[k][:, None] - mdp.gamma * (mdp.P @ f[k]) for k in range(K)])
    assert_allclose(consistency_loss(exact, w, mdp.P, mdp.gamma, r, f), 0.0, rtol=0, atol=1e-24)
    noise = rng.standard_normal((K, 4, 3))
    assert_allclose(
        consistency_loss(exact + noise, w, mdp.P, mdp.gamma, r, f), (w * noise**2).sum(), rtol=1e-12, atol=0
    )


# ----------------------------------------------------------------------------- fit_lfl on a small handmade data set

#: three policies' runs on 3 states and 2 actions; (2, 1) is never played, state 2 only by the second policy
RUNS = [
    Trajectory(states=[0, 0, 1, 0, 1, 1], actions=[0, 1, 0, 1, 1]),
    Trajectory(states=[1, 2, 0, 1, 0, 0], actions=[0, 0, 0, 1, 0]),
    Trajectory(states=[0, 1, 1, 0, 1, 0], actions=[1, 1, 0, 0, 1]),
]
GAMMA, ALPHA_M = 0.8, 0.7

#: fit_lfl's options and their defaults as its docstring states them (TabularLfLConfig's fields).
DOCUMENTED_DEFAULTS = dict(
    policy_estimator="entropy_ml",
    policy_prior=1.0,
    policy_prior_mean="previous",
    entropy_bonus=0.4,
    policy_steps=10,
    policy_lr=0.5,
    transition_prior=1e-3,
    weights="all",
    weight_floor=0.0,
    unseen="min",
    solver="exact",
    n_steps=200,
    lr=1.0,
)


def _counts(tr):
    c = np.zeros((3, 2))
    np.add.at(c, (tr.states[:-1], tr.actions), 1.0)
    return c


def test_loss_weights_are_the_documented_counts():
    c = [_counts(tr) for tr in RUNS]
    n = [x.sum(axis=1) for x in c]
    want = {
        "all": [np.ones((3, 2)), np.ones((3, 2))],
        "pairs": [c[1] + 0.5, c[2] + 0.5],
        "states": [np.repeat(n[1][:, None], 2, axis=1) + 0.5, np.repeat(n[2][:, None], 2, axis=1) + 0.5],
        "both": [
            np.repeat(np.minimum(n[0], n[1])[:, None], 2, axis=1) + 0.5,
            np.repeat(np.minimum(n[1], n[2])[:, None], 2, axis=1) + 0.5,
        ],
    }
    for weights, w in want.items():
        got = fit_lfl(RUNS, 3, 2, GAMMA, ALPHA_M, weights=weights, weight_floor=0.5).weights
        assert_allclose(got, [x / x.sum() for x in w], rtol=1e-15, atol=0, err_msg=weights)
    # without a floor; and "both" where no state has data under both policies: every pair, equally
    assert_allclose(
        fit_lfl(RUNS, 3, 2, GAMMA, ALPHA_M, weights="pairs").weights, [c[1] / 5, c[2] / 5], rtol=1e-15, atol=0
    )
    apart = [Trajectory(states=[0, 0, 0], actions=[0, 1]), Trajectory(states=[1, 2, 1], actions=[1, 0])]
    assert_allclose(
        fit_lfl(apart, 3, 2, GAMMA, ALPHA_M, weights="both").weights, np.full((1, 3, 2), 1 / 6), rtol=1e-15, atol=0
    )


@pytest.mark.parametrize("unseen", ["min", "mean", "zero"])
@pytest.mark.parametrize("model", ["spi", "kl", "svi"])
def test_fit_lfl_targets_and_the_reward_of_pairs_outside_the_loss(unseen, model):
    lam = 0.9 if model == "kl" else None
    res = fit_lfl(RUNS, 3, 2, GAMMA, ALPHA_M, weights="pairs", unseen=unseen, learner_model=model, kl_weight=lam)
    assert res.learner_model == model and res.kl_weight == (0.9 if model == "kl" else 0.0)
    assert len(res.policies) == 3 and res.P_hat.shape == (3, 2, 3)
    want_t = {
        "spi": targets(res.policies, res.P_hat, GAMMA, ALPHA_M),
        "kl": kl_targets(res.policies, res.P_hat, GAMMA, ALPHA_M, 0.9),
        "svi": ALPHA_M * np.log(np.array(res.policies[1:])),
    }[model]
    assert_allclose(res.targets, want_t, rtol=1e-14, atol=1e-14)
    seen = res.weights > 0
    r0 = {"min": want_t[seen].min(), "mean": np.average(want_t[seen], weights=res.weights[seen]), "zero": 0.0}[unseen]
    # (2, 1) is in no improvement's loss: only the ridge mu (r - r0)^2 holds it, so r = r0 there
    assert not seen[:, 2, 1].any()
    assert_allclose(res.r[2, 1], r0, rtol=0, atol=1e-9)
    assert res.shapings.shape == ((3, 3) if model == "svi" else (2, 3))
    assert res.weights.shape == (2, 3, 2) and res.selection is None


def test_fit_lfl_passes_its_solver_options_to_the_consistency_fit():
    res = fit_lfl(RUNS, 3, 2, GAMMA, ALPHA_M, solver="adam", n_steps=7, lr=0.3, unseen="zero")
    r, f = consistency_fit(res.targets, res.weights, res.P_hat, GAMMA, r0=0.0, solver="adam", n_steps=7, lr=0.3)
    assert_array_equal(res.r, r)
    assert_array_equal(res.shapings, f)
    kl = fit_lfl(
        RUNS, 3, 2, GAMMA, ALPHA_M, solver="adam", n_steps=7, lr=0.3, unseen="zero", learner_model="kl", kl_weight=0.5
    )
    r, f = consistency_fit(kl.targets, kl.weights, kl.P_hat, GAMMA, r0=0.0, solver="adam", n_steps=7, lr=0.3)
    assert_array_equal(kl.r, r)
    assert_array_equal(kl.shapings, f)


@pytest.mark.parametrize(
    "options",
    [
        dict(),
        dict(policy_estimator="entropy_ml_adam"),
        dict(policy_estimator="dirichlet"),
        dict(weights="pairs"),
        dict(solver="adam"),
    ],
)
def test_fit_lfl_defaults_are_the_documented_ones(options):
    explicit = fit_lfl(RUNS, 3, 2, GAMMA, ALPHA_M, **{**DOCUMENTED_DEFAULTS, **options})
    default = fit_lfl(RUNS, 3, 2, GAMMA, ALPHA_M, **options)
    assert_array_equal(default.r, explicit.r)
    assert_array_equal(np.array(default.policies), np.array(explicit.policies))
    assert_array_equal(default.weights, explicit.weights)


def test_estimate_policies_defaults_and_a_single_trajectory():
    documented = dict(estimator="entropy_ml", prior=1.0, prior_mean="previous", entropy_bonus=0.4, n_steps=10, lr=0.5)
    for options in (dict(), dict(estimator="dirichlet"), dict(estimator="entropy_ml_adam")):
        assert_array_equal(
            np.array(estimate_policies(RUNS, 3, 2, **options)),
            np.array(estimate_policies(RUNS, 3, 2, **{**documented, **options})),
        )
    one = estimate_policies(RUNS[:1], 3, 2, "dirichlet", prior=2.0, prior_mean="uniform")
    assert len(one) == 1
    assert_allclose(
        one[0], (_counts(RUNS[0]) + 1.0) / (_counts(RUNS[0]).sum(axis=1, keepdims=True) + 2.0), rtol=1e-15, atol=0
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(weights="pair"), "weights must be 'states', 'pairs', 'all' or 'both'; got 'pair'"),
        (dict(unseen="max"), "unseen must be 'min', 'zero' or 'mean'; got 'max'"),
        (dict(solver="lbfgs"), "solver must be 'exact' or 'adam'; got 'lbfgs'"),
        (dict(transition_prior=0.0), "transition_prior must be a finite number > 0; got 0.0"),
        (dict(transition_prior=np.inf), "transition_prior must be a finite number > 0; got inf"),
        (dict(weight_floor=-1.0), "weight_floor must be a finite number >= 0; got -1.0"),
        (dict(weight_floor=np.nan), "weight_floor must be a finite number >= 0; got nan"),
        (dict(policy_estimator="mle"), "estimator must be 'dirichlet', 'entropy_ml' or 'entropy_ml_adam'; got 'mle'"),
        (dict(policy_prior_mean="flat"), "prior_mean must be 'uniform' or 'previous'; got 'flat'"),
        (dict(entropy_bonus=0.0), "entropy_bonus must be a finite number > 0; got 0.0"),
        (dict(entropy_bonus=np.inf), "entropy_bonus must be a finite number > 0; got inf"),
        (dict(policy_estimator="entropy_ml_adam", policy_steps=0), "n_steps must be an integer >= 1; got 0"),
        (dict(solver="adam", n_steps=0), "n_steps must be an integer >= 1; got 0"),
        (dict(terminal=[0, 2, 0]), "terminal must be a boolean mask of shape (3,); got int64 (3,)"),
        (dict(terminal=[True, False]), "terminal must be a boolean mask of shape (3,); got bool (2,)"),
        (dict(P=np.full((3, 2), 0.5)), "P must have 3 dimensions; got shape (3, 2)"),
        (
            dict(P=np.full((3, 2, 2), 0.5)),
            "P must have shape (n_states, n_actions, n_states) = (3, 2, 3); got (3, 2, 2)",
        ),
        (dict(P=np.full((3, 2, 3), 0.5)), "P must hold probabilities: non-negative, each P[s, a, :] summing to 1"),
        (
            dict(P=np.tile([1.5, -0.25, -0.25], (3, 2, 1))),
            "P must hold probabilities: non-negative, each P[s, a, :] summing to 1",
        ),
        (dict(learner_model="auto", weights="pair"), "weights must be 'states', 'pairs', 'all' or 'both'; got 'pair'"),
    ],
)
def test_fit_lfl_error_messages(kwargs, match):
    import re

    with pytest.raises(ValueError, match="^" + re.escape(match) + "$"):
        fit_lfl(RUNS, 3, 2, GAMMA, ALPHA_M, **kwargs)


def test_fit_lfl_accepts_every_documented_option_value():
    for options in (
        dict(weights="states"),
        dict(weights="both"),
        dict(weights="pairs"),
        dict(unseen="zero"),
        dict(unseen="mean"),
        dict(solver="adam", n_steps=3),
        dict(policy_prior_mean="uniform", policy_estimator="dirichlet"),
        dict(policy_estimator="entropy_ml_adam"),
        dict(P=np.full((3, 2, 3), 1 / 3), weight_floor=0.0, transition_prior=1e-9),
    ):
        assert np.isfinite(fit_lfl(RUNS, 3, 2, GAMMA, ALPHA_M, **options).r).all(), options


# ----------------------------------------------------------------------------- terminal states


def test_terminal_states_from_the_data_from_the_argument_and_from_a_known_model():
    from lfl_lib.data import Episode

    # state 2 ends the episodes by termination; state 1 is declared terminal by the caller
    groups = [
        [Episode([0, 0, 2], [1, 0], terminated=True), Episode([0, 1, 0], [0, 1], truncated=True)],
        [Episode([0, 2], [0], terminated=True), Episode([1, 0, 0], [1, 0], truncated=True)],
    ]
    res = fit_lfl(groups, 3, 2, GAMMA, ALPHA_M, weights="pairs", weight_floor=0.1, terminal=[False, True, False])
    assert_array_equal(res.P_hat[:, :, 1:], 0.0)  # nothing follows a terminal state
    assert (res.P_hat[:, :, 0] > 0).all()
    assert_array_equal(res.weights[:, 1:, :], 0.0)  # no pair at a terminal state is in the loss
    assert_allclose(res.weights.sum(axis=(1, 2)), 1.0, rtol=1e-15)
    # the second policy plays (0, 0) twice: weights (2 + 0.1, 0.1) at state 0, renormalised over states 0 only
    assert_allclose(res.weights[0, 0], np.array([2.1, 0.1]) / 2.2, rtol=1e-12)
    # a known model that sends state 2 back to state 0 (a reset cell): 2 is then not terminal
    P = np.zeros((3, 2, 3))
    P[0, :, :] = [0.5, 0.25, 0.25]
    P[1, :, :] = [0.5, 0.5, 0.0]
    P[2, :, 0] = 1.0
    reset = fit_lfl(groups, 3, 2, GAMMA, ALPHA_M, P=P)
    assert_array_equal(reset.P_hat, P)
    assert (reset.weights[:, 2, :] > 0).all()
    # the same model with state 2 absorbing: terminal again
    P[2, :, :] = [0.0, 0.0, 1.0]
    absorbing = fit_lfl(groups, 3, 2, GAMMA, ALPHA_M, P=P)
    assert_array_equal(absorbing.P_hat[:, :, 2], 0.0)
    assert_array_equal(absorbing.P_hat[:, :, :2], P[:, :, :2])
    assert_array_equal(absorbing.weights[:, 2, :], 0.0)
    # with P, the state 1 declared terminal stays terminal only if P makes it absorbing (it does not here)
    declared = fit_lfl(groups, 3, 2, GAMMA, ALPHA_M, P=P, terminal=[False, True, False])
    assert (declared.weights[:, 1, :] > 0).all()


# ----------------------------------------------------------------------------- the held-out criterion


def _held_out_log_likelihoods(trajs, candidates, kl_weight=None):
    """An independent reference for select_learner_model: fit_lfl on each half, score the other half."""
    halves = (
        [Trajectory(tr.states[: len(tr) // 2 + 1], tr.actions[: len(tr) // 2]) for tr in trajs],
        [Trajectory(tr.states[len(tr) // 2 :], tr.actions[len(tr) // 2 :]) for tr in trajs],
    )
    runs = []
    if "spi" in candidates:
        runs.append(("spi", "spi", None))
    if "kl" in candidates:
        lams = [kl_weight] if kl_weight is not None else [rho * ALPHA_M for rho in (0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)]
        for lam in lams:
            if lam == 0.0:
                if "spi" not in candidates:
                    runs.append(("spi", "spi", None))
            else:
                runs.append((f"kl:{lam:g}", "kl", lam))
    if "svi" in candidates:
        runs.append(("svi", "svi", None))
    ll = {key: 0.0 for key, _, _ in runs}
    n = 0
    for fit, test in (halves, halves[::-1]):
        counts = [_counts(tr) for tr in test[1:]]
        n += sum(c.sum() for c in counts)
        for key, model, lam in runs:
            res = fit_lfl(fit, 3, 2, GAMMA, ALPHA_M, learner_model=model, kl_weight=lam)
            preds = predict_next_policies(res, GAMMA, ALPHA_M, "forward")
            ll[key] += sum((c * np.log(p)).sum() for c, p in zip(counts, preds))
    return {k: v / n for k, v in ll.items()}


@pytest.mark.parametrize(
    "candidates, kl_weight", [(("spi", "kl", "svi"), None), (("kl",), None), (("kl", "svi"), 1.1), (("svi",), None)]
)
def test_select_learner_model_is_the_documented_held_out_likelihood(candidates, kl_weight):
    sel = select_learner_model(RUNS, 3, 2, GAMMA, ALPHA_M, candidates=candidates, kl_weight=kl_weight)
    want = _held_out_log_likelihoods(RUNS, candidates, kl_weight)
    assert list(sel.log_likelihood) == list(want)
    assert_allclose([sel.log_likelihood[k] for k in want], list(want.values()), rtol=1e-10, atol=1e-12)
    best = max(want, key=want.get)
    assert sel.model == best.split(":")[0]
    assert sel.kl_weight == (float(best.split(":")[1]) if ":" in best else 0.0)


def test_auto_refits_the_chosen_model_on_all_the_data():
    auto = fit_lfl(RUNS, 3, 2, GAMMA, ALPHA_M, learner_model="auto", weights="pairs")
    sel = select_learner_model(RUNS, 3, 2, GAMMA, ALPHA_M, weights="pairs")
    assert auto.selection == sel
    ref = fit_lfl(
        RUNS,
        3,
        2,
        GAMMA,
        ALPHA_M,
        learner_model=sel.model,
        weights="pairs",
        kl_weight=sel.kl_weight if sel.model == "kl" else None,
    )
    assert auto.learner_model == ref.learner_model and auto.kl_weight == ref.kl_weight
    for field in ("r", "targets", "weights", "shapings", "P_hat"):
        assert_array_equal(getattr(auto, field), getattr(ref, field))
    assert_array_equal(np.array(auto.policies), np.array(ref.policies))
    # "kl" without a weight: the weight of the held-out criterion over the "kl" candidates alone
    kl = fit_lfl(RUNS, 3, 2, GAMMA, ALPHA_M, learner_model="kl", P=np.full((3, 2, 3), 1 / 3))
    assert (
        kl.kl_weight
        == select_learner_model(RUNS, 3, 2, GAMMA, ALPHA_M, candidates=("kl",), P=np.full((3, 2, 3), 1 / 3)).kl_weight
    )
    assert_array_equal(kl.P_hat, 1 / 3)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(candidates=()), "candidates must be a non-empty subset of ('spi', 'kl', 'svi'); got ()"),
        (
            dict(candidates=("spi", "ppo")),
            "candidates must be a non-empty subset of ('spi', 'kl', 'svi'); got ('spi', 'ppo')",
        ),
        (dict(policy_step=3), "unknown estimator options: ['policy_step']"),
        (dict(alpha_model=0.0), "alpha_model must be a finite number > 0; got 0.0"),
    ],
)
def test_select_learner_model_error_messages(kwargs, match):
    import re

    args = dict(trajectories=RUNS, n_states=3, n_actions=2, gamma=GAMMA, alpha_model=ALPHA_M)
    args.update(kwargs)
    with pytest.raises(ValueError, match="^" + re.escape(match) + "$"):
        select_learner_model(**args)


def test_select_learner_model_needs_two_pairs_per_trajectory_and_no_more():
    import re

    short = [Trajectory(states=[0, 1, 0], actions=[0, 1]), Trajectory(states=[1, 0], actions=[1])]
    with pytest.raises(
        ValueError,
        match="^"
        + re.escape(
            "trajectories must each hold at least 2 pairs (or, per policy, 2 episodes) for the held-out criterion"
        )
        + "$",
    ):
        select_learner_model(short, 3, 2, GAMMA, ALPHA_M, candidates=("spi",))
    two = [Trajectory(states=[0, 1, 0], actions=[0, 1]), Trajectory(states=[1, 0, 1], actions=[1, 0])]
    assert select_learner_model(two, 3, 2, GAMMA, ALPHA_M, candidates=("spi",)).model == "spi"


def test_adam_consistency_fit_is_adam_on_the_eq5_loss():
    """solver="adam": torch's Adam on sum_k w (t - r - f_k + gamma P f_k)^2 + mu (r - r0)^2 + eps |f|^2."""
    mdp, t, w = random_consistency_problem(9, 3)
    mu, eps, r0 = 0.3, 0.2, -0.4  # large ridges, so that a wrong ridge term shows
    r_t = torch.zeros((3, 2), dtype=torch.float64, requires_grad=True)
    f_t = torch.zeros((2, 3), dtype=torch.float64, requires_grad=True)
    P, T, W = (torch.tensor(x) for x in (mdp.P, t, w))
    opt = torch.optim.Adam([r_t, f_t], lr=0.05, betas=(0.9, 0.999), eps=1e-8)
    for _ in range(9):
        opt.zero_grad()
        shaping = f_t[:, :, None] - 0.8 * torch.einsum("sat,kt->ksa", P, f_t)
        loss = (W * (T - r_t[None] - shaping) ** 2).sum() + mu * ((r_t - r0) ** 2).sum() + eps * (f_t**2).sum()
        loss.backward()
        opt.step()
    r, f = consistency_fit(t, w, mdp.P, 0.8, r0=r0, ridge_r=mu, ridge_f=eps, solver="adam", n_steps=9, lr=0.05)
    assert_allclose(r, r_t.detach().numpy(), rtol=0, atol=1e-12)
    assert_allclose(f, f_t.detach().numpy(), rtol=0, atol=1e-12)
    # the documented defaults r0 = 0, 200 steps of rate 1
    assert_array_equal(
        np.array(consistency_fit(t, w, mdp.P, 0.8, solver="adam")[0]),
        consistency_fit(t, w, mdp.P, 0.8, r0=0.0, solver="adam", n_steps=200, lr=1.0)[0],
    )
    import re

    with pytest.raises(ValueError, match="^" + re.escape("solver must be 'exact' or 'adam'; got 'sgd'") + "$"):
        consistency_fit(t, w, mdp.P, 0.8, solver="sgd")
    with pytest.raises(ValueError, match=r"^n_steps must be an integer >= 1; got 0$"):
        consistency_fit(t, w, mdp.P, 0.8, solver="adam", n_steps=0)


# ----------------------------------------------------------------------------- the KL weight in closed form


def test_kl_weight_from_two_improvements_and_its_undefined_cases():
    from lfl_lib.gridworld import ALPHA, make_gridworld
    from lfl_lib.learners import kl_soft_policy_iteration
    from lfl_lib.tabular_lfl import kl_weight_from_consistency

    grid = make_gridworld()
    pols = kl_soft_policy_iteration(grid, ALPHA, 2.0, 2)  # three policies: the fewest that identify the weight
    w = np.full((2, grid.n_states, grid.n_actions), 1.0 / (grid.n_states * grid.n_actions))
    assert_allclose(kl_weight_from_consistency(pols, grid.P, grid.gamma, 0.7, w), 2.0 * 0.7 / ALPHA, rtol=1e-9)
    assert np.isnan(kl_weight_from_consistency(pols[:2], grid.P, grid.gamma, 0.7, w[:1]))  # one improvement
    same = [pols[0]] * 3  # no change: the KL direction is 0, every weight fits
    assert np.isnan(kl_weight_from_consistency(same, grid.P, grid.gamma, 0.7, w))


# ----------------------------------------------------------------------------- smaller entry points


def test_messages_name_the_argument():
    import re

    from lfl_lib.data import Episode
    from lfl_lib.gridworld import make_gridworld
    from lfl_lib.tabular_lfl import observer_policy, observer_score

    grid = make_gridworld()
    for fn in (observer_policy, observer_score):
        with pytest.raises(
            ValueError, match=r"^r_hat must have shape \(n_states, n_actions\) = \(25, 4\); got \(25, 3\)$"
        ):
            fn(grid, np.zeros((25, 3)), 0.3)
    with pytest.raises(ValueError, match=r"^alpha_model must be a finite number > 0; got 0$"):
        targets([np.full((3, 2), 0.5)] * 2, np.full((3, 2, 3), 1 / 3), 0.9, 0)
    with pytest.raises(ValueError, match=r"^n_states must be an integer >= 1; got 0$"):
        fit_lfl(RUNS, 0, 2, GAMMA, ALPHA_M)
    with pytest.raises(ValueError, match=r"^n_actions must be an integer >= 1; got 0$"):
        fit_lfl(RUNS, 3, 0, GAMMA, ALPHA_M)
    bad = [[Episode([0, 2, 1], [0, 1], terminated=True)], [Episode([0, 2], [1], terminated=True)]]
    with pytest.raises(
        ValueError,
        match="^"
        + re.escape(
            "trajectories: state 2 ends an episode by termination but an action is also taken there; "
            "a terminal state is absorbing (no action after it)"
        )
        + "$",
    ):
        fit_lfl(bad, 3, 2, GAMMA, ALPHA_M)
    # one group of episodes is enough for the policy estimates
    one = estimate_policies([[Episode([0, 1, 0], [1, 0], truncated=True)]], 3, 2, "dirichlet", prior_mean="uniform")
    assert_allclose(one[0][0], [0.25, 0.75], rtol=1e-15)  # (n + beta / A) / (n(s) + beta), beta = 1


def test_observer_policy_is_the_optimal_soft_policy_of_the_recovered_reward():
    from lfl_lib.gridworld import make_gridworld
    from lfl_lib.mdp import soft_optimal
    from lfl_lib.tabular_lfl import observer_policy, observer_score

    grid = make_gridworld()
    r_hat = np.random.default_rng(2).standard_normal((25, 4))
    pi = observer_policy(grid, r_hat, 0.3)
    assert_allclose(pi, soft_optimal(grid.with_reward(r_hat), 0.3)[0], rtol=0, atol=1e-7)
    sc = observer_score(grid, r_hat, 0.3)
    from lfl_lib.mdp import discounted_entropy, expected_return, score

    assert_allclose(
        [sc.J, sc.ret, sc.entropy],
        [score(grid, pi, 0.3), expected_return(grid, pi), discounted_entropy(grid, pi, 0.3)],
        rtol=1e-7,
        atol=1e-7,
    )


def test_recover_reward_passes_the_terminal_states_and_the_model_on():
    from lfl_lib.data import Episode
    from lfl_lib.tabular_lfl import recover_reward

    groups = [
        [Episode([0, 0, 2], [1, 0], terminated=True), Episode([0, 1, 0], [0, 1], truncated=True)],
        [Episode([0, 2], [0], terminated=True), Episode([1, 0, 0], [1, 0], truncated=True)],
    ]
    term = [False, True, False]
    assert_array_equal(
        recover_reward(groups, 3, 2, GAMMA, ALPHA_M, terminal=term),
        fit_lfl(groups, 3, 2, GAMMA, ALPHA_M, terminal=term).r,
    )
    assert not np.allclose(
        fit_lfl(groups, 3, 2, GAMMA, ALPHA_M, terminal=term).r, fit_lfl(groups, 3, 2, GAMMA, ALPHA_M).r
    )


def test_split_halves_of_trajectories_and_of_episode_groups():
    from lfl_lib.data import Episode
    from lfl_lib.tabular_lfl import _split_halves

    eps = [Episode([0, 1], [0], truncated=True) for _ in range(5)]
    first, second = _split_halves([RUNS[0], eps])
    assert_array_equal(first[0].states, [0, 0, 1]) and assert_array_equal(second[0].states, [1, 0, 1, 1])
    assert first[1] == eps[:2] and second[1] == eps[2:]


# ----------------------------------------------------------------------------- play_policy


class _TwoStepEnv:
    """Discrete toy environment: from state 0 action a pays a + 1 and leads to state 1; from state 1 any
    action pays 10 and ends the episode (terminated after action 0, truncated after the others)."""

    def __init__(self):
        from types import SimpleNamespace

        self.observation_space, self.action_space = SimpleNamespace(n=2), SimpleNamespace(n=3)
        self.resets, self.s = [], 0

    def reset(self, seed=None):
        self.resets.append(seed)
        self.s = 0
        return 0, {}

    def step(self, a):
        assert 0 <= a < 3
        if self.s == 0:
            self.s = 1
            return 1, a + 1.0, False, False, {}
        return 1, 10.0, a == 0, a != 0, {}


def test_play_policy_samples_from_the_policy_with_its_seed():
    from lfl_lib.tabular_lfl import play_policy

    pi = np.array([[0.2, 0.0, 0.8], [0.5, 0.25, 0.25]])
    env = _TwoStepEnv()
    got = play_policy(env, pi, n_episodes=40, seed=5)
    rng = np.random.default_rng(5)
    want = []
    for _ in range(40):
        a0 = int(np.searchsorted(np.cumsum(pi[0]), rng.random(), side="right"))
        rng.random()  # the action in state 1 pays 10 whatever it is
        want.append(a0 + 1.0 + 10.0)
    assert_array_equal(got, want)
    assert 1.0 + 10.0 in got and 3.0 + 10.0 in got and 2.0 + 10.0 not in got  # action 1 has probability 0
    assert env.resets == [5] + [None] * 39  # seeded once, then the environment's own stream
    greedy = play_policy(_TwoStepEnv(), pi, n_episodes=3, seed=0, greedy=True)
    assert_array_equal(greedy, [13.0, 13.0, 13.0])
    assert_array_equal(play_policy(_TwoStepEnv(), np.array([[0.0, 0.0, 1.0]] * 2), n_episodes=2), [13.0, 13.0])
    with pytest.raises(ValueError, match=r"^n_episodes must be an integer >= 1; got 0$"):
        play_policy(_TwoStepEnv(), pi, n_episodes=0)
    with pytest.raises(ValueError, match=r"^seed must be an integer >= 0; got -1$"):
        play_policy(_TwoStepEnv(), pi, seed=-1)
    with pytest.raises(
        ValueError, match=r"^env must be a gymnasium environment with Discrete observation and action spaces$"
    ):
        play_policy(object(), pi)
    half = _TwoStepEnv()
    half.action_space = None
    with pytest.raises(ValueError, match=r"^env must be a gymnasium environment"):
        play_policy(half, pi)


def test_equation_prediction_from_a_policy_with_zero_probabilities():
    """kind="equation" with pi_k = pi_{k+1} = pi, zero shapings and the SPI model: softmax(r / alpha_m), zeros or not."""
    rng = np.random.default_rng(6)
    mdp = random_mdp(4, 3, rng, gamma=0.8)
    pi = random_positive_policy(rng, 4, 3)
    pi[1] = [0.0, 0.4, 0.6]
    res = LfLResult(mdp.r, [pi, pi], np.zeros((1, 4, 3)), np.full((1, 4, 3), 1 / 12), np.zeros((1, 4)), mdp.P)
    want = np.exp(mdp.r / 0.5 - logsumexp(mdp.r / 0.5, axis=1, keepdims=True))
    assert_allclose(predict_next_policies(res, mdp.gamma, 0.5, "equation")[0], want, **EXACT)


def test_select_learner_model_with_a_given_weight_and_kl_only():
    sel = select_learner_model(RUNS, 3, 2, GAMMA, ALPHA_M, candidates=("kl",), kl_weight=1.1)
    want = _held_out_log_likelihoods(RUNS, ("kl",), 1.1)
    assert list(sel.log_likelihood) == ["kl:1.1"]
    assert_allclose(sel.log_likelihood["kl:1.1"], want["kl:1.1"], rtol=1e-10)
    assert sel.model == "kl" and sel.kl_weight == 1.1
    auto = fit_lfl(RUNS, 3, 2, GAMMA, ALPHA_M, learner_model="auto", kl_weight=1.1)  # auto takes a weight too
    assert set(auto.selection.log_likelihood) == {"spi", "kl:1.1"}


@pytest.fixture(scope="module")
def kl_runs():
    """A KL learner (lambda = 6) on a random 3-state MDP: 4 policies, 300 pairs each; auto picks "kl" on it."""
    from lfl_lib.learners import kl_soft_policy_iteration
    from lfl_lib.trajectories import sample_trajectories

    mdp = random_mdp(3, 2, np.random.default_rng(0), gamma=0.8, reward_scale=3.0)
    return sample_trajectories(mdp, kl_soft_policy_iteration(mdp, 0.7, 6.0, 3), 300, np.random.default_rng(0))


def test_auto_passes_the_model_its_weight_and_the_options_on(kl_runs):
    P = np.full((3, 2, 3), 1 / 3)
    opts = dict(solver="adam", n_steps=5, lr=0.2, P=P)
    # a zero margin: the best candidate, here KL (the default margin keeps SPI; tests/test_tabular_lfl_auto_margin.py)
    auto = fit_lfl(kl_runs, 3, 2, GAMMA, ALPHA_M, learner_model="auto", se_margin=0.0, **opts)
    sel = select_learner_model(kl_runs, 3, 2, GAMMA, ALPHA_M, se_margin=0.0, **opts)
    assert auto.selection == sel and sel.model == "kl" and sel.kl_weight > 0
    ref = fit_lfl(kl_runs, 3, 2, GAMMA, ALPHA_M, learner_model="kl", kl_weight=sel.kl_weight, **opts)
    assert auto.learner_model == "kl" and auto.kl_weight == sel.kl_weight
    assert_array_equal(auto.r, ref.r)
    assert_array_equal(auto.P_hat, P)
    # the adam options reach the held-out fits: other options, other likelihoods
    other = select_learner_model(kl_runs, 3, 2, GAMMA, ALPHA_M, **{**opts, "n_steps": 6})
    assert other.log_likelihood != sel.log_likelihood
    other = select_learner_model(kl_runs, 3, 2, GAMMA, ALPHA_M, **{**opts, "lr": 0.3})
    assert other.log_likelihood != sel.log_likelihood


def test_select_learner_model_at_a_weight_of_one():
    # lambda = 1 exactly
    sel = select_learner_model(RUNS, 3, 2, GAMMA, ALPHA_M, candidates=("kl",), kl_weight=1.0)
    assert_allclose(sel.log_likelihood["kl:1"], _held_out_log_likelihoods(RUNS, ("kl",), 1.0)["kl:1"], rtol=1e-10)


def test_select_learner_model_needs_three_trajectories_for_svi():
    with pytest.raises(ValueError, match=r"^trajectories must hold at least 3 Trajectory objects; got 2$"):
        select_learner_model(RUNS[:2], 3, 2, GAMMA, ALPHA_M, candidates=("svi",))


def test_svi_equation_and_fit_use_the_documented_potentials_and_ridges():
    from lfl_lib.inversion import value_iteration_fit

    rng = np.random.default_rng(7)
    mdp = random_mdp(3, 2, rng, gamma=0.8)
    V = rng.standard_normal((3, 3))  # potentials that no forward iteration produced
    pis = [random_positive_policy(rng, 3, 2) for _ in range(3)]
    res = LfLResult(mdp.r, pis, np.zeros((2, 3, 2)), np.full((2, 3, 2), 1 / 6), V, mdp.P, "svi", 0.0)
    want = [
        np.exp(
            (mdp.r + 0.8 * mdp.P @ V[k]) / 0.5 - logsumexp((mdp.r + 0.8 * mdp.P @ V[k]) / 0.5, axis=1, keepdims=True)
        )
        for k in range(2)
    ]
    assert_allclose(predict_next_policies(res, 0.8, 0.5, "equation"), want, **EXACT)
    svi = fit_lfl(RUNS, 3, 2, GAMMA, ALPHA_M, learner_model="svi", unseen="zero")
    r, f = value_iteration_fit(svi.targets, svi.weights, svi.P_hat, GAMMA, r0=0.0, ridge_r=1e-6, ridge_v=1e-8)
    assert_array_equal(svi.r, r)
    assert_array_equal(svi.shapings, f)


def test_options_reach_the_estimates_and_the_weights_stay_per_improvement():
    from lfl_lib.data import Episode

    adam = fit_lfl(RUNS, 3, 2, GAMMA, ALPHA_M, policy_estimator="entropy_ml_adam", policy_lr=0.2, policy_steps=4)
    assert_array_equal(
        np.array(adam.policies), np.array(estimate_policies(RUNS, 3, 2, "entropy_ml_adam", n_steps=4, lr=0.2))
    )
    groups = [
        [Episode([0, 0, 2], [1, 0], terminated=True), Episode([0, 1, 0], [0, 1], truncated=True)],
        [Episode([0, 2], [0], terminated=True), Episode([1, 0, 0], [1, 0], truncated=True)],
        [Episode([1, 0, 1, 2], [0, 1, 1], terminated=True)],
    ]
    res = fit_lfl(groups, 3, 2, GAMMA, ALPHA_M, weights="pairs", weight_floor=0.1)
    assert_allclose(res.weights.sum(axis=(1, 2)), [1.0, 1.0], rtol=1e-15)  # each improvement's weights sum to 1


def test_a_known_model_makes_terminal_only_the_absorbing_states_that_end_episodes():
    from lfl_lib.data import Episode

    groups = [[Episode([0, 0, 2], [1, 0], terminated=True)], [Episode([0, 1, 2], [0, 1], terminated=True)]]
    P = np.zeros((4, 2, 4))
    P[:2, :, :3] = 1 / 3
    P[2, :, 2] = 1.0
    P[3, :, 3] = 1.0  # absorbing too, but no episode ends there
    res = fit_lfl(groups, 4, 2, GAMMA, ALPHA_M, P=P)
    assert_array_equal(res.P_hat[:, :, 2], 0.0)
    assert_array_equal(res.P_hat[:, :, 3], P[:, :, 3])


def test_play_policy_defaults():
    from lfl_lib.tabular_lfl import play_policy

    pi = np.array([[0.2, 0.0, 0.8], [0.5, 0.25, 0.25]])
    env = _TwoStepEnv()
    assert_array_equal(play_policy(env, pi), play_policy(_TwoStepEnv(), pi, n_episodes=100, seed=0, greedy=False))
    assert len(env.resets) == 100 and env.resets[0] == 0


# ----------------------------------------------------------------------------- TabularLfLConfig


def test_tabular_config_is_the_source_of_the_defaults_and_options_replace_its_fields():
    from dataclasses import asdict

    from lfl_lib.tabular_lfl import TabularLfLConfig, select_learner_model

    assert asdict(TabularLfLConfig()) == DOCUMENTED_DEFAULTS
    cfg = TabularLfLConfig(weights="pairs", entropy_bonus=0.2)
    by_options = fit_lfl(RUNS, 3, 2, GAMMA, ALPHA_M, weights="pairs", entropy_bonus=0.2)
    for config in (cfg, cfg.to_dict()):
        assert_array_equal(fit_lfl(RUNS, 3, 2, GAMMA, ALPHA_M, config=config).r, by_options.r)
        assert_array_equal(recover_reward(RUNS, 3, 2, GAMMA, ALPHA_M, config=config), by_options.r)
    # an option replaces the config's field
    assert_array_equal(
        fit_lfl(RUNS, 3, 2, GAMMA, ALPHA_M, config=cfg, weights="all", entropy_bonus=0.4).r,
        fit_lfl(RUNS, 3, 2, GAMMA, ALPHA_M).r,
    )
    assert select_learner_model(RUNS, 3, 2, GAMMA, ALPHA_M, config=cfg) == select_learner_model(
        RUNS, 3, 2, GAMMA, ALPHA_M, weights="pairs", entropy_bonus=0.2
    )
    assert TabularLfLConfig.from_dict(cfg.to_dict()) == cfg


def test_tabular_config_reads_the_older_name_entropy_weight():
    from lfl_lib.tabular_lfl import TabularLfLConfig

    new = fit_lfl(RUNS, 3, 2, GAMMA, ALPHA_M, entropy_bonus=0.3).r
    with pytest.warns(DeprecationWarning, match="entropy_weight is now named entropy_bonus"):
        old = recover_reward(RUNS, 3, 2, GAMMA, ALPHA_M, entropy_weight=0.3)
    assert_array_equal(old, new)
    with pytest.warns(DeprecationWarning, match="entropy_weight is now named entropy_bonus"):
        pols = estimate_policies(RUNS, 3, 2, entropy_weight=0.3)
    assert_array_equal(np.array(pols), np.array(estimate_policies(RUNS, 3, 2, entropy_bonus=0.3)))
    # stored dicts of older files: read without a warning
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert TabularLfLConfig.from_dict({"entropy_weight": 0.3}) == TabularLfLConfig(entropy_bonus=0.3)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(entropy_weight=0.3, entropy_bonus=0.3), "give entropy_bonus only"),
        (dict(weight=0.3), r"unknown estimator options: \['weight'\]"),
        (
            dict(config=[("weights", "all")]),
            "config must be a TabularLfLConfig, a dict of its fields or None; got list",
        ),
        (dict(config={"weigths": "all"}), r"unknown estimator options: \['weigths'\]"),
    ],
)
def test_tabular_config_refuses_unknown_or_doubled_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fit_lfl(RUNS, 3, 2, GAMMA, ALPHA_M, **kwargs)
