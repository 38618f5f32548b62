"""``xp verify MODEL@STAGE|RUN``: each link of the provenance chain, and who signed it."""

from __future__ import annotations

import click

from xp.cli import render
from xp.cli.common import open_repo
from xp.errors import VerificationError


@click.command()
@click.argument("spec", metavar="MODEL@STAGE|RUN")
def verify(spec: str) -> None:
    """Check the chain from a model's bytes to signed git objects.

    Stage and version tags (signed), the run commit (signed), its code tree (re-hashed),
    the recorded sha256 of each artifact against the cached bytes. Exits 1 at the first
    broken link, saying why. Signatures are checked by git: your GPG keyring, or the SSH
    keys of gpg.ssh.allowedSignersFile.
    """
    from xp.sharing.verify import verify as check

    repo = open_repo()
    result = check(repo, spec=spec)
    rows = [
        ["ok" if link.ok else "FAIL", link.kind, link.name, link.detail] for link in result.links
    ]
    render.echo(render.table(["", "link", "what", "detail"], rows))
    broken = result.broken
    if broken is not None:
        raise VerificationError(f"{broken.kind} {broken.name}: {broken.detail}")
    render.echo(f"verified: {len(result.links)} links hold")
