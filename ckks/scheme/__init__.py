"""The CKKS layer: the canonical embedding and its encoder, the homomorphic evaluator (add, multiply,
relinearize, rescale, rotate; its dot products in dot_products), and serialization (wire: the byte layout;
bundle: what the server receives).

Built on ``ckks.rlwe``, ``ckks.ring`` and ``ckks.params``.
"""
