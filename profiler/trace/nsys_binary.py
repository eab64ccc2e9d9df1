"""Finding the Nsight Systems command-line tool (`nsys`).

Looked for, in order: the `NSYS` environment variable (a path to the binary, or to a folder holding it), `nsys` on
PATH, the standard install folders of Nsight Systems (`/opt/nvidia/nsight-systems/*/bin`, the CUDA toolkit's copy)
and the full copy that ships inside Nsight Compute (`/opt/nvidia/nsight-compute/*/host/target-linux-x64`).
Newest version first where several are installed.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess

# Folders searched after NSYS and PATH; globs, each may match several versions.
STANDARD_GLOBS = (
    "/opt/nvidia/nsight-systems/*/bin",
    "/opt/nvidia/nsight-systems-cli/*/bin",
    "/usr/local/cuda/bin",
    "/usr/local/cuda-*/bin",
    "/usr/local/cuda/nsight-systems-*/bin",
    "/usr/local/cuda-*/nsight-systems-*/bin",
    "/opt/nvidia/nsight-compute/*/host/target-linux-x64",
    "/usr/local/cuda/nsight-compute-*/host/target-linux-x64",
    "/usr/local/cuda-*/nsight-compute-*/host/target-linux-x64",
)


def _version_key(path: str) -> tuple:
    """Sort key: the numbers in the path (e.g. 2025.3.1), so newer installs come first when sorted in reverse."""
    return tuple(int(n) for n in re.findall(r"\d+", path))


def _executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def candidate_paths(env: dict | None = None) -> list[str]:
    """Every place find_nsys looks, in order (for messages and tests)."""
    env = os.environ if env is None else env
    out: list[str] = []
    given = env.get("NSYS", "").strip()
    if given:
        out.append(os.path.join(given, "nsys") if os.path.isdir(given) else given)
    on_path = shutil.which("nsys", path=env.get("PATH"))
    if on_path:
        out.append(on_path)
    for pattern in STANDARD_GLOBS:
        for folder in sorted(glob.glob(pattern), key=_version_key, reverse=True):
            out.append(os.path.join(folder, "nsys"))
    return out


def find_nsys(env: dict | None = None) -> str | None:
    """Path of a usable `nsys` binary, or None. An explicit NSYS that points nowhere is not silently skipped:
    it yields None so the caller reports it (see nsys_install_hint)."""
    env = os.environ if env is None else env
    given = env.get("NSYS", "").strip()
    if given:
        path = os.path.join(given, "nsys") if os.path.isdir(given) else given
        return path if _executable(path) else None
    for path in candidate_paths(env):
        if _executable(path):
            return path
    return None


def nsys_install_hint(env: dict | None = None) -> str:
    """One line saying how to get nsys or point trtscope at it."""
    env = os.environ if env is None else env
    given = env.get("NSYS", "").strip()
    if given:
        return (f"NSYS={given} is not an executable nsys; set NSYS to the nsys binary "
                "(e.g. /opt/nvidia/nsight-systems/2025.3.1/bin/nsys) or unset it")
    return ("no Nsight Systems CLI (nsys) found: install it (https://developer.nvidia.com/nsight-systems, or the "
            "'nsight-systems-cli' package from NVIDIA's CUDA apt repository), or set NSYS=/path/to/nsys; also "
            "searched PATH, /opt/nvidia/nsight-systems/*/bin and Nsight Compute's "
            "/opt/nvidia/nsight-compute/*/host/target-linux-x64")


def nsys_version(nsys: str, timeout: float = 60) -> str | None:
    """The version string `nsys --version` prints (e.g. 'NVIDIA Nsight Systems version 2025.3.1.90-...'), or None."""
    try:
        out = subprocess.run([nsys, "--version"], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return None
    text = (out.stdout or out.stderr or "").strip()
    return text.splitlines()[-1].strip() if text else None


def parse_nsys_version(text: str | None) -> tuple[int, ...] | None:
    """(2025, 3, 1, 90) from 'NVIDIA Nsight Systems version 2025.3.1.90-253135822126v0'."""
    if not text:
        return None
    m = re.search(r"(\d{4})\.(\d+)(?:\.(\d+))?(?:\.(\d+))?", text)
    if not m:
        return None
    return tuple(int(g) for g in m.groups() if g is not None)
