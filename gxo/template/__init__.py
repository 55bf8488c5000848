"""Templates: Jinja2 in an immutable sandbox, with GXO's Go-template forms translated.

This package is a leaf: it depends only on ``gxo.errors``. The functions a template may call
that touch the outside world (``secret()`` and ``env()``) are injected by the caller through
:class:`TemplateFunctions`, so the parent can compile and analyse templates (for validation
and dependency inference) without ever being able to resolve a secret.

Public API (the rest of gxo imports only these names):

- ``compile_value(value, *, where, allow_secret=True) -> CompiledValue``
- ``CompiledValue``: ``.render(namespace, functions=None)``, ``.references``,
  ``.top_level_names``, ``.uses_secret``, ``.is_constant``
- ``TemplateFunctions``: the protocol for ``secret`` and ``env``
- ``render_paths(value, namespace)``: a value whose templates are all bare ``{{ a.b }}``
  rendered without compiling it (or ``NOT_PATHS``: compile it), for a value rendered once
- ``truthy(value) -> bool``: how a rendered ``when`` decides
- ``GLOBAL_NAMES``: names every template may use without defining them
- the render budget of parent-side values (``when``, ``loop``): ``RenderBudget``,
  ``set_render_budget(budget)``, ``render_budget()``, ``interrupt_renders()`` (from a signal
  handler) and ``allow_renders()`` (when a run starts), and ``RenderStopped``, the
  ``TemplateError`` of a render stopped that way
"""

from gxo.template.budget import (
    RenderBudget,
    allow_renders,
    interrupt_renders,
    render_budget,
    set_render_budget,
)
from gxo.template.compiled import (
    GLOBAL_NAMES,
    NOT_PATHS,
    CompiledValue,
    RenderStopped,
    TemplateFunctions,
    compile_value,
    render_paths,
    truthy,
)

__all__ = [
    "GLOBAL_NAMES",
    "NOT_PATHS",
    "CompiledValue",
    "RenderBudget",
    "RenderStopped",
    "TemplateFunctions",
    "allow_renders",
    "compile_value",
    "interrupt_renders",
    "render_budget",
    "render_paths",
    "set_render_budget",
    "truthy",
]
