"""The pages' words exist in both languages, and the language choice follows the request."""

from __future__ import annotations

from starlette.requests import Request

from api.web.i18n import STRINGS, language, strings
from verifier.verdict import CHECKS


def _request(query: str = "", cookie: str = "", accept: str = "") -> Request:
    headers = [(b"accept-language", accept.encode()), (b"cookie", cookie.encode())]
    return Request({"type": "http", "query_string": query.encode(), "headers": headers})


def test_same_keys_in_both_languages() -> None:
    assert set(STRINGS["en"]) == set(STRINGS["zh"])
    assert {f"check_{spec.id}" for spec in CHECKS} <= set(strings("zh"))


def test_language_choice() -> None:
    assert language(_request()) == "en"
    assert language(_request(accept="zh-CN,zh;q=0.9")) == "zh"
    assert language(_request(cookie="tz_lang=zh")) == "zh"
    assert language(_request(query="lang=en", cookie="tz_lang=zh")) == "en"
    assert language(_request(query="lang=fr")) == "en"
