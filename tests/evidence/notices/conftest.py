from __future__ import annotations

import pytest

from evidence.notices.model import DEFAULT_GUARANTEE, Notice, Owner, SealedRef


def complete_notice(**changes: object) -> Notice:
    """A notice every rule set finds complete; ``changes`` replace fields."""
    fields: dict[str, object] = dict(
        notice_id="nt-20261201T100000-000000000001",
        owner=Owner("上海某某文化传媒有限公司", "91310000MA1FL0XX1X", "legal@owner.example", "+86 21 5555 0100",
                    "上海市徐汇区某某路 100 号"),
        right_proofs=(SealedRef("tz-20261201T090000-aaaaaaaaaaaa", "a" * 64, "著作权登记证书"),),
        infringing=(SealedRef("tz-20261201T090100-bbbbbbbbbbbb", "b" * 64, url="https://shop.example/item/1"),),
        grounds="未经许可使用权利人的摄影作品 / unlicensed use of the owner's photographs",
        guarantee=DEFAULT_GUARANTEE, guarantee_given=True, recipient="ip@platform.example", matter="m-1")
    fields.update(changes)
    return Notice(**fields)  # type: ignore[arg-type]


@pytest.fixture
def notice() -> Notice:
    return complete_notice()
