"""API keys: random, shown once, stored as an HMAC under the data dir's secret."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import SecretStr

from api.service.security import hash_key, key_matches, key_prefix, new_key, server_secret
from api.service.settings import Settings


def test_keys_are_random_and_only_hashed(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    secret = server_secret(settings)
    assert len(secret) == 32 and server_secret(settings) == secret
    assert oct(os.stat(tmp_path / "keys" / "api-key-secret").st_mode & 0o777) == "0o600"
    one, two = new_key(secret), new_key(secret)
    assert one.token != two.token and one.prefix != two.prefix
    assert key_prefix(one.token) == one.prefix and one.token.split("_")[2] not in one.key_hash
    assert key_matches(one.token, one.key_hash, secret)
    assert not key_matches(two.token, one.key_hash, secret)
    assert not key_matches(one.token, one.key_hash, b"another server's secret")
    assert hash_key(one.token, secret) == one.key_hash


def test_malformed_keys_have_no_prefix() -> None:
    for token in ("", "tzk_", "Bearer tzk_abc", "tzk_0123456789ab_short", "tzk_0123456789ab_" + "A" * 44):
        assert key_prefix(token) is None


def test_secret_from_settings_wins(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, api_key_secret=SecretStr("shared by the servers"))
    assert server_secret(settings) == b"shared by the servers"
    assert not (tmp_path / "keys").exists()
    assert "shared by the servers" not in settings.redacted()


def test_keys_are_masked_in_any_text() -> None:
    from api.service.security import key_in_query, redact_secrets

    token = new_key(b"s" * 32).token
    line = f'127.0.0.1:5 - "GET /v1/evidence?page=2&api_key={token}&x=1 HTTP/1.1" 400 and {token[:30]}'
    masked = redact_secrets(line)
    assert token[:12] not in masked and "page=2" in masked and "&x=1" in masked
    assert redact_secrets("/v1/evidence?TOKEN=abc") == "/v1/evidence?TOKEN=***"
    assert key_in_query(f"q={token}".encode()) and key_in_query(b"Api_Key=") and key_in_query(b"x=1&token=z")
    assert not key_in_query(b"q=catalogue&page=2&status=sealed") and not key_in_query(b"")


def test_server_paths_are_hidden_but_urls_and_routes_stay() -> None:
    from api.service.security import hide_server_paths

    assert hide_server_paths("[Errno 28] No space left on device: '/srv/data/packages/x.wacz'") == (
        "[Errno 28] No space left on device: '[path on the server]'")
    assert hide_server_paths("cannot start /root/.cache/ms-playwright/chrome (exit 1)") == (
        "cannot start [path on the server] (exit 1)")
    for kept in ("see https://example.com/a/b?c=/d/e&x=/y/z", "POST /v1/verify", "a 4xx/5xx page", "20/s"):
        assert hide_server_paths(kept) == kept
