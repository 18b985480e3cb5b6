"""The staff roles of SPEC R1–R3 and the helper their data migrations use to grant rights.

Each app's migration grants the permissions on its own models (least privilege: a role gets only
what its work needs), so the layering startups → coupons → billing holds for roles too.
"""

SUPPORT = "Support"
STARTUP_REVIEWERS = "Startup reviewers"
FINANCE = "Finance"
ROLES = (SUPPORT, STARTUP_REVIEWERS, FINANCE)


def grant_permissions(apps, app_label, grants):
    """Give each group in `grants` ({group: [codename, ...]}) those permissions of `app_label`.

    Permissions are created first: on a fresh database they do not exist until post_migrate.
    An unknown codename is an error, so a typo cannot silently leave a role without a right.
    """
    from django.contrib.auth.management import create_permissions

    app_config = apps.get_app_config(app_label)
    # Migration state has app stubs without a models module; create_permissions needs one set.
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for group_name, codenames in grants.items():
        group, _ = Group.objects.get_or_create(name=group_name)
        perms = list(
            Permission.objects.filter(content_type__app_label=app_label, codename__in=codenames)
        )
        missing = set(codenames) - {p.codename for p in perms}
        if missing:
            raise LookupError(f"Unknown {app_label} permissions for {group_name}: {missing}")
        group.permissions.add(*perms)


def revoke_permissions(apps, app_label, grants):
    Group = apps.get_model("auth", "Group")
    for group_name, codenames in grants.items():
        group = Group.objects.filter(name=group_name).first()
        if group:
            group.permissions.remove(
                *group.permissions.filter(content_type__app_label=app_label, codename__in=codenames)
            )
