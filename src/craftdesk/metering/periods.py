"""Monthly billing periods from a workspace's anchor, clamped to the month's end like Stripe."""

import calendar
import datetime as dt
from typing import NamedTuple


def add_months(anchor: dt.datetime, months: int) -> dt.datetime:
    """``anchor`` moved by whole months; a day past the month's end becomes its last day."""
    years, month_index = divmod(anchor.month - 1 + months, 12)
    year, month = anchor.year + years, month_index + 1
    day = min(anchor.day, calendar.monthrange(year, month)[1])
    return anchor.replace(year=year, month=month, day=day)


class BillingPeriod(NamedTuple):
    start: dt.datetime
    end: dt.datetime

    @classmethod
    def containing(cls, anchor: dt.datetime, instant: dt.datetime) -> "BillingPeriod":
        """The period ``[start, end)`` holding ``instant``; a boundary opens the new period.

        Every boundary is computed from the anchor itself (not from the previous boundary),
        so an anchor on the 31st gives Feb 28/29, then Mar 31, then Apr 30.
        """
        months = (instant.year - anchor.year) * 12 + instant.month - anchor.month
        start = add_months(anchor, months)
        if start > instant:
            months -= 1
            start = add_months(anchor, months)
        return cls(start, add_months(anchor, months + 1))

    def seconds_left(self, instant: dt.datetime) -> int:
        return max(1, int((self.end - instant).total_seconds() + 0.999))
