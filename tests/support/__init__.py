"""Not tests: what the tests share (the telephony systems' sides, real processes, helpers)."""
