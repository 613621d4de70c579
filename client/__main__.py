"""``python -m dbdaemon_client``."""

from dbdaemon_client.cli import run

run()
