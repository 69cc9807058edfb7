"""Settings tabs that are not a page of their own elsewhere: the Workflows tab."""
