"""GRPO training with a tiny random planner and a scripted executor on real GSM8K problems."""

import hashlib
import json

import pytest

from tl_eval.harness.errors import ConfigError
from tl_eval.harness.models import register_scripted
from tl_eval.harness.task import get_task
from tl_eval.training.grpo import load_train_config, train


def _executor(messages):
    # Deterministic but trace-dependent, so that the 4 completions of a prompt get different rewards.
    text = messages[-1]["content"]
    if "Provided reasoning" not in text:
        return "\\boxed{-1}" if "Natalia" in text else "\\boxed{0}"
    digest = hashlib.sha256(text.encode()).digest()[0]
    return "\\boxed{72}" if digest % 2 else "\\boxed{5}"  # 72 is the gold of train problem 0


class _Scorer:
    def score(self, traces, problems, task_type):
        return [min(1.0, len(t) / 80) for t in traces]


def _cfg(tmp_path, mode, **kw):
    register_scripted("test-grpo-exec", _executor)
    base = dict(mode=mode, task="gsm8k", planner="random:tiny", executor="scripted:test-grpo-exec",
                output=str(tmp_path / mode), limit=2, max_steps=2, max_completion_length=8, save_steps=1,
                cache=str(tmp_path / "cache.sqlite"), k=3)
    if mode == "tracelift":
        base["rm"] = str(tmp_path)  # the directory check; the scorer itself is injected
    base.update(kw)
    return load_train_config(None, **base)


def _lora_b_norm(model) -> float:
    return sum(float(p.detach().abs().sum()) for n, p in model.named_parameters() if "lora_B" in n)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["exec-only", "tracelift"])
def test_train_few_steps(tmp_path, data_dir, mode, monkeypatch):
    cfg = _cfg(tmp_path, mode, format_weight=0.5 if mode == "exec-only" else 0.0)
    result = train(cfg, scorer=_Scorer() if mode == "tracelift" else None, show_progress=False)
    assert result.steps == 2

    # The reward function received the dataset's columns, aligned with its problems.
    problems = {p.problem_id: p for p in get_task("gsm8k").load(data_dir, "train")[:2]}
    cols = result.reward.last_columns
    assert set(cols) >= {"problem_id", "task_type", "answer"}
    assert all(problems[pid].answer == ans for pid, ans in zip(cols["problem_id"], cols["answer"]))

    # turns.jsonl: every sampled turn as the evaluation reads it (the prefill, cut at the stop or the budget).
    turns = [json.loads(x) for x in (result.output / "turns.jsonl").read_text().splitlines()]
    assert len(turns) == 2 * 4 and {t["step"] for t in turns} == {1, 2}
    assert all(t["turn"].startswith("<reasoning>\n") for t in turns)
    assert all(t["turn"].endswith("</reasoning>") for t in turns if t["compliant"])

    # LoRA weights moved off their zero init; the base weights did not move and are frozen.
    from transformers import AutoModelForCausalLM

    assert _lora_b_norm(result.model) > 0
    base = AutoModelForCausalLM.from_pretrained(result.output / "base")
    trained = {n.replace("base_model.model.", "").replace(".base_layer", ""): p
               for n, p in result.model.named_parameters() if "lora_" not in n}
    for name, p in base.named_parameters():
        assert not trained[name].requires_grad
        assert (trained[name].detach() == p.detach()).all(), name

    # Executor traffic: K with-trace samples per trace in tracelift (1 in exec-only); alone = problems × K.
    c = result.counters
    assert c["traces"] == 2 * 4
    seen = len(set(result.client._alone)) if mode == "tracelift" else 0
    if mode == "tracelift":
        assert 1 <= seen <= 2 and c["alone_calls"] == seen * 3
        assert c["with_trace_calls"] <= c["traces"] * 3
    else:
        assert c["alone_calls"] == 0 and c["with_trace_calls"] <= c["traces"]

    # metrics.jsonl: one line per step with TRL's metrics, the reward parts and the counters.
    lines = [json.loads(x) for x in (result.output / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in lines] == [1, 2]
    for key in ("reward", "reward_std", "frac_reward_zero_std", "completions/mean_length",
                "completions/clipped_ratio", "parts/exec", "executor/calls", "executor/cache_hits"):
        assert key in lines[-1], key
    if mode == "exec-only":  # the format reward is a second TRL reward function, weighted 0.5
        assert "rewards/format/mean" in lines[-1] and "rewards/exec_only/mean" in lines[-1]
        for m in lines:
            assert m["reward"] == pytest.approx(m["rewards/exec_only/mean"] + 0.5 * m["rewards/format/mean"])
    if mode == "tracelift":
        for key in ("parts/with_trace_acc", "parts/without_trace_acc", "parts/uplift", "parts/rm"):
            assert key in lines[-1], key
        assert lines[-1]["executor/with_trace_calls_per_trace"] <= 3

    # The checkpoint is an HF adapter directory with the training config and metrics.
    for name in ("adapter_config.json", "adapter_model.safetensors", "tokenizer_config.json",
                 "tl_eval_train.json", "metrics.jsonl"):
        assert (result.output / name).is_file(), name
    assert (result.output / "checkpoint-1" / "tl_eval_train.json").is_file()
    assert (result.output / "reward_curve.png").is_file()
    meta = json.loads((result.output / "tl_eval_train.json").read_text())
    assert meta["reward_gain"] is None  # 2 steps: too few
    assert list(meta["reward_gain_by_function"]) == (["exec_only", "format"] if mode == "exec-only" else ["tracelift"])
    adapter = json.loads((result.output / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == str(result.output / "base")

    if mode == "exec-only":  # `tl-eval --planner DIR` evaluates the checkpoint directly
        from tl_eval.harness.config import RunConfig
        from tl_eval.harness.evaluate import prepare, run

        from tl_eval.harness.models import hf
        from tl_eval.training.grpo import turn as T

        sent, chat = [], hf.chat_prompt
        monkeypatch.setattr(hf, "chat_prompt", lambda tok, msgs: sent.append(chat(tok, msgs)) or sent[-1])
        config = RunConfig(tasks=["gsm8k"], planner=str(result.output), executor="scripted:test-grpo-exec",
                           limit=1, planner_max_tokens=8, cache="off", output=str(tmp_path / "runs"))
        run_dir, results = run(prepare(config), show_progress=False, log=lambda m: None)
        # The prompts TRL trained on and the one the evaluation gave the checkpoint come from one function.
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(result.output)
        task = get_task("gsm8k")
        build = lambda ps: T.prompt_texts(tok, T.training_turns(task, ps, cfg.planner_settings()))
        assert sent == build(task.load(data_dir, "test")[:1])
        assert [dict(zip(problems, build(list(problems.values()))))[pid] for pid in cols["problem_id"]] == cols["prompt"]
        assert results.systems["planner"].startswith("hf:")
        recorded = json.loads((run_dir / "config.json").read_text())["planner"]
        assert recorded["training_mode"] == "exec-only"  # the leaderboard's training column reads this
        assert results.model_calls["planner"] == 1


@pytest.mark.slow
def test_resume_continues_a_run(tmp_path, data_dir):
    first = train(_cfg(tmp_path, "exec-only", max_steps=1), show_progress=False)
    assert first.steps == 1
    with pytest.raises(ConfigError, match="already holds"):
        train(_cfg(tmp_path, "exec-only", max_steps=2), show_progress=False)
    # Pretend the run was killed after step 1's checkpoint but its metrics had reached a later step.
    with (first.output / "metrics.jsonl").open("a") as f:
        f.write(json.dumps({"step": 2, "reward": 9}) + "\n")
    second = train(_cfg(tmp_path, "exec-only", max_steps=2), resume=True, show_progress=False)
    assert second.steps == 2
    lines = [json.loads(x) for x in (second.output / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in lines] == [1, 2] and lines[-1]["reward"] != 9
    # The resumed run answers from the shared cache what the first run already asked.
    assert second.counters["with_trace_calls"] <= 4


def test_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="needs a Reason RM"):
        load_train_config(None, mode="tracelift")
    with pytest.raises(ConfigError, match="unknown training mode"):
        load_train_config(None, mode="rl")
    with pytest.raises(ConfigError, match="multiple of"):
        load_train_config(None, num_generations=3, per_device_train_batch_size=4)
    with pytest.raises(ConfigError, match="select_alone must be"):
        load_train_config(None, select_alone=[0.7, 0.3], pool=10)
    with pytest.raises(ConfigError, match="needs pool"):
        load_train_config(None, select_alone=[0.3, 0.7])
    bad = tmp_path / "bad.yaml"
    bad.write_text("max_step: 3\n")
    with pytest.raises(ConfigError, match="unknown keys"):
        load_train_config(bad)
    with pytest.raises(ConfigError, match="no checkpoint"):
        train(load_train_config(None, output=str(tmp_path / "none")), resume=True)


def test_shipped_configs_load(tmp_path):
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "training" / "configs"
    names = sorted(p.name for p in root.glob("*.yaml"))
    assert "cpu-small.yaml" in names and any(n.startswith("gpu-") for n in names)
    for path in root.glob("*.yaml"):
        rm = {"rm": str(tmp_path)} if "tracelift" in path.name else {}  # its RM is built by the user first
        cfg = load_train_config(path, **rm)
        assert cfg.k in (2, 3)
    cpu = load_train_config(root / "cpu-small.yaml")
    assert cpu.planner == "builtin:smollm2-135m-instruct" and not cpu.use_vllm
    gpu = load_train_config(root / "gpu-qwen2.5-1.5b.yaml")
    assert gpu.use_vllm and gpu.executor.startswith("openai:")
    # The TRL arguments are accepted by GRPOConfig itself (no GPU needed to build it).
    from tl_eval.training.grpo.trainer import _grpo_args

    from dataclasses import replace

    stop = {"stop": ["</reasoning>"]}
    args = _grpo_args(replace(gpu, bf16=False), Path("/tmp/unused"), False, stop)  # bf16 needs a GPU to validate
    assert args.use_vllm and args.vllm_gpu_memory_utilization == 0.3 and args.generation_kwargs == stop
