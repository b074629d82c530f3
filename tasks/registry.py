"""Registers every built-in task with the harness (imported through the `tl_eval.tasks` entry point)."""

from harness.task import register_task

from tasks.custom import custom_task
from tasks.evalplus_tasks import HumanEvalPlusTask, MbppPlusTask
from tasks.gsm8k import Gsm8kTask
from tasks.humaneval import HumanEvalTask
from tasks.math500 import Math500Task
from tasks.mbpp import MbppSanitizedTask, MbppTask

for _cls in (HumanEvalTask, MbppTask, MbppSanitizedTask, Gsm8kTask, Math500Task, HumanEvalPlusTask, MbppPlusTask):
    register_task(_cls.name, _cls)
register_task("custom", custom_task)
