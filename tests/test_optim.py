"""refimpl.optim against torch.optim (AdamW, SGD: 20 steps on the same gradients, every option), the
schedule against transformers' get_linear_schedule_with_warmup, clip_grad_norm_ against torch's, parameter
groups (two groups under the warm-up schedule against torch; grouped_by_decay against the Trainer's
get_decay_parameter_names; bad groups named), and a 20-step training run of a tiny BertForSequenceClassification tracking transformers + torch step for step.
Also: in-place updates on loaded models (memory-mapped and input-major parameters) keep the layout and
never touch the checkpoint file."""

import hashlib
import tempfile
from pathlib import Path

import numpy as np
import pytest

import refimpl
from refimpl.errors import ConfigError, InputError
from reference import reference

TINY = dict(vocab_size=31, hidden_size=8, num_attention_heads=2, num_hidden_layers=1, intermediate_size=11,
            max_position_embeddings=16, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, num_labels=3)
TOL = {"float64": (1e-13, 1e-12), "float32": (2e-6, 2e-5)}  # 20 steps of the same formulas; float32: an ulp per op


def tiny_model(dtype="float64", seed=0):
    return refimpl.BertForSequenceClassification(refimpl.BertConfig(**TINY), seed=seed, dtype=dtype)


def random_grads(model, rng, scale=1.0):
    return {k: (rng.standard_normal(v.shape) * scale).astype(v.dtype) for k, v in model.params.items()}


def assert_params_close(model, tparams, dtype, context):
    atol, rtol = TOL[dtype]
    for name, t in tparams.items():
        want = t.detach().numpy()
        got = np.asarray(model.params[name])
        np.testing.assert_allclose(got, want, atol=atol, rtol=rtol, err_msg=f"{context}: {name}")


OPTIONS = [
    ("AdamW", {}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.1, "betas": (0.8, 0.99), "eps": 1e-6}),
    ("AdamW", {"lr": 0.01, "amsgrad": True}),
    ("AdamW", {"lr": 0.01, "maximize": True, "weight_decay": 0.0}),
    ("SGD", {"lr": 0.05}),
    ("SGD", {"lr": 0.05, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.05, "momentum": 0.5, "dampening": 0.3, "maximize": True}),
]


@pytest.mark.parity
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name,options", OPTIONS)
def test_optimizer_tracks_torch_for_20_steps(name, options, dtype):
    torch, _ = reference()
    model = tiny_model(dtype)
    tparams = {k: torch.nn.Parameter(torch.from_numpy(np.array(v))) for k, v in model.params.items()}
    opt = getattr(refimpl.optim, name)(model, **options)
    topt = getattr(torch.optim, name)(list(tparams.values()), **options)
    rng = np.random.default_rng(1)
    for step in range(20):
        grads = random_grads(model, rng, scale=10.0 ** rng.integers(-3, 2))
        for k, p in tparams.items():
            p.grad = torch.from_numpy(grads[k].copy())
        topt.step()
        opt.step(grads)
        assert_params_close(model, tparams, dtype, f"{name} {options} step {step}")


@pytest.mark.parity
def test_linear_schedule_with_warmup_matches_transformers():
    torch, transformers = reference()
    for warmup, total in [(0, 10), (3, 10), (5, 5), (4, 2)]:
        model = tiny_model()
        opt = refimpl.optim.AdamW(model, lr=0.1)
        sched = refimpl.optim.get_linear_schedule_with_warmup(opt, warmup, total)
        topt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        tsched = transformers.get_linear_schedule_with_warmup(topt, warmup, total)
        for step in range(total + 3):  # (torch warns that the schedule steps without optimizer steps: harmless here)
            assert sched.get_last_lr() == pytest.approx(tsched.get_last_lr(), abs=1e-15), (warmup, total, step)
            assert opt.lr == topt.param_groups[0]["lr"]
            sched.step()
            tsched.step()


@pytest.mark.parity
@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf")])
@pytest.mark.parametrize("max_norm", [0.5, 1e6])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    torch, _ = reference()
    rng = np.random.default_rng(2)
    grads = {f"p{i}": rng.standard_normal((3, i + 1)) for i in range(4)}
    tensors = [torch.nn.Parameter(torch.zeros(3, i + 1, dtype=torch.float64)) for i in range(4)]
    for t, g in zip(tensors, grads.values()):
        t.grad = torch.from_numpy(g.copy())
    want = float(torch.nn.utils.clip_grad_norm_(tensors, max_norm, norm_type))
    got = refimpl.optim.clip_grad_norm_(grads, max_norm, norm_type)
    assert got == pytest.approx(want, rel=1e-14)
    for t, g in zip(tensors, grads.values()):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-14)


@pytest.mark.parity
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_training_run_tracks_transformers_step_for_step(dtype):
    """AdamW + warm-up schedule + clipping, 20 steps of loss_and_grads on a tiny classifier, against
    transformers' model trained by torch on the same batches: losses and parameters agree at every step."""
    torch, transformers = reference()
    torch.manual_seed(0)
    hf = transformers.BertForSequenceClassification(transformers.BertConfig(**TINY, attn_implementation="eager"))
    if dtype == "float64":
        hf = hf.double()
    with tempfile.TemporaryDirectory() as d:
        hf.save_pretrained(d)
        model = refimpl.BertForSequenceClassification.from_pretrained(d, dtype=dtype)
    hf.eval()
    opt = refimpl.optim.AdamW(model, lr=3e-3, weight_decay=0.01)
    sched = refimpl.optim.get_linear_schedule_with_warmup(opt, 4, 20)
    topt = torch.optim.AdamW(hf.parameters(), lr=3e-3, weight_decay=0.01)
    tsched = transformers.get_linear_schedule_with_warmup(topt, 4, 20)
    rng = np.random.default_rng(3)
    loss_tol = 1e-10 if dtype == "float64" else 2e-5
    for step in range(20):
        ids = rng.integers(0, 31, (4, 6))
        labels = rng.integers(0, 3, 4)
        loss, grads = model.loss_and_grads(input_ids=ids, labels=labels)
        refimpl.optim.clip_grad_norm_(grads, 1.0)
        opt.step(grads)
        sched.step()
        topt.zero_grad()
        out = hf(input_ids=torch.from_numpy(ids), labels=torch.from_numpy(labels)).loss
        out.backward()
        torch.nn.utils.clip_grad_norm_(hf.parameters(), 1.0)
        topt.step()
        tsched.step()
        tloss = float(out.detach())
        assert abs(float(loss) - tloss) <= loss_tol * max(1.0, abs(tloss)), (step, float(loss), tloss)
    atol = 1e-10 if dtype == "float64" else 2e-5
    for name, p in hf.named_parameters():
        np.testing.assert_allclose(np.asarray(model.params[name]), p.detach().numpy(), atol=atol, rtol=atol,
                                   err_msg=name)


def test_in_place_updates_keep_the_layout_and_leave_the_checkpoint_alone():
    model = tiny_model("float32")
    with tempfile.TemporaryDirectory() as d:
        model.save_pretrained(d)
        digest = hashlib.sha256((Path(d) / "model.safetensors").read_bytes()).hexdigest()
        loaded = refimpl.BertForSequenceClassification.from_pretrained(d, kernels="fast")
        layouts = {k: (v.shape, v.flags.c_contiguous, v.T.flags.c_contiguous) for k, v in loaded.params.items()}
        assert any(not c and t for _, c, t in layouts.values())  # some input-major encoder weights
        ids = np.array([[1, 5, 7, 2]])
        before = loaded(input_ids=ids).logits.copy()
        opt = refimpl.optim.SGD(loaded, lr=0.1)
        loss, grads = loaded.loss_and_grads(input_ids=ids, labels=np.array([1]))
        opt.step(grads)
        after = {k: (v.shape, v.flags.c_contiguous, v.T.flags.c_contiguous) for k, v in loaded.params.items()}
        assert after == layouts and all(v.flags.writeable and v.flags.owndata or v.base.flags.owndata
                                        for v in loaded.params.values())
        assert hashlib.sha256((Path(d) / "model.safetensors").read_bytes()).hexdigest() == digest
        # the forward sees the new values: equal to a fresh model built from the updated state
        ref = refimpl.BertForSequenceClassification.from_tensors(loaded.config, loaded.state_dict())
        np.testing.assert_allclose(loaded(input_ids=ids).logits, ref(input_ids=ids).logits, atol=1e-6)
        assert np.abs(loaded(input_ids=ids).logits - before).max() > 1e-4
        loss2, _ = loaded.loss_and_grads(input_ids=ids, labels=np.array([1]))
        assert float(loss2) < float(loss)


def test_encoder_decoder_parts_see_the_updates():
    enc = refimpl.BertModel(refimpl.BertConfig(**{**TINY, "num_labels": 2}), seed=1)
    dec = refimpl.BertLMHeadModel(refimpl.BertConfig(**{**TINY, "num_labels": 2}, is_decoder=True,
                                                     add_cross_attention=True), seed=2)
    s2s = refimpl.EncoderDecoderModel(encoder=enc, decoder=dec)
    s2s.config.pad_token_id, s2s.config.decoder_start_token_id = 0, 1
    opt = refimpl.optim.AdamW(s2s, lr=1e-2)
    ids, labels = np.array([[3, 4, 5]]), np.array([[6, 7, 8, 2]])
    loss0, grads = s2s.loss_and_grads(input_ids=ids, labels=labels)
    opt.step(grads)
    for name, arr in s2s.encoder.params.items():
        assert arr is s2s.params["encoder." + name]
    assert float(s2s(input_ids=ids, labels=labels).loss) < float(loss0)


def test_bad_optimizer_arguments_are_named():
    model = tiny_model()
    with pytest.raises(ConfigError, match="lr=-1"):
        refimpl.optim.AdamW(model, lr=-1)
    with pytest.raises(ConfigError, match="beta2=1.0"):
        refimpl.optim.AdamW(model, betas=(0.9, 1.0))
    with pytest.raises(ConfigError, match="nesterov"):
        refimpl.optim.SGD(model, nesterov=True)
    opt = refimpl.optim.SGD(model)
    with pytest.raises(InputError, match="not parameters"):
        opt.step({"nope.weight": np.zeros(3)})
    with pytest.raises(InputError, match="shape"):
        opt.step({"classifier.bias": np.zeros(7)})
    with pytest.raises(InputError, match="not finite"):
        refimpl.optim.clip_grad_norm_({"a": np.array([np.inf])}, 1.0, error_if_nonfinite=True)


# --- parameter groups ------------------------------------------------------------------------------

GROUPED = [
    ("AdamW", {"lr": 0.01, "weight_decay": 0.1}, [{"lr": 0.03}, {"weight_decay": 0.0, "betas": (0.8, 0.99)}]),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.01}, [{"lr": 0.02}, {"weight_decay": 0.0,
                                                                                 "nesterov": True}]),
]


@pytest.mark.parity
@pytest.mark.parametrize("name,defaults,overrides", GROUPED)
def test_two_groups_under_warmup_track_torch_for_20_steps(name, defaults, overrides):
    """Two groups (Trainer's split: decayed weights, then biases and LayerNorm weights) with different lr and
    weight decay, a third set of parameters in no group (never updated, as torch never sees them), under
    the warm-up schedule: float64 parameters within 1e-12 of the largest |entry| per tensor, every step."""
    torch, transformers = reference()
    model = tiny_model("float64")
    left_out = "classifier.weight"
    groups = refimpl.optim.grouped_by_decay(model, defaults["weight_decay"])
    groups = [{**g, **o, "params": [n for n in g["params"] if n != left_out]} for g, o in zip(groups, overrides)]
    assert all(g["params"] for g in groups)
    before = np.array(model.params[left_out])
    tparams = {k: torch.nn.Parameter(torch.from_numpy(np.array(v))) for k, v in model.params.items()}
    opt = getattr(refimpl.optim, name)(model, **defaults, param_groups=groups)
    topt = getattr(torch.optim, name)([{**g, "params": [tparams[n] for n in g["params"]]} for g in groups],
                                      **defaults)
    sched = refimpl.optim.get_linear_schedule_with_warmup(opt, 5, 20)
    tsched = transformers.get_linear_schedule_with_warmup(topt, 5, 20)
    rng = np.random.default_rng(4)
    worst = 0.0
    for step in range(20):
        grads = random_grads(model, rng, scale=10.0 ** rng.integers(-3, 2))
        for k, p in tparams.items():
            p.grad = torch.from_numpy(grads[k].copy())
        topt.step()
        tsched.step()
        opt.step(grads)
        sched.step()
        assert [g["lr"] for g in opt.param_groups] == [g["lr"] for g in topt.param_groups], step
        assert [g["initial_lr"] for g in opt.param_groups] == [g["initial_lr"] for g in topt.param_groups]
        for k, t in tparams.items():
            want = t.detach().numpy()
            err = np.abs(np.asarray(model.params[k]) - want).max() / max(np.abs(want).max(), 1e-300)
            worst = max(worst, err)
            assert err <= 1e-12, (name, step, k, err)
    np.testing.assert_array_equal(model.params[left_out], before)
    assert sched.get_last_lr() == tsched.get_last_lr()
    print(f"{name}: worst relative difference over 20 steps {worst:.2e}")


def _trainer_groups(transformers, hf):
    decay = transformers.Trainer.get_decay_parameter_names(None, hf)  # uses no Trainer state
    names = [n for n, _ in hf.named_parameters()]
    return [[n for n in names if n in decay], [n for n in names if n not in decay]]


@pytest.mark.parity
@pytest.mark.parametrize("cls", ["BertForSequenceClassification", "BertForMaskedLM", "RobertaForMaskedLM"])
def test_grouped_by_decay_equals_the_trainers_groups(cls):
    torch, transformers = reference()
    config_cls = "RobertaConfig" if cls.startswith("Roberta") else "BertConfig"
    hf = getattr(transformers, cls)(getattr(transformers, config_cls)(**TINY))
    model = getattr(refimpl, cls)(getattr(refimpl, config_cls)(**TINY), seed=0)
    assert sorted(model.params) == sorted(n for n, _ in hf.named_parameters())  # same names (order may differ)
    groups = refimpl.optim.grouped_by_decay(model, 0.01)
    assert [sorted(g["params"]) for g in groups] == [sorted(g) for g in _trainer_groups(transformers, hf)]
    assert all(g["params"] == [n for n in model.params if n in g["params"]] for g in groups)  # model.params order
    assert [g["weight_decay"] for g in groups] == [0.01, 0.0]
    assert any("LayerNorm.weight" in n for n in groups[1]["params"]) and all("bias" not in n for n in groups[0]["params"])
    classic = refimpl.optim.grouped_by_decay(model, 0.01, no_decay=("bias", "LayerNorm.weight"))
    if cls.startswith("Bert"):  # the older scripts' substrings: the same split on BERT ...
        assert classic == groups
    else:  # ... but they decay RoBERTa's lm_head.layer_norm.weight, which the Trainer does not
        assert "lm_head.layer_norm.weight" in classic[0]["params"] and "lm_head.layer_norm.weight" in groups[1]["params"]


def test_param_groups_without_torch():
    model = tiny_model()
    opt = refimpl.optim.AdamW(model, lr=0.1, weight_decay=0.05)
    assert len(opt.param_groups) == 1 and opt.param_groups[0]["params"] == list(model.params)
    assert opt.param_groups[0]["weight_decay"] == 0.05 and opt.lr == 0.1
    groups = refimpl.optim.grouped_by_decay(model, 0.05)
    opt = refimpl.optim.SGD(model, lr=0.1, param_groups=[groups[0], {**groups[1], "lr": 0.2}])
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.2]
    assert [g["weight_decay"] for g in opt.param_groups] == [0.05, 0.0]
    sched = refimpl.optim.get_linear_schedule_with_warmup(opt, 2, 10)
    assert sched.get_last_lr() == [0.0, 0.0]
    sched.step()
    assert sched.get_last_lr() == [0.05, 0.1] and opt.param_groups[1]["initial_lr"] == 0.2
    opt.lr = 0.3  # sets every group
    assert opt.lr == 0.3
    # a parameter in no group is never updated, even with a gradient
    only = refimpl.optim.SGD(model, lr=1.0, param_groups=[{"params": ["classifier.bias"]}])
    before = {k: np.array(v) for k, v in model.params.items()}
    only.step({k: np.ones_like(v) for k, v in model.params.items()})
    changed = [k for k in model.params if not np.array_equal(model.params[k], before[k])]
    assert changed == ["classifier.bias"]


def test_bad_param_groups_are_named():
    model = tiny_model()
    b, w = "classifier.bias", "classifier.weight"
    cases = [
        ([{"params": [b]}, {"params": [w, b]}], r"param_groups\[1\]: parameter 'classifier.bias' appears more "
                                                r"than once \(also in param_groups\[0\]\)"),
        ([{"params": [b, b]}], r"'classifier.bias' appears more than once \(also in the same group\)"),
        ([{"params": [b, "nope.weight", "bert.nope"]}], r"\['nope.weight', 'bert.nope'\] are not parameters"),
        ([{"params": [b], "momentum": 0.9}], r"unknown option\(s\) \['momentum'\]"),
        ([{"params": b}], "must be a list of parameter names"),
        ([{"params": [np.zeros(3)]}], "give parameter names"),
        ([{"weight_decay": 0.0}], "a 'params' list"),
        ([{"params": [b], "lr": -1}], r"param_groups\[0\]: lr=-1"),
        ([{"params": [b], "betas": (0.9, 1.0)}], r"param_groups\[0\]: beta2=1.0"),
        ([], "no parameters"),
        ({"params": [b]}, "must be a list of dicts"),
    ]
    for groups, match in cases:
        with pytest.raises(ConfigError, match=match):
            refimpl.optim.AdamW(model, param_groups=groups)
    with pytest.raises(ConfigError, match=r"param_groups\[0\]: nesterov"):
        refimpl.optim.SGD(model, momentum=0.9, param_groups=[{"params": [b], "dampening": 0.5, "nesterov": True}])
    opt = refimpl.optim.AdamW(model, lr=0.1, param_groups=[{"params": [b]}, {"params": [w], "lr": 0.2}])
    with pytest.raises(ConfigError, match="different learning rates"):
        opt.lr
    with pytest.raises(ConfigError, match="2 parameter groups"):
        refimpl.optim.LambdaLR(opt, [lambda s: 1.0])
    with pytest.raises(ConfigError, match="no_decay"):
        refimpl.optim.grouped_by_decay(model, 0.01, no_decay="bias")
