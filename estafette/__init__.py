"""Estafette: operator CLI, shared runtime and local developer tools."""
