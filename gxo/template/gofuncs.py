"""Go's text/template functions and Go's ``fmt`` printing, for translated GXO templates.

Why a module of its own: :mod:`gxo.template.gocompat` rewrites a Go template into Jinja, but
the meaning of ``eq``, ``printf`` or of printing a value is Go's, not Python's, so the Jinja
text calls these functions (registered as ``go_*`` filters). They follow Go's
documentation (``text/template`` "Functions", ``fmt`` "Printing"):

- ``eq a b c`` is ``a == b || a == c``; the comparisons work on basic values only (nil,
  bools, integers, floats, strings); an integer never compares with a float or a string
  (``incompatible types for comparison``), a list or a map is an error for ``lt``/``le``/...
  and compares by value for ``eq``/``ne`` (GXO compared with ``reflect.DeepEqual``);
- ``len`` counts a string's bytes (UTF-8), a list's items, a map's keys;
- ``index m "k"`` gives nil for a missing map key; a list index out of range is an error;
- ``print``/``println``/``printf`` are ``fmt.Sprint``/``Sprintln``/``Sprintf``;
- printing a value: ``true``/``false``, ``<nil>`` (``<no value>`` for an action printing
  nothing), floats in Go's shortest ``%g`` form (``1e+06``, ``0.5``), lists as ``[a b]``,
  maps as ``map[k:v]`` with sorted keys.

A function that fails raises :class:`gxo.errors.TemplateError` worded like Go's
(``error calling eq: incompatible types for comparison``).
"""

from __future__ import annotations

import decimal
import math
import re
import sys
from collections.abc import Callable, Mapping
from typing import Any, cast

from gxo.errors import TemplateError
from gxo.template.budget import check_size

__all__ = [
    "FILTERS",
    "go_text",
    "index",
    "length",
    "range_items",
    "sprint",
    "sprintf",
    "sprintln",
    "value_text",
]


def _defined(value: Any) -> Any:
    """``value``, or the missing-value error of a Jinja Undefined (a missing key).

    Looked up in ``sys.modules``: without Jinja2 imported no value can be an Undefined, and
    an ``exec`` task's non-text argument (``value_text``) must not import it in the worker.
    """
    jinja2 = sys.modules.get("jinja2")
    if jinja2 is not None and isinstance(value, jinja2.Undefined):
        value._fail_with_undefined_error()
    return value


def _fail(function: str, message: str) -> TemplateError:
    return TemplateError(f"error calling {function}: {message}")


# --- printing ---------------------------------------------------------------------------------


def _float_text(number: float) -> str:
    """Go's ``%v`` of a float64: strconv.FormatFloat(f, 'g', -1, 64)."""
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "+Inf" if number > 0 else "-Inf"
    if number == 0:
        return "-0" if math.copysign(1.0, number) < 0 else "0"
    sign, digits, exponent = decimal.Decimal(repr(number)).normalize().as_tuple()
    text = "".join(map(str, digits))
    point = len(text) + cast(int, exponent)  # digits before the decimal point
    exp = point - 1
    prefix = "-" if sign else ""
    # strconv 'g' with the shortest precision decides with precision 6 (ftoa.go).
    if exp < -4 or exp >= 6:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{prefix}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if point <= 0:
        return f"{prefix}0.{'0' * -point}{text}"
    if point >= len(text):
        return prefix + text + "0" * (point - len(text))
    return f"{prefix}{text[:point]}.{text[point:]}"


def value_text(value: Any) -> str:
    """``fmt.Sprint`` of one value (Go's ``%v``)."""
    value = _defined(value)
    if isinstance(value, str):
        return value
    if value is None:
        return "<nil>"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float_text(value)
    if isinstance(value, Mapping):
        items = sorted(value.items(), key=lambda item: _sort_key(item[0]))
        return "map[" + " ".join(f"{value_text(k)}:{value_text(v)}" for k, v in items) + "]"
    if isinstance(value, list | tuple):
        return "[" + " ".join(value_text(item) for item in value) + "]"
    return str(value)


def _sort_key(key: Any) -> tuple[int, Any]:
    """Go's fmtsort order for the keys a playbook can hold: nil, bools, numbers, strings."""
    if key is None:
        return (0, 0)
    if isinstance(key, bool):
        return (1, key)
    if isinstance(key, int | float):
        return (2, key)
    return (3, str(key))


def go_text(value: Any) -> str:
    """What a Go action ``{{ pipeline }}`` prints: ``<no value>`` for nil, else ``%v``."""
    value = _defined(value)
    if value is None:
        return "<no value>"
    return value_text(value)


def sprint(*args: Any) -> str:
    """``fmt.Sprint``: a space between two operands when neither is a string."""
    out: list[str] = []
    values = [_defined(arg) for arg in args]
    for position, value in enumerate(values):
        if position and not isinstance(value, str) and not isinstance(values[position - 1], str):
            out.append(" ")
        out.append(value_text(value))
    return "".join(out)


def sprintln(*args: Any) -> str:
    """``fmt.Sprintln``: spaces between all operands, and a newline."""
    return " ".join(value_text(arg) for arg in args) + "\n"


_VERB = re.compile(r"%([-+# 0]*)(\d+|\*)?(?:\.(\*|\d*))?(.)?", re.DOTALL)


def _type_name(value: Any) -> str:
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "map[string]interface {}"
    if isinstance(value, list | tuple):
        return "[]interface {}"
    return type(value).__name__


def _bad_verb(verb: str, value: Any) -> str:
    if value is None:
        return f"%!{verb}(<nil>)"
    return f"%!{verb}({_type_name(value)}={value_text(value)})"


def _quote(text: str) -> str:
    """strconv.Quote: printable characters kept, the others escaped Go-style."""
    out = ['"']
    for char in text:
        code = ord(char)
        if char in '"\\':
            out.append("\\" + char)
        elif char in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[char])
        elif char.isprintable() and code != 0xFFFD:
            out.append(char)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


_SHORT_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}


def _pad(text: str, flags: str, width: str | None, numeric: bool) -> str:
    if not width:
        return text
    size = int(width)
    if "-" in flags:
        return text.ljust(size)
    if "0" in flags and numeric:
        sign = text[0] if text[:1] in "+-" else ""
        return sign + text[len(sign) :].rjust(size - len(sign), "0")
    return text.rjust(size)


def _format_one(verb: str, flags: str, width: str | None, precision: str | None, arg: Any) -> str:
    """One ``%verb`` applied to one argument (lists and maps: to each element, as fmt does)."""
    if isinstance(arg, list | tuple) and verb not in "vT":
        return "[" + " ".join(_format_one(verb, flags, None, precision, a) for a in arg) + "]"
    if isinstance(arg, Mapping) and verb not in "vT":
        items = sorted(arg.items(), key=lambda item: _sort_key(item[0]))
        inner = " ".join(
            f"{_format_one(verb, flags, None, precision, k)}:"
            f"{_format_one(verb, flags, None, precision, v)}"
            for k, v in items
        )
        return _pad(f"map[{inner}]", flags, width, False)
    numeric = False
    if verb == "v":
        if isinstance(arg, float) and precision is not None:
            text = _format_float("g", flags, precision, arg)
        else:
            text = value_text(arg)
            if "+" in flags and isinstance(arg, int | float) and not isinstance(arg, bool):
                text = text if text.startswith("-") else "+" + text
        numeric = isinstance(arg, int | float) and not isinstance(arg, bool)
    elif verb == "T":
        text = _type_name(arg)
    elif verb == "s":
        if not isinstance(arg, str):
            return _bad_verb(verb, arg)
        text = arg if precision is None else arg[: int(precision or 0)]
    elif verb == "q":
        if isinstance(arg, str):
            text = _quote(arg)
        elif isinstance(arg, int) and not isinstance(arg, bool):
            text = "'" + _quote(chr(arg))[1:-1].replace("'", "\\'").replace('\\"', '"') + "'"
        else:
            return _bad_verb(verb, arg)
    elif verb == "t":
        if not isinstance(arg, bool):
            return _bad_verb(verb, arg)
        text = "true" if arg else "false"
    elif verb in "dboxXcU":
        if isinstance(arg, str) and verb in "xX":
            text = arg.encode().hex()
            text = text.upper() if verb == "X" else text
        elif not isinstance(arg, int) or isinstance(arg, bool):
            return _bad_verb(verb, arg)
        else:
            text = _format_int(verb, flags, arg)
            numeric = verb != "c"
    elif verb in "eEfFgG":
        if not isinstance(arg, float | int) or isinstance(arg, bool):
            return _bad_verb(verb, arg)
        if isinstance(arg, int):
            return _bad_verb(verb, arg)
        text = _format_float(verb, flags, precision, arg)
        numeric = True
    else:
        return _bad_verb(verb, arg)
    return _pad(text, flags, width, numeric)


def _format_int(verb: str, flags: str, number: int) -> str:
    if verb == "c":
        return chr(number)
    if verb == "U":
        return f"U+{number:04X}"
    base = {"d": "d", "b": "b", "o": "o", "x": "x", "X": "X"}[verb]
    text = format(abs(number), base)
    if "#" in flags:
        text = {"b": "0b", "o": "0", "x": "0x", "X": "0X"}.get(verb, "") + text
    if number < 0:
        return "-" + text
    if "+" in flags:
        return "+" + text
    if " " in flags:
        return " " + text
    return text


def _format_float(verb: str, flags: str, precision: str | None, number: float) -> str:
    if math.isnan(number) or math.isinf(number):
        return _float_text(number)
    if verb in "gG" and precision is None:
        text = _float_text(number)
        text = text.upper() if verb == "G" else text
    else:
        digits = 6 if precision is None else int(precision or 0)
        if verb in "gG":
            digits = max(digits, 1)
        return format(number, ("+" if "+" in flags else "") + f".{digits}{verb}")
    if "+" in flags and not text.startswith("-"):
        text = "+" + text
    return text


def sprintf(template: Any, *args: Any) -> str:
    """``fmt.Sprintf`` for the verbs playbooks use: ``%v %s %q %d %t %f %e %g %x %o %b %c
    %T %%``, with flags ``-+# 0``, a width and a precision (each may be ``*``: the next
    argument). Go's error forms are kept:
    ``%!d(string=x)`` for a wrong type, ``%!d(MISSING)``, ``%!(EXTRA int=1)``."""
    template = _defined(template)
    if not isinstance(template, str):
        raise _fail("printf", f"wrong type for value; expected string; got {_type_name(template)}")
    values = [_defined(arg) for arg in args]
    out: list[str] = []
    used = 0
    pos = 0
    while True:
        percent = template.find("%", pos)
        if percent < 0:
            out.append(template[pos:])
            break
        out.append(template[pos:percent])
        match = _VERB.match(template, percent)
        assert match is not None
        flags, width, precision, verb = match.groups()
        pos = match.end()
        if width == "*":  # the width is the next argument (fmt's intFromArg)
            number, used = _int_argument(values, used)
            width = None
            if number is None:
                out.append("%!(BADWIDTH)")
            else:
                if number < 0:
                    flags, number = flags.replace("0", "") + "-", -number
                check_size(number, f"printf with a width of {number}")
                width = str(number)
        if precision == "*":
            number, used = _int_argument(values, used)
            precision = None
            if number is None or number < 0:
                out.append("%!(BADPREC)")
            else:
                check_size(number, f"printf with a precision of {number}")
                precision = str(number)
        if verb is None:
            out.append("%!(NOVERB)")
            break
        if verb == "%":
            out.append("%")
            continue
        if used >= len(values):
            out.append(f"%!{verb}(MISSING)")
            continue
        out.append(_format_one(verb, flags, width, precision, values[used]))
        used += 1
    if used < len(values):
        extra = ", ".join(
            "<nil>" if v is None else f"{_type_name(v)}={value_text(v)}" for v in values[used:]
        )
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def _int_argument(values: list[Any], used: int) -> tuple[int | None, int]:
    """A ``*`` width or precision: the next argument when it is an integer (it is used up
    either way, as fmt does), and the index of the argument after it."""
    if used >= len(values):
        return None, used
    value = values[used]
    if isinstance(value, int) and not isinstance(value, bool):
        return value, used + 1
    return None, used + 1


# --- comparison -------------------------------------------------------------------------------


def _kind(value: Any) -> str:
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    return "other"


def eq(first: Any, *others: Any) -> bool:
    """Go's ``eq``: ``first`` equals any of ``others``."""
    first = _defined(first)
    if not others:
        raise _fail("eq", "missing argument for comparison")
    kind = _kind(first)
    for candidate in others:
        other = _defined(candidate)
        other_kind = _kind(other)
        if kind != other_kind:
            if kind != "nil" and other_kind != "nil":
                raise _fail(
                    "eq",
                    f"incompatible types for comparison ({_type_name(first)} and "
                    f"{_type_name(other)})",
                )
            continue
        if first == other:
            return True
    return False


def ne(first: Any, second: Any) -> bool:
    """Go's ``ne``."""
    try:
        return not eq(first, second)
    except TemplateError as exc:
        raise _fail("ne", exc.message.split(": ", 1)[1]) from None


def _ordered(function: str, first: Any, second: Any) -> tuple[Any, Any]:
    first, second = _defined(first), _defined(second)
    kinds = _kind(first), _kind(second)
    if any(kind not in ("int", "float", "string") for kind in kinds):
        raise _fail(function, "invalid type for comparison")
    if kinds[0] != kinds[1]:
        raise _fail(
            function,
            f"incompatible types for comparison ({_type_name(first)} and {_type_name(second)})",
        )
    return first, second


def lt(first: Any, second: Any) -> bool:
    """Go's ``lt`` (integers, floats or strings, both of one kind)."""
    a, b = _ordered("lt", first, second)
    return bool(a < b)


def le(first: Any, second: Any) -> bool:
    """Go's ``le``."""
    a, b = _ordered("le", first, second)
    return bool(a <= b)


def gt(first: Any, second: Any) -> bool:
    """Go's ``gt``."""
    a, b = _ordered("gt", first, second)
    return bool(a > b)


def ge(first: Any, second: Any) -> bool:
    """Go's ``ge``."""
    a, b = _ordered("ge", first, second)
    return bool(a >= b)


# --- collections ------------------------------------------------------------------------------


def length(value: Any) -> int:
    """Go's ``len``: a string's UTF-8 bytes, a list's items, a map's keys."""
    value = _defined(value)
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, list | tuple | Mapping):
        return len(value)
    raise _fail("len", f"len of type {_type_name(value)}")


def index(value: Any, *keys: Any) -> Any:
    """Go's ``index``: ``index x 1 2`` is ``x[1][2]``; a missing map key gives nil."""
    value = _defined(value)
    for raw_key in keys:
        key = _defined(raw_key)
        if value is None:
            raise _fail("index", "index of untyped nil")
        if isinstance(value, Mapping):
            if not isinstance(key, str):  # a playbook's mappings have string keys only
                problem = (
                    "is nil; should be of type string"
                    if key is None
                    else f"has type {_type_name(key)}; should be string"
                )
                raise _fail("index", f"value {problem}")
            value = value.get(key)
        elif isinstance(value, list | tuple | str):
            if not isinstance(key, int) or isinstance(key, bool):
                raise _fail("index", f"cannot index slice/array with type {_type_name(key)}")
            if not 0 <= key < len(value):
                raise _fail("index", f"index out of range: {key}")
            value = value[key] if not isinstance(value, str) else value.encode()[key]
        else:
            raise _fail("index", f"can't index item of type {_type_name(value)}")
    return value


def range_items(value: Any) -> list[tuple[Any, Any]]:
    """What ``{{ range }}`` visits, as (index or key, element): a list in order, a map in
    sorted key order, an integer n as 0..n-1; nil visits nothing."""
    value = _defined(value)
    if value is None:
        return []
    if isinstance(value, Mapping):
        return sorted(value.items(), key=lambda item: _sort_key(item[0]))
    if isinstance(value, list | tuple):
        return list(enumerate(value))
    if isinstance(value, int) and not isinstance(value, bool):
        return [(number, number) for number in range(value)]
    raise TemplateError(f"range can't iterate over {value_text(value)}")


def _printf_filter(template: Any, *args: Any) -> str:
    return sprintf(template, *args)


#: The Jinja filters the translation of a Go template calls (the filter's input is the
#: function's first argument).
FILTERS: dict[str, Callable[..., Any]] = {
    "go_str": go_text,
    "go_eq": eq,
    "go_ne": ne,
    "go_lt": lt,
    "go_le": le,
    "go_gt": gt,
    "go_ge": ge,
    "go_len": length,
    "go_index": index,
    "go_range": range_items,
    "go_print": sprint,
    "go_println": sprintln,
    "go_printf": _printf_filter,
}
