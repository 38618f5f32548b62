"""Signing run commits and tags the way git does, and reading who signed them.

xp writes run commits itself (``commit.write_run_commit``), so a signed run is written by
``git commit-tree -S`` instead, with the same tree, parent, identities, dates and message:
git then runs whatever signing program the user configured (``gpg.format`` openpgp, ssh or
x509, ``user.signingKey``, ``gpg.program``, an agent) and the commit differs from the
unsigned one only by its ``gpgsig`` header. Verifying asks git too (``verify-commit``,
``verify-tag``: their exit code is the verdict), so xp trusts exactly the keys git trusts:
the user's GPG keyring, or the SSH keys of ``gpg.ssh.allowedSignersFile``. Who signed comes
from the signature itself where it can (an SSH signature carries its public key, which is
looked up in the allowed-signers file, so a good SSH signature is checked once); else from
``git log``'s signature fields for commits (OpenPGP, X.509, and every failure's reason) and,
for tags (git 2.39 has no such fields for them), the OpenPGP issuer key.
"""

from __future__ import annotations

import base64
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from xp.gitstore import gitconfig
from xp.gitstore.catfile import read_objects
from xp.gitstore.identity import SIGN_KEY as SIGN_KEY
from xp.gitstore.repo import GitRepo, git_failure

_ARMOR = {
    b"-----BEGIN SSH SIGNATURE-----": "ssh",
    b"-----BEGIN PGP SIGNATURE-----": "openpgp",
    b"-----BEGIN SIGNED MESSAGE-----": "x509",
}
_memo: dict[tuple[object, ...], bool] = {}


def enabled(repo: GitRepo) -> bool:
    """Whether ``xp.sign`` is on; remembered until a config file changes (every run asks)."""
    key = gitconfig.config_key(repo)
    if key not in _memo:
        proc = repo.git("config", "--type=bool", "--get", SIGN_KEY, check=False)
        _memo.clear()
        _memo[key] = proc.returncode == 0 and proc.stdout.strip() == b"true"
    return _memo[key]


def signing_problem(repo: GitRepo) -> str:
    """'' when git can sign here with the user's key, else git's reason. It signs a
    throwaway commit of the empty tree into a temporary object folder, so nothing is kept."""
    import tempfile

    empty_tree = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
    args = ("commit-tree", "-S", empty_tree)
    with tempfile.TemporaryDirectory(prefix="xp-sign-") as objects:
        env = {"GIT_OBJECT_DIRECTORY": objects, "GIT_ALTERNATE_OBJECT_DIRECTORIES": ""}
        proc = repo.git(*args, env=env, input=b"xp: signing check\n", check=False)
    return "" if proc.returncode == 0 else str(git_failure(args, proc))


def _ident_env(prefix: str, ident: bytes, when: int, tz: int) -> dict[str, str]:
    text = ident.decode("utf-8", "surrogateescape")
    name, _, email = text.partition(" <")
    sign, offset = ("-", -tz) if tz < 0 else ("+", tz)
    return {
        f"GIT_{prefix}_NAME": name,
        f"GIT_{prefix}_EMAIL": email.rstrip(">"),
        f"GIT_{prefix}_DATE": f"{when} {sign}{offset // 3600:02d}{offset % 3600 // 60:02d}",
    }


def signed_commit(
    repo: GitRepo,
    *,
    tree: str,
    parent: str | None,
    message: bytes,
    ident: bytes,
    author_time: int,
    commit_time: int,
    tz: int,
) -> str:
    """Write a signed commit with git (``commit-tree -S``); its sha. The same bytes as the
    unsigned commit xp would write, plus the ``gpgsig`` header."""
    env = {
        **_ident_env("AUTHOR", ident, author_time, tz),
        **_ident_env("COMMITTER", ident, commit_time, tz),
    }
    args = ["commit-tree", "-S", tree, *(["-p", parent] if parent else []), "-F", "-"]
    proc = repo.git(*args, env=env, input=message, check=False)
    if proc.returncode != 0:
        raise git_failure(
            args, proc, "check user.signingKey and gpg.format, or turn signing off (xp.sign)"
        )
    return proc.stdout.decode().strip()


# -- reading signatures -------------------------------------------------------------------


@dataclass(frozen=True)
class Signature:
    """What git says of one object's signature."""

    status: str  # good, unsigned, bad, unknown-key, unverifiable
    kind: str = ""  # ssh, openpgp or x509
    signer: str = ""  # the principal (SSH) or the key's user id (OpenPGP), when known
    key: str = ""  # the key's fingerprint or id
    reason: str = ""  # why it is not good

    @property
    def good(self) -> bool:
        return self.status == "good"

    def describe(self) -> str:
        who = self.signer or "an unnamed key"
        key = f" ({self.kind} key {self.key})" if self.key else f" ({self.kind})"
        return f"signed by {who}{key}" if self.good else self.reason


def _split_signed(body: bytes, is_tag: bool) -> tuple[str, bytes]:
    """(kind, signature) found in a raw commit (``gpgsig`` header) or tag (message tail)."""
    if is_tag:
        for armor, kind in _ARMOR.items():
            at = body.rfind(b"\n" + armor)
            if at >= 0 or body.startswith(armor):
                return kind, body[at + 1 if at >= 0 else 0 :]
        return "", b""
    headers = body.partition(b"\n\n")[0]
    lines = headers.split(b"\n")
    for i, ln in enumerate(lines):
        if ln.startswith(b"gpgsig "):
            sig = [ln[7:]] + [x[1:] for x in lines[i + 1 :] if x.startswith(b" ")]
            first = sig[0].strip()
            return _ARMOR.get(first, "openpgp"), b"\n".join(sig)
    return "", b""


def _allowed_signers(repo: GitRepo) -> Path | None:
    path = gitconfig.get(repo, "gpg.ssh.allowedSignersFile", path=True)
    if not path:
        return None
    full = Path(path) if os.path.isabs(path) else repo.worktree / path
    return full if full.is_file() else None


def _ssh_key(signature: bytes) -> tuple[str, str] | None:
    """(key type + base64 blob, SHA256 fingerprint) of the public key in an SSH signature."""
    lines = [ln.strip() for ln in signature.strip().splitlines()]
    try:
        raw = base64.b64decode(b"".join(lines[1:-1]))
        if raw[:6] != b"SSHSIG":
            return None
        (length,) = struct.unpack(">I", raw[10:14])
        blob = raw[14 : 14 + length]
        (tlen,) = struct.unpack(">I", blob[:4])
        ktype = blob[4 : 4 + tlen].decode()
    except (ValueError, struct.error, UnicodeDecodeError):
        return None
    import hashlib  # here only: every run asks whether to sign, few read a key

    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return f"{ktype} {base64.b64encode(blob).decode()}", f"SHA256:{digest}"


def _principal(allowed: Path | None, key: str) -> str:
    """The principals the allowed-signers file gives ``key`` (``type base64``)."""
    if allowed is None:
        return ""
    try:
        text = allowed.read_text(errors="replace")
    except OSError:
        return ""
    ktype, _, blob = key.partition(" ")
    for line in text.splitlines():
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        for i in range(1, len(parts) - 1):
            if parts[i] == ktype and parts[i + 1] == blob:
                return parts[0]
    return ""


def _pgp_issuer(signature: bytes) -> str:
    """The issuer key id (or fingerprint) an OpenPGP signature names, as hex; '' if none."""
    lines = [ln.strip() for ln in signature.strip().splitlines()]
    body = [ln for ln in lines[1:-1] if ln and not ln.startswith(b"=") and b":" not in ln]
    try:
        data = base64.b64decode(b"".join(body))
        tag = data[0]
        if tag & 0x40:  # new format length
            first = data[1]
            start = 2 if first < 192 else (3 if first < 224 else 6)
        else:
            start = 1 + {0: 1, 1: 2, 2: 4}.get(tag & 3, 0)
        pkt = data[start:]
        if pkt[0] != 4:
            return ""
        pos = 4
        for _ in range(2):  # hashed, then unhashed subpackets
            (size,) = struct.unpack(">H", pkt[pos : pos + 2])
            sub = pkt[pos + 2 : pos + 2 + size]
            pos += 2 + size
            i = 0
            while i < len(sub):
                n = sub[i]
                i += 1
                if n >= 192:
                    n = ((n - 192) << 8) + sub[i] + 192
                    i += 1
                kind = sub[i] & 0x7F
                if kind == 33:
                    return sub[i + 2 : i + n].hex().upper()
                if kind == 16:
                    return sub[i + 1 : i + n].hex().upper()
                i += n
    except (ValueError, IndexError, struct.error):
        return ""
    return ""


def _raw(repo: GitRepo, sha: str) -> bytes | None:
    return dict(read_objects(repo, [sha])).get(sha)


def commit_signature(repo: GitRepo, sha: str) -> Signature:
    """The verdict on commit ``sha``'s signature, and who made it."""
    body = _raw(repo, sha)
    kind, sig = _split_signed(body or b"", False)
    if not kind:
        return Signature("unsigned", reason="not signed")
    allowed = _allowed_signers(repo) if kind == "ssh" else None
    if kind == "ssh" and allowed is None:
        return Signature(
            "unverifiable",
            kind,
            reason="SSH-signed, but git has no gpg.ssh.allowedSignersFile to check it against;"
            " set it (git config gpg.ssh.allowedSignersFile FILE)",
        )
    ok = repo.git("verify-commit", sha, check=False).returncode == 0
    found = _ssh_key(sig) if kind == "ssh" else None
    if ok and found is not None:  # who signed, from the signature (as for tags): no 2nd check
        return Signature("good", kind, _principal(allowed, found[0]), found[1])
    # git's own account: the signer's name for OpenPGP/X.509, the reason of a failure
    fields = repo.git("log", "-1", "--no-walk", "--format=%G?%x00%GS%x00%GF%x00%GK", sha)
    out = fields.stdout.decode("utf-8", "replace").strip() + "\0" * 3
    code, signer, fingerprint, keyid = out.split("\0")[:4]
    key = fingerprint or keyid
    if ok:
        return Signature("good", kind, signer, key)
    return _failed(kind, code, key, "commit")


def _failed(kind: str, code: str, key: str, what: str) -> Signature:
    if code == "U" or (kind == "ssh" and code in ("", "N")):
        return Signature(
            "unknown-key",
            kind,
            key=key,
            reason=f"the {what} is signed by a key git does not trust ({key or 'unknown'});"
            " add it to gpg.ssh.allowedSignersFile or your GPG keyring if it is genuine",
        )
    words = {
        "B": "a bad signature: the signed bytes were changed",
        "X": "an expired signature",
        "Y": "a signature by an expired key",
        "R": "a signature by a revoked key",
        "E": "a signature git cannot check (the key is missing)",
    }
    return Signature(
        "bad", kind, key=key, reason=f"the {what} has {words.get(code, 'a signature git refuses')}"
    )


def tag_signature(repo: GitRepo, name: str) -> Signature:
    """The verdict on annotated tag ``name``'s signature, and who made it."""
    proc = repo.git("rev-parse", "--verify", "-q", f"refs/tags/{name}", check=False)
    sha = proc.stdout.decode().strip()
    body = _raw(repo, sha) if len(sha) == 40 else None
    if body is None or not body.startswith(b"object "):
        return Signature("unsigned", reason=f"tag {name} is not an annotated tag")
    kind, sig = _split_signed(body.partition(b"\n\n")[2], True)
    if not kind:
        return Signature("unsigned", reason=f"tag {name} is not signed")
    allowed = _allowed_signers(repo) if kind == "ssh" else None
    if kind == "ssh" and allowed is None:
        return Signature(
            "unverifiable",
            kind,
            reason=f"tag {name} is SSH-signed, but git has no gpg.ssh.allowedSignersFile to"
            " check it against; set it (git config gpg.ssh.allowedSignersFile FILE)",
        )
    ok = repo.git("verify-tag", "--", name, check=False).returncode == 0
    signer, key = "", ""
    if kind == "ssh":
        found = _ssh_key(sig)
        if found is not None:
            signer, key = _principal(allowed, found[0]), found[1]
    elif kind == "openpgp":
        key = _pgp_issuer(sig)
    if ok:
        return Signature("good", kind, signer, key)
    code = "U" if kind == "ssh" and not signer else "B"
    return _failed(kind, code, key, f"tag {name}")
