"""Reads other parts of the workspace need from the Twilio channels."""

from __future__ import annotations

from channels_inbound.twilio.messaging import opted_out_at, window_open_until
from tickets.portal.selectors import callbacks_due

# Callback requests are `tickets.CallbackRequest` rows, whoever asked (phone menu, portal, web chat):
# one selector for all of them.
__all__ = ["callbacks_due", "opted_out_at", "window_open_until"]
