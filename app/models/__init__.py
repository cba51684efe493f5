"""Every table of Sift, in one place."""

from app.models.base import Base
from app.models.collections import Collection, CollectionItem, Snapshot, SnapshotItem
from app.models.datasets import Dataset, Example, ExampleStatus, Origin, Revision
from app.models.evaluation import (
    EvalAnswer,
    EvalItem,
    EvalPrompt,
    EvalRun,
    EvalTestSet,
    ItemState,
)
from app.models.experiments import Experiment, ExperimentArm
from app.models.generation import GenerationMethod, Provenance
from app.models.jobs import TERMINAL_STATES, ChunkState, Job, JobChunk, JobState, LLMBatch
from app.models.questions import QuestionKind, ReviewAnswer, ReviewQuestion
from app.models.review import (
    ReviewAction,
    ReviewAssignment,
    ReviewCheck,
    ReviewDecision,
    ReviewLease,
)
from app.models.scoring import (
    Embedding,
    LLMCall,
    LLMCallState,
    Score,
    Scorer,
    ScorerKind,
    ScoreState,
)
from app.models.selection import DuplicateCluster, DuplicateMember, DuplicateMethod, Selection
from app.models.training import RunState, TrainingMetric, TrainingRun
from app.models.users import ApiToken, Role, SignInAttempt, User

__all__ = [
    "TERMINAL_STATES",
    "ApiToken",
    "Base",
    "ChunkState",
    "Collection",
    "CollectionItem",
    "Dataset",
    "DuplicateCluster",
    "DuplicateMember",
    "DuplicateMethod",
    "Embedding",
    "EvalAnswer",
    "EvalItem",
    "EvalPrompt",
    "EvalRun",
    "EvalTestSet",
    "Example",
    "ExampleStatus",
    "Experiment",
    "ExperimentArm",
    "GenerationMethod",
    "ItemState",
    "Job",
    "JobChunk",
    "JobState",
    "LLMBatch",
    "LLMCall",
    "LLMCallState",
    "Origin",
    "Provenance",
    "QuestionKind",
    "ReviewAction",
    "ReviewAnswer",
    "ReviewAssignment",
    "ReviewCheck",
    "ReviewDecision",
    "ReviewLease",
    "ReviewQuestion",
    "Revision",
    "Role",
    "RunState",
    "Score",
    "ScoreState",
    "Scorer",
    "ScorerKind",
    "Selection",
    "SignInAttempt",
    "Snapshot",
    "SnapshotItem",
    "TrainingMetric",
    "TrainingRun",
    "User",
]
