"""The server flags every ``serve`` command shares: parsed into one ``ServerSettings``, and every bad value refused
with a ``SettingsError`` that names its flag."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import pytest

from protocol.auth import SigningKey
from protocol.server_flags import SettingsError, add_server_flags, announce, server_settings
from protocol.serving import TlsFiles


def _parser(public_url: bool = False) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    add_server_flags(parser, default_port=8123, max_body_bytes=4_000, what="the test server")
    if public_url:
        parser.add_argument("--public-url")
    return parser


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [SigningKey.generate().jwk()]}))
    (tmp_path / "cert.pem").write_text("cert")
    (tmp_path / "key.pem").write_text("key")
    return {name: str(tmp_path / f"{name}.{ext}") for name, ext in (("jwks", "json"), ("cert", "pem"), ("key", "pem"))}


def test_defaults_are_a_loopback_server_without_keys(capsys: pytest.CaptureFixture[str]) -> None:
    settings = server_settings(_parser().parse_args([]))
    assert (settings.host, settings.port, settings.public_url, settings.tls) == ("127.0.0.1", 8123, None, None)
    assert settings.boundary.max_body_bytes == 4_000 and settings.limits.header_timeout_s == 10
    assert settings.auth.jwks_file is None and settings.auth.audience == "scaleout" and settings.scheme == "http"
    announce(settings, "the test server")
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "callers are not authenticated" in err and "the test server" in err


def test_a_full_set_of_flags(files: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    args = _parser(public_url=True).parse_args(
        [
            "--host", "0.0.0.0", "--port", "9000", "--public-url", "https://api.example.org",
            "--allow-host", "alias.example.org:9000", "--allow-origin", "https://ui.example.org",
            "--max-body-bytes", "5000", "--header-timeout", "2.5",
            "--jwks", files["jwks"], "--audience", "aud", "--issuer", "iss",
            "--tls-cert", files["cert"], "--tls-key", files["key"],
        ]
    )  # fmt: skip
    settings = server_settings(args)
    assert (settings.host, settings.port, settings.scheme) == ("0.0.0.0", 9000, "https")
    assert settings.public_url == "https://api.example.org" and settings.wildcard
    assert settings.tls == TlsFiles(cert=files["cert"], key=files["key"])
    assert (settings.auth.jwks_file, settings.auth.audience, settings.auth.issuer) == (
        Path(files["jwks"]),
        "aud",
        "iss",
    )
    assert settings.limits.header_timeout_s == 2.5 and settings.boundary.max_body_bytes == 5000
    policy = settings.boundary
    assert policy.host_allowed("api.example.org") and policy.host_allowed("alias.example.org:9000")
    assert policy.host_allowed("localhost:1") and not policy.host_allowed("evil.example.org")
    assert policy.origin_allowed("https://ui.example.org") and not policy.origin_allowed("https://evil.example.org")
    announce(settings, "the test server")
    assert capsys.readouterr().err == ""  # keys: nothing to warn about


def test_the_own_url_stands_in_for_a_missing_public_url_only_when_asked() -> None:
    args = _parser(public_url=True).parse_args(["--host", "::1", "--port", "9000"])
    assert server_settings(args).public_url is None
    settings = server_settings(args, default_public_url=True)
    assert settings.public_url == settings.own_url == "http://[::1]:9000"


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--tls-cert", "{cert}"], "--tls-cert and --tls-key go together"),
        (["--tls-key", "{key}"], "--tls-cert and --tls-key go together"),
        (["--tls-cert", "{missing}", "--tls-key", "{key}"], "--tls-cert {missing}: no such file"),
        (["--tls-cert", "{cert}", "--tls-key", "{missing}"], "--tls-key {missing}: no such file"),
        (["--jwks", "{missing}"], "--jwks {missing}: no such file"),
        (["--max-body-bytes", "0"], "--max-body-bytes 0: max_body_bytes: "),
        (["--header-timeout", "-1"], "--header-timeout -1.0: header_timeout_s: "),
        (["--public-url", "http://host:port"], "--public-url http://host:port: "),
    ],
)
def test_each_bad_value_is_a_settings_error_naming_its_flag(
    flags: list[str], says: str, files: dict[str, str], tmp_path: Path
) -> None:
    names = {**files, "missing": str(tmp_path / "missing.pem")}
    args = _parser(public_url=True).parse_args([flag.format(**names) for flag in flags])
    with pytest.raises(SettingsError) as caught:
        server_settings(args)
    message = str(caught.value)
    assert message.startswith(says.format(**names)) and "\n" not in message
    assert isinstance(caught.value, ValueError)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_is_a_settings_error(files: dict[str, str]) -> None:
    os.chmod(files["key"], 0)
    args = _parser().parse_args(["--tls-cert", files["cert"], "--tls-key", files["key"]])
    with pytest.raises(SettingsError, match="^--tls-key .*: cannot read it"):
        server_settings(args)
