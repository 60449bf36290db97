"""Zero-, one- and k-shot prompting with a measured evaluation harness."""

from few_shot.core import complete, load

__all__ = ["complete", "load"]
