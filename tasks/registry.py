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
