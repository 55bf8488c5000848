"""A secret that a bound on output cuts in two shows no part of itself.

gxo keeps pieces of a command's output: the last line of stderr in the error (500 characters),
the tail lines of the report and the FAILED line (4 KiB, a longer line keeps its end), the
summary's ``stdout`` (the last 64 KiB) and the log file (up to ``output_capture``). Each piece
was cut from the raw output and masked afterwards, so a value the cut went through kept its
first or last characters (``[...]3cretValue``), which no match finds. Each offset below puts
the cut at another place inside the value; no 4 characters of it may show anywhere.
"""

from __future__ import annotations

from pathlib import Path

from secrets_support import RunGxo

from gxo.secrets import REDACTED

VALUE = "Qz7kWv3Pxq9Jm2Rt"
#: Every piece of the value long enough to say something about it.
PIECES = {VALUE[i : i + 4] for i in range(len(VALUE) - 3)}
OFFSETS = [2, 5, 8, 11, 14]

# Each program writes a line whose cut (by the bound named in its task) falls OFFSET
# characters into the value: python3 -c PROGRAM VALUE OFFSET.
LAST_LINE = (
    "import sys; s, k = sys.argv[1], int(sys.argv[2]); "
    "sys.stderr.write('A' * (500 - k) + s + 'B' * 10 + '\\n'); sys.exit(1)"
)
TAIL_LINE = (
    "import sys; s, k = sys.argv[1], int(sys.argv[2]); "
    "print('A' * 5000 + s[:k] + s[k:] + 'B' * (4096 - len(s) + k)); sys.exit(1)"
)
SUMMARY = (
    "import sys; s, k = sys.argv[1], int(sys.argv[2]); "
    "sys.stdout.write('A' * 70000 + s + 'B' * (65536 - len(s) + k))"
)
CAPPED = "import sys; s, k = sys.argv[1], int(sys.argv[2]); print('A' * (1024 - k) + s + 'B' * 100)"


def task(name: str, program: str, register: str = "") -> str:
    reg = f"    register: {register}\n" if register else ""
    return (
        f"  - name: {name}\n"
        "    type: exec\n"
        f"    loop: {OFFSETS}\n"
        f"{reg}"
        "    params:\n"
        "      command: python3\n"
        f'      args: [-c, {program!r}, "{{{{ secret(\'TOKEN\') }}}}", "{{{{ item }}}}"]\n'
    )


PLAYBOOK = (
    'schemaVersion: "v1.0.0"\nname: cut\noutput_capture: 1KiB\ntasks:\n'
    + task("last-line", LAST_LINE)
    + task("tail-line", TAIL_LINE)
    + task("summary", SUMMARY, register="big")
    + task("capped", CAPPED)
)


def test_no_part_of_a_value_survives_a_cut(run_gxo: RunGxo, tmp_path: Path) -> None:
    (tmp_path / "cut.yaml").write_text(PLAYBOOK)
    done = run_gxo(
        "execute",
        "cut.yaml",
        "--report",
        "r.json",
        "--junit",
        "j.xml",
        "--html-report",
        "r.html",
        "--state-out",
        "state.json",
        "--state-dir",
        "state",
        env={"TOKEN": VALUE},
    )
    assert done.returncode == 1, done.stderr  # last-line and tail-line exit 1
    sinks = {"stdout": done.stdout, "stderr": done.stderr}
    for path in tmp_path.rglob("*"):
        if path.is_file() and path.name != "cut.yaml":
            sinks[str(path.relative_to(tmp_path))] = path.read_text(errors="replace")
    logs = [name for name in sinks if name.endswith(".stdout")]
    assert len(logs) >= 3 * len(OFFSETS), sorted(sinks)  # the log files were checked too
    leaked = {name: sorted(p for p in PIECES if p in text) for name, text in sinks.items()}
    assert not {name: found for name, found in leaked.items() if found}
    assert "| [...]BBBB" in done.stderr  # the FAILED lines show the cut tail lines
    # What is not cut is still masked whole, and the rest of the output is kept.
    assert f"A{REDACTED}B" in sinks["r.json"]
    assert "AAAA" in sinks["r.json"]
