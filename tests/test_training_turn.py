"""The trainer's planner turn is the evaluation's: the same prompt bytes and tokens, budget and stops."""

import pytest

from tl_eval.harness.config import RunConfig
from tl_eval.harness.evaluate import prepare, run
from tl_eval.harness.models import register_scripted
from tl_eval.harness.models.hf import chat_prompt
from tl_eval.harness.models.scripted import ScriptedModel
from tl_eval.harness.task import get_task
from tl_eval.training.grpo import load_train_config
from tl_eval.training.grpo import turn as T
from tl_eval.training.reason_rm.backbone import smollm2_tokenizer


class _RecordingPlanner(ScriptedModel):
    requests: list = []

    def respond(self, messages, request):
        _RecordingPlanner.requests.append(request)
        return "Add them.</reasoning>"


@pytest.mark.parametrize("task_name,fmt", [("gsm8k", "tagged"), ("mbpp", "tagged"), ("humaneval", "free")])
def test_training_prompt_is_the_evaluation_prompt(tmp_path, data_dir, task_name, fmt):
    register_scripted("test-turn-planner", _RecordingPlanner)
    register_scripted("test-turn-executor", lambda messages: "\\boxed{1}")
    _RecordingPlanner.requests = []
    budget = 96
    config = RunConfig(tasks=[task_name], planner="scripted:test-turn-planner", executor="scripted:test-turn-executor",
                       limit=2, planner_max_tokens=budget, planner_format=fmt, cache="off", conditions=["full"],
                       output=str(tmp_path / "runs"))
    run(prepare(config), show_progress=False, log=lambda m: None)
    evaluated = {r.messages[0]["content"]: r for r in _RecordingPlanner.requests}
    assert len(evaluated) == 2

    task = get_task(task_name)
    problems = task.load(data_dir)[:2]
    cfg = load_train_config(None, task=task_name, max_completion_length=budget, planner_format=fmt,
                            temperature=1.0)
    turns = T.training_turns(task, problems, cfg.planner_settings())
    tok = smollm2_tokenizer()
    texts = T.prompt_texts(tok, turns)
    decoding = T.decoding(turns)
    for problem, text, t in zip(problems, texts, turns):
        request = next(r for r in _RecordingPlanner.requests if list(r.messages) == list(t.messages))
        # What the evaluation's transformers backend would send for this request, byte for byte ...
        assert text.encode() == chat_prompt(tok, request.messages).encode()
        # ... and the tokens TRL makes of the text prompt are the backend's.
        assert tok(text)["input_ids"] == tok(text, add_special_tokens=False)["input_ids"]
        # The same budget and stops; only the sampling temperature is the trainer's.
        assert (decoding.sampling.max_tokens, decoding.sampling.stop) == (request.sampling.max_tokens,
                                                                          request.sampling.stop)
    if fmt == "tagged":
        assert texts[0].endswith("<|im_start|>assistant\n<reasoning>\n")
        stop = ("</reasoning>", "```") if task.uses_sandbox else ("</reasoning>",)
        assert T.generation_kwargs(decoding, use_vllm=False) == {"stop_strings": list(stop)}
        assert T.generation_kwargs(decoding, use_vllm=True) == {"stop": list(stop)}
    else:
        assert texts[0].endswith("<|im_start|>assistant\n") and T.generation_kwargs(decoding, False) == {}


def test_a_tokenizer_that_adds_a_bos_is_refused(data_dir):
    from tl_eval.harness.config import SamplingSettings
    from tl_eval.harness.errors import ConfigError

    task = get_task("gsm8k")
    turns = T.training_turns(task, task.load(data_dir)[:1], SamplingSettings())
    tok = smollm2_tokenizer()

    class _WithBos:
        def __init__(self, tok):
            self.tok = tok

        def apply_chat_template(self, *a, **kw):
            return self.tok.apply_chat_template(*a, **kw)

        def __call__(self, text, add_special_tokens=True):
            ids = self.tok(text, add_special_tokens=False)["input_ids"]
            return {"input_ids": ([1] if add_special_tokens else []) + ids}

    with pytest.raises(ConfigError, match="special tokens"):
        T.prompt_texts(_WithBos(tok), turns)
