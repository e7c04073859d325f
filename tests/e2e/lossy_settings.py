"""Settings for a server whose channel layer loses events: rim's settings, with the
in-memory layer replaced by tests.e2e.lossy_layer.LossyLayer."""

from rimsite.settings import *  # noqa: F403
from rimsite.settings import CHANNEL_LAYERS

CHANNEL_LAYERS = {
    "default": {**CHANNEL_LAYERS["default"], "BACKEND": "tests.e2e.lossy_layer.LossyLayer"}
}
