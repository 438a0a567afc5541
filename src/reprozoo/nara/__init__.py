"""NARA: confidence-guided parallel sampling for auto-regressive models (Yoo et al., 2019).

Library use::

    from reprozoo.nara import BernoulliAR, sample
    model = BernoulliAR(my_masked_net, length=64)           # any causal parallel net
    seq = sample(model, "sequential", batch=16, generator=g)  # reference, 64 calls
    fast = sample(model, "jacobi", noise=...)                 # exact, far fewer calls
"""

from reprozoo.nara.checks import CausalityError, check_causality, check_threshold
from reprozoo.nara.models import MADE, DilatedCausalConv, nara_causal_conv, nara_made
from reprozoo.nara.predictors import (
    ConfidencePredictor,
    LocalConfidence,
    PriorPredictor,
    make_confidence,
    step_change,
)
from reprozoo.nara.protocol import (
    Bernoulli,
    BernoulliAR,
    Categorical,
    CategoricalAR,
    Family,
    Gaussian,
    GaussianAR,
    ModuleAR,
    ParallelAR,
    sequence_log_prob,
)
from reprozoo.nara.samplers import SampleResult, draw_noise, sample, sample_parallel, sample_sequential
from reprozoo.nara.training import (
    FitConfig,
    confidence_states,
    fit_confidence,
    fit_mother,
    fit_prior,
)

__all__ = [
    "MADE", "Bernoulli", "BernoulliAR", "Categorical", "CategoricalAR", "CausalityError", "ConfidencePredictor",
    "DilatedCausalConv", "Family", "FitConfig", "Gaussian", "GaussianAR", "LocalConfidence", "ModuleAR", "ParallelAR",
    "PriorPredictor", "SampleResult", "check_causality", "check_threshold", "confidence_states", "draw_noise",
    "fit_confidence", "fit_mother", "fit_prior", "make_confidence", "nara_causal_conv", "nara_made", "sample",
    "sample_parallel", "sample_sequential", "sequence_log_prob", "step_change",
]
