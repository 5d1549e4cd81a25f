"""relaysim: a test bench for Nostr web clients that must run for hours without leaking."""

__version__ = "0.1.0"
