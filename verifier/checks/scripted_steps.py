"""The scripted steps a capture ran (``scripted-step`` lines of the call log), as facts for the reports.

The court sees exactly what the program did: each step's action and target as the log states them,
what came of it, and the hash of the viewport screenshot taken after it (P2 holds that file to the
hash). Nothing here decides a check; values are kept short and the reports escape them.
"""

from __future__ import annotations

from typing import Any

from verifier.call_log import LogLine
from verifier.capture_format import SCRIPTED_STEP

MAX_STEPS_SHOWN = 50
MAX_VALUE_CHARS = 300
#: Outcome fields worth a reader's time, in this order (the rest stay in the log).
OUTCOME_FIELDS = ("clicked", "matched", "dismissed", "visible", "waited_ms", "typed_characters", "rounds",
                  "scroll_steps", "settled")


def _short(value: object) -> object:
    if isinstance(value, str) and len(value) > MAX_VALUE_CHARS:
        return value[:MAX_VALUE_CHARS - 1] + "…"
    return value if isinstance(value, (str, int, float, bool)) or value is None else str(value)[:MAX_VALUE_CHARS]


def scripted_step_facts(lines: tuple[LogLine, ...]) -> list[dict[str, Any]]:
    """One dict per logged scripted step: index, action, selector/text/ms, outcome, screenshot path and sha256."""
    steps: list[dict[str, Any]] = []
    for line in lines:
        if line.step != SCRIPTED_STEP or len(steps) >= MAX_STEPS_SHOWN:
            continue
        fact: dict[str, Any] = {k: _short(line.inputs.get(k)) for k in ("index", "action", "selector", "text", "ms")
                                if line.inputs.get(k) is not None}
        fact["outcome"] = {k: _short(line.outcome[k]) for k in OUTCOME_FIELDS if k in line.outcome}
        if line.outputs:
            fact["screenshot"] = {"path": line.outputs[0].path, "sha256": line.outputs[0].sha256}
        steps.append(fact)
    return steps


def describe_step(fact: dict[str, Any]) -> str:
    """``2. click #more: clicked 1 (evidence/step-02.png, sha256 ab12…)``, unescaped."""
    target = " ".join(str(fact[k]) if k != "text" else repr(fact[k]) for k in ("selector", "text") if k in fact)
    if "ms" in fact:
        target = f"{fact['ms']} ms"
    outcome = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in fact.get("outcome", {}).items())
    shot = fact.get("screenshot")
    where = f" ({shot['path']}, sha256 {str(shot['sha256'])[:16]}…)" if isinstance(shot, dict) else ""
    head = f"{fact.get('index', '?')}. {fact.get('action', '?')} {target}".rstrip()
    return head + (f": {outcome}" if outcome else "") + where
