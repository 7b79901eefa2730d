"""Contract test: schemathesis fuzzes every routed operation of openapi.yaml against the real server.

No 5xx, and every response conforms to its documented status codes, content type, headers and schema.
Every operation is routed (start-up refuses otherwise), so all 49 are fuzzed, the SSE turn included.
"""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import LOCAL_REDIS, TEST_SECRET
from tests.server_process import ServerProcess
from voyagent import resources
from voyagent.contract import Contract
from voyagent.routes import collect_handlers

CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
          "response_schema_conformance,response_headers_conformance")
MAX_EXAMPLES = os.environ.get("VOYAGENT_SCHEMATHESIS_EXAMPLES", "25")


async def test_every_routed_operation_conforms_to_openapi(database, make_user, redis_prefix, redis_available,
                                                          test_output_dir):
    admin = await make_user("agency_admin")
    routed = sorted(collect_handlers())
    assert len(routed) == 49 and set(routed) == set(Contract.from_file(str(resources.openapi_path())).operations)
    extra_env = {"VOYAGENT_REDIS_URL": LOCAL_REDIS} if redis_available else {}
    if not redis_available:  # its documented 503 redis_not_configured would count as a server error
        routed.remove("health_redis")
    env = {"VOYAGENT_DB_URL": database.dsn, "VOYAGENT_AUTH_SECRET": TEST_SECRET,
           "VOYAGENT_AUTH_ARGON2_TIME_COST": "1", "VOYAGENT_AUTH_ARGON2_MEMORY_COST": "8192",
           "VOYAGENT_AUTH_ARGON2_PARALLELISM": "1", "VOYAGENT_LOG_LEVEL": "WARNING",
           "VOYAGENT_REDIS_PREFIX": redis_prefix, **extra_env,
           # Buckets off: the fuzzer's volume would otherwise turn most answers into (documented) 429s.
           "VOYAGENT_RATE_LIMIT_USER_PER_MINUTE": "0", "VOYAGENT_RATE_LIMIT_AUTH_IP_PER_MINUTE": "0",
           "VOYAGENT_RATE_LIMIT_AUTH_EMAIL_PER_MINUTE": "0", "VOYAGENT_RATE_LIMIT_SIGNUP_IP_PER_MINUTE": "0"}
    # Sign-out revokes the presented token, so it runs last, alone, with a token of its own.
    batches = [([op for op in routed if op != "sign_out"], admin.token)]
    if "sign_out" in routed:
        batches.append((["sign_out"], (await make_user("agent")).token))
    with ServerProcess(env) as server:
        for number, (operations, token) in enumerate(batches):
            includes = [arg for op in operations for arg in ("--include-operation-id", op)]
            report = test_output_dir / f"schemathesis-junit-{number}.xml"
            result = subprocess.run(
                [sys.executable, "-m", "schemathesis.cli", "run", str(resources.openapi_path()), "--url",
                 server.url, "-H", f"Authorization: Bearer {token}", "--checks", CHECKS, "-n", MAX_EXAMPLES,
                 "--seed", "20261122", "--workers", "1", "--no-color", "--max-failures", "20",
                 "--report", "junit", "--report-junit-path", str(report), *includes],
                capture_output=True, text=True, timeout=480)
            output = result.stdout + result.stderr
            assert result.returncode == 0, output[-20000:]
            assert "passed" in output.lower()
