"""The ladder recovers known synthetic mappings: ridge ≫ mean floor; the MLP beats ridge when the map is non-linear.

Synthetic classes: a latent z_c per class; inputs are several noisy "phrasings" x = A z_c + ε; targets are
y_c = f(z_c) (+ an offset, so the raw space is crowded like MineCLIP's). Splits hold out whole classes.
"""

from __future__ import annotations

import pytest
import torch

from zh_steve.errors import ConfigError
from zh_steve.alignment_layer import MLPArchitecture
from alignment.ladder import AlignmentData, MLPConfig, RidgeConfig, SplitData, evaluate, fit_mean, fit_ridge, train_mlp


@pytest.fixture(autouse=True)
def one_thread(restore_threads):
    torch.set_num_threads(1)  # tiny matrices: one thread is fastest and immune to a busy machine (conftest restores)


def synthetic(nonlinear: bool, seed: int = 0, classes: int = 600, per_class: int = 4, dz: int = 4,
              d_in: int = 32, d_out: int = 32, noise: float = 0.05) -> AlignmentData:
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(classes, dz, generator=g)
    a = torch.randn(dz, d_in, generator=g)
    b = torch.randn(dz, d_out, generator=g)
    y = (3 * torch.sin(1.5 * z @ b) if nonlinear else z @ b) + 5.0
    cls = torch.arange(classes).repeat_interleave(per_class)
    x = z[cls] @ a + noise * torch.randn(classes * per_class, d_in, generator=g)
    perm = torch.randperm(classes, generator=g)
    n_tr, n_va = int(0.7 * classes), int(0.85 * classes)
    parts = {"train": perm[:n_tr], "val": perm[n_tr:n_va], "test": perm[n_va:]}
    splits = {k: SplitData(x[torch.isin(cls, v)], cls[torch.isin(cls, v)]) for k, v in parts.items()}
    # hard negatives: classes whose latent's first coordinate has the same sign (any structure will do)
    hard = (z[:, :1] > 0) == (z[:, :1] > 0).T
    hard.fill_diagonal_(False)
    return AlignmentData(splits, y, parts["train"].sort().values, hard=hard, source_identity="syn:x",
                         target_identity="syn:y")


MLP = MLPConfig(architecture=MLPArchitecture(hidden_dims=[128, 128], dropout=0.0), epochs=40,
                patience=40, lr=3e-3, batch_size=64,
                warmup_steps=20, weight_decay=0.0)


def test_linear_map_ridge_is_near_perfect():
    data = synthetic(nonlinear=False)
    mean = fit_mean(data)
    ridge, rows = fit_ridge(data, RidgeConfig())
    assert len(rows) == len(RidgeConfig().lambdas)
    m = evaluate({"mean": mean, "ridge": ridge}, data)
    for split in ("val", "test"):
        assert m[split]["ridge"]["top1"] >= 0.98
        assert m[split]["ridge"]["r2"] >= 0.98
        assert m[split]["ridge"]["norm_ratio"] == pytest.approx(1.0, abs=0.02)
        assert m[split]["mean"]["top1"] <= 0.02          # the floor is chance-level …
        assert m[split]["mean"]["raw_cos"] >= 0.85       # … despite a high raw cosine
        assert m[split]["mean"]["r2"] <= 0.01


def test_evaluate_scores_train_on_a_fixed_sample_and_val_test_in_full():
    data = synthetic(nonlinear=False)
    layers = {"ridge": fit_ridge(data, RidgeConfig())[0]}
    n_train = data.splits["train"].x.shape[0]
    sample = evaluate(layers, data, max_train_rows=n_train // 4)
    assert sample["train"]["ridge"]["n"] == n_train // 4
    assert sample == evaluate(layers, data, max_train_rows=n_train // 4)          # the same sample every time
    full = evaluate(layers, data, max_train_rows=None)
    assert full["train"]["ridge"]["n"] == n_train
    assert sample["train"]["ridge"]["top1"] == pytest.approx(full["train"]["ridge"]["top1"], abs=0.05)
    for split in ("val", "test"):
        assert sample[split] == full[split]


def test_nonlinear_map_mlp_beats_ridge_beats_mean():
    data = synthetic(nonlinear=True)
    layers = {"mean": fit_mean(data)}
    layers["ridge"], _ = fit_ridge(data)
    log: list[dict] = []
    layers["mlp"] = train_mlp(data, layers["ridge"], MLP, seed=0, log=log.append)
    m = evaluate(layers, data)
    for split in ("val", "test"):
        assert m[split]["ridge"]["top1"] > m[split]["mean"]["top1"] + 0.03
        assert m[split]["ridge"]["r2"] > m[split]["mean"]["r2"] + 0.05
        assert m[split]["mlp"]["top1"] > m[split]["ridge"]["top1"] + 0.3
        assert m[split]["mlp"]["r2"] > m[split]["ridge"]["r2"] + 0.2
    assert log[0]["epoch"] == 0 and len(log) >= 2
    assert {"train_loss", "train_mse", "train_nce", "val_top1", "lr"} <= set(log[-1])


def test_mlp_starts_at_the_ridge_solution_and_is_reproducible():
    data = synthetic(nonlinear=True, classes=200)
    ridge, _ = fit_ridge(data)
    log: list[dict] = []
    zero = train_mlp(data, ridge, MLPConfig(epochs=1, patience=1, lr=1e-12, warmup_steps=1), seed=0, log=log.append)
    x = data.splits["test"].x
    assert torch.allclose(zero(x), ridge(x), atol=1e-4)
    cfg = MLPConfig(architecture=MLPArchitecture(hidden_dims=[32], dropout=0.1), epochs=3, patience=3)
    a = train_mlp(data, ridge, cfg, seed=1)
    b = train_mlp(data, ridge, cfg, seed=1)
    assert torch.equal(a(x), b(x))


def test_nce_over_all_prompts_option_runs():
    data = synthetic(nonlinear=True, classes=200)
    ridge, _ = fit_ridge(data)
    cfg = MLPConfig(architecture=MLPArchitecture(hidden_dims=[32]), epochs=2, patience=2, nce_candidates="all")
    layer = train_mlp(data, ridge, cfg, seed=0)
    assert layer(data.splits["val"].x).shape == (data.splits["val"].x.shape[0], 32)
    with pytest.raises(ConfigError, match="nce_candidates"):
        MLPConfig(nce_candidates="some")


def test_ridge_lambda_zero_on_rank_deficient_data_is_min_norm_least_squares():
    # fewer train pairs than input dims: the covariance is singular, λ = 0 used to divide 0 by 0 (NaN weights)
    g = torch.Generator().manual_seed(0)
    c, d_in, d_out = 40, 64, 16
    y = torch.randn(c, d_out, generator=g) + 3.0
    x = torch.randn(c, d_in, generator=g)
    cls = torch.arange(c)
    tr, va = torch.arange(30), torch.arange(30, 40)
    data = AlignmentData({"train": SplitData(x[tr], cls[tr]), "val": SplitData(x[va], cls[va]),
                          "test": SplitData(x[va], cls[va])}, y, tr)
    layer, rows = fit_ridge(data, RidgeConfig(lambdas=[0.0]))
    assert torch.isfinite(layer.linear.weight).all() and rows[0]["val_top1"] < 0.5
    xs = layer.standardize_input(x[tr]).double()
    ys = ((y[tr] - layer.y_mean) / layer.y_std).double()
    xc, yc = xs - xs.mean(0), ys - ys.mean(0)
    w_ref = torch.linalg.pinv(xc) @ yc                                      # minimum-norm least squares
    assert torch.allclose(layer.linear.weight.double().T, w_ref, atol=1e-4)
    assert torch.allclose(layer(x[tr]), y[tr], atol=1e-3)                 # interpolates the train targets


def test_a_dimension_constant_on_train_is_only_centred():
    # a clamped ~0 std made a 0.01 deviation at val time a 10⁴ standardised input (and the MLP amplified it)
    data = synthetic(nonlinear=False, classes=50)
    data.splits["train"].x[:, 3] = 0.3
    data.class_emb[data.train_classes, 5] = 2.0
    layer = fit_mean(data)
    assert layer.x_std[3] == 1.0 and layer.y_std[5] == 1.0
    assert layer.x_std[0] == pytest.approx(data.splits["train"].x[:, 0].std(unbiased=False).item(), rel=1e-5)
    x = data.splits["val"].x.clone()
    x[:, 3] = 0.31
    assert torch.allclose(layer.standardize_input(x)[:, 3], torch.full((x.shape[0],), 0.01), atol=1e-5)


def test_early_stopping_keeps_only_epochs_within_the_r2_floor():
    # InfoNCE alone raises val top-1 for an epoch while R² falls below ridge's: that epoch was kept as "best",
    # and choose_rung then refused the whole MLP rung
    data = synthetic(nonlinear=True, classes=200)
    ridge, rows = fit_ridge(data)
    ridge_r2 = evaluate({"ridge": ridge}, data)["val"]["ridge"]["r2"]
    cfg = MLPConfig(architecture=MLPArchitecture(hidden_dims=[64], dropout=0.0), epochs=4, patience=4, w_mse=0.0, w_cos=0.0, lr=3e-3,
                    warmup_steps=5)
    log: list[dict] = []
    free = train_mlp(data, ridge, cfg, seed=0, log=log.append)
    assert evaluate({"mlp": free}, data)["val"]["mlp"]["r2"] < ridge_r2 - 1e-3   # the trap is real here
    floor = ridge_r2 - 1e-3
    kept = train_mlp(data, ridge, cfg, seed=0, min_val_r2=floor)
    m = evaluate({"mlp": kept}, data)["val"]["mlp"]
    ok = [r for r in log if r["val_r2"] >= floor]
    assert m["r2"] >= floor - 1e-9
    assert m["top1"] == pytest.approx(max(r["val_top1"] for r in ok))


# ----------------------------------------------------------------------------------------------------------
# identity-aware rungs, anchors, norm calibration
# ----------------------------------------------------------------------------------------------------------

def rotated(seed: int = 0, classes: int = 300, d: int = 24, scale: float = 2.0, noise: float = 0.02) -> AlignmentData:
    """Targets are a scaled rotation of the (class-level) inputs plus an offset: y = s·x_c·Q + 5."""
    g = torch.Generator().manual_seed(seed)
    xc = torch.randn(classes, d, generator=g)
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=g))
    y = scale * xc @ q + 5.0
    cls = torch.arange(classes).repeat_interleave(3)
    x = xc[cls] + noise * torch.randn(cls.numel(), d, generator=g)
    parts = {"train": torch.arange(0, 200), "val": torch.arange(200, 250), "test": torch.arange(250, 300)}
    splits = {k: SplitData(x[torch.isin(cls, v)], cls[torch.isin(cls, v)]) for k, v in parts.items()}
    return AlignmentData(splits, y, parts["train"], source_identity="syn:x", target_identity="syn:y")


def test_identity_rung_is_exactly_no_map():
    from alignment.ladder import fit_identity

    data = synthetic(nonlinear=False, d_in=32, d_out=32)
    layer = fit_identity(data)
    x = data.splits["val"].x
    assert torch.allclose(layer(x), x, atol=1e-4)
    assert fit_identity(synthetic(nonlinear=False, d_in=32, d_out=16)) is None  # sizes differ: no identity rung


def test_procrustes_recovers_a_scaled_rotation_on_held_out_classes():
    from alignment.ladder import fit_procrustes

    data = rotated()
    layer = fit_procrustes(data)
    m = evaluate({"p": layer}, data)
    assert m["test"]["p"]["top1"] == 1.0 and m["test"]["p"]["r2"] > 0.99
    assert layer.config.kind == "procrustes"


def test_ridge_toward_a_prior_interpolates_between_free_ridge_and_the_prior():
    from alignment.ladder import fit_procrustes

    data = rotated(noise=0.3)
    prior = fit_procrustes(data)
    huge, _ = fit_ridge(data, RidgeConfig(lambdas=[1e9]), prior=prior)
    assert torch.allclose(huge.linear.weight, prior.linear.weight, atol=1e-4)   # λ → ∞: W = W0
    zero_prior, _ = fit_ridge(data, RidgeConfig(lambdas=[1e9]))
    assert zero_prior.linear.weight.abs().max() < 1e-3                           # toward 0: W → 0
    small, _ = fit_ridge(data, RidgeConfig(lambdas=[1e-6]), prior=prior)
    free, _ = fit_ridge(data, RidgeConfig(lambdas=[1e-6]))
    assert torch.allclose(small.linear.weight, free.linear.weight, atol=1e-3)    # λ → 0: the prior is irrelevant
    assert huge.config.prior == "procrustes" and free.config.prior == "zero"


def test_anchors_join_the_closed_form_fit_with_their_weight():
    from alignment.ladder import AnchorData

    data = rotated()
    ridge, _ = fit_ridge(data, RidgeConfig(lambdas=[1e-3]))
    g = torch.Generator().manual_seed(1)
    ax = torch.randn(50, 24, generator=g)
    data.anchors = AnchorData(ax, torch.zeros(50, 24), weight=0.0)    # weight 0: no effect
    same, _ = fit_ridge(data, RidgeConfig(lambdas=[1e-3]))
    assert torch.allclose(same.linear.weight, ridge.linear.weight, atol=1e-4)
    data.anchors = AnchorData(ax, torch.zeros(50, 24), weight=50.0)   # heavy anchors pulling toward 0 change it
    pulled, _ = fit_ridge(data, RidgeConfig(lambdas=[1e-3]))
    assert not torch.allclose(pulled.linear.weight, ridge.linear.weight, atol=1e-2)


def test_norm_calibration_fixes_the_norm_and_keeps_the_retrieval():
    from alignment.ladder import calibrate_norm

    data = synthetic(nonlinear=True)
    ridge, _ = fit_ridge(data, RidgeConfig(lambdas=[3.0]))  # shrinkage: short predictions
    before = evaluate({"r": ridge}, data)
    assert before["train"]["r"]["norm_ratio"] < 0.99
    calibrate_norm(ridge, data)
    after = evaluate({"r": ridge}, data)
    assert float(ridge.out_scale) > 1.0
    assert after["train"]["r"]["norm_ratio"] == pytest.approx(1.0, abs=1e-3)
    for split in ("val", "test"):
        for k in ("top1", "top5", "mrr"):
            assert after[split]["r"][k] == pytest.approx(before[split]["r"][k], abs=1e-9)


def test_mlp_starts_from_any_linear_rung():
    from alignment.ladder import fit_procrustes

    data = rotated()
    base = fit_procrustes(data)
    layer = train_mlp(data, base, MLPConfig(epochs=1, patience=1, lr=1e-12, warmup_steps=1), seed=0)
    x = data.splits["val"].x
    assert torch.allclose(layer(x), base(x), atol=1e-4) and layer.config.prior == "procrustes"


def test_mlp_fits_the_anchors_too():
    from alignment.ladder import AnchorData

    data = rotated()
    base, _ = fit_ridge(data, RidgeConfig(lambdas=[1e-3]))
    g = torch.Generator().manual_seed(2)
    data.anchors = AnchorData(torch.randn(64, 24, generator=g), torch.randn(64, 24, generator=g) + 5.0, weight=1.0)
    cfg = MLPConfig(architecture=MLPArchitecture(hidden_dims=[16], dropout=0.0), epochs=2, patience=5, lr=1e-2,
                    warmup_steps=1)
    with_log, without_log = [], []
    train_mlp(data, base, cfg, seed=0, log=with_log.append)
    train_mlp(data, base, MLPConfig(**{**cfg.__dict__, "anchors": False}), seed=0, log=without_log.append)
    assert with_log[1]["train_anchor_mse"] > 0 and without_log[1]["train_anchor_mse"] == 0
    assert with_log[1]["train_loss"] != without_log[1]["train_loss"]
    half_log: list[dict] = []   # anchor_ratio: fewer anchor rows per batch, still fitted
    train_mlp(data, base, MLPConfig(**{**cfg.__dict__, "anchor_ratio": 0.5}), seed=0, log=half_log.append)
    assert half_log[1]["train_anchor_mse"] > 0 and half_log[1]["train_loss"] != with_log[1]["train_loss"]
    with pytest.raises(ConfigError, match="anchor_ratio"):
        MLPConfig(anchor_ratio=0.0)


# ----------------------------------------------------------------------------------------------------------
# shrunk rungs: MLP residual × α, Procrustes blended toward identity (grid values chosen on val)
# ----------------------------------------------------------------------------------------------------------

def test_shrunk_residual_interpolates_between_the_linear_base_and_the_mlp():
    from alignment.ladder import choose_on_val, predict, shrink_residual

    data = synthetic(nonlinear=True)
    ridge, _ = fit_ridge(data, RidgeConfig())
    cfg = MLPConfig(**{**MLP.__dict__, "epochs": 5, "patience": 5, "train_linear": False})  # base kept fixed
    mlp = train_mlp(data, ridge, cfg, seed=0)
    x = data.splits["test"].x
    base_y, mlp_y = predict(ridge, x), predict(mlp, x)
    assert not torch.allclose(base_y, mlp_y, atol=1e-3)                 # the residual does something
    torch.testing.assert_close(predict(shrink_residual(mlp, 0.0), x), base_y, atol=1e-4, rtol=0)
    torch.testing.assert_close(predict(shrink_residual(mlp, 1.0), x), mlp_y, atol=1e-5, rtol=0)
    torch.testing.assert_close(predict(shrink_residual(mlp, 0.5), x), 0.5 * (base_y + mlp_y), atol=1e-4, rtol=0)
    assert torch.equal(predict(mlp, x), mlp_y)                          # the MLP rung itself is left alone
    best, rows = choose_on_val(lambda a: shrink_residual(mlp, a), [0.0, 0.5, 1.0], data, "alpha")
    assert [r["alpha"] for r in rows] == [0.0, 0.5, 1.0]
    top = max(rows, key=lambda r: (r["val_top1"], r["val_r2"]))
    v = evaluate({"best": best}, data)["val"]["best"]
    assert v["top1"] == pytest.approx(top["val_top1"]) and v["r2"] == pytest.approx(top["val_r2"])
    assert top["alpha"] > 0                                              # non-linear map: the residual helps on val
    with pytest.raises(ConfigError):
        shrink_residual(ridge, 0.5)


def test_procrustes_blend_toward_identity_interpolates_and_picks_the_rotation_when_it_is_real():
    from alignment.ladder import blend_linear, choose_on_val, fit_identity, fit_procrustes, predict

    data = rotated()
    ident, proc = fit_identity(data), fit_procrustes(data)
    x = data.splits["test"].x
    yi, yp = predict(ident, x), predict(proc, x)
    torch.testing.assert_close(predict(blend_linear(ident, proc, 0.0), x), yi, atol=1e-4, rtol=0)
    torch.testing.assert_close(predict(blend_linear(ident, proc, 1.0), x), yp, atol=1e-4, rtol=0)
    torch.testing.assert_close(predict(blend_linear(ident, proc, 0.25), x), 0.75 * yi + 0.25 * yp, atol=1e-3,
                               rtol=0)
    best, rows = choose_on_val(lambda b: blend_linear(ident, proc, b, kind="procrustes"), [0.0, 0.5, 1.0], data,
                               "beta")
    assert max(rows, key=lambda r: (r["val_top1"], r["val_r2"]))["beta"] == 1.0
    assert best.config.kind == "procrustes"
    assert rows[0]["val_top1"] < 0.2 and rows[-1]["val_top1"] > 0.9      # identity is wrong here, the rotation right
    with pytest.raises(ConfigError):
        choose_on_val(lambda b: proc, [], data, "beta")


# ----------------------------------------------------------------------------------------------------------
# cross-fitting on dev folds carved from train
# ----------------------------------------------------------------------------------------------------------

def _folds(data: AlignmentData, k: int = 3):
    """Dev folds over the synthetic train classes: fold i holds out every class ≡ i (mod k)."""
    from alignment.ladder import DevFold

    cls = data.splits["train"].cls
    out = []
    for i in range(k):
        gone = torch.isin(cls, data.train_classes[i::k])
        keep = torch.tensor([c for j, c in enumerate(data.train_classes.tolist()) if j % k != i])
        out.append(DevFold(train=~gone, dev=gone, anchors=None, train_classes=keep, name=f"fold{i}"))
    return out


def test_average_mlps_is_exactly_the_mean_of_the_outputs():
    from alignment.ladder import average_mlps, fit_procrustes, predict

    data = synthetic(nonlinear=True, classes=200)
    base = fit_procrustes(data)
    for hidden in ([16], [16, 8]):   # stacked first layers; deeper ones block-diagonal
        cfg = MLPConfig(architecture=MLPArchitecture(hidden_dims=hidden, dropout=0.1), epochs=2, patience=2, lr=1e-2)
        ms = [train_mlp(data, base, cfg, seed=s) for s in range(3)]
        avg = average_mlps(ms)
        x = data.splits["test"].x
        torch.testing.assert_close(predict(avg, x), torch.stack([predict(m, x) for m in ms]).mean(0), atol=1e-4,
                                   rtol=0)
        assert avg.config.mlp.hidden_dims == [3 * h for h in hidden]
    with pytest.raises(ConfigError):
        average_mlps([base])


def test_refit_like_keeps_kind_lambda_prior_and_the_full_standardisation():
    from alignment.ladder import fit_procrustes, fold_data, refit_like

    data = synthetic(nonlinear=False, classes=200, d_in=32, d_out=32)
    proc = fit_procrustes(data)
    rp, _ = fit_ridge(data, RidgeConfig(lambdas=[3.0]), prior=proc)
    fd = fold_data(data, _folds(data)[0])
    for base in (proc, rp):
        again = refit_like(base, fd)
        assert again.config.kind == base.config.kind and again.config.prior == base.config.prior
        assert again.config.ridge_lambda == base.config.ridge_lambda
        assert torch.equal(again.x_mean, base.x_mean) and torch.equal(again.y_std, base.y_std)
        assert not torch.allclose(again.linear.weight, base.linear.weight)   # refitted without the fold's rows


def test_cross_fit_never_looks_at_val_or_test_and_chooses_alpha_on_the_folds():
    from alignment.ladder import cross_fit_mlp, fit_procrustes, fold_data, predict, refit_like, shrink_residual

    data = synthetic(nonlinear=True, classes=300)
    base = fit_procrustes(data)
    folds = _folds(data)
    fd = fold_data(data, folds[1])
    assert set(fd.splits) == {"train", "val"} and not torch.isin(fd.splits["val"].cls, fd.train_classes).any()
    cfg = MLPConfig(**{**MLP.__dict__, "epochs": 4, "patience": 4, "train_linear": False})
    alphas = [0.0, 0.5, 1.0]
    mlp, alpha, rows = cross_fit_mlp(data, base, cfg, folds, alphas, lambda d: refit_like(base, d), seed=0)
    assert len(rows) == len(folds) * len(alphas) and alpha in alphas
    means = {a: sum(r["dev_top1"] for r in rows if r["alpha"] == a) / len(folds) for a in alphas}
    assert means[alpha] == max(means.values()) and alpha > 0   # a non-linear map: the residual helps on dev
    x = data.splits["test"].x
    torch.testing.assert_close(predict(shrink_residual(mlp, 0.0), x), predict(base, x), atol=1e-4, rtol=0)
    m = evaluate({"base": base, "mlp": mlp}, data)
    assert m["test"]["mlp"]["top1"] > m["test"]["base"]["top1"]
    # the val/test embeddings are never read: scrambling them changes nothing
    scrambled = AlignmentData({**data.splits, "val": SplitData(torch.randn_like(data.splits["val"].x),
                                                                data.splits["val"].cls),
                               "test": SplitData(torch.zeros_like(x), data.splits["test"].cls)},
                              data.class_emb, data.train_classes, hard=data.hard)
    again, alpha2, _ = cross_fit_mlp(scrambled, base, cfg, folds, alphas, lambda d: refit_like(base, d), seed=0)
    assert alpha2 == alpha and torch.equal(predict(again, x), predict(mlp, x))


def test_final_fit_trains_one_mlp_on_all_of_train_for_the_folds_epoch_count():
    from alignment.ladder import cross_fit_mlp, fit_procrustes, predict, refit_like

    data = synthetic(nonlinear=True, classes=300)
    base = fit_procrustes(data)
    cfg = MLPConfig(**{**MLP.__dict__, "epochs": 3, "patience": 3, "train_linear": False})
    fold_log: list[dict] = []
    mlp, alpha, _ = cross_fit_mlp(data, base, cfg, _folds(data), [0.0, 1.0], lambda d: refit_like(base, d), seed=0,
                                  log=fold_log.append, final_fit=True)
    assert mlp.config.mlp.hidden_dims == cfg.architecture.hidden_dims          # one MLP, not the folds' average
    best = [[r for r in fold_log if r["fold"] == k][-1]["best_epoch"] for k in range(3)]
    n = round(sum(best) / 3)
    direct = train_mlp(data, base, cfg, seed=0, fixed_epochs=n)
    x = data.splits["test"].x
    assert torch.equal(predict(mlp, x), predict(direct, x))
    log: list[dict] = []
    train_mlp(data, base, cfg, seed=0, fixed_epochs=2, log=log.append)          # no split looked at
    assert [r["epoch"] for r in log] == [0, 1, 2] and all(r["val_top1"] != r["val_top1"] for r in log)


def test_hub_weight_is_chosen_on_unseen_and_seen_dev_queries_of_the_folds():
    from alignment.ladder import DevFold, choose_hub_weight, cross_fit_mlp, fit_procrustes, fold_data, refit_like

    data = synthetic(nonlinear=True, classes=300)
    base = fit_procrustes(data)
    cls = data.splits["train"].cls
    folds = []
    for f in _folds(data):     # every 5th remaining train pair: a seen-class query held out of the fold's fit
        seen = f.train & (torch.arange(cls.numel()) % 5 == 0)
        folds.append(DevFold(train=f.train & ~seen, dev=f.dev, anchors=None, train_classes=f.train_classes,
                             name=f.name, seen=seen))
    fd = fold_data(data, folds[0])
    assert set(fd.splits) == {"train", "val", "seen"}
    assert torch.isin(fd.splits["seen"].cls, fd.train_classes).all()          # seen = kept classes
    cfg = MLPConfig(**{**MLP.__dict__, "epochs": 2, "patience": 2, "train_linear": False})
    weights = [0.0, 0.5, 1.0]
    _, _, rows = cross_fit_mlp(data, base, cfg, folds, [1.0], lambda d: refit_like(base, d), seed=0,
                               hub=(weights, 3))
    hub = [r for r in rows if "hub_weight" in r]
    per_fold = [r for r in hub if "fold" in r]
    assert len(per_fold) == len(folds) * len(weights) and hub[-1]["chosen"]
    means = {w: sum(r["balanced_top1"] for r in per_fold if r["hub_weight"] == w) / len(folds) for w in weights}
    assert hub[-1]["hub_weight"] == max(weights, key=lambda w: (means[w], -weights.index(w)))
    for r in per_fold:
        assert r["balanced_top1"] == pytest.approx(0.5 * (r["unseen_top1"] + r["seen_top1"]))
    with pytest.raises(ConfigError, match="seen_fraction"):                   # no seen queries: refuse to choose
        choose_hub_weight([base], [fold_data(data, _folds(data)[0])], weights, 3)


def test_mixup_trains_on_mixed_pairs_and_is_off_by_default():
    from alignment.ladder import fit_procrustes, predict

    data = synthetic(nonlinear=True, classes=200)
    base = fit_procrustes(data)
    for linear in (False, True):   # the fixed-base fast path and the full map
        cfg = MLPConfig(**{**MLP.__dict__, "epochs": 2, "patience": 2, "train_linear": linear})
        log: list[dict] = []
        plain = train_mlp(data, base, cfg, seed=0)
        mixed = train_mlp(data, base, MLPConfig(**{**cfg.__dict__, "mixup": 0.4}), seed=0, log=log.append)
        assert log[1]["train_mix"] > 0 and not torch.allclose(predict(plain, data.splits["val"].x),
                                                              predict(mixed, data.splits["val"].x))
    assert MLPConfig().mixup == 0.0
    with pytest.raises(ConfigError, match="mixup"):
        MLPConfig(mixup=-1.0)
