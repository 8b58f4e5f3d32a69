"""The CKKS layer: the canonical embedding and its encoder, the homomorphic evaluator (add, multiply,
relinearize, rescale, rotate), and serialization (wire: the byte layout; bundle: what the server receives).

Built on ``ckks.rlwe``, ``ckks.ring`` and ``ckks.params``.
"""
