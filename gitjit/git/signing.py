"""Why git could not sign, and what fixes it (docs/format.md, section 8.3).

git says only "gpg failed to sign the data" whatever went wrong. When a
signing `git commit-tree -S` fails, gitjit asks GnuPG itself, the way git
runs it (`-bsau KEY`, the user's `gpg.program`), but with `--batch` and
`--pinentry-mode error` so the question never prompts, and decides from its
status lines (`FAILURE sign <code>`, `INV_SGNR <reason>`), never its words.
The code is a libgpg-error value: its low 16 bits name the error.
"""

from __future__ import annotations

import subprocess

from gitjit import reasons as R
from gitjit.errors import BadInput

# libgpg-error codes (gpg-error.h)
_NO_SECKEY = 17
_BAD_PASSPHRASE = 11
_NO_AGENT = 77
_NO_PIN_ENTRY = 85
_PIN_ENTRY = 86
_CANCELED = 99
_ENOTTY = 0x8000 | 102  # a system error: the pinentry has no terminal
_INV_SGNR_NO_SECKEY = "9"  # INV_SGNR reason: no secret key


def _status(gpg: str, key: str | None) -> tuple[list[list[str]], int] | None:
    command = [gpg, "--batch", "--no-tty", "--pinentry-mode", "error", "--status-fd", "1", "-bsa"]
    if key:
        command += ["-u", key]
    try:
        result = subprocess.run(command, input=b"gitjit signing check\n", capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = [line.split()[1:] for line in result.stdout.decode("utf-8", "replace").splitlines()
             if line.startswith("[GNUPG:] ")]
    return lines, result.returncode


def explain(gpg: str, key: str | None) -> BadInput:
    """The error to raise for a failed signature with `key` (user.signingkey; None: git's default)."""
    shown = key or "your default key"
    found = _status(gpg, key)
    if found is None:
        return BadInput(f"git could not sign, and {gpg} could not be run to tell why: "
                        f"check git config gpg.program", R.SIGNING_FAILED)
    lines, returncode = found
    failure = next((int(f[2]) & 0xFFFF for f in lines if f[:2] == ["FAILURE", "sign"] and len(f) > 2
                    and f[2].isdigit()), None)
    no_seckey = any(f[:1] == ["INV_SGNR"] and f[1:2] == [_INV_SGNR_NO_SECKEY] for f in lines)
    if no_seckey or failure == _NO_SECKEY:
        return BadInput(f"cannot sign with {shown}: GnuPG here has only its public key, not the secret key. "
                        f"Import your secret key (gpg --import), plug in the smartcard that holds it, or set "
                        f"'git config user.signingkey' to a key listed by 'gpg --list-secret-keys'",
                        R.SIGNING_NO_SECRET_KEY)
    if failure == _NO_AGENT:
        return BadInput(f"cannot sign with {shown}: gpg-agent is not running and gpg could not start it. "
                        f"Start it with 'gpgconf --launch gpg-agent' (and look for 'no-autostart' in gpg.conf)",
                        R.SIGNING_NO_AGENT)
    if failure in (_NO_PIN_ENTRY, _PIN_ENTRY, _ENOTTY, _CANCELED, _BAD_PASSPHRASE):
        return BadInput(f"cannot sign with {shown}: the key needs its passphrase and no pinentry could ask "
                        f"for it (or it was cancelled). In a terminal run 'export GPG_TTY=$(tty)' and try "
                        f"again, or unlock the key first with 'echo test | gpg --clearsign -u {key or 'KEY'}'",
                        R.SIGNING_NO_PINENTRY)
    if returncode == 0 and any(f[:1] == ["SIG_CREATED"] for f in lines):
        return BadInput(f"git could not sign with {shown}, but gpg signs with it now (a passphrase prompt "
                        f"that was cancelled or timed out?): run the command again", R.SIGNING_FAILED)
    code = f"gpg error code {failure}" if failure is not None else f"gpg exit {returncode}"
    return BadInput(f"cannot sign with {shown} ({code}): try 'echo test | gpg --clearsign -u "
                    f"{key or 'KEY'}' to see GnuPG's own message", R.SIGNING_FAILED)
