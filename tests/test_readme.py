"""The README's Python blocks run as written, in order, in one namespace (as a reader pasting them would),
in a scratch directory. A block that stops working fails here with the block's first line."""

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_readme_python_blocks_run(tmp_path, monkeypatch, minilm_dir):
    blocks = python_blocks()
    assert len(blocks) >= 4
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__readme__"}
    for block in blocks:
        try:
            exec(compile(block, f"README.md block starting {block.splitlines()[0]!r}", "exec"), namespace)
        except Exception as e:  # noqa: BLE001 - report which block broke
            raise AssertionError(f"README block failed ({type(e).__name__}: {e}):\n{block}") from e
    assert (tmp_path / "tiny-mlm" / "model.safetensors").is_file()
