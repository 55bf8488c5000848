"""The python module: functions by module path and by file path."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Any

import pytest

from gxo.modules import ModuleContext, ModuleError, ParamsError, convert_params
from gxo.modules.builtin.python import PythonModule

TESTS = Path(__file__).resolve().parents[1]
FUNCS = "fixtures_modules.funcs"


@pytest.fixture(autouse=True)
def _fixtures_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(TESTS))


def call(raw: dict[str, Any], ctx: ModuleContext | None = None) -> Any:
    ctx = ctx or ModuleContext(task_name="py-task", instance_id=1, attempt=2)
    return PythonModule().run(convert_params(PythonModule, raw), ctx)


def fail(raw: dict[str, Any]) -> ModuleError:
    with pytest.raises(ModuleError) as info:
        call(raw)
    return info.value


def write(path: Path, source: str) -> Path:
    path.write_text(textwrap.dedent(source))
    return path


def test_module_path_with_kwargs() -> None:
    assert call({"function": f"{FUNCS}:add", "kwargs": {"a": 2, "b": 3}}) == {"sum": 5}


def test_positional_args_and_kwargs() -> None:
    assert call({"function": f"{FUNCS}:echo", "args": [1, "x"], "kwargs": {"k": [True]}}) == {
        "args": [1, "x"],
        "kwargs": {"k": [True]},
    }


def test_dotted_attribute() -> None:
    assert call({"function": f"{FUNCS}:Greeter.hello", "args": ["you"]}) == "hello you"


def test_ctx_parameter_receives_the_module_context() -> None:
    result = call({"function": f"{FUNCS}:with_ctx", "kwargs": {"x": 1}})
    assert result == {"x": 1, "task": "py-task", "attempt": 2, "dry_run": False}


def test_gxo_context_parameter_receives_the_module_context() -> None:
    assert call({"function": f"{FUNCS}:with_gxo_context"}) == "py-task"


def test_ctx_in_kwargs_is_rejected_when_the_function_takes_the_context() -> None:
    with pytest.raises(ParamsError, match="kwargs must not contain 'ctx'"):
        call({"function": f"{FUNCS}:with_ctx", "kwargs": {"x": 1, "ctx": 2}})


def test_arguments_that_do_not_fit_the_signature() -> None:
    with pytest.raises(ParamsError) as info:
        call({"function": f"{FUNCS}:add", "kwargs": {"c": 1}})
    assert info.value.message == (f"cannot call {FUNCS}:add: missing a required argument: 'a'")


def test_return_value_is_converted_to_builtins() -> None:
    assert call({"function": f"{FUNCS}:returns_dataclass"}) == {"x": 1, "y": 2}
    assert call({"function": f"{FUNCS}:returns_int_keys"}) == {"1": "one"}


def test_async_function_runs_to_completion() -> None:
    assert call({"function": f"{FUNCS}:async_add", "args": [1, 2]}) == 3


def test_bad_summary_names_the_type() -> None:
    error = fail({"function": f"{FUNCS}:returns_object"})
    assert error.reason == "bad_summary"
    assert error.message == (
        f"{FUNCS}:returns_object returned a value that is not JSON-compatible (a object): "
        "Encoding objects of type object is unsupported"
    )


def test_exceptions_from_the_function_are_not_caught() -> None:
    with pytest.raises(RuntimeError, match="boom from user code"):
        call({"function": f"{FUNCS}:boom"})


def test_import_error_wording() -> None:
    error = fail({"function": "gxo_no_such_package.mod:fn"})
    assert error.reason == "import_failed"
    assert error.message == (
        "cannot import module 'gxo_no_such_package.mod' for function "
        "'gxo_no_such_package.mod:fn': ModuleNotFoundError: No module named 'gxo_no_such_package'"
    )


def test_missing_function_lists_the_module_and_close_names() -> None:
    error = fail({"function": f"{FUNCS}:ad"})
    assert error.reason == "function_not_found"
    assert error.message.startswith(
        f"function '{FUNCS}:ad' not found: 'ad' is not defined in module '{FUNCS}' ("
    )
    assert error.message.endswith("funcs.py); did you mean 'add'?")


def test_not_callable() -> None:
    error = fail({"function": f"{FUNCS}:NOT_CALLABLE"})
    assert error.message == f"'{FUNCS}:NOT_CALLABLE' is not callable (it is a int)"


@pytest.mark.parametrize("spec", ["no_colon", ":fn", "mod:", ""])
def test_function_spec_shape(spec: str) -> None:
    with pytest.raises(ParamsError, match="parameter 'function' must look like"):
        convert_params(PythonModule, {"function": spec})


def test_file_path_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(
        tmp_path / "tasks.py",
        """
        import dataclasses

        @dataclasses.dataclass
        class Row:
            name: str

        def rows(prefix, ctx=None):
            return [Row(prefix + "1"), Row(prefix + "2"), ctx.task_name]
        """,
    )
    monkeypatch.chdir(tmp_path)
    result = call({"function": "tasks.py:rows", "kwargs": {"prefix": "r"}})
    assert result == [{"name": "r1"}, {"name": "r2"}, "py-task"]
    assert call({"function": f"{tmp_path}/tasks.py:rows", "args": ["s"]})[0] == {"name": "s1"}


def test_file_is_reloaded_when_it_changes(tmp_path: Path) -> None:
    path = write(tmp_path / "changing.py", "def f():\n    return 1\n")
    spec = f"{path}:f"
    assert call({"function": spec}) == 1
    assert call({"function": spec}) == 1
    stat = path.stat()
    write(path, "def f():\n    return 'two'\n")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert call({"function": spec}) == "two"


def test_file_is_loaded_once_while_unchanged(tmp_path: Path) -> None:
    path = write(
        tmp_path / "counter.py", "LOADS = []\nLOADS.append(1)\ndef f():\n    return len(LOADS)\n"
    )
    assert call({"function": f"{path}:f"}) == 1
    assert call({"function": f"{path}:f"}) == 1


def test_missing_file(tmp_path: Path) -> None:
    error = fail({"function": f"{tmp_path}/nope.py:f"})
    assert error.reason == "import_failed"
    assert error.message == (
        f"cannot load '{tmp_path}/nope.py:f': file '{tmp_path}/nope.py': No such file or directory"
    )


def test_file_with_a_syntax_error(tmp_path: Path) -> None:
    path = write(tmp_path / "broken.py", "def f(:\n")
    error = fail({"function": f"{path}:f"})
    assert error.reason == "import_failed"
    assert error.message.startswith(
        f"cannot import file '{path}' for function '{path}:f': SyntaxError"
    )


def test_file_missing_function(tmp_path: Path) -> None:
    path = write(tmp_path / "few.py", "def fetch():\n    pass\n")
    error = fail({"function": f"{path}:fetc"})
    assert error.message == (
        f"function '{path}:fetc' not found: 'fetc' is not defined in file '{path}'; "
        "did you mean 'fetch'?"
    )


def test_python_does_not_support_dry_run() -> None:
    assert PythonModule.supports_dry_run is False


def test_a_forgotten_file_module_runs_afresh_as_importlib_would_build_it(tmp_path: Path) -> None:
    """A pooled worker forgets the user's module after each instance: the next one runs the
    file's code again (fresh globals) in a module with the attributes importlib gives it."""
    import importlib.util
    import sys

    path = write(
        tmp_path / "fresh.py",
        "LOADS = []\nLOADS.append(1)\ndef f():\n    return [len(LOADS), __name__, __file__]\n",
    )
    first = call({"function": f"{path}:f"})
    name = first[1]
    module = sys.modules.pop(name)  # what the worker's restore does between instances
    second = call({"function": f"{path}:f"})
    assert second == [1, name, str(path)]  # run again: LOADS is new, not [1, 1]
    fresh = sys.modules.pop(name)
    assert fresh is not module
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    expected = importlib.util.module_from_spec(spec).__dict__
    for attr in ("__name__", "__file__", "__cached__", "__package__", "__doc__"):
        assert getattr(fresh, attr) == expected[attr], attr
    assert fresh.__spec__ is not None
    assert fresh.__spec__.origin == str(path)
    assert type(fresh.__loader__) is type(expected["__loader__"])


def test_a_call_that_does_not_bind_is_refused_every_time(tmp_path: Path) -> None:
    """Whether a call binds is checked once per shape of call; each instance still gets the
    answer for its own arguments."""
    path = write(tmp_path / "binds.py", "def f(a, b=2, *, c=3):\n    return [a, b, c]\n")
    spec = f"{path}:f"
    for _ in range(2):
        with pytest.raises(ParamsError) as info:
            call({"function": spec, "kwargs": {"d": 1, "a": 1}})
        assert info.value.message == f"cannot call {spec}: got an unexpected keyword argument 'd'"
        with pytest.raises(ParamsError) as info:
            call({"function": spec, "args": [1, 2, 3]})
        assert info.value.message == f"cannot call {spec}: too many positional arguments"
        assert call({"function": spec, "args": [1], "kwargs": {"c": 4}}) == [1, 2, 4]
        assert call({"function": spec, "args": [5, 6]}) == [5, 6, 3]
