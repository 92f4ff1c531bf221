"""Rendering a verification ``Report`` for people: the terminal table, the HTML page and the PDF certificate.

Apart from the checks on purpose: the auditable core (reading the package, the checks, the
verdict in ``verifier.verdict``) does not depend on anything here, and ``tiezheng-verify --json``
imports none of it. These modules only present what the report already decided.
"""
