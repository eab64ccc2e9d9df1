"""NVTX ranges of the harness, in a domain of our own (`trtscope`).

Conventions the trace analysis relies on (see docs/capture.md):
- `iteration_<i>` (push/pop) per measured iteration; inside it `preprocess`, `inference`, `postprocess`
  (push/pop, same thread, same domain);
- per-layer: one push/pop range per executed leaf module, text = module path (e.g. `layer1.0.conv1`), inside
  `inference`, same domain; or PyTorch's own `emit_nvtx` ranges (default domain); or none.

The domain and its registered strings are created lazily, after the capture range has started, so every
string the trace needs is registered inside the capture. Without an NVTX tool attached (no nsys) the `nvtx`
package hands out a dummy domain and the calls cost only Python overhead.
"""

from __future__ import annotations

from typing import Callable, Iterable, Optional


class _NoNvtx:
    """Stand-in when the `nvtx` package is missing: ranges do nothing."""

    def get_event_attributes(self, message=None, **_):
        return None

    def push_range(self, attributes=None, **_):
        pass

    def pop_range(self):
        pass


class Ranges:
    def __init__(self, domain_name: str = "trtscope", enabled: bool = True):
        self.domain_name = domain_name
        self.enabled = enabled
        self._domain = None
        self._attrs: dict[str, object] = {}
        self.available = True
        try:
            import nvtx  # noqa: F401
        except ImportError:
            self.available = False

    # domain and attributes are created on first use ------------------------------------------------------------
    @property
    def domain(self):
        if self._domain is None:
            if self.available:
                import nvtx

                self._domain = nvtx.get_domain(self.domain_name)
            else:
                self._domain = _NoNvtx()
        return self._domain

    def attr(self, text: str):
        a = self._attrs.get(text)
        if a is None:
            a = self.domain.get_event_attributes(message=text)
            self._attrs[text] = a
        return a

    def register(self, texts: Iterable[str]) -> None:
        """Create the domain and register these strings now (call right after the capture range starts)."""
        for t in texts:
            self.attr(t)

    @property
    def recording(self) -> bool:
        """True when an NVTX tool (nsys) is attached and records our domain."""
        return self.available and type(self.domain).__name__ == "Domain"

    def push(self, text: str) -> None:
        if self.enabled:
            self.domain.push_range(self.attr(text))

    def pop(self) -> None:
        if self.enabled:
            self.domain.pop_range()


class LeafRanges:
    """One NVTX push/pop range per leaf module, text = module path.

    The range opens before and closes after the module's forward (what a forward pre-hook / forward hook pair
    does), implemented by wrapping the instance's `forward`: PyTorch's hook machinery costs ~3 us per call on
    the host, the wrapper ~0.1 us, which matters for launch-bound models (harness overhead, docs/capture.md)."""

    def __init__(self, ranges: Ranges, modules: dict):
        # modules: {path: nn.Module}; only these get ranges
        self.ranges = ranges
        self.modules = modules
        self._saved: list = []

    def names(self) -> list[str]:
        return list(self.modules)

    @property
    def installed(self) -> bool:
        return bool(self._saved)

    def install(self) -> None:
        if self._saved:
            return
        domain = self.ranges.domain
        for name, mod in self.modules.items():
            had = "forward" in mod.__dict__
            self._saved.append((mod, had, mod.__dict__.get("forward")))
            mod.forward = _ranged_forward(mod.forward, domain.push_range, domain.pop_range, self.ranges.attr(name))

    def remove(self) -> None:
        for mod, had, fwd in reversed(self._saved):
            if had:
                mod.forward = fwd
            else:
                mod.__dict__.pop("forward", None)
        self._saved = []


def _ranged_forward(forward: Callable, push: Callable, pop: Callable, attr) -> Callable:
    def ranged(*args, **kwargs):
        push(attr)
        try:
            return forward(*args, **kwargs)
        finally:
            pop()

    return ranged


def executed_leaf_modules(model, run_once: Callable[[], object]) -> tuple[dict, list[dict]]:
    """Run the model once with a recording wrapper around every module's `forward`; return ({path: module} of the
    executed leaves in first-call order, [call records in execution order]).

    A leaf here is a module that ran while none of its descendants ran: modules with no children, and also
    modules whose children are bypassed (nn.MultiheadAttention reads out_proj's weights directly; PyTorch's fast
    path for TransformerEncoderLayer runs the whole layer as one op). Recording wraps `forward` exactly as
    `LeafRanges` does, never with forward hooks: PyTorch turns the TransformerEncoderLayer fast path off when a
    module has hooks, so hooks would record another execution than the one that is measured."""
    import torch

    by_module = {}
    for name, mod in model.named_modules():
        if name:
            by_module.setdefault(id(mod), name)
    stack: list[str] = []
    calls: list[dict] = []
    ran_children: dict[str, bool] = {}
    saved = []

    def recording(name, mod, forward):
        def ranged(*args, **kwargs):
            if stack:
                ran_children[stack[-1]] = True
            stack.append(name)
            call = {"name": name, "module": mod, "inputs": _shapes((args, kwargs)), "outputs": None,
                    "dtype": _first_dtype((args, kwargs))}
            call["_index"] = len(calls)
            calls.append(call)
            try:
                out = forward(*args, **kwargs)
            finally:
                stack.pop()
            call["outputs"] = _shapes(out)
            return out

        return ranged

    seen = set()
    for mod in model.modules():
        name = by_module.get(id(mod))
        if name is None or id(mod) in seen:
            continue
        seen.add(id(mod))
        had = "forward" in mod.__dict__
        saved.append((mod, had, mod.__dict__.get("forward")))
        mod.forward = recording(name, mod, mod.forward)
    try:
        with torch.inference_mode():
            run_once()
    finally:
        for mod, had, fwd in reversed(saved):
            if had:
                mod.forward = fwd
            else:
                mod.__dict__.pop("forward", None)
    leaves: dict = {}
    leaf_calls = []
    for c in calls:
        if not ran_children.get(c["name"], False):
            leaves.setdefault(c["name"], c["module"])
            leaf_calls.append(c)
    return leaves, leaf_calls


def _shapes(obj) -> list:
    import torch

    out = []

    def walk(o):
        if isinstance(o, torch.Tensor):
            out.append(list(o.shape))
        elif isinstance(o, (list, tuple)):
            for x in o:
                walk(x)
        elif isinstance(o, dict):
            for x in o.values():
                walk(x)

    walk(obj)
    return out


def _first_dtype(obj) -> Optional[str]:
    import torch

    def walk(o):
        if isinstance(o, torch.Tensor):
            return str(o.dtype).replace("torch.", "")
        if isinstance(o, (list, tuple)):
            for x in o:
                r = walk(x)
                if r:
                    return r
        if isinstance(o, dict):
            for x in o.values():
                r = walk(x)
                if r:
                    return r
        return None

    return walk(obj)
