from datetime import date

import pytest

from .factories import paid_monthly


@pytest.fixture
def paid_team():
    """`paid_team(n, as_of=1 January 2026)`: n workspaces on paid monthly Team from `as_of`
    (Team, back to Free and Team again the same day: no trial the second time, T1)."""

    def make(n, as_of=date(2026, 1, 1)):
        return [paid_monthly(as_of) for _ in range(n)]

    return make
