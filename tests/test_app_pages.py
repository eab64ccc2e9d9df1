"""Every dashboard page runs on every bundled run without an exception (Streamlit AppTest, no browser)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from profiler.store import RunStore

REPO = Path(__file__).resolve().parents[1]
HOME = str(REPO / "app" / "Home.py")
RUN_PAGES = ["pages/overview.py", "pages/timeline.py", "pages/layers.py", "pages/tensor_cores.py",
             "pages/memory_copies.py", "pages/roofline.py"]
OTHER_PAGES = ["pages/upload.py", "pages/runs.py"]
TIMEOUT = 180


@pytest.fixture()
def app_env(tmp_path, monkeypatch, sample_run_dirs):
    """A fresh run store; bundled runs from data/samples (or $TRTSCOPE_SAMPLES); no captured runs."""
    monkeypatch.setenv("TRTSCOPE_HOME", str(tmp_path / "store"))
    monkeypatch.setenv("TRTSCOPE_RUNS", str(tmp_path / "no_runs"))
    return tmp_path / "store"


def problems(at: AppTest) -> list[str]:
    return [f"exception: {e.value}" for e in at.exception] + [f"error: {e.value}" for e in at.error]


def start(run_id: str | None = None, check: bool = True) -> AppTest:
    at = AppTest.from_file(HOME, default_timeout=TIMEOUT)
    if run_id:
        at.query_params["run"] = run_id
    at.run()
    if check:
        assert not problems(at), problems(at)
    return at


def test_home_registers_every_bundled_run(app_env, sample_run_dirs):
    at = start()
    picker = at.selectbox(key="run_picker")
    bundled = [r for r in RunStore(app_env).list_runs() if r.source == "bundled"]
    assert sorted(r.id for r in bundled) == sorted(f"bundled-{d.name}" for d in sample_run_dirs)
    assert len(picker.options) == len(sample_run_dirs)
    assert at.session_state["run_id"] == picker.value


def test_every_page_on_every_bundled_run(app_env, sample_run_dirs):
    at = start()
    for d in sample_run_dirs:
        # After switch_page, AppTest runs the page script alone (not Home.py, so no sidebar picker; the browser
        # test uses the real picker): pick the run the way pages read it, through session state.
        at.session_state["run_id"] = f"bundled-{d.name}"
        for page in RUN_PAGES:
            at.switch_page(page)
            at.run()
            assert not problems(at), (d.name, page, problems(at))
            assert at.session_state["run_id"] == f"bundled-{d.name}"
            assert len(at.title) >= 1, (d.name, page)
    for page in OTHER_PAGES:
        at.switch_page(page)
        at.run()
        assert not problems(at), (page, problems(at))


def test_overview_shows_facts_and_findings(app_env, sample_run_dirs):
    at = start(f"bundled-{sample_run_dirs[0].name}")
    labels = [m.label for m in at.metric]
    assert {"Device", "Precision", "Batch"} <= set(labels)
    assert any("dominates" in m.value or "No preprocess" in m.value for m in at.markdown)
    assert at.get("plotly_chart"), "the Overview draws its charts"


def test_synthetic_run_with_gpu_metrics(app_env, synthetic_trace):
    """A run with Tensor Active samples and a layer that misses Tensor Cores: every page, and the metric."""
    run = RunStore(app_env).import_trace(synthetic_trace, name="synthetic", source="uploaded")
    at = start(run.id)
    for page in RUN_PAGES:
        at.switch_page(page)
        at.run()
        assert not problems(at), (page, problems(at))
    at.switch_page("pages/tensor_cores.py")
    at.run()
    values = {m.label: m.value for m in at.metric}
    assert values["Inference GPU time on Tensor Cores"] != "—"
    assert values["Tensor Active during inference (measured)"].endswith("%")


def test_timeline_window_from_another_page(app_env, synthetic_trace):
    run = RunStore(app_env).import_trace(synthetic_trace, name="synthetic", source="uploaded")
    at = start(run.id)
    at.switch_page("pages/timeline.py")
    at.run()
    assert at.radio(key="tl_mode").value == "Whole trace"
    t0 = 1_000_000_000  # the synthetic trace's first iteration starts here
    at.session_state["timeline_window"] = (t0 + 300_000, t0 + 900_000)
    at.run()
    assert not problems(at), problems(at)
    assert at.radio(key="tl_mode").value == "Window"
    assert at.number_input(key="tl_start_ms").value == pytest.approx(0.3, abs=1e-6)
    assert at.number_input(key="tl_end_ms").value == pytest.approx(0.9, abs=1e-6)
    at.radio(key="tl_mode").set_value("One iteration")
    at.run()
    assert not problems(at) and at.selectbox(key="tl_iteration").options == ["iteration_0", "iteration_1",
                                                                                "iteration_2"]


def test_layers_drill_down(app_env, synthetic_trace):
    run = RunStore(app_env).import_trace(synthetic_trace, name="synthetic", source="uploaded")
    at = start(run.id)
    at.switch_page("pages/layers.py")
    at.run()
    pick = at.selectbox(key="layers_pick")
    assert len(pick.options) == 4
    pick.set_value(3)  # the layer that misses Tensor Cores
    at.run()
    assert not problems(at)
    assert any("Tensor Cores 0%" in m.value for m in at.markdown)
    at.text_input(key="layers_filter").input("block3")
    at.run()
    options = at.selectbox(key="layers_pick").options
    assert len(options) == 1 and options[0].startswith("#3 block3")


def test_remove_asks_first(app_env, synthetic_trace):
    store = RunStore(app_env)
    run = store.import_trace(synthetic_trace, name="to remove", source="uploaded")
    at = start(run.id)
    at.switch_page("pages/runs.py")
    at.run()
    at.selectbox(key="catalogue_pick").set_value(run.id)
    at.button(key="catalogue_remove").click()
    at.run()
    assert any("Remove **to remove**" in w.value for w in at.warning)
    assert run.id in store  # nothing removed yet
    at.button(key="confirm_no").click()
    at.run()
    assert run.id in store and not at.warning
    at.selectbox(key="catalogue_pick").set_value(run.id)
    at.button(key="catalogue_remove").click()
    at.run()
    at.button(key="confirm_yes").click()
    at.run()
    assert not problems(at), problems(at)
    assert run.id not in store and not run.trace_path.exists()


def test_unreadable_run_shows_a_message_not_a_traceback(app_env, synthetic_trace):
    store = RunStore(app_env)
    run = store.import_trace(synthetic_trace, name="damaged later", source="uploaded")
    data = run.trace_path.read_bytes()
    run.trace_path.chmod(0o644)
    run.trace_path.write_bytes(data[: len(data) // 2])  # damaged on disk after import
    at = start(run.id, check=False)
    assert not at.exception
    assert any("cannot be read" in e.value for e in at.error)


def test_streamlit_reads_the_project_config():
    """`streamlit run` from the repo root reads .streamlit/config.toml -> streamlit_config.toml."""
    link = REPO / ".streamlit" / "config.toml"
    assert link.resolve() == (REPO / "streamlit_config.toml").resolve()
    code = "import streamlit.config as c; c.get_config_options(force_reparse=True); " \
           "print(c.get_option('server.maxUploadSize'))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         env={**os.environ, "HOME": str(REPO / ".no-home")})
    assert out.stdout.strip().splitlines()[-1] == "1024", out.stderr
