"""The check registry names a function for every check id, and loads the checks of rarer kinds only
when a package of that kind needs them."""

from __future__ import annotations

import subprocess
import sys

import pytest

from verifier.checks import REGISTRY, check_function
from verifier.verdict import CHECK_BY_ID


@pytest.mark.parametrize("check_id", sorted(CHECK_BY_ID))
def test_every_check_id_resolves_to_a_function(check_id: str) -> None:
    assert callable(check_function(check_id))


def test_registry_and_check_table_agree() -> None:
    assert set(REGISTRY) == set(CHECK_BY_ID)


def test_starting_the_verifier_does_not_load_the_notice_and_log_checks() -> None:
    probe = ("import sys, verifier.cli; "
             "print(sorted(m for m in sys.modules if m in ('verifier.checks.notice', 'verifier.checks.log_export', "
             "'verifier.dkim', 'verifier.notice_rules', 'verifier.event_log')))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
