"""Time the dashboard in headless Chromium on any trace (the browser test does the same on bundled runs).

    python benchmarks/browser_timing.py TRACE [--pages timeline,overview] [--repeat 3]

Imports TRACE into a temporary run store (validation = open + summarise, timed), starts `streamlit run
app/Home.py`, then per page: the cold load (tables read and analysed, cached by file hash) and the worst of
`--repeat` warm navigations (click another page, click back, until the page's charts are drawn). Needs Debian's
chromium and python playwright, like tests/test_browser.py, whose helpers it uses.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from playwright.sync_api import sync_playwright  # noqa: E402

from profiler.store import RunStore  # noqa: E402
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, Server, wait_ready  # noqa: E402

PAGES = {"overview": ("", None, "Overview", 2), "timeline": ("timeline", "Timeline", "Timeline", 1),
         "layers": ("layers", "Layers", "Layers", 1), "tensor_cores": ("tensor_cores", "Tensor Cores", "Tensor Cores", 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("trace")
    p.add_argument("--pages", default="timeline,overview")
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    out: dict = {"trace": args.trace, "load_average_start": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as tmp:
        store_dir = Path(tmp) / "store"
        t = time.perf_counter()
        run = RunStore(store_dir).import_trace(args.trace, name=Path(args.trace).name.split(".")[0],
                                               source="uploaded")
        out["import_s"] = round(time.perf_counter() - t, 2)
        srv = Server(store_dir)
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1500, "height": 1000})
                for name in args.pages.split(","):
                    slug, title, nav, charts = PAGES[name]
                    title = title or run.name
                    t = time.perf_counter()
                    page.goto(f"{srv.url}/{slug}?run={run.id}")
                    wait_ready(page, title, charts, timeout_s=1200)
                    out[f"{name}_cold_s"] = round(time.perf_counter() - t, 2)
                    warm = []
                    for _ in range(args.repeat):
                        page.locator('[data-testid="stSidebarNav"] a', has_text="Upload").click()
                        wait_ready(page, "Upload", 0)
                        t = time.perf_counter()
                        page.locator('[data-testid="stSidebarNav"] a', has_text=nav).first.click()
                        wait_ready(page, title, charts, timeout_s=120)
                        warm.append(round(time.perf_counter() - t, 2))
                    out[f"{name}_warm_s"] = warm
                browser.close()
        finally:
            srv.stop()
    out["load_average_end"] = os.getloadavg()[0]
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
