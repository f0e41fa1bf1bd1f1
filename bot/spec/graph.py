"""The flows as a Mermaid flowchart (`python -m bot graph`), for operators to see the shape."""

from __future__ import annotations

from bot.spec.model import DialogSpec


def _node(flow: str, state: str) -> str:
    return f"{flow}__{state}".replace("-", "_")


def mermaid(spec: DialogSpec, only_flow: str | None = None) -> str:
    """A `flowchart TD` with one subgraph per flow; questions are rounded, ends are stadiums."""
    lines = ["flowchart TD"]
    for flow in spec.flows.values():
        if only_flow and flow.name != only_flow:
            continue
        lines.append(f"  subgraph {flow.name}")
        for state in flow.states.values():
            shape = ("([", "])") if state.end else ("(", ")") if state.is_question else ("[", "]")
            lines.append(f'    {_node(flow.name, state.name)}{shape[0]}"{state.name}"{shape[1]}')
        lines.append("  end")
        for state in flow.states.values():
            for branch in state.branches:
                target = branch.target
                if target.startswith("@"):
                    other = spec.flows[target[1:]]
                    node = _node(other.name, other.start)
                else:
                    node = _node(flow.name, target)
                condition = branch.when.source.replace('"', "'") if branch.when else ""
                label = f'|"{condition}"|' if condition else ""
                lines.append(f"  {_node(flow.name, state.name)} -->{label} {node}")
    return "\n".join(lines)
