"""Test helpers for the capture runner without a GPU or nsys: a fake `nsys` executable."""

from __future__ import annotations

import os
import stat
import sys
import textwrap
from pathlib import Path

FAKE_NSYS = textwrap.dedent('''\
    #!{python}
    """A stand-in for nsys: `--version`, `profile --help`, and `profile ... --output=P CMD...` which runs CMD and
    writes P.nsys-rep plus a tiny P.sqlite with NVTX_EVENTS rows like nsys's export."""
    import os, sqlite3, subprocess, sys
    args = sys.argv[1:]
    if args[:1] == ["--version"]:
        print("NVIDIA Nsight Systems version 2025.3.1.90-fake"); sys.exit(0)
    if args[:1] == ["profile"] and "--help" in args:
        print("--gpu-metrics-devices=<arg>  ..."); sys.exit(0)
    if args[:1] == ["profile"]:
        out = next(a.split("=", 1)[1] for a in args if a.startswith("--output="))
        i = 1
        while args[i].startswith("-"):
            i += 1
        rc = subprocess.call(args[i:])
        if os.environ.get("FAKE_NSYS_NO_REPORT"):
            sys.exit(rc)
        open(out + ".nsys-rep", "wb").close()
        con = sqlite3.connect(out + ".sqlite")
        con.execute("create table StringIds (id integer primary key, value text)")
        con.execute("create table NVTX_EVENTS (start int, end int, eventType int, text text, textId int, domainId int)")
        con.execute("insert into StringIds values (1, 'iteration_0')")
        con.execute("insert into NVTX_EVENTS values (0, 0, 75, 'trtscope', null, 1)")
        if not os.environ.get("FAKE_NSYS_NO_RANGES"):
            con.execute("insert into NVTX_EVENTS values (1, 2, 59, null, 1, 1)")
        con.commit(); con.close()
        sys.exit(rc)
    sys.exit(0)
''')


def install_fake_nsys(folder: Path) -> Path:
    path = Path(folder) / "nsys"
    path.write_text(FAKE_NSYS.format(python=sys.executable))
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path
