"""Correlated noise: stationary AR(1) processes that continue across chunks."""

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.signal import lfilter

__all__ = ["AR1"]


@dataclass(slots=True)
class AR1:
    """A stationary AR(1) process with standard deviation ``sigma`` and time constant ``tau_s``.

    Successive calls to :meth:`sample` continue the same realisation, so a long period
    generated chunk by chunk is one smooth series.

    Args:
        sigma: stationary standard deviation.
        tau_s: correlation time in seconds (e-folding).
        step_s: spacing of the samples in seconds.
        state: the last value (drawn from the stationary law when None).
    """

    sigma: float
    tau_s: float
    step_s: float
    state: float | None = None

    def sample(self, rng: np.random.Generator, n: int) -> npt.NDArray[np.float64]:
        """The next ``n`` values of the process."""
        if self.state is None:
            self.state = float(rng.normal(0.0, self.sigma))
        if n == 0:
            return np.empty(0)
        phi = float(np.exp(-self.step_s / self.tau_s))
        shocks = rng.normal(0.0, self.sigma * np.sqrt(1.0 - phi * phi), n)
        out, _ = lfilter([1.0], [1.0, -phi], shocks, zi=[phi * self.state])
        values = np.asarray(out, dtype=np.float64)
        self.state = float(values[-1])
        return values
