"""Turn what a user gives us (a path to .sqlite, .sqlite.xz/.zst/.gz, or .nsys-rep) into a plain SQLite file.

Compressed copies are decompressed once into a cache keyed by the content hash; `.nsys-rep` reports are
exported with the `nsys` binary when one is available. The user's file is never written to.
"""

from __future__ import annotations

import gzip
import hashlib
import lzma
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from profiler.errors import TraceError

SQLITE_MAGIC = b"SQLite format 3\x00"
XZ_MAGIC = b"\xfd7zXZ\x00"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
GZIP_MAGIC = b"\x1f\x8b"

_CHUNK = 1 << 20


def cache_dir() -> Path:
    """Where decompressed and exported traces are kept (env TRTSCOPE_CACHE, else the user's cache dir)."""
    root = os.environ.get("TRTSCOPE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache"), "trtscope"
    )
    path = Path(root) / "traces"
    path.mkdir(parents=True, exist_ok=True)
    return path


def file_digest(path: Path) -> str:
    """SHA-256 of a file's content, hex (streamed; used as cache and store key)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def sniff(path: Path) -> str:
    """The kind of file by its first bytes: 'sqlite', 'xz', 'zst', 'gz', 'nsys-rep' or 'unknown'."""
    with open(path, "rb") as f:
        head = f.read(16)
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if head.startswith(XZ_MAGIC):
        return "xz"
    if head.startswith(ZSTD_MAGIC):
        return "zst"
    if head.startswith(GZIP_MAGIC):
        return "gz"
    if path.suffix == ".nsys-rep" or path.suffix == ".qdrep":
        return "nsys-rep"
    return "unknown"


def check_sqlite_complete(path: Path) -> None:
    """Raise TraceError if the SQLite file is shorter than its header says (a truncated copy or upload)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        header = f.read(100)
    if len(header) < 100 or not header.startswith(SQLITE_MAGIC):
        raise TraceError(f"{path.name}: not a SQLite database (bad header)")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    change_counter = int.from_bytes(header[24:28], "big")
    valid_for = int.from_bytes(header[92:96], "big")
    if pages and change_counter == valid_for and size < pages * page_size:
        raise TraceError(
            f"{path.name}: truncated SQLite file ({size} of {pages * page_size} bytes); copy or upload it again"
        )
    if size % page_size:
        raise TraceError(f"{path.name}: truncated SQLite file (size {size} is not a whole number of pages)")


def _decompress(src: Path, kind: str, dst: Path) -> None:
    if kind == "xz":
        opener = lzma.open
    elif kind == "gz":
        opener = gzip.open
    else:
        import zstandard

        def opener(p, mode):  # noqa: ARG001 - same signature as lzma.open
            return zstandard.ZstdDecompressor().stream_reader(open(p, "rb"), closefd=True)

    tmp = dst.with_suffix(f".tmp{os.getpid()}")
    try:
        with opener(src, "rb") as fin, open(tmp, "wb") as fout:
            shutil.copyfileobj(fin, fout, _CHUNK)
        os.replace(tmp, dst)
    except (lzma.LZMAError, OSError, EOFError, ValueError) as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno is not None:
            raise
        raise TraceError(f"{src.name}: cannot decompress ({kind}): {exc}; the file may be truncated") from None
    except Exception as exc:  # zstandard raises its own ZstdError
        tmp.unlink(missing_ok=True)
        raise TraceError(f"{src.name}: cannot decompress ({kind}): {exc}; the file may be truncated") from None


def export_nsys_rep(rep: Path, dst: Path) -> None:
    """Export an .nsys-rep report to SQLite with the nsys binary (raises TraceError when none is found)."""
    from profiler.trace.nsys_binary import find_nsys, nsys_install_hint

    nsys = find_nsys()
    if not nsys:
        raise TraceError(f"{rep.name}: reading .nsys-rep needs Nsight Systems; {nsys_install_hint()}")
    with tempfile.TemporaryDirectory(dir=dst.parent) as tmpdir:
        out = Path(tmpdir) / "export.sqlite"
        proc = subprocess.run(
            [nsys, "export", "--type", "sqlite", "--force-overwrite", "true", "-o", str(out), str(rep)],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0 or not out.exists():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise TraceError(f"{rep.name}: nsys export failed: {tail[0]}")
        os.replace(out, dst)


def resolve_trace(path: str | os.PathLike) -> Path:
    """Return a path to a complete, plain SQLite nsys export for `path`, decompressing or exporting once."""
    src = Path(path)
    if not src.exists():
        raise TraceError(f"{src}: no such file")
    if not src.is_file():
        raise TraceError(f"{src}: not a file")
    if src.stat().st_size == 0:
        raise TraceError(f"{src.name}: empty file")
    kind = sniff(src)
    if kind == "sqlite":
        check_sqlite_complete(src)
        return src
    if kind == "unknown":
        raise TraceError(
            f"{src.name}: not an nsys export (expected .sqlite, .sqlite.xz/.zst/.gz or .nsys-rep)"
        )
    dst = cache_dir() / f"{file_digest(src)[:32]}.sqlite"
    if not dst.exists():
        if kind == "nsys-rep":
            export_nsys_rep(src, dst)
        else:
            _decompress(src, kind, dst)
    if sniff(dst) != "sqlite":
        dst.unlink(missing_ok=True)
        raise TraceError(f"{src.name}: the decompressed content is not a SQLite nsys export")
    check_sqlite_complete(dst)
    return dst
