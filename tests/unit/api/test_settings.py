from pathlib import Path

import pytest

from schema.settings import Settings, SettingsError


def test_defaults_are_the_embedded_adapters() -> None:
    settings = Settings.from_env({})
    assert settings.port == 8000
    assert settings.sqlite_path == Path("data/omnix.db")
    assert settings.bus_url == "memory://"
    assert settings.auth == "dev"


def test_values_come_from_omnix_variables() -> None:
    settings = Settings.from_env(
        {"OMNIX_PORT": "9001", "OMNIX_DATA_DIR": "/tmp/x", "OMNIX_STORE": "sqlite:////var/o.db"}
    )
    assert settings.port == 9001
    assert settings.sqlite_path == Path("/var/o.db")


@pytest.mark.parametrize(
    "environ",
    [
        {"OMNIX_PORT": "eighty"},
        {"OMNIX_PORT": "70000"},
        {"OMNIX_AUTH": "none"},
        {"OMNIX_AUTH": "jwt"},
        {"OMNIX_ENV": "production"},
        {"OMNIX_BUS": "localhost:6379"},
    ],
)
def test_bad_configuration_is_refused_with_a_clear_error(environ: dict[str, str]) -> None:
    with pytest.raises(SettingsError):
        Settings.from_env(environ)


def test_secrets_are_not_in_repr() -> None:
    settings = Settings(auth="jwt", jwt_secret="hunter2-hunter2-hunter2-hunter2")
    assert "hunter2" not in repr(settings)
