"""`python -m bot graph` draws the machine the engine runs, so the picture cannot drift."""

from __future__ import annotations

import re
from pathlib import Path

from bot.engine.engine import Engine
from bot.spec.graph import mermaid
from bot.spec.loader import load_dialogs
from tests.support.cli import run_bot

_STATE = re.compile(r'^\s*state "[^"]+" as (\S+)$', re.MULTILINE)
_EDGE = re.compile(r"^\s*(\S+) --> (\S+): (.*)$", re.MULTILINE)


def _machine_edges(engine: Engine) -> set[tuple[str, str, str]]:
    """Every `next` transition of the running machine, as the diagram should label it."""
    edges = set()
    for source, transitions in engine.machine.events["next"].transitions.items():
        for transition in transitions:
            names = [getattr(c.func, "__name__", "") for c in transition.conditions]
            label = "next" + (f" [{' & '.join(names)}]" if names else "")
            edges.add((source, transition.dest, label))
    return edges


def _drawn_edges(diagram: str) -> set[tuple[str, str, str]]:
    edges = set()
    for source, dest, labels in _EDGE.findall(diagram):
        for label in labels.split(" | "):  # the library joins parallel edges' labels
            edges.add((source, dest, label))
    return edges


def test_the_diagram_is_the_machine(engine: Engine) -> None:
    diagram = mermaid(engine)
    leaves = {name for name in _STATE.findall(diagram) if "." in name}
    assert leaves == set(engine.machine.states)
    assert _drawn_edges(diagram) == _machine_edges(engine)
    # a condition is drawn as written in YAML; an end state is marked final
    assert "start.role --> cardholder.product: next [role == 'cardholder']" in diagram
    finals = {name for name, state in engine.machine.states.items() if state.final}
    assert finals == {
        f"{flow.name}.{state.name}"
        for flow in engine.spec.flows.values()
        for state in flow.states.values()
        if state.end
    }
    assert finals and all(f"{name} --> [*]" in diagram for name in finals)


def test_a_state_added_in_yaml_appears_in_the_diagram(dialogs_copy: Path) -> None:
    start = dialogs_copy / "start.yaml"
    text = start.read_text(encoding="utf-8")
    assert "    next: role\n" in text
    text = text.replace(
        "    next: role\n",
        '    next: privacy\n  privacy:\n    say: ["I keep only your answers, never your words."]\n    next: role\n',
        1,
    )
    start.write_text(text, encoding="utf-8")
    engine = Engine(load_dialogs(dialogs_copy))
    diagram = mermaid(engine, "start")
    assert 'state "privacy" as start.privacy' in diagram
    assert "start.welcome --> start.privacy: next" in diagram
    assert "start.privacy --> start.role: next" in diagram
    assert "start.welcome --> start.role" not in diagram
    assert "start.privacy" in engine.machine.states


def test_one_flow_shows_where_its_jumps_lead(engine: Engine) -> None:
    diagram = mermaid(engine.spec, "start")
    assert set(_STATE.findall(diagram)) >= {"start.welcome", "start.role", "cardholder.product", "staff.cause"}
    assert "cardholder.numbers" not in diagram  # the other flows' inner states are left out


def test_graph_command_prints_mermaid() -> None:
    result = run_bot("graph", "--flow", "start")
    assert result.returncode == 0, result.stderr
    assert "stateDiagram-v2" in result.stdout
    assert "start.welcome --> start.role: next" in result.stdout
