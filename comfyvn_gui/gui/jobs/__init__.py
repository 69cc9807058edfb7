"""Jobs: the page, the jobs table model and the Review panel."""
