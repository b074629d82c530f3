from tl_eval.harness.pipeline.trace import extract_trace


def test_tagged_trace():
    t = extract_trace("intro <reasoning>\nstep 1\nstep 2\n</reasoning> outro")
    assert t.text == "step 1\nstep 2" and t.tagged and t.closed


def test_unclosed_tag_runs_to_the_end():
    t = extract_trace("<reasoning>step 1 and then")
    assert t.text == "step 1 and then" and t.tagged and not t.closed


def test_untagged_completion_is_the_trace():
    t = extract_trace("  just some plan  ")
    assert t.text == "just some plan" and not t.tagged
