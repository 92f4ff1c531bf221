"""The completeness gate: a notice is sent only when every chosen rule set finds all it requires.

The rule sets are data in ``verifier.notice_rules`` (the verifier's N2 reads the same table). The
gate names every missing element of every rule set in both languages, never just the first.
"""

from __future__ import annotations

from collections.abc import Sequence

from evidence.notices.model import Notice, NoticeError
from verifier.notice_rules import RuleResult, describe_missing, judge


class IncompleteNotice(NoticeError):
    """A notice lacks elements a chosen rule set requires; ``results`` says which, per rule set."""

    def __init__(self, results: Sequence[RuleResult]) -> None:
        self.results = tuple(results)
        lines = describe_missing(self.results, "en") + describe_missing(self.results, "zh")
        super().__init__("the notice is incomplete:\n  " + "\n  ".join(lines))


def completeness(notice: Notice) -> tuple[RuleResult, ...]:
    """Each of the notice's rule sets, with the elements it requires present and missing."""
    record = notice.to_json()
    return judge(record, list(notice.rule_sets))


def gate(notice: Notice, *, allow_incomplete: bool = False) -> tuple[RuleResult, ...]:
    """The completeness results; raises IncompleteNotice when one is incomplete, unless allowed.

    A withdrawal is exempt: it retracts a notice and needs no grounds of its own.
    """
    results = completeness(notice)
    if notice.action != "withdrawal" and not allow_incomplete and any(r.missing for r in results):
        raise IncompleteNotice(results)
    return results
