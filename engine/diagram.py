"""Human-readable descriptions of a definition, with its mermaid state diagram drawn by `transitions`."""
from transitions.extensions import GraphMachine

from engine.registry import Compiled


def mermaid(compiled: Compiled, current: str | None = None) -> str:
    """The mermaid stateDiagram for the definition, with `current` highlighted when given."""
    wf = compiled.wf
    machine = GraphMachine(model=None, states=[s.name for s in wf.states], initial=wf.initial,
                           transitions=[{"trigger": t.trigger, "source": list(t.sources), "dest": t.dest or src}
                                        for t in wf.transitions for src in t.sources],
                           auto_transitions=False, graph_engine="mermaid", title=wf.title["en"])

    class _Model:
        pass

    model = _Model()
    machine.add_model(model, initial=current or wf.initial)
    return model.get_graph().draw(None)


def describe(compiled: Compiled) -> str:
    """A plain-text listing: states (with assignee and deadline), transitions (with roles), diagram."""
    wf = compiled.wf
    lines = [f"{wf.name} v{wf.version}: {wf.title['zh']} / {wf.title['en']}",
             f"started by: {', '.join(wf.start_roles)}", "", "states:"]
    for s in wf.states:
        extra = []
        if s.final:
            extra.append("final")
        if s.assignee:
            extra.append(f"assignee: {s.assignee}")
        if s.deadline:
            ladder = "; ".join(f"{r.at}: {r.action} {r.trigger or r.to}" for r in s.deadline.ladder)
            extra.append(f"deadline: {s.deadline.due}" + (f" (ladder: {ladder})" if ladder else ""))
        if s.signing:
            extra.append(f"signing: {s.signing.policy}" + (f" {s.signing.quorum}" if s.signing.quorum else ""))
        lines.append(f"  {s.name}  {s.title['zh']} / {s.title['en']}" + (f"  [{'; '.join(extra)}]" if extra else ""))
    lines += ["", "transitions:"]
    for t in wf.transitions:
        rules = [f"roles: {', '.join(t.roles) or 'system'}"]
        if t.conditions:
            rules.append(f"if {', '.join(t.conditions)}")
        if t.unless:
            rules.append(f"unless {', '.join(t.unless)}")
        if t.not_by:
            rules.append(f"not by {', '.join(t.not_by)}")
        if t.requires_comment:
            rules.append("comment required")
        if t.signature:
            rules.append("signature")
        lines.append(f"  {t.trigger}: {', '.join(t.sources)} -> {t.dest or '(stays)'}  [{'; '.join(rules)}]")
    lines += ["", "diagram (mermaid):", mermaid(compiled)]
    return "\n".join(lines)
