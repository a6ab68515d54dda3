"""Shared code for the KVM-on-VMX site: Markdown extensions, checks and helpers.

Scripts in ``scripts/`` are thin command-line wrappers around this package so
that the tests can import the same logic they exercise.
"""
