import numpy as np
import pytest

from star.data.cache import CacheError, CacheWriter, cache_attrs, open_cache, write_cache
from star.provenance import code_hash, module_closure, record


def features(n=5, d=4):
    return np.arange(n * d, dtype=np.float32).reshape(n, d)


def test_round_trip_with_provenance(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"abc")
    prov = record("features_extract", {"a": 1}, code="c0de", sources=[src])
    path = write_cache(tmp_path / "f.h5", "features", {"features": features()}, prov,
                       game="g", half=1, fps=1.0, dim=4, encoder="x")
    with open_cache(path, "features", fps=1.0, dim=4) as h5:
        np.testing.assert_array_equal(h5["features"][1:3], features()[1:3])
    attrs = cache_attrs(path)
    assert attrs["length"] == 5 and attrs["provenance"]["config_hash"] and attrs["provenance"]["code_hash"] == "c0de"
    assert attrs["provenance"]["sources"][str(src)].startswith("ba7816bf")  # sha256("abc")


def test_mismatch_names_the_file_and_the_attribute(tmp_path):
    path = write_cache(tmp_path / "f.h5", "features", {"features": features()}, {}, game="g", half=1,
                       fps=2.0, dim=4, encoder="x")
    with pytest.raises(CacheError, match=r"f\.h5: fps is 2\.0 but the configuration expects 1\.0"):
        open_cache(path, "features", fps=1.0)
    with pytest.raises(CacheError, match="expected a positions cache"):
        open_cache(path, "positions")


def test_nan_features_are_refused_and_nothing_is_left(tmp_path):
    bad = features()
    bad[2, 1] = np.nan
    with pytest.raises(CacheError, match="non-finite"):
        write_cache(tmp_path / "f.h5", "features", {"features": bad}, {}, game="g", half=1, fps=1.0, dim=4,
                    encoder="x")
    assert list(tmp_path.iterdir()) == []


def test_failed_rewrite_keeps_the_previous_file(tmp_path):
    path = write_cache(tmp_path / "f.h5", "features", {"features": features()}, {}, game="g", half=1, fps=1.0,
                       dim=4, encoder="x")
    with pytest.raises(RuntimeError):
        with CacheWriter(path, "features", {}, game="g", half=1, fps=1.0, dim=4, encoder="x") as writer:
            writer.append("features", features(2))
            raise RuntimeError("killed mid-way")
    with open_cache(path, "features") as h5:
        assert h5["features"].shape == (5, 4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.h5"]


def test_streamed_datasets_must_agree_in_length(tmp_path):
    with pytest.raises(CacheError, match="differ in length"):
        with CacheWriter(tmp_path / "p.h5", "frames", {}, game="g", half=1, fps=1.0, width=2, height=2,
                         source="v") as writer:
            writer.append("frames", np.zeros((3, 2, 2, 3)))
            writer.append("times", np.zeros(2))


def test_code_hash_follows_imports():
    assert "star.data.cache" in module_closure("star.video.decode")
    assert "star.provenance" in module_closure("star.video.decode")
    assert code_hash("star.video.decode") != code_hash("star.data.cache")
