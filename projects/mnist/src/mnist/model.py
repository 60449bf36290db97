"""The digit CNN, which lives in libs/vision (shared with projects/adversarial); re-exported so
``mnist.model`` keeps working for mnist's callers."""

from vision.model import DigitCNN, ModelConfig

__all__ = ["DigitCNN", "ModelConfig"]
