from .activity import Activity, ActivityState
from .approval import ActivityApproval
from .benefit import Benefit, BenefitKind
from .channel import Channel
from .event import Event, EventFailure, EventState
from .experiment import (
    Assignment,
    AssignmentPhase,
    Conversion,
    ConversionGoal,
    Experiment,
    ExperimentKind,
    ExperimentState,
    ExperimentVariant,
)
from .grant import Grant, GrantState
from .participation import Participation, ParticipationCounter
from .run import ChainRun, RunOutcome
from .template import Chain, ChainStep, ErrorPolicy, StrategyTemplate
from .webhook import WebhookCall, WebhookCallState, WebhookFailure

__all__ = [
    "Activity",
    "ActivityApproval",
    "ActivityState",
    "Assignment",
    "AssignmentPhase",
    "Benefit",
    "BenefitKind",
    "Chain",
    "ChainRun",
    "ChainStep",
    "Channel",
    "Conversion",
    "ConversionGoal",
    "ErrorPolicy",
    "Event",
    "EventFailure",
    "EventState",
    "Experiment",
    "ExperimentKind",
    "ExperimentState",
    "ExperimentVariant",
    "Grant",
    "GrantState",
    "Participation",
    "ParticipationCounter",
    "RunOutcome",
    "StrategyTemplate",
    "WebhookCall",
    "WebhookCallState",
    "WebhookFailure",
]
