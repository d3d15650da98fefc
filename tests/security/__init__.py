"""Security suite: every door refuses what a caller may not see or do."""
