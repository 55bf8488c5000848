"""What a template's ``secret()`` and ``env()`` calls reach, inside a worker.

The resolver joins a provider (where values come from) and a redactor (what must be masked):
every value ``secret()`` hands out is registered for redaction before the template sees it,
so no resolved secret can leave the worker unmasked. ``env()`` is not a secret.
"""

from __future__ import annotations

import os

from gxo.errors import SecretMissing, SecretProviderFailed, TemplateError
from gxo.secrets.providers import EnvProvider, SecretProvider, check_name
from gxo.secrets.redact import Redactor

__all__ = ["SecretResolver"]


class SecretResolver:
    """Resolves ``secret(name)`` through a provider and taints each value it returns.

    Satisfies :class:`gxo.template.TemplateFunctions`.

    Args:
        provider: where values come from; the environment (:class:`EnvProvider`) by default.
        redactor: where values are registered; a new one by default.
    """

    def __init__(
        self, provider: SecretProvider | None = None, redactor: Redactor | None = None
    ) -> None:
        self.provider: SecretProvider = provider if provider is not None else EnvProvider()
        self.redactor = redactor if redactor is not None else Redactor()
        self._accessed: list[str] = []

    def secret(self, name: str) -> str:
        """The value of secret ``name``, registered with the redactor.

        Raises:
            SecretMissing: the provider has no value for ``name``.
            SecretProviderFailed: the provider raised (its own error, not a missing value).
            TemplateError: ``name`` is not a valid secret name, or the value cannot be read.
        """
        check_name(name)
        try:
            value = self.provider.get(name)
        except TemplateError:
            raise
        except Exception as exc:  # noqa: BLE001 - any provider failure is reported as one
            raise SecretProviderFailed(name, f"{type(exc).__name__}: {exc}") from None
        if value is not None and not isinstance(value, str):
            raise SecretProviderFailed(name, f"it returned {type(value).__name__}, not str")
        if value is None:
            hint = getattr(self.provider, "hint", None)
            provider = type(self.provider)
            # A provider of the user's own says nothing of the environment: name it instead.
            text = (
                hint(name)
                if callable(hint)
                else f"the secrets provider {provider.__module__}.{provider.__qualname__} "
                f"has no value for {name!r}"
            )
            raise SecretMissing(name, hint=text)
        self.redactor.add(value, name)
        if name not in self._accessed:
            self._accessed.append(name)
        return value

    @property
    def has_accessed(self) -> bool:
        """Whether a name was resolved since the last :meth:`take_accessed`."""
        return bool(self._accessed)

    @property
    def accessed(self) -> tuple[str, ...]:
        """The names resolved since the last :meth:`take_accessed`, without taking them."""
        return tuple(self._accessed)

    def take_accessed(self) -> list[str]:
        """The names resolved since the last call (never values), in first-use order."""
        names, self._accessed = self._accessed, []
        return names

    def env(self, name: str) -> str:
        """The environment variable ``name``, ``""`` when unset. Not treated as a secret."""
        return os.environ.get(name, "")
