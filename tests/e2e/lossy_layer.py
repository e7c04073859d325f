"""A channel layer that drops every event whose type is listed in RIM_TEST_DROP_EVENTS
(comma-separated). The layer is at-most-once by contract; the tests that run a server
with it show that nothing it loses widens anyone's access."""

import os

from infra.layers import ProcessChannelLayer

DROPPED = frozenset(os.environ.get("RIM_TEST_DROP_EVENTS", "").split(","))


class LossyLayer(ProcessChannelLayer):
    def group_send_now(self, group, message) -> None:
        if message["type"] not in DROPPED:
            super().group_send_now(group, message)
