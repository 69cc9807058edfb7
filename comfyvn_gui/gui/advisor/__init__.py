"""Settings -> Advisor: the advisor's defaults."""
