"""What the rest of gxo needs to know about templates without importing Jinja2.

Why a module of its own: Jinja2 is imported only when a template is compiled (a playbook
without ``{{``, ``{%`` or ``{#`` never pays for it, in the parent or in a worker), yet the
names every template sees and the protocol of the functions a template may call are used by
validation and by the workers whatever the playbook holds.
"""

from __future__ import annotations

from typing import Protocol

__all__ = [
    "GLOBAL_NAMES",
    "JINJA_OPERATOR_WORDS",
    "JINJA_RESERVED",
    "STATE_LOOKUP",
    "TemplateFunctions",
]

#: Names that every template may use without a playbook defining them (functions and the
#: Jinja globals gxo keeps): references to these are not state references. They take
#: precedence over a namespace entry of the same name, so ``secret`` is always the function.
GLOBAL_NAMES: frozenset[str] = frozenset({"secret", "env", "range", "dict", "namespace"})
#: Words that may legally follow an operand in a Jinja expression.
JINJA_OPERATOR_WORDS: frozenset[str] = frozenset({"and", "or", "not", "in", "is", "if", "else"})
#: Names that cannot start a Jinja variable path (constants, operators, the template itself).
JINJA_RESERVED: frozenset[str] = JINJA_OPERATOR_WORDS | {
    "true", "false", "none", "True", "False", "None", "self",
}  # fmt: skip

#: The name through which a translated Go template reads a state entry whose name Jinja
#: cannot read as a variable: GXO's ``{{ .env }}`` or ``{{ .none }}`` (a var named ``env``,
#: ``namespace``, ``none``...) becomes ``{{ gxo_state_['env'] }}``. It resolves to the
#: template's namespace, and ``gxo_state_['x'].y`` is the reference ``('x', 'y')``.
STATE_LOOKUP = "gxo_state_"


class TemplateFunctions(Protocol):
    """The functions a template can call that reach outside the template."""

    def secret(self, name: str) -> str:
        """The secret's value (raises ``gxo.errors.SecretMissing``)."""
        ...

    def env(self, name: str) -> str:
        """The environment variable's value, ``""`` when unset. Not a secret."""
        ...
