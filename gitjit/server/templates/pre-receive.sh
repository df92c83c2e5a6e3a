#!/bin/sh
# gitjit pre-receive hook (docs/format.md, section 7): refuses a push that breaks the
# approvals branch or pushes a protected tag without an approved request.
# git updates no ref at all when this hook exits non-zero.
#
# `gitjit hook install` writes this file with INSTALL_PYTHON filled in, and
# `gitjit hook install --output FILE` writes it as an executable FILE for a
# pre-receive.d/ directory. A copy placed by hand with the placeholders left
# as they are runs `python3`, which must be able to `import gitjit`.
# See docs/hosting.md.
#
# A pre-receive hook that was there before gitjit's is kept next to this
# one as pre-receive.legacy: it runs after gitjit's checks pass, on the same
# ref updates and in the environment git gave this script (the script
# exports nothing), and the push goes through only if both accept it.
#
# gitjit-hook: pre-receive (this line marks the file as gitjit's own)

INSTALL_PYTHON='@INSTALL_PYTHON@'
GITJIT_PYTHONPATH='@GITJIT_PYTHONPATH@'

# -I isolates Python from the environment git passes on (an inherited
# PYTHONPATH, PYTHONHOME or user site must not change what the hook runs) and
# keeps the repository off the import path. -S skips the site machinery,
# about 20 ms of every push: the install wrote down where gitjit and
# python-gnupg are instead, and the hook puts exactly that on sys.path.
# -c rather than -m spares every push the import of runpy.
flags=-I
run='import sys, gitjit.hook; sys.exit(gitjit.hook.main())'
case "$INSTALL_PYTHON" in
    @*) INSTALL_PYTHON=python3 ;;
esac
case "$GITJIT_PYTHONPATH" in
    @* | '') ;;
    *) flags='-I -S'; run="import sys; sys.path[:0] = sys.argv[1].split(':'); $run" ;;
esac

case "$0" in  # the hooks folder, without a dirname process
    */*) hooks="${0%/*}" ;;
    *) hooks=. ;;
esac
legacy="$hooks/pre-receive.legacy"
# The reference-transaction guard beside this hook reads what gitjit accepted
# under the id of the receive-pack that runs both (see gitjit/server/tickets.py);
# these two reach gitjit only, never the chained hook (this path has none).
push_id=$PPID
if [ ! -f "$legacy" ] || [ ! -x "$legacy" ]; then
    GITJIT_PUSH_ID=$push_id GITJIT_HOOKS_DIR=$hooks exec "$INSTALL_PYTHON" $flags -c "$run" "$GITJIT_PYTHONPATH"
fi

# Both hooks read the same ref updates on stdin: keep a copy for each.
input=$(mktemp "${TMPDIR:-/tmp}/gitjit-pre-receive.XXXXXX") || exit 1
trap 'rm -f -- "$input"; exit 1' HUP INT TERM
cat >"$input" || { rm -f -- "$input"; exit 1; }
GITJIT_PUSH_ID=$push_id GITJIT_HOOKS_DIR=$hooks "$INSTALL_PYTHON" $flags -c "$run" "$GITJIT_PYTHONPATH" <"$input"
status=$?
if [ "$status" -eq 0 ]; then
    "$legacy" "$@" <"$input"
    status=$?
fi
rm -f -- "$input"
exit "$status"
