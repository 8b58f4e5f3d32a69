"""The ring layer: R_q = Z_q[X]/(X^N + 1) in RNS form, with nothing of CKKS in it.

primes (NTT-friendly primes q = 1 mod 2N), modarith (Shoup / Montgomery products on uint64 limbs), ntt (the
negacyclic NTT), rns (polynomials as limbs over a basis of primes), basis_conversion (fast base conversion,
divide-by-last-prime, mod-down, CRT), automorphism (X -> X^g), sampling (ternary, Gaussian, uniform).
Modules here import only each other and ``ckks.errors`` / ``ckks.instrument``.
"""
