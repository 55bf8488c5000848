"""Load + validate + plan of a generated N-task playbook (target: 10,000 tasks well under 1 s).

Each task has two templated params; nine tasks in ten register a result that the next task
reads (``{{ r<i>.stdout }}``), so the graph has chains as well as independent tasks.

    python benchmarks/bench_load.py            # 2,500 / 5,000 / 10,000 / 20,000 tasks
    python benchmarks/bench_load.py 10000      # one size

Prints, per size: the first load (templates compiled cold), then the best of a few runs for
the YAML stage alone, the whole load (YAML, schema, checks, templates, cycle check; the
template compile cache is warm by then), and ``gxo.dag.analyse`` of a copy of the loaded
playbook (``gxo.dag.analyse`` of the loaded object itself reuses the loader's plan),
with the time per task so that linear scaling is visible at a glance. Run each size in its
own process for the cleanest figures.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import msgspec

from gxo.config.load import load_playbook_text
from gxo.config.problems import Problems
from gxo.config.yaml_source import parse_yaml
from gxo.dag import analyse
from gxo.dag.build import gc_paused


def generate(count: int) -> str:
    lines = [
        'schemaVersion: "v1.0.0"',
        "name: bench_load",
        "vars:",
        "  greeting: hello",
        "  hosts: [a, b, c]",
        "tasks:",
    ]
    for i in range(count):
        lines += [f"  - name: t{i}", "    type: exec"]
        if i % 10 != 9:
            lines.append(f"    register: r{i}")
        lines += ["    params:", f'      command: "echo {{{{ greeting }}}} {i}"']
        if i % 10:
            lines.append(f'      args: ["{{{{ r{i - 1}.stdout }}}}", "--n={i}"]')
        else:
            lines.append(f'      args: ["--n={i}"]')
        if i % 4 == 0:
            lines.append("    retry: {attempts: 3, delay: 500ms, backoff_factor: 2}")
        if i % 7 == 0:
            lines.append("    timeout: 1m30s")
    return "\n".join(lines) + "\n"


def best(runs: int, work: Callable[[], Any]) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def _parse(text: str) -> None:
    with gc_paused():  # as inside load_playbook_text
        parse_yaml(text, Problems("<bench>"))


def measure(count: int, runs: int = 3) -> None:
    text = generate(count)
    start = time.perf_counter()
    playbook = load_playbook_text(text, source="<bench>")
    first = time.perf_counter() - start
    parse = best(runs, lambda: _parse(text))
    load = best(runs, lambda: load_playbook_text(text, source="<bench>"))
    # A copy: analyse() would return the loader's plan for the loaded object itself.
    plan = best(runs, lambda: analyse(msgspec.structs.replace(playbook)))
    edges = len(analyse(playbook).graph.edges)
    print(
        f"{count:>6} tasks {len(text) / 1e6:5.1f} MB {edges:>6} edges | "
        f"first load {first * 1e3:7.1f} ms | yaml {parse * 1e3:6.1f} ms | "
        f"load {load * 1e3:7.1f} ms ({load / count * 1e6:5.1f} us/task) | "
        f"analyse {plan * 1e3:6.1f} ms"
    )


def main(argv: list[str]) -> int:
    sizes = [int(arg) for arg in argv] or [2_500, 5_000, 10_000, 20_000]
    for size in sizes:
        measure(size)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
