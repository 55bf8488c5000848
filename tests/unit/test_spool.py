"""The run's spool of finished instances (gxo.journal.spool): lines back in item order, and a
spool that cannot be written loses nothing (the report must stay whole)."""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

import pytest

import gxo.journal.spool as spool_module
from gxo.journal.spool import SPOOL_NAME, InstanceSpool


def test_lines_come_back_in_item_order_whatever_order_they_ended_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spool_module, "CHUNK", 64)  # several writes, some lines in memory
    spool = InstanceSpool(str(tmp_path))
    order = [3, 0, 4, 1, 2]
    for position in order:
        spool.add("loop", position, b'{"item": %d, "pad": "%s"}' % (position, b"x" * 20))
    spool.add("single", 0, b'{"single": true}')
    assert spool.count("loop") == 5
    assert [int(line.split(b",")[0][9:]) for line in spool.lines("loop")] == [0, 1, 2, 3, 4]
    spool.close()
    assert list(spool.lines("single")) == [b'{"single": true}']
    assert list(spool.lines("unknown")) == []
    # The file: one line per instance, in the order they ended.
    written = (tmp_path / SPOOL_NAME).read_bytes().splitlines()
    assert [int(line.split(b",")[0][9:]) for line in written[:5]] == order


def test_a_spool_that_cannot_be_written_keeps_every_line_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(spool_module, "CHUNK", 40)
    real_write = os.write
    budget = [50]  # the disk fills up in the middle of a line

    def full_disk(fd: int, data: bytes | memoryview) -> int:
        if budget[0] <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        n = real_write(fd, bytes(data)[: budget[0]])
        budget[0] -= n
        return n

    monkeypatch.setattr(spool_module.os, "write", full_disk)
    spool = InstanceSpool(str(tmp_path))
    lines = [b'{"n": %d, "text": "some words"}' % i for i in range(10)]
    with caplog.at_level(logging.ERROR, logger="gxo"):
        for i, line in enumerate(lines):
            spool.add("t", i, line)
        spool.close()
    assert list(spool.lines("t")) == lines  # nothing lost: the file's part, then memory's
    assert (tmp_path / SPOOL_NAME).stat().st_size == 50
    assert "could not write the instance spool" in caplog.text
    assert caplog.text.count("could not write") == 1  # said once


def test_without_a_run_directory_the_spool_is_a_temporary_file_removed_with_it() -> None:
    spool = InstanceSpool("")
    spool.add("t", 0, b"{}")
    spool.close()
    path = spool.path
    assert os.path.exists(path)
    assert list(spool.lines("t")) == [b"{}"]
    del spool
    assert not os.path.exists(path)
