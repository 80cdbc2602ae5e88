"""Operator and developer tools, apart from the shared runtime: the `estafette` command (typer), the
local supervisor behind `make run`, the dev mail sink, `estafette match run` and the AsyncAPI writer.

Tools may import services (through `services.registry`) and the runtime; nothing imports tools.
"""
