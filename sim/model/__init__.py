"""The model: parameters (units, bounds, sources), levers (functions of time), the state layout, the
flows (the equations, stated once) and named scenarios.  Imports only `sim.errors`."""
