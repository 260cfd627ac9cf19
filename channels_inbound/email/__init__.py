"""The email channel: IMAP polling, ESP inbound webhooks, MIME parsing and threaded replies."""
