from __future__ import annotations

from django.contrib.auth.backends import ModelBackend

from omnicenter import roles


class RoleBackend(ModelBackend):
    """Admins hold every permission (Django admin included) without maintaining a permission list
    that each new model would have to be added to; other roles use the ordinary model permissions."""

    def has_perm(self, user_obj, perm, obj=None) -> bool:
        if roles.is_admin(user_obj):
            return True
        return super().has_perm(user_obj, perm, obj)

    def has_module_perms(self, user_obj, app_label) -> bool:
        if roles.is_admin(user_obj):
            return True
        return super().has_module_perms(user_obj, app_label)
