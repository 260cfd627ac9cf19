from __future__ import annotations

from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.db.models.signals import m2m_changed
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


def _membership_changed(sender, instance, action, pk_set, reverse, **kwargs) -> None:
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    from django.contrib.auth.models import Group

    from tickets.models import Team

    # Team.members.add(user) gives the team as instance; user.teams.add(team) gives the user. Role
    # groups decide what a socket may see too: group.user_set.add(user) gives the group.
    user_ids = (pk_set or set()) if isinstance(instance, Team | Group) else {instance.pk}
    for user_id in user_ids:
        events.publish_membership_changed(user_id)


def connect_membership_signal() -> None:
    from django.contrib.auth import get_user_model

    from tickets.models import Team

    m2m_changed.connect(_membership_changed, sender=Team.members.through, dispatch_uid="oc-membership")
    m2m_changed.connect(_membership_changed, sender=get_user_model().groups.through, dispatch_uid="oc-roles")


connect_membership_signal()
