"""Attacks and defences on the digit classifier (the shared :mod:`vision` CNN)."""

from adversarial.attacks import ATTACK_NAMES, FGSMConfig, PGDConfig, SimBAConfig, fgsm, pgd, simba

__all__ = ["ATTACK_NAMES", "FGSMConfig", "PGDConfig", "SimBAConfig", "fgsm", "pgd", "simba"]
