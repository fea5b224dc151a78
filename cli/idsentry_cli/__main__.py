"""`python -m idsentry_cli`: the same as the `idsentry` console script."""

from idsentry_cli.main import main

main()
