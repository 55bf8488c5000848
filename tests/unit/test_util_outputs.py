"""gxo._util.outputs: the checked, atomic writer every report file goes through."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from gxo._util.outputs import check_output_path, check_output_paths, save_output, write_atomic
from gxo.errors import UsageError


def test_write_atomic_replaces_the_file_and_leaves_nothing_else(tmp_path: Path) -> None:
    target = tmp_path / "r.json"
    target.write_text("old")
    write_atomic(target, b"new")
    assert target.read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["r.json"]


def test_a_failed_rename_removes_the_temporary_file(tmp_path: Path) -> None:
    """The target became a directory after the check: the write fails, nothing is left."""
    (tmp_path / "r.json").mkdir()
    with pytest.raises(IsADirectoryError):
        write_atomic(tmp_path / "r.json", b"data")
    assert os.listdir(tmp_path) == ["r.json"]
    assert os.listdir(tmp_path / "r.json") == []


def _device(path: Path, minor: int) -> Path:
    """A private copy of a memory device (1, minor): a regression replaces it, not /dev's."""
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, minor))
    except PermissionError:
        pytest.skip("creating a device node needs CAP_MKNOD")
    return path


def test_a_device_is_written_in_place_not_replaced(tmp_path: Path) -> None:
    null, full = _device(tmp_path / "null", 3), _device(tmp_path / "full", 7)
    write_atomic(null, b"data")
    assert null.is_char_device()
    with pytest.raises(OSError, match="No space left"):
        write_atomic(full, b"data")
    assert full.is_char_device()
    assert sorted(os.listdir(tmp_path)) == ["full", "null"]


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "--report: the file name is empty"),
        (".", "--report .: is a directory"),
        ("no/such/r.json", "--report no/such/r.json: directory "),
    ],
)
def test_check_output_path_names_the_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, problem: str
) -> None:
    monkeypatch.chdir(tmp_path)
    found = check_output_path("--report", name)
    assert found is not None
    assert found.startswith(problem)


def test_check_output_paths_accepts_good_paths_and_devices(tmp_path: Path) -> None:
    check_output_paths(
        [
            ("--report", str(tmp_path / "r.json")),
            ("--html-report", None),
            ("--metrics-file", "/dev/null"),
            ("GXO_TRACES_FILE", "/dev/null"),  # a device may be shared
        ]
    )


def test_check_output_paths_refuses_one_file_twice(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="the same file as --report"):
        check_output_paths(
            [("--report", str(tmp_path / "x")), ("--metrics-file", str(tmp_path / "x"))]
        )


def test_save_output_logs_one_error_and_returns_false(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def fail() -> None:
        raise OSError(28, "No space left on device")

    with caplog.at_level(logging.ERROR, logger="gxo"):
        assert save_output("report", tmp_path / "r.json", fail) is False
        assert save_output("report", tmp_path / "r.json", lambda: None) is True
    assert [r.getMessage() for r in caplog.records] == [
        f"could not write the report to {tmp_path}/r.json: No space left on device "
        "(the run's exit code is unchanged)"
    ]
