"""Task graphs on networkx: build from a spec, validate before anything runs, resolve ``$ref`` inputs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import networkx as nx

from orchestrator.spec import GraphSpec, TaskSpec, find_refs, parse_ref

__all__ = ["GraphError", "TaskGraph", "resolve_input"]


class GraphError(ValueError):
    """The graph cannot run: a cycle, an unbound reference, a duplicate id, or a skill nobody serves."""


class TaskGraph:
    """A validated DAG of tasks: ``graph.tasks[id]`` is the spec, edges run from producer to consumer."""

    def __init__(self, spec: GraphSpec) -> None:
        self.spec = spec
        self.tasks: dict[str, TaskSpec] = {}
        self.dag: nx.DiGraph = nx.DiGraph()
        problems: list[str] = []
        for task in spec.tasks:
            if task.id in self.tasks:
                problems.append(f"task id {task.id!r} is used twice; ids must be unique")
            self.tasks[task.id] = task
            self.dag.add_node(task.id)
        for task in spec.tasks:
            try:
                refs = find_refs(task.input)
            except ValueError as exc:
                problems.append(f"task {task.id!r}: {exc}")
                continue
            for ref in refs:
                if ref.task not in self.tasks:
                    problems.append(f"task {task.id!r} references {ref.task!r}, which is not in the graph")
                elif ref.task == task.id:
                    problems.append(f"task {task.id!r} references its own output")
                else:
                    self.dag.add_edge(ref.task, task.id)
        for task_id, before in spec.after.items():
            for first in before:
                if task_id not in self.tasks or first not in self.tasks:
                    problems.append(f"'after' names unknown task {task_id if task_id not in self.tasks else first!r}")
                else:
                    self.dag.add_edge(first, task_id)
        if not problems and not nx.is_directed_acyclic_graph(self.dag):
            cycle = nx.find_cycle(self.dag)
            path = " -> ".join([edge[0] for edge in cycle] + [cycle[0][0]])
            problems.append(f"the graph has a cycle: {path}; a task cannot wait on its own output")
        if problems:
            raise GraphError("invalid task graph: " + "; ".join(problems[:10]))

    def check_served(self, is_served: Callable[[TaskSpec], bool]) -> None:
        """Raise GraphError naming every task whose capability no registered agent offers (one question per
        distinct need: a thousand tasks needing the same skill ask the registry once)."""
        verdicts: dict[tuple[Any, ...], bool] = {}
        missing = []
        for task in self.tasks.values():
            need = (task.skill, tuple(task.tags), task.text, tuple(task.constraints.model_dump().values()))
            served = verdicts.get(need)
            if served is None:
                served = verdicts[need] = is_served(task)
            if not served:
                missing.append(task)
        if missing:
            names = ", ".join(f"{t.id!r} ({_need(t)})" for t in missing[:10])
            raise GraphError(f"no healthy agent serves: {names}; register one, or fix the skill name")

    def order(self) -> list[str]:
        """Task ids in a topological order (producers before consumers)."""
        return list(nx.topological_sort(self.dag))

    def predecessors(self, task_id: str) -> list[str]:
        return list(self.dag.predecessors(task_id))

    def successors(self, task_id: str) -> list[str]:
        return list(self.dag.successors(task_id))


def _need(task: TaskSpec) -> str:
    if task.skill:
        return f"skill {task.skill!r}"
    return f"tags {task.tags}" if task.tags else f"text {task.text!r}"


def resolve_input(value: Any, outputs: Mapping[str, Any]) -> Any:
    """``value`` with every ``$ref`` replaced by the referenced output (or the part its path names)."""
    ref = parse_ref(value)
    if ref is not None:
        current = outputs[ref.task]
        for i, key in enumerate(ref.path):
            try:
                current = current[int(key)] if isinstance(current, list) else current[key]
            except (KeyError, IndexError, ValueError, TypeError):
                where = ".".join(ref.path[: i + 1])
                raise GraphError(f"output of {ref.task!r} has no {where!r} (reference {value['$ref']!r})") from None
        return current
    if isinstance(value, dict):
        return {k: resolve_input(v, outputs) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_input(v, outputs) for v in value]
    return value
