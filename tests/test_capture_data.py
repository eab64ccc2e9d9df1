"""The small captures in tests/data (made by `python -m profiler run` on an H100, see docs/notes/capture.md):
the NVTX conventions and the exact copy counts metadata.json promises, read straight from the SQLite."""

import json
import lzma
import sqlite3
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
NAMES = ("resnet18_fp16_b4", "resnet18_fp16_b4_planted", "transformer_d500_fp16_b4_emit_nvtx")


@pytest.fixture(scope="module", params=NAMES)
def capture(request, tmp_path_factory):
    name = request.param
    db = tmp_path_factory.mktemp("td") / f"{name}.sqlite"
    db.write_bytes(lzma.decompress((DATA / f"{name}.sqlite.xz").read_bytes()))
    meta = json.loads((DATA / f"{name}.metadata.json").read_text())
    con = sqlite3.connect(db)
    yield name, con, meta
    con.close()


def ranges(con, domain_name="trtscope"):
    dom = con.execute("select domainId from NVTX_EVENTS where eventType = 75 and text = ?", (domain_name,)).fetchone()
    rows = con.execute("select e.start, e.end, coalesce(e.text, s.value), e.globalTid from NVTX_EVENTS e "
                       "left join StringIds s on s.id = e.textId where e.eventType = 59 and e.domainId = ? "
                       "order by e.start", (dom[0],)).fetchall()
    return rows


def test_side_files(capture):
    name, con, meta = capture
    assert (DATA / f"{name}.command.txt").read_text().startswith("python -m profiler run ")
    assert (DATA / f"{name}.analyze.txt").stat().st_size > 0
    assert meta["nvtx_domain"] == "trtscope" and meta["iterations"] == 5


def test_iterations_enclose_stages(capture):
    name, con, meta = capture
    rows = ranges(con)
    its = [r for r in rows if r[2].startswith("iteration_")]
    assert [r[2] for r in its] == [f"iteration_{i}" for i in range(meta["iterations"])]
    for start, end, _, tid in its:
        inside = [r for r in rows if r[0] >= start and r[1] <= end and r[3] == tid]
        stages = [r[2] for r in inside if r[2] in ("preprocess", "inference", "postprocess")]
        assert stages == ["preprocess", "inference", "postprocess"]
        inf = next(r for r in inside if r[2] == "inference")
        layers = [r for r in inside if r[0] >= inf[0] and r[1] <= inf[1] and r[2] != "inference"]
        if meta["layer_ranges"] == "leaf":
            assert len(layers) >= 50 and layers[0][2] == "conv1"
        else:
            assert layers == []  # emit_nvtx ranges live in the default domain


def test_copy_counts_per_iteration(capture):
    name, con, meta = capture
    expect = meta["copies_per_iteration"]
    its = [r for r in ranges(con) if r[2].startswith("iteration_")]
    for start, end, _, _ in its:
        kinds = [k for (k,) in con.execute("select copyKind from CUPTI_ACTIVITY_KIND_MEMCPY where start >= ? and "
                                           "end <= ?", (start, end))]
        assert kinds.count(1) == expect["h2d"] and kinds.count(2) == expect["d2h"], name
    planted = meta["planted"]
    if planted:
        assert planted == {"pageable_upload": 1, "round_trip": 1, "constant_upload": 1}
        assert expect == {"h2d": 3, "d2h": 2, "h2d_pinned": 0, "d2h_pinned": 0}
        # every copy of the planted run is pageable (srcKind/dstKind 0)
        n = con.execute("select count(*) from CUPTI_ACTIVITY_KIND_MEMCPY where copyKind = 1 and srcKind != 0").fetchone()
        assert n[0] == 0


def test_emit_nvtx_ranges_present():
    db = lzma.decompress((DATA / "transformer_d500_fp16_b4_emit_nvtx.sqlite.xz").read_bytes())
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".sqlite") as f:
        f.write(db)
        f.flush()
        con = sqlite3.connect(f.name)
        n = con.execute("select count(*) from NVTX_EVENTS e left join StringIds s on s.id = e.textId where "
                        "e.domainId = 0 and coalesce(e.text, s.value) like 'aten::%'").fetchone()[0]
        con.close()
    assert n > 100
