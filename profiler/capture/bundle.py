"""Packing captured runs for the repository.

    python -m profiler.capture.bundle sample RUN_DIR DEST_DIR
        -> DEST_DIR/<run name>/{trace.sqlite.xz, metadata.json, summary.json, command.txt, modules.json,
           layer_info.json} (xz -9; the .nsys-rep and logs stay behind)
    python -m profiler.capture.bundle testdata RUN_DIR DEST_DIR NAME
        -> DEST_DIR/NAME.sqlite.xz, NAME_<report>.csv (nsys stats), NAME.analyze.txt (nsys analyze),
           NAME.command.txt, NAME.metadata.json
"""

from __future__ import annotations

import lzma
import shutil
import subprocess
import sys
from pathlib import Path

from profiler.capture.nsys_cmd import stats_command

SIDE_FILES = ("metadata.json", "summary.json", "command.txt", "modules.json", "layer_info.json",
              "layer_info.trtexec.json", "profile.trtexec.json")


def xz(src: Path, dst: Path) -> None:
    with open(src, "rb") as fi, lzma.open(dst, "wb", preset=9 | lzma.PRESET_EXTREME) as fo:
        shutil.copyfileobj(fi, fo, 1 << 20)


def bundle_sample(run: Path, dest: Path) -> Path:
    out = dest / run.name
    out.mkdir(parents=True, exist_ok=True)
    xz(run / "trace.sqlite", out / "trace.sqlite.xz")
    for f in SIDE_FILES:
        if (run / f).exists():
            shutil.copy(run / f, out / f)
    return out


def bundle_testdata(run: Path, dest: Path, name: str, nsys: str | None = None) -> list[Path]:
    from profiler.trace.nsys_binary import find_nsys

    nsys = nsys or find_nsys()
    dest.mkdir(parents=True, exist_ok=True)
    xz(run / "trace.sqlite", dest / f"{name}.sqlite.xz")
    shutil.copy(run / "command.txt", dest / f"{name}.command.txt")
    shutil.copy(run / "metadata.json", dest / f"{name}.metadata.json")
    rep = run / "trace.nsys-rep"
    if nsys and rep.exists():
        # stats on the SQLite export itself (what worked with nsys 2025.3 on the device; same trace as the .xz)
        r = subprocess.run(stats_command(nsys, str(run / "trace.sqlite"), str(dest / name)), check=False,
                           capture_output=True,
                           text=True)
        if r.returncode != 0 or not list(dest.glob(f"{name}_*.csv")):
            print(f"nsys stats (exit {r.returncode}): {r.stdout[-2000:]}{r.stderr[-2000:]}", file=sys.stderr)
        with open(dest / f"{name}.analyze.txt", "w") as f:
            subprocess.run([nsys, "analyze", str(run / "trace.sqlite")], stdout=f, stderr=subprocess.STDOUT,
                           check=False)
    return sorted(dest.glob(f"{name}*"))


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) >= 3 and argv[0] == "sample":
        print(bundle_sample(Path(argv[1]), Path(argv[2])))
        return 0
    if len(argv) >= 4 and argv[0] == "testdata":
        for p in bundle_testdata(Path(argv[1]), Path(argv[2]), argv[3]):
            print(p)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
