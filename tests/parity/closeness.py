"""One closeness check for the parity tests: float32 results from different code paths (ours vs
torch / transformers / PEFT) are compared relative to the magnitude of what is compared, since
rounding error grows with that magnitude and MKL takes other kernels on Intel and AMD."""
import numpy as np

# Keeps an all-zero reference from demanding exact equality.
FLOOR = 1e-6


def _array(x):
    if hasattr(x, "detach"):
        x = x.detach().double().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def assert_close(got, want, rtol, what):
    """Asserts max|got - want| <= rtol * max(max|want|, FLOOR); fails on NaN and on shape mismatch."""
    g, w = _array(got), _array(want)
    assert g.shape == w.shape, f"{what}: shape {g.shape} vs {w.shape}"
    scale = max(float(np.abs(w).max()) if w.size else 0.0, FLOOR)
    d = np.abs(g - w)
    assert not np.isnan(d).any(), f"{what}: NaN in the values compared"
    worst = float(d.max()) if d.size else 0.0
    assert worst <= rtol * scale, f"{what}: max |got - want| = {worst:.3e} exceeds {rtol:.0e} x {scale:.3e}"
    return worst / scale
