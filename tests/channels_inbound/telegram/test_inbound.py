"""`/webhooks/telegram/<key>`: the secret token, update ids, and what each update becomes."""

from __future__ import annotations

import pytest

from channels_inbound.models import InboundEvent
from customers.models import Identity, MergeSuggestion
from tests.channels_inbound.telegram.conftest import BOT_TOKEN, PNG, USER_ID, load
from tests.factories import CustomerFactory, IdentityFactory
from tickets.models import Attachment, TimelineEntry

pytestmark = pytest.mark.django_db


def test_a_text_message_lands_on_a_ticket_with_the_senders_telegram_identity(post_update, telegram):
    response = post_update(telegram, load("message_text.json"))

    assert response.status_code == 200
    entry = TimelineEntry.objects.select_related("identity", "ticket__customer").get(direction="in")
    assert entry.text == "Dzień dobry, where is my parcel?"
    assert entry.provider_message_id == f"{USER_ID}:412"
    assert (entry.identity.kind, entry.identity.value, entry.identity.display_name) == ("telegram", USER_ID, "Piotr Zieliński")
    assert entry.ticket.customer.display_name == "Piotr Zieliński"
    assert entry.ticket.customer.language == "pl"
    assert entry.ticket.team.name == "Support A"
    assert InboundEvent.objects.get().external_id == "734281901"


@pytest.mark.parametrize("secret", ["", "wrong-secret"])
def test_a_missing_or_wrong_secret_token_is_403_stores_nothing_and_is_counted(post_update, telegram, secret):
    response = post_update(telegram, load("message_text.json"), secret=secret)

    assert response.status_code == 403
    assert not InboundEvent.objects.exists()
    telegram.channel.refresh_from_db()
    assert telegram.channel.rejected_requests == 1


def test_another_bots_secret_does_not_open_this_bot(post_update, telegram, people):
    from tests.factories import make_channel

    _other, generated = make_channel(kind="telegram", name="Other bot",
                                     settings_data={"bot_token": "123456:" + "B" * 35})
    assert post_update(telegram, load("message_text.json"), secret=generated["secret_token"]).status_code == 403


def test_unknown_key_404_trailing_slash_and_bad_bodies(post_update, telegram):
    assert post_update(telegram, load("message_text.json"), url="/webhooks/telegram/nope").status_code == 404
    assert post_update(telegram, load("message_text.json"), url=telegram.url + "/").status_code == 200
    assert post_update(telegram, b"{not json").status_code == 400
    assert post_update(telegram, {"message": {}}).status_code == 400
    assert post_update(telegram, {"update_id": "7"}).status_code == 400
    assert InboundEvent.objects.count() == 1


def test_a_repeated_update_id_changes_nothing(post_update, telegram):
    first = post_update(telegram, load("message_text.json"))
    second = post_update(telegram, load("message_text.json"))
    assert second.json() == {"event_id": first.json()["event_id"], "duplicate": True}
    assert TimelineEntry.objects.filter(direction="in").count() == 1


def test_a_photo_is_fetched_with_getfile_in_its_largest_size(post_update, telegram, bot_api):
    post_update(telegram, load("message_photo.json"))

    entry = TimelineEntry.objects.get(direction="in")
    assert entry.text == "The box arrived damaged"
    [get_file] = bot_api.calls("/getFile")
    assert get_file.path == f"/bot{BOT_TOKEN}/getFile"
    assert get_file.json() == {"file_id": "AgACAgIAAxkBAAIBZ2dLargeSize"}
    assert bot_api.calls("/file/")[0].path == f"/file/bot{BOT_TOKEN}/photos/file_7.jpg"
    attachment = Attachment.objects.get(entry=entry)
    assert (attachment.content_type, attachment.file.read()) == ("image/png", PNG)


def test_a_voice_note_becomes_an_attachment(post_update, telegram):
    post_update(telegram, load("message_voice.json"))
    assert Attachment.objects.get().filename == "voice.ogg"


def test_a_document_above_the_bot_download_limit_is_refused_without_a_download(post_update, telegram, bot_api):
    post_update(telegram, load("message_document.json"))

    entry = TimelineEntry.objects.get(direction="in")
    assert entry.data["media_failed"][0]["filename"] == "receipt.pdf"
    assert bot_api.calls("/getFile") == []
    assert not Attachment.objects.exists()


def test_a_shared_phone_is_offered_as_a_link_to_the_existing_customer_never_merged(post_update, telegram):
    known = CustomerFactory(display_name="Piotr Z. (shop account)")
    IdentityFactory(customer=known, kind="phone", value="+48601234567")
    post_update(telegram, load("message_text.json"))
    post_update(telegram, load("message_contact.json"))

    entry = TimelineEntry.objects.filter(direction="in").latest("pk")
    assert "+48601234567" in entry.text or "48601234567" in entry.text
    telegram_customer = Identity.objects.get(kind="telegram").customer
    assert telegram_customer != known
    suggestion = MergeSuggestion.objects.get()
    assert {suggestion.customer_id, suggestion.other_id} == {known.pk, telegram_customer.pk}
    # The claim stays unverified on the Telegram customer; the verified number stays where it was.
    assert Identity.objects.get(kind="phone", verified=True).customer == known
    assert Identity.objects.get(kind="phone", verified=False).customer == telegram_customer


def test_someone_elses_contact_claims_nothing(post_update, telegram):
    update = load("message_contact.json")
    update["message"]["contact"]["user_id"] = 999
    post_update(telegram, update)
    assert not Identity.objects.filter(kind="phone", value="+48601234567").exists()


def test_an_edit_updates_the_text_and_keeps_the_old_one(post_update, telegram):
    post_update(telegram, load("message_text.json"))
    post_update(telegram, load("edited_message.json"))

    entry = TimelineEntry.objects.get(direction="in")
    assert entry.text == "Dzień dobry, where is my parcel #A-1042?"
    assert entry.data["edits"][0]["text"] == "Dzień dobry, where is my parcel?"


def test_a_button_press_arrives_with_its_callback_data_and_is_answered(post_update, telegram, bot_api):
    post_update(telegram, load("callback_query.json"))
    entry = TimelineEntry.objects.get(direction="in")
    assert (entry.text, entry.data["callback_data"]) == ("helpful:no", "helpful:no")
    [answer] = bot_api.calls("/answerCallbackQuery")
    assert answer.path == f"/bot{BOT_TOKEN}/answerCallbackQuery"
    assert answer.json() == {"callback_query_id": "2367091254109831687"}
    assert entry.data["callback_answered"] is True


def test_group_messages_are_stored_but_not_put_on_timelines(post_update, telegram):
    post_update(telegram, load("group_message.json"))
    assert InboundEvent.objects.get().status == "processed"
    assert not TimelineEntry.objects.exists()


def test_the_webhook_costs_a_constant_number_of_queries(client, telegram, django_assert_num_queries):
    import json

    with django_assert_num_queries(2):  # the channel, the INSERT
        response = client.post(telegram.url, data=json.dumps(load("message_text.json")), content_type="application/json",
                               HTTP_X_TELEGRAM_BOT_API_SECRET_TOKEN=telegram.secret_token)
    assert response.status_code == 200


def test_a_body_above_the_limit_is_413_and_stores_nothing(post_update, telegram, settings):
    settings.INBOUND_MAX_BYTES = 50
    assert post_update(telegram, load("message_text.json")).status_code == 413
    assert not InboundEvent.objects.exists()
