#!/bin/sh
# gitjit reference-transaction hook (docs/format.md, section 7.3): a protected tag never lands
# unless the approvals it was judged on are on the approvals branch.
#
# git runs this hook for every ref transaction, with the state as $1
# ("prepared": refs are locked, a non-zero exit aborts the transaction;
# "committed"; "aborted") and `<old> <new> <ref>` lines on stdin. gitjit's
# pre-receive hook writes what it accepted to $GIT_DIR/gitjit/tickets/<pid of
# receive-pack> (see gitjit/server/tickets.py); inside a push this hook lets a
# branch or tag update through only as that ticket says. Outside a push (no
# ticket for the process running the transaction: pack-refs, gc, an
# operator's update-ref) it does nothing, as pre-receive never saw it.
# It starts no Python: built-in shell only, and git itself in the one case
# that needs it.
#
# gitjit-hook: reference-transaction (this line marks the file as gitjit's own)

state=$1
lines=
while read -r old new ref; do
    lines="$lines$old $new $ref
"
done

ticket="${GIT_DIR:-.}/gitjit/tickets/$PPID"
[ -f "$ticket" ] || state=outside-a-push

# ticketed OLD NEW REF: sets verdict and detail from the ticket line naming exactly this update.
ticketed() {
    verdict= detail=
    while read -r t_ref t_old t_new t_verdict t_detail; do
        if [ "$t_ref" = "$3" ] && [ "$t_old" = "$1" ] && [ "$t_new" = "$2" ]; then
            verdict=$t_verdict detail=$t_detail
            return 0
        fi
    done <"$ticket"
    return 1
}

# landed COMMIT BRANCH: true when COMMIT is on BRANCH; git is asked only where the push cannot tell.
landed() {
    while read -r t_ref t_new t_dash t_verdict t_rest; do
        [ "$t_verdict" = landed ] && [ "$t_ref" = "$2" ] && [ "$t_new" = "$1" ] && return 0
    done <"$ticket"
    while read -r l_old l_new l_ref; do  # an atomic push moves the branch in this very transaction
        [ "$l_ref" = "$2" ] && [ "$l_new" = "$1" ] && return 0
    done <<LINES
$lines
LINES
    # --no-replace-objects: a refs/replace/ ref must not make a commit look like an ancestor
    git --no-replace-objects merge-base --is-ancestor "$1" "$2" 2>/dev/null
}

refused=0
case "$state" in
prepared)
    while read -r old new ref; do
        case "$ref" in refs/heads/* | refs/tags/*) ;; *) continue ;; esac
        if ! ticketed "$old" "$new" "$ref"; then
            echo "gitjit: $ref refused: this update is not the one gitjit's pre-receive hook judged" >&2
            refused=1
            continue
        fi
        if [ "$verdict" = need ]; then
            commit=${detail%% *} branch=${detail#* }
            if ! landed "$commit" "$branch"; then
                echo "gitjit: $ref refused: the approvals it was judged on did not land ($branch does not hold $commit): fetch, then push the tag again" >&2
                refused=1
            fi
        fi
    done <<LINES
$lines
LINES
    ;;
committed)
    while read -r old new ref; do
        ticketed "$old" "$new" "$ref" || continue
        case "$verdict" in
        pin)
            git config --get gitjit.root >/dev/null 2>&1 || git config gitjit.root "$detail"
            echo "$ref $new - landed" >>"$ticket"
            ;;
        branch)
            echo "$ref $new - landed" >>"$ticket"
            ;;
        esac
    done <<LINES
$lines
LINES
    ;;
esac
[ "$refused" -eq 0 ] || exit 1

# A reference-transaction hook that was there before gitjit's runs after it, on the same input.
case "$0" in
    */*) legacy="${0%/*}/reference-transaction.legacy" ;;
    *) legacy=./reference-transaction.legacy ;;
esac
if [ -f "$legacy" ] && [ -x "$legacy" ]; then
    printf '%s' "$lines" | "$legacy" "$@"
    exit
fi
exit 0
