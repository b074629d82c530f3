"""Verifiers: the code sandbox and the math grader."""
