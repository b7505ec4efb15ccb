"""Datasets: feature rows joined to their labels, exported deterministically.

:func:`build_dataset` runs the leakage check first (a leaky feature set never becomes
a dataset), then keeps the rows where every feature and the label are known.  The
export is NDJSON, one row a line with sorted keys and floats written by ``repr`` (so
the same inputs give the same bytes on every machine), beside ``manifest.json``: the
features with versions, the label and its horizon, the source data's sha256, the data
file's sha256 and the dataset hash.  :func:`read_dataset` refuses a file whose hash
does not match its manifest.

Parquet (``export_dataset(..., fmt="parquet")``, pyarrow): the same rows as columns
``ts_ns, label_end_ts_ns, y, forward_return`` and one float64 column per feature (named
by its ``name@version`` key), uncompressed, no dictionary encoding, one row group.  Its
bytes are the same for the same inputs *with the same pyarrow version* (the file records
the writer's version), so the manifest's ``dataset_hash`` is a content hash over the
canonical columns instead: the sha256 of the canonical NDJSON of the same rows, equal
for both formats and across library versions.  ``files`` holds the Parquet file's own
sha256, checked on reading like the NDJSON's, and reading also recomputes the content
hash and refuses a mismatch.
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
PARQUET_FILE = "data.parquet"
FIXED_COLUMNS = ("ts_ns", "label_end_ts_ns", "y", "forward_return")
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

    def __attrs_post_init__(self) -> None:
        _check_rows(self)

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


#: 1973-03-03 in nanoseconds: an earlier decision time is seconds or milliseconds.
NS_1973 = 10**17


def _first_bad(bad: np.ndarray, what: str) -> None:
    if bad.any():
        raise DataError(f"dataset row {int(np.argmax(bad))}: {what}")


def _check_rows(ds: Dataset) -> None:
    """Refuse rows that would train wrong (a wrong purge, a training end in another clock,
    scikit-learn's ValueError), naming the first bad row: shapes, times in strictly
    increasing nanoseconds, labels known after their decision, finite features, binary
    ``up`` labels."""
    n = ds.ts_ns.size
    if ds.ts_ns.shape != (n,) or ds.X.shape != (n, len(ds.keys)) or any(
            a.shape != (n,) for a in (ds.y, ds.forward_return, ds.label_end_ts_ns)):
        raise DataError(f"dataset: {n} rows of {len(ds.keys)} features, but X has shape "
                        f"{ds.X.shape}, y {ds.y.shape}, label ends {ds.label_end_ts_ns.shape}")
    if n == 0:
        return
    _first_bad(np.r_[False, np.diff(ds.ts_ns) <= 0],
               "decision time is not after the row before (duplicated or out of order)")
    _first_bad(ds.ts_ns < NS_1973, "decision time before 1973 in nanoseconds (times in "
               "seconds or milliseconds?)")
    _first_bad(ds.label_end_ts_ns <= ds.ts_ns,
               "the label became known at or before its decision time, not after it")
    _first_bad(~np.isfinite(ds.X).all(axis=1), f"a feature of {ds.keys} is not finite")
    if ds.label.kind == "up":
        _first_bad(~np.isin(ds.y, (0.0, 1.0)), f"label {ds.label.key} is not 0 or 1")
    else:
        _first_bad(~np.isfinite(ds.y), f"label {ds.label.key} is not finite")


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


def manifest(ds: Dataset, data_sha256: str, data_file: str = DATA_FILE) -> dict[str, Any]:
    """The manifest describing an export (``dataset_hash``: :meth:`Dataset.content_hash`)."""
    return {"format": FORMAT, "rows": len(ds), "features": list(ds.keys),
            "feature_spec": list(ds.feature_spec),
            "label": {"kind": ds.label.kind, "horizon_bars": ds.label.horizon_bars,
                      "purge_rows": ds.purge_rows},
            "source_sha256": ds.source_sha256,
            "first_ts_ns": int(ds.ts_ns[0]), "last_ts_ns": int(ds.ts_ns[-1]),
            "files": {data_file: data_sha256}, "dataset_hash": ds.content_hash()}


def to_parquet(ds: Dataset) -> bytes:
    """The rows as Parquet bytes (module docstring: the layout and what is deterministic)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = {"ts_ns": pa.array(ds.ts_ns, pa.int64()),
               "label_end_ts_ns": pa.array(ds.label_end_ts_ns, pa.int64()),
               "y": pa.array(ds.y, pa.float64()),
               "forward_return": pa.array(ds.forward_return, pa.float64())}
    for j, key in enumerate(ds.keys):
        columns[key] = pa.array(np.ascontiguousarray(ds.X[:, j]), pa.float64())
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table(columns), sink, compression="none", use_dictionary=False,
                   row_group_size=max(len(ds), 1), write_statistics=False)
    return bytes(sink.getvalue().to_pybytes())


def _from_parquet(data: bytes, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(pa.BufferReader(data))
    missing = [c for c in (*FIXED_COLUMNS, *keys) if c not in table.column_names]
    if missing:
        raise DataError(f"{PARQUET_FILE}: columns {missing} missing")
    return {c: table.column(c).to_numpy() for c in (*FIXED_COLUMNS, *keys)}


def export_dataset(ds: Dataset, out_dir: Path, *, fmt: str = "ndjson") -> dict[str, Any]:
    """Write the data file (``data.ndjson``, or ``data.parquet`` for ``fmt="parquet"``) and
    ``manifest.json`` under ``out_dir``; returns the manifest."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if fmt not in ("ndjson", "parquet"):
        raise DataError(f"dataset format {fmt!r}: use ndjson or parquet")
    data = to_ndjson(ds) if fmt == "ndjson" else to_parquet(ds)
    name = DATA_FILE if fmt == "ndjson" else PARQUET_FILE
    digest = hashlib.sha256(data).hexdigest()
    (out_dir / name).write_bytes(data)
    man = manifest(ds, digest, name)
    (out_dir / MANIFEST_FILE).write_text(json.dumps(man, sort_keys=True, indent=1) + "\n")
    return man


def read_dataset(out_dir: Path) -> Dataset:
    """Load an export, verifying the data file against the manifest's hash; a manifest
    or row of the wrong shape (a key missing, a list for an object) is a ``DataError``
    naming the folder (it was a KeyError or AttributeError)."""
    try:
        return _read_dataset(Path(out_dir))
    except (KeyError, TypeError, AttributeError, IndexError) as exc:
        raise DataError(f"{out_dir}: not a dataset export this version reads: "
                        f"{type(exc).__name__}: {exc!s:.120}") from None
    except ValueError as exc:  # a row that is not JSON, or not numbers
        raise DataError(f"{out_dir}: a malformed row: {exc!s:.160}") from None


def _read_dataset(out_dir: Path) -> Dataset:
    try:
        man = json.loads((out_dir / MANIFEST_FILE).read_text())
        name = PARQUET_FILE if PARQUET_FILE in man.get("files", {}) else DATA_FILE
        data = (out_dir / name).read_bytes()
    except (OSError, ValueError) as exc:
        raise DataError(f"{out_dir}: not a readable dataset export: {exc}") from None
    if man.get("format") != FORMAT:
        raise DataError(f"{out_dir}: manifest format {man.get('format')!r} is not {FORMAT}")
    if hashlib.sha256(data).hexdigest() != man["files"][name]:
        raise DataError(f"{out_dir / name}: sha256 differs from the manifest's")
    if name == PARQUET_FILE:
        ds = _parquet_dataset(man, _from_parquet(data, tuple(man["features"])))
        if ds.content_hash() != man["dataset_hash"]:
            raise DataError(f"{out_dir / name}: content hash differs from the manifest's "
                            "dataset_hash")
        return ds
    rows = [json.loads(line) for line in data.decode().splitlines() if line]
    return Dataset(tuple(man["features"]), LabelSpec(man["label"]["kind"],
                                                     man["label"]["horizon_bars"]),
                   np.array([r["ts_ns"] for r in rows], dtype=np.int64),
                   np.array([r["x"] for r in rows], dtype=np.float64).reshape(len(rows), -1),
                   np.array([r["y"] for r in rows]),
                   np.array([r["forward_return"] for r in rows]),
                   np.array([r["label_end_ts_ns"] for r in rows], dtype=np.int64),
                   tuple(man.get("feature_spec", ())), man.get("source_sha256", ""))


def _parquet_dataset(man: dict[str, Any], cols: dict[str, np.ndarray]) -> Dataset:
    keys = tuple(man["features"])
    n = int(cols["ts_ns"].size)
    x = np.column_stack([cols[k] for k in keys]) if keys else np.empty((n, 0))
    return Dataset(keys, LabelSpec(man["label"]["kind"], man["label"]["horizon_bars"]),
                   cols["ts_ns"].astype(np.int64), x.astype(np.float64),
                   cols["y"].astype(np.float64), cols["forward_return"].astype(np.float64),
                   cols["label_end_ts_ns"].astype(np.int64),
                   tuple(man.get("feature_spec", ())), man.get("source_sha256", ""))
