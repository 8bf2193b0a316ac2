"""Versioned model store on disk: ``model_dir / model_id / vNNNN / {model.joblib, metadata.json}``.

A version directory is claimed atomically (``mkdir``), so two trainers never share or overwrite
one; ``metadata.json`` is written last (temp file + rename), so a version without it is
incomplete and never loaded.

>>> import tempfile
>>> from pathlib import Path
>>> d = Path(tempfile.mkdtemp())
>>> load_latest(d, "PMP-200") is None
True
>>> list_versions(d, "PMP-200")
[]
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import joblib

from detection.prediction.predictor import AssetPredictor

MODEL_FILE = "model.joblib"
META_FILE = "metadata.json"
_VERSION = re.compile(r"^v(\d{4,})$")
_MODEL_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def _model_path(model_dir: Path | str, model_id: str) -> Path:
    if not _MODEL_ID.match(model_id or "") or model_id in (".", ".."):
        raise ValueError(f"not a valid product model id for a folder name: {model_id!r}")
    return Path(model_dir) / model_id


def list_versions(model_dir: Path | str, model_id: str) -> list[str]:
    """Complete versions (with metadata), oldest first."""
    root = _model_path(model_dir, model_id)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p.name) for p in root.iterdir()
             if (m := _VERSION.match(p.name)) and (p / META_FILE).is_file()]
    return [name for _, name in sorted(found)]


def _next_number(root: Path) -> int:
    taken = [int(m.group(1)) for p in root.iterdir() if (m := _VERSION.match(p.name))]
    return max(taken, default=0) + 1


def save(model_dir: Path | str, predictor: AssetPredictor, metadata: dict) -> Path:
    """Store ``predictor`` as the next version of its product model; returns the version folder.

    Never overwrites: the folder is claimed with an exclusive ``mkdir``."""
    root = _model_path(model_dir, predictor.model_id)
    root.mkdir(parents=True, exist_ok=True)
    for _ in range(100):
        version = f"v{_next_number(root):04d}"
        path = root / version
        try:
            path.mkdir()
            break
        except FileExistsError:
            continue  # another trainer claimed it first: take the next one
    else:
        raise RuntimeError(f"could not claim a new version folder under {root}")
    predictor.version = version
    meta = {**metadata, "model_id": predictor.model_id, "version": version}
    predictor.metadata = meta
    joblib.dump(predictor, path / MODEL_FILE, compress=3)
    tmp = path / (META_FILE + ".tmp")
    tmp.write_text(json.dumps(meta, indent=2, default=str))
    os.replace(tmp, path / META_FILE)
    return path


def load(model_dir: Path | str, model_id: str, version: str) -> AssetPredictor:
    """Load one version; raises ``FileNotFoundError`` if it is missing or incomplete."""
    path = _model_path(model_dir, model_id) / version
    if not _VERSION.match(version) or not (path / META_FILE).is_file():
        raise FileNotFoundError(f"no complete model version {version!r} for {model_id!r} in {path.parent}")
    pred = joblib.load(path / MODEL_FILE)
    if not isinstance(pred, AssetPredictor):
        raise TypeError(f"{path / MODEL_FILE} does not hold an AssetPredictor")
    pred.version = version
    pred.metadata = json.loads((path / META_FILE).read_text())
    return pred


def load_latest(model_dir: Path | str, model_id: str) -> AssetPredictor | None:
    """The newest complete version of ``model_id``'s predictor, or None if none was trained."""
    versions = list_versions(model_dir, model_id)
    return load(model_dir, model_id, versions[-1]) if versions else None
