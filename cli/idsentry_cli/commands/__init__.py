"""The `idsentry` subcommands, one module per command group."""
