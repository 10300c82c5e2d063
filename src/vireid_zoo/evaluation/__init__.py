"""Community-standard VI-ReID evaluation: CMC / mAP / mINP, trials, a distributed Metric."""

from typing import TYPE_CHECKING

from vireid_zoo.core.lazy import attach

if TYPE_CHECKING:
    from vireid_zoo.evaluation.functional import (
        Protocol,
        RetrievalResult,
        cosine_distance,
        evaluate,
        evaluate_features,
    )
    from vireid_zoo.evaluation.metric import RetrievalMetric
    from vireid_zoo.evaluation.protocols import (
        EvaluationSuite,
        EvaluationTask,
        MultiTrialResult,
        TaskSpec,
        run_trials,
        seeded_gallery_trial,
    )
    from vireid_zoo.evaluation.rerank import RerankConfig, k_reciprocal_rerank

__getattr__, __dir__, __all__ = attach(__name__, __file__)
