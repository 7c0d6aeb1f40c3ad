"""E-mail subscriptions to an SNS topic, with one construct id scheme for every tier.

A subscription's construct id is `Email<address>`, with `%` and `/` percent-escaped (a
construct id cannot hold `/`): distinct addresses always get distinct ids, and an id
depends only on its own address, so adding or removing one address never replaces the
subscription of another. (Spelling the address in PascalCase words, or numbering the
addresses, broke one of the two.)

SNS e-mail subscriptions stay pending until confirmed from the mailbox
(https://docs.aws.amazon.com/sns/latest/dg/sns-email-notifications.html).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from constructs import Construct

from modules import aws


def subscription_id(address: str) -> str:
    """`ops+ci@example.com` -> `Email<ops+ci@example.com>`: readable and one-to-one."""
    return f"Email<{address.replace('%', '%25').replace('/', '%2F')}>"


def subscribe_emails(scope: Construct, topic_arn: str, addresses: Sequence[str],
                     provider: Any = None) -> list[aws.sns_topic_subscription.SnsTopicSubscription]:
    """An e-mail subscription per address; each must be confirmed from its mailbox."""
    return [
        aws.sns_topic_subscription.SnsTopicSubscription(
            scope, subscription_id(address), topic_arn=topic_arn, protocol="email", endpoint=address,
            provider=provider,
        )
        for address in addresses
    ]
