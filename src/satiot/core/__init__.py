"""Shared kernel: configuration, storage, clock, event log, auth and audit.

Nothing here imports a subsystem (network, oss, bss, mss) or an interface (api, web, cli).
"""
