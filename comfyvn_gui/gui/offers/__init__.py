"""The Offers place: every GPU the user can rent now, cheapest first (issue 21)."""
