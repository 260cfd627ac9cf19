from __future__ import annotations

from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.db.models.signals import m2m_changed, post_save
from django.dispatch import receiver

from omnicenter import events
from omnicenter.middleware import SESSION_LANGUAGE_KEY


@receiver(user_logged_out)
def close_sockets_of_session(sender, request, user, **kwargs) -> None:
    # Runs before the session is flushed, so the key is still the one the sockets joined with.
    if request is not None and request.session.session_key:
        events.publish_session_closed(request.session.session_key)


@receiver(user_logged_in)
def remember_language(sender, request, user, **kwargs) -> None:
    if request is not None and getattr(user, "language", ""):
        request.session[SESSION_LANGUAGE_KEY] = user.language


def _member_ids(through, instance) -> set[int]:
    """The users linked to a team or role group, read from the through table."""
    own = next(f.name for f in through._meta.fields if f.related_model is type(instance))
    return set(through.objects.filter(**{own: instance.pk}).values_list("user_id", flat=True))


def _membership_changed(sender, instance, action, pk_set, **kwargs) -> None:
    from django.contrib.auth.models import Group

    from tickets.models import Team

    # Team.members.add(user) gives the team as instance; user.teams.add(team) gives the user. Role
    # groups decide what a socket may see too: group.user_set.add(user) gives the group.
    by_group = isinstance(instance, Team | Group)
    if action == "pre_clear" and by_group:
        instance._oc_cleared_ids = _member_ids(sender, instance)  # a clear sends no ids
        return
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    if action == "post_clear" and by_group:
        user_ids = instance.__dict__.pop("_oc_cleared_ids", set())
    else:
        user_ids = (pk_set or set()) if by_group else {instance.pk}
    for user_id in user_ids:
        events.publish_membership_changed(user_id)


def _user_saved(sender, instance, created, update_fields=None, **kwargs) -> None:
    # A deactivated account's open sockets re-check (and close) at once.
    if not created and (update_fields is None or "is_active" in update_fields):
        events.publish_membership_changed(instance.pk)


def connect_membership_signal() -> None:
    from django.contrib.auth import get_user_model

    from tickets.models import Team

    m2m_changed.connect(_membership_changed, sender=Team.members.through, dispatch_uid="oc-membership")
    m2m_changed.connect(_membership_changed, sender=get_user_model().groups.through, dispatch_uid="oc-roles")
    post_save.connect(_user_saved, sender=get_user_model(), dispatch_uid="oc-user-saved")


connect_membership_signal()
