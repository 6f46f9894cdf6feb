"""profit-rl: ProFit SFT (probability-guided token selection) on TRL, then GRPO, then Avg@k/Pass@k evals.

`from profit_rl import ProFitConfig, ProFitSFTTrainer` is all a TRL user needs; the heavy imports are lazy so that
`profit_rl.losses` and the CLI stay cheap to import.
"""

__version__ = "0.1.0"

from . import deprecated as _deprecated

_deprecated.install()  # old import paths (profit_rl.evals.io, ...) keep working for one release, with a warning
_deprecated.install_checkout_hint()  # profit_rl.evals in a checkout that was never installed: say how, not "no module"

__all__ = ["ProFitConfig", "ProFitSFTTrainer", "token_weights", "selection_loss", "SELECTIONS"]


def __getattr__(name):
    if name in ("ProFitConfig", "ProFitSFTTrainer"):
        from . import trainer

        return getattr(trainer, name)
    if name in ("token_weights", "selection_loss", "SELECTIONS"):
        from . import losses

        return getattr(losses, name)
    raise AttributeError(f"module 'profit_rl' has no attribute {name!r}")
