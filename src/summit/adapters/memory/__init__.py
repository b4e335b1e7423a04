"""Embedded in-process adapters: the objects port and the cache port (``memory://``).

Real adapters, not test fakes: thread-safe, with state per instance, passing the same contract
suites as the adapters on real engines. State lives as long as the process.
"""
