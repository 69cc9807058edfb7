"""Running: the page and the table model of what this home holds at the providers."""
