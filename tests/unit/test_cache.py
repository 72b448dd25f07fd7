import shutil

import pytest

from auditkit.cache import KeyedStore, cache_dir, caching_enabled, folder_digest
from auditkit.errors import UsageError


def test_store_round_trip_by_position_and_namespace(tmp_path):
    store = KeyedStore("t.sqlite", "model-a", tmp_path)
    store.put_many(["low mood", "poor sleep"], [b"\x01", b"\x02"])
    assert store.get_many(["poor sleep", "unseen", "low mood", "poor sleep"]) == {
        0: b"\x02",
        2: b"\x01",
        3: b"\x02",
    }
    assert KeyedStore("t.sqlite", "model-b", tmp_path).get_many(["low mood"]) == {}


def test_store_keeps_no_text(tmp_path):
    store = KeyedStore("t.sqlite", "ns", tmp_path)
    store.put_many(["Maria Okafor, MRN 00482913"], [b"spans"])
    store.close()
    assert b"Okafor" not in (tmp_path / "t.sqlite").read_bytes()


def test_folder_digest_ignores_location_and_pycache(tmp_path):
    a = tmp_path / "a"
    (a / "sub").mkdir(parents=True)
    (a / "weights.bin").write_bytes(b"w")
    (a / "sub" / "config.json").write_text("{}")
    b = tmp_path / "b"
    shutil.copytree(a, b)
    (b / "__pycache__").mkdir()
    (b / "__pycache__" / "x.pyc").write_bytes(b"noise")
    assert folder_digest(a) == folder_digest(b)
    (b / "weights.bin").write_bytes(b"W")
    assert folder_digest(a) != folder_digest(b)


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("AUDITKIT_CACHE_DIR", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    monkeypatch.delenv("AUDITKIT_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert cache_dir() == tmp_path / "x" / "auditkit"


@pytest.mark.parametrize(
    ("value", "phi", "embeddings"),
    [
        ("", True, True),
        ("0", True, True),
        ("1", False, False),
        ("all", False, False),
        ("phi", False, True),
        ("embeddings", True, False),
        (" phi , embeddings ", False, False),
    ],
)
def test_no_cache_turns_off_all_or_named_caches(monkeypatch, value, phi, embeddings):
    monkeypatch.setenv("AUDITKIT_NO_CACHE", value)
    assert (caching_enabled("phi"), caching_enabled("embeddings")) == (phi, embeddings)


def test_no_cache_with_an_unknown_name_is_a_usage_error(monkeypatch):
    monkeypatch.setenv("AUDITKIT_NO_CACHE", "phi,embedings")
    with pytest.raises(UsageError, match="unknown cache embedings"):
        caching_enabled("phi")
