"""Imported once by the verifier fork server (see `rewards.pool`): load math-verify and sympy's LaTeX parser, and
score one item, so that every worker forks warm instead of spending its first deadline on imports."""

from .pool import warm_up

warm_up()
