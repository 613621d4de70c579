"""Adversarial tests: what a hostile or broken peer on loopback can do to the daemon."""
