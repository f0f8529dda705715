"""Engagement back: what happened to each message after it was sent (delivered, opened,
clicked, bounced, marked as spam, unsubscribed) and each user's opt-outs per channel."""
