"""tl-eval inside lm-evaluation-harness: the planner-executor pair as an lm-eval model, and lm-eval-shaped exports."""
