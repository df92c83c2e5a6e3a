"""The entry point installed hooks call: `import gitjit.hook; gitjit.hook.main()`.

Hooks written by earlier releases import this module by name, and a hook
may also be `python -m gitjit.hook`, so both stay here; the check itself
lives in `gitjit.server.pre_receive`.
"""

import sys

from gitjit.server.pre_receive import BadPushLine, main, parse_lines, pre_receive

__all__ = ["BadPushLine", "main", "parse_lines", "pre_receive"]

if __name__ == "__main__":
    sys.exit(main())
