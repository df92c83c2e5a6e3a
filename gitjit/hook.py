"""The entry point installed hooks call: `import gitjit.hook; gitjit.hook.main()`.

Hooks written by earlier releases import this module by name, so it stays
here; the check itself lives in `gitjit.server.pre_receive`.
"""

from gitjit.server.pre_receive import BadPushLine, main, parse_lines, pre_receive

__all__ = ["BadPushLine", "main", "parse_lines", "pre_receive"]
