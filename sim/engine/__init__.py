"""The engine that integrates the model: the solve_ivp batch path (with its stiff fallback) and the
compiled per-draw RK45 kernel.  Imports only `sim.model` and `sim.errors`."""
