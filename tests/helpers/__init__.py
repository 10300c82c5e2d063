"""Shared test helpers: configs, reference implementations, a loopback Hub, DDP scripts."""
