"""Optimizers, the linear warm-up schedule and gradient clipping, as torch.optim / transformers define them.

    opt = refimpl.optim.AdamW(model, lr=5e-5, weight_decay=0.01)
    sched = refimpl.optim.get_linear_schedule_with_warmup(opt, num_warmup_steps=10, num_training_steps=100)
    for batch in batches:
        loss, grads = model.loss_and_grads(**batch)
        refimpl.optim.clip_grad_norm_(grads, 1.0)
        opt.step(grads)          # the model's parameters, updated in place
        sched.step()

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


def _check(name, value, low=0.0):
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value < low:
        raise ConfigError(f"{name}={value!r}: must be a finite number >= {low}")


class Optimizer:
    """What AdamW and SGD share: the model, its learning rate ``lr`` (a schedule sets it), per-parameter state."""

    def __init__(self, model, lr):
        _check("lr", lr)
        self.model = model
        self.lr = float(lr)
        self.initial_lr = float(lr)
        self.state = {}  # name -> dict of arrays / step count
        own_parameters(model)

    def step(self, grads):
        params = self.model.params
        unknown = [k for k in grads if k not in params and k not in ("inputs_embeds", "decoder_inputs_embeds",
                                                                      "encoder_hidden_states")]
        if unknown:
            raise InputError(f"grads has entries {unknown[:5]} that are not parameters of this model; pass the "
                             "dict loss_and_grads returned")
        for name, g in grads.items():
            if name not in params:
                continue
            p = params[name]
            if tuple(g.shape) != tuple(p.shape):
                raise InputError(f"grads[{name!r}] has shape {tuple(g.shape)}, the parameter {tuple(p.shape)}")
            self._update(name, p, g.astype(p.dtype, copy=False), self.state.setdefault(name, {}))
        for m in _models(self.model):
            m.__dict__.pop("_output_weight_input_major", None)

    def _update(self, name, p, g, state):
        raise NotImplementedError


class AdamW(Optimizer):
    """torch.optim.AdamW: Adam with decoupled weight decay (Loshchilov & Hutter), torch's defaults.

    Per step t (from 1), for each parameter p with gradient g (``maximize``: g = -g):

        p  = p * (1 - lr * weight_decay)                      decoupled decay, before the moments
        m  = lerp(m, g, 1 - beta1)                             first moment (torch's lerp)
        v  = v * beta2 + (1 - beta2) * g * g                   second moment
        v^ = max(v^, v) if amsgrad else v
        p  = p - (lr / (1 - beta1^t)) * m / (sqrt(v^) / sqrt(1 - beta2^t) + eps)
    """

    def __init__(self, model, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False,
                 maximize=False):
        for n, v in (("beta1", betas[0]), ("beta2", betas[1])):
            _check(n, v)
            if v >= 1.0:
                raise ConfigError(f"{n}={v!r}: must be in [0, 1)")
        _check("eps", eps)
        _check("weight_decay", weight_decay)
        super().__init__(model, lr)
        self.betas, self.eps, self.weight_decay = (float(betas[0]), float(betas[1])), float(eps), float(weight_decay)
        self.amsgrad, self.maximize = bool(amsgrad), bool(maximize)

    def _update(self, name, p, g, state):
        xp = array_module(p)
        beta1, beta2 = self.betas
        if not state:
            state.update(step=0, exp_avg=xp.zeros_like(p), exp_avg_sq=xp.zeros_like(p))
            if self.amsgrad:
                state["max_exp_avg_sq"] = xp.zeros_like(p)
        state["step"] += 1
        t = state["step"]
        if self.maximize:
            g = -g
        if self.weight_decay != 0:
            p *= 1 - self.lr * self.weight_decay
        m, v = state["exp_avg"], state["exp_avg_sq"]
        _lerp_(m, g, 1 - beta1)
        v *= beta2
        v += (1 - beta2) * g * g
        if self.amsgrad:
            xp.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
            v = state["max_exp_avg_sq"]
        step_size = self.lr / (1 - beta1 ** t)
        denom = xp.sqrt(v) / math.sqrt(1 - beta2 ** t) + self.eps
        p -= step_size * (m / denom)


def _lerp_(a, b, w):
    """a <- lerp(a, b, w) in place, torch's formula: a + w (b - a) for w < 0.5, else b - (b - a)(1 - w)."""
    if w < 0.5:
        a += w * (b - a)
    else:
        a[...] = b - (b - a) * (1 - w)


class SGD(Optimizer):
    """torch.optim.SGD: (``maximize``: g = -g)

        g = g + weight_decay * p                                  (coupled L2 decay)
        b = g (first step), else b = momentum * b + (1 - dampening) * g
        g = g + momentum * b if nesterov else b                   (when momentum != 0)
        p = p - lr * g
    """

    def __init__(self, model, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False):
        for n, v in (("momentum", momentum), ("dampening", dampening), ("weight_decay", weight_decay)):
            _check(n, v)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ConfigError("nesterov=True requires momentum > 0 and dampening = 0 (as torch.optim.SGD)")
        super().__init__(model, lr)
        self.momentum, self.dampening, self.weight_decay = float(momentum), float(dampening), float(weight_decay)
        self.nesterov, self.maximize = bool(nesterov), bool(maximize)

    def _update(self, name, p, g, state):
        if self.maximize:
            g = -g
        if self.weight_decay != 0:
            g = g + self.weight_decay * p
        if self.momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = g.copy()
            else:
                buf *= self.momentum
                buf += (1 - self.dampening) * g
            g = g + self.momentum * buf if self.nesterov else buf
        p -= self.lr * g


# --- schedules -------------------------------------------------------------------------------------


class LambdaLR:
    """torch.optim.lr_scheduler.LambdaLR: lr = initial_lr * lr_lambda(step). Built at step 0 (it sets the
    optimizer's lr to initial_lr * lr_lambda(0) right away, as torch's constructor does); ``step()``
    advances one step."""

    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        if last_epoch != -1:
            raise ConfigError("last_epoch: only -1 (a new schedule) is supported")
        self.optimizer, self.lr_lambda = optimizer, lr_lambda
        self.base_lr = optimizer.initial_lr
        self.last_epoch = -1
        self.step()

    def step(self):
        self.last_epoch += 1
        self.optimizer.lr = self.base_lr * self.lr_lambda(self.last_epoch)

    def get_last_lr(self):
        return [self.optimizer.lr]


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


__all__ = ["AdamW", "SGD", "LambdaLR", "get_linear_schedule_with_warmup", "clip_grad_norm_", "own_parameters"]

optim = sys.modules[__name__]  # so that refimpl's lazy _EXPORTS can serve ``refimpl.optim`` itself
