"""Parsers that may crash run in a child process: a crash is one call's error, and the next call works."""

from __future__ import annotations

import ctypes
import os

import pytest

from hyperface.data.sandbox import ParserCrashed, isolated


def crash() -> None:
    """What scipy's MAT reader does on some damaged files: a segmentation fault."""
    ctypes.string_at(0)


def pid_and_double(x: int) -> tuple[int, int]:
    return os.getpid(), 2 * x


def test_a_crash_in_the_parser_is_that_calls_error_and_the_next_call_works():
    pid, doubled = isolated(pid_and_double, 21)
    assert doubled == 42 and pid != os.getpid()  # it ran in the child
    assert isolated(pid_and_double, 1)[0] == pid  # the same child serves the next call
    with pytest.raises(ParserCrashed, match="crashed"):
        isolated(crash)
    new_pid, doubled = isolated(pid_and_double, 5)
    assert doubled == 10 and new_pid not in (pid, os.getpid())  # a new child after the crash


def test_exceptions_of_the_parser_come_back_as_they_are():
    with pytest.raises(ZeroDivisionError):
        isolated(divmod, 1, 0)
