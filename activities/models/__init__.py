from .activity import Activity, ActivityState
from .approval import ActivityApproval
from .benefit import COUPON_TERMS, Benefit, BenefitKind, CodeSource
from .channel import Channel
from .coupon import (
    BenefitIssue,
    CouponCode,
    CouponRedemption,
    IssueOutcome,
    IssueSkip,
    IssueState,
)
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
from .journey import JourneyVersion, WaitingRun, WaitState
from .leaderboard import Score, ScoreBucket, Settlement
from .participation import Participation, ParticipationCounter
from .run import ChainRun, RunOutcome
from .streak import Streak
from .subjects import SubjectCounter, SubjectKind, SubjectMark
from .teams import Assist, HelpRequest, HelpRequestState, Team, TeamMember, TeamState
from .template import Chain, ChainStep, ErrorPolicy, StrategyTemplate
from .webhook import WebhookCall, WebhookCallState, WebhookFailure

__all__ = [
    "COUPON_TERMS",
    "Activity",
    "ActivityApproval",
    "ActivityState",
    "Assignment",
    "AssignmentPhase",
    "Assist",
    "Benefit",
    "BenefitIssue",
    "BenefitKind",
    "Chain",
    "ChainRun",
    "ChainStep",
    "Channel",
    "CodeSource",
    "Conversion",
    "ConversionGoal",
    "CouponCode",
    "CouponRedemption",
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
    "HelpRequest",
    "HelpRequestState",
    "IssueOutcome",
    "IssueSkip",
    "IssueState",
    "JourneyVersion",
    "Participation",
    "ParticipationCounter",
    "RunOutcome",
    "Score",
    "ScoreBucket",
    "Settlement",
    "StrategyTemplate",
    "Streak",
    "SubjectCounter",
    "SubjectKind",
    "SubjectMark",
    "Team",
    "TeamMember",
    "TeamState",
    "WaitState",
    "WaitingRun",
    "WebhookCall",
    "WebhookCallState",
    "WebhookFailure",
]
