"""Invoice posting: every billing invoice reaches the ERP through one posting path."""
