"""Zero-, one- and k-shot prompting with a measured evaluation harness."""

from few_shot.prompts import FORMATS, PromptBuilder, PromptFormat
from few_shot.tasks import Example, Task, TaskError, load_task

__all__ = ["FORMATS", "Example", "PromptBuilder", "PromptFormat", "Task", "TaskError", "load_task"]
