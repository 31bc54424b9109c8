"""Fakes and helpers shared by the test suites (and the benchmark): never imported by the product."""
