"""The flows as a Mermaid state diagram (`python -m bot graph`), drawn from the running machine.

The engine's machine is a `MarkupMachine`: its markup lists the states and the
transitions it was built with. This module hands that markup, grouped by flow, to
transitions' own diagram support (`HierarchicalGraphMachine` with the Mermaid
engine, no Graphviz), so the picture shows exactly what runs: a state added in YAML
is a state of the machine, hence of the diagram.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from transitions.extensions.diagrams import HierarchicalGraphMachine
from transitions.extensions.nesting import NestedState

from bot.spec.model import DialogSpec

if TYPE_CHECKING:
    from bot.engine.engine import Engine


class _FlowState(NestedState):
    separator = "."  # the engine names states "flow.state"


class _Drawing(HierarchicalGraphMachine):
    state_cls = _FlowState


class _Sheet:
    """The drawing machine's one model (the engine's machine has none)."""


def machine_markup(engine: Engine) -> dict[str, Any]:
    """The engine machine's own description: states (with `final`) and `next` transitions."""
    markup: Any = engine.machine.get_markup_config()  # a TypedDict in the library's stubs
    return dict(markup)


def mermaid(source: DialogSpec | Engine, only_flow: str | None = None) -> str:
    """A Mermaid `stateDiagram-v2`: one composite state per flow, transitions labelled
    `next [condition]`, end states marked final. `only_flow` keeps one flow and the
    states its jumps lead to."""
    from bot.engine.engine import SEPARATOR, Engine

    engine = source if isinstance(source, Engine) else Engine(source)
    markup = machine_markup(engine)
    transitions = [
        {key: t[key] for key in ("trigger", "source", "dest", "conditions") if key in t}
        for t in markup["transitions"]
        if only_flow is None or t["source"].split(SEPARATOR, 1)[0] == only_flow
    ]
    shown = {t["source"] for t in transitions} | {t["dest"] for t in transitions}
    flows: dict[str, list[dict[str, Any]]] = {}
    for state in markup["states"]:
        flow, name = state["name"].split(SEPARATOR, 1)
        if only_flow is None or flow == only_flow or state["name"] in shown:
            flows.setdefault(flow, []).append({"name": name, "final": bool(state.get("final"))})
    first = only_flow or engine.spec.entry_flow
    flows = {first: flows.pop(first, []), **flows}  # the flow drawn first is where it starts
    starts = {flow.name: flow.start for flow in engine.spec.flows.values()}
    states = [
        {"name": flow, "children": children, "initial": starts[flow]}
        if any(child["name"] == starts[flow] for child in children)
        else {"name": flow, "children": children}
        for flow, children in flows.items()
    ]
    sheet = _Sheet()
    _Drawing(
        model=sheet,
        states=states,
        transitions=transitions,
        initial=first,
        auto_transitions=False,
        graph_engine="mermaid",
        show_conditions=True,
        title=f"Overdue Advisor: {only_flow or 'all flows'}",
    )
    graph: Any = sheet.get_graph()  # type: ignore[attr-defined]  # added by the library
    return str(graph.source)
