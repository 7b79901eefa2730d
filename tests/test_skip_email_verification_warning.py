"""VOYAGENT_AUTH_SKIP_EMAIL_VERIFICATION=true is announced with a warning at every start, naming what it exposes."""

import logging

from tests.conftest import TEST_SECRET
from tests.server_process import ServerProcess

EXPOSED = ("new sign-ups are verified without any e-mail", "POST /auth/request-password-reset",
           "POST /auth/send-verification-email", "debug_token")


def _warnings(caplog):
    return [r.getMessage() for r in caplog.records
            if r.name == "voyagent.identity" and r.levelno == logging.WARNING
            and "VOYAGENT_AUTH_SKIP_EMAIL_VERIFICATION" in r.getMessage()]


async def test_each_start_with_the_flag_logs_the_warning(make_client, caplog):
    with caplog.at_level(logging.WARNING, logger="voyagent.identity"):
        await make_client(skip_email_verification=True)
        await make_client(skip_email_verification=True)
    warnings = _warnings(caplog)
    assert len(warnings) == 2
    assert all(part in warnings[0] for part in EXPOSED)


async def test_without_the_flag_nothing_is_logged(make_client, caplog):
    with caplog.at_level(logging.WARNING, logger="voyagent.identity"):
        await make_client()
    assert _warnings(caplog) == []


def test_the_real_server_writes_the_warning_to_its_log(database, tmp_path):
    server = ServerProcess({"VOYAGENT_DB_URL": database.dsn, "VOYAGENT_AUTH_SECRET": TEST_SECRET,
                            "VOYAGENT_DATA_DIR": str(tmp_path), "VOYAGENT_REDIS_URL": "",
                            "VOYAGENT_AUTH_SKIP_EMAIL_VERIFICATION": "true", "VOYAGENT_WORKERS": "1"})
    server.start()  # returns once /health answers, so start-up has finished
    code, output = server.stop()
    assert code == 0
    lines = [line for line in output.splitlines() if "VOYAGENT_AUTH_SKIP_EMAIL_VERIFICATION" in line]
    assert len(lines) == 1 and "WARNING" in lines[0] and all(part in lines[0] for part in EXPOSED)
