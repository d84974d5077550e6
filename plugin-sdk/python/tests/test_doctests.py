"""The examples in the SDK's docstrings run as tests."""

import doctest
import importlib

MODULES = [
    "kith_plugin.aggregate",
    "kith_plugin.errors",
    "kith_plugin.filters",
    "kith_plugin.http",
    "kith_plugin.kv",
    "kith_plugin.log",
    "kith_plugin.records",
    "kith_plugin.settings",
    "kith_plugin.types",
]


def load_tests(loader, tests, ignore):
    for name in MODULES:
        tests.addTests(doctest.DocTestSuite(importlib.import_module(name)))
    return tests
