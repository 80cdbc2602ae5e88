"""Estafette: the shared runtime (`estafette.runtime`) and the operator and developer tools
(`estafette.tools`). Services live in `services/`, contracts in `schemas/`."""
