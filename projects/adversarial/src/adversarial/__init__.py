"""Attacks and defences on the digit classifier."""

from adversarial.core import Model, make_data, train

__all__ = ["Model", "make_data", "train"]
