"""Leaderboards: one score per (activity, customer), ranked by score, then by who reached it
first; and the settlement that hands out an ended activity's prizes once.

Rank comes from `ScoreBucket`, a count tree over the scores moved in the transaction that moves
a score, so "what is my rank" sums a few hundred counts instead of counting every customer
above; see docs/decisions/0013-leaderboard-rank.md.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _

# The count tree: 8 bits a level, 5 levels, so scores within +-MAX_SCORE (about 5.5 * 10^11)
# and at most 255 blocks a level to sum (the top level holds the blocks -128..127).
FANOUT_BITS = 8
LEVELS = 5
MAX_SCORE = (1 << (FANOUT_BITS * LEVELS - 1)) - 1


class Score(models.Model):
    activity = models.ForeignKey(
        "activities.Activity",
        on_delete=models.CASCADE,
        related_name="scores",
        verbose_name=_("activity"),
    )
    customer = models.ForeignKey(
        "segments.Customer", on_delete=models.CASCADE, related_name="+", verbose_name=_("customer")
    )
    score = models.BigIntegerField(_("score"), default=0)
    # When the customer reached this score: of two equal scores the earlier one ranks higher.
    reached_at = models.DateTimeField(_("reached at"))
    events = models.PositiveIntegerField(_("scored events"), default=0)

    class Meta:
        verbose_name = _("leaderboard score")
        verbose_name_plural = _("leaderboard scores")
        constraints = [
            models.UniqueConstraint(fields=["activity", "customer"], name="score_unique_customer")
        ]
        indexes = [
            # The ranking order itself: top N is the start of this index, and ties on one
            # score are counted through it.
            models.Index(
                "activity",
                models.F("score").desc(),
                "reached_at",
                "customer",
                name="score_rank_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.score}"


class ScoreBucket(models.Model):
    """How many customers of an activity hold a score in one block of the score range: a count
    tree over the scores, `FANOUT_BITS` bits a level. Level 0 blocks are exact scores; a block
    at level k holds the scores whose `score >> (FANOUT_BITS * k)` is its `block`.

    A rank is the sum, at each level, of the sibling blocks above the customer's block under the
    same parent: at most 255 rows a level whatever the number of customers or their scores.
    """

    activity = models.ForeignKey(
        "activities.Activity",
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("activity"),
    )
    level = models.PositiveSmallIntegerField(_("level"))
    block = models.BigIntegerField(_("block"))
    # Signed: a move proposes a -1 row, and PostgreSQL checks a row before it finds the conflict.
    holders = models.IntegerField(_("customers"), default=0)

    class Meta:
        verbose_name = _("score bucket")
        verbose_name_plural = _("score buckets")
        constraints = [
            # Covering: summing the blocks above a score reads only this index.
            models.UniqueConstraint(
                fields=["activity", "level", "block"],
                include=["holders"],
                name="score_bucket_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.level}/{self.block}: {self.holders}"


class Settlement(models.Model):
    """An ended activity's prizes, handed out once: the row and the grants commit together."""

    activity = models.OneToOneField(
        "activities.Activity",
        on_delete=models.CASCADE,
        related_name="settlement",
        verbose_name=_("activity"),
    )
    settled_at = models.DateTimeField(_("settled at"), null=True, blank=True)
    result = models.JSONField(_("result"), default=dict, blank=True)

    class Meta:
        verbose_name = _("settlement")
        verbose_name_plural = _("settlements")

    def __str__(self) -> str:
        return f"settlement of {self.activity_id}"
