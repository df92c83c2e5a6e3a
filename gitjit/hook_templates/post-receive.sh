#!/bin/sh
# gitjit post-receive hook (SPEC s.14): tells the endpoints configured in
# `git config gitjit.notify.<name>.*` about new requests, decisions and state
# changes on the approvals branch. It runs after the refs moved, so it cannot
# refuse anything; it spools the events under $GIT_DIR/gitjit/notify/, hands
# their sending to a detached process and returns at once. It always exits 0.
#
# Installed with INSTALL_PYTHON and GITJIT_PYTHONPATH filled in, like the
# pre-receive hook; left as they are, it runs `python3` with its site as usual.
# A post-receive hook that was there before gitjit's is kept next to this one
# as post-receive.legacy and runs after it, on the same ref updates.
#
# gitjit-hook: post-receive (this line marks the file as gitjit's own)

INSTALL_PYTHON='@INSTALL_PYTHON@'
GITJIT_PYTHONPATH='@GITJIT_PYTHONPATH@'

flags=-S
run='import sys, gitjit.notify.post_receive as p; sys.exit(p.main())'
case "$INSTALL_PYTHON" in
    @*) INSTALL_PYTHON=python3; flags= ;;
esac
case "$GITJIT_PYTHONPATH" in
    @* | '') flags= ;;
    *) PYTHONPATH="$GITJIT_PYTHONPATH${PYTHONPATH:+:$PYTHONPATH}"; export PYTHONPATH ;;
esac

case "$0" in
    */*) hooks="${0%/*}" ;;
    *) hooks=. ;;
esac
legacy="$hooks/post-receive.legacy"
if [ ! -f "$legacy" ] || [ ! -x "$legacy" ]; then
    "$INSTALL_PYTHON" $flags -P -c "$run"
    exit 0
fi

# Both hooks read the same ref updates on stdin: keep a copy for each.
input=$(mktemp "${TMPDIR:-/tmp}/gitjit-post-receive.XXXXXX") || exit 0
trap 'rm -f -- "$input"; exit 0' HUP INT TERM
cat >"$input" || { rm -f -- "$input"; exit 0; }
"$INSTALL_PYTHON" $flags -P -c "$run" <"$input"
"$legacy" "$@" <"$input"
rm -f -- "$input"
exit 0
