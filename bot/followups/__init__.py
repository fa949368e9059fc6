"""Follow-ups: the work an incident leaves behind, owned and tracked to done."""
