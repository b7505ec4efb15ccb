"""The safe model format: a fitted pipeline as plain JSON numbers, evaluated by numpy.

A model file never holds code or pickled objects: loading it is ``json.loads`` plus
validation of every field (known step kinds only, array shapes and finiteness), and
predicting is a few lines of numpy below.  So a model file from an untrusted place can
at worst be *wrong*, never run anything.  (skops would be the other safe choice; it is
not a dependency of this plugin.)  ``tests/test_ml_training.py`` checks that a saved
and reloaded model gives scikit-learn's own probabilities to 1e-12.

Steps supported: ``standardize`` (StandardScaler), ``logistic`` (LogisticRegression,
binary), ``gbm`` (GradientBoostingClassifier, binary, log loss: prior log-odds plus
``learning_rate`` times the sum of regression-tree leaves; tree splits compare the
feature as float32, as scikit-learn does), then the :class:`Calibrator`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from argus_core import DataError, loads_frame
from argus_ml.calibration import Calibrator

FORMAT = "argus-ml-model/1"
MAX_NODES = 1_000_000  # refuse absurd files before allocating for them
#: The largest model document read (a file or a registry row): far above any model this
#: plugin trains (a 100-tree gbm is ~100 kB), far below what would exhaust memory.
MAX_MODEL_BYTES = 64 * 2**20


def _vec(d: dict[str, Any], key: str, n: int | None = None, dtype: Any = np.float64
         ) -> np.ndarray:
    try:
        arr = np.asarray(d[key], dtype=dtype)
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        # OverflowError: a JSON integer past float64 or int64 (``1`` and 400 zeros) escaped
        # as itself, a traceback instead of the file's refusal
        raise DataError(f"model file: field {key!r} is missing or not numeric ({exc})") from None
    if arr.ndim != 1 or (n is not None and arr.size != n) or arr.size > MAX_NODES:
        raise DataError(f"model file: field {key!r} has the wrong shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise DataError(f"model file: field {key!r} holds NaN or infinity")
    return arr


def _number(d: dict[str, Any], key: str) -> float:
    """One finite number ``d[key]`` (the error names the field)."""
    return float(_vec({key: [d.get(key)]}, key)[0])


def export_steps(pipeline: Any) -> list[dict[str, Any]]:
    """The steps of a fitted scikit-learn pipeline (or bare estimator) as JSON-able dicts."""
    from sklearn.ensemble import GradientBoostingClassifier  # type: ignore[import-untyped]
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
    from sklearn.preprocessing import StandardScaler  # type: ignore[import-untyped]

    estimators = [s for _, s in pipeline.steps] if hasattr(pipeline, "steps") else [pipeline]
    out: list[dict[str, Any]] = []
    for est in estimators:
        if isinstance(est, StandardScaler):
            out.append({"kind": "standardize", "mean": est.mean_.tolist(),
                        "scale": est.scale_.tolist()})
        elif isinstance(est, LogisticRegression):
            out.append({"kind": "logistic", "coef": est.coef_[0].tolist(),
                        "intercept": float(est.intercept_[0])})
        elif isinstance(est, GradientBoostingClassifier):
            prior = float(est.init_.class_prior_[1])
            trees = []
            for (tree,) in est.estimators_:
                t = tree.tree_
                trees.append({"left": t.children_left.tolist(),
                              "right": t.children_right.tolist(),
                              "feature": t.feature.tolist(), "threshold": t.threshold.tolist(),
                              "value": t.value[:, 0, 0].tolist()})
            out.append({"kind": "gbm", "init": float(np.log(prior / (1 - prior))),
                        "learning_rate": float(est.learning_rate), "trees": trees})
        else:
            raise DataError(f"cannot export a {type(est).__name__}: only StandardScaler, "
                            "LogisticRegression and GradientBoostingClassifier")
    return out


def _sigmoid(z: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-z))`` without overflow: large ``|z|`` gives exactly 0 or 1 (the naive
    form warned on every row, and raised under ``-W error``)."""
    with np.errstate(invalid="ignore"):  # NaN in, NaN out: the forecaster refuses it
        return np.asarray(np.exp(-np.logaddexp(0.0, -z)), dtype=np.float64)


def _tree_sum(X32: np.ndarray, tree: dict[str, np.ndarray]) -> np.ndarray:
    node = np.zeros(X32.shape[0], dtype=np.int64)
    left, right, feat, thr = tree["left"], tree["right"], tree["feature"], tree["threshold"]
    # validated children come after their parent, so a walk ends within len(left) steps
    # (a fixed bound of 64 returned an inner node's value for a deeper, legal tree)
    for _ in range(left.size):
        inner = left[node] >= 0
        if not inner.any():
            break
        rows = np.flatnonzero(inner)
        n = node[rows]
        go_left = X32[rows, feat[n]] <= thr[n]
        node[rows] = np.where(go_left, left[n], right[n])
    return tree["value"][node]


class ProbabilityModel:
    """A loaded model: raw P(up) from its steps, then calibration.  Built only from
    validated JSON (:meth:`from_dict`)."""

    def __init__(self, steps: list[dict[str, Any]], calibrator: Calibrator,
                 features: tuple[str, ...], meta: dict[str, Any]) -> None:
        self.steps = steps
        self.calibrator = calibrator
        self.features = features
        self.meta = meta

    def raw(self, X: np.ndarray) -> np.ndarray:
        """Uncalibrated probabilities for rows ``X`` (columns in ``features`` order)."""
        z = np.asarray(X, dtype=np.float64)
        if z.ndim != 2 or z.shape[1] != len(self.features):
            raise DataError(f"model expects {len(self.features)} features, got shape {z.shape}")
        for step in self.steps:
            if step["kind"] == "standardize":
                z = (z - step["mean"]) / step["scale"]
            elif step["kind"] == "logistic":
                return _sigmoid(z @ step["coef"] + step["intercept"])
            else:  # gbm
                X32 = z.astype(np.float32).astype(np.float64)
                raw = np.full(z.shape[0], step["init"])
                for tree in step["trees"]:
                    raw += step["learning_rate"] * _tree_sum(X32, tree)
                return _sigmoid(raw)
        raise DataError("model has no classifier step")

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Calibrated P(up) for rows ``X``."""
        return self.calibrator(self.raw(X))

    def to_dict(self) -> dict[str, Any]:
        """The JSON document (what :func:`save_model` writes)."""
        return {"format": FORMAT, "features": list(self.features),
                "steps": [_jsonable(s) for s in self.steps],
                "calibrator": self.calibrator.to_dict(), "meta": self.meta}

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> ProbabilityModel:
        """Validate a model document and build the model; ``DataError`` on anything odd."""
        if not isinstance(doc, dict):
            raise DataError(f"not an {FORMAT} document")
        if doc.get("format") != FORMAT:
            raise DataError(f"model file format {doc.get('format')!r} is not {FORMAT} "
                            "(another version's file, or not a model): retrain it with "
                            "`argus ml train`")
        features = _features(doc.get("features"))
        steps: list[dict[str, Any]] = []
        width = len(features)
        raw_steps = doc.get("steps", ())
        if not isinstance(raw_steps, list):
            raise DataError(f"model file: 'steps' must be a list, got {type(raw_steps).__name__}")
        for i, s in enumerate(raw_steps):
            kind = s.get("kind") if isinstance(s, dict) else None
            last = i == len(raw_steps) - 1
            if kind == "standardize" and not last:
                steps.append({"kind": kind, "mean": _vec(s, "mean", width),
                              "scale": _vec(s, "scale", width)})
                if np.any(steps[-1]["scale"] <= 0):
                    raise DataError("model file: standardize scale must be > 0")
            elif kind == "logistic" and last:
                steps.append({"kind": kind, "coef": _vec(s, "coef", width),
                              "intercept": _number(s, "intercept")})
            elif kind == "gbm" and last:
                steps.append(_gbm_step(s, width))
            else:
                raise DataError(f"model file: step {i} kind {kind!r} is not allowed there")
        if not steps or steps[-1]["kind"] not in ("logistic", "gbm"):
            raise DataError("model file: the last step must be a classifier")
        calibrator = doc.get("calibrator", {"kind": "none"})
        if not isinstance(calibrator, dict):
            raise DataError(f"model file: 'calibrator' must be an object, got "
                            f"{type(calibrator).__name__}")
        return cls(steps, Calibrator.from_dict(calibrator), features,
                   _meta(doc.get("meta", {}), features))


def _features(raw: Any) -> tuple[str, ...]:
    """The ``features`` field: a non-empty list of ``name@version`` strings (a bare string
    was read as one feature per letter)."""
    if not isinstance(raw, list) or not raw or not all(isinstance(f, str) for f in raw):
        raise DataError(f"model file: 'features' must be a non-empty list of name@version "
                        f"strings, got {raw!r:.80}")
    return tuple(raw)


#: ``meta["trained_on"]``: the training rows' first and last decision times and the time
#: the last of their labels became known (forecasts before it are in sample).
TRAINED_ON_KEYS = ("first_ts_ns", "last_ts_ns", "label_end_ts_ns")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _meta(raw: Any, features: tuple[str, ...]) -> dict[str, Any]:
    """Validate the parts of ``meta`` inference reads: the label (an up/down label over
    ``horizon_bars`` >= 1 bars), the training period (integers, nanoseconds, in order) and
    the trained feature order (``feature_spec``, when recorded)."""
    if not isinstance(raw, dict):
        raise DataError(f"model file: 'meta' must be an object, got {type(raw).__name__}")
    label = raw.get("label", {})
    if not isinstance(label, dict):
        raise DataError(f"model file: meta 'label' must be an object, got {label!r:.80}")
    horizon = label.get("horizon_bars", 1)
    if not _is_int(horizon) or horizon < 1:
        raise DataError(f"model file: meta label 'horizon_bars' must be an integer >= 1, "
                        f"got {horizon!r:.80}")
    if label.get("kind", "up") != "up":
        raise DataError(f"model file: meta label 'kind' {label.get('kind')!r:.80} is not "
                        "'up' (the forecaster gives P(up))")
    trained = raw.get("trained_on")
    if trained is not None and not (isinstance(trained, dict) and all(
            _is_int(trained.get(k)) for k in TRAINED_ON_KEYS)):
        raise DataError(f"model file: meta 'trained_on' must hold integer {TRAINED_ON_KEYS} "
                        f"(ns), got {trained!r:.120}")
    if trained is not None:
        _check_trained_order(trained)
    _check_feature_order(raw.get("feature_spec"), features)
    _check_drift_fields(raw, features)
    return dict(raw)


def _check_drift_fields(raw: dict[str, Any], features: tuple[str, ...]) -> None:
    """``oof_brier`` (the Brier alarm's baseline) a probability score in [0, 1], and
    ``reference`` (each feature's training deciles, the PSI alarm's baseline) bins the
    PSI can be computed on, when present.  Unchecked, ``"oof_brier": "x"`` was a
    ValueError when the forecaster loaded, 5 (or NaN) switched the Brier alarm off, and a
    reference of the wrong shape was a TypeError 500 bars into the run (NaN shares: PSI
    NaN, never above a threshold: the PSI alarm off)."""
    if "oof_brier" in raw:
        b = raw["oof_brier"]
        if isinstance(b, bool) or not isinstance(b, int | float) or not 0.0 <= b <= 1.0:
            raise DataError(f"model file: meta 'oof_brier' must be a Brier score in [0, 1], "
                            f"got {b!r:.80}")
    ref = raw.get("reference")
    if ref is None:
        return
    if not isinstance(ref, dict):
        raise DataError(f"model file: meta 'reference' must be an object of feature -> "
                        f"bins, got {type(ref).__name__}")
    for key, bins in ref.items():
        if key not in features:
            raise DataError(f"model file: meta 'reference' names {key!r:.80}, not one of the "
                            f"model's features {list(features)}")
        if not isinstance(bins, dict):
            raise DataError(f"model file: meta reference {key!r}: must be an object with "
                            "'edges' and 'props'")
        try:
            edges = _vec(bins, "edges")
            props = _vec(bins, "props", edges.size + 1)
        except DataError as exc:
            raise DataError(f"model file: meta reference {key!r}: {exc}") from None
        if np.any(np.diff(edges) < 0) or np.any(props < 0) or np.any(props > 1):
            raise DataError(f"model file: meta reference {key!r}: edges must be sorted and "
                            "props shares in [0, 1]")


def _check_trained_order(trained: dict[str, Any]) -> None:
    """``first <= last < label_end``: training writes nothing else.  A label end at or
    before the last training row (an edit, a mix-up of fields) made the forecaster answer
    on bars the model was fitted on, as if they were out of sample."""
    first, last, end = (trained[k] for k in TRAINED_ON_KEYS)
    if not first <= last < end:
        raise DataError(f"model file: meta 'trained_on' must have first_ts_ns <= last_ts_ns "
                        f"< label_end_ts_ns (a label becomes known after its row), got "
                        f"{first}, {last}, {end}")


def _check_feature_order(spec: Any, features: tuple[str, ...]) -> None:
    """``features`` in the order of ``meta.feature_spec`` (what the model was trained on),
    when the file records it: a swapped ``features`` list fed each coefficient the other
    feature's column, silently."""
    if spec is None:
        return
    try:
        keys = tuple(f"{s['name']}@{s['version']}" for s in spec)
    except (TypeError, KeyError) as exc:
        raise DataError(f"model file: meta 'feature_spec' must list objects with name and "
                        f"version ({type(exc).__name__}: {exc!s:.80})") from None
    if keys != features:
        raise DataError(f"model file: 'features' {list(features)} differ from the features it "
                        f"was trained on, in order (meta feature_spec: {list(keys)})")


def _gbm_step(s: dict[str, Any], width: int) -> dict[str, Any]:
    trees = []
    raw_trees = s.get("trees", ())
    if not isinstance(raw_trees, list) or not all(isinstance(t, dict) for t in raw_trees):
        raise DataError("model file: gbm 'trees' must be a list of objects")
    for t in raw_trees:
        left = _vec(t, "left", dtype=np.int64)
        n = left.size
        tree = {"left": left, "right": _vec(t, "right", n, np.int64),
                "feature": _vec(t, "feature", n, np.int64),
                "threshold": _vec(t, "threshold", n), "value": _vec(t, "value", n)}
        inner = tree["left"] >= 0
        parent = np.arange(n)[inner]
        for key in ("left", "right"):
            # children come after their parent (as scikit-learn numbers them): no cycles
            if np.any(tree[key][inner] >= n) or np.any(tree[key][inner] <= parent):
                raise DataError("model file: a tree child index is out of range (each "
                                "child must come after its parent node)")
        if np.any(tree["right"][inner] < 0) or np.any(tree["feature"][inner] < 0) or \
                np.any(tree["feature"][inner] >= width):
            raise DataError("model file: a tree split is malformed")
        trees.append(tree)
    if not trees:
        raise DataError("model file: gbm has no trees")
    return {"kind": "gbm", "init": _number(s, "init"),
            "learning_rate": _number(s, "learning_rate"),
            "trees": trees}


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_jsonable(v) for v in obj]
    return obj


def model_bytes(model: ProbabilityModel) -> bytes:
    """Canonical JSON bytes of a model (sorted keys): what is stored and hashed."""
    return json.dumps(model.to_dict(), sort_keys=True, separators=(",", ":")).encode()


def model_sha256(model: ProbabilityModel) -> str:
    """sha256 of :func:`model_bytes`."""
    return hashlib.sha256(model_bytes(model)).hexdigest()


def save_model(model: ProbabilityModel, path: Path) -> str:
    """Write the model to ``path``; returns its sha256."""
    data = model_bytes(model)
    Path(path).write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def check_model_size(size: int, where: str) -> None:
    """Refuse a model document of ``size`` bytes above :data:`MAX_MODEL_BYTES` (before it
    is read: a huge or hostile file must not exhaust memory or time)."""
    if size > MAX_MODEL_BYTES:
        raise DataError(f"{where}: {size} bytes, more than the {MAX_MODEL_BYTES} bytes a "
                        "model file may have (not a model this plugin wrote)")


def _read_capped(path: Path) -> bytes:
    """A model file's bytes, refused above the cap before it is read; never more than its
    stated size plus one byte (a file that grows, or a device, cannot make it read more)."""
    try:
        size = path.stat().st_size
        check_model_size(size, str(path))
        with path.open("rb") as fh:
            return fh.read(size + 1)
    except OSError as exc:
        raise DataError(f"{path}: cannot read the model file: {exc.strerror}") from None


def load_model(source: Path | bytes, expected_sha256: str | None = None) -> ProbabilityModel:
    """Load a model file (or its bytes) safely, checking its hash when one is given.  Only
    ``json.loads``, never unpickling: a pickle (or any non-JSON file) is a ``DataError``."""
    where = "model bytes" if isinstance(source, bytes) else str(source)
    data = source if isinstance(source, bytes) else _read_capped(Path(source))
    check_model_size(len(data), where)
    if expected_sha256 is not None and hashlib.sha256(data).hexdigest() != expected_sha256:
        raise DataError(f"{where}: model file's sha256 differs from the registry's")
    try:
        # loads_frame refuses nesting past 200 levels before parsing: json.loads of 100,000
        # nested lists crashed the process (a C stack overflow where a test had raised the
        # recursion limit; a RecursionError otherwise).  A model's JSON is a few levels deep.
        doc = loads_frame(data)
    except (ValueError, RecursionError) as exc:  # RecursionError: hostile nesting
        raise DataError(f"{where}: model file is not JSON: {type(exc).__name__}: "
                        f"{exc!s:.200}") from None
    return ProbabilityModel.from_dict(doc)
