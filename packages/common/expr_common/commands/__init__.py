"""The ``expr-data`` subcommands, one module each (see :mod:`expr_common.subcommands`)."""
