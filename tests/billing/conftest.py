from datetime import date

import pytest

from billing import services

from .factories import workspace


@pytest.fixture
def paid_team():
    """`paid_team(n, as_of=1 January 2026)`: n workspaces on paid monthly Team from `as_of`
    (Team, back to Free and Team again the same day: no trial the second time, T1)."""

    def make(n, as_of=date(2026, 1, 1)):
        spaces = []
        for _ in range(n):
            ws = workspace(as_of=as_of, card=True)
            services.change_to_team(ws, as_of=as_of)
            services.change_to_free(ws, as_of=as_of)
            services.change_to_team(ws, as_of=as_of)
            spaces.append(ws)
        return spaces

    return make
