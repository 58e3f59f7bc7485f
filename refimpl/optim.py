"""Optimizers, the linear warm-up schedule and gradient clipping, as torch.optim / transformers define them.

    opt = refimpl.optim.AdamW(model, lr=5e-5, weight_decay=0.01)
    sched = refimpl.optim.get_linear_schedule_with_warmup(opt, num_warmup_steps=10, num_training_steps=100)
    for batch in batches:
        loss, grads = model.loss_and_grads(**batch)
        refimpl.optim.clip_grad_norm_(grads, 1.0)
        opt.step(grads)          # the model's parameters, updated in place
        sched.step()

Parameter groups, as transformers' Trainer builds them (no weight decay on biases and LayerNorm weights):

    opt = refimpl.optim.AdamW(model, lr=5e-5, param_groups=refimpl.optim.grouped_by_decay(model, 0.01))
    opt.param_groups     # torch's list of dicts: "params" (names), "lr", "weight_decay", ... per group

Only the parameters named in some group are optimised (torch's rule); schedules scale each group's lr
from its own ``initial_lr``.

Semantics are torch 2.13's single-tensor implementations (``torch/optim/adamw.py``, ``sgd.py``) and
transformers 4.57.6's ``get_linear_schedule_with_warmup``; each step below is written in the order torch
computes it, so float64 runs agree to rounding (tests/test_optim.py: 20 steps against torch.optim).

``step(grads)`` takes the dict of :meth:`loss_and_grads` (name -> gradient); parameters absent from it are
left alone, as torch skips a parameter whose ``.grad`` is None. Parameters are updated in place. A loaded
model's parameters may be read-only views of the memory-mapped checkpoint or input-major transposed
views (``refimpl.kernels.Kernels.place``); the optimizer first replaces each with an owned, writable copy
in the same layout (same shape, same strides order), everywhere the model holds it (an
EncoderDecoderModel's encoder / decoder dictionaries included), so the checkpoint file is never written.
"""

from __future__ import annotations

import math
import re
import sys

import numpy as np

from .backend import array_module
from .errors import ConfigError, InputError


def _models(model):
    """The model and the sub-models that hold the same parameter arrays (EncoderDecoderModel's parts)."""
    out = [model]
    for part in ("encoder", "decoder"):
        sub = getattr(model, part, None)
        if sub is not None and hasattr(sub, "params"):
            out.extend(_models(sub))
    return out


def own_parameters(model):
    """Replace every parameter of ``model`` by an owned, writable copy in the same layout (an input-major
    view stays input-major), in every dictionary that holds it. Returns ``model.params``."""
    copies = {}
    for m in _models(model):
        for name, arr in m.params.items():
            if id(arr) not in copies:
                xp = array_module(arr)
                if arr.ndim == 2 and arr.T.flags.c_contiguous and not arr.flags.c_contiguous:
                    copies[id(arr)] = xp.ascontiguousarray(arr.T).T  # input-major: [I, O] row-major, seen as [O, I]
                else:
                    copies[id(arr)] = xp.array(arr, copy=True)
            m.params[name] = copies[id(arr)]
        m.__dict__.pop("_output_weight_input_major", None)  # a decoding copy of the LM head, stale after a step
    return model.params


def _check(name, value, low=0.0, where=""):
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value < low:
        raise ConfigError(f"{where}{name}={value!r}: must be a finite number >= {low}")


class Optimizer:
    """What AdamW and SGD share: the model, ``param_groups`` (torch's list of dicts: ``params``, a list of
    parameter names, and each option of the group, ``lr`` included, which a schedule sets), per-parameter
    state.

    Without ``param_groups`` there is one group holding every parameter of the model, with the constructor's
    options. With ``param_groups=[{"params": [names...], "weight_decay": 0.0, ...}, ...]`` each group's
    options override the constructor's; every name must be a parameter of the model and in at most one
    group. As in torch, **only the listed parameters are optimised**: a parameter in no group is never
    updated (its gradient, if ``grads`` has one, is ignored)."""

    _options = ("lr",)

    def __init__(self, model, defaults, param_groups=None):
        self.model = model
        self.defaults = dict(defaults)
        self.state = {}  # name -> dict of arrays / step count
        self._validate(self.defaults, "")
        params = model.params
        if param_groups is None:
            groups = [{"params": list(params)}]
        else:
            if isinstance(param_groups, dict) or not isinstance(param_groups, (list, tuple)):
                raise ConfigError(f"param_groups must be a list of dicts (torch's form: [{{'params': [names...], "
                                  f"'weight_decay': 0.0}}, ...]), not {type(param_groups).__name__}")
            if not param_groups:
                raise ConfigError("param_groups=[]: the optimizer got no parameters (as torch: an empty "
                                  "parameter list is an error)")
            groups = param_groups
        self.param_groups = []
        seen = {}
        for i, group in enumerate(groups):
            where = f"param_groups[{i}]: "
            if not isinstance(group, dict) or "params" not in group:
                raise ConfigError(f"{where}each group is a dict with a 'params' list of parameter names, got "
                                  f"{group!r:.80}")
            extra = sorted(set(group) - {"params"} - set(self._options))
            if extra:
                raise ConfigError(f"{where}unknown option(s) {extra}; {type(self).__name__}'s group options are "
                                  f"{list(self._options)}")
            names = group["params"]
            if isinstance(names, str) or not isinstance(names, (list, tuple)):
                raise ConfigError(f"{where}'params' must be a list of parameter names (model.params keys), got "
                                  f"{names!r:.80}")
            bad = [n for n in names if not isinstance(n, str)]
            if bad:
                raise ConfigError(f"{where}'params' holds {type(bad[0]).__name__} values; give parameter names "
                                  "(model.params keys), not arrays or tensors")
            missing = [n for n in names if n not in params]
            if missing:
                raise ConfigError(f"{where}{missing[:5]} {'is not a parameter' if len(missing) == 1 else 'are not parameters'} "
                                  f"of this model ({len(missing)} unknown name(s)); the names are model.params' keys")
            for n in names:
                if n in seen:
                    other = "the same group" if seen[n] == i else f"param_groups[{seen[n]}]"
                    raise ConfigError(f"{where}parameter {n!r} appears more than once (also in {other}); "
                                      "every parameter may be in at most one group")
                seen[n] = i
            merged = {**self.defaults, **{k: v for k, v in group.items() if k != "params"}}
            self._validate(merged, where)
            self.param_groups.append({"params": list(names), **self._normalise(merged)})
        self._group_of = {n: g for g in self.param_groups for n in g["params"]}
        own_parameters(model)

    def _validate(self, options, where):
        _check("lr", options["lr"], where=where)

    def _normalise(self, options):
        return {"lr": float(options["lr"])}

    @property
    def lr(self):
        """The learning rate when every group has the same one (``param_groups[i]["lr"]`` otherwise);
        setting it sets every group's."""
        lrs = {g["lr"] for g in self.param_groups}
        if len(lrs) != 1:
            raise ConfigError(f"the groups have different learning rates {[g['lr'] for g in self.param_groups]}; "
                              "read optimizer.param_groups[i]['lr']")
        return lrs.pop()

    @lr.setter
    def lr(self, value):
        _check("lr", value)
        for g in self.param_groups:
            g["lr"] = float(value)

    def step(self, grads):
        params = self.model.params
        unknown = [k for k in grads if k not in params and k not in ("inputs_embeds", "decoder_inputs_embeds",
                                                                      "encoder_hidden_states")]
        if unknown:
            raise InputError(f"grads has entries {unknown[:5]} that are not parameters of this model; pass the "
                             "dict loss_and_grads returned")
        for name, g in grads.items():
            group = self._group_of.get(name)
            if group is None:  # not a parameter, or one in no group: torch does not touch it
                continue
            p = params[name]
            if tuple(g.shape) != tuple(p.shape):
                raise InputError(f"grads[{name!r}] has shape {tuple(g.shape)}, the parameter {tuple(p.shape)}")
            self._update(name, p, g.astype(p.dtype, copy=False), self.state.setdefault(name, {}), group)
        for m in _models(self.model):
            m.__dict__.pop("_output_weight_input_major", None)

    def _update(self, name, p, g, state, group):
        raise NotImplementedError


class AdamW(Optimizer):
    """torch.optim.AdamW: Adam with decoupled weight decay (Loshchilov & Hutter), torch's defaults.

    Per step t (from 1), for each parameter p with gradient g (``maximize``: g = -g), with its group's
    options:

        p  = p * (1 - lr * weight_decay)                      decoupled decay, before the moments
        m  = lerp(m, g, 1 - beta1)                             first moment (torch's lerp)
        v  = v * beta2 + (1 - beta2) * g * g                   second moment
        v^ = max(v^, v) if amsgrad else v
        p  = p - (lr / (1 - beta1^t)) * m / (sqrt(v^) / sqrt(1 - beta2^t) + eps)

    ``param_groups``: see :class:`Optimizer`; group options are ``lr``, ``betas``, ``eps``, ``weight_decay``,
    ``amsgrad``, ``maximize``.
    """

    _options = ("lr", "betas", "eps", "weight_decay", "amsgrad", "maximize")

    def __init__(self, model, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False,
                 maximize=False, param_groups=None):
        super().__init__(model, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                                     maximize=maximize), param_groups)

    def _validate(self, o, where):
        super()._validate(o, where)
        betas = o["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ConfigError(f"{where}betas={betas!r}: must be a pair (beta1, beta2)")
        for n, v in (("beta1", betas[0]), ("beta2", betas[1])):
            _check(n, v, where=where)
            if v >= 1.0:
                raise ConfigError(f"{where}{n}={v!r}: must be in [0, 1)")
        _check("eps", o["eps"], where=where)
        _check("weight_decay", o["weight_decay"], where=where)

    def _normalise(self, o):
        return dict(lr=float(o["lr"]), betas=(float(o["betas"][0]), float(o["betas"][1])), eps=float(o["eps"]),
                    weight_decay=float(o["weight_decay"]), amsgrad=bool(o["amsgrad"]), maximize=bool(o["maximize"]))

    def _update(self, name, p, g, state, group):
        xp = array_module(p)
        lr, (beta1, beta2), eps, weight_decay = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        if not state:
            state.update(step=0, exp_avg=xp.zeros_like(p), exp_avg_sq=xp.zeros_like(p))
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = xp.zeros_like(p)
        state["step"] += 1
        t = state["step"]
        if group["maximize"]:
            g = -g
        if weight_decay != 0:
            p *= 1 - lr * weight_decay
        m, v = state["exp_avg"], state["exp_avg_sq"]
        _lerp_(m, g, 1 - beta1)
        v *= beta2
        v += (1 - beta2) * g * g
        if group["amsgrad"]:
            xp.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
            v = state["max_exp_avg_sq"]
        step_size = lr / (1 - beta1 ** t)
        denom = xp.sqrt(v) / math.sqrt(1 - beta2 ** t) + eps
        p -= step_size * (m / denom)


def _lerp_(a, b, w):
    """a <- lerp(a, b, w) in place, torch's formula: a + w (b - a) for w < 0.5, else b - (b - a)(1 - w)."""
    if w < 0.5:
        a += w * (b - a)
    else:
        a[...] = b - (b - a) * (1 - w)


class SGD(Optimizer):
    """torch.optim.SGD: (``maximize``: g = -g), with each parameter's group options

        g = g + weight_decay * p                                  (coupled L2 decay)
        b = g (first step), else b = momentum * b + (1 - dampening) * g
        g = g + momentum * b if nesterov else b                   (when momentum != 0)
        p = p - lr * g

    ``param_groups``: see :class:`Optimizer`; group options are ``lr``, ``momentum``, ``dampening``,
    ``weight_decay``, ``nesterov``, ``maximize``.
    """

    _options = ("lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize")

    def __init__(self, model, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False,
                 param_groups=None):
        super().__init__(model, dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                                     nesterov=nesterov, maximize=maximize), param_groups)

    def _validate(self, o, where):
        super()._validate(o, where)
        for n in ("momentum", "dampening", "weight_decay"):
            _check(n, o[n], where=where)
        if o["nesterov"] and (o["momentum"] <= 0 or o["dampening"] != 0):
            raise ConfigError(f"{where}nesterov=True requires momentum > 0 and dampening = 0 (as torch.optim.SGD)")

    def _normalise(self, o):
        return dict(lr=float(o["lr"]), momentum=float(o["momentum"]), dampening=float(o["dampening"]),
                    weight_decay=float(o["weight_decay"]), nesterov=bool(o["nesterov"]), maximize=bool(o["maximize"]))

    def _update(self, name, p, g, state, group):
        momentum, weight_decay = group["momentum"], group["weight_decay"]
        if group["maximize"]:
            g = -g
        if weight_decay != 0:
            g = g + weight_decay * p
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = g.copy()
            else:
                buf *= momentum
                buf += (1 - group["dampening"]) * g
            g = g + momentum * buf if group["nesterov"] else buf
        p -= group["lr"] * g


# --- schedules -------------------------------------------------------------------------------------


class LambdaLR:
    """torch.optim.lr_scheduler.LambdaLR: each group's lr = its initial_lr * lr_lambda(step). Built at step 0:
    it sets every group's ``initial_lr`` (unless set already: ``setdefault``, as torch) and its lr to
    initial_lr * lr_lambda(0) right away, as torch's constructor does; ``step()`` advances one step.
    ``lr_lambda`` is one function for every group or a list with one per group (torch's two forms)."""

    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        if last_epoch != -1:
            raise ConfigError("last_epoch: only -1 (a new schedule) is supported")
        groups = optimizer.param_groups
        if isinstance(lr_lambda, (list, tuple)):
            if len(lr_lambda) != len(groups):
                raise ConfigError(f"lr_lambda: {len(lr_lambda)} functions for {len(groups)} parameter groups "
                                  "(give one function, or one per group)")
            self.lr_lambdas = list(lr_lambda)
        else:
            self.lr_lambdas = [lr_lambda] * len(groups)
        self.optimizer = optimizer
        for g in groups:
            g.setdefault("initial_lr", g["lr"])
        self.base_lrs = [g["initial_lr"] for g in groups]
        self.last_epoch = -1
        self.step()

    @property
    def lr_lambda(self):
        return self.lr_lambdas[0]

    def step(self):
        self.last_epoch += 1
        for g, base, f in zip(self.optimizer.param_groups, self.base_lrs, self.lr_lambdas):
            g["lr"] = base * f(self.last_epoch)
        self._last_lr = [g["lr"] for g in self.optimizer.param_groups]

    def get_last_lr(self):
        return list(self._last_lr)


def get_linear_schedule_with_warmup(optimizer, num_warmup_steps, num_training_steps, last_epoch=-1):
    """transformers' schedule: lr rises linearly from 0 to the optimizer's lr over ``num_warmup_steps``, then
    falls linearly to 0 at ``num_training_steps``:

        lambda(s) = s / max(1, W)                          for s < W
                  = max(0, (T - s) / max(1, T - W))        otherwise
    """
    w, total = int(num_warmup_steps), int(num_training_steps)

    def lr_lambda(step):
        if step < w:
            return float(step) / float(max(1, w))
        return max(0.0, float(total - step) / float(max(1, total - w)))

    return LambdaLR(optimizer, lr_lambda, last_epoch)


# --- Trainer-style grouping ------------------------------------------------------------------------

# transformers 4.57.6 Trainer.get_decay_parameter_names: no decay for the parameters of nn.LayerNorm modules
# (ALL_LAYERNORM_LAYERS) and for names whose lower-cased form matches one of these patterns
TRAINER_NO_DECAY = (r"bias", r"layernorm", r"rmsnorm", r"(?:^|\.)norm(?:$|\.)", r"_norm(?:$|\.)")


def decay_parameter_names(model, no_decay=TRAINER_NO_DECAY):
    """The names in ``model.params`` that get weight decay: those matching none of the ``no_decay`` regular
    expressions (searched in the name, case-insensitively). With the default, transformers'
    ``Trainer.get_decay_parameter_names``: every LayerNorm module of refimpl's models has a name the
    patterns match (``LayerNorm``, RoBERTa's ``lm_head.layer_norm``), so the layer-type rule adds nothing."""
    if isinstance(no_decay, str) or not all(isinstance(p, str) for p in no_decay):
        raise ConfigError(f"no_decay={no_decay!r}: must be a tuple of name patterns such as ('bias', 'LayerNorm.weight')")
    patterns = [re.compile(p, re.IGNORECASE) for p in no_decay]
    return [n for n in model.params if not any(p.search(n) for p in patterns)]


def grouped_by_decay(model, weight_decay, no_decay=TRAINER_NO_DECAY):
    """The two parameter groups transformers' Trainer gives its optimizer (``create_optimizer``):

        [{"params": [names with decay], "weight_decay": weight_decay},
         {"params": [the others: biases, LayerNorm weights], "weight_decay": 0.0}]

    in ``model.params`` order; pass them as ``AdamW(model, lr=..., param_groups=grouped_by_decay(model, 0.01))``.
    ``no_decay`` are regular expressions searched in each name, case-insensitively; the default is the
    Trainer's rule (transformers 4.57.6), the older scripts' ``("bias", "LayerNorm.weight")`` also works
    (it differs on RoBERTa's ``lm_head.layer_norm.weight``, which it decays)."""
    _check("weight_decay", weight_decay)
    decay = set(decay_parameter_names(model, no_decay))
    return [{"params": [n for n in model.params if n in decay], "weight_decay": float(weight_decay)},
            {"params": [n for n in model.params if n not in decay], "weight_decay": 0.0}]


# --- clipping --------------------------------------------------------------------------------------


def clip_grad_norm_(grads, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """torch.nn.utils.clip_grad_norm_ on a gradient dict, in place: the global norm
    N = || (||g_1||, ||g_2||, ...) || (``norm_type``, inf: the largest |entry|), then every gradient times
    min(1, max_norm / (N + 1e-6)). Returns N (a float). Input gradients (``inputs_embeds``) are left out."""
    arrays = [g for k, g in grads.items() if k not in ("inputs_embeds", "decoder_inputs_embeds", "encoder_hidden_states")]
    if not arrays:
        return 0.0
    xp = array_module(arrays[0])
    norm_type = float(norm_type)
    if norm_type == math.inf:
        norms = xp.stack([xp.abs(g).max() for g in arrays])
        total = norms.max()
    else:
        norms = xp.stack([(xp.abs(g) ** norm_type).sum() ** (1.0 / norm_type) for g in arrays])
        total = (norms ** norm_type).sum() ** (1.0 / norm_type)
    total = float(total)
    if error_if_nonfinite and not math.isfinite(total):
        raise InputError(f"the total norm of the gradients is {total} (not finite); clip_grad_norm_ with "
                         "error_if_nonfinite=False scales them anyway, as torch")
    coef = min(float(max_norm) / (total + 1e-6), 1.0)
    for k, g in grads.items():
        if k not in ("inputs_embeds", "decoder_inputs_embeds", "encoder_hidden_states"):
            g *= g.dtype.type(coef)
    return total


__all__ = ["AdamW", "SGD", "LambdaLR", "get_linear_schedule_with_warmup", "clip_grad_norm_", "own_parameters",
           "grouped_by_decay", "decay_parameter_names", "TRAINER_NO_DECAY"]

optim = sys.modules[__name__]  # so that refimpl's lazy _EXPORTS can serve ``refimpl.optim`` itself
