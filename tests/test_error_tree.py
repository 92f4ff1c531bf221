"""One error tree: every exception class of the four packages derives from ``TiezhengError``.

Callers can then catch the project's errors in one clause and always get ``diagnostics()``; a
new class outside the tree fails here, named.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

from verifier.errors import TiezhengError

PACKAGES = ("verifier", "evidence", "anchor", "api")
#: Modules that are not importable on their own, with the reason. They define no exception.
NOT_IMPORTED = {
    "api.service.migrations.env": "Alembic's migration script runs only inside Alembic's own context",
}
#: Exception classes allowed outside the tree, with the reason (private control flow only).
OUTSIDE_THE_TREE: dict[str, str] = {}


def _modules() -> list[str]:
    names = []
    for package in PACKAGES:
        root = importlib.import_module(package)
        names.append(package)
        names += [info.name for info in pkgutil.walk_packages(root.__path__, f"{package}.")
                  if info.name not in NOT_IMPORTED]
    return names


def _exception_classes() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for name in _modules():
        module = importlib.import_module(name)
        for value in vars(module).values():
            if inspect.isclass(value) and issubclass(value, BaseException) and value.__module__ == name:
                found[f"{name}.{value.__qualname__}"] = value
    return found


def test_every_exception_class_of_the_project_derives_from_tiezheng_error() -> None:
    pytest.importorskip("fastapi")  # api/ needs the 'api' extra to import
    classes = _exception_classes()
    outside = sorted(name for name, cls in classes.items()
                     if not issubclass(cls, TiezhengError) and name not in OUTSIDE_THE_TREE)
    assert outside == []
    # The walk did see the branches it is meant to keep in the tree.
    assert {"verifier.checks.context.Skip", "evidence.capture_errors.CaptureError", "evidence.upload.UploadError",
            "anchor.rpc.AnchorError", "api.service.errors.ApiError", "api.cli.support.UserError"} <= set(classes)


def test_every_error_explains_itself_in_one_line() -> None:
    from api.cli.support import UserError
    from api.service.blobs import BlobMissing
    from api.service.errors import ApiError
    from api.service.verify_pool import VerifyBusy, VerifyTimeout
    from evidence.capture_errors import BlockedAddress, CaptureError
    from verifier.checks.context import Skip

    blocked = BlockedAddress("intranet.test", "10.0.0.1", "private (RFC 1918)")
    assert (blocked.host, blocked.address, blocked.kind) == ("intranet.test", "10.0.0.1", "private (RFC 1918)")
    assert blocked.diagnostics() == "intranet.test resolves to 10.0.0.1, which is private (RFC 1918)"
    assert CaptureError("page\n  timed out").reason == "page timed out"
    assert Skip("not sealed").reason == "not sealed"
    assert BlobMissing("ab" * 32).diagnostics() == f"no blob has the address {'ab' * 32}"
    assert UserError("no data dir", "give --data-dir").diagnostics() == "no data dir (give --data-dir)"
    assert ApiError(404, "not_found", "evidence not found").diagnostics() == \
        "not_found (HTTP 404): evidence not found"
    assert VerifyBusy(4).slots == 4 and VerifyTimeout(30).seconds == 30


def test_errors_that_replace_built_in_ones_can_still_be_caught_as_those() -> None:
    from api.service.blobs import BlobMissing
    from evidence.upload import UploadError

    assert issubclass(UploadError, ValueError) and issubclass(BlobMissing, LookupError)
