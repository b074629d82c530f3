"""TraceLift-Groups: seed problems with a reference trace and a bank of labelled, localized negatives."""

from tl_eval.training.groups.schema import RUBRIC_DIMS, GroupRow, Trace, read_groups, write_groups

__all__ = ["RUBRIC_DIMS", "GroupRow", "Trace", "read_groups", "write_groups"]
