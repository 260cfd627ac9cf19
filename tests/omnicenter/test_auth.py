"""Staff sign-in (with throttling), sign-out, the language preference, and the role hierarchy."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import AnonymousUser, Group
from django.core.cache import cache
from django.test import Client
from django.utils import translation

from omnicenter import roles
from omnicenter.models import User
from omnicenter.services import user_set_role
from tests.factories import UserFactory

PASSWORD = "pass-1234"  # tests.factories.UserFactory's password
THROTTLED = "Too many failed sign-in attempts. Try again in a few minutes."
BAD_LOGIN = "Please enter a correct username and password."


@pytest.fixture(autouse=True)
def empty_throttle_counters():
    # The counters live in the (Redis) cache, which outlives a test's database transaction.
    cache.clear()
    yield
    cache.clear()


def sign_in(client: Client, username: str, password: str, *, ip: str = "127.0.0.1", **data):
    return client.post("/accounts/login/", {"username": username, "password": password, **data}, REMOTE_ADDR=ip)


def normalized(response, username: str) -> str:
    """The page with what legitimately differs between two renders removed: CSRF tokens and the
    username the visitor typed."""
    html = response.content.decode()
    html = re.sub(r"[A-Za-z0-9]{64}", "CSRF", html)
    return html.replace(username, "USERNAME")


def translated(text: str, language: str) -> str:
    """`text` in `language` from the project's compiled catalogs (locale/, `make messages`)."""
    with translation.override(language):
        result = translation.gettext(text)
    assert result != text, f"no {language} translation of {text!r}: are locale/ catalogs compiled (make messages)?"
    return result


def signed_in_user(client: Client) -> User | None:
    response = client.get("/api/v1/users/me/")
    return User.objects.get(username=response.json()["username"]) if response.status_code == 200 else None


# --- Sign in and out ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_login_page_shows_the_form_with_its_labels(client):
    response = client.get("/accounts/login/")

    assert response.status_code == 200
    html = response.content.decode()
    assert '<html lang="en">' in html
    for label in ("Sign in", "Username", "Password"):
        assert label in html
    assert 'name="username"' in html
    assert 'name="password"' in html


@pytest.mark.django_db
@pytest.mark.parametrize("language", ["ru", "pl"])
def test_login_page_labels_are_translated(client, language):
    html = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE=language).content.decode()

    for label in ("Sign in", "Username", "Password"):
        assert translated(label, language) in html
    assert ">Username<" not in html


@pytest.mark.django_db
@pytest.mark.parametrize(("language", "invalid_login"), [
    ("ru", "Пожалуйста, введите правильные"),
    ("pl", "Wprowadź poprawne wartości"),
])
def test_login_page_follows_the_browser_language(client, language, invalid_login):
    response = client.post("/accounts/login/", {"username": "nobody", "password": "x"},
                           HTTP_ACCEPT_LANGUAGE=language)

    assert f'<html lang="{language}">' in response.content.decode()
    assert response["Content-Language"] == language
    assert invalid_login in response.content.decode()  # Django's own catalog: the pages are translated


@pytest.mark.django_db
def test_good_credentials_sign_in_and_redirect_to_the_workspace(client, people):
    response = sign_in(client, "agent_a", PASSWORD)

    assert response.status_code == 302
    assert response["Location"] == "/app/"
    assert signed_in_user(client) == people.agent_a
    assert client.get("/app/").status_code == 200


@pytest.mark.django_db
def test_bad_password_shows_the_form_again_and_signs_nobody_in(client, people):
    response = sign_in(client, "agent_a", "wrong")

    assert response.status_code == 200
    assert BAD_LOGIN in response.content.decode()
    assert 'value="agent_a"' in response.content.decode()
    assert signed_in_user(client) is None


@pytest.mark.django_db
def test_a_wrong_password_and_an_unknown_username_get_the_same_page(client, people):
    known = sign_in(client, "agent_a", "wrong")
    unknown = sign_in(client, "no_such_user", "wrong")

    assert known.status_code == unknown.status_code == 200
    assert normalized(known, "agent_a") == normalized(unknown, "no_such_user")


@pytest.mark.django_db
def test_signed_in_user_visiting_login_goes_to_the_workspace(client, people):
    client.force_login(people.agent_a)

    response = client.get("/accounts/login/")

    assert response.status_code == 302
    assert response["Location"] == "/app/"


@pytest.mark.django_db
@pytest.mark.parametrize("target", ["https://evil.example/phish", "//evil.example/phish", "http://testserver.evil.example/"])
def test_login_next_parameter_cannot_leave_the_site(client, people, target):
    response = sign_in(client, "agent_a", PASSWORD, next=target)

    assert response.status_code == 302
    assert response["Location"] == "/app/"


@pytest.mark.django_db
def test_login_next_parameter_within_the_site_is_followed(client, people):
    response = sign_in(client, "agent_a", PASSWORD, next="/app/?view=mine")

    assert response["Location"] == "/app/?view=mine"


@pytest.mark.django_db
def test_logout_by_post_ends_the_session(client, people):
    client.force_login(people.agent_a)

    response = client.post("/accounts/logout/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"
    assert signed_in_user(client) is None
    assert client.get("/app/")["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_logout_by_get_is_refused_and_keeps_the_session(client, people):
    client.force_login(people.agent_a)

    assert client.get("/accounts/logout/").status_code == 405
    assert signed_in_user(client) == people.agent_a


# --- Throttling ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_after_repeated_failures_even_the_right_password_gets_429(client, people, settings):
    settings.LOGIN_THROTTLE_ATTEMPTS = 3
    for _ in range(3):
        assert sign_in(client, "agent_a", "wrong").status_code == 200

    response = sign_in(client, "agent_a", PASSWORD)

    assert response.status_code == 429
    assert THROTTLED in response.content.decode()
    assert signed_in_user(client) is None


@pytest.mark.django_db
def test_failures_below_the_limit_do_not_block(client, people, settings):
    settings.LOGIN_THROTTLE_ATTEMPTS = 3
    for _ in range(2):
        sign_in(client, "agent_a", "wrong")

    assert sign_in(client, "agent_a", PASSWORD).status_code == 302


@pytest.mark.django_db
def test_throttle_counts_per_ip_across_usernames(client, people, settings):
    settings.LOGIN_THROTTLE_ATTEMPTS = 3
    for username in ("guess1", "guess2", "guess3"):
        sign_in(client, username, "wrong", ip="203.0.113.7")

    from_that_ip = sign_in(client, "agent_b", PASSWORD, ip="203.0.113.7")
    from_elsewhere = sign_in(Client(), "agent_b", PASSWORD, ip="198.51.100.1")

    assert from_that_ip.status_code == 429
    assert from_elsewhere.status_code == 302


@pytest.mark.django_db
def test_throttle_counts_per_username_across_ips(client, people, settings):
    settings.LOGIN_THROTTLE_ATTEMPTS = 3
    for index, username in enumerate(("agent_a", "Agent_A", " AGENT_A ")):
        sign_in(client, username, "wrong", ip=f"203.0.113.{index + 1}")

    that_user = sign_in(client, "agent_a", PASSWORD, ip="198.51.100.1")
    other_user = sign_in(Client(), "agent_b", PASSWORD, ip="198.51.100.1")

    assert that_user.status_code == 429
    assert other_user.status_code == 302


@pytest.mark.django_db
def test_throttling_does_not_reveal_whether_the_username_exists(client, people, settings):
    settings.LOGIN_THROTTLE_ATTEMPTS = 3
    for index in range(3):
        sign_in(client, "agent_a", "wrong", ip=f"203.0.113.{index + 1}")
        sign_in(client, "no_such_user", "wrong", ip=f"198.51.100.{index + 1}")

    known = sign_in(client, "agent_a", PASSWORD, ip="192.0.2.1")
    unknown = sign_in(client, "no_such_user", PASSWORD, ip="192.0.2.2")

    assert known.status_code == unknown.status_code == 429
    assert normalized(known, "agent_a") == normalized(unknown, "no_such_user")


# --- Language preference ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_chosen_language_is_stored_on_the_user_and_the_next_page_uses_it(client, people):
    client.force_login(people.agent_a)

    response = client.post("/accounts/language/", {"language": "ru", "next": "/app/?view=all"})

    assert response.status_code == 302
    assert response["Location"] == "/app/?view=all"
    people.agent_a.refresh_from_db()
    assert people.agent_a.language == "ru"
    page = client.get("/app/")
    html = page.content.decode()
    assert '<html lang="ru">' in html
    assert page["Content-Language"] == "ru"
    assert "русский" in html.lower()  # the language menu, from Django's own Russian catalog
    assert translated("Tickets", "ru") in html  # our own pages, from locale/ru


@pytest.mark.django_db
def test_stored_language_applies_at_the_next_sign_in_on_another_browser(people):
    people.agent_a.language = "pl"
    people.agent_a.save(update_fields=["language"])
    browser = Client()

    sign_in(browser, "agent_a", PASSWORD)
    page = browser.get("/app/")

    assert '<html lang="pl">' in page.content.decode()
    assert page["Content-Language"] == "pl"
    assert "polski" in page.content.decode().lower()
    assert translated("Tickets", "pl") in page.content.decode()


@pytest.mark.django_db
def test_unknown_language_is_refused_and_changes_nothing(client, people):
    client.force_login(people.agent_a)

    response = client.post("/accounts/language/", {"language": "xx", "next": "/app/"}, follow=True)

    people.agent_a.refresh_from_db()
    assert people.agent_a.language == ""
    assert "Unknown language." in response.content.decode()
    assert '<html lang="en">' in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "javascript:alert(1)"])
def test_language_switch_next_parameter_cannot_leave_the_site(client, people, target):
    client.force_login(people.agent_a)

    response = client.post("/accounts/language/", {"language": "pl", "next": target})

    assert response.status_code == 302
    assert response["Location"] == "/app/"


@pytest.mark.django_db
def test_anonymous_visitor_cannot_set_a_language_preference(client):
    response = client.post("/accounts/language/", {"language": "ru"})

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


# --- Roles -----------------------------------------------------------------------------------------


def role_flags(user) -> tuple[bool, bool, bool]:
    fresh = User.objects.get(pk=user.pk)  # roles cache the groups on the instance
    return roles.is_agent(fresh), roles.is_supervisor(fresh), roles.is_admin(fresh)


@pytest.mark.django_db
def test_roles_nest_admin_over_supervisor_over_agent(people):
    assert role_flags(people.agent_a) == (True, False, False)
    assert role_flags(people.supervisor) == (True, True, False)
    assert role_flags(people.admin) == (True, True, True)
    assert [roles.role_of(u) for u in (people.agent_a, people.supervisor, people.admin)] == [
        "agent", "supervisor", "admin",
    ]


@pytest.mark.django_db
def test_superuser_counts_as_admin_without_any_group():
    root = UserFactory(username="root", is_superuser=True)

    assert role_flags(root) == (True, True, True)


@pytest.mark.django_db
def test_users_without_a_role_inactive_users_and_anonymous_have_no_role(people):
    plain = UserFactory(username="plain")
    people.admin.is_active = False
    people.admin.save(update_fields=["is_active"])

    assert role_flags(plain) == (False, False, False)
    assert role_flags(people.admin) == (False, False, False)
    assert (roles.is_agent(AnonymousUser()), roles.is_admin(AnonymousUser())) == (False, False)
    assert roles.role_of(AnonymousUser()) is None


@pytest.mark.django_db
def test_setting_a_role_replaces_the_previous_one(people):
    user_set_role(user=people.agent_a, role="admin")

    assert roles.is_admin(people.agent_a)  # the same instance sees the change at once
    fresh = User.objects.get(pk=people.agent_a.pk)
    assert set(fresh.groups.values_list("name", flat=True)) == {"admin"}
    assert fresh.is_staff  # the Django admin is for admins

    user_set_role(user=fresh, role="agent")

    fresh = User.objects.get(pk=people.agent_a.pk)
    assert set(fresh.groups.values_list("name", flat=True)) == {"agent"}
    assert not fresh.is_staff
    assert role_flags(fresh) == (True, False, False)


@pytest.mark.django_db
def test_setting_a_role_creates_the_role_groups_once():
    first, second = UserFactory(username="first"), UserFactory(username="second")

    user_set_role(user=first, role="supervisor")
    user_set_role(user=second, role="supervisor")

    assert Group.objects.filter(name__in=roles.ROLES).count() == 3
    assert Group.objects.get(name="supervisor").user_set.count() == 2


@pytest.mark.django_db
def test_unknown_role_is_refused_and_changes_nothing(people):
    with pytest.raises(ValueError, match="unknown role"):
        user_set_role(user=people.supervisor, role="owner")

    assert role_flags(people.supervisor) == (True, True, False)


def test_behind_the_proxy_the_throttle_counts_the_client_address_not_the_proxys(client, people, settings):
    from django.core.cache import cache

    cache.clear()
    settings.LOGIN_THROTTLE_ATTEMPTS = 2
    settings.NUM_PROXIES = 1
    for _ in range(2):  # one client, behind the proxy at 10.0.0.2, fails twice
        client.post("/accounts/login/", {"username": "nobody-1", "password": "x"},
                    REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.9")
    from django.test import Client

    other_client = Client().post("/accounts/login/", {"username": "agent_a", "password": "pass-1234"},
                                 REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.7")
    same_client = client.post("/accounts/login/", {"username": "nobody-2", "password": "x"},
                              REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="7.7.7.7, 203.0.113.9")
    cache.clear()
    assert other_client.status_code == 302  # another client behind the same proxy is not locked out
    assert same_client.status_code == 429  # a forged left-hand entry does not escape the limit
