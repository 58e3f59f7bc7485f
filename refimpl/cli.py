"""The ``refimpl`` command's conformance subcommands: ``trace`` and ``compare`` (see docs/CONFORMANCE.md).

    refimpl trace all-MiniLM-L6-v2 --text "A sentence." --out golden.safetensors [--with-oracle]
    refimpl compare golden.safetensors candidate.npz [--map names.json] [--oracle] [--json report.json]

Exit status: 0 when everything compared is within tolerance (or, with --oracle, within float32 rounding),
1 when something is not, 2 for bad input (a message, never a traceback).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from .errors import RefimplError

TASKS = {  # --task -> class name by model_type
    "base": {"bert": "BertModel", "roberta": "RobertaModel", "bert-generation": "BertGenerationEncoder"},
    "masked-lm": {"bert": "BertForMaskedLM", "roberta": "RobertaForMaskedLM"},
    "causal-lm": {"bert": "BertLMHeadModel", "roberta": "RobertaForCausalLM", "bert-generation": "BertGenerationDecoder"},
    "pretraining": {"bert": "BertForPreTraining"},
    "next-sentence": {"bert": "BertForNextSentencePrediction"},
    "sequence-classification": {"bert": "BertForSequenceClassification"},
    "token-classification": {"bert": "BertForTokenClassification"},
    "question-answering": {"bert": "BertForQuestionAnswering"},
}
INPUT_KEYS = ("input_ids", "attention_mask", "token_type_ids", "position_ids")


class CliError(RefimplError, ValueError):
    """Bad command-line input: printed as one message, exit status 2."""


def _model_dir(name):
    path = Path(name)
    if path.is_dir():
        return path
    from .registry import fetch

    try:
        return fetch(name)
    except Exception as e:  # an unknown name, or no network: say both what was tried and what to do
        raise CliError(f"model {name!r} is neither a checkpoint directory nor a registered model ({e})") from None


def load_model(name, task="base", dtype="float32", backend="numpy", kernels="fast"):
    import refimpl
    from .config import read_config_json

    directory = _model_dir(name)
    kind = read_config_json(directory).get("model_type", "bert")
    if kind == "encoder-decoder":  # bert2bert, roberta2roberta: one class whatever the task
        return directory, refimpl.EncoderDecoderModel.from_pretrained(directory, dtype=dtype, backend=backend,
                                                                       kernels=kernels)
    if task not in TASKS:
        raise CliError(f"unknown task {task!r}; choose one of {sorted(TASKS)}")
    if kind not in TASKS[task]:
        raise CliError(f"task {task!r} has no class for model_type {kind!r}; it has {sorted(TASKS[task])}")
    cls = getattr(refimpl, TASKS[task][kind])
    return directory, cls.from_pretrained(directory, dtype=dtype, backend=backend, kernels=kernels)


def _samples(args, directory):
    """Each sample: a dict of int64 arrays [1, S] (model inputs), in the order given (--text, then --inputs)."""
    from .corpus import item_inputs, read_corpus

    pairs = args.text_pair or []
    if pairs and len(pairs) != len(args.text or []):
        raise CliError(f"{len(args.text or [])} --text but {len(pairs)} --text-pair: give one pair per text, or none")
    items = [{"text": t, "text_pair": pairs[i] if pairs else None} for i, t in enumerate(args.text or [])]
    if args.inputs:
        items += read_corpus(args.inputs)
    if not items:
        raise CliError("nothing to trace: give --text (and --text-pair), or --inputs FILE.jsonl")
    tokenizer = None
    if any("text" in item for item in items):
        from .tokenizers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(directory)
    return [item_inputs(item, tokenizer) for item in items]


def _batches(samples, size, pad_id):
    """Groups of ``size`` samples, right-padded to the longest (mask 0 at padding): [(rows, inputs)]."""
    out = []
    for start in range(0, len(samples), size):
        group = samples[start:start + size]
        length = max(s["input_ids"].shape[1] for s in group)
        keys = [k for k in INPUT_KEYS if any(k in s for s in group)]
        if "position_ids" in keys and not all("position_ids" in s for s in group):
            raise CliError("samples batched together must all give position_ids, or none of them")
        defaults = {"attention_mask": np.ones_like, "token_type_ids": np.zeros_like}  # what the model assumes
        batch = {}
        for key in keys + (["attention_mask"] if "attention_mask" not in keys else []):
            fill = pad_id if key == "input_ids" else 0
            rows = [s[key] if key in s else defaults[key](s["input_ids"]) for s in group]
            batch[key] = np.concatenate([np.pad(r, ((0, 0), (0, length - r.shape[1])), constant_values=fill)
                                         for r in rows])
        out.append((list(range(start, start + len(group))), batch))
    return out


def cmd_trace(args) -> int:
    from .trace import save_trace, trace, trace_generate

    if args.batch < 1:
        raise CliError(f"--batch {args.batch}: give at least 1")
    if args.generate is not None and args.generate < 1:
        raise CliError(f"--generate {args.generate}: give at least 1 new token")
    if args.num_beams != 1 and args.generate is None:
        raise CliError("--num-beams applies to generation: give --generate MAX_NEW_TOKENS too")
    if args.num_beams < 1:
        raise CliError(f"--num-beams {args.num_beams}: give at least 1")
    if args.with_oracle and args.dtype != "float32":
        raise CliError("--with-oracle traces a float64 oracle beside a float32 trace: use --dtype float32")
    directory, model = load_model(args.model, args.task, args.dtype, args.backend, args.kernels)
    run = trace
    if args.generate is not None:
        if not hasattr(model, "generate"):
            raise CliError(f"--generate needs a model that generates: an encoder-decoder checkpoint, or --task "
                           f"causal-lm (this is a {type(model).__name__})")

        def run(model, inputs, recorder_include=None):  # a generation trace instead of one forward
            return trace_generate(model, inputs, args.generate, args.num_beams, recorder_include)
    oracle_model = load_model(args.model, args.task, "float64", args.backend, args.kernels)[1] if args.with_oracle else None
    samples = _samples(args, directory)
    groups = _batches(samples, args.batch, getattr(model.config, "pad_token_id", 0) or 0)
    show_progress = bool(args.inputs) and (sys.stderr.isatty() or args.progress)
    tensors, meta, layout = {}, None, []
    many = len(groups) > 1
    for j, (rows, inputs) in enumerate(groups):
        prefix = (f"sample.{rows[0]}." if args.batch == 1 else f"batch.{j}.") if many else ""
        got, meta = run(model, inputs, recorder_include=args.include)
        tensors.update((prefix + k, v) for k, v in got.items())
        if oracle_model is not None:
            ref64, _ = run(oracle_model, inputs, recorder_include=args.include)
            tensors.update(("oracle." + prefix + k, v) for k, v in ref64.items() if v.dtype.kind == "f")
        layout.append({"prefix": prefix, "samples": rows, "length": int(inputs["input_ids"].shape[1])})
        if show_progress:
            print(f"\rtraced {rows[-1] + 1}/{len(samples)}", end="", file=sys.stderr, flush=True)
    if show_progress:
        print(file=sys.stderr)
    meta.update(batch=args.batch, batches=layout, model_path=str(directory), task=args.task,
                oracle=bool(oracle_model))
    path = save_trace(args.out, tensors, meta, args.format)
    print(f"wrote {path}: {len(tensors)} tensors from {len(samples)} input(s) ({model.dtype.name}, "
          f"{model.kernels.name} kernels{', with a float64 oracle' if oracle_model else ''})")
    return 0


def _name_map(path):
    if path is None:
        return None
    p = Path(path)
    if not p.is_file():
        raise CliError(f"--map {p}: no such file")
    try:
        m = json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise CliError(f"--map {p}: not JSON ({e.msg})") from None
    if not isinstance(m, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in m.items()):
        raise CliError(f"--map {p}: must be a JSON object of candidate name (or glob) -> refimpl name")
    return m


def cmd_compare(args) -> int:
    from .compare import compare_traces
    from .trace import load_trace

    reference, _ = load_trace(args.reference)
    candidate, _ = load_trace(args.candidate)
    oracle = {k[len("oracle."):]: v for k, v in reference.items() if k.startswith("oracle.")}
    reference = {k: v for k, v in reference.items() if not k.startswith("oracle.")}
    candidate = {k: v for k, v in candidate.items() if not k.startswith("oracle.")}
    if args.oracle and not oracle:
        raise CliError(f"{args.reference} holds no float64 oracle: trace it with `refimpl trace ... --with-oracle`")
    per_name = []
    for item in args.tol or []:
        try:
            pattern, values = item.rsplit("=", 1)
            a, r = (float(v) for v in values.split(","))
        except ValueError:
            raise CliError(f"--tol {item!r}: write GLOB=ATOL,RTOL (e.g. '*.probs=1e-6,0')") from None
        per_name.append((pattern, a, r))
    result = compare_traces(reference, candidate, name_map=_name_map(args.map), atol=args.atol, rtol=args.rtol,
                            per_name=per_name, oracle=oracle if args.oracle else None,
                            strict_names=args.strict_names)
    if not result.results:
        raise CliError("no tensor name is in both files: give a name map (--map) from the candidate's names to refimpl's")
    print(result.summary())
    if args.all:
        print(result.table())
    if args.json:
        text = json.dumps(result.to_json(), indent=1, default=float)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text)
    return 0 if result.ok else 1


def cmd_compare_corpus(args) -> int:
    from .corpus import compare_corpus

    summary = compare_corpus(args.model, args.candidate, args.inputs, args.out, task=args.task, batch=args.batch,
                             workers=args.workers, scheduler=args.scheduler, name_map=_name_map(args.map),
                             oracle=args.oracle)
    n = summary["diverging_inputs"]
    print(f"{summary['inputs']} inputs in {summary['batches']} batches ({summary['resumed']} already done): "
          f"{n} diverge" + (" (outside float32 rounding)" if args.oracle else ""))
    for d in summary["diverging"][:10]:
        print(f"  input {d['input']}: first divergent tensor {d['first']} (max |d| {d['max_abs']:.3g})")
    print(f"summary: {Path(args.out) / 'summary.json'}")
    return 0 if n == 0 else 1


def parser():
    ap = argparse.ArgumentParser(prog="refimpl", description="refimpl's conformance tools (docs/CONFORMANCE.md)")
    sub = ap.add_subparsers(dest="command", required=True)
    t = sub.add_parser("trace", help="run a model and write its inputs, every intermediate and its outputs")
    t.add_argument("model", help="a checkpoint directory or a registered model name (all-MiniLM-L6-v2)")
    t.add_argument("--text", action="append", help="an input text (repeat for several; each is traced alone)")
    t.add_argument("--text-pair", action="append", help="the second text of a pair, one per --text")
    t.add_argument("--inputs", help="a JSON-lines file: {'text': ..., 'text_pair': ...} or explicit input_ids/attention_mask/token_type_ids")
    t.add_argument("--task", default="base", help=f"which head: {', '.join(TASKS)} (default base)")
    t.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    t.add_argument("--backend", default="numpy", choices=["numpy", "cupy"])
    t.add_argument("--kernels", default="fast", choices=["fast", "reference"])
    t.add_argument("--batch", type=int, default=1, help="samples per forward (default 1: each alone, no padding)")
    t.add_argument("--include", help="keep only intermediates matching this glob")
    t.add_argument("--with-oracle", action="store_true", help="also trace refimpl in float64 (under oracle.*)")
    t.add_argument("--generate", type=int, metavar="MAX_NEW_TOKENS",
                   help="trace generate() instead of one forward: every decoder step and the search's choices")
    t.add_argument("--num-beams", type=int, default=1, help="with --generate: beam search with this many beams")
    t.add_argument("--format", choices=["safetensors", "npz"], help="default: by --out's suffix, else safetensors")
    t.add_argument("--progress", action="store_true", help="show progress even when stderr is not a terminal")
    t.add_argument("--out", required=True, help="the trace file to write")
    c = sub.add_parser("compare", help="compare a candidate's tensors with a reference trace, first divergence first")
    c.add_argument("reference", help="a trace from `refimpl trace`")
    c.add_argument("candidate", help="another trace, or a safetensors / npz file of the candidate's tensors")
    c.add_argument("--map", help="JSON: candidate name (or glob with *) -> refimpl name ({1}, {2} for the globs)")
    c.add_argument("--atol", type=float, help="absolute tolerance for every tensor (default: the policy by kind)")
    c.add_argument("--rtol", type=float, help="relative tolerance for every tensor")
    c.add_argument("--tol", action="append", help="GLOB=ATOL,RTOL for the names matching GLOB (repeatable)")
    c.add_argument("--oracle", action="store_true", help="judge against float32 rounding of the reference's float64 oracle")
    c.add_argument("--strict-names", action="store_true", help="names on one side only are failures")
    c.add_argument("--all", action="store_true", help="print every tensor, not only the summary")
    c.add_argument("--json", help="write the full report as JSON to this file ('-': stdout)")
    k = sub.add_parser("compare-corpus", help="compare a candidate with refimpl over a corpus, batches on Dask")
    k.add_argument("model", help="the reference model: a checkpoint directory or a registered name")
    k.add_argument("candidate", help="refimpl:fast, refimpl:reference, or module:function (see refimpl/corpus.py)")
    k.add_argument("--inputs", required=True, help="the corpus, JSON lines as for trace --inputs")
    k.add_argument("--out", required=True, help="the run's directory (batch results, summary, worst traces); "
                                                "run again with the same --out to resume")
    k.add_argument("--task", default="base")
    k.add_argument("--batch", type=int, default=16, help="inputs per task and forward (default 16)")
    k.add_argument("--workers", type=int, default=None, help="local worker processes (default: the cores)")
    k.add_argument("--scheduler", help="a Dask scheduler's address (tcp://host:8786) instead of local processes")
    k.add_argument("--map", help="JSON name map for the candidate's tensors, as for compare")
    k.add_argument("--oracle", action="store_true", help="judge each input against float32 rounding (float64 oracle)")
    return ap


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        return {"trace": cmd_trace, "compare": cmd_compare, "compare-corpus": cmd_compare_corpus}[args.command](args)
    except RefimplError as e:
        print(f"refimpl {args.command}: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (`refimpl compare ... | head`): stop quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        return 1
