"""The ``audit`` command line: thin click commands over the library.

User mistakes (a bad claim file, a missing data path) end with one line naming the file, line or
path and exit status 2, never a traceback. The commands live by what they touch: claim files
(``claim_commands``), planning and training (``running``), finished runs and evidence
(``evidence_commands``); importing them here registers them on ``main``.
"""

from audit.cli import claim_commands, evidence_commands, running  # noqa: F401  (registers the commands)
from audit.cli.base import main
from audit.cli.running import scope_of

__all__ = ["main", "scope_of"]
