"""The RLWE layer, scheme-neutral: ciphertexts and plaintexts (level + exact scale), keys, hybrid key
switching, encryption and decryption.

Built on ``ckks.ring`` and ``ckks.params``; it never imports ``ckks.scheme`` (no encoding, no evaluator).
"""
