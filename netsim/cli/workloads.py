"""Imperative verbs: scale, label, annotate, taint, set image, rollout, edit, create X."""

from __future__ import annotations

from netsim.cli.context import CliError, Ctx


def run(verb: str, ctx: Ctx, args: list[str], argv: list[str]) -> int:
    raise CliError(f"error: {verb} is not implemented yet")


def create_generic(ctx: Ctx, args) -> int:
    raise CliError("error: must specify one of -f and -k")
