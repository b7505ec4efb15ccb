"""argus-gpu-heston: Heston analytic prices, Monte Carlo probability of profit on CUDA,
OpenCL and CPU, calibration to an implied-volatility chain and surface anomalies.

Strategies reach it through the core: ``ctx.pricer("heston")`` returns a
:class:`HestonPricer`.
"""

from argus_gpu_heston.params import HestonParams, OptionLeg
from argus_gpu_heston.pricer import HestonPricer, HestonSettings, PopResult, PriceResult

__all__ = ["HestonParams", "HestonPricer", "HestonSettings", "OptionLeg", "PopResult",
           "PriceResult"]
__version__ = "0.1.0"
