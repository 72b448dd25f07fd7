"""The sharded source index and the phased matcher against the unsharded ones."""

import itertools
import pickle
import random
from dataclasses import replace

import numpy as np
import pytest

from auditkit.executor import LocalExecutor
from auditkit.index_shards import HASH_SPACE, ShardedIndex, hash_bounds, record_cuts, shard_of
from auditkit.ngram_index import SourceIndex, encode
from auditkit.overlap_match import MatchParams, match_record
from auditkit.sharded_match import match_sharded

RNG = random.Random(23)
VOCAB = [f"w{i}" for i in range(4000)]


def words(n, rng=RNG):
    return [rng.choice(VOCAB) for _ in range(n)]


def replaced(ws, share, rng):
    """``ws`` with ``share`` of its words replaced by random ones (a near copy)."""
    out = list(ws)
    for k in rng.sample(range(len(ws)), int(len(ws) * share)):
        out[k] = rng.choice(VOCAB)
    return out


def text(ws):
    return " ".join(ws)


def build_corpus():
    """Source records with every case planted, and synthetic records that hit each case.

    A passage in 60 of 80 source records is too common to seed from (df > seed_max_df):
    runs of it are discounted boilerplate runs; one in 6 records is judged boilerplate
    (support >= k); 60 words of one record are copied verbatim, 60 of another with 10% of
    words replaced; one synthetic record is a whole source record with 10% replaced (its
    closest record by Jaccard).
    """
    rng = random.Random(5)
    common = words(30, rng)
    template = words(30, rng)
    source_words = []
    for i in range(80):
        ws = words(200, rng)
        if i < 60:
            ws[40:40] = common
        if 60 <= i < 66:
            ws[120:120] = template
        source_words.append(ws)
    synthetic_words = [
        words(60, rng) + source_words[70][100:160] + words(60, rng),  # verbatim copy
        words(60, rng) + replaced(source_words[75][20:80], 0.1, rng) + words(60, rng),  # near
        words(80, rng) + template + words(80, rng),  # boilerplate by support
        words(80, rng) + common + words(80, rng),  # a run of common n-grams
        replaced(source_words[77], 0.1, rng),  # near-duplicate of a whole record (DCR)
        words(30, rng) + source_words[3][40:100] + words(30, rng),  # common run + copy
        words(250, rng),  # clean
    ]
    synthetic = [text(ws) for ws in synthetic_words] + ["", "one two", "w1 w2 w3 w4"]
    return [text(ws) for ws in source_words], synthetic


SOURCE, SYNTHETIC = build_corpus()
ENCODED = [encode(t) for t in SOURCE]
INDEX = SourceIndex.build(ENCODED, 4, 8)
P = MatchParams()
# Caps below the df of the planted passages: postings beyond the seed cap, DCR cap apart.
P_LOW = replace(P, seed_max_df=5, dcr_df_cap=8, boilerplate_k=3)


def reference(params):
    return [match_record(encode(t), INDEX, params) for t in SYNTHETIC]


REFERENCE = {P: reference(P), P_LOW: reference(P_LOW)}


def pickled_map(fn, jobs):
    """Like a process pool: every job and result crosses a pickle boundary."""
    return [pickle.loads(pickle.dumps(fn(pickle.loads(pickle.dumps(job))))) for job in jobs]


def sharded(index, params, refs=None, batch=3):
    batches = [SYNTHETIC[i : i + batch] for i in range(0, len(SYNTHETIC), batch)]
    grams, owners = refs or (index.gram_shards, index.record_shards)
    out = match_sharded(batches, index, grams, owners, params, pickled_map)
    return [res for pairs in out for _, res in pairs]


def test_the_corpus_exercises_every_path():
    results = REFERENCE[P]
    kinds = {m.kind for r in results for m in r.matches if m.leak}
    assert kinds == {"exact", "near"}
    # boilerplate by support, and runs of n-grams too common to seed (support 0)
    assert any(m.boilerplate and m.support >= P.boilerplate_k for m in results[2].matches)
    assert any(m.boilerplate and m.support == 0 for m in results[3].matches)
    assert (
        results[4].dcr_source == 77 and results[4].dcr_similarity > 0.3
    )  # 4-grams: about 0.9 ** 4 shared
    # the common passage lies inside the copied one: its run is dropped, not discounted
    assert results[5].leak and results[5].max_exact_tokens == 60
    assert results[5].boilerplate_discounted == 0
    assert not results[6].leak and results[7].dcr_source == -1


@pytest.mark.parametrize("gram_shards", [1, 2, 3, 7])
@pytest.mark.parametrize("record_shards", [1, 2, 5])
@pytest.mark.parametrize("params", [P, P_LOW], ids=["default", "low-caps"])
def test_sharded_matching_equals_match_record(gram_shards, record_shards, params):
    index = ShardedIndex.build(ENCODED, 4, 8, gram_shards, record_shards)
    got = sharded(index, params)
    # RecordOverlap equality is every field, matches (every Match field) included.
    for want, have in zip(REFERENCE[params], got, strict=True):
        assert have == want


@pytest.mark.parametrize("shards", [1, 2, 3, 7, 64])
def test_hash_ranges_cover_the_space_without_gap_or_overlap(shards):
    bounds = hash_bounds(shards)
    assert bounds[0] == 0 and bounds[-1] == HASH_SPACE and len(bounds) == shards + 1
    assert all(a < b for a, b in itertools.pairwise(bounds))
    widths = {b - a for a, b in itertools.pairwise(bounds)}
    assert max(widths) - min(widths) <= 1  # equal width
    edges = sorted({0, HASH_SPACE - 1, *bounds[1:-1], *(b - 1 for b in bounds[1:-1])})
    probes = np.array(edges + [random.Random(k).getrandbits(64) for k in range(200)], np.uint64)
    ids = shard_of(probes, bounds)
    for value, k in zip(probes.tolist(), ids.tolist(), strict=True):
        assert bounds[k] <= value < bounds[k + 1]


@pytest.mark.parametrize(("gram_shards", "record_shards"), [(3, 2), (7, 5)])
def test_shards_hold_exactly_the_global_arrays(gram_shards, record_shards):
    index = ShardedIndex.build(ENCODED, 4, 8, gram_shards, record_shards)
    assert index.bounds == hash_bounds(gram_shards)
    for shard in index.gram_shards:
        for values in (shard.grams, shard.exact_grams):
            assert ((values >= np.uint64(shard.low)) & (values <= np.uint64(shard.high - 1))).all()
    # Shards are ascending hash ranges, so in shard order they concatenate to the global
    # arrays: the same grams, df (per-shard df is the global df), postings in the same
    # order, and the same exact-gram table.
    for name in ("grams", "df", "post_record", "post_pos", "exact_grams", "exact_df"):
        joined = np.concatenate([getattr(s, name) for s in index.gram_shards])
        assert np.array_equal(joined, getattr(INDEX, name)), name
    for shard in index.gram_shards:
        # block offsets are the shard's own, and each block is the gram's global block
        loc, found = INDEX.lookup(shard.grams)
        assert found.all()
        assert np.array_equal(shard.block_end - shard.block_start,
                              INDEX.block_end[loc] - INDEX.block_start[loc])  # fmt: skip
    firsts = [s.first for s in index.record_shards]
    assert firsts == sorted(firsts) and firsts[0] == 0 and index.records == INDEX.records
    assert np.array_equal(np.concatenate([s.tokens for s in index.record_shards]), INDEX.tokens)
    for record in range(INDEX.records):
        assert np.array_equal(index.record_tokens(record), INDEX.record_tokens(record))
        length = len(INDEX.record_tokens(record))
        assert index.record_span(record, 1, length) == INDEX.record_span(record, 1, length)
    with pytest.raises(IndexError):
        index.record_span(INDEX.records, 0, 1)


def test_more_record_shards_than_records():
    docs = [encode(t) for t in SOURCE[:3]]
    index = ShardedIndex.build(docs, 4, 8, 2, 5)
    assert index.records == 3 and len(index.record_shards) == 5
    assert sum(s.records for s in index.record_shards) == 3
    for record in range(3):
        assert np.array_equal(index.record_tokens(record), docs[record].tokens)


def test_save_load_round_trip_memory_mapped(tmp_path):
    index = ShardedIndex.build(ENCODED, 4, 8, 3, 2)
    index.save(tmp_path / "saved")
    loaded = ShardedIndex.load(tmp_path / "saved")
    # Built straight into a folder: the same arrays, memory-mapped shard by shard.
    built = ShardedIndex.build(ENCODED, 4, 8, 3, 2, folder=tmp_path / "built")
    for other in (loaded, built):
        assert other.bounds == index.bounds and (other.n, other.exact_n) == (4, 8)
        pairs = [*zip(index.gram_shards, other.gram_shards, strict=True),
                 *zip(index.record_shards, other.record_shards, strict=True)]  # fmt: skip
        for mine, theirs in pairs:
            for name in mine.ARRAYS:
                assert isinstance(getattr(theirs, name), np.memmap), name
                assert np.array_equal(getattr(mine, name), getattr(theirs, name)), name
    # Jobs given the folders (as local pool workers are) memory-map the shards themselves.
    refs = (
        [str(ShardedIndex.gram_folder(tmp_path / "built", k)) for k in range(3)],
        [str(ShardedIndex.record_folder(tmp_path / "built", r)) for r in range(2)],
    )
    assert sharded(built, P, refs) == REFERENCE[P]
    # Pickled (as for a Ray object store), a memory-mapped shard travels as plain arrays.
    copy = pickle.loads(pickle.dumps(built.gram_shards[1]))
    assert np.array_equal(copy.post_record, index.gram_shards[1].post_record)


def test_index_shards_below_one_is_a_policy_error_naming_the_key(tmp_path):
    from auditkit.errors import PolicyError
    from auditkit.policy import load_policy

    path = tmp_path / "policy.yaml"
    path.write_text("name: sharded\nchecks:\n  overlap:\n    index_shards: 0\n")
    with pytest.raises(PolicyError, match="greater than or equal to 1") as info:
        load_policy(path)
    assert info.value.field == "checks.overlap.index_shards" and info.value.exit_code == 2


def test_waves_of_batches_give_the_same_results(monkeypatch):
    from auditkit import sharded_match

    monkeypatch.setattr(sharded_match, "WAVE", 2)  # 10 records in batches of 2: 3 waves
    index = ShardedIndex.build(ENCODED, 4, 8, 3, 2)
    assert sharded(index, P, batch=2) == REFERENCE[P]


# -- building: record shards from a stream, gram shards as executor jobs -----------------


@pytest.mark.parametrize(
    ("sizes", "shards", "cuts"),
    [
        ([5, 5, 5, 5], 2, [0, 2, 4]),  # shard 1 starts where 10 of 20 precede
        ([5, 5, 5, 5], 4, [0, 1, 2, 3, 4]),
        ([10, 1, 1, 1, 1], 2, [0, 1, 5]),  # one record outweighs a share
        ([1, 1, 1, 1, 10], 2, [0, 5, 5]),  # no record has 7 before it: an empty range
        ([3, 3], 5, [0, 1, 1, 2, 2, 2]),  # more shards than records: empty ranges
        ([], 3, [0, 0, 0, 0]),
        ([0, 0, 4, 0], 2, [0, 3, 4]),  # the first record preceded by >= 2 is record 3
    ],
)
def test_record_cuts_follow_the_documented_rule(sizes, shards, cuts):
    assert record_cuts(sizes, shards).tolist() == cuts


def test_record_cuts_reject_bad_arguments():
    with pytest.raises(ValueError, match="shards must be >= 1"):
        record_cuts([1, 2], 0)
    with pytest.raises(ValueError, match="sizes must be >= 0"):
        record_cuts([1, -2], 2)


def assert_same_shards(built, want):
    """Every array of every shard equal, shard for shard, and the same cut and bounds."""
    assert (built.n, built.exact_n, built.bounds) == (want.n, want.exact_n, want.bounds)
    assert [s.first for s in built.record_shards] == [s.first for s in want.record_shards]
    pairs = [*zip(built.gram_shards, want.gram_shards, strict=True),
             *zip(built.record_shards, want.record_shards, strict=True)]  # fmt: skip
    for mine, theirs in pairs:
        for name in theirs.ARRAYS:
            a, b = getattr(mine, name), getattr(theirs, name)
            assert a.dtype == b.dtype and np.array_equal(a, b), name


CHARS = [len(t) for t in SOURCE]


def test_record_shards_cut_from_a_stream_by_the_given_sizes(tmp_path):
    want = ShardedIndex.build(ENCODED, 4, 8, 3, 4)  # weighed by tokens, all at hand
    stream = (enc for enc in ENCODED)  # a generator: the encodings arrive one by one
    built = ShardedIndex.build(stream, 4, 8, 3, 4, folder=tmp_path, sizes=CHARS)
    cuts = record_cuts(CHARS, 4).tolist()
    assert [s.first for s in built.record_shards] == cuts[:-1]
    assert [s.records for s in built.record_shards] == np.diff(cuts).tolist()
    # The cut is by characters here, by tokens there; the gram shards do not depend on it.
    for mine, theirs in zip(built.gram_shards, want.gram_shards, strict=True):
        for name in theirs.ARRAYS:
            assert np.array_equal(getattr(mine, name), getattr(theirs, name)), name
    for record in range(INDEX.records):
        assert np.array_equal(built.record_tokens(record), INDEX.record_tokens(record))
    assert sharded(built, P) == REFERENCE[P]


def test_a_stream_that_does_not_match_its_sizes_is_an_error():
    with pytest.raises(ValueError, match="ended after 79 records; its sizes were given for 80"):
        ShardedIndex.build(iter(ENCODED[:-1]), 4, 8, 2, 3, sizes=CHARS)
    with pytest.raises(ValueError, match="more than the 79 records its sizes"):
        ShardedIndex.build(iter(ENCODED), 4, 8, 2, 3, sizes=CHARS[:-1])
    with pytest.raises(ValueError, match="worker_files needs a folder"):
        ShardedIndex.build(ENCODED, 4, 8, 2, 3, worker_files=True)


@pytest.mark.parametrize("worker_files", [False, True], ids=["objects", "folders"])
def test_gram_shards_built_in_pickled_jobs_equal_the_in_process_build(tmp_path, worker_files):
    want = ShardedIndex.build(ENCODED, 4, 8, 5, 3)
    done = []
    built = ShardedIndex.build(ENCODED, 4, 8, 5, 3, folder=tmp_path, map_fn=pickled_map,
                               worker_files=worker_files, on_shard=done.append)  # fmt: skip
    assert_same_shards(built, want)
    assert done == [0, 1, 1, 1, 1, 1]
    assert all(isinstance(s.post_record, np.memmap) for s in built.gram_shards)
    assert_same_shards(ShardedIndex.load(tmp_path), want)


def test_gram_shards_built_on_two_local_workers_equal_the_in_process_build(tmp_path):
    want = ShardedIndex.build(ENCODED, 4, 8, 4, 3)
    with LocalExecutor(2) as executor:
        # Jobs given the record shards' folders, writing their gram shard there; and jobs
        # given the objects, returning theirs through the pool (as under Ray).
        on_disk = ShardedIndex.build(iter(ENCODED), 4, 8, 4, 3, folder=tmp_path / "files",
                                     sizes=[len(e) for e in ENCODED], map_fn=executor.map,
                                     worker_files=True)  # fmt: skip
        returned = ShardedIndex.build(ENCODED, 4, 8, 4, 3, folder=tmp_path / "objects",
                                      map_fn=executor.map)  # fmt: skip
    assert_same_shards(on_disk, want)
    assert_same_shards(returned, want)


@pytest.mark.slow
def test_gram_shards_built_on_ray_equal_the_in_process_build(tmp_path, request):
    pytest.importorskip("ray")
    executor = request.getfixturevalue("ray_runtime")
    want = ShardedIndex.build(ENCODED, 4, 8, 3, 2)
    built = ShardedIndex.build(iter(ENCODED), 4, 8, 3, 2, folder=tmp_path,
                               sizes=[len(e) for e in ENCODED], map_fn=executor.map)  # fmt: skip
    assert_same_shards(built, want)
