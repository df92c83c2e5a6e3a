"""gitjit: just-in-time approval of sensitive actions, done the git way."""

__version__ = "0.1.0"
