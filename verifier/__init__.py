"""Tiezheng's trust core: everything needed to check an evidence package, and nothing else.

This package must not import ``evidence``, ``anchor``, ``api``, a web framework or a database
library: it is what opposing counsel installs.
"""

__version__ = "0.1.0"
