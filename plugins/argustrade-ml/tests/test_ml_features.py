"""The feature registry: batch/incremental parity, stamps, versions, labels, export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from argus_ml.bars import BarColumns
from argus_ml.dataset import build_dataset, export_dataset, read_dataset
from argus_ml.features import Feature, FeatureEngine, FeatureRegistry
from argus_ml.labels import LabelSpec, horizon_rows, make_labels

from argus_core import DataError


def test_batch_and_incremental_agree_to_float_precision(kraken_bars: BarColumns) -> None:
    fs = FeatureRegistry.default().select()
    batch = fs.batch(kraken_bars)
    engine = FeatureEngine(fs)
    rows = [engine.update(b) for b in kraken_bars.bars("BTC/USD")]
    inc = np.array([r.values for r in rows])
    known = np.array([r.known_ts_ns for r in rows])
    assert inc.shape == batch.values.shape
    np.testing.assert_array_equal(np.isnan(inc), np.isnan(batch.values))
    np.testing.assert_allclose(inc, batch.values, rtol=1e-12, atol=1e-15, equal_nan=True)
    np.testing.assert_array_equal(known, batch.known_ts_ns)
    assert not np.isnan(batch.values[fs.warmup - 1:]).any()  # warm-up only at the start


def test_every_value_is_stamped_at_or_before_its_decision_time(kraken_bars: BarColumns) -> None:
    fs = FeatureRegistry.default().select()
    m = fs.batch(kraken_bars)
    ok = m.known_ts_ns >= 0
    assert (m.known_ts_ns[ok] <= np.broadcast_to(m.ts_ns[:, None], m.known_ts_ns.shape)[ok]).all()
    lagged = Feature("ret_1_lag2", 1, 2, fs.features[fs.keys.index("ret_1@1")].fn, lag=2)
    mlag = FeatureRegistry([lagged]).select().batch(kraken_bars)
    # a lag-2 feature at bar t is known at the close of bar t - 2 and equals ret_1 there
    np.testing.assert_array_equal(mlag.known_ts_ns[5:, 0], kraken_bars.ts_ns[3:-2])
    ret1 = m.values[:, fs.keys.index("ret_1@1")]
    np.testing.assert_array_equal(mlag.values[5:, 0], ret1[3:-2])


def test_engine_state_round_trips(kraken_bars: BarColumns) -> None:
    fs = FeatureRegistry.default().select()
    bars = kraken_bars.bars("X")[:100]
    a = FeatureEngine(fs)
    for b in bars[:60]:
        a.update(b)
    b_engine = FeatureEngine(fs)
    b_engine.set_state(json.loads(json.dumps(a.get_state())))
    for b in bars[60:]:
        assert a.update(b) == b_engine.update(b)
    with pytest.raises(DataError, match="not after"):
        a.update(bars[10])


def test_registry_versions() -> None:
    reg = FeatureRegistry.default()
    v1 = reg.get("ret_1")
    with pytest.raises(DataError, match="bump its version"):
        reg.register(Feature("ret_1", 1, 2, v1.fn))
    reg.register(Feature("ret_1", 2, 3, v1.fn, "two-bar return"))
    assert reg.get("ret_1").version == 2 and reg.get("ret_1@1") is v1
    assert reg.select(["ret_1@1", "vol_24"]).keys == ("ret_1@1", "vol_24@1")
    assert reg.select(["ret_1@1"]).spec_hash() != reg.select(["ret_1@2"]).spec_hash()
    with pytest.raises(DataError, match="no feature"):
        reg.get("nope")


def test_labels_by_hand() -> None:
    close = np.array([10.0, 11.0, 11.0, 9.0, 12.0])
    ts = np.arange(1, 6, dtype=np.int64) * 10
    bars = BarColumns(ts, close, close, close, close, np.ones(5))
    up = make_labels(bars, LabelSpec("up", 2))
    np.testing.assert_array_equal(up.values[:3], [1.0, 0.0, 1.0])
    assert np.isnan(up.values[3:]).all()
    np.testing.assert_array_equal(up.end_ts_ns, [30, 40, 50, -1, -1])
    ret = make_labels(bars, LabelSpec("return", 1))
    assert ret.values[0] == pytest.approx(np.log(1.1))
    assert horizon_rows(ts[:3], up.end_ts_ns[:3]) == 2


def test_dataset_export_is_deterministic_and_verified(kraken_bars: BarColumns,
                                                      tmp_path: Path) -> None:
    fs = FeatureRegistry.default().select()
    ds = build_dataset(kraken_bars.head(800), fs, LabelSpec("up", 1))
    m1 = export_dataset(ds, tmp_path / "a")
    m2 = export_dataset(build_dataset(kraken_bars.head(800), fs, LabelSpec("up", 1)),
                        tmp_path / "b")
    assert m1 == m2
    assert (tmp_path / "a/data.ndjson").read_bytes() == (tmp_path / "b/data.ndjson").read_bytes()
    assert m1["dataset_hash"] == ds.content_hash()
    assert m1["source_sha256"] == kraken_bars.source_sha256 and m1["label"]["purge_rows"] == 1
    back = read_dataset(tmp_path / "a")
    assert back == ds
    data = tmp_path / "a/data.ndjson"
    data.write_bytes(data.read_bytes().replace(b'"y":1.0', b'"y":0.0', 1))
    with pytest.raises(DataError, match="sha256"):
        read_dataset(tmp_path / "a")


def test_parquet_export_has_the_same_content_hash_and_is_verified(kraken_bars: BarColumns,
                                                                 tmp_path: Path) -> None:
    import hashlib
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    fs = FeatureRegistry.default().select()
    ds = build_dataset(kraken_bars.head(800), fs, LabelSpec("up", 2))
    nd = export_dataset(ds, tmp_path / "n")
    pqm = export_dataset(ds, tmp_path / "p", fmt="parquet")
    again = export_dataset(build_dataset(kraken_bars.head(800), fs, LabelSpec("up", 2)),
                           tmp_path / "p2", fmt="parquet")
    # the dataset hash is the content hash over canonical rows: equal for both formats
    assert pqm["dataset_hash"] == nd["dataset_hash"] == ds.content_hash()
    assert list(pqm["files"]) == ["data.parquet"]
    # same inputs, same pyarrow: same bytes, and the manifest holds their sha256
    data = (tmp_path / "p/data.parquet").read_bytes()
    assert data == (tmp_path / "p2/data.parquet").read_bytes() and pqm == again
    assert pqm["files"]["data.parquet"] == hashlib.sha256(data).hexdigest()
    table = pq.read_table(tmp_path / "p/data.parquet")
    assert table.column_names == ["ts_ns", "label_end_ts_ns", "y", "forward_return",
                                  *ds.keys]
    assert read_dataset(tmp_path / "p") == ds == read_dataset(tmp_path / "n")
    # a tampered file is refused by its sha256 ...
    (tmp_path / "p/data.parquet").write_bytes(data[:-8] + b"\0" * 8)
    with pytest.raises(DataError, match="sha256"):
        read_dataset(tmp_path / "p")
    # ... and a rewritten one whose manifest sha256 was updated, by the content hash
    changed = table.set_column(2, "y", pa.array(1.0 - table.column("y").to_numpy()))
    pq.write_table(changed, tmp_path / "p/data.parquet")
    man = json.loads((tmp_path / "p/manifest.json").read_text())
    man["files"]["data.parquet"] = hashlib.sha256(
        (tmp_path / "p/data.parquet").read_bytes()).hexdigest()
    (tmp_path / "p/manifest.json").write_text(json.dumps(man))
    with pytest.raises(DataError, match="content hash"):
        read_dataset(tmp_path / "p")
