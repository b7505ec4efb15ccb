"""Datasets: feature rows joined to their labels, exported deterministically.

:func:`build_dataset` runs the leakage check first (a leaky feature set never becomes
a dataset), then keeps the rows where every feature and the label are known.  The
export is NDJSON, one row a line with sorted keys and floats written by ``repr`` (so
the same inputs give the same bytes on every machine), beside ``manifest.json``: the
features with versions, the label and its horizon, the source data's sha256, the data
file's sha256 and the dataset hash.  :func:`read_dataset` refuses a file whose hash
does not match its manifest.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from argus_core import DataError
from argus_ml.bars import BarColumns
from argus_ml.features import FeatureSet
from argus_ml.labels import LabelSpec, horizon_rows, make_labels
from argus_ml.leakage import check_leakage

FORMAT = "argus-ml-dataset/1"
DATA_FILE = "data.ndjson"
MANIFEST_FILE = "manifest.json"


def _eq(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.array_equal(a, b, equal_nan=True))


_arr: Any = attrs.field(eq=attrs.cmp_using(eq=_eq))


@attrs.frozen
class Dataset:
    """Training rows in time order: features ``X`` (rows x features, named by ``keys``),
    label ``y``, the forward log return, decision and label-known times."""

    keys: tuple[str, ...]
    label: LabelSpec
    ts_ns: np.ndarray = _arr
    X: np.ndarray = _arr
    y: np.ndarray = _arr
    forward_return: np.ndarray = _arr
    label_end_ts_ns: np.ndarray = _arr
    feature_spec: tuple[dict[str, Any], ...] = ()
    source_sha256: str = ""

    def __len__(self) -> int:
        return int(self.ts_ns.size)

    @property
    def purge_rows(self) -> int:
        """How far (in rows) a label window reaches ahead: the splitter's label horizon."""
        return horizon_rows(self.ts_ns, self.label_end_ts_ns)

    def slice(self, idx: np.ndarray) -> Dataset:
        """The rows at ``idx`` (sorted)."""
        return attrs.evolve(self, ts_ns=self.ts_ns[idx], X=self.X[idx], y=self.y[idx],
                            forward_return=self.forward_return[idx],
                            label_end_ts_ns=self.label_end_ts_ns[idx])

    def content_hash(self) -> str:
        """sha256 of the NDJSON export (what the manifest calls ``dataset_hash``)."""
        return hashlib.sha256(to_ndjson(self)).hexdigest()


def build_dataset(bars: BarColumns, features: FeatureSet, label: LabelSpec, *,
                  leakage_samples: int = 32) -> Dataset:
    """Features and labels of ``bars``; ``DataError`` if the leakage check finds a leak."""
    matrix = features.batch(bars)
    check_leakage(features, bars, samples=leakage_samples, matrix=matrix).raise_if_leaky()
    labels = make_labels(bars, label)
    keep = ~np.isnan(matrix.values).any(axis=1) & ~np.isnan(labels.values)
    if not keep.any():
        raise DataError(f"no rows have every feature and a label ({len(bars)} bars, "
                        f"warm-up {features.warmup}, horizon {label.horizon_bars})")
    return Dataset(features.keys, label, matrix.ts_ns[keep], matrix.values[keep],
                   labels.values[keep], labels.forward_return[keep],
                   labels.end_ts_ns[keep], tuple(features.spec()), bars.source_sha256)


def to_ndjson(ds: Dataset) -> bytes:
    """The rows as canonical NDJSON bytes."""
    lines = []
    for i in range(len(ds)):
        row = {"ts_ns": int(ds.ts_ns[i]), "label_end_ts_ns": int(ds.label_end_ts_ns[i]),
               "y": float(ds.y[i]), "forward_return": float(ds.forward_return[i]),
               "x": [float(v) for v in ds.X[i]]}
        lines.append(json.dumps(row, sort_keys=True, separators=(",", ":")))
    return ("\n".join(lines) + "\n").encode()


def manifest(ds: Dataset, data_sha256: str) -> dict[str, Any]:
    """The manifest describing an export."""
    return {"format": FORMAT, "rows": len(ds), "features": list(ds.keys),
            "feature_spec": list(ds.feature_spec),
            "label": {"kind": ds.label.kind, "horizon_bars": ds.label.horizon_bars,
                      "purge_rows": ds.purge_rows},
            "source_sha256": ds.source_sha256,
            "first_ts_ns": int(ds.ts_ns[0]), "last_ts_ns": int(ds.ts_ns[-1]),
            "files": {DATA_FILE: data_sha256}, "dataset_hash": data_sha256}


def export_dataset(ds: Dataset, out_dir: Path) -> dict[str, Any]:
    """Write ``data.ndjson`` and ``manifest.json`` under ``out_dir``; returns the manifest."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = to_ndjson(ds)
    digest = hashlib.sha256(data).hexdigest()
    (out_dir / DATA_FILE).write_bytes(data)
    man = manifest(ds, digest)
    (out_dir / MANIFEST_FILE).write_text(json.dumps(man, sort_keys=True, indent=1) + "\n")
    return man


def read_dataset(out_dir: Path) -> Dataset:
    """Load an export, verifying the data file against the manifest's hash."""
    out_dir = Path(out_dir)
    try:
        man = json.loads((out_dir / MANIFEST_FILE).read_text())
        data = (out_dir / DATA_FILE).read_bytes()
    except (OSError, ValueError) as exc:
        raise DataError(f"{out_dir}: not a readable dataset export: {exc}") from None
    if man.get("format") != FORMAT:
        raise DataError(f"{out_dir}: manifest format {man.get('format')!r} is not {FORMAT}")
    if hashlib.sha256(data).hexdigest() != man["files"][DATA_FILE]:
        raise DataError(f"{out_dir / DATA_FILE}: sha256 differs from the manifest's")
    rows = [json.loads(line) for line in data.decode().splitlines() if line]
    return Dataset(tuple(man["features"]), LabelSpec(man["label"]["kind"],
                                                     man["label"]["horizon_bars"]),
                   np.array([r["ts_ns"] for r in rows], dtype=np.int64),
                   np.array([r["x"] for r in rows], dtype=np.float64).reshape(len(rows), -1),
                   np.array([r["y"] for r in rows]),
                   np.array([r["forward_return"] for r in rows]),
                   np.array([r["label_end_ts_ns"] for r in rows], dtype=np.int64),
                   tuple(man.get("feature_spec", ())), man.get("source_sha256", ""))
