#!/bin/sh
# gitjit post-receive hook (docs/notifications.md): tells the endpoints
# configured in `git config gitjit.notify.<name>.*` about new requests,
# decisions and state changes on the approvals branch. It runs after the refs
# moved, so it cannot refuse anything; it spools the events under
# $GIT_DIR/gitjit/notify/, hands their sending to a detached process and
# returns at once. It always exits 0.
#
# Where no endpoint is configured it costs one `git config` read and starts no
# Python. Installed by `gitjit hook install` with INSTALL_PYTHON and
# GITJIT_PYTHONPATH filled in, like the pre-receive hook. A post-receive hook
# that was there before gitjit's is kept as post-receive.legacy and runs
# after it, on the same ref updates, in the environment git gave this script.
#
# gitjit-hook: post-receive (this line marks the file as gitjit's own)

INSTALL_PYTHON='@INSTALL_PYTHON@'
GITJIT_PYTHONPATH='@GITJIT_PYTHONPATH@'

# -I and -S as in the pre-receive hook: isolated from the environment git
# passes on, the import path exactly what the install found.
flags=-I
run='import sys, gitjit.notify.post_receive as p; sys.exit(p.main())'
case "$INSTALL_PYTHON" in
    @*) INSTALL_PYTHON=python3 ;;
esac
case "$GITJIT_PYTHONPATH" in
    @* | '') ;;
    *) flags='-I -S'; run="import sys; sys.path[:0] = sys.argv[1].split(':'); $run" ;;
esac

case "$0" in
    */*) hooks="${0%/*}" ;;
    *) hooks=. ;;
esac
legacy="$hooks/post-receive.legacy"
# git config exits 1 for "no such key": no endpoint, nothing to do. Any other
# failure (a config git cannot read) is left to gitjit, which says so on one line.
notify=yes
git config --get-regexp '^gitjit\.notify\.' >/dev/null 2>&1
[ $? -ne 1 ] || notify=
if [ ! -f "$legacy" ] || [ ! -x "$legacy" ]; then
    [ -n "$notify" ] || exit 0
    "$INSTALL_PYTHON" $flags -c "$run" "$GITJIT_PYTHONPATH"
    exit 0
fi

# Both hooks read the same ref updates on stdin: keep a copy for each.
input=$(mktemp "${TMPDIR:-/tmp}/gitjit-post-receive.XXXXXX") || exit 0
trap 'rm -f -- "$input"; exit 0' HUP INT TERM
cat >"$input" || { rm -f -- "$input"; exit 0; }
[ -z "$notify" ] || "$INSTALL_PYTHON" $flags -c "$run" "$GITJIT_PYTHONPATH" <"$input"
"$legacy" "$@" <"$input"
rm -f -- "$input"
exit 0
