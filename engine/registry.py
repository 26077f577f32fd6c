"""Loaded workflow definitions: every version of every workflow, validated, each with its state machine.

Definitions are read once per process from the modules of the `workflows` package (each exposes
`DEFINITIONS`, every version it still runs). Instances are pinned to a version, so old versions stay here.
"""
import importlib
import pkgutil
import threading
from collections import defaultdict

from transitions import Machine

from engine.definition import Transition, Workflow, validate
from engine.errors import DefinitionError, UnknownWorkflow

_lock = threading.Lock()
_compiled: dict[tuple[str, int], "Compiled"] = {}
_loaded = False


class Compiled:
    """A validated definition with its guards and hooks resolved and lookups precomputed."""

    def __init__(self, wf: Workflow, functions: dict):
        self.wf = wf
        self.functions = functions
        self.states = {s.name: s for s in wf.states}
        self.by_state_trigger: dict[tuple[str, str], list[Transition]] = defaultdict(list)
        for t in wf.transitions:
            for src in t.sources:
                self.by_state_trigger[(src, t.trigger)].append(t)
        self._local = threading.local()

    @property
    def name(self) -> str:
        return self.wf.name

    @property
    def version(self) -> int:
        return self.wf.version

    def transitions_from(self, state: str) -> list[Transition]:
        """The transitions leaving `state`, in definition order."""
        return [t for t in self.wf.transitions if state in t.sources]

    def machine(self) -> Machine:
        """This thread's `transitions` machine for the definition, built once (machines are not thread-safe)."""
        machine = getattr(self._local, "machine", None)
        if machine is None:
            machine = self._local.machine = Machine(
                model=None, states=[s.name for s in self.wf.states], initial=self.wf.initial,
                transitions=[self._machine_transition(t) for t in self.wf.transitions],
                auto_transitions=False, send_event=True, ignore_invalid_triggers=False)
        return machine

    def _machine_transition(self, t: Transition) -> dict:
        call = self._call
        return {"trigger": t.trigger, "source": list(t.sources), "dest": t.dest,
                "conditions": [call(n) for n in t.conditions], "unless": [call(n) for n in t.unless],
                "after": [call(n) for n in t.after]}

    def _call(self, name: str):
        fn = self.functions[name]
        return lambda event: fn(event.kwargs["ctx"])


def register(wf: Workflow, functions: dict | None = None) -> Compiled:
    """Validate and add one definition version; DefinitionError lists every problem."""
    functions = functions or {}
    problems = validate(wf, functions)
    if problems:
        raise DefinitionError(problems)
    compiled = Compiled(wf, functions)
    with _lock:
        _compiled[(wf.name, wf.version)] = compiled
    return compiled


def _module_definitions():
    import workflows

    for info in pkgutil.iter_modules(workflows.__path__):
        module = importlib.import_module(f"workflows.{info.name}")
        for wf in getattr(module, "DEFINITIONS", ()):
            yield wf, vars(module)


def lint() -> list[str]:
    """Problems in every definition of the workflows package (empty when all are valid)."""
    problems = []
    seen = set()
    for wf, functions in _module_definitions():
        if (wf.name, wf.version) in seen:
            problems.append(f"workflow '{wf.name}' v{wf.version}: defined twice")
        seen.add((wf.name, wf.version))
        problems.extend(validate(wf, functions))
    return problems


def load() -> None:
    """Load the workflows package once per process; raises DefinitionError if any definition is invalid."""
    global _loaded
    if _loaded:
        return
    problems = lint()
    if problems:
        raise DefinitionError(problems)
    for wf, functions in _module_definitions():
        register(wf, functions)
    _loaded = True


def get(name: str, version: int | None = None) -> Compiled:
    """A workflow by name: the given version, or the latest."""
    load()
    if version is None:
        versions = [v for (n, v) in _compiled if n == name]
        if not versions:
            raise UnknownWorkflow(f"unknown workflow '{name}'", workflow=name)
        version = max(versions)
    try:
        return _compiled[(name, version)]
    except KeyError:
        raise UnknownWorkflow(f"unknown workflow '{name}' v{version}", workflow=name) from None


def all_versions() -> list[Compiled]:
    load()
    return list(_compiled.values())


def latest() -> list[Compiled]:
    """The latest version of each workflow, by name."""
    load()
    newest: dict[str, Compiled] = {}
    for c in _compiled.values():
        if c.name not in newest or c.version > newest[c.name].version:
            newest[c.name] = c
    return sorted(newest.values(), key=lambda c: c.name)
