"""Named layout of the state vector: every stock is reached by name, never by a bare index.

The state of a batch is a 2-D array (n_state, n_draws); `StateLayout.unpack` returns views shaped
(*dims, n_draws) for each stock, and `pack` does the reverse.  The flat vector handed to
`scipy.integrate.solve_ivp` is that array raveled in C order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SOURCES = ("china", "india", "other")
ROUTES = ("mail", "land")
DIM_SIZES = {"source": len(SOURCES), "route": len(ROUTES)}


@dataclass(frozen=True)
class Stock:
    """One stock: name, dimensions (besides draw), units and meaning."""

    name: str
    dims: tuple[str, ...]
    units: str
    doc: str

    @property
    def size(self) -> int:
        return int(np.prod([DIM_SIZES[d] for d in self.dims], dtype=int))

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(DIM_SIZES[d] for d in self.dims)


STOCKS: tuple[Stock, ...] = (
    Stock("capacity", ("source",), "kg/yr", "production capacity directed at the US market"),
    Stock("in_transit", ("source", "route"), "kg", "fentanyl shipped and not yet arrived or seized"),
    Stock("retail", (), "kg", "fentanyl in the US retail supply"),
    Stock("untreated", (), "persons", "people with opioid use disorder using illicit opioids, untreated"),
    Stock("in_treatment", (), "persons", "people of that population in MOUD"),
    Stock("remission", (), "persons", "people in remission"),
    Stock("cum_exports", ("source",), "kg", "cumulative exports since the start"),
    Stock("cum_seized", ("source", "route"), "kg", "cumulative seizures since the start"),
    Stock("cum_arrivals", ("source", "route"), "kg", "cumulative arrivals in the US since the start"),
    Stock("cum_consumed", (), "kg", "cumulative fentanyl consumed from retail since the start"),
    Stock("cum_initiation", (), "persons", "cumulative initiation since the start"),
    Stock("cum_treatment_entries", (), "persons", "cumulative MOUD entries since the start"),
    Stock("cum_deaths_fentanyl", (), "deaths", "cumulative fentanyl-involved overdose deaths"),
    Stock("cum_deaths_heroin_only", (), "deaths",
          "cumulative overdose deaths involving heroin and not fentanyl"),
    Stock("cum_deaths_other_synthetic", (), "deaths",
          "cumulative deaths involving synthetic opioids other than fentanyl (background)"),
    Stock("cum_deaths_background", (), "deaths", "cumulative non-overdose deaths of the population"),
)


class StateLayout:
    """Maps stock names to row slices of the (n_state, n_draws) state array."""

    def __init__(self, stocks: tuple[Stock, ...] = STOCKS) -> None:
        self.stocks = {s.name: s for s in stocks}
        self.shapes = {s.name: s.shape for s in stocks}
        self.slices: dict[str, slice] = {}
        offset = 0
        for s in stocks:
            self.slices[s.name] = slice(offset, offset + s.size)
            offset += s.size
        self.size = offset

    def unpack(self, y: np.ndarray) -> dict[str, np.ndarray]:
        """Views of each stock shaped (*dims, n_draws) (or (*dims, n_draws, n_times) for 3-D y)."""
        rest = y.shape[1:]
        return {name: y[sl].reshape(self.shapes[name] + rest) for name, sl in self.slices.items()}

    def pack(self, parts: dict[str, np.ndarray], n_draws: int) -> np.ndarray:
        """Assemble a (n_state, n_draws) array from per-stock arrays (broadcast as needed)."""
        out = np.empty((self.size, n_draws))
        missing = set(self.slices) - set(parts)
        if missing:
            raise KeyError(f"no value for stocks {sorted(missing)}")
        for name, sl in self.slices.items():
            out[sl].reshape(self.shapes[name] + (n_draws,))[...] = parts[name]
        return out


LAYOUT = StateLayout()
