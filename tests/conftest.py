import pytest
from django.contrib.auth.models import Group, User

from billing.roles import FINANCE, STARTUP_REVIEWERS, SUPPORT


@pytest.fixture
def staff_user(db):
    def make(group_name, username=None):
        user = User.objects.create_user(
            username=username or group_name.lower().replace(" ", "_"),
            password="pass-for-tests",
            is_staff=True,
        )
        user.groups.add(Group.objects.get(name=group_name))
        return user

    return make


@pytest.fixture
def support(staff_user):
    return staff_user(SUPPORT)


@pytest.fixture
def reviewer(staff_user):
    return staff_user(STARTUP_REVIEWERS)


@pytest.fixture
def finance(staff_user):
    return staff_user(FINANCE)
