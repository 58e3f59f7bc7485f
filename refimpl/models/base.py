"""What every refimpl model class shares: strict loading by name, backend/dtype placement, input checks.

A model class is thin: a config, a flat dict of parameters named as in transformers' checkpoints (on the
backend and dtype chosen at load time), and a ``__call__`` that validates inputs and calls pure functions.

Loading is strict: every tensor the class needs must be in the checkpoint with the right shape, and every
tensor in the checkpoint must be used, with exactly these exceptions (transformers makes the same ones):

| exception | what happens |
|---|---|
| base-model prefix (``bert.``) absent from a checkpoint loaded into a head class | the prefix is added |
| base-model prefix present in a checkpoint loaded into the base class | the prefix is removed |
| tensors of another class's head (``cls.*``, ``classifier.*``, ``qa_outputs.*``, ``lm_head.*``) | ignored, listed in ``load_report["ignored"]`` (transformers: "some weights were not used", a warning) |
| a pooler (``bert.pooler.*``, ``roberta.pooler.*``) loaded into a class built without one (transformers' ``add_pooling_layer=False``: BertLMHeadModel, BertForMaskedLM, BertForTokenClassification, BertForQuestionAnswering, RobertaForCausalLM, RobertaForMaskedLM) | ignored, listed in ``load_report["ignored"]`` (so Google's BertForPreTraining layout loads into every head) |
| tied LM-head weight (``cls.predictions.decoder.weight`` when ``tie_word_embeddings``) | the word embeddings are used; a stored copy is ignored |
| ``cls.predictions.decoder.bias`` (an alias of ``cls.predictions.bias``) | used as the bias if that is absent, else ignored |
| pooler absent, loading ``BertModel`` | no pooler: ``pooler_output`` is None (transformers would initialise it randomly) |
| legacy ``LayerNorm.gamma`` / ``LayerNorm.beta`` names | renamed to ``weight`` / ``bias`` |
| anything else missing (a head the checkpoint lacks: ``classifier.*`` of a base-model checkpoint) | an error naming the tensors and the option: ``from_pretrained(..., init_missing=True, seed=0)`` initialises them as transformers does (refimpl.models.init), listed in ``load_report["initialized"]`` |
| non-persistent buffers ``embeddings.position_ids`` / ``embeddings.token_type_ids`` | ignored |
"""

from __future__ import annotations

import copy
import json
import os
import shutil
from pathlib import Path

import numpy as np

from ..backend import auto_dtype, get_backend, resolve_dtype, to_host
from ..checkpoint import check_layer_count, load_checkpoint_tensors, rename_legacy
from ..errors import CheckpointError, ConfigError, InputError, InputTypeError
from ..kernels import get_kernels
from .init import check_fits_in_memory, generator, init_weights

OTHER_HEAD_NAMESPACES = ("cls.", "classifier.", "qa_outputs.", "lm_head.")
BUFFER_SUFFIXES = ("embeddings.position_ids", "embeddings.token_type_ids")


def match_checkpoint(expected: dict, tensors: dict, files: dict, *, base_prefix: str | None,
                     optional_prefixes=(), aliases=None, tied=None, unused_prefixes=(), allow_missing=False,
                     where="checkpoint"):
    """Map checkpoint tensors onto the names and shapes a model expects, strictly (see module docstring).

    expected: name -> shape the model needs. tensors/files: name -> array / file it came from.
    base_prefix: e.g. "bert" for head classes (whose names start with "bert."), None for the base class
    when the checkpoint may carry that prefix. optional_prefixes: names that may be missing as a group.
    aliases: alias -> canonical name. tied: names served by another tensor (never needed from the file).
    unused_prefixes: checkpoint tensors this class has no module for (a pooler), ignored.
    allow_missing: missing tensors are listed in ``report["missing"]`` for the caller to initialise,
    instead of an error.
    Returns (params: name -> array, report: dict of lists).
    """
    report = {"renamed": [], "ignored": [], "missing_optional": [], "prefix": None}
    aliases = aliases or {}
    tied = set(tied or ())
    found = {}
    for name, arr in tensors.items():
        new = rename_legacy(name)
        if new != name:
            report["renamed"].append((name, new))
        files.setdefault(new, files.get(name, where))
        if new.endswith(BUFFER_SUFFIXES):
            report["ignored"].append(new)
            continue
        found[new] = arr

    if base_prefix:
        p = base_prefix + "."
        model_prefixed = any(k.startswith(p) for k in expected)
        ckpt_prefixed = any(k.startswith(p) for k in found)
        if model_prefixed and not ckpt_prefixed:
            found = {(k if k.startswith(OTHER_HEAD_NAMESPACES) else p + k): v for k, v in found.items()}
            files.update({p + k: f for k, f in list(files.items())})
            report["prefix"] = f"added {p!r}"
        elif not model_prefixed and ckpt_prefixed:
            found = {(k[len(p):] if k.startswith(p) else k): v for k, v in found.items()}
            files.update({k[len(p):]: f for k, f in list(files.items()) if k.startswith(p)})
            report["prefix"] = f"removed {p!r}"

    for alias, canonical in aliases.items():
        if alias in found:
            if canonical not in found:
                found[canonical] = found[alias]
            report["ignored"].append(alias)
            del found[alias]
    for name in tied:
        if name in found:
            report["ignored"].append(name)
            del found[name]
    for name in [k for k in found if k.startswith(tuple(unused_prefixes)) and k not in expected]:
        report["ignored"].append(name)
        del found[name]

    missing = sorted(set(expected) - set(found))
    optional_missing = [m for m in missing if m.startswith(tuple(optional_prefixes))]
    for prefix in optional_prefixes:
        group = [m for m in expected if m.startswith(prefix)]
        if group and all(m in optional_missing for m in group):
            report["missing_optional"].extend(group)
    missing = [m for m in missing if m not in report["missing_optional"]]
    if allow_missing:
        report["missing"], missing = missing, []
    unexpected = sorted(set(found) - set(expected))
    other_heads = [u for u in unexpected if u.startswith(OTHER_HEAD_NAMESPACES)]
    report["ignored"].extend(other_heads)
    unexpected = [u for u in unexpected if u not in other_heads]
    if missing or unexpected:
        lines = [f"checkpoint does not match the model ({where}):"]
        if missing:
            lines.append(f"  missing {len(missing)} tensor(s): {missing[:8]}{' ...' if len(missing) > 8 else ''}")
            if not unexpected:
                lines.append("  If the checkpoint really lacks them (a head never trained, cross-attention of a new "
                             "decoder), from_pretrained(..., init_missing=True, seed=0) initialises them as "
                             "transformers does, listed in load_report['initialized'].")
        if unexpected:
            lines.append(
                f"  unexpected {len(unexpected)} tensor(s): "
                + ", ".join(f"{u} (in {files.get(u, where)})" for u in unexpected[:8])
            )
        lines.append("  Check that config.json describes this checkpoint (layers, sizes, is_decoder, "
                     "add_cross_attention) and that the model class matches the checkpoint's head.")
        raise CheckpointError("\n".join(lines))
    for name, shape in expected.items():
        if name in found and tuple(found[name].shape) != tuple(shape):
            raise CheckpointError(
                f"tensor {name} in {files.get(name, where)} has shape {tuple(found[name].shape)}, but the config "
                f"implies {tuple(shape)}; check config.json against the checkpoint"
            )
    params = {k: v for k, v in found.items() if k in expected}
    return params, report


class PreTrainedModel:
    """Base of every model class: holds ``config``, ``params`` (checkpoint names), ``xp`` and ``dtype``.

    ``Model(config)`` builds one with new weights, as transformers' ``Model(config)`` does
    (:mod:`refimpl.models.init`; ``seed=`` or ``refimpl.set_seed``); ``Model.from_pretrained(dir)`` loads one.
    """

    config_class = None
    base_model_prefix = "bert"
    with_pooler = True  # False: a class transformers builds with add_pooling_layer=False (a pooler in the file is ignored)
    padding_embeddings = ("embeddings.word_embeddings.weight",)  # nn.Embedding(padding_idx=pad_token_id)

    def __init__(self, config, params: dict | None = None, xp=None, dtype="float32", load_report=None, kernels=None,
                 *, seed=None, backend=None):
        """``params`` None: new weights for ``config`` (seeded by ``seed``, else by ``refimpl.set_seed``),
        on ``backend`` ("numpy" default, or "cupy") and ``dtype``. Otherwise the parameters as loaded."""
        if params is None:
            if xp is not None:
                raise ConfigError("give backend='numpy' or 'cupy' to build a model with new weights, not xp")
            backend = backend or "numpy"
            xp, np_dtype, kernels = get_backend(backend), resolve_dtype(dtype, backend), get_kernels(kernels)
            shapes = self.param_shapes(config)
            check_fits_in_memory(shapes, np_dtype)  # before drawing: a config can ask for terabytes
            host = self.new_weights(config, shapes, generator(seed))
            params = self._place(config, host, xp, np_dtype, kernels)
            load_report = {"initialized": list(host)}
            dtype = np_dtype
        elif backend is not None:
            raise ConfigError("backend= applies only to a model built with new weights (params=None)")
        self.config = config
        self.params = params
        self.xp = np if xp is None else xp
        self.dtype = np.dtype(dtype)
        self.load_report = load_report or {}
        self.kernels = get_kernels(kernels)  # the kernel set every forward runs (refimpl.kernels)

    def __call__(self, *args, **kwargs):
        """``forward(*args, **kwargs)`` inside the kernel set's thread region (the fast set: worker threads
        for inputs large enough to split, fewer on a contended machine; see ``kernels.threads``), so that
        everything of one call, heads included, runs under one threading decision.

        ``return_dict=False`` (or ``return_dict: false`` in config.json) returns transformers' tuple: the
        output record's non-None fields in order (``ModelOutput.to_tuple``)."""
        return_dict = kwargs.pop("return_dict", None)
        if return_dict is None:
            return_dict = self.config.extra.get("return_dict", True)
        if not isinstance(return_dict, bool):
            raise InputError(f"return_dict must be True or False, got {return_dict!r}")
        with self.kernels.region(self.xp, rows=_token_rows(args, kwargs)):
            out = self.forward(*args, **kwargs)
        return out if return_dict else out.to_tuple()

    def forward(self, *args, **kwargs):
        raise NotImplementedError

    def _ops(self, recorder=None):
        """The kernel set for one forward, bound to ``recorder`` (or to the one ``refimpl.record(model)``
        installed; None records nothing)."""
        return self.kernels.with_recorder(recorder if recorder is not None else self.__dict__.get("_recorder"))

    # -- what the class needs ----------------------------------------------------------------------
    @classmethod
    def param_shapes(cls, config) -> dict:
        """name -> shape of every parameter this class reads (tied ones excluded)."""
        raise NotImplementedError

    @classmethod
    def _match_options(cls, config) -> dict:
        """Keyword arguments for :func:`match_checkpoint` (prefix, optional groups, aliases, tied names)."""
        return {"base_prefix": cls.base_model_prefix}

    @classmethod
    def _unused_prefixes(cls) -> tuple:
        """Checkpoint tensors this class has no module for: the pooler of a class without one."""
        if cls.with_pooler:
            return ()
        return ("pooler.", f"{cls.base_model_prefix}.pooler.")

    @classmethod
    def new_weights(cls, config, shapes: dict, rng) -> dict:
        """New host arrays for ``shapes`` (a subset of :meth:`param_shapes`), as transformers initialises
        this class (refimpl.models.init)."""
        prefix = f"{cls.base_model_prefix}." if any(k.startswith(f"{cls.base_model_prefix}.") for k in shapes) else ""
        rows = {prefix + name: config.pad_token_id for name in cls.padding_embeddings}
        return init_weights(shapes, config.initializer_range, rng, rows)

    # -- construction ------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, path, dtype="float32", backend="numpy", config=None, kernels=None, init_missing=False,
                        seed=None, quantization_config=None, **config_overrides):
        """Load a checkpoint directory (config.json + model.safetensors, or a sharded index).

        dtype: "float32" (default), "float64", "float16" or "bfloat16" (half storage computed in float32,
        docs/precision.md; bfloat16 needs ml_dtypes, numpy only), or "auto": config.json's dtype / torch_dtype,
        else the checkpoint's first floating-point tensor's, as transformers does. backend: "numpy" or "cupy".
        kernels: "fast" (the default, None) or "reference": which implementation of every op the forward runs
        (``refimpl.kernels``; the reference set is the textbook code of ``refimpl/ops``).
        config_overrides: config fields set as transformers' ``from_pretrained(path, num_labels=3,
        is_decoder=True, ...)`` sets them (``Config.update``); an unknown name is an error.
        init_missing: tensors the class needs and the checkpoint lacks (a new head, new cross-attention) are
        initialised as transformers does (seeded by ``seed``; listed in ``load_report["initialized"]``)
        instead of being an error.
        Weights are read into memory the process owns (refimpl/checkpoint.py: a rewritten or truncated file
        never changes or crashes a loaded model); the fast kernels then store an encoder's layer projections
        input-major (``_place``) and drop the array read: either way one copy of each parameter.
        """
        path = Path(path)
        config = cls._config_for(path, config, config_overrides)
        tensors, files = load_checkpoint_tensors(path)
        if isinstance(dtype, str) and dtype == "auto":
            dtype = auto_dtype(config, tensors, files)
        model = cls.from_tensors(config, tensors, dtype=dtype, backend=backend, files=files, where=str(path),
                                 kernels=kernels, init_missing=init_missing, seed=seed,
                                 quantization_config=quantization_config)
        model.generation_config_path = path / "generation_config.json"  # read by generate() when present
        model.load_report["format"] = getattr(tensors, "format", "safetensors")  # refimpl.formats.directory
        if getattr(tensors, "skipped", None):
            model.load_report["format_skipped"] = tensors.skipped  # TF optimizer slots, fairseq buffers
        return model

    @classmethod
    def _config_for(cls, path, config, overrides):
        """The config of ``from_pretrained``: ``config`` (a copy, when overridden) or the directory's."""
        if config is None:
            if Path(path).is_dir() and not (Path(path) / "config.json").is_file():
                from ..formats.directory import config_dict  # TF's bert_config.json, fairseq's args

                carried = config_dict(path)
                if carried is not None:
                    return cls.config_class.from_dict(carried, **overrides)
            return cls.config_class.from_pretrained(path, **overrides)
        if overrides:
            config = copy.deepcopy(config)
            config.update(**overrides)
        return config

    @classmethod
    def from_tensors(cls, config, tensors: dict, dtype="float32", backend="numpy", files=None, where="tensors",
                     kernels=None, init_missing=False, seed=None, quantization_config=None):
        """Build from a dict of host arrays named as in a checkpoint (strict matching, see module doc).

        quantization_config: a ``refimpl.BitsAndBytesConfig`` (4-bit or LLM.int8, refimpl.quantization);
        config.json's ``quantization_config`` applies when it is None (a checkpoint saved quantized)."""
        from ..quantization import weights as quant

        xp = get_backend(backend)
        np_dtype = resolve_dtype(dtype, backend)
        kernels = get_kernels(kernels)
        qconfig = quant.config_for(quantization_config, config)
        if qconfig is not None:
            quant.check_model_dtype(qconfig, np_dtype, backend)
            tensors = quant.gather_prequantized(tensors, qconfig)
        if not init_missing:
            check_layer_count(config, tensors, where)  # before the shape table is built from the config's claim
        shapes = cls.param_shapes(config)
        options = {"unused_prefixes": cls._unused_prefixes(), **cls._match_options(config)}
        params, report = match_checkpoint(shapes, tensors, dict(files or {}), where=where,
                                          allow_missing=init_missing, **options)
        missing = report.pop("missing", [])
        if missing:
            params.update(cls.new_weights(config, {k: shapes[k] for k in missing}, generator(seed)))
            report["initialized"] = missing
        if qconfig is not None:
            params, report["quantized"] = quant.quantize_params(cls, params, qconfig, np_dtype)
        return cls(config, cls._place(config, params, xp, np_dtype, kernels), xp=xp, dtype=np_dtype,
                   load_report=report, kernels=kernels)

    @staticmethod
    def _place(config, params, xp, np_dtype, kernels):
        # Each parameter on the backend at the model's dtype, laid out as the kernel set wants it (the fast
        # set: an encoder's layer projections input-major, see Kernels.place).
        is_decoder = bool(getattr(config, "is_decoder", False))
        return {name: kernels.place(name, arr, xp, np_dtype, is_decoder) for name, arr in params.items()}

    # -- saving ------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Every parameter under its checkpoint name, on the host in the checkpoint's layout (C-contiguous
        [O, I] for linear weights whatever the kernels store), in the model's dtype. Tied weights appear once
        (the word embeddings), as in transformers' safetensors files."""
        refuse_quantized(self, "state_dict / save_pretrained",
                         "save the float model (loaded without quantization_config) instead")
        return {name: np.ascontiguousarray(to_host(arr)) for name, arr in self.params.items()}

    def save_pretrained(self, save_directory) -> Path:
        """Write ``config.json`` and ``model.safetensors`` (and the ``generation_config.json`` it was
        loaded with, if any) into ``save_directory``: a directory transformers 4.57.6 loads into the same
        class with the same outputs, and refimpl loads back bit for bit.

        The weights file is written beside and then renamed over the old one, so a process that has the old
        file open or mapped (another reader, another library) never sees it half rewritten."""
        from safetensors.numpy import save_file

        directory = Path(save_directory)
        if directory.exists() and not directory.is_dir():
            raise CheckpointError(f"save_pretrained: {directory} is a file; give a directory to save into")
        directory.mkdir(parents=True, exist_ok=True)
        data = self.config.to_dict()
        data["architectures"] = [type(self).__name__]
        (directory / "config.json").write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        partial = directory / "model.safetensors.partial"
        save_file(self.state_dict(), str(partial), metadata={"format": "pt"})
        os.replace(partial, directory / "model.safetensors")
        source = getattr(self, "generation_config_path", None)
        target = directory / "generation_config.json"
        if source is not None and source.is_file() and not (target.exists() and target.samefile(source)):
            shutil.copyfile(source, target)
        return directory

    def num_parameters(self) -> int:
        return int(sum(int(np.prod(a.shape)) for a in self.params.values()))

    # -- inputs ------------------------------------------------------------------------------------
    def _ids(self, value, name, limit, what="ids"):
        """Validate integer ids [B, S] in [0, limit) on the host; return them on the model's backend."""
        arr = host_array(value, name)
        if arr.dtype.kind not in "iu":
            if arr.dtype == object or arr.dtype.kind in "fcUSb":
                raise InputTypeError(
                    f"{name} must hold integer {what}, got dtype {arr.dtype}; convert with "
                    f"np.asarray({name}, dtype=np.int64)"
                )
            raise InputTypeError(f"{name} must be an integer array, got {type(value).__name__}")
        if arr.ndim != 2:
            raise InputError(
                f"{name} must have shape [batch, sequence_length], got shape {arr.shape}"
                + ("; wrap a single sequence as [ids]" if arr.ndim == 1 else "")
            )
        if arr.shape[1] == 0 or arr.shape[0] == 0:
            raise InputError(f"{name} is empty (shape {arr.shape}); every sequence needs at least one token")
        if arr.size and (arr.min() < 0 or arr.max() >= limit):
            bad = arr[(arr < 0) | (arr >= limit)].ravel()[0]
            raise InputError(
                f"{name} contains {int(bad)}, outside [0, {limit}); {what} must be in that range "
                "(check the tokenizer matches the model's vocabulary / config)"
            )
        return self.xp.asarray(arr.astype(np.int64, copy=False))

    def _mask(self, value, name, shape_options):
        """Validate a 0/1 mask whose shape is one of ``shape_options``; return it on the backend, model dtype."""
        arr = binary_mask(value, name)
        if tuple(arr.shape) not in [tuple(s) for s in shape_options]:
            raise InputError(
                f"{name} has shape {arr.shape}, expected " + " or ".join(str(tuple(s)) for s in shape_options)
                + " to match the input ids (and any cached positions)"
            )
        return self.xp.asarray(arr.astype(self.dtype, copy=False))

    def _floats(self, value, name, shape):
        arr = value if not isinstance(value, (list, tuple)) else np.asarray(value)
        arr = self.xp.asarray(to_host(arr) if self.xp is np else arr)
        if arr.dtype.kind not in "iuf" or tuple(arr.shape) != tuple(shape):
            raise InputError(f"{name} must be a float array of shape {tuple(shape)}, got {arr.dtype} {arr.shape}")
        return arr.astype(self.dtype, copy=False)


def binary_mask(value, name):
    """``value`` as a host array holding only 0 and 1 (or booleans): the one mask the forward and
    ``generate`` accept. Any other value (2, -1, 0.5, NaN) is an InputError naming it: transformers folds
    such a value into ``(1 - mask) * min`` (a forward) or casts it to an integer first (``generate``),
    and the two disagree (docs/parity.md)."""
    arr = host_array(value, name)
    if arr.dtype.kind not in "biuf":
        raise InputTypeError(f"{name} must be a numeric array of 0/1, got dtype {arr.dtype}")
    if arr.dtype.kind != "b":
        bad = (arr != 0) & (arr != 1)  # NaN is neither
        if bad.any():
            raise InputError(
                f"{name} contains {arr[bad].ravel()[0].item()!r}; a mask holds only 1 (attend) and 0 (masked). Build it "
                f"as (mask > 0).astype(int) or pass the tokenizer's attention_mask"
            )
    return arr


def refuse_quantized(model, what, fix):
    """A CheckpointError when ``model`` holds quantized weights (refimpl.quantization) that ``what`` cannot
    handle, naming the first one and ``fix``."""
    quantized = [name for name, arr in model.params.items() if hasattr(arr, "linear")]
    if quantized:
        raise CheckpointError(f"{what} is not supported for a quantized model ({len(quantized)} quantized weights, "
                              f"e.g. {quantized[0]}); {fix}")


def host_array(value, name):
    """``value`` (an array, nested lists, anything with ``__array__``) as a host numpy array, or an
    InputError naming ``name`` when its rows have different lengths (a batch that was not padded)."""
    try:
        return np.asarray(to_host(value))
    except (ValueError, TypeError):
        lengths = [len(row) if hasattr(row, "__len__") else "scalar" for row in value] if hasattr(value, "__iter__") else []
        raise InputError(
            f"{name} is ragged: its rows have lengths {lengths[:8]}{' ...' if len(lengths) > 8 else ''}; pad the batch "
            "to one length (tokenizer(texts, padding=True)) and pass the attention_mask the tokenizer returns"
        ) from None


def _token_rows(args, kwargs):
    """How many token rows a call works on: the size of ``input_ids`` (the first argument), else of
    ``inputs_embeds`` without its last axis; None if neither is given (or the input is malformed: the
    forward's checks then say how)."""
    ids = args[0] if args else kwargs.get("input_ids")
    try:
        if ids is not None:
            return int(np.prod(np.shape(ids)))
        embeds = kwargs.get("inputs_embeds")
        return int(np.prod(np.shape(embeds)[:-1])) if embeds is not None else None
    except ValueError:
        return None


class GenerationMixin:
    """``generate()`` for the classes that can generate (decoders and EncoderDecoderModel): greedy, beam
    search and sampling with transformers' keywords; see :func:`refimpl.generation.generate`."""

    def generate(self, inputs=None, **kwargs):
        from ..generation import generate

        # One threading decision for the whole search (decode steps are small: no worker threads, and
        # the BLAS held at the free cores' count on a contended machine; see kernels.threads.cpu_threads)
        with self.kernels.region(self.xp, rows=1):
            return generate(self, inputs, **kwargs)
