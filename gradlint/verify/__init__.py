"""Verify: one measured forward/backward pass, compared with the estimate."""
