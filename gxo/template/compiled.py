"""CONTRACT STUB — to be implemented. Signatures and docstrings below are binding."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from gxo.errors import TemplateError

#: Names that every template may use without a playbook defining them (functions and the
#: Jinja globals gxo keeps): references to these are not state references.
GLOBAL_NAMES: frozenset[str] = frozenset({"secret", "env", "range", "dict", "namespace"})


class TemplateFunctions(Protocol):
    """The functions a template can call that reach outside the template."""

    def secret(self, name: str) -> str:
        """The secret's value (raises ``gxo.errors.SecretMissing``)."""
        ...

    def env(self, name: str) -> str:
        """The environment variable's value, ``""`` when unset. Not a secret."""
        ...


class CompiledValue:
    """A parameter value (any nesting of dict/list/scalars) with its templates compiled."""

    #: Every variable path referenced, as far as it is static: ``{{ reg.stdout }}`` gives
    #: ``("reg", "stdout")``, ``{{ _gxo.tasks['a-b'].status }}`` gives
    #: ``("_gxo", "tasks", "a-b", "status")``, ``{{ x[i] }}`` gives ``("x",)``.
    references: frozenset[tuple[str, ...]]
    #: The first element of every reference, minus GLOBAL_NAMES and template-local names
    #: (``{% for %}`` targets, ``{% set %}`` names).
    top_level_names: frozenset[str]
    #: Whether any template in the value calls ``secret``.
    uses_secret: bool
    #: True when the value holds no template at all (render returns it unchanged).
    is_constant: bool

    def render(
        self, namespace: Mapping[str, Any], functions: TemplateFunctions | None = None
    ) -> Any:
        """Render every template in the value against ``namespace``."""
        raise NotImplementedError


def compile_value(value: Any, *, where: str, allow_secret: bool = True) -> CompiledValue:
    """Compile every template string inside ``value``."""
    raise TemplateError("not implemented", where)


def truthy(value: Any) -> bool:
    """How a rendered ``when`` decides."""
    raise NotImplementedError
