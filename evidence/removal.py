"""Whether a captured page shows content that is gone: removed, taken down or never there.

A platform says "removed" three ways: an HTTP status (404 Not Found, 410 Gone, 451 Unavailable
For Legal Reasons), an empty page, or an ordinary 200 page whose words say so ("该商品已下架",
"This item is no longer available"). Chinese platforms mostly do the last, so the phrases matter
most. A phrase alone could also sit in a live page ("other sizes are no longer available"), so it
counts only where a notice page puts it: in the title, in a heading, or on a page short enough to
be the notice itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from evidence.page_text import PageText, bounded

#: Statuses that say the content is not there (not "try later": 5xx and 429 are not removals).
REMOVED_STATUSES = frozenset({404, 410, 451})
#: A notice page's visible text is short; a live listing with navigation and reviews is far longer.
NOTICE_PAGE_MAX_CHARS = 2_000
#: What platforms show for removed content, lower case, whitespace collapsed. Chinese first: the
#: marketplaces (淘宝, 京东, 拼多多), video and social sites this service mostly captures.
REMOVAL_PHRASES = (
    "该商品已下架", "商品已下架", "宝贝已下架", "此商品已下架", "商品已经下架", "该宝贝不存在", "商品不存在",
    "页面不存在", "您访问的页面不存在", "网页不存在", "该页面已被删除", "内容已被删除", "该内容已被删除",
    "内容已删除", "作品已删除", "该作品已删除", "视频已删除", "该视频已被删除", "该视频不存在", "视频不见了",
    "帖子已被删除", "该帖子已被删除", "该微博已被删除", "该店铺不存在", "店铺已关闭", "店铺不存在",
    "链接已失效", "内容无法查看", "因违反相关法律法规", "根据相关法律法规", "已被屏蔽", "资源已被删除",
    "this item is no longer available", "this listing is no longer available", "this listing has ended",
    "item not found", "product not found", "page not found", "404 not found",
    "the page you requested could not be found",
    "this page isn't available", "this page is not available", "this content isn't available",
    "this content is not available", "this video is unavailable", "this video has been removed",
    "video unavailable", "content has been removed", "this post has been deleted", "this post was deleted",
    "this account has been suspended", "account suspended", "has been removed for violating",
    "no longer available",
)


@dataclass(frozen=True)
class Removal:
    """Why a page counts as removed: ``reason`` is ``http-404``/``http-410``/``http-451``, ``empty``
    or ``notice``; ``phrase`` is the notice's words as found."""

    reason: str
    phrase: str | None = None

    def to_json(self) -> dict[str, str | None]:
        return {"reason": self.reason, "phrase": self.phrase}


def _normalised(text: str) -> str:
    return " ".join(text.lower().split()).replace("’", "'")


def _phrase_in(text: str) -> str | None:
    normal = _normalised(text)
    return next((phrase for phrase in REMOVAL_PHRASES if phrase in normal), None)


def removal(http_status: int | None, text: PageText | None) -> Removal | None:
    """The reason the capture shows removed content, or None when it shows content.

    ``text`` is None when the capture has no page to read (then only the status decides)."""
    if http_status in REMOVED_STATUSES:
        return Removal(reason=f"http-{http_status}")
    if text is None:
        return None
    if text.is_empty:
        return Removal(reason="empty")
    for place in (text.title, *text.headings):
        phrase = _phrase_in(place)
        if phrase is not None:
            return Removal(reason="notice", phrase=bounded(phrase))
    body = "\n".join(text.lines)
    if len(body) <= NOTICE_PAGE_MAX_CHARS:
        phrase = _phrase_in(body)
        if phrase is not None:
            return Removal(reason="notice", phrase=bounded(phrase))
    return None
