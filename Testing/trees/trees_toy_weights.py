"""Toy weight data sets for the diffusion tests: small layouts with known distributions."""

import numpy as np

#: A small MLP's state-dict layout (3 → 4 → 1): 8 + 4 + 4 + 1 = 17 values.
TOY_LAYOUT = [("a.weight", (4, 2)), ("a.bias", (4,)), ("b.weight", (1, 4)), ("b.bias", (1,))]
MODES = np.array([[-2.0, 0.0], [2.0, 0.0]])
MODE_STD = 0.25


def mixture_embedding(seed: int = 0):
    """(A (17, 2), c (17,)): the plane of weight space the toy mixture lives on, v = A z + c."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(17, 2)), rng.normal(size=17)


def draw_mixture(n: int, rng: np.random.Generator, seed: int = 0):
    """n weight vectors (n, 17) float32 whose plane coordinates z follow two equal Gaussians at ±(2, 0)."""
    a, c = mixture_embedding(seed)
    z = MODES[rng.integers(2, size=n)] + MODE_STD * rng.normal(size=(n, 2))
    return z, (z @ a.T + c).astype(np.float32)
