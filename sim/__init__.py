"""fentsim: a system-dynamics (stock-and-flow ODE) model of the US illicit fentanyl epidemic."""

from sim.compare import compare
from sim.levers import LeverSet
from sim.parameters import ModelParameters
from sim.run import simulate
from sim.solver import SolverSettings

__all__ = ["compare", "LeverSet", "ModelParameters", "SolverSettings", "simulate"]
