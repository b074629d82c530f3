"""The code sandbox: tiers, the long-lived worker, the confined child, and the host-side pool.

Public entry point: `harness.verify.code.CodeVerifier`.
"""
