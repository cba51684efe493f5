"""Job tests use the `committed` fixture of tests/conftest.py."""
