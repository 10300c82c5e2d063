"""Community-standard VI-ReID evaluation: CMC / mAP / mINP, trials, a distributed Metric."""

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

__all__ = [
    "EvaluationSuite",
    "EvaluationTask",
    "MultiTrialResult",
    "Protocol",
    "RerankConfig",
    "RetrievalMetric",
    "RetrievalResult",
    "TaskSpec",
    "cosine_distance",
    "evaluate",
    "evaluate_features",
    "k_reciprocal_rerank",
    "run_trials",
    "seeded_gallery_trial",
]
