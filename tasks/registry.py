"""Registers every built-in task with the harness (imported through the `tl_eval.tasks` entry point)."""

from tl_eval.harness.task import register_task

from tl_eval.tasks.custom import custom_task
from tl_eval.tasks.evalplus_tasks import HumanEvalPlusTask, MbppPlusTask
from tl_eval.tasks.gsm8k import Gsm8kTask
from tl_eval.tasks.humaneval import HumanEvalTask
from tl_eval.tasks.math500 import Math500Task
from tl_eval.tasks.mbpp import MbppSanitizedTask, MbppTask

for _cls in (HumanEvalTask, MbppTask, MbppSanitizedTask, Gsm8kTask, Math500Task, HumanEvalPlusTask, MbppPlusTask):
    register_task(_cls.name, _cls)
register_task("custom", custom_task)

# The task whose trace rules (corruption kinds, masking) stand for a task type where only the type is known:
# lm-eval's tasks are lm-eval's, and tl-pair is told only `task_type=math|code`.
RULES_OF_TYPE = {"math": Gsm8kTask, "code": HumanEvalTask}


def rules_task(task_type: str):
    """A task of `task_type` whose trace rules apply to any task of that type."""
    from tl_eval.harness.errors import ConfigError

    if task_type not in RULES_OF_TYPE:
        raise ConfigError(f"unknown task type {task_type!r}", f"use one of: {', '.join(RULES_OF_TYPE)}")
    return RULES_OF_TYPE[task_type]()
