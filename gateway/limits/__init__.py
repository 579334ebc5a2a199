"""Rate limits and cost budgets, held in process memory or in Redis shared by instances."""
