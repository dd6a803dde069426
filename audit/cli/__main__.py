"""``python -m audit.cli``: the same commands as the ``audit`` script."""

from audit.cli import main

main()
