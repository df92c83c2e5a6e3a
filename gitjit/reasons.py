"""Why something does not count or is refused: a stable code next to its text.

The text is for people and may change; the code is for programs (JSON
consumers, tests) and never does. Codes are lower-case kebab words, never
reused for another meaning; docs/format.md, section 9.1, lists
them all. Every code below has its one-line meaning in the comment beside it.
"""

from gitjit.namedtuple import NamedTuple


class Reason(NamedTuple):
    """One reason: `code` from the catalogue below, `text` as people read it."""

    code: str
    text: str

    def __str__(self) -> str:
        return self.text

    def prefixed(self, prefix: str) -> "Reason":
        """The same reason, its text led by `prefix: ` (a person, a path, a request)."""
        return Reason(self.code, f"{prefix}: {self.text}")

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "text": self.text}


# -- a signature, as GnuPG judged it -------------------------------------------------
BAD_SIGNATURE = "bad-signature"  # the signature does not match the signed data (BADSIG)
UNKNOWN_KEY = "unknown-key"  # signed by a key not in the branch's keys/ (NO_PUBKEY)
EXPIRED_KEY = "expired-key"  # the signing key (or subkey) is expired
REVOKED_KEY = "revoked-key"  # the signing key (or subkey) is revoked
EXPIRED_SIGNATURE = "expired-signature"  # the signature carries an expiry that has passed
WEAK_SIGNATURE = "weak-signature"  # a digest, algorithm or key size gitjit does not accept
MALFORMED_SIGNATURE = "malformed-signature"  # not exactly one OpenPGP signature packet, or odd status lines
NOT_SIGNED = "not-signed"  # a commit that must be signed is not
GPG_FAILED = "gpg-failed"  # gpg gave no verdict: killed, timed out, failed, or reported an error
KEY_MISSING = "key-missing"  # the key's material is not in keys/ or the keyring
# -- a decision ---------------------------------------------------------------------
NOT_APPROVER = "not-approver"  # the person is not (or no longer) an approver of the action
SELF_APPROVAL = "self-approval"  # the requester decided on their own request where it is not allowed
UNKNOWN_REQUESTER = "unknown-requester"  # self-approval is not allowed and the requester is not known
WRONG_SIGNER = "wrong-signer"  # signed by a key that is not the deciding person's in the policy
WRONG_REQUEST = "wrong-request"  # the decision names another request than its path
WRONG_BLOB = "wrong-blob"  # the decision is bound to another version of the request
WRONG_TARGET = "wrong-target"  # the decision is for another target than the request
DUPLICATE_DECISION = "duplicate-decision"  # the person already decided on this request
NO_SUCH_REQUEST = "no-such-request"  # the decision's request does not exist before it
SIGNED_BEFORE_REQUEST = "signed-before-request"  # the decision was signed before the request was created
FUTURE = "future"  # committed or signed ahead of the server's clock (time witness) or of `now`
CLOCK_SKEW = "clock-skew"  # signature time and committer time disagree by more than clock_skew
STALE = "stale"  # the approval is older than the action's freshness
NOT_CHECKED = "not-checked"  # the signature was never checked (fails closed)
# -- a request ----------------------------------------------------------------------
UNKNOWN_ACTION = "unknown-action"  # the action is not (or no longer) in the policy
TTL_TOO_LONG = "ttl-too-long"  # the request asks to live longer than max_ttl
NOT_A_REQUESTER = "not-a-requester"  # the signer may not request this action
DUPLICATE_REQUEST = "duplicate-request"  # a request with this id already exists
EXPIRED = "expired"  # the request's window has closed
NOT_YET_VALID = "not-yet-valid"  # the request's window has not opened yet
REJECTED = "rejected"  # an approver's veto counts
PENDING = "pending"  # fewer approvals count than the threshold
UNAPPROVABLE = "unapprovable"  # a pending request no rule set can make approved any more (format.md 13.3)
NO_REQUEST = "no-request"  # no request for this action and target
# -- break-glass and single-use approvals ---------------------------------------------
NOT_A_BREAKER = "not-a-breaker"  # a break-glass request not signed by a person its action's break_glass names
NO_BREAK_GLASS = "no-break-glass"  # a break-glass request for an action without break_glass
OWN_REVIEW = "own-review"  # the person who broke the glass approved their own break-glass request
NOT_SINGLE_USE = "not-single-use"  # a use record for a request whose action has no `uses`
USED = "used"  # every use of the request is recorded: no longer approved
USED_UP = "used-up"  # a use record beyond the action's `uses`
USE_OUT_OF_ORDER = "use-out-of-order"  # a use record whose number is not the next one, or not its file name
WRONG_USER = "wrong-user"  # a use record not signed by a person who may request the action
USE_NOT_RECORDED = "use-not-recorded"  # a protected tag of a single-use action without a use record naming it
# -- the branch's layout and records ------------------------------------------------
LAYOUT = "layout"  # a commit that does not add exactly one file where the layout allows it
TOO_LARGE = "too-large"  # a file larger than its limit
MALFORMED_RECORD = "malformed-record"  # a request or decision file that does not parse or validate
MALFORMED_COMMIT = "malformed-commit"  # a commit object gitjit cannot split into payload and signature
# -- trust in the branch itself ---------------------------------------------------------
NOT_TRUSTED = "not-trusted"  # the branch does not authenticate from its pinned root (no more specific code)
BAD_ROOT = "bad-root"  # the branch does not start at the pinned root, or its root commit is not valid
NOT_LINEAR = "not-linear"  # a merge, or a commit that does not extend the one before it
UNAUTHORIZED_POLICY_CHANGE = "unauthorized-policy-change"  # a policy commit no admin in force signed validly
NO_QUORUM = "no-quorum"  # a policy commit without the admin quorum the policy in force requires (an approved proposal)
BAD_POLICY = "bad-policy"  # an authorized policy.toml that does not parse
BAD_INPUT = "bad-input"  # the caller's input is wrong: nothing was written
MISSING_OBJECT = "missing-object"  # a git object the branch names is not in the repository
BAD_PUSH_LINE = "bad-push-line"  # a ref update line the hook cannot read
KEYRING_FAILED = "keyring-failed"  # the keyring of a keys/ folder could not be built
GIT_FAILED = "git-failed"  # git itself failed
INTERNAL = "internal"  # an unexpected error: refused, fails closed
SNAPSHOT_DAMAGED = "snapshot-damaged"  # a row of the local snapshot did not read back: set aside, the check failed closed
# -- writing from a clone -----------------------------------------------------------------
BRANCH_DIVERGED = "branch-diverged"  # the local approvals branch and the remote's have diverged
LOCAL_COMMIT_REFUSED = "local-commit-refused"  # an unpushed local commit on the approvals branch does not count
WORKTREE_DIRTY = "worktree-dirty"  # the approvals branch is checked out with uncommitted changes in the way
PUSH_REFUSED = "push-refused"  # the remote refused the push (its hook), or it kept losing races
SIGNING_NO_SECRET_KEY = "signing-no-secret-key"  # gpg holds only the public part of the signing key
SIGNING_NO_AGENT = "signing-no-agent"  # gpg-agent is not running and could not be started
SIGNING_NO_PINENTRY = "signing-no-pinentry"  # the key needs its passphrase and no pinentry could ask for it
SIGNING_FAILED = "signing-failed"  # gpg could not sign for another reason (its error code is given)
# -- the pre-receive hook ---------------------------------------------------------------
BRANCH_DELETED = "branch-deleted"  # a push deletes the approvals branch
BRANCH_MOVED = "branch-moved"  # the push expects the approvals branch elsewhere than the server has it
BRANCH_REWOUND = "branch-rewound"  # a push rewinds or rewrites the approvals branch
TAG_PROTECTED = "tag-protected"  # a push moves or deletes a protected tag
TAG_NOT_APPROVED = "tag-not-approved"  # a protected tag's creation is not approved
APPROVALS_NOT_LANDED = "approvals-not-landed"  # a tag approved only by this push's decisions, which may not land first
REPLACE_REF = "replace-ref"  # a push creates or moves a refs/replace/ ref, which would change what a tag shows
PUSH_TOO_LARGE = "push-too-large"  # more commits or tags in one push than the server takes (gitjit.maxPushCommits/maxPushTags)
# A push adding approvals-branch commits that do not count is refused with the first such commit's code.
