"""Secret providers and the resolver behind secret() and env()."""

from __future__ import annotations

from pathlib import Path

import pytest

from gxo.errors import SecretMissing, TemplateError
from gxo.secrets import (
    REDACTED,
    EnvProvider,
    FileProvider,
    MappingProvider,
    Redactor,
    SecretProvider,
    SecretResolver,
)
from gxo.template import TemplateFunctions

BAD_NAMES = ["", "../etc/passwd", "a/b", "/abs", "..", ".hidden", "1abc", "a b", "a\0b", "ä"]


def test_env_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_PASSWORD", "hunter22")
    monkeypatch.setenv("APP_DB_PASSWORD", "prefixed")
    monkeypatch.delenv("GXO_UNSET_SECRET", raising=False)
    assert EnvProvider().get("DB_PASSWORD") == "hunter22"
    assert EnvProvider(prefix="APP_").get("DB_PASSWORD") == "prefixed"
    assert EnvProvider().get("GXO_UNSET_SECRET") is None


@pytest.mark.parametrize("name", BAD_NAMES)
@pytest.mark.parametrize("kind", ["env", "file", "mapping"])
def test_invalid_names_are_rejected(name: str, kind: str, tmp_path: Path) -> None:
    providers: dict[str, SecretProvider] = {
        "env": EnvProvider(),
        "file": FileProvider(tmp_path),
        "mapping": MappingProvider({}),
    }
    provider = providers[kind]
    with pytest.raises(TemplateError, match="invalid secret name"):
        provider.get(name)


@pytest.mark.parametrize("name", ["a", "_x", "DB_PASSWORD", "db.password", "api-key", "K8s_1"])
def test_valid_names(name: str) -> None:
    assert MappingProvider({name: "v"}).get(name) == "v"


@pytest.mark.parametrize("prefix", ["../", "a/", "x y"])
def test_invalid_prefix(prefix: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="invalid secret name prefix"):
        EnvProvider(prefix=prefix)
    with pytest.raises(ValueError, match="invalid secret name prefix"):
        FileProvider(tmp_path, prefix=prefix)


@pytest.mark.parametrize(
    ("content", "value"),
    [
        ("s3cret\n", "s3cret"),
        ("s3cret", "s3cret"),
        ("s3cret\r\n", "s3cret"),
        ("s3cret\n\n", "s3cret\n"),
        ("line1\nline2\n", "line1\nline2"),
        ("", ""),
    ],
)
def test_file_provider_strips_one_trailing_newline(
    content: str, value: str, tmp_path: Path
) -> None:
    (tmp_path / "db_password").write_text(content, newline="")
    assert FileProvider(tmp_path).get("db_password") == value


def test_file_provider_prefix_missing_and_symlinks(tmp_path: Path) -> None:
    # Kubernetes mounts each key as a symlink into a ..data directory.
    (tmp_path / "..data").mkdir()
    (tmp_path / "..data" / "app_token").write_text("tok-123\n")
    (tmp_path / "app_token").symlink_to(Path("..data") / "app_token")
    assert FileProvider(tmp_path, prefix="app_").get("token") == "tok-123"
    assert FileProvider(tmp_path).get("missing") is None
    assert FileProvider(tmp_path / "no-such-dir").get("token") is None


def test_unreadable_secret_file_is_an_error_naming_the_path(tmp_path: Path) -> None:
    (tmp_path / "adir").mkdir()
    with pytest.raises(TemplateError) as info:
        FileProvider(tmp_path).get("adir")
    assert (
        str(info.value)
        == f"cannot read secret 'adir' from {str(tmp_path / 'adir')!r}: Is a directory"
    )


def test_provider_reprs_hide_values(tmp_path: Path) -> None:
    assert repr(MappingProvider({"A": "topsecret"})) == "MappingProvider(<1 secrets>)"
    assert repr(EnvProvider("P_")) == "EnvProvider(prefix='P_')"
    assert "topsecret" not in repr(FileProvider(tmp_path))


def test_providers_satisfy_the_protocol(tmp_path: Path) -> None:
    for provider in (EnvProvider(), FileProvider(tmp_path), MappingProvider({})):
        assert isinstance(provider, SecretProvider)


def test_resolver_returns_and_taints_the_value() -> None:
    redactor = Redactor()
    resolver = SecretResolver(MappingProvider({"TOKEN": "tok-abcdef"}), redactor)
    assert resolver.secret("TOKEN") == "tok-abcdef"
    assert redactor.redact_text("Bearer tok-abcdef") == f"Bearer {REDACTED}"


def test_resolver_missing_secret(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("GXO_MISSING_SECRET", raising=False)
    with pytest.raises(SecretMissing) as info:
        SecretResolver().secret("GXO_MISSING_SECRET")
    assert info.value.name == "GXO_MISSING_SECRET"
    assert str(info.value) == (
        "secret 'GXO_MISSING_SECRET' is not set (hint: export GXO_MISSING_SECRET in the "
        "environment gxo runs in)"
    )
    with pytest.raises(SecretMissing) as info:
        SecretResolver(FileProvider(tmp_path)).secret("db")
    assert info.value.hint == f"create the file {str(tmp_path / 'db')!r}"


def test_resolver_defaults_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GXO_TEST_SECRET", "from-env-1")
    resolver = SecretResolver()
    assert resolver.secret("GXO_TEST_SECRET") == "from-env-1"
    assert len(resolver.redactor) == 1


def test_resolver_env_is_not_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GXO_PLAIN", "plain-value")
    monkeypatch.delenv("GXO_UNSET", raising=False)
    resolver = SecretResolver()
    assert resolver.env("GXO_PLAIN") == "plain-value"
    assert resolver.env("GXO_UNSET") == ""
    assert len(resolver.redactor) == 0
    assert resolver.redactor.redact_text("plain-value") == "plain-value"


def test_resolver_is_template_functions() -> None:
    functions: TemplateFunctions = SecretResolver(MappingProvider({"A": "aaaa"}))
    assert functions.secret("A") == "aaaa"
