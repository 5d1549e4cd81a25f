"""The package version, in a module of its own so that any module can read it without importing the
package ``__init__`` (which lazily imports the relay) and so that pyproject.toml reads it too."""

__version__ = "0.1.0"
