"""gxo.dag.select: targets, tags and skips -> which tasks run and why the others do not."""

from __future__ import annotations

import pytest

from gxo.config import Playbook
from gxo.config.load import load_playbook_text
from gxo.dag import analyse
from gxo.dag.select import Selection, select_tasks
from gxo.errors import UsageError

HEAD = 'schemaVersion: "v1.0.0"\nname: test\nvars: {v: 1}\n'

#: fetch -> compile (register) -> test (depends_on) ; lint (tags) ; report reads test's status
#: producer => consumer (stream) ; docs unrelated.
BODY = """tasks:
  - {name: fetch, type: x, register: src, tags: [build]}
  - {name: compile, type: x, register: bin, params: {p: "{{ src }}"}, tags: [build]}
  - {name: test, type: x, depends_on: [compile], tags: [check]}
  - {name: lint, type: x, tags: [check, slow]}
  - {name: report, type: x, when: "{{ _gxo.tasks.test.status == 'Completed' }}"}
  - {name: producer, type: x}
  - {name: consumer, type: x, stream_inputs: [producer], register: rows}
  - {name: summary, type: x, params: {p: "{{ rows }}"}}
  - {name: docs, type: x}
"""


def load(body: str = BODY) -> Playbook:
    return load_playbook_text(HEAD + body)


def run(body: str = BODY, **options: object) -> Selection:
    playbook = load(body)
    return select_tasks(playbook, analyse(playbook).graph, **options)  # type: ignore[arg-type]


def running(selection: Selection, body: str = BODY) -> list[str]:
    return [t.name for t in load(body).tasks if selection.runs(t.name)]


def test_no_options_selects_everything() -> None:
    selection = run()
    assert not selection.partial
    assert running(selection) == [t.name for t in load().tasks]


def test_target_pulls_in_its_upstream_over_depends_on_and_register_edges() -> None:
    selection = run(targets=["test"])
    assert running(selection) == ["fetch", "compile", "test"]
    assert selection.skipped["docs"] == "not_selected"
    assert selection.why["docs"] == "not a target, and no target needs it"


def test_status_edge_is_followed_upstream() -> None:
    assert running(run(targets=["report"])) == ["fetch", "compile", "test", "report"]


def test_stream_edge_selects_the_whole_stream_group_and_what_it_needs() -> None:
    assert running(run(targets=["producer"])) == ["producer", "consumer"]
    assert running(run(targets=["summary"])) == ["producer", "consumer", "summary"]


def test_tags_select_tagged_tasks_and_their_upstream() -> None:
    assert running(run(tags=["check"])) == ["fetch", "compile", "test", "lint"]
    assert running(run(tags=["slow"], targets=["docs"])) == ["lint", "docs"]


def test_glob_target() -> None:
    assert running(run(targets=["*sum*"])) == ["producer", "consumer", "summary"]


def test_skip_removes_a_task_and_a_register_reader_is_upstream_not_selected() -> None:
    selection = run(skip=["fetch"])
    assert selection.skipped["fetch"] == "not_selected"
    assert selection.why["fetch"] == "removed by --skip/--skip-tags"
    assert selection.skipped["compile"] == "upstream_not_selected"
    assert "reads the register of 'fetch'" in selection.why["compile"]
    # test only depends_on compile (not its data): a Skipped upstream releases it.
    assert selection.runs("test")
    assert selection.runs("report")


def test_a_restorable_register_lets_the_reader_run_and_is_to_be_restored() -> None:
    selection = run(skip=["fetch"], restorable={"fetch"})
    assert selection.runs("compile")
    assert selection.restore == frozenset({"fetch"})


def test_upstream_not_selected_propagates_through_data_edges() -> None:
    body = BODY + '  - {name: final, type: x, params: {p: "{{ bin }}"}}\n'
    selection = run(body, skip=["fetch"])
    assert selection.skipped["final"] == "upstream_not_selected"
    assert "'compile', which does not run" in selection.why["final"]


def test_skipping_a_stream_group_member_skips_the_whole_group() -> None:
    selection = run(skip=["consumer"])
    assert selection.skipped["consumer"] == "not_selected"
    assert selection.skipped["producer"] == "upstream_not_selected"
    assert "streams to 'consumer'" in selection.why["producer"]
    assert selection.skipped["summary"] == "upstream_not_selected"


def test_skip_tags_remove_every_tagged_task_even_when_a_target_needs_it() -> None:
    selection = run(targets=["test"], skip_tags=["build"])
    assert running(selection) == ["test"]
    assert selection.skipped["compile"] == "not_selected"


def test_skip_does_not_pull_in_what_only_the_skipped_task_needed() -> None:
    assert running(run(targets=["compile"], skip=["compile"])) == []


def test_restore_lists_only_registers_a_running_task_reads() -> None:
    selection = run(targets=["docs"], restorable={"fetch", "compile"})
    assert selection.restore == frozenset()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"targets": ["compil"]}, "no task named 'compil' in the playbook; did you mean compile"),
        ({"targets": ["zzz"]}, "`gxo list PLAYBOOK` lists them"),
        ({"targets": ["z*"]}, "'z*' matches no task"),
        (
            {"tags": ["nope"]},
            "no task has the tag 'nope' (tags in the playbook: build, check, slow)",
        ),
        ({"skip_tags": ["nope"]}, "no task has the tag 'nope'"),
        ({"skip": ["q*"]}, "--skip 'q*' matches no task"),
    ],
)
def test_bad_selection_is_a_usage_error(options: dict[str, list[str]], message: str) -> None:
    with pytest.raises(UsageError) as caught:
        run(**options)  # type: ignore[arg-type]
    assert message in str(caught.value)


def test_tags_load_from_the_playbook() -> None:
    assert load().task("lint").tags == ("check", "slow")
